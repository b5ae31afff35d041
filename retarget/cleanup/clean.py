# SPDX-License-Identifier: GPL-3.0-or-later
"""``clean_take``: the motion clean-up of a take, in order, and its settings ``CleanOptions``.

Order (``clean_take``):

1. QA flags on the raw take, and the fixes asked for (``fix_flags``), so wrist
   flips, left/right swaps and dropouts are repaired before filtering
   (``cleanup.qa``, skipped when that module is not there);
2. smoothing (``retarget.smoothing``); with ``split_at_contacts`` contact-aware:
   the root and body are filtered separately on each side of every foot strike, so
   a filter does not smear an impact (off by default: with the adaptive One Euro
   filter it made every figure of the bench worse); fingers and face keep their
   own settings over the whole take;
3. ground (``ground.estimate_ground``) and contacts (``contacts.find_contacts``);
4. foot locking with root correction and the optional penetration fix
   (``footlock.lock_feet``);
5. the flags that remain (foot skate that survived locking, ...).

The cleaned take keeps what it came from: each original parameter array as the
raw array ``raw_source_<param>`` and its ``valid`` as ``raw_source_valid`` (a
cleaned take re-cleaned starts again from its source), and the settings used as
its ``clean_settings`` JSON (``settings_of`` reads them back), so a take can be
re-cleaned with other settings; the input take object and file are never modified. Problems that
leave the motion usable (upper-body shot, too short for contacts) are notes, not
errors.
"""
from __future__ import annotations

import importlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Mapping

import numpy as np

from ..errors import RetargetError
from .contacts import Contacts, find_contacts, runs
from .ground import estimate_ground, ground_problem
from .kinematics import FOOT_POINTS, take_motion

SOURCE_PREFIX = "source_"     # raw arrays "raw_source_<param>": the parameters before clean-up
RELEASE_FACTOR = 1.6          # release thresholds = contact thresholds x this (hysteresis)
FEET_IN_VIEW_MIN = 0.5        # share of valid frames whose feet project into the image
FIXES = ("interpolate", "refilter", "invalidate")
# The smoothing the clean-up is measured with (bench/motion_quality.py): One Euro with a
# 1 Hz floor for root and body that opens with speed (beta 1); fingers and face 4 Hz.
# The same as ``Smoothing()`` (its defaults are the bench's choice too).
CLEAN_SMOOTHING = {"method": "one_euro", "root_hz": 1.0, "body_hz": 1.0, "hands_hz": 4.0,
                   "face_hz": 4.0, "one_euro_beta": 1.0}


def clean_smoothing():
    """``Smoothing`` of ``CLEAN_SMOOTHING`` (the clean command's default)."""
    from ..smoothing import Smoothing

    return Smoothing.from_dict(CLEAN_SMOOTHING)


def _on_off(text):
    from ...common.options import on_off

    return on_off(text)


def parse_fix_flags(text) -> tuple:
    """``"flip=interpolate,swap=interpolate"`` (or a mapping / pairs) ->
    ``(("flip", "interpolate"), ...)``, sorted; ``""``/``none`` -> ``()``."""
    if text is None:
        return ()
    if isinstance(text, Mapping):
        pairs = list(text.items())
    elif isinstance(text, str):
        t = text.strip()
        if t.lower() in ("", "none", "off"):
            return ()
        pairs = []
        for part in t.split(","):
            if "=" not in part:
                raise RetargetError(f"--fix-flags: expected KIND=FIX pairs like "
                                    f"flip=interpolate, got {part.strip()!r}"[:200])
            k, v = part.split("=", 1)
            pairs.append((k.strip(), v.strip()))
    else:
        try:
            pairs = [tuple(p) for p in text]
        except TypeError:
            raise RetargetError(f"fix_flags must be KIND=FIX pairs, got {text!r}"[:200]) from None
    out = {}
    kinds = _flag_kinds()
    for p in pairs:
        if len(p) != 2 or not all(isinstance(x, str) for x in p):
            raise RetargetError(f"fix_flags must be KIND=FIX pairs, got {p!r}"[:200])
        k, v = p
        if v not in FIXES:
            raise RetargetError(f"unknown fix {v!r} for {k!r} (choose {', '.join(FIXES)})"[:200])
        if kinds is not None and k not in kinds:
            raise RetargetError(f"unknown flag kind {k!r} (choose {', '.join(kinds)})"[:200])
        out[k] = v
    return tuple(sorted(out.items()))


