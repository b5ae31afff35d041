# SPDX-License-Identifier: GPL-3.0-or-later
"""The one ``-o`` rule of every command (convert, export, estimate, import, batch, clean,
qa, retarget) and the one default-name scheme.

``-o`` is either

* a **folder**: an existing folder, or any name ending in ``/``. The default name
  goes inside it (``clip.blend``, ``clip.unity.fbx``, ``clip.take.npz`` ...), numbered
  when taken. A missing folder is **created only when the name ends in** ``/``
  (``-o renders/``); it is removed again when the run writes nothing into it.
* a **file**: written exactly there; it must have the command's suffix, its folder
  must exist, and an existing file is replaced only with ``--force``.

Without ``-o`` the default name goes next to the input.

Default names are ``STEM + TAIL`` (``TAIL`` the whole extension: ``.blend``,
``.take.npz``, ``.unity.fbx``); when taken, the number goes on the stem:
``clip-2.blend``, ``clip-2.take.npz``, ``clip-2.unity.fbx`` (so ``clip-2.take.npz``
converts to ``clip-2.blend``). Files named with ``-o`` are never numbered.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import P2PError

# The sentence every --help and the README use.
FOLDER_RULE = ("an existing folder or a name ending in / gets the default name inside it "
               "(a missing folder is created only for a name ending in /)")


class OutputPathError(P2PError, ValueError):
    """An ``-o`` the command cannot write to (wrong suffix, missing folder, a file where a
    folder is meant)."""


def output_help(what: str, default: str) -> str:
    """The ``-o`` help text: ``what`` to write, the ``default`` name, and the folder rule."""
    return f"{what}, or a folder: {FOLDER_RULE}; default: {default} (numbered if taken)"


def names_folder(arg) -> bool:
    """True when ``-o arg`` means a folder: it ends in ``/`` (or the OS separator) or is
    an existing folder."""
    text = os.fspath(arg)
    return text.endswith(("/", os.sep)) or Path(text).expanduser().is_dir()


@dataclass(frozen=True)
class Output:
    """Where a command writes: ``path``; ``numbered`` when it is a default name (take
    the next free ``STEM-N + tail`` when taken); ``tail`` the default name's whole
    extension; ``make_folder`` a folder to create first (``-o new/``), else None."""

    path: Path
    numbered: bool
    tail: str
    make_folder: Path | None = None

    @property
    def folder(self) -> Path:
        return self.path.parent

    @contextlib.contextmanager
    def folder_made(self):
        """Create ``make_folder`` (with its parents) for the run; the folders this made
        are removed again at the end when they are still empty (a failed run)."""
        made = []
        if self.make_folder is not None:
            missing = [p for p in (self.make_folder, *self.make_folder.parents)
                       if not p.exists()]
            try:
                self.make_folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputPathError(f"-o {self.make_folder}/: could not create the folder: "
                                      f"{os.strerror(exc.errno) if exc.errno else exc}") from None
            made = missing   # innermost first
        try:
            yield self
        finally:
            for p in made:
                try:
                    p.rmdir()   # only when empty
                except OSError:
                    break


def numbered_name(stem: str, tail: str, n: int) -> str:
    """``stem + tail`` for ``n == 1``, else ``stem-n + tail`` (the one numbering scheme)."""
    return f"{stem}{tail}" if n <= 1 else f"{stem}-{n}{tail}"


def resolve_output(arg, stem: str, tail: str, *, next_to: Path | str,
                   suffixes: tuple[str, ...] | None = None, what: str = "output") -> Output:
    """The file a command writes for ``-o arg`` (None: not given).

    ``stem + tail`` is the default name (``tail`` its whole extension); ``next_to`` the
    folder it goes into without ``-o``; ``suffixes`` the suffixes a named file may have
    (default: the last part of ``tail``). Raises :class:`OutputPathError` (one line).
    Existence is not checked here: a named file that exists is the writer's to refuse
    (without ``--force``), a default name is numbered.
    """
    suffixes = tuple(s.lower() for s in (suffixes or ("." + tail.rsplit(".", 1)[-1],)))
    default = numbered_name(stem, tail, 1)
    if arg is None or os.fspath(arg) == "":
        return Output(Path(next_to) / default, True, tail)
    text = os.fspath(arg)
    given = Path(text).expanduser()
    if names_folder(text):
        if given.is_dir():
            return Output(given / default, True, tail)
        if os.path.lexists(given):
            raise OutputPathError(f"-o {text}: exists and is not a folder")
        return Output(given / default, True, tail, make_folder=given)
    if given.suffix.lower() not in suffixes:
        want = " or ".join(suffixes)
        raise OutputPathError(f"-o {text}: the {what} must be a {want} file, or a folder "
                              "(an existing one, or a name ending in /)")
    folder = given.parent if str(given.parent) else Path(".")
    if not folder.is_dir():
        raise OutputPathError(f"-o {text}: no such folder {folder} (a missing folder is "
                              f"created only for -o {folder}/, with the default name)")
    return Output(given, False, tail)


def resolve_output_folder(arg) -> Output:
    """``batch -o OUT_FOLDER``: always a folder, created when missing (as ``-o OUT/``);
    ``path`` is the folder itself."""
    text = os.fspath(arg)
    given = Path(text).expanduser()
    if given.is_dir():
        return Output(given, False, "")
    if os.path.lexists(given):
        raise OutputPathError(f"-o {text}: exists and is not a folder")
    return Output(given, False, "", make_folder=given)
