# SPDX-License-Identifier: GPL-3.0-or-later
"""How far reduced precision moves the outputs: bf16 (and engines) vs our fp32, per crop.

    python -m bench.bf16_accuracy                       # conformance inputs + wave.mp4 crops
    python -m bench.bf16_accuracy --frames 30 --onnx /tmp/pose2pose.onnx

Inputs: the conformance inputs (``make_images(2, 1)``, the images of
tests/data/network_seed1_b2.npz; the two reference crops of
tests/data/preprocess_seed1.npz) and the crops of the sample clip
(samples/wave.mp4, cut at the boxes of samples/wave.truth.npz). Network: stand-in
weights (seed 1) and stand-in SMPL-X files (the real checkpoint is licensed and
not available here; see docs/speed.md for what that means for the figures).

For each variant against ``fast-fp32`` (which equals the reference within the
conformance tolerances): joint rotations as the geodesic angle between the two
rotations, in degrees (root; 21 body joints; 2 x 15 hand joints; jaw), max and
mean over crops and joints; mesh vertices in the model frame (no camera
translation) and the camera translation, in millimetres (max and mean of the
per-vertex distance). Variants: ``eager-fp32`` (control: BN folding only),
``fast-bf16`` (what ``--precision bf16`` runs on the CPU), ``autocast-bf16`` (the
previous bf16 path), and with ``--onnx`` the engines' outputs.
"""
from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from pose2pose_mocap.estimator import InferenceOptions, run_batch
from pose2pose_mocap.estimator.pose2pose.inference import cpu_runner
from pose2pose_mocap.weights.standin_rule import make_images

from bench._common import standin_pose2pose

ROOT = Path(__file__).resolve().parent.parent
POSE_GROUPS = (("root", "smplx_root_pose"), ("body", "smplx_body_pose"),
               ("hands", ("smplx_lhand_pose", "smplx_rhand_pose")), ("jaw", "smplx_jaw_pose"))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=90, help="crops of wave.mp4 (<= 90)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--onnx", default=None, help="an exported graph: compare the engines too")
    p.add_argument("--smplx", default=None, help="SMPL-X folder (default: stand-ins)")
    return p.parse_args(argv)


def clip_crops(n: int) -> np.ndarray:
    """(n, 512, 384, 3) float32 crops of samples/wave.mp4 at the truth's boxes."""
    import cv2

    from pose2pose_mocap.estimator.crop import crop_person

    truth = np.load(ROOT / "samples" / "wave.truth.npz")
    boxes, index = truth["raw_bbox_xywh"], truth["frame_index"]
    cap = cv2.VideoCapture(str(ROOT / "samples" / "wave.mp4"))
    crops, i = [], 0
    while len(crops) < n:
        ok, bgr = cap.read()
        if not ok:
            break
        if i in set(index.tolist()):
            k = int(np.nonzero(index == i)[0][0])
            pc = crop_person(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), boxes[k], processed=True)
            if pc is not None:
                crops.append(pc.crop)
        i += 1
    cap.release()
    return np.stack(crops)


def rotation_angles_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Axis-angle (..., 3) pairs -> geodesic angle between them in degrees (...)."""
    from scipy.spatial.transform import Rotation as R

    ra, rb = R.from_rotvec(a.reshape(-1, 3)), R.from_rotvec(b.reshape(-1, 3))
    return np.degrees((ra.inv() * rb).magnitude()).reshape(a.shape[:-1])


def compare(ref: dict, out: dict) -> dict:
    row = {}
    for name, keys in POSE_GROUPS:
        keys = (keys,) if isinstance(keys, str) else keys
        ang = np.concatenate([rotation_angles_deg(ref[k].reshape(len(ref[k]), -1, 3),
                                                  out[k].reshape(len(out[k]), -1, 3)).ravel()
                              for k in keys])
        row[name] = (ang.max(), ang.mean())
    cam_r, cam_o = ref["cam_trans"], out["cam_trans"]
    v = np.linalg.norm((ref["smplx_mesh_cam"] - cam_r[:, None]) -
                       (out["smplx_mesh_cam"] - cam_o[:, None]), axis=-1) * 1000
    row["mesh mm"] = (v.max(), v.mean())
    t = np.linalg.norm(cam_r - cam_o, axis=-1) * 1000
    row["cam mm"] = (t.max(), t.mean())
    return row


def run_all(fn, images: torch.Tensor, batch: int) -> dict:
    parts = [fn(images[i:i + batch]) for i in range(0, len(images), batch)]
    return {k: np.concatenate([p[k].numpy() for p in parts]) for k in parts[0]}


def main(argv=None) -> int:
    args = parse_args(argv)
    print("command:", shlex.join([sys.executable, "-m", "bench.bf16_accuracy", *sys.argv[1:]]))
    tmp = Path(tempfile.mkdtemp(prefix="p2p-bf16-accuracy-"))
    try:
        smplx_dir = args.smplx
        if smplx_dir is None:
            from pose2pose_mocap.weights.standins import write_standins

            write_standins(tmp / "standins")
            smplx_dir = str(tmp / "standins" / "smplx")
        model = standin_pose2pose(smplx_dir)
        pre = np.load(ROOT / "tests" / "data" / "preprocess_seed1.npz")
        sets = {
            "conformance images (2)": torch.from_numpy(make_images(2, 1)),
            "conformance crops (2)": torch.from_numpy(
                np.stack([pre["crop_0"], pre["crop_1"]]).astype(np.float32) / 255.0
            ).permute(0, 3, 1, 2).contiguous(),
        }
        if args.frames > 0:
            crops = clip_crops(args.frames)
            sets[f"wave.mp4 crops ({len(crops)})"] = (
                torch.from_numpy(crops / 255.0).float().permute(0, 3, 1, 2).contiguous())
        variants = {}
        f32 = InferenceOptions(precision="fp32")
        fast32 = cpu_runner(model, f32)
        variants["fast-fp32"] = lambda x: run_batch(fast32, x, f32)
        variants["eager-fp32"] = lambda x: run_batch(model, x, InferenceOptions(
            precision="fp32", channels_last=False))
        b16 = InferenceOptions(precision="bf16")
        fast16 = cpu_runner(model, b16)
        variants["fast-bf16"] = lambda x: run_batch(fast16, x, b16)
        variants["autocast-bf16"] = lambda x: run_batch(model, x, InferenceOptions(
            precision="bf16", channels_last=False))
        if args.onnx:
            from pose2pose_mocap.estimator.pose2pose.onnx_export import EngineRunner

            for eng, prec in (("onnxruntime", "fp32"), ("openvino", "fp32"),
                              ("openvino", "bf16")):
                name = ("ort" if eng == "onnxruntime" else eng) + "-" + prec
                variants[name] = EngineRunner(args.onnx, model, eng, prec)
        cols = [g for g, _ in POSE_GROUPS] + ["mesh mm", "cam mm"]
        print("max / mean difference from fast-fp32 (rotations in degrees; mesh in the model "
              "frame and camera translation in mm)")
        for set_name, images in sets.items():
            ref = run_all(variants["fast-fp32"], images, args.batch)
            print(f"\n{set_name}")
            print(f"{'variant':>14} " + " ".join(f"{c:>15}" for c in cols))
            for name, fn in variants.items():
                if name == "fast-fp32":
                    continue
                row = compare(ref, run_all(fn, images, args.batch))
                print(f"{name:>14} " + " ".join(
                    f"{f'{row[c][0]:.3g} / {row[c][1]:.2g}':>15}" for c in cols), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
