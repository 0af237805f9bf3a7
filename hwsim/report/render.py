"""Rendering a :class:`ReportData` as Markdown, self-contained HTML, JSON and CSV.

:func:`write_report` writes ``report.md``, ``report.html`` (PNG plots embedded as base64
``data:`` URIs, no external file needed), ``report.json``, ``layers.csv`` and the PNG files,
each atomically (temporary file + ``os.replace``).
"""

from __future__ import annotations

import base64
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
        ("bit-exact (normative pairs)", s["bit_exact"] if data.exactness else "not checked"),
    ]
    for name, acc in data.accuracies.items():
        rows.append((f"accuracy {name}", f"{100 * acc:.2f}%"))
    return rows


def config_rows(data: ReportData) -> list[tuple[str, Any]]:
    """(field, value) rows of the array configuration the report ran on (specs/cycle_model.md
    §C10): size, dataflow, operand and accumulator widths and policy, requantization, engine
    profile, buffers, DRAM bandwidth and clock."""
    a = dict(data.array)
    rq = dict(a.get("requant", {}))
    rows: list[tuple[str, Any]] = [
        ("array", f"{a.get('rows', '?')} x {a.get('cols', '?')} PEs ({data.pes})"),
        ("dataflow", a.get("dataflow", "")),
        ("activation / weight bits", f"{a.get('act_bits', '?')} / {a.get('weight_bits', '?')}"),
        ("accumulator", f"{a.get('acc_bits', '?')} bits, {a.get('acc_overflow', '?')} on "
                        "overflow"),
        ("requantization", ", ".join(f"{k} {v}" for k, v in rq.items())),
        ("requant latency (cycles)", a.get("requant_latency", "")),
        ("engine profile", a.get("profile") or "(that of the requantization)"),
        ("input / weight / output SRAM (KiB)",
         " / ".join(f"{int(a.get(k, 0)) / 1024:g}" for k in (
             "input_sram_bytes", "weight_sram_bytes", "output_sram_bytes"))),
        ("DRAM bandwidth (B/cycle)", data.dram_bytes_per_cycle),
        ("clock (MHz)", data.clock_mhz),
    ]
    for k in sorted(set(a) - {"rows", "cols", "dataflow", "act_bits", "weight_bits",
                              "acc_bits", "acc_overflow", "requant", "requant_latency",
                              "profile", "input_sram_bytes", "weight_sram_bytes",
                              "output_sram_bytes", "dram_bytes_per_cycle", "clock_mhz"}):
        rows.append((k.replace("_", " "), a[k]))
    return rows


def energy_action_rows(data: ReportData) -> list[tuple[str, Any]]:
    """(action, pJ) of the energy table for this array (specs/energy.md)."""
    return [(k, v) for k, v in data.energy_actions.items()]


def _layer_table(data: ReportData) -> tuple[list[str], list[list[Any]]]:
    headers = ["layer", "op", "MACs", "cycles", "compute", "stall", "fill/drain", "util",
               "SRAM rd B", "SRAM wr B", "DRAM B", "compulsory DRAM B", "DRAM / compulsory",
               "mapping", "energy nJ", "requant", "acc overflows"]
    rows = [[layer.name, layer.op, layer.macs, layer.cycles, layer.compute_cycles,
             layer.stall_cycles, layer.fill_drain_cycles, f"{100 * layer.utilization:.1f}%",
             layer.sram_read_bytes, layer.sram_write_bytes, layer.dram_bytes,
             layer.compulsory_dram_bytes, _ratio(layer.dram_bytes, layer.compulsory_dram_bytes),
             layer.mapping, layer.energy_total_pj * 1e-3, layer.requant_mode,
             layer.overflow_events]
            for layer in data.layers]
    ls = data.layers
    dram = sum(x.dram_bytes for x in ls)
    compulsory = sum(x.compulsory_dram_bytes for x in ls)
    rows.append(["total", "", data.total_macs, data.total_cycles,
                 sum(x.compute_cycles for x in ls), sum(x.stall_cycles for x in ls),
                 sum(x.fill_drain_cycles for x in ls), f"{100 * data.utilization:.1f}%",
                 sum(x.sram_read_bytes for x in ls), sum(x.sram_write_bytes for x in ls),
                 dram, compulsory, _ratio(dram, compulsory), "", data.total_energy_pj * 1e-3,
                 "", sum(x.overflow_events for x in ls)])
    return headers, rows


def _ratio(bytes_moved: int, compulsory: int) -> str:
    """DRAM traffic over its compulsory bound (specs/cycle_model.md §C6.2); '' without one."""
    return f"{bytes_moved / compulsory:.2f}x" if compulsory else ""


