"""Mappings, their traffic and stalls, and the mapper (specs/cycle_model.md §C6.1–§C6.4)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hwsim.arith import RequantConfig, make_requant_params
from hwsim.errors import ConfigError, HwsimError
from hwsim.sim.config import ArrayConfig, array_config_from_dict
from hwsim.sim.dataflows import GemmShape, get_dataflow
from hwsim.sim.lowering import GemmOperands
from hwsim.sim.mapping import (
    OPERANDS,
    ORDERS,
    Mapping,
    check_mapping,
    choose_mapping,
    compulsory_bytes,
    fixed_equivalent,
    mapping_memory,
    mapping_traffic,
    objective_value,
)
from hwsim.sim.memory import fixed_gemm_memory, gemm_memory
from hwsim.sim.simulate import simulate_gemm_layer

WS = get_dataflow("ws")
SPATIAL = {"ws": {"k": "rows", "n": "cols"}, "is": {"k": "rows", "m": "cols"},
           "os": {"m": "rows", "n": "cols"}}


def _cfg(**kw) -> ArrayConfig:
    base = dict(rows=2, cols=2, dataflow="ws", dram_bytes_per_cycle=4.0)
    base.update(kw)
    return ArrayConfig(**base)


def test_named_mapping_traffic_and_stalls_hand_computed() -> None:
    """§C6.2/§C6.3 on ws 2x2, M=K=N=4, mapping mkn:2x2x2 (A captured: n innermost; W and Y
    not). Per tile (i_m, i_k, i_n) in order: reads 16, 12, 24, 20 (twice), writes 16, 16, 4, 4
    (twice); Ā = 4 folds × 8 = 32 shared as 4 cycles per tile; x = 4, 7, 10, 6, 5, 7, 10, 6."""
    cfg = _cfg()
    shape = GemmShape(4, 4, 4)
    mp = Mapping("mkn", 2, 2, 2)
    mem = mapping_memory(mp, WS, shape, cfg, unique=16, out_bits=8)
    assert (mem.dram_read_bytes, mem.dram_write_bytes) == (144, 80)
    assert mapping_traffic(mp, WS, shape, cfg, 16, 8) == (144, 80)
    assert mem.fill_stall_cycles == 4
    # steady 3+6+2+1+3+6+2, epilogue max(0, 1 - 2)
    assert mem.stall_cycles == 4 + 23
    assert mem.compulsory_bytes == 16 + 16 + 16 + 16
    assert mem.mapping == "mkn:2x2x2"
    # DMA fills: A 16 elements once, W (16 + 4 bias) per m tile.
    assert (mem.sram.input_writes, mem.sram.weight_writes) == (16, 40)
    # The burst/latency term: λ = 3 on every transfer (§C6.3).
    lat = mapping_memory(mp, WS, shape, _cfg(dram_latency_cycles=3), 16, 8)
    assert lat.fill_stall_cycles == 7
    assert lat.stall_cycles == 7 + (6 + 9 + 5 + 4 + 6 + 9 + 5) + (1 + 3 - 2)


def test_keep_reaches_compulsory_and_capacity_is_checked() -> None:
    """keep W and Y: W's footprint is all of W + bias (32 B), Y's the 2x4 int32 panel (32 B);
    traffic = D_min. With a 32-byte output buffer (16-byte half) keeping Y is illegal."""
    shape = GemmShape(4, 4, 4)
    mp = Mapping("mkn", 2, 2, 2, frozenset({"W", "Y"}))
    mem = mapping_memory(mp, WS, shape, _cfg(), 16, 8)
    assert (mem.dram_read_bytes, mem.dram_write_bytes) == (16 + 32, 16)
    assert mem.dram_read_bytes + mem.dram_write_bytes == mem.compulsory_bytes
    with pytest.raises(HwsimError, match=r"Y needs 32 bytes .*output buffer's working half "
                                         r"is 16 bytes"):
        mapping_memory(mp, WS, shape, _cfg(output_sram_bytes=32), 16, 8)
    with pytest.raises(HwsimError, match=r"tk = 3 must be a multiple of the array rows"):
        mapping_memory(Mapping("mkn", 2, 3, 2), WS, shape, _cfg(), 16, 8)


def _all_tiles(flow: str, dim: str, ext: int, cfg: ArrayConfig) -> list[int]:
    on = SPATIAL[flow].get(dim)
    step = (cfg.rows if on == "rows" else cfg.cols) if on else 1
    return [t for t in range(1, ext + 1) if t == ext or t % step == 0]


def _mapper_tiles(flow: str, dim: str, ext: int, cfg: ArrayConfig) -> list[int]:
    """§C6.4's tile set: {E·2^i < D} ∪ {D} (E = 1 for the streamed dimension)."""
    on = SPATIAL[flow].get(dim)
    e = (cfg.rows if on == "rows" else cfg.cols) if on else 1
    out = {ext}
    while e < ext:
        out.add(e)
        e *= 2
    return sorted(out)


