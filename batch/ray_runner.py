# SPDX-License-Identifier: GPL-3.0-or-later
"""Running the clips' tasks on a Ray cluster (``--ray ADDRESS``; ``--ray local``).

The same ``worker`` functions become Ray tasks: estimation with
``num_gpus=1`` when the cluster has GPUs (Ray sets ``CUDA_VISIBLE_DEVICES``
per task; the worker process keeps its loaded network for later clips), else
one CPU each; convert + export as CPU tasks with ``max_calls=1`` (a fresh
worker process, so a fresh bpy, per task). The tasks read the clips and write
their outputs at the paths the driver gives them, so the input and output
folders must be the same paths on every machine (a shared file system); the
driver alone keeps the manifest. Every machine needs this package installed
(same version) in the Python that runs ``ray start``.

``--ray local`` starts a small Ray instance on this machine
(``ray.init(num_cpus=..., include_dashboard=False)``); any other value is a
cluster address (``HEAD:6379``, ``ray://HEAD:10001`` or ``auto``).
"""
from __future__ import annotations

import os

from . import worker


class RayRunner:
    kind = "ray"

    def __init__(self, address: str, *, workers: int | None = None,
                 retarget_workers: int | None = None, device: str | None = "auto",
                 num_cpus: int | None = None):
        try:
            import ray
        except ImportError:
            raise RuntimeError("--ray needs the 'ray' package: pip install 'ray==2.60.0' "
                               "(or the project's 'cluster' extra)") \
                from None
        self.ray = ray
        self._started = False
        if not ray.is_initialized():
            if address in ("local", "", None):
                cpus = num_cpus or min(2, os.cpu_count() or 1) or 1
                ray.init(num_cpus=cpus, num_gpus=None if device != "cpu" else 0,
                         include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
            self._started = True
        res = ray.cluster_resources()
        cpus = int(res.get("CPU", 1)) or 1
        gpus = int(res.get("GPU", 0)) if device != "cpu" else 0
        self.gpus = gpus
        self.est_slots = gpus if gpus else max(1, int(workers) if workers else max(1, cpus // 2))
        self.ret_slots = max(1, int(retarget_workers)) if retarget_workers else cpus
        self._estimate = ray.remote(num_cpus=1, num_gpus=1 if gpus else 0)(worker.estimate_clip)
        self._retarget = ray.remote(num_cpus=1, max_calls=1)(worker.retarget_clip)
        self._busy: dict = {}
        self.description = (f"Ray cluster {address}: {cpus} CPU(s), {gpus} GPU(s); up to "
                            f"{self.est_slots} estimation and {self.ret_slots} convert/export "
                            "task(s) at once")

    def free(self, what: str) -> int:
        busy = sum(1 for k in self._busy.values() if k == what)
        return (self.est_slots if what == "estimate" else self.ret_slots) - busy

    def submit(self, what: str, spec: dict):
        if what == "estimate":
            ref = self._estimate.remote(dict(spec, threads=spec.get("threads") or 1))
        else:
            ref = self._retarget.remote(spec)
        self._busy[ref] = what
        return ref

    def wait(self, handles, timeout: float) -> list[tuple[object, dict]]:
        import time

        if not handles:
            time.sleep(timeout)
            return []
        ready, _ = self.ray.wait(list(handles), num_returns=1, timeout=timeout)
        out = []
        for ref in ready:
            self._busy.pop(ref, None)
            try:
                res = self.ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - a task or its worker died
                text = " ".join(str(exc).split())
                res = {"ok": False, "error": f"Ray task failed: {exc.__class__.__name__}: "
                                             f"{text[:300]}"}
            out.append((ref, res))
        return out

    def progress(self) -> list[dict]:
        return []

    def close(self, kill: bool = False) -> None:
        for ref in list(self._busy):
            try:
                self.ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001
                pass
        self._busy.clear()
        if self._started:
            try:
                self.ray.shutdown()
            except Exception:  # noqa: BLE001
                pass
