"""The repo root is a valid Blender extension: manifest, built zip, install, enable/disable."""
from __future__ import annotations

import shutil
import tomllib
import zipfile

import pytest

from tools import extension_zip as ext

pytestmark = pytest.mark.blender
ADDON_ID = "pose2pose_mocap"
# Panels and operators show up in bpy.types by name; preferences classes do not.
OUR_CLASSES = ("P2P_PT_mocap", "P2P_PT_setup", "P2P_OT_check_setup", "P2P_PT_source",
               "P2P_PT_estimate", "P2P_PT_smoothing", "P2P_PT_export", "P2P_MT_export",
               "P2P_OT_estimate", "P2P_OT_cancel_estimate", "P2P_OT_import_take",
               "P2P_OT_export", "P2P_OT_apply_smoothing", "P2P_OT_install_smplx",
               "P2P_OT_install_checkpoint", "P2P_OT_download_detector",
               "P2P_OT_install_runtime", "P2P_OT_choose_images")


@pytest.fixture(scope="module")
def built_zip(repo, tmp_path_factory):
    return ext.build(repo, tmp_path_factory.mktemp("ext_build"))


def test_manifest_fields(repo):
    m = tomllib.loads((repo / "blender_manifest.toml").read_text())
    assert m["schema_version"] == "1.0.0"
    assert m["id"] == ADDON_ID
    assert len(m["tagline"]) <= 64 and m["tagline"][-1].isalnum()
    assert m["blender_version_min"] == "4.2.0"
    assert m["license"] == ["SPDX:GPL-3.0-or-later"]
    assert set(m["tags"]) <= {"Animation", "Import-Export"}
    assert m["permissions"]["files"]
    # Downloads (detector weights, Install Runtime) exist, so the network permission is
    # claimed, with a reason that follows the manifest rules.
    net = m["permissions"]["network"]
    assert 0 < len(net) <= 64 and net[-1].isalnum(), net


def test_manifest_validates_in_strict_mode(repo, tmp_path):
    src = tmp_path / ADDON_ID
    src.mkdir()
    shutil.copy(repo / "blender_manifest.toml", src)
    (src / "__init__.py").write_text("")
    r = ext.run("validate", str(src))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Success" in r.stdout


def test_manifest_validator_rejects_a_bad_tagline(repo, tmp_path):
    # Proves the validator really checks: same manifest, tagline ending in a period.
    src = tmp_path / ADDON_ID
    src.mkdir()
    text = (repo / "blender_manifest.toml").read_text()
    text = text.replace('tagline = "', 'tagline = "Bad. ').replace('video"', 'video."')
    (src / "blender_manifest.toml").write_text(text)
    (src / "__init__.py").write_text("")
    r = ext.run("validate", str(src))
    assert r.returncode != 0
    assert "tagline" in r.stdout + r.stderr


def test_built_zip_validates_and_holds_package_only(built_zip):
    r = ext.run("validate", str(built_zip))
    assert r.returncode == 0, r.stdout + r.stderr
    names = zipfile.ZipFile(built_zip).namelist()
    for must in ("blender_manifest.toml", "__init__.py", "addon/__init__.py",
                 "addon/preferences.py", "estimator/__init__.py", "estimator/registry.py",
                 "estimator/base.py", "estimator/pose2pose/__init__.py",
                 "estimator/pose2pose/estimator.py", "retarget/__init__.py",
                 "weights/locations.py", "weights/pose2pose_keys.json", "doctor.py", "cli.py",
                 "worker/__init__.py", "worker/__main__.py", "worker/server.py",
                 "worker/client.py", "estimator/worker.py"):
        assert must in names, must
    for n in names:
        assert not n.startswith(("tests/", "bench/", "tools/", ".ci/", ".git", "build/", "dist/")), n
        assert n != "Makefile", n
        assert "__pycache__" not in n and ".egg-info" not in n, n
        assert not n.endswith((".pth", ".pth.tar", ".safetensors", ".npz", "pyproject.toml")), n


def test_worker_starts_from_the_unpacked_zip(built_zip, tmp_path):
    """The worker script of an installed extension loads the package from its own folder
    (any folder name, nothing on the module search path), old and new entry alike."""
    import json
    import subprocess
    import sys

    folder = tmp_path / "some_other_name"
    with zipfile.ZipFile(built_zip) as zf:
        zf.extractall(folder)
    for script in (folder / "worker" / "__main__.py", folder / "estimator" / "worker.py"):
        # -S: no site-packages, so neither torch nor an installed pose2pose_mocap: the
        # script must load its package from the folder to say that torch is missing.
        r = subprocess.run([sys.executable, "-S", str(script), "--log", str(tmp_path / "w.log")],
                           input='{"cmd": "ping"}\n', capture_output=True, text=True,
                           timeout=120, cwd=tmp_path)
        (ev,) = [json.loads(line) for line in r.stdout.splitlines()]
        assert ev["event"] == "error" and "cannot import torch" in ev["message"], r
        assert r.returncode == 2


def _registered(bpy) -> list[str]:
    return [c for c in OUR_CLASSES if hasattr(bpy.types, c)]


def test_install_enable_disable_twice(built_zip):
    import bpy
    import addon_utils  # importable once bpy is

    bpy.ops.wm.read_factory_settings(use_empty=True)
    module = f"bl_ext.user_default.{ADDON_ID}"
    result = bpy.ops.extensions.package_install_files(
        filepath=str(built_zip), repo="user_default", enable_on_install=False)
    assert result == {'FINISHED'}
    assert _registered(bpy) == []
    handlers_before = {n: len(getattr(bpy.app.handlers, n)) for n in ("load_pre", "load_post",
                                                                      "depsgraph_update_post")}
    for _ in range(2):
        mod = addon_utils.enable(module, default_set=True, handle_error=_raise)
        assert mod is not None
        assert _registered(bpy) == list(OUR_CLASSES)
        classes = mod.addon._CLASSES
        assert all(c.is_registered for c in classes)
        assert bpy.context.preferences.addons[module].preferences is not None
        assert hasattr(bpy.types.WindowManager, "p2p_setup_report")
        assert hasattr(bpy.types.Scene, "p2p_mocap")
        assert bpy.context.preferences.addons.get(module) is not None
        # The operator runs and fills the report (no model files in the test data dir).
        assert bpy.ops.p2p.check_setup() == {'FINISHED'}
        wm = bpy.context.window_manager
        assert "SMPLX_NEUTRAL.npz: not found" in wm.p2p_setup_report
        assert wm.p2p_setup_ready is False
        addon_utils.disable(module, default_set=True, handle_error=_raise)
        assert _registered(bpy) == []
        assert not any(c.is_registered for c in classes)
        assert not hasattr(bpy.types.WindowManager, "p2p_setup_report")
        assert not hasattr(bpy.types.WindowManager, "p2p_progress")
        assert not hasattr(bpy.types.Scene, "p2p_mocap")
        # No stray handlers (timers: the add-on uses only modal event timers, removed on
        # every exit path; bpy.app.timers is never used).
        assert {n: len(getattr(bpy.app.handlers, n)) for n in handlers_before} == handlers_before
        assert not hasattr(bpy.ops.p2p, "check_setup") or not _op_exists(bpy, "p2p.check_setup")


def _op_exists(bpy, idname: str) -> bool:
    mod, name = idname.split(".")
    try:
        getattr(getattr(bpy.ops, mod), name).get_rna_type()
        return True
    except (KeyError, AttributeError):
        return False


def _raise(exc):
    raise exc
