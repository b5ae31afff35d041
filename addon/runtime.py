# SPDX-License-Identifier: GPL-3.0-or-later
"""Install Runtime: a private venv with torch & co. for the worker, in the add-on's data
folder (never Blender's own Python, never the add-on folder).

``runtime_commands(base_python, venv_dir, device)`` builds the command lines; the
operator runs them with ``jobs.CommandSteps`` (a step object, so the UI stays
live and tests can drive it with harmless commands).
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..weights.runtime_pins import CPU_INDEX, OTHERS, TORCH
from .paths import venv_python



def runtime_commands(base_python, venv_dir, device: str = "auto") -> tuple[list[list[str]], list[str]]:
    """(commands, labels). device 'cpu' installs the CPU-only torch wheels (much smaller);
    'auto'/'cuda' the default wheels (CUDA on Linux/Windows)."""
    venv_dir = Path(venv_dir)
    py = str(venv_python(venv_dir))
    torch_cmd = [py, "-m", "pip", "install", "--disable-pip-version-check", *TORCH]
    if device == "cpu" or sys.platform == "darwin":
        torch_cmd += ["--index-url", CPU_INDEX] if device == "cpu" and sys.platform != "darwin" \
            else []
    commands = [
        [str(base_python), "-m", "venv", "--upgrade-deps", str(venv_dir)],
        torch_cmd,
        [py, "-m", "pip", "install", "--disable-pip-version-check", *OTHERS],
    ]
    labels = ["Creating the virtual environment", "Installing PyTorch (large download)",
              "Installing numpy, OpenCV, SciPy, smplx"]
    return commands, labels
