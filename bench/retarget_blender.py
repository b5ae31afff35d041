# SPDX-License-Identifier: GPL-3.0-or-later
"""Time of a retarget in Blender (what Preview / Bake / ``p2p-mocap retarget`` cost).

Builds an SMPL-X rig keyed with a synthetic take of N frames (stand-in model files, smooth
random motion), then, per target, times the three steps of ``retarget.blender.retarget``:
reading the rig's take back from its keys (``source_pose``), the numpy solve (``retarget``)
and writing the new action onto the target (``write_motion``, every bone keyed).

Run: ``.venv/bin/python -m bench.retarget_blender [--frames 10000] [--targets mixamo,ue5]``
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _take(T: int, seed: int = 0):
    from pose2pose_mocap.retarget.take import Take, PARAM_COLUMNS

    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None] / 30.0
    params = {}
    for k, cols in PARAM_COLUMNS.items():
        freq = rng.uniform(0.2, 1.5, size=(1, cols))
        phase = rng.uniform(0, 2 * np.pi, size=(1, cols))
        amp = 0.3 if k != "transl" else 0.5
        params[k] = amp * np.sin(2 * np.pi * freq * t + phase)
    params["global_orient"][:, 0] += np.pi
    params["transl"][:, 2] += 4.0
    params["betas"] = np.zeros((T, PARAM_COLUMNS["betas"]))
    return Take(fps=30.0, frame_index=np.arange(T, dtype=np.int64), valid=np.ones(T, bool),
                params=params, person_id=0, image_size=np.array([640, 480]),
                focal=np.array([600.0, 600.0]), princpt=np.array([320.0, 240.0]),
                source="", model="bench", standin=True, gender="neutral")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--targets", default="mixamo,ue5,rigify,godot")
    args = ap.parse_args(argv)

    import bpy

    from pose2pose_mocap.retarget.blender.build import build_take_scene
    from pose2pose_mocap.retarget.blender.output import empty_session
    from pose2pose_mocap.retarget.blender.retarget import (resolve_target, source_pose,
                                                           write_motion)
    from pose2pose_mocap.retarget.smplx_model import load_smplx_model
    from pose2pose_mocap.retarget.targets import retarget
    from pose2pose_mocap.weights.standins import smplx_standin_arrays, write_npz

    folder = Path(tempfile.mkdtemp(prefix="p2p_bench_retarget_"))
    try:
        path = folder / "SMPLX_NEUTRAL.npz"
        write_npz(path, smplx_standin_arrays("neutral"))
        empty_session()
        t0 = time.perf_counter()
        built = build_take_scene(load_smplx_model(path), _take(args.frames),
                                 pose_correctives=False, camera=False)
        print(f"Blender {bpy.app.version_string}; {args.frames:,} frames; SMPL-X rig built and "
              f"keyed in {time.perf_counter() - t0:.2f} s (not part of a retarget)")
        rig = built.rig.armature
        print(f"{'target':8s} {'bones':>5s} {'read take':>10s} {'solve':>8s} {'write':>8s} "
              f"{'total':>8s}")
        for name in args.targets.split(","):
            ob, target, _ = resolve_target(name)
            t0 = time.perf_counter()
            src = source_pose(rig)
            t1 = time.perf_counter()
            motion = retarget(src, None, target, target.skeleton)
            t2 = time.perf_counter()
            locs = {motion.bone_names[i]: motion.locations[:, i]
                    for i in np.flatnonzero(motion.located)}
            write_motion(ob, list(motion.bone_names), motion.rotations, src.frame_index,
                         locations=locs, name="bench")
            t3 = time.perf_counter()
            print(f"{name:8s} {len(motion.bone_names):5d} {t1 - t0:9.2f}s {t2 - t1:7.2f}s "
                  f"{t3 - t2:7.2f}s {t3 - t0:7.2f}s")
        print(f"command: {Path(sys.executable).name} -m bench.retarget_blender "
              f"--frames {args.frames} --targets {args.targets}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
