# SPDX-License-Identifier: GPL-3.0-or-later
"""GVHMR results (``hmr4d_results.pt``): SMPL-X body parameters in the camera frame
(``smpl_params_incam``) and in a gravity-aligned world (``smpl_params_global``), with
the camera intrinsics ``K_fullimg``. Loaded ONLY with ``torch.load(weights_only=True)``
(a dict of tensors loads so; anything that would need unpickling code is refused).
See docs/importers.md."""
from __future__ import annotations

from pathlib import Path

import numpy as np

NAME = "gvhmr"
ESTIMATOR = "gvhmr"
EXPECTED = ("a GVHMR hmr4d_results.pt (dict with smpl_params_incam / smpl_params_global: "
            "global_orient (L,3), body_pose (L,63), betas (L,10), transl (L,3); K_fullimg)")
PARAMS = {"global_orient": 3, "body_pose": 63, "betas": 10, "transl": 3}
MAX_FILE_BYTES = 4 << 30
GVHMR_FPS = 30.0   # the demo re-encodes every video at 30 fps before estimating


def detect(path: Path) -> bool:
    path = Path(path)
    return path.is_file() and path.suffix.lower() in (".pt", ".pth")


def _load(path: Path) -> dict:
    from ._common import ImportFormatError

    if path.stat().st_size > MAX_FILE_BYTES:
        raise ImportFormatError(f"{path.name}: larger than {MAX_FILE_BYTES >> 30} GiB; not "
                                "a GVHMR result")
    try:
        import torch
    except ImportError:
        raise ImportFormatError(f"{path.name}: reading GVHMR .pt files needs PyTorch "
                                "(pip install torch)") from None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling refusal or corrupt file
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise ImportFormatError(f"{path.name}: not a plain dict of tensors that loads "
                                f"safely (weights_only): {first}; expected {EXPECTED}") from None
    return data


def _array(d, key, cols, L, where, path):
    import torch

    from ._common import ImportFormatError

    v = d.get(key) if isinstance(d, dict) else None
    if not isinstance(v, torch.Tensor):
        raise ImportFormatError(f"{path.name}: {where}['{key}'] missing or not a tensor "
                                f"(expected {EXPECTED})")
    a = v.detach().to(torch.float64).cpu().numpy()
    if a.ndim != 2 or a.shape[1] != cols or (L is not None and a.shape[0] != L):
        raise ImportFormatError(f"{path.name}: {where}['{key}'] has shape {tuple(a.shape)}, "
                                f"expected ({'L' if L is None else L}, {cols})")
    return a


def read(path: Path, body=None, person: int = 0):
    import torch

    from ._common import ImportFormatError
    from ._common import finish_take

    path = Path(path)
    data = _load(path)
    if not isinstance(data, dict) or "smpl_params_incam" not in data:
        raise ImportFormatError(f"{path.name}: no smpl_params_incam; expected {EXPECTED}")
    inc = data["smpl_params_incam"]
    go = _array(inc, "global_orient", 3, None, "smpl_params_incam", path)
    L = go.shape[0]
    p = {k: _array(inc, k, c, L, "smpl_params_incam", path) for k, c in PARAMS.items()}
    notes = ["GVHMR result: the camera-frame parameters (smpl_params_incam) are used; the "
             "world-frame root is kept as raw_world_global_orient / raw_world_transl",
             "GVHMR estimates no hands and no face: hands are at its body model's rest "
             "(the mean hand), jaw, eyes and expression neutral",
             f"GVHMR's demo works at {GVHMR_FPS:g} fps: {GVHMR_FPS:g} fps used"]
    if body is not None:
        p["left_hand_pose"] = np.repeat(np.asarray(body.hands_mean[0]).reshape(1, 45), L, 0)
        p["right_hand_pose"] = np.repeat(np.asarray(body.hands_mean[1]).reshape(1, 45), L, 0)
    else:
        notes[1] += " (no SMPL-X model given: flat hands used instead)"
    raw = {}
    glob = data.get("smpl_params_global")
    if isinstance(glob, dict):
        raw["world_global_orient"] = _array(glob, "global_orient", 3, L,
                                            "smpl_params_global", path)
        raw["world_transl"] = _array(glob, "transl", 3, L, "smpl_params_global", path)
    K = data.get("K_fullimg")
    camera = None
    if isinstance(K, torch.Tensor):
        k = K.detach().to(torch.float64).cpu().numpy()
        if k.shape == (3, 3):
            k = k[None]
        if k.ndim != 3 or k.shape[1:] != (3, 3) or k.shape[0] not in (1, L):
            raise ImportFormatError(f"{path.name}: K_fullimg has shape {tuple(k.shape)}, "
                                    "expected (L, 3, 3) or (3, 3)")
        if not np.allclose(k, k[:1]):
            notes.append("K_fullimg changes over the frames: the first frame's is used")
        k0 = k[0]
        focal = np.array([k0[0, 0], k0[1, 1]])
        princpt = np.array([k0[0, 2], k0[1, 2]])
        # GVHMR puts the principal point at (W/2, H/2) (estimate_K).
        size = np.maximum(1, np.round(2 * princpt)).astype(np.int64)
        camera = (size, focal, princpt)
    else:
        notes.append("no K_fullimg: a default camera is used")
    return finish_take(path, p, fps=GVHMR_FPS, estimator=ESTIMATOR, notes=notes,
                       model="GVHMR result (hands and face not estimated)", camera=camera,
                       raw=raw)
