# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``p2p-mocap`` command.

Every command prints a clear message and exits non-zero on bad input; a Python
traceback is shown only with ``--debug``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common.cli_parser import EXIT_USAGE, OneLineParser
from .common.errors import P2PError, error_line

EXIT_OK, EXIT_FAIL = 0, 1


class UserError(P2PError):
    """A problem the user can fix; its message is printed as is."""


def _cmd_doctor(args) -> int:
    from .doctor import format_report, run_checks

    report = run_checks(smplx=args.smplx, checkpoint=args.checkpoint, detector=args.detector)
    text = format_report(report)
    print(text.splitlines()[-1] if args.quiet else text)
    return EXIT_OK if report.ready else EXIT_FAIL


def _cmd_make_standins(args) -> int:
    from .weights.standins import write_standins
    from .weights.locations import smplx_file_is_standin

    root = Path(args.dir).expanduser()
    if root.exists() and not root.is_dir():
        raise UserError(f"{root} exists and is not a folder")
    # Never replace a real model file with a stand-in.
    for sub, pattern in (("smplx", "SMPLX_*.npz"), ("smpl", "SMPL_*.npz")):
        for p in sorted((root / sub).glob(pattern)) if (root / sub).is_dir() else []:
            if not smplx_file_is_standin(p):
                raise UserError(f"{p} is a real model file; not overwriting it with a "
                                "stand-in. Choose another folder.")
    paths = write_standins(root)
    print("Wrote STAND-IN model files (procedural SMPL-X-format body, random network weights;")
    print("for tests and trying the pipeline only, never for real capture):")
    for p in paths:
        print(f"  {p}")
    return EXIT_OK


def _smpl_body_file(path: Path) -> bool:
    """An SMPL (not SMPL-X) model file, by name (``SMPL_*``, ``basicmodel_*``) or, for an
    ``.npz``, by its ``v_template`` header (6890 vertices); nothing is unpickled."""
    name = path.name.lower()
    if name.startswith(("smpl_", "basicmodel")):
        return True
    if path.suffix.lower() != ".npz":
        return False
    from .common.npz import npz_members
    from .common.smpl_file import N_VERTS, SmplFileError

    try:
        v = npz_members(path, error=SmplFileError).get("v_template")
    except SmplFileError:
        return False
    return v is not None and v.shape[:1] == (N_VERTS,)


def _weights_check_smpl(path: Path) -> int:
    from .common.smpl_file import check_smpl_file
    from .estimator.pose2pose.checkpoint import file_sha256
    from .weights.locations import smplx_file_is_standin

    if path.suffix.lower() == ".pkl":
        raise UserError(f"{path.name} is a pickle (.pkl), which is never opened; convert it to "
                        "SMPL_<GENDER>.npz once (docs/smpl.md, 'SMPL model files')")
    problems = check_smpl_file(path)
    kind = "SMPL stand-in" if smplx_file_is_standin(path) else "SMPL model file"
    print(f"{path}")
    print(f"  kind:   {kind if not problems else 'not usable'}")
    print(f"  sha256: {file_sha256(path)}")
    for p in problems:
        print(f"  problem: {p}")
    if problems:
        raise UserError(problems[0])
    return EXIT_OK


