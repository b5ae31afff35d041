# SPDX-License-Identifier: GPL-3.0-or-later
"""The take's pinhole camera and frame rate as Blender settings (numpy only).

The take's camera is OpenCV-style: a pixel is ``(fx X/Z + cx, fy Y/Z + cy)``
for a camera-space point ``(X, Y, Z)`` (x right, y down, z forward), with
pixel centres at integer coordinates (the image spans -0.5 .. W - 0.5). In
Blender that camera is an object at the origin looking along +Y with +Z up
(rotation X = 90 deg), with:

* render resolution = ``image_size`` (W x H);
* sensor fit HORIZONTAL, sensor width 36 mm, ``lens = fx / W * 36`` mm;
* ``shift_x = (W/2 - 0.5 - cx) / W``, ``shift_y = (cy + 0.5 - H/2) / W``
  (shifts are in units of the fitted sensor side; a centred camera has
  ``cx = (W - 1) / 2`` and no shift);
* square pixels when ``fx == fy``; otherwise the pixel aspect carries
  ``fx / fy``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SENSOR_WIDTH_MM = 36.0
DEFAULT_IMAGE_SIZE = (1920, 1080)
NTSC_BASE = 1.001


@dataclass(frozen=True)
class BlenderCamera:
    lens_mm: float
    sensor_width_mm: float
    shift_x: float
    shift_y: float
    resolution: tuple      # (W, H) pixels
    pixel_aspect: tuple    # (x, y), each >= 1 as Blender wants


def default_intrinsics(image_size=DEFAULT_IMAGE_SIZE):
    """A plausible camera when a file has none: 53 deg horizontal view, centred."""
    W, H = (int(v) for v in image_size)
    return np.array([float(W), float(W)]), np.array([(W - 1) / 2.0, (H - 1) / 2.0])


MIN_LENS_MM = 1.0           # Blender's hard minimum of Camera.lens
MAX_PIXEL_ASPECT = 200.0    # Blender's hard maximum of render.pixel_aspect_x/y
MAX_FOCAL_PX = 1e7
MAX_PRINCPT_PX = 1e7
MAX_IMAGE_SIDE = 65_535


def camera_problems(focal, princpt, image_size) -> list[str]:
    """Why Blender could not reproduce this camera exactly ([] when it can).

    ``image_size`` whole numbers 1 .. 65,535; ``focal`` finite, at most 1e7 px and
    at least ``W * MIN_LENS_MM / 36`` (a shorter lens would be clamped to 1 mm);
    ``fy / fx`` within 1/200 .. 200 (pixel aspect); ``princpt`` within +-1e7 px.
    Arguments are ``(2,)`` arrays already known to be finite numbers.
    """
    problems = []
    W, H = (float(v) for v in image_size)
    if not all(v == round(v) and 1 <= v <= MAX_IMAGE_SIDE for v in (W, H)):
        problems.append(f"image_size must be two whole numbers 1 .. {MAX_IMAGE_SIDE}, "
                        f"got {[W, H]}")
        return problems
    fx, fy = (float(v) for v in focal)
    low = W * MIN_LENS_MM / SENSOR_WIDTH_MM
    if not (low <= fx <= MAX_FOCAL_PX and low <= fy <= MAX_FOCAL_PX):
        problems.append(f"focal must be {low:g} .. {MAX_FOCAL_PX:g} px for an image {W:g} px "
                        f"wide (Blender's shortest lens is {MIN_LENS_MM:g} mm), got {[fx, fy]}")
    elif not 1.0 / MAX_PIXEL_ASPECT <= fy / fx <= MAX_PIXEL_ASPECT:
        problems.append(f"focal fy / fx must be 1/{MAX_PIXEL_ASPECT:g} .. "
                        f"{MAX_PIXEL_ASPECT:g} (Blender's pixel aspect), got {[fx, fy]}")
    if any(abs(float(v)) > MAX_PRINCPT_PX for v in princpt):
        problems.append(f"princpt must be within +-{MAX_PRINCPT_PX:g} px, "
                        f"got {[float(v) for v in princpt]}")
    return problems


def blender_camera(focal, princpt, image_size, sensor_width_mm=SENSOR_WIDTH_MM) -> BlenderCamera:
    """Blender camera settings reproducing an OpenCV pinhole camera.

    focal ``(2,)`` [fx, fy], princpt ``(2,)`` [cx, cy], image_size ``(2,)`` [W, H],
    all in pixels.
    """
    fx, fy = (float(v) for v in focal)
    cx, cy = (float(v) for v in princpt)
    W, H = (int(round(float(v))) for v in image_size)
    lens = fx / W * sensor_width_mm
    # Blender: fy_pixels = fx_pixels * aspect_x / aspect_y.
    ratio = fy / fx
    aspect = (ratio, 1.0) if ratio >= 1.0 else (1.0, 1.0 / ratio)
    return BlenderCamera(lens_mm=lens, sensor_width_mm=sensor_width_mm,
                         shift_x=(W / 2.0 - 0.5 - cx) / W,
                         shift_y=(cy + 0.5 - H / 2.0) / W,
                         resolution=(W, H), pixel_aspect=aspect)


def scene_fps(fps: float) -> tuple[int, float]:
    """Blender's ``(render.fps, render.fps_base)`` for a frame rate: ``fps / fps_base == fps``.

    NTSC rates (23.976, 29.97, 59.94, ...) become ``(24, 1.001)`` etc.;
    other fractional rates ``(ceil(fps), ceil(fps) / fps)``.
    """
    fps = float(fps)
    if fps <= 0 or not np.isfinite(fps):
        raise ValueError(f"fps must be positive, got {fps}")
    if abs(fps - round(fps)) < 1e-6:
        return int(round(fps)), 1.0
    ntsc = fps * NTSC_BASE
    if abs(ntsc - round(ntsc)) < 1e-3 * max(1.0, ntsc / 30.0):
        return int(round(ntsc)), NTSC_BASE
    f = int(np.ceil(fps))
    return f, f / fps

