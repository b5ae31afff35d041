"""The quality report (retarget/cleanup/report.py): its figures, JSON, text and PNG."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pose2pose_mocap.retarget.cleanup import qa, report
from pose2pose_mocap.common.errors import OutputExistsError

from .synthetic import make_take, standin_smplx_path
from .test_cleanup_qa import _motion_and_contacts, inject_flip, walk_params


@pytest.fixture(scope="module")
def model():
    from pose2pose_mocap.retarget.smplx_model import load_smplx_model

    return load_smplx_model(standin_smplx_path())


def _take_with_faults():
    p = walk_params(300, seed=2)
    inject_flip(p, "left", 100, 104)
    valid = np.ones(300, bool)
    valid[200:210] = False
    take = make_take(p, valid=valid)
    take.raw["score"] = np.linspace(0.4, 1.0, 300)
    return take


def test_joint_jitter_is_the_second_difference():
    T = 10
    t = np.arange(T, dtype=float)
    joints = np.zeros((T, 22, 3))
    joints[..., 0] = 0.5 * 0.002 * t[:, None] ** 2      # constant acceleration 2 mm/frame^2
    valid = np.ones(T, bool)
    valid[5] = False
    jit = report.joint_jitter(joints, valid)
    assert np.isnan(jit[[0, 4, 5, 6, 9]]).all()
    np.testing.assert_allclose(jit[[1, 2, 3, 7, 8]], 0.002)


def test_skate_and_penetration_figures():
    motion, contacts = _motion_and_contacts(T=40)
    heel = motion.foot_points["left_heel"]
    heel[10:, 0] += 0.004 * np.minimum(np.arange(30), 10)   # 4 mm/frame for 10 frames
    motion.foot_points["right_toes"][:, 1] += 0.015          # 10 mm below the floor
    skate, rows = report.foot_skate(motion, contacts)
    # 4 points x 39 row pairs in contact; 10 of them slide 4 mm
    assert skate == pytest.approx(10 * 0.004 / (4 * 39))
    assert rows == {"left": 40, "right": 40}
    pen = report.penetration(motion, contacts.ground)
    assert pen["max"] == pytest.approx(0.010) and pen["rows"] == 40


def test_report_json_schema(model, tmp_path):
    take = _take_with_faults()
    rep = report.build_report(take, model)
    d = json.loads(rep.to_json())
    assert d["format"] == report.REPORT_FORMAT == "p2p-qa/1"
    assert set(d) == {"format", "take", "measured_positions", "frames", "confidence",
                      "jitter_mm_per_frame2", "foot_skate_mm_per_contact_frame",
                      "contact_frames", "penetration_mm", "ground", "flags", "notes"}
    assert d["frames"] == {"rows": 300, "valid": 290, "valid_fraction": round(290 / 300, 4)}
    assert d["measured_positions"] is True and d["jitter_mm_per_frame2"] > 0
    assert d["confidence"]["min"] == pytest.approx(0.4, abs=1e-3)
    assert set(d["flags"]["counts"]) == set(qa.FLAG_KINDS)
    assert d["flags"]["counts"]["wrist_flip"] == 1 and d["flags"]["counts"]["dropout"] == 1
    assert d["flags"]["rows"]["dropout"] == 10
    span = [s for s in d["flags"]["spans"] if s["kind"] == "wrist_flip"][0]
    assert (span["start"], span["end"], span["frame_start"], span["frame_end"]) == \
        (100, 104, 100, 103)
    written = report.write_json(rep, tmp_path / "r.json")
    assert json.loads(written.read_text()) == d
    with pytest.raises(OutputExistsError):
        report.write_json(rep, tmp_path / "r.json")
    assert report.write_json(rep, tmp_path / "r.json", numbered=True).name == "r-2.json"


def test_report_without_a_model_says_so():
    rep = report.build_report(_take_with_faults())
    d = rep.data
    assert d["measured_positions"] is False and d["jitter_mm_per_frame2"] is None
    assert d["penetration_mm"] is None and d["contact_frames"] is None
    assert any("no SMPL-X model" in n for n in d["notes"])
    assert d["flags"]["counts"]["wrist_flip"] == 1
    text = report.report_text(rep, "clip.take.npz")
    assert "not measured" in text and "wrist_flip 1" in text


def test_text_fits_one_screen(model):
    p = walk_params(900, seed=1)
    for s in range(50, 850, 40):
        inject_flip(p, "right", s, s + 3)
    rep = report.build_report(make_take(p), model)
    text = report.report_text(rep, "clip.take.npz")
    lines = text.splitlines()
    assert len(lines) <= 25 and max(map(len, lines)) <= 120
    assert lines[0].startswith("QA clip.take.npz: 900 rows at 30 fps (30.0 s)")
    spans = rep.data["flags"]["spans"]
    assert len(spans) >= 20 and f"and {len(spans) - 12} more" in text


def test_plot_png_is_readable(model, tmp_path):
    from PIL import Image

    rep = report.build_report(_take_with_faults(), model)
    path = report.write_plot(rep, tmp_path / "r.png", width=800)
    with Image.open(path) as img:
        img.load()
        assert img.format == "PNG" and img.size[0] == 800 and img.size[1] > 200
        px = np.asarray(img.convert("RGB"))
    assert (px < 250).any(axis=-1).mean() > 0.02          # not blank
    for kind in ("wrist_flip", "dropout"):                 # the flags' colours are drawn
        colour = np.array(report.KIND_COLOURS[kind])
        assert (np.abs(px.astype(int) - colour).sum(-1) == 0).sum() > 20, kind
    # the flip's span lies where its rows are on the time axis
    flip = (np.abs(px.astype(int) - np.array(report.KIND_COLOURS["wrist_flip"])).sum(-1) == 0)
    cols = np.flatnonzero(flip.any(axis=0))
    cols = cols[cols > 110]
    left, right = 110, 800 - 20
    x0 = left + 100 / 300 * (right - left)
    assert abs(cols.min() - x0) <= 3


def test_report_paths_and_summary_table(model, tmp_path):
    import csv

    assert [p.name for p in report.report_paths(tmp_path / "a.person2.take.npz")] == \
        ["a.person2.qa.json", "a.person2.qa.png"]
    (tmp_path / "sub").mkdir()
    good = report.write_json(report.build_report(_take_with_faults(), model),
                             tmp_path / "sub" / "good.qa.json")
    bad = tmp_path / "bad.qa.json"
    bad.write_text("{not json")
    path = report.write_summary([("sub/good.mp4", good), ("bad.mp4", bad)],
                                tmp_path / "qa-summary.csv")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == report.SUMMARY_COLUMNS
    assert rows[0]["clip"] == "sub/good.mp4" and rows[0]["report"] == "sub/good.qa.json"
    assert rows[0]["valid"] == "290" and rows[0]["wrist_flip"] == "1"
    assert rows[1]["clip"] == "bad.mp4" and rows[1]["rows"] == "" and \
        rows[1]["report"] == "bad.qa.json"
    mtime = path.stat().st_mtime_ns
    report.write_summary([("sub/good.mp4", good), ("bad.mp4", bad)], path)
    assert path.stat().st_mtime_ns == mtime            # same table: the file is left alone


def test_converted_report_flags_the_estimate_and_measures_the_result(model):
    from pose2pose_mocap.retarget.options import ConvertOptions

    take = _take_with_faults()
    raw = report.build_report(take, model)
    conv = report.converted_report(take, model, ConvertOptions())
    assert conv.data["flags"]["counts"]["wrist_flip"] == 1       # found before smoothing
    assert conv.data["jitter_mm_per_frame2"] < 0.5 * raw.data["jitter_mm_per_frame2"]


def test_text_lists_estimation_faults_first(model):
    assert sorted(report.TEXT_ORDER) == sorted(qa.FLAG_KINDS)
    motion, contacts = _motion_and_contacts(T=300)
    for name in motion.foot_points:
        motion.foot_points[name][100:, 1] += 0.05                 # sunk, from row 100 on
    rep = report.build_report(_take_with_faults(), model, motion=motion, contacts=contacts)
    listed = [ln.split()[2] for ln in report.report_text(rep).splitlines()
              if ln.startswith("    frame")]
    assert listed[:2] == ["wrist_flip", "dropout"] and "penetration" in listed
