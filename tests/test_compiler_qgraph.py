"""The integer graph data model (specs/compiler.md §2): validation and verify_qgraph."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hwsim.compiler.qgraph import QNode, TensorQ, quantize_feeds, verify_qgraph
from hwsim.compiler.quantize import quantize_static
from hwsim.errors import ConfigError, ModelError
from hwsim.ir.builder import GraphBuilder

RNG = np.random.default_rng(4)
X = RNG.normal(size=(4, 2, 5, 5)).astype(np.float32)


@pytest.fixture(scope="module")
def qg():
    b = GraphBuilder("q")
    x = b.input("x", (1, 2, 5, 5))
    g = b.build(b.relu(b.conv2d(x, RNG.normal(size=(3, 2, 3, 3)).astype(np.float32),
                                None, pads=1, name="conv")))
    return quantize_static(g, [{"x": X}])


def test_tensorq_validation() -> None:
    with pytest.raises(ConfigError, match=r"tensor 't': zero_point 200 outside \[-128, 127\]"):
        TensorQ("t", "int8", 0.1, 200)
    with pytest.raises(ConfigError, match="tensor 't': scale must be > 0"):
        TensorQ("t", "uint8", -1.0, 0)
    with pytest.raises(ConfigError, match="activation dtype: expected one of"):
        TensorQ("t", "int3", 0.1, 0)
    assert (TensorQ("t", "uint8", 0.1, 3).qmin, TensorQ("t", "uint8", 0.1, 3).qmax) == (0, 255)


def test_unknown_op_and_graph_fields() -> None:
    with pytest.raises(ModelError, match="node 'n': unknown integer op 'softmax'"):
        QNode("n", "softmax", ("x",), "y")


def test_verify_qgraph_names_offending_node(qg) -> None:
    """§2: structural errors name the node and what is wrong."""
    node = qg.nodes[0]
    bad_bias = dataclasses.replace(node, arrays={**node.arrays,
                                                 "bias": node.arrays["bias"].astype(np.int64)})
    with pytest.raises(ModelError, match=r"node 'conv' \(conv\): bias must be int32"):
        verify_qgraph(qg.replace(nodes=(bad_bias,)))
    short = dataclasses.replace(node, arrays={**node.arrays,
                                              "weight_scale": node.arrays["weight_scale"][:2]})
    with pytest.raises(ModelError, match=r"node 'conv' \(conv\): .*disagree on the number"):
        verify_qgraph(qg.replace(nodes=(short,)))
    no_req = dataclasses.replace(node, requant={})
    with pytest.raises(ModelError, match=r"node 'conv' \(conv\): missing requant"):
        verify_qgraph(qg.replace(nodes=(no_req,)))
    dangling = dataclasses.replace(node, inputs=("nope",))
    with pytest.raises(ModelError, match=r"node 'conv' \(conv\): input 'nope' is not produced"):
        verify_qgraph(qg.replace(nodes=(dangling,)))
    with pytest.raises(ModelError, match="duplicate node name"):
        verify_qgraph(qg.replace(nodes=(node, dataclasses.replace(node, output="o2")),
                                 tensors={**qg.tensors, "o2": qg.tensors[node.output]}))
    shared = QNode("mp", "maxpool", (node.output,), "mp.out",
                   {"kernel_shape": (2, 2), "strides": (2, 2), "pads": (0, 0, 0, 0),
                    "dilations": (1, 1)})
    tensors = {**qg.tensors, "mp.out": TensorQ("mp.out", "int8", 0.5, 3)}
    with pytest.raises(ModelError, match=r"node 'mp' \(maxpool\): output 'mp.out' must share"):
        verify_qgraph(qg.replace(nodes=(node, shared), tensors=tensors))
    with pytest.raises(ModelError, match="graph output 'zz' is not produced"):
        verify_qgraph(qg.replace(outputs=("zz",)))


def test_quantize_feeds(qg) -> None:
    """Float feeds are quantized with the input qparams; integer feeds are range-checked."""
    codes = quantize_feeds(qg, {"x": X})
    tq = qg.tensors["x"]
    np.testing.assert_array_equal(
        codes["x"], np.clip(np.rint(X / np.float32(tq.scale)) + tq.zero_point, -128, 127))
    assert quantize_feeds(qg, {"x": codes["x"]})["x"].dtype == np.int64
    with pytest.raises(ModelError, match=r"input 'x': integer codes outside \[-128, 127\]"):
        quantize_feeds(qg, {"x": codes["x"] + 1000})
    with pytest.raises(ModelError, match="missing input 'x'"):
        quantize_feeds(qg, {})
    with pytest.raises(ModelError, match="unknown input 'y'"):
        quantize_feeds(qg, {"x": X, "y": X})
