"""Person detector: stand-in weights, safe loading, people only, no implicit download."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from pose2pose_mocap.estimator import detector as D
from pose2pose_mocap.weights import locations


def test_standin_file_and_lookup(detector_standin_root):
    path = detector_standin_root / "detector" / locations.STANDIN_DETECTOR_NAME
    assert path.is_file()
    hit = locations.find_detector(str(detector_standin_root))
    assert hit.found and hit.path == path and hit.standin


def test_standin_is_deterministic():
    a, b = D.standin_state_dict(0), D.standin_state_dict(0)
    for k in ("backbone.body.conv1.weight", "rpn.head.cls_logits.weight",
              "roi_heads.box_predictor.cls_score.bias"):
        assert np.array_equal(a[k].numpy(), b[k].numpy())
    c = D.standin_state_dict(1)
    assert not np.array_equal(a["backbone.body.conv1.weight"].numpy(),
                              c["backbone.body.conv1.weight"].numpy())


@pytest.fixture(scope="module")
def standin_detector(detector_standin_root):
    return D.load_person_detector(str(detector_standin_root), "cpu", min_size=320)


@pytest.mark.slow
def test_detects_people_only(standin_detector):
    det = standin_detector
    assert det.standin and "STAND-IN" in det.description
    img = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    (found,) = det([img])
    assert found, "the stand-in always 'finds' people"
    for d in found:
        assert d.score >= D.DEFAULT_SCORE_THRESHOLD
        x1, y1, x2, y2 = d.box
        assert 0 <= x1 < x2 <= 320 and 0 <= y1 < y2 <= 240
        assert d.xywh[2] == pytest.approx(x2 - x1)
    det.score_threshold = 0.99
    try:
        assert det([img]) == [[]]
    finally:
        det.score_threshold = D.DEFAULT_SCORE_THRESHOLD


def test_renamed_standin_still_reported(tmp_path, detector_standin_root):
    (tmp_path / "detector").mkdir()
    dst = tmp_path / "detector" / locations.DETECTOR_NAMES[1]
    shutil.copy(detector_standin_root / "detector" / locations.STANDIN_DETECTOR_NAME, dst)
    assert not locations.find_detector(str(tmp_path)).standin  # by name: looks real
    assert D.PersonDetector(dst, min_size=320).standin  # by content: a stand-in


def test_refuses_code_and_junk(tmp_path):
    import torch

    class Evil:
        def __reduce__(self):
            return (print, ("this would run",))

    bad = tmp_path / "evil.pth"
    torch.save({"x": Evil()}, bad)
    with pytest.raises(D.DetectorError, match="only plain tensor files"):
        D.PersonDetector(bad)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(D.DetectorError, match="not a usable detector weights file"):
        D.PersonDetector(junk)
    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, other)
    with pytest.raises(D.DetectorError, match="not torchvision Faster R-CNN"):
        D.PersonDetector(other)
    with pytest.raises(D.DetectorError, match="does not hold"):
        D.load_person_detector(str(tmp_path / "missing"))


def test_no_weights_no_download_uses_whole_frame(tmp_path, job_kwargs, monkeypatch):
    from pose2pose_mocap.estimator.pipeline import EstimateJob

    from .media import write_images

    def no_network(*a, **k):
        raise AssertionError("must not download without --download-detector")

    monkeypatch.setattr(D, "download_detector", no_network)
    assert D.load_person_detector(None) is None  # the tests' data dirs hold no weights
    (img,) = write_images(tmp_path, 1)
    job = EstimateJob(img, **dict(job_kwargs, detector="auto"))
    res = job.run()
    assert any("no person detector weights found" in n for n in res.notes)
    assert read_box(res.outputs[0]) == pytest.approx([-40.0, -146.5, 398.75, 531.67], abs=1)


@pytest.mark.slow
def test_download_only_when_allowed(tmp_path, job_kwargs, monkeypatch, detector_standin_root):
    from pose2pose_mocap.estimator.pipeline import EstimateJob

    from .media import write_images

    calls = []

    def fake_download(dest_dir=None, progress=True):
        calls.append(dest_dir)
        return detector_standin_root / "detector" / locations.STANDIN_DETECTOR_NAME

    monkeypatch.setattr(D, "download_detector", fake_download)
    (img,) = write_images(tmp_path, 1)
    res = EstimateJob(img, **dict(job_kwargs, detector="auto", model_standin=False),
                      allow_download=True).run()
    assert calls == [None] and res.standin  # the "downloaded" file was used


def read_box(path):
    with np.load(path, allow_pickle=False) as z:
        return z["raw_bbox_xywh"][0].tolist()
