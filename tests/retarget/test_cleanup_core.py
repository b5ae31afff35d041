"""Motion clean-up core: kinematics, ground, contacts, foot locking, One Euro (issue 14)."""
from __future__ import annotations

import numpy as np
import pytest

from bench.motion_truth import add_noise, make_truth, truth_skate
from pose2pose_mocap.retarget.cleanup.clean import CleanOptions
from pose2pose_mocap.retarget.cleanup.contacts import Contacts, find_contacts, runs
from pose2pose_mocap.retarget.cleanup.footlock import two_bone_ik, lock_feet, lock_weights
from pose2pose_mocap.retarget.cleanup.ground import estimate_ground, ground_problem
from pose2pose_mocap.retarget.cleanup.kinematics import (FOOT_POINTS, foot_vertex_ids,
                                                         motion_from_params, take_motion)
from pose2pose_mocap.retarget.cleanup.one_euro import one_euro, one_euro_zero_phase
from pose2pose_mocap.retarget.errors import RetargetError
from pose2pose_mocap.retarget.smoothing import Smoothing, smooth_take
from pose2pose_mocap.retarget.smplx_model import forward, load_smplx_model

from .synthetic import make_take, random_params, standin_smplx_path


@pytest.fixture(scope="module")
def model():
    return load_smplx_model(standin_smplx_path())


@pytest.fixture(scope="module")
def walk(model):
    return make_truth("walk", model, seconds=4.0)


def _truth_motion(truth, model):
    return motion_from_params(truth.params, np.ones(truth.num_frames, bool), truth.fps, model,
                              truth.betas)


def test_take_motion_matches_the_body_model(model):
    p = random_params(5, seed=3, max_angle=0.6)
    p["betas"][:] = p["betas"][0]
    p["expression"][:] = 0.0
    m = take_motion(make_take(p), model)
    out = forward(model, p, pose_correctives=False)
    assert m.joints.shape == (5, 22, 3) and m.rotations.shape == (5, 22, 3, 3)
    np.testing.assert_allclose(m.joints, out.joints[:, :22], atol=1e-9)   # the body joints
    for name, ids in foot_vertex_ids(model).items():
        np.testing.assert_allclose(m.foot_points[name], out.vertices[:, ids].mean(1), atol=1e-9)
    # global rotations: child joint = parent + R_parent (rest offset)
    knee, hip = 4, 1
    off = m.rest[knee] - m.rest[hip]
    np.testing.assert_allclose(m.joints[:, knee] - m.joints[:, hip],
                               np.einsum("tij,j->ti", m.rotations[:, hip], off), atol=1e-9)


def test_sole_points_are_heel_behind_toes_on_the_sole(model):
    ids = foot_vertex_ids(model)
    v = model.v_template
    lowest = v[:, 1].min()
    for side in ("left", "right"):
        heel, toes = v[ids[f"{side}_heel"]], v[ids[f"{side}_toes"]]
        assert heel[:, 2].mean() < toes[:, 2].mean() - 0.1   # model faces +Z
        assert heel[:, 1].max() < lowest + 0.02 and toes[:, 1].max() < lowest + 0.02
        assert np.sign(heel[:, 0].mean()) == (1 if side == "left" else -1)


def test_truth_feet_are_planted(model, walk):
    assert truth_skate(walk, model) < 1e-9
    m = _truth_motion(walk, model)
    h = np.stack([walk.height(m.foot_points[k]) for k in FOOT_POINTS], 1)
    assert h.min() > -1e-6
    planted = np.repeat(walk.contact, 2, axis=1)
    assert np.abs(h[planted]).max() < 0.01


def test_ground_from_the_feet(model, walk):
    g = estimate_ground(_truth_motion(walk, model))
    assert np.degrees(np.arccos(np.clip(g.normal @ walk.ground_normal, -1, 1))) < 0.5
    p = _truth_motion(walk, model).joints[:, 0]
    assert np.abs(g.height(p) - walk.height(p)).max() < 0.01
    noisy = smooth_take(add_noise(walk, seed=1).take, Smoothing())
    gn = estimate_ground(take_motion(noisy, model))
    assert np.degrees(np.arccos(np.clip(gn.normal @ walk.ground_normal, -1, 1))) < 2.0
    assert np.abs(gn.height(p) - walk.height(p)).mean() < 0.02


