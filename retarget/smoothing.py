# SPDX-License-Identifier: GPL-3.0-or-later
"""Zero-phase temporal smoothing of a take, per body region (scipy, imported lazily).

Every method is set by one number per region, a **cutoff in Hz**: the
frequency whose amplitude the filter halves (-6 dB). Motion slower than the
cutoff passes, jitter faster than it is removed; a step is spread over
``0.45 / cutoff`` (Butterworth) to ``0.5 / cutoff`` seconds (10-90 % rise) and
is back within 1 % of the step ``1 / cutoff`` seconds away from it. The same
cutoff gives nearly the same strength with each method:

* ``butterworth`` (the default until One Euro won the bench): 2nd-order low-pass run forwards and backwards
  (``iir.butter_lowpass`` + ``iir.filtfilt``, numpy only, the numbers of
  ``scipy.signal.butter`` + ``filtfilt``): zero phase, 4th-order roll-off;
  its design cutoff is exactly the -6 dB point of the two passes; ~4 %
  overshoot on a step.
* ``savgol``: Savitzky-Golay, cubic (``scipy.signal.savgol_filter``); the
  window is the one whose -6 dB point is nearest the cutoff (odd windows
  only, so neighbouring cutoffs can share a window). Keeps peaks sharper,
  lets more high-frequency noise through, overshoots a step by ~9 %.
* ``gaussian``: ``scipy.ndimage.gaussian_filter1d`` with
  ``sigma = sqrt(ln 2 / 2) / (pi * cutoff)`` seconds (gain 1/2 at the cutoff);
  no overshoot, softest roll-off.
* ``one_euro`` (default): the adaptive One Euro filter (``cleanup.one_euro``), run
  forwards and backwards and averaged; the region's cutoff is its ``min_cutoff`` (used
  while the motion is slow) and ``one_euro_beta`` how fast the cutoff opens with
  speed (Hz per unit/s): steady when slow, responsive when fast. Default floors
  1 Hz (root, body) and 4 Hz (hands, face), beta 1 (``bench/motion_quality.py``).

A region's cutoff that is not given is the method's default (``METHOD_CUTOFFS``).

Rotations are filtered as sign-continuous unit quaternions, renormalised
afterwards, then turned back into axis-angle; nothing is averaged across
the +-pi wrap of an axis-angle. Regions (``Smoothing``):

* ``root``: ``transl`` (metres);
* ``body``: ``global_orient`` and ``body_pose``;
* ``hands``: ``left_hand_pose`` and ``right_hand_pose``;
* ``face``: ``jaw_pose``, ``leye_pose``, ``reye_pose`` and ``expression``.

``betas`` are never filtered (the rig uses their median). An SMPL take has only
``root`` and ``body`` parameters (``body_pose`` (T,69)); the other regions find nothing. Rows with
``valid=False`` split the take into runs; each run is filtered on its own
(edges extended by odd reflection), and runs too short for a filter (fewer
than MIN_RUN rows) are left as they are. The sample rate is
``fps / stride`` where ``stride`` is the take's frame_index step.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from functools import lru_cache

import numpy as np

from ..common.options import ONE_EURO_BETA
from .errors import RetargetError
from .iir import butter_lowpass, filtfilt
from .rotations import (axis_angle_to_quaternion, quaternion_continuity,
                        quaternion_normalize, quaternion_to_axis_angle)

METHODS = ("none", "butterworth", "savgol", "gaussian", "one_euro")
REGIONS = {
    "root": ("transl",),
    "body": ("global_orient", "body_pose"),
    "hands": ("left_hand_pose", "right_hand_pose"),
    "face": ("jaw_pose", "leye_pose", "reye_pose", "expression"),
}
ROTATION_PARAMS = ("global_orient", "body_pose", "left_hand_pose", "right_hand_pose",
                   "jaw_pose", "leye_pose", "reye_pose")
MIN_RUN = 5           # shorter valid runs are not filtered
BUTTER_ORDER = 2      # per pass; filtfilt doubles it
SAVGOL_POLYORDER = 3
_GAIN_AT_CUTOFF = 0.5


DEFAULT_METHOD = "one_euro"   # bench/motion_quality.py: best on every figure (docs/motion-cleanup.md)
# Default cutoffs (Hz) per method, a region's when it is not given: One Euro's are its
# floors (bench/motion_quality.py); the others' from tests/retarget/smoothing_study.py.
METHOD_CUTOFFS = {
    "one_euro": {"root": 1.0, "body": 1.0, "hands": 4.0, "face": 4.0},
    "butterworth": {"root": 4.0, "body": 6.0, "hands": 4.0, "face": 4.0},
}
BY_METHOD = "by method"       # a cutoff not given: METHOD_CUTOFFS of the method


def method_cutoff(method: str, region: str) -> float:
    """The default cutoff (Hz) of ``region`` for ``method`` (``METHOD_CUTOFFS``)."""
    return METHOD_CUTOFFS.get(method, METHOD_CUTOFFS["butterworth"])[region]


@dataclass(frozen=True)
class Smoothing:
    """Filter method and per-region cutoff in Hz (``None`` or 0 = leave that region raw).

    Defaults: One Euro, chosen by ``bench/motion_quality.py`` (docs/motion-cleanup.md);
    a cutoff that is not given is the method's (``METHOD_CUTOFFS``), so
    ``Smoothing(method="butterworth")`` is the Butterworth default of before (4/6/4/4 Hz).
    """

    method: str = DEFAULT_METHOD
    root_hz: float | None = BY_METHOD
    body_hz: float | None = BY_METHOD
    hands_hz: float | None = BY_METHOD
    face_hz: float | None = BY_METHOD
    one_euro_beta: float = 1.0   # used by method "one_euro" only (bench/motion_quality.py)

    def __post_init__(self):
        if self.method not in METHODS:
            raise RetargetError(f"unknown smoothing method {self.method!r} "
                                f"(choose {', '.join(METHODS)})")
        for region in REGIONS:
            if isinstance(getattr(self, f"{region}_hz"), str) and \
                    getattr(self, f"{region}_hz") == BY_METHOD:
                object.__setattr__(self, f"{region}_hz", method_cutoff(self.method, region))
        from ..common.options import CUTOFF_HZ

        for region in REGIONS:
            hz = getattr(self, f"{region}_hz")
            if hz is None:
                continue
            _, why = CUTOFF_HZ.problem(hz)
            if why is not None:
                raise RetargetError(f"smoothing cutoff for {region} must be >= 0 Hz, within "
                                    f"{CUTOFF_HZ.range_text}; got {hz!r}")
        _, why = ONE_EURO_BETA.problem(self.one_euro_beta)
        if why is not None:
            raise RetargetError(f"one_euro_beta: {why}; got {self.one_euro_beta!r}"[:200])

    def cutoff(self, region: str) -> float | None:
        hz = getattr(self, f"{region}_hz")
        return None if self.method == "none" or not hz else float(hz)

    def to_dict(self) -> dict:
        """Plain values (for a Blender custom property); ``None`` becomes 0.
        ``one_euro_beta`` only with method ``one_euro`` (older values stay the same)."""
        d = asdict(self)
        if self.method != "one_euro":
            d.pop("one_euro_beta")
        return {k: (0.0 if v is None else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d) -> "Smoothing":
        """From :meth:`to_dict`'s plain values (a custom property, a worker request);
        anything else (not a dict, unknown keys, a cutoff that is not a number in
        range) raises RetargetError with one line."""
        from ..common.options import CUTOFF_HZ

        if not isinstance(d, dict):
            try:
                d = dict(d)
            except (TypeError, ValueError):
                raise RetargetError(f"smoothing settings must be a mapping, got "
                                    f"{type(d).__name__}") from None
        unknown = sorted(str(k) for k in d if k not in ("method", "one_euro_beta") + tuple(
            f"{r}_hz" for r in REGIONS))
        if unknown:
            raise RetargetError(f"unknown smoothing setting {unknown[0]!r}")
        method = d.get("method", DEFAULT_METHOD)
        if not isinstance(method, str):
            raise RetargetError(f"smoothing method must be text, got {method!r}"[:200])
        kw = {"method": method}
        for region in REGIONS:
            k = f"{region}_hz"
            if k in d:
                hz, why = CUTOFF_HZ.problem(d[k])
                if why is not None:
                    raise RetargetError(f"smoothing cutoff for {region} must be >= 0 Hz, "
                                        f"within {CUTOFF_HZ.range_text}; got {d[k]!r}"[:300])
                kw[k] = float(hz) or None
        if "one_euro_beta" in d:
            beta, why = ONE_EURO_BETA.problem(d["one_euro_beta"])
            if why is not None:
                raise RetargetError(f"one_euro_beta: {why}; got {d['one_euro_beta']!r}"[:200])
            kw["one_euro_beta"] = float(beta)
        return cls(**kw)

    def with_(self, **kw) -> "Smoothing":
        return replace(self, **kw)


NO_SMOOTHING = Smoothing(method="none")


def _scipy():
    try:
        from scipy import ndimage, signal
    except ImportError:  # Blender's own Python has no scipy
        raise RetargetError("smoothing needs scipy, which this Python does not have; use "
                            "smoothing 'one_euro', 'butterworth' or 'none', or install "
                            "scipy") from None
    return signal, ndimage


def valid_runs(valid: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of consecutive True rows of a ``(T,)`` bool array."""
    v = np.concatenate([[False], np.asarray(valid, bool), [False]])
    d = np.diff(v.astype(np.int8))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def _odd_extend(x: np.ndarray, n: int) -> np.ndarray:
    """Point-symmetric extension by ``n`` rows at both ends (keeps slopes at the edges)."""
    n = min(n, x.shape[0] - 1)
    if n <= 0:
        return x
    head = 2 * x[:1] - x[n:0:-1]
    tail = 2 * x[-1:] - x[-2:-n - 2:-1]
    return np.concatenate([head, x, tail], axis=0)


