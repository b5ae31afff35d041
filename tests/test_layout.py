"""Layout rules of the project (docs/layout.md), checked on the source (no imports needed)."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _py_files(folder: str):
    return sorted((REPO / folder).rglob("*.py"))


def _imports(tree: ast.AST, top_level_only: bool = False):
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from (a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def test_estimator_never_imports_bpy():
    for f in _py_files("estimator"):
        mods = set(_imports(ast.parse(f.read_text())))
        assert not mods & {"bpy", "mathutils", "bmesh", "addon_utils"}, f


def test_addon_never_imports_torch_at_module_level():
    for f in _py_files("addon"):
        mods = set(_imports(ast.parse(f.read_text()), top_level_only=True))
        assert not mods & {"torch", "torchvision", "smplx", "cv2"}, f


def test_root_init_only_registers_the_addon():
    tree = ast.parse((REPO / "__init__.py").read_text())
    funcs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert funcs == {"register", "unregister"}
    assert not [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]


def test_package_code_uses_relative_imports_and_leaves_sys_path_alone():
    files = sorted(REPO.glob("*.py"))
    for folder in ("addon", "estimator", "retarget", "weights"):
        files += _py_files(folder)
    for f in files:
        text = f.read_text()
        assert "sys.path" not in text, f
        assert "pose2pose_mocap" not in set(_imports(ast.parse(text))), f"{f}: use relative imports"
