# SPDX-License-Identifier: GPL-3.0-or-later
"""Model files: where they live, how they are made (stand-ins) and checked.

Never holds the licensed files themselves. Imports neither bpy nor torch at
module level, so the add-on can use it to show where files are expected.
"""
