# SPDX-License-Identifier: GPL-3.0-or-later
"""``OneLineParser``: the argument parser of every command line of the project.

A usage error is ONE line, ``p2p-mocap CMD: error: ...``, and exit code 2; sub-commands
inherit it (argparse builds them with the parser's class). Used by ``cli`` and by the
stand-alone entries of ``estimator.cli_estimate`` and ``batch.cli_batch``, which must
not import ``cli`` (the application layer imports them).
"""
from __future__ import annotations

import argparse

EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are ONE line, ``p2p-mocap CMD: error: ...``,
    and exit code 2 (sub-commands inherit it: argparse builds them with this class)."""

    def error(self, message):  # noqa: D401 - argparse's hook
        text = " ".join(str(message).split())
        if len(text) > 2000:
            text = text[:2000] + " ..."
        self.exit(EXIT_USAGE, f"{self.prog}: error: {text}\n")