def test_no_ground_for_a_short_take(model, walk):
    m = _truth_motion(walk, model)
    short = type(m)(joints=m.joints[:4], rotations=m.rotations[:4],
                    foot_points={k: v[:4] for k, v in m.foot_points.items()},
                    valid=m.valid[:4], fps=m.fps, rest=m.rest)
    assert estimate_ground(short) is None
    assert "too few valid frames" in ground_problem(short)


def test_contacts_follow_the_truth(model, walk):
    m = _truth_motion(walk, model)
    c = find_contacts(m, estimate_ground(m), CleanOptions())
    est = np.stack([c.foot("left"), c.foot("right")], 1)
    tp = (est & walk.contact).sum()
    assert tp / walk.contact.sum() > 0.9
    assert tp / est.sum() > 0.85     # a lifting foot is low and slow for a frame or two


def test_contacts_have_hysteresis_and_a_minimum_length(model, walk):
    m = _truth_motion(walk, model)
    c = find_contacts(m, estimate_ground(m), CleanOptions(min_contact_frames=6))
    for i in range(c.contact.shape[1]):
        for a, b in runs(c.contact[:, i]):
            assert b - a >= 6


def test_lock_weights_ramp():
    mask = np.zeros(20, bool)
    mask[8:12] = True
    w = lock_weights(mask, 3)
    assert (w[8:12] == 1).all() and w[0] == 0 and w[-1] == 0
    assert 0 < w[6] < w[7] < 1 and 0 < w[13] < w[12] < 1
    np.testing.assert_array_equal(lock_weights(mask, 0), mask.astype(float))


def test_two_bone_ik_reaches_and_keeps_lengths():
    rng = np.random.default_rng(0)
    T = 50
    H = rng.normal(size=(T, 3))
    K = H + rng.normal(size=(T, 3))
    target = H + rng.normal(size=(T, 3)) * 0.3
    l1, l2 = 0.4, 0.38
    K2, A2, pole = two_bone_ik(H, K, target, l1, l2)
    np.testing.assert_allclose(np.linalg.norm(K2 - H, axis=1), l1, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(A2 - K2, axis=1), l2, atol=1e-9)
    reach = np.linalg.norm(target - H, axis=1) < (l1 + l2) * 0.999
    np.testing.assert_allclose(A2[reach], target[reach], atol=1e-9)
    # the knee stays in the plane of hip, target and the estimate's knee
    n = np.cross(target - H, K - H)
    assert np.abs(np.einsum("ti,ti->t", n, K2 - H)).max() < 1e-9


def test_lock_feet_stops_skate_with_true_contacts(model, walk):
    noisy = smooth_take(add_noise(walk, seed=2, faults=False).take, Smoothing())
    m = take_motion(noisy, model)
    g = estimate_ground(m)
    c = Contacts(g, FOOT_POINTS, np.repeat(walk.contact, 2, axis=1))
    params, w = lock_feet(noisy.params, m, c, model, blend_frames=3)
    locked = take_motion(noisy.with_params(params), model)

    def skate(motion):
        out = []
        for s, side in enumerate(("left", "right")):
            both = walk.contact[1:, s] & walk.contact[:-1, s]
            for part in ("heel", "toes"):
                d = np.linalg.norm(np.diff(motion.foot_points[f"{side}_{part}"], axis=0), axis=1)
                out.append(d[both])
        return np.concatenate(out).mean()

    assert skate(m) > 0.01                     # the noisy feet slide by centimetres
    assert skate(locked) < 1e-4
    feet = np.stack(list(locked.foot_points.values()), 1)
    assert g.height(feet).min() > -1e-3        # penetration fix (toe bend ignored: < 1 mm)
    assert (w[walk.contact[:, 0], 0] == 1).all()
    # only legs and root move
    for k in ("global_orient", "left_hand_pose", "jaw_pose", "expression", "betas"):
        np.testing.assert_array_equal(params[k], noisy.params[k])
    bp, bp0 = params["body_pose"].reshape(-1, 21, 3), noisy.params["body_pose"].reshape(-1, 21, 3)
    legs = [0, 1, 3, 4, 6, 7, 9, 10]           # hips, knees, ankles, feet (joint - 1)
    np.testing.assert_array_equal(np.delete(bp, legs, axis=1), np.delete(bp0, legs, axis=1))


