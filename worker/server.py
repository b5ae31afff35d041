# SPDX-License-Identifier: GPL-3.0-or-later
"""The estimator worker process: JSON lines in on stdin, JSON lines out on stdout.

Blender never imports torch; its add-on starts this process with a Python that
has torch (the "runtime interpreter") and talks to it line by line (the client
half, bpy-free: ``worker.client``).

Starting it (all of these work):

* ``python path/to/pose2pose_mocap/worker/__main__.py [--log FILE]`` -- run as a
  script. The script loads the package it lives in from its folder's parent
  (``importlib``, under the name ``pose2pose_mocap``), whatever that folder is
  called or wherever it is installed (an extension is imported by Blender as
  ``bl_ext.<repo>.pose2pose_mocap``, a name the worker cannot know). No
  change to the module search path. This is what the add-on runs
  (``worker.client.worker_command``).
* ``python -m pose2pose_mocap.worker`` -- when the package is importable
  (pip/editable install, or ``PYTHONPATH`` set to its parent folder).
* The old entries, kept working: ``python path/to/pose2pose_mocap/estimator/worker.py``
  and ``python -m pose2pose_mocap.estimator.worker`` (a shim that runs this one).

Requests (one JSON object per line on stdin)::

    {"cmd": "estimate", "inputs": "clip.mp4" | [..images..], "output": "dir/" | "x.take.npz",
     "frames": "A:B:STEP", "person": "auto"|"all"|N, "device": "auto"|"cpu"|"cuda",
     "fov": deg|null, "fps": null, "smplx": path|null, "checkpoint": path|null,
     "detector": "auto"|"none"|path, "batch": null, "box": null,
     "estimator": "pose2pose" (a name in estimator.registry.ESTIMATORS; the default)}
    {"cmd": "cancel"}        stop the running estimate after the current batch; the frames
                             done are written as a valid (partial) take
    {"cmd": "doctor", "smplx": .., "checkpoint": .., "detector": ..}   full setup check
    {"cmd": "smooth", "take": path.npz, "settings": {Smoothing.to_dict()}, "out": path.npz}
                             the take file (``p2p-take/2``) smoothed, written as a take
                             file to ``out``; scipy lives here, not in Blender
    {"cmd": "clean", "take": path.npz, "options": {ConvertOptions.to_dict() with "clean"},
     "smplx": path|null, "out": path.npz}
                             the take re-solved from its raw data with the motion clean-up
                             (``cleanup.clean.clean_take``: QA fixes, smoothing, foot
                             locking), written as a take file to ``out``; its QA flags and
                             notes come back in the event
    {"cmd": "import", "path": FILE, "format": "auto"|NAME, "smplx": path|null, "out": path.npz}
                             another tool's result (retarget.importers) as a take file;
                             here because GVHMR's .pt needs torch
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
    {"event": "cleaned", "path": .., "flags": [Flag.to_dict(), ..], "notes": [..]}
    {"event": "imported", "path": .., "estimator": .., "notes": [..]}
    {"event": "error", "message": one line, "log": path}

Everything else (library chatter, tracebacks) goes to stderr and the log file.

Robustness: every line that is not a request this worker understands (not
UTF-8, not JSON, nested too deeply, longer than MAX_REQUEST_BYTES, not an object
with a known ``cmd``, fields of the wrong type or out of range) gets one
``error`` event and the worker goes on reading. End of input (or a failure of
the input stream itself) always ends the worker: a running estimate is
cancelled and its frames done are written. Numbers in requests are checked by
the same validators as the CLI's options (``common.options``).
"""
from __future__ import annotations

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
MAX_REQUEST_BYTES = 16 * 2**20   # one request line (a list of many image paths fits)
COMMANDS = ("estimate", "cancel", "doctor", "smooth", "clean", "import", "ping", "quit")
log = logging.getLogger("p2p.worker")


