"""Synthetic takes for tests (numpy only, so the Blender 4.2 venv can use them too)."""
from __future__ import annotations

import numpy as np

from pose2pose_mocap.retarget.take import (PARAM_COLUMNS, RAW_PREFIX, RAW_SHAPES, TAKE_FORMAT,
                                           TAKE_FORMAT_1, Take)


def random_rotvecs(rng, shape, max_angle=np.pi) -> np.ndarray:
    """Axis-angles with uniform random axes and angles in [0, max_angle]. -> shape + (3,)."""
    axis = rng.normal(size=tuple(shape) + (3,))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    return axis * rng.uniform(0.0, max_angle, size=tuple(shape) + (1,))


def random_params(T: int, seed: int = 0, max_angle: float = np.pi) -> dict:
    """Random poses of every joint (angles up to ``max_angle``), one random body shape,
    per-frame random expressions, translations 2-6 m in front of the camera."""
    rng = np.random.default_rng(seed)
    p = {
        "global_orient": random_rotvecs(rng, (T, 1), max_angle).reshape(T, 3),
        "body_pose": random_rotvecs(rng, (T, 21), max_angle).reshape(T, 63),
        "left_hand_pose": random_rotvecs(rng, (T, 15), max_angle).reshape(T, 45),
        "right_hand_pose": random_rotvecs(rng, (T, 15), max_angle).reshape(T, 45),
        "jaw_pose": random_rotvecs(rng, (T, 1), max_angle).reshape(T, 3),
        "leye_pose": random_rotvecs(rng, (T, 1), max_angle).reshape(T, 3),
        "reye_pose": random_rotvecs(rng, (T, 1), max_angle).reshape(T, 3),
        "betas": np.repeat(rng.normal(scale=1.5, size=(1, 10)), T, axis=0),
        "expression": rng.normal(scale=1.5, size=(T, 10)),
        "transl": np.column_stack([rng.uniform(-1, 1, T), rng.uniform(-0.5, 0.5, T),
                                   rng.uniform(2, 6, T)]),
    }
    return p


def make_take(params: dict, *, fps: float = 30.0, frame_index=None, valid=None,
              source: str = "", person_id: int = 0, standin: bool = True) -> Take:
    T = params["global_orient"].shape[0]
    return Take(
        fps=fps,
        frame_index=(np.arange(T, dtype=np.int64) if frame_index is None
                     else np.asarray(frame_index)),
        valid=np.ones(T, bool) if valid is None else np.asarray(valid, bool),
        params={k: np.asarray(params[k], dtype=np.float64) for k in PARAM_COLUMNS},
        person_id=person_id, image_size=np.array([640, 480]),
        focal=np.array([600.0, 600.0]), princpt=np.array([330.0, 235.0]),
        source=source, model="standin.pth.tar sha256:0", standin=standin, gender="neutral")


def take_arrays(T: int = 6, seed: int = 0, dtype=np.float32) -> dict:
    """A complete, valid ``p2p-take/2`` array set (what the estimator writes: the core and
    Pose2Pose's ``raw_`` arrays)."""
    arrays = take_arrays_v1(T, seed, dtype)
    arrays.update(format=TAKE_FORMAT, estimator="pose2pose", body_model="smplx")
    for k in RAW_SHAPES:
        arrays[RAW_PREFIX + k] = arrays.pop(k)
    return arrays


def take_arrays_v1(T: int = 6, seed: int = 0, dtype=np.float32) -> dict:
    """A complete, valid ``p2p-take/1`` array set (what the estimator wrote before
    format 2: no estimator or body_model, raw outputs under their own names)."""
    rng = np.random.default_rng(seed)
    p = random_params(T, seed, max_angle=1.0)
    arrays = {"format": TAKE_FORMAT_1, "fps": 30.0, "frame_index": np.arange(T) * 2 + 10,
              "valid": np.ones(T, bool), "person_id": 1, "image_size": np.array([640, 480]),
              "source": "clip.mp4", "model": "snapshot_6.pth.tar sha256:abc", "standin": False,
              "gender": "neutral", "focal": np.array([600.0, 600.0]),
              "princpt": np.array([319.5, 239.5])}
    arrays.update({k: v.astype(dtype) for k, v in p.items()})
    for k, shape in RAW_SHAPES.items():
        arrays[k] = rng.normal(size=(T,) + shape).astype(dtype)
    return arrays


_STANDIN_ROOT = None


def standin_smplx_root():
    """A folder with ``smplx/SMPLX_NEUTRAL.npz`` (the stand-in), written once per process.

    (The session fixture ``standin_root`` also writes the network checkpoint,
    which needs torch; the Blender 4.2 test venv has none.)
    """
    global _STANDIN_ROOT
    if _STANDIN_ROOT is None:
        import atexit
        import os
        import shutil
        import tempfile
        from pathlib import Path

        from pose2pose_mocap.weights.standins import smplx_standin_arrays, write_npz

        # In the session folder tests/conftest.py makes (beside its data folder): removed even
        # where the bpy 4.2 exit skips atexit (conftest leaves with os._exit there).
        data = os.environ.get("P2P_MOCAP_DATA_DIR")
        parent = Path(data).parent if data and Path(data).parent.is_dir() else None
        root = Path(tempfile.mkdtemp(prefix="p2p_smplx_standin_", dir=parent))
        atexit.register(shutil.rmtree, root, True)
        write_npz(root / "smplx" / "SMPLX_NEUTRAL.npz", smplx_standin_arrays("neutral"))
        _STANDIN_ROOT = root
    return _STANDIN_ROOT


def standin_smplx_path():
    return standin_smplx_root() / "smplx" / "SMPLX_NEUTRAL.npz"


def smplx_reference(root, params: dict, pose_correctives: bool = True):
    """Vertices and the first 55 joints from the ``smplx`` package (needs torch), float64."""
    import contextlib
    import io

    import smplx
    import torch

    T = params["global_orient"].shape[0]
    with contextlib.redirect_stdout(io.StringIO()):
        body = smplx.create(str(root), model_type="smplx", gender="neutral", use_pca=False,
                            flat_hand_mean=True, num_betas=10, num_expression_coeffs=10,
                            batch_size=T, dtype=torch.float64)
    if not pose_correctives:
        body.posedirs.zero_()
    with torch.no_grad():
        out = body(**{k: torch.as_tensor(np.asarray(v, dtype=np.float64))
                      for k, v in params.items()})
    return out.vertices.numpy(), out.joints.numpy()[:, :55]
