# SPDX-License-Identifier: GPL-3.0-or-later
"""The estimator worker: an application process, not estimator code.

``worker.server`` is the process (JSON lines on stdin/stdout; the protocol is in its
docstring), started as ``python -m pose2pose_mocap.worker`` or by running
``worker/__main__.py`` as a script. ``worker.client`` is its bpy-free client
(``WorkerProcess``, ``run_worker_request``, ``worker_command``, ``crash_summary``),
used by the add-on. Importing this package imports neither torch nor bpy.
"""
