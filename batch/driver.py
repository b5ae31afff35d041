# SPDX-License-Identifier: GPL-3.0-or-later
"""The batch loop: clips -> runner tasks, the manifest, the live display, the summary.

For each clip the driver decides from the manifest what is left to do
(``jobs.stages_to_run``), queues it, hands estimation and convert/export tasks
to the runner (``local.LocalRunner`` or ``ray_runner.RayRunner``) as slots
free up (a clip's convert/export starts as soon as its estimation is done,
while other clips are estimated), and writes one manifest record per state
change. A failed task marks its clip ``failed`` with the message and the batch
goes on.
"""
from __future__ import annotations

import os
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from .jobs import Clip, Settings, clip_hash, file_record, replaceable_outputs, stages_to_run
from .manifest import Manifest


@dataclass
class ClipRun:
    clip: Clip
    stages: list = field(default_factory=list)
    state: str = "queued"         # queued, estimating, converting, done, failed, skipped
    outputs: dict = field(default_factory=dict)
    frames: int | None = None
    frames_estimated: int = 0     # in this run
    estimate_s: float = 0.0
    retarget_s: float = 0.0
    people: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    error: str = ""
    progress: tuple = (0, 0)
    replace: list = field(default_factory=list)   # outputs of its own the batch may replace
    standin: bool = False         # estimated with STAND-IN model files (meaningless motion)


@dataclass
class BatchSummary:
    runs: list
    seconds: float
    interrupted: bool = False

    def count(self, state: str) -> int:
        return sum(1 for r in self.runs if r.state == state)

    @property
    def failed(self) -> list:
        return [r for r in self.runs if r.state == "failed"]

    @property
    def frames_estimated(self) -> int:
        return sum(r.frames_estimated for r in self.runs)

    @property
    def estimate_seconds(self) -> float:
        return sum(r.estimate_s for r in self.runs)


class Display:
    """Progress across clips: a status line on a terminal, plain lines otherwise."""

    def __init__(self, runs, stream=None, interval: float = 10.0):
        self.runs = runs
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval
        self._last = time.monotonic()
        self._open = False
        self.t0 = time.monotonic()

    def _status(self) -> str:
        n = len(self.runs)
        fin = sum(1 for r in self.runs if r.state in ("done", "skipped", "failed"))
        failed = sum(1 for r in self.runs if r.state == "failed")
        busy = []
        for r in self.runs:
            if r.state == "estimating":
                d, t = r.progress
                busy.append(f"{r.clip.rel} {d}/{t}" if t else f"{r.clip.rel} (loading)")
            elif r.state == "converting":
                busy.append(f"{r.clip.rel} (blend)")
        frames = sum(r.frames_estimated + (r.progress[0] if r.state == "estimating" else 0)
                     for r in self.runs)
        el = time.monotonic() - self.t0
        text = (f"[{fin}/{n} clips, {failed} failed] {frames} frames, "
                f"{frames / el if el > 0 else 0:.2f} frames/s, {el:.0f} s")
        return text + (" | " + ", ".join(busy) if busy else "")

    def line(self, text: str) -> None:
        self._clear()
        self.stream.write(text + "\n")
        self.stream.flush()

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + self._status()[:200] + "\x1b[K")
            self.stream.flush()
            self._open = True
        elif force or now - self._last >= self.interval:
            self.line("batch: " + self._status())
            self._last = now

    def _clear(self) -> None:
        if self._open:
            self.stream.write("\r\x1b[K")
            self._open = False

    def close(self) -> None:
        self._clear()
        self.stream.flush()


def _abs(out_root: Path, files) -> list[str]:
    return [str(out_root / f["path"]) for f in files or []]


