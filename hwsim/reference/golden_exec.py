"""The integer golden model: runs a :class:`~hwsim.compiler.qgraph.QGraph` with the integer
kernels of :mod:`hwsim.reference.golden_ops` (specs/arithmetic.md §7, §8, §10). MAC layers
use the exact engine (:mod:`hwsim.exact`, §7.4), proved equal to the literal §7 kernels
(``conv2d_acc_literal`` / ``gemm_acc_literal``) by ``tests/test_golden_fast_vs_literal.py``.

It is the living definition of what the accelerator computes; the fake-quant reference,
the cycle model and the RTL must equal it bit for bit (in the modes declared exact).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from hwsim.arith import jit_arrays
from hwsim.compiler.dynamic import (
    dynamic_add,
    dynamic_bias,
    dynamic_concat,
    dynamic_output,
    input_tensorq,
)
from hwsim.compiler.qgraph import QGraph, QNode, TensorQ, quantize_feeds
from hwsim.compiler.requant import fused_act_bounds, pad_code
from hwsim.errors import HwsimError, ModelError
from hwsim.reference import golden_ops as ops


@dataclass(frozen=True, eq=False)
class ExecResult:
    """Per-tensor integer codes (every tensor of the graph, inputs included), the qparams
    they were produced with (differ per input in a dynamic graph), the raw accumulators of
    conv/gemm nodes (by node name, before requantization) and the count of accumulator
    overflow events per conv/gemm node (§7). Codes and accumulators are read as int64
    arrays (:class:`Int64Arrays` when the golden model kept some narrower)."""

    codes: Mapping[str, np.ndarray]
    tensors: Mapping[str, TensorQ]
    accumulators: Mapping[str, np.ndarray]
    overflow_events: Mapping[str, int]

    def dequantize(self, name: str) -> np.ndarray:
        """float64 real values of tensor ``name``: scale · (q − zero_point)."""
        tq = self.tensors[name]
        return tq.scale * (self.codes[name].astype(np.float64) - tq.zero_point)


class Int64Arrays(Mapping):
    """Read-only mapping that hands out int64 arrays of integer arrays kept narrower: the
    golden model keeps the int32 registers of layers the §7.5 kernels computed as int32
    and the codes of 8-bit tensors that only its compact-reading kernels consume as int8 /
    uint8 (less memory traffic), the fake-quant reference its accumulators as float64 sums
    plus bias (anything ``np.asarray`` converts), and one is widened only when it is read (a
    new array each time; int64 arrays are handed out as they are). ``compact(name)``: the
    value as kept."""

    def __init__(self, arrays: Mapping[str, np.ndarray]) -> None:
        self._arrays = arrays

    def __getitem__(self, name: str) -> np.ndarray:
        return np.asarray(self._arrays[name], dtype=np.int64)

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def compact(self, name: str) -> np.ndarray:
        return self._arrays[name]


#: Ops whose golden kernels read int8 / uint8 input codes as they are (conv: the §7.5
#: kernels and the §7.4 patches convert while packing; add and max pool: Numba kernels with
#: int64 arithmetic).
COMPACT_READERS = frozenset({"conv", "add", "maxpool"})
#: Ops whose golden kernels write int8 / uint8 output codes directly.
COMPACT_WRITERS = frozenset({"conv", "gemm", "add", "maxpool"})


def code_dtype(tq: TensorQ) -> np.dtype | None:
    """int8 or uint8 when every code of ``tq``'s format fits it, else None."""
    if tq.dtype.startswith(("fp", "float")):
        return None
    return jit_arrays.compact_code_dtype(tq.qmin, tq.qmax)


def compact_dtypes(g: QGraph) -> dict[str, np.dtype]:
    """The tensors the golden model keeps as int8 / uint8 codes: outputs of
    :data:`COMPACT_WRITERS` nodes of an 8-bit format whose consumers are all
    :data:`COMPACT_READERS` (none for a dynamic graph). Values never change: every code of
    the format fits the compact dtype, and readers widen it exactly."""
    if g.dynamic:
        return {}
    users: dict[str, set[str]] = {}
    for node in g.nodes:
        for t in node.inputs:
            users.setdefault(t, set()).add(node.op)
    out: dict[str, np.dtype] = {}
    for node in g.nodes:
        if node.op not in COMPACT_WRITERS or not users.get(node.output, set()) <= COMPACT_READERS:
            continue
        dt = code_dtype(g.tensors[node.output])
        if dt is not None:
            out[node.output] = dt
    return out


def _pair(v: object, n: int = 2) -> tuple[int, ...]:
    t = tuple(int(i) for i in v)  # type: ignore[attr-defined]
    if len(t) != n:
        raise ModelError(f"expected {n} values, got {t}")
    return t


def _code_bound(tq: TensorQ) -> int:
    """max |code| of a tensor of format ``tq`` and |zero point|: every code the golden model
    holds is in [qmin, qmax] (inputs are range-checked, every op clamps)."""
    return max(abs(int(tq.qmin)), abs(int(tq.qmax)), abs(int(tq.zero_point)))


