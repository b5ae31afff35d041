"""Reading evaluated Blender data back as numpy (used by tests/blender; imports bpy lazily)."""
from __future__ import annotations

import numpy as np


def evaluated_world_vertices(obj) -> np.ndarray:
    """World coordinates of an object's evaluated mesh (modifiers, shape keys). -> ``(V, 3)``."""
    import bpy

    dg = bpy.context.evaluated_depsgraph_get()
    ev = obj.evaluated_get(dg)
    me = ev.to_mesh()
    try:
        co = np.empty(len(me.vertices) * 3, dtype=np.float32)
        me.vertices.foreach_get("co", co)
    finally:
        ev.to_mesh_clear()
    mw = np.array(ev.matrix_world, dtype=np.float64)
    return co.reshape(-1, 3).astype(np.float64) @ mw[:3, :3].T + mw[:3, 3]


def posed_bone_heads(arm_obj, names) -> np.ndarray:
    """World positions of the posed bone heads, in ``names`` order. -> ``(J, 3)``."""
    import bpy

    dg = bpy.context.evaluated_depsgraph_get()
    ev = arm_obj.evaluated_get(dg)
    mw = np.array(ev.matrix_world, dtype=np.float64)
    heads = np.array([ev.pose.bones[n].head for n in names], dtype=np.float64)
    return heads @ mw[:3, :3].T + mw[:3, 3]


def vertex_error(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(mean, max) per-vertex distance."""
    d = np.linalg.norm(a - b, axis=-1)
    return float(d.mean()), float(d.max())
