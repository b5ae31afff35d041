# SPDX-License-Identifier: GPL-3.0-or-later
"""Throughput of ``p2p-mocap batch`` on a folder of synthetic clips (clips/min, frames/s).

    python -m bench.bench_batch                                  # 6 clips x 10 frames, 320x240
    python -m bench.bench_batch --clips 12 --frames 60 -- --workers 2 --preset unity
    python -m bench.bench_batch --rounds 2 -- --retarget-workers 2

Writes the clips into a temporary folder (a figure-like block moving across),
stand-in model files unless --smplx and --checkpoint name real ones (numbers
with stand-ins equal the real checkpoint's: same layers and shapes), runs the
batch command once from an empty output folder (everything after ``--`` is
passed to it; persistent Blender processes), then the convert/export stage
alone on copies of that folder (``--shape-keys off``: the takes are reused,
every clip is converted again), once with a fresh Blender process per task
(``--fresh-blender``, the old way) and once with the persistent Blender
processes (``batch.blender_pool``), alternating over ``--rounds``. Prints the
commands and clips/min of wall time (start-up included) and the ratios; the
end-to-end figure of the old way is derived (same estimation, other stage).
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
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


def run_batch(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    print("$ " + shlex.join(cmd), flush=True)
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if r.returncode != 0:
        print(r.stdout[-3000:])
        print(r.stderr[-3000:], file=sys.stderr)
    return wall, r


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clips", type=int, default=6)
    p.add_argument("--frames", type=int, default=10)
    p.add_argument("--size", default="320x240")
    p.add_argument("--rounds", type=int, default=1,
                   help="convert/export rounds of each way, alternating (default 1)")
    p.add_argument("--smplx")
    p.add_argument("--checkpoint")
    a = p.parse_args(own)
    w, h = (int(v) for v in a.size.lower().split("x"))
    print("$ " + shlex.join([sys.executable, "-m", "bench.bench_batch", *argv]), flush=True)
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

        def cmd(out: Path, *more: str) -> list[str]:
            return [sys.executable, "-m", "pose2pose_mocap.batch.cli_batch", str(src), "-o",
                    str(out), "--smplx", a.smplx, "--checkpoint", a.checkpoint, *more, *extra]

        # 1. everything (estimate, convert, export with --preset), persistent Blender processes
        full, r = run_batch(cmd(tmp / "out"))
        if r.returncode != 0:
            return r.returncode
        # 2. the Blender stage alone, each way on a copy of that output folder: a changed convert
        #    setting (--shape-keys off) redoes convert/export of every clip and reuses the takes
        walls: dict[str, list[float]] = {"fresh": [], "pool": []}
        for k in range(a.rounds):
            for mode in (("fresh", "pool") if k % 2 == 0 else ("pool", "fresh")):
                out = tmp / f"out_{mode}_{k}"
                shutil.copytree(tmp / "out", out)
                flag = ["--fresh-blender"] if mode == "fresh" else []
                wall, r = run_batch(cmd(out, "--shape-keys", "off", *flag))
                if r.returncode != 0:
                    return r.returncode
                walls[mode].append(wall)
                shutil.rmtree(out)
        fresh, pool = min(walls["fresh"]), min(walls["pool"])
        per_min = a.clips * 60.0
        print(f"{a.clips} clips x {a.frames} frames at {w}x{h} (wall time, start-up included; "
              f"best of {a.rounds}; load average {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} cores):")
        print(f"  convert/export stage, a fresh Blender per task (--fresh-blender): "
              f"{fresh:6.1f} s = {per_min / fresh:6.2f} clips/min")
        print(f"  convert/export stage, persistent Blender processes:              "
              f"{pool:6.1f} s = {per_min / pool:6.2f} clips/min   ({fresh / pool:.2f}x)")
        est = full - pool   # the same estimation in both ways
        print(f"  end to end, persistent (measured):                               "
              f"{full:6.1f} s = {per_min / full:6.2f} clips/min")
        print(f"  end to end, fresh (derived: measured end to end - pool stage + fresh stage): "
              f"{est + fresh:6.1f} s = {per_min / (est + fresh):6.2f} clips/min   "
              f"({(est + fresh) / full:.2f}x)")
        return 0


if __name__ == "__main__":
    sys.exit(main())
