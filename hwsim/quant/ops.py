"""quantize, dequantize and fake_quant (§3.1–§3.3), one code path for every granularity.

Integer formats: ``q = clamp(round(float32(x) / s) + z, qmin', qmax)`` where the division is
an IEEE float32 division (as ONNX QuantizeLinear), ``round`` is the spec's rounding mode
applied exactly to that float32 quotient, and ``qmin' = qmin + 1`` with a narrow range.
Dequantize: ``float32(q - z) * s`` in float32. fp8: ``fp8_encode(clamp(float32(x) / s,
-max, max))`` (saturating like ONNX QuantizeLinear ``saturate=1``), dequantize
``fp8_decode(q) * s``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from hwsim.errors import ConfigError, HwsimError
from hwsim.quant.fp8 import fp8_decode, fp8_encode
from hwsim.quant.granularity import expand_params
from hwsim.quant.qparams import QParams
from hwsim.quant.spec import ROUNDING_MODES

__all__ = ["dequantize", "fake_quant", "quantize", "round_float"]


def round_float(v: npt.ArrayLike, rounding: str) -> np.ndarray:
    """Round real values to integers (float64 result) with a §3.2 rounding mode.

    ``half_even`` (banker's), ``half_up`` (floor(v + 1/2)), ``half_away`` (ties away from 0),
    ``floor``, ``toward_zero``. Exact for float32 inputs (the arithmetic is in float64).
    """
    v = np.asarray(v, dtype=np.float64)
    if rounding == "half_even":
        return np.rint(v)
    if rounding == "half_up":
        return np.floor(v + 0.5)
    if rounding == "half_away":
        return np.copysign(np.floor(np.abs(v) + 0.5), v)
    if rounding == "floor":
        return np.floor(v)
    if rounding == "toward_zero":
        return np.trunc(v)
    raise ConfigError(f"rounding must be one of {ROUNDING_MODES}, got {rounding!r}")


def _expanded(qparams: QParams, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    g = qparams.spec.granularity
    return expand_params(qparams.scale, g, shape), expand_params(qparams.zero_point, g, shape)


def quantize(x: npt.ArrayLike, qparams: QParams) -> np.ndarray:
    """Quantize real values to codes (§3.1).

    Returns the narrowest numpy dtype holding the format: int8 for int2..int8, uint8 for
    uint2..uint8, int16 / uint16 above that; uint8 fp8 codes for fp8 specs. NaN inputs raise
    HwsimError for integer formats and become the fp8 NaN code for fp8; +-Inf saturate.
    """
    if not isinstance(qparams, QParams):
        raise ConfigError(f"qparams must be a QParams, got {type(qparams).__name__}")
    spec = qparams.spec
    xf = np.asarray(x, dtype=np.float32)
    scale, zp = _expanded(qparams, xf.shape)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        ratio = xf / scale
    if spec.is_fp8:
        limit = np.float32(spec.fp8_format.max_finite)
        return fp8_encode(np.clip(ratio, -limit, limit), spec.fp8_format.name)
    if np.any(np.isnan(ratio)):
        raise HwsimError("x contains NaN, which has no integer code")
    q = round_float(ratio, spec.rounding) + zp
    fmt = spec.int_format
    return np.clip(q, spec.qmin, spec.qmax).astype(fmt.storage)


def dequantize(q: npt.ArrayLike, qparams: QParams) -> np.ndarray:
    """Real values of codes (§3.3): float32(q - z) * s in float32; fp8: fp8_decode(q) * s."""
    if not isinstance(qparams, QParams):
        raise ConfigError(f"qparams must be a QParams, got {type(qparams).__name__}")
    spec = qparams.spec
    qa = np.asarray(q)
    if qa.dtype.kind not in "iu":
        raise HwsimError(f"q must be an integer array, got dtype {qa.dtype}")
    scale, zp = _expanded(qparams, qa.shape)
    if spec.is_fp8:
        return (fp8_decode(qa, spec.fp8_format.name) * scale).astype(np.float32)
    fmt = spec.int_format
    if qa.size and (qa.min() < fmt.qmin or qa.max() > fmt.qmax):
        raise HwsimError(f"q has codes outside [{fmt.qmin}, {fmt.qmax}] of {fmt.name}")
    centered = (qa.astype(np.int64) - zp).astype(np.float32)
    return (centered * scale).astype(np.float32)


def fake_quant(x: npt.ArrayLike, qparams: QParams) -> np.ndarray:
    """``dequantize(quantize(x, qparams), qparams)``: x snapped to the quantization grid."""
    return dequantize(quantize(x, qparams), qparams)
