# SPDX-License-Identifier: GPL-3.0-or-later
"""Export a rig's take for game engines through Blender's own exporters (FBX, glTF, BVH).

``export_scene`` never changes the user's scene: it bakes what the scene
plays (NLA and all) frame by frame into fresh actions on a **temporary copy**
of the rig (armature + body mesh with its shape keys) in a temporary scene,
applies the root mode there (``retarget.export_presets``), exports that scene
with the preset's options, and deletes everything it made; the scene's
current frame, the window's scene and any object it had to rename are
restored. The file is written to a hidden temporary name in the output
folder and committed without replacing (``common.files.atomic_write``); an
existing file is only replaced with ``overwrite=True``. What the exporters
print stays off the terminal; a failure (disk full, read-only folder, an
exporter error) is one line naming the file and the cause.

Inputs: ``None`` / a ``bpy.types.Scene`` (the running session, e.g. inside
Blender), a ``.blend`` path (opened into the running session; the file on
disk is never written), or a take ``.npz`` (built into an empty session by
``retarget.convert.build_take``, as ``convert`` builds it). The last two reset the running session:
for the CLI and batch use.

Frames: Blender's FBX, glTF and BVH exporters write one key per frame of the
scene's range, including the frames between sparse take rows (interpolated),
so an export's size and time grow with the frame span, not with the rows
(about 4 KB and 3 ms per frame for an FBX with the mesh). Exports of more than
``EXPORT_MAX_FRAMES`` (18,000: 10 minutes at 30 fps, ~75 MB of FBX) frames are
refused with one line, before anything is built. The bake itself evaluates
the scene only on the frames that carry keys (plus the range's ends and
NLA strip edges) when everything between them is linear interpolation of
those keys (``_keyed_frames``: the rigs this project builds); the copy is
keyed on those frames and the exporter interpolates between them exactly as
the scene does. Otherwise (constraints, drivers, non-linear keys) every frame
is baked.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np

from ...common.files import atomic_write, remove_stale_temps
from ..convert import check_output_file
from ..errors import RetargetError
from ..export_presets import (FOOT_JOINTS, HIP_JOINTS, ROOT_JOINT, ROOT_MODES, BLENDER_TO_FILE,
                              ExportPreset, grounding_transform, preset as get_preset,
                              rebase_root, root_transforms)
from ..rotations import matrix_to_quaternion, quaternion_continuity
from .fcurves import Curve, action_channelbag, write_curves
from .output import blender_write, exists_as_retarget_error

POSE_CORRECTIVE_PREFIX = "Pose"  # the rig's pose-corrective shape keys: Pose000..Pose485
FOOT_VERTEX_WEIGHT = 0.5  # body vertices at least this much bound to an ankle/foot bone
EXPORT_MAX_FRAMES = 18_000  # frames one export may sample (the exporters key every frame)


@dataclass
class ExportResult:
    path: Path
    preset: ExportPreset
    root: str
    frames: np.ndarray          # (n,) exported Blender frames (rest frame first if any)
    fps: float
    bone_names: list
    world: np.ndarray           # (n, 4, 4): exported world pose = world[k] @ scene's (rest: eye)
    shape_keys: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    baked_frames: np.ndarray | None = None  # the frames evaluated and keyed (others interpolate)


# --------------------------------------------------------------------------- inputs

def _check_output(out, p: ExportPreset, overwrite: bool) -> Path:
    return check_output_file(out, p.suffix, overwrite, f"the {p.name} preset writes a {p.suffix} file")


def check_export_span(n_frames: int, what: str) -> None:
    """Refuse an export of more than EXPORT_MAX_FRAMES frames (one line)."""
    if n_frames > EXPORT_MAX_FRAMES:
        raise RetargetError(f"{what}; an export writes a key on every frame and is limited to "
                            f"{EXPORT_MAX_FRAMES:,} frames (about 10 minutes at 30 fps)")


def _load_source(source, *, smplx=None, pose_correctives=False, notes=None, rest_frame=False):
    """The scene to export from (opening a .blend or building a take if given a path)."""
    if source is None:
        return bpy.context.scene
    if isinstance(source, bpy.types.Scene):
        return source
    path = Path(source).expanduser()
    if not path.is_file():
        raise RetargetError(f"{path}: no such file")
    if path.suffix.lower() == ".blend":
        from .output import captured_output

        try:
            with captured_output():   # (Blender's own "Read blend" line)
                bpy.ops.wm.open_mainfile(filepath=str(path), load_ui=False)
        except RuntimeError as exc:
            raise RetargetError(f"{path}: Blender cannot open it ({str(exc).strip()})") from None
        return bpy.context.scene
    if path.suffix.lower() == ".npz":
        from ..convert import build_take
        from ..options import ConvertOptions

        def check_span(take):
            span = int(take.frame_index[-1] - take.frame_index[0]) + 1
            check_export_span(span + int(rest_frame), f"{path.name}: the take spans {span:,} "
                              "frames" + (" (and the rest frame)" if rest_frame else ""))

        build_take(path, smplx, ConvertOptions(pose_correctives=pose_correctives),
                   notes=notes, check_take=check_span)
        return bpy.context.scene
    raise RetargetError(f"{path}: expected a .blend scene or a take .npz")


def find_armature(scene, name: str | None = None):
    """The armature to export: ``name``, else the scene's only SMPL-X rig (or only armature)."""
    if name:
        ob = scene.objects.get(name)
        if ob is None or ob.type != 'ARMATURE':
            raise RetargetError(f"no armature called {name!r} in scene {scene.name!r}")
        return ob
    arms = [o for o in scene.objects if o.type == 'ARMATURE']
    rigs = [o for o in arms if "p2p_rig" in o] or arms
    if not rigs:
        raise RetargetError(f"scene {scene.name!r} has no armature to export")
    if len(rigs) > 1:
        raise RetargetError(f"scene {scene.name!r} has several rigs "
                            f"({', '.join(o.name for o in rigs)}); pick one with --armature")
    return rigs[0]


