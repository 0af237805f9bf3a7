"""The fake-quant reference's Numba kernels (hwsim.reference.fakequant_kernels) equal the
numpy formulas they replace, bit for bit (specs/compiler.md §5, arithmetic §6, §9, §10.1):
rescale (+ bias, + int64 accumulators) against ``_fq_rescale``, the add against
``_fq_add_numpy``, max pooling against ``_maxpool_numpy``, centring against
``astype(float64) − z``; every requant mode, every §6 rounding, saturating and wrapping
outputs, per-tensor and per-channel scales, exact ties and clamped values."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from hwsim.arith import ROUNDING_MODES, RequantConfig, make_requant_params
from hwsim.compiler.qgraph import TensorQ
from hwsim.exact.matmul import set_threads, threads
from hwsim.reference import fakequant_exec as fx

#: (mode, output_overflow) pairs the reference supports; dyadic/custom take every rounding.
MODES = [("dyadic", "saturate"), ("custom", "saturate"), ("custom", "wrap"),
         ("tflite", "saturate"), ("tflite", "wrap"), ("tflite_single", "saturate"),
         ("tflite_single", "wrap"), ("float32", "saturate"), ("float64", "saturate")]
CASES = [(m, o, r) for m, o in MODES
         for r in (ROUNDING_MODES if m in ("dyadic", "custom") else ("half_up",))]


def _params(mode: str, overflow: str, rounding: str, channels: int, rng: np.random.Generator,
            out_bits: int = 8, zero_point: int = -7, act: tuple[int, int] | None = None):
    """Requant params whose scales include exact dyadic values (0.5, 0.375, 1.25: many
    ties) next to random ones."""
    cfg = RequantConfig(mode=mode, rounding=rounding, output_overflow=overflow,
                        multiplier_bits=16 if mode == "dyadic" else 20)
    scales = rng.uniform(1e-4, 0.05, size=channels)
    scales[: min(3, channels)] = [0.5, 0.375, 1.25][: min(3, channels)]
    lo, hi = act if act is not None else (-100, 120) if out_bits == 8 else (None, None)
    return make_requant_params(scales if channels > 1 else scales[:1], cfg,
                               zero_point=zero_point, out_bits=out_bits, act_min=lo,
                               act_max=hi)


def _accumulators(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Integer-valued float64 accumulators: small values (ties of the dyadic scales),
    large ones (clamped, and wrapped when the output wraps), zeros and −0.0."""
    acc = rng.integers(-40, 40, size=shape).astype(np.float64)
    big = rng.random(shape) < 0.4
    acc[big] = rng.integers(-2**24, 2**24, size=int(big.sum()))
    flat = acc.reshape(-1)
    flat[::97] = 0.0
    flat[1::101] = -0.0
    return acc


@pytest.mark.parametrize("mode,overflow,rounding", CASES)
def test_rescale_kernel_equals_numpy_formula(mode: str, overflow: str, rounding: str) -> None:
    """§9: ``rescale_fused`` (bias add, int64 accumulators, rescale) equals ``src + bias``,
    ``astype(np.int64)`` and ``_fq_rescale`` on 10^5 values, per channel and per tensor."""
    rng = np.random.default_rng(CASES.index((mode, overflow, rounding)))
    for channels, shape in ((16, (3, 16, 45, 47)), (1, (40, 1, 50, 50)), (24, (4100, 24))):
        p = _params(mode, overflow, rounding, channels, rng)
        src = _accumulators(rng, shape)
        bias = rng.integers(-300, 300, size=shape[1]).astype(np.float64)
        codes, acc = fx.rescale_fused(src, p, bias, want_acc=True)
        a = src + bias.reshape((1, -1) + (1,) * (src.ndim - 2))
        np.testing.assert_array_equal(acc, a.astype(np.int64))
        np.testing.assert_array_equal(codes, fx._fq_rescale(a, p, 1))
        np.testing.assert_array_equal(fx.fq_rescale(src, p), fx._fq_rescale(src, p, 1))
        codes_only, none = fx.rescale_fused(src, p)
        assert none is None
        np.testing.assert_array_equal(codes_only, fx._fq_rescale(src, p, 1))


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
def test_rescale_kernel_ties_and_wide_outputs(rounding: str) -> None:
    """§6: every exact tie ``k + 1/2`` (positive, negative, odd and even ``k``) rounds as
    ``round_float`` rounds it; 16- and 32-bit outputs, unsigned outputs, wrapping."""
    rng = np.random.default_rng(100 + ROUNDING_MODES.index(rounding))
    k = np.arange(-2000, 2000, dtype=np.float64)
    for overflow in ("saturate", "wrap"):
        for out_bits, signed, zp in ((8, False, 3), (16, True, -5), (32, True, 0)):
            cfg = RequantConfig(mode="custom", rounding=rounding, output_overflow=overflow)
            p = make_requant_params(0.5, cfg, zero_point=zp, out_bits=out_bits,
                                    out_signed=signed)
            src = np.concatenate([2 * k + 1, 2 * k, rng.integers(-2**33, 2**33, 4000)])
            src = src.astype(np.float64).reshape(8, 1, -1)
            np.testing.assert_array_equal(fx.fq_rescale(src, p), fx._fq_rescale(src, p, 1))


