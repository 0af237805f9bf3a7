"""IR value types, make_graph and with_batch (specs/ir.md §1)."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.errors import ModelError
from hwsim.ir import Graph, Node, TensorInfo, make_graph, normalize_attrs, with_batch
from hwsim.ir.builder import GraphBuilder


@pytest.mark.parametrize("kwargs, pattern", [
    ({"name": "", "shape": (1,)}, r"^TensorInfo\.name must be a non-empty string, got ''$"),
    ({"name": "t", "shape": (1, 0)},
     r"^tensor 't': shape must hold positive ints, got \(1, 0\)$"),
    ({"name": "t", "shape": (2.0,)},
     r"^tensor 't': shape must hold positive ints, got \(2\.0,\)$"),
    ({"name": "t", "shape": "ab"},
     r"^tensor 't': shape must be a sequence of ints, got 'ab'$"),
    ({"name": "t", "shape": (1,), "dtype": "int8"},
     r"^tensor 't': dtype must be one of float32, float64, got 'int8'$"),
])
def test_tensorinfo_rejects_bad_fields(kwargs: dict, pattern: str) -> None:
    """§1: TensorInfo validates name, shape and dtype with messages naming the tensor."""
    with pytest.raises(ModelError, match=pattern):
        TensorInfo(**kwargs)


def test_tensorinfo_normalises_shape() -> None:
    """§1: numpy ints become a tuple of int; rank and size follow."""
    t = TensorInfo("t", [np.int64(2), 3, 4])
    assert t.shape == (2, 3, 4) and type(t.shape[0]) is int
    assert (t.rank, t.size, t.dtype) == (3, 24, "float32")
    assert TensorInfo("s", ()).size == 1


def test_node_rejects_bad_tensor_lists() -> None:
    """§1: inputs/outputs are sequences of non-empty names (a bare str is an error)."""
    with pytest.raises(ModelError, match=r"^node 'n' \(relu\): inputs must be a sequence of "
                                         r"non-empty tensor names, got 'x'$"):
        Node("n", "relu", "x", ("y",))
    with pytest.raises(ModelError, match=r"^node 'n' \(relu\): outputs must be a sequence of "
                                         r"non-empty tensor names, got \('',\)$"):
        Node("n", "relu", ("x",), ("",))


def _small() -> Graph:
    w = np.arange(8, dtype=np.float32).reshape(2, 1, 2, 2)
    nodes = [Node("c", "conv2d", ("x", "w"), ("y",), normalize_attrs("c", "conv2d", {})),
             Node("r", "relu", ("y",), ("z",), {})]
    return make_graph(nodes, [TensorInfo("x", (1, 1, 3, 3))], ["z"], {"w": w}, "small")


def test_make_graph_infers_every_tensor() -> None:
    """§1: make_graph records a TensorInfo for inputs, initializers and node outputs."""
    g = _small()
    assert g.tensors == {"x": TensorInfo("x", (1, 1, 3, 3)), "w": TensorInfo("w", (2, 1, 2, 2)),
                         "y": TensorInfo("y", (1, 2, 2, 2)), "z": TensorInfo("z", (1, 2, 2, 2))}
    assert g.producer("z") is g.nodes[1] and g.producer("x") is None
    assert g.consumers("y") == [g.nodes[1]] and g.node("c").op == "conv2d"
    assert g.is_constant("w") and not g.is_constant("x")
    with pytest.raises(ModelError, match=r"^graph 'small' has no node 'q'$"):
        g.node("q")


def test_make_graph_names_an_undefined_input() -> None:
    """§1/§3.4: a node reading an unknown tensor is named with that tensor."""
    nodes = [Node("r", "relu", ("nope",), ("z",), {})]
    with pytest.raises(ModelError, match=r"^node 'r' \(relu\): input 'nope' is not a graph "
                                         r"input, an initializer or the output of an earlier "
                                         r"node$"):
        make_graph(nodes, [TensorInfo("x", (1, 2))], ["z"], {})


def test_make_graph_rejects_integer_initializers() -> None:
    """§1: initializers are float32/float64 arrays."""
    with pytest.raises(ModelError, match=r"^initializer 'k': dtype must be one of float32, "
                                         r"float64, got int64$"):
        make_graph([], [TensorInfo("x", (1,))], ["x"], {"k": np.zeros(2, np.int64)})


def test_graph_equality_compares_initializer_values() -> None:
    """§1: two graphs are equal when structure, infos and initializer bytes are equal."""
    g1, g2 = _small(), _small()
    assert g1 == g2
    changed = dict(g2.initializers)
    changed["w"] = changed["w"] + 1
    g3 = Graph(g2.nodes, g2.inputs, g2.outputs, changed, g2.tensors, g2.name)
    assert g1 != g3


def test_with_batch_reinfers_shapes() -> None:
    """§1: with_batch changes the batch dimension of every activation, nothing else."""
    b = GraphBuilder()
    x = b.input("x", (1, 2, 4, 4))
    y = b.linear(b.reshape(b.relu(x), (0, -1)), np.ones((3, 32), np.float32))
    g = b.build(y)
    g7 = with_batch(g, 7)
    assert g7.tensors[y].shape == (7, 3) and g7.tensors["x"].shape == (7, 2, 4, 4)
    assert g7.tensors["gemm_0.weight"] == g.tensors["gemm_0.weight"]
    assert with_batch(g, 1) is g
    with pytest.raises(ModelError, match=r"^batch must be a positive int, got 0$"):
        with_batch(g, 0)


def test_with_batch_fails_on_reshape_with_fixed_batch() -> None:
    """§1: a reshape that hard-codes the batch dimension cannot be re-batched."""
    b = GraphBuilder("fixed")
    y = b.reshape(b.input("x", (1, 2, 3)), (1, 6), name="rs")
    g = b.build(y)
    with pytest.raises(ModelError, match=r"^node 'rs' \(reshape\): cannot reshape 'x' "
                                         r"\(2, 2, 3\) \(12 elements\) to \(1, 6\)$"):
        with_batch(g, 2)
