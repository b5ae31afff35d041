# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading ``.npz`` files that may be hostile, without running code or exhausting memory.

An ``.npz`` is a zip of ``.npy`` members; a member with an object dtype holds a
pickle, which ``np.load(allow_pickle=True)`` would run. Here every member's
header (shape, dtype) is read first, from the zip, without touching its data or
unpickling anything; object arrays and names the caller does not expect are
refused by content, and the caller can check shapes and sizes before any data
is read. Data is then read with ``allow_pickle=False`` only.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np

from .errors import P2PError


class NpzError(P2PError, ValueError):
    """An ``.npz`` that is unreadable, truncated or holds something it must not."""


class NpzBytes:
    """An ``.npz`` held in memory (e.g. a take stored in a .blend), read like a file.

    Every function here takes one where it takes a path; ``name`` names it in messages.
    """

    def __init__(self, data: bytes, name: str = "data"):
        self.data = bytes(data)
        self.name = str(name)

    def __str__(self) -> str:
        return self.name

    def is_file(self) -> bool:
        return True


def _source(path):
    """A path as a ``Path``; an ``NpzBytes`` as it is."""
    return path if isinstance(path, NpzBytes) else Path(path)


def _zip(path) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(path.data) if isinstance(path, NpzBytes) else path)


@dataclass(frozen=True)
class Member:
    """One ``.npy`` member of an ``.npz``, as its header declares it."""

    name: str            # array name (without ``.npy``)
    shape: tuple
    dtype: np.dtype
    stored_size: int     # uncompressed bytes the zip directory declares for the member

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=object)) * self.dtype.itemsize

    @property
    def is_object(self) -> bool:
        return bool(self.dtype.hasobject)


def _read_header(fh) -> tuple[tuple, np.dtype]:
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fh, max_header_size=100_000)
    elif version in ((2, 0), (3, 0)):
        shape, _, dtype = np.lib.format.read_array_header_2_0(fh, max_header_size=100_000)
    else:  # pragma: no cover - read_magic refuses other versions already
        raise ValueError(f"unsupported .npy version {version}")
    return tuple(int(s) for s in shape), dtype


def npz_members(path, *, error: type[Exception] = NpzError) -> dict[str, Member]:
    """``{name: Member}`` from the headers only. Raises ``error`` with one line.

    Non-``.npy`` members, duplicate names and unreadable headers are refused.
    ``path``: a file or an ``NpzBytes``.
    """
    path = _source(path)
    if not path.is_file():
        raise error(f"{path}: no such file")
    out: dict[str, Member] = {}
    try:
        with _zip(path) as z:
            for info in z.infolist():
                if info.is_dir():
                    continue
                if not info.filename.endswith(".npy"):
                    raise error(f"{path.name}: member '{info.filename}' is not a numpy array; "
                                "not an .npz file this program reads")
                name = info.filename[:-4]
                if name in out:
                    raise error(f"{path.name}: array '{name}' appears twice")
                with z.open(info) as fh:
                    shape, dtype = _read_header(fh)
                out[name] = Member(name, shape, dtype, int(info.file_size))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, KeyError,
            NotImplementedError, RuntimeError, SyntaxError) as exc:
        if isinstance(exc, error):
            raise
        raise error(f"{path}: not a readable .npz file ({_short(exc)})") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read ({_short(exc)})") from None
    return out


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def refuse_unsafe(path, members: Mapping[str, Member], *, allowed: Iterable[str] | None = None,
                  error: type[Exception] = NpzError, what: str = "this file",
                  unread_objects: Iterable[str] = ()) -> None:
    """Refuse object (pickled) arrays always, and names outside ``allowed`` if given.

    ``unread_objects``: names whose object arrays are tolerated because the caller
    never reads them (e.g. ``part2num``/``joint2num`` of the real SMPL-X release);
    :func:`read_members` still refuses to read any object array.
    """
    name = _source(path).name
    skip = set(unread_objects)
    objects = sorted(m.name for m in members.values() if m.is_object and m.name not in skip)
    if objects:
        raise error(f"{name}: array '{objects[0]}' holds pickled Python objects; refusing "
                    f"{what} (it could run code when read)")
    if allowed is not None:
        allowed = set(allowed)
        unknown = sorted(set(members) - allowed)
        if unknown:
            more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            raise error(f"{name}: unexpected array '{unknown[0]}'{more}; refusing {what}")


def check_sizes(path, members: Mapping[str, Member], *, max_member_bytes: int,
                error: type[Exception] = NpzError) -> None:
    """Refuse members whose declared size is over the limit or disagrees with the zip."""
    name = _source(path).name
    for m in members.values():
        if m.nbytes > max_member_bytes:
            raise error(f"{name}: array '{m.name}' declares {m.shape} {m.dtype} "
                        f"({m.nbytes / 2**20:.0f} MiB), more than the {max_member_bytes / 2**20:.0f} "
                        "MiB this file type may hold")
        if m.stored_size < m.nbytes:
            raise error(f"{name}: array '{m.name}' is truncated (its header declares "
                        f"{m.nbytes} bytes, the file holds {m.stored_size})")


def read_members(path, members: Mapping[str, Member], names: Iterable[str] | None = None, *,
                 error: type[Exception] = NpzError) -> dict[str, np.ndarray]:
    """Read the data of ``names`` (default all) with ``allow_pickle=False`` only."""
    path = _source(path)
    names = list(members) if names is None else list(names)
    out: dict[str, np.ndarray] = {}
    try:
        with _zip(path) as z:
            for n in names:
                m = members[n]
                if m.is_object:  # never reached after refuse_unsafe; kept as the last guard
                    raise error(f"{path.name}: array '{n}' holds pickled Python objects")
                with z.open(n + ".npy") as fh:
                    arr = np.lib.format.read_array(fh, allow_pickle=False,
                                                   max_header_size=100_000)
                if tuple(arr.shape) != m.shape:
                    raise error(f"{path.name}: array '{n}' is truncated or corrupt")
                out[n] = arr
    except (zipfile.BadZipFile, EOFError, ValueError, KeyError, NotImplementedError,
            RuntimeError) as exc:
        if isinstance(exc, error):
            raise
        raise error(f"{path}: array data is truncated or corrupt ({_short(exc)})") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read ({_short(exc)})") from None
    return out


def load_npz_safely(path, *, allowed: Iterable[str] | None = None, max_member_bytes: int,
                    check: Callable[[Mapping[str, Member]], None] | None = None,
                    error: type[Exception] = NpzError, what: str = "this file",
                    names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Headers -> refusals -> ``check(members)`` (caller's shape rules) -> data.

    No data is read and nothing is unpickled before every check has passed.
    ``names``: read only these arrays (default all).
    """
    members = npz_members(path, error=error)
    refuse_unsafe(path, members, allowed=allowed, error=error, what=what)
    check_sizes(path, members, max_member_bytes=max_member_bytes, error=error)
    if check is not None:
        check(members)
    return read_members(path, members, names, error=error)