def _space(flow: str, shape: GemmShape, cfg: ArrayConfig, unique: int, tiles) -> list[Mapping]:
    """Every legal mapping over ``tiles`` (all orders, all keep subsets)."""
    out = []
    dims = {"m": shape.m, "k": shape.k, "n": shape.n}
    for tm, tk, tn in itertools.product(*(tiles(flow, d, dims[d], cfg) for d in "mkn")):
        for order in ORDERS:
            for r in range(4):
                for keep in itertools.combinations(OPERANDS, r):
                    mp = Mapping(order, tm, tk, tn, frozenset(keep))
                    try:
                        check_mapping(mp, get_dataflow(flow), shape, cfg, unique, 8)
                    except HwsimError:
                        continue
                    out.append(mp)
    return out


CASES = [
    ("ws", GemmShape(5, 6, 4), dict(input_sram_bytes=16, weight_sram_bytes=24,
                                    output_sram_bytes=64)),
    ("is", GemmShape(6, 4, 5), dict(input_sram_bytes=16, weight_sram_bytes=24,
                                    output_sram_bytes=48)),
    ("os", GemmShape(4, 5, 6), dict(input_sram_bytes=32, weight_sram_bytes=40,
                                    output_sram_bytes=64)),
    ("ws", GemmShape(3, 4, 4), {}),  # everything fits on chip
]


@pytest.mark.parametrize(("flow", "shape", "bufs"), CASES)
def test_no_mapping_below_compulsory_and_mapper_optimal(flow, shape, bufs) -> None:
    """§C6.2: every legal mapping (all tile sizes, orders, keep sets) moves ≥ D_min bytes;
    §C6.4: on its search space with every keep subset enumerated, the mapper's choice has
    the least objective for dram, energy and cycles; when everything fits it reaches D_min."""
    cfg = _cfg(dataflow=flow, **bufs)
    df = get_dataflow(flow)
    unique = shape.m * shape.k
    d_min = compulsory_bytes(shape, cfg, unique, 8)
    full = _space(flow, shape, cfg, unique, _all_tiles)
    assert len(full) > 50
    traffic = [sum(mapping_traffic(mp, df, shape, cfg, unique, 8)) for mp in full]
    assert min(traffic) >= d_min
    for mp in full[::7]:  # the per-tile schedule sums to the closed form
        mem = mapping_memory(mp, df, shape, cfg, unique, 8)
        assert (mem.dram_read_bytes, mem.dram_write_bytes) == mapping_traffic(
            mp, df, shape, cfg, unique, 8)
    space = _space(flow, shape, cfg, unique, _mapper_tiles)
    for objective in ("dram", "energy", "cycles"):
        best = min(objective_value(objective, mp, df, shape, cfg, unique, 8) for mp in space)
        chosen = choose_mapping(df, shape, cfg, unique, 8, objective, max_evals=10_000)
        assert objective_value(objective, chosen, df, shape, cfg, unique, 8) == best
    if not bufs:
        chosen = choose_mapping(df, shape, cfg, unique, 8, "dram")
        assert sum(mapping_traffic(chosen, df, shape, cfg, unique, 8)) == d_min


