"""The integer graph: the quantizing compiler's output (specs/compiler.md §2).

A :class:`QGraph` is a topologically ordered tuple of :class:`QNode` over named tensors.
Every activation tensor has one :class:`TensorQ` (integer format, scale, zero point; all
activations are per-tensor). Every node keeps the name of the float-graph node it came from.

Node kinds (``QNode.op``) and what they hold:

- ``conv``: arrays ``weight`` int [M, C/g, kh, kw], ``bias`` int32 [M] (folded),
  ``weight_scale`` float64 [M]; requant ``out``.
- ``gemm``: arrays ``weight`` int [M, K], ``bias`` int32 [M], ``weight_scale``; requant ``out``.
- ``add``: requant ``in0``, ``in1``, ``out``.
- ``concat``: requant ``in0`` … ``in{n-1}``.
- ``avgpool``, ``global_avgpool``, ``maxpool``, ``clamp``, ``flatten``, ``reshape``, ``pad``:
  no arrays, no requant; the output shares the input's qparams.
- ``qlinear_add``, ``qlinear_mul``, ``qlinear_global_avgpool``, ``qlinear_avgpool``,
  ``qlinear_concat`` (attr axis), ``qlinear_leaky_relu`` (attr alpha), ``qlinear_sigmoid``,
  ``conv_u8s8`` /
  ``gemm_u8s8`` (conv / gemm arrays and requant; pairs of products saturated to int16 as
  ORT's AVX2 u8s8 kernels do, §11.2.8): engine-profile ops
  (ONNX Runtime's float32 kernels, arithmetic §11.2) computed from the input and output
  TensorQ; no arrays, no requant.

The integer meaning of every op is §7, §8 and §10 of ``specs/arithmetic.md``; the two
executors (:mod:`hwsim.reference.golden_exec`, :mod:`hwsim.reference.fakequant_exec`)
implement it. A dynamic graph (``QGraph.dynamic``) carries float biases and no activation
qparams: they are recomputed per input (specs/compiler.md §4).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwsim.arith import OVERFLOW_POLICIES, RequantConfig, RequantParams
from hwsim.errors import ConfigError, ModelError
from hwsim.quant import QParams, QuantSpec, quantize

#: Every op the integer graph knows, with the number of tensor inputs it takes (None: ≥ 1).
QOPS: dict[str, int | None] = {
    "conv": 1,
    "gemm": 1,
    "add": 2,
    "avgpool": 1,
    "global_avgpool": 1,
    "maxpool": 1,
    "clamp": 1,
    "flatten": 1,
    "reshape": 1,
    "pad": 1,
    "concat": None,
    # engine-profile ops (specs/arithmetic.md §11.2; kernels in hwsim.reference.engine_ops)
    "qlinear_add": 2,
    "qlinear_mul": 2,
    "qlinear_global_avgpool": 1,
    "qlinear_avgpool": 1,
    "qlinear_concat": None,
    "qlinear_leaky_relu": 1,
    "qlinear_sigmoid": 1,
    "conv_u8s8": 1,
    "gemm_u8s8": 1,
    "matmul_integer": 1,  # ORT dynamic quantization, arithmetic §11.2.9
    "conv_integer": 1,
    "float_add": None,  # float32 a + b (or + a constant), arithmetic §11.2.9
    "float_clip": 1,
    # LiteRT reference-kernel ops (specs/arithmetic.md §11.3; hwsim.reference.litert_ops)
    "litert_avgpool": 1,
    "litert_mul": 2,
}

#: Ops whose output shares the input's scale and zero point (no requantization).
SHARED_QPARAM_OPS = ("avgpool", "global_avgpool", "maxpool", "clamp", "flatten", "reshape", "pad")

#: Weight formats of conv / gemm (specs/compiler.md §3).
WEIGHT_FORMATS = ("int8", "int4", "int4_block", "fp8_e4m3")

#: Activation integer formats the graph accepts.
ACT_DTYPES = ("int8", "uint8", "int16", "uint16")

#: Wide tensors of engine ops (arithmetic §11.2.9): int32 accumulators, and float32 values
#: carried as their int32 bit patterns (scale 1, zero point 0; never requantized).
WIDE_DTYPES = ("int32", "float32")


def act_range(dtype: str) -> tuple[int, int]:
    """(qmin, qmax) of an activation format name from :data:`ACT_DTYPES` (or the int32
    range of a :data:`WIDE_DTYPES` tensor's codes)."""
    if dtype in WIDE_DTYPES:
        return -(1 << 31), (1 << 31) - 1
    if dtype not in ACT_DTYPES:
        raise ConfigError(f"activation dtype: expected one of {ACT_DTYPES}, got {dtype!r}")
    bits = int(dtype.removeprefix("u").removeprefix("int"))
    if dtype.startswith("u"):
        return 0, (1 << bits) - 1
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


@dataclass(frozen=True)
class TensorQ:
    """Quantization of one activation tensor: real = scale · (q − zero_point) (§3).

    ``scale`` is NaN and ``zero_point`` 0 in a dynamic graph (qparams chosen per input).
    """

    name: str
    dtype: str = "int8"
    scale: float = float("nan")
    zero_point: int = 0

    def __post_init__(self) -> None:
        qmin, qmax = act_range(self.dtype)
        if not (np.isnan(self.scale) or self.scale > 0.0):
            raise ConfigError(f"tensor {self.name!r}: scale must be > 0, got {self.scale}")
        if not qmin <= self.zero_point <= qmax:
            raise ConfigError(
                f"tensor {self.name!r}: zero_point {self.zero_point} outside "
                f"[{qmin}, {qmax}] of {self.dtype}"
            )

    @property
    def qmin(self) -> int:
        return act_range(self.dtype)[0]

    @property
    def qmax(self) -> int:
        return act_range(self.dtype)[1]


@dataclass(frozen=True, eq=False)
class QNode:
    """One integer op. ``name`` is the float-graph node's name (the fused activation, if
    any, is recorded in ``fused``). ``attrs`` holds ints, floats, strings and int tuples."""

    name: str
    op: str
    inputs: tuple[str, ...]
    output: str
    attrs: Mapping[str, Any] = field(default_factory=dict)
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)
    requant: Mapping[str, RequantParams] = field(default_factory=dict)
    fused: str = ""

    def __post_init__(self) -> None:
        if self.op not in QOPS:
            raise ModelError(f"node {self.name!r}: unknown integer op {self.op!r}; "
                             f"expected one of {sorted(QOPS)}")


