# SPDX-License-Identifier: GPL-3.0-or-later
"""Motion quality of the clean-up against known truth: raw, today's filters, the clean-up.

Run from the repo root (the project's venv):

    python -m bench.motion_quality [--seconds 6] [--seeds 3] [--motions walk,run,...]
                                   [--beta B] [--body-hz HZ] [--per-motion] [--smplx FILE]

For every motion of ``bench.motion_truth.MOTIONS`` it makes the truth, renders a
noisy estimate with injected faults (the noise model is documented in
``bench/motion_truth.py``), and scores each method against the truth:

* ``raw``: the estimate as it is;
* ``butterworth``, ``savgol``, ``gaussian``: the other filters at their default
  cutoffs (``Smoothing(method=...)``; Butterworth was the default before the bench);
* ``one_euro``: the One Euro method alone, ``Smoothing()`` (the default; ``--beta``,
  ``--body-hz`` to try others);
* ``clean_butter``: ``clean_take`` with Butterworth smoothing;
* ``clean``: ``clean_take`` with the defaults of ``convert``/``batch``
  (``CleanOptions()``: no QA fixes; One Euro smoothing, ground, contacts, foot locking);
* ``clean_fix``: the same with ``--fix-flags`` (default: flips, swaps and dropouts
  interpolated before filtering).

Figures (mean over motions and seeds; rows valid in the estimate only):

* MPJPE / PA-MPJPE (mm): the 22 body joints, pelvis-aligned / Procrustes-aligned
  (scale, rotation, translation) per frame;
* accel (mm/frame^2): mean |acceleration error| of the 22 body joints,
  pelvis-aligned (second differences over three consecutive valid rows; the usual
  definition of Kanazawa et al.);
* skate (mm/frame): mean slide along the true ground of the heel and toe points of
  feet planted in the truth (frames planted in the truth, both rows valid);
* pen (mm): mean over rows of how far the lowest foot point is below the true ground;
* QA precision / recall per injected fault kind, from ``clean_take``'s flags on the
  raw take (a flag and a fault match when they overlap and have the same kind).

It prints the figures and the command. Uses the stand-in SMPL-X model (written to
a temporary folder) unless ``--smplx`` gives a model file.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from bench._common import command_line, smplx_model

BODY = 22
FAULT_KINDS = ("wrist_flip", "lr_swap", "dropout")
TARGETS = {"skate": 2.0, "pen": 5.0, "accel_ratio": 0.25, "recall": 0.95, "precision": 0.90}


def procrustes(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Similarity-align ``X (T, N, 3)`` to ``Y`` per frame. -> aligned X."""
    mx, my = X.mean(1, keepdims=True), Y.mean(1, keepdims=True)
    x, y = X - mx, Y - my
    M = np.einsum("tni,tnj->tij", x, y)
    U, S, Vt = np.linalg.svd(M)
    d = np.sign(np.linalg.det(U @ Vt))
    D = np.ones((X.shape[0], 3))
    D[:, 2] = d
    R = np.einsum("tij,tj,tjk->tik", U, D, Vt)          # x R ~ y
    s = (S * D).sum(1) / np.maximum((x ** 2).sum((1, 2)), 1e-12)
    return s[:, None, None] * np.einsum("tni,tij->tnj", x, R) + my


