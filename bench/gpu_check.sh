#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# One prepared GPU run (issue 16's GPU targets): bench_network and bench_pipeline on CUDA.
# Prints the GPU's name and every figure with its command; about 5-8 minutes on one GPU.
#   bash bench/gpu_check.sh            (from the repository root; PYTHON=... to choose)
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
# The repository root is the package pose2pose_mocap: without an install, link it.
if ! "$PY" -c "import pose2pose_mocap" 2>/dev/null; then
  LINK=$(mktemp -d); ln -s "$PWD" "$LINK/pose2pose_mocap"; export PYTHONPATH="$LINK${PYTHONPATH:+:$PYTHONPATH}"
  trap 'rm -rf "$LINK"' EXIT
fi
echo "== $(date -u +%FT%TZ) gpu_check"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -c "import torch, cv2, numpy, scipy; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '', '| opencv', cv2.__version__)" || { echo "missing packages"; exit 2; }
CODEC=$("$PY" - <<'PY'
import cv2, os, tempfile
p = os.path.join(tempfile.mkdtemp(), "t.mp4")
w = cv2.VideoWriter(p, cv2.VideoWriter_fourcc(*"avc1"), 30, (64, 64))
print("avc1" if w.isOpened() else "mp4v")
w.release()
PY
)
echo "clip codec: $CODEC (avc1 = H.264; mp4v where this OpenCV cannot write H.264)"
WORK=$(mktemp -d)
echo; echo "== network only (bf16 target: >= 1000 frames/s)"
timeout 200 "$PY" -m bench.bench_network --device cuda --configs eager-fp32 eager-bf16 \
  --batch 1 64 256 --rounds 3 --iters 3 || echo "bench_network failed or timed out ($?)"
echo; echo "== end to end, batched pipeline, bf16, 1080p (target: >= 300 frames/s), memory over 18000 frames (10 min at 30 fps)"
timeout 330 "$PY" -m bench.bench_pipeline --device cuda --pipeline batched --precision bf16 \
  --frames 900 --size 1920x1080 --codec "$CODEC" --long-frames 18000 --long-size 640x360 \
  --rss-every 1500 --workdir "$WORK/b" || echo "bench_pipeline (batched) failed or timed out ($?)"
echo; echo "== end to end, classic pipeline, bf16, 1080p (for comparison)"
timeout 120 "$PY" -m bench.bench_pipeline --device cuda --pipeline classic --precision bf16 \
  --frames 300 --size 1920x1080 --codec "$CODEC" --long-frames 0 --workdir "$WORK/c" \
  || echo "bench_pipeline (classic) failed or timed out ($?)"
rm -rf "$WORK"
echo "== $(date -u +%FT%TZ) done"
