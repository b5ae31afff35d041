# SPDX-License-Identifier: GPL-3.0-or-later
"""``p2p-mocap estimate``: images or a video in, take files out.

``add_estimate_arguments(parser)`` adds the options to an argparse (sub)parser;
``run_estimate(args)`` runs it and returns the exit code:

* 0: every selected frame was processed and the take(s) written;
* 1: a problem with the input, the options or the model files (one line on
  stderr, no output file left behind);
* 130 (Ctrl-C) / 143 (SIGTERM): stopped early; a valid take of the frames done
  was written (and the message says so) unless nobody had been estimated yet.

The first Ctrl-C (or SIGTERM) stops after the current batch; a second one stops
at once (the frames done are still written).
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

from ..common.text import format_eta

EXIT_OK, EXIT_FAIL = 0, 1


def add_estimate_arguments(parser: argparse.ArgumentParser, *, io: bool = True
                           ) -> argparse.ArgumentParser:
    """The options of ``p2p-mocap estimate``: INPUT, ``-o``, ``EstimateOptions``'s and
    ``--force``.

    ``io=False`` leaves out INPUT, ``-o``, ``--smplx`` and ``--force``, for a
    command (``convert``) that has its own and estimates footage first. Every number
    is checked when parsed, against its range in ``common.options``.
    """
    from ..common.outputs import output_help
    from .options import EstimateOptions

    if io:
        parser.add_argument("input", nargs="+", metavar="INPUT",
                            help="a video file, an image, several images, or a folder of images "
                                 "(natural sort: 2.png before 10.png)")
        parser.add_argument("-o", "--output", metavar="OUT",
                            help=output_help("the take file to write (.npz; refused if it "
                                         "exists, unless --force)", "next to the input, "
                                         "NAME.take.npz"))
    EstimateOptions.add_arguments(parser, smplx=io)
    if io:
        parser.add_argument("--force", action="store_true",
                            help="replace an existing output file named with -o")
    return parser


class ProgressPrinter:
    """A one-line bar on a terminal; plain lines (at most every ``interval`` s) otherwise."""

    def __init__(self, stream=None, interval: float = 5.0):
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval
        self._last = 0.0
        self._open_line = False
        self._transient = False

    def update(self, p) -> None:
        if p.stage != "estimating":
            if p.stage == "loading" and self.tty:
                # A status line only: cleared on close, so a failing load leaves one line.
                self.stream.write("\rloading the network ...\x1b[K")
                self.stream.flush()
                self._open_line = self._transient = True
            return
        text = (f"{p.done}/{p.total} frames  {p.fps:5.2f} frames/s  ETA {format_eta(p.eta_s)}"
                f"  people {p.people}")
        if self.tty:
            width = 24
            fill = int(width * p.done / max(p.total, 1))
            self.stream.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {text}\x1b[K")
            self.stream.flush()
            self._open_line, self._transient = True, False
        else:
            now = time.monotonic()
            if p.done in (0, p.total) or now - self._last >= self.interval or p.done == 1:
                self._line(f"estimate: {text}", force=True)

    def _line(self, text: str, force: bool = False) -> None:
        self.close()
        self.stream.write(text + "\n")
        self.stream.flush()
        self._last = time.monotonic()

    def close(self) -> None:
        if self._open_line:
            self.stream.write("\r\x1b[K" if self._transient else "\n")
            self.stream.flush()
            self._open_line = False


class _StopSignals:
    """First SIGINT/SIGTERM: ``job.cancel()``; second: KeyboardInterrupt (stop now)."""

    def __init__(self, job, stream):
        self.job, self.stream = job, stream
        self.signum = None
        self._old = {}

    def _handler(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        self.job.cancel()
        name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
        self.stream.write(f"\n{name}: stopping after the current batch and writing the frames "
                          "done (press Ctrl-C again to stop at once)\n")
        self.stream.flush()

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


@dataclass
class EstimateOutcome:
    """What ``estimate_footage`` did: the exit code and the take files written."""

    code: int
    takes: list = field(default_factory=list)


def _error_line(exc: BaseException, err) -> None:
    from ..common.errors import error_line

    print(f"p2p-mocap: error: {error_line(exc)}", file=err)


def run_estimate(args) -> int:
    """Run ``p2p-mocap estimate`` with parsed ``args``; return the exit code."""
    from ..common.errors import P2PError
    from ..common.outputs import resolve_output
    from .options import EstimateOptions
    from .pipeline import TAKE_SUFFIX

    try:
        options = EstimateOptions.from_args(args)
    except P2PError as exc:
        if getattr(args, "debug", False):
            raise
        _error_line(exc, sys.stderr)
        return EXIT_FAIL
    inputs = args.input if len(args.input) > 1 else args.input[0]
    try:  # the -o rule (common.outputs): only a missing folder named with a trailing / is made
        dest = resolve_output(args.output, "", TAKE_SUFFIX, next_to=".", suffixes=(".npz",),
                              what="take file")
    except P2PError as exc:
        _error_line(exc, sys.stderr)
        return EXIT_FAIL
    with dest.folder_made():
        return estimate_footage(inputs, args.output, options, force=args.force,
                                debug=getattr(args, "debug", False)).code


def estimate_footage(inputs, output, options, *, force: bool = False, debug: bool = False,
                     err=None) -> EstimateOutcome:
    """Estimate ``inputs`` into take file(s) at ``output`` with ``EstimateOptions``,
    printing progress, notes and ``wrote PATH`` lines as ``p2p-mocap estimate`` does.
    -> the exit code and the takes written (``convert`` goes on with them)."""
    from ..common.errors import P2PError
    from .pipeline import EstimateJob
    from .sources import SourceError

    err = err or sys.stderr
    printer = ProgressPrinter(err)
    try:
        job = EstimateJob(inputs, output, force=force, **options.job_arguments())
        last = None
        with _StopSignals(job, err) as stop:
            steps = job.steps()
            while True:
                try:
                    for p in steps:
                        last = p.stage
                        printer.update(p)
                    break
                except KeyboardInterrupt:
                    # Arrived outside the job's estimation loop (e.g. while loading or
                    # printing): stop now; the job keeps and writes what is done if it can.
                    job.cancel()
                    if stop.signum is None:
                        stop.signum = signal.SIGINT
    except (P2PError, SourceError, OSError) as exc:  # (P2PError: also a write that failed)
        printer.close()
        if debug:
            raise
        _error_line(exc, err)
        return EstimateOutcome(EXIT_FAIL)
    finally:
        printer.close()
    res = job.result
    takes = list(res.outputs) if res is not None else []
    if last not in ("done", "cancelled"):  # stopped hard before the job could finish
        done = res.outputs if res is not None else []
        for path in done:
            print(f"wrote {path}")
        print(f"stopped before the end: {'the takes above are partial' if done else 'nothing written'}",
              file=err)
        return EstimateOutcome(128 + int(stop.signum or signal.SIGINT), takes)
    for note in res.notes:
        kind = "warning" if note in res.warnings else "note"
        print(f"{kind}: {note}", file=err)
    if res.standin:
        print("WARNING: STAND-IN model files were used: the motion in the take is meaningless "
              "(for tests only)", file=err)
    for path, pid in zip(res.outputs, res.people):
        print(f"wrote {path} (person {pid}: {res.valid_frames.get(pid, 0)} of "
              f"{res.frames_done} frames)")
    if res.cancelled:
        how = "Ctrl-C" if stop.signum in (None, signal.SIGINT) else "SIGTERM"
        if res.outputs:
            print(f"stopped by {how} after {res.frames_done} of {res.frames_total} frames: the "
                  "take above is partial (valid, with the frames done)", file=err)
        else:
            print(f"stopped by {how} after {res.frames_done} of {res.frames_total} frames: "
                  "nobody estimated yet, nothing written", file=err)
        return EstimateOutcome(128 + int(stop.signum or signal.SIGINT), takes)
    if res.seconds > 0:
        short = ""
        if res.frames_announced is not None:
            short = (f"; {res.frames_decoded} of {res.frames_announced} frames announced by "
                     "the container could be decoded (the file may be truncated)")
        print(f"{res.frames_done} frames in {res.seconds:.1f} s{short}", file=err)
    return EstimateOutcome(EXIT_OK, takes)


def main(argv=None) -> int:
    """Stand-alone entry (``python -m pose2pose_mocap.estimator.cli_estimate``)."""
    from ..common.cli_parser import OneLineParser

    parser = OneLineParser(prog="p2p-mocap estimate",
                           description="estimate takes from images or a video")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    add_estimate_arguments(parser)
    return run_estimate(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
