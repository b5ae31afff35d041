# SPDX-License-Identifier: GPL-3.0-or-later
"""Cheap structural check of an SMPL-X ``.npz`` model file.

Reads only the ``.npy`` headers inside the zip (no array data), so checking a
real 100+ MB model file takes milliseconds and needs neither torch nor smplx.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

N_VERTS, N_FACES, N_JOINTS = 10475, 20908, 55

# name -> required shape; None in a shape = any size; a leading "min" tuple
# entry is checked as a lower bound.
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


def array_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{array name: (shape, dtype)}`` of an ``.npz`` without loading any data."""
    out = {}
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if not name.endswith(".npy"):
                continue
            with z.open(name) as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            out[name[:-4]] = (tuple(shape), dtype)
    return out


def check_smplx_file(path) -> list[str]:
    """Problems that would stop the file from working as an SMPL-X model ([] if none)."""
    path = Path(path)
    if not path.is_file():
        return [f"{path} does not exist"]
    if path.suffix.lower() == ".pkl":
        return [f"{path} is the .pkl variant; use the .npz file from the same SMPL-X download"]
    try:
        headers = array_headers(path)
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        return [f"{path} is not a readable .npz file ({exc})"]
    problems = []
    for name, want in REQUIRED_ARRAYS.items():
        if name not in headers:
            problems.append(f"array '{name}' is missing")
            continue
        shape = headers[name][0]
        if len(shape) != len(want) or any(w is not None and s != w for s, w in zip(shape, want)):
            shown = tuple("*" if w is None else w for w in want)
            problems.append(f"array '{name}' has shape {shape}, expected {shown}")
    if "shapedirs" in headers and len(headers["shapedirs"][0]) == 3:
        if headers["shapedirs"][0][2] < MIN_SHAPEDIRS:
            problems.append(f"shapedirs has {headers['shapedirs'][0][2]} components, "
                            f"at least {MIN_SHAPEDIRS} are needed (10 shape + 10 expression)")
    return [f"{path.name}: {p}" for p in problems]
