"""Blender's own extension tool (``blender_ext.py``, shipped in the bpy wheel): build and validate the zip."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path


def bpy_scripts_dir() -> Path:
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the bpy wheel is not installed")
    root = Path(list(spec.submodule_search_locations)[0])
    versions = sorted(p for p in root.iterdir() if p.is_dir() and p.name[0].isdigit())
    return versions[-1] / "scripts"


def blender_ext() -> Path:
    return bpy_scripts_dir() / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"


def valid_tags() -> Path:
    return bpy_scripts_dir() / "modules" / "_bpy_internal" / "extensions" / "tags.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(blender_ext()), *args],
                          capture_output=True, text=True, timeout=300)


def build(source: Path, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)  # blender_ext fails if it is missing
    r = run("build", "--source-dir", str(source), "--output-dir", str(out_dir),
            "--valid-tags", str(valid_tags()))
    if r.returncode != 0:
        raise RuntimeError(f"extension build failed:\n{r.stdout}\n{r.stderr}")
    zips = sorted(out_dir.glob("*.zip"))
    assert len(zips) == 1, zips
    return zips[0]


if __name__ == "__main__":
    # python -m tools.extension_zip build SOURCE_DIR OUT_DIR
    if len(sys.argv) != 4 or sys.argv[1] != "build":
        raise SystemExit("usage: python -m tools.extension_zip build SOURCE_DIR OUT_DIR")
    zip_path = build(Path(sys.argv[2]), Path(sys.argv[3]))
    check = run("validate", str(zip_path))
    print(check.stdout.strip())
    if check.returncode != 0:
        raise SystemExit(check.stderr)
    print(f"built {zip_path}")
