"""Fixtures of the estimation-pipeline tests: stand-in network (loaded once), stand-in detector."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def standin_checkpoint(standin_root):
    return standin_root / "pose2pose" / "standin.pth.tar"


@pytest.fixture(scope="session")
def standin_net(standin_root, standin_checkpoint):
    """Pose2Pose with stand-in weights and the stand-in SMPL-X layer, eval mode, CPU."""
    import torch

    from pose2pose_mocap.estimator.pose2pose.checkpoint import load_checkpoint

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    return load_checkpoint(standin_checkpoint, smplx_model_path=standin_root, device="cpu")


@pytest.fixture
def job_kwargs(standin_net):
    """EstimateJob arguments that reuse the loaded stand-in network."""
    return dict(model=standin_net, model_name="standin.pth.tar sha256:test", model_standin=True,
                device="cpu", detector="none")


@pytest.fixture(scope="session")
def detector_standin_root(tmp_path_factory):
    from pose2pose_mocap.estimator.detector import write_detector_standin

    root = tmp_path_factory.mktemp("detector_standin")
    write_detector_standin(root)
    return root
