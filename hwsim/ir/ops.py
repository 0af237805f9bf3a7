"""The op registry: arity, canonical attributes and shape inference per op (specs/ir.md §2).

Every op is an :class:`Op` (a ``str`` enum, so ``node.op == "conv2d"`` works). An
:class:`OpDef` states how many inputs the op takes, which of them must be initializers
(constant weights), and two functions: ``normalize`` turns user attributes into the
canonical form stored on a :class:`~hwsim.ir.graph.Node` (every attribute present, ints as
``int``, pairs as tuples; unknown or ill-typed attributes raise ModelError), and ``infer``
maps input :class:`~hwsim.ir.graph.TensorInfo` to output shapes.

Layout is NCHW, weights OIHW. Spatial attributes are canonical tuples:
``strides`` (sh, sw), ``dilations`` (dh, dw), ``kernel`` (kh, kw) and
``pads`` (top, left, bottom, right). The output size of a window op is
``floor((H + top + bottom - dh*(kh-1) - 1) / sh) + 1`` (no ceil mode).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from hwsim.errors import ModelError
from hwsim.ir.graph import Node, TensorInfo


class Op(StrEnum):
    """The ops of the float IR."""

    CONV2D = "conv2d"
    MATMUL = "matmul"
    GEMM = "gemm"
    ADD = "add"
    RELU = "relu"
    CLIP = "clip"
    MAXPOOL2D = "maxpool2d"
    AVGPOOL2D = "avgpool2d"
    GLOBAL_AVGPOOL = "global_avgpool"
    FLATTEN = "flatten"
    RESHAPE = "reshape"
    CONCAT = "concat"
    PAD = "pad"


Attrs = dict[str, Any]
Shape = tuple[int, ...]


@dataclass(frozen=True)
class OpDef:
    """How one op is checked: ``min_inputs``..``max_inputs`` inputs (None: unbounded), one
    output, ``const_inputs`` the input positions that must be initializers, ``normalize``
    (node name, user attrs) -> canonical attrs, ``infer`` (node name, input infos, canonical
    attrs) -> output shape."""

    op: Op
    min_inputs: int
    max_inputs: int | None
    const_inputs: tuple[int, ...]
    normalize: Callable[[str, Mapping[str, Any]], Attrs]
    infer: Callable[[str, Sequence[TensorInfo], Attrs], Shape]


def _err(node: str, op: str, msg: str) -> ModelError:
    return ModelError(f"node {node!r} ({op}): {msg}")


def _check_keys(node: str, op: str, attrs: Mapping[str, Any], allowed: Sequence[str]) -> None:
    unknown = sorted(set(attrs) - set(allowed))
    if unknown:
        allowed_s = ", ".join(allowed) if allowed else "none"
        raise _err(node, op, f"unknown attribute {unknown[0]!r}; supported: {allowed_s}")


def _as_int(node: str, op: str, key: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise _err(node, op, f"attribute {key!r} must be an int, got {value!r}")
    return int(value)


def _int_tuple(node: str, op: str, key: str, value: Any, n: int, lo: int) -> tuple[int, ...]:
    """An int broadcast to ``n`` values or a sequence of exactly ``n`` ints, each >= lo."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        vals: tuple[int, ...] = (int(value),) * n
    else:
        try:
            vals = tuple(_as_int(node, op, key, v) for v in value)
        except TypeError:
            raise _err(node, op, f"attribute {key!r} must be an int or {n} ints, "
                                 f"got {value!r}") from None
        if len(vals) != n:
            raise _err(node, op, f"attribute {key!r} must have {n} values, got {len(vals)}")
    if any(v < lo for v in vals):
        raise _err(node, op, f"attribute {key!r} values must be >= {lo}, got {vals}")
    return vals


def _pads4(node: str, op: str, value: Any) -> tuple[int, int, int, int]:
    """pads: an int, (ph, pw) or (top, left, bottom, right)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return _int_tuple(node, op, "pads", value, 4, 0)  # type: ignore[return-value]
    vals = tuple(value)
    if len(vals) == 2:
        vals = (vals[0], vals[1], vals[0], vals[1])
    return _int_tuple(node, op, "pads", vals, 4, 0)  # type: ignore[return-value]


def _float_or_none(node: str, op: str, key: str, value: Any) -> float | None:
    """A number rounded to the nearest float32 (clip bounds and pad values are float32
    constants, as in ONNX), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise _err(node, op, f"attribute {key!r} must be a number or None, got {value!r}")
    v = float(np.float32(value))
    if math.isnan(v):
        raise _err(node, op, f"attribute {key!r} must not be NaN")
    return v


def _require_rank(node: str, op: str, info: TensorInfo, rank: int, what: str) -> None:
    if info.rank != rank:
        raise _err(node, op, f"{what} {info.name!r} must have rank {rank}, "
                             f"got shape {info.shape}")


def _window_out(node: str, op: str, size: int, k: int, s: int, d: int, p0: int, p1: int,
                axis: str) -> int:
    span = d * (k - 1) + 1
    if size + p0 + p1 < span:
        raise _err(node, op, f"window of extent {span} does not fit the padded {axis} size "
                             f"{size + p0 + p1}")
    return (size + p0 + p1 - span) // s + 1


def _spatial_out(node: str, op: str, x: TensorInfo, kernel: tuple[int, int],
                 a: Attrs) -> tuple[int, int]:
    (kh, kw), (sh, sw), (dh, dw) = kernel, a["strides"], a.get("dilations", (1, 1))
    top, left, bottom, right = a["pads"]
    if op != Op.CONV2D and (max(top, bottom) >= kh or max(left, right) >= kw):
        raise _err(node, op, f"pads {a['pads']} must be smaller than the kernel {kernel}")
    return (_window_out(node, op, x.shape[2], kh, sh, dh, top, bottom, "height"),
            _window_out(node, op, x.shape[3], kw, sw, dw, left, right, "width"))


# --- conv2d ---------------------------------------------------------------------------

def _norm_conv(node: str, a: Mapping[str, Any]) -> Attrs:
    op = Op.CONV2D
    _check_keys(node, op, a, ("strides", "pads", "dilations", "groups"))
    groups = _as_int(node, op, "groups", a.get("groups", 1))
    if groups < 1:
        raise _err(node, op, f"attribute 'groups' must be >= 1, got {groups}")
    return {"strides": _int_tuple(node, op, "strides", a.get("strides", 1), 2, 1),
            "pads": _pads4(node, op, a.get("pads", 0)),
            "dilations": _int_tuple(node, op, "dilations", a.get("dilations", 1), 2, 1),
            "groups": groups}


def _infer_conv(node: str, ins: Sequence[TensorInfo], a: Attrs) -> Shape:
    op = Op.CONV2D
    x, w = ins[0], ins[1]
    _require_rank(node, op, x, 4, "input")
    _require_rank(node, op, w, 4, "weight")
    n, c = x.shape[:2]
    m, cg, kh, kw = w.shape
    g = a["groups"]
    if c % g or m % g:
        raise _err(node, op, f"groups={g} must divide the input channels ({c}) and the "
                             f"output channels ({m})")
    if cg * g != c:
        raise _err(node, op, f"weight {w.name!r} has {cg} input channels per group, expected "
                             f"{c // g} (input channels {c} / groups {g})")
    if len(ins) == 3 and ins[2].shape != (m,):
        raise _err(node, op, f"bias {ins[2].name!r} must have shape ({m},), "
                             f"got {ins[2].shape}")
    oh, ow = _spatial_out(node, op, x, (kh, kw), a)
    return (n, m, oh, ow)


# --- matmul / gemm ----------------------------------------------------------------------

def _norm_none(op: Op) -> Callable[[str, Mapping[str, Any]], Attrs]:
    def norm(node: str, a: Mapping[str, Any]) -> Attrs:
        _check_keys(node, op, a, ())
        return {}
    return norm


def _infer_matmul(node: str, ins: Sequence[TensorInfo], a: Attrs) -> Shape:
    op = Op.MATMUL
    x, y = ins
    if x.rank < 2 or y.rank < 2:
        raise _err(node, op, f"inputs must have rank >= 2, got {x.shape} and {y.shape}")
    if x.shape[-1] != y.shape[-2]:
        raise _err(node, op, f"inner dimensions differ: {x.name!r} {x.shape} @ "
                             f"{y.name!r} {y.shape}")
    try:
        batch = np.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    except ValueError:
        raise _err(node, op, f"batch dimensions of {x.shape} and {y.shape} do not "
                             "broadcast") from None
    return tuple(batch) + (x.shape[-2], y.shape[-1])


