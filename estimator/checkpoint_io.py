# SPDX-License-Identifier: GPL-3.0-or-later
"""Checkpoint reading shared by the networks (``pose2pose.checkpoint``, ``i2l_meshnet.checkpoint``).

Safe reading (``torch.load(weights_only=True)`` only: a pickle that refers to
anything but tensors is refused, never run; ``.safetensors``), the official
container and ``module.`` prefix, the strict key/shape report, the atomic
``.safetensors`` copy, sha256 and the parts of ``identify_checkpoint`` that do
not depend on the network. Each network module supplies its expected shapes,
hints and wording.
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import pickletools
import struct
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .errors import CheckpointError

_CONTAINER_KEYS = ("network", "state_dict", "model")
SHOW = 5  # names listed per kind of mismatch


@dataclass
class CheckpointInfo:
    """What ``identify_checkpoint`` found out about a file."""

    path: Path
    kind: str  # "official", "stand-in" or "unknown"
    sha256: str
    num_keys: int
    description: str
    standin_seed: int | None = None
    notes: list[str] = field(default_factory=list)
    # True only when the network can load the file (strict: every key and shape fits).
    loadable: bool = False


# --------------------------------------------------------------------------- reading

def _file_format(path: Path) -> str:
    """'zip', 'legacy', 'safetensors', or raise CheckpointError for anything else."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(16)
    except FileNotFoundError:
        raise CheckpointError(f"Checkpoint file {path} does not exist.") from None
    except OSError as exc:
        raise CheckpointError(
            f"Cannot read checkpoint file {path}: {exc.strerror or exc}.") from None
    if size == 0:
        raise CheckpointError(f"Checkpoint file {path} is empty (0 bytes); download it again.")
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if len(head) >= 9:
        (n,) = struct.unpack("<Q", head[:8])
        if head[8:9] == b"{" and n <= size - 8:
            return "safetensors"
        if head[8:9] == b"{":
            raise CheckpointError(
                f"{path} is a truncated .safetensors file; download or convert it again.")
    if head[:1] == b"\x80":  # pickle protocol marker: the legacy torch.save format
        return "legacy"
    raise CheckpointError(
        f"{path} is not a checkpoint: it is neither a PyTorch file nor a .safetensors file.")


def _pickle_globals(stream) -> list[str]:
    """Dotted names a pickle would import, read with pickletools (executes nothing).

    Best effort, for error messages only; the security decision is torch's.
    """
    found, strings = [], []
    try:
        for _ in range(8):  # the legacy format is several pickles in a row
            for op, arg, _pos in pickletools.genops(stream):
                if isinstance(arg, str) and "UNICODE" in op.name or op.name.endswith("STRING"):
                    strings.append(str(arg))
                elif op.name in ("GLOBAL", "INST"):
                    found.append(str(arg).replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(f"{strings[-2]}.{strings[-1]}")
    except Exception:  # noqa: BLE001 - end of data or non-pickle bytes
        pass
    return found


def _foreign_globals(path: Path, fmt: str) -> list[str]:
    try:
        if fmt == "zip":
            with zipfile.ZipFile(path) as z:
                name = next((n for n in z.namelist() if n.endswith("data.pkl")), None)
                if name is None:
                    return []
                data = z.read(name)
        else:
            data = path.read_bytes()
    except (OSError, zipfile.BadZipFile, RuntimeError):
        return []
    names = _pickle_globals(io.BytesIO(data))
    return sorted({g for g in names if not g.startswith(("torch.", "collections.OrderedDict"))})


def _read_torch(path: Path, fmt: str, mmap: bool):
    if fmt == "zip":
        try:
            with zipfile.ZipFile(path) as z:
                if not any(n.endswith("data.pkl") for n in z.namelist()):
                    raise CheckpointError(f"{path} is a zip archive but not a PyTorch "
                                          "checkpoint (no data.pkl inside).")
        except zipfile.BadZipFile:
            raise CheckpointError(
                f"{path} is truncated or damaged (its zip directory is unreadable); "
                "download it again.") from None
    try:
        with warnings.catch_warnings():
            # torch warns about pickle protocols it did not write; the refusal says enough.
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True,
                              mmap=mmap and fmt == "zip")
    except pickle.UnpicklingError as exc:
        foreign = _foreign_globals(path, fmt)
        if foreign or "GLOBAL" in str(exc):
            what = ", ".join(foreign[:SHOW]) if foreign else _torch_reason(exc)
            raise CheckpointError(
                f"Refusing to load {path}: it is a pickle that refers to Python objects other "
                f"than tensors ({what}); unpickling it could run arbitrary code, so it was "
                "not unpickled. Only plain tensor checkpoints (like the official "
                "snapshot_6.pth.tar) or .safetensors files are accepted.") from None
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint ({_torch_reason(exc)}).") from None
    except Exception as exc:  # noqa: BLE001 - any other failure means an unreadable file
        text = str(exc)
        if (isinstance(exc, (EOFError, struct.error)) or "central directory" in text
                or "truncat" in text.lower()):
            raise CheckpointError(
                f"{path} is truncated or damaged (PyTorch could not read it to the end); "
                "download it again.") from None
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint ({_torch_reason(exc)}).") from None


