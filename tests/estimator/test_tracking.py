"""Tracker logic on synthetic people (joint and box sequences; no network).

The stand-in network's outputs are random, so the tracker is driven here by a
fake "network" that returns the true joints of whichever synthetic person fills
the crop, like a trained network would.
"""
from __future__ import annotations

import numpy as np
import pytest

from pose2pose_mocap.estimator.crop import process_bbox
from pose2pose_mocap.estimator.pose2pose.outputs import crop_confidence
from pose2pose_mocap.estimator.tracking import (Tracker, TrackerConfig, box_from_joints,
                                                inside_fraction, iou_xywh, prominence)

IMG = (640, 480)

# A standing figure, 25 body joints (joint_img order), unit height, origin at the pelvis.
_FIGURE = np.array([
    [0, 0], [-.1, 0], [.1, 0], [-.1, .45], [.1, .45], [-.1, .85], [.1, .85], [0, -.45],
    [-.2, -.42], [.2, -.42], [-.3, -.15], [.3, -.15], [-.32, .1], [.32, .1],
    [-.14, .95], [-.08, .95], [-.1, .9], [.14, .95], [.08, .95], [.1, .9],
    [-.06, -.62], [.06, -.62], [-.03, -.66], [.03, -.66], [0, -.63]])


def person(cx, cy, height, rng=None):
    j = _FIGURE * height + [cx, cy]
    if rng is not None:
        j = j + rng.normal(0, 0.01 * height, j.shape)
    return j


def true_box(j):
    return box_from_joints(j)


def fake_network(people, crop_box, rng):
    """Joints of the person most inside the (processed) crop; confidence = that share."""
    pb = process_bbox(crop_box, *IMG)
    if pb is None or not people:
        return None, 0.0
    shares = [inside_fraction(j, pb) for j in people]
    k = int(np.argmax(shares))
    if shares[k] < 0.5:
        c = pb[:2] + pb[2:] / 2
        return np.repeat(c[None], 25, axis=0), 0.0  # flat heatmaps: joints at the centre
    return people[k] + rng.normal(0, 1.0, (25, 2)), float(shares[k])


def simulate(tracker, people_at, T, batch=1, detect=True, seed=0):
    """Drive ``tracker`` like the pipeline does; return {seq: {track id: person index}}."""
    rng = np.random.default_rng(seed)
    who = {}
    for s0 in range(0, T, batch):
        crops = []
        for k, s in enumerate(range(s0, min(T, s0 + batch))):
            if (k == 0 or not tracker.active) and tracker.needs_detection(s):
                if detect:
                    tracker.update_detections(s, [true_box(j) for j in people_at(s)])
                else:
                    tracker.skip_detection(s)
            for tid, b in tracker.crop_boxes(s).items():
                crops.append((s, tid, b))
        for s, tid, b in crops:
            people = people_at(s)
            joints, conf = fake_network(people, b, rng)
            if joints is None:
                continue
            tracker.update_output(tid, s, joints, conf, crop_box=b)
            if conf > 0.5:
                dist = [np.abs(joints - p).mean() for p in people]
                who.setdefault(s, {})[tid] = int(np.argmin(dist))
        tracker.end_duplicates()
    return who


def test_one_person_keeps_one_id_while_walking():
    T = 90
    walk = lambda s: [person(100 + 5 * s, 250, 300)]  # noqa: E731 - 450 px over the clip
    tr = Tracker(IMG, TrackerConfig(detect_every=30), mode="all")
    who = simulate(tr, walk, T, batch=4)
    assert set(tr.tracks) == {1}
    assert sorted(who) == list(range(T))  # followed in every frame
    assert all(v == {1: 0} for v in who.values())


def test_fast_motion_batched_crops_follow():
    """Batch of 8: crops are predicted from the previous batch via the velocity."""
    T = 64
    walk = lambda s: [person(80 + 7 * s, 250, 260)]  # noqa: E731
    tr = Tracker(IMG, TrackerConfig(detect_every=0), mode="all")
    who = simulate(tr, walk, T, batch=8)
    assert set(tr.tracks) == {1} and len(who) == T
    # the velocity was learnt: ~7 px per frame along x
    assert tr.tracks[1].velocity[0] == pytest.approx(7, abs=1.0)


def test_two_people_keep_their_ids():
    T = 60
    # walking towards each other, stopping 220 px apart (boxes ~180 px wide)
    two = lambda s: [person(100 + 1.5 * s, 240, 200), person(500 - 1.5 * s, 230, 190)]  # noqa: E731
    tr = Tracker(IMG, TrackerConfig(detect_every=10), mode="all")
    who = simulate(tr, two, T, batch=2)
    assert set(tr.tracks) == {1, 2}  # left person first
    for s in range(T):
        assert who[s] == {1: 0, 2: 1}, s


def test_ids_left_to_right_and_person_enters_later():
    def people(s):
        out = [person(500, 250, 300), person(150, 250, 300)]
        if s >= 20:
            out.append(person(330, 240, 200))
        return out

    tr = Tracker(IMG, TrackerConfig(detect_every=10), mode="all")
    who = simulate(tr, people, 40)
    assert who[5] == {1: 1, 2: 0}  # id 1 = the left one (list index 1)
    assert who[35] == {1: 1, 2: 0, 3: 2}  # the newcomer gets the next id


