# SPDX-License-Identifier: GPL-3.0-or-later
"""Start the estimator worker (``worker.server``; its docstring has the protocol).

* ``python -m pose2pose_mocap.worker [--log FILE]`` -- when the package is importable.
* ``python path/to/pose2pose_mocap/worker/__main__.py [--log FILE]`` -- run as a
  script (what the add-on does): the package this file belongs to is loaded from its
  folder's parent with ``importlib`` under the name ``pose2pose_mocap``, whatever that
  folder is called or wherever it is installed. The module search path is not changed.
"""
from __future__ import annotations

import importlib
import sys


def _script_package() -> str:
    """Run as a script: load the package this file belongs to; its import name."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    if "pose2pose_mocap" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "pose2pose_mocap", root / "__init__.py", submodule_search_locations=[str(root)])
        pkg = importlib.util.module_from_spec(spec)
        sys.modules["pose2pose_mocap"] = pkg
        spec.loader.exec_module(pkg)
    return "pose2pose_mocap"


def main(argv=None) -> int:
    package = __package__.rpartition(".")[0] if __package__ else _script_package()
    return importlib.import_module(package + ".worker.server").main(argv)


if __name__ == "__main__":
    sys.exit(main())