@pytest.mark.parametrize("flow", ["ws", "is", "os"])
def test_fixed_model_is_a_mapping(flow) -> None:
    """§C6.5: the legacy fold order's DRAM traffic equals that of the §C6.1 mapping
    ws nkm:M×R×C / is mkn:C×R×N / os nmk:R×K×C keeping the operands the legacy model keeps
    (whole operand fits its half; ws/is partial sums of one column tile fit), except the
    os weights the legacy model refetches per fold."""
    rng = np.random.default_rng(3)
    df = get_dataflow(flow)
    for _ in range(12):
        shape = GemmShape(*(int(v) for v in rng.integers(3, 12, 3)))
        cfg = _cfg(dataflow=flow, input_sram_bytes=int(rng.choice([64, 400])),
                   weight_sram_bytes=int(rng.choice([64, 400])),
                   output_sram_bytes=int(rng.choice([32, 192, 2000])))
        unique = shape.m * shape.k
        base = fixed_equivalent(df, shape, cfg)
        keep = set()
        if unique <= cfg.input_sram_bytes // 2:
            keep.add("A")
        if shape.k * shape.n + 4 * shape.n <= cfg.weight_sram_bytes // 2:
            keep.add("W")
        t = {"ws": shape.m, "is": shape.n, "os": 0}[flow]
        if 4 * t * cfg.cols <= cfg.output_sram_bytes // 2:
            keep.add("Y")
        mp = Mapping(base.order, base.tm, base.tk, base.tn, frozenset(keep))
        try:
            check_mapping(mp, df, shape, cfg, unique, 8)
        except HwsimError:
            continue  # a fold's own tile exceeds a buffer: not a legal §C6.1 mapping
        old = fixed_gemm_memory(df, shape, cfg, unique, 8)
        rd, wr = mapping_traffic(mp, df, shape, cfg, unique, 8)
        if flow == "os" and "W" not in keep:
            # the legacy os model refetches the K×C weight tile for every m fold; in
            # §C6.1 terms W is captured (the k loop inside m has one tile): fewer bytes.
            assert wr == old.dram_write_bytes and rd < old.dram_read_bytes
        else:
            assert (rd, wr) == (old.dram_read_bytes, old.dram_write_bytes)


def _layer(stepped: bool, cfg: ArrayConfig, name: str = "conv"):
    rng = np.random.default_rng(1)
    gemms = [GemmOperands(rng.integers(0, 256, (7, 6)), rng.integers(-128, 128, (6, 5)),
                          rng.integers(-100, 100, 5), 42) for _ in range(2)]
    params = make_requant_params(np.full(10, 1e-3), RequantConfig(), zero_point=0)
    return simulate_gemm_layer(name, "conv", gemms, params, cfg, stepped=stepped)


@pytest.mark.parametrize("mapping", ["auto", "fixed",
                                     {"order": "kmn", "tm": 4, "tk": 2, "tn": 2}])
def test_modes_agree_and_values_do_not_depend_on_mapping(mapping) -> None:
    """§C6.3/§C9: both modes report the same counters for every mapping setting, and the
    values and cycles are those of the default mapping."""
    cfg = _cfg(dataflow="ws", mapping=mapping, input_sram_bytes=16, weight_sram_bytes=24,
               output_sram_bytes=64)
    fast, step = _layer(False, cfg), _layer(True, cfg)
    assert fast.counters == step.counters
    ref = _layer(False, _cfg(dataflow="ws"))
    for a, b in zip(fast.gemms, ref.gemms, strict=True):
        assert np.array_equal(a.values, b.values) and a.cycles == b.cycles
    c = fast.counters
    assert c.compulsory_dram_bytes == 2 * compulsory_bytes(GemmShape(7, 6, 5), cfg, 42, 8)
    assert c.dram_read_bytes + c.dram_write_bytes >= c.compulsory_dram_bytes
    assert c.mapping == ("fixed" if mapping == "fixed" else c.mapping) and c.mapping
    if isinstance(mapping, dict):
        assert c.mapping == "kmn:4x2x2"
    assert 0 <= c.fill_stall_cycles <= c.stall_cycles


