"""Fast-mode conv layers computed from the input by the exact engine
(:func:`hwsim.sim.simulate.simulate_conv_layer_fast`, arithmetic.md §7.4) equal the GEMM
path on the lowered operands (:func:`hwsim.sim.lowering.lower_conv` +
:func:`hwsim.sim.simulate.simulate_gemm_layer`, cycle_model.md §C1, §C5–§C7): codes,
per-GEMM values, accumulators, cycles, overflow counts and first overflow, and the layer's
counters — including groups, depthwise, narrow accumulators and every policy. Tolerance 0."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.arith import AccumulatorOverflowError, RequantConfig, make_requant_params
from hwsim.sim.config import ArrayConfig
from hwsim.sim.lowering import assemble_conv, lower_conv
from hwsim.sim.simulate import simulate_conv_layer_fast, simulate_gemm_layer


def _layer(kind: str, seed: int, acc_bits: int, policy: str):
    rng = np.random.default_rng(seed)
    n, h, w = 2, 7, 6
    group, cg, mg = {"dense": (1, 5, 6), "grouped": (2, 3, 4), "depthwise": (6, 1, 2)}[kind]
    x = rng.integers(0, 256, size=(n, group * cg, h, w))
    wt = rng.integers(-128, 128, size=(group * mg, cg, 3, 2))
    lim = 1 << (acc_bits - 1)
    bias = rng.integers(-lim // 4, lim // 4, size=group * mg)
    params = make_requant_params(rng.uniform(1e-4, 1e-2, group * mg), RequantConfig(),
                                 zero_point=3)
    cfg = ArrayConfig(rows=4, cols=3, dataflow="ws", acc_bits=acc_bits, acc_overflow=policy,
                      act_bits=8, weight_bits=8)
    conv = dict(x_zero_point=7, strides=(2, 1), pads=(1, 0, 1, 1), dilations=(1, 2),
                group=group)
    return x, wt, bias, params, cfg, conv


def _both(x, wt, bias, params, cfg, conv):
    fast = simulate_conv_layer_fast("c", x, wt, bias, params, cfg, **conv)
    gemms, shape = lower_conv(x, wt, bias, **conv)
    ref = simulate_gemm_layer("c", "conv", gemms, params, cfg)
    return fast, (ref, assemble_conv([r.values for r in ref.gemms], shape))


@settings(max_examples=40)
@given(kind=st.sampled_from(["dense", "grouped", "depthwise"]), seed=st.integers(0, 2**31),
       acc_bits=st.integers(16, 32), policy=st.sampled_from(["wrap", "saturate", "error"]))
def test_fast_conv_layer_equals_gemm_path(kind, seed, acc_bits, policy) -> None:
    args = _layer(kind, seed, acc_bits, policy)
    try:
        gemms, shape = lower_conv(args[0], args[1], args[2], **args[5])
        ref = simulate_gemm_layer("c", "conv", gemms, args[3], args[4])
    except AccumulatorOverflowError as exc:
        with pytest.raises(AccumulatorOverflowError) as info:
            simulate_conv_layer_fast("c", *args[:5], **args[5])
        assert str(info.value) == str(exc)
        return
    (res, y) = simulate_conv_layer_fast("c", *args[:5], **args[5])
    np.testing.assert_array_equal(y, assemble_conv([r.values for r in ref.gemms], shape))
    assert res.counters == ref.counters
    assert len(res.gemms) == len(ref.gemms)
    for a, b in zip(res.gemms, ref.gemms, strict=True):
        np.testing.assert_array_equal(a.values, b.values)
        np.testing.assert_array_equal(a.acc, b.acc)
        np.testing.assert_array_equal(a.valid_cycles, b.valid_cycles)
        assert (a.cycles, a.overflow_events, a.first_overflow, a.shape) == \
            (b.cycles, b.overflow_events, b.first_overflow, b.shape)
    assert res.memory == ref.memory


def test_narrow_accumulator_overflows_in_fast_conv() -> None:
    """The case above really exercises overflow: 16-bit saturating accumulators."""
    (res, _), (ref, _) = _both(*_layer("dense", 1, 16, "saturate"))
    assert res.counters.overflow_events == ref.counters.overflow_events > 0
    assert res.counters.first_overflow == ref.counters.first_overflow is not None
