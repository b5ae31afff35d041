# SPDX-License-Identifier: GPL-3.0-or-later
"""SMPL-X and SMPL kinematics in numpy: a torch-free port of ``smplx/lbs.py``.

What ``smplx.SMPLX(use_pca=False, flat_hand_mean=True)`` computes, split into
small functions so the rig maths can be tested without Blender or torch:

    v_shaped  = v_template + shapedirs @ betas + exprdirs @ expression
    J         = J_regressor @ v_shaped                       rest joints
    R         = rodrigues(full_pose)                         (55, 3, 3) local
    v_posed   = v_shaped + posedirs @ vec(R[1:] - I)         pose correctives
    G         = chain of [R_i | J_i - J_parent]              global transforms
    A_i       = G_i @ [I | -J_i]                             skinning transforms
    v         = sum_i w_i A_i v_posed + transl               linear blend skinning

Shapes use V = 10475 vertices, J = 55 joints, T = frames. Arrays are float64.

The same arithmetic is ``smplx.SMPL`` for the SMPL body (V = 6890, J = 24,
207 pose-corrective features, no expression): a loaded model carries its
``BodyKind`` (``SMPLX_KIND`` or ``SMPL_KIND``: joint names, kinematic tree,
where each take parameter lands), and every function below reads the sizes
from the model or the kind. ``BodyModel`` is the model of either.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ModelFileError
from .rotations import axis_angle_to_matrix

NUM_JOINTS = 55
NUM_BETAS = 10
NUM_EXPRESSION = 10
NUM_POSE_FEATURES = (NUM_JOINTS - 1) * 9  # 486
SHAPE_SPACE_DIM = 300  # where expressions start in a full SMPL-X shapedirs (400 components)

# smplx.joint_names.JOINT_NAMES[:55] (copied: the smplx package imports torch).
JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "jaw", "left_eye_smplhf", "right_eye_smplhf",
    "left_index1", "left_index2", "left_index3", "left_middle1", "left_middle2", "left_middle3",
    "left_pinky1", "left_pinky2", "left_pinky3", "left_ring1", "left_ring2", "left_ring3",
    "left_thumb1", "left_thumb2", "left_thumb3",
    "right_index1", "right_index2", "right_index3", "right_middle1", "right_middle2",
    "right_middle3", "right_pinky1", "right_pinky2", "right_pinky3", "right_ring1",
    "right_ring2", "right_ring3", "right_thumb1", "right_thumb2", "right_thumb3",
)
# The SMPL-X kinematic tree (kintree_table[0] of the official files, root = -1).
PARENTS = np.array([
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15,
    20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38,
    21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53,
])
# Where each parameter of a take lands in the 55 joints (smplx's full_pose order).
POSE_SLICES = {
    "global_orient": slice(0, 1), "body_pose": slice(1, 22), "jaw_pose": slice(22, 23),
    "leye_pose": slice(23, 24), "reye_pose": slice(24, 25),
    "left_hand_pose": slice(25, 40), "right_hand_pose": slice(40, 55),
}

# SMPL (``smplx.SMPL``, the smplx package's SMPL joint list): the first 22 SMPL-X joints,
# then the two hand joints (SMPL-X puts jaw and eyes there and the fingers after).
SMPL_JOINT_NAMES = JOINT_NAMES[:22] + ("left_hand", "right_hand")
SMPL_PARENTS = np.array([-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17,
                         18, 19, 20, 21])
SMPL_POSE_SLICES = {"global_orient": slice(0, 1), "body_pose": slice(1, 24)}


@dataclass(frozen=True, eq=False)
class BodyKind:
    """What differs between the body models a take can use (``Take.body_model``)."""

    name: str                 # take's body_model: "smplx" or "smpl"
    label: str                # for people and object names: "SMPL-X", "SMPL"
    joint_names: tuple        # (J,) bone names
    parents: np.ndarray       # (J,) kinematic tree, root -1
    pose_slices: dict         # take parameter -> joints it fills in full_pose
    num_expression: int       # expression coefficients (0 for SMPL)

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def num_pose_features(self) -> int:
        return (self.num_joints - 1) * 9


SMPLX_KIND = BodyKind("smplx", "SMPL-X", JOINT_NAMES, PARENTS, POSE_SLICES, NUM_EXPRESSION)
SMPL_KIND = BodyKind("smpl", "SMPL", SMPL_JOINT_NAMES, SMPL_PARENTS, SMPL_POSE_SLICES, 0)
BODY_KINDS = {k.name: k for k in (SMPLX_KIND, SMPL_KIND)}


def body_kind(name: str) -> BodyKind:
    """The ``BodyKind`` of a take's ``body_model`` (RetargetError for another name)."""
    try:
        return BODY_KINDS[str(name)]
    except KeyError:
        from .errors import RetargetError

        raise RetargetError(f"unknown body model {name!r} (expected one of "
                            f"{', '.join(BODY_KINDS)})") from None


