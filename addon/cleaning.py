# SPDX-License-Identifier: GPL-3.0-or-later
"""The motion clean-up of a take in Blender, live and non-destructive.

A take's body action stores the raw take (``retarget.blender.anim``); the clean-up
re-solves the keys from it with ``ConvertOptions`` (``clean`` set) like smoothing
does: the action's keys are rewritten, the stored raw take is never changed, so
turning the clean-up off (or changing any setting) starts again from the raw take
without estimating again. On the body action:

* ``p2p_clean`` (JSON): the ``CleanOptions`` the keys were cleaned with (absent: not
  cleaned); ``p2p_smoothing`` holds the smoothing, as before;
* ``p2p_qa_flags`` (collection, registered by ``qa_ui``): the QA flags that remain
  after the clean-up, with the frames they span and whether the user ignored them
  (an ignored flag stays ignored while a re-solve finds the same span);
* the flags that are not ignored are timeline markers ``QA <kind>``
  (``retarget.blender.markers``).

``add_raw_track`` keys the raw take as a muted NLA track above, to compare.

The clean-up runs here (the model is read once and kept) when Blender's Python has scipy
or the settings need none (One Euro, Butterworth or no smoothing; foot locking and the
fixes are numpy only), else in the
worker (``clean`` request: a fresh worker per re-solve, seconds).
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from .paths import have_scipy, model_flags, new_log_path, worker_python

CLEAN_PROP = "p2p_clean"
FLAGS_PROP = "p2p_qa_flags"
# What "Fix" does to a flag of each kind: a fix of the QA pass applied to every flag of
# that kind before filtering (CleanOptions.fix_flags), or a clean-up setting turned on.
FIX_OF_KIND = {"dropout": "interpolate", "low_confidence": "interpolate",
               "wrist_flip": "interpolate", "lr_swap": "interpolate",
               "joint_limit": "interpolate", "reprojection": "interpolate"}
SETTING_OF_KIND = {"foot_skate": "clean_foot_lock", "penetration": "clean_penetration_fix"}
# smoothing that needs no scipy (Blender's own Python): Butterworth by retarget.iir
NUMPY_METHODS = ("none", "one_euro", "butterworth")

_MODELS: dict = {}   # (path, mtime) -> SmplxModel: a live re-solve does not re-read the model


def clean_options_from_props(props):
    """The panel's clean-up settings as ``CleanOptions`` (None: the clean-up is off)."""
    from ..retarget.cleanup.clean import CleanOptions

    if not props.clean_enabled:
        return None
    return CleanOptions(foot_lock=bool(props.clean_foot_lock),
                        penetration_fix=bool(props.clean_penetration_fix),
                        fix_flags=props.clean_fix_flags,
                        # (Blender stores float32: 0.05 reads 0.0500000007; 6 decimals is
                        # what float32 holds, so the defaults read back as CleanOptions')
                        contact_height=round(float(props.clean_contact_height), 6),
                        contact_speed=round(float(props.clean_contact_speed), 6),
                        min_contact_frames=int(props.clean_min_contact),
                        blend_frames=int(props.clean_lock_blend))


# --------------------------------------------------------------------------- solvers

def _model(path, body_model: str):
    from ..retarget.smplx_model import load_body_model

    p = Path(path)
    key = (str(p.resolve()), p.stat().st_mtime_ns, body_model)
    if key not in _MODELS:
        _MODELS.clear()
        _MODELS[key] = load_body_model(p, body_model)
    return _MODELS[key]


def local_solver(context):
    """``(take, ConvertOptions) -> (cleaned take, flag dicts, notes)`` in this process."""
    from ..retarget.resolve import clean_with_model
    from .paths import take_model_file

    flags = model_flags(context)

    def solve(take, options):
        path = take_model_file(flags, take, options.gender or take.gender)
        return clean_with_model(take, _model(path, take.body_model), options)

    return solve


def worker_solver(context):
    """The same as ``local_solver``, by the runtime interpreter's worker (``clean``)."""
    python = worker_python(context)
    if not python:
        raise RuntimeError("the clean-up needs scipy, which Blender's Python lacks, or the "
                           "runtime interpreter (set it in the add-on preferences)")
    flags = model_flags(context)

    def solve(take, options):
        from ..retarget.take import read_take, write_take
        from ..worker.client import run_worker_request
        from .paths import take_model_file

        # the model file found here, as for the local solver (SMPL-X or SMPL by the take)
        flag = str(take_model_file(flags, take, options.gender or take.gender))

        with tempfile.TemporaryDirectory(prefix="p2p_clean_") as tmp:
            src = write_take(Path(tmp) / "raw.take.npz", take)
            out = Path(tmp) / "cleaned.take.npz"
            reply = run_worker_request(python, {"cmd": "clean", "take": str(src),
                                                "options": options.to_dict(), "smplx": flag,
                                                "out": str(out)},
                                       "cleaned", timeout=300, log_path=new_log_path("worker"))
            return (read_take(out, strict=True), list(reply.get("flags", [])),
                    [str(n) for n in reply.get("notes", [])])

    return solve


