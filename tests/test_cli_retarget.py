"""``p2p-mocap retarget`` (issue 15): a take onto a built-in, a preset and a character file;
bad input is one line and a non-zero exit, with nothing written and the inputs untouched."""
from __future__ import annotations

import hashlib

import pytest

from .retarget.synthetic import make_take, random_params, standin_smplx_root
from .test_doctor import p2p

pytestmark = pytest.mark.blender


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def take(tmp_path_factory):
    pytest.importorskip("bpy")
    from pose2pose_mocap.retarget.take import write_take

    folder = tmp_path_factory.mktemp("cli_retarget")
    return write_take(folder / "clip.take.npz", make_take(random_params(5, seed=2,
                                                                         max_angle=0.5)))


def _one_error_line(r):
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    assert len(lines) == 1 and lines[0].startswith("p2p-mocap: error: "), r.stderr
    return lines[0]


@pytest.mark.slow
def test_retarget_a_take_onto_builtins_presets_and_characters(take, tmp_path):
    smplx = str(standin_smplx_root())
    before = _sha(take)
    out = tmp_path / "clip.mixamo.blend"
    preset = tmp_path / "mixamo-map.json"
    r = p2p("retarget", str(take), "--target", "mixamo", "--smplx", smplx, "-o", str(out),
            "--save-map", str(preset))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"wrote {out}" in r.stdout and f"wrote {preset}" in r.stdout
    assert out.is_file() and preset.is_file()
    # Again without --force: refused, the file kept.
    first = _sha(out)
    line = _one_error_line(p2p("retarget", str(take), "--target", "mixamo", "--smplx", smplx,
                               "-o", str(out)))
    assert "exists" in line and _sha(out) == first
    # The saved preset (mapping + skeleton) as a target; the .blend as a character file
    # (its own SMPL-X rig is not a candidate; its mixamo armature is mapped automatically),
    # and the .blend as the input.
    r = p2p("retarget", str(take), "--target", str(preset), "--smplx", smplx,
            "-o", str(tmp_path / "a.blend"))
    assert r.returncode == 0, r.stdout + r.stderr
    r = p2p("retarget", str(out), "--target", str(out), "-o", str(tmp_path / "b.blend"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "mapped automatically" in r.stdout
    r = p2p("retarget", str(out), "--target", str(out), "--map", "mixamo",
            "-o", str(tmp_path / "c.blend"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert _sha(out) == first and _sha(take) == before

    import bpy

    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "c.blend"))
    arms = {o.name: o for o in bpy.data.objects if o.type == 'ARMATURE'}
    assert len([o for o in arms.values() if "p2p_rig" in o]) == 1
    tracks = [t.name for o in arms.values() if "p2p_rig" not in o and o.animation_data
              for t in o.animation_data.nla_tracks]
    assert len(tracks) == 2 and all(" -> " in t for t in tracks), tracks  # the file's + ours
    bpy.ops.wm.read_factory_settings(use_empty=True)


def test_bad_input_is_one_line_and_writes_nothing(take, tmp_path):
    smplx = str(standin_smplx_root())
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    chain = tmp_path / "chain.json"
    chain.write_text('{"format": "p2p-rig-target/1", "name": "x", "mapping": {}}')
    cases = [
        (("--target", "marvin"), "unsupported target"),
        (("--target", str(tmp_path / "missing.fbx")), "no such file"),
        (("--target", str(text)), "unsupported target"),
        (("--target", "ue5", "--map", "mixamo"), "--map applies to a character file"),
        (("--target", str(chain)), "no skeleton"),
    ]
    for extra, expect in cases:
        r = p2p("retarget", str(take), "--smplx", smplx, "-o", str(tmp_path / "x.blend"), *extra)
        assert expect in _one_error_line(r), (extra, r.stderr)
    line = _one_error_line(p2p("retarget", str(text), "--target", "ue5"))
    assert "expected a take .npz or a .blend" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chain.json", "notes.txt"]
    # A character file that is not a humanoid: the list of what is missing.
    import bpy

    from pose2pose_mocap.retarget.blender.retarget import build_armature
    from pose2pose_mocap.retarget.targets import TargetBone, TargetSkeleton

    bpy.ops.wm.read_factory_settings(use_empty=True)
    build_armature(TargetSkeleton("tail", (TargetBone("a", None, (0, 0, 0), (0, 0, 1)),
                                           TargetBone("b", "a", (0, 0, 1), (0, 0, 2)))))
    tail = tmp_path / "tail.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(tail))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    line = _one_error_line(p2p("retarget", str(take), "--smplx", smplx, "--target", str(tail),
                               "-o", str(tmp_path / "x.blend")))
    assert "missing:" in line and "pelvis" in line
    assert not (tmp_path / "x.blend").exists()


def test_batch_target_exports_on_the_targets_skeleton(take, tmp_path):
    """``batch --target``: the worker's export stage on the target (bpy only, no
    estimation), the output names, the settings hash, and the up-front refusals."""
    import argparse
    import shutil

    from pose2pose_mocap.batch.cli_batch import add_batch_arguments, run_batch
    from pose2pose_mocap.batch.jobs import Clip, is_clip_output_name, settings_from_args
    from pose2pose_mocap.batch.worker import retarget_clip

    work = tmp_path / "out"
    work.mkdir()
    clip_take = shutil.copy(take, work / "clip.take.npz")
    from pose2pose_mocap.retarget.options import ConvertOptions

    from pose2pose_mocap.retarget.convert import convert_take

    convert_take(clip_take, standin_smplx_root(), work / "clip.blend")   # (the convert stage)
    spec = {"takes": [str(clip_take)], "convert": ConvertOptions().to_dict(),
            "smplx": str(standin_smplx_root()), "stages": ["export"],
            "export": {"preset": "unreal", "root": "grounded", "rest_frame": False,
                       "target": "ue5", "map": None, "target_armature": None,
                       "foot_ik": True}}
    res = retarget_clip(spec)
    assert res["ok"], res
    assert [p.split("/")[-1] for p in res["exports"]] == ["clip.ue5.unreal.fbx"]
    from tests.blender.test_export import read_with_assimp

    nodes = read_with_assimp(res["exports"][0])["nodes"]
    assert {"root", "pelvis", "spine_05", "thigh_twist_01_l"} <= set(nodes)

    clip = Clip(rel="clip.mp4", path=tmp_path / "clip.mp4", kind="video", out_dir=work,
                stem="clip")
    assert is_clip_output_name(clip, "clip.ue5.unreal.fbx")
    assert is_clip_output_name(clip, "clip.unreal.fbx")
    assert not is_clip_output_name(clip, "clip.ue5.nopreset.fbx")

    parser = add_batch_arguments(argparse.ArgumentParser())
    base = [str(tmp_path), "-o", str(tmp_path / "b")]
    plain = settings_from_args(parser.parse_args(base + ["--preset", "unreal"]))
    onto = settings_from_args(parser.parse_args(base + ["--preset", "unreal", "--target", "ue5"]))
    assert plain.export.get("target") is None and onto.export["target"] == "ue5"
    assert plain.hashes["convert"] == onto.hashes["convert"]
    assert plain.hashes["export"] != onto.hashes["export"]

    import io

    for extra, expect in ((["--target", "ue5"], "--target needs --preset"),
                          (["--preset", "unity", "--target", "nobody"], "unsupported target")):
        err = io.StringIO()
        code = run_batch(parser.parse_args(base + extra), out=io.StringIO(), err=err)
        assert code == 1 and expect in err.getvalue(), err.getvalue()
    assert not (tmp_path / "b").exists()
