"""``hwsim vectors``: write golden vectors of a model's MAC layers, or check a vector set.

Argument parsing only; the work is :mod:`hwsim.vectors`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hwsim.commands.options import (
    add_array_options,
    add_data_options,
    add_json_option,
    add_model_argument,
    add_quant_options,
    add_run_options,
    array_from_args,
    batch_of,
    check_output_path,
    nonneg_int,
    progress_enabled,
    source_from_args,
)
from hwsim.commands.report import stderr_progress
from hwsim.errors import EXIT_CHECK_FAILED, EXIT_OK, HwsimError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "vectors", help="write golden vectors (.hex, .npz, manifest) or check a vector set",
        description="Write golden vectors: quantize MODEL for the array, simulate input "
                    "--sample, and write per conv/gemm layer the input, weights, folded bias, "
                    "requantization parameters, expected accumulators, outputs and the cycle "
                    "each output becomes valid, as $readmemh .hex and .npz, with manifest.json "
                    "(format: specs/vectors.md). The write is atomic. With --check DIR, verify "
                    "an existing set instead (hashes, hex == npz, recomputation, regeneration "
                    "from the recorded model); exit 1 if it does not verify. Exit 2 on bad "
                    "input (missing file, bad TOML, unknown layer name).")
    add_model_argument(p, required=False)
    add_data_options(p, labels=False, samples=False)
    add_quant_options(p)
    add_array_options(p, energy=False)
    p.add_argument("--out", default="hwsim-vectors", metavar="DIR",
                   help="output directory (default ./hwsim-vectors)")
    p.add_argument("--layers", "--layer", dest="layer", action="extend", nargs="+",
                   metavar="NAME",
                   help="only these conv/gemm layers (--layers a b, or --layer a --layer b; "
                        "default all)")
    p.add_argument("--sample", type=nonneg_int, default=0, metavar="I",
                   help="index of the evaluation input to simulate (default 0; for a model "
                        "with a fixed leading dimension D: run I, inputs I*D .. I*D+D-1)")
    p.add_argument("--check", metavar="DIR", help="verify the vector set in DIR")
    p.add_argument("--no-regenerate", action="store_true",
                   help="with --check: skip regenerating from the recorded model")
    add_json_option(p)
    add_run_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hwsim.vectors import check_vectors, read_manifest
    from hwsim.vectors.generate import generate_vectors

    if args.check:
        if args.model:
            raise HwsimError("give either MODEL (write vectors) or --check DIR, not both")
        if not Path(args.check).is_dir():
            if Path(args.check).exists():
                raise HwsimError(f"--check {args.check}: is not a directory; expected a "
                                 "vector set directory")
            raise FileNotFoundError(2, "No such directory", args.check)
        problems = check_vectors(args.check, regenerate=not args.no_regenerate)
        if args.json:
            print(json.dumps({"dir": args.check, "ok": not problems, "problems": problems}))
        else:
            for p in problems:
                print(f"{args.check}: {p}")
            print(f"{args.check}: {'OK' if not problems else f'{len(problems)} problem(s)'}")
        return EXIT_OK if not problems else EXIT_CHECK_FAILED
    if not args.model:
        raise HwsimError("expected MODEL (or --check DIR); see hwsim vectors --help")
    check_output_path(args.out)
    from hwsim.progress import progress_scope

    with progress_scope(progress_enabled(args)):
        out = generate_vectors(args.out, source_from_args(args), array_from_args(args),
                               layers=args.layer, sample=args.sample,
                               progress=stderr_progress("vectors"), batch=batch_of(args))
    man = read_manifest(out)
    if args.json:
        print(json.dumps({"dir": str(out), "layers": [e["name"] for e in man["layers"]],
                          "files": man["files"]}, indent=2))
    else:
        for e in man["layers"]:
            shapes = ", ".join(f"{k} {tuple(v['shape'])}" for k, v in e["arrays"].items()
                               if k in ("input", "weight", "output"))
            print(f"{e['name']} ({e['op']}): {shapes}")
        print(f"{len(man['files'])} files written to {out}")
    return EXIT_OK
