# SPDX-License-Identifier: GPL-3.0-or-later
"""Batch conversion of footage folders (``p2p-mocap batch``): resumable, parallel, Ray.

* ``jobs``: finding the clips of a folder, their output names, input and
  settings hashes, and what a re-run must redo;
* ``manifest``: the append-only job manifest ``OUT/batch.jsonl``;
* ``worker``: the per-clip work (estimate; convert + export), run in worker
  processes or Ray tasks (torch and bpy are imported there only);
* ``local``: a pool of processes on this machine (one estimator process per
  GPU or ``--workers`` CPU processes; a fresh process per bpy task);
* ``ray_runner``: the same tasks on a Ray cluster;
* ``driver``: the loop that hands clips to a runner, keeps the manifest and
  the progress display, and prints the summary;
* ``cli_batch``: ``add_batch_arguments(parser)`` and ``run_batch(args)``.

Nothing here imports torch or bpy at module level.
"""
