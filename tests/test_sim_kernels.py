"""The Numba kernels against the hwsim.arith definitions (arithmetic.md §7, §8;
specs/cycle_model.md §C9). Tolerance 0."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.arith import RequantConfig, accumulate, make_requant_params, requantize
from hwsim.arith.jit import POLICY_CODES, requant_scalar_args
from hwsim.sim.kernels import requantize_columns, sequential_accumulate


@pytest.mark.parametrize("policy", ["wrap", "saturate", "error"])
def test_sequential_accumulate_equals_arith(policy: str) -> None:
    """§7: the jitted sequential accumulator equals hwsim.arith.accumulate (values and event
    counts); under "error" it returns exact sums and reports the first overflow."""
    rng = np.random.default_rng(3)
    a = rng.integers(-128, 128, size=(5, 40)).astype(np.int64)
    w = rng.integers(-128, 128, size=(40, 4)).astype(np.int64)
    bias = rng.integers(-20000, 20000, size=4).astype(np.int64)
    ms, ns = (g.ravel().astype(np.int64) for g in np.meshgrid(np.arange(5), np.arange(4),
                                                               indexing="ij"))
    acc = np.empty(ms.size, dtype=np.int64)
    events = np.empty(ms.size, dtype=np.int64)
    first = sequential_accumulate(a, w, bias, ms, ns, 16, POLICY_CODES[policy], acc, events)
    products = a[:, None, :] * w.T[None, :, :]
    if policy == "error":
        exact = bias[None, :] + a @ w
        np.testing.assert_array_equal(acc.reshape(5, 4), exact)
        assert first >= 0
        return
    ref, ref_events = accumulate(bias[None, :], products, 16, policy)
    np.testing.assert_array_equal(acc.reshape(5, 4), ref)
    np.testing.assert_array_equal(events.reshape(5, 4), ref_events)
    assert ref_events.sum() > 0
    # first overflow: smallest (m, n, k) in row-major order
    lo, hi = -(1 << 15), (1 << 15) - 1
    best = None
    for m in range(5):
        for n in range(4):
            s = int(bias[n])
            for k in range(40):
                s += int(products[m, n, k])
                if not lo <= s <= hi:
                    best = (m * 4 + n) * 40 + k if best is None else best
                    s = min(max(s, lo), hi) if policy == "saturate" else (s - lo) % 65536 + lo
    assert first == best


@pytest.mark.parametrize("mode", ["tflite", "tflite_single", "float32", "dyadic", "custom"])
def test_requantize_columns_equals_arith(mode: str) -> None:
    """§8 per channel (column n) through requantize_scalar == hwsim.arith.requantize."""
    rng = np.random.default_rng(5)
    acc = rng.integers(-(1 << 24), 1 << 24, size=(33, 6))
    rq = RequantConfig(mode=mode, rounding="floor") if mode == "custom" else RequantConfig(
        mode=mode)
    params = make_requant_params(rng.uniform(1e-6, 1e-3, 6), rq, zero_point=-7)
    out = np.empty_like(acc)
    mult, shift, scale, *scalars = requant_scalar_args(params)
    requantize_columns(acc, np.array(mult), np.array(shift), np.array(scale), *scalars, out)
    np.testing.assert_array_equal(out, requantize(acc, params, channel_axis=1))
