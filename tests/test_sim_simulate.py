"""GEMMs on the array: stepped kernel and fast mode against a naive hwsim.arith GEMM, and
against each other (specs/cycle_model.md §C3–§C5; arithmetic.md §7, §8). Tolerance 0."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.arith import (
    AccumulatorOverflowError,
    RequantConfig,
    accumulate,
    make_requant_params,
    requantize,
)
from hwsim.errors import HwsimError
from hwsim.sim.config import ArrayConfig
from hwsim.sim.dataflows import GemmShape, get_dataflow
from hwsim.sim.simulate import simulate_gemm

DATAFLOWS = ("ws", "os", "is")


def naive_gemm(a, w, bias, params, bits, policy):
    """The §7/§8 definition: hwsim.arith.accumulate over k ascending, then requantize."""
    products = a.astype(np.int64)[:, None, :] * w.astype(np.int64).T[None, :, :]
    acc, events = accumulate(bias.astype(np.int64)[None, :], products, bits, policy)
    return acc, int(events.sum()), np.asarray(requantize(acc, params, channel_axis=1))


def make_case(seed: int, m: int, k: int, n: int, requant: RequantConfig = RequantConfig(),
              bias_range: int = 20000):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, size=(m, k)).astype(np.uint8)
    w = rng.integers(-128, 128, size=(k, n)).astype(np.int8)
    bias = rng.integers(-bias_range, bias_range + 1, size=n).astype(np.int32)
    scale = rng.uniform(2e-5, 2e-3, size=n)
    params = make_requant_params(scale, requant, zero_point=int(rng.integers(-20, 20)))
    return a, w, bias, params


def assert_same(stepped, fast) -> None:
    assert stepped.cycles == fast.cycles
    np.testing.assert_array_equal(stepped.valid_cycles, fast.valid_cycles)
    np.testing.assert_array_equal(stepped.acc, fast.acc)
    np.testing.assert_array_equal(stepped.values, fast.values)
    assert stepped.overflow_events == fast.overflow_events
    assert stepped.first_overflow == fast.first_overflow


@settings(max_examples=60)
@given(
    dataflow=st.sampled_from(DATAFLOWS),
    rows=st.integers(1, 6),
    cols=st.integers(1, 6),
    m=st.integers(1, 11),
    k=st.integers(1, 19),
    n=st.integers(1, 9),
    latency=st.integers(0, 3),
    seed=st.integers(0, 2**31 - 1),
)
def test_both_modes_bit_exact_against_naive_gemm(dataflow, rows, cols, m, k, n, latency, seed):
    """§7/§8 values, §C5 cycles, §C4 valid cycles: random shapes (non-square arrays, arrays
    larger than the layer, K not a multiple of rows), every dataflow."""
    a, w, bias, params = make_case(seed, m, k, n)
    cfg = ArrayConfig(rows=rows, cols=cols, dataflow=dataflow, requant_latency=latency)
    acc, events, values = naive_gemm(a, w, bias, params, 32, "wrap")
    stepped = simulate_gemm(a, w, bias, params, cfg, stepped=True)
    fast = simulate_gemm(a, w, bias, params, cfg)
    np.testing.assert_array_equal(stepped.acc, acc)
    np.testing.assert_array_equal(stepped.values, values)
    assert events == 0 and stepped.overflow_events == 0
    assert_same(stepped, fast)
    flow = get_dataflow(dataflow)
    assert stepped.cycles == flow.array_cycles(GemmShape(m, k, n), rows, cols, latency)
    assert stepped.valid_cycles.max() <= stepped.cycles


@pytest.mark.parametrize("mode", ["tflite", "tflite_single", "float32", "custom"])
@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_requant_modes_in_the_kernel(mode: str, dataflow: str) -> None:
    """§8: the kernel's requantization unit (hwsim.arith.jit.requantize_scalar) equals
    hwsim.arith.requantize for every mode."""
    rq = RequantConfig(mode=mode, rounding="half_even") if mode == "custom" else RequantConfig(
        mode=mode)
    a, w, bias, params = make_case(7, 9, 13, 6, requant=rq)
    cfg = ArrayConfig(rows=4, cols=3, dataflow=dataflow, requant=rq)
    _, _, values = naive_gemm(a, w, bias, params, 32, "wrap")
    stepped = simulate_gemm(a, w, bias, params, cfg, stepped=True)
    np.testing.assert_array_equal(stepped.values, values)
    assert_same(stepped, simulate_gemm(a, w, bias, params, cfg))


def test_per_tensor_requant_params_broadcast() -> None:
    a, w, bias, _ = make_case(3, 5, 7, 4)
    params = make_requant_params(1e-3, RequantConfig(), zero_point=5)
    cfg = ArrayConfig(rows=2, cols=3, dataflow="is")
    _, _, values = naive_gemm(a, w, bias, params, 32, "wrap")
    stepped = simulate_gemm(a, w, bias, params, cfg, stepped=True)
    np.testing.assert_array_equal(stepped.values, values)
    assert_same(stepped, simulate_gemm(a, w, bias, params, cfg))


@pytest.mark.parametrize("policy", ["wrap", "saturate"])
@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_narrow_accumulator_reports_overflow(policy: str, dataflow: str) -> None:
    """§7: a 16-bit accumulator overflows; values follow the sequential order, every
    overflowing addition is counted, the first location is the same in both modes."""
    a, w, bias, params = make_case(11, 10, 23, 7, bias_range=3000)
    cfg = ArrayConfig(rows=4, cols=3, dataflow=dataflow, acc_bits=16, acc_overflow=policy)
    acc, events, values = naive_gemm(a, w, bias, params, 16, policy)
    assert events > 0
    stepped = simulate_gemm(a, w, bias, params, cfg, stepped=True)
    fast = simulate_gemm(a, w, bias, params, cfg)
    np.testing.assert_array_equal(stepped.acc, acc)
    np.testing.assert_array_equal(stepped.values, values)
    assert stepped.overflow_events == events
    assert_same(stepped, fast)
    assert stepped.first_overflow is not None


@pytest.mark.parametrize("stepped", [False, True])
@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_error_policy_raises_naming_first_overflow(dataflow: str, stepped: bool) -> None:
    a, w, bias, params = make_case(11, 10, 23, 7, bias_range=3000)
    cfg = ArrayConfig(rows=4, cols=3, dataflow=dataflow, acc_bits=16, acc_overflow="saturate")
    first = simulate_gemm(a, w, bias, params, cfg).first_overflow
    cfg_err = ArrayConfig(rows=4, cols=3, dataflow=dataflow, acc_bits=16, acc_overflow="error")
    m, n, k = first
    with pytest.raises(AccumulatorOverflowError,
                       match=rf"^accumulator overflow at output \(m={m}, n={n}\), k = {k}:"):
        simulate_gemm(a, w, bias, params, cfg_err, stepped=stepped)


@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_first_overflow_is_row_major_minimum(dataflow: str) -> None:
    """§C7: first_overflow is the smallest (m, n, k) whose addition overflows (§7 wrap)."""
    a, w, bias, params = make_case(5, 6, 17, 5, bias_range=3000)
    cfg = ArrayConfig(rows=3, cols=2, dataflow=dataflow, acc_bits=16, acc_overflow="wrap")
    res = simulate_gemm(a, w, bias, params, cfg, stepped=True)
    lo, hi = -(1 << 15), (1 << 15) - 1
    expected = None
    for m in range(6):
        for n in range(5):
            acc = int(bias[n])
            for k in range(17):
                s = acc + int(a[m, k]) * int(w[k, n])
                if not lo <= s <= hi:
                    expected = expected or (m, n, k)
                    s = (s - lo) % (1 << 16) + lo
                acc = s
    assert res.first_overflow == expected


def test_bias_must_fit_accumulator() -> None:
    a, w, _, params = make_case(1, 3, 4, 2)
    cfg = ArrayConfig(rows=2, cols=2, dataflow="ws", acc_bits=16)
    with pytest.raises(HwsimError, match=r"^bias: the folded bias must fit the 16-bit"):
        simulate_gemm(a, w, np.array([40000, 0]), params, cfg)


def test_operands_must_fit_ports() -> None:
    a, w, bias, params = make_case(1, 3, 4, 2)
    cfg = ArrayConfig(rows=2, cols=2, dataflow="ws", act_bits=4, acc_bits=16)
    with pytest.raises(HwsimError, match=r"^activation operand: codes in \[\d+, \d+\] do not "
                                         r"fit the array's 4-bit activation port"):
        simulate_gemm(a, w, bias, params, cfg)
    with pytest.raises(HwsimError, match=r"^GEMM operands: inner dimensions differ"):
        simulate_gemm(a, w[:3], bias, params, ArrayConfig(rows=2, cols=2, dataflow="ws"))
