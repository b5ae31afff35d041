# SPDX-License-Identifier: GPL-3.0-or-later
"""``estimate --engine``: which engine runs Pose2Pose, and the exported graph it runs.

* ``resolve_engine(engine, device, precision)``: ``"auto"`` -> an engine. On the CPU
  it is the fastest *installed* engine that keeps the fp32 outputs within the
  conformance tolerances, by the quiet side-by-side run in docs/speed.md (batch 1,
  ``estimate`` end to end): ONNX Runtime 4.50 frames/s, OpenVINO 3.65, PyTorch 2.76
  (network alone 4.78 / 4.66 / 3.43). ONNX Runtime first, then OpenVINO, then torch.
  With ``--precision bf16``: torch (its heads stay fp32); OpenVINO's bf16 hint also
  converts the heads (hands up to 12 degrees off), so ``auto`` never picks it. fp16
  and CUDA: torch.
* ``cached_graph(network)``: the network exported once (``onnx_export.export_onnx``,
  SMPL-X outside the graph: it stays in PyTorch) into
  ``<user data dir>/engine-cache/pose2pose-<key>.onnx``. The key is the sha256 of
  the exported weights (the checkpoint's numbers, so the same checkpoint file or an
  in-memory network with the same weights finds the same file), ``EXPORT_VERSION``,
  the opset and PyTorch's major.minor. It is not the engine: both engines read
  the same ONNX file, so switching engines costs no second export (~1 min).
  Next to it, ``<key>.json`` records the graph's sha256 and size; a file that does
  not match (truncated, altered, a crashed write) is refused and exported again.

Why running a cached ONNX file is safe: ONNX is a protobuf description of a graph of
standard operators plus weight tensors, parsed by ONNX Runtime / OpenVINO. Nothing
in it is Python (no pickle) and we register no custom-operator libraries, so a
file can describe only standard operators on tensors. The sha256 check is against
accidents (a partial write, disk errors), so a damaged graph is not run blindly;
anyone who can write the user's data folder can also replace the checkpoint.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

from ..errors import EstimatorError

EXPORT_VERSION = 1           # bump when export_onnx's graph changes
CACHE_SUBDIR = "engine-cache"
ENGINE_CHOICES = ("auto", "torch", "onnxruntime", "openvino")
# auto's order on the CPU, fastest first (measured: the module docstring / docs/speed.md)
CPU_ORDER = {"fp32": ("onnxruntime", "openvino", "torch"), "bf16": ("torch",)}
EXTRAS = {"onnxruntime": "onnx", "openvino": "openvino"}


def engine_installed(engine: str) -> bool:
    """Whether ``engine`` and the exporter (onnx, onnxscript) can be imported (not imported)."""
    if engine == "torch":
        return True
    mods = (engine, "onnx", "onnxscript")
    return all(importlib.util.find_spec(m) is not None for m in mods)


def resolve_engine(engine: str, device: str, precision: str) -> str:
    """``engine`` ("auto", "torch", "onnxruntime", "openvino") for a resolved ``device``
    and ``precision`` -> the engine to run; an impossible choice raises EstimatorError
    with one line (which extra to install, or what the engine cannot do)."""
    engine = engine or "torch"
    if engine not in ENGINE_CHOICES:
        raise EstimatorError(f"--engine {engine}: use {', '.join(ENGINE_CHOICES)}")
    on_cpu = str(device) == "cpu"
    if engine == "auto":
        if not on_cpu:
            return "torch"
        return next(e for e in CPU_ORDER.get(precision, ("torch",)) if engine_installed(e))
    if engine == "torch":
        return engine
    if not on_cpu:
        raise EstimatorError(f"--engine {engine} runs on the CPU only; use --engine torch "
                             f"(or auto) with --device {device}")
    if precision not in ("fp32", "bf16") or (engine == "onnxruntime" and precision != "fp32"):
        ok = "fp32" if engine == "onnxruntime" else "fp32 or bf16"
        raise EstimatorError(f"--engine {engine} runs {ok}, not --precision {precision}")
    if not engine_installed(engine):
        raise EstimatorError(f"--engine {engine} is not installed: pip install "
                             f"'pose2pose-mocap[{EXTRAS[engine]}]'")
    return engine


def weights_digest(network) -> str:
    """sha256 over the exported weights (every tensor of the network but the SMPL-X
    layer's, in state-dict order: name, dtype, shape, bytes). ~0.5 s for Pose2Pose."""
    import torch

    h = hashlib.sha256()
    for name, t in network.state_dict().items():
        if name.startswith("smplx_layer."):
            continue
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        if t.numel():
            h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def cache_key(digest: str) -> str:
    import torch

    from .onnx_export import DEFAULT_OPSET

    torch_mm = ".".join(torch.__version__.split("+")[0].split(".")[:2])
    text = f"pose2pose|export {EXPORT_VERSION}|opset {DEFAULT_OPSET}|torch {torch_mm}|{digest}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_cached(onnx_path: Path, key: str) -> str | None:
    """Why the cached graph may not be used (None: it may): its record missing or not
    ours, or the file's size or sha256 not the recorded ones."""
    record = onnx_path.with_suffix(".json")
    if not onnx_path.is_file():
        return "not exported yet"
    try:
        meta = json.loads(record.read_text(encoding="utf-8"))
        size, digest = int(meta["onnx_bytes"]), str(meta["onnx_sha256"])
        if meta.get("key") != key:
            return "its record is for another network"
    except (OSError, ValueError, KeyError, TypeError):
        return "its record is missing or unreadable"
    if onnx_path.stat().st_size != size or _file_sha256(onnx_path) != digest:
        return "the file does not match its sha256"
    return None


def cached_graph(network, folder=None, notes: list | None = None) -> Path:
    """The ONNX graph of ``network`` (a Pose2Pose, fp32) from the cache in ``folder``
    (default ``<user data dir>/engine-cache``), exported and recorded first when it is
    missing or fails ``check_cached``. ``notes`` gets one line when it exports."""
    from ...common.files import atomic_write
    from ...weights.locations import user_data_dir
    from .onnx_export import DEFAULT_OPSET, EngineError, export_onnx

    folder = Path(folder) if folder is not None else user_data_dir() / CACHE_SUBDIR
    key = cache_key(weights_digest(network))
    path = folder / f"pose2pose-{key}.onnx"
    why = check_cached(path, key)
    if why is None:
        return path
    folder.mkdir(parents=True, exist_ok=True)
    record = path.with_suffix(".json")
    if record.exists():  # the record goes first: a crash below leaves no valid pair
        record.unlink()
    try:
        export_onnx(network, path, opset=DEFAULT_OPSET, replace=True)
    except EngineError:
        raise
    except Exception as exc:  # torch.export's own failures: one line, not a traceback
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise EngineError(f"exporting the network for the engine failed ({first}); "
                          "use --engine torch") from None
    meta = {"key": key, "export_version": EXPORT_VERSION, "opset": DEFAULT_OPSET,
            "onnx_bytes": path.stat().st_size, "onnx_sha256": _file_sha256(path)}
    atomic_write(record, lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=1) + "\n",
                                                          encoding="utf-8"), replace=True)
    if notes is not None:
        notes.append(f"exported the network for the engine once ({why}): {path}")
    return path
