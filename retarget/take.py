# SPDX-License-Identifier: GPL-3.0-or-later
"""The take file ``p2p-take/1``: reader, validator and atomic writer (numpy only).

A take is what the estimator saw of ONE person in one piece of footage: one
row per processed frame. It is an ``.npz`` readable with ``allow_pickle=False``.

==================  ==========  =======================================================
array               shape       meaning
==================  ==========  =======================================================
format              ()  str     ``"p2p-take/1"``
fps                 ()  float   frame rate of the footage (frames per second)
frame_index         (T,) int    footage frame number of each row, strictly increasing
valid               (T,) bool   False where nobody was found (the row's values are junk)
person_id           ()  int     which person of the footage this take follows
image_size          (2,) int    footage size [W, H] in pixels
source              ()  str     the footage (video file, image or folder of images)
model               ()  str     checkpoint name and its sha256
standin             ()  bool    True when stand-in model files were used (motion is junk)
gender              ()  str     ``neutral``, ``male`` or ``female``: SMPL-X model file
global_orient       (T,3)       SMPL-X parameters, axis-angle radians, in the convention
body_pose           (T,63)      of ``smplx.SMPLX(use_pca=False, flat_hand_mean=True)``
left_hand_pose      (T,45)      (hand poses relative to the flat hand, not the mean hand)
right_hand_pose     (T,45)
jaw_pose            (T,3)
leye_pose           (T,3)
reye_pose           (T,3)
betas               (T,10)      body shape
expression          (T,10)      face expression
transl              (T,3)       metres, in the camera frame (OpenCV: x right, y down,
                                z forward); camera at the origin
focal               (2,)        camera intrinsics in pixels [fx, fy]
princpt             (2,)        principal point in pixels [cx, cy]
cam_trans           (T,3)       raw network outputs, kept for diagnosis
bbox_xywh           (T,4)
lhand_bbox          (T,4)
rhand_bbox          (T,4)
face_bbox           (T,4)
joints_2d           (T,65,3)    x, y in pixels and a confidence
score               (T,)        detection score
==================  ==========  =======================================================

Float arrays are float32 or float64; every float in a valid row is finite.
``read_take`` also reads other SMPL-X ``.npz`` files that use these parameter
names, or AMASS's (``root_orient``, ``pose_body``, ``pose_hand``, ``trans``,
``mocap_frame_rate``, ...), filling missing metadata with defaults that it
lists in ``Take.notes``.

Limits (checked by ``validate_take_arrays``, so reading, writing, ``convert``,
``export`` and the add-on's import all refuse the same files with one line):

* **frame span** ``frame_index[-1] - frame_index[0] + 1`` at most
  ``MAX_FRAME_SPAN`` = 1,048,574 frames: Blender's last frame (MAXFRAME; a row
  lands on Blender frame ``1 + frame_index - frame_index[0]``). ``frame_index``
  values are 0 .. 2**31-1. So a take has at most 1,048,574 rows.
* **values in valid rows**: ``transl`` within +-1e4 m; the pose parameters
  within +-1e3 rad; ``betas`` and ``expression`` within +-100. (Finite in
  float64 is not enough: 1e300 overflows to inf in Blender's float32 keys.)
* **scalars**: ``fps`` 0.01 .. 1000 (``common.options.FPS``, the range of
  ``--fps``); ``person_id`` 0 .. 2**31-1; text at most 65,536 characters.
* **camera**: ``image_size`` whole numbers 1 .. 65,535 px; ``focal`` positive,
  at most 1e7 px and at least ``W / 36`` (Blender's 1 mm lens on a 36 mm
  sensor); ``fy / fx`` within 1/200 .. 200 (Blender's pixel aspect);
  ``princpt`` within +-1e7 px (``retarget.camera.camera_problems``).

Reading checks every ``.npy`` header first (``common.npz``), before any data is
read: object (pickled) arrays are refused; the row count T comes from
``frame_index``'s header; every per-frame array must declare T rows and its
documented columns and dtype kind; scalars must be scalars; each array at most
``MAX_MEMBER_BYTES`` (1 GiB) and not shorter in the file than its header
says. Other SMPL-X / AMASS files: only the arrays used are read, each checked
the same way (at most ``MAX_FRAME_SPAN`` rows, known columns, 1 GiB).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

import numpy as np

from .errors import OutputExistsError, TakeError

TAKE_FORMAT = "p2p-take/1"
GENDERS = ("neutral", "male", "female")

# SMPL-X parameters: name -> columns per frame.
PARAM_COLUMNS = {
    "global_orient": 3, "body_pose": 63, "left_hand_pose": 45, "right_hand_pose": 45,
    "jaw_pose": 3, "leye_pose": 3, "reye_pose": 3, "betas": 10, "expression": 10, "transl": 3,
}
POSE_PARAMS = ("global_orient", "body_pose", "left_hand_pose", "right_hand_pose",
               "jaw_pose", "leye_pose", "reye_pose")
# Raw network outputs: name -> per-frame shape.
RAW_SHAPES = {
    "cam_trans": (3,), "bbox_xywh": (4,), "lhand_bbox": (4,), "rhand_bbox": (4,),
    "face_bbox": (4,), "joints_2d": (65, 3), "score": (),
}
META_KEYS = ("format", "fps", "frame_index", "valid", "person_id", "image_size", "source",
             "model", "standin", "gender", "focal", "princpt")
TAKE_KEYS = META_KEYS + tuple(PARAM_COLUMNS) + tuple(RAW_SHAPES)
DEFAULT_FPS = 30.0

# Limits: see the module docstring (one place).
MAX_FRAME_SPAN = 1_048_574        # Blender's MAXFRAME
MAX_FRAME_NUMBER = 2**31 - 1
MAX_MEMBER_BYTES = 2**30          # one array of a take / SMPL-X parameter file
MAX_TEXT_CHARS = 65_536
VALUE_LIMITS = {"transl": (1e4, "m")}
VALUE_LIMITS.update({k: (1e3, "rad") for k in POSE_PARAMS})
VALUE_LIMITS.update({"betas": (100.0, ""), "expression": (100.0, "")})


@dataclass
class Take:
    """One person's take in memory. ``params`` maps PARAM_COLUMNS names to ``(T, n)`` arrays."""

    fps: float
    frame_index: np.ndarray            # (T,) int64
    valid: np.ndarray                  # (T,) bool
    params: dict                       # name -> (T, n) float
    person_id: int = 0
    image_size: np.ndarray | None = None   # (2,) [W, H]; None when unknown
    focal: np.ndarray | None = None        # (2,)
    princpt: np.ndarray | None = None      # (2,)
    source: str = ""
    model: str = ""
    standin: bool = False
    gender: str = "neutral"
    raw: dict = field(default_factory=dict)  # RAW_SHAPES name -> array (may be empty)
    path: Path | None = None
    notes: list = field(default_factory=list)  # what the reader filled in or changed

    @property
    def num_frames(self) -> int:
        return int(self.frame_index.shape[0])

    @property
    def stride(self) -> int:
        """Footage frames between rows (median step of frame_index; 1 for one row)."""
        if self.num_frames < 2:
            return 1
        return max(1, int(np.median(np.diff(self.frame_index))))

    def with_params(self, params: Mapping) -> "Take":
        """A copy with some parameter arrays replaced (e.g. smoothed)."""
        new = dict(self.params)
        new.update(params)
        return replace(self, params=new, notes=list(self.notes))

    def to_arrays(self) -> dict:
        """The ``p2p-take/1`` arrays of this take (for ``write_take``)."""
        out = {"format": TAKE_FORMAT, "fps": float(self.fps), "frame_index": self.frame_index,
               "valid": self.valid, "person_id": int(self.person_id),
               "source": self.source, "model": self.model, "standin": bool(self.standin),
               "gender": self.gender}
        for k in ("image_size", "focal", "princpt"):
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        out.update(self.params)
        out.update(self.raw)
        return out


