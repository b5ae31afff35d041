# SPDX-License-Identifier: GPL-3.0-or-later
"""``p2p-mocap batch IN_FOLDER -o OUT_FOLDER``: every clip of a folder to take + .blend (+ export).

``add_batch_arguments(parser)`` adds the options to an argparse (sub)parser;
``run_batch(args)`` runs it and returns the exit code:

* 0: every clip is done (or was already up to date);
* 1: at least one clip failed (the others are done; the summary lists the
  reasons), or a problem with the folders or options;
* 130 / 143: stopped by Ctrl-C / SIGTERM (finished clips are kept; re-run to
  finish the rest).

Each converted take gets a quality report next to it (``clip.qa.json`` and
``clip.qa.png``: ``retarget.cleanup.report.converted_report``, the motion as
converted, with or without the clean-up) and the output folder a summary table
of every clip's report, ``qa-summary.csv`` (rewritten at the end of each run from
the reports on disk; a clip that is up to date keeps its report; a ``qa-summary.csv``
the batch did not write is never replaced: a note says so).

Re-running with the same folders skips every clip whose outputs are on disk
as the manifest (``OUT/batch.jsonl``) recorded them, for the same input
content and settings; a changed setting re-runs only the stages it affects
(a new ``--preset`` only exports, new smoothing re-converts without
re-estimating).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

EXIT_OK, EXIT_FAIL = 0, 1


def add_batch_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from ..common import options as opt
    from ..estimator.cli_estimate import add_estimate_arguments
    from ..retarget.export_presets import PRESETS, ROOT_MODES
    from ..retarget.options import ConvertOptions

    parser.add_argument("input", metavar="IN_FOLDER",
                        help="folder of footage: every video file and every folder of images "
                             "(one image sequence) under it is a clip")
    parser.add_argument("-o", "--output", metavar="OUT_FOLDER", required=True,
                        help="output folder, always a folder (as -o OUT/ elsewhere: created "
                             "when missing, with its parents; removed again when the run "
                             "writes nothing); mirrors IN_FOLDER's structure; holds the "
                             "manifest batch.jsonl")
    parser.add_argument("--preset", choices=tuple(PRESETS),
                        help="also export each .blend with this preset (see p2p-mocap export)")
    parser.add_argument("--pattern", metavar="GLOB",
                        help="only clips whose path below IN_FOLDER (or name) matches, e.g. "
                             "'*.mp4' or 'day1/*'")
    parser.add_argument("--workers", type=opt.WORKERS.arg, default=1, metavar="N",
                        help=opt.WORKERS.help("estimator processes on a CPU-only machine "
                                              "(default 1); with GPUs there is one per GPU"))
    parser.add_argument("--retarget-workers", type=opt.RETARGET_WORKERS.arg, metavar="N",
                        help=opt.RETARGET_WORKERS.help("convert/export processes at once "
                                                       "(default: the cores left, at most half "
                                                       "the cores)"))
    parser.add_argument("--fresh-blender", action="store_true",
                        help="a fresh Blender process for every convert/export task (slower; "
                             "by default a few processes are reused, reset between tasks)")
    parser.add_argument("--ray", metavar="ADDRESS",
                        help="run the clips as Ray tasks: 'local' starts a small Ray instance "
                             "here; else a cluster address (HEAD:6379, ray://HEAD:10001, auto). "
                             "Folders must be at the same path on every machine")
    x = parser.add_argument_group("export (with --preset)")
    x.add_argument("--root", choices=ROOT_MODES, default="grounded",
                   help="root motion of the export (default grounded)")
    x.add_argument("--rest-frame", action="store_true",
                   help="add the rest pose one frame before the take")
    from ..retarget.retarget_cli import add_target_arguments

    add_target_arguments(x, armature_flag="--target-armature")   # export on another skeleton
    c = parser.add_argument_group("convert")
    c.add_argument("--smplx", metavar="PATH", help="SMPL-X model file or folder")
    ConvertOptions.add_arguments(c)
    e = parser.add_argument_group("estimation")
    add_estimate_arguments(e, io=False)
    return parser


class _Lock:
    """One batch per output folder at a time (``OUT/.batch.lock``, flock).

    The lock file is removed when the run ends (while still locked, so a run
    waiting on the old file sees it gone and takes a fresh one).
    """

    def __init__(self, folder: Path):
        self.path = folder / ".batch.lock"
        self.fh = None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:  # no flock (Windows): no lock
            fcntl = None
        for _ in range(20):
            fh = open(self.path, "a+")
            if fcntl is None:
                self.fh = fh
                return self
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.close()
                raise RuntimeError(f"{self.path.parent}: another batch is writing into this "
                                   "folder") from None
            try:  # the file we locked must still be the lock file (not one just removed)
                same = os.path.samestat(os.fstat(fh.fileno()), os.stat(self.path))
            except OSError:
                same = False
            if same:
                self.fh = fh
                return self
            fh.close()
        raise RuntimeError(f"{self.path.parent}: another batch is writing into this folder")

    def __exit__(self, *exc):
        try:
            os.unlink(self.path)
        except OSError:
            pass
        self.fh.close()
        return False


QA_SUMMARY_NAME = "qa-summary.csv"


def _write_qa_summary(summary, dst: Path, err) -> Path | None:
    """``OUT/qa-summary.csv``: one row per take from the clips' ``.qa.json`` reports (those
    of clips up to date are read back, not recomputed); None when there is none."""
    from ..retarget.cleanup.report import summary_csv, write_summary

    entries = [(r.clip.rel, dst / f["path"]) for r in summary.runs
               for f in (r.outputs or {}).get("reports") or [] if f["path"].endswith(".json")]
    if not entries:
        return None
    table = dst / QA_SUMMARY_NAME
    try:
        # Replace only a table a batch wrote (its header line); never the user's own file.
        if os.path.lexists(table):
            header = summary_csv([]).splitlines()[0]
            with open(table, encoding="utf-8", errors="replace") as fh:
                if fh.readline().rstrip("\r\n") != header:
                    print(f"p2p-mocap: note: no {QA_SUMMARY_NAME}: {table} exists and this "
                          "batch did not write it", file=err)
                    return None
        return write_summary(entries, table)
    except OSError as exc:  # the clips are done: say so and go on
        print(f"p2p-mocap: note: no {QA_SUMMARY_NAME}: {exc}", file=err)
        return None


def _standins_expected(args) -> str:
    """What the run will use that is a STAND-IN ("" when nothing is): the SMPL-X file and the
    Pose2Pose checkpoint by the search order (the summary says what the clips really used)."""
    from ..weights.locations import find_checkpoint, find_smplx

    found = []
    for what, look in (("SMPL-X", lambda: find_smplx(getattr(args, "smplx", None))),
                       ("checkpoint", lambda: find_checkpoint(getattr(args, "checkpoint", None)))):
        try:
            hit = look()
        except Exception:  # noqa: BLE001 - a hint only; the run reports real problems
            continue
        if getattr(hit, "found", False) and hit.standin:
            found.append(what)
    return " and ".join(found)


def run_batch(args, out=None, err=None) -> int:
    """Run ``p2p-mocap batch`` with parsed ``args``; return the exit code."""
    from .driver import format_summary, run_batch_loop
    from .jobs import find_clips, remove_leftovers, settings_from_args
    from .manifest import MANIFEST_NAME, Manifest

    out = out or sys.stdout
    err = err or sys.stderr
    src = Path(args.input).expanduser()
    dst = Path(args.output).expanduser()
    if not src.is_dir():
        print(f"p2p-mocap: error: {src}: no such folder", file=err)
        return EXIT_FAIL
    from ..common.outputs import resolve_output_folder

    try:
        dest = resolve_output_folder(args.output)   # the one -o rule: always a folder
    except ValueError as exc:
        print(f"p2p-mocap: error: {exc}", file=err)
        return EXIT_FAIL
    if args.workers < 1 or (args.retarget_workers is not None and args.retarget_workers < 1):
        print("p2p-mocap: error: --workers / --retarget-workers must be 1 or more", file=err)
        return EXIT_FAIL
    if getattr(args, "target", None):
        from ..common.errors import P2PError, error_line
        from ..retarget.retarget_cli import check_target_argument

        if not args.preset:
            print("p2p-mocap: error: --target needs --preset (the export it is for)", file=err)
            return EXIT_FAIL
        try:
            check_target_argument(args.target, args.map)
        except P2PError as exc:
            print(f"p2p-mocap: error: {error_line(exc)}", file=err)
            return EXIT_FAIL
    clips = find_clips(src, dst, args.pattern)
    if not clips:  # (checked before the output folder is made: nothing is left behind)
        print(f"p2p-mocap: error: no video or image folder in {src}"
              + (f" matching {args.pattern!r}" if args.pattern else ""), file=err)
        return EXIT_FAIL
    settings = settings_from_args(args)
    standin = _standins_expected(args)
    if standin:
        print(f"batch: STAND-IN model files ({standin}): the motion will be meaningless "
              "(for trying the pipeline only; see p2p-mocap doctor)", file=err)

    if args.ray:
        from .ray_runner import RayRunner

        def make_runner():
            return RayRunner(args.ray, workers=args.workers if args.workers > 1 else None,
                             retarget_workers=args.retarget_workers, device=args.device)
    else:
        from .local import LocalRunner

        def make_runner():
            return LocalRunner(workers=args.workers, retarget_workers=args.retarget_workers,
                               device=args.device,
                               fresh_blender=getattr(args, "fresh_blender", False))

    old_term = None
    got: list[int] = []

    def on_term(signum, frame):
        got.append(signum)
        raise KeyboardInterrupt

    try:
        with dest.folder_made(), _Lock(dst):
            # Temporary files of writes the manifest says were in progress (a killed run).
            remove_leftovers(dst, clips, Manifest(dst / MANIFEST_NAME).records())
            if hasattr(signal, "SIGTERM"):
                try:
                    old_term = signal.signal(signal.SIGTERM, on_term)
                except ValueError:  # not the main thread
                    old_term = None
            with Manifest(dst / MANIFEST_NAME) as manifest:
                summary = run_batch_loop(clips, settings, dst, make_runner, manifest=manifest,
                                         stream=err)
            qa_table = _write_qa_summary(summary, dst, err)
    except RuntimeError as exc:
        print(f"p2p-mocap: error: {exc}", file=err)
        return EXIT_FAIL
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    print(format_summary(summary), file=out)
    if qa_table is not None:
        print(f"quality reports: {qa_table}", file=out)
    out.flush()
    if summary.interrupted:
        print("stopped: finished clips are kept; run the same command again to finish the rest",
              file=err)
        return 128 + (got[0] if got else signal.SIGINT)
    return EXIT_FAIL if summary.failed else EXIT_OK


def main(argv=None) -> int:
    """Stand-alone entry (``python -m pose2pose_mocap.batch.cli_batch``)."""
    from ..common.cli_parser import OneLineParser

    parser = OneLineParser(prog="p2p-mocap batch",
                           description="convert whole folders of footage")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    add_batch_arguments(parser)
    return run_batch(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
