# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading, checking, converting and identifying Pose2Pose checkpoints.

Accepted files:

* the official container ``{"network": {"module.*": tensor}, "epoch", "optimizer"}``
  (``snapshot_6.pth.tar``), or a bare state dict, with or without ``module.``;
* the legacy (pre-1.6) and zip PyTorch formats;
* ``.safetensors`` (as written by ``convert_checkpoint``).

Safety: PyTorch files are read with ``torch.load(weights_only=True)`` only,
so a pickle that would import and call arbitrary Python is refused, never run.
Strictness: the weights must match the network key for key and shape for
shape; otherwise nothing is loaded and the message says what differs. The two
``body_rotation_net.gender_out.*`` keys of older code (fact sheet 1.3) are
the only tolerated extra and are dropped with a note.
"""
from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import pickle
import pickletools
import struct
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import CheckpointError

log = logging.getLogger(__name__)

# sha256 (hex) -> description, for checkpoints whose authors publish a hash.
# The Hand4Whole release publishes none (files are on Google Drive without
# checksums), so a real snapshot_6.pth.tar can only be recognised by layout.
KNOWN_SHA256: dict[str, str] = {}

GENDER_HEAD_PREFIX = "body_rotation_net.gender_out."
_CONTAINER_KEYS = ("network", "state_dict", "model")
_SHOW = 5  # names listed per kind of mismatch


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
            what = ", ".join(foreign[:_SHOW]) if foreign else _torch_reason(exc)
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


def _read_raw(path: Path, mmap: bool = True) -> tuple[dict, str, dict]:
    """(top-level object, format, safetensors metadata) of a checkpoint file."""
    fmt = _file_format(path)
    if fmt == "safetensors":
        sd, meta = _read_safetensors(path)
        return sd, fmt, meta
    return _read_torch(path, fmt, mmap), fmt, {}


def _network_dict(obj, path: Path) -> dict:
    """The state dict inside the official container, or the object itself."""
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"{path} holds a {type(obj).__name__}, not a dictionary of network weights.")
    for key in _CONTAINER_KEYS:
        if isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        keys = ", ".join(map(str, list(obj)[:_SHOW]))
        raise CheckpointError(
            f"{path} holds no network weights: expected a 'network' entry (official container) "
            f"or a plain state dict of tensors, found keys: {keys or 'none'}.")
    return obj


@functools.lru_cache(maxsize=1)
def expected_shapes() -> dict[str, tuple[int, ...]]:
    """``{key: shape}`` of ``Pose2Pose().state_dict()``, in order (built on the meta device)."""
    from .network import Pose2Pose

    with torch.device("meta"):
        net = Pose2Pose()
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def _hint(keys) -> str:
    # Top-level module names of the body-/hand-/face-only branch (fact sheet, appendix A).
    if any(k.startswith(("hand_backbone.", "position_net.", "rotation_net.", "regressor."))
           for k in keys):
        return (" It looks like a part-only Pose2Pose checkpoint (body, hand or face branch), "
                "not the whole-body Hand4Whole snapshot_6.pth.tar.")
    return ""


def mismatch_report(sd: dict) -> str | None:
    """A one-paragraph description of how sd differs from the network, or None."""
    want = expected_shapes()
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
            more = ", ..." if len(items) > _SHOW else ""
            parts.append(f"{len(items)} {'key' if len(items) == 1 else 'keys'} {label} "
                         f"({', '.join(items[:_SHOW])}{more})")
    if not parts:
        return None
    return "; ".join(parts) + "." + _hint(sd)


def _normalise(net: dict) -> tuple[dict, list[str]]:
    """Strip ``module.``, drop the old gender head; returns (state dict, notes)."""
    sd = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in net.items()}
    notes = []
    gender = [k for k in sd if k.startswith(GENDER_HEAD_PREFIX)]
    if gender:
        for k in gender:
            del sd[k]
        notes.append(f"dropped {len(gender)} keys of the gender head that the official code "
                     f"removed in 2022 ({', '.join(gender)}); the network does not use them")
    return sd, notes


def read_state_dict(path) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Validated ``{key: tensor}`` (keys without ``module.``) and notes about the file.

    Raises CheckpointError on any problem; never returns a partial dict.
    """
    path = Path(path)
    obj, _fmt, _meta = _read_raw(path)
    sd, notes = _normalise(_network_dict(obj, path))
    report = mismatch_report(sd)
    if report:
        raise CheckpointError(
            f"{path} does not match the Pose2Pose (Hand4Whole) whole-body network, so nothing "
            f"was loaded: {report}")
    return sd, notes


# --------------------------------------------------------------------------- public API

