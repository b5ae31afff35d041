"""Fault matrix, installers and downloads (issue #11 items 10 and 11).

The SMPL-X zip installer (what the add-on's *Install SMPL-X Zip* runs) on damaged,
encrypted, oddly compressed, escaping, linking and bomb zips: always an
``InstallError`` with one line, nothing left behind, nothing replaced. Downloads
against a local ``http.server`` (127.0.0.1, a thread, bounded): never more than the
expected size is written, and every failure is one ``DownloadError`` line; the
person-detector download (CLI and add-on) is the real caller.
"""
from __future__ import annotations

import hashlib
import http.server
import os
import re
import socket
import struct
import threading
import time
import zipfile
from pathlib import Path

import pytest

from pose2pose_mocap.weights import download as dl
from pose2pose_mocap.weights.download import (DownloadError, RemoteFile, download,
                                              download_detector_weights, part_path)
from pose2pose_mocap.weights.install import InstallError, install_smplx_zip

from .conftest import REPO, snapshot


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text and "Traceback" not in text, text
    return text


# ------------------------------------------------------------------ item 10: bad zips
def _npz_bytes() -> bytes:
    """Stands for the .npz entry: the installer fails on the zip before reading it as one
    (plain bytes: a real .npz is a zip itself, whose headers would confuse the edits)."""
    return b"\x93NUMPY" + bytes(range(256)) * 32


