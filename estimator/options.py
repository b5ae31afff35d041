# SPDX-License-Identifier: GPL-3.0-or-later
"""``EstimateOptions``: every setting of an estimation, defined once.

The CLI (``estimate``, ``convert`` on footage, ``batch``), the worker's
``estimate`` request and the add-on's sidebar all build one of these; the
estimation itself (``pipeline.EstimateJob``) takes its :meth:`job_arguments`.
What is not an option stays with the caller: the footage, the output and
``--force``.

* ``add_arguments(parser)`` / ``from_args(ns)``: the command-line options (each
  number checked when parsed, against its range in ``common.options``);
* ``to_dict()`` / ``from_dict(d)``: plain values (a worker request, a batch
  manifest's settings); ``from_dict`` refuses unknown keys and bad values with
  one line naming the key;
* ``__post_init__`` checks every value with the same validators, so an
  ``EstimateOptions`` always holds usable values.

``"auto"`` becomes ``"cuda"`` or ``"cpu"`` in one place: ``device.resolve_device``.
Never imports torch (the add-on imports this module).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace

from ..common import options as opt
from ..common.options import OptionError
from .registry import DEFAULT_ESTIMATOR

DEVICES = ("auto", "cpu", "cuda")
# auto = bf16 where the CPU/GPU has it natively (cpu_features.auto_precision); the default
# stays fp32: bf16 moved joints visibly in the measurement (docs/speed.md, CPU: bf16 accuracy)
PRECISIONS = ("fp32", "bf16", "fp16", "auto")
DEFAULT_DETECT_EVERY = 30          # tracking.TrackerConfig's
MAX_PATH_CHARS = 32768
# Fields that never change a take's content (a batch re-uses takes across them). The
# model files (smplx, checkpoint, detector) do, and are identified by their files.
PIPELINES = ("auto", "classic", "batched")  # pipeline.PIPELINES (the batched one: fastpath)
# (pipeline, like device, changes a take only by rounding-level differences)
# what runs the network (pose2pose.engines; auto = the fastest installed, torch on CUDA)
ENGINES = ("torch", "onnxruntime", "openvino", "auto")
DEFAULT_ENGINE = "torch"
NOT_IN_TAKE = ("device", "allow_download", "max_pixels", "pipeline", "engine")
MODEL_FILES = ("smplx", "checkpoint", "detector")
# CLI flags whose argparse dest is not the field's name
_DESTS = {"allow_download": "download_detector"}
_FLAGS = {"allow_download": "--download-detector"}


def _short(v, n: int = 60) -> str:
    text = repr(v)
    return text if len(text) <= n else text[: n - 3] + "..."


def _text(v, label: str, what: str, *, empty=None):
    """Text (a path or a name), or ``empty`` for None/""."""
    if v is None or v == "":
        return empty
    if not isinstance(v, str) or len(v) > MAX_PATH_CHARS or "\x00" in v:
        raise OptionError(f"{label} must be {what}, got {_short(v)}")
    return v


def _choice(v, label: str, choices: tuple, default: str) -> str:
    if v is None or v == "":
        return default
    if not isinstance(v, str) or v not in choices:
        raise OptionError(f"{label} must be {', '.join(choices[:-1])} or {choices[-1]}, got "
                          f"{_short(v, 40)}")
    return v


def _bool(v, label: str) -> bool:
    if v is None:
        return False
    if not isinstance(v, bool):
        raise OptionError(f"{label} must be true or false, got {_short(v)}")
    return v


_MAX_PIXELS = re.compile(r"^\s*[0-9]{1,12}\s*([xX*]\s*[0-9]{1,12}\s*)?$")


def _max_pixels(v, label: str):
    """``None``, a pixel count, or ``"N"`` / ``"WxH"`` text (its ceiling is checked where
    pictures are read: ``sources.parse_max_pixels``)."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    ok = (isinstance(v, int) and not isinstance(v, bool) and v >= 1) or (
        isinstance(v, str) and _MAX_PIXELS.match(v) is not None
        and min(int(p) for p in re.split(r"[xX*]", v)) >= 1)
    if not ok:
        text = str(v).strip()
        text = text if len(text) <= 40 else text[:37] + "..."
        raise OptionError(f"{label} {text}: expected a number of pixels (e.g. 100000000) or "
                          "WIDTHxHEIGHT (e.g. 12000x9000)")
    return v


