"""Dynamic quantization: activation qparams chosen per input at run time (specs/compiler.md §4).

The rule, shared by both executors so that they see identical parameters:

1. a graph input x gets ``dynamic_qparams(x)`` (hwsim.quant.observers) in its format;
2. a conv/gemm node re-folds its float bias with the input's scale and zero point:
   ``bias_q(c) = round_half_even(b(c) / (s_in·s_w(c)))`` saturated to int32, then
   ``bias(c) = bias_q(c) − z_in·Σ_k w(c, k)`` saturated to the accumulator (§7);
3. after the accumulators are computed, the output qparams are
   ``dynamic_qparams(act(acc·s_in·s_w(c)))`` over the whole output (act = the fused
   activation's real clamp), and the requant parameters are made from them as in the
   static graph (:func:`hwsim.compiler.requant.mac_requant`);
4. an add's output qparams are ``dynamic_qparams(act(s_a·(q_a − z_a) + s_b·(q_b − z_b)))``
   (float64 from the input codes), a concat's ``dynamic_qparams`` of its dequantized
   inputs; their requant parameters follow (arithmetic §10.1, §10.3);
5. pooling, clamp, flatten, reshape and pad keep their input's qparams.
"""

from __future__ import annotations

import numpy as np

from hwsim.arith import RequantParams
from hwsim.compiler.qgraph import QGraph, QNode, TensorQ
from hwsim.compiler.requant import (
    INT32_MAX,
    INT32_MIN,
    add_requant,
    mac_requant,
    rescale_requant,
)
from hwsim.quant import QuantSpec
from hwsim.quant.observers import dynamic_qparams


def _tensorq(name: str, x: np.ndarray, dtype: str) -> TensorQ:
    qp = dynamic_qparams(np.asarray(x, dtype=np.float32), QuantSpec(dtype=dtype))
    return TensorQ(name, dtype, float(np.asarray(qp.scale)), int(np.asarray(qp.zero_point)))


def input_tensorq(name: str, x: np.ndarray, dtype: str) -> TensorQ:
    """Rule 1: the qparams of graph input ``name`` for the float values ``x``."""
    return _tensorq(name, x, dtype)


def dynamic_bias(node: QNode, tin: TensorQ, acc_bits: int = 32) -> np.ndarray:
    """Rule 2: the folded int64 bias of a conv/gemm for input qparams ``tin`` (saturated to
    the signed ``acc_bits`` accumulator range, as in the static compiler)."""
    w = node.arrays["weight"].astype(np.int64)
    s_w = node.arrays["weight_scale"]
    b = node.arrays["bias"]
    bq = np.clip(np.rint(b / (tin.scale * s_w)), INT32_MIN, INT32_MAX).astype(np.int64)
    lim = 1 << (acc_bits - 1)
    return np.clip(bq - tin.zero_point * w.reshape(w.shape[0], -1).sum(axis=1), -lim, lim - 1)


def dynamic_output(g: QGraph, node: QNode, tin: TensorQ,
                   acc: np.ndarray) -> tuple[TensorQ, RequantParams]:
    """Rule 3: the output qparams and requant params of a conv/gemm from its accumulators."""
    s_w = node.arrays["weight_scale"]
    shape = (1, -1) + (1,) * (acc.ndim - 2)
    y = acc.astype(np.float64) * (tin.scale * s_w).reshape(shape)
    lo, hi = node.attrs["act_range"]
    y = np.clip(y, lo, hi)
    tout = _tensorq(node.output, y, g.tensors[node.output].dtype)
    return tout, mac_requant(tin.scale, s_w, tout, g.requant_config, (lo, hi))


def dynamic_add(g: QGraph, node: QNode, ta: TensorQ, tb: TensorQ, qa: np.ndarray,
                qb: np.ndarray) -> tuple[TensorQ, dict[str, RequantParams]]:
    """Rule 4 for an add: output qparams from the real sum of its inputs, and the §10.1
    requant parameters."""
    lo, hi = node.attrs["act_range"]
    y = ta.scale * (qa.astype(np.float64) - ta.zero_point) + \
        tb.scale * (qb.astype(np.float64) - tb.zero_point)
    tout = _tensorq(node.output, np.clip(y, lo, hi), g.tensors[node.output].dtype)
    return tout, add_requant(ta, tb, tout, g.requant_config, (lo, hi))


def dynamic_concat(g: QGraph, node: QNode, tins: list[TensorQ], qs: list[np.ndarray],
                   axis: int) -> tuple[TensorQ, dict[str, RequantParams]]:
    """Rule 4 for a concat: output qparams over all dequantized inputs, one rescale each."""
    y = np.concatenate([t.scale * (q.astype(np.float64) - t.zero_point)
                        for t, q in zip(tins, qs, strict=True)], axis=axis)
    tout = _tensorq(node.output, y, g.tensors[node.output].dtype)
    return tout, {f"in{i}": rescale_requant(t, tout, g.requant_config)
                  for i, t in enumerate(tins)}
