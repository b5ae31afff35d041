# SPDX-License-Identifier: GPL-3.0-or-later
"""The sidebar's settings, stored per scene (``scene.p2p_mocap``)."""
from __future__ import annotations

import math

import bpy

from ..common import options as opt
from ..estimator.options import PRECISIONS
from ..estimator.registry import DEFAULT_ESTIMATOR, ESTIMATORS
from ..retarget.export_presets import PRESETS, ROOT_MODES
from ..retarget.cleanup.clean import CleanOptions
from ..retarget.options import ConvertOptions
from ..retarget.smoothing import Smoothing

_SMOOTHING = Smoothing()   # the defaults of the smoothing properties (the CLI's too)
_CLEAN = CleanOptions()    # the defaults of the clean-up properties (the CLI's too)
_CLEAN_ON = ConvertOptions().clean is not None   # the clean-up on by default, as convert's

# Ranges: the same as the CLI's options and the worker's requests (common.options).
_FRAME_MAX = opt.MAX_FRAME_NUMBER  # (also IntProperty's own maximum)

SOURCE_ITEMS = (
    ('MOVIE', "Movie File", "A video file (mp4, mov, mkv, avi, webm, …)", 'FILE_MOVIE', 0),
    ('FOLDER', "Image Sequence", "A folder of images, in natural order (2.png before 10.png)",
     'FILE_FOLDER', 1),
    ('FILES', "Image Files", "One or more image files (one take row per image)", 'FILE_IMAGE', 2),
    ('CLIP', "Movie Clip", "A Movie Clip datablock of this file (its movie or image sequence)",
     'TRACKER', 3),
    ('IMAGE_EDITOR', "Image Editor", "The image shown in an Image Editor of this screen",
     'IMAGE_DATA', 4),
)
PERSON_ITEMS = (
    ('AUTO', "Auto", "The largest, most central person when someone is first seen", 0),
    ('ALL', "All", "Everyone: one take and one rig per person", 1),
    ('NUMBER', "Number", "One person by number (from 1, left to right where first seen)", 2),
)
DEVICE_ITEMS = (
    ('PREFS', "Preferences", "Use the device set in the add-on preferences", 0),
    ('auto', "Auto", "The CUDA GPU when PyTorch sees one, else the CPU", 1),
    ('cpu', "CPU", "The processor (about 3.5 frames/s on 2 cores)", 2),
    ('cuda', "CUDA GPU", "An NVIDIA GPU through PyTorch", 3),
)
# The CLI's --precision choices (estimator.options.PRECISIONS)
_PRECISION_TEXT = {
    "fp32": ("FP32", "Full precision: the reference numerics (the default)"),
    "bf16": ("BF16", "bfloat16 backbones: faster on recent GPUs, slightly different numbers"),
    "fp16": ("FP16", "float16 backbones: faster on GPUs, slightly different numbers"),
    "auto": ("Auto", "BF16 where the processor or GPU has it natively, else FP32"),
}
PRECISION_ITEMS = [(p, *_PRECISION_TEXT.get(p, (p.upper(), p)), i)
                   for i, p in enumerate(PRECISIONS)]
# The estimators the worker knows (estimator.registry; the worker checks the name again).
ESTIMATOR_ITEMS = [(name, e.label, e.description[:200], i)
                   for i, (name, e) in enumerate(ESTIMATORS.items())]
METHOD_ITEMS = (
    ('butterworth', "Butterworth", "Order 2, forwards and backwards (zero phase)", 0),
    ('savgol', "Savitzky–Golay", "Polynomial fit in a sliding window", 1),
    ('gaussian', "Gaussian", "Gaussian window; no overshoot", 2),
    ('none', "None", "Raw network output, no smoothing", 3),
    ('one_euro', "One Euro", "Adaptive: steady when slow, responsive when fast (the cutoffs "
     "are its floor); the default, chosen by the clean-up's bench", 4),
)


PRESET_ITEMS = [(name, {"gltf": "glTF", "bvh": "BVH"}.get(name, name.capitalize()),
                 (p.summary or name)[:200], i) for i, (name, p) in enumerate(PRESETS.items())]


def _smoothing_changed(self, context):
    """Re-solve the selected take live with the smoothing and clean-up settings (from its
    stored raw take; no re-inference)."""
    if not self.live_smoothing:
        return
    from .qa_ui import resolve_selected

    try:
        msg = resolve_selected(context, self)
        self.smoothing_message = msg
    except Exception as exc:  # noqa: BLE001 -- shown in the panel, never a silent failure
        self.smoothing_message = f"Smoothing failed: {exc}"


