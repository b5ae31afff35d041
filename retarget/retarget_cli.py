# SPDX-License-Identifier: GPL-3.0-or-later
"""``p2p-mocap retarget``: a take (or a converted .blend) onto another skeleton, saved as a .blend.

::

    p2p-mocap retarget TAKE.npz|SCENE.blend --target TARGET [-o OUT.blend|FOLDER]

TARGET is a built-in (``rigify``, ``mixamo``, ``ue5``, ``ue4``, ``unity``, ``godot``,
``vrm``: an armature is built from its reference skeleton), a preset ``.json``
(saved from the add-on or with ``--save-map``; it must hold a skeleton), or a
character file (``.fbx``, ``.glb``/``.gltf``, ``.blend``: imported; its armature is
mapped automatically, or by ``--map NAME|PRESET.json``). The output .blend holds
the SMPL-X rig with its take and the target with the retargeted take as a new
action on its NLA. ``-o`` follows the one ``-o`` rule (``common.outputs``): the
default ``clip.<target>.blend`` goes next to the input or into a folder given, numbered
``clip-2.<target>.blend`` when taken. Inputs are only read; a named output that
exists is replaced only with ``--force``. Problems raise ``RetargetError`` (one line); bpy is imported only when
the command runs.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from .character_files import CHARACTER_SUFFIXES
from .errors import RetargetError
from .options import on_off

INPUT_SUFFIXES = (".npz", ".blend")


def add_retarget_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``p2p-mocap retarget``."""
    parser.add_argument("input", metavar="TAKE_OR_BLEND",
                        help="a take .npz, or a .blend made by 'p2p-mocap convert' (or the "
                             "add-on)")
    add_target_arguments(parser, required=True)
    from ..common.outputs import output_help

    parser.add_argument("-o", "--output", metavar="OUT.blend|FOLDER",
                        help=output_help("the .blend to write",
                                         "next to the input, clip.<target>.blend"))
    parser.add_argument("--rig", metavar="NAME",
                        help="the SMPL-X rig to retarget when the .blend has several")
    parser.add_argument("--smplx", metavar="PATH", help="SMPL-X model file or folder (only for "
                                                        "a take .npz)")
    parser.add_argument("--save-map", metavar="PRESET.json",
                        help="also save the mapping used (with the target's skeleton) as a "
                             "preset")
    parser.add_argument("--force", action="store_true", help="replace existing output files")
    return parser


def add_target_arguments(parser, *, required: bool = False, armature_flag: str = "--armature"):
    """``--target``, ``--map``, ``--armature`` (``armature_flag``: export's ``--armature``
    names the SMPL-X rig, so it says ``--target-armature``), ``--foot-ik`` (shared by
    retarget, export and batch)."""
    from .targets import TARGETS

    parser.add_argument("--target", required=required, metavar="TARGET",
                        help=f"the skeleton to put the motion on: {', '.join(TARGETS)}, a "
                             "preset .json, or a character file (.fbx, .glb, .gltf, .blend)")
    parser.add_argument("--map", metavar="NAME|PRESET.json",
                        help="for a character file: its bone mapping (a built-in name or a "
                             "preset .json; default: automatic, by bone names then structure)")
    parser.add_argument(armature_flag, metavar="NAME", dest=armature_flag.lstrip("-").replace("-", "_"),
                        help="for a character file: the armature to drive when it has several")
    parser.add_argument("--foot-ik", type=on_off, default=True, metavar="on|off",
                        help="keep the target's feet planted while the source's feet are in "
                             "contact (default on)")
    return parser


def target_label(target: str) -> str:
    """``mixamo`` -> ``mixamo``; ``hero.fbx`` / ``hero.json`` -> ``hero``."""
    p = Path(str(target))
    return p.stem if p.suffix else str(target).lower()