def _body_mesh(arm):
    name = arm.get("p2p_mesh")
    ob = bpy.data.objects.get(name) if name else None
    if ob is None or ob.parent != arm:
        ob = next((c for c in arm.children if c.type == 'MESH'), None)
    return ob


# --------------------------------------------------------------------------- baking

def _action_fcurves(action):
    """Every F-curve of an action (all layers, strips and slots on 4.4+)."""
    if hasattr(action, "layers") and len(action.layers):
        out = []
        for layer in action.layers:
            for strip in layer.strips:
                for bag in getattr(strip, "channelbags", ()):
                    out.extend(bag.fcurves)
        return out
    return list(getattr(action, "fcurves", ()))


def _linear_key_frames(fcurves, offset: float, lo: float, hi: float, check) -> set | None:
    """Key frames (+ ``offset``) of F-curves that are linear between keys; None if not."""
    linear = bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items["LINEAR"].value
    out = set()
    for fc in fcurves:
        if fc.mute:
            continue
        if len(fc.modifiers) or not check(fc):
            return None
        n = len(fc.keyframe_points)
        if n == 0:
            continue
        co = np.empty(2 * n, dtype=np.float64)
        fc.keyframe_points.foreach_get("co", co)
        interp = np.empty(n, dtype=np.int32)
        fc.keyframe_points.foreach_get("interpolation", interp)
        if n > 1 and (interp[:-1] != linear).any():
            return None
        f = co[0::2]
        if not np.allclose(f, np.round(f), atol=1e-4) or fc.extrapolation != 'CONSTANT':
            return None
        f = np.round(f).astype(np.int64)
        out.update(int(x) + int(offset) for x in f if lo <= x <= hi)
    return out


