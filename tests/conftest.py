"""Shared fixtures. Blender's user folders are redirected before bpy is imported,
so tests never write into the developer's ~/.config/blender."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_BLENDER_HOME = Path(tempfile.mkdtemp(prefix="p2p_blender_user_"))
for _var, _sub in (("BLENDER_USER_CONFIG", "config"), ("BLENDER_USER_SCRIPTS", "scripts"),
                   ("BLENDER_USER_EXTENSIONS", "extensions"), ("BLENDER_USER_DATAFILES", "datafiles")):
    os.environ[_var] = str(_BLENDER_HOME / _sub)
# Model files must come from the tests' own folders, never from the developer's data dir.
os.environ["P2P_MOCAP_DATA_DIR"] = str(_BLENDER_HOME / "p2p_data")
os.environ["P2P_MOCAP_IGNORE_CHECKOUT"] = "1"
for _var in ("P2P_MOCAP_SMPLX", "P2P_MOCAP_SMPL", "P2P_MOCAP_CHECKPOINT", "P2P_MOCAP_DETECTOR",
             "P2P_MOCAP_I2L_CHECKPOINT"):
    os.environ.pop(_var, None)

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"

def pytest_unconfigure(config):
    import shutil

    shutil.rmtree(_BLENDER_HOME, ignore_errors=True)  # tests leave nothing in /tmp
    # The bpy 4.2 module can segfault at interpreter exit (blender #131922, fixed in 5.0), which
    # would turn a green run red after pytest has reported. Leave before that, with pytest's code.
    import sys

    bpy = sys.modules.get("bpy")
    if bpy is not None and bpy.app.version < (5, 0, 0):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(getattr(config, "_p2p_exitstatus", 0)))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    session.config._p2p_exitstatus = int(exitstatus)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def standin_root(tmp_path_factory) -> Path:
    """A folder with every stand-in model file, written once per test run."""
    from pose2pose_mocap.weights.standins import write_standins

    from ._session import shared_session_folder

    return shared_session_folder(tmp_path_factory, "standins", write_standins)
