"""Tiny test footage made with OpenCV (not collected: no test_ prefix)."""
from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

W, H = 320, 240


def frame(i: int, w: int = W, h: int = H) -> np.ndarray:
    """BGR frame i: a bright block whose position encodes i, and i in the top-left pixel row."""
    img = np.full((h, w, 3), 30, np.uint8)
    x = 10 + 8 * i
    cv2.rectangle(img, (x, 60), (x + 40, 200), (200, 180, 160), -1)
    img[:16, :16] = (i * 8) % 256
    return img


def frame_number(rgb: np.ndarray) -> int:
    """Recover i from a decoded frame (robust to compression)."""
    return int(round(float(rgb[4:12, 4:12].mean()) / 8))


def write_video(path: Path, n: int = 12, fourcc: str = "mp4v", fps: float = 25.0,
                size=(W, H)) -> Path:
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert wr.isOpened(), f"OpenCV cannot write {fourcc}"
    for i in range(n):
        wr.write(frame(i, *size))
    wr.release()
    return path


def write_images(folder: Path, n: int, pattern: str = "img{}.png", start: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(start, start + n):
        p = folder / pattern.format(i)
        cv2.imwrite(str(p), frame(i))
        out.append(p)
    return out


_MATRICES = {
    90: (0, 1 << 16, 0, (-1 << 16) & 0xFFFFFFFF, 0, 0, 0, 0, 1 << 30),
    180: ((-1 << 16) & 0xFFFFFFFF, 0, 0, 0, (-1 << 16) & 0xFFFFFFFF, 0, 0, 0, 1 << 30),
    270: (0, (-1 << 16) & 0xFFFFFFFF, 0, 1 << 16, 0, 0, 0, 0, 1 << 30),
}


def set_mp4_rotation(path: Path, degrees: int) -> Path:
    """Write a display-matrix rotation into an .mp4's track header, as phones do."""
    b = bytearray(path.read_bytes())
    i = b.find(b"tkhd")
    assert i > 0, "no tkhd box"
    version = b[i + 4]
    off = i + 4 + 4 + (20 if version == 0 else 32) + 8 + 8
    b[off:off + 36] = struct.pack(">9I", *_MATRICES[degrees])
    path.write_bytes(bytes(b))
    return path
