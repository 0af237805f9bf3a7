"""Report plots as PNG bytes (matplotlib). The only plotting code in hwsim.

Every function takes result data and returns the bytes of a PNG file. Figures are built with
the object-oriented API (:class:`matplotlib.figure.Figure`, rendered by the Agg canvas), so
nothing is shown, pyplot is never imported and the caller's matplotlib backend and state are
left untouched.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hwsim.report.data import ReportData

_DPI = 100


def _figure(width: float, height: float) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight",
                metadata={"Software": None})
    return buf.getvalue()


def _names(data: ReportData) -> list[str]:
    return [layer.name for layer in data.layers]


def cycles_png(data: ReportData) -> bytes:
    """Per-layer stacked bars: compute, stall and fill/drain cycles."""
    names = _names(data)
    x = range(len(names))
    comp = [layer.compute_cycles for layer in data.layers]
    stall = [layer.stall_cycles for layer in data.layers]
    fill = [layer.fill_drain_cycles for layer in data.layers]
    fig, ax = _figure(max(5.0, 0.6 * len(names) + 2), 3.6)
    ax.bar(x, comp, label="compute", color="#4c72b0")
    ax.bar(x, stall, bottom=comp, label="stall", color="#dd8452")
    ax.bar(x, fill, bottom=[c + s for c, s in zip(comp, stall, strict=False)], label="fill/drain",
           color="#55a868")
    ax.set_xticks(list(x), names, rotation=45, ha="right")
    ax.set_ylabel("cycles")
    ax.set_title(f"{data.model}: cycles per layer")
    ax.legend()
    return _png(fig)


def utilization_png(data: ReportData) -> bytes:
    """Per-layer PE utilisation in percent."""
    names = _names(data)
    fig, ax = _figure(max(5.0, 0.6 * len(names) + 2), 3.2)
    ax.bar(range(len(names)), [100.0 * layer.utilization for layer in data.layers],
           color="#8172b3")
    ax.axhline(100.0 * data.utilization, color="black", linestyle="--", linewidth=1,
               label=f"model {100.0 * data.utilization:.1f}%")
    ax.set_xticks(list(range(len(names))), names, rotation=45, ha="right")
    ax.set_ylim(0, 100)
    ax.set_ylabel("utilisation (%)")
    ax.set_title(f"{data.model}: PE utilisation ({data.pes} PEs)")
    ax.legend()
    return _png(fig)


def _components(data: ReportData) -> list[str]:
    comps: list[str] = []
    for layer in data.layers:
        comps.extend(c for c in layer.energy_pj if c not in comps)
    return comps


def energy_png(data: ReportData) -> bytes:
    """Energy by component: per-layer shares (100 % stacked, so a small component stays
    visible next to DRAM) and, beside them, each component's absolute total on a log axis."""
    names = [*_names(data), "total"]
    comps = _components(data)
    fig = Figure(figsize=(max(8.0, 0.5 * len(names) + 5), 3.8))
    FigureCanvasAgg(fig)
    ax, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2.2, 1]})
    totals = {c: sum(layer.energy_pj.get(c, 0.0) for layer in data.layers) for c in comps}
    per = [layer.energy_pj for layer in data.layers] + [totals]
    bottom = [0.0] * len(names)
    colors = {c: f"C{i}" for i, c in enumerate(comps)}
    for c in comps:
        vals = []
        for e in per:
            whole = sum(e.values())
            vals.append(100.0 * e.get(c, 0.0) / whole if whole else 0.0)
        ax.bar(range(len(names)), vals, bottom=bottom, label=c, color=colors[c])
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_xticks(list(range(len(names))), names, rotation=45, ha="right")
    ax.set_ylim(0, 100)
    ax.set_ylabel("share of layer energy (%)")
    ax.set_title("energy shares by component")
    if comps:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    vals = [totals[c] * 1e-3 for c in comps]
    ax2.barh(range(len(comps)), [max(v, 1e-6) for v in vals],
             color=[colors[c] for c in comps])
    ax2.set_yticks(list(range(len(comps))), comps, fontsize=8)
    ax2.set_xscale("log")
    ax2.set_xlabel("energy (nJ, log scale)")
    ax2.set_title(f"total {data.total_energy_pj * 1e-3:,.1f} nJ")
    for i, v in enumerate(vals):
        ax2.annotate(f"{v:,.2f}", (max(v, 1e-6), i), fontsize=7, xytext=(2, -3),
                     textcoords="offset points")
    fig.suptitle(f"{data.model}: energy ({data.energy_table})", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def roofline_png(data: ReportData) -> bytes:
    """The array's roofline (MACs/cycle vs MACs per DRAM byte), its two roofs labelled
    (compute: the PE count; memory: the DRAM bandwidth, meeting at the ridge point), and
    every layer: MAC layers at their intensity and performance, the vector-unit layers (no
    MACs) as named crosses along the axis floor, layers without DRAM traffic at the right
    edge."""
    peak = float(data.pes)
    bw = float(data.dram_bytes_per_cycle)
    ridge = peak / bw
    pts = []
    for layer in data.layers:
        ai = layer.macs / layer.dram_bytes if layer.dram_bytes else float("inf")
        perf = layer.macs / layer.cycles if layer.cycles else 0.0
        pts.append((layer.name, ai, perf, layer.macs > 0))
    finite = [p[1] for p in pts if p[1] not in (float("inf"), 0.0)]
    lo = min(finite + [ridge]) / 4
    hi = max(finite + [ridge]) * 8
    perfs = [p[2] for p in pts if p[2] > 0]
    floor = min(perfs + [peak]) / 8
    fig, ax = _figure(7.5, 5.0)
    xs = [lo * (hi / lo) ** (i / 199) for i in range(200)]
    ax.plot(xs, [min(peak, x * bw) for x in xs], color="black", linewidth=1.5)
    ax.annotate(f"compute roof: {peak:g} MACs/cycle ({data.pes} PEs)", (hi, peak),
                xytext=(-4, 4), textcoords="offset points", ha="right", fontsize=8)
    xm = max(lo * 1.5, ridge / 30)
    ax.annotate(f"memory roof: {bw:g} B/cycle", (xm, xm * bw), xytext=(4, 6),
                textcoords="offset points", fontsize=8, rotation=30)
    ax.axvline(ridge, color="#999999", linestyle=":", linewidth=1)
    ax.annotate(f"ridge {ridge:.3g} MACs/B", (ridge, floor), xytext=(3, 3),
                textcoords="offset points", fontsize=7, color="#666666")
    vector = [p[0] for p in pts if not p[3]]
    for i, (name, ai, perf, mac) in enumerate(pts):
        if mac:
            x, y = (hi / 1.5 if ai == float("inf") else ai), perf
        else:  # no MACs: spread along the floor, each named
            j = vector.index(name)
            x, y = lo * (hi / lo) ** ((j + 1) / (len(vector) + 1)), floor
            ax.annotate(name, (x, y), xytext=(0, 6), textcoords="offset points",
                        fontsize=7, ha="center", color="#555555")
        ax.scatter([x], [y], marker="o" if mac else "x", color=f"C{i % 10}", zorder=3,
                   label=f"{name}{'' if mac else ' (vector unit, no MACs)'}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(floor / 2, peak * 3)
    ax.set_xlabel("arithmetic intensity (MACs / DRAM byte)")
    ax.set_ylabel("performance (MACs / cycle)")
    ax.set_title(f"{data.model}: roofline, {data.pes} PEs, {bw:g} B/cycle DRAM")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _png(fig)


def pareto_png(cycles: Sequence[float], energy_pj: Sequence[float], labels: Sequence[str],
               front: Sequence[int], title: str = "design space", *,
               dataflows: Sequence[str] | None = None, arrays: Sequence[str] | None = None,
               excluded: Sequence[tuple[float, float, str]] = ()) -> bytes:
    """Energy vs cycles of sweep points: colour = dataflow, marker = array size; the Pareto
    front (indices ``front``) joined and numbered, its labels listed beside the axes (so
    they never overlap); ``excluded`` points (cycles, energy, why: accumulator overflow, or
    accuracy lost) drawn as grey crosses, apart from the candidates."""
    n = len(cycles)
    dataflows = list(dataflows) if dataflows is not None else [""] * n
    arrays = list(arrays) if arrays is not None else [""] * n
    fig, ax = _figure(8.5, 5.0)
    markers = "osD^vP*Xh<>p"
    dfs = list(dict.fromkeys(dataflows))
    sizes = list(dict.fromkeys(arrays))
    for i in range(n):
        ax.scatter([cycles[i]], [energy_pj[i] * 1e-6], color=f"C{dfs.index(dataflows[i])}",
                   marker=markers[sizes.index(arrays[i]) % len(markers)], s=36, alpha=0.85,
                   zorder=2)
    fr = sorted(front, key=lambda i: cycles[i])
    ax.plot([cycles[i] for i in fr], [energy_pj[i] * 1e-6 for i in fr], "-", color="#c44e52",
            linewidth=1.2, zorder=1)
    lines = []
    for k, i in enumerate(fr, start=1):
        ax.annotate(str(k), (cycles[i], energy_pj[i] * 1e-6), fontsize=8, xytext=(4, 4),
                    textcoords="offset points", color="#c44e52", weight="bold")
        lines.append(f"{k}: {labels[i]}")
    if excluded:
        ax.scatter([c for c, _, _ in excluded], [e * 1e-6 for _, e, _ in excluded],
                   marker="x", color="#aaaaaa", s=30, zorder=1)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=f"C{k}", marker="o", linestyle="", label=f"dataflow {d}")
               for k, d in enumerate(dfs) if d]
    handles += [Line2D([], [], color="#555555", marker=markers[k % len(markers)],
                       linestyle="", label=f"array {a}") for k, a in enumerate(sizes) if a]
    handles.append(Line2D([], [], color="#c44e52", label="Pareto front"))
    if excluded:
        reasons = ", ".join(sorted({w for _, _, w in excluded}))
        handles.append(Line2D([], [], color="#aaaaaa", marker="x", linestyle="",
                              label="excluded:\n" + reasons.replace(", ", ",\n")))
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if lines:
        ax.text(1.02, 0.0, "Pareto points\n" + "\n".join(lines), transform=ax.transAxes,
                fontsize=7, va="bottom", ha="left", family="monospace")
    ax.set_xscale("log")
    ax.set_xlabel("cycles per inference (log)")
    ax.set_ylabel("energy per inference (µJ)")
    ax.set_title(title)
    return _png(fig)


