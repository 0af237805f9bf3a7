"""§8, §10: the golden model's Numba element-wise kernels equal the numpy pipeline bit for bit.

``golden_ops.requantize_acc`` / ``rescale`` / ``add`` / ``maxpool`` run the kernels of
:mod:`hwsim.arith.jit_arrays`; the references are :func:`hwsim.arith.requantize` itself
and the numpy functions kept in :mod:`hwsim.reference.golden_ops` (``add_numpy``,
``maxpool_numpy``). Seeded random arrays over every requant mode, rounding, output width,
signedness, per-channel / per-tensor block and wrap / saturate output stage, with the edge
values (int32 minimum and maximum accumulators, exact ties); errors keep their messages.
Each test runs with one thread and with the rows cut into three parallel ranges.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.arith import (
    REQUANT_MODES,
    ROUNDING_MODES,
    RequantConfig,
    RequantParams,
    jit_arrays,
    make_requant_params,
    requantize,
)
from hwsim.errors import HwsimError
from hwsim.exact import matmul
from hwsim.reference import golden_ops as ops

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
#: (out_bits, signed) of the output formats tried.
FORMATS = [(8, True), (8, False), (4, True), (16, True), (16, False), (32, True)]


@pytest.fixture(params=[1, 3], ids=["serial", "threads3"], autouse=True)
def threads(request, monkeypatch):
    """Run each test in the calling thread, then with 3 row ranges in the thread pool."""
    monkeypatch.setattr(jit_arrays, "PARALLEL_MIN_ELEMENTS", 1 if request.param > 1 else 1 << 62)
    before = matmul.threads()
    matmul.set_threads(request.param)
    yield request.param
    matmul.set_threads(before)


def _configs(mode: str) -> list[RequantConfig]:
    """Every rounding / output stage ``mode`` accepts."""
    wraps = ["saturate", "wrap"] if mode in ("tflite", "tflite_single", "custom") else [
        "saturate"]
    if mode in ("dyadic", "custom"):
        return [RequantConfig(mode=mode, multiplier_bits=b, rounding=r, shift_max=s,
                              output_overflow=o)
                for r in ROUNDING_MODES for o in wraps for b, s in ((16, 62), (3, 6))]
    return [RequantConfig(mode=mode, output_overflow=o) for o in wraps]


def _params(rng: np.random.Generator, cfg: RequantConfig, channels: int) -> RequantParams:
    """Random per-channel (or per-tensor) parameters, tie-prone scales (1/2, 1/4, 3/2)
    among them, a random zero point and sometimes a narrowed activation range."""
    out_bits, signed = FORMATS[int(rng.integers(len(FORMATS)))]
    scale = np.exp2(rng.uniform(-24, 1, size=channels))
    scale[rng.random(channels) < 0.3] = rng.choice([0.5, 0.25, 1.5])
    lo, hi = (-(1 << (out_bits - 1)), (1 << (out_bits - 1)) - 1) if signed else (
        0, (1 << out_bits) - 1)
    z = int(rng.integers(lo, hi, endpoint=True)) if out_bits <= 16 else int(
        rng.integers(-1000, 1000))
    a_lo = int(rng.integers(lo, z + 1)) if rng.random() < 0.3 else None
    a_hi = int(rng.integers(z, hi, endpoint=True)) if rng.random() < 0.3 else None
    return make_requant_params(scale, cfg, z, out_bits, signed, act_min=a_lo, act_max=a_hi)


def _accumulators(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """int32 accumulators over the whole range, many small ones (ties at small shifts), and
    the int32 minimum and maximum."""
    acc = rng.integers(INT32_MIN, INT32_MAX, size=shape, endpoint=True)
    small = rng.random(shape)
    acc[small < 0.4] >>= 16
    acc[small < 0.2] >>= 10
    flat = acc.reshape(-1)
    flat[::97] = INT32_MIN
    flat[1::97] = INT32_MAX
    return acc


@pytest.mark.parametrize("mode", REQUANT_MODES)
def test_requantize_acc_equals_requantize(mode: str) -> None:
    """§8: conv (N, C, H, W) and gemm (N, C) accumulators, per-channel and per-tensor
    blocks, every rounding / output stage of the mode: codes equal requantize's."""
    rng = np.random.default_rng(list(REQUANT_MODES).index(mode) + 40)
    for cfg in _configs(mode):
        for shape in ((2, 5, 7, 9), (33, 6)):
            for channels in (shape[1], 1):
                p = _params(rng, cfg, channels)
                acc = _accumulators(rng, shape)
                got = ops.requantize_acc(acc, p)
                assert got.dtype == np.int64 and got.shape == acc.shape
                assert np.array_equal(got, requantize(acc, p, channel_axis=1)), (cfg, p)


