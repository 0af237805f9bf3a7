"""Fast-mode gemm layers by the golden model's calls
(:func:`hwsim.sim.simulate.simulate_gemm_layer_fast`: :func:`hwsim.exact.gemm_acc` on the
weight array as the graph holds it, then ``golden_ops.requantize_acc``) equal the GEMM path
on the lowered operands (:func:`hwsim.sim.lowering.lower_gemm` +
:func:`hwsim.sim.simulate.simulate_gemm_layer`, cycle_model.md §C1, §C5–§C7): codes,
values, accumulators, cycles, overflow counts and first overflow, memory and counters,
errors — under narrow accumulators and every policy, int8 and int64 weight arrays, and
again on a second batch with the same weight array (the engine's prepared weights reused)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.arith import AccumulatorOverflowError, RequantConfig, make_requant_params
from hwsim.errors import HwsimError
from hwsim.sim.config import ArrayConfig
from hwsim.sim.lowering import lower_gemm
from hwsim.sim.simulate import simulate_gemm_layer, simulate_gemm_layer_fast


def _case(seed: int, acc_bits: int, policy: str, wdtype):
    rng = np.random.default_rng(seed)
    b, k, m = 5, 37, 9
    x = rng.integers(-128, 128, size=(b, k))
    w = rng.integers(-128, 128, size=(m, k)).astype(wdtype)
    lim = 1 << (acc_bits - 1)
    bias = rng.integers(-lim // 4, lim // 4, size=m).astype(np.int32)
    params = make_requant_params(rng.uniform(1e-4, 1e-2, m), RequantConfig(), zero_point=-3)
    cfg = ArrayConfig(rows=4, cols=3, dataflow="os", acc_bits=acc_bits, acc_overflow=policy)
    return x, w, bias, params, cfg


def _check_equal(args) -> int:
    x, w, bias, params, cfg = args
    try:
        ref = simulate_gemm_layer("fc", "gemm", [lower_gemm(x, w, bias)], params, cfg)
    except AccumulatorOverflowError as exc:
        with pytest.raises(AccumulatorOverflowError) as info:
            simulate_gemm_layer_fast("fc", x, w, bias, params, cfg)
        assert str(info.value) == str(exc)
        return 0
    res, y = simulate_gemm_layer_fast("fc", x, w, bias, params, cfg)
    np.testing.assert_array_equal(y, ref.gemms[0].values)
    assert res.counters == ref.counters
    assert res.memory == ref.memory
    a, b = res.gemms[0], ref.gemms[0]
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.acc, b.acc)
    np.testing.assert_array_equal(a.valid_cycles, b.valid_cycles)
    assert (a.cycles, a.overflow_events, a.first_overflow, a.shape) == \
        (b.cycles, b.overflow_events, b.first_overflow, b.shape)
    return res.counters.overflow_events


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), acc_bits=st.integers(16, 32),
       policy=st.sampled_from(["wrap", "saturate", "error"]),
       wdtype=st.sampled_from([np.int8, np.int64]))
def test_fast_gemm_layer_equals_gemm_path(seed, acc_bits, policy, wdtype) -> None:
    args = _case(seed, acc_bits, policy, wdtype)
    _check_equal(args)
    x2 = np.random.default_rng(seed + 1).integers(-128, 128, size=args[0].shape)
    _check_equal((x2, *args[1:]))  # the same weight array again: prepared weights reused


def test_narrow_accumulator_overflows_in_fast_gemm() -> None:
    """The comparison really meets overflow events (16-bit saturating accumulators)."""
    assert _check_equal(_case(1, 16, "saturate", np.int8)) > 0


def test_fast_gemm_errors_as_gemm_path() -> None:
    x, w, bias, params, cfg = _case(2, 32, "wrap", np.int8)
    wide = w.astype(np.int64)
    wide[0, 0] = 300
    x_wide = x.copy()
    x_wide[1, 2] = -129
    for bad in ((x[:, :-1], w, bias), (x, w, bias[:-1]), (x, wide, bias), (x_wide, w, bias),
                (x, w, bias.astype(np.int64) + (1 << 31))):
        with pytest.raises(HwsimError) as info:
            simulate_gemm_layer_fast("fc", *bad, params, cfg)
        with pytest.raises(HwsimError) as ref:
            simulate_gemm_layer("fc", "gemm", [lower_gemm(*bad)], params, cfg)
        assert str(info.value) == str(ref.value)
    # float arrays holding integers are cast, as lower_gemm does
    _check_equal((x.astype(float), w.astype(float), bias, params, cfg))
