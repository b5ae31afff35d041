# SPDX-License-Identifier: GPL-3.0-or-later
"""``ConvertOptions``: how a take becomes a rig, defined once.

Used by ``p2p-mocap convert`` (a take, or footage after estimating it), ``batch``
(its convert stage and the stage's settings hash) and the add-on's import.
The SMPL-X model file is not an option: callers find it (``weights.locations``)
and pass its path to ``convert.convert_take``.

* ``add_arguments(parser)`` / ``from_args(ns)``: ``--gender``, ``--smooth``,
  ``--smooth-REGION``, ``--smooth-beta``, ``--pose-correctives``, ``--shape-keys``, and
  the motion clean-up's ``--foot-lock``, ``--fix-flags``, ... (``CleanOptions``);
* ``to_dict()`` / ``from_dict(d)``: plain values; the smoothing as
  ``{"method", "root_hz", ...}`` with ``None`` for a region left raw (a batch
  manifest's settings hash is taken over exactly these values); ``clean`` (the
  clean-up's settings) only when it is on: a dict without ``clean`` is the clean-up
  off (as every dict was before it existed), so ``--foot-lock off --smooth
  butterworth`` has the values, and the batch hash, of the old defaults.

Defaults (chosen by ``bench/motion_quality.py``, docs/motion-cleanup.md): the clean-up
on (``CleanOptions()``: ground, contacts, foot locking) with One Euro smoothing
(``Smoothing()``); ``--foot-lock off`` and ``--smooth butterworth`` give the behaviour
of before.

Pure Python; no bpy.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from ..common.options import on_off  # noqa: F401 - argparse type= of on/off (used by CLIs)
from .cleanup.clean import CleanOptions
from .errors import RetargetError
from .smoothing import METHODS, REGIONS, Smoothing

GENDERS = ("neutral", "male", "female")
_REGION_HELP = {"root": "root translation", "body": "body and global rotation",
                "hands": "fingers", "face": "jaw, eyes and expression"}


def cutoff_hz(text: str) -> float:
    """argparse ``type=`` of a smoothing cutoff: ``common.options.CUTOFF_HZ``."""
    from ..common.options import CUTOFF_HZ

    return CUTOFF_HZ.arg(text)


@dataclass(frozen=True)
class ConvertOptions:
    """Smoothing, the rig's shape keys and the body model's gender (None: the take's)."""

    smoothing: Smoothing = field(default_factory=Smoothing)
    pose_correctives: bool = True
    shape_keys: bool = True
    gender: str | None = None
    clean: CleanOptions | None = field(default_factory=CleanOptions)  # None: smoothing only

    def __post_init__(self):
        if not isinstance(self.smoothing, Smoothing):
            raise RetargetError(f"smoothing must be a Smoothing, got "
                                f"{type(self.smoothing).__name__}")
        for name in ("pose_correctives", "shape_keys"):
            if not isinstance(getattr(self, name), bool):
                raise RetargetError(f"{name} must be true or false, got "
                                    f"{getattr(self, name)!r}"[:200])
        if self.clean is not None and not isinstance(self.clean, CleanOptions):
            raise RetargetError(f"clean must be CleanOptions or unset, got "
                                f"{type(self.clean).__name__}")
        if self.gender is not None and self.gender not in GENDERS:
            raise RetargetError(f"gender must be {', '.join(GENDERS)} or unset (the take's), "
                                f"got {self.gender!r}"[:200])

    # -- plain values ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        s = self.smoothing
        sm = {"method": s.method, **{f"{r}_hz": (getattr(s, f"{r}_hz") or None) for r in REGIONS}}
        if s.method == "one_euro":
            sm["one_euro_beta"] = s.one_euro_beta
        d = {"smoothing": sm, "pose_correctives": self.pose_correctives,
             "shape_keys": self.shape_keys, "gender": self.gender}
        if self.clean is not None:
            d["clean"] = self.clean.to_dict()
        return d

    @classmethod
    def from_dict(cls, d) -> "ConvertOptions":
        """From :meth:`to_dict`'s values (missing keys: the default, except ``clean``:
        missing = off, see the module docstring); unknown keys and bad values raise
        RetargetError with one line."""
        if not isinstance(d, dict):
            raise RetargetError(f"convert options must be a mapping, got {type(d).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in d if k not in names)
        if unknown:
            raise RetargetError(f"unknown convert option {unknown[0]!r}"[:200])
        kw = {k: v for k, v in d.items() if k not in ("smoothing", "clean")}
        kw["clean"] = None if d.get("clean") is None else CleanOptions.from_dict(d["clean"])
        if d.get("smoothing") is not None:
            sm = d["smoothing"]
            if isinstance(sm, dict):  # None = that region raw (Smoothing.from_dict: 0)
                sm = {k: (0.0 if k.endswith("_hz") and v is None else v) for k, v in sm.items()}
            kw["smoothing"] = Smoothing.from_dict(sm)
        return cls(**kw)

    def with_(self, **kw) -> "ConvertOptions":
        return replace(self, **kw)

    # -- command line ------------------------------------------------------------------------
    @staticmethod
    def add_arguments(parser):
        d = Smoothing()
        parser.add_argument("--gender", choices=GENDERS,
                            help="SMPL-X model to use (default: the take's)")
        parser.add_argument("--smooth", choices=METHODS, default=d.method,
                            help=f"temporal filter (default: {d.method})")
        from .smoothing import method_cutoff

        for region in REGIONS:
            parser.add_argument(f"--smooth-{region}", type=cutoff_hz, metavar="HZ",
                                default=None,
                                help=f"cutoff for the {_REGION_HELP[region]} in Hz, 0 = raw "
                                     f"(default: {method_cutoff('one_euro', region):g} for "
                                     f"one_euro, {method_cutoff('butterworth', region):g} for "
                                     "the others) [0 = off, or 0.01 .. 500 Hz]")
        from ..common.options import ONE_EURO_BETA

        parser.add_argument("--smooth-beta", type=ONE_EURO_BETA.arg, default=d.one_euro_beta,
                            metavar="B", help=ONE_EURO_BETA.help(
                                "One Euro speed coefficient (--smooth one_euro; default: "
                                f"{d.one_euro_beta:g})"))
        parser.add_argument("--pose-correctives", type=on_off, default=True, metavar="on|off",
                            help="486 pose-corrective shape keys keyed per frame: exact SMPL-X "
                                 "surface (on, default) or a lighter rig for game export (off)")
        parser.add_argument("--shape-keys", type=on_off, default=True, metavar="on|off",
                            help="10 editable body-shape keys Shape000..Shape009 (default: on)")
        CleanOptions.add_arguments(parser)
        return parser

    @classmethod
    def from_args(cls, ns, clean_default: bool = True) -> "ConvertOptions":
        """From parsed arguments; a missing attribute takes the default (a cutoff: the
        method's). ``clean_default``: whether the clean-up runs when ``--foot-lock`` is
        not given (yes: the bench's choice)."""
        d = Smoothing()
        g = lambda name, default=None: getattr(ns, name, default)  # noqa: E731
        beta = g("smooth_beta", d.one_euro_beta)
        cutoffs = {f"{r}_hz": g(f"smooth_{r}") for r in REGIONS}
        smoothing = Smoothing(method=g("smooth", d.method) or d.method,
                              one_euro_beta=d.one_euro_beta if beta is None else beta,
                              **{k: v or None for k, v in cutoffs.items() if v is not None})
        pc, sk = g("pose_correctives", True), g("shape_keys", True)
        return cls(smoothing=smoothing, pose_correctives=True if pc is None else pc,
                   shape_keys=True if sk is None else sk, gender=g("gender"),
                   clean=CleanOptions.from_args(ns, default_on=clean_default))
