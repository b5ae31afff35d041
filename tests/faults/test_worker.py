"""Fault matrix, item 4: the estimator worker and the add-on's client of it.

The worker is started as the add-on starts it (the script, JSON lines on stdin).
Every malformed request gets one ``error`` event and the worker keeps serving;
closing stdin always ends it; the add-on's client never waits forever.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[2]
WORKER = REPO / "worker" / "__main__.py"


class Worker:
    """The worker subprocess with a reader thread (reads never block the test)."""

    def __init__(self, tmp_path):
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), "--log", str(tmp_path / "worker.log")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.events: list = []
        self.raw: list = []
        self._cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self._cv:
                self.raw.append(line)
                self.events.append(json.loads(line))  # every stdout line is one JSON object
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    def send(self, data: bytes):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def wait_for(self, n_events: int, timeout: float = 120.0) -> list:
        t0 = time.monotonic()
        with self._cv:
            while len(self.events) < n_events:
                left = timeout - (time.monotonic() - t0)
                assert left > 0, f"no answer in {timeout} s; events so far: {self.events}"
                self._cv.wait(left)
            return list(self.events)

    def close_and_wait(self, timeout: float = 10.0) -> float:
        t0 = time.monotonic()
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            pytest.fail(f"the worker did not end within {timeout} s after end of input")
        return time.monotonic() - t0


@pytest.fixture
def worker(tmp_path):
    w = Worker(tmp_path)
    w.wait_for(1)
    assert w.events[0]["event"] == "ready"
    yield w
    if w.proc.poll() is None:
        w.proc.kill()
        w.proc.wait(10)


BAD_LINES = {
    "deeply nested JSON": b"[" * 100_000 + b"]" * 100_000 + b"\n",
    "deeply nested object": b'{"cmd": ' + b"[" * 100_000 + b"\n",
    "not JSON": b"this is not json\n",
    "not UTF-8": b'{"cmd": "ping", "x": "\xff\xfe"}\n',
    "a JSON list": b'["cmd", "ping"]\n',
    "a JSON number": b"42\n",
    "no cmd": b'{"inputs": "x.mp4"}\n',
    "unknown cmd": b'{"cmd": "nonsense"}\n',
    "cmd not text": b'{"cmd": {"a": 1}}\n',
    "private method as cmd": b'{"cmd": "_bad_request"}\n',
    "huge line (20 MiB)": b'{"cmd": "ping", "pad": "' + b"x" * (20 * 2**20) + b'"}\n',
}


def test_every_malformed_request_gets_an_error_and_the_worker_keeps_serving(worker):
    n = 1
    for what, line in BAD_LINES.items():
        worker.send(line)
        worker.send(b'{"cmd": "ping"}\n')
        evs = worker.wait_for(n + 2, timeout=60)
        got = [e["event"] for e in evs[n:n + 2]]
        assert got == ["error", "pong"], (what, evs[n:])
        msg = evs[n]["message"]
        assert "\n" not in msg and len(msg) < 400 and evs[n]["log"], (what, msg)
        n += 2
    assert max(len(r) for r in worker.raw) < 2000  # nothing echoes a huge request back
    assert worker.close_and_wait(10) < 10
    assert worker.proc.returncode == 0


# One worker answers every case (each worker start is ~2 s of imports): a malformed request
# gets one error event and the worker keeps serving, which is what the add-on relies on.
BAD_ESTIMATE_REQUESTS = [
    ({"fps": float("inf")}, ["fps", "finite"]),
    ({"fps": 1e300}, ["fps", "out of range"]),
    ({"fov": 0}, ["fov", "out of range"]),
    ({"batch": 0}, ["batch", "out of range"]),
    ({"batch": 2.5}, ["batch", "whole number"]),
    ({"min_score": -1}, ["min_score"]),
    ({"detect_every": "x"}, ["detect_every"]),
    ({"frames": "9:3"}, ["frames", "after the start"]),
    ({"frames": 5}, ["frames"]),
    ({"person": 0}, ["person"]),
    ({"box": "1,2,3"}, ["box"]),
    ({"device": "tpu"}, ["device"]),
    ({"inputs": 7}, ["inputs"]),
    ({"force": "yes"}, ["force"]),
    ({"estimator": "nope"}, ["estimator"]),
]


def test_estimate_requests_are_validated_like_the_cli(worker, tmp_path):
    for i, (request_fields, words) in enumerate(BAD_ESTIMATE_REQUESTS):
        req = {"cmd": "estimate", "inputs": str(tmp_path / "clip.mp4"),
               "output": str(tmp_path) + "/", **request_fields}
        worker.send((json.dumps(req) + "\n").encode())
        evs = worker.wait_for(2 + i, timeout=60)
        ev = evs[1 + i]
        assert ev["event"] == "error", (request_fields, ev)
        for w in words:
            assert w in ev["message"], (request_fields, ev["message"])
        assert "Traceback" not in ev["message"], request_fields
    worker.close_and_wait(10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["worker.log"]


def _smooth_npz(path, **over):
    """A take file (as the add-on sends it), with some arrays replaced or removed."""
    from tests.retarget.synthetic import take_arrays

    T = 12
    rng = np.random.default_rng(0)
    arrays = take_arrays(T=T, dtype=np.float64)
    arrays.update(body_pose=rng.normal(0, 0.1, (T, 63)))
    arrays.update(over)
    arrays = {k: np.asarray(v) for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


def test_smooth_reads_safely_and_writes_atomically(worker, tmp_path, pwn_marker):
    good = _smooth_npz(tmp_path / "good.npz")
    out = tmp_path / "out.npz"
    out.write_bytes(b"old private output")  # the worker's own output: replaced is fine
    worker.send((json.dumps({"cmd": "smooth", "take": str(good), "out": str(out),
                             "settings": {"method": "butterworth", "body_hz": 4.0,
                                          "root_hz": 0}}) + "\n")
                .encode())
    evs = worker.wait_for(2)
    assert evs[1]["event"] == "smoothed", evs
    from pose2pose_mocap.retarget.take import read_take

    smoothed, raw = read_take(out, strict=True), read_take(good)
    assert smoothed.params["body_pose"].shape == (12, 63)
    assert not np.allclose(smoothed.params["body_pose"], raw.params["body_pose"])
    np.testing.assert_array_equal(smoothed.params["transl"], raw.params["transl"])  # root: off

    class Pwn:
        def __reduce__(self):
            return (Path(pwn_marker).touch, ())

    obj = np.empty(1, dtype=object)
    obj[0] = Pwn()
    bad = {
        "pickle": _smooth_npz(tmp_path / "pickle.npz", body_pose=obj),
        "wrong rows": _smooth_npz(tmp_path / "rows.npz", transl=np.zeros((5, 3))),
        "unknown array": _smooth_npz(tmp_path / "unknown.npz", evil=np.zeros(3)),
        "fps inf": _smooth_npz(tmp_path / "fps.npz", fps=np.float64(np.inf)),
        "no valid": _smooth_npz(tmp_path / "novalid.npz", valid=None),
        "nan": _smooth_npz(tmp_path / "nan.npz", transl=np.full((12, 3), np.nan)),
    }
    n = 2
    for what, path in bad.items():
        o = tmp_path / f"out-{path.stem}.npz"
        worker.send((json.dumps({"cmd": "smooth", "take": str(path), "out": str(o),
                                 "settings": {}}) + "\n").encode())
        evs = worker.wait_for(n + 1)
        assert evs[n]["event"] == "error", (what, evs[n])
        assert not o.exists(), what
        n += 1
    for settings in ({"body_hz": float("inf")}, {"body_hz": "x"}, {"nope": 1}, [1, 2]):
        worker.send((json.dumps({"cmd": "smooth", "take": str(good), "out": str(out),
                                 "settings": settings}) + "\n").encode())
        evs = worker.wait_for(n + 1)
        assert evs[n]["event"] == "error", (settings, evs[n])
        n += 1
    worker.close_and_wait(10)
    assert not pwn_marker.exists()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_end_of_input_ends_the_worker_even_mid_line(tmp_path):
    w = Worker(tmp_path)
    w.wait_for(1)
    w.send(b'{"cmd": "ping", "unfinished": "')   # no newline: end of input mid-request
    assert w.close_and_wait(10) < 10


# --------------------------------------------------------------------------- add-on client

def test_run_worker_request_times_out_on_a_silent_worker(tmp_path):
    from pose2pose_mocap.worker.client import run_worker_request

    silent = [sys.executable, "-c", "import time\nwhile True: time.sleep(1)"]
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="no answer from the worker within 2 s"):
        run_worker_request("unused", {"cmd": "doctor"}, "doctor", timeout=2,
                           log_path=tmp_path / "w.log", command=silent)
    assert time.monotonic() - t0 < 15


def test_run_worker_request_refuses_a_worker_that_talks_nonsense(tmp_path):
    from pose2pose_mocap.worker.client import run_worker_request

    for reply in ('["not", "an", "event"]', '"text"', "not json at all"):
        talker = [sys.executable, "-c",
                  f"import sys, time\nprint({reply!r}, flush=True)\ntime.sleep(60)"]
        t0 = time.monotonic()
        with pytest.raises(RuntimeError, match="the worker wrote"):
            run_worker_request("unused", {"cmd": "doctor"}, "doctor", timeout=20,
                               log_path=tmp_path / "w.log", command=talker)
        assert time.monotonic() - t0 < 15


def test_estimate_steps_give_up_on_a_worker_that_stops_talking(tmp_path):
    from pose2pose_mocap.addon.jobs import EstimateSteps

    ready = json.dumps({"event": "ready", "protocol": 1})
    stalls = [sys.executable, "-c",
              f"import time\nprint({ready!r}, flush=True)\nwhile True: time.sleep(1)"]
    job = EstimateSteps({"inputs": "x.mp4"}, command=stalls, log_path=tmp_path / "e.log",
                        stall_timeout=2)
    t0 = time.monotonic()
    job.run(interval=0.05)
    assert job.state == "error" and "no word from the worker" in job.error, job.error
    assert time.monotonic() - t0 < 15
    assert job.worker.proc.poll() is not None  # killed, not left running
