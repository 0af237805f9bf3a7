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


def energy_png(data: ReportData) -> bytes:
    """Per-layer stacked energy by component (nJ)."""
    names = _names(data)
    comps: list[str] = []
    for layer in data.layers:
        for c in layer.energy_pj:
            if c not in comps:
                comps.append(c)
    fig, ax = _figure(max(5.0, 0.6 * len(names) + 2), 3.6)
    bottom = [0.0] * len(names)
    for c in comps:
        vals = [layer.energy_pj.get(c, 0.0) * 1e-3 for layer in data.layers]
        ax.bar(range(len(names)), vals, bottom=bottom, label=c)
        bottom = [b + v for b, v in zip(bottom, vals, strict=False)]
    ax.set_xticks(list(range(len(names))), names, rotation=45, ha="right")
    ax.set_ylabel("energy (nJ)")
    ax.set_title(f"{data.model}: energy per layer ({data.energy_table})")
    if comps:
        ax.legend()
    return _png(fig)


def roofline_png(data: ReportData) -> bytes:
    """The array's roofline (MACs/cycle vs MACs per DRAM byte) with each MAC layer on it
    (layers without DRAM traffic are drawn at the right edge)."""
    peak = float(data.pes)
    bw = float(data.dram_bytes_per_cycle)
    pts = []
    for layer in data.layers:
        if layer.macs == 0:
            continue
        ai = layer.macs / layer.dram_bytes if layer.dram_bytes else float("inf")
        perf = layer.macs / layer.cycles if layer.cycles else 0.0
        pts.append((layer.name, ai, perf))
    finite = [p[1] for p in pts if p[1] != float("inf") and p[1] > 0]
    lo = min(finite + [peak / bw]) / 4
    hi = max(finite + [peak / bw]) * 4
    fig, ax = _figure(5.5, 4.0)
    xs = [lo * (hi / lo) ** (i / 99) for i in range(100)]
    ax.plot(xs, [min(peak, x * bw) for x in xs], color="black", label="roof")
    for name, ai, perf in pts:
        x = hi if ai == float("inf") else ai
        ax.scatter([x], [max(perf, 1e-3)], zorder=3)
        ax.annotate(name, (x, max(perf, 1e-3)), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (MACs / DRAM byte)")
    ax.set_ylabel("performance (MACs / cycle)")
    ax.set_title(f"roofline: {data.pes} PEs, {bw:g} B/cycle DRAM")
    ax.legend()
    return _png(fig)


def pareto_png(cycles: Sequence[float], energy_pj: Sequence[float], labels: Sequence[str],
               front: Sequence[int], title: str = "design space") -> bytes:
    """Energy vs cycles of sweep points, the Pareto front (indices ``front``) highlighted."""
    fig, ax = _figure(6.0, 4.2)
    ax.scatter(cycles, [e * 1e-6 for e in energy_pj], color="#999999", label="design points")
    fr = sorted(front, key=lambda i: cycles[i])
    ax.plot([cycles[i] for i in fr], [energy_pj[i] * 1e-6 for i in fr], "o-", color="#c44e52",
            label="Pareto front")
    for i in fr:
        ax.annotate(labels[i], (cycles[i], energy_pj[i] * 1e-6), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("cycles")
    ax.set_ylabel("energy (µJ)")
    ax.set_title(title)
    ax.legend()
    return _png(fig)


def report_pngs(data: ReportData) -> dict[str, bytes]:
    """All report plots: file name → PNG bytes."""
    return {
        "cycles.png": cycles_png(data),
        "utilization.png": utilization_png(data),
        "energy.png": energy_png(data),
        "roofline.png": roofline_png(data),
    }