def _norm_gemm(node: str, a: Mapping[str, Any]) -> Attrs:
    op = Op.GEMM
    _check_keys(node, op, a, ("trans_b",))
    tb = a.get("trans_b", False)
    if not isinstance(tb, (bool, np.bool_)) and tb not in (0, 1):
        raise _err(node, op, f"attribute 'trans_b' must be a bool, got {tb!r}")
    return {"trans_b": bool(tb)}


def _infer_gemm(node: str, ins: Sequence[TensorInfo], a: Attrs) -> Shape:
    op = Op.GEMM
    x, w = ins[0], ins[1]
    _require_rank(node, op, x, 2, "input")
    _require_rank(node, op, w, 2, "weight")
    k, n = (w.shape[1], w.shape[0]) if a["trans_b"] else w.shape
    if x.shape[1] != k:
        raise _err(node, op, f"input {x.name!r} has {x.shape[1]} features, weight "
                             f"{w.name!r} {w.shape} (trans_b={a['trans_b']}) expects {k}")
    out = (x.shape[0], n)
    if len(ins) == 3:
        c = ins[2]
        try:
            fits = c.rank <= 2 and np.broadcast_shapes(c.shape, out) == out
        except ValueError:
            fits = False
        if not fits:
            raise _err(node, op, f"bias {c.name!r} of shape {c.shape} does not broadcast "
                                 f"to the output shape {out}")
    return out


# --- elementwise ------------------------------------------------------------------------

def _infer_add(node: str, ins: Sequence[TensorInfo], a: Attrs) -> Shape:
    try:
        return tuple(np.broadcast_shapes(ins[0].shape, ins[1].shape))
    except ValueError:
        raise _err(node, Op.ADD, f"shapes {ins[0].shape} and {ins[1].shape} do not "
                                 "broadcast") from None


def _infer_same(node: str, ins: Sequence[TensorInfo], a: Attrs) -> Shape:
    return ins[0].shape


def _norm_clip(node: str, a: Mapping[str, Any]) -> Attrs:
    op = Op.CLIP
    _check_keys(node, op, a, ("min", "max"))
    lo = _float_or_none(node, op, "min", a.get("min"))
    hi = _float_or_none(node, op, "max", a.get("max"))
    if lo is not None and hi is not None and lo > hi:
        raise _err(node, op, f"min ({lo}) must be <= max ({hi})")
    return {"min": lo, "max": hi}


# --- pooling ----------------------------------------------------------------------------

def _norm_pool(op: Op, extra: tuple[str, ...]) -> Callable[[str, Mapping[str, Any]], Attrs]:
    def norm(node: str, a: Mapping[str, Any]) -> Attrs:
        _check_keys(node, op, a, ("kernel", "strides", "pads") + extra)
        if "kernel" not in a:
            raise _err(node, op, "attribute 'kernel' is required")
        kernel = _int_tuple(node, op, "kernel", a["kernel"], 2, 1)
        out: Attrs = {"kernel": kernel,
                      "strides": _int_tuple(node, op, "strides", a.get("strides", kernel), 2, 1),
                      "pads": _pads4(node, op, a.get("pads", 0))}
        if "dilations" in extra:
            out["dilations"] = _int_tuple(node, op, "dilations", a.get("dilations", 1), 2, 1)
        if "count_include_pad" in extra:
            cip = a.get("count_include_pad", False)
            if not isinstance(cip, (bool, np.bool_)) and cip not in (0, 1):
                raise _err(node, op, f"attribute 'count_include_pad' must be a bool, "
                                     f"got {cip!r}")
            out["count_include_pad"] = bool(cip)
        return out
    return norm


def _infer_pool(op: Op) -> Callable[[str, Sequence[TensorInfo], Attrs], Shape]:
    def infer(node: str, ins: Sequence[TensorInfo], a: Attrs) -> Shape:
        x = ins[0]
        _require_rank(node, op, x, 4, "input")
        oh, ow = _spatial_out(node, op, x, a["kernel"], a)
        return (x.shape[0], x.shape[1], oh, ow)
    return infer


