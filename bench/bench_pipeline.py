# SPDX-License-Identifier: GPL-3.0-or-later
"""Throughput and memory of the whole estimation pipeline (decode, crop, network, take).

    python bench/bench_pipeline.py                         # 300-frame 720p clip + RSS run
    python bench/bench_pipeline.py --frames 40 --long-frames 400     # a slow 2-core machine
    python bench/bench_pipeline.py --device cuda --batch 16 --long-frames 5000

Part 1 generates a synthetic 1280x720 clip (a figure walking across; MJPG) and
runs ``EstimateJob`` on it: frames/s after the model is loaded, and where the
time goes (network vs the rest, measured on the job's own progress records).
Part 2 runs a long synthetic clip and samples the process's RSS every
``--rss-every`` frames: the curve should be flat (decoding is streamed through
a bounded queue; only the take's rows, ~1.6 KB per frame, accumulate).

Stand-in model files are generated into a temporary folder unless --smplx and
--checkpoint name real ones; numbers with stand-ins equal those of the real
checkpoint (same layers and shapes). Prints the exact command it was run with.
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=300, help="frames of the 720p clip (300)")
    p.add_argument("--long-frames", type=int, default=3000,
                   help="frames of the RSS clip (3000; 0 skips part 2)")
    p.add_argument("--long-size", default="640x360", help="size of the RSS clip (640x360)")
    p.add_argument("--rss-every", type=int, default=50, help="RSS sample interval in frames")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int, default=None, help="crops per forward (default: auto)")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument("--smplx", default=None, help="real SMPL-X folder (default: stand-ins)")
    p.add_argument("--checkpoint", default=None, help="real checkpoint (default: stand-in)")
    p.add_argument("--workdir", default=None, help="where clips and stand-ins go (default: temp)")
    return p.parse_args(argv)


def rss_mib() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_clip(path: Path, n: int, size: tuple[int, int], fps: float = 30.0) -> Path:
    """A figure (head, torso, limbs as rectangles) walking across a textured background."""
    w, h = size
    rng = np.random.default_rng(0)
    bg = cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (0, 0), 3)
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    if not wr.isOpened():
        raise SystemExit("OpenCV cannot write MJPG here")
    s = h / 720
    for i in range(n):
        img = bg.copy()
        x = int((0.15 + 0.7 * (i % 300) / 300) * w)
        sw = int(40 * s * np.sin(i / 5))
        col = (60, 90, 200)
        cv2.circle(img, (x, int(170 * s)), int(40 * s), (150, 170, 210), -1)
        cv2.rectangle(img, (x - int(60 * s), int(215 * s)), (x + int(60 * s), int(420 * s)), col, -1)
        cv2.line(img, (x - int(30 * s), int(420 * s)), (x - int(30 * s) - sw, int(640 * s)),
                 (40, 40, 40), max(1, int(30 * s)))
        cv2.line(img, (x + int(30 * s), int(420 * s)), (x + int(30 * s) + sw, int(640 * s)),
                 (40, 40, 40), max(1, int(30 * s)))
        cv2.line(img, (x - int(60 * s), int(230 * s)), (x - int(120 * s) + sw, int(400 * s)),
                 col, max(1, int(22 * s)))
        cv2.line(img, (x + int(60 * s), int(230 * s)), (x + int(120 * s) - sw, int(400 * s)),
                 col, max(1, int(22 * s)))
        wr.write(img)
    wr.release()
    return path


class NetworkTimer:
    """Wall time spent inside the network's forward (hooks on the model)."""

    def __init__(self, model):
        self.total = 0.0
        self._t = 0.0
        model.register_forward_pre_hook(self._pre)
        model.register_forward_hook(self._post)

    def _pre(self, *_):
        self._t = time.perf_counter()

    def _post(self, *_):
        self.total += time.perf_counter() - self._t


