"""Fault matrix, items 6, 8, 12 and 14: what comes in is validated before any work.

* 8: every numeric option is checked when it is parsed (one line, exit 2), with a
  documented range shared by the CLI, the worker and the add-on's properties;
* 12: a take's ``.npy`` headers are checked (shape, dtype, size against the row
  count) before any data is read: memory stays small, messages are right;
* 14: values are range-checked, not only finite;
* 6: a take's frame span is limited; exports are capped and bake only keyed frames.

Each case runs the real CLI in a subprocess (``run_cli``) and checks: the exit
code, one line on stderr without a traceback, nothing written, peak memory.
"""
from __future__ import annotations

import argparse
import math
import time
import zipfile

import numpy as np
import pytest

from tests.faults.conftest import assert_one_line_error, run_cli, snapshot
from tests.retarget.synthetic import take_arrays

# A refused take costs the imports and the headers only; reading a good take with
# the SMPL-X stand-in model and bpy costs ~850 MiB. Refusals must stay far below.
MAX_REFUSAL_RSS_MIB = 600


# --------------------------------------------------------------------------- helpers

def _save_take(path, **changes):
    """A take written with np.savez (not write_take, which would validate it)."""
    a = take_arrays()
    a.update(changes)
    np.savez(path, **{k: np.asarray(v) for k, v in a.items()})
    return path


def _npy_header(shape, dtype) -> bytes:
    import io

    buf = io.BytesIO()
    d = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
         "shape": tuple(shape)}
    np.lib.format.write_array_header_2_0(buf, d)
    return buf.getvalue()


