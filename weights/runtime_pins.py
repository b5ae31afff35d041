# SPDX-License-Identifier: GPL-3.0-or-later
"""The packages *Install Runtime* puts into the add-on's private venv, pinned as in
``pyproject.toml`` (a test keeps the two equal). weights/ owns every address and pin the
add-on downloads from, so there is one place to change them."""
from __future__ import annotations

TORCH = ("torch==2.14.1", "torchvision==0.29.1")
OTHERS = ("numpy>=1.26,<2", "opencv-python-headless>=4.11,<4.12", "scipy>=1.11",
          "smplx==0.1.28", "safetensors>=0.4")
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
