# SPDX-License-Identifier: GPL-3.0-or-later
"""AMASS / SMPL-X Blender add-on ``.npz`` (``poses`` (T,165) or the split keys
``root_orient``, ``pose_body``, ...). Read by ``retarget.amass`` when it offers a
reader (``read_amass``), else by ``retarget.take.read_take``'s SMPL-X path."""
from __future__ import annotations

from pathlib import Path

NAME = "amass"
ESTIMATOR = "amass"
EXPECTED = ("an AMASS / SMPL-X add-on .npz with 'poses' (T,165) or 'root_orient' + "
            "'pose_body', and 'trans'")
_KEYS = {"poses", "root_orient", "pose_body"}


def detect(path: Path) -> bool:
    from ...common.npz import npz_members

    if not (path.is_file() and path.suffix.lower() == ".npz"):
        return False
    names = set(npz_members(path))
    return "format" not in names and bool(names & _KEYS) and "trans" in names


def read(path: Path, body=None, person: int = 0):
    from dataclasses import replace

    from .. import take as take_mod
    from ._common import ImportFormatError

    path = Path(path)
    if not detect(path):
        raise ImportFormatError(f"{path.name}: not an AMASS file (expected {EXPECTED})")
    try:
        from .. import amass as amass_mod  # issue 13 item 6 (another module's reader)
        reader = getattr(amass_mod, "read_amass", None)
    except ImportError:
        reader = None
    t = reader(path) if reader is not None else take_mod.read_take(path)
    return replace(t, estimator=t.estimator or ESTIMATOR, source=t.source or path.name,
                   notes=list(t.notes))