def _write_npz(path, arrays: dict, forged: dict, *, compress=True):
    """``arrays``: real arrays. ``forged``: name -> (shape, dtype, data) where data is
    the number of zero bytes to store after the header (the header may declare more)."""
    comp = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=comp, compresslevel=1,
                         allowZip64=True) as z:
        for name, a in arrays.items():
            with z.open(name + ".npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asarray(a), allow_pickle=False)
        for name, (shape, dtype, nbytes) in forged.items():
            with z.open(name + ".npy", "w", force_zip64=True) as fh:
                fh.write(_npy_header(shape, dtype))
                chunk = bytes(1 << 24)
                left = nbytes
                while left > 0:
                    n = min(left, len(chunk))
                    fh.write(chunk[:n])
                    left -= n
    return path


def _take_without(*names):
    a = take_arrays()
    for n in names:
        a.pop(n)
    return {k: np.asarray(v) for k, v in a.items()}


def _refused(res, *words, folder=None, before=None):
    line = assert_one_line_error(res, *words)
    assert "internal error" not in line, line
    if folder is not None:
        assert snapshot(folder) == before, "something was written or replaced"
    return line


# --------------------------------------------------------------------------- item 8: options

BAD_OPTIONS = [
    ("estimate", ["clip.mp4", "--fps", "inf"], "--fps"),
    ("estimate", ["clip.mp4", "--fps", "nan"], "--fps"),
    ("estimate", ["clip.mp4", "--fps", "1e300"], "--fps"),
    ("estimate", ["clip.mp4", "--fps", "0"], "--fps"),
    ("estimate", ["clip.mp4", "--fov", "180"], "--fov"),
    ("estimate", ["clip.mp4", "--fov=-inf"], "--fov"),
    ("estimate", ["clip.mp4", "--batch", "0"], "--batch"),
    ("estimate", ["clip.mp4", "--batch", "1e9"], "--batch"),
    ("estimate", ["clip.mp4", "--detect-every", "-1"], "--detect-every"),
    ("estimate", ["clip.mp4", "--min-score", "0"], "--min-score"),
    ("estimate", ["clip.mp4", "--min-score", "nan"], "--min-score"),
    ("estimate", ["clip.mp4", "--frames", "9:3"], "--frames"),
    ("estimate", ["clip.mp4", "--frames", "0:10:0"], "--frames"),
    ("estimate", ["clip.mp4", "--frames", "0:99999999999999999999"], "--frames"),
    ("estimate", ["clip.mp4", "--box", "1,2,3"], "--box"),
    ("estimate", ["clip.mp4", "--box", "1,2,inf,4"], "--box"),
    ("estimate", ["clip.mp4", "--person", "0"], "--person"),
    ("convert", ["clip.mp4", "--fps", "inf"], "--fps"),
    ("convert", ["t.take.npz", "--smooth-body", "inf"], "--smooth-body"),
    ("convert", ["t.take.npz", "--smooth-root", "1e-9"], "--smooth-root"),
    ("convert", ["t.take.npz", "--smooth-face", "-1"], "--smooth-face"),
    ("batch", ["in", "-o", "out", "--workers", "0"], "--workers"),
    ("batch", ["in", "-o", "out", "--retarget-workers", "100000"], "--retarget-workers"),
    ("batch", ["in", "-o", "out", "--fps", "inf"], "--fps"),
    ("batch", ["in", "-o", "out", "--smooth-hands", "nan"], "--smooth-hands"),
]


@pytest.mark.parametrize("cmd, args, flag", BAD_OPTIONS,
                         ids=[f"{c}-{' '.join(a[-2:])}" for c, a, _ in BAD_OPTIONS])
def test_bad_numeric_options_stop_at_parsing(tmp_path, cmd, args, flag):
    (tmp_path / "clip.mp4").write_bytes(b"not looked at")
    (tmp_path / "in").mkdir()
    before = snapshot(tmp_path)
    t0 = time.monotonic()
    res = run_cli([cmd, *args], cwd=tmp_path)
    line = _refused(res, f"p2p-mocap {cmd}: error: argument {flag}", folder=tmp_path,
                    before=before)
    assert res.rc == 2, (res.rc, line)
    assert ".." in line or "after the start" in line or "four numbers" in line, line
    assert time.monotonic() - t0 < 60


def test_usage_errors_are_one_line(tmp_path):
    for args in (["estimate"], ["nonsense"], ["convert", "a", "b"], ["export", "x.npz"]):
        res = run_cli(args, cwd=tmp_path)
        line = assert_one_line_error(res, "error:")
        assert res.rc == 2 and line.startswith("p2p-mocap"), line


NUMERIC_METAVARS = {"N", "DEG", "FPS", "S", "HZ", "A:B:STEP", "X,Y,W,H", "N|all|auto"}


def _all_actions(parser, prefix="p2p-mocap"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _all_actions(sub, f"{prefix} {name}")
        else:
            yield prefix, action


def test_every_numeric_option_has_a_checked_documented_range():
    from pose2pose_mocap.cli import build_parser

    seen = set()
    for where, action in _all_actions(build_parser()):
        if action.metavar not in NUMERIC_METAVARS:
            continue
        seen.add(action.option_strings[0] if action.option_strings else action.dest)
        assert action.type not in (None, int, float), (where, action.option_strings)
        assert ".." in (action.help or ""), (where, action.option_strings, action.help)
    assert {"--fps", "--fov", "--batch", "--detect-every", "--min-score", "--frames", "--box",
            "--person", "--workers", "--retarget-workers", "--smooth-body"} <= seen, seen


def test_addon_properties_use_the_same_ranges():
    pytest.importorskip("bpy")
    from pose2pose_mocap.addon import props
    from pose2pose_mocap.common import options as opt

    ann = props.P2P_MocapSettings.__annotations__

    def kw(name):  # (the module's annotations are strings: evaluate them as Blender does)
        prop = ann[name]
        return (eval(prop, vars(props)) if isinstance(prop, str) else prop).keywords

    assert kw("fov")["min"] == pytest.approx(math.radians(opt.FOV.low))
    assert kw("fov")["max"] == pytest.approx(math.radians(opt.FOV.high))
    for n in ("smooth_root", "smooth_body", "smooth_hands", "smooth_face"):
        assert kw(n)["min"] == 0.0 and kw(n)["max"] == opt.CUTOFF_HZ.high
    assert (kw("person_number")["min"], kw("person_number")["max"]) == (
        opt.PERSON.low, opt.PERSON.high)
    assert kw("frame_step")["min"] == 1 and kw("frame_step")["max"] == opt.MAX_FRAME_NUMBER
    assert kw("frame_start")["max"] == kw("frame_end")["max"] == opt.MAX_FRAME_NUMBER


# --------------------------------------------------------------------------- item 12: headers

@pytest.fixture(scope="module")
def baseline_rss(tmp_path_factory):
    """Peak RSS of ``convert`` reading a good take (then stopping at a missing model)."""
    d = tmp_path_factory.mktemp("baseline")
    good = _save_take(d / "good.take.npz")
    res = run_cli(["convert", good, "--smplx", d / "no-such-model"], cwd=d)
    assert res.rc == 1 and "SMPL-X" in res.stderr, res.stderr
    return res.peak_rss_mib


@pytest.fixture(scope="module")
def gigabyte_take(tmp_path_factory):
    """A ~1 MB take whose body_pose holds (2,000,000, 63) float64 zeros: 1 GB unpacked."""
    d = tmp_path_factory.mktemp("big")
    path = d / "big.take.npz"
    _write_npz(path, _take_without("body_pose"),
               {"body_pose": ((2_000_000, 63), "<f8", 2_000_000 * 63 * 8)})
    assert path.stat().st_size < 10 * 2**20
    return path


def _convert_refuses(tmp_path, take, *words):
    before = snapshot(tmp_path)
    res = run_cli(["convert", take, "--smplx", tmp_path / "no-such-model"], cwd=tmp_path)
    line = _refused(res, take.name, *words, folder=tmp_path, before=before)
    assert res.rc == 1
    return res, line


def test_a_small_take_declaring_a_gigabyte_is_refused_from_its_header(
        tmp_path, gigabyte_take, baseline_rss):
    import shutil

    take = shutil.copy(gigabyte_take, tmp_path / "big.take.npz")
    from pathlib import Path

    res, _ = _convert_refuses(tmp_path, Path(take), "body_pose has shape (2000000, 63)",
                              "expected (6, 63)")
    print(f"\npeak RSS: refused 1 GB take {res.peak_rss_mib:.0f} MiB, "
          f"good take read {baseline_rss:.0f} MiB")
    assert res.peak_rss_mib < MAX_REFUSAL_RSS_MIB
    assert res.peak_rss_mib < baseline_rss + 50


FORGED = {
    # 1.4 TiB declared, nothing stored: was "internal error: MemoryError"
    "tebibytes": ({"raw_score": ((200_000_000_000,), "<f8", 0)}, ["raw_score has shape"]),
    # consistent shapes, but far more rows than Blender has frames
    "billion rows": ({k: ((10**9,) + s, d, 0) for k, s, d in (
        ("frame_index", (), "<i8"), ("valid", (), "|b1"))}, ["1,000,000,000 rows",
                                                               "1,048,574"]),
    # the data is shorter than the header says: was "holds pickled Python objects"
    "truncated": ({"body_pose": ((6, 63), "<f4", 100)}, ["truncated"]),
    "complex": ({"transl": ((6, 3), "<c16", 6 * 3 * 16)}, ["transl has dtype complex128"]),
    "3-D params": ({"jaw_pose": ((6, 3, 1), "<f4", 72)}, ["jaw_pose has shape (6, 3, 1)"]),
    "scalar fps array": ({"fps": ((6,), "<f8", 48)}, ["fps must be a positive number"]),
    "huge text": ({"source": ((), "<U500000000", 0)}, ["source"]),
    # format 2: a raw array with T rows, but 2.4 GB of them (nothing stored)
    "huge raw array": ({"raw_joints_2d": ((6, 20_000_000, 3), "<f8", 0)},
                       ["raw_joints_2d declares", "1024 MiB"]),
}


@pytest.mark.parametrize("case", list(FORGED))
def test_forged_headers_are_refused_before_reading(tmp_path, case, baseline_rss):
    forged, words = FORGED[case]
    take = _write_npz(tmp_path / "forged.take.npz", _take_without(*forged), forged)
    res, line = _convert_refuses(tmp_path, take, *words)
    assert "pickled" not in line
    assert res.peak_rss_mib < MAX_REFUSAL_RSS_MIB and res.peak_rss_mib < baseline_rss + 50


def test_pickled_member_is_refused_and_never_run(tmp_path, pwn_marker):
    from pathlib import Path

    class Pwn:
        def __reduce__(self):
            return (Path(pwn_marker).touch, ())

    obj = np.empty(1, dtype=object)
    obj[0] = Pwn()
    a = take_arrays()
    a["model"] = obj
    np.savez(tmp_path / "p.take.npz", **{k: np.asarray(v) for k, v in a.items()},
             allow_pickle=True)
    _convert_refuses(tmp_path, tmp_path / "p.take.npz", "pickled")
    assert not pwn_marker.exists()


AMASS_FORGED = {
    # ~1 MB on disk, 740 MB of zeros unpacked: was read whole before its rows were counted
    "too many rows": {"trans": ((1_100_000, 3), "<f4", 1_100_000 * 12),
                      "poses": ((1_100_000, 165), "<f4", 1_100_000 * 660)},
    "wide rows": {"trans": ((10, 3), "<f8", 240), "poses": ((10, 100_000), "<f8", 0)},
    "betas": {"poses": ((10, 165), "<f8", 13200), "betas": ((10**9,), "<f8", 0)},
    "truncated": {"poses": ((10, 165), "<f8", 1000)},
}


@pytest.mark.parametrize("case", list(AMASS_FORGED))
def test_other_smplx_files_are_bounded_too(tmp_path, case, baseline_rss):
    take = _write_npz(tmp_path / "amass.npz", {"mocap_frame_rate": np.array(60.0)},
                      AMASS_FORGED[case])
    res, line = _convert_refuses(tmp_path, take)
    assert res.peak_rss_mib < MAX_REFUSAL_RSS_MIB and res.peak_rss_mib < baseline_rss + 50
    if case == "too many rows":
        assert "1,100,000 rows" in line and "1,048,574" in line, line


def test_amass_file_with_unused_pickled_array_still_reads(tmp_path):
    """Only the arrays used are read; an unrelated object array is never touched."""
    from pose2pose_mocap.retarget.take import read_take

    T = 4
    np.savez(tmp_path / "amass.npz", poses=np.zeros((T, 165)), trans=np.zeros((T, 3)),
             mocap_frame_rate=np.array(60.0), extra=np.array([{"a": 1}], dtype=object),
             allow_pickle=True)
    t = read_take(tmp_path / "amass.npz")
    assert t.num_frames == T and t.fps == 60.0


# --------------------------------------------------------------------------- item 14: ranges

RANGE_CASES = {
    "transl 1e300": (lambda a: a["transl"].__setitem__((2, 0), 1e300), "transl",
                     "beyond"),
    "transl 2e4 m": (lambda a: a["transl"].__setitem__((2, 2), 2e4), "transl", "10000 m"),
    "body_pose 1e5": (lambda a: a["body_pose"].__setitem__((0, 5), 1e5), "body_pose",
                      "rad"),
    "betas 1e6": (lambda a: a["betas"].__setitem__((1, 0), 1e6), "betas", "100"),
    "expression": (lambda a: a["expression"].__setitem__((1, 0), -500), "expression", "100"),
    "fps 1e300": (lambda a: a.__setitem__("fps", 1e300), "fps", "1000"),
    "fps 1e-9": (lambda a: a.__setitem__("fps", 1e-9), "fps", "0.01"),
    "focal 1e300": (lambda a: a.__setitem__("focal", np.array([1e300, 1e300])), "focal",
                    "1e+07"),
    "focal tiny": (lambda a: a.__setitem__("focal", np.array([1.0, 1.0])), "focal", "lens"),
    "focal aspect": (lambda a: a.__setitem__("focal", np.array([600.0, 6e6])), "focal",
                     "aspect"),
    "princpt 1e300": (lambda a: a.__setitem__("princpt", np.array([1e300, 5.0])), "princpt",
                      "1e+07"),
    "image_size 0": (lambda a: a.__setitem__("image_size", np.array([0, 480])), "image_size",
                     "positive"),
    "image_size 70000": (lambda a: a.__setitem__("image_size", np.array([70000, 480])),
                         "image_size", "65535"),
    "image_size 2.5": (lambda a: a.__setitem__("image_size", np.array([640.5, 480.0])),
                       "image_size", "whole"),
    "person_id -1": (lambda a: a.__setitem__("person_id", np.int64(-1)), "person_id", "0 .."),
}


@pytest.mark.parametrize("case", list(RANGE_CASES))
def test_values_out_of_range_are_refused(tmp_path, case):
    change, name, word = RANGE_CASES[case]
    a = take_arrays(dtype=np.float64)
    change(a)
    path = tmp_path / "bad.take.npz"
    np.savez(path, **{k: np.asarray(v) for k, v in a.items()})
    _convert_refuses(tmp_path, path, name, word)


def test_export_refuses_the_same_values(tmp_path):
    a = take_arrays(dtype=np.float64)
    a["transl"][0, 0] = 1e300
    path = tmp_path / "bad.take.npz"
    np.savez(path, **a)
    before = snapshot(tmp_path)
    res = run_cli(["export", path, "--preset", "bvh", "--smplx", tmp_path / "none"],
                  cwd=tmp_path)
    _refused(res, "transl", folder=tmp_path, before=before)


def test_out_of_range_values_in_invalid_rows_are_junk_and_allowed():
    from pose2pose_mocap.retarget.take import validate_take_arrays

    a = take_arrays(dtype=np.float64)
    a["transl"][2] = 1e300
    a["valid"][2] = False
    assert validate_take_arrays(a) == []


# --------------------------------------------------------------------------- item 6: spans

@pytest.mark.parametrize("last, shown", [(2_000_000, "2,000,001 frames"),
                                         (2**62, "4,611,686,018,427,387,905 frames"),
                                         (1_048_574, "1,048,575 frames")])
def test_frame_span_over_the_limit_is_refused(tmp_path, last, shown):
    a = take_arrays(T=2)
    a["frame_index"] = np.array([0, last], dtype=np.int64)
    path = tmp_path / "span.take.npz"
    np.savez(path, **a)
    _, line = _convert_refuses(tmp_path, path, shown, "1,048,574")


def test_frame_span_at_the_limit_is_accepted():
    from pose2pose_mocap.retarget.take import MAX_FRAME_SPAN, validate_take_arrays

    a = take_arrays(T=2)
    a["frame_index"] = np.array([5, 5 + MAX_FRAME_SPAN - 1])
    assert validate_take_arrays(a) == []


@pytest.fixture(scope="module")
def smplx_root():
    pytest.importorskip("bpy")
    from tests.retarget.synthetic import standin_smplx_root

    return standin_smplx_root()


def test_export_of_a_huge_sparse_span_is_refused_quickly(tmp_path, smplx_root):
    a = take_arrays(T=2)
    a["frame_index"] = np.array([0, 30_000])
    path = tmp_path / "sparse.take.npz"
    np.savez(path, **a)
    before = snapshot(tmp_path)
    t0 = time.monotonic()
    res = run_cli(["export", path, "--preset", "unity", "--smplx", smplx_root], cwd=tmp_path,
                  timeout=300)
    took = time.monotonic() - t0
    _refused(res, "30,001 frames", "18,000", folder=tmp_path, before=before)
    assert took < 30, f"took {took:.0f} s"


def _sparse_take(path, frame_index, valid=None, seed=3):
    from pose2pose_mocap.retarget.take import write_take

    a = take_arrays(len(frame_index), seed=seed)
    a["frame_index"] = np.asarray(frame_index)
    if valid is not None:
        a["valid"] = np.asarray(valid)
    return write_take(path, a)


def _bvh_motion(path) -> np.ndarray:
    lines = path.read_text().split("MOTION")[1].splitlines()
    return np.array([[float(x) for x in ln.split()] for ln in lines[3:] if ln.strip()])


@pytest.mark.slow
def test_export_bakes_only_keyed_frames_and_matches_a_full_bake(tmp_path, smplx_root,
                                                                monkeypatch):
    from pose2pose_mocap.retarget.blender import export as ex

    take = _sparse_take(tmp_path / "s.take.npz", [0, 7, 20, 21, 50, 3000],
                        valid=[True, True, False, True, True, True])
    t0 = time.monotonic()
    sparse = ex.export_scene(take, "bvh", tmp_path / "sparse.bvh", smplx=smplx_root,
                             root="in_place", rest_frame=True)
    t_sparse = time.monotonic() - t0
    # Keys only where the take has valid rows (Blender frame 1 + frame_index), plus the
    # rest frame 0; the file still has every frame (BVH samples each one).
    assert sparse.baked_frames.tolist() == [0, 1, 8, 22, 51, 3001]
    assert len(sparse.frames) == 3002 and sparse.world.shape == (3002, 4, 4)
    got = _bvh_motion(sparse.path)
    assert got.shape[0] == 3002

    monkeypatch.setattr(ex, "_keyed_frames", lambda *a, **k: None)  # the old full bake
    t0 = time.monotonic()
    full = ex.export_scene(take, "bvh", tmp_path / "full.bvh", smplx=smplx_root,
                           root="in_place", rest_frame=True)
    t_full = time.monotonic() - t0
    assert len(full.baked_frames) == 3002
    want = _bvh_motion(full.path)
    print(f"\nsparse bake {t_sparse:.1f} s, full bake {t_full:.1f} s; "
          f"max difference {np.abs(got - want).max():.2e}")
    assert np.abs(got - want).max() < 1e-3   # BVH text precision
    assert np.abs(sparse.world - full.world).max() < 1e-6