def _torch_reason(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in lines:
        if "GLOBAL" in ln or "Unsupported" in ln or "failed" in ln.lower():
            return ln
    return (lines[0] if lines else type(exc).__name__)[:200]


def _read_safetensors(path: Path) -> tuple[dict, dict]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            return {k: f.get_tensor(k) for k in f.keys()}, meta
    except SafetensorError as exc:
        raise CheckpointError(
            f"{path} is a damaged or truncated .safetensors file ({exc}).") from None


def read_raw(path: Path, mmap: bool = True) -> tuple[dict, str, dict]:
    """(top-level object, format, safetensors metadata) of a checkpoint file."""
    fmt = _file_format(path)
    if fmt == "safetensors":
        sd, meta = _read_safetensors(path)
        return sd, fmt, meta
    return _read_torch(path, fmt, mmap), fmt, {}


def network_dict(obj, path: Path) -> dict:
    """The state dict inside the official container, or the object itself."""
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"{path} holds a {type(obj).__name__}, not a dictionary of network weights.")
    for key in _CONTAINER_KEYS:
        if isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        keys = ", ".join(map(str, list(obj)[:SHOW]))
        raise CheckpointError(
            f"{path} holds no network weights: expected a 'network' entry (official container) "
            f"or a plain state dict of tensors, found keys: {keys or 'none'}.")
    return obj


def strip_module(net: dict) -> dict:
    """``net`` with the ``module.`` prefix (of DataParallel training) removed from its keys."""
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in net.items()}


def file_sha256(path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


# --------------------------------------------------------------------------- checking

def mismatch_report(sd: dict, want: dict[str, tuple[int, ...]], hint: str = "") -> str | None:
    """One paragraph naming the missing, unexpected, mis-shaped and non-float keys of sd
    against ``want`` (``{key: shape}``), followed by ``hint``; None when sd fits."""
    missing = [k for k in want if k not in sd]
    unexpected = [k for k in sd if k not in want]
    bad_shape = [f"{k} {tuple(sd[k].shape)} != {want[k]}" for k in want
                 if k in sd and tuple(sd[k].shape) != want[k]]
    bad_type = [k for k in want if k in sd and not k.endswith("num_batches_tracked")
                and not sd[k].is_floating_point()]
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected),
                         ("with the wrong shape", bad_shape), ("not floating point", bad_type)):
        if items:
            more = ", ..." if len(items) > SHOW else ""
            parts.append(f"{len(items)} {'key' if len(items) == 1 else 'keys'} {label} "
                         f"({', '.join(items[:SHOW])}{more})")
    if not parts:
        return None
    return "; ".join(parts) + "." + hint


# --------------------------------------------------------------------------- loading

def tensors_for_device(sd: dict, device) -> tuple[dict, torch.device]:
    """(own float32 copies of sd on ``device``, the device); ``device`` may be "auto"."""
    if device == "auto":
        from .device import resolve_device

        device = resolve_device("auto")
    device = torch.device(device)
    # Own copies (not views of the mapped file), float32 like the reference.
    sd = {k: (v.to(device=device, dtype=torch.float32, copy=True) if v.is_floating_point()
              else v.to(device=device, copy=True)) for k, v in sd.items()}
    return sd, device


# --------------------------------------------------------------------------- converting

