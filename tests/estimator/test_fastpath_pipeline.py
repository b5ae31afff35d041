"""The batched pipeline end to end on the CPU, against the classic path, and its parts."""
from __future__ import annotations

import numpy as np
import pytest

from pose2pose_mocap.estimator.fastpath.decode import DecodePool
from pose2pose_mocap.estimator.fastpath.runner import batched_batch_size
from pose2pose_mocap.estimator.options import EstimateOptions
from pose2pose_mocap.estimator.pipeline import EstimateError, EstimateJob
from pose2pose_mocap.estimator.sources import FramePrefetcher, SourceError, open_source

from .media import frame_number, write_images, write_video


def _arrays(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.slow
def test_batch_1_equals_the_classic_path_exactly(tmp_path, job_kwargs):
    """With the real (stand-in) network: every array of the take is bit-identical, with
    the crops cut by OpenCV or on the device (here the CPU)."""
    clip = write_video(tmp_path / "clip.avi", 4, "MJPG")
    classic = EstimateJob(clip, tmp_path / "classic.take.npz", frames="0:2", batch=1,
                          pipeline="classic", **job_kwargs).run()
    a = _arrays(classic.outputs[0])
    for device_crops in (False, True):
        job = EstimateJob(clip, tmp_path / f"batched{device_crops}.take.npz", frames="0:2",
                          batch=1, pipeline="batched", **job_kwargs)
        job.device_crops = device_crops
        b = _arrays(job.run().outputs[0])
        assert job.pipeline_used == "batched" and job.runner.device_crops is device_crops
        assert set(a) == set(b)
        for k in a:
            assert np.array_equal(a[k], b[k]), (device_crops, k)


def test_auto_is_classic_on_the_cpu(tmp_path, job_kwargs):
    clip = write_video(tmp_path / "clip.avi", 2, "MJPG")
    job = EstimateJob(clip, frames="0:1", **job_kwargs)
    for p in job.steps():
        if p.stage == "estimating":
            job.cancel()  # (the choice is made at loading; no need to run the network)
    assert job.pipeline == "auto" and job.pipeline_used == "classic"


def test_bad_pipeline_is_one_line(tmp_path, job_kwargs):
    with pytest.raises(EstimateError, match="--pipeline fast: use auto, classic, batched"):
        EstimateJob(tmp_path / "x.avi", pipeline="fast", **job_kwargs)


def test_pipeline_option():
    import argparse

    p = EstimateOptions.add_arguments(argparse.ArgumentParser())
    assert EstimateOptions.from_args(p.parse_args([])).pipeline == "auto"
    o = EstimateOptions.from_args(p.parse_args(["--pipeline", "batched"]))
    assert o.job_arguments()["pipeline"] == "batched"
    assert EstimateOptions.from_dict(o.to_dict()) == o
    from pose2pose_mocap.common.options import OptionError

    with pytest.raises(OptionError, match="pipeline"):
        EstimateOptions(pipeline="gpu")


def test_batch_size_from_free_memory():
    assert batched_batch_size("cpu", "fp32", 10**12) == 4
    # (CUDA numbers are arithmetic only: no GPU is needed to check them)
    import torch

    if torch.cuda.is_available():
        assert batched_batch_size("cuda", "bf16", 0) == 1
        assert batched_batch_size("cuda", "bf16", 2**40) == 256


@pytest.mark.parametrize("workers", [1, 3])
def test_decode_pool_in_order(tmp_path, workers):
    paths = write_images(tmp_path / "imgs", 9)
    src = open_source(tmp_path / "imgs", "1:9:2")
    pool = DecodePool(src, "cpu", 2, workers=workers)
    got = []
    while (f := pool.get()) is not None:
        assert f.on_device().shape == f.image.shape and f.tensor.dtype.is_floating_point is False
        assert np.array_equal(f.tensor.numpy(), f.image)
        got.append((f.index, frame_number(f.image)))
    pool.close()
    assert got == [(1, 1), (3, 3), (5, 5), (7, 7)]
    assert len(paths) == 9


def test_decode_pool_video_equals_the_prefetcher(tmp_path):
    clip = write_video(tmp_path / "clip.avi", 7, "MJPG")
    ref = FramePrefetcher(open_source(clip), 3)
    want = [(f.index, f.image.copy()) for f in ref]
    ref.close()
    pool = DecodePool(open_source(clip), "cpu", 3)
    got = []
    while (f := pool.get()) is not None:
        got.append((f.index, f.image))
    pool.close()
    assert [i for i, _ in got] == [i for i, _ in want] == list(range(7))
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, want))


def test_decode_pool_raises_a_bad_image_in_its_place(tmp_path):
    write_images(tmp_path / "imgs", 5)
    (tmp_path / "imgs" / "img2.png").write_bytes(b"not a png")
    src = open_source(tmp_path / "imgs")
    pool = DecodePool(src, "cpu", 4, workers=3)
    assert pool.get().index == 0 and pool.get().index == 1
    with pytest.raises(SourceError):
        pool.get()
    pool.close()
