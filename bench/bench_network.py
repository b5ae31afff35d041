# SPDX-License-Identifier: GPL-3.0-or-later
"""Throughput of the Pose2Pose network (stand-in weights, no SMPL-X unless --smplx).

    python bench/bench_network.py                      # CPU fp32, batch 1 2 4
    python bench/bench_network.py --device cuda        # fp32 / bf16 / fp16 and channels_last
    python bench/bench_network.py --batch 1 8 32 --iters 20 --device cuda --precision bf16

Prints crops/s and peak memory per configuration, and the exact command.
Stand-in weights make the numbers representative of the real checkpoint
(same layers, same shapes); only the SMPL-X layer (optional) is extra work.
"""
from __future__ import annotations

import argparse
import platform
import resource
import shlex
import sys
import time

import torch

from pose2pose_mocap.estimator import InferenceOptions, Pose2Pose, prepare_model, run_batch
from pose2pose_mocap.weights.standin_rule import make_state_dict, official_keys_and_shapes


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--iters", type=int, default=3, help="timed forward passes per configuration")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--precision", nargs="+", choices=["fp32", "bf16", "fp16"], default=None,
                   help="default: fp32 on CPU; fp32 bf16 fp16 on CUDA")
    p.add_argument("--channels-last", choices=["off", "on", "both"], default=None,
                   help="default: off on CPU, both on CUDA")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument("--smplx", default=None, help="SMPL-X model path: include the mesh layer")
    return p.parse_args(argv)


def _rss_peak_mib() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def bench(model, opts: InferenceOptions, batch: int, iters: int,
          warmup: int) -> tuple[float, float]:
    device = opts.torch_device()
    x = torch.rand(batch, 3, 512, 384, generator=torch.Generator().manual_seed(0))
    if device.type == "cuda":
        x = x.to(device)
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(warmup):
        run_batch(model, x, opts, to_cpu=False)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        out = run_batch(model, x, opts, to_cpu=False)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    dt = time.perf_counter() - t0
    del out
    peak = (torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda"
            else _rss_peak_mib())
    return batch * iters / dt, peak


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = InferenceOptions(device=args.device).torch_device()
    cuda = device.type == "cuda"
    precisions = args.precision or (["fp32", "bf16", "fp16"] if cuda else ["fp32"])
    cl = args.channels_last or ("both" if cuda else "off")
    layouts = {"off": [False], "on": [True], "both": [False, True]}[cl]

    print("command:", shlex.join([sys.executable, *sys.argv]))
    name = (torch.cuda.get_device_name(device) if cuda
            else platform.processor() or platform.machine())
    print(f"torch {torch.__version__}, device {device} ({name}), "
          f"threads {torch.get_num_threads()}, SMPL-X layer {'on' if args.smplx else 'off'}")

    t0 = time.perf_counter()
    arrays = make_state_dict(official_keys_and_shapes(), 1)
    state = {k: torch.from_numpy(v) for k, v in arrays.items()}
    model = Pose2Pose(args.smplx)
    model.load_state_dict(state, strict=True)
    del state
    print(f"model built with stand-in weights in {time.perf_counter() - t0:.1f} s")

    mem = "peak GPU MiB" if cuda else "peak RSS MiB"
    print(f"{'precision':>9} {'layout':>13} {'batch':>5} {'crops/s':>9} {mem:>13}")
    for channels_last in layouts:
        for precision in precisions:
            opts = InferenceOptions(device=str(device), precision=precision,
                                    channels_last=channels_last)
            prepare_model(model, opts)
            if not channels_last:
                model.to(memory_format=torch.contiguous_format)
            for batch in args.batch:
                rate, peak = bench(model, opts, batch, args.iters, args.warmup)
                layout = "channels_last" if channels_last else "contiguous"
                print(f"{precision:>9} {layout:>13} {batch:>5} {rate:>9.2f} {peak:>13.0f}",
                      flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
