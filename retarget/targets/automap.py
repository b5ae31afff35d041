# SPDX-License-Identifier: GPL-3.0-or-later
"""Map an armature we do not know onto SMPL-X joints: by bone names, then by structure.

Names: prefixes (``mixamorig:``, ``mixamorig1:``, ``mixamorig`` without the colon,
``DEF-``, ``Armature|``...) are dropped, the side is read from the usual
conventions (``.L``/``.R``, ``_l``/``_r``, ``Left``/``Right``, ``left_``, ``L_``,
``l_``...), and the rest matched against body-part words (``UpLeg``/``thigh``/
``UpperLeg``, ``ForeArm``/``lowerarm``, ``Toes``/``ball``, finger names with
numbers or Proximal/Intermediate/Distal, thumb Metacarpal-or-not).
Structure then fills what names did not give (world rest positions: Z up, the
character's left at +X): legs are the two child chains of the hips that reach the
floor (ankle = the first bone pointing forward more than down, knee = the joint
nearest halfway), arms the two chains above that reach furthest to one side (wrist
= the first bone with three or more finger chains, collar = the first bone when the
chain has three before the hand); the pelvis is the lowest common ancestor of the
two thighs, the chest that of the two upper arms (or collars), the bones between
them become spine1 (and spine2), and the chain going up from the chest the neck and
head. Twist, IK, roll, end and helper bones are never mapped by name. A result
missing a required joint is refused with the list.
"""
from __future__ import annotations

import re

import numpy as np

from ..errors import RetargetError
from ..smplx_model import JOINT_NAMES
from .rig_target import EXPRESSION_KEYS, RigTarget, TargetSkeleton, missing_required

_PREFIX = re.compile(r"^(?:.*[:|])|^(?:mixamorig\d*)|^(?:def[-_.])|^(?:bip\d*[ _])|^(?:b[-_])",
                     re.IGNORECASE)
_SKIP = re.compile(r"twist|roll|(?<![a-z])ik|_ik|ik_|pole|target|end$|_end|\.end|tip|nub|ctrl|"
                   r"^mch|^org|tweak|helper|socket|attach|corrective|weapon|prop|null",
                   re.IGNORECASE)
# Face bones (Rigify's face rig, blend-shape helpers): never on the neck/head chain.
_FACE = re.compile(r"face|brow|lid|lip|nose|cheek|ear|chin|forehead|temple|tongue|teeth|"
                   r"eye|jaw|mouth|tooth", re.IGNORECASE)
_SIDE_PATTERNS = (
    (re.compile(r"[._\- ]([lr])$", re.IGNORECASE), 1),          # thigh.L, thigh_l, thigh L
    (re.compile(r"[._\- ]([lr])[._\- ](?=\d+$)", re.IGNORECASE), 1),  # thigh.L.001
    (re.compile(r"^(left|right)", re.IGNORECASE), 1),           # LeftArm, left_arm
    (re.compile(r"(left|right)$", re.IGNORECASE), 1),           # armLeft
    (re.compile(r"^([lr])[._\- ]", re.IGNORECASE), 1),          # L_arm, l.arm
    (re.compile(r"(left|right)", re.IGNORECASE), 1),            # hand_left_x
)
# body part word (normalised: lower case, letters only) -> joint without side
_LIMB_WORDS = {
    "upleg": "hip", "upperleg": "hip", "thigh": "hip", "legupper": "hip", "hip": "hip",
    "leg": "knee", "lowerleg": "knee", "calf": "knee", "shin": "knee", "knee": "knee",
    "leglower": "knee",
    "foot": "ankle", "ankle": "ankle",
    "toe": "foot", "toes": "foot", "toebase": "foot", "ball": "foot",
    "shoulder": "collar", "clavicle": "collar", "collar": "collar",
    "arm": "shoulder", "upperarm": "shoulder", "uparm": "shoulder", "armupper": "shoulder",
    "forearm": "elbow", "lowerarm": "elbow", "elbow": "elbow", "armlower": "elbow",
    "hand": "wrist", "wrist": "wrist",
    "eye": "eye_smplhf",
}
_CENTRE_WORDS = {"hips": "pelvis", "pelvis": "pelvis", "head": "head", "neck": "neck",
                 "jaw": "jaw"}
