"""Export presets (pure data) and the root-motion maths (numpy only, no Blender)."""
from __future__ import annotations

import argparse

import numpy as np
import pytest

from pose2pose_mocap.retarget import export_presets as ep
from pose2pose_mocap.retarget.rotations import rotation_x


def test_every_preset_states_its_settings():
    assert set(ep.PRESETS) == {"unity", "unreal", "godot", "blender", "gltf", "bvh", "usd"}
    for name, p in ep.PRESETS.items():
        assert p.name == name and p.format in ep.FORMATS and p.summary and p.why
        assert p.suffix == {"FBX": ".fbx", "GLB": ".glb", "BVH": ".bvh", "USD": ".usd"}[p.format]
        if p.format == "FBX":
            o = p.options
            assert o["add_leaf_bones"] is False and o["use_armature_deform_only"] is True
            assert o["bake_anim"] is True and o["bake_anim_simplify_factor"] == 0.0
            assert o["bake_anim_step"] == 1.0 and o["use_mesh_modifiers"] is False
            assert (o["axis_forward"], o["axis_up"]) == ("-Z", "Y")
            assert o["bake_space_transform"] is False
            assert o["object_types"] == {"ARMATURE", "MESH"}
            assert p.rename_armature == "Armature" and p.mesh
    assert ep.PRESETS["unity"].options["apply_scale_options"] == "FBX_SCALE_ALL"
    assert ep.PRESETS["unreal"].options["apply_scale_options"] == "FBX_SCALE_ALL"
    assert ep.PRESETS["godot"].options["apply_scale_options"] == "FBX_SCALE_UNITS"
    assert ep.PRESETS["blender"].options["apply_scale_options"] == "FBX_SCALE_NONE"
    assert ep.PRESETS["blender"].file_scale == 100.0 and ep.PRESETS["unity"].file_scale == 1.0
    g = ep.PRESETS["gltf"].options
    assert g["export_morph_animation"] and g["export_def_bones"] and g["export_force_sampling"]
    assert g["export_optimize_animation_size"] is False and g["use_active_scene"] is True
    assert not ep.PRESETS["bvh"].mesh


def test_preset_lookup_is_case_insensitive_and_says_the_names():
    assert ep.preset("Unity") is ep.PRESETS["unity"]
    with pytest.raises(KeyError, match="unity, unreal, godot, blender, gltf, bvh, usd"):
        ep.preset("maya")


def test_blender_to_file_is_y_up_front_plus_z():
    # Blender up (+Z) -> file +Y; Blender front of a character (-Y) -> file +Z.
    assert np.allclose(ep.blender_to_file([0, 0, 1], 1.0), [0, 1, 0])
    assert np.allclose(ep.blender_to_file([0, -1, 0], 1.0), [0, 0, 1])
    assert np.allclose(ep.blender_to_file([1, 0, 0], ep.PRESETS["blender"]), [100, 0, 0])
    assert np.isclose(np.linalg.det(ep.BLENDER_TO_FILE), 1.0)


def _turn_z(deg):
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])


@pytest.mark.parametrize("yaw", [0.0, 37.0, 90.0, 180.0, -123.0])
def test_grounding_faces_front_and_puts_feet_on_the_floor(yaw):
    R = _turn_z(yaw)
    offset = np.array([1.5, 4.0, 0.7])
    # A rest-like body facing -Y: left hip at +X, feet below.
    root, lh, rh = np.array([0, 0, 1.0]), np.array([0.1, 0, 0.95]), np.array([-0.1, 0, 0.95])
    feet = np.array([[0.1, -0.05, 0.08], [-0.1, 0.02, 0.03], [0.12, -0.1, 0.0]])
    move = lambda p: p @ R.T + offset  # noqa: E731
    assert np.allclose(ep.facing_direction(move(lh) - offset, move(rh) - offset), R @ [0, -1, 0])
    W = ep.grounding_transform(move(root), move(lh), move(rh), move(feet))
    apply = lambda p: p @ W[:3, :3].T + W[:3, 3]  # noqa: E731
    assert np.allclose(apply(move(root))[:2], 0.0, atol=1e-12)
    assert np.isclose(apply(move(feet))[:, 2].min(), 0.0)
    assert np.allclose(apply(move(lh)) - apply(move(rh)), [0.2, 0, 0], atol=1e-12)
    assert np.allclose(W[:3, :3] @ R, np.eye(3), atol=1e-12)  # the turn is undone


