# SPDX-License-Identifier: GPL-3.0-or-later
"""Network forward throughput, every precision and engine side by side (alternating rounds).

    python -m bench.bench_network                                   # CPU: eager/fast fp32, bf16
    python -m bench.bench_network --official /tmp/h4w --configs all --batch 1 4 --rounds 5
    python -m bench.bench_network --device cuda --configs eager-fp32 eager-bf16 --batch 1 64 256

Configurations (``--configs``; ``all`` = every one that can run here):

* ``official``: the official Hand4Whole test-mode forward (``--official DIR``, an
  extracted checkout; see ``bench/official_forward.py`` for the shim), fp32.
* ``eager-fp32`` / ``eager-bf16``: our ``Pose2Pose`` as loaded (``prepare_model``),
  bf16 through ``torch.autocast`` (the path before ``cpu_runner``).
* ``fast-fp32`` / ``fast-bf16``: ``inference.cpu_runner`` (BN folded; bf16 trunks
  stored in bf16, channels_last), what ``estimate`` runs on the CPU.
* ``compile-fp32`` / ``compile-bf16``: ``torch.compile`` of the fast runner (Inductor;
  compiling takes minutes on 2 cores, not counted).
* ``ort-fp32``, ``openvino-fp32``, ``openvino-bf16``: the exported graph
  (``onnx_export``; ``--onnx FILE`` or exported into a temporary folder) in ONNX
  Runtime / OpenVINO, SMPL-X in PyTorch after it.
* ``estimate-fp32`` / ``estimate-bf16``: end to end, ``EstimateJob`` (the classic
  CPU pipeline: decode, track, crop, network, take rows; the take is written to a
  temporary folder) on a synthetic 1280x720 clip of ``--estimate-frames``
  frames (``bench_pipeline.write_clip``), frames/s from its progress records after
  the network is loaded, batch as ``estimate`` chooses; one job per round.
* ``estimate-ort-fp32`` / ``estimate-openvino-fp32`` / ``estimate-openvino-bf16``: the
  same with ``--engine onnxruntime`` / ``openvino`` (the graph is exported once into a
  temporary data folder during the warm-up, not timed; SMPL-X in PyTorch).

Every configuration includes the SMPL-X layer (the mesh; like for like with the
official test mode), stand-in weights (seed 1) and stand-in SMPL-X files unless
``--smplx`` names real ones. Rounds alternate the configurations so machine noise
hits them alike; the table gives the median frames/s over rounds (min-max), the
ratio to ``official`` at the same batch, and the process's peak RSS after the
configuration first ran (CPU; it only grows) or the peak CUDA memory. Prints the
command, the load (``/proc/loadavg``) before and after, and the CPU's bf16 support.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from pose2pose_mocap.estimator import InferenceOptions, run_batch
from pose2pose_mocap.estimator.cpu_features import cpu_features
from pose2pose_mocap.estimator.pose2pose.inference import cpu_runner

from bench._common import standin_pose2pose

CONFIGS = ("official", "eager-fp32", "eager-bf16", "fast-fp32", "fast-bf16", "compile-fp32",
           "compile-bf16", "ort-fp32", "openvino-fp32", "openvino-bf16", "estimate-fp32",
           "estimate-bf16", "estimate-ort-fp32", "estimate-openvino-fp32",
           "estimate-openvino-bf16")
# estimate-ENGINE-PRECISION: the engine names of ``estimate --engine``
_ENGINES = {"ort": "onnxruntime", "openvino": "openvino"}
DEFAULT_CONFIGS = ("eager-fp32", "eager-bf16", "fast-fp32", "fast-bf16")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    p.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS),
                   help=f"any of {', '.join(CONFIGS)}, or all")
    p.add_argument("--batch", type=int, nargs="+", default=[1])
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (median)")
    p.add_argument("--iters", type=int, default=2, help="forward passes per round")
    p.add_argument("--threads", type=int, default=None,
                   help="torch/engine CPU threads (default: the usable cores)")
    p.add_argument("--official", default=None, help="extracted official checkout")
    p.add_argument("--onnx", default=None, help="an exported graph (default: export one)")
    p.add_argument("--smplx", default=None, help="SMPL-X folder (default: stand-ins)")
    p.add_argument("--estimate-frames", type=int, default=24,
                   help="frames of the clip the estimate-* configurations run (24)")
    return p.parse_args(argv)


class EstimateRun:
    """One ``EstimateJob`` over the clip per call; returns frames/s after loading."""

    def __init__(self, clip: Path, model, precision: str, out: Path, engine: str = "torch"):
        self.clip, self.model, self.precision, self.out = clip, model, precision, out
        self.engine = engine

    def rate(self) -> float:
        from pose2pose_mocap.estimator.pipeline import EstimateJob

        job = EstimateJob(self.clip, self.out, model=self.model, model_name="bench",
                          model_standin=True, device="cpu", detector="none",
                          precision=self.precision, force=True, engine=self.engine)
        start, done = None, 0
        for p in job.steps():
            if p.stage == "estimating":
                if start is None:
                    start = time.perf_counter()
                done = p.done
        for f in job.result.outputs:
            Path(f).unlink(missing_ok=True)
        return done / (time.perf_counter() - start)


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split(" ")[0]
    except OSError:
        return "?"


def _peak_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _export(model, args, notes, for_estimate: bool = False) -> None:
    """The graph in the engine cache (``engines.cached_graph``, what ``estimate --engine``
    runs), exported once and before any forward pass: a second export in a process whose
    network has already run failed in torch.export (batch guard), see docs/engines.md."""
    if args.onnx and not for_estimate:
        return
    from pose2pose_mocap.estimator.pose2pose.engines import cached_graph

    t0, exported = time.perf_counter(), []
    path = str(cached_graph(model, notes=exported))  # (the bench's temporary data folder)
    args.onnx = args.onnx or path
    if exported:
        notes.append(f"exported the graph in {time.perf_counter() - t0:.0f} s")


def build_runners(names, args, smplx_dir, device, tmp):
    """name -> callable(images) for every configuration that can run here (+ notes)."""
    model = standin_pose2pose(smplx_dir, InferenceOptions(device=str(device), channels_last=False))
    runners, notes = {}, []
    threads = args.threads
    for name in names:
        kind, _, prec = name.partition("-")
        try:
            if name == "official":
                if not args.official:
                    notes.append("official: skipped (no --official DIR)")
                    continue
                from bench.official_forward import check_conformance, load_official

                net = load_official(args.official, smplx_dir)
                worst = check_conformance(net)
                notes.append(f"official: reproduces tests/data/network_seed1_b2.npz "
                             f"(max difference {worst:.2g})")
                runners[name] = net
            elif kind == "estimate":
                if device.type != "cpu":
                    notes.append(f"{name}: CPU only here (bench_pipeline.py measures CUDA)")
                    continue
                clip = tmp / "clip.mp4"
                if not clip.exists():
                    from bench.bench_pipeline import write_clip

                    write_clip(clip, args.estimate_frames, (1280, 720))
                (tmp / "takes").mkdir(exist_ok=True)
                engine, _, prec = prec.rpartition("-")
                if engine:  # now, before any forward pass (see _export)
                    _export(model, args, notes, for_estimate=True)
                runners[name] = EstimateRun(clip, model, prec, tmp / "takes",
                                            _ENGINES.get(engine, "torch"))
            elif kind == "eager":
                opts = InferenceOptions(device=str(device), precision=prec, channels_last=False)
                runners[name] = (lambda o: lambda x: run_batch(model, x, o, to_cpu=False))(opts)
            elif kind in ("fast", "compile"):
                if device.type != "cpu":
                    notes.append(f"{name}: CPU only")
                    continue
                opts = InferenceOptions(device="cpu", precision=prec, threads=threads)
                runner = cpu_runner(model, opts)
                if kind == "compile":
                    runner = torch.compile(runner, dynamic=False)
                runners[name] = (lambda r, o: lambda x: run_batch(r, x, o))(runner, opts)
            else:
                from pose2pose_mocap.estimator.pose2pose.onnx_export import EngineRunner

                _export(model, args, notes)
                engine = "onnxruntime" if kind == "ort" else "openvino"
                runners[name] = EngineRunner(args.onnx, model, engine, prec, threads)
        except (ImportError, RuntimeError, SystemExit) as exc:
            notes.append(f"{name}: cannot run here ({str(exc).splitlines()[0][:150]})")
    return runners, notes


def main(argv=None) -> int:
    args = parse_args(argv)
    names = list(CONFIGS) if "all" in args.configs else args.configs
    bad = [n for n in names if n not in CONFIGS]
    if bad:
        raise SystemExit(f"unknown configuration {bad[0]} (use {', '.join(CONFIGS)} or all)")
    device = InferenceOptions(device=args.device).torch_device()
    feats = cpu_features()
    torch.set_num_threads(args.threads or feats.cores)
    print("command:", shlex.join([sys.executable, "-m", "bench.bench_network", *sys.argv[1:]]))
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else platform.processor() or platform.machine())
    print(f"torch {torch.__version__}, device {device} ({name}), threads "
          f"{torch.get_num_threads()}; {feats.describe()}")
    print(f"load average before: {_loadavg()}")
    tmp = Path(tempfile.mkdtemp(prefix="p2p-bench-network-"))
    os.environ["P2P_MOCAP_DATA_DIR"] = str(tmp / "data")  # the engine cache, not the user's
    try:
        smplx_dir = args.smplx
        if smplx_dir is None:
            from pose2pose_mocap.weights.standins import write_standins

            write_standins(tmp / "standins")
            smplx_dir = str(tmp / "standins" / "smplx")
        runners, notes = build_runners(names, args, smplx_dir, device, tmp)
        for n in notes:
            print("note:", n)
        rates = {(n, b): [] for n in runners for b in args.batch}
        peaks = {}
        gen = torch.Generator().manual_seed(0)
        inputs = {b: torch.rand(b, 3, 512, 384, generator=gen).to(device) for b in args.batch}
        for n, run in runners.items():  # warm-up (and compilation) outside the timing
            if isinstance(run, EstimateRun):
                run.rate()
            else:
                for b in args.batch:
                    run(inputs[b])
            peaks[n] = _peak_mib(device)
        for r in range(args.rounds):
            order = list(runners) if r % 2 == 0 else list(reversed(runners))
            for n in order:
                if isinstance(runners[n], EstimateRun):  # (the job picks its own batch)
                    rates[(n, args.batch[0])].append(runners[n].rate())
                    continue
                for b in args.batch:
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                    t0 = time.perf_counter()
                    for _ in range(args.iters):
                        out = runners[n](inputs[b])
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                    rates[(n, b)].append(b * args.iters / (time.perf_counter() - t0))
                    del out
        mem = "peak GPU MiB" if device.type == "cuda" else "peak RSS MiB"
        print(f"{'config':>14} {'batch':>5} {'frames/s':>9} {'(min-max)':>13} "
              f"{'x official':>10} {mem:>13}")
        for b in args.batch:
            base = (statistics.median(rates[("official", b)])
                    if ("official", b) in rates else None)
            for n in runners:
                v = rates[(n, b)]
                if not v:
                    continue
                med = statistics.median(v)
                ratio = f"{med / base:10.2f}" if base else f"{'-':>10}"
                print(f"{n:>14} {b:>5} {med:9.2f} {f'({min(v):.2f}-{max(v):.2f})':>13} "
                      f"{ratio} {peaks[n]:13.0f}", flush=True)
        print(f"load average after: {_loadavg()}; {args.rounds} rounds x {args.iters} passes")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