@dataclass(frozen=True, eq=False)
class SmplxModel:
    """The arrays of one SMPL-X (or SMPL: ``kind``) model file that the body model needs."""

    path: Path
    gender: str
    standin: bool
    v_template: np.ndarray   # (V, 3)
    faces: np.ndarray        # (F, 3) int
    shapedirs: np.ndarray    # (V, 3, 10) body shape (betas)
    exprdirs: np.ndarray     # (V, 3, 10) expression
    posedirs: np.ndarray     # (V, 3, 486) pose correctives, file layout
    J_regressor: np.ndarray  # (J, V)
    parents: np.ndarray      # (J,) int, parents[0] == -1
    lbs_weights: np.ndarray  # (V, J)
    kind: BodyKind = SMPLX_KIND

    @property
    def num_verts(self) -> int:
        return self.v_template.shape[0]

    @property
    def joint_names(self) -> tuple:
        return self.kind.joint_names


BodyModel = SmplxModel  # the model of either body (SMPL-X or SMPL)


def _gender_from_name(path: Path) -> str:
    stem = path.stem.upper()
    for g in ("NEUTRAL", "MALE", "FEMALE"):
        if stem.endswith("_" + g):
            return g.lower()
    return "neutral"


_KEPT: dict | None = None   # (loader, path, size, mtime) -> model, while keep_models() is on


def keep_models(on: bool = True) -> None:
    """Keep the models read by :func:`load_smplx_model` / :func:`load_smpl_model` in this process
    (by path, size and modification time; their arrays read-only): for long-lived processes
    that convert one take after another (the batch's Blender processes); reading the file
    again costs ~1-2 s each time."""
    global _KEPT
    _KEPT = {} if on else None


