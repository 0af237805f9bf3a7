"""Export hwsim's integer graph to an int8 ``.tflite`` model (specs/ir.md §10).

:func:`to_tflite` writes a static graph whose arithmetic is LiteRT's reference kernels'
(compiled or imported under the ``litert_ref`` profile, arithmetic §11.3) as a flatbuffer
LiteRT runs, so LiteRT's output can be compared code for code with hwsim's golden model.
One writer per integer op in :data:`EXPORTERS`; a node whose arithmetic LiteRT does not
have (another requant mode, §10.2 pooling, a clamp that is not a TFLite activation)
raises a ModelError naming the node and what to do. Before writing, every conv / gemm /
add requant block is recomputed from the float32 scales the file carries, as LiteRT will,
and must equal the graph's (else the scales are not float32 values).

Layout: activations are written NHWC (graph inputs and outputs too, int8 codes); a hwsim
``flatten`` of a 4-D tensor becomes a RESHAPE (H·W·C order) and the next gemm's weight
columns are permuted to it. TFLite biases are the unfolded ones: ``bias + z_x·Σw``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from hwsim.compiler.qgraph import QGraph, QNode, TensorQ
from hwsim.compiler.requant import add_requant, mac_requant
from hwsim.errors import ModelError
from hwsim.frontends.tflite_write import TfliteBuilder

_ACTS = {(-np.inf, np.inf): "NONE", (0.0, np.inf): "RELU", (0.0, 6.0): "RELU6",
         (-1.0, 1.0): "RELU_N1_TO_1"}


class _Ex:
    def __init__(self, g: QGraph) -> None:
        self.g = g
        self.b = TfliteBuilder()
        self.idx: dict[str, int] = {}
        self.shape: dict[str, tuple[int, ...]] = {}  # hwsim shapes
        self.perm: dict[str, np.ndarray] = {}

    def where(self, n: QNode) -> str:
        return f"node {n.name!r} ({n.op})"

    def act_tensor(self, name: str, hw_shape: tuple[int, ...]) -> int:
        tq = self.g.tensors[name]
        shape = _nhwc(hw_shape)
        i = self.b.tensor(name, shape, tq.dtype, scale=np.float32(tq.scale),
                          zero_point=tq.zero_point)
        self.idx[name] = i
        self.shape[name] = hw_shape
        return i


def _nhwc(s: tuple[int, ...]) -> tuple[int, ...]:
    return (s[0], s[2], s[3], s[1]) if len(s) == 4 else s


def _f32_exact(where: str, what: str, v: Any) -> None:
    a = np.asarray(v, dtype=np.float64)
    if not np.array_equal(a.astype(np.float32).astype(np.float64), a):
        raise ModelError(f"{where}: {what} is not a float32 value; a .tflite file stores "
                         "float32 scales, so LiteRT would requantize differently")


def _act(ex: _Ex, n: QNode) -> str:
    r = tuple(float(v) for v in n.attrs.get("act_range", (-np.inf, np.inf)))
    if r not in _ACTS:
        raise ModelError(f"{ex.where(n)}: fused activation range {r} is not a TFLite fused "
                         f"activation ({', '.join(_ACTS.values())})")
    return _ACTS[r]


def _same_params(ex: _Ex, n: QNode, got: Any, want: Any) -> None:
    if not (np.array_equal(got.multiplier, want.multiplier)
            and np.array_equal(got.shift, want.shift)
            and got.config.mode == want.config.mode
            and (got.act_min, got.act_max) == (want.act_min, want.act_max)):
        raise ModelError(f"{ex.where(n)}: its requant parameters (mode "
                         f"{got.config.mode!r}) are not the ones LiteRT derives from the "
                         "file's scales (arithmetic §11.3); compile with --profile litert_ref")


def _window(ex: _Ex, n: QNode, hw: tuple[int, int], k: tuple[int, int],
            s: tuple[int, int], d: tuple[int, int]) -> str:
    """TFLite padding name reproducing the node's explicit pads (§10 of ir.md)."""
    from hwsim.frontends.tflite import _same_pads

    pads = tuple(int(p) for p in n.attrs["pads"])
    if not any(pads):
        return "VALID"
    same = [_same_pads(hw[i], k[i], s[i], d[i], True) for i in range(2)]
    if pads == (same[0][1], same[1][1], same[0][2], same[1][2]):
        return "SAME"
    raise ModelError(f"{ex.where(n)}: pads {pads} are neither VALID nor TFLite's SAME "
                     f"{(same[0][1], same[1][1], same[0][2], same[1][2])}")