# --------------------------------------------------------------------------- validation

def _is_float(a: np.ndarray) -> bool:
    return a.dtype.kind == "f"


def _first_bad_row(a: np.ndarray, valid: np.ndarray) -> int | None:
    bad = ~np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1) & valid
    return int(np.argmax(bad)) if bad.any() else None


def _scalar(arrays, key, kinds):
    a = np.asarray(arrays[key])
    if a.shape != () or a.dtype.kind not in kinds:
        return None
    return a[()]


_SCALAR_KINDS = {"format": ("U", "a string"), "fps": ("fiu", "a number"),
                 "person_id": ("iu", "an integer"), "source": ("U", "a string"),
                 "model": ("U", "a string"), "standin": ("b", "a bool"),
                 "gender": ("U", "a string")}


def _dtype_ok(dtype: np.dtype, kinds: str) -> bool:
    return dtype.kind in kinds and not dtype.hasobject and (dtype.kind == "U" or
                                                            dtype.itemsize <= 8)


def layout_problems(layout: Mapping, require_all: bool = True) -> list[str]:
    """Shape and dtype problems of a take's arrays, one line each ([] if none).

    ``layout``: ``{name: (shape, dtype)}`` -- from ``.npy`` headers (nothing read
    yet) or from arrays in memory; the same rules either way. The row count T is
    ``frame_index``'s length. Checks names, shapes (T rows, documented columns),
    dtype kinds, T <= MAX_FRAME_SPAN and text lengths; not values.
    """
    problems: list[str] = []
    missing = [k for k in TAKE_KEYS if k not in layout]
    if require_all and missing:
        problems.append(f"missing arrays: {', '.join(missing)}")
    for key, (kinds, what) in _SCALAR_KINDS.items():
        if key not in layout:
            continue
        shape, dtype = layout[key]
        if tuple(shape) != () or not _dtype_ok(dtype, kinds):
            if key == "fps":
                problems.append(f"fps must be a positive number, got shape {tuple(shape)} "
                                f"dtype {dtype}")
            else:
                problems.append(f"{key} must be {what}, got shape {tuple(shape)} dtype {dtype}")
        elif dtype.kind == "U" and dtype.itemsize // 4 > MAX_TEXT_CHARS:
            problems.append(f"{key} is longer than {MAX_TEXT_CHARS:,} characters")
    if "frame_index" not in layout:
        return problems or ["missing array frame_index"]
    shape, dtype = layout["frame_index"]
    if len(shape) != 1 or not _dtype_ok(dtype, "iu"):
        return problems + [f"frame_index must be a 1-D integer array, got shape {tuple(shape)} "
                           f"dtype {dtype}"]
    T = int(shape[0])
    if T == 0:
        return problems + ["the take has no frames (frame_index is empty)"]
    if T > MAX_FRAME_SPAN:
        return problems + [f"the take has {T:,} rows; at most {MAX_FRAME_SPAN:,} (Blender's "
                           "last frame) are supported"]
    if "valid" in layout:
        shape, dtype = layout["valid"]
        if tuple(shape) != (T,) or dtype != np.bool_:
            problems.append(f"valid must be a bool array of shape ({T},), got shape "
                            f"{tuple(shape)} dtype {dtype}")
    per_frame = {k: (c,) for k, c in PARAM_COLUMNS.items()}
    per_frame.update(RAW_SHAPES)
    for key, row in per_frame.items():
        if key not in layout:
            continue
        shape, dtype = layout[key]
        want = (T,) + tuple(row)
        if tuple(shape) != want:
            problems.append(f"{key} has shape {tuple(shape)}, expected {want}")
        elif not _dtype_ok(dtype, "f"):
            problems.append(f"{key} has dtype {dtype}, expected float32 or float64")
    for key in ("focal", "princpt", "image_size"):
        if key not in layout:
            continue
        shape, dtype = layout[key]
        if tuple(shape) != (2,) or not _dtype_ok(dtype, "fiu"):
            problems.append(f"{key} must be 2 finite numbers, got shape {tuple(shape)} "
                            f"dtype {dtype}")
    return problems


