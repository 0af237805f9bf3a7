"""Quantization parameters and how they are chosen from a real range (§3.4, §3.5).

``QParams`` holds float32 scales and int64 zero points shaped per granularity (§4).
``choose_qparams`` turns a real range [min_val, max_val] (per block) into QParams:
the range is first extended to include 0, so 0.0 is always represented exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hwsim.errors import ConfigError, HwsimError
from hwsim.quant.granularity import PerAxis, PerBlock, PerTensor, normalize_axis
from hwsim.quant.spec import QuantSpec

__all__ = ["MIN_SCALE", "QParams", "choose_qparams", "qparams_for_range"]

#: A range whose float64 scale is below this (the smallest normal float32, 2^-126) is
#: degenerate: it gets scale 1.0 (§3.4), as in onnxruntime's compute_scale_zp.
MIN_SCALE = float(np.finfo(np.float32).tiny)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class QParams:
    """Scale (float32) and zero point (int64) per block, plus the spec they belong to.

    Shapes: PerTensor ``()``, PerAxis ``(C,)``, PerBlock full-rank grid (§4). Every scale
    must be finite and > 0; every zero point inside [qmin, qmax] of the integer format
    (0 for fp8). The arrays are stored as read-only copies.
    """

    scale: np.ndarray
    zero_point: np.ndarray
    spec: QuantSpec

    def __post_init__(self) -> None:
        if not isinstance(self.spec, QuantSpec):
            raise ConfigError(f"QParams.spec must be a QuantSpec, got {type(self.spec).__name__}")
        scale = np.asarray(self.scale)
        if not np.issubdtype(scale.dtype, np.floating) and not np.issubdtype(
            scale.dtype, np.integer
        ):
            raise ConfigError(f"QParams.scale must be a real array, got dtype {scale.dtype}")
        with np.errstate(over="ignore"):
            scale = scale.astype(np.float32)
        zp = np.asarray(self.zero_point)
        if zp.dtype.kind not in "iu":
            if zp.dtype.kind == "f" and np.all(np.isfinite(zp)) and np.all(zp == np.round(zp)):
                zp = zp.astype(np.int64)
            else:
                raise ConfigError(f"QParams.zero_point must be integers, got {zp!r}")
        zp = zp.astype(np.int64)
        if zp.shape != scale.shape:
            raise ConfigError(
                f"QParams.zero_point shape {zp.shape} must equal QParams.scale shape {scale.shape}"
            )
        if not np.all(np.isfinite(scale)) or not np.all(scale > 0):
            raise ConfigError(
                "QParams.scale must be finite and > 0 everywhere (no NaN, no negative)"
            )
        if self.spec.is_fp8:
            if np.any(zp != 0):
                raise ConfigError(f"QParams.zero_point must be 0 for {self.spec.dtype}")
        else:
            fmt = self.spec.int_format
            if np.any(zp < fmt.qmin) or np.any(zp > fmt.qmax):
                raise ConfigError(
                    f"QParams.zero_point must lie in [{fmt.qmin}, {fmt.qmax}] for {fmt.name}"
                )
        g = self.spec.granularity
        if isinstance(g, PerTensor) and scale.ndim != 0:
            raise ConfigError(
                f"QParams.scale must be a scalar (shape ()) for PerTensor, got {scale.shape}"
            )
        if isinstance(g, PerAxis) and scale.ndim != 1:
            raise ConfigError(f"QParams.scale must be 1-D for {g!r}, got shape {scale.shape}")
        if isinstance(g, PerBlock) and scale.ndim < 1:
            raise ConfigError(f"QParams.scale must have the tensor's rank for {g!r}, got shape ()")
        object.__setattr__(self, "scale", _readonly(scale))
        object.__setattr__(self, "zero_point", _readonly(zp))

    def __repr__(self) -> str:
        return (
            f"QParams(scale={self.scale.tolist()!r}, zero_point={self.zero_point.tolist()!r}, "
            f"spec={self.spec!r})"
        )


def qparams_for_range(
    lo: np.ndarray, hi: np.ndarray, spec: QuantSpec
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised §3.4 formulas: (scale float32, zero point int64) for ranges [lo, hi].

    ``lo``/``hi`` are float arrays of any common shape, finite, lo <= hi; no granularity
    checks. This is the single implementation used by choose_qparams and the observers.
    """
    lo = np.minimum(np.asarray(lo, dtype=np.float64), 0.0)
    hi = np.maximum(np.asarray(hi, dtype=np.float64), 0.0)
    amax = np.maximum(-lo, hi)
    if spec.is_fp8:
        raw = amax / spec.fp8_format.max_finite
        zp = np.zeros(raw.shape, dtype=np.int64)
        degenerate_zp = 0
    else:
        qmin, qmax = spec.qmin, spec.qmax
        if spec.symmetric:
            raw = amax / ((qmax - qmin) / 2.0)
            mid = 0 if spec.int_format.signed else (qmin + qmax + 1) // 2
            zp = np.full(raw.shape, mid, dtype=np.int64)
            degenerate_zp = mid
        else:
            raw = (hi - lo) / float(qmax - qmin)
            with np.errstate(divide="ignore", invalid="ignore"):
                z = qmin - np.rint(lo / raw)
            zp = np.clip(np.nan_to_num(z), qmin, qmax).astype(np.int64)
            degenerate_zp = min(max(0, qmin), qmax)
    degenerate = raw < MIN_SCALE
    scale = np.where(degenerate, np.float32(1.0), raw.astype(np.float32)).astype(np.float32)
    zp = np.where(degenerate, np.int64(degenerate_zp), zp).astype(np.int64)
    return scale, zp


