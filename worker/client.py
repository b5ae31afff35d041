# SPDX-License-Identifier: GPL-3.0-or-later
"""The client half of the worker protocol (``worker.server``): bpy-free, torch-free.

``WorkerProcess`` starts a worker and reads its JSON lines on a thread;
``run_worker_request`` is one request/one reply with a fresh worker (doctor,
smooth); ``worker_command`` is how a worker is started from this package's
folder; ``crash_summary`` is the telling line of a crashed worker's log. The
add-on's step objects (``addon.jobs.EstimateSteps``) are built on these.
"""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

EOF = object()      # put in WorkerProcess.lines when the worker's stdout ends
# The worker's entry, run as a script (it loads its own package; see worker/__main__.py).
WORKER_SCRIPT = Path(__file__).resolve().parent / "__main__.py"


def _tail(path, n: int = 40) -> list[str]:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []
    return [ln for ln in lines if ln.strip()][-n:]


def crash_summary(log_path) -> str:
    """The most telling line of a log that ends in a crash (the exception line)."""
    lines = _tail(log_path)
    for ln in reversed(lines):
        s = ln.strip()
        if s and not s.startswith(("File ", "Traceback", "^", "~")) and ("Error" in s or
                                                                         "error" in s or
                                                                         "Exception" in s):
            return s[:200]
    return lines[-1].strip()[:200] if lines else ""


class WorkerProcess:
    """A worker subprocess: JSON lines to its stdin, JSON lines read from its stdout by a
    thread into a queue; stderr goes to the log file."""

    def __init__(self, command: list[str], log_path: Path, env: dict | None = None):
        self.command = [str(c) for c in command]
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.lines: queue.Queue = queue.Queue()
        self._log = open(self.log_path, "ab")
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env["PYTHONUNBUFFERED"] = "1"
        full_env["P2P_MOCAP_WORKER_LOG"] = str(self.log_path)
        kw = {}
        if sys.platform == "win32":
            kw["creationflags"] = getattr(subprocess, "CREATE_NO_WINDOW", 0)
        try:
            self.proc = subprocess.Popen(
                self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                env=full_env, **kw)
        except OSError:
            self._log.close()
            raise
        self._reader = threading.Thread(target=self._read, daemon=True, name="p2p-worker-out")
        self._reader.start()

    def _read(self) -> None:
        try:
            for raw in self.proc.stdout:
                self.lines.put(raw.decode("utf-8", "replace").rstrip("\r\n"))
        except (OSError, ValueError):
            pass
        self.lines.put(EOF)

    def send(self, obj: dict) -> bool:
        try:
            self.proc.stdin.write((json.dumps(obj) + "\n").encode())
            self.proc.stdin.flush()
            return True
        except (OSError, ValueError):
            return False

    def close(self, timeout: float = 5.0) -> int | None:
        """Ask it to quit (end of input), wait a little, then kill it."""
        try:
            self.proc.stdin.close()
        except (OSError, ValueError):
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        try:
            self._log.close()
        except OSError:
            pass
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.close(timeout=5)


def worker_command(python: str, log_path) -> list[str]:
    """How to start the worker with the interpreter ``python`` (which needs torch): this
    package's ``worker/__main__.py`` run as a script. The script loads its own package,
    so no PYTHONPATH is needed and the package may be installed under any name."""
    return [str(python), str(WORKER_SCRIPT), "--log", str(log_path)]


def new_log_path(kind: str = "worker") -> Path:
    """A fresh log file in the user data folder's ``logs/`` (callers with a folder of
    their own, like the add-on, pass theirs)."""
    from ..weights.locations import user_data_dir

    logs = user_data_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, n = logs / f"{kind}-{stamp}.log", 2
    while path.exists():
        path, n = logs / f"{kind}-{stamp}-{n}.log", n + 1
    return path


def run_worker_request(python: str, request: dict, reply_event: str, *, timeout: float = 120.0,
                       log_path=None, command=None) -> dict:
    """One request/one reply with a fresh worker (doctor, smooth). Raises RuntimeError.

    Never waits longer than ``timeout`` seconds for the reply (then the worker is
    killed); a worker that ends, or writes anything but protocol events, fails at once.
    """
    if log_path is None:
        log_path = new_log_path("worker")
    w = WorkerProcess(command or worker_command(python, log_path), Path(log_path))
    try:
        w.send(request)
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            try:
                line = w.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is EOF:
                raise RuntimeError(f"the worker stopped unexpectedly: {crash_summary(log_path)} "
                                   f"(log: {log_path})")
            try:
                msg = json.loads(line)
                if not isinstance(msg, dict):
                    raise ValueError
            except (ValueError, RecursionError):
                raise RuntimeError(f"the worker wrote {line[:80]!r} (log: {log_path})") from None
            if msg.get("event") == "error":
                raise RuntimeError(f"{msg.get('message')} (log: {log_path})")
            if msg.get("event") == reply_event:
                return msg
        raise RuntimeError(f"no answer from the worker within {timeout:.0f} s (log: {log_path})")
    finally:
        w.kill()