def _layout(arrays: Mapping) -> dict:
    out = {}
    for k, v in arrays.items():
        a = v if isinstance(v, np.ndarray) else np.asarray(v)
        out[k] = (a.shape, a.dtype)
    return out


def validate_take_arrays(arrays: Mapping, require_all: bool = True) -> list[str]:
    """Problems of a ``p2p-take/1`` array set, one line each ([] if none).

    ``require_all=False`` skips the check that every TAKE_KEYS array exists
    (used for the optional raw outputs of files that are not takes). Shapes
    and dtypes first (``layout_problems``), then values: frame order and span
    (``MAX_FRAME_SPAN``), finite and bounded parameters in valid rows
    (``VALUE_LIMITS``), fps, camera and scalar ranges (module docstring).
    """
    from ..common.options import FPS
    from .camera import camera_problems

    layout = _layout(arrays)
    problems = layout_problems(layout, require_all)
    bad = {p.split(" ", 1)[0] for p in problems}  # arrays already found wrong
    if "format" in arrays and "format" not in bad:
        fmt = _scalar(arrays, "format", "U")
        if fmt != TAKE_FORMAT:
            problems.append(f"format is {fmt!r}, expected {TAKE_FORMAT!r}")
    if "fps" in arrays and "fps" not in bad:
        fps = _scalar(arrays, "fps", "fiu")
        if fps is None or not np.isfinite(fps) or fps <= 0:
            problems.append(f"fps must be a positive number, got {np.asarray(arrays['fps'])!r}")
        else:
            _, why = FPS.problem(float(fps))
            if why is not None:
                problems.append(f"fps {float(fps):g} is {why}")
    if "frame_index" not in arrays or "frame_index" in bad or "the" in bad:
        return problems
    fi = np.asarray(arrays["frame_index"])
    T = fi.shape[0]
    if (fi < 0).any():
        problems.append("frame_index has negative values")
        return problems
    first, last = int(fi[0]), int(fi[-1])
    if T > 1 and (fi[1:] <= fi[:-1]).any():
        at = int(np.argmax(fi[1:] <= fi[:-1])) + 1
        problems.append(f"frame_index must be strictly increasing (row {at}: {fi[at - 1]} "
                        f"then {fi[at]})")
        return problems
    span = last - first + 1
    if span > MAX_FRAME_SPAN:
        problems.append(f"the take spans {span:,} frames (frame_index {first:,} .. {last:,}); "
                        f"at most {MAX_FRAME_SPAN:,} frames (Blender's last frame) are "
                        "supported")
        return problems
    if last > MAX_FRAME_NUMBER:
        problems.append(f"frame_index values must be 0 .. {MAX_FRAME_NUMBER:,}, got {last:,}")
        return problems
    fi = fi.astype(np.int64)
    valid = np.ones(T, bool)
    if "valid" in arrays and "valid" not in bad:
        valid = np.asarray(arrays["valid"])
    for key in PARAM_COLUMNS:
        if key not in arrays or key in bad:
            continue
        a = np.asarray(arrays[key])
        row = _first_bad_row(a, valid)
        if row is not None:
            problems.append(f"{key} has NaN or infinite values in valid frames "
                            f"(first at row {row}, frame {fi[row]})")
            continue
        limit, unit = VALUE_LIMITS[key]
        with np.errstate(invalid="ignore"):
            over = (np.abs(a) > limit).any(axis=1) & valid
        if over.any():
            row = int(np.argmax(over))
            unit = f" {unit}" if unit else ""
            problems.append(f"{key} has values beyond +-{limit:g}{unit} in valid frames "
                            f"(first at row {row}, frame {fi[row]}: "
                            f"{float(np.abs(a[row]).max()):.3g})")
    cam = {}
    for key in ("focal", "princpt", "image_size"):
        if key not in arrays or key in bad:
            continue
        a = np.asarray(arrays[key])
        if not np.isfinite(a).all():
            problems.append(f"{key} must be 2 finite numbers, got {a.tolist()}")
        elif key != "princpt" and (a <= 0).any():
            problems.append(f"{key} must be positive, got {a.tolist()}")
        else:
            cam[key] = a
    if len(cam) == 3:
        problems += camera_problems(cam["focal"], cam["princpt"], cam["image_size"])
    if "person_id" in arrays and "person_id" not in bad:
        pid = int(_scalar(arrays, "person_id", "iu"))
        if not 0 <= pid <= MAX_FRAME_NUMBER:
            problems.append(f"person_id must be 0 .. {MAX_FRAME_NUMBER:,}, got {pid}")
    if "gender" in arrays and "gender" not in bad:
        g = _scalar(arrays, "gender", "U")
        if g is not None and str(g) not in GENDERS:
            problems.append(f"gender is {str(g)!r}, expected one of {', '.join(GENDERS)}")
    return problems