def run_job(clip: Path, out_dir: Path, model, args, rss_every: int | None = None):
    from pose2pose_mocap.estimator.pipeline import EstimateJob

    job = EstimateJob(clip, out_dir, model=model, model_name="bench", model_standin=True,
                      detector="none", device=args.device, batch=args.batch,
                      precision=args.precision)
    samples = []  # (frames done, RSS MiB)
    t_start = None
    next_sample = 0
    for p in job.steps():
        if p.stage == "estimating":
            if t_start is None:
                t_start = time.perf_counter()
            if rss_every and p.done >= next_sample:
                samples.append((p.done, rss_mib()))
                next_sample = p.done + rss_every
    elapsed = time.perf_counter() - (t_start or time.perf_counter())
    return job, elapsed, samples


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from pose2pose_mocap.estimator.pose2pose.checkpoint import load_checkpoint
    from pose2pose_mocap.estimator.device import resolve_device

    print("command:", shlex.join([sys.executable] + sys.argv))
    device = resolve_device(args.device)
    args.device = device
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.startswith("cuda") else ""))
    work = Path(args.workdir or tempfile.mkdtemp(prefix="p2p_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    if args.smplx and args.checkpoint:
        smplx_path, ckpt = args.smplx, args.checkpoint
    else:
        from pose2pose_mocap.weights.standins import write_standins

        root = work / "standins"
        if not (root / "pose2pose" / "standin.pth.tar").is_file():
            write_standins(root)
        smplx_path, ckpt = root, root / "pose2pose" / "standin.pth.tar"
    t0 = time.perf_counter()
    model = load_checkpoint(ckpt, smplx_model_path=smplx_path, device=device)
    print(f"model loaded in {time.perf_counter() - t0:.1f} s; RSS {rss_mib():.0f} MiB")

    clip = write_clip(work / "bench_720p.avi", args.frames, (1280, 720))
    out = work / "out"
    out.mkdir(exist_ok=True)
    # Warm-up on a few frames (first calls of a new shape are slow on oneDNN / cuDNN).
    run_job(write_clip(work / "warm.avi", 4, (1280, 720)), out, model, args)
    timer = NetworkTimer(model)
    job, elapsed, _ = run_job(clip, out, model, args)
    n = job.result.frames_done
    print(f"\n[1] {n} frames 1280x720, batch {job.batch}, {args.precision}: {elapsed:.1f} s, "
          f"{n / elapsed:.2f} frames/s ({1000 * elapsed / n:.0f} ms/frame; network "
          f"{1000 * timer.total / n:.0f} ms/frame, the rest {1000 * (elapsed - timer.total) / n:.0f})")
    timer.total = 0.0

    if args.long_frames:
        lw, lh = (int(v) for v in args.long_size.lower().split("x"))
        long_clip = write_clip(work / "bench_long.avi", args.long_frames, (lw, lh))
        job, elapsed, samples = run_job(long_clip, out, model, args, args.rss_every)
        rss = np.array([r for _, r in samples])
        frames = np.array([f for f, _ in samples])
        q = max(1, len(rss) // 4)
        slope = np.polyfit(frames, rss, 1)[0] * 1000 if len(rss) > 2 else float("nan")
        print(f"\n[2] RSS over {job.result.frames_done} frames {lw}x{lh} "
              f"({job.result.frames_done / elapsed:.2f} frames/s, network "
              f"{1000 * timer.total / job.result.frames_done:.0f} ms/frame), sampled every "
              f"{args.rss_every} frames:")
        print("    frames : " + " ".join(f"{f:6d}" for f in frames))
        print("    RSS MiB: " + " ".join(f"{r:6.0f}" for r in rss))
        print(f"    min {rss.min():.0f}, max {rss.max():.0f}, first quarter mean "
              f"{rss[:q].mean():.0f}, last quarter mean {rss[-q:].mean():.0f}, "
              f"slope {slope:+.1f} MiB per 1000 frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