def test_toml_mapping_settings_and_per_layer_pin() -> None:
    """§C6.4: mapping/objective/layer_mappings keys; errors name the key; a per-layer pin
    overrides the array's setting for that layer only."""
    cfg = array_config_from_dict({
        "rows": 2, "cols": 2, "dataflow": "ws", "objective": "cycles",
        "layer_mappings": {"conv": {"order": "nkm", "tm": 7, "tk": 2, "tn": 2, "keep": ["A"]}}})
    assert cfg.objective == "cycles" and cfg.mapping == "auto"
    assert _layer(False, cfg, "conv").counters.mapping == "nkm:7x2x2+A"
    assert array_config_from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match=r"array mapping: expected \"auto\""):
        _cfg(mapping="best")
    with pytest.raises(ConfigError, match=r"layer_mappings.conv: unknown key 'tx'"):
        array_config_from_dict({"rows": 2, "cols": 2, "dataflow": "ws",
                                "layer_mappings": {"conv": {"order": "mkn", "tx": 1}}})
    with pytest.raises(ConfigError, match="array objective"):
        _cfg(objective="area")
    with pytest.raises(ConfigError, match="mapping order"):
        _cfg(mapping={"order": "mmk", "tm": 1, "tk": 2, "tn": 2})
    bad = _cfg(layer_mappings={"conv": {"order": "mkn", "tm": 2, "tk": 3, "tn": 2}})
    with pytest.raises(HwsimError, match=r"layer 'conv': mapping mkn:2x3x2: tk = 3"):
        gemm_memory(WS, GemmShape(4, 6, 4), bad, 24, 8, layer="conv")


def test_run_reports_mapping_and_bound(tmp_path, capsys) -> None:
    """``hwsim run --json``: every MAC layer's counters carry its mapping, compulsory bytes
    (§C6.2: DRAM traffic never below them) and fill stalls; --mapping fixed gives the
    legacy model's label; --objective reaches the mapper."""
    import json

    from test_sim_run import EXAMPLE, write_model

    from hwsim.cli import main

    write_model(tmp_path / "tiny.onnx")
    np.save(tmp_path / "x.npy",
            np.random.default_rng(1).normal(size=(2, 3, 10, 10)).astype(np.float32))
    base = ["run", str(tmp_path / "tiny.onnx"), "--array", str(EXAMPLE), "--inputs",
            str(tmp_path / "x.npy"), "--json"]
    reports = {}
    for extra in ([], ["--mapping", "fixed"], ["--objective", "cycles"]):
        assert main(base + extra) == 0
        reports[" ".join(extra)] = json.loads(capsys.readouterr().out)
    for key, rep in reports.items():
        macs = [la["counters"] for la in rep["layers"] if la["counters"]["macs"]]
        assert len(macs) == 2
        for c in macs:
            assert c["dram_read_bytes"] + c["dram_write_bytes"] >= c["compulsory_dram_bytes"] > 0
            assert 0 <= c["fill_stall_cycles"] <= c["stall_cycles"]
            assert (c["mapping"] == "fixed") == (key == "--mapping fixed")
            assert c["mapping"]
    # everything of this tiny model fits the 16x16 array's buffers: the bound is reached
    for c in reports[""]["layers"]:
        if c["counters"]["macs"]:
            cc = c["counters"]
            assert cc["dram_read_bytes"] + cc["dram_write_bytes"] == cc["compulsory_dram_bytes"]


