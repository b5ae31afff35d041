# SPDX-License-Identifier: GPL-3.0-or-later
"""``p2p-mocap clean`` and ``p2p-mocap qa``: a cleaned take, and a take's quality report.

``clean IN.take.npz [-o OUT.take.npz] [--foot-lock on|off] [--smooth ...] [--fix-flags ...]``
runs ``cleanup.clean.clean_take`` with the same option definitions as ``convert``
(``ConvertOptions``; the clean-up is on unless ``--foot-lock off``) and writes the
cleaned take, which keeps the raw parameters it came from. ``-o`` defaults to
``IN.clean.take.npz`` next to the input (numbered, never replacing); an ``-o``
file is replaced only with ``--force``. ``--json`` / ``--plot`` also write the
cleaned take's quality report.

``qa TAKE.npz [--json R.json] [--plot R.png]`` prints the take's quality report
(``cleanup.report``) and writes it as JSON and a PNG plot when asked.

The SMPL-X model is the caller's to find (``smplx``: a file, folder or
``gender -> file``; ``cli`` passes ``weights.locations.smplx_lookup(--smplx)``).
Every problem is one line (``RetargetError``) and nothing is written: the
outputs are checked before any work, and written atomically.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import OutputExistsError, RetargetError

MIN_VALID_ROWS = 5          # smoothing.MIN_RUN: fewer rows cannot be filtered or checked


def _add_report_arguments(parser) -> None:
    parser.add_argument("--json", metavar="REPORT.json", help="write the quality report as JSON")
    parser.add_argument("--plot", metavar="REPORT.png",
                        help="write the quality report as a PNG plot over time")


def add_clean_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``p2p-mocap clean``: convert's ``ConvertOptions`` and the outputs."""
    from .options import ConvertOptions

    parser.add_argument("input", metavar="IN.take.npz", help="the take to clean (never changed)")
    parser.add_argument("-o", "--output", metavar="OUT.take.npz",
                        help="the cleaned take (default: next to IN, IN.clean.take.npz, "
                             "numbered if taken)")
    parser.add_argument("--smplx", metavar="PATH", help="SMPL-X model file or folder")
    parser.add_argument("--smpl", metavar="PATH",
                        help="SMPL model file or folder, for SMPL takes (I2L-MeshNet)")
    ConvertOptions.add_arguments(parser)
    _add_report_arguments(parser)
    parser.add_argument("--force", action="store_true", help="replace existing output files")
    return parser


