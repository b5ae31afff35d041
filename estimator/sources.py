# SPDX-License-Identifier: GPL-3.0-or-later
"""Frame sources: one image, several images, an image-sequence folder, a video file.

Every source yields ``Frame(index, image)`` with ``image`` an RGB uint8 array
(H, W, 3) and ``index`` the frame's number in the source (0-based: the video's
frame number, or the position of the image in the naturally sorted list).

Decoding runs on a background thread and hands frames over through a bounded
queue (``FramePrefetcher``), so reading the next frames overlaps with inference
and memory stays flat however long the video is. OpenCV releases the GIL while
it decodes, so a thread is enough.

Video rotation metadata (phones record portrait video as landscape frames plus
a display-matrix rotation) is honoured: OpenCV's FFmpeg backend is asked to
apply it (``CAP_PROP_ORIENTATION_AUTO``); when the backend cannot,
``CAP_PROP_ORIENTATION_META`` is read and the frames are rotated here.

All problems a user can cause (missing, empty, unreadable, corrupt files, a
folder without images, a frame range outside the clip, a picture larger than the
pixel limit) raise ``SourceError`` with a one-line message.

Pixel limit (decompression bombs). A small file can declare a huge picture (a
2.6 MB PNG of 30000 x 30000 pixels decodes to 2.7 GB). Before anything is
decoded, the size an image declares is read from its header
(``image_header.declared_size``; a file whose size cannot be read that way is
refused) and a video's frame size from its container (OpenCV's
``CAP_PROP_FRAME_WIDTH/HEIGHT``); more than ``max_pixels`` (default
``DEFAULT_MAX_PIXELS`` = 8192 x 8192 = 67 Mpx, raised with ``--max-pixels``) is
refused. 67 Mpx holds 8K video (7680 x 4320 = 33 Mpx) and the photos of most
cameras and phones (<= 50 Mpx) and costs ~200 MB per decoded frame; the network
sees a 256 x 192 crop, so larger pictures add nothing but memory. OpenCV's own
limit ``OPENCV_IO_MAX_IMAGE_PIXELS`` (default 2**30) is the ceiling
``--max-pixels`` can be raised to. The read-ahead queue is bounded by bytes
(``READ_AHEAD_BYTES``) as well as by frames.

A video that ends before the frame count its container announces (a truncated
download) is read as far as it decodes; the source then records
``ended_early = (frames decoded, frames announced)`` for the caller to report.

Library chatter: OpenCV's log lines (``[ WARN:0@0.035] ...``) and FFmpeg's
(``moov atom not found``) would be printed on the user's terminal ahead of our
one-line message. They are switched off here, before cv2 is first used
(``OPENCV_LOG_LEVEL=SILENT``, ``OPENCV_FFMPEG_LOGLEVEL=-8`` = AV_LOG_QUIET);
a value already set in the environment wins, so setting e.g.
``OPENCV_LOG_LEVEL=INFO OPENCV_FFMPEG_LOGLEVEL=32`` brings them back for
debugging. What C code still writes to the process's stderr itself (libpng's
``libpng error: Not enough image data``) while a source is opened on the main
thread is caught (``quiet_native_stderr``) and kept in this module's log
(``logging`` DEBUG) instead of the terminal.
"""
from __future__ import annotations

import logging
import os
import queue
import re
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

# Before cv2 is imported (OpenCV reads these once): see "Library chatter" and
# "Pixel limit" above. A value the user set wins.
_QUIET_OPENCV = "OPENCV_LOG_LEVEL" not in os.environ
os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # read at the first video opened
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(2**30))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

if _QUIET_OPENCV and hasattr(cv2, "setLogLevel"):
    cv2.setLogLevel(0)  # SILENT, also when cv2 was imported (and its level read) before us

from ..common.errors import P2PError  # noqa: E402
from .image_header import HeaderError, declared_size  # noqa: E402

