"""Requant parameters of integer-graph nodes (specs/compiler.md §3.3; arithmetic §8.6, §10)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from hwsim.arith import RequantConfig, activation_range, effective_scale, requantize
from hwsim.compiler.qgraph import TensorQ
from hwsim.compiler.requant import (
    add_requant,
    fused_act_bounds,
    mac_real_scale,
    pad_code,
    rescale_requant,
)
from hwsim.reference import golden_ops as ops

BOUNDS = {"relu": (0.0, math.inf), "relu6": (0.0, 6.0), "relu_n1_to_1": (-1.0, 1.0)}


@given(st.sampled_from(sorted(BOUNDS)), st.floats(1e-4, 1.0), st.integers(-128, 127))
def test_fused_bounds_equal_arith_activation_range(act: str, scale: float, zp: int) -> None:
    """§8.6: the compiler's clamp of a fused ReLU / ReLU6 / Clip(−1, 1) equals
    hwsim.arith.activation_range (TFLite's formula) whenever that range is non-empty."""
    tq = TensorQ("t", "int8", float(np.float32(scale)), zp)
    want = activation_range(act, tq.scale, zp)
    assert fused_act_bounds(*BOUNDS[act], tq) == want


def test_unbounded_clip_keeps_format_range() -> None:
    tq = TensorQ("t", "uint8", 0.1, 10)
    assert fused_act_bounds(-math.inf, math.inf, tq) == (0, 255)
    assert fused_act_bounds(-0.5, math.inf, tq) == (5, 255)


def test_mac_real_scale_per_mode() -> None:
    """§3.3: float64 s_in·s_w/s_out, except float32 mode (ONNX Runtime's float32 formula)."""
    s_w = np.array([0.013, 0.027], dtype=np.float64)
    got = mac_real_scale(0.05, s_w, 0.11, RequantConfig(mode="tflite"))
    np.testing.assert_array_equal(got, 0.05 * s_w / 0.11)
    got32 = mac_real_scale(0.05, s_w, 0.11, RequantConfig(mode="float32"))
    want = (np.float32(0.05) * s_w.astype(np.float32)) / np.float32(0.11)
    np.testing.assert_array_equal(got32, want.astype(np.float64))


def test_pad_code() -> None:
    """§10.4: real 0.0 pads with the zero point; other values are quantized and clamped."""
    tq = TensorQ("t", "int8", 0.5, -3)
    assert pad_code(0.0, tq) == -3
    assert pad_code(1.0, tq) == -1
    assert pad_code(1e6, tq) == 127


def test_add_worked_example_of_spec() -> None:
    """§10.1 example: sa = 0.1, za = 3, sb = 0.05, zb = −2, so = 0.2, zo = 0, qa = 13,
    qb = 8 → 8 (dyadic, 16-bit, half_up)."""
    ta, tb = TensorQ("a", "int8", 0.1, 3), TensorQ("b", "int8", 0.05, -2)
    to = TensorQ("o", "int8", 0.2, 0)
    p = add_requant(ta, tb, to, RequantConfig(), (-math.inf, math.inf))
    np.testing.assert_array_equal(effective_scale(p["in0"]), [0.5])
    np.testing.assert_array_equal(effective_scale(p["in1"]), [0.25])
    np.testing.assert_array_equal(effective_scale(p["out"]), [2.0**-20])
    got = ops.add(np.array([13]), np.array([8]), za=3, zb=-2, pa=p["in0"], pb=p["in1"],
                  po=p["out"])
    assert got.tolist() == [8]


def test_rescale_with_equal_scale_only_moves_zero_point() -> None:
    """§10.3: s_in == s_out → the dyadic multiplier is exactly 1; q − z_in + z_out."""
    tin, tout = TensorQ("a", "int8", 0.07, 5), TensorQ("o", "int8", 0.07, -9)
    p = rescale_requant(tin, tout, RequantConfig())
    q = np.arange(-128, 128)
    np.testing.assert_array_equal(requantize(q - 5, p), np.clip(q - 5 - 9, -128, 127))
