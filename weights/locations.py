# SPDX-License-Identifier: GPL-3.0-or-later
"""Where model files are looked for: one search order for the CLI and the add-on.

Order, first hit wins:
  1. an explicit path (CLI flag, or the add-on preference);
  2. an environment variable (``P2P_MOCAP_SMPLX``, ``P2P_MOCAP_CHECKPOINT``,
     ``P2P_MOCAP_DETECTOR``, ``P2P_MOCAP_I2L_CHECKPOINT``);
  3. the user's data directory (``P2P_MOCAP_DATA_DIR`` if set, else
     ``$XDG_DATA_HOME/pose2pose_mocap`` on Linux, ``~/Library/Application
     Support/pose2pose_mocap`` on macOS, ``%APPDATA%\\pose2pose_mocap`` on Windows);
  4. ``weights/`` inside this checkout (or installed extension), unless
     ``P2P_MOCAP_IGNORE_CHECKOUT=1``.

An explicit path (1 or 2) that holds no such file is an error, reported as
such; the search does not quietly fall through to another file.

Inside a data directory the layout is fixed::

    smplx/SMPLX_NEUTRAL.npz (MALE, FEMALE)     SMPL-X model files
    pose2pose/snapshot_6.pth.tar                 Hand4Whole checkpoint
    pose2pose/snapshot_6.safetensors             (or its converted copy)
    pose2pose/standin.pth.tar                    generated stand-in
    i2l_meshnet/snapshot_8.pth.tar               I2L-MeshNet checkpoint (or 7, 17;
    i2l_meshnet/standin.pth.tar                  .safetensors copies; a stand-in)
    detector/fasterrcnn_resnet50_fpn*.pth        person detector weights

Real files are preferred over stand-ins that sit in the same directory.
"""
from __future__ import annotations

import os
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..common.errors import P2PError
from ..common.smplx_file import SMPLX_SUBDIR

ENV_SMPLX = "P2P_MOCAP_SMPLX"
ENV_CHECKPOINT = "P2P_MOCAP_CHECKPOINT"
ENV_DETECTOR = "P2P_MOCAP_DETECTOR"
ENV_I2L_CHECKPOINT = "P2P_MOCAP_I2L_CHECKPOINT"
ENV_DATA_DIR = "P2P_MOCAP_DATA_DIR"
# Tests set this so files a developer put into weights/ cannot leak into them.
ENV_IGNORE_CHECKOUT = "P2P_MOCAP_IGNORE_CHECKOUT"

APP_DIR_NAME = "pose2pose_mocap"
CHECKPOINT_SUBDIR = "pose2pose"
DETECTOR_SUBDIR = "detector"
I2L_CHECKPOINT_SUBDIR = "i2l_meshnet"

CHECKPOINT_NAMES = ("snapshot_6.pth.tar", "snapshot_6.safetensors")
STANDIN_CHECKPOINT_NAME = "standin.pth.tar"
# I2L-MeshNet stage-param checkpoints of the official README, most wanted first
# (snapshot_8: the demo's "visually smooth" model; 7: best on 3DPW; 17: H36M+MSCOCO).
I2L_CHECKPOINT_NAMES = ("snapshot_8.pth.tar", "snapshot_8.safetensors", "snapshot_7.pth.tar",
                        "snapshot_7.safetensors", "snapshot_17.pth.tar", "snapshot_17.safetensors")
DETECTOR_NAMES = (
    "fasterrcnn_resnet50_fpn_v2_coco-dd69338a.pth",
    "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth",
)
STANDIN_DETECTOR_NAME = "standin_detector.pth"
GENDERS = ("neutral", "male", "female")

SMPLX_SOURCE = (
    "https://smpl-x.is.tue.mpg.de (register, accept the SMPL-X Model License, "
    "download 'SMPL-X v1.1 (NPZ+PKL)'; non-commercial unless licensed from Meshcapade)"
)
CHECKPOINT_SOURCE = (
    "the Hand4Whole release, https://github.com/mks0601/Hand4Whole_RELEASE "
    "(README, 'Hand4Whole trained on H36M+MPII+MSCOCO': snapshot_6.pth.tar)"
)
DETECTOR_SOURCE = (
    "torchvision's Faster R-CNN ResNet-50 FPN COCO weights, "
    "https://download.pytorch.org/models/fasterrcnn_resnet50_fpn_coco-258fb6c6.pth "
    "(BSD-3-Clause code; COCO-trained)"
)
I2L_CHECKPOINT_SOURCE = (
    "the I2L-MeshNet release, https://github.com/mks0601/I2L-MeshNet_RELEASE (README, "
    "'Quick demo': snapshot_8.pth.tar, stage param; MIT code, the weights state no licence)"
)


def user_data_dir() -> Path:
    """The per-user directory shared by the CLI and the add-on."""
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / APP_DIR_NAME


def checkout_weights_dir() -> Path:
    return Path(__file__).resolve().parent


@dataclass
class Place:
    """One place that was looked at."""

    origin: str  # "flag", "environment", "user data directory", "checkout"
    path: Path


