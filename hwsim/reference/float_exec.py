"""The float32 reference executor of the float IR (specs/ir.md §5).

Plain numpy, one function per op, written to read like the op definitions of
specs/ir.md §2. Reductions (conv2d, matmul, gemm, pooling means) accumulate in float64 and
round once to the tensor dtype, so results are within a few float32 ulps of any float32
engine (onnxruntime is the differential reference in the tests); elementwise ops are
computed in the tensor dtype directly.

:func:`run_float` calls ``observe(tensor_name, value)`` for every graph input and every node
output in graph order: calibration observers hook in there. Inputs may have a batch size
other than the graph's: the graph is re-inferred with :func:`hwsim.ir.with_batch`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from hwsim.errors import HwsimError, ModelError
from hwsim.ir.graph import Graph, Node, with_batch
from hwsim.ir.ops import Op

Observer = Callable[[str, np.ndarray], None]


def _windows(x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int],
             dilations: tuple[int, int]) -> np.ndarray:
    """View ``[N, C, OH, OW, kh, kw]`` of the (already padded) ``x`` ``[N, C, H, W]``."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, strides, dilations
    v = sliding_window_view(x, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))
    return v[:, :, ::sh, ::sw, ::dh, ::dw]


def _pad_hw(x: np.ndarray, pads: tuple[int, int, int, int], value: float) -> np.ndarray:
    top, left, bottom, right = pads
    if not any(pads):
        return x
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, strides: tuple[int, int],
           pads: tuple[int, int, int, int], dilations: tuple[int, int],
           groups: int) -> np.ndarray:
    """``y[n, m, i, j] = b[m] + Σ_{c, p, q} w[m, c, p, q] · xpad[n, g·C/G + c, i·sh + p·dh,
    j·sw + q·dw]`` with ``g = m // (M/G)``; accumulated in float64, returned as float64."""
    n, c = x.shape[:2]
    m, cg, kh, kw = w.shape
    win = _windows(_pad_hw(x.astype(np.float64), pads, 0.0), (kh, kw), strides, dilations)
    oh, ow = win.shape[2:4]
    win = win.reshape(n, groups, cg, oh, ow, kh, kw)
    wg = w.astype(np.float64).reshape(groups, m // groups, cg, kh, kw)
    y = np.einsum("ngchwpq,gmcpq->ngmhw", win, wg, optimize=True).reshape(n, m, oh, ow)
    if b is not None:
        y = y + b.astype(np.float64)[None, :, None, None]
    return y


def maxpool2d(x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int],
              pads: tuple[int, int, int, int], dilations: tuple[int, int]) -> np.ndarray:
    """Max over each window; padded positions are -inf (they never win)."""
    return _windows(_pad_hw(x, pads, -np.inf), kernel, strides, dilations).max(axis=(4, 5))


def avgpool2d(x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int],
              pads: tuple[int, int, int, int], count_include_pad: bool) -> np.ndarray:
    """Window sum (float64) divided by kh·kw when ``count_include_pad``, else by the number
    of window positions inside the unpadded input."""
    ones = (1, 1)
    s = _windows(_pad_hw(x.astype(np.float64), pads, 0.0), kernel, strides, ones)
    total = s.sum(axis=(4, 5))
    if count_include_pad:
        return total / float(kernel[0] * kernel[1])
    mask = _pad_hw(np.ones((1, 1) + x.shape[2:], np.float64), pads, 0.0)
    count = _windows(mask, kernel, strides, ones).sum(axis=(4, 5))
    return total / count


