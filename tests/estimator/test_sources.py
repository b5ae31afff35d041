"""Frame sources: every kind, frame ranges, rotation metadata, bounded prefetching, bad input."""
from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from pose2pose_mocap.estimator.sources import (FramePrefetcher, FrameRange, SourceError,
                                               natural_key, open_source)

from .media import H, W, frame_number, set_mp4_rotation, write_images, write_video
from .media import frame as media_frame


def _numbers(src):
    return [(f.index, frame_number(f.image)) for f in src.read()]


def test_single_image(tmp_path):
    (p,) = write_images(tmp_path, 1, start=3)
    src = open_source(p)
    assert src.kind == "image" and len(src) == 1 and src.image_size == (W, H)
    (f,) = list(src.read())
    assert f.index == 0 and f.image.dtype == np.uint8 and f.image.shape == (H, W, 3)
    assert frame_number(f.image) == 3
    assert src.name_stem == "img3" and src.default_dir == tmp_path


def test_image_is_rgb(tmp_path):
    p = tmp_path / "red.png"
    img = np.zeros((20, 30, 3), np.uint8)
    img[..., 2] = 255  # BGR red
    cv2.imwrite(str(p), img)
    (f,) = list(open_source(p).read())
    assert f.image[0, 0].tolist() == [255, 0, 0]


def test_several_images_keep_given_order(tmp_path):
    paths = write_images(tmp_path, 3)
    src = open_source([paths[2], paths[0], paths[1]])
    assert src.kind == "images" and len(src) == 3
    assert [n for _, n in _numbers(src)] == [2, 0, 1]


def test_folder_natural_sort(tmp_path):
    write_images(tmp_path / "seq", 12, pattern="frame{}.png")  # frame0 .. frame11
    (tmp_path / "seq" / "notes.txt").write_text("not an image")
    src = open_source(tmp_path / "seq")
    assert src.kind == "folder" and len(src) == 12
    assert [n for _, n in _numbers(src)] == list(range(12))  # frame2 before frame10
    assert src.name_stem == "seq"


def test_natural_key():
    names = ["a10.png", "a2.png", "a1.png", "b.png", "A3.png"]
    assert sorted(names, key=natural_key) == ["a1.png", "a2.png", "A3.png", "a10.png", "b.png"]


@pytest.mark.parametrize("fourcc,ext", [("mp4v", "mp4"), ("MJPG", "avi")])
def test_video(tmp_path, fourcc, ext):
    path = write_video(tmp_path / f"clip.{ext}", 12, fourcc, fps=25)
    src = open_source(path)
    assert src.kind == "video" and len(src) == 12 and src.fps == pytest.approx(25)
    assert src.image_size == (W, H)
    got = _numbers(src)
    assert [i for i, _ in got] == list(range(12))
    assert [n for _, n in got] == list(range(12))


def test_frame_range_and_stride(tmp_path):
    path = write_video(tmp_path / "clip.avi", 20, "MJPG", fps=30)
    src = open_source(path, "3:15:4")
    assert list(src.indices) == [3, 7, 11]
    got = _numbers(src)
    assert got == [(3, 3), (7, 7), (11, 11)]
    assert src.fps == pytest.approx(30 / 4)  # the take's rows are 4 frames apart
    assert list(open_source(path, "17:").indices) == [17, 18, 19]
    assert list(open_source(path, "::7").indices) == [0, 7, 14]
    assert list(open_source(path, "5").indices) == [5]
    assert list(open_source(path, "18:500").indices) == [18, 19]  # end clamped to the clip
    folder_src = open_source(write_images(tmp_path / "f", 6)[0].parent, "1:6:2")
    assert _numbers(folder_src) == [(1, 1), (3, 3), (5, 5)]


@pytest.mark.parametrize("text,fragment", [
    ("a:b", "whole numbers"), ("1:2:3:4", "A:B:STEP"), ("5:2", "after the start"),
    ("0:10:0", "STEP"), ("-3:", "negative")])
def test_frame_range_syntax_errors(text, fragment):
    with pytest.raises(SourceError, match=fragment):
        FrameRange.parse(text)


def test_frame_range_outside_clip(tmp_path):
    path = write_video(tmp_path / "clip.avi", 12, "MJPG")
    with pytest.raises(SourceError, match="outside the clip: it has 12 frames"):
        open_source(path, "12:20")
    with pytest.raises(SourceError, match="outside the clip"):
        open_source(write_images(tmp_path / "i", 2)[0], "3:")


