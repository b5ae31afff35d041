# SPDX-License-Identifier: GPL-3.0-or-later
"""Per-frame foot contact from height above the ground and speed (numpy only).

For each foot point (``kinematics.FOOT_POINTS``: heels and toes) a contact
*starts* when the point is lower than ``contact_height`` (m) and slower than
``contact_speed`` (m/s), and *ends* only when it rises above
``release_height`` or moves faster than ``release_speed`` (hysteresis: no
flicker at the thresholds). Then gaps shorter than ``min_contact_frames`` /
2 are closed and contacts shorter than ``min_contact_frames`` dropped.
Speeds are central differences of the points, so the input should already be
smoothed (``clean_take`` runs contacts after smoothing).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ground import Ground, feet_stack, point_speed
from .kinematics import FOOT_POINTS


@dataclass(frozen=True)
class Contacts:
    """``contact (T, F) bool`` for the foot points ``feet`` on ``ground``."""

    ground: Ground
    feet: tuple
    contact: np.ndarray

    def foot(self, side: str) -> np.ndarray:
        """``(T,) bool``: heel or toes of ``side`` ("left"/"right") on the ground."""
        cols = [i for i, f in enumerate(self.feet) if f.startswith(side + "_")]
        return self.contact[:, cols].any(axis=1)


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of consecutive True rows of a ``(T,)`` bool array."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]]).astype(np.int8)
    d = np.diff(m)
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def hysteresis(on: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Start where ``on``, stay while ``keep``. Both ``(T, ...)`` bool. -> ``(T, ...)``."""
    out = np.zeros_like(on, dtype=bool)
    state = np.zeros(on.shape[1:], bool)
    for t in range(on.shape[0]):  # O(T), tiny constant
        state = on[t] | (state & keep[t])
        out[t] = state
    return out


def clean_runs(mask: np.ndarray, min_frames: int) -> np.ndarray:
    """Close gaps shorter than ``min_frames // 2``, then drop runs shorter than ``min_frames``."""
    m = np.asarray(mask, bool).copy()
    gap = max(1, min_frames // 2)
    for a, b in runs(~m):
        if 0 < a and b < m.shape[0] and b - a < gap:
            m[a:b] = True
    for a, b in runs(m):
        if b - a < min_frames:
            m[a:b] = False
    return m


def find_contacts(motion, ground: Ground, settings) -> Contacts:
    """Contacts of ``motion`` (kinematics.TakeMotion). ``settings``: anything with
    ``contact_height``, ``release_height`` (m), ``contact_speed``, ``release_speed``
    (m/s) and ``min_contact_frames`` (``clean.CleanOptions``)."""
    feet = feet_stack(motion)                         # (T, 4, 3)
    h = ground.height(feet)                           # (T, 4)
    speed = point_speed(feet, motion.fps)             # (T, 4)
    v = np.asarray(motion.valid, bool)[:, None]
    on = v & (h < settings.contact_height) & (speed < settings.contact_speed)
    keep = v & (h < settings.release_height) & (speed < settings.release_speed)
    c = hysteresis(on, keep)
    c = np.stack([clean_runs(c[:, i], int(settings.min_contact_frames))
                  for i in range(c.shape[1])], axis=1)
    return Contacts(ground=ground, feet=FOOT_POINTS, contact=c)
