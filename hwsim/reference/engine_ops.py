"""Engine kernels: the non-MAC ops of engine profiles (specs/arithmetic.md §11.2).

ONNX Runtime computes add and pooling of quantized tensors with float32 arithmetic in
fixed orders. Every step below is one IEEE binary32 operation (round to nearest even),
reproduced exactly with numpy float32 (products, quotients, sums) or with the exact
fused multiply-add :func:`fma_f32`; conversions to integers round half to even and
saturate as the ORT kernels' packing instructions do. The integer-graph ops
``qlinear_add``, ``qlinear_mul``, ``qlinear_global_avgpool``, ``qlinear_avgpool``,
``qlinear_concat``, ``qlinear_leaky_relu`` and ``qlinear_sigmoid`` run these functions;
:data:`ENGINE_KERNELS` is the table the golden executor consults for them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from hwsim.arith import RequantConfig, make_requant_params, requantize
from hwsim.errors import ModelError

F32 = np.float32
F64 = np.float64


def fma_f32(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """float32(a·b + c) with ONE rounding (IEEE fusedMultiplyAdd on binary32), for float32
    ``a``, ``b``, ``c`` (§11.2.1). a·b is exact in float64 (24 + 24 bits); the float64 sum
    is made round-to-odd with its exact TwoSum error, and round-to-odd to 53 bits followed by
    round-to-nearest-even to 24 bits equals one rounding to 24 bits (53 ≥ 24 + 2)."""
    p = np.asarray(a, dtype=F32).astype(F64) * np.asarray(b, dtype=F32).astype(F64)
    c64 = np.asarray(c, dtype=F32).astype(F64)
    p, c64 = np.broadcast_arrays(p, c64)
    s = p + c64
    bv = s - p
    err = (p - (s - bv)) + (c64 - bv)
    even = (s.view(np.int64) & 1) == 0
    fix = (err != 0) & even
    if np.any(fix):
        toward = np.where(err > 0, np.inf, -np.inf)
        s = np.where(fix, np.nextafter(s, toward), s)
    return s.astype(F32)


def _bits_signed(dtype: str) -> tuple[int, bool]:
    return int(dtype.removeprefix("u").removeprefix("int")), not dtype.startswith("u")


def _range(dtype: str) -> tuple[int, int]:
    bits, signed = _bits_signed(dtype)
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def _rne_sat(f: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """cvtps2dq (round half to even) then saturating packs to [lo, hi]."""
    r = np.rint(np.asarray(f, dtype=F64))
    return np.clip(r, lo, hi).astype(np.int64)


def qlinear_add(qa: np.ndarray, qb: np.ndarray, *, a_scale: float, a_zero_point: int,
                b_scale: float, b_zero_point: int, c_scale: float, c_zero_point: int,
                dtype: str) -> np.ndarray:
    """§11.2.1 ONNX Runtime QLinearAdd on codes of equal shape.

    8-bit (MLAS AVX2 kernel, ``qladd_avx2.cpp``): ``rA = f32(sA/sC)``, ``rB = f32(sB/sC)``,
    ``fixed = f32(zC) − f32(f32(rA·zA) + f32(rB·zB))``, ``v = fma(a, rA, fma(b, rB,
    fixed))`` on the raw codes, ``q = sat(rne(v))``. 16-bit (ORT has no 16-bit QLinearAdd
    kernel: a QDQ Add runs as DequantizeLinear, float Add, QuantizeLinear):
    ``v = f32(f32(sA·f32(a − zA)) + f32(sB·f32(b − zB)))``, then §11.2.5 with sC, zC."""
    qa = np.asarray(qa, dtype=np.int64)
    qb = np.asarray(qb, dtype=np.int64)
    if qa.shape != qb.shape:
        raise ModelError(f"qlinear_add: inputs of shapes {qa.shape} and {qb.shape}; the "
                         "ORT kernels are reproduced for equal shapes only")
    lo, hi = _range(dtype)
    sa, sb, sc = F32(a_scale), F32(b_scale), F32(c_scale)
    if _bits_signed(dtype)[0] == 8:
        ra, rb = F32(sa / sc), F32(sb / sc)
        fixed = F32(F32(c_zero_point) - F32(F32(ra * F32(a_zero_point))
                                            + F32(rb * F32(b_zero_point))))
        v = fma_f32(qb.astype(F32), rb, np.full(qb.shape, fixed, dtype=F32))
        v = fma_f32(qa.astype(F32), ra, v)
        return _rne_sat(v, lo, hi)
    va = (sa * (qa - a_zero_point).astype(F32)).astype(F32)
    vb = (sb * (qb - b_zero_point).astype(F32)).astype(F32)
    return quantize_linear((va + vb).astype(F32), float(sc), c_zero_point, dtype)


def qlinear_mul(qa: np.ndarray, qb: np.ndarray, *, a_scale: float, a_zero_point: int,
                b_scale: float, b_zero_point: int, c_scale: float, c_zero_point: int,
                dtype: str) -> np.ndarray:
    """§11.2.7 ONNX Runtime QLinearMul (MLAS ``qlmul.cpp``, SSE2 kernel) on codes of equal
    shape: ``r = f32(f32(sA·sB) / sC)``, ``p = (a − zA)(b − zB)`` (exact int32),
    ``q = sat(rne(f32(f32(f32(p)·r) + f32(zC))))``."""
    qa = np.asarray(qa, dtype=np.int64)
    qb = np.asarray(qb, dtype=np.int64)
    if qa.shape != qb.shape:
        raise ModelError(f"qlinear_mul: inputs of shapes {qa.shape} and {qb.shape}; the "
                         "ORT kernel is reproduced for equal shapes only")
    r = F32(F32(F32(a_scale) * F32(b_scale)) / F32(c_scale))
    p = ((qa - a_zero_point) * (qb - b_zero_point)).astype(F32)
    v = ((p * r).astype(F32) + F32(c_zero_point)).astype(F32)
    lo, hi = _range(dtype)
    return _rne_sat(v, lo, hi)


def global_avgpool_scale(x_scale: float, y_scale: float, n: int) -> np.float32:
    """MLAS ``CheckQLinearGlobalAveragePoolScaleAndSize``: f32(sx / f32(sy·f32(N)))."""
    scale = F32(F32(x_scale) / F32(F32(y_scale) * F32(n)))
    if n >= 1 << 24 or scale < F32(2.0**-32) or scale >= F32(256.0):
        raise ModelError(f"qlinear_global_avgpool: scale {float(scale)!r} or image size {n} "
                         "outside the range ORT accepts (2^-32 <= scale < 256, N < 2^24)")
    return scale


def qlinear_global_avgpool(q: np.ndarray, *, x_zero_point: int, x_scale: float,
                           y_scale: float, y_zero_point: int, dtype: str) -> np.ndarray:
    """§11.2.2 QLinearGlobalAveragePool (NCHW codes): ``acc = Σ q − zx·N`` (exact int32),
    then the §8.3 float32 requantization with ``scale = f32(sx / f32(sy·f32(N)))``:
    ``q = clamp(rne(f32(f32(acc)·scale)), qmin − zy, qmax − zy) + zy``."""
    q = np.asarray(q, dtype=np.int64)
    n = int(q.shape[2] * q.shape[3])
    acc = q.sum(axis=(2, 3), keepdims=True) - x_zero_point * n
    bits, signed = _bits_signed(dtype)
    params = make_requant_params(float(global_avgpool_scale(x_scale, y_scale, n)),
                                 RequantConfig(mode="float32"), y_zero_point,
                                 out_bits=bits, out_signed=signed)
    return requantize(acc, params)


def qlinear_avgpool(q: np.ndarray, *, x_zero_point: int, x_scale: float, y_scale: float,
                    y_zero_point: int, dtype: str, kernel: tuple[int, int],
                    strides: tuple[int, int], pads: tuple[int, int, int, int],
                    count_include_pad: bool) -> np.ndarray:
    """§11.2.3 QLinearAveragePool (``qlinear_pool.cc``): each code dequantized
    ``f32(sx·f32(q − zx))``, summed in float32 over the window positions inside the input,
    row by row (padding is skipped), divided (float32) by the window area
    (``count_include_pad``) or the number of positions inside, then
    ``rne(f32(f32(y / sy) + zy))`` saturated to the format."""
    q = np.asarray(q, dtype=np.int64)
    n, c, h, w = q.shape
    kh, kw = kernel
    sh, sw = strides
    oh = (h + pads[0] + pads[2] - kh) // sh + 1
    ow = (w + pads[1] + pads[3] - kw) // sw + 1
    xf = (F32(x_scale) * (q - x_zero_point).astype(F32)).astype(F32)
    out = np.empty((n, c, oh, ow), dtype=F32)
    cnt = np.empty((oh, ow), dtype=F32)
    for i in range(oh):
        h0 = i * sh - pads[0]
        h1, h0c = min(h0 + kh, h), max(h0, 0)
        for j in range(ow):
            w0 = j * sw - pads[1]
            w1, w0c = min(w0 + kw, w), max(w0, 0)
            acc = np.zeros((n, c), dtype=F32)
            for hh in range(h0c, h1):
                for ww in range(w0c, w1):
                    acc = (acc + xf[:, :, hh, ww]).astype(F32)
            out[:, :, i, j] = acc
            cnt[i, j] = kh * kw if count_include_pad else (h1 - h0c) * (w1 - w0c)
    y = (out / cnt).astype(F32)
    v = ((y / F32(y_scale)).astype(F32) + F32(y_zero_point)).astype(F32)
    lo, hi = _range(dtype)
    return _rne_sat(v, lo, hi)


def quantize_linear(x: np.ndarray, scale: float, zero_point: int, dtype: str) -> np.ndarray:
    """§11.2.5 MLAS QuantizeLinear: ``f = f32(x / s)`` clamped to ``[qmin − z, qmax − z]``,
    rounded half to even, plus ``z``."""
    lo, hi = _range(dtype)
    f = (np.asarray(x, dtype=F32) / F32(scale)).astype(F32)
    f = np.clip(f, F32(lo - zero_point), F32(hi - zero_point))
    return np.rint(f.astype(F64)).astype(np.int64) + zero_point


def lookup_requantize(q: np.ndarray, *, x_scale: float, x_zero_point: int, y_scale: float,
                      y_zero_point: int, dtype: str,
                      fn: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """§11.2.4 / §11.2.6 ORT's lookup-table ops (``qlinear_lookup_table.cc``): every code is
    dequantized ``d = f32(sx·f32(q − zx))``, transformed by ``fn`` in float32 (identity for
    QLinearConcat) and quantized again by MLAS QuantizeLinear (§11.2.5) with ``sy``, ``zy``.
    The table ORT builds holds exactly these values for each of the 256 codes."""
    d = (F32(x_scale) * (np.asarray(q, dtype=np.int64) - x_zero_point).astype(F32)).astype(F32)
    v = d if fn is None else fn(d).astype(F32)
    return quantize_linear(v, y_scale, y_zero_point, dtype)


def leaky_relu_f32(alpha: float) -> Callable[[np.ndarray], np.ndarray]:
    """QLinearLeakyRelu's transform: ``v >= 0 ? v : f32(alpha·v)`` in float32."""
    a = F32(alpha)

    def fn(v: np.ndarray) -> np.ndarray:
        return np.where(v >= F32(0), v, (a * v).astype(F32)).astype(F32)
    return fn