def run_batch_loop(clips: list[Clip], settings: Settings, out_root, make_runner, *,
                   manifest: Manifest, stream=None, poll: float = 0.2) -> BatchSummary:
    """Run every clip that is not up to date; return the summary (the runner is closed)."""
    out_root = Path(out_root)
    t0 = time.monotonic()
    history = manifest.records()
    latest = manifest.latest()
    runs = [ClipRun(c) for c in clips]
    display = Display(runs, stream)
    pend_est, pend_ret = deque(), deque()
    hashes = settings.hashes

    for r in runs:
        c = r.clip
        try:
            c.input_hash = clip_hash(c)
        except OSError as exc:
            r.state, r.error = "failed", f"cannot read the input: {exc.strerror or exc}"
            manifest.append(c.rel, "failed", error=r.error, hashes=hashes)
            continue
        last = latest.get(c.rel)
        r.stages = stages_to_run(c, settings, last, out_root)
        if last and last.get("input_hash") == c.input_hash:
            r.frames = last.get("frames")
            r.people = last.get("people") or []
        if not r.stages:
            r.state, r.outputs = "skipped", last.get("outputs") or {}
            manifest.append(c.rel, "skipped", input_hash=c.input_hash, hashes=hashes,
                            frames=r.frames, reason="outputs up to date")
            continue
        # Only files this output folder's manifest says the batch wrote may be replaced.
        r.replace = replaceable_outputs(c, history, out_root)
        manifest.append(c.rel, "queued", input_hash=c.input_hash, hashes=hashes,
                        stages=r.stages)
        if "estimate" in r.stages:
            pend_est.append(r)
        else:
            have = last.get("outputs") or {}
            r.outputs = {"takes": have.get("takes", [])}
            if r.stages == ["export"]:
                r.outputs["blends"] = have.get("blends", [])
                r.outputs["reports"] = have.get("reports", [])
            pend_ret.append(r)

    todo = len(pend_est) + len(pend_ret)
    skipped = sum(1 for r in runs if r.state == "skipped")
    display.line(f"batch: {len(runs)} clip(s): {todo} to run, {skipped} up to date"
                 f"{', ' + str(sum(1 for r in runs if r.state == 'failed')) + ' unreadable' if any(r.state == 'failed' for r in runs) else ''}")
    if not todo:
        return BatchSummary(runs, time.monotonic() - t0)

    try:
        runner = make_runner()
    except Exception as exc:  # noqa: BLE001 - e.g. no Ray cluster at that address
        text = " ".join(str(exc).split()) or exc.__class__.__name__
        raise RuntimeError(f"cannot start the workers: {text}") from None
    display.line(f"batch: {runner.description}")
    inflight: dict = {}   # handle -> (what, ClipRun)
    interrupted = False

    def fail(r: ClipRun, error: str) -> None:
        r.state, r.error = "failed", error
        manifest.append(r.clip.rel, "failed", input_hash=r.clip.input_hash, hashes=hashes,
                        error=error, frames=r.frames)
        display.line(f"failed   {r.clip.rel}: {error}")

    def start_retarget(r: ClipRun) -> None:
        stages = [s for s in r.stages if s in ("convert", "export")]
        spec = {"clip": r.clip.rel, "takes": _abs(out_root, r.outputs.get("takes")),
                "smplx": settings.smplx, "convert": settings.convert,
                "export": settings.export, "stages": stages, "replace": r.replace}
        t_ns = time.time_ns()  # files of this clip written after this may be replaced on a re-run
        h = runner.submit("retarget", spec)
        inflight[h] = ("retarget", r)
        r.state = "converting"
        keep = {"takes": r.outputs.get("takes", [])}
        if "convert" not in stages:
            keep["blends"] = r.outputs.get("blends", [])
            keep["reports"] = r.outputs.get("reports", [])
        manifest.append(r.clip.rel, "running", stage="retarget", input_hash=r.clip.input_hash,
                        hashes=hashes, outputs=keep, frames=r.frames, people=r.people, t_ns=t_ns)

    def start_estimate(r: ClipRun) -> None:
        r.clip.out_dir.mkdir(parents=True, exist_ok=True)
        spec = {"clip": r.clip.rel, "input": str(r.clip.path), "take": str(r.clip.take_path),
                "estimate": settings.estimate, "replace": r.replace}
        t_ns = time.time_ns()
        h = runner.submit("estimate", spec)
        inflight[h] = ("estimate", r)
        r.state = "estimating"
        manifest.append(r.clip.rel, "running", stage="estimate", input_hash=r.clip.input_hash,
                        hashes=hashes, t_ns=t_ns)

    try:
        while pend_est or pend_ret or inflight:
            while pend_ret and runner.free("retarget") > 0:
                start_retarget(pend_ret.popleft())
            while pend_est and runner.free("estimate") > 0:
                start_estimate(pend_est.popleft())
            for h, res in runner.wait(list(inflight), poll):
                what, r = inflight.pop(h)
                if not res.get("ok"):
                    fail(r, res.get("error") or "unknown error")
                    continue
                r.notes += [n for n in res.get("notes", []) if n not in r.notes]
                if what == "estimate":
                    r.frames = res["frames"]
                    r.frames_estimated = res["frames"]
                    r.estimate_s = float(res.get("estimate_s") or 0.0)
                    r.people = res.get("people", [])
                    r.standin = bool(res.get("standin"))
                    r.outputs = {"takes": [file_record(p, out_root) for p in res["takes"]]}
                    r.progress = (res["frames"], res.get("frames_total", res["frames"]))
                    pend_ret.appendleft(r)
                    r.state = "queued"
                else:
                    r.retarget_s = float(res.get("retarget_s") or 0.0)
                    if "convert" in r.stages:
                        r.outputs["blends"] = [file_record(p, out_root) for p in res["blends"]]
                        r.outputs["reports"] = [file_record(p, out_root)
                                                for p in res.get("reports", [])]
                    r.outputs["exports"] = [file_record(p, out_root) for p in res["exports"]]
                    r.state = "done"
                    manifest.append(r.clip.rel, "done", input_hash=r.clip.input_hash,
                                    hashes=hashes, outputs=r.outputs, frames=r.frames,
                                    people=r.people, estimate_s=r.estimate_s or None,
                                    retarget_s=r.retarget_s, notes=r.notes or None,
                                    stages=r.stages, standin=r.standin or None)
                    rate = (f", {r.frames_estimated / r.estimate_s:.2f} frames/s"
                            if r.estimate_s > 0 else "")
                    what_ran = _stages_text(r)
                    display.line(f"done     {r.clip.rel}: {r.frames} frames{rate} ({what_ran})")
            for ev in runner.progress():
                for r in runs:
                    if r.clip.rel == ev.get("clip") and r.state == "estimating":
                        r.progress = (ev.get("done", 0), ev.get("total", 0))
            display.tick()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        runner.close(kill=interrupted)
        display.close()
    return BatchSummary(runs, time.monotonic() - t0, interrupted)


