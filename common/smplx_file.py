# SPDX-License-Identifier: GPL-3.0-or-later
"""The one way this project reads an SMPL-X ``.npz`` model file.

An ``.npz`` member with an object dtype holds a pickle, which
``np.load(allow_pickle=True)`` -- what the ``smplx`` package uses -- would run.
So every SMPL-X file is first checked from the ``.npy`` headers inside the zip
alone (no array data read, nothing unpickled): names, dtypes, shapes and sizes.
Refused by content, with one line:

* an object (pickled) array, except ``part2num``/``joint2num``: the real v1.1
  release holds those two pickled dicts; they are tolerated but never read;
* an array name that no SMPL-X v1.1 file holds (:data:`KNOWN_ARRAYS`);
* a missing or mis-shaped array the body model needs, a non-numeric one, or
  one whose header declares more data than the file holds or a size no model
  file has.

Data is then read with ``allow_pickle=False`` only (:func:`read_smplx_arrays`).
``smplx.SMPLX`` always opens its file with ``allow_pickle=True``, so it is only
ever given :func:`verified_copy`: a private, freshly written file holding just
the verified plain arrays it needs, which nothing can swap between the check
and the load. The ``.pkl`` variant is never opened.

Reading headers takes milliseconds on a real 100+ MB file and needs neither
torch nor smplx (the add-on, the doctor and the installer use it).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import numpy as np

from . import body_model_file as bm
from .errors import P2PError
from .npz import Member, npz_members, read_members

N_VERTS, N_FACES, N_JOINTS = 10475, 20908, 55

# name -> required shape; None in a shape = any size.
REQUIRED_ARRAYS: dict[str, tuple] = {
    "v_template": (N_VERTS, 3),
    "f": (N_FACES, 3),
    "shapedirs": (N_VERTS, 3, None),
    "posedirs": (N_VERTS, 3, 486),
    "J_regressor": (N_JOINTS, N_VERTS),
    "kintree_table": (2, N_JOINTS),
    "weights": (N_VERTS, N_JOINTS),
    "hands_componentsl": (None, 45),
    "hands_componentsr": (None, 45),
    "hands_meanl": (45,),
    "hands_meanr": (45,),
    "lmk_faces_idx": (51,),
    "lmk_bary_coords": (51, 3),
    "dynamic_lmk_faces_idx": (79, 17),
    "dynamic_lmk_bary_coords": (79, 17, 3),
}
MIN_SHAPEDIRS = 20  # 10 betas + 10 expressions
MAX_SHAPEDIRS = 400  # 300 shape + 100 expression directions in the v1.1 release
MAX_HAND_COMPONENTS = 45

# Pickled dicts of the real release (part and joint names); never read, never copied.
UNREAD_PICKLES = ("part2num", "joint2num")
# Every array name an SMPL-X v1.1 .npz holds: the required ones; hands_coeffs{l,r},
# vt, ft (unused); the pickled name tables; 'allow_pickle' (a bool scalar the release
# stored by calling np.savez(..., allow_pickle=True)); and our stand-ins' marker.
KNOWN_ARRAYS = frozenset(REQUIRED_ARRAYS) | {
    "hands_coeffsl", "hands_coeffsr", "vt", "ft", "allow_pickle", "standin", *UNREAD_PICKLES}
# What smplx.SMPLX reads from the file (the private copy holds these and nothing else).
LAYER_ARRAYS = tuple(REQUIRED_ARRAYS)
# The largest array of a real file is posedirs (10475 x 3 x 486 float64, 117 MiB).
MAX_MEMBER_BYTES = 512 << 20


class SmplxFileError(P2PError, ValueError):
    """An SMPL-X model file that cannot be used or must not be read; one line."""


# The model files' folder in the official download and in a data folder (``weights``).
SMPLX_SUBDIR = "smplx"


def smplx_file_name(gender: str) -> str:
    """``SMPLX_NEUTRAL.npz``, ``SMPLX_MALE.npz``, ``SMPLX_FEMALE.npz``."""
    return f"SMPLX_{str(gender).upper()}.npz"


def model_file_in(path, gender: str) -> Path | None:
    """The model file a path given for ``gender`` means: the path itself when it is a
    file, else ``SMPLX_<GENDER>.npz`` in ``path/smplx/`` or in ``path/``; None when
    there is none. (No search order: ``weights.locations.find_smplx`` has that.)"""
    return bm.model_file_in(path, smplx_file_name(gender), SMPLX_SUBDIR)


def _component_problems(members: Mapping[str, Member]) -> list[str]:
    problems = []
    sd = members.get("shapedirs")
    if sd is not None and len(sd.shape) == 3:
        if sd.shape[2] < MIN_SHAPEDIRS:
            problems.append(f"shapedirs has {sd.shape[2]} components, at least {MIN_SHAPEDIRS} "
                            "are needed (10 shape + 10 expression)")
        elif sd.shape[2] > MAX_SHAPEDIRS:
            problems.append(f"shapedirs has {sd.shape[2]} components, more than the "
                            f"{MAX_SHAPEDIRS} of any SMPL-X release")
    for side in "lr":
        hc = members.get("hands_components" + side)
        if hc is not None and len(hc.shape) == 2 and not 1 <= hc.shape[0] <= MAX_HAND_COMPONENTS:
            problems.append(f"hands_components{side} has {hc.shape[0]} rows, expected 1 to "
                            f"{MAX_HAND_COMPONENTS}")
    return problems


SPEC = bm.BodyModelSpec(
    label="SMPL-X", required=REQUIRED_ARRAYS, known=KNOWN_ARRAYS, unread_pickles=UNREAD_PICKLES,
    max_member_bytes=MAX_MEMBER_BYTES, error=SmplxFileError,
    pkl_message=("{name} is the .pkl variant, which is a pickle and is never opened; use the "
                 ".npz file from the same SMPL-X download"),
    extra_problems=_component_problems)


def smplx_members(path) -> dict[str, Member]:
    """The headers of a usable SMPL-X file, or :class:`SmplxFileError` (one line).

    Reads the zip directory and each member's ``.npy`` header only.
    """
    return bm.verified_members(SPEC, path)


def check_smplx_file(path) -> list[str]:
    """Problems that would stop the file from working as an SMPL-X model ([] if none).

    Each problem is one line naming the file; a file refused by content
    (pickled objects, unknown arrays) gives one problem saying so.
    """
    path = Path(path)
    if not path.is_file():
        return [f"{path} does not exist"]
    if path.suffix.lower() == ".pkl":
        return [f"{path} is the .pkl variant; use the .npz file from the same SMPL-X download"]
    try:
        members = bm.safe_members(SPEC, path)
    except SmplxFileError as exc:
        return [str(exc)]  # already names the file
    return [f"{path.name}: {p}" for p in bm.shape_problems(SPEC, members)]


def read_smplx_arrays(path, names: Iterable[str] = LAYER_ARRAYS) -> dict[str, np.ndarray]:
    """Verified arrays ``names`` of an SMPL-X file, read with ``allow_pickle=False`` only.

    ``names`` must be known arrays (default: what the body model needs). Raises
    :class:`SmplxFileError` with one line.
    """
    return bm.read_arrays(SPEC, path, names)


def _write_npz(path: Path, arrays: Iterator[tuple[str, np.ndarray]]) -> None:
    with open(path, "xb") as fh, \
            zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as z:
        for name, arr in arrays:
            with z.open(name + ".npy", "w", force_zip64=True) as out:
                np.lib.format.write_array(out, np.ascontiguousarray(arr), allow_pickle=False)


@contextlib.contextmanager
def verified_copy(path, names: Iterable[str] = LAYER_ARRAYS) -> Iterator[Path]:
    """A private copy of the verified plain arrays ``names`` of ``path``, for ``smplx``.

    Yields ``<fresh 0700 temp folder>/SMPLX_<GENDER>.npz`` (uncompressed); the
    folder is removed when the block ends, also on error. Arrays are copied one
    at a time (read with ``allow_pickle=False``, written without pickle), so
    the copy cannot hold anything that runs code whatever happens to ``path``
    meanwhile.
    """
    path = Path(path)
    names = list(names)
    members = bm.members_with(SPEC, path, names)
    stem = path.stem.upper()
    gender = next((g for g in ("NEUTRAL", "FEMALE", "MALE") if stem.endswith(g)), "NEUTRAL")
    folder = Path(tempfile.mkdtemp(prefix="p2p-smplx-"))
    try:
        os.chmod(folder, 0o700)
        target = folder / f"SMPLX_{gender}.npz"

        def arrays():
            for n in names:
                yield n, read_members(path, members, [n], error=SmplxFileError)[n]

        try:
            _write_npz(target, arrays())
        except OSError as exc:
            raise SmplxFileError(f"could not make a private copy of {path.name} in {folder} "
                                 f"({exc.strerror or exc})") from None
        yield target
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# Kept for callers that want ``{name: (shape, dtype)}``; headers only, pickles never read.
def array_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{array name: (shape, dtype)}`` of an ``.npz`` without loading any data."""
    return {n: (m.shape, m.dtype) for n, m in npz_members(path, error=SmplxFileError).items()}
