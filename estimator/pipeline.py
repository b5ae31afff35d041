# SPDX-License-Identifier: GPL-3.0-or-later
"""Images or a video in, take files out: ``EstimateJob``.

The job is a step object so the CLI, the Blender add-on's modal operator and a
worker process can all drive it::

    job = EstimateJob("clip.mp4")
    for p in job.steps():          # Progress records: stage, done, total, fps, eta_s
        ...                        # job.cancel() from anywhere ends it cleanly
    job.result.outputs             # the take files written

Flow per step (one batch):

1. Frames come from a background decoding thread through a bounded queue
   (``sources.FramePrefetcher``), so decoding overlaps inference and memory is
   flat.
2. Person boxes: a detection (or the whole frame / ``box`` without a detector)
   starts a track; the next frames' boxes come from the previous output's body
   joints (``tracking``). Detection runs again when a track's confidence drops,
   every ``detect_every`` frames, and while nobody is followed.
3. Batching. Frame t+1's crop depends on frame t's output, which would force a
   batch of one. Instead the crops of the next B frames are all predicted from
   the newest output before the batch, moved by the track's velocity and
   widened by the distance travelled (``Track.predicted_box``); the 1.25x
   context margin of the reference crop absorbs the rest. With several people
   the batch also spans people (B frames x P tracks). B is chosen from free
   memory (CUDA ``mem_get_info``; available RAM on CPU) and overridable; on CPU
   it stays small (little throughput gain, and a short lag keeps crops tight).
   That is the classic pipeline. The batched one (``--pipeline batched``;
   ``fastpath``; not yet ``auto``'s choice: it has not run on a GPU) instead checks each predicted crop against the one the
   one-frame tracker would make and re-runs the frames from the first miss, cuts
   the crops on the device, and runs the loop in ``fastpath.runner``.
4. The estimator (``--estimator``, ``registry.ESTIMATORS``; default Pose2Pose)
   turns the crops (cut by its ``crop_spec``) into per-person results
   (``base.PersonResult``) whose rows go into the take
   (``take_rows.assemble_take``); rows of frames where a person was not
   followed stay ``valid=False``.
5. At the end (or after ``cancel()``: a partial take of the frames done) each
   take is written atomically with ``retarget.take.write_take``; existing files
   are never replaced unless ``force``.
"""
from __future__ import annotations

import dataclasses
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from ..common.files import numbered_names
from .errors import EstimatorError
from .options import ENGINES, PIPELINES  # auto: classic until AUTO_BATCHED_ON_CUDA

AUTO_BATCHED_ON_CUDA = False  # not yet measured on a GPU
from .device import resolve_device
from .registry import DEFAULT_ESTIMATOR, get_estimator
from .sources import (READ_AHEAD_BYTES, FramePrefetcher, FrameRange, Source, SourceError,
                      open_source, parse_max_pixels)
from .tracking import Tracker, TrackerConfig

# Measured peak memory per crop of one batched forward (fp32, SMPL-X mesh included),
# with headroom; used to choose the batch size from free memory.
CPU_BYTES_PER_CROP = 450 * 2**20
CUDA_BYTES_PER_CROP = 700 * 2**20
CPU_MAX_BATCH = 4
CUDA_MAX_BATCH = 32
TAKE_SUFFIX = ".take.npz"


class EstimateError(EstimatorError):
    """A problem with the estimation the user can act on; one line."""


@dataclass
class Progress:
    stage: str          # "loading", "estimating", "writing", "done", "cancelled"
    done: int           # frames processed
    total: int          # frames selected
    fps: float = 0.0    # frames per second so far (estimating only)
    eta_s: float | None = None
    people: int = 0     # people currently followed
    message: str = ""


