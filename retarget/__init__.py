# SPDX-License-Identifier: GPL-3.0-or-later
"""A take (SMPL-X parameters per frame) -> an exact, smoothed, keyframed SMPL-X rig in Blender.

bpy-free core (numpy; scipy only inside ``smoothing``), unit-tested without Blender:

* ``take``: the take file (``p2p-take/2``; ``/1`` still read): reader, validator, the one
  serializer (arrays, bytes) and the atomic writer;
* ``smplx_model``: SMPL-X kinematics from a model file (a numpy port of
  ``smplx/lbs.py``): rest joints, forward kinematics, LBS, pose features;
* ``rotations``: axis-angle / quaternion (w, x, y, z) / matrix conversions;
* ``posing``: rest pose and per-frame bone channels of the Blender rig;
* ``smoothing``: zero-phase per-region filters (Butterworth, Savitzky-Golay, Gaussian);
* ``camera``: the take's pinhole camera and frame rate as Blender settings;
* ``options``: ``ConvertOptions`` (smoothing, shape keys, gender) of every caller;
* ``convert``: a take -> a .blend (``convert_take``, ``build_take``; imports bpy only
  when it runs; the SMPL-X model is given by the caller, never searched for);
  ``convert_cli``: the ``p2p-mocap convert`` command on a take.

``blender/`` is the thin bpy layer (rig, keys, NLA, camera, scene).
"""
