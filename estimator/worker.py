# SPDX-License-Identifier: GPL-3.0-or-later
"""The old entry of the estimator worker, kept working; the worker is ``worker/`` now.

* ``python path/to/pose2pose_mocap/estimator/worker.py [--log FILE]`` runs
  ``worker/__main__.py`` as a script (which loads its package from its own folder,
  without changing the module search path).
* ``python -m pose2pose_mocap.estimator.worker [--log FILE]`` runs
  ``pose2pose_mocap.worker.server``.

Nothing here is estimator code and nothing in the package imports this module; the
worker is found by name only when this file is run.
"""
from __future__ import annotations

if __name__ == "__main__":
    import sys

    if __package__:
        import importlib

        _package = __package__.rpartition(".")[0]
        sys.exit(importlib.import_module(_package + ".worker.server").main())
    else:
        import runpy
        from pathlib import Path

        runpy.run_path(str(Path(__file__).resolve().parent.parent / "worker" / "__main__.py"),
                       run_name="__main__")
