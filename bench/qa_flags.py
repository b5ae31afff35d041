# SPDX-License-Identifier: GPL-3.0-or-later
"""QA pass alone against injected faults: recall and precision per fault kind.

Run from the repo root (the project's venv):

    python -m bench.qa_flags [--seconds 10] [--seeds 3] [--motions walk,run,...] [--smplx FILE]

The takes are ``bench.motion_truth``'s (procedural SMPL-X truth, estimator-like noise,
seeded faults: wrist flips, left/right swaps, dropouts; see that module); the flags are
``retarget.cleanup.qa.find_flags`` on each noisy take as it is, without a model (the
rotation-only kinds), so this runs in seconds. A flag and a fault match when they
overlap and have the same kind (``bench.motion_quality.qa_counts``).

A left/right swap of a symmetric pose (jumping, sitting, clapping: both sides move
alike) changes almost nothing and cannot be seen in the motion; the bench also
prints the swap figures for the faults that change the pose: those where the truth's
left and right limbs differ, mirrored, by at least ``VISIBLE_DEG`` on average over
the swapped rows (flags over invisible swaps are then left out of the precision).
Other flag kinds raised on these takes (joint limits...) are counted and listed.
It prints the figures and the command.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

VISIBLE_DEG = 5.0
TARGETS = {"recall": 0.95, "precision": 0.90}


def swap_visibility(truth_take) -> np.ndarray:
    """Per row: mean angle (degrees) between the truth's limbs and their mirrored,
    exchanged selves (0 for a perfectly symmetric pose). -> ``(T,)``."""
    from pose2pose_mocap.retarget.cleanup import qa

    names = [a for a, _ in qa.LIMB_PAIRS] + [b for _, b in qa.LIMB_PAIRS]
    q = qa.axis_angle_to_quaternion(qa.local_axis_angles(truth_take, names))
    P = len(qa.LIMB_PAIRS)
    exchanged = np.concatenate([q[:, P:], q[:, :P]], axis=1)
    return np.degrees(qa._geodesic(qa._mirror(exchanged), q)).mean(axis=1)


def run(args) -> int:
    from bench._common import command_line, smplx_model
    from bench.motion_quality import FAULT_KINDS, qa_counts
    from bench.motion_truth import MOTIONS, add_noise, make_truth, truth_take
    from pose2pose_mocap.retarget.cleanup.qa import find_flags

    model, tmp = smplx_model(args.smplx, "p2p_bench_mq_")
    motions = args.motions.split(",") if args.motions else list(MOTIONS)
    total = {k: np.zeros(4, int) for k in FAULT_KINDS}
    visible = np.zeros(4, int)
    other: dict[str, int] = {}
    t0 = time.perf_counter()
    qa_s = 0.0
    rows = 0
    for mi, name in enumerate(motions):
        for seed in range(args.seeds):
            truth = make_truth(name, model, seconds=args.seconds, seed=seed)
            noisy = add_noise(truth, seed=seed * 101 + mi)
            c0 = time.perf_counter()
            flags = find_flags(noisy.take)
            qa_s += time.perf_counter() - c0
            rows += noisy.take.num_frames
            for k, v in qa_counts(flags, noisy.faults).items():
                total[k] += v
            asym = swap_visibility(truth_take(truth))
            swaps = [(k, a, b) for k, a, b in noisy.faults if k == "lr_swap"]
            seen = [f for f in swaps if asym[f[1]:f[2]].mean() >= VISIBLE_DEG]
            unseen = [f for f in swaps if f not in seen]
            kept = [f for f in flags if not any(f.start < b and a < f.end
                                                for _, a, b in unseen)]
            visible += qa_counts(kept, seen)["lr_swap"]
            for f in flags:
                if f.kind not in FAULT_KINDS:
                    other[f.kind] = other.get(f.kind, 0) + 1
    wall = time.perf_counter() - t0
    print(f"QA flags: {len(motions)} motions x {args.seeds} seed(s), {args.seconds:g} s at "
          f"30 fps each, no body model (rotation-only kinds)")
    print(f"{'kind':<28}{'recall':>8}{'precision':>11}{'faults':>8}{'flags':>7}")

    def line(label, counts):
        found, n, good, nflags = counts
        rec = found / n if n else float("nan")
        prec = good / nflags if nflags else float("nan")
        ok = rec >= TARGETS["recall"] and (prec >= TARGETS["precision"] or not nflags)
        print(f"{label:<28}{rec:>8.3f}{prec:>11.3f}{n:>8}{nflags:>7}  "
              f"{'meets' if ok else 'MISSES'} the target")

    for k, counts in total.items():
        line(k, counts)
    line(f"lr_swap (visible, >={VISIBLE_DEG:g} deg)", visible)
    print(f"targets: recall >= {TARGETS['recall']}, precision >= {TARGETS['precision']}")
    print("other flags on these takes: "
          + (", ".join(f"{k} {n}" for k, n in sorted(other.items())) or "none"))
    print(f"find_flags: {1000 * qa_s / max(rows, 1) * 1000:.1f} ms per 1000 rows; "
          f"whole bench {wall:.1f} s")
    print(command_line("bench.qa_flags", args.argv))
    if tmp is not None:
        tmp.cleanup()
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--motions", default="")
    ap.add_argument("--smplx", default="")
    args = ap.parse_args(argv)
    args.argv = argv
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
