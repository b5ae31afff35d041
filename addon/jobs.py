# SPDX-License-Identifier: GPL-3.0-or-later
"""Step objects for long work: the modal operators call ``poll()`` on a timer; tests
(background mode, where timers never fire) call it in a loop.

``EstimateSteps`` talks to the estimator worker process (``estimator/worker.py``,
JSON lines; see its docstring). ``CommandSteps`` runs a list of commands one
after the other (creating the runtime venv). Neither imports torch; only
``on_takes`` (given by the caller) touches bpy, and only from ``poll()``.
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

_EOF = object()
STARTUP_TIMEOUT_S = 300.0   # first torch import on a cold disk can be slow
# A running worker reports at least once per batch (and per loading stage); this long
# without a word while running means it hangs: it is killed and the estimate fails.
STALL_TIMEOUT_S = 1800.0


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
        self.lines.put(_EOF)

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
    """How the add-on starts the worker: the script, run by the runtime interpreter. The
    script loads its own package (see estimator/worker.py), so no PYTHONPATH is needed."""
    from .paths import WORKER_SCRIPT

    return [python, str(WORKER_SCRIPT), "--log", str(log_path)]


class EstimateSteps:
    """One estimate in the worker; ``poll()`` advances it without blocking.

    request: the worker's ``estimate`` request (without ``cmd``). python: the runtime
    interpreter; command: a full command instead (tests use fakes). on_takes(paths,
    cancelled) is called from ``poll()`` when the worker wrote takes (the operator
    imports them there); what it returns lands in ``imported``.

    state: starting -> running -> (cancelling) -> finished | cancelled | error.
    """

    ACTIVE: "EstimateSteps | None" = None   # the job the sidebar shows (one at a time)

    def __init__(self, request: dict, *, python: str | None = None, command=None,
                 log_path=None, on_takes=None, env: dict | None = None,
                 startup_timeout: float = STARTUP_TIMEOUT_S,
                 stall_timeout: float = STALL_TIMEOUT_S):
        if log_path is None:
            from .paths import new_log_path

            log_path = new_log_path("estimate")
        self.log_path = Path(log_path)
        if command is None:
            if not python:
                raise ValueError("no runtime interpreter with torch is set up: set one in the "
                                 "add-on preferences, or press Install Runtime")
            command = worker_command(python, self.log_path)
        self.command = list(command)
        self.request = dict(request, cmd="estimate")
        self.on_takes = on_takes
        self.env = env
        self.startup_timeout = startup_timeout
        self.stall_timeout = stall_timeout
        self.state = "starting"
        self.stage = ""
        self.done = 0
        self.total = 0
        self.fps = 0.0
        self.eta_s = None
        self.people = 0
        self.takes: list[str] = []
        self.result: dict = {}
        self.warnings: list[str] = []
        self.error = ""
        self.imported = None
        self.cancel_requested = False
        self.worker: WorkerProcess | None = None
        self._t0 = time.monotonic()
        self._last_heard = self._t0
        self._ready = False

    # -- control ---------------------------------------------------------------------------
    def start(self) -> "EstimateSteps":
        if self.worker is None and self.state == "starting":
            try:
                self.worker = WorkerProcess(self.command, self.log_path, self.env)
            except OSError as exc:
                self._fail(f"could not start the worker ({self.command[0]}): {exc.strerror or exc}")
                return self
            self.worker.send(self.request)
            self.state = "running"
            EstimateSteps.ACTIVE = self
        return self

    def cancel(self) -> None:
        """Stop after the current batch; the frames done are still written and imported."""
        if self.finished:
            return
        self.cancel_requested = True
        if self.worker is None:
            self.state = "cancelled"
            return
        self.state = "cancelling"
        self.worker.send({"cmd": "cancel"})

    def kill(self) -> None:
        """Stop now (Blender quitting, add-on disabled): nothing is imported."""
        if self.worker is not None:
            self.worker.kill()
        if not self.finished:
            self.state = "cancelled"
            self.error = "stopped"
        self._release()

    @property
    def finished(self) -> bool:
        return self.state in ("finished", "cancelled", "error")

    @property
    def fraction(self) -> float:
        if self.stage in ("done", "cancelled") or self.state == "finished":
            return 1.0
        return min(1.0, self.done / self.total) if self.total else 0.0

    @property
    def status_text(self) -> str:
        if self.state == "error":
            return f"Estimate failed: {self.error}"
        if self.state == "starting" or (self.state == "running" and not self._ready):
            return "Starting the estimator…"
        if self.stage == "loading":
            return "Loading the network…"
        if self.stage == "estimating":
            eta = "" if self.eta_s is None else f", {_eta(self.eta_s)} left"
            stop = " (stopping after this batch)" if self.cancel_requested else ""
            return f"Estimating {self.done}/{self.total} frames, {self.fps:.1f} frames/s{eta}{stop}"
        if self.stage == "writing":
            return "Writing the take…"
        if self.state == "finished":
            return f"Done: {len(self.takes)} take(s)"
        if self.state == "cancelled":
            return "Cancelled" + (f", kept {self.done} frames" if self.takes else "")
        return self.stage or self.state

    # -- stepping --------------------------------------------------------------------------
    def poll(self) -> bool:
        """Handle everything the worker said since the last call; True while still running."""
        if self.state == "starting":
            self.start()
        if self.finished or self.worker is None:
            return not self.finished
        while True:
            try:
                line = self.worker.lines.get_nowait()
            except queue.Empty:
                break
            if line is _EOF:
                self._worker_ended()
                break
            self._last_heard = time.monotonic()
            if not line.strip():
                continue
            try:
                msg = json.loads(line)
                if not isinstance(msg, dict) or "event" not in msg:
                    raise ValueError
            except (ValueError, RecursionError):
                self._fail(f"the worker wrote something that is not part of its protocol: "
                           f"{line[:80]!r}", kill=True)
                break
            try:
                self._handle(msg)
            except (TypeError, ValueError, OverflowError):
                self._fail(f"the worker wrote an event with bad fields: {line[:80]!r}",
                           kill=True)
                break
            if self.finished:
                break
        now = time.monotonic()
        if not self.finished and not self._ready and now - self._t0 > self.startup_timeout:
            self._fail(f"the worker did not start within {self.startup_timeout:.0f} s", kill=True)
        elif not self.finished and self._ready and now - self._last_heard > self.stall_timeout:
            self._fail(f"no word from the worker for {self.stall_timeout:.0f} s: it seems to "
                       "hang, so it was stopped", kill=True)
        return not self.finished

    def run(self, interval: float = 0.05, timeout: float | None = None) -> "EstimateSteps":
        """Poll until finished (scripts, background mode, tests)."""
        t0 = time.monotonic()
        while self.poll():
            if timeout is not None and time.monotonic() - t0 > timeout:
                self.kill()
                self._fail(f"timed out after {timeout:.0f} s")
                break
            time.sleep(interval)
        return self

    def _handle(self, msg: dict) -> None:
        ev = msg["event"]
        if ev == "ready":
            self._ready = True
        elif ev == "start":
            self._ready = True
            self.total = int(msg.get("total") or 0)
        elif ev == "progress":
            self._ready = True
            self.stage = str(msg.get("stage", ""))
            self.done = int(msg.get("done") or 0)
            self.total = int(msg.get("total") or self.total)
            if self.stage == "estimating":
                self.fps = float(msg.get("fps") or 0.0)
                self.eta_s = msg.get("eta_s")
                self.people = int(msg.get("people") or 0)
        elif ev == "warning":
            self.warnings.append(str(msg.get("message", "")))
        elif ev == "error":
            self._fail(str(msg.get("message") or "unknown error"))
        elif ev == "done":
            self.result = msg
            self.takes = [str(p) for p in msg.get("takes", [])]
            cancelled = bool(msg.get("cancelled"))
            self.done = int(msg.get("frames_done") or self.done)
            if self.takes and self.on_takes is not None:
                try:
                    self.imported = self.on_takes(self.takes, cancelled)
                except Exception as exc:  # noqa: BLE001 -- shown to the user, take file kept
                    self._fail(f"the take was written ({self.takes[0]}) but importing it "
                               f"failed: {exc}")
                    return
            self.state = "cancelled" if cancelled else "finished"
            self._release()

    def _worker_ended(self) -> None:
        code = self.worker.close() if self.worker is not None else None
        if self.finished:
            return
        why = crash_summary(self.log_path)
        self._fail(f"the worker stopped unexpectedly (exit code {code})" +
                   (f": {why}" if why else ""))

    def _fail(self, message: str, kill: bool = False) -> None:
        self.error = message
        self.state = "error"
        if kill and self.worker is not None:
            self.worker.kill()
        self._release()

    def _release(self) -> None:
        if self.worker is not None and self.worker.proc.poll() is None:
            threading.Thread(target=self.worker.close, daemon=True).start()
        if EstimateSteps.ACTIVE is self:
            EstimateSteps.ACTIVE = None

    @property
    def error_with_log(self) -> str:
        return f"{self.error} (log: {self.log_path})" if self.error else ""


def _eta(seconds) -> str:
    s = int(round(float(seconds)))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def run_worker_request(python: str, request: dict, reply_event: str, *, timeout: float = 120.0,
                       log_path=None, command=None) -> dict:
    """One request/one reply with a fresh worker (doctor, smooth). Raises RuntimeError.

    Never waits longer than ``timeout`` seconds for the reply (then the worker is
    killed); a worker that ends, or writes anything but protocol events, fails at once.
    """
    if log_path is None:
        from .paths import new_log_path

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
            if line is _EOF:
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


class CommandSteps:
    """Run commands one after the other, output into a log; ``poll()`` never blocks.
    Used for Install Runtime (create a venv, pip install into it)."""

    def __init__(self, commands: list[list[str]], log_path, *, labels=None, env=None):
        self.commands = [[str(c) for c in cmd] for cmd in commands]
        self.labels = list(labels or [" ".join(c[:3]) for c in self.commands])
        self.log_path = Path(log_path)
        self.env = env
        self.index = 0
        self.proc = None
        self.state = "running"
        self.error = ""
        self._log = None

    @property
    def finished(self) -> bool:
        return self.state in ("finished", "cancelled", "error")

    @property
    def fraction(self) -> float:
        return self.index / max(1, len(self.commands)) if not self.finished or \
            self.state != "finished" else 1.0

    @property
    def status_text(self) -> str:
        if self.state == "running" and self.index < len(self.labels):
            return f"{self.labels[self.index]} ({self.index + 1}/{len(self.commands)})"
        return self.state if not self.error else f"{self.state}: {self.error}"

    def poll(self) -> bool:
        if self.finished:
            return False
        if self.proc is None:
            if self.index >= len(self.commands):
                self.state = "finished"
                self._close_log()
                return False
            if self._log is None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                self._log = open(self.log_path, "ab")
            self._log.write(("$ " + " ".join(self.commands[self.index]) + "\n").encode())
            self._log.flush()
            env = dict(os.environ)
            env.update(self.env or {})
            try:
                self.proc = subprocess.Popen(self.commands[self.index], stdout=self._log,
                                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             env=env)
            except OSError as exc:
                self.state, self.error = "error", f"{self.commands[self.index][0]}: {exc}"
                self._close_log()
                return False
            return True
        code = self.proc.poll()
        if code is None:
            return True
        self.proc = None
        if code != 0:
            self.state = "error"
            self.error = (f"'{self.labels[self.index]}' failed (exit code {code}): "
                          f"{crash_summary(self.log_path)} (log: {self.log_path})")
            self._close_log()
            return False
        self.index += 1
        return self.poll()

    def cancel(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if not self.finished:
            self.state = "cancelled"
        self._close_log()

    def run(self, interval: float = 0.05) -> "CommandSteps":
        while self.poll():
            time.sleep(interval)
        return self

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
