"""The in-place bounded rounding shift used by the requantizer equals the §6 definition
(:func:`hwsim.arith.rounding_shift_right`) for every mode, shift 0..62 and |x| < 2^62."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwsim.arith import ROUNDING_MODES, rounding_shift_right
from hwsim.arith.rounding import rounding_shift_right_bounded

LIM = (1 << 62) - 1


def _edges() -> np.ndarray:
    """Ties, neighbours of ties, ±1, 0 and the extremes for every shift."""
    vals = [0, 1, -1, LIM, -LIM]
    for n in range(1, 62):
        t = 1 << (n - 1)
        for q in (-3, -2, -1, 0, 1, 2, 3):
            base = q << n
            vals += [base + t, base + t - 1, base + t + 1, base, base - 1]
    return np.array([v for v in vals if abs(v) <= LIM], dtype=np.int64)


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
def test_bounded_equals_definition_on_edges(rounding: str) -> None:
    x = _edges()
    for n in range(63):
        shift = np.full(x.shape, n, dtype=np.int64)
        want = rounding_shift_right(x, shift, rounding)
        got = rounding_shift_right_bounded(x.copy(), shift, rounding)
        np.testing.assert_array_equal(got, want, err_msg=f"shift {n}")


@given(st.lists(st.integers(-LIM, LIM), min_size=1, max_size=40),
       st.lists(st.integers(0, 62), min_size=1, max_size=4), st.sampled_from(ROUNDING_MODES))
def test_bounded_equals_definition_random(xs, shifts, rounding) -> None:
    """Per-channel shifts broadcast along the last axis, as in requantize."""
    x = np.array(xs, dtype=np.int64)[:, None].repeat(len(shifts), axis=1)
    s = np.array(shifts, dtype=np.int64)[None, :]
    np.testing.assert_array_equal(rounding_shift_right_bounded(x.copy(), s, rounding),
                                  rounding_shift_right(x, s, rounding))