def load_checkpoint(path, smplx_model_path=None, device="cpu"):
    """Pose2Pose in eval mode with the weights of ``path`` (strict), on ``device``.

    smplx_model_path: as ``Pose2Pose``; None gives a model without meshes.
    device: a torch device or "auto" (CUDA when available).
    Notes about the file (e.g. dropped gender-head keys) are logged and kept
    in ``model.load_notes``. Raises CheckpointError (a ValueError) with a
    message fit for users when the file is unsafe, damaged or does not fit.
    """
    from .network import Pose2Pose

    sd, notes = read_state_dict(path)
    if device == "auto":
        from ..device import resolve_device

        device = resolve_device("auto")
    device = torch.device(device)
    # Own copies (not views of the mapped file), float32 like the reference.
    sd = {k: (v.to(device=device, dtype=torch.float32, copy=True) if v.is_floating_point()
              else v.to(device=device, copy=True)) for k, v in sd.items()}
    with torch.device("meta"):
        model = Pose2Pose()
    model.load_state_dict(sd, strict=True, assign=True)
    if smplx_model_path is not None:
        model.attach_smplx(smplx_model_path)
    model.to(device).eval()
    model.load_notes = notes
    for note in notes:
        log.info("%s: %s", Path(path).name, note)
    return model


def file_sha256(path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def convert_checkpoint(src, dst, *, overwrite: bool = False) -> Path:
    """Write a validated ``.safetensors`` copy of ``src`` to ``dst``, atomically.

    The copy loads without any pickle and fast; keys are stored without
    ``module.``. The file appears complete or not at all (a hidden temporary
    file and a no-replace commit, ``common.files.atomic_write``): refuses to
    replace an existing ``dst`` unless ``overwrite``, even one that appears
    while converting. A failed write (disk full, read-only folder) raises
    ``OutputWriteError`` naming the file and the cause; nothing is left behind.
    """
    from safetensors.torch import save_file

    from ...common.files import atomic_write, os_error_in_text, remove_stale_temps

    src, dst = Path(src), Path(dst)
    if dst.exists() and not overwrite:
        raise CheckpointError(
            f"{dst} already exists; not overwriting it (use overwrite=True to replace it).")
    if dst.exists() and src.exists() and os.path.samefile(src, dst):
        raise CheckpointError(f"Source and destination are the same file ({src}).")
    sd, notes = read_state_dict(src)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in sd.items()}
    meta = {"format": "pt", "producer": "pose2pose_mocap", "source_name": src.name,
            "source_sha256": file_sha256(src)}
    if notes:
        meta["notes"] = "; ".join(notes)
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


def identify_checkpoint(path) -> CheckpointInfo:
    """Say what a file is: the official layout, a project stand-in, or unknown (and why).

    Never raises for a bad file: an unreadable or unsafe one is "unknown"
    with the reason. Reading is lazy (mmap), so a 300 MB file takes about
    as long as hashing it.
    """
    from ...weights.standin_rule import standin_seed_of

    path = Path(path)
    try:
        sha = file_sha256(path)
    except OSError as exc:
        return CheckpointInfo(path, "unknown", "", 0,
                              f"cannot read the file: {exc.strerror or exc}")
    try:
        obj, fmt, meta = _read_raw(path, mmap=True)
        net = _network_dict(obj, path)
    except CheckpointError as exc:
        return CheckpointInfo(path, "unknown", sha, 0, str(exc))
    sd, notes = _normalise(net)
    report = mismatch_report(sd)
    seed = standin_seed_of(sd)
    origin = ""
    if meta.get("source_sha256"):
        origin = (f" (converted from {meta.get('source_name', '?')}, "
                  f"sha256 {meta['source_sha256'][:12]}...)")
    if seed is not None:
        desc = (f"stand-in weights, seed {seed}: deterministic placeholders made by the project's "
                "rule for tests; not a trained model, poses will be meaningless")
        if report:
            desc += f"; layout differs from the network, so it cannot be loaded: {report}"
        return CheckpointInfo(path, "stand-in", sha, len(net), desc + origin, seed, notes,
                              loadable=report is None)
    if report:
        return CheckpointInfo(path, "unknown", sha, len(net),
                              f"not the Pose2Pose whole-body layout: {report}", None, notes)
    if sha in KNOWN_SHA256:
        desc = KNOWN_SHA256[sha]
    else:
        desc = (f"Pose2Pose/Hand4Whole whole-body weights with the official layout "
                f"({len(sd)} tensors, {fmt}); authenticity cannot be verified because the "
                "authors publish no checksum")
    return CheckpointInfo(path, "official", sha, len(net), desc + origin, None, notes,
                          loadable=True)
