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
from pathlib import Path

import numpy as np

from .locations import I2L_CHECKPOINT_SUBDIR, STANDIN_CHECKPOINT_NAME
from .standin_rule import rule_state_dict, strip_module, write_official_container

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


def make_state_dict(keys_and_shapes, seed: int = STANDIN_SEED) -> dict[str, np.ndarray]:
    """``{key_without_module: array}`` by the stand-in rule (no ``human_model_layer.*``)."""
    out = rule_state_dict(keys_and_shapes, seed, ("pose_net.deconv.", "mesh_net.deconv."),
                          skip_prefix=SMPL_BUFFER_PREFIX)
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
    sd = {strip_module(k): v for k, v in state_dict.items()}
    got = sd.get(_PROBE)
    if got is None:
        return None
    if hasattr(got, "detach"):
        got = got.detach().cpu().numpy()
    got = np.asarray(got)
    i = [strip_module(k) for k, _ in official_keys_and_shapes()].index(_PROBE)
    for seed in range(16):
        want = (0.05 * np.random.default_rng([seed, i]).standard_normal(got.shape))
        if got.shape == want.shape and np.array_equal(got, want.astype(np.float32)):
            return seed
    return None


def write_i2l_checkpoint_standin(root: Path, seed: int = STANDIN_SEED) -> Path:
    """Write ``root/i2l_meshnet/standin.pth.tar`` in the official container (723 keys)."""
    sd = make_state_dict(official_keys_and_shapes(), seed)
    return write_official_container(Path(root) / I2L_CHECKPOINT_SUBDIR / STANDIN_CHECKPOINT_NAME,
                                    sd, epoch=8)


def write_i2l_standins(root: Path) -> list[Path]:
    """Every I2L-MeshNet stand-in (the checkpoint); the SMPL model is ``standins``' part."""
    return [write_i2l_checkpoint_standin(root)]