def _conv(ex: _Ex, n: QNode) -> None:
    g, a = ex.g, n.attrs
    x = n.inputs[0]
    tin, tout = g.tensors[x], g.tensors[n.output]
    s_in = ex.shape[x]
    w = np.asarray(n.arrays["weight"]).astype(np.int64)
    m, cg, kh, kw = w.shape
    group = int(a["group"])
    strides = tuple(int(v) for v in a["strides"])
    dil = tuple(int(v) for v in a["dilations"])
    pad = _window(ex, n, s_in[2:], (kh, kw), strides, dil)
    from hwsim.reference.golden_ops import conv_out_size

    p = tuple(int(v) for v in a["pads"])
    oh = conv_out_size(s_in[2], kh, strides[0], p[0], p[2], dil[0])
    ow = conv_out_size(s_in[3], kw, strides[1], p[1], p[3], dil[1])
    y = ex.act_tensor(n.output, (s_in[0], m, oh, ow))
    if a.get("litert") == "mean":
        axes = ex.b.tensor(f"{n.name}_axes", (2,), "int32", data=np.array([1, 2]))
        ex.b.op("MEAN", [ex.idx[x], axes], [y], KeepDims=True)
        return
    if w.min() < -128 or w.max() > 127:
        raise ModelError(f"{ex.where(n)}: weights outside int8")
    s_w = np.asarray(n.arrays["weight_scale"], dtype=np.float64)
    for what, v in (("input scale", tin.scale), ("output scale", tout.scale),
                    ("weight_scale", s_w)):
        _f32_exact(ex.where(n), what, v)
    _same_params(ex, n, n.requant["out"],
                 mac_requant(tin.scale, s_w, tout, n.requant["out"].config,
                             tuple(a["act_range"])))
    bias = np.asarray(n.arrays["bias"], np.int64) + tin.zero_point * w.reshape(m, -1).sum(1)
    if bias.min() < -(1 << 31) or bias.max() >= 1 << 31:
        raise ModelError(f"{ex.where(n)}: the unfolded bias leaves int32")
    depthwise = cg == 1 and group == s_in[1] and group > 1
    if depthwise:
        wt = w[:, 0].transpose(1, 2, 0)[None]  # [1, KH, KW, C·mult]
        qdim = 3
    else:
        wt = w.transpose(0, 2, 3, 1)  # [O, KH, KW, I]
        qdim = 0
    b = ex.b
    wi = b.tensor(f"{n.name}_w", wt.shape, "int8", scale=s_w.astype(np.float32),
                  zero_point=np.zeros(m, np.int64), quantized_dimension=qdim, data=wt)
    bs = (np.float32(tin.scale) * s_w.astype(np.float32)).astype(np.float32)
    bi = b.tensor(f"{n.name}_b", (m,), "int32", scale=bs, zero_point=np.zeros(m, np.int64),
                  data=bias)
    opts = dict(Padding=pad, StrideH=strides[0], StrideW=strides[1],
                DilationHFactor=dil[0], DilationWFactor=dil[1],
                FusedActivationFunction=_act(ex, n))
    if depthwise:
        b.op("DEPTHWISE_CONV_2D", [ex.idx[x], wi, bi], [y], DepthMultiplier=m // group,
             **opts)
    else:
        b.op("CONV_2D", [ex.idx[x], wi, bi], [y], **opts)


def _gemm(ex: _Ex, n: QNode) -> None:
    g = ex.g
    x = n.inputs[0]
    tin, tout = g.tensors[x], g.tensors[n.output]
    w = np.asarray(n.arrays["weight"]).astype(np.int64)
    m, k = w.shape
    s_w = np.asarray(n.arrays["weight_scale"], dtype=np.float64)
    for what, v in (("input scale", tin.scale), ("output scale", tout.scale),
                    ("weight_scale", s_w)):
        _f32_exact(ex.where(n), what, v)
    _same_params(ex, n, n.requant["out"],
                 mac_requant(tin.scale, s_w, tout, n.requant["out"].config,
                             tuple(n.attrs.get("act_range", (-np.inf, np.inf)))))
    bias = np.asarray(n.arrays["bias"], np.int64) + tin.zero_point * w.sum(1)
    if x in ex.perm:  # hwsim[:, j] = model[:, perm[j]]
        wt = np.empty_like(w)
        wt[:, ex.perm[x]] = w
        w = wt
    b = ex.b
    per_channel = s_w.size > 1 and np.unique(s_w).size > 1
    wscale = s_w.astype(np.float32) if per_channel else np.float32(s_w[0])
    wi = b.tensor(f"{n.name}_w", (m, k), "int8", scale=wscale,
                  zero_point=np.zeros(m if per_channel else 1, np.int64), data=w)
    bs = (np.float32(tin.scale) * s_w.astype(np.float32)).astype(np.float32)
    bi = b.tensor(f"{n.name}_b", (m,), "int32", scale=bs if per_channel else bs[0],
                  zero_point=np.zeros(m if per_channel else 1, np.int64), data=bias)
    y = ex.act_tensor(n.output, (ex.shape[x][0], m))
    b.op("FULLY_CONNECTED", [ex.idx[x], wi, bi], [y], FusedActivationFunction=_act(ex, n))


