# SPDX-License-Identifier: GPL-3.0-or-later
"""Pose2Pose Mocap: markerless whole-body SMPL-X motion capture for Blender.

This file is the extension's entry point and nothing else: Blender calls
``register``/``unregister``; the Blender-facing code lives in ``addon/``.
The import of ``addon`` is deferred so that the estimator worker process
(``pose2pose_mocap.worker``, which imports ``pose2pose_mocap.estimator``) never pulls
in bpy.
"""


def register():
    from . import addon

    addon.register()


def unregister():
    from . import addon

    addon.unregister()
