"""§3.4/§3.5 choose_qparams and QParams validation (§3.7)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.quant import PerAxis, PerBlock, PerTensor, QParams, QuantSpec, choose_qparams, quantize
from hwsim.quant.qparams import MIN_SCALE

quant_utils = pytest.importorskip("onnxruntime.quantization.quant_utils")

ORT_DTYPES = ["int8", "uint8", "int16", "uint16"]


@settings(max_examples=400)
@given(
    st.sampled_from(ORT_DTYPES),
    st.booleans(),
    st.booleans(),
    st.floats(-1e6, 1e6, allow_subnormal=False),
    st.floats(-1e6, 1e6, allow_subnormal=False),
)
def test_integer_qparams_equal_onnxruntime(
    dtype: str, symmetric: bool, narrow: bool, a: float, b: float
) -> None:
    """§3.4: scale and zero point equal onnxruntime's compute_scale_zp (non-degenerate ranges;
    ORT requires qmin <= 0, so narrow range is drawn for signed types only)."""
    # ORT takes float32 range ends; both sides get the same float32-representable range.
    lo, hi = float(np.float32(min(a, b))), float(np.float32(max(a, b)))
    spec = QuantSpec(dtype, symmetric=symmetric, narrow_range=narrow and dtype.startswith("int"))
    qp = choose_qparams(lo, hi, spec)
    qmin = np.array(spec.qmin, dtype=spec.int_format.storage)
    qmax = np.array(spec.qmax, dtype=spec.int_format.storage)
    z, s = quant_utils.compute_scale_zp(
        np.float32(lo), np.float32(hi), qmin, qmax, symmetric=symmetric
    )
    if max(-lo, hi) == 0.0:
        return  # degenerate: compared in test_degenerate_range_scale_one
    assert float(qp.scale) == float(s)
    if (
        symmetric
        and not spec.int_format.signed
        and max(-lo, hi) * 2 < MIN_SCALE * (spec.qmax - spec.qmin)
    ):
        # Degenerate symmetric unsigned: ORT gives z = 0, hwsim keeps the mid code (§3.4).
        assert float(s) == 1.0 and int(qp.zero_point) == (spec.qmin + spec.qmax + 1) // 2
    else:
        assert int(qp.zero_point) == int(z)


def test_worked_examples() -> None:
    """§3.4 worked examples (numbers written in the spec)."""
    qp = choose_qparams(-1.0, 2.0, QuantSpec("uint8"))
    assert float(qp.scale) == float(np.float32(3.0 / 255.0)) and int(qp.zero_point) == 85
    # 0.5 / s is exactly 42.5 in float32: the tie goes to the even 42, so 0.5 -> 127.
    assert quantize(np.float32([-1.0, 0.0, 0.5, 2.0]), qp).tolist() == [0, 85, 127, 255]
    half_up = QParams(qp.scale, qp.zero_point, QuantSpec("uint8", rounding="half_up"))
    assert quantize(np.float32(0.5), half_up) == 128
    qp = choose_qparams(0.5, 2.0, QuantSpec("int8"))  # range extended to [0, 2]
    assert float(qp.scale) == float(np.float32(2.0 / 255.0)) and int(qp.zero_point) == -128
    qp = choose_qparams(-1.0, 2.0, QuantSpec("int8", symmetric=True))
    assert float(qp.scale) == float(np.float32(2.0 / 127.5)) and int(qp.zero_point) == 0
    qp = choose_qparams(-1.0, 2.0, QuantSpec("int8", symmetric=True, narrow_range=True))
    assert float(qp.scale) == float(np.float32(2.0 / 127.0)) and int(qp.zero_point) == 0
    qp = choose_qparams(-1.0, 2.0, QuantSpec("uint8", symmetric=True))
    assert int(qp.zero_point) == 128
    qp = choose_qparams(-3.0, 100.0, QuantSpec("fp8_e4m3"))
    assert float(qp.scale) == float(np.float32(100.0 / 448.0)) and int(qp.zero_point) == 0
    qp = choose_qparams(0.0, 1e6, QuantSpec("fp8_e5m2"))
    assert float(qp.scale) == float(np.float32(1e6 / 57344.0))


@pytest.mark.parametrize(
    "spec, zp",
    [
        (QuantSpec("int8"), 0),
        (QuantSpec("uint8"), 0),
        (QuantSpec("uint8", narrow_range=True), 1),
        (QuantSpec("uint8", symmetric=True), 128),
        (QuantSpec("int4", symmetric=True, narrow_range=True), 0),
        (QuantSpec("fp8_e4m3"), 0),
    ],
)
def test_degenerate_range_scale_one(spec: QuantSpec, zp: int) -> None:
    """§3.4: min = max = 0 (or a range below 2^-126 per level) gives s = 1.0 and 0.0 exact."""
    for lo, hi in ((0.0, 0.0), (-1e-45, 0.0)):
        qp = choose_qparams(lo, hi, spec)
        assert float(qp.scale) == 1.0 and int(qp.zero_point) == zp
        assert quantize(np.float32(0.0), qp) == (zp if not spec.is_fp8 else 0)
    assert MIN_SCALE == 2.0**-126


def test_per_axis_and_block_shapes() -> None:
    """§4.1: parameter shapes per granularity; each element equals the per-tensor formula."""
    lo = np.array([-1.0, 0.0, -3.0])
    hi = np.array([1.0, 5.0, 0.0])
    spec = QuantSpec("int8", granularity=PerAxis(0))
    qp = choose_qparams(lo, hi, spec, ndim=2)
    assert qp.scale.shape == (3,) and qp.zero_point.dtype == np.int64
    for i in range(3):
        one = choose_qparams(lo[i], hi[i], QuantSpec("int8"))
        assert qp.scale[i] == one.scale and qp.zero_point[i] == one.zero_point
    blk = choose_qparams(
        lo.reshape(3, 1), hi.reshape(3, 1), QuantSpec("int8", granularity=PerBlock(1, 4))
    )
    assert blk.scale.shape == (3, 1)
    np.testing.assert_array_equal(blk.scale.reshape(-1), qp.scale)


def test_choose_qparams_validation() -> None:
    """§3.7: each invalid input raises ValueError naming the field."""
    spec = QuantSpec("int8")
    with pytest.raises(ValueError, match="min_val must be <= max_val"):
        choose_qparams(1.0, 0.0, spec)
    with pytest.raises(ValueError, match="min_val must be finite"):
        choose_qparams(np.nan, 0.0, spec)
    with pytest.raises(ValueError, match="max_val must be finite"):
        choose_qparams(0.0, np.inf, spec)
    with pytest.raises(ValueError, match="min_val must be a scalar for PerTensor"):
        choose_qparams([0.0, 0.0], [1.0, 1.0], spec)
    with pytest.raises(ValueError, match=r"PerAxis\.axis = 2 is out of range"):
        choose_qparams([0.0], [1.0], QuantSpec("int8", granularity=PerAxis(2)), ndim=2)
    with pytest.raises(ValueError, match="min_val must be 1-D"):
        choose_qparams(0.0, 1.0, QuantSpec("int8", granularity=PerAxis(0)))
    with pytest.raises(ValueError, match="min_val shape"):
        choose_qparams([0.0], [1.0, 2.0], QuantSpec("int8", granularity=PerAxis(0)))


def test_qparams_validation() -> None:
    """§3.7: negative / NaN / zero scale, zero point outside the range, shape mismatches."""
    spec = QuantSpec("int8")
    with pytest.raises(ValueError, match=r"QParams\.scale must be finite and > 0"):
        QParams(np.float32(-0.5), np.int64(0), spec)
    with pytest.raises(ValueError, match=r"QParams\.scale must be finite and > 0"):
        QParams(np.float32(np.nan), np.int64(0), spec)
    with pytest.raises(ValueError, match=r"QParams\.scale must be finite and > 0"):
        QParams(np.float32(0.0), np.int64(0), spec)
    with pytest.raises(ValueError, match=r"QParams\.zero_point must lie in \[-128, 127\]"):
        QParams(np.float32(1.0), np.int64(128), spec)
    with pytest.raises(ValueError, match=r"QParams\.zero_point must lie in \[0, 15\]"):
        QParams(np.float32(1.0), np.int64(-1), QuantSpec("uint4"))
    with pytest.raises(ValueError, match=r"QParams\.zero_point must be 0 for fp8_e4m3"):
        QParams(np.float32(1.0), np.int64(3), QuantSpec("fp8_e4m3"))
    with pytest.raises(ValueError, match=r"QParams\.zero_point shape"):
        QParams(np.float32([1.0, 2.0]), np.int64(0), QuantSpec("int8", granularity=PerAxis(0)))
    with pytest.raises(ValueError, match=r"QParams\.scale must be a scalar"):
        QParams(np.float32([1.0]), np.int64([0]), spec)
    with pytest.raises(ValueError, match=r"QParams\.zero_point must be integers"):
        QParams(np.float32(1.0), np.float64(0.5), spec)
    qp = QParams(
        np.float32([1.0, 2.0]), np.int64([0, 1]), QuantSpec("int8", granularity=PerAxis(0))
    )
    with pytest.raises(ValueError, match="read-only"):
        qp.scale[0] = 3.0
    assert isinstance(qp.spec.granularity, PerAxis) and not isinstance(
        qp.spec.granularity, PerTensor
    )