_FINGER_WORDS = {"thumb": "thumb", "index": "index", "middle": "middle", "ring": "ring",
                 "pinky": "pinky", "little": "pinky", "pinkie": "pinky"}
_PHALANX = {"metacarpal": 0, "proximal": 1, "intermediate": 2, "distal": 3}


def strip_prefix(name: str) -> str:
    """``mixamorig1:LeftArm`` -> ``LeftArm``; ``DEF-thigh.L`` -> ``thigh.L``."""
    out = name
    for _ in range(3):
        new = _PREFIX.sub("", out)
        if new == out or not new:
            break
        out = new
    return out


def split_side(name: str) -> tuple:
    """``(side or None, the name without its side marker)``; side is "left"/"right"."""
    for pat, g in _SIDE_PATTERNS:
        m = pat.search(name)
        if m:
            side = "left" if m.group(g).lower() in ("l", "left") else "right"
            # thigh.L.001 -> thigh.001 (keep a separator before the number)
            glue = "." if m.end() < len(name) and name[m.end()].isdigit() else ""
            return side, name[:m.start()] + glue + name[m.end():]
    return None, name


def _words(name: str) -> tuple:
    """Letters only, lower case, and the trailing number (or None)."""
    m = re.search(r"(\d+)\D*$", name)
    number = int(m.group(1)) if m else None
    return re.sub(r"[^a-z]", "", name.lower()), number


def name_role(name: str) -> tuple:
    """``(role, phalanx number)`` guessed from a bone name, role None when unknown.

    Roles are SMPL-X joint names, except fingers: ``left_index`` + number (resolved
    per finger later, once all its bones are known).
    """
    if _SKIP.search(name):
        return None, None
    base = strip_prefix(name)
    side, rest = split_side(base)
    word, number = _words(rest)
    if side is None:
        if word in _CENTRE_WORDS:
            return _CENTRE_WORDS[word], None
        if word.startswith("spine") or word.startswith("chest") or word in ("upperchest",):
            return "spine*", number
        return None, None
    for fw, finger in _FINGER_WORDS.items():
        if fw in word:
            ph = next((v for k, v in _PHALANX.items() if k in word), None)
            if "metacarpal" in word and finger != "thumb":
                return None, None
            return f"{side}_{finger}", ("p", ph) if ph is not None else ("n", number)
    for w in sorted(_LIMB_WORDS, key=len, reverse=True):
        if word == w or (word.startswith(w) and len(w) >= 4 and word[len(w):] in ("", "s")):
            joint = f"{side}_{_LIMB_WORDS[w]}"
            if number and number > 0 and w in ("upleg", "thigh", "shin", "calf", "upperarm",
                                              "forearm", "lowerarm", "arm", "leg"):
                return None, None   # thigh.001, forearm.001: limb segments, not joints
            return joint, None
    return None, None


def _ancestors(parents: np.ndarray, i: int) -> list:
    out = []
    p = int(parents[i])
    while p >= 0:
        out.append(p)
        p = int(parents[p])
    return out


def _lca(parents, a: int, b: int) -> int | None:
    anc = [a] + _ancestors(parents, a)
    for x in [b] + _ancestors(parents, b):
        if x in anc:
            return x
    return None