class RequestError(ValueError):
    """A request that is malformed or out of range; its text is the one-line answer."""


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
        """Read request lines until end of input; then (always) cancel and quit."""
        try:
            for raw in _request_lines(stream):
                if raw is None:
                    self._bad_request(f"request line longer than {MAX_REQUEST_BYTES // 2**20} "
                                      "MiB; ignored")
                    continue
                try:
                    req = parse_request(raw)
                except RequestError as exc:
                    self._bad_request(str(exc))
                    continue
                if req is None:  # blank line
                    continue
                if req["cmd"] == "cancel":
                    self.cancel()
                    continue
                self.requests.put(req)
        except Exception:  # noqa: BLE001 -- the input itself failed: treat it as its end
            log.error("reading requests failed:\n%s", traceback.format_exc())
        finally:
            # End of input: the parent went away or is done.
            self.cancel()
            self.requests.put({"cmd": "quit"})

    def _bad_request(self, message: str) -> None:
        log.warning("bad request: %s", message)
        try:
            self.ch.emit("error", message=message, log=self.log_path)
        except Exception:  # noqa: BLE001 -- stdout gone: nothing to tell
            pass

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
            handler = getattr(self, f"cmd_{cmd}", None) if cmd in COMMANDS else None
            if handler is None:
                self.ch.emit("error", message=f"unknown request {_short_repr(cmd)}",
                             log=self.log_path)
                continue
            log.info("request %s", json.dumps(req)[:4000])
            try:
                handler(req)
            except Exception as exc:  # noqa: BLE001 -- every failure becomes one readable line
                log.error("request %s failed:\n%s", cmd, traceback.format_exc())
                self.ch.emit("error", message=_one_line(exc), log=self.log_path)

    def cmd_estimate(self, req: dict) -> None:
        from ..estimator.pipeline import EstimateJob

        args = estimate_arguments(req)
        job = EstimateJob(args.pop("inputs"), args.pop("output"), **args)
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
        """``take``: a take file (the add-on writes it with ``retarget.take.write_take``);
        its parameters are smoothed (``retarget.smoothing.smooth_take``) and the take is
        written to ``out`` (.npz) the same way.

        The take is read by ``read_take(strict=True)``: every header checked before any
        data is read, nothing unpickled, only a take's arrays, values in range. ``out``
        (the add-on's private temporary file) is written atomically and may be replaced.
        """
        from ..retarget.smoothing import Smoothing, smooth_take
        from ..retarget.take import read_take, write_take

        src, out = _path_field(req, "take"), _path_field(req, "out")
        if out.suffix.lower() != ".npz":
            raise RequestError(f"smooth: out must name an .npz file, got {str(out)!r}"[:300])
        settings = req.get("settings") or {}
        if not isinstance(settings, dict):
            raise RequestError("smooth: settings must be an object")
        smoothing = Smoothing.from_dict(settings)
        take = read_take(src, strict=True)
        written = write_take(out, smooth_take(take, smoothing), overwrite=True)
        self.ch.emit("smoothed", path=str(written))

    def cmd_clean(self, req: dict) -> None:
        """``take``: a take file (read like ``smooth``'s); ``options``: a ``ConvertOptions``
        dict whose ``clean`` is set; ``smplx``: the model flag (the search order finds the
        take's gender; for an SMPL take, the SMPL file or a folder holding ``smpl/``). The cleaned take (it keeps its raw source) is written to ``out``."""
        from ..retarget.options import ConvertOptions
        from ..retarget.resolve import clean_with_model
        from ..retarget.smplx_model import load_body_model
        from ..retarget.take import read_take, write_take
        from ..weights.locations import smpl_model_file, smplx_model_file

        src, out = _path_field(req, "take"), _path_field(req, "out")
        if out.suffix.lower() != ".npz":
            raise RequestError(f"clean: out must name an .npz file, got {str(out)!r}"[:300])
        options, flag = req.get("options"), req.get("smplx")
        if not isinstance(options, dict):
            raise RequestError("clean: options must be an object")
        if flag is not None and not isinstance(flag, str):
            raise RequestError("clean: smplx must be a path or null")
        opts = ConvertOptions.from_dict(options)
        take = read_take(src, strict=True)
        gender = opts.gender or take.gender
        model_file = (smpl_model_file if take.body_model == "smpl" else smplx_model_file)
        model = load_body_model(model_file(flag, gender), take.body_model)
        cleaned, flags, notes = clean_with_model(take, model, opts)
        written = write_take(out, cleaned, overwrite=True)
        self.ch.emit("cleaned", path=str(written), flags=flags, notes=notes)

    def cmd_import(self, req: dict) -> None:
        """``path``: another tool's result (``retarget.importers``: SMPLer-X, GVHMR, .smpl,
        AMASS); its take is written to ``out`` (.npz, the add-on's private file). Here, not
        in Blender, because GVHMR's ``.pt`` needs torch (``weights_only`` loading)."""
        from ..retarget.importers import FORMAT_NAMES, import_with_model
        from ..retarget.take import write_take
        from ..weights.locations import smplx_model_file

        src, out = _path_field(req, "path"), _path_field(req, "out")
        if out.suffix.lower() != ".npz":
            raise RequestError(f"import: out must name an .npz file, got {str(out)!r}"[:300])
        fmt = req.get("format", "auto")
        if fmt not in ("auto",) + tuple(FORMAT_NAMES):
            raise RequestError(f"import: unknown format {_short_repr(fmt)}")
        flag = req.get("smplx")
        if flag is not None and not isinstance(flag, str):
            raise RequestError("import: smplx must be a path or null")
        take = import_with_model(src, fmt, model_file=lambda: smplx_model_file(flag, "neutral"),
                                 model_given=bool(flag))
        written = write_take(out, take, overwrite=True)
        self.ch.emit("imported", path=str(written), estimator=take.estimator,
                     notes=list(take.notes))

    def cmd_ping(self, req: dict) -> None:
        self.ch.emit("pong", time=time.time())


