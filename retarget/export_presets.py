# SPDX-License-Identifier: GPL-3.0-or-later
"""Export presets for game engines (pure data) and the root-motion maths (numpy only).

The bpy layer (``retarget.blender.export``) applies a preset through
Blender's own exporters (``export_scene.fbx``, ``export_scene.gltf``,
``export_anim.bvh``) on a temporary copy of the rig; nothing here imports bpy.

Presets
-------

=========  ======  ===================  ==============================================
preset     format  apply_scale_options  file axes / units
=========  ======  ===================  ==============================================
unity      FBX     ``FBX_SCALE_ALL``    Y up, front +Z; UnitScaleFactor 100 (1 unit = 1 m)
unreal     FBX     ``FBX_SCALE_ALL``    Y up, front +Z; UnitScaleFactor 100 (1 unit = 1 m)
godot      FBX     ``FBX_SCALE_UNITS``  Y up, front +Z; UnitScaleFactor 100 (1 unit = 1 m)
blender    FBX     ``FBX_SCALE_NONE``   Y up, front +Z; UnitScaleFactor 1 (cm), node scale 100
gltf       GLB     (glTF is metres)     Y up, front +Z, metres
bvh        BVH     global_scale 1       Y up, front +Z, metres (skeleton only)
=========  ======  ===================  ==============================================

Every preset maps Blender world ``(X, Y, Z)`` to the file's ``(X, Z, -Y)``
(``BLENDER_TO_FILE``): Y up, and a character facing Blender's front (-Y)
faces +Z in the file, which Unity shows facing +Z (its forward), Unreal as
+Y (the UE mannequin's facing; UE turns FBX Y-up into its Z-up) and Godot /
glTF as +Z (the glTF/Godot model front). Why each setting is what it is:
``PRESETS[name].why``.

Settings common to all FBX presets (and why):

* ``axis_forward='-Z', axis_up='Y'``: Blender's defaults; the FBX header
  says Y-up and the armature node carries the -90 deg X turn, which Unity
  (2020.1+ "Bake Axis Conversion"), Unreal and Godot (ufbx) all read.
* ``add_leaf_bones=False``: otherwise a ``<bone>_end`` bone is appended to
  every chain (55 -> 55 + leaves), which breaks Humanoid/retarget maps.
* ``use_armature_deform_only=True``: only the 55 deform bones (all of the
  rig's bones are deform bones; helper bones a user adds are dropped).
* ``bake_anim=True``, ``bake_anim_simplify_factor=0.0``: every frame keyed
  and no curve simplification (the default 1.0 is lossy and is a known
  source of foot jitter); ``bake_anim_use_all_bones=True`` (UE wants a curve
  on every bone); ``bake_anim_force_startend_keying=True``.
* ``bake_anim_use_nla_strips=False``, ``bake_anim_use_all_actions=False``:
  one animation stack with exactly the exported take (the export bakes the
  take the scene plays into a fresh action on a copy of the rig).
* ``object_types={'ARMATURE','MESH'}``: no camera or lights.
* ``use_mesh_modifiers=False`` and only an Armature modifier on the body:
  any other modifier makes the exporter evaluate the mesh and drop all
  shape keys; the copy keeps the shape keys (``Exp000``..``Exp009``, and
  ``Shape``/``Pose`` keys if the rig has them) as FBX blend-shape channels.
* ``mesh_smooth_type='FACE'``: smoothing groups, so Unity/UE do not warn.
* ``bake_space_transform=False``: Blender marks it broken with armatures.
* ``primary_bone_axis='Y', secondary_bone_axis='X'``: Blender's bone axes;
  engines re-derive bone orientation from the bind pose.
* Armature object named exactly ``Armature`` for every FBX preset (the copy
  is renamed; a user object with that name is renamed back afterwards):
  Unreal (4.24+) then does not add an extra root bone above ``pelvis``; the
  other importers just see a node named ``Armature``.

Scale: Blender works in metres. ``FBX_SCALE_NONE`` writes UnitScaleFactor 1
(1 unit = 1 cm) with a scale of 100 on the armature node; ``FBX_SCALE_UNITS``
and ``FBX_SCALE_ALL`` write UnitScaleFactor 100 (1 unit = 1 m) with node
scale 1 (no scaled armature: Unity shows "1m (File)", Unreal's Send2UE
validation wants scale 1, Godot's FBXDocument docs ask for "FBX Units
Scale"). An importer that applies UnitScaleFactor gets metres either way;
``ExportPreset.file_scale`` is the node-hierarchy scale a reader that does not
apply it (assimp) sees: 1 for the engine presets, 100 for ``blender``.

Root motion (``ROOT_MODES``)
----------------------------
* ``camera``: as estimated, in the camera frame (Blender world = (x, z, -y)
  of the OpenCV camera): the body is where the camera saw it.
* ``grounded`` (default): one rigid motion for the whole take: a turn about
  the vertical axis so the body faces Blender's front (-Y, i.e. the
  engine's forward after the axis mapping) at the first frame, and a
  translation that puts the pelvis over the origin and the lowest foot
  point (ankle/foot joints and foot vertices) on the floor (Z = 0) at the
  first frame. Root motion is kept.
* ``in_place``: ``grounded``, then the horizontal root (pelvis) motion
  removed: the pelvis stays over the origin; vertical motion is kept.

Bind pose (every preset, every root mode): the copy's rest skeleton and body are
moved to stand on the floor at the origin, facing Blender's front (the engine's
forward), and the file is written while the copy sits on a frame outside the
exported range with every bone at rest and every shape key 0, so the file's own
pose and blend-shape weights are that bind pose with a neutral face. The first
key is at time 0 in every format.

``rest_frame=True`` adds frame ``frame_start - 1`` with the bind pose
(every bone at rest, expression 0), standing on the floor for ``grounded``
and ``in_place``: engines that need a reference pose get one.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ROOT_MODES = ("grounded", "camera", "in_place")
FORMATS = ("FBX", "GLB", "BVH", "USD")

# Blender world (X, Y, Z) -> file (X, Z, -Y): Y up, Blender's front (-Y) -> +Z.
BLENDER_TO_FILE = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

FOOT_JOINTS = ("left_ankle", "right_ankle", "left_foot", "right_foot")
HIP_JOINTS = ("left_hip", "right_hip")
ROOT_JOINT = "pelvis"


@dataclass(frozen=True)
class ExportPreset:
    """One export preset: the Blender operator options and what the file looks like."""

    name: str
    format: str                 # FBX, GLB or BVH
    suffix: str                 # output file suffix
    options: dict               # keyword arguments of Blender's exporter operator
    file_scale: float           # node-hierarchy units per metre (UnitScaleFactor not applied)
    mesh: bool                  # the body mesh and its shape keys are in the file
    rename_armature: str | None  # armature object name at export time
    summary: str
    why: dict = field(default_factory=dict)      # option -> reason
    engine_steps: str = ""
    # The rig's Pose* corrective shape keys (486) go into the file unless asked otherwise
    # (--pose-correctives): off for the game presets (71 MB FBX for 48 frames with them).
    pose_correctives: bool = False


_FBX_COMMON = {
    "use_selection": False,
    "use_visible": False,
    "use_active_collection": False,
    "object_types": {"ARMATURE", "MESH"},
    "axis_forward": "-Z",
    "axis_up": "Y",
    "global_scale": 1.0,
    "apply_unit_scale": True,
    "bake_space_transform": False,
    "use_mesh_modifiers": False,
    "mesh_smooth_type": "FACE",
    "use_tspace": False,
    "use_custom_props": False,
    "add_leaf_bones": False,
    "primary_bone_axis": "Y",
    "secondary_bone_axis": "X",
    "use_armature_deform_only": True,
    "armature_nodetype": "NULL",
    "bake_anim": True,
    "bake_anim_use_all_bones": True,
    "bake_anim_use_nla_strips": False,
    "bake_anim_use_all_actions": False,
    "bake_anim_force_startend_keying": True,
    "bake_anim_step": 1.0,
    "bake_anim_simplify_factor": 0.0,
    "path_mode": "AUTO",
    "embed_textures": False,
    "batch_mode": "OFF",
}

_FBX_WHY = {
    "axis_forward/axis_up": "-Z / Y (Blender's defaults): Y-up file, a character facing Blender's "
                            "-Y faces +Z; Unity, Unreal and Godot (ufbx) read the axis header",
    "add_leaf_bones": "False: no '<bone>_end' bones appended to every chain",
    "use_armature_deform_only": "True: exactly the 55 SMPL-X deform bones",
    "bake_anim": "True with bake_anim_simplify_factor 0.0 and step 1: a key on every frame, "
                 "lossless (the default simplify 1.0 drops keys and makes feet jitter)",
    "bake_anim_use_all_bones": "True: a curve on every bone (UE wants it)",
    "bake_anim_use_nla_strips/all_actions": "False: one animation stack, the exported take",
    "use_mesh_modifiers": "False, and only the Armature modifier on the copy's body: any other "
                          "modifier makes the exporter drop every shape key",
    "mesh_smooth_type": "FACE: smoothing groups written, no engine warnings",
    "bake_space_transform": "False: Blender documents it as broken with armatures",
    "object_types": "ARMATURE and MESH: no camera",
    "armature name": "'Armature' at export time (on the copy): Unreal 4.24+ then adds no extra "
                     "root bone above 'pelvis'",
    "frame range / fps": "the scene's frame range (the take) and fps / fps_base",
}


def _fbx(name, scale_option, summary, why, steps, file_scale=1.0, pose_correctives=False):
    opts = dict(_FBX_COMMON, apply_scale_options=scale_option)
    return ExportPreset(name=name, format="FBX", suffix=".fbx", options=opts,
                        file_scale=file_scale, mesh=True, rename_armature="Armature",
                        summary=summary, why=dict(_FBX_WHY, **why), engine_steps=steps,
                        pose_correctives=pose_correctives)


PRESETS: dict[str, ExportPreset] = {}

PRESETS["unity"] = _fbx(
    "unity", "FBX_SCALE_ALL",
    "FBX for Unity: metres in the header (UnitScaleFactor 100: 1 unit = 1 m; Unity shows "
    "'1m (File)'), no scaled armature",
    {"apply_scale_options": "FBX_SCALE_ALL: UnitScaleFactor 100 and scale 1 on the armature "
                            "node, so Unity's 'Convert Units' gives 1 m = 1 unit without a "
                            "100x object scale"},
    "Drop the .fbx into Assets/. Model tab: Scale Factor 1, Convert Units on, Bake Axis "
    "Conversion on (Unity 2020.1+), Import BlendShapes on. Rig tab: Animation Type Humanoid, "
    "Avatar Definition 'Create From This Model', Configure... and check the automatic bone "
    "map (pelvis=Hips, spine1..3=Spine/Chest/UpperChest, left_hip=LeftUpperLeg, ...). "
    "Animation tab: the clip named after the take; Root Transform Position (Y) 'Based Upon: "
    "Feet' for grounded takes; Loop Time as needed.")
PRESETS["unreal"] = _fbx(
    "unreal", "FBX_SCALE_ALL",
    "FBX for Unreal Engine: metres in the header, the same as unity (UnitScaleFactor 100: 1 "
    "unit = 1 m; UE converts to its own units on import), armature object named 'Armature' "
    "(no extra root)",
    {"apply_scale_options": "FBX_SCALE_ALL: UnitScaleFactor 100 (1 unit = 1 m) and no 100x "
                            "scale on the armature node (Send2UE validates scale 1); UE reads "
                            "the unit scale and converts to centimetres, its unit"},
    "Content Browser > Import > the .fbx. Skeletal Mesh on, Skeleton: none (creates one), "
    "Import Morph Targets on, Import Animations on, Import Uniform Scale 1.0, Convert Scene "
    "on, Force Front XAxis off. The skeleton's root is 'pelvis' (the 'Armature' node is "
    "dropped by UE 4.24+). For root motion, enable Root Motion on the anim sequence; "
    "retarget to the UE mannequin with an IK Retargeter.")
PRESETS["godot"] = _fbx(
    "godot", "FBX_SCALE_UNITS",
    "FBX for Godot 4.3+ (ufbx importer): 'FBX Units Scale' as Godot's docs ask "
    "(UnitScaleFactor 100: 1 unit = 1 m)",
    {"apply_scale_options": "FBX_SCALE_UNITS: what Godot's FBXDocument docs ask for Blender "
                            "exports (UnitScaleFactor 100, node scale 1)"},
    "Godot 4.3+: copy the .fbx into the project (native ufbx importer; 'Experimental' in "
    "4.3). Advanced Import Settings: Skeleton3D > Retarget > Bone Map: new BoneMap with "
    "SkeletonProfileHumanoid, check the automatic mapping; the animation (named after the "
    "take) is in the "
    "AnimationPlayer; blend shapes are on the MeshInstance3D. Godot 4.2 and older need "
    "FBX2glTF: prefer the 'gltf' preset there.")
PRESETS["blender"] = _fbx(
    "blender", "FBX_SCALE_NONE",
    "FBX for a Blender round trip (Blender's own defaults: FBX Scale None; UnitScaleFactor "
    "1: 1 unit = 1 cm, armature node scale 100)",
    {"apply_scale_options": "FBX_SCALE_NONE: Blender's default, which Blender's importer "
                            "undoes exactly (UnitScaleFactor 1 cm, scale 100 on the node)"},
    "Blender: File > Import > FBX with the default options (Automatic Bone Orientation off).",
    file_scale=100.0, pose_correctives=True)

PRESETS["gltf"] = ExportPreset(
    name="gltf", format="GLB", suffix=".glb",
    options={
        "export_format": "GLB",
        "use_selection": False, "use_visible": False, "use_active_collection": False,
        "use_active_scene": True,
        "export_yup": True, "export_apply": False, "export_cameras": False,
        "export_lights": False,
        "export_skins": True, "export_def_bones": True, "export_leaf_bone": False,
        "export_all_influences": False,
        "export_morph": True, "export_morph_normal": False, "export_morph_tangent": False,
        "export_morph_animation": True,
        "export_animations": True, "export_animation_mode": "SCENE",
        "export_force_sampling": True, "export_frame_range": True, "export_frame_step": 1,
        "export_optimize_animation_size": False, "export_anim_single_armature": True,
        "export_anim_scene_split_object": False, "export_anim_slide_to_zero": True,
        "export_reset_pose_bones": True, "export_current_frame": False,
        "export_rest_position_armature": True, "export_negative_frame": "SLIDE",
        "export_bake_animation": False,
    },
    file_scale=1.0, mesh=True, rename_armature="Armature",
    summary="binary glTF 2.0 (Godot, three.js, Unity with glTFast, Unreal glTF importer)",
    why={
        "export_yup": "True: glTF is Y-up by definition (Blender -Y front -> +Z, glTF's front)",
        "scale": "none: glTF is metres by definition",
        "export_def_bones": "True: deform bones only (all 55), no leaf bones",
        "export_morph/export_morph_animation": "True: Exp/Shape/Pose keys become morph "
                                               "targets with animated weights",
        "export_morph_normal": "False: smaller file; engines recompute normals",
        "export_animation_mode": "SCENE: one animation of the scene timeline (the baked take)",
        "export_anim_scene_split_object": "False: ONE animation named after the take, with the "
                                          "bone channels and the morph weights together "
                                          "(three.js plays animations[0]; Blender's importer "
                                          "plays one animation)",
        "export_anim_slide_to_zero": "True: the first key at time 0 (the copy's scene starts "
                                     "at frame 1; frame 0 holds the neutral bind-pose weights)",
        "use_active_scene": "True: only the export's scene (not every scene of the file)",
        "export_force_sampling/export_optimize_animation_size": "True / False: every frame "
                                                                "sampled, nothing dropped",
        "export_frame_range": "True: the scene's frame range (the take)",
        "export_apply": "False: modifiers are not applied (that would drop the morph targets)",
    },
    engine_steps="Godot (any 4.x): copy the .glb into the project; Advanced Import Settings > "
                 "Skeleton3D > Retarget for a humanoid bone map. Blender: File > Import > glTF.")

PRESETS["bvh"] = ExportPreset(
    name="bvh", format="BVH", suffix=".bvh",
    options={"global_scale": 1.0, "rotate_mode": "ZXY", "root_transform_only": False},
    file_scale=1.0, mesh=False, rename_armature=None,
    summary="BVH skeleton animation, Y up, metres (no mesh, no face)",
    why={
        "axes": "the copy's rest skeleton is turned to Y-up before export (Blender's BVH "
                "exporter writes armature space as it is): Blender's BVH importer with its "
                "default Y-up setting and other tools read it standing",
        "global_scale": "1.0: metres (set the importer's scale for centimetre tools)",
        "rotate_mode": "ZXY: the most common BVH channel order",
        "root_transform_only": "False: every joint has position channels, so the expression-"
                               "driven joint offsets (jaw) survive",
    },
    engine_steps="Blender: File > Import > Motion Capture (.bvh), defaults (Forward -Z, Up Y).")


# USD (UsdSkel) through Blender's wm.usd_export; retarget/blender/usd.py, tests/blender/test_usd.py.
PRESETS["usd"] = ExportPreset(
    name="usd", format="USD", suffix=".usd",
    options={
        "selected_objects_only": False, "visible_objects_only": False,
        "export_animation": True, "export_armatures": True, "only_deform_bones": True,
        "export_shapekeys": True, "export_meshes": True, "export_hair": False,
        "export_uvmaps": True, "export_normals": True, "export_materials": False,
        "generate_preview_surface": False, "export_textures": False,
        "export_lights": False, "export_cameras": False, "export_curves": False,
        "export_points": False, "export_volumes": False, "convert_world_material": False,
        "export_subdivision": "IGNORE", "use_instancing": False,
        "export_custom_properties": False, "triangulate_meshes": False,
        "convert_orientation": True, "export_global_forward_selection": "NEGATIVE_Z",
        "export_global_up_selection": "Y", "xform_op_mode": "TRS",
        "root_prim_path": "/root", "convert_scene_units": "METERS", "meters_per_unit": 1.0,
    },
    file_scale=1.0, mesh=True, rename_armature="Armature",
    summary="USD (UsdSkel: skeleton, skinned mesh, joint animation, blend-shape weights), "
            "Y up, metres (Omniverse, Apple's tools, Houdini)",
    why={
        "convert_orientation": "True, forward -Z, up Y: upAxis Y and Blender (X, Y, Z) -> "
                               "(X, Z, -Y) like the other presets",
        "export_armatures/only_deform_bones": "True: a UsdSkel Skeleton of the 55 deform bones",
        "export_shapekeys": "True: shape keys become UsdSkel blend shapes with animated weights",
        "export_animation": "True: one SkelAnimation, a time sample per frame of the take "
                            "(timeCodesPerSecond = the take's fps)",
        "export_materials": "False: the body has no material worth exporting",
        "lights/cameras/curves/points/volumes": "False: the character only",
        "convert_scene_units": "METERS (metersPerUnit 1)",
    },
    engine_steps="Omniverse / usdview: open the .usd; Houdini: LOP 'Sublayer' or SOP 'USD "
                 "Character Import'; Apple Reality Composer / Preview read it as is; Blender: "
                 "File > Import > USD.")

def preset(name: str) -> ExportPreset:
    """The preset called ``name`` (case-insensitive); ``KeyError`` with the valid names."""
    p = PRESETS.get(str(name).lower())
    if p is None:
        raise KeyError(f"unknown export preset {name!r}; choose one of {', '.join(PRESETS)}")
    return p


def blender_to_file(points, preset_or_scale) -> np.ndarray:
    """Blender world points ``(..., 3)`` (metres) -> the file's coordinates and units."""
    scale = (preset_or_scale.file_scale if isinstance(preset_or_scale, ExportPreset)
             else float(preset_or_scale))
    return np.asarray(points, dtype=np.float64) @ BLENDER_TO_FILE.T * scale