def score(truth, tm, em, rows: np.ndarray) -> dict:
    """Figures of estimate motion ``em`` vs truth motion ``tm`` on ``rows (T,) bool``."""
    tj, ej = tm.joints[:, :BODY], em.joints[:, :BODY]
    r = rows
    rel_t = tj[r] - tj[r, :1]
    rel_e = ej[r] - ej[r, :1]
    mpjpe = np.linalg.norm(rel_e - rel_t, axis=-1).mean() * 1000
    pa = np.linalg.norm(procrustes(ej[r], tj[r]) - tj[r], axis=-1).mean() * 1000
    trip = r[2:] & r[1:-1] & r[:-2]
    tj0, ej0 = tj - tj[:, :1], ej - ej[:, :1]     # pelvis-aligned, as usual (HMMR)
    acc_t = tj0[2:] - 2 * tj0[1:-1] + tj0[:-2]
    acc_e = ej0[2:] - 2 * ej0[1:-1] + ej0[:-2]
    accel = np.linalg.norm(acc_e - acc_t, axis=-1)[trip].mean() * 1000
    n = truth.ground_normal
    slides = []
    for s, side in enumerate(("left", "right")):
        both = truth.contact[1:, s] & truth.contact[:-1, s] & r[1:] & r[:-1]
        for part in ("heel", "toes"):
            d = np.diff(em.foot_points[f"{side}_{part}"], axis=0)
            d = d - (d @ n)[:, None] * n
            slides.append(np.linalg.norm(d, axis=-1)[both])
    slides = np.concatenate(slides)
    skate = slides.mean() * 1000 if slides.size else float("nan")
    feet = np.stack(list(em.foot_points.values()), 1)[r]              # (n, 4, 3)
    pen = np.maximum(-truth.height(feet).min(1), 0).mean() * 1000
    return {"mpjpe": mpjpe, "pa": pa, "accel": accel, "skate": skate, "pen": pen}


def qa_counts(flags, faults) -> dict:
    """kind -> [true faults found, faults, flags matching a fault, flags]."""
    out = {k: [0, 0, 0, 0] for k in FAULT_KINDS}
    for k in FAULT_KINDS:
        fk = [(a, b) for kind, a, b in faults if kind == k]
        gk = [(f.start, f.end) for f in flags if f.kind == k]
        hit = lambda x, ys: any(x[0] < y[1] and y[0] < x[1] for y in ys)  # noqa: E731
        out[k] = [sum(hit(f, gk) for f in fk), len(fk), sum(hit(g, fk) for g in gk), len(gk)]
    return out