# --------------------------------------------------------------------------- requests

def _request_lines(stream):
    """Request lines as bytes from a binary (or text) stream; ``None`` for a line over
    MAX_REQUEST_BYTES (its rest is skipped without being kept in memory)."""
    binary = getattr(stream, "buffer", stream)
    while True:
        line = binary.readline(MAX_REQUEST_BYTES + 1)
        if not line:
            return
        if isinstance(line, str):
            line = line.encode("utf-8", "surrogateescape")
        if len(line) > MAX_REQUEST_BYTES and not line.endswith(b"\n"):
            while True:  # skip to the end of this line
                rest = binary.readline(1 << 20)
                if not rest or (rest.endswith(b"\n") if isinstance(rest, bytes)
                                else rest.endswith("\n")):
                    break
            yield None
            continue
        yield line


def _short_repr(v, n: int = 80) -> str:
    text = repr(v)
    return text if len(text) <= n else text[: n - 3] + "..."


def parse_request(raw) -> dict | None:
    """One request line (bytes or str) -> the request object; None for a blank line.

    Raises RequestError (one line) for anything that is not a JSON object with a
    known ``cmd``.
    """
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise RequestError("request is not UTF-8 text; ignored") from None
    text = raw.strip()
    if not text:
        return None
    try:
        req = json.loads(text)
    except RecursionError:
        raise RequestError("request nested too deeply; ignored") from None
    except ValueError as exc:
        raise RequestError(f"request is not JSON ({str(exc)[:100]}); ignored") from None
    if not isinstance(req, dict):
        raise RequestError(f"request must be a JSON object, got {type(req).__name__}; ignored")
    cmd = req.get("cmd")
    if not isinstance(cmd, str) or cmd not in COMMANDS:
        raise RequestError(f"unknown request {_short_repr(cmd)} (known: {', '.join(COMMANDS)}); "
                           "ignored")
    return req


def _text_field(req: dict, key: str, *, optional: bool = True) -> str | None:
    v = req.get(key)
    if v is None or v == "":
        if optional:
            return None
        raise RequestError(f"{req.get('cmd')}: {key} is missing")
    if not isinstance(v, str) or len(v) > 32768 or "\x00" in v:
        raise RequestError(f"{req.get('cmd')}: {key} must be text (a path), got "
                           f"{_short_repr(v, 60)}")
    return v


def _path_field(req: dict, key: str) -> Path:
    return Path(_text_field(req, key, optional=False))


def _bool_field(req: dict, key: str) -> bool:
    v = req.get(key, False)
    if v is None:
        return False
    if not isinstance(v, bool):
        raise RequestError(f"{req.get('cmd')}: {key} must be true or false, got "
                           f"{_short_repr(v, 60)}")
    return v


def estimate_arguments(req: dict) -> dict:
    """The ``EstimateJob`` arguments of an ``estimate`` request: ``inputs``, ``output`` and
    ``force``, and ``EstimateOptions.from_dict`` of the option fields (checked as the CLI
    checks its options; other fields are ignored). Raises RequestError (one line)."""
    from ..common.options import OptionError
    from ..estimator.options import EstimateOptions
    from ..estimator.registry import ESTIMATORS

    inputs = req.get("inputs")
    if isinstance(inputs, list):
        if not inputs or len(inputs) > 1_000_000 or not all(
                isinstance(p, str) and p and "\x00" not in p for p in inputs):
            raise RequestError("estimate: inputs must be a path or a non-empty list of paths")
    elif not isinstance(inputs, str) or not inputs or "\x00" in inputs:
        raise RequestError("estimate: inputs must be a path or a non-empty list of paths")
    fields = {k: req[k] for k in EstimateOptions.field_names() if k in req}
    try:
        options = EstimateOptions.from_dict(fields)
    except OptionError as exc:
        raise RequestError(str(exc)) from None
    if options.estimator not in ESTIMATORS:
        raise RequestError(f"estimate: estimator must be one of {', '.join(ESTIMATORS)}, got "
                           f"{_short_repr(options.estimator, 40)}")
    return {"inputs": inputs, "output": _text_field(req, "output"),
            "force": _bool_field(req, "force"), **options.job_arguments()}


def _one_line(exc: BaseException) -> str:
    from ..common.errors import error_line

    text = str(exc).strip().splitlines()
    msg = text[0] if text else type(exc).__name__
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in msg:
        msg = error_line(exc)  # FILE: cause, as the CLI says it
    if type(exc).__name__ in ("KeyError", "TypeError", "AttributeError", "ValueError",
                              "RuntimeError", "ImportError", "ModuleNotFoundError"):
        msg = f"{type(exc).__name__}: {msg}"
    return msg


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="pose2pose_mocap.worker",
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
