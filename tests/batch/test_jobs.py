"""Clip discovery, hashes, stage planning and the manifest (no torch, no bpy)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from pose2pose_mocap.batch.jobs import (STAGES, file_hash, file_record, find_clips,
                                        remove_leftovers, settings_from_args, stages_to_run)
from pose2pose_mocap.batch.manifest import Manifest


def _args(**kw):
    base = dict(frames=None, person="auto", detector="auto", box=None, device="auto", batch=None,
                smplx=None, checkpoint=None, fov=None, fps=None, detect_every=30,
                min_score=None, download_detector=False, precision="fp32",
                smooth="butterworth", smooth_root=4.0, smooth_body=6.0, smooth_hands=4.0,
                smooth_face=4.0, pose_correctives=True, shape_keys=True, gender=None,
                preset=None, root="grounded", rest_frame=False)
    base.update(kw)
    return SimpleNamespace(**base)


def test_find_clips_mirrors_folders_and_names_collisions(tmp_path):
    src = tmp_path / "in"
    for rel in ("a/b/run.mp4", "a/b/run.MOV", "a/walk.mkv", "seq/0001.png", "seq/0002.png",
                ".hidden/x.mp4", "notes.txt", "a/.tmp.mp4"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(b"x")
    out = src / "out"          # an output folder inside the input is never a source
    (out / "old.mp4").parent.mkdir(parents=True)
    (out / "old.mp4").write_bytes(b"x")
    clips = find_clips(src, out)
    got = {c.rel: (c.kind, c.out_dir.relative_to(out.resolve()).as_posix(), c.stem)
           for c in clips}
    assert got == {"a/b/run.MOV": ("video", "a/b", "run_MOV"),
                   "a/b/run.mp4": ("video", "a/b", "run_mp4"),
                   "a/walk.mkv": ("video", "a", "walk"),
                   "seq": ("images", ".", "seq")}
    assert [c.rel for c in find_clips(src, out, "*.mp4")] == ["a/b/run.mp4"]
    assert [c.rel for c in find_clips(src, out, "a/*")] == ["a/b/run.MOV", "a/b/run.mp4",
                                                            "a/walk.mkv"]


def test_file_hash_full_and_fast(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(os.urandom(3000))
    full = file_hash(p)
    assert len(full) == 64 and file_hash(p) == full
    fast = file_hash(p, full_limit=1000, chunk=100)
    assert fast.startswith("fast:") and fast != full
    data = bytearray(p.read_bytes())
    data[1500] ^= 1                      # the middle is not read by the fast scheme (documented)
    p.write_bytes(bytes(data))
    assert file_hash(p, full_limit=1000, chunk=100) == fast and file_hash(p) != full
    data[10] ^= 1
    p.write_bytes(bytes(data))
    assert file_hash(p, full_limit=1000, chunk=100) != fast


def test_settings_hashes_chain_per_stage():
    a = settings_from_args(_args())
    assert a.hashes == settings_from_args(_args(device="cpu")).hashes
    b = settings_from_args(_args(smooth="none"))
    assert b.hashes["estimate"] == a.hashes["estimate"]
    assert b.hashes["convert"] != a.hashes["convert"] and b.hashes["export"] != a.hashes["export"]
    c = settings_from_args(_args(frames="0:2"))
    assert all(c.hashes[s] != a.hashes[s] for s in STAGES)
    d = settings_from_args(_args(preset="bvh"))
    assert d.hashes["convert"] == a.hashes["convert"] and d.hashes["export"] != a.hashes["export"]


def test_stages_to_run(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "c.mp4").write_bytes(b"video")
    out = tmp_path / "out"
    (clip,) = find_clips(src, out)
    clip.input_hash = "h"
    out.mkdir()
    take, blend = out / "c.take.npz", out / "c.blend"
    take.write_bytes(b"t")
    blend.write_bytes(b"b")
    s = settings_from_args(_args())
    have = {"takes": [file_record(take, out)], "blends": [file_record(blend, out)]}
    done = {"state": "done", "input_hash": "h", "hashes": s.hashes, "outputs": have}
    assert stages_to_run(clip, s, None, out) == list(STAGES)
    assert stages_to_run(clip, s, done, out) == []
    assert stages_to_run(clip, s, dict(done, input_hash="other"), out) == list(STAGES)
    assert stages_to_run(clip, s, dict(done, state="failed"), out) == list(STAGES)
    assert stages_to_run(clip, settings_from_args(_args(smooth="none")), done, out) == \
        ["convert", "export"]
    assert stages_to_run(clip, settings_from_args(_args(preset="bvh")), done, out) == ["export"]
    running = {"state": "running", "input_hash": "h", "hashes": s.hashes,
               "outputs": {"takes": have["takes"]}}
    assert stages_to_run(clip, s, running, out) == ["convert", "export"]
    assert stages_to_run(clip, s, {"state": "running", "input_hash": "h"}, out) == list(STAGES)
    os.utime(blend, ns=(1, 1))           # touched by someone else: rebuilt
    assert stages_to_run(clip, s, done, out) == ["convert", "export"]
    take.unlink()
    assert stages_to_run(clip, s, done, out) == list(STAGES)


def test_manifest_appends_and_survives_a_torn_line(tmp_path):
    path = tmp_path / "batch.jsonl"
    with Manifest(path, run_id="r1") as m:
        m.append("a.mp4", "queued")
        m.append("a.mp4", "running", stage="estimate")
        m.append("a.mp4", "done", frames=3, outputs={"takes": []})
        m.append("a.mp4", "skipped")
    with open(path, "ab") as fh:
        fh.write(b'{"v": 1, "clip": "b.mp4", "sta')     # killed mid-write
    m = Manifest(path, run_id="r2")
    assert [r["state"] for r in m.records()] == ["queued", "running", "done", "skipped"]
    assert m.latest()["a.mp4"]["state"] == "done"      # skipped never hides done
    m.append("b.mp4", "failed", error="bad")
    m.close()
    lines = path.read_text().splitlines()
    assert json.loads(lines[-1])["error"] == "bad" and json.loads(lines[-1])["run"] == "r2"
    assert m.latest()["b.mp4"]["state"] == "failed"
    with pytest.raises(ValueError):
        m.append("b.mp4", "nonsense")


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_remove_leftovers(tmp_path):
    """Only our exact temporaries, of dead writers, named after the clip's outputs, in the
    folder of a clip whose latest record says a write was in progress."""
    from pose2pose_mocap.common.files import temp_path_for

    src, out = tmp_path / "in", tmp_path / "out"
    (src / "a").mkdir(parents=True)
    (src / "a" / "clip.mp4").write_bytes(b"v")
    (src / "seq.mp4").write_bytes(b"v")
    clips = find_clips(src, out)
    (out / "a").mkdir(parents=True)
    keep = out / "a" / "clip.blend"
    keep.write_bytes(b"x")
    dead = _dead_pid()

    def ours(target, pid=dead):
        name = temp_path_for(target).name.replace(f"-{os.getpid()}-", f"-{pid}-")
        p = target.with_name(name)
        p.write_bytes(b"x")
        return p

    junk = [ours(out / "a" / "clip.blend"), ours(out / "a" / "clip.take.npz"),
            ours(out / "a" / "clip.godot.fbx")]
    blender_at = Path(str(ours(out / "a" / "clip.person2.blend")) + "@")
    os.rename(blender_at.with_name(blender_at.name[:-1]), blender_at)
    junk.append(blender_at)
    users = [out / "a" / ".clip.123.part.blend", out / "a" / ".notes.part",   # the user's own
             out / "a" / ".clip.p2p-abcdef-1-0123abcd.part.blend",            # other host
             ours(out / "a" / "other.blend"),                                   # not the clip's
             ours(out / "a" / "clip.blend", pid=os.getpid()),                  # writer alive
             ours(out / "seq.blend")]                      # seq's record says nothing runs
    for u in users:
        u.write_bytes(b"x")
    (out / ".batch.lock").write_bytes(b"")
    records = [{"clip": "a/clip.mp4", "state": "running", "stage": "retarget"},
               {"clip": "a/clip.mp4", "state": "queued"},
               {"clip": "seq.mp4", "state": "done"}]
    assert sorted(remove_leftovers(out, clips, records)) == sorted(junk)
    assert all(u.exists() for u in users) and keep.exists()
    assert (out / ".batch.lock").exists()
    # Nothing in progress: nothing is removed.
    records[0]["state"] = "done"
    assert remove_leftovers(out, clips, records) == []
    assert remove_leftovers(out) == []
