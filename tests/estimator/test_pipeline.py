"""EstimateJob end to end with the stand-in network (a handful of frames each)."""
from __future__ import annotations

import numpy as np
import pytest

from pose2pose_mocap.estimator.detector import Detection
from pose2pose_mocap.estimator.pipeline import (EstimateError, EstimateJob, Progress,
                                                numbered_take_names)
from pose2pose_mocap.retarget.take import (RAW_PREFIX, TAKE_KEYS, read_take,
                                           validate_take_arrays)

from .media import write_images, write_video

EXPECTED = {  # key: (shape after T, dtype kind)
    "global_orient": ((3,), "f"), "body_pose": ((63,), "f"), "left_hand_pose": ((45,), "f"),
    "right_hand_pose": ((45,), "f"), "jaw_pose": ((3,), "f"), "leye_pose": ((3,), "f"),
    "reye_pose": ((3,), "f"), "betas": ((10,), "f"), "expression": ((10,), "f"),
    "transl": ((3,), "f"), "raw_cam_trans": ((3,), "f"), "raw_bbox_xywh": ((4,), "f"),
    "raw_lhand_bbox": ((4,), "f"), "raw_rhand_bbox": ((4,), "f"), "raw_face_bbox": ((4,), "f"),
    "raw_joints_2d": ((65, 3), "f"), "raw_score": ((), "f"),
}


class FixedBoxes:
    """A detector that 'sees' the same people in every frame (xyxy boxes)."""

    standin = False

    def __init__(self, *boxes):
        self.boxes = [np.asarray(b, float) for b in boxes]
        self.calls = 0

    def __call__(self, images):
        self.calls += 1
        return [[Detection(b, 0.9) for b in self.boxes] for _ in images]


@pytest.mark.slow
def test_video_take_keys_shapes_dtypes(tmp_path, job_kwargs):
    clip = write_video(tmp_path / "clip.mp4", 12, "mp4v", fps=25)
    job = EstimateJob(clip, frames="0:4", batch=2, **job_kwargs)
    stages = [p.stage for p in job.steps()]
    assert stages[0] == "loading" and stages[-1] == "done" and "estimating" in stages
    res = job.result
    assert res.outputs == [tmp_path / "clip.take.npz"] and not res.cancelled
    with np.load(res.outputs[0], allow_pickle=False) as z:
        a = {k: z[k] for k in z.files}
    assert set(a) == set(TAKE_KEYS) | {k for k in EXPECTED if k.startswith(RAW_PREFIX)}
    assert str(a["estimator"]) == "pose2pose" and str(a["body_model"]) == "smplx"
    assert validate_take_arrays(a) == []
    T = 4
    for k, (shape, kind) in EXPECTED.items():
        assert a[k].shape == (T,) + shape and a[k].dtype.kind == kind, k
    assert str(a["format"]) == "p2p-take/2"
    assert a["fps"].dtype.kind == "f" and float(a["fps"]) == pytest.approx(25)
    assert a["frame_index"].tolist() == [0, 1, 2, 3] and a["frame_index"].dtype.kind == "i"
    assert a["valid"].dtype == bool and a["valid"].all()
    assert a["person_id"].dtype.kind == "i" and int(a["person_id"]) == 1
    assert a["image_size"].tolist() == [320, 240]
    assert str(a["source"]) == str(clip.resolve())
    assert str(a["model"]).startswith("standin.pth.tar sha256:")
    assert bool(a["standin"]) and str(a["gender"]) == "neutral"
    assert a["focal"].shape == (2,) and a["princpt"].tolist() == [159.5, 119.5]
    assert np.isfinite(a["transl"]).all() and (a["transl"][:, 2] > 0).all()
    # whole frame as the person box (no detector): process_bbox of (0, 0, 320, 240)
    assert a["raw_bbox_xywh"][0] == pytest.approx([-40.0, -146.5, 398.75, 531.67], abs=1.0)
    take = read_take(res.outputs[0])
    assert take.num_frames == 4


