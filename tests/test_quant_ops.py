"""§3.1–§3.3, §3.5: quantize / dequantize / fake_quant, differential against a scalar
Fraction-based reference and against onnxruntime QuantizeLinear / DequantizeLinear."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.quant import (
    PerAxis,
    PerBlock,
    PerTensor,
    QParams,
    QuantSpec,
    choose_qparams,
    dequantize,
    fake_quant,
    fp8_decode,
    fp8_encode,
    quantize,
    round_float,
)
from hwsim.quant.spec import ROUNDING_MODES

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

ONNX_TYPES = {
    "int8": TensorProto.INT8,
    "uint8": TensorProto.UINT8,
    "int16": TensorProto.INT16,
    "uint16": TensorProto.UINT16,
    "fp8_e4m3": TensorProto.FLOAT8E4M3FN,
    "fp8_e5m2": TensorProto.FLOAT8E5M2,
}


def ref_round(r: Fraction, rounding: str) -> int:
    """§3.2 rounding modes on an exact rational."""
    if rounding == "half_even":
        return round(r)
    if rounding == "half_up":
        return math.floor(r + Fraction(1, 2))
    if rounding == "half_away":
        return int(math.copysign(math.floor(abs(r) + Fraction(1, 2)), r))
    if rounding == "floor":
        return math.floor(r)
    return math.trunc(r)


def ref_quantize(x: float, s: float, z: int, qmin: int, qmax: int, rounding: str) -> int:
    """§3.1 for one element: float32 quotient (via float64 division, which rounds to the same
    float32 for float32 operands), exact rounding, + z, clamp."""
    quotient = np.float32(float(np.float32(x)) / float(np.float32(s)))
    if np.isinf(quotient):
        return qmax if quotient > 0 else qmin
    return min(max(ref_round(Fraction(float(quotient)), rounding) + z, qmin), qmax)


def onnx_run(
    op: str, x: np.ndarray, qp: QParams, axis: int | None, block: int | None
) -> np.ndarray:
    """Run one QuantizeLinear / DequantizeLinear (opset 21) on onnxruntime's CPU provider.

    fp8 tensors cannot cross the numpy boundary of ORT, so for fp8 the quantized output is
    Cast to float32 inside the graph, and the dequantize input is a raw-bytes initializer.
    """
    ztype = ONNX_TYPES[qp.spec.dtype]
    fp8 = qp.spec.is_fp8
    attrs = {k: v for k, v in (("axis", axis), ("block_size", block)) if v is not None}
    zp = qp.zero_point
    if fp8:
        z_init = helper.make_tensor(
            "z", ztype, zp.shape, np.zeros(zp.size, np.uint8).tobytes(), raw=True
        )
    else:
        z_init = helper.make_tensor("z", ztype, zp.shape, zp.ravel().tolist())
    inits = [
        helper.make_tensor("s", TensorProto.FLOAT, qp.scale.shape, qp.scale.ravel().tolist()),
        z_init,
    ]
    nodes = [
        helper.make_node(
            op, ["x", "s", "z"], ["yq" if fp8 and op == "QuantizeLinear" else "y"], **attrs
        )
    ]
    inputs = []
    feed = {}
    if op == "QuantizeLinear":
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)]
        feed = {"x": x}
        out_type = TensorProto.FLOAT if fp8 else ztype
        if fp8:
            nodes.append(helper.make_node("Cast", ["yq"], ["y"], to=TensorProto.FLOAT))
    else:
        out_type = TensorProto.FLOAT
        if fp8:
            inits.append(
                helper.make_tensor("x", ztype, x.shape, x.astype(np.uint8).tobytes(), raw=True)
            )
        else:
            inputs = [helper.make_tensor_value_info("x", ztype, x.shape)]
            feed = {"x": x}
    graph = helper.make_graph(
        nodes, "g", inputs, [helper.make_tensor_value_info("y", out_type, None)], initializer=inits
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, feed)[0])


def test_quantize_matches_scalar_reference_all_rounding_modes() -> None:
    """§3.1/§3.2: vectorised quantize == per-element Fraction reference, every mode, tolerance 0."""
    rng = np.random.default_rng(7)
    grid = rng.integers(-300, 300, 300) / 2.0  # exact ties at s = 1 / 0.5
    x = np.concatenate([grid, rng.normal(0, 40, 300), [np.inf, -np.inf, 0.0, -0.0]]).astype(
        np.float32
    )
    for dtype in ("int8", "uint8", "int4", "uint4", "int16", "int2"):
        for rounding in ROUNDING_MODES:
            for narrow in (False, True):
                spec = QuantSpec(dtype, narrow_range=narrow, rounding=rounding)
                for s, z in ((1.0, 0), (0.5, spec.qmax // 3), (0.1, spec.qmin), (3.0, spec.qmax)):
                    qp = QParams(np.float32(s), np.int64(z), spec)
                    got = quantize(x, qp)
                    assert got.dtype == spec.int_format.storage
                    want = [ref_quantize(v, s, z, spec.qmin, spec.qmax, rounding) for v in x]
                    np.testing.assert_array_equal(got.astype(np.int64), want)


def test_round_modes_on_ties() -> None:
    """§3.2 table: the five modes on -2.5, -1.5, -0.5, 0.5, 1.5, 2.5."""
    x = np.float32([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5])
    expected = {
        "half_even": [-2, -2, 0, 0, 2, 2],
        "half_up": [-2, -1, 0, 1, 2, 3],
        "half_away": [-3, -2, -1, 1, 2, 3],
        "floor": [-3, -2, -1, 0, 1, 2],
        "toward_zero": [-2, -1, 0, 0, 1, 2],
    }
    for mode, want in expected.items():
        qp = QParams(np.float32(1.0), np.int64(0), QuantSpec("int8", rounding=mode))
        assert quantize(x, qp).tolist() == want, mode


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "uint16", "fp8_e4m3", "fp8_e5m2"])
@pytest.mark.parametrize(
    "granularity", [PerTensor(), PerAxis(1), PerAxis(-3), PerBlock(2, 4), PerBlock(0, 3)]
)
def test_quantize_dequantize_equal_onnxruntime(dtype: str, granularity: object) -> None:
    """§3.1/§3.3/§3.5/§4: bit-identical to ORT QuantizeLinear/DequantizeLinear (opset 21)."""
    rng = np.random.default_rng(11)
    x = (rng.standard_cauchy((6, 5, 8)) * 3).astype(np.float32)
    x[0, 0, :4] = [0.0, -0.0, 1e30, -1e30]
    spec = QuantSpec(dtype, symmetric=dtype.startswith("fp8"), granularity=granularity)
    shape = {
        PerTensor(): (),
        PerAxis(1): (5,),
        PerAxis(-3): (6,),
        PerBlock(2, 4): (6, 5, 2),
        PerBlock(0, 3): (2, 5, 8),
    }[granularity]
    scale = rng.uniform(0.01, 2.0, shape).astype(np.float32)
    if spec.is_fp8:
        zp = np.zeros(shape, dtype=np.int64)
    else:
        zp = rng.integers(spec.qmin, spec.qmax + 1, shape)
    qp = QParams(scale, zp, spec)
    axis = getattr(granularity, "axis", None)
    block = getattr(granularity, "block_size", None)
    q = quantize(x, qp)
    theirs = onnx_run("QuantizeLinear", x, qp, axis, block)
    if spec.is_fp8:
        np.testing.assert_array_equal(fp8_decode(q, spec.fp8_format.name), theirs)
    else:
        np.testing.assert_array_equal(q, theirs.view(q.dtype))
    d = dequantize(q, qp)
    assert d.dtype == np.float32
    d_ort = onnx_run(
        "DequantizeLinear", q if spec.is_fp8 else q.view(theirs.dtype), qp, axis, block
    )
    np.testing.assert_array_equal(d.view(np.uint32), d_ort.view(np.uint32))


def test_fp8_quantize_saturates_and_keeps_nan() -> None:
    """§3.5: fp8 quantize clamps x/s to +-max before encoding; NaN stays NaN."""
    spec = QuantSpec("fp8_e4m3")
    qp = QParams(np.float32(0.5), np.int64(0), spec)
    codes = quantize(np.float32([1000.0, -1e30, np.inf, np.nan, 1.0]), qp)
    assert codes.tolist() == [0x7E, 0xFE, 0x7E, 0x7F, int(fp8_encode(np.float32([2.0]), "e4m3")[0])]


def test_nan_rejected_for_integer_formats() -> None:
    """§3.1: NaN has no integer code."""
    qp = QParams(np.float32(1.0), np.int64(0), QuantSpec("int8"))
    with pytest.raises(ValueError, match="x contains NaN"):
        quantize(np.float32([np.nan]), qp)
    with pytest.raises(ValueError, match="codes outside"):
        dequantize(np.array([200]), qp)


int_dtypes = st.sampled_from(["int8", "uint8", "int4", "uint4", "int2", "int16", "uint6"])


@st.composite
def spec_and_range(draw: st.DrawFn) -> tuple[QuantSpec, float, float]:
    spec = QuantSpec(
        draw(int_dtypes),
        symmetric=draw(st.booleans()),
        narrow_range=draw(st.booleans()),
        rounding=draw(st.sampled_from(ROUNDING_MODES)),
    )
    lo = draw(st.floats(-1e4, 0.0, allow_subnormal=False))
    hi = draw(st.floats(0.0, 1e4, allow_subnormal=False))
    return spec, lo, hi


@settings(max_examples=300)
@given(spec_and_range(), st.lists(st.floats(0.0, 1.0), min_size=1, max_size=20))
def test_round_trip_error_within_half_scale(
    sr: tuple[QuantSpec, float, float], u: list[float]
) -> None:
    """§3.3: inside the representable range, |dequantize(quantize(x)) - x| <= s/2 for the
    nearest modes (s for floor / toward_zero), plus the float32 rounding slack
    2^-23 (|x| + s) of the quotient and the product; 0.0 is exact."""
    spec, lo, hi = sr
    qp = choose_qparams(lo, hi, spec)
    s = float(qp.scale)
    z = int(qp.zero_point)
    a, b = (spec.qmin - z) * s, (spec.qmax - z) * s
    x = (a + np.asarray(u) * (b - a)).astype(np.float32)
    x = x[(x >= a) & (x <= b)]
    err = np.abs(fake_quant(x, qp).astype(np.float64) - x.astype(np.float64))
    step = s / 2 if spec.rounding.startswith("half") else s
    bound = step + 2.0**-23 * (np.abs(x.astype(np.float64)) + s)
    assert np.all(err <= bound)
    assert fake_quant(np.float32(0.0), qp) == 0.0
    assert quantize(np.float32(0.0), qp) == z


@settings(max_examples=200)
@given(
    st.sampled_from(["int8", "int4", "uint8", "int16"]),
    st.floats(1e-3, 1e3),
    st.lists(st.floats(-1e6, 1e6, allow_subnormal=False), min_size=1, max_size=30),
)
def test_symmetric_narrow_never_yields_most_negative_code(
    dtype: str, amax: float, xs: list[float]
) -> None:
    """§1.2/§3.4: symmetric narrow range never produces qmin, however negative x is."""
    spec = QuantSpec(dtype, symmetric=True, narrow_range=True)
    qp = choose_qparams(-amax, amax / 3, spec)
    q = quantize(np.asarray(xs + [-1e30, -np.inf], dtype=np.float32), qp).astype(np.int64)
    assert q.min() >= spec.int_format.qmin + 1
    centered = q - int(qp.zero_point)
    assert np.all(np.abs(centered) <= spec.qmax - int(qp.zero_point))


def test_fake_quant_is_idempotent_and_int16_exact() -> None:
    """§3.3: fake_quant(fake_quant(x)) == fake_quant(x); int16 codes dequantize exactly."""
    rng = np.random.default_rng(3)
    x = rng.normal(0, 5, 1000).astype(np.float32)
    qp = choose_qparams(float(x.min()), float(x.max()), QuantSpec("int16"))
    once = fake_quant(x, qp)
    np.testing.assert_array_equal(fake_quant(once, qp), once)
    q = quantize(x, qp)
    exact = (q.astype(np.float64) - int(qp.zero_point)) * float(qp.scale)
    np.testing.assert_array_equal(dequantize(q, qp), exact.astype(np.float32))


def test_rounding_modes_mean_the_same_as_arith_shift() -> None:
    """§3.2 == §6: round_float(k / 2^n) equals hwsim.arith.rounding_shift_right(k, n) for every
    mode name (the float and the integer rounding agree on exact dyadic values, ties included)."""
    from hwsim.arith import ROUNDING_MODES as ARITH_MODES
    from hwsim.arith import rounding_shift_right

    assert tuple(ARITH_MODES) == ROUNDING_MODES
    k = np.arange(-2000, 2001, dtype=np.int64)
    for n in range(0, 6):
        for mode in ROUNDING_MODES:
            want = rounding_shift_right(k, n, mode)
            got = round_float(k / 2.0**n, mode).astype(np.int64)
            np.testing.assert_array_equal(got, want, err_msg=f"{mode} shift {n}")
