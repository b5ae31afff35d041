"""``p2p-mocap export --target``: a game export that carries the character's skeleton (issue 15,
"done when"): the FBX of a retargeted Mixamo and UE5 Manny character, read back with libassimp,
has the target's bone names and hierarchy and, frame by frame, the motion the numpy solve gives
(bone heads in the file's axes and units)."""
from __future__ import annotations

import numpy as np
import pytest

from pose2pose_mocap.retarget import export_presets as ep

from tests.blender.test_export import assimp_world_positions, read_with_assimp
from tests.retarget.synthetic import make_take, random_params, standin_smplx_root

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender

T = 6


@pytest.fixture(scope="module")
def take_file(tmp_path_factory):
    from pose2pose_mocap.retarget.take import write_take

    folder = tmp_path_factory.mktemp("retarget_export")
    yield write_take(folder / "clip.take.npz", make_take(random_params(T, seed=5,
                                                                       max_angle=0.6)))
    bpy.ops.wm.read_factory_settings(use_empty=True)


@pytest.mark.parametrize("target,preset", [("mixamo", "unity"), ("ue5", "unreal")])
def test_fbx_of_a_retargeted_character_reads_back(target, preset, take_file, tmp_path,
                                                  capsys):
    from pose2pose_mocap.cli import main
    from pose2pose_mocap.retarget.blender.retarget import read_skeleton, source_pose
    from pose2pose_mocap.retarget.targets import get_target, retarget

    out = tmp_path / f"clip.{target}.{preset}.fbx"
    code = main(["export", str(take_file), "--preset", preset, "--target", target,
                 "--smplx", str(standin_smplx_root()), "--root", "camera", "-o", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert f"wrote {out}" in printed.out

    # The session still holds what was exported: the target armature with its retarget.
    arm = bpy.data.objects[target]
    rig = next(o for o in bpy.data.objects if "p2p_rig" in o)
    sk = read_skeleton(arm)
    tgt = get_target(target).with_skeleton(sk)
    motion = retarget(source_pose(rig), None, tgt, sk)
    names = list(sk.names)

    data = read_with_assimp(out)
    nodes = data["nodes"]
    assert set(names) <= set(nodes), sorted(set(names) - set(nodes))[:5]
    assert not [n for n in nodes if n.endswith("_end")]
    for b in sk.bones:   # the target's own hierarchy
        if b.parent is not None:
            assert nodes[b.name][0] == b.parent, (b.name, nodes[b.name][0], b.parent)
    assert not any(n in nodes for n in ("pelvis_smplx", "left_hip", "spine1")
                   if n not in names), "SMPL-X bones in the file"
    anim = max(data["anims"], key=lambda a: len(a["channels"]))
    assert set(names) <= set(anim["channels"])
    assert len(anim["channels"][tgt.mapping["pelvis"]][1]) == T

    p = ep.PRESETS[preset]
    got = assimp_world_positions(data, anim, names, T)
    want = ep.blender_to_file(motion.world_heads, p)         # --root camera: the scene's pose
    height = np.ptp(motion.world_heads[0][:, 2])
    err = np.linalg.norm(got - want, axis=-1).max() / p.file_scale
    assert err < 1e-4 * height, f"{target}: max bone position error {err:.2e} m"
    # The motion is the take's (not a still rest pose).
    assert np.linalg.norm(got[-1] - got[0], axis=-1).max() / p.file_scale > 0.05 * height


def _character_blend(path):
    """hero.blend: a Mixamo-named armature (object at 0.01 scale, turned, as an FBX import
    leaves it) with a skinned box mesh below it, offset and turned relative to the armature."""
    from mathutils import Matrix

    from pose2pose_mocap.retarget.blender.retarget import build_armature
    from pose2pose_mocap.retarget.targets import reference_skeleton

    bpy.ops.wm.read_factory_settings(use_empty=True)
    arm = build_armature(reference_skeleton("mixamo"), name="hero")
    me = bpy.data.meshes.new("hero body")
    verts = [(x, y, z) for x in (-20, 20) for y in (-10, 10) for z in (0, 170)]
    me.from_pydata(verts, [], [(0, 1, 3, 2), (4, 5, 7, 6), (0, 1, 5, 4), (2, 3, 7, 6)])
    body = bpy.data.objects.new("hero body", me)
    bpy.context.scene.collection.objects.link(body)
    body.parent = arm
    body.matrix_parent_inverse = Matrix.Identity(4)
    body.matrix_basis = Matrix.Translation((0.0, 3.0, 0.0))
    for name, idx in (("mixamorig:Hips", [0, 2, 4, 6]), ("mixamorig:Spine2", [1, 3, 5, 7])):
        body.vertex_groups.new(name=name).add(idx, 1.0, 'REPLACE')
    body.modifiers.new("Armature", 'ARMATURE').object = arm
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return path


def test_export_on_a_character_file_carries_its_skin(take_file, tmp_path, capsys):
    from pose2pose_mocap.cli import main

    hero = _character_blend(tmp_path / "hero.blend")
    before = hero.read_bytes()
    out = tmp_path / "clip.hero.unity.fbx"
    code = main(["export", str(take_file), "--preset", "unity", "--target", str(hero),
                 "--map", "mixamo", "--smplx", str(standin_smplx_root()), "-o", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert f"wrote {out}" in printed.out
    assert hero.read_bytes() == before
    data = read_with_assimp(out)
    skinned = [m for m in data["meshes"] if m["bones"]]
    assert len(skinned) == 1
    assert set(skinned[0]["bones"]) <= {b.name for b in bpy.data.objects["hero"].data.bones}
    assert "mixamorig:Hips" in skinned[0]["bones"]
    assert "mixamorig:LeftForeArm" in data["nodes"] and "pelvis" not in data["nodes"]
