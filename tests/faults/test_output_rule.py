"""The one ``-o`` rule (``common.outputs``) and the one naming scheme, through the real CLI.

A folder (existing, or a name ending in /) gets the default name inside it; a missing
folder is created only for a trailing /, and removed again when nothing was written;
named files keep their name; default names are numbered ``stem-2 + tail``; format
presets have no doubled suffix; exported objects carry the rig's names (no ``.001``);
a successful run prints no temporary names and no Blender chatter.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from pose2pose_mocap.common.outputs import (OutputPathError, numbered_name, resolve_output,
                                            resolve_output_folder)
from pose2pose_mocap.retarget.take import write_take
from tests.retarget.synthetic import take_arrays

from .conftest import assert_one_line_error, run_cli, snapshot


# --------------------------------------------------------------------------- the rule itself

def test_resolve_output_folder_file_and_default(tmp_path):
    (tmp_path / "out").mkdir()
    d = resolve_output(None, "clip", ".blend", next_to=tmp_path)
    assert (d.path, d.numbered, d.make_folder) == (tmp_path / "clip.blend", True, None)
    d = resolve_output(str(tmp_path / "out"), "clip", ".unity.fbx", next_to=tmp_path)
    assert (d.path, d.numbered) == (tmp_path / "out" / "clip.unity.fbx", True)
    d = resolve_output(f"{tmp_path}/new/deeper/", "clip", ".take.npz", next_to=tmp_path,
                       suffixes=(".npz",))
    assert d.path == tmp_path / "new" / "deeper" / "clip.take.npz"
    assert d.make_folder == tmp_path / "new" / "deeper" and not (tmp_path / "new").exists()
    d = resolve_output(str(tmp_path / "mine.blend"), "clip", ".blend", next_to=tmp_path)
    assert (d.path, d.numbered) == (tmp_path / "mine.blend", False)
    with pytest.raises(OutputPathError, match="no such folder"):
        resolve_output(str(tmp_path / "missing" / "x.blend"), "clip", ".blend", next_to=tmp_path)
    with pytest.raises(OutputPathError, match="must be a .blend file, or a folder"):
        resolve_output(str(tmp_path / "x.fbx"), "clip", ".blend", next_to=tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputPathError, match="exists and is not a folder"):
        resolve_output(f"{tmp_path}/file/", "clip", ".blend", next_to=tmp_path)
    with pytest.raises(OutputPathError, match="exists and is not a folder"):
        resolve_output_folder(str(tmp_path / "file"))
    assert [numbered_name("clip", ".take.npz", n) for n in (1, 2)] == \
        ["clip.take.npz", "clip-2.take.npz"]


def test_a_made_folder_goes_when_nothing_was_written(tmp_path):
    d = resolve_output(f"{tmp_path}/a/b/", "clip", ".blend", next_to=tmp_path)
    with pytest.raises(RuntimeError):
        with d.folder_made():
            assert (tmp_path / "a" / "b").is_dir()
            raise RuntimeError("the run failed")
    assert list(tmp_path.iterdir()) == []
    with d.folder_made():
        d.path.write_bytes(b"x")
    assert d.path.is_file()


# --------------------------------------------------------------------------- the commands

@pytest.fixture(scope="module")
def smplx_root() -> Path:
    pytest.importorskip("bpy")
    from tests.retarget.synthetic import standin_smplx_root

    return standin_smplx_root()


@pytest.fixture(scope="module")
def take_file(tmp_path_factory) -> Path:
    return write_take(tmp_path_factory.mktemp("take") / "clip.take.npz", take_arrays(T=4))


def _no_chatter(res) -> None:
    text = res.stdout + res.stderr
    assert not re.search(r"\.p2p-[0-9a-f]{6}-\d+-", text), text   # our temporary names
    for bad in (".part", "Info:", "INFO", "Saved copy", "export starting", "Read blend"):
        assert bad not in text, (bad, text)


@pytest.mark.slow
def test_convert_and_export_take_folders_and_number_names(take_file, smplx_root, tmp_path):
    out = tmp_path / "renders"
    res = run_cli(["convert", str(take_file), "--smplx", str(smplx_root), "--pose-correctives",
                   "off", "-o", f"{out}/"])            # a missing folder named with / is made
    assert res.rc == 0, res.stderr
    assert (out / "clip.blend").is_file()
    _no_chatter(res)
    res = run_cli(["convert", str(take_file), "--smplx", str(smplx_root), "--pose-correctives",
                   "off", "-o", str(out)])             # an existing folder, numbered
    assert res.rc == 0 and (out / "clip-2.blend").is_file(), res.stderr
    blend = out / "clip.blend"
    for preset, name in (("bvh", "clip.bvh"), ("gltf", "clip.glb"), ("unity", "clip.unity.fbx")):
        res = run_cli(["export", str(blend), "--preset", preset, "-o", f"{out}/"])
        assert res.rc == 0 and (out / name).is_file(), (preset, res.stderr)
        _no_chatter(res)
    res = run_cli(["export", str(blend), "--preset", "bvh"])   # default name taken: numbered
    assert res.rc == 0 and (out / "clip-2.bvh").is_file(), res.stderr
    # The exported body and rig keep the scene's names (no '.001' of the temporary copy).
    import json
    import struct

    glb = (out / "clip.glb").read_bytes()
    gltf = json.loads(glb[20:20 + struct.unpack("<I", glb[12:16])[0]])
    names = [x.get("name", "") for x in gltf["nodes"] + gltf["meshes"]]
    assert "SMPL-X person 1 body (stand-in)" in names, names
    assert not [n for n in names if re.search(r"\.\d{3}$", n)], names
    fbx = (out / "clip.unity.fbx").read_bytes()
    assert b"body (stand-in)" in fbx and not re.search(rb"\(stand-in\)\.\d{3}", fbx)


def test_missing_folders_without_slash_are_refused_everywhere(take_file, tmp_path):
    before = snapshot(tmp_path)
    for args in (["convert", str(take_file), "-o", str(tmp_path / "nope" / "x.blend")],
                 ["export", str(take_file), "--preset", "bvh", "-o",
                  str(tmp_path / "nope" / "x.bvh")],
                 ["import", str(take_file), "-o", str(tmp_path / "nope" / "x.take.npz")],
                 ["convert", str(take_file), "-o", str(tmp_path / "x.fbx")]):
        assert_one_line_error(run_cli(args), "-o")
    assert snapshot(tmp_path) == before


def test_import_into_a_new_folder_and_numbered(tmp_path):
    import numpy as np

    amass = tmp_path / "clip.npz"   # an AMASS-style result file
    np.savez(amass, poses=np.zeros((3, 165)), trans=np.zeros((3, 3)), betas=np.zeros(16),
             mocap_frame_rate=np.array(30.0), gender=np.array("neutral"))
    out = tmp_path / "takes"
    for _ in range(2):
        res = run_cli(["import", str(amass), "-o", f"{out}/"])
        assert res.rc == 0, res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["clip-2.take.npz", "clip.take.npz"]


def test_batch_on_an_empty_folder_leaves_nothing(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    res = run_cli(["batch", str(src), "-o", str(tmp_path / "out")])
    assert_one_line_error(res, "no video or image folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]
