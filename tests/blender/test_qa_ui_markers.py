"""``retarget.blender.markers``: QA flags as timeline markers named by kind; only the
markers made for a take are replaced or removed, never the user's (Blender 4.2 and 5.0)."""
from __future__ import annotations

import pytest

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender


@pytest.fixture
def scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return bpy.context.scene


def _all(scene):
    return sorted((m.name, m.frame) for m in scene.timeline_markers)


def test_markers_named_by_kind_replace_only_our_own(scene):
    from pose2pose_mocap.retarget.blender.markers import (clear_flag_markers, marker_name,
                                                          replace_flag_markers, take_markers)

    assert marker_name("wrist_flip") == "QA wrist_flip"
    scene.timeline_markers.new("QA dropout", frame=40)     # the user's, named like ours
    scene.timeline_markers.new("cut", frame=12)
    made = replace_flag_markers(scene, "take-a", [("dropout", 40), ("wrist_flip", 7)])
    assert [(m.name, m.frame) for m in made] == [("QA dropout", 40), ("QA wrist_flip", 7)]
    replace_flag_markers(scene, "take-b", [("lr_swap", 3)])
    assert _all(scene) == [("QA dropout", 40), ("QA dropout", 40), ("QA lr_swap", 3),
                           ("QA wrist_flip", 7), ("cut", 12)]
    # replaced: take-a's old markers go, its new ones come; the user's and take-b's stay
    replace_flag_markers(scene, "take-a", [("penetration", 90)])
    assert _all(scene) == [("QA dropout", 40), ("QA lr_swap", 3), ("QA penetration", 90),
                           ("cut", 12)]
    # one of ours moved by the user is theirs now: left alone
    take_markers(scene, "take-b")[0].frame = 5
    assert take_markers(scene, "take-b") == []
    assert clear_flag_markers(scene, "take-b") == 0
    assert clear_flag_markers(scene, "take-a") == 1
    assert _all(scene) == [("QA dropout", 40), ("QA lr_swap", 5), ("cut", 12)]
    # nothing recorded is left behind
    assert replace_flag_markers(scene, "take-a", []) == []
    assert scene["p2p_qa_markers"] == "{}"
