# SPDX-License-Identifier: GPL-3.0-or-later
"""Key a take onto a rig: each estimate becomes new actions pushed to the NLA.

A take is written as two actions that share a take id:

* the **body action** (``"<take name>"``) on the armature object: for every
  bone ``rotation_quaternion`` (sign-continuous), ``location`` for the root
  and for bones the face expression moves; grouped by bone;
* the **face action** (``"<take name> face"``) on the body mesh's shape-key
  datablock: ``Exp000``..``Exp009`` and, when the rig has them, ``Pose000``..
  ``Pose485`` values.

Each goes into a new NLA track on top of the existing ones (named after the
take) and the datablock's active action is left as it was, so earlier takes
stay untouched and can be switched on and off in the NLA editor. Names that
are taken get Blender's numeric suffix (``.001``). Rows with ``valid=False``
get no keys: the linear F-curves interpolate across the gap.

Blender frame of a row = ``1 + frame_index - frame_index[0]``.

The raw (unsmoothed) take is kept on the body action, so ``resmooth_take`` can
filter it again with other settings and rewrite the keys of that take only:

* ``p2p_take_data`` (bytes): the take itself, serialized like a take file
  (``retarget.take.take_to_bytes``: a ``p2p-take/2`` ``.npz``, stored rather
  than deflated, of its core without the ``raw_`` arrays, which stay in the
  file) and read back with the same checks (``take_from_bytes``); exact, and
  bounded by the take's limits (about 7.5 MB per 10,000 float32 rows);
* ``p2p_take`` (JSON): the take's uid (shared with its face action), the file it
  came from, its notes, and a few descriptive fields;
* ``p2p_smoothing`` (JSON): the ``Smoothing`` its keys were made with.

Rigs made before take format 2 stored the parameters as ``p2p_raw`` (a group of
float arrays) with the metadata in ``p2p_take``; they are still read.

Smoothing is a parameter (``Smoother``: ``(take, settings) -> smoothed take``);
the default is ``retarget.smoothing.smooth_take`` (scipy, here); the add-on
passes one that asks its worker when Blender's Python has no scipy.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import bpy
import numpy as np

from ..errors import RetargetError
from ..posing import PoseChannels, pose_channels
from ..smoothing import NO_SMOOTHING, Smoothing, smooth_take
from ..smplx_model import BODY_KINDS
from ..take import PARAM_COLUMNS, Take, take_from_bytes, take_to_bytes
from .fcurves import Curve, action_channelbag, write_curves
from .rig import Rig, expression_key_name, pose_key_name, rig_from_armature


TAKE_DATA = "p2p_take_data"  # custom property: the take, serialized (take_to_bytes)
# (take, settings) -> the take with smoothed parameters (same rows)
Smoother = Callable[[Take, Smoothing], Take]


@dataclass
class TakeActions:
    body: "bpy.types.Action"
    face: "bpy.types.Action | None"
    body_track: object
    face_track: object
    frames: np.ndarray  # (n,) Blender frames that got keys


def blender_frames(frame_index: np.ndarray) -> np.ndarray:
    """Blender frame of every row, ``1 + frame_index - frame_index[0]``: ``(T,)`` -> ``(T,)``."""
    fi = np.asarray(frame_index, dtype=np.int64)
    return 1 + fi - fi[0]


def take_name(take: Take) -> str:
    stem = Path(take.source).stem if take.source else (take.path.stem if take.path else "take")
    return f"{stem} p{take.person_id}"


def _valid_params(take: Take) -> dict:
    return {k: np.asarray(v, dtype=np.float64)[take.valid] for k, v in take.params.items()}


def _body_curves(ch: PoseChannels, names):
    curves = []
    for j, name in enumerate(names):
        base = f'pose.bones["{name}"]'
        for c in range(4):
            curves.append(Curve(f"{base}.rotation_quaternion", c, ch.quaternions[:, j, c], name))
        if ch.located[j]:
            for c in range(3):
                curves.append(Curve(f"{base}.location", c, ch.locations[:, j, c], name))
    return curves


def _face_curves(ch: PoseChannels, key):
    names = set(key.key_blocks.keys())
    curves = []
    for k in range(ch.expression.shape[1]):
        n = expression_key_name(k)
        if n in names:
            curves.append(Curve(f'key_blocks["{n}"].value', 0, ch.expression[:, k], "Expression"))
    if pose_key_name(0) in names:
        for k in range(ch.pose_features.shape[1]):
            curves.append(Curve(f'key_blocks["{pose_key_name(k)}"].value', 0,
                                ch.pose_features[:, k], "Pose correctives"))
    return curves


def check_rig_can_take(take: Take, rig: Rig | None = None) -> None:
    """Refuse a take whose body model no rig has, or (given ``rig``) another body model than
    the rig's (an SMPL take on an SMPL-X rig, or the other way round)."""
    where = f"{take.path.name}: " if take.path is not None else ""
    if take.body_model not in BODY_KINDS:
        raise RetargetError(f"{where}the take's body model is {take.body_model!r}; the "
                            f"Blender rig knows {', '.join(BODY_KINDS)}")
    if rig is not None and rig.rest.kind.name != take.body_model:
        raise RetargetError(f"{where}the take is for the {BODY_KINDS[take.body_model].label} "
                            f"body; rig {rig.armature.name!r} is {rig.rest.kind.label}")