def _box(v, label: str):
    if opt.check_box(v, label) is None:
        return None
    return tuple(v) if isinstance(v, list) else v


def _estimator(v, label: str) -> str:
    """A name (whether it is registered is checked where it is loaded:
    ``registry.get_estimator``; argparse and the worker check it up front)."""
    if v is None or v == "":
        return DEFAULT_ESTIMATOR
    if not isinstance(v, str) or len(v) > 100 or not v.strip():
        raise OptionError(f"{label} must be an estimator's name, got {_short(v, 40)}")
    return v


@dataclass(frozen=True)
class EstimateOptions:
    """How to estimate (see ``pipeline.EstimateJob`` for what each one does).

    Values are checked (and numbers converted to their type) on construction;
    a bad one raises ``common.options.OptionError`` (a ``P2PError``) with one line.
    """

    frames: str | None = None          # "A:B:STEP"
    person: str = "auto"               # "auto", "all" or a number as text
    detector: str = "auto"             # "auto", "none" or a weights file
    allow_download: bool = False       # the detector's weights (--download-detector)
    box: str | tuple | None = None     # "X,Y,W,H" (or four numbers) in pixels
    estimator: str = DEFAULT_ESTIMATOR
    device: str = "auto"               # "auto", "cpu" or "cuda" (device.resolve_device)
    batch: int | None = None           # crops per forward pass (None: from free memory)
    precision: str = "fp32"
    smplx: str | None = None           # SMPL-X model file or folder (None: searched)
    checkpoint: str | None = None      # the estimator's network file (None: searched)
    fov: float | None = None           # degrees (None: 60 across the longer side)
    fps: float | None = None           # None: the video's, 30 for images
    detect_every: int = DEFAULT_DETECT_EVERY
    min_score: float | None = None     # None: the detector's default (0.5)
    max_pixels: int | str | None = None  # None: sources.DEFAULT_MAX_PIXELS
    engine: str = DEFAULT_ENGINE       # "torch", "onnxruntime", "openvino" or "auto"
    pipeline: str = "auto"             # "auto" (classic for now), "classic" or "batched"

    def __post_init__(self):
        for name, value in _checked(self.__dict__, lambda f: f).items():
            object.__setattr__(self, name, value)

    # -- plain values ------------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def to_dict(self) -> dict:
        """Plain, JSON-able values, one per field (``box`` as a list)."""
        d = asdict(self)
        if isinstance(d["box"], tuple):
            d["box"] = list(d["box"])
        return d

    @classmethod
    def from_dict(cls, d, labels: dict | None = None) -> "EstimateOptions":
        """From :meth:`to_dict`'s values (missing keys and None: the default). Unknown keys
        and bad values raise OptionError with one line naming the key (or
        ``labels[key]``, e.g. the add-on's property names)."""
        if not isinstance(d, dict):
            raise OptionError(f"estimate options must be a mapping, got {type(d).__name__}")
        names = cls.field_names()
        unknown = sorted(str(k) for k in d if k not in names)
        if unknown:
            raise OptionError(f"unknown estimate option {_short(unknown[0], 40)}")
        labels = labels or {}
        given = {k: v for k, v in d.items() if v is not None}
        return cls(**_checked(given, lambda f: labels.get(f, f)))

    def job_arguments(self) -> dict:
        """``pipeline.EstimateJob``'s keyword arguments (all but inputs, output, force)."""
        return dict(self.__dict__)

    def with_(self, **kw) -> "EstimateOptions":
        return replace(self, **kw)

    # -- command line ------------------------------------------------------------------------
    @staticmethod
    def add_arguments(parser, *, smplx: bool = True):
        """The options as ``--flags`` (``smplx=False``: no ``--smplx``, for a command that
        has its own). Every number is checked when parsed (``common.options``)."""
        from .registry import ESTIMATORS

        parser.add_argument("--frames", metavar="A:B:STEP", type=opt.arg_type(opt.check_frames),
                            help="frames A (default 0) up to B (excluded; default: the end), "
                                 "every STEP-th (default 1); numbers count from 0 [A, B 0 .. "
                                 f"{opt.MAX_FRAME_NUMBER:,}; STEP 1 .. {opt.MAX_FRAME_NUMBER:,}]")
        parser.add_argument("--person", default="auto", metavar="N|all|auto",
                            type=opt.arg_type(opt.check_person),
                            help="whom to estimate: auto (default) = the largest, most central "
                                 "person when someone is first seen; all = everyone, one take "
                                 "each (NAME.personN.take.npz); N = person N as 'all' numbers "
                                 "them (from 1, left to right where first seen) "
                                 f"[{opt.PERSON.range_text}]")
        parser.add_argument("--detector", default="auto", metavar="auto|none|FILE",
                            help="person detector: auto (default) = Faster R-CNN weights by the "
                                 "search order of 'p2p-mocap doctor', the whole frame when there "
                                 "are none; none = the whole frame (or --box) for the first "
                                 "frame, then tracking; or a weights file")
        parser.add_argument("--download-detector", action="store_true",
                            help="allow downloading torchvision's detector weights (160 MB) "
                                 "into the user data folder when none are found")
        parser.add_argument("--box", metavar="X,Y,W,H", type=opt.arg_type(opt.check_box),
                            help="the person's box in the first frame, in pixels (instead of a "
                                 "detection) [X, Y -1e6 .. 1e6; W, H above 1 .. 1e6]")
        known = "; ".join(f"{e.name} = {e.description}" for e in ESTIMATORS.values())
        parser.add_argument("--estimator", default=DEFAULT_ESTIMATOR, choices=tuple(ESTIMATORS),
                            help=f"the pose estimator: {known} (default {DEFAULT_ESTIMATOR}; "
                                 "p2p-mocap doctor says which are ready)")
        parser.add_argument("--device", default="auto", choices=DEVICES,
                            help="where the network runs (default: cuda when available)")
        parser.add_argument("--pipeline", default="auto", choices=PIPELINES,
                            help="classic: crops cut on the host, a few frames per batch "
                                 "framed from the newest output without a check; batched: "
                                 "frames decoded on threads, crops cut on the device, the "
                                 "next frames' crops predicted, checked and re-run where they "
                                 "missed (docs/gpu_pipeline.md); auto (default): classic "
                                 "(batched has not been measured on a GPU yet)")
        parser.add_argument("--engine", default=DEFAULT_ENGINE, choices=ENGINES,
                            help="what runs the network on the CPU: torch (default), "
                                 "onnxruntime (extra [onnx]) or openvino (extra [openvino]) "
                                 "on the network exported once per checkpoint into the data "
                                 "folder (~1 min; fp32 within the conformance tolerances, "
                                 "~1.4x torch: docs/speed.md); auto = the fastest installed "
                                 "(openvino, onnxruntime, torch), torch on CUDA")
        parser.add_argument("--batch", type=opt.BATCH.arg, metavar="N",
                            help=opt.BATCH.help("crops per forward pass (default: from free "
                                                "memory; small on CPU)"))
        parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                            help="fp32 (default, reference numerics); bf16/fp16 run the "
                                 "backbones in reduced precision (faster on GPUs, and bf16 "
                                 "on CPUs with AMX or AVX-512 BF16; joints move by up to a "
                                 "few degrees); auto = bf16 where it is native (p2p-mocap "
                                 "doctor says), else fp32")
        if smplx:
            parser.add_argument("--smplx", metavar="DIR",
                                help="SMPL-X model folder or SMPLX_NEUTRAL.npz")
        parser.add_argument("--checkpoint", metavar="FILE",
                            help="the estimator's checkpoint (pose2pose: snapshot_6.pth.tar, "
                                 "i2l-meshnet: snapshot_8.pth.tar)")
        parser.add_argument("--fov", type=opt.FOV.arg, metavar="DEG",
                            help=opt.FOV.help("the camera's horizontal field of view in degrees "
                                              "(default: 60 across the longer image side, "
                                              "typical of phone and webcam footage); only the "
                                              "distance to the camera depends on it"))
        parser.add_argument("--fps", type=opt.FPS.arg, metavar="FPS",
                            help=opt.FPS.help("frame rate to record in the take (default: the "
                                              "video's; 30 for images)"))
        parser.add_argument("--detect-every", type=opt.DETECT_EVERY.arg,
                            default=DEFAULT_DETECT_EVERY, metavar="N",
                            help=opt.DETECT_EVERY.help("run the detector at least every N "
                                                       "frames (default 30; 0 = only when a "
                                                       "track is lost)"))
        parser.add_argument("--min-score", type=opt.MIN_SCORE.arg, metavar="S",
                            help=opt.MIN_SCORE.help("detector score a person needs (default "
                                                    "0.5)"))
        parser.add_argument("--max-pixels", metavar="N|WxH",
                            help="refuse images and video frames larger than this, read from "
                                 "the file's header before decoding (default 8192x8192 = 67 "
                                 "Mpx; protects against decompression bombs); e.g. 12000x9000 "
                                 "for a 108 Mpx photo you trust")
        return parser

    @classmethod
    def from_args(cls, ns) -> "EstimateOptions":
        """From parsed arguments (``add_arguments``); an attribute that is missing or None
        takes the field's default. Bad values: OptionError naming the ``--flag``."""
        given = {}
        for name in cls.field_names():
            v = getattr(ns, _DESTS.get(name, name), None)
            if v is not None:
                given[name] = v
        return cls(**_checked(given, lambda f: _FLAGS.get(f, "--" + f.replace("_", "-"))))


