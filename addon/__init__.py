# SPDX-License-Identifier: GPL-3.0-or-later
"""Blender UI of the extension. Never imports torch: estimation runs in a worker process."""
from __future__ import annotations

import bpy

from . import operators, panels, preferences

_CLASSES = (
    preferences.P2P_AddonPreferences,
    operators.P2P_OT_check_setup,
    panels.P2P_PT_mocap,
    panels.P2P_PT_setup,
)


def register():
    for cls in _CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.WindowManager.p2p_setup_report = bpy.props.StringProperty(
        name="Setup report", options={'SKIP_SAVE'})
    bpy.types.WindowManager.p2p_setup_ready = bpy.props.BoolProperty(options={'SKIP_SAVE'})
    bpy.types.WindowManager.p2p_setup_standins = bpy.props.BoolProperty(options={'SKIP_SAVE'})


def unregister():
    for name in ("p2p_setup_report", "p2p_setup_ready", "p2p_setup_standins"):
        if hasattr(bpy.types.WindowManager, name):
            delattr(bpy.types.WindowManager, name)
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