def _add(ex: _Ex, n: QNode) -> None:
    g = ex.g
    a, c = n.inputs
    ta, tb, tout = g.tensors[a], g.tensors[c], g.tensors[n.output]
    for t in (ta, tb, tout):
        _f32_exact(ex.where(n), f"scale of {t.name!r}", t.scale)
    want = add_requant(ta, tb, tout, n.requant["out"].config, tuple(n.attrs["act_range"]))
    for key in ("in0", "in1", "out"):
        _same_params(ex, n, n.requant[key], want[key])
    if int(n.attrs["left_shift"]) != 20:
        raise ModelError(f"{ex.where(n)}: left shift {n.attrs['left_shift']}; LiteRT's int8 "
                         "ADD shifts by 20")
    y = ex.act_tensor(n.output, ex.shape[a])
    ex.b.op("ADD", [ex.idx[a], ex.idx[c]], [y], FusedActivationFunction=_act(ex, n))
    if a in ex.perm:
        ex.perm[n.output] = ex.perm[a]


def _pool(ex: _Ex, n: QNode) -> None:
    x = n.inputs[0]
    s = ex.shape[x]
    a = n.attrs
    k = tuple(int(v) for v in a["kernel_shape"])
    st = tuple(int(v) for v in a["strides"])
    if n.op == "maxpool" and any(int(d) != 1 for d in a["dilations"]):
        raise ModelError(f"{ex.where(n)}: dilated max pooling has no TFLite kernel")
    pad = _window(ex, n, s[2:], k, st, (1, 1))
    from hwsim.reference.golden_ops import conv_out_size

    p = tuple(int(v) for v in a["pads"])
    oh = conv_out_size(s[2], k[0], st[0], p[0], p[2], 1)
    ow = conv_out_size(s[3], k[1], st[1], p[1], p[3], 1)
    y = ex.act_tensor(n.output, (s[0], s[1], oh, ow))
    ex.b.op("AVERAGE_POOL_2D" if n.op == "litert_avgpool" else "MAX_POOL_2D", [ex.idx[x]],
            [y], Padding=pad, StrideH=st[0], StrideW=st[1], FilterHeight=k[0],
            FilterWidth=k[1], FusedActivationFunction=_act(ex, n))


def _flatten(ex: _Ex, n: QNode) -> None:
    x = n.inputs[0]
    s = ex.shape[x]
    if n.op == "flatten" and int(n.attrs["axis"]) != 1:
        raise ModelError(f"{ex.where(n)}: only axis = 1 is exported")
    shape = (s[0], int(np.prod(s[1:]))) if n.op == "flatten" else (
        (s[0],) + tuple(int(d) for d in n.attrs["shape"]))
    if len(s) == 4 and len(shape) != 2:
        raise ModelError(f"{ex.where(n)}: a reshape of a 4-D tensor to {shape} is not "
                         "exported (only to [batch, features])")
    if len(shape) == 4:
        raise ModelError(f"{ex.where(n)}: a reshape to 4-D is not exported")
    y = ex.act_tensor(n.output, shape)
    ex.b.op("RESHAPE", [ex.idx[x]], [y], NewShape=list(_nhwc(shape)))
    if len(s) == 4:
        _, c, h, w = s
        ex.perm[n.output] = np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).reshape(-1)
    elif x in ex.perm:
        ex.perm[n.output] = ex.perm[x]


def _pad(ex: _Ex, n: QNode) -> None:
    x = n.inputs[0]
    s = ex.shape[x]
    p = [int(v) for v in n.attrs["pads"]]
    if len(s) != 4 or p[0] or p[1] or p[4] or p[5] or float(n.attrs["value"]) != 0.0:
        raise ModelError(f"{ex.where(n)}: only spatial zero padding of a 4-D tensor is "
                         "exported")
    pads = ex.b.tensor(f"{n.name}_pads", (4, 2), "int32",
                       data=np.array([[0, 0], [p[2], p[6]], [p[3], p[7]], [0, 0]]))
    y = ex.act_tensor(n.output, (s[0], s[1], s[2] + p[2] + p[6], s[3] + p[3] + p[7]))
    ex.b.op("PAD", [ex.idx[x], pads], [y])