def _node_value(node: Node, args: list[np.ndarray], node_shape: tuple[int, ...]) -> np.ndarray:
    a = node.attrs
    op = node.op
    if op == Op.CONV2D:
        return conv2d(args[0], args[1], args[2] if len(args) == 3 else None,
                      a["strides"], a["pads"], a["dilations"], a["groups"])
    if op == Op.MATMUL:
        return np.matmul(args[0].astype(np.float64), args[1].astype(np.float64))
    if op == Op.GEMM:
        w = args[1].astype(np.float64)
        y = args[0].astype(np.float64) @ (w.T if a["trans_b"] else w)
        return y + args[2].astype(np.float64) if len(args) == 3 else y
    if op == Op.ADD:
        return args[0] + args[1]
    if op == Op.RELU:
        return np.maximum(args[0], args[0].dtype.type(0))
    if op == Op.CLIP:
        y = args[0]
        if a["min"] is not None:
            y = np.maximum(y, y.dtype.type(a["min"]))
        if a["max"] is not None:
            y = np.minimum(y, y.dtype.type(a["max"]))
        return y
    if op == Op.MAXPOOL2D:
        return maxpool2d(args[0], a["kernel"], a["strides"], a["pads"], a["dilations"])
    if op == Op.AVGPOOL2D:
        return avgpool2d(args[0], a["kernel"], a["strides"], a["pads"], a["count_include_pad"])
    if op == Op.GLOBAL_AVGPOOL:
        return args[0].astype(np.float64).mean(axis=(2, 3), keepdims=True)
    if op == Op.FLATTEN:
        x = args[0]
        return x.reshape(int(np.prod(x.shape[:a["axis"]])), int(np.prod(x.shape[a["axis"]:])))
    if op == Op.RESHAPE:
        return args[0].reshape(node_shape)
    if op == Op.CONCAT:
        return np.concatenate(args, axis=a["axis"])
    if op == Op.PAD:
        x = args[0]
        r = x.ndim
        widths = [(a["pads"][i], a["pads"][i + r]) for i in range(r)]
        return np.pad(x, widths, constant_values=x.dtype.type(a["value"]))
    raise ModelError(f"node {node.name!r}: op {op!r} has no float implementation")


def run_float(graph: Graph, inputs: Mapping[str, Any], *, observe: Observer | None = None,
              keep_all: bool = False) -> dict[str, np.ndarray]:
    """Execute ``graph`` on ``inputs`` (one array per graph input) and return its outputs.

    Every value has the dtype and shape of its TensorInfo (batch dimension excepted: inputs
    with another leading dimension run the graph re-inferred for that batch). ``observe``
    is called with ``(tensor_name, value)`` for each graph input, then each node output in
    graph order. With ``keep_all`` the result holds every input and node output, not only
    the graph outputs. HwsimError on a missing, extra or mis-shaped input.
    """
    names = set(inputs)
    missing = [t for t in graph.inputs if t not in names]
    extra = sorted(names - set(graph.inputs))
    if missing or extra:
        raise HwsimError(f"graph {graph.name!r}: inputs must be exactly "
                         f"{list(graph.inputs)}; missing {missing}, unexpected {extra}")
    arrays = {t: np.asarray(inputs[t]) for t in graph.inputs}
    batches = {a.shape[0] for a in arrays.values() if a.ndim}
    if len(batches) == 1:
        (batch,) = batches
        graph = with_batch(graph, batch)
    env: dict[str, np.ndarray] = {}
    for t in graph.inputs:
        info, arr = graph.tensors[t], arrays[t]
        if arr.shape != info.shape:
            raise HwsimError(f"graph {graph.name!r}: input {t!r} must have shape {info.shape}, "
                             f"got {arr.shape}")
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise HwsimError(f"graph {graph.name!r}: input {t!r} must be numeric, "
                             f"got {arr.dtype}")
        env[t] = arr.astype(info.dtype, copy=False)
        if observe is not None:
            observe(t, env[t])
    env.update(graph.initializers)
    last_use: dict[str, int] = {}
    for i, node in enumerate(graph.nodes):
        for t in node.inputs:
            last_use[t] = i
    keep = set(graph.outputs) | set(graph.initializers)
    for i, node in enumerate(graph.nodes):
        out = node.outputs[0]
        info = graph.tensors[out]
        value = np.asarray(_node_value(node, [env[t] for t in node.inputs], info.shape),
                           dtype=info.dtype, order="C")
        env[out] = value
        if observe is not None:
            observe(out, value)
        if not keep_all:
            for t in set(node.inputs):
                if last_use[t] == i and t not in keep:
                    del env[t]
    if keep_all:
        return {t: v for t, v in env.items() if t not in graph.initializers}
    return {t: env[t] for t in graph.outputs}