@dataclass(frozen=True, eq=False)
class QGraph:
    """The integer graph. ``nodes`` are in topological order; ``tensors`` quantizes every
    activation (graph inputs included); ``acc_bits``/``acc_overflow`` configure the MAC
    accumulator (§7); ``weight_format`` is one of :data:`WEIGHT_FORMATS`."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    tensors: Mapping[str, TensorQ]
    nodes: tuple[QNode, ...]
    requant_config: RequantConfig
    acc_bits: int = 32
    acc_overflow: str = "wrap"
    weight_format: str = "int8"
    dynamic: bool = False
    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    #: Name of the engine profile the graph was built for (hwsim.compiler.profiles, §11).
    profile: str = ""

    def __post_init__(self) -> None:
        if not 8 <= self.acc_bits <= 32:
            raise ConfigError(f"acc_bits: expected an int in [8, 32], got {self.acc_bits}")
        if self.acc_overflow not in OVERFLOW_POLICIES:
            raise ConfigError(
                f"acc_overflow: expected one of {OVERFLOW_POLICIES}, got {self.acc_overflow!r}"
            )
        if self.weight_format not in WEIGHT_FORMATS:
            raise ConfigError(
                f"weight_format: expected one of {WEIGHT_FORMATS}, got {self.weight_format!r}"
            )

    def node(self, name: str) -> QNode:
        """The node called ``name`` (ModelError if there is none)."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise ModelError(f"no node named {name!r} in integer graph {self.name!r}")

    def replace(self, **changes: Any) -> QGraph:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


_REQUIRED_ARRAYS = {
    "conv": {"weight": 4, "bias": 1, "weight_scale": 1},
    "gemm": {"weight": 2, "bias": 1, "weight_scale": 1},
    "conv_u8s8": {"weight": 4, "bias": 1, "weight_scale": 1},
    "gemm_u8s8": {"weight": 2, "bias": 1, "weight_scale": 1},
}


