# SPDX-License-Identifier: GPL-3.0-or-later
"""Time of a live clean-up re-solve in Blender (what changing a Clean-Up setting costs).

Builds an SMPL-X rig (stand-in model files, no pose correctives) keyed with a noisy walk
of N seconds (``bench.motion_truth``, with its injected faults), then times, per run:
the clean-up itself (``cleanup.clean.clean_take``: QA, fixes, smoothing, contacts, foot
locking, remaining flags), writing the cleaned keys back onto the take's action
(``anim.resmooth_take``, which also reads the stored raw take) and the QA markers
(``markers.replace_flag_markers``); the second of two runs is timed. The same path as
the add-on's local re-solve (``addon.cleaning.clean_take_keys``), without its flag list.

Run: ``.venv/bin/python -m bench.clean_blender [--seconds 10,60]``
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", default="10,60", help="take lengths in seconds (30 fps)")
    args = ap.parse_args(argv)

    import bpy

    from bench.motion_truth import add_noise, make_truth
    from pose2pose_mocap.retarget.blender.anim import resmooth_take
    from pose2pose_mocap.retarget.blender.build import build_take_scene
    from pose2pose_mocap.retarget.blender.markers import replace_flag_markers
    from pose2pose_mocap.retarget.blender.output import empty_session
    from pose2pose_mocap.retarget.cleanup.clean import CleanOptions, clean_take
    from pose2pose_mocap.retarget.resolve import flag_rows
    from pose2pose_mocap.retarget.smoothing import Smoothing
    from pose2pose_mocap.retarget.smplx_model import load_smplx_model
    from pose2pose_mocap.weights.standins import smplx_standin_arrays, write_npz

    folder = Path(tempfile.mkdtemp(prefix="p2p_bench_clean_"))
    try:
        path = folder / "SMPLX_NEUTRAL.npz"
        write_npz(path, smplx_standin_arrays("neutral"))
        model = load_smplx_model(path)
        smoothing, options = Smoothing(), CleanOptions()
        print(f"Blender {bpy.app.version_string}; stand-in SMPL-X; smoothing "
              f"{smoothing.method}, CleanOptions() defaults")
        print(f"{'frames':>7s} {'clean_take':>10s} {'keys':>8s} {'markers':>8s} "
              f"{'total':>8s} {'flags':>5s}")
        for seconds in (float(s) for s in args.seconds.split(",")):
            empty_session()
            take = add_noise(make_truth("walk", model, seconds=seconds), seed=1).take
            built = build_take_scene(model, take, pose_correctives=False, camera=False)
            arm, action = built.rig.armature, built.actions.body
            timing: dict = {}

            def cleaner(raw, _smoothing):
                t = time.perf_counter()
                res = clean_take(raw, model, smoothing, options)
                timing["clean"] = time.perf_counter() - t
                timing["flags"] = flag_rows(res.take, res.flags)
                return res.take

            for _ in range(2):   # the second run is timed (the first warms caches up)
                t0 = time.perf_counter()
                resmooth_take(arm, smoothing, action, smoother=cleaner)
                t1 = time.perf_counter()
            replace_flag_markers(bpy.context.scene, "bench",
                                 [(f["kind"], f["frame"]) for f in timing["flags"]])
            t2 = time.perf_counter()
            print(f"{take.num_frames:7d} {timing['clean']:9.2f}s "
                  f"{t1 - t0 - timing['clean']:7.2f}s {t2 - t1:7.3f}s {t2 - t0:7.2f}s "
                  f"{len(timing['flags']):5d}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"command: .venv/bin/python -m bench.clean_blender --seconds {args.seconds}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
