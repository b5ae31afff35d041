# SPDX-License-Identifier: GPL-3.0-or-later
"""The take file ``p2p-take/2``: reader, validator, serializer and atomic writer (numpy only).

A take is what an estimator saw of ONE person in one piece of footage: one
row per processed frame. It is an ``.npz`` readable with ``allow_pickle=False``.
It has a **core** every take has, whatever estimator made it, and optional
**raw** arrays that only some estimators have.

Core (required):

==================  ==========  =======================================================
array               shape       meaning
==================  ==========  =======================================================
format              ()  str     ``"p2p-take/2"``
fps                 ()  float   frame rate of the rows (frames per second)
frame_index         (T,) int    footage frame number of each row, strictly increasing
valid               (T,) bool   False where nobody was found (the row's values are junk)
person_id           ()  int     which person of the footage this take follows
source              ()  str     the footage (video file, image or folder of images)
estimator           ()  str     the estimator's registry name (``"pose2pose"``); may be ""
model               ()  str     the estimator's weights: file name and sha256
standin             ()  bool    True when stand-in model files were used (motion is junk)
body_model          ()  str     ``"smplx"`` or ``"smpl"``: which parameter set follows
gender              ()  str     ``neutral``, ``male`` or ``female``: the body model file
image_size          (2,) int    footage size [W, H] in pixels          } the camera: all
focal               (2,)        camera intrinsics in pixels [fx, fy]    } three or none
princpt             (2,)        principal point in pixels [cx, cy]     } (see below)
==================  ==========  =======================================================

Body-model parameters (required; ``BODY_MODELS``), axis-angle radians:

* ``smplx``: ``global_orient`` (T,3), ``body_pose`` (T,63), ``left_hand_pose``,
  ``right_hand_pose`` (T,45) each, ``jaw_pose``, ``leye_pose``, ``reye_pose``
  (T,3) each, ``betas`` (T,10), ``expression`` (T,10), ``transl`` (T,3); in the
  convention of ``smplx.SMPLX(use_pca=False, flat_hand_mean=True)`` (hand
  poses relative to the flat hand, not the mean hand);
* ``smpl``: ``global_orient`` (T,3), ``body_pose`` (T,69), ``betas`` (T,10),
  ``transl`` (T,3) (``smplx.SMPL``); it becomes the 24-bone SMPL rig
  (``docs/smpl.md``).

``transl`` is in metres in the camera frame (OpenCV: x right, y down, z
forward; camera at the origin). The camera arrays are written by every
estimator; a take made from an SMPL-X parameter file (AMASS, ...) has none,
then all three are absent and a default camera is used.

Optional (format 2): ``clean_settings`` ()  str, the JSON of the clean-up
(``retarget.cleanup.clean``) that made this take from its ``raw_source_*`` arrays.

Raw (optional): any number of arrays named ``raw_<name>`` (``<name>``: letters,
digits, ``_``; at most ``MAX_RAW_ARRAYS``), one row per frame (first dimension
T, at most ``MAX_RAW_DIMS`` dimensions), any numeric or bool dtype, values not
checked (they are for diagnosis). Pose2Pose writes ``raw_cam_trans`` (T,3),
``raw_bbox_xywh``, ``raw_lhand_bbox``, ``raw_rhand_bbox``, ``raw_face_bbox``
(T,4), ``raw_joints_2d`` (T,65,3) and ``raw_score`` (T,); every estimator
writes ``raw_bbox_xywh``, ``raw_joints_2d`` (T,J,3) and ``raw_score``. A cleaned
take (``retarget.cleanup.clean``) keeps what it came from as ``raw_source_<param>``
(each parameter array before clean-up) and ``raw_source_valid`` (T,) bool. In
memory (``Take.raw``) they are named without the prefix.

**Format 1** (``p2p-take/1``, written before) is read too: the same core
without ``estimator`` and ``body_model`` (read as ``"pose2pose"`` and
``"smplx"``), all of it required, and the raw arrays under their own names
(``cam_trans`` (T,3), ``bbox_xywh``, ``lhand_bbox``, ``rhand_bbox``,
``face_bbox`` (T,4), ``joints_2d`` (T,65,3), ``score`` (T,), float; read as
``raw_cam_trans`` ...). Takes are always written as format 2.

Float arrays are float32 or float64; every parameter in a valid row is finite.
``read_take`` also reads other SMPL-X ``.npz`` files that use these parameter
names, or AMASS's (``root_orient``, ``pose_body``, ``pose_hand``, ``trans``,
``mocap_frame_rate``, ...), filling missing metadata with defaults that it
lists in ``Take.notes``. AMASS-style files (AMASS names or ``poses`` (T,165))
are in AMASS's Z-up world: their root is turned into our camera frame
(Blender world = AMASS world; ``retarget.amass``, ``docs/amass.md``).

**One serializer.** ``Take.to_arrays`` / ``Take.from_arrays`` (and
``take_to_bytes`` / ``take_from_bytes``, the ``.npz`` in memory) are what the
file writer, the copy of a take stored on a Blender rig and the worker's
smoothing request all use; reading bytes is checked exactly like a file.

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
* **raw arrays**: at most ``MAX_RAW_ARRAYS`` of them, each at most
  ``MAX_MEMBER_BYTES``.

Reading checks every ``.npy`` header first (``common.npz``), before any data is
read: object (pickled) arrays are refused; the row count T comes from
``frame_index``'s header; every per-frame array must declare T rows and its
documented columns and dtype kind; scalars must be scalars; each array at most
``MAX_MEMBER_BYTES`` (1 GiB) and not shorter in the file than its header
says. Only ``format`` and ``body_model`` (scalars, checked first) are read
before the other headers are checked, since they decide what the other
arrays must be. Arrays with other names are ignored, never read (``strict``
refuses them). Other SMPL-X / AMASS files: only the arrays used are read,
each checked the same way (at most ``MAX_FRAME_SPAN`` rows, known columns, 1 GiB).
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

import numpy as np

from .errors import OutputExistsError, TakeError

TAKE_FORMAT = "p2p-take/2"          # what is written
TAKE_FORMAT_1 = "p2p-take/1"        # still read
TAKE_FORMATS = (TAKE_FORMAT_1, TAKE_FORMAT)
GENDERS = ("neutral", "male", "female")

# Body-model parameters: body model -> {name: columns per frame}.
BODY_MODELS = {
    "smplx": {"global_orient": 3, "body_pose": 63, "left_hand_pose": 45, "right_hand_pose": 45,
              "jaw_pose": 3, "leye_pose": 3, "reye_pose": 3, "betas": 10, "expression": 10,
              "transl": 3},
    "smpl": {"global_orient": 3, "body_pose": 69, "betas": 10, "transl": 3},
}
DEFAULT_BODY_MODEL = "smplx"
PARAM_COLUMNS = BODY_MODELS["smplx"]  # SMPL-X parameters: name -> columns per frame
POSE_PARAMS = ("global_orient", "body_pose", "left_hand_pose", "right_hand_pose",
               "jaw_pose", "leye_pose", "reye_pose")
RAW_PREFIX = "raw_"
# Format 1's raw network outputs (Pose2Pose's): name -> per-frame shape. Format 2
# stores them, optionally, as ``raw_<name>``.
RAW_SHAPES = {
    "cam_trans": (3,), "bbox_xywh": (4,), "lhand_bbox": (4,), "rhand_bbox": (4,),
    "face_bbox": (4,), "joints_2d": (65, 3), "score": (),
}
META_KEYS = ("format", "fps", "frame_index", "valid", "person_id", "source", "estimator",
             "model", "standin", "body_model", "gender")
CAMERA_KEYS = ("image_size", "focal", "princpt")
OPTIONAL_KEYS = ("clean_settings",)   # optional scalars (format 2): the clean-up's JSON
# The required arrays of an SMPL-X take (format 2); ``take_keys`` for the others.
TAKE_KEYS = META_KEYS + CAMERA_KEYS + tuple(PARAM_COLUMNS)
# Every array of a format-1 file (all required).
FORMAT_1_KEYS = (("format", "fps", "frame_index", "valid", "person_id", "image_size", "source",
                  "model", "standin", "gender", "focal", "princpt")
                 + tuple(PARAM_COLUMNS) + tuple(RAW_SHAPES))
FORMAT_1_ESTIMATOR = "pose2pose"    # the only estimator that wrote format 1
DEFAULT_FPS = 30.0

# Limits: see the module docstring (one place).
MAX_FRAME_SPAN = 1_048_574        # Blender's MAXFRAME
MAX_FRAME_NUMBER = 2**31 - 1
MAX_MEMBER_BYTES = 2**30          # one array of a take / SMPL-X parameter file
MAX_TEXT_CHARS = 65_536
MAX_RAW_ARRAYS = 64
MAX_RAW_DIMS = 4
_RAW_NAME = re.compile(r"raw_[A-Za-z0-9_]{1,64}")
VALUE_LIMITS = {"transl": (1e4, "m")}
VALUE_LIMITS.update({k: (1e3, "rad") for k in POSE_PARAMS})
VALUE_LIMITS.update({"betas": (100.0, ""), "expression": (100.0, "")})


def take_keys(fmt: str = TAKE_FORMAT, body_model: str = DEFAULT_BODY_MODEL) -> tuple:
    """The required arrays of a take of format ``fmt`` with ``body_model``'s parameters
    (format 2: the camera arrays may also be absent all three together)."""
    if fmt == TAKE_FORMAT_1:
        return FORMAT_1_KEYS
    return META_KEYS + CAMERA_KEYS + tuple(BODY_MODELS[body_model])


@dataclass
class Take:
    """One person's take in memory. ``params`` maps the body model's parameter names
    (``BODY_MODELS[body_model]``) to ``(T, n)`` arrays; ``raw`` the optional raw arrays
    (names without the ``raw_`` prefix) to ``(T, ...)`` arrays."""

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
    raw: dict = field(default_factory=dict)  # raw array name (no prefix) -> array (may be empty)
    path: Path | None = None
    notes: list = field(default_factory=list)  # what the reader filled in or changed
    estimator: str = ""                     # registry name of the estimator; "" unknown
    body_model: str = DEFAULT_BODY_MODEL    # "smplx" or "smpl"
    clean_settings: str = ""                # JSON of the clean-up that made it; "" none

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

    def without_raw(self) -> "Take":
        """A copy without the raw arrays (the core only)."""
        return replace(self, raw={}, notes=list(self.notes))

    def to_arrays(self, raw: bool = True) -> dict:
        """The ``p2p-take/2`` arrays of this take, as numpy arrays (not validated).

        The one serializer: ``write_take``, ``take_to_bytes`` (the copy on a Blender
        rig, the worker's smoothing request) all write these. ``raw=False``: the core
        only. The camera arrays are left out when the take has no camera.
        """
        out = {"format": TAKE_FORMAT, "fps": self.fps, "frame_index": self.frame_index,
               "valid": self.valid, "person_id": self.person_id, "source": self.source,
               "estimator": self.estimator, "model": self.model, "standin": self.standin,
               "body_model": self.body_model, "gender": self.gender}
        if self.clean_settings:
            out["clean_settings"] = self.clean_settings
        for k in CAMERA_KEYS:
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        out.update(self.params)
        if raw:
            out.update({RAW_PREFIX + k: v for k, v in self.raw.items()})
        return {k: _as_array(k, v, TAKE_FORMAT) for k, v in out.items()}

    @classmethod
    def from_arrays(cls, arrays: Mapping, *, path: Path | None = None,
                    name: str = "take") -> "Take":
        """The take of a ``p2p-take/2`` or ``p2p-take/1`` array set; validated first
        (raises TakeError with one line naming ``name``)."""
        validate_take(arrays, name)
        return _take_from_take_arrays(arrays, path)


# --------------------------------------------------------------------------- validation

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
                 "estimator": ("U", "a string"), "model": ("U", "a string"),
                 "standin": ("b", "a bool"), "body_model": ("U", "a string"),
                 "gender": ("U", "a string"), "clean_settings": ("U", "a string")}


def _dtype_ok(dtype: np.dtype, kinds: str) -> bool:
    return dtype.kind in kinds and not dtype.hasobject and (dtype.kind == "U" or
                                                            dtype.itemsize <= 8)


def _scalar_problems(layout: Mapping) -> list[str]:
    problems = []
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
    return problems


def _raw_layout_problems(layout: Mapping, T: int) -> list[str]:
    names = sorted(k for k in layout if k.startswith(RAW_PREFIX))
    if len(names) > MAX_RAW_ARRAYS:
        return [f"too many raw arrays: {len(names)}; at most {MAX_RAW_ARRAYS} are allowed"]
    problems = []
    for key in names:
        shape, dtype = layout[key]
        shape = tuple(shape)
        if not _RAW_NAME.fullmatch(key):
            problems.append(f"raw array name {key[:80]!r} is not raw_ and 1 to 64 letters, "
                            "digits or _")
        elif not 1 <= len(shape) <= MAX_RAW_DIMS or shape[0] != T:
            problems.append(f"{key} has shape {shape}, expected {T} rows (one per frame) and "
                            f"at most {MAX_RAW_DIMS} dimensions")
        elif not _dtype_ok(dtype, "biuf"):
            problems.append(f"{key} has dtype {dtype}, expected numbers or bools")
        elif math.prod(shape) * dtype.itemsize > MAX_MEMBER_BYTES:
            problems.append(f"{key} declares {shape} {dtype}, more than the "
                            f"{MAX_MEMBER_BYTES / 2**20:.0f} MiB an array may hold")
    return problems


def layout_problems(layout: Mapping, require_all: bool = True, *, fmt: str = TAKE_FORMAT,
                    body_model: str = DEFAULT_BODY_MODEL) -> list[str]:
    """Shape and dtype problems of a take's arrays, one line each ([] if none).

    ``layout``: ``{name: (shape, dtype)}`` -- from ``.npy`` headers (nothing read
    yet) or from arrays in memory; the same rules either way. ``fmt`` and
    ``body_model`` say which arrays it must have (``take_keys``); names it does
    not know are ignored. The row count T is ``frame_index``'s length. Checks
    names, shapes (T rows, documented columns), dtype kinds, T <= MAX_FRAME_SPAN,
    text lengths and the raw arrays' count, shapes and sizes; not values.
    """
    problems: list[str] = []
    missing = [k for k in take_keys(fmt, body_model) if k not in layout]
    if fmt != TAKE_FORMAT_1 and all(k in missing for k in CAMERA_KEYS):
        missing = [k for k in missing if k not in CAMERA_KEYS]  # no camera at all: allowed
    if require_all and missing:
        problems.append(f"missing arrays: {', '.join(missing)}")
    problems += _scalar_problems(layout)
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
    per_frame = {k: (c,) for k, c in BODY_MODELS[body_model].items()}
    if fmt == TAKE_FORMAT_1:
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
    for key in CAMERA_KEYS:
        if key not in layout:
            continue
        shape, dtype = layout[key]
        if tuple(shape) != (2,) or not _dtype_ok(dtype, "fiu"):
            problems.append(f"{key} must be 2 finite numbers, got shape {tuple(shape)} "
                            f"dtype {dtype}")
    if fmt != TAKE_FORMAT_1:
        problems += _raw_layout_problems(layout, T)
    return problems


def _layout(arrays: Mapping) -> dict:
    out = {}
    for k, v in arrays.items():
        a = v if isinstance(v, np.ndarray) else np.asarray(v)
        out[k] = (a.shape, a.dtype)
    return out


def _kind_of(arrays: Mapping) -> tuple[str, str, list[str]]:
    """(format, body model, problems) of an array set: what its other arrays must be.
    Without a (readable) ``format``: format 2; without ``body_model``: SMPL-X."""
    fmt, body_model, problems = TAKE_FORMAT, DEFAULT_BODY_MODEL, []
    if "format" in arrays:
        v = _scalar(arrays, "format", "U")
        if v is not None and str(v) in TAKE_FORMATS:
            fmt = str(v)
        elif v is not None:
            problems.append(f"format is {str(v)[:100]!r}, expected {TAKE_FORMAT!r} "
                            f"(or {TAKE_FORMAT_1!r})")
    if fmt != TAKE_FORMAT_1 and "body_model" in arrays:
        v = _scalar(arrays, "body_model", "U")
        if v is not None and str(v) in BODY_MODELS:
            body_model = str(v)
        elif v is not None:
            problems.append(f"body_model is {str(v)[:100]!r}, expected one of "
                            f"{', '.join(BODY_MODELS)}")
    return fmt, body_model, problems


def validate_take_arrays(arrays: Mapping, require_all: bool = True) -> list[str]:
    """Problems of a ``p2p-take/2`` (or ``p2p-take/1``) array set, one line each ([] if none).

    ``require_all=False`` skips the check that every required array exists
    (used for files that are not takes). ``format`` and ``body_model`` say which
    arrays are required (``take_keys``). Shapes and dtypes first
    (``layout_problems``), then values: frame order and span (``MAX_FRAME_SPAN``),
    finite and bounded parameters in valid rows (``VALUE_LIMITS``), fps, camera
    and scalar ranges (module docstring). Raw arrays' values are not checked.
    """
    from ..common.options import FPS
    from .camera import camera_problems

    fmt, body_model, problems = _kind_of(arrays)
    layout = _layout(arrays)
    problems += layout_problems(layout, require_all, fmt=fmt, body_model=body_model)
    bad = {p.split(" ", 1)[0] for p in problems}  # arrays already found wrong
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
    for key in BODY_MODELS[body_model]:
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

def _members(path) -> dict:
    """``{name: common.npz.Member}`` from the headers only (no data read).
    ``path``: a file, or ``common.npz.NpzBytes`` (an ``.npz`` in memory)."""
    from ..common.npz import npz_members

    return npz_members(path, error=TakeError)


def _read(path, members: Mapping, names) -> dict:
    """Data of ``names``: sizes checked against the headers first, no pickle ever."""
    from ..common.npz import check_sizes, read_members

    names = list(names)
    check_sizes(path, {n: members[n] for n in names}, max_member_bytes=MAX_MEMBER_BYTES,
                error=TakeError)
    return read_members(path, members, names, error=TakeError)


def _kind_of_members(path, members: Mapping) -> tuple[str, str]:
    """(format, body model) of a take file: their headers checked, then only they are read."""
    name = path.name
    heads = {k: (members[k].shape, members[k].dtype) for k in ("format", "body_model")
             if k in members}
    _raise_first(name, _scalar_problems(heads))
    fmt, body_model, problems = _kind_of(_read(path, members, heads))
    _raise_first(name, problems)
    return fmt, body_model


def _take_member_names(members: Mapping, fmt: str, body_model: str) -> list[str]:
    """The arrays of ``members`` that a take of this format and body model uses."""
    if fmt == TAKE_FORMAT_1:
        return [k for k in FORMAT_1_KEYS if k in members]
    core = [k for k in take_keys(fmt, body_model) + OPTIONAL_KEYS if k in members]
    return core + sorted(k for k in members if k.startswith(RAW_PREFIX))


def _load_take_npz(path, members: Mapping, strict: bool = False) -> dict:
    """The arrays of a take file, every header checked before any data is read.

    Arrays with other names are ignored (never read), or refused with ``strict``;
    object arrays anywhere are refused.
    """
    from ..common.npz import refuse_unsafe

    refuse_unsafe(path, members, error=TakeError,
                  what="take files must be readable without pickle")
    fmt, body_model = _kind_of_members(path, members)
    names = _take_member_names(members, fmt, body_model)
    if strict:
        unknown = sorted(set(members) - set(names))
        if unknown:
            raise TakeError(f"{path.name}: unexpected array {unknown[0][:80]!r}: not part of "
                            f"a {fmt} take")
    layout = {k: (members[k].shape, members[k].dtype) for k in names}
    _raise_first(path.name, layout_problems(layout, fmt=fmt, body_model=body_model))
    return _read(path, members, names)


def _load_npz(path: Path) -> dict:
    """Every array of a take file (headers checked first); kept for callers of old."""
    if not path.is_file():
        raise TakeError(f"{path}: no such file")
    return _load_take_npz(path, _members(path))


def _take_from_take_arrays(a: Mapping, path: Path | None) -> Take:
    """The Take of a validated format-1 or format-2 array set."""
    fmt = str(np.asarray(a["format"]))
    if fmt == TAKE_FORMAT_1:
        estimator, body_model = FORMAT_1_ESTIMATOR, "smplx"
        raw = {k: np.asarray(a[k]) for k in RAW_SHAPES}
    else:
        estimator, body_model = str(np.asarray(a["estimator"])), str(np.asarray(a["body_model"]))
        raw = {k[len(RAW_PREFIX):]: np.asarray(v) for k, v in a.items()
               if k.startswith(RAW_PREFIX)}

    def camera(k, dtype):
        return np.asarray(a[k]).astype(dtype) if k in a else None

    return Take(
        fps=float(np.asarray(a["fps"])),
        frame_index=np.asarray(a["frame_index"]).astype(np.int64),
        valid=np.asarray(a["valid"]).astype(bool),
        params={k: np.asarray(a[k]) for k in BODY_MODELS[body_model]},
        person_id=int(np.asarray(a["person_id"])), image_size=camera("image_size", np.int64),
        focal=camera("focal", np.float64), princpt=camera("princpt", np.float64),
        source=str(np.asarray(a["source"])), model=str(np.asarray(a["model"])),
        standin=bool(np.asarray(a["standin"])), gender=str(np.asarray(a["gender"])), raw=raw,
        path=path, estimator=estimator, body_model=body_model,
        clean_settings=str(np.asarray(a["clean_settings"])) if "clean_settings" in a else "")


def _take_from_members(src, members: Mapping, path: Path | None, strict: bool) -> Take:
    arrays = _load_take_npz(src, members, strict)
    return Take.from_arrays(arrays, path=path, name=src.name)


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
        raise TakeError(f"{path.name}: neither a take file (p2p-take) nor SMPL-X parameters "
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
        # AMASS's world is Z-up: turned into our camera frame about the rest pelvis
        # (retarget/amass.py; docs/amass.md).
        from .amass import AMASS_NOTE, camera_from_amass

        with np.errstate(invalid="ignore"):
            params = camera_from_amass(params)
        notes.append(f"{AMASS_NOTE}: its Z-up world is turned into the camera frame (Blender "
                     "world = AMASS world), about the neutral template's rest pelvis")
    notes.append("not a take file (p2p-take): frame_index 0..T-1, all frames valid, "
                 "no camera intrinsics (a default camera is used)")
    return Take(fps=fps, frame_index=np.arange(T, dtype=np.int64), valid=finite,
                params=params, gender=gender, source="", model="", path=path,
                notes=notes)


def read_take(path, *, strict: bool = False) -> Take:
    """Read a take file (or another SMPL-X parameter ``.npz``) and validate it.

    Every array's header is checked (shape, dtype, size against the row count)
    before any data is read; see the module docstring. ``strict``: the file must
    be a take and hold no array a take does not define (the worker reads the
    files the add-on writes so). Raises TakeError with one line naming the file
    and the problem.
    """
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise TakeError(f"{path}: a take is an .npz file")
    if not path.is_file():
        raise TakeError(f"{path}: no such file")
    members = _members(path)
    if "format" in members:
        return _take_from_members(path, members, path, strict)
    if strict:
        raise TakeError(f"{path.name}: not a take file (no format array)")
    arrays = _read(path, members, _smplx_members_to_read(path, members))
    take = _take_from_smplx_arrays(arrays, path)
    problems = validate_take_arrays(take.to_arrays(), require_all=False)
    if problems:
        raise TakeError(f"{path.name}: {problems[0]}")
    return take


def take_from_bytes(data: bytes, name: str = "take") -> Take:
    """The take of an ``.npz`` held in memory (``take_to_bytes``; e.g. the copy stored
    on a Blender rig), checked exactly like a file; ``name`` names it in messages."""
    from ..common.npz import NpzBytes

    src = NpzBytes(data, name)
    members = _members(src)
    if "format" not in members:
        raise TakeError(f"{name}: not a take (no format array)")
    return _take_from_members(src, members, None, False)


# --------------------------------------------------------------------------- writing

def _as_array(key: str, v, fmt: str) -> np.ndarray:
    """One array of a take as written: Python scalars to 0-d arrays; whole-number
    parameters to float32, camera to float64/int64, fps float64, indices int64.
    Values that cannot be converted are left for the validator to name."""
    if isinstance(v, (str, np.str_)):
        return np.array(str(v))
    if isinstance(v, (bool, np.bool_)):
        return np.array(bool(v))
    a = np.asarray(v)
    floats = key in PARAM_COLUMNS or key in BODY_MODELS["smpl"] or (
        fmt == TAKE_FORMAT_1 and key in RAW_SHAPES)
    if floats or key in ("focal", "princpt"):
        if a.dtype.kind in "iub":
            a = a.astype(np.float32)
        if key in ("focal", "princpt"):
            a = a.astype(np.float64)
    elif key == "frame_index":
        a = a.astype(np.int64) if a.dtype.kind in "iu" else a
    elif key == "image_size":
        a = a.astype(np.int64) if a.dtype.kind in "iuf" and np.all(a == np.round(a)) else a
    elif key == "fps":
        a = a.astype(np.float64) if a.dtype.kind in "iuf" else a
    elif key == "person_id":
        a = a.astype(np.int64) if a.dtype.kind in "iu" else a
    return a


def _format_of_input(arrays: Mapping) -> str:
    """The format of arrays given to ``write_take``: their ``format``; without one,
    format 1 if they use format 1's raw names (``cam_trans``, ...), else format 2."""
    if "format" in arrays:
        return str(np.asarray(arrays["format"]))
    return TAKE_FORMAT_1 if any(k in arrays for k in RAW_SHAPES) else TAKE_FORMAT


def _normalise_for_writing(arrays: Mapping) -> dict:
    fmt = _format_of_input(arrays)
    if fmt == TAKE_FORMAT_1:
        known = set(FORMAT_1_KEYS)
    else:
        known = set(META_KEYS) | set(CAMERA_KEYS) | set(OPTIONAL_KEYS)
        for columns in BODY_MODELS.values():
            known |= set(columns)
    out = {}
    for k, v in arrays.items():
        if k not in known and not (fmt != TAKE_FORMAT_1 and k.startswith(RAW_PREFIX)):
            raise TakeError(f"unknown take array {str(k)[:80]!r} (known: "
                            f"{', '.join(take_keys(fmt) if fmt in TAKE_FORMATS else TAKE_KEYS)}"
                            f"{', raw_<name>' if fmt != TAKE_FORMAT_1 else ''})")
        out[k] = _as_array(k, v, fmt)
    out.setdefault("format", np.array(fmt))
    return out


def _npz_bytes(data: Mapping, compress: bool = True) -> bytes:
    """The ``.npz`` of ``data`` in memory (compressed unless told not to).

    (Written to the file in one call afterwards: ``np.savez_compressed`` onto a
    full disk leaves a half-closed ZipFile whose ``__del__`` prints "Exception
    ignored in ZipFile.__del__" to the terminal.)
    """
    import io

    buf = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buf, **data)
    return buf.getvalue()


