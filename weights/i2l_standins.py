# SPDX-License-Identifier: GPL-3.0-or-later
"""Stand-in files for I2L-MeshNet (numpy only; torch only inside ``write_i2l_checkpoint_standin``).

The network's only own file is its checkpoint; the SMPL data it needs (the
24-row joint regressor and the SMPL layer) comes from the SMPL model file
(``smpl/SMPL_NEUTRAL.npz``, written by ``standins``). So the one stand-in here
is ``i2l_meshnet/standin.pth.tar``: the official container
``{"epoch", "network": {"module.*": tensor}, "optimizer"}`` with the 723
network keys of ``i2l_meshnet_keys.json`` (the official key list; the 7
``human_model_layer.th_*`` SMPL buffers of the official file are left out:
they are SMPL model data, which we never write), values by the rule of
``shared/reference/conformance/i2l_weights.py``:

per key i (list order, ``module.`` removed, i counts the skipped SMPL keys
too): ``rng = default_rng([seed, i])``; ``num_batches_tracked`` -> int64 0;
``running_var`` -> 0.75 + 0.5 U; ``running_mean`` -> 0.05 N; BatchNorm
weight/bias -> 1 + 0.1 N / 0.05 N; other >= 2-D tensors N * sqrt(1/fan)
(fan = prod(shape[1:]); the deconvolutions' [in, out, k, k]: in*k*k/4);
other 1-D 0.05 N; then conv_x/conv_y weights x20, conv_z_2 weights x3 and
fc_shape's weight x0.1 (float32 products). The conformance outputs were made
with this rule, so it must stay bit-identical.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..common.files import atomic_write
from .locations import I2L_CHECKPOINT_SUBDIR, STANDIN_CHECKPOINT_NAME

KEYS_JSON = Path(__file__).with_name("i2l_meshnet_keys.json")
STANDIN_SEED = 1
SMPL_BUFFER_PREFIX = "human_model_layer."
_SCALED = {"param_regressor.fc_shape.0.weight": 0.1,
           **{f"{br}.{c}.0.weight": f for br in ("pose_net", "mesh_net")
              for c, f in (("conv_x", 20.0), ("conv_y", 20.0), ("conv_z_2", 3.0))}}
# A small tensor whose value identifies a stand-in and its seed.
_PROBE = "param_regressor.fc_shape.0.bias"


def official_keys_and_shapes() -> list[tuple[str, tuple[int, ...]]]:
    """The 730 ``(key, shape)`` pairs of the official checkpoint, with ``module.``."""
    return [(k, tuple(s)) for k, s in json.loads(KEYS_JSON.read_text())]


def _strip(name: str) -> str:
    return name[len("module."):] if name.startswith("module.") else name


def make_state_dict(keys_and_shapes, seed: int = STANDIN_SEED) -> dict[str, np.ndarray]:
    """``{key_without_module: array}`` by the stand-in rule (no ``human_model_layer.*``)."""
    names = [_strip(k) for k, _ in keys_and_shapes]
    has_running = {n.rsplit(".", 1)[0] for n in names if n.endswith("running_mean")}
    out: dict[str, np.ndarray] = {}
    for i, (name, (_, shape)) in enumerate(zip(names, keys_and_shapes)):
        if name.startswith(SMPL_BUFFER_PREFIX):
            continue
        shape = tuple(shape)
        rng = np.random.default_rng([seed, i])
        module, leaf = name.rsplit(".", 1)
        if leaf == "num_batches_tracked":
            out[name] = np.zeros(shape, dtype=np.int64)
            continue
        if leaf == "running_var":
            v = 0.75 + 0.5 * rng.random(shape)
        elif leaf == "running_mean":
            v = 0.05 * rng.standard_normal(shape)
        elif module in has_running and leaf in ("weight", "bias"):
            n = rng.standard_normal(shape)
            v = 1 + 0.1 * n if leaf == "weight" else 0.05 * n
        elif len(shape) >= 2:
            if name.startswith(("pose_net.deconv.", "mesh_net.deconv.")):
                fan = shape[0] * shape[2] * shape[3] / 4
            else:
                fan = float(np.prod(shape[1:]))
            v = rng.standard_normal(shape) * np.sqrt(1.0 / fan)
        else:
            v = 0.05 * rng.standard_normal(shape)
        out[name] = v.astype(np.float32)
    for key, factor in _SCALED.items():
        if key in out:
            out[key] = (out[key] * np.float32(factor)).astype(np.float32)
    return out


def make_images(batch: int, seed: int) -> np.ndarray:
    """Input crops for conformance runs: float32 RGB in [0, 1], (batch, 3, 256, 256)."""
    rng = np.random.default_rng([seed, 1_000_000])
    return rng.random((batch, 3, 256, 256), dtype=np.float32)


def standin_seed_of(state_dict) -> int | None:
    """The seed whose stand-in this state dict is (0..15), or None.

    Regenerates one small tensor by the rule and compares it bit for bit; keys
    with or without ``module.``, numpy arrays or torch tensors.
    """
    sd = {_strip(k): v for k, v in state_dict.items()}
    got = sd.get(_PROBE)
    if got is None:
        return None
    if hasattr(got, "detach"):
        got = got.detach().cpu().numpy()
    got = np.asarray(got)
    i = [_strip(k) for k, _ in official_keys_and_shapes()].index(_PROBE)
    for seed in range(16):
        want = (0.05 * np.random.default_rng([seed, i]).standard_normal(got.shape))
        if got.shape == want.shape and np.array_equal(got, want.astype(np.float32)):
            return seed
    return None


def write_i2l_checkpoint_standin(root: Path, seed: int = STANDIN_SEED) -> Path:
    """Write ``root/i2l_meshnet/standin.pth.tar`` in the official container (723 keys)."""
    import torch

    keys = official_keys_and_shapes()
    sd = make_state_dict(keys, seed)
    network = {"module." + k: torch.from_numpy(v) for k, v in sd.items()}
    ckpt = {"epoch": 8, "network": network, "optimizer": {"state": {}, "param_groups": []}}
    path = Path(root) / I2L_CHECKPOINT_SUBDIR / STANDIN_CHECKPOINT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with open(tmp, "xb") as fh:
            torch.save(ckpt, fh)
        os.chmod(tmp, 0o644)

    return atomic_write(path, write, replace=True)


def write_i2l_standins(root: Path) -> list[Path]:
    """Every I2L-MeshNet stand-in (the checkpoint); the SMPL model is ``standins``' part."""
    return [write_i2l_checkpoint_standin(root)]