def _kept(load):
    @functools.wraps(load)
    def loader(path) -> SmplxModel:
        if _KEPT is None:
            return load(path)
        try:
            st = Path(path).stat()
            key = (load.__name__, str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
        except OSError:
            return load(path)
        if key not in _KEPT:
            model = load(path)
            for value in vars(model).values():
                if isinstance(value, np.ndarray):
                    value.setflags(write=False)   # shared by the next takes: nobody writes
            if len(_KEPT) >= 4:
                _KEPT.clear()
            _KEPT[key] = model
        return _KEPT[key]
    return loader


@_kept
def load_smplx_model(path) -> SmplxModel:
    """Read an SMPL-X ``.npz`` (official v1.1 layout or a stand-in) without pickle.

    Expressions are shapedirs[:, :, 300:310] for a full file (400 components)
    and [:, :, 10:20] for a 20-component file, as ``smplx.SMPLX`` does.
    Raises ModelFileError with one line naming the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"SMPL-X model file {path} does not exist")
    # The project's one verified reader: headers first (pickled or unknown arrays are
    # refused by content, nothing is unpickled), then data with allow_pickle=False only.
    from ..common.npz import npz_members
    from ..common.smplx_file import SmplxFileError, read_smplx_arrays

    need = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "kintree_table",
            "weights")
    try:
        names = set(npz_members(path, error=SmplxFileError))
        missing = sorted(set(need) - names)
        if missing:
            raise ModelFileError(f"{path.name} is not an SMPL-X model file "
                                 f"(missing arrays: {', '.join(missing)})")
        arrays = read_smplx_arrays(path, need)
    except SmplxFileError as exc:
        raise ModelFileError(str(exc)) from None
    standin = "standin" in names
    v_template = arrays["v_template"].astype(np.float64)
    n_verts = v_template.shape[0]
    shapedirs = arrays["shapedirs"].astype(np.float64)
    if shapedirs.ndim != 3 or shapedirs.shape[:2] != (n_verts, 3) or shapedirs.shape[2] < 20:
        raise ModelFileError(f"{path.name}: shapedirs has shape {shapedirs.shape}, "
                             f"expected ({n_verts}, 3, >=20)")
    e0 = SHAPE_SPACE_DIM if shapedirs.shape[2] >= SHAPE_SPACE_DIM + NUM_EXPRESSION else NUM_BETAS
    posedirs = arrays["posedirs"].astype(np.float64)
    if posedirs.shape != (n_verts, 3, NUM_POSE_FEATURES):
        raise ModelFileError(f"{path.name}: posedirs has shape {posedirs.shape}, "
                             f"expected ({n_verts}, 3, {NUM_POSE_FEATURES})")
    parents = arrays["kintree_table"][0].astype(np.int64)
    parents[0] = -1
    if parents.shape != (NUM_JOINTS,):
        raise ModelFileError(f"{path.name}: kintree_table has {parents.shape[0]} joints, "
                             f"expected {NUM_JOINTS}")
    J_regressor = arrays["J_regressor"]
    if hasattr(J_regressor, "toarray"):  # never for npz, kept for safety
        J_regressor = J_regressor.toarray()
    return SmplxModel(
        path=path, gender=_gender_from_name(path), standin=standin,
        v_template=v_template, faces=arrays["f"].astype(np.int64),
        shapedirs=np.ascontiguousarray(shapedirs[:, :, :NUM_BETAS]),
        exprdirs=np.ascontiguousarray(shapedirs[:, :, e0:e0 + NUM_EXPRESSION]),
        posedirs=posedirs, J_regressor=np.asarray(J_regressor, dtype=np.float64),
        parents=parents, lbs_weights=arrays["weights"].astype(np.float64))


@_kept
def load_smpl_model(path) -> SmplxModel:
    """Read an SMPL ``.npz`` (the official arrays, converted from the ``.pkl``, or a
    stand-in) without pickle, through ``common.smpl_file`` (headers first).

    ``exprdirs`` is empty ``(V, 3, 0)``: SMPL has no expression. Raises
    ModelFileError with one line.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"SMPL model file {path} does not exist")
    from ..common.smpl_file import SmplFileError, read_smpl_arrays, smpl_members

    try:
        names = set(smpl_members(path))
        arrays = read_smpl_arrays(path)
    except SmplFileError as exc:
        raise ModelFileError(str(exc)) from None
    parents = arrays["kintree_table"][0].astype(np.int64)
    parents[0] = -1
    if not np.array_equal(parents, SMPL_PARENTS):
        raise ModelFileError(f"{path.name}: kintree_table is not the SMPL kinematic tree")
    v_template = arrays["v_template"].astype(np.float64)
    shapedirs = arrays["shapedirs"].astype(np.float64)
    return SmplxModel(
        path=path, gender=_gender_from_name(path), standin="standin" in names,
        v_template=v_template, faces=arrays["f"].astype(np.int64),
        shapedirs=np.ascontiguousarray(shapedirs[:, :, :NUM_BETAS]),
        exprdirs=np.zeros((v_template.shape[0], 3, 0)),
        posedirs=arrays["posedirs"].astype(np.float64),
        J_regressor=np.asarray(arrays["J_regressor"], dtype=np.float64),
        parents=parents, lbs_weights=arrays["weights"].astype(np.float64), kind=SMPL_KIND)


