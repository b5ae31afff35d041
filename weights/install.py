# SPDX-License-Identifier: GPL-3.0-or-later
"""Install licensed model files the user downloaded: the SMPL-X zip and the checkpoint.

``install_smplx_zip(zip_path)`` accepts the official SMPL-X download
(``models_smplx_v1_1.zip``: ``models/smplx/SMPLX_NEUTRAL.npz``, ``_MALE``,
``_FEMALE``, plus ``.pkl`` files that are ignored, never opened) or any zip
holding those ``.npz`` files. Only ``SMPLX_{NEUTRAL,MALE,FEMALE}.npz`` are
extracted, into ``<data dir>/smplx/``. The whole zip is refused when any entry
is unsafe (an absolute path, ``..``, a symbolic link) or a wanted entry is
larger than ``MAX_MEMBER_BYTES`` or compressed like a zip bomb. Each file is
extracted to a temporary name (``common.files``), checked by content with
``common.smplx_file.check_smplx_file`` (pickled or unknown arrays, shapes; headers
only, nothing unpickled) and only when every file passed are they committed
into place. Every failure (damaged data, encrypted or unknown-compression
entries, a full disk) is an :class:`InstallError` with one line, and nothing is
left behind (not even an empty ``smplx/`` folder the installer made). No torch,
no bpy: the add-on calls this.
"""
from __future__ import annotations

import os
import shutil
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from ..common.errors import P2PError, describe_os_error
from ..common.files import commit, remove_stale_temps, temp_path_for

from .locations import CHECKPOINT_NAMES, CHECKPOINT_SUBDIR, SMPLX_SUBDIR, user_data_dir
from ..common.smplx_file import check_smplx_file

WANTED = ("SMPLX_NEUTRAL.npz", "SMPLX_MALE.npz", "SMPLX_FEMALE.npz")
MAX_MEMBER_BYTES = 1 << 30          # the official NEUTRAL .npz is ~110 MB
MAX_RATIO = 200                     # uncompressed / compressed: more looks like a zip bomb
CHUNK = 1 << 20
# What reading a damaged zip entry raises: a CRC or inflate error, an encrypted
# entry (RuntimeError: password required), an unknown compression method.
_ZIP_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError,
                    ValueError, KeyError)


class InstallError(P2PError):
    """The file cannot be installed; one line that says why."""


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text or type(exc).__name__)[:200]


def _as_member(problem: str, tmp: Path, base: str) -> str:
    """A problem found in the extracted temporary file, told about the zip entry."""
    text = problem.replace(str(tmp), base).replace(tmp.name, base)
    return text[len(base) + 2:] if text.startswith(base + ": ") else text


def _unsafe(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    if "\x00" in name:
        return "a NUL character in a name"
    norm = name.replace("\\", "/")
    p = PurePosixPath(norm)
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return f"an absolute path ({name})"
    if ".." in p.parts:
        return f"a path leaving the folder ({name})"
    mode = info.external_attr >> 16
    if info.create_system == 3 and stat.S_ISLNK(mode):
        return f"a symbolic link ({name})"
    return None


def _write_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, max_bytes: int) -> None:
    """Extract one entry to ``dest`` (a new file), never more than it declares."""
    written = 0
    with open(dest, "xb") as out:
        try:
            with zf.open(info) as src:
                while True:
                    chunk = src.read(CHUNK)
                    if not chunk:
                        break
                    written += len(chunk)
                    if written > max_bytes or written > info.file_size:
                        raise InstallError(f"{info.filename}: more data than the zip declares, "
                                           f"or over {max_bytes >> 20} MB; refusing it")
                    out.write(chunk)
        except _ZIP_READ_ERRORS as exc:
            if isinstance(exc, RuntimeError) and ("encrypt" in str(exc).lower()
                                                  or "password" in str(exc).lower()):
                raise InstallError(f"{info.filename}: the entry is encrypted; use the zip as "
                                   "downloaded from the SMPL-X site") from None
            if isinstance(exc, NotImplementedError):
                raise InstallError(f"{info.filename}: the entry uses a compression method this "
                                   f"program cannot read ({_short(exc)})") from None
            raise InstallError(f"{info.filename}: the zip is damaged ({_short(exc)}); download "
                               "it again") from None
        if written != info.file_size:
            raise InstallError(f"{info.filename}: the entry is truncated ({written} of "
                               f"{info.file_size} bytes); download the zip again")
        out.flush()
        os.fsync(out.fileno())


