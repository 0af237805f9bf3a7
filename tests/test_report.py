"""Tests of hwsim.report on synthetic results."""

from __future__ import annotations

import base64
import csv
import io
import json
import re

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.report import (
    ExactnessRow,
    LayerStats,
    ReportData,
    layer_rows,
    summary,
    summary_text,
    to_csv,
    write_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_data(seed: int = 1) -> ReportData:
    rng = np.random.default_rng(seed)
    layers = []
    for i, op in enumerate(["conv", "conv", "gemm"]):
        comp = int(rng.integers(1000, 5000))
        macs = int(comp * 256 * rng.uniform(0.3, 0.9))
        layers.append(LayerStats(
            name=f"l{i}", op=op, macs=macs, compute_cycles=comp,
            stall_cycles=int(rng.integers(0, 500)), fill_drain_cycles=31,
            utilization=macs / ((comp + 31) * 256 + 500 * 256),
            sram_read_bytes=int(rng.integers(1e4, 1e5)),
            sram_write_bytes=int(rng.integers(1e3, 1e4)),
            dram_read_bytes=int(rng.integers(1e3, 1e5)),
            dram_write_bytes=int(rng.integers(1e2, 1e4)),
            energy_pj={"mac": float(macs) * 0.3, "sram": 1e4 * (i + 1), "dram": 2e5},
            requant_mode="dyadic",
        ))
    return ReportData(
        title="test report", model="tiny", array={"rows": 16, "cols": 16, "dataflow": "ws"},
        pes=256, clock_mhz=500.0, dram_bytes_per_cycle=16.0, layers=tuple(layers),
        exactness=(ExactnessRow("golden", "fast", "y", 0, 100, 0),
                   ExactnessRow("golden", "float32-mode", "y", 3, 100, 1),
                   ExactnessRow("float", "golden", "y", 7, 100, 2, normative=False)),
        accuracies={"float": 0.97, "int8": 0.96}, energy_table="horowitz45",
    )


def test_summary_totals_are_sums_of_layers():
    """Totals: cycles, MACs and energy of the model are the sums over its layers."""
    d = make_data()
    s = summary(d)
    assert s["cycles"] == sum(x.compute_cycles + x.stall_cycles + x.fill_drain_cycles
                              for x in d.layers)
    assert s["macs"] == sum(x.macs for x in d.layers)
    assert s["energy_uj"] == pytest.approx(sum(sum(x.energy_pj.values()) for x in d.layers) * 1e-6)
    assert s["bit_exact"] is False
    assert s["utilization"] == pytest.approx(s["macs"] / (s["cycles"] * 256))


def test_csv_and_json_agree_with_layers():
    """CSV rows and the JSON layers are the same per-layer numbers, floats round-trip."""
    d = make_data()
    rows = list(csv.DictReader(io.StringIO(to_csv(d))))
    ref = layer_rows(d)
    assert [r["layer"] for r in rows] == ["l0", "l1", "l2"]
    for r, e in zip(rows, ref, strict=False):
        assert int(r["cycles"]) == e["cycles"]
        assert float(r["energy_total_pj"]) == e["energy_total_pj"]
        assert float(r["utilization"]) == e["utilization"]


def test_write_report_files(tmp_path):
    """PNGs non-empty and distinct; HTML self-contained with inline images; JSON parses."""
    d = make_data()
    written = write_report(tmp_path, d)
    pngs = {k: p.read_bytes() for k, p in written.items() if k.endswith(".png")}
    assert sorted(pngs) == ["cycles.png", "energy.png", "roofline.png", "utilization.png"]
    for b in pngs.values():
        assert b.startswith(PNG_MAGIC) and len(b) > 2000
    assert len(set(pngs.values())) == 4
    html = written["html"].read_text()
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(uris) == 4
    assert {base64.b64decode(u) for u in uris} == set(pngs.values())
    assert "src=\"http" not in html and "<link" not in html
    md = written["md"].read_text()
    assert "![roofline.png](roofline.png)" in md and "| l2 " in md
    js = json.loads(written["json"].read_text())
    assert js["summary"]["macs"] == d.total_macs
    assert js["exactness"][1]["exact"] is False
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["cycles.png", "energy.png", "roofline.png", "utilization.png", "report.md",
         "report.html", "report.json", "layers.csv"])


def test_plots_are_deterministic(tmp_path):
    """The same data gives byte-identical PNGs (no timestamps in the files)."""
    a = write_report(tmp_path / "a", make_data(), formats=("md",))
    b = write_report(tmp_path / "b", make_data(), formats=("md",))
    assert a["roofline.png"].read_bytes() == b["roofline.png"].read_bytes()


def test_summary_text_and_validation():
    """The printed summary is a pipe table; invalid records name the field."""
    text = summary_text(make_data())
    assert text.splitlines()[0].startswith("| metric")
    assert "| bit-exact (normative pairs) | no" in text
    d = make_data()
    exact = ReportData(**{**d.__dict__, "exactness": (d.exactness[0], d.exactness[2])})
    assert exact.all_exact and "| bit-exact (normative pairs) | yes" in summary_text(exact)
    with pytest.raises(HwsimError, match="layer x macs: expected an int >= 0"):
        LayerStats("x", "conv", -1, 1, 0, 0, 0.5, 0, 0, 0, 0)
    with pytest.raises(HwsimError, match="utilization: expected"):
        LayerStats("x", "conv", 1, 1, 0, 0, 1.5, 0, 0, 0, 0)
    with pytest.raises(HwsimError, match="report formats: unknown"):
        write_report("unused", make_data(), formats=("pdf",))
