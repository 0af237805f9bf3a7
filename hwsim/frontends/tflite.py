"""Import int8 and int16x8 ``.tflite`` models into the integer graph (specs/ir.md §10,
arithmetic §11.3; int16 activations with int8 weights and int64 or int32 biases: §11.3.8).

:func:`load_tflite` reads the flatbuffer with the ``tflite`` package (no TensorFlow) and
builds a :class:`~hwsim.compiler.qgraph.QGraph` with the model's own scales and zero points,
under the ``litert_ref`` engine profile by default (LiteRT's reference kernels, §11.3). One
small converter per builtin operator in :data:`CONVERTERS`; an operator without one raises
a ModelError naming the operator, its index and the supported set.

Layout: TFLite tensors are NHWC; the integer graph is NCHW. 4-D activations are carried
transposed (weights converted once); a 4-D tensor flattened to 2-D (RESHAPE, or
FULLY_CONNECTED on a 4-D input) keeps hwsim's C·H·W order and the next FULLY_CONNECTED's
weight columns are permuted to it. :meth:`ImportedTflite.feeds` and
:meth:`ImportedTflite.model_outputs` convert between the model's layout and hwsim's, so
outputs are compared in the model's own layout.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwsim.arith import RequantParams, make_requant_params
from hwsim.arith.multiplier import quantize_multiplier
from hwsim.compiler.profiles import EngineProfile, get_profile
from hwsim.compiler.qgraph import QGraph, QNode, TensorQ, act_range, verify_qgraph
from hwsim.compiler.requant import add_requant, fused_act_bounds, mac_requant, rescale_requant
from hwsim.errors import ModelError
from hwsim.reference.litert_ops import litert_quantize

_TYPES = {"FLOAT32": "float32", "INT8": "int8", "UINT8": "uint8", "INT16": "int16",
          "INT32": "int32", "INT64": "int64"}
#: Fused activation -> real-valued clamp range (TFLite CalculateActivationRangeQuantized).
_ACT = {"NONE": (-np.inf, np.inf), "RELU": (0.0, np.inf), "RELU6": (0.0, 6.0),
        "RELU_N1_TO_1": (-1.0, 1.0)}


def _enum_names(enum: Any) -> dict[int, str]:
    return {v: k for k, v in vars(enum).items() if not k.startswith("_") and isinstance(v, int)}


@dataclass(frozen=True)
class Port:
    """One model input or output: the QGraph tensor it maps to, the model's tensor shape
    and dtype, the qparams of its codes, and how its layout maps to hwsim's
    (``"nhwc"``: NHWC in the model, NCHW in hwsim; ``"same"``; or a column permutation
    ``perm`` with ``hwsim[:, j] = model[:, perm[j]]``)."""

    name: str
    tensor: str
    shape: tuple[int, ...]
    dtype: str
    scale: float
    zero_point: int
    layout: str = "same"
    perm: tuple[int, ...] = ()


@dataclass(frozen=True, eq=False)
class ImportedTflite:
    """The integer graph of a ``.tflite`` model, its profile, its ports, and the model
    bytes LiteRT runs for comparison."""

    qgraph: QGraph
    profile: EngineProfile
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    model: bytes = field(repr=False)

    def feeds(self, arrays: Mapping[str, np.ndarray] | np.ndarray) -> dict[str, np.ndarray]:
        """hwsim feeds (int64 codes, NCHW) from arrays in the model's layout: integer
        arrays are codes; float arrays are quantized as LiteRT's QUANTIZE does (§11.3.7)."""
        if isinstance(arrays, np.ndarray):
            if len(self.inputs) != 1:
                raise ModelError(f"the model has {len(self.inputs)} inputs; give a mapping")
            arrays = {self.inputs[0].name: arrays}
        out = {}
        for p in self.inputs:
            if p.name not in arrays:
                raise ModelError(f"missing input {p.name!r}; the model takes "
                                 f"{[q.name for q in self.inputs]}")
            x = np.asarray(arrays[p.name])
            if x.dtype.kind == "f":
                x = litert_quantize(x, p.scale, p.zero_point, _code_dtype(self, p))
            elif x.dtype.kind in "iu":
                lo, hi = act_range(_code_dtype(self, p))
                if x.size and (int(x.min()) < lo or int(x.max()) > hi):
                    raise ModelError(f"input {p.name!r}: integer codes outside [{lo}, {hi}]")
            else:
                raise ModelError(f"input {p.name!r}: expected a float or integer array, got "
                                 f"{x.dtype}")
            x = x.astype(np.int64)
            out[p.tensor] = x.transpose(0, 3, 1, 2) if p.layout == "nhwc" else x
        return out

    def model_outputs(self, codes: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """int64 codes of every model output in the model's layout, from hwsim codes."""
        res = {}
        for p in self.outputs:
            y = np.asarray(codes[p.tensor])
            if p.layout == "nhwc":
                y = y.transpose(0, 2, 3, 1)
            elif p.perm:
                y = y[:, np.argsort(np.asarray(p.perm))]
            res[p.name] = y
        return res


def _code_dtype(im: ImportedTflite, p: Port) -> str:
    return im.qgraph.tensors[p.tensor].dtype


def read_tflite(source: str | bytes | os.PathLike[str]) -> bytes:
    """The bytes of a ``.tflite`` model (path or bytes)."""
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    try:
        with open(source, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ModelError(f"{source}: cannot read the .tflite model: {exc}") from exc
    if data[4:8] != b"TFL3":
        raise ModelError(f"{source}: not a .tflite flatbuffer (file identifier "
                         f"{data[4:8]!r}, expected b'TFL3')")
    return data


class _Ctx:
    def __init__(self, data: bytes, profile: EngineProfile) -> None:
        import tflite

        self.tfl = tflite
        self.model = tflite.Model.GetRootAs(data, 0)
        if self.model.SubgraphsLength() != 1:
            raise ModelError(f"the model has {self.model.SubgraphsLength()} subgraphs; "
                             "one is supported")
        self.sg = self.model.Subgraphs(0)
        self.profile = profile
        self.op_names = _enum_names(tflite.BuiltinOperator)
        self.type_names = _enum_names(tflite.TensorType)
        self.act_names = _enum_names(tflite.ActivationFunctionType)
        self.tq: dict[str, TensorQ] = {}
        self.shape: dict[str, tuple[int, ...]] = {}  # hwsim shapes
        self.layout: dict[str, str] = {}
        self.perm: dict[str, np.ndarray] = {}
        self.nodes: list[QNode] = []
        self.inputs: list[Port] = []
        self.outputs: list[Port] = []
        self.hw_inputs: list[str] = []
        self.alias: dict[int, str] = {}  # tflite tensor index -> hwsim tensor name
        self.graph_inputs: list[int] = []
        self.graph_outputs: list[int] = []
        self.quantized_inputs: set[int] = set()
        names = [self.sg.Tensors(i).Name().decode() for i in range(self.sg.TensorsLength())]
        self.names = [n if n and names.count(n) == 1 else f"t{i}:{n}"
                      for i, n in enumerate(names)]

    # --- tensors --------------------------------------------------------------------------

    def ttype(self, i: int) -> str:
        return _TYPES.get(self.type_names[self.sg.Tensors(i).Type()],
                          self.type_names[self.sg.Tensors(i).Type()])

    def tshape(self, i: int) -> tuple[int, ...]:
        return tuple(int(d) for d in self.sg.Tensors(i).ShapeAsNumpy())

    def qparams(self, i: int) -> tuple[np.ndarray, np.ndarray, int]:
        q = self.sg.Tensors(i).Quantization()
        if q is None or q.ScaleLength() == 0:
            raise ModelError(f"tensor {self.names[i]!r}: has no quantization parameters")
        s = np.asarray(q.ScaleAsNumpy(), dtype=np.float32)
        z = (np.asarray(q.ZeroPointAsNumpy(), dtype=np.int64) if q.ZeroPointLength()
             else np.zeros(s.size, dtype=np.int64))
        return s, z, int(q.QuantizedDimension())

    def const(self, where: str, i: int) -> np.ndarray:
        buf = self.model.Buffers(self.sg.Tensors(i).Buffer())
        if buf is None or buf.DataLength() == 0:
            raise ModelError(f"{where}: input {self.names[i]!r} must be a constant tensor")
        dtype = np.dtype(self.ttype(i))
        return np.frombuffer(buf.DataAsNumpy().tobytes(), dtype=dtype).reshape(self.tshape(i))

    def tensorq(self, i: int) -> TensorQ:
        dtype = self.ttype(i)
        if dtype not in ("int8", "uint8", "int16"):
            raise ModelError(f"tensor {self.names[i]!r}: type {dtype}; the importer reads "
                             "int8 (and uint8 / int16) activations")
        s, z, _ = self.qparams(i)
        if s.size != 1:
            raise ModelError(f"tensor {self.names[i]!r}: activations must be quantized per "
                             f"tensor, got {s.size} scales")
        return TensorQ(self.names[i], dtype, float(s[0]), int(z[0]))

    def act(self, where: str, i: int) -> str:
        if i not in self.alias:
            raise ModelError(f"{where}: input {self.names[i]!r} is neither a graph input nor "
                             "the output of an imported operator")
        return self.alias[i]

    def emit(self, node: QNode, i_out: int, tq: TensorQ, shape: tuple[int, ...],
             layout: str, perm: np.ndarray | None = None) -> None:
        self.nodes.append(node)
        self.tq[node.output] = tq
        self.shape[node.output] = shape
        self.layout[node.output] = layout
        if perm is not None:
            self.perm[node.output] = perm
        self.alias[i_out] = node.output

    def out_tensorq(self, i: int, name: str | None = None) -> TensorQ:
        tq = self.tensorq(i)
        return tq if name is None else TensorQ(name, tq.dtype, tq.scale, tq.zero_point)


@dataclass
class _Op:
    index: int
    name: str
    inputs: list[int]
    outputs: list[int]
    options: Any

    @property
    def where(self) -> str:
        return f"operator {self.index} ({self.name})"

    @property
    def node(self) -> str:
        return f"op{self.index}_{self.name.lower()}"


def _options(ctx: _Ctx, op: Any, cls: str) -> Any:
    table = op.BuiltinOptions()
    if table is None:
        return None
    o = getattr(ctx.tfl, cls)()
    o.Init(table.Bytes, table.Pos)
    return o


def _fused(ctx: _Ctx, op: _Op) -> tuple[float, float]:
    o = op.options
    if o is None:
        return _ACT["NONE"]
    name = ctx.act_names[o.FusedActivationFunction()]
    if name not in _ACT:
        raise ModelError(f"{op.where}: fused activation {name} is not supported; expected "
                         f"one of {', '.join(_ACT)}")
    return _ACT[name]


def _same_pads(size: int, k: int, stride: int, dil: int, same: bool) -> tuple[int, int, int]:
    """TFLite ComputePaddingHeightWidth: (out, pad_before, pad_after)."""
    eff = (k - 1) * dil + 1
    out = (size + stride - 1) // stride if same else (size - eff + stride) // stride
    total = max((out - 1) * stride + eff - size, 0) if same else 0
    return out, total // 2, total - total // 2


def _window(ctx: _Ctx, op: _Op, x: str, kh: int, kw: int, sh: int, sw: int, dh: int,
            dw: int) -> tuple[tuple[int, int, int, int], int, int]:
    same = op.options.Padding() == ctx.tfl.Padding.SAME
    n, c, h, w = ctx.shape[x]
    oh, pt, pb = _same_pads(h, kh, sh, dh, same)
    ow, pl, pr = _same_pads(w, kw, sw, dw, same)
    return (pt, pl, pb, pr), oh, ow


def _need_nhwc(ctx: _Ctx, op: _Op, x: str) -> None:
    if ctx.layout[x] != "nhwc":
        raise ModelError(f"{op.where}: expects a 4-D NHWC activation, got hwsim shape "
                         f"{ctx.shape[x]}")


def _emit_mac(ctx: _Ctx, op: _Op, kind: str, x: str, w: np.ndarray, w_scale: np.ndarray,
              w_zero: np.ndarray, bias: np.ndarray | None, attrs: dict[str, Any],
              shape: tuple[int, ...], layout: str, perm: np.ndarray | None = None) -> None:
    tin, i_out = ctx.tq[x], op.outputs[0]
    tout = ctx.out_tensorq(i_out)
    m = w.shape[0]
    if w.dtype != np.int8:
        raise ModelError(f"{op.where}: weights of type {w.dtype}; int8 weights are supported")
    wide = _check_16x8(ctx, op, tin, tout, w, bias)
    wz = np.broadcast_to(w_zero.reshape(-1), (m,)) if w_zero.size > 1 else w_zero.reshape(-1)
    carried = w.astype(np.int64) - wz.reshape([-1] + [1] * (w.ndim - 1))
    if carried.min() < -128 or carried.max() > 127:
        raise ModelError(f"{op.where}: weights minus their zero point leave int8")
    carried = carried.astype(np.int8)
    s_w = np.broadcast_to(w_scale.astype(np.float64).reshape(-1), (m,)).copy()
    b = np.zeros(m, dtype=np.int64) if bias is None else bias.astype(np.int64).reshape(-1)
    if b.size != m:
        raise ModelError(f"{op.where}: bias has {b.size} values, expected {m}")
    folded = b - tin.zero_point * carried.reshape(m, -1).astype(np.int64).sum(axis=1)
    if folded.min() < -(1 << 31) or folded.max() >= 1 << 31:
        raise ModelError(f"{op.where}: folded bias does not fit the int32 accumulator")
    act = _fused(ctx, op)
    attrs["act_range"] = act
    if wide and kind == "conv" and ctx.profile.name == "litert_ref":
        req = litert_16x8_requant(tin.scale, s_w, tout, act)
    else:
        req = mac_requant(tin.scale, s_w, tout, ctx.profile.mac_requant(kind), act)
    ctx.emit(QNode(op.node, kind, (x,), tout.name, attrs,
                   {"weight": carried, "bias": folded.astype(np.int32), "weight_scale": s_w},
                   {"out": req}, "relu" if act[0] == 0.0 else ""), i_out, tout, shape, layout,
             perm)


def _bias(ctx: _Ctx, op: _Op) -> np.ndarray | None:
    if len(op.inputs) < 3 or op.inputs[2] < 0:
        return None
    b = ctx.const(op.where, op.inputs[2])
    if b.dtype not in (np.int32, np.int64):
        raise ModelError(f"{op.where}: bias of type {b.dtype}; int32 (int8 activations) or "
                         "int64 / int32 (int16 activations) is supported")
    return b


def _check_16x8(ctx: _Ctx, op: _Op, tin: TensorQ, tout: TensorQ, w: np.ndarray,
                bias: np.ndarray | None) -> bool:
    """Validate the activation / bias types of a MAC operator as LiteRT's Prepare does
    (§11.3.8); True for int16x8 with an int64 accumulator (int64 bias, or no bias and no
    ``quantized_bias_type = INT32``)."""
    if tin.dtype != "int16" and tout.dtype != "int16":
        if bias is not None and bias.dtype != np.int32:
            raise ModelError(f"{op.where}: bias of type {bias.dtype} with {tin.dtype} "
                             "activations; int32 is expected")
        return False
    if (tin.dtype, tout.dtype) != ("int16", "int16"):
        raise ModelError(f"{op.where}: {tin.dtype} input and {tout.dtype} output; int16x8 "
                         "needs int16 input and output")
    if tin.zero_point or tout.zero_point:
        raise ModelError(f"{op.where}: int16 activations with zero points {tin.zero_point} "
                         f"(input) and {tout.zero_point} (output); LiteRT's 16x8 kernels "
                         "require symmetric activations (zero point 0)")
    opt = getattr(op.options, "QuantizedBiasType", None)
    declared = ctx.type_names.get(opt(), "") if opt is not None else ""
    if op.name == "DEPTHWISE_CONV_2D":
        if bias is not None and bias.dtype != np.int64:
            raise ModelError(f"{op.where}: int16x8 DEPTHWISE_CONV_2D needs an int64 bias, got "
                             f"{bias.dtype}")
        wide = True
    elif declared in ("INT32", "INT64"):
        if bias is not None and bias.dtype != np.dtype(declared.lower()):
            raise ModelError(f"{op.where}: bias of type {bias.dtype} but the options declare "
                             f"quantized_bias_type {declared}")
        wide = declared == "INT64"
    else:
        if bias is not None and bias.dtype != np.int64:
            raise ModelError(f"{op.where}: int16x8 with an int32 bias needs the option "
                             "quantized_bias_type = INT32 (without it LiteRT's kernel reads "
                             "the bias as int64)")
        wide = True
    if wide:
        # LiteRT accumulates in int64; hwsim's accumulator is int32 (§7.3): the worst case
        # over all int16 inputs must fit.
        bound = (np.abs(w.astype(np.int64)).reshape(w.shape[0], -1).sum(axis=1) * 32768
                 + (0 if bias is None else np.abs(bias.astype(np.int64)).reshape(-1)))
        if int(bound.max()) > (1 << 31) - 1:
            raise ModelError(f"{op.where}: int16x8 accumulator bound {int(bound.max())} "
                             "(|bias| + 32768·Σ|w|) exceeds the int32 accumulator hwsim "
                             "models; LiteRT accumulates in int64")
    return wide


def litert_16x8_requant(s_in: float, s_w: np.ndarray, tout: TensorQ,
                        act: tuple[float, float]) -> RequantParams:
    """§11.3.8: LiteRT's int64-accumulator MultiplyByQuantizedMultiplier
    (``internal/common.cc``, int64 overload): ``(M, e) = QuantizeMultiplier(double(s_in)·
    double(s_w)/double(s_out))``, ``m = min((M + 2^15) >> 16, 2^15 − 1)``, ``y = (acc·m +
    2^(14−e)) >> (15 − e)`` — the §8.5 ``custom`` datapath with a 15-bit multiplier,
    ``n = 15 − e``, ``half_up``."""
    from hwsim.arith import RequantConfig

    real = float(s_in) * np.asarray(s_w, dtype=np.float64) / float(tout.scale)
    mm, e = quantize_multiplier(real)
    mm, e = np.asarray(mm, np.int64), np.asarray(e, np.int64)
    reduced = np.minimum((mm + (1 << 15)) >> 16, (1 << 15) - 1)
    lo, hi = fused_act_bounds(act[0], act[1], tout)
    return RequantParams(config=RequantConfig(mode="custom", multiplier_bits=15,
                                              rounding="half_up"),
                         multiplier=reduced, shift=15 - e,
                         scale_f32=real.astype(np.float32), zero_point=0, out_bits=16,
                         out_signed=True, act_min=lo, act_max=hi)


def _conv2d(ctx: _Ctx, op: _Op) -> None:
    x = ctx.act(op.where, op.inputs[0])
    _need_nhwc(ctx, op, x)
    wt = ctx.const(op.where, op.inputs[1])  # [O, KH, KW, I]
    s, z, _ = ctx.qparams(op.inputs[1])
    o = op.options
    n, c = ctx.shape[x][:2]
    if c % wt.shape[3]:
        raise ModelError(f"{op.where}: {c} input channels, filter has {wt.shape[3]}")
    pads, oh, ow = _window(ctx, op, x, wt.shape[1], wt.shape[2], o.StrideH(), o.StrideW(),
                           o.DilationHFactor(), o.DilationWFactor())
    attrs = {"strides": (o.StrideH(), o.StrideW()), "pads": pads,
             "dilations": (o.DilationHFactor(), o.DilationWFactor()),
             "group": c // wt.shape[3]}
    _emit_mac(ctx, op, "conv", x, np.ascontiguousarray(wt.transpose(0, 3, 1, 2)), s, z,
              _bias(ctx, op), attrs, (n, wt.shape[0], oh, ow), "nhwc")


def _depthwise(ctx: _Ctx, op: _Op) -> None:
    x = ctx.act(op.where, op.inputs[0])
    _need_nhwc(ctx, op, x)
    wt = ctx.const(op.where, op.inputs[1])  # [1, KH, KW, C·mult]
    s, z, _ = ctx.qparams(op.inputs[1])
    o = op.options
    n, c = ctx.shape[x][:2]
    if wt.shape[3] != c * o.DepthMultiplier():
        raise ModelError(f"{op.where}: filter has {wt.shape[3]} channels, expected "
                         f"{c}·{o.DepthMultiplier()}")
    pads, oh, ow = _window(ctx, op, x, wt.shape[1], wt.shape[2], o.StrideH(), o.StrideW(),
                           o.DilationHFactor(), o.DilationWFactor())
    attrs = {"strides": (o.StrideH(), o.StrideW()), "pads": pads,
             "dilations": (o.DilationHFactor(), o.DilationWFactor()), "group": c}
    w = np.ascontiguousarray(wt[0].transpose(2, 0, 1)[:, None])
    _emit_mac(ctx, op, "conv", x, w, s, z, _bias(ctx, op), attrs, (n, wt.shape[3], oh, ow),
              "nhwc")


def _flatten_nhwc(ctx: _Ctx, op: _Op, x: str, out: str, tq: TensorQ) -> tuple[str, np.ndarray]:
    """Emit hwsim flatten of a 4-D NCHW tensor; the permutation to the model's HWC order."""
    n, c, h, w = ctx.shape[x]
    ctx.nodes.append(QNode(out, "flatten", (x,), out, {"axis": 1}))
    ctx.tq[out] = tq
    ctx.shape[out] = (n, c * h * w)
    ctx.layout[out] = "perm"
    perm = np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).reshape(-1)
    ctx.perm[out] = perm
    return out, perm


def _fully_connected(ctx: _Ctx, op: _Op) -> None:
    x = ctx.act(op.where, op.inputs[0])
    w = ctx.const(op.where, op.inputs[1])  # [O, K]
    s, z, _ = ctx.qparams(op.inputs[1])
    if op.options is not None and op.options.KeepNumDims():
        raise ModelError(f"{op.where}: keep_num_dims = true is not supported")
    if ctx.layout[x] == "nhwc":
        tin = ctx.tq[x]
        x, _ = _flatten_nhwc(ctx, op, x, f"{op.node}_flat",
                             TensorQ(f"{op.node}_flat", tin.dtype, tin.scale, tin.zero_point))
    if len(ctx.shape[x]) != 2 or ctx.shape[x][1] != w.shape[1]:
        raise ModelError(f"{op.where}: input of hwsim shape {ctx.shape[x]} does not match "
                         f"weights {w.shape}")
    if x in ctx.perm:
        w = w[:, ctx.perm[x]]
    _emit_mac(ctx, op, "gemm", x, np.ascontiguousarray(w), s, z, _bias(ctx, op), {},
              (ctx.shape[x][0], w.shape[0]), "same")


def _binary_inputs(ctx: _Ctx, op: _Op) -> tuple[str, str]:
    a, b = (ctx.act(op.where, i) for i in op.inputs[:2])
    if ctx.shape[a] != ctx.shape[b] or ctx.layout[a] != ctx.layout[b]:
        raise ModelError(f"{op.where}: inputs of shapes {ctx.tshape(op.inputs[0])} and "
                         f"{ctx.tshape(op.inputs[1])}; only equal shapes are supported")
    if ctx.layout[a] == "perm" and not np.array_equal(ctx.perm[a], ctx.perm[b]):
        raise ModelError(f"{op.where}: inputs flattened in different orders")
    return a, b


def _add(ctx: _Ctx, op: _Op) -> None:
    a, b = _binary_inputs(ctx, op)
    ta, tb = ctx.tq[a], ctx.tq[b]
    tout = ctx.out_tensorq(op.outputs[0])
    act = _fused(ctx, op)
    from hwsim.reference.golden_ops import add_left_shift

    bits = max(int(t.dtype.removeprefix("u").removeprefix("int")) for t in (ta, tb))
    dtypes = {ta.dtype, tb.dtype, tout.dtype}
    if dtypes == {"int16"}:
        if ta.zero_point or tb.zero_point or tout.zero_point:
            raise ModelError(f"{op.where}: int16 ADD with nonzero zero points; LiteRT "
                             "requires symmetric int16 activations")
        pot = op.options is None or bool(op.options.PotScaleInt16())
        if pot and all(_checked_log2(t.scale) for t in (ta, tb, tout)):
            raise ModelError(f"{op.where}: int16 ADD with power-of-two scales and "
                             "pot_scale_int16 runs LiteRT's fixed-point (LSTM) path, which "
                             "is not modelled; only the general-scale path (§11.3.8) is")
    elif bits != 8 or len(dtypes) != 1:
        raise ModelError(f"{op.where}: ADD of {ta.dtype} + {tb.dtype} -> {tout.dtype} is not "
                         "supported (int8 or int16, one type for all three)")
    ctx.emit(QNode(op.node, "add", (a, b), tout.name,
                   {"act_range": act, "left_shift": add_left_shift(bits)}, {},
                   add_requant(ta, tb, tout, ctx.profile.requant, act)), op.outputs[0], tout,
             ctx.shape[a], ctx.layout[a], ctx.perm.get(a))


def _checked_log2(scale: float) -> bool:
    """TFLite ``CheckedLog2`` (quantization_util.cc): |frac(log2 s)| < 1e-3 in float32."""
    f32 = np.float32
    lg = f32(np.log(f32(scale))) * (f32(1.0) / f32(np.log(f32(2.0))))
    return bool(abs(f32(lg - f32(np.round(lg)))) < f32(1e-3))


def _int16_symmetric(op: _Op, *tqs: TensorQ) -> None:
    """LiteRT's int16 MUL / MEAN Prepare: zero points 0 (§11.3.8), one type for all."""
    dtypes = {t.dtype for t in tqs}
    if "int16" in dtypes and (dtypes != {"int16"} or any(t.zero_point for t in tqs)):
        raise ModelError(f"{op.where}: {' / '.join(t.dtype for t in tqs)} with zero points "
                         f"{[t.zero_point for t in tqs]}; LiteRT's int16 kernel needs int16 "
                         "throughout with zero point 0")


def _mul(ctx: _Ctx, op: _Op) -> None:
    a, b = _binary_inputs(ctx, op)
    ta, tb = ctx.tq[a], ctx.tq[b]
    tout = ctx.out_tensorq(op.outputs[0])
    _int16_symmetric(op, ta, tb, tout)
    act = _fused(ctx, op)
    ctx.emit(QNode(op.node, "litert_mul", (a, b), tout.name, {"act_range": act}, {},
                   {"out": litert_mul_requant(ta, tb, tout, ctx.profile, act)}),
             op.outputs[0], tout, ctx.shape[a], ctx.layout[a], ctx.perm.get(a))


def litert_mul_requant(ta: TensorQ, tb: TensorQ, tout: TensorQ, profile: EngineProfile,
                       act: tuple[float, float]) -> RequantParams:
    """§11.3.6: QuantizeMultiplier of ``f32(f32(s_a·s_b) / s_out)`` (float32 arithmetic in
    ``mul.cc``), zero point and fused-activation clamp of the output."""
    f32 = np.float32
    real = float(f32(f32(f32(ta.scale) * f32(tb.scale)) / f32(tout.scale)))
    lo, hi = fused_act_bounds(act[0], act[1], tout)
    bits = int(tout.dtype.removeprefix("u").removeprefix("int"))
    return make_requant_params(real, profile.requant, tout.zero_point, out_bits=bits,
                               out_signed=not tout.dtype.startswith("u"), act_min=lo,
                               act_max=hi)


def _shared_check(ctx: _Ctx, op: _Op, x: str, i_out: int) -> TensorQ:
    tin, tout = ctx.tq[x], ctx.out_tensorq(i_out)
    if (tin.scale, tin.zero_point, tin.dtype) != (tout.scale, tout.zero_point, tout.dtype):
        raise ModelError(f"{op.where}: output qparams ({tout.scale}, {tout.zero_point}) "
                         f"differ from the input's ({tin.scale}, {tin.zero_point}); the "
                         "reference kernel requires them equal")
    return tout


def _pool(ctx: _Ctx, op: _Op) -> None:
    x = ctx.act(op.where, op.inputs[0])
    _need_nhwc(ctx, op, x)
    tout = _shared_check(ctx, op, x, op.outputs[0])
    o = op.options
    kh, kw = o.FilterHeight(), o.FilterWidth()
    pads, oh, ow = _window(ctx, op, x, kh, kw, o.StrideH(), o.StrideW(), 1, 1)
    n, c = ctx.shape[x][:2]
    attrs = {"kernel_shape": (kh, kw), "strides": (o.StrideH(), o.StrideW()), "pads": pads}
    act = _fused(ctx, op)
    if op.name == "AVERAGE_POOL_2D":
        attrs["act_range"] = act
        ctx.emit(QNode(op.node, "litert_avgpool", (x,), tout.name, attrs), op.outputs[0],
                 tout, (n, c, oh, ow), "nhwc")
        return
    attrs["dilations"] = (1, 1)
    name = tout.name if act == _ACT["NONE"] else f"{op.node}_max"
    ctx.emit(QNode(op.node, "maxpool", (x,), name, attrs), op.outputs[0],
             TensorQ(name, tout.dtype, tout.scale, tout.zero_point), (n, c, oh, ow), "nhwc")
    if act != _ACT["NONE"]:
        ctx.emit(QNode(f"{op.node}_act", "clamp", (name,), tout.name, {"act_range": act}),
                 op.outputs[0], tout, (n, c, oh, ow), "nhwc")


def _mean(ctx: _Ctx, op: _Op) -> None:
    x = ctx.act(op.where, op.inputs[0])
    _need_nhwc(ctx, op, x)
    axes = sorted(int(a) % 4 for a in ctx.const(op.where, op.inputs[1]).reshape(-1))
    if axes != [1, 2]:
        raise ModelError(f"{op.where}: MEAN over axes {axes}; only the spatial axes [1, 2] "
                         "of an NHWC tensor are supported")
    tin = ctx.tq[x]
    keep = bool(op.options.KeepDims()) if op.options is not None else False
    tout = ctx.out_tensorq(op.outputs[0])
    _int16_symmetric(op, tin, tout)
    n, c, h, w = ctx.shape[x]
    name = tout.name if keep else f"{op.node}_4d"
    params = litert_mean_requant(tin, tout, h * w, c)
    ones = np.ones((c, 1, h, w), dtype=np.int8)
    attrs = {"strides": (1, 1), "pads": (0, 0, 0, 0), "dilations": (1, 1), "group": c,
             "act_range": _ACT["NONE"], "litert": "mean"}
    ctx.emit(QNode(op.node, "conv", (x,), name, attrs,
                   {"weight": ones, "bias": np.full(c, -tin.zero_point * h * w, np.int32),
                    "weight_scale": np.full(c, 1.0 / (h * w))}, {"out": params}),
             op.outputs[0], TensorQ(name, tout.dtype, tout.scale, tout.zero_point),
             (n, c, 1, 1), "nhwc")
    if not keep:
        ctx.emit(QNode(f"{op.node}_squeeze", "flatten", (name,), tout.name, {"axis": 1}),
                 op.outputs[0], tout, (n, c), "same")


def litert_mean_requant(tin: TensorQ, tout: TensorQ, count: int, channels: int
                        ) -> RequantParams:
    """§11.3.5: LiteRT's MEAN multiplier (reduce.cc PrepareMeanOrSum, reference/reduce.h
    QuantizedMeanOrSum): ``(M, e) = QuantizeMultiplier(s_in / s_out)``, ``sh = min(⌊log2
    N⌋, 32, 31 + e)``, ``M' = ⌊M·2^sh / N⌋``, ``e' = e − sh``; applied by §8.1 to
    ``Σq − z_in·N``; output clamped to the type's range."""
    m, e = quantize_multiplier(np.asarray([float(tin.scale) / float(tout.scale)]))
    m, e = int(m[0]), int(e[0])
    sh = min(count.bit_length() - 1, 32, 31 + e)
    m2 = (m << sh) // count
    e2 = e - sh
    from hwsim.arith import RequantConfig

    bits = int(tout.dtype.removeprefix("u").removeprefix("int"))
    lo, hi = act_range(tout.dtype)
    return RequantParams(config=RequantConfig(mode="tflite"),
                         multiplier=np.full(channels, m2), shift=np.full(channels, 31 - e2),
                         scale_f32=np.full(channels, tin.scale / tout.scale / count,
                                           dtype=np.float32),
                         zero_point=tout.zero_point, out_bits=bits,
                         out_signed=not tout.dtype.startswith("u"), act_min=lo, act_max=hi)


def _reshape(ctx: _Ctx, op: _Op) -> None:
    x = ctx.act(op.where, op.inputs[0])
    tout = _shared_check(ctx, op, x, op.outputs[0])
    want = ctx.tshape(op.outputs[0])
    src = ctx.tshape(op.inputs[0])
    if ctx.layout[x] == "nhwc" and len(want) == 2 and want[0] == src[0]:
        _flatten_nhwc(ctx, op, x, tout.name, tout)
        ctx.alias[op.outputs[0]] = tout.name
        return
    if ctx.layout[x] == "same" and want[0] == src[0] and len(want) >= 2:
        ctx.emit(QNode(op.node, "reshape", (x,), tout.name, {"shape": tuple(want[1:])}),
                 op.outputs[0], tout, tuple(want), "same")
        return
    raise ModelError(f"{op.where}: reshape {src} -> {want} is not supported (a 4-D NHWC "
                     "tensor to [batch, features], or a reshape of a plain tensor keeping "
                     "the batch)")


def _concat(ctx: _Ctx, op: _Op) -> None:
    xs = [ctx.act(op.where, i) for i in op.inputs]
    tout = ctx.out_tensorq(op.outputs[0])
    layouts = {ctx.layout[t] for t in xs}
    rank = len(ctx.tshape(op.inputs[0]))
    axis = op.options.Axis() % rank
    if layouts == {"nhwc"} and axis == 3:
        hw_axis = 1
    elif layouts == {"same"} and axis >= 1:
        hw_axis = axis
    else:
        raise ModelError(f"{op.where}: concatenation along axis {axis} of {rank}-D tensors "
                         "is supported on channels (NHWC axis 3) or plain tensors only")
    if _fused(ctx, op) != _ACT["NONE"]:
        raise ModelError(f"{op.where}: a fused activation on CONCATENATION is not supported")
    for t in xs:
        ti = ctx.tq[t]
        if (ti.scale, ti.zero_point) != (tout.scale, tout.zero_point):
            raise ModelError(f"{op.where}: input {t!r} has qparams other than the output's; "
                             "int8 CONCATENATION copies codes")
    shape = list(ctx.shape[xs[0]])
    shape[hw_axis] = sum(ctx.shape[t][hw_axis] for t in xs)
    req = {f"in{i}": rescale_requant(ctx.tq[t], tout, ctx.profile.requant)
           for i, t in enumerate(xs)}
    ctx.emit(QNode(op.node, "concat", tuple(xs), tout.name, {"axis": hw_axis}, {}, req),
             op.outputs[0], tout, tuple(shape), ctx.layout[xs[0]])


def _pad(ctx: _Ctx, op: _Op) -> None:
    x = ctx.act(op.where, op.inputs[0])
    tout = _shared_check(ctx, op, x, op.outputs[0])
    p = ctx.const(op.where, op.inputs[1]).astype(np.int64)
    if ctx.layout[x] != "nhwc" or p.shape != (4, 2) or p[0].any() or p[3].any():
        raise ModelError(f"{op.where}: only spatial padding of a 4-D NHWC tensor is supported")
    pads = (0, 0, int(p[1, 0]), int(p[2, 0]), 0, 0, int(p[1, 1]), int(p[2, 1]))
    n, c, h, w = ctx.shape[x]
    ctx.emit(QNode(op.node, "pad", (x,), tout.name, {"pads": pads, "value": 0.0}),
             op.outputs[0], tout, (n, c, h + pads[2] + pads[6], w + pads[3] + pads[7]), "nhwc")


def _relu(ctx: _Ctx, op: _Op) -> None:
    x = ctx.act(op.where, op.inputs[0])
    tout = _shared_check(ctx, op, x, op.outputs[0])
    act = _ACT[op.name]
    ctx.emit(QNode(op.node, "clamp", (x,), tout.name, {"act_range": act}), op.outputs[0],
             tout, ctx.shape[x], ctx.layout[x], ctx.perm.get(x))


def _quantize(ctx: _Ctx, op: _Op) -> None:
    i_in, i_out = op.inputs[0], op.outputs[0]
    if ctx.ttype(i_in) != "float32" or i_in not in ctx.graph_inputs:
        raise ModelError(f"{op.where}: only QUANTIZE of a float32 graph input is supported "
                         "(an int -> int requantization is not)")
    if i_in in ctx.quantized_inputs:
        raise ModelError(f"{op.where}: graph input {ctx.names[i_in]!r} is quantized twice")
    ctx.quantized_inputs.add(i_in)
    _graph_input(ctx, i_in, i_out)


def _dequantize(ctx: _Ctx, op: _Op) -> None:
    x = ctx.act(op.where, op.inputs[0])
    if op.outputs[0] not in ctx.graph_outputs:
        raise ModelError(f"{op.where}: only DEQUANTIZE of a graph output is supported")
    ctx.alias[op.outputs[0]] = x


def _graph_input(ctx: _Ctx, i_model: int, i_codes: int) -> None:
    tq = ctx.tensorq(i_codes)
    shape = ctx.tshape(i_model)
    layout = "nhwc" if len(shape) == 4 else "same"
    hw_shape = (shape[0], shape[3], shape[1], shape[2]) if layout == "nhwc" else shape
    ctx.tq[tq.name] = tq
    ctx.shape[tq.name] = hw_shape
    ctx.layout[tq.name] = layout
    ctx.alias[i_codes] = tq.name
    ctx.hw_inputs.append(tq.name)
    ctx.inputs.append(Port(ctx.names[i_model], tq.name, shape, ctx.ttype(i_model), tq.scale,
                           tq.zero_point, layout))


#: Builtin operator -> (options class, converter).
CONVERTERS: Mapping[str, tuple[str | None, Callable[[_Ctx, _Op], None]]] = {
    "CONV_2D": ("Conv2DOptions", _conv2d),
    "DEPTHWISE_CONV_2D": ("DepthwiseConv2DOptions", _depthwise),
    "FULLY_CONNECTED": ("FullyConnectedOptions", _fully_connected),
    "ADD": ("AddOptions", _add),
    "MUL": ("MulOptions", _mul),
    "AVERAGE_POOL_2D": ("Pool2DOptions", _pool),
    "MAX_POOL_2D": ("Pool2DOptions", _pool),
    "MEAN": ("ReducerOptions", _mean),
    "RESHAPE": (None, _reshape),
    "CONCATENATION": ("ConcatenationOptions", _concat),
    "PAD": (None, _pad),
    "RELU": (None, _relu),
    "RELU6": (None, _relu),
    "QUANTIZE": (None, _quantize),
    "DEQUANTIZE": (None, _dequantize),
}


def load_tflite(source: str | bytes | os.PathLike[str],
                profile: str | EngineProfile = "litert_ref",
                name: str | None = None) -> ImportedTflite:
    """Import an int8 ``.tflite`` model (path or bytes) under engine ``profile`` (default
    ``litert_ref``, arithmetic §11.3)."""
    prof = get_profile(profile) if isinstance(profile, str) else profile
    data = read_tflite(source)
    ctx = _Ctx(data, prof)
    sg = ctx.sg
    ctx.graph_inputs = [int(i) for i in sg.InputsAsNumpy()]
    ctx.graph_outputs = [int(i) for i in sg.OutputsAsNumpy()]
    for i in ctx.graph_inputs:
        if ctx.ttype(i) != "float32":
            _graph_input(ctx, i, i)
    for k in range(sg.OperatorsLength()):
        raw = sg.Operators(k)
        code = ctx.model.OperatorCodes(raw.OpcodeIndex())
        opname = ctx.op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?")
        if opname not in CONVERTERS:
            raise ModelError(f"operator {k} ({opname}): not supported by the .tflite importer; "
                             f"supported operators: {', '.join(sorted(CONVERTERS))}")
        cls, fn = CONVERTERS[opname]
        op = _Op(k, opname, [int(i) for i in raw.InputsAsNumpy()],
                 [int(i) for i in raw.OutputsAsNumpy()],
                 _options(ctx, raw, cls) if cls else None)
        fn(ctx, op)
    for i in ctx.graph_outputs:
        if i not in ctx.alias:
            raise ModelError(f"graph output {ctx.names[i]!r} is not produced by an imported "
                             "operator")
        t = ctx.alias[i]
        tq = ctx.tq[t]
        layout = ctx.layout[t]
        perm = tuple(int(v) for v in ctx.perm[t]) if layout == "perm" else ()
        ctx.outputs.append(Port(ctx.names[i], t, ctx.tshape(i), ctx.ttype(i), tq.scale,
                                tq.zero_point, "nhwc" if layout == "nhwc" else "same", perm))
    for i in ctx.graph_inputs:
        if ctx.ttype(i) == "float32" and i not in ctx.quantized_inputs:
            raise ModelError(f"graph input {ctx.names[i]!r} is float32 and not quantized "
                             "by a QUANTIZE operator")
    label = name or (os.path.basename(source) if isinstance(source, (str, os.PathLike))
                     else "tflite")
    qg = QGraph(name=str(label), inputs=tuple(ctx.hw_inputs),
                outputs=tuple(dict.fromkeys(p.tensor for p in ctx.outputs)),
                tensors=dict(ctx.tq), nodes=tuple(ctx.nodes), requant_config=prof.requant,
                acc_bits=32, acc_overflow="wrap", weight_format="int8",
                input_shapes={t: ctx.shape[t] for t in ctx.hw_inputs}, profile=prof.name)
    verify_qgraph(qg)
    return ImportedTflite(qg, prof, tuple(ctx.inputs), tuple(ctx.outputs), data)
