# SPDX-License-Identifier: GPL-3.0-or-later
"""int8 on the CPU: ONNX Runtime's quantized graph vs fp32, speed and accuracy (a trial).

    python -m bench.int8_try                                  # export, quantize, measure
    python -m bench.int8_try --onnx /tmp/pose2pose.onnx --calib 16 --frames 24 --rounds 3
    python -m bench.int8_try --no-calib-images --method minmax percentile --trunks body hand

Not a product path: ``estimate`` has no ``--precision int8``; this script only
measures what int8 would give, so that can be decided (docs/speed.md, "CPU: int8").

1. The fp32 graph of the stand-in network (weights seed 1, stand-in SMPL-X), exported
   like ``bench_network`` does (``engines.cached_graph`` into a temporary data folder),
   or ``--onnx``.
2. ``quant_pre_process`` (shape inference, ORT graph optimisation), then
   ``quantize_static``: QDQ, per-channel int8 weights, uint8 activations (U8S8, the
   AVX-512 VNNI kernels), MinMax calibration (``--method``, several: one graph each) on
   the conformance inputs (``make_images(2, 1)``, left out with ``--no-calib-images``;
   the two crops of tests/data/preprocess_seed1.npz) and the first ``--calib`` crops
   of samples/wave.mp4. Quantized: only the convolutions of the trunks (``--trunks``:
   the body and hand ResNet-50s, the face ResNet-18, the box net's deconvolutions);
   the heads (position/rotation nets' convolutions, the fully connected outputs, the
   box net's last 1x1), RoiAlign, GridSample and the geometry stay fp32. ONNX Runtime
   1.31 fuses the quantized convolutions into QLinearConv (and the residual adds into
   QLinearAdd); it has no int8 ConvTranspose, so the box net's deconvolutions still run
   in fp32 between a QuantizeLinear/DequantizeLinear pair. ``--dynamic`` adds
   ``quantize_dynamic`` of the same convolutions (ConvInteger; no calibration).
3. Speed: alternating rounds, batch 1, ``EngineRunner`` (the graph in ONNX Runtime,
   then SMPL-X in PyTorch, as ``estimate --engine onnxruntime`` does), on one wave.mp4
   crop; frames/s median (min-max) and the ratio to ``ort-fp32``.
4. Accuracy against ``fast-fp32`` (PyTorch ``cpu_runner``, equal to the reference
   within the conformance tolerances) in ``bf16_accuracy``'s units (its functions):
   max / mean of the geodesic angle per joint group in degrees, mesh (model frame) and
   camera translation in mm. ``ort-fp32`` is the control. Sets: the conformance
   inputs (also in the calibration) and wave.mp4 crops ``calib .. calib+frames``
   (held out of the calibration).

Stand-in weights are random: a trained network's activations have other ranges, so the
accuracy with the real checkpoint may differ (better or worse); the speed does not
depend on the weights' values.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.bf16_accuracy import POSE_GROUPS, clip_crops, compare, run_all
from pose2pose_mocap.estimator import InferenceOptions, run_batch
from pose2pose_mocap.estimator.cpu_features import cpu_features
from pose2pose_mocap.estimator.pose2pose.inference import cpu_runner
from pose2pose_mocap.weights.standin_rule import make_images

from bench._common import standin_pose2pose

ROOT = Path(__file__).resolve().parent.parent
# the convolution stacks quantized (weight-name prefixes); everything else stays fp32
TRUNKS = {"body": "net.backbone.", "hand": "net.hand_roi_net.backbone.",
          "face": "net.face_roi_net.backbone.", "box": "net.box_net.deconv."}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--onnx", default=None,
                   help="the stand-in network's exported fp32 graph (default: export it); "
                        "another network's graph would be compared with the wrong reference")
    p.add_argument("--calib", type=int, default=16, help="wave.mp4 crops for calibration")
    p.add_argument("--frames", type=int, default=24,
                   help="held-out wave.mp4 crops for accuracy (after the calibration ones)")
    p.add_argument("--method", nargs="+", default=["minmax"],
                   choices=("minmax", "percentile", "entropy"),
                   help="calibration method(s) (ONNX Runtime's CalibrationMethod): one int8 "
                        "graph each")
    p.add_argument("--calib-images", action=argparse.BooleanOptionalAction, default=True,
                   help="calibrate on the synthetic conformance images too (default: yes; "
                        "their activations are wider than real crops')")
    p.add_argument("--dynamic", action="store_true", help="also quantize_dynamic (ConvInteger)")
    p.add_argument("--trunks", nargs="+", default=list(TRUNKS), choices=list(TRUNKS),
                   help="the convolution stacks to quantize (default: all four)")
    p.add_argument("--rounds", type=int, default=3, help="alternating speed rounds (median)")
    p.add_argument("--iters", type=int, default=2, help="forward passes per round")
    p.add_argument("--batch", type=int, default=4, help="batch of the accuracy runs")
    return p.parse_args(argv)


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split(" ")[0]
    except OSError:
        return "?"


def _to_nchw(crops_hwc: np.ndarray) -> torch.Tensor:
    """(N, 512, 384, 3) uint8-valued crops -> (N, 3, 512, 384) float32 in [0, 1]."""
    return torch.from_numpy(crops_hwc / 255.0).float().permute(0, 3, 1, 2).contiguous()


def trunk_convs(model_path: Path, trunks) -> list[str]:
    """Names of the Conv/ConvTranspose nodes whose weight belongs to ``trunks`` (TRUNKS keys)."""
    import onnx

    prefixes = tuple(TRUNKS[t] for t in trunks)
    graph = onnx.load(str(model_path), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type in ("Conv", "ConvTranspose")
            and len(n.input) > 1 and n.input[1].startswith(prefixes)]


def quantize(src: Path, tmp: Path, calib: torch.Tensor, methods, dynamic: bool,
             trunks, notes: list) -> dict[str, Path]:
    """The int8 graphs: {"ort-int8[-METHOD]": static QDQ per calibration method
    [, "ort-int8-dyn": dynamic]} (+ notes)."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod,
                                          QuantFormat, QuantType, quantize_dynamic,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = tmp / "pre.onnx"
    t0 = time.perf_counter()
    try:
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    except Exception as exc:  # (the dynamo graph may defeat the optimiser: quantize it raw)
        notes.append(f"quant_pre_process failed ({str(exc).splitlines()[0][:120]}); raw graph")
        pre = src
    nodes = trunk_convs(pre, trunks)
    notes.append(f"pre-processed in {time.perf_counter() - t0:.0f} s; {len(nodes)} "
                 f"convolutions to quantize ({', '.join(trunks)})")

    class Reader(CalibrationDataReader):
        """The calibration images (N, 3, 512, 384), one per call."""

        def __init__(self, images: torch.Tensor):
            self._it = iter([{"img": images[i:i + 1].numpy()} for i in range(len(images))])

        def get_next(self):
            return next(self._it, None)

    out = {}
    for method in methods:
        name = "ort-int8" if len(methods) == 1 else f"ort-int8-{method}"
        t0 = time.perf_counter()
        quantize_static(
            str(pre), str(tmp / f"{name}.onnx"), Reader(calib), quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["Conv", "ConvTranspose"], nodes_to_quantize=nodes,
            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method={"minmax": CalibrationMethod.MinMax,
                              "percentile": CalibrationMethod.Percentile,
                              "entropy": CalibrationMethod.Entropy}[method],
            calibration_providers=["CPUExecutionProvider"])
        notes.append(f"quantize_static ({method}, {len(calib)} calibration images) in "
                     f"{time.perf_counter() - t0:.0f} s")
        out[name] = tmp / f"{name}.onnx"
    if dynamic:
        t0 = time.perf_counter()
        try:  # (its shape inference rejects the exporter's value_info: dropped, re-inferred)
            import onnx

            raw = onnx.load(str(src))
            del raw.graph.value_info[:]
            quantize_dynamic(raw, str(tmp / "int8-dyn.onnx"), op_types_to_quantize=["Conv"],
                             nodes_to_quantize=trunk_convs(src, trunks), per_channel=True,
                             weight_type=QuantType.QInt8)
            notes.append(f"quantize_dynamic in {time.perf_counter() - t0:.0f} s "
                         "(Conv only: ONNX Runtime has no dynamic ConvTranspose)")
            out["ort-int8-dyn"] = tmp / "int8-dyn.onnx"
        except Exception as exc:
            notes.append(f"quantize_dynamic failed: {str(exc).splitlines()[0][:160]}")
    for name, path in out.items():
        notes.append(f"{name}: {path.stat().st_size / 2**20:.0f} MiB "
                     f"(fp32 graph {src.stat().st_size / 2**20:.0f} MiB)")
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    print("command:", shlex.join([sys.executable, "-m", "bench.int8_try", *sys.argv[1:]]))
    feats = cpu_features()
    torch.set_num_threads(feats.cores)
    print(f"torch {torch.__version__}; {feats.describe()}")
    load_before, t_start = _loadavg(), time.perf_counter()
    print(f"load average before: {load_before}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="p2p-int8-try-"))
    os.environ["P2P_MOCAP_DATA_DIR"] = str(tmp / "data")  # the engine cache, not the user's
    try:
        from pose2pose_mocap.estimator.pose2pose.onnx_export import EngineRunner
        from pose2pose_mocap.weights.standins import write_standins

        write_standins(tmp / "standins")
        model = standin_pose2pose(str(tmp / "standins" / "smplx"))
        notes = []
        src = Path(args.onnx) if args.onnx else None
        if src is None:  # before any forward pass (see bench_network._export)
            from pose2pose_mocap.estimator.pose2pose.engines import cached_graph

            t0 = time.perf_counter()
            src = cached_graph(model)
            notes.append(f"exported the fp32 graph in {time.perf_counter() - t0:.0f} s")
        pre = np.load(ROOT / "tests" / "data" / "preprocess_seed1.npz")
        conf_images = torch.from_numpy(make_images(2, 1))
        conf_crops = _to_nchw(np.stack([pre["crop_0"], pre["crop_1"]]).astype(np.float32))
        wave = _to_nchw(clip_crops(args.calib + args.frames).astype(np.float32))
        calib, held = wave[:args.calib], wave[args.calib:]
        calib_set = [conf_images] if args.calib_images else []
        graphs = quantize(src, tmp, torch.cat(calib_set + [conf_crops, calib]), args.method,
                          args.dynamic, args.trunks, notes)
        for n in notes:
            print("note:", n, flush=True)

        f32 = InferenceOptions(precision="fp32")
        fast32 = cpu_runner(model, f32)
        variants = {"fast-fp32": lambda x: run_batch(fast32, x, f32),
                    "ort-fp32": EngineRunner(src, model, "onnxruntime", "fp32")}
        for name, path in graphs.items():  # ("fp32" = the session's float I/O; QDQ inside)
            variants[name] = EngineRunner(path, model, "onnxruntime", "fp32")

        # speed: the engines only (fast-fp32 is the accuracy reference, not timed)
        timed = [n for n in variants if n.startswith("ort-")]
        x = (held if len(held) else calib)[:1]
        for n in timed:
            variants[n](x)  # warm-up
        rates = {n: [] for n in timed}
        for r in range(args.rounds):
            for n in (timed if r % 2 == 0 else timed[::-1]):
                t0 = time.perf_counter()
                for _ in range(args.iters):
                    variants[n](x)
                rates[n].append(args.iters / (time.perf_counter() - t0))
        base = statistics.median(rates["ort-fp32"])
        print(f"\nspeed: batch 1, graph in ONNX Runtime + SMPL-X in PyTorch (EngineRunner), "
              f"{args.rounds} alternating rounds x {args.iters} passes")
        print(f"{'variant':>14} {'frames/s':>9} {'(min-max)':>13} {'x ort-fp32':>10}")
        for n in timed:
            v = rates[n]
            print(f"{n:>14} {statistics.median(v):9.2f} "
                  f"{f'({min(v):.2f}-{max(v):.2f})':>13} {statistics.median(v) / base:10.2f}",
                  flush=True)

        in_cal = "in calibration" if args.calib_images else "not in calibration"
        sets = {f"conformance images (2, {in_cal})": conf_images,
                "conformance crops (2, in calibration)": conf_crops}
        if len(held):
            sets[f"wave.mp4 crops ({len(held)}, held out)"] = held
        cols = [g for g, _ in POSE_GROUPS] + ["mesh mm", "cam mm"]
        print("\naccuracy: max / mean difference from fast-fp32 (rotations in degrees; mesh "
              "in the model frame and camera translation in mm); STAND-IN (random) weights: "
              "the real checkpoint may differ")
        for set_name, images in sets.items():
            ref = run_all(variants["fast-fp32"], images, args.batch)
            print(f"\n{set_name}")
            print(f"{'variant':>14} " + " ".join(f"{c:>15}" for c in cols))
            for name in timed:
                row = compare(ref, run_all(variants[name], images, args.batch))
                print(f"{name:>14} " + " ".join(
                    f"{f'{row[c][0]:.3g} / {row[c][1]:.2g}':>15}" for c in cols), flush=True)
        print(f"\nload average before: {load_before} ... after: {_loadavg()} "
              f"({time.perf_counter() - t_start:.0f} s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