def _keyed_frames(scene, arm, mesh_obj, start: int, end: int):
    """The frames to bake when the scene's motion is linear between keys, else None.

    Sorted scene frames in ``start .. end``: every key of the rig's actions (its
    active action and NLA strips, and its body mesh's shape keys), the range's
    ends and one frame either side of every NLA strip's ends. None (bake every
    frame) as soon as anything could make a frame between keys differ from the
    linear interpolation of its neighbours: constraints, drivers, a parent,
    non-quaternion rotations, non-linear keys or F-curve modifiers, object-level
    animation, NLA strips that are scaled, repeated, blended or time-mapped,
    tweak mode, solo tracks, shape keys keyed beyond their slider range.
    """
    import re

    r = scene.render
    if (r.frame_map_old != r.frame_map_new or arm.parent is not None or len(arm.constraints)
            or any(len(pb.constraints) or pb.rotation_mode != 'QUATERNION'
                   for pb in arm.pose.bones)):
        return None
    key = mesh_obj.data.shape_keys if mesh_obj is not None else None
    frames = {start, end}

    def bone_curve(fc):
        return fc.data_path.startswith("pose.bones[") and not fc.data_path.endswith(
            ("rotation_euler", "rotation_axis_angle"))

    def key_curve(fc):
        m = re.fullmatch(r'key_blocks\["(.+)"\]\.value', fc.data_path)
        kb = key.key_blocks.get(m.group(1)) if m else None
        if kb is None:
            return False
        n = len(fc.keyframe_points)
        co = np.empty(2 * n, dtype=np.float64)
        fc.keyframe_points.foreach_get("co", co)
        return bool(n == 0 or (co[1::2].min() >= kb.slider_min - 1e-6
                                and co[1::2].max() <= kb.slider_max + 1e-6))

    for id_data, check in ((arm, bone_curve), (key, key_curve)):
        ad = id_data.animation_data if id_data is not None else None
        if ad is None:
            continue
        if len(ad.drivers) or ad.use_tweak_mode:
            return None
        if ad.action is not None:
            if ad.action_blend_type != 'REPLACE' or ad.action_influence != 1.0:
                return None
            got = _linear_key_frames(_action_fcurves(ad.action), 0, -np.inf, np.inf, check)
            if got is None:
                return None
            frames |= got
        if not ad.use_nla:
            continue
        for track in ad.nla_tracks:
            if track.is_solo:
                return None
            if track.mute:
                continue
            for strip in track.strips:
                if strip.mute or strip.action is None:
                    continue
                if (strip.scale != 1.0 or strip.repeat != 1.0 or strip.use_reverse
                        or strip.use_animated_time or strip.use_animated_influence
                        or strip.blend_in or strip.blend_out or strip.blend_type != 'REPLACE'
                        or len(strip.fcurves)
                        or strip.frame_start != round(strip.frame_start)
                        or strip.action_frame_start != round(strip.action_frame_start)):
                    return None
                offset = strip.frame_start - strip.action_frame_start
                got = _linear_key_frames(_action_fcurves(strip.action), offset,
                                         strip.action_frame_start, strip.action_frame_end,
                                         check)
                if got is None:
                    return None
                frames |= got
                s0, s1 = int(strip.frame_start), int(round(strip.frame_end))
                frames |= {s0 - 1, s0, s1, s1 + 1}
    out = np.array(sorted(f for f in frames if start <= f <= end), dtype=np.int64)
    return out


def _deform_bones(arm):
    return [b.name for b in arm.data.bones if b.use_deform]


def _foot_vertices(mesh_obj, bone_names):
    if mesh_obj is None:
        return np.zeros(0, dtype=np.int64)
    groups = {vg.index for vg in mesh_obj.vertex_groups if vg.name in bone_names}
    idx = [v.index for v in mesh_obj.data.vertices
           if any(g.group in groups and g.weight >= FOOT_VERTEX_WEIGHT for g in v.groups)]
    return np.asarray(idx, dtype=np.int64)


def _evaluated_vertices(mesh_obj, dg, idx):
    ev = mesh_obj.evaluated_get(dg)
    me = ev.to_mesh()
    try:
        co = np.empty(len(me.vertices) * 3, dtype=np.float32)
        me.vertices.foreach_get("co", co)
    finally:
        ev.to_mesh_clear()
    mw = np.array(ev.matrix_world, dtype=np.float64)
    co = co.reshape(-1, 3)[idx].astype(np.float64)
    return co @ mw[:3, :3].T + mw[:3, 3]


def _bake(scene, arm, mesh_obj, bones, frames, foot_bones=FOOT_JOINTS):
    """Per frame: every bone's matrix_basis, the posed heads (world), shape-key values.

    The pose channels and key values are read in bulk (``foreach_get``, as ``rig.py``
    reads the rest matrices), one call per frame, not per bone and shape key.
    """
    key = mesh_obj.data.shape_keys if mesh_obj is not None else None
    key_names = [kb.name for kb in key.key_blocks][1:] if key is not None else []
    T, J = len(frames), len(bones)
    pose = np.empty((T, J, 4, 4))
    heads = np.empty((T, J, 3))
    values = np.empty((T, len(key_names)))
    feet = None
    foot_idx = _foot_vertices(mesh_obj, [b for b in foot_bones if b in bones])
    mw0 = None
    order = None
    mat_buf = key_buf = None
    for t, f in enumerate(frames):
        scene.frame_set(int(f))
        dg = bpy.context.evaluated_depsgraph_get()
        ev = arm.evaluated_get(dg)
        mw = np.array(ev.matrix_world, dtype=np.float64)
        if mw0 is None:
            mw0 = mw
        pbones = ev.pose.bones
        if order is None:
            order = np.array([pbones.find(n) for n in bones], dtype=np.intp)
            mat_buf = np.empty(len(pbones) * 16, dtype=np.float32)
            if key is not None:
                key_buf = np.empty(len(key.key_blocks), dtype=np.float32)
        pbones.foreach_get("matrix", mat_buf)   # column-major 4x4 per bone (RNA order)
        pose[t] = mat_buf.reshape(-1, 4, 4).transpose(0, 2, 1)[order]
        heads[t] = pose[t, :, :3, 3] @ mw[:3, :3].T + mw[:3, 3]
        if key is not None:
            key.key_blocks.foreach_get("value", key_buf)
            values[t] = key_buf[1:]
        if t == 0 and foot_idx.size:
            feet = _evaluated_vertices(mesh_obj, dg, foot_idx)
    return _basis_from_pose(arm, bones, pose), heads, key_names, values, feet, mw0