def _cmd_weights_check(args) -> int:
    from .estimator.pose2pose.checkpoint import file_sha256, identify_checkpoint
    from .common.smplx_file import check_smplx_file
    from .weights.locations import smplx_file_is_standin

    path = Path(args.file).expanduser()
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".npz", ".pkl") and _smpl_body_file(path):
        return _weights_check_smpl(path)
    if suffix == ".npz" or (suffix == ".pkl" and "smplx" in path.name.lower()):
        # Checked by content from the .npy headers only: nothing is unpickled.
        problems = check_smplx_file(path)
        kind = "stand-in" if smplx_file_is_standin(path) else "SMPL-X model file"
        print(f"{path}")
        print(f"  kind:   {kind if not problems else 'not usable'}")
        print(f"  sha256: {file_sha256(path)}")
        for p in problems:
            print(f"  problem: {p}")
        if problems:
            first = problems[0]
            for prefix in (f"{path}: ", f"{path.name}: "):
                first = first[len(prefix):] if first.startswith(prefix) else first
            more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
            raise UserError(f"{path.name} is not a usable SMPL-X model file: {first}{more}")
        return EXIT_OK
    info, network = identify_checkpoint(path), "Pose2Pose"
    if info.kind == "unknown" and info.num_keys:  # maybe the other network's file
        from .estimator.i2l_meshnet.checkpoint import identify_checkpoint as identify_i2l

        i2l = identify_i2l(path)
        if i2l.kind != "unknown":
            info, network = i2l, "I2L-MeshNet"
    print(f"{path}")
    print(f"  kind:   {info.kind}")
    print(f"  network: {network}")
    print(f"  sha256: {info.sha256}")
    print(f"  keys:   {info.num_keys}")
    print(f"  {info.description}")
    if not info.loadable:
        raise UserError(f"{path.name} cannot be loaded by the {network} network: "
                        f"{info.description}")
    return EXIT_OK


def _cmd_weights_convert(args) -> int:
    from .estimator.pose2pose.checkpoint import convert_checkpoint

    src, dst = Path(args.src).expanduser(), Path(args.dst).expanduser()
    if not src.is_file():
        raise UserError(f"{src}: no such file")
    if dst.suffix != ".safetensors":
        raise UserError(f"{dst}: the output name must end in .safetensors")
    if dst.exists() and not args.force:
        raise UserError(f"{dst} exists; not overwriting it (use --force)")
    from .estimator.i2l_meshnet.checkpoint import identify_checkpoint as identify_i2l

    if identify_i2l(src).kind != "unknown":  # an I2L-MeshNet file: its own converter
        from .estimator.i2l_meshnet.checkpoint import convert_checkpoint
    convert_checkpoint(src, dst, overwrite=args.force)
    print(f"wrote {dst}")
    return EXIT_OK


def _cmd_weights_export_onnx(args) -> int:
    from .estimator.pose2pose.onnx_export import export_onnx
    from .weights.locations import find_checkpoint

    dst = Path(args.dst).expanduser()
    if dst.suffix.lower() != ".onnx":
        raise UserError(f"{dst}: the output name must end in .onnx")
    if dst.exists() and not args.force:
        raise UserError(f"{dst} exists; not overwriting it (use --force)")
    ck = find_checkpoint(args.checkpoint)
    if not ck.found:
        raise UserError(ck.problem or "no Pose2Pose checkpoint found (run p2p-mocap doctor)")
    from .estimator.pose2pose.checkpoint import load_checkpoint

    print(f"exporting {ck.path} (the network without SMPL-X; about a minute)", flush=True)
    out = export_onnx(load_checkpoint(ck.path), dst, replace=args.force)
    print(f"wrote {out}")
    return EXIT_OK


def _cmd_estimate(args) -> int:
    from .estimator.cli_estimate import run_estimate

    return run_estimate(args)


def _cmd_batch(args) -> int:
    from .batch.cli_batch import run_batch

    return run_batch(args)


def _cmd_export(args) -> int:
    from .retarget.export_cli import run_export

    return run_export(args, smplx=_model_lookups(args))


def _model_lookups(args):
    """The body models by the search order: ``--smplx`` for SMPL-X takes, ``--smpl`` for
    SMPL takes (each take picks by its body_model)."""
    from .retarget.convert import BodyModelFiles
    from .weights.locations import smpl_lookup, smplx_lookup

    return BodyModelFiles(smplx_lookup(args.smplx), smpl_lookup(getattr(args, "smpl", None)))


def _cmd_clean(args) -> int:
    from .retarget.clean_cli import run_clean

    return run_clean(args, smplx=_model_lookups(args))  # --smplx / --smpl by the take's body


