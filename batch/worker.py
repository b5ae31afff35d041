# SPDX-License-Identifier: GPL-3.0-or-later
"""The per-clip work, run in worker processes (``local``) or Ray tasks (``ray_runner``).

Both functions take and return plain dicts (picklable, JSON-able) and never
raise for a problem with the clip: they return ``{"ok": False, "error": one
line}``. torch and bpy are imported inside them only.

* ``estimate_clip(spec)``: ``EstimateJob`` on the clip, the take(s) written
  atomically to ``spec["take"]``. The loaded network (and the detector) are
  kept per process, so an estimator process loads them once.
* ``retarget_clip(spec)``: for each take, ``convert_take`` to the .blend and
  (with a preset) ``export_scene``; both reset the bpy session, so the caller
  runs each call in a fresh process (one bpy per process).

An existing output is replaced only if it is in ``spec["replace"]`` (the files
the output folder's manifest says the batch wrote, ``jobs.replaceable_outputs``);
any other existing file fails the clip with that reason and is left as it is.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

_CACHE: dict = {}
_PROGRESS = None      # a callable(event dict) set by the local pool's initializer


def set_progress_sink(sink) -> None:
    global _PROGRESS
    _PROGRESS = sink


def _message(exc: BaseException) -> str:
    from ..estimator.errors import EstimatorError
    from ..estimator.sources import SourceError
    from ..retarget.errors import RetargetError

    from ..common.errors import P2PError

    text = " ".join(str(exc).split()) or exc.__class__.__name__
    if isinstance(exc, (EstimatorError, SourceError, RetargetError, P2PError,
                        ForeignFileError)):
        return text
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    return f"{exc.__class__.__name__}: {text}"


class ForeignFileError(Exception):
    """An output name is taken by a file the batch did not write."""


def _key(path) -> str:
    return os.path.normcase(os.path.abspath(os.fspath(path)))


def _replace_set(spec: dict) -> set[str]:
    return {_key(p) for p in spec.get("replace") or ()}


def _may_write(path, replace: set[str]) -> bool:
    """False when ``path`` exists and is not one of the batch's own outputs."""
    if not os.path.lexists(path):
        return True
    if _key(path) in replace:
        return True
    raise ForeignFileError(f"{path} exists and this batch did not write it (or it was changed "
                           "since); not replacing it: move it away and run again")


def estimate_clip(spec: dict) -> dict:
    try:
        return _estimate(spec)
    except Exception as exc:  # noqa: BLE001 - one bad clip never stops the batch
        try:
            return {"ok": False, "error": _message(exc)}
        except Exception:  # noqa: BLE001
            return {"ok": False, "error": f"{exc.__class__.__name__}: {exc}"}


def _estimate(spec: dict) -> dict:
    import torch

    from ..estimator.options import EstimateOptions
    from ..estimator.pipeline import EstimateJob

    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    opts = EstimateOptions.from_dict(spec["estimate"]).job_arguments()
    key = (opts.get("estimator"), opts.get("checkpoint"), opts.get("smplx"), opts.get("device"),
           opts.get("precision"), str(opts.get("detector")), opts.get("min_score"))
    cached = _CACHE.get(key)
    if cached:
        opts.update(model=cached["model"], model_name=cached["model_name"],
                    model_standin=cached["model_standin"])
        if cached["detector"] is not None:
            opts["detector"] = cached["detector"]
    take = Path(spec["take"])
    take.parent.mkdir(parents=True, exist_ok=True)
    replace = _replace_set(spec)
    if str(opts.get("person")).lower() == "all":
        stem = take.name[:-len(".take.npz")] if take.name.endswith(".take.npz") else take.stem
        for p in sorted(take.parent.glob(f"{stem}.person*.take.npz")):
            _may_write(p, replace)
    else:
        _may_write(take, replace)
    job = EstimateJob(spec["input"], take, force=False, replace=sorted(replace), **opts)
    t_est = None
    for p in job.steps():
        if p.stage == "estimating":
            if t_est is None:
                t_est = time.perf_counter()
            if _PROGRESS is not None:
                _PROGRESS({"clip": spec["clip"], "done": p.done, "total": p.total,
                           "fps": p.fps})
    seconds = time.perf_counter() - t_est if t_est is not None else 0.0
    if not cached and getattr(job, "model", None) is not None:
        det = getattr(job, "detector", None)
        _CACHE[key] = {"model": job.model, "model_name": job.model_name,
                       "model_standin": job.model_standin,
                       "detector": det if callable(det) else None}
    res = job.result
    return {"ok": True, "takes": [str(p) for p in res.outputs], "people": list(res.people),
            "frames": int(res.frames_done), "frames_total": int(res.frames_total),
            "estimate_s": round(seconds, 3), "notes": list(res.notes),
            "standin": bool(res.standin), "pid": os.getpid()}


