# SPDX-License-Identifier: GPL-3.0-or-later
"""The take's camera (with the footage behind it) and the scene's frame rate and range.

Blender world = ``(x, z, -y)`` of the take's camera frame: the camera object
sits at the origin looking along +Y with +Z up. Its lens, shift and the
render resolution reproduce the take's intrinsics (``retarget.camera``), so
the body lines up with the footage seen through it. The footage is the
camera's background image (a movie clip, an image sequence, or one image)
when the take's ``source`` exists; otherwise there is no background and the
returned note says why. Background images show in the viewport and in
viewport renders; for final renders composite the render over the footage.

Timing: Blender frame = ``1 + frame_index - frame_index[0]``, scene fps =
the take's fps (``fps / fps_base``, e.g. 30 / 1.001 for 29.97), so footage
frame k is shown at Blender frame ``1 + k - frame_index[0]`` even when the
take skipped frames.
"""
from __future__ import annotations

import re
from pathlib import Path

import bpy
import numpy as np

from ..camera import blender_camera, default_intrinsics, scene_fps
from ..take import Take

MOVIE_EXTENSIONS = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv",
                    ".flv", ".mts", ".m2ts", ".ogv", ".mxf"}
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".exr", ".webp", ".tga"}


def set_scene_timing(scene, take: Take) -> tuple[int, int]:
    """Scene fps, frame range 1 .. 1 + frame_index[-1] - frame_index[0]; returns the range."""
    fps, base = scene_fps(take.fps)
    scene.render.fps = fps
    scene.render.fps_base = base
    end = 1 + int(take.frame_index[-1] - take.frame_index[0])
    scene.frame_start = 1
    scene.frame_end = max(end, 1)
    scene.frame_current = 1
    return 1, end


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


def _trailing_number(path: Path) -> int | None:
    m = re.search(r"(\d+)$", path.stem)
    return int(m.group(1)) if m else None


def attach_footage(cam_obj, take: Take) -> str:
    """Put the take's footage behind the camera; returns a one-line note of what happened."""
    src = take.source.strip()
    if not src:
        return "no footage: the take names no source"
    path = Path(src).expanduser()
    if not path.exists():
        return f"no footage: {path} does not exist"
    cam = cam_obj.data
    first = int(take.frame_index[0])
    try:
        if path.is_file() and path.suffix.lower() in MOVIE_EXTENSIONS:
            clip = bpy.data.movieclips.load(str(path))
            clip.frame_start = 1
            clip.frame_offset = first
            bg = cam.background_images.new()
            bg.source = 'MOVIE_CLIP'
            bg.clip = clip
            what = f"movie clip {path.name}"
        else:
            files = _image_files(path) if path.is_dir() else [path]
            if not files or files[0].suffix.lower() not in IMAGE_EXTENSIONS:
                return f"no footage: {path} is neither a movie nor images"
            img = bpy.data.images.load(str(files[0]), check_existing=True)
            bg = cam.background_images.new()
            bg.source = 'IMAGE'
            bg.image = img
            number = _trailing_number(files[0])
            if len(files) > 1 or (path.is_file() and take.num_frames > 1 and number is not None):
                img.source = 'SEQUENCE'
                iu = bg.image_user
                iu.frame_start = 1
                # Blender shows file number (frame - frame_start + 1 + offset).
                iu.frame_offset = (number or 0) + first - 1
                count = len(files) if path.is_dir() else take.num_frames
                iu.frame_duration = max(1, count - first)
                iu.use_auto_refresh = True
                what = f"image sequence from {files[0].name}"
            else:
                what = f"image {files[0].name}"
    except RuntimeError as exc:  # Blender could not read the file
        return f"no footage: Blender cannot read {path} ({exc})"
    bg.alpha = 1.0
    bg.display_depth = 'BACK'
    bg.frame_method = 'FIT'
    cam.show_background_images = True
    return f"footage: {what}"


def create_camera(scene, take: Take, name: str = "Take camera", collection=None):
    """The take's camera at the origin (looking along +Y, Z up); made the scene camera.

    Returns ``(camera object, notes)``.
    """
    notes = []
    if take.image_size is None:
        size = (1920, 1080)
        notes.append("no image size in the take: 1920x1080 assumed")
    else:
        size = tuple(int(v) for v in take.image_size)
    if take.focal is None or take.princpt is None:
        focal, princpt = default_intrinsics(size)
        notes.append("no camera intrinsics in the take: a 53 deg horizontal view is assumed")
    else:
        focal, princpt = take.focal, take.princpt
    bc = blender_camera(focal, princpt, size)
    cam = bpy.data.cameras.new(name)
    cam.sensor_fit = 'HORIZONTAL'
    cam.sensor_width = bc.sensor_width_mm
    cam.lens = bc.lens_mm
    cam.shift_x = bc.shift_x
    cam.shift_y = bc.shift_y
    cam.clip_start = 0.01
    cam.clip_end = 1000.0
    obj = bpy.data.objects.new(name, cam)
    obj.rotation_mode = 'XYZ'
    obj.rotation_euler = (np.pi / 2.0, 0.0, 0.0)
    obj.location = (0.0, 0.0, 0.0)
    (collection or scene.collection).objects.link(obj)
    scene.camera = obj
    r = scene.render
    r.resolution_x, r.resolution_y = bc.resolution
    r.resolution_percentage = 100
    r.pixel_aspect_x, r.pixel_aspect_y = bc.pixel_aspect
    notes.append(attach_footage(obj, take))
    return obj, notes


def add_world_and_light(scene=None, name: str = "Take") -> None:
    """A dim grey world and a sun over the body, so that rendering the saved .blend (through
    the take's camera) shows something; the CLI's empty session has neither. Not used for the
    add-on, which builds into the user's own scene. ``scene``: default the context's."""
    scene = scene or bpy.context.scene
    if scene.world is None:
        world = bpy.data.worlds.new(f"{name} world")
        world.color = (0.05, 0.05, 0.05)
        scene.world = world
    sun = bpy.data.lights.new(f"{name} sun", type='SUN')
    sun.energy = 3.0
    obj = bpy.data.objects.new(f"{name} sun", sun)
    scene.collection.objects.link(obj)
    obj.location = (0.0, 0.0, 5.0)
    obj.rotation_euler = (0.9, 0.0, 0.5)   # from above, in front of the camera's side
