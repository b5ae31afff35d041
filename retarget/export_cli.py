# SPDX-License-Identifier: GPL-3.0-or-later
"""``p2p-mocap export``: a scene (.blend) or a take (.npz) -> FBX / GLB / BVH for game engines.

Wire it as a sub-command::

    p = sub.add_parser("export", help="export a rig's animation for a game engine")
    add_export_arguments(p)
    ... return run_export(args)

Problems raise ``RetargetError`` subclasses with one-line messages (the CLI
prints them); bpy is imported only when the export runs.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from ..common.outputs import output_help, resolve_output
from .errors import RetargetError
from .amass import PRESET_NAME as AMASS_PRESET, SUFFIX as AMASS_SUFFIX, SUMMARY as AMASS_SUMMARY
from .export_presets import PRESETS, ROOT_MODES
from .options import on_off


def add_export_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``p2p-mocap export``."""
    parser.add_argument("input", metavar="SCENE.blend|TAKE.npz",
                        help="a .blend made by 'p2p-mocap convert' (or the add-on), or a take "
                             "file (converted in memory first)")
    parser.add_argument("--preset", required=True, choices=tuple(PRESETS) + (AMASS_PRESET,),
                        help="; ".join([f"{n}: {p.summary}" for n, p in PRESETS.items()]
                                       + [f"{AMASS_PRESET}: {AMASS_SUMMARY}"]))
    parser.add_argument("-o", "--output", metavar="OUT",
                        help=output_help("the file to write", "next to INPUT, named after it "
                                         "and the engine preset (clip.unity.fbx), or the "
                                         "format's suffix alone (clip.glb, clip.bvh, clip.usd)"))
    parser.add_argument("--root", choices=ROOT_MODES, default="grounded",
                        help="root motion: grounded (default: feet on the floor and facing the "
                             "engine's forward at the first frame, motion kept), camera (as "
                             "estimated, in the camera's frame), in_place (grounded, horizontal "
                             "root motion removed)")
    parser.add_argument("--rest-frame", action="store_true",
                        help="add the rest (bind) pose one frame before the take")
    parser.add_argument("--armature", metavar="NAME",
                        help="the rig to export when the scene has several")
    parser.add_argument("--smplx", metavar="PATH",
                        help="SMPL-X model file or folder (only for a take .npz)")
    parser.add_argument("--smpl", metavar="PATH",
                        help="SMPL model file or folder (only for an SMPL take .npz: each "
                             "take picks its body model's file, --smplx or --smpl)")
    parser.add_argument("--pose-correctives", type=on_off, default=None, metavar="on|off",
                        help="the rig's 486 pose-corrective shape keys (Pose*) in the file, "
                             "from a take or a .blend (default: off for the game presets, a "
                             "lighter file; on for blender)")
    parser.add_argument("--force", action="store_true", help="replace an existing output file")
    from .retarget_cli import add_target_arguments

    add_target_arguments(parser.add_argument_group(
        "retarget (export the take on another skeleton; see p2p-mocap retarget)"),
        armature_flag="--target-armature")
    return parser


# Presets named after their file format: the suffix alone names them (clip.glb, not clip.gltf.glb).
FORMAT_PRESETS = ("gltf", "bvh", "usd")


