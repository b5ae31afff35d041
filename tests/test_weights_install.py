"""weights.install (SMPL-X zip, checkpoint) and weights.download (resumable HTTP)."""
from __future__ import annotations

import hashlib
import http.server
import io
import os
import re
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pose2pose_mocap.weights.download import DownloadError, download, part_path
from pose2pose_mocap.weights.install import InstallError, install_checkpoint, install_smplx_zip
from pose2pose_mocap.weights.standins import write_smplx_standins


@pytest.fixture(scope="module")
def smplx_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("smplx_src")
    write_smplx_standins(root)
    return root / "smplx"


def _official_zip(path: Path, smplx_dir: Path, extra=()):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for g in ("NEUTRAL", "MALE", "FEMALE"):
            zf.write(smplx_dir / f"SMPLX_{g}.npz", f"models/smplx/SMPLX_{g}.npz")
            zf.writestr(f"models/smplx/SMPLX_{g}.pkl", b"not extracted")
        zf.writestr("models/smplx/version.txt", "1.1")
        for name, data in extra:
            zf.writestr(name, data)
    return path


def test_official_layout_installs_only_the_npz_files(tmp_path, smplx_files):
    z = _official_zip(tmp_path / "models_smplx_v1_1.zip", smplx_files)
    dest = tmp_path / "data"
    paths = install_smplx_zip(z, dest)
    assert sorted(p.name for p in paths) == ["SMPLX_FEMALE.npz", "SMPLX_MALE.npz",
                                             "SMPLX_NEUTRAL.npz"]
    assert sorted(p.name for p in (dest / "smplx").iterdir()) == sorted(p.name for p in paths)
    assert (dest / "smplx" / "SMPLX_NEUTRAL.npz").read_bytes() == \
        (smplx_files / "SMPLX_NEUTRAL.npz").read_bytes()


@pytest.mark.parametrize("evil", ["../evil.npz", "models/../../evil.npz", "/abs/SMPLX_MALE.npz"])
def test_zip_with_escaping_paths_is_refused(tmp_path, smplx_files, evil):
    z = _official_zip(tmp_path / "bad.zip", smplx_files, extra=[(evil, b"x")])
    with pytest.raises(InstallError, match="refusing the zip"):
        install_smplx_zip(z, tmp_path / "data")
    assert not (tmp_path / "data" / "smplx").exists() or \
        not list((tmp_path / "data" / "smplx").iterdir())
    assert not (tmp_path / "evil.npz").exists()


def test_zip_with_a_symlink_is_refused(tmp_path, smplx_files):
    z = _official_zip(tmp_path / "link.zip", smplx_files)
    with zipfile.ZipFile(z, "a") as zf:
        info = zipfile.ZipInfo("models/smplx/link")
        info.create_system = 3
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(InstallError, match="symbolic link"):
        install_smplx_zip(z, tmp_path / "data")


def test_zip_with_wrong_arrays_is_refused_and_nothing_replaced(tmp_path, smplx_files):
    dest = tmp_path / "data"
    install_smplx_zip(_official_zip(tmp_path / "good.zip", smplx_files), dest)
    before = (dest / "smplx" / "SMPLX_NEUTRAL.npz").read_bytes()
    buf = io.BytesIO()
    np.savez(buf, v_template=np.zeros((10, 3)), faces=np.zeros((5, 3), np.int64))
    with zipfile.ZipFile(tmp_path / "wrong.zip", "w") as zf:
        zf.writestr("models/smplx/SMPLX_NEUTRAL.npz", buf.getvalue())
    with pytest.raises(InstallError, match="not a usable SMPL-X model"):
        install_smplx_zip(tmp_path / "wrong.zip", dest)
    assert (dest / "smplx" / "SMPLX_NEUTRAL.npz").read_bytes() == before
    assert sorted(p.name for p in (dest / "smplx").iterdir()) == \
        ["SMPLX_FEMALE.npz", "SMPLX_MALE.npz", "SMPLX_NEUTRAL.npz"]   # no temp files left


