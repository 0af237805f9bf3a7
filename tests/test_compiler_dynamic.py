"""Dynamic quantization rules (specs/compiler.md §4)."""

from __future__ import annotations

import numpy as np

from hwsim.compiler.dynamic import dynamic_bias, dynamic_output, input_tensorq
from hwsim.compiler.quantize import quantize_dynamic
from hwsim.ir.builder import GraphBuilder
from hwsim.quant import QuantSpec
from hwsim.quant.observers import dynamic_qparams
from hwsim.reference.golden_exec import run_golden

RNG = np.random.default_rng(8)
B = RNG.normal(size=3).astype(np.float32)


def _qgraph():
    b = GraphBuilder("d")
    x = b.input("x", (1, 2, 5, 5))
    g = b.build(b.relu(b.conv2d(x, RNG.normal(size=(3, 2, 3, 3)).astype(np.float32), B,
                                pads=1, name="conv")))
    return quantize_dynamic(g)


def test_rule1_input_qparams_per_call() -> None:
    """§4 rule 1: each call's input gets dynamic_qparams of its own values."""
    qg = _qgraph()
    x = RNG.normal(size=(1, 2, 5, 5)).astype(np.float32)
    for k in (1.0, 4.0):
        res = run_golden(qg, {"x": x * k})
        want = dynamic_qparams(x * k, QuantSpec("int8"))
        assert res.tensors["x"] == input_tensorq("x", x * k, "int8")
        assert res.tensors["x"].scale == float(want.scale)


def test_rule2_bias_refolded_with_input_qparams() -> None:
    """§4 rule 2: round_half_even(b/(s_in·s_w)) − z_in·Σw, per output channel."""
    qg = _qgraph()
    node = qg.nodes[0]
    tin = input_tensorq("x", RNG.normal(size=(1, 2, 5, 5)), "int8")
    w = node.arrays["weight"].astype(np.int64)
    want = np.rint(B.astype(np.float64) / (tin.scale * node.arrays["weight_scale"])) \
        - tin.zero_point * w.reshape(3, -1).sum(axis=1)
    np.testing.assert_array_equal(dynamic_bias(node, tin), want)


def test_rule3_output_qparams_from_accumulators() -> None:
    """§4 rule 3: output qparams = dynamic_qparams(relu(acc·s_in·s_w)); act_min = zp."""
    qg = _qgraph()
    x = RNG.normal(size=(1, 2, 5, 5)).astype(np.float32)
    res = run_golden(qg, {"x": x})
    node = qg.nodes[0]
    tin = res.tensors["x"]
    acc = res.accumulators["conv"]
    real = np.maximum(acc * (tin.scale * node.arrays["weight_scale"]).reshape(1, -1, 1, 1), 0)
    want = dynamic_qparams(real.astype(np.float32), QuantSpec("int8"))
    tout, params = dynamic_output(qg, node, tin, acc)
    assert tout == res.tensors[node.output]
    assert tout.scale == float(want.scale) and tout.zero_point == int(want.zero_point)
    assert params.act_min == max(-128, tout.zero_point)