def verify_qgraph(g: QGraph) -> None:
    """Check the structure of ``g``; raise ModelError naming the offending node or tensor.

    Checks: unique node and tensor names; every input defined before use; every tensor
    has a TensorQ; conv/gemm carry integer weights, an int32 bias (float64 in a dynamic
    graph) and a per-output-channel weight scale of matching length; requant parameters
    are present for the keys of the op; shared-qparam ops really share them.
    """
    defined: set[str] = set(g.inputs)
    for t in g.inputs:
        if t not in g.tensors:
            raise ModelError(f"graph input {t!r} has no quantization (TensorQ)")
    names: set[str] = set()
    for n in g.nodes:
        where = f"node {n.name!r} ({n.op})"
        if n.name in names:
            raise ModelError(f"{where}: duplicate node name")
        names.add(n.name)
        arity = QOPS[n.op]
        if arity is not None and len(n.inputs) != arity:
            raise ModelError(f"{where}: expected {arity} input(s), got {len(n.inputs)}")
        if not n.inputs:
            raise ModelError(f"{where}: has no inputs")
        for t in n.inputs:
            if t not in defined:
                raise ModelError(f"{where}: input {t!r} is not produced by an earlier node")
        if n.output in defined:
            raise ModelError(f"{where}: output {n.output!r} is produced twice")
        if n.output not in g.tensors:
            raise ModelError(f"{where}: output {n.output!r} has no quantization (TensorQ)")
        defined.add(n.output)
        for key, ndim in _REQUIRED_ARRAYS.get(n.op, {}).items():
            arr = n.arrays.get(key)
            if arr is None:
                raise ModelError(f"{where}: missing array {key!r}")
            if arr.ndim != ndim:
                raise ModelError(f"{where}: array {key!r} must be {ndim}-D, got {arr.shape}")
        if n.op in _REQUIRED_ARRAYS:
            w, b, s = n.arrays["weight"], n.arrays["bias"], n.arrays["weight_scale"]
            if not np.issubdtype(w.dtype, np.integer):
                raise ModelError(f"{where}: weight must be integer, got {w.dtype}")
            want_bias = np.float64 if g.dynamic else np.int32
            if b.dtype != want_bias:
                raise ModelError(f"{where}: bias must be {np.dtype(want_bias)}, got {b.dtype}")
            if not (b.shape[0] == s.shape[0] == w.shape[0]):
                raise ModelError(
                    f"{where}: weight {w.shape}, bias {b.shape} and weight_scale {s.shape} "
                    "disagree on the number of output channels"
                )
            if not np.all(s > 0):
                raise ModelError(f"{where}: weight_scale must be > 0")
        if not g.dynamic:
            need = _requant_keys(n)
            missing = [k for k in need if k not in n.requant]
            if missing:
                raise ModelError(f"{where}: missing requant parameters {missing}")
            if n.op in SHARED_QPARAM_OPS:
                a, b2 = g.tensors[n.inputs[0]], g.tensors[n.output]
                if (a.scale, a.zero_point, a.dtype) != (b2.scale, b2.zero_point, b2.dtype):
                    raise ModelError(
                        f"{where}: output {n.output!r} must share the input's qparams"
                    )
    for t in g.outputs:
        if t not in defined:
            raise ModelError(f"graph output {t!r} is not produced by any node")


def tensor_qparams(tq: TensorQ) -> QParams:
    """The :class:`hwsim.quant.QParams` (per tensor) of an activation tensor."""
    return QParams(scale=np.asarray(tq.scale, dtype=np.float32),
                   zero_point=np.asarray(tq.zero_point, dtype=np.int64),
                   spec=QuantSpec(dtype=tq.dtype))


def quantize_feeds(g: QGraph, feeds: Mapping[str, np.ndarray],
                   tensors: Mapping[str, TensorQ] | None = None) -> dict[str, np.ndarray]:
    """int64 codes of the graph inputs: float feeds are quantized with their TensorQ (§3,
    :func:`hwsim.quant.quantize`; under an ORT profile as ORT's QuantizeLinear does,
    arithmetic §11.2.5), integer feeds are taken as codes (range-checked)."""
    tensors = g.tensors if tensors is None else tensors
    from hwsim.compiler.profiles import PROFILES

    prof = PROFILES.get(g.profile)
    ort_input = prof is not None and prof.input == "ort_quantize_linear"
    codes: dict[str, np.ndarray] = {}
    for name in g.inputs:
        if name not in feeds:
            raise ModelError(f"missing input {name!r}; the graph takes {list(g.inputs)}")
        x = np.asarray(feeds[name])
        tq = tensors[name]
        if x.dtype.kind == "f" and tq.dtype == "float32":  # bit patterns, arith §11.2.9
            codes[name] = np.asarray(x, dtype=np.float32).view(np.int32).astype(np.int64)
        elif x.dtype.kind == "f" and prof is not None and prof.input == "litert_quantize":
            from hwsim.reference.litert_ops import litert_quantize  # arithmetic §11.3.7

            codes[name] = litert_quantize(x, tq.scale, tq.zero_point, tq.dtype)
        elif x.dtype.kind == "f" and ort_input:
            from hwsim.reference.engine_ops import quantize_linear

            codes[name] = quantize_linear(x, tq.scale, tq.zero_point, tq.dtype)
        elif x.dtype.kind == "f":
            codes[name] = quantize(x, tensor_qparams(tq)).astype(np.int64)
        elif x.dtype.kind in "iu":
            if x.size and (int(x.min()) < tq.qmin or int(x.max()) > tq.qmax):
                raise ModelError(f"input {name!r}: integer codes outside [{tq.qmin}, "
                                 f"{tq.qmax}] of {tq.dtype}")
            codes[name] = x.astype(np.int64)
        else:
            raise ModelError(f"input {name!r}: expected a float or integer array, got {x.dtype}")
    for name in feeds:
        if name not in g.inputs:
            raise ModelError(f"unknown input {name!r}; the graph takes {list(g.inputs)}")
    return codes


def _requant_keys(n: QNode) -> list[str]:
    if n.op in ("conv", "gemm", "conv_u8s8", "gemm_u8s8"):
        return ["out"]
    if n.op == "add":
        return ["in0", "in1", "out"]
    if n.op == "concat":
        return [f"in{i}" for i in range(len(n.inputs))]
    return []
