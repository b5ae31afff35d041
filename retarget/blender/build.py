# SPDX-License-Identifier: GPL-3.0-or-later
"""One take into the current Blender scene: rig, take action, camera, timing.

``build_take_scene`` is the one take-to-scene path: ``convert``, ``export`` (of a
take file) and the add-on's import all use it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import bpy
import numpy as np

from ..errors import RetargetError
from ..smoothing import NO_SMOOTHING, Smoothing, smooth_take
from ..smplx_model import BODY_KINDS, SmplxModel
from ..take import Take
from .anim import Smoother, TakeActions, check_rig_can_take, write_take_actions
from .rig import Rig, build_rig, rig_from_armature
from .scene import create_camera, set_scene_timing


@dataclass
class TakeScene:
    rig: Rig
    actions: TakeActions
    camera: "bpy.types.Object | None"
    notes: list = field(default_factory=list)


def median_betas(take: Take) -> np.ndarray:
    """The body shape the rig bakes in: median of ``betas`` over valid frames. -> ``(10,)``."""
    if not take.valid.any():
        raise RetargetError("the take has no valid frames (nobody was found in any frame)")
    return np.median(np.asarray(take.params["betas"], dtype=np.float64)[take.valid], axis=0)


def find_person_rig(scene, person_id: int, smplx_path=None) -> Rig | None:
    """The rig already built in ``scene`` for ``person_id`` (and this model file, SMPL-X or
    SMPL), if any."""
    for ob in scene.objects:
        if ob.type != 'ARMATURE' or "p2p_rig" not in ob:
            continue
        if ob.get("p2p_person_id") != int(person_id):
            continue
        if smplx_path is not None and ob.get("p2p_smplx_path") != str(smplx_path):
            continue
        return rig_from_armature(ob)
    return None


def build_take_scene(model: SmplxModel, take: Take, *, scene=None,
                     smoothing: Smoothing = NO_SMOOTHING, pose_correctives: bool = True,
                     shape_keys: bool = True, camera: bool = True,
                     timing: bool = True, reuse_rig: bool = True,
                     smoother: Smoother = smooth_take) -> TakeScene:
    """Rig for the take's person (median betas), the take as an NLA action, camera, timing.

    One armature per person: with ``reuse_rig`` a rig already in the scene for
    the same person id and model file gets the take as one more NLA take (its
    body shape stays the one it was built with). Per-frame betas that differ
    from the median are not followed: the rig's body shape is fixed (the
    notes say how far they spread). The take's camera is made once per
    footage: a scene camera made for the same source is kept. ``smoother``:
    ``(take, smoothing) -> take`` (default ``smooth_take``, scipy here).
    """
    check_rig_can_take(take)
    if model.kind.name != take.body_model:  # before anything is built
        where = f"{take.path.name}: " if take.path is not None else ""
        raise RetargetError(f"{where}the take is for the {BODY_KINDS[take.body_model].label} "
                            f"body; the model file {model.path.name} is {model.kind.label}")
    scene = scene or bpy.context.scene
    notes = list(take.notes)
    betas = median_betas(take)
    spread = np.abs(np.asarray(take.params["betas"])[take.valid] - betas).max()
    if take.standin:
        notes.append("the take was estimated with STAND-IN model files: its motion is meaningless")
    rig = find_person_rig(scene, take.person_id, model.path) if reuse_rig else None
    if rig is None:
        if spread > 1e-6:
            notes.append(f"per-frame betas vary by up to {spread:.3g}; the rig uses their median")
        rig = build_rig(model, betas, label=f"person {take.person_id}",
                        collection=scene.collection, shape_keys=shape_keys,
                        pose_correctives=pose_correctives)
        rig.armature["p2p_person_id"] = int(take.person_id)
    else:
        notes.append(f"added the take to the existing rig {rig.armature.name!r} "
                     "(its body shape is kept)")
    actions = write_take_actions(rig, take, smoothing, smoother=smoother)
    cam = None
    if camera:
        current = scene.camera
        if current is not None and current.get("p2p_camera_source") == take.source:
            cam = current
        else:
            cam, cam_notes = create_camera(scene, take, collection=scene.collection)
            cam["p2p_camera_source"] = take.source
            notes += cam_notes
    if timing:
        set_scene_timing(scene, take)
    return TakeScene(rig, actions, cam, notes)
