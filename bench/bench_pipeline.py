# SPDX-License-Identifier: GPL-3.0-or-later
"""End-to-end throughput of ``estimate``, time per stage, and memory over a long clip.

    python -m bench.bench_pipeline                                  # 1080p, 300 frames
    python -m bench.bench_pipeline --frames 12 --long-frames 60 --long-size 320x180   # 2 cores
    python -m bench.bench_pipeline --device cuda --pipeline batched --precision bf16 \\
        --frames 3000 --long-frames 18000                              # a GPU (10 min at 30 fps)
    python -m bench.bench_pipeline --clip my_1080p_h264.mp4          # a real clip

Part 1 runs ``EstimateJob`` on a 1920x1080 clip (generated: a figure walking
across a textured background, MPEG-4 part 2 unless ``--codec``; or ``--clip``)
after a warm-up, and prints frames/s (model loaded before) and where the time
goes, measured in the main thread: decode (waiting for the next decoded frame;
the decoding itself runs ahead on other threads, its own rate is printed too),
crop (OpenCV or on-device crops), network (the forward and its copies, without
SMPL-X), SMPL-X (the layer inside the forward), outputs to rows (the per-crop
confidence and the take rows), take writing, and tracking + the rest (what is
left). Detection is 0: the clip is run with ``detector="none"`` (the whole
first frame seeds the track; the stand-in detector would find random boxes). On CUDA every stage timer synchronises
the device, so the stages add up (and the overlap of copies with compute is
partly lost while timing). The batched pipeline also reports its rounds and how
many crops were re-run because a predicted box missed.

Part 2 runs a long clip and samples the process's RSS (and on CUDA the
allocated / reserved GPU memory) every ``--rss-every`` frames: the curves
should be flat. Stand-in model files are generated unless --smplx and
--checkpoint name real ones (same layers and shapes as the real network, so
the same speed). Prints the exact command.
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=300, help="frames of the part-1 clip (300)")
    p.add_argument("--size", default="1920x1080", help="size of the part-1 clip (1920x1080)")
    p.add_argument("--clip", default=None, help="a video to use for part 1 instead")
    p.add_argument("--codec", default="mp4v",
                   help="FourCC of the generated clips (mp4v; avc1 where OpenCV has H.264)")
    p.add_argument("--long-frames", type=int, default=3000,
                   help="frames of the memory clip (3000; 0 skips part 2)")
    p.add_argument("--long-size", default="640x360", help="size of the memory clip (640x360)")
    p.add_argument("--rss-every", type=int, default=100, help="memory sample interval, frames")
    p.add_argument("--device", default="auto")
    p.add_argument("--pipeline", default="auto", choices=("auto", "classic", "batched"))
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


def write_clip(path: Path, n: int, size: tuple[int, int], fps: float = 30.0,
               codec: str = "mp4v") -> Path:
    """A figure (head, torso, limbs as rectangles) walking across a textured background."""
    w, h = size
    rng = np.random.default_rng(0)
    bg = cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (0, 0), 3)
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (w, h))
    if not wr.isOpened():
        raise SystemExit(f"OpenCV cannot write {codec} here (try --codec mp4v or MJPG)")
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


class StageTimer:
    """Seconds per stage, measured in the main thread (background decoding is not
    counted except as the main thread's wait for it). ``sync``: CUDA synchronise at
    each boundary so asynchronous work is charged to its stage."""

    def __init__(self, sync: bool):
        self.total: dict[str, float] = {}
        self.sync = sync
        self._main = threading.main_thread()
        self._open: set[str] = set()

    def _now(self) -> float:
        if self.sync:
            import torch

            torch.cuda.synchronize()
        return time.perf_counter()

    def add(self, stage: str, seconds: float) -> None:
        self.total[stage] = self.total.get(stage, 0.0) + seconds

    def wrap(self, owner, name: str, stage: str):
        """Time calls of ``owner.name`` (a module function or a class's method)."""
        fn = getattr(owner, name)
        timer = self

        def timed(*a, **k):
            if threading.current_thread() is not timer._main or stage in timer._open:
                return fn(*a, **k)  # (background threads; calls nested in the same stage)
            timer._open.add(stage)
            t = timer._now()
            try:
                return fn(*a, **k)
            finally:
                timer.add(stage, timer._now() - t)
                timer._open.discard(stage)

        setattr(owner, name, timed)
        return lambda: setattr(owner, name, fn)

    def hook(self, module, stage: str):
        """Time a torch module's forward (pre/post hooks)."""
        start = {}

        def pre(*_a, **_k):
            start["t"] = self._now()

        def post(*_a, **_k):
            self.add(stage, self._now() - start.pop("t"))

        h1 = module.register_forward_pre_hook(pre)
        h2 = module.register_forward_hook(post)
        return lambda: (h1.remove(), h2.remove())


def instrument(timer: StageTimer, model):
    """Put the stage timers in place; returns a function that removes them."""
    from pose2pose_mocap.estimator import crop as crop_mod
    from pose2pose_mocap.estimator import sources
    from pose2pose_mocap.estimator.fastpath import crops as dev_crops
    from pose2pose_mocap.estimator.fastpath import decode
    from pose2pose_mocap.estimator.pose2pose import inference, outputs, take_convert

    undo = [timer.wrap(sources.FramePrefetcher, "get", "decode"),
            timer.wrap(decode.DecodePool, "get", "decode"),
            timer.wrap(crop_mod, "crop_person", "crop"),
            timer.wrap(crop_mod, "warp_crop", "crop"),
            timer.wrap(dev_crops, "warp_crops", "crop"),
            timer.wrap(inference, "run_batch", "network"),
            timer.wrap(outputs, "crop_confidence", "outputs to rows"),
            timer.wrap(take_convert, "rows_from_outputs", "outputs to rows"),
            timer.hook(model.smplx_layer, "smplx")]
    return lambda: [u() for u in undo]


def run_job(clip: Path, out_dir: Path, model, args, sample_every: int | None = None):
    from pose2pose_mocap.estimator.pipeline import EstimateJob

    job = EstimateJob(clip, out_dir, model=model, model_name="bench", model_standin=True,
                      detector="none", device=args.device, batch=args.batch,
                      precision=args.precision, pipeline=args.pipeline)
    samples = []  # (frames done, RSS MiB, GPU allocated MiB, GPU reserved MiB)
    t_start = t_write = t_end = None
    next_sample = 0
    cuda = args.device.startswith("cuda")
    for p in job.steps():
        if p.stage == "estimating":
            if t_start is None:
                t_start = time.perf_counter()
            if sample_every and p.done >= next_sample:
                gpu = (0.0, 0.0)
                if cuda:
                    import torch

                    gpu = (torch.cuda.memory_allocated() / 2**20,
                           torch.cuda.memory_reserved() / 2**20)
                samples.append((p.done, rss_mib()) + gpu)
                next_sample = p.done + sample_every
        elif p.stage == "writing":
            t_write = time.perf_counter()
        elif p.stage in ("done", "cancelled"):
            t_end = time.perf_counter()
    elapsed = (t_write or t_end) - (t_start or t_end)
    writing = (t_end - t_write) if t_write else 0.0
    return job, elapsed, writing, samples


def decode_rate(clip: Path, n: int) -> float:
    """Frames/s of decoding alone (OpenCV/FFmpeg, RGB conversion included)."""
    from pose2pose_mocap.estimator.sources import open_source

    src = open_source(clip, f"0:{n}")
    t = time.perf_counter()
    k = sum(1 for _ in src.read())
    return k / max(time.perf_counter() - t, 1e-9)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from pose2pose_mocap.estimator.device import resolve_device
    from pose2pose_mocap.estimator.pose2pose.checkpoint import load_checkpoint

    print("command:", shlex.join([sys.executable, "-m", "bench.bench_pipeline"] + sys.argv[1:]))
    device = resolve_device(args.device)
    args.device = device
    cuda = device.startswith("cuda")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if cuda else ""))
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

    size = tuple(int(v) for v in args.size.lower().split("x"))
    ext = ".avi" if args.codec.upper() == "MJPG" else ".mp4"
    clip = Path(args.clip) if args.clip else \
        write_clip(work / f"bench_{size[0]}x{size[1]}{ext}", args.frames, size, codec=args.codec)
    out = work / "out"
    out.mkdir(exist_ok=True)
    # Warm-up (first calls of a new shape are slow on oneDNN / cuDNN; CUDA context).
    warm = write_clip(work / f"warm{ext}", 4 if not cuda else 64, size, codec=args.codec)
    run_job(warm, out, model, args)
    print(f"decoding alone: {decode_rate(clip, args.frames):.1f} frames/s "
          f"({cv2.VideoCapture(str(clip)).get(cv2.CAP_PROP_FRAME_WIDTH):.0f} px wide)")
    timer = StageTimer(sync=cuda)
    undo = instrument(timer, model)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    try:
        job, elapsed, writing, _ = run_job(clip, out, model, args)
    finally:
        undo()
    n = job.result.frames_done
    st = dict(timer.total)
    st["network"] = st.get("network", 0.0) - st.get("smplx", 0.0)
    st["take writing"] = writing
    known = sum(v for k, v in st.items() if k != "take writing")
    st["tracking + rest"] = max(0.0, elapsed - known)
    print(f"\n[1] {n} frames {size[0]}x{size[1]}, pipeline {job.pipeline_used}, batch "
          f"{job.batch}, {args.precision}: {elapsed:.2f} s, {n / elapsed:.2f} frames/s "
          f"({1000 * elapsed / n:.1f} ms/frame); take written in {writing:.2f} s")
    for k in ("decode", "crop", "network", "smplx", "outputs to rows", "tracking + rest",
              "take writing"):
        v = st.get(k, 0.0)
        print(f"    {k:16s} {1000 * v / n:8.2f} ms/frame  ({100 * v / max(elapsed, 1e-9):5.1f} %)")
    print("    detect              0.00 ms/frame  (detector none: the whole frame seeds the track)")
    runner = getattr(job, "runner", None)
    if runner is not None:
        print(f"    batched rounds: {runner.stats.line()}")
    if cuda:
        print(f"    GPU peak allocated {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")

    if args.long_frames:
        lw, lh = (int(v) for v in args.long_size.lower().split("x"))
        long_clip = write_clip(work / f"bench_long{ext}", args.long_frames, (lw, lh),
                               codec=args.codec)
        job, elapsed, _, samples = run_job(long_clip, out, model, args, args.rss_every)
        a = np.array(samples, dtype=np.float64)
        frames, rss = a[:, 0], a[:, 1]
        q = max(1, len(rss) // 4)
        slope = np.polyfit(frames, rss, 1)[0] * 1000 if len(rss) > 2 else float("nan")
        print(f"\n[2] memory over {job.result.frames_done} frames {lw}x{lh} "
              f"({job.result.frames_done / elapsed:.2f} frames/s), every {args.rss_every} "
              "frames:")
        print("    frames : " + " ".join(f"{f:6.0f}" for f in frames))
        print("    RSS MiB: " + " ".join(f"{r:6.0f}" for r in rss))
        if cuda:
            print("    GPU MiB: " + " ".join(f"{r:6.0f}" for r in a[:, 2]) + "  (allocated)")
            print("    GPU MiB: " + " ".join(f"{r:6.0f}" for r in a[:, 3]) + "  (reserved)")
        print(f"    RSS min {rss.min():.0f}, max {rss.max():.0f}, first quarter mean "
              f"{rss[:q].mean():.0f}, last quarter mean {rss[-q:].mean():.0f}, "
              f"slope {slope:+.1f} MiB per 1000 frames")
    if not args.workdir:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
