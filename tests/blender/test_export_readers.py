"""Exports as the readers users rely on see them (issue #13, items 1-5).

* the first key of every export is at time 0 (FBX and glTF key times read with
  libassimp and from the glTF JSON; BVH has no times: its first frame);
* a round trip through Blender's own importers with their default options lands
  the keys on the take's frames (FBX, BVH) or on the frames glTF's importer
  defines (time x fps: the take's frames - 1);
* a glTF has exactly one animation, named after the take, with the bone channels
  and the morph weights together (three.js plays ``animations[0]``).

The files are exported from a take ``.npz`` (built in the running session, which
is reset) once per preset and shared by the tests of this module.
"""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from pose2pose_mocap.retarget import export_presets as ep
from pose2pose_mocap.retarget.take import write_take

from tests.blender.test_export import read_bvh, read_with_assimp
from tests.retarget.synthetic import standin_smplx_root, take_arrays

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender

TAKE_NAME = "clip"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``preset -> ExportResult`` of the take ``clip.take.npz`` (exported on first use)."""
    folder = tmp_path_factory.mktemp("export_readers")
    take = write_take(folder / f"{TAKE_NAME}.take.npz", take_arrays(T=6))
    cache: dict = {}

    def get(preset, **kw):
        from pose2pose_mocap.retarget.blender.export import export_scene

        key = (preset, tuple(sorted(kw.items())))
        if key not in cache:
            p = ep.PRESETS[preset]
            out = folder / f"{TAKE_NAME}.{preset}{len(cache)}{p.suffix}"
            cache[key] = export_scene(take, preset, out, smplx=standin_smplx_root(), **kw)
        return cache[key]

    yield get
    bpy.ops.wm.read_factory_settings(use_empty=True)


def read_glb_json(path) -> dict:
    blob = open(path, "rb").read()
    magic, _version, _length = struct.unpack_from("<4sII", blob, 0)
    assert magic == b"glTF"
    jlen, jtype = struct.unpack_from("<I4s", blob, 12)
    assert jtype == b"JSON"
    return json.loads(blob[20:20 + jlen])


FBX_PRESETS = [n for n, p in ep.PRESETS.items() if p.format == "FBX"]


@pytest.mark.parametrize("preset", FBX_PRESETS + ["gltf"])
def test_first_key_at_time_zero(preset, exported):
    result = exported(preset)
    data = read_with_assimp(result.path)
    assert [a["name"] for a in data["anims"]] == [TAKE_NAME]  # one take, named after it
    n = len(result.frames)
    for anim in data["anims"]:
        for name, (pos, rot, _scl) in anim["channels"].items():
            times = np.array([k[0] for k in rot]) / anim["tps"]
            assert times[0] == pytest.approx(0.0, abs=1e-9), (name, times[:3])
            assert len(times) == n
            assert times[-1] == pytest.approx((n - 1) / result.fps, rel=1e-6)
    if result.preset.format == "GLB":
        gltf = read_glb_json(result.path)
        inputs = {s["input"] for a in gltf["animations"] for s in a["samplers"]}
        for i in inputs:
            assert gltf["accessors"][i]["min"] == [pytest.approx(0.0, abs=1e-9)]


def test_rest_frame_is_at_time_zero(exported):
    result = exported("unity", rest_frame=True)
    data = read_with_assimp(result.path)
    anim = max(data["anims"], key=lambda a: len(a["channels"]))
    times = np.array([k[0] for k in anim["channels"]["pelvis"][1]]) / anim["tps"]
    assert len(times) == len(result.frames) and times[0] == pytest.approx(0.0, abs=1e-9)


def test_gltf_has_one_animation_named_after_the_take(exported):
    result = exported("gltf")
    gltf = read_glb_json(result.path)
    anims = gltf["animations"]
    assert len(anims) == 1, [a.get("name") for a in anims]
    assert anims[0]["name"] == TAKE_NAME
    paths = {c["target"]["path"] for c in anims[0]["channels"]}
    assert {"rotation", "translation", "weights"} <= paths, paths
    bones = {gltf["nodes"][c["target"]["node"]]["name"] for c in anims[0]["channels"]
             if c["target"]["path"] == "rotation"}
    assert {"pelvis", "left_foot", "jaw"} <= bones
    counts = {gltf["accessors"][s["input"]]["count"] for s in anims[0]["samplers"]}
    assert counts == {len(result.frames)}


def _imported_key_frames() -> tuple[float, float]:
    """First and last key frame of every action in the session (after an import)."""
    from pose2pose_mocap.retarget.blender.export import _action_fcurves

    lo, hi = np.inf, -np.inf
    for act in bpy.data.actions:
        for fc in _action_fcurves(act):
            n = len(fc.keyframe_points)
            if n == 0:
                continue
            co = np.empty(2 * n)
            fc.keyframe_points.foreach_get("co", co)
            lo, hi = min(lo, co[0::2].min()), max(hi, co[0::2].max())
    return lo, hi


@pytest.mark.parametrize("preset", ["blender", "unity", "gltf", "bvh"])
def test_round_trip_with_blenders_default_importers(preset, exported):
    result = exported(preset)
    first, last = int(result.frames[0]), int(result.frames[-1])
    assert first == 1  # the take's scene starts at frame 1
    bpy.ops.wm.read_factory_settings(use_empty=True)
    fmt = result.preset.format
    if fmt == "FBX":
        assert "FINISHED" in bpy.ops.import_scene.fbx(filepath=str(result.path))
    elif fmt == "GLB":
        # glTF has times, not frames or a rate: its importer uses the scene's fps.
        bpy.context.scene.render.fps, bpy.context.scene.render.fps_base = round(result.fps), 1
        assert "FINISHED" in bpy.ops.import_scene.gltf(filepath=str(result.path))
    else:
        assert "FINISHED" in bpy.ops.import_anim.bvh(filepath=str(result.path))
    lo, hi = _imported_key_frames()
    if fmt == "GLB":
        # Blender's glTF importer puts time t on frame t x fps: time 0 is frame 0.
        first, last = first - 1, last - 1
    assert (lo, hi) == (pytest.approx(first, abs=1e-3), pytest.approx(last, abs=1e-3)), \
        f"{preset}: keys on frames {lo:g}..{hi:g}, the take is on {first}..{last}"


def _glb_target_names(path) -> list:
    gltf = read_glb_json(path)
    return [n for m in gltf["meshes"] for n in m.get("extras", {}).get("targetNames", [])]


def _fbx_target_names(path) -> list:
    return [t for m in read_with_assimp(path)["meshes"] for t in m["targets"]]


@pytest.mark.slow
def test_game_presets_drop_pose_correctives(tmp_path):
    """From a .blend whose rig has the 486 Pose* keys and from a take: off by default for
    the game presets, kept with pose_correctives=True (--pose-correctives on)."""
    from pose2pose_mocap.retarget.blender.export import export_scene
    from pose2pose_mocap.retarget.convert import convert_take

    take = write_take(tmp_path / "clip.take.npz", take_arrays(T=3))
    blend = convert_take(take, standin_smplx_root(), pose_correctives=True)
    smplx = standin_smplx_root()
    notes: list = []
    r = export_scene(blend, "unity", tmp_path / "game.fbx", notes=notes)
    names = _fbx_target_names(r.path)
    assert [f"Exp{k:03d}" for k in range(10)] == names[:10]
    assert not [n for n in names if n.startswith("Pose")], "Pose* correctives in a game export"
    assert not [n for n in r.shape_keys if n.startswith("Pose")]
    assert any("486 pose-corrective shape keys" in n for n in notes), notes
    r = export_scene(blend, "unity", tmp_path / "kept.fbx", pose_correctives=True)
    assert len([n for n in _fbx_target_names(r.path) if n.startswith("Pose")]) == 486
    r = export_scene(blend, "gltf", tmp_path / "game.glb")
    assert not [n for n in _glb_target_names(r.path) if n.startswith("Pose")]
    r = export_scene(take, "gltf", tmp_path / "take.glb", smplx=smplx)
    names = _glb_target_names(r.path)
    assert "Exp000" in names and not [n for n in names if n.startswith("Pose")]
    r = export_scene(take, "gltf", tmp_path / "take_kept.glb", smplx=smplx,
                     pose_correctives=True)
    assert len([n for n in _glb_target_names(r.path) if n.startswith("Pose")]) == 486
    # The round-trip preset keeps them by default.
    r = export_scene(blend, "blender", tmp_path / "round.fbx")
    assert len([n for n in _fbx_target_names(r.path) if n.startswith("Pose")]) == 486
    bpy.ops.wm.read_factory_settings(use_empty=True)


def readme_export_table() -> dict:
    """``preset -> {column: text}`` from docs/export-presets.md's 'What each file says' table."""
    from pathlib import Path

    page = Path(__file__).resolve().parents[2] / "docs" / "export-presets.md"
    text = page.read_text(encoding="utf-8")
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.startswith("| preset | format | file unit | axes |"))
    head = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = dict(zip(head, cells))
    return rows


