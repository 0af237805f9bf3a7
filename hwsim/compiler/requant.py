"""Requantization parameters of integer-graph nodes (specs/compiler.md §3, arithmetic §8, §10).

Pure functions from scales (float) and a :class:`hwsim.arith.RequantConfig` to
:class:`hwsim.arith.RequantParams`; used by the static compiler and, per input, by the
dynamic executors.
"""

from __future__ import annotations

import math

import numpy as np

from hwsim.arith import RequantConfig, RequantParams, make_requant_params
from hwsim.compiler.qgraph import TensorQ
from hwsim.reference.golden_ops import add_left_shift

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def _bits_signed(tq: TensorQ) -> tuple[int, bool]:
    return int(tq.dtype.removeprefix("u").removeprefix("int")), not tq.dtype.startswith("u")


def fused_act_bounds(lo: float, hi: float, tq: TensorQ) -> tuple[int, int]:
    """Clamp bounds of a fused activation with real range [lo, hi] on output ``tq``
    (TFLite ``CalculateActivationRangeQuantized``): Q(f) = zp + round_half_away(f / scale)
    evaluated in float32, act_min = max(qmin, Q(lo)), act_max = min(qmax, Q(hi));
    an infinite bound leaves qmin / qmax."""

    def q(f: float) -> int:
        v = np.float32(f) / np.float32(tq.scale)
        return tq.zero_point + int(math.copysign(math.floor(abs(float(v)) + 0.5), float(v)))

    act_min = tq.qmin if math.isinf(lo) else max(tq.qmin, q(lo))
    act_max = tq.qmax if math.isinf(hi) else min(tq.qmax, q(hi))
    return act_min, max(act_min, act_max)


def pad_code(value: float, tq: TensorQ) -> int:
    """Code of the constant ``value`` of a pad node: clamp(z + round_half_even(value / s))
    (the zero point for the usual 0.0, §10.4)."""
    q = tq.zero_point + int(np.rint(np.float64(value) / tq.scale))
    return min(max(q, tq.qmin), tq.qmax)


def mac_real_scale(s_in: float, s_w: np.ndarray, s_out: float, config: RequantConfig) -> np.ndarray:
    """Real multiplier s_in·s_w(c)/s_out of a conv/gemm output channel (§8): float64
    arithmetic (TFLite), except mode ``float32``, where it is ONNX Runtime's
    float32(float32(s_in·s_w)/s_out)."""
    s_w = np.asarray(s_w, dtype=np.float64)
    if config.mode == "float32":
        prod = (np.float32(s_in) * s_w.astype(np.float32)).astype(np.float32)
        return (prod / np.float32(s_out)).astype(np.float32).astype(np.float64)
    return float(s_in) * s_w / float(s_out)


def mac_requant(s_in: float, s_w: np.ndarray, tout: TensorQ, config: RequantConfig,
                act: tuple[float, float]) -> RequantParams:
    """Per-output-channel requant params of a conv/gemm with fused activation ``act``."""
    bits, signed = _bits_signed(tout)
    act_min, act_max = fused_act_bounds(act[0], act[1], tout)
    return make_requant_params(mac_real_scale(s_in, s_w, tout.scale, config), config,
                               tout.zero_point, out_bits=bits, out_signed=signed,
                               act_min=act_min, act_max=act_max)


def add_requant(ta: TensorQ, tb: TensorQ, tout: TensorQ, config: RequantConfig,
                act: tuple[float, float]) -> dict[str, RequantParams]:
    """§10.1 parameters of the integer add: with m = 2·max(s_a, s_b) and L =
    add_left_shift(input bits), ``in0`` rescales by s_a/m, ``in1`` by s_b/m (zero point 0,
    32-bit, no clamp inside the int32 range) and ``out`` by m/(2^L·s_out) with the output
    zero point and clamp."""
    twice_max = 2.0 * max(ta.scale, tb.scale)
    shift = add_left_shift(max(_bits_signed(ta)[0], _bits_signed(tb)[0]))
    wide = dict(out_bits=32, out_signed=True, act_min=INT32_MIN, act_max=INT32_MAX)
    bits, signed = _bits_signed(tout)
    act_min, act_max = fused_act_bounds(act[0], act[1], tout)
    return {
        "in0": make_requant_params(ta.scale / twice_max, config, 0, **wide),
        "in1": make_requant_params(tb.scale / twice_max, config, 0, **wide),
        "out": make_requant_params(twice_max / ((1 << shift) * tout.scale), config,
                                   tout.zero_point, out_bits=bits, out_signed=signed,
                                   act_min=act_min, act_max=act_max),
    }


def rescale_requant(tin: TensorQ, tout: TensorQ, config: RequantConfig) -> RequantParams:
    """§10.3 requantization of codes (q − z_in) to the output scale: s_in/s_out, + z_out."""
    bits, signed = _bits_signed(tout)
    return make_requant_params(tin.scale / tout.scale, config, tout.zero_point,
                               out_bits=bits, out_signed=signed,
                               act_min=tout.qmin, act_max=tout.qmax)
