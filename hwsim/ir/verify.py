"""``verify(graph)``: every invariant of the float IR, checked (specs/ir.md §3).

Run after the frontend and after every pass. The first violated invariant raises
:class:`~hwsim.errors.ModelError` whose message names the graph and the offending node
(with its op) or tensor.
"""

from __future__ import annotations

import numpy as np

from hwsim.errors import ModelError
from hwsim.ir.graph import Graph, TensorInfo
from hwsim.ir.ops import infer_node, op_def


def verify(graph: Graph) -> None:
    """Raise ModelError unless ``graph`` satisfies specs/ir.md §3.

    Checked, in this order: graph inputs and outputs are unique and declared; initializers
    are not graph inputs and their arrays match their TensorInfo; node names are unique;
    every op is known; every tensor is written at most once; the nodes are in topological
    order (each input is a graph input, an initializer or the output of an earlier node);
    the inputs the op requires constant (conv2d / gemm weight and bias) are initializers;
    arity, canonical attributes and shape inference agree with the recorded TensorInfo of
    every output; every graph output is defined; no TensorInfo is left undefined.
    """
    g = f"graph {graph.name!r}"
    for kind, names in (("input", graph.inputs), ("output", graph.outputs)):
        seen: set[str] = set()
        for t in names:
            if t in seen:
                raise ModelError(f"{g}: {kind} {t!r} is listed twice")
            seen.add(t)
            if t not in graph.tensors:
                raise ModelError(f"{g}: {kind} {t!r} has no TensorInfo")
    if not graph.outputs:
        raise ModelError(f"{g}: has no outputs")
    for name, info in graph.tensors.items():
        if not isinstance(info, TensorInfo) or info.name != name:
            raise ModelError(f"{g}: tensors[{name!r}] must be a TensorInfo named {name!r}")
    defined: set[str] = set(graph.inputs)
    for name, arr in graph.initializers.items():
        if name in defined:
            raise ModelError(f"{g}: tensor {name!r} is both a graph input and an initializer")
        if not isinstance(arr, np.ndarray):
            raise ModelError(f"{g}: initializer {name!r} must be a numpy array")
        info = graph.tensors.get(name)
        if info is None or info.shape != arr.shape or info.dtype != arr.dtype.name:
            raise ModelError(f"{g}: initializer {name!r} is {arr.dtype.name}{list(arr.shape)} "
                             f"but its TensorInfo says {info}")
        defined.add(name)
    node_names: set[str] = set()
    for node in graph.nodes:
        where = f"{g}: node {node.name!r} ({node.op})"
        if node.name in node_names:
            raise ModelError(f"{g}: node name {node.name!r} is used twice")
        node_names.add(node.name)
        d = op_def(node.name, node.op)
        for i, t in enumerate(node.inputs):
            if t not in defined:
                later = any(t in n.outputs for n in graph.nodes)
                why = ("is written by a later node: nodes are not in topological order"
                       if later else
                       "is not a graph input, an initializer or the output of any node")
                raise ModelError(f"{where}: input {t!r} {why}")
            if i in d.const_inputs and t not in graph.initializers:
                raise ModelError(f"{where}: input {i} ({t!r}) must be an initializer "
                                 "(constant weights and biases only)")
        infos = infer_node(node, [graph.tensors[t] for t in node.inputs])
        for info in infos:
            if info.name in defined:
                raise ModelError(f"{where}: output {info.name!r} is already defined")
            recorded = graph.tensors.get(info.name)
            if recorded != info:
                raise ModelError(f"{where}: output {info.name!r} is recorded as {recorded} "
                                 f"but shape inference gives {info}")
            defined.add(info.name)
    for t in graph.outputs:
        if t not in defined:
            raise ModelError(f"{g}: output {t!r} is not produced by any node")
    extra = sorted(set(graph.tensors) - defined)
    if extra:
        raise ModelError(f"{g}: tensor {extra[0]!r} has a TensorInfo but is neither a graph "
                         "input, an initializer nor a node output")
