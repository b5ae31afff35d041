"""Fault matrix, footage: decompression bombs, truncated videos, library chatter (issue #11).

Items 5 and 13 and the "one line, no FFmpeg/OpenCV chatter" promise, checked on the
real ``p2p-mocap estimate`` in a subprocess (``run_cli``).
"""
from __future__ import annotations

import re
import struct
import time
import zlib

import cv2
import numpy as np
import pytest

from pose2pose_mocap.estimator.sources import (READ_AHEAD_BYTES, FramePrefetcher, SourceError,
                                               open_source)

from ..estimator.media import write_images, write_video
from .conftest import assert_one_line_error, run_cli, snapshot

# Refusing a bomb happens before torch is imported (measured ~60 MiB); a normal run of
# one 320x240 image with the stand-in network peaks at ~1.5 GiB; the 30000^2 PNG bomb of
# the issue took 5.3 GB.
BOMB_RSS_LIMIT_MIB = 512


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def bomb_png(side: int) -> bytes:
    """A valid PNG (CRCs right) declaring side x side RGB pixels, one small IDAT of zeros."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * (1 << 20), 9)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat)
            + _chunk(b"IEND", b""))


def bomb_jpeg(side: int) -> bytes:
    """A small baseline JPEG whose frame header (SOF0) declares side x side pixels."""
    ok, buf = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
    data = bytearray(buf.tobytes())
    i = data.find(b"\xff\xc0")
    data[i + 5:i + 9] = struct.pack(">HH", side, side)
    return bytes(data)


# ------------------------------------------------------------------------ item 5: bombs
@pytest.mark.parametrize("side", [30000, 60000])
@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_bomb_image_refused_before_decoding(tmp_path, fmt, side):
    bomb = tmp_path / f"bomb.{fmt}"
    bomb.write_bytes(bomb_png(side) if fmt == "png" else bomb_jpeg(side))
    assert bomb.stat().st_size < 4096
    before = snapshot(tmp_path)
    res = run_cli(["estimate", bomb], cwd=tmp_path)
    # 30000^2 = 900 Mpx could be allowed with --max-pixels; 60000^2 is above OpenCV's own
    # ceiling (2^30 pixels), so the message says that instead of suggesting the option.
    hint = "--max-pixels 900000000" if side == 30000 else "OPENCV_IO_MAX_IMAGE_PIXELS"
    line = assert_one_line_error(res, str(bomb), f"{side}x{side}", "limit", hint)
    assert line.startswith("p2p-mocap: error:")
    assert res.peak_rss_mib < BOMB_RSS_LIMIT_MIB, res.peak_rss_mib
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("given", ["files", "folder"])
def test_bomb_among_images_refused(tmp_path, given):
    """An image sequence with a bomb last: refused by its header before the network is
    loaded or anything decoded; nothing written."""
    paths = write_images(tmp_path / "seq", 2)
    bomb = tmp_path / "seq" / "img2.png"
    bomb.write_bytes(bomb_png(30000))
    before = snapshot(tmp_path)
    res = run_cli(["estimate", *(paths + [bomb] if given == "files" else [tmp_path / "seq"])],
                  cwd=tmp_path)
    assert_one_line_error(res, str(bomb), "30000x30000", "--max-pixels")
    assert res.peak_rss_mib < BOMB_RSS_LIMIT_MIB, res.peak_rss_mib
    assert snapshot(tmp_path) == before


def test_max_pixels_option(tmp_path):
    """--max-pixels lowers (and raises) the limit; a bad value is one line."""
    (img,) = write_images(tmp_path, 1)  # 320 x 240 = 76800 pixels
    before = snapshot(tmp_path)
    res = run_cli(["estimate", img, "--max-pixels", "300x200"], cwd=tmp_path)
    assert_one_line_error(res, "320x240", "limit of 60000 pixels", "--max-pixels 76800")
    res = run_cli(["estimate", img, "--max-pixels", "lots"], cwd=tmp_path)
    assert_one_line_error(res, "--max-pixels lots")
    res = run_cli(["estimate", img, "--max-pixels", str(2**31)], cwd=tmp_path)
    assert_one_line_error(res, "OPENCV_IO_MAX_IMAGE_PIXELS")
    assert snapshot(tmp_path) == before
    # Raised to exactly the picture: accepted (the source opens; no network needed here).
    assert open_source(img, max_pixels="320x240").image_size == (320, 240)


def test_batch_and_convert_take_max_pixels():
    """batch and convert share estimate's options: --max-pixels reaches the job there too
    (and, refusing but never changing a take, leaves batch's settings hashes alone)."""
    import argparse

    from pose2pose_mocap.batch.cli_batch import add_batch_arguments
    from pose2pose_mocap.batch.jobs import settings_from_args
    from pose2pose_mocap.cli import build_parser

    parser = add_batch_arguments(argparse.ArgumentParser())
    plain = settings_from_args(parser.parse_args(["in", "-o", "out"]))
    raised = settings_from_args(parser.parse_args(["in", "-o", "out", "--max-pixels", "9x9"]))
    assert raised.estimate["max_pixels"] == "9x9" and plain.estimate["max_pixels"] is None
    assert raised.hashes == plain.hashes
    args = build_parser().parse_args(["convert", "clip.mp4", "--max-pixels", "9x9"])
    assert args.max_pixels == "9x9"


def test_video_frame_size_checked_before_decoding(tmp_path):
    clip = write_video(tmp_path / "clip.avi", 3, "MJPG")
    with pytest.raises(SourceError, match=r"the video's frames are 320x240 pixels .*"
                                          r"--max-pixels 76800"):
        open_source(clip, max_pixels=320 * 240 - 1)
    assert len(open_source(clip, max_pixels=320 * 240)) == 3


def test_read_ahead_bounded_by_bytes(tmp_path):
    """The decode queue holds at most max_bytes of frames (always at least one)."""
    clip = write_video(tmp_path / "clip.avi", 30, "MJPG")
    frame_bytes = 320 * 240 * 3
    pf = FramePrefetcher(open_source(clip), depth=30, max_bytes=2 * frame_bytes)
    try:
        time.sleep(0.5)  # let the decoder run ahead as far as it may
        assert pf._q.qsize() <= 2 and pf.queued_bytes <= 2 * frame_bytes
        assert [f.index for f in pf] == list(range(30))
    finally:
        pf.close()
    pf = FramePrefetcher(open_source(clip), depth=4, max_bytes=1)  # smaller than one frame
    try:
        time.sleep(0.3)
        assert pf._q.qsize() <= 1
        assert [f.index for f in pf] == list(range(30))
    finally:
        pf.close()
    assert READ_AHEAD_BYTES == 512 * 2**20


# ----------------------------------------------------- library chatter: one line only
def _truncated_mp4(tmp_path):
    good = write_video(tmp_path / "good.mp4", 10, "mp4v").read_bytes()
    (tmp_path / "good.mp4").unlink()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(good[: len(good) * 2 // 5])  # the moov atom (at the end) is gone
    return cut


@pytest.mark.parametrize("case", ["garbage", "truncated"])
def test_bad_video_exactly_one_line(tmp_path, case):
    """FFmpeg's 'moov atom not found' and OpenCV's '[ WARN:0@...]' stay off the terminal."""
    if case == "garbage":
        bad = tmp_path / "junk.mp4"
        bad.write_bytes(np.random.default_rng(3).integers(0, 256, 5000, np.uint8).tobytes())
    else:
        bad = _truncated_mp4(tmp_path)
    before = snapshot(tmp_path)
    res = run_cli(["estimate", bad], cwd=tmp_path)
    assert_one_line_error(res, str(bad), "not a readable video")
    assert "WARN" not in res.stderr and "moov" not in res.stderr and res.stdout == ""
    assert snapshot(tmp_path) == before


def test_truncated_png_exactly_one_line(tmp_path):
    """libpng writes 'libpng error: Not enough image data' to stderr itself: caught."""
    bad = tmp_path / "cut.png"
    data = bomb_png(3000)  # 27 MB of pixels declared, 1 KB of image data
    bad.write_bytes(data)
    before = snapshot(tmp_path)
    res = run_cli(["estimate", bad], cwd=tmp_path)
    assert_one_line_error(res, str(bad), "not a readable image")
    assert "libpng" not in res.stderr
    assert snapshot(tmp_path) == before


# ------------------------------------------------------ item 13: truncated video
def _truncated_avi(tmp_path, n=10):
    good = write_video(tmp_path / "good.avi", n, "MJPG").read_bytes()
    (tmp_path / "good.avi").unlink()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(good[: len(good) * 2 // 5])  # header (10 frames announced) kept
    cap = cv2.VideoCapture(str(cut))
    announced = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    decodable = 0
    while cap.read()[0]:
        decodable += 1
    cap.release()
    if announced != n or not 0 < decodable < n:
        pytest.skip(f"this FFmpeg reads the cut AVI differently ({decodable} of {announced})")
    return cut, decodable


def test_truncated_video_source_records_shortfall(tmp_path):
    cut, decodable = _truncated_avi(tmp_path)
    src = open_source(cut)
    assert len(src) == 10  # what the container announces
    assert len(list(src.read())) == decodable
    assert src.ended_early == (decodable, 10)
    full = open_source(write_video(tmp_path / "full.avi", 10, "MJPG"))
    assert len(list(full.read())) == 10 and full.ended_early is None


@pytest.mark.slow
def test_truncated_video_says_how_many_frames_decoded(tmp_path, standin_root):
    """Exit 0 (the frames that decoded are real), a warning line, the count in the summary."""
    from pose2pose_mocap.retarget.take import read_take

    cut, decodable = _truncated_avi(tmp_path)
    res = run_cli(["estimate", cut, "--smplx", standin_root, "--checkpoint", standin_root,
                   "--detector", "none"], cwd=tmp_path)
    assert res.rc == 0, res.stderr
    assert "Traceback" not in res.stderr
    said = f"{decodable} of 10 frames announced by the container could be decoded " \
           "(the file may be truncated)"
    warnings = [ln for ln in res.stderr_lines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and said in warnings[0] and str(cut) in warnings[0], res.stderr
    summary = res.stderr_lines()[-1]
    assert re.match(rf"{decodable} frames in [\d.]+ s; {re.escape(said)}$", summary), summary
    take = tmp_path / "cut.take.npz"
    assert f"wrote {take}" in res.stdout
    assert read_take(take).num_frames == decodable
    assert not [ln for ln in res.stderr_lines() if "[ WARN" in ln or "@ 0x" in ln], res.stderr


def test_truncated_video_nothing_selected_decodes(tmp_path, standin_root):
    """Frames selected only past where decoding stops: one line, exit 1, nothing written."""
    cut, decodable = _truncated_avi(tmp_path)
    before = snapshot(tmp_path)
    res = run_cli(["estimate", cut, "--frames", f"{decodable + 1}:", "--smplx", standin_root,
                   "--checkpoint", standin_root, "--detector", "none"], cwd=tmp_path)
    assert res.rc == 1 and "Traceback" not in res.stderr, res.stderr
    errors = [ln for ln in res.stderr_lines() if ln.startswith("p2p-mocap: error:")]
    assert len(errors) == 1 and res.stderr_lines()[-1] == errors[0], res.stderr
    assert f"{decodable} of 10 frames announced by the container could be decoded " \
           "(the file may be truncated)" in errors[0]
    assert snapshot(tmp_path) == before
