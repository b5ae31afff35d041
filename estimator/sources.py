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
folder without images, a frame range outside the clip) raise ``SourceError``
with a one-line message.
"""
from __future__ import annotations

import os
import queue
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from ..common.errors import P2PError

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


class SourceError(P2PError):
    """A problem with the input the user gave; the message is one line, printed as is."""


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


def read_image_rgb(path: Path) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3); alpha dropped, grey expanded, 16-bit scaled."""
    _check_file(path)
    try:
        data = np.fromfile(str(path), dtype=np.uint8)  # works with non-ASCII paths on Windows
    except OSError as exc:
        raise SourceError(f"{path}: cannot read it ({exc.strerror})") from None
    # IMREAD_COLOR: 8-bit BGR, grey expanded, alpha dropped, 16-bit scaled down, and the
    # EXIF orientation of photos applied (as every photo viewer shows them).
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise SourceError(f"{path}: not a readable image (corrupt or unsupported format)")
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
                 location: str | None = None):
        self.paths = [Path(p) for p in paths]
        self.location = location or os.pathsep.join(str(p.resolve()) for p in self.paths)
        self.kind = kind
        self.indices = frames.indices(len(self.paths))
        self.fps = float(fps) if fps else DEFAULT_IMAGE_FPS
        self.description = label
        self.name_stem = name_stem
        self.default_dir = default_dir
        first = read_image_rgb(self.paths[self.indices[0]])
        self._first = (self.indices[0], first)
        self.image_size = (int(first.shape[1]), int(first.shape[0]))

    def read(self, stop: threading.Event | None = None) -> Iterator[Frame]:
        for i in self.indices:
            if stop is not None and stop.is_set():
                return
            if self._first is not None and self._first[0] == i:
                img, self._first = self._first[1], None
            else:
                img = read_image_rgb(self.paths[i])
            yield Frame(i, img)


_ROTATIONS = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180,
              270: cv2.ROTATE_90_COUNTERCLOCKWISE}


class VideoSource(Source):
    """A video file read with OpenCV (FFmpeg backend), rotation metadata honoured."""

    kind = "video"

    def __init__(self, path: Path, frames: FrameRange, *, fps: float | None = None,
                 backend_rotation: bool = True):
        _check_file(path)
        self.path = Path(path)
        self.description = str(path)
        self.location = str(self.path.resolve())
        self.name_stem = self.path.stem
        self.default_dir = self.path.parent
        self._backend_rotation = backend_rotation
        cap, rotate = self._open()
        try:
            ok, first = cap.read()
            if not ok or first is None:
                raise SourceError(f"{path}: not a readable video (corrupt, empty or unsupported)")
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
                        return  # the container claimed more frames than it has
                    pos += 1
                    continue
                ok, bgr = cap.read()
                if not ok or bgr is None:
                    return
                pos += 1
                bgr = self._orient(bgr)
                yield Frame(nxt, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                nxt = next(wanted, None)
        finally:
            cap.release()


def _is_image_name(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTENSIONS


def open_source(inputs, frames: FrameRange | str | None = None, *, fps: float | None = None,
                backend_rotation: bool = True) -> Source:
    """Open one path (image, video, folder) or a list of image paths.

    ``frames`` selects a range/stride of the source's frames. ``fps`` overrides the
    frame rate (images have none; 30 is assumed). Raises ``SourceError``.
    """
    if not isinstance(frames, FrameRange):
        frames = FrameRange.parse(frames)
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
                               name_stem=paths[0].stem, default_dir=paths[0].parent)
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
                               name_stem=path.name or "take", default_dir=path.parent)
    _check_file(path)
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS and suffix != ".gif":
        return ImageListSource([path], frames, kind="image", fps=fps, label=str(path),
                               name_stem=path.stem, default_dir=path.parent)
    if suffix not in VIDEO_EXTENSIONS:
        # Unknown name: an image if OpenCV recognises its signature, else try it as video.
        if cv2.haveImageReader(str(path)):
            return ImageListSource([path], frames, kind="image", fps=fps, label=str(path),
                                   name_stem=path.stem, default_dir=path.parent)
    return VideoSource(path, frames, fps=fps, backend_rotation=backend_rotation)


# --------------------------------------------------------------------------------------------
_END = object()


class FramePrefetcher:
    """Decode a source on a background thread into a bounded queue.

    Iterate it to get frames in order; ``close()`` stops the thread. At most
    ``depth`` decoded frames wait in memory. Errors raised while decoding are
    re-raised in the consumer.
    """

    def __init__(self, source: Source, depth: int = 8):
        self.source = source
        self._q: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="p2p-decode", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
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
        self._thread.join(timeout=5)
        self.source.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
