# SPDX-License-Identifier: GPL-3.0-or-later
"""Blender UI of the extension. Never imports torch: estimation runs in a worker process
(``worker/``, through its client ``worker.client``) started with the runtime interpreter.

Modules, each importing only those listed before it (no import circles): ``state``
(shared state), ``modal`` (the modal loop), ``preferences``, ``paths``, ``jobs`` (step
objects), ``runtime``, ``cleaning`` (the motion clean-up of a take, live), ``importing``,
``qa_ui`` (the Clean-Up & QA panel: QA flags, timeline markers; registered last), ``props``,
``panels``, ``operators``, ``retarget_ui`` (the Retarget panel, its settings and operators)."""
from __future__ import annotations

import bpy
from bpy.app.handlers import persistent

from . import operators, panels, preferences, props, qa_ui, retarget_ui, state

_CLASSES = (
    preferences.P2P_AddonPreferences,
    *props.CLASSES,
    *operators.CLASSES,
    *panels.CLASSES,
)

_WM_PROPS = {
    "p2p_setup_report": lambda: bpy.props.StringProperty(
        name="Setup report", description="The last setup check", options={'SKIP_SAVE'}),
    "p2p_setup_ready": lambda: bpy.props.BoolProperty(
        name="Setup ready", description="The last setup check found everything",
        options={'SKIP_SAVE'}),
    "p2p_setup_standins": lambda: bpy.props.BoolProperty(
        name="Stand-ins", description="Stand-in model files are in use", options={'SKIP_SAVE'}),
    "p2p_last_standin": lambda: bpy.props.BoolProperty(
        name="Stand-in take", description="The last estimate used stand-in model files",
        options={'SKIP_SAVE'}),
    "p2p_progress": lambda: bpy.props.FloatProperty(
        name="Progress", description="Progress of the running job", min=0.0, max=1.0,
        subtype='FACTOR', options={'SKIP_SAVE'}),
    "p2p_status": lambda: bpy.props.StringProperty(
        name="Status", description="What the running job does", options={'SKIP_SAVE'}),
    "p2p_last_error": lambda: bpy.props.StringProperty(
        name="Last error", description="Why the last estimate failed", options={'SKIP_SAVE'}),
    "p2p_last_log": lambda: bpy.props.StringProperty(
        name="Last log", description="The last estimate's log file", options={'SKIP_SAVE'}),
}


@persistent
def _stop_jobs_on_load(*_args):
    """A file load ends the modal operator: stop its worker too (nothing is imported)."""
    job = state.active_estimate()
    if job is not None:
        job.kill()


def register():
    for cls in _CLASSES:
        bpy.utils.register_class(cls)
    for name, make in _WM_PROPS.items():
        setattr(bpy.types.WindowManager, name, make())
    bpy.types.Scene.p2p_mocap = bpy.props.PointerProperty(type=props.P2P_MocapSettings)
    retarget_ui.register()  # (after panels: its panel is a child of P2P_PT_mocap)
    qa_ui.register()
    bpy.app.handlers.load_pre.append(_stop_jobs_on_load)


def unregister():
    _stop_jobs_on_load()
    for h in list(bpy.app.handlers.load_pre):
        if getattr(h, "__name__", "") == _stop_jobs_on_load.__name__ and \
                getattr(h, "__module__", "") == __name__:
            bpy.app.handlers.load_pre.remove(h)
    qa_ui.unregister()
    retarget_ui.unregister()
    if hasattr(bpy.types.Scene, "p2p_mocap"):
        del bpy.types.Scene.p2p_mocap
    for name in _WM_PROPS:
        if hasattr(bpy.types.WindowManager, name):
            delattr(bpy.types.WindowManager, name)
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
