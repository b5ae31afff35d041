# SPDX-License-Identifier: GPL-3.0-or-later
"""The one way this project writes a file a user will see.

Every output (takes, ``.blend`` files, exports, converted checkpoints, installed
model files) is written to a hidden temporary file beside the target and then
*committed* in one step:

* without ``replace``: a no-replace commit (``os.link`` of the temporary file, or
  ``renameat2(RENAME_NOREPLACE)`` / ``renamex_np(RENAME_EXCL)`` / Windows' rename
  where links are not supported). Of two runs writing the same name, exactly one
  wins; the other gets :class:`OutputExistsError` (or, for default names, the
  next numbered name). A file that appeared between a check and the commit is
  never replaced.
* with ``replace`` (the user said ``--force``): ``os.replace``.

Temporary files have one exact form, ``.{stem}.p2p-{host}-{pid}-{token}.part{suffix}``
(Blender adds ``@`` while saving), so that :func:`remove_stale_temps` can delete
exactly ours, and only those whose writing process is gone.
"""
from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import socket
import sys
from pathlib import Path
from typing import Callable, Iterator

from .errors import OutputExistsError, OutputWriteError, describe_os_error

_HOST = hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:6]

TEMP_RE = re.compile(
    r"^\.(?P<stem>.+)\.p2p-(?P<host>[0-9a-f]{6})-(?P<pid>\d{1,10})-(?P<token>[0-9a-f]{8})"
    r"\.part(?P<suffix>\.[A-Za-z0-9]{1,8})?(?P<extra>@|1)?$")


# --------------------------------------------------------------------------- names

def temp_path_for(target: Path) -> Path:
    """A fresh temporary path beside ``target`` (same suffix, so exporters accept it)."""
    target = Path(target)
    return target.with_name(f".{target.stem}.p2p-{_HOST}-{os.getpid()}-{secrets.token_hex(4)}"
                            f".part{target.suffix}")


def is_our_temp(name: str) -> bool:
    """True for a name of the exact form :func:`temp_path_for` makes (plus Blender's ``@``/``1``)."""
    return TEMP_RE.match(name) is not None


def numbered_names(path, suffix: str | None = None) -> Iterator[Path]:
    """``path`` itself, then ``stem-2 + suffix``, ``stem-3 + suffix``, ... (endless).

    ``suffix`` is the part kept at the end (default ``path.suffix``; pass
    ``".take.npz"`` to number ``clip.take.npz`` as ``clip-2.take.npz``).
    """
    path = Path(path)
    suffix = path.suffix if suffix is None else suffix
    name = path.name
    base = name[: -len(suffix)] if suffix and name.endswith(suffix) else name
    yield path
    n = 2
    while True:
        yield path.with_name(f"{base}-{n}{suffix}")
        n += 1


def next_free_name(path, suffix: str | None = None) -> Path:
    """The first of :func:`numbered_names` that does not exist now (a hint; commit decides)."""
    for candidate in numbered_names(path, suffix):
        if not os.path.lexists(candidate):
            return candidate
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- commit

def _rename_noreplace(src: str, dst: str) -> bool:
    """Rename without replacing; False where the platform/filesystem cannot do it."""
    if sys.platform == "win32":
        os.rename(src, dst)  # Windows' rename never replaces: FileExistsError
        return True
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:
        return False
    if sys.platform.startswith("linux") and hasattr(libc, "renameat2"):
        at_fdcwd, rename_noreplace = -100, 1
        res = libc.renameat2(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst),
                             rename_noreplace)
    elif sys.platform == "darwin" and hasattr(libc, "renamex_np"):
        res = libc.renamex_np(os.fsencode(src), os.fsencode(dst), 0x4)  # RENAME_EXCL
    else:
        return False
    if res == 0:
        return True
    err = ctypes.get_errno()
    if err == errno.EEXIST:
        raise FileExistsError(err, os.strerror(err), dst)
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), dst)


def _claim_then_replace(src: str, dst: str) -> None:
    """Last resort: claim ``dst`` with O_EXCL, then move the data over our own claim."""
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    os.close(fd)
    os.replace(src, dst)


def commit(tmp, target, *, replace: bool = False) -> Path:
    """Move the finished ``tmp`` to ``target`` in one step; return ``target``.

    Without ``replace`` an existing ``target`` (even one that appeared a moment
    ago) raises :class:`OutputExistsError` and ``tmp`` is left for the caller.
    """
    tmp, target = os.fspath(tmp), Path(target)
    if replace:
        os.replace(tmp, target)
        return target
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise OutputExistsError(f"{target} exists; not overwriting it") from None
    except (OSError, NotImplementedError, AttributeError) as exc:
        if isinstance(exc, OSError) and exc.errno not in (
                errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS,
                errno.EACCES, None):
            raise
        try:
            if not _rename_noreplace(tmp, os.fspath(target)):
                _claim_then_replace(tmp, os.fspath(target))
        except FileExistsError:
            raise OutputExistsError(f"{target} exists; not overwriting it") from None
        return target
    os.unlink(tmp)
    return target