#: Rows of the u8s8 product tensor built at once (bounds memory: rows · M · K int64).
_U8S8_ROWS = 2048


def u8s8_pair_saturated_acc(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """§11.2.8 Σ over k-pairs of sat16(a[2j]·w[2j] + a[2j+1]·w[2j+1]) for uint8 codes
    ``a`` [P, K] and int8 weights ``w`` [M, K] -> int64 [P, M]; K is padded with zeros to
    an even length (pairs start at k = 0), the pair sums are exact in int32 after that."""
    a = np.asarray(a, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    k = a.shape[1]
    if k % 2:
        a = np.pad(a, ((0, 0), (0, 1)))
        w = np.pad(w, ((0, 0), (0, 1)))
    out = np.empty((a.shape[0], w.shape[0]), dtype=np.int64)
    for r0 in range(0, a.shape[0], _U8S8_ROWS):
        prod = a[r0:r0 + _U8S8_ROWS, None, :] * w[None, :, :]
        pairs = prod[..., 0::2] + prod[..., 1::2]
        out[r0:r0 + _U8S8_ROWS] = np.clip(pairs, -32768, 32767).sum(axis=-1)
    return out


def _run_mac_u8s8(node, codes, tensors):  # noqa: ANN001, ANN202
    """conv_u8s8 / gemm_u8s8: ORT's AVX2 u8s8 accumulation, then the node's §8 requant."""
    x = np.asarray(codes[node.inputs[0]], dtype=np.int64)
    tin = tensors[node.inputs[0]]
    w = np.asarray(node.arrays["weight"], dtype=np.int64)
    bias = np.asarray(node.arrays["bias"], dtype=np.int64)
    if node.op == "gemm_u8s8":
        acc = u8s8_pair_saturated_acc(x, w) + bias
        return requantize(acc, node.requant["out"], channel_axis=1)
    a = node.attrs
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    group = int(a["group"])
    (sh, sw), (dh, dw) = tuple(a["strides"]), tuple(a["dilations"])
    t, left, b, r = (int(p) for p in a["pads"])
    oh = (h + t + b - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + left + r - dw * (kw - 1) - 1) // sw + 1
    xp = np.pad(x, ((0, 0), (0, 0), (t, b), (left, r)), constant_values=tin.zero_point)
    mg = m // group
    acc = np.empty((n, m, oh, ow), dtype=np.int64)
    for g in range(group):
        # NHWC im2col of ORT's QLinearConv: reduction index k = (kh, kw, c) row-major
        cols = np.empty((n, oh, ow, kh, kw, cg), dtype=np.int64)
        for i in range(kh):
            for j in range(kw):
                win = xp[:, g * cg:(g + 1) * cg, i * dh: i * dh + sh * (oh - 1) + 1: sh,
                         j * dw: j * dw + sw * (ow - 1) + 1: sw]
                cols[:, :, :, i, j, :] = win.transpose(0, 2, 3, 1)
        wk = w[g * mg:(g + 1) * mg].transpose(0, 2, 3, 1).reshape(mg, -1)
        part = u8s8_pair_saturated_acc(cols.reshape(n * oh * ow, -1), wk)
        acc[:, g * mg:(g + 1) * mg] = part.reshape(n, oh, ow, mg).transpose(0, 3, 1, 2)
    acc += bias[None, :, None, None]
    return requantize(acc, node.requant["out"], channel_axis=1)


# --- ORT dynamic quantization (arithmetic §11.2.9) ---------------------------------------

def f32_to_codes(v: np.ndarray) -> np.ndarray:
    """float32 values as the int64 codes of a ``float32`` tensor: their int32 bit patterns."""
    return np.ascontiguousarray(v, dtype=F32).view(np.int32).astype(np.int64)


def codes_to_f32(q: np.ndarray) -> np.ndarray:
    """The float32 values of a ``float32`` tensor's codes (inverse of f32_to_codes)."""
    return np.ascontiguousarray(q, dtype=np.int64).astype(np.int32).view(F32)


def dynamic_qparams_u8(x: np.ndarray) -> tuple[np.float32, int]:
    """§11.2.9 ORT ``GetQuantizationParameter<uint8_t>`` (qmath.h): ``lo = min(0, min x)``,
    ``hi = max(0, max x)``, ``s = hi == lo ? 1 : f32(f32(hi − lo)/255)``,
    ``z = rne(clamp(f32(0 − f32(lo/s)), 0, 255))``."""
    x = np.asarray(x, dtype=F32)
    lo = min(F32(0), F32(x.min())) if x.size else F32(0)
    hi = max(F32(0), F32(x.max())) if x.size else F32(0)
    s = F32(1) if hi == lo else F32(F32(hi - lo) / F32(255))
    zf = F32(F32(0) - F32(lo / s))
    return s, int(np.rint(np.clip(zf, F32(0), F32(255))))


def dynamic_quantize_linear(x: np.ndarray) -> tuple[np.ndarray, np.float32, int]:
    """§11.2.9 DynamicQuantizeLinear over the whole of ``x``: (uint8 codes, scale, zero
    point), the codes by MLAS QuantizeLinear (§11.2.5)."""
    s, z = dynamic_qparams_u8(x)
    return quantize_linear(x, float(s), z, "uint8"), s, z


def _im2col_nchw(q: np.ndarray, zp: int, kernel: tuple[int, int], a: Mapping,
                 group: int) -> tuple[np.ndarray, int, int]:
    """ConvInteger's NCHW im2col (conv_integer.cc): per group, rows = output pixels of each
    image (n, oh, ow), columns k = (c, kh, kw); padding positions hold ``zp``."""
    n, c, h, wd = q.shape
    kh, kw = kernel
    (sh, sw), (dh, dw) = tuple(a["strides"]), tuple(a["dilations"])
    t, left, b, r = (int(p) for p in a["pads"])
    oh = (h + t + b - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + left + r - dw * (kw - 1) - 1) // sw + 1
    xp = np.pad(q, ((0, 0), (0, 0), (t, b), (left, r)), constant_values=zp)
    cols = np.empty((n, oh, ow, c, kh, kw), dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, :, i, j] = xp[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh,
                                        j * dw: j * dw + sw * (ow - 1) + 1: sw
                                        ].transpose(0, 2, 3, 1)
    cg = c // group
    parts = [cols[:, :, :, g * cg:(g + 1) * cg].reshape(n * oh * ow, -1) for g in range(group)]
    return np.stack(parts), oh, ow


def integer_acc(a: np.ndarray, za: int, w: np.ndarray, zw: np.ndarray,
                pair_saturated: bool) -> np.ndarray:
    """§11.2.9 int32 sums ``Σ_k (a_k − z_a)(w_k − z_w)`` for codes ``a`` [P, K] and weight
    codes ``w`` [M, K] (zero points ``zw`` per row of ``w``) -> int64 [P, M]; with
    ``pair_saturated`` (uint8 × int8, ``zw`` = 0, ORT's AVX2 U8S8 kernel) the §11.2.8
    pair-saturated sum of the raw codes minus ``z_a·Σ_k w_k``."""
    w = np.asarray(w, dtype=np.int64)
    if pair_saturated:
        return u8s8_pair_saturated_acc(a, w) - za * w.sum(axis=1)[None, :]
    wc = w - np.asarray(zw, dtype=np.int64).reshape(-1, 1)
    return (np.asarray(a, dtype=np.int64) - za) @ wc.T


def _run_integer_mac(node, codes, tensors):  # noqa: ANN001, ANN202
    """matmul_integer / conv_integer (§11.2.9): the input is dynamically quantized per
    group of ``rows`` leading rows (a ``float32`` input) or taken as codes; exact or
    pair-saturated int32 sums; then the float tail ``f32(f32(f32(acc)·f32(s_a·s_w)) + b)``
    (+ Relu) as float32 bit patterns, or the int32 sums themselves (no tail)."""
    a = node.attrs
    x = np.asarray(codes[node.inputs[0]], dtype=np.int64)
    tin = tensors[node.inputs[0]]
    w = np.asarray(node.arrays["weight"])
    zw = np.asarray(node.arrays["weight_zero_point"], dtype=np.int64)
    m = w.shape[0]
    rows = int(a["rows"]) or x.shape[0]
    if tin.dtype == "float32":
        xf = codes_to_f32(x)
        groups = [dynamic_quantize_linear(xf[i:i + rows]) for i in range(0, x.shape[0], rows)]
    else:
        groups = [(x, F32(tin.scale), tin.zero_point)]
    out = []
    for q, s, z in groups:
        u8s8 = bool(a["pair_saturated"]) and (tin.dtype in ("float32", "uint8"))
        if node.op == "matmul_integer":
            acc = integer_acc(q.reshape(-1, w.shape[1]), z, w, zw, u8s8)
            acc = acc.reshape(q.shape[:-1] + (m,))
            axis = acc.ndim - 1
        else:
            group = int(a["group"])
            cols, oh, ow = _im2col_nchw(q, z, tuple(w.shape[2:]), a, group)
            mg = m // group
            wk = w.reshape(m, -1)
            acc = np.concatenate([integer_acc(cols[g], z, wk[g * mg:(g + 1) * mg],
                                              zw[g * mg:(g + 1) * mg] if zw.size > 1 else zw,
                                              u8s8) for g in range(group)], axis=1)
            acc = acc.reshape(q.shape[0], oh, ow, m).transpose(0, 3, 1, 2)
            axis = 1
        if not a["tail"]:
            out.append(acc)
            continue
        view = [1] * acc.ndim
        view[axis] = -1
        mult = (F32(s) * np.asarray(node.arrays["weight_scale"], dtype=F32)).astype(F32)
        y = (acc.astype(F32) * mult.reshape(view)).astype(F32)
        if "bias" in node.arrays:
            y = (y + np.asarray(node.arrays["bias"], dtype=F32).reshape(view)).astype(F32)
        if a["relu"]:
            y = np.maximum(y, F32(0)).astype(F32)
        out.append(f32_to_codes(y))
    return np.concatenate(out, axis=0)


def _run_float_add(node, codes, tensors):  # noqa: ANN001, ANN202
    """float_add (§11.2.9): ``f32(a + b)`` of float32 tensors (or one and a constant)."""
    a = codes_to_f32(codes[node.inputs[0]])
    b = (codes_to_f32(codes[node.inputs[1]]) if len(node.inputs) > 1
         else np.asarray(node.arrays["const"], dtype=F32))
    return f32_to_codes((a + b).astype(F32))


def _run_float_clip(node, codes, tensors):  # noqa: ANN001, ANN202
    """float_clip (§11.2.9): ``min(max(y, lo), hi)`` of a float32 tensor (Relu: lo = 0)."""
    lo, hi = (F32(v) for v in node.attrs["range"])
    y = codes_to_f32(codes[node.inputs[0]])
    return f32_to_codes(np.minimum(np.maximum(y, lo), hi).astype(F32))


#: MLAS ``MlasLogisticConstants`` (logistic.cpp; Eigen's rational approximation).
_LOGISTIC = {k: F32(v) for k, v in (
    ("lo", -18.0), ("hi", 18.0), ("a9", 4.37031012579801e-11), ("a7", 1.15627324459942e-07),
    ("a5", 6.08574864600143e-05), ("a3", 8.51377133304701e-03), ("a1", 2.48287947061529e-01),
    ("b10", 6.10247389755681e-13), ("b8", 5.76102136993427e-09),
    ("b6", 6.29106785017040e-06), ("b4", 1.70198817374094e-03), ("b2", 1.16817656904453e-01),
    ("b0", 9.93151921023180e-01))}


def logistic_f32(x: np.ndarray) -> np.ndarray:
    """§11.2.6 MLAS ``MlasLogisticKernelFma3`` (``x86_64/LogisticKernelFma3.S``): x clamped
    to [−18, 18], x2 = f32(x·x), p and q Horner polynomials in x2 by fused multiply-adds,
    ``max(0, f32(f32(f32(x·p) / q) + 0.5))``."""
    c = _LOGISTIC
    x = np.minimum(c["hi"], np.maximum(c["lo"], np.asarray(x, dtype=F32))).astype(F32)
    x2 = (x * x).astype(F32)

    def fma(b: np.ndarray | np.float32, a: np.float32) -> np.ndarray:
        return fma_f32(x2, np.broadcast_to(b, x2.shape), np.broadcast_to(a, x2.shape))

    p = fma(c["a9"], c["a7"])
    for k in ("a5", "a3", "a1"):
        p = fma(p, c[k])
    q = fma(c["b10"], c["b8"])
    for k in ("b6", "b4", "b2", "b0"):
        q = fma(q, c[k])
    r = (((x * p).astype(F32) / q).astype(F32) + F32(0.5)).astype(F32)
    return np.maximum(F32(0), r).astype(F32)


Kernel = Callable[..., np.ndarray]

from hwsim.reference.litert_ops import LITERT_KERNELS  # noqa: E402


def _run_add(node, codes, tensors):  # noqa: ANN001, ANN202 - golden run_node protocol
    a, b = node.inputs
    ta, tb, to = tensors[a], tensors[b], tensors[node.output]
    y = qlinear_add(codes[a], codes[b], a_scale=ta.scale, a_zero_point=ta.zero_point,
                    b_scale=tb.scale, b_zero_point=tb.zero_point, c_scale=to.scale,
                    c_zero_point=to.zero_point, dtype=to.dtype)
    act = node.attrs.get("act_range", (-np.inf, np.inf))
    if tuple(act) == (-np.inf, np.inf):
        return y
    from hwsim.compiler.requant import fused_act_bounds

    return np.clip(y, *fused_act_bounds(float(act[0]), float(act[1]), to))


def _run_mul(node, codes, tensors):  # noqa: ANN001, ANN202
    a, b = node.inputs
    ta, tb, to = tensors[a], tensors[b], tensors[node.output]
    return qlinear_mul(codes[a], codes[b], a_scale=ta.scale, a_zero_point=ta.zero_point,
                       b_scale=tb.scale, b_zero_point=tb.zero_point, c_scale=to.scale,
                       c_zero_point=to.zero_point, dtype=to.dtype)


def _run_gap(node, codes, tensors):  # noqa: ANN001, ANN202
    ti, to = tensors[node.inputs[0]], tensors[node.output]
    return qlinear_global_avgpool(codes[node.inputs[0]], x_zero_point=ti.zero_point,
                                  x_scale=ti.scale, y_scale=to.scale,
                                  y_zero_point=to.zero_point, dtype=to.dtype)


def _run_avgpool(node, codes, tensors):  # noqa: ANN001, ANN202
    ti, to = tensors[node.inputs[0]], tensors[node.output]
    a = node.attrs
    return qlinear_avgpool(codes[node.inputs[0]], x_zero_point=ti.zero_point,
                           x_scale=ti.scale, y_scale=to.scale, y_zero_point=to.zero_point,
                           dtype=to.dtype, kernel=tuple(a["kernel_shape"]),
                           strides=tuple(a["strides"]), pads=tuple(a["pads"]),
                           count_include_pad=bool(a["count_include_pad"]))


def _run_concat(node, codes, tensors):  # noqa: ANN001, ANN202
    to = tensors[node.output]
    parts = []
    for t in node.inputs:
        ti = tensors[t]
        if (F32(ti.scale), ti.zero_point) == (F32(to.scale), to.zero_point):
            parts.append(np.asarray(codes[t], dtype=np.int64))  # LOOKUP_TABLE_IS_COPY
        else:
            parts.append(lookup_requantize(codes[t], x_scale=ti.scale,
                                           x_zero_point=ti.zero_point, y_scale=to.scale,
                                           y_zero_point=to.zero_point, dtype=to.dtype))
    return np.concatenate(parts, axis=int(node.attrs["axis"]))


def _run_leaky_relu(node, codes, tensors):  # noqa: ANN001, ANN202
    ti, to = tensors[node.inputs[0]], tensors[node.output]
    return lookup_requantize(codes[node.inputs[0]], x_scale=ti.scale,
                             x_zero_point=ti.zero_point, y_scale=to.scale,
                             y_zero_point=to.zero_point, dtype=to.dtype,
                             fn=leaky_relu_f32(float(node.attrs["alpha"])))


def _run_sigmoid(node, codes, tensors):  # noqa: ANN001, ANN202
    ti, to = tensors[node.inputs[0]], tensors[node.output]
    return lookup_requantize(codes[node.inputs[0]], x_scale=ti.scale,
                             x_zero_point=ti.zero_point, y_scale=to.scale,
                             y_zero_point=to.zero_point, dtype=to.dtype, fn=logistic_f32)


#: Integer-graph op -> kernel(node, codes, tensors) -> int64 codes (golden executor).
ENGINE_KERNELS: Mapping[str, Kernel] = {
    "qlinear_add": _run_add,
    "qlinear_mul": _run_mul,
    "qlinear_global_avgpool": _run_gap,
    "qlinear_avgpool": _run_avgpool,
    "qlinear_concat": _run_concat,
    "qlinear_leaky_relu": _run_leaky_relu,
    "qlinear_sigmoid": _run_sigmoid,
    "conv_u8s8": _run_mac_u8s8,
    "gemm_u8s8": _run_mac_u8s8,
    "matmul_integer": _run_integer_mac,
    "conv_integer": _run_integer_mac,
    "float_add": _run_float_add,
    "float_clip": _run_float_clip,
    **LITERT_KERNELS,  # LiteRT reference-kernel ops, arithmetic §11.3
}
