"""GraphBuilder (specs/ir.md §4): the same model built in code and imported from ONNX gives
equal graphs (differential), and a failed call leaves the builder unchanged."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto
from onnx import helper as oh
from onnx import numpy_helper as onh

from hwsim.errors import ModelError
from hwsim.frontends.onnx import load_onnx
from hwsim.ir.builder import GraphBuilder
from hwsim.reference.float_exec import run_float


def weights(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def r(*s: int) -> np.ndarray:
        return rng.standard_normal(s).astype(np.float32)

    return {"c1.weight": r(4, 1, 3, 3), "c1.bias": r(4), "dw.weight": r(4, 1, 3, 3),
            "fc.weight": r(10, 8), "fc.bias": r(10), "mm.in1": r(10, 3)}


def built(w: dict[str, np.ndarray]) -> object:
    b = GraphBuilder("net")
    x = b.input("x", (1, 1, 8, 8))
    a = b.relu(b.conv2d(x, w["c1.weight"], w["c1.bias"], pads=1, name="c1", output="a"),
               name="r1", output="ar")
    d = b.relu6(b.depthwise_conv2d(a, w["dw.weight"], pads=(1, 1), strides=2, name="dw",
                                   output="d"), name="r6", output="d6")
    m = b.maxpool2d(ar := a, 2, name="mp", output="m")
    s = b.add(d, m, name="add", output="s")
    p = b.avgpool2d(b.pad(s, (0, 0, 1, 1, 0, 0, 1, 1), 0.0, name="pad", output="sp"), 3, 2,
                    pads=1, count_include_pad=True, name="ap", output="p")
    c = b.concat([p, p], axis=1, name="cat", output="c")
    f = b.flatten(b.global_avgpool(c, name="gap", output="g"), name="fl", output="f")
    y = b.linear(f, w["fc.weight"], w["fc.bias"], name="fc", output="y")
    z = b.matmul(b.reshape(y, (0, 10), name="rs", output="yr"), w["mm.in1"], name="mm",
                 output="z")
    assert ar == a
    return b.build(z, y)


def onnx_model(w: dict[str, np.ndarray]) -> onnx.ModelProto:
    n = oh.make_node
    nodes = [
        n("Conv", ["x", "c1.weight", "c1.bias"], ["a"], name="c1", pads=[1, 1, 1, 1]),
        n("Relu", ["a"], ["ar"], name="r1"),
        n("Conv", ["ar", "dw.weight"], ["d"], name="dw", pads=[1, 1, 1, 1], strides=[2, 2],
          group=4),
        n("Clip", ["d", "zero", "six"], ["d6"], name="r6"),
        n("MaxPool", ["ar"], ["m"], name="mp", kernel_shape=[2, 2], strides=[2, 2]),
        n("Add", ["d6", "m"], ["s"], name="add"),
        n("Pad", ["s", "pads"], ["sp"], name="pad"),
        n("AveragePool", ["sp"], ["p"], name="ap", kernel_shape=[3, 3], strides=[2, 2],
          pads=[1, 1, 1, 1], count_include_pad=1),
        n("Concat", ["p", "p"], ["c"], name="cat", axis=1),
        n("GlobalAveragePool", ["c"], ["g"], name="gap"),
        n("Flatten", ["g"], ["f"], name="fl"),
        n("Gemm", ["f", "fc.weight", "fc.bias"], ["y"], name="fc", transB=1),
        n("Reshape", ["y", "shape"], ["yr"], name="rs"),
        n("MatMul", ["yr", "mm.in1"], ["z"], name="mm"),
    ]
    inits = {**w, "zero": np.float32(0), "six": np.float32(6),
             "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64),
             "shape": np.array([0, 10], np.int64)}
    graph = oh.make_graph(
        nodes, "net", [oh.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
        [oh.make_tensor_value_info("z", TensorProto.FLOAT, [1, 3]),
         oh.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        [onh.from_array(v, k) for k, v in inits.items()])
    return oh.make_model(graph, opset_imports=[oh.make_opsetid("", 13)])


@pytest.mark.parametrize("seed", range(3))
def test_builder_equals_onnx_import(seed: int) -> None:
    """§4 == §6: builder graph equals the imported ONNX graph; outputs bit-identical."""
    w = weights(seed)
    g_built, g_onnx = built(w), load_onnx(onnx_model(w))
    assert g_built == g_onnx
    x = np.random.default_rng(seed).standard_normal((2, 1, 8, 8)).astype(np.float32)
    r1, r2 = run_float(g_built, {"x": x}), run_float(g_onnx, {"x": x})
    for t in ("y", "z"):
        np.testing.assert_array_equal(r1[t], r2[t])


def test_failed_call_leaves_builder_unchanged() -> None:
    """§4: a rejected node adds no node, tensor or initializer."""
    b = GraphBuilder("b")
    x = b.input("x", (1, 2, 4, 4))
    with pytest.raises(ModelError, match=r"^node 'bad' \(conv2d\): weight 'bad\.weight' has "
                                         r"3 input channels per group, expected 2"):
        b.conv2d(x, np.ones((1, 3, 1, 1), np.float32), name="bad")
    y = b.conv2d(x, np.ones((1, 2, 1, 1), np.float32), name="bad")
    g = b.build(y)
    assert sorted(g.initializers) == ["bad.weight"] and len(g.nodes) == 1


@pytest.mark.parametrize("action, pattern", [
    (lambda b, x: b.relu("nope"), r"^graph 'b': node 'relu_0': in0 'nope' is not defined$"),
    (lambda b, x: b.input("x", (1,)), r"^graph 'b': tensor 'x' is already defined$"),
    (lambda b, x: b.build(), r"^graph 'b': build\(\) needs at least one output$"),
    (lambda b, x: b.build("q"), r"^graph 'b': output 'q' is not defined$"),
    (lambda b, x: b.relu(b.relu(x, name="r"), name="r"),
     r"^graph 'b': node name 'r' is used twice$"),
    (lambda b, x: b.add_node("conv2d", [x, None, np.ones(2, np.float32)]),
     r"^graph 'b': node 'conv2d_0': only trailing inputs may be omitted$"),
])
def test_builder_errors(action: object, pattern: str) -> None:
    """§4: builder misuse raises ModelError naming the graph, node or tensor."""
    b = GraphBuilder("b")
    x = b.input("x", (1, 2, 4, 4))
    with pytest.raises(ModelError, match=pattern):
        action(b, x)  # type: ignore[operator]
