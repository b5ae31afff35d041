# SPDX-License-Identifier: GPL-3.0-or-later
"""Throughput of ``p2p-mocap batch`` on a folder of synthetic clips (clips/min, frames/s).

    python bench/bench_batch.py                                  # 6 clips x 20 frames, 320x240
    python bench/bench_batch.py --clips 12 --frames 60 -- --workers 2 --preset unity
    python bench/bench_batch.py -- --ray local

Writes the clips into a temporary folder (a figure-like block moving across),
stand-in model files unless --smplx and --checkpoint name real ones (numbers
with stand-ins equal the real checkpoint's: same layers and shapes), runs
the batch command once from an empty output folder (everything after ``--``
is passed to it) and prints the command, its summary and clips/min of wall
time (the network load of each estimator process included).
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def write_clip(path: Path, n: int, w: int, h: int, seed: int) -> None:
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (w, h))
    rng = np.random.default_rng(seed)
    for i in range(n):
        img = np.full((h, w, 3), 40, np.uint8)
        x = int(w * 0.1 + i * w * 0.6 / max(n, 1))
        cv2.rectangle(img, (x, h // 5), (x + w // 6, h - h // 8), (200, 180, 160), -1)
        cv2.circle(img, (x + w // 12, h // 7), h // 14, (190, 170, 150), -1)
        img += rng.integers(0, 8, img.shape, dtype=np.uint8)
        wr.write(img)
    wr.release()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clips", type=int, default=6)
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--size", default="320x240")
    p.add_argument("--smplx")
    p.add_argument("--checkpoint")
    a = p.parse_args(own)
    w, h = (int(v) for v in a.size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="p2p_bench_batch_") as tmp:
        tmp = Path(tmp)
        if not (a.smplx and a.checkpoint):
            from pose2pose_mocap.weights.standins import write_standins

            write_standins(tmp / "models")
            a.smplx, a.checkpoint = str(tmp / "models"), str(tmp / "models" / "pose2pose")
        src = tmp / "footage"
        for i in range(a.clips):
            (src / f"take{i // 3}").mkdir(parents=True, exist_ok=True)
            write_clip(src / f"take{i // 3}" / f"clip{i}.mp4", a.frames, w, h, i)
        cmd = [sys.executable, "-m", "pose2pose_mocap.batch.cli_batch", str(src), "-o",
               str(tmp / "out"), "--smplx", a.smplx, "--checkpoint", a.checkpoint, *extra]
        print("$ " + shlex.join(cmd), flush=True)
        t0 = time.monotonic()
        r = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.monotonic() - t0
        print(r.stdout)
        if r.returncode != 0:
            print(r.stderr[-3000:], file=sys.stderr)
        print(f"{a.clips} clips x {a.frames} frames at {w}x{h}: {wall:.1f} s wall including "
              f"start-up, {a.clips / (wall / 60):.2f} clips/min, "
              f"{a.clips * a.frames / wall:.2f} frames/s")
        return r.returncode


if __name__ == "__main__":
    sys.exit(main())