def test_frame_range_stride_and_fps(tmp_path, job_kwargs):
    clip = write_video(tmp_path / "clip.avi", 20, "MJPG", fps=30)
    job = EstimateJob(clip, frames="2:12:4", batch=3, **job_kwargs)
    res = job.run()
    take = read_take(res.outputs[0])
    assert take.frame_index.tolist() == [2, 6, 10]
    assert take.fps == pytest.approx(7.5)


@pytest.mark.slow
def test_single_image_and_folder(tmp_path, job_kwargs):
    (img,) = write_images(tmp_path / "one", 1)
    res = EstimateJob(img, **job_kwargs).run()
    t = read_take(res.outputs[0])
    assert t.num_frames == 1 and t.fps == 30 and res.outputs[0].name == "img0.take.npz"
    write_images(tmp_path / "seq", 11, pattern="f{}.jpg")
    res = EstimateJob(tmp_path / "seq", frames="8:", fps=12, **job_kwargs).run()
    t = read_take(res.outputs[0])
    assert res.outputs[0] == tmp_path / "seq.take.npz"
    assert t.frame_index.tolist() == [8, 9, 10] and t.fps == 12


def test_never_overwrites_default_name(tmp_path, job_kwargs):
    (img,) = write_images(tmp_path, 1)
    first = EstimateJob(img, **job_kwargs).run().outputs[0]
    second = EstimateJob(img, **job_kwargs).run().outputs[0]
    assert (first.name, second.name) == ("img0.take.npz", "img0-2.take.npz")
    gen = numbered_take_names("a.take.npz")
    assert [next(gen) for _ in range(3)] == ["a.take.npz", "a-2.take.npz", "a-3.take.npz"]


def test_explicit_output_refused_unless_force(tmp_path, job_kwargs):
    (img,) = write_images(tmp_path, 1)
    out = tmp_path / "mine.take.npz"
    out.write_bytes(b"precious")
    with pytest.raises(EstimateError, match="exists; not overwriting"):
        EstimateJob(img, out, **job_kwargs).run()
    assert out.read_bytes() == b"precious"
    res = EstimateJob(img, out, force=True, **job_kwargs).run()
    assert res.outputs == [out] and read_take(out).num_frames == 1
    with pytest.raises(EstimateError, match="must end in .npz"):
        EstimateJob(img, tmp_path / "x.txt", **job_kwargs).run()
    folder = tmp_path / "outdir"
    folder.mkdir()
    assert EstimateJob(img, folder, **job_kwargs).run().outputs == [folder / "img0.take.npz"]


def test_cancel_writes_valid_partial_take(tmp_path, job_kwargs):
    clip = write_video(tmp_path / "clip.avi", 12, "MJPG")
    job = EstimateJob(clip, batch=1, **job_kwargs)
    seen = []
    for p in job.steps():
        assert isinstance(p, Progress)
        seen.append(p)
        if p.stage == "estimating" and p.done == 2:
            job.cancel()
    res = job.result
    assert res.cancelled and res.frames_done == 2 and res.frames_total == 12
    assert seen[-1].stage == "cancelled"
    take = read_take(res.outputs[0])
    assert take.frame_index.tolist() == [0, 1] and take.valid.all()
    est = [p for p in seen if p.stage == "estimating" and p.done]
    assert est[0].total == 12 and est[0].fps > 0 and est[0].eta_s > 0


def test_cancel_before_any_frame_writes_nothing(tmp_path, job_kwargs):
    clip = write_video(tmp_path / "clip.avi", 5, "MJPG")
    job = EstimateJob(clip, **job_kwargs)
    for p in job.steps():
        if p.stage == "loading":
            job.cancel()
    assert job.result.cancelled and job.result.outputs == []
    assert not list(tmp_path.glob("*.npz"))


