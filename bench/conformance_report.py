"""Print the network's max |difference| from the official outputs, key by key.

    python bench/conformance_report.py [--device cpu|cuda] [--precision fp32|bf16|fp16]

Stand-in weights (seed 1) and the conformance input (batch 2) against
tests/data/network_seed1_b2.npz, once free-running and once with the
reference's own hand/face boxes fed in. Run it on a GPU to record the CUDA
figures.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

from pose2pose_mocap.estimator import InferenceOptions, run_batch
from pose2pose_mocap.weights.standin_rule import make_images

from bench._common import standin_pose2pose

REFERENCE = Path(__file__).resolve().parent.parent / "tests" / "data" / "network_seed1_b2.npz"
BOXES = ("lhand_bbox", "rhand_bbox", "face_bbox")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    args = ap.parse_args()
    print("command:", shlex.join([sys.executable, *sys.argv]))
    ref = dict(np.load(REFERENCE))
    opts = InferenceOptions(device=args.device, precision=args.precision)
    model = standin_pose2pose(None, opts)
    img = torch.from_numpy(make_images(2, 1))
    free = run_batch(model, img, opts)
    pinned = run_batch(model, img, opts, boxes={k: torch.from_numpy(ref[k]) for k in BOXES})
    print(f"{'key':18s} {'free-running':>14s} {'reference boxes':>16s}")
    for key in ref:
        a = np.abs(np.asarray(free[key]) - ref[key]).max()
        b = np.abs(np.asarray(pinned[key]) - ref[key]).max()
        print(f"{key:18s} {a:14.3g} {b:16.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