class P2P_ImagePath(bpy.types.PropertyGroup):
    path: bpy.props.StringProperty(name="Image", description="An image file", subtype='FILE_PATH')


class P2P_MocapSettings(bpy.types.PropertyGroup):
    source_type: bpy.props.EnumProperty(
        name="Source", items=SOURCE_ITEMS, default='MOVIE',
        description="Where the footage comes from")
    movie_path: bpy.props.StringProperty(
        name="Movie", subtype='FILE_PATH', description="The video file to estimate")
    folder_path: bpy.props.StringProperty(
        name="Folder", subtype='DIR_PATH', description="A folder of images (an image sequence)")
    image_files: bpy.props.CollectionProperty(
        type=P2P_ImagePath, name="Image Files",
        description="The image files to estimate, in order (Choose… fills this list)")
    clip: bpy.props.PointerProperty(
        name="Clip", type=bpy.types.MovieClip,
        description="The Movie Clip to estimate (its file: a movie or an image sequence)")
    frame_start: bpy.props.IntProperty(
        name="Start", default=0, min=0, max=_FRAME_MAX,
        description="First footage frame to estimate, counted from 0")
    frame_end: bpy.props.IntProperty(
        name="End", default=0, min=0, max=_FRAME_MAX,
        description="Footage frame to stop before (excluded); 0 = to the end")
    frame_step: bpy.props.IntProperty(
        name="Stride", default=1, min=1, max=_FRAME_MAX, soft_max=10,
        description="Estimate every N-th frame (the take's frame rate is divided by N)")
    person_mode: bpy.props.EnumProperty(
        name="Person", items=PERSON_ITEMS, default='AUTO', description="Whom to estimate")
    person_number: bpy.props.IntProperty(
        name="Number", default=1, min=int(opt.PERSON.low), max=int(opt.PERSON.high),
        description="The person's number (from 1, left to right where first seen)")
    estimator: bpy.props.EnumProperty(
        name="Estimator", items=ESTIMATOR_ITEMS, default=DEFAULT_ESTIMATOR,
        description="The pose estimator that turns the footage into a take")
    device: bpy.props.EnumProperty(
        name="Device", items=DEVICE_ITEMS, default='PREFS',
        description="Where the network runs")
    precision: bpy.props.EnumProperty(
        name="Precision", items=PRECISION_ITEMS, default=PRECISIONS[0],
        description="Numeric precision of the network's backbones (as the CLI's --precision)")
    use_fov: bpy.props.BoolProperty(
        name="Field of View", default=False,
        description="Set the camera's horizontal field of view (else 60° across the longer "
                    "image side, typical of phones and webcams)")
    fov: bpy.props.FloatProperty(
        name="Field of View", default=1.0472, min=math.radians(opt.FOV.low),
        max=math.radians(opt.FOV.high), subtype='ANGLE',
        description="Horizontal field of view of the camera that filmed the footage; only "
                    "the distance to the camera depends on it")
    output_dir: bpy.props.StringProperty(
        name="Take Folder", subtype='DIR_PATH',
        description="Where take files are written; empty = a 'takes' folder in the add-on's "
                    "data folder")
    pose_correctives: bpy.props.BoolProperty(
        name="Pose Correctives", default=True,
        description="Add the 486 SMPL-X pose-corrective shape keys (exact body surface; "
                    "heavier, turn off for game rigs)")
    live_smoothing: bpy.props.BoolProperty(
        name="Live", default=True,
        description="Re-apply the smoothing to the selected take whenever a value changes "
                    "(no re-estimation)")
    smooth_method: bpy.props.EnumProperty(
        name="Filter", items=METHOD_ITEMS, default=_SMOOTHING.method, update=_smoothing_changed,
        description="Zero-phase smoothing filter applied to the estimated motion")
    smooth_root: bpy.props.FloatProperty(
        name="Root", default=_SMOOTHING.root_hz or 0.0, min=0.0, max=opt.CUTOFF_HZ.high,
        soft_max=15.0, unit='NONE',
        update=_smoothing_changed,
        description="Cutoff in Hz for the root position (0 = raw)")
    smooth_body: bpy.props.FloatProperty(
        name="Body", default=_SMOOTHING.body_hz or 0.0, min=0.0, max=opt.CUTOFF_HZ.high,
        soft_max=15.0,
        update=_smoothing_changed,
        description="Cutoff in Hz for the body rotations (0 = raw)")
    smooth_hands: bpy.props.FloatProperty(
        name="Hands", default=_SMOOTHING.hands_hz or 0.0, min=0.0, max=opt.CUTOFF_HZ.high,
        soft_max=15.0,
        update=_smoothing_changed,
        description="Cutoff in Hz for the fingers (0 = raw)")
    smooth_face: bpy.props.FloatProperty(
        name="Face", default=_SMOOTHING.face_hz or 0.0, min=0.0, max=opt.CUTOFF_HZ.high,
        soft_max=15.0,
        update=_smoothing_changed,
        description="Cutoff in Hz for jaw, eyes and expression (0 = raw)")
    smooth_beta: bpy.props.FloatProperty(
        name="Beta", default=_SMOOTHING.one_euro_beta, min=opt.ONE_EURO_BETA.low,
        max=opt.ONE_EURO_BETA.high, soft_max=10.0, update=_smoothing_changed,
        description="One Euro speed coefficient: how fast the cutoff opens with speed")
    clean_enabled: bpy.props.BoolProperty(
        name="Clean-Up", default=_CLEAN_ON, update=_smoothing_changed,
        description="Clean the motion (QA fixes, smoothing, ground, foot locking), re-solved "
                    "from the take's stored raw data; the raw take is never changed")
    clean_foot_lock: bpy.props.BoolProperty(
        name="Foot Locking", default=_CLEAN.foot_lock, update=_smoothing_changed,
        description="Keep a foot where its ground contact began (two-bone leg IK), and the "
                    "root from drifting while both feet are planted")
    clean_penetration_fix: bpy.props.BoolProperty(
        name="Above Ground", default=_CLEAN.penetration_fix, update=_smoothing_changed,
        description="Keep the feet from going below the estimated ground")
    clean_contact_height: bpy.props.FloatProperty(
        name="Contact Height", default=_CLEAN.contact_height, min=opt.CONTACT_HEIGHT.low,
        max=opt.CONTACT_HEIGHT.high, soft_max=0.2, unit='LENGTH', update=_smoothing_changed,
        description="How far above the ground a heel or toe may be to start a contact (m)")
    clean_contact_speed: bpy.props.FloatProperty(
        name="Contact Speed", default=_CLEAN.contact_speed, min=opt.CONTACT_SPEED.low,
        max=opt.CONTACT_SPEED.high, soft_max=3.0, update=_smoothing_changed,
        description="How fast a heel or toe may move to start a contact (m/s)")
    clean_min_contact: bpy.props.IntProperty(
        name="Shortest Contact", default=_CLEAN.min_contact_frames,
        min=int(opt.MIN_CONTACT.low), max=int(opt.MIN_CONTACT.high), soft_max=30,
        update=_smoothing_changed, description="Fewest frames a contact lasts")
    clean_lock_blend: bpy.props.IntProperty(
        name="Lock Blend", default=_CLEAN.blend_frames, min=int(opt.LOCK_BLEND.low),
        max=int(opt.LOCK_BLEND.high), soft_max=20, update=_smoothing_changed,
        description="Frames to blend a foot lock in and out")
    clean_fix_flags: bpy.props.StringProperty(
        name="Fix Flags", default="", update=_smoothing_changed,
        description="QA flags repaired before filtering, KIND=FIX pairs (FIX: interpolate, "
                    "refilter or invalidate), e.g. wrist_flip=interpolate,dropout=interpolate; "
                    "the QA list's Fix adds to it")
    smoothing_message: bpy.props.StringProperty(
        name="Smoothing Result", options={'SKIP_SAVE'},
        description="What the last smoothing change did")
    export_preset: bpy.props.EnumProperty(
        name="Preset", items=PRESET_ITEMS, description="Target engine or format")
    export_root: bpy.props.EnumProperty(
        name="Root Motion", default='grounded',
        items=[(m, m.replace("_", " ").capitalize(), {
            "grounded": "Facing the engine's forward, pelvis over the origin, feet on the floor",
            "camera": "As estimated, in the camera's frame",
            "in_place": "Grounded, with horizontal pelvis motion removed"}[m], i)
               for i, m in enumerate(ROOT_MODES)],
        description="How the root moves in the exported file")
    export_rest_frame: bpy.props.BoolProperty(
        name="Rest Frame", default=False,
        description="Add the bind pose one frame before the take")


CLASSES = (P2P_ImagePath, P2P_MocapSettings)