def check_convert_target(src: Path, dst: Path, overwrite: bool) -> None:
    """Refuse (CheckpointError) to replace dst without ``overwrite``, or to convert onto src."""
    if dst.exists() and not overwrite:
        raise CheckpointError(
            f"{dst} already exists; not overwriting it (use overwrite=True to replace it).")
    if dst.exists() and src.exists() and os.path.samefile(src, dst):
        raise CheckpointError(f"Source and destination are the same file ({src}).")


def write_safetensors(sd: dict, src: Path, dst: Path, meta: dict, *, overwrite: bool) -> Path:
    """Write sd as ``.safetensors`` to dst atomically (``common.files.atomic_write``), with
    ``meta`` plus the producer and src's name and sha256. A failed write raises
    ``OutputWriteError`` naming the file and the cause; nothing is left behind."""
    from safetensors.torch import save_file

    from ..common.files import atomic_write, os_error_in_text, remove_stale_temps

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in sd.items()}
    meta = {"format": "pt", "producer": "pose2pose_mocap", **meta, "source_name": src.name,
            "source_sha256": file_sha256(src)}
    dst.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(dst.parent)

    def write(tmp: Path) -> None:
        try:
            save_file(tensors, str(tmp), metadata=meta)
        except OSError:
            raise
        except Exception as exc:  # noqa: BLE001 - safetensors' SafetensorError (Rust I/O)
            cause = os_error_in_text(str(exc))
            if cause is not None:
                raise cause from None
            raise CheckpointError(f"could not write {dst}: {' '.join(str(exc).split())}") \
                from None

    return atomic_write(dst, write, replace=overwrite)


# --------------------------------------------------------------------------- identifying

def checkpoint_identity(path, standin: bool,
                        identify_checkpoint: Callable[[Path], CheckpointInfo]) -> tuple[str, bool]:
    """(``"<file name> sha256:<hex>"``, whether it is a stand-in) for a model's name.

    standin: already known to be one (then the file is only hashed); otherwise
    ``identify_checkpoint`` decides, since a stand-in under a real name is still a
    stand-in (it hashes the file once).
    """
    if standin:
        sha = file_sha256(path)
    else:
        info = identify_checkpoint(path)
        sha, standin = info.sha256, info.kind == "stand-in"
    return f"{Path(path).name} sha256:{sha}", standin


def identify(path, *, normalise: Callable[[dict], tuple[dict, list[str]]],
             report_of: Callable[[dict], str | None], seed_of: Callable[[dict], int | None],
             standin_name: str, layout_name: str,
             official: Callable[[dict, dict, str, str], str]) -> CheckpointInfo:
    """Say what a file is: the official layout, a project stand-in, or unknown (and why).

    normalise(raw) -> (state dict, notes); report_of(sd) -> mismatch paragraph or None;
    seed_of(sd) -> stand-in seed or None; official(sd, raw, fmt, sha) -> description.
    Never raises for a bad file: an unreadable or unsafe one is "unknown" with the reason.
    Reading is lazy (mmap), so a 300 MB file takes about as long as hashing it.
    """
    path = Path(path)
    try:
        sha = file_sha256(path)
    except OSError as exc:
        return CheckpointInfo(path, "unknown", "", 0,
                              f"cannot read the file: {exc.strerror or exc}")
    try:
        obj, fmt, meta = read_raw(path, mmap=True)
        raw = network_dict(obj, path)
    except CheckpointError as exc:
        return CheckpointInfo(path, "unknown", sha, 0, str(exc))
    sd, notes = normalise(raw)
    report = report_of(sd)
    seed = seed_of(sd)
    origin = ""
    if meta.get("source_sha256"):
        origin = (f" (converted from {meta.get('source_name', '?')}, "
                  f"sha256 {meta['source_sha256'][:12]}...)")
    if seed is not None:
        desc = (f"{standin_name}, seed {seed}: deterministic placeholders made by the project's "
                "rule for tests; not a trained model, poses will be meaningless")
        if report:
            desc += f"; layout differs from the network, so it cannot be loaded: {report}"
        return CheckpointInfo(path, "stand-in", sha, len(raw), desc + origin, seed, notes,
                              loadable=report is None)
    if report:
        return CheckpointInfo(path, "unknown", sha, len(raw),
                              f"not the {layout_name} layout: {report}", None, notes)
    return CheckpointInfo(path, "official", sha, len(raw), official(sd, raw, fmt, sha) + origin,
                          None, notes, loadable=True)
