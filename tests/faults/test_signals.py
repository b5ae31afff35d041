"""Fault matrix, signals while writing (issue #11: the passing faults of the outputs area).

* SIGINT / SIGTERM during ``convert`` and ``estimate``: a valid partial take or
  nothing, one line saying so, exit 130 / 143, no temporary file left;
* SIGKILL during ``convert`` (while Blender saves) and ``estimate``: no visible
  half file, only our own hidden temporary, which the next run removes;
* kill -9 during ``batch``: the re-run finishes, nothing of the user's is lost.

(``tests/estimator/test_cli_estimate.py`` covers the stand-alone estimate entry's
Ctrl-C/SIGTERM partial take and ``tests/batch/test_batch.py`` the batch resume
bookkeeping; here it is the ``p2p-mocap`` command and the files around it.)
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from pose2pose_mocap.common.files import is_our_temp
from pose2pose_mocap.retarget.take import read_take, write_take

from ..retarget.synthetic import standin_smplx_root, take_arrays
from .conftest import _RUNNER, batch_footage, snapshot

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(),
                                reason="watches the child's open files in /proc (Linux)")


class Child:
    """``p2p-mocap ARGS`` in a subprocess that the test can signal."""

    def __init__(self, args, cwd=None):
        fd, self.rss_file = tempfile.mkstemp(prefix="p2p_rss_")
        os.close(fd)
        env = dict(os.environ, P2P_FAULTS_RSS_FILE=self.rss_file, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, "-c", _RUNNER, *map(str, args)], cwd=cwd,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True)

    def open_files(self) -> list[str]:
        out = []
        try:
            fds = os.listdir(f"/proc/{self.proc.pid}/fd")
        except OSError:
            return out
        for fd in fds:
            try:
                out.append(os.readlink(f"/proc/{self.proc.pid}/fd/{fd}"))
            except OSError:
                pass
        return out

    def wait_for_open(self, fragment: str, timeout: float = 240) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if any(fragment in f for f in self.open_files()):
                return True
            time.sleep(0.002)
        return False

    def finish(self, timeout: float = 240):
        try:
            out, err = self.proc.communicate(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            os.unlink(self.rss_file)
        return self.proc.returncode, out, err


def visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def take_in(tmp_path) -> Path:
    return write_take(tmp_path / "clip.take.npz", take_arrays(T=8))


def convert_argv(take: Path, out: Path):
    # (pose correctives on: the slower, bigger save gives the kill a window)
    return ["convert", str(take), "--smplx", str(standin_smplx_root()), "-o", str(out)]


# --------------------------------------------------------------------------- convert

@pytest.mark.parametrize("sig,code,name", [(signal.SIGINT, 130, "Ctrl-C"),
                                           (signal.SIGTERM, 143, "SIGTERM")])
def test_convert_stopped_by_a_signal_writes_nothing_and_says_so(take_in, tmp_path, sig, code,
                                                                name):
    before = snapshot(tmp_path)
    child = Child(convert_argv(take_in, tmp_path / "clip.blend"))
    assert child.wait_for_open("clip.take.npz"), "convert never read the take"
    child.proc.send_signal(sig)
    rc, out, err = child.finish()
    assert rc == code, (rc, out, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines == [f"p2p-mocap: error: stopped by {name}: no .blend written"], err
    assert "Traceback" not in out + err
    assert snapshot(tmp_path) == before


def test_convert_killed_while_saving_leaves_only_our_temp_which_the_next_run_removes(
        take_in, tmp_path):
    out = tmp_path / "clip.blend"
    for _attempt in range(3):
        child = Child(convert_argv(take_in, out))
        caught = child.wait_for_open(".part.blend")
        if caught:
            child.proc.kill()
        child.finish()
        left = hidden(tmp_path)
        if caught and left:
            break
        for name in left:
            (tmp_path / name).unlink()
    else:
        pytest.skip("could not SIGKILL convert while Blender was saving (3 tries)")
    assert visible(tmp_path) == ["clip.take.npz"]            # no half .blend
    assert left and all(is_our_temp(n) for n in left), left
    users = tmp_path / ".clip.123.part.blend@"               # the user's look-alike
    users.write_bytes(b"the user's")
    child = Child(convert_argv(take_in, out))
    rc, stdout, err = child.finish()
    assert rc == 0, err
    assert visible(tmp_path) == ["clip.blend", "clip.take.npz"]
    assert hidden(tmp_path) == [users.name] and users.read_bytes() == b"the user's"


# --------------------------------------------------------------------------- estimate

@pytest.fixture
def long_clip(tmp_path):
    from ..estimator.media import write_video

    return write_video(tmp_path / "long.avi", 40, "MJPG", size=(160, 120))


def estimate_argv(clip: Path, standin_root: Path, *extra):
    return ["estimate", str(clip), "--smplx", str(standin_root), "--checkpoint",
            str(standin_root / "pose2pose"), "--detector", "none", "--batch", "1", *extra]


def _wait_for_progress(child: Child, timeout=240) -> list[str]:
    """Read stderr until the first frame is done; returns the lines read."""
    lines = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = child.proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("estimate: 1/"):
            return lines
    raise AssertionError("estimation never started: " + "".join(lines))


@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.parametrize("sig,code,name", [(signal.SIGINT, 130, "Ctrl-C"),
                                           (signal.SIGTERM, 143, "SIGTERM")])
def test_estimate_stopped_by_a_signal_writes_a_valid_partial_take(long_clip, tmp_path,
                                                                  standin_root, sig, code, name):
    child = Child(estimate_argv(long_clip, standin_root), cwd=tmp_path)
    first = _wait_for_progress(child)
    child.proc.send_signal(sig)
    rc, out, err = child.finish()
    err = "".join(first) + err
    assert rc == code, err
    assert "Traceback" not in out + err and "Exception ignored" not in err
    stops = [ln for ln in err.splitlines() if ln.startswith("stopped by")]
    assert len(stops) == 1 and name in stops[0] and "partial" in stops[0], err
    take = read_take(tmp_path / "long.take.npz")
    assert 1 <= take.num_frames < 40
    assert take.frame_index.tolist() == list(range(take.num_frames))
    assert hidden(tmp_path) == []


@pytest.mark.slow
@pytest.mark.torch
def test_estimate_killed_leaves_no_half_take_and_the_rerun_finishes(long_clip, tmp_path,
                                                                    standin_root):
    child = Child(estimate_argv(long_clip, standin_root), cwd=tmp_path)
    _wait_for_progress(child)
    child.proc.kill()
    child.finish()
    assert visible(tmp_path) == ["long.avi"]
    assert all(is_our_temp(n) for n in hidden(tmp_path)), hidden(tmp_path)
    child = Child(estimate_argv(long_clip, standin_root, "--frames", "0:3"), cwd=tmp_path)
    rc, out, err = child.finish()
    assert rc == 0, err
    assert visible(tmp_path) == ["long.avi", "long.take.npz"]
    assert hidden(tmp_path) == []
    assert read_take(tmp_path / "long.take.npz").num_frames == 3


# --------------------------------------------------------------------------- batch

@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.blender
def test_batch_killed_then_rerun_finishes_and_keeps_the_users_files(tmp_path, standin_root):
    src, out = batch_footage(tmp_path, "clip.mp4")
    users = {out / "notes.txt": b"mine", out / ".seq.42.part.blend": b"hidden, mine",
             out / "a" / ".clip.take.npz.part": b"also mine", out / "a" / "old.blend": b"mine"}
    for p, data in users.items():
        p.write_bytes(data)
    args = ["batch", str(src), "-o", str(out), "--smplx", str(standin_root), "--checkpoint",
            str(standin_root / "pose2pose"), "--pose-correctives", "off"]

    def records():
        path = out / "batch.jsonl"
        if not path.is_file():
            return []
        return [json.loads(ln) for ln in path.read_text().splitlines() if ln.endswith("}")]

    child = Child(args)
    deadline = time.monotonic() + 300
    while not any(r["state"] == "running" and r.get("stage") == "retarget" for r in records()):
        assert child.proc.poll() is None, child.finish()
        assert time.monotonic() < deadline, "no clip reached convert in time"
        time.sleep(0.02)
    time.sleep(0.5)  # in the middle of a convert
    child.proc.kill()
    child.finish()
    time.sleep(1.0)  # the workers die with the batch (PR_SET_PDEATHSIG)
    assert {p: p.read_bytes() for p in users} == users

    child = Child(args)
    rc, stdout, err = child.finish(timeout=600)
    assert rc == 0, stdout + err
    assert "2 clip(s): " in stdout and " 0 failed" in stdout, stdout
    assert {p: p.read_bytes() for p in users} == users
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert names == {"notes.txt", ".seq.42.part.blend", "a/.clip.take.npz.part", "a/old.blend",
                     "batch.jsonl", "a/clip.take.npz", "a/clip.blend", "seq.take.npz",
                     "seq.blend", "a/clip.qa.json", "a/clip.qa.png", "seq.qa.json", "seq.qa.png",
                     "qa-summary.csv"}, names
    last = {}
    for rec in records():
        last[rec["clip"]] = rec["state"]
    assert last == {"a/clip.mp4": "done", "seq": "done"}