def _discard(tmp: Path) -> None:
    for leftover in (tmp, Path(str(tmp) + "@"), Path(str(tmp) + "1")):
        try:
            os.unlink(leftover)
        except OSError:
            pass


def _fsync_file(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems / Windows read handles cannot fsync
        pass
    finally:
        os.close(fd)


def write_error(target, exc: OSError) -> OutputWriteError:
    """``could not write TARGET: CAUSE`` (one line) for an ordinary I/O failure."""
    if isinstance(exc, OutputWriteError):
        return exc
    return OutputWriteError(f"could not write {target}: {describe_os_error(exc)}")


_write_error = write_error

# Causes of a failed write that foreign code (Blender, Rust libraries) reports as text.
_WRITE_ERRNOS = tuple(e for e in (errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EACCES,
                                  errno.EPERM, getattr(errno, "EDQUOT", None), errno.EIO,
                                  errno.ENAMETOOLONG) if e is not None)
_ERRNO_RE = re.compile(r"\[Errno (\d+)\]|\(os error (\d+)\)")


def os_error_in_text(text: str) -> OSError | None:
    """The OS error that a foreign library's message reports, or None.

    Recognises Python's ``[Errno 28] ...`` (a traceback printed by Blender's
    operator machinery), Rust's ``(os error 28)`` (safetensors) and a bare
    ``strerror`` text such as Blender's ``Error: No space left on device``.
    """
    text = str(text or "")
    for m in _ERRNO_RE.finditer(text):
        num = int(m.group(1) or m.group(2))
        if 0 < num < 4096:
            return OSError(num, os.strerror(num))
    low = text.lower()
    for num in _WRITE_ERRNOS:
        if os.strerror(num).lower() in low:
            return OSError(num, os.strerror(num))
    return None


def output_folder_problem(folder) -> str | None:
    """Why outputs cannot go into ``folder`` -- ``"no such folder for the output"`` or
    ``"no permission to write there"`` -- or None. The one early check of an output
    folder (takes, .blend files, exports); a hint only: the commit decides."""
    folder = Path(folder)
    if not folder.is_dir():
        return "no such folder for the output"
    if not os.access(folder, os.W_OK):
        return "no permission to write there"
    return None


def atomic_write(target, write: Callable[[Path], None], *, replace: bool = False,
                 numbered: bool = False, suffix: str | None = None) -> Path:
    """Write a file through ``write(tmp_path)`` and commit it; return the path written.

    ``write`` must create ``tmp_path`` (it may raise; nothing is then left behind).
    ``replace``: replace an existing target (``--force``). ``numbered``: the name
    is a default, so take the next free ``-2``, ``-3`` ... name instead of
    failing (``suffix`` as in :func:`numbered_names`). Otherwise an existing
    target raises :class:`OutputExistsError`. Ordinary I/O failures (disk full,
    read-only folder) raise :class:`OutputWriteError` naming the file and cause.
    """
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise OutputWriteError(f"{folder}: no such folder for {target.name}")
    if not replace and not numbered and os.path.lexists(target):
        raise OutputExistsError(f"{target} exists; not overwriting it")
    tmp = temp_path_for(target)
    try:
        try:
            write(tmp)
        except OSError as exc:
            raise _write_error(target, exc) from None
        if not tmp.is_file():
            raise OutputWriteError(f"could not write {target}: the writer produced no file")
        _fsync_file(tmp)
        candidates = numbered_names(target, suffix) if numbered and not replace else iter([target])
        for candidate in candidates:
            if numbered and not replace and os.path.lexists(candidate):
                continue
            try:
                return commit(tmp, candidate, replace=replace)
            except OutputExistsError:
                if not numbered or replace:
                    raise OutputExistsError(
                        f"{candidate} exists (another run may have written it just now); "
                        "not overwriting it") from None
            except OSError as exc:
                raise _write_error(candidate, exc) from None
        raise AssertionError("unreachable")
    finally:
        _discard(tmp)


# --------------------------------------------------------------------------- clean-up

def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    if sys.platform == "win32":  # os.kill(pid, 0) would terminate the process on Windows
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return ctypes.GetLastError() == 5  # access denied: it exists
        try:
            code = ctypes.c_ulong()
            kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
            return code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    return True


def stale_temps(folder) -> list[Path]:
    """Our temporary files in ``folder`` (not below it) whose writing process is gone.

    Only names of our exact form, written on this machine (the host tag), by a
    process id that no longer runs. Anything else, hidden or not, is never listed.
    """
    folder = Path(folder)
    out = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        m = TEMP_RE.match(entry.name)
        if m is None or m["host"] != _HOST:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
        except OSError:
            continue
        if not _pid_alive(int(m["pid"])):
            out.append(Path(entry.path))
    return sorted(out)


def remove_stale_temps(folder) -> list[Path]:
    """Delete :func:`stale_temps` of ``folder``; return what was removed."""
    removed = []
    for p in stale_temps(folder):
        try:
            os.unlink(p)
            removed.append(p)
        except OSError:
            pass
    return removed
