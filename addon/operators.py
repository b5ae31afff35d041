# SPDX-License-Identifier: GPL-3.0-or-later
"""Operators of the add-on. Long work runs in step objects (``jobs``) that one modal loop
(``modal.StepsOperator``: timer, Esc, progress, report) polls; ``execute`` (scripts,
background mode) runs the same steps to the end."""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import bpy
from bpy_extras.io_utils import ImportHelper

from ..worker.client import run_worker_request
from .jobs import CommandSteps, EstimateSteps, ThreadSteps
from .modal import StepsOperator
from .preferences import get_prefs
from .props import PRESET_ITEMS
from .state import active_estimate


def setup_report(context):
    """The file part of ``p2p-mocap doctor`` (no torch inside Blender)."""
    from ..doctor import run_checks
    from .paths import model_flags

    return run_checks(runtime=False, **model_flags(context))


class P2P_OT_check_setup(bpy.types.Operator):
    """Look for the model files and say what is missing and where to put it (with a runtime
    interpreter set, the full check runs in it: PyTorch, CUDA, checkpoint layout)"""

    bl_idname = "p2p.check_setup"
    bl_label = "Check Setup"
    bl_options = {'REGISTER'}

    def execute(self, context):
        from ..doctor import format_report
        from .paths import model_flags, new_log_path, worker_python

        wm = context.window_manager
        python = worker_python(context)
        text = ready = standins = None
        if python:
            try:
                msg = run_worker_request(python, {"cmd": "doctor", **model_flags(context)},
                                         "doctor", timeout=180, log_path=new_log_path("worker"))
                text, ready, standins = msg["report"], bool(msg["ready"]), bool(msg["standins"])
                text = f"Runtime interpreter: {python}\n{text}"
            except (RuntimeError, OSError) as exc:
                self.report({'WARNING'}, f"The runtime interpreter could not run the check: {exc}")
                text = f"Runtime interpreter {python} failed: {exc}\n(file check only)\n"
        report = setup_report(context)
        if text is None or text.endswith("(file check only)\n"):
            text = (text or "No runtime interpreter set: file check only\n") + \
                format_report(report)
            ready, standins = report.ready, report.standins
        wm.p2p_setup_report = text
        wm.p2p_setup_ready = ready
        wm.p2p_setup_standins = standins
        if not ready:
            first = report.problems[0] if report.problems else None
            msg = f"{first.label}: {first.value}" if first else "see the setup report"
            self.report({'WARNING'}, f"Setup not ready: {msg}")
        elif standins:
            self.report({'WARNING'}, "Ready, but STAND-IN model files are in use")
        else:
            self.report({'INFO'}, "Setup ready")
        return {'FINISHED'}


# --------------------------------------------------------------------------------- estimate
def _image_editor_image(context):
    screen = getattr(context, "screen", None)
    for area in (screen.areas if screen else []):
        if area.type == 'IMAGE_EDITOR' and area.spaces.active.image is not None:
            return area.spaces.active.image
    return None


def _image_input(image) -> str:
    if image.packed_file is not None or not image.filepath:
        raise ValueError(f"image {image.name!r} is not saved to a file; save it first")
    path = bpy.path.abspath(image.filepath)
    return str(Path(path).parent) if image.source == 'SEQUENCE' else path


def source_inputs(context, props):
    """The footage the sidebar points at, as the estimator's ``inputs``. Raises ValueError."""
    kind = props.source_type
    if kind == 'MOVIE':
        if not props.movie_path:
            raise ValueError("choose a movie file")
        return bpy.path.abspath(props.movie_path)
    if kind == 'FOLDER':
        if not props.folder_path:
            raise ValueError("choose a folder of images")
        return bpy.path.abspath(props.folder_path)
    if kind == 'FILES':
        paths = [bpy.path.abspath(i.path) for i in props.image_files if i.path]
        if not paths:
            raise ValueError("choose one or more image files")
        return paths if len(paths) > 1 else paths[0]
    if kind == 'CLIP':
        if props.clip is None:
            raise ValueError("choose a Movie Clip")
        path = bpy.path.abspath(props.clip.filepath)
        return str(Path(path).parent) if props.clip.source == 'SEQUENCE' else path
    image = _image_editor_image(context)
    if image is None:
        raise ValueError("no Image Editor in this screen shows an image")
    return _image_input(image)


