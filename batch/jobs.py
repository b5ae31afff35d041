# SPDX-License-Identifier: GPL-3.0-or-later
"""The clips of a footage folder, their outputs, hashes, and what a re-run must redo.

Clips: every video file (by suffix, as ``estimator.sources`` knows them) and
every folder that directly holds images (one image-sequence clip; its images
are its frames) under the input folder, hidden names skipped, sorted. The
output folder is mirrored: ``IN/a/b/clip.mp4`` -> ``OUT/a/b/clip.take.npz``,
``OUT/a/b/clip.blend`` and ``OUT/a/b/clip.<preset><suffix>``;
``IN/a/seq/`` (images) -> ``OUT/a/seq.take.npz`` ... With ``--person all``
the person number is inserted (``clip.person2.take.npz``). Two clips of one
folder that would share a name (``clip.mp4`` and ``clip.mov``) are named
``clip_mp4`` and ``clip_mov``.

Input hash (``input_hash``): sha256 of the file's bytes, or for a file over
``FULL_HASH_LIMIT`` (64 MiB) the fast scheme ``sha256(size, first 8 MiB,
last 8 MiB)`` (prefixed ``fast:``); an image sequence hashes its images'
names and hashes. Settings hashes: one per stage, each including the one
before: ``estimate`` (``EstimateOptions.to_dict()`` but the options that never
change a take -- device, detector download, pixel limit -- and the model
files' identity: path, size, modification time), ``convert``
(``ConvertOptions.to_dict()``: smoothing, rig options, gender), ``export``
(preset, root mode, rest frame).
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

FULL_HASH_LIMIT = 64 * 2**20
FAST_HASH_CHUNK = 8 * 2**20
STAGES = ("estimate", "convert", "export")


def _media_suffixes():
    from ..estimator.sources import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

    return frozenset(IMAGE_EXTENSIONS - {".gif"}), frozenset(VIDEO_EXTENSIONS)


@dataclass
class Clip:
    rel: str                 # path relative to the input folder (posix); the manifest key
    path: Path               # the video file or the image folder
    kind: str                # "video" or "images"
    out_dir: Path            # where its outputs go
    stem: str                # output names: stem.take.npz, stem.blend, ...
    input_hash: str = ""

    @property
    def take_path(self) -> Path:
        return self.out_dir / f"{self.stem}.take.npz"


# --------------------------------------------------------------------------- discovery
def find_clips(in_dir, out_dir, pattern: str | None = None) -> list[Clip]:
    """The clips under ``in_dir`` whose relative path matches ``pattern`` (fnmatch)."""
    in_dir, out_dir = Path(in_dir).resolve(), Path(out_dir).resolve()
    images, videos = _media_suffixes()
    found: list[tuple[str, Path, str]] = []
    for root, dirs, files in os.walk(in_dir):
        r = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (r / d).resolve() != out_dir)
        files = sorted(f for f in files if not f.startswith("."))
        if any(Path(f).suffix.lower() in images for f in files):
            rel = r.relative_to(in_dir).as_posix()
            found.append((rel if rel != "." else in_dir.name, r, "images"))
        for f in files:
            if Path(f).suffix.lower() in videos:
                found.append(((r / f).relative_to(in_dir).as_posix(), r / f, "video"))
    if pattern:
        found = [c for c in found if fnmatch.fnmatch(c[0], pattern)
                 or fnmatch.fnmatch(Path(c[0]).name, pattern)]
    clips = []
    for rel, path, kind in found:
        parent = Path(rel).parent if rel != in_dir.name or kind == "video" else Path(".")
        stem = Path(rel).name if kind == "images" else Path(rel).stem
        clips.append(Clip(rel, path, kind, out_dir / parent, stem))
    # Two clips with one output name in one folder: name both after their full names.
    by_name: dict[tuple[Path, str], list[Clip]] = {}
    for c in clips:
        by_name.setdefault((c.out_dir, c.stem), []).append(c)
    for group in by_name.values():
        if len(group) > 1:
            for c in group:
                c.stem = Path(c.rel).name.replace(".", "_")
    return sorted(clips, key=lambda c: c.rel)


# --------------------------------------------------------------------------- hashing
def file_hash(path, full_limit: int = FULL_HASH_LIMIT, chunk: int = FAST_HASH_CHUNK) -> str:
    """sha256 of the bytes; for big files ``fast:`` sha256 of size + first/last ``chunk``."""
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        if size <= full_limit:
            for block in iter(lambda: fh.read(2**20), b""):
                h.update(block)
            return h.hexdigest()
        h.update(str(size).encode())
        h.update(fh.read(chunk))
        fh.seek(size - chunk)
        h.update(fh.read(chunk))
    return "fast:" + h.hexdigest()


def clip_hash(clip: Clip) -> str:
    if clip.kind == "video":
        return file_hash(clip.path)
    images, _ = _media_suffixes()
    h = hashlib.sha256()
    for p in sorted(clip.path.iterdir()):
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in images:
            h.update(p.name.encode() + b"\0" + file_hash(p).encode() + b"\0")
    return "seq:" + h.hexdigest()


def _identity(path) -> object:
    """A cheap identity of a model file or folder: path, size, mtime (None: searched)."""
    if path in (None, "", "auto", "none"):
        return path
    p = Path(str(path)).expanduser()
    if not p.exists():
        return str(p)
    p = p.resolve()
    if p.is_file():
        st = p.stat()
        return [str(p), st.st_size, st.st_mtime_ns]
    items = []
    for q in sorted(p.rglob("*")):
        if q.is_file() and not any(part.startswith(".") for part in q.relative_to(p).parts):
            st = q.stat()
            items.append([q.relative_to(p).as_posix(), st.st_size, st.st_mtime_ns])
    return [str(p), items]


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- settings
@dataclass
class Settings:
    """What the worker tasks need, and the per-stage hashes of the settings.

    ``estimate``: ``EstimateOptions.to_dict()`` without ``estimator`` when it is the
    default (so manifests written before there was a choice keep their hashes);
    ``convert``: ``ConvertOptions.to_dict()``. Plain dicts: they travel to worker
    processes and Ray tasks, which rebuild the options with ``from_dict``.
    """

    estimate: dict            # EstimateOptions.to_dict() (see above)
    convert: dict             # ConvertOptions.to_dict()
    export: dict | None       # {"preset", "root", "rest_frame"} or None (no export)
    smplx: str | None = None
    hashes: dict = field(default_factory=dict)

    def __post_init__(self):
        from ..estimator.options import MODEL_FILES, NOT_IN_TAKE

        # Everything that changes a take, but the model files by their identity.
        est_keys = {k: v for k, v in self.estimate.items()
                    if k not in NOT_IN_TAKE + MODEL_FILES}
        det = self.estimate.get("detector")
        e = _digest({"opts": est_keys, "smplx": _identity(self.estimate.get("smplx")),
                     "checkpoint": _identity(self.estimate.get("checkpoint")),
                     "detector": det if str(det).lower() in ("auto", "none", "") else
                     _identity(det)})
        c = _digest({"estimate": e, "opts": self.convert, "smplx": _identity(self.smplx)})
        xo = dict(self.export) if self.export else self.export
        if xo and xo.get("target"):   # a character file or preset by its content's identity
            xo["target_file"] = _identity(xo["target"]) if "." in Path(xo["target"]).name \
                else None
            xo["map_file"] = _identity(xo["map"]) if xo.get("map") else None
        x = _digest({"convert": c, "opts": xo})
        self.hashes = {"estimate": e, "convert": c, "export": x}

    def estimate_options(self):
        from ..estimator.options import EstimateOptions

        return EstimateOptions.from_dict(self.estimate)

    def convert_options(self):
        from ..retarget.options import ConvertOptions

        return ConvertOptions.from_dict(self.convert)


def settings_from_args(args) -> Settings:
    """From ``batch``'s parsed arguments (``EstimateOptions.from_args``,
    ``ConvertOptions.from_args``); a missing attribute takes the option's default."""
    from ..estimator.options import EstimateOptions
    from ..estimator.registry import DEFAULT_ESTIMATOR
    from ..retarget.options import ConvertOptions

    estimate = EstimateOptions.from_args(args).to_dict()
    if estimate["estimator"] == DEFAULT_ESTIMATOR:
        # (only another estimator is recorded: earlier manifests' hashes stay valid)
        del estimate["estimator"]
    convert = ConvertOptions.from_args(args).to_dict()
    g = lambda name, default=None: getattr(args, name, default)  # noqa: E731
    export = None
    if g("preset"):
        export = dict(preset=g("preset"), root=g("root", "grounded"),
                      rest_frame=bool(g("rest_frame", False)))
        if g("target"):   # (only then: earlier manifests' export hashes stay valid)
            export.update(target=str(g("target")), map=g("map"),
                          target_armature=g("target_armature"), foot_ik=bool(g("foot_ik", True)))
    return Settings(estimate, convert, export, smplx=g("smplx"))


