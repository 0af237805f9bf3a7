"""Fast-mode conv layers given their input's format range instead of scanning the input
(``x_range`` of :func:`hwsim.sim.simulate.simulate_conv_layer_fast`, cycle_model.md §C9):
codes, per-GEMM values and accumulators, overflow counts, first overflow and counters equal
the scanning path's — also under narrow accumulators where outputs overflow — and a range
that does not fit the activation port falls back to the scan (same port error)."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.arith import RequantConfig, make_requant_params
from hwsim.errors import HwsimError
from hwsim.sim.config import ArrayConfig
from hwsim.sim.simulate import simulate_conv_layer_fast


def _case(seed: int, acc_bits: int, policy: str, lo: int, hi: int):
    rng = np.random.default_rng(seed)
    x = rng.integers(lo, hi + 1, size=(2, 4, 7, 6))
    wt = rng.integers(-128, 128, size=(6, 2, 3, 3))
    lim = 1 << (acc_bits - 1)
    bias = rng.integers(-lim // 4, lim // 4, size=6)
    params = make_requant_params(rng.uniform(1e-4, 1e-2, 6), RequantConfig(), zero_point=3)
    cfg = ArrayConfig(rows=4, cols=3, dataflow="ws", acc_bits=acc_bits, acc_overflow=policy)
    conv = dict(x_zero_point=int(np.clip(5, lo, hi)), strides=(1, 2), pads=(1, 1, 0, 1),
                dilations=(1, 1), group=2)
    return x, wt, bias, params, cfg, conv


@pytest.mark.parametrize("acc_bits,policy", [(32, "wrap"), (16, "saturate"), (16, "wrap"),
                                             (17, "saturate")])
@pytest.mark.parametrize("fmt", [(-128, 127), (0, 255)])
def test_format_range_equals_scan(acc_bits, policy, fmt) -> None:
    events = 0
    for seed in range(3):
        x, wt, bias, params, cfg, conv = _case(seed, acc_bits, policy, fmt[0] + 20, fmt[1])
        ref, y_ref = simulate_conv_layer_fast("c", x, wt, bias, params, cfg, **conv)
        res, y = simulate_conv_layer_fast("c", x, wt, bias, params, cfg, **conv, x_range=fmt)
        np.testing.assert_array_equal(y, y_ref)
        assert res.counters == ref.counters
        for a, b in zip(res.gemms, ref.gemms, strict=True):
            np.testing.assert_array_equal(a.values, b.values)
            np.testing.assert_array_equal(a.acc, b.acc)
            assert (a.overflow_events, a.first_overflow) == (b.overflow_events, b.first_overflow)
        events += res.counters.overflow_events
    if acc_bits == 16:
        assert events > 0  # the bound path really meets overflowing outputs


def test_range_wider_than_port_is_scanned() -> None:
    """An int16 format range on the 8-bit port: the codes are scanned, so codes that fit
    run (equal to no range given) and codes that do not raise the port error."""
    x, wt, bias, params, cfg, conv = _case(0, 32, "wrap", -128, 127)
    ref, y_ref = simulate_conv_layer_fast("c", x, wt, bias, params, cfg, **conv)
    res, y = simulate_conv_layer_fast("c", x, wt, bias, params, cfg, **conv,
                                      x_range=(-32768, 32767))
    np.testing.assert_array_equal(y, y_ref)
    assert res.counters == ref.counters
    x[0, 0, 0, 0] = 300
    with pytest.raises(HwsimError, match=r"codes in \[-128, 300\] do not fit"):
        simulate_conv_layer_fast("c", x, wt, bias, params, cfg, **conv,
                                 x_range=(-32768, 32767))


@pytest.mark.parametrize("policy", ["wrap", "saturate"])
def test_small_dtypes_equal_int64(policy) -> None:
    """int8 / uint8 weights and activations (their dtype range fits the 8-bit ports, so
    they are not scanned) give what the same codes in int64 give; int16 arrays on the
    8-bit ports are scanned (fit: equal; a code outside the port: the port error)."""
    for seed in range(3):
        x, wt, bias, params, cfg, conv = _case(seed, 16, policy, -128, 127)
        ref, y_ref = simulate_conv_layer_fast("c", x, wt, bias, params, cfg, **conv)
        for xd, wd in ((np.int8, np.int8), (np.int16, np.int16), (np.int64, np.int8)):
            res, y = simulate_conv_layer_fast("c", x.astype(xd), wt.astype(wd), bias, params,
                                              cfg, **conv)
            np.testing.assert_array_equal(y, y_ref)
            assert res.counters == ref.counters
        xu = x + 128
        conv_u = dict(conv, x_zero_point=133)
        ref, y_ref = simulate_conv_layer_fast("c", xu, wt, bias, params, cfg, **conv_u)
        res, y = simulate_conv_layer_fast("c", xu.astype(np.uint8), wt.astype(np.int8), bias,
                                          params, cfg, **conv_u)
        np.testing.assert_array_equal(y, y_ref)
        assert res.counters == ref.counters
    wide = wt.astype(np.int16)
    wide[0, 0, 0, 0] = 200
    with pytest.raises(HwsimError, match=r"weight operand: codes in \[-\d+, 200\] do not fit"):
        simulate_conv_layer_fast("c", x, wide, bias, params, cfg, **conv)