def test_one_euro_is_an_exponential_smoother_without_beta():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 3))
    y = one_euro(x, 30.0, 2.0, 0.0)
    a = 1.0 / (1.0 + 30.0 / (2 * np.pi * 2.0))
    ref = np.empty_like(x)
    ref[0] = x[0]
    for t in range(1, 100):
        ref[t] = ref[t - 1] + a * (x[t] - ref[t - 1])
    np.testing.assert_allclose(y, ref, atol=1e-12)
    np.testing.assert_allclose(one_euro(np.ones((10, 2)), 30.0, 1.0, 1.0), 1.0)


def test_one_euro_beta_follows_fast_motion():
    t = np.arange(120) / 30.0
    x = np.where(t > 2.0, 1.0, 0.0)[:, None] * np.ones((1, 3))
    slow = one_euro(x, 30.0, 1.0, 0.0)
    fast = one_euro(x, 30.0, 1.0, 5.0)
    k = 66  # 0.2 s after the step
    assert abs(fast[k, 0] - 1) < abs(slow[k, 0] - 1) / 2
    ramp = np.linspace(0, 1, 90)[:, None]
    zp = one_euro_zero_phase(ramp, 30.0, 1.0, 0.0)
    assert np.abs(zp - ramp)[20:-20].max() < 0.01   # no lag in the middle


def _one_euro_reference(x, fs, min_cutoff, beta, d_cutoff=1.0):
    """The paper's filter, one sample and one quantity (x ``(T, g)``) at a time."""
    def alpha(c):
        return 1.0 / (1.0 + fs / (2 * np.pi * c))
    out = np.empty_like(x)
    out[0], dx = x[0], np.zeros(x.shape[1])
    for t in range(1, x.shape[0]):
        dx = dx + alpha(d_cutoff) * ((x[t] - out[t - 1]) * fs - dx)
        out[t] = out[t - 1] + alpha(min_cutoff + beta * np.linalg.norm(dx)) * (x[t] - out[t - 1])
    return out


def test_one_euro_runs_every_group_at_once_like_one_at_a_time():
    rng = np.random.default_rng(4)
    x = np.cumsum(rng.normal(size=(80, 12)), axis=0) * 0.1
    y = one_euro(x, 30.0, 1.5, 2.0, group=4)
    for g in range(3):
        np.testing.assert_allclose(y[:, 4 * g:4 * g + 4],
                                   _one_euro_reference(x[:, 4 * g:4 * g + 4], 30.0, 1.5, 2.0),
                                   atol=1e-12)
    zp = one_euro_zero_phase(x, 30.0, 1.5, 2.0, group=3)
    ref = 0.5 * (one_euro(x, 30.0, 1.5, 2.0, group=3)
                 + one_euro(x[::-1], 30.0, 1.5, 2.0, group=3)[::-1])
    np.testing.assert_allclose(zp, ref, atol=1e-12)


def test_one_euro_take_smoothing_in_one_pass_matches_each_parameter_alone():
    """smooth_params with One Euro filters all regions in one loop: the same numbers as
    filter_rotations / filter_series on each parameter (valid runs, short runs)."""
    from pose2pose_mocap.retarget.smoothing import (REGIONS, ROTATION_PARAMS, filter_rotations,
                                                    filter_series, smooth_params)

    T = 150
    p = random_params(T, seed=9, max_angle=2.5)
    p["transl"] = np.cumsum(np.random.default_rng(1).normal(size=(T, 3)) * 0.02, axis=0)
    valid = np.ones(T, bool)
    valid[[20, 21, 60]] = False
    valid[100:103] = False                      # a run of 3 rows (too short) in between
    valid[105:108] = False
    st = Smoothing(method="one_euro", root_hz=1.0, body_hz=2.0, hands_hz=4.0, face_hz=None,
                   one_euro_beta=0.7)
    got = smooth_params(p, valid, 30.0, st)
    for region, keys in REGIONS.items():
        hz = st.cutoff(region)
        for k in keys:
            a = np.asarray(p[k], float)
            if k in ROTATION_PARAMS:
                want = filter_rotations(a.reshape(T, -1, 3), 30.0, "one_euro", hz, valid,
                                        beta=0.7).reshape(a.shape)
            else:
                want = filter_series(a, 30.0, "one_euro", hz, valid, beta=0.7)
            np.testing.assert_allclose(got[k], want, atol=1e-10, err_msg=k)
    np.testing.assert_array_equal(got["betas"], p["betas"])
    np.testing.assert_array_equal(got["jaw_pose"], p["jaw_pose"])     # face left raw