@pytest.mark.parametrize("degrees", [90, 270, 180])
@pytest.mark.parametrize("backend", [True, False])
def test_video_rotation_metadata(tmp_path, degrees, backend):
    """A phone's portrait clip: landscape frames + a display rotation in the container."""
    path = write_video(tmp_path / "phone.mp4", 3, "mp4v")
    set_mp4_rotation(path, degrees)
    cap = cv2.VideoCapture(str(path))
    meta = cap.get(cv2.CAP_PROP_ORIENTATION_META)
    cap.release()
    if int(meta) % 360 != degrees:
        pytest.skip(f"this OpenCV build does not report the rotation ({meta})")
    # backend=False: do not let OpenCV rotate; the source must rotate by the metadata itself.
    src = open_source(path, backend_rotation=backend)
    first = next(iter(src.read())).image
    expect = cv2.rotate(cv2.cvtColor(media_frame(0), cv2.COLOR_BGR2RGB),
                        {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180,
                         270: cv2.ROTATE_90_COUNTERCLOCKWISE}[degrees])
    assert first.shape == expect.shape
    assert src.image_size == (first.shape[1], first.shape[0])
    assert np.abs(first.astype(int) - expect.astype(int)).mean() < 8


def test_prefetcher_is_bounded_and_in_order(tmp_path):
    path = write_video(tmp_path / "clip.avi", 30, "MJPG")
    src = open_source(path)
    pf = FramePrefetcher(src, depth=3)
    try:
        time.sleep(0.5)  # let the decoder run ahead as far as it may
        assert pf._q.qsize() <= 3
        got = [f.index for f in pf]
        assert got == list(range(30))
        assert pf.get() is None  # stays at the end
    finally:
        pf.close()
    assert not pf._thread.is_alive()


def test_prefetcher_close_stops_decoder_early(tmp_path):
    path = write_video(tmp_path / "clip.avi", 30, "MJPG")
    pf = FramePrefetcher(open_source(path), depth=2)
    assert pf.get().index == 0
    pf.close()
    assert not pf._thread.is_alive()
    assert threading.active_count() < 50


def test_prefetcher_passes_errors_on(tmp_path):
    paths = write_images(tmp_path, 3)
    paths[2].write_bytes(b"\x89PNG\r\n\x1a\n" + b"broken" * 10)
    pf = FramePrefetcher(open_source(paths), depth=2)
    try:
        assert pf.get().index == 0 and pf.get().index == 1
        with pytest.raises(SourceError, match="not a readable image"):
            pf.get()
    finally:
        pf.close()