@dataclass
class Lookup:
    """Result of a search for one model file."""

    what: str
    path: Path | None
    origin: str | None
    standin: bool
    searched: list[Place] = field(default_factory=list)
    # Where a user should put the real file when nothing was found.
    install_to: Path | None = None
    source: str = ""
    problem: str | None = None

    @property
    def found(self) -> bool:
        return self.path is not None and self.problem is None


def _roots(flag, env_name) -> list[Place]:
    places: list[Place] = []
    if flag:
        places.append(Place("flag", Path(flag).expanduser()))
    env = os.environ.get(env_name)
    if env:
        places.append(Place("environment " + env_name, Path(env).expanduser()))
    places.append(Place("user data directory", user_data_dir()))
    if os.environ.get(ENV_IGNORE_CHECKOUT, "") in ("", "0"):
        places.append(Place("checkout", checkout_weights_dir()))
    return places


def _explicit(place: Place) -> bool:
    return place.origin == "flag" or place.origin.startswith("environment")


def _first_file(place: Place, subdir: str, names: tuple[str, ...]) -> Path | None:
    p = place.path
    if _explicit(place) and p.is_file():
        return p
    for folder in (p / subdir, p):
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def _miss(what: str, place: Place, places: list[Place], wanted: str, source: str) -> Lookup:
    given = "the path given" if place.origin == "flag" else place.origin
    return Lookup(what, None, place.origin, False, places, install_to=place.path, source=source,
                  problem=f"{what}: {given} ({place.path}) does not hold {wanted}")


def smplx_file_is_standin(path: Path) -> bool:
    """Stand-ins carry a ``standin`` array; reading the zip directory is enough."""
    try:
        with zipfile.ZipFile(path) as z:
            return "standin.npy" in z.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def find_smplx(flag=None, gender: str = "neutral") -> Lookup:
    """Find ``SMPLX_<GENDER>.npz``. ``flag`` may be the npz, its folder or the folder above."""
    gender = gender.lower()
    if gender not in GENDERS:
        raise ValueError(f"gender must be one of {GENDERS}, not {gender!r}")
    name = f"SMPLX_{gender.upper()}.npz"
    places = _roots(flag, ENV_SMPLX)
    for place in places:
        hit = _first_file(place, SMPLX_SUBDIR, (name,))
        if hit is not None:
            return Lookup("SMPL-X model", hit, place.origin, smplx_file_is_standin(hit), places,
                          source=SMPLX_SOURCE)
        if _explicit(place):
            return _miss("SMPL-X model", place, places, f"{name} (or {SMPLX_SUBDIR}/{name})",
                         SMPLX_SOURCE)
    return Lookup("SMPL-X model", None, None, False, places,
                  install_to=user_data_dir() / SMPLX_SUBDIR / name, source=SMPLX_SOURCE)


class ModelNotFoundError(P2PError, ValueError):
    """A model file the search order did not find (or an explicit path that holds none)."""


def smplx_model_file(flag, gender: str) -> Path:
    """``SMPLX_<GENDER>.npz`` by the search order, or ModelNotFoundError with one line
    that says where to put it."""
    hit = find_smplx(flag, gender)
    hint = "" if gender == "neutral" else " (or use --gender neutral)"
    if hit.problem:
        raise ModelNotFoundError(hit.problem + hint)
    if hit.path is None:
        raise ModelNotFoundError(f"no SMPL-X model file SMPLX_{gender.upper()}.npz found; put "
                                 f"it at {hit.install_to} (from {hit.source}) or pass "
                                 f"--smplx{hint}")
    return Path(hit.path)


def smplx_lookup(flag):
    """``gender -> SMPLX_<GENDER>.npz`` by the search order (``flag`` first): what a
    caller of ``retarget.convert.convert_take`` passes as its model, which the
    take's gender picks."""
    def lookup(gender: str) -> Path:
        return smplx_model_file(flag, gender)
    return lookup


def smplx_model_root(npz_path: Path) -> Path:
    """The folder ``smplx.create(model_path=..., model_type="smplx")`` wants."""
    npz_path = Path(npz_path)
    return npz_path.parent.parent if npz_path.parent.name == SMPLX_SUBDIR else npz_path.parent


ENV_SMPL = "P2P_MOCAP_SMPL"
SMPL_SOURCE = (
    "https://smpl.is.tue.mpg.de (register, accept the SMPL Model License, download "
    "'SMPL for Python' v1.1.0; non-commercial unless licensed from Meshcapade); its .pkl files "
    "are converted once to SMPL_<GENDER>.npz, see docs/estimators.md 'SMPL model files'"
)