def _zip(path: Path, entries, method=zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return path


def _edit(path: Path, fn) -> Path:
    data = bytearray(path.read_bytes())
    fn(data)
    path.write_bytes(bytes(data))
    return path


def _central(data: bytearray) -> int:
    return data.rindex(b"PK\x01\x02")


def _flip_data_byte(data: bytearray) -> None:
    n, e = struct.unpack_from("<HH", data, 26)       # local header: name and extra lengths
    data[30 + n + e + 100] ^= 0xFF


def _set_encrypted(data: bytearray) -> None:
    data[6] |= 1                                      # general purpose flag, bit 0
    data[_central(data) + 8] |= 1


def _set_method(data: bytearray) -> None:
    struct.pack_into("<H", data, 8, 99)               # compression method 99 (AES)
    struct.pack_into("<H", data, _central(data) + 10, 99)


def _bad_zip(tmp_path: Path, kind: str) -> Path:
    name = "models/smplx/SMPLX_NEUTRAL.npz"
    z = tmp_path / f"{kind}.zip"
    if kind in ("crc", "encrypted", "compression"):
        _zip(z, [(name, _npz_bytes())])
        return _edit(z, {"crc": _flip_data_byte, "encrypted": _set_encrypted,
                         "compression": _set_method}[kind])
    if kind == "truncated":
        _zip(z, [(name, _npz_bytes())])
        return _edit(z, lambda d: d.__delitem__(slice(len(d) // 2, len(d))))
    if kind == "zip-slip":
        return _zip(z, [(name, _npz_bytes()), ("../../SMPLX_MALE.npz", b"x")])
    if kind == "symlink":
        _zip(z, [(name, _npz_bytes())])
        with zipfile.ZipFile(z, "a") as zf:
            info = zipfile.ZipInfo("models/smplx/SMPLX_FEMALE.npz")
            info.create_system = 3
            info.external_attr = 0o120777 << 16
            zf.writestr(info, "/etc/passwd")
        return z
    if kind == "bomb":
        zeros = b"\0" * (64 << 20)
        return _zip(z, [(name, zeros)], zipfile.ZIP_DEFLATED)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind, message", [
    ("crc", "damaged"),
    ("encrypted", "encrypted"),
    ("compression", "compression method"),
    ("truncated", "not a readable zip"),
    ("zip-slip", "path leaving the folder"),
    ("symlink", "symbolic link"),
    ("bomb", "which no model file is"),
])
def test_bad_smplx_zip_is_one_install_error_and_leaves_nothing(tmp_path, kind, message):
    z = _bad_zip(tmp_path, kind)
    data = tmp_path / "data"
    with pytest.raises(InstallError) as err:
        install_smplx_zip(z, data)
    assert message in _one_line(err.value)
    assert not data.exists(), f"left behind: {snapshot(data) if data.exists() else ''}"
    assert not (tmp_path.parent / "SMPLX_MALE.npz").exists()


def test_failed_install_keeps_the_installed_files(tmp_path):
    """A damaged zip over an existing install: the files there are neither replaced nor
    removed, and no temporary file is left."""
    data = tmp_path / "data"
    (data / "smplx").mkdir(parents=True)
    mine = data / "smplx" / "SMPLX_NEUTRAL.npz"
    mine.write_bytes(b"the user's file")
    before = snapshot(data)
    for kind in ("crc", "encrypted", "compression"):
        with pytest.raises(InstallError):
            install_smplx_zip(_bad_zip(tmp_path, kind), data)
        assert snapshot(data) == before


# ------------------------------------------------------------------ item 11: downloads
PAYLOAD = os.urandom(300_000)
SHA = hashlib.sha256(PAYLOAD).hexdigest()
MIB = 1 << 20


class _State:
    sent = 0           # bytes the server wrote for the last request
    cut_after = None   # /file: close after this many bytes (once)


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def _write(self, data: bytes) -> bool:
        try:
            self.wfile.write(data)
            _State.sent += len(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def do_GET(self):
        _State.sent = 0
        path = self.path.split("?")[0]
        if path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path == "/endless":        # no Content-Length: data until the connection closes
            self.send_response(200)
            self.end_headers()
            block = b"\xab" * (1 << 16)
            for _ in range((64 * MIB) // len(block)):   # bounded: at most 64 MiB
                if not self._write(block):
                    break
            self.close_connection = True
            return
        if path == "/big":            # announces 200 MB
            self.send_response(200)
            self.send_header("Content-Length", str(200_000_000))
            self.end_headers()
            self._write(b"\0" * (1 << 16))
            self.close_connection = True
            return
        if path == "/chunked-cut":    # chunked transfer closed in the middle
            self.protocol_version = "HTTP/1.1"
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self._write(b"%x\r\n" % 5000 + b"\x01" * 5000 + b"\r\n")
            self._write(b"%x\r\n" % 5000 + b"\x01" * 100)
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        # /file: PAYLOAD, with Range support
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(re.match(r"bytes=(\d+)-", rng).group(1))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut, _State.cut_after = _State.cut_after, None
        if cut is not None:
            self._write(body[:cut])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._write(body)


@pytest.fixture()
def server():
    _State.sent, _State.cut_after = 0, None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_download_stops_at_the_expected_size(tmp_path, server):
    """A server that sends 64 MiB for a 1 MiB file: stopped at 1 MiB, nothing kept."""
    seen = []
    t0 = time.monotonic()
    with pytest.raises(DownloadError) as err:
        download(server + "/endless", tmp_path / "f.bin", size=MIB,
                 progress=lambda d, t: seen.append(d))
    assert "more than the expected" in _one_line(err.value)
    assert max(seen) <= MIB, f"wrote {max(seen)} bytes for a {MIB}-byte file"
    assert time.monotonic() - t0 < 20
    assert snapshot(tmp_path) == {}
    # a server announcing more than expected is refused before anything is written
    with pytest.raises(DownloadError, match="offers 200000000 bytes, expected 1048576"):
        download(server + "/big", tmp_path / "g.bin", size=MIB)
    assert snapshot(tmp_path) == {}


def test_download_without_a_size_is_still_bounded(tmp_path, server, monkeypatch):
    monkeypatch.setattr(dl, "MAX_UNKNOWN_SIZE", 2 * MIB)
    seen = []
    with pytest.raises(DownloadError, match="more than the expected"):
        download(server + "/endless", tmp_path / "f.bin", progress=lambda d, t: seen.append(d))
    assert max(seen) <= 2 * MIB and snapshot(tmp_path) == {}


@pytest.mark.parametrize("url, message", [
    ("/chunked-cut", "connection lost"),
    ("/loop", "redirects"),
    ("not a url", "not an http(s) address"),
    ("http://[::1", "not a valid address"),
    ("file:///etc/passwd", "not an http(s) address"),
    ("http://127.0.0.1:1/x", "refused"),
], ids=["chunked-close", "redirect-loop", "no-scheme", "bad-host", "file-url", "no-server"])
def test_every_download_failure_is_one_download_error(tmp_path, server, url, message):
    url = server + url if url.startswith("/") else url
    with pytest.raises(DownloadError) as err:
        download(url, tmp_path / "f.bin", size=MIB, timeout=10)
    assert message in _one_line(err.value).lower()
    assert not (tmp_path / "f.bin").exists()


def _spec(server: str, **kw) -> RemoteFile:
    fields = dict(url=server + "/file", name="fasterrcnn_test.pth", size=len(PAYLOAD),
                  sha256=SHA, subdir="detector")
    fields.update(kw)
    return RemoteFile(**fields)


def test_detector_download_checks_size_and_sha256_and_resumes(tmp_path, server, monkeypatch):
    """The real caller (``--download-detector``): weights/ owns the address, size, sha256."""
    from pose2pose_mocap.estimator.detector import download_detector

    assert dl.DETECTOR_WEIGHTS.size == 167_502_836
    assert dl.DETECTOR_WEIGHTS.sha256.startswith("258fb6c6")
    assert dl.DETECTOR_WEIGHTS.url.endswith("-258fb6c6.pth")
    folder = tmp_path / "detector"
    monkeypatch.setattr(dl, "DETECTOR_WEIGHTS", _spec(server, size=len(PAYLOAD) - 1))
    with pytest.raises(DownloadError) as err:       # the server offers one byte more
        download_detector(folder, progress=False)
    assert "offers" in _one_line(err.value)
    assert snapshot(folder) == {}
    monkeypatch.setattr(dl, "DETECTOR_WEIGHTS", _spec(server, sha256="0" * 64))
    with pytest.raises(DownloadError, match="does not match"):
        download_detector(folder, progress=False)
    assert snapshot(folder) == {}
    monkeypatch.setattr(dl, "DETECTOR_WEIGHTS", _spec(server))
    _State.cut_after = 100_000
    with pytest.raises(DownloadError) as err:       # interrupted: kept for resuming
        download_detector(folder, progress=False)
    assert "resume" in _one_line(err.value)
    assert part_path(folder / "fasterrcnn_test.pth").stat().st_size == 100_000
    path = download_detector(folder, progress=False)
    assert path == folder / "fasterrcnn_test.pth" and path.read_bytes() == PAYLOAD
    assert sorted(snapshot(folder)) == ["fasterrcnn_test.pth"]


def test_download_never_replaces_an_existing_file(tmp_path, server):
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"mine")
    with pytest.raises(DownloadError, match="exists"):
        download(server + "/file", dest, sha256=SHA, size=len(PAYLOAD))
    assert dest.read_bytes() == b"mine"


@pytest.mark.blender
def test_add_on_download_passes_the_expected_size(tmp_path, server, monkeypatch):
    """The add-on's *Download Detector* button: its download is capped like the CLI's."""
    from importlib import import_module
    from types import SimpleNamespace

    import bpy

    from ..blender.test_addon_ui import MODULE, disable_dev_addon, enable_dev_addon

    bpy.ops.wm.read_factory_settings(use_empty=True)
    enable_dev_addon(REPO, tmp_path)
    addon_dl = import_module(MODULE + ".weights.download")
    saved = addon_dl.DETECTOR_WEIGHTS
    try:
        ops = import_module(MODULE + ".addon.operators")
        paths = import_module(MODULE + ".addon.paths")
        folder = paths.data_dir() / "detector"
        addon_dl.DETECTOR_WEIGHTS = _spec(server, url=server + "/endless", size=MIB,
                                          name="test_detector.pth")
        # The operator's own step object (make_steps), driven without Blender's modal loop.
        fake_op = SimpleNamespace(report=lambda kind, msg: None)
        monkeypatch.setattr(ops, "online_access", lambda: True)  # headless Blender: off
        steps = ops.P2P_OT_download_detector.make_steps(fake_op, None)
        steps.thread.join(60)
        assert "more than the expected" in steps.error and "\n" not in steps.error
        assert steps.done_bytes <= MIB
        assert not (folder / "test_detector.pth").exists()
        assert not part_path(folder / "test_detector.pth").exists()
    finally:
        addon_dl.DETECTOR_WEIGHTS = saved
        disable_dev_addon()
