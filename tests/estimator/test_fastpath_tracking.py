"""The batched pipeline's tracking at large batches: speculate, check, re-run.

A fake network (``BlockNet``: finds the bright block in each crop) and a detector that
finds it in the frame let the real pipeline follow a figure that moves fast, jumps,
leaves the picture and comes back. A batch-64 run must equal the one-frame run: exactly
with tolerance 0, within the tolerance's effect by default; the classic path, which
predicts the crops of a whole batch without a check, does not (so the test can fail).
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from pose2pose_mocap.estimator.detector import Detection
from pose2pose_mocap.estimator.fastpath import speculative as S
from pose2pose_mocap.estimator.pipeline import EstimateJob
from pose2pose_mocap.estimator.tracking import Track, Tracker
from pose2pose_mocap.retarget.take import read_take

from .test_pipeline import BlockNet

W, H = 320, 240


def block_x(n: int) -> list[int | None]:
    """Left edge of the block per frame (None: not in the picture): walks right fast
    (14 px/frame), jumps 90 px back, walks on and out at the right, is gone for 6 frames,
    comes back walking left."""
    xs: list[int | None] = []
    x = 10
    for i in range(n):
        if i == 9:
            x -= 90
        if 0 <= x < W - 8:
            xs.append(x)
        else:
            xs.append(None)
        x += 14 if i < 30 else -14
        if i == 23:   # out at the right ...
            x = W + 40
        if i == 29:   # ... back after 6 frames
            x = W - 20
    return xs


def write_clip(path, xs):
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (W, H))
    for x in xs:
        img = np.full((H, W, 3), 20, np.uint8)
        if x is not None:
            img[50:210, max(0, x):x + 50] = 230
        wr.write(img)
    wr.release()
    return path


class BlockDetector:
    """A person detector for these clips: the bright block's box, if any."""

    standin = False

    def __init__(self):
        self.calls = 0

    def __call__(self, images):
        self.calls += len(images)
        out = []
        for im in images:
            ys, xs = np.nonzero(im[..., 0] > 150)
            out.append([Detection(np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1],
                                           float), 0.9)] if len(xs) > 300 else [])
        return out


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("fast") / "fast.avi", block_x(44))


def run(clip, out, standin_net, *, pipeline, batch, tolerance=None, detect_every=10):
    job = EstimateJob(clip, out, batch=batch, pipeline=pipeline, detect_every=detect_every,
                      model=BlockNet(standin_net.smplx_layer), model_name="blocknet",
                      detector=BlockDetector(), device="cpu")
    if tolerance is not None:
        job.speculation_tolerance = tolerance
    res = job.run()
    return job, read_take(res.outputs[0])


def _same_frames(a, b):
    assert a.frame_index.tolist() == b.frame_index.tolist()
    assert a.valid.tolist() == b.valid.tolist()


@pytest.mark.parametrize("detect_every", [0, 10])
def test_batch64_equals_batch1_exactly_with_tolerance_0(tmp_path, clip, standin_net,
                                                       detect_every):
    _, one = run(clip, tmp_path / "one.take.npz", standin_net, pipeline="batched", batch=1,
                 detect_every=detect_every)
    job, big = run(clip, tmp_path / "big.take.npz", standin_net, pipeline="batched", batch=64,
                   tolerance=0.0, detect_every=detect_every)
    _same_frames(one, big)
    for k in ("bbox_xywh", "joints_2d", "score"):
        np.testing.assert_array_equal(big.raw[k], one.raw[k], err_msg=k)
    np.testing.assert_array_equal(big.params["transl"], one.params["transl"])
    assert job.runner.stats.rerun > 0  # predictions were checked and some re-run


def test_batch64_equals_batch1_within_tolerance(tmp_path, clip, standin_net):
    _, one = run(clip, tmp_path / "one.take.npz", standin_net, pipeline="batched", batch=1)
    job, big = run(clip, tmp_path / "big.take.npz", standin_net, pipeline="batched", batch=64)
    _same_frames(one, big)
    # the crop boxes (processed) within the tolerance's 2 % of the crop, the joints (block
    # corners found in crop pixels, ~1 image px each) within 2 px where the block is seen
    box_a, box_b = big.raw["bbox_xywh"], one.raw["bbox_xywh"]
    err = np.abs(np.c_[box_a[:, :2] + box_a[:, 2:] / 2 - box_b[:, :2] - box_b[:, 2:] / 2,
                       box_a[:, 2:] - box_b[:, 2:]]).max(axis=1) / box_b[:, 2]
    assert err.max() <= S.DEFAULT_TOLERANCE + 1e-6, err
    seen = one.raw["score"] > 0.5
    assert seen.sum() >= 25
    dj = np.abs(big.raw["joints_2d"][:, :25, :2] - one.raw["joints_2d"][:, :25, :2])
    assert dj[seen].max() <= 2.0, dj[seen].max()
    st = job.runner.stats
    assert st.frames == 44 and st.rounds < 44  # batches of many frames, not one by one