def compute_channels(rig: Rig, take: Take) -> tuple[np.ndarray, PoseChannels]:
    """Blender frames and pose channels of the take's valid rows (no bpy writes)."""
    check_rig_can_take(take, rig)
    if not take.valid.any():
        raise RetargetError("the take has no valid frames (nobody was found in any frame)")
    frames = blender_frames(take.frame_index)[take.valid]
    key = rig.mesh.data.shape_keys if rig.mesh is not None else None
    has_pose_keys = key is not None and key.key_blocks.get(pose_key_name(0)) is not None
    ch = pose_channels(_valid_params(take), rig.rest, rig.bone_rest, rig.bone_heads,
                       with_pose_features=has_pose_keys)
    return frames, ch


def _push(id_data, action, bag, frame_start: int, name: str):
    ad = id_data.animation_data or id_data.animation_data_create()
    track = ad.nla_tracks.new()  # appended on top
    track.name = name
    strip = track.strips.new(action.name, int(frame_start), action)
    if bag.slot is not None and getattr(strip, "action_slot", bag.slot) is None:
        strip.action_slot = bag.slot
    strip.blend_type = 'REPLACE'
    return track


def _store_raw(action, take: Take, data: bytes, smoothing: Smoothing, uid: str):
    """The take (``data``: its core, serialized like a file) and its identity on the body
    action."""
    meta = {
        "uid": uid, "path": str(take.path) if take.path else "", "source": take.source,
        "model": take.model, "estimator": take.estimator, "person_id": int(take.person_id),
        "notes": list(take.notes),
    }
    action["p2p_take"] = json.dumps(meta)
    action["p2p_smoothing"] = json.dumps(smoothing.to_dict())
    action[TAKE_DATA] = data


def raw_take_from_action(action) -> Take:
    """The raw take stored on a body action by ``write_take_actions`` (exactly the take
    it was given, without raw_ arrays); rigs made before take format 2 are read too."""
    if "p2p_take" not in action:
        raise RetargetError(f"action {action.name!r} is not a take written by this add-on")
    meta = json.loads(action["p2p_take"])
    data = action.get(TAKE_DATA)
    if data is not None:
        take = take_from_bytes(bytes(data), name=f"the take stored on action {action.name!r}")
        take.path = Path(meta["path"]) if meta.get("path") else None
        take.notes = list(meta.get("notes", []))
        return take
    raw = action.get("p2p_raw")
    if raw is None:
        from ..take import read_take

        path = Path(meta.get("path", ""))
        if not meta.get("path") or not path.is_file():
            raise RetargetError(f"the raw data of take {action.name!r} is gone and its file "
                                f"{path} does not exist")
        return read_take(path)
    return _take_from_old_properties(meta, raw)


def _take_from_old_properties(meta: dict, raw) -> Take:
    """A take as rigs made before take format 2 stored it (``p2p_raw`` + JSON metadata)."""
    frame_index = np.asarray(raw["frame_index"], dtype=np.int64)
    T = frame_index.shape[0]
    params = {k: np.asarray(raw[k], dtype=np.float64).reshape(T, cols)
              for k, cols in PARAM_COLUMNS.items()}

    def arr(k):
        return None if meta.get(k) is None else np.asarray(meta[k])

    return Take(fps=meta["fps"], frame_index=frame_index,
                valid=np.asarray(raw["valid"]).astype(bool), params=params,
                person_id=meta["person_id"], image_size=arr("image_size"), focal=arr("focal"),
                princpt=arr("princpt"), source=meta["source"], model=meta["model"],
                standin=meta["standin"], gender=meta["gender"],
                path=Path(meta["path"]) if meta["path"] else None, notes=meta.get("notes", []),
                estimator="pose2pose")


