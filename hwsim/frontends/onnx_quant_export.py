"""Export an integer graph as a quantized ONNX model, QDQ or QOperator (specs/ir.md §9).

:func:`to_quantized_onnx` writes a :class:`~hwsim.compiler.qgraph.QGraph` whose arithmetic
ONNX Runtime reproduces — requant mode ``float32`` and no hwsim-only non-MAC op (the §10
add / average pooling / rescaling concat; build the graph with ``--profile ort_cpu``) — so
that ORT runs it bit-exactly against hwsim's golden model (arithmetic §11.2). One exporter
per (format, integer op) in :data:`EXPORTERS`. Names: the float graph input keeps its name,
every integer tensor ``t`` is the code tensor ``t_q`` (QDQ: its dequantized twin ``t_dq``),
and each graph output ``t`` is the float DequantizeLinear of ``t_q``.

Conv / gemm weights are the carried int8 weights with zero point 0 and float32 per-channel
scales (axis 0), the int32 bias the unfolded ``bias + z_x·Σ w`` (arithmetic §7.2). A fused
activation whose clamp is narrower than the format becomes an integer Clip on the codes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from hwsim.compiler.qgraph import QGraph, QNode
from hwsim.errors import ModelError
from hwsim.fileio import atomic_write

#: Formats written.
FORMATS = ("qdq", "qoperator")
#: ONNX opset of the exported models (plus com.microsoft 1 for QOperator contrib ops).
EXPORT_OPSET = 13
_NP = {"uint8": np.uint8, "int8": np.int8, "uint16": np.uint16, "int16": np.int16}


class _Out:
    """The ONNX graph under construction."""

    def __init__(self, g: QGraph, fmt: str) -> None:
        from onnx import helper, numpy_helper

        self.g, self.fmt, self.h, self.nh = g, fmt, helper, numpy_helper
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.names: set[str] = set()

    def const(self, name: str, value: np.ndarray) -> str:
        if name in self.names:
            raise ModelError(f"cannot name the exported constant {name!r}: it exists")
        self.names.add(name)
        self.inits.append(self.nh.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, ins: list[str], outs: list[str], name: str,
             domain: str = "", **attrs: Any) -> None:
        self.nodes.append(self.h.make_node(op, ins, outs, name=name, domain=domain, **attrs))

    def qparams(self, t: str) -> tuple[str, str]:
        """Scale / zero-point initializers of activation ``t`` (created once)."""
        tq = self.g.tensors[t]
        s, z = f"{t}.scale", f"{t}.zero_point"
        if s not in self.names:
            self.const(s, np.array(tq.scale, dtype=np.float32))
            self.const(z, np.array(tq.zero_point, dtype=_NP[tq.dtype]))
        return s, z

    def dq(self, t: str) -> str:
        """QDQ: the float (dequantized) twin of code tensor ``t``, one DQ per tensor."""
        name = f"{t}_dq"
        if name not in self.names:
            self.names.add(name)
            s, z = self.qparams(t)
            self.node("DequantizeLinear", [f"{t}_q", s, z], [name], f"{t}.dq")
        return name

    def q(self, t: str, float_in: str) -> None:
        """QDQ: quantize a float op result into code tensor ``t``."""
        s, z = self.qparams(t)
        self.node("QuantizeLinear", [float_in, s, z], [f"{t}_q"], f"{t}.q")


def _clamp_after(o: _Out, n: QNode, raw: str) -> None:
    """Integer Clip of the fused-activation bounds, when narrower than the format."""
    tq = o.g.tensors[n.output]
    req = n.requant.get("out")
    lo, hi = (req.act_min, req.act_max) if req is not None else (tq.qmin, tq.qmax)
    if (lo, hi) == (tq.qmin, tq.qmax):
        o.node("Identity", [raw], [f"{n.output}_q"], f"{n.name}.out")
        return
    dt = _NP[tq.dtype]
    o.node("Clip", [raw, o.const(f"{n.name}.act_min", np.array(lo, dt)),
                    o.const(f"{n.name}.act_max", np.array(hi, dt))],
           [f"{n.output}_q"], f"{n.name}.act")


def _mac_arrays(o: _Out, n: QNode) -> tuple[str, str, str, str]:
    """Weight, weight scale, weight zero point and int32 bias initializers of a conv/gemm."""
    g = o.g
    tin = g.tensors[n.inputs[0]]
    w = np.asarray(n.arrays["weight"])
    if w.dtype != np.int8:
        raise ModelError(f"node {n.name!r} ({n.op}): weights of dtype {w.dtype} cannot be "
                         "exported (int8 weights only)")
    m = w.shape[0]
    bias = n.arrays["bias"].astype(np.int64) + tin.zero_point * w.reshape(m, -1).astype(
        np.int64).sum(axis=1)
    if bias.min() < -(1 << 31) or bias.max() >= 1 << 31:
        raise ModelError(f"node {n.name!r}: the unfolded bias does not fit int32")
    return (o.const(f"{n.name}.weight", w),
            o.const(f"{n.name}.weight_scale", n.arrays["weight_scale"].astype(np.float32)),
            o.const(f"{n.name}.weight_zero_point", np.zeros(m, dtype=np.int8)),
            o.const(f"{n.name}.bias", bias.astype(np.int32)))


def _conv_attrs(n: QNode) -> dict[str, Any]:
    a = n.attrs
    kh, kw = n.arrays["weight"].shape[2:]
    return {"kernel_shape": [int(kh), int(kw)], "strides": [int(v) for v in a["strides"]],
            "pads": [int(v) for v in a["pads"]], "dilations": [int(v) for v in a["dilations"]],
            "group": int(a["group"])}


def _qop_mac(o: _Out, n: QNode) -> None:
    x = n.inputs[0]
    xs, xz = o.qparams(x)
    ys, yz = o.qparams(n.output)
    w, ws, wz, b = _mac_arrays(o, n)
    raw = f"{n.output}_raw"
    if n.op.startswith("conv"):
        o.node("QLinearConv", [f"{x}_q", xs, xz, w, ws, wz, ys, yz, b], [raw], n.name,
               **_conv_attrs(n))
    else:
        o.node("QGemm", [f"{x}_q", xs, xz, w, ws, wz, b, ys, yz], [raw], n.name,
               domain="com.microsoft", transB=1)
    _clamp_after(o, n, raw)


def _qdq_mac(o: _Out, n: QNode) -> None:
    x = n.inputs[0]
    w, ws, wz, b = _mac_arrays(o, n)
    tin = o.g.tensors[x]
    bscale = o.const(f"{n.name}.bias_scale", (np.float32(tin.scale) * n.arrays[
        "weight_scale"].astype(np.float32)).astype(np.float32))
    bzero = o.const(f"{n.name}.bias_zero_point",
                    np.zeros(n.arrays["weight"].shape[0], dtype=np.int32))
    o.node("DequantizeLinear", [w, ws, wz], [f"{n.name}.weight_dq"], f"{n.name}.weight.dq",
           axis=0)
    o.node("DequantizeLinear", [b, bscale, bzero], [f"{n.name}.bias_dq"],
           f"{n.name}.bias.dq", axis=0)
    ins = [o.dq(x), f"{n.name}.weight_dq", f"{n.name}.bias_dq"]
    if n.op.startswith("conv"):
        o.node("Conv", ins, [f"{n.output}_f"], n.name, **_conv_attrs(n))
    else:
        o.node("Gemm", ins, [f"{n.output}_f"], n.name, transB=1)
    o.q(n.output, f"{n.output}_f")
    _retarget(o, n)


def _retarget(o: _Out, n: QNode) -> None:
    """QDQ: a fused clamp narrower than the format goes on the codes after the Q node."""
    req = n.requant.get("out")
    tq = o.g.tensors[n.output]
    if req is None or (req.act_min, req.act_max) == (tq.qmin, tq.qmax):
        return
    q = o.nodes[-1]
    q.output[0] = f"{n.output}_pre"
    _clamp_after(o, n, f"{n.output}_pre")


def _qop_simple(op: str, domain: str = "") -> Callable[[_Out, QNode], None]:
    def run(o: _Out, n: QNode) -> None:
        x = n.inputs[0]
        ins = [f"{x}_q", *o.qparams(x), *o.qparams(n.output)]
        o.node(op, ins, [f"{n.output}_q"], n.name, domain=domain, **_pool_attrs(n))
    return run


def _qdq_simple(op: str) -> Callable[[_Out, QNode], None]:
    def run(o: _Out, n: QNode) -> None:
        o.node(op, [o.dq(n.inputs[0])], [f"{n.output}_f"], n.name, **_pool_attrs(n))
        o.q(n.output, f"{n.output}_f")
    return run


def _pool_attrs(n: QNode) -> dict[str, Any]:
    a = n.attrs
    if n.op in ("qlinear_avgpool", "maxpool"):
        out = {"kernel_shape": [int(v) for v in a["kernel_shape"]],
               "strides": [int(v) for v in a["strides"]], "pads": [int(v) for v in a["pads"]]}
        if n.op == "maxpool":
            out["dilations"] = [int(v) for v in a["dilations"]]
        else:
            out["count_include_pad"] = int(a["count_include_pad"])
        return out
    if n.op == "qlinear_leaky_relu":
        return {"alpha": float(n.attrs["alpha"])}
    return {}


def _qop_concat(o: _Out, n: QNode) -> None:
    ins = [*o.qparams(n.output)]
    for t in n.inputs:
        ins += [f"{t}_q", *o.qparams(t)]
    o.node("QLinearConcat", ins, [f"{n.output}_q"], n.name, domain="com.microsoft",
           axis=int(n.attrs["axis"]))


def _qdq_concat(o: _Out, n: QNode) -> None:
    o.node("Concat", [o.dq(t) for t in n.inputs], [f"{n.output}_f"], n.name,
           axis=int(n.attrs["axis"]))
    o.q(n.output, f"{n.output}_f")


def _qop_add(o: _Out, n: QNode) -> None:
    a, b = n.inputs
    o.node("QLinearAdd", [f"{a}_q", *o.qparams(a), f"{b}_q", *o.qparams(b),
                          *o.qparams(n.output)], [f"{n.output}_raw"], n.name,
           domain="com.microsoft")
    _clamp_add(o, n, f"{n.output}_raw")


def _qdq_add(o: _Out, n: QNode) -> None:
    a, b = n.inputs
    o.node("Add", [o.dq(a), o.dq(b)], [f"{n.output}_f"], n.name)
    o.q(n.output, f"{n.output}_f")
    if _add_bounds(o, n) is not None:
        o.nodes[-1].output[0] = f"{n.output}_pre"
        _clamp_add(o, n, f"{n.output}_pre")


def _add_bounds(o: _Out, n: QNode) -> tuple[int, int] | None:
    act = tuple(n.attrs.get("act_range", (-np.inf, np.inf)))
    if act == (-np.inf, np.inf):
        return None
    from hwsim.compiler.requant import fused_act_bounds

    tq = o.g.tensors[n.output]
    lo, hi = fused_act_bounds(float(act[0]), float(act[1]), tq)
    return None if (lo, hi) == (tq.qmin, tq.qmax) else (lo, hi)


def _clamp_add(o: _Out, n: QNode, raw: str) -> None:
    bounds = _add_bounds(o, n)
    if bounds is None:
        o.node("Identity", [raw], [f"{n.output}_q"], f"{n.name}.out")
        return
    dt = _NP[o.g.tensors[n.output].dtype]
    o.node("Clip", [raw, o.const(f"{n.name}.act_min", np.array(bounds[0], dt)),
                    o.const(f"{n.name}.act_max", np.array(bounds[1], dt))],
           [f"{n.output}_q"], f"{n.name}.act")


def _qop_mul(o: _Out, n: QNode) -> None:
    a, b = n.inputs
    o.node("QLinearMul", [f"{a}_q", *o.qparams(a), f"{b}_q", *o.qparams(b),
                          *o.qparams(n.output)], [f"{n.output}_q"], n.name,
           domain="com.microsoft")


def _qdq_mul(o: _Out, n: QNode) -> None:
    o.node("Mul", [o.dq(n.inputs[0]), o.dq(n.inputs[1])], [f"{n.output}_f"], n.name)
    o.q(n.output, f"{n.output}_f")


def _codes_op(o: _Out, n: QNode) -> None:
    """Ops that move codes (shared qparams): run on the code tensors in both formats."""
    x = f"{n.inputs[0]}_q"
    out = [f"{n.output}_q"]
    if n.op == "maxpool":
        o.node("MaxPool", [x], out, n.name, **_pool_attrs(n))
    elif n.op == "flatten":
        o.node("Flatten", [x], out, n.name, axis=int(n.attrs["axis"]))
    elif n.op == "reshape":
        shape = np.array([0, *[int(d) for d in n.attrs["shape"]]], dtype=np.int64)
        o.node("Reshape", [x, o.const(f"{n.name}.shape", shape)], out, n.name)
    elif n.op == "clamp":
        from hwsim.compiler.requant import fused_act_bounds

        tin = o.g.tensors[n.inputs[0]]
        lo, hi = fused_act_bounds(*(float(v) for v in n.attrs["act_range"]), tin)
        dt = _NP[tin.dtype]
        o.node("Clip", [x, o.const(f"{n.name}.min", np.array(lo, dt)),
                        o.const(f"{n.name}.max", np.array(hi, dt))], out, n.name)
    else:
        tqs = [o.g.tensors[t] for t in n.inputs]
        out_tq = o.g.tensors[n.output]
        if any((t.scale, t.zero_point, t.dtype) != (out_tq.scale, out_tq.zero_point,
                                                    out_tq.dtype) for t in tqs):
            raise ModelError(f"node {n.name!r} (concat): inputs must share the output's "
                             "qparams to be exported")
        o.node("Concat", [f"{t}_q" for t in n.inputs], out, n.name,
               axis=int(n.attrs["axis"]))


#: (format, integer op) -> exporter.
EXPORTERS: Mapping[tuple[str, str], Callable[[_Out, QNode], None]] = {
    **{(f, op): _codes_op for f in FORMATS
       for op in ("maxpool", "flatten", "reshape", "clamp", "concat")},
    **{("qoperator", op): _qop_mac for op in ("conv", "gemm", "conv_u8s8", "gemm_u8s8")},
    ("qoperator", "qlinear_add"): _qop_add,
    ("qoperator", "qlinear_mul"): _qop_mul,
    ("qoperator", "qlinear_global_avgpool"): _qop_simple("QLinearGlobalAveragePool",
                                                         "com.microsoft"),
    ("qoperator", "qlinear_avgpool"): _qop_simple("QLinearAveragePool", "com.microsoft"),
    ("qoperator", "qlinear_concat"): _qop_concat,
    ("qoperator", "qlinear_leaky_relu"): _qop_simple("QLinearLeakyRelu", "com.microsoft"),
    ("qoperator", "qlinear_sigmoid"): _qop_simple("QLinearSigmoid", "com.microsoft"),
    **{("qdq", op): _qdq_mac for op in ("conv", "gemm", "conv_u8s8", "gemm_u8s8")},
    ("qdq", "qlinear_add"): _qdq_add,
    ("qdq", "qlinear_mul"): _qdq_mul,
    ("qdq", "qlinear_global_avgpool"): _qdq_simple("GlobalAveragePool"),
    ("qdq", "qlinear_avgpool"): _qdq_simple("AveragePool"),
    ("qdq", "qlinear_concat"): _qdq_concat,
    ("qdq", "qlinear_leaky_relu"): _qdq_simple("LeakyRelu"),
    ("qdq", "qlinear_sigmoid"): _qdq_simple("Sigmoid"),
}


def to_quantized_onnx(g: QGraph, fmt: str = "qdq") -> Any:
    """The ONNX ModelProto of ``g`` in ``fmt`` ("qdq" or "qoperator"); loaded and run by
    onnxruntime in the tests (outputs carry no static shape)."""
    import onnx

    if fmt not in FORMATS:
        raise ModelError(f"format: expected one of {FORMATS}, got {fmt!r}")
    if g.dynamic:
        raise ModelError(f"graph {g.name!r} is dynamic; only static graphs can be exported")
    dyn = [n for n in g.nodes if n.op in ("matmul_integer", "conv_integer")]
    if dyn:
        raise ModelError(f"node {dyn[0].name!r} ({dyn[0].op}): ORT dynamic quantization "
                         "(arithmetic §11.2.9) is not exported; the source model already "
                         "is that ONNX")
    if g.requant_config.mode != "float32":
        raise ModelError(f"graph {g.name!r} uses requant mode {g.requant_config.mode!r}; "
                         "ONNX Runtime reproduces only 'float32' (quantize with "
                         "--profile ort_cpu)")
    o = _Out(g, fmt)
    for x in g.inputs:
        s, z = o.qparams(x)
        o.node("QuantizeLinear", [x, s, z], [f"{x}_q"], f"{x}.q")
    for n in g.nodes:
        fn = EXPORTERS.get((fmt, n.op))
        if fn is None:
            raise ModelError(f"node {n.name!r} ({n.op}): no {fmt} export; ONNX Runtime has no "
                             "kernel with this arithmetic (quantize with --profile ort_cpu)")
        fn(o, n)
    outs = []
    for t in g.outputs:
        s, z = o.qparams(t)
        o.node("DequantizeLinear", [f"{t}_q", s, z], [t], f"{t}.dq")
        outs.append(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None))
    ins = []
    for x in g.inputs:
        shape = ["N", *g.input_shapes[x][1:]] if x in g.input_shapes else None
        ins.append(onnx.helper.make_tensor_value_info(x, onnx.TensorProto.FLOAT, shape))
    graph = onnx.helper.make_graph(o.nodes, g.name, ins, outs, o.inits)
    opsets = [onnx.helper.make_opsetid("", EXPORT_OPSET)]
    if fmt == "qoperator":
        opsets.append(onnx.helper.make_opsetid("com.microsoft", 1))
    return onnx.helper.make_model(graph, opset_imports=opsets, producer_name="hwsim")


def save_quantized_onnx(g: QGraph, path: str | os.PathLike[str], fmt: str = "qdq") -> None:
    """Write :func:`to_quantized_onnx` to ``path`` atomically."""
    atomic_write(path, to_quantized_onnx(g, fmt).SerializeToString())