def validate_take(arrays: Mapping, name: str = "take") -> None:
    """Raise TakeError with the first problem (and how many more) if any."""
    _raise_first(name, validate_take_arrays(arrays))


def _raise_first(name: str, problems: list[str]) -> None:
    if problems:
        n = len(problems) - 1
        more = f" (and {n} more problem{'s' if n > 1 else ''})" if n else ""
        raise TakeError(f"{name}: {problems[0]}{more}")


# --------------------------------------------------------------------------- reading

def _members(path: Path) -> dict:
    """``{name: common.npz.Member}`` from the headers only (no data read)."""
    from ..common.npz import npz_members

    return npz_members(path, error=TakeError)


def _read(path: Path, members: Mapping, names) -> dict:
    """Data of ``names``: sizes checked against the headers first, no pickle ever."""
    from ..common.npz import check_sizes, read_members

    names = list(names)
    check_sizes(path, {n: members[n] for n in names}, max_member_bytes=MAX_MEMBER_BYTES,
                error=TakeError)
    return read_members(path, members, names, error=TakeError)


def _load_take_npz(path: Path, members: Mapping) -> dict:
    """The arrays of a ``p2p-take/1`` file, every header checked before any data is read.

    Arrays with other names are ignored (never read); object arrays anywhere are refused.
    """
    from ..common.npz import refuse_unsafe

    refuse_unsafe(path, members, error=TakeError,
                  what="take files must be readable without pickle")
    layout = {k: (m.shape, m.dtype) for k, m in members.items() if k in TAKE_KEYS}
    _raise_first(path.name, layout_problems(layout))
    return _read(path, members, [k for k in TAKE_KEYS if k in members])


