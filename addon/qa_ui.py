# SPDX-License-Identifier: GPL-3.0-or-later
"""The Clean-Up & QA sub-panel: the clean-up's settings, the selected take's QA flags
(jump to a flag's frame, fix it, ignore it) and the re-solve they share with smoothing.

The flags live on the take's body action (``Action.p2p_qa_flags``, see ``cleaning``);
selecting one in the list jumps to its first frame."""
from __future__ import annotations

import bpy

from . import cleaning
from .importing import resmooth_selected, selected_take_armature


def resolve_selected(context, props) -> str:
    """Re-solve the selected take's keys from its stored raw take with the panel's
    smoothing and clean-up settings (no re-estimation). Returns a message."""
    from .importing import convert_options_from_props

    options = convert_options_from_props(props)
    arm = selected_take_armature(context)
    if arm is None:
        return ""
    if options.clean is None:
        msg = resmooth_selected(context, options.smoothing)
        action = _top_action(arm)
        if action is not None and (cleaning.CLEAN_PROP in action
                                   or len(getattr(action, cleaning.FLAGS_PROP))):
            cleaning.clear_clean(context.scene, action)
        return msg
    action, flags, notes = cleaning.clean_take_keys(context.scene, arm, options,
                                                    solver=cleaning.solver_for(context, options))
    text = f"cleaned {action.name}: {len(flags)} QA flag(s)"
    return "; ".join([text] + notes)[:400]


def _top_action(arm):
    from ..retarget.blender.anim import top_take_action
    from ..retarget.errors import RetargetError

    try:
        return top_take_action(arm)
    except RetargetError:
        return None


def selected_take_action(context):
    """The body action of the selected rig's top take, or None."""
    arm = selected_take_armature(context)
    return _top_action(arm) if arm is not None else None


def _index_changed(self, context):
    """Selecting a flag in the list jumps to its first frame."""
    flags = getattr(self, cleaning.FLAGS_PROP)
    if 0 <= self.p2p_qa_index < len(flags) and context.scene is not None:
        context.scene.frame_set(flags[self.p2p_qa_index].frame)


class P2P_QAFlag(bpy.types.PropertyGroup):
    kind: bpy.props.StringProperty(name="Kind", description="What the QA pass found")
    frame: bpy.props.IntProperty(name="Frame", description="First frame of the span")
    end_frame: bpy.props.IntProperty(name="End", description="The frame after the span")
    severity: bpy.props.StringProperty(name="Severity", description="info, warning or error")
    reason: bpy.props.StringProperty(name="Reason", description="Why it was flagged")
    joint: bpy.props.StringProperty(name="Joint", description="The joint, where one is named")
    ignored: bpy.props.BoolProperty(
        name="Ignored", default=False,
        description="Hidden from the list and the timeline (kept while a re-solve finds the "
                    "same span)")


_SEVERITY_ICON = {"info": 'INFO', "warning": 'ERROR', "error": 'CANCEL'}


class P2P_UL_qa_flags(bpy.types.UIList):
    """The QA flags of the selected take; ignored ones are hidden unless asked for."""

    show_ignored: bpy.props.BoolProperty(name="Show Ignored", default=False,
                                         description="List the flags that were ignored too")

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname,
                  index=0, flt_flag=0):
        row = layout.row(align=True)
        row.label(text=f"{item.kind}" + (f" ({item.joint})" if item.joint else ""),
                  icon='HIDE_ON' if item.ignored else _SEVERITY_ICON.get(item.severity, 'DOT'))
        row.label(text=f"{item.frame}–{item.end_frame - 1}")

    def draw_filter(self, context, layout):
        layout.prop(self, "show_ignored")

    def filter_items(self, context, data, propname):
        items = getattr(data, propname)
        flags = [0 if (it.ignored and not self.show_ignored) else self.bitflag_filter_item
                 for it in items]
        return flags, []


def _flag_at(context, index):
    action = selected_take_action(context)
    if action is None:
        return None, None
    flags = getattr(action, cleaning.FLAGS_PROP)
    if index < 0:
        index = action.p2p_qa_index
    return action, (flags[index] if 0 <= index < len(flags) else None)


class _FlagOperator:
    index: bpy.props.IntProperty(name="Flag", default=-1, options={'SKIP_SAVE'},
                                 description="The flag's row in the list (-1: the active one)")

    @classmethod
    def poll(cls, context):
        action = selected_take_action(context)
        return action is not None and len(getattr(action, cleaning.FLAGS_PROP)) > 0


