# SPDX-License-Identifier: GPL-3.0-or-later
"""The official Hand4Whole test-mode forward on the CPU, for side-by-side benches.

    from bench.official_forward import load_official
    net = load_official("/tmp/h4w", "/tmp/standins/smplx")   # an extracted checkout
    out = net(img)            # img (N, 3, 512, 384) in [0, 1] -> the official 'out' dict

``--official DIR`` is an extracted checkout of https://github.com/mks0601/Hand4Whole_RELEASE
(e.g. ``git -C MIRROR archive HEAD | tar -x -C DIR``); it is never part of this repo.
The official code cannot run here unchanged, so this is the smallest shim that lets
it, and every piece of it leaves the forward's arithmetic alone:

1. ``.cuda()`` is a no-op (``torch.Tensor.cuda`` and ``nn.Module.cuda`` patched
   while the model is built and run): the code calls it unconditionally and this
   machine has no GPU. Everything runs on the CPU, in fp32.
2. ``cfg.human_model_path`` points at a temporary folder holding the stand-in
   SMPL-X files (``p2p-mocap make-standins``; all three genders, as
   ``human_models.SMPLX`` loads them) and three files the forward never reads
   (``SMPLX_to_J14.pkl``, ``MANO_SMPLX_vertex_ids.pkl``,
   ``SMPL-X__FLAME_vertex_ids.npy``: evaluation-only; written as zeros/ranges
   so that the module imports).
3. ``utils.human_models`` is executed from its own source with one line
   changed: ``smpl = SMPL()`` becomes ``smpl = None``. The body-only SMPL model
   is not used by the whole-body network; building it would need SMPL model files.
4. ``config.py`` creates output folders under the checkout; that happens in DIR.
5. ``torchgeometry`` 0.1.2 (the official dependency; install it beside the
   checkout: ``pip install --no-deps --target DIR/pylib torchgeometry==0.1.2``)
   gets the change the official README asks for ("slightly change torchgeometry
   kernel code", I2L-MeshNet issue 6): ``(1 - mask)`` -> ``~mask`` on bool masks
   in ``rotation_matrix_to_quaternion``, which recent PyTorch refuses otherwise.

Weights: the stand-in rule (seed 1), ``module.``-free names, loaded like the
official demo does (``strict=False``; checked: only the SMPL-X layer's buffers,
which the checkpoint never holds, are missing).
``check_conformance`` compares the result with ``tests/data/network_seed1_b2.npz``
(the bench refuses to time a forward that does not reproduce it).
"""
from __future__ import annotations

import contextlib
import pickle
import shutil
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch
from torch import nn

REFERENCE = Path(__file__).resolve().parent.parent / "tests" / "data" / "network_seed1_b2.npz"
OUTPUT_KEYS = ("joint_img", "smplx_root_pose", "smplx_body_pose", "smplx_lhand_pose",
               "smplx_rhand_pose", "smplx_jaw_pose", "smplx_shape", "smplx_expr", "cam_trans",
               "lhand_bbox", "rhand_bbox", "face_bbox")


@contextlib.contextmanager
def _no_cuda():
    saved = torch.Tensor.cuda, nn.Module.cuda
    torch.Tensor.cuda = lambda self, *a, **k: self
    nn.Module.cuda = lambda self, *a, **k: self
    try:
        yield
    finally:
        torch.Tensor.cuda, nn.Module.cuda = saved


def _model_files(smplx_dir: Path, into: Path) -> Path:
    """human_model_files/ with the stand-in SMPL-X files and the unused auxiliary ones."""
    d = into / "human_model_files" / "smplx"
    d.mkdir(parents=True, exist_ok=True)
    for g in ("NEUTRAL", "MALE", "FEMALE"):
        src = smplx_dir / f"SMPLX_{g}.npz"
        shutil.copyfile(src if src.exists() else smplx_dir / "SMPLX_NEUTRAL.npz",
                        d / f"SMPLX_{g}.npz")
    with open(d / "SMPLX_to_J14.pkl", "wb") as fh:
        pickle.dump(np.zeros((14, 10475), np.float32), fh)
    with open(d / "MANO_SMPLX_vertex_ids.pkl", "wb") as fh:
        pickle.dump({"left_hand": np.arange(778), "right_hand": np.arange(778)}, fh)
    np.save(d / "SMPL-X__FLAME_vertex_ids.npy", np.arange(5023))
    return d.parent


