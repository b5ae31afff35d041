"""``p2p-mocap batch``: a folder of tiny clips (one corrupt), SIGKILL and resume, changed
settings, and the Ray path on a local Ray instance (stand-in model files)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ..estimator.media import frame, write_video

pytestmark = [pytest.mark.torch, pytest.mark.blender, pytest.mark.slow]

SIZE = (160, 120)
GOOD = ("a/clip.mp4", "seq")


@pytest.fixture(scope="module")
def footage(tmp_path_factory) -> Path:
    import cv2

    root = tmp_path_factory.mktemp("footage")
    (root / "a").mkdir()
    write_video(root / "a" / "clip.mp4", n=4, size=SIZE)
    (root / "seq").mkdir()
    for i in range(3):
        cv2.imwrite(str(root / "seq" / f"img{i}.png"), cv2.resize(frame(i), SIZE))
    (root / "bad.mp4").write_bytes(b"\x00this is not a video\x00" * 200)
    return root


def _cmd(footage, out, standin_root, *extra):
    return [sys.executable, "-m", "pose2pose_mocap.batch.cli_batch", str(footage), "-o", str(out),
            "--smplx", str(standin_root), "--checkpoint", str(standin_root / "pose2pose"), *extra]


def batch(footage, out, standin_root, *extra) -> subprocess.CompletedProcess:
    return subprocess.run(_cmd(footage, out, standin_root, *extra), capture_output=True,
                          text=True, timeout=300)


def records(out: Path) -> list[dict]:
    path = out / "batch.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def outputs(out: Path) -> dict[str, int]:
    """Visible output files -> mtime_ns (hidden files: the lock and writers' temporaries)."""
    return {p.relative_to(out).as_posix(): p.stat().st_mtime_ns for p in out.rglob("*")
            if p.is_file() and not p.name.startswith(".") and p.name != "batch.jsonl"}


def leftovers(out: Path) -> list[Path]:
    return [p for p in out.rglob(".*") if ".part" in p.name]


EXPECTED = {"a/clip.take.npz", "a/clip.blend", "seq.take.npz", "seq.blend",
            "a/clip.qa.json", "a/clip.qa.png", "seq.qa.json", "seq.qa.png", "qa-summary.csv"}


@pytest.fixture(scope="module")
def local_run(footage, standin_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("batch_local") / "out"
    t0 = time.monotonic()
    r = batch(footage, out, standin_root, "--workers", "1")
    return out, r, time.monotonic() - t0


def test_two_clips_finish_and_the_corrupt_one_fails_with_its_reason(local_run):
    out, r, _ = local_run
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert set(outputs(out)) == EXPECTED
    assert "3 clip(s): 2 done, 0 up to date, 1 failed" in r.stdout
    assert "FAILED bad.mp4:" in r.stdout and "not a readable video" in r.stdout
    assert "7 frames estimated" in r.stdout
    last = {rec["clip"]: rec for rec in records(out)}
    assert {c: last[c]["state"] for c in last} == {"a/clip.mp4": "done", "seq": "done",
                                                   "bad.mp4": "failed"}
    assert "not a readable video" in last["bad.mp4"]["error"]
    assert last["a/clip.mp4"]["frames"] == 4 and last["seq"]["frames"] == 3
    states = [rec["state"] for rec in records(out) if rec["clip"] == "seq"]
    assert states == ["queued", "running", "running", "done"]
    take = np.load(out / "a" / "clip.take.npz")
    assert take["frame_index"].tolist() == [0, 1, 2, 3]
    assert not leftovers(out)


def test_sigkill_then_rerun_finishes_the_rest_and_settings_rerun_affected_stages(
        footage, standin_root, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(_cmd(footage, out, standin_root), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not any(rec["state"] == "done" for rec in records(out)):
            assert proc.poll() is None, "the batch ended before it could be killed"
            assert time.monotonic() < deadline, "no clip finished in time"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    time.sleep(1.0)  # the workers die with the batch (PR_SET_PDEATHSIG)
    first = records(out)
    finished = {rec["clip"] for rec in first if rec["state"] == "done"}
    assert len(finished) == 1 and finished < set(GOOD), first
    (done_clip,) = finished
    prefix = "a/clip." if done_clip == "a/clip.mp4" else "seq."
    before = {k: v for k, v in outputs(out).items() if k.startswith(prefix)}
    assert set(before) == {prefix + s for s in ("take.npz", "blend", "qa.json", "qa.png")}
    for name in outputs(out):        # whatever exists is whole
        if name.endswith(".take.npz"):
            assert len(np.load(out / name)["frame_index"]) > 0

    r = batch(footage, out, standin_root)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "3 clip(s): 1 done, 1 up to date, 1 failed" in r.stdout
    assert "FAILED bad.mp4:" in r.stdout
    assert set(outputs(out)) == EXPECTED and not leftovers(out)
    after = outputs(out)
    assert {k: after[k] for k in before} == before          # the finished clip was not redone
    second = records(out)[len(first):]
    run2 = {rec["run"] for rec in second}
    assert len(run2) == 1 and run2.isdisjoint(rec["run"] for rec in first)
    mine = [rec["state"] for rec in second if rec["clip"] == done_clip]
    assert mine == ["skipped"]
    other = next(c for c in GOOD if c != done_clip)
    assert [rec["state"] for rec in second if rec["clip"] == other][-1] == "done"

    # Nothing changed: nothing runs (the corrupt clip is retried and fails again).
    r = batch(footage, out, standin_root)
    assert "3 clip(s): 0 done, 2 up to date, 1 failed" in r.stdout, r.stdout + r.stderr
    assert outputs(out) == after

    # New smoothing and an export preset: re-convert and export, never re-estimate.
    r = batch(footage, out, standin_root, "--smooth", "none", "--preset", "bvh")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "3 clip(s): 2 done, 0 up to date, 1 failed" in r.stdout
    now = outputs(out)
    assert set(now) == EXPECTED | {"a/clip.bvh", "seq.bvh"}
    for name in EXPECTED - {"qa-summary.csv"}:
        assert (now[name] == after[name]) == name.endswith(".take.npz"), name
    third = [rec for rec in records(out) if rec["state"] == "done"][-2:]
    assert all(rec["stages"] == ["convert", "export"] for rec in third)

    # Only the export preset changes: only the export runs.
    r = batch(footage, out, standin_root, "--smooth", "none", "--preset", "godot")
    assert "3 clip(s): 2 done" in r.stdout, r.stdout + r.stderr
    last = outputs(out)
    assert {"a/clip.godot.fbx", "seq.godot.fbx"} <= set(last)
    assert all(last[name] == now[name] for name in EXPECTED)


def test_ray_on_a_local_instance_gives_the_same_outputs(local_run, footage, standin_root,
                                                        tmp_path):
    pytest.importorskip("ray")
    ref, _, _ = local_run
    out = tmp_path / "out"
    r = batch(footage, out, standin_root, "--ray", "local")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "3 clip(s): 2 done, 0 up to date, 1 failed" in r.stdout
    assert "FAILED bad.mp4:" in r.stdout and "not a readable video" in r.stdout
    assert set(outputs(out)) == set(outputs(ref)) == EXPECTED
    for name in ("a/clip.take.npz", "seq.take.npz"):
        a, b = np.load(ref / name), np.load(out / name)
        assert a.files == b.files
        for key in a.files:
            if a[key].dtype.kind == "f":
                # Ray's CPU task runs torch on 1 thread, the local pool on 2: float sums differ
                # in the last bits.
                np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-4, err_msg=key)
            else:
                assert np.array_equal(a[key], b[key]), key
    assert [rec["state"] for rec in records(out) if rec["clip"] == "seq"][-1] == "done"