@pytest.mark.parametrize("mode,overflow,rounding",
                         [c for c in CASES if c[2] in ("half_up", "half_even", "toward_zero")])
def test_add_kernel_equals_numpy_formula(mode: str, overflow: str, rounding: str) -> None:
    """§10.1: ``fq_add`` equals the numpy formula, int8 and int16 codes (left shifts 20 and
    15), per tensor and per channel; computed per element (``add_rows``) and, for
    per-tensor blocks on tensors with many more elements than code pairs, from the table
    of every pair (full int8 range, and a narrow range of codes)."""
    rng = np.random.default_rng(200 + CASES.index((mode, overflow, rounding)))
    for bits, shift, channels, shape, span in ((8, 20, 1, (4, 12, 40, 40), None),
                                               (16, 15, 12, (2, 12, 30, 30), None),
                                               (8, 20, 1, (2, 16, 100, 100), None),
                                               (8, 20, 1, (2, 3, 40, 40), (-9, 30, -50, -21))):
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        alo, ahi, blo, bhi = span or (lo, hi, lo, hi)
        qa = rng.integers(alo, ahi + 1, size=shape)
        qb = rng.integers(blo, bhi + 1, size=shape)
        qa.reshape(-1)[:4] = [alo, ahi, alo, ahi]
        qb.reshape(-1)[:4] = [blo, bhi, bhi, blo]
        req = {"in0": _params(mode, overflow, rounding, channels, rng, 32, 0),
               "in1": _params(mode, overflow, rounding, channels, rng, 32, 0),
               "out": _params(mode, overflow, rounding, channels, rng, bits, 5, (lo, hi))}
        want = fx._fq_add_numpy(qa, qb, -3, 11, shift, req)
        np.testing.assert_array_equal(fx.fq_add(qa, qb, -3, 11, shift, req), want)


def test_add_table_and_per_element_paths_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table of code pairs is taken for a large per-tensor add, over the data's range
    or a stated one (a code outside it: per element), and not when disabled: all give the
    numpy formula's codes."""
    rng = np.random.default_rng(250)
    req = {"in0": _params("dyadic", "saturate", "half_up", 1, rng, 32, 0),
           "in1": _params("dyadic", "saturate", "half_up", 1, rng, 32, 0),
           "out": _params("dyadic", "saturate", "half_up", 1, rng, 8, 5, (-128, 127))}
    qa = rng.integers(-128, 128, size=(2, 8, 128, 128))
    qb = rng.integers(-128, 128, size=qa.shape)
    want = fx._fq_add_numpy(qa, qb, 4, -6, 20, req)
    calls = []
    lookup = fx.fk.lookup2_rows
    monkeypatch.setattr(fx.fk, "lookup2_rows", lambda *a: calls.append(1) or lookup(*a))
    np.testing.assert_array_equal(fx.fq_add(qa, qb, 4, -6, 20, req), want)
    assert calls
    calls.clear()
    int8 = (-128, 127, -128, 127)
    np.testing.assert_array_equal(fx.fq_add(qa, qb, 4, -6, 20, req, int8), want)
    assert calls
    qa[1, 3, 5, 7] = 300  # outside the stated range: the per-element kernel takes over
    want = fx._fq_add_numpy(qa, qb, 4, -6, 20, req)
    np.testing.assert_array_equal(fx.fq_add(qa, qb, 4, -6, 20, req, int8), want)
    calls.clear()
    monkeypatch.setattr(fx, "_ADD_TABLE_RATIO", qa.size)
    np.testing.assert_array_equal(fx.fq_add(qa, qb, 4, -6, 20, req), want)
    assert not calls


