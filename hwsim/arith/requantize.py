"""Requantization: the configurable block from int32 accumulator to output codes (§8, §9).

``RequantConfig`` chooses the engine semantics, ``make_requant_params`` turns real scales
into the per-channel integer parameters the hardware stores, ``requantize`` runs the full
§8 pipeline in exact int64 numpy code, and ``effective_scale`` is the value the float64
fake-quant reference multiplies by (§9).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hwsim.arith.accumulator import int_range, wrap_to_bits
from hwsim.arith.multiplier import (
    INT32_MAX,
    INT32_MIN,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_single_round,
    quantize_multiplier,
    quantize_multiplier_dyadic,
)
from hwsim.arith.rounding import (
    MAX_SHIFT,
    ROUNDING_MODES,
    rounding_shift_right_bounded,
)
from hwsim.errors import ConfigError, HwsimError

#: Requantization modes of §8, in the order of :data:`hwsim.arith.jit.MODE_CODES`.
REQUANT_MODES: tuple[str, ...] = (
    "tflite", "tflite_single", "float32", "dyadic", "custom", "float64")
#: Output-stage overflow handling of §8.6.
OUTPUT_OVERFLOWS: tuple[str, ...] = ("saturate", "wrap")


def _is_int(v: object) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


@dataclass(frozen=True)
class RequantConfig:
    """Which requantization datapath the hardware implements (§8).

    - ``mode``: ``"tflite"`` (§8.1, gemmlowp, two roundings), ``"tflite_single"`` (§8.2),
      ``"float32"`` (§8.3, ONNX Runtime MLAS), ``"dyadic"`` (§8.4, ``m·2^−n``, one rounding,
      saturating output), ``"custom"`` (§8.5, the dyadic datapath with every field free,
      including a wrapping output stage), ``"float64"`` (§8.7, LiteRT's reference
      FULLY_CONNECTED: one float64 product rounded half away from zero).
    - ``multiplier_bits`` (1..31), ``rounding`` (§6), ``shift_min``/``shift_max``
      (``0 <= shift_min <= shift_max <= 62``): used by ``dyadic`` and ``custom`` only; the
      other modes have the multiplier width and rounding of the engine they reproduce.
    - ``output_overflow``: ``"saturate"`` or ``"wrap"`` (§8.6); ``"wrap"`` is accepted by the
      integer modes ``tflite``, ``tflite_single`` and ``custom``.
    """

    mode: str = "dyadic"
    multiplier_bits: int = 16
    rounding: str = "half_up"
    shift_min: int = 0
    shift_max: int = 62
    output_overflow: str = "saturate"

    def __post_init__(self) -> None:
        if self.mode not in REQUANT_MODES:
            raise ConfigError(
                f"mode: unknown requantization mode {self.mode!r}; expected one of "
                f"{', '.join(REQUANT_MODES)}"
            )
        if not _is_int(self.multiplier_bits) or not 1 <= self.multiplier_bits <= 31:
            raise ConfigError(
                f"multiplier_bits: expected an integer in [1, 31], got {self.multiplier_bits!r}"
            )
        if self.rounding not in ROUNDING_MODES:
            raise ConfigError(
                f"rounding: unknown rounding mode {self.rounding!r}; expected one of "
                f"{', '.join(ROUNDING_MODES)}"
            )
        for name in ("shift_min", "shift_max"):
            v = getattr(self, name)
            if not _is_int(v) or not 0 <= v <= MAX_SHIFT:
                raise ConfigError(f"{name}: expected an integer in [0, {MAX_SHIFT}], got {v!r}")
        if self.shift_min > self.shift_max:
            raise ConfigError(
                f"shift_min: expected shift_min <= shift_max, got {self.shift_min} > "
                f"{self.shift_max}"
            )
        if self.output_overflow not in OUTPUT_OVERFLOWS:
            raise ConfigError(
                f"output_overflow: expected one of {', '.join(OUTPUT_OVERFLOWS)}, got "
                f"{self.output_overflow!r}"
            )
        if self.output_overflow == "wrap" and self.mode in ("float32", "dyadic", "float64"):
            raise ConfigError(
                f"output_overflow: mode {self.mode!r} saturates its output; 'wrap' needs mode "
                "'custom' (or 'tflite' / 'tflite_single')"
            )


def _frozen_array(a: npt.ArrayLike, dtype: type) -> np.ndarray:
    arr = np.array(a, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class RequantParams:
    """Per-channel integer parameters of one requantization block (§8).

    ``multiplier``, ``shift`` (int64) and ``scale_f32`` (float32) are 1-D arrays of the
    same length ``C`` (``C = 1``: per tensor). For every integer mode the hardware value is
    ``multiplier · 2^−shift`` with ``shift`` a RIGHT shift: ``tflite``/``tflite_single`` store
    ``shift = 31 − e`` for the TFLite exponent ``e`` (so ``e = 31 − shift``), ``dyadic`` and
    ``custom`` store ``n``. ``float32`` uses ``scale_f32`` (``multiplier = shift = 0``);
    ``scale_f32`` holds ``float32(real_scale)`` in every mode. The output is ``out_bits``
    wide (signed or not), ``zero_point`` and ``qmin <= act_min <= act_max <= qmax`` lie in
    its range. Arrays are read-only; equality is identity.
    """

    config: RequantConfig
    multiplier: npt.NDArray[np.int64]
    shift: npt.NDArray[np.int64]
    scale_f32: npt.NDArray[np.float32]
    zero_point: int
    out_bits: int
    out_signed: bool
    act_min: int
    act_max: int

    def __post_init__(self) -> None:
        if not isinstance(self.config, RequantConfig):
            raise ConfigError(f"config: expected a RequantConfig, got {type(self.config).__name__}")
        for name, dtype in (
            ("multiplier", np.int64),
            ("shift", np.int64),
            ("scale_f32", np.float32),
        ):
            object.__setattr__(self, name, _frozen_array(getattr(self, name), dtype))
            if getattr(self, name).ndim != 1:
                raise ConfigError(f"{name}: expected a 1-D per-channel array")
        c = self.multiplier.shape[0]
        if c == 0 or self.shift.shape[0] != c or self.scale_f32.shape[0] != c:
            raise ConfigError(
                "multiplier: multiplier, shift and scale_f32 must have the same length C >= 1, "
                f"got {self.multiplier.shape[0]}, {self.shift.shape[0]}, {self.scale_f32.shape[0]}"
            )
        if not _is_int(self.out_bits) or not 2 <= self.out_bits <= 32:
            raise ConfigError(f"out_bits: expected an integer in [2, 32], got {self.out_bits!r}")
        if not isinstance(self.out_signed, (bool, np.bool_)):
            raise ConfigError(f"out_signed: expected a bool, got {self.out_signed!r}")
        qmin, qmax = int_range(self.out_bits, bool(self.out_signed))
        for name in ("zero_point", "act_min", "act_max"):
            v = getattr(self, name)
            if not _is_int(v) or not qmin <= v <= qmax:
                raise ConfigError(
                    f"{name}: expected an integer in the output range [{qmin}, {qmax}], got {v!r}"
                )
            object.__setattr__(self, name, int(v))
        if self.act_min > self.act_max:
            raise ConfigError(
                f"act_min: expected act_min <= act_max, got {self.act_min} > {self.act_max}"
            )
        if self.config.mode in ("tflite", "tflite_single"):
            self._check_ints(0, INT32_MAX, 1, 62)
        elif self.config.mode in ("dyadic", "custom"):
            cfg = self.config
            self._check_ints(0, (1 << cfg.multiplier_bits) - 1, cfg.shift_min, cfg.shift_max)
        elif self.config.mode == "float64":
            self._check_ints(0, (1 << 53) - 1, 0, FLOAT64_MAX_SHIFT)
        else:
            s = self.scale_f32
            if not np.all(np.isfinite(s)) or np.any(s < 0):
                raise ConfigError("scale_f32: expected finite scales >= 0")

    def _check_ints(self, m_lo: int, m_hi: int, s_lo: int, s_hi: int) -> None:
        m, s = self.multiplier, self.shift
        if int(m.min()) < m_lo or int(m.max()) > m_hi:
            raise ConfigError(
                f"multiplier: mode {self.config.mode!r} expects values in [{m_lo}, {m_hi}], got "
                f"[{int(m.min())}, {int(m.max())}]"
            )
        if int(s.min()) < s_lo or int(s.max()) > s_hi:
            raise ConfigError(
                f"shift: mode {self.config.mode!r} expects right shifts in [{s_lo}, {s_hi}], got "
                f"[{int(s.min())}, {int(s.max())}]"
            )

    @property
    def qmin(self) -> int:
        """Smallest code of the output format."""
        return int_range(self.out_bits, bool(self.out_signed))[0]

    @property
    def qmax(self) -> int:
        """Largest code of the output format."""
        return int_range(self.out_bits, bool(self.out_signed))[1]

    @property
    def channels(self) -> int:
        """Number of channels ``C`` (1 for per-tensor parameters)."""
        return int(self.multiplier.shape[0])


def make_requant_params(
    real_scale: float | npt.ArrayLike,
    config: RequantConfig,
    zero_point: int,
    out_bits: int = 8,
    out_signed: bool = True,
    act_min: int | None = None,
    act_max: int | None = None,
) -> RequantParams:
    """Integer parameters realising ``real_scale`` (``s_in·s_w/s_out``, float64) under ``config``.

    ``real_scale`` is a scalar (per tensor, ``C = 1``) or a 1-D per-channel array of finite
    values ``>= 0`` (else :class:`ConfigError` naming ``real_scale``). Per mode (§8):
    ``tflite`` -> :func:`quantize_multiplier` (scales ``>= 2^30`` rejected: TFLite would shift
    ``1 << 31``), ``tflite_single`` -> the same with ``e`` saturated at 30, ``float32`` ->
    ``float32(real_scale)`` (pass ORT's float32 value for exact ORT parity),
    ``dyadic``/``custom`` -> :func:`quantize_multiplier_dyadic`. ``act_min``/``act_max`` default
    to the output range ``[qmin, qmax]`` and carry a fused ReLU/ReLU6/clamp (§8.6).
    """
    if not isinstance(config, RequantConfig):
        raise ConfigError(f"config: expected a RequantConfig, got {type(config).__name__}")
    try:
        scales = np.asarray(real_scale, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"real_scale: expected float scales, got {real_scale!r}") from exc
    if scales.ndim > 1:
        raise ConfigError(f"real_scale: expected a scalar or a 1-D array, got shape {scales.shape}")
    scales = scales.reshape(-1)
    if scales.size == 0:
        raise ConfigError("real_scale: expected at least one scale")
    bad = ~np.isfinite(scales) | (scales < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ConfigError(
            f"real_scale: expected finite scales >= 0, got {float(scales[i])!r} at channel {i}"
        )
    if not _is_int(out_bits) or not 2 <= out_bits <= 32:
        raise ConfigError(f"out_bits: expected an integer in [2, 32], got {out_bits!r}")
    qmin, qmax = int_range(out_bits, bool(out_signed))
    mode = config.mode
    if mode in ("tflite", "tflite_single"):
        m, e = quantize_multiplier(scales, single_rounding=mode == "tflite_single")
        if mode == "tflite" and np.any(e > 30):
            raise ConfigError(
                "real_scale: mode 'tflite' needs a TFLite exponent e <= 30 (scales below about "
                f"2^30), got {float(scales.max())!r}"
            )
        multiplier, shift = m, 31 - e
    elif mode == "float32":
        multiplier = np.zeros(scales.shape, dtype=np.int64)
        shift = np.zeros(scales.shape, dtype=np.int64)
    elif mode == "float64":
        multiplier, shift = float64_multiplier(scales)
    else:
        multiplier, shift = quantize_multiplier_dyadic(
            scales, config.multiplier_bits, config.shift_min, config.shift_max
        )
    return RequantParams(
        config=config,
        multiplier=multiplier,
        shift=shift,
        scale_f32=scales.astype(np.float32),
        zero_point=zero_point,
        out_bits=out_bits,
        out_signed=bool(out_signed),
        act_min=qmin if act_min is None else act_min,
        act_max=qmax if act_max is None else act_max,
    )


#: Largest right shift of mode ``float64`` (§8.7): scales down to 2^−73 (and the shift fits
#: the signed 8-bit ``requant_shift`` field of golden vectors).
FLOAT64_MAX_SHIFT = 126


def float64_multiplier(scales: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """§8.7: the float64 scales as exact ``(M, shift)`` with ``scale = M·2^−shift``, ``M`` the
    53-bit significand (``0 ≤ M < 2^53``; ``(0, 0)`` for a zero scale). Scales whose shift
    would exceed :data:`FLOAT64_MAX_SHIFT` raise :class:`ConfigError`."""
    s = np.asarray(scales, dtype=np.float64).reshape(-1)
    mant, exp = np.frexp(s)  # s = mant·2^exp, mant in [0.5, 1)
    m = np.ldexp(mant, 53).astype(np.int64)
    shift = (53 - exp).astype(np.int64)
    zero = s == 0
    m[zero], shift[zero] = 0, 0
    if np.any(shift > FLOAT64_MAX_SHIFT) or np.any(shift < 0):
        raise ConfigError(f"real_scale: mode 'float64' needs scales in [2^-73, 2^53), got "
                          f"[{float(s.min())!r}, {float(s.max())!r}]")
    return m, shift


def round_half_away_f64(v: np.ndarray) -> np.ndarray:
    """C ``round()`` of float64 values, exactly: ``sign(v)·⌊|v| + 1/2⌋`` computed as
    ``fl = ⌊|v|⌋``, ``fl + (|v| − fl ≥ 0.5)`` (no inexact addition); int64 result."""
    a = np.abs(v)
    fl = np.floor(a)
    r = fl + (a - fl >= 0.5)
    return np.where(v < 0, -r, r).astype(np.int64)


def effective_scale(params: RequantParams) -> npt.NDArray[np.float64]:
    """Per-channel value the hardware multiplies by, exactly, as float64 (§9).

    ``float32``: ``float64(scale_f32)``; every integer mode: ``multiplier · 2^−shift``
    (tflite: ``M·2^(e−31)``; dyadic/custom: ``m·2^−n``; float64: the float64 scale itself,
    ``M·2^−shift``). Exact: ``multiplier < 2^53`` and ``shift <= 126`` keep the value a
    normal float64.
    """
    if params.config.mode == "float32":
        return params.scale_f32.astype(np.float64)
    return np.ldexp(params.multiplier.astype(np.float64), -params.shift.astype(np.int64))


def _per_channel(v: np.ndarray, shape: tuple[int, ...], axis: int) -> np.ndarray:
    """Reshape a length-C parameter to broadcast along ``axis`` of ``shape``."""
    if v.shape[0] == 1:
        return v.reshape(())
    view = [1] * len(shape)
    view[axis] = v.shape[0]
    return v.reshape(view)


def requantize(
    acc: npt.ArrayLike, params: RequantParams, channel_axis: int = -1
) -> npt.NDArray[np.int64]:
    """The full §8 pipeline: accumulator values (int32) -> output codes (int64 array).

    1. ``y`` = the mode's scaled value (§8.1–§8.5): tflite ->
       :func:`multiply_by_quantized_multiplier` with ``e = 31 − shift``; tflite_single ->
       ``(acc·M + 2^(shift−1)) >> shift``; float32 -> ``rne(clamp(f32(f32(acc)·scale_f32),
       qmin − z, qmax − z))``; dyadic/custom -> ``rounding_shift_right(acc·m, n, rounding)``.
    2. output stage (§8.6): ``v = y + z``; saturate: ``clamp(v, act_min, act_max)``; wrap:
       ``clamp(wrap_to_bits(v, out_bits, out_signed), act_min, act_max)``.

    Per-channel parameters apply along ``channel_axis`` of ``acc`` (``C = 1`` broadcasts).
    ``acc`` outside int32 raises :class:`HwsimError`.
    """
    a = np.asarray(acc)
    if a.dtype.kind not in "iu":
        raise HwsimError(f"acc: expected an integer accumulator array, got dtype {a.dtype}")
    a = a.astype(np.int64, copy=False)
    if a.size and (int(a.min()) < INT32_MIN or int(a.max()) > INT32_MAX):
        raise HwsimError(
            f"acc: expected accumulator values in the int32 range, got [{int(a.min())}, "
            f"{int(a.max())}]"
        )
    c = params.channels
    if c > 1:
        if a.ndim == 0:
            raise HwsimError(f"acc: a scalar cannot be requantized with {c} channels")
        axis = channel_axis + a.ndim if channel_axis < 0 else channel_axis
        if not 0 <= axis < a.ndim:
            raise HwsimError(f"channel_axis: {channel_axis} is out of range for {a.ndim}-D acc")
        if a.shape[axis] != c:
            raise HwsimError(
                f"acc: axis {channel_axis} has {a.shape[axis]} entries, params have {c} channels"
            )
    else:
        axis = 0
    mult = _per_channel(params.multiplier, a.shape, axis)
    shift = _per_channel(params.shift, a.shape, axis)
    z = params.zero_point
    mode = params.config.mode
    if mode == "tflite":
        y = multiply_by_quantized_multiplier(a, mult, 31 - shift)
    elif mode == "tflite_single":
        y = multiply_by_quantized_multiplier_single_round(a, mult, 31 - shift)
    elif mode == "float64":
        eff = _per_channel(effective_scale(params), a.shape, axis)
        y = round_half_away_f64(a.astype(np.float64) * eff)
    elif mode == "float32":
        s32 = _per_channel(params.scale_f32, a.shape, axis)
        f = np.multiply(a.astype(np.float32), s32, dtype=np.float32)
        f = np.clip(f, np.float32(params.qmin - z), np.float32(params.qmax - z))
        y = np.rint(f).astype(np.int64)
    else:
        # |acc·m| ≤ 2^31·(2^31 − 1) < 2^62: the bounded in-place shift is exact (§6).
        y = rounding_shift_right_bounded(np.asarray(np.multiply(a, mult, dtype=np.int64)),
                                         shift, params.config.rounding)
    y = np.asarray(y, dtype=np.int64)
    if not y.flags.writeable or y is a:
        y = y.copy()
    y += z
    if params.config.output_overflow == "wrap":
        y = wrap_to_bits(y, params.out_bits, params.out_signed)
    return np.clip(y, params.act_min, params.act_max, out=y)


#: Fused activations understood by :func:`activation_range` (TFLite ``TfLiteFusedActivation``).
ACTIVATIONS: tuple[str, ...] = ("none", "relu", "relu6", "relu_n1_to_1")


def activation_range(
    activation: str, scale: float, zero_point: int, out_bits: int = 8, out_signed: bool = True
) -> tuple[int, int]:
    """``(act_min, act_max)`` of a fused activation, as TFLite computes it (§8.6).

    ``Q(f) = zero_point + round_half_away(float32(f) / float32(scale))`` (float32 division,
    TFLite ``CalculateActivationRangeQuantizedImpl`` in ``kernel_util.cc``); ``relu`` ->
    ``[max(qmin, Q(0)), qmax]``, ``relu6`` -> ``[max(qmin, Q(0)), min(qmax, Q(6))]``,
    ``relu_n1_to_1`` -> ``[max(qmin, Q(−1)), min(qmax, Q(1))]``, ``none`` -> ``[qmin, qmax]``.
    ``scale`` is the output scale (finite, > 0); an empty range raises :class:`ConfigError`.
    """
    if activation not in ACTIVATIONS:
        raise ConfigError(
            f"activation: unknown fused activation {activation!r}; expected one of "
            f"{', '.join(ACTIVATIONS)}"
        )
    s = np.float32(scale)
    if not np.isfinite(s) or s <= 0:
        raise ConfigError(f"scale: expected a finite output scale > 0, got {scale!r}")
    if not _is_int(out_bits) or not 2 <= out_bits <= 32:
        raise ConfigError(f"out_bits: expected an integer in [2, 32], got {out_bits!r}")
    qmin, qmax = int_range(out_bits, bool(out_signed))

    def q(f: float) -> int:
        v = float(np.divide(np.float32(f), s, dtype=np.float32))  # exact float32 value
        r = np.floor(abs(v) + 0.5) if abs(v) < 2.0**52 else abs(v)  # exact in float64
        return int(zero_point) + int(r if v >= 0 else -r)

    if activation == "none":
        lo, hi = qmin, qmax
    elif activation == "relu":
        lo, hi = max(qmin, q(0.0)), qmax
    elif activation == "relu6":
        lo, hi = max(qmin, q(0.0)), min(qmax, q(6.0))
    else:
        lo, hi = max(qmin, q(-1.0)), min(qmax, q(1.0))
    if lo > hi:
        raise ConfigError(
            f"activation: {activation!r} with scale {scale!r} and zero_point {zero_point} gives "
            f"an empty output range [{lo}, {hi}]"
        )
    return lo, hi
