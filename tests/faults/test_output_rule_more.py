"""``clean``, ``qa`` (``--json`` / ``--plot``) and ``retarget`` on the one ``-o`` rule
(``common.outputs``), through the real CLI: a folder gets the default name inside it
(numbered when taken), a trailing ``/`` creates the folder, a missing folder without it is
refused with one line and nothing written, named files keep their name; the input is never
touched.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from pose2pose_mocap.retarget.take import write_take
from tests.retarget.synthetic import make_take, standin_smplx_path

from .conftest import assert_one_line_error, run_cli, snapshot


def _digest(p) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture
def clip(tmp_path):
    from tests.retarget.test_cleanup_qa import walk_params

    src = tmp_path / "in"
    src.mkdir()
    return write_take(src / "clip.take.npz", make_take(walk_params(40, seed=3),
                                                       valid=np.ones(40, bool)))


def _smplx():
    return ["--smplx", str(standin_smplx_path())]


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_clean_follows_the_rule(clip, tmp_path):
    before = _digest(clip)
    out = tmp_path / "cleaned"
    for _ in range(2):   # a missing folder named with /: made; then numbered on the stem
        res = run_cli(["clean", clip, *_smplx(), "--foot-lock", "off", "-o", f"{out}/"])
        assert res.rc == 0, res.stderr
    assert _names(out) == ["clip-2.clean.take.npz", "clip.clean.take.npz"]
    assert f"wrote {out / 'clip.clean.take.npz'}" in res.stdout or \
        f"wrote {out / 'clip-2.clean.take.npz'}" in res.stdout
    # an existing folder (no /), with the reports: each default name inside it
    res = run_cli(["clean", clip, *_smplx(), "--foot-lock", "off", "-o", str(out),
                   "--json", str(out), "--plot", f"{out}/"])
    assert res.rc == 0, res.stderr
    assert _names(out) == ["clip-2.clean.take.npz", "clip-3.clean.take.npz",
                           "clip.clean.qa.json", "clip.clean.qa.png", "clip.clean.take.npz"]
    assert _digest(clip) == before
    # a named file keeps its name and is replaced only with --force
    named = tmp_path / "mine.npz"
    res = run_cli(["clean", clip, *_smplx(), "--foot-lock", "off", "-o", str(named)])
    assert res.rc == 0 and named.is_file(), res.stderr
    first = _digest(named)
    assert_one_line_error(run_cli(["clean", clip, *_smplx(), "-o", str(named)]), "exists",
                          "--force")
    assert _digest(named) == first


def test_clean_refuses_bad_outputs_before_any_work(clip, tmp_path):
    before = snapshot(tmp_path)
    for extra, words in ((["-o", str(tmp_path / "nope" / "x.npz")], ("-o", "no such folder")),
                         (["-o", str(tmp_path / "x.blend")], ("-o", "must be a .npz file")),
                         (["-o", str(clip)], ("exists",)),
                         (["--json", str(tmp_path / "nope" / "r.json")], ("no such folder",)),
                         (["--plot", str(tmp_path / "r.json")], ("must be a .png file",)),
                         # a folder to be made, but the run fails: no folder is left
                         (["-o", f"{tmp_path}/made/", "--smplx",
                           str(tmp_path / "no-model")], ())):
        args = ["clean", clip, *(_smplx() if "--smplx" not in extra else []), *extra]
        assert_one_line_error(run_cli(args), *words)
    assert snapshot(tmp_path) == before and not (tmp_path / "made").exists()


def test_qa_reports_follow_the_rule(clip, tmp_path):
    before = _digest(clip)
    reports = tmp_path / "reports"
    for _ in range(2):
        res = run_cli(["qa", clip, *_smplx(), "--json", f"{reports}/", "--plot", str(reports)
                       if reports.is_dir() else f"{reports}/"])
        assert res.rc == 0, res.stderr
    assert _names(reports) == ["clip-2.qa.json", "clip-2.qa.png", "clip.qa.json", "clip.qa.png"]
    named = reports / "mine.json"
    res = run_cli(["qa", clip, *_smplx(), "--json", str(named)])
    assert res.rc == 0 and named.is_file() and f"wrote {named}" in res.stdout, res.stderr
    assert_one_line_error(run_cli(["qa", clip, *_smplx(), "--json", str(named)]), "exists")
    assert _digest(clip) == before
    snap = snapshot(tmp_path)
    for extra, words in ((["--json", str(tmp_path / "nope" / "r.json")], ("no such folder",)),
                         (["--plot", str(tmp_path / "nope" / "r.png")], ("no such folder",)),
                         (["--json", str(tmp_path / "r.png")], ("must be a .json file",)),
                         (["--json", f"{tmp_path}/new/", "--gender", "male",
                           "--smplx", str(tmp_path / "no-model")], ())):
        args = ["qa", clip, *(_smplx() if "--smplx" not in extra else []), *extra]
        assert_one_line_error(run_cli(args), *words)
    assert snapshot(tmp_path) == snap and not (tmp_path / "new").exists()


@pytest.mark.slow
@pytest.mark.blender
def test_retarget_follows_the_rule(clip, tmp_path):
    pytest.importorskip("bpy")
    from tests.retarget.synthetic import standin_smplx_root

    smplx = ["--smplx", str(standin_smplx_root())]
    before = _digest(clip)
    out = tmp_path / "rigs"
    for _ in range(2):   # made with /, then an existing folder: numbered on the stem
        res = run_cli(["retarget", clip, "--target", "mixamo", *smplx, "-o",
                       str(out) if out.is_dir() else f"{out}/"])
        assert res.rc == 0, res.stderr
    assert _names(out) == ["clip-2.mixamo.blend", "clip.mixamo.blend"]
    # without -o: next to the input, numbered when taken (never replaced)
    for _ in range(2):
        res = run_cli(["retarget", clip, "--target", "ue5", *smplx])
        assert res.rc == 0, res.stderr
    assert _names(clip.parent) == ["clip-2.ue5.blend", "clip.take.npz", "clip.ue5.blend"]
    assert _digest(clip) == before
    snap = snapshot(tmp_path)
    for args, words in ((["-o", str(tmp_path / "nope" / "x.blend")], ("-o", "no such folder")),
                        (["-o", str(tmp_path / "x.fbx")], ("-o", "must be a .blend file")),
                        (["-o", str(out / "clip.mixamo.blend")], ("exists",)),
                        (["-o", f"{tmp_path}/made/", "--target", "nope"], ())):
        target = [] if "--target" in args else ["--target", "mixamo"]
        assert_one_line_error(run_cli(["retarget", clip, *target, *smplx, *args]), *words)
    assert snapshot(tmp_path) == snap and not (tmp_path / "made").exists()
