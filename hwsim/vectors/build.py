"""Assembling the vectors of one conv / gemm layer (specs/vectors.md §4).

:func:`layer_vectors` fixes the array names, word widths and axis orders of a MAC layer:

===================== ============== ============ ====================================
array                 width          signed       axes
===================== ============== ============ ====================================
input                 act_bits       act_signed   conv: n c h w;  gemm: n k
weight                weight_bits    True         conv: m c kh kw; gemm: m k
bias                  32             True         m            (folded int32 bias, §7)
requant_multiplier    32 (64 if >)   True         m            (per channel, broadcast)
requant_shift         8              True         m            (right shift, §8)
requant_scale_f32_bits 32            False        m            (IEEE-754 bits of scale_f32)
acc                   acc_bits       True         conv: n m oh ow; gemm: n m
output                out_bits       out_signed   as acc
valid_cycle           64             False        as acc       (cycle the output is valid)
===================== ============== ============ ====================================
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from hwsim.errors import HwsimError
from hwsim.vectors.writer import LayerVectors, VectorArray

if TYPE_CHECKING:
    from hwsim.arith import RequantParams

INT32_MAX = (1 << 31) - 1


def _as_int(a: Any) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a), dtype=np.int64)


def requant_record(params: RequantParams) -> dict[str, Any]:
    """The JSON-compatible scalars of a :class:`hwsim.arith.RequantParams` (§4)."""
    return {
        "config": dataclasses.asdict(params.config),
        "zero_point": int(params.zero_point),
        "out_bits": int(params.out_bits),
        "out_signed": bool(params.out_signed),
        "act_min": int(params.act_min),
        "act_max": int(params.act_max),
    }


def layer_vectors(
    name: str,
    op: str,
    *,
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray,
    requant: RequantParams,
    acc: np.ndarray,
    output: np.ndarray,
    valid_cycle: np.ndarray,
    act_bits: int,
    act_signed: bool,
    weight_bits: int,
    acc_bits: int,
    acc_policy: str,
    conv: dict[str, Any] | None = None,
    qparams: dict[str, Any] | None = None,
) -> LayerVectors:
    """The :class:`LayerVectors` of a conv (``conv`` = strides, pads, dilations, group,
    x_zero_point) or gemm layer, with the names and formats of the table above.
    ``qparams`` (e.g. the input and output tensors' scale / zero point / dtype) is recorded
    in the layer's params as is."""
    if op not in ("conv", "gemm"):
        raise HwsimError(f"layer {name}: op {op!r}: expected 'conv' or 'gemm'")
    if op == "conv" and conv is None:
        raise HwsimError(f"layer {name}: a conv layer needs its conv attributes")
    w = _as_int(weight)
    m = w.shape[0]
    ch = requant.channels
    if ch not in (1, m):
        raise HwsimError(f"layer {name}: requant has {ch} channels, expected 1 or {m}")
    mult = np.broadcast_to(_as_int(requant.multiplier), (m,)).copy()
    shift = np.broadcast_to(_as_int(requant.shift), (m,)).copy()
    scale_bits = np.broadcast_to(
        np.asarray(requant.scale_f32, dtype=np.float32).view(np.uint32), (m,)
    ).astype(np.int64)
    mult_bits = 32 if int(np.abs(mult).max()) <= INT32_MAX else 64
    out_axes = ("n", "m", "oh", "ow") if op == "conv" else ("n", "m")
    arrays = {
        "input": VectorArray(_as_int(input), act_bits, act_signed,
                             ("n", "c", "h", "w") if op == "conv" else ("n", "k")),
        "weight": VectorArray(w, weight_bits, True,
                              ("m", "c", "kh", "kw") if op == "conv" else ("m", "k")),
        "bias": VectorArray(_as_int(bias), 32, True, ("m",)),
        "requant_multiplier": VectorArray(mult, mult_bits, True, ("m",)),
        "requant_shift": VectorArray(shift, 8, True, ("m",)),
        "requant_scale_f32_bits": VectorArray(scale_bits, 32, False, ("m",)),
        "acc": VectorArray(_as_int(acc), acc_bits, True, out_axes),
        "output": VectorArray(_as_int(output), int(requant.out_bits), bool(requant.out_signed),
                              out_axes),
        "valid_cycle": VectorArray(_as_int(valid_cycle), 64, False, out_axes),
    }
    params: dict[str, Any] = {
        "acc_bits": int(acc_bits),
        "acc_policy": str(acc_policy),
        "requant": requant_record(requant),
    }
    if qparams:
        params["qparams"] = dict(qparams)
    if op == "conv" and conv is not None:
        params.update({
            "strides": [int(v) for v in conv["strides"]],
            "pads": [int(v) for v in conv["pads"]],
            "dilations": [int(v) for v in conv["dilations"]],
            "group": int(conv["group"]),
            "x_zero_point": int(conv["x_zero_point"]),
        })
    return LayerVectors(name=name, op=op, arrays=arrays, params=params)
