"""The retarget core stays bpy-free and cheap to import (the estimator imports take.py)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

RETARGET = Path(__file__).resolve().parents[2] / "retarget"


def _modules(tree, top_level_only=False):
    for node in (tree.body if top_level_only else ast.walk(tree)):
        if isinstance(node, ast.Import):
            yield from (a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def test_core_modules_import_no_bpy():
    heavy = {"bpy", "mathutils", "bmesh", "bpy_extras", "torch", "smplx"}
    for f in sorted(RETARGET.glob("*.py")):
        # convert.py is the CLI entry: it imports bpy inside the function that needs it.
        mods = set(_modules(ast.parse(f.read_text()), top_level_only=f.name == "convert.py"))
        assert not mods & heavy, f


def test_importing_the_take_module_pulls_in_nothing_heavy():
    code = ("import sys, pose2pose_mocap.retarget.take, pose2pose_mocap.retarget.posing, "
            "pose2pose_mocap.retarget.smoothing, pose2pose_mocap.retarget.convert; "
            "print(sorted(m for m in ('bpy', 'scipy', 'torch', 'smplx', 'cv2') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