def test_sweep_varies_the_objective() -> None:
    """A sweep grid's ``objectives`` axis (§C6.4) sets each point's mapper objective: the
    dram point moves no more DRAM bytes than the cycles point, which has no more cycles."""
    from hwsim.sweep import GemmWorkload, grid_from_dict, grid_points, run_sweep

    grid = grid_from_dict({"arrays": [[4, 4]], "dataflows": ["ws"], "sram_kib": [1],
                           "acc_bits": [32], "objectives": ["dram", "cycles"]})
    assert grid.size == 2
    assert [p.label for p in grid_points(grid)] == ["4x4-ws-1K-acc32-dram",
                                                    "4x4-ws-1K-acc32-cycles"]
    rows = run_sweep(GemmWorkload("g", ((40, 24, 12), (9, 64, 20)), seed=2), grid, workers=0)
    by = {r["objective"]: r for r in rows}
    assert by["dram"]["status"] == by["cycles"]["status"] == "ok"
    assert by["dram"]["dram_bytes"] <= by["cycles"]["dram_bytes"]
    assert by["cycles"]["cycles"] <= by["dram"]["cycles"]
    with pytest.raises(ConfigError, match="sweep objectives"):
        grid_from_dict({"arrays": [[4, 4]], "dataflows": ["ws"], "sram_kib": [1],
                        "acc_bits": [32], "objectives": ["area"]})


def test_layers_csv_has_mapping_and_bound() -> None:
    """report layers.csv rows carry the mapping, the compulsory bytes and the ratio (§C6.2)."""
    import csv
    import io

    from hwsim.report.data import LayerStats, ReportData, to_csv

    layer = LayerStats(name="c", op="conv", macs=100, compute_cycles=10, stall_cycles=2,
                       fill_drain_cycles=3, utilization=0.5, sram_read_bytes=10,
                       sram_write_bytes=10, dram_read_bytes=300, dram_write_bytes=100,
                       compulsory_dram_bytes=250, mapping="kmn:8x4x4+AW")
    data = ReportData(title="t", model="m", array={"rows": 4, "cols": 4, "dataflow": "ws"},
                      pes=16, clock_mhz=500.0, dram_bytes_per_cycle=16.0, layers=(layer,))
    row = next(csv.DictReader(io.StringIO(to_csv(data))))
    assert row["mapping"] == "kmn:8x4x4+AW"
    assert int(row["compulsory_dram_bytes"]) == 250 and float(row["dram_ratio"]) == 1.6


def test_bound_holds_for_narrow_formats_and_conv_inputs() -> None:
    """§C6.2 on random small GEMMs with sub-byte operands (per-tile ceilings), a unique input
    ``U`` below or above ``bytes(M·K)`` (conv windows), random buffers: no legal mapping goes
    below ``D_min``, the per-tile schedule sums to the closed form, and the single-tile
    mapping, whenever legal, moves exactly ``D_min``."""
    rng = np.random.default_rng(11)
    checked = reached = 0
    for trial in range(8):
        flow = ("ws", "is", "os")[trial % 3]
        act, wb = int(rng.integers(3, 9)), int(rng.integers(3, 9))
        shape = GemmShape(*(int(v) for v in rng.integers(2, 9, 3)))
        cfg = _cfg(dataflow=flow, act_bits=act, weight_bits=wb,
                   acc_bits=int(rng.integers(act + wb, 33)),
                   input_sram_bytes=int(rng.integers(8, 80)),
                   weight_sram_bytes=int(rng.integers(24, 120)),
                   output_sram_bytes=int(rng.integers(32, 300)))
        mk = -(-shape.m * shape.k * act // 8)
        unique = int(rng.integers(max(1, mk // 3), 2 * mk))
        out_bits = int(rng.integers(2, 9))
        df = get_dataflow(flow)
        d_min = compulsory_bytes(shape, cfg, unique, out_bits)
        space = _space(flow, shape, cfg, unique, _all_tiles)
        checked += len(space)
        for mp in space:
            rd, wr = mapping_traffic(mp, df, shape, cfg, unique, out_bits)
            assert rd + wr >= d_min, mp.label
        for mp in space[::11]:
            mem = mapping_memory(mp, df, shape, cfg, unique, out_bits)
            assert (mem.dram_read_bytes, mem.dram_write_bytes) == mapping_traffic(
                mp, df, shape, cfg, unique, out_bits)
        single = Mapping("mkn", shape.m, shape.k, shape.n)
        try:
            check_mapping(single, df, shape, cfg, unique, out_bits)
        except HwsimError:
            continue
        assert sum(mapping_traffic(single, df, shape, cfg, unique, out_bits)) == d_min
        reached += 1
    assert checked > 500 and reached >= 1
