"""``p2p-mocap clean`` and ``p2p-mocap qa`` through the real CLI (a fresh interpreter each)."""
from __future__ import annotations

import hashlib
import os
import json

import numpy as np
import pytest

from pose2pose_mocap.retarget.take import read_take, write_take

from .faults.conftest import assert_one_line_error, run_cli, snapshot
from .retarget.synthetic import make_take, standin_smplx_path
from .retarget.test_cleanup_qa import inject_flip, walk_params


def _digest(p) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture
def clip(tmp_path):
    p = walk_params(150, seed=1)
    inject_flip(p, "left", 60, 64)
    valid = np.ones(150, bool)
    valid[100:103] = False
    take = make_take(p, valid=valid)
    take.raw["score"] = np.full(150, 0.9)
    return write_take(tmp_path / "clip.take.npz", take)


def _smplx():
    return ["--smplx", str(standin_smplx_path())]


def test_clean_writes_a_numbered_cleaned_take_and_keeps_the_input(clip):
    before = _digest(clip)
    res = run_cli(["clean", clip, *_smplx(), "--fix-flags", "wrist_flip=interpolate,"
                   "dropout=interpolate"])
    assert res.rc == 0, res.stderr
    out = clip.with_name("clip.clean.take.npz")
    assert f"wrote {out}" in res.stdout
    assert "flags on the input: " in res.stdout and "wrist_flip 1" in res.stdout
    assert "fixed 2" in res.stdout
    assert _digest(clip) == before
    cleaned = read_take(out)
    assert cleaned.valid.all()                           # the dropout was interpolated
    assert "source_body_pose" in cleaned.raw             # the raw parameters it came from
    np.testing.assert_array_equal(cleaned.raw["source_body_pose"],
                                  read_take(clip).params["body_pose"])
    first = _digest(out)
    again = run_cli(["clean", clip, *_smplx(), "--foot-lock", "off"])
    assert again.rc == 0, again.stderr
    assert clip.with_name("clip-2.clean.take.npz").is_file()   # numbered on the stem
    assert _digest(out) == first                        # a default name is never replaced


def test_clean_o_refuses_to_replace_without_force(clip, tmp_path):
    target = tmp_path / "mine.take.npz"
    target.write_bytes(b"the user's file")
    res = run_cli(["clean", clip, "-o", target, *_smplx()])
    assert_one_line_error(res, "exists", "--force")
    assert target.read_bytes() == b"the user's file"
    res = run_cli(["clean", clip, "-o", target, *_smplx(), "--force", "--json",
                   tmp_path / "r.json"])
    assert res.rc == 0, res.stderr
    assert read_take(target).num_frames == 150
    assert json.loads((tmp_path / "r.json").read_text())["format"] == "p2p-qa/1"


def test_qa_prints_and_writes_the_report(clip, tmp_path):
    before = snapshot(tmp_path)
    res = run_cli(["qa", clip, *_smplx(), "--json", tmp_path / "r.json", "--plot",
                   tmp_path / "r.png"])
    assert res.rc == 0, res.stderr
    assert res.stdout.startswith("QA clip.take.npz: 150 rows at 30 fps")
    assert "wrist_flip" in res.stdout and "dropout" in res.stdout
    d = json.loads((tmp_path / "r.json").read_text())
    assert d["flags"]["counts"]["wrist_flip"] == 1 and d["frames"]["valid"] == 147
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert snapshot(tmp_path).keys() - before.keys() == {"r.json", "r.png"}


def _bad_take(tmp_path, kind):
    if kind == "not a take":
        p = tmp_path / "junk.take.npz"
        p.write_bytes(b"not a zip file")
        return p
    T = {"no valid frames": 20, "too short": 3}[kind]
    valid = np.zeros(T, bool) if kind == "no valid frames" else np.ones(T, bool)
    return write_take(tmp_path / f"{kind.replace(' ', '_')}.take.npz",
                      make_take(walk_params(T), valid=valid))


@pytest.mark.parametrize("command", ["clean", "qa"])
@pytest.mark.parametrize("kind,words", [("not a take", ("junk.take.npz",)),
                                        ("no valid frames", ("no valid frames",)),
                                        ("too short", ("too short",))])
def test_bad_takes_one_line_nothing_written(tmp_path, command, kind, words):
    take = _bad_take(tmp_path, kind)
    before = snapshot(tmp_path)
    extra = ["--json", tmp_path / "r.json"] if command == "qa" else []
    res = run_cli([command, take, *_smplx(), *extra])
    assert_one_line_error(res, *words)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("command", ["clean", "qa"])
def test_unknown_model_and_unwritable_output(clip, tmp_path, command):
    before = snapshot(tmp_path)
    res = run_cli([command, clip, "--smplx", tmp_path / "nowhere" / "SMPLX_NEUTRAL.npz",
                   "--json", tmp_path / "r.json"])
    assert_one_line_error(res, "SMPLX_NEUTRAL.npz")
    missing = tmp_path / "no_such_folder" / ("out.take.npz" if command == "clean" else "r.json")
    flag = "-o" if command == "clean" else "--json"
    res = run_cli([command, clip, *_smplx(), flag, missing])
    assert_one_line_error(res, "no_such_folder")
    assert snapshot(tmp_path) == before


def test_bad_fix_flags_one_line(clip, tmp_path):
    before = snapshot(tmp_path)
    res = run_cli(["clean", clip, *_smplx(), "--fix-flags", "wrist_flip=undo"])
    assert_one_line_error(res, "undo")
    assert snapshot(tmp_path) == before


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
def test_clean_next_to_a_take_in_a_read_only_folder(clip, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    take = ro / "clip.take.npz"
    take.write_bytes(clip.read_bytes())
    ro.chmod(0o555)
    try:
        res = run_cli(["clean", take, *_smplx()])
        assert_one_line_error(res, "no permission")
        assert sorted(p.name for p in ro.iterdir()) == ["clip.take.npz"]
    finally:
        ro.chmod(0o755)
