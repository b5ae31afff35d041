# SPDX-License-Identifier: GPL-3.0-or-later
"""Files Blender writes: a .blend saved atomically, an exporter's output kept off the terminal.

``blender_write`` runs an operator that writes a file with what Blender prints
captured (one line on failure: an ``OSError`` for ordinary I/O failures, else a
``RetargetError``); ``save_blend_atomically`` saves the session through a hidden
temporary file and a no-replace commit (``common.files.atomic_write``);
``empty_session`` resets the running session to an empty scene (the CLI and batch
build into it). Used by ``retarget.convert`` and ``blender.export``.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from pathlib import Path

import bpy

from ..errors import OutputExistsError, RetargetError

log = logging.getLogger(__name__)


def empty_session() -> None:
    """Reset the running bpy session to Blender's factory settings with an empty scene."""
    bpy.ops.wm.read_factory_settings(use_empty=True)


def handler_lists() -> dict[str, list]:
    """A copy of every ``bpy.app.handlers`` list (name -> handlers)."""
    h = bpy.app.handlers
    return {n: list(getattr(h, n)) for n in dir(h)
            if not n.startswith("_") and isinstance(getattr(h, n), list)}


def restore_handlers(saved: dict[str, list]) -> None:
    """Set every ``bpy.app.handlers`` list back to ``saved`` (:func:`handler_lists`): persistent
    handlers survive a factory reset, and Blender 5.0 itself appends one more load_pre/load_post
    handler on each reset, which a fresh process would not have."""
    for name in handler_lists():
        getattr(bpy.app.handlers, name)[:] = saved.get(name, [])


@contextlib.contextmanager
def captured_output():
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


def last_line(text: str) -> str:
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
    from ...common.files import os_error_in_text

    try:
        with captured_output() as printed:
            result = call()
    except RuntimeError as exc:
        text = str(exc)
        said = printed[0] if printed else ""
        log.info("%s of %s failed; Blender said:\n%s\n%s", what, target, said, text)
        cause = os_error_in_text(text) or os_error_in_text(said)
        if cause is not None:
            raise OSError(cause.errno, cause.strerror) from None
        raise RetargetError(f"{what} failed to write {target}: {last_line(text)}") from None
    if printed and printed[0].strip():
        log.debug("%s of %s: Blender said:\n%s", what, target, printed[0])
    return result


def save_blend_atomically(out: Path, *, replace: bool = False, numbered: bool = False,
                          before_commit=None, suffix: str | None = None) -> Path:
    """Save the current Blender data to ``out`` through a hidden temporary file and a
    no-replace commit (``common.files.atomic_write``); return the path written.

    ``replace``: replace an existing ``out`` (``--force``). ``numbered``: ``out``
    is a default name; take ``name-2.blend`` ... when it exists (``suffix``: the tail
    kept, ``.mixamo.blend`` -> ``clip-2.mixamo.blend``). ``before_commit()``
    runs after saving, before the commit (it may raise: nothing is committed).
    """
    from ...common.files import atomic_write

    def write(tmp: Path) -> None:
        result = blender_write("Blender's save", out, lambda: bpy.ops.wm.save_as_mainfile(
            filepath=str(tmp), check_existing=False, copy=True, compress=True))
        if "FINISHED" not in result or not tmp.is_file():
            raise RetargetError(f"Blender could not save {out}")
        if before_commit is not None:
            before_commit()

    with exists_as_retarget_error():
        return atomic_write(out, write, replace=replace, numbered=numbered, suffix=suffix)


@contextlib.contextmanager
def exists_as_retarget_error():
    """``common.errors.OutputExistsError`` (a commit that lost a race) as this package's."""
    from ...common.errors import OutputExistsError as AnyOutputExists

    try:
        yield
    except AnyOutputExists as exc:
        if isinstance(exc, OutputExistsError):
            raise
        raise OutputExistsError(str(exc)) from None
