# SPDX-License-Identifier: GPL-3.0-or-later
"""What this CPU can do fast, and what ``--precision auto`` picks.

bf16 is only worth it where the CPU multiplies bf16 natively: Intel AMX
(``amx_bf16``, Sapphire Rapids and later) or AVX-512 BF16 (``avx512_bf16``:
Cooper Lake, AMD Zen 4 and later). Elsewhere PyTorch emulates it and it is
slower than fp32. The flags come from ``/proc/cpuinfo`` (Linux); PyTorch's
``torch.backends.cpu.get_cpu_capability()`` ("AVX512", "AVX2", ...) is reported
beside them. On macOS and Windows no flags are read: ``auto`` stays fp32 there.

``auto`` is the fast choice for this machine (bf16 where native, else fp32);
it is not the default: the default stays fp32 (``estimator.options``), because
the measured bf16 difference would be visible in an animation
(``bench/bf16_accuracy.py``, docs/speed.md "CPU: bf16 accuracy"). Importing this
module does not import torch.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@dataclass(frozen=True)
class CpuFeatures:
    """flags: the bf16-related flags found (subset of ``amx_bf16``, ``amx_tile``,
    ``avx512_bf16``, ``avx512f``, ``avx2``); capability: torch's CPU capability
    text ("" when torch is not asked); cores: the cores this process may use."""

    flags: tuple[str, ...]
    capability: str
    cores: int

    @property
    def amx(self) -> bool:
        return "amx_bf16" in self.flags

    @property
    def native_bf16(self) -> bool:
        return any(f in self.flags for f in _BF16_FLAGS)

    def describe(self) -> str:
        """One line for ``p2p-mocap doctor``."""
        if self.amx:
            what = "yes (AMX)"
        elif self.native_bf16:
            what = "yes (AVX-512 BF16)"
        else:
            what = "no"
        cap = f", PyTorch kernels {self.capability}" if self.capability else ""
        return (f"bf16 native: {what}{cap}; {self.cores} core{'s' if self.cores != 1 else ''}"
                f" for the network; --precision auto picks {auto_precision('cpu', self)} "
                "on the CPU (the default is fp32)")


def read_cpu_flags(text: str | None = None) -> tuple[str, ...]:
    """The flags of interest in ``/proc/cpuinfo`` (or ``text``, its content); () if unreadable."""
    if text is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
                text = fh.read(1 << 20)
        except OSError:
            return ()
    found: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            found.update(value.split())
    wanted = ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2")
    return tuple(f for f in wanted if f in found)


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, e.g. under taskset or a container)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@functools.lru_cache(maxsize=1)
def cpu_features() -> CpuFeatures:
    """This machine's features (cached). Imports torch for its capability text when it is
    installed; without torch the capability is ""."""
    capability = ""
    try:
        import torch

        capability = str(torch.backends.cpu.get_cpu_capability())
    except (ImportError, AttributeError, RuntimeError):
        pass
    return CpuFeatures(read_cpu_flags(), capability, usable_cores())


def auto_precision(device: str, features: CpuFeatures | None = None) -> str:
    """What ``--precision auto`` means on ``device`` ("cpu", "cuda", "cuda:N"):
    bf16 where it is native (CPU: AMX or AVX-512 BF16; CUDA: a GPU with bf16), else fp32."""
    if str(device).startswith("cuda"):
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if (features or cpu_features()).native_bf16 else "fp32"


def resolve_precision(precision: str | None, device: str) -> str:
    """``"auto"`` (or None/"") -> ``auto_precision(device)``; others as given."""
    if precision in (None, "", "auto"):
        return auto_precision(device)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    return precision
