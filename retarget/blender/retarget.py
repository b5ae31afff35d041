# SPDX-License-Identifier: GPL-3.0-or-later
"""Retargeting in Blender: armatures <-> ``TargetSkeleton``, a take's motion onto a target.

The maths is the bpy-free core (``retarget.targets``: ``automap``, ``retarget``); this
module only moves data in and out of Blender:

* ``read_skeleton(armature)``: a Blender armature at rest as a ``TargetSkeleton``
  (heads, tails, rolls from ``bone.matrix_local``, parents, the object's transform);
  a non-uniform, mirrored or sheared object transform is refused (one line);
* ``build_armature(skeleton)``: an armature object from a ``TargetSkeleton`` (the test
  rigs, and ``p2p-mocap retarget --target mixamo`` without a character file);
* ``source_pose(rig)``: the SMPL-X rig's take as the solve's input, read from the
  take's keys (what the viewport plays, smoothed as shown), no model file needed;
* ``write_motion(armature, ...)``: a ``RetargetedMotion`` as a **new** action on
  the target, pushed as a new NLA track on top (the user's actions, tracks and active
  action are untouched); every bone of the armature is keyed (unmapped ones at rest
  relative to their parent, as the solve has them), in each pose bone's own rotation
  mode (a bone animated in Euler stays Euler), so nothing the user has changes meaning;
* ``retarget_rig(rig, armature, target)``: all of it; ``preview=True`` puts the
  result on one reusable, soloed preview track (``PREVIEW_TRACK``) that the next
  preview replaces and ``clear_preview`` removes; a bake is a normal track.

Nothing is written to Blender before the solve succeeded, and a failure while
writing removes what was made, so a failed retarget changes nothing in the file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np

from ..errors import RetargetError
from ..character_files import CHARACTER_SUFFIXES
from ..rotations import quaternion_continuity
from .fcurves import Curve, action_channelbag, write_curves

PREVIEW_TRACK = "P2P retarget preview"
ROLE = "p2p_role"                   # custom property on our actions
ROLE_RETARGET = "retarget"
ROLE_PREVIEW = "retarget preview"


# --------------------------------------------------------------------------- reading

def armature_rest(arm_obj):
    """Rest data of an armature in armature space, read in bulk.

    -> ``(names [B], parents [B] (name or None), heads (B, 3), tails (B, 3),
    matrices (B, 3, 3))``; matrices are ``bone.matrix_local[:3, :3]``.
    """
    bones = arm_obj.data.bones
    B = len(bones)
    heads = np.empty(B * 3, dtype=np.float32)
    tails = np.empty(B * 3, dtype=np.float32)
    mats = np.empty(B * 16, dtype=np.float32)
    bones.foreach_get("head_local", heads)
    bones.foreach_get("tail_local", tails)
    bones.foreach_get("matrix_local", mats)
    mats = mats.reshape(B, 4, 4).transpose(0, 2, 1)[:, :3, :3].astype(np.float64)
    names = [b.name for b in bones]
    parents = [b.parent.name if b.parent is not None else None for b in bones]
    return (names, parents, heads.reshape(B, 3).astype(np.float64),
            tails.reshape(B, 3).astype(np.float64), mats)


def read_skeleton(arm_obj, *, name: str | None = None):
    """A Blender armature object at rest -> ``TargetSkeleton`` (armature space, its roll).

    The object's ``matrix_world`` is kept on the skeleton; a non-uniform, mirrored or
    sheared object transform raises ``RetargetError`` naming the armature.
    """
    from ..targets.rig_target import TargetBone, TargetSkeleton

    if arm_obj is None or arm_obj.type != 'ARMATURE':
        raise RetargetError(f"{getattr(arm_obj, 'name', arm_obj)!r} is not an armature")
    names, parents, heads, tails, mats = armature_rest(arm_obj)
    if not names:
        raise RetargetError(f"armature {arm_obj.name!r} has no bones")
    bones = tuple(TargetBone.from_matrix(n, p, h, t, m)
                  for n, p, h, t, m in zip(names, parents, heads, tails, mats))
    mw = [list(map(float, row)) for row in arm_obj.matrix_world]
    try:
        return TargetSkeleton(name=name or arm_obj.name, bones=bones, object_matrix=mw)
    except RetargetError as exc:
        raise RetargetError(f"{arm_obj.name}: {exc}") from None


def _ensure_object_mode():
    obj = bpy.context.view_layer.objects.active if bpy.context.view_layer else None
    if obj is not None and obj.mode != 'OBJECT':
        bpy.ops.object.mode_set(mode='OBJECT')


def build_armature(skeleton, *, name: str | None = None, collection=None):
    """An armature object made from a ``TargetSkeleton`` (heads, tails, rolls, parents,
    object transform); linked to ``collection`` (default: the scene's). -> the object.

    Bones are unconnected, deform, quaternion rotation. The active object and mode
    are restored afterwards.
    """
    collection = collection or bpy.context.scene.collection
    arm = bpy.data.armatures.new(name or skeleton.name)
    obj = bpy.data.objects.new(name or skeleton.name, arm)
    collection.objects.link(obj)
    view_layer = bpy.context.view_layer
    before = view_layer.objects.active
    _ensure_object_mode()
    view_layer.objects.active = obj
    obj.select_set(True)
    bpy.ops.object.mode_set(mode='EDIT')
    try:
        made = {}
        for b in skeleton.bones:
            eb = arm.edit_bones.new(b.name)
            eb.head = b.head
            eb.tail = b.tail
            eb.roll = b.roll
            eb.use_connect = False
            eb.use_deform = True
            made[b.name] = eb
        for b in skeleton.bones:
            if b.parent is not None:
                made[b.name].parent = made[b.parent]
    finally:
        bpy.ops.object.mode_set(mode='OBJECT')
        obj.select_set(False)
        view_layer.objects.active = before
    for pb in obj.pose.bones:
        pb.rotation_mode = 'QUATERNION'
    from mathutils import Matrix

    obj.matrix_world = Matrix([list(map(float, r)) for r in np.asarray(skeleton.object_matrix)])
    return obj


# --------------------------------------------------------------------------- the source

def _curve_values(bag, data_path: str, index: int, frames: np.ndarray, default: float):
    fc = bag.find(data_path, index)
    if fc is None or len(fc.keyframe_points) == 0:
        return np.full(len(frames), default)
    n = len(fc.keyframe_points)
    co = np.empty(2 * n, dtype=np.float64)
    fc.keyframe_points.foreach_get("co", co)
    return np.interp(frames, co[0::2], co[1::2])


def _keyed_frames(bag, data_path: str) -> np.ndarray:
    fc = bag.find(data_path, 0)
    if fc is None or len(fc.keyframe_points) == 0:
        raise RetargetError(f"action {bag.action.name!r} has no keys for {data_path}")
    co = np.empty(2 * len(fc.keyframe_points), dtype=np.float64)
    fc.keyframe_points.foreach_get("co", co)
    return co[0::2]


def source_pose(rig_obj, action=None):
    """The take on an SMPL-X rig (made by this add-on) at its keyed frames, as the
    solve's ``SourceMotion`` (world space, metres).

    action: the take's body action (default: the top unmuted take on the rig's NLA).
    Reads the action's keys (rotation_quaternion / location per bone) and poses the
    rest skeleton in numpy exactly as Blender does (``posing.evaluate_armature``);
    the armature object's transform is applied (world space).
    """
    from ..smplx_model import JOINT_NAMES
    from .anim import top_take_action

    if rig_obj is None or rig_obj.type != 'ARMATURE' or "p2p_rig" not in rig_obj:
        raise RetargetError(f"{getattr(rig_obj, 'name', rig_obj)!r} is not an SMPL-X rig made "
                            "by this add-on")
    if action is None:
        action = top_take_action(rig_obj)
    bag = action_channelbag_readonly(action, rig_obj)
    names, parents_n, heads, tails, mats = armature_rest(rig_obj)
    index = {n: i for i, n in enumerate(names)}
    missing = [n for n in JOINT_NAMES if n not in index]
    if missing:
        raise RetargetError(f"{rig_obj.name}: not a complete SMPL-X rig (no bone {missing[0]!r})")
    order = [index[n] for n in JOINT_NAMES]
    heads, tails, mats = heads[order], tails[order], mats[order]
    parents = np.array([-1 if parents_n[i] is None else JOINT_NAMES.index(parents_n[i])
                        for i in order])
    frames = _keyed_frames(bag, f'pose.bones["{JOINT_NAMES[0]}"].rotation_quaternion')
    T, J = len(frames), len(JOINT_NAMES)
    quats = np.empty((T, J, 4))
    locs = np.zeros((T, J, 3))
    for j, n in enumerate(JOINT_NAMES):
        base = f'pose.bones["{n}"]'
        for c in range(4):
            quats[:, j, c] = _curve_values(bag, f"{base}.rotation_quaternion", c, frames,
                                           1.0 if c == 0 else 0.0)
        for c in range(3):
            locs[:, j, c] = _curve_values(bag, f"{base}.location", c, frames, 0.0)
    quats /= np.linalg.norm(quats, axis=-1, keepdims=True)
    D, posed = pose_world(mats, heads, parents, quats, locs)      # armature space
    mw = np.array(rig_obj.matrix_world, dtype=np.float64)
    scale = np.linalg.norm(mw[:3, 0])
    rot_w = mw[:3, :3] / scale
    rot = rot_w @ D @ rot_w.T
    to_world = lambda p: p @ mw[:3, :3].T + mw[:3, 3]  # noqa: E731
    expression = None
    mesh = bpy.data.objects.get(rig_obj.get("p2p_mesh", ""))
    key = mesh.data.shape_keys if mesh is not None and mesh.type == 'MESH' else None
    face = _face_action(action)
    if key is not None and face is not None:
        fbag = action_channelbag_readonly(face, key)
        expression = np.stack([_curve_values(fbag, f'key_blocks["Exp{k:03d}"].value', 0,
                                             frames, 0.0) for k in range(10)], axis=1)
    from ..targets.solve import SourceMotion

    scene = bpy.context.scene
    return SourceMotion(rest_heads=to_world(heads), rest_tails=to_world(tails),
                        rotations=rot, positions=to_world(posed),
                        fps=scene.render.fps / scene.render.fps_base,
                        frame_index=np.round(frames).astype(np.int64),
                        valid=np.ones(len(frames), bool), expression=expression)


def pose_world(rest: np.ndarray, heads: np.ndarray, parents, quats: np.ndarray,
               locs: np.ndarray):
    """Blender's pose evaluation (unconnected bones inheriting rotation, no scale), in 3x3s.

    rest ``(J, 3, 3)`` (``bone.matrix_local``), heads ``(J, 3)``, parents (parents first),
    pose-bone quaternions ``(T, J, 4)`` and locations ``(T, J, 3)`` -> world rotation change
    from rest ``(T, J, 3, 3)`` and posed heads ``(T, J, 3)`` in armature space. The same as
    ``posing.evaluate_armature`` (``D_i = M_i Rest_i^-1``): ``D_i = D_p B_i L_i B_i^T``,
    ``P_i = P_p + D_p (h_i - h_p + B_i l_i)``.
    """
    from ..rotations import quaternion_to_matrix

    L = quaternion_to_matrix(quats)
    local = rest @ L @ np.swapaxes(rest, -1, -2)                      # (T, J, 3, 3)
    offs = np.einsum("jab,tjb->tja", rest, locs)                       # B_i l_i
    T, J = quats.shape[:2]
    D = np.empty((T, J, 3, 3))
    P = np.empty((T, J, 3))
    for i in range(J):
        p = int(parents[i])
        if p < 0:
            D[:, i] = local[:, i]
            P[:, i] = heads[i] + offs[:, i]
        else:
            D[:, i] = D[:, p] @ local[:, i]
            P[:, i] = P[:, p] + (D[:, p] @ (heads[i] - heads[p] + offs[:, i])[..., None])[..., 0]
    return D, P


def _face_action(body_action):
    name = body_action.get("p2p_face_action")
    return bpy.data.actions.get(name) if name else None


def action_channelbag_readonly(action, id_data):
    """Like ``fcurves.action_channelbag`` but never adds a slot, layer or strip (reading
    must not change the user's action). Raises RetargetError when there is none."""
    if hasattr(action, "slots") and hasattr(action, "layers"):
        same = [s for s in action.slots if s.target_id_type == id_data.id_type]
        named = [s for s in same if s.name_display == id_data.name]
        slot = named[0] if named else (same[0] if len(same) == 1 else None)
        if slot is None or not len(action.layers) or not len(action.layers[0].strips):
            raise RetargetError(f"action {action.name!r} has no keys for {id_data.name!r}")
        bag = action.layers[0].strips[0].channelbag(slot)
        if bag is None:
            raise RetargetError(f"action {action.name!r} has no keys for {id_data.name!r}")
        from .fcurves import Channelbag
        return Channelbag(action, slot, bag.fcurves, bag.groups)
    from .fcurves import Channelbag
    return Channelbag(action, None, action.fcurves, action.groups)


# --------------------------------------------------------------------------- writing

@dataclass
class WrittenMotion:
    action: "bpy.types.Action"
    track: object
    frames: np.ndarray
    notes: list = field(default_factory=list)


def _euler_curves(pb, quats: np.ndarray):
    """Quaternions ``(T, 4)`` -> Euler angles ``(T, 3)`` in the bone's order, continuous."""
    from mathutils import Euler, Quaternion

    out = np.empty((len(quats), 3))
    prev = Euler((0.0, 0.0, 0.0), pb.rotation_mode)
    for t, q in enumerate(quats):
        e = Quaternion(q.tolist()).to_euler(pb.rotation_mode, prev)
        out[t] = e[:]
        prev = e
    return out


def _axis_angle(quats: np.ndarray) -> np.ndarray:
    """``(T, 4)`` wxyz -> ``(T, 4)`` Blender axis-angle ``(angle, x, y, z)``."""
    w = np.clip(quats[:, 0], -1.0, 1.0)
    angle = 2.0 * np.arccos(w)
    s = np.sqrt(np.maximum(1.0 - w * w, 0.0))
    axis = np.where(s[:, None] > 1e-8, quats[:, 1:] / np.maximum(s, 1e-12)[:, None],
                    np.array([0.0, 1.0, 0.0]))
    return np.column_stack([angle, axis])


def motion_curves(arm_obj, bone_names, rotations, locations=None):
    """F-curves for pose rotations ``(T, B, 4)`` (wxyz, pose-bone local) in each bone's
    own rotation mode, and ``locations {bone: (T, 3)}`` (pose-bone local)."""
    curves = []
    rotations = quaternion_continuity(np.asarray(rotations, dtype=np.float64), axis=0)
    for b, name in enumerate(bone_names):
        pb = arm_obj.pose.bones[name]
        base = f'pose.bones["{name}"]'
        q = rotations[:, b]
        mode = pb.rotation_mode
        if mode == 'QUATERNION':
            curves += [Curve(f"{base}.rotation_quaternion", c, q[:, c], name) for c in range(4)]
        elif mode == 'AXIS_ANGLE':
            aa = _axis_angle(q)
            curves += [Curve(f"{base}.rotation_axis_angle", c, aa[:, c], name) for c in range(4)]
        else:
            eu = _euler_curves(pb, q)
            curves += [Curve(f"{base}.rotation_euler", c, eu[:, c], name) for c in range(3)]
    for name, loc in (locations or {}).items():
        base = f'pose.bones["{name}"]'
        curves += [Curve(f"{base}.location", c, np.asarray(loc)[:, c], name) for c in range(3)]
    return curves


def _push(arm_obj, action, bag, frame_start: int, name: str):
    ad = arm_obj.animation_data or arm_obj.animation_data_create()
    track = ad.nla_tracks.new()  # appended on top
    track.name = name
    strip = track.strips.new(action.name, int(frame_start), action)
    if bag.slot is not None and getattr(strip, "action_slot", bag.slot) is None:
        strip.action_slot = bag.slot
    strip.blend_type = 'REPLACE'
    return track


def clear_preview(arm_obj) -> bool:
    """Remove the retarget preview track and its action from ``arm_obj`` (ours only)."""
    ad = arm_obj.animation_data
    if ad is None:
        return False
    found = False
    for track in list(ad.nla_tracks):
        if track.name != PREVIEW_TRACK:
            continue
        actions = [s.action for s in track.strips
                   if s.action is not None and s.action.get(ROLE) == ROLE_PREVIEW]
        if len(actions) != len(track.strips):
            continue  # not ours (a user's track with that name): leave it
        if track.is_solo:
            track.is_solo = False
        ad.nla_tracks.remove(track)
        for a in actions:
            if a.users == 0:
                bpy.data.actions.remove(a)
        found = True
    return found


def write_motion(arm_obj, bone_names, rotations, frames, *, locations=None,
                 name: str = "retarget", preview: bool = False,
                 extra_curves=()) -> WrittenMotion:
    """Key pose rotations ``(T, B, 4)`` and ``locations {bone: (T, 3)}`` on ``arm_obj`` as a
    new action on a new NLA track; nothing of the user's changes.

    preview: the action goes on the preview track (the previous preview is removed
    first), soloed so it plays alone. On failure everything made is removed.
    """
    frames = np.asarray(frames, dtype=np.float64)
    missing = [n for n in bone_names if n not in arm_obj.pose.bones]
    if missing:
        raise RetargetError(f"{arm_obj.name} has no bone {missing[0]!r}")
    if len(set(bone_names)) != len(bone_names):
        raise RetargetError("a bone is keyed twice")
    curves = motion_curves(arm_obj, bone_names, rotations, locations)  # before any write
    curves += list(extra_curves)   # (a control rig's switches, keyed in the same action)
    had_ad = arm_obj.animation_data is not None
    action = track = None
    try:
        if preview:
            clear_preview(arm_obj)
        action = bpy.data.actions.new(f"{name} preview" if preview else name)
        action[ROLE] = ROLE_PREVIEW if preview else ROLE_RETARGET
        bag = action_channelbag(action, arm_obj)
        write_curves(bag, frames, curves)
        track = _push(arm_obj, action, bag, int(round(frames[0])),
                      PREVIEW_TRACK if preview else action.name)
        if preview:
            track.is_solo = True
    except Exception:
        if track is not None:
            arm_obj.animation_data.nla_tracks.remove(track)
        if action is not None:
            bpy.data.actions.remove(action)
        if not had_ad and arm_obj.animation_data is not None:
            arm_obj.animation_data_clear()
        raise
    return WrittenMotion(action, track, frames)


# --------------------------------------------------------------------------- targets in a scene



def _new_objects(before: set) -> list:
    return [ob for ob in bpy.data.objects if ob.name_full not in before]


def import_character(path, *, collection=None) -> list:
    """Objects of a character file (FBX, glTF/GLB, .blend) added to the scene. -> new objects.

    A .blend's objects are appended (the file itself is only read). What the
    importers print stays off the terminal; a failure is one line naming the file.
    """
    from .output import captured_output

    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if suffix not in CHARACTER_SUFFIXES:
        raise RetargetError(f"{path}: unsupported character file (use "
                            f"{', '.join(CHARACTER_SUFFIXES)})")
    if not path.is_file():
        raise RetargetError(f"{path}: no such file")
    scene = bpy.context.scene
    collection = collection or scene.collection
    before = {ob.name_full for ob in bpy.data.objects}
    try:
        with captured_output():
            if suffix == ".fbx":
                result = bpy.ops.import_scene.fbx(filepath=str(path))
            elif suffix in (".glb", ".gltf"):
                result = bpy.ops.import_scene.gltf(filepath=str(path))
            else:
                with bpy.data.libraries.load(str(path), link=False) as (src, dst):
                    dst.objects = list(src.objects)
                for ob in dst.objects:
                    if ob is not None and ob.name not in collection.objects:
                        collection.objects.link(ob)
                result = {'FINISHED'}
    except (RuntimeError, OSError) as exc:
        raise RetargetError(f"{path}: Blender cannot read it "
                            f"({str(exc).strip().splitlines()[-1] if str(exc).strip() else exc.__class__.__name__})") from None
    if 'FINISHED' not in result:
        raise RetargetError(f"{path}: Blender's importer did not read it")
    return _new_objects(before)


def pick_armature(objects, name: str | None, where: str):
    """The armature called ``name`` among ``objects``, else the only one (one line if not)."""
    arms = [ob for ob in objects if ob is not None and ob.type == 'ARMATURE'
            and (name or "p2p_rig" not in ob)]   # (a file's own SMPL-X rigs are not targets)
    if name:
        hit = [ob for ob in arms if ob.name == name or ob.data.name == name]
        if not hit:
            raise RetargetError(f"{where} has no armature called {name!r} (armatures: "
                                f"{', '.join(ob.name for ob in arms) or 'none'})")
        return hit[0]
    if not arms:
        raise RetargetError(f"{where} has no armature")
    if len(arms) > 1:
        raise RetargetError(f"{where} has several armatures ({', '.join(ob.name for ob in arms)});"
                            " pick one with --armature")
    return arms[0]


def target_for_armature(arm_obj, mapping=None):
    """``(RigTarget with the armature's skeleton, notes)`` for a Blender armature.

    mapping: None (auto-mapping by names, then structure), a built-in target name or
    a preset path / ``RigTarget`` whose bone names the armature has.
    """
    from ..targets import automap, check_target, get_target

    skeleton = read_skeleton(arm_obj)
    notes = []
    from ..targets import rigify_controls

    generated = rigify_generated(arm_obj, skeleton)
    if mapping is None and not generated:
        target = automap(skeleton)
        notes.append(f"{arm_obj.name}: mapped automatically ({len(target.mapping)} bones)")
    elif mapping is None:
        target = get_target("rigify")
    else:
        target = mapping if not isinstance(mapping, str) else get_target(mapping)
    if generated and target.name == rigify_controls.NAME and target.drive == "deform":
        # What users have is the rig Rigify generates: keys go on its FK controls.
        target = rigify_controls.controls_target(target)
        notes.append(f"{arm_obj.name}: a rig Rigify generated: its FK controls are keyed "
                     "(FK switches keyed in the same action)")
    target = target.with_skeleton(skeleton)
    bones = set(skeleton.names)
    absent = [f"{j} -> {b}" for j, b in target.mapping.items() if b not in bones]
    required = set(target.required)
    missing_req = [x for x in absent if x.split(" -> ")[0] in required]
    if missing_req:
        raise RetargetError(f"armature {arm_obj.name!r} lacks the mapped bones "
                            f"{', '.join(missing_req[:6])}" + (" ..." if len(missing_req) > 6 else ""))
    if absent:  # optional bones the armature does not have: left out, said once
        keep = {j: b for j, b in target.mapping.items() if b in bones}
        from dataclasses import replace
        target = replace(target, mapping=keep,
                         twist={b: v for b, v in target.twist.items() if b in bones},
                         follow={b: v for b, v in target.follow.items()
                                 if b in bones and v in bones},
                         root_bone=target.root_bone if target.root_bone in bones else None)
        notes.append(f"{arm_obj.name}: {len(absent)} optional mapped bones are not in the "
                     f"armature and stay at rest ({', '.join(a.split(' -> ')[1] for a in absent[:4])}"
                     + (" ..." if len(absent) > 4 else "") + ")")
    check_target(target, skeleton)
    return target, notes


def resolve_target(spec, *, armature: str | None = None, mapping=None, collection=None):
    """The target armature in the current scene for ``spec``. -> ``(object, RigTarget, notes)``.

    spec: a built-in name or a preset ``.json`` (an armature is built from its
    skeleton), or a character file (``.fbx``, ``.glb``/``.gltf``, ``.blend``: imported;
    ``armature`` picks its armature, ``mapping`` its map: None = automatic).
    """
    from ..targets import TARGETS, get_target

    text = str(spec)
    suffix = Path(text).suffix.lower()
    if text.lower() in TARGETS or suffix == ".json":
        if mapping is not None:
            raise RetargetError("--map applies to a character file target, not to "
                                f"{text!r}")
        target = get_target(text)
        if target.skeleton is None:
            raise RetargetError(f"{text}: the preset has no skeleton to build; give the "
                                "character file as --target and this preset as --map")
        obj = build_armature(target.skeleton, name=target.name, collection=collection)
        try:
            tgt, notes = target_for_armature(obj, target)
        except Exception:
            _remove_armature(obj)
            raise
        return obj, tgt, notes
    if suffix == ".blend" and bpy.data.filepath and \
            Path(text).expanduser().resolve() == Path(bpy.data.filepath).resolve():
        # The open file itself (Blender cannot append from it): its armatures are here.
        obj = pick_armature(bpy.context.scene.objects, armature, Path(text).name)
        tgt, notes = target_for_armature(obj, mapping)
        return obj, tgt, notes
    if suffix in CHARACTER_SUFFIXES:
        made = import_character(text, collection=collection)
        try:
            obj = pick_armature(made, armature, Path(text).name)
            tgt, notes = target_for_armature(obj, mapping)
        except Exception:
            _remove_objects(made)
            raise
        # Only the character (the armature and what hangs below it) stays.
        keep = {obj.name_full} | {c.name_full for c in obj.children_recursive}
        _remove_objects([ob for ob in made if ob.name_full not in keep])
        return obj, tgt, notes
    raise RetargetError(f"unsupported target {text!r}: a built-in ({', '.join(TARGETS)}), a "
                        f"preset .json or a character file ({', '.join(CHARACTER_SUFFIXES)})")


def _remove_armature(obj):
    data = obj.data
    bpy.data.objects.remove(obj, do_unlink=True)
    if data is not None and data.users == 0:
        bpy.data.armatures.remove(data)


def _remove_objects(objects):
    for ob in objects:
        try:
            bpy.data.objects.remove(ob, do_unlink=True)
        except ReferenceError:
            pass


# --------------------------------------------------------------------------- all of it

# Constraints that set a bone's rotation from elsewhere: keys on such a bone have no effect.
_OVERRIDING = {'COPY_TRANSFORMS', 'COPY_ROTATION', 'CHILD_OF', 'ARMATURE', 'DAMPED_TRACK',
               'TRACK_TO', 'LOCKED_TRACK', 'STRETCH_TO', 'IK', 'SPLINE_IK', 'TRANSFORM'}


def check_not_constrained(arm_obj, target) -> None:
    """Refuse a target whose mapped bones are driven by constraints (a control rig such as
    the one Rigify generates: its DEF bones copy ORG bones), since keys on them would do
    nothing. One line naming the bones."""
    driven = []
    for bone in target.mapping.values():
        pb = arm_obj.pose.bones.get(bone)
        if pb is None:
            continue
        if any(c.type in _OVERRIDING and not c.mute and c.influence > 0.0
               for c in pb.constraints):
            driven.append(bone)
    if driven:
        raise RetargetError(
            f"{arm_obj.name}: {len(driven)} mapped bones are driven by constraints "
            f"({', '.join(driven[:3])}{', ...' if len(driven) > 3 else ''}), so keys on them "
            "would do nothing (a generated control rig such as Rigify's?); retarget onto its "
            "metarig or a deform-only armature")


def rigify_generated(arm_obj, skeleton) -> bool:
    """A rig Rigify generated: its controls are there and its DEF bones follow them (a
    constraint on ``DEF-spine``; a copy without constraints is driven like deform bones)."""
    from ..targets import rigify_controls

    if not rigify_controls.is_generated_rigify(skeleton.names):
        return False
    pb = arm_obj.pose.bones.get("DEF-spine")
    return pb is not None and any(c.type in _OVERRIDING and not c.mute for c in pb.constraints)


def _controls_motion(arm_obj, skeleton, target, src, *, ik=True, contacts=None):
    """The solve on a generated Rigify rig's DEF bones, as keys on its FK controls
    (``targets.rigify_controls``). -> ``(motion, names, rotations (T, N, 4), locations,
    extra curves: the switches and the finger masters' scale)``."""
    from ..targets import retarget, rigify_controls

    missing = rigify_controls.missing_controls(skeleton.names)
    if missing:
        raise RetargetError(f"{arm_obj.name}: not a rig Rigify generated, so its controls "
                            f"cannot be driven (no bone {', '.join(repr(m) for m in missing[:4])})")
    if not rigify_generated(arm_obj, skeleton):
        raise RetargetError(f"{arm_obj.name}: its DEF bones do not follow its controls (no "
                            "constraints), so keying the controls would not move them; use the "
                            "deform-bone preset")
    deform = rigify_controls.deform_skeleton(skeleton)
    motion = retarget(src, None, target, deform, ik=ik, contacts=contacts, spread=False)
    names, rotations, locations = rigify_controls.control_channels(motion, deform, skeleton)
    T = rotations.shape[0]
    extra = []
    for bone, prop, value in rigify_controls.SWITCHES:
        pb = arm_obj.pose.bones[bone]
        if prop in pb.keys():
            extra.append(Curve(f'pose.bones["{bone}"]["{prop}"]', 0, np.full(T, value), bone))
    for bone in rigify_controls.rest_scale_bones(names):
        extra += [Curve(f'pose.bones["{bone}"].scale', c, np.ones(T), bone) for c in range(3)]
    return motion, names, rotations, locations, extra


def _shape_key_targets(arm_obj, names):
    """Child meshes of the armature whose shape keys include some of ``names``."""
    out = []
    for ob in arm_obj.children:
        key = ob.data.shape_keys if ob.type == 'MESH' else None
        if key is not None and any(n in key.key_blocks for n in names):
            out.append(key)
    return out


def retarget_rig(rig_obj, arm_obj, target, *, preview: bool = False, name: str | None = None,
                 action=None, ik: bool = True, contacts=None) -> WrittenMotion:
    """The take on SMPL-X rig ``rig_obj`` onto armature ``arm_obj`` with ``target`` (a
    ``RigTarget`` whose skeleton is ``arm_obj``'s: ``target_for_armature``).

    The solve runs first (numpy); only then is anything written: a new action on a new
    NLA track of ``arm_obj`` (``preview``: the soloed preview track), and, when the
    target's meshes have shape keys named in ``target.shape_keys``, a face action on
    their shape keys. -> ``WrittenMotion`` (the body action and track, notes).
    """
    from ..targets import retarget

    if arm_obj is None or arm_obj.type != 'ARMATURE':
        raise RetargetError("the target is not an armature")
    if rig_obj is None or rig_obj.type != 'ARMATURE' or "p2p_rig" not in rig_obj:
        raise RetargetError(f"{getattr(rig_obj, 'name', rig_obj)!r} is not an SMPL-X rig made "
                            "by this add-on")
    if arm_obj == rig_obj:
        raise RetargetError("the target is the source rig itself")
    if arm_obj.mode != 'OBJECT' or rig_obj.mode != 'OBJECT':
        raise RetargetError("switch to Object Mode first")
    skeleton = read_skeleton(arm_obj)
    if target.drive != "controls":
        check_not_constrained(arm_obj, target)
    if action is None:
        from .anim import take_actions

        takes = [a for t, a in take_actions(rig_obj) if not t.mute]
        if not takes:
            raise RetargetError(f"{rig_obj.name} has no take to retarget")
        action = takes[0]
    src = source_pose(rig_obj, action)
    frames = np.asarray(src.frame_index, dtype=np.float64)
    extra = []
    if target.drive == "controls":
        motion, names, rotations, locations, extra = _controls_motion(
            arm_obj, skeleton, target, src, ik=ik, contacts=contacts)
    else:
        motion = retarget(src, None, target, skeleton, ik=ik, contacts=contacts)
        # Every bone is keyed, unmapped ones too (at rest relative to their parent, as the
        # solve has them), so the action plays the solve whatever the pose was before.
        names = list(motion.bone_names)
        rotations = motion.rotations
        locations = {motion.bone_names[i]: motion.locations[:, i]
                     for i in range(len(names)) if motion.located[i]}
    name = name or f"{action.name} -> {arm_obj.name}"
    written = write_motion(arm_obj, names, rotations, frames, locations=locations, name=name,
                           preview=preview, extra_curves=extra)
    written.notes = list(motion.notes)
    connected = [n for n in locations if arm_obj.data.bones[n].use_connect]
    if connected:   # Blender ignores the location of a connected bone
        written.notes.append(f"{arm_obj.name}: {', '.join(connected)} is connected to its "
                             "parent, so its location keys (root motion) have no effect; "
                             "disconnect it to get the root motion")
    keys = _shape_key_targets(arm_obj, motion.shape_keys) if not preview else []
    for key in keys:
        face = bpy.data.actions.new(f"{written.action.name} face")
        face[ROLE] = ROLE_RETARGET
        bag = action_channelbag(face, key)
        curves = [Curve(f'key_blocks["{n}"].value', 0, v, "Expression")
                  for n, v in motion.shape_keys.items() if n in key.key_blocks]
        write_curves(bag, frames, curves)
        _push(key, face, bag, int(round(frames[0])), face.name)
        written.notes.append(f"{len(curves)} shape keys of {key.user.name} keyed "
                             f"({face.name!r})")
    return written


def apply_armature_scale(arm_obj) -> bool:
    """Apply the armature object's (uniform) scale to its bones, its children keeping their
    place (for an export, which refuses scaled armatures: FBX characters come in at 0.01).
    Only for the session's own copy (the CLI); -> True when there was a scale."""
    mw = np.array(arm_obj.matrix_world, dtype=np.float64)
    if np.allclose(np.linalg.norm(mw[:3, :3], axis=0), 1.0, atol=1e-6):
        return False
    view_layer = bpy.context.view_layer
    _ensure_object_mode()
    for ob in view_layer.objects:
        ob.select_set(ob == arm_obj)
    view_layer.objects.active = arm_obj
    with bpy.context.temp_override(active_object=arm_obj, object=arm_obj,
                                   selected_objects=[arm_obj],
                                   selected_editable_objects=[arm_obj]):
        bpy.ops.object.transform_apply(location=False, rotation=False, scale=True)
    arm_obj.select_set(False)
    return True


# --------------------------------------------------------------------------- CLI sessions

def load_source_scene(src: Path, smplx, notes: list):
    """Open or build the source into the running session; -> nothing (the scene is current)."""
    if src.suffix.lower() == ".npz":
        from ..convert import build_take

        build_take(src, smplx, notes=notes)
        return
    from .output import captured_output

    try:
        with captured_output():   # (Blender's own "Read blend" line)
            bpy.ops.wm.open_mainfile(filepath=str(src), load_ui=False)
    except RuntimeError as exc:
        raise RetargetError(f"{src}: Blender cannot open it ({str(exc).strip()})") from None


def find_rig(scene, name: str | None):
    """The SMPL-X rig of the scene: ``name``, else the only one (one line otherwise)."""
    rigs = [o for o in scene.objects if o.type == 'ARMATURE' and "p2p_rig" in o]
    if name:
        hit = [o for o in rigs if o.name == name]
        if not hit:
            raise RetargetError(f"no SMPL-X rig called {name!r} in scene {scene.name!r} "
                                f"(rigs: {', '.join(o.name for o in rigs) or 'none'})")
        return hit[0]
    if not rigs:
        raise RetargetError(f"scene {scene.name!r} has no SMPL-X rig made by p2p-mocap")
    if len(rigs) > 1:
        raise RetargetError(f"scene {scene.name!r} has several SMPL-X rigs "
                            f"({', '.join(o.name for o in rigs)}); pick one with --rig")
    return rigs[0]


def retarget_in_session(src: Path, target: str, *, mapping=None, armature=None, rig=None,
                        smplx=None, foot_ik: bool = True, notes: list | None = None,
                        unscaled: bool = False):
    """Source into the session, target armature made or imported, the take retargeted onto it.

    -> ``(target object, RigTarget, WrittenMotion)``. The running session is reset.
    ``unscaled``: apply the target object's scale first (for an export).
    """
    notes = [] if notes is None else notes
    load_source_scene(src, smplx, notes)
    scene = bpy.context.scene
    rig_obj = find_rig(scene, rig)
    arm_obj, tgt, tnotes = resolve_target(target, armature=armature, mapping=mapping)
    notes += tnotes
    if unscaled and apply_armature_scale(arm_obj):
        tgt = tgt.with_skeleton(target_for_armature(arm_obj, tgt)[0].skeleton)
    written = retarget_rig(rig_obj, arm_obj, tgt, ik=foot_ik)
    notes += written.notes
    return arm_obj, tgt, written
