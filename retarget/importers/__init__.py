# SPDX-License-Identifier: GPL-3.0-or-later
"""Importers: other estimators' results in, takes (``p2p-take/2``) out.

Each format is one module with ``NAME``, ``ESTIMATOR`` (recorded in the take),
``EXPECTED`` (what a file of it looks like, for messages), ``detect(path) -> bool``
(by content or layout, cheap, never reads data or unpickles anything) and
``read(path, body=None, person=0) -> Take``. ``FORMATS`` is the registry;
``detect_format`` picks one by content; ``import_file`` reads a file into a take.

What each reader relies on (keys, shapes, conventions, camera) is written in
``docs/importers.md``. Safety: ``.npz`` files are read through ``common.npz``
(headers first, no object arrays); ``.pt`` files only with
``torch.load(weights_only=True)`` (torch is imported inside that reader only).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import TakeError
from ._common import BodyInfo, ImportFormatError  # noqa: F401 - the API




def body_info_from_model(path) -> BodyInfo:
    """``BodyInfo`` of an SMPL-X ``.npz`` model file (read without pickle)."""
    from ...common.smplx_file import SmplxFileError, read_smplx_arrays
    from ..errors import ModelFileError
    from ..smplx_model import load_smplx_model, rest_joints

    model = load_smplx_model(path)
    try:
        means = read_smplx_arrays(path, ("hands_meanl", "hands_meanr"))
    except SmplxFileError as exc:
        raise ModelFileError(str(exc)) from None
    hands = tuple(np.asarray(means[k], np.float64).reshape(45) for k in ("hands_meanl",
                                                                         "hands_meanr"))

    def pelvis(betas, expression):
        return rest_joints(model, betas, expression)[..., 0, :]

    return BodyInfo(hands_mean=hands, pelvis=pelvis)


def _registry() -> dict:
    from . import amass, gvhmr, smplcodec, smplerx

    return {m.NAME: m for m in (amass, smplerx, gvhmr, smplcodec)}


FORMAT_NAMES = ("amass", "smplerx", "gvhmr", "smplcodec")
NEEDS_BODY = ("smplerx", "gvhmr")   # formats whose conversion uses BodyInfo


def formats() -> dict:
    """``{name: module}`` of every importer."""
    return _registry()


def expected_text() -> str:
    return "; ".join(f"{n}: {m.EXPECTED}" for n, m in _registry().items())


def detect_format(path) -> str | None:
    """The importer name whose structure ``path`` has (by content/layout), else None.
    Takes (``p2p-take``) are not an import format: None."""
    path = Path(path)
    for name, module in _registry().items():
        try:
            if module.detect(path):
                return name
        except (OSError, ValueError, TakeError):
            continue
    return None


def import_file(path, fmt: str = "auto", *, body: BodyInfo | None = None,
                person: int = 0):
    """The take of another tool's result file. Raises ImportFormatError (one line) for
    unknown or bad files, naming what was expected."""
    path = Path(path)
    if not path.exists():
        raise ImportFormatError(f"{path}: no such file or folder")
    reg = _registry()
    if fmt == "auto":
        fmt = detect_format(path)
        if fmt is None:
            raise ImportFormatError(f"{path.name}: not a result file of a known tool "
                                    f"(expected {expected_text()})")
    if fmt not in reg:
        raise ImportFormatError(f"unknown import format {fmt!r} (known: "
                                f"{', '.join(reg)})")
    return reg[fmt].read(path, body=body, person=person)


def import_with_model(path, fmt: str = "auto", *, model_file=None, model_given: bool = False,
                      person: int = 0, fps: float | None = None):
    """``import_file`` with the SMPL-X model looked up for the formats that use it.

    ``model_file()``: returns the SMPL-X model path or raises a ``P2PError`` (the
    caller's search order; ``retarget`` does not know where model files live).
    SMPLer-X needs the model; GVHMR and ``.smpl`` use it when found, or when
    ``model_given`` (the user named one) require it. ``fps`` overrides the rate.
    """
    from dataclasses import replace

    from ...common.errors import P2PError

    path = Path(path)
    if fmt == "auto":
        fmt = detect_format(path) or "auto"
    body = None
    if model_file is not None and (fmt in NEEDS_BODY or fmt == "smplcodec"):
        try:
            body = body_info_from_model(model_file())
        except P2PError:
            if fmt == "smplerx" or model_given:
                raise
    take = import_file(path, fmt, body=body, person=person)
    if fps is not None:
        take = replace(take, fps=float(fps), notes=[n for n in take.notes if "fps" not in n])
    return take
