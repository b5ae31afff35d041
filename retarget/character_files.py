# SPDX-License-Identifier: GPL-3.0-or-later
"""Character files a retarget target can be (bpy-free, for the CLI's checks and the Blender side)."""
from __future__ import annotations

CHARACTER_SUFFIXES = (".fbx", ".glb", ".gltf", ".blend")
