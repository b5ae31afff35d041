"""Fault matrix, writing outputs (issue #11, items 7, 9 and 16).

* 7: racing writers never overwrite each other: exactly one wins an explicit name
  (the other gets a clear error), default names get the next number, through
  ``common.files`` for takes, ``.blend`` files, exports and converted checkpoints;
* 9: a full disk, a file-size limit or a read-only folder is one line naming the
  file and the cause, no traceback (not Blender's either), nothing left behind;
* 16: our own temporary files left by killed runs are removed by the next run,
  and only those (exact pattern, writer gone).

Full disks are small tmpfs mounts (skipped with the reason where mounting is not
permitted); the file-size limit (RLIMIT_FSIZE, EFBIG) works without root.
"""
from __future__ import annotations

import errno
import gc
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest

from pose2pose_mocap.common import files
from pose2pose_mocap.common.errors import OutputExistsError as AnyOutputExists
from pose2pose_mocap.common.errors import OutputWriteError, P2PError
from pose2pose_mocap.retarget.take import read_take, write_take

from ..retarget.synthetic import standin_smplx_root, take_arrays
from .conftest import CliResult, _RUNNER, assert_one_line_error, run_cli, snapshot


# --------------------------------------------------------------------------- helpers

def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def our_temp(target: Path, pid: int, extra: str = "") -> Path:
    """A temporary file of the exact form ``common.files`` makes, as process ``pid`` left it."""
    name = files.temp_path_for(target).name.replace(f"-{os.getpid()}-", f"-{pid}-", 1)
    p = target.with_name(name + extra)
    p.write_bytes(b"half a file")
    return p


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def small_disk(tmp_path):
    """``make(size)`` -> a folder on a tmpfs of that size (``ro=True``: read-only)."""
    mounted = []

    def make(size: str = "256k", ro: bool = False) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs",
                            str(where)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs to fill (needs root / CAP_SYS_ADMIN): "
                        f"{r.stderr.strip()}")
        mounted.append(where)
        if ro:
            r = subprocess.run(["mount", "-o", "remount,ro", str(where)], capture_output=True,
                               text=True)
            if r.returncode != 0:
                pytest.skip(f"cannot remount the tmpfs read-only: {r.stderr.strip()}")
        return where

    yield make
    for where in mounted:
        if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


def run_cli_fsize(args, limit: int, *, cwd=None) -> CliResult:
    """``run_cli`` with RLIMIT_FSIZE in the child (writes past ``limit`` bytes: EFBIG)."""
    fd, rss_file = tempfile.mkstemp(prefix="p2p_rss_")
    os.close(fd)

    def limit_writes():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = dict(os.environ, P2P_FAULTS_RSS_FILE=rss_file, PYTHONUNBUFFERED="1")
    try:
        proc = subprocess.run([sys.executable, "-c", _RUNNER, *map(str, args)], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=600,
                              stdin=subprocess.DEVNULL, preexec_fn=limit_writes)
        return CliResult(proc.returncode, proc.stdout, proc.stderr, float("nan"))
    finally:
        os.unlink(rss_file)


@pytest.fixture(scope="module")
def take_file(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("take")
    return write_take(folder / "clip.take.npz", take_arrays(T=6))


@pytest.fixture(scope="module")
def smplx_root() -> Path:
    return standin_smplx_root()


def convert_args(take: Path, smplx: Path, out: Path, *extra) -> list[str]:
    return ["convert", str(take), "--smplx", str(smplx), "--pose-correctives", "off",
            "-o", str(out), *extra]


@pytest.fixture(scope="module")
def blend_file(take_file, smplx_root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("blend") / "clip.blend"
    res = run_cli(convert_args(take_file, smplx_root, out))
    assert res.rc == 0, res.stderr
    return out


class CommitBarrier:
    """Make every racing thread reach the commit (os.link / os.replace) before any commits.

    This is the window a check-then-rename writer loses: all of them checked that
    the name was free long before.
    """

    def __init__(self, monkeypatch, parties: int):
        self.barrier = threading.Barrier(parties, timeout=20)
        self.seen = threading.local()
        for name in ("link", "replace"):
            real = getattr(os, name)
            monkeypatch.setattr(os, name, self._wrap(real))

    def _wrap(self, real):
        def call(*a, **kw):
            if not getattr(self.seen, "done", False) and threading.current_thread().name.startswith(
                    "racer"):
                self.seen.done = True
                try:
                    self.barrier.wait()
                except threading.BrokenBarrierError:
                    pass
            return real(*a, **kw)
        return call


def race(n: int, fn) -> list:
    """Run ``fn(i)`` in ``n`` threads at once; results or exceptions, in order."""
    out: list = [None] * n
    start = threading.Barrier(n)

    def run(i):
        start.wait()
        try:
            out[i] = fn(i)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertions
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,), name=f"racer{i}") for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


