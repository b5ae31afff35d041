# SPDX-License-Identifier: GPL-3.0-or-later
"""``p2p-mocap clean`` and ``p2p-mocap qa``: a cleaned take, and a take's quality report.

``clean IN.take.npz [-o OUT.take.npz] [--foot-lock on|off] [--smooth ...] [--fix-flags ...]``
runs ``cleanup.clean.clean_take`` with the same option definitions as ``convert``
(``ConvertOptions``; the clean-up is on unless ``--foot-lock off``) and writes the
cleaned take, which keeps the raw parameters it came from. ``-o``, ``--json`` and
``--plot`` follow the one ``-o`` rule (``common.outputs``): the default
``NAME.clean.take.npz`` goes next to the input or into a folder given (numbered
``NAME-2.clean.take.npz``, never replacing); a named file is replaced only with
``--force``. ``--json`` / ``--plot`` also write the cleaned take's quality report
(in a folder: ``NAME.clean.qa.json`` / ``.qa.png``).

``qa TAKE.npz [--json R.json] [--plot R.png]`` prints the take's quality report
(``cleanup.report``) and writes it as JSON and a PNG plot when asked (a folder:
``NAME.qa.json`` / ``NAME.qa.png`` inside it).

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


def _add_report_arguments(parser, default: str) -> None:
    from ..common.outputs import output_help

    parser.add_argument("--json", metavar="REPORT.json|FOLDER",
                        help=output_help("write the quality report as JSON",
                                         f"{default}.qa.json"))
    parser.add_argument("--plot", metavar="REPORT.png|FOLDER",
                        help=output_help("write the quality report as a PNG plot over time",
                                         f"{default}.qa.png"))


def add_clean_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``p2p-mocap clean``: convert's ``ConvertOptions`` and the outputs."""
    from .options import ConvertOptions

    parser.add_argument("input", metavar="IN.take.npz", help="the take to clean (never changed)")
    from ..common.outputs import output_help

    parser.add_argument("-o", "--output", metavar="OUT.take.npz|FOLDER",
                        help=output_help("the cleaned take (.npz)",
                                         "next to IN, NAME.clean.take.npz"))
    parser.add_argument("--smplx", metavar="PATH", help="SMPL-X model file or folder")
    parser.add_argument("--smpl", metavar="PATH",
                        help="SMPL model file or folder, for SMPL takes (I2L-MeshNet)")
    ConvertOptions.add_arguments(parser)
    _add_report_arguments(parser, "NAME.clean")
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
    _add_report_arguments(parser, "NAME")
    parser.add_argument("--force", action="store_true", help="replace existing report files")
    return parser


def take_stem(take_path: Path) -> str:
    """``clip.take.npz`` / ``clip.npz`` -> ``clip`` (the stem of the default names)."""
    name = take_path.name
    for suffix in (".take.npz", ".npz"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def default_clean_output(take_path: Path) -> Path:
    """``clip.take.npz`` -> ``clip.clean.take.npz``; ``clip.npz`` -> ``clip.clean.take.npz``."""
    return take_path.with_name(take_stem(take_path) + CLEAN_TAIL)


CLEAN_TAIL = ".clean.take.npz"


def _output(arg, stem: str, tail: str, next_to: Path, suffix: str, force: bool, what: str):
    """``-o``/``--json``/``--plot`` by the one ``-o`` rule (``common.outputs``), checked
    before any work: a named file that exists is refused without ``force``; the folder
    must be writable (a folder to be made, ``-o new/``, is checked when made)."""
    import os

    from ..common.files import output_folder_problem
    from ..common.outputs import resolve_output

    dest = resolve_output(arg, stem, tail, next_to=next_to, suffixes=(suffix,), what=what)
    if not dest.numbered and os.path.lexists(dest.path) and not force:
        raise OutputExistsError(f"{dest.path} exists; not overwriting it (use --force)")
    # (a default name next to a missing input: the input's own error comes later)
    if dest.make_folder is None and (dest.folder.is_dir() or not dest.numbered):
        problem = output_folder_problem(dest.folder)
        if problem:
            raise RetargetError(f"{dest.folder}: {problem}")
    return dest


def _report_outputs(args, stem: str, next_to: Path):
    """The ``--json`` / ``--plot`` outputs (``Output`` or None), named ``stem.qa.json`` /
    ``stem.qa.png`` when a folder is given."""
    j = _output(args.json, stem, ".qa.json", next_to, ".json", args.force,
                "--json report") if args.json else None
    p = _output(args.plot, stem, ".qa.png", next_to, ".png", args.force,
                "--plot report") if args.plot else None
    if j is not None and p is not None and j.path.resolve() == p.path.resolve():
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


def _write_reports(rep, json_dest, plot_dest, force: bool, out) -> None:
    """Write the reports to their ``Output``s (a default name numbered, a named file
    replaced only with ``force``)."""
    from .cleanup.report import write_json, write_plot

    for dest, write in ((json_dest, write_json), (plot_dest, write_plot)):
        if dest is not None:
            with dest.folder_made():
                path = write(rep, dest.path, replace=force and not dest.numbered,
                             numbered=dest.numbered, suffix=dest.tail)
            print(f"wrote {path}", file=out)


def run_qa(args, out=None, *, smplx=None) -> int:
    """``p2p-mocap qa``: print the report, write ``--json`` / ``--plot``; 0 on success."""
    from .cleanup.report import build_report, report_text

    out = out or sys.stdout
    src = Path(args.input).expanduser()
    json_path, plot_path = _report_outputs(args, take_stem(src), src.parent)
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
    dest = _output(args.output, take_stem(src), CLEAN_TAIL, src.parent, ".npz", args.force,
                   "take file")
    if not dest.numbered and dest.path.resolve() == src.resolve():
        raise RetargetError(f"{dest.path}: -o is the input take; the input is never replaced")
    json_path, plot_path = _report_outputs(args, take_stem(src) + ".clean", dest.folder)
    take = _read(args.input)
    model = _model(smplx if smplx is not None else args.smplx, conv.gender or take.gender,
                   take.body_model, getattr(args, "smpl", None))
    result = clean_take(take, model, conv.smoothing, clean)
    with dest.folder_made():
        written = write_take(dest.path, result.take, overwrite=args.force and not dest.numbered,
                             numbered=dest.numbered, tail=dest.tail)
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