def estimate_request(context, props) -> dict:
    """The worker's ``estimate`` request from the sidebar: the footage, the take folder and
    ``EstimateOptions.to_dict()`` (every value checked as the CLI and the worker check
    it, messages naming the sidebar's fields). Raises ValueError."""
    from ..estimator.options import EstimateOptions
    from .paths import data_dir, model_flags, takes_dir

    prefs = get_prefs(context)
    flags = model_flags(context)
    device = props.device if props.device != 'PREFS' else (prefs.device if prefs else "auto")
    person = {"AUTO": "auto", "ALL": "all"}.get(props.person_mode, str(props.person_number))
    end = str(props.frame_end) if props.frame_end > 0 else ""
    options = EstimateOptions.from_dict({
        "frames": f"{props.frame_start}:{end}:{props.frame_step}",
        "person": person,
        "estimator": props.estimator,
        "device": device,
        "precision": props.precision,
        "fov": math.degrees(props.fov) if props.use_fov else None,
        "smplx": flags["smplx"],
        # the preference is the Hand4Whole file; I2L-MeshNet: the add-on's data folder when
        # it holds i2l_meshnet/, else its search order
        "checkpoint": flags["checkpoint"] if props.estimator == "pose2pose" else (
            str(data_dir()) if (data_dir() / "i2l_meshnet").is_dir() else None),
        "detector": flags["detector"] or "auto",
    }, labels=_REQUEST_LABELS)
    return {"inputs": source_inputs(context, props),
            "output": str(takes_dir(props)) + os.sep,
            **options.to_dict()}


# The sidebar's names of the options, for messages about them
_REQUEST_LABELS = {"frames": "Frames", "person": "Person", "estimator": "Estimator",
                   "device": "Device", "precision": "Precision", "fov": "Field of View"}


def importer_for(context, props):
    """The ``on_takes`` callback of an estimate: import the takes with the panel's settings."""
    from .importing import convert_options_from_props, import_take_files

    def on_takes(paths, cancelled):
        arms, notes = import_take_files(context, paths, convert_options_from_props(props))
        return arms, notes
    return on_takes


def _finish_report(op, context, job: EstimateSteps):
    wm = context.window_manager
    if job.result.get("standin"):
        wm.p2p_last_standin = True
    if job.state == "error":
        wm.p2p_last_error = job.error
        wm.p2p_last_log = str(job.log_path)
        op.report({'ERROR'}, job.error_with_log)
        return {'CANCELLED'}
    wm.p2p_last_error = ""
    wm.p2p_last_log = str(job.log_path)
    for w in job.warnings:
        op.report({'WARNING'}, w)
    if job.imported:
        for n in job.imported[1]:
            op.report({'INFO'}, n)
    if job.state == "cancelled":
        op.report({'WARNING'}, f"Cancelled: kept the {job.done} frames done" if job.takes else
                  "Cancelled before any frame was estimated: nothing written")
        return {'CANCELLED'} if not job.takes else {'FINISHED'}
    op.report({'INFO'}, f"Estimated {job.done} frames: {', '.join(job.takes)}")
    return {'FINISHED'}


class P2P_OT_estimate(StepsOperator, bpy.types.Operator):
    """Estimate the motion of the chosen footage in the worker process and import the take
    (Esc stops after the current batch and keeps the frames done)"""

    bl_idname = "p2p.estimate"
    bl_label = "Estimate"
    bl_options = {'REGISTER'}

    timer_s = 0.1

    @classmethod
    def poll(cls, context):
        return active_estimate() is None

    def make_steps(self, context):
        from .paths import worker_python

        props = context.scene.p2p_mocap
        try:
            request = estimate_request(context, props)
            return EstimateSteps(request, python=worker_python(context),
                                 on_takes=importer_for(context, props))
        except (ValueError, OSError) as exc:
            self.report({'ERROR'}, str(exc))
            return None

    def start_steps(self, context, steps):
        context.window_manager.p2p_last_error = ""
        steps.start()

    def finish(self, context, steps):
        return _finish_report(self, context, steps)


class P2P_OT_cancel_estimate(bpy.types.Operator):
    """Stop the running estimate after the current batch; the frames done are kept and
    imported"""

    bl_idname = "p2p.cancel_estimate"
    bl_label = "Stop"
    bl_options = {'REGISTER'}

    @classmethod
    def poll(cls, context):
        return active_estimate() is not None

    def execute(self, context):
        active_estimate().cancel()
        return {'FINISHED'}


