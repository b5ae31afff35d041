# SPDX-License-Identifier: GPL-3.0-or-later
"""``convert --blender PATH``: build the rig inside the user's own Blender, so the .blend has
that Blender's file format.

The bpy wheel in our venv writes its own version's format (bpy 5.0: Blender 5.0+ only;
Blender 4.x says "not a blend file"). With ``--blender PATH`` (or ``P2P_MOCAP_BLENDER``)
the take is converted by that Blender in background mode::

    PATH -b --factory-startup --python retarget/blender/child.py -- JOB.json

``PATH`` may also be a Python interpreter that has Blender's ``bpy`` module (a bpy wheel
venv): then ``PATH retarget/blender/child.py JOB.json``. The child loads this package from
its folder by path (``blender/child.py``; nothing is installed into that Blender) and
runs ``convert.convert_take`` with the model file and the ``ConvertOptions`` the parent
resolved, so both sides use the same settings. Everything the child (and Blender) prints
goes to a log file; the terminal gets our lines only. The child needs numpy in that
Blender's Python (Blender ships it); scipy only for the savgol/gaussian smoothing.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

from .errors import RetargetError

ENV_VAR = "P2P_MOCAP_BLENDER"
CHILD = Path(__file__).with_name("blender") / "child.py"
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
_PYTHON_NAME = re.compile(r"^python[0-9.]*(\.exe)?$", re.IGNORECASE)


def blender_executable(arg=None) -> Path | None:
    """``--blender PATH``, else ``P2P_MOCAP_BLENDER``, else None (convert in this process).
    Raises RetargetError when the path is not an executable file."""
    text = arg if arg else os.environ.get(ENV_VAR, "")
    if not text:
        return None
    path = Path(text).expanduser()
    where = "--blender" if arg else ENV_VAR
    if not path.is_file() or not os.access(path, os.X_OK):
        raise RetargetError(f"{where} {text}: not an executable file (give Blender's "
                            "executable, or a Python that has Blender's bpy module)")
    return path


def is_python(executable: Path) -> bool:
    """True for a Python interpreter (``python``, ``python3.11``), not Blender's executable."""
    return bool(_PYTHON_NAME.match(Path(executable).name))


def child_command(executable: Path, job: Path) -> list[str]:
    """The command that runs ``blender/child.py`` on ``job`` in ``executable``."""
    if is_python(executable):
        return [str(executable), str(CHILD), str(job)]
    return [str(executable), "-b", "--factory-startup", "--python-exit-code", "1",
            "--python", str(CHILD), "--", str(job)]


def convert_in_blender(executable: Path, take, model: Path, body_model: str, output: Path,
                       options, *, overwrite: bool = False, numbered: bool = False,
                       timeout: float | None = None) -> dict:
    """Convert ``take`` to ``output`` in ``executable``; -> ``{"path", "notes", "blender"}``.

    ``model``: the body-model file for the take (``body_model`` ``"smplx"`` or
    ``"smpl"``); ``options`` a ``ConvertOptions``. A failure raises RetargetError with
    the child's one-line error (and the log's path when the child said nothing).
    """
    with tempfile.TemporaryDirectory(prefix="p2p-blender-") as tmp:
        job, result = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job.write_text(json.dumps({
            "package": str(PACKAGE_ROOT), "take": str(Path(take).resolve()),
            "model": str(Path(model).resolve()), "body_model": body_model,
            "output": str(Path(output).absolute()), "options": options.to_dict(),
            "overwrite": bool(overwrite), "numbered": bool(numbered), "result": str(result)}))
        fd, log_path = tempfile.mkstemp(prefix="p2p-mocap-blender-", suffix=".log")
        with os.fdopen(fd, "w") as log:
            try:
                proc = subprocess.run(child_command(executable, job), stdout=log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      timeout=timeout)
            except OSError as exc:
                raise RetargetError(f"could not run {executable}: {exc.strerror or exc}") from None
            except subprocess.TimeoutExpired:
                raise RetargetError(f"{executable} did not finish within {timeout:g} s "
                                    f"(its output: {log_path})") from None
        try:
            done = json.loads(result.read_text())
        except (OSError, ValueError):
            done = None
    if done is not None and done.get("path") and proc.returncode == 0:
        os.unlink(log_path)
        return done
    if done is not None and done.get("error"):
        raise RetargetError(done["error"])
    raise RetargetError(f"{executable} could not convert the take (exit code "
                        f"{proc.returncode}; its output: {log_path})")
