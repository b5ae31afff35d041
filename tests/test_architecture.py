"""The layers, checked on the source: no import cycles, and each layer imports only what
it may. Module-level and function-level imports count alike (a deferred import is still
a dependency)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("addon", "batch", "common", "estimator", "retarget", "weights", "worker")
BLENDER = {"bpy", "mathutils", "bmesh", "bpy_extras", "addon_utils", "gpu", "blf"}
TORCH = {"torch", "torchvision", "smplx"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) or "__init__"


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(REPO.glob("*.py")):
        out[_module_name(p)] = p
    for pkg in PACKAGES:
        for p in sorted((REPO / pkg).rglob("*.py")):
            out[_module_name(p)] = p
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return (MODULES.get(name) is not None and MODULES[name].name == "__init__.py") or \
        name == "__init__"


def _resolve(importer: str, level: int, module: str | None) -> str:
    """The absolute (package-relative) name a relative import refers to."""
    parts = importer.split(".") if importer != "__init__" else []
    base = parts if _is_package(importer) else parts[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def imports_of(name: str) -> tuple[set[str], set[str]]:
    """(package modules imported, top-level third-party names imported) by module ``name``."""
    tree = ast.parse(MODULES[name].read_text())
    internal, external = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            external.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                external.add((node.module or "").split(".")[0])
                continue
            target = _resolve(name, node.level, node.module)
            for alias in node.names:
                sub = f"{target}.{alias.name}" if target else alias.name
                if sub in MODULES:
                    internal.add(sub)
                elif target in MODULES or target == "":
                    internal.add(target or "__init__")
    internal.discard(name)
    return internal, external


GRAPH = {m: imports_of(m) for m in MODULES}


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(GRAPH[v][0]):
            if w not in GRAPH:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return out


def _in(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_graph_sees_the_package():
    # A guard against a test that passes because it reads nothing.
    assert {"cli", "retarget.take", "estimator.pipeline", "addon.operators"} <= set(MODULES)
    assert "retarget.take" in GRAPH["retarget.convert"][0] or \
        any(_in(m, "retarget") for m in GRAPH["retarget.convert"][0])


def test_no_import_cycles():
    cycles = _cycles()
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("layer", ["estimator", "retarget", "common", "weights", "worker",
                                   "batch"])
def test_bpy_only_in_the_blender_layers(layer):
    for m in GRAPH:
        if not _in(m, layer) or _in(m, "retarget.blender"):
            continue
        assert not GRAPH[m][1] & BLENDER, f"{m} imports {sorted(GRAPH[m][1] & BLENDER)}"


def test_addon_never_imports_torch():
    for m in GRAPH:
        if _in(m, "addon"):
            assert not GRAPH[m][1] & TORCH, f"{m} imports {sorted(GRAPH[m][1] & TORCH)}"
            bad = [t for t in GRAPH[m][0] if _in(t, "estimator.pose2pose")]
            assert not bad, f"{m} imports the network code {bad}"


def test_retarget_never_imports_estimator_or_weights():
    for m in GRAPH:
        if _in(m, "retarget"):
            bad = sorted(t for t in GRAPH[m][0] if _in(t, "estimator", "weights", "worker",
                                                        "addon", "batch"))
            assert not bad, f"{m} imports {bad}"


def test_common_imports_no_other_part():
    for m in GRAPH:
        if _in(m, "common"):
            bad = sorted(t for t in GRAPH[m][0] if not _in(t, "common"))
            assert not bad, f"{m} imports {bad}"
            assert not GRAPH[m][1] & (BLENDER | TORCH), m


def test_estimator_never_imports_the_application_layers():
    for m in GRAPH:
        if _in(m, "estimator") and m != "estimator.worker":  # the old entry: a shim by name
            bad = sorted(t for t in GRAPH[m][0] if _in(t, "addon", "batch", "worker", "cli"))
            assert not bad, f"{m} imports {bad}"


def test_test_layout_cites_only_files_in_the_repo():
    import re

    text = (REPO / "tests" / "test_layout.py").read_text()
    for cited in re.findall(r"\b([A-Za-z_./-]+\.(?:md|py|toml|json))\b", text):
        if cited.startswith(("DEVELOPERS", "README", "blender_manifest")) or "/" in cited:
            assert (REPO / cited).exists(), f"tests/test_layout.py cites {cited}, not in the repo"


def test_runtime_pins_equal_the_project_dependencies():
    import tomllib

    from pose2pose_mocap.weights.runtime_pins import OTHERS, TORCH

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    norm = lambda d: d.replace(" ", "")  # noqa: E731
    assert {norm(d) for d in TORCH + OTHERS} <= {norm(d) for d in deps}
    assert not any("torch" in d for d in OTHERS)


def test_one_definition_of_each_error_and_name_helper():
    seen: dict[str, list[str]] = {}
    for m, path in MODULES.items():
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name in (
                    "ModelFileError", "OutputExistsError", "atomic_write", "next_free_name",
                    "numbered_names", "format_eta", "resolve_device", "CheckpointInfo",
                    "file_sha256", "write_safetensors"):
                seen.setdefault(node.name, []).append(m)
    # retarget.errors.OutputExistsError refines the common one (it is also a RetargetError).
    seen.get("OutputExistsError", []).remove("retarget.errors") if "retarget.errors" in \
        seen.get("OutputExistsError", []) else None
    dup = {k: v for k, v in seen.items() if len(v) > 1}
    assert not dup, dup


def _pyproject() -> dict:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_every_package_is_listed_in_pyproject():
    """A wheel (or a non-editable install) ships only the listed packages and their data."""
    setup = _pyproject()["tool"]["setuptools"]
    listed = set(setup["packages"])
    found = {"pose2pose_mocap"} | {
        "pose2pose_mocap." + ".".join(p.parent.relative_to(REPO).parts)
        for pkg in PACKAGES for p in (REPO / pkg).rglob("__init__.py")}
    assert found - listed == set(), "add these to [tool.setuptools] packages"
    data = setup.get("package-data", {})
    for pkg in PACKAGES:
        for f in (REPO / pkg).rglob("*.json"):
            owner = "pose2pose_mocap." + ".".join(f.parent.relative_to(REPO).parts)
            rel = f.name
            while owner not in listed:  # data in a plain folder belongs to the package above
                owner, _, last = owner.rpartition(".")
                rel = f"{last}/{rel}"
            globs = data.get(owner, [])
            assert any(Path(rel).match(g) for g in globs), f"{f.relative_to(REPO)} is not package data"
