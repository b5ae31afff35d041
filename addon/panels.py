# SPDX-License-Identifier: GPL-3.0-or-later
"""Sidebar panels (3D Viewport > Sidebar > Mocap)."""
from __future__ import annotations

import bpy

from .preferences import draw_setup_report
from .state import active_estimate


def _standin_in_use(context) -> bool:
    wm = context.window_manager
    ob = context.active_object
    rig_standin = bool(ob is not None and (ob.get("p2p_standin") or
                                           (ob.parent is not None and ob.parent.get("p2p_standin"))))
    return bool(wm.p2p_setup_standins or wm.p2p_last_standin or rig_standin)


class _MocapPanel:
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "Mocap"


class P2P_PT_mocap(_MocapPanel, bpy.types.Panel):
    bl_label = "Pose2Pose Mocap"

    def draw(self, context):
        wm = context.window_manager
        layout = self.layout
        if not wm.p2p_setup_report:
            layout.label(text="Check the setup first", icon='INFO')
        elif not wm.p2p_setup_ready:
            layout.label(text="Model files missing", icon='ERROR')
        else:
            layout.label(text="Ready", icon='CHECKMARK')
        if _standin_in_use(context):
            layout.label(text="Using STAND-IN model files: motion is meaningless", icon='ERROR')
        layout.operator("p2p.check_setup", icon='CHECKMARK')


class P2P_PT_source(_MocapPanel, bpy.types.Panel):
    bl_label = "Footage"
    bl_parent_id = "P2P_PT_mocap"

    def draw(self, context):
        props = context.scene.p2p_mocap
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        layout.prop(props, "source_type")
        kind = props.source_type
        if kind == 'MOVIE':
            layout.prop(props, "movie_path")
        elif kind == 'FOLDER':
            layout.prop(props, "folder_path")
        elif kind == 'FILES':
            row = layout.row()
            row.label(text=f"{len(props.image_files)} image(s)")
            row.operator("p2p.choose_images", text="Choose…", icon='FILE_IMAGE')
        elif kind == 'CLIP':
            layout.prop(props, "clip")
        col = layout.column(align=True)
        col.prop(props, "frame_start", text="Frame Start")
        col.prop(props, "frame_end", text="End")
        col.prop(props, "frame_step")
        layout.prop(props, "person_mode")
        if props.person_mode == 'NUMBER':
            layout.prop(props, "person_number")
        layout.prop(props, "estimator")
        layout.prop(props, "device")
        layout.prop(props, "precision")
        row = layout.row(heading="Field of View")
        row.prop(props, "use_fov", text="")
        sub = row.row()
        sub.active = props.use_fov
        sub.prop(props, "fov", text="")
        layout.prop(props, "output_dir")


class P2P_PT_estimate(_MocapPanel, bpy.types.Panel):
    bl_label = "Estimate"
    bl_parent_id = "P2P_PT_mocap"

    def draw(self, context):
        wm = context.window_manager
        props = context.scene.p2p_mocap
        layout = self.layout
        job = active_estimate()
        if job is not None:
            if hasattr(layout, "progress"):
                layout.progress(factor=job.fraction, type='BAR', text=job.status_text)
            else:
                layout.label(text=job.status_text, icon='TIME')
            layout.operator("p2p.cancel_estimate", icon='CANCEL')
        else:
            layout.operator("p2p.estimate", icon='PLAY')
        layout.prop(props, "pose_correctives")
        layout.operator("p2p.import_take", icon='IMPORT')
        if wm.p2p_last_error:
            box = layout.box()
            box.label(text=wm.p2p_last_error[:120], icon='ERROR')
            if wm.p2p_last_log:
                box.label(text=f"Log: {wm.p2p_last_log}")


class P2P_PT_smoothing(_MocapPanel, bpy.types.Panel):
    bl_label = "Smoothing"
    bl_parent_id = "P2P_PT_mocap"
    bl_options = {'DEFAULT_CLOSED'}

    def draw_header(self, context):
        self.layout.prop(context.scene.p2p_mocap, "live_smoothing", text="")

    def draw(self, context):
        props = context.scene.p2p_mocap
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        layout.prop(props, "smooth_method")
        col = layout.column(align=True, heading="Cutoff (Hz)")
        col.active = props.smooth_method != 'none'
        for name in ("smooth_root", "smooth_body", "smooth_hands", "smooth_face"):
            col.prop(props, name)
        if props.smooth_method == 'one_euro':
            layout.prop(props, "smooth_beta")
        layout.operator("p2p.apply_smoothing", icon='IPO_EASE_IN_OUT')
        if props.smoothing_message:
            layout.label(text=props.smoothing_message,
                         icon='ERROR' if "failed" in props.smoothing_message else 'INFO')


class P2P_MT_export(bpy.types.Menu):
    bl_label = "Export Take"
    bl_idname = "P2P_MT_export"

    def draw(self, context):
        from .props import PRESET_ITEMS

        for name, label, _desc, _i in PRESET_ITEMS:
            self.layout.operator("p2p.export", text=label).preset = name


class P2P_PT_export(_MocapPanel, bpy.types.Panel):
    bl_label = "Export"
    bl_parent_id = "P2P_PT_mocap"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        props = context.scene.p2p_mocap
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        layout.prop(props, "export_root")
        layout.prop(props, "export_rest_frame")
        layout.menu("P2P_MT_export", icon='EXPORT')


class P2P_PT_setup(_MocapPanel, bpy.types.Panel):
    bl_label = "Setup"
    bl_parent_id = "P2P_PT_mocap"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        draw_setup_report(self.layout, context)


CLASSES = (P2P_PT_mocap, P2P_PT_source, P2P_PT_estimate, P2P_PT_smoothing, P2P_MT_export,
           P2P_PT_export, P2P_PT_setup)
