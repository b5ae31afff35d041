# SPDX-License-Identifier: GPL-3.0-or-later
"""Tracking that stays correct at large batches: speculate, then check.

One frame at a time, the crop of frame t is framed by the output of frame t-1
(``tracking.Tracker``), which allows no batch at all. The batched pipeline
instead *predicts* the boxes of the next frames from the newest output
(``speculative_boxes``: the track's box moved by its velocity; the growth for
uncertainty is that of a one-frame lag, as the one-frame tracker would use),
runs all those crops in one batch, and then replays the tracker frame by frame:
before frame t's output is taken, the box the one-frame tracker would have
used (``Tracker.crop_boxes`` after the outputs of frames < t) is compared with
the box the crop was made from (``boxes_agree``). The first frame whose box
disagrees by more than ``tolerance``, or at which the one-frame tracker would
run the detector, and every frame after it, are run again in the next batch,
whose first frame is framed exactly. So a crop never depends on an output many
frames old without that check, and a person who moves fast, turns, leaves or
comes back costs re-runs, not wrong crops.

``tolerance``: the largest difference between the two processed crop boxes
(centre x, centre y, width, height), as a share of the expected box's width.
0 makes the batched run equal the one-frame run exactly (then most predictions
of a moving person are re-run); the default 0.02 is 2 % of the crop (about 8 of
its 384 pixels): well within what the one-frame tracker's own box moves from
one output to the next (its joints jitter by more), so the outputs differ from
the one-frame run's by noise of that size, not by a different framing.
"""
from __future__ import annotations

import numpy as np

DEFAULT_TOLERANCE = 0.02


def speculative_box(track, seq: int) -> np.ndarray:
    """The box (xywh) the one-frame tracker is expected to use for ``track`` at ``seq``:
    the last box moved by the velocity for the frames since, grown as for a one-frame
    lag (``tracking.Track.predicted_box`` grows by the whole lag instead)."""
    dt = max(0, seq - track.seq)
    b = np.asarray(track.box, dtype=np.float64).copy()
    if not dt:
        return b
    b[:2] += track.velocity * dt
    grow = min(0.25, 0.5 * float(np.hypot(*track.velocity)) / max(b[2], b[3], 1.0))
    return np.array([b[0] - b[2] * grow / 2, b[1] - b[3] * grow / 2,
                     b[2] * (1 + grow), b[3] * (1 + grow)])


def speculative_boxes(tracker, seq: int) -> dict[int, np.ndarray]:
    """Predicted boxes of the active tracks at ``seq`` (``Tracker.crop_boxes``'s layout)."""
    return {t.id: speculative_box(t, seq) for t in tracker.active}


def box_error(used, expected, spec, image_size) -> float:
    """Difference of two person boxes once processed into crop boxes (``spec.process_box``):
    max |d centre x|, |d centre y|, |d w|, |d h| over the expected box's width; 0 when
    neither overlaps the image, inf when only one does."""
    a, b = spec.process_box(used, image_size), spec.process_box(expected, image_size)
    if a is None or b is None:
        return 0.0 if a is None and b is None else float("inf")
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = np.abs(np.r_[a[:2] + a[2:] / 2 - b[:2] - b[2:] / 2, a[2:] - b[2:]])
    return float(d.max() / max(b[2], 1e-9))


def boxes_agree(used: dict, expected: dict, spec, image_size, tolerance: float) -> bool:
    """Whether the crops made from ``used`` ({track id: xywh}) are those the one-frame
    tracker would make from ``expected``: the same people, every box within ``tolerance``
    (0: equal)."""
    if list(used) != list(expected):
        return False
    for tid, box in used.items():
        if box_error(box, expected[tid], spec, image_size) > max(0.0, tolerance):
            return False
    return True


def scheduled_detection(tracker, seq: int) -> bool:
    """Whether the detector's schedule (``detect_every``) falls on ``seq`` (known in advance,
    unlike detections asked for by a low confidence)."""
    every = tracker.cfg.detect_every
    last = tracker.last_detection_seq
    return bool(every) and last is not None and seq - last >= every


def next_span(span: int, planned: int, accepted: int, cap: int) -> int:
    """Frames to predict next: double after a batch taken whole, else as many as were
    taken (at least 1): re-runs stay few when the motion is hard to predict."""
    if accepted >= planned:
        return max(1, min(cap, 2 * max(span, planned)))
    return max(1, min(cap, accepted))
