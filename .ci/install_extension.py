"""Install an extension zip into headless Blender, enable it, run its setup check, and
start the installed extension's worker (worker/__main__.py, as the add-on does).

    python .ci/install_extension.py EXTENSION.zip USER_DIR
USER_DIR isolates Blender's config and extensions from the machine's own.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

zip_path, user_dir = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
for var, sub in (("BLENDER_USER_CONFIG", "config"), ("BLENDER_USER_SCRIPTS", "scripts"),
                 ("BLENDER_USER_EXTENSIONS", "extensions")):
    os.environ[var] = str(user_dir / sub)  # before bpy is imported

import bpy  # noqa: E402
import addon_utils  # noqa: E402

module = "bl_ext.user_default.pose2pose_mocap"
result = bpy.ops.extensions.package_install_files(
    filepath=str(zip_path), repo="user_default", enable_on_install=True)
assert result == {"FINISHED"}, result


def fail(exc):
    raise SystemExit(f"enabling {module} failed: {exc}")


addon_utils.enable(module, default_set=True, handle_error=fail)
loaded, enabled = addon_utils.check(module)
assert loaded and enabled, (loaded, enabled)
assert bpy.ops.p2p.check_setup() == {"FINISHED"}
print(f"Blender {bpy.app.version_string}: {module} installed from {zip_path.name} and enabled")
print(bpy.context.window_manager.p2p_setup_report.splitlines()[-1])

# The installed worker answers from the extension folder (its own package, any name). A
# Python without torch answers with the one error line that says so.
python = os.environ.get("P2P_MOCAP_WORKER_PYTHON") or sys.executable
script = Path(sys.modules[module].__file__).parent / "worker" / "__main__.py"
r = subprocess.run([python, str(script), "--log", str(user_dir / "worker.log")],
                   input='{"cmd": "ping"}\n', capture_output=True, text=True, timeout=300)
events = [json.loads(line) for line in r.stdout.splitlines()]
kinds = [e["event"] for e in events]
no_torch = kinds == ["error"] and "cannot import torch" in events[0]["message"]
assert kinds == ["ready", "pong"] or no_torch, (r.returncode, r.stdout, r.stderr[-2000:])
print(f"worker {script}: " + ("no torch in " + python if no_torch else "ready"))
addon_utils.disable(module, default_set=True, handle_error=fail)
