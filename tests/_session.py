"""Folders written once per test run, shared by pytest-xdist's workers."""
from __future__ import annotations

import os
from pathlib import Path


def shared_session_folder(tmp_path_factory, name: str, write) -> Path:
    """A folder ``write(folder)`` fills once per test run.

    Under pytest-xdist (``make test`` runs two workers) each worker is its own session:
    the first worker to get here writes the folder into the run's shared temporary folder
    under a file lock, the others wait and reuse it (one set of stand-ins per run, ~1.6 GB
    and ~10 s each). pytest removes that folder with the run's temporary folder."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        root = tmp_path_factory.mktemp(name)
        write(root)
        return root
    import fcntl
    import shutil

    root = tmp_path_factory.getbasetemp().parent / name
    with open(f"{root}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / ".complete").is_file():
            shutil.rmtree(root, ignore_errors=True)  # (a worker that died half-way)
            root.mkdir()
            write(root)
            (root / ".complete").touch()
    return root
