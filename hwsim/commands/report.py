"""``hwsim report``: simulate a model on an array and write Markdown / HTML / JSON / CSV.

Argument parsing only; the work is :func:`hwsim.report.evaluate.evaluate` and
:func:`hwsim.report.write_report`. Options come from :mod:`hwsim.commands.options`.
"""

from __future__ import annotations

import argparse
import json

from hwsim.commands.options import (
    add_array_options,
    add_data_options,
    add_json_option,
    add_model_argument,
    add_quant_options,
    add_run_options,
    add_topology_options,
    array_from_args,
    batch_of,
    check_output_path,
    nonneg_int,
    progress_enabled,
    source_from_args,
    table_from_args,
    topology_array_from_args,
    topology_from_args,
)
from hwsim.errors import EXIT_CHECK_FAILED, EXIT_OK, HwsimError

#: What ``hwsim report --format`` accepts.
REPORT_FORMATS = ("md", "html", "json", "csv")


def report_formats(text: str) -> tuple[str, ...]:
    """``--format`` as a tuple, checked before any work (HwsimError naming the option)."""
    formats = tuple(f.strip() for f in text.split(",") if f.strip())
    bad = [f for f in formats if f not in REPORT_FORMATS]
    if not formats or bad:
        what = f"report formats: unknown {bad}" if bad else "no report format"
        raise HwsimError(f"--format {text!r}: {what}; expected a comma-separated subset of "
                         f"{','.join(REPORT_FORMATS)}")
    return formats

def add_model_options(p: argparse.ArgumentParser, model_required: bool = True,
                      topology: bool = False) -> None:
    """MODEL (or --topology), the data options and the quantization options
    (hwsim.commands.options)."""
    add_model_argument(p, required=model_required)
    if topology:
        add_topology_options(p)
    add_data_options(p)
    add_quant_options(p)


def stderr_progress(command: str):  # noqa: ANN201 - a Callable[[str], None]
    """A progress callback printing ``hwsim COMMAND: message`` on stderr (above any
    progress bar, hwsim.progress.message)."""
    from hwsim.progress import message as show_line

    def show(message: str) -> None:
        show_line(f"hwsim {command}: {message}")
    return show


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report", help="simulate a model on an array and write a report",
        description="Quantize MODEL for the array, simulate one inference for cycles, "
                    "utilisation, memory traffic and energy, cross-check every executor bit "
                    "for bit on the evaluation inputs, and write report.md, report.html "
                    "(self-contained), report.json, layers.csv and PNG plots to --out. "
                    "Prints the summary table (or the JSON report with --json). Exit 1 when "
                    "a normative executor pair mismatches, 2 on bad input (missing file, bad "
                    "TOML, invalid option).")
    add_model_options(p, model_required=False, topology=True)
    add_array_options(p)
    p.add_argument("--out", default="hwsim-report", metavar="DIR",
                   help="output directory (default ./hwsim-report)")
    p.add_argument("--format", default="md,html,json,csv", metavar="LIST",
                   help="comma-separated subset of md,html,json,csv (default all)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the executor cross-check (performance and energy only)")
    p.add_argument("--stepped-samples", type=nonneg_int, default=1, metavar="N",
                   help="inputs also run on the cycle-stepped model (default 1)")
    add_json_option(p)
    add_run_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hwsim.progress import progress_scope
    from hwsim.report import summary_text, to_json_dict, write_report
    from hwsim.report.evaluate import evaluate

    formats = report_formats(args.format)
    check_output_path(args.out)
    layers = topology_from_args(args)
    if layers is not None:
        return _report_topology(args, layers, formats)
    with progress_scope(progress_enabled(args)):
        ev = evaluate(source_from_args(args), array_from_args(args), table_from_args(args),
                      verify=not args.no_verify, stepped_samples=args.stepped_samples,
                      progress=stderr_progress("report"), batch=batch_of(args))
    written = write_report(args.out, ev.report, formats)
    if args.json:
        doc = to_json_dict(ev.report)
        doc["files"] = {k: str(v) for k, v in written.items()}
        print(json.dumps(doc, indent=2))
    else:
        print(summary_text(ev.report), end="")
        print(f"report written to {args.out}/")
    return EXIT_OK if ev.report.all_exact else EXIT_CHECK_FAILED


def _report_topology(args: argparse.Namespace, layers, formats) -> int:  # noqa: ANN001
    """``hwsim report --topology LAYERS.csv``: the report of the topology's layers plus
    compute_report.csv (SCALE-Sim COMPUTE_REPORT columns, hwsim.topology)."""
    from pathlib import Path

    from hwsim.fileio import atomic_write
    from hwsim.report import summary_text, to_json_dict, write_report
    from hwsim.topology import compute_report_csv, compute_report_rows, topology_report

    config = topology_array_from_args(args)
    title = Path(args.topology).stem
    data = topology_report(layers, config, table_from_args(args), title, seed=args.seed)
    written = write_report(args.out, data, formats)
    csv_path = Path(args.out) / "compute_report.csv"
    atomic_write(csv_path, compute_report_csv(
        compute_report_rows(layers, config, seed=args.seed)).encode())
    written["compute_report"] = csv_path
    if args.json:
        doc = to_json_dict(data)
        doc["files"] = {k: str(v) for k, v in written.items()}
        print(json.dumps(doc, indent=2))
    else:
        print(summary_text(data), end="")
        print(f"report written to {args.out}/")
    return EXIT_OK
