"""Fast-mode values: exact blocked GEMM and the overflow bound / sequential fallback
(specs/cycle_model.md §C9; arithmetic.md §7). Tolerance 0."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.arith import accumulate
from hwsim.sim.fast import exact_gemm_acc, exact_matmul


@pytest.mark.parametrize(("lo", "hi", "k"), [(-128, 128, 3000), (0, 256, 70), (-8, 8, 5),
                                             (-32768, 32768, 600), (0, 65536, 9)])
def test_exact_matmul_is_exact(lo: int, hi: int, k: int) -> None:
    """Blocks chosen so float32 / float64 BLAS partial sums are exact: equal to int64."""
    rng = np.random.default_rng(k)
    a = rng.integers(lo, hi, size=(17, k))
    w = rng.integers(-hi, hi, size=(k, 11))
    np.testing.assert_array_equal(exact_matmul(a, w), a.astype(np.int64) @ w.astype(np.int64))


def test_extreme_values_exact() -> None:
    """All operands at the extremes: the worst case for the float32 block bound."""
    a = np.full((3, 5000), 255, dtype=np.uint8)
    w = np.full((5000, 2), -128, dtype=np.int8)
    assert int(exact_matmul(a, w)[0, 0]) == 255 * -128 * 5000


@pytest.mark.parametrize("policy", ["wrap", "saturate"])
@pytest.mark.parametrize("bits", [16, 20, 32])
def test_exact_gemm_acc_follows_sequential_order(policy: str, bits: int) -> None:
    """§7: saturating/wrapping accumulators and event counts equal hwsim.arith.accumulate;
    outputs that cannot overflow take the exact-sum path, the others the sequential one."""
    rng = np.random.default_rng(bits)
    a = rng.integers(0, 256, size=(9, 50)).astype(np.uint8)
    w = rng.integers(-128, 128, size=(50, 7)).astype(np.int8)
    w[:, 0] = 0  # a column that can never overflow
    bias = rng.integers(-3000, 3000, size=7)
    acc, events, first = exact_gemm_acc(a, w, bias, bits, policy)
    products = a.astype(np.int64)[:, None, :] * w.astype(np.int64).T[None, :, :]
    ref, ref_events = accumulate(bias[None, :], products, bits, policy)
    np.testing.assert_array_equal(acc, ref)
    assert events == int(ref_events.sum())
    assert (first is None) == (events == 0)
    if bits == 16:
        assert events > 0