def test_classic_batch64_does_not_follow(tmp_path, clip, standin_net):
    """Without the check, crops predicted over a long batch miss the figure."""
    _, one = run(clip, tmp_path / "one.take.npz", standin_net, pipeline="batched", batch=1)
    _, classic = run(clip, tmp_path / "classic.take.npz", standin_net, pipeline="classic",
                     batch=64)
    seen = one.raw["score"] > 0.5
    diff = np.abs(classic.raw["joints_2d"][:, :25, :2] - one.raw["joints_2d"][:, :25, :2])
    assert diff[seen].max() > 20


def test_speculative_box_is_the_one_frame_prediction():
    t = Track(id=1, box=np.array([100.0, 50, 60, 160]), seq=9,
              velocity=np.array([12.0, -2.0]))
    np.testing.assert_allclose(S.speculative_box(t, 10), t.predicted_box(10))  # one frame
    b5 = S.speculative_box(t, 14)  # five frames on: moved 5x, grown as for one frame
    one = t.predicted_box(10)
    np.testing.assert_allclose(b5[:2], one[:2] + 4 * t.velocity)
    np.testing.assert_allclose(b5[2:], one[2:])
    np.testing.assert_array_equal(S.speculative_box(t, 9), t.box)


def test_boxes_agree_and_schedule():
    from pose2pose_mocap.estimator.pose2pose.estimator import CROP_SPEC

    a = {1: np.array([100.0, 50, 60, 160])}
    assert S.boxes_agree(a, {1: a[1].copy()}, CROP_SPEC, (W, H), 0.0)
    moved = {1: a[1] + [2.0, 0, 0, 0]}  # 2 px of a 149 px wide crop box: 1.3 %
    assert not S.boxes_agree(a, moved, CROP_SPEC, (W, H), 0.0)
    assert S.boxes_agree(a, moved, CROP_SPEC, (W, H), 0.02)
    assert not S.boxes_agree(a, moved, CROP_SPEC, (W, H), 0.01)
    assert not S.boxes_agree(a, {2: a[1]}, CROP_SPEC, (W, H), 0.5)  # another person
    off = {1: np.array([5000.0, 50, 60, 160])}  # outside the picture: no crop
    assert S.box_error(off[1], a[1], CROP_SPEC, (W, H)) == float("inf")
    tr = Tracker((W, H))
    tr.seed_box(0, a[1])
    tr.cfg.detect_every = 10
    assert not S.scheduled_detection(tr, 9) and S.scheduled_detection(tr, 10)
    assert S.next_span(8, 8, 8, 64) == 16 and S.next_span(16, 16, 3, 64) == 3
    assert S.next_span(64, 64, 64, 64) == 64 and S.next_span(4, 4, 0, 64) == 1


def test_a_steady_walk_is_rarely_re_run(tmp_path, standin_net):
    """Predictions hold for a figure walking at a steady pace: large rounds, few re-runs
    (the first rounds are short while the velocity is learnt)."""
    from .test_pipeline import _block_video

    clip = _block_video(tmp_path / "steady.avi", 64, 4)
    job, take = run(clip, tmp_path / "s.take.npz", standin_net, pipeline="batched", batch=64,
                    detect_every=0)
    st = job.runner.stats
    assert st.frames == 64 and st.rounds <= 8 and st.rerun <= 3, st.line()
    assert take.valid.all() and (take.raw["score"] > 0.5).all()


class BlocksDetector:
    """Every bright block of the frame (connected components)."""

    standin = False

    def __call__(self, images):
        out = []
        for im in images:
            n, _lab, stats, _c = cv2.connectedComponentsWithStats(
                (im[..., 0] > 150).astype(np.uint8))
            out.append([Detection(np.array([x, y, x + w, y + h], float), 0.9)
                        for x, y, w, h, area in stats[1:] if area > 300])
        return out


def test_two_people_batch64_equals_batch1(tmp_path, standin_net):
    """``--person all``: two figures walking towards each other, one take each; the batch
    spans frames x people and equals the one-frame run (tolerance 0)."""
    wr = cv2.VideoWriter(str(tmp_path / "two.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30, (W, H))
    for i in range(20):
        img = np.full((H, W, 3), 20, np.uint8)
        img[50:210, 20 + 2 * i:70 + 2 * i] = 230
        img[50:210, 230 - 2 * i:280 - 2 * i] = 230
        wr.write(img)
    wr.release()
    takes = {}
    for batch in (1, 64):
        job = EstimateJob(tmp_path / "two.avi", tmp_path / f"b{batch}.take.npz", batch=batch,
                          pipeline="batched", person="all", detect_every=0,
                          model=BlockNet(standin_net.smplx_layer), model_name="blocknet",
                          detector=BlocksDetector(), device="cpu")
        job.speculation_tolerance = 0.0
        res = job.run()
        assert res.people == [1, 2]
        takes[batch] = [read_take(p) for p in res.outputs]
    for one, big in zip(takes[1], takes[64]):
        _same_frames(one, big)
        assert one.valid.all()
        for k in ("bbox_xywh", "joints_2d", "score"):
            np.testing.assert_array_equal(big.raw[k], one.raw[k], err_msg=k)
    left, right = (t.raw["bbox_xywh"][:, 0] + t.raw["bbox_xywh"][:, 2] / 2 for t in takes[64])
    assert (left < W / 2).all() and (right > W / 2).all()  # each take follows its own figure
