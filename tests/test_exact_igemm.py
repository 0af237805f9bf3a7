"""The 16-bit integer product kernels against int64 numpy (specs/arithmetic.md §7.5).

Both kernels (the vector one where the CPU has AVX2, and the portable C one, forced) over
every source dtype, extreme values ±2^15, odd K, partial tiles of rows and columns,
strided operands, padding, strides and dilations; results must equal the exact sum modulo
2^32 (signed). Also: the engine picks the kernels only under the §7.5 bound, and results
do not depend on the path (float BLAS §7.4 vs integer §7.5).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.arith import RequantConfig, make_requant_params, requantize
from hwsim.arith.jit_arrays import f64_scales
from hwsim.errors import HwsimError
from hwsim.exact import accumulator, igemm
from hwsim.exact.im2col import conv_columns

pytestmark = pytest.mark.skipif(igemm._LIB is None, reason="C kernels not built")

KERNELS = ["vector", "portable"] if igemm.simd() else ["portable"]
DTYPES = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.int64, np.float64]


def wrap32(v: np.ndarray) -> np.ndarray:
    return ((v.astype(np.int64) + (1 << 31)) % (1 << 32)) - (1 << 31)


def conv_ref(x, w, bias, strides, pads, dilations, offset, pad_value):
    """bias + Σ w·(x_patch − offset), padding = pad_value, exact int64 [N, M, OH·OW]."""
    cols, oh, ow = conv_columns(np.asarray(x, dtype=np.int64), w.shape[2:], strides, pads,
                                dilations, pad_value, np.int64)
    r = w.reshape(w.shape[0], -1).astype(np.int64) @ (cols - offset)
    n = x.shape[0]
    return (r.reshape(w.shape[0], n, oh * ow).transpose(1, 0, 2)
            + bias[None, :, None]), oh, ow


@pytest.fixture(params=KERNELS)
def force(request):
    """Which C kernel runs: the vector one (AVX2) or the portable one (forced)."""
    old = igemm.use_portable(request.param == "portable")
    yield True
    igemm.use_portable(old)


@pytest.fixture(params=["rows", "cols"])
def matrix(request):
    """Which matmul kernel runs: weights broadcast, activations packed per block (``rows``:
    ``pack_weights(w)``), or activations broadcast, weights as the vector operand
    (``cols``: ``pack_weights(w, matrix=True)``, the engine's choice)."""
    return request.param == "cols"


@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_every_source_dtype(dtype, force, matrix):
    rng = np.random.default_rng(1)
    info = np.iinfo(np.int16)
    lo, hi = (info.min, info.max) if dtype not in (np.int8, np.uint8) else \
        (np.iinfo(dtype).min, np.iinfo(dtype).max)
    if dtype == np.uint16:
        lo, hi = 0, info.max
    for q, k, m in [(1, 1, 1), (17, 3, 7), (40, 33, 13), (5, 64, 6), (70, 129, 65),
                    (7, 16, 16), (2, 5, 33)]:
        a = rng.integers(lo, hi + 1, (q, k)).astype(dtype)
        w = rng.integers(info.min, info.max + 1, (m, k))
        b = rng.integers(-(1 << 31), 1 << 31, m)
        out = igemm.matmul_acc(a, igemm.pack_weights(w, matrix=matrix), b, force=force)
        ref = wrap32(a.astype(np.int64) @ w.T + b)
        assert np.array_equal(out, ref), (dtype, q, k, m)


def test_extremes_wrap_modulo_2_32(force, matrix):
    """All operands −2^15: every pair product is the one vpmaddwd case that wraps."""
    q, k, m = 33, 37, 11
    a = np.full((q, k), -(1 << 15), dtype=np.int16)
    w = np.full((m, k), -(1 << 15), dtype=np.int64)
    b = np.full(m, (1 << 31) - 1, dtype=np.int64)
    out = igemm.matmul_acc(a, igemm.pack_weights(w, matrix=matrix), b, force=force)
    assert np.array_equal(out, wrap32(a.astype(np.int64) @ w.T + b))


def test_offset_and_strided_operand(matrix):
    rng = np.random.default_rng(2)
    base = rng.integers(0, 256, (50, 90)).astype(np.uint8)
    a = base[::2, 3:80:3]  # strided rows and columns
    w = rng.integers(-128, 128, (9, a.shape[1]))
    b = rng.integers(-1000, 1000, 9)
    out = igemm.matmul_acc(a, igemm.pack_weights(w, matrix=matrix), b, offset=128)
    assert np.array_equal(out, (a.astype(np.int64) - 128) @ w.T + b)
    f64 = igemm.matmul_acc(a.T.copy().T, igemm.pack_weights(w, matrix=matrix), b, offset=128,
                           out=np.empty((a.shape[0], 9)))
    assert np.array_equal(f64, ((a.astype(np.int64) - 128) @ w.T + b).astype(np.float64))


@pytest.mark.parametrize("q, k, m", [(2000, 40, 70), (300, 700, 37), (49, 4608, 48),
                                     (1, 2048, 1000), (13, 31, 200)])
def test_matmul_blocks_and_thread_splits(q, k, m, force):
    """Shapes that split the rows among threads in several blocks, or the column tiles
    (few rows), with partial tiles at both ends."""
    rng = np.random.default_rng(q + k + m)
    a = rng.integers(0, 256, (q, k)).astype(np.uint8)
    w = rng.integers(-128, 128, (m, k)).astype(np.int8)
    b = rng.integers(-10**6, 10**6, m)
    pw = igemm.pack_weights(w, matrix=True)
    out = igemm.matmul_acc(a, pw, b, offset=7, force=force)
    want = (a.astype(np.int64) - 7) @ w.T.astype(np.int64) + b
    assert np.array_equal(out, want)
    out32 = igemm.matmul_acc(a, pw, b, offset=7, force=force,
                             out=np.empty((q, m), dtype=np.int32))
    assert out32.dtype == np.int32 and np.array_equal(out32, want)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_byte_quads_equal_pairs_and_numpy(dtype, force):
    """§7.5 "Byte quads": weights in [−64, 64] with 8-bit activations run the u8×s8 kernel.
    Worst-case lanes (activations at the range ends, weights ±64: pair sums ±32640), every
    K mod 4, partial tiles, offsets, strided rows, thread splits and int32 outputs equal
    the pair kernel and int64 numpy."""
    rng = np.random.default_rng(11 + (dtype == np.int8))
    info = np.iinfo(dtype)
    for q, k, m in [(1, 1, 1), (7, 2, 3), (13, 5, 17), (40, 63, 33), (300, 131, 40),
                    (2000, 64, 70), (1, 2048, 1000), (49, 1027, 48)]:
        a = rng.integers(info.min, info.max + 1, (q, k)).astype(dtype)
        w = rng.integers(-64, 65, (m, k)).astype(np.int8)
        a[: q // 2] = np.where(rng.random((q // 2, k)) < 0.5, info.min, info.max)
        w[: m // 2] = np.where(a[0] == info.max, 64, -64)[None, :] if q > 1 else 64
        b = rng.integers(-10**6, 10**6, m)
        pw = igemm.pack_weights(w, matrix=True)
        assert pw.quads is not None and pw.quads.shape == (-(-m // 16), -(-k // 4), 16)
        for offset in (0, 5, -128, int(info.min)):
            want = (a.astype(np.int64) - offset) @ w.T.astype(np.int64) + b
            got = igemm.matmul_acc(a, pw, b, offset=offset, force=force)
            pairs = igemm.matmul_acc(a, pw, b, offset=offset, force=force, quads=False)
            assert np.array_equal(got, want) and np.array_equal(pairs, want), (q, k, m, offset)
        out32 = igemm.matmul_acc(a[:, ::-1], pw, b, force=force,
                                 out=np.empty((q, m), dtype=np.int32))
        assert np.array_equal(out32, a[:, ::-1].astype(np.int64) @ w.T.astype(np.int64) + b)


def test_byte_quads_only_for_weights_within_64():
    """A weight of ±65 could saturate vpmaddubsw's int16 lane (255·130 > 32767): no quads;
    the pair kernel gives the exact result."""
    rng = np.random.default_rng(12)
    a = rng.integers(0, 256, (20, 30)).astype(np.uint8)
    for extreme in (65, -65):
        w = rng.integers(-64, 65, (9, 30))
        w[3, 7] = extreme
        pw = igemm.pack_weights(w, matrix=True)
        assert pw.quads is None and pw.colsum is None
        b = np.zeros(9, dtype=np.int64)
        assert np.array_equal(igemm.matmul_acc(a, pw, b), a.astype(np.int64) @ w.T)
    assert igemm.pack_weights(np.full((2, 3), 64), matrix=True).quads is not None
    assert igemm.pack_weights(np.full((2, 3), 64)).quads is None  # conv operand: no quads


@pytest.mark.parametrize("rounding", ["half_up", "half_away", "half_even", "floor",
                                      "toward_zero"])
def test_fused_requantization_equals_requantize(rounding, force):
    """§8.4 "Evaluation in float64" fused into the matrix kernels' stores: the codes equal
    ``requantize`` of the accumulators for every rounding, per-channel and per-tensor
    scales (ties among them), int8 / uint8 / int64 codes, narrowed clamps, partial tiles,
    both weight packings."""
    rng = np.random.default_rng(["half_up", "half_away", "half_even", "floor",
                                 "toward_zero"].index(rounding) + 50)
    cfg = RequantConfig(mode="dyadic", multiplier_bits=16, rounding=rounding)
    for q, k, m in [(1, 7, 5), (13, 64, 40), (300, 131, 33), (1, 2048, 70)]:
        a = rng.integers(0, 256, (q, k)).astype(np.uint8)
        w = rng.integers(-64, 65, (m, k)) if k != 131 else rng.integers(-300, 300, (m, k))
        b = rng.integers(-10**6, 10**6, m)
        pw = igemm.pack_weights(w, matrix=True)
        acc = a.astype(np.int64) @ w.T + b
        for channels, signed, narrow in ((m, True, False), (1, False, True), (m, True, True)):
            scale = np.exp2(rng.uniform(-14, -6, channels))
            scale[: channels // 2] = np.exp2(-rng.integers(1, 9))  # exact ties
            lo, hi = (-128, 127) if signed else (0, 255)
            z = int(rng.integers(lo, hi + 1))
            p = make_requant_params(scale, cfg, z, 8, signed,
                                    act_min=max(lo, z - 20) if narrow else None,
                                    act_max=min(hi, z + 30) if narrow else None)
            scales = np.broadcast_to(f64_scales(p), (m,))
            want = requantize(acc, p, channel_axis=1)
            for dt in (np.int8 if signed else np.uint8, np.int64):
                codes = np.empty((q, m), dtype=dt)
                fused = igemm.Float64Requant(scales, rounding, p.zero_point, p.act_min,
                                             p.act_max, codes)
                out = igemm.matmul_acc(a, pw, b, out=np.empty((q, m), np.int32),
                                       requant=fused, force=force)
                assert np.array_equal(out, acc) and np.array_equal(codes, want), (q, k, m, dt)
    with pytest.raises(HwsimError, match="fused requantization"):
        igemm.matmul_acc(a, pw, b, requant=igemm.Float64Requant(
            scales[:3], rounding, 0, -128, 127, np.empty((q, m), np.int8)))


CONV_CASES = [
    # N, C, H, W, M, KH, KW, strides, pads (t, l, b, r), dilations
    (2, 3, 9, 11, 5, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1)),
    (3, 4, 8, 8, 7, 7, 7, (2, 2), (3, 3, 3, 3), (1, 1)),
    (1, 5, 10, 9, 13, 3, 2, (2, 1), (0, 1, 2, 0), (2, 1)),
    (2, 16, 7, 7, 12, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1)),
    (1, 1, 4, 30, 1, 1, 5, (1, 3), (0, 4, 0, 4), (1, 2)),
    (2, 6, 3, 3, 6, 3, 3, (1, 1), (2, 2, 2, 2), (2, 2)),  # mostly padding
    (1, 2, 2, 3, 4, 2, 2, (1, 1), (4, 5, 3, 6), (1, 1)),  # pads wider than the input
    (2, 3, 13, 12, 5, 3, 3, (4, 3), (1, 0, 2, 1), (1, 1)),  # strides past the kernel
    (1, 2, 41, 39, 8, 3, 3, (2, 3), (1, 1, 1, 1), (2, 1)),  # one plane, two threads
    (2, 7, 12, 12, 9, 1, 1, (2, 2), (0, 0, 0, 0), (1, 1)),  # 1x1 stride 2: one phase
    (2, 130, 9, 8, 20, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1)),  # K/2 >= 512: strip first
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_geometries(case, force):
    n, c, h, wd, m, kh, kw, s, p, d = case
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (n, c, h, wd)).astype(np.int8)
    w = rng.integers(-127, 128, (m, c, kh, kw))
    b = rng.integers(-1000, 1000, m)
    ref, oh, ow = conv_ref(x, w, b, s, p, d, offset=0, pad_value=-7)
    rows_ref = ref.transpose(0, 2, 1).reshape(-1, m)
    # NCHW and rows [N·P, M] layouts, int64 and int32 (the register itself) outputs, int8
    # and int64 sources
    for src, dtype in ((x, np.int64), (x.astype(np.int64), np.int64), (x, np.int32)):
        for shape, strides, want in (((n, m, oh * ow), (m * oh * ow, oh * ow, 1), ref),
                                     ((n * oh * ow, m), (oh * ow * m, 1, m), rows_ref)):
            out = np.empty(shape, dtype=dtype)
            igemm.conv_acc(src, igemm.pack_conv_weights(w), b, kernel=(kh, kw), strides=s,
                           pads=p, dilations=d, offset=0, pad_value=-7, out=out,
                           out_strides=strides, oh=oh, ow=ow, force=force)
            assert np.array_equal(out, want), (src.dtype, dtype, shape)
    # centred float64 source with float64 output
    xc = x.astype(np.float64) + 7.0  # centred on z = −7: padding (real 0) is 0
    f64 = np.empty((n, m, oh * ow))
    igemm.conv_acc(xc, igemm.pack_conv_weights(w), b, kernel=(kh, kw), strides=s, pads=p,
                   dilations=d, offset=0, pad_value=0, out=f64,
                   out_strides=(m * oh * ow, oh * ow, 1), oh=oh, ow=ow, force=force)
    ref_c, _, _ = conv_ref(x.astype(np.int64) + 7, w, b, s, p, d, offset=0, pad_value=0)
    assert np.array_equal(f64, ref_c.astype(np.float64))


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_byte_quads(case, force):
    """§7.5 "Byte quads" for convolutions: weights in [−64, 64] and int8 / uint8 inputs run
    on byte-quad planes (channels padded to a multiple of 4); every geometry, offset and
    padding value in the input's 256-code window equals int64 numpy and the pair kernel,
    including the window's ends (pair sums ±32640); a padding value outside the window
    keeps the pair kernel."""
    n, c, h, wd, m, kh, kw, s, p, d = case
    rng = np.random.default_rng(13)
    w = rng.integers(-64, 65, (m, c, kh, kw))
    w[: m // 2] = np.where(rng.random((m // 2, c, kh, kw)) < 0.5, -64, 64)
    b = rng.integers(-10**6, 10**6, m)
    pw = igemm.pack_conv_weights(w)
    assert pw.conv_quads is not None
    assert pw.conv_quads.shape == (-(-m // igemm.MR), kh * kw * -(-c // 4), igemm.MR)
    for dt in (np.uint8, np.int8):
        info = np.iinfo(dt)
        x = np.where(rng.random((n, c, h, wd)) < 0.5, info.min, info.max).astype(dt)
        x[:, :, ::2] = rng.integers(info.min, info.max + 1, x[:, :, ::2].shape)
        for offset, pad_value in ((0, 0), (7, 7), (int(info.min), int(info.max)),
                                  (-3, int(info.min)), (0, int(info.max) + 1)):
            ref, oh, ow = conv_ref(x, w, b, s, p, d, offset=offset, pad_value=pad_value)
            for quads in (True, False):
                out = np.empty((n, m, oh * ow), dtype=np.int32)
                igemm.conv_acc(x, pw, b, kernel=(kh, kw), strides=s, pads=p, dilations=d,
                               offset=offset, pad_value=pad_value, out=out,
                               out_strides=(m * oh * ow, oh * ow, 1), oh=oh, ow=ow,
                               force=force, quads=quads)
                assert np.array_equal(out, ref), (dt, offset, pad_value, quads)
    w[0, 0, 0, 0] = 65
    assert igemm.pack_conv_weights(w).conv_quads is None


@settings(max_examples=60, deadline=None, derandomize=True)
@given(n=st.integers(1, 3), c=st.integers(1, 9), h=st.integers(1, 9), wd=st.integers(1, 9),
       m=st.integers(1, 14), kh=st.integers(1, 4), kw=st.integers(1, 4),
       sh=st.integers(1, 3), sw=st.integers(1, 3), dh=st.integers(1, 2), dw=st.integers(1, 2),
       pads=st.tuples(*[st.integers(0, 3)] * 4), zp=st.integers(-128, 255),
       seed=st.integers(0, 2**31))
def test_conv_random_shapes(n, c, h, wd, m, kh, kw, sh, sw, dh, dw, pads, zp, seed):
    t, left, b_, r = pads
    if h + t + b_ < dh * (kh - 1) + 1 or wd + left + r < dw * (kw - 1) + 1:
        return
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, c, h, wd)).astype(np.uint8)
    w = rng.integers(-(1 << 15), 1 << 15, (m, c, kh, kw))
    bias = rng.integers(-(1 << 31), 1 << 31, m)
    ref, oh, ow = conv_ref(x, w, bias, (sh, sw), pads, (dh, dw), offset=zp, pad_value=zp)
    out = np.empty((n, m, oh * ow), dtype=np.int64)
    igemm.conv_acc(x, igemm.pack_conv_weights(w), bias, kernel=(kh, kw), strides=(sh, sw),
                   pads=pads, dilations=(dh, dw), offset=zp, pad_value=zp, out=out,
                   out_strides=(m * oh * ow, oh * ow, 1), oh=oh, ow=ow, force=True)
    assert np.array_equal(out, wrap32(ref))


def test_large_layer_many_blocks_and_threads():
    """A layer large enough for several column blocks per thread (≥ 10^5 outputs)."""
    rng = np.random.default_rng(4)
    x = rng.integers(-128, 128, (2, 64, 30, 30)).astype(np.int8)
    w = rng.integers(-127, 128, (70, 64, 3, 3))
    b = rng.integers(-5000, 5000, 70)
    ref, oh, ow = conv_ref(x, w, b, (1, 1), (1, 1, 1, 1), (1, 1), 0, 3)
    out = np.empty((2, 70, oh * ow), dtype=np.int64)
    igemm.conv_acc(x, igemm.pack_conv_weights(w), b, kernel=(3, 3), strides=(1, 1),
                   pads=(1, 1, 1, 1), dilations=(1, 1), offset=0, pad_value=3, out=out,
                   out_strides=(70 * oh * ow, oh * ow, 1), oh=oh, ow=ow, force=True)
    assert np.array_equal(out, ref)


def test_engine_uses_kernels_only_under_the_bound():
    """§7.5 bound: int8 operands in a 32-bit register take the kernels; a 16-bit register
    (events possible) or int16 × int16 with a large K take §7.4."""
    b = np.zeros(4, dtype=np.int64)
    on = igemm.available()
    assert accumulator.int_path(128, 127, 4608, b, 32) is on
    assert not accumulator.int_path(128, 127, 4608, b, 16)
    assert not accumulator.int_path(32767, 32767, 4, b, 32)
    assert not accumulator.int_path(40000, 1, 1, b, 32)  # not an int16 operand


@pytest.mark.parametrize("layout", ["nchw", "rows"])
def test_engine_paths_agree(layout):
    """conv2d_acc and exact_gemm_acc give the same results with and without the kernels."""
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, (3, 10, 12, 12))
    w = rng.integers(-127, 128, (20, 10, 3, 3))
    b = rng.integers(-10**6, 10**6, 20)
    kwargs = dict(x_zero_point=-3, strides=(2, 1), pads=(1, 0, 1, 2), dilations=(1, 2),
                  group=1, acc_bits=32, policy="saturate", layout=layout)
    res = {}
    for on in (True, False):
        old = igemm.set_enabled(on)
        try:
            res[on] = accumulator.conv2d_acc(x, w, b, **kwargs)
            a = rng.integers(0, 256, (77, 90)) if on else res["a"]
            res["a"] = a
            res[(on, "g")] = accumulator.exact_gemm_acc(a, w.reshape(20, 90).T, b, 32, "wrap")
        finally:
            igemm.set_enabled(old)
    assert np.array_equal(res[True][0], res[False][0])
    assert res[True][1] == res[False][1] == 0
    assert np.array_equal(res[(True, "g")][0], res[(False, "g")][0])


def test_weight_cache_follows_the_values():
    """Packed weights are reused for the same array while its values are unchanged; an
    in-place edit, other values or non-int16 weights are never served from the cache."""
    rng = np.random.default_rng(6)
    w = rng.integers(-127, 128, (8, 3, 3, 3)).astype(np.int8)
    p1 = igemm.cached_weights(w, "conv")
    assert igemm.cached_weights(w, "conv") is p1
    assert p1.wmax == int(np.abs(w.astype(np.int64)).max())
    w[0, 0, 0, 0] = -w[0, 0, 0, 0] - 1 if w[0, 0, 0, 0] != -128 else 5
    p2 = igemm.cached_weights(w, "conv")
    assert p2 is not p1
    assert np.array_equal(p2.data, igemm.pack_conv_weights(w).data)
    assert igemm.cached_weights(w.copy(), "conv") is not p2
    w2 = w.reshape(8, -1)
    assert igemm.cached_weights(w2, "rows").k == 27
    cols = igemm.cached_weights(w2, "cols")  # same array, other kind: packed again
    assert (cols.rows, cols.k) == (27, 8)
    assert np.array_equal(cols.data, igemm.pack_weights(w2.T).data)
    assert igemm.cached_weights(np.full((2, 2), 1 << 15), "rows") is None
    assert igemm.cached_weights(np.full((2, 2), 0.5), "rows") is None
    with pytest.raises(HwsimError, match="kind"):
        igemm.cached_weights(w2, "nchw")


def test_weight_cache_forgets_dead_arrays():
    """Entries of garbage-collected arrays are dropped at the next call (the weakref
    callback itself takes no lock: it may run inside a collection anywhere)."""
    import gc

    w = np.ones((6, 4), dtype=np.int8)
    igemm.cached_weights(w, "rows")
    key = id(w)
    del w
    gc.collect()
    igemm.cached_weights(np.ones((2, 2), dtype=np.int8), "rows")
    assert key not in igemm._CACHE or igemm._CACHE[key][0]() is not None
