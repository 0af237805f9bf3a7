"""SCALE-Sim inputs (issue 13 deliver 4, hwsim.topology): conv and GEMM topology CSVs and
.cfg arrays; per-layer cycles against the closed forms of specs/cycle_model.md §C5."""

from __future__ import annotations

import json
from math import ceil

import pytest

from hwsim.cli import main
from hwsim.errors import ConfigError
from hwsim.sim.config import ArrayConfig
from hwsim.topology import compute_report_rows, load_scalesim_cfg, load_topology

GEMM_CSV = "Layer, M, N, K,\nqkt, 64, 48, 40,\nfc, 10, 100, 33,\nwide, 5, 7, 300,\n"
CONV_CSV = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
            "Num Filter, Strides,\nconv1, 16, 16, 3, 3, 3, 20, 1,\n"
            "conv2, 17, 13, 3, 5, 8, 9, 2,\npw, 7, 7, 1, 1, 32, 16, 1,\n")
CFG = ("[general]\nrun_name = t\n\n[architecture_presets]\nArrayHeight:    8\n"
       "ArrayWidth:     4\nIfmapSramSzkB:    64\nFilterSramSzkB:   64\nOfmapSramSzkB:    32\n"
       "IfmapOffset:    0\nFilterOffset:   10000000\nOfmapOffset:    20000000\n"
       "Dataflow : is\nBandwidth : 10\n")


def _closed_form(df: str, m: int, k: int, n: int, r: int, c: int, lat: int
                 ) -> tuple[int, int]:
    """(array_cycles, compute_cycles = F·T) of one GEMM, cycle_model §C2 and §C5."""
    folds, t = {"ws": (ceil(n / c) * ceil(k / r), m), "is": (ceil(m / c) * ceil(k / r), n),
                "os": (ceil(n / c) * ceil(m / r), k)}[df]
    return folds * (2 * r + c + t - 2) + lat, folds * t


def test_layers_lower_as_scalesim_does(tmp_path) -> None:
    (tmp_path / "g.csv").write_text(GEMM_CSV)
    (tmp_path / "c.csv").write_text(CONV_CSV)
    assert [(x.m, x.k, x.n) for x in load_topology(tmp_path / "g.csv")] == [
        (64, 40, 48), (10, 33, 100), (5, 300, 7)]
    # conv: no padding, OH = (H - Fh) // S + 1; M = OH·OW, K = Fh·Fw·C, N = filters
    assert [(x.m, x.k, x.n) for x in load_topology(tmp_path / "c.csv")] == [
        (14 * 14, 27, 20), (8 * 5, 120, 9), (49, 32, 16)]


@pytest.mark.parametrize("csv_text", [GEMM_CSV, CONV_CSV], ids=["gemm", "conv"])
@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_per_layer_cycles_match_closed_form(tmp_path, csv_text: str, dataflow: str) -> None:
    (tmp_path / "t.csv").write_text(csv_text)
    layers = load_topology(tmp_path / "t.csv")
    config = ArrayConfig(rows=8, cols=4, dataflow=dataflow)
    rows = compute_report_rows(layers, config)
    for layer, row in zip(layers, rows, strict=True):
        want, compute = _closed_form(dataflow, layer.m, layer.k, layer.n, 8, 4,
                                     config.requant_latency)
        assert row["array_cycles"] == want, row
        assert row["compute_cycles"] == compute
        assert row["total_cycles"] == want + row["stall_cycles"]
        assert row["macs"] == layer.m * layer.k * layer.n
        assert row["overall_util_pct"] == pytest.approx(
            100 * row["macs"] / (32 * row["total_cycles"]))
        assert row["mapping_efficiency_pct"] == pytest.approx(100 * row["macs"] / (32 * compute))


def test_scalesim_cfg(tmp_path) -> None:
    (tmp_path / "a.cfg").write_text(CFG)
    cfg = load_scalesim_cfg(tmp_path / "a.cfg")
    assert (cfg.rows, cfg.cols, cfg.dataflow) == (8, 4, "is")
    assert (cfg.input_sram_bytes, cfg.weight_sram_bytes, cfg.output_sram_bytes) == (
        65536, 65536, 32768)
    assert cfg.dram_bytes_per_cycle == 10.0  # 10 words of 8-bit activations
    (tmp_path / "b.cfg").write_text(CFG.replace("Dataflow : is", "Dataflow : xs"))
    with pytest.raises(ConfigError, match=r"SCALE-Sim config .*b.cfg: .*dataflow"):
        load_scalesim_cfg(tmp_path / "b.cfg")


def test_bad_topology_rows_are_named(tmp_path) -> None:
    (tmp_path / "t.csv").write_text("Layer, M, N, K,\nq, 4, x, 2,\n")
    with pytest.raises(ConfigError, match=r"t.csv line 2: column 'N': expected an integer"):
        load_topology(tmp_path / "t.csv")
    (tmp_path / "u.csv").write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ConfigError, match=r"neither SCALE-Sim's conv format"):
        load_topology(tmp_path / "u.csv")


def test_cli_run_report_sweep_topology(tmp_path, capsys) -> None:
    (tmp_path / "g.csv").write_text(GEMM_CSV)
    (tmp_path / "a.cfg").write_text(CFG)
    assert main(["run", "--topology", str(tmp_path / "g.csv"), "--scalesim-cfg",
                 str(tmp_path / "a.cfg"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["array"]["dataflow"] == "is" and len(doc["layers"]) == 3
    want, _ = _closed_form("is", 64, 40, 48, 8, 4, 2)
    assert doc["layers"][0]["array_cycles"] == want
    assert main(["report", "--topology", str(tmp_path / "g.csv"), "--out",
                 str(tmp_path / "rep")]) == 0
    capsys.readouterr()
    csv_text = (tmp_path / "rep" / "compute_report.csv").read_text().splitlines()
    assert csv_text[0].startswith("layer,kind,m,k,n,macs,total_cycles,stall_cycles")
    assert len(csv_text) == 4
    assert main(["sweep", "--topology", str(tmp_path / "g.csv"), "--grid",
                 "examples/sweeps/accumulator_width.toml", "--workers", "0", "--out",
                 str(tmp_path / "sw"), "--json"]) == 0
    assert all(r["status"] == "ok" for r in json.loads(capsys.readouterr().out)["results"])
    assert main(["run", "digits", "--topology", str(tmp_path / "g.csv")]) == 2
    assert "give either MODEL or --topology" in capsys.readouterr().err
    assert main(["report", "--topology", str(tmp_path / "g.csv"), "--weights", "int4"]) == 2
    assert "--weights: --topology workloads have no model" in capsys.readouterr().err
