# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the add-on keeps files, which Python runs the worker, which model files it uses.

Nothing is ever written into the add-on's own folder: as an extension the data
folder is ``bpy.utils.extension_path_user(<package>, create=True)``; otherwise
(run from a checkout) the user data folder of ``weights.locations``.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import bpy

from .preferences import get_prefs
from .state import ADDON_PACKAGE

ENV_WORKER_PYTHON = "P2P_MOCAP_WORKER_PYTHON"


def data_dir() -> Path:
    if ADDON_PACKAGE.startswith("bl_ext."):
        try:
            return Path(bpy.utils.extension_path_user(ADDON_PACKAGE, create=True))
        except (ValueError, AttributeError, RuntimeError):
            pass
    from ..weights.locations import user_data_dir

    d = user_data_dir()
    d.mkdir(parents=True, exist_ok=True)
    return d


def new_log_path(kind: str = "worker") -> Path:
    logs = data_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = logs / f"{kind}-{stamp}.log"
    n = 2
    while path.exists():
        path = logs / f"{kind}-{stamp}-{n}.log"
        n += 1
    return path


def runtime_dir() -> Path:
    return data_dir() / "runtime"


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def worker_python(context=None) -> str | None:
    """The interpreter with torch: the preference, the environment variable, the installed
    runtime, in that order; None when none is set up."""
    prefs = get_prefs(context)
    if prefs is not None and prefs.runtime_python:
        return bpy.path.abspath(prefs.runtime_python)
    env = os.environ.get(ENV_WORKER_PYTHON)
    if env:
        return env
    installed = venv_python(runtime_dir())
    if installed.is_file():
        return str(installed)
    return None


def _abs(p: str) -> str | None:
    return bpy.path.abspath(p) if p else None


def model_flags(context=None) -> dict:
    """Explicit model paths for the doctor and the worker: the preferences first; else the
    files the add-on installed into its data folder; else None (the search order decides)."""
    from ..weights.locations import CHECKPOINT_NAMES, CHECKPOINT_SUBDIR, SMPLX_SUBDIR

    prefs = get_prefs(context)
    flags = {"smplx": _abs(prefs.smplx_path) if prefs else None,
             "checkpoint": _abs(prefs.checkpoint_path) if prefs else None,
             "detector": _abs(prefs.detector_path) if prefs else None}
    root = data_dir()
    if not flags["smplx"] and not os.environ.get("P2P_MOCAP_SMPLX") and \
            (root / SMPLX_SUBDIR / "SMPLX_NEUTRAL.npz").is_file():
        flags["smplx"] = str(root / SMPLX_SUBDIR)
    if not flags["checkpoint"] and not os.environ.get("P2P_MOCAP_CHECKPOINT"):
        for name in CHECKPOINT_NAMES:
            if (root / CHECKPOINT_SUBDIR / name).is_file():
                flags["checkpoint"] = str(root / CHECKPOINT_SUBDIR / name)
                break
    if not flags["detector"] and not os.environ.get("P2P_MOCAP_DETECTOR"):
        det = sorted((root / "detector").glob("*.pth")) if (root / "detector").is_dir() else []
        if det:
            flags["detector"] = str(det[0])
    return flags


def have_scipy() -> bool:
    import importlib.util

    return importlib.util.find_spec("scipy") is not None


def takes_dir(props) -> Path:
    """Where the add-on writes takes (made if missing): the panel's folder, else ``takes/``
    in the data folder."""
    import bpy

    folder = Path(bpy.path.abspath(props.output_dir)) if props.output_dir else \
        data_dir() / "takes"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _smpl_flag(flags: dict, gender: str):
    """Where Import Take takes the SMPL model from (there is no SMPL preference): the SMPL-X
    preference when it is a models folder holding ``smpl/`` (one folder serves both bodies),
    else the add-on's data folder's ``smpl/`` (unless ``P2P_MOCAP_SMPL`` is set), else None:
    the search order (``weights.locations.find_smpl``)."""
    from ..common.smpl_file import SMPL_SUBDIR, model_file_in

    folder = flags.get("smplx")
    if folder and Path(folder).is_dir() and model_file_in(folder, gender) is not None:
        return folder
    own = data_dir() / SMPL_SUBDIR
    if not os.environ.get("P2P_MOCAP_SMPL") and model_file_in(own, gender) is not None:
        return str(own)
    return None


def take_model_file(flags: dict, take, gender: str):
    """The body model file for ``take`` (SMPL-X, or SMPL for I2L-MeshNet takes) by the
    add-on's preferences and the search order; RuntimeError with one line when missing."""
    from ..weights.locations import find_smpl, find_smplx

    if take.body_model == "smpl":
        hit = find_smpl(_smpl_flag(flags, gender), gender)
        if not hit.found:
            raise RuntimeError(hit.problem or f"SMPL model file not found ({gender}); put "
                               f"it at {hit.install_to} (docs/smpl.md)")
    else:
        hit = find_smplx(flags["smplx"], gender)
        if not hit.found:
            raise RuntimeError(hit.problem or f"SMPL-X model file not found ({gender}); set it "
                               "in the add-on preferences or press Install SMPL-X Zip")
    return hit.path