def _basis_from_pose(arm, bones, pose):
    """``matrix_basis`` that reproduces the evaluated armature-space ``pose (T, J, 4, 4)``.

    Evaluated matrices include constraints and drivers, which the copy does not
    have: ``M_i = M_p Rest_p^-1 Rest_i Basis_i`` (bones inheriting rotation and
    scale, Blender's default) solved for ``Basis_i``.
    """
    rest = np.array([np.array(arm.data.bones[n].matrix_local, dtype=np.float64) for n in bones])
    rest_inv = np.linalg.inv(rest)
    index = {n: j for j, n in enumerate(bones)}
    basis = np.empty_like(pose)
    for j, n in enumerate(bones):
        parent = arm.data.bones[n].parent
        if parent is None:
            basis[:, j] = rest_inv[j] @ pose[:, j]
        else:
            p = index[parent.name]
            basis[:, j] = rest_inv[j] @ rest[p] @ np.linalg.inv(pose[:, p]) @ pose[:, j]
    return basis


# --------------------------------------------------------------------------- temp copy

def _copy_rig(arm, mesh_obj, scene_tmp, name):
    arm_c = arm.copy()
    arm_c.data = arm.data.copy()
    arm_c.animation_data_clear()
    arm_c.parent = None
    scene_tmp.collection.objects.link(arm_c)
    arm_c.matrix_world = ((1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, 1))
    for pb in arm_c.pose.bones:
        pb.rotation_mode = 'QUATERNION'
        for con in list(pb.constraints):
            pb.constraints.remove(con)
    made = [arm_c, arm_c.data]
    mesh_c = None
    if mesh_obj is not None:
        mesh_c = mesh_obj.copy()
        mesh_c.data = mesh_obj.data.copy()
        mesh_c.animation_data_clear()
        if mesh_c.data.shape_keys is not None:
            mesh_c.data.shape_keys.animation_data_clear()
            made.append(mesh_c.data.shape_keys)
        for m in list(mesh_c.modifiers):
            if m.type != 'ARMATURE':
                mesh_c.modifiers.remove(m)
            else:
                m.object = arm_c
        scene_tmp.collection.objects.link(mesh_c)
        rel = np.linalg.inv(np.array(arm.matrix_world)) @ np.array(mesh_obj.matrix_world)
        mesh_c.parent = arm_c
        mesh_c.matrix_parent_inverse = ((1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, 1))
        from mathutils import Matrix   # (a nested list would be read column by column)

        mesh_c.matrix_basis = Matrix([list(map(float, r)) for r in rel])
        made += [mesh_c, mesh_c.data]
    if name:
        arm_c.name = name
    return arm_c, mesh_c, made


def _bind_transform(arm, mesh_obj, bones, root_bone=ROOT_JOINT, hip_bones=HIP_JOINTS,
                    foot_bones=FOOT_JOINTS) -> np.ndarray:
    """Rigid 4x4 (armature space) that stands the rest pose on the floor at the origin.

    Facing Blender's front (-Y), the pelvis over the origin, the lowest rest foot point
    (ankle/foot heads and foot vertices) at Z = 0; the identity for a rig without these
    bones.
    """
    if any(b not in bones for b in (root_bone, *hip_bones, *foot_bones)):
        return np.eye(4)
    heads = {n: np.array(arm.data.bones[n].head_local, np.float64)
             for n in (root_bone, *hip_bones, *foot_bones)}
    feet = np.array([heads[n] for n in foot_bones])
    if mesh_obj is not None:
        fidx = _foot_vertices(mesh_obj, list(foot_bones))
        if fidx.size:
            co = np.empty(len(mesh_obj.data.vertices) * 3, np.float32)
            mesh_obj.data.vertices.foreach_get("co", co)
            rel = np.linalg.inv(np.array(arm.matrix_world)) @ np.array(mesh_obj.matrix_world)
            pts = co.reshape(-1, 3)[fidx].astype(np.float64) @ rel[:3, :3].T + rel[:3, 3]
            feet = np.concatenate([feet, pts])
    return grounding_transform(heads[root_bone], heads[hip_bones[0]], heads[hip_bones[1]],
                               feet)


