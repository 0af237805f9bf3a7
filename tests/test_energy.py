"""Tests of hwsim.energy (specs/energy.md)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from hwsim.energy import (
    ACTIONS,
    COMPONENT_OF,
    COMPONENTS,
    HOROWITZ_45NM,
    EnergyContext,
    EnergyTable,
    energy_table_from_dict,
    load_energy_table,
    model_energy,
    per_action_energy,
)
from hwsim.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "energy"


def test_horowitz_anchor_values_reproduced():
    """§2: every cited Horowitz figure comes back unchanged at its anchor."""
    t = HOROWITZ_45NM
    assert t.int_add(8) == pytest.approx(0.03, rel=1e-12)
    assert t.int_add(32) == pytest.approx(0.1, rel=1e-12)
    assert t.int_mult(8, 8) == pytest.approx(0.2, rel=1e-12)
    assert t.int_mult(32, 32) == pytest.approx(3.1, rel=1e-12)
    assert t.fp_add(16) == pytest.approx(0.4, rel=1e-12)
    assert t.fp_add(32) == pytest.approx(0.9, rel=1e-12)
    assert t.fp_mult(16) == pytest.approx(1.1, rel=1e-12)
    assert t.fp_mult(32) == pytest.approx(3.7, rel=1e-12)
    assert t.sram_access(8 * 1024) == pytest.approx(10.0, rel=1e-12)
    assert t.sram_access(32 * 1024) == pytest.approx(20.0, rel=1e-12)
    assert t.sram_access(1024 * 1024) == pytest.approx(100.0, rel=1e-12)
    assert 1300.0 <= t.dram_per_byte() * 8 <= 2600.0


def test_interpolation_rules_against_closed_forms():
    """§3.1–§3.3: power law between width anchors, log-linear SRAM, geometric-mean width."""
    t = HOROWITZ_45NM
    p = math.log(0.1 / 0.03) / math.log(4.0)
    for b in (4, 12, 16, 24, 48):
        assert t.int_add(b) == pytest.approx(0.03 * (b / 8) ** p, rel=1e-12)
    q = math.log(3.1 / 0.2) / math.log(4.0)
    for a, w in ((8, 4), (16, 8), (4, 4), (16, 16)):
        assert t.int_mult(a, w) == pytest.approx(0.2 * (math.sqrt(a * w) / 8) ** q, rel=1e-12)
    # 16 KB lies halfway (in log2 size) between 8 KB and 32 KB
    assert t.sram_access(16 * 1024) == pytest.approx(15.0, rel=1e-12)
    # 256 KB: 3/5 of the way from 32 KB (2^15) to 1 MB (2^20)
    assert t.sram_access(256 * 1024) == pytest.approx(20 + 80 * 3 / 5, rel=1e-12)
    # half the bits, half the energy; floor for tiny buffers
    assert t.sram_access(32 * 1024, bits=32) == pytest.approx(10.0, rel=1e-12)
    assert t.sram_access(64) == pytest.approx(10.0 / 4, rel=1e-12)
    # monotone in size
    sizes = [2**k for k in range(10, 24)]
    e = [t.sram_access(s) for s in sizes]
    assert all(b >= a for a, b in zip(e, e[1:], strict=False))


def test_energy_equals_counters_times_table_exactly():
    """§5: per action, per component, per layer and total = counters × table, tolerance 0."""
    rng = np.random.default_rng(7)
    ctx = EnergyContext(act_bits=8, weight_bits=4, acc_bits=24,
                        sram_bytes={"ifmap": 16384, "weight": 65536, "ofmap": 8192})
    layers = []
    for i in range(5):
        counters = {a: int(rng.integers(0, 10**7)) for a in ACTIONS}
        layers.append((f"layer{i}", counters))
    me = model_energy(layers, ctx)
    pa = per_action_energy(HOROWITZ_45NM, ctx)
    assert me.per_action_pj == pa
    total = 0.0
    comp_tot = {c: 0.0 for c in COMPONENTS}
    for (name, counters), le in zip(layers, me.layers, strict=False):
        assert le.layer == name
        for a in ACTIONS:
            assert le.by_action[a] == counters[a] * pa[a]
        for c in COMPONENTS:
            s = 0.0
            for a in ACTIONS:
                if COMPONENT_OF[a] == c:
                    s += counters[a] * pa[a]
            assert le.by_component[c] == s
            comp_tot[c] += s
        lt = 0.0
        for c in COMPONENTS:
            lt += le.by_component[c]
        assert le.total_pj == lt
        total += lt
    assert me.total_pj == total
    assert me.by_component == comp_tot


def test_per_action_energies_compose_from_table():
    """§5: the MAC is a multiply plus an accumulator add; SRAM per byte = per word / bytes."""
    ctx = EnergyContext(act_bits=8, weight_bits=8, acc_bits=32)
    pa = per_action_energy(HOROWITZ_45NM, ctx)
    assert pa["mac"] == HOROWITZ_45NM.int_mult(8, 8) + HOROWITZ_45NM.int_add(32)
    assert pa["sram_read_bytes:weight"] == HOROWITZ_45NM.sram_access(65536) / 8.0
    assert pa["dram_read_bytes"] == 1950.0 / 8


def test_missing_counters_are_zero_and_unknown_are_rejected():
    """§5: an action not counted costs nothing; an unknown action name is an error."""
    me = model_energy([("l", {"mac": 10})], EnergyContext())
    assert me.total_pj == 10 * me.per_action_pj["mac"]
    with pytest.raises(ConfigError, match=r"unknown action\(s\) \['macs'\]"):
        model_energy([("l", {"macs": 10})], EnergyContext())
    with pytest.raises(ConfigError, match=r"mac: expected >= 0"):
        model_energy([("l", {"mac": -1})], EnergyContext())


def test_toml_tables_round_trip_and_override():
    """§4: the shipped TOML equals the built-in table; a partial table overrides keys."""
    assert load_energy_table(EXAMPLES / "horowitz45.toml") == HOROWITZ_45NM
    low = load_energy_table(EXAMPLES / "lpddr_low_power.toml")
    assert low.dram_pj_per_64b == 1300.0
    assert low.int_mult_pj == HOROWITZ_45NM.int_mult_pj
    assert low.sram_access(8192, write=True) == pytest.approx(12.0, rel=1e-12)
    assert energy_table_from_dict(HOROWITZ_45NM.to_dict()) == HOROWITZ_45NM


def test_bad_tables_name_the_field(tmp_path):
    """§4: invalid input raises ConfigError naming the field."""
    with pytest.raises(ConfigError, match="unknown key"):
        energy_table_from_dict({"dram_pj": 3.0})
    with pytest.raises(ConfigError, match="dram_pj_per_64b: expected a positive number"):
        energy_table_from_dict({"dram_pj_per_64b": -1.0})
    with pytest.raises(ConfigError, match="int_add_pj: anchors must have strictly increasing"):
        energy_table_from_dict({"int_add_pj": [[32, 0.1], [8, 0.03]]})
    bad = tmp_path / "bad.toml"
    bad.write_text("[energy\nname=1")
    with pytest.raises(ConfigError, match="bad TOML"):
        load_energy_table(bad)
    with pytest.raises(ConfigError, match="sram_bytes: expected keys"):
        EnergyContext(sram_bytes={"ifmap": 1})
    with pytest.raises(ConfigError, match="act_bits: expected an int in"):
        EnergyContext(act_bits=0)
    assert isinstance(HOROWITZ_45NM, EnergyTable)
