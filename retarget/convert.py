# SPDX-License-Identifier: GPL-3.0-or-later
"""``p2p-mocap convert``: a take file -> a .blend with the rig, the take and the camera.

Headless (bpy module). ``convert_take`` starts from an empty Blender scene,
builds everything with ``retarget.blender`` and saves the .blend atomically
(to a hidden temporary name in the output folder, then committed without
replacing: ``common.files``). An existing .blend is never replaced unless
asked (``overwrite=True`` / ``--force``); what Blender prints while saving is
kept off the terminal, and a failed save is one line naming the file and the
cause.

Every problem is raised as a ``RetargetError`` subclass with a one-line message.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
from pathlib import Path

from .errors import ModelFileError, OutputExistsError, RetargetError
from .smoothing import METHODS, REGIONS, Smoothing

TAKE_SUFFIXES = (".npz",)
log = logging.getLogger(__name__)


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
    if not out.parent.is_dir():
        raise RetargetError(f"{out.parent}: no such folder for the output")
    if not os.access(out.parent, os.W_OK):
        raise RetargetError(f"{out.parent}: no permission to write there")
    return out


@contextlib.contextmanager
def _captured_output():
    """Send what C code and Blender's operators print (fds 1 and 2) to a temporary file.

    Yields a list that holds the captured text (one string) once the block ends.
    Without a temporary file (disk full) nothing is captured.
    """
    box: list[str] = []
    try:
        sink = tempfile.TemporaryFile()
    except OSError:
        yield box
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    saved = []
    try:
        for fd in (1, 2):
            saved.append((fd, os.dup(fd)))
            os.dup2(sink.fileno(), fd)
    except OSError:
        pass
    try:
        yield box
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        try:
            sink.seek(0)
            box.append(sink.read().decode("utf-8", "replace"))
        except OSError:
            box.append("")
        sink.close()


def _last_line(text: str) -> str:
    """The line of a Blender error/traceback that says what went wrong."""
    lines = [ln.strip() for ln in str(text).replace("\r", "\n").splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(("Location:", "File ", "^", "~"))]
    for ln in reversed(lines):
        if ln.startswith(("Error:", "Traceback")):
            continue
        return ln[:300]
    return " ".join(str(text).split())[:300]


def blender_write(what: str, target: Path, call):
    """Run a Blender operator that writes a file (``call()``) with its output kept off the
    terminal; return the operator's result.

    Failures become one line: an ordinary I/O failure (disk full, read-only,
    file too large) is raised as ``OSError`` (``common.files.atomic_write``
    names the file and the cause); anything else as ``RetargetError`` with the
    last line of Blender's report. Blender's full text goes to the log.
    """
    from ..common.files import os_error_in_text

    try:
        with _captured_output() as printed:
            result = call()
    except RuntimeError as exc:
        text = str(exc)
        said = printed[0] if printed else ""
        log.info("%s of %s failed; Blender said:\n%s\n%s", what, target, said, text)
        cause = os_error_in_text(text) or os_error_in_text(said)
        if cause is not None:
            raise OSError(cause.errno, cause.strerror) from None
        raise RetargetError(f"{what} failed to write {target}: {_last_line(text)}") from None
    if printed and printed[0].strip():
        log.debug("%s of %s: Blender said:\n%s", what, target, printed[0])
    return result


def save_blend_atomically(bpy, out: Path, *, replace: bool = False,
                          numbered: bool = False) -> Path:
    """Save the current Blender data to ``out`` through a hidden temporary file and a
    no-replace commit (``common.files.atomic_write``); return the path written.

    ``replace``: replace an existing ``out`` (``--force``). ``numbered``: ``out``
    is a default name; take ``name-2.blend`` ... when it exists.
    """
    from ..common.files import atomic_write

    def write(tmp: Path) -> None:
        result = blender_write("Blender's save", out, lambda: bpy.ops.wm.save_as_mainfile(
            filepath=str(tmp), check_existing=False, copy=True, compress=True))
        if "FINISHED" not in result or not tmp.is_file():
            raise RetargetError(f"Blender could not save {out}")
        _stop_point()  # Ctrl-C / SIGTERM while saving: nothing is committed

    with _exists_as_retarget_error():
        return atomic_write(out, write, replace=replace, numbered=numbered)


@contextlib.contextmanager
def _exists_as_retarget_error():
    """``common.errors.OutputExistsError`` (a commit that lost a race) as this package's."""
    from ..common.errors import OutputExistsError as AnyOutputExists

    try:
        yield
    except AnyOutputExists as exc:
        if isinstance(exc, OutputExistsError):
            raise
        raise OutputExistsError(str(exc)) from None


