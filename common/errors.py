# SPDX-License-Identifier: GPL-3.0-or-later
"""The one error base class of the project.

Every error meant for a user derives from :class:`P2PError`; ``str(exc)`` is one
complete line that the CLI prints after ``error:`` and the add-on shows in a report.
Anything else that escapes is a bug (the CLI logs its traceback and says so).
"""
from __future__ import annotations


class P2PError(Exception):
    """A problem the user can act on; ``str(exc)`` is one complete line."""


class OutputExistsError(P2PError, ValueError):
    """An output file exists and replacing it was not asked for (or is not allowed)."""


class ModelFileError(P2PError, ValueError):
    """A missing or unusable body-model file (SMPL-X/SMPL): the estimator and the rig both raise it."""


class OutputWriteError(P2PError, OSError):
    """Writing an output failed for an ordinary reason (disk full, read-only, permissions)."""


def describe_os_error(exc: OSError) -> str:
    """``'No space left on device'`` etc.: the cause of an OSError without Python's decoration."""
    import errno
    import os

    if exc.errno is not None:
        text = os.strerror(exc.errno)
        if exc.errno == errno.ENOSPC:
            return "the disk is full (" + text + ")"
        return text
    return str(exc) or type(exc).__name__


def error_line(exc: BaseException, limit: int = 2000) -> str:
    """The one line a user sees for ``exc``: its message with white space folded; for an
    OSError, ``FILE: cause`` (``describe_os_error``)."""
    if isinstance(exc, OSError) and not isinstance(exc, P2PError):
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        return f"{where}{describe_os_error(exc)}"
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + " ..."