def _load_npz(path: Path) -> dict:
    """Every array of a take file (headers checked first); kept for callers of old."""
    if not path.is_file():
        raise TakeError(f"{path}: no such file")
    return _load_take_npz(path, _members(path))


def _take_from_take_arrays(a: dict, path: Path | None) -> Take:
    return Take(
        fps=float(a["fps"]), frame_index=np.asarray(a["frame_index"]).astype(np.int64),
        valid=np.asarray(a["valid"]).astype(bool),
        params={k: np.asarray(a[k]) for k in PARAM_COLUMNS},
        person_id=int(a["person_id"]), image_size=np.asarray(a["image_size"]).astype(np.int64),
        focal=np.asarray(a["focal"], dtype=np.float64),
        princpt=np.asarray(a["princpt"], dtype=np.float64),
        source=str(a["source"]), model=str(a["model"]), standin=bool(a["standin"]),
        gender=str(a["gender"]), raw={k: np.asarray(a[k]) for k in RAW_SHAPES}, path=path)


_AMASS_SPLITS = {  # AMASS SMPL-X key -> [(take key, columns)]
    "root_orient": [("global_orient", 3)], "pose_body": [("body_pose", 63)],
    "pose_hand": [("left_hand_pose", 45), ("right_hand_pose", 45)],
    "pose_jaw": [("jaw_pose", 3)], "pose_eye": [("leye_pose", 3), ("reye_pose", 3)],
    "trans": [("transl", 3)],
}
_FULL_POSE_SPLIT = [("global_orient", 3), ("body_pose", 63), ("jaw_pose", 3), ("leye_pose", 3),
                    ("reye_pose", 3), ("left_hand_pose", 45), ("right_hand_pose", 45)]