def choose_qparams(
    min_val: npt.ArrayLike,
    max_val: npt.ArrayLike,
    spec: QuantSpec,
    ndim: int | None = None,
) -> QParams:
    """QParams for the real range [min_val, max_val] of each block (§3.4).

    ``min_val``/``max_val`` have the stored parameter shape of ``spec.granularity``: a scalar
    for PerTensor, ``(C,)`` for PerAxis, the full-rank grid for PerBlock. ``ndim`` (the rank
    of the tensor to be quantized), when given, validates the granularity axis.
    The range is extended to include 0; see §3.4 for the scale/zero-point formulas.
    """
    if not isinstance(spec, QuantSpec):
        raise ConfigError(f"spec must be a QuantSpec, got {type(spec).__name__}")
    lo = np.asarray(min_val, dtype=np.float64)
    hi = np.asarray(max_val, dtype=np.float64)
    if lo.shape != hi.shape:
        raise HwsimError(f"min_val shape {lo.shape} must equal max_val shape {hi.shape}")
    if not np.all(np.isfinite(lo)):
        raise HwsimError("min_val must be finite (no NaN or Inf)")
    if not np.all(np.isfinite(hi)):
        raise HwsimError("max_val must be finite (no NaN or Inf)")
    if np.any(lo > hi):
        raise HwsimError("min_val must be <= max_val")
    g = spec.granularity
    if ndim is not None and not isinstance(g, PerTensor):
        normalize_axis(g, ndim)
    if isinstance(g, PerTensor):
        if lo.size != 1:
            raise ConfigError(f"min_val must be a scalar for PerTensor, got shape {lo.shape}")
        lo, hi = lo.reshape(()), hi.reshape(())
    elif isinstance(g, PerAxis) and lo.ndim != 1:
        raise ConfigError(f"min_val must be 1-D for {g!r}, got shape {lo.shape}")
    elif isinstance(g, PerBlock):
        if lo.ndim < 1 or (ndim is not None and lo.ndim != ndim):
            raise ConfigError(
                f"min_val must have the tensor's rank for {g!r}, got shape {lo.shape}"
            )
        normalize_axis(g, lo.ndim)
    scale, zp = qparams_for_range(lo, hi, spec)
    return QParams(scale=scale, zero_point=zp, spec=spec)
