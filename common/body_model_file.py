# SPDX-License-Identifier: GPL-3.0-or-later
"""The verified reading shared by the SMPL and SMPL-X model files (``smpl_file``,
``smplx_file``), parametrised by the arrays each body model needs.

Headers first (names, dtypes, shapes, sizes; nothing unpickled), then data with
``allow_pickle=False`` only; see those modules for what each refuses and why.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np

from .npz import Member, check_sizes, npz_members, read_members, refuse_unsafe


@dataclass(frozen=True)
class BodyModelSpec:
    """What one kind of body-model ``.npz`` must and may hold."""

    label: str  # "SMPL" or "SMPL-X", in messages
    required: Mapping[str, tuple]  # name -> shape; None in a shape = any size
    known: frozenset  # every array name a real file holds
    unread_pickles: tuple  # pickled members tolerated but never read
    max_member_bytes: int
    error: type  # the P2PError subclass raised, with one line
    pkl_message: str  # why a .pkl is refused; ``{name}`` is the file's name
    extra_problems: Callable[[Mapping[str, Member]], list[str]]  # component counts etc.


def model_file_in(path, name: str, subdir: str) -> Path | None:
    """The path itself when it is a file, else ``name`` in ``path/subdir/`` or in
    ``path/``; None when there is none."""
    p = Path(path).expanduser()
    if p.is_file():
        return p
    return file_beside(p, name, subdir)


def file_beside(path, name: str, subdir: str) -> Path | None:
    """``name`` in ``path/subdir/`` or in ``path/``; None when there is none."""
    p = Path(path).expanduser()
    for folder in (p / subdir, p):
        if (folder / name).is_file():
            return folder / name
    return None


def _numeric(dtype: np.dtype) -> bool:
    return dtype.kind in "fiub" and not dtype.hasobject and dtype.fields is None


def shape_problems(spec: BodyModelSpec, members: Mapping[str, Member]) -> list[str]:
    """Missing, mis-shaped or non-numeric required arrays, then ``spec.extra_problems``."""
    problems = []
    for name, want in spec.required.items():
        m = members.get(name)
        if m is None:
            problems.append(f"array '{name}' is missing")
            continue
        shape = m.shape
        if len(shape) != len(want) or any(w is not None and s != w for s, w in zip(shape, want)):
            shown = tuple("*" if w is None else w for w in want)
            problems.append(f"array '{name}' has shape {shape}, expected {shown}")
        elif not _numeric(m.dtype):
            problems.append(f"array '{name}' holds {m.dtype}, not numbers")
    return problems + spec.extra_problems(members)


def safe_members(spec: BodyModelSpec, path: Path) -> dict[str, Member]:
    """Headers, with a .pkl, pickled/unknown arrays and impossible sizes refused."""
    if path.suffix.lower() == ".pkl":
        raise spec.error(spec.pkl_message.format(name=path.name))
    members = npz_members(path, error=spec.error)
    refuse_unsafe(path, members, allowed=spec.known, error=spec.error,
                  what=f"this {spec.label} model file", unread_objects=spec.unread_pickles)
    plain = {n: m for n, m in members.items() if not m.is_object}
    check_sizes(path, plain, max_member_bytes=spec.max_member_bytes, error=spec.error)
    return members


def verified_members(spec: BodyModelSpec, path) -> dict[str, Member]:
    """The headers of a usable file, or ``spec.error`` (one line); headers only."""
    path = Path(path)
    members = safe_members(spec, path)
    problems = shape_problems(spec, members)
    if problems:
        raise spec.error(f"{path.name} is not a usable {spec.label} model file: "
                         + "; ".join(problems))
    return members


def members_with(spec: BodyModelSpec, path: Path, names: list[str]) -> dict[str, Member]:
    """The verified members of ``path``; one line if any of ``names`` is missing."""
    members = verified_members(spec, path)
    missing = [n for n in names if n not in members]
    if missing:
        raise spec.error(f"{path.name} is not a usable {spec.label} model file: array "
                         f"'{missing[0]}' is missing")
    return members


def read_arrays(spec: BodyModelSpec, path, names: Iterable[str]) -> dict[str, np.ndarray]:
    """Verified arrays ``names`` of ``path``, read with ``allow_pickle=False`` only."""
    path = Path(path)
    names = list(names)
    members = members_with(spec, path, names)
    return read_members(path, members, names, error=spec.error)
