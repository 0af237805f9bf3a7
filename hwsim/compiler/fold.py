"""Activation fusion planning (specs/compiler.md §3.2).

A ReLU or Clip whose input is produced by a conv2d / gemm / matmul / add node, and is read
by nothing else (and is not a graph output), is fused into that node: the integer node
writes the activation's output tensor and the activation becomes the clamp
[act_min, act_max] of its requantization (§8.6).
"""

from __future__ import annotations

import math

from hwsim.ir.graph import Graph, Node

#: Float-IR ops that can absorb a following activation.
FUSABLE_PRODUCERS = ("conv2d", "gemm", "matmul", "add")


def activation_range(node: Node) -> tuple[float, float]:
    """Real clamp [lo, hi] of a relu / clip node (±inf for an open bound)."""
    if node.op == "relu":
        return 0.0, math.inf
    lo = node.attrs.get("min")
    hi = node.attrs.get("max")
    return (-math.inf if lo is None else float(lo)), (math.inf if hi is None else float(hi))


def plan_fusion(graph: Graph) -> dict[str, Node]:
    """Map producer node name -> the activation node fused into it."""
    fused: dict[str, Node] = {}
    for node in graph.nodes:
        if node.op not in ("relu", "clip"):
            continue
        src = node.inputs[0]
        producer = graph.producer(src)
        if producer is None or producer.op not in FUSABLE_PRODUCERS:
            continue
        if src in graph.outputs or len(graph.consumers(src)) != 1 or producer.name in fused:
            continue
        fused[producer.name] = node
    return fused