# --------------------------------------------------------------------------- item 7: commits

@pytest.mark.parametrize("how", ["link", "renameat2", "claim"])
def test_commit_never_replaces_a_file_created_between_check_and_commit(tmp_path, monkeypatch,
                                                                       how):
    if how != "link":  # a file system without hard links
        monkeypatch.setattr(os, "link", lambda *a, **k: (_ for _ in ()).throw(
            PermissionError(errno.EPERM, "Operation not permitted")))
    if how == "claim":  # ... and without renameat2: O_EXCL claim, then replace our claim
        monkeypatch.setattr(files, "_rename_noreplace", lambda src, dst: False)
    target = tmp_path / "out.blend"
    assert not target.exists()                      # the check: free
    tmp = files.temp_path_for(target)
    tmp.write_bytes(b"ours")
    target.write_bytes(b"someone else's")           # ... appears before the commit
    with pytest.raises(AnyOutputExists, match="exists; not overwriting it"):
        files.commit(tmp, target)
    assert target.read_bytes() == b"someone else's" and tmp.read_bytes() == b"ours"
    tmp.unlink()
    fresh = tmp_path / "fresh.blend"
    tmp.write_bytes(b"ours")
    assert files.commit(tmp, fresh) == fresh and fresh.read_bytes() == b"ours"
    assert not tmp.exists()

    # atomic_write: an explicit name is refused, a default name takes the next number.
    def write_and_lose(p: Path):
        p.write_bytes(b"mine")
        Path(tmp_path / "late.blend").write_bytes(b"another run's")
    with pytest.raises(AnyOutputExists):
        files.atomic_write(tmp_path / "late.blend", write_and_lose)
    assert (tmp_path / "late.blend").read_bytes() == b"another run's"
    (tmp_path / "late.blend").unlink()
    got = files.atomic_write(tmp_path / "late.blend", write_and_lose, numbered=True)
    assert got == tmp_path / "late-2.blend" and got.read_bytes() == b"mine"
    assert hidden(tmp_path) == []


def test_racing_take_writers_on_one_name_exactly_one_wins(tmp_path, monkeypatch):
    """Six writers of one explicit take name: one file, five clear errors."""
    from pose2pose_mocap.retarget.errors import OutputExistsError

    n = 6
    target = tmp_path / "clip.take.npz"
    CommitBarrier(monkeypatch, n)
    arrays = [dict(take_arrays(T=4), person_id=i + 1) for i in range(n)]
    results = race(n, lambda i: write_take(target, arrays[i]))
    wins = [r for r in results if isinstance(r, Path)]
    losses = [r for r in results if isinstance(r, BaseException)]
    assert len(wins) == 1 and wins[0] == target, results
    assert len(losses) == n - 1
    assert all(isinstance(e, OutputExistsError) and isinstance(e, P2PError) for e in losses)
    assert all("exists" in str(e) and "\n" not in str(e) for e in losses)
    assert 1 <= read_take(target).person_id <= n
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.take.npz"]


def test_racing_default_take_names_get_numbers(tmp_path, monkeypatch):
    """Estimate's default names: racing runs each get their own numbered file, none lost."""
    from pose2pose_mocap.estimator.pipeline import OutputPlan, write_take_file

    n = 4
    CommitBarrier(monkeypatch, n)
    plan = OutputPlan(tmp_path, "clip.take.npz", explicit=False, force=False)
    arrays = [dict(take_arrays(T=3), person_id=i + 1) for i in range(n)]
    results = race(n, lambda i: write_take_file(plan, None, arrays[i]))
    assert all(isinstance(r, Path) for r in results), results
    assert sorted(p.name for p in results) == ["clip-2.take.npz", "clip-3.take.npz",
                                               "clip-4.take.npz", "clip.take.npz"]
    assert sorted(read_take(p).person_id for p in results) == list(range(1, n + 1))
    assert hidden(tmp_path) == []


