"""``hwsim quantize``: quantize a float ONNX model and save the integer graph (JSON + NPZ).
Argument parsing only; the work is :mod:`hwsim.compiler`."""

from __future__ import annotations

import argparse
import sys

from hwsim.commands.options import batch_of, check_output_path, progress_enabled
from hwsim.commands.verify import add_quant_options, options
from hwsim.errors import EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "quantize", help="quantize a model and save its integer graph",
        description="Quantize MODEL.onnx and write QMODEL.json + QMODEL.npz.")
    add_quant_options(p)
    p.add_argument("--out", required=True, metavar="QMODEL.json", help="output file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hwsim.compiler.serialize import save_qgraph
    from hwsim.verify import build_qgraph, load_model, resolve_data

    opts = options(args)
    check_output_path(args.out, directory=False)
    graph = load_model(args.model)
    calib = None
    if not opts.dynamic:
        data = resolve_data(args.model, graph, args.calib, None, None, evaluate=False)
        for w in data.warnings:
            print(f"hwsim quantize: warning: {w}", file=sys.stderr)
        calib = data.calib
    from hwsim.progress import progress_scope

    with progress_scope(progress_enabled(args)):
        qg = build_qgraph(graph, calib, opts, batch_of(args))
    jpath, zpath = save_qgraph(qg, args.out)
    print(f"wrote {jpath} and {zpath}")
    return EXIT_OK
