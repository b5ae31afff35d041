# SPDX-License-Identifier: GPL-3.0-or-later
"""Run by ``blender_runner`` inside the user's Blender (or a Python with bpy) as a script:
convert one take as the job file says and write the result file. Not imported by the
package (it is a CLI bootstrap: it loads the package from the job's folder by path)."""
import importlib.util
import json
import sys
from pathlib import Path


def _load_package(root: Path):
    """Import the package from ``root`` (the repository/extension folder) under its name."""
    name = "pose2pose_mocap"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, root / "__init__.py",
                                                  submodule_search_locations=[str(root)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text())
    result = {}
    try:
        pkg = _load_package(Path(job["package"])).__name__
        import bpy

        # (by name: a script run by Blender is outside the package, so no relative imports)
        errors = importlib.import_module(f"{pkg}.common.errors")
        P2PError, error_line = errors.P2PError, errors.error_line
        convert = importlib.import_module(f"{pkg}.retarget.convert")
        BodyModelFiles, convert_take = convert.BodyModelFiles, convert.convert_take
        ConvertOptions = importlib.import_module(f"{pkg}.retarget.options").ConvertOptions

        model = job["model"]
        files = BodyModelFiles(smpl=model) if job["body_model"] == "smpl" else \
            BodyModelFiles(smplx=model)
        notes = []
        try:
            path = convert_take(job["take"], files, job["output"],
                                options=ConvertOptions.from_dict(job["options"]),
                                overwrite=job["overwrite"], notes=notes,
                                numbered=job["numbered"])
            result = {"path": str(path), "notes": notes, "blender": bpy.app.version_string}
        except (P2PError, OSError, ValueError) as exc:
            result = {"error": error_line(exc)}
        except KeyboardInterrupt:
            result = {"error": "stopped: no .blend written"}
    finally:
        Path(job["result"]).write_text(json.dumps(result))
    return 0 if result.get("path") else 1


if __name__ == "__main__":
    args = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
    sys.exit(main(args[-1]))