def needs_scipy(options) -> bool:
    """Whether re-solving with ``options`` (``ConvertOptions``) needs scipy: only smoothing
    other than ``NUMPY_METHODS`` (savgol, gaussian). The ground, contacts and foot locking
    low-pass the feet with Butterworth and a ``refilter`` fix uses ``Smoothing()`` (One
    Euro): numpy only."""
    return options.smoothing.method not in NUMPY_METHODS


def solver_for(context, options):
    """Here when this Python can (scipy, or numpy-only settings), else the worker."""
    if have_scipy() or not needs_scipy(options):
        return local_solver(context)
    return worker_solver(context)


# --------------------------------------------------------------------------- the take

def take_uid(action) -> str:
    return json.loads(action["p2p_take"])["uid"]


def _flag_key(kind, frame, end_frame, joint) -> tuple:
    return (str(kind), int(frame), int(end_frame), str(joint or ""))


def store_flags(action, flags) -> None:
    """The flag dicts on ``action``'s flag list; ignored spans stay ignored."""
    items = getattr(action, FLAGS_PROP)
    ignored = {_flag_key(f.kind, f.frame, f.end_frame, f.joint) for f in items if f.ignored}
    items.clear()
    for d in flags:
        f = items.add()
        f.kind, f.severity = str(d["kind"]), str(d.get("severity", "warning"))
        f.frame, f.end_frame = int(d["frame"]), int(d["end_frame"])
        f.reason, f.joint = str(d.get("reason", ""))[:1000], str(d.get("joint") or "")
        f.ignored = _flag_key(f.kind, f.frame, f.end_frame, f.joint) in ignored
    # (p2p_qa_index is left as it is: setting it would jump the current frame)


def update_markers(scene, action) -> list:
    """Timeline markers for the take's flags that are not ignored (replacing its own)."""
    from ..retarget.blender.markers import replace_flag_markers

    shown = [(f.kind, f.frame) for f in getattr(action, FLAGS_PROP) if not f.ignored]
    return replace_flag_markers(scene, take_uid(action), shown)


def clean_take_keys(scene, armature, options, action=None, *, solver) -> tuple:
    """Re-solve the take (``action``: its body action, default the top one) from its stored
    raw take with ``options`` (``clean`` set) and rewrite its keys; its flags and markers
    follow. Returns ``(action, flag dicts, notes)``."""
    from ..retarget.blender.anim import resmooth_take

    got: dict = {}

    def smoother(take, _smoothing):
        cleaned, got["flags"], got["notes"] = solver(take, options)
        return cleaned

    action = resmooth_take(armature, options.smoothing, action, smoother=smoother)
    action[CLEAN_PROP] = json.dumps(options.clean.to_dict())
    store_flags(action, got["flags"])
    update_markers(scene, action)
    return action, got["flags"], got["notes"]


def clear_clean(scene, action) -> None:
    """The take is not cleaned (its keys were re-solved without the clean-up): no clean
    settings, flags or markers."""
    from ..retarget.blender.markers import clear_flag_markers

    if CLEAN_PROP in action:
        del action[CLEAN_PROP]
    getattr(action, FLAGS_PROP).clear()
    clear_flag_markers(scene, take_uid(action))


def add_raw_track(armature, action):
    """The take's stored raw take (no smoothing, no clean-up) keyed as a new muted NLA track
    on top, named ``<take> raw``, for an A/B look: unmute it to see the raw motion over the
    cleaned one. Its actions hold keys only (role ``raw``, no take data), so they are not a
    take of their own. Returns ``TakeActions``."""
    from ..retarget.blender.anim import raw_take_from_action, write_take_actions
    from ..retarget.blender.rig import rig_from_armature
    from ..retarget.smoothing import NO_SMOOTHING

    raw = raw_take_from_action(action)
    made = write_take_actions(rig_from_armature(armature), raw, NO_SMOOTHING,
                              name=f"{action.name} raw")
    for act in (made.body, made.face):
        if act is None:
            continue
        for key in ("p2p_take", "p2p_take_data", "p2p_smoothing", "p2p_take_uid",
                    "p2p_face_action"):
            if key in act:
                del act[key]
        act["p2p_role"] = "raw"
    for track in (made.body_track, made.face_track):
        if track is not None:
            track.mute = True
    return made


def take_clean_options(action):
    """The ``CleanOptions`` a take's keys were cleaned with, or None."""
    from ..retarget.cleanup.clean import CleanOptions

    text = action.get(CLEAN_PROP)
    return CleanOptions.from_dict(json.loads(text)) if text else None