def convert_take(take_path, smplx_path=None, out_blend=None, *, smoothing: Smoothing | None = None,
                 pose_correctives: bool = True, shape_keys: bool = True, gender: str | None = None,
                 overwrite: bool = False, notes: list | None = None,
                 numbered: bool = False) -> Path:
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
                            "the output must be a .blend file", numbered=numbered)
    take = read_take(take_path)
    _stop_point()
    if not take.valid.any():
        raise RetargetError(f"{take_path.name}: the take has no valid frames "
                            "(nobody was found in any frame)")
    model = load_smplx_model(_model_path(smplx_path, gender or take.gender))
    smoothing = Smoothing() if smoothing is None else smoothing

    bpy = _bpy()
    from .blender.build import build_take_scene

    _stop_point()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    built = build_take_scene(model, take, smoothing=smoothing,
                             pose_correctives=pose_correctives, shape_keys=shape_keys)
    if notes is not None:
        notes.extend(built.notes)
        if model.standin:
            notes.append(f"the rig uses a STAND-IN SMPL-X file ({model.path}): objects are "
                         "named '(stand-in)'")
    from ..common.files import remove_stale_temps

    _stop_point()
    remove_stale_temps(out.parent)  # ours, of processes that are gone (killed while saving)
    return save_blend_atomically(bpy, out, replace=overwrite, numbered=numbered)


# --------------------------------------------------------------------------- CLI

def _hz(text: str) -> float:
    """argparse ``type=`` of the smoothing cutoffs: ``common.options.CUTOFF_HZ``."""
    from ..common.options import CUTOFF_HZ

    return CUTOFF_HZ.arg(text)


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
                                 f"(default: {getattr(d, f'{region}_hz'):g}) "
                                 "[0 = off, or 0.01 .. 500 Hz]")
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


_STOP: list[int] = []   # signals received by run_convert's handlers (checked at safe points)


def _stop_point() -> None:
    """Stop here (KeyboardInterrupt) when run_convert got Ctrl-C or SIGTERM."""
    if _STOP:
        raise KeyboardInterrupt


@contextlib.contextmanager
def _stop_signals():
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


def run_convert(args, out=None) -> int:
    """Run ``p2p-mocap convert`` with parsed ``args``; 0 on success.

    Problems raise ``RetargetError`` subclasses (one-line messages for the CLI).
    Ctrl-C / SIGTERM: nothing is written (the temporary file is removed), one
    line, exit code 130 / 143.
    """
    import signal

    out = out or sys.stdout
    notes: list[str] = []
    with _stop_signals() as got:
        try:
            path = convert_take(args.input, args.smplx, args.output,
                                smoothing=smoothing_from_args(args),
                                pose_correctives=args.pose_correctives,
                                shape_keys=args.shape_keys, gender=args.gender,
                                overwrite=args.force, notes=notes,
                                numbered=bool(getattr(args, "numbered_output", False)))
        except KeyboardInterrupt:
            signum = got[0] if got else signal.SIGINT  # (got is cleared on exit: read it here)
            how = "SIGTERM" if signum == getattr(signal, "SIGTERM", None) else "Ctrl-C"
            print(f"p2p-mocap: error: stopped by {how}: no .blend written", file=sys.stderr)
            return 128 + int(signum)
    for n in notes:
        print(f"note: {n}", file=out)
    print(f"wrote {path}", file=out)
    return 0
