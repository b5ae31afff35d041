# SPDX-License-Identifier: GPL-3.0-or-later
"""Rig targets as data: a target skeleton (bones at rest) and a preset (the mapping).

* :class:`TargetBone` / :class:`TargetSkeleton`: a target armature at rest, as
  Blender stores it. Each bone has a head, a tail and a roll (Blender's edit-bone
  roll, radians); its rest frame ``matrix`` (``bone.matrix_local[:3, :3]``, columns
  = the bone's X, Y, Z axes in armature space, Y from head to tail) follows from
  them exactly as Blender computes it (:func:`bone_matrix`). The skeleton also
  carries the armature object's ``matrix_world`` (``object_matrix``, 4x4: FBX
  imports carry a scale of 0.01 and a 90 deg turn), so armature space may be
  centimetres or Y-up. Pure data: what E's Blender code reads from an armature
  or builds one from.
* :class:`RigTarget`: a preset, pure JSON-serialisable data: SMPL-X joint ->
  bone name, root/hips/feet bones, rest family, twist shares, bones that copy
  another bone (UE ``ik_*``), expression -> shape-key table, and optionally the
  target's reference skeleton. ``to_dict``/``from_dict``/``save``/``load``
  (plain JSON only: nothing read can run code); every problem is one line
  (:class:`RetargetError`).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import RetargetError
from ..smplx_model import JOINT_NAMES, NUM_EXPRESSION

FORMAT = "p2p-rig-target/1"
REST_FAMILIES = ("T", "A")
DRIVES = ("deform", "controls")
ROOT_MOTION = ("hips", "root")
# What a mapping must hold to be a humanoid we can drive (VRM 1.0 / Unity's 15, plus
# the spine root joints every one of them has): hips, spine, head, upper/lower limbs.
REQUIRED_JOINTS = ("pelvis", "spine1", "head",
                   "left_hip", "left_knee", "left_ankle", "right_hip", "right_knee", "right_ankle",
                   "left_shoulder", "left_elbow", "left_wrist",
                   "right_shoulder", "right_elbow", "right_wrist")
EXPRESSION_KEYS = tuple(f"Exp{i:03d}" for i in range(NUM_EXPRESSION))  # our rig's shape keys
_MAX_BONES = 10000


# --------------------------------------------------------------------------- bone frames

def _swing_from_y(nor: np.ndarray) -> np.ndarray:
    """Shortest rotation taking +Y to the unit vectors ``nor (..., 3)`` -> ``(..., 3, 3)``.

    Blender's ``vec_roll_to_mat3_normalized`` with roll 0 (the bone's zero-roll
    frame); a bone pointing exactly along -Y gets ``diag(-1, -1, 1)`` as there.
    """
    n = np.asarray(nor, dtype=np.float64)
    x, y, z = n[..., 0], n[..., 1], n[..., 2]
    theta = 1.0 + y
    theta_alt = x * x + z * z
    safe = (theta > 1e-5) | (theta_alt > 1e-9)
    # Blender's own series for theta near 0 (bone close to -Y).
    theta = np.where(theta > 1e-5, theta, theta_alt * 0.5 + theta_alt * theta_alt * 0.125)
    theta = np.where(safe, theta, 1.0)
    m = np.empty(n.shape[:-1] + (3, 3))
    m[..., 0, 0] = 1 - x * x / theta
    m[..., 0, 1] = x
    m[..., 0, 2] = -x * z / theta
    m[..., 1, 0] = -x
    m[..., 1, 1] = y
    m[..., 1, 2] = -z
    m[..., 2, 0] = -x * z / theta
    m[..., 2, 1] = z
    m[..., 2, 2] = 1 - z * z / theta
    m[~safe] = np.diag([-1.0, -1.0, 1.0])
    return m


def _axis_rotation(axis: np.ndarray, angle) -> np.ndarray:
    """Rotations by ``angle (...)`` about unit ``axis (..., 3)`` -> ``(..., 3, 3)``."""
    a = np.asarray(axis, dtype=np.float64)
    angle = np.asarray(angle, dtype=np.float64)
    K = np.zeros(a.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2], K[..., 1, 2] = -a[..., 2], a[..., 1], -a[..., 0]
    K[..., 1, 0], K[..., 2, 0], K[..., 2, 1] = a[..., 2], -a[..., 1], a[..., 0]
    s, c = np.sin(angle)[..., None, None], np.cos(angle)[..., None, None]
    return np.eye(3) + s * K + (1 - c) * (K @ K)


def bone_matrix(head, tail, roll) -> np.ndarray:
    """Blender's rest frame of a bone (``bone.matrix_local[:3, :3]``) from head, tail, roll.

    head, tail ``(..., 3)``, roll ``(...)`` radians -> ``(..., 3, 3)``, columns X, Y, Z.
    """
    v = np.asarray(tail, dtype=np.float64) - np.asarray(head, dtype=np.float64)
    n = v / np.linalg.norm(v, axis=-1, keepdims=True)
    return _axis_rotation(n, roll) @ _swing_from_y(n)


def roll_from_matrix(matrix) -> np.ndarray:
    """The roll (radians) of a bone whose rest frame is ``matrix (..., 3, 3)`` (Y = bone axis)."""
    m = np.asarray(matrix, dtype=np.float64)
    n = m[..., :, 1]
    x0 = _swing_from_y(n)[..., :, 0]
    x = m[..., :, 0]
    return np.arctan2(np.einsum("...i,...i->...", np.cross(x0, x), n),
                      np.einsum("...i,...i->...", x0, x))


# --------------------------------------------------------------------------- skeleton

def _vec3(v, what: str) -> tuple:
    try:
        a = np.asarray(v, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise RetargetError(f"{what} must be three numbers, got {v!r}") from None
    if a.shape != (3,) or not np.isfinite(a).all():
        raise RetargetError(f"{what} must be three finite numbers, got {v!r}")
    return tuple(float(x) for x in a)


@dataclass(frozen=True)
class TargetBone:
    """One bone of a target armature at rest, in armature space (Blender's conventions)."""

    name: str
    parent: str | None
    head: tuple            # (3,) armature space
    tail: tuple            # (3,)
    roll: float = 0.0      # radians, Blender edit-bone roll

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise RetargetError(f"a bone name must be a non-empty text, got {self.name!r}")
        if self.parent is not None and not isinstance(self.parent, str):
            raise RetargetError(f"bone {self.name!r}: parent must be a bone name or null")
        object.__setattr__(self, "head", _vec3(self.head, f"bone {self.name!r} head"))
        object.__setattr__(self, "tail", _vec3(self.tail, f"bone {self.name!r} tail"))
        if np.linalg.norm(np.subtract(self.tail, self.head)) < 1e-9:
            raise RetargetError(f"bone {self.name!r} has zero length")
        try:
            roll = float(self.roll)
        except (TypeError, ValueError):
            raise RetargetError(f"bone {self.name!r}: roll must be a number") from None
        if not math.isfinite(roll):
            raise RetargetError(f"bone {self.name!r}: roll must be finite")
        object.__setattr__(self, "roll", roll)

    @property
    def matrix(self) -> np.ndarray:
        """``(3, 3)`` rest frame (``bone.matrix_local[:3, :3]``)."""
        return bone_matrix(self.head, self.tail, self.roll)

    @classmethod
    def from_matrix(cls, name, parent, head, tail, matrix) -> "TargetBone":
        """From a rest frame as Blender reports it (``bone.matrix_local``); the roll is derived."""
        return cls(name, parent, head, tail, float(roll_from_matrix(matrix)))

    def to_dict(self) -> dict:
        return {"name": self.name, "parent": self.parent, "head": list(self.head),
                "tail": list(self.tail), "roll_deg": math.degrees(self.roll)}

    @classmethod
    def from_dict(cls, d) -> "TargetBone":
        if not isinstance(d, dict):
            raise RetargetError(f"a bone must be a mapping, got {type(d).__name__}")
        unknown = sorted(set(d) - {"name", "parent", "head", "tail", "roll_deg"})
        if unknown:
            raise RetargetError(f"bone {d.get('name')!r}: unknown field {unknown[0]!r}")
        for k in ("name", "head", "tail"):
            if k not in d:
                raise RetargetError(f"bone {d.get('name')!r}: missing field {k!r}")
        roll = d.get("roll_deg", 0.0)
        if isinstance(roll, bool) or not isinstance(roll, (int, float)):
            raise RetargetError(f"bone {d.get('name')!r}: roll_deg must be a number")
        return cls(d["name"], d.get("parent"), d["head"], d["tail"], math.radians(roll))


def _object_matrix(m) -> tuple:
    try:
        a = np.asarray(m, dtype=np.float64)
    except (TypeError, ValueError):
        raise RetargetError("object_matrix must be a 4x4 matrix of numbers") from None
    if a.shape != (4, 4) or not np.isfinite(a).all():
        raise RetargetError("object_matrix must be a 4x4 matrix of finite numbers")
    if not np.allclose(a[3], [0, 0, 0, 1]):
        raise RetargetError("object_matrix has a projective part (last row must be 0 0 0 1)")
    lin = a[:3, :3]
    scales = np.linalg.norm(lin, axis=0)
    if scales.min() < 1e-9:
        raise RetargetError("the armature object has zero scale")
    if scales.max() - scales.min() > 1e-4 * scales.max():
        raise RetargetError("the armature object has a non-uniform scale "
                            f"({', '.join(f'{s:.4g}' for s in scales)}); apply the scale first")
    rot = lin / scales
    if np.linalg.det(rot) < 0 or not np.allclose(rot.T @ rot, np.eye(3), atol=1e-4):
        raise RetargetError("the armature object is mirrored or sheared; apply its transform first")
    return tuple(tuple(float(x) for x in row) for row in a)


@dataclass(frozen=True)
class TargetSkeleton:
    """A target armature at rest: its bones (parents before children) and its object transform."""

    name: str
    bones: tuple                 # tuple[TargetBone, ...]
    object_matrix: tuple = tuple(tuple(float(i == j) for j in range(4)) for i in range(4))
    units: str = "m"             # what one armature-space unit is (information only)

    def __post_init__(self):
        bones = tuple(self.bones)
        if not bones:
            raise RetargetError(f"armature {self.name!r} has no bones")
        if len(bones) > _MAX_BONES:
            raise RetargetError(f"armature {self.name!r} has too many bones ({len(bones)})")
        seen: set = set()
        dup = [b.name for b in bones if b.name in seen or seen.add(b.name)]
        if dup:
            raise RetargetError(f"armature {self.name!r} has duplicate bone names: "
                                f"{', '.join(dup[:5])}")
        names = {b.name for b in bones}
        missing = [f"{b.name} -> {b.parent}" for b in bones if b.parent is not None
                   and b.parent not in names]
        if missing:
            raise RetargetError(f"armature {self.name!r}: parent bone not found: {missing[0]}")
        # Parents first (topological order), stable otherwise.
        order, placed = [], set()
        pending = list(bones)
        while pending:
            rest = []
            for b in pending:
                if b.parent is None or b.parent in placed:
                    order.append(b)
                    placed.add(b.name)
                else:
                    rest.append(b)
            if len(rest) == len(pending):
                raise RetargetError(f"armature {self.name!r}: parent cycle at bone "
                                    f"{rest[0].name!r}")
            pending = rest
        object.__setattr__(self, "bones", tuple(order))
        object.__setattr__(self, "object_matrix", _object_matrix(self.object_matrix))

    # ---- arrays (armature space unless said otherwise)
    @property
    def names(self) -> tuple:
        return tuple(b.name for b in self.bones)

    def index(self) -> dict:
        return {b.name: i for i, b in enumerate(self.bones)}

    @property
    def parents(self) -> np.ndarray:
        """``(B,)`` parent indices, -1 for roots."""
        ix = self.index()
        return np.array([-1 if b.parent is None else ix[b.parent] for b in self.bones])

    @property
    def heads(self) -> np.ndarray:
        return np.array([b.head for b in self.bones])

    @property
    def tails(self) -> np.ndarray:
        return np.array([b.tail for b in self.bones])

    @property
    def matrices(self) -> np.ndarray:
        """``(B, 3, 3)`` rest frames (``bone.matrix_local[:3, :3]``)."""
        return bone_matrix(self.heads, self.tails, np.array([b.roll for b in self.bones]))

    @property
    def scale(self) -> float:
        """World metres per armature unit (the object's uniform scale)."""
        return float(np.linalg.norm(np.asarray(self.object_matrix)[:3, 0]))

    @property
    def object_rotation(self) -> np.ndarray:
        m = np.asarray(self.object_matrix)
        return m[:3, :3] / self.scale

    def to_world(self, points: np.ndarray) -> np.ndarray:
        """Armature-space points ``(..., 3)`` -> world (metres)."""
        m = np.asarray(self.object_matrix)
        return np.asarray(points) @ m[:3, :3].T + m[:3, 3]

    def from_world(self, points: np.ndarray) -> np.ndarray:
        m = np.asarray(self.object_matrix)
        return (np.asarray(points) - m[:3, 3]) @ np.linalg.inv(m[:3, :3]).T

    def to_dict(self) -> dict:
        return {"name": self.name, "units": self.units,
                "object_matrix": [list(r) for r in self.object_matrix],
                "bones": [b.to_dict() for b in self.bones]}

    @classmethod
    def from_dict(cls, d) -> "TargetSkeleton":
        if not isinstance(d, dict):
            raise RetargetError(f"a skeleton must be a mapping, got {type(d).__name__}")
        unknown = sorted(set(d) - {"name", "units", "object_matrix", "bones"})
        if unknown:
            raise RetargetError(f"skeleton: unknown field {unknown[0]!r}")
        bones = d.get("bones")
        if not isinstance(bones, list):
            raise RetargetError("skeleton: 'bones' must be a list")
        kw = {}
        if "object_matrix" in d:
            kw["object_matrix"] = d["object_matrix"]
        return cls(name=str(d.get("name", "armature")), units=str(d.get("units", "m")),
                   bones=tuple(TargetBone.from_dict(b) for b in bones), **kw)


# --------------------------------------------------------------------------- preset

def _str_map(d, what: str) -> dict:
    if not isinstance(d, dict):
        raise RetargetError(f"{what} must be a mapping")
    for k, v in d.items():
        if not isinstance(k, str) or not isinstance(v, str) or not v:
            raise RetargetError(f"{what}: {k!r} -> {v!r} is not a name -> name entry")
    return dict(d)


@dataclass(frozen=True)
class RigTarget:
    """A retarget preset: how SMPL-X drives one kind of armature (pure data).

    mapping: SMPL-X joint name -> target bone name (each bone at most once).
    root_bone: a bone above the hips at the origin (UE/Godot ``root``), or None.
    root_motion: ``"hips"`` (translation on the hips bone; the root stays put) or
    ``"root"`` (the root bone carries the ground-plane path, the hips the rest).
    twist: twist bone -> ``(SMPL-X joint, share)``: the bone turns about its own
    axis by ``share`` times that joint's twist about the limb (forearm twist
    bones take a share of the wrist's, negative shares unwind the upper arm).
    follow: bone -> bone whose world transform it copies (UE ``ik_foot_l`` -> ``foot_l``).
    shape_keys: our expression key (``Exp000``..) -> the target's shape-key name.
    drive: ``"deform"`` (deform bones) or ``"controls"`` (a control rig such as Rigify's FK).
    """

    name: str
    mapping: dict
    root_bone: str | None = None
    root_motion: str = "hips"
    rest_family: str = "T"
    drive: str = "deform"
    twist: dict = field(default_factory=dict)
    follow: dict = field(default_factory=dict)
    shape_keys: dict = field(default_factory=dict)
    required: tuple = REQUIRED_JOINTS
    up_axis: str = "Z"               # of the file/engine the preset is for (information)
    units: str = "m"
    source: tuple = ()               # citations of the facts the preset relies on
    skeleton: TargetSkeleton | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise RetargetError("a rig target needs a name")
        mapping = _str_map(self.mapping, "mapping")
        bad = [k for k in mapping if k not in JOINT_NAMES]
        if bad:
            raise RetargetError(f"mapping: {bad[0]!r} is not an SMPL-X joint name")
        seen: dict = {}
        for j, b in mapping.items():
            if b in seen:
                raise RetargetError(f"mapping: bone {b!r} is mapped twice ({seen[b]} and {j})")
            seen[b] = j
        object.__setattr__(self, "mapping", mapping)
        if self.root_motion not in ROOT_MOTION:
            raise RetargetError(f"root_motion must be one of {', '.join(ROOT_MOTION)}")
        if self.rest_family not in REST_FAMILIES:
            raise RetargetError(f"rest_family must be one of {', '.join(REST_FAMILIES)}")
        if self.drive not in DRIVES:
            raise RetargetError(f"drive must be one of {', '.join(DRIVES)}")
        if self.root_bone is not None and not isinstance(self.root_bone, str):
            raise RetargetError("root_bone must be a bone name or null")
        twist = {}
        if not isinstance(self.twist, dict):
            raise RetargetError("twist must be a mapping bone -> [joint, share]")
        for bone, v in self.twist.items():
            try:
                joint, share = v
                share = float(share)
            except (TypeError, ValueError):
                raise RetargetError(f"twist {bone!r}: expected [joint, share], got {v!r}") from None
            if joint not in JOINT_NAMES or not math.isfinite(share) or abs(share) > 2:
                raise RetargetError(f"twist {bone!r}: {joint!r}, {share} is not an SMPL-X joint "
                                    "and a share in [-2, 2]")
            if bone in seen:
                raise RetargetError(f"twist bone {bone!r} is also mapped to {seen[bone]}")
            twist[str(bone)] = (joint, share)
        object.__setattr__(self, "twist", twist)
        object.__setattr__(self, "follow", _str_map(self.follow, "follow"))
        object.__setattr__(self, "shape_keys", _str_map(self.shape_keys, "shape_keys"))
        req = tuple(self.required)
        if any(j not in JOINT_NAMES for j in req):
            raise RetargetError("required: not all entries are SMPL-X joint names")
        object.__setattr__(self, "required", req)
        object.__setattr__(self, "source", tuple(str(s) for s in self.source))
        if self.skeleton is not None and not isinstance(self.skeleton, TargetSkeleton):
            raise RetargetError("skeleton must be a TargetSkeleton")

    def bone(self, joint: str) -> str | None:
        return self.mapping.get(joint)

    @property
    def hips_bone(self) -> str | None:
        return self.mapping.get("pelvis")

    @property
    def feet_bones(self) -> tuple:
        return tuple(self.mapping.get(j) for j in ("left_ankle", "right_ankle"))

    @property
    def hand_bones(self) -> tuple:
        return tuple(self.mapping.get(j) for j in ("left_wrist", "right_wrist"))

    def with_skeleton(self, skeleton: TargetSkeleton | None) -> "RigTarget":
        return replace(self, skeleton=skeleton)

    def to_dict(self, skeleton: bool = True) -> dict:
        d = {"format": FORMAT, "name": self.name, "mapping": dict(self.mapping),
             "root_bone": self.root_bone, "root_motion": self.root_motion,
             "rest_family": self.rest_family, "drive": self.drive,
             "twist": {b: [j, s] for b, (j, s) in self.twist.items()},
             "follow": dict(self.follow), "shape_keys": dict(self.shape_keys),
             "required": list(self.required), "up_axis": self.up_axis, "units": self.units,
             "source": list(self.source)}
        if skeleton and self.skeleton is not None:
            d["skeleton"] = self.skeleton.to_dict()
        return d

    @classmethod
    def from_dict(cls, d) -> "RigTarget":
        if not isinstance(d, dict):
            raise RetargetError(f"a rig target must be a JSON object, got {type(d).__name__}")
        if d.get("format") != FORMAT:
            raise RetargetError(f"not a rig target preset (format {d.get('format')!r}, "
                                f"expected {FORMAT!r})")
        known = {"format", "name", "mapping", "root_bone", "root_motion", "rest_family", "drive",
                 "twist", "follow", "shape_keys", "required", "up_axis", "units", "source",
                 "skeleton"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise RetargetError(f"rig target: unknown field {unknown[0]!r}")
        if "mapping" not in d:
            raise RetargetError("rig target: missing field 'mapping'")
        kw = {k: d[k] for k in known - {"format", "skeleton"} if k in d}
        for k in ("required", "source"):
            if k in kw:
                if not isinstance(kw[k], list):
                    raise RetargetError(f"rig target: {k!r} must be a list")
                kw[k] = tuple(kw[k])
        for k in ("up_axis", "units", "name"):
            if k in kw and not isinstance(kw[k], str):
                raise RetargetError(f"rig target: {k!r} must be a text")
        sk = d.get("skeleton")
        return cls(skeleton=None if sk is None else TargetSkeleton.from_dict(sk), **kw)

    def save(self, path, *, force: bool = False) -> Path:
        """Write the preset as JSON (atomic; an existing file only with ``force``)."""
        from ...common.errors import OutputExistsError as _Exists
        from ...common.files import atomic_write
        from ..errors import OutputExistsError

        text = json.dumps(self.to_dict(), indent=1)

        def write(tmp: Path) -> None:
            tmp.write_text(text + "\n", encoding="utf-8")

        try:
            return atomic_write(Path(path), write, replace=force)
        except _Exists as exc:
            raise OutputExistsError(str(exc)) from None

    @classmethod
    def load(cls, path) -> "RigTarget":
        """Read a JSON preset; any problem is one RetargetError line naming the file."""
        path = Path(path)
        try:
            if path.stat().st_size > 64 * 1024 * 1024:
                raise RetargetError(f"{path}: too large for a rig target preset")
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise RetargetError(f"{path}: no such rig target preset") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise RetargetError(f"{path}: cannot read it ({exc.__class__.__name__})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RetargetError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
        try:
            return cls.from_dict(data)
        except RetargetError as exc:
            raise RetargetError(f"{path}: {exc}") from None


def missing_required(target: RigTarget, skeleton: TargetSkeleton | None = None) -> list:
    """The required SMPL-X joints the mapping lacks (or maps to a bone the skeleton lacks)."""
    sk = skeleton if skeleton is not None else target.skeleton
    names = None if sk is None else set(sk.names)
    return [j for j in target.required
            if j not in target.mapping or (names is not None and target.mapping[j] not in names)]


def check_target(target: RigTarget, skeleton: TargetSkeleton) -> None:
    """Refuse a target that cannot drive ``skeleton``: one line naming what is missing."""
    missing = missing_required(target, skeleton)
    if missing:
        raise RetargetError(f"armature {skeleton.name!r} is not a humanoid we can drive with "
                            f"{target.name!r}; missing: {', '.join(missing)}")