def _smoothed(take: Take, settings: Smoothing, smoother: Smoother) -> Take:
    out = smoother(take, settings)
    if out.num_frames != take.num_frames or not np.array_equal(out.frame_index,
                                                                take.frame_index):
        raise RetargetError("the smoother returned other rows than the take it was given")
    return out


def write_take_actions(rig: Rig, take: Take, smoothing: Smoothing = NO_SMOOTHING,
                       name: str | None = None, *,
                       smoother: Smoother = smooth_take) -> TakeActions:
    """Key ``take`` (smoothed with ``smoothing`` by ``smoother``) onto ``rig`` as a new
    NLA take; the unsmoothed take is stored on the body action.

    Returns the new actions and tracks. Existing actions, tracks and strips
    are not changed.
    """
    check_rig_can_take(take, rig)
    name = name or take_name(take)
    data = take_to_bytes(take, raw=False, compress=False, name=f"take {name!r}")
    smoothed = _smoothed(take, smoothing, smoother)
    frames, ch = compute_channels(rig, smoothed)
    uid = uuid.uuid4().hex
    arm_obj = rig.armature

    body = bpy.data.actions.new(name)
    body_bag = action_channelbag(body, arm_obj)
    write_curves(body_bag, frames, _body_curves(ch, rig.rest.kind.joint_names))
    body["p2p_role"] = "body"
    _store_raw(body, take, data, smoothing, uid)
    body_track = _push(arm_obj, body, body_bag, frames[0], body.name)

    face = face_track = None
    key = rig.mesh.data.shape_keys if rig.mesh is not None else None
    if key is not None:
        face = bpy.data.actions.new(f"{body.name} face")
        face_bag = action_channelbag(face, key)
        write_curves(face_bag, frames, _face_curves(ch, key))
        face["p2p_role"] = "face"
        face["p2p_take_uid"] = uid
        face_track = _push(key, face, face_bag, frames[0], face.name)
    body["p2p_face_action"] = face.name if face is not None else ""
    return TakeActions(body, face, body_track, face_track, frames)


def take_actions(arm_obj) -> list:
    """``(track, body action)`` of the takes on this armature's NLA, top track first."""
    ad = arm_obj.animation_data
    if ad is None:
        return []
    out = []
    for track in reversed(list(ad.nla_tracks)):
        for strip in track.strips:
            if strip.action is not None and "p2p_take" in strip.action:
                out.append((track, strip.action))
    return out


def _face_action_for(body_action):
    uid = json.loads(body_action["p2p_take"])["uid"]
    for a in bpy.data.actions:
        if a.get("p2p_take_uid") == uid:
            return a
    return None


def top_take_action(armature):
    """The body action of the take on the top-most unmuted NLA track."""
    takes = [(t, a) for t, a in take_actions(armature) if not t.mute]
    if not takes:
        raise RetargetError(f"{armature.name} has no take to smooth")
    return takes[0][1]


def resmooth_take(armature, settings: Smoothing, action=None, *,
                  smoother: Smoother = smooth_take):
    """Filter a take's raw data again with ``settings`` and rewrite only its keys.

    armature: a rig made by ``build_rig``; action: the take's body action
    (default: ``top_take_action``); smoother: ``(take, settings) -> take``
    (default: scipy here, ``smooth_take``). The take's actions keep their names,
    NLA strips and frames; only the key values change. Returns the body action.
    """
    if action is None:
        action = top_take_action(armature)
    rig = rig_from_armature(armature)
    raw = raw_take_from_action(action)
    frames, ch = compute_channels(rig, _smoothed(raw, settings, smoother))
    write_curves(action_channelbag(action, armature), frames,
                 _body_curves(ch, rig.rest.kind.joint_names))
    face = _face_action_for(action)
    key = rig.mesh.data.shape_keys if rig.mesh is not None else None
    if face is not None and key is not None:
        write_curves(action_channelbag(face, key), frames, _face_curves(ch, key))
    action["p2p_smoothing"] = json.dumps(settings.to_dict())
    return action


def take_smoothing(action) -> Smoothing:
    """The smoothing settings a take's keys were made with."""
    return Smoothing.from_dict(json.loads(action["p2p_smoothing"]))
