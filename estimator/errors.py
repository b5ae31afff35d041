# SPDX-License-Identifier: GPL-3.0-or-later
"""Exceptions of the estimator whose messages are meant for users as they are."""
from __future__ import annotations

from ..common.errors import ModelFileError, P2PError

__all__ = ["EstimatorError", "CheckpointError", "ModelFileError"]


class EstimatorError(P2PError, ValueError):
    """Base class; ``str(exc)`` is a complete sentence a CLI can print."""


class CheckpointError(EstimatorError):
    """A checkpoint file that cannot be (or must not be) loaded."""
