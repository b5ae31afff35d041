"""``p2p-mocap weights check|convert`` as a user runs them."""
from __future__ import annotations

import pytest

from .test_doctor import p2p

pytestmark = pytest.mark.torch


@pytest.mark.slow
def test_weights_check_and_convert(standin_root, tmp_path):
    ckpt = standin_root / "pose2pose" / "standin.pth.tar"
    r = p2p("weights", "check", str(ckpt))
    assert r.returncode == 0, r.stderr
    assert "kind:   stand-in" in r.stdout and "sha256: " in r.stdout and "keys:   834" in r.stdout

    out = tmp_path / "copy.safetensors"
    r = p2p("weights", "convert", str(ckpt), str(out))
    assert r.returncode == 0, r.stderr
    r = p2p("weights", "check", str(out))
    assert r.returncode == 0 and "kind:   stand-in" in r.stdout
    # An existing output is never replaced without --force.
    before = out.stat().st_mtime_ns
    r = p2p("weights", "convert", str(ckpt), str(out))
    assert r.returncode == 1 and "not overwriting" in r.stderr
    assert out.stat().st_mtime_ns == before

    r = p2p("weights", "check", str(standin_root / "smplx" / "SMPLX_NEUTRAL.npz"))
    assert r.returncode == 0 and "stand-in" in r.stdout


@pytest.mark.slow
def test_weights_check_refuses_junk_and_missing_files(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    r = p2p("weights", "check", str(junk))
    assert r.returncode == 1 and "kind:   unknown" in r.stdout
    r = p2p("weights", "check", str(tmp_path / "missing.pth"))
    assert r.returncode == 1 and "no such file" in r.stderr
    assert "Traceback" not in r.stderr
    r = p2p("weights", "convert", str(junk), str(tmp_path / "x.pth"))
    assert r.returncode == 1 and "must end in .safetensors" in r.stderr
