# SPDX-License-Identifier: GPL-3.0-or-later
"""The bpy layer of the retargeting: rig building, key writing, camera and scene.

The maths lives in the bpy-free modules one level up (``smplx_model``,
``posing``, ``smoothing``, ``camera``, ``take``); these modules only move
their arrays into Blender, in bulk (``foreach_set``).

* ``fcurves``: the version-robust channelbag helper and the bulk key writer;
* ``rig``: armature, skinned mesh, shape keys (``build_rig``);
* ``anim``: a take as new NLA actions (``write_take_actions``,
  ``resmooth_take``);
* ``scene``: the take's camera with the footage, scene fps and frame range;
* ``build``: all of it for one take (``build_take_scene``).
"""
