"""Op registry: canonical attributes and shape rules (specs/ir.md §2).

The shape rules are checked differentially against onnx's own shape inference on seeded
random window ops, and each rejected shape or attribute names the node and op.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto
from onnx import helper as oh

from hwsim.errors import ModelError
from hwsim.ir import OPS, Node, Op, TensorInfo, infer_node, normalize_attrs


def onnx_shape(op: str, in_shapes: list[tuple[int, ...]], attrs: dict[str, Any]
               ) -> tuple[int, ...]:
    names = [f"i{k}" for k in range(len(in_shapes))]
    graph = oh.make_graph(
        [oh.make_node(op, names, ["y"], **attrs)], "g",
        [oh.make_tensor_value_info(n, TensorProto.FLOAT, list(s))
         for n, s in zip(names, in_shapes, strict=False)],
        [oh.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = onnx.shape_inference.infer_shapes(
        oh.make_model(graph, opset_imports=[oh.make_opsetid("", 13)]), strict_mode=True)
    return tuple(d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim)


def infer(op: Op, in_shapes: list[tuple[int, ...]], attrs: dict[str, Any]) -> tuple[int, ...]:
    ins = [TensorInfo(f"i{k}", s) for k, s in enumerate(in_shapes)]
    node = Node("n", op, tuple(t.name for t in ins), ("y",), normalize_attrs("n", op, attrs))
    return infer_node(node, ins)[0].shape


@pytest.mark.parametrize("seed", range(40))
def test_window_shapes_match_onnx_shape_inference(seed: int) -> None:
    """§2 output-size rule == onnx shape inference for Conv, MaxPool and AveragePool."""
    rng = np.random.default_rng(seed)
    k = [int(v) for v in rng.integers(1, 5, 2)]
    s = [int(v) for v in rng.integers(1, 4, 2)]
    d = [int(v) for v in rng.integers(1, 3, 2)]
    pads = [int(rng.integers(0, k[i % 2])) for i in range(4)]
    h, w = (int(v) for v in rng.integers(d[0] * (k[0] - 1) + 1, 14, 2))
    w = max(w, d[1] * (k[1] - 1) + 1)
    groups = int(rng.choice([1, 3]))
    x = (2, 3 * groups, h, w)
    ours = infer(Op.CONV2D, [x, (6, 3, *k)],
                 {"strides": s, "pads": pads, "dilations": d, "groups": groups})
    theirs = onnx_shape("Conv", [x, (6, 3, *k)],
                        {"strides": s, "pads": pads, "dilations": d, "group": groups})
    assert ours == theirs
    assert infer(Op.MAXPOOL2D, [x], {"kernel": k, "strides": s, "pads": pads,
                                     "dilations": d}) == \
        onnx_shape("MaxPool", [x], {"kernel_shape": k, "strides": s, "pads": pads,
                                    "dilations": d})
    assert infer(Op.AVGPOOL2D, [x], {"kernel": k, "strides": s, "pads": pads}) == \
        onnx_shape("AveragePool", [x], {"kernel_shape": k, "strides": s, "pads": pads})


@pytest.mark.parametrize("op, onnx_op, shapes, attrs, onnx_attrs", [
    (Op.MATMUL, "MatMul", [(2, 1, 4, 5), (3, 5, 6)], {}, {}),
    (Op.GEMM, "Gemm", [(4, 5), (6, 5), (6,)], {"trans_b": True}, {"transB": 1}),
    (Op.GEMM, "Gemm", [(4, 5), (5, 6), (1, 6)], {}, {}),
    (Op.ADD, "Add", [(2, 1, 4), (3, 1)], {}, {}),
    (Op.GLOBAL_AVGPOOL, "GlobalAveragePool", [(2, 3, 5, 7)], {}, {}),
    (Op.FLATTEN, "Flatten", [(2, 3, 5, 7)], {"axis": 0}, {"axis": 0}),
    (Op.FLATTEN, "Flatten", [(2, 3, 5, 7)], {"axis": 4}, {"axis": 4}),
    (Op.CONCAT, "Concat", [(2, 3, 5), (2, 4, 5), (2, 1, 5)], {"axis": 1}, {"axis": 1}),
    (Op.RELU, "Relu", [(3, 2)], {}, {}),
])
def test_other_shapes_match_onnx_shape_inference(op: Op, onnx_op: str, shapes: list,
                                                 attrs: dict, onnx_attrs: dict) -> None:
    """§2.2–§2.12: shape rules == onnx shape inference."""
    assert infer(op, shapes, attrs) == onnx_shape(onnx_op, shapes, onnx_attrs)


def test_canonical_attributes() -> None:
    """§1: ints broadcast to pairs, pads expand to (top, left, bottom, right), defaults."""
    assert normalize_attrs("c", "conv2d", {"pads": (1, 2)}) == {
        "strides": (1, 1), "pads": (1, 2, 1, 2), "dilations": (1, 1), "groups": 1}
    assert normalize_attrs("p", "maxpool2d", {"kernel": 3}) == {
        "kernel": (3, 3), "strides": (3, 3), "pads": (0, 0, 0, 0), "dilations": (1, 1)}
    assert normalize_attrs("a", "avgpool2d", {"kernel": [2, 3], "count_include_pad": 1}) == {
        "kernel": (2, 3), "strides": (2, 3), "pads": (0, 0, 0, 0), "count_include_pad": True}
    assert normalize_attrs("c", "clip", {"min": 0}) == {"min": 0.0, "max": None}
    assert normalize_attrs("r", "reshape", {"shape": np.array([0, -1])}) == {"shape": (0, -1)}
    assert normalize_attrs("p", "pad", {"pads": [1, 0]}) == {"pads": (1, 0), "value": 0.0}
    assert {o.value for o in OPS} == {o.value for o in Op}


@pytest.mark.parametrize("op, attrs, pattern", [
    ("conv2d", {"stride": 1}, r"^node 'n' \(conv2d\): unknown attribute 'stride'; supported: "
                              r"strides, pads, dilations, groups$"),
    ("conv2d", {"strides": (1, 2, 3)},
     r"^node 'n' \(conv2d\): attribute 'strides' must have 2 values, got 3$"),
    ("conv2d", {"strides": 0}, r"^node 'n' \(conv2d\): attribute 'strides' values must be >= "
                               r"1, got \(0, 0\)$"),
    ("conv2d", {"pads": -1}, r"^node 'n' \(conv2d\): attribute 'pads' values must be >= 0, "
                             r"got \(-1, -1, -1, -1\)$"),
    ("conv2d", {"groups": 1.0}, r"^node 'n' \(conv2d\): attribute 'groups' must be an int, "
                                r"got 1\.0$"),
    ("maxpool2d", {}, r"^node 'n' \(maxpool2d\): attribute 'kernel' is required$"),
    ("clip", {"min": 2, "max": 1}, r"^node 'n' \(clip\): min \(2\.0\) must be <= max "
                                   r"\(1\.0\)$"),
    ("clip", {"min": float("nan")}, r"^node 'n' \(clip\): attribute 'min' must not be NaN$"),
    ("reshape", {"shape": (-1, -1)}, r"^node 'n' \(reshape\): attribute 'shape' \(-1, -1\): "
                                     r"entries must be >= -1 with at most one -1$"),
    ("pad", {"pads": (1, -1)}, r"^node 'n' \(pad\): attribute 'pads' \(1, -1\) must be "
                               r"non-negative$"),
    ("gemm", {"trans_b": "yes"}, r"^node 'n' \(gemm\): attribute 'trans_b' must be a bool, "
                                 r"got 'yes'$"),
    ("softmax", {}, r"^node 'n': unknown op 'softmax'; supported ops: conv2d, matmul, gemm, "
                    r"add, relu, clip, maxpool2d, avgpool2d, global_avgpool, flatten, "
                    r"reshape, concat, pad$"),
])
def test_bad_attributes_are_named(op: str, attrs: dict, pattern: str) -> None:
    """§1: a bad attribute raises ModelError naming node, op, attribute and expectation."""
    with pytest.raises(ModelError, match=pattern):
        normalize_attrs("n", op, attrs)


@pytest.mark.parametrize("op, shapes, attrs, pattern", [
    (Op.CONV2D, [(1, 4, 5, 5), (6, 2, 3, 3)], {"groups": 4},
     r"^node 'n' \(conv2d\): groups=4 must divide the input channels \(4\) and the output "
     r"channels \(6\)$"),
    (Op.CONV2D, [(1, 4, 5, 5), (6, 2, 3, 3)], {},
     r"^node 'n' \(conv2d\): weight 'i1' has 2 input channels per group, expected 4 \(input "
     r"channels 4 / groups 1\)$"),
    (Op.CONV2D, [(1, 4, 2, 5), (6, 4, 3, 3)], {},
     r"^node 'n' \(conv2d\): window of extent 3 does not fit the padded height size 2$"),
    (Op.CONV2D, [(1, 4, 5, 5), (6, 4, 3, 3), (4,)], {},
     r"^node 'n' \(conv2d\): bias 'i2' must have shape \(6,\), got \(4,\)$"),
    (Op.CONV2D, [(4, 5, 5), (6, 4, 3, 3)], {},
     r"^node 'n' \(conv2d\): input 'i0' must have rank 4, got shape \(4, 5, 5\)$"),
    (Op.MAXPOOL2D, [(1, 1, 4, 4)], {"kernel": 2, "pads": 2},
     r"^node 'n' \(maxpool2d\): pads \(2, 2, 2, 2\) must be smaller than the kernel "
     r"\(2, 2\)$"),
    (Op.GEMM, [(2, 5), (4, 5)], {},
     r"^node 'n' \(gemm\): input 'i0' has 5 features, weight 'i1' \(4, 5\) \(trans_b=False\) "
     r"expects 4$"),
    (Op.GEMM, [(2, 5), (5, 4), (2, 2)], {},
     r"^node 'n' \(gemm\): bias 'i2' of shape \(2, 2\) does not broadcast to the output "
     r"shape \(2, 4\)$"),
    (Op.MATMUL, [(2, 3), (4, 5)], {},
     r"^node 'n' \(matmul\): inner dimensions differ: 'i0' \(2, 3\) @ 'i1' \(4, 5\)$"),
    (Op.ADD, [(2, 3), (4,)], {},
     r"^node 'n' \(add\): shapes \(2, 3\) and \(4,\) do not broadcast$"),
    (Op.FLATTEN, [(2, 3)], {"axis": 3},
     r"^node 'n' \(flatten\): axis 3 out of range \[0, 2\] for input 'i0' \(2, 3\)"),
    (Op.RESHAPE, [(2, 3)], {"shape": (4, -1)},
     r"^node 'n' \(reshape\): cannot reshape \(2, 3\) to \(4, -1\)$"),
    (Op.CONCAT, [(2, 3), (3, 3)], {"axis": 1},
     r"^node 'n' \(concat\): input 'i1' \(3, 3\) does not match 'i0' \(2, 3\) outside "
     r"axis 1$"),
    (Op.PAD, [(2, 3)], {"pads": (1, 1)},
     r"^node 'n' \(pad\): attribute 'pads' needs 2 x rank = 4 values \(all begins, then all "
     r"ends\), got 2$"),
    (Op.RELU, [(2, 3), (2, 3)], {}, r"^node 'n' \(relu\): takes 1 inputs, got 2$"),
])
def test_bad_shapes_are_named(op: Op, shapes: list, attrs: dict, pattern: str) -> None:
    """§2: a shape the op cannot take raises ModelError naming node, op and tensors."""
    with pytest.raises(ModelError, match=pattern):
        infer(op, shapes, attrs)


def test_reshape_zero_and_minus_one() -> None:
    """§2.11: 0 copies the input dimension, -1 is inferred."""
    assert infer(Op.RESHAPE, [(2, 3, 4)], {"shape": (0, -1)}) == (2, 12)
    assert infer(Op.RESHAPE, [(2, 3, 4)], {"shape": (-1, 0, 2)}) == (4, 3, 2)


def test_mixed_dtypes_are_rejected() -> None:
    """§2: all inputs of a node share one dtype."""
    ins = [TensorInfo("a", (2,)), TensorInfo("b", (2,), "float64")]
    with pytest.raises(ModelError, match=r"^node 'n' \(add\): inputs have different dtypes "
                                         r"\['float32', 'float64'\]$"):
        infer_node(Node("n", "add", ("a", "b"), ("y",), {}), ins)


def test_non_canonical_attributes_are_rejected() -> None:
    """§1: a Node must carry canonical attributes (made by normalize_attrs)."""
    with pytest.raises(ModelError, match=r"^node 'n' \(conv2d\): attributes are not "
                                         r"canonical: got \{'groups': 1\}, expected .*"
                                         r"\(build nodes with normalize_attrs\)$"):
        infer_node(Node("n", "conv2d", ("x", "w"), ("y",), {"groups": 1}),
                   [TensorInfo("x", (1, 1, 3, 3)), TensorInfo("w", (1, 1, 1, 1))])
