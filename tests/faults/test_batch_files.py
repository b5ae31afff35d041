"""Fault matrix, batch's output folder (issue #11, items 2, 3 and 18).

* 2: batch replaces only files that this output folder's manifest records as its
  own outputs; a user's ``walk.blend`` / ``walk.take.npz`` fails that clip with
  the reason and is left as it is;
* 3: leftover clean-up deletes only our exact temporaries of writes the manifest
  says were in progress, never a user's hidden ``.part`` file;
* 18: an empty input folder leaves no output folder behind; ``.batch.lock`` does
  not stay after a run.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from pose2pose_mocap.batch import worker
from pose2pose_mocap.batch.jobs import (file_record, find_clips, is_clip_output_name,
                                        replaceable_outputs)

from .conftest import assert_one_line_error, batch_footage, run_cli, snapshot


def _clip(tmp_path, rel="a/walk.mp4"):
    src, out = tmp_path / "in", tmp_path / "out"
    (src / rel).parent.mkdir(parents=True, exist_ok=True)
    (src / rel).write_bytes(b"video")
    (clip,) = find_clips(src, out)
    clip.out_dir.mkdir(parents=True, exist_ok=True)
    return clip, out


def test_only_files_the_manifest_records_as_batch_outputs_may_be_replaced(tmp_path):
    clip, out = _clip(tmp_path)
    take, blend, fbx = (clip.out_dir / n for n in ("walk.take.npz", "walk.blend",
                                                   "walk.unity.fbx"))
    for p in (take, blend, fbx):
        p.write_bytes(b"batch wrote this")
    done = {"clip": clip.rel, "state": "done",
            "outputs": {"takes": [file_record(take, out)], "blends": [file_record(blend, out)]}}
    other = {"clip": "b.mp4", "state": "done", "outputs": {"exports": [file_record(fbx, out)]}}
    assert replaceable_outputs(clip, [done, other], out) == sorted(map(str, (take, blend)))
    # The user edited the .blend since (Blender's Ctrl-S): it is theirs now.
    os.utime(blend, ns=(1, 1))
    assert replaceable_outputs(clip, [done], out) == [str(take)]
    # No manifest: nothing in the folder is the batch's.
    assert replaceable_outputs(clip, [], out) == []


def test_files_of_a_run_killed_before_it_recorded_them_are_its_own(tmp_path):
    clip, out = _clip(tmp_path)
    users = clip.out_dir / "walk.blend"
    users.write_bytes(b"the user's, from before the run")
    os.utime(users, ns=(10**18, 10**18))                     # 2001
    t_ns = 2 * 10**18                                          # 2033: the run's start
    written = clip.out_dir / "walk.take.npz"
    written.write_bytes(b"written by the killed run")
    os.utime(written, ns=(t_ns + 5, t_ns + 5))
    stranger = clip.out_dir / "walkers.take.npz"              # not one of the clip's names
    stranger.write_bytes(b"x")
    os.utime(stranger, ns=(t_ns + 5, t_ns + 5))
    running = {"clip": clip.rel, "state": "running", "stage": "estimate", "t_ns": t_ns}
    assert replaceable_outputs(clip, [running], out) == [str(written)]
    # Only while the clip's latest record says a stage was running.
    later = [running, {"clip": clip.rel, "state": "failed"}]
    assert replaceable_outputs(clip, later, out) == []
    for name, ok in (("walk.take.npz", True), ("walk.person2.take.npz", True),
                     ("walk.blend", True), ("walk.godot.fbx", True), ("walk.glb", True),
                     ("walk.gltf.fbx", False), ("walk.txt", False), ("walker.blend", False)):
        assert is_clip_output_name(clip, name) is ok, name


def test_workers_refuse_a_users_file_in_the_output_folder(tmp_path):
    clip, out = _clip(tmp_path)
    take, blend = clip.out_dir / "walk.take.npz", clip.out_dir / "walk.blend"
    take.write_bytes(b"the user's own take")
    blend.write_bytes(b"the user's own scene")
    before = snapshot(out)
    res = worker.estimate_clip({"clip": clip.rel, "input": str(clip.path), "take": str(take),
                                "estimate": {"person": "auto"}, "replace": []})
    assert not res["ok"] and "walk.take.npz exists and this batch did not write it" in \
        res["error"], res
    spec = {"clip": clip.rel, "takes": [str(take)], "smplx": None,
            "convert": {"smoothing": {}, "pose_correctives": False, "shape_keys": True},
            "export": None, "stages": ["convert", "export"], "replace": []}
    res = worker.retarget_clip(spec)
    assert not res["ok"] and "walk.blend exists and this batch did not write it" in \
        res["error"], res
    assert "\n" not in res["error"]
    # An export name taken by the user's file is refused before anything is written.
    (clip.out_dir / "walk.unity.fbx").write_bytes(b"the user's fbx")
    spec.update(stages=["export"], export={"preset": "unity", "root": "grounded",
                                            "rest_frame": False}, replace=[str(blend)])
    res = worker.retarget_clip(spec)
    assert not res["ok"] and "walk.unity.fbx exists" in res["error"], res
    after = snapshot(out)
    assert {k: after[k] for k in before} == before


def test_empty_input_folder_leaves_no_output_folder(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("no footage here")
    res = run_cli(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out" / "deep")])
    assert_one_line_error(res, "no video or image folder")
    assert not (tmp_path / "out").exists()


def test_lock_file_does_not_stay_after_a_run(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "bad.mp4").write_bytes(b"\x00not a video\x00" * 50)
    out = tmp_path / "out"
    res = run_cli(["batch", str(src), "-o", str(out)])
    assert res.rc == 1 and "Traceback" not in res.stderr, res.stderr
    assert "FAILED bad.mp4" in res.stdout
    assert sorted(p.name for p in out.iterdir()) == ["batch.jsonl"]


@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.blender
def test_batch_never_replaces_or_deletes_the_users_files(tmp_path, standin_root):
    src, out = batch_footage(tmp_path, "walk.mp4")
    users = {out / "a" / "walk.take.npz": b"the user's take",          # item 2, estimate
             out / "seq.blend": b"the user's scene",                     # item 2, convert
             out / ".seq.123.part.blend": b"the user's hidden file",     # item 3
             out / "a" / ".notes.part": b"hidden notes",
             out / "a" / ".walk.take.npz.part1": b"more hidden notes",
             out / "readme.txt": b"mine",
             out / "qa-summary.csv": b"the user's own table\n"}      # the batch's summary name
    for p, data in users.items():
        p.write_bytes(data)
    args = ["batch", str(src), "-o", str(out), "--smplx", str(standin_root),
            "--checkpoint", str(standin_root / "pose2pose"), "--pose-correctives", "off"]
    res = run_cli(args)
    assert res.rc == 1, res.stdout + res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    assert "2 clip(s): 0 done, 0 up to date, 2 failed" in res.stdout, res.stdout
    assert "walk.take.npz exists and this batch did not write it" in res.stdout
    assert "seq.blend exists and this batch did not write it" in res.stdout
    assert {p: p.read_bytes() for p in users} == users
    assert (out / "seq.take.npz").is_file()          # seq's estimate ran; its convert refused
    assert not (out / ".batch.lock").exists()
    ours = [p for p in out.rglob(".*") if ".p2p-" in p.name]
    assert ours == []

    # The user moves their files away: the re-run replaces only what the batch wrote.
    moved = (out / "a" / "walk.take.npz", out / "seq.blend")
    for p in moved:
        p.rename(tmp_path / p.name)
    take_before = (out / "seq.take.npz").stat().st_mtime_ns
    res = run_cli(args)
    assert res.rc == 0, res.stdout + res.stderr
    assert "2 clip(s): 2 done" in res.stdout
    assert f"{out / 'qa-summary.csv'} exists and this batch did not write it" in res.stderr
    assert (out / "seq.take.npz").stat().st_mtime_ns != take_before   # its own: replaced
    for p, data in users.items():
        if p not in moved:
            assert p.read_bytes() == data
        else:
            assert (tmp_path / p.name).read_bytes() == data
    assert {p.name for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")} == {
        "walk.take.npz", "walk.blend", "seq.take.npz", "seq.blend", "batch.jsonl", "readme.txt",
        "walk.qa.json", "walk.qa.png", "seq.qa.json", "seq.qa.png",   # the per-clip QA reports
        "qa-summary.csv"}                                               # (the user's, kept)
    assert len(list(out.rglob("qa-summary*"))) == 1                     # not numbered either
    last = {}
    for line in (out / "batch.jsonl").read_text().splitlines():
        rec = json.loads(line)
        last[rec["clip"]] = rec
    assert {c: r["state"] for c, r in last.items()} == {"a/walk.mp4": "done", "seq": "done"}