IMAGE_EXTENSIONS = frozenset({
    ".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".jp2",
    ".pbm", ".pgm", ".ppm", ".pnm", ".exr", ".hdr", ".pic", ".ras", ".sr",
})
VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv",
    ".3gp", ".3g2", ".mts", ".m2ts", ".ts", ".mxf", ".ogv", ".gif", ".y4m", ".dv",
})
# Used when a source has no frame rate of its own (images); overridable.
DEFAULT_IMAGE_FPS = 30.0
# Largest picture (width x height) decoded unless raised with --max-pixels (see above).
DEFAULT_MAX_PIXELS = 8192 * 8192
# Decoded frames waiting in the read-ahead queue at most (besides the frame count).
READ_AHEAD_BYTES = 512 * 2**20


class SourceError(P2PError):
    """A problem with the input the user gave; the message is one line, printed as is."""


def opencv_pixel_ceiling() -> int:
    """OpenCV's own limit (``OPENCV_IO_MAX_IMAGE_PIXELS``): no image above it is decoded."""
    text = os.environ.get("OPENCV_IO_MAX_IMAGE_PIXELS", "").strip()
    try:
        return max(1, int(text))
    except ValueError:  # OpenCV also takes "1G"-style sizes; stay within its default then
        return 2**30


def _mpx(pixels: int) -> str:
    return f"{pixels / 1e6:.0f} Mpx" if pixels >= 10**7 else f"{pixels / 1e6:.1f} Mpx"


def parse_max_pixels(value) -> int:
    """``--max-pixels``: ``N`` pixels or ``WxH``; None = ``DEFAULT_MAX_PIXELS``."""
    ceiling = opencv_pixel_ceiling()
    if value is None or str(value).strip() == "":
        return min(DEFAULT_MAX_PIXELS, ceiling)
    text = str(value).strip()
    try:
        parts = [int(p) for p in re.split(r"[xX*]", text)] if not isinstance(value, int) \
            else [value]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts) < 1:
        raise SourceError(f"--max-pixels {text}: expected a number of pixels (e.g. 100000000) "
                          "or WIDTHxHEIGHT (e.g. 12000x9000)")
    pixels = parts[0] if len(parts) == 1 else parts[0] * parts[1]
    if pixels > ceiling:
        raise SourceError(f"--max-pixels {text}: OpenCV decodes at most {ceiling} pixels here "
                          "(raise its environment variable OPENCV_IO_MAX_IMAGE_PIXELS first)")
    return pixels


def check_pixels(path, width: int, height: int, max_pixels: int, what: str) -> None:
    """Refuse a picture of ``width`` x ``height`` above ``max_pixels`` (one line)."""
    pixels = int(width) * int(height)
    if pixels <= max_pixels:
        return
    ceiling = opencv_pixel_ceiling()
    how = (f"if you trust the file, raise the limit with --max-pixels {pixels}"
           if pixels <= ceiling else
           f"OpenCV decodes at most {ceiling} pixels (OPENCV_IO_MAX_IMAGE_PIXELS)")
    raise SourceError(f"{path}: {what} {width}x{height} pixels ({_mpx(pixels)}), more than "
                      f"the limit of {max_pixels} pixels ({_mpx(max_pixels)}); {how}")


