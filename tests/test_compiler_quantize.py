"""The quantizing compiler (specs/compiler.md §3, §4): weights, bias folding (§7 of
specs/arithmetic.md), fused activations, requant scales, observers, unsupported graphs."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.arith import RequantConfig
from hwsim.compiler.quantize import (
    QuantizeConfig,
    quantize_dynamic,
    quantize_static,
    quantize_weights,
)
from hwsim.errors import ConfigError, ModelError
from hwsim.ir.builder import GraphBuilder
from hwsim.quant import PerAxis, QuantSpec, choose_qparams, fake_quant
from hwsim.reference.float_exec import conv2d
from hwsim.reference.golden_exec import run_golden

RNG = np.random.default_rng(11)
W = RNG.normal(scale=0.3, size=(6, 4, 3, 3)).astype(np.float32)
B = RNG.normal(size=6).astype(np.float32)


def _conv_graph(act: str = "relu"):
    b = GraphBuilder("c")
    x = b.input("x", (1, 4, 5, 5))
    y = b.conv2d(x, W, B, pads=1, name="conv")
    if act == "relu":
        y = b.relu(y, name="act")
    elif act == "relu6":
        y = b.relu6(y, name="act")
    return b.build(y)


X = RNG.normal(size=(8, 4, 5, 5)).astype(np.float32)


def test_int8_weights_are_hwsim_quant_per_channel() -> None:
    """§3.3: int8 weights = hwsim.quant symmetric PerAxis(0), zero point 0."""
    q, s = quantize_weights(W, "int8")
    spec = QuantSpec("int8", symmetric=True, granularity=PerAxis(0))
    flat = W.reshape(6, -1)
    qp = choose_qparams(flat.min(1), flat.max(1), spec, ndim=4)
    assert q.dtype == np.int8 and s.dtype == np.float64
    np.testing.assert_array_equal(s, qp.scale.astype(np.float64))
    np.testing.assert_array_equal(q * s[:, None, None, None].astype(np.float32),
                                  fake_quant(W, qp))


def test_int4_block_carried_exactly() -> None:
    """§3.3: int4 per-block codes times 2^(4−e) are the carried int8 weights; every block's
    real value is within half a block step of the float weight."""
    w = RNG.normal(size=(3, 40)).astype(np.float32)
    w[:, 16:32] *= 0.05  # a quiet block gets a finer exponent
    q, s = quantize_weights(w, "int4_block", block_size=16)
    assert q.dtype == np.int8 and q.min() >= -128 and q.max() <= 112
    err = np.abs(q * s[:, None] - w)
    # block step s_c·2^-e = s·2^(4−e) <= 16·s: the rounding error is at most half of it
    assert np.all(err <= 8 * s[:, None] * (1 + 1e-6))
    assert err[:, 16:32].max() < err[:, :16].max() / 4
    # every carried value is an int4 code shifted by a block exponent in [0, 4]
    for c in range(3):
        for blk in range(3):
            v = q[c, blk * 16:(blk + 1) * 16].astype(np.int64)
            assert any(np.all(v % (1 << k) == 0) and np.all(np.abs(v >> k) <= 8)
                       for k in range(5))


def test_fp8_weights_carried_exactly() -> None:
    """§3.3: fp8 e4m3 weights are the integers v·2^9 with scale s·2^-9: the real weights
    equal hwsim.quant's fp8 fake-quant exactly."""
    q, s = quantize_weights(W, "fp8")
    assert q.dtype == np.int32 and np.abs(q).max() <= 229376
    flat = W.reshape(6, -1)
    qp = choose_qparams(flat.min(1), flat.max(1),
                        QuantSpec("fp8_e4m3", granularity=PerAxis(0)), ndim=4)
    np.testing.assert_array_equal((q * s[:, None, None, None]).astype(np.float32),
                                  fake_quant(W, qp))


def test_bias_folding_matches_centred_sum() -> None:
    """§7: golden accumulators (folded bias + Σ qw·qx) equal Σ qw·(qx − zx) + round(b/(s_in·s_w)),
    the latter computed by the float executor's conv on exact centred integers."""
    qg = quantize_static(_conv_graph("none"), [{"x": X}])
    node = qg.nodes[0]
    tin = qg.tensors["x"]
    gold = run_golden(qg, {"x": X})
    xc = gold.codes["x"].astype(np.float64) - tin.zero_point
    s_w = node.arrays["weight_scale"]
    bq = np.rint(B.astype(np.float64) / (tin.scale * s_w))
    want = conv2d(xc, node.arrays["weight"].astype(np.float64), bq, (1, 1), (1, 1, 1, 1),
                  (1, 1), 1)
    np.testing.assert_array_equal(gold.accumulators["conv"], want.astype(np.int64))


def test_relu_and_relu6_fused_into_clamp() -> None:
    """§8.6: ReLU -> act_min = max(qmin, zp); ReLU6 -> act_max = zp + round(6/s)."""
    for act in ("relu", "relu6"):
        qg = quantize_static(_conv_graph(act), [{"x": X}])
        assert len(qg.nodes) == 1
        node = qg.nodes[0]
        assert node.name == "conv" and node.fused == act and node.output == "act.out"
        tq = qg.tensors[node.output]
        p = node.requant["out"]
        assert p.act_min == max(-128, tq.zero_point)
        if act == "relu6":
            assert p.act_max == min(127, tq.zero_point + int(np.floor(6 / tq.scale + 0.5)))
        out = run_golden(qg, {"x": X}).codes[node.output]
        assert out.min() >= p.act_min and out.max() <= p.act_max


def test_float32_mode_scale_is_ort_formula() -> None:
    """§8.3: mode float32 stores float32(float32(s_in·s_w)/s_out) per channel."""
    qg = quantize_static(_conv_graph(), [{"x": X}],
                         QuantizeConfig(requant=RequantConfig(mode="float32")))
    node = qg.nodes[0]
    s_in, s_out = qg.tensors["x"].scale, qg.tensors[node.output].scale
    s_w = node.arrays["weight_scale"].astype(np.float32)
    want = (np.float32(s_in) * s_w).astype(np.float32) / np.float32(s_out)
    np.testing.assert_array_equal(node.requant["out"].scale_f32, want.astype(np.float32))


def test_unsupported_graphs_name_the_node() -> None:
    """A non-constant matmul operand and a constant addend are rejected naming the node."""
    b = GraphBuilder("mm")
    x = b.input("x", (2, 3))
    y = b.input("y", (3, 2))
    g = b.build(b.matmul(x, y, name="mm0"))
    with pytest.raises(ModelError, match="node 'mm0' .*weight operand must be a constant"):
        quantize_static(g, [{"x": np.ones((2, 3), np.float32),
                             "y": np.ones((3, 2), np.float32)}])
    b = GraphBuilder("add")
    x = b.input("x", (1, 4, 5, 5))
    g = b.build(b.add(x, np.ones((1, 4, 5, 5), np.float32), name="sum"))
    with pytest.raises(ModelError, match="node 'sum' .*both inputs must be activations"):
        quantize_dynamic(g)


def test_quantize_config_validation() -> None:
    with pytest.raises(ConfigError, match="weights: expected one of"):
        QuantizeConfig(weights="int3")
    with pytest.raises(ConfigError, match="observer: expected one of"):
        QuantizeConfig(observer="max")
    with pytest.raises(ConfigError, match="block_size: expected an int >= 1"):
        QuantizeConfig(block_size=0)
