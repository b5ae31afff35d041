"""Camera intrinsics and frame rates as Blender settings."""
from __future__ import annotations

import pytest

from pose2pose_mocap.retarget.camera import blender_camera, scene_fps


@pytest.mark.parametrize("fps, want", [(30, (30, 1.0)), (29.97, (30, 1.001)),
                                       (30000 / 1001, (30, 1.001)), (23.976, (24, 1.001)),
                                       (59.94, (60, 1.001)), (12.5, (13, 13 / 12.5))])
def test_scene_fps(fps, want):
    f, base = scene_fps(fps)
    assert (f, pytest.approx(base)) == (want[0], pytest.approx(want[1]))
    assert f / base == pytest.approx(fps, rel=1e-4)


def test_blender_camera():
    c = blender_camera([1000.0, 1000.0], [959.5, 539.5], [1920, 1080])
    assert c.lens_mm == pytest.approx(1000 / 1920 * 36)
    assert (c.shift_x, c.shift_y) == (0.0, 0.0) and c.pixel_aspect == (1.0, 1.0)
    c = blender_camera([1000.0, 1000.0], [999.5, 499.5], [1920, 1080])
    assert c.shift_x == pytest.approx(-40 / 1920) and c.shift_y == pytest.approx(-40 / 1920)
