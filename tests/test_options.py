"""One options type per stage (issue #12): EstimateOptions and ConvertOptions, their round
trips, the CLI / batch / worker wiring, one resolve_device, and retarget without weights."""
from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pose2pose_mocap.cli import build_parser
from pose2pose_mocap.common.options import OptionError
from pose2pose_mocap.estimator.options import PRECISIONS, EstimateOptions
from pose2pose_mocap.retarget.errors import ModelFileError, RetargetError
from pose2pose_mocap.retarget.options import ConvertOptions
from pose2pose_mocap.retarget.smoothing import Smoothing

REPO = Path(__file__).resolve().parent.parent

ESTIMATE_FLAGS = ["--frames", "3:40:2", "--person", "all", "--detector", "none",
                  "--download-detector", "--box", "1,2,30,40", "--device", "cpu",
                  "--batch", "8", "--precision", "bf16", "--checkpoint", "ck.pth",
                  "--fov", "75", "--fps", "24", "--detect-every", "0", "--min-score", "0.3",
                  "--max-pixels", "9x9"]
ESTIMATE_VALUES = dict(frames="3:40:2", person="all", detector="none", allow_download=True,
                       box="1,2,30,40", estimator="pose2pose", device="cpu", batch=8,
                       precision="bf16", checkpoint="ck.pth", fov=75.0, fps=24.0,
                       detect_every=0, min_score=0.3, max_pixels="9x9")


# --------------------------------------------------------------------------- EstimateOptions
def test_estimate_options_from_every_command_line():
    """estimate, convert (footage) and batch share one set of flags -> the same options."""
    p = build_parser()
    want = EstimateOptions(smplx="m", **ESTIMATE_VALUES)
    for argv in (["estimate", "clip.mp4", "--smplx", "m"], ["convert", "clip.mp4", "--smplx", "m"],
                 ["batch", "in", "-o", "out", "--smplx", "m"]):
        assert EstimateOptions.from_args(p.parse_args(argv + ESTIMATE_FLAGS)) == want, argv[0]
    # the defaults of the command line are the dataclass's
    assert EstimateOptions.from_args(p.parse_args(["estimate", "clip.mp4"])) == EstimateOptions()
    assert EstimateOptions.from_args(argparse.Namespace()) == EstimateOptions()


def test_estimate_options_round_trip():
    o = EstimateOptions(smplx="m", **ESTIMATE_VALUES)
    d = o.to_dict()
    assert set(d) == set(EstimateOptions.field_names())
    assert json.loads(json.dumps(d)) == d                        # plain values
    assert EstimateOptions.from_dict(d) == o
    assert EstimateOptions.from_dict(json.loads(json.dumps(d))) == o
    assert EstimateOptions.from_dict({}) == EstimateOptions()    # missing = default
    assert EstimateOptions.from_dict({k: None for k in d}) == EstimateOptions()
    boxed = EstimateOptions.from_dict({"box": [1, 2, 30, 40], "person": 2, "fov": 90})
    assert boxed.box == (1, 2, 30, 40) and boxed.person == "2" and boxed.fov == 90.0
    assert boxed.to_dict()["box"] == [1, 2, 30, 40] and hash(boxed)
    assert EstimateOptions.from_dict(boxed.to_dict()) == boxed
    assert o.job_arguments()["allow_download"] is True and "force" not in o.job_arguments()