def _move_rest(arm_c, mesh_c, bind: np.ndarray) -> None:
    """Move the copy's rest skeleton and body (with its shape keys) by ``bind``."""
    if np.allclose(bind, np.eye(4)):
        return
    from mathutils import Matrix

    arm_c.data.transform(Matrix([list(map(float, r)) for r in bind]))
    if mesh_c is not None:
        rel = np.array(mesh_c.matrix_basis, dtype=np.float64)  # mesh -> armature space
        m = np.linalg.inv(rel) @ bind @ rel
        mesh_c.data.transform(Matrix([list(map(float, r)) for r in m]), shape_keys=True)


def _remove_shape_keys(mesh_c, names: set) -> None:
    """Remove the shape keys called ``names`` from the copy's body (never the user's)."""
    for kb in [kb for kb in mesh_c.data.shape_keys.key_blocks if kb.name in names]:
        mesh_c.shape_key_remove(kb)


def _assign(id_data, action, bag):
    ad = id_data.animation_data or id_data.animation_data_create()
    ad.action = action
    if bag.slot is not None and getattr(ad, "action_slot", bag.slot) is None:
        ad.action_slot = bag.slot


def _write_bake(arm_c, mesh_c, bones, frames, basis, key_names, values, neutral_at=None):
    """Key the copy; ``neutral_at``: a frame before the exported range with the bind pose
    (every bone at rest, every shape key 0): the scene sits there while the file is
    written, so the file's own pose and weights (FBX nodes and DeformPercent, glTF mesh
    weights) are the bind pose with a neutral face."""
    made = []
    if neutral_at is not None:   # the bind pose: every bone at its (moved) rest
        frames = np.asarray(frames)
        bone_frames = np.concatenate([[neutral_at], frames])
        basis = np.concatenate([np.repeat(np.eye(4)[None, None], basis.shape[1], axis=1),
                                basis])
    else:
        bone_frames = frames
    quats = quaternion_continuity(matrix_to_quaternion(basis[..., :3, :3]), axis=0)
    locs = basis[..., :3, 3]
    curves = []
    for j, n in enumerate(bones):
        base = f'pose.bones["{n}"]'
        for c in range(4):
            curves.append(Curve(f"{base}.rotation_quaternion", c, quats[:, j, c], n))
        for c in range(3):
            curves.append(Curve(f"{base}.location", c, locs[:, j, c], n))
    act = bpy.data.actions.new("p2p export")
    made.append(act)
    bag = action_channelbag(act, arm_c)
    write_curves(bag, bone_frames, curves)
    _assign(arm_c, act, bag)
    if mesh_c is not None and mesh_c.data.shape_keys is not None and key_names:
        key = mesh_c.data.shape_keys
        kact = bpy.data.actions.new("p2p export face")
        made.append(kact)
        kbag = action_channelbag(kact, key)
        kframes = frames
        if neutral_at is not None:
            kframes = np.concatenate([[neutral_at], frames])
            values = np.concatenate([np.zeros((1, values.shape[1])), values])
        write_curves(kbag, kframes, [Curve(f'key_blocks["{n}"].value', 0, values[:, k], "Shape")
                                     for k, n in enumerate(key_names)])
        _assign(key, kact, kbag)
    return made


def _remove_one(id_):
    if isinstance(id_, bpy.types.Object):
        bpy.data.objects.remove(id_, do_unlink=True)
    elif isinstance(id_, bpy.types.Mesh):
        bpy.data.meshes.remove(id_, do_unlink=True)
    elif isinstance(id_, bpy.types.Armature):
        bpy.data.armatures.remove(id_, do_unlink=True)
    elif isinstance(id_, bpy.types.Action):
        bpy.data.actions.remove(id_, do_unlink=True)
    elif isinstance(id_, bpy.types.Scene):
        bpy.data.scenes.remove(id_, do_unlink=True)
    # Key datablocks go with their mesh.


# --------------------------------------------------------------------------- export

