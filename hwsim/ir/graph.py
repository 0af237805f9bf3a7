"""The float graph: typed tensors and nodes (specs/ir.md §1).

A :class:`Graph` is a tuple of :class:`Node` in topological order over named tensors. Every
tensor the graph mentions — graph inputs, initializers (constant weights) and node outputs —
has exactly one :class:`TensorInfo` in ``Graph.tensors`` giving its static shape and dtype.
Layout is NCHW with the batch dimension first. Node attributes are canonical: every
attribute of the op is present with its normalised value (see :mod:`hwsim.ir.ops`), so a
pass can read ``node.attrs["strides"]`` without defaults.

These types only hold data. :func:`hwsim.ir.verify` checks every invariant and names the
offending node, op or tensor; :func:`make_graph` builds a graph from nodes by running shape
inference, then verifies it. Passes that produce a new graph should build it with
:func:`make_graph` (or call ``verify``) so the invariants hold after every pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwsim.errors import ModelError

#: dtypes a tensor may have (numpy names).
DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class TensorInfo:
    """A named tensor of static ``shape`` (tuple of positive ints) and numpy ``dtype`` name."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ModelError(f"TensorInfo.name must be a non-empty string, got {self.name!r}")
        try:
            shape = tuple(int(d) for d in self.shape)
        except (TypeError, ValueError):
            raise ModelError(
                f"tensor {self.name!r}: shape must be a sequence of ints, got {self.shape!r}"
            ) from None
        if any(d < 1 for d in shape) or any(
            isinstance(d, (bool, float)) for d in self.shape
        ):
            raise ModelError(
                f"tensor {self.name!r}: shape must hold positive ints, got {self.shape!r}"
            )
        object.__setattr__(self, "shape", shape)
        if self.dtype not in DTYPES:
            raise ModelError(
                f"tensor {self.name!r}: dtype must be one of {', '.join(DTYPES)}, "
                f"got {self.dtype!r}"
            )

    @property
    def rank(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """Number of elements."""
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass(frozen=True)
class Node:
    """One operation: ``op`` (a name in :data:`hwsim.ir.ops.OPS`) reading ``inputs`` and
    writing ``outputs`` (tensor names), with canonical ``attrs`` (see :mod:`hwsim.ir.ops`).

    ``name`` identifies the node in error messages and in the compiler's provenance; it is
    unique within a graph.
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ModelError(f"Node.name must be a non-empty string, got {self.name!r}")
        object.__setattr__(self, "op", str(self.op))
        for fld in ("inputs", "outputs"):
            value = getattr(self, fld)
            if isinstance(value, str) or not all(isinstance(v, str) and v for v in value):
                raise ModelError(
                    f"node {self.name!r} ({self.op}): {fld} must be a sequence of non-empty "
                    f"tensor names, got {value!r}"
                )
            object.__setattr__(self, fld, tuple(value))
        object.__setattr__(self, "attrs", dict(self.attrs))

    __hash__ = None  # type: ignore[assignment]  # attrs is a dict


@dataclass(frozen=True)
class Graph:
    """A float model: ``nodes`` in topological order, graph ``inputs`` / ``outputs`` (tensor
    names), ``initializers`` (constant arrays by tensor name) and ``tensors`` (a
    :class:`TensorInfo` for every tensor: inputs, initializers and node outputs).
    """

    nodes: tuple[Node, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    initializers: Mapping[str, np.ndarray]
    tensors: Mapping[str, TensorInfo]
    name: str = "graph"

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", tuple(self.nodes))
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        object.__setattr__(self, "initializers", dict(self.initializers))
        object.__setattr__(self, "tensors", dict(self.tensors))

    __hash__ = None  # type: ignore[assignment]  # dict fields

    def node(self, name: str) -> Node:
        """The node called ``name`` (ModelError if there is none)."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise ModelError(f"graph {self.name!r} has no node {name!r}")

    def producer(self, tensor: str) -> Node | None:
        """The node writing ``tensor``, or None for graph inputs and initializers."""
        for n in self.nodes:
            if tensor in n.outputs:
                return n
        return None

    def consumers(self, tensor: str) -> list[Node]:
        """The nodes reading ``tensor``, in graph order."""
        return [n for n in self.nodes if tensor in n.inputs]

    def is_constant(self, tensor: str) -> bool:
        """True when ``tensor`` is an initializer."""
        return tensor in self.initializers

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        return (
            self.nodes == other.nodes
            and self.inputs == other.inputs
            and self.outputs == other.outputs
            and self.tensors == other.tensors
            and self.initializers.keys() == other.initializers.keys()
            and all(
                self.initializers[k].dtype == other.initializers[k].dtype
                and np.array_equal(self.initializers[k], other.initializers[k])
                for k in self.initializers
            )
        )


def make_graph(
    nodes: Sequence[Node],
    inputs: Iterable[TensorInfo],
    outputs: Sequence[str],
    initializers: Mapping[str, np.ndarray],
    name: str = "graph",
) -> Graph:
    """Build a verified :class:`Graph`: run shape inference over ``nodes`` (which must be in
    topological order) starting from the ``inputs`` infos and the initializer arrays, then
    :func:`hwsim.ir.verify` the result. Raises ModelError naming the first offending node.
    """
    from hwsim.ir.ops import infer_node
    from hwsim.ir.verify import verify

    tensors: dict[str, TensorInfo] = {}
    input_names = []
    for info in inputs:
        tensors[info.name] = info
        input_names.append(info.name)
    for tname, arr in initializers.items():
        arr = np.asarray(arr)
        if arr.dtype.name not in DTYPES:
            raise ModelError(
                f"initializer {tname!r}: dtype must be one of {', '.join(DTYPES)}, "
                f"got {arr.dtype.name}"
            )
        tensors[tname] = TensorInfo(tname, arr.shape, arr.dtype.name)
    for node in nodes:
        missing = [t for t in node.inputs if t not in tensors]
        if missing:
            raise ModelError(
                f"node {node.name!r} ({node.op}): input {missing[0]!r} is not a graph input, "
                "an initializer or the output of an earlier node"
            )
        infos = infer_node(node, [tensors[t] for t in node.inputs])
        for info in infos:
            tensors[info.name] = info
    graph = Graph(tuple(nodes), tuple(input_names), tuple(outputs), dict(initializers),
                  tensors, name)
    verify(graph)
    return graph


def with_batch(graph: Graph, batch: int) -> Graph:
    """``graph`` with every graph input's leading (batch) dimension set to ``batch`` and all
    shapes re-inferred. Reshape nodes must keep the batch dimension symbolic (``0`` or
    ``-1`` in their ``shape``); a reshape that fixes it makes shape inference fail with a
    ModelError naming that node.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ModelError(f"batch must be a positive int, got {batch!r}")
    infos = []
    for t in graph.inputs:
        info = graph.tensors[t]
        if info.rank == 0:
            raise ModelError(f"graph {graph.name!r}: input {t!r} is a scalar and has no batch "
                             "dimension")
        infos.append(TensorInfo(t, (batch,) + info.shape[1:], info.dtype))
    if all(graph.tensors[i.name] == i for i in infos):
        return graph
    return make_graph(graph.nodes, infos, graph.outputs, graph.initializers, graph.name)