_FPS_KEYS = ("fps", "mocap_frame_rate", "mocap_framerate", "frame_rate")
# Per-frame arrays other SMPL-X files may hold: name -> values per row (``poses``: 156 is
# SMPL-H, refused with its own message after reading the header).
_SMPLX_ROW_SIZES = {k: (c,) for k, c in PARAM_COLUMNS.items() if k not in ("betas",
                                                                          "expression")}
_SMPLX_ROW_SIZES.update({k: (sum(c for _, c in parts),) for k, parts in _AMASS_SPLITS.items()})
_SMPLX_ROW_SIZES["poses"] = (165, 156)
MAX_SHAPE_COMPONENTS = 400   # betas / expression components per row (SMPL-X has 300 / 100)


def _smplx_members_to_read(path: Path, members: Mapping) -> list[str]:
    """The arrays of a non-take SMPL-X / AMASS file that ``_take_from_smplx_arrays`` uses,
    after checking their headers: no object arrays, at most MAX_FRAME_SPAN rows, the
    known values per row, scalars for fps / gender. Other arrays are never read."""
    import math

    name = path.name
    use = [k for k in members if k in _SMPLX_ROW_SIZES or k in ("betas", "expression",
                                                                "gender") or k in _FPS_KEYS]
    skip: set = set()
    for k in use:
        m = members[k]
        if m.is_object:
            raise TakeError(f"{name}: array '{k}' holds pickled Python objects; refusing it "
                            "(it could run code when read)")
        if k in _FPS_KEYS:
            if math.prod(m.shape) != 1 or not _dtype_ok(m.dtype, "fiu"):
                raise TakeError(f"{name}: {k} must be one number, got shape {m.shape} "
                                f"dtype {m.dtype}")
            continue
        if k == "gender":
            if math.prod(m.shape) != 1 or m.dtype.kind not in "US" or m.dtype.itemsize > 4096:
                raise TakeError(f"{name}: gender must be one short string, got shape "
                                f"{m.shape} dtype {m.dtype}")
            continue
        if not _dtype_ok(m.dtype, "fiu"):
            raise TakeError(f"{name}: {k} has dtype {m.dtype}, expected numbers")
        shape = m.shape
        if k in ("betas", "expression"):
            per_row = shape[-1] if shape else 0
            if len(shape) not in (1, 2) or not 1 <= per_row <= MAX_SHAPE_COMPONENTS:
                raise TakeError(f"{name}: {k} has shape {shape}; expected (n,) or (T, n) with "
                                f"n 1 .. {MAX_SHAPE_COMPONENTS}")
            rows = shape[0] if len(shape) == 2 else 1
        else:
            if len(shape) < 1:
                raise TakeError(f"{name}: {k} has shape {shape}, expected one row per frame")
            rows = shape[0]
            per_row = math.prod(shape[1:])
            if per_row not in _SMPLX_ROW_SIZES[k]:
                if k == "poses" and ("global_orient" in members or "root_orient" in members):
                    skip.add(k)  # not needed: the separate arrays are used
                    continue
                if k == "poses":
                    raise TakeError(f"{name}: 'poses' has {per_row} columns; SMPL-X has 165 "
                                    "(156 would be SMPL-H, which this rig does not read)")
                raise TakeError(f"{name}: {k} has shape {shape}, expected ({rows}, "
                                f"{_SMPLX_ROW_SIZES[k][0]})")
        if rows > MAX_FRAME_SPAN:
            raise TakeError(f"{name}: {k} has {rows:,} rows; at most {MAX_FRAME_SPAN:,} "
                            "(Blender's last frame) are supported")
    return [k for k in use if k not in skip]


