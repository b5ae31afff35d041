# SPDX-License-Identifier: GPL-3.0-or-later
"""Driving the rig Rigify *generates* through its FK controls (numpy only, no bpy).

In the generated rig the deform (``DEF-``) bones copy ``ORG-`` bones and tweak bones
through constraints, so keys on them do nothing; what an animator keys are the
controls. This module turns the solve on the rig's deform bones into keys on its FK
controls, so that Blender's evaluation of the rig puts the DEF bones where the solve
put them.

How (facts read from Rigify 0.6.10's generated rig, Blender 5.0.1 and 4.2):

* The solve runs on the rig's DEF bones re-parented into one tree (``deform_skeleton``:
  what the ``rigify`` deform preset drives) with ``spread=False``: Rigify's neck
  control turns both neck DEF bones as one piece, so the solve must too.
* Each FK control *carries* one DEF bone: with the switches below, the control's
  world rotation change equals that bone's, and the chain of effective parents
  (the MCH bones between two controls are rigid at rest with these switches) is a
  plain hierarchy: ``L_c = R_c^T D_e^T D_d R_c`` (``R_c`` the control's rest frame,
  ``D_e`` its effective parent's world change, ``D_d`` the carried bone's).
* ``torso`` is the root of the body: the upper spine (``spine_fk.002``) and, upside
  down, the lower spine (``spine_fk.001`` -> ``spine_fk``) hang from it at the head
  of ``DEF-spine.002``. It carries the hips' rotation (``DEF-spine``) and the root
  motion: its location puts that joint where the solve puts it.
* Switches, keyed (constant) in the same action, so a muted track gives the user's
  rig back its own behaviour and nothing is set on the rig itself:
  ``IK_FK`` = 1 on ``thigh_parent.*`` / ``upper_arm_parent.*`` (the ORG limb bones'
  Copy Transforms of the IK chain has the driven influence ``1 - IK_FK``: the
  generated default 0 is IK); ``FK_limb_follow`` = 0 (the influence of the limb
  parent's Copy Rotation of ``root``: 0, the default, is a plain child of the
  shoulder/hips); ``neck_follow`` = ``head_follow`` = 1 on ``torso`` (the influence
  of ``MCH-ROT-neck``/``MCH-ROT-head``'s Copy Rotation of the torso is ``1 - follow``:
  1 is a plain child; the generated defaults 0.5 and 0 keep the neck half and the
  head fully turned with the torso).
* ``jaw_master`` carries ``DEF-jaw`` (jaw and chin hang from it): the jaw turns about
  Rigify's hinge, so ``DEF-jaw``'s head is not where the deform solve (turning it about its
  own head) puts it; its direction is. The jaw and fingers are optional (a rig generated
  without them is driven without them).
* Keyed at rest: ``root``, ``hips`` and ``chest`` (the spine MCH bones copy half of
  their *local* transforms: at rest that is nothing) and the finger ``*_master``
  controls (their scale drives the curl; rotation and scale at rest).

What the controls cannot express (Rigify's own mechanics decide): the roll (X axis)
of bones Rigify builds by Stretch To from a frame that is not the control's --
``DEF-spine.001``/``.002`` (the ``MCH-pivot`` blend), ``DEF-spine.005`` (half the
head's twist), the first bone of each finger and thumb (no twist about its own
axis) -- and the twist Rigify spreads along the upper arm and thigh and the ``.001``
halves of every limb segment (its tweak bones; the deform preset's twist shares are
not used). Their directions (Y axes) and every head are exact (``ROLL_FROM_RIGIFY``).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import RetargetError
from ..rotations import matrix_to_quaternion
from .rig_target import RigTarget, TargetBone, TargetSkeleton

NAME = "rigify"
_SIDES = ("L", "R")
_FINGERS = ("thumb", "f_index", "f_middle", "f_ring", "f_pinky")
TORSO = "torso"
TORSO_ANCHOR = "DEF-spine.002"   # where the spine chains hang from the torso (its head)


def _controls() -> tuple:
    """``(control, carried DEF bone, effective parent control or None)``, parents first."""
    rows = [(TORSO, "DEF-spine", None),
            ("spine_fk.001", "DEF-spine.001", TORSO),
            ("spine_fk", "DEF-spine", "spine_fk.001"),
            ("spine_fk.002", "DEF-spine.002", TORSO),
            ("spine_fk.003", "DEF-spine.003", "spine_fk.002"),
            ("neck", "DEF-spine.004", "spine_fk.003"),
            ("head", "DEF-spine.006", "neck"),
            ("jaw_master", "DEF-jaw", "head")]       # (jaw and chin hang from it)
    for S in _SIDES:
        rows += [(f"shoulder.{S}", f"DEF-shoulder.{S}", "spine_fk.003"),
                 (f"upper_arm_fk.{S}", f"DEF-upper_arm.{S}", f"shoulder.{S}"),
                 (f"forearm_fk.{S}", f"DEF-forearm.{S}", f"upper_arm_fk.{S}"),
                 (f"hand_fk.{S}", f"DEF-hand.{S}", f"forearm_fk.{S}"),
                 (f"thigh_fk.{S}", f"DEF-thigh.{S}", "spine_fk"),
                 (f"shin_fk.{S}", f"DEF-shin.{S}", f"thigh_fk.{S}"),
                 (f"foot_fk.{S}", f"DEF-foot.{S}", f"shin_fk.{S}"),
                 (f"toe_fk.{S}", f"DEF-toe.{S}", f"foot_fk.{S}")]
        for f in _FINGERS:
            parent = f"hand_fk.{S}"
            for k in (1, 2, 3):
                rows.append((f"{f}.0{k}.{S}", f"DEF-{f}.0{k}.{S}", parent))
                parent = f"{f}.0{k}.{S}"
    return tuple(rows)


CONTROLS = _controls()
# (pose bone, custom property, value) keyed constant: FK, limbs and neck/head as plain children.
SWITCHES = tuple([(f"{limb}_parent.{S}", prop, value) for S in _SIDES
                  for limb in ("upper_arm", "thigh")
                  for prop, value in (("IK_FK", 1.0), ("FK_limb_follow", 0.0))]
                 + [(TORSO, "neck_follow", 1.0), (TORSO, "head_follow", 1.0)])
AT_REST = ("root", "hips", "chest") + tuple(f"{f}.01_master.{S}" for S in _SIDES
                                             for f in _FINGERS)
# DEF bones whose roll (X axis) Rigify sets itself (see the module notes): only their
# direction follows the controls. The limbs' .001 halves are Rigify's twist bones.
ROLL_FROM_RIGIFY = (("DEF-spine.001", "DEF-spine.002", "DEF-spine.005")
                    + tuple(f"DEF-{f}.01.{S}" for S in _SIDES for f in _FINGERS)
                    + tuple(f"DEF-{b}.{S}" for S in _SIDES for b in ("upper_arm", "thigh"))
                    + tuple(f"DEF-{b}.{S}.001" for S in _SIDES
                            for b in ("upper_arm", "forearm", "thigh", "shin")))


def is_generated_rigify(bone_names) -> bool:
    """Whether an armature with these bones is a rig Rigify generated (its FK controls,
    switch holders and DEF bones are there)."""
    need = {"root", TORSO, "spine_fk", "thigh_fk.L", "upper_arm_fk.L", "thigh_parent.L",
            "upper_arm_parent.L", "DEF-spine", "DEF-spine.002"}
    return need <= set(bone_names)


def controls_target(deform: RigTarget) -> RigTarget:
    """The ``rigify`` preset driving the generated rig's controls, from the deform preset
    (same SMPL-X -> DEF map, used by the solve; no twist shares: Rigify twists itself)."""
    return replace(deform, name=NAME, drive="controls", twist={}, skeleton=None)


def _optional(control: str) -> bool:
    """The jaw and the fingers: a rig generated without them is driven without them."""
    return control == "jaw_master" or control.startswith(_FINGERS)


def missing_controls(bone_names) -> list:
    """The controls and switch holders the body needs that the armature lacks."""
    names = set(bone_names)
    want = [c for c, _, _ in CONTROLS if not _optional(c)] + [b for b, _, _ in SWITCHES]
    want.append("root")
    return sorted({c for c in want if c not in names})


# --------------------------------------------------------------------------- skeletons

def deform_skeleton(rig: TargetSkeleton) -> TargetSkeleton:
    """The generated rig's DEF bones (and ``root``) re-parented into one tree: each DEF
    bone hangs from the DEF bone that moves like the ORG/MCH/control bone it hangs from
    in the rig (the same rule as the ``rigify`` reference skeleton). Same object
    transform as the rig."""
    from .builtin import _rigify_parent

    keep = [b for b in rig.bones if b.name.startswith("DEF-") or b.name == "root"]
    if not any(b.name == "root" for b in keep):
        raise RetargetError(f"{rig.name}: no 'root' bone (not a rig Rigify generated?)")
    names = {b.name for b in keep}
    bones = []
    for b in keep:
        parent = None if b.name == "root" else _rigify_parent(b.name, b.parent, names)
        if parent is not None and parent not in names:
            parent = "root"
        bones.append(TargetBone(b.name, parent, b.head, b.tail, b.roll))
    return TargetSkeleton(name=rig.name, bones=tuple(bones), object_matrix=rig.object_matrix,
                          units=rig.units)


# --------------------------------------------------------------------------- keys

def control_channels(motion, deform: TargetSkeleton, rig: TargetSkeleton):
    """The solve on ``deform`` (``retarget(..., deform, spread=False)``) as FK control keys.

    -> ``(bone names [N], rotations (T, N, 4) wxyz pose-bone local, locations
    {bone: (T, 3)})``: the controls of ``CONTROLS`` (``torso`` also located) and the
    ``AT_REST`` bones (identity, zero location).
    """
    dix = {n: i for i, n in enumerate(motion.bone_names)}
    rix = rig.index()
    missing = missing_controls(rig.names)
    if missing:
        raise RetargetError(f"{rig.name}: not a rig Rigify generated (no bone "
                            f"{', '.join(repr(m) for m in missing[:4])})")
    Ro = rig.object_rotation
    R = rig.matrices                                  # (B, 3, 3) armature-space rest frames
    H = rig.heads
    T = motion.rotations.shape[0]

    def D(bone):                                      # (T, 3, 3) armature-space change
        return Ro.T @ motion.world_rotation_list[dix[bone]] @ Ro

    changes = {}
    names, quats = [], []
    for ctrl, carried, parent in CONTROLS:
        if _optional(ctrl) and (ctrl not in rix or carried not in dix
                                or (parent is not None and parent not in changes)):
            continue
        Dd = D(carried)
        changes[ctrl] = Dd
        Rc = R[rix[ctrl]]
        rel = Dd if parent is None else np.swapaxes(changes[parent], -1, -2) @ Dd
        names.append(ctrl)
        quats.append(matrix_to_quaternion(Rc.T @ rel @ Rc))
    # torso: rotates about its head; its location puts the anchor joint where the solve has it.
    ht = H[rix[TORSO]]
    anchor = deform.index()[TORSO_ANCHOR]
    P_anchor = deform.from_world(motion.world_heads[:, dix[TORSO_ANCHOR]])    # (T, 3)
    P_t = P_anchor + changes[TORSO] @ (ht - deform.heads[anchor])
    locations = {TORSO: (P_t - ht) @ R[rix[TORSO]]}                            # R^T (P - h)
    ident = np.tile([1.0, 0.0, 0.0, 0.0], (T, 1))
    for b in AT_REST:
        if b in rix:
            names.append(b)
            quats.append(ident)
            locations[b] = np.zeros((T, 3))
    return names, np.stack(quats, axis=1), locations


def rest_scale_bones(bone_names) -> list:
    """The ``AT_REST`` bones present whose scale is keyed to 1 (the finger masters' scale
    curls the fingers)."""
    names = set(bone_names)
    return [b for b in AT_REST if b in names and b.endswith(tuple(f"_master.{S}" for S in _SIDES))]
