# SPDX-License-Identifier: GPL-3.0-or-later
"""Small pieces every layer shares: the error base class, safe file writing and safe
``.npz`` reading. Pure Python + numpy; never imports bpy, torch or another package part."""
