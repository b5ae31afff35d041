# SPDX-License-Identifier: GPL-3.0-or-later
"""Speed of the motion clean-up's steps on a long take (ms per frame).

Run from the repo root (the project's venv):

    python -m bench.cleanup_speed [--frames 10000] [--motion walk] [--repeat 3] [--smplx FILE]

A noisy take of ``--frames`` rows (``bench.motion_truth``: the truth repeated to
length, the bench's noise model, no injected faults) is cleaned step by step, each
step timed alone (best of ``--repeat``):

* ``kinematics``: ``kinematics.take_motion`` (forward kinematics, sole points);
* ``smoothing``: ``smoothing.smooth_take`` with the clean-up's One Euro settings;
* ``ground``: ``ground.estimate_ground``;
* ``contacts``: ``contacts.find_contacts`` (given the motion and the ground);
* ``find``: ground + contacts from the take, as the retarget asks for them
  (``report.find_contacts_for_report``: kinematics, ground, contacts);
* ``footlock``: ``footlock.lock_feet``;
* ``qa``: ``qa.find_flags`` on the raw take;
* ``clean_take``: all of it (``clean.clean_take`` with its defaults).

Prints the figures and the command. Uses the stand-in SMPL-X model unless
``--smplx`` gives a model file.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import replace

import numpy as np


def long_take(model, frames: int, motion: str):
    """A noisy take of ``frames`` rows: the truth played forwards, backwards, forwards ...
    (continuous, and the feet stay in the camera's view, so nothing is skipped)."""
    from bench.motion_truth import add_noise, make_truth

    truth = make_truth(motion, model, seconds=8.0)
    take = add_noise(truth, seed=0, faults=False).take
    T = take.num_frames
    reps = -(-frames // T)
    params = {k: np.concatenate([np.asarray(v)[::(-1) ** i] for i in range(reps)])[:frames]
              for k, v in take.params.items()}
    return replace(take, params=params, frame_index=np.arange(frames, dtype=np.int64),
                   valid=np.ones(frames, bool), raw={})


def _best(fn, repeat: int):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.cleanup_speed", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=10000)
    ap.add_argument("--motion", default="walk")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--smplx", help="SMPL-X model file (default: the stand-in)")
    args = ap.parse_args(argv)
    from bench._common import smplx_model
    from pose2pose_mocap.retarget.cleanup import qa
    from pose2pose_mocap.retarget.cleanup.clean import CleanOptions, clean_smoothing, clean_take
    from pose2pose_mocap.retarget.cleanup.contacts import find_contacts
    from pose2pose_mocap.retarget.cleanup.footlock import lock_feet
    from pose2pose_mocap.retarget.cleanup.ground import estimate_ground
    from pose2pose_mocap.retarget.cleanup.kinematics import take_motion
    from pose2pose_mocap.retarget.cleanup.report import find_contacts_for_report
    from pose2pose_mocap.retarget.smoothing import smooth_take

    t0 = time.perf_counter()
    import scipy.ndimage  # noqa: F401 - once per process (the ground's low-pass); timed alone
    import scipy.signal  # noqa: F401
    t_import = time.perf_counter() - t0
    model, tmp = smplx_model(args.smplx, "p2p_bench_mq_")
    take = long_take(model, args.frames, args.motion)
    opts, sm = CleanOptions(), clean_smoothing()
    T = take.num_frames
    contacts_found, why = find_contacts_for_report(take, None, model)
    if contacts_found is None:   # the figures would time a skipped step
        raise SystemExit(f"no contacts on the bench take: {why}")
    rows = []
    t, motion = _best(lambda: take_motion(take, model), args.repeat)
    rows.append(("kinematics", t))
    t, smoothed = _best(lambda: smooth_take(take, sm), args.repeat)
    rows.append(("smoothing", t))
    motion = take_motion(smoothed, model)
    t, ground = _best(lambda: estimate_ground(motion), args.repeat)
    rows.append(("ground", t))
    t, contacts = _best(lambda: find_contacts(motion, ground, opts), args.repeat)
    rows.append(("contacts", t))
    t, _ = _best(lambda: find_contacts_for_report(smoothed, None, model), args.repeat)
    rows.append(("find (kin+ground+contacts)", t))
    t, _ = _best(lambda: lock_feet(smoothed.params, motion, contacts, model,
                                   blend_frames=opts.blend_frames), args.repeat)
    rows.append(("footlock", t))
    t, _ = _best(lambda: qa.find_flags(take, motion), args.repeat)
    rows.append(("qa", t))
    t, _ = _best(lambda: clean_take(take, model, sm, opts), max(1, args.repeat - 1))
    rows.append(("clean_take", t))
    print(f"motion clean-up speed: {args.motion}, {T} frames, best of {args.repeat} "
          f"({'stand-in' if tmp else model.path.name} model)")
    print(f"(importing scipy.signal once per process: {t_import:.2f} s, not counted below)")
    print(f"{'step':28s} {'total s':>8s} {'ms/frame':>9s}")
    for name, t in rows:
        print(f"{name:28s} {t:8.2f} {1000 * t / T:9.3f}")
    print("command: python -m bench.cleanup_speed " + " ".join(shlex.quote(a) for a in (
        argv if argv is not None else sys.argv[1:])))
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
