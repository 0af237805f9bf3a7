"""§7: fixed-width wrap/saturate and the sequential MAC accumulator."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwsim.arith import (
    AccumulatorOverflowError,
    accumulate,
    int_range,
    saturate_to_bits,
    wrap_to_bits,
)
from hwsim.arith.jit import POLICY_CODES, accumulate_scalar, wrap_scalar
from hwsim.errors import ConfigError, HwsimError


def ref_wrap(v: int, bits: int, signed: bool) -> int:
    """Independent model: the representative of v mod 2^bits in the target range."""
    m = v % (1 << bits)
    if signed and m >= 1 << (bits - 1):
        m -= 1 << bits
    return m


def ref_accumulate(bias: int, products: list[int], bits: int, policy: str) -> tuple[int, int]:
    """Python-int model of §7: bias first, products in ascending k, policy after each add."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    acc, events = bias, 0
    for k, p in enumerate(products):
        s = acc + p
        if not lo <= s <= hi:
            events += 1
            if policy == "error":
                raise AccumulatorOverflowError(f"k = {k}")
            s = ref_wrap(s, bits, True) if policy == "wrap" else min(max(s, lo), hi)
        acc = s
    return acc, events


@given(
    x=st.lists(st.integers(-(1 << 62), (1 << 62) - 1), min_size=1, max_size=12),
    bits=st.integers(1, 62),
    signed=st.booleans(),
)
def test_wrap_and_saturate_match_model(x: list[int], bits: int, signed: bool) -> None:
    """§7.3: wrap = two's complement modulo 2^bits; saturate = clamp; numpy == jit == model."""
    xa = np.array(x, dtype=np.int64)
    lo, hi = int_range(bits, signed)
    assert wrap_to_bits(xa, bits, signed).tolist() == [ref_wrap(v, bits, signed) for v in x]
    assert [wrap_scalar(v, bits, signed) for v in x] == [ref_wrap(v, bits, signed) for v in x]
    assert saturate_to_bits(xa, bits, signed).tolist() == [min(max(v, lo), hi) for v in x]


def test_int_range_values() -> None:
    """§7: signed and unsigned ranges."""
    assert int_range(8) == (-128, 127)
    assert int_range(8, signed=False) == (0, 255)
    assert int_range(32) == (-(1 << 31), (1 << 31) - 1)
    with pytest.raises(ConfigError, match=r"^bits: expected an integer in \[1, 63\], got 0"):
        int_range(0)


products_st = st.lists(st.integers(-(1 << 16), 1 << 16), min_size=1, max_size=24)


@given(
    bias=st.integers(-(1 << 15), (1 << 15) - 1),
    products=products_st,
    bits=st.integers(16, 24),
    policy=st.sampled_from(("wrap", "saturate")),
)
def test_accumulate_matches_sequential_model(
    bias: int, products: list[int], bits: int, policy: str
) -> None:
    """§7: numpy accumulate and the jit accumulate_scalar both equal the Python-int model."""
    want = ref_accumulate(bias, products, bits, policy)
    acc, events = accumulate(np.int64(bias), np.array(products, dtype=np.int64), bits, policy)
    assert (int(acc), int(events)) == want
    a, n = bias, 0
    for p in products:
        a, over = accumulate_scalar(a, p, bits, POLICY_CODES[policy])
        n += int(over)
    assert (a, n) == want


def test_accumulate_vectorised_rows_are_independent() -> None:
    """§7: each output element is its own register; events are counted per element."""
    rng = np.random.default_rng(7)
    products = rng.integers(-(1 << 14), 1 << 14, size=(3, 5, 40), dtype=np.int64)
    bias = rng.integers(-(1 << 14), 1 << 14, size=(5,), dtype=np.int64)
    for policy in ("wrap", "saturate"):
        acc, events = accumulate(bias, products, 16, policy)
        assert acc.shape == events.shape == (3, 5)
        for i in range(3):
            for j in range(5):
                want = ref_accumulate(int(bias[j]), products[i, j].tolist(), 16, policy)
                assert (int(acc[i, j]), int(events[i, j])) == want


@given(seed=st.integers(0, 2**32 - 1), policy=st.sampled_from(("wrap", "saturate")))
def test_accumulate_mixed_safe_and_overflowing_rows(seed: int, policy: str) -> None:
    """§7.3: rows that provably cannot overflow and rows that do, in one call, equal the model."""
    rng = np.random.default_rng(seed)
    bits, k = 12, 32
    scale = rng.choice([4, 64, 512], size=(6, 1))  # small products are safe, large ones are not
    products = rng.integers(-1, 2, size=(6, k)) * rng.integers(0, scale, size=(6, k))
    bias = rng.integers(-(1 << 10), 1 << 10, size=6)
    acc, events = accumulate(bias, products, bits, policy)
    for i in range(6):
        want = ref_accumulate(int(bias[i]), products[i].tolist(), bits, policy)
        assert (int(acc[i]), int(events[i])) == want


