# SPDX-License-Identifier: GPL-3.0-or-later
"""Deterministic stand-in weights for the Pose2Pose network (numpy only).

The rule is the one of ``shared/reference/conformance/p2p_weights.py``: the
reference outputs the conformance tests compare against were made with it, so
it must stay bit-identical. Per key i (list order, ``module.`` removed):
``rng = default_rng([seed, i])``; BN running stats, BN affine, >=2-D
tensors (He-like scaling by fan-in) and other 1-D tensors each get their own
formula; the three part-size biases are pinned so boxes have positive sizes.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

KEYS_JSON = Path(__file__).with_name("pose2pose_keys.json")
STANDIN_SEED = 1
# Values the rule pins; a real checkpoint has no reason to hold them exactly.
_PINNED_BIAS = np.array([1.2, 1.0], dtype=np.float32)


def official_keys_and_shapes() -> list[tuple[str, tuple[int, ...]]]:
    """The 834 ``(key, shape)`` pairs of the official checkpoint, with ``module.``."""
    return [(k, tuple(s)) for k, s in json.loads(KEYS_JSON.read_text())]


def strip_module(name: str) -> str:
    return name[len("module."):] if name.startswith("module.") else name


def rule_state_dict(keys_and_shapes, seed: int, deconv_prefixes: tuple[str, ...],
                    skip_prefix: str | None = None) -> dict[str, np.ndarray]:
    """``{key_without_module: array}`` by the per-key formulas shared by the networks'
    stand-ins (before each network's pinned or scaled tensors). Key i of the list
    (also a skipped one) draws from ``default_rng([seed, i])``; transposed convolutions
    (names starting with ``deconv_prefixes``) take their fan-in over the 2x2 upsampling;
    names starting with ``skip_prefix`` are left out."""
    names = [strip_module(k) for k, _ in keys_and_shapes]
    has_running = {n.rsplit(".", 1)[0] for n in names if n.endswith("running_mean")}
    out: dict[str, np.ndarray] = {}
    for i, (name, (_, shape)) in enumerate(zip(names, keys_and_shapes)):
        if skip_prefix is not None and name.startswith(skip_prefix):
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
            if name.startswith(deconv_prefixes):
                fan = shape[0] * shape[2] * shape[3] / 4
            else:
                fan = float(np.prod(shape[1:]))
            v = rng.standard_normal(shape) * np.sqrt(1.0 / fan)
        else:
            v = 0.05 * rng.standard_normal(shape)
        out[name] = v.astype(np.float32)
    return out


def make_state_dict(keys_and_shapes, seed: int = STANDIN_SEED) -> dict[str, np.ndarray]:
    """Return ``{key_without_module: array}`` following the stand-in rule."""
    out = rule_state_dict(keys_and_shapes, seed, ("box_net.deconv.",))
    for part in ("lhand", "rhand", "face"):
        out[f"box_net.{part}_size.2.bias"] = _PINNED_BIAS.copy()
        w = out[f"box_net.{part}_size.2.weight"]
        out[f"box_net.{part}_size.2.weight"] = (w * 0.05).astype(np.float32)
    return out


def write_official_container(path: Path, sd: dict[str, np.ndarray], epoch: int) -> Path:
    """Write sd as the official training container ``{"epoch", "network": {"module.*"},
    "optimizer"}`` with ``torch.save`` to path (atomically, replacing it, mode 0644)."""
    import os

    import torch

    from ..common.files import atomic_write

    network = {"module." + k: torch.from_numpy(v) for k, v in sd.items()}
    ckpt = {"epoch": epoch, "network": network, "optimizer": {"state": {}, "param_groups": []}}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with open(tmp, "xb") as fh:
            torch.save(ckpt, fh)
        os.chmod(tmp, 0o644)

    return atomic_write(path, write, replace=True)


def make_images(batch: int, seed: int) -> np.ndarray:
    """Input crops for conformance runs: float32 RGB in [0,1], (batch, 3, 512, 384)."""
    rng = np.random.default_rng([seed, 1_000_000])
    return rng.random((batch, 3, 512, 384), dtype=np.float32)


def standin_seed_of(state_dict) -> int | None:
    """The seed whose stand-in this state dict is, or None if it is not a stand-in.

    Checks the pinned biases, then regenerates one small tensor by the rule and
    compares it bit for bit. Accepts numpy arrays or torch tensors, keys with or
    without ``module.``.
    """
    sd = {strip_module(k): v for k, v in state_dict.items()}
    bias = sd.get("box_net.face_size.2.bias")
    if bias is None or not np.array_equal(_as_numpy(bias), _PINNED_BIAS):
        return None
    names = [strip_module(k) for k, _ in official_keys_and_shapes()]
    probe = "body_rotation_net.cam_out.0.bias"
    if probe not in sd:
        return None
    i = names.index(probe)
    got = _as_numpy(sd[probe])
    for seed in range(0, 16):
        rng = np.random.default_rng([seed, i])
        want = (0.05 * rng.standard_normal(got.shape)).astype(np.float32)
        if np.array_equal(got, want):
            return seed
    return None


def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)