POOLS = [((3, 3), (2, 2), (1, 1, 1, 1), (1, 1)), ((2, 2), (2, 2), (0, 0, 0, 0), (1, 1)),
         ((3, 2), (1, 3), (2, 0, 1, 1), (1, 1)), ((3, 3), (2, 1), (2, 2, 2, 2), (2, 2)),
         ((1, 1), (1, 1), (0, 0, 0, 0), (1, 1)), ((5, 4), (3, 2), (0, 1, 2, 3), (1, 2))]


@pytest.mark.parametrize("kernel,strides,pads,dilations", POOLS)
def test_maxpool_kernel_equals_numpy_formula(kernel, strides, pads, dilations) -> None:
    """Max pooling on real values with −inf padding: ``fq_maxpool`` equals the numpy
    running maximum, for odd sizes, strides, dilations and asymmetric padding."""
    rng = np.random.default_rng(300 + POOLS.index((kernel, strides, pads, dilations)))
    a = {"kernel_shape": list(kernel), "strides": list(strides), "pads": list(pads),
         "dilations": list(dilations)}
    for dtype, zp, scale, shape in (("int8", -3, 0.0271, (3, 5, 37, 41)),
                                    ("uint8", 128, 0.37, (2, 3, 20, 17)),
                                    ("int16", 17, 1.9e-4, (1, 4, 9, 30))):
        tin = TensorQ("x", dtype, scale, zp)
        x = rng.integers(tin.qmin, tin.qmax + 1, size=shape)
        np.testing.assert_array_equal(fx.fq_maxpool(x, tin, a), fx._maxpool_numpy(x, tin, a))


def test_centred_equals_numpy_formula() -> None:
    """The float64 centred values ``q − z`` the convolutions read."""
    rng = np.random.default_rng(400)
    for shape, zp in (((3, 7, 50, 61), -128), ((200, 300), 17), ((5,), 3)):
        x = rng.integers(-2**15, 2**15, size=shape)
        np.testing.assert_array_equal(fx._centred(x, zp), x.astype(np.float64) - zp)


def test_one_thread_and_small_arrays_equal_split_runs() -> None:
    """Rows cut into one range per thread or run whole give the same codes."""
    rng = np.random.default_rng(500)
    p = _params("dyadic", "saturate", "half_even", 8, rng)
    src = _accumulators(rng, (9, 8, 33, 33))
    split = fx.fq_rescale(src, p)
    old = threads()
    set_threads(1)
    try:
        np.testing.assert_array_equal(fx.fq_rescale(src, p), split)
    finally:
        set_threads(old)
    np.testing.assert_array_equal(fx.fq_rescale(src[:1, :, :3], p), split[:1, :, :3])


