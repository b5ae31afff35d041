"""Export file size per second of animation, for every preset.

Run from the repo root (any venv with bpy):

    python -m bench.export_sizes [--frames 150] [--fps 30] [--presets unity,gltf,...]

Writes a take of ``--frames`` frames (random poses, the stand-in SMPL-X model,
written to a temporary folder), converts it once to a ``.blend`` with the 486
pose-corrective shape keys, and exports that ``.blend`` with every preset twice:
with the preset's default (game presets leave the ``Pose*`` keys out) and with
``--pose-correctives on``. Prints one line per preset: the file size, the
seconds of animation, and MB per second of animation (the fixed part, the mesh
and the shape keys, is spread over the take: longer takes cost less per second).
"""
from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    from pose2pose_mocap.retarget.export_presets import PRESETS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--presets", default=",".join(PRESETS),
                    help=f"comma-separated (default: {','.join(PRESETS)})")
    args = ap.parse_args(argv)
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]

    import bpy

    cmd = [Path(sys.executable).name, "-m", "bench.export_sizes"] + list(argv or sys.argv[1:])
    print(f"command (from the repo root): {shlex.join(cmd)}")
    print(f"Blender {bpy.app.version_string}, numpy {np.__version__}")
    tmp = Path(tempfile.mkdtemp(prefix="p2p_bench_"))
    try:
        return _run(args, presets, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(args, presets, tmp) -> int:
    from pose2pose_mocap.retarget.blender.export import export_scene
    from pose2pose_mocap.retarget.convert import convert_take
    from pose2pose_mocap.retarget.export_presets import PRESETS
    from pose2pose_mocap.retarget.take import write_take
    from pose2pose_mocap.weights.standins import smplx_standin_arrays, write_npz
    from tests.retarget.synthetic import take_arrays

    write_npz(tmp / "smplx" / "SMPLX_NEUTRAL.npz", smplx_standin_arrays("neutral"))
    arrays = take_arrays(T=args.frames)
    arrays["fps"] = args.fps
    arrays["frame_index"] = np.arange(args.frames)
    take = write_take(tmp / "bench.take.npz", arrays)
    blend = convert_take(take, tmp, pose_correctives=True)
    seconds = args.frames / args.fps
    print(f"take: {args.frames} frames at {args.fps:g} fps = {seconds:g} s; stand-in SMPL-X "
          "(10,475 vertices), from a .blend whose rig has the 486 Pose* keys")
    print(f"{'preset':8} {'Pose* keys':11} {'size MB':>9} {'MB/s':>7} {'export s':>9}")
    for name in presets:
        p = PRESETS[name]
        for correctives in (None, True):
            if correctives and (not p.mesh or p.pose_correctives):
                continue   # nothing to add: no mesh, or the preset keeps them already
            out = tmp / f"out.{name}{'.pc' if correctives else ''}{p.suffix}"
            t0 = time.perf_counter()
            r = export_scene(blend, name, out, pose_correctives=correctives)
            dt = time.perf_counter() - t0
            mb = out.stat().st_size / 1e6
            kept = ("no mesh" if not p.mesh else
                    "kept" if correctives or p.pose_correctives else "left out")
            print(f"{name:8} {kept:11} {mb:9.2f} {mb / seconds:7.2f} {dt:9.1f}", flush=True)
            out.unlink()
            del r
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