# --------------------------------------------------------------------------- outputs and plans
def file_record(path, out_root) -> dict:
    p = Path(path)
    st = p.stat()
    return {"path": p.resolve().relative_to(Path(out_root).resolve()).as_posix(),
            "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _intact(files, out_root) -> bool:
    if not files:
        return False
    for f in files:
        p = Path(out_root) / f["path"]
        try:
            st = p.stat()
        except OSError:
            return False
        if st.st_size != f["size"] or st.st_mtime_ns != f["mtime_ns"]:
            return False
    return True


def stages_to_run(clip: Clip, settings: Settings, last: dict | None, out_root) -> list[str]:
    """The stages a clip still needs, judged from its latest manifest record.

    ``[]``: up to date (outputs on disk as recorded, same input and settings).
    A ``done`` record, or a ``running`` one that lists outputs the running stage
    does not touch, lets the later stages start from what is there.
    """
    if not last or last.get("input_hash") != clip.input_hash or \
            last.get("state") not in ("done", "running"):
        return list(STAGES)
    have = last.get("outputs") or {}
    old = last.get("hashes") or {}
    new = settings.hashes
    if old.get("estimate") != new["estimate"] or not _intact(have.get("takes"), out_root):
        return list(STAGES)
    if old.get("convert") != new["convert"] or not _intact(have.get("blends"), out_root):
        return ["convert", "export"]
    if settings.export is None:
        return [] if last["state"] == "done" else ["export"]
    if old.get("export") != new["export"] or not _intact(have.get("exports"), out_root):
        return ["export"]
    return [] if last["state"] == "done" else ["export"]


# Slack for comparing a file's modification time with a record's clock (coarse file-system
# timestamps lag time.time_ns() by a tick).
_MTIME_SLACK_NS = 1_000_000_000


def _latest_state(records: list[dict], rel: str) -> dict | None:
    last = None
    for rec in records:
        if rec.get("clip") == rel and rec.get("state") not in ("queued", "skipped"):
            last = rec
    return last


def is_clip_output_name(clip: Clip, name: str) -> bool:
    """True for a name the clip's outputs can have: ``stem.take.npz``, ``stem.blend``,
    ``stem.qa.json``, ``stem.qa.png``, ``stem.<preset><suffix>`` (``stem.glb`` for a format preset),
    ``stem.<target>.<preset><suffix>``, each also with ``.personN`` after the stem."""
    if not name.startswith(clip.stem + "."):
        return False
    rest = name[len(clip.stem) + 1:]
    parts = rest.split(".")
    if parts and parts[0].startswith("person") and parts[0][6:].isdigit():
        parts = parts[1:]
    if parts in (["take", "npz"], ["blend"], ["qa", "json"], ["qa", "png"]):
        return True
    from ..retarget.export_cli import default_export_name
    from ..retarget.export_presets import PRESETS

    # stem[.<target>]<tail>, the tail of each preset's default name (.unity.fbx, .glb)
    tails = {default_export_name(Path("x.blend"), n)[1].lower() for n in PRESETS}
    tail = "." + ".".join(parts).lower()
    if tail in tails:
        return True
    return len(parts) >= 2 and "." + ".".join(parts[1:]).lower() in tails


def replaceable_outputs(clip: Clip, records: list[dict], out_root) -> list[str]:
    """The clip's files that this batch wrote itself, so that a re-run may replace them.

    * files that a record of this output folder's manifest lists among the
      clip's outputs, still as recorded (size and modification time: a file
      the user changed since is theirs now);
    * files with the clip's output names written while the clip's latest record
      says a stage was running (a run killed before it could record them):
      modified after that record was written.

    Anything else in the output folder is the user's and is never replaced.
    """
    out_root = Path(out_root)
    allowed: set[str] = set()
    for rec in records:
        if rec.get("clip") != clip.rel:
            continue
        for files in (rec.get("outputs") or {}).values():
            for f in files or []:
                try:
                    p = out_root / f["path"]
                    st = p.stat()
                except (OSError, KeyError, TypeError):
                    continue
                if st.st_size == f.get("size") and st.st_mtime_ns == f.get("mtime_ns"):
                    allowed.add(os.path.abspath(p))
    last = _latest_state(records, clip.rel)
    if last is not None and last.get("state") == "running" and isinstance(last.get("t_ns"), int):
        since = last["t_ns"] - _MTIME_SLACK_NS
        try:
            entries = list(os.scandir(clip.out_dir))
        except OSError:
            entries = []
        for e in entries:
            try:
                if (is_clip_output_name(clip, e.name) and e.is_file(follow_symlinks=False)
                        and e.stat(follow_symlinks=False).st_mtime_ns >= since):
                    allowed.add(os.path.abspath(e.path))
            except OSError:
                continue
    return sorted(allowed)


def remove_leftovers(out_root, clips: list[Clip] = (), records: list[dict] = ()) -> list[Path]:
    """Delete the temporary files a killed run's writers left, and nothing else.

    Only in the folders of clips whose latest manifest record says a stage was
    running (a write was in progress), and only files of the exact form that
    ``common.files`` gives its temporaries, named after one of that clip's
    outputs, whose writing process is gone (``common.files.stale_temps``). A
    user's hidden file, whatever its name, is never touched.
    """
    from ..common.files import TEMP_RE, stale_temps

    removed = []
    for clip in clips:
        last = _latest_state(list(records), clip.rel)
        if last is None or last.get("state") != "running":
            continue
        for p in stale_temps(clip.out_dir):
            m = TEMP_RE.match(p.name)
            if m is None or not is_clip_output_name(clip, m["stem"] + (m["suffix"] or "")):
                continue
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed
