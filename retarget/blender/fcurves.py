# SPDX-License-Identifier: GPL-3.0-or-later
"""F-curves of an action for one datablock, on every Blender from 4.2 to 5.0, written in bulk.

Blender 4.4 introduced slotted actions (an action holds per-datablock
"slots"; its F-curves live in a channelbag of a keyframe strip of a layer),
4.4/4.5 keep ``Action.fcurves`` as a proxy to the first slot, and 5.0 removed
that proxy. ``action_channelbag`` hides the difference: it returns the
F-curve and group collections of ``action`` for ``id_data`` (an Object, a
shape-key Key, ...) without assigning the action to anything, so an active
action the user has is never replaced.

Keys are written as io_scene_fbx does: ``keyframe_points.add(n)`` then
``foreach_set`` of the flat ``co`` and ``interpolation`` arrays, then
``FCurve.update()``. That is ~100x faster than ``keyframe_insert``.
"""
from __future__ import annotations

from dataclasses import dataclass

import bpy
import numpy as np


@dataclass
class Channelbag:
    """Where an action keeps the F-curves for one datablock."""

    action: "bpy.types.Action"
    slot: object          # ActionSlot on 4.4+, None on 4.2/4.3
    fcurves: object       # collection with .new/.find/.remove/.clear
    groups: object        # collection with .new

    def find(self, data_path: str, index: int = 0):
        return self.fcurves.find(data_path, index=index)


def action_channelbag(action, id_data) -> Channelbag:
    """The F-curve container of ``action`` for ``id_data``, created if missing.

    4.4+ (slotted actions): the slot for ``id_data`` (named after it, or the
    action's only slot of its ID type; created if there is none), the
    action's first layer and keyframe strip (created if needed), and the
    slot's channelbag. 4.2/4.3: the action's own ``fcurves`` and ``groups``,
    with ``id_root`` set to the datablock's type.
    """
    if hasattr(action, "slots") and hasattr(action, "layers"):
        # The slot named after the datablock, else (it was renamed) the only slot of its type.
        same_type = [s for s in action.slots if s.target_id_type == id_data.id_type]
        named = [s for s in same_type if s.name_display == id_data.name]
        slot = named[0] if named else (same_type[0] if len(same_type) == 1 else None)
        if slot is None:
            slot = action.slots.new(id_type=id_data.id_type, name=id_data.name)
        layer = action.layers[0] if len(action.layers) else action.layers.new("Layer")
        strip = layer.strips[0] if len(layer.strips) else layer.strips.new(type='KEYFRAME')
        bag = strip.channelbag(slot, ensure=True)
        return Channelbag(action, slot, bag.fcurves, bag.groups)
    action.id_root = id_data.id_type  # (reading an unset id_root makes 4.2 print a warning)
    return Channelbag(action, None, action.fcurves, action.groups)


def _interpolation_value(name: str) -> int:
    return bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items[name].value


@dataclass
class Curve:
    """One F-curve to write: ``data_path[index]`` gets ``values (n,)`` at the shared frames."""

    data_path: str
    index: int
    values: np.ndarray
    group: str = ""


def write_curves(bag: Channelbag, frames: np.ndarray, curves, interpolation: str = "LINEAR"):
    """Create (or refill) F-curves and write all their keys in bulk.

    frames ``(n,)``: Blender frames shared by every curve; curves: ``Curve``
    items whose ``values`` have shape ``(n,)``. An existing F-curve with the
    same path and index is emptied first. Returns the F-curves.
    """
    frames = np.asarray(frames, dtype=np.float32)
    n = frames.shape[0]
    interp = np.full(n, _interpolation_value(interpolation), dtype=np.int32)
    co = np.empty(2 * n, dtype=np.float32)
    co[0::2] = frames
    groups = {g.name: g for g in bag.groups}
    out = []
    for c in curves:
        fc = bag.fcurves.find(c.data_path, index=c.index)
        if fc is None:
            fc = bag.fcurves.new(c.data_path, index=c.index)
            if c.group:
                grp = groups.get(c.group)
                if grp is None:
                    grp = groups[c.group] = bag.groups.new(c.group)
                fc.group = grp
        elif len(fc.keyframe_points):
            fc.keyframe_points.clear()
        co[1::2] = np.asarray(c.values, dtype=np.float32)
        fc.keyframe_points.add(n)
        fc.keyframe_points.foreach_set("co", co)
        fc.keyframe_points.foreach_set("interpolation", interp)
        fc.update()
        out.append(fc)
    return out