@dataclass
class EstimateResult:
    outputs: list[Path] = field(default_factory=list)
    people: list[int] = field(default_factory=list)     # person ids written, in output order
    valid_frames: dict[int, int] = field(default_factory=dict)  # id -> frames with the person
    frames_done: int = 0
    frames_total: int = 0
    cancelled: bool = False
    main_person: int | None = None
    standin: bool = False
    estimator: str = ""                                  # the estimator's registry name
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)   # also in notes; the CLI says "warning:"
    # A video that ended early: frames the container announced / frames that decoded.
    frames_announced: int | None = None
    frames_decoded: int | None = None


def available_memory(device) -> int:
    """Bytes free for inference: CUDA ``mem_get_info``, else available system RAM."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 2 * 2**30


def auto_batch_size(device) -> int:
    """Crops per forward pass from free memory (half of it), capped per device type."""
    import torch

    dev = torch.device(device)
    per, cap = (CUDA_BYTES_PER_CROP, CUDA_MAX_BATCH) if dev.type == "cuda" else \
        (CPU_BYTES_PER_CROP, CPU_MAX_BATCH)
    return int(max(1, min(cap, available_memory(dev) // 2 // per)))


def parse_box(text) -> tuple[float, float, float, float] | None:
    """``X,Y,W,H`` (pixels) -> tuple; None passes through."""
    if text is None:
        return None
    if isinstance(text, (tuple, list, np.ndarray)):
        vals = [float(v) for v in text]
    else:
        try:
            vals = [float(v) for v in str(text).replace(" ", "").split(",")]
        except ValueError:
            raise EstimateError(f"--box {text!r}: expected X,Y,W,H in pixels") from None
    if len(vals) != 4 or not all(np.isfinite(vals)):
        raise EstimateError(f"--box {text!r}: expected four numbers X,Y,W,H in pixels")
    if vals[2] <= 1 or vals[3] <= 1:
        raise EstimateError(f"--box {text!r}: width and height must be more than 1 pixel")
    return tuple(vals)


# --------------------------------------------------------------------------- output names
def _with_person(name: str, pid: int) -> str:
    if name.endswith(TAKE_SUFFIX):
        return name[: -len(TAKE_SUFFIX)] + f".person{pid}" + TAKE_SUFFIX
    stem, dot, ext = name.rpartition(".")
    return f"{stem}.person{pid}.{ext}" if dot else f"{name}.person{pid}"


def numbered_take_names(name: str):
    """``clip.take.npz``, ``clip-2.take.npz``, ``clip-3.take.npz``, ... (names only; the one
    numbering scheme, ``common.outputs``: ``clip-2.take.npz`` converts to ``clip-2.blend``)."""
    for path in numbered_names(Path(name), TAKE_SUFFIX if name.endswith(TAKE_SUFFIX) else ".npz"):
        yield path.name


def _key(path) -> str:
    return os.path.normcase(os.path.abspath(os.fspath(path)))


@dataclass
class OutputPlan:
    folder: Path
    name: str            # file name for one person (before any person suffix)
    explicit: bool       # -o named a file: refuse to replace unless force
    force: bool
    replace: frozenset = frozenset()   # files that may be replaced without force (batch's own)

    def names_for(self, pid: int | None) -> str:
        return self.name if pid is None else _with_person(self.name, pid)

    def may_replace(self, path) -> bool:
        return self.force or _key(path) in self.replace


def plan_output(source: Source, output, *, per_person: bool, force: bool,
                replace=()) -> OutputPlan:
    """Where takes go; raises EstimateError for outputs that must not be written.

    ``replace``: paths that may be replaced without ``force`` (a batch's own
    earlier outputs, as its manifest records them).
    """
    replace = frozenset(_key(p) for p in replace)
    if output is not None and str(output) != "":
        out = Path(output).expanduser()
        if out.is_dir() or str(output).endswith(("/", os.sep)):
            if not out.is_dir():
                raise EstimateError(f"-o {output}: no such folder")
            return _checked_folder(OutputPlan(out, source.name_stem + TAKE_SUFFIX, False, force))
        if out.suffix.lower() != ".npz":
            raise EstimateError(f"-o {output}: a take file name must end in .npz "
                                f"(e.g. {out.name}{TAKE_SUFFIX})")
        plan = _checked_folder(OutputPlan(out.parent if str(out.parent) else Path("."),
                                          out.name, True, force, replace))
        if not force:
            existing = [out] if os.path.lexists(out) and not per_person else []
            if per_person:
                stem = out.name[:-len(TAKE_SUFFIX)] if out.name.endswith(TAKE_SUFFIX) else \
                    out.name[:-len(".npz")]
                existing = sorted(plan.folder.glob(f"{stem}.person*.npz"))
            existing = [p for p in existing if not plan.may_replace(p)]
            if existing:
                raise EstimateError(f"{existing[0]} exists; not overwriting it "
                                    "(use --force, or another -o)")
        return plan
    return _checked_folder(OutputPlan(source.default_dir, source.name_stem + TAKE_SUFFIX,
                                      False, force))


def _checked_folder(plan: OutputPlan) -> OutputPlan:
    from ..common.files import output_folder_problem

    problem = output_folder_problem(plan.folder)
    if problem:
        hint = " (use -o)" if plan.folder.is_dir() else ""
        raise EstimateError(f"{plan.folder}: {problem}{hint}")
    return plan


def write_take_file(plan: OutputPlan, pid: int | None, arrays: dict) -> Path:
    """Write atomically with a no-replace commit (``common.files``): the next free
    numbered name for default outputs (``clip-2.take.npz``; also when another run
    takes a name meanwhile), refuse/force for explicit ones. Our own temporary
    files left in the folder by killed runs are removed first."""
    from ..common.files import remove_stale_temps
    from ..retarget.take import write_take

    path = plan.folder / plan.names_for(pid)
    remove_stale_temps(plan.folder)
    if plan.explicit:
        return write_take(path, arrays, overwrite=plan.may_replace(path))
    return write_take(path, arrays, numbered=True)  # (force is only for names given with -o)


# --------------------------------------------------------------------------- the job
class EstimateJob:
    """One estimation run. See the module docstring.

    inputs: a path (image, video, folder of images) or a list of image paths.
    output: a take file (refused if it exists unless ``force``) or a folder;
        None = next to the input, ``<name>.take.npz`` or the next free
        ``<name>-N.take.npz``. With ``person="all"`` ``.personID`` is inserted.
    frames: ``"A:B:STEP"`` or a ``FrameRange``.
    person: ``"auto"`` (the largest, most central person of the first frame with
        anyone in it; only that person is estimated), ``"all"`` (everyone, one
        take each) or an id (as numbered by ``"all"``: from 1, left to right in
        the frame where people are first seen).
    detector: ``"auto"`` (weights by the search order; none found: the whole
        frame), ``"none"``, a weights path, or a callable (list of RGB images ->
        list of lists of ``detector.Detection``) for tests and custom detectors.
    box: ``(x, y, w, h)`` person box in the first frame (instead of a detection).
    estimator: the estimator's name in ``registry.ESTIMATORS`` (default
        ``pose2pose``), or an already loaded ``base.PoseEstimator``.
    model: an already loaded network of that estimator (Pose2Pose: with its SMPL-X
        layer), which skips loading ``checkpoint``/``smplx``; give ``model_name``
        and ``model_standin`` too.
    replace: output files that may be replaced without ``force`` (a batch's own
        earlier outputs).
    max_pixels: pictures larger than this (pixels, or ``"WxH"``) are refused before
        they are decoded (default ``sources.DEFAULT_MAX_PIXELS``).
    """

    def __init__(self, inputs, output=None, *, frames=None, person="auto", detector="auto",
                 box=None, device: str | None = None, batch: int | None = None, smplx=None,
                 checkpoint=None, fov: float | None = None, fps: float | None = None,
                 force: bool = False, detect_every: int | None = None,
                 min_score: float | None = None, allow_download: bool = False,
                 tracker_config: TrackerConfig | None = None, model=None,
                 model_name: str = "", model_standin: bool = False, prefetch: int | None = None,
                 precision: str = "fp32", replace=(), max_pixels: int | str | None = None,
                 estimator=DEFAULT_ESTIMATOR, pipeline: str = "auto", engine: str = "torch"):
        self.inputs = inputs
        if isinstance(estimator, str) or estimator is None:
            try:
                self.estimator_entry = get_estimator(estimator)
            except EstimatorError as exc:
                raise EstimateError(str(exc)) from None
            self.estimator = None
        else:  # an already loaded PoseEstimator
            self.estimator_entry, self.estimator = None, estimator
        try:
            self.max_pixels = parse_max_pixels(max_pixels)
        except SourceError as exc:
            raise EstimateError(str(exc)) from None
        self.replace = tuple(replace)  # outputs that may be replaced without force (batch)
        self.output = output
        try:
            self.frames = frames if isinstance(frames, FrameRange) else FrameRange.parse(frames)
        except SourceError as exc:
            raise EstimateError(str(exc)) from None
        if person in (None, "", "auto"):
            self.person = "auto"
        elif str(person).lower() == "all":
            self.person = "all"
        else:
            try:
                self.person = int(person)
            except (TypeError, ValueError):
                raise EstimateError(f"--person {person!r}: use a person number, all or auto") \
                    from None
            if self.person < 1:
                raise EstimateError(f"--person {person}: people are numbered from 1")
        self.detector_choice = detector if detector is not None else "auto"
        self.box = parse_box(box)
        self.device_choice = device
        if batch is not None and int(batch) < 1:
            raise EstimateError(f"--batch {batch}: must be 1 or more")
        self.batch_choice = batch
        self.smplx_flag, self.checkpoint_flag = smplx, checkpoint
        from ..common import options as _opt  # the ranges of the CLI and the worker

        try:
            fov, fps = _opt.FOV.check_optional(fov), _opt.FPS.check_optional(fps)
        except _opt.OptionError as exc:
            raise EstimateError(str(exc)) from None
        self.fov = fov
        self.fps_override = fps
        self.force = force
        cfg = dataclasses.replace(tracker_config) if tracker_config else TrackerConfig()
        if detect_every is not None:
            if int(detect_every) < 0:
                raise EstimateError(f"--detect-every {detect_every}: must be 0 or more")
            cfg.detect_every = int(detect_every)
        if min_score is not None and not 0.0 < float(min_score) <= 1.0:
            raise EstimateError(f"--min-score {min_score}: must be above 0 and at most 1")
        self.tracker_config = cfg
        self.min_score = min_score
        self.allow_download = allow_download
        self.model = model
        self.model_name = model_name
        self.model_standin = model_standin
        self.prefetch_depth = prefetch
        if precision not in ("fp32", "bf16", "fp16", "auto"):
            raise EstimateError(f"--precision {precision}: use fp32, bf16, fp16 or auto")
        self.precision = precision
        if pipeline not in PIPELINES:
            raise EstimateError(f"--pipeline {pipeline}: use {', '.join(PIPELINES)}")
        if engine not in ENGINES:
            raise EstimateError(f"--engine {engine}: use {', '.join(ENGINES)}")
        self.engine = engine  # pose2pose.engines.resolve_engine ("auto": fastest installed)
        self.pipeline = pipeline  # "auto": classic (see AUTO_BATCHED_ON_CUDA)
        self._cancel = threading.Event()
        self.result: EstimateResult | None = None
        self.source: Source | None = None
        self.notes: list[str] = []

    # -- control -----------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop after the current batch; the frames done are written as a partial take."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def run(self) -> EstimateResult:
        for _ in self.steps():
            pass
        return self.result

    # -- setup -------------------------------------------------------------------------------
    def _open(self) -> None:
        try:
            self.source = open_source(self.inputs, self.frames, fps=self.fps_override,
                                      max_pixels=self.max_pixels)
        except SourceError as exc:
            raise EstimateError(str(exc)) from None
        if len(self.source) == 0:
            raise EstimateError(f"{self.source.description}: the frame range {self.frames} "
                                "selects no frames")
        self.plan = plan_output(self.source, self.output, per_person=self.person == "all",
                                force=self.force, replace=self.replace)

    def _load(self) -> None:
        import torch

        from .base import LoadOptions
        from .crop import PinholeCamera
        from .take_rows import static_camera

        self.device = resolve_device(self.device_choice)
        from .cpu_features import resolve_precision, usable_cores

        self.precision = resolve_precision(self.precision, self.device)  # "auto" -> a dtype
        if torch.device(self.device).type == "cpu":
            # All the cores this process may use (affinity, not os.cpu_count()); the decode
            # thread mostly waits on a full queue, so the network is not starved.
            torch.set_num_threads(usable_cores())
        if self.estimator is None:
            self.estimator = self.estimator_entry.load(LoadOptions(
                device=self.device, precision=self.precision, checkpoint=self.checkpoint_flag,
                smplx=self.smplx_flag, network=self.model, network_name=self.model_name,
                network_standin=self.model_standin, engine=self.engine))
            self.notes.extend(getattr(self.estimator, "notes", ()))
        est = self.estimator
        self.device = str(est.device)
        # (kept for callers that reuse a loaded network, e.g. batch's per-process cache)
        self.model = getattr(est, "network", self.model)
        self.model_name, self.model_standin = est.model_name, bool(est.standin)
        self._load_detector()
        self.camera = PinholeCamera(*static_camera(self.source.image_size, self.fov))
        self.focal, self.princpt = self.camera.focal, self.camera.princpt
        # "auto" stays classic until the batched path's CUDA-only parts (pinned uploads on a
        # side stream, batch size from free GPU memory) have run on a GPU: docs/gpu_pipeline.md.
        self.pipeline_used = "batched" if self.pipeline == "batched" or (
            self.pipeline == "auto" and AUTO_BATCHED_ON_CUDA
            and torch.device(self.device).type == "cuda") else "classic"
        if self.pipeline_used == "batched":
            from .fastpath.runner import batched_batch_size, prepare_estimator

            prepare_estimator(self.estimator)
            self.batch = int(self.batch_choice or batched_batch_size(
                self.device, self.precision, available_memory(self.device)))
        else:
            self.batch = int(self.batch_choice or auto_batch_size(self.device))

    def _load_detector(self) -> None:
        from .detector import (DEFAULT_SCORE_THRESHOLD, DetectorError, download_detector,
                               load_person_detector)

        choice = self.detector_choice
        self.detector = None
        self.detector_standin = False
        if callable(choice):
            self.detector = choice
            self.detector_standin = bool(getattr(choice, "standin", False))
            return
        if str(choice).lower() == "none":
            return
        flag = None if str(choice).lower() == "auto" else choice
        thr = DEFAULT_SCORE_THRESHOLD if self.min_score is None else float(self.min_score)
        try:
            det = load_person_detector(flag, self.device, score_threshold=thr)
            if det is None and self.allow_download:
                path = download_detector()
                det = load_person_detector(path, self.device, score_threshold=thr)
        except DetectorError as exc:
            raise EstimateError(str(exc)) from None
        if det is None:
            self.notes.append("no person detector weights found: the whole frame is the first "
                              "person box (see p2p-mocap doctor, or --download-detector)")
        self.detector = det
        self.detector_standin = bool(det is not None and det.standin)

    # -- the steps -------------------------------------------------------------------------------
    def steps(self) -> Iterator[Progress]:
        t0 = time.perf_counter()
        self._open()
        total = len(self.source)
        self.result = EstimateResult(frames_total=total)
        yield Progress("loading", 0, total, message="loading the network")
        self._load()
        self.result.standin = bool(self.model_standin or self.detector_standin)
        self.result.estimator = str(self.estimator.name)
        mode = "one" if self.person == "auto" else "all"
        self.tracker = Tracker(self.source.image_size, self.tracker_config, mode=mode)
        self.rows: dict[int, dict[int, dict]] = {}
        self.frame_index: list[int] = []
        self._sizes_seen = {tuple(self.source.image_size)}
        depth = self.prefetch_depth or max(4, min(32, 2 * self.batch))
        if self.pipeline_used == "batched":
            from .fastpath.decode import DecodePool
            from .fastpath.runner import BatchedRunner

            prefetch = DecodePool(self.source, self.device, max(depth, 2 * self.batch))
            self.runner = BatchedRunner(self, prefetch)
            rounds = self.runner.steps()
        else:
            prefetch = FramePrefetcher(self.source, depth)
            rounds = self._batches(prefetch)
        interrupted = False
        try:
            yield Progress("estimating", 0, total, message=self.source.description)
            start = time.perf_counter()
            for done in rounds:
                rate = done / max(time.perf_counter() - start, 1e-9)
                eta = (total - done) / rate if rate > 0 else None
                yield Progress("estimating", done, total, rate, eta, len(self.tracker.active))
                if self._cancel.is_set():
                    break
        except KeyboardInterrupt:
            # A second Ctrl-C (or a hard stop) during a batch: keep what is done.
            interrupted = True
            self._cancel.set()
        except SourceError as exc:
            raise EstimateError(str(exc)) from None
        finally:
            prefetch.close()
        done = len(self.frame_index)
        cancelled = self._cancel.is_set() and (done < total or interrupted)
        short = getattr(self.source, "ended_early", None)
        if done == 0 and not cancelled:
            if short:
                raise EstimateError(f"{self.source.description}: none of the selected frames "
                                    f"({self.frames}) could be decoded; {short[0]} of "
                                    f"{short[1]} frames announced by the container could be "
                                    "decoded (the file may be truncated)")
            raise EstimateError(f"{self.source.description}: no frame could be decoded "
                                f"(frames {self.frames}); the file may be damaged")
        if short and not cancelled:
            decoded, announced = short
            self.result.frames_decoded, self.result.frames_announced = decoded, announced
            msg = (f"{self.source.description}: {decoded} of {announced} frames announced by "
                   "the container could be decoded (the file may be truncated); the take holds "
                   f"the {done} selected frame{'s' if done != 1 else ''} that did")
            self.notes.append(msg)
            self.result.warnings.append(msg)
        self.result.frames_done = done
        self.result.cancelled = cancelled
        yield Progress("writing", done, total, message="writing the take")
        self._write(cancelled)
        self.result.seconds = time.perf_counter() - t0
        self.result.notes = list(self.notes)
        yield Progress("cancelled" if cancelled else "done", done, total)

    def _batches(self, prefetch: FramePrefetcher) -> Iterator[int]:
        spec = self.estimator.crop_spec
        seq = 0
        while not self._cancel.is_set():
            people = max(1, len(self.tracker.active))
            want = max(1, self.batch // people)
            frames, held = [], 0
            for _ in range(want):
                if held >= READ_AHEAD_BYTES:  # huge frames: fewer per batch
                    break
                f = prefetch.get()
                if f is None:
                    break
                frames.append(f)
                held += f.image.nbytes
            if not frames:
                return
            items = []  # (seq, track id, person box, PersonCrop)
            for k, fr in enumerate(frames):
                s = seq + k
                self.frame_index.append(fr.index)
                size = (fr.image.shape[1], fr.image.shape[0])
                if size not in self._sizes_seen:
                    self._sizes_seen.add(size)
                    self.notes.append(f"frame {fr.index} is {size[0]}x{size[1]}, not "
                                      f"{self.source.image_size[0]}x{self.source.image_size[1]}: "
                                      "the take's camera is that of the first frame")
                if (k == 0 or not self.tracker.active) and self.tracker.needs_detection(s):
                    self._find_people(fr, s)
                for tid, box in self.tracker.crop_boxes(s).items():
                    pc = spec.cut(fr.image, box)
                    if pc is not None:
                        items.append((s, tid, box, pc))
            for i in range(0, len(items), self.batch):
                self._infer_and_track(items[i:i + self.batch])
            self.tracker.end_duplicates()
            seq += len(frames)
            yield seq

    def _find_people(self, frame, seq: int) -> None:
        image_box = (0.0, 0.0, float(frame.image.shape[1]), float(frame.image.shape[0]))
        if seq == 0 and self.box is not None:
            self.tracker.seed_box(seq, self.box)
            return
        if self.detector is None:
            if not self.tracker.active:
                self.tracker.seed_box(seq, self.box if self.box is not None else image_box)
            else:
                self.tracker.skip_detection(seq)  # nothing to detect with: keep following
            return
        dets = self.detector([frame.image])[0]
        self.tracker.update_detections(seq, [d.xywh for d in dets])

    def _infer_and_track(self, items) -> None:
        if not items:
            return
        try:
            results = self.estimator.infer([it[3] for it in items], self.camera)
        except RuntimeError as exc:  # CUDA out of memory: halve the batch and retry
            if "out of memory" not in str(exc).lower() or len(items) == 1:
                raise
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            self.batch = max(1, len(items) // 2)
            self.notes.append(f"out of memory with {len(items)} crops per pass: "
                              f"using {self.batch}")
            for i in range(0, len(items), self.batch):
                self._infer_and_track(items[i:i + self.batch])
            return
        for (s, tid, box, _pc), r in zip(items, results):
            # (the track was followed when this crop was made; ending later keeps it)
            self.rows.setdefault(tid, {})[s] = r.take_row()
            self.tracker.update_output(tid, s, r.tracking_points(), float(r.confidence),
                                       crop_box=box)

    # -- writing ---------------------------------------------------------------------------------
    def _chosen_ids(self) -> list[int]:
        seen = {tid: len(r) for tid, r in self.rows.items() if r}
        self.result.valid_frames = dict(sorted(seen.items()))
        self.result.main_person = self.tracker.main_track_id()
        if self.person == "auto":
            return [self.tracker.target] if self.tracker.target in seen else []
        if self.person == "all":
            T = len(self.frame_index)
            keep = [tid for tid in sorted(seen) if seen[tid] >= min(5, T)]
            dropped = sorted(set(seen) - set(keep))
            if dropped:
                self.notes.append(f"people seen in fewer than {min(5, T)} frames were not "
                                  f"written: {', '.join(map(str, dropped))}")
            return keep
        if self.person not in seen:
            if self._cancel.is_set():
                return []
            people = ", ".join(map(str, sorted(seen))) or "nobody"
            raise EstimateError(f"person {self.person} was not found (people found: {people})")
        return [self.person]

    def _write(self, cancelled: bool) -> None:
        from .take_rows import assemble_take

        ids = self._chosen_ids()
        T = len(self.frame_index)
        if not ids:
            if cancelled:
                self.notes.append("cancelled before anyone was estimated: nothing written")
                return
            raise EstimateError(f"no person found in any of the {T} frame"
                                f"{'s' if T != 1 else ''} of {self.source.description}")
        per_person = self.person == "all"
        for tid in ids:
            arrays = assemble_take(
                self.rows[tid], self.frame_index, fps=self.source.fps, person_id=tid,
                image_size=self.source.image_size, source=self.source.location,
                model=self.model_name, standin=self.result.standin, focal=self.focal,
                princpt=self.princpt, estimator=self.estimator.name,
                body_model=self.estimator.model)
            path = write_take_file(self.plan, tid if per_person else None, arrays)
            self.result.outputs.append(path)
            self.result.people.append(tid)