def _stages_text(r: ClipRun) -> str:
    return "+".join(s for s in r.stages if s != "export" or r.outputs.get("exports"))


def format_summary(s: BatchSummary) -> str:
    rows = [("clip", "state", "frames", "frames/s", "seconds", "reason / outputs")]
    for r in s.runs:
        fps = f"{r.frames_estimated / r.estimate_s:.2f}" if r.estimate_s > 0 else "-"
        secs = f"{r.estimate_s + r.retarget_s:.1f}" if r.state == "done" else "-"
        if r.state == "failed":
            why = r.error
        elif r.state == "skipped":
            why = "up to date"
        elif r.state == "done":
            why = f"{_stages_text(r)}: " + ", ".join(
                Path(f["path"]).name for k in ("takes", "blends", "exports")
                for f in r.outputs.get(k, []))
        else:
            why = "not finished (re-run to finish)"
        rows.append((r.clip.rel, r.state, "-" if r.frames is None else str(r.frames), fps,
                     secs, why))
    w = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(row[i].ljust(w[i]) if i in (0, 1) else row[i].rjust(w[i])
                       for i in range(5)) + "  " + row[5] for row in rows]
    lines.insert(1, "-" * min(120, sum(w) + 10 + len(rows[0][5])))
    n = len(s.runs)
    est = s.estimate_seconds
    rate = f"{s.frames_estimated / est:.2f} frames/s" if est > 0 else "- frames/s"
    finished = s.count("done")
    per_min = f"{finished / (s.seconds / 60):.2f} clips/min" if s.seconds > 0 and finished \
        else "- clips/min"
    lines.append("")
    lines.append(f"{n} clip(s): {finished} done, {s.count('skipped')} up to date, "
                 f"{len(s.failed)} failed"
                 + (f", {n - finished - s.count('skipped') - len(s.failed)} not finished"
                    if s.interrupted else ""))
    lines.append(f"{s.frames_estimated} frames estimated in {est:.1f} s of estimation ({rate}); "
                 f"wall {s.seconds:.1f} s, {per_min}")
    for r in s.failed:
        lines.append(f"FAILED {r.clip.rel}: {r.error}")
    standin = [r.clip.rel for r in s.runs if r.standin]
    if standin:
        lines.append(f"STAND-IN model files were used for {len(standin)} clip(s): their motion "
                     "is meaningless (for trying the pipeline only; see p2p-mocap doctor)")
    return "\n".join(lines)
