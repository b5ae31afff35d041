# SPDX-License-Identifier: GPL-3.0-or-later
"""``p2p-mocap doctor``: what this machine has, where model files are, what is missing.

Shared by the CLI and the add-on's *Check setup* button. With
``runtime=False`` (inside Blender) nothing heavy is imported: Blender never
imports torch.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import platform
import sys
from dataclasses import dataclass, field

from .weights import locations
from .common.smplx_file import check_smplx_file

OK, WARN, FAIL, INFO = "ok", "warn", "FAIL", "info"

STANDIN_WARNING = ("STAND-IN files in use: they are procedural/random, not the SMPL-X model "
                   "or the Hand4Whole network. Results are meaningless; use them for testing only.")


@dataclass
class Line:
    label: str
    value: str
    status: str = INFO
    hint: list[str] = field(default_factory=list)


@dataclass
class Section:
    title: str
    lines: list[Line] = field(default_factory=list)


@dataclass
class Report:
    sections: list[Section]
    ready: bool
    standins: bool

    @property
    def problems(self) -> list[Line]:
        return [ln for s in self.sections for ln in s.lines if ln.status == FAIL]


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _python_section(runtime: bool) -> Section:
    sec = Section("Runtime")
    sec.lines.append(Line("Python", f"{platform.python_version()} ({sys.executable})", OK))
    if runtime:
        for dist, module, why in (
            ("torch", "torch", "runs the network"),
            ("torchvision", "torchvision", "ResNet backbones, roi_align, person detector"),
            ("smplx", "smplx", "SMPL-X body model"),
            ("numpy", "numpy", "arrays"),
            ("scipy", "scipy", "rotations and smoothing"),
            ("opencv-python-headless", "cv2", "image and video reading"),
        ):
            try:
                mod = importlib.import_module(module)
            except Exception as exc:  # a broken install raises more than ImportError
                sec.lines.append(Line(dist, f"not importable ({exc.__class__.__name__}: {exc})",
                                      FAIL, [f"needed: {why}; reinstall with: pip install -e ."]))
                continue
            ver = getattr(mod, "__version__", None) or _version(dist) or "?"
            sec.lines.append(Line(dist, str(ver), OK))
            if module == "torch":
                sec.lines.append(_cuda_line(mod))
                sec.lines.append(_cpu_line())
    sec.lines.append(_bpy_line())
    return sec


def _cuda_line(torch) -> Line:
    try:
        if torch.cuda.is_available():
            name = torch.cuda.get_device_name(0)
            return Line("CUDA", f"available: {name} (CUDA {torch.version.cuda})", OK)
    except Exception as exc:
        return Line("CUDA", f"error while probing ({exc}); the CPU will be used", WARN)
    return Line("CUDA", "not available; the estimator runs on the CPU (slow but correct)", INFO)


def _cpu_line() -> Line:
    """CPU bf16 support and what --precision auto picks (estimator.cpu_features)."""
    try:
        from .estimator.cpu_features import cpu_features

        return Line("CPU", cpu_features().describe(), INFO)
    except Exception as exc:  # never let a probe break the report
        return Line("CPU", f"could not read the CPU's features ({exc})", INFO)


def _bpy_line() -> Line:
    bpy = sys.modules.get("bpy")
    if bpy is not None:
        return Line("Blender", f"{bpy.app.version_string} (running inside Blender)", OK)
    ver = _version("bpy")
    if ver:
        return Line("Blender (bpy)", f"{ver} (headless Blender module)", OK,
                    [_blend_format_hint(ver)])
    return Line("Blender (bpy)", "not installed", FAIL,
                ["needed to build rigs and export files headless: pip install -e ."])


def _blend_format_hint(ver: str) -> str:
    """Which Blender opens the .blend files the CLI writes (the bpy module's own format)."""
    import os

    major_minor = ".".join(ver.split(".")[:2])
    chosen = os.environ.get("P2P_MOCAP_BLENDER")
    if chosen:
        return (f"convert builds .blend files in P2P_MOCAP_BLENDER={chosen} (that Blender's "
                "format)")
    return (f"convert writes Blender {major_minor} .blend files: Blender {major_minor} or newer "
            "opens them, older ones cannot ('not a blend file'); for an older Blender use "
            "convert --blender PATH (or P2P_MOCAP_BLENDER), or the add-on")


_ENV_AND_FLAG = {
    "SMPL-X model": (locations.ENV_SMPLX, "--smplx"),
    "Pose2Pose checkpoint": (locations.ENV_CHECKPOINT, "--checkpoint"),
    "person detector": (locations.ENV_DETECTOR, "--detector"),
}


def _places(lookup: locations.Lookup) -> list[str]:
    lines = [f"looked in {i}. {p.origin}: {p.path}" for i, p in enumerate(lookup.searched, 1)]
    env, flag = _ENV_AND_FLAG[lookup.what]
    lines.append(f"(a file elsewhere: pass {flag} PATH or set {env}=PATH)")
    return lines


def _smplx_section(flag) -> tuple[Section, bool, bool]:
    sec = Section("SMPL-X model (neutral; male/female optional)")
    found = locations.find_smplx(flag, "neutral")
    ok = standin = False
    if found.path is None:
        hint = _places(found)
        if found.problem:
            hint.insert(0, found.problem)
        hint += [f"put SMPLX_NEUTRAL.npz at: {found.install_to}",
                 f"get it from: {found.source}"]
        sec.lines.append(Line("SMPLX_NEUTRAL.npz", "not found", FAIL, hint))
    else:
        problems = check_smplx_file(found.path)
        if problems:
            sec.lines.append(Line("SMPLX_NEUTRAL.npz", f"{found.path} is not usable", FAIL,
                                  problems + [f"get a fresh copy from: {found.source}"]))
        else:
            ok, standin = True, found.standin
            kind = "STAND-IN (procedural, not the SMPL-X model)" if standin else "SMPL-X model file"
            sec.lines.append(Line("SMPLX_NEUTRAL.npz", f"{found.path} [{found.origin}] — {kind}",
                                  WARN if standin else OK))
    for gender in ("male", "female"):
        g = locations.find_smplx(flag, gender)
        label = f"SMPLX_{gender.upper()}.npz"
        if g.path is not None:
            # Checked by content too (headers only): a gendered rig reads this file.
            bad = check_smplx_file(g.path)
            if bad:
                sec.lines.append(Line(label, f"{g.path} is not usable (a gendered rig would "
                                             "fail)", WARN, bad))
                continue
            sec.lines.append(Line(label, f"{g.path}{' — STAND-IN' if g.standin else ''}", INFO))
        else:
            sec.lines.append(Line(label, "not found (only needed for a gendered rig)", INFO))
    return sec, ok, standin


def _checkpoint_section(flag, runtime: bool) -> tuple[Section, bool, bool]:
    sec = Section("Pose2Pose (Hand4Whole) checkpoint")
    found = locations.find_checkpoint(flag)
    if found.path is None:
        hint = _places(found)
        if found.problem:
            hint.insert(0, found.problem)
        hint += [f"put snapshot_6.pth.tar at: {found.install_to}",
                 f"get it from: {found.source}",
                 "then check it with: p2p-mocap weights check FILE"]
        sec.lines.append(Line("checkpoint", "not found", FAIL, hint))
        return sec, False, False
    if not runtime:
        standin = found.standin
        kind = "STAND-IN (random weights)" if standin else "checkpoint (content not checked here)"
        sec.lines.append(Line("checkpoint", f"{found.path} [{found.origin}] — {kind}",
                              WARN if standin else OK))
        return sec, True, standin
    from .estimator.pose2pose.checkpoint import CheckpointError, identify_checkpoint

    try:
        info = identify_checkpoint(found.path)
    except CheckpointError as exc:
        sec.lines.append(Line("checkpoint", f"{found.path} is not usable", FAIL,
                              [str(exc), f"get the real file from: {found.source}"]))
        return sec, False, False
    if info.kind == "unknown":
        sec.lines.append(Line("checkpoint", f"{found.path} — unknown file", FAIL,
                              [info.description, f"get the real file from: {found.source}"]))
        return sec, False, False
    if not info.loadable:
        sec.lines.append(Line("checkpoint", f"{found.path} — {info.kind}, but the network "
                                            "cannot load it", FAIL,
                              [info.description, f"get the real file from: {found.source}"]))
        return sec, False, False
    standin = info.kind == "stand-in"
    sec.lines.append(Line("checkpoint", f"{found.path} [{found.origin}] — {info.description}",
                          WARN if standin else OK, [f"sha256 {info.sha256}"]))
    return sec, True, standin


def _detector_section(flag) -> Section:
    sec = Section("Person detector (optional)")
    found = locations.find_detector(flag)
    if found.path is None:
        hint = [found.problem] if found.problem else []
        sec.lines.append(Line("detector", "not found: the whole frame (or a box you give) is used",
                              WARN if found.problem else INFO,
                              hint + [f"to use one, put it at: {found.install_to}",
                                      f"get it from: {found.source}"]))
    else:
        sec.lines.append(Line("detector", f"{found.path}{' — STAND-IN' if found.standin else ''}",
                              WARN if found.standin else OK))
    return sec


def _estimators_section(smplx, checkpoint, known: dict) -> Section:
    """One line per registered estimator (``--estimator NAME``): ready, with stand-ins, or
    what is missing. ``known``: the files checked by content above, by kind."""
    from .estimator.registry import DEFAULT_ESTIMATOR, ESTIMATORS

    sec = Section("Estimators (--estimator NAME)")
    for name, entry in ESTIMATORS.items():
        r = entry.check(smplx=smplx, checkpoint=checkpoint, known=known)
        label = f"{name} (default)" if name == DEFAULT_ESTIMATOR else name
        # (not ready: WARN; the files it misses are marked FAIL in their own sections)
        status = (WARN if r.standin else OK) if r.ready else WARN
        sec.lines.append(Line(label, r.detail, status, [entry.description]))
    return sec


def run_checks(smplx=None, checkpoint=None, detector=None, runtime: bool = True) -> Report:
    """Check everything the main job needs. ``runtime=False`` skips torch & co."""
    runtime_sec = _python_section(runtime)
    smplx_sec, smplx_ok, smplx_standin = _smplx_section(smplx)
    ckpt_sec, ckpt_ok, ckpt_standin = _checkpoint_section(checkpoint, runtime)
    est_sec = _estimators_section(smplx, checkpoint, {"smplx": (smplx_ok, smplx_standin),
                                                      "checkpoint": (ckpt_ok, ckpt_standin)})
    sections = [runtime_sec, smplx_sec, ckpt_sec, _detector_section(detector), est_sec]
    runtime_ok = all(ln.status != FAIL for ln in runtime_sec.lines)
    return Report(sections, ready=runtime_ok and smplx_ok and ckpt_ok,
                  standins=smplx_standin or ckpt_standin)


def format_report(report: Report) -> str:
    out = ["Pose2Pose Mocap — setup check", ""]
    for sec in report.sections:
        out.append(sec.title)
        for ln in sec.lines:
            out.append(f"  [{ln.status:>4}] {ln.label}: {ln.value}")
            out.extend(f"         {h}" for h in ln.hint)
        out.append("")
    if report.standins:
        out.append("WARNING: " + STANDIN_WARNING)
    if report.ready:
        out.append("Result: ready" + (" (with stand-ins)" if report.standins else ""))
    else:
        out.append(f"Result: NOT ready — {len(report.problems)} problem(s) above marked FAIL")
    return "\n".join(out)
