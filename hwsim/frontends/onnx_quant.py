"""Import quantized ONNX models (QDQ and QOperator) into the integer graph (specs/ir.md §8).

:func:`load_quantized_onnx` reads a model quantized by a toolchain (for example
``onnxruntime.quantization.quantize_static``) and builds a :class:`~hwsim.compiler.qgraph.
QGraph` with the model's own scales and zero points (no calibration). One small converter
per (format, op type) in :data:`CONVERTERS` (``"qdq"``: a float op between
DequantizeLinear and QuantizeLinear nodes; ``"qop"``: a QOperator / com.microsoft node;
``"any"``: ops that move codes); an op without a converter, or a converter that meets
something the integer graph cannot represent, raises one ModelError naming the node.

Arithmetic: conv / gemm accumulate exactly (arithmetic §7) from the carried weights
``q_w − z_w`` and the int32 bias, and requantize with the profile's §8 datapath (for
``ort_cpu``: float32 with ORT's scale ``f32(f32(s_x·s_w)/s_y)``); add and average pooling
lower to the profile's ops (§11).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwsim.compiler.profiles import EngineProfile, get_profile
from hwsim.compiler.qgraph import (
    ACT_DTYPES,
    WIDE_DTYPES,
    QGraph,
    QNode,
    TensorQ,
    verify_qgraph,
)
from hwsim.compiler.requant import add_requant, mac_requant, rescale_requant
from hwsim.errors import ModelError
from hwsim.frontends.onnx import _read_model

#: Op types whose presence marks a model as quantized.
QUANTIZED_OP_TYPES = frozenset((
    "QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "QGemm",
    "QLinearAdd", "QLinearMul", "QLinearGlobalAveragePool", "QLinearAveragePool",
    "QLinearConcat", "MatMulInteger", "ConvInteger", "DynamicQuantizeLinear",
    "QLinearSigmoid", "QLinearLeakyRelu",
))
_INT_DTYPES = {np.dtype(d): d for d in ACT_DTYPES}


def is_quantized_onnx(source: Any) -> bool:
    """True when the ONNX model (path, bytes or ModelProto) holds a quantization op."""
    model = _read_model(source)
    return any(n.op_type in QUANTIZED_OP_TYPES for n in model.graph.node)


@dataclass(frozen=True, eq=False)
class ImportedModel:
    """The integer graph of a quantized ONNX model, its profile, and which QGraph tensor
    each ONNX graph output dequantizes (``outputs``: ONNX output name -> tensor); ``model``
    is the ONNX model ONNX Runtime runs for comparison (None: no ORT comparison)."""

    qgraph: QGraph
    profile: EngineProfile
    outputs: Mapping[str, str]
    model: Any = field(repr=False)


class _Ctx:
    """State of one import: constants, tensor qparams, aliases, shapes, emitted nodes."""

    def __init__(self, model: Any, profile: EngineProfile) -> None:
        from onnx import numpy_helper

        self.model, self.profile = model, profile
        self.g = model.graph
        self.consts: dict[str, np.ndarray] = {
            t.name: numpy_helper.to_array(t) for t in self.g.initializer}
        self.tq: dict[str, TensorQ] = {}
        self.alias: dict[str, str] = {}
        self.shape: dict[str, tuple[int, ...]] = {}
        self.wconst: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, int]] = {}
        self.nodes: list[QNode] = []
        self.done: set[int] = set()
        self.consumers: dict[str, list[int]] = {}
        for i, n in enumerate(self.g.node):
            for t in n.input:
                self.consumers.setdefault(t, []).append(i)
        self.outputs = [o.name for o in self.g.output]
        self.inputs: list[str] = []
        self.input_shapes: dict[str, tuple[int, ...]] = {}
        #: integer graph inputs (codes fed directly) whose qparams the first reader gives
        self.int_inputs: dict[str, str] = {}
        self.input_types: dict[str, str] = {}
        #: DynamicQuantizeLinear output -> (float source, scale output, zero point output)
        self.dql: dict[str, tuple[str, str, str]] = {}
        #: Mul(x_scale, w_scale) output -> (DynamicQuantizeLinear output, w_scale constant)
        self.scale_prod: dict[str, tuple[str, str]] = {}
        #: float graph inputs whose leading dimension is dynamic (one ORT run: whole batch)
        self.dynamic_batch: set[str] = set()

    # --- helpers ----------------------------------------------------------------------

    def canon(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def const(self, where: str, name: str) -> np.ndarray:
        if name not in self.consts:
            raise ModelError(f"{where}: input {name!r} must be a constant (initializer)")
        return self.consts[name]

    def act(self, where: str, name: str) -> str:
        c = self.canon(name)
        if c not in self.tq:
            raise ModelError(f"{where}: input {name!r} is not a quantized activation "
                             "(expected the output of DequantizeLinear or a QOperator node)")
        return c

    def act_q(self, where: str, name: str, scale: str, zp: str | None) -> str:
        """:meth:`act`, except that an integer graph input (codes fed directly) gets its
        TensorQ from the qparams of this first reader."""
        if name in self.input_types and name not in self.int_inputs and name not in self.tq:
            raise ModelError(f"{where}: graph input {name!r} has dtype "
                             f"{self.input_types[name]}; the integer graph supports "
                             f"{', '.join(ACT_DTYPES)} codes")
        if name in self.int_inputs and name not in self.tq:
            tq = self.tensorq(where, name, scale, zp)
            if tq.dtype != self.int_inputs[name]:
                raise ModelError(f"{where}: zero point dtype {tq.dtype} differs from input "
                                 f"{name!r} of dtype {self.int_inputs[name]}")
            self.tq[name] = tq
            self.inputs.append(name)
            self.shape[name] = self.input_shapes[name]
        return self.act(where, name)

    def qparams(self, where: str, scale: str, zp: str | None, *, per_tensor: bool = True
                ) -> tuple[np.ndarray, np.ndarray, str]:
        raw = self.const(where, scale)
        if raw.dtype != np.float32:
            raise ModelError(f"{where}: scale {scale!r} has dtype {raw.dtype}; the integer "
                             "graph reproduces float32 scales only")
        s = np.asarray(raw, dtype=np.float32).reshape(-1)
        if zp:
            z = self.const(where, zp)
            dtype = _INT_DTYPES.get(z.dtype)
            if dtype is None:
                raise ModelError(f"{where}: zero point {zp!r} has dtype {z.dtype}; the "
                                 f"integer graph supports {', '.join(ACT_DTYPES)}")
            z = np.asarray(z, dtype=np.int64).reshape(-1)
        else:
            z, dtype = np.zeros(1, dtype=np.int64), "uint8"
        if per_tensor and (s.size != 1 or z.size != 1):
            raise ModelError(f"{where}: activation qparams must be per tensor, got "
                             f"{s.size} scales")
        if not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise ModelError(f"{where}: scale {scale!r} must be finite and > 0")
        return s, z, dtype

    def tensorq(self, where: str, name: str, scale: str, zp: str | None) -> TensorQ:
        s, z, dtype = self.qparams(where, scale, zp)
        return TensorQ(name, dtype, float(s[0]), int(z[0]))

    def sole_consumer(self, tensor: str) -> Any | None:
        idx = self.consumers.get(tensor, [])
        if len(idx) != 1 or tensor in self.outputs:
            return None
        return self.g.node[idx[0]]

    def quantized_output(self, node: Any) -> tuple[str, TensorQ, tuple[float, float]]:
        """QDQ: the QuantizeLinear that quantizes ``node``'s float output (possibly through
        a Relu / Clip, returned as a fused real range); marks them consumed."""
        where = f"node {node.name!r} ({node.op_type})"
        act = (-np.inf, np.inf)
        nxt = self.sole_consumer(node.output[0])
        if nxt is not None and nxt.op_type in ("Relu", "Clip"):
            act = _relu_clip_range(self, nxt)
            self.done.add(_index(self.g, nxt))
            nxt = self.sole_consumer(nxt.output[0])
        if nxt is None or nxt.op_type != "QuantizeLinear":
            raise ModelError(f"{where}: its output must be quantized by exactly one "
                             "QuantizeLinear (QDQ format); it is not")
        self.done.add(_index(self.g, nxt))
        out = nxt.output[0]
        zp = nxt.input[2] if len(nxt.input) > 2 else None
        return out, self.tensorq(where, out, nxt.input[1], zp), act

    def emit(self, node: QNode, tq: TensorQ, shape: tuple[int, ...]) -> None:
        self.nodes.append(node)
        self.tq[node.output] = tq
        self.shape[node.output] = shape


def _index(g: Any, node: Any) -> int:
    for i, n in enumerate(g.node):
        if n is node:
            return i
    raise ModelError(f"node {node.name!r} not found")  # pragma: no cover - internal


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _relu_clip_range(ctx: _Ctx, node: Any) -> tuple[float, float]:
    if node.op_type == "Relu":
        return 0.0, np.inf
    lo = float(ctx.const(node.name, node.input[1])) if len(node.input) > 1 and node.input[1] \
        else -np.inf
    hi = float(ctx.const(node.name, node.input[2])) if len(node.input) > 2 and node.input[2] \
        else np.inf
    return lo, hi


def _window_attrs(where: str, a: Mapping[str, Any], kernel: tuple[int, ...]
                  ) -> tuple[tuple[int, int], tuple[int, int, int, int], tuple[int, int]]:
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise ModelError(f"{where}: auto_pad {a['auto_pad']!r} is not supported; "
                         "expected explicit pads")
    if int(a.get("ceil_mode", 0)):
        raise ModelError(f"{where}: ceil_mode = 1 is not supported")
    if len(kernel) != 2:
        raise ModelError(f"{where}: only 2-D windows are supported, got kernel {kernel}")
    strides = tuple(int(v) for v in a.get("strides", (1, 1)))
    p = tuple(int(v) for v in a.get("pads", (0, 0, 0, 0)))
    dil = tuple(int(v) for v in a.get("dilations", (1, 1)))
    return strides, (p[0], p[1], p[2], p[3]), dil


def _out_hw(shape: tuple[int, ...], k: tuple[int, int], s: tuple[int, int],
            p: tuple[int, int, int, int], d: tuple[int, int]) -> tuple[int, int]:
    oh = (shape[2] + p[0] + p[2] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    ow = (shape[3] + p[1] + p[3] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    return oh, ow


# --- MAC ops ----------------------------------------------------------------------------

def _carried_weights(where: str, q: np.ndarray, z: np.ndarray, axis: int) -> np.ndarray:
    """q_w − z_w (zero point along ``axis``): int8 when it fits (always for symmetric int8
    weights), else int16 (uint8 weights with a zero point need 9 bits)."""
    if q.dtype.kind not in "iu" or q.dtype.itemsize > 2:
        raise ModelError(f"{where}: weights of dtype {q.dtype}; expected 8- or 16-bit codes")
    zz = z.reshape([-1 if i == axis else 1 for i in range(q.ndim)]) if z.size > 1 else z[0]
    w = np.asarray(q, dtype=np.int64) - zz
    if w.min() >= -128 and w.max() <= 127:
        return w.astype(np.int8)
    if w.min() < -(1 << 15) or w.max() >= 1 << 15:
        raise ModelError(f"{where}: weights minus their zero point span [{w.min()}, "
                         f"{w.max()}], outside int16")
    return w.astype(np.int16)


def _emit_mac(ctx: _Ctx, where: str, name: str, op: str, x: str, w: np.ndarray,
              s_w: np.ndarray, bias: np.ndarray | None, out: str, tout: TensorQ,
              act: tuple[float, float], attrs: dict[str, Any], shape: tuple[int, ...],
              wq_dtype: np.dtype) -> None:
    m = w.shape[0]
    tin = ctx.tq[x]
    depthwise = op == "conv" and w.shape[1] == 1 and attrs["group"] == m
    if (ctx.profile.mac_u8s8 == "avx2_pair_saturation" and tin.dtype == "uint8"
            and wq_dtype == np.int8 and w.dtype == np.int8 and not depthwise):
        op += "_u8s8"  # arithmetic §11.2.8: ORT's u8s8 kernels on AVX2 without VNNI
    s_w = np.broadcast_to(np.asarray(s_w, dtype=np.float32).reshape(-1), (m,)).astype(np.float64)
    b = np.zeros(m, dtype=np.int64) if bias is None else np.asarray(bias, np.int64).reshape(-1)
    if b.size != m:
        raise ModelError(f"{where}: bias has {b.size} values, expected {m}")
    folded = b - tin.zero_point * w.reshape(m, -1).astype(np.int64).sum(axis=1)
    if folded.min() < -(1 << 31) or folded.max() >= 1 << 31:
        raise ModelError(f"{where}: folded bias does not fit the int32 accumulator")
    attrs["act_range"] = act
    req = mac_requant(tin.scale, s_w, tout, ctx.profile.requant, act)
    ctx.emit(QNode(name, op, (x,), out, attrs,
                   {"weight": w, "bias": folded.astype(np.int32), "weight_scale": s_w},
                   {"out": req}, "relu" if act == (0.0, np.inf) else ""), tout, shape)


def _conv(ctx: _Ctx, node: Any, x: str, wq: np.ndarray, ws: np.ndarray, wz: np.ndarray,
          bias: np.ndarray | None, out: str, tout: TensorQ, act: tuple[float, float]) -> None:
    where = f"node {node.name!r} ({node.op_type})"
    a = _attrs(node)
    if wq.ndim != 4:
        raise ModelError(f"{where}: only 2-D convolutions are supported")
    strides, pads, dil = _window_attrs(where, a, tuple(wq.shape[2:]))
    w = _carried_weights(where, wq, wz, 0)
    xs = ctx.shape[x]
    oh, ow = _out_hw(xs, tuple(wq.shape[2:]), strides, pads, dil)
    attrs = {"strides": strides, "pads": pads, "dilations": dil, "group": int(a.get("group", 1))}
    _emit_mac(ctx, where, node.name, "conv", x, w, ws, bias, out, tout, act, attrs,
              (xs[0], wq.shape[0], oh, ow), wq.dtype)


def _gemm(ctx: _Ctx, node: Any, x: str, wq: np.ndarray, ws: np.ndarray, wz: np.ndarray,
          bias: np.ndarray | None, out: str, tout: TensorQ, act: tuple[float, float],
          trans_b: bool) -> None:
    """y = x·W (W [K, N], per-column qparams, axis 1) or x·Wᵀ (trans_b: W [N, K], axis 0)."""
    where = f"node {node.name!r} ({node.op_type})"
    if len(ctx.shape[x]) != 2 or wq.ndim != 2:
        raise ModelError(f"{where}: only 2-D x @ W with a constant W is supported")
    w = _carried_weights(where, wq, wz, 0 if trans_b else 1)
    if not trans_b:
        w = np.ascontiguousarray(w.T)
    _emit_mac(ctx, where, node.name, "gemm", x, w, ws, bias, out, tout, act, {},
              (ctx.shape[x][0], w.shape[0]), wq.dtype)


def _weight_qparams(ctx: _Ctx, where: str, scale: str, zp: str | None
                    ) -> tuple[np.ndarray, np.ndarray]:
    s, z, _ = ctx.qparams(where, scale, zp, per_tensor=False)
    return s, z


def _qop_conv(ctx: _Ctx, node: Any) -> None:
    where = f"node {node.name!r} (QLinearConv)"
    i = node.input
    x = ctx.act_q(where, i[0], i[1], i[2])
    wq = ctx.const(where, i[3])
    ws, wz = _weight_qparams(ctx, where, i[4], i[5])
    tout = ctx.tensorq(where, node.output[0], i[6], i[7])
    bias = ctx.const(where, i[8]) if len(i) > 8 and i[8] else None
    _conv(ctx, node, x, wq, ws, wz, bias, node.output[0], tout, (-np.inf, np.inf))


def _qop_matmul(ctx: _Ctx, node: Any) -> None:
    where = f"node {node.name!r} (QLinearMatMul)"
    i = node.input
    x = ctx.act_q(where, i[0], i[1], i[2])
    ws, wz = _weight_qparams(ctx, where, i[4], i[5])
    tout = ctx.tensorq(where, node.output[0], i[6], i[7])
    _gemm(ctx, node, x, ctx.const(where, i[3]), ws, wz, None, node.output[0], tout,
          (-np.inf, np.inf), trans_b=False)


def _qop_gemm(ctx: _Ctx, node: Any) -> None:
    where = f"node {node.name!r} (QGemm)"
    i = node.input
    a = _attrs(node)
    if int(a.get("transA", 0)) or float(a.get("alpha", 1.0)) != 1.0:
        raise ModelError(f"{where}: transA = 1 or alpha != 1 is not supported")
    if len(i) < 8 or not i[7]:
        raise ModelError(f"{where}: a QGemm with float output (no y_scale) is not "
                         "representable in the integer graph")
    x = ctx.act(where, i[0])
    ws, wz = _weight_qparams(ctx, where, i[4], i[5])
    bias = ctx.const(where, i[6]) if i[6] else None
    tout = ctx.tensorq(where, node.output[0], i[7], i[8] if len(i) > 8 else None)
    _gemm(ctx, node, x, ctx.const(where, i[3]), ws, wz, bias, node.output[0], tout,
          (-np.inf, np.inf), trans_b=bool(a.get("transB", 0)))


def _dq_weight(ctx: _Ctx, where: str, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if name not in ctx.wconst:
        raise ModelError(f"{where}: weight {name!r} must be a DequantizeLinear of a "
                         "constant (QDQ format)")
    q, s, z, _ = ctx.wconst[name]
    return q, s, z


def _dq_bias(ctx: _Ctx, where: str, inputs: Any, k: int) -> np.ndarray | None:
    if len(inputs) <= k or not inputs[k]:
        return None
    name = inputs[k]
    if name in ctx.wconst:
        q, _, z, _ = ctx.wconst[name]
        if q.dtype != np.int32 or np.any(z != 0):
            raise ModelError(f"{where}: bias {name!r} must be int32 with zero point 0")
        return q
    raise ModelError(f"{where}: bias {name!r} must be a DequantizeLinear of an int32 "
                     "constant (QDQ format); a float bias is not representable")


def _qdq_conv(ctx: _Ctx, node: Any) -> None:
    where = f"node {node.name!r} (Conv)"
    x = ctx.act(where, node.input[0])
    wq, ws, wz = _dq_weight(ctx, where, node.input[1])
    bias = _dq_bias(ctx, where, node.input, 2)
    out, tout, act = ctx.quantized_output(node)
    _conv(ctx, node, x, wq, ws, wz, bias, out, tout, act)


def _qdq_gemm(ctx: _Ctx, node: Any) -> None:
    where = f"node {node.name!r} ({node.op_type})"
    a = _attrs(node)
    if node.op_type == "Gemm" and (int(a.get("transA", 0)) or float(a.get("alpha", 1.0)) != 1
                                   or float(a.get("beta", 1.0)) != 1):
        raise ModelError(f"{where}: transA = 1, alpha != 1 or beta != 1 is not supported")
    x = ctx.act(where, node.input[0])
    wq, ws, wz = _dq_weight(ctx, where, node.input[1])
    bias = _dq_bias(ctx, where, node.input, 2) if node.op_type == "Gemm" else None
    out, tout, act = ctx.quantized_output(node)
    _gemm(ctx, node, x, wq, ws, wz, bias, out, tout, act,
          trans_b=bool(a.get("transB", 0)))


# --- element-wise and pooling ------------------------------------------------------------

def _add(ctx: _Ctx, node: Any, a: str, b: str, out: str, tout: TensorQ,
         act: tuple[float, float]) -> None:
    where = f"node {node.name!r} ({node.op_type})"
    if ctx.shape[a] != ctx.shape[b]:
        raise ModelError(f"{where}: inputs of shapes {ctx.shape[a]} and {ctx.shape[b]}; "
                         "only equal shapes are supported")
    ta, tb = ctx.tq[a], ctx.tq[b]
    if ctx.profile.is_ort:
        if act != (-np.inf, np.inf):
            raise ModelError(f"{where}: an activation fused into the add is not supported "
                             "under the ort_cpu profile")
        ctx.emit(QNode(node.name, "qlinear_add", (a, b), out, {}), tout, ctx.shape[a])
        return
    from hwsim.reference.golden_ops import add_left_shift

    bits = max(int(t.dtype.removeprefix("u").removeprefix("int")) for t in (ta, tb))
    ctx.emit(QNode(node.name, "add", (a, b), out,
                   {"act_range": act, "left_shift": add_left_shift(bits)}, {},
                   add_requant(ta, tb, tout, ctx.profile.requant, act)), tout, ctx.shape[a])


def _qdq_add(ctx: _Ctx, node: Any) -> None:
    where = f"node {node.name!r} (Add)"
    a, b = ctx.act(where, node.input[0]), ctx.act(where, node.input[1])
    out, tout, act = ctx.quantized_output(node)
    _add(ctx, node, a, b, out, tout, act)


def _qop_add(ctx: _Ctx, node: Any) -> None:
    where = f"node {node.name!r} (QLinearAdd)"
    i = node.input
    a, b = ctx.act(where, i[0]), ctx.act(where, i[3])
    tout = ctx.tensorq(where, node.output[0], i[6], i[7] if len(i) > 7 else None)
    _add(ctx, node, a, b, node.output[0], tout, (-np.inf, np.inf))


def _mul(ctx: _Ctx, node: Any, a: str, b: str, out: str, tout: TensorQ) -> None:
    where = f"node {node.name!r} ({node.op_type})"
    if not ctx.profile.is_ort:
        raise ModelError(f"{where}: Mul has no integer kernel in profile "
                         f"{ctx.profile.name!r} (only ort_cpu's QLinearMul, §11.2.7)")
    if ctx.shape[a] != ctx.shape[b]:
        raise ModelError(f"{where}: inputs of shapes {ctx.shape[a]} and {ctx.shape[b]}; "
                         "only equal shapes are supported")
    ctx.emit(QNode(node.name, "qlinear_mul", (a, b), out, {}), tout, ctx.shape[a])


def _qdq_mul(ctx: _Ctx, node: Any) -> None:
    where = f"node {node.name!r} (Mul)"
    a, b = ctx.act(where, node.input[0]), ctx.act(where, node.input[1])
    out, tout, act = ctx.quantized_output(node)
    if act != (-np.inf, np.inf):
        raise ModelError(f"{where}: an activation after it is not supported")
    _mul(ctx, node, a, b, out, tout)


def _qop_mul(ctx: _Ctx, node: Any) -> None:
    where = f"node {node.name!r} (QLinearMul)"
    i = node.input
    a, b = ctx.act(where, i[0]), ctx.act(where, i[3])
    _mul(ctx, node, a, b, node.output[0],
         ctx.tensorq(where, node.output[0], i[6], i[7] if len(i) > 7 else None))


def _gap(ctx: _Ctx, node: Any, x: str, out: str, tout: TensorQ) -> None:
    where = f"node {node.name!r} ({node.op_type})"
    s = ctx.shape[x]
    if len(s) != 4:
        raise ModelError(f"{where}: expected a 4-D NCHW input, got shape {s}")
    if int(_attrs(node).get("channels_last", 0)):
        raise ModelError(f"{where}: channels_last = 1 is not supported (NCHW only)")
    tin = ctx.tq[x]
    if ctx.profile.is_ort:
        ctx.emit(QNode(node.name, "qlinear_global_avgpool", (x,), out, {}), tout,
                 (s[0], s[1], 1, 1))
        return
    if (tin.scale, tin.zero_point, tin.dtype) != (tout.scale, tout.zero_point, tout.dtype):
        raise ModelError(f"{where}: input and output qparams differ; profile "
                         f"{ctx.profile.name!r} averages with shared qparams (§10.2)")
    ctx.emit(QNode(node.name, "global_avgpool", (x,), out, {}), tout, (s[0], s[1], 1, 1))


def _avgpool(ctx: _Ctx, node: Any, x: str, out: str, tout: TensorQ) -> None:
    where = f"node {node.name!r} ({node.op_type})"
    a = _attrs(node)
    k = tuple(int(v) for v in a["kernel_shape"])
    strides, pads, _ = _window_attrs(where, a, k)
    if any(pads[i] >= k[i % 2] for i in range(4)):
        raise ModelError(f"{where}: each pad must be smaller than the kernel")
    s = ctx.shape[x]
    oh, ow = _out_hw(s, k, strides, pads, (1, 1))
    attrs = {"kernel_shape": k, "strides": strides, "pads": pads,
             "count_include_pad": int(a.get("count_include_pad", 0))}
    tin = ctx.tq[x]
    if ctx.profile.is_ort:
        ctx.emit(QNode(node.name, "qlinear_avgpool", (x,), out, attrs), tout,
                 (s[0], s[1], oh, ow))
        return
    if (tin.scale, tin.zero_point, tin.dtype) != (tout.scale, tout.zero_point, tout.dtype):
        raise ModelError(f"{where}: input and output qparams differ; profile "
                         f"{ctx.profile.name!r} averages with shared qparams (§10.2)")
    ctx.emit(QNode(node.name, "avgpool", (x,), out, attrs), tout, (s[0], s[1], oh, ow))


def _qdq_gap(ctx: _Ctx, node: Any) -> None:
    x = ctx.act(f"node {node.name!r}", node.input[0])
    out, tout, _ = ctx.quantized_output(node)
    _gap(ctx, node, x, out, tout)


def _qop_gap(ctx: _Ctx, node: Any) -> None:
    where = f"node {node.name!r} (QLinearGlobalAveragePool)"
    i = node.input
    x = ctx.act(where, i[0])
    _gap(ctx, node, x, node.output[0], ctx.tensorq(where, node.output[0], i[3], i[4]))


def _qdq_avgpool(ctx: _Ctx, node: Any) -> None:
    x = ctx.act(f"node {node.name!r}", node.input[0])
    out, tout, _ = ctx.quantized_output(node)
    _avgpool(ctx, node, x, out, tout)


def _qop_avgpool(ctx: _Ctx, node: Any) -> None:
    where = f"node {node.name!r} (QLinearAveragePool)"
    i = node.input
    x = ctx.act(where, i[0])
    _avgpool(ctx, node, x, node.output[0], ctx.tensorq(where, node.output[0], i[3], i[4]))


def _concat(ctx: _Ctx, node: Any, xs: list[str], out: str, tout: TensorQ) -> None:
    axis = int(_attrs(node)["axis"])
    shapes = [ctx.shape[t] for t in xs]
    axis = axis + len(shapes[0]) if axis < 0 else axis
    shape = list(shapes[0])
    shape[axis] = sum(s[axis] for s in shapes)
    if ctx.profile.is_ort:
        ctx.emit(QNode(node.name, "qlinear_concat", tuple(xs), out, {"axis": axis}), tout,
                 tuple(shape))
        return
    req = {f"in{i}": rescale_requant(ctx.tq[t], tout, ctx.profile.requant)
           for i, t in enumerate(xs)}
    ctx.emit(QNode(node.name, "concat", tuple(xs), out, {"axis": axis}, {}, req), tout,
             tuple(shape))


def _qdq_concat(ctx: _Ctx, node: Any) -> None:
    xs = [ctx.act(f"node {node.name!r}", t) for t in node.input]
    out, tout, _ = ctx.quantized_output(node)
    _concat(ctx, node, xs, out, tout)


def _qop_concat(ctx: _Ctx, node: Any) -> None:
    where = f"node {node.name!r} (QLinearConcat)"
    i = list(node.input)
    tout = ctx.tensorq(where, node.output[0], i[0], i[1])
    xs = [ctx.act(where, i[k]) for k in range(2, len(i), 3)]
    for k, t in zip(range(2, len(i), 3), xs, strict=True):
        tq = ctx.tensorq(where, t, i[k + 1], i[k + 2])
        if (tq.scale, tq.zero_point) != (ctx.tq[t].scale, ctx.tq[t].zero_point):
            raise ModelError(f"{where}: qparams of input {t!r} differ from its producer's")
    _concat(ctx, node, xs, node.output[0], tout)


# --- ops on codes (shared qparams) ----------------------------------------------------------

def _shared(ctx: _Ctx, node: Any, qop: str, attrs: dict[str, Any],
            shape: tuple[int, ...]) -> None:
    """An op that moves or selects codes. QDQ: DQ -> op -> Q with the input's qparams;
    QOperator: the op runs on the quantized tensor itself."""
    where = f"node {node.name!r} ({node.op_type})"
    x = ctx.act(where, node.input[0])
    tin = ctx.tq[x]
    if tin.dtype in WIDE_DTYPES and qop not in ("flatten", "reshape"):
        raise ModelError(f"{where}: its input {x!r} is a {tin.dtype} tensor (§11.2.9); only "
                         "Flatten / Reshape move those")
    nxt = ctx.sole_consumer(node.output[0])
    if nxt is not None and nxt.op_type == "QuantizeLinear":
        out, tout, act = ctx.quantized_output(node)
        if (tout.scale, tout.zero_point, tout.dtype) != (tin.scale, tin.zero_point, tin.dtype):
            raise ModelError(f"{where}: the QuantizeLinear after it must keep the input's "
                             "qparams (the op moves codes only)")
        if act != (-np.inf, np.inf):
            raise ModelError(f"{where}: an activation after it is not supported")
    else:
        out = node.output[0]
    ctx.emit(QNode(node.name, qop, (x,), out, attrs),
             TensorQ(out, tin.dtype, tin.scale, tin.zero_point), shape)


def _maxpool(ctx: _Ctx, node: Any) -> None:
    where = f"node {node.name!r} (MaxPool)"
    a = _attrs(node)
    if len(node.output) > 1 and node.output[1]:
        raise ModelError(f"{where}: the Indices output is not supported")
    if int(a.get("storage_order", 0)):
        raise ModelError(f"{where}: storage_order = 1 is not supported")
    k = tuple(int(v) for v in a["kernel_shape"])
    strides, pads, dil = _window_attrs(where, a, k)
    s = ctx.shape[ctx.act(where, node.input[0])]
    oh, ow = _out_hw(s, k, strides, pads, dil)
    _shared(ctx, node, "maxpool", {"kernel_shape": k, "strides": strides, "pads": pads,
                                   "dilations": dil}, (s[0], s[1], oh, ow))


def _flatten(ctx: _Ctx, node: Any) -> None:
    s = ctx.shape[ctx.act(f"node {node.name!r}", node.input[0])]
    axis = int(_attrs(node).get("axis", 1))
    axis = axis + len(s) if axis < 0 else axis
    if axis != 1:
        raise ModelError(f"node {node.name!r} (Flatten): only axis = 1 (keep the batch) is "
                         f"supported, got {axis}")
    _shared(ctx, node, "flatten", {"axis": 1}, (s[0], int(np.prod(s[1:]))))


def _reshape(ctx: _Ctx, node: Any) -> None:
    where = f"node {node.name!r} (Reshape)"
    s = ctx.shape[ctx.act(where, node.input[0])]
    want = [int(v) for v in ctx.const(where, node.input[1]).reshape(-1)]
    dims = [s[i] if v == 0 else v for i, v in enumerate(want)]
    if -1 in dims:
        known = int(np.prod([d for d in dims if d != -1]))
        dims[dims.index(-1)] = int(np.prod(s)) // known
    if dims[0] != s[0] or int(np.prod(dims)) != int(np.prod(s)):
        raise ModelError(f"{where}: only reshapes that keep the batch dimension are "
                         f"supported, got {s} -> {tuple(dims)}")
    _shared(ctx, node, "reshape", {"shape": tuple(dims[1:])}, tuple(dims))


def _relu_clip(ctx: _Ctx, node: Any) -> None:
    """A Relu / Clip on a quantized tensor. Integer Clip bounds (a Clip on codes, as in
    QOperator models) become the real range of those codes, so the clamp keeps them."""
    x = ctx.act(f"node {node.name!r}", node.input[0])
    lo, hi = _relu_clip_range(ctx, node)
    bounds = [ctx.consts.get(t) for t in node.input[1:3] if t]
    if node.op_type == "Clip" and any(b is not None and b.dtype.kind in "iu" for b in bounds):
        tq = ctx.tq[x]
        lo, hi = ((v - tq.zero_point) * tq.scale if np.isfinite(v) else v for v in (lo, hi))
    _shared(ctx, node, "clamp", {"act_range": (lo, hi)}, ctx.shape[x])


def _leaky_relu(ctx: _Ctx, node: Any, x: str, out: str, tout: TensorQ) -> None:
    where = f"node {node.name!r} ({node.op_type})"
    if not ctx.profile.is_ort:
        raise ModelError(f"{where}: LeakyRelu has no integer kernel in profile "
                         f"{ctx.profile.name!r} (only ort_cpu's lookup table, §11.2.6)")
    alpha = float(np.float32(_attrs(node).get("alpha", 0.01)))
    ctx.emit(QNode(node.name, "qlinear_leaky_relu", (x,), out, {"alpha": alpha}), tout,
             ctx.shape[x])


def _sigmoid(ctx: _Ctx, node: Any, x: str, out: str, tout: TensorQ) -> None:
    if not ctx.profile.is_ort:
        raise ModelError(f"node {node.name!r} ({node.op_type}): Sigmoid has no integer kernel "
                         f"in profile {ctx.profile.name!r} (only ort_cpu's lookup table, "
                         "§11.2.6)")
    ctx.emit(QNode(node.name, "qlinear_sigmoid", (x,), out, {}), tout, ctx.shape[x])


def _qdq_sigmoid(ctx: _Ctx, node: Any) -> None:
    x = ctx.act(f"node {node.name!r}", node.input[0])
    out, tout, _ = ctx.quantized_output(node)
    _sigmoid(ctx, node, x, out, tout)


def _qop_sigmoid(ctx: _Ctx, node: Any) -> None:
    where = f"node {node.name!r} (QLinearSigmoid)"
    i = node.input
    x = ctx.act(where, i[0])
    _sigmoid(ctx, node, x, node.output[0],
             ctx.tensorq(where, node.output[0], i[3], i[4] if len(i) > 4 else None))


def _qdq_leaky_relu(ctx: _Ctx, node: Any) -> None:
    x = ctx.act(f"node {node.name!r}", node.input[0])
    out, tout, _ = ctx.quantized_output(node)
    _leaky_relu(ctx, node, x, out, tout)


def _qop_leaky_relu(ctx: _Ctx, node: Any) -> None:
    where = f"node {node.name!r} (QLinearLeakyRelu)"
    i = node.input
    x = ctx.act(where, i[0])
    _leaky_relu(ctx, node, x, node.output[0],
                ctx.tensorq(where, node.output[0], i[3], i[4] if len(i) > 4 else None))


def _identity(ctx: _Ctx, node: Any) -> None:
    if node.input[0] in ctx.consts:  # a shared constant (torch.onnx.export's zero points)
        ctx.consts[node.output[0]] = ctx.consts[node.input[0]]
        return
    ctx.alias[node.output[0]] = node.input[0]


# --- QuantizeLinear / DequantizeLinear ------------------------------------------------------

def _quantize_linear(ctx: _Ctx, node: Any) -> None:
    where = f"node {node.name!r} (QuantizeLinear)"
    x = node.input[0]
    zp = node.input[2] if len(node.input) > 2 and node.input[2] else None
    if x in ctx.input_shapes and x not in ctx.tq:
        ctx.tq[x] = ctx.tensorq(where, x, node.input[1], zp)
        ctx.inputs.append(x)
        ctx.shape[x] = ctx.input_shapes[x]
        ctx.alias[node.output[0]] = x
        return
    if x in ctx.consts:
        s, z, dtype = ctx.qparams(where, node.input[1], zp, per_tensor=False)
        axis = int(_attrs(node).get("axis", 1))
        v = np.asarray(ctx.consts[x], dtype=np.float32)
        view = [1] * v.ndim
        if s.size > 1:
            view[axis] = -1
        f = (v / s.reshape(view)).astype(np.float32)
        from hwsim.compiler.qgraph import act_range

        lo, hi = act_range(dtype)
        q = np.clip(np.rint(f.astype(np.float64)) + z.reshape(view), lo, hi)
        ctx.consts[node.output[0]] = q.astype(np.dtype(dtype))
        return
    raise ModelError(f"{where}: quantizes {x!r}, which is neither a graph input, a "
                     "constant, nor the output of a supported op")


def _dequantize_linear(ctx: _Ctx, node: Any) -> None:
    where = f"node {node.name!r} (DequantizeLinear)"
    x = node.input[0]
    zp = node.input[2] if len(node.input) > 2 and node.input[2] else None
    if x in ctx.consts:
        q = ctx.consts[x]
        if q.dtype.name in ("int4", "uint4"):  # ml_dtypes 4-bit codes (ONNX INT4 / UINT4)
            q = q.astype(np.int8 if q.dtype.name == "int4" else np.uint8)
        s = np.asarray(ctx.const(where, node.input[1]), dtype=np.float32).reshape(-1)
        z = (np.asarray(ctx.const(where, zp), dtype=np.int64).reshape(-1) if zp
             else np.zeros(1, dtype=np.int64))
        if q.dtype.kind not in "iu":
            raise ModelError(f"{where}: constant {x!r} has dtype {q.dtype}; expected "
                             "integer codes")
        ctx.wconst[node.output[0]] = (q, s, z, int(_attrs(node).get("axis", 1)))
        return
    c = ctx.act_q(where, x, node.input[1], zp)
    tq = ctx.tensorq(where, c, node.input[1], zp)
    mine = ctx.tq[c]
    if (tq.scale, tq.zero_point, tq.dtype) != (mine.scale, mine.zero_point, mine.dtype):
        raise ModelError(f"{where}: dequantizes {x!r} with qparams other than those it "
                         "was quantized with")
    ctx.alias[node.output[0]] = c


# --- dynamic quantization: DynamicQuantizeLinear, MatMulInteger, ConvInteger (§11.2.9) ---

def _float_tensor(ctx: _Ctx, where: str, name: str) -> str:
    """A float tensor (graph input or the float32 output of an integer MAC's tail)."""
    c = ctx.canon(name)
    if c in ctx.input_shapes and c not in ctx.tq and ctx.input_types.get(c) == "FLOAT":
        ctx.tq[c] = TensorQ(c, "float32", 1.0, 0)
        ctx.inputs.append(c)
        ctx.shape[c] = ctx.input_shapes[c]
    if c not in ctx.tq or ctx.tq[c].dtype != "float32":
        raise ModelError(f"{where}: input {name!r} is not a float32 graph input nor the "
                         "float output of a MatMulInteger / ConvInteger tail")
    return c


def _dynamic_quantize_linear(ctx: _Ctx, node: Any) -> None:
    """Recorded, not emitted: each MatMulInteger / ConvInteger reading its output quantizes
    the float input itself (§11.2.9), so per-run qparams never leave that node."""
    where = f"node {node.name!r} (DynamicQuantizeLinear)"
    x = _float_tensor(ctx, where, node.input[0])
    y, scale, zp = (list(node.output) + ["", "", ""])[:3]
    for t in (y, scale, zp):
        if t and t in ctx.outputs:
            raise ModelError(f"{where}: output {t!r} is a graph output; run-time scales and "
                             "zero points are not tensors of the integer graph (only their "
                             "use by MatMulInteger / ConvInteger is representable)")
    ctx.dql[y] = (x, scale, zp)


def _scale_product(ctx: _Ctx, node: Any) -> bool:
    """Mul(x_scale, w_scale) of quantize_dynamic: recorded for the float tail."""
    ins = list(node.input)
    dql_scales = {v[1]: k for k, v in ctx.dql.items()}
    for i in (0, 1):
        if ins[i] in dql_scales and ins[1 - i] in ctx.consts:
            ctx.scale_prod[node.output[0]] = (dql_scales[ins[i]], ins[1 - i])
            return True
    return False


def _mul_any(ctx: _Ctx, node: Any) -> None:
    if not _scale_product(ctx, node):
        _qdq_mul(ctx, node)


def _reshape_any(ctx: _Ctx, node: Any) -> None:
    if node.input[0] in ctx.consts:  # quantize_dynamic reshapes the conv bias
        shape = [int(v) for v in ctx.const(node.name, node.input[1]).reshape(-1)]
        ctx.consts[node.output[0]] = ctx.consts[node.input[0]].reshape(shape)
        return
    _reshape(ctx, node)


def _is_float(ctx: _Ctx, name: str) -> bool:
    c = ctx.canon(name)
    return (c in ctx.tq and ctx.tq[c].dtype == "float32") or (
        c in ctx.input_shapes and c not in ctx.tq and ctx.input_types.get(c) == "FLOAT")


def _relu_any(ctx: _Ctx, node: Any) -> None:
    """Relu / Clip on codes, or on a float32 tensor (``float_clip``, §11.2.9)."""
    if not _is_float(ctx, node.input[0]):
        _relu_clip(ctx, node)
        return
    where = f"node {node.name!r} ({node.op_type})"
    x = _float_tensor(ctx, where, node.input[0])
    lo, hi = _relu_clip_range(ctx, node)
    out = node.output[0]
    ctx.emit(QNode(node.name or out, "float_clip", (x,), out, {"range": (lo, hi)}),
             TensorQ(out, "float32", 1.0, 0), ctx.shape[x])


def _add_any(ctx: _Ctx, node: Any) -> None:
    """QDQ Add, or a float32 Add of two float tensors / a tensor and a float32 constant
    (``float_add``, one IEEE addition, §11.2.9)."""
    if not any(_is_float(ctx, t) for t in node.input):
        _qdq_add(ctx, node)
        return
    where = f"node {node.name!r} (Add)"
    ins = [t for t in node.input if t not in ctx.consts]
    xs = tuple(_float_tensor(ctx, where, t) for t in ins)
    arrays = {}
    if len(xs) == 1:
        c = ctx.consts[next(t for t in node.input if t in ctx.consts)]
        if c.dtype != np.float32:
            raise ModelError(f"{where}: constant of dtype {c.dtype}; expected float32")
        arrays["const"] = c
    shape = tuple(np.broadcast_shapes(*(ctx.shape[t] for t in xs),
                                      *(a.shape for a in arrays.values())))
    if shape != ctx.shape[xs[0]]:
        raise ModelError(f"{where}: the output shape {shape} must be the first input's")
    out = node.output[0]
    ctx.emit(QNode(node.name or out, "float_add", xs, out, {}, arrays),
             TensorQ(out, "float32", 1.0, 0), shape)


def _float_tail(ctx: _Ctx, node: Any, dyn: tuple[str, str, str] | None, m: int,
                axis_len: int) -> tuple[str, dict[str, Any], dict[str, np.ndarray]]:
    """Match ``Cast(to float) → Mul(scale product) [→ Add(bias)] [→ Relu]`` after a
    MatMulInteger / ConvInteger; returns the last output, attrs and arrays."""
    where = f"node {node.name!r} ({node.op_type})"
    out, attrs, arrays = node.output[0], {"tail": False, "relu": False}, {}
    cast = ctx.sole_consumer(out)
    if cast is None or cast.op_type != "Cast" or int(_attrs(cast).get("to", 0)) != 1:
        return out, attrs, arrays
    mul = ctx.sole_consumer(cast.output[0])
    if mul is None or mul.op_type != "Mul":
        raise ModelError(f"{where}: the Cast after it must feed a Mul by the scale product")
    other = [t for t in mul.input if t != cast.output[0]]
    prod = ctx.scale_prod.get(other[0]) if len(other) == 1 else None
    if dyn is None or prod is None or ctx.dql.get(prod[0]) != dyn:
        raise ModelError(f"{where}: the Mul after its Cast must multiply by Mul(x_scale, "
                         "w_scale) of its own DynamicQuantizeLinear")
    ws = np.asarray(ctx.const(where, prod[1]), dtype=np.float32).reshape(-1)
    if ws.size not in (1, m) or np.any(~np.isfinite(ws)) or np.any(ws <= 0):
        raise ModelError(f"{where}: weight scale {prod[1]!r} must be 1 or {m} finite "
                         "values > 0")
    arrays["weight_scale"] = np.broadcast_to(ws, (m,)).copy()
    ctx.done.update({_index(ctx.g, cast), _index(ctx.g, mul)})
    out = mul.output[0]
    attrs["tail"] = True
    add = ctx.sole_consumer(out)
    if add is not None and add.op_type == "Add":
        b_name = [t for t in add.input if t != out]
        b = ctx.consts.get(b_name[0]) if len(b_name) == 1 else None
        if b is not None and b.dtype == np.float32 and b.size == m and (
                b.ndim == 1 or b.shape[axis_len] == m):
            arrays["bias"] = np.asarray(b, dtype=np.float32).reshape(-1)
            ctx.done.add(_index(ctx.g, add))
            out = add.output[0]
    relu = ctx.sole_consumer(out)
    if relu is not None and relu.op_type == "Relu":
        attrs["relu"] = True
        ctx.done.add(_index(ctx.g, relu))
        out = relu.output[0]
    return out, attrs, arrays


def _integer_mac_input(ctx: _Ctx, where: str, node: Any
                       ) -> tuple[str, tuple[str, str, str] | None, int]:
    """The MAC's input tensor: the float source of its DynamicQuantizeLinear (dynamic), or
    uint8 / int8 codes with the constant zero point; and the declared rows per run."""
    a = node.input[0]
    if a in ctx.dql:
        dyn = ctx.dql[a]
        return dyn[0], dyn, 0 if ctx.dynamic_batch else ctx.shape[dyn[0]][0]
    zp = node.input[2] if len(node.input) > 2 and node.input[2] else None
    if a in ctx.int_inputs and a not in ctx.tq:
        z = (np.asarray(ctx.const(where, zp)).reshape(-1) if zp
             else np.zeros(1, dtype=np.int64))
        if z.size != 1:
            raise ModelError(f"{where}: the input zero point must be per tensor")
        ctx.tq[a] = TensorQ(a, ctx.int_inputs[a], 1.0, int(z[0]))
        ctx.inputs.append(a)
        ctx.shape[a] = ctx.input_shapes[a]
    c = ctx.act(where, a)
    z0 = int(np.asarray(ctx.const(where, zp)).reshape(-1)[0]) if zp else 0
    if z0 != ctx.tq[c].zero_point:
        raise ModelError(f"{where}: input zero point {z0} differs from its producer's")
    return c, None, 0


def _integer_weights(ctx: _Ctx, where: str, node: Any, axis: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    wq = ctx.const(where, node.input[1])
    if wq.dtype not in (np.int8, np.uint8):
        raise ModelError(f"{where}: weights {node.input[1]!r} of dtype {wq.dtype}; expected "
                         "int8 or uint8 codes")
    zw = (np.asarray(ctx.const(where, node.input[3]), dtype=np.int64).reshape(-1)
          if len(node.input) > 3 and node.input[3] else np.zeros(1, dtype=np.int64))
    if zw.size not in (1, wq.shape[axis]):
        raise ModelError(f"{where}: weight zero point has {zw.size} values, expected 1 or "
                         f"{wq.shape[axis]}")
    return wq, zw


def _pair_saturated(ctx: _Ctx, tin_dtype: str, wq: np.ndarray, zw: np.ndarray) -> bool:
    return (ctx.profile.mac_u8s8 == "avx2_pair_saturation" and wq.dtype == np.int8
            and tin_dtype in ("float32", "uint8") and not np.any(zw))


def _matmul_integer(ctx: _Ctx, node: Any) -> None:
    where = f"node {node.name!r} (MatMulInteger)"
    if not ctx.profile.is_ort:
        raise ModelError(f"{where}: ORT's dynamic quantization has no kernel in profile "
                         f"{ctx.profile.name!r} (§11.2.9: ort_cpu profiles only)")
    x, dyn, rows = _integer_mac_input(ctx, where, node)
    wq, zw = _integer_weights(ctx, where, node, 1)
    xs = ctx.shape[x]
    if wq.ndim != 2 or xs[-1] != wq.shape[0]:
        raise ModelError(f"{where}: expected a constant 2-D B with {xs[-1]} rows, got "
                         f"{wq.shape}")
    n = wq.shape[1]
    out, attrs, arrays = _float_tail(ctx, node, dyn, n, len(xs) - 1)
    w = np.ascontiguousarray(wq.T)
    attrs.update(rows=rows, pair_saturated=_pair_saturated(ctx, ctx.tq[x].dtype, wq, zw))
    arrays.update(weight=w, weight_zero_point=np.broadcast_to(zw, (n,)).copy())
    ctx.emit(QNode(node.name or out, "matmul_integer", (x,), out, attrs, arrays),
             TensorQ(out, "float32" if attrs["tail"] else "int32", 1.0, 0), xs[:-1] + (n,))


def _conv_integer(ctx: _Ctx, node: Any) -> None:
    where = f"node {node.name!r} (ConvInteger)"
    if not ctx.profile.is_ort:
        raise ModelError(f"{where}: ORT's dynamic quantization has no kernel in profile "
                         f"{ctx.profile.name!r} (§11.2.9: ort_cpu profiles only)")
    x, dyn, rows = _integer_mac_input(ctx, where, node)
    wq, zw = _integer_weights(ctx, where, node, 0)
    if wq.ndim != 4:
        raise ModelError(f"{where}: only 2-D convolutions are supported")
    a = _attrs(node)
    strides, pads, dil = _window_attrs(where, a, tuple(wq.shape[2:]))
    xs = ctx.shape[x]
    oh, ow = _out_hw(xs, tuple(wq.shape[2:]), strides, pads, dil)
    m = wq.shape[0]
    out, attrs, arrays = _float_tail(ctx, node, dyn, m, 1)
    attrs.update(rows=rows, strides=strides, pads=pads, dilations=dil,
                 group=int(a.get("group", 1)),
                 pair_saturated=False)  # MLAS's S8U8 path: exact on AVX2 (§11.2.9)
    arrays.update(weight=np.asarray(wq), weight_zero_point=np.broadcast_to(zw, (m,)).copy())
    ctx.emit(QNode(node.name or out, "conv_integer", (x,), out, attrs, arrays),
             TensorQ(out, "float32" if attrs["tail"] else "int32", 1.0, 0),
             (xs[0], m, oh, ow))


#: (format, ONNX op type) -> converter. "qdq": float op between DQ and Q nodes; "qop":
#: QOperator / com.microsoft node; "any": both.
CONVERTERS: Mapping[tuple[str, str], Callable[[_Ctx, Any], None]] = {
    ("any", "QuantizeLinear"): _quantize_linear,
    ("any", "DequantizeLinear"): _dequantize_linear,
    ("qdq", "Conv"): _qdq_conv,
    ("qdq", "Gemm"): _qdq_gemm,
    ("qdq", "MatMul"): _qdq_gemm,
    ("qdq", "Add"): _add_any,  # or a float32 Add (§11.2.9)
    ("qdq", "Mul"): _mul_any,  # or quantize_dynamic's Mul(x_scale, w_scale), §11.2.9
    ("qdq", "GlobalAveragePool"): _qdq_gap,
    ("qdq", "AveragePool"): _qdq_avgpool,
    ("qdq", "Concat"): _qdq_concat,
    ("qdq", "LeakyRelu"): _qdq_leaky_relu,
    ("qdq", "Sigmoid"): _qdq_sigmoid,
    ("qop", "QLinearConv"): _qop_conv,
    ("qop", "QLinearMatMul"): _qop_matmul,
    ("qop", "QGemm"): _qop_gemm,
    ("qop", "QLinearAdd"): _qop_add,
    ("qop", "QLinearMul"): _qop_mul,
    ("qop", "QLinearGlobalAveragePool"): _qop_gap,
    ("qop", "QLinearAveragePool"): _qop_avgpool,
    ("qop", "QLinearConcat"): _qop_concat,
    ("qop", "QLinearLeakyRelu"): _qop_leaky_relu,
    ("qop", "QLinearSigmoid"): _qop_sigmoid,
    ("any", "MaxPool"): _maxpool,
    ("any", "Flatten"): _flatten,
    ("any", "Reshape"): _reshape_any,
    ("any", "Relu"): _relu_any,
    ("any", "Clip"): _relu_any,
    ("any", "Identity"): _identity,
    ("qop", "DynamicQuantizeLinear"): _dynamic_quantize_linear,
    ("qop", "MatMulInteger"): _matmul_integer,
    ("qop", "ConvInteger"): _conv_integer,
}
_BY_OP = {op: fn for (_, op), fn in CONVERTERS.items()}


def _converter(node: Any) -> Callable[[_Ctx, Any], None]:
    fn = _BY_OP.get(node.op_type)
    if fn is None:
        supported = ", ".join(sorted(_BY_OP))
        raise ModelError(f"node {node.name!r} ({node.op_type}): not representable in the "
                         f"integer graph; supported quantized-model ops: {supported}")
    return fn


#: ONNX ops hwsim reproduces on float32 tensors (ORT dynamic quantization, §11.2.9).
FLOAT_READERS = frozenset(("DynamicQuantizeLinear", "Add", "Relu", "Clip", "Flatten",
                           "Reshape", "Identity"))


def _check_float_reader(ctx: _Ctx, node: Any) -> None:
    if node.op_type in FLOAT_READERS:
        return
    for t in node.input:
        c = ctx.canon(t) if t else t
        if c in ctx.tq and ctx.tq[c].dtype == "float32":
            raise ModelError(
                f"node {node.name!r} ({node.op_type}): reads the float32 tensor {t!r} "
                "(ORT dynamic quantization, arithmetic §11.2.9); only "
                f"{', '.join(sorted(FLOAT_READERS))} are reproduced bit for bit on float "
                "tensors (no float fallback)")


def _integer_inputs(model: Any) -> dict[str, str]:
    """Graph inputs that hold codes (uint8 / int8 / uint16 / int16), by dtype name."""
    from onnx import helper

    out = {}
    for vi in model.graph.input:
        et = vi.type.tensor_type.elem_type
        if vi.name not in {t.name for t in model.graph.initializer} and et:
            dt = np.dtype(helper.tensor_dtype_to_np_dtype(et))
            if dt in _INT_DTYPES:
                out[vi.name] = _INT_DTYPES[dt]
    return out


def _input_shapes(model: Any) -> dict[str, tuple[int, ...]]:
    inits = {t.name for t in model.graph.initializer}
    shapes = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        dims = []
        for i, d in enumerate(vi.type.tensor_type.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(int(d.dim_value))
            elif i == 0:
                dims.append(1)
            else:
                raise ModelError(f"graph input {vi.name!r}: dynamic dimension {i}; static "
                                 "shapes are required")
        shapes[vi.name] = tuple(dims)
    return shapes


def load_quantized_onnx(source: Any, profile: str | EngineProfile = "ort_cpu",
                        name: str | None = None) -> ImportedModel:
    """Import a QDQ or QOperator ONNX model (path, bytes or ModelProto) into an integer
    graph with its own qparams, under engine ``profile`` (default ``ort_cpu``)."""
    prof = get_profile(profile) if isinstance(profile, str) else profile
    model = _read_model(source)
    ctx = _Ctx(model, prof)
    ctx.input_shapes = _input_shapes(model)
    ctx.int_inputs = _integer_inputs(model)
    from onnx import TensorProto

    ctx.input_types = {vi.name: TensorProto.DataType.Name(vi.type.tensor_type.elem_type)
                       for vi in model.graph.input if vi.name in ctx.input_shapes}
    ctx.dynamic_batch = {vi.name for vi in model.graph.input if vi.name in ctx.input_shapes
                         and not (vi.type.tensor_type.shape.dim
                                  and vi.type.tensor_type.shape.dim[0].dim_value > 0)}
    for i, node in enumerate(model.graph.node):
        if i in ctx.done:
            continue
        if node.domain not in ("", "ai.onnx", "com.microsoft"):
            raise ModelError(f"node {node.name!r} ({node.op_type}): domain {node.domain!r} "
                             "is not supported")
        fn = _converter(node)
        _check_float_reader(ctx, node)
        ctx.done.add(i)
        fn(ctx, node)
    outputs = {}
    for o in ctx.outputs:
        c = ctx.canon(o)
        if c not in ctx.tq:
            raise ModelError(f"graph output {o!r} is not the dequantized value of a "
                             "quantized tensor")
        outputs[o] = c
    for t in ctx.input_shapes:
        if t not in ctx.tq:
            raise ModelError(f"graph input {t!r} is not quantized by a QuantizeLinear nor "
                             "read as codes by a quantized op")
    label = name or model.graph.name or (os.path.basename(source) if isinstance(
        source, str) else "quantized_onnx")
    qg = QGraph(name=label, inputs=tuple(ctx.inputs), outputs=tuple(dict.fromkeys(
        outputs.values())), tensors=dict(ctx.tq), nodes=tuple(ctx.nodes),
        requant_config=prof.requant, acc_bits=32, acc_overflow="wrap", weight_format="int8",
        input_shapes={t: ctx.input_shapes[t] for t in ctx.inputs}, profile=prof.name)
    verify_qgraph(qg)
    return ImportedModel(qg, prof, outputs, model)