def _race_cli(argv_list):
    results: list = [None] * len(argv_list)

    def run(i):
        results[i] = run_cli(argv_list[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(argv_list))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return results


def test_two_converts_racing_on_one_blend(take_file, smplx_root, tmp_path):
    out = tmp_path / "same.blend"
    results = _race_cli([convert_args(take_file, smplx_root, out)] * 2)
    ok = [r for r in results if r.rc == 0]
    bad = [r for r in results if r.rc != 0]
    assert len(ok) == 1 and len(bad) == 1, [(r.rc, r.stderr) for r in results]
    assert_one_line_error(bad[0], "same.blend", "exists", "not overwriting")
    assert f"wrote {out}" in ok[0].stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same.blend"]


def test_two_exports_racing_on_one_file(blend_file, tmp_path):
    out = tmp_path / "same.bvh"
    args = ["export", str(blend_file), "--preset", "bvh", "-o", str(out)]
    results = _race_cli([args, args])
    ok = [r for r in results if r.rc == 0]
    bad = [r for r in results if r.rc != 0]
    assert len(ok) == 1 and len(bad) == 1, [(r.rc, r.stderr) for r in results]
    assert_one_line_error(bad[0], "same.bvh", "exists", "not overwriting")
    assert out.read_text().startswith("HIERARCHY")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same.bvh"]


def test_converted_checkpoint_is_never_replaced_by_a_late_commit(tmp_path, monkeypatch):
    """``weights convert``: a file that appears while converting is kept, and the run says so."""
    import torch

    from pose2pose_mocap.estimator.pose2pose import checkpoint

    src = tmp_path / "src.pth"
    src.write_bytes(b"x")
    monkeypatch.setattr(checkpoint, "read_state_dict",
                        lambda path: ({"w": torch.zeros(4)}, []))
    dst = tmp_path / "out.safetensors"
    import safetensors.torch as st

    real = st.save_file

    def save_then_someone_writes(tensors, path, metadata=None):
        real(tensors, path, metadata=metadata)
        dst.write_bytes(b"another run's file")
    monkeypatch.setattr(st, "save_file", save_then_someone_writes)
    with pytest.raises(AnyOutputExists, match="not overwriting"):
        checkpoint.convert_checkpoint(src, dst)
    assert dst.read_bytes() == b"another run's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.safetensors", "src.pth"]


# --------------------------------------------------------------------------- item 9: full disk

def test_convert_onto_a_full_disk(take_file, smplx_root, small_disk):
    disk = small_disk("300k")
    res = run_cli(convert_args(take_file, smplx_root, disk / "x.blend"))
    line = assert_one_line_error(res, "could not write", "x.blend", "disk is full")
    assert "internal error" not in line and "Error: No space" not in res.stdout + res.stderr
    assert snapshot(disk) == {}


def test_convert_past_the_file_size_limit(take_file, smplx_root, tmp_path):
    """Without root: RLIMIT_FSIZE makes Blender's write fail with EFBIG."""
    out = tmp_path / "x.blend"
    res = run_cli_fsize(convert_args(take_file, smplx_root, out), 200_000, cwd=tmp_path)
    assert_one_line_error(res, "could not write", "x.blend", "file too large")
    assert "Error:" not in res.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("preset,suffix", [("unity", ".fbx"), ("gltf", ".glb")])
def test_export_onto_a_full_disk(blend_file, small_disk, preset, suffix):
    disk = small_disk("100k")
    out = disk / f"x{suffix}"
    res = run_cli(["export", str(blend_file), "--preset", preset, "-o", str(out)])
    assert_one_line_error(res, "could not write", out.name, "disk is full")
    assert "Traceback" not in res.stdout and "encode_bin" not in res.stdout + res.stderr
    assert snapshot(disk) == {}


def test_take_onto_a_full_disk_is_one_error_and_no_zipfile_noise(small_disk, capfd):
    disk = small_disk("16k")
    with pytest.raises(OutputWriteError) as info:
        write_take(disk / "x.take.npz", take_arrays(T=300))
    gc.collect()
    assert str(info.value) == f"could not write {disk / 'x.take.npz'}: the disk is full " \
                              "(No space left on device)"
    assert isinstance(info.value, P2PError)
    out, err = capfd.readouterr()
    assert "Exception ignored" not in err + out and err == ""
    assert snapshot(disk) == {}