_AXES = {0: "X", 1: "Y", 2: "Z"}


@pytest.mark.parametrize("preset", list(ep.PRESETS))
def test_file_header_says_what_the_readme_says(preset, exported, tmp_path):
    """Unit scale, axes, fps and first key of each preset's FBX header against the table in
    docs/export-presets.md (and the help text: no preset claims a centimetre file with a metre
    header)."""
    import re

    from tests.blender.test_export import fbx_header_properties

    table = readme_export_table()
    assert preset in table, f"docs/export-presets.md's export table has no row for {preset}"
    row = table[preset]
    p = ep.PRESETS[preset]
    assert row["format"] == p.format
    if p.format != "FBX":
        return
    result = exported(preset)
    head = fbx_header_properties(result.path, tmp_path)
    factor = float(re.search(r"UnitScaleFactor (\d+(?:\.\d+)?)", row["file unit"]).group(1))
    assert head["UnitScaleFactor"] == pytest.approx(factor)
    unit = "1 m" if factor == 100 else "1 cm"
    assert row["file unit"].startswith(unit)
    axes = (f"{'+' if head['UpAxisSign'] > 0 else '-'}{_AXES[head['UpAxis']]} up, "
            f"{'+' if head['FrontAxisSign'] > 0 else '-'}{_AXES[head['FrontAxis']]} front, "
            f"{'+' if head['CoordAxisSign'] > 0 else '-'}{_AXES[head['CoordAxis']]} right")
    assert row["axes"] == axes
    assert row["frame rate"] == "the take's fps"
    assert head["CustomFrameRate"] == pytest.approx(result.fps)
    assert row["first key"] == "0 s" and head["TimeSpanStart"] == 0
    # The help text (the preset's summary and reasons) tells the same unit.
    words = (p.summary + " ".join(p.why.values())).lower()
    if unit == "1 m":
        assert "centimetre file" not in words and "1 unit = 1 m" in words, p.summary
    else:
        assert "1 unit = 1 cm" in words, p.summary