def run_golden(g: QGraph, feeds: Mapping[str, np.ndarray]) -> ExecResult:
    """Run ``g`` on ``feeds`` (float arrays, quantized with the input qparams — §3 — or
    integer arrays taken as codes). Returns every tensor's int64 codes.

    A dynamic graph must be fed floats: one set of activation qparams is chosen for the
    whole batch given (run one sample at a time for per-sample qparams).
    """
    tensors: dict[str, TensorQ] = dict(g.tensors)
    if g.dynamic:
        for name in g.inputs:
            x = np.asarray(feeds[name])
            if x.dtype.kind != "f":
                raise HwsimError(f"input {name!r}: a dynamic graph needs float inputs")
            tensors[name] = input_tensorq(name, x, g.tensors[name].dtype)
    codes = quantize_feeds(g, feeds, tensors)
    accs: dict[str, np.ndarray] = {}
    events: dict[str, int] = {}
    compact = compact_dtypes(g)
    for node in g.nodes:
        try:
            codes[node.output] = run_node(g, node, codes, tensors, accs, events,
                                          out_dtype=compact.get(node.output))
        except HwsimError as exc:
            raise type(exc)(f"node {node.name!r} ({node.op}): {exc}") from exc
    return ExecResult(codes=Int64Arrays(codes), tensors=tensors,
                      accumulators=Int64Arrays(accs), overflow_events=events)


def run_node(g: QGraph, node: QNode, codes: dict[str, np.ndarray],
             tensors: dict[str, TensorQ], accs: dict[str, np.ndarray],
             events: dict[str, int], out_dtype: np.dtype | None = None) -> np.ndarray:
    """Golden codes of one node's output from ``codes`` / ``tensors`` of its inputs (for
    step-by-step consumers such as the cycle model). In a dynamic graph ``tensors`` gets
    the output's qparams; ``accs`` / ``events`` get the accumulators (int32 where the §7.5
    kernels computed them, else int64) and overflow count of a conv / gemm. ``out_dtype``
    (a :data:`COMPACT_WRITERS` node, from :func:`compact_dtypes`): the output codes'
    compact dtype, else int64 codes."""
    a = node.attrs
    x = codes[node.inputs[0]]
    tin = tensors[node.inputs[0]]
    if node.op in ("conv", "gemm"):
        w = node.arrays["weight"]
        bias = dynamic_bias(node, tin, g.acc_bits) if g.dynamic else node.arrays["bias"]
        if node.op == "conv":
            acc, ev = ops.conv2d_acc(
                x, w, bias, x_zero_point=tin.zero_point, strides=_pair(a["strides"]),
                pads=_pair(a["pads"], 4), dilations=_pair(a["dilations"]),
                group=int(a["group"]), acc_bits=g.acc_bits, policy=g.acc_overflow,
                amax=_code_bound(tin), narrow=True)
        else:
            acc, ev = ops.gemm_acc(x, w, bias, acc_bits=g.acc_bits, policy=g.acc_overflow)
        accs[node.name] = acc
        events[node.name] = ev
        if g.dynamic:
            tensors[node.output], params = dynamic_output(g, node, tin, acc)
        else:
            params = node.requant["out"]
        return ops.requantize_acc(acc, params, out_dtype=out_dtype)
    req = node.requant
    if node.op == "add":
        tb = tensors[node.inputs[1]]
        if g.dynamic:
            tensors[node.output], req = dynamic_add(g, node, tin, tb, x, codes[node.inputs[1]])
        return ops.add(x, codes[node.inputs[1]], za=tin.zero_point, zb=tb.zero_point,
                       pa=req["in0"], pb=req["in1"], po=req["out"],
                       left_shift=int(a["left_shift"]), out_dtype=out_dtype)
    if node.op == "concat":
        axis = int(a["axis"])
        if g.dynamic:
            tensors[node.output], req = dynamic_concat(
                g, node, [tensors[t] for t in node.inputs], [codes[t] for t in node.inputs],
                axis)
        parts = [ops.rescale(codes[t], zero_point=tensors[t].zero_point, params=req[f"in{i}"])
                 for i, t in enumerate(node.inputs)]
        return np.concatenate(parts, axis=axis)
    if g.dynamic:
        tensors[node.output] = TensorQ(node.output, tin.dtype, tin.scale, tin.zero_point)
    if node.op == "avgpool":
        return ops.avgpool(x, zero_point=tin.zero_point, kernel=_pair(a["kernel_shape"]),
                           strides=_pair(a["strides"]), pads=_pair(a["pads"], 4),
                           count_include_pad=bool(a["count_include_pad"]))
    if node.op == "global_avgpool":
        return ops.global_avgpool(x, zero_point=tin.zero_point)
    if node.op == "maxpool":
        return ops.maxpool(x, kernel=_pair(a["kernel_shape"]), strides=_pair(a["strides"]),
                           pads=_pair(a["pads"], 4), dilations=_pair(a["dilations"]),
                           qmin=tin.qmin, out_dtype=out_dtype)
    if node.op == "clamp":
        return np.clip(x, *fused_act_bounds(*a["act_range"], tin))
    if node.op == "flatten":
        axis = int(a["axis"])
        return x.reshape(int(np.prod(x.shape[:axis], dtype=np.int64)), -1)
    if node.op == "reshape":
        return x.reshape((x.shape[0],) + tuple(int(d) for d in a["shape"]))
    if node.op == "pad":
        return ops.pad_constant(x, tuple(int(p) for p in a["pads"]), pad_code(a["value"], tin))
    from hwsim.reference.engine_ops import ENGINE_KERNELS  # engine-profile ops, arith §11.2

    if node.op in ENGINE_KERNELS:
        return ENGINE_KERNELS[node.op](node, codes, tensors)
    raise ModelError(f"no golden kernel for op {node.op!r}")


