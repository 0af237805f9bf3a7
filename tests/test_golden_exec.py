"""Golden model vs float64 fake-quant reference on single-op graphs (specs/arithmetic.md §9,
§10; specs/compiler.md §5): 100% equal in the exact modes, ≤ 1 LSB layer-wise otherwise."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from hwsim.arith import RequantConfig
from hwsim.compiler.quantize import QuantizeConfig, quantize_dynamic, quantize_static
from hwsim.ir.builder import GraphBuilder
from hwsim.reference.fakequant_exec import run_fakequant
from hwsim.reference.golden_exec import run_golden

RNG = np.random.default_rng(2024)


def _w(*shape: int) -> np.ndarray:
    return RNG.normal(scale=0.5, size=shape).astype(np.float32)


def _conv(b: GraphBuilder, x: str) -> str:
    return b.conv2d(x, _w(6, 4, 3, 3), _w(6), pads=1)


def _conv_relu(b: GraphBuilder, x: str) -> str:
    return b.relu(b.conv2d(x, _w(6, 4, 3, 2), _w(6), strides=(2, 1), pads=(1, 0, 0, 1)))


def _conv_relu6_grouped(b: GraphBuilder, x: str) -> str:
    return b.relu6(b.conv2d(x, _w(4, 2, 3, 3), None, pads=2, dilations=2, groups=2))


def _depthwise_clip(b: GraphBuilder, x: str) -> str:
    return b.clip(b.depthwise_conv2d(x, _w(4, 1, 3, 3), _w(4), pads=1), -0.5, 1.0)


def _gemm(b: GraphBuilder, x: str) -> str:
    return b.linear(b.flatten(x), _w(7, 4 * 6 * 6), _w(7))


def _matmul_relu(b: GraphBuilder, x: str) -> str:
    return b.relu(b.matmul(b.flatten(x), _w(4 * 6 * 6, 5)))


def _add(b: GraphBuilder, x: str) -> str:
    y = b.conv2d(x, _w(4, 4, 1, 1), None)
    return b.add(x, y)


def _add_relu(b: GraphBuilder, x: str) -> str:
    y = b.conv2d(x, _w(4, 4, 1, 1), None)
    return b.relu(b.add(y, x))


def _avgpool(b: GraphBuilder, x: str) -> str:
    return b.avgpool2d(x, 3, 2, pads=1)


def _avgpool_count_pad(b: GraphBuilder, x: str) -> str:
    return b.avgpool2d(x, 2, 1, pads=1, count_include_pad=True)


def _global_avgpool(b: GraphBuilder, x: str) -> str:
    return b.global_avgpool(x)


def _maxpool(b: GraphBuilder, x: str) -> str:
    return b.maxpool2d(x, 3, 2, pads=1)


def _standalone_relu(b: GraphBuilder, x: str) -> str:
    return b.relu(b.maxpool2d(x, 2))


def _reshape(b: GraphBuilder, x: str) -> str:
    return b.reshape(x, (0, 4, 36))


def _pad(b: GraphBuilder, x: str) -> str:
    return b.pad(x, (0, 0, 1, 2, 0, 0, 2, 1))


def _concat(b: GraphBuilder, x: str) -> str:
    y = b.conv2d(x, _w(3, 4, 1, 1), None)
    return b.concat([x, y], axis=1)


OPS: dict[str, Callable[[GraphBuilder, str], str]] = {
    "conv": _conv, "conv_relu": _conv_relu, "conv_relu6_grouped": _conv_relu6_grouped,
    "depthwise_clip": _depthwise_clip, "gemm": _gemm, "matmul_relu": _matmul_relu,
    "add": _add, "add_relu": _add_relu, "avgpool": _avgpool,
    "avgpool_count_pad": _avgpool_count_pad, "global_avgpool": _global_avgpool,
    "maxpool": _maxpool, "standalone_relu": _standalone_relu, "reshape": _reshape,
    "pad": _pad, "concat": _concat,
}


def _graph(op: str):
    b = GraphBuilder(op)
    x = b.input("x", (1, 4, 6, 6))
    return b.build(OPS[op](b, x))


def _data(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 4, 6, 6)).astype(np.float32)


def _compare(qg, x, layerwise: bool):
    gold = run_golden(qg, {"x": x})
    fq = run_fakequant(qg, {"x": x}, layerwise=gold if layerwise else None)
    total = mism = worst = 0
    for n in qg.nodes:
        d = np.abs(gold.codes[n.output] - fq.codes[n.output])
        total += d.size
        mism += int(np.count_nonzero(d))
        worst = max(worst, int(d.max()))
    return total, mism, worst


CALIB = [{"x": _data(16, 1)}, {"x": _data(16, 2)}]
EVAL = _data(32, 3)


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("config", [
    RequantConfig(mode="dyadic"),
    RequantConfig(mode="dyadic", multiplier_bits=8, rounding="half_even"),
    RequantConfig(mode="custom", multiplier_bits=12, rounding="toward_zero", shift_max=40),
    RequantConfig(mode="custom", multiplier_bits=24, rounding="half_away",
                  output_overflow="wrap"),
], ids=["dyadic16", "dyadic8_even", "custom12_tz", "custom24_wrap"])
def test_golden_equals_fakequant_exact_modes(op: str, config: RequantConfig) -> None:
    """§9: in dyadic / custom modes golden == fake-quant for every element of every op."""
    qg = quantize_static(_graph(op), CALIB, QuantizeConfig(requant=config))
    total, mism, worst = _compare(qg, EVAL, layerwise=False)
    assert total > 0
    assert (mism, worst) == (0, 0)


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("mode", ["tflite", "tflite_single", "float32"])
def test_inexact_modes_within_one_lsb(op: str, mode: str) -> None:
    """§9: tflite (two roundings) and float32 (float32 arithmetic) differ from the one-
    rounding float64 reference by at most 1 LSB per op (inputs taken from the golden run)."""
    qg = quantize_static(_graph(op), CALIB, QuantizeConfig(requant=RequantConfig(mode=mode)))
    total, mism, worst = _compare(qg, EVAL, layerwise=True)
    assert worst <= 1, (op, mode, mism, total)


@pytest.mark.parametrize("weights", ["int4", "int4_block", "fp8"])
@pytest.mark.parametrize("op", ["conv_relu", "conv_relu6_grouped", "gemm"])
def test_weight_formats_exact(weights: str, op: str) -> None:
    """§3.3 of specs/compiler.md: int4, int4 per-block and fp8 weights are carried as exact
    integers, so golden == fake-quant in dyadic mode."""
    qg = quantize_static(_graph(op), CALIB, QuantizeConfig(weights=weights))
    assert _compare(qg, EVAL, layerwise=False)[1:] == (0, 0)


@pytest.mark.parametrize("op", ["conv_relu", "gemm", "avgpool", "maxpool", "pad", "reshape",
                                "add_relu", "concat", "standalone_relu"])
def test_dynamic_golden_equals_fakequant(op: str) -> None:
    """specs/compiler.md §4: per-input qparams chosen by the same rule in both executors."""
    qg = quantize_dynamic(_graph(op))
    for i in range(3):
        x = EVAL[i:i + 1] * (i + 1)
        gold = run_golden(qg, {"x": x})
        fq = run_fakequant(qg, {"x": x})
        for t in gold.codes:
            np.testing.assert_array_equal(gold.codes[t], fq.codes[t])
            assert gold.tensors[t] == fq.tensors[t]


def test_accumulator_overflow_counted_and_mismatch() -> None:
    """§7.3: a narrow wrapping accumulator overflows; the golden model counts the events and
    the unbounded fake-quant reference then differs."""
    qg = quantize_static(_graph("conv"), CALIB, QuantizeConfig(weights="int4", acc_bits=12))
    gold = run_golden(qg, {"x": EVAL})
    assert sum(gold.overflow_events.values()) > 0
    assert _compare(qg, EVAL, layerwise=False)[1] > 0


def test_accumulator_error_policy_names_node_and_position() -> None:
    """§7.3: policy "error" raises AccumulatorOverflowError naming node, image and k."""
    from hwsim.arith import AccumulatorOverflowError

    qg = quantize_static(_graph("conv"), CALIB, QuantizeConfig(weights="int4", acc_bits=12,
                                                               acc_overflow="error"))
    with pytest.raises(AccumulatorOverflowError,
                       match=r"node 'conv2d_0' \(conv\): image 0, .*k = \d+"):
        run_golden(qg, {"x": EVAL})


@pytest.mark.parametrize("act_dtype", ["uint8", "int16"])
@pytest.mark.parametrize("op", ["conv_relu", "add_relu", "avgpool", "concat", "gemm", "pad"])
def test_other_activation_formats_exact(act_dtype: str, op: str) -> None:
    """compiler §3.1: uint8 and int16 activations keep golden == fake-quant (dyadic)."""
    qg = quantize_static(_graph(op), CALIB, QuantizeConfig(act_dtype=act_dtype))
    assert all(t.dtype == act_dtype for t in qg.tensors.values())
    assert _compare(qg, EVAL, layerwise=False)[1:] == (0, 0)


def test_accumulators_read_as_int64_whatever_they_are_kept_as() -> None:
    """The golden model keeps the int32 registers of kernel-computed convs as int32
    (arithmetic.md §7.5) but hands every accumulator out as int64, equal to the literal
    §7 loops."""
    from hwsim.reference import golden_ops

    qg = quantize_static(_graph("conv_relu"), CALIB, QuantizeConfig())
    x = EVAL[:4]
    res = run_golden(qg, {"x": x})
    node = next(n for n in qg.nodes if n.op == "conv")
    acc = res.accumulators[node.name]
    assert acc.dtype == np.int64 and len(res.accumulators) == 1
    assert list(res.accumulators) == [node.name]
    a = node.attrs
    want, _ = golden_ops.conv2d_acc_literal(
        res.codes[node.inputs[0]], node.arrays["weight"], node.arrays["bias"],
        x_zero_point=res.tensors[node.inputs[0]].zero_point, strides=tuple(a["strides"]),
        pads=tuple(a["pads"]), dilations=tuple(a["dilations"]), group=int(a["group"]),
        acc_bits=qg.acc_bits, policy=qg.acc_overflow)
    np.testing.assert_array_equal(acc, want)


def _compact_graph():
    """conv → max pool → conv (→ add with the pool) → global average pool, plus a
    depthwise conv reading the first conv, the two pools added: outputs read only by conv /
    add / max pool (or by nothing) are kept compact."""
    b = GraphBuilder("compact")
    x = b.input("x", (1, 4, 6, 6))
    c1 = b.relu(b.conv2d(x, _w(4, 4, 3, 3), _w(4), pads=1))
    m = b.maxpool2d(c1, 3, 1, pads=1)
    c2 = b.conv2d(m, _w(4, 4, 3, 3), _w(4), pads=1)
    s = b.add(c2, m)
    d = b.depthwise_conv2d(c1, _w(4, 1, 3, 3), _w(4), pads=1)
    return b.build(b.add(b.global_avgpool(s), b.global_avgpool(d)))


@pytest.mark.parametrize("signed", [True, False], ids=["int8", "uint8"])
def test_compact_codes_change_no_value(signed: bool, monkeypatch) -> None:
    """The golden model keeps 8-bit tensors read only by conv / add / max pool as int8 /
    uint8 (hwsim.reference.golden_exec.compact_dtypes); every code and accumulator, read
    as int64, equals a run that keeps everything int64, and so do fast mode's."""
    from hwsim.reference import golden_exec
    from hwsim.sim.config import ArrayConfig
    from hwsim.sim.graph import simulate_qgraph
    from hwsim.sim.run import quantize_config_for

    array = ArrayConfig(rows=4, cols=4, dataflow="ws")
    cfg = quantize_config_for(array)
    if not signed:
        from dataclasses import replace

        cfg = replace(cfg, act_dtype="uint8")
    qg = quantize_static(_compact_graph(), CALIB, cfg)
    plan = golden_exec.compact_dtypes(qg)
    by_op = {n.output: n.op for n in qg.nodes}
    want_dt = np.dtype(np.int8 if signed else np.uint8)
    assert set(plan.values()) == {want_dt}
    readers = {t: {n.op for n in qg.nodes if t in n.inputs} for t in by_op}
    for t, op in by_op.items():
        # graph outputs (no reader) too: they are only read through the int64 mapping
        expect = op in golden_exec.COMPACT_WRITERS and readers[t] <= golden_exec.COMPACT_READERS
        assert (t in plan) == expect, (t, op, readers[t])
    x = EVAL[:6]
    got = run_golden(qg, {"x": x})
    fast = simulate_qgraph(qg, {"x": x}, array)
    for t in plan:
        assert got.codes.compact(t).dtype == want_dt
    monkeypatch.setattr(golden_exec, "compact_dtypes", lambda g: {})
    want = run_golden(qg, {"x": x})
    want_fast = simulate_qgraph(qg, {"x": x}, array)
    assert set(got.codes) == set(want.codes)
    for t in want.codes:
        assert got.codes[t].dtype == np.int64 and fast.codes[t].dtype == np.int64
        np.testing.assert_array_equal(got.codes[t], want.codes[t], err_msg=t)
        np.testing.assert_array_equal(fast.codes[t], want_fast.codes[t], err_msg=t)
        np.testing.assert_array_equal(fast.codes[t], want.codes[t], err_msg=t)
    for name in want.accumulators:
        np.testing.assert_array_equal(got.accumulators[name], want.accumulators[name])