def _node_world_positions(data, names) -> np.ndarray:
    """Bind-pose world positions of ``names`` from the file's node hierarchy (no animation)."""
    nodes = data["nodes"]
    world: dict = {}

    def get(n):
        if n not in world:
            parent, local = nodes[n]
            world[n] = local if parent is None else get(parent) @ local
        return world[n]

    return np.array([get(n)[:3, 3] for n in names])


def _fbx_deform_percents(path, tmp_dir) -> list:
    """Every blend-shape channel's DeformPercent (its weight in the file's own pose)."""
    import os
    import shutil
    import subprocess
    import sys

    tool = os.path.join(bpy.utils.system_resource('SCRIPTS'), "addons_core", "io_scene_fbx",
                        "fbx2json.py")
    copy = os.path.join(tmp_dir, "bind_check.fbx")
    shutil.copyfile(path, copy)
    subprocess.run([sys.executable, tool, copy], check=True, capture_output=True)
    tree = json.load(open(copy[:-4] + ".json"))
    out = []

    def walk(items):
        for name, values, _types, children in items:
            if name == "DeformPercent":
                out.append(float(values[0]))
            walk(children)

    walk(tree)
    return out


@pytest.mark.parametrize("preset", ["unity", "blender", "gltf"])
@pytest.mark.parametrize("root", ["grounded", "camera"])
def test_bind_pose_on_the_floor_with_a_neutral_face(preset, root, exported, tmp_path):
    """The file's bind pose: standing on the floor at the origin, facing the engine's forward
    (+Z; the left hip at +X), every shape-key weight 0 (whatever the root mode)."""
    result = exported(preset, root=root)
    data = read_with_assimp(result.path)
    names = ["pelvis", *ep.HIP_JOINTS, *ep.FOOT_JOINTS]
    pos = _node_world_positions(data, names) / result.preset.file_scale
    i = {n: k for k, n in enumerate(names)}
    feet = pos[[i[n] for n in ep.FOOT_JOINTS]]
    assert feet[:, 1].min() >= -1e-4, f"{preset}: bind-pose feet {feet[:, 1].min():.3f} m"
    assert feet[:, 1].min() < 0.15     # the foot vertices reach lower than the joints
    assert np.abs(pos[i["pelvis"], [0, 2]]).max() < 1e-4
    side = pos[i["left_hip"]] - pos[i["right_hip"]]
    assert side[0] > 0 and abs(side[2]) < 1e-3
    if result.preset.format == "GLB":
        gltf = read_glb_json(result.path)
        weights = [w for m in gltf["meshes"] for w in m.get("weights", [])]
    else:
        weights = _fbx_deform_percents(result.path, tmp_path)
    assert weights and max(abs(w) for w in weights) < 1e-9, "bind pose with non-zero weights"