def test_wrap_is_order_independent_saturate_is_not() -> None:
    """§7.3: wrap gives the exact sum mod 2^bits in any order; saturate depends on the order."""
    p = np.array([100, 100, -100], dtype=np.int64)
    acc_w1, ev_w1 = accumulate(np.int64(0), p, 8, "wrap")
    acc_w2, ev_w2 = accumulate(np.int64(0), p[::-1].copy(), 8, "wrap")
    assert int(acc_w1) == int(acc_w2) == 100
    assert (int(ev_w1), int(ev_w2)) == (2, 0)  # 100, 200 -> -56, -156 -> 100
    acc_s1, ev_s1 = accumulate(np.int64(0), p, 8, "saturate")
    acc_s2, ev_s2 = accumulate(np.int64(0), p[::-1].copy(), 8, "saturate")
    assert (int(acc_s1), int(ev_s1)) == (27, 1)  # 100, 200 -> 127, 27
    assert (int(acc_s2), int(ev_s2)) == (100, 0)  # -100, 0, 100


def test_overflow_events_count_every_overflowing_addition() -> None:
    """§7.3: an event is one addition whose exact result is out of range."""
    p = np.array([127, 1, 1, -1, -1, -1], dtype=np.int64)
    acc, ev = accumulate(np.int64(0), p, 8, "saturate")
    assert (int(acc), int(ev)) == (124, 2)
    acc, ev = accumulate(np.int64(0), p, 8, "wrap")
    # 127, -128 (event), -127, -128, 127 (event), 126
    assert (int(acc), int(ev)) == (126, 2)


def test_int32_extremes() -> None:
    """§7.3: INT32_MAX + 1 wraps to INT32_MIN; saturates to INT32_MAX."""
    big = (1 << 31) - 1
    acc, ev = accumulate(np.int64(big), np.array([1], dtype=np.int64), 32, "wrap")
    assert (int(acc), int(ev)) == (-(1 << 31), 1)
    acc, ev = accumulate(np.int64(-(1 << 31)), np.array([-1], dtype=np.int64), 32, "saturate")
    assert (int(acc), int(ev)) == (-(1 << 31), 1)
    assert accumulate_scalar(big, 1, 32, POLICY_CODES["error"]) == (1 << 31, True)


def test_error_policy_names_the_position() -> None:
    """§7.3: policy 'error' raises AccumulatorOverflowError with output index and k."""
    products = np.zeros((2, 3, 4), dtype=np.int64)
    products[1, 2, 3] = 200
    with pytest.raises(
        AccumulatorOverflowError,
        match=r"^accumulator overflow at output index \(1, 2\), k = 3: 0 \+ 200 = 200 is outside",
    ):
        accumulate(np.zeros(3, dtype=np.int64), products, 8, "error")
    assert issubclass(AccumulatorOverflowError, HwsimError)
    acc, ev = accumulate(np.zeros(3, dtype=np.int64), products // 2, 8, "error")
    assert int(acc[1, 2]) == 100 and int(ev.sum()) == 0
    # The first overflowing addition in k order is reported, whichever row it is in.
    products[0, 1, :] = [60, 60, 60, 0]
    with pytest.raises(AccumulatorOverflowError, match=r"output index \(0, 1\), k = 2: 120 \+ 60"):
        accumulate(np.zeros(3, dtype=np.int64), products, 8, "error")


def test_invalid_arguments() -> None:
    """§7: bad width, policy and bias raise errors naming the field."""
    p = np.ones(3, dtype=np.int64)
    with pytest.raises(ConfigError, match=r"^bits: expected an integer in \[1, 32\], got 33"):
        accumulate(np.int64(0), p, 33, "wrap")
    with pytest.raises(ConfigError, match=r"^policy: unknown overflow policy 'clip'"):
        accumulate(np.int64(0), p, 16, "clip")
    with pytest.raises(HwsimError, match=r"^bias: the folded bias must fit the 8-bit accumulator"):
        accumulate(np.int64(300), p, 8, "wrap")
    with pytest.raises(HwsimError, match=r"^products: expected integers"):
        accumulate(np.int64(0), np.ones(3), 16, "wrap")
