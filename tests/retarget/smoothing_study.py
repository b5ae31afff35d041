"""How strong should each region's smoothing be? Synthetic motion + noise, error vs. truth.

Run: ``python -m tests.retarget.smoothing_study`` (from the repo root) prints, per
region and method, the RMS error against the noise-free motion for a range of
cutoffs, and the 10-90 % rise time of a step. ``test_smoothing.py`` re-runs a
small part of it to check that the defaults stay near the best cutoff.

The synthetic takes (assumptions, stated so they can be argued with):

* truth = band-limited random motion: 24 sinusoids per channel with
  frequencies uniform in 0.1 .. ``band`` Hz, amplitudes ~ 1/f (most energy
  slow, like human motion), plus fast events: smoothed steps with a 100 ms
  rise (a punch, a clap, a head turn) every ~3 s;
* noise = independent per frame (a per-frame network has no memory),
  Gaussian, with a standard deviation per region:

  ========  ===========================  =====  ===========  ==========
  region    channels                     band   motion std   noise std
  ========  ===========================  =====  ===========  ==========
  root      transl (m)                   2 Hz   0.30 m       0.02 m
  body      21 joint rotations (rad)     4 Hz   0.40 rad     0.035 rad (2 deg)
  hands     15 joint rotations (rad)     4 Hz   0.40 rad     0.10 rad (6 deg)
  face      expression (unitless)        5 Hz   0.80         0.20
  ========  ===========================  =====  ===========  ==========

  Hand and face noise are larger than body noise: small, often occluded
  image regions. Rotations are filtered with ``filter_rotations`` (as
  quaternions) and scored by the geodesic angle to the truth.
"""
from __future__ import annotations

import numpy as np

from pose2pose_mocap.retarget.rotations import axis_angle_to_quaternion
from pose2pose_mocap.retarget.smoothing import filter_rotations, filter_series

REGION_MODELS = {
    # region: (kind, channels, band Hz, motion std, noise std)
    "root": ("linear", 3, 2.0, 0.30, 0.02),
    "body": ("rotation", 21, 4.0, 0.40, 0.035),
    "hands": ("rotation", 15, 4.0, 0.40, 0.10),
    "face": ("linear", 10, 5.0, 0.80, 0.20),
}
CUTOFFS = (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0)
METHODS = ("butterworth", "savgol", "gaussian")


def synthetic_motion(T: int, fs: float, channels: int, band: float, std: float,
                     rng: np.random.Generator) -> np.ndarray:
    """Band-limited random motion with a few fast steps. -> ``(T, channels)``."""
    t = np.arange(T) / fs
    f = rng.uniform(0.1, band, size=(24, channels))
    amp = 1.0 / f
    phase = rng.uniform(0, 2 * np.pi, size=(24, channels))
    x = (amp[None] * np.sin(2 * np.pi * f[None] * t[:, None, None] + phase[None])).sum(1)
    n_steps = max(1, int(t[-1] / 3.0))
    for _ in range(n_steps):
        t0 = rng.uniform(0, t[-1])
        height = rng.normal(size=channels) * x.std(0)
        x += height * 0.5 * (1 + np.tanh((t[:, None] - t0) / 0.025))  # ~100 ms 10-90 %
    x -= x.mean(0)
    return x / x.std(0) * std


def angle_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Geodesic angle between axis-angle rotations ``(..., 3)``. -> ``(...)`` radians."""
    qa, qb = axis_angle_to_quaternion(a), axis_angle_to_quaternion(b)
    d = np.abs(np.einsum("...i,...i->...", qa, qb)).clip(0, 1)
    return 2 * np.arccos(d)


def region_error(region: str, method: str, cutoff: float | None, fs: float = 30.0,
                 seconds: float = 40.0, seed: int = 0) -> float:
    """RMS error vs. truth of one region after filtering (radians, metres or units)."""
    kind, ch, band, std, noise = REGION_MODELS[region]
    rng = np.random.default_rng(seed)
    T = int(seconds * fs)
    if kind == "linear":
        truth = synthetic_motion(T, fs, ch, band, std, rng)
        noisy = truth + rng.normal(scale=noise, size=truth.shape)
        out = filter_series(noisy, fs, method, cutoff)
        return float(np.sqrt(np.mean((out - truth) ** 2)))
    truth = synthetic_motion(T, fs, ch * 3, band, std, rng).reshape(T, ch, 3)
    noisy = truth + rng.normal(scale=noise / np.sqrt(3), size=truth.shape)
    out = filter_rotations(noisy, fs, method, cutoff)
    return float(np.sqrt(np.mean(angle_error(out, truth) ** 2)))


def crossing(y: np.ndarray, level: float, fs: float) -> float:
    """First time (s) a rising ``y`` reaches ``level``, linearly interpolated."""
    i = int(np.flatnonzero(y >= level)[0])
    if i == 0:
        return 0.0
    return (i - 1 + (level - y[i - 1]) / (y[i] - y[i - 1])) / fs


def rise_time(method: str, cutoff: float, fs: float = 120.0) -> float:
    """10-90 % rise time (seconds) of a unit step after filtering."""
    T = int(4 * fs)
    step = (np.arange(T) >= T // 2).astype(float)[:, None]
    y = filter_series(step, fs, method, cutoff)[:, 0]
    return crossing(y, 0.9, fs) - crossing(y, 0.1, fs)


def table(fs: float = 30.0, seeds=(0, 1, 2)) -> dict:
    """``{(region, method): [(cutoff, error), ...]}``, mean error over seeds; cutoff None = raw."""
    out = {}
    for region in REGION_MODELS:
        for method in METHODS:
            rows = [(None, np.mean([region_error(region, "none", None, fs, seed=s)
                                    for s in seeds]))]
            for c in CUTOFFS:
                if c < fs / 2:
                    rows.append((c, np.mean([region_error(region, method, c, fs, seed=s)
                                             for s in seeds])))
            out[(region, method)] = rows
    return out


def main():
    for fs in (30.0, 60.0):
        print(f"== {fs:g} fps: RMS error vs. truth (root m, body/hands deg, face units)")
        t = table(fs)
        for (region, method), rows in t.items():
            scale = np.degrees(1.0) if REGION_MODELS[region][0] == "rotation" else 1.0
            best = min(rows[1:], key=lambda r: r[1])
            cells = " ".join(f"{c if c else 'raw'}:{e * scale:.4f}" for c, e in rows)
            print(f"{region:5s} {method:11s} best {best[0]:>4} Hz  {cells}")
    print("== 10-90 % rise time of a step, seconds (sampled at 120 fps)")
    for method in METHODS:
        print(f"{method:11s} " + " ".join(f"{c}:{rise_time(method, c):.3f}" for c in CUTOFFS))


if __name__ == "__main__":
    main()
