# SPDX-License-Identifier: GPL-3.0-or-later
"""Text for people: the one way time left is written (the CLI's progress line, the
add-on's status text)."""
from __future__ import annotations

import math


def format_eta(seconds) -> str:
    """Seconds left as ``m:ss`` (``h:mm:ss`` from an hour on); ``--:--`` when unknown
    (None, NaN, infinite). Negative values count as 0."""
    if seconds is None:
        return "--:--"
    try:
        seconds = float(seconds)
    except (TypeError, ValueError):
        return "--:--"
    if not math.isfinite(seconds):
        return "--:--"
    s = max(0, int(round(seconds)))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