def test_root_modes():
    rng = np.random.default_rng(0)
    P = rng.normal(size=(5, 3))
    lh, rh = P[0] + [0.1, 0, 0], P[0] - [0.1, 0, 0]
    feet = P[0] - [0, 0, 0.9]
    cam = ep.root_transforms("camera", P, lh, rh, feet)
    assert np.allclose(cam, np.eye(4))
    g = ep.root_transforms("grounded", P, lh, rh, feet)
    assert np.allclose(g, g[0]) and np.isclose((g[0, :3, :3] @ feet + g[0, :3, 3])[2], 0.0)
    ip = ep.root_transforms("in_place", P, lh, rh, feet)
    moved = np.einsum("tab,tb->ta", ip[:, :3, :3], P) + ip[:, :3, 3]
    assert np.allclose(moved[:, :2], 0.0, atol=1e-12)
    assert np.allclose(np.diff(moved[:, 2]), np.diff(P[:, 2]))  # vertical motion kept
    with pytest.raises(ValueError, match="unknown root mode"):
        ep.root_transforms("floating", P, lh, rh, feet)
    with pytest.raises(ValueError, match="vertical"):
        ep.facing_direction([0, 0, 1.0], [0, 0, 0.0])


def test_rebase_root_moves_the_root_in_world_space():
    rng = np.random.default_rng(1)
    rest = np.eye(4)
    rest[:3, :3] = rotation_x(0.7)
    rest[:3, 3] = [0.1, -0.2, 0.9]
    basis = np.repeat(np.eye(4)[None], 3, axis=0)
    basis[:, :3, 3] = rng.normal(size=(3, 3))
    W = np.repeat(np.eye(4)[None], 3, axis=0)
    W[:, :3, :3] = _turn_z(30.0)
    W[:, :3, 3] = [1.0, 2.0, 3.0]
    new = ep.rebase_root(rest, basis, W)
    assert np.allclose(rest @ new, W @ rest @ basis)


def test_export_cli_arguments():
    from pose2pose_mocap.retarget.export_cli import add_export_arguments, default_export_output

    parser = add_export_arguments(argparse.ArgumentParser(prog="p2p-mocap export"))
    a = parser.parse_args(["clip.blend", "--preset", "unreal"])
    # --pose-correctives unset = the preset's choice (issue 13: game presets drop Pose* keys).
    assert (a.root, a.rest_frame, a.force, a.output, a.pose_correctives) == \
        ("grounded", False, False, None, None)
    from pose2pose_mocap.retarget.export_presets import PRESETS

    assert PRESETS["unreal"].pose_correctives is False and PRESETS["blender"].pose_correctives
    a = parser.parse_args(["t.npz", "--preset", "bvh", "-o", "x.bvh", "--root", "in_place",
                           "--rest-frame", "--force"])
    assert (a.root, a.rest_frame, a.force) == ("in_place", True, True)
    with pytest.raises(SystemExit):
        parser.parse_args(["clip.blend", "--preset", "maya"])
    with pytest.raises(SystemExit):
        parser.parse_args(["clip.blend"])
    from pathlib import Path

    assert default_export_output(Path("/a/clip.take.npz"), "unity") == Path("/a/clip.unity.fbx")
    assert default_export_output(Path("/a/clip.blend"), "gltf") == Path("/a/clip.glb")