def _qa():
    """The QA module (engineer B's ``cleanup.qa``), or None while it does not exist."""
    try:
        return importlib.import_module(".qa", __package__)
    except ImportError:
        return None


def _flag_kinds():
    qa = _qa()
    return tuple(qa.FLAG_KINDS) if qa is not None and hasattr(qa, "FLAG_KINDS") else None


@dataclass(frozen=True)
class CleanOptions:
    """Settings of ``clean_take`` (plain values; validated once here).

    Defaults chosen with ``bench/motion_quality.py`` (docs/motion-cleanup.md).
    """

    foot_lock: bool = True
    penetration_fix: bool = True
    root_correction: bool = True
    split_at_contacts: bool = False     # the bench: splitting hurts with One Euro
    fix_flags: tuple = ()              # ((kind, fix), ...): see cleanup.qa
    contact_height: float = 0.05       # m above the ground a foot point may be to start a contact
    contact_speed: float = 0.9         # m/s a foot point may move to start a contact
    min_contact_frames: int = 4
    blend_frames: int = 3              # frames to blend the lock in and out

    def __post_init__(self):
        from ...common.options import CONTACT_HEIGHT, CONTACT_SPEED, LOCK_BLEND, MIN_CONTACT

        for name in ("foot_lock", "penetration_fix", "root_correction", "split_at_contacts"):
            if not isinstance(getattr(self, name), bool):
                raise RetargetError(f"{name} must be true or false, got "
                                    f"{getattr(self, name)!r}"[:200])
        for name, opt in (("contact_height", CONTACT_HEIGHT), ("contact_speed", CONTACT_SPEED),
                          ("min_contact_frames", MIN_CONTACT), ("blend_frames", LOCK_BLEND)):
            v, why = opt.problem(getattr(self, name))
            if why is not None:
                raise RetargetError(f"{name}: {why}; got {getattr(self, name)!r}"[:200])
            object.__setattr__(self, name, v)
        object.__setattr__(self, "fix_flags", parse_fix_flags(self.fix_flags))

    @property
    def release_height(self) -> float:
        return self.contact_height * RELEASE_FACTOR

    @property
    def release_speed(self) -> float:
        return self.contact_speed * RELEASE_FACTOR

    # -- plain values ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d["fix_flags"] = {k: v for k, v in self.fix_flags}
        return d

    @classmethod
    def from_dict(cls, d) -> "CleanOptions":
        if not isinstance(d, Mapping):
            raise RetargetError(f"clean settings must be a mapping, got {type(d).__name__}")
        names = {f for f in cls.__dataclass_fields__}
        unknown = sorted(str(k) for k in d if k not in names)
        if unknown:
            raise RetargetError(f"unknown clean setting {unknown[0]!r}"[:200])
        return cls(**dict(d))

    def with_(self, **kw) -> "CleanOptions":
        return replace(self, **kw)

    # -- command line ------------------------------------------------------------------------
    @staticmethod
    def add_arguments(parser):
        from ...common.options import CONTACT_HEIGHT, CONTACT_SPEED, LOCK_BLEND, MIN_CONTACT

        d = CleanOptions()
        parser.add_argument("--foot-lock", type=_on_off, default=None, metavar="on|off",
                            help="clean the motion: ground, contacts, foot locking "
                                 "(default: on; off with --smooth butterworth = the "
                                 "behaviour before the clean-up)")
        parser.add_argument("--penetration-fix", type=_on_off, default=d.penetration_fix,
                            metavar="on|off", help="keep the feet above the ground (default: on)")
        parser.add_argument("--fix-flags", default="", metavar="KIND=FIX,...",
                            help=f"repair QA flags before filtering, FIX one of {', '.join(FIXES)}"
                                 " (default: none)")
        parser.add_argument("--contact-height", type=CONTACT_HEIGHT.arg, default=d.contact_height,
                            metavar="M", help=CONTACT_HEIGHT.help(
                                f"foot contact height (default: {d.contact_height:g})"))
        parser.add_argument("--contact-speed", type=CONTACT_SPEED.arg, default=d.contact_speed,
                            metavar="M/S", help=CONTACT_SPEED.help(
                                f"foot contact speed (default: {d.contact_speed:g})"))
        parser.add_argument("--min-contact", type=MIN_CONTACT.arg, default=d.min_contact_frames,
                            metavar="FRAMES", help=MIN_CONTACT.help(
                                f"shortest contact (default: {d.min_contact_frames})"))
        parser.add_argument("--lock-blend", type=LOCK_BLEND.arg, default=d.blend_frames,
                            metavar="FRAMES", help=LOCK_BLEND.help(
                                f"frames to blend a foot lock in/out (default: {d.blend_frames})"))
        return parser

    @classmethod
    def from_args(cls, ns, default_on: bool = True) -> "CleanOptions | None":
        """From parsed arguments; None when ``--foot-lock off`` was given (and no
        ``--fix-flags``), or not given and ``default_on`` is False."""
        d = cls()
        g = lambda name, default=None: getattr(ns, name, default)  # noqa: E731
        on = g("foot_lock")
        fixes = g("fix_flags", "") or ""
        if on is None:
            on = default_on
        if not on and not fixes:
            return None
        return cls(foot_lock=bool(on),
                   penetration_fix=bool(g("penetration_fix", d.penetration_fix)),
                   fix_flags=parse_fix_flags(fixes),
                   contact_height=g("contact_height", d.contact_height),
                   contact_speed=g("contact_speed", d.contact_speed),
                   min_contact_frames=g("min_contact", d.min_contact_frames),
                   blend_frames=g("lock_blend", d.blend_frames))


