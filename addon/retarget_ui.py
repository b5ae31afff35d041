# SPDX-License-Identifier: GPL-3.0-or-later
"""The Retarget sidebar panel (Mocap > Retarget): a take's SMPL-X rig onto the user's armature.

Settings live on the scene (``scene.p2p_retarget``): the source rig, the target
armature, the preset (Auto = the mapping found by bone names, then structure), and
the mapping itself (``mapping``: one row per SMPL-X joint, editable in the list:
the bone is picked from the target's bones). Operators:

* **Map** (``p2p.retarget_map``): fill the list from the preset or auto-mapping (an empty
  Source / Target is taken from the selection: the selected SMPL-X rig, the active armature);
* **Preview** (``p2p.retarget_preview``): the result on one soloed NLA track of the
  target (``PREVIEW_TRACK``); the next preview replaces it; with *Live* on, every
  edit of the list previews again;
* **Clear Preview** (``p2p.retarget_clear_preview``);
* **Bake** (``p2p.retarget_bake``): a new action on a new NLA track of the target;
  the target's existing actions and tracks are untouched;
* **Save Preset / Load Preset** (JSON, the same files as ``p2p-mocap retarget
  --target PRESET.json`` / ``--map PRESET.json``).

Every failure is a report naming the problem; nothing in the file changes then.
The maths runs here, in Blender's Python (numpy only: ``retarget.targets``).
"""
from __future__ import annotations

import bpy
from bpy_extras.io_utils import ExportHelper, ImportHelper

from ..retarget.targets import TARGETS

PRESET_ITEMS = [('AUTO', "Auto", "Map by bone names, then by structure", 0)] + [
    (name, {"ue5": "UE5 Manny", "ue4": "UE4 Mannequin", "vrm": "VRM 1.0"}.get(
        name, name.capitalize()), f"The built-in {name} preset", i + 1)
    for i, name in enumerate(TARGETS)]


def _is_rig(_self, ob):
    return ob.type == 'ARMATURE' and "p2p_rig" in ob


def _is_target(_self, ob):
    return ob.type == 'ARMATURE' and "p2p_rig" not in ob


def _live_update(self, context):
    settings = context.scene.p2p_retarget
    if settings.live and settings.source is not None and settings.target is not None:
        try:
            _run(context, preview=True)
            settings.message = "Preview updated"
        except Exception as exc:  # noqa: BLE001 - shown in the panel, never raised in a draw
            settings.message = f"Preview failed: {exc}"


class P2P_RetargetBone(bpy.types.PropertyGroup):
    joint: bpy.props.StringProperty(name="Joint", description="SMPL-X joint")
    bone: bpy.props.StringProperty(name="Bone", description="The target bone it drives "
                                   "(empty: not driven)", update=_live_update)


class P2P_RetargetSettings(bpy.types.PropertyGroup):
    source: bpy.props.PointerProperty(
        name="Source", type=bpy.types.Object, poll=_is_rig,
        description="The take's SMPL-X rig (its top NLA take is retargeted)")
    target: bpy.props.PointerProperty(
        name="Target", type=bpy.types.Object, poll=_is_target,
        description="The armature to put the motion on")
    preset: bpy.props.EnumProperty(name="Preset", items=PRESET_ITEMS,
                                   description="How the target's bones are mapped")
    mapping: bpy.props.CollectionProperty(
        type=P2P_RetargetBone, description="SMPL-X joint -> target bone (empty: not driven)")
    mapping_index: bpy.props.IntProperty(default=0, description="The selected row")
    live: bpy.props.BoolProperty(name="Live", default=False,
                                 description="Preview again after every edit of the mapping")
    message: bpy.props.StringProperty(name="Message", description="What the last action did",
                                      options={'SKIP_SAVE'})


# --------------------------------------------------------------------------- the work

def _base_target(settings):
    """The preset chosen for the target (with the target's own skeleton)."""
    from ..retarget.blender.retarget import target_for_armature

    mapping = None if settings.preset == 'AUTO' else settings.preset
    return target_for_armature(settings.target, mapping)


def fill_mapping(settings, target) -> None:
    """The list shows ``target``'s mapping, one row per SMPL-X joint in SMPL-X order."""
    from ..retarget.smplx_model import JOINT_NAMES

    settings.mapping.clear()
    for j in JOINT_NAMES:
        row = settings.mapping.add()
        row.joint = j
        row.bone = target.mapping.get(j, "")


def target_from_settings(settings):
    """The ``RigTarget`` the panel describes: the preset with the list's mapping."""
    from dataclasses import replace

    from ..retarget.errors import RetargetError
    from ..retarget.targets import check_target

    if settings.target is None:
        raise RetargetError("choose a target armature")
    base, notes = _base_target(settings) if not len(settings.mapping) else (None, [])
    if base is None:
        from ..retarget.blender.retarget import read_skeleton
        from ..retarget.targets import automap, get_target

        from ..retarget.blender.retarget import rigify_generated
        from ..retarget.targets import rigify_controls

        skeleton = read_skeleton(settings.target)
        try:
            if settings.preset in ('AUTO', 'rigify') and \
                    rigify_generated(settings.target, skeleton):
                # (a rig Rigify generated: the list maps its DEF bones, keys go on its controls)
                base = rigify_controls.controls_target(get_target("rigify"))
            else:
                base = automap(skeleton) if settings.preset == 'AUTO' \
                    else get_target(settings.preset)
            base = base.with_skeleton(skeleton)
        except RetargetError:   # the list is the user's: only its conventions are needed
            base = get_target("vrm").with_skeleton(skeleton)
        mapping = {r.joint: r.bone for r in settings.mapping if r.bone}
        bones = set(skeleton.names)
        absent = [b for b in mapping.values() if b not in bones]
        if absent:
            raise RetargetError(f"{settings.target.name} has no bone {absent[0]!r}")
        base = replace(base, mapping=mapping,
                       twist={b: v for b, v in base.twist.items() if b in bones
                              and b not in mapping.values()},
                       follow={b: v for b, v in base.follow.items() if b in bones
                               and v in bones and b not in mapping.values()},
                       root_bone=base.root_bone if base.root_bone in bones else None)
        check_target(base, skeleton)
    return base, notes


def _run(context, *, preview: bool):
    from ..retarget.blender.retarget import retarget_rig

    settings = context.scene.p2p_retarget
    target, notes = target_from_settings(settings)
    return retarget_rig(settings.source, settings.target, target, preview=preview), notes


def from_selection(context) -> None:
    """Empty Source / Target taken from the selection: the selected SMPL-X rig, and the
    active (else the other selected) armature that is not one."""
    s = context.scene.p2p_retarget
    selected = [o for o in getattr(context, "selected_objects", None) or []
                if o.type == 'ARMATURE']
    active = context.active_object
    if s.source is None:
        s.source = next((o for o in selected if "p2p_rig" in o), None)
    if s.target is None:
        others = [o for o in selected if "p2p_rig" not in o]
        if active is not None and active in others:
            s.target = active
        elif len(others) == 1:
            s.target = others[0]


def _ready(context, need_source: bool = True) -> bool:
    s = getattr(context.scene, "p2p_retarget", None)
    if s is None:
        return False
    sel = getattr(context, "selected_objects", None) or []
    return ((not need_source or s.source is not None
             or any("p2p_rig" in o for o in sel if o.type == 'ARMATURE'))
            and (s.target is not None or any("p2p_rig" not in o for o in sel
                                              if o.type == 'ARMATURE')))


class _Poll:
    @classmethod
    def poll(cls, context):
        return _ready(context)


class P2P_OT_retarget_map(bpy.types.Operator):
    """Fill the mapping list from the preset (Auto: by bone names, then by structure)"""

    bl_idname = "p2p.retarget_map"
    bl_label = "Map Bones"
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context):
        return _ready(context, need_source=False)

    def execute(self, context):
        from_selection(context)
        settings = context.scene.p2p_retarget
        try:
            target, notes = _base_target(settings)
        except Exception as exc:  # noqa: BLE001 - one report naming the problem
            self.report({'ERROR'}, f"Mapping failed: {exc}")
            settings.message = f"Mapping failed: {exc}"
            return {'CANCELLED'}
        live, settings.live = settings.live, False   # (filling the list is not an edit)
        try:
            fill_mapping(settings, target)
        finally:
            settings.live = live
        for n in notes:
            self.report({'INFO'}, n)
        settings.message = f"Mapped {len(target.mapping)} bones"
        self.report({'INFO'}, settings.message)
        return {'FINISHED'}


class P2P_OT_retarget_preview(_Poll, bpy.types.Operator):
    """Play the retargeted take on the target (one soloed NLA track; replaced by the next
    preview)"""

    bl_idname = "p2p.retarget_preview"
    bl_label = "Preview"
    bl_options = {'REGISTER', 'UNDO'}

    def execute(self, context):
        return _execute(self, context, preview=True)


class P2P_OT_retarget_bake(_Poll, bpy.types.Operator):
    """Bake the retargeted take to a new action on a new NLA track of the target (its
    existing actions and tracks are untouched)"""

    bl_idname = "p2p.retarget_bake"
    bl_label = "Bake"
    bl_options = {'REGISTER', 'UNDO'}

    def execute(self, context):
        return _execute(self, context, preview=False)


def _execute(op, context, *, preview: bool):
    from_selection(context)
    settings = context.scene.p2p_retarget
    try:
        written, notes = _run(context, preview=preview)
    except Exception as exc:  # noqa: BLE001 - one report naming the problem; nothing changed
        what = "Preview" if preview else "Bake"
        op.report({'ERROR'}, f"{what} failed: {exc}")
        settings.message = f"{what} failed: {exc}"
        return {'CANCELLED'}
    if not preview:
        from ..retarget.blender.retarget import clear_preview

        clear_preview(settings.target)
    for n in notes + list(written.notes):
        op.report({'INFO'}, n)
    settings.message = (f"{'Previewing' if preview else 'Baked'} {written.action.name!r} "
                        f"({len(written.frames)} frames)")
    op.report({'INFO'}, settings.message)
    return {'FINISHED'}


class P2P_OT_retarget_clear_preview(bpy.types.Operator):
    """Remove the retarget preview track from the target"""

    bl_idname = "p2p.retarget_clear_preview"
    bl_label = "Clear Preview"
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context):
        s = getattr(context.scene, "p2p_retarget", None)
        return s is not None and s.target is not None

    def execute(self, context):
        from ..retarget.blender.retarget import clear_preview

        settings = context.scene.p2p_retarget
        settings.message = "Preview cleared" if clear_preview(settings.target) else \
            "No preview to clear"
        return {'FINISHED'}


class P2P_OT_retarget_save_preset(bpy.types.Operator, ExportHelper):
    """Save the mapping (and the target's skeleton) as a JSON preset"""

    bl_idname = "p2p.retarget_save_preset"
    bl_label = "Save Preset"
    bl_options = {'REGISTER'}

    filename_ext = ".json"
    filter_glob: bpy.props.StringProperty(default="*.json", options={'HIDDEN'})

    @classmethod
    def poll(cls, context):
        s = getattr(context.scene, "p2p_retarget", None)
        return s is not None and s.target is not None

    def execute(self, context):
        from dataclasses import replace

        settings = context.scene.p2p_retarget
        try:
            target, _ = target_from_settings(settings)
            # (the file browser is where the user agreed to replace an existing file)
            path = replace(target, name=settings.target.name).save(self.filepath, force=True)
        except Exception as exc:  # noqa: BLE001
            self.report({'ERROR'}, f"Saving the preset failed: {exc}")
            return {'CANCELLED'}
        settings.message = f"Saved {path}"
        self.report({'INFO'}, settings.message)
        return {'FINISHED'}


class P2P_OT_retarget_load_preset(bpy.types.Operator, ImportHelper):
    """Load a JSON preset's mapping into the list (its bones must be the target's)"""

    bl_idname = "p2p.retarget_load_preset"
    bl_label = "Load Preset"
    bl_options = {'REGISTER', 'UNDO'}

    filename_ext = ".json"
    filter_glob: bpy.props.StringProperty(default="*.json", options={'HIDDEN'})

    @classmethod
    def poll(cls, context):
        s = getattr(context.scene, "p2p_retarget", None)
        return s is not None and s.target is not None

    def execute(self, context):
        from ..retarget.blender.retarget import target_for_armature
        from ..retarget.targets import get_target

        settings = context.scene.p2p_retarget
        try:
            target, notes = target_for_armature(settings.target, get_target(self.filepath))
        except Exception as exc:  # noqa: BLE001
            self.report({'ERROR'}, f"Loading the preset failed: {exc}")
            return {'CANCELLED'}
        live, settings.live = settings.live, False
        try:
            fill_mapping(settings, target)
        finally:
            settings.live = live
        for n in notes:
            self.report({'INFO'}, n)
        settings.message = f"Loaded {len(target.mapping)} bones from {self.filepath}"
        return {'FINISHED'}


# --------------------------------------------------------------------------- UI

class P2P_UL_retarget_map(bpy.types.UIList):
    bl_idname = "P2P_UL_retarget_map"

    def draw_item(self, context, layout, data, item, icon, active_data, active_property,
                  index=0, flt_flag=0):
        target = context.scene.p2p_retarget.target
        row = layout.row(align=True)
        split = row.split(factor=0.45)
        split.label(text=item.joint)
        if target is not None and target.type == 'ARMATURE':
            split.prop_search(item, "bone", target.data, "bones", text="")
        else:
            split.prop(item, "bone", text="")


class P2P_PT_retarget(bpy.types.Panel):
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "Mocap"
    bl_label = "Retarget"
    bl_parent_id = "P2P_PT_mocap"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        settings = context.scene.p2p_retarget
        layout = self.layout
        col = layout.column()
        col.use_property_split = True
        col.use_property_decorate = False
        col.prop(settings, "source")
        col.prop(settings, "target")
        col.prop(settings, "preset")
        layout.operator("p2p.retarget_map", icon='BONE_DATA')
        if len(settings.mapping):
            layout.template_list("P2P_UL_retarget_map", "", settings, "mapping", settings,
                                 "mapping_index", rows=6)
        row = layout.row(align=True)
        row.operator("p2p.retarget_save_preset", icon='EXPORT')
        row.operator("p2p.retarget_load_preset", icon='IMPORT')
        row = layout.row(align=True)
        row.operator("p2p.retarget_preview", icon='PLAY')
        row.prop(settings, "live", toggle=True)
        row.operator("p2p.retarget_clear_preview", text="", icon='X')
        layout.operator("p2p.retarget_bake", icon='NLA_PUSHDOWN')
        if settings.message:
            layout.label(text=settings.message[:120],
                         icon='ERROR' if "failed" in settings.message else 'INFO')


CLASSES = (P2P_RetargetBone, P2P_RetargetSettings, P2P_OT_retarget_map, P2P_OT_retarget_preview,
           P2P_OT_retarget_bake, P2P_OT_retarget_clear_preview, P2P_OT_retarget_save_preset,
           P2P_OT_retarget_load_preset, P2P_UL_retarget_map, P2P_PT_retarget)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.p2p_retarget = bpy.props.PointerProperty(type=P2P_RetargetSettings)


def unregister():
    if hasattr(bpy.types.Scene, "p2p_retarget"):
        del bpy.types.Scene.p2p_retarget
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