def add_qa_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``p2p-mocap qa``."""
    parser.add_argument("input", metavar="TAKE.npz", help="the take to check (never changed)")
    parser.add_argument("--smplx", metavar="PATH", help="SMPL-X model file or folder")
    parser.add_argument("--smpl", metavar="PATH",
                        help="SMPL model file or folder, for SMPL takes (I2L-MeshNet)")
    parser.add_argument("--gender", choices=("neutral", "male", "female"),
                        help="SMPL-X model to use (default: the take's)")
    _add_report_arguments(parser)
    parser.add_argument("--force", action="store_true", help="replace existing report files")
    return parser


def default_clean_output(take_path: Path) -> Path:
    """``clip.take.npz`` -> ``clip.clean.take.npz``; ``clip.npz`` -> ``clip.clean.take.npz``."""
    name = take_path.name
    for suffix in (".take.npz", ".npz"):
        if name.lower().endswith(suffix):
            return take_path.with_name(name[: -len(suffix)] + ".clean.take.npz")
    return take_path.with_name(name + ".clean.take.npz")


def _check_output(path, suffix: str, force: bool, what: str) -> Path:
    """An output path checked before any work: suffix, exists (without ``force``), folder."""
    from ..common.files import output_folder_problem

    p = Path(path).expanduser()
    if p.suffix.lower() != suffix:
        raise RetargetError(f"{p}: {what} must end in {suffix}")
    if p.exists() and p.is_dir():
        raise RetargetError(f"{p} is a folder")
    if p.exists() and not force:
        raise OutputExistsError(f"{p} exists; not overwriting it (use --force)")
    problem = output_folder_problem(p.parent if str(p.parent) else Path("."))
    if problem:
        raise RetargetError(f"{p.parent}: {problem}")
    return p


def _report_outputs(args) -> tuple[Path | None, Path | None]:
    j = _check_output(args.json, ".json", args.force, "--json") if args.json else None
    p = _check_output(args.plot, ".png", args.force, "--plot") if args.plot else None
    if j is not None and p is not None and j.resolve() == p.resolve():
        raise RetargetError("--json and --plot name the same file")
    return j, p


def _read(path: str):
    """The take at ``path``, SMPL-X or SMPL, with enough valid rows (else one line)."""
    import numpy as np

    from .take import read_take

    take = read_take(Path(path).expanduser())
    name = Path(path).name
    if take.body_model not in ("smplx", "smpl"):
        raise RetargetError(f"{name}: clean-up and QA need an SMPL-X or SMPL take, this one is "
                            f"{take.body_model!r}")
    n = int(np.asarray(take.valid, bool).sum())
    if n == 0:
        raise RetargetError(f"{name}: the take has no valid frames (nobody was found in any "
                            "frame)")
    if n < MIN_VALID_ROWS:
        raise RetargetError(f"{name}: the take is too short to clean or check: {n} valid "
                            f"row{'s' * (n != 1)}, at least {MIN_VALID_ROWS} are needed")
    return take


def _model(smplx, gender: str, body_model: str = "smplx", smpl=None):
    """The take's body model: ``smplx`` (a file, folder, lookup or ``BodyModelFiles``);
    for an SMPL take ``smpl`` (``--smpl``) when ``smplx`` is not a ``BodyModelFiles``."""
    from .convert import BodyModelFiles, model_file
    from .smplx_model import load_body_model

    if body_model == "smpl" and not isinstance(smplx, BodyModelFiles):
        smplx = BodyModelFiles(smplx, smpl)
    return load_body_model(model_file(smplx, gender, body_model), body_model)


def _write_reports(rep, json_path, plot_path, force: bool, out) -> None:
    from .cleanup.report import write_json, write_plot

    if json_path is not None:
        print(f"wrote {write_json(rep, json_path, replace=force)}", file=out)
    if plot_path is not None:
        print(f"wrote {write_plot(rep, plot_path, replace=force)}", file=out)


def run_qa(args, out=None, *, smplx=None) -> int:
    """``p2p-mocap qa``: print the report, write ``--json`` / ``--plot``; 0 on success."""
    from .cleanup.report import build_report, report_text

    out = out or sys.stdout
    json_path, plot_path = _report_outputs(args)
    take = _read(args.input)
    model = _model(smplx if smplx is not None else args.smplx, args.gender or take.gender,
                   take.body_model, getattr(args, "smpl", None))
    rep = build_report(take, model)
    print(report_text(rep, Path(args.input).name), file=out)
    _write_reports(rep, json_path, plot_path, args.force, out)
    return 0


def clean_options_from_args(args):
    """(ConvertOptions, CleanOptions) of ``clean``'s arguments: the clean-up is on by
    default; ``--foot-lock off`` keeps the QA pass, fixes and smoothing."""
    from .cleanup.clean import CleanOptions
    from .options import ConvertOptions

    conv = ConvertOptions.from_args(args, clean_default=True)
    # --foot-lock off and no fixes: smoothing and the QA pass only
    return conv, conv.clean or CleanOptions(foot_lock=False)


def _flag_summary(flags) -> str:
    counts: dict = {}
    for f in flags:
        counts[f.kind] = counts.get(f.kind, 0) + 1
    return ", ".join(f"{k} {n}" for k, n in counts.items()) or "none"


def run_clean(args, out=None, *, smplx=None) -> int:
    """``p2p-mocap clean``: write the cleaned take (and its reports); 0 on success."""
    import numpy as np

    from .cleanup.clean import clean_take
    from .take import write_take

    out = out or sys.stdout
    conv, clean = clean_options_from_args(args)
    src = Path(args.input).expanduser()
    if args.output:
        target = _check_output(args.output, ".npz", args.force, "-o")
        if target.resolve() == src.resolve():
            raise RetargetError(f"{target}: -o is the input take; the input is never replaced")
    else:
        from ..common.files import output_folder_problem

        target = default_clean_output(src)
        problem = output_folder_problem(target.parent)
        if problem and src.is_file():
            raise RetargetError(f"{target.parent}: {problem}")
    json_path, plot_path = _report_outputs(args)
    take = _read(args.input)
    model = _model(smplx if smplx is not None else args.smplx, conv.gender or take.gender,
                   take.body_model, getattr(args, "smpl", None))
    result = clean_take(take, model, conv.smoothing, clean)
    written = write_take(target, result.take, overwrite=bool(args.output) and args.force,
                         numbered=not args.output)
    fixed = dict(clean.fix_flags)
    n_fixed = sum(1 for f in result.raw_flags if f.kind in fixed)
    valid = int(np.asarray(result.take.valid, bool).sum())
    print(f"wrote {written} ({result.take.num_frames} rows, {valid} valid)", file=out)
    if result.contacts is not None:
        c = result.contacts
        print(f"  feet locked on contact frames: left {int(c.foot('left').sum())}, right "
              f"{int(c.foot('right').sum())}", file=out)
    print(f"  flags on the input: {_flag_summary(result.raw_flags)}"
          + (f"; fixed {n_fixed}" if fixed else ""), file=out)
    print(f"  flags remaining: {_flag_summary(result.flags)}", file=out)
    for n in result.notes:
        print(f"  note: {n}", file=out)
    if json_path is not None or plot_path is not None:
        from .cleanup.report import build_report

        rep = build_report(result.take, model, contacts=result.contacts, flags=result.flags,
                           notes=result.notes)
        _write_reports(rep, json_path, plot_path, args.force, out)
    return 0
