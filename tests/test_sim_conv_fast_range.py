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