def _run_exporter(p: ExportPreset, path: Path, scene_tmp, arm_c, frame_range, target=None):
    """Write ``path`` with the preset's exporter (``target``: the name to report)."""
    opts = dict(p.options)
    if p.format == "FBX":
        fn = bpy.ops.export_scene.fbx
    elif p.format == "GLB":
        fn = bpy.ops.export_scene.gltf
    elif p.format == "USD":
        from . import usd
        fn, opts = usd.usd_operator(), usd.supported_options(opts)
    else:
        fn = bpy.ops.export_anim.bvh
        opts.update(frame_start=int(frame_range[0]), frame_end=int(frame_range[1]))
    window = bpy.context.window
    override = dict(scene=scene_tmp, view_layer=scene_tmp.view_layers[0], active_object=arm_c,
                    object=arm_c, selected_objects=[arm_c], selected_editable_objects=[arm_c])
    old_scene = window.scene if window is not None else None
    try:
        if window is not None:
            window.scene = scene_tmp
        scene_tmp.view_layers[0].objects.active = arm_c
        arm_c.select_set(True, view_layer=scene_tmp.view_layers[0])

        def call():
            if window is not None:
                # (glTF sets window.scene itself; a context override with another scene
                # crashes it)
                return fn(filepath=str(path), **opts)
            with bpy.context.temp_override(**override):
                return fn(filepath=str(path), **opts)

        # Blender's own text (progress, a traceback on failure) stays off the terminal;
        # a failure is one line (an I/O cause is an OSError that atomic_write words).
        result = blender_write(f"Blender's {p.format} exporter", target or path, call)
    finally:
        if window is not None and old_scene is not None:
            window.scene = old_scene
    if "FINISHED" not in result or not path.is_file():
        raise RetargetError(f"Blender's {p.format} exporter did not write "
                            f"{(target or path).name}")