@pytest.mark.slow
def test_person_all_with_two_people(tmp_path, job_kwargs):
    clip = write_video(tmp_path / "duo.avi", 6, "MJPG")
    det = FixedBoxes([180, 40, 300, 230], [10, 30, 120, 235])  # right one listed first
    kw = dict(job_kwargs, detector=det)
    res = EstimateJob(clip, frames=":2", person="all", batch=4, **kw).run()
    assert res.people == [1, 2]
    assert [p.name for p in res.outputs] == ["duo.person1.take.npz", "duo.person2.take.npz"]
    t1, t2 = (read_take(p) for p in res.outputs)
    assert (t1.person_id, t2.person_id) == (1, 2)
    # person 1 is the left one (numbered left to right)
    assert t1.raw["bbox_xywh"][0][0] < t2.raw["bbox_xywh"][0][0]
    # default person: the largest, most central one only
    res = EstimateJob(clip, frames=":2", **kw).run()
    assert res.people == [2] and res.outputs[0].name == "duo.take.npz"
    # a chosen person
    res = EstimateJob(clip, frames=":1", person=1, **kw).run()
    assert res.people == [1] and read_take(res.outputs[0]).person_id == 1
    with pytest.raises(EstimateError, match=r"person 7 was not found \(people found: 1, 2\)"):
        EstimateJob(clip, frames=":1", person=7, **kw).run()


def test_user_box_and_frames_without_people(tmp_path, job_kwargs):
    clip = write_video(tmp_path / "clip.avi", 4, "MJPG")
    det = FixedBoxes()  # nobody, ever
    res = EstimateJob(clip, box="100,50,80,160", **dict(job_kwargs, detector=det)).run()
    t = read_take(res.outputs[0])
    assert t.valid.all()  # the box starts the track, then it is followed
    assert t.raw["bbox_xywh"][0][3] == pytest.approx((160 - 1) * 1.25)  # sanitize: -1 px


def test_no_person_in_any_frame(tmp_path, job_kwargs):
    clip = write_video(tmp_path / "empty.avi", 3, "MJPG")
    job = EstimateJob(clip, **dict(job_kwargs, detector=FixedBoxes()))
    with pytest.raises(EstimateError, match="no person found in any of the 3 frames"):
        job.run()
    assert not list(tmp_path.glob("*.npz"))


def test_frames_without_person_are_invalid(tmp_path, job_kwargs):
    clip = write_video(tmp_path / "clip.avi", 4, "MJPG")

    class LateDetector(FixedBoxes):
        def __call__(self, images):
            self.calls += 1
            return [[] if self.calls <= 2 else [Detection(np.array([60., 20, 200, 230]), 0.9)]]

    res = EstimateJob(clip, batch=1, **dict(job_kwargs, detector=LateDetector())).run()
    t = read_take(res.outputs[0])
    assert t.valid.tolist() == [False, False, True, True]
    assert t.frame_index.tolist() == [0, 1, 2, 3]


@pytest.mark.slow
def test_standin_detector_end_to_end(tmp_path, job_kwargs, detector_standin_root):
    clip = write_video(tmp_path / "clip.avi", 4, "MJPG")
    kw = dict(job_kwargs, detector=str(detector_standin_root), model_standin=False)
    res = EstimateJob(clip, frames=":2", **kw).run()
    assert res.standin  # the stand-in detector marks the take too
    t = read_take(res.outputs[0])
    assert t.standin and t.valid.any()


@pytest.mark.parametrize("kwargs,fragment", [
    (dict(person="0"), "numbered from 1"), (dict(person="x"), "person number"),
    (dict(batch=0), "--batch"), (dict(fov=200), "--fov"), (dict(box="1,2,3"), "X,Y,W,H"),
    (dict(fps=-1), "--fps"), (dict(frames="9:"), "outside the clip"),
])
def test_bad_options(tmp_path, job_kwargs, kwargs, fragment):
    clip = write_video(tmp_path / "clip.avi", 3, "MJPG")
    with pytest.raises(EstimateError, match=fragment):
        EstimateJob(clip, **dict(job_kwargs, **kwargs)).run()
    assert not list(tmp_path.glob("*.npz"))