def find_smpl(flag=None, gender: str = "neutral") -> Lookup:
    """Find ``SMPL_<GENDER>.npz`` (the SMPL body, for SMPL takes): the same order as
    SMPL-X (``flag``, ``P2P_MOCAP_SMPL``, the user data directory, the checkout), in
    ``smpl/`` or the folder itself. A ``.pkl`` is never taken (it is a pickle); the
    problem says how to convert one that is found instead."""
    from ..common.smpl_file import SMPL_SUBDIR, pkl_beside, smpl_file_name

    gender = gender.lower()
    if gender not in GENDERS:
        raise ValueError(f"gender must be one of {GENDERS}, not {gender!r}")
    name = smpl_file_name(gender)
    places = _roots(flag, ENV_SMPL)
    pkl = None
    for place in places:
        hit = _first_file(place, SMPL_SUBDIR, (name,))
        if hit is not None:
            return Lookup("SMPL model", hit, place.origin, smplx_file_is_standin(hit), places,
                          source=SMPL_SOURCE)
        pkl = pkl or pkl_beside(place.path, gender)
        if _explicit(place):
            miss = _miss("SMPL model", place, places, f"{name} (or {SMPL_SUBDIR}/{name})",
                         SMPL_SOURCE)
            if pkl is not None:
                miss.problem += (f"; {pkl} is a pickle and is never opened: convert it to "
                                 f"{name} (docs/estimators.md, 'SMPL model files')")
            return miss
    out = Lookup("SMPL model", None, None, False, places,
                 install_to=user_data_dir() / SMPL_SUBDIR / name, source=SMPL_SOURCE)
    if pkl is not None:
        out.problem = (f"SMPL model: found {pkl}, a pickle, which is never opened; convert it "
                       f"to {name} (docs/estimators.md, 'SMPL model files')")
    return out


def smpl_model_file(flag, gender: str) -> Path:
    """``SMPL_<GENDER>.npz`` by the search order, or ModelNotFoundError with one line."""
    hit = find_smpl(flag, gender)
    hint = "" if gender == "neutral" else " (or use --gender neutral)"
    if hit.problem:
        raise ModelNotFoundError(hit.problem + hint)
    if hit.path is None:
        raise ModelNotFoundError(f"no SMPL model file {hit.install_to.name} found; put it at "
                                 f"{hit.install_to} (from {hit.source}) or pass --smpl{hint}")
    return Path(hit.path)


def smpl_lookup(flag):
    """``gender -> SMPL_<GENDER>.npz`` by the search order (``flag`` first)."""
    def lookup(gender: str) -> Path:
        return smpl_model_file(flag, gender)
    return lookup


def find_checkpoint(flag=None) -> Lookup:
    """Find the Pose2Pose checkpoint; a stand-in only if no real one is in that place."""
    places = _roots(flag, ENV_CHECKPOINT)
    for place in places:
        hit = _first_file(place, CHECKPOINT_SUBDIR, CHECKPOINT_NAMES + (STANDIN_CHECKPOINT_NAME,))
        if hit is not None:
            return Lookup("Pose2Pose checkpoint", hit, place.origin,
                          hit.name == STANDIN_CHECKPOINT_NAME, places, source=CHECKPOINT_SOURCE)
        if _explicit(place):
            return _miss("Pose2Pose checkpoint", place, places, "a checkpoint file",
                         CHECKPOINT_SOURCE)
    return Lookup("Pose2Pose checkpoint", None, None, False, places,
                  install_to=user_data_dir() / CHECKPOINT_SUBDIR / CHECKPOINT_NAMES[0],
                  source=CHECKPOINT_SOURCE)


def find_i2l_checkpoint(flag=None) -> Lookup:
    """Find the I2L-MeshNet checkpoint (``i2l_meshnet/snapshot_8.pth.tar``, ...); a
    stand-in only if no real one is in that place."""
    what = "I2L-MeshNet checkpoint"
    places = _roots(flag, ENV_I2L_CHECKPOINT)
    for place in places:
        hit = _first_file(place, I2L_CHECKPOINT_SUBDIR,
                          I2L_CHECKPOINT_NAMES + (STANDIN_CHECKPOINT_NAME,))
        if hit is not None:
            return Lookup(what, hit, place.origin, hit.name == STANDIN_CHECKPOINT_NAME, places,
                          source=I2L_CHECKPOINT_SOURCE)
        if _explicit(place):
            return _miss(what, place, places, "a checkpoint file", I2L_CHECKPOINT_SOURCE)
    return Lookup(what, None, None, False, places,
                  install_to=user_data_dir() / I2L_CHECKPOINT_SUBDIR / I2L_CHECKPOINT_NAMES[0],
                  source=I2L_CHECKPOINT_SOURCE)


def find_detector(flag=None) -> Lookup:
    places = _roots(flag, ENV_DETECTOR)
    for place in places:
        hit = _first_file(place, DETECTOR_SUBDIR, DETECTOR_NAMES + (STANDIN_DETECTOR_NAME,))
        if hit is not None:
            return Lookup("person detector", hit, place.origin,
                          hit.name == STANDIN_DETECTOR_NAME, places, source=DETECTOR_SOURCE)
        if _explicit(place):
            return _miss("person detector", place, places, "a detector weights file",
                         DETECTOR_SOURCE)
    return Lookup("person detector", None, None, False, places,
                  install_to=user_data_dir() / DETECTOR_SUBDIR / DETECTOR_NAMES[1],
                  source=DETECTOR_SOURCE)