def _cmd_qa(args) -> int:
    from .retarget.clean_cli import run_qa

    return run_qa(args, smplx=_model_lookups(args))  # --smplx / --smpl by the take's body


def _cmd_retarget(args) -> int:
    from .retarget.retarget_cli import run_retarget
    from .weights.locations import smplx_lookup

    return run_retarget(args, smplx=smplx_lookup(args.smplx))


def _cmd_convert(args) -> int:
    """A take is converted as is; footage is estimated first (a take is kept beside the .blend).
    ``-o``: the one rule of ``common.outputs`` (a folder gets the default name inside it)."""
    from .common.outputs import resolve_output
    from .retarget.blender_runner import blender_executable
    from .retarget.convert import default_output

    src = Path(args.input).expanduser()
    blender = blender_executable(getattr(args, "blender", None))
    if src.suffix.lower() == ".npz":
        stem = default_output(src).stem
    else:
        stem = src.stem if src.is_file() else src.name
    dest = resolve_output(args.output, stem, ".blend", next_to=src.parent, what="output")
    if not dest.numbered and dest.path.exists() and not args.force:  # before any work
        raise UserError(f"{dest.path} exists; not overwriting it (use --force)")
    with dest.folder_made():
        return _convert(args, src, dest, blender)


def _convert(args, src: Path, dest, blender) -> int:
    from .estimator.cli_estimate import estimate_footage
    from .estimator.options import EstimateOptions
    from .retarget.convert import default_output
    from .retarget.convert_cli import convert_file
    from .retarget.options import ConvertOptions

    options = ConvertOptions.from_args(args)
    smplx = _model_lookups(args)

    def convert(take, target, numbered) -> int:
        return convert_file(str(take), str(target), smplx, options, overwrite=args.force,
                            numbered=numbered, blender=blender)

    if src.suffix.lower() == ".npz":
        return convert(src, dest.path, dest.numbered)
    from .retarget.importers import detect_format

    fmt = detect_format(src) if src.exists() else None
    if fmt is not None:  # another tool's results (SMPLer-X folder, GVHMR .pt, .smpl)
        from .retarget.take import write_take

        take = _import_take(src, fmt, args.smplx)
        kept = write_take(dest.folder / f"{dest.path.stem}.take.npz", take, numbered=True)
        print(f"wrote {kept} (imported from {fmt})")
        # a default name follows the take's number (clip-2.take.npz -> clip-2.blend)
        return convert(kept, default_output(kept) if dest.numbered else dest.path, dest.numbered)
    # Footage: the takes go into the .blend's folder under default names (numbered, so a
    # second run never replaces the first); each .blend is named after its take by default.
    estimate = EstimateOptions.from_args(args)
    done = estimate_footage(str(src), str(dest.folder) + "/", estimate, force=False,
                            debug=args.debug)
    if done.code != 0 or not done.takes:
        return done.code or EXIT_FAIL
    for i, take in enumerate(done.takes):
        if dest.numbered:
            target = default_output(Path(take))
        else:
            person = f".person{i + 1}" if len(done.takes) > 1 else ""
            target = dest.path.with_name(dest.path.stem + person + ".blend")
        code = convert(take, target, dest.numbered)
        if code != 0:
            return code
    return EXIT_OK


def _import_take(src: Path, fmt: str, smplx_flag, *, person: int = 0, fps=None):
    """The take of another tool's result file; the SMPL-X model by the search order."""
    from .retarget.importers import import_with_model
    from .weights.locations import smplx_model_file

    return import_with_model(src, fmt, model_file=lambda: smplx_model_file(smplx_flag, "neutral"),
                             model_given=bool(smplx_flag), person=person, fps=fps)


