"""The estimator worker process: JSON lines protocol, real estimator on stand-ins."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

REPO = Path(__file__).resolve().parent.parent
WORKER = REPO / "worker" / "__main__.py"
CLIP = REPO / "samples" / "wave.mp4"


def _start(tmp_path, *, as_script=True):
    cmd = [sys.executable, str(WORKER)] if as_script else \
        [sys.executable, "-m", "pose2pose_mocap.worker"]
    cmd += ["--log", str(tmp_path / "worker.log")]
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1)


def _events(proc, until=("done", "error"), timeout=240):
    out = []
    t0 = time.monotonic()
    for line in proc.stdout:
        ev = json.loads(line)            # every stdout line is a JSON object
        out.append(ev)
        if ev["event"] in until:
            break
        assert time.monotonic() - t0 < timeout
    return out


@pytest.mark.parametrize("entry", [
    [str(REPO / "worker" / "__main__.py")],             # what the add-on runs
    ["-m", "pose2pose_mocap.worker"],
    [str(REPO / "estimator" / "worker.py")],            # the old entries, kept working
    ["-m", "pose2pose_mocap.estimator.worker"],
], ids=["script", "module", "old-script", "old-module"])
def test_every_entry_answers_the_handshake(tmp_path, entry):
    log = tmp_path / "worker.log"
    proc = subprocess.Popen([sys.executable, *entry, "--log", str(log)], cwd=tmp_path,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1)
    try:
        proc.stdin.write(json.dumps({"cmd": "ping"}) + "\n")
        proc.stdin.flush()
        evs = _events(proc, until=("pong", "error"), timeout=120)
        proc.stdin.close()
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        proc.stdout.close()
        proc.stderr.close()
    assert [e["event"] for e in evs] == ["ready", "pong"], evs
    assert evs[0]["protocol"] == 1 and evs[0]["log"] == str(log)
    assert "worker started" in log.read_text()


def _request(standin_root, out_dir, frames):
    return {"cmd": "estimate", "inputs": str(CLIP), "output": str(out_dir) + "/",
            "frames": frames, "smplx": str(standin_root),
            "checkpoint": str(standin_root / "pose2pose" / "standin.pth.tar"),
            "detector": "none", "device": "cpu", "batch": 2}


@pytest.mark.slow
def test_estimate_protocol_and_take(tmp_path, standin_root):
    proc = _start(tmp_path)
    proc.stdin.write(json.dumps(_request(standin_root, tmp_path, "0:4")) + "\n")
    proc.stdin.flush()
    evs = _events(proc)
    proc.stdin.close()
    assert proc.wait(30) == 0
    kinds = [e["event"] for e in evs]
    assert kinds[0] == "ready" and "start" in kinds and kinds[-1] == "done", kinds
    prog = [e for e in evs if e["event"] == "progress" and e["stage"] == "estimating"]
    assert prog[-1]["done"] == 4 and prog[-1]["fps"] > 0 and prog[-1]["eta_s"] == 0
    assert any(e["event"] == "warning" and "STAND-IN" in e["message"] for e in evs)
    done = evs[-1]
    assert done["cancelled"] is False and done["frames_done"] == 4 and done["standin"] is True
    with np.load(done["takes"][0], allow_pickle=False) as z:
        assert z["frame_index"].tolist() == [0, 1, 2, 3]
    log = (tmp_path / "worker.log").read_text()
    assert "worker started" in log and "done:" in log


@pytest.mark.slow
def test_cancel_keeps_a_valid_partial_take(tmp_path, standin_root):
    from pose2pose_mocap.retarget.take import read_take

    proc = _start(tmp_path, as_script=False)
    proc.stdin.write(json.dumps(_request(standin_root, tmp_path, "0:60")) + "\n")
    proc.stdin.flush()
    evs = []
    for line in proc.stdout:
        ev = json.loads(line)
        evs.append(ev)
        if ev["event"] == "progress" and ev["stage"] == "estimating" and ev["done"] > 0:
            proc.stdin.write(json.dumps({"cmd": "cancel"}) + "\n")
            proc.stdin.flush()
        if ev["event"] in ("done", "error"):
            break
    proc.stdin.close()
    proc.wait(30)
    done = evs[-1]
    assert done["event"] == "done" and done["cancelled"] is True, evs[-3:]
    assert 0 < done["frames_done"] < 60
    take = read_take(done["takes"][0])
    assert take.num_frames == done["frames_done"]


def test_bad_requests_give_error_events(tmp_path):
    proc = _start(tmp_path)
    proc.stdin.write("this is not json\n")
    proc.stdin.write(json.dumps({"cmd": "estimate", "inputs": str(tmp_path / "missing.mp4")}) + "\n")
    proc.stdin.write(json.dumps({"cmd": "nonsense"}) + "\n")
    proc.stdin.flush()
    evs = _events(proc, until=("error",))
    evs += _events(proc, until=("error",))
    evs += _events(proc, until=("error",))
    proc.stdin.close()
    assert proc.wait(30) == 0
    assert evs[0]["event"] == "ready"
    # Every malformed request gets an error event (not a warning), in any order.
    errors = [e for e in evs if e["event"] == "error"]
    assert len(errors) == 3 and all(e["log"] for e in errors)
    assert any("not JSON" in e["message"] for e in errors)
    assert any("missing.mp4" in e["message"] for e in errors)
    assert any("nonsense" in e["message"] for e in errors)


def test_doctor_request(tmp_path, standin_root):
    proc = _start(tmp_path)
    proc.stdin.write(json.dumps({"cmd": "doctor", "smplx": str(standin_root),
                                 "checkpoint": str(standin_root / "pose2pose" /
                                                   "standin.pth.tar")}) + "\n")
    proc.stdin.flush()
    evs = _events(proc, until=("doctor", "error"))
    proc.stdin.close()
    proc.wait(30)
    assert evs[-1]["event"] == "doctor" and evs[-1]["standins"] is True
    assert "torch" in evs[-1]["report"].lower()