def _components(data: ReportData) -> list[str]:
    comps: list[str] = []
    for layer in data.layers:
        comps.extend(c for c in layer.energy_pj if c not in comps)
    return comps


def _energy_table(data: ReportData) -> tuple[list[str], list[list[Any]]]:
    comps = _components(data)
    headers = ["layer", *[f"{c} nJ" for c in comps], "total nJ"]
    rows = [[layer.name, *[layer.energy_pj.get(c, 0.0) * 1e-3 for c in comps],
             layer.energy_total_pj * 1e-3] for layer in data.layers]
    totals = [sum(layer.energy_pj.get(c, 0.0) for layer in data.layers) for c in comps]
    rows.append(["total", *[t * 1e-3 for t in totals], data.total_energy_pj * 1e-3])
    whole = data.total_energy_pj or 1.0
    rows.append(["share", *[f"{100 * t / whole:.1f}%" for t in totals], "100.0%"])
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
    parts = [f"# {data.title}\n\n", "## Summary\n\n", summary_text(data),
             "\n## Configuration\n\n", table_text(["field", "value"], config_rows(data)),
             "\n## Layers\n\n", table_text(*_layer_table(data)), "\n## Energy breakdown\n\n",
             f"Energy table: {data.energy_table}\n\n", table_text(*_energy_table(data))]
    if data.energy_actions:
        parts += ["\n## Energy per action\n\n",
                  table_text(["action", "pJ"], energy_action_rows(data))]
    if data.exactness:
        parts += ["\n## Bit-exactness\n\n", table_text(*_exact_table(data))]
    if images:
        parts.append("\n## Plots\n\n")
        parts.extend(f"![{name}]({link})\n\n" for name, link in images.items())
    return "".join(parts)


#: The HTML page (Jinja2, autoescaped): summary and configuration side by side, the layer,
#: energy and bit-exactness tables, and the plots in a grid.
HTML_TEMPLATE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body{font-family:sans-serif;margin:1.5em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin:.4em 0}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:1em}
.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;overflow-x:auto}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#eee}
tr.total td{font-weight:bold;background:#f6f6f6}
figure{margin:0}img{width:100%;height:auto}figcaption{font-size:.85em;color:#555}
.wide{grid-column:1/-1}.wide img{max-width:1100px}
</style></head><body>
<h1>{{ title }}</h1>
{% macro table(headers, rows) -%}
<table><thead><tr>{% for h in headers %}<th>{{ h }}</th>{% endfor %}</tr></thead><tbody>
{% for r in rows %}<tr{% if r[0] in ("total", "share") %} class="total"{% endif %}>
{% for c in r %}<td>{{ fmt(c) }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
{%- endmacro %}
<div class="grid">
<div class="card"><h2>Summary</h2>{{ table(["metric", "value"], summary) }}</div>
<div class="card"><h2>Configuration</h2>{{ table(["field", "value"], config) }}</div>
</div>
<div class="card"><h2>Layers</h2>{{ table(*layers) }}</div>
<div class="grid">
<div class="card"><h2>Energy breakdown</h2><p>Energy table: {{ energy_table }}</p>
{{ table(*energy) }}</div>
{% if actions %}<div class="card"><h2>Energy per action (pJ)</h2>
{{ table(["action", "pJ"], actions) }}</div>{% endif %}
</div>
{% if exact %}<div class="card"><h2>Bit-exactness</h2>{{ table(*exact) }}</div>{% endif %}
<h2>Plots</h2>
<div class="grid">
{% for name, uri in plots %}<div class="card{% if name in wide %} wide{% endif %}">
<figure><img alt="{{ name }}" src="{{ uri }}">
<figcaption>{{ name }}</figcaption></figure></div>
{% endfor %}</div>
</body></html>
"""


#: Plots drawn across the whole grid width (two panels side by side).
WIDE_PLOTS = ("energy.png",)


def render_html(template: str, **context: Any) -> str:
    """Render a Jinja2 ``template`` (autoescaped) with ``fmt`` available."""
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(template).render(fmt=_fmt, **context)


def png_uri(png: bytes) -> str:
    """A ``data:`` URI of PNG bytes (self-contained HTML)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def to_html(data: ReportData, pngs: Mapping[str, bytes]) -> str:
    """Self-contained HTML (Jinja2 template :data:`HTML_TEMPLATE`): tables plus every PNG
    inlined as a base64 data URI."""
    return render_html(
        HTML_TEMPLATE, title=data.title, summary=summary_rows(data), config=config_rows(data),
        layers=_layer_table(data), energy=_energy_table(data), energy_table=data.energy_table,
        actions=energy_action_rows(data),
        exact=_exact_table(data) if data.exactness else None,
        plots=[(n, png_uri(b)) for n, b in pngs.items()], wide=WIDE_PLOTS)


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
