"""``hwsim verify``: quantize a float ONNX model and check golden == fake-quant (exit 1 if an
exact requant mode mismatches). Argument parsing only; the work is :mod:`hwsim.verify`."""

from __future__ import annotations

import argparse
import json
import sys

from hwsim.commands.options import add_run_options, batch_of, progress_enabled
from hwsim.errors import EXIT_CHECK_FAILED, EXIT_OK


def add_quant_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``hwsim verify`` and ``hwsim quantize``."""
    p.add_argument("model", metavar="MODEL.onnx",
                   help="float ONNX model, or a quantized (QDQ / QOperator) ONNX model")
    p.add_argument("--calib", metavar="X.npy", help="calibration inputs (float, NCHW)")
    p.add_argument("--requant", default="dyadic",
                   choices=("tflite", "tflite_single", "float32", "dyadic", "custom"),
                   help="requantization datapath (default dyadic)")
    p.add_argument("--profile", default=None,
                   choices=("tflite", "tflite_single", "float32", "dyadic", "ort_cpu",
                            "ort_cpu_avx2"),
                   help="engine profile: arithmetic per op type (specs/arithmetic.md §11; "
                        "fixes the requant datapath; default: that of --requant; for a "
                        "quantized model this machine's ONNX Runtime, ort_cpu or "
                        "ort_cpu_avx2)")
    p.add_argument("--weights", default="int8", choices=("int8", "int4", "int4_block", "fp8"),
                   help="weight format (default int8 per channel)")
    p.add_argument("--narrow-range", action="store_true",
                   help="symmetric weights in [-127, 127] (int4: [-7, 7]), as ONNX Runtime "
                        "and TFLite quantize them")
    p.add_argument("--qparams", metavar="Q.json", default="",
                   help="external activation qparams {\"tensors\": {name: {scale, zero_point, "
                        "dtype}}}; the tensors not listed are calibrated")
    p.add_argument("--act-dtype", default="int8", choices=("int8", "uint8", "int16", "uint16"),
                   help="activation format (asymmetric, per tensor; default int8)")
    p.add_argument("--observer", default="minmax",
                   choices=("minmax", "moving_average", "percentile", "mse", "entropy"),
                   help="activation observer (default minmax)")
    p.add_argument("--acc-bits", type=int, default=32, metavar="N",
                   help="accumulator width: act + weight bits .. 32, e.g. 16..32 for int8 "
                        "weights (default 32)")
    p.add_argument("--acc-overflow", default="wrap", choices=("wrap", "saturate", "error"),
                   help="accumulator overflow policy (default wrap)")
    p.add_argument("--dynamic", action="store_true",
                   help="dynamic quantization (activation qparams per input)")
    add_run_options(p)


def options(args: argparse.Namespace):  # noqa: ANN201 - VerifyOptions, imported lazily
    from hwsim.compiler.quantize import ACT_BITS, WEIGHT_CARRIED_BITS
    from hwsim.sim.config import check_acc_bits
    from hwsim.verify import VerifyOptions

    # the one accumulator range (hwsim.sim.config.acc_bits_range), named after the option
    check_acc_bits(args.acc_bits, ACT_BITS[args.act_dtype], WEIGHT_CARRIED_BITS[args.weights],
                   f"--acc-bits ({args.act_dtype} activations, {args.weights} weights)")

    return VerifyOptions(mode=args.requant, weights=args.weights, observer=args.observer,
                         acc_bits=args.acc_bits, acc_overflow=args.acc_overflow,
                         dynamic=args.dynamic, profile=args.profile or "",
                         act_dtype=args.act_dtype, narrow_range=args.narrow_range,
                         qparams=args.qparams)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "verify", help="quantize a model and check every executor bit for bit",
        description="Quantize MODEL.onnx, run the float, fake-quant and golden executors and "
                    "print one JSON object (with --json) or a summary line. Exit 1 when an "
                    "exact requant mode (dyadic, custom) has a golden/fake-quant mismatch.")
    add_quant_options(p)
    p.add_argument("--inputs", metavar="X.npy", help="evaluation inputs")
    p.add_argument("--labels", metavar="Y.npy", help="labels of --inputs (accuracy)")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if str(args.model).endswith(".tflite"):  # LiteRT model (issue 12): hwsim.verify_tflite
        from hwsim.verify_tflite import run_cli

        return run_cli(args)
    from hwsim.compiler.profiles import host_ort_profile
    from hwsim.progress import progress_scope
    from hwsim.verify import load_model, resolve_data, summary_line, verify_graph
    from hwsim.verify_onnx import quantized_model

    imported = quantized_model(args.model, args.profile or host_ort_profile())
    if imported is not None:
        return _run_quantized(args, imported)
    opts = options(args)
    graph = load_model(args.model)
    data = resolve_data(args.model, graph, args.calib, args.inputs, args.labels,
                        needs_calib=not opts.dynamic)
    for w in data.warnings:
        print(f"hwsim verify: warning: {w}", file=sys.stderr)
    with progress_scope(progress_enabled(args)):
        from hwsim.verify import build_qgraph
        from hwsim.verify_onnx import add_onnxruntime_pairs

        qg = build_qgraph(graph, data.calib, opts, batch_of(args))
        report = verify_graph(graph, data.inputs, calib=data.calib, labels=data.labels,
                              opts=opts, qgraph=qg, batch=batch_of(args))
        add_onnxruntime_pairs(report, qg, data.inputs, batch=batch_of(args))
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        print(summary_line(report))
    return EXIT_OK if report["ok"] else EXIT_CHECK_FAILED


def _run_quantized(args: argparse.Namespace, imported) -> int:  # noqa: ANN001
    """``hwsim verify QMODEL.onnx``: ONNX Runtime vs golden under the profile (no --calib)."""
    from hwsim.progress import progress_scope
    from hwsim.verify_onnx import quantized_inputs, summary_line, verify_quantized

    inputs, warnings = quantized_inputs(imported, args.inputs)
    for w in warnings:
        print(f"hwsim verify: warning: {w}", file=sys.stderr)
    with progress_scope(progress_enabled(args)):
        report = verify_quantized(imported, inputs, batch=batch_of(args))
    print(json.dumps(report, sort_keys=True) if args.json else summary_line(report))
    return EXIT_OK if report["ok"] else EXIT_CHECK_FAILED
