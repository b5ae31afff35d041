# SPDX-License-Identifier: GPL-3.0-or-later
"""Re-solve a take from its raw data with the motion clean-up (numpy; no bpy).

The add-on keys a take from the raw take stored on its body action; with the
clean-up on it asks ``clean_solver`` here (Blender's Python with scipy) or the
worker's ``clean`` request (without scipy; it calls ``clean_with_model`` too) for the cleaned take
and its QA flags, and rewrites the keys. Nothing here estimates again.

A flag travels as ``Flag.to_dict()`` plus ``frame`` and ``end_frame``: the Blender
frames of its first row and of the row after its last (``1 + frame_index -
frame_index[0]``, as the take's keys), so markers and the QA list need no take.
"""
from __future__ import annotations

import numpy as np

from .errors import RetargetError


def flag_rows(take, flags) -> list[dict]:
    """``[Flag.to_dict() + {"frame", "end_frame"}]`` of ``flags`` on ``take``'s rows."""
    fi = np.asarray(take.frame_index, dtype=np.int64)
    frames = 1 + fi - fi[0]
    n = len(frames)
    out = []
    for f in flags:
        d = f.to_dict()
        last = min(int(f.end), n) - 1
        d["frame"] = int(frames[min(int(f.start), n - 1)])
        d["end_frame"] = int(frames[last]) + 1
        out.append(d)
    return out


def clean_with_model(take, model, options) -> tuple:
    """``options`` (a ``ConvertOptions`` whose ``clean`` is set) applied to ``take``
    (its raw source when it was cleaned before): ``(cleaned take, flag dicts, notes)``."""
    from .cleanup.clean import clean_take

    if options.clean is None:
        raise RetargetError("re-solving with the clean-up needs clean settings")
    res = clean_take(take, model, options.smoothing, options.clean)
    return res.take, flag_rows(res.take, res.flags), [str(n) for n in res.notes]
