# SPDX-License-Identifier: GPL-3.0-or-later
"""The estimator interface: what ``EstimateJob`` needs from a pose estimator.

The job does sources -> detection/tracking -> crops -> ``infer`` -> take; an
estimator only turns person crops into per-person results:

* ``CropSpec``: the crop it wants (input size, and how the person box is grown
  before it is cut); the job cuts every crop with ``crop_spec.cut``.
* ``PoseEstimator.infer(crops, camera)``: one ``PersonResult`` per crop, with the
  body model's parameters under the take's names, expressed in the take's one
  static ``camera``.
* ``LoadOptions``: what a registry entry's ``load`` gets (``registry.ESTIMATORS``).

Cheap to import (numpy and the standard library only); never imports torch or bpy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Sequence, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .crop import PersonCrop, PinholeCamera

MODELS = ("smplx", "smpl")   # the body models a result's parameters can belong to


@dataclass(frozen=True)
class CropSpec:
    """How an estimator wants a person cut out of a frame.

    input_size: (H, W) of the crop ``infer`` gets, in pixels.
    box_scale: the person box, after being grown to ``aspect``, is enlarged by
        this factor around its centre (context around the person).
    box_aspect: W / H the person box is grown to (its shorter side grows, around
        the centre) before the enlargement; None = the crop's own W / H, so the
        box maps onto the crop without distortion.

    The crop is the affine warp (no rotation) of that box onto ``input_size``:
    bilinear, parts outside the image black (constant 0); pixels are RGB float32
    in 0..255, shape (H, W, 3) (``crop.crop_person``). The box may reach outside
    the image; the crop is None when the box does not overlap it.

    Pose2Pose: 512x384, aspect 0.75, x1.25. I2L-MeshNet: 256x256, aspect 1, x1.25.
    """

    input_size: tuple[int, int]
    box_scale: float = 1.25
    box_aspect: float | None = None

    def __post_init__(self):
        h, w = (int(v) for v in self.input_size)
        if h < 1 or w < 1 or (h, w) != tuple(self.input_size):
            raise ValueError(f"input_size must be (H, W) whole positive numbers, "
                             f"not {self.input_size!r}")
        if not self.box_scale > 0 or (self.box_aspect is not None and not self.box_aspect > 0):
            raise ValueError("box_scale and box_aspect must be positive")

    @property
    def aspect(self) -> float:
        """W / H of the processed person box."""
        h, w = self.input_size
        return float(self.box_aspect) if self.box_aspect is not None else w / h

    def process_box(self, box_xywh, image_size) -> np.ndarray | None:
        """The crop box (4,) float32 xywh of a person box in an image (W, H), or None."""
        from .crop import process_bbox

        return process_bbox(box_xywh, int(image_size[0]), int(image_size[1]),
                            aspect=self.aspect, scale=self.box_scale)

    def cut(self, image_rgb: np.ndarray, box_xywh) -> "PersonCrop | None":
        """The crop of a person box (xywh, image pixels) from an (H, W, 3) RGB image."""
        from .crop import crop_person

        return crop_person(image_rgb, box_xywh, out_shape=tuple(self.input_size),
                           aspect=self.aspect, scale=self.box_scale)


@dataclass
class PersonResult:
    """What an estimator made of one person crop.

    model: "smplx" or "smpl": the body model ``params`` belong to.
    params: the body model's parameters under the take's names, one frame each
        (``retarget.take.PARAM_COLUMNS``: global_orient (3,), body_pose (63,),
        ..., betas (10,), transl (3,)); ``transl`` in the take's static camera
        (the ``camera`` given to ``infer``), hand poses in the flat-hand-mean
        convention. An SMPL result has no hand, jaw, eye or expression entries.
    joints_2d: (J, 3) the estimator's 2D joints in image pixels (x, y) with a
        per-joint confidence (J and the joint order are the estimator's;
        Pose2Pose: its 65 positional joints).
    confidence: how much the crop looks like a person was there, in [0, 1]; the
        tracker re-detects and drops people by it and the take stores it as
        ``score``.
    box: (4,) xywh image pixels: the processed box the crop was cut from.
    raw: optional estimator-specific per-frame arrays the take stores where it
        has a place for them (Pose2Pose: cam_trans (3,), lhand_bbox, rhand_bbox,
        face_bbox (4,) xyxy image pixels); empty when there are none.
    track_points: (K, 2) image pixels the tracker frames the next crop around
        (the body joints that outline the person); None = ``joints_2d[:, :2]``.
    """

    model: str
    params: dict[str, np.ndarray]
    joints_2d: np.ndarray
    confidence: float
    box: np.ndarray
    raw: dict[str, np.ndarray] = field(default_factory=dict)
    track_points: np.ndarray | None = None

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, not {self.model!r}")

    def tracking_points(self) -> np.ndarray:
        """(K, 2) image pixels for the tracker."""
        if self.track_points is not None:
            return self.track_points
        return np.asarray(self.joints_2d)[:, :2]

    def take_row(self) -> dict[str, Any]:
        """One frame of the take (``take_rows.assemble_take``): params, raw outputs,
        ``bbox_xywh``, ``joints_2d`` and ``score`` (float32, as the take stores it)."""
        row: dict[str, Any] = dict(self.params)
        row.update(self.raw)
        row.update(bbox_xywh=self.box, joints_2d=self.joints_2d,
                   score=np.float32(self.confidence))
        return row


@dataclass(frozen=True)
class LoadOptions:
    """What a registry entry's ``load`` gets.

    device: where to run, already resolved ("cpu", "cuda", "cuda:1").
    precision: "fp32", "bf16" or "fp16" (how an estimator honours it is its own).
    checkpoint, smplx: the --checkpoint / --smplx flags (None: the search order
        of ``p2p-mocap doctor``); an estimator ignores the ones it does not use.
    engine: what runs the network (``--engine``; Pose2Pose: ``pose2pose.engines``).
    network: an already loaded network of this estimator (loads no files);
        ``network_name`` (the take's ``model`` text) and ``network_standin`` go
        with it.
    """

    device: str = "cpu"
    precision: str = "fp32"
    checkpoint: str | None = None
    smplx: str | None = None
    network: Any = None
    network_name: str = ""
    network_standin: bool = False
    engine: str = "torch"  # pose2pose: torch, onnxruntime, openvino or auto (others: torch)


@runtime_checkable
class PoseEstimator(Protocol):
    """A loaded estimator, ready to ``infer``.

    name: its registry name ("pose2pose").
    model: "smplx" or "smpl", the body model of its results.
    standin: True when its weights (or the body model file) are stand-ins: the
        results are meaningless and takes are marked ``standin``.
    crop_spec: the crop it wants.
    model_name: the take's ``model`` text: the weights' file name and sha256.
    device: where it runs ("cpu", "cuda", ...), for the job's batch size.
    """

    name: str
    model: str
    standin: bool
    crop_spec: CropSpec
    model_name: str
    device: str

    def infer(self, crops: Sequence["PersonCrop"], camera: "PinholeCamera"
              ) -> list[PersonResult]:
        """One result per crop, in order. ``crops``: cut with ``crop_spec``, from
        frames of one footage; ``camera``: the take's static camera (image pixels),
        in which the results' ``transl`` is expressed. May raise RuntimeError for
        "out of memory" (the job then retries with fewer crops)."""
        ...


@dataclass(frozen=True)
class Readiness:
    """Whether an estimator can run here (``registry.EstimatorEntry.check``).

    ready: its files were found (and, where checked, are usable); standin: some of
    them are stand-ins; detail: one line saying which files or what is missing.
    """

    ready: bool
    standin: bool
    detail: str

