# SPDX-License-Identifier: GPL-3.0-or-later
"""Convert an official SMPL ``.pkl`` to the ``SMPL_<GENDER>.npz`` this project reads, ONCE.

    python smpl_pkl_to_npz.py basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl SMPL_NEUTRAL.npz

**This unpickles its input, and unpickling runs whatever the file names.** Use it only on
the file you downloaded from https://smpl.is.tue.mpg.de, in a throw-away environment (the
official files hold chumpy objects: ``pip install "numpy<1.24" scipy chumpy``). Nothing in
Pose2Pose Mocap ever opens a ``.pkl``; the ``.npz`` written here holds plain arrays only and
is checked like every model file (``common/smpl_file.py``; docs/smpl.md).

Standalone on purpose (numpy, and scipy/chumpy only as the pickle needs them): copy it to
wherever the official file is. An existing output is never replaced.
"""
from __future__ import annotations

import os
import pickle
import sys

import numpy as np

KEEP = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "kintree_table", "weights",
        "J")


def plain(x) -> np.ndarray:
    """A numpy array of a chumpy object (``.r``), a SciPy sparse matrix or an array."""
    if hasattr(x, "toarray"):
        x = x.toarray()
    return np.asarray(getattr(x, "r", x))


def convert(src: str, dst: str) -> None:
    with open(src, "rb") as fh:
        data = pickle.load(fh, encoding="latin1")  # runs the pickle: the official file only
    missing = [k for k in KEEP if k not in data]
    if missing:
        raise SystemExit(f"{src}: not an SMPL model file (missing {', '.join(missing)})")
    arrays = {k: plain(data[k]) for k in KEEP}
    for k, a in arrays.items():
        if a.dtype.hasobject:
            raise SystemExit(f"{src}: '{k}' is not numeric ({a.dtype})")
    tmp = dst + ".partial"
    with open(tmp, "xb") as fh:
        np.savez(fh, **arrays)
    try:
        os.link(tmp, dst)  # fails if dst exists: never replaced
    finally:
        os.unlink(tmp)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or not argv[1].endswith(".npz"):
        print("usage: smpl_pkl_to_npz.py OFFICIAL.pkl SMPL_<GENDER>.npz", file=sys.stderr)
        return 2
    if os.path.lexists(argv[1]):
        print(f"{argv[1]} exists; not replacing it", file=sys.stderr)
        return 1
    convert(argv[0], argv[1])
    print(f"wrote {argv[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
