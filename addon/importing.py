# SPDX-License-Identifier: GPL-3.0-or-later
"""Takes into the open scene, and re-smoothing a take's keys (scipy here, or the worker)."""
from __future__ import annotations

import tempfile
from pathlib import Path

from .cleaning import NUMPY_METHODS
from .paths import have_scipy, model_flags, new_log_path, take_model_file, worker_python


def smoothing_from_props(props):
    from ..retarget.smoothing import Smoothing

    return Smoothing(method=props.smooth_method, one_euro_beta=float(props.smooth_beta),
                     root_hz=props.smooth_root or None, body_hz=props.smooth_body or None,
                     hands_hz=props.smooth_hands or None, face_hz=props.smooth_face or None)


def convert_options_from_props(props):
    """The sidebar's settings as the one ``ConvertOptions`` the CLI and batch use too."""
    from ..retarget.options import ConvertOptions
    from .cleaning import clean_options_from_props

    return ConvertOptions(smoothing=smoothing_from_props(props),
                          pose_correctives=bool(props.pose_correctives),
                          clean=clean_options_from_props(props))


def import_take_files(context, paths, options=None) -> tuple[list, list]:
    """Build a rig (or add a take to the person's rig) per take file. -> (armatures, notes).

    ``options``: a ``retarget.options.ConvertOptions`` (default: its defaults)."""
    from ..retarget.options import ConvertOptions

    options = options if options is not None else ConvertOptions()
    smoothing = options.smoothing
    from ..retarget.blender.build import build_take_scene
    from ..retarget.smoothing import NO_SMOOTHING
    from ..retarget.smplx_model import load_body_model
    from ..retarget.take import read_take

    flags = model_flags(context)
    notes: list[str] = []
    arms = []
    if smoothing is not None and smoothing.method not in NUMPY_METHODS and not have_scipy():
        wanted, smoothing = smoothing, NO_SMOOTHING
    else:
        wanted = None
    for path in paths:
        take = read_take(_as_take_file(context, path, notes))
        model = load_body_model(take_model_file(flags, take, options.gender or take.gender),
                                take.body_model)
        built = build_take_scene(model, take, scene=context.scene,
                                 smoothing=smoothing or NO_SMOOTHING,
                                 pose_correctives=options.pose_correctives,
                                 shape_keys=options.shape_keys)
        arm = built.rig.armature
        notes += built.notes
        if options.clean is not None:  # re-solved from the stored raw take (cleaning.py)
            from .cleaning import clean_take_keys, solver_for

            try:
                _, flags, more = clean_take_keys(context.scene, arm, options, built.actions.body,
                                                 solver=solver_for(context, options))
                notes += more + [f"cleaned: {len(flags)} QA flag(s) remain"]
            except Exception as exc:  # noqa: BLE001 -- the take stays as imported; say why
                notes.append(f"the take was imported without the clean-up: {exc}")
        elif wanted is not None:
            try:
                notes.append(_resmooth_in_worker(context, arm, wanted, built.actions.body))
            except Exception as exc:  # noqa: BLE001 -- the take stays raw; say why
                notes.append(f"the take was imported unsmoothed: {exc}")
        arms.append(arm)
    if arms:
        for ob in context.view_layer.objects:
            ob.select_set(False)
        arms[-1].select_set(True)
        context.view_layer.objects.active = arms[-1]
    return arms, notes


def _as_take_file(context, path, notes: list) -> str:
    """A take or AMASS file as it is (read here); another tool's result (SMPLer-X folder,
    GVHMR ``.pt``, ``.smpl``) is imported by the worker (GVHMR needs torch) and kept as a
    take in the take folder, like an estimate's."""
    from ..retarget.importers import detect_format
    from ..retarget.take import read_take, write_take
    from ..worker.client import run_worker_request
    from .paths import takes_dir

    fmt = detect_format(Path(path))
    if fmt in (None, "amass"):
        return path
    python = worker_python(context)
    if not python:
        raise RuntimeError(f"importing {fmt} results needs the runtime interpreter (set it "
                           "in the add-on preferences)")
    src = Path(path)
    with tempfile.TemporaryDirectory(prefix="p2p_import_") as tmp:
        out = Path(tmp) / "imported.take.npz"
        reply = run_worker_request(python, {"cmd": "import", "path": str(src), "format": fmt,
                                            "smplx": model_flags(context)["smplx"],
                                            "out": str(out)},
                                   "imported", timeout=300, log_path=new_log_path("worker"))
        take = read_take(out, strict=True)
    folder = takes_dir(context.scene.p2p_mocap)
    name = f"{src.stem if src.is_file() else src.name}.take.npz"
    written = write_take(folder / name, take, numbered=True)
    notes.append(f"imported {src.name} ({fmt}) as {written}")
    notes.extend(str(n) for n in reply.get("notes", []))
    return str(written)


def selected_take_armature(context):
    """The active object if it is a take rig (or the armature of the active body mesh)."""
    ob = context.active_object
    if ob is None:
        return None
    if ob.type == 'MESH' and ob.parent is not None and ob.parent.type == 'ARMATURE':
        ob = ob.parent
    if ob.type == 'ARMATURE' and "p2p_rig" in ob:
        return ob
    return None


def resmooth_selected(context, settings) -> str:
    """Re-apply smoothing to the selected take (no re-inference). Returns a message."""
    from ..retarget.blender.anim import resmooth_take

    arm = selected_take_armature(context)
    if arm is None:
        return ""
    if settings.method in NUMPY_METHODS or have_scipy():
        action = resmooth_take(arm, settings)
        return f"smoothed {action.name}"
    return _resmooth_in_worker(context, arm, settings)


def _resmooth_in_worker(context, arm, settings, action=None) -> str:
    """Blender without scipy: the worker filters the raw take, the keys are written here."""
    from ..retarget.blender.anim import resmooth_take

    action = resmooth_take(arm, settings, action, smoother=worker_smoother(context))
    return f"smoothed {action.name} (in the worker)"


def worker_smoother(context):
    """A smoother ``(take, settings) -> take`` (``retarget.blender.anim.Smoother``) that
    has the runtime interpreter's worker filter the take: the take goes to it as a take
    file (``write_take``, the one serializer) and comes back as one (``read_take``)."""
    python = worker_python(context)
    if not python:
        raise RuntimeError("smoothing needs scipy, which Blender's Python lacks, or the "
                           "runtime interpreter (set it in the add-on preferences)")

    def smooth(take, settings):
        from ..retarget.take import read_take, write_take
        from ..worker.client import run_worker_request

        with tempfile.TemporaryDirectory(prefix="p2p_smooth_") as tmp:
            src = write_take(Path(tmp) / "raw.take.npz", take)
            out = Path(tmp) / "smoothed.take.npz"
            run_worker_request(python, {"cmd": "smooth", "take": str(src),
                                        "settings": settings.to_dict(), "out": str(out)},
                               "smoothed", timeout=120, log_path=new_log_path("worker"))
            return read_take(out, strict=True)

    return smooth
