# SPDX-License-Identifier: GPL-3.0-or-later
"""Step objects for long work (``modal.Steps``): the modal operators (``modal.StepsOperator``)
call ``poll()`` on a timer; tests (background mode, where timers never fire) call it in a
loop.

``EstimateSteps`` talks to the estimator worker process (``worker.server``, JSON
lines; see its docstring) through its bpy-free client ``worker.client``.
``CommandSteps`` runs a list of commands one after the other (creating the runtime
venv); ``ThreadSteps`` runs a function in a thread (a download). Neither imports torch; only
``on_takes`` (given by the caller) touches bpy, and only from ``poll()``.
"""
from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from pathlib import Path

from ..common.text import format_eta
from ..worker.client import EOF as _EOF
from ..worker.client import WorkerProcess, crash_summary, worker_command
from .state import clear_active_estimate, set_active_estimate

STARTUP_TIMEOUT_S = 300.0   # first torch import on a cold disk can be slow
# A running worker reports at least once per batch (and per loading stage); this long
# without a word while running means it hangs: it is killed and the estimate fails.
STALL_TIMEOUT_S = 1800.0


class EstimateSteps:
    """One estimate in the worker; ``poll()`` advances it without blocking.

    request: the worker's ``estimate`` request (without ``cmd``). python: the runtime
    interpreter; command: a full command instead (tests use fakes). on_takes(paths,
    cancelled) is called from ``poll()`` when the worker wrote takes (the operator
    imports them there); what it returns lands in ``imported``.

    state: starting -> running -> (cancelling) -> finished | cancelled | error.
    """

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
            set_active_estimate(self)   # the job the sidebar shows (one at a time)
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
            eta = "" if self.eta_s is None else f", {format_eta(self.eta_s)} left"
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
        clear_active_estimate(self)

    @property
    def error_with_log(self) -> str:
        return f"{self.error} (log: {self.log_path})" if self.error else ""


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


class ThreadSteps:
    """A function in a thread (a download), polled like the other step objects.

    ``fn(*args, progress=, cancel=, **kw)``: ``progress(done_bytes, total)`` reports,
    ``cancel()`` says whether to stop. What it returns lands in ``result``; what it
    raises, as text, in ``error``. ``label`` starts the status text.
    """

    def __init__(self, fn, *args, label: str = "Downloading", **kw):
        self.label = label
        self.done_bytes, self.total = 0, None
        self.error, self.result, self._stop = "", None, False
        kw["progress"] = self._progress
        kw["cancel"] = lambda: self._stop
        self.thread = threading.Thread(target=self._run, args=(fn, args, kw), daemon=True)
        self.thread.start()

    def _progress(self, done, total):
        self.done_bytes, self.total = done, total

    def _run(self, fn, args, kw):
        try:
            self.result = fn(*args, **kw)
        except Exception as exc:  # noqa: BLE001
            self.error = str(exc)

    def poll(self) -> bool:
        return self.thread.is_alive()

    def cancel(self) -> None:
        self._stop = True

    @property
    def finished(self) -> bool:
        return not self.thread.is_alive()

    @property
    def fraction(self) -> float:
        return self.done_bytes / self.total if self.total else 0.0

    @property
    def status_text(self) -> str:
        return f"{self.label}: {self.done_bytes >> 20} MB"
