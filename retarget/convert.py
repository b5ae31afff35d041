# SPDX-License-Identifier: GPL-3.0-or-later
"""A take file -> a .blend with the rig, the take and the camera (the library part of
``p2p-mocap convert``; the command itself is ``convert_cli``).

Headless (bpy module), but this module imports no bpy itself: ``convert_take``
starts from an empty Blender scene, builds everything with ``retarget.blender``
(``build_take``, which ``blender.export`` uses for a take too) and saves the
.blend atomically (``blender.output.save_blend_atomically``: a hidden temporary
name in the output folder, then committed without replacing). An existing
.blend is never replaced unless asked (``overwrite=True`` / ``--force``); what
Blender prints while saving is kept off the terminal, and a failed save is one
line naming the file and the cause.

The SMPL-X model is given, never searched for: a model file, a folder holding
``SMPLX_<GENDER>.npz`` (or ``smplx/SMPLX_<GENDER>.npz``), or a function
``gender -> file`` (callers build it from ``weights.locations.smplx_lookup``,
which knows the search order). ``retarget`` never imports ``weights``.

One rule picks the body model: **the take's ``body_model``** (``"smplx"`` or
``"smpl"``). The model argument may be ``BodyModelFiles(smplx=..., smpl=...)``
(each a file, folder or ``gender -> file``; the CLI's ``--smplx`` and
``--smpl``); a plain model argument is the SMPL-X one, and for an SMPL take it
is used only when it is a folder (``smpl/SMPL_<GENDER>.npz`` in it).

Every problem is raised as a ``RetargetError`` subclass with a one-line message.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelFileError, OutputExistsError, RetargetError
from .options import ConvertOptions
from .smoothing import Smoothing

TAKE_SUFFIXES = (".npz",)


def _need_bpy() -> None:
    """The Blender side (``retarget.blender``) needs the bpy module; say so in one line."""
    if importlib.util.find_spec("bpy") is None:
        raise RetargetError("converting needs Blender's Python module 'bpy' "
                            "(pip install bpy==5.0.1, or run inside Blender)")


@dataclass(frozen=True)
class BodyModelFiles:
    """Where the model of each body comes from: a file, a folder or ``gender -> file``."""

    smplx: object = None
    smpl: object = None


def model_file(smplx, gender: str, body_model: str = "smplx") -> Path:
    """The SMPL-X model file to use for ``gender``: ``smplx`` is that file, a folder
    holding ``SMPLX_<GENDER>.npz`` (or ``smplx/SMPLX_<GENDER>.npz``), or a function
    ``gender -> file``. Raises ModelFileError (one line) when there is none.

    ``body_model="smpl"``: the SMPL file (``smplx`` a ``BodyModelFiles``, or a folder
    holding ``SMPL_<GENDER>.npz`` or ``smpl/SMPL_<GENDER>.npz``)."""
    from ..common.smplx_file import SMPLX_SUBDIR, model_file_in, smplx_file_name

    if isinstance(smplx, BodyModelFiles):
        smplx = smplx.smpl if body_model == "smpl" else smplx.smplx
    elif body_model == "smpl" and (callable(smplx) or (smplx and Path(smplx).is_file())):
        raise ModelFileError("the take is for the SMPL body: give the SMPL model (--smpl: "
                             "SMPL_<GENDER>.npz or a folder holding smpl/)")
    if body_model == "smpl":
        return _smpl_model_file(smplx, gender)
    if callable(smplx):
        return Path(smplx(gender))
    if smplx is None or str(smplx) == "":
        raise ModelFileError("no SMPL-X model given (a model file, or a folder holding "
                             f"{smplx_file_name(gender)})")
    hit = model_file_in(smplx, gender)
    if hit is None:
        name = smplx_file_name(gender)
        raise ModelFileError(f"SMPL-X model: {Path(smplx).expanduser()} does not hold {name} "
                             f"(or {SMPLX_SUBDIR}/{name})")
    return hit


def _smpl_model_file(smpl, gender: str) -> Path:
    from ..common.smpl_file import SMPL_SUBDIR, model_file_in, smpl_file_name

    if callable(smpl):
        return Path(smpl(gender))
    name = smpl_file_name(gender)
    if smpl is None or str(smpl) == "":
        raise ModelFileError(f"no SMPL model given (a model file, or a folder holding {name})")
    hit = model_file_in(smpl, gender)
    if hit is None:
        raise ModelFileError(f"SMPL model: {Path(smpl).expanduser()} does not hold {name} "
                             f"(or {SMPL_SUBDIR}/{name})")
    return hit


def default_output(take_path: Path) -> Path:
    """``clip.take.npz`` -> ``clip.blend``; ``clip.npz`` -> ``clip.blend``."""
    name = take_path.name
    for suffix in (".take.npz", ".npz"):
        if name.lower().endswith(suffix):
            return take_path.with_name(name[: -len(suffix)] + ".blend")
    return take_path.with_suffix(".blend")


def check_output_file(out, suffix: str, overwrite: bool, wrong_suffix: str,
                      numbered: bool = False) -> Path:
    """The output path, or a one-line error: wrong suffix, exists (unless ``overwrite``
    or ``numbered``), missing or read-only folder. ``wrong_suffix`` says what the
    output must be. (A hint only: the commit decides, without replacing.)"""
    out = Path(out).expanduser()
    if out.suffix.lower() != suffix:
        raise RetargetError(f"{out}: {wrong_suffix}")
    if os.path.lexists(out) and not overwrite and not numbered:
        raise OutputExistsError(f"{out} exists; not overwriting it (use --force)")
    from ..common.files import output_folder_problem

    problem = output_folder_problem(out.parent)
    if problem:
        raise RetargetError(f"{out.parent}: {problem}")
    return out


_STOP: list[int] = []   # signals received by stop_signals' handlers (checked at safe points)


def _stop_point() -> None:
    """Stop here (KeyboardInterrupt) when stop_signals() got Ctrl-C or SIGTERM."""
    if _STOP:
        raise KeyboardInterrupt


@contextlib.contextmanager
def stop_signals():
    """Ctrl-C and SIGTERM stop a convert at the next safe point (between steps, and
    after saving, before the commit), so the temporary file is removed and one line
    is printed; a second signal stops at once. Yields the list of signals received.

    (A KeyboardInterrupt raised while Blender runs Python from C, e.g. a driver,
    would be printed and swallowed by Blender, so the handler only records it.)
    """
    import signal

    def on_signal(signum, frame):
        _STOP.append(signum)
        if len(_STOP) > 1:
            raise KeyboardInterrupt

    old = {}
    for sig in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
        if sig is None:
            continue
        try:
            old[sig] = signal.signal(sig, on_signal)
        except (ValueError, OSError):  # not the main thread
            pass
    _STOP.clear()
    try:
        yield _STOP
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        _STOP.clear()


def build_take(take_path, smplx, options: ConvertOptions | None = None, *,
               notes: list | None = None, check_take=None):
    """Read a take, load its SMPL-X model and build the rig, the take and the camera into
    an emptied bpy session. -> ``(model, built)`` (``blender.build.BuiltTake``).

    ``check_take(take)`` is called once the take is read, before the model is loaded
    (the export's frame limit). ``notes`` receives the build's notes.
    """
    from .smplx_model import load_body_model
    from .take import read_take

    options = options or ConvertOptions()
    take_path = Path(take_path).expanduser()
    take = read_take(take_path)
    _stop_point()
    if not take.valid.any():
        raise RetargetError(f"{take_path.name}: the take has no valid frames "
                            "(nobody was found in any frame)")
    if check_take is not None:
        check_take(take)
    model = load_body_model(model_file(smplx, options.gender or take.gender, take.body_model),
                            take.body_model)

    smoothing = options.smoothing
    if options.clean is not None:  # the motion clean-up smooths too (docs/motion-cleanup.md)
        from .cleanup.clean import clean_take
        from .smoothing import NO_SMOOTHING

        try:
            take = clean_take(take, model, smoothing, options.clean).take
            smoothing = NO_SMOOTHING
        except RetargetError as exc:   # on by default: a take it cannot clean is smoothed only
            take.notes = list(take.notes) + [f"motion clean-up skipped: {exc}"]
    _need_bpy()
    from .blender.build import build_take_scene
    from .blender.output import empty_session

    _stop_point()
    empty_session()
    built = build_take_scene(model, take, smoothing=smoothing,
                             pose_correctives=options.pose_correctives,
                             shape_keys=options.shape_keys)
    if notes is not None:
        notes.extend(built.notes)
    return model, built


def convert_take(take_path, smplx, out_blend=None, *, options: ConvertOptions | None = None,
                 smoothing: Smoothing | None = None, pose_correctives: bool = True,
                 shape_keys: bool = True, gender: str | None = None, overwrite: bool = False,
                 notes: list | None = None, numbered: bool = False) -> Path:
    """Build the scene for one take and save it as a .blend; return the .blend's path.

    take_path: a take file (or another SMPL-X parameter .npz).
    smplx: the SMPL-X model (see :func:`model_file`; required). out_blend:
    default next to the take (``clip.take.npz`` -> ``clip.blend``). options:
    smoothing, shape keys, gender, the motion clean-up (``ConvertOptions``, whose
    defaults clean the motion: foot locking and One Euro smoothing); without it, from
    the keywords ``smoothing`` (default ``Smoothing()``: One Euro with the measured
    per-region cutoffs), ``pose_correctives``, ``shape_keys`` and ``gender``
    (default the take's), with the clean-up's defaults. ``notes`` (a list) receives one line per thing worth
    telling.

    Resets the running bpy session to an empty scene first: meant for the
    CLI and batch use, not for calling inside an interactive Blender.
    """
    if options is None:
        options = ConvertOptions(smoothing=Smoothing() if smoothing is None else smoothing,
                                 pose_correctives=pose_correctives, shape_keys=shape_keys,
                                 gender=gender)
    take_path = Path(take_path).expanduser()
    if take_path.suffix.lower() not in TAKE_SUFFIXES:
        raise RetargetError(f"{take_path}: not a take file (.npz); footage is estimated first "
                            "by 'p2p-mocap convert' (or 'p2p-mocap estimate')")
    out = check_output_file(out_blend or default_output(take_path), ".blend", overwrite,
                            "the output must be a .blend file", numbered=numbered)
    model, built = build_take(take_path, smplx, options, notes=notes)
    if notes is not None and model.standin:
        notes.append(f"the rig uses a STAND-IN {model.kind.label} file ({model.path}): "
                     "objects are named '(stand-in)'")
    from ..common.files import remove_stale_temps
    from .blender.output import save_blend_atomically

    from .blender.scene import add_world_and_light

    add_world_and_light()   # (a render of the .blend shows the body)
    _stop_point()
    remove_stale_temps(out.parent)  # ours, of processes that are gone (killed while saving)
    return save_blend_atomically(out, replace=overwrite, numbered=numbered,
                                 before_commit=_stop_point)  # (a signal: nothing committed)