def retarget_clip(spec: dict) -> dict:
    try:
        return _retarget(spec)
    except Exception as exc:  # noqa: BLE001
        try:
            return {"ok": False, "error": _message(exc)}
        except Exception:  # noqa: BLE001
            return {"ok": False, "error": f"{exc.__class__.__name__}: {exc}"}


def _retarget(spec: dict) -> dict:
    from ..retarget.convert import convert_take, default_output
    from ..retarget.options import ConvertOptions
    from ..retarget.convert import BodyModelFiles
    from ..weights.locations import smpl_lookup, smplx_lookup

    t0 = time.perf_counter()
    conv = ConvertOptions.from_dict(spec["convert"])
    export = spec.get("export")
    stages = spec.get("stages", ["convert", "export"])
    notes: list[str] = []
    blends, exports = [], []
    replace = _replace_set(spec)
    if export:
        from ..retarget.export_cli import default_export_output
    from ..retarget.cleanup.report import report_paths

    reports: list[str] = []
    for take in spec["takes"]:  # every name is checked before anything is written
        blend = default_output(Path(take))
        if "convert" in stages:
            _may_write(blend, replace)
            for p in report_paths(take):
                _may_write(p, replace)
        if export:
            _may_write(default_export_output(blend, export["preset"], export.get("target")),
                       replace)
    for take in spec["takes"]:
        blend = default_output(Path(take))
        if "convert" in stages:
            models = BodyModelFiles(smplx_lookup(spec.get("smplx")), smpl_lookup(spec.get("smpl")))
            convert_take(take, models, blend, options=conv,
                         overwrite=_key(blend) in replace, notes=notes)
            reports += _qa_report(take, models, conv, replace, notes)
        blends.append(str(blend))
        if export:
            from ..retarget.blender.export import export_scene
            from ..retarget.export_cli import default_export_output

            target = default_export_output(blend, export["preset"], export.get("target"))
            if export.get("target"):   # on another skeleton (export --target)
                from ..retarget.export_cli import export_on_target

                export_on_target(blend, export["preset"], target, target=export["target"],
                                 mapping=export.get("map"),
                                 target_armature=export.get("target_armature"),
                                 foot_ik=export.get("foot_ik", True), root=export["root"],
                                 rest_frame=export["rest_frame"],
                                 overwrite=_key(target) in replace, notes=notes)
            else:
                export_scene(blend, export["preset"], target, root=export["root"],
                             rest_frame=export["rest_frame"], overwrite=_key(target) in replace,
                             notes=notes)
            exports.append(str(target))
    return {"ok": True, "blends": blends, "exports": exports, "reports": reports,
            "notes": notes, "retarget_s": round(time.perf_counter() - t0, 3),
            "pid": os.getpid()}


def _qa_report(take, models, conv, replace: set[str], notes: list) -> list[str]:
    """The take's quality report as converted (``clip.qa.json`` + ``.qa.png`` next to it;
    ``cleanup.report.converted_report``); a take it cannot measure gets a note instead."""
    from ..common.errors import P2PError
    from ..retarget.cleanup.report import converted_report, report_paths, write_json, write_plot
    from ..retarget.convert import model_file
    from ..retarget.smplx_model import load_body_model
    from ..retarget.take import read_take

    t = read_take(take)
    try:  # SMPL-X or SMPL (I2L-MeshNet): the take's own body model
        model = load_body_model(model_file(models, conv.gender or t.gender, t.body_model),
                                t.body_model)
        rep = converted_report(t, model, conv)
    except (P2PError, ValueError) as exc:  # the take converted: a report it lacks is a note
        notes.append(f"{Path(take).name}: no QA report ({exc})")
        return []
    j, p = report_paths(take)
    return [str(write_json(rep, j, replace=_key(j) in replace)),
            str(write_plot(rep, p, replace=_key(p) in replace))]