def _clamp(ex: _Ex, n: QNode) -> None:
    name = _act(ex, n)
    if name not in ("RELU", "RELU6"):
        raise ModelError(f"{ex.where(n)}: a clamp to {n.attrs['act_range']} is not a TFLite "
                         "RELU / RELU6")
    x = n.inputs[0]
    y = ex.act_tensor(n.output, ex.shape[x])
    ex.b.op(name, [ex.idx[x]], [y])
    if x in ex.perm:
        ex.perm[n.output] = ex.perm[x]


def _concat(ex: _Ex, n: QNode) -> None:
    g = ex.g
    tout = g.tensors[n.output]
    for t in n.inputs:
        if (g.tensors[t].scale, g.tensors[t].zero_point) != (tout.scale, tout.zero_point):
            raise ModelError(f"{ex.where(n)}: input {t!r} has other qparams than the output; "
                             "LiteRT's int8 CONCATENATION copies codes")
        if t in ex.perm:
            raise ModelError(f"{ex.where(n)}: concatenation of flattened tensors")
    s = list(ex.shape[n.inputs[0]])
    axis = int(n.attrs["axis"])
    s[axis] = sum(ex.shape[t][axis] for t in n.inputs)
    tfl_axis = {1: 3, 2: 1, 3: 2}.get(axis, axis) if len(s) == 4 else axis
    y = ex.act_tensor(n.output, tuple(s))
    ex.b.op("CONCATENATION", [ex.idx[t] for t in n.inputs], [y], Axis=tfl_axis)


def _mul(ex: _Ex, n: QNode) -> None:
    a, c = n.inputs
    y = ex.act_tensor(n.output, ex.shape[a])
    ex.b.op("MUL", [ex.idx[a], ex.idx[c]], [y], FusedActivationFunction=_act(ex, n))


#: Integer-graph op -> writer.
EXPORTERS: Mapping[str, Callable[[_Ex, QNode], None]] = {
    "conv": _conv,
    "gemm": _gemm,
    "add": _add,
    "litert_mul": _mul,
    "litert_avgpool": _pool,
    "maxpool": _pool,
    "flatten": _flatten,
    "reshape": _flatten,
    "pad": _pad,
    "clamp": _clamp,
    "concat": _concat,
}


def to_tflite(g: QGraph) -> bytes:
    """The ``.tflite`` bytes of the static integer graph ``g`` (int8 NHWC inputs and
    outputs; arithmetic of LiteRT's reference kernels, arithmetic §11.3)."""
    if g.dynamic:
        raise ModelError(f"graph {g.name!r} is dynamic; only static graphs are exported")
    if g.acc_bits != 32 or g.acc_overflow != "wrap":
        raise ModelError(f"graph {g.name!r}: accumulator {g.acc_bits}-bit "
                         f"{g.acc_overflow}; LiteRT accumulates in int32")
    ex = _Ex(g)
    for t in g.inputs:
        tq: TensorQ = g.tensors[t]
        if tq.dtype != "int8":
            raise ModelError(f"graph input {t!r} is {tq.dtype}; only int8 is exported")
        ex.act_tensor(t, tuple(g.input_shapes[t]))
    for n in g.nodes:
        fn = EXPORTERS.get(n.op)
        if fn is None:
            hint = (" (compile with --profile litert_ref)"
                    if n.op in ("avgpool", "global_avgpool") else "")
            raise ModelError(f"{ex.where(n)}: no LiteRT reference kernel computes this op"
                             f"{hint}; exportable ops: {', '.join(sorted(EXPORTERS))}")
        if g.tensors[n.output].dtype != "int8":
            raise ModelError(f"{ex.where(n)}: output {g.tensors[n.output].dtype}; only int8 "
                             "is exported")
        fn(ex, n)
    return ex.b.finish([ex.idx[t] for t in g.inputs], [ex.idx[t] for t in g.outputs],
                       description=f"hwsim export of {g.name}")


def save_tflite(g: QGraph, path: str) -> None:
    """Write :func:`to_tflite` of ``g`` to ``path``."""
    data = to_tflite(g)
    with open(path, "wb") as f:
        f.write(data)