# ---------------------------------------------------------------------------- bad input
def test_missing_path(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        open_source(tmp_path / "nope.mp4")


def test_zero_byte_video(tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    with pytest.raises(SourceError, match=r"empty \(0 bytes\)"):
        open_source(p)


def test_corrupt_video(tmp_path):
    p = tmp_path / "junk.mp4"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(SourceError, match="not a readable video"):
        open_source(p)


def test_truncated_video(tmp_path):
    good = write_video(tmp_path / "clip.mp4", 12, "mp4v").read_bytes()
    p = tmp_path / "cut.mp4"
    p.write_bytes(good[: len(good) // 3])
    try:
        src = open_source(p)
    except SourceError as exc:
        assert "not a readable video" in str(exc)
    else:  # whatever OpenCV can still decode is fine, but it must not hang or crash
        assert len(list(src.read())) <= 12


def test_corrupt_and_empty_image(tmp_path):
    p = tmp_path / "bad.jpg"
    p.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(SourceError, match="not a readable image"):
        open_source(p)
    e = tmp_path / "empty.png"
    e.write_bytes(b"")
    with pytest.raises(SourceError, match="empty"):
        open_source(e)


def test_folder_without_images(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "readme.txt").write_text("x")
    with pytest.raises(SourceError, match="holds no images"):
        open_source(tmp_path / "d")


def test_several_inputs_must_be_images(tmp_path):
    v = write_video(tmp_path / "clip.avi", 3, "MJPG")
    (img,) = write_images(tmp_path, 1)
    with pytest.raises(SourceError, match="must all be images"):
        open_source([img, v])


# ---------------------------------------------------------------- sizes from headers
def _cv_encoded(ext, img, params=()):
    ok, buf = cv2.imencode(ext, img, list(params))
    assert ok
    return buf.tobytes()


def _samples():
    """(name, bytes, (W, H)) for every format the header reader knows."""
    import struct

    rgb = np.full((100, 120, 3), 90, np.uint8)
    grey = rgb[..., 0].copy()
    out = [
        ("png", _cv_encoded(".png", rgb)),
        ("jpg", _cv_encoded(".jpg", rgb)),
        ("progressive.jpg", _cv_encoded(".jpg", rgb, (cv2.IMWRITE_JPEG_PROGRESSIVE, 1))),
        ("bmp", _cv_encoded(".bmp", rgb)),
        ("lossless.webp", _cv_encoded(".webp", rgb, (cv2.IMWRITE_WEBP_QUALITY, 101))),
        ("lossy.webp", _cv_encoded(".webp", rgb, (cv2.IMWRITE_WEBP_QUALITY, 80))),
        ("tiff", _cv_encoded(".tiff", rgb)),
        ("jp2", _cv_encoded(".jp2", rgb)),
        ("ppm", _cv_encoded(".ppm", rgb)),
        ("pgm", _cv_encoded(".pgm", grey)),
        ("pbm", _cv_encoded(".pbm", grey, (cv2.IMWRITE_PXM_BINARY, 0))),
        ("pam", _cv_encoded(".pam", rgb)),
        ("pfm", _cv_encoded(".pfm", rgb.astype(np.float32))),
        ("sr", _cv_encoded(".sr", rgb)),
        ("hdr", _cv_encoded(".hdr", rgb.astype(np.float32))),
        # hand-made: a comment in a PNM header, a top-down BMP, a big-endian TIFF
        ("comment.pgm", b"P5\n# made by hand\n120 100\n255\n" + grey.tobytes()),
    ]
    bmp = bytearray(out[3][1])
    bmp[22:26] = struct.pack("<i", -100)  # negative height: rows stored top-down
    out.append(("topdown.bmp", bytes(bmp)))
    be = (b"MM\0*" + struct.pack(">I", 8) + struct.pack(">H", 2)
          + struct.pack(">HHIHH", 256, 3, 1, 120, 0) + struct.pack(">HHII", 257, 4, 1, 100)
          + struct.pack(">I", 0))
    out.append(("bigendian.tif", be))
    big = (b"II+\0" + struct.pack("<HHQ", 8, 0, 16) + struct.pack("<Q", 2)
           + struct.pack("<HHQQ", 256, 16, 1, 120) + struct.pack("<HHQQ", 257, 3, 1, 100)
           + struct.pack("<Q", 0))
    out.append(("bigtiff.tif", big))
    exr = (b"\x76\x2f\x31\x01" + struct.pack("<I", 2)
           + b"channels\0chlist\0" + struct.pack("<i", 1) + b"\0"
           + b"dataWindow\0box2i\0" + struct.pack("<i", 16) + struct.pack("<4i", 10, 5, 129, 104)
           + b"\0")
    out.append(("exr", exr))
    out.append(("gif", b"GIF89a" + struct.pack("<HH", 120, 100) + b"\0" * 8))
    return out


@pytest.mark.parametrize("name,data", _samples(), ids=[n for n, _ in _samples()])
def test_declared_size_from_header(tmp_path, name, data):
    from pose2pose_mocap.estimator.image_header import declared_size

    p = tmp_path / f"img.{name}"
    p.write_bytes(data)
    w, h, _fmt = declared_size(p)
    assert (w, h) == (120, 100)
    try:
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:  # OpenEXR is off unless OPENCV_IO_ENABLE_OPENEXR is set
        decoded = None
    if decoded is not None:  # (hand-made headers have no pixels; EXR, GIF off in OpenCV)
        assert decoded.shape[:2] == (100, 120)


@pytest.mark.parametrize("data,fragment", [
    (b"\x89PNG\r\n\x1a\n" + b"\0\0\0\rIHDX" + b"\0" * 13, "IHDR"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "cut short"),
    (b"\xff\xd8\xff\xda\x00\x08abcdef", "no frame header"),
    (b"II*\0\xff\xff\xff\x7f", "cut short"),
    (b"just some text, not an image at all" * 3, "size can be checked"),
])
def test_unreadable_header_is_refused_without_decoding(tmp_path, data, fragment):
    p = tmp_path / "bad.png"
    p.write_bytes(data)
    with pytest.raises(SourceError, match=f"not a readable image .*{fragment}"):
        open_source(p)


def test_pixel_limit_default_and_option(tmp_path):
    from pose2pose_mocap.estimator.sources import DEFAULT_MAX_PIXELS, parse_max_pixels

    assert parse_max_pixels(None) == DEFAULT_MAX_PIXELS == 8192 * 8192
    assert parse_max_pixels("12000x9000") == 108_000_000
    assert parse_max_pixels(5000) == parse_max_pixels("5000") == 5000
    for bad in ("0", "-5", "1x", "axb", "1x2x3"):
        with pytest.raises(SourceError, match="--max-pixels"):
            parse_max_pixels(bad)
    paths = write_images(tmp_path, 2)  # 320 x 240
    with pytest.raises(SourceError, match=r"img0.png: the PNG image declares 320x240"):
        open_source(paths, max_pixels=320 * 240 - 1)
    assert len(list(open_source(paths, max_pixels=320 * 240).read())) == 2