def _take_from_smplx_arrays(a: dict, path: Path) -> Take:
    """Any SMPL-X parameter file: our names, AMASS names, or a ``poses`` (T,165) array."""
    notes: list[str] = []
    src: dict[str, np.ndarray] = {}
    for k in PARAM_COLUMNS:
        if k in a:
            src[k] = np.asarray(a[k])
    amass = False
    for k, parts in _AMASS_SPLITS.items():
        if k in a and parts[0][0] not in src:
            amass = True
            arr = np.asarray(a[k], dtype=np.float64)
            arr = arr.reshape(arr.shape[0], -1)
            start = 0
            for name, cols in parts:
                src[name] = arr[:, start:start + cols]
                start += cols
    if "global_orient" not in src and "poses" in a:
        poses = np.asarray(a["poses"], dtype=np.float64)
        poses = poses.reshape(poses.shape[0], -1)
        if poses.shape[1] != 165:
            raise TakeError(f"{path.name}: 'poses' has {poses.shape[1]} columns; SMPL-X has 165 "
                            "(156 would be SMPL-H, which this rig does not read)")
        amass = True
        start = 0
        for name, cols in _FULL_POSE_SPLIT:
            src[name] = poses[:, start:start + cols]
            start += cols
    if "global_orient" not in src or "body_pose" not in src:
        raise TakeError(f"{path.name}: neither a {TAKE_FORMAT} file nor SMPL-X parameters "
                        "(no global_orient/body_pose, root_orient/pose_body or poses arrays)")
    T = np.asarray(src["global_orient"]).reshape(-1, 3).shape[0]
    if T == 0:
        raise TakeError(f"{path.name}: the file has no frames")
    params = {}
    for k, cols in PARAM_COLUMNS.items():
        if k not in src:
            params[k] = np.zeros((T, cols))
            notes.append(f"no {k}: zeros used")
            continue
        v = np.asarray(src[k], dtype=np.float64)
        if k in ("betas", "expression"):
            v = v.reshape(-1, v.shape[-1]) if v.ndim > 1 else v[None]
            if v.shape[-1] < cols:
                v = np.concatenate([v, np.zeros(v.shape[:-1] + (cols - v.shape[-1],))], -1)
                notes.append(f"{k} has fewer than {cols} components: padded with zeros")
            elif v.shape[-1] > cols:
                notes.append(f"{k} has {v.shape[-1]} components: the first {cols} are used")
                v = v[..., :cols]
            if v.shape[0] == 1 and T > 1:
                v = np.repeat(v, T, axis=0)
        else:
            v = v.reshape(v.shape[0], -1)
        if v.shape != (T, cols):
            raise TakeError(f"{path.name}: {k} has shape {v.shape}, expected ({T}, {cols})")
        params[k] = v
    fps = None
    for k in _FPS_KEYS:
        if k in a and np.asarray(a[k]).size == 1:
            fps = float(np.asarray(a[k]).reshape(()))
            break
    if fps is None or not np.isfinite(fps) or fps <= 0:
        fps = DEFAULT_FPS
        notes.append(f"no frame rate in the file: {DEFAULT_FPS:g} fps assumed")
    gender = "neutral"
    if "gender" in a and np.asarray(a["gender"]).dtype.kind in "US":
        g = np.asarray(a["gender"]).reshape(())[()]
        g = (g.decode("utf-8", "replace") if isinstance(g, bytes) else str(g)).lower()
        if g in GENDERS:
            gender = g
        else:
            notes.append(f"gender {g[:40]!r} not known: neutral used")
    else:
        notes.append("no gender in the file: the neutral model is used")
    finite = np.ones(T, bool)
    for v in params.values():
        finite &= np.isfinite(v).all(axis=1)
    if not finite.all():
        notes.append(f"{int((~finite).sum())} frames with NaN values are treated as invalid")
    if amass:
        notes.append("AMASS-style file: its world frame is used as the camera frame "
                     "(AMASS is Z-up, so the body lies on its back in Blender)")
    notes.append("not a p2p-take/1 file: frame_index 0..T-1, all frames valid, "
                 "no camera intrinsics (a default camera is used)")
    return Take(fps=fps, frame_index=np.arange(T, dtype=np.int64), valid=finite,
                params=params, gender=gender, source="", model="", path=path,
                notes=notes)


