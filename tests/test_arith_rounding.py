"""§6: the rounding right shift, numpy and Numba versions, against an exact rational model."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwsim.arith import ROUNDING_MODES, rounding_shift_right
from hwsim.arith.jit import ROUNDING_CODES, rounding_shift_right_scalar
from hwsim.errors import ConfigError

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


def ref_round(v: Fraction, mode: str) -> int:
    """Independent rational model of the five §6 rounding modes."""
    fl = math.floor(v)
    frac = v - fl
    half = Fraction(1, 2)
    if mode == "floor":
        return fl
    if mode == "toward_zero":
        return math.trunc(v)
    if frac > half:
        return fl + 1
    if frac < half:
        return fl
    if mode == "half_up":
        return fl + 1
    if mode == "half_away":
        return fl + 1 if v > 0 else fl
    return fl + (fl % 2)  # half_even: move to the even neighbour


def jit_shift(x: np.ndarray, shift: np.ndarray, mode: str) -> np.ndarray:
    code = ROUNDING_CODES[mode]
    xs, ss = np.broadcast_arrays(np.asarray(x, dtype=np.int64), np.asarray(shift, dtype=np.int64))
    out = [
        rounding_shift_right_scalar(int(a), int(s), code)
        for a, s in zip(xs.ravel(), ss.ravel(), strict=True)
    ]
    return np.array(out, dtype=np.int64).reshape(xs.shape)


IMPLS = {"numpy": rounding_shift_right, "jit": jit_shift}


def _edge_values(shift: int) -> list[int]:
    """INT64/INT32 extremes, 0, ±1 and the ties / near-ties of ``shift``."""
    vals = [0, 1, -1, INT64_MIN, INT64_MAX, -(1 << 31), (1 << 31) - 1]
    if shift > 0:
        h = 1 << (shift - 1)
        for k in (-3, -2, -1, 0, 1, 2, 3):
            base = k << shift
            vals += [base + h, base + h - 1, base + h + 1, base - h]
    return [v for v in vals if INT64_MIN <= v <= INT64_MAX]


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_every_shift_edges_match_rational(impl: str, mode: str) -> None:
    """§6: every shift 0..62 on extremes, ±1, 0 and ties, tolerance 0."""
    fn = IMPLS[impl]
    for shift in range(63):
        xs = np.array(_edge_values(shift), dtype=np.int64)
        got = fn(xs, np.int64(shift), mode)
        want = [ref_round(Fraction(int(x), 1 << shift), mode) for x in xs]
        assert got.tolist() == want, (shift, mode)


@pytest.mark.parametrize("impl", sorted(IMPLS))
@given(
    x=st.lists(st.integers(INT64_MIN, INT64_MAX), min_size=1, max_size=16),
    shift=st.integers(0, 62),
    mode=st.sampled_from(ROUNDING_MODES),
)
def test_random_int64_match_rational(impl: str, x: list[int], shift: int, mode: str) -> None:
    """§6: random int64 inputs and shifts, every mode, against the rational model."""
    got = IMPLS[impl](np.array(x, dtype=np.int64), shift, mode)
    assert got.tolist() == [ref_round(Fraction(v, 1 << shift), mode) for v in x]


@given(
    k=st.integers(-(1 << 20), 1 << 20),
    shift=st.integers(1, 40),
)
def test_ties_per_mode(k: int, shift: int) -> None:
    """§6: an exact tie (k + 1/2) goes up / away / to even / down / toward zero."""
    x = np.int64((k << shift) + (1 << (shift - 1)))  # = (k + 1/2) · 2^shift
    assert int(rounding_shift_right(x, shift, "half_up")) == k + 1
    assert int(rounding_shift_right(x, shift, "half_away")) == (k + 1 if k >= 0 else k)
    assert int(rounding_shift_right(x, shift, "half_even")) == (k if k % 2 == 0 else k + 1)
    assert int(rounding_shift_right(x, shift, "floor")) == k
    assert int(rounding_shift_right(x, shift, "toward_zero")) == (k if k >= 0 else k + 1)


def test_per_element_shift_broadcasts() -> None:
    """§6: shift may be an array broadcast against x."""
    x = np.array([[5, -5, 6, -6]], dtype=np.int64)
    s = np.array([[0], [1], [2]], dtype=np.int64)
    got = rounding_shift_right(x, s, "half_even")
    assert got.tolist() == [[5, -5, 6, -6], [2, -2, 3, -3], [1, -1, 2, -2]]


def test_invalid_arguments_name_the_field() -> None:
    """§6: unknown mode and out-of-range shift are ConfigErrors naming the field."""
    with pytest.raises(ConfigError, match=r"^rounding: unknown rounding mode 'nearest'"):
        rounding_shift_right(np.int64(1), 1, "nearest")
    with pytest.raises(ConfigError, match=r"^shift: expected integers in \[0, 62\]"):
        rounding_shift_right(np.int64(1), 63, "floor")
    with pytest.raises(ConfigError, match=r"^shift: expected integers in \[0, 62\]"):
        rounding_shift_right(np.int64(1), -1, "floor")
    with pytest.raises(ConfigError, match=r"^x: expected an integer array"):
        rounding_shift_right(np.float64(1.5), 1, "floor")