# --------------------------------------------------------------------------- root motion

def _rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def facing_direction(left_hip, right_hip) -> np.ndarray:
    """Horizontal unit vector the body faces: ``(left - right) x up`` (Blender, Z up).

    A rest rig (left hip at +X) faces -Y. ``(..., 3)`` -> ``(..., 3)``.
    """
    side = np.asarray(left_hip, np.float64) - np.asarray(right_hip, np.float64)
    fwd = np.cross(side, np.array([0.0, 0.0, 1.0]))
    fwd[..., 2] = 0.0
    n = np.linalg.norm(fwd, axis=-1, keepdims=True)
    if np.any(n < 1e-9):
        raise ValueError("the hips are vertical: no facing direction")
    return fwd / n


def grounding_transform(root, left_hip, right_hip, foot_points,
                        front=(0.0, -1.0, 0.0)) -> np.ndarray:
    """The rigid motion (4x4) that grounds a take, from its first frame (Blender world).

    Turn about Z so the hips face ``front`` (Blender's -Y), move the root
    (pelvis) over the origin and the lowest of ``foot_points (N, 3)`` to Z = 0.
    """
    f = facing_direction(left_hip, right_hip)
    target = np.asarray(front, np.float64)
    angle = np.arctan2(target[1], target[0]) - np.arctan2(f[1], f[0])
    R = _rot_z(angle)
    root = np.asarray(root, np.float64)
    feet = np.asarray(foot_points, np.float64).reshape(-1, 3)
    M = np.eye(4)
    M[:3, :3] = R
    r = R @ root
    M[:3, 3] = [-r[0], -r[1], -(feet @ R.T)[:, 2].min()]
    return M