def default_export_name(input_path: Path, preset_name: str, target: str | None = None
                        ) -> tuple[str, str]:
    """``(stem, tail)`` of the default export name: ``clip.take.npz`` / ``clip.blend`` ->
    ``("clip", ".unity.fbx")``; a format preset has its suffix alone (``".glb"``); with a
    retarget target the stem is ``clip.<target>``. (Numbered as ``stem-2 + tail``.)"""
    name = input_path.name
    for suffix in (".take.npz", ".npz", ".blend"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    if target:
        from .retarget_cli import target_label

        name = f"{name}.{target_label(target)}"
    if preset_name == AMASS_PRESET:
        return name, f".{AMASS_PRESET}{AMASS_SUFFIX}"
    p = PRESETS[preset_name]
    return name, (p.suffix if p.name in FORMAT_PRESETS else f".{p.name}{p.suffix}")


def default_export_output(input_path: Path, preset_name: str, target: str | None = None) -> Path:
    """The default export file next to ``input_path`` (see :func:`default_export_name`)."""
    stem, tail = default_export_name(input_path, preset_name, target)
    return input_path.with_name(stem + tail)


def run_export(args, out=None, *, smplx=None) -> int:
    """Run ``p2p-mocap export`` with parsed ``args``; 0 on success.

    ``smplx``: the SMPL-X model for a take input (a file, a folder or a function
    ``gender -> file``: the caller's lookup, ``weights.locations.smplx_lookup``);
    default ``--smplx`` as given."""
    out = out or sys.stdout
    src = Path(args.input).expanduser()
    if src.suffix.lower() not in (".blend", ".npz"):
        raise RetargetError(f"{src}: expected a .blend scene or a take .npz")
    if not src.is_file():
        raise RetargetError(f"{src}: no such file")
    stem, tail = default_export_name(src, args.preset, getattr(args, "target", None))
    dest = resolve_output(args.output, stem, tail, next_to=src.parent, what="output")
    with dest.folder_made():
        return _run_export(args, src, dest, out, smplx)


def _run_export(args, src: Path, dest, out, smplx) -> int:
    target = dest.path
    if dest.numbered and not args.force:  # a default name: the next free one (clip-2.unity.fbx)
        from ..common.files import next_free_name

        target = next_free_name(target, dest.tail)
    if getattr(args, "target", None):
        return run_target_export(args, src, target, out, smplx)
    if args.preset == AMASS_PRESET:
        return run_amass_export(args, src, target, out, smplx)
    if importlib.util.find_spec("bpy") is None:
        raise RetargetError("exporting needs Blender's Python module 'bpy' "
                            "(pip install bpy==5.0.1, or run inside Blender)")
    from .blender.export import export_scene
    from .convert import BodyModelFiles

    notes: list[str] = []
    result = export_scene(src, args.preset, target, root=args.root, rest_frame=args.rest_frame,
                          overwrite=args.force, armature=args.armature,
                          smplx=smplx if smplx is not None else BodyModelFiles(
                              args.smplx, getattr(args, "smpl", None)),
                          pose_correctives=args.pose_correctives, notes=notes)
    for n in notes:
        print(f"note: {n}", file=out)
    print(f"wrote {result.path} ({result.preset.name}, {len(result.frames)} frames at "
          f"{result.fps:g} fps, root {result.root})", file=out)
    return 0


def run_target_export(args, src: Path, out_path: Path, out, smplx=None) -> int:
    """``export --target``: the take retargeted onto the target's skeleton (``p2p-mocap
    retarget``, in memory), then that armature exported with the preset (its axes and
    units; the root modes follow the target's mapped hips and feet)."""
    from .retarget_cli import target_label

    notes: list[str] = []
    result = export_on_target(
        src, args.preset, out_path, target=args.target, mapping=args.map,
        target_armature=args.target_armature, rig=args.armature,
        smplx=smplx if smplx is not None else args.smplx, foot_ik=args.foot_ik,
        root=args.root, rest_frame=args.rest_frame, overwrite=args.force,
        pose_correctives=args.pose_correctives, notes=notes)
    for n in notes:
        print(f"note: {n}", file=out)
    print(f"wrote {result.path} ({result.preset.name}, on {target_label(args.target)}'s "
          f"skeleton: {len(result.bone_names)} bones, {len(result.frames)} frames at "
          f"{result.fps:g} fps, root {result.root})", file=out)
    return 0


def export_on_target(src, preset: str, out_path, *, target: str, mapping=None,
                     target_armature=None, rig=None, smplx=None, foot_ik: bool = True,
                     root: str = "grounded", rest_frame: bool = False, overwrite: bool = False,
                     pose_correctives=None, notes: list | None = None):
    """A take or .blend exported on a retarget target's skeleton (``export --target``,
    ``batch --target``). Resets the running session. -> ``ExportResult``."""
    from .retarget_cli import check_target_argument

    if preset == AMASS_PRESET:
        raise RetargetError("--target does not apply to the amass preset (SMPL-X parameters)")
    check_target_argument(target, mapping)
    if importlib.util.find_spec("bpy") is None:
        raise RetargetError("exporting needs Blender's Python module 'bpy' "
                            "(pip install bpy==5.0.1, or run inside Blender)")
    from .blender.export import _check_output, _preset, _take_name, export_scene
    from .blender.retarget import retarget_in_session

    src = Path(src).expanduser()
    _check_output(out_path, _preset(preset), overwrite)   # before the work
    notes = [] if notes is None else notes
    arm_obj, tgt, _written = retarget_in_session(
        src, target, mapping=mapping, armature=target_armature, rig=rig, smplx=smplx,
        foot_ik=foot_ik, notes=notes, unscaled=True)
    return export_scene(None, preset, out_path, root=root, rest_frame=rest_frame,
                        overwrite=overwrite, armature=arm_obj.name,
                        pose_correctives=pose_correctives, notes=notes,
                        name=_take_name(str(src), None), joint_bones=dict(tgt.mapping))


def run_amass_export(args, src: Path, target: Path, out, smplx=None) -> int:
    """``--preset amass``: numpy only, no Blender (``retarget.amass``; docs/amass.md).

    The SMPL-X model (``smplx``: file, folder or ``gender -> file``; default ``--smplx``)
    gives the exact rest pelvis; without one the neutral template's is used (a note).
    A model that cannot be found is an error only when ``--smplx`` was given."""
    from ..common.errors import P2PError
    from .amass import write_amass
    from .convert import model_file
    from .smplx_model import load_smplx_model
    from .take import read_take

    if src.suffix.lower() != ".npz":
        raise RetargetError(f"{src}: the amass preset exports a take .npz (export the take "
                            "the .blend was converted from)")
    take = read_take(src)
    given = bool(getattr(args, "smplx", None))
    lookup = smplx if smplx is not None else args.smplx
    model = None
    if lookup is not None and str(lookup) != "":
        try:
            model = load_smplx_model(model_file(lookup, take.gender))
        except P2PError:
            if given:
                raise
    path, notes = write_amass(take, target, model=model, overwrite=args.force)
    for n in notes:
        print(f"note: {n}", file=out)
    print(f"wrote {path} (amass, {take.num_frames} frames at {take.fps:g} fps, AMASS Z-up "
          "world; --root and --rest-frame do not apply)", file=out)
    return 0
