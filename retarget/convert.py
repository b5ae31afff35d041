# SPDX-License-Identifier: GPL-3.0-or-later
"""``p2p-mocap convert``: a take file -> a .blend with the rig, the take and the camera.

Headless (bpy module). ``convert_take`` starts from an empty Blender scene,
builds everything with ``retarget.blender`` and saves the .blend atomically
(to a hidden temporary name in the output folder, then renamed over the
target in one step). An existing .blend is never replaced unless asked
(``overwrite=True`` / ``--force``).

Every problem is raised as a ``RetargetError`` subclass with a one-line message.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import ModelFileError, OutputExistsError, RetargetError
from .smoothing import METHODS, REGIONS, Smoothing

TAKE_SUFFIXES = (".npz",)


def _bpy():
    try:
        import bpy
    except ImportError:
        raise RetargetError("converting needs Blender's Python module 'bpy' "
                            "(pip install bpy==5.0.1, or run inside Blender)") from None
    return bpy


def _model_path(smplx_path, gender: str):
    from ..weights.locations import find_smplx

    hit = find_smplx(smplx_path, gender)
    hint = "" if gender == "neutral" else " (or use --gender neutral)"
    if hit.problem:
        raise ModelFileError(hit.problem + hint)
    if hit.path is None:
        raise ModelFileError(f"no SMPL-X model file SMPLX_{gender.upper()}.npz found; put it at "
                             f"{hit.install_to} (from {hit.source}) or pass --smplx{hint}")
    return Path(hit.path)


def default_output(take_path: Path) -> Path:
    """``clip.take.npz`` -> ``clip.blend``; ``clip.npz`` -> ``clip.blend``."""
    name = take_path.name
    for suffix in (".take.npz", ".npz"):
        if name.lower().endswith(suffix):
            return take_path.with_name(name[: -len(suffix)] + ".blend")
    return take_path.with_suffix(".blend")


def check_output_file(out, suffix: str, overwrite: bool, wrong_suffix: str) -> Path:
    """The output path, or a one-line error: wrong suffix, exists (unless ``overwrite``),
    missing or read-only folder. ``wrong_suffix`` says what the output must be."""
    out = Path(out).expanduser()
    if out.suffix.lower() != suffix:
        raise RetargetError(f"{out}: {wrong_suffix}")
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} exists; not overwriting it (use --force)")
    if not out.parent.is_dir():
        raise RetargetError(f"{out.parent}: no such folder for the output")
    if not os.access(out.parent, os.W_OK):
        raise RetargetError(f"{out.parent}: no permission to write there")
    return out


def save_blend_atomically(bpy, out: Path) -> Path:
    """Save the current Blender data to ``out`` via a temporary file and ``os.replace``."""
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.part.blend")
    try:
        result = bpy.ops.wm.save_as_mainfile(filepath=str(tmp), check_existing=False, copy=True,
                                             compress=True)
        if "FINISHED" not in result or not tmp.is_file():
            raise RetargetError(f"Blender could not save {out}")
        os.replace(tmp, out)
    finally:
        for leftover in (tmp, Path(str(tmp) + "1")):
            if leftover.exists():
                try:
                    leftover.unlink()
                except OSError:
                    pass
    return out


def convert_take(take_path, smplx_path=None, out_blend=None, *, smoothing: Smoothing | None = None,
                 pose_correctives: bool = True, shape_keys: bool = True, gender: str | None = None,
                 overwrite: bool = False, notes: list | None = None) -> Path:
    """Build the scene for one take and save it as a .blend; return the .blend's path.

    take_path: a ``p2p-take/1`` file (or another SMPL-X parameter .npz).
    smplx_path: model file or folder (None: the search order of
    ``weights.locations.find_smplx``). out_blend: default next to the take
    (``clip.take.npz`` -> ``clip.blend``). smoothing: default ``Smoothing()``
    (Butterworth with the measured per-region cutoffs). gender: default the
    take's. ``notes`` (a list) receives one line per thing worth telling.

    Resets the running bpy session to an empty scene first: meant for the
    CLI and batch use, not for calling inside an interactive Blender.
    """
    from .smplx_model import load_smplx_model
    from .take import read_take

    take_path = Path(take_path).expanduser()
    if take_path.suffix.lower() not in TAKE_SUFFIXES:
        raise RetargetError(f"{take_path}: not a take file (.npz); footage is estimated first "
                            "by 'p2p-mocap convert' (or 'p2p-mocap estimate')")
    out = check_output_file(out_blend or default_output(take_path), ".blend", overwrite,
                            "the output must be a .blend file")
    take = read_take(take_path)
    if not take.valid.any():
        raise RetargetError(f"{take_path.name}: the take has no valid frames "
                            "(nobody was found in any frame)")
    model = load_smplx_model(_model_path(smplx_path, gender or take.gender))
    smoothing = Smoothing() if smoothing is None else smoothing

    bpy = _bpy()
    from .blender.build import build_take_scene

    bpy.ops.wm.read_factory_settings(use_empty=True)
    built = build_take_scene(model, take, smoothing=smoothing,
                             pose_correctives=pose_correctives, shape_keys=shape_keys)
    if notes is not None:
        notes.extend(built.notes)
        if model.standin:
            notes.append(f"the rig uses a STAND-IN SMPL-X file ({model.path}): objects are "
                         "named '(stand-in)'")
    return save_blend_atomically(bpy, out)


# --------------------------------------------------------------------------- CLI

def _hz(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a frequency in Hz, got {text!r}") from None
    if v < 0 or v != v:
        raise argparse.ArgumentTypeError(f"a cutoff must be >= 0 Hz (0 = off), got {text}")
    return v


def _on_off(text: str) -> bool:
    t = text.lower()
    if t in ("on", "yes", "true", "1"):
        return True
    if t in ("off", "no", "false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected on or off, got {text!r}")


def add_convert_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``p2p-mocap convert``."""
    d = Smoothing()
    parser.add_argument("input", metavar="INPUT",
                        help="take file (.npz from 'p2p-mocap estimate', or another SMPL-X "
                             "parameter .npz)")
    parser.add_argument("-o", "--output", metavar="BLEND",
                        help="the .blend to write (default: next to INPUT, clip.take.npz -> "
                             "clip.blend)")
    parser.add_argument("--smplx", metavar="PATH", help="SMPL-X model file or folder")
    parser.add_argument("--gender", choices=("neutral", "male", "female"),
                        help="SMPL-X model to use (default: the take's)")
    parser.add_argument("--smooth", choices=METHODS, default=d.method,
                        help=f"temporal filter (default: {d.method})")
    for region in REGIONS:
        what = {"root": "root translation", "body": "body and global rotation",
                "hands": "fingers", "face": "jaw, eyes and expression"}[region]
        parser.add_argument(f"--smooth-{region}", type=_hz, metavar="HZ",
                            default=getattr(d, f"{region}_hz"),
                            help=f"cutoff for the {what} in Hz, 0 = raw "
                                 f"(default: {getattr(d, f'{region}_hz'):g})")
    parser.add_argument("--pose-correctives", type=_on_off, default=True, metavar="on|off",
                        help="486 pose-corrective shape keys keyed per frame: exact SMPL-X "
                             "surface (on, default) or a lighter rig for game export (off)")
    parser.add_argument("--shape-keys", type=_on_off, default=True, metavar="on|off",
                        help="10 editable body-shape keys Shape000..Shape009 (default: on)")
    parser.add_argument("--force", action="store_true", help="replace an existing .blend")
    return parser


def smoothing_from_args(args) -> Smoothing:
    return Smoothing(method=args.smooth, **{f"{r}_hz": getattr(args, f"smooth_{r}") or None
                                             for r in REGIONS})


def run_convert(args, out=None) -> int:
    """Run ``p2p-mocap convert`` with parsed ``args``; 0 on success.

    Problems raise ``RetargetError`` subclasses (one-line messages for the CLI).
    """
    out = out or sys.stdout
    notes: list[str] = []
    path = convert_take(args.input, args.smplx, args.output, smoothing=smoothing_from_args(args),
                        pose_correctives=args.pose_correctives, shape_keys=args.shape_keys,
                        gender=args.gender, overwrite=args.force, notes=notes)
    for n in notes:
        print(f"note: {n}", file=out)
    print(f"wrote {path}", file=out)
    return 0
