# SPDX-License-Identifier: GPL-3.0-or-later
"""How fast the Pose2Pose forward could run on this CPU: work per frame against the CPU's peak.

    python -m bench.roofline                      # batch 1, the usable cores
    python -m bench.roofline --batch 4 --threads 2

Counts the floating-point work of one frame's forward (``torch.utils.flop_counter``:
convolutions, matrix products; a multiply-add is 2 operations) per part of the network
(body trunk, hand trunk, face, heads, box net, SMPL-X), measures what this CPU reaches on
the operation that dominates that work (a large fp32 / bf16 matrix product and a ResNet
bottleneck-sized convolution, with PyTorch's threads set as ``estimate`` sets them), and
times ``cpu_runner``'s forward (what ``estimate`` runs). It prints:

* GFLOP per frame, by part;
* the CPU's measured fp32 and bf16 GFLOP/s (matmul, convolution);
* the network's own GFLOP/s (work per frame x frames/s) and its share of the peak;
* the frames/s bound if every operation ran at the measured convolution peak, and the
  GFLOP/s a given multiple of the official forward would need (``--official-fps``: the
  official forward's frames/s from ``bench_network`` in the same conditions; default:
  our eager fp32 forward measured here, which ``bench_network`` finds equal to it).

A target above the bound is out of reach for that precision on this machine, whatever
engine runs the graph; only less work (int8 at a higher peak, smaller inputs, skipped
crops) would reach it. Stand-in weights (seed 1, the real network's shapes) and stand-in
SMPL-X files: the work and the speed do not depend on the values.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from pose2pose_mocap.estimator import InferenceOptions, run_batch
from pose2pose_mocap.estimator.cpu_features import cpu_features, usable_cores
from pose2pose_mocap.estimator.pose2pose.inference import cpu_runner

from bench._common import command_line, standin_pose2pose

PARTS = ("backbone", "body_position_net", "body_rotation_net", "box_net", "hand_roi_net",
         "hand_position_net", "hand_rotation_net", "face_roi_net", "face_regressor",
         "smplx_layer")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench.roofline", description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="PyTorch threads (0: usable cores)")
    p.add_argument("--iters", type=int, default=6, help="timed forwards per precision")
    p.add_argument("--official-fps", type=float, default=0.0,
                   help="the official forward's frames/s measured by bench_network")
    p.add_argument("--targets", type=float, nargs="+", default=[1.5, 2.5, 5.0],
                   help="multiples of the official forward to price")
    return p.parse_args(argv)


def _best_seconds(fn, iters: int) -> float:
    fn()  # warm-up (allocations, oneDNN primitive creation)
    best = float("inf")
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def peak_gflops(dtype: torch.dtype, iters: int) -> dict[str, float]:
    """What this CPU reaches on a 2048^3 matrix product and on a 3x3 convolution of a
    ResNet-50 stage-3 block (256 channels, 32x24, batch 8), in ``dtype``."""
    a = torch.randn(2048, 2048).to(dtype)
    b = torch.randn(2048, 2048).to(dtype)
    mm = 2 * 2048 ** 3 / _best_seconds(lambda: torch.mm(a, b), iters) / 1e9
    conv = torch.nn.Conv2d(256, 256, 3, padding=1, bias=False).eval().to(dtype)
    conv = conv.to(memory_format=torch.channels_last)
    x = torch.randn(8, 256, 32, 24).to(dtype).contiguous(memory_format=torch.channels_last)
    work = 2 * 8 * 256 * 256 * 9 * 32 * 24
    with torch.inference_mode():
        cv = work / _best_seconds(lambda: conv(x), iters) / 1e9
    return {"matmul": mm, "conv": cv}


def flops_by_part(model: torch.nn.Module, images: torch.Tensor, options) -> tuple[int, dict]:
    """(total operations, part -> operations) of one ``run_batch`` of ``images``."""
    counter = FlopCounterMode(display=False, depth=2)
    with counter:
        run_batch(model, images, options)
    per_module = counter.get_flop_counts()
    parts = {}
    for name in PARTS:
        key = next((k for k in per_module if k.endswith("." + name)), None)
        parts[name] = sum(per_module[key].values()) if key else 0
    return counter.get_total_flops(), parts


def main(argv=None) -> int:
    args = parse_args(argv)
    print(command_line("bench.roofline", sys.argv[1:] if argv is None else argv))
    threads = args.threads or usable_cores()
    torch.set_num_threads(threads)
    feats = cpu_features()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"threads {threads}, {feats.describe()}")
    try:
        print(f"load average: {Path('/proc/loadavg').read_text().split()[0]}")
    except OSError:
        pass

    from pose2pose_mocap.weights.standins import write_smplx_standins

    with tempfile.TemporaryDirectory(prefix="p2p_roofline_") as tmp:
        write_smplx_standins(Path(tmp))
        model = standin_pose2pose(Path(tmp))
        images = torch.rand(args.batch, 3, 512, 384, generator=torch.Generator().manual_seed(0))

        eager = InferenceOptions(device="cpu", precision="fp32", channels_last=False)
        total, parts = flops_by_part(model, images, eager)
        per_frame = total / args.batch / 1e9
        print(f"\nwork per frame (batch {args.batch}): {per_frame:.2f} GFLOP")
        for name, n in sorted(parts.items(), key=lambda kv: -kv[1]):
            print(f"    {name:18s} {n / args.batch / 1e9:7.2f} GFLOP  "
                  f"({100 * n / max(total, 1):4.1f} %)")

        eager_fps = args.batch / _best_seconds(lambda: run_batch(model, images, eager),
                                               args.iters)
        official = args.official_fps or eager_fps
        source = ("--official-fps" if args.official_fps
                  else "our eager fp32 forward, measured here (bench_network: = official)")
        print(f"\nofficial forward: {official:.2f} frames/s ({source})")
        print(f"{'precision':9s} {'peak matmul':>12s} {'peak conv':>10s} {'network':>9s} "
              f"{'frames/s':>9s} {'of peak':>8s} {'bound f/s':>10s} {'bound x off':>11s}")
        results = {}
        for prec, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            peak = peak_gflops(dtype, args.iters)
            opts = InferenceOptions(device="cpu", precision=prec, threads=threads)
            runner = cpu_runner(model, opts)
            fps = args.batch / _best_seconds(lambda: run_batch(runner, images, opts), args.iters)
            achieved = fps * per_frame
            bound = peak["conv"] / per_frame
            results[prec] = peak
            print(f"{prec:9s} {peak['matmul']:9.0f} GF {peak['conv']:7.0f} GF "
                  f"{achieved:6.0f} GF {fps:9.2f} {100 * achieved / peak['conv']:7.0f}% "
                  f"{bound:10.2f} {bound / official:10.2f}x")
        print("\n(bound: every operation of the frame at the measured convolution peak; "
              "the rest of estimate (decode, crops, tracking) adds to the time)")
        for t in args.targets:
            need = t * official * per_frame
            verdict = ", ".join(f"{p} peak {results[p]['conv']:.0f}: "
                                f"{'within' if need <= results[p]['conv'] else 'ABOVE'}"
                                for p in results)
            print(f"{t:.1f}x the official forward needs {need:6.0f} GFLOP/s sustained "
                  f"({verdict})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