def _checked(values: dict, label) -> dict:
    """The given fields checked and converted (numbers to their type); ``label(field)``
    names a field in messages. Fields not in ``values`` are left out."""
    checks = {
        "frames": lambda v, l: opt.check_frames(v, l),
        "person": lambda v, l: opt.check_person(v, l),
        "detector": lambda v, l: _text(v, l, "auto, none or a path", empty="auto"),
        "allow_download": _bool,
        "box": _box,
        "estimator": _estimator,
        "device": lambda v, l: _choice(v, l, DEVICES, "auto"),
        "batch": lambda v, l: opt.BATCH.check_optional(v, l),
        "precision": lambda v, l: _choice(v, l, PRECISIONS, "fp32"),
        "smplx": lambda v, l: _text(v, l, "text (a path)"),
        "checkpoint": lambda v, l: _text(v, l, "text (a path)"),
        "fov": lambda v, l: opt.FOV.check_optional(v, l),
        "fps": lambda v, l: opt.FPS.check_optional(v, l),
        "detect_every": lambda v, l: DEFAULT_DETECT_EVERY if v is None else
        opt.DETECT_EVERY.check(v, l),
        "min_score": lambda v, l: opt.MIN_SCORE.check_optional(v, l),
        "max_pixels": _max_pixels,
        "pipeline": lambda v, l: _choice(v, l, PIPELINES, "auto"),
        "engine": lambda v, l: _choice(v, l, ENGINES, DEFAULT_ENGINE),
    }
    return {name: checks[name](v, label(name)) for name, v in values.items()}
