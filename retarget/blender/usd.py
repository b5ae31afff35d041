# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``usd`` export preset through Blender's own USD exporter (``wm.usd_export``).

What the file holds (UsdSkel), as read back by ``usd-core`` (``pxr.UsdSkel``)
in ``tests/blender/test_usd.py``:

* one ``UsdSkel.Root`` with the ``Skeleton`` (the 55 SMPL-X deform bones,
  joint paths ``pelvis/left_hip/...``), the skinned body ``Mesh`` bound to it,
  and one ``SkelAnimation`` with a time sample per exported frame: joint
  translations/rotations and the ``blendShapeWeights`` of the shape keys
  (``Exp000``.., and ``Shape``/``Pose`` keys the rig has) as UsdSkel blend
  shapes of the mesh;
* ``upAxis = "Y"``, ``metersPerUnit = 1``: Blender world ``(X, Y, Z)`` is the
  file's ``(X, Z, -Y)`` like every other preset (``BLENDER_TO_FILE``;
  ``convert_orientation`` with forward -Z, up Y);
* time codes are the scene's frame numbers (``startTimeCode`` = first
  exported frame, ``timeCodesPerSecond`` = ``framesPerSecond`` = the take's
  fps).

Blender 4.2's operator lacks some of 5.0's options (``convert_scene_units``,
``export_lights``...): :func:`supported_options` keeps those the running
Blender has (the others' 4.2 behaviour is the same default).
"""
from __future__ import annotations

import bpy

# Options the preset must have: without them the file is not what the preset says.
REQUIRED = ("export_animation", "export_armatures", "export_shapekeys", "only_deform_bones")


def usd_operator():
    """Blender's USD exporter operator."""
    return bpy.ops.wm.usd_export


def supported_options(options: dict) -> dict:
    """``options`` minus those this Blender's ``wm.usd_export`` does not have."""
    props = {p.identifier for p in bpy.ops.wm.usd_export.get_rna_type().properties}
    missing = [k for k in REQUIRED if k not in props]
    if missing:
        from ..errors import RetargetError
        raise RetargetError(f"Blender {bpy.app.version_string}'s USD exporter lacks "
                            f"{', '.join(missing)}; the usd preset needs Blender 4.2 or newer")
    return {k: v for k, v in options.items() if k in props}
