# SPDX-License-Identifier: GPL-3.0-or-later
"""Resumable HTTP(S) downloads: Range requests, size/sha256 checks, a no-replace commit.

``download(url, dest, sha256=..., size=..., progress=cb)`` writes ``dest.part``
and continues it on the next call (``Range: bytes=N-``; a server that answers
200 instead of 206 makes it start over). Never more than the expected size is
written: a server that sends more (or offers more) is refused and the partial
file removed. Only when the whole file is there and its size and sha256 (or
sha256 prefix, as torchvision names its files) match is it committed to
``dest`` (``common.files.commit``, never replacing a file); a mismatch deletes
the partial file. Every failure (bad URL, HTTP error, redirect loop, dropped
or truncated chunked transfer, full disk) is a :class:`DownloadError` with one
line. Never called without the user's consent: the CLI needs
``--download-detector``, the add-on checks ``bpy.app.online_access``.

What is downloaded, from where, with which size and sha256, is fixed here
(:data:`DETECTOR_WEIGHTS`); the CLI and the add-on both call
:func:`download_detector_weights`.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..common.errors import OutputExistsError, P2PError, describe_os_error
from ..common.files import commit

CHUNK = 1 << 16
USER_AGENT = "pose2pose-mocap-downloader/1"
# Without an expected size, a download stops here (no model file is larger).
MAX_UNKNOWN_SIZE = 4 << 30


class DownloadError(P2PError):
    """The download failed; one line. A partial file may be kept for resuming."""


class DownloadCancelled(DownloadError):
    pass


@dataclass(frozen=True)
class RemoteFile:
    """A file this project may download: where from, its name, exact size and sha256."""

    url: str
    name: str
    size: int
    sha256: str
    subdir: str


# torchvision's Faster R-CNN ResNet-50 FPN COCO weights (the name carries the sha256 prefix).
DETECTOR_WEIGHTS = RemoteFile(
    url="https://download.pytorch.org/models/fasterrcnn_resnet50_fpn_coco-258fb6c6.pth",
    name="fasterrcnn_resnet50_fpn_coco-258fb6c6.pth",
    size=167_502_836,
    sha256="258fb6c638b15964ddcdd1ae0748c5eef1be9e732750120cc857feed3faac384",
    subdir="detector",
)


def _sha256_file(path: Path, h=None):
    h = h or hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h


def part_path(dest) -> Path:
    dest = Path(dest)
    return dest.with_name(dest.name + ".part")


def _one_line(text) -> str:
    text = " ".join(str(text).split())
    return text[:300] if text else "unknown error"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, http.client.IncompleteRead):
        return f"the connection closed early ({len(exc.partial)} bytes in the last piece)"
    reason = getattr(exc, "reason", None)
    if isinstance(reason, OSError):
        return describe_os_error(reason) if reason.errno else _one_line(reason)
    if isinstance(exc, OSError) and exc.errno:
        return describe_os_error(exc)
    return _one_line(reason if reason is not None else (exc or type(exc).__name__))


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _open(url: str, have: int, timeout: float):
    """The response, or None when the server says the file is already complete (416)."""
    try:
        scheme = urllib.parse.urlsplit(url).scheme.lower()
    except ValueError as exc:
        raise DownloadError(f"{url}: not a valid address ({_one_line(exc)})") from None
    if scheme not in ("http", "https"):
        raise DownloadError(f"{url}: not an http(s) address")
    try:
        req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        if have:
            req.add_header("Range", f"bytes={have}-")
        return urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and have:
            return None
        if 300 <= exc.code < 400:
            raise DownloadError(f"{url}: the server redirects in a loop or too often "
                                f"(HTTP {exc.code})") from None
        raise DownloadError(f"{url}: HTTP {exc.code} {_one_line(exc.reason)}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        raise DownloadError(f"{url}: {_reason(exc)}") from None


def download(url: str, dest, *, sha256: str | None = None, size: int | None = None,
             progress=None, cancel=None, timeout: float = 30.0) -> Path:
    """Fetch ``url`` into ``dest`` (resuming ``dest.part``); return ``dest``.

    sha256: the full hex digest or a prefix of it (>= 8 hex digits). size: bytes
    expected; never more is written (without it, at most ``MAX_UNKNOWN_SIZE``).
    progress(done, total_or_None) is called after every chunk.
    cancel: a callable; when it returns True the transfer stops, the partial
    file is kept and ``DownloadCancelled`` is raised. An existing ``dest`` is
    never replaced.
    """
    dest = Path(dest)
    part = part_path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        have = part.stat().st_size if part.exists() else 0
        if size is not None and have > size:
            part.unlink()
            have = 0
    except OSError as exc:
        raise DownloadError(f"{dest}: {describe_os_error(exc)}") from None
    resp = _open(url, have, timeout)
    if resp is None and size is not None and have != size:
        _unlink(part)  # a 416 for a partial file that is not the whole file: start over next time
        raise DownloadError(f"{url}: the server refused to resume at byte {have}; the partial "
                            "file was removed, run it again")
    if resp is not None:
        _receive(url, resp, part, have, size, progress, cancel)
    return _finish(url, part, dest, sha256, size)


def _receive(url, resp, part: Path, have: int, size, progress, cancel) -> None:
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
        limit = total if total is not None else MAX_UNKNOWN_SIZE
        done = have
        try:
            with open(part, mode) as out:
                while True:
                    if cancel is not None and cancel():
                        raise DownloadCancelled(f"{url}: cancelled after {done} bytes "
                                                "(will resume)")
                    try:
                        # One byte more than may come, to notice a server that sends too much.
                        chunk = resp.read(min(CHUNK, limit - done + 1))
                    except (OSError, ValueError, http.client.HTTPException) as exc:
                        raise DownloadError(f"{url}: connection lost after {done} bytes "
                                            f"({_reason(exc)}); run it again to resume") from None
                    if not chunk:
                        break
                    if done + len(chunk) > limit:
                        out.close()
                        _unlink(part)
                        raise DownloadError(f"{url}: the server sent more than the expected "
                                            f"{limit} bytes; stopped and removed the partial file")
                    out.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            raise DownloadError(f"{part}: {describe_os_error(exc)} (after {done} bytes; run it "
                                "again to resume)") from None
        if total is not None and done < total:
            raise DownloadError(f"{url}: connection closed after {done} of {total} bytes; "
                                "run it again to resume")


def _finish(url, part: Path, dest: Path, sha256, size) -> Path:
    try:
        got = part.stat().st_size
        if size is not None and got != size:
            part.unlink()
            raise DownloadError(f"{url}: got {got} bytes, expected {size}; the partial file "
                                "was removed")
        digest = _sha256_file(part).hexdigest()
        if sha256 and not digest.startswith(sha256.lower()):
            part.unlink()
            raise DownloadError(f"{url}: sha256 {digest[:16]}... does not match "
                                f"{sha256[:16]}...; the file was removed")
        try:
            return commit(part, dest)
        except OutputExistsError:
            if _sha256_file(dest).hexdigest() == digest:  # the same file, e.g. a parallel run
                part.unlink()
                return dest
            raise DownloadError(f"{dest} exists (with other content); not replacing it, the "
                                f"download was kept as {part.name}") from None
    except OSError as exc:
        raise DownloadError(f"{dest}: {describe_os_error(exc)}") from None


def download_detector_weights(dest_dir=None, *, progress=None, cancel=None,
                              spec: RemoteFile | None = None) -> Path:
    """torchvision's detector weights in ``dest_dir`` (default ``<user data dir>/detector``).

    An existing complete file is returned as is; otherwise it is downloaded
    (resumably), checked against the exact size and sha256 of :data:`DETECTOR_WEIGHTS`
    and committed.
    """
    from .locations import user_data_dir

    spec = spec or DETECTOR_WEIGHTS
    folder = Path(dest_dir) if dest_dir else user_data_dir() / spec.subdir
    dest = folder / spec.name
    if dest.is_file():
        return dest
    return download(spec.url, dest, sha256=spec.sha256, size=spec.size, progress=progress,
                    cancel=cancel)
