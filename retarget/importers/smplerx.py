# SPDX-License-Identifier: GPL-3.0-or-later
"""SMPLer-X (and SMPLest-X, same layout) inference outputs: a folder ``smplx/`` of
per-frame, per-person ``{frame:05}_{bbox_id}.npz`` files (SMPL-X parameters of one
crop) with ``meta/{frame:05}_{bbox_id}.json`` beside it (that crop's camera). See
docs/importers.md for the facts relied on."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

NAME = "smplerx"
ESTIMATOR = "smpler-x"
EXPECTED = ("a SMPLer-X output folder with smplx/NNNNN_P.npz and meta/NNNNN_P.json per "
            "frame")
# Array -> values per file (one row: the file is one crop of one frame).
SIZES = {"global_orient": 3, "body_pose": 63, "left_hand_pose": 45, "right_hand_pose": 45,
         "jaw_pose": 3, "leye_pose": 3, "reye_pose": 3, "betas": 10, "expression": 10,
         "transl": 3}
_NAME = re.compile(r"(\d{1,9})_(\d{1,4})\.npz")
MAX_META_BYTES = 1 << 20
MAX_MEMBER_BYTES = 1 << 16


def _folders(path: Path) -> tuple[Path, Path] | None:
    """(smplx folder, meta folder) of an output folder or of its smplx/ folder."""
    if not path.is_dir():
        return None
    if (path / "smplx").is_dir():
        return path / "smplx", path / "meta"
    if path.name == "smplx":
        return path, path.parent / "meta"
    return None


def _files(smplx_dir: Path) -> dict[int, dict[int, Path]]:
    out: dict[int, dict[int, Path]] = {}
    for p in smplx_dir.iterdir():
        m = _NAME.fullmatch(p.name)
        if m and p.is_file():
            out.setdefault(int(m.group(1)), {})[int(m.group(2))] = p
    return out


def detect(path: Path) -> bool:
    f = _folders(Path(path))
    return f is not None and any(_NAME.fullmatch(p.name) for p in f[0].iterdir())


def _read_params(p: Path) -> dict:
    from ...common.npz import check_sizes, npz_members, read_members, refuse_unsafe
    from ._common import ImportFormatError

    members = npz_members(p, error=ImportFormatError)
    refuse_unsafe(p, members, error=ImportFormatError, what="this SMPLer-X file")
    check_sizes(p, members, max_member_bytes=MAX_MEMBER_BYTES, error=ImportFormatError)
    for k, n in SIZES.items():
        m = members.get(k)
        if m is None:
            if k in ("leye_pose", "reye_pose"):
                continue
            raise ImportFormatError(f"{p.name}: no '{k}' array (expected the SMPLer-X "
                                    f"arrays {', '.join(SIZES)})")
        if math.prod(m.shape) != n or m.dtype.kind not in "fiu":
            raise ImportFormatError(f"{p.name}: '{k}' has shape {m.shape} dtype {m.dtype}, "
                                    f"expected {n} numbers")
    names = [k for k in SIZES if k in members]
    a = read_members(p, members, names, error=ImportFormatError)
    return {k: np.asarray(v, np.float64).reshape(SIZES[k]) for k, v in a.items()}


def _read_meta(p: Path) -> dict:
    from ._common import ImportFormatError

    if not p.is_file():
        raise ImportFormatError(f"{p.name}: missing (SMPLer-X writes meta/NNNNN_P.json with "
                                "the crop's focal and princpt beside smplx/)")
    if p.stat().st_size > MAX_META_BYTES:
        raise ImportFormatError(f"{p.name}: larger than {MAX_META_BYTES} bytes; not a "
                                "SMPLer-X meta file")
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
        out = {k: np.asarray(d[k], np.float64).reshape(n)
               for k, n in (("focal", 2), ("princpt", 2))}
        box = d.get("bbox_mmdet", d.get("bbox"))
        out["bbox"] = np.asarray(box, np.float64).reshape(4) if box is not None else None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise ImportFormatError(f"{p.name}: not a SMPLer-X meta file (expected focal [2] "
                                f"and princpt [2]; {type(exc).__name__})") from None
    if not (np.isfinite(out["focal"]).all() and (out["focal"] > 0).all()
            and np.isfinite(out["princpt"]).all()):
        raise ImportFormatError(f"{p.name}: focal must be positive and princpt finite")
    return out


def read(path: Path, body=None, person: int = 0):
    from ._common import ImportFormatError
    from ._common import finish_take, static_camera

    path = Path(path)
    folders = _folders(path)
    if folders is None or not detect(path):
        raise ImportFormatError(f"{path.name}: not a SMPLer-X output (expected {EXPECTED})")
    if body is None:
        raise ImportFormatError(f"{path.name}: SMPLer-X results need the SMPL-X model file "
                                "(hand poses are relative to its mean hand; the camera "
                                "change needs its pelvis); pass --smplx")
    smplx_dir, meta_dir = folders
    files = _files(smplx_dir)
    frames = sorted(f for f, people in files.items() if person in people)
    if not frames:
        found = sorted({b for people in files.values() for b in people})
        raise ImportFormatError(f"{path.name}: no files for person {person} (bbox ids "
                                f"found: {', '.join(map(str, found[:10]))})")
    rows = [_read_params(files[f][person]) for f in frames]
    metas = [_read_meta(meta_dir / files[f][person].with_suffix(".json").name)
             for f in frames]
    p = {k: np.stack([r.get(k, np.zeros(SIZES[k])) for r in rows]) for k in SIZES}
    p["left_hand_pose"] = p["left_hand_pose"] + np.asarray(body.hands_mean[0]).reshape(1, 45)
    p["right_hand_pose"] = p["right_hand_pose"] + np.asarray(body.hands_mean[1]).reshape(1, 45)
    notes = [f"SMPLer-X output, person (bbox id) {person}: {len(frames)} frames; bbox ids "
             "are per-frame detections, not tracks"]
    # One static camera: the image size is not in the output; the detector boxes lie in
    # the image, so their extent is a lower bound used as the image size.
    boxes = np.array([m["bbox"] for m in metas if m["bbox"] is not None])
    pp_c = np.stack([m["princpt"] for m in metas])
    f_c = np.stack([m["focal"] for m in metas])
    if len(boxes):
        W = max(1, math.ceil(float(np.max(boxes[:, 0] + boxes[:, 2]))))
        H = max(1, math.ceil(float(np.max(boxes[:, 1] + boxes[:, 3]))))
    else:
        W, H = (max(1, math.ceil(2 * float(np.max(pp_c[:, i])))) for i in (0, 1))
    notes.append(f"image size not in the output: {W}x{H} px estimated from the boxes; "
                 f"camera: {60:g} degrees across the longer side")
    focal, princpt = static_camera((W, H))
    # Re-express each crop's camera in the static one (as our own estimator does): the
    # pelvis keeps its pixel and its apparent size.
    P = np.asarray(body.pelvis(p["betas"], p["expression"]), np.float64).reshape(-1, 3)
    t = p["transl"]
    depth = P[:, 2] + t[:, 2]
    z_new = depth * focal[0] / f_c[:, 0]
    uv = f_c * (P[:, :2] + t[:, :2]) / depth[:, None] + pp_c
    transl = np.empty_like(t)
    transl[:, :2] = (uv - princpt) * z_new[:, None] / focal - P[:, :2]
    transl[:, 2] = z_new - P[:, 2]
    p["transl"] = transl
    raw = {"cam_trans": t, "crop_focal": f_c, "crop_princpt": pp_c}
    return finish_take(path, p, frame_index=np.array(frames, np.int64), fps=None,
                       estimator=ESTIMATOR, notes=notes, model="SMPLer-X output",
                       camera=(np.array([W, H], np.int64), focal, princpt), raw=raw)
