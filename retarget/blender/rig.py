# SPDX-License-Identifier: GPL-3.0-or-later
"""Build one person's SMPL-X rig: armature, skinned mesh, shape keys.

The rig (maths in ``retarget.posing``):

* **armature** ``"SMPL-X <label>"``: 55 bones named after the SMPL-X joints
  (``pelvis`` ... ``right_thumb3``), heads at the joints of the body shape
  ``betas`` (the take's median), upright T-pose facing -Y. Tails point at the
  child joint (``pelvis`` -> ``spine1``, ``spine3`` -> ``neck``, wrists ->
  middle finger); ``head`` points up; eyes point forward; feet (toe joints)
  point forward along the ground; fingertips and jaw continue their parent.
  **Rolls**: each bone's local Z axis points to the body's front (-Y), or up
  (+Z) for bones that themselves point forward/backward (within 45 deg of
  the Y axis: feet, eyes, jaw, parts of the thumbs). No bone is connected
  (SMPL-X joints can move relative to their parent with the face
  expression). Pose bones use quaternion rotation.
* **mesh** ``"SMPL-X <label> body"`` (10475 vertices, 20908 triangles),
  parented to the armature, one vertex group per bone from the SMPL-X
  skinning weights and one Armature modifier (linear blend skinning,
  vertex groups only, no preserve volume); no other modifier.
* **shape keys** (relative to ``Basis``, the shaped body): ``Exp000``..``Exp009``
  (expression), optional ``Shape000``..``Shape009`` (body shape relative to
  the baked betas; they change the surface only, the skeleton stays), optional
  ``Pose000``..``Pose485`` (SMPL-X pose correctives, keyed per frame). Slider
  ranges are -10..10 (Blender's hard limit) so values beyond +-1 work.
* A rig built from a stand-in model file gets the name suffix ``" (stand-in)"``
  and the custom property ``p2p_standin = True`` on armature and mesh.

**SMPL** (a model loaded with ``load_smpl_model``, for takes with
``body_model = "smpl"``): the same rules with the SMPL body: ``"SMPL <label>"``,
24 bones (``pelvis`` ... ``left_hand``, ``right_hand``; the wrists point at the
hand joints), a 6890-vertex mesh, ``Shape000``..``Shape009``,
``Pose000``..``Pose206``, no expression keys. ``p2p_body_model`` on the
armature says which body it is (``"smplx"`` when absent: rigs made before).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import bpy
import numpy as np

from ..posing import RigRest, rig_rest, smplx_to_armature
from ..smplx_model import NUM_BETAS, SmplxModel, body_kind

RIG_VERSION = 1
STANDIN_SUFFIX = " (stand-in)"
SLIDER_RANGE = 10.0  # Blender's hard limit for shape-key sliders


def expression_key_name(k: int) -> str:
    return f"Exp{k:03d}"


def shape_key_name(k: int) -> str:
    return f"Shape{k:03d}"


def pose_key_name(k: int) -> str:
    return f"Pose{k:03d}"


@dataclass
class Rig:
    """The objects of one built rig, and the rest data the animation writer needs."""

    armature: "bpy.types.Object"
    mesh: "bpy.types.Object"
    rest: RigRest
    bone_rest: np.ndarray     # (J, 3, 3) bone.matrix_local rotations as stored (float32 -> 64)
    bone_heads: np.ndarray    # (J, 3) as stored


def _ensure_object_mode():
    obj = bpy.context.view_layer.objects.active if bpy.context.view_layer else None
    if obj is not None and obj.mode != 'OBJECT':
        bpy.ops.object.mode_set(mode='OBJECT')


def _build_bones(arm_obj, rest: RigRest):
    """Edit bones at the rest joints; then read back what Blender stored."""
    arm = arm_obj.data
    _ensure_object_mode()
    view_layer = bpy.context.view_layer
    view_layer.objects.active = arm_obj
    arm_obj.select_set(True)
    bpy.ops.object.mode_set(mode='EDIT')
    try:
        bones = []
        for i, name in enumerate(rest.kind.joint_names):
            eb = arm.edit_bones.new(name)
            eb.head = rest.joints[i].tolist()
            eb.tail = rest.tails[i].tolist()
            eb.use_connect = False
            eb.use_deform = True
            bones.append(eb)
        for i, eb in enumerate(bones):
            if rest.parents[i] >= 0:
                eb.parent = bones[int(rest.parents[i])]
            eb.align_roll(rest.roll_z[i].tolist())
    finally:
        bpy.ops.object.mode_set(mode='OBJECT')
    buf = np.empty(len(arm.bones) * 16, dtype=np.float32)
    arm.bones.foreach_get("matrix_local", buf)
    mats = buf.reshape(-1, 4, 4).transpose(0, 2, 1).astype(np.float64)  # column-major in RNA
    order = [arm.bones.find(n) for n in rest.kind.joint_names]
    mats = mats[order]
    for pb in arm_obj.pose.bones:
        pb.rotation_mode = 'QUATERNION'
    return mats[:, :3, :3].copy(), mats[:, :3, 3].copy()


def _build_mesh(name: str, rest: RigRest, faces: np.ndarray):
    me = bpy.data.meshes.new(name)
    V, F = rest.vertices.shape[0], faces.shape[0]
    me.vertices.add(V)
    me.vertices.foreach_set("co", rest.vertices.astype(np.float32).ravel())
    me.loops.add(3 * F)
    me.loops.foreach_set("vertex_index", faces.astype(np.int32).ravel())
    me.polygons.add(F)
    me.polygons.foreach_set("loop_start", np.arange(0, 3 * F, 3, dtype=np.int32))
    me.polygons.foreach_set("loop_total", np.full(F, 3, dtype=np.int32))
    me.update(calc_edges=True)
    if hasattr(me, "shade_smooth"):
        me.shade_smooth()
    else:  # pragma: no cover - Blender < 4.1
        me.polygons.foreach_set("use_smooth", np.ones(F, dtype=bool))
    return me


def _add_vertex_groups(mesh_obj, weights: np.ndarray, names):
    """One group per joint; only non-zero SMPL-X weights are stored."""
    for j, name in enumerate(names):
        vg = mesh_obj.vertex_groups.new(name=name)
        col = weights[:, j]
        idx = np.flatnonzero(col > 0.0)
        if idx.size == 0:
            continue
        # Vertices with the same weight go in one call (exact 1.0 is common).
        vals, inverse = np.unique(col[idx].astype(np.float32), return_inverse=True)
        for k, w in enumerate(vals):
            vg.add(idx[inverse == k].tolist(), float(w), 'REPLACE')


def _add_shape_keys(mesh_obj, rest: RigRest, model: SmplxModel, shape_keys: bool,
                    pose_correctives: bool):
    basis = mesh_obj.shape_key_add(name="Basis", from_mix=False)
    basis.points.foreach_set("co", rest.vertices.astype(np.float32).ravel())
    mesh_obj.data.shape_keys.use_relative = True

    def add(name, disp):
        sk = mesh_obj.shape_key_add(name=name, from_mix=False)
        co = rest.vertices + smplx_to_armature(disp)
        sk.points.foreach_set("co", co.astype(np.float32).ravel())
        sk.slider_min = -SLIDER_RANGE
        sk.slider_max = SLIDER_RANGE
        sk.value = 0.0

    for k in range(model.kind.num_expression):
        add(expression_key_name(k), model.exprdirs[:, :, k])
    if shape_keys:
        for k in range(NUM_BETAS):
            add(shape_key_name(k), model.shapedirs[:, :, k])
    if pose_correctives:
        for k in range(model.kind.num_pose_features):
            add(pose_key_name(k), model.posedirs[:, :, k])


def build_rig(model: SmplxModel, betas, label: str = "person 0", *, collection=None,
              shape_keys: bool = True, pose_correctives: bool = True) -> Rig:
    """Create the armature and skinned mesh for body shape ``betas (10,)``.

    label: names the objects (``"SMPL-X <label>"``); Blender adds ``.001`` if
    the name is taken, nothing existing is renamed. collection: where to link
    them (default: the scene's collection; it must be in the active view
    layer, since the bones are made in edit mode). Returns a ``Rig``.
    """
    betas = np.asarray(betas, dtype=np.float64).reshape(-1)[:NUM_BETAS]
    if betas.shape != (NUM_BETAS,) or not np.isfinite(betas).all():
        raise ValueError(f"betas must be {NUM_BETAS} finite numbers")
    rest = rig_rest(model, betas)
    suffix = STANDIN_SUFFIX if model.standin else ""
    collection = collection or bpy.context.scene.collection
    kind = model.kind
    arm = bpy.data.armatures.new(f"{kind.label} {label}{suffix}")
    arm.display_type = 'STICK'
    arm_obj = bpy.data.objects.new(f"{kind.label} {label}{suffix}", arm)
    arm_obj.show_in_front = True
    collection.objects.link(arm_obj)
    bone_rest, bone_heads = _build_bones(arm_obj, rest)

    me = _build_mesh(f"{kind.label} {label} body{suffix}", rest, model.faces)
    mesh_obj = bpy.data.objects.new(f"{kind.label} {label} body{suffix}", me)
    collection.objects.link(mesh_obj)
    mesh_obj.parent = arm_obj
    _add_vertex_groups(mesh_obj, model.lbs_weights, kind.joint_names)
    mod = mesh_obj.modifiers.new("Armature", 'ARMATURE')
    mod.object = arm_obj
    mod.use_vertex_groups = True
    mod.use_bone_envelopes = False
    mod.use_deform_preserve_volume = False
    _add_shape_keys(mesh_obj, rest, model, shape_keys, pose_correctives)

    for ob in (arm_obj, mesh_obj):
        ob["p2p_standin"] = bool(model.standin)
    arm_obj["p2p_rig"] = RIG_VERSION
    arm_obj["p2p_body_model"] = kind.name
    arm_obj["p2p_label"] = label
    arm_obj["p2p_smplx_path"] = str(model.path)
    arm_obj["p2p_gender"] = model.gender
    arm_obj["p2p_betas"] = betas
    arm_obj["p2p_pose_correctives"] = bool(pose_correctives)
    arm_obj["p2p_mesh"] = mesh_obj.name
    # Rest data for the animation writer (so keying a take needs no model file).
    arm_obj["p2p_rest"] = json.dumps({
        "joints": rest.joints.tolist(), "joint_expression": rest.joint_expression.tolist(),
        "parents": rest.parents.tolist()})
    return Rig(arm_obj, mesh_obj, rest, bone_rest, bone_heads)


def rig_from_armature(arm_obj) -> Rig:
    """The ``Rig`` of an armature made by ``build_rig`` (e.g. in a reopened .blend)."""
    if "p2p_rig" not in arm_obj:
        raise ValueError(f"{arm_obj.name} is not an SMPL-X rig made by this add-on")
    data = json.loads(arm_obj["p2p_rest"])
    kind = body_kind(arm_obj.get("p2p_body_model", "smplx"))
    joints = np.asarray(data["joints"])
    jexpr = np.asarray(data["joint_expression"]).reshape(len(joints), 3, kind.num_expression)
    rest = RigRest(betas=np.asarray(arm_obj["p2p_betas"], dtype=np.float64), vertices=None,
                   joints=joints, tails=None, roll_z=None, joint_expression=jexpr,
                   parents=np.asarray(data["parents"]), kind=kind)
    arm = arm_obj.data
    mats = np.array([np.array(arm.bones[n].matrix_local, dtype=np.float64)
                     for n in kind.joint_names])
    mesh_obj = bpy.data.objects.get(arm_obj.get("p2p_mesh", ""))
    if mesh_obj is None or mesh_obj.parent != arm_obj:
        mesh_obj = next((c for c in arm_obj.children if c.type == 'MESH'), None)
    return Rig(arm_obj, mesh_obj, rest, mats[:, :3, :3], mats[:, :3, 3])