def test_weights_convert_onto_full_and_read_only_disks(tmp_path, small_disk, monkeypatch,
                                                       capsys):
    import torch

    from pose2pose_mocap import cli
    from pose2pose_mocap.estimator.pose2pose import checkpoint

    src = tmp_path / "src.pth"
    src.write_bytes(b"x")
    monkeypatch.setattr(checkpoint, "read_state_dict",
                        lambda path: ({"w": torch.zeros(200_000)}, []))  # 800 kB
    full, ro = small_disk("64k"), small_disk("64k", ro=True)
    for disk, cause in ((full, "disk is full"), (ro, "read-only file system")):
        code = cli.main(["weights", "convert", str(src), str(disk / "w.safetensors")])
        err = capsys.readouterr().err
        assert code == 1, err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and "internal error" not in err, err
        assert "w.safetensors" in lines[0] and cause in lines[0].lower(), lines[0]
        assert snapshot(disk) == {}


def test_read_only_folder_convert_and_export(take_file, smplx_root, blend_file, small_disk):
    ro = small_disk("1m", ro=True)
    res = run_cli(convert_args(take_file, smplx_root, ro / "x.blend"))
    assert_one_line_error(res, str(ro))
    res = run_cli(["export", str(blend_file), "--preset", "bvh", "-o", str(ro / "x.bvh")])
    assert_one_line_error(res, str(ro))
    assert snapshot(ro) == {}


# --------------------------------------------------------------------------- item 16: stale temps

def _plant(folder: Path, stem_target: Path):
    """Our temporaries of a dead writer (Blender's ``@`` one too) and the user's look-alikes."""
    dead = dead_pid()
    ours = [our_temp(stem_target, dead), our_temp(stem_target, dead, "@")]
    users = [folder / f".{stem_target.stem}.123.part{stem_target.suffix}@",   # old-style name
             folder / ".notes.part", folder / f".{stem_target.name}.p2p-backup",
             our_temp(stem_target, os.getpid())]                               # a live writer
    for p in users:
        p.write_bytes(b"the user's")
    return ours, users


def test_convert_removes_our_stale_temps_and_only_those(take_file, smplx_root, tmp_path):
    out = tmp_path / "clip.blend"
    ours, users = _plant(tmp_path, out)
    before = {p.name: p.read_bytes() for p in users}
    res = run_cli(convert_args(take_file, smplx_root, out))
    assert res.rc == 0, res.stderr
    assert out.is_file() and not any(p.exists() for p in ours)
    assert {p.name: p.read_bytes() for p in users} == before


def test_export_and_estimate_writers_remove_our_stale_temps(blend_file, tmp_path):
    from pose2pose_mocap.estimator.pipeline import OutputPlan, write_take_file

    out = tmp_path / "clip.bvh"
    ours, users = _plant(tmp_path, out)
    res = run_cli(["export", str(blend_file), "--preset", "bvh", "-o", str(out)])
    assert res.rc == 0, res.stderr
    assert out.is_file() and not any(p.exists() for p in ours)
    assert all(p.exists() for p in users)

    takes = tmp_path / "takes"
    takes.mkdir()
    ours, users = _plant(takes, takes / "clip.take.npz")
    path = write_take_file(OutputPlan(takes, "clip.take.npz", False, False), None,
                           take_arrays(T=3))
    assert path == takes / "clip.take.npz" and not any(p.exists() for p in ours)
    assert all(p.exists() for p in users)


@pytest.mark.slow
@pytest.mark.torch
def test_estimate_onto_a_full_disk(tmp_path, small_disk, standin_root):
    """The take does not fit: one error line (no "Exception ignored in ZipFile.__del__")."""
    from ..estimator.media import write_video

    clip = write_video(tmp_path / "clip.avi", 30, "MJPG", size=(160, 120))
    disk = small_disk("8k")
    res = run_cli(["estimate", str(clip), "-o", str(disk / "clip.take.npz"), "--smplx",
                   str(standin_root), "--checkpoint", str(standin_root / "pose2pose"),
                   "--detector", "none"])
    assert res.rc == 1, res.stderr
    assert "Traceback" not in res.stderr and "Exception ignored" not in res.stderr
    errors = [ln for ln in res.stderr_lines() if "error" in ln.lower()]
    assert errors == [f"p2p-mocap: error: could not write {disk / 'clip.take.npz'}: the disk is "
                      "full (No space left on device)"], res.stderr
    assert snapshot(disk) == {}