@dataclass
class CleanResult:
    take: object                       # the cleaned retarget.take.Take
    contacts: Contacts | None          # None when locking was skipped
    flags: list = field(default_factory=list)   # cleanup.qa.Flag that remain
    notes: list = field(default_factory=list)   # one line each: what was skipped and why
    raw_flags: list = field(default_factory=list)  # flags found on the raw take


# --------------------------------------------------------------------------- raw source

def source_take(take):
    """The take a cleaned take came from (its ``raw_source_*`` parameters), or the take
    itself when it was never cleaned. Never modifies ``take``."""
    keys = [SOURCE_PREFIX + k for k in take.params]
    if not all(k in take.raw for k in keys):
        return take
    params = {k: np.asarray(take.raw[SOURCE_PREFIX + k], dtype=np.float64) for k in take.params}
    raw = {k: v for k, v in take.raw.items() if not k.startswith(SOURCE_PREFIX)}
    valid = take.raw.get(SOURCE_PREFIX + "valid")
    out = replace(take, params=params, raw=raw, notes=list(take.notes), clean_settings="")
    if valid is not None:
        out = replace(out, valid=np.asarray(valid, bool))
    return out


def settings_json(smoothing, options: "CleanOptions") -> str:
    """The clean-up's settings as the take's ``clean_settings`` text."""
    return json.dumps({"smoothing": smoothing.to_dict(), "clean": options.to_dict()},
                      sort_keys=True)


def settings_of(take):
    """``(Smoothing, CleanOptions)`` a cleaned take was made with, or None (not cleaned).
    Raises RetargetError (one line) for settings that are not valid."""
    from ..smoothing import Smoothing

    text = getattr(take, "clean_settings", "")
    if not text:
        return None
    try:
        d = json.loads(text)
    except ValueError:
        raise RetargetError("the take's clean_settings are not valid JSON") from None
    if not isinstance(d, dict) or set(d) != {"smoothing", "clean"}:
        raise RetargetError("the take's clean_settings must hold 'smoothing' and 'clean'")
    return Smoothing.from_dict(d["smoothing"]), CleanOptions.from_dict(d["clean"])


def _with_source(cleaned, source, smoothing, options):
    raw = dict(cleaned.raw)
    for k, v in source.params.items():
        raw[SOURCE_PREFIX + k] = np.asarray(v).copy()
    raw[SOURCE_PREFIX + "valid"] = np.asarray(source.valid, bool).copy()
    return replace(cleaned, raw=raw, clean_settings=settings_json(smoothing, options))


# --------------------------------------------------------------------------- steps

def feet_visible(take, motion) -> np.ndarray | None:
    """``(T, 4) bool``: the foot points (FOOT_POINTS order) project inside the image in
    valid rows (None: the take has no camera)."""
    if take.focal is None or take.princpt is None or take.image_size is None:
        return None
    p = np.stack([motion.foot_points[k] for k in FOOT_POINTS], 1)        # (T, 4, 3)
    z = p[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = take.focal[0] * p[..., 0] / z + take.princpt[0]
        w = take.focal[1] * p[..., 1] / z + take.princpt[1]
    W, H = float(take.image_size[0]), float(take.image_size[1])
    inside = (z > 0) & (u >= 0) & (u < W) & (w >= 0) & (w < H)
    return inside & np.asarray(motion.valid, bool)[:, None]


def feet_in_view(take, motion) -> float | None:
    """Share of valid rows whose four foot points project inside the image (None: the
    take has no camera)."""
    vis = feet_visible(take, motion)
    v = np.asarray(motion.valid, bool)
    if vis is None:
        return None
    return float(vis[v].all(axis=1).mean()) if v.any() else 0.0


def smooth_contact_aware(take, smoothing, breaks=()):
    """``smoothing.smooth_take``, but the root and body filtered separately between
    ``breaks`` (row indices of impacts); hands and face over the whole take."""
    from ..smoothing import MIN_RUN, REGIONS, smooth_params, smooth_take

    out = smooth_take(take, smoothing)
    if smoothing.method == "none" or not len(breaks):
        return out
    fs = float(take.fps) / take.stride
    edges = [0] + sorted(int(b) for b in breaks if 0 < b < take.num_frames) + [take.num_frames]
    keys = [k for r in ("root", "body") for k in REGIONS[r] if k in take.params]
    params = {k: np.array(out.params[k], dtype=np.float64) for k in keys}
    sub = smoothing.with_(hands_hz=None, face_hz=None)
    for a, b in zip(edges[:-1], edges[1:]):
        if b - a < 2 * MIN_RUN:
            continue   # too short to filter alone: keep the whole-take result
        seg = {k: np.asarray(take.params[k])[a:b] for k in keys}
        sm = smooth_params(seg, take.valid[a:b], fs, sub)
        for k in keys:
            params[k][a:b] = sm[k]
    return out.with_params(params)


def strike_frames(contacts: Contacts) -> list[int]:
    """Rows where a foot's contact starts (heel strikes / landings)."""
    out = []
    for side in ("left", "right"):
        out += [a for a, _ in runs(contacts.foot(side)) if a > 0]
    return sorted(set(out))


def _find_contacts_of(take, model, options):
    motion = take_motion(take, model)
    why = ground_problem(motion)
    if why is not None:
        return motion, None, why
    vis = feet_visible(take, motion)
    share = feet_in_view(take, motion)
    if share is not None and share < FEET_IN_VIEW_MIN:
        return motion, None, (f"the feet are in view in only {share:.0%} of the frames "
                              "(an upper-body shot?); foot locking skipped")
    seen = motion if vis is None else replace(motion, valid=motion.valid & vis.all(axis=1))
    ground = estimate_ground(seen)
    if ground is None:
        return motion, None, "no ground found (the feet never rest); foot locking skipped"
    contacts = find_contacts(motion, ground, options)
    if vis is not None:  # a foot outside the image is a guess: never lock it
        contacts = replace(contacts, contact=contacts.contact & vis)
    return motion, contacts, None


def clean_take(take, model, smoothing, options: CleanOptions) -> CleanResult:
    """The cleaned copy of ``take`` (see the module docstring); ``model``: an SmplxModel.

    Raises RetargetError (one line) for a take that cannot be cleaned at all (neither
    SMPL-X nor SMPL, a model of the other body, no valid frame); everything else that
    is skipped is in ``notes``. An SMPL take (I2L-MeshNet) needs an SMPL model.
    """
    from ..smoothing import Smoothing

    if not isinstance(options, CleanOptions):
        raise RetargetError(f"clean options must be CleanOptions, got {type(options).__name__}")
    if not isinstance(smoothing, Smoothing):
        raise RetargetError(f"smoothing must be a Smoothing, got {type(smoothing).__name__}")
    from ..smplx_model import SmplxModel
    from .kinematics import model_problem

    if take.body_model not in ("smplx", "smpl"):
        raise RetargetError(f"motion clean-up needs an SMPL-X or SMPL take, this one is "
                            f"{take.body_model!r}")
    if not isinstance(model, SmplxModel):
        raise RetargetError(f"motion clean-up needs an SMPL-X or SMPL body model, got "
                            f"{type(model).__name__}")
    why = model_problem(take, model)
    if why is not None:
        raise RetargetError(why)
    source = source_take(take)
    if not np.asarray(source.valid, bool).any():
        raise RetargetError("the take has no valid frames: nothing to clean")
    notes: list[str] = []
    work = replace(source, raw={k: v for k, v in source.raw.items()
                                if not k.startswith(SOURCE_PREFIX)}, notes=list(source.notes))
    # 1. QA on the raw take, fixes before filtering
    qa = _qa()
    raw_flags: list = []
    if qa is not None:
        raw_motion = take_motion(work, model)
        raw_flags = list(qa.find_flags(work, raw_motion))
        if options.fix_flags:
            work = qa.apply_fixes(work, raw_flags, dict(options.fix_flags))
    elif options.fix_flags:
        notes.append("QA fixes asked for, but the QA pass is not available; skipped")
    # 2. smoothing, split at the foot strikes of a first contact pass
    smoothed = work.with_params({}) if smoothing.method == "none" else None
    contacts = None
    if smoothed is None:
        first = smooth_contact_aware(work, smoothing)
        if options.split_at_contacts and options.foot_lock:
            _, c0, _ = _find_contacts_of(first, model, options)
            breaks = strike_frames(c0) if c0 is not None else []
            smoothed = smooth_contact_aware(work, smoothing, breaks) if breaks else first
        else:
            smoothed = first
    cleaned = smoothed
    # 3-4. ground, contacts, foot locking
    if options.foot_lock:
        motion, contacts, why = _find_contacts_of(smoothed, model, options)
        if why is not None:
            notes.append(why)
        elif not contacts.contact.any():
            notes.append("no foot contacts found; foot locking skipped")
        else:
            from .footlock import lock_feet

            params, _ = lock_feet(smoothed.params, motion, contacts, model,
                                  blend_frames=options.blend_frames,
                                  penetration_fix=options.penetration_fix,
                                  root_correction=options.root_correction)
            cleaned = smoothed.with_params(params)
    # 5. the flags that remain
    flags: list = []
    if qa is not None:
        flags = list(qa.find_flags(cleaned, take_motion(cleaned, model), contacts))
    cleaned = _with_source(cleaned, source, smoothing, options)
    cleaned.notes = list(cleaned.notes) + notes
    return CleanResult(take=cleaned, contacts=contacts, flags=flags, notes=notes,
                       raw_flags=raw_flags)