_VALIDATE_JS = r"""
const fs = require('fs');
const validator = require(process.argv[1]);
const data = new Uint8Array(fs.readFileSync(process.argv[2]));
validator.validateBytes(data, {maxIssues: 100}).then((report) => {
    console.log(JSON.stringify(report));
}).catch((err) => { console.error(String(err)); process.exit(2); });
"""


def gltf_validator() -> tuple[str, str]:
    """``(node, package folder)`` of the Khronos glTF-Validator, or a loud skip.

    ``.ci/run`` installs it with ``npm install --prefix .node gltf-validator``; set
    ``P2P_GLTF_VALIDATOR`` to another package folder. Under ``CI=true`` a missing
    validator is a failure.
    """
    import os
    import shutil
    from pathlib import Path

    node = shutil.which("node")
    pkg = os.environ.get("P2P_GLTF_VALIDATOR") or str(
        Path(__file__).resolve().parents[2] / ".node" / "node_modules" / "gltf-validator")
    missing = ("Node.js (node) is not installed" if node is None else
               None if Path(pkg, "package.json").is_file() else
               f"the npm package gltf-validator is not in {pkg}")
    if missing:
        msg = (f"{missing}: the Khronos glTF-Validator check needs it "
               "(npm install --prefix .node gltf-validator, as .ci/run does)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true: " + msg)
        pytest.skip("!!! NOT VALIDATED by the Khronos glTF-Validator: " + msg)
    return node, pkg


@pytest.mark.parametrize("kw", [{}, {"rest_frame": True}, {"pose_correctives": True}],
                         ids=["default", "rest_frame", "pose_correctives"])
def test_gltf_passes_the_khronos_validator(kw, exported, tmp_path):
    import subprocess

    node, pkg = gltf_validator()
    result = exported("gltf", **kw)
    run = subprocess.run([node, "-e", _VALIDATE_JS, pkg, str(result.path)], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    issues = report["issues"]
    errors = [m for m in issues.get("messages", []) if m.get("severity") == 0]
    print(f"\nglTF-Validator {report.get('validatorVersion')}: {issues['numErrors']} errors, "
          f"{issues['numWarnings']} warnings, {issues['numInfos']} infos")
    assert issues["numErrors"] == 0, errors[:10]
    assert report["info"]["animationCount"] == 1