def accuracy_png(energy_pj: Sequence[float], accuracy: Sequence[float],
                 acc_bits: Sequence[int], labels: Sequence[str],
                 title: str = "accuracy vs energy") -> bytes:
    """Accuracy against cost of sweep points over datapath options: top-1 accuracy of the
    cycle model vs energy per inference, coloured by accumulator width."""
    fig, ax = _figure(7.5, 4.6)
    widths = sorted(set(acc_bits))
    for k, b in enumerate(widths):
        idx = [i for i, a in enumerate(acc_bits) if a == b]
        ax.scatter([energy_pj[i] * 1e-6 for i in idx], [100 * accuracy[i] for i in idx],
                   color=f"C{k}", label=f"{b}-bit accumulator", s=36, alpha=0.85)
    best = max(accuracy) if accuracy else 0.0
    ax.axhline(100 * best, color="#999999", linestyle=":", linewidth=1,
               label=f"best {100 * best:.2f}%")
    ax.set_xlabel("energy per inference (µJ)")
    ax.set_ylabel("top-1 accuracy, cycle model (%)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(fig)


def report_pngs(data: ReportData) -> dict[str, bytes]:
    """All report plots: file name → PNG bytes."""
    return {
        "cycles.png": cycles_png(data),
        "utilization.png": utilization_png(data),
        "energy.png": energy_png(data),
        "roofline.png": roofline_png(data),
    }