def read_take(path) -> Take:
    """Read a take file (or another SMPL-X parameter ``.npz``) and validate it.

    Every array's header is checked (shape, dtype, size against the row count)
    before any data is read; see the module docstring. Raises TakeError with
    one line naming the file and the problem.
    """
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise TakeError(f"{path}: a take is an .npz file")
    if not path.is_file():
        raise TakeError(f"{path}: no such file")
    members = _members(path)
    if "format" in members:
        arrays = _load_take_npz(path, members)
        validate_take(arrays, path.name)
        return _take_from_take_arrays(arrays, path)
    arrays = _read(path, members, _smplx_members_to_read(path, members))
    take = _take_from_smplx_arrays(arrays, path)
    problems = validate_take_arrays(take.to_arrays(), require_all=False)
    if problems:
        raise TakeError(f"{path.name}: {problems[0]}")
    return take


# --------------------------------------------------------------------------- writing

def _normalise_for_writing(arrays: Mapping) -> dict:
    out = {}
    for k, v in arrays.items():
        if k not in TAKE_KEYS:
            raise TakeError(f"unknown take array {k!r} (known: {', '.join(TAKE_KEYS)})")
        if isinstance(v, (str, np.str_)):
            out[k] = np.array(str(v))
        elif isinstance(v, (bool, np.bool_)):
            out[k] = np.array(bool(v))
        else:
            a = np.asarray(v)
            if k in PARAM_COLUMNS or k in RAW_SHAPES or k in ("focal", "princpt"):
                if a.dtype.kind in "iub":
                    a = a.astype(np.float32)
                if k in ("focal", "princpt"):
                    a = a.astype(np.float64)
            elif k == "frame_index":
                a = a.astype(np.int64) if a.dtype.kind in "iu" else a
            elif k == "image_size":
                a = a.astype(np.int64) if a.dtype.kind in "iuf" and np.all(a == np.round(a)) else a
            elif k == "fps":
                a = a.astype(np.float64) if a.dtype.kind in "iuf" else a
            elif k == "person_id":
                a = a.astype(np.int64) if a.dtype.kind in "iu" else a
            out[k] = a
    out["format"] = np.array(TAKE_FORMAT)
    return out


def _npz_bytes(data: Mapping) -> bytes:
    """The compressed ``.npz`` of ``data`` in memory.

    (Written to the file in one call afterwards: ``np.savez_compressed`` onto a
    full disk leaves a half-closed ZipFile whose ``__del__`` prints "Exception
    ignored in ZipFile.__del__" to the terminal.)
    """
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **data)
    return buf.getvalue()


def write_take(path, arrays: Mapping, *, overwrite: bool = False, numbered: bool = False) -> Path:
    """Validate and write a ``p2p-take/1`` file atomically; return the path written.

    ``arrays``: every key of TAKE_KEYS except ``format`` (added here); Python
    strings/bools/numbers are accepted for the scalars. The file is written to
    a hidden temporary name in the same folder and committed in one step
    (``common.files.atomic_write``), so readers never see half a file and a
    file that appears meanwhile is never replaced. An existing file is refused
    unless ``overwrite``; with ``numbered`` (a default name) the next free
    ``clip.take-2.npz``, ``clip.take-3.npz`` ... is written instead. Raises
    TakeError / OutputExistsError / OutputWriteError (disk full, read-only)
    with one line.
    """
    from ..common.errors import OutputExistsError as _AnyOutputExists
    from ..common.files import atomic_write

    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise TakeError(f"{path}: a take file name must end in .npz")
    if isinstance(arrays, Take):
        arrays = arrays.to_arrays()
    data = _normalise_for_writing(arrays)
    validate_take(data, path.name)
    if not overwrite and not numbered and os.path.lexists(path):
        raise OutputExistsError(f"{path} exists; not overwriting it")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise TakeError(f"{folder}: no such folder")
    blob = _npz_bytes(data)

    def write(tmp: Path) -> None:
        with open(tmp, "xb") as fh:
            fh.write(blob)

    try:
        return atomic_write(path, write, replace=overwrite, numbered=numbered, suffix=".npz")
    except _AnyOutputExists as exc:
        if isinstance(exc, OutputExistsError):
            raise
        raise OutputExistsError(str(exc)) from None