def clip_stem(input_path: Path) -> str:
    """``clip.take.npz`` / ``clip.npz`` / ``clip.blend`` -> ``clip``."""
    name = input_path.name
    for suffix in (".take.npz", ".npz", ".blend"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def retarget_tail(target: str) -> str:
    """The default name's tail: ``.<target>.blend``."""
    return f".{target_label(target)}.blend"


def default_retarget_output(input_path: Path, target: str) -> Path:
    """``clip.take.npz`` / ``clip.blend`` -> ``clip.<target>.blend`` next to it."""
    return input_path.with_name(clip_stem(input_path) + retarget_tail(target))


def check_target_argument(target: str, mapping: str | None) -> None:
    """Refuse an unknown target or a missing file before anything runs (one line)."""
    from .targets import TARGETS

    t = str(target)
    suffix = Path(t).suffix.lower()
    if t.lower() in TARGETS:
        pass
    elif suffix == ".json" or suffix in CHARACTER_SUFFIXES:
        if not Path(t).expanduser().is_file():
            raise RetargetError(f"{t}: no such file")
    else:
        raise RetargetError(f"unsupported target {t!r}: use one of {', '.join(TARGETS)}, a "
                            f"preset .json or a character file "
                            f"({', '.join(CHARACTER_SUFFIXES)})")
    if mapping is not None:
        if suffix not in CHARACTER_SUFFIXES:
            raise RetargetError("--map applies to a character file target (.fbx, .glb, .gltf, "
                                ".blend)")
        m = str(mapping)
        if m.lower() not in TARGETS and not (Path(m).suffix.lower() == ".json"
                                              and Path(m).expanduser().is_file()):
            raise RetargetError(f"--map {m}: not a built-in target ({', '.join(TARGETS)}) or "
                                "an existing preset .json")


def _need_bpy(what: str) -> None:
    if importlib.util.find_spec("bpy") is None:
        raise RetargetError(f"{what} needs Blender's Python module 'bpy' "
                            "(pip install bpy==5.0.1, or run inside Blender)")


def check_input(path) -> Path:
    src = Path(path).expanduser()
    if src.suffix.lower() not in INPUT_SUFFIXES:
        raise RetargetError(f"{src}: expected a take .npz or a .blend scene")
    if not src.is_file():
        raise RetargetError(f"{src}: no such file")
    return src


def run_retarget(args, out=None, *, smplx=None) -> int:
    """Run ``p2p-mocap retarget`` with parsed ``args``; 0 on success.

    ``smplx``: the SMPL-X model for a take input (file, folder or ``gender -> file``);
    default ``--smplx`` as given."""
    from ..common.outputs import resolve_output
    from .convert import check_output_file

    out = out or sys.stdout
    src = check_input(args.input)
    check_target_argument(args.target, args.map)
    dest = resolve_output(args.output, clip_stem(src), retarget_tail(args.target),
                          next_to=src.parent, suffixes=(".blend",), what="output")
    if dest.make_folder is None:   # a folder to be made (-o new/) is checked when made
        check_output_file(dest.path, ".blend", args.force, "the output must be a .blend file",
                          numbered=dest.numbered)
    if not dest.numbered and dest.path.resolve() == src.resolve():
        raise RetargetError(f"{dest.path}: the output would replace the input")
    save_map = None
    if args.save_map:
        save_map = check_output_file(args.save_map, ".json", args.force,
                                     "--save-map writes a .json preset")
    _need_bpy("retarget")
    from .blender.output import save_blend_atomically
    from .blender.retarget import retarget_in_session

    notes: list[str] = []
    arm_obj, tgt, written = retarget_in_session(
        src, args.target, mapping=args.map, armature=args.armature, rig=args.rig,
        smplx=smplx if smplx is not None else args.smplx, foot_ik=args.foot_ik, notes=notes)
    with dest.folder_made():
        path = save_blend_atomically(dest.path, replace=args.force and not dest.numbered,
                                     numbered=dest.numbered, suffix=dest.tail)
    for n in notes:
        print(f"note: {n}", file=out)
    print(f"wrote {path} (target {arm_obj.name!r}: {len(tgt.mapping)} mapped bones, action "
          f"{written.action.name!r}, {len(written.frames)} frames)", file=out)
    if save_map is not None:
        from dataclasses import replace

        saved = replace(tgt, name=target_label(args.target)).save(save_map, force=args.force)
        print(f"wrote {saved} (the mapping, with the target's skeleton)", file=out)
    return 0
