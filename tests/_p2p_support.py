"""Shared helpers for the estimator tests (not collected: no test_ prefix).

Building the stand-in weights takes a few seconds, so they are made once per
test session here (module-level caches) and shared by every test file.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data"
REFERENCE_NPZ = DATA / "network_seed1_b2.npz"
PREPROCESS_NPZ = DATA / "preprocess_seed1.npz"
KEYS_JSON = DATA / "pose2pose_state_dict.json"


@functools.lru_cache(maxsize=1)
def official_keys_and_shapes() -> tuple[tuple[str, tuple[int, ...]], ...]:
    """The 834 (key with ``module.``, shape) pairs of the official checkpoint."""
    return tuple((k, tuple(s)) for k, s in json.loads(KEYS_JSON.read_text()))


@functools.lru_cache(maxsize=2)
def standin_arrays(seed: int) -> dict[str, np.ndarray]:
    from pose2pose_mocap.weights.standin_rule import make_state_dict

    return make_state_dict(list(official_keys_and_shapes()), seed)


@functools.lru_cache(maxsize=2)
def standin_tensors(seed: int) -> dict:
    """{key without module.: torch tensor} of the stand-in rule (shared; do not modify)."""
    import torch

    return {k: torch.from_numpy(v) for k, v in standin_arrays(seed).items()}


@functools.lru_cache(maxsize=1)
def standin_model(seed: int = 1):
    """Pose2Pose (no SMPL-X) with stand-in weights, eval mode (shared; do not modify)."""
    from pose2pose_mocap.estimator import Pose2Pose

    model = Pose2Pose()
    model.load_state_dict(standin_tensors(seed), strict=True)
    return model.eval()


@functools.lru_cache(maxsize=1)
def standin_outputs_b2() -> dict:
    """Outputs of ``standin_model(1)`` for ``images(2, 1)`` (shared; do not modify)."""
    from pose2pose_mocap.estimator import run_batch

    return run_batch(standin_model(1), images(2, 1))


def images(batch: int, seed: int = 1):
    """The conformance input rule, as a torch tensor (N, 3, 512, 384)."""
    import torch

    from pose2pose_mocap.weights.standin_rule import make_images

    return torch.from_numpy(make_images(batch, seed))


def save_official_container(path: Path, state: dict, *, extra: dict | None = None) -> Path:
    """Write ``state`` the way the official train.py does: module. prefix, epoch, optimizer."""
    import torch

    network = {"module." + k: v for k, v in state.items()}
    network.update(extra or {})
    optimizer = {"state": {}, "param_groups": []}
    torch.save({"epoch": 6, "network": network, "optimizer": optimizer}, path)
    return path


class RunsCode:
    """Unpickling this would call os.system (creating a marker file)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def write_code_running_pickle(path: Path, payload: dict, writer: str) -> Path:
    """Write payload (holding a ``RunsCode``) with ``torch.save`` or ``pickle.dump``."""
    import pickle

    import torch

    if writer == "torch.save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as fh:
            pickle.dump(payload, fh)
    return path


def independent_standin_rule(names_shapes, seed: int, wanted, is_deconv) -> dict[str, np.ndarray]:
    """The networks' common stand-in formulas re-written from the reference scripts'
    docstrings (p2p_weights.py, i2l_weights.py; not the product copy), for the keys in
    ``wanted``; float32 (int64 for ``num_batches_tracked``), before each network's
    pinned or scaled tensors. ``is_deconv(name)``: a transposed convolution."""
    names = [n.removeprefix("module.") for n, _ in names_shapes]
    bn_modules = {n.rsplit(".", 1)[0] for n in names if n.endswith(".running_mean")}
    out = {}
    for i, (name, (_, shape)) in enumerate(zip(names, names_shapes)):
        if name not in wanted:
            continue
        rng = np.random.default_rng([seed, i])
        module, leaf = name.rsplit(".", 1)
        if leaf == "num_batches_tracked":
            out[name] = np.zeros(shape, np.int64)
            continue
        if leaf == "running_var":
            v = 0.75 + 0.5 * rng.random(shape)
        elif leaf == "running_mean":
            v = 0.05 * rng.standard_normal(shape)
        elif module in bn_modules:
            v = rng.standard_normal(shape)
            v = 1 + 0.1 * v if leaf == "weight" else 0.05 * v
        elif len(shape) >= 2:
            fan = (shape[0] * shape[2] * shape[3] / 4 if is_deconv(name)
                   else np.prod(shape[1:]))
            v = rng.standard_normal(shape) * np.sqrt(1.0 / fan)
        else:
            v = 0.05 * rng.standard_normal(shape)
        out[name] = v.astype(np.float32)
    return out
