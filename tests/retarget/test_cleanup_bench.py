"""The motion-quality bench runs and the clean-up beats the filters on it (issue 14)."""
from __future__ import annotations

import re

import pytest


@pytest.mark.slow
def test_motion_quality_bench_runs(capsys):
    from bench.motion_quality import main

    assert main(["--seconds", "3", "--seeds", "1", "--motions", "walk,clap"]) == 0
    out = capsys.readouterr().out
    rows = {m.group(1): [float(x) for x in m.group(2).split()]
            for m in re.finditer(r"^(\w+)\s+((?:-?[\d.]+\s+){4}-?[\d.]+)$", out, re.M)}
    assert {"raw", "butterworth", "one_euro", "clean"} <= set(rows)
    mpjpe, _, accel, skate, _ = rows["clean"]
    assert skate < 0.2 * rows["butterworth"][3]
    assert accel < 0.5 * rows["raw"][2]
    assert mpjpe < rows["raw"][0]
    assert "command: " in out and "bench.motion_quality" in out


def test_cleanup_speed_bench_runs_every_step(capsys):
    from bench.cleanup_speed import main

    assert main(["--frames", "400", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    for step in ("kinematics", "smoothing", "ground", "contacts", "footlock", "qa",
                 "clean_take"):
        assert re.search(rf"^{step}\s+[\d.]+\s+[\d.]+$", out, re.M), step
    assert "command: python -m bench.cleanup_speed" in out
