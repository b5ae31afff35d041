"""``p2p-mocap estimate``: messages, exit codes, no stray files, Ctrl-C / SIGTERM."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

from pose2pose_mocap.estimator import cli_estimate
from pose2pose_mocap.retarget.take import read_take

from .media import write_images, write_video


def _run(argv, capsys):
    try:
        rc = cli_estimate.main([str(a) for a in argv])
    except SystemExit as exc:  # a bad option: argparse's exit 2, one line
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def _npz_files(folder):
    return sorted(p.name for p in folder.rglob("*.npz"))


def _assert_one_line_error(rc, err, fragment):
    assert rc == 1
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("p2p-mocap: error:")]
    assert len(lines) == 1 and fragment in lines[0], err


def test_estimate_video(tmp_path, standin_root, capsys):
    clip = write_video(tmp_path / "clip.mp4", 12, "mp4v")
    rc, out, err = _run([clip, "--frames", "0:2", "--smplx", standin_root, "--checkpoint",
                         standin_root, "--detector", "none", "--fov", "70"], capsys)
    assert rc == 0, err
    path = tmp_path / "clip.take.npz"
    assert f"wrote {path}" in out
    assert "STAND-IN" in err and "frames/s" in err and "ETA" in err
    take = read_take(path)
    assert take.num_frames == 2 and take.standin
    assert take.focal[0] == pytest.approx(160 / np.tan(np.radians(35)))


@pytest.mark.parametrize("case", ["zero-byte video", "corrupt video", "corrupt image",
                                  "missing file", "empty folder", "range outside",
                                  "output exists", "bad frames syntax"])
def test_bad_input_one_line_no_file(tmp_path, standin_root, capsys, case):
    clip = write_video(tmp_path / "ok.avi", 5, "MJPG")
    extra = []
    if case == "zero-byte video":
        inp, fragment = tmp_path / "empty.mp4", "empty (0 bytes)"
        inp.write_bytes(b"")
    elif case == "corrupt video":
        inp, fragment = tmp_path / "junk.mov", "not a readable video"
        inp.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif case == "corrupt image":
        inp, fragment = tmp_path / "photo.jpg", "not a readable image"
        inp.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 100)
    elif case == "missing file":
        inp, fragment = tmp_path / "nope.mp4", "no such file"
    elif case == "empty folder":
        inp, fragment = tmp_path / "frames", "holds no images"
        inp.mkdir()
    elif case == "range outside":
        inp, fragment = clip, "outside the clip: it has 5 frames"
        extra = ["--frames", "7:9"]
    elif case == "output exists":
        inp, fragment = clip, "exists; not overwriting"
        (tmp_path / "mine.npz").write_bytes(b"x")
        extra = ["-o", tmp_path / "mine.npz"]
    else:
        inp, fragment = clip, "whole numbers"
        extra = ["--frames", "1:x"]
    before = _npz_files(tmp_path)
    rc, out, err = _run([inp, "--smplx", standin_root, "--checkpoint", standin_root,
                         "--detector", "none", *extra], capsys)
    if case == "bad frames syntax":  # checked when parsed, like every numeric option
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
        assert lines[0].startswith("p2p-mocap estimate: error: argument --frames:"), err
        assert fragment in lines[0], err
    else:
        _assert_one_line_error(rc, err, fragment)
    assert _npz_files(tmp_path) == before
    assert not list(tmp_path.rglob("*.part"))


@pytest.mark.slow
def test_no_person_in_any_frame(tmp_path, standin_root, detector_standin_root, capsys):
    """The stand-in detector scores its boxes ~0.82; asking for 0.99 finds nobody."""
    clip = write_video(tmp_path / "clip.avi", 5, "MJPG")
    rc, out, err = _run([clip, "--frames", ":2", "--smplx", standin_root, "--checkpoint",
                         standin_root, "--detector", detector_standin_root, "--min-score",
                         "0.99"], capsys)
    _assert_one_line_error(rc, err, "no person found in any of the 2 frames")
    assert _npz_files(tmp_path) == []


def test_missing_model_files(tmp_path, capsys):
    (img,) = write_images(tmp_path, 1)
    rc, out, err = _run([img, "--checkpoint", tmp_path / "nowhere"], capsys)
    _assert_one_line_error(rc, err, "does not hold a checkpoint file")
    assert _npz_files(tmp_path) == []


def test_progress_printer_plain_and_tty():
    from pose2pose_mocap.estimator.pipeline import Progress

    class Stream:
        def __init__(self, tty):
            self.text, self._tty = "", tty

        def write(self, s):
            self.text += s

        def flush(self):
            pass

        def isatty(self):
            return self._tty

    plain = Stream(False)
    pp = cli_estimate.ProgressPrinter(plain, interval=3600)
    for d in range(0, 11):
        pp.update(Progress("estimating", d, 10, 2.0, (10 - d) / 2.0, 1))
    pp.close()
    lines = plain.text.splitlines()
    assert lines == [  # first, second and last only (interval not reached)
        "estimate: 0/10 frames   2.00 frames/s  ETA 0:05  people 1",
        "estimate: 1/10 frames   2.00 frames/s  ETA 0:04  people 1",
        "estimate: 10/10 frames   2.00 frames/s  ETA 0:00  people 1"]
    tty = Stream(True)
    pp = cli_estimate.ProgressPrinter(tty)
    pp.update(Progress("estimating", 5, 10, 2.0, 2.5, 1))
    pp.close()
    assert tty.text.startswith("\r[############............] 5/10 frames") and \
        tty.text.endswith("\n")


def test_cli_wired_into_p2p_mocap():
    """Once cli.py routes ``estimate`` here, the main command takes the same options."""
    from pose2pose_mocap import cli

    parser = cli.build_parser()
    try:
        args = parser.parse_args(["estimate", "x.mp4", "--fov", "50"])
    except SystemExit:
        pytest.skip("cli.py does not route 'estimate' to estimator.cli_estimate yet")
    if not hasattr(args, "fov"):
        pytest.skip("cli.py does not route 'estimate' to estimator.cli_estimate yet")
    assert args.fov == 50 and args.person == "auto"


# ---------------------------------------------------------------------------- signals
@pytest.mark.parametrize("sig,code,name", [(signal.SIGINT, 130, "Ctrl-C"),
                                           (signal.SIGTERM, 143, "SIGTERM")])
@pytest.mark.slow
def test_signal_writes_partial_take(tmp_path, standin_root, sig, code, name):
    clip = write_video(tmp_path / "long.avi", 40, "MJPG")
    cmd = [sys.executable, "-m", "pose2pose_mocap.estimator.cli_estimate", str(clip),
           "--smplx", str(standin_root), "--checkpoint", str(standin_root),
           "--detector", "none", "--batch", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    err_lines: list[str] = []
    started = threading.Event()

    def read_err():
        for line in proc.stderr:
            err_lines.append(line)
            if line.startswith("estimate: 1/"):
                started.set()

    reader = threading.Thread(target=read_err, daemon=True)
    reader.start()
    try:
        assert started.wait(180), "".join(err_lines)
        proc.send_signal(sig)
        out = proc.stdout.read()
        rc = proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(10)
    err = "".join(err_lines)
    assert rc == code, err
    assert "Traceback" not in err
    assert f"stopped by {name}" in err and "partial" in err
    path = tmp_path / "long.take.npz"
    assert f"wrote {path}" in out
    take = read_take(path)
    assert 1 <= take.num_frames < 40
    assert take.frame_index.tolist() == list(range(take.num_frames))
    assert not list(tmp_path.glob("*.part")) and not list(tmp_path.glob(".*.npz*"))