def take_to_bytes(take: Take, *, raw: bool = True, compress: bool = True,
                  name: str = "take") -> bytes:
    """The ``p2p-take/2`` ``.npz`` of ``take`` in memory, validated first (``name``
    names it in messages); ``raw=False``: the core only; ``compress=False``: stored,
    not deflated (10x faster to write, ~10 % larger for motion data).
    ``take_from_bytes`` reads it back exactly."""
    data = take.to_arrays(raw=raw)
    validate_take(data, name)
    return _npz_bytes(data, compress)


def write_take(path, arrays, *, overwrite: bool = False, numbered: bool = False,
               tail: str | None = None) -> Path:
    """Validate and write a ``p2p-take/2`` file atomically; return the path written.

    ``arrays``: a ``Take``, or the arrays of a take (format 2; or format 1's,
    which are written as format 2) with or without ``format``; Python
    strings/bools/numbers are accepted for the scalars. The file is written to
    a hidden temporary name in the same folder and committed in one step
    (``common.files.atomic_write``), so readers never see half a file and a
    file that appears meanwhile is never replaced. An existing file is refused
    unless ``overwrite``; with ``numbered`` (a default name) the next free
    ``clip-2.take.npz``, ``clip-3.take.npz`` ... is written instead (``tail``: the
    part kept, e.g. ``.clean.take.npz`` -> ``clip-2.clean.take.npz``). Raises
    TakeError / OutputExistsError / OutputWriteError (disk full, read-only)
    with one line.
    """
    from ..common.errors import OutputExistsError as _AnyOutputExists
    from ..common.files import atomic_write

    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise TakeError(f"{path}: a take file name must end in .npz")
    take = arrays if isinstance(arrays, Take) else Take.from_arrays(
        _normalise_for_writing(arrays), name=path.name)
    blob = take_to_bytes(take, name=path.name)
    if not overwrite and not numbered and os.path.lexists(path):
        raise OutputExistsError(f"{path} exists; not overwriting it")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise TakeError(f"{folder}: no such folder")

    def write(tmp: Path) -> None:
        with open(tmp, "xb") as fh:
            fh.write(blob)

    try:
        if tail is None:   # the part kept when numbering: clip-2.take.npz
            tail = ".take.npz" if path.name.endswith(".take.npz") else ".npz"
        return atomic_write(path, write, replace=overwrite, numbered=numbered, suffix=tail)
    except _AnyOutputExists as exc:
        if isinstance(exc, OutputExistsError):
            raise
        raise OutputExistsError(str(exc)) from None