def _infer_gap(node: str, ins: Sequence[TensorInfo], a: Attrs) -> Shape:
    x = ins[0]
    _require_rank(node, Op.GLOBAL_AVGPOOL, x, 4, "input")
    return (x.shape[0], x.shape[1], 1, 1)


# --- shape ops --------------------------------------------------------------------------

def _norm_axis(op: Op) -> Callable[[str, Mapping[str, Any]], Attrs]:
    def norm(node: str, a: Mapping[str, Any]) -> Attrs:
        _check_keys(node, op, a, ("axis",))
        return {"axis": _as_int(node, op, "axis", a.get("axis", 1))}
    return norm


def _infer_flatten(node: str, ins: Sequence[TensorInfo], a: Attrs) -> Shape:
    x, axis = ins[0], a["axis"]
    if not 0 <= axis <= x.rank:
        raise _err(node, Op.FLATTEN, f"axis {axis} out of range [0, {x.rank}] for input "
                                     f"{x.name!r} {x.shape} (negative axes are normalised "
                                     "by the frontend)")
    return (math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


def _norm_reshape(node: str, a: Mapping[str, Any]) -> Attrs:
    op = Op.RESHAPE
    _check_keys(node, op, a, ("shape",))
    if "shape" not in a:
        raise _err(node, op, "attribute 'shape' is required")
    try:
        shape = tuple(_as_int(node, op, "shape", v) for v in a["shape"])
    except TypeError:
        raise _err(node, op, f"attribute 'shape' must be a sequence of ints, "
                             f"got {a['shape']!r}") from None
    if any(v < -1 for v in shape) or shape.count(-1) > 1:
        raise _err(node, op, f"attribute 'shape' {shape}: entries must be >= -1 with at most "
                             "one -1")
    return {"shape": shape}


def _infer_reshape(node: str, ins: Sequence[TensorInfo], a: Attrs) -> Shape:
    x, spec = ins[0], a["shape"]
    out = []
    for i, v in enumerate(spec):
        if v == 0:
            if i >= x.rank:
                raise _err(node, Op.RESHAPE, f"shape {spec}: 0 at position {i} copies an "
                                             f"input dimension but the input has rank {x.rank}")
            out.append(x.shape[i])
        else:
            out.append(v)
    known = math.prod(v for v in out if v != -1)
    if -1 in out:
        if known == 0 or x.size % known:
            raise _err(node, Op.RESHAPE, f"cannot reshape {x.shape} to {spec}")
        out[out.index(-1)] = x.size // known
    if math.prod(out) != x.size:
        raise _err(node, Op.RESHAPE, f"cannot reshape {x.name!r} {x.shape} "
                                     f"({x.size} elements) to {spec}")
    return tuple(out)


def _infer_concat(node: str, ins: Sequence[TensorInfo], a: Attrs) -> Shape:
    axis, first = a["axis"], ins[0]
    if not 0 <= axis < first.rank:
        raise _err(node, Op.CONCAT, f"axis {axis} out of range [0, {first.rank})")
    for t in ins[1:]:
        if t.rank != first.rank or any(
                d0 != d1
                for i, (d0, d1) in enumerate(zip(first.shape, t.shape, strict=False))
                if i != axis):
            raise _err(node, Op.CONCAT, f"input {t.name!r} {t.shape} does not match "
                                        f"{first.name!r} {first.shape} outside axis {axis}")
    total = sum(t.shape[axis] for t in ins)
    return first.shape[:axis] + (total,) + first.shape[axis + 1:]


def _norm_pad(node: str, a: Mapping[str, Any]) -> Attrs:
    op = Op.PAD
    _check_keys(node, op, a, ("pads", "value"))
    if "pads" not in a:
        raise _err(node, op, "attribute 'pads' is required")
    try:
        pads = tuple(_as_int(node, op, "pads", v) for v in a["pads"])
    except TypeError:
        raise _err(node, op, f"attribute 'pads' must be a sequence of ints, "
                             f"got {a['pads']!r}") from None
    if any(p < 0 for p in pads):
        raise _err(node, op, f"attribute 'pads' {pads} must be non-negative")
    value = _float_or_none(node, op, "value", a.get("value", 0.0))
    return {"pads": pads, "value": 0.0 if value is None else value}


def _infer_pad(node: str, ins: Sequence[TensorInfo], a: Attrs) -> Shape:
    x, pads = ins[0], a["pads"]
    if len(pads) != 2 * x.rank:
        raise _err(node, Op.PAD, f"attribute 'pads' needs 2 x rank = {2 * x.rank} values "
                                 f"(all begins, then all ends), got {len(pads)}")
    return tuple(d + pads[i] + pads[i + x.rank] for i, d in enumerate(x.shape))


OPS: dict[Op, OpDef] = {
    d.op: d for d in (
        OpDef(Op.CONV2D, 2, 3, (1, 2), _norm_conv, _infer_conv),
        OpDef(Op.MATMUL, 2, 2, (), _norm_none(Op.MATMUL), _infer_matmul),
        OpDef(Op.GEMM, 2, 3, (1, 2), _norm_gemm, _infer_gemm),
        OpDef(Op.ADD, 2, 2, (), _norm_none(Op.ADD), _infer_add),
        OpDef(Op.RELU, 1, 1, (), _norm_none(Op.RELU), _infer_same),
        OpDef(Op.CLIP, 1, 1, (), _norm_clip, _infer_same),
        OpDef(Op.MAXPOOL2D, 1, 1, (), _norm_pool(Op.MAXPOOL2D, ("dilations",)),
              _infer_pool(Op.MAXPOOL2D)),
        OpDef(Op.AVGPOOL2D, 1, 1, (), _norm_pool(Op.AVGPOOL2D, ("count_include_pad",)),
              _infer_pool(Op.AVGPOOL2D)),
        OpDef(Op.GLOBAL_AVGPOOL, 1, 1, (), _norm_none(Op.GLOBAL_AVGPOOL), _infer_gap),
        OpDef(Op.FLATTEN, 1, 1, (), _norm_axis(Op.FLATTEN), _infer_flatten),
        OpDef(Op.RESHAPE, 1, 1, (), _norm_reshape, _infer_reshape),
        OpDef(Op.CONCAT, 1, None, (), _norm_axis(Op.CONCAT), _infer_concat),
        OpDef(Op.PAD, 1, 1, (), _norm_pad, _infer_pad),
    )
}


def op_def(node_name: str, op: str) -> OpDef:
    """The :class:`OpDef` of ``op``; ModelError naming the node and the known ops if none."""
    try:
        return OPS[Op(op)]
    except ValueError:
        raise ModelError(f"node {node_name!r}: unknown op {op!r}; supported ops: "
                         f"{', '.join(o.value for o in Op)}") from None


def normalize_attrs(node_name: str, op: str, attrs: Mapping[str, Any]) -> Attrs:
    """Canonical attributes of ``op`` from user ``attrs`` (defaults filled in, ints
    broadcast to tuples). ModelError names the node, op and attribute on a bad value."""
    return op_def(node_name, op).normalize(node_name, attrs)


def infer_node(node: Node, inputs: Sequence[TensorInfo]) -> list[TensorInfo]:
    """Check ``node`` against its input infos and return its output infos.

    Checks arity, canonical attributes (``node.attrs`` must equal their normalised form),
    equal float dtypes across inputs and the op's shape rule. ModelError names the node.
    """
    d = op_def(node.name, node.op)
    n_in = len(node.inputs)
    if n_in < d.min_inputs or (d.max_inputs is not None and n_in > d.max_inputs):
        want = (f"{d.min_inputs}" if d.min_inputs == d.max_inputs else
                f"{d.min_inputs}..{d.max_inputs}" if d.max_inputs is not None else
                f">= {d.min_inputs}")
        raise _err(node.name, node.op, f"takes {want} inputs, got {n_in}")
    if len(node.outputs) != 1:
        raise _err(node.name, node.op, f"must have exactly 1 output, got {len(node.outputs)}")
    canon = d.normalize(node.name, node.attrs)
    if canon != dict(node.attrs):
        raise _err(node.name, node.op, f"attributes are not canonical: got {dict(node.attrs)}, "
                                       f"expected {canon} (build nodes with normalize_attrs)")
    dtypes = {t.dtype for t in inputs}
    if len(dtypes) != 1:
        raise _err(node.name, node.op, f"inputs have different dtypes {sorted(dtypes)}")
    shape = d.infer(node.name, inputs, canon)
    return [TensorInfo(node.outputs[0], shape, inputs[0].dtype)]
