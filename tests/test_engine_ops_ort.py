"""Engine kernels of the ort_cpu profile vs ONNX Runtime, op by op (specs/arithmetic.md §11.2).

Single-node com.microsoft models (QLinearAdd, QLinearGlobalAveragePool, QLinearAveragePool)
with seeded random scales, zero points and codes, run by onnxruntime; hwsim's kernels must
give the same codes on every element (tolerance 0). Ties are constructed explicitly: the
spec's examples and windows whose mean is exactly k + 1/2.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwsim.reference.engine_ops import (
    fma_f32,
    qlinear_add,
    qlinear_avgpool,
    qlinear_global_avgpool,
    quantize_linear,
)

TP = {"uint8": TensorProto.UINT8, "int8": TensorProto.INT8}
NP = {"uint8": np.uint8, "int8": np.int8}
RANGE = {"uint8": (0, 255), "int8": (-128, 127)}


def _session(node, inputs, dtype, params):
    inits = [numpy_helper.from_array(
        np.array(v, dtype=np.float32 if k.startswith("s") else NP[dtype]), k)
        for k, v in params.items()]
    g = helper.make_graph([node], "t",
                          [helper.make_tensor_value_info(n, TP[dtype], None) for n in inputs],
                          [helper.make_tensor_value_info(node.output[0], TP[dtype], None)],
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid("com.microsoft", 1)])
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _scale(rng):
    return np.float32(np.exp(rng.uniform(-6, 1)))


def _ort_add(a, b, dtype, p):
    node = helper.make_node("QLinearAdd", ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"],
                            ["c"], domain="com.microsoft")
    (c,) = _session(node, ["a", "b"], dtype, p).run(None, {"a": a, "b": b})
    return c.astype(np.int64)


def _ort_pool(x, dtype, p, op="QLinearGlobalAveragePool", **attrs):
    node = helper.make_node(op, ["x", "sx", "zx", "sy", "zy"], ["y"],
                            domain="com.microsoft", **attrs)
    (y,) = _session(node, ["x"], dtype, p).run(None, {"x": x})
    return y.astype(np.int64)


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_qlinear_add_matches_onnxruntime(dtype: str) -> None:
    """§11.2.1: random scales / zero points / codes, every element equal."""
    rng = np.random.default_rng(11)
    lo, hi = RANGE[dtype]
    total = 0
    for _ in range(60):
        p = {"sa": _scale(rng), "za": int(rng.integers(lo, hi + 1)), "sb": _scale(rng),
             "zb": int(rng.integers(lo, hi + 1)), "sc": _scale(rng),
             "zc": int(rng.integers(lo, hi + 1))}
        a = rng.integers(lo, hi + 1, (2, 3, 5, 7)).astype(NP[dtype])
        b = rng.integers(lo, hi + 1, (2, 3, 5, 7)).astype(NP[dtype])
        mine = qlinear_add(a, b, a_scale=p["sa"], a_zero_point=p["za"], b_scale=p["sb"],
                           b_zero_point=p["zb"], c_scale=p["sc"], c_zero_point=p["zc"],
                           dtype=dtype)
        np.testing.assert_array_equal(mine, _ort_add(a, b, dtype, p))
        total += mine.size
    assert total == 60 * 210


def test_qlinear_add_spec_example_ties() -> None:
    """§11.2.1 worked example: v = 7.5 rounds to even 8; v = 7 stays 7; ORT agrees."""
    p = {"sa": np.float32(0.1), "za": 3, "sb": np.float32(0.05), "zb": 2,
         "sc": np.float32(0.2), "zc": 0}
    a = np.array([13, 13, 11], dtype=np.uint8)
    b = np.array([12, 10, 12], dtype=np.uint8)
    mine = qlinear_add(a, b, a_scale=p["sa"], a_zero_point=3, b_scale=p["sb"],
                       b_zero_point=2, c_scale=p["sc"], c_zero_point=0, dtype="uint8")
    ref = _ort_add(a, b, "uint8", p)
    np.testing.assert_array_equal(mine, ref)
    # (13, 12): 6.5 + 1 = 7.5 -> 8; (13, 10): 6.5 + 0.5 = 7; (11, 12): 5.5 + 1 = 6.5 -> 6
    assert mine.tolist() == [8, 7, 6]


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_qlinear_global_avgpool_matches_onnxruntime(dtype: str) -> None:
    """§11.2.2 on random qparams and image sizes 1..49, every element equal."""
    rng = np.random.default_rng(12)
    lo, hi = RANGE[dtype]
    for _ in range(60):
        sx = _scale(rng)
        sy = np.float32(sx * np.float32(rng.choice([1.0, 0.5, 2.0, rng.uniform(0.3, 3)])))
        p = {"sx": sx, "zx": int(rng.integers(lo, hi + 1)), "sy": sy,
             "zy": int(rng.integers(lo, hi + 1))}
        x = rng.integers(lo, hi + 1, (2, 9, int(rng.integers(1, 8)),
                                      int(rng.integers(1, 8)))).astype(NP[dtype])
        mine = qlinear_global_avgpool(x, x_zero_point=p["zx"], x_scale=sx, y_scale=sy,
                                      y_zero_point=p["zy"], dtype=dtype)
        np.testing.assert_array_equal(mine, _ort_pool(x, dtype, p, channels_last=0))


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_global_avgpool_ties_half_to_even(dtype: str) -> None:
    """§11.2.2: exact ties k + 1/2 go to even in ORT (§10.2 would go away from zero)."""
    lo, _ = RANGE[dtype]
    z = lo + 10
    # 2x2 windows (N = 4, scale f32(1/4) exact): sums of (q - z) = 10, 6, -10, -6, 2
    offsets = np.array([[4, 2, 2, 2], [3, 1, 1, 1], [-4, -2, -2, -2], [-3, -1, -1, -1],
                        [1, 1, 0, 0]])
    x = (z + offsets).reshape(1, 5, 2, 2).astype(NP[dtype])
    p = {"sx": np.float32(0.5), "zx": z, "sy": np.float32(0.5), "zy": z}
    mine = qlinear_global_avgpool(x, x_zero_point=z, x_scale=0.5, y_scale=0.5,
                                  y_zero_point=z, dtype=dtype)
    ref = _ort_pool(x, dtype, p, channels_last=0)
    np.testing.assert_array_equal(mine, ref)
    assert (mine.reshape(-1) - z).tolist() == [2, 2, -2, -2, 0]


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_qlinear_avgpool_matches_onnxruntime(dtype: str) -> None:
    """§11.2.3 over random kernels, strides, pads, count_include_pad, qparams."""
    rng = np.random.default_rng(13)
    lo, hi = RANGE[dtype]
    for _ in range(40):
        sx = _scale(rng)
        sy = np.float32(sx * np.float32(rng.choice([1.0, rng.uniform(0.3, 3)])))
        p = {"sx": sx, "zx": int(rng.integers(lo, hi + 1)), "sy": sy,
             "zy": int(rng.integers(lo, hi + 1))}
        k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        pads = (int(rng.integers(0, k[0])), int(rng.integers(0, k[1])),
                int(rng.integers(0, k[0])), int(rng.integers(0, k[1])))
        st = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        cip = int(rng.integers(0, 2))
        x = rng.integers(lo, hi + 1, (2, 4, 6, 7)).astype(NP[dtype])
        mine = qlinear_avgpool(x, x_zero_point=p["zx"], x_scale=sx, y_scale=sy,
                               y_zero_point=p["zy"], dtype=dtype, kernel=k, strides=st,
                               pads=pads, count_include_pad=bool(cip))
        ref = _ort_pool(x, dtype, p, "QLinearAveragePool", kernel_shape=list(k),
                        pads=list(pads), strides=list(st), count_include_pad=cip)
        np.testing.assert_array_equal(mine, ref)


def test_avgpool_ties_half_to_even() -> None:
    """§11.2.3: windows with mean exactly k + 1/2 (scale 1, z 0) round to even in ORT."""
    x = np.array([[[[1, 2, 3, 4], [5, 6, 7, 8]]]], dtype=np.uint8)  # 1x2 windows
    p = {"sx": np.float32(1.0), "zx": 0, "sy": np.float32(1.0), "zy": 0}
    mine = qlinear_avgpool(x, x_zero_point=0, x_scale=1.0, y_scale=1.0, y_zero_point=0,
                           dtype="uint8", kernel=(1, 2), strides=(1, 2), pads=(0, 0, 0, 0),
                           count_include_pad=False)
    ref = _ort_pool(x, "uint8", p, "QLinearAveragePool", kernel_shape=[1, 2],
                    strides=[1, 2])
    np.testing.assert_array_equal(mine, ref)
    assert mine.reshape(-1).tolist() == [2, 4, 6, 8]  # 1.5, 3.5, 5.5, 7.5 -> even


def test_quantize_linear_matches_onnxruntime() -> None:
    """§11.2.5: QuantizeLinear codes, including exact ties x/s = k + 1/2."""
    rng = np.random.default_rng(14)
    x = np.concatenate([rng.normal(0, 3, 5000), np.arange(-20, 20) + 0.5]).astype(np.float32)
    for dtype, z in (("uint8", 128), ("int8", -3)):
        node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])
        g = helper.make_graph(
            [node], "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
            [helper.make_tensor_value_info("y", TP[dtype], None)],
            [numpy_helper.from_array(np.array(0.25, np.float32), "s"),
             numpy_helper.from_array(np.array(z, NP[dtype]), "z")])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
        sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        (y,) = sess.run(None, {"x": x})
        np.testing.assert_array_equal(quantize_linear(x, 0.25, z, dtype), y.astype(np.int64))


def test_fma_f32_is_one_rounding() -> None:
    """fma_f32 == the exact rational a·b + c rounded once to binary32 (half to even)."""
    rng = np.random.default_rng(15)
    a = rng.integers(-255, 256, 4000).astype(np.float32)
    b = rng.normal(0, 1, 4000).astype(np.float32) * np.float32(2.0) ** rng.integers(
        -20, 5, 4000).astype(np.float32)
    c = rng.normal(0, 100, 4000).astype(np.float32)
    c[:500] = -(a[:500].astype(np.float64) * b[:500]).astype(np.float32)  # cancellations
    got = fma_f32(a, b, c)
    for i in range(a.size):
        exact = Fraction(float(a[i])) * Fraction(float(b[i])) + Fraction(float(c[i]))
        assert Fraction(float(got[i])) == _round_f32(exact), i


def _round_f32(v: Fraction) -> Fraction:
    """Round a rational to the nearest binary32 value, ties to even (normal range)."""
    if v == 0:
        return Fraction(0)
    sign = -1 if v < 0 else 1
    m = abs(v)
    e = m.numerator.bit_length() - m.denominator.bit_length()
    if Fraction(2) ** e > m:
        e -= 1
    ulp = Fraction(2) ** (e - 23)
    q, r = divmod(m, ulp)
    if r * 2 > ulp or (r * 2 == ulp and q % 2 == 1):
        q += 1
    return sign * q * ulp


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_lookup_ops_match_onnxruntime(dtype: str) -> None:
    """§11.2.4 QLinearConcat (copy and requantized inputs) and §11.2.6 QLinearLeakyRelu,
    every code of the format through random qparams."""
    from hwsim.reference.engine_ops import leaky_relu_f32, lookup_requantize

    rng = np.random.default_rng(16)
    lo, hi = RANGE[dtype]
    codes = np.arange(lo, hi + 1).astype(NP[dtype]).reshape(1, 1, 16, 16)
    for _ in range(20):
        p = {"sx": _scale(rng), "zx": int(rng.integers(lo, hi + 1)), "sy": _scale(rng),
             "zy": int(rng.integers(lo, hi + 1))}
        alpha = float(rng.uniform(0.01, 0.5))
        node = helper.make_node("QLinearLeakyRelu", ["x", "sx", "zx", "sy", "zy"], ["y"],
                                domain="com.microsoft", alpha=alpha)
        (ref,) = _session(node, ["x"], dtype, p).run(None, {"x": codes})
        mine = lookup_requantize(codes, x_scale=p["sx"], x_zero_point=p["zx"],
                                 y_scale=p["sy"], y_zero_point=p["zy"], dtype=dtype,
                                 fn=leaky_relu_f32(alpha))
        np.testing.assert_array_equal(mine, ref.astype(np.int64))
        cat = helper.make_node("QLinearConcat", ["sy", "zy", "x", "sx", "zx", "x2", "sy",
                                                 "zy"], ["y"], domain="com.microsoft", axis=1)
        (ref,) = _session(cat, ["x", "x2"], dtype, p).run(None, {"x": codes, "x2": codes})
        want = np.concatenate([lookup_requantize(codes, x_scale=p["sx"], x_zero_point=p["zx"],
                                                 y_scale=p["sy"], y_zero_point=p["zy"],
                                                 dtype=dtype), codes.astype(np.int64)], axis=1)
        np.testing.assert_array_equal(want, ref.astype(np.int64))


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_qlinear_mul_matches_onnxruntime(dtype: str) -> None:
    """§11.2.7: random scales / zero points / codes, every element equal."""
    from hwsim.reference.engine_ops import qlinear_mul

    rng = np.random.default_rng(17)
    lo, hi = RANGE[dtype]
    for _ in range(40):
        p = {"sa": _scale(rng), "za": int(rng.integers(lo, hi + 1)), "sb": _scale(rng),
             "zb": int(rng.integers(lo, hi + 1)), "sc": _scale(rng) * np.float32(0.3),
             "zc": int(rng.integers(lo, hi + 1))}
        a = rng.integers(lo, hi + 1, (2, 3, 5, 7)).astype(NP[dtype])
        b = rng.integers(lo, hi + 1, (2, 3, 5, 7)).astype(NP[dtype])
        node = helper.make_node("QLinearMul", ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"],
                                ["c"], domain="com.microsoft")
        (ref,) = _session(node, ["a", "b"], dtype, p).run(None, {"a": a, "b": b})
        mine = qlinear_mul(a, b, a_scale=p["sa"], a_zero_point=p["za"], b_scale=p["sb"],
                           b_zero_point=p["zb"], c_scale=p["sc"], c_zero_point=p["zc"],
                           dtype=dtype)
        np.testing.assert_array_equal(mine, ref.astype(np.int64))


def test_u8s8_pair_saturation_definition() -> None:
    """§11.2.8: Σ_j sat16(a[2j]·w[2j] + a[2j+1]·w[2j+1]), odd K padded with a zero."""
    from hwsim.reference.engine_ops import u8s8_pair_saturated_acc

    rng = np.random.default_rng(18)
    a = rng.integers(0, 256, (50, 7))
    w = rng.integers(-128, 128, (3, 7))
    got = u8s8_pair_saturated_acc(a, w)
    for p in range(50):
        for m in range(3):
            s = 0
            for j in range(0, 8, 2):
                x = a[p, j] * w[m, j] + (a[p, j + 1] * w[m, j + 1] if j + 1 < 7 else 0)
                s += min(max(int(x), -32768), 32767)
            assert got[p, m] == s
    small = rng.integers(0, 100, (20, 9))
    ws = rng.integers(-100, 100, (4, 9))
    np.testing.assert_array_equal(u8s8_pair_saturated_acc(small, ws), small @ ws.T)
    assert (got != a @ w.T).any()


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_qlinear_sigmoid_matches_onnxruntime(dtype: str) -> None:
    """§11.2.6 QLinearSigmoid: every code of the format, random qparams (MLAS FMA3 logistic
    reproduced with exact fused multiply-adds)."""
    from hwsim.reference.engine_ops import logistic_f32, lookup_requantize

    rng = np.random.default_rng(19)
    lo, hi = RANGE[dtype]
    codes = np.arange(lo, hi + 1).astype(NP[dtype]).reshape(1, 1, 16, 16)
    for _ in range(30):
        p = {"sx": np.float32(np.exp(rng.uniform(-6, 0))),
             "zx": int(rng.integers(lo, hi + 1)),
             "sy": np.float32(np.exp(rng.uniform(-9, -4))), "zy": int(rng.integers(lo, hi + 1))}
        node = helper.make_node("QLinearSigmoid", ["x", "sx", "zx", "sy", "zy"], ["y"],
                                domain="com.microsoft")
        (ref,) = _session(node, ["x"], dtype, p).run(None, {"x": codes})
        mine = lookup_requantize(codes, x_scale=p["sx"], x_zero_point=p["zx"],
                                 y_scale=p["sy"], y_zero_point=p["zy"], dtype=dtype,
                                 fn=logistic_f32)
        np.testing.assert_array_equal(mine, ref.astype(np.int64))