def export_scene(source, preset, out, *, root: str = "grounded", rest_frame: bool = False,
                 overwrite: bool = False, armature: str | None = None, smplx=None,
                 pose_correctives: bool | None = None, notes: list | None = None,
                 name: str | None = None, joint_bones: dict | None = None) -> ExportResult:
    """Export one rig's animation with a preset; returns an ``ExportResult``.

    source: ``None``/a Scene (the running session), a ``.blend`` or a take
    ``.npz`` path (see the module doc). preset: a name of
    ``export_presets.PRESETS`` or an ``ExportPreset``. out: the file to write
    (its suffix must be the preset's). root: ``grounded`` (default), ``camera``
    or ``in_place``. rest_frame: add the bind pose one frame before the take.
    armature: the rig's object name when the scene has several. smplx: only for a
    take ``.npz`` (the SMPL-X model: a file, a folder or a function ``gender -> file``,
    see ``convert.model_file``). pose_correctives: the rig's ``Pose*`` corrective
    shape keys (486) in the file, from a take or a scene alike; ``None``: the
    preset's default (off for the game presets, on for ``blender``). name: the take's name in
    the file (glTF's animation; default: the input file's name without its suffixes, or
    the scene's name). joint_bones: SMPL-X joint -> bone of the exported armature for the
    root modes' pelvis, hips and feet (a retarget target's mapping; default: the same names).

    The file's first frame is at time 0 (``ExportResult.frames`` are the scene's frames).
    """
    p = preset if isinstance(preset, ExportPreset) else _preset(preset)
    if root not in ROOT_MODES:
        raise RetargetError(f"unknown root mode {root!r}; choose one of {', '.join(ROOT_MODES)}")
    out = _check_output(out, p, overwrite)
    notes = [] if notes is None else notes
    if pose_correctives is None:
        pose_correctives = p.pose_correctives
    scene = _load_source(source, smplx=smplx, pose_correctives=pose_correctives, notes=notes,
                         rest_frame=rest_frame)
    arm = find_armature(scene, armature)
    mesh_obj = _body_mesh(arm)
    bones = _deform_bones(arm)
    jb = joint_bones or {}
    root_bone = jb.get(ROOT_JOINT, ROOT_JOINT)
    hip_bones = tuple(jb.get(j, j) for j in HIP_JOINTS)
    foot_bones = tuple(jb.get(j, j) for j in FOOT_JOINTS if j in jb or not jb)
    missing = [b for b in (root_bone, *hip_bones, *foot_bones) if b not in bones]
    if root != "camera" and missing:
        raise RetargetError(f"{arm.name} lacks the bones {', '.join(missing)} that --root "
                            f"{root} needs (use --root camera)")
    start, end = int(scene.frame_start), int(scene.frame_end)
    if end < start:
        raise RetargetError(f"scene {scene.name!r} has an empty frame range")
    check_export_span(end - start + 1 + int(rest_frame),
                      f"scene {scene.name!r} spans {end - start + 1:,} frames ({start} .. {end})"
                      + (" and the rest frame" if rest_frame else ""))
    frames = np.arange(start, end + 1)
    bake_at = _keyed_frames(scene, arm, mesh_obj, start, end)
    if bake_at is None:
        bake_at = frames
    fps = scene.render.fps / scene.render.fps_base
    mw = np.array(arm.matrix_world, dtype=np.float64)
    if not np.allclose(np.linalg.norm(mw[:3, :3], axis=0), 1.0, atol=1e-5):
        raise RetargetError(f"{arm.name} is scaled; apply its scale before exporting")

    frame_before = scene.frame_current
    subframe = scene.frame_subframe
    made = []
    renamed = None
    try:
        basis, heads, key_names, values, feet, _ = _bake(scene, arm, mesh_obj, bones, bake_at,
                                                         foot_bones)
    finally:
        scene.frame_set(frame_before, subframe=subframe)
    dropped = [] if pose_correctives or not p.mesh else [
        n for n in key_names if n.startswith(POSE_CORRECTIVE_PREFIX)]
    if dropped:
        keep = [k for k, n in enumerate(key_names) if not n.startswith(POSE_CORRECTIVE_PREFIX)]
        key_names, values = [key_names[k] for k in keep], values[:, keep]
        notes.append(f"left out the rig's {len(dropped)} pose-corrective shape keys (Pose*): "
                     "--pose-correctives on keeps them")
    idx = {n: j for j, n in enumerate(bones)}
    if root == "camera":
        W = root_transforms("camera", heads[:, 0], None, None, None)
    else:
        foot_pts = heads[0, [idx[n] for n in foot_bones]]
        if feet is not None and len(feet):
            foot_pts = np.concatenate([foot_pts, feet])
        W = root_transforms(root, heads[:, idx[root_bone]], heads[0, idx[hip_bones[0]]],
                            heads[0, idx[hip_bones[1]]], foot_pts)
    # The copy's object sits at the identity: the scene object's transform goes into W.
    world = W @ mw
    rest_root = np.array(arm.data.bones[bones[0]].matrix_local, dtype=np.float64)
    if arm.data.bones[bones[0]].parent is not None:
        raise RetargetError(f"{arm.name}: the first bone {bones[0]!r} is not the root")
    # The bind pose (the copy's rest) stands on the floor at the origin, facing Blender's
    # front (the engine's forward): the rest skeleton and body are moved by ``bind``, so the
    # root's keys are rebased against the moved rest.
    bind = _bind_transform(arm, mesh_obj, bones, root_bone, hip_bones, foot_bones)
    bind_inv = np.linalg.inv(bind)
    basis[:, 0] = rebase_root(rest_root, basis[:, 0], bind_inv @ world)

    out_frames, key_frames = frames, bake_at
    if len(bake_at) != len(frames):  # the world pose of every exported frame (for the result)
        flat = world.reshape(len(bake_at), 16)
        world = np.stack([np.interp(frames, bake_at, flat[:, i]) for i in range(16)],
                         axis=1).reshape(len(frames), 4, 4)
    if rest_frame:
        rest_basis = np.repeat(np.eye(4)[None, None], len(bones), axis=1)
        Wr = bind if root != "camera" else np.eye(4)
        rest_basis[0, 0] = rebase_root(rest_root, np.eye(4)[None], (bind_inv @ Wr)[None])[0]
        basis = np.concatenate([rest_basis, basis])
        rest_vals = values[:1].copy()
        for k, n in enumerate(key_names):
            if n.startswith(("Exp", "Pose")):
                rest_vals[0, k] = 0.0
        values = np.concatenate([rest_vals, values])
        out_frames = np.concatenate([[start - 1], frames])
        key_frames = np.concatenate([[start - 1], bake_at])
        world = np.concatenate([Wr[None], world])
        notes.append(f"frame {start - 1} is the rest (bind) pose")

    remove_stale_temps(out.parent)  # ours, of processes that are gone (killed while writing)
    # The file's frames start at 0 (time 0 in FBX and glTF, the first BVH frame): Blender's
    # default FBX and BVH importers then put them back on frames 1.. (the take's frames).
    # glTF: frames 1 .. n, slid to time 0 by the exporter (export_anim_slide_to_zero): its
    # exporter reads the mesh's own weights on frame 0, which is the neutral frame then.
    first = 1 if p.format == "GLB" else 0
    shift = first - int(out_frames[0])
    neutral = first - 1
    take_name = name or _take_name(source, scene)
    window = bpy.context.window
    win_scene = window.scene if window is not None else None
    renamed_scene = None
    swapped = []
    try:
        # The temporary scene carries the take's name: glTF's one animation is named after it.
        clash_scene = bpy.data.scenes.get(take_name)
        if clash_scene is not None:
            renamed_scene = (clash_scene, clash_scene.name)
            clash_scene.name = take_name + " (p2p export)"
        scene_tmp = bpy.data.scenes.new(take_name)
        made.append(scene_tmp)
        scene_tmp.render.fps = scene.render.fps
        scene_tmp.render.fps_base = scene.render.fps_base
        scene_tmp.frame_start, scene_tmp.frame_end = first, int(out_frames[-1]) + shift
        scene_tmp.unit_settings.system = 'METRIC'
        scene_tmp.unit_settings.scale_length = 1.0
        if p.rename_armature:
            clash = bpy.data.objects.get(p.rename_armature)
            if clash is not None:
                renamed = (clash, clash.name)
                clash.name = clash.name + " (p2p export)"
        arm_c, mesh_c, copies = _copy_rig(arm, mesh_obj if p.mesh else None, scene_tmp,
                                          p.rename_armature)
        made += copies
        # The copies carry the originals' names (no '.001' in the file): the originals are
        # renamed meanwhile and get their names back once the copies are gone.
        pairs = [(arm, arm_c)] if not p.rename_armature else []
        pairs += [(arm.data, arm_c.data)]
        if mesh_c is not None:
            pairs += [(mesh_obj, mesh_c), (mesh_obj.data, mesh_c.data)]
        for orig, copy_ in pairs:
            swapped.append((orig, orig.name))
            orig.name = orig.name + " (p2p export)"
            copy_.name = swapped[-1][1]
        if dropped and mesh_c is not None:
            _remove_shape_keys(mesh_c, set(dropped))
        if p.rename_armature and arm_c.name != p.rename_armature:
            raise RetargetError(f"could not name the exported armature {p.rename_armature!r}")
        _move_rest(arm_c, mesh_c, bind)
        made += _write_bake(arm_c, mesh_c, bones, np.asarray(key_frames) + shift, basis,
                            key_names, values, neutral_at=neutral)
        if p.format == "BVH":
            R = np.eye(4)
            R[:3, :3] = BLENDER_TO_FILE
            arm_c.data.transform([list(r) for r in R.T])
        # The exporters sample the scene's frames and write the mesh's own (bind pose)
        # shape-key weights from the frame the scene is on: a neutral face.
        scene_tmp.frame_set(neutral)
        if mesh_c is not None and mesh_c.data.shape_keys is not None:
            for kb in mesh_c.data.shape_keys.key_blocks[1:]:  # (the frame_set of a scene
                kb.value = 0.0                                 # not in the window: no eval)
        # A hidden temporary file with the real suffix, then a no-replace commit (or
        # os.replace with overwrite); nothing is left behind on failure.
        with exists_as_retarget_error():
            out = atomic_write(out, lambda tmp: _run_exporter(
                p, tmp, scene_tmp, arm_c, (first, int(out_frames[-1]) + shift), target=out),
                replace=overwrite)
    finally:
        if window is not None and win_scene is not None and window.scene != win_scene:
            window.scene = win_scene
        for id_ in reversed(made):
            try:
                _remove_one(id_)
            except ReferenceError:
                pass
        for orig, name in reversed(swapped):
            orig.name = name
        if renamed is not None:
            renamed[0].name = renamed[1]
        if renamed_scene is not None:
            renamed_scene[0].name = renamed_scene[1]
    if mesh_obj is not None and any(m.type != 'ARMATURE' for m in mesh_obj.modifiers) and p.mesh:
        notes.append(f"{mesh_obj.name}: modifiers other than Armature were left out of the "
                     "export (they would drop the shape keys)")
    return ExportResult(path=out, preset=p, root=root, frames=out_frames, fps=float(fps),
                        bone_names=bones, world=world,
                        shape_keys=key_names if p.mesh else [], notes=notes,
                        baked_frames=np.asarray(key_frames))


def _take_name(source, scene) -> str:
    """The take's name: ``clip`` for ``clip.take.npz`` / ``clip.blend``, else the scene's."""
    if source is None or isinstance(source, bpy.types.Scene):
        return scene.name
    name = Path(source).name
    for suffix in (".take.npz", ".npz", ".blend"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] or scene.name
    return Path(source).stem or scene.name


def _preset(name):
    try:
        return get_preset(name)
    except KeyError as exc:
        raise RetargetError(str(exc.args[0])) from None
