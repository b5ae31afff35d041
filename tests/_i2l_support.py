"""Shared helpers for the I2L-MeshNet tests (not collected: no test_ prefix).

The stand-in weights (142 M parameters, ~570 MB) and one forward pass are made
once per test session here (module-level caches) and shared by every I2L test file.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data"
REFERENCE_NPZ = DATA / "i2l_seed1_b2.npz"
PREPROCESS_NPZ = DATA / "i2l_preprocess_seed1.npz"
KEYS_JSON = DATA / "i2l_meshnet_state_dict.json"


@functools.lru_cache(maxsize=1)
def official_keys_and_shapes() -> tuple[tuple[str, tuple[int, ...]], ...]:
    """The 730 (key with ``module.``, shape) pairs of the official checkpoint."""
    return tuple((k, tuple(s)) for k, s in json.loads(KEYS_JSON.read_text()))


@functools.lru_cache(maxsize=1)
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE_NPZ) as z:
        return {k: z[k] for k in z.files}


@functools.lru_cache(maxsize=1)
def standin_tensors(seed: int = 1) -> dict:
    """{key without module.: torch tensor} by the stand-in rule (723 keys; do not modify)."""
    import torch

    from pose2pose_mocap.weights.i2l_standins import make_state_dict

    sd = make_state_dict(list(official_keys_and_shapes()), seed)
    return {k: torch.from_numpy(v) for k, v in sd.items()}


def images(batch: int, seed: int = 1):
    """The conformance input rule (i2l_weights.make_images), as a torch tensor (N,3,256,256)."""
    import torch

    rng = np.random.default_rng([seed, 1_000_000])
    return torch.from_numpy(rng.random((batch, 3, 256, 256), dtype=np.float32))


@functools.lru_cache(maxsize=1)
def standin_model():
    """I2LMeshNet with stand-in seed-1 weights and the reference's joint regressor, eval
    mode, no SMPL layer (shared; do not modify)."""
    from pose2pose_mocap.estimator.i2l_meshnet import I2LMeshNet

    model = I2LMeshNet()
    model.load_state_dict(standin_tensors(1), strict=True)
    model.set_joint_regressor(reference()["smpl_J_regressor"])
    return model.eval()


@functools.lru_cache(maxsize=1)
def standin_outputs_b2() -> dict:
    """Outputs of ``standin_model()`` for ``images(2, 1)`` as numpy arrays."""
    import torch

    with torch.inference_mode():
        out = standin_model()(images(2, 1))
    return {k: v.numpy() for k, v in out.items()}


def smpl_buffers() -> dict:
    """The 7 ``module.human_model_layer.th_*`` entries of an official file, with their
    shapes and dtypes (values: small deterministic numbers, not SMPL data)."""
    import torch

    out = {}
    for k, shape in official_keys_and_shapes():
        if k.startswith("module.human_model_layer."):
            if k.endswith("th_faces"):
                out[k] = torch.arange(int(np.prod(shape)), dtype=torch.int64).reshape(shape) % 6890
            else:
                out[k] = torch.full(shape, 0.01, dtype=torch.float32)
    return out


def save_official_container(path, tensors: dict, *, extra: dict | None = None,
                            smpl: bool = True) -> Path:
    """``{"epoch", "network": {"module." + key: tensor} (+ the 7 SMPL buffers), "optimizer"}``
    in the official key order, written with torch.save."""
    import torch

    network = {}
    buffers = smpl_buffers() if smpl else {}
    for k, _shape in official_keys_and_shapes():
        name = k[len("module."):]
        if name in tensors:
            network[k] = tensors[name]
        elif k in buffers:
            network[k] = buffers[k]
    network.update(extra or {})
    torch.save({"epoch": 7, "network": network,
                "optimizer": {"state": {}, "param_groups": []}}, path)
    return Path(path)
