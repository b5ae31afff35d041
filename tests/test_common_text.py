"""The one ETA formatter (common.text.format_eta), used by the CLI's progress line and the
add-on's status text."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pose2pose_mocap.common.text import format_eta

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("seconds, text", [
    (None, "--:--"), (float("nan"), "--:--"), (float("inf"), "--:--"), ("junk", "--:--"),
    (0, "0:00"), (-5, "0:00"), (59.4, "0:59"), (59.6, "1:00"), (61, "1:01"),
    (3599.4, "59:59"), (3600, "1:00:00"), (3661.2, "1:01:01"), (100 * 3600, "100:00:00"),
])
def test_format_eta(seconds, text):
    assert format_eta(seconds) == text


def test_no_other_eta_formatter():
    """Time left is formatted in one place: no other function named like an ETA formatter."""
    for f in sorted(REPO.rglob("*.py")):
        if any(part in (".venv", "tests", "build", "dist") for part in f.relative_to(REPO).parts):
            continue
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.FunctionDef) and "eta" in node.name.lower().split("_"):
                assert f == REPO / "common" / "text.py", f"{f}: {node.name}"