@dataclass(frozen=True)
class FrameRange:
    """Frames ``start, start+step, ...`` below ``stop`` (``None`` = to the end)."""

    start: int = 0
    stop: int | None = None
    step: int = 1

    @classmethod
    def parse(cls, text: str | None) -> "FrameRange":
        """Parse ``A:B:STEP`` (each part optional, like a Python slice; ``B`` excluded).

        ``"10"`` alone means frame 10 only.
        """
        if text is None or str(text).strip() in ("", ":", "::"):
            return cls()
        s = str(text).strip()
        parts = s.split(":")
        if len(parts) > 3:
            raise SourceError(f"--frames {s!r}: expected A:B:STEP")
        try:
            vals = [int(p) if p.strip() else None for p in parts]
        except ValueError:
            raise SourceError(f"--frames {s!r}: A, B and STEP must be whole numbers") from None
        if len(vals) == 1:
            a = vals[0]
            return cls._checked(s, a, a + 1 if a is not None else None, 1)
        a, b = vals[0], vals[1]
        step = vals[2] if len(vals) == 3 and vals[2] is not None else 1
        return cls._checked(s, a or 0, b, step)

    @classmethod
    def _checked(cls, s, a, b, step) -> "FrameRange":
        if a is not None and a < 0 or b is not None and b < 0:
            raise SourceError(f"--frames {s!r}: frame numbers count from 0 and cannot be negative")
        if step is None or step < 1:
            raise SourceError(f"--frames {s!r}: STEP must be 1 or more")
        if b is not None and b <= (a or 0):
            raise SourceError(f"--frames {s!r}: the end B must be after the start A")
        return cls(a or 0, b, step)

    def indices(self, count: int) -> range:
        """The selected frame numbers of a clip of ``count`` frames (end clamped to the clip).

        Raises ``SourceError`` when the range selects nothing inside the clip.
        """
        if self.start >= count:
            raise SourceError(
                f"frame range {self} is outside the clip: it has {count} frame"
                f"{'s' if count != 1 else ''} (0..{max(count - 1, 0)})")
        stop = count if self.stop is None else min(self.stop, count)
        return range(self.start, stop, self.step)

    def __str__(self) -> str:
        return f"{self.start}:{'' if self.stop is None else self.stop}:{self.step}"


@dataclass
class Frame:
    index: int
    image: np.ndarray  # RGB uint8 (H, W, 3)


_log = logging.getLogger(__name__)
_QUIET = threading.Lock()


class quiet_native_stderr:
    """``with quiet_native_stderr(): ...``: what C libraries write to file descriptor 2
    meanwhile (libpng, FFmpeg) goes to this module's log (DEBUG), not the terminal.

    Only on the main thread, and not nested (a decode thread's writes would be caught
    along with anything the main thread prints; elsewhere this does nothing).
    """

    def __enter__(self):
        self._saved = None
        if threading.current_thread() is not threading.main_thread() or \
                not _QUIET.acquire(blocking=False):
            return self
        self._tmp = None
        try:
            try:
                sys.stderr.flush()
            except (AttributeError, OSError, ValueError):
                pass
            self._tmp = tempfile.TemporaryFile()
            self._saved = os.dup(2)
            os.dup2(self._tmp.fileno(), 2)
        except OSError:  # no fd 2, no temp folder: leave stderr as it is
            if self._saved is not None:
                os.close(self._saved)
                self._saved = None
            if self._tmp is not None:
                self._tmp.close()
            _QUIET.release()
        return self

    def __exit__(self, *exc):
        if self._saved is None:
            return False
        try:
            os.dup2(self._saved, 2)
            os.close(self._saved)
            self._tmp.seek(0)
            text = self._tmp.read(64 * 1024).decode("utf-8", "replace").strip()
            self._tmp.close()
            if text:
                _log.debug("messages of the image/video libraries: %s", text)
        finally:
            _QUIET.release()
        return False


def natural_key(name: str):
    """Sort key for 'frame2.png' < 'frame10.png' (digit runs compare as numbers)."""
    parts = [(0, int(t), "") if t.isdigit() else (1, 0, t.lower())
             for t in re.split(r"(\d+)", name) if t != ""]
    return parts, name  # ties (case, leading zeros) broken by the plain name


