# SPDX-License-Identifier: GPL-3.0-or-later
"""The numeric options of every command, each with ONE validator and a documented range.

The same object checks a value wherever it comes from: ``argparse`` (``type=OPT.arg``,
so a bad value stops the command before any work, with one line), the estimator
worker's JSON requests (``OPT.check(value)``) and the add-on's properties (their
``min``/``max`` come from ``OPT.low``/``OPT.high``). NaN, infinities, booleans and
values outside the range are refused with a message that says the range.

======================  =====  =========================================  ==============
option                  type   range                                      commands
======================  =====  =========================================  ==============
``--fps``               float  0.01 .. 1000 frames per second             estimate [1]_
``--fov``               float  1 .. 170 degrees (Blender's lens >= 1 mm)  estimate [1]_
``--batch``             int    1 .. 1024 crops per forward pass           estimate [1]_
``--detect-every``      int    0 .. 1,000,000 frames (0 = when lost)      estimate [1]_
``--min-score``         float  above 0 .. 1                               estimate [1]_
``--person N``          int    1 .. 10,000 (or ``all`` / ``auto``)        estimate [1]_
``--frames A:B:STEP``   int    A, B 0 .. 2**31-1; STEP 1 .. 2**31-1       estimate [1]_
``--box X,Y,W,H``       float  X, Y -1e6 .. 1e6; W, H above 1 .. 1e6 px   estimate [1]_
``--smooth-REGION``     float  0 = off, or 0.01 .. 500 Hz                 convert, batch
``--workers``           int    1 .. 256                                   batch
``--retarget-workers``  int    1 .. 256                                   batch
======================  =====  =========================================  ==============

.. [1] and ``convert`` (footage), ``batch``, the worker's ``estimate`` request and the
   add-on's sidebar.

``export``, ``weights``, ``doctor`` and ``make-standins`` have no numeric options.
Frame rate and FOV ranges keep Blender's camera and timing exact (``render.fps``
1 .. 32767 with ``fps_base``; a lens under 1 mm would be clamped); the rest bound
the work a typo can start.

Pure Python; never imports bpy, torch or another part of the package.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from .errors import P2PError

MAX_FRAME_NUMBER = 2**31 - 1   # a footage frame number (``--frames`` A, B and STEP)


class OptionError(P2PError, ValueError):
    """A numeric option (or a worker request field) out of its range; one line.

    ``reason``: the message without the option and value (for argparse).
    """

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason or message


def _fail(label: str, value, reason: str):
    raise OptionError(f"{label} {_show(value)}: {reason}", reason)


def _fmt(v) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return f"{int(v):,}" if abs(v) >= 10_000 else str(int(v))
    return f"{v:,}" if isinstance(v, int) and abs(v) >= 10_000 else f"{v:g}"


@dataclass(frozen=True)
class NumberOption:
    """One numeric option: its flag, type and closed range ``[low, high]``.

    ``low_open``: the low end itself is excluded (``above 0``). ``zero_off``: 0 is
    also allowed and means "off" (smoothing cutoffs).
    """

    flag: str
    kind: type            # int or float
    low: float
    high: float
    unit: str = ""
    low_open: bool = False
    zero_off: bool = False

    @property
    def range_text(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        low = f"above {_fmt(self.low)}" if self.low_open else _fmt(self.low)
        text = f"{low} .. {_fmt(self.high)}{unit}"
        if self.zero_off:
            text = f"0 = off, or {text}"
        return text

    def _convert(self, value):
        if isinstance(value, bool) or value is None:
            raise ValueError
        if self.kind is int:
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError
                return int(value)
            if isinstance(value, str):
                text = value.strip()
                if len(text) > 40:
                    raise ValueError
                return int(text, 10)
            if hasattr(value, "__index__"):
                return int(value.__index__())
            raise ValueError
        if isinstance(value, str):
            text = value.strip()
            if len(text) > 40:
                raise ValueError
            return float(text)
        if isinstance(value, (int, float)) or hasattr(value, "__float__"):
            return float(value)
        raise ValueError

    def problem(self, value):
        """``(converted value, None)`` or ``(None, reason)``; the reason says the range."""
        what = "a whole number" if self.kind is int else "a number"
        try:
            v = self._convert(value)
        except (ValueError, TypeError, OverflowError):
            return None, f"expected {what} ({self.range_text})"
        if isinstance(v, float) and not math.isfinite(v):
            return None, f"not a finite number ({self.range_text})"
        if self.zero_off and v == 0:
            return v, None
        too_low = v <= self.low if self.low_open else v < self.low
        if too_low or v > self.high:
            return None, f"out of range ({self.range_text})"
        return v, None

    def check(self, value, label: str | None = None):
        """The value as ``kind``; raises :class:`OptionError` (one line) when it is bad."""
        v, why = self.problem(value)
        if why is not None:
            _fail(label or self.flag, value, why)
        return v

    def check_optional(self, value, label: str | None = None):
        """Like :meth:`check`, but ``None`` (and ``""``) mean "not given" and pass as None."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return self.check(value, label)

    def arg(self, text: str):
        """``argparse`` ``type=``: argparse prints ``argument --flag: <reason>`` on one line."""
        v, why = self.problem(text)
        if why is not None:
            raise argparse.ArgumentTypeError(f"{why}, got {_show(text)}")
        return v

    def help(self, text: str) -> str:
        """``text`` with the range appended, for ``--help``."""
        return f"{text} [{self.range_text}]"


