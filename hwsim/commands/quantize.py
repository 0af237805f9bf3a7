"""``hwsim quantize``: quantize a model and save its integer graph — as hwsim's JSON + NPZ,
or as a QDQ / QOperator ONNX model that ONNX Runtime runs bit-exactly against hwsim's golden
model (specs/ir.md §9). MODEL is a float ONNX model (calibrated and quantized), a quantized
ONNX model (imported with its own qparams, specs/ir.md §8) or hwsim's integer-graph JSON.
Argument parsing only; the work is :mod:`hwsim.compiler` and :mod:`hwsim.frontends`."""

from __future__ import annotations

import argparse
import sys

from hwsim.commands.options import (
    add_array_options,
    add_data_options,
    add_model_argument,
    add_quant_options,
    add_run_options,
    batch_of,
    check_output_path,
    loaded_from_args,
    progress_enabled,
)
from hwsim.commands.verify import options
from hwsim.errors import EXIT_OK

#: Output formats of ``--format``.
FORMATS = ("hwsim", "qdq", "qoperator", "tflite")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "quantize", help="quantize a model and save its integer graph",
        description="Quantize MODEL (float ONNX, quantized ONNX or hwsim QMODEL.json) and "
                    "write QMODEL.json + QMODEL.npz (--format hwsim, default) or a QDQ / "
                    "QOperator ONNX model (--format qdq|qoperator; needs the float32 "
                    "datapath of --profile ort_cpu).")
    add_model_argument(p)
    add_data_options(p, labels=False,
                     samples_help="calibrate on the first N inputs (default all)")
    add_quant_options(p)
    add_array_options(p, energy=False)
    add_run_options(p)
    p.add_argument("--out", "-o", required=True, metavar="OUT",
                   help="output file (QMODEL.json for hwsim, OUT.onnx otherwise)")
    p.add_argument("--format", default="hwsim", choices=FORMATS,
                   help="output format (default hwsim)")
    p.set_defaults(func=run)


def _load_any(args: argparse.Namespace, opts) -> object:  # noqa: ANN001
    """The integer graph of MODEL: a quantized source as it is, a float model calibrated
    (hwsim.sources) and quantized."""
    loaded = loaded_from_args(args)
    if loaded.quantized:
        return loaded.qgraph
    from hwsim.progress import progress_scope
    from hwsim.sources import source_data
    from hwsim.verify import build_qgraph

    calib = None
    if not opts.dynamic:
        data = source_data(loaded, args.calib, args.inputs, None, seed=args.seed,
                           evaluate=False)
        for w in data.warnings:
            print(f"hwsim quantize: warning: {w}", file=sys.stderr)
        calib = data.calib if not args.samples else data.calib[:args.samples]
    with progress_scope(progress_enabled(args)):
        return build_qgraph(loaded.graph, calib, opts, batch_of(args))


def run(args: argparse.Namespace) -> int:
    opts = options(args)
    check_output_path(args.out, directory=False)
    qg = _load_any(args, opts)
    if args.format == "hwsim":
        from hwsim.compiler.serialize import save_qgraph

        jpath, zpath = save_qgraph(qg, args.out)
        print(f"wrote {jpath} and {zpath}")
        return EXIT_OK
    if args.format == "tflite":  # LiteRT int8 (issue 12, specs/ir.md §10)
        from hwsim.frontends.tflite_export import save_tflite

        save_tflite(qg, args.out)
        print(f"wrote {args.out} (tflite, profile {qg.profile or qg.requant_config.mode})")
        return EXIT_OK
    from hwsim.frontends.onnx_quant_export import save_quantized_onnx

    save_quantized_onnx(qg, args.out, args.format)
    print(f"wrote {args.out} ({args.format}, profile {qg.profile or qg.requant_config.mode})")
    return EXIT_OK
