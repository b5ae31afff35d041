"""Fixtures shared by the Blender tests: the add-on enabled from this checkout, stand-ins."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def addon(repo, tmp_path_factory):
    """The add-on enabled as a dev extension in a factory-settings Blender (per module)."""
    import bpy

    from .test_addon_ui import disable_dev_addon, enable_dev_addon

    bpy.ops.wm.read_factory_settings(use_empty=True)
    mod = enable_dev_addon(repo, tmp_path_factory.mktemp("p2p_dev"))
    yield mod
    disable_dev_addon()


@pytest.fixture(scope="session")
def smplx_root(tmp_path_factory):
    """A folder with the three SMPL-X stand-ins (667 MB: written once per run, not per module)."""
    from pose2pose_mocap.weights.standins import write_smplx_standins

    from .._session import shared_session_folder

    return shared_session_folder(tmp_path_factory, "smplx_standin", write_smplx_standins)


@pytest.fixture(scope="module", autouse=True)
def _empty_blender_per_module():
    """Each test module starts from an empty factory-settings session: what one module left
    (rigs, generated Rigify rigs, actions) never reaches the next (bpy 4.2 crashed in an
    exporter after a whole-folder run had piled it up)."""
    bpy = pytest.importorskip("bpy")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield
