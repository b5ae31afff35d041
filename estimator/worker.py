# SPDX-License-Identifier: GPL-3.0-or-later
"""The estimator worker process: JSON lines in on stdin, JSON lines out on stdout.

Blender never imports torch; its add-on starts this process with a Python that
has torch (the "runtime interpreter") and talks to it line by line.

Starting it (both work):

* ``python path/to/pose2pose_mocap/estimator/worker.py [--log FILE]`` -- run as a
  script. The script loads the package it lives in from its own folder
  (``importlib``, under the name ``pose2pose_mocap``), whatever that folder is
  called or wherever it is installed (an extension is imported by Blender as
  ``bl_ext.<repo>.pose2pose_mocap``, a name the worker cannot know). No
  change to the module search path. This is what the add-on runs.
* ``python -m pose2pose_mocap.estimator.worker`` -- when the package is
  importable (pip/editable install, or ``PYTHONPATH`` set to its parent folder).

Requests (one JSON object per line on stdin)::

    {"cmd": "estimate", "inputs": "clip.mp4" | [..images..], "output": "dir/" | "x.take.npz",
     "frames": "A:B:STEP", "person": "auto"|"all"|N, "device": "auto"|"cpu"|"cuda",
     "fov": deg|null, "fps": null, "smplx": path|null, "checkpoint": path|null,
     "detector": "auto"|"none"|path, "batch": null, "box": null}
    {"cmd": "cancel"}        stop the running estimate after the current batch; the frames
                             done are written as a valid (partial) take
    {"cmd": "doctor", "smplx": .., "checkpoint": .., "detector": ..}   full setup check
    {"cmd": "smooth", "params": path.npz, "settings": {Smoothing.to_dict()}, "out": path}
                             smoothed parameter arrays (the .npz holds the take's (T, k)
                             parameter arrays, ``valid`` and ``fps``); scipy lives here,
                             not in Blender
    {"cmd": "quit"}          (end of input does the same; a running estimate is cancelled)

Events (one JSON object per line on stdout; nothing else is ever written there)::

    {"event": "ready", "protocol": 1, "pid": .., "log": path, "python": ..}
    {"event": "start", "total": frames, "source": description}
    {"event": "progress", "stage": .., "done": .., "total": .., "fps": .., "eta_s": ..,
     "people": .., "message": ..}
    {"event": "warning", "message": ..}
    {"event": "done", "takes": [paths], "people": [ids], "cancelled": bool,
     "frames_done": .., "frames_total": .., "standin": bool, "notes": [..], "seconds": ..}
    {"event": "doctor", "report": text, "ready": bool, "standins": bool}
    {"event": "smoothed", "path": ..}
    {"event": "error", "message": one line, "log": path}

Everything else (library chatter, tracebacks) goes to stderr and the log file.
"""
from __future__ import annotations

if __name__ == "__main__" and not __package__:
    # Run as a script: load the package this file belongs to from its own folder.
    import importlib
    import importlib.util
    import sys as _sys
    from pathlib import Path as _Path

    _root = _Path(__file__).resolve().parent.parent
    if "pose2pose_mocap" not in _sys.modules:
        _spec = importlib.util.spec_from_file_location(
            "pose2pose_mocap", _root / "__init__.py", submodule_search_locations=[str(_root)])
        _pkg = importlib.util.module_from_spec(_spec)
        _sys.modules["pose2pose_mocap"] = _pkg
        _spec.loader.exec_module(_pkg)
    _sys.exit(importlib.import_module("pose2pose_mocap.estimator.worker").main())

import argparse
import json
import logging
import math
import os
import queue
import sys
import threading
import time
import traceback
from pathlib import Path

PROTOCOL = 1
log = logging.getLogger("p2p.worker")


def default_log_path() -> Path:
    from ..weights.locations import user_data_dir

    return user_data_dir() / "logs" / "worker.log"


def _clean(v):
    """JSON-safe values: NaN/inf -> None, Paths -> str, numpy scalars -> Python."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if hasattr(v, "item") and callable(v.item):
        try:
            return _clean(v.item())
        except (TypeError, ValueError):
            pass
    return v


class Channel:
    """The protocol's stdout: the original fd 1, kept for JSON lines only."""

    def __init__(self, stream):
        self.stream = stream
        self.lock = threading.Lock()

    def emit(self, event: str, **fields) -> None:
        line = json.dumps({"event": event, **_clean(fields)}, allow_nan=False)
        with self.lock:
            self.stream.write(line + "\n")
            self.stream.flush()


def _take_protocol_stdout():
    """Keep fd 1 for the protocol; everything printed afterwards goes to stderr."""
    try:
        fd = os.dup(1)
        os.dup2(2, 1)
        out = os.fdopen(fd, "w", encoding="utf-8", buffering=1)
    except OSError:  # no real fds (embedded): use sys.stdout as is
        out = sys.stdout
    sys.stdout = sys.stderr
    return out