def test_default_person_is_largest_most_central_and_others_ignored():
    people = lambda s: [person(100, 250, 150), person(330, 250, 320), person(560, 250, 200)]  # noqa: E731
    tr = Tracker(IMG, TrackerConfig(detect_every=10), mode="one")
    who = simulate(tr, people, 20)
    assert tr.target == 2  # the middle one; numbered left to right like --person all
    assert set(tr.tracks) == {2}  # only the target is followed
    assert all(v == {2: 1} for v in who.values())


def test_target_by_id():
    people = lambda s: [person(100, 250, 150), person(330, 250, 320), person(560, 250, 200)]  # noqa: E731
    tr = Tracker(IMG, TrackerConfig(detect_every=10), mode="one", target=3)
    who = simulate(tr, people, 10)
    assert set(tr.tracks) == {3} and all(v == {3: 2} for v in who.values())


def test_lost_target_is_found_again_with_the_same_id():
    def people(s):
        if 20 <= s < 45:
            return []  # walks behind something
        return [person(200 + 3 * s, 250, 300)]

    tr = Tracker(IMG, TrackerConfig(detect_every=30, max_lost=10), mode="one")
    who = simulate(tr, people, 70)
    assert set(tr.tracks) == {tr.target}
    found_after = [s for s in who if s >= 45]
    assert found_after and min(found_after) <= 47
    assert all(set(who[s]) == {tr.target} for s in who)


def test_low_confidence_asks_for_a_detection():
    tr = Tracker(IMG, TrackerConfig(detect_every=0), mode="all")
    assert tr.needs_detection(0)
    tr.update_detections(0, [true_box(person(300, 250, 300))])
    assert not tr.needs_detection(1)
    tr.update_output(1, 1, person(300, 250, 300), 0.9)
    assert not tr.needs_detection(2)
    box_before = tr.tracks[1].box.copy()
    tr.update_output(1, 2, person(30, 30, 10), 0.05)  # junk output
    assert tr.needs_detection(3)
    # junk does not move the box
    assert iou_xywh(tr.tracks[1].box, box_before) > 0.9


def test_detect_every():
    tr = Tracker(IMG, TrackerConfig(detect_every=5), mode="all")
    tr.update_detections(0, [true_box(person(300, 250, 300))])
    flags = []
    for s in range(1, 12):
        flags.append(tr.needs_detection(s))
        tr.update_output(1, s, person(300, 250, 300), 0.9)
        if flags[-1]:
            tr.update_detections(s, [true_box(person(300, 250, 300))])
    assert [s for s, f in zip(range(1, 12), flags) if f] == [5, 10]


def test_converged_duplicate_track_ends():
    tr = Tracker(IMG, TrackerConfig(detect_every=0), mode="all")
    tr.update_detections(0, [true_box(person(200, 250, 300)), true_box(person(450, 250, 300))])
    j = person(320, 250, 300)  # both crops now see the same person
    tr.update_output(1, 1, j, 0.9)
    tr.update_output(2, 1, j + 1, 0.9)
    assert tr.end_duplicates() == [2]
    assert [t.id for t in tr.active] == [1]


def test_small_detections_ignored_and_people_capped():
    tr = Tracker(IMG, TrackerConfig(min_height=0.2, max_people=2), mode="all")
    boxes = [true_box(person(x, 250, h)) for x, h in ((100, 50), (300, 300), (450, 200),
                                                     (560, 150))]
    tr.update_detections(0, boxes)
    assert len(tr.active) == 2  # the tiny one is ignored, the least prominent capped
    assert all(t.box[3] >= 0.2 * IMG[1] for t in tr.active)


def test_seed_box_without_detector():
    tr = Tracker(IMG, mode="one")
    t = tr.seed_box(0, (0, 0, *IMG))
    assert tr.target == t.id == 1 and not tr.needs_detection(1)


# ---------------------------------------------------------------------------- helpers
def test_box_from_joints_contains_joints():
    j = person(300, 250, 300)
    b = box_from_joints(j)
    assert inside_fraction(j, b) == 1.0
    assert b[3] == pytest.approx((j[:, 1].max() - j[:, 1].min()) * 1.14 + 0, rel=0.01)


def test_crop_confidence():
    rng = np.random.default_rng(0)
    spread = np.zeros((65, 3))
    spread[:25, :2] = person(3, 4, 6)  # a person filling the 8x6 grid
    proj = spread[:, :2].copy()
    assert crop_confidence(spread, proj) > 0.9
    assert crop_confidence(spread, proj + rng.normal(0, 1.5, proj.shape)) < 0.2  # disagree
    flat = np.zeros((65, 3))
    flat[:, 0], flat[:, 1] = 2.5, 3.5  # soft-argmax of flat heatmaps
    assert crop_confidence(flat + rng.normal(0, 0.05, flat.shape)) == 0.0
    assert crop_confidence(np.full((65, 3), np.nan)) == 0.0


def test_prominence_prefers_large_and_central():
    big_center = true_box(person(320, 250, 350))
    big_edge = true_box(person(80, 250, 350))
    small_center = true_box(person(320, 250, 120))
    assert prominence(big_center, IMG) > prominence(big_edge, IMG)
    assert prominence(big_center, IMG) > prominence(small_center, IMG)
