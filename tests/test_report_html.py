"""Reports an architect reads (issue 13 deliver 5): the configuration and the energy table in
every report, totals rows, every plot embedded in the HTML (Jinja2), sweep HTML with the
Pareto plot and excluded designs."""

from __future__ import annotations

import base64
import re

from hwsim.report import to_html, to_markdown
from hwsim.report.data import ExactnessRow, LayerStats, ReportData
from hwsim.report.plots import report_pngs
from hwsim.sim.config import ArrayConfig


def _data() -> ReportData:
    cfg = ArrayConfig(rows=8, cols=4, dataflow="os", acc_bits=20, acc_overflow="saturate")
    layers = (
        LayerStats(name="conv<1>", op="conv", macs=1000, compute_cycles=50, stall_cycles=5,
                   fill_drain_cycles=10, utilization=0.5, sram_read_bytes=100,
                   sram_write_bytes=50, dram_read_bytes=300, dram_write_bytes=30,
                   energy_pj={"mac": 10.0, "dram": 900.0}, requant_mode="dyadic",
                   overflow_events=0),
        LayerStats(name="pool", op="maxpool", macs=0, compute_cycles=0, stall_cycles=0,
                   fill_drain_cycles=4, utilization=0.0, sram_read_bytes=20,
                   sram_write_bytes=5, dram_read_bytes=0, dram_write_bytes=0,
                   energy_pj={"sram": 3.0}, requant_mode="", overflow_events=0),
    )
    return ReportData(title="hwsim report: tiny", model="tiny", array=cfg.to_dict(),
                      pes=cfg.pes, clock_mhz=cfg.clock_mhz,
                      dram_bytes_per_cycle=cfg.dram_bytes_per_cycle, layers=layers,
                      exactness=(ExactnessRow("golden", "cycle model (fast)", "all", 0, 9, 0),),
                      energy_table="horowitz45", energy_actions={"mac": 0.23, "dram_read_bytes":
                                                                 20.0})


def test_html_has_configuration_totals_energy_actions_and_every_plot() -> None:
    data = _data()
    pngs = report_pngs(data)
    page = to_html(data, pngs)
    for field in ("Configuration", "8 x 4 PEs (32)", "20 bits, saturate on overflow",
                  "mode dyadic", "input / weight / output SRAM (KiB)", "clock (MHz)",
                  "Energy per action (pJ)", "dram_read_bytes"):
        assert field in page, field
    assert "conv&lt;1&gt;" in page and "conv<1>" not in page  # autoescaped
    assert page.count('<tr class="total">') == 3  # layers total, energy total and share
    assert 'class="grid"' in page
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(embedded) == len(pngs) == 4
    assert sorted(base64.b64decode(e) for e in embedded) == sorted(pngs.values())
    md = to_markdown(data)
    assert "## Configuration" in md and "| total" in md and "## Energy per action" in md


def test_sweep_html_marks_front_and_excluded(tmp_path) -> None:
    from hwsim.sweep import write_sweep

    def point(i: int, df: str, cyc: int, e: float, ovf: int = 0, status: str = "ok") -> dict:
        return {"index": i, "label": f"p{i}-{df}", "rows": 8, "cols": 8, "dataflow": df,
                "cycles": cyc, "energy_pj": e, "utilization": 0.5, "overflow_events": ovf,
                "status": status}

    results = [point(0, "ws", 100, 5e6), point(1, "os", 200, 3e6), point(2, "ws", 300, 6e6),
               point(3, "os", 50, 1e6, ovf=4)]
    written = write_sweep(tmp_path, results, title="tiny: energy vs cycles")
    page = written["html"].read_text()
    assert "<title>tiny: energy vs cycles</title>" in page
    assert page.count('<tr class="front">') == 2
    assert page.count('<tr class="excluded">') == 1  # the overflowing design, not on the front
    assert 'src="data:image/png;base64,' in page
    assert written["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_accuracy_loss_excludes_from_front_and_plots(tmp_path) -> None:
    """Sweeps over datapath options: a point more than ACCURACY_TOLERANCE below the best
    accuracy is excluded like an overflowing one; accuracy.png is written and embedded."""
    from hwsim.sweep import ACCURACY_TOLERANCE, pareto_front, write_sweep

    def point(i: int, bits: int, e: float, acc: float) -> dict:
        return {"index": i, "label": f"acc{bits}", "rows": 8, "cols": 8, "dataflow": "ws",
                "acc_bits": bits, "cycles": 100, "energy_pj": e, "utilization": 0.5,
                "overflow_events": 0, "status": "ok", "accuracy": acc}

    results = [point(0, 16, 1e6, 0.5), point(1, 18, 2e6, 0.96 - ACCURACY_TOLERANCE / 2),
               point(2, 32, 3e6, 0.96)]
    assert pareto_front(results) == [1]
    written = write_sweep(tmp_path, results, title="m: energy vs cycles")
    assert written["accuracy_png"].read_bytes()[:4] == b"\x89PNG"
    page = written["html"].read_text()
    assert 'alt="accuracy.png"' in page and page.count('<tr class="excluded">') == 1


def test_sweep_cli_accuracy(tmp_path, capsys) -> None:
    import json

    from hwsim.cli import main

    assert main(["sweep", "digits", "--grid", "examples/sweeps/accumulator_width.toml",
                 "--accuracy", "--samples", "40", "--workers", "0", "--out",
                 str(tmp_path / "sw"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    acc = {r["acc_bits"]: r["accuracy"] for r in doc["results"]}
    assert acc[16] < acc[32] and acc[24] == acc[32]  # 16 bits overflows and loses accuracy
    assert (tmp_path / "sw" / "accuracy.png").is_file()


def test_layer_table_shows_traffic_against_the_compulsory_bound() -> None:
    """Issue 15 deliver 6: each layer's DRAM bytes next to its compulsory bound
    (specs/cycle_model.md §C6.2), their ratio and the mapping, in HTML and Markdown."""
    base = _data()
    conv = base.layers[0]
    layers = (LayerStats(**{**{f: getattr(conv, f) for f in conv.__dataclass_fields__},
                            "compulsory_dram_bytes": 220, "mapping": "ws:mnk"}),
              base.layers[1])
    data = ReportData(**{**{f: getattr(base, f) for f in base.__dataclass_fields__},
                         "layers": layers})
    md = to_markdown(data, {})
    assert "DRAM / compulsory" in md
    assert "1.50x" in md and "ws:mnk" in md  # (300 + 30) / 220
    page = to_html(data, report_pngs(data))
    assert "DRAM / compulsory" in page and "1.50x" in page and "ws:mnk" in page
