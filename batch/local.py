# SPDX-License-Identifier: GPL-3.0-or-later
"""Running the clips' tasks on this machine with ``concurrent.futures`` process pools.

* Estimation: one single-process pool per estimator slot, started with
  ``multiprocessing``'s ``spawn`` context; with GPUs one slot per GPU
  (``CUDA_VISIBLE_DEVICES`` set before torch is imported in it), otherwise
  ``--workers N`` CPU processes sharing the cores (torch threads = cores / N).
  An estimator process keeps its loaded network for the next clip.
* Convert + export: ``blender_pool.BlenderPool``, persistent bpy processes
  reset between tasks and replaced after ``TASKS_PER_PROCESS`` tasks or a
  crash (the task is retried once); ``fresh_blender=True`` gives every task
  a fresh process (the old behaviour, ``batch --fresh-blender``).

Every worker asks Linux to kill it when the batch process dies
(``PR_SET_PDEATHSIG``) and also exits when it sees its parent gone, so a
killed batch leaves no process that could still write an output.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_mod
import shutil
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from . import worker
from .blender_pool import TASKS_PER_PROCESS, BlenderPool


def _die_with_parent(parent_pid: int) -> None:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass

    def watch():
        while True:
            if os.getppid() != parent_pid:
                os._exit(137)
            time.sleep(0.5)

    if os.getppid() != parent_pid:
        os._exit(137)
    threading.Thread(target=watch, daemon=True, name="p2p-parent-watch").start()


def _init_estimator(parent_pid, cuda_visible, progress_queue):
    _die_with_parent(parent_pid)
    if cuda_visible is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(cuda_visible)
    if progress_queue is not None:
        def sink(event, q=progress_queue):
            try:
                q.put_nowait(event)
            except Exception:  # noqa: BLE001 - progress is best effort
                pass
        worker.set_progress_sink(sink)


def _init_retarget(parent_pid):
    _die_with_parent(parent_pid)
    # Blender prints to stdout; keep the batch's stdout for its summary.
    try:
        os.dup2(2, 1)
    except OSError:
        pass


def visible_gpus(device: str | None = "auto") -> list[str]:
    """The GPUs for estimator processes: none for ``--device cpu`` or without NVIDIA GPUs."""
    if device == "cpu":
        return []
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        ids = [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
        return ids
    if shutil.which("nvidia-smi") is None and not Path("/dev/nvidiactl").exists():
        return []
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001
        return []


class LocalRunner:
    """Estimator slots and a fresh-process pool for bpy tasks on this machine."""

    kind = "local"

    def __init__(self, *, workers: int = 1, retarget_workers: int | None = None,
                 device: str | None = "auto", fresh_blender: bool = False):
        self.ctx = mp.get_context("spawn")
        self.gpus = visible_gpus(device)
        cores = os.cpu_count() or 1
        self.est_slots = len(self.gpus) if self.gpus else max(1, int(workers))
        self.threads = max(1, cores // self.est_slots) if not self.gpus else \
            max(1, cores // max(1, len(self.gpus)))
        self.ret_slots = max(1, int(retarget_workers)) if retarget_workers else \
            max(1, min(cores - (0 if self.gpus else self.est_slots), cores // 2) or 1)
        self._progress = self.ctx.Queue()
        self._est_pools: list[ProcessPoolExecutor | None] = [None] * self.est_slots
        self._busy: dict = {}        # future -> ("estimate", slot) / ("retarget", None)
        self._ret_pool: BlenderPool | None = None
        self.tasks_per_blender = 1 if fresh_blender else TASKS_PER_PROCESS
        self.description = (f"{self.est_slots} estimator process(es) on "
                            f"{'GPU ' + ','.join(self.gpus) if self.gpus else 'CPU'}"
                            f" ({self.threads} threads each), {self.ret_slots} "
                            "convert/export process(es)"
                            + (" (a fresh one per task)" if fresh_blender else ""))

    # -- pools ---------------------------------------------------------------------------------
    def _est_pool(self, slot: int) -> ProcessPoolExecutor:
        pool = self._est_pools[slot]
        if pool is None:
            gpu = self.gpus[slot] if self.gpus else None
            pool = ProcessPoolExecutor(max_workers=1, mp_context=self.ctx,
                                       initializer=_init_estimator,
                                       initargs=(os.getpid(), gpu, self._progress))
            self._est_pools[slot] = pool
        return pool

    def _retarget_pool(self) -> BlenderPool:
        if self._ret_pool is None:
            self._ret_pool = BlenderPool(self.ctx, self.ret_slots,
                                         tasks_per_process=self.tasks_per_blender,
                                         initializer=_init_retarget, initargs=(os.getpid(),))
        return self._ret_pool

    # -- the runner interface -------------------------------------------------------------------
    def free(self, what: str) -> int:
        if what == "retarget":
            return self._retarget_pool().free()
        busy = sum(1 for k, _ in self._busy.values() if k == what)
        return self.est_slots - busy

    def submit(self, what: str, spec: dict):
        if what == "estimate":
            used = {s for k, s in self._busy.values() if k == "estimate"}
            slot = next(i for i in range(self.est_slots) if i not in used)
            spec = dict(spec, threads=spec.get("threads") or self.threads)
            fut = self._est_pool(slot).submit(worker.estimate_clip, spec)
            self._busy[fut] = ("estimate", slot)
        else:
            return self._retarget_pool().submit(worker.retarget_clip, spec)
        return fut

    def wait(self, handles, timeout: float) -> list[tuple[object, dict]]:
        tasks = [h for h in handles if h not in self._busy]   # the Blender pool's
        futs = [h for h in handles if h in self._busy]
        if not tasks:
            return self._wait_futures(futs, timeout)
        wait(futs + [t.future for t in tasks], timeout=timeout, return_when=FIRST_COMPLETED)
        # the pool collects its own (it retries a task whose process died)
        return self._retarget_pool().wait(tasks, 0) + self._wait_futures(futs, 0)

    def _wait_futures(self, handles, timeout: float) -> list[tuple[object, dict]]:
        if not handles:
            time.sleep(timeout)
            return []
        done, _ = wait(list(handles), timeout=timeout, return_when=FIRST_COMPLETED)
        out = []
        for fut in done:
            what, slot = self._busy.pop(fut, (None, None))
            try:
                res = fut.result()
            except BrokenProcessPool as exc:
                res = {"ok": False, "error": "the worker process died "
                                             f"({exc or 'killed, or out of memory?'})"}
                if what == "estimate" and slot is not None:
                    self._shutdown(self._est_pools[slot])
                    self._est_pools[slot] = None
            except Exception as exc:  # noqa: BLE001
                res = {"ok": False, "error": f"{exc.__class__.__name__}: {exc}"}
            out.append((fut, res))
        return out

    def progress(self) -> list[dict]:
        events = []
        while True:
            try:
                events.append(self._progress.get_nowait())
            except (queue_mod.Empty, OSError, EOFError, ValueError):
                return events

    @staticmethod
    def _shutdown(pool, kill: bool = False) -> None:
        if pool is None:
            return
        if kill:
            for p in list(getattr(pool, "_processes", {}).values() or []):
                try:
                    p.kill()
                except Exception:  # noqa: BLE001
                    pass
        try:
            pool.shutdown(wait=not kill, cancel_futures=True)
        except Exception:  # noqa: BLE001
            pass

    def close(self, kill: bool = False) -> None:
        for i, pool in enumerate(self._est_pools):
            self._shutdown(pool, kill)
            self._est_pools[i] = None
        if self._ret_pool is not None:
            self._ret_pool.close(kill)
        self._ret_pool = None
        try:
            self._progress.close()
            self._progress.cancel_join_thread()
        except Exception:  # noqa: BLE001
            pass
