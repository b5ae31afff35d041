"""Key-writing speed: a 10,000-frame take onto the SMPL-X rig (55 bones + expression keys).

Run from the repo root (any venv with bpy; the Blender 4.2 venv works too):

    python -m bench.bench_keys [--frames 10000] [--naive-frames 300] [--correctives]

Prints the time of the bulk key writing (``keyframe_points.add`` +
``foreach_set``, what ``write_take_actions`` does), the numpy time to compute
the channels, the whole ``write_take_actions`` call, and the ratio against
``keyframe_insert`` per key measured on ``--naive-frames`` frames. Uses the
stand-in SMPL-X model (written to a temporary folder).
"""
from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--naive-frames", type=int, default=300)
    ap.add_argument("--correctives", action="store_true",
                    help="also key the 486 pose-corrective shape keys")
    args = ap.parse_args(argv)

    import bpy

    from pose2pose_mocap.retarget.blender.anim import (_body_curves, _face_curves,
                                                       compute_channels, write_take_actions)
    from pose2pose_mocap.retarget.blender.fcurves import action_channelbag, write_curves
    from pose2pose_mocap.retarget.blender.rig import build_rig
    from pose2pose_mocap.retarget.smplx_model import JOINT_NAMES, load_smplx_model
    from pose2pose_mocap.weights.standins import smplx_standin_arrays, write_npz
    from tests.retarget.synthetic import make_take, random_params

    cmd = [Path(sys.executable).name, "-m", "bench.bench_keys"] + list(argv or sys.argv[1:])
    print(f"command (from the repo root): {shlex.join(cmd)}")
    print(f"Blender {bpy.app.version_string}, numpy {np.__version__}")
    tmp = Path(tempfile.mkdtemp(prefix="p2p_bench_"))
    write_npz(tmp / "smplx" / "SMPLX_NEUTRAL.npz", smplx_standin_arrays("neutral"))
    model = load_smplx_model(tmp / "smplx" / "SMPLX_NEUTRAL.npz")

    bpy.ops.wm.read_factory_settings(use_empty=True)
    t0 = time.perf_counter()
    rig = build_rig(model, np.zeros(10), pose_correctives=args.correctives)
    t_rig = time.perf_counter() - t0

    T = args.frames
    take = make_take(random_params(T, seed=0, max_angle=1.0))
    t0 = time.perf_counter()
    frames, ch = compute_channels(rig, take)
    t_channels = time.perf_counter() - t0

    key = rig.mesh.data.shape_keys
    body_curves, face_curves = _body_curves(ch), _face_curves(ch, key)
    n_keys = (len(body_curves) + len(face_curves)) * T
    t0 = time.perf_counter()
    write_curves(action_channelbag(bpy.data.actions.new("bulk"), rig.armature), frames, body_curves)
    write_curves(action_channelbag(bpy.data.actions.new("bulk face"), key), frames, face_curves)
    t_bulk = time.perf_counter() - t0

    t0 = time.perf_counter()
    write_take_actions(rig, take)
    t_total = time.perf_counter() - t0

    # keyframe_insert, one key at a time, on the first naive-frames frames.
    n = min(args.naive_frames, T)
    arm = rig.armature
    pbs = [arm.pose.bones[name] for name in JOINT_NAMES]
    blocks = [key.key_blocks[c.data_path.split('"')[1]] for c in face_curves]
    t0 = time.perf_counter()
    for t in range(n):
        f = float(frames[t])
        for j, pb in enumerate(pbs):
            pb.rotation_quaternion = ch.quaternions[t, j]
            pb.keyframe_insert("rotation_quaternion", frame=f)
            if ch.located[j]:
                pb.location = ch.locations[t, j]
                pb.keyframe_insert("location", frame=f)
        for c, kb in zip(face_curves, blocks):
            kb.value = float(c.values[t])
            kb.keyframe_insert("value", frame=f)
    t_naive = time.perf_counter() - t0
    naive_per_key = t_naive / ((len(body_curves) + len(face_curves)) * n)
    bulk_per_key = t_bulk / n_keys

    print(f"rig: 55 bones, 10475 vertices, {len(key.key_blocks) - 1} shape keys "
          f"built in {t_rig:.2f} s")
    print(f"take: {T} frames, {len(body_curves)} bone F-curves + {len(face_curves)} shape-key "
          f"F-curves = {n_keys:,} keys")
    print(f"channels (numpy, bone-space quaternions, locations, features): {t_channels:.2f} s")
    print(f"KEY WRITING (bulk, keyframe_points.add + foreach_set): {t_bulk:.2f} s "
          f"({n_keys / t_bulk / 1e6:.2f} M keys/s)")
    print(f"write_take_actions total (channels + keys + raw take + NLA): {t_total:.2f} s")
    print(f"keyframe_insert on {n} frames: {t_naive:.2f} s "
          f"-> {naive_per_key * 1e6:.1f} us/key vs {bulk_per_key * 1e6:.3f} us/key bulk: "
          f"bulk is {naive_per_key / bulk_per_key:.0f}x faster "
          f"(keyframe_insert would take ~{naive_per_key * n_keys:.0f} s for {T} frames)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
