# SPDX-License-Identifier: GPL-3.0-or-later
"""The ground plane under a take, from its feet (numpy only).

1. A provisional "up": the direction from the ankles to the neck, median over
   valid frames (``body_up``).
2. Candidates: the foot points (low-passed, ``feet_stack``) of valid frames while
   they move slower than ``MAX_SPEED`` (planted feet).
3. RANSAC over the candidates (plane within ``INLIER_M``, normal within
   ``MAX_TILT_DEG`` of the provisional up), then a least-squares refit on the
   inliers. Footprints along a line (walking straight) fix the plane's slope along
   the line only: the roll about it comes from the provisional up. When the inliers
   do not span ``MIN_SPAN_M`` at all (turning on the spot, standing) the normal is
   the provisional up and only the height is fitted.
4. The offset is the median height of the inliers: robust to outliers and to
   jumps, unlike "the lowest point ever".

``None`` (with a reason in ``ground_problem``) when the feet are not in view or
there are too few frames: the caller skips locking with a note.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_FRAMES = 10          # valid frames needed to estimate a ground
MIN_CANDIDATES = 8
MAX_SPEED = 0.6          # m/s: a foot point slower than this may be on the ground
INLIER_M = 0.03          # RANSAC inlier distance
MAX_TILT_DEG = 35.0      # plane normal vs the body's up
MIN_SPAN_M = 0.5         # inliers must span this much in two directions to fit the tilt
RANSAC_ITERS = 200
SEED = 0


@dataclass(frozen=True)
class Ground:
    """The plane ``normal . p = offset``; ``normal (3,)`` unit, pointing up (towards the body)."""

    normal: np.ndarray
    offset: float

    def height(self, points: np.ndarray) -> np.ndarray:
        """Signed distance above the ground (m). ``(..., 3)`` -> ``(...)``."""
        return np.asarray(points, float) @ self.normal - self.offset

    def project(self, points: np.ndarray) -> np.ndarray:
        """The points moved along the normal onto the plane. ``(..., 3)``."""
        p = np.asarray(points, float)
        return p - self.height(p)[..., None] * self.normal

    def to_dict(self) -> dict:
        return {"normal": [float(x) for x in self.normal], "offset": float(self.offset)}


def body_up(motion) -> np.ndarray:
    """Mean up axis of the body over valid frames: from the middle of the ankles to the
    neck (upright when standing, walking and sitting alike). -> ``(3,)``."""
    from .kinematics import JOINT

    v = np.asarray(motion.valid, bool)
    j = motion.joints[v]
    d = j[:, JOINT["neck"]] - 0.5 * (j[:, JOINT["left_ankle"]] + j[:, JOINT["right_ankle"]])
    d = d / np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-9)
    u = np.median(d, axis=0) if d.shape[0] else np.array([0.0, -1.0, 0.0])
    n = np.linalg.norm(u)
    return u / n if n > 1e-6 else np.array([0.0, -1.0, 0.0])  # camera y points down


FEET_LOWPASS_HZ = 2.5    # foot points are low-passed before heights and speeds are judged


def feet_stack(motion, lowpass: bool = True) -> np.ndarray:
    """The four foot points ``(T, 4, 3)`` in kinematics.FOOT_POINTS order, low-passed
    at ``FEET_LOWPASS_HZ`` over valid runs (per-frame estimates jitter by centimetres,
    which would read as speed)."""
    from .kinematics import FOOT_POINTS

    p = np.stack([motion.foot_points[k] for k in FOOT_POINTS], axis=1)
    if lowpass and p.shape[0] >= 5:
        from ..smoothing import filter_series

        p = filter_series(p, motion.fps, "butterworth", FEET_LOWPASS_HZ, motion.valid)
    return p


def point_speed(p: np.ndarray, fps: float) -> np.ndarray:
    """Speed (m/s) of points ``(T, ..., 3)`` by central differences. -> ``(T, ...)``."""
    if p.shape[0] < 2:
        return np.zeros(p.shape[:-1])
    return np.linalg.norm(np.gradient(p, axis=0), axis=-1) * fps


def ground_problem(motion) -> str | None:
    """Why no ground can be estimated (one line), or None."""
    v = np.asarray(motion.valid, bool)
    if v.sum() < MIN_FRAMES:
        return (f"too few valid frames for a ground ({int(v.sum())}, need {MIN_FRAMES}); "
                "foot locking skipped")
    return None


def _candidates(motion, up: np.ndarray) -> np.ndarray:
    feet = feet_stack(motion)                           # (T, 4, 3)
    v = np.asarray(motion.valid, bool)
    speed = point_speed(feet, motion.fps)               # (T, 4)
    # every slow foot point (not the lowest of four: the minimum of noisy points is
    # biased low by their noise)
    keep = v[:, None] & (speed < MAX_SPEED)
    return feet[keep]


def _normal_of(q: np.ndarray, up: np.ndarray, cos_max: float) -> np.ndarray:
    """Normal of the points ``q (n, 3)``: their plane when they span an area; when they
    lie along a line (walking straight) the plane through that line nearest ``up``
    (the roll about a line cannot be seen); ``up`` for a small patch."""
    if q.shape[0] < 3:
        return up
    c = q - q.mean(0)
    _, s, vt = np.linalg.svd(c, full_matrices=False)
    spread = 4.0 * s / np.sqrt(q.shape[0])            # ~ extent (m) along each axis
    if spread[1] >= MIN_SPAN_M:
        n = vt[2] if vt[2] @ up >= 0 else -vt[2]
        if n @ up >= cos_max:
            return n
    if spread[0] >= MIN_SPAN_M:
        d = vt[0]
        n = up - (up @ d) * d
        return n / np.linalg.norm(n)
    return up


def _fit_plane(pts: np.ndarray, up: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """RANSAC (planes through 3 points, and planes through 2 points nearest ``up``),
    then two refits on the inliers. -> (normal (3,), inlier mask)."""
    cos_max = np.cos(np.radians(MAX_TILT_DEG))
    best_n = up
    best_in = np.abs((pts - np.median(pts, 0)) @ up) < INLIER_M
    for i in range(RANSAC_ITERS):
        if i % 2:
            a, b, c = pts[rng.choice(pts.shape[0], 3, replace=False)]
            n = np.cross(b - a, c - a)
        else:
            a, b = pts[rng.choice(pts.shape[0], 2, replace=False)]
            d = b - a
            if np.linalg.norm(d) < MIN_SPAN_M / 2:
                continue
            d = d / np.linalg.norm(d)
            n = up - (up @ d) * d
        ln = np.linalg.norm(n)
        if ln < 1e-9:
            continue
        n = n / ln
        n = n if n @ up >= 0 else -n
        if n @ up < cos_max:
            continue
        inl = np.abs((pts - a) @ n) < INLIER_M
        if inl.sum() > best_in.sum():
            best_n, best_in = n, inl
    for _ in range(2):
        q = pts[best_in]
        n = _normal_of(q, up, cos_max)
        off = np.median(q @ n) if q.shape[0] else np.median(pts @ n)
        inl = np.abs(pts @ n - off) < INLIER_M
        if inl.sum() < best_in.sum():
            break
        best_n, best_in = n, inl
    return best_n / np.linalg.norm(best_n), best_in


def estimate_ground(motion) -> Ground | None:
    """The ground under ``motion`` (kinematics.TakeMotion), or None (``ground_problem`` says
    why, or the feet never rest: not in view)."""
    if ground_problem(motion) is not None:
        return None
    up = body_up(motion)
    pts = _candidates(motion, up)
    if pts.shape[0] < MIN_CANDIDATES:
        return None
    normal, inl = _fit_plane(pts, up, np.random.default_rng(SEED))
    offset = float(np.median(pts[inl] @ normal)) if inl.any() else float(
        np.percentile(pts @ normal, 10))
    return Ground(normal=normal, offset=offset)