def _numpy_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Route the executor through the plain numpy formulas."""
    def centred(x: np.ndarray, zp: int) -> np.ndarray:
        xc = x.astype(np.float64)
        xc -= zp
        return xc
    monkeypatch.setattr(fx, "rescale_fused", lambda *a, **k: None)
    monkeypatch.setattr(fx, "fq_add", lambda qa, qb, za, zb, shift, req, ranges=None,
                        out_dtype=None: fx._fq_add_numpy(qa, qb, za, zb, shift, req))
    monkeypatch.setattr(fx, "fq_maxpool",
                        lambda x, tin, a, out_dtype=None: fx._maxpool_numpy(x, tin, a))
    monkeypatch.setattr(fx, "_centred", centred)


@pytest.mark.parametrize("requant", [RequantConfig(),
                                     RequantConfig(mode="custom", rounding="half_even",
                                                   output_overflow="wrap")])
def test_run_fakequant_with_kernels_equals_numpy_formulas(
        requant: RequantConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    """A small ResNet-18-shaped graph (conv, residual add, maxpool, global average pool,
    gemm; a downsample conv reading its block's input as the first conv does): every
    tensor's codes and every accumulator equal with and without kernels, end to end and
    layer-wise."""
    pytest.importorskip("onnx")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from dataclasses import replace

    from resnet18 import INPUT_NAME, random_images, resnet18_onnx

    from hwsim.compiler.quantize import quantize_static
    from hwsim.frontends.onnx import load_onnx
    from hwsim.sim.config import ArrayConfig
    from hwsim.sim.run import quantize_config_for
    from hwsim.verify import calibration_batches

    qcfg = replace(quantize_config_for(ArrayConfig(rows=8, cols=8, dataflow="ws")), requant=requant)
    g = quantize_static(load_onnx(resnet18_onnx(input_size=32, width=8, num_classes=10)),
                        calibration_batches(INPUT_NAME, random_images(2, 32, seed=2)), qcfg)
    feeds = {INPUT_NAME: random_images(3, 32, seed=1)}
    fast = fx.run_fakequant(g, feeds)
    fast_lw = fx.run_fakequant(g, feeds, layerwise=fast)
    assert any(n.op == "conv" and n.name.endswith("downsample.conv") for n in g.nodes)
    _numpy_only(monkeypatch)
    ref = fx.run_fakequant(g, feeds)
    ref_lw = fx.run_fakequant(g, feeds, layerwise=ref)
    for got, want in ((fast, ref), (fast_lw, ref_lw)):
        assert got.codes.keys() == want.codes.keys()
        assert got.accumulators.keys() == want.accumulators.keys()
        for name in want.codes:
            np.testing.assert_array_equal(got.codes[name], want.codes[name], err_msg=name)
        for name in want.accumulators:
            np.testing.assert_array_equal(got.accumulators[name], want.accumulators[name],
                                          err_msg=name)


@pytest.mark.parametrize("act_dtype", ["int8", "uint8"])
def test_compact_codes_change_no_value(act_dtype: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """compiler.md §5: the fake-quant reference keeps the golden model's compact tensors
    (8-bit, read only by conv / add / max pool) as int8 / uint8, its kernels reading and
    writing them directly; every code and accumulator, read as int64, equals a run that
    keeps everything int64."""
    pytest.importorskip("onnx")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from dataclasses import replace

    from resnet18 import INPUT_NAME, random_images, resnet18_onnx

    from hwsim.compiler.quantize import quantize_static
    from hwsim.frontends.onnx import load_onnx
    from hwsim.reference import golden_exec
    from hwsim.sim.config import ArrayConfig
    from hwsim.sim.run import quantize_config_for
    from hwsim.verify import calibration_batches

    qcfg = replace(quantize_config_for(ArrayConfig(rows=8, cols=8, dataflow="ws")),
                   act_dtype=act_dtype)
    g = quantize_static(load_onnx(resnet18_onnx(input_size=32, width=8, num_classes=10)),
                        calibration_batches(INPUT_NAME, random_images(2, 32, seed=2)), qcfg)
    plan = golden_exec.compact_dtypes(g)
    ops = {n.output: n.op for n in g.nodes}
    assert {ops[t] for t in plan} == {"conv", "add", "maxpool", "gemm"}  # gemm: the output
    assert set(plan.values()) == {np.dtype(act_dtype)}
    feeds = {INPUT_NAME: random_images(3, 32, seed=4)}
    got = fx.run_fakequant(g, feeds)
    for t, dt in plan.items():
        assert got.codes.compact(t).dtype == dt, t
    monkeypatch.setattr(fx, "compact_dtypes", lambda graph: {})
    want = fx.run_fakequant(g, feeds)
    assert got.codes.keys() == want.codes.keys()
    for name in want.codes:
        assert got.codes[name].dtype == np.int64
        np.testing.assert_array_equal(got.codes[name], want.codes[name], err_msg=name)
    for name in want.accumulators:
        np.testing.assert_array_equal(got.accumulators[name], want.accumulators[name])