def gaussian_sigma(cutoff_hz: float, fs: float) -> float:
    """Gaussian sigma in samples whose gain at ``cutoff_hz`` is 1/2."""
    return float(np.sqrt(np.log(2.0) / 2.0) / (np.pi * cutoff_hz) * fs)


@lru_cache(maxsize=64)
def savgol_window(cutoff_hz: float, fs: float, polyorder: int = SAVGOL_POLYORDER) -> int:
    """Odd Savitzky-Golay window whose -6 dB frequency is nearest ``cutoff_hz``."""
    signal, _ = _scipy()
    best, best_err = polyorder + 2 - (polyorder % 2), np.inf
    best = best if best % 2 else best + 1
    for w in range(best, 1001, 2):
        h = np.abs(np.fft.rfft(signal.savgol_coeffs(w, polyorder), 8192))
        f = np.fft.rfftfreq(8192, 1.0 / fs)
        below = np.flatnonzero(h < _GAIN_AT_CUTOFF)
        if below.size == 0:
            continue
        err = abs(f[below[0]] - cutoff_hz)
        if err < best_err:
            best, best_err = w, err
        elif f[below[0]] < cutoff_hz:
            break  # windows only get longer (lower cutoff) from here
    return best


def filter_series(x: np.ndarray, fs: float, method: str, cutoff_hz: float | None,
                  valid: np.ndarray | None = None, beta: float = 0.0) -> np.ndarray:
    """Low-pass ``x (T, ...)`` along time, each valid run separately. -> same shape, float64.

    Rows outside valid runs and runs shorter than MIN_RUN come back unchanged.
    ``beta``: One Euro's speed coefficient (method ``one_euro``; the last axis of
    ``x`` is one quantity whose speed adapts the cutoff).
    """
    x = np.asarray(x, dtype=np.float64)
    out = x.copy()
    if method == "none" or not cutoff_hz or x.shape[0] < MIN_RUN:
        return out
    nyquist = fs / 2.0
    if cutoff_hz >= nyquist:
        return out  # nothing above the cutoff can be represented
    # (One Euro and Butterworth are numpy only: they run in Blender's own Python, which
    # has no scipy; Butterworth by .iir, equal to scipy's butter + filtfilt)
    signal, ndimage = _scipy() if method in ("savgol", "gaussian") else (None, None)
    valid = np.ones(x.shape[0], bool) if valid is None else np.asarray(valid, bool)
    flat = x.reshape(x.shape[0], -1)
    res = out.reshape(x.shape[0], -1)
    if method == "butterworth":
        b, a = butter_lowpass(BUTTER_ORDER, cutoff_hz / nyquist)
    for start, stop in valid_runs(valid):
        n = stop - start
        if n < MIN_RUN:
            continue
        seg = flat[start:stop]
        if method == "butterworth":
            padlen = min(3 * max(len(a), len(b)), n - 1)
            res[start:stop] = filtfilt(b, a, seg, axis=0, padlen=padlen)
        elif method == "savgol":
            w = min(savgol_window(float(cutoff_hz), float(fs)), n if n % 2 else n - 1)
            if w <= SAVGOL_POLYORDER:
                continue
            res[start:stop] = signal.savgol_filter(seg, w, SAVGOL_POLYORDER, axis=0,
                                                   mode="interp")
        elif method == "one_euro":
            from .cleanup.one_euro import one_euro_zero_phase

            res[start:stop] = one_euro_zero_phase(seg, fs, cutoff_hz, beta,
                                                  group=x.shape[-1] if x.ndim > 1 else 1)
        elif method == "gaussian":
            sigma = gaussian_sigma(cutoff_hz, fs)
            pad = int(np.ceil(4 * sigma))
            ext = _odd_extend(seg, pad)
            p = (ext.shape[0] - n) // 2
            res[start:stop] = ndimage.gaussian_filter1d(ext, sigma, axis=0,
                                                        mode="nearest")[p:p + n]
        else:
            raise RetargetError(f"unknown smoothing method {method!r}")
    return out


def filter_rotations(axis_angle: np.ndarray, fs: float, method: str, cutoff_hz: float | None,
                     valid: np.ndarray | None = None, beta: float = 0.0) -> np.ndarray:
    """Smooth axis-angle rotations ``(T, ..., 3)`` as continuous unit quaternions.

    Per valid run: axis-angle -> quaternion, signs made continuous in time,
    components low-passed, renormalised, back to axis-angle. -> same shape.
    """
    aa = np.asarray(axis_angle, dtype=np.float64)
    if method == "none" or not cutoff_hz:
        return aa.copy()
    T = aa.shape[0]
    valid = np.ones(T, bool) if valid is None else np.asarray(valid, bool)
    out = aa.copy()
    q = axis_angle_to_quaternion(aa)
    for start, stop in valid_runs(valid):
        if stop - start < MIN_RUN:
            continue
        qs = quaternion_continuity(q[start:stop], axis=0)
        qs = filter_series(qs, fs, method, cutoff_hz, beta=beta)
        out[start:stop] = quaternion_to_axis_angle(quaternion_normalize(qs))
    return out


def smooth_params(params: dict, valid: np.ndarray, fs: float, settings: Smoothing) -> dict:
    """Smoothed copies of a take's parameter arrays (see the module docstring)."""
    if settings.method == "one_euro":  # every region in one loop over time (same numbers)
        return _smooth_one_euro(params, valid, fs, settings)
    out = {k: np.asarray(v) for k, v in params.items()}
    for region, keys in REGIONS.items():
        hz = settings.cutoff(region)
        if hz is None:
            continue
        for k in keys:
            if k not in params:
                continue
            a = np.asarray(params[k], dtype=np.float64)
            if k in ROTATION_PARAMS:
                T = a.shape[0]
                sm = filter_rotations(a.reshape(T, -1, 3), fs, settings.method, hz, valid,
                                      beta=settings.one_euro_beta)
                out[k] = sm.reshape(a.shape)
            else:
                out[k] = filter_series(a, fs, settings.method, hz, valid,
                                       beta=settings.one_euro_beta)
    return out


