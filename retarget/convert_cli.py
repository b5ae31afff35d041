# SPDX-License-Identifier: GPL-3.0-or-later
"""``p2p-mocap convert`` on a take: its options, and running it with one line per outcome.

``add_convert_arguments(parser)`` adds the options; ``run_convert(args, smplx=...)``
runs it and returns the exit code; ``convert_file`` is the same for a caller
that already has its ``ConvertOptions`` (``p2p-mocap convert`` on footage, per
take estimated). The conversion itself is ``convert.convert_take``.

The SMPL-X model is the caller's to find: ``smplx`` is a model file, a folder
or a function ``gender -> file`` (``cli`` passes
``weights.locations.smplx_lookup(--smplx)``, the search order); without it,
``--smplx`` is used as given.
"""
from __future__ import annotations

import argparse
import sys

from ..common.outputs import output_help
from .blender_runner import ENV_VAR
from .convert import BodyModelFiles, convert_take, stop_signals
from .options import ConvertOptions


def add_convert_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``p2p-mocap convert``."""
    parser.add_argument("input", metavar="INPUT",
                        help="a take file (.npz from 'p2p-mocap estimate', or another SMPL-X "
                             "parameter .npz), or footage: a video, an image or a folder of "
                             "images (estimated first; the take is kept beside the .blend)")
    parser.add_argument("-o", "--output", metavar="BLEND",
                        help=output_help("the .blend to write", "next to INPUT, clip.blend "
                                         "(clip.take.npz -> clip.blend)"))
    parser.add_argument("--blender", metavar="PATH",
                        help="build the rig in this Blender (its executable, or a Python with "
                             f"its bpy module; or set {ENV_VAR}), so the .blend opens in that "
                             "Blender version; default: the bpy module here, whose .blend "
                             "needs Blender 5.0 or newer")
    parser.add_argument("--smplx", metavar="PATH", help="SMPL-X model file or folder")
    parser.add_argument("--smpl", metavar="PATH",
                        help="SMPL model file (SMPL_NEUTRAL.npz) or folder, for SMPL takes; "
                             "each take picks its body model's file (its body_model): --smplx "
                             "for SMPL-X takes, --smpl for SMPL takes (I2L-MeshNet), each "
                             "found by the search order when not given")
    ConvertOptions.add_arguments(parser)
    parser.add_argument("--force", action="store_true", help="replace an existing .blend")
    return parser


def convert_file(take, output, smplx, options: ConvertOptions, *, overwrite: bool = False,
                 numbered: bool = False, out=None, blender=None) -> int:
    """Convert one take file to a .blend, printing the notes and ``wrote PATH``; 0 on
    success.

    Problems raise ``RetargetError`` subclasses (one-line messages for the CLI).
    Ctrl-C / SIGTERM: nothing is written (the temporary file is removed), one
    line, exit code 130 / 143. ``numbered``: ``output`` is a default name
    (``stem-2.blend`` ... when it is taken).
    """
    import signal

    out = out or sys.stdout
    if blender is not None:
        return _convert_in_blender(blender, take, output, smplx, options, overwrite=overwrite,
                                   numbered=numbered, out=out)
    notes: list[str] = []
    with stop_signals() as got:
        try:
            path = convert_take(take, smplx, output, options=options, overwrite=overwrite,
                                notes=notes, numbered=numbered)
        except KeyboardInterrupt:
            signum = got[0] if got else signal.SIGINT  # (got is cleared on exit: read it here)
            how = "SIGTERM" if signum == getattr(signal, "SIGTERM", None) else "Ctrl-C"
            print(f"p2p-mocap: error: stopped by {how}: no .blend written", file=sys.stderr)
            return 128 + int(signum)
    for n in notes:
        print(f"note: {n}", file=out)
    print(f"wrote {path}", file=out)
    return 0


def run_convert(args, out=None, *, smplx=None) -> int:
    """Run ``p2p-mocap convert`` on a take with parsed ``args``; see :func:`convert_file`.
    ``smplx``: the model (the caller's lookup); default ``--smplx`` as given."""
    if smplx is None:
        smplx = BodyModelFiles(args.smplx, getattr(args, "smpl", None))
    from .blender_runner import blender_executable

    return convert_file(args.input, args.output, smplx, ConvertOptions.from_args(args),
                        overwrite=args.force, out=out,
                        blender=blender_executable(getattr(args, "blender", None)))


def _convert_in_blender(blender, take, output, smplx, options: ConvertOptions, *,
                        overwrite: bool, numbered: bool, out) -> int:
    """``convert --blender``: the take's model file is found here, the rig built there."""
    from pathlib import Path

    from .blender_runner import convert_in_blender
    from .convert import default_output, model_file
    from .take import read_take

    head = read_take(take)
    model = model_file(smplx, options.gender or head.gender, head.body_model)
    target = Path(output) if output else default_output(Path(take).expanduser())
    try:
        done = convert_in_blender(blender, take, model, head.body_model, target, options,
                                  overwrite=overwrite, numbered=numbered)
    except KeyboardInterrupt:
        print("p2p-mocap: error: stopped by Ctrl-C: no .blend written", file=sys.stderr)
        return 130
    for n in done.get("notes", []):
        print(f"note: {n}", file=out)
    version = ".".join(str(done.get("blender", "")).split(".")[:2]) or "?"
    written = Path(done["path"])
    if not target.is_absolute() and written.is_relative_to(Path.cwd()):
        written = written.relative_to(Path.cwd())   # as the user named it
    print(f"wrote {written} (Blender {version} format)", file=out)
    return 0