def test_one_euro_smoothing_setting_round_trips():
    s = Smoothing(method="one_euro", one_euro_beta=0.7)
    assert Smoothing.from_dict(s.to_dict()) == s
    assert "one_euro_beta" not in Smoothing(method="butterworth").to_dict()  # older ones unchanged
    assert Smoothing() == Smoothing.from_dict({"method": "one_euro"})   # the bench's choice
    assert Smoothing(method="butterworth") == Smoothing("butterworth", 4.0, 6.0, 4.0, 4.0)
    with pytest.raises(RetargetError):
        Smoothing(method="one_euro", one_euro_beta=-1.0)
    with pytest.raises(RetargetError):
        Smoothing.from_dict({"method": "one_euro", "one_euro_beta": "x"})


def test_toes_only_contact_pivots_about_the_toes(model, walk):
    noisy = smooth_take(add_noise(walk, seed=4, faults=False).take, Smoothing())
    m = take_motion(noisy, model)
    g = estimate_ground(m)
    c = np.zeros((walk.num_frames, 4), bool)
    c[:, 1] = walk.contact[:, 0]               # left toes only
    params, _ = lock_feet(noisy.params, m, Contacts(g, FOOT_POINTS, c), model,
                          blend_frames=2, root_correction=False, penetration_fix=False)
    locked = take_motion(noisy.with_params(params), model)
    both = walk.contact[1:, 0] & walk.contact[:-1, 0]
    toes = np.linalg.norm(np.diff(locked.foot_points["left_toes"], axis=0), axis=1)[both]
    heel = np.linalg.norm(np.diff(locked.foot_points["left_heel"], axis=0), axis=1)[both]
    assert toes.mean() < 1e-4                  # the toes stay
    assert heel.mean() > 3 * toes.mean()       # the foot still turns as estimated


def test_a_straight_leg_bends_forwards():
    H = np.zeros((1, 3))
    K = np.array([[0.0, -0.4, 0.0]])               # straight: no pole to see
    target = np.array([[0.0, -0.6, 0.0]])          # closer: the knee must bend
    K2, A2, _ = two_bone_ik(H, K, target, 0.4, 0.38, forward=np.array([[0.0, 0.0, 1.0]]))
    assert K2[0, 2] > 0.1 and abs(K2[0, 0]) < 1e-9
    np.testing.assert_allclose(A2, target, atol=1e-9)



def test_a_contact_holding_two_plants_is_split():
    from pose2pose_mocap.retarget.cleanup.contacts import (MAX_DRIFT_M, MAX_TURN_DEG,
                                                           TURN_SCALE, _split_points)

    rng = np.random.default_rng(0)
    fwd = np.array([0.0, 0.0, 1.0]) * TURN_SCALE
    x = np.zeros((30, 6))
    x[:, 3:] = fwd
    x[15:, :3] = [0.15, 0.0, 0.0]               # the second plant: 15 cm away
    x[:, :3] += rng.normal(scale=0.01, size=(30, 3))
    cos = np.cos(np.radians(MAX_TURN_DEG))
    assert _split_points(x, 4, MAX_DRIFT_M, cos) in ([14], [15])
    x[15:, :3] = 0.0                            # one plant, only noise: no split
    x[:, :3] += rng.normal(scale=0.01, size=(30, 3))
    assert _split_points(x, 4, MAX_DRIFT_M, cos) == []
    turned = x.copy()                           # same place, the foot turned 40 deg
    a = np.radians(40)
    turned[15:, 3:] = np.array([np.sin(a), 0.0, np.cos(a)]) * TURN_SCALE
    assert _split_points(turned, 4, MAX_DRIFT_M, cos) in ([14], [15])
