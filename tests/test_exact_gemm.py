"""The exact integer engine (hwsim.exact, specs/arithmetic.md §7.4): the block plan of each
operand format, exactness at the extremes and across K-block boundaries, the patch matrix,
and the threaded splits. Tolerance 0."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.exact import conv_columns, exact_matmul, plan_product
from hwsim.exact.matmul import (
    F32_EXACT,
    blocked_matmul,
    parallel_matmul,
    parallel_split,
    set_threads,
    threads,
)
from hwsim.quant.fp8 import fp8_decode

FP8_MAX_CARRIED = int(np.ldexp(np.nanmax(fp8_decode(np.arange(256, dtype=np.uint8), "e4m3")), 9))


@pytest.mark.parametrize(("amax", "wmax", "k", "dtype", "block"), [
    (128, 128, 5000, np.float32, 1024),          # int8 x int8
    (255, 128, 5000, np.float32, 514),           # uint8 x int8
    (8, 8, 10**6, np.float32, 262144),           # int4 x int4
    (32768, 128, 5000, np.float64, 5000),        # int16 x int8: float32 blocks of 4 only
    (128, FP8_MAX_CARRIED, 5000, np.float64, 5000),  # int8 x fp8 e4m3 carried as v*2^9
    (2**40, 2**20, 10, np.int64, 10),            # products beyond 2^53
])
def test_plan_of_each_format(amax, wmax, k, dtype, block) -> None:
    """§7.4 table: float32 when blocks hold ≥ 256 terms, else float64, else int64."""
    plan = plan_product(amax, wmax, k)
    assert plan.dtype is dtype
    assert plan.block == block
    if dtype is np.float32:
        assert plan.block * amax * wmax <= F32_EXACT


def test_the_block_bound_matters() -> None:
    """Without K-blocks a float32 GEMM of uint8 x int8 extremes is wrong (the sum
    161,925,000 is not a float32); the blocked product is exact."""
    a = np.full((2, 5000), 255, dtype=np.uint8)
    w = np.full((5000, 3), 127, dtype=np.int8)
    naive = (a.astype(np.float32) @ w.astype(np.float32)).astype(np.int64)
    want = 255 * 127 * 5000
    assert int(naive[0, 0]) != want
    assert int(exact_matmul(a, w)[0, 0]) == want


@pytest.mark.parametrize("fmt", ["int8", "uint8xint8", "int4", "int16", "fp8"])
@pytest.mark.parametrize("k_offset", [-1, 0, 1, 7])
def test_exact_at_extremes_across_block_boundaries(fmt: str, k_offset: int) -> None:
    """Operands at the extremes of each format, K around a multiple of the block size:
    equal to int64 numpy."""
    rng = np.random.default_rng(zlib.crc32(f"{fmt}/{k_offset}".encode()))
    lo, hi, wlo, whi = {"int8": (-128, 127, -128, 127), "uint8xint8": (0, 255, -128, 127),
                        "int4": (-8, 7, -8, 7), "int16": (-32768, 32767, -128, 127),
                        "fp8": (-128, 127, -FP8_MAX_CARRIED, FP8_MAX_CARRIED)}[fmt]
    block = plan_product(max(-lo, hi), max(-wlo, whi), 10**9).block
    k = min(3 * block, 4000) + k_offset
    a = rng.choice([lo, hi], size=(9, k))
    w = rng.choice([wlo, whi], size=(k, 5))
    w[:, 0] = whi
    a[0] = hi  # one row and one column at the same extreme: the worst-case partial sums
    np.testing.assert_array_equal(exact_matmul(a, w), a.astype(np.int64) @ w.astype(np.int64))


def _columns_literal(x, kernel, strides, pads, dilations, fill):
    n, c, h, w = x.shape
    kh, kw = kernel
    oh = (h + pads[0] + pads[2] - dilations[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (w + pads[1] + pads[3] - dilations[1] * (kw - 1) - 1) // strides[1] + 1
    out = np.empty((c, kh, kw, n, oh, ow), dtype=np.int64)
    for ci in range(c):
        for i in range(kh):
            for j in range(kw):
                for b in range(n):
                    for r in range(oh):
                        for q in range(ow):
                            y = r * strides[0] + i * dilations[0] - pads[0]
                            z = q * strides[1] + j * dilations[1] - pads[1]
                            inside = 0 <= y < h and 0 <= z < w
                            out[ci, i, j, b, r, q] = x[b, ci, y, z] if inside else fill
    return out.reshape(c * kh * kw, n * oh * ow)


@settings(max_examples=40)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 3), c=st.integers(1, 3),
       kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       strides=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       dilations=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       pads=st.tuples(*[st.integers(0, 2)] * 4),
       dtype=st.sampled_from([np.float32, np.float64, np.int32, np.int64]))
def test_conv_columns_equals_literal_windows(seed, n, c, kernel, strides, dilations, pads,
                                             dtype) -> None:
    """Rows (c, kh, kw), columns (n, oh, ow), padding = fill; 1x1 unpadded shortcut too."""
    rng = np.random.default_rng(seed)
    h = 3 + dilations[0] * (kernel[0] - 1)
    w = 4 + dilations[1] * (kernel[1] - 1)
    x = rng.integers(-128, 128, size=(n, c, h, w))
    cols, oh, ow = conv_columns(x, kernel, strides, pads, dilations, -7, dtype)
    assert cols.dtype == dtype and cols.flags.c_contiguous
    np.testing.assert_array_equal(cols, _columns_literal(x, kernel, strides, pads, dilations,
                                                         -7))


def test_parallel_splits_equal_serial() -> None:
    """Row and column splits of a product, and element-wise splits, change no value."""
    rng = np.random.default_rng(3)
    before = threads()
    try:
        set_threads(2)
        for shape_l, shape_r in (((700, 300), (300, 60)), ((40, 300), (300, 2000)),
                                 ((2, 50, 300), (2, 300, 900))):
            left = rng.integers(-128, 128, size=shape_l).astype(np.float32)
            right = rng.integers(-128, 128, size=shape_r).astype(np.float32)
            np.testing.assert_array_equal(parallel_matmul(left, right), np.matmul(left, right))
            plan = plan_product(128, 128, shape_l[-1])
            np.testing.assert_array_equal(blocked_matmul(left, right, plan),
                                          np.matmul(left, right))
        arr = rng.integers(-1000, 1000, size=(3, 4, 200, 200))
        np.testing.assert_array_equal(parallel_split(lambda p: p * 3 - 1, arr, np.int64),
                                      arr * 3 - 1)
        one = arr[:1]
        np.testing.assert_array_equal(parallel_split(lambda p: p * 3 - 1, one, np.int64),
                                      one * 3 - 1)
    finally:
        set_threads(before)