@pytest.mark.parametrize("mode", REQUANT_MODES)
def test_rescale_equals_requantize_of_centred_codes(mode: str) -> None:
    """§10.3: ``rescale`` equals ``requantize(q − z, params)`` (channels on the last axis)."""
    rng = np.random.default_rng(list(REQUANT_MODES).index(mode) + 70)
    for cfg in _configs(mode):
        for channels in (4, 1):
            p = _params(rng, cfg, channels)
            q = rng.integers(-(1 << 15), 1 << 15, size=(3, 50, 4))
            z = int(rng.integers(-300, 300))
            got = ops.rescale(q, zero_point=z, params=p)
            assert np.array_equal(got, requantize(q - z, p)), (cfg, p)


def test_requantize_acc_other_dtypes_and_layouts() -> None:
    """int32 / int8 / uint16 accumulators and a transposed (non-contiguous) array."""
    rng = np.random.default_rng(3)
    p = _params(rng, RequantConfig(mode="tflite"), 6)
    acc = _accumulators(rng, (4, 6, 5))
    for a in (acc.astype(np.int32), (acc >> 24).astype(np.int8),
              (acc & 0xFFFF).astype(np.uint16), np.asfortranarray(acc)):
        assert np.array_equal(ops.requantize_acc(a, p), requantize(a, p, channel_axis=1))


def _message(fn, *args, **kwargs) -> str:
    with pytest.raises(HwsimError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def test_errors_are_the_numpy_pipelines() -> None:
    """Accumulators outside int32, a float array and a channel-count mismatch raise
    requantize's errors, with its messages."""
    rng = np.random.default_rng(4)
    p = _params(rng, RequantConfig(mode="dyadic"), 3)
    acc = _accumulators(rng, (2, 3, 40))
    for bad in (INT32_MAX + 1, INT32_MIN - 1):
        a = acc.copy()
        a[1, 2, 17] = bad
        want = _message(requantize, a, p, channel_axis=1)
        assert "int32 range" in want
        assert _message(ops.requantize_acc, a, p) == want
    assert _message(ops.requantize_acc, acc.astype(np.float64), p) == _message(
        requantize, acc.astype(np.float64), p, channel_axis=1)
    assert _message(ops.requantize_acc, acc[:, :2], p) == _message(
        requantize, acc[:, :2], p, channel_axis=1)
    q = np.full((2, 3), INT32_MAX, dtype=np.int64)
    assert _message(ops.rescale, q, zero_point=-1, params=p) == _message(requantize, q + 1, p)


def _add_blocks(rng: np.random.Generator, cfg: RequantConfig, out_cfg: RequantConfig,
                in_bits: int) -> tuple[dict, int]:
    """§10.1 blocks as the compiler makes them (hwsim.compiler.requant.add_requant) from
    random input / output scales."""
    sa, sb, so = np.exp2(rng.uniform(-8, 0, size=3))
    shift = ops.add_left_shift(in_bits)
    twice = 2.0 * max(sa, sb)
    wide = dict(out_bits=32, out_signed=True, act_min=INT32_MIN, act_max=INT32_MAX)
    out_bits, signed = FORMATS[int(rng.integers(len(FORMATS) - 1))]
    zo = int(rng.integers(0, 1 << (out_bits - 1)))
    return {"pa": make_requant_params(sa / twice, cfg, 0, **wide),
            "pb": make_requant_params(sb / twice, cfg, 0, **wide),
            "po": make_requant_params(twice / ((1 << shift) * so), out_cfg, zo,
                                      out_bits=out_bits, out_signed=signed)}, shift


@pytest.mark.parametrize("mode", REQUANT_MODES)
def test_add_equals_numpy(mode: str) -> None:
    """§10.1: the fused add equals the numpy pipeline for every rounding / output stage,
    8- and 16-bit inputs, and for blocks of different modes (the run-time-code path)."""
    rng = np.random.default_rng(list(REQUANT_MODES).index(mode) + 90)
    other = RequantConfig(mode="float32")
    for cfg in _configs(mode):
        for out_cfg in (cfg, other):
            for in_bits in (8, 16):
                blocks, shift = _add_blocks(rng, cfg, out_cfg, in_bits)
                half = 1 << (in_bits - 1)
                qa = rng.integers(-half, half, size=(2, 3, 31, 7))
                qb = rng.integers(-half, half, size=qa.shape)
                qa.reshape(-1)[:2], qb.reshape(-1)[:2] = (-half, half - 1), (half - 1, -half)
                za, zb = (int(v) for v in rng.integers(-half, half, size=2))
                got = ops.add(qa, qb, za=za, zb=zb, left_shift=shift, **blocks)
                want = ops.add_numpy(qa, qb, za=za, zb=zb, left_shift=shift, **blocks)
                assert got.dtype == np.int64 and np.array_equal(got, want), (cfg, out_cfg)


def test_add_broadcast_and_errors_are_the_numpy_pipelines() -> None:
    """Broadcasting shapes take the numpy path; an intermediate outside int32 (input shifted
    too far, or the sum of the two rescaled inputs) raises requantize's error."""
    rng = np.random.default_rng(5)
    cfg = RequantConfig(mode="custom", multiplier_bits=31)
    blocks, shift = _add_blocks(rng, cfg, cfg, 8)
    qa = rng.integers(-128, 128, size=(2, 3, 4, 5))
    qb = rng.integers(-128, 128, size=(1, 3, 1, 1))
    assert np.array_equal(ops.add(qa, qb, za=1, zb=2, left_shift=shift, **blocks),
                          ops.add_numpy(qa, qb, za=1, zb=2, left_shift=shift, **blocks))
    qb = rng.integers(-128, 128, size=qa.shape)
    want = _message(ops.add_numpy, qa, qb, za=1, zb=2, left_shift=24, **blocks)
    assert "int32 range" in want
    assert _message(ops.add, qa, qb, za=1, zb=2, left_shift=24, **blocks) == want
    unit = make_requant_params(1.0, cfg, 0, out_bits=32, out_signed=True,
                               act_min=INT32_MIN, act_max=INT32_MAX)
    sums = dict(blocks, pa=unit, pb=unit)  # (q − z)·2^23 twice: the sum reaches 2^31
    big = np.full((3, 4), 127, dtype=np.int64)
    want = _message(ops.add_numpy, big, big, za=-128, zb=-128, left_shift=23, **sums)
    assert _message(ops.add, big, big, za=-128, zb=-128, left_shift=23, **sums) == want


@pytest.mark.parametrize("seed", range(4))
def test_maxpool_equals_numpy(seed: int) -> None:
    """§10.4: random kernels, strides, pads (windows all in the padding included),
    dilations; codes below qmin so that padding can win; int64 / int32 / uint8 codes."""
    rng = np.random.default_rng(seed + 20)
    for _ in range(30):
        kernel = tuple(int(v) for v in rng.integers(1, 5, size=2))
        dil = tuple(int(v) for v in rng.integers(1, 3, size=2))
        strides = tuple(int(v) for v in rng.integers(1, 4, size=2))
        pads = tuple(int(rng.integers(0, kernel[i % 2] * dil[i % 2] + 1)) for i in range(4))
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 5)),
                 int(rng.integers(kernel[0] * dil[0], 20)),
                 int(rng.integers(kernel[1] * dil[1], 20)))
        qmin = int(rng.integers(-128, 0))
        q = rng.integers(-200, 128, size=shape)
        for codes in (q, q.astype(np.int32), (q & 0xFF).astype(np.uint8)):
            kw = dict(kernel=kernel, strides=strides, pads=pads, dilations=dil, qmin=qmin)
            got = ops.maxpool(codes, **kw)
            assert got.dtype == np.int64
            assert np.array_equal(got, ops.maxpool_numpy(codes, **kw)), kw


