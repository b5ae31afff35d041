# SPDX-License-Identifier: GPL-3.0-or-later
"""Motion clean-up of a take (numpy/scipy, no bpy): ground and foot contacts, foot locking,
One Euro and contact-aware smoothing, the QA pass, and ``clean_take`` that runs them in
order. See ``docs/motion-cleanup.md``.

* ``kinematics``: posed joints, global rotations and foot points of a take (``TakeMotion``);
* ``ground``: the ground plane from the feet (``estimate_ground``);
* ``contacts``: per-frame heel/toe contact with hysteresis (``find_contacts``);
* ``footlock``: two-bone leg IK that keeps planted feet still (``lock_feet``);
* ``one_euro``: the One Euro filter;
* ``clean``: ``CleanOptions`` and ``clean_take``.
"""
