# SPDX-License-Identifier: GPL-3.0-or-later
"""Package attributes imported on first use (so importing a package stays cheap: no torch
until a name that needs it is looked up)."""
from __future__ import annotations

import importlib
from typing import Callable


def lazy_exports(package: str, exports: dict[str, str],
                 namespace: dict) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """(``__getattr__``, ``__dir__``) for ``package`` whose names ``exports`` maps to the
    submodule (relative, e.g. ``"pose2pose.outputs"``) defining each; a name found is
    stored in ``namespace`` (the package's globals) so later look-ups skip ``__getattr__``."""

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
