# SPDX-License-Identifier: GPL-3.0-or-later
"""Speed and agreement of ``retarget.iir.filtfilt`` (numpy only) against scipy's.

Filters a random ``(T, C)`` array along time with the Butterworth of ``smoothing``
(order 2, 4 Hz at 30 fps, ``padlen`` 9 as ``filter_series`` uses) by
``scipy.signal.filtfilt`` and by ``retarget.iir.filtfilt``; prints the best of
``--repeat`` runs of each, their ratio and the largest difference relative to the
largest value. Target (issue 14 follow-up): within 2x scipy's time at T=10,000, C=100.

Run: ``.venv/bin/python -m bench.iir_speed [--frames 10000] [--columns 100] [--repeat 7]``
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def _best(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=10000)
    ap.add_argument("--columns", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args(argv)

    from scipy import signal

    from pose2pose_mocap.retarget import iir

    x = np.cumsum(np.random.default_rng(0).normal(size=(args.frames, args.columns)), 0)
    b, a = iir.butter_lowpass(2, 4.0 / 15.0)
    ours = iir.filtfilt(b, a, x, axis=0, padlen=9)
    ref = signal.filtfilt(b, a, x, axis=0, padtype="odd", padlen=9)
    t_ref = _best(lambda: signal.filtfilt(b, a, x, axis=0, padtype="odd", padlen=9),
                  args.repeat)
    t_ours = _best(lambda: iir.filtfilt(b, a, x, axis=0, padlen=9), args.repeat)
    rel = np.abs(ours - ref).max() / np.abs(ref).max()
    print(f"filtfilt ({args.frames}, {args.columns}), best of {args.repeat}: "
          f"scipy {t_ref * 1e3:.1f} ms, retarget.iir {t_ours * 1e3:.1f} ms "
          f"({t_ours / t_ref:.2f}x scipy; target <= 2x); max |diff| / max |y| = {rel:.1e}")
    print(f"command: .venv/bin/python -m bench.iir_speed --frames {args.frames} "
          f"--columns {args.columns} --repeat {args.repeat}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