def _show(value) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


FPS = NumberOption("--fps", float, 0.01, 1000.0, "frames per second")
FOV = NumberOption("--fov", float, 1.0, 170.0, "degrees")
BATCH = NumberOption("--batch", int, 1, 1024, "crops")
DETECT_EVERY = NumberOption("--detect-every", int, 0, 1_000_000, "frames")
MIN_SCORE = NumberOption("--min-score", float, 0.0, 1.0, low_open=True)
CUTOFF_HZ = NumberOption("--smooth-*", float, 0.01, 500.0, "Hz", zero_off=True)
WORKERS = NumberOption("--workers", int, 1, 256)
RETARGET_WORKERS = NumberOption("--retarget-workers", int, 1, 256)
PERSON = NumberOption("--person", int, 1, 10_000)
BOX_XY = NumberOption("--box", float, -1e6, 1e6, "pixels")
BOX_WH = NumberOption("--box", float, 1.0, 1e6, "pixels", low_open=True)
# Motion clean-up (retarget.cleanup.clean.CleanOptions, Smoothing.one_euro_beta).
ONE_EURO_BETA = NumberOption("--smooth-beta", float, 0.0, 1000.0, "Hz per unit/s")
CONTACT_HEIGHT = NumberOption("--contact-height", float, 0.001, 1.0, "m")
CONTACT_SPEED = NumberOption("--contact-speed", float, 0.01, 10.0, "m/s")
MIN_CONTACT = NumberOption("--min-contact", int, 1, 1000, "frames")
LOCK_BLEND = NumberOption("--lock-blend", int, 0, 100, "frames")

ALL = {o.flag: o for o in (FPS, FOV, BATCH, DETECT_EVERY, MIN_SCORE, CUTOFF_HZ, WORKERS,
                           RETARGET_WORKERS, PERSON)}


# --------------------------------------------------------------------------- text options

def on_off(text: str) -> bool:
    """argparse ``type=`` of an on/off switch."""
    t = str(text).lower()
    if t in ("on", "yes", "true", "1"):
        return True
    if t in ("off", "no", "false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected on or off, got {text!r}")


def check_person(value, label: str = "--person") -> str:
    """``auto``, ``all`` or a person number 1 .. 10,000 -> its canonical text."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return "auto"
    if isinstance(value, str) and value.strip().lower() == "all":
        return "all"
    v, why = PERSON.problem(value)
    if why is not None:
        _fail(label, value, f"use auto, all or a person number ({PERSON.range_text})")
    return str(v)


def check_frames(value, label: str = "--frames") -> str | None:
    """``A:B:STEP`` (each part optional; ``A`` alone = that frame) -> the text, or None.

    A and B are footage frame numbers 0 .. 2**31-1, B after A, STEP 1 .. 2**31-1.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        _fail(label, value, "expected text A:B:STEP")
    s = value.strip()
    if s in ("", ":", "::"):
        return s or None
    parts = s.split(":")
    if len(parts) > 3 or len(s) > 64:
        _fail(label, value, "expected A:B:STEP")
    vals = []
    for p in parts:
        p = p.strip()
        if not p:
            vals.append(None)
            continue
        if not (p.isascii() and p.isdigit()):
            _fail(label, value, f"A, B and STEP must be whole numbers 0 .. "
                                f"{MAX_FRAME_NUMBER:,} (frames count from 0)")
        n = int(p)
        if n > MAX_FRAME_NUMBER:
            _fail(label, value, f"{n} is out of range (frame numbers 0 .. "
                                f"{MAX_FRAME_NUMBER:,})")
        vals.append(n)
    if len(vals) == 3 and vals[2] is not None and vals[2] < 1:
        _fail(label, value, f"STEP must be 1 .. {MAX_FRAME_NUMBER:,}")
    if len(vals) >= 2 and vals[1] is not None and vals[1] <= (vals[0] or 0):
        _fail(label, value, "the end B must be after the start A")
    return s


def check_box(value, label: str = "--box"):
    """``X,Y,W,H`` (text or 4 numbers) -> the value as given; None passes."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        parts = value.replace(" ", "").split(",")
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        _fail(label, value, "expected X,Y,W,H in pixels")
    if len(parts) != 4:
        _fail(label, value, "expected four numbers X,Y,W,H in pixels")
    for i, p in enumerate(parts):
        opt = BOX_XY if i < 2 else BOX_WH
        _, why = opt.problem(p)
        if why is not None:
            name = "XYWH"[i]
            _fail(label, value, f"{name} {why}")
    return value


def arg_type(check):
    """An argparse ``type=`` from a text checker above (one-line argparse message)."""
    def parse(text):
        try:
            check(text)
        except OptionError as exc:
            raise argparse.ArgumentTypeError(f"{exc.reason}, got {_show(text)}") from None
        return text
    parse.__name__ = getattr(check, "__name__", "value").replace("check_", "")
    return parse