@pytest.mark.parametrize("field, value, words", [
    ("fps", float("inf"), ["fps", "finite"]),
    ("fov", 0, ["fov", "out of range"]),
    ("batch", 2.5, ["batch", "whole number"]),
    ("detect_every", "x", ["detect_every"]),
    ("min_score", -1, ["min_score"]),
    ("frames", "9:3", ["frames", "after the start"]),
    ("person", 0, ["person"]),
    ("box", "1,2,3", ["box"]),
    ("device", "tpu", ["device", "auto, cpu or cuda"]),
    ("precision", "fp8", ["precision", "fp32, bf16, fp16 or auto"]),
    ("allow_download", "yes", ["allow_download", "true or false"]),
    ("smplx", 7, ["smplx"]),
    ("estimator", 3, ["estimator"]),
    ("max_pixels", "lots", ["max_pixels lots"]),
    ("nonsense", 1, ["unknown estimate option", "nonsense"]),
])
def test_estimate_options_refuse_bad_values_with_one_line(field, value, words):
    makers = [lambda: EstimateOptions.from_dict({field: value})]
    if field != "nonsense":
        makers.append(lambda: EstimateOptions(**{field: value}))
    for make in makers:
        with pytest.raises(OptionError) as info:
            make()
        msg = str(info.value)
        assert "\n" not in msg and len(msg) < 300, msg
        for w in words:
            assert w in msg, msg
    with pytest.raises(OptionError, match="^Field of View 500: out of range"):
        EstimateOptions.from_dict({"fov": 500}, labels={"fov": "Field of View"})


