# SPDX-License-Identifier: GPL-3.0-or-later
"""Person detector: torchvision's Faster R-CNN (ResNet-50 FPN, COCO), people only.

Weights are found by ``weights.locations.find_detector`` (flag, environment,
user data directory, checkout) and read with ``torch.load(weights_only=True)``
only. Both torchvision COCO files are understood (``fasterrcnn_resnet50_fpn``
and ``..._v2``; the architecture is picked from the file's keys).

Downloading is never implicit: ``download_detector()`` fetches torchvision's
file into the user data directory, and the CLI calls it only with
``--download-detector``.

``write_detector_standin(root)`` writes deterministic random weights for tests
(``root/detector/standin_detector.pth``). They are shaped so that the stand-in
"finds" people (a fixed person-class bias) at arbitrary places: enough to drive
the pipeline, meaningless as detections. A stand-in is recognised by its name
and by a marker tensor inside the file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..common.errors import P2PError

PERSON_LABEL = 1  # COCO category id of "person" in torchvision's detection models
DEFAULT_SCORE_THRESHOLD = 0.5
STANDIN_MARKER_KEY = "_p2p_mocap_standin"


class DetectorError(P2PError, ValueError):
    """A detector weights file that cannot be used; the message is for the user."""


@dataclass
class Detection:
    box: np.ndarray  # (4,) xyxy, image pixels
    score: float

    @property
    def xywh(self) -> np.ndarray:
        x1, y1, x2, y2 = self.box
        return np.array([x1, y1, x2 - x1, y2 - y1], dtype=np.float64)


def _build(arch: str, min_size: int):
    from torchvision.models import detection

    fn = (detection.fasterrcnn_resnet50_fpn_v2 if arch == "v2"
          else detection.fasterrcnn_resnet50_fpn)
    return fn(weights=None, weights_backbone=None, num_classes=91, min_size=min_size)


def _arch_of(keys) -> str:
    return "v2" if "roi_heads.box_head.0.0.weight" in keys else "v1"


class PersonDetector:
    """Callable: list of RGB uint8 images -> list of ``Detection`` lists (people only)."""

    def __init__(self, path, device: str = "cpu", score_threshold: float = DEFAULT_SCORE_THRESHOLD,
                 min_size: int = 800):
        import torch

        self.path = Path(path)
        try:
            sd = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any failure means "not usable"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DetectorError(f"{self.path}: not a usable detector weights file "
                                f"(only plain tensor files are read): {first}") from None
        if isinstance(sd, dict) and "model" in sd and isinstance(sd["model"], dict):
            sd = sd["model"]
        if not isinstance(sd, dict) or not sd:
            raise DetectorError(f"{self.path}: not a detector weights file (no tensors)")
        self.standin = sd.pop(STANDIN_MARKER_KEY, None) is not None
        self.arch = _arch_of(sd)
        model = _build(self.arch, min_size)
        try:
            model.load_state_dict(sd, strict=True)
        except RuntimeError as exc:
            raise DetectorError(f"{self.path}: not torchvision Faster R-CNN ResNet-50 FPN COCO "
                                f"weights ({str(exc).splitlines()[0]})") from None
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.score_threshold = float(score_threshold)
        self.description = (f"{'STAND-IN ' if self.standin else ''}Faster R-CNN ResNet-50 FPN"
                            f"{' v2' if self.arch == 'v2' else ''} ({self.path.name})")

    def __call__(self, images) -> list[list[Detection]]:
        import torch

        tensors = [torch.from_numpy(np.ascontiguousarray(im)).to(self.device)
                   .permute(2, 0, 1).float().div_(255.0) for im in images]
        with torch.inference_mode():
            outs = self.model(tensors)
        result = []
        for o in outs:
            boxes = o["boxes"].float().cpu().numpy()
            labels = o["labels"].cpu().numpy()
            scores = o["scores"].float().cpu().numpy()
            keep = (labels == PERSON_LABEL) & (scores >= self.score_threshold)
            dets = [Detection(b.astype(np.float64), float(s))
                    for b, s in zip(boxes[keep], scores[keep]) if b[2] > b[0] and b[3] > b[1]]
            dets.sort(key=lambda d: -d.score)
            result.append(dets)
        return result


def load_person_detector(flag=None, device: str = "cpu", *,
                         score_threshold: float = DEFAULT_SCORE_THRESHOLD,
                         min_size: int = 800) -> PersonDetector | None:
    """The detector found by the search order, or None when there are no weights.

    An explicit path (flag or environment) that holds no weights raises DetectorError.
    """
    from ..weights.locations import find_detector

    hit = find_detector(flag)
    if hit.problem:
        raise DetectorError(hit.problem)
    if hit.path is None:
        return None
    return PersonDetector(hit.path, device, score_threshold=score_threshold, min_size=min_size)


def download_detector(dest_dir=None, *, progress: bool = True) -> Path:
    """Download torchvision's COCO weights into ``<user data dir>/detector/`` (explicit opt-in).

    ``weights.download`` owns the address, the exact size and the sha256; the
    download resumes, never writes more than the expected size, and raises
    ``DownloadError`` (one line) on any failure. ``progress``: print a line now
    and then on stderr while it runs on a terminal.
    """
    import sys
    import time

    from ..weights.download import DETECTOR_WEIGHTS, download_detector_weights

    report = None
    if progress and sys.stderr.isatty():
        last = [0.0]

        def report(done, total):
            now = time.monotonic()
            if now - last[0] >= 1.0 or (total and done >= total):
                last[0] = now
                shown = f"{100 * done / total:.0f}%" if total else f"{done >> 20} MB"
                sys.stderr.write(f"\rdownloading the person detector ({DETECTOR_WEIGHTS.size >> 20}"
                                 f" MB): {shown}\x1b[K")
                if total and done >= total:
                    sys.stderr.write("\n")
                sys.stderr.flush()

    return download_detector_weights(dest_dir, progress=report)


# --------------------------------------------------------------------------------------------
def standin_state_dict(seed: int = 0) -> dict:
    """Deterministic stand-in weights (numpy rule, independent of torch's RNG).

    Per key i: ``rng = default_rng([seed, i])``; frozen-BN statistics near (0, 1),
    affine near (1, 0); other >=2-D tensors normal / sqrt(fan_in); biases small.
    The box classifier's weights are scaled down and the person logit is biased,
    so proposals come out as "person" with score ~0.8, boxes ~ the RPN proposals.
    """
    import torch

    shapes = {k: tuple(v.shape) for k, v in _build("v1", 800).state_dict().items()}
    out: dict = {}
    for i, (name, shape) in enumerate(shapes.items()):
        rng = np.random.default_rng([seed, i])
        leaf = name.rsplit(".", 1)[1]
        if leaf == "running_var":
            v = 0.75 + 0.5 * rng.random(shape)
        elif leaf == "running_mean":
            v = 0.05 * rng.standard_normal(shape)
        elif ".bn" in name or "downsample.1" in name:
            v = (1 + 0.1 * rng.standard_normal(shape)) if leaf == "weight" else \
                0.05 * rng.standard_normal(shape)
        elif len(shape) >= 2:
            v = rng.standard_normal(shape) / np.sqrt(float(np.prod(shape[1:])))
        else:
            v = 0.05 * rng.standard_normal(shape)
        out[name] = np.asarray(v, dtype=np.float32)
    out["roi_heads.box_predictor.cls_score.weight"] *= 0.02
    bias = np.zeros(91, dtype=np.float32)
    bias[PERSON_LABEL] = 6.0
    out["roi_heads.box_predictor.cls_score.bias"] = bias
    out["roi_heads.box_predictor.bbox_pred.weight"] *= 0.01
    out["roi_heads.box_predictor.bbox_pred.bias"][:] = 0.0
    out["rpn.head.bbox_pred.weight"] *= 0.05
    sd = {k: torch.from_numpy(v) for k, v in out.items()}
    sd[STANDIN_MARKER_KEY] = torch.tensor([seed], dtype=torch.int64)
    return sd


def write_detector_standin(root, seed: int = 0) -> Path:
    """Write ``root/detector/standin_detector.pth`` (atomically); returns its path."""
    import torch

    from ..common.files import atomic_write
    from ..weights.locations import DETECTOR_SUBDIR, STANDIN_DETECTOR_NAME

    folder = Path(root) / DETECTOR_SUBDIR
    folder.mkdir(parents=True, exist_ok=True)
    sd = standin_state_dict(seed)
    # Our own file name: written again, it is replaced (in one step, never half-written).
    return atomic_write(folder / STANDIN_DETECTOR_NAME, lambda tmp: torch.save(sd, tmp),
                        replace=True)
