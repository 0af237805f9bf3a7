"""``hwsim verify``: quantize a model (or take a quantized one) and check every executor bit
for bit (exit 1 if a normative pair mismatches). Argument parsing only; the work is
:mod:`hwsim.verify` (float models) and :mod:`hwsim.verify_onnx` (quantized models).
Options come from :mod:`hwsim.commands.options` (one vocabulary for every command)."""

from __future__ import annotations

import argparse
import json
import sys

from hwsim.commands.options import (
    QUANT_DEFAULTS,
    add_array_options,
    add_data_options,
    add_json_option,
    add_model_argument,
    add_quant_options,
    add_run_options,
    batch_of,
    check_datapath_options,
    loaded_from_args,
    progress_enabled,
)
from hwsim.errors import EXIT_CHECK_FAILED, EXIT_OK


def options(args: argparse.Namespace):  # noqa: ANN201 - VerifyOptions, imported lazily
    """The VerifyOptions of the command line: the datapath (requant mode, profile,
    accumulator) from --array if given, each overridden by its option (defaults < ARRAY.toml
    < command line); the quantization choices from their options or QUANT_DEFAULTS."""
    from hwsim.compiler.quantize import ACT_BITS, WEIGHT_CARRIED_BITS
    from hwsim.sim.config import check_acc_bits
    from hwsim.verify import VerifyOptions

    check_datapath_options(args)
    mode, profile = QUANT_DEFAULTS["requant"], ""
    acc_bits, acc_overflow = QUANT_DEFAULTS["acc_bits"], QUANT_DEFAULTS["acc_overflow"]
    if getattr(args, "array", None):
        from hwsim.sim.config import load_array_config

        arr = load_array_config(args.array)
        mode, profile = arr.requant.mode, arr.profile
        acc_bits, acc_overflow = arr.acc_bits, arr.acc_overflow
    if args.profile:
        from hwsim.compiler.profiles import get_profile

        mode, profile = get_profile(args.profile).requant.mode, args.profile
    elif args.requant:
        mode, profile = args.requant, ""
    acc_bits = args.acc_bits if args.acc_bits is not None else acc_bits
    acc_overflow = args.acc_overflow or acc_overflow
    weights = args.weights or "int8"
    act_dtype = args.act_dtype or QUANT_DEFAULTS["act_dtype"]
    # the one accumulator range (hwsim.sim.config.acc_bits_range), named after the option
    check_acc_bits(acc_bits, ACT_BITS[act_dtype], WEIGHT_CARRIED_BITS[weights],
                   f"--acc-bits ({act_dtype} activations, {weights} weights)")
    return VerifyOptions(mode=mode, weights=weights,
                         observer=args.observer or QUANT_DEFAULTS["observer"],
                         acc_bits=acc_bits, acc_overflow=acc_overflow, dynamic=args.dynamic,
                         profile=profile, act_dtype=act_dtype, narrow_range=args.narrow_range,
                         qparams=args.qparams or "")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "verify", help="quantize a model and check every executor bit for bit",
        description="Quantize MODEL (a float model; a quantized ONNX model or hwsim integer "
                    "graph is taken as it is, with its own qparams, and compared with ONNX "
                    "Runtime), run the float, fake-quant and golden executors and print one "
                    "JSON object (with --json) or a summary line. Exit 1 when a normative "
                    "pair mismatches.")
    add_model_argument(p)
    add_data_options(p)
    add_quant_options(p)
    add_array_options(p, energy=False)
    add_json_option(p)
    add_run_options(p)
    p.set_defaults(func=run)


def _first(x, n: int | None):  # noqa: ANN001, ANN202
    return x if not n else x[:n]


def run(args: argparse.Namespace) -> int:
    if str(args.model).endswith(".tflite"):  # LiteRT model (issue 12): hwsim.verify_tflite
        from hwsim.verify_tflite import run_cli

        return run_cli(args)
    from hwsim.progress import progress_scope
    from hwsim.sources import source_data
    from hwsim.verify import summary_line, verify_graph

    loaded = loaded_from_args(args)
    if loaded.quantized:
        return _run_quantized(args, loaded)
    opts = options(args)
    graph = loaded.graph
    data = source_data(loaded, args.calib, args.inputs, args.labels, seed=args.seed,
                       needs_calib=not opts.dynamic)
    for w in data.warnings:
        print(f"hwsim verify: warning: {w}", file=sys.stderr)
    inputs, labels = _first(data.inputs, args.samples), _first(data.labels, args.samples)
    with progress_scope(progress_enabled(args)):
        from hwsim.verify import build_qgraph
        from hwsim.verify_onnx import add_onnxruntime_pairs

        qg = build_qgraph(graph, data.calib, opts, batch_of(args))
        report = verify_graph(graph, inputs, calib=data.calib, labels=labels,
                              opts=opts, qgraph=qg, batch=batch_of(args))
        add_onnxruntime_pairs(report, qg, inputs, batch=batch_of(args))
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        print(summary_line(report))
    return EXIT_OK if report["ok"] else EXIT_CHECK_FAILED


def _run_quantized(args: argparse.Namespace, loaded) -> int:  # noqa: ANN001
    """``hwsim verify QMODEL``: ONNX Runtime vs golden under the profile (no --calib)."""
    from hwsim.compiler.profiles import host_ort_profile
    from hwsim.progress import progress_scope
    from hwsim.sources import source_data
    from hwsim.verify_onnx import quantized_model, summary_line, verify_quantized

    imported = loaded.imported or quantized_model(str(loaded.path),
                                                  args.profile or host_ort_profile())
    data = source_data(loaded, None, args.inputs, None, seed=args.seed)
    for w in data.warnings:
        print(f"hwsim verify: warning: {w}", file=sys.stderr)
    with progress_scope(progress_enabled(args)):
        report = verify_quantized(imported, _first(data.inputs, args.samples),
                                  batch=batch_of(args))
    print(json.dumps(report, sort_keys=True) if args.json else summary_line(report))
    return EXIT_OK if report["ok"] else EXIT_CHECK_FAILED