def install_smplx_zip(zip_path, dest_root=None, *, max_bytes: int = MAX_MEMBER_BYTES) -> list[Path]:
    """Extract the SMPL-X ``.npz`` files of ``zip_path`` into ``dest_root/smplx``; return them."""
    zip_path = Path(zip_path).expanduser()
    dest = Path(dest_root).expanduser() if dest_root else user_data_dir()
    dest = dest / SMPLX_SUBDIR
    try:
        zf = zipfile.ZipFile(zip_path)
    except (OSError, *_ZIP_READ_ERRORS) as exc:
        raise InstallError(f"{zip_path.name}: not a readable zip file ({_short(exc)})") from None
    with zf:
        infos = zf.infolist()
        for info in infos:
            why = _unsafe(info)
            if why:
                raise InstallError(f"{zip_path.name}: refusing the zip, it contains {why}")
        chosen: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            base = PurePosixPath(info.filename.replace("\\", "/")).name
            if base in WANTED and not info.is_dir():
                if base in chosen:
                    raise InstallError(f"{zip_path.name}: holds {base} twice "
                                       f"({chosen[base].filename}, {info.filename})")
                chosen[base] = info
        if "SMPLX_NEUTRAL.npz" not in chosen:
            raise InstallError(f"{zip_path.name}: no SMPLX_NEUTRAL.npz inside; expected the "
                               "'SMPL-X v1.1 (NPZ+PKL)' download (models/smplx/SMPLX_NEUTRAL.npz)")
        for base, info in chosen.items():
            if info.file_size > max_bytes:
                raise InstallError(f"{info.filename}: {info.file_size >> 20} MB is over the "
                                   f"{max_bytes >> 20} MB limit; refusing it")
            if info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
                raise InstallError(f"{info.filename}: compressed {info.file_size // max(info.compress_size, 1)}"
                                   f"x, which no model file is; refusing it")
        made = []  # folders the installer creates (removed again if it fails)
        d = dest
        while not d.exists() and d != d.parent:
            made.append(d)
            d = d.parent
        temps: list[tuple[Path, Path]] = []
        try:
            try:
                dest.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InstallError(f"cannot create {dest}: {describe_os_error(exc)}") from None
            remove_stale_temps(dest)
            try:
                for base, info in sorted(chosen.items()):
                    final = dest / base
                    tmp = temp_path_for(final)
                    temps.append((tmp, final))
                    _write_member(zf, info, tmp, max_bytes)
                    problems = check_smplx_file(tmp)
                    if problems:
                        raise InstallError(f"{info.filename} is not a usable SMPL-X model: "
                                           + "; ".join(_as_member(p, tmp, base)
                                                       for p in problems[:3]))
                for tmp, final in temps:
                    commit(tmp, final, replace=True)
            except OSError as exc:
                raise InstallError(f"could not install into {dest}: "
                                   f"{describe_os_error(exc)}") from None
        finally:
            for tmp, _final in temps:
                try:
                    tmp.unlink()
                except OSError:
                    pass
            for folder in made:  # deepest first; rmdir only removes empty folders
                try:
                    folder.rmdir()
                except OSError:
                    break
    return [final for _tmp, final in temps]


def install_checkpoint(src, dest_root=None) -> Path:
    """Copy a checkpoint (``.pth.tar`` or ``.safetensors``) to ``dest_root/pose2pose/``.

    The copy is named as the search order expects (``snapshot_6.pth.tar`` or
    ``snapshot_6.safetensors``); its layout is checked by the doctor
    (``p2p-mocap weights check``), which needs torch and so runs in the worker.
    """
    src = Path(src).expanduser()
    if not src.is_file():
        raise InstallError(f"{src}: no such file")
    name = src.name.lower()
    if name.endswith(".safetensors"):
        target = CHECKPOINT_NAMES[1]
    elif name.endswith((".pth.tar", ".pth", ".pt", ".tar")):
        target = CHECKPOINT_NAMES[0]
        if not zipfile.is_zipfile(src):
            raise InstallError(f"{src.name}: not a PyTorch checkpoint (a zip container was "
                               "expected)")
    else:
        raise InstallError(f"{src.name}: expected snapshot_6.pth.tar or a .safetensors file")
    dest = (Path(dest_root).expanduser() if dest_root else user_data_dir()) / CHECKPOINT_SUBDIR
    final = dest / target
    try:
        dest.mkdir(parents=True, exist_ok=True)
        if final.exists() and final.samefile(src):
            return final
        tmp = temp_path_for(final)
        try:
            shutil.copyfile(src, tmp)
            commit(tmp, final, replace=True)
        finally:
            try:
                tmp.unlink()
            except OSError:
                pass
    except OSError as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        raise InstallError(f"could not install {src.name} into {dest}: {where}"
                           f"{describe_os_error(exc)}") from None
    return final
