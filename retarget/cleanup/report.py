# SPDX-License-Identifier: GPL-3.0-or-later
"""The quality report of a take: JSON, a one-screen text summary and a PNG plot (numpy;
Pillow for the PNG, imported when a plot is drawn).

``build_report(take, model=None, motion=None, contacts=None, flags=None)`` measures a
take as it is (run it on a cleaned take to see the clean-up's result):

* frames: rows, valid rows;
* confidence: the estimator's per-row confidence (``raw_score``; see ``qa``);
* jitter: mean acceleration of the 22 body joints, ``|p[t+1] - 2 p[t] + p[t-1]|``
  over rows whose neighbours are valid, in mm/frame² (frame = a row of the take);
* foot skate: how far a foot point (heel or toes) moves along the ground from one
  row to the next while it is in contact on both, mean over contact rows, mm;
* penetration: how far the lowest foot point is below the ground, mean over
  valid rows and the maximum, mm;
* flags: ``qa.find_flags`` (counted per kind, rows flagged, and every span).

Positions (jitter, skate, penetration, contacts) need the SMPL-X model; without
it they are ``null`` and a note says so. Without a ground (too few frames, feet
never resting, upper-body shot) skate and penetration are ``null``.

JSON (``REPORT_FORMAT`` = ``"p2p-qa/1"``; a reader checks ``format``; fields are
only ever added within a version)::

    {"format": "p2p-qa/1",
     "take": {"path", "source", "estimator", "standin", "rows", "fps", "stride",
              "first_frame", "last_frame"},
     "measured_positions": bool,          # the SMPL-X model was there
     "frames": {"rows": int, "valid": int, "valid_fraction": float},
     "confidence": {"mean": float|null, "min": float|null},
     "jitter_mm_per_frame2": float|null,
     "foot_skate_mm_per_contact_frame": float|null,
     "contact_frames": {"left": int, "right": int}|null,
     "penetration_mm": {"mean": float, "max": float,
                        "rows": int}|null,  # rows more than PENETRATION_COUNT_M below
     "ground": {"normal": [x, y, z], "offset": float}|null,   # camera frame, metres
     "flags": {"counts": {kind: int},      # every kind of qa.FLAG_KINDS
               "rows": {kind: int},        # rows covered by that kind's flags
               "spans": [{"kind", "start", "end", "frame_start", "frame_end",
                          "severity", "reason", "joint"}]},
     "notes": [str]}

``start``/``end`` are rows of the take (end exclusive), ``frame_start``/
``frame_end`` the footage frame numbers of the first and last row (inclusive).
The PNG (``render_plot``) shows, over time: confidence, jitter, contacts per
foot and the flags as coloured spans.

``converted_report(take, model, convert_options)`` is the report ``batch`` writes
beside each take (``report_paths``: ``clip.qa.json``, ``clip.qa.png``): figures
of the motion as converted (smoothed, or cleaned when the options carry a
clean-up), flags of the estimator's take before smoothing (plus the foot skate
and penetration left after conversion). ``summary_csv`` / ``write_summary``: a
folder's table, one row per report (``SUMMARY_COLUMNS``). Files are written with
``common.files.atomic_write`` (never half a file; an existing file only with
``replace``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import qa

REPORT_FORMAT = "p2p-qa/1"
BODY_JOINTS = 22           # pelvis .. right_wrist: the joints jitter is measured on
PENETRATION_COUNT_M = 0.005  # rows whose lowest foot point is deeper than this are counted
# The order flags are listed in the text: estimation faults first, then the rest.
TEXT_ORDER = ("wrist_flip", "lr_swap", "dropout", "reprojection", "joint_limit",
              "low_confidence", "foot_skate", "penetration")
SIDES = ("left", "right")
# Flag colours of the plot (RGB), one per kind.
KIND_COLOURS = {
    "dropout": (90, 90, 90), "low_confidence": (160, 160, 40), "wrist_flip": (220, 60, 60),
    "lr_swap": (150, 60, 200), "joint_limit": (230, 140, 20), "foot_skate": (30, 130, 220),
    "penetration": (20, 170, 140), "reprojection": (200, 80, 160),
}


@dataclass
class QualityReport:
    """The report's JSON values (``data``), the per-row series the plot draws and the flags."""

    data: dict
    confidence: np.ndarray | None = None        # (T,) in [0, 1], NaN unknown
    jitter: np.ndarray | None = None            # (T,) mm/frame², NaN where not measured
    contact: np.ndarray | None = None           # (T, 2) bool: left, right foot
    flags: list = field(default_factory=list)   # qa.Flag
    times: np.ndarray | None = None             # (T,) seconds from the first row

    def to_json(self) -> str:
        return json.dumps(self.data, indent=1, allow_nan=False)


def _num(x, digits: int = 2):
    if x is None or not np.isfinite(x):
        return None
    return round(float(x), digits)


def joint_jitter(joints: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per row: mean over the body joints of ``|p[t+1] - 2 p[t] + p[t-1]|`` (metres),
    NaN where the row or a neighbour is not valid. joints ``(T, J, 3)`` -> ``(T,)``."""
    T = joints.shape[0]
    out = np.full(T, np.nan)
    if T < 3:
        return out
    p = np.asarray(joints, float)[:, :BODY_JOINTS]
    acc = np.linalg.norm(p[2:] - 2 * p[1:-1] + p[:-2], axis=-1).mean(axis=1)
    v = np.asarray(valid, bool)
    ok = v[2:] & v[1:-1] & v[:-2]
    out[1:-1] = np.where(ok, acc, np.nan)
    return out


def foot_skate(motion, contacts) -> tuple[float | None, dict]:
    """(mean slide along the ground per contact row in metres, contact rows per side)."""
    contact = np.asarray(contacts.contact, bool)
    normal = np.asarray(contacts.ground.normal, float)
    v = np.asarray(motion.valid, bool)
    slides = []
    for i, f in enumerate(contacts.feet):
        p = np.asarray(motion.foot_points[f], float)
        step = np.diff(p, axis=0)
        step -= np.outer(step @ normal, normal)
        both = contact[1:, i] & contact[:-1, i] & v[1:] & v[:-1]
        slides.append(np.linalg.norm(step, axis=1)[both])
    s = np.concatenate(slides) if slides else np.zeros(0)
    rows = {side: int(contacts.foot(side).sum()) for side in SIDES}
    return (float(s.mean()) if s.size else None), rows


def penetration(motion, ground) -> dict:
    """Depth of the lowest foot point below the ground over valid rows (metres)."""
    v = np.asarray(motion.valid, bool)
    h = np.min([ground.height(np.asarray(p, float)) for p in motion.foot_points.values()],
               axis=0)
    depth = np.maximum(0.0, -h[v])
    return {"mean": float(depth.mean()) if depth.size else 0.0,
            "max": float(depth.max()) if depth.size else 0.0,
            "rows": int((depth > PENETRATION_COUNT_M).sum())}


def find_contacts_for_report(take, motion, model):
    """(contacts or None, note or None) with the clean-up's default contact settings."""
    from .clean import CleanOptions, _find_contacts_of

    _, contacts, why = _find_contacts_of(take, model, CleanOptions())
    return contacts, why


def build_report(take, model=None, *, motion=None, contacts=None, flags=None,
                 notes=()) -> QualityReport:
    """The report of ``take`` as it is; see the module docstring.

    model: a ``SmplxModel`` (positions are measured with it); motion / contacts /
    flags: already computed ones (else computed here: motion from ``model``,
    contacts with the clean-up's default settings, flags by ``qa.find_flags``).
    """
    notes = list(notes)
    T = take.num_frames
    valid = np.asarray(take.valid, bool)
    if motion is None and model is not None:
        from .kinematics import take_motion

        motion = take_motion(take, model)
    if motion is not None and contacts is None and model is not None:
        contacts, why = find_contacts_for_report(take, motion, model)
        if why:
            notes.append(why)
    if motion is None:
        notes.append("no SMPL-X model: jitter, foot skate and penetration not measured")
    if flags is None:
        flags = qa.find_flags(take, motion, contacts)
    conf = qa._confidence(take)
    jit = joint_jitter(motion.joints, valid) if motion is not None else None
    skate, contact_rows = (foot_skate(motion, contacts) if contacts is not None
                           else (None, None))
    pen = penetration(motion, contacts.ground) if contacts is not None else None
    fi = np.asarray(take.frame_index)
    counts = {k: 0 for k in qa.FLAG_KINDS}
    rows = {k: np.zeros(T, bool) for k in qa.FLAG_KINDS}
    spans = []
    for f in flags:
        counts[f.kind] += 1
        rows[f.kind][f.start:f.end] = True
        spans.append(dict(f.to_dict(), frame_start=int(fi[f.start]),
                          frame_end=int(fi[f.end - 1])))
    cv = conf[valid] if conf is not None else np.zeros(0)
    cv = cv[np.isfinite(cv)]
    data = {
        "format": REPORT_FORMAT,
        "take": {"path": str(take.path) if take.path else None, "source": take.source,
                 "estimator": take.estimator, "standin": bool(take.standin), "rows": T,
                 "fps": float(take.fps), "stride": int(take.stride),
                 "first_frame": int(fi[0]), "last_frame": int(fi[-1])},
        "measured_positions": motion is not None,
        "frames": {"rows": T, "valid": int(valid.sum()),
                   "valid_fraction": _num(valid.mean(), 4)},
        "confidence": {"mean": _num(cv.mean(), 3) if cv.size else None,
                       "min": _num(cv.min(), 3) if cv.size else None},
        "jitter_mm_per_frame2": (_num(1000 * np.nanmean(jit))
                                 if jit is not None and np.isfinite(jit).any() else None),
        "foot_skate_mm_per_contact_frame": _num(1000 * skate) if skate is not None else None,
        "contact_frames": contact_rows,
        "penetration_mm": ({"mean": _num(1000 * pen["mean"]), "max": _num(1000 * pen["max"]),
                            "rows": pen["rows"]} if pen is not None else None),
        "ground": contacts.ground.to_dict() if contacts is not None else None,
        "flags": {"counts": counts, "rows": {k: int(m.sum()) for k, m in rows.items()},
                  "spans": spans},
        "notes": notes,
    }
    contact = None
    if contacts is not None:
        contact = np.stack([contacts.foot(s) for s in SIDES], axis=1)
    times = (fi - fi[0]) / float(take.fps)
    return QualityReport(data, confidence=conf, jitter=None if jit is None else 1000 * jit,
                         contact=contact, flags=list(flags), times=times)


POSITION_KINDS = ("foot_skate", "penetration")


def converted_report(take, model, options) -> QualityReport:
    """The report of ``take`` as ``convert`` puts it on the rig (``options``: its
    ``ConvertOptions``): the figures are measured on the converted motion (after the
    clean-up when ``options.clean`` is set, else after the smoothing); the flags are
    the QA pass on the estimator's take as it is (where estimation went wrong), plus
    the foot skate and penetration left in the converted motion."""
    from ..smoothing import smooth_take
    from .kinematics import take_motion

    clean = getattr(options, "clean", None)
    if clean is not None:
        from .clean import clean_take

        res = clean_take(take, model, options.smoothing, clean)
        out, contacts, notes = res.take, res.contacts, list(res.notes)
        raw_flags = list(res.raw_flags)
        motion = take_motion(out, model)
        later = [f for f in res.flags if f.kind in POSITION_KINDS]
    else:
        out, notes = smooth_take(take, options.smoothing), []
        raw_flags = qa.find_flags(take, take_motion(take, model))
        motion = take_motion(out, model)
        contacts, why = find_contacts_for_report(out, motion, model)
        if why:
            notes.append(why)
        later = [f for f in qa.find_flags(out, motion, contacts) if f.kind in POSITION_KINDS]
    flags = sorted([f for f in raw_flags if f.kind not in POSITION_KINDS] + later,
                   key=qa.flag_order)
    return build_report(out, model, motion=motion, contacts=contacts, flags=flags, notes=notes)


def report_paths(take_path) -> tuple[Path, Path]:
    """A take's report files next to it: ``clip.take.npz`` -> ``clip.qa.json``,
    ``clip.qa.png`` (``clip.npz`` likewise)."""
    p = Path(take_path)
    name = p.name
    for suffix in (".take.npz", ".npz"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return p.with_name(name + ".qa.json"), p.with_name(name + ".qa.png")


SUMMARY_COLUMNS = ("clip", "take", "rows", "valid", "valid_pct", "jitter_mm_f2",
                   "skate_mm", "penetration_mean_mm", "penetration_max_mm") + qa.FLAG_KINDS + (
                   "report",)


def summary_csv(entries, base=None) -> str:
    """A folder's summary table (CSV text, one row per take report, ``SUMMARY_COLUMNS``):
    ``entries``: ``(clip name, report JSON path)``, paths written relative to ``base``
    when they are below it; a report that cannot be read is a row with its path and
    empty figures."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SUMMARY_COLUMNS)
    for clip, path in entries:
        path = Path(path)
        shown = path
        if base is not None:
            try:
                shown = path.relative_to(base)
            except ValueError:
                pass
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            if d.get("format") != REPORT_FORMAT:
                raise ValueError(d.get("format"))
        except (OSError, ValueError, AttributeError):
            w.writerow([clip, "", *[""] * (len(SUMMARY_COLUMNS) - 3), shown.as_posix()])
            continue
        fr, pen = d["frames"], d.get("penetration_mm") or {}
        take = Path(d["take"]["path"]).name if d["take"].get("path") else ""
        blank = lambda x: "" if x is None else x  # noqa: E731
        w.writerow([clip, take, fr["rows"], fr["valid"], round(100 * fr["valid_fraction"], 1),
                    blank(d.get("jitter_mm_per_frame2")),
                    blank(d.get("foot_skate_mm_per_contact_frame")),
                    blank(pen.get("mean")), blank(pen.get("max")),
                    *[d["flags"]["counts"].get(k, 0) for k in qa.FLAG_KINDS], shown.as_posix()])
    return buf.getvalue()


def write_summary(entries, path) -> Path:
    """Write ``summary_csv(entries)`` atomically to ``path``, replacing the last one (left
    as it is when its text is the same: a run that changed nothing changes no file)."""
    from ...common.files import atomic_write

    text = summary_csv(entries, Path(path).parent)
    try:
        if Path(path).read_text(encoding="utf-8") == text:
            return Path(path)
    except (OSError, UnicodeDecodeError):
        pass
    return atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"),
                        replace=True)


# --------------------------------------------------------------------------- text

def _fmt(x, unit: str) -> str:
    return "not measured" if x is None else f"{x:.1f} {unit}"


def report_text(rep: QualityReport, name: str | None = None, max_spans: int = 12) -> str:
    """A one-screen summary (about 25 lines at most); flagged spans listed by kind in
    ``TEXT_ORDER`` (estimation faults first), then time."""
    d = rep.data
    t, fr = d["take"], d["frames"]
    secs = t["rows"] * t["stride"] / t["fps"]
    title = name or (Path(t["path"]).name if t["path"] else t["source"] or "take")
    lines = [f"QA {title}: {fr['rows']} rows at {t['fps']:g} fps ({secs:.1f} s), "
             f"{fr['valid']} valid ({100 * fr['valid_fraction']:.1f} %)"
             + ("  [stand-in model: motion is junk]" if t["standin"] else "")]
    c = d["confidence"]
    if c["mean"] is not None:
        lines.append(f"  confidence   mean {c['mean']:.2f}, min {c['min']:.2f}")
    lines.append(f"  jitter       {_fmt(d['jitter_mm_per_frame2'], 'mm/frame²')}"
                 + ("  (mean body-joint acceleration)" if d["jitter_mm_per_frame2"] is not None
                    else ""))
    cf, skate = d["contact_frames"], d["foot_skate_mm_per_contact_frame"]
    lines.append(f"  foot skate   {_fmt(skate, 'mm per contact frame')}"
                 + (f"  (contact frames: left {cf['left']}, right {cf['right']})" if cf else ""))
    p = d["penetration_mm"]
    lines.append("  penetration  " + ("not measured" if p is None else
                                      f"mean {p['mean']:.1f} mm, max {p['max']:.1f} mm "
                                      f"({p['rows']} rows more than "
                                      f"{1000 * PENETRATION_COUNT_M:g} mm below the ground)"))
    counts = {k: n for k, n in d["flags"]["counts"].items() if n}
    if counts:
        import textwrap

        lines += textwrap.wrap(", ".join(f"{k} {n} ({d['flags']['rows'][k]} rows)"
                                         for k, n in counts.items()), width=96,
                               initial_indent="  flags        ",
                               subsequent_indent=" " * 15)
        spans = sorted(d["flags"]["spans"], key=lambda s: (TEXT_ORDER.index(s["kind"]),
                                                          s["start"]))
        for s in spans[:max_spans]:
            fr_text = (f"frame {s['frame_start']}" if s["frame_start"] == s["frame_end"]
                       else f"frames {s['frame_start']}-{s['frame_end']}")
            lines.append(f"    {fr_text:<18} {s['kind']:<14} {s['severity']:<7} {s['reason']}")
        if len(spans) > max_spans:
            lines.append(f"    ... and {len(spans) - max_spans} more (see the JSON report)")
    else:
        lines.append("  flags        none")
    for n in d["notes"]:
        lines.append(f"  note: {n}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- plot

def _font():
    from PIL import ImageFont

    return ImageFont.load_default()


def render_plot(rep: QualityReport, width: int = 1000):
    """The report over time as a ``PIL.Image`` (RGB): confidence, jitter, contacts per
    foot, flags as coloured spans."""
    from PIL import Image, ImageDraw

    T = rep.data["frames"]["rows"]
    kinds = [k for k in qa.FLAG_KINDS if rep.data["flags"]["counts"][k]]
    left, right, top = 110, 20, 28
    conf_h, jit_h, lane = 60, 90, 14
    heights = [conf_h, jit_h, 2 * lane + 4, max(1, len(kinds)) * lane + 4]
    gap = 14
    height = top + sum(heights) + gap * len(heights) + 30
    img = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    font = _font()
    plot_w = width - left - right
    times = rep.times if rep.times is not None else np.arange(T, dtype=float)
    span_t = max(float(times[-1]) if T else 1.0, 1e-9)

    def x_of(t):
        return left + (np.asarray(t, float) / span_t) * plot_w

    def x_row(r):  # left edge of row r (rows end at the next row)
        r = np.clip(r, 0, T)
        step = plot_w / max(T, 1)
        return left + r * step

    title = rep.data["take"]["path"] or rep.data["take"]["source"] or "take"
    draw.text((8, 6), f"QA {Path(str(title)).name}: {T} rows, "
              f"{rep.data['frames']['valid']} valid", fill=(0, 0, 0), font=font)
    y = top

    def panel(h, label):
        draw.rectangle([left, y, left + plot_w, y + h], outline=(180, 180, 180))
        if label:
            draw.text((8, y + 2), label, fill=(0, 0, 0), font=font)

    def line(series, lo, hi, h, colour):
        s = np.asarray(series, float)
        ok = np.isfinite(s)
        if not ok.any() or hi <= lo:
            return
        ys = y + h - (np.clip(s, lo, hi) - lo) / (hi - lo) * (h - 2) - 1
        xs = x_row(np.arange(T) + 0.5)
        for a, b in qa.runs(ok):
            pts = list(zip(xs[a:b].tolist(), ys[a:b].tolist()))
            if len(pts) == 1:
                draw.point(pts, fill=colour)
            else:
                draw.line(pts, fill=colour, width=1)

    # confidence
    panel(conf_h, "confidence")
    if rep.confidence is not None:
        line(rep.confidence, 0.0, 1.0, conf_h, (40, 110, 40))
        draw.text((left + plot_w - 30, y + 2), "0..1", fill=(120, 120, 120), font=font)
    else:
        draw.text((left + 8, y + conf_h // 2 - 5), "no confidence in this take",
                  fill=(120, 120, 120), font=font)
    y += conf_h + gap
    # jitter
    panel(jit_h, "jitter mm/f^2")
    if rep.jitter is not None and np.isfinite(rep.jitter).any():
        hi = float(np.nanpercentile(rep.jitter, 99)) * 1.2 or 1.0
        line(rep.jitter, 0.0, hi, jit_h, (30, 60, 200))
        draw.text((left + plot_w - 70, y + 2), f"0..{hi:.0f}", fill=(120, 120, 120), font=font)
    else:
        draw.text((left + 8, y + jit_h // 2 - 5), "not measured (no SMPL-X model)",
                  fill=(120, 120, 120), font=font)
    y += jit_h + gap
    # contacts
    panel(2 * lane + 4, "contacts")
    for i, side in enumerate(SIDES):
        yy = y + 2 + i * lane
        draw.text((left - 40, yy), side[0].upper(), fill=(0, 0, 0), font=font)
        if rep.contact is not None:
            for a, b in qa.runs(rep.contact[:, i]):
                draw.rectangle([x_row(a), yy + 2, max(x_row(b) - 1, x_row(a)), yy + lane - 2],
                               fill=(60, 60, 60))
    if rep.contact is None:
        draw.text((left + 8, y + lane // 2), "not measured", fill=(120, 120, 120), font=font)
    y += 2 * lane + 4 + gap
    # flags
    panel(max(1, len(kinds)) * lane + 4, "" if kinds else "flags")  # (kinds label the lanes)
    if not kinds:
        draw.text((left + 8, y + 2), "none", fill=(120, 120, 120), font=font)
    for i, kind in enumerate(kinds):
        yy = y + 2 + i * lane
        colour = KIND_COLOURS[kind]
        draw.text((8, yy), kind[:16], fill=colour, font=font)
        for f in rep.flags:
            if f.kind == kind:
                draw.rectangle([x_row(f.start), yy + 2, max(x_row(f.end) - 1, x_row(f.start)),
                                yy + lane - 2], fill=colour)
    y += max(1, len(kinds)) * lane + 4 + gap
    # time axis
    step = _tick_step(span_t)
    for t in np.arange(0.0, span_t + 1e-9, step):
        x = float(x_of(t))
        draw.line([(x, y - gap + 2), (x, y - gap + 6)], fill=(0, 0, 0))
        draw.text((x - 8, y - gap + 8), f"{t:g}s", fill=(0, 0, 0), font=font)
    return img


def _tick_step(seconds: float) -> float:
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600):
        if seconds / step <= 12:
            return float(step)
    return 7200.0


# --------------------------------------------------------------------------- files

def write_json(rep: QualityReport, path, *, replace: bool = False, numbered: bool = False,
               suffix: str | None = None) -> Path:
    """Write the JSON report atomically; returns the path written (``suffix``: the tail
    kept when numbering, ``.qa.json`` -> ``clip-2.qa.json``)."""
    from ...common.files import atomic_write

    text = rep.to_json() + "\n"
    return atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"),
                        replace=replace, numbered=numbered, suffix=suffix)


def write_plot(rep: QualityReport, path, *, replace: bool = False, numbered: bool = False,
               width: int = 1000, suffix: str | None = None) -> Path:
    """Draw and write the PNG plot atomically; returns the path written."""
    from ...common.files import atomic_write

    img = render_plot(rep, width)
    return atomic_write(Path(path), lambda tmp: img.save(tmp, format="PNG"),
                        replace=replace, numbered=numbered, suffix=suffix)
