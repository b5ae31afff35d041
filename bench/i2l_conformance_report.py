"""Print I2L-MeshNet's max |difference| from the official outputs, key by key, and its speed.

    .venv/bin/python -m bench.i2l_conformance_report [--device cpu|cuda]
        [--precision fp32|bf16|fp16] [--no-speed]

Stand-in weights (seed 1, ``weights/i2l_standins.py``) and the conformance
input ``make_images(2, 1)`` against tests/data/i2l_seed1_b2.npz (the official
code's outputs; the 29-joint regressor is the reference's stand-in
``smpl_J_regressor``), with the tolerances of shared/reference/README.md; then
the demo's crops against tests/data/i2l_preprocess_seed1.npz; then the forward
time per crop at batch 1 and 8. Run it on a GPU to record the CUDA figures.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from pose2pose_mocap.estimator.i2l_meshnet import I2LMeshNet
from pose2pose_mocap.estimator.i2l_meshnet.outputs import crop_person, process_bbox
from pose2pose_mocap.weights.i2l_standins import (make_images, make_state_dict,
                                                  official_keys_and_shapes)

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
TOL = {"joint_coord_img": 1e-4, "mesh_coord_img": 1e-4, "joint_img_from_mesh": 1e-4,
       "pose_param": 1e-5, "shape_param": 1e-5}


def _forward(model, img, device, precision):
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    with torch.inference_mode(), torch.autocast(device_type=device.type, dtype=dtype,
                                                enabled=dtype is not None):
        out = model(img.to(device))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    ap.add_argument("--no-speed", action="store_true", help="skip the timing")
    args = ap.parse_args()
    print("command:", shlex.join([sys.executable, "-m", "bench.i2l_conformance_report",
                                  *sys.argv[1:]]))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, device "
          f"{args.device}, precision {args.precision}")
    ref = dict(np.load(DATA / "i2l_seed1_b2.npz"))
    device = torch.device(args.device)
    model = I2LMeshNet()
    sd = make_state_dict(official_keys_and_shapes(), 1)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=True)
    model.set_joint_regressor(ref["smpl_J_regressor"])
    model.to(device).eval()
    out = _forward(model, torch.from_numpy(make_images(2, 1)), device, args.precision)
    print(f"\n{'output':22s} {'max |ours - official|':>22s} {'tolerance':>10s}")
    ok = True
    for key, tol in TOL.items():
        err = float(np.abs(out[key].float().cpu().numpy() - ref[key]).max())
        ok &= err <= tol
        print(f"{key:22s} {err:22.3g} {tol:10.0e}{'' if err <= tol else '  OVER'}")
    pre = dict(np.load(DATA / "i2l_preprocess_seed1.npz"))
    img = pre["image"]
    for i in (0, 1):
        box = process_bbox(pre[f"bbox_xywh_{i}"], img.shape[1], img.shape[0])
        crop = crop_person(img, pre[f"bbox_xywh_{i}"])
        e_box = float(np.abs(box - pre[f"processed_bbox_{i}"]).max())
        e_crop = float(np.abs(crop.crop - pre[f"crop_{i}"]).max())
        ok &= e_box <= 1e-6 and e_crop <= 1e-3
        print(f"{f'box {i} (px)':22s} {e_box:22.3g} {1e-6:10.0e}")
        print(f"{f'crop {i} (0..255)':22s} {e_crop:22.3g} {1e-3:10.0e}")
    print("conformance:", "within tolerance" if ok else "OUT OF TOLERANCE")
    if not args.no_speed:
        print(f"\n{'batch':>6s} {'ms per crop':>12s}")
        for batch in (1, 8):
            x = torch.from_numpy(make_images(batch, 2))
            _forward(model, x, device, args.precision)  # warm-up
            runs, t0 = 3 if args.device == "cpu" else 10, time.perf_counter()
            for _ in range(runs):
                _forward(model, x, device, args.precision)
            ms = (time.perf_counter() - t0) / runs / batch * 1000
            print(f"{batch:6d} {ms:12.1f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
