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
"""
from __future__ import annotations

import os
import tempfile
import zipfile
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


def validate_take_arrays(arrays: Mapping, require_all: bool = True) -> list[str]:
    """Problems of a ``p2p-take/1`` array set, one line each ([] if none).

    ``require_all=False`` skips the check that every TAKE_KEYS array exists
    (used for the optional raw outputs of files that are not takes).
    """
    problems: list[str] = []
    missing = [k for k in TAKE_KEYS if k not in arrays]
    if require_all and missing:
        problems.append(f"missing arrays: {', '.join(missing)}")
    if "format" in arrays:
        fmt = _scalar(arrays, "format", "U")
        if fmt != TAKE_FORMAT:
            problems.append(f"format is {fmt!r}, expected {TAKE_FORMAT!r}")
    if "fps" in arrays:
        fps = _scalar(arrays, "fps", "fiu")
        if fps is None or not np.isfinite(fps) or fps <= 0:
            problems.append(f"fps must be a positive number, got {np.asarray(arrays['fps'])!r}")
    if "frame_index" not in arrays:
        return problems or ["missing array frame_index"]
    fi = np.asarray(arrays["frame_index"])
    if fi.ndim != 1 or fi.dtype.kind not in "iu":
        return problems + [f"frame_index must be a 1-D integer array, got shape {fi.shape} "
                           f"dtype {fi.dtype}"]
    T = fi.shape[0]
    if T == 0:
        return problems + ["the take has no frames (frame_index is empty)"]
    if (fi < 0).any():
        problems.append("frame_index has negative values")
    if T > 1 and (np.diff(fi) <= 0).any():
        at = int(np.argmax(np.diff(fi) <= 0)) + 1
        problems.append(f"frame_index must be strictly increasing (row {at}: {fi[at - 1]} "
                        f"then {fi[at]})")
    valid = np.ones(T, bool)
    if "valid" in arrays:
        v = np.asarray(arrays["valid"])
        if v.shape != (T,) or v.dtype != np.bool_:
            problems.append(f"valid must be a bool array of shape ({T},), got shape {v.shape} "
                            f"dtype {v.dtype}")
        else:
            valid = v
    for key, cols in PARAM_COLUMNS.items():
        if key not in arrays:
            continue
        a = np.asarray(arrays[key])
        if a.shape != (T, cols):
            problems.append(f"{key} has shape {a.shape}, expected ({T}, {cols})")
        elif not _is_float(a):
            problems.append(f"{key} has dtype {a.dtype}, expected float32 or float64")
        else:
            row = _first_bad_row(a, valid)
            if row is not None:
                problems.append(f"{key} has NaN or infinite values in valid frames "
                                f"(first at row {row}, frame {fi[row]})")
    for key, shape in RAW_SHAPES.items():
        if key not in arrays:
            continue
        a = np.asarray(arrays[key])
        if a.shape != (T,) + shape:
            problems.append(f"{key} has shape {a.shape}, expected {(T,) + shape}")
        elif not _is_float(a):
            problems.append(f"{key} has dtype {a.dtype}, expected float32 or float64")
    for key in ("focal", "princpt", "image_size"):
        if key not in arrays:
            continue
        a = np.asarray(arrays[key])
        if a.shape != (2,) or a.dtype.kind not in "fiu" or not np.isfinite(a).all():
            problems.append(f"{key} must be 2 finite numbers, got shape {a.shape} dtype {a.dtype}")
        elif key != "princpt" and (a <= 0).any():
            problems.append(f"{key} must be positive, got {a.tolist()}")
    for key, kinds, what in (("person_id", "iu", "an integer"), ("source", "U", "a string"),
                             ("model", "U", "a string"), ("standin", "b", "a bool"),
                             ("gender", "U", "a string")):
        if key in arrays and _scalar(arrays, key, kinds) is None:
            problems.append(f"{key} must be {what}, got {np.asarray(arrays[key])!r}")
    if "gender" in arrays:
        g = _scalar(arrays, "gender", "U")
        if g is not None and str(g) not in GENDERS:
            problems.append(f"gender is {str(g)!r}, expected one of {', '.join(GENDERS)}")
    return problems


def validate_take(arrays: Mapping, name: str = "take") -> None:
    """Raise TakeError with the first problem (and how many more) if any."""
    problems = validate_take_arrays(arrays)
    if problems:
        n = len(problems) - 1
        more = f" (and {n} more problem{'s' if n > 1 else ''})" if n else ""
        raise TakeError(f"{name}: {problems[0]}{more}")


# --------------------------------------------------------------------------- reading

def _load_npz(path: Path) -> dict:
    if not path.is_file():
        raise TakeError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            out = {}
            for k in npz.files:
                try:
                    out[k] = npz[k]
                except ValueError:
                    raise TakeError(f"{path.name}: array '{k}' holds pickled Python objects; "
                                    "take files must be readable without pickle") from None
            return out
    except TakeError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise TakeError(f"{path}: not a readable .npz file ({exc})") from None


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
    for k in ("fps", "mocap_frame_rate", "mocap_framerate", "frame_rate"):
        if k in a and np.asarray(a[k]).size == 1:
            fps = float(np.asarray(a[k]).reshape(()))
            break
    if fps is None or not np.isfinite(fps) or fps <= 0:
        fps = DEFAULT_FPS
        notes.append(f"no frame rate in the file: {DEFAULT_FPS:g} fps assumed")
    gender = "neutral"
    if "gender" in a and np.asarray(a["gender"]).dtype.kind in "US":
        g = np.asarray(a["gender"]).reshape(())[()]
        g = (g.decode() if isinstance(g, bytes) else str(g)).lower()
        if g in GENDERS:
            gender = g
        else:
            notes.append(f"gender {g!r} not known: neutral used")
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

    Raises TakeError with one line naming the file and the problem.
    """
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise TakeError(f"{path}: a take is an .npz file")
    arrays = _load_npz(path)
    if "format" in arrays:
        validate_take(arrays, path.name)
        return _take_from_take_arrays(arrays, path)
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