def test_golden_sized_arrays() -> None:
    """ResNet-shaped calls (the sizes the benchmark runs): requantize, add and maxpool."""
    rng = np.random.default_rng(9)
    cfg = RequantConfig(mode="dyadic")
    p = _params(rng, cfg, 64)
    acc = rng.integers(-(1 << 20), 1 << 20, size=(2, 64, 56, 56))
    assert np.array_equal(ops.requantize_acc(acc, p), requantize(acc, p, channel_axis=1))
    blocks, shift = _add_blocks(rng, cfg, cfg, 8)
    qa, qb = (rng.integers(-128, 128, size=(2, 64, 28, 28)) for _ in range(2))
    assert np.array_equal(ops.add(qa, qb, za=-3, zb=5, left_shift=shift, **blocks),
                          ops.add_numpy(qa, qb, za=-3, zb=5, left_shift=shift, **blocks))
    q = rng.integers(-128, 128, size=(2, 64, 56, 56))
    kw = dict(kernel=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1), dilations=(1, 1), qmin=-128)
    assert np.array_equal(ops.maxpool(q, **kw), ops.maxpool_numpy(q, **kw))


@pytest.mark.parametrize("mode", REQUANT_MODES)
def test_channels_last_equals_requantize(mode: str) -> None:
    """Channels on the last axis (a GEMM's [M, N] accumulators, the channel-last kernel),
    large enough to be split among threads: codes equal requantize's."""
    rng = np.random.default_rng(list(REQUANT_MODES).index(mode) + 90)
    for cfg in _configs(mode)[:3]:
        for channels in (37, 1):
            p = _params(rng, cfg, channels)
            acc = _accumulators(rng, (2100, 37))
            got = ops.requantize_acc(acc, p)
            assert np.array_equal(got, requantize(acc, p, channel_axis=1)), (cfg, p)
            three_d = acc.reshape(2100, 37, 1)
            assert np.array_equal(ops.requantize_acc(three_d, p),
                                  requantize(three_d, p, channel_axis=1))