def _smooth_one_euro(params: dict, valid, fs: float, settings: Smoothing) -> dict:
    """``smooth_params`` for One Euro: the same rules as ``filter_rotations`` /
    ``filter_series`` per parameter, but every parameter filtered in one loop over
    time (``cleanup.one_euro.one_euro_take``)."""
    from .cleanup.one_euro import one_euro_take

    out = {k: np.asarray(v) for k, v in params.items()}
    T = np.asarray(params["global_orient" if "global_orient" in params else "transl"]).shape[0]
    valid = np.ones(T, bool) if valid is None else np.asarray(valid, bool)
    runs = [(a, b) for a, b in valid_runs(valid) if b - a >= MIN_RUN]
    keys, blocks, cutoffs = [], [], []
    for region, names in REGIONS.items():
        hz = settings.cutoff(region)
        if hz is None or hz >= fs / 2.0:
            continue
        for k in (n for n in names if n in params):
            a = np.asarray(params[k], dtype=np.float64)
            if k in ROTATION_PARAMS:
                q = axis_angle_to_quaternion(a.reshape(T, -1, 3))
                for s, e in runs:   # signs continuous within each run
                    q[s:e] = quaternion_continuity(q[s:e], axis=0)
                blocks.append(q)
            else:
                blocks.append(a.reshape(T, 1, -1))
            keys.append(k)
            cutoffs.append(hz)
    done = np.zeros(T, bool)
    for s, e in runs:
        done[s:e] = True
    for k, sm in zip(keys, one_euro_take(blocks, cutoffs, runs, fs, settings.one_euro_beta)):
        a = np.asarray(params[k], dtype=np.float64)
        if k in ROTATION_PARAMS:
            aa = a.reshape(T, -1, 3).copy()
            aa[done] = quaternion_to_axis_angle(quaternion_normalize(sm[done]))
            out[k] = aa.reshape(a.shape)
        else:
            out[k] = sm.reshape(a.shape)
    return out


def smooth_take(take, settings: Smoothing):
    """A copy of ``take`` (retarget.take.Take) with its parameters smoothed."""
    if settings.method == "none":
        return take.with_params({})
    fs = float(take.fps) / take.stride
    return take.with_params(smooth_params(take.params, take.valid, fs, settings))
