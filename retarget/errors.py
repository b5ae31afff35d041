# SPDX-License-Identifier: GPL-3.0-or-later
"""Exceptions of the retargeting code whose messages are meant for users as they are."""
from __future__ import annotations

from ..common.errors import OutputExistsError as _OutputExistsError
from ..common.errors import ModelFileError, P2PError  # noqa: F401 - ModelFileError: one class


class RetargetError(P2PError, ValueError):
    """Base class; ``str(exc)`` is one complete line a CLI or the add-on can show."""


class TakeError(RetargetError):
    """A take file that cannot be read, or holds data that does not make sense."""


class OutputExistsError(_OutputExistsError, RetargetError):
    """An output file exists and overwriting it was not asked for."""
