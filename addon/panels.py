# SPDX-License-Identifier: GPL-3.0-or-later
"""Sidebar panels (3D Viewport > Sidebar > Mocap)."""
from __future__ import annotations

import bpy


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


class P2P_PT_mocap(bpy.types.Panel):
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "Mocap"
    bl_label = "Pose2Pose Mocap"

    def draw(self, context):
        wm = context.window_manager
        layout = self.layout
        if not wm.p2p_setup_report:
            layout.label(text="Check the setup first", icon='INFO')
        elif not wm.p2p_setup_ready:
            layout.label(text="Model files missing", icon='ERROR')
        elif wm.p2p_setup_standins:
            layout.label(text="Using STAND-IN model files", icon='ERROR')
        else:
            layout.label(text="Ready", icon='CHECKMARK')
        layout.operator("p2p.check_setup", icon='CHECKMARK')


class P2P_PT_setup(bpy.types.Panel):
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "Mocap"
    bl_label = "Setup"
    bl_parent_id = "P2P_PT_mocap"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        draw_setup_report(self.layout, context)