# --------------------------------------------------------------------------------- takes
class P2P_OT_choose_images(bpy.types.Operator, ImportHelper):
    """Choose the image files to estimate (one take row per image, in natural order)"""

    bl_idname = "p2p.choose_images"
    bl_label = "Choose Images"
    bl_options = {'REGISTER', 'UNDO'}

    filter_glob: bpy.props.StringProperty(
        default="*.png;*.jpg;*.jpeg;*.bmp;*.tif;*.tiff;*.webp;*.exr", options={'HIDDEN'})
    files: bpy.props.CollectionProperty(type=bpy.types.OperatorFileListElement,
                                        options={'HIDDEN', 'SKIP_SAVE'})
    directory: bpy.props.StringProperty(subtype='DIR_PATH', options={'HIDDEN', 'SKIP_SAVE'})

    def execute(self, context):
        props = context.scene.p2p_mocap
        names = [f.name for f in self.files if f.name] or [Path(self.filepath).name]
        props.image_files.clear()
        folder = self.directory or str(Path(self.filepath).parent)
        for name in names:
            props.image_files.add().path = os.path.join(folder, name)
        props.source_type = 'FILES'
        return {'FINISHED'}


class P2P_OT_import_take(bpy.types.Operator, ImportHelper):
    """Import take files (.take.npz), AMASS/SMPL-X .npz, GVHMR .pt, .smpl or a SMPLer-X output
    folder's files as keyframed SMPL-X rigs, with the panel's smoothing"""

    bl_idname = "p2p.import_take"
    bl_label = "Import Take"
    bl_options = {'REGISTER', 'UNDO'}

    filename_ext = ".npz"
    filter_glob: bpy.props.StringProperty(default="*.npz;*.pt;*.smpl", options={'HIDDEN'})
    files: bpy.props.CollectionProperty(type=bpy.types.OperatorFileListElement,
                                        options={'HIDDEN', 'SKIP_SAVE'})
    directory: bpy.props.StringProperty(subtype='DIR_PATH', options={'HIDDEN', 'SKIP_SAVE'})

    def execute(self, context):
        from .importing import convert_options_from_props, import_take_files

        props = context.scene.p2p_mocap
        folder = self.directory or str(Path(self.filepath).parent)
        paths = [os.path.join(folder, f.name) for f in self.files if f.name] or [self.filepath]
        try:
            arms, notes = import_take_files(context, paths, convert_options_from_props(props))
        except Exception as exc:  # noqa: BLE001 -- a readable message, never a silent failure
            self.report({'ERROR'}, f"Import failed: {exc}")
            return {'CANCELLED'}
        for n in notes:
            self.report({'INFO'}, n)
        self.report({'INFO'}, f"Imported {len(arms)} take(s)")
        return {'FINISHED'}


class P2P_OT_apply_smoothing(bpy.types.Operator):
    """Re-apply the panel's smoothing to the selected take (no re-estimation)"""

    bl_idname = "p2p.apply_smoothing"
    bl_label = "Apply Smoothing"
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context):
        from .importing import selected_take_armature

        return selected_take_armature(context) is not None

    def execute(self, context):
        from .qa_ui import resolve_and_report

        return resolve_and_report(self, context, "Smoothing failed")


# --------------------------------------------------------------------------------- export
class P2P_OT_export(bpy.types.Operator):
    """Export the selected take rig with an engine preset (your scene is not changed)"""

    bl_idname = "p2p.export"
    bl_label = "Export Take"
    bl_options = {'REGISTER'}

    preset: bpy.props.EnumProperty(name="Preset", items=PRESET_ITEMS,
                                   description="Target engine or format")
    filepath: bpy.props.StringProperty(subtype='FILE_PATH', options={'SKIP_SAVE'},
                                       description="The file to write")
    check_existing: bpy.props.BoolProperty(default=True, options={'HIDDEN'})

    @classmethod
    def poll(cls, context):
        from .importing import selected_take_armature

        return selected_take_armature(context) is not None

    def invoke(self, context, event):
        from ..retarget.export_presets import PRESETS
        from .importing import selected_take_armature

        arm = selected_take_armature(context)
        stem = bpy.path.clean_name(arm.name) if arm else "take"
        self.filepath = stem + "_" + self.preset + PRESETS[self.preset].suffix
        context.window_manager.fileselect_add(self)
        return {'RUNNING_MODAL'}

    def execute(self, context):
        from ..retarget.blender.export import export_scene
        from ..retarget.export_presets import PRESETS
        from .importing import selected_take_armature

        props = context.scene.p2p_mocap
        arm = selected_take_armature(context)
        path = Path(bpy.path.abspath(self.filepath))
        suffix = PRESETS[self.preset].suffix
        if path.suffix.lower() != suffix.lower():
            path = path.with_name(path.name + suffix)
        try:
            res = export_scene(None, self.preset, path, root=props.export_root,
                               rest_frame=props.export_rest_frame, overwrite=True,
                               armature=arm.name if arm else None)
        except Exception as exc:  # noqa: BLE001
            self.report({'ERROR'}, f"Export failed: {exc}")
            return {'CANCELLED'}
        self.report({'INFO'}, f"Exported {getattr(res, 'path', path)}")
        return {'FINISHED'}