def run(args) -> int:
    from bench.motion_truth import MOTIONS, add_noise, make_truth
    from pose2pose_mocap.retarget.cleanup.clean import CleanOptions, clean_smoothing, clean_take
    from pose2pose_mocap.retarget.cleanup.kinematics import motion_from_params, take_motion
    from pose2pose_mocap.retarget.smoothing import Smoothing, smooth_take

    model, tmp = smplx_model(args.smplx, "p2p_bench_mq_")
    motions = args.motions.split(",") if args.motions else list(MOTIONS)
    one_euro = clean_smoothing()
    if args.beta is not None or args.body_hz is not None:
        one_euro = one_euro.with_(one_euro_beta=one_euro.one_euro_beta if args.beta is None
                                  else args.beta,
                                  body_hz=one_euro.body_hz if args.body_hz is None
                                  else args.body_hz)
    methods = {
        "raw": None,
        "butterworth": Smoothing(method="butterworth"),
        "savgol": Smoothing(method="savgol"),
        "gaussian": Smoothing(method="gaussian"),
        "one_euro": one_euro,
        "clean_butter": ("clean", Smoothing(method="butterworth")),
        "clean": ("clean", one_euro),
        "clean_fix": ("clean_fix", one_euro),
    }
    defaults, fixing = CleanOptions(), CleanOptions(fix_flags=args.fix_flags)
    table = {m: [] for m in methods}
    per_motion = {}
    qa = {k: np.zeros(4, int) for k in FAULT_KINDS}
    t0 = time.perf_counter()
    clean_s = 0.0
    for mi, name in enumerate(motions):
        for seed in range(args.seeds):
            truth = make_truth(name, model, seconds=args.seconds, seed=seed)
            noisy = add_noise(truth, seed=seed * 101 + mi)
            take = noisy.take
            rows = np.asarray(take.valid, bool)
            tm = motion_from_params(truth.params, np.ones(truth.num_frames, bool), truth.fps,
                                    model, truth.betas)
            for m, settings in methods.items():
                if settings is None:
                    est = take
                elif isinstance(settings, tuple):
                    c0 = time.perf_counter()
                    res = clean_take(take, model, settings[1],
                                     fixing if settings[0] == "clean_fix" else defaults)
                    est = res.take
                    if m == "clean":
                        clean_s += time.perf_counter() - c0
                        for k, v in qa_counts(res.raw_flags, noisy.faults).items():
                            qa[k] += v
                else:
                    est = smooth_take(take, settings)
                em = take_motion(est, model)
                s = score(truth, tm, em, rows)
                table[m].append(s)
                per_motion.setdefault(name, {}).setdefault(m, []).append(s)
    wall = time.perf_counter() - t0
    keys = ("mpjpe", "pa", "accel", "skate", "pen")
    head = f"{'method':<12}" + "".join(f"{h:>11}" for h in
                                       ("MPJPE mm", "PA-MPJPE", "accel", "skate", "pen mm"))
    print(f"motion quality: {len(motions)} motions x {args.seeds} seed(s), "
          f"{args.seconds:g} s at 30 fps")
    print(f"one_euro / clean: {one_euro.to_dict()}; clean_butter: clean_take with "
          "Butterworth; clean: CleanOptions() (convert's default); clean_fix: --fix-flags "
          f"{args.fix_flags}")
    print("\nmean over all motions (accel mm/frame^2, skate mm/frame on true contacts)")
    print(head)
    mean = {}
    for m, rows_ in table.items():
        mean[m] = {k: float(np.nanmean([r[k] for r in rows_])) for k in keys}
        print(f"{m:<12}" + "".join(f"{mean[m][k]:>11.2f}" for k in keys))
    if args.per_motion:
        for name, d in per_motion.items():
            print(f"\n{name}")
            print(head)
            for m, rows_ in d.items():
                print(f"{m:<12}" + "".join(f"{np.nanmean([r[k] for r in rows_]):>11.2f}"
                                           for k in keys))
    print("\nQA on the raw takes (clean_take's raw flags vs injected faults)")
    print(f"{'kind':<12}{'recall':>9}{'precision':>11}{'faults':>8}{'flags':>7}")
    for k, (found, n, good, nflags) in qa.items():
        rec = found / n if n else float("nan")
        prec = good / nflags if nflags else float("nan")
        print(f"{k:<12}{rec:>9.2f}{prec:>11.2f}{n:>8}{nflags:>7}")
    best_mpjpe = min(mean[m]["mpjpe"] for m in ("butterworth", "savgol", "gaussian"))
    c = mean["clean"]
    print("\ntargets (clean, the default):")
    print(f"  foot skate {c['skate']:.2f} mm/frame (<= {TARGETS['skate']:g})")
    print(f"  penetration {c['pen']:.2f} mm (<= {TARGETS['pen']:g})")
    print(f"  accel error {c['accel'] / mean['raw']['accel']:.0%} of raw "
          f"(<= {TARGETS['accel_ratio']:.0%})")
    print(f"  MPJPE {c['mpjpe']:.2f} mm vs best of the other filters {best_mpjpe:.2f} mm")
    print(f"\nclean_take: {clean_s / max(1, len(motions) * args.seeds):.2f} s per "
          f"{args.seconds:g} s take; whole bench {wall:.1f} s")
    print(command_line("bench.motion_quality", args.argv))
    if tmp is not None:
        tmp.cleanup()
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--motions", default="")
    ap.add_argument("--beta", type=float, default=None,
                    help="One Euro beta (default: the clean-up's)")
    ap.add_argument("--body-hz", type=float, default=None,
                    help="One Euro body floor cutoff (default: the clean-up's)")
    ap.add_argument("--fix-flags", default="wrist_flip=interpolate,lr_swap=interpolate,"
                                             "dropout=interpolate")
    ap.add_argument("--per-motion", action="store_true")
    ap.add_argument("--smplx", default="")
    args = ap.parse_args(argv)
    args.argv = argv
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
