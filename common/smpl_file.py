# SPDX-License-Identifier: GPL-3.0-or-later
"""The one way this project reads an SMPL (not SMPL-X) ``.npz`` model file.

The same rules as ``common.smplx_file``: every ``.npy`` header in the zip is
checked first (names, dtypes, shapes, sizes), nothing is unpickled, data is
read with ``allow_pickle=False`` only. Refused by content, with one line:

* an object (pickled) array, except ``pose_training_info`` (a dict in the
  official ``.pkl``; tolerated in a converted file but never read);
* an array name no SMPL file holds (:data:`KNOWN_ARRAYS`);
* a missing or mis-shaped array the body model needs (6890 vertices, 13776
  triangles, 24 joints, 207 pose-corrective directions, 10 to 300 shape
  directions), a non-numeric one, or one whose header declares more data than
  the file holds.

**The ``.pkl`` files are never opened.** The official SMPL download
(``SMPL_python_v.1.1.0``: ``basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl``...)
holds Python pickles (chumpy objects and a SciPy sparse matrix); unpickling a
file runs whatever it names. Rather than trust an allow-list unpickler with
files we cannot test against, we take ``.npz`` only: convert the ``.pkl`` once
with ``tools/smpl_pkl_to_npz.py`` in a throw-away environment (``docs/smpl.md``,
"SMPL model files"), and name it ``smpl/SMPL_NEUTRAL.npz``. The ``smplx`` package's ``SMPL`` class
(0.1.28) only opens pickles by path; give it ``data_struct`` built from
:func:`read_smpl_arrays` instead.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from . import body_model_file as bm
from .errors import P2PError
from .npz import Member

N_VERTS, N_FACES, N_JOINTS = 6890, 13776, 24
N_POSE_FEATURES = (N_JOINTS - 1) * 9  # 207

# name -> required shape; None in a shape = any size.
REQUIRED_ARRAYS: dict[str, tuple] = {
    "v_template": (N_VERTS, 3),
    "f": (N_FACES, 3),
    "shapedirs": (N_VERTS, 3, None),
    "posedirs": (N_VERTS, 3, N_POSE_FEATURES),
    "J_regressor": (N_JOINTS, N_VERTS),
    "kintree_table": (2, N_JOINTS),
    "weights": (N_VERTS, N_JOINTS),
}
MIN_SHAPEDIRS = 10
MAX_SHAPEDIRS = 300  # the v1.1 release has 300 shape directions, SMPLify's neutral file 10
# The official pickle's dict; never read, never copied.
UNREAD_PICKLES = ("pose_training_info",)
# Every array name an SMPL model file (converted from the official .pkl) holds,
# 'allow_pickle' (a scalar np.savez(..., allow_pickle=True) may store) and our marker.
KNOWN_ARRAYS = frozenset(REQUIRED_ARRAYS) | {
    "J", "J_regressor_prior", "weights_prior", "vert_sym_idxs", "bs_style", "bs_type",
    "allow_pickle", "standin", *UNREAD_PICKLES}
LAYER_ARRAYS = tuple(REQUIRED_ARRAYS)
# The largest array of a real file is posedirs (6890 x 3 x 207 float64, 33 MiB).
MAX_MEMBER_BYTES = 256 << 20

SMPL_SUBDIR = "smpl"


class SmplFileError(P2PError, ValueError):
    """An SMPL model file that cannot be used or must not be read; one line."""


def smpl_file_name(gender: str) -> str:
    """``SMPL_NEUTRAL.npz``, ``SMPL_MALE.npz``, ``SMPL_FEMALE.npz``."""
    return f"SMPL_{str(gender).upper()}.npz"


def model_file_in(path, gender: str) -> Path | None:
    """The SMPL model file a path given for ``gender`` means: the path itself when it is
    a file, else ``SMPL_<GENDER>.npz`` in ``path/smpl/`` or in ``path/``; None when
    there is none (a ``.pkl`` beside it is not taken: see the module docstring)."""
    return bm.model_file_in(path, smpl_file_name(gender), SMPL_SUBDIR)


def pkl_beside(path, gender: str) -> Path | None:
    """An official-style ``SMPL_<GENDER>.pkl`` where the ``.npz`` was looked for (to say
    how to convert it); None if there is none."""
    return bm.file_beside(path, f"SMPL_{str(gender).upper()}.pkl", SMPL_SUBDIR)


def _component_problems(members: Mapping[str, Member]) -> list[str]:
    sd = members.get("shapedirs")
    if sd is not None and len(sd.shape) == 3 and not MIN_SHAPEDIRS <= sd.shape[2] <= MAX_SHAPEDIRS:
        return [f"shapedirs has {sd.shape[2]} components, expected {MIN_SHAPEDIRS} "
                f"to {MAX_SHAPEDIRS}"]
    return []


SPEC = bm.BodyModelSpec(
    label="SMPL", required=REQUIRED_ARRAYS, known=KNOWN_ARRAYS, unread_pickles=UNREAD_PICKLES,
    max_member_bytes=MAX_MEMBER_BYTES, error=SmplFileError,
    pkl_message=("{name} is a pickle (.pkl), which is never opened; convert it to "
                 "SMPL_<GENDER>.npz once (docs/estimators.md, 'SMPL model files')"),
    extra_problems=_component_problems)


def smpl_members(path) -> dict[str, Member]:
    """The headers of a usable SMPL file, or :class:`SmplFileError` (one line).

    Reads the zip directory and each member's ``.npy`` header only.
    """
    return bm.verified_members(SPEC, path)


def check_smpl_file(path) -> list[str]:
    """Problems that would stop the file from working as an SMPL model ([] if none)."""
    path = Path(path)
    if not path.is_file():
        return [f"{path} does not exist"]
    try:
        smpl_members(path)
    except SmplFileError as exc:
        return [str(exc)]
    return []


def read_smpl_arrays(path, names: Iterable[str] = LAYER_ARRAYS) -> dict[str, np.ndarray]:
    """Verified arrays ``names`` of an SMPL file, read with ``allow_pickle=False`` only.

    Raises :class:`SmplFileError` with one line.
    """
    return bm.read_arrays(SPEC, path, names)
