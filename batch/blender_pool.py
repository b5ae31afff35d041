# SPDX-License-Identifier: GPL-3.0-or-later
"""A small pool of persistent bpy processes for the batch's convert/export tasks.

Starting a process that imports bpy costs seconds (on 2 busy cores ~10 s); a
folder of short clips was dominated by it when every task got a fresh process.
Here each slot is a single-process ``ProcessPoolExecutor`` (``spawn``) that runs
up to ``tasks_per_process`` tasks and is then replaced (``max_tasks_per_child``),
so memory Blender does not give back cannot pile up.

* Between tasks the process resets Blender (:func:`reset_blender`): factory
  settings with an empty file (every data-block, scene setting and
  non-persistent handler goes), and the ``bpy.app.handlers`` lists are set
  back to what they held when the process started (a task's persistent
  handlers go too).
* A process that dies (crash, killed) breaks only its own slot: the task it
  ran is run once more in a fresh process; a task that kills two processes is
  reported failed, as before (``the worker process died ...``).
* The body model files read by a task are kept for the next tasks
  (``smplx_model.keep_models``; by path, size and modification time).
* ``tasks_per_process=1`` is the old behaviour (a fresh process per task:
  ``batch --fresh-blender``, used by ``bench/bench_batch.py`` to compare).

The slot's process runs :func:`run_task`, which resets and then calls the task
function; results are plain dicts (``worker.retarget_clip``'s) with
``blender_task`` added (1 for a process's first task).
"""
from __future__ import annotations

import time
from pathlib import Path
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

TASKS_PER_PROCESS = 16   # then a fresh process (Blender's memory does not all come back)

_TASKS_RUN = 0
_HANDLERS: dict[str, list] | None = None   # bpy.app.handlers as the process started


def reset_blender() -> None:
    """Empty the running bpy session: factory settings, empty file, the starting handlers."""
    from ..retarget.blender.output import empty_session, restore_handlers

    empty_session()
    restore_handlers(_HANDLERS or {})


def run_task(fn, spec: dict) -> dict:
    """In the slot's process: reset Blender, run ``fn(spec)`` (a dict back)."""
    global _TASKS_RUN, _HANDLERS
    if _HANDLERS is None:   # bpy's own handlers, before any task could add one
        from ..retarget.blender.output import handler_lists
        from ..retarget.smplx_model import keep_models

        _HANDLERS = handler_lists()
        keep_models()   # the next takes reuse the body model read for this one
    if _TASKS_RUN:   # a fresh process is clean
        try:
            reset_blender()
        except Exception as exc:  # noqa: BLE001 - a process that cannot reset is not reused
            return {"ok": False, "error": f"could not reset Blender: {exc}", "_broken": True}
    _TASKS_RUN += 1
    res = fn(spec)
    if isinstance(res, dict):
        res = dict(res, blender_task=_TASKS_RUN)
    return res


class _Task:
    """The handle the driver holds: one task, its current future and how often it ran."""

    __slots__ = ("fn", "spec", "slot", "future", "tries")

    def __init__(self, fn, spec, slot):
        self.fn, self.spec, self.slot, self.future, self.tries = fn, spec, slot, None, 0


def _blender_scripts_dir(path: str) -> bool:
    parts = Path(path).parts
    return "scripts" in parts and ("bpy" in parts or "blender" in parts)


def _child_start(initializer, initargs) -> None:
    """First thing in a slot's process. A parent that imported bpy has Blender's script
    folders at the front of sys.path, which spawn copies: there ``import bpy`` would find
    Blender's own ``scripts/modules/bpy`` (it needs ``_bpy``) instead of the module."""
    import sys

    sys.path[:] = [p for p in sys.path if not _blender_scripts_dir(p)]
    if initializer is not None:
        initializer(*initargs)


class BlenderPool:
    """``slots`` persistent bpy processes, each reused for ``tasks_per_process`` tasks."""

    def __init__(self, ctx, slots: int, *, tasks_per_process: int = TASKS_PER_PROCESS,
                 initializer=None, initargs=()):
        self.ctx, self.slots = ctx, max(1, int(slots))
        self.tasks_per_process = max(1, int(tasks_per_process))
        self.initializer, self.initargs = initializer, tuple(initargs)
        self._pools: list[ProcessPoolExecutor | None] = [None] * self.slots
        self._running: dict = {}      # slot -> _Task

    def free(self) -> int:
        return self.slots - len(self._running)

    def _pool(self, slot: int) -> ProcessPoolExecutor:
        if self._pools[slot] is None:
            self._pools[slot] = ProcessPoolExecutor(
                max_workers=1, mp_context=self.ctx, max_tasks_per_child=self.tasks_per_process,
                initializer=_child_start, initargs=(self.initializer, self.initargs))
        return self._pools[slot]

    def _start(self, task: _Task) -> None:
        task.tries += 1
        task.future = self._pool(task.slot).submit(run_task, task.fn, task.spec)
        self._running[task.slot] = task

    def submit(self, fn, spec: dict) -> _Task:
        slot = next(i for i in range(self.slots) if i not in self._running)
        task = _Task(fn, spec, slot)
        self._start(task)
        return task

    def _drop(self, slot: int) -> None:
        pool, self._pools[slot] = self._pools[slot], None
        _shutdown(pool, kill=True)

    def wait(self, tasks, timeout: float) -> list[tuple[_Task, dict]]:
        """The tasks among ``tasks`` that finished within ``timeout`` s, with their results."""
        by_future = {t.future: t for t in tasks}
        if not by_future:
            time.sleep(timeout)
            return []
        done, _ = wait(list(by_future), timeout=timeout, return_when=FIRST_COMPLETED)
        out = []
        for fut in done:
            task = by_future[fut]
            try:
                res = fut.result()
                broken = isinstance(res, dict) and res.pop("_broken", False)
                error = None
            except BrokenProcessPool as exc:
                res, broken = None, True
                error = f"the worker process died ({exc or 'killed, or out of memory?'})"
            except Exception as exc:  # noqa: BLE001
                res, broken, error = None, False, f"{exc.__class__.__name__}: {exc}"
            if broken:
                self._drop(task.slot)
                if task.tries < 2:   # once more, in a fresh process
                    self._start(task)
                    continue
                if res is None:
                    error = f"{error}; it died again in a fresh process"
            del self._running[task.slot]
            if res is None:
                res = {"ok": False, "error": error}
            elif task.tries > 1 and res.get("ok"):
                res["notes"] = list(res.get("notes", [])) + [
                    "converted in a fresh Blender process after the first one died"]
            out.append((task, res))
        return out

    def close(self, kill: bool = False) -> None:
        for slot in range(self.slots):
            pool, self._pools[slot] = self._pools[slot], None
            _shutdown(pool, kill)
        self._running.clear()


def _shutdown(pool, kill: bool = False) -> None:
    if pool is None:
        return
    if kill:
        for p in list((getattr(pool, "_processes", None) or {}).values()):
            try:
                p.kill()
            except Exception:  # noqa: BLE001
                pass
    try:
        pool.shutdown(wait=not kill, cancel_futures=True)
    except Exception:  # noqa: BLE001
        pass
