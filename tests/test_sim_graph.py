"""Whole integer graphs on the array against the golden executor (specs/cycle_model.md
§C1, §C5–§C7; arithmetic.md §7, §8, §10). Tolerance 0."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.compiler.quantize import QuantizeConfig, quantize_dynamic, quantize_static
from hwsim.errors import ConfigError, ModelError
from hwsim.ir.builder import GraphBuilder
from hwsim.reference.golden_exec import run_golden
from hwsim.sim.config import ArrayConfig
from hwsim.sim.graph import simulate_qgraph


def small_net(seed: int = 0):
    rng = np.random.default_rng(seed)
    b = GraphBuilder("small")
    x = b.input("x", (2, 3, 9, 9))
    y = b.relu(b.conv2d(x, rng.normal(size=(6, 3, 3, 3)).astype(np.float32),
                        rng.normal(size=6).astype(np.float32), pads=1, strides=2))
    y = b.depthwise_conv2d(y, rng.normal(size=(6, 1, 3, 3)).astype(np.float32), pads=1)
    z = b.conv2d(y, rng.normal(size=(6, 6, 1, 1)).astype(np.float32))
    y = b.add(y, z)
    y = b.flatten(b.global_avgpool(y))
    y = b.linear(y, rng.normal(size=(5, 6)).astype(np.float32),
                 rng.normal(size=5).astype(np.float32))
    g = b.build(y)
    calib = [{"x": rng.normal(size=(2, 3, 9, 9)).astype(np.float32)} for _ in range(2)]
    feeds = {"x": rng.normal(size=(2, 3, 9, 9)).astype(np.float32)}
    return g, calib, feeds


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_graph_bit_exact_against_golden(dataflow: str) -> None:
    """Every tensor equals the golden executor in both modes; both modes give the same
    per-layer counters."""
    g, calib, feeds = small_net()
    qg = quantize_static(g, calib, QuantizeConfig(act_dtype="uint8"))
    gold = run_golden(qg, feeds)
    cfg = ArrayConfig(rows=3, cols=4, dataflow=dataflow)
    fast = simulate_qgraph(qg, feeds, cfg)
    stepped = simulate_qgraph(qg, feeds, cfg, stepped=True)
    for name, ref in gold.codes.items():
        np.testing.assert_array_equal(fast.codes[name], ref, err_msg=name)
        np.testing.assert_array_equal(stepped.codes[name], ref, err_msg=name)
    assert fast.layers == stepped.layers
    assert fast.total_cycles == stepped.total_cycles == sum(c.total_cycles for c in fast.layers)
    assert [c.name for c in fast.layers] == [n.name for n in qg.nodes]
    for c in fast.layers:
        if c.unit == "array":
            assert c.macs > 0 and 0 < c.utilisation <= 1


def test_narrow_accumulator_events_match_golden() -> None:
    """§7: a 16-bit saturating accumulator; events per MAC layer equal the golden count."""
    g, calib, feeds = small_net(1)
    qcfg = QuantizeConfig(act_dtype="int8", acc_bits=16, acc_overflow="saturate")
    qg = quantize_static(g, calib, qcfg)
    gold = run_golden(qg, feeds)
    cfg = ArrayConfig(rows=4, cols=4, dataflow="ws", acc_bits=16, acc_overflow="saturate")
    res = simulate_qgraph(qg, feeds, cfg, stepped=True)
    for name, ref in gold.codes.items():
        np.testing.assert_array_equal(res.codes[name], ref, err_msg=name)
    for c in res.layers:
        if c.unit == "array":
            assert c.overflow_events == gold.overflow_events[c.name]
    total = sum(c.overflow_events for c in res.layers)
    assert total == sum(gold.overflow_events.values()) > 0


def test_graph_and_array_accumulators_must_agree() -> None:
    g, calib, feeds = small_net()
    qg = quantize_static(g, calib, QuantizeConfig())
    with pytest.raises(ConfigError, match=r"^array acc_bits/acc_overflow \(24, 'wrap'\) differ"):
        simulate_qgraph(qg, feeds, ArrayConfig(rows=2, cols=2, dataflow="ws", acc_bits=24))
    b = GraphBuilder("dyn")
    x = b.input("x", (1, 4))
    dyn = quantize_dynamic(b.build(b.linear(x, np.ones((2, 4), np.float32))))
    with pytest.raises(ModelError, match=r"^graph 'dyn' is dynamic"):
        simulate_qgraph(dyn, {"x": np.ones((1, 4), np.float32)},
                        ArrayConfig(rows=2, cols=2, dataflow="ws"))
