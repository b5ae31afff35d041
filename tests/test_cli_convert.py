"""``p2p-mocap convert`` on footage: estimate, then build the .blend; never replace earlier output."""
from __future__ import annotations

import numpy as np
import pytest

from .test_doctor import p2p

pytestmark = pytest.mark.torch


@pytest.mark.slow
def test_convert_sample_clip_twice_keeps_both(standin_root, repo, tmp_path):
    clip = repo / "samples" / "wave.mp4"
    args = ("convert", str(clip), "--frames", "0:3", "-o", f"{tmp_path}/",
            "--smplx", str(standin_root), "--checkpoint", str(standin_root / "pose2pose"))
    r = p2p(*args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "wave.blend").is_file() and (tmp_path / "wave.take.npz").is_file()
    assert "STAND-IN" in r.stderr and "motion in the take is meaningless" in r.stderr
    take = np.load(tmp_path / "wave.take.npz", allow_pickle=False)
    assert str(take["format"]) == "p2p-take/2" and take["frame_index"].tolist() == [0, 1, 2]
    first = (tmp_path / "wave.blend").read_bytes()
    r = p2p(*args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "wave-2.blend").is_file() and (tmp_path / "wave-2.take.npz").is_file()
    assert (tmp_path / "wave.blend").read_bytes() == first


def test_convert_refuses_bad_output_and_input(standin_root, repo, tmp_path):
    existing = tmp_path / "mine.blend"
    existing.write_bytes(b"user's file")
    r = p2p("convert", str(repo / "samples" / "wave.mp4"), "-o", str(existing))
    assert r.returncode == 1 and "not overwriting" in r.stderr
    assert existing.read_bytes() == b"user's file"
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    r = p2p("convert", str(empty), "-o", f"{tmp_path}/", "--smplx", str(standin_root),
            "--checkpoint", str(standin_root / "pose2pose"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.mp4", "mine.blend"]
