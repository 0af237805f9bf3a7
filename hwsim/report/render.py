"""Rendering a :class:`ReportData` as Markdown, self-contained HTML, JSON and CSV.

:func:`write_report` writes ``report.md``, ``report.html`` (PNG plots embedded as base64
``data:`` URIs, no external file needed), ``report.json``, ``layers.csv`` and the PNG files,
each atomically (temporary file + ``os.replace``).
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hwsim.errors import HwsimError
from hwsim.fileio import atomic_write
from hwsim.report.data import ReportData, summary, to_csv, to_json_dict
from hwsim.report.plots import report_pngs


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-3):
            return f"{v:.3e}"
        return f"{v:,.3f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def table_text(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown pipe table (also readable as plain text)."""
    cells = [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    def line(vals: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(vals, widths, strict=False)) + " |"
    out = [line(list(headers)), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out.extend(line(r) for r in cells)
    return "\n".join(out) + "\n"


def summary_rows(data: ReportData) -> list[tuple[str, Any]]:
    """(label, value) rows of the headline summary."""
    s = summary(data)
    rows: list[tuple[str, Any]] = [
        ("model", s["model"]),
        ("array", f"{data.array.get('rows', '?')}x{data.array.get('cols', '?')} "
                  f"{data.array.get('dataflow', '')}".strip()),
        ("requantization", str(dict(data.array.get("requant", {})).get("mode", "?"))),
        ("layers", s["layers"]),
        ("MACs per inference", s["macs"]),
        ("cycles per inference", s["cycles"]),
        (f"latency at {data.clock_mhz:g} MHz (us)", s["latency_us"]),
        ("utilisation", f"{100 * s['utilization']:.1f}%"),
        ("energy per inference (uJ)", s["energy_uj"]),
        ("energy per MAC (pJ)", s["energy_pj_per_mac"]),
        ("bit-exact (normative pairs)", s["bit_exact"]),
    ]
    for name, acc in data.accuracies.items():
        rows.append((f"accuracy {name}", f"{100 * acc:.2f}%"))
    return rows


def _layer_table(data: ReportData) -> tuple[list[str], list[list[Any]]]:
    headers = ["layer", "op", "MACs", "cycles", "compute", "stall", "fill/drain", "util",
               "SRAM rd B", "SRAM wr B", "DRAM B", "energy nJ", "requant", "acc overflows"]
    rows = [[layer.name, layer.op, layer.macs, layer.cycles, layer.compute_cycles,
             layer.stall_cycles, layer.fill_drain_cycles, f"{100 * layer.utilization:.1f}%",
             layer.sram_read_bytes, layer.sram_write_bytes, layer.dram_bytes,
             layer.energy_total_pj * 1e-3, layer.requant_mode, layer.overflow_events]
            for layer in data.layers]
    return headers, rows


def _energy_table(data: ReportData) -> tuple[list[str], list[list[Any]]]:
    comps: list[str] = []
    for layer in data.layers:
        comps.extend(c for c in layer.energy_pj if c not in comps)
    headers = ["layer", *[f"{c} nJ" for c in comps], "total nJ"]
    rows = [[layer.name, *[layer.energy_pj.get(c, 0.0) * 1e-3 for c in comps],
             layer.energy_total_pj * 1e-3] for layer in data.layers]
    return headers, rows


def _exact_table(data: ReportData) -> tuple[list[str], list[list[Any]]]:
    headers = ["reference", "candidate", "tensor", "mismatches", "elements", "max abs diff (LSB)",
               "bit-exact"]
    rows = [[r.reference, r.candidate, r.tensor, r.mismatches, r.total, r.max_abs_diff,
             r.exact if r.normative else "informative"] for r in data.exactness]
    return headers, rows


def summary_text(data: ReportData) -> str:
    """The summary table printed by ``hwsim demo`` / ``hwsim report``."""
    return table_text(["metric", "value"], summary_rows(data))


def exactness_text(data: ReportData) -> str:
    """The bit-exactness table (empty string when nothing was compared)."""
    return table_text(*_exact_table(data)) if data.exactness else ""


def to_markdown(data: ReportData, images: Mapping[str, str] | None = None) -> str:
    """Markdown report; ``images`` maps PNG file names to the link written for them."""
    parts = [f"# {data.title}\n\n", "## Summary\n\n", summary_text(data), "\n## Layers\n\n",
             table_text(*_layer_table(data)), "\n## Energy breakdown\n\n",
             f"Energy table: {data.energy_table}\n\n", table_text(*_energy_table(data))]
    if data.exactness:
        parts += ["\n## Bit-exactness\n\n", table_text(*_exact_table(data))]
    if images:
        parts.append("\n## Plots\n\n")
        parts.extend(f"![{name}]({link})\n\n" for name, link in images.items())
    return "".join(parts)


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_html(data: ReportData, pngs: Mapping[str, bytes]) -> str:
    """Self-contained HTML: tables plus every PNG inlined as a base64 data URI."""
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;"
             "margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
             "th{background:#eee}img{max-width:100%;margin:1em 0}")
    imgs = "".join(
        f'<figure><img alt="{html.escape(n)}" src="data:image/png;base64,'
        f'{base64.b64encode(b).decode("ascii")}"/><figcaption>{html.escape(n)}</figcaption>'
        "</figure>" for n, b in pngs.items()
    )
    sections = [
        f"<h1>{html.escape(data.title)}</h1>",
        "<h2>Summary</h2>", _html_table(["metric", "value"], summary_rows(data)),
        "<h2>Layers</h2>", _html_table(*_layer_table(data)),
        "<h2>Energy breakdown</h2>", f"<p>Energy table: {html.escape(data.energy_table)}</p>",
        _html_table(*_energy_table(data)),
    ]
    if data.exactness:
        sections += ["<h2>Bit-exactness</h2>", _html_table(*_exact_table(data))]
    sections += ["<h2>Plots</h2>", imgs]
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>"
            f"{html.escape(data.title)}</title><style>{style}</style></head><body>"
            + "".join(sections) + "</body></html>\n")


FORMATS = ("md", "html", "json", "csv")


def write_report(out_dir: str | Path, data: ReportData,
                 formats: Sequence[str] = FORMATS) -> dict[str, Path]:
    """Write the report files into ``out_dir``; returns {kind: path} of what was written."""
    out = Path(out_dir)
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise HwsimError(f"report formats: unknown {bad}; expected some of {list(FORMATS)}")
    written: dict[str, Path] = {}
    pngs = report_pngs(data) if ("md" in formats or "html" in formats) else {}
    for name, png in pngs.items():
        atomic_write(out / name, png)
        written[name] = out / name
    if "md" in formats:
        md = to_markdown(data, {n: n for n in pngs})
        atomic_write(out / "report.md", md.encode("utf-8"))
        written["md"] = out / "report.md"
    if "html" in formats:
        atomic_write(out / "report.html", to_html(data, pngs).encode("utf-8"))
        written["html"] = out / "report.html"
    if "json" in formats:
        text = json.dumps(to_json_dict(data), indent=2) + "\n"
        atomic_write(out / "report.json", text.encode("utf-8"))
        written["json"] = out / "report.json"
    if "csv" in formats:
        atomic_write(out / "layers.csv", to_csv(data).encode("utf-8"))
        written["csv"] = out / "layers.csv"
    return written
