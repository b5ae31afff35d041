# SPDX-License-Identifier: GPL-3.0-or-later
"""Operators of the add-on."""
from __future__ import annotations

import bpy

from .preferences import get_prefs


def setup_report(context):
    """Run the file part of ``p2p-mocap doctor`` (no torch inside Blender)."""
    from ..doctor import run_checks

    prefs = get_prefs(context)
    return run_checks(
        smplx=bpy.path.abspath(prefs.smplx_path) if prefs and prefs.smplx_path else None,
        checkpoint=bpy.path.abspath(prefs.checkpoint_path) if prefs and prefs.checkpoint_path else None,
        detector=bpy.path.abspath(prefs.detector_path) if prefs and prefs.detector_path else None,
        runtime=False,
    )


class P2P_OT_check_setup(bpy.types.Operator):
    """Look for the model files and say what is missing and where to put it"""

    bl_idname = "p2p.check_setup"
    bl_label = "Check Setup"
    bl_options = {'REGISTER'}

    def execute(self, context):
        from ..doctor import format_report

        report = setup_report(context)
        wm = context.window_manager
        wm.p2p_setup_report = format_report(report)
        wm.p2p_setup_ready = report.ready
        wm.p2p_setup_standins = report.standins
        if not report.ready:
            first = report.problems[0] if report.problems else None
            msg = f"{first.label}: {first.value}" if first else "setup incomplete"
            self.report({'WARNING'}, f"Setup not ready: {msg}")
        elif report.standins:
            self.report({'WARNING'}, "Ready, but STAND-IN model files are in use")
        else:
            self.report({'INFO'}, "Setup ready")
        return {'FINISHED'}
