"""--precision auto, the CPU runner (BN folded, bf16 trunks, channels_last) and threads."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pose2pose_mocap.estimator.cpu_features import (CpuFeatures, auto_precision, cpu_features,
                                                    read_cpu_flags, resolve_precision)
from pose2pose_mocap.estimator.pose2pose.inference import (InferenceOptions, cpu_runner,
                                                           run_batch)

from .._p2p_support import REFERENCE_NPZ, images, standin_model, standin_outputs_b2
from ..test_network_conformance import FREE_RUNNING_HAND_POSE_TOL, TOL

pytestmark = pytest.mark.torch

ZEN4 = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 avx512vl\n"
SPR = "flags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"
OLD = "flags\t\t: fpu sse sse2 avx avx2 fma\n"
ARM = "Features\t: fp asimd evtstrm aes bf16 i8mm\n"


def test_cpu_flags_are_read_from_cpuinfo_text():
    assert read_cpu_flags(ZEN4) == ("avx512_bf16", "avx512f", "avx2")
    assert set(read_cpu_flags(SPR)) == {"amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2"}
    assert read_cpu_flags(OLD) == ("avx2",)
    assert read_cpu_flags("") == ()


@pytest.mark.parametrize("text, native, amx, picks", [
    (ZEN4, True, False, "bf16"), (SPR, True, True, "bf16"), (OLD, False, False, "fp32"),
    (ARM, False, False, "fp32")])
def test_auto_picks_bf16_only_where_it_is_native(text, native, amx, picks):
    feats = CpuFeatures(read_cpu_flags(text), "AVX2", 2)
    assert feats.native_bf16 is native and feats.amx is amx
    assert auto_precision("cpu", feats) == picks
    line = feats.describe()
    assert ("AMX" in line) is amx and f"auto picks {picks}" in line and "default is fp32" in line


def test_resolve_precision_and_the_options_resolve_auto():
    assert resolve_precision("fp16", "cpu") == "fp16"
    assert resolve_precision("auto", "cpu") == auto_precision("cpu")
    assert resolve_precision(None, "cpu") in ("fp32", "bf16")
    with pytest.raises(ValueError):
        resolve_precision("fp8", "cpu")
    opts = InferenceOptions(precision="auto")
    assert opts.precision == auto_precision("cpu", cpu_features())
    with pytest.raises(ValueError):
        InferenceOptions(threads=0)


def test_the_estimate_options_take_auto_and_keep_fp32_the_default():
    from pose2pose_mocap.estimator.options import EstimateOptions

    assert EstimateOptions().precision == "fp32"
    assert EstimateOptions(precision="auto").precision == "auto"


@pytest.fixture(scope="module")
def model():
    return standin_model(1)


def test_cpu_runner_fp32_matches_the_official_network(model):
    """BN folded into the convolutions: still within the conformance tolerances."""
    reference = dict(np.load(REFERENCE_NPZ))
    opts = InferenceOptions(precision="fp32", threads=2)
    runner = cpu_runner(model, opts)
    assert runner is not model and torch.get_num_threads() == 2
    out = run_batch(runner, images(2, 1), opts)
    for key, tol in TOL.items():
        if key in ("smplx_lhand_pose", "smplx_rhand_pose"):
            tol = FREE_RUNNING_HAND_POSE_TOL
        diff = np.abs(out[key].numpy() - reference[key]).max()
        assert diff <= tol, f"{key}: max difference {diff:.3g} > {tol}"


@pytest.mark.slow
def test_cpu_runner_bf16_runs_bf16_trunks_and_leaves_the_network_alone(model):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opts = InferenceOptions(precision="bf16")
    assert opts.nhwc  # channels_last where it was measured faster: CPU bf16
    runner = cpu_runner(model, opts)
    trunk = runner.backbone.inner
    assert trunk.conv1.weight.dtype == torch.bfloat16
    assert trunk.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in trunk.modules())
    assert runner.body_position_net is model.body_position_net  # heads shared, fp32
    out = run_batch(runner, images(2, 1), opts)
    fp32 = standin_outputs_b2()
    for key in TOL:
        assert out[key].dtype == torch.float32 and torch.isfinite(out[key]).all(), key
        # bf16 moves poses by ~0.02 rad here (bench/bf16_accuracy.py); a broken cast would not
        np.testing.assert_allclose(out[key].numpy(), fp32[key].numpy(), atol=0.1, rtol=0,
                                   err_msg=key)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) and after[k].dtype == before[k].dtype
               for k in before)
    assert model.backbone.conv1.weight.dtype == torch.float32


def test_cpu_runner_leaves_fp16_and_other_devices_to_autocast(model):
    assert cpu_runner(model, InferenceOptions(precision="fp16")) is model


def test_the_estimator_runs_the_cpu_runner_once_per_options(standin_net):
    from pose2pose_mocap.estimator.pose2pose.estimator import Pose2PoseEstimator

    est = Pose2PoseEstimator(standin_net, precision="auto")
    assert est.options.precision == auto_precision("cpu")
    first = est._runner()
    assert est._runner() is first and first is not standin_net
    assert first.smplx_layer is standin_net.smplx_layer