def _cmd_import(args) -> int:
    """Another tool's result file -> a take."""
    from .retarget.importers import detect_format
    from .retarget.take import write_take

    src = Path(args.file).expanduser()
    fmt = args.format if args.format != "auto" else (detect_format(src) or "auto")
    from .common.outputs import resolve_output

    dest = resolve_output(args.output, src.stem if src.is_file() else src.name, ".take.npz",
                          next_to=src.parent, suffixes=(".npz",), what="take file")
    take = _import_take(src, fmt, args.smplx, person=args.person, fps=args.fps)
    with dest.folder_made():
        written = write_take(dest.path, take, overwrite=args.force, numbered=dest.numbered)
    print(f"wrote {written} ({take.num_frames} frames, {take.fps:g} fps, from {fmt} "
          f"via the {take.estimator} importer)")
    for note in take.notes:
        print(f"  note: {note}")
    return EXIT_OK

def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="p2p-mocap",
        description="Markerless whole-body SMPL-X motion capture (Pose2Pose / Hand4Whole).")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    d = sub.add_parser("doctor", help="check the setup and say what is missing and where to put it")
    d.add_argument("--smplx", help="SMPL-X model folder or SMPLX_NEUTRAL.npz")
    d.add_argument("--checkpoint", help="Pose2Pose checkpoint (snapshot_6.pth.tar or .safetensors)")
    d.add_argument("--detector", help="person detector weights (.pth)")
    d.add_argument("-q", "--quiet", action="store_true", help="print only the result line")
    d.set_defaults(func=_cmd_doctor)

    m = sub.add_parser("make-standins",
                       help="write deterministic stand-ins for the licensed model files")
    m.add_argument("dir", help="folder to write smplx/ and pose2pose/ into")
    m.set_defaults(func=_cmd_make_standins)

    w = sub.add_parser("weights", help="inspect and convert model files")
    wsub = w.add_subparsers(dest="weights_command", metavar="ACTION")
    wc = wsub.add_parser("check", help="say what a checkpoint or SMPL-X file is, with its sha256")
    wc.add_argument("file")
    wc.set_defaults(func=_cmd_weights_check)
    wv = wsub.add_parser("convert", help="write a safe, fast-loading .safetensors copy")
    wv.add_argument("src")
    wv.add_argument("dst")
    wv.add_argument("--force", action="store_true", help="replace an existing output file")
    wv.set_defaults(func=_cmd_weights_convert)
    wx = wsub.add_parser("export-onnx", help="write the network as an ONNX graph (without the "
                         "SMPL-X layer) for ONNX Runtime / OpenVINO (docs/speed.md)")
    wx.add_argument("dst", help="the .onnx file to write")
    wx.add_argument("--checkpoint", metavar="FILE",
                    help="Pose2Pose checkpoint (default: by the search order)")
    wx.add_argument("--force", action="store_true", help="replace an existing output file")
    wx.set_defaults(func=_cmd_weights_export_onnx)
    w.set_defaults(func=lambda a: (w.print_help(), EXIT_USAGE)[1])

    from .estimator.cli_estimate import add_estimate_arguments
    from .retarget.convert_cli import add_convert_arguments

    e = sub.add_parser("estimate", help="estimate takes (SMPL-X motion) from images or a video",
                       description="Estimate whole-body SMPL-X motion from images or a video "
                                   "and write take files (p2p-take/2).")
    add_estimate_arguments(e)
    e.set_defaults(func=_cmd_estimate)

    c = sub.add_parser("convert", help="turn a take, or footage, into a .blend with a keyframed "
                                       "SMPL-X rig",
                       description="INPUT is a take file (used as is) or a video / image / "
                                   "image folder, which is estimated first (all 'estimate' "
                                   "options apply); the take is kept next to the .blend.")
    add_convert_arguments(c)
    est = c.add_argument_group("estimation (when INPUT is footage)")
    add_estimate_arguments(est, io=False)
    c.set_defaults(func=_cmd_convert)

    from .retarget.export_cli import add_export_arguments

    x = sub.add_parser("export", help="export a .blend or a take for a game engine (FBX presets "
                                      "for Unity, Unreal, Godot; glTF; BVH)")
    add_export_arguments(x)
    x.set_defaults(func=_cmd_export)

    from .retarget.clean_cli import add_clean_arguments, add_qa_arguments

    cl = sub.add_parser("clean", help="clean a take's motion: QA fixes, smoothing, ground, foot "
                                      "locking (writes a new take)",
                        description="Writes a cleaned copy of IN (the input is never changed); "
                                    "the copy keeps the raw parameters it came from.")
    add_clean_arguments(cl)
    cl.set_defaults(func=_cmd_clean)
    qa = sub.add_parser("qa", help="a take's quality report: jitter, foot skate, penetration, "
                                   "flagged frames (text, JSON, PNG)")
    add_qa_arguments(qa)
    qa.set_defaults(func=_cmd_qa)

    from .retarget.retarget_cli import add_retarget_arguments

    rt = sub.add_parser("retarget", help="put a take on another skeleton (Rigify, Mixamo, UE5, "
                                         "UE4, Unity, Godot, VRM, a preset or your character "
                                         "file) and save a .blend",
                        description="TAKE_OR_BLEND's take is retargeted onto the target "
                                    "armature (a new action on its NLA); see "
                                    "docs/retargeting.md.")
    add_retarget_arguments(rt)
    rt.set_defaults(func=_cmd_retarget)

    from .common.outputs import output_help
    from .retarget.importers import FORMAT_NAMES

    im = sub.add_parser("import", help="turn another tool's results (AMASS, SMPLer-X, GVHMR, "
                                       ".smpl) into a take",
                        description="FILE is an AMASS / SMPL-X add-on .npz, a SMPLer-X output "
                                    "folder, a GVHMR hmr4d_results.pt or a Meshcapade .smpl "
                                    "file; see docs/importers.md.")
    im.add_argument("file", metavar="FILE")
    im.add_argument("--format", choices=("auto",) + FORMAT_NAMES, default="auto",
                    help="the tool that wrote FILE (default: detected from its content)")
    im.add_argument("-o", "--output", help=output_help("the take to write (.npz)",
                                                       "next to FILE, FILE.take.npz"))
    im.add_argument("--person", type=int, default=0,
                    help="which person of a multi-person result (SMPLer-X bbox id)")
    im.add_argument("--fps", type=float, help="frame rate, for results that have none")
    im.add_argument("--smplx", help="SMPL-X model folder or SMPLX_NEUTRAL.npz (hand mean and "
                                    "pelvis, for SMPLer-X and GVHMR)")
    im.add_argument("--force", action="store_true", help="replace an existing -o file")
    im.set_defaults(func=_cmd_import)

    from .batch.cli_batch import add_batch_arguments

    b = sub.add_parser("batch", help="convert whole folders of footage (resumable, parallel, Ray)",
                       description="Every video and image folder under IN_FOLDER becomes take(s), "
                                   "a .blend and (with --preset) an export, in a mirrored folder.")
    add_batch_arguments(b)
    b.set_defaults(func=_cmd_batch)
    return p


def _log_bug(exc: BaseException) -> str:
    """Write the traceback of an unexpected error to a log file; return its path."""
    import tempfile
    import traceback

    try:
        fd, path = tempfile.mkstemp(prefix="p2p-mocap-bug-", suffix=".log")
        with open(fd, "w") as fh:
            fh.write("".join(traceback.format_exception(exc)))
        return path
    except OSError:
        return "'p2p-mocap --debug ...'"


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (P2PError, ValueError) as exc:  # ValueError: settings validation (Smoothing etc.)
        if args.debug:
            raise
        print(f"p2p-mocap: error: {error_line(exc)}", file=sys.stderr)
    except OSError as exc:  # disk full, read-only folder, permissions: the user's to fix
        if args.debug:
            raise
        print(f"p2p-mocap: error: {error_line(exc)}", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence: a bug
        if args.debug:
            raise
        log_path = _log_bug(exc)
        print(f"p2p-mocap: internal error: {exc.__class__.__name__}: {error_line(exc)} "
              f"(please report it with {log_path})", file=sys.stderr)
    return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
