"""``p2p-mocap batch`` writes a quality report per take and a folder summary table; a re-run
keeps the reports of clips that are up to date (stand-in model files)."""
from __future__ import annotations

import csv
import json

import pytest

from .test_batch import batch, outputs, records

pytestmark = [pytest.mark.torch, pytest.mark.blender, pytest.mark.slow]


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    import cv2

    from ..estimator.media import frame

    root = tmp_path_factory.mktemp("footage_qa")
    (root / "seq").mkdir()
    for i in range(6):
        cv2.imwrite(str(root / "seq" / f"img{i}.png"), cv2.resize(frame(i), (160, 120)))
    return root


def _summary(out):
    with open(out / "qa-summary.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_reports_per_take_and_a_summary_kept_on_resume(footage, standin_root, tmp_path):
    from PIL import Image

    out = tmp_path / "out"
    r = batch(footage, out, standin_root)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"quality reports: {out / 'qa-summary.csv'}" in r.stdout
    d = json.loads((out / "seq.qa.json").read_text())
    assert d["format"] == "p2p-qa/1" and d["take"]["path"].endswith("seq.take.npz")
    assert d["frames"]["rows"] == 6 and d["measured_positions"] is True
    with Image.open(out / "seq.qa.png") as img:
        img.load()
        assert img.size[0] >= 800
    rows = _summary(out)
    assert len(rows) == 1 and rows[0]["clip"] == "seq" and rows[0]["rows"] == "6"
    assert rows[0]["report"] == "seq.qa.json" and rows[0]["valid"] == str(d["frames"]["valid"])
    done = [rec for rec in records(out) if rec["state"] == "done"][-1]
    assert [f["path"] for f in done["outputs"]["reports"]] == ["seq.qa.json", "seq.qa.png"]
    first = outputs(out)

    # Up to date: nothing is recomputed or rewritten, the summary included.
    r = batch(footage, out, standin_root)
    assert "1 clip(s): 0 done, 1 up to date" in r.stdout, r.stdout + r.stderr
    assert outputs(out) == first

    # Only an export: the reports are the convert's and stay; the summary still lists them.
    r = batch(footage, out, standin_root, "--preset", "bvh")
    assert r.returncode == 0, r.stdout + r.stderr
    now = outputs(out)
    assert {k: now[k] for k in first} == first and "seq.bvh" in now
    assert _summary(out) == rows

    # New smoothing: converted again, so the reports are measured again.
    r = batch(footage, out, standin_root, "--smooth", "none", "--preset", "bvh")
    assert r.returncode == 0, r.stdout + r.stderr
    last = outputs(out)
    assert last["seq.take.npz"] == first["seq.take.npz"]
    assert last["seq.qa.json"] != first["seq.qa.json"] and last["seq.qa.png"] != first["seq.qa.png"]