def _resolve_fingers(found: dict, names) -> dict:
    """Finger candidates -> joints ``left_index1..3``: by Proximal/... words or numbers."""
    out = {}
    for key, items in found.items():
        side, finger = key.split("_")
        if any(k == "p" for _, (k, _) in items):
            phalanges = {ph: i for i, (k, ph) in items if k == "p"}
            has_meta = 0 in phalanges
            if finger == "thumb" and not has_meta:
                order = {1: 1, 2: 2, 3: 3}       # Unity: ThumbProximal = SMPL-X thumb1
            elif finger == "thumb":
                order = {0: 1, 1: 2, 3: 3}       # VRM 1.0: ThumbMetacarpal = thumb1
            else:
                order = {1: 1, 2: 2, 3: 3}
            for ph, i in phalanges.items():
                if ph in order:
                    out[f"{side}_{finger}{order[ph]}"] = i
        else:
            numbered = sorted((n, i) for i, (_, n) in items if n is not None)
            if not numbered:
                continue
            first = numbered[0][0]
            for n, i in numbered:
                k = n - first + 1
                if 1 <= k <= 3:
                    out[f"{side}_{finger}{k}"] = i
    return out


def automap(skeleton: TargetSkeleton, name: str | None = None) -> RigTarget:
    """A RigTarget for ``skeleton`` (names, then structure); raises RetargetError naming
    the required joints it could not find."""
    names = skeleton.names
    parents = skeleton.parents
    heads = skeleton.to_world(skeleton.heads)
    found: dict = {}
    fingers: dict = {}
    spine_like = []
    for i, n in enumerate(names):
        role, extra = name_role(n)
        if role is None:
            continue
        if role == "spine*":
            spine_like.append(i)
        elif role.split("_")[-1] in _FINGER_WORDS.values() and "_" in role and extra is not None:
            fingers.setdefault(role, []).append((i, extra))
        elif role not in found:
            found[role] = i
    found.update(_resolve_fingers(fingers, names))
    # A collar word on the upper arm (Mixamo "LeftShoulder" + "LeftArm"; VRM
    # "leftShoulder" + "leftUpperArm") is right; "shoulder" alone with no arm bone is the arm.
    for side in ("left", "right"):
        if (f"{side}_collar" in found and f"{side}_shoulder" not in found
                and f"{side}_elbow" in found):
            found[f"{side}_shoulder"] = found.pop(f"{side}_collar")
    limb_joints = [f"{s}_{j}" for s in ("left", "right")
                   for j in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")]
    if any(j not in found for j in limb_joints):
        _structure_limbs(names, parents, heads, skeleton.to_world(skeleton.tails), found)
    # Structure: pelvis = LCA of the thighs; chest = LCA of the arms.
    if "left_hip" in found and "right_hip" in found:
        lca = _lca(parents, found["left_hip"], found["right_hip"])
        if lca is not None and ("pelvis" not in found or found["pelvis"] not in
                                [found["left_hip"]] + _ancestors(parents, found["left_hip"])):
            found["pelvis"] = lca
    arm_key = "collar" if "left_collar" in found and "right_collar" in found else "shoulder"
    chest = None
    if f"left_{arm_key}" in found and f"right_{arm_key}" in found:
        chest = _lca(parents, found[f"left_{arm_key}"], found[f"right_{arm_key}"])
    if chest is not None and "pelvis" in found:
        chain = _ancestors(parents, chest)
        if found["pelvis"] in chain:
            between = list(reversed(chain[:chain.index(found["pelvis"])]))  # pelvis -> chest
            if chest != found["pelvis"]:
                found["spine3"] = chest
                if between:
                    found["spine1"] = between[0]
                    if len(between) >= 2:
                        found["spine2"] = between[round(len(between) / 2)]
                else:
                    found["spine1"] = found.pop("spine3")
        # Neck/head: the chain going up from the chest (no arm, no bone pointing
        # forward or down such as eyes and jaw); a leaf far above everything else at its
        # top is an end marker (Mixamo HeadTop_End), not the head.
        if "head" not in found or "neck" not in found:
            tails = skeleton.to_world(skeleton.tails)
            height = max(float(heads[:, 2].max() - heads[:, 2].min()), 1e-6)
            arm_roots = {found.get(f"{s}_{arm_key}") for s in ("left", "right")}
            up = []
            cur = chest
            while True:
                taken = set(found.values())
                kids = [k for k in range(len(names)) if parents[k] == cur and k not in arm_roots
                        and k not in taken and not _SKIP.search(names[k])
                        and not _FACE.search(strip_prefix(names[k]))
                        and heads[k][2] > heads[cur][2] - 0.01 * height
                        and (tails[k] - heads[k])[2] > 0.7 * np.linalg.norm(tails[k] - heads[k])]
                if not kids:
                    break
                cur = max(kids, key=lambda k: heads[k][2])
                up.append(cur)
            if len(up) >= 2 and not any(parents[k] == up[-1] for k in range(len(names))):
                others = np.delete(heads[:, 2], up[-1])
                if heads[up[-1]][2] > others.max() + 0.1 * height:
                    up.pop()
            if up and "head" not in found:
                found["head"] = up[-1]
            if "neck" not in found and len(up) >= 2:
                found["neck"] = up[0]
    # Without arms to find the chest by, bones named spine/chest fill the torso in order.
    if "spine1" not in found and spine_like:
        chain = sorted(spine_like, key=lambda i: len(_ancestors(parents, i)))
        chain = [i for i in chain if i not in found.values()]
        if chain:
            found.setdefault("spine1", chain[0])
        if len(chain) >= 2:
            found.setdefault("spine3", chain[-1])
        if len(chain) >= 3:
            found.setdefault("spine2", chain[len(chain) // 2])
    mapping = {j: names[i] for j, i in found.items() if j in JOINT_NAMES}
    # Each bone once.
    seen, clean = set(), {}
    for j in JOINT_NAMES:
        b = mapping.get(j)
        if b is not None and b not in seen:
            clean[j] = b
            seen.add(b)
    root = None
    pel = found.get("pelvis")
    if pel is not None:
        anc = _ancestors(parents, pel)
        if anc:
            root = names[anc[-1]]
    target = RigTarget(name=name or skeleton.name, mapping=clean, root_bone=root,
                       root_motion="hips", rest_family=_rest_family(skeleton, clean),
                       shape_keys={k: k for k in EXPRESSION_KEYS}, skeleton=None)
    missing = missing_required(target, skeleton)
    if missing:
        raise RetargetError(f"armature {skeleton.name!r} does not look like a humanoid we can map; "
                            f"missing: {', '.join(missing)}")
    return target


def _structure_limbs(names, parents, heads, tails, found: dict) -> None:
    """Fill the limb joints the names did not give, from the tree and the rest positions
    (world: Z up, the character's left at +X). Legs: the two child chains of the hips that
    reach the floor; arms: the two chains above that reach furthest sideways. Along a
    chain, the ankle is the first bone that points forward more than down, the wrist the
    first with three or more children (fingers), the knee/elbow the joint nearest halfway."""
    B = len(names)
    kids: list = [[] for _ in range(B)]
    for i, p in enumerate(parents):
        if p >= 0 and not _SKIP.search(names[i]):
            kids[p].append(i)
    minz, maxz = heads[:, 2].copy(), heads[:, 2].copy()
    minx, maxx = heads[:, 0].copy(), heads[:, 0].copy()
    for i in range(B - 1, -1, -1):         # parents come before children
        p = parents[i]
        if p >= 0 and not _SKIP.search(names[i]):
            minz[p], maxz[p] = min(minz[p], minz[i]), max(maxz[p], maxz[i])
            minx[p], maxx[p] = min(minx[p], minx[i]), max(maxx[p], maxx[i])
    height = max(float(heads[:, 2].max() - heads[:, 2].min()), 1e-6)
    taken = set(found.values())

    def chain(start, key):
        path = [start]
        while kids[path[-1]]:
            path.append(min(kids[path[-1]], key=key))
        return path

    def direction(path, k):
        nxt = heads[path[k + 1]] if k + 1 < len(path) else tails[path[k]]
        return nxt - heads[path[k]]

    def nearest(path, lo, hi, point):
        inner = path[lo:hi]
        return min(inner, key=lambda b: np.linalg.norm(heads[b] - point)) if inner else None

    def put(joint, bone):
        if joint not in found and bone is not None and bone not in taken:
            found[joint] = bone
            taken.add(bone)

    hips = None
    for b in range(B):   # legs
        down = [c for c in kids[b] if minz[c] < heads[b, 2] - 0.3 * height]
        left = [c for c in down if heads[c, 0] > heads[b, 0] + 0.01 * height]
        right = [c for c in down if heads[c, 0] < heads[b, 0] - 0.01 * height]
        if not (left and right):
            continue
        hips = b
        for side, starts in (("left", left), ("right", right)):
            path = chain(min(starts, key=lambda c: minz[c]), key=lambda c: minz[c])
            ankle_k = next((k for k in range(2, len(path)) if abs(direction(path, k)[2])
                            < 0.8 * np.linalg.norm(direction(path, k))), None)
            if ankle_k is None:
                continue
            put(f"{side}_hip", path[0])
            halfway = 0.5 * (heads[path[0]] + heads[path[ankle_k]])
            put(f"{side}_knee", nearest(path, 1, ankle_k, halfway))
            put(f"{side}_ankle", path[ankle_k])
            if ankle_k + 1 < len(path):
                put(f"{side}_foot", path[ankle_k + 1])
        break
    if hips is None:
        return
    put("pelvis", hips)
    # Arms: up the torso from the hips, the first bone with chains reaching far to both sides.
    cur = hips
    while True:
        up = [c for c in kids[cur] if maxz[c] > heads[cur, 2] + 0.1 * height]
        if not up:
            return
        cur = max(up, key=lambda c: maxz[c])
        far = 0.25 * height      # a chain reaching this far to one side only is an arm
        x0 = heads[cur, 0]
        left = [c for c in kids[cur] if maxx[c] > x0 + far and minx[c] > x0 - far]
        right = [c for c in kids[cur] if minx[c] < x0 - far and maxx[c] < x0 + far]
        if left and right:
            break
    for side, starts, reach in (("left", left, lambda c: -maxx[c]),
                                ("right", right, lambda c: minx[c])):
        path = chain(min(starts, key=reach), key=reach)
        # the wrist: three or more finger chains (twist leaves on the upper arm do not count)
        hand_k = next((k for k in range(2, len(path))
                       if sum(1 for c in kids[path[k]] if kids[c]) >= 3), len(path) - 1)
        before = path[:hand_k]
        if len(before) < 2:
            continue
        upper_k = 1 if len(before) >= 3 else 0
        if upper_k:
            put(f"{side}_collar", before[0])
        put(f"{side}_shoulder", before[upper_k])
        put(f"{side}_elbow", nearest(path, upper_k + 1, hand_k,
                                     0.5 * (heads[before[upper_k]] + heads[path[hand_k]])))
        put(f"{side}_wrist", path[hand_k])


def _rest_family(skeleton: TargetSkeleton, mapping: dict) -> str:
    """"A" when the upper arms hang more than 25 deg below horizontal at rest, else "T"."""
    ix = skeleton.index()
    H = skeleton.to_world(skeleton.heads)
    angles = []
    for s in ("left", "right"):
        a, b = mapping.get(f"{s}_shoulder"), mapping.get(f"{s}_elbow")
        if a in ix and b in ix:
            v = H[ix[b]] - H[ix[a]]
            angles.append(np.degrees(np.arcsin(-v[2] / max(np.linalg.norm(v), 1e-9))))
    return "A" if angles and np.mean(angles) > 25 else "T"