def _patch_torchgeometry() -> None:
    """The official README's torchgeometry change: bool masks negated with ~, not 1 -."""
    try:
        import torchgeometry.core.conversions as conv
    except ImportError:
        raise SystemExit("the official code needs torchgeometry 0.1.2: pip install --no-deps "
                         "--target OFFICIAL_DIR/pylib torchgeometry==0.1.2") from None
    src = Path(conv.__file__).read_text()
    fixed = src
    for m in ("mask_d0_d1", "mask_d2", "mask_d0_nd1"):
        fixed = fixed.replace(f"(1 - {m})", f"(~{m})")
    if fixed != src:
        exec(compile(fixed, conv.__file__, "exec"), conv.__dict__)


class OfficialForward:
    """Callable: img (N,3,512,384) float in [0,1] -> the official test-mode output dict."""

    def __init__(self, model):
        self.model = model

    def __call__(self, img: torch.Tensor) -> dict:
        with _no_cuda(), torch.no_grad():
            return self.model({"img": img}, {}, {}, "test")


def load_official(official_dir, smplx_dir, seed: int = 1) -> OfficialForward:
    """Build the official model (test mode) with stand-in weights of ``seed``."""
    root = Path(official_dir).resolve()
    smplx_dir = Path(smplx_dir)
    smplx_dir = smplx_dir / "smplx" if (smplx_dir / "smplx").is_dir() else smplx_dir
    for sub in ("main", "common", "pylib"):
        if (root / sub).is_dir() and str(root / sub) not in sys.path:
            sys.path.insert(0, str(root / sub))
    _patch_torchgeometry()
    from config import cfg  # noqa: E402  (the official config module)

    tmp = Path(tempfile.mkdtemp(prefix="p2p-official-"))
    try:
        cfg.human_model_path = str(_model_files(smplx_dir, tmp))
        src = (root / "common" / "utils" / "human_models.py").read_text()
        if src.count("smpl = SMPL()") != 1:
            raise SystemExit("unexpected official human_models.py (no single 'smpl = SMPL()')")
        mod = types.ModuleType("utils.human_models")
        mod.__file__ = str(root / "common" / "utils" / "human_models.py")
        import utils  # the official common/utils package

        sys.modules["utils.human_models"] = mod
        utils.human_models = mod
        with contextlib.redirect_stdout(sys.stderr):
            exec(compile(src.replace("smpl = SMPL()", "smpl = None"), mod.__file__, "exec"),
                 mod.__dict__)
        with _no_cuda():
            from model import get_model  # the official main/model.py

            model = get_model("test")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    from pose2pose_mocap.weights.standin_rule import make_state_dict, official_keys_and_shapes

    sd = make_state_dict(official_keys_and_shapes(), seed)
    # (the official demo loads with strict=False: its SMPL-X layer's buffers are not saved)
    res = model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=False)
    if res.unexpected_keys or any(not k.startswith("smplx_layer.") for k in res.missing_keys):
        raise SystemExit(f"official model keys differ: {res}")
    return OfficialForward(model.eval())


def check_conformance(net: OfficialForward, tol: float = 3e-4) -> float:
    """Max |official - conformance data| over the 12 reference outputs (make_images(2, 1));
    raises SystemExit above ``tol``: a shim that changed the arithmetic must not be timed."""
    from pose2pose_mocap.weights.standin_rule import make_images

    ref = dict(np.load(REFERENCE))
    out = net(torch.from_numpy(make_images(2, 1)))
    worst = max(float(np.abs(out[k].numpy() - ref[k]).max() / (1e3 if "bbox" in k else 1))
                for k in OUTPUT_KEYS)
    if worst > tol:
        raise SystemExit(f"the official forward does not reproduce the conformance data "
                         f"(max difference {worst:.3g}); not timing it")
    return worst
