"""Activation fusion planning (specs/compiler.md §3.2)."""

from __future__ import annotations

import math

import numpy as np

from hwsim.compiler.fold import activation_range, plan_fusion
from hwsim.ir.builder import GraphBuilder

W = np.ones((2, 2, 1, 1), np.float32)


def test_single_consumer_activation_is_fused() -> None:
    b = GraphBuilder("f")
    x = b.input("x", (1, 2, 3, 3))
    b.relu6(b.conv2d(x, W, name="c"), name="r")
    g = b.build("r.out")
    fused = plan_fusion(g)
    assert list(fused) == ["c"] and fused["c"].name == "r"
    assert activation_range(fused["c"]) == (0.0, 6.0)


def test_not_fused_when_output_is_shared_or_a_graph_output() -> None:
    """A producer output read by two nodes, or itself a graph output, keeps its activation
    separate (it becomes an integer clamp node)."""
    b = GraphBuilder("f")
    x = b.input("x", (1, 2, 3, 3))
    c = b.conv2d(x, W, name="c")
    r = b.relu(c, name="r")
    s = b.add(c, r, name="s")
    g = b.build(s)
    assert plan_fusion(g) == {}
    b = GraphBuilder("f2")
    x = b.input("x", (1, 2, 3, 3))
    c = b.conv2d(x, W, name="c")
    r = b.relu(c, name="r")
    assert plan_fusion(b.build(c, r)) == {}


def test_clip_bounds_and_non_fusable_producer() -> None:
    b = GraphBuilder("f")
    x = b.input("x", (1, 2, 4, 4))
    p = b.maxpool2d(x, 2, name="p")
    r = b.clip(p, None, 3.0, name="r")
    g = b.build(r)
    assert plan_fusion(g) == {}
    assert activation_range(g.node("r")) == (-math.inf, 3.0)
