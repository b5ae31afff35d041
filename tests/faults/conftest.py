"""Fault-matrix helpers: run the real CLI in a subprocess and check the promise
"one clear line on stderr, a non-zero exit, nothing left or replaced"."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Runs the CLI and reports its own peak RSS: VmHWM of /proc/self/status where there is
# one (ru_maxrss keeps the parent's peak across fork+exec on Linux: a child of a pytest
# process that has imported bpy would report the parent's ~400 MiB), else ru_maxrss (KiB).
_RUNNER = r"""
import resource, runpy, sys, os
sys.argv = ["p2p-mocap"] + sys.argv[1:]
code = 0
try:
    from pose2pose_mocap.cli import main
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
finally:
    sys.stdout.flush(); sys.stderr.flush()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        with open("/proc/self/status") as fh:
            peak = next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError, IndexError):
        pass
    with open(os.environ["P2P_FAULTS_RSS_FILE"], "w") as fh:
        fh.write(str(peak))
os._exit(code or 0)
"""


@dataclass
class CliResult:
    rc: int
    stdout: str
    stderr: str
    peak_rss_mib: float

    def stderr_lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.strip()]


def run_cli(args, *, cwd=None, env=None, timeout=600, stdin=subprocess.DEVNULL) -> CliResult:
    """``p2p-mocap ARGS`` in a fresh interpreter; returns exit code, output and peak RSS."""
    import tempfile

    fd, rss_file = tempfile.mkstemp(prefix="p2p_rss_")
    os.close(fd)
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env["P2P_FAULTS_RSS_FILE"] = rss_file
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    try:
        proc = subprocess.run([sys.executable, "-c", _RUNNER, *map(str, args)], cwd=cwd,
                              env=full_env, capture_output=True, text=True, timeout=timeout,
                              stdin=stdin)
        try:
            peak = int(Path(rss_file).read_text() or 0) / 1024
        except (OSError, ValueError):
            peak = float("nan")
        return CliResult(proc.returncode, proc.stdout, proc.stderr, peak)
    finally:
        os.unlink(rss_file)


def assert_one_line_error(res: CliResult, *must_contain: str) -> str:
    """Non-zero exit, exactly one non-empty stderr line, no traceback; returns the line."""
    assert res.rc != 0, f"exit 0 for bad input; stdout={res.stdout!r} stderr={res.stderr!r}"
    lines = res.stderr_lines()
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout, res.stderr
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{res.stderr}"
    for text in must_contain:
        assert text.lower() in lines[0].lower(), lines[0]
    return lines[0]


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """{relative path: (size, mtime_ns)} of every file below ``folder`` (hidden ones too)."""
    out = {}
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file() or p.is_symlink():
            st = p.lstat()
            out[str(p.relative_to(folder))] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def pwn_marker(tmp_path) -> Path:
    """A path that a code-running pickle in a hostile test file would create."""
    return tmp_path / "PWNED"


def batch_footage(tmp_path: Path, clip: str) -> tuple[Path, Path]:
    """A batch input folder (``a/CLIP.mp4``, 3 frames, and a 2-image ``seq/``) and an
    output folder with an ``a/`` in it: ``(src, out)``."""
    import cv2

    from ..estimator.media import frame, write_video

    src, out = tmp_path / "in", tmp_path / "out"
    (src / "a").mkdir(parents=True)
    write_video(src / "a" / clip, n=3, size=(160, 120))
    (src / "seq").mkdir()
    for i in range(2):
        cv2.imwrite(str(src / "seq" / f"img{i}.png"), cv2.resize(frame(i), (160, 120)))
    (out / "a").mkdir(parents=True)
    return src, out