# --------------------------------------------------------------------------------- installers
class P2P_OT_install_smplx(bpy.types.Operator, ImportHelper):
    """Install the SMPL-X model from the official zip (SMPL-X v1.1 NPZ+PKL) into the add-on's
    data folder: only the .npz files are extracted and checked"""

    bl_idname = "p2p.install_smplx"
    bl_label = "Install SMPL-X Zip"
    bl_options = {'REGISTER'}

    filename_ext = ".zip"
    filter_glob: bpy.props.StringProperty(default="*.zip", options={'HIDDEN'})

    def execute(self, context):
        from ..weights.install import InstallError, install_smplx_zip
        from .paths import data_dir

        try:
            paths = install_smplx_zip(self.filepath, data_dir())
        except InstallError as exc:
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        self.report({'INFO'}, "Installed " + ", ".join(p.name for p in paths))
        bpy.ops.p2p.check_setup()
        return {'FINISHED'}


class P2P_OT_install_checkpoint(bpy.types.Operator, ImportHelper):
    """Copy the Hand4Whole checkpoint (snapshot_6.pth.tar) into the add-on's data folder"""

    bl_idname = "p2p.install_checkpoint"
    bl_label = "Install Checkpoint"
    bl_options = {'REGISTER'}

    filter_glob: bpy.props.StringProperty(default="*.tar;*.pth;*.safetensors",
                                          options={'HIDDEN'})

    def execute(self, context):
        from ..weights.install import InstallError, install_checkpoint
        from .paths import data_dir

        try:
            path = install_checkpoint(self.filepath, data_dir())
        except (InstallError, OSError) as exc:
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        self.report({'INFO'}, f"Installed {path}")
        bpy.ops.p2p.check_setup()
        return {'FINISHED'}


def online_access() -> bool:
    """Blender's "Allow Online Access" (4.2+); True where Blender has no such setting."""
    return bool(getattr(bpy.app, "online_access", True))


class P2P_OT_download_detector(StepsOperator, bpy.types.Operator):
    """Download torchvision's person detector weights (160 MB) into the add-on's data folder
    (needs Allow Online Access in Preferences > System)"""

    bl_idname = "p2p.download_detector"
    bl_label = "Download Detector"
    bl_options = {'REGISTER'}

    timer_s = 0.2

    @classmethod
    def poll(cls, context):
        return online_access()

    def make_steps(self, context):
        from ..weights.download import DETECTOR_WEIGHTS, download_detector_weights
        from .paths import data_dir

        if not online_access():
            self.report({'ERROR'}, "Online access is off (Preferences > System)")
            return None
        # weights.download owns the address, the exact size and the sha256.
        return ThreadSteps(download_detector_weights, data_dir() / DETECTOR_WEIGHTS.subdir,
                           label="Downloading the detector")

    def finish(self, context, steps):
        if steps.error:
            self.report({'ERROR'}, f"Download failed: {steps.error}")
            return {'CANCELLED'}
        self.report({'INFO'}, f"Downloaded {steps.result}")
        return {'FINISHED'}


class P2P_OT_install_runtime(StepsOperator, bpy.types.Operator):
    """Create a private Python environment with PyTorch for the worker in the add-on's data
    folder (several GB download; Blender stays usable meanwhile)"""

    bl_idname = "p2p.install_runtime"
    bl_label = "Install Runtime"
    bl_options = {'REGISTER'}

    timer_s = 0.5
    run_interval = 0.5

    @classmethod
    def poll(cls, context):
        return online_access()

    def make_steps(self, context):
        from .paths import new_log_path, runtime_dir
        from .runtime import runtime_commands

        prefs = get_prefs(context)
        device = prefs.device if prefs else "auto"
        commands, labels = runtime_commands(sys.executable, runtime_dir(), device)
        return CommandSteps(commands, new_log_path("runtime"), labels=labels)

    def finish(self, context, steps):
        from .paths import runtime_dir, venv_python

        if steps.state != "finished":
            self.report({'ERROR'}, f"Install Runtime {steps.state}: {steps.error} "
                        f"(log: {steps.log_path})")
            return {'CANCELLED'}
        prefs = get_prefs(context)
        if prefs is not None:
            prefs.runtime_python = str(venv_python(runtime_dir()))
        self.report({'INFO'}, "Runtime installed")
        return {'FINISHED'}


CLASSES = (
    P2P_OT_check_setup, P2P_OT_estimate, P2P_OT_cancel_estimate, P2P_OT_choose_images,
    P2P_OT_import_take, P2P_OT_apply_smoothing, P2P_OT_export, P2P_OT_install_smplx,
    P2P_OT_install_checkpoint, P2P_OT_download_detector, P2P_OT_install_runtime,
)
