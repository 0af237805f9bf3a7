"""verify(graph): each invariant of specs/ir.md §3, broken one at a time."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest

from hwsim.errors import ModelError
from hwsim.ir import Graph, Node, TensorInfo, normalize_attrs, verify
from hwsim.ir.builder import GraphBuilder


def base() -> Graph:
    """x → conv2d(w, b) → relu → y (verified)."""
    b = GraphBuilder("g")
    x = b.input("x", (1, 2, 4, 4))
    c = b.conv2d(x, np.ones((3, 2, 3, 3), np.float32), np.zeros(3, np.float32), name="conv",
                 output="c")
    b.relu(c, name="relu", output="y")
    return b.build("y")


def replace(g: Graph, **kw: object) -> Graph:
    return dataclasses.replace(g, **kw)  # type: ignore[arg-type]


def with_tensor(g: Graph, info: TensorInfo) -> Graph:
    return replace(g, tensors={**g.tensors, info.name: info})


CONV_ATTRS = normalize_attrs("conv", "conv2d", {})

BROKEN: list[tuple[str, Callable[[Graph], Graph], str]] = [
    ("dup_input", lambda g: replace(g, inputs=("x", "x")),
     r"^graph 'g': input 'x' is listed twice$"),
    ("undeclared_output", lambda g: replace(g, outputs=("q",)),
     r"^graph 'g': output 'q' has no TensorInfo$"),
    ("no_outputs", lambda g: replace(g, outputs=()), r"^graph 'g': has no outputs$"),
    ("misnamed_info", lambda g: replace(g, tensors={**g.tensors, "y": TensorInfo("z", (1,))}),
     r"^graph 'g': tensors\['y'\] must be a TensorInfo named 'y'$"),
    ("init_is_input", lambda g: replace(g, initializers={
        **g.initializers, "x": np.zeros((1, 2, 4, 4), np.float32)}),
     r"^graph 'g': tensor 'x' is both a graph input and an initializer$"),
    ("init_shape", lambda g: replace(g, initializers={
        **g.initializers, "conv.bias": np.zeros(4, np.float32)}),
     r"^graph 'g': initializer 'conv\.bias' is float32\[4\] but its TensorInfo says "
     r"TensorInfo\(name='conv\.bias', shape=\(3,\), dtype='float32'\)$"),
    ("dup_node_name", lambda g: replace(g, nodes=(g.nodes[0], dataclasses.replace(
        g.nodes[1], name="conv"))), r"^graph 'g': node name 'conv' is used twice$"),
    ("unknown_op", lambda g: replace(g, nodes=(g.nodes[0], dataclasses.replace(
        g.nodes[1], op="gelu"))),
     r"^node 'relu': unknown op 'gelu'; supported ops: conv2d, .*, pad$"),
    ("not_topological", lambda g: replace(g, nodes=(g.nodes[1], g.nodes[0])),
     r"^graph 'g': node 'relu' \(relu\): input 'c' is written by a later node: nodes are not "
     r"in topological order$"),
    ("undefined_input", lambda g: replace(g, nodes=(g.nodes[0], Node(
        "relu", "relu", ("ghost",), ("y",), {}))),
     r"^graph 'g': node 'relu' \(relu\): input 'ghost' is not a graph input, an initializer "
     r"or the output of any node$"),
    ("dynamic_weight", lambda g: with_tensor(replace(g, inputs=("x", "w2"), nodes=(Node(
        "conv", "conv2d", ("x", "w2", "conv.bias"), ("c",), CONV_ATTRS), g.nodes[1])),
        TensorInfo("w2", (3, 2, 3, 3))),
     r"^graph 'g': node 'conv' \(conv2d\): input 1 \('w2'\) must be an initializer "
     r"\(constant weights and biases only\)$"),
    ("wrong_recorded_shape", lambda g: with_tensor(g, TensorInfo("y", (1, 3, 2, 3))),
     r"^graph 'g': node 'relu' \(relu\): output 'y' is recorded as TensorInfo\(name='y', "
     r"shape=\(1, 3, 2, 3\), dtype='float32'\) but shape inference gives "
     r"TensorInfo\(name='y', shape=\(1, 3, 2, 2\), dtype='float32'\)$"),
    ("written_twice", lambda g: replace(g, nodes=(g.nodes[0], Node(
        "relu", "relu", ("c",), ("c",), {}))),
     r"^graph 'g': node 'relu' \(relu\): output 'c' is already defined$"),
    ("output_not_produced", lambda g: with_tensor(replace(g, outputs=("y", "lost")),
                                                  TensorInfo("lost", (1,))),
     r"^graph 'g': output 'lost' is not produced by any node$"),
    ("stray_info", lambda g: with_tensor(g, TensorInfo("stray", (2,))),
     r"^graph 'g': tensor 'stray' has a TensorInfo but is neither a graph input, an "
     r"initializer nor a node output$"),
    ("bad_arity", lambda g: replace(g, nodes=(g.nodes[0], Node(
        "relu", "relu", ("c", "x"), ("y",), {}))),
     r"^node 'relu' \(relu\): takes 1 inputs, got 2$"),
]


def test_base_graph_verifies() -> None:
    """§3: the unbroken graph passes."""
    verify(base())


@pytest.mark.parametrize("breaker, pattern", [pytest.param(f, p, id=i) for i, f, p in BROKEN])
def test_each_broken_invariant_is_named(breaker: Callable[[Graph], Graph], pattern: str
                                        ) -> None:
    """§3: every invariant violation raises ModelError naming the node/op/tensor."""
    with pytest.raises(ModelError, match=pattern):
        verify(breaker(base()))
