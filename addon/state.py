# SPDX-License-Identifier: GPL-3.0-or-later
"""The add-on's shared state, in a module that imports nothing of the add-on (and not bpy),
so every other module can use it without an import circle:

* ``ADDON_PACKAGE``: the extension's package (``bl_ext.<repo>.pose2pose_mocap``), the
  key of its preferences and of its data folder;
* the estimate that runs now (one at a time): the sidebar shows it, the Stop button and
  a file load stop it.
"""
from __future__ import annotations

ADDON_PACKAGE = __package__.rpartition(".")[0]

_active_estimate = None


def active_estimate():
    """The running estimate's step object (``jobs.EstimateSteps``), or None."""
    return _active_estimate


def set_active_estimate(job) -> None:
    global _active_estimate
    _active_estimate = job


def clear_active_estimate(job) -> None:
    """Forget ``job`` if it is the active one (a later job is left alone)."""
    global _active_estimate
    if _active_estimate is job:
        _active_estimate = None
