# SPDX-License-Identifier: GPL-3.0-or-later
"""Resumable HTTP(S) downloads: Range requests, size/sha256 checks, atomic rename.

``download(url, dest, sha256=..., size=..., progress=cb)`` writes ``dest.part``
and continues it on the next call (``Range: bytes=N-``; a server that answers
200 instead of 206 makes it start over). Only when the whole file is there and
its size and sha256 (or sha256 prefix, as torchvision names its files) match is
it renamed to ``dest``; a mismatch deletes the partial file. Never called
without the user's consent: the CLI needs ``--download-detector``, the add-on
checks ``bpy.app.online_access``.
"""
from __future__ import annotations

import hashlib
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from ..common.errors import P2PError

CHUNK = 1 << 16
USER_AGENT = "pose2pose-mocap-downloader/1"


class DownloadError(P2PError):
    """The download failed; one line. A partial file may be kept for resuming."""


class DownloadCancelled(DownloadError):
    pass


def _sha256_file(path: Path, h=None):
    h = h or hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h


def part_path(dest) -> Path:
    dest = Path(dest)
    return dest.with_name(dest.name + ".part")


def download(url: str, dest, *, sha256: str | None = None, size: int | None = None,
             progress=None, cancel=None, timeout: float = 30.0) -> Path:
    """Fetch ``url`` into ``dest`` (resuming ``dest.part``); return ``dest``.

    sha256: the full hex digest or a prefix of it (>= 8 hex digits). size: bytes
    expected. progress(done, total_or_None) is called after every chunk.
    cancel: a callable; when it returns True the transfer stops, the partial
    file is kept and ``DownloadCancelled`` is raised.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:
        part.unlink()
        have = 0
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have and (size is None or have == size):
            resp = None  # already complete
        else:
            raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(f"{url}: {getattr(exc, 'reason', exc)}") from None
    if resp is not None:
        with resp:
            status = getattr(resp, "status", 200)
            total = None
            mode = "ab"
            if have and status == 206:
                m = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", resp.headers.get("Content-Range", ""))
                if not m or int(m.group(1)) != have:
                    raise DownloadError(f"{url}: the server resumed at the wrong place")
                total = None if m.group(3) == "*" else int(m.group(3))
            else:
                have, mode = 0, "wb"   # no resume support: start over
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
            if size is not None and total is not None and total != size:
                raise DownloadError(f"{url}: the server offers {total} bytes, expected {size}")
            total = total if total is not None else size
            done = have
            with open(part, mode) as out:
                while True:
                    if cancel is not None and cancel():
                        raise DownloadCancelled(f"{url}: cancelled after {done} bytes "
                                                "(will resume)")
                    try:
                        chunk = resp.read(CHUNK)
                    except (OSError, ValueError) as exc:
                        raise DownloadError(f"{url}: connection lost after {done} bytes "
                                            f"({exc}); run it again to resume") from None
                    if not chunk:
                        break
                    out.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
                out.flush()
                os.fsync(out.fileno())
            if total is not None and done < total:
                raise DownloadError(f"{url}: connection closed after {done} of {total} bytes; "
                                    "run it again to resume")
    got = part.stat().st_size
    if size is not None and got != size:
        part.unlink()
        raise DownloadError(f"{url}: got {got} bytes, expected {size}; the partial file was "
                            "removed")
    if sha256:
        digest = _sha256_file(part).hexdigest()
        if not digest.startswith(sha256.lower()):
            part.unlink()
            raise DownloadError(f"{url}: sha256 {digest[:16]}... does not match "
                                f"{sha256[:16]}...; the file was removed")
    os.replace(part, dest)
    return dest
