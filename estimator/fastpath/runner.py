# SPDX-License-Identifier: GPL-3.0-or-later
"""The batched pipeline's loop: ``BatchedRunner(job, reader).steps()``.

``pipeline.EstimateJob`` drives it instead of its classic ``_batches`` when the
batched pipeline is chosen (``--pipeline batched``, or ``auto`` on CUDA). Each
round:

1. up to ``span`` decoded frames (``decode.DecodePool``: already on the device);
2. the first frame is framed exactly as the one-frame tracker does (a detection
   when the tracker asks for one, ``EstimateJob._find_people``); the next ones by
   prediction (``speculative``), up to the next scheduled detection;
3. every crop of the round cut at once (on the device: ``crops.warp_crops``; on
   the CPU OpenCV's ``crop.warp_crop``, the same pixels and faster there) and run
   through the estimator in batches of ``job.batch`` crops (halved on CUDA out
   of memory); estimators with ``infer_tensor`` take the device crops directly;
4. the frames replayed through the tracker in order; from the first frame whose
   crop the one-frame tracker would not have made, the frames wait for the next
   round (``speculative.boxes_agree``).

Accepted frames go into the job's rows exactly as the classic loop puts them
(``rows``, ``frame_index``, ``Tracker.update_output``, ``end_duplicates`` after
each frame, as with a batch of one).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..sources import READ_AHEAD_BYTES
from . import speculative as spec_mod

# Crops per forward pass of the batched pipeline: peak bytes per crop of one forward
# (pipeline.CUDA_BYTES_PER_CROP, fp32, with headroom; half that in bf16/fp16) and a cap
# that keeps the frames held for one round small (one per crop, 6 MB at 1080p).
# Not measured on a GPU yet.
CUDA_BYTES_PER_CROP = 700 * 2**20
CUDA_MAX_BATCH = 256
CPU_MAX_BATCH = 4
# Frames predicted in the first round: a new track's velocity is not known yet, so a long
# first prediction would mostly be re-run; doubling from here reaches 64 in 5 rounds.
FIRST_SPAN = 2


def batched_batch_size(device, precision: str, free_bytes: int) -> int:
    """Crops per forward from free memory (``free_bytes``: CUDA ``mem_get_info``; half of
    it is used), capped; a small fixed default on the CPU."""
    import torch

    if torch.device(device).type != "cuda":
        return CPU_MAX_BATCH
    per = CUDA_BYTES_PER_CROP // (2 if precision in ("bf16", "fp16") else 1)
    return int(max(1, min(CUDA_MAX_BATCH, int(free_bytes) // 2 // per)))


def prepare_estimator(estimator) -> None:
    """On CUDA: the network's convolutions in channels_last (NHWC, what tensor cores want;
    with ``--precision bf16`` that is the batched bf16 network). Estimators without
    Pose2Pose's ``options``/``network`` are left as they are; so is everything on the CPU
    (``inference.cpu_runner`` chooses there)."""
    import dataclasses

    import torch

    opts, net = getattr(estimator, "options", None), getattr(estimator, "network", None)
    if opts is None or net is None or torch.device(estimator.device).type != "cuda":
        return
    from ..pose2pose.inference import prepare_model

    estimator.options = dataclasses.replace(opts, channels_last=True)
    prepare_model(net, estimator.options)


@dataclass
class Planned:
    """One frame of a round: its seq, the person boxes its crops were made from, and
    the crop items (track id, box, processed box, img2crop, crop2img) that overlap it."""

    frame: object
    seq: int
    boxes: dict
    items: list = field(default_factory=list)
    results: list = field(default_factory=list)


@dataclass
class RunnerStats:
    rounds: int = 0
    crops: int = 0          # crops run through the network
    rerun: int = 0          # of which thrown away (their frame's box missed) and run again
    frames: int = 0

    def line(self) -> str:
        share = self.rerun / self.crops if self.crops else 0.0
        return (f"{self.frames} frames in {self.rounds} rounds, {self.crops} crops run, "
                f"{self.rerun} re-run ({100 * share:.1f} %)")


class BatchedRunner:
    """See the module docstring. ``device_crops``: cut on the device (default: on CUDA)."""

    def __init__(self, job, reader, *, tolerance: float | None = None,
                 device_crops: bool | None = None):
        import torch

        self.job = job
        self.reader = reader
        # (tests set job.speculation_tolerance / job.device_crops to try the other choices)
        if tolerance is None:
            tolerance = getattr(job, "speculation_tolerance", spec_mod.DEFAULT_TOLERANCE)
        self.tolerance = float(tolerance)
        self.device = torch.device(job.device)
        if device_crops is None:
            device_crops = getattr(job, "device_crops", None)
        self.device_crops = (self.device.type == "cuda") if device_crops is None else \
            bool(device_crops)
        self.stats = RunnerStats()
        self.pending: deque = deque()
        self.ended = False
        self.seq = 0

    # -- frames ---------------------------------------------------------------------------
    def _fill(self, want: int) -> None:
        held = sum(f.image.nbytes for f in self.pending)
        while not self.ended and len(self.pending) < want and \
                (not self.pending or held < READ_AHEAD_BYTES):
            f = self.reader.get()
            if f is None:
                self.ended = True
                break
            self.pending.append(f)
            held += f.image.nbytes

    def steps(self):
        """Yield the number of frames done after each round (like ``EstimateJob._batches``)."""
        job = self.job
        cap = max(1, int(job.batch))
        span = min(cap, FIRST_SPAN)  # grows by doubling while predictions hold (slow start)
        while not job.cancelled:
            people = max(1, len(job.tracker.active))
            want = max(1, min(span, cap // people))
            self._fill(want)
            if not self.pending:
                return
            plan = self._plan(list(self.pending)[:want])
            self._run(plan)
            accepted = self._accept(plan)
            for _ in range(accepted):
                self.pending.popleft()
            self.seq += accepted
            self.stats.rounds += 1
            self.stats.frames += accepted
            span = spec_mod.next_span(span, len(plan), accepted, cap)
            yield self.seq

    # -- one round ------------------------------------------------------------------------
    def _plan(self, frames) -> list[Planned]:
        job, tracker = self.job, self.job.tracker
        s0 = self.seq
        if tracker.needs_detection(s0):
            job._find_people(frames[0], s0)
        plan = [Planned(frames[0], s0, tracker.crop_boxes(s0))]
        if plan[0].boxes:  # (nobody followed: one frame per round, each with a detection)
            for k, fr in enumerate(frames[1:], start=1):
                s = s0 + k
                if job.detector is not None and spec_mod.scheduled_detection(tracker, s):
                    break  # the next round starts with that detection
                plan.append(Planned(fr, s, spec_mod.speculative_boxes(tracker, s)))
        cspec = job.estimator.crop_spec
        from ..crop import crop_affine

        for p in plan:
            size = (p.frame.image.shape[1], p.frame.image.shape[0])
            for tid, box in p.boxes.items():
                bbox = cspec.process_box(box, size)
                if bbox is None:
                    continue
                img2crop, crop2img = crop_affine(bbox, tuple(cspec.input_size))
                p.items.append((tid, box, bbox, img2crop, crop2img))
        return plan

    def _run(self, plan: list[Planned]) -> None:
        flat = [(p, it) for p in plan for it in p.items]
        if not flat:
            return
        results = self._infer(flat)
        for (p, _it), r in zip(flat, results):
            p.results.append(r)
        self.stats.crops += len(flat)

    def _infer(self, flat) -> list:
        job = self.job
        out = []
        i = 0
        while i < len(flat):
            chunk = flat[i:i + job.batch]
            try:
                out.extend(self._infer_chunk(chunk))
            except RuntimeError as exc:  # CUDA out of memory: halve the batch and retry
                if "out of memory" not in str(exc).lower() or len(chunk) == 1:
                    raise
                import torch

                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                job.batch = max(1, len(chunk) // 2)
                job.notes.append(f"out of memory with {len(chunk)} crops per pass: "
                                 f"using {job.batch}")
                continue
            i += len(chunk)
        return out

    def _infer_chunk(self, chunk) -> list:
        est, cam = self.job.estimator, self.job.camera
        cspec = est.crop_spec
        if self.device_crops:
            images = self._device_crops(chunk, tuple(cspec.input_size))
            bbox = np.stack([it[2] for _p, it in chunk])
            crop2img = np.stack([it[4] for _p, it in chunk])
            if hasattr(est, "infer_tensor"):
                return est.infer_tensor(images, bbox, crop2img, cam)
            from ..crop import PersonCrop

            host = (images * 255.0).round_().permute(0, 2, 3, 1).cpu().numpy()
            return est.infer([PersonCrop(host[k], bbox[k], it[3], it[4])
                              for k, (_p, it) in enumerate(chunk)], cam)
        from ..crop import PersonCrop, warp_crop

        shape = tuple(cspec.input_size)
        patches = [warp_crop(p.frame.image, it[3], shape) for p, it in chunk]  # uint8, OpenCV
        if hasattr(est, "infer_tensor"):
            # what crops_to_tensor makes of crop_person's float32 crops, without the float
            # copy on the host: the same values (uint8 -> float32 is exact), NCHW
            import torch

            images = torch.from_numpy(np.stack(patches)).permute(0, 3, 1, 2).contiguous()
            return est.infer_tensor(images.float() / 255.0, np.stack([it[2] for _p, it in chunk]),
                                    np.stack([it[4] for _p, it in chunk]), cam)
        return est.infer([PersonCrop(patch.astype(np.float32), it[2], it[3], it[4])
                          for patch, (_p, it) in zip(patches, chunk)], cam)

    @staticmethod
    def _device_crops(chunk, out_shape):
        """Crops of a chunk cut from its frames, stacked per frame size, in chunk order."""
        import torch

        from .crops import warp_crops

        frames, slot = [], {}
        for p, _it in chunk:
            if id(p.frame) not in slot:
                slot[id(p.frame)] = len(frames)
                frames.append(p.frame)
        out = [None] * len(chunk)
        by_size: dict = {}
        for n, (p, it) in enumerate(chunk):
            by_size.setdefault(tuple(p.frame.image.shape), []).append((n, p, it))
        for members in by_size.values():
            fr_ids, stack = {}, []
            for _n, p, _it in members:
                if id(p.frame) not in fr_ids:
                    fr_ids[id(p.frame)] = len(stack)
                    stack.append(p.frame.on_device())
            crops = warp_crops(torch.stack(stack), [fr_ids[id(p.frame)] for _n, p, _it in members],
                               np.stack([it[3] for _n, _p, it in members]), out_shape)
            for k, (n, _p, _it) in enumerate(members):
                out[n] = crops[k]
        return torch.stack(out)

    def _accept(self, plan: list[Planned]) -> int:
        """Replay the round through the tracker; the number of frames taken."""
        job, tracker = self.job, self.job.tracker
        cspec = job.estimator.crop_spec
        for k, p in enumerate(plan):
            s = p.seq
            if k:
                if tracker.needs_detection(s):
                    if job.detector is not None or not tracker.active:
                        return self._reject(plan, k)
                    tracker.skip_detection(s)  # what _find_people does without a detector
                size = (p.frame.image.shape[1], p.frame.image.shape[0])
                if not spec_mod.boxes_agree(p.boxes, tracker.crop_boxes(s), cspec, size,
                                            self.tolerance):
                    return self._reject(plan, k)
            self._take(p)
        return len(plan)

    def _reject(self, plan, k: int) -> int:
        self.stats.rerun += sum(len(p.items) for p in plan[k:])
        return k

    def _take(self, p: Planned) -> None:
        job, tracker = self.job, self.job.tracker
        job.frame_index.append(p.frame.index)
        size = (p.frame.image.shape[1], p.frame.image.shape[0])
        if size not in job._sizes_seen:
            job._sizes_seen.add(size)
            job.notes.append(f"frame {p.frame.index} is {size[0]}x{size[1]}, not "
                             f"{job.source.image_size[0]}x{job.source.image_size[1]}: "
                             "the take's camera is that of the first frame")
        for (tid, box, _bbox, _a, _b), r in zip(p.items, p.results):
            job.rows.setdefault(tid, {})[p.seq] = r.take_row()
            tracker.update_output(tid, p.seq, r.tracking_points(), float(r.confidence),
                                  crop_box=box)
        tracker.end_duplicates()