class Worker:
    def __init__(self, channel: Channel, log_path: Path):
        self.ch = channel
        self.log_path = log_path
        self.requests: queue.Queue = queue.Queue()
        self.job = None
        self.job_lock = threading.Lock()

    # -- input ---------------------------------------------------------------------------------
    def reader(self, stream) -> None:
        for line in stream:
            line = line.strip()
            if not line:
                continue
            try:
                req = json.loads(line)
                if not isinstance(req, dict) or "cmd" not in req:
                    raise ValueError("not an object with 'cmd'")
            except ValueError as exc:
                self.ch.emit("warning", message=f"ignored an unreadable request ({exc})")
                continue
            if req["cmd"] == "cancel":
                self.cancel()
                continue
            self.requests.put(req)
        # End of input: the parent went away or is done.
        self.cancel()
        self.requests.put({"cmd": "quit"})

    def cancel(self) -> None:
        with self.job_lock:
            if self.job is not None:
                log.info("cancel requested")
                self.job.cancel()

    # -- commands ------------------------------------------------------------------------------
    def serve(self) -> int:
        while True:
            req = self.requests.get()
            cmd = req.get("cmd")
            if cmd == "quit":
                return 0
            handler = getattr(self, f"cmd_{cmd}", None)
            if handler is None:
                self.ch.emit("error", message=f"unknown request {cmd!r}", log=self.log_path)
                continue
            log.info("request %s", json.dumps(req))
            try:
                handler(req)
            except Exception as exc:  # noqa: BLE001 -- every failure becomes one readable line
                log.error("request %s failed:\n%s", cmd, traceback.format_exc())
                self.ch.emit("error", message=_one_line(exc), log=self.log_path)

    def cmd_estimate(self, req: dict) -> None:
        from .pipeline import EstimateJob

        kw = {k: req[k] for k in ("frames", "person", "device", "batch", "smplx", "checkpoint",
                                  "fov", "fps", "box", "detect_every", "min_score")
              if req.get(k) not in (None, "")}
        job = EstimateJob(req["inputs"], req.get("output"), detector=req.get("detector", "auto"),
                          force=bool(req.get("force", False)),
                          allow_download=bool(req.get("allow_download", False)), **kw)
        with self.job_lock:
            self.job = job
        try:
            started = False
            for p in job.steps():
                if not started:
                    started = True
                    self.ch.emit("start", total=p.total,
                                 source=getattr(getattr(job, "source", None), "description", ""))
                self.ch.emit("progress", stage=p.stage, done=p.done, total=p.total, fps=p.fps,
                             eta_s=p.eta_s, people=p.people, message=p.message)
        finally:
            with self.job_lock:
                self.job = None
        res = job.result
        for note in res.notes:
            self.ch.emit("warning", message=note)
        if res.standin:
            self.ch.emit("warning", message="STAND-IN model files were used: the motion in the "
                                            "take is meaningless (for tests only)")
        log.info("done: %s (cancelled=%s, %d/%d frames)", [str(p) for p in res.outputs],
                 res.cancelled, res.frames_done, res.frames_total)
        self.ch.emit("done", takes=[str(p) for p in res.outputs], people=list(res.people),
                     cancelled=res.cancelled, frames_done=res.frames_done,
                     frames_total=res.frames_total, standin=res.standin, notes=list(res.notes),
                     seconds=res.seconds, valid_frames={str(k): v for k, v in
                                                        res.valid_frames.items()})

    def cmd_doctor(self, req: dict) -> None:
        from ..doctor import format_report, run_checks

        report = run_checks(smplx=req.get("smplx"), checkpoint=req.get("checkpoint"),
                            detector=req.get("detector"), runtime=True)
        self.ch.emit("doctor", report=format_report(report), ready=report.ready,
                     standins=report.standins)

    def cmd_smooth(self, req: dict) -> None:
        """``params``: an .npz with the take's parameter arrays plus ``valid`` and ``fps``
        (or a take file); writes the smoothed parameter arrays to ``out`` (.npz)."""
        import numpy as np

        from ..retarget.smoothing import Smoothing, smooth_params

        with np.load(req["params"], allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        valid = arrays.pop("valid").astype(bool)
        fps = float(arrays.pop("fps"))
        params = {k: v for k, v in arrays.items() if v.ndim == 2 and len(v) == len(valid)}
        smoothed = smooth_params(params, valid, fps, Smoothing.from_dict(req.get("settings") or {}))
        out = Path(req["out"])
        tmp = out.with_name(out.name + ".tmp.npz")
        np.savez(tmp, **{k: np.asarray(v) for k, v in smoothed.items()})
        os.replace(tmp, out)
        self.ch.emit("smoothed", path=str(out))

    def cmd_ping(self, req: dict) -> None:
        self.ch.emit("pong", time=time.time())


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    msg = text[0] if text else type(exc).__name__
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in msg:
        msg = f"{exc.filename}: {exc.strerror or msg}"
    if type(exc).__name__ in ("KeyError", "TypeError", "AttributeError", "ValueError",
                              "RuntimeError", "ImportError", "ModuleNotFoundError"):
        msg = f"{type(exc).__name__}: {msg}"
    return msg


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="pose2pose_mocap.estimator.worker",
                                     description="estimator worker (JSON lines on stdin/stdout)")
    parser.add_argument("--log", help="log file (default: <user data>/logs/worker.log)")
    args = parser.parse_args(argv)
    out = _take_protocol_stdout()
    channel = Channel(out)
    log_path = Path(args.log or os.environ.get("P2P_MOCAP_WORKER_LOG") or default_log_path())
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_path, encoding="utf-8")
    except OSError:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    log.info("worker started: pid %d, python %s", os.getpid(), sys.executable)
    worker = Worker(channel, log_path)
    try:
        import torch  # noqa: F401 -- fail early, with a clear message, where torch is missing
    except ImportError as exc:
        log.error("torch is not importable: %s", exc)
        channel.emit("error", message=f"this Python ({sys.executable}) cannot import torch "
                                      f"({exc}); choose a runtime interpreter with torch in the "
                                      "add-on preferences, or press Install Runtime",
                     log=log_path)
        return 2
    channel.emit("ready", protocol=PROTOCOL, pid=os.getpid(), log=str(log_path),
                 python=sys.executable)
    threading.Thread(target=worker.reader, args=(sys.stdin,), daemon=True,
                     name="p2p-worker-stdin").start()
    code = worker.serve()
    log.info("worker exits")
    return code


if __name__ == "__main__":
    sys.exit(main())