def load_body_model(path, body_model: str = "smplx") -> SmplxModel:
    """The model file ``path`` read as ``body_model`` (a take's: ``"smplx"`` or ``"smpl"``)."""
    return load_smpl_model(path) if body_kind(body_model) is SMPL_KIND else load_smplx_model(path)


def blend_shapes(coeffs: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Per-vertex displacement. coeffs ``(..., K)``, dirs ``(V, 3, K)`` -> ``(..., V, 3)``."""
    return np.einsum("...k,vck->...vc", coeffs, dirs)


def shaped_vertices(model: SmplxModel, betas, expression=None) -> np.ndarray:
    """``v_shaped``: template + shape (+ expression). betas ``(..., 10)`` -> ``(..., V, 3)``."""
    v = model.v_template + blend_shapes(np.asarray(betas, dtype=np.float64), model.shapedirs)
    if expression is not None:
        v = v + blend_shapes(np.asarray(expression, dtype=np.float64), model.exprdirs)
    return v


def regress_joints(model: SmplxModel, vertices: np.ndarray) -> np.ndarray:
    """``J_regressor @ vertices``: ``(..., V, 3)`` -> ``(..., J, 3)``."""
    return np.einsum("jv,...vc->...jc", model.J_regressor, vertices)


def rest_joints(model: SmplxModel, betas, expression=None) -> np.ndarray:
    """Rest-pose joint positions for given betas (and expression). -> ``(..., J, 3)``.

    smplx regresses the joints from the shaped template *including* the
    expression blend shapes, so face expressions can move the head's joints.
    """
    return regress_joints(model, shaped_vertices(model, betas, expression))


def full_pose(params: dict, kind: BodyKind = SMPLX_KIND) -> np.ndarray:
    """The 55 local axis-angles of smplx's ``full_pose`` from take-style arrays.

    params: ``global_orient (T,3)``, ``body_pose (T,63)``, ``jaw_pose``,
    ``leye_pose``, ``reye_pose (T,3)``, ``left/right_hand_pose (T,45)`` (flat
    hand mean). Missing eye/jaw poses count as zero. -> ``(T, 55, 3)``.
    SMPL (``kind=SMPL_KIND``): ``global_orient (T,3)``, ``body_pose (T,69)``
    -> ``(T, 24, 3)``.
    """
    T = np.asarray(params["global_orient"]).shape[0]
    out = np.zeros((T, kind.num_joints, 3))
    for key, sl in kind.pose_slices.items():
        if key in params and params[key] is not None:
            out[:, sl] = np.asarray(params[key], dtype=np.float64).reshape(T, -1, 3)
    return out


def pose_features(rotmats: np.ndarray) -> np.ndarray:
    """Pose-corrective features ``vec(R_i - I)`` of joints 1..54 (1..23 for SMPL).

    ``(..., J, 3, 3)`` -> ``(..., 486)`` (SMPL: ``(..., 207)``).

    Feature k belongs to joint ``1 + k // 9``, matrix entry ``divmod(k % 9, 3)``.
    """
    r = np.asarray(rotmats)[..., 1:, :, :] - np.eye(3)
    return r.reshape(r.shape[:-3] + (-1,))


def pose_offsets(model: SmplxModel, features: np.ndarray) -> np.ndarray:
    """Pose-corrective displacement: ``(..., 486)`` -> ``(..., V, 3)``."""
    return blend_shapes(features, model.posedirs)


def global_transforms(rotmats: np.ndarray, joints: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """Forward kinematics (``batch_rigid_transform``): world transform of every joint frame.

    rotmats ``(..., J, 3, 3)`` local; joints ``(..., J, 3)`` rest positions.
    Returns ``G (..., J, 4, 4)``; ``G[..., :3, 3]`` are the posed joints
    (before ``transl``). Joint frames are world-aligned at rest.
    """
    rotmats = np.asarray(rotmats, dtype=np.float64)
    joints = np.asarray(joints, dtype=np.float64)
    batch = np.broadcast_shapes(rotmats.shape[:-3], joints.shape[:-2])
    n = rotmats.shape[-3]
    rel = joints.copy()
    rel[..., 1:, :] = joints[..., 1:, :] - joints[..., parents[1:], :]
    local = np.zeros(batch + (n, 4, 4))
    local[..., :3, :3] = rotmats
    local[..., :3, 3] = rel
    local[..., 3, 3] = 1.0
    G = np.empty_like(local)
    G[..., 0, :, :] = local[..., 0, :, :]
    for i in range(1, n):  # parents come before children in SMPL-X
        G[..., i, :, :] = G[..., parents[i], :, :] @ local[..., i, :, :]
    return G


def skinning_transforms(G: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """``A_i = G_i @ [I | -J_i]``: rest space -> posed space per joint. -> ``(..., J, 4, 4)``."""
    A = G.copy()
    A[..., :3, 3] = G[..., :3, 3] - np.einsum("...ij,...j->...i", G[..., :3, :3], joints)
    return A


def linear_blend_skinning(vertices: np.ndarray, transforms: np.ndarray,
                          weights: np.ndarray) -> np.ndarray:
    """``sum_i w_vi A_i v``. vertices ``(..., V, 3)``, transforms ``(..., J, 4, 4)``,
    weights ``(V, J)`` -> ``(..., V, 3)``."""
    T = np.einsum("vj,...jab->...vab", weights, transforms[..., :3, :])
    return np.einsum("...vab,...vb->...va", T[..., :3], vertices) + T[..., 3]


@dataclass
class SmplxOutput:
    vertices: np.ndarray   # (T, V, 3) with transl
    joints: np.ndarray     # (T, J, 3) posed joints with transl (smplx output's first 55)
    rest_joints: np.ndarray  # (T, J, 3)
    rotmats: np.ndarray    # (T, J, 3, 3)


def forward(model: SmplxModel, params: dict, pose_correctives: bool = True) -> SmplxOutput:
    """smplx.SMPLX(use_pca=False, flat_hand_mean=True) forward in numpy
    (``smplx.SMPL`` for an SMPL model).

    params: take-style arrays (see ``full_pose``) plus ``betas (T,10)`` or
    ``(10,)``, ``expression (T,10)`` and ``transl (T,3)`` (each optional).
    ``pose_correctives=False`` is smplx with ``posedirs`` zeroed.
    """
    pose = full_pose(params, model.kind)
    T = pose.shape[0]
    betas = np.broadcast_to(np.asarray(params.get("betas", np.zeros(NUM_BETAS)), float),
                            (T, NUM_BETAS))
    expr = params.get("expression") if model.kind.num_expression else None
    expr = np.zeros((T, model.kind.num_expression)) if expr is None else np.asarray(expr, float)
    v_shaped = shaped_vertices(model, betas, expr)
    J = regress_joints(model, v_shaped)
    R = axis_angle_to_matrix(pose)
    v_posed = v_shaped + pose_offsets(model, pose_features(R)) if pose_correctives else v_shaped
    G = global_transforms(R, J, model.parents)
    verts = linear_blend_skinning(v_posed, skinning_transforms(G, J), model.lbs_weights)
    transl = params.get("transl")
    transl = np.zeros((T, 3)) if transl is None else np.asarray(transl, float)
    return SmplxOutput(vertices=verts + transl[:, None], joints=G[..., :3, 3] + transl[:, None],
                       rest_joints=J, rotmats=R)
