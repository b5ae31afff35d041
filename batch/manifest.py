# SPDX-License-Identifier: GPL-3.0-or-later
"""The job manifest: ``OUT/batch.jsonl``, append-only, one JSON object per line.

Every state change of a clip is one record (``queued``, ``running``,
``done``, ``failed``, and ``skipped`` when a re-run finds the clip's outputs
up to date). Each line is written with a single ``write`` on a file opened in
append mode, then flushed and fsynced, so a run killed at any moment leaves
at most one incomplete last line; the reader ignores lines that are not
complete JSON objects. Only the driver writes the manifest.

Record fields: ``v`` (1), ``time`` (UTC ISO), ``run`` (id of the batch run),
``clip`` (path relative to the input folder), ``state``; then as they apply:
``stage`` (``estimate`` / ``retarget`` while running), ``input_hash``,
``hashes`` ({``estimate``, ``convert``, ``export``} settings hashes),
``outputs`` ({``takes``, ``blends``, ``exports``}: lists of
``{"path": relative to OUT, "size", "mtime_ns"}``), ``frames``,
``estimate_s``, ``retarget_s``, ``people``, ``notes``, ``error``; ``t_ns`` (a
``running`` record: ``time.time_ns()`` before the stage started; a file of the
clip's output names modified after it was written by that stage, even if a kill
kept it out of the manifest, see ``jobs.replaceable_outputs``).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

MANIFEST_NAME = "batch.jsonl"
STATES = ("queued", "running", "done", "failed", "skipped")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Manifest:
    """Append records to, and read records from, one ``batch.jsonl``."""

    def __init__(self, path, run_id: str | None = None):
        self.path = Path(path)
        self.run_id = run_id or f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        self._fh = None

    # -- reading ------------------------------------------------------------------------------
    def records(self) -> list[dict]:
        """Every complete record, in file order (a torn last line is skipped)."""
        if not self.path.is_file():
            return []
        out = []
        with open(self.path, "rb") as fh:
            for raw in fh:
                if not raw.endswith(b"\n"):
                    break  # torn by a kill while writing: ignore
                try:
                    rec = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(rec, dict) and "clip" in rec and rec.get("state") in STATES:
                    out.append(rec)
        return out

    def latest(self) -> dict[str, dict]:
        """clip -> its latest record that says something about its outputs.

        ``queued`` and ``skipped`` records change nothing on disk, so they never
        hide the ``done`` (or ``running``) record before them.
        """
        last: dict[str, dict] = {}
        for rec in self.records():
            if rec["state"] in ("queued", "skipped"):
                continue
            last[rec["clip"]] = rec
        return last

    # -- writing ------------------------------------------------------------------------------
    def append(self, clip: str, state: str, **fields) -> dict:
        if state not in STATES:
            raise ValueError(f"unknown manifest state {state!r}")
        rec = {"v": 1, "time": _now(), "run": self.run_id, "clip": clip, "state": state}
        rec.update({k: v for k, v in fields.items() if v is not None})
        line = (json.dumps(rec, sort_keys=False, default=str) + "\n").encode("utf-8")
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # A line torn by an earlier kill must not swallow this record.
            if self.path.is_file() and self.path.stat().st_size:
                with open(self.path, "rb") as fh:
                    fh.seek(-1, os.SEEK_END)
                    torn = fh.read(1) != b"\n"
            else:
                torn = False
            self._fh = open(self.path, "ab", buffering=0)
            if torn:
                self._fh.write(b"\n")
        self._fh.write(line)
        self._fh.flush()
        os.fsync(self._fh.fileno())
        return rec

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
