# SPDX-License-Identifier: GPL-3.0-or-later
"""The batched pipeline (``--pipeline batched``; the default on CUDA): one module per concern.

* ``decode``: frames decoded ahead on threads (a pool for image folders, one
  FFmpeg reader for a video) and uploaded to the device once (pinned memory and
  a side stream on CUDA).
* ``crops``: every person crop of a batch cut on the device from the uploaded
  frames, bit-identical to ``crop.crop_person`` (OpenCV's fixed-point
  ``warpAffine``, replicated in integer arithmetic).
* ``speculative``: tracking that stays correct at large batches: the crops of
  the next frames are predicted from the newest output, run in one batch, then
  checked frame by frame against the box the one-frame-at-a-time tracker would
  have used; from the first frame that misses, the frames are run again.
* ``runner``: the loop ``pipeline.EstimateJob`` drives (its ``_batches``
  counterpart), and the batch size from free memory.

The same code runs on the CPU (the tests compare it with the classic path).
"""