@pytest.mark.parametrize("signed", [True, False], ids=["int8", "uint8"])
def test_compact_codes_in_and_out(signed: bool) -> None:
    """The golden model's compact codes: requantize, add and max pool write int8 / uint8
    codes of an 8-bit output format and the add and max pool read them, every value equal
    to the int64 path (random modes and output stages; 8-bit formats only)."""
    rng = np.random.default_rng(31 + signed)
    dt = np.int8 if signed else np.uint8
    lo, hi = (-128, 127) if signed else (0, 255)
    for mode in REQUANT_MODES:
        for cfg in _configs(mode)[:4]:
            z = int(rng.integers(lo, hi + 1))
            p = make_requant_params(np.exp2(rng.uniform(-20, -4, 16)), cfg, z, out_bits=8,
                                    out_signed=signed)
            acc = rng.integers(-(1 << 24), 1 << 24, size=(2, 16, 9, 11))
            want = ops.requantize_acc(acc, p)
            got = ops.requantize_acc(acc.astype(np.int32), p, out_dtype=dt)
            assert got.dtype == dt and np.array_equal(got, want), cfg
            blocks, shift = _add_blocks(rng, cfg, cfg, 8)
            blocks["po"] = make_requant_params(float(np.exp2(rng.uniform(-3, 3))) / (1 << shift),
                                               cfg, z, out_bits=8, out_signed=signed)
            qa, qb = (rng.integers(lo, hi + 1, size=(2, 3, 7, 5)) for _ in range(2))
            za, zb = (int(v) for v in rng.integers(lo, hi + 1, size=2))
            want = ops.add(qa, qb, za=za, zb=zb, left_shift=shift, **blocks)
            got = ops.add(qa.astype(dt), qb.astype(dt), za=za, zb=zb, left_shift=shift,
                          out_dtype=dt, **blocks)
            assert got.dtype == dt and np.array_equal(got, want), cfg
    q = rng.integers(lo, hi + 1, size=(2, 5, 13, 12))
    kw = dict(kernel=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1), dilations=(1, 1), qmin=lo)
    got = ops.maxpool(q.astype(dt), out_dtype=dt, **kw)
    assert got.dtype == dt and np.array_equal(got, ops.maxpool_numpy(q, **kw))
    with pytest.raises(ValueError, match="out_dtype"):
        jit_arrays.requantize_array(acc, p, 1, out_dtype=np.int16)


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
def test_float64_evaluation_at_its_limits(rounding: str) -> None:
    """§8.4 "Evaluation in float64": dyadic / custom parameters with |m| < 2^21 and
    shift ≤ 52 under a saturating stage run the float64 kernel, the others the int64 one;
    both equal requantize at the limits (21- and 22-bit multipliers, shifts 52 and 53,
    int32 extremes, exact ties, int32 and int64 accumulators, channels last and NCHW, an
    offset)."""
    rng = np.random.default_rng(ROUNDING_MODES.index(rounding) + 120)
    cases = [  # (mode, multiplier_bits, scale exponent range, output stage, float64 path)
        ("dyadic", 21, (-20, 0), "saturate", True),
        ("custom", 22, (-20, 0), "saturate", False),
        ("dyadic", 16, (-37, -36.01), "saturate", True),  # shifts 51..52
        ("dyadic", 16, (-45, -40), "saturate", False),  # shifts above 52
        ("custom", 12, (-10, 0), "wrap", False),
    ]
    for mode, bits, (e_lo, e_hi), stage, f64 in cases:
        cfg = RequantConfig(mode=mode, multiplier_bits=bits, rounding=rounding,
                            output_overflow=stage)
        for channels in (24, 1):
            scale = np.exp2(rng.uniform(e_lo, e_hi, size=channels))
            scale[: channels // 3] = np.exp2(np.round(rng.uniform(e_lo, e_hi)))  # ties
            p = make_requant_params(scale, cfg, int(rng.integers(-100, 100)), 16, True)
            assert (jit_arrays.f64_scales(p) is not None) == f64, (cfg, p.shift.max())
            acc = _accumulators(rng, (300, 24))
            acc[:40] = rng.integers(-64, 64, size=(40, 24)) << rng.integers(0, 25)
            for a in (acc.astype(np.int32), acc, acc.reshape(30, 10, 24).transpose(0, 2, 1)):
                want = requantize(a.astype(np.int64), p, channel_axis=1)
                assert np.array_equal(ops.requantize_acc(a, p), want), (cfg, a.shape)
            q = rng.integers(-(1 << 15), 1 << 15, size=(50, channels))
            assert np.array_equal(ops.rescale(q, zero_point=-77, params=p),
                                  requantize(q + 77, p)), cfg
