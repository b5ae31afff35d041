# SPDX-License-Identifier: GPL-3.0-or-later
"""Add-on preferences: where the model files are (first place in the search order), and
the setup report they show (the sidebar's Setup panel shows it too)."""
from __future__ import annotations

import bpy

# Preferences are keyed by the extension's own package (bl_ext.<repo>.pose2pose_mocap).
from .state import ADDON_PACKAGE

LICENCE_NOTES = (
    ("SMPL-X model", "MPI SMPL-X Model License: registration at smpl-x.is.tue.mpg.de; "
                     "non-commercial unless licensed"),
    ("Hand4Whole checkpoint", "code MIT; the checkpoint's own terms are not stated by its authors"),
    ("Person detector", "torchvision Faster R-CNN, COCO-trained weights"),
)


def draw_setup_report(layout, context):
    wm = context.window_manager
    text = getattr(wm, "p2p_setup_report", "")
    if not text:
        layout.label(text="Setup not checked yet", icon='QUESTION')
        return
    if wm.p2p_setup_standins:
        layout.label(text="STAND-IN model files: results are meaningless", icon='ERROR')
    box = layout.box()
    for line in text.splitlines():
        if line.strip():
            box.label(text=line)


def get_prefs(context=None):
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_PACKAGE)
    return addon.preferences if addon else None


class P2P_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_PACKAGE

    smplx_path: bpy.props.StringProperty(
        name="SMPL-X Model",
        description="Folder holding smplx/SMPLX_NEUTRAL.npz, or the .npz file itself. "
                    "Empty: use the environment variable, then the user data folder",
        subtype='FILE_PATH')
    checkpoint_path: bpy.props.StringProperty(
        name="Checkpoint",
        description="Hand4Whole checkpoint snapshot_6.pth.tar (or its .safetensors copy). "
                    "Empty: use the environment variable, then the user data folder",
        subtype='FILE_PATH')
    detector_path: bpy.props.StringProperty(
        name="Person Detector",
        description="Faster R-CNN weights (.pth) for finding people; optional",
        subtype='FILE_PATH')

    runtime_python: bpy.props.StringProperty(
        name="Runtime Interpreter",
        description="A Python with PyTorch that runs the estimator worker (e.g. a venv's "
                    "bin/python). Empty: the P2P_MOCAP_WORKER_PYTHON environment variable, "
                    "then the runtime made by Install Runtime",
        subtype='FILE_PATH')
    device: bpy.props.EnumProperty(
        name="Device",
        items=(('auto', "Auto", "The CUDA GPU when PyTorch sees one, else the CPU"),
               ('cpu', "CPU", "The processor"),
               ('cuda', "CUDA GPU", "An NVIDIA GPU through PyTorch")),
        default='auto', description="Where the network runs unless the sidebar says otherwise")

    def draw(self, context):
        import bpy as _bpy

        layout = self.layout
        layout.use_property_split = True
        col = layout.column(heading="Model Files")
        col.prop(self, "smplx_path")
        col.prop(self, "checkpoint_path")
        col.prop(self, "detector_path")
        row = layout.row(align=True)
        row.operator("p2p.install_smplx", icon='IMPORT')
        row.operator("p2p.install_checkpoint", icon='IMPORT')
        row = layout.row(align=True)
        row.enabled = bool(getattr(_bpy.app, "online_access", True))
        row.operator("p2p.download_detector", icon='URL')
        col = layout.column(heading="Runtime")
        col.prop(self, "runtime_python")
        col.prop(self, "device")
        row = layout.row(align=True)
        row.enabled = bool(getattr(_bpy.app, "online_access", True))
        row.operator("p2p.install_runtime", icon='CONSOLE')
        if not getattr(_bpy.app, "online_access", True):
            layout.label(text="Downloads need Allow Online Access (Preferences > System)",
                         icon='INFO')
        layout.operator("p2p.check_setup", icon='CHECKMARK')
        draw_setup_report(layout, context)
        box = layout.box()
        box.label(text="Licences", icon='INFO')
        for what, note in LICENCE_NOTES:
            row = box.row()
            row.label(text=f"{what}: {note}")
