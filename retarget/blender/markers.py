# SPDX-License-Identifier: GPL-3.0-or-later
"""QA flags as timeline markers: one marker per flag, named by its kind (``QA wrist_flip``),
at the Blender frame where the flagged span starts.

Only our own markers are ever replaced: the markers made for a take are recorded on the
scene (``p2p_qa_markers``: JSON ``{take uid: [[name, frame], ...]}``) and a marker is
removed only while it still has a recorded name and frame. A marker the user made, or
one of ours the user renamed or moved, is left alone.
"""
from __future__ import annotations

import json

MARKER_PREFIX = "QA "
RECORD = "p2p_qa_markers"   # scene custom property (see the module docstring)


def marker_name(kind: str) -> str:
    return f"{MARKER_PREFIX}{kind}"


def _record(scene) -> dict:
    try:
        d = json.loads(scene.get(RECORD, "{}"))
    except (TypeError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def take_markers(scene, uid: str) -> list:
    """The scene's markers this module made for take ``uid`` (still named and placed so)."""
    want = [(str(n), int(f)) for n, f in _record(scene).get(uid, [])]
    out, used = [], set()
    for name, frame in want:
        for m in scene.timeline_markers:
            if m.name == name and m.frame == frame and m.as_pointer() not in used:
                used.add(m.as_pointer())
                out.append(m)
                break
    return out


def clear_flag_markers(scene, uid: str) -> int:
    """Remove take ``uid``'s markers (ours only). Returns how many were removed."""
    mine = take_markers(scene, uid)
    for m in mine:
        scene.timeline_markers.remove(m)
    rec = _record(scene)
    if uid in rec:
        del rec[uid]
        scene[RECORD] = json.dumps(rec)
    return len(mine)


def replace_flag_markers(scene, uid: str, flags) -> list:
    """Markers for ``flags`` (``(kind, frame)`` pairs) of take ``uid``, replacing the
    markers made for it before. Returns the new markers."""
    clear_flag_markers(scene, uid)
    made, rec_items = [], []
    for kind, frame in flags:
        name = marker_name(kind)
        made.append(scene.timeline_markers.new(name, frame=int(frame)))
        rec_items.append([name, int(frame)])
    rec = _record(scene)
    if rec_items:
        rec[uid] = rec_items
    scene[RECORD] = json.dumps(rec)
    return made
