"""A newcomer's first runs (issue 18): batch says STAND-IN (start, summary, manifest), prints
no temporary names or Blender chatter, and leaves no lock file; the help texts say what the
README says (INPUT may be footage, the -o folder rule, --blender; unreal in metres); the
README cites only pages that exist."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _help(*cmd) -> str:
    r = subprocess.run([sys.executable, "-m", "pose2pose_mocap.cli", *cmd, "--help"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return " ".join(r.stdout.split())


def test_help_texts_say_the_rules():
    convert = _help("convert")
    assert "footage" in convert and "--blender" in convert and "Blender 5.0" in convert
    for text in (convert, _help("export"), _help("estimate"), _help("import")):
        assert "a name ending in /" in text and "created only for a name ending in /" in text
    export = _help("export")
    unreal = export[export.index("unreal:"):][:120]
    assert "metres" in unreal and "centimetre file" not in unreal
    assert "created when missing" in _help("batch")


def test_readme_links_exist():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(((?:docs|samples)/[^)#]+)", text)
    assert len(links) >= 10
    missing = [p for p in links if not (REPO / p).is_file()]
    assert not missing, missing
    quick = text[text.index("## Quick start"):text.index("## The commands")]
    assert "make demo" in quick and "make test" in quick and "GB" in quick
    assert ".venv/bin/p2p-mocap" in quick and "Blender 5.0" in quick


@pytest.mark.slow
@pytest.mark.torch
def test_batch_says_standin_and_leaves_no_lock_or_temp_names(standin_root, tmp_path):
    from .faults.conftest import batch_footage, run_cli

    src, out = batch_footage(tmp_path, "walk.mp4")
    res = run_cli(["batch", str(src), "-o", str(out), "--smplx", str(standin_root),
                   "--checkpoint", str(standin_root / "pose2pose"), "--preset", "gltf",
                   "--pose-correctives", "off"])
    assert res.rc == 0, res.stdout + res.stderr
    text = res.stdout + res.stderr
    assert res.stderr.count("batch: STAND-IN model files") == 1, res.stderr
    assert "STAND-IN model files were used for 2 clip(s)" in res.stdout
    for bad in (".part", "Info:", "Saved copy", "export starting", "INFO"):
        assert bad not in text, (bad, text)
    assert not (out / ".batch.lock").exists()
    assert (out / "a" / "walk.glb").is_file()
    done = [json.loads(ln) for ln in (out / "batch.jsonl").read_text().splitlines()]
    done = [r for r in done if r["state"] == "done"]
    assert len(done) == 2 and all(r.get("standin") is True for r in done)
