"""SMPL takes and the SMPL stand-in for tests (numpy only; the reference needs torch)."""
from __future__ import annotations

import numpy as np

from pose2pose_mocap.retarget.take import BODY_MODELS, Take

from tests.retarget.synthetic import random_rotvecs

_ROOT = None


def standin_smpl_root():
    """A folder with ``smpl/SMPL_{NEUTRAL,MALE,FEMALE}.npz`` (stand-ins), written once per
    process and removed at exit."""
    global _ROOT
    if _ROOT is None:
        import atexit
        import os
        import shutil
        import tempfile
        from pathlib import Path

        from pose2pose_mocap.weights.standins import write_smpl_standins

        # Beside the data folder tests/conftest.py makes: its session folder is removed even
        # where the bpy 4.2 exit skips atexit (conftest leaves with os._exit there).
        data = os.environ.get("P2P_MOCAP_DATA_DIR")
        parent = Path(data).parent if data and Path(data).parent.is_dir() else None
        _ROOT = Path(tempfile.mkdtemp(prefix="p2p-smpl-standin-", dir=parent))
        atexit.register(shutil.rmtree, _ROOT, True)
        write_smpl_standins(_ROOT)
    return _ROOT


def standin_smpl_path():
    return standin_smpl_root() / "smpl" / "SMPL_NEUTRAL.npz"


def smpl_params(T: int, seed: int = 0, max_angle: float = np.pi) -> dict:
    """Random poses of all 24 joints, one random body shape, translations 2-6 m ahead."""
    rng = np.random.default_rng(seed)
    return {
        "global_orient": random_rotvecs(rng, (T, 1), max_angle).reshape(T, 3),
        "body_pose": random_rotvecs(rng, (T, 23), max_angle).reshape(T, 69),
        "betas": np.repeat(rng.normal(scale=1.5, size=(1, 10)), T, axis=0),
        "transl": np.column_stack([rng.uniform(-1, 1, T), rng.uniform(-0.5, 0.5, T),
                                   rng.uniform(2, 6, T)]),
    }


def make_smpl_take(params: dict, *, fps: float = 30.0, frame_index=None, valid=None,
                   source: str = "", person_id: int = 0) -> Take:
    T = params["global_orient"].shape[0]
    return Take(
        fps=fps,
        frame_index=(np.arange(T, dtype=np.int64) if frame_index is None
                     else np.asarray(frame_index)),
        valid=np.ones(T, bool) if valid is None else np.asarray(valid, bool),
        params={k: np.asarray(params[k], dtype=np.float64) for k in BODY_MODELS["smpl"]},
        person_id=person_id, image_size=np.array([640, 480]),
        focal=np.array([600.0, 600.0]), princpt=np.array([330.0, 235.0]),
        source=source, model="standin.pth.tar sha256:0", standin=True, gender="neutral",
        estimator="i2l-meshnet", body_model="smpl")


def smpl_reference(params: dict, pose_correctives: bool = True, path=None):
    """Vertices and the 24 joints from the ``smplx`` package's ``SMPL`` (float64), given the
    verified arrays of the stand-in (smplx 0.1.28 opens only pickles by path)."""
    import contextlib
    import io

    import smplx
    import torch
    from smplx.utils import Struct

    from pose2pose_mocap.common.smpl_file import read_smpl_arrays

    path = path or standin_smpl_path()
    T = params["global_orient"].shape[0]
    with contextlib.redirect_stdout(io.StringIO()):
        body = smplx.SMPL(model_path=str(path), data_struct=Struct(**read_smpl_arrays(path)),
                          batch_size=T, dtype=torch.float64)
    if not pose_correctives:
        body.posedirs.zero_()
    with torch.no_grad():
        out = body(**{k: torch.as_tensor(np.asarray(v, dtype=np.float64))
                      for k, v in params.items()})
    return out.vertices.numpy(), out.joints.numpy()[:, :24]