class BlockNet:
    """A fake network: finds the bright block in each crop and returns 'joints' on it.

    Lets the tests see the crop follow a moving figure through the real pipeline
    (the stand-in network's joints are random). Outputs use the real units: joints in
    the 8x6 body-heatmap grid, boxes in 384x512 crop pixels.
    """

    def __init__(self, smplx_layer):
        import torch

        self.smplx_layer = smplx_layer
        self._p = torch.nn.Parameter(torch.zeros(1))

    # the bits of nn.Module the pipeline and prepare_model use
    def parameters(self):
        return iter([self._p])

    def eval(self):
        return self

    def to(self, *a, **k):
        return self

    def __call__(self, x, boxes=None):
        import torch

        n = x.shape[0]
        joints = np.zeros((n, 65, 3), np.float32)
        for i in range(n):
            ys, xs = np.nonzero(x[i, 0].numpy() > 0.6)
            if len(xs) < 20:  # nothing: flat heatmaps -> joints at the centre
                joints[i, :, 0], joints[i, :, 1] = 2.5, 3.5
                continue
            gx = np.linspace(xs.min(), xs.max(), 5) / 64.0
            gy = np.linspace(ys.min(), ys.max(), 5) / 64.0
            body = np.array([(a, b) for b in gy for a in gx])
            joints[i, :25, :2] = body
            joints[i, 25:, :2] = body.mean(axis=0)
        z = lambda *s: torch.zeros(n, *s)  # noqa: E731
        box = torch.tensor([[100.0, 100, 150, 150]]).repeat(n, 1)
        j = torch.from_numpy(joints)
        return {"joint_img": j, "smplx_joint_proj": torch.cat([j[:, :, :2], z(72, 2)], 1),
                "smplx_mesh_cam": z(10475, 3), "smplx_root_pose": z(3), "smplx_body_pose": z(63),
                "smplx_lhand_pose": z(45), "smplx_rhand_pose": z(45), "smplx_jaw_pose": z(3),
                "smplx_shape": z(10), "smplx_expr": z(10),
                "cam_trans": torch.tensor([[0.0, 0.0, 30.0]]).repeat(n, 1),
                "lhand_bbox": box, "rhand_bbox": box, "face_bbox": box}


def _block_video(path, n, step):
    import cv2

    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (320, 240))
    for i in range(n):
        img = np.full((240, 320, 3), 20, np.uint8)
        x = 20 + step * i
        img[50:210, x:x + 50] = 230
        wr.write(img)
    wr.release()
    return path


@pytest.mark.parametrize("batch", [1, 4])
def test_crop_follows_moving_figure(tmp_path, standin_net, batch):
    """Through the real pipeline: the box comes from the previous output's joints."""
    clip = _block_video(tmp_path / "walk.avi", 24, 8)
    det = FixedBoxes([15, 45, 75, 215])  # found once in the first frame
    job = EstimateJob(clip, batch=batch, detect_every=0, model=BlockNet(standin_net.smplx_layer),
                      model_name="blocknet", detector=det, device="cpu")
    res = job.run()
    assert res.people == [1] and det.calls == 1  # confident all along: no re-detection
    t = read_take(res.outputs[0])
    assert t.valid.all() and (t.raw["score"] > 0.5).all()
    centre = t.raw["bbox_xywh"][:, 0] + t.raw["bbox_xywh"][:, 2] / 2
    block = 20 + 8 * np.arange(24) + 25
    err = np.abs(centre - block)
    # Right after the detection the velocity is unknown: the crops of the first batch
    # lag by up to (batch) frames x 8 px; the 1.25x crop margin keeps the block inside.
    assert (err[:batch + 1] <= 8 * batch + 1.5).all(), err
    # then the velocity learnt from the outputs predicts the crops of the next batch
    assert (err[2 * batch + 1:] < 6).all(), err
    # joints_2d land on the block in image pixels
    jx = t.raw["joints_2d"][:, :25, 0]
    assert (jx.min(axis=1) >= block - 27).all() and (jx.max(axis=1) <= block + 27).all()
