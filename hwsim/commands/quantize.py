"""``hwsim quantize``: quantize a model and save its integer graph — as hwsim's JSON + NPZ,
or as a QDQ / QOperator ONNX model that ONNX Runtime runs bit-exactly against hwsim's golden
model (specs/ir.md §9). MODEL is a float ONNX model (calibrated and quantized), a quantized
ONNX model (imported with its own qparams, specs/ir.md §8) or hwsim's integer-graph JSON.
Argument parsing only; the work is :mod:`hwsim.compiler` and :mod:`hwsim.frontends`."""

from __future__ import annotations

import argparse
import sys

from hwsim.commands.options import batch_of, check_output_path, progress_enabled
from hwsim.commands.verify import add_quant_options, options
from hwsim.errors import EXIT_OK

#: Output formats of ``--format``.
FORMATS = ("hwsim", "qdq", "qoperator")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "quantize", help="quantize a model and save its integer graph",
        description="Quantize MODEL (float ONNX, quantized ONNX or hwsim QMODEL.json) and "
                    "write QMODEL.json + QMODEL.npz (--format hwsim, default) or a QDQ / "
                    "QOperator ONNX model (--format qdq|qoperator; needs the float32 "
                    "datapath of --profile ort_cpu).")
    add_quant_options(p)
    p.add_argument("--out", "-o", required=True, metavar="OUT",
                   help="output file (QMODEL.json for hwsim, OUT.onnx otherwise)")
    p.add_argument("--format", default="hwsim", choices=FORMATS,
                   help="output format (default hwsim)")
    p.set_defaults(func=run)


def _load_any(args: argparse.Namespace, opts) -> object:  # noqa: ANN001
    """The integer graph of MODEL: hwsim JSON, quantized ONNX, or a quantized float ONNX."""
    if str(args.model).endswith(".json"):
        from hwsim.compiler.serialize import load_qgraph

        return load_qgraph(args.model)
    from hwsim.compiler.profiles import host_ort_profile
    from hwsim.verify_onnx import quantized_model

    imported = quantized_model(args.model, args.profile or host_ort_profile())
    if imported is not None:
        return imported.qgraph
    from hwsim.progress import progress_scope
    from hwsim.verify import build_qgraph, load_model, resolve_data

    graph = load_model(args.model)
    calib = None
    if not opts.dynamic:
        data = resolve_data(args.model, graph, args.calib, None, None, evaluate=False)
        for w in data.warnings:
            print(f"hwsim quantize: warning: {w}", file=sys.stderr)
        calib = data.calib
    with progress_scope(progress_enabled(args)):
        return build_qgraph(graph, calib, opts, batch_of(args))


def run(args: argparse.Namespace) -> int:
    opts = options(args)
    check_output_path(args.out, directory=False)
    qg = _load_any(args, opts)
    if args.format == "hwsim":
        from hwsim.compiler.serialize import save_qgraph

        jpath, zpath = save_qgraph(qg, args.out)
        print(f"wrote {jpath} and {zpath}")
        return EXIT_OK
    from hwsim.frontends.onnx_quant_export import save_quantized_onnx

    save_quantized_onnx(qg, args.out, args.format)
    print(f"wrote {args.out} ({args.format}, profile {qg.profile or qg.requant_config.mode})")
    return EXIT_OK