def root_transforms(mode: str, root_positions, left_hip, right_hip, foot_points) -> np.ndarray:
    """Per-frame world transforms ``(T, 4, 4)`` that implement a root mode.

    root_positions ``(T, 3)``: the root (pelvis) in Blender world per frame;
    ``left_hip``, ``right_hip`` and ``foot_points (N, 3)``: at the first frame.
    The exported rig's world pose at frame t is ``W[t] @`` the scene's.
    """
    if mode not in ROOT_MODES:
        raise ValueError(f"unknown root mode {mode!r}; choose one of {', '.join(ROOT_MODES)}")
    P = np.asarray(root_positions, np.float64).reshape(-1, 3)
    T = P.shape[0]
    W = np.repeat(np.eye(4)[None], T, axis=0)
    if mode == "camera":
        return W
    G = grounding_transform(P[0], left_hip, right_hip, foot_points)
    W[:] = G
    if mode == "in_place":
        moved = (P - P[0]) @ G[:3, :3].T
        W[:, 0, 3] -= moved[:, 0]
        W[:, 1, 3] -= moved[:, 1]
    return W


def rebase_root(rest_root: np.ndarray, basis: np.ndarray, world: np.ndarray) -> np.ndarray:
    """New root ``matrix_basis`` so the root's armature-space matrix becomes ``world @`` old.

    rest_root ``(4, 4)`` (``bone.matrix_local``), basis ``(T, 4, 4)`` (the root's
    ``matrix_basis`` per frame), world ``(T, 4, 4)`` rigid. -> ``(T, 4, 4)``.
    Children are parent-relative, so only the root changes.
    """
    rest_inv = np.linalg.inv(rest_root)
    return rest_inv @ world @ rest_root @ basis
