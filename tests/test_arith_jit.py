"""§6–§8: the Numba scalar kernels equal the numpy public API bit for bit, from njit code."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from hwsim.arith import (
    REQUANT_MODES,
    ROUNDING_MODES,
    RequantConfig,
    accumulate,
    make_requant_params,
    requantize,
    rounding_shift_right,
)
from hwsim.arith.jit import (
    MODE_CODES,
    POLICY_CODES,
    ROUNDING_CODES,
    accumulate_scalar,
    requant_scalar_args,
    requantize_scalar,
    rounding_shift_right_scalar,
)


@njit
def _requantize_kernel(acc, mult, shift, s32, mode, rnd, z, lo, hi, out_bits, signed, wrap):
    """A kernel-shaped caller: (N, C) accumulators, per-channel parameters."""
    out = np.empty(acc.shape, dtype=np.int64)
    per_channel = mult.shape[0] > 1
    for i in range(acc.shape[0]):
        for c in range(acc.shape[1]):
            k = c if per_channel else 0
            out[i, c] = requantize_scalar(
                acc[i, c], mult[k], shift[k], s32[k], mode, rnd, z, lo, hi, out_bits, signed, wrap
            )
    return out


@njit
def _shift_kernel(x, shift, code):
    out = np.empty(x.shape, dtype=np.int64)
    for i in range(x.shape[0]):
        out[i] = rounding_shift_right_scalar(x[i], shift[i], code)
    return out


@njit
def _accumulate_kernel(bias, products, bits, policy):
    acc = bias.copy()
    events = np.zeros(bias.shape, dtype=np.int64)
    for i in range(products.shape[0]):
        for k in range(products.shape[1]):
            acc[i], over = accumulate_scalar(acc[i], products[i, k], bits, policy)
            events[i] += over
    return acc, events


def test_codes_cover_every_name() -> None:
    """The code tables enumerate exactly the public names, in order."""
    assert list(MODE_CODES) == list(REQUANT_MODES)
    assert list(ROUNDING_CODES) == list(ROUNDING_MODES)
    assert list(POLICY_CODES) == ["wrap", "saturate", "error"]


@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_rounding_shift_kernel_equals_numpy(mode: str) -> None:
    """§6: 200k random int64 values and shifts, tolerance 0."""
    rng = np.random.default_rng(11)
    x = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, size=200_000, endpoint=True)
    x[::7] >>= rng.integers(0, 62, size=x[::7].shape)  # small magnitudes too
    s = rng.integers(0, 63, size=x.shape)
    assert np.array_equal(
        _shift_kernel(x, s, ROUNDING_CODES[mode]), rounding_shift_right(x, s, mode)
    )


def _random_params(rng: np.random.Generator, mode: str):
    c = int(rng.integers(1, 5))
    scale = np.exp2(rng.uniform(-24, 1, size=c))
    out_bits, signed = [(8, True), (8, False), (4, True), (16, True), (32, True)][rng.integers(5)]
    kw: dict[str, object] = {}
    if mode in ("dyadic", "custom"):
        kw = {
            "multiplier_bits": int(rng.integers(2, 32)),
            "rounding": str(rng.choice(ROUNDING_MODES)),
            "shift_min": 0,
            "shift_max": int(rng.integers(30, 63)),
        }
    if mode in ("custom", "tflite", "tflite_single") and rng.random() < 0.5:
        kw["output_overflow"] = "wrap"
    cfg = RequantConfig(mode=mode, **kw)
    lo, hi = (
        (-(1 << (out_bits - 1)), (1 << (out_bits - 1)) - 1) if signed else (0, (1 << out_bits) - 1)
    )
    z = (
        int(rng.integers(lo, hi, endpoint=True))
        if out_bits <= 16
        else int(rng.integers(-1000, 1000))
    )
    a_lo = int(rng.integers(lo, z + 1)) if rng.random() < 0.3 else None
    return make_requant_params(scale, cfg, z, out_bits, signed, act_min=a_lo)


@pytest.mark.parametrize("mode", REQUANT_MODES)
def test_requantize_kernel_equals_numpy(mode: str) -> None:
    """§8: 40 random parameter sets × 4096 accumulators each (full int32 range), tolerance 0."""
    rng = np.random.default_rng(MODE_CODES[mode] + 100)
    for _ in range(40):
        p = _random_params(rng, mode)
        acc = rng.integers(-(1 << 31), 1 << 31, size=(4096 // p.channels, p.channels))
        acc[:, :][rng.random(acc.shape) < 0.5] >>= 12
        acc[0, :] = -(1 << 31)
        acc[1, :] = (1 << 31) - 1
        got = _requantize_kernel(acc, *requant_scalar_args(p))
        assert np.array_equal(got, requantize(acc, p)), p


@pytest.mark.parametrize("policy", ["wrap", "saturate"])
def test_accumulate_kernel_equals_numpy(policy: str) -> None:
    """§7: 2000 accumulators × 256 products with frequent overflow, tolerance 0."""
    rng = np.random.default_rng(5)
    for bits in (12, 20, 32):
        lo = -(1 << (bits - 1))
        bias = rng.integers(lo, -lo, size=2000)
        products = rng.integers(lo // 16, -lo // 16, size=(2000, 256))
        want = accumulate(bias, products, bits, policy)
        got = _accumulate_kernel(bias, products, bits, POLICY_CODES[policy])
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
        assert want[1].sum() > 0
