# SPDX-License-Identifier: GPL-3.0-or-later
"""Person tracking between detections (numpy only; no torch, no network).

How a person is followed through a clip:

* A **detection** (or the whole frame / a user box when there is no detector)
  starts a track with a person box.
* On the next frames the person box comes from the estimator's own body joints
  of the previous frame, in image pixels (``box_from_joints``), moved by the
  track's velocity when the previous output is a few frames old (batched
  inference, see ``pipeline``).
* Each output comes with a **confidence** in [0, 1] from the estimator
  (``base.PersonResult.confidence``; Pose2Pose's is ``pose2pose.outputs.
  crop_confidence``: the body joints must spread over the crop like a person
  does, and agree with the projection of the SMPL-X mesh). When a track's
  confidence drops below ``redetect_below``, or every ``detect_every`` frames,
  the detector runs again. Below ``follow_above`` the box is not moved by the
  (unreliable) joints; a track that stays unreliable for ``max_lost`` frames
  and is not re-found by a detection ends.
* Detections are matched to tracks by box overlap (IoU) and by the share of the
  track's last joints that fall inside the detection box (Hungarian
  assignment), so several people keep stable ids. New people get the next id;
  ids count from 1 and, among people first seen in the same frame, go from left
  to right.
* The default person is the most prominent one: the largest and most central
  box (``prominence``).

Everything here works on plain arrays so it can be tested with synthetic
sequences; nothing depends on which estimator made the joints.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# At most this many body joints are used per output (the estimator's tracking points;
# Pose2Pose: the 25 body joints of joint_img, see pose2pose.joints.BODY_POSITIONAL_JOINTS).
NUM_BODY = 25


def iou_xywh(a: np.ndarray, b: np.ndarray) -> float:
    ax2, ay2 = a[0] + a[2], a[1] + a[3]
    bx2, by2 = b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


def inside_fraction(points: np.ndarray | None, box: np.ndarray) -> float:
    """Share of points (K, 2) inside the xywh box."""
    if points is None or len(points) == 0:
        return 0.0
    x, y = points[:, 0], points[:, 1]
    inside = (x >= box[0]) & (x <= box[0] + box[2]) & (y >= box[1]) & (y <= box[1] + box[3])
    return float(inside.mean())


def box_from_joints(joints: np.ndarray) -> np.ndarray:
    """A person box (xywh, image pixels) from the 25 body joints (25, 2) in image pixels.

    The joints (ears/eyes/nose at the top, heels and toes at the bottom, wrists at
    the sides) lie inside the person's outline, so the box is padded to resemble a
    detector's box: 10 % of the body's size above (top of the head), 4 % below,
    8 % at each side (hands beyond the wrists).
    """
    j = np.asarray(joints, dtype=np.float64)[:NUM_BODY, :2]
    x1, y1 = j.min(axis=0)
    x2, y2 = j.max(axis=0)
    s = max(x2 - x1, y2 - y1, 1.0)
    x1, x2 = x1 - 0.08 * s, x2 + 0.08 * s
    y1, y2 = y1 - 0.10 * s, y2 + 0.04 * s
    return np.array([x1, y1, x2 - x1, y2 - y1])


def prominence(box: np.ndarray, image_size) -> float:
    """Largest and most central: sqrt(area share) x (1 - distance to the centre / half diagonal)."""
    W, H = float(image_size[0]), float(image_size[1])
    x, y, w, h = (float(v) for v in box)
    x1, y1, x2, y2 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    area = max(0.0, x2 - x1) * max(0.0, y2 - y1) / (W * H)
    cx, cy = x + w / 2, y + h / 2
    d = np.hypot(cx - W / 2, cy - H / 2) / (0.5 * np.hypot(W, H))
    return float(np.sqrt(area) * max(0.0, 1.0 - 0.5 * min(d, 1.0)))


@dataclass
class Track:
    id: int
    box: np.ndarray                       # xywh person box at ``seq`` (image pixels)
    seq: int                              # sequence number of the frame ``box`` belongs to
    joints: np.ndarray | None = None      # (25, 2) body joints at ``joints_seq``, image pixels
    joints_seq: int = -1
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # centre px / frame
    conf: float = 1.0
    lost: int = 0                         # consecutive unreliable outputs
    alive: bool = True
    first_seq: int = 0
    prominence_sum: float = 0.0
    outputs: int = 0

    def predicted_box(self, seq: int) -> np.ndarray:
        """The crop box for frame ``seq``: moved by the velocity, enlarged for the lag."""
        dt = max(0, seq - self.seq)
        b = self.box.copy()
        if dt:
            shift = self.velocity * dt
            b[0] += shift[0]
            b[1] += shift[1]
            # Uncertainty grows with the lag: widen by the distance travelled (capped).
            grow = min(0.25, 0.5 * float(np.hypot(*shift)) / max(b[2], b[3], 1.0))
            b = np.array([b[0] - b[2] * grow / 2, b[1] - b[3] * grow / 2,
                          b[2] * (1 + grow), b[3] * (1 + grow)])
        return b

    def predicted_joints(self, seq: int) -> np.ndarray | None:
        if self.joints is None:
            return None
        return self.joints + self.velocity * max(0, seq - self.joints_seq)


@dataclass
class TrackerConfig:
    detect_every: int = 30        # frames between scheduled detections (0: only when needed)
    redetect_below: float = 0.35  # confidence below which the next batch starts with a detection
    follow_above: float = 0.2     # confidence needed to move the box by the joints
    max_lost: int = 30            # unreliable frames before a track ends (unless re-found)
    match_iou: float = 0.3        # IoU to accept a detection-track match ...
    match_inside: float = 0.7     # ... or this share of the track's joints inside the box
    duplicate_iou: float = 0.7    # two tracks this close are the same person: the newer ends
    min_height: float = 0.08      # detections smaller than this share of the image height are ignored
    max_people: int = 10          # at most this many tracks at once (the most prominent)
    velocity_smoothing: float = 0.5


class Tracker:
    """Tracks of people over a sequence of processed frames (``seq`` = 0, 1, 2, ...).

    mode ``"all"``: every person is followed. mode ``"one"``: only ``target`` is
    followed (an id, or ``None`` = the most prominent person of the first frame
    with detections); other detections are ignored except to re-find the
    target after it was lost.
    """

    def __init__(self, image_size, config: TrackerConfig | None = None, *, mode: str = "all",
                 target: int | None = None):
        if mode not in ("all", "one"):
            raise ValueError(f"mode must be 'all' or 'one', not {mode!r}")
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.cfg = config or TrackerConfig()
        self.mode = mode
        self.target = target
        self.tracks: dict[int, Track] = {}
        self.next_id = 1
        self.last_detection_seq: int | None = None
        self._want_detection = True
        self.lost_target: Track | None = None

    # -- queries ---------------------------------------------------------------------------
    @property
    def active(self) -> list[Track]:
        return [t for t in self.tracks.values() if t.alive]

    def needs_detection(self, seq: int) -> bool:
        if self._want_detection or not self.active:
            return True
        every = self.cfg.detect_every
        return bool(every) and self.last_detection_seq is not None and \
            seq - self.last_detection_seq >= every

    def crop_boxes(self, seq: int) -> dict[int, np.ndarray]:
        """Predicted person boxes (xywh) of the active tracks for frame ``seq``."""
        return {t.id: t.predicted_box(seq) for t in self.active}

    def main_track_id(self) -> int | None:
        """The person a single take follows by default: most prominent over the clip."""
        cands = [t for t in self.tracks.values() if t.outputs > 0]
        if not cands:
            return None
        return max(cands, key=lambda t: (t.prominence_sum, -t.id)).id

    # -- updates -----------------------------------------------------------------------------
    def _usable(self, box: np.ndarray) -> bool:
        return box[3] >= self.cfg.min_height * self.image_size[1] and box[2] > 1

    def _new_track(self, box: np.ndarray, seq: int) -> Track:
        t = Track(id=self.next_id, box=np.asarray(box, float), seq=seq, first_seq=seq)
        self.next_id += 1
        self.tracks[t.id] = t
        return t

    def update_detections(self, seq: int, boxes_xywh) -> list[int]:
        """Match detections (list of xywh) at frame ``seq`` to tracks; start new tracks.

        Returns the ids of the tracks a detection was assigned to (new or old).
        """
        from scipy.optimize import linear_sum_assignment

        self.last_detection_seq = seq
        self._want_detection = False
        dets = [np.asarray(b, float) for b in boxes_xywh]
        dets = [b for b in dets if self._usable(b)]
        tracks = self.active
        if self.mode == "one" and self.lost_target is not None:
            tracks = tracks + [self.lost_target]
        matched: dict[int, int] = {}  # det index -> track id
        if dets and tracks:
            sim = np.zeros((len(dets), len(tracks)))
            ok = np.zeros_like(sim, dtype=bool)
            for i, d in enumerate(dets):
                for k, t in enumerate(tracks):
                    pb = t.predicted_box(seq)
                    iou = iou_xywh(d, pb)
                    inside = inside_fraction(t.predicted_joints(seq), d)
                    sim[i, k] = 0.5 * iou + 0.5 * inside
                    ok[i, k] = iou >= self.cfg.match_iou or (
                        inside >= self.cfg.match_inside and iou >= 0.1)
            rows, cols = linear_sum_assignment(-sim)
            for i, k in zip(rows, cols):
                if ok[i, k]:
                    t = tracks[k]
                    matched[i] = t.id
                    self._reseed(t, dets[i], seq)
        if self.mode == "one":
            self._update_target_from_detections(seq, dets, matched)
        else:
            unmatched = [i for i in range(len(dets)) if i not in matched]
            unmatched.sort(key=lambda i: dets[i][0] + dets[i][2] / 2)  # left to right
            for i in unmatched:
                if any(iou_xywh(dets[i], t.predicted_box(seq)) >= 0.5 for t in self.active):
                    continue  # a second box on someone already followed
                matched[i] = self._new_track(dets[i], seq).id
            self._limit_people(seq)
        return sorted(set(matched.values()))

    def _update_target_from_detections(self, seq, dets, matched) -> None:
        if self.tracks:
            # The target exists (matched above, or following itself). A lost target that
            # no detection overlaps: take the detection nearest to where it was last seen,
            # within 1.5 box heights (people rarely teleport; strangers rarely stand there).
            lost = self.lost_target
            if lost is not None and dets and not matched:
                c = lost.box[:2] + lost.box[2:] / 2
                dist = [np.hypot(*(d[:2] + d[2:] / 2 - c)) for d in dets]
                i = int(np.argmin(dist))
                if dist[i] <= 1.5 * max(lost.box[3], 1.0):
                    matched[i] = lost.id
                    self._reseed(lost, dets[i], seq)
            return
        if not dets:
            return
        # First detections: number everyone left to right (the same ids --person all
        # gives them), then follow only the target.
        order = sorted(range(len(dets)), key=lambda i: dets[i][0] + dets[i][2] / 2)
        ids = {i: self.next_id + n for n, i in enumerate(order)}
        self.next_id += len(order)
        if self.target is None:
            pick = max(order, key=lambda i: prominence(dets[i], self.image_size))
        else:
            pick = next((i for i in order if ids[i] == self.target), None)
            if pick is None:
                return
        t = Track(id=ids[pick], box=dets[pick], seq=seq, first_seq=seq)
        self.tracks[t.id] = t
        self.target = t.id

    def _reseed(self, t: Track, box: np.ndarray, seq: int) -> None:
        if not t.alive:  # a lost target found again
            t.alive = True
            self.lost_target = None
            t.velocity = np.zeros(2)
            t.joints = None
        t.box = np.asarray(box, float).copy()
        t.seq = seq
        t.lost = 0

    def skip_detection(self, seq: int) -> None:
        """Count a scheduled detection as done (used when there is no detector)."""
        self.last_detection_seq = seq
        self._want_detection = False

    def seed_box(self, seq: int, box_xywh) -> Track:
        """Start (or restart) the single track from a given box (no detector)."""
        box = np.asarray(box_xywh, float)
        if self.tracks:
            t = next(iter(self.tracks.values()))
            self._reseed(t, box, seq)  # revives it if it had ended
            t.velocity = np.zeros(2)
        else:
            t = self._new_track(box, seq)
            if self.mode == "one":
                self.target = t.id
        self.last_detection_seq = seq
        self._want_detection = False
        return t

    def update_output(self, track_id: int, seq: int, joints_img: np.ndarray,
                      confidence: float, crop_box: np.ndarray | None = None) -> None:
        """Feed the network's output for ``track_id`` at frame ``seq`` (in frame order).

        joints_img: body joints (>=25, 2) in image pixels. crop_box: the person box
        (xywh) the crop was made from (default: the track's prediction).
        """
        t = self.tracks[track_id]
        if not t.alive:
            return
        crop_box = t.predicted_box(seq) if crop_box is None else np.asarray(crop_box, float)
        t.outputs += 1
        t.prominence_sum += prominence(crop_box, self.image_size)
        t.conf = float(confidence)
        if confidence >= self.cfg.follow_above:
            j = np.asarray(joints_img, float)[:NUM_BODY, :2]
            if t.joints is not None and seq > t.joints_seq:
                v = (np.median(j, axis=0) - np.median(t.joints, axis=0)) / (seq - t.joints_seq)
                a = self.cfg.velocity_smoothing
                t.velocity = a * v + (1 - a) * t.velocity
            t.box, t.joints, t.joints_seq, t.seq = box_from_joints(j), j, seq, seq
            t.lost = 0
        else:
            # Keep the last reliable box (do not follow junk), at this frame's place.
            t.box, t.seq = crop_box, max(t.seq, seq)
            t.velocity = np.zeros(2)
            t.lost += 1
            if t.lost >= self.cfg.max_lost:
                self._end(t)
        if confidence < self.cfg.redetect_below:
            self._want_detection = True

    def _end(self, t: Track) -> None:
        t.alive = False
        if self.mode == "one":
            self.lost_target = t

    def end_duplicates(self) -> list[int]:
        """End tracks that converged onto someone another (older) track follows."""
        ended = []
        act = sorted(self.active, key=lambda t: t.id)
        for i, a in enumerate(act):
            for b in act[i + 1:]:
                if b.alive and a.alive and iou_xywh(a.box, b.box) >= self.cfg.duplicate_iou:
                    self._end(b)
                    ended.append(b.id)
        return ended

    def _limit_people(self, seq: int) -> None:
        act = self.active
        if len(act) <= self.cfg.max_people:
            return
        act.sort(key=lambda t: -prominence(t.predicted_box(seq), self.image_size))
        for t in act[self.cfg.max_people:]:
            self._end(t)