def _check_file(path: Path) -> None:
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    if not path.is_file():
        raise SourceError(f"{path}: not a file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SourceError(f"{path}: cannot read it ({exc.strerror})") from None
    if size == 0:
        raise SourceError(f"{path}: the file is empty (0 bytes)")
    if not os.access(path, os.R_OK):
        raise SourceError(f"{path}: no permission to read it")


def image_size(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """(W, H) an image file declares in its header, refused above ``max_pixels``; no decoding."""
    try:
        w, h, fmt = declared_size(path)
    except HeaderError as exc:
        raise SourceError(f"{path}: not a readable image ({exc})") from None
    except OSError as exc:
        raise SourceError(f"{path}: cannot read it ({exc.strerror})") from None
    check_pixels(path, w, h, max_pixels, f"the {fmt} image declares")
    return w, h


def read_image_rgb(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3); alpha dropped, grey expanded, 16-bit scaled.

    The size the file declares is checked against ``max_pixels`` before it is decoded.
    """
    _check_file(path)
    image_size(path, max_pixels)
    try:
        data = np.fromfile(str(path), dtype=np.uint8)  # works with non-ASCII paths on Windows
    except OSError as exc:
        raise SourceError(f"{path}: cannot read it ({exc.strerror})") from None
    # IMREAD_COLOR: 8-bit BGR, grey expanded, alpha dropped, 16-bit scaled down, and the
    # EXIF orientation of photos applied (as every photo viewer shows them).
    try:
        with quiet_native_stderr():
            img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error:  # OpenCV's own checks (e.g. its pixel ceiling) raise for some files
        img = None
    del data
    if img is None:
        raise SourceError(f"{path}: not a readable image (corrupt or unsupported format)")
    # The header was checked; a decoder that disagrees with it still meets the limit.
    check_pixels(path, img.shape[1], img.shape[0], max_pixels, "the image decodes to")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


# --------------------------------------------------------------------------------------------
class Source:
    """Common interface. ``indices`` are the selected frame numbers; ``read()`` yields frames."""

    kind: str = ""
    description: str = ""
    location: str = ""  # what the take's ``source`` says: the file or folder (paths joined)
    fps: float = DEFAULT_IMAGE_FPS
    image_size: tuple[int, int] = (0, 0)  # (W, H) of the first selected frame
    indices: Sequence[int] = ()
    name_stem: str = "take"
    default_dir: Path = Path(".")

    def __len__(self) -> int:
        return len(self.indices)

    def read(self, stop: threading.Event | None = None) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class ImageListSource(Source):
    """A single image, several images, or the images of a folder (natural sort)."""

    def __init__(self, paths: Sequence[Path], frames: FrameRange, *, kind: str, label: str,
                 fps: float | None = None, name_stem: str = "take", default_dir: Path = Path("."),
                 location: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS):
        self.paths = [Path(p) for p in paths]
        self.max_pixels = max_pixels
        self.location = location or os.pathsep.join(str(p.resolve()) for p in self.paths)
        self.kind = kind
        self.indices = frames.indices(len(self.paths))
        self.fps = float(fps) if fps else DEFAULT_IMAGE_FPS
        self.description = label
        self.name_stem = name_stem
        self.default_dir = default_dir
        # Every selected image's declared size, before anything is decoded (a header that
        # cannot be read is reported when that image's turn comes, as a decode error).
        for i in self.indices:
            try:
                w, h, fmt = declared_size(self.paths[i])
            except (HeaderError, OSError):
                continue
            check_pixels(self.paths[i], w, h, self.max_pixels, f"the {fmt} image declares")
        first = read_image_rgb(self.paths[self.indices[0]], self.max_pixels)
        self._first = (self.indices[0], first)
        self.image_size = (int(first.shape[1]), int(first.shape[0]))

    def read(self, stop: threading.Event | None = None) -> Iterator[Frame]:
        for i in self.indices:
            if stop is not None and stop.is_set():
                return
            if self._first is not None and self._first[0] == i:
                img, self._first = self._first[1], None
            else:
                img = read_image_rgb(self.paths[i], self.max_pixels)
            yield Frame(i, img)


_ROTATIONS = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180,
              270: cv2.ROTATE_90_COUNTERCLOCKWISE}


class VideoSource(Source):
    """A video file read with OpenCV (FFmpeg backend), rotation metadata honoured."""

    kind = "video"

    def __init__(self, path: Path, frames: FrameRange, *, fps: float | None = None,
                 backend_rotation: bool = True, max_pixels: int = DEFAULT_MAX_PIXELS):
        _check_file(path)
        self.path = Path(path)
        self.description = str(path)
        self.location = str(self.path.resolve())
        self.name_stem = self.path.stem
        self.default_dir = self.path.parent
        self.max_pixels = max_pixels
        # (frames decoded, frames announced) when decoding ended before the container's count
        self.ended_early: tuple[int, int] | None = None
        self._backend_rotation = backend_rotation
        with quiet_native_stderr():
            self._probe(frames, fps, max_pixels)

    def _probe(self, frames: FrameRange, fps, max_pixels) -> None:
        path = self.path
        cap, rotate = self._open()
        try:
            # The frame size the container declares, before a frame is decoded.
            w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
            h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
            check_pixels(self.path, w, h, max_pixels, "the video's frames are")
            ok, first = cap.read()
            if not ok or first is None:
                raise SourceError(f"{path}: not a readable video (corrupt, empty or unsupported)")
            self._check_frame(first)
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            src_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        finally:
            cap.release()
        self.rotation = rotate  # degrees applied here (0 when the backend applies it)
        first = self._orient(first)
        self.image_size = (int(first.shape[1]), int(first.shape[0]))
        if count <= 0:
            count = self._count_frames()
        self.frame_count = count
        self.indices = frames.indices(count)
        self.fps = float(fps) if fps else (src_fps if 0 < src_fps < 1000 else DEFAULT_IMAGE_FPS)
        if frames.step > 1 and not fps:
            self.fps = self.fps / frames.step

    def _open(self):
        cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{self.path}: not a readable video or image "
                              "(corrupt, or a format OpenCV cannot open)")
        meta = int(round(cap.get(cv2.CAP_PROP_ORIENTATION_META) or 0)) % 360
        auto = False
        if self._backend_rotation:
            cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
            auto = cap.get(cv2.CAP_PROP_ORIENTATION_AUTO) == 1
        else:
            cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
        rotate = 0 if auto else meta if meta in _ROTATIONS else 0
        return cap, rotate

    def _check_frame(self, bgr: np.ndarray) -> None:
        """A decoded frame larger than the limit (the stream changed size) is refused too."""
        check_pixels(self.path, bgr.shape[1], bgr.shape[0], self.max_pixels,
                     "the video has frames of")

    def _orient(self, bgr: np.ndarray) -> np.ndarray:
        if self.rotation:
            bgr = cv2.rotate(bgr, _ROTATIONS[self.rotation])
        return bgr

    def _count_frames(self) -> int:
        cap, _ = self._open()
        n = 0
        try:
            while cap.grab():
                n += 1
        finally:
            cap.release()
        return n

    def read(self, stop: threading.Event | None = None) -> Iterator[Frame]:
        self.ended_early = None
        cap, _ = self._open()
        try:
            wanted = iter(self.indices)
            nxt = next(wanted, None)
            pos = 0
            while nxt is not None:
                if stop is not None and stop.is_set():
                    return
                if pos < nxt:  # skip without converting (stride, start offset)
                    if not cap.grab():
                        self._ended_at(pos)  # the container claimed more frames than it has
                        return
                    pos += 1
                    continue
                ok, bgr = cap.read()
                if not ok or bgr is None:
                    self._ended_at(pos)
                    return
                pos += 1
                self._check_frame(bgr)
                bgr = self._orient(bgr)
                yield Frame(nxt, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                nxt = next(wanted, None)
        finally:
            cap.release()


    def _ended_at(self, decoded: int) -> None:
        if decoded < self.frame_count:
            self.ended_early = (decoded, self.frame_count)


def _is_image_name(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTENSIONS


def open_source(inputs, frames: FrameRange | str | None = None, *, fps: float | None = None,
                backend_rotation: bool = True, max_pixels: int | str | None = None) -> Source:
    """Open one path (image, video, folder) or a list of image paths.

    ``frames`` selects a range/stride of the source's frames. ``fps`` overrides the
    frame rate (images have none; 30 is assumed). ``max_pixels`` (a number or
    ``"WxH"``; default ``DEFAULT_MAX_PIXELS``): larger pictures are refused before
    they are decoded. Raises ``SourceError``.
    """
    if not isinstance(frames, FrameRange):
        frames = FrameRange.parse(frames)
    limit = {"max_pixels": parse_max_pixels(max_pixels)}
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    paths = [Path(p).expanduser() for p in inputs]
    if not paths:
        raise SourceError("no input given")
    if len(paths) > 1:
        for p in paths:
            if p.is_dir():
                raise SourceError(f"{p}: a folder; give one folder, or image files only")
            _check_file(p)
            if not _is_image_name(p):
                raise SourceError(f"{p}: several inputs must all be images "
                                  f"(one video at a time)")
        return ImageListSource(paths, frames, kind="images", fps=fps,
                               label=f"{len(paths)} images ({paths[0].name}, ...)",
                               name_stem=paths[0].stem, default_dir=paths[0].parent, **limit)
    path = paths[0]
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.is_file() and _is_image_name(p)
                        and not p.name.startswith(".")), key=lambda p: natural_key(p.name))
        if not files:
            raise SourceError(f"{path}: the folder holds no images "
                              f"({', '.join(sorted(e[1:] for e in ('.jpg', '.png', '.bmp', '.tif', '.webp')))}, ...)")
        return ImageListSource(files, frames, kind="folder", fps=fps,
                               label=f"{path} ({len(files)} images)",
                               location=str(path.resolve()),
                               name_stem=path.name or "take", default_dir=path.parent,
                               **limit)
    _check_file(path)
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS and suffix != ".gif":
        return ImageListSource([path], frames, kind="image", fps=fps, label=str(path),
                               name_stem=path.stem, default_dir=path.parent, **limit)
    if suffix not in VIDEO_EXTENSIONS:
        # Unknown name: an image if OpenCV recognises its signature, else try it as video.
        if cv2.haveImageReader(str(path)):
            return ImageListSource([path], frames, kind="image", fps=fps, label=str(path),
                                   name_stem=path.stem, default_dir=path.parent, **limit)
    return VideoSource(path, frames, fps=fps, backend_rotation=backend_rotation, **limit)


# --------------------------------------------------------------------------------------------
_END = object()


class FramePrefetcher:
    """Decode a source on a background thread into a bounded queue.

    Iterate it to get frames in order; ``close()`` stops the thread. At most
    ``depth`` decoded frames, and at most ``max_bytes`` of them (but always at
    least one frame), wait in memory. Errors raised while decoding are re-raised
    in the consumer.
    """

    def __init__(self, source: Source, depth: int = 8, max_bytes: int = READ_AHEAD_BYTES):
        self.source = source
        self._q: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
        self._max_bytes = max(1, int(max_bytes))
        self._bytes = 0  # image bytes of the frames queued
        self._room = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="p2p-decode", daemon=True)
        self._thread.start()

    @property
    def queued_bytes(self) -> int:
        with self._room:
            return self._bytes

    def _put(self, item) -> bool:
        size = item.image.nbytes if isinstance(item, Frame) else 0
        with self._room:
            while self._bytes and self._bytes + size > self._max_bytes:
                if self._stop.is_set():
                    return False
                self._room.wait(0.1)
            self._bytes += size
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for frame in self.source.read(self._stop):
                if not self._put(frame):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._put(exc)
            return
        self._put(_END)

    def get(self, timeout: float | None = None):
        """The next frame, or ``None`` at the end of the source."""
        item = self._q.get(timeout=timeout)
        if item is _END:
            self._q.put(_END)  # stay at the end for further calls
            return None
        if isinstance(item, BaseException):
            raise item
        with self._room:
            self._bytes -= item.image.nbytes
            self._room.notify_all()
        return item

    def __iter__(self) -> Iterator[Frame]:
        while True:
            f = self.get()
            if f is None:
                return
            yield f

    def close(self) -> None:
        self._stop.set()
        try:
            while True:
                self._q.get_nowait()
        except queue.Empty:
            pass
        with self._room:
            self._bytes = 0
            self._room.notify_all()
        self._thread.join(timeout=5)
        self.source.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