class P2P_OT_qa_jump(_FlagOperator, bpy.types.Operator):
    """Go to the first frame of the flagged span"""

    bl_idname = "p2p.qa_jump"
    bl_label = "Jump to Flag"
    bl_options = {'REGISTER'}

    def execute(self, context):
        _action, flag = _flag_at(context, self.index)
        if flag is None:
            self.report({'ERROR'}, "no such QA flag")
            return {'CANCELLED'}
        context.scene.frame_set(flag.frame)
        return {'FINISHED'}


class P2P_OT_qa_ignore(_FlagOperator, bpy.types.Operator):
    """Hide the flag from the list and the timeline (or show it again)"""

    bl_idname = "p2p.qa_ignore"
    bl_label = "Ignore Flag"
    bl_options = {'REGISTER', 'UNDO'}

    def execute(self, context):
        action, flag = _flag_at(context, self.index)
        if flag is None:
            self.report({'ERROR'}, "no such QA flag")
            return {'CANCELLED'}
        flag.ignored = not flag.ignored
        cleaning.update_markers(context.scene, action)
        return {'FINISHED'}


FIX_ITEMS = (
    ('AUTO', "Auto", "Interpolate the span (slerp), or turn on foot locking / the ground fix "
     "for foot skate / penetration", 0),
    ('interpolate', "Interpolate", "Slerp the rotations across the span from its neighbours", 1),
    ('refilter', "Re-filter", "Run the smoothing again on a window around the span", 2),
    ('invalidate', "Invalidate", "Drop the span's frames (no keys there)", 3),
)


class P2P_OT_qa_fix(_FlagOperator, bpy.types.Operator):
    """Fix every flag of this kind (a QA fix before filtering, or the clean-up setting that
    removes it) and re-solve the take from its raw data"""

    bl_idname = "p2p.qa_fix"
    bl_label = "Fix Flags of This Kind"
    bl_options = {'REGISTER', 'UNDO'}

    fix: bpy.props.EnumProperty(name="Fix", items=FIX_ITEMS, default='AUTO',
                                description="How to fix the flags of this kind")

    def execute(self, context):
        from ..retarget.cleanup.clean import parse_fix_flags

        props = context.scene.p2p_mocap
        _action, flag = _flag_at(context, self.index)
        if flag is None:
            self.report({'ERROR'}, "no such QA flag")
            return {'CANCELLED'}
        kind, span = flag.kind, (flag.frame, flag.end_frame)
        try:
            fixes = dict(parse_fix_flags(props.clean_fix_flags))
        except Exception as exc:  # noqa: BLE001 -- the user's Fix Flags text: reported
            self.report({'ERROR'}, f"Fix Flags: {exc}")
            return {'CANCELLED'}
        live, props.live_smoothing = props.live_smoothing, False   # one re-solve, below
        try:
            props.clean_enabled = True
            setting = cleaning.SETTING_OF_KIND.get(kind)
            if setting is not None and self.fix == 'AUTO':
                if getattr(props, setting) and props.clean_foot_lock:
                    self.report({'WARNING'}, f"{kind}: {setting.replace('clean_', '')} is "
                                             "already on; nothing more to fix here")
                    return {'CANCELLED'}
                setattr(props, setting, True)
                props.clean_foot_lock = True   # (the ground fix is part of foot locking)
            else:
                fix = cleaning.FIX_OF_KIND.get(kind, "interpolate") if self.fix == 'AUTO' \
                    else self.fix
                fixes[kind] = fix
                props.clean_fix_flags = ",".join(f"{k}={v}" for k, v in sorted(fixes.items()))
        finally:
            props.live_smoothing = live
        try:
            msg = resolve_selected(context, props)
        except Exception as exc:  # noqa: BLE001 -- reported, never a traceback
            props.smoothing_message = f"Clean-up failed: {exc}"
            self.report({'ERROR'}, props.smoothing_message)
            return {'CANCELLED'}
        props.smoothing_message = msg
        action = selected_take_action(context)
        left = [f for f in getattr(action, cleaning.FLAGS_PROP)
                if f.kind == kind and (f.frame, f.end_frame) == span]
        self.report({'WARNING'} if left else {'INFO'},
                    f"{kind} at {span[0]}: " + ("still flagged" if left else "fixed"))
        return {'FINISHED'}


def resolve_and_report(op, context, failed: str) -> set:
    """``resolve_selected`` for an operator: its message in the panel and as a report; an
    error is reported as ``failed: ...``, never a traceback."""
    props = context.scene.p2p_mocap
    try:
        msg = resolve_selected(context, props)  # with the clean-up when it is on
    except Exception as exc:  # noqa: BLE001 -- reported, never a traceback
        props.smoothing_message = f"{failed}: {exc}"
        op.report({'ERROR'}, props.smoothing_message)
        return {'CANCELLED'}
    props.smoothing_message = msg
    op.report({'INFO'}, msg)
    return {'FINISHED'}


class P2P_OT_apply_clean(bpy.types.Operator):
    """Re-solve the selected take from its stored raw data with the panel's smoothing and
    clean-up settings (no re-estimation)"""

    bl_idname = "p2p.apply_clean"
    bl_label = "Apply Clean-Up"
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context):
        return selected_take_armature(context) is not None

    def execute(self, context):
        return resolve_and_report(self, context, "Clean-up failed")


class P2P_OT_raw_track(bpy.types.Operator):
    """Key the selected take's raw data (no smoothing, no clean-up) as a muted NLA track on
    top: unmute it to compare with the cleaned motion"""

    bl_idname = "p2p.raw_track"
    bl_label = "Add Raw Track"
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context):
        return selected_take_action(context) is not None

    def execute(self, context):
        try:
            made = cleaning.add_raw_track(selected_take_armature(context),
                                          selected_take_action(context))
        except Exception as exc:  # noqa: BLE001 -- reported, never a traceback
            self.report({'ERROR'}, f"Raw track failed: {exc}")
            return {'CANCELLED'}
        self.report({'INFO'}, f"added the muted track {made.body_track.name!r}")
        return {'FINISHED'}


class P2P_PT_qa(bpy.types.Panel):
    bl_label = "Clean-Up & QA"
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "Mocap"
    bl_parent_id = "P2P_PT_mocap"
    bl_options = {'DEFAULT_CLOSED'}

    def draw_header(self, context):
        self.layout.prop(context.scene.p2p_mocap, "clean_enabled", text="")

    def draw(self, context):
        props = context.scene.p2p_mocap
        layout = self.layout
        col = layout.column()
        col.use_property_split = True
        col.use_property_decorate = False
        col.active = props.clean_enabled
        col.prop(props, "clean_foot_lock")
        sub = col.column(align=True)
        sub.active = props.clean_foot_lock
        for name in ("clean_penetration_fix", "clean_contact_height", "clean_contact_speed",
                     "clean_min_contact", "clean_lock_blend"):
            sub.prop(props, name)
        col.prop(props, "clean_fix_flags")
        row = layout.row(align=True)
        row.operator("p2p.apply_clean", icon='MOD_SMOOTH')
        row.operator("p2p.raw_track", icon='NLA')
        if props.smoothing_message:
            layout.label(text=props.smoothing_message[:120],
                         icon='ERROR' if "failed" in props.smoothing_message else 'INFO')
        action = selected_take_action(context)
        if action is None:
            layout.label(text="Select a take's rig to see its QA flags")
            return
        flags = getattr(action, cleaning.FLAGS_PROP)
        if cleaning.CLEAN_PROP not in action:
            layout.label(text="Not cleaned: turn on the clean-up for QA flags")
            return
        shown = sum(not f.ignored for f in flags)
        layout.label(text=f"QA flags: {shown} shown, {len(flags) - shown} ignored")
        layout.template_list("P2P_UL_qa_flags", "", action, cleaning.FLAGS_PROP, action,
                             "p2p_qa_index", rows=4)
        if 0 <= action.p2p_qa_index < len(flags):
            flag = flags[action.p2p_qa_index]
            if flag.reason:
                layout.label(text=flag.reason[:120])
        row = layout.row(align=True)
        row.operator("p2p.qa_jump", icon='TIME')
        row.operator("p2p.qa_fix", icon='MODIFIER')
        row.operator("p2p.qa_ignore", icon='HIDE_ON')


CLASSES = (P2P_QAFlag, P2P_UL_qa_flags, P2P_OT_qa_jump, P2P_OT_qa_ignore, P2P_OT_qa_fix,
           P2P_OT_apply_clean, P2P_OT_raw_track, P2P_PT_qa)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Action.p2p_qa_flags = bpy.props.CollectionProperty(
        type=P2P_QAFlag, name="QA Flags", description="The take's QA flags (clean-up)")
    bpy.types.Action.p2p_qa_index = bpy.props.IntProperty(
        name="QA Flag", default=0, min=0, update=_index_changed,
        description="The selected QA flag (selecting one jumps to its frame)")


def unregister():
    for name in ("p2p_qa_index", "p2p_qa_flags"):
        if hasattr(bpy.types.Action, name):
            delattr(bpy.types.Action, name)
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
