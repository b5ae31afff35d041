# SPDX-License-Identifier: GPL-3.0-or-later
"""Frames decoded ahead on threads and uploaded to the device once.

``DecodePool`` has ``sources.FramePrefetcher``'s interface (``get()`` -> the next
frame or None, ``close()``) and hands out ``DeviceFrame``s: the decoded RGB image
(for the detector, which reads numpy) and its (H, W, 3) uint8 tensor on the
device, uploaded once and shared by every crop and every re-run of that frame.

* Image lists and folders: ``workers`` threads decode images in parallel (PNG
  and JPEG decoding release the GIL), results in frame order.
* A video: one reader (``FramePrefetcher``; FFmpeg decodes with its own frame
  threads), the upload done in a second thread so it overlaps decoding.
* CUDA: each frame is copied into pinned memory and sent with a non-blocking copy
  on a side stream; the consumer's stream waits on that copy's event only when it
  uses the frame. On the CPU the "upload" is ``torch.from_numpy`` (no copy).

Hardware video decoders (``torchcodec``, PyNvVideoCodec) are not used: they are
not installed here; see docs/speed.md.
"""
from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from ..sources import READ_AHEAD_BYTES, FramePrefetcher, ImageListSource, read_image_rgb

_END = object()


@dataclass
class DeviceFrame:
    index: int                 # frame number in the source (like sources.Frame)
    image: np.ndarray          # (H, W, 3) uint8 RGB, host memory
    tensor: torch.Tensor       # the same pixels on the device (uint8)
    ready: object = None       # CUDA event of the upload (None on the CPU)

    def on_device(self) -> torch.Tensor:
        """The frame's tensor, safe to use on the current stream."""
        if self.ready is not None:
            torch.cuda.current_stream(self.tensor.device).wait_event(self.ready)
            self.tensor.record_stream(torch.cuda.current_stream(self.tensor.device))
            self.ready = None
        return self.tensor


class Uploader:
    """Host frame -> device tensor, overlapped with compute on CUDA (pinned + side stream)."""

    def __init__(self, device):
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.stream = torch.cuda.Stream(self.device) if self.cuda else None

    def __call__(self, frame) -> DeviceFrame:
        host = torch.from_numpy(np.ascontiguousarray(frame.image))
        if not self.cuda:
            return DeviceFrame(frame.index, frame.image, host)
        pinned = host.pin_memory()
        with torch.cuda.stream(self.stream):
            dev = pinned.to(self.device, non_blocking=True)
            ev = torch.cuda.Event()
            ev.record(self.stream)
        return DeviceFrame(frame.index, frame.image, dev, ev)


def default_workers() -> int:
    """Decode threads: half the cores the process may use (the network needs the rest)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 2
    return max(1, min(8, cores // 2))


class DecodePool:
    """Decode ``source`` ahead (at most ``depth`` frames and ``max_bytes`` of them) and
    upload each frame to ``device``. Errors are raised by ``get`` in frame order."""

    def __init__(self, source, device, depth: int = 8, *, workers: int | None = None,
                 max_bytes: int = READ_AHEAD_BYTES):
        self.source = source
        self.upload = Uploader(device)
        self.workers = int(workers or default_workers())
        w, h = getattr(source, "image_size", (0, 0))
        if w * h:  # never more than max_bytes of decoded frames waiting (big pictures)
            depth = min(int(depth), max(1, int(max_bytes) // (3 * w * h)))
        self._q: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
        self._stop = threading.Event()
        self._pool = None
        self._prefetch = None
        if isinstance(source, ImageListSource) and self.workers > 1:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="p2p-decode")
            target = self._run_images
        else:
            self._prefetch = FramePrefetcher(source, depth, max_bytes)
            target = self._run_reader
        self._thread = threading.Thread(target=target, name="p2p-upload", daemon=True)
        self._thread.start()

    # -- producers ------------------------------------------------------------------------
    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _load(self, i: int):
        from ..sources import Frame

        src = self.source
        frame = Frame(i, read_image_rgb(src.paths[i], src.max_pixels))
        return self.upload(frame)

    def _run_images(self) -> None:
        # Futures go into the queue in frame order; the queue's bound limits work in flight.
        try:
            for i in self.source.indices:
                if self._stop.is_set():
                    return
                if not self._put(self._pool.submit(self._load, i)):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._put(exc)
            return
        self._put(_END)

    def _run_reader(self) -> None:
        try:
            while not self._stop.is_set():
                f = self._prefetch.get()
                if f is None:
                    break
                if not self._put(self.upload(f)):
                    return
        except BaseException as exc:  # noqa: BLE001
            self._put(exc)
            return
        self._put(_END)

    # -- consumer -------------------------------------------------------------------------
    def get(self, timeout: float | None = None):
        """The next ``DeviceFrame``, or None at the end of the source."""
        item = self._q.get(timeout=timeout)
        if item is _END:
            self._q.put(_END)
            return None
        if isinstance(item, BaseException):
            raise item
        if hasattr(item, "result"):
            return item.result()
        return item

    def close(self) -> None:
        self._stop.set()
        try:
            while True:
                item = self._q.get_nowait()
                if hasattr(item, "cancel"):
                    item.cancel()
        except queue.Empty:
            pass
        self._thread.join(timeout=5)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._prefetch is not None:
            self._prefetch.close()
        else:
            self.source.close()

    @property
    def ended_early(self):
        return getattr(self.source, "ended_early", None)