def test_zip_without_neutral_and_oversize_are_refused(tmp_path, smplx_files):
    with zipfile.ZipFile(tmp_path / "none.zip", "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(InstallError, match="no SMPLX_NEUTRAL.npz"):
        install_smplx_zip(tmp_path / "none.zip", tmp_path / "data")
    z = _official_zip(tmp_path / "big.zip", smplx_files)
    with pytest.raises(InstallError, match="limit"):
        install_smplx_zip(z, tmp_path / "data", max_bytes=1000)
    with pytest.raises(InstallError, match="not a readable zip"):
        (tmp_path / "junk.zip").write_bytes(b"junk")
        install_smplx_zip(tmp_path / "junk.zip", tmp_path / "data")


def test_install_checkpoint_copies_under_the_searched_name(tmp_path):
    src = tmp_path / "my_download.pth.tar"
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr("archive/data.pkl", b"x")
    out = install_checkpoint(src, tmp_path / "data")
    assert out == tmp_path / "data" / "pose2pose" / "snapshot_6.pth.tar"
    assert out.read_bytes() == src.read_bytes()
    (tmp_path / "bad.pth.tar").write_bytes(b"not a zip")
    with pytest.raises(InstallError):
        install_checkpoint(tmp_path / "bad.pth.tar", tmp_path / "data")


# --------------------------------------------------------------------------- downloads
PAYLOAD = os.urandom(300_000)


class _Handler(http.server.BaseHTTPRequestHandler):
    cut_after: int | None = None       # close the connection after this many bytes (once)
    ranges_seen: list = []

    def log_message(self, *a):
        pass

    def do_GET(self):
        data = PAYLOAD
        start = 0
        rng = self.headers.get("Range")
        type(self).ranges_seen.append(rng)
        if rng:
            start = int(re.match(r"bytes=(\d+)-", rng).group(1))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = type(self).cut_after
        if cut is not None:
            type(self).cut_after = None
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


@pytest.fixture()
def server():
    _Handler.ranges_seen = []
    _Handler.cut_after = None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/file.bin"
    srv.shutdown()
    srv.server_close()


def test_download_verifies_and_reports_progress(tmp_path, server):
    seen = []
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    out = download(server, tmp_path / "f.bin", sha256=sha, size=len(PAYLOAD),
                   progress=lambda d, t: seen.append((d, t)))
    assert out.read_bytes() == PAYLOAD
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert not part_path(out).exists()


def test_interrupted_download_resumes_with_range(tmp_path, server):
    _Handler.cut_after = 100_000
    dest = tmp_path / "f.bin"
    sha = hashlib.sha256(PAYLOAD).hexdigest()[:8]          # a prefix, as torchvision names
    with pytest.raises(DownloadError, match="resume"):
        download(server, dest, sha256=sha, size=len(PAYLOAD))
    assert not dest.exists()
    assert part_path(dest).stat().st_size == 100_000
    download(server, dest, sha256=sha, size=len(PAYLOAD))
    assert dest.read_bytes() == PAYLOAD
    assert _Handler.ranges_seen == [None, "bytes=100000-"]


def test_wrong_checksum_removes_the_file(tmp_path, server):
    with pytest.raises(DownloadError, match="does not match"):
        download(server, tmp_path / "f.bin", sha256="0" * 64)
    assert not (tmp_path / "f.bin").exists() and not part_path(tmp_path / "f.bin").exists()


def test_cancel_keeps_the_partial_file(tmp_path, server):
    from pose2pose_mocap.weights.download import DownloadCancelled

    calls = []
    with pytest.raises(DownloadCancelled):
        download(server, tmp_path / "f.bin", progress=lambda d, t: calls.append(d),
                 cancel=lambda: len(calls) >= 2)
    assert part_path(tmp_path / "f.bin").stat().st_size == calls[-1]
    download(server, tmp_path / "f.bin", size=len(PAYLOAD))
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD
