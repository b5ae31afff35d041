# SPDX-License-Identifier: GPL-3.0-or-later
"""Per-frame foot contact from height above the ground and speed (numpy only).

For each foot point (``kinematics.FOOT_POINTS``: heels and toes) a contact
*starts* when the point is lower than ``contact_height`` (m) and slower than
``contact_speed`` (m/s), and *ends* only when it rises above
``release_height`` or moves faster than ``release_speed`` (hysteresis: no
flicker at the thresholds). Then gaps shorter than ``min_contact_frames`` /
2 are closed and contacts shorter than ``min_contact_frames`` dropped; a
contact that holds two plants (the mean ankle positions of its parts more than
``MAX_DRIFT_M`` apart, or the feet turned more than ``MAX_TURN_DEG``) is split
(``split_drifting``), and each contact may grow by ``CONTACT_DILATE`` rows at
its ends while the point stays low and slow (``dilate_runs``: the low-pass blurs a
short running stance into its swings).
Heights and speeds are judged on foot points low-passed at ``ground.FEET_LOWPASS_HZ`` (2.5 Hz)
(``ground.feet_stack``).
Speeds are central differences of the points, so the input should already be
smoothed (``clean_take`` runs contacts after smoothing).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ground import FEET_LOWPASS_HZ, Ground, feet_stack, point_speed
from .kinematics import FOOT_POINTS

MAX_DRIFT_M = 0.09     # plants further apart than this are split (re-planted)
MAX_TURN_DEG = 25.0    # ... or turned further than this
CONTACT_DILATE = 2     # rows a contact may grow at each end (dilate_runs)


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
    c = split_drifting(c, motion, ground, int(settings.min_contact_frames))
    c = dilate_runs(c, keep, CONTACT_DILATE)
    return Contacts(ground=ground, feet=FOOT_POINTS, contact=c)


def dilate_runs(contact: np.ndarray, keep: np.ndarray, n: int) -> np.ndarray:
    """Each contact run grown by up to ``n`` rows at both ends where ``keep`` (low and
    slow enough to stay in contact) holds, without joining two runs: the low-pass
    blurs a short stance (running) into its swings, so it is detected a little late
    and ends a little early."""
    c = np.asarray(contact, bool).copy()
    if n <= 0:
        return c
    T = c.shape[0]
    for i in range(c.shape[1]):
        orig = c[:, i].copy()
        for a, b in runs(orig):
            for k in range(1, n + 1):
                t = a - k
                if t < 0 or not keep[t, i] or (t - 1 >= 0 and orig[t - 1]):
                    break
                c[t, i] = True
            for k in range(n):
                t = b + k
                if t >= T or not keep[t, i] or (t + 1 < T and orig[t + 1]):
                    break
                c[t, i] = True
    return c


TURN_SCALE = 0.5       # m per unit of forward-vector change, to weigh turning with sliding


def _split_points(x: np.ndarray, min_frames: int, max_drift: float, cos_turn: float) -> list:
    """Binary segmentation of a plant ``x (n, 6)`` (ground position, scaled forward):
    rows where it splits into pieces whose means differ by more than ``max_drift`` m
    or turn more than ``acos(cos_turn)``; each piece at least ``min_frames`` long."""
    n = x.shape[0]
    if n < 2 * min_frames + 1:
        return []
    cs = np.cumsum(np.vstack([np.zeros((1, x.shape[1])), x]), axis=0)
    cs2 = np.cumsum(np.concatenate([[0.0], (x * x).sum(1)]))
    k = np.arange(min_frames, n - min_frames)                     # split before row k

    def sse(lo, hi):
        m = hi - lo
        s1 = cs[hi] - cs[lo]
        return cs2[hi] - cs2[lo] - (s1 * s1).sum(-1) / m

    cost = sse(0, k) + sse(k, n)
    best = int(k[np.argmin(cost)])
    left, right = x[:best].mean(0), x[best:].mean(0)
    fl, fr = left[3:] / TURN_SCALE, right[3:] / TURN_SCALE
    cosang = fl @ fr / max(np.linalg.norm(fl) * np.linalg.norm(fr), 1e-9)
    if np.linalg.norm(left[:3] - right[:3]) <= max_drift and cosang >= cos_turn:
        return []
    return (_split_points(x[:best], min_frames, max_drift, cos_turn) + [best]
            + [best + 1 + j for j in _split_points(x[best + 1:], min_frames, max_drift,
                                                     cos_turn)])


def split_drifting(contact: np.ndarray, motion, ground: Ground, min_frames: int,
                   max_drift: float | None = None,
                   max_turn_deg: float | None = None) -> np.ndarray:
    """Split a foot's contact into plants whose mean (low-passed) ankle positions on
    the ground differ by more than ``max_drift`` m, or whose feet point more than
    ``max_turn_deg`` apart (binary segmentation, ``_split_points``): a step that the
    thresholds merged into its neighbour (small steps when turning on the spot) becomes two plants.
    ``contact (T, 4)`` in FOOT_POINTS order -> a copy."""
    from ..smoothing import filter_series
    from .kinematics import JOINT

    max_drift = MAX_DRIFT_M if max_drift is None else max_drift
    cos_turn = np.cos(np.radians(MAX_TURN_DEG if max_turn_deg is None else max_turn_deg))
    c = np.asarray(contact, bool).copy()
    n = ground.normal
    for s, side in enumerate(("left", "right")):
        cols = [i for i, f in enumerate(FOOT_POINTS) if f.startswith(side + "_")]
        p = motion.joints[:, JOINT[f"{side}_ankle"]]
        fwd = motion.rotations[:, JOINT[f"{side}_ankle"], :, 2]       # the foot's forward
        if p.shape[0] >= 5:
            p = filter_series(p, motion.fps, "butterworth", FEET_LOWPASS_HZ, motion.valid)
            fwd = filter_series(fwd, motion.fps, "butterworth", FEET_LOWPASS_HZ, motion.valid)
        p = p - (p @ n)[:, None] * n
        fwd = fwd - (fwd @ n)[:, None] * n
        fwd /= np.maximum(np.linalg.norm(fwd, axis=-1, keepdims=True), 1e-9)
        foot = c[:, cols].any(axis=1)
        feat = np.concatenate([p, fwd * TURN_SCALE], axis=1)      # (T, 6)
        for a, b in runs(foot):
            for k in _split_points(feat[a:b], min_frames, max_drift, cos_turn):
                c[a + k, cols] = False      # one free frame: the plants are separate runs
        for i in cols:
            m = c[:, i]
            for a, b in runs(m):
                if b - a < min_frames:
                    m[a:b] = False
    return c