def test_bad_option_the_parser_cannot_see_is_one_line_exit_1(tmp_path):
    """--max-pixels is only checked by the options: one line, exit 1, nothing written."""
    for argv in (["estimate", "clip.mp4", "--max-pixels", "lots"],
                 ["convert", "clip.mp4", "--max-pixels", "0x5"]):
        res = subprocess.run([sys.executable, "-m", "pose2pose_mocap.cli", *argv], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 1 and len(lines) == 1, res.stderr
        assert lines[0].startswith("p2p-mocap: error: --max-pixels ") and "Traceback" not in \
            res.stderr
        assert not list(tmp_path.iterdir())


def test_worker_request_maps_to_the_options_and_keeps_precision():
    """The worker's estimate request -> EstimateOptions -> EstimateJob: precision (which the
    add-on now sends) and every other option arrive; unknown request fields are ignored."""
    from pose2pose_mocap.estimator.pipeline import EstimateJob
    from pose2pose_mocap.worker.server import RequestError, estimate_arguments

    o = EstimateOptions(**ESTIMATE_VALUES)
    req = {"cmd": "estimate", "inputs": "clip.mp4", "output": "out/", "force": True,
           "extra": "ignored", **o.to_dict()}
    args = estimate_arguments(json.loads(json.dumps(req)))
    assert args == {"inputs": "clip.mp4", "output": "out/", "force": True,
                    **o.job_arguments()}
    assert args["precision"] == "bf16"
    for p in PRECISIONS:
        job = EstimateJob(**dict(estimate_arguments(dict(req, precision=p)), output=None))
        assert job.precision == p
    with pytest.raises(RequestError, match="precision"):
        estimate_arguments(dict(req, precision="fp8"))


def test_one_resolve_device():
    """"auto" is decided in estimator.device.resolve_device only."""
    from pose2pose_mocap.estimator import pipeline
    from pose2pose_mocap.estimator.device import resolve_device

    assert pipeline.resolve_device is resolve_device
    assert resolve_device("cpu") == "cpu" and resolve_device("auto") in ("cpu", "cuda")
    hits = []
    for f in sorted(REPO.rglob("*.py")):
        if ".venv" in f.parts or "tests" in f.parts or f.name.startswith("."):
            continue
        if "torch.cuda.is_available() else" in f.read_text(errors="replace"):
            hits.append(f.relative_to(REPO).as_posix())
    assert hits == ["estimator/device.py"], hits


def test_estimate_options_import_no_torch():
    code = ("import sys, pose2pose_mocap.estimator.options, pose2pose_mocap.retarget.options; "
            "print(sorted(m for m in ('torch', 'bpy', 'cv2', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- ConvertOptions
def test_convert_options_from_the_command_line_and_round_trip():
    p = build_parser()
    flags = ["--gender", "female", "--smooth", "savgol", "--smooth-root", "5",
             "--smooth-body", "0", "--pose-correctives", "off", "--shape-keys", "off"]
    want = ConvertOptions(Smoothing("savgol", 5.0, None, 4.0, 4.0), False, False, "female",
                          clean=None)
    for argv in (["convert", "t.take.npz"], ["batch", "in", "-o", "out"]):
        got = ConvertOptions.from_args(p.parse_args(argv + flags + ["--foot-lock", "off"]))
        assert got == want, argv[0]
        assert ConvertOptions.from_args(p.parse_args(argv)) == ConvertOptions()
    d = want.to_dict()
    assert d == {"smoothing": {"method": "savgol", "root_hz": 5.0, "body_hz": None,
                               "hands_hz": 4.0, "face_hz": 4.0},
                 "pose_correctives": False, "shape_keys": False, "gender": "female"}
    assert ConvertOptions.from_dict(json.loads(json.dumps(d))) == want
    # a dict without "clean" is the clean-up off (every dict before it existed)
    assert ConvertOptions.from_dict({}) == ConvertOptions(clean=None)
    assert ConvertOptions.from_dict({"smoothing": {}, "pose_correctives": False}) == \
        ConvertOptions(pose_correctives=False, clean=None)
    full = ConvertOptions()
    assert ConvertOptions.from_dict(json.loads(json.dumps(full.to_dict()))) == full
    assert full.smoothing.method == "one_euro" and full.clean is not None


@pytest.mark.parametrize("d, words", [
    ({"smoothing": {"body_hz": float("inf")}}, ["body"]),
    ({"smoothing": {"method": "median"}}, ["unknown smoothing method"]),
    ({"smoothing": [1]}, ["smoothing"]),
    ({"pose_correctives": "yes"}, ["pose_correctives"]),
    ({"gender": "other"}, ["gender"]),
    ({"fps": 3}, ["unknown convert option"]),
    ([1, 2], ["mapping"]),
])
def test_convert_options_refuse_bad_values_with_one_line(d, words):
    with pytest.raises(RetargetError) as info:
        ConvertOptions.from_dict(d)
    assert "\n" not in str(info.value)
    for w in words:
        assert w in str(info.value)


# --------------------------------------------------------------------------- batch
# The per-stage hashes of these settings before the options types existed: a manifest
# written then still matches (nothing re-runs after the update). Since the clean-up and
# One Euro became the defaults, the settings of before are these flags plus
# OLD_DEFAULTS (the default convert hash changed: docs/motion-cleanup.md).
OLD_DEFAULTS = ["--foot-lock", "off", "--smooth", "butterworth"]
PINNED_HASHES = {
    "default": ([], ("98a00ac98d878a86", "715a806ae94a4060", "df74b7a71844b633")),
    "frames_person": (["--frames", "0:20:2", "--person", "all"],
                      ("4935d3b3fcaa83be", "d4032857f32e624e", "6d25d939e52ffd72")),
    "numbers": (["--fov", "75", "--fps", "24", "--batch", "8", "--detect-every", "0",
                 "--min-score", "0.3", "--box", "1,2,30,40"],
                ("69c735b95eac2245", "a4d69398223ae28c", "c5fbef2c4e53d4b1")),
    "precision_device": (["--precision", "bf16", "--device", "cpu", "--max-pixels", "9x9"],
                         ("3cdae13c5129e5bc", "0aa0c9ce05b36212", "4690e10b5dcf8476")),
    "smoothing": (["--smooth", "savgol", "--smooth-body", "0", "--smooth-root", "5"],
                  ("98a00ac98d878a86", "414c4171157f0f67", "440f50ce71f8fa32")),
    "rig": (["--pose-correctives", "off", "--shape-keys", "off", "--gender", "female"],
            ("98a00ac98d878a86", "6ec5522c59046a6c", "21998bcb7ccad42a")),
    "export": (["--preset", "bvh", "--root", "in_place", "--rest-frame"],
               ("98a00ac98d878a86", "715a806ae94a4060", "7d2a75cee6d0f49d")),
    "estimator": (["--estimator", "pose2pose"],
                  ("98a00ac98d878a86", "715a806ae94a4060", "df74b7a71844b633")),
}


def test_the_clean_up_default_changes_only_the_convert_hashes(monkeypatch):
    from pose2pose_mocap.batch.jobs import settings_from_args

    monkeypatch.chdir(REPO)
    s = settings_from_args(build_parser().parse_args(["batch", "in", "-o", "out"]))
    e, c, x = PINNED_HASHES["default"][1]
    assert s.hashes["estimate"] == e and s.hashes["convert"] != c
    assert s.convert["clean"] == ConvertOptions().clean.to_dict()
    assert s.convert["smoothing"]["method"] == "one_euro"


@pytest.mark.parametrize("case", sorted(PINNED_HASHES))
def test_batch_hashes_unchanged_for_unchanged_settings(case, monkeypatch):
    from pose2pose_mocap.batch.jobs import settings_from_args

    monkeypatch.chdir(REPO)
    flags, (e, c, x) = PINNED_HASHES[case]
    flags = OLD_DEFAULTS + flags
    s = settings_from_args(build_parser().parse_args(["batch", "in", "-o", "out"] + flags))
    assert s.hashes == {"estimate": e, "convert": c, "export": x}
    # the dicts workers get rebuild the same options
    assert s.estimate_options() == EstimateOptions.from_args(
        build_parser().parse_args(["batch", "in", "-o", "out"] + flags))
    assert s.convert_options().to_dict() == s.convert


# --------------------------------------------------------------------------- retarget seams
def _imports_of(path: Path):
    tree = ast.parse(path.read_text())
    rel = path.relative_to(REPO).parts[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(rel[: len(rel) - node.level + 1])
                yield ".".join(base + ([node.module] if node.module else []))
            elif node.module:
                yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


def test_retarget_never_imports_weights():
    for f in sorted((REPO / "retarget").rglob("*.py")):
        bad = [m for m in _imports_of(f)
               if m.split(".")[0] == "weights" or m.startswith("pose2pose_mocap.weights")]
        assert not bad, (f, bad)


def test_convert_take_needs_a_model_and_finds_it_only_where_told(tmp_path):
    from pose2pose_mocap.retarget.convert import convert_take, model_file
    from pose2pose_mocap.retarget.take import write_take
    from tests.retarget.synthetic import standin_smplx_root, take_arrays

    root = standin_smplx_root()
    npz = root / "smplx" / "SMPLX_NEUTRAL.npz"
    assert model_file(root, "neutral") == npz == model_file(root / "smplx", "neutral")
    assert model_file(npz, "female") == npz                    # a file is used as given
    assert model_file(lambda g: f"/models/{g}.npz", "male") == Path("/models/male.npz")
    with pytest.raises(ModelFileError, match="does not hold SMPLX_MALE.npz"):
        model_file(root, "male")
    take = write_take(tmp_path / "t.take.npz", take_arrays(T=4))
    with pytest.raises(ModelFileError, match="no SMPL-X model given"):
        convert_take(take, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.take.npz"]


def test_callers_look_the_model_up(tmp_path, monkeypatch):
    """The search order stays with weights.locations; its miss is one line with the hint."""
    from pose2pose_mocap.weights.locations import ModelNotFoundError, smplx_lookup

    monkeypatch.setenv("P2P_MOCAP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("P2P_MOCAP_IGNORE_CHECKOUT", "1")
    monkeypatch.delenv("P2P_MOCAP_SMPLX", raising=False)
    with pytest.raises(ModelNotFoundError, match=r"no SMPL-X model file SMPLX_MALE.npz found; "
                                                 r".*or pass --smplx \(or use --gender neutral\)"):
        smplx_lookup(None)("male")
    with pytest.raises(ModelNotFoundError, match="does not hold SMPLX_NEUTRAL.npz"):
        smplx_lookup(tmp_path / "nothing")("neutral")


def test_one_output_folder_check(tmp_path):
    from pose2pose_mocap.common.files import output_folder_problem
    from pose2pose_mocap.retarget.convert import check_output_file

    assert output_folder_problem(tmp_path) is None
    assert output_folder_problem(tmp_path / "nope") == "no such folder for the output"
    with pytest.raises(RetargetError, match="nope: no such folder for the output"):
        check_output_file(tmp_path / "nope" / "x.blend", ".blend", False, "")
