"""specs/ir.md §8, compiler §8: QDQ patterns that ``torch.onnx.export`` writes import and run
bit for bit against ONNX Runtime.

* torch deduplicates equal initializers and reads the copy through an Identity node (for
  example the zero point of two QuantizeLinear nodes): an Identity of a constant is that
  constant.
* An op on codes that no QuantizeLinear follows (DequantizeLinear -> MaxPool -> Flatten ->
  MatMul) names a float tensor in the ONNX model: ``hwsim verify`` must not ask ORT for it as
  an integer intermediate (ORT refuses to load such a model).
"""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from hwsim.frontends.onnx_quant import load_quantized_onnx  # noqa: E402
from hwsim.verify_onnx import verify_quantized, with_intermediates  # noqa: E402


def _model() -> onnx.ModelProto:
    rng = np.random.default_rng(3)
    w = rng.integers(-63, 64, size=(16, 8)).astype(np.int8)
    inits = [
        numpy_helper.from_array(np.array(0.05, np.float32), "s_x"),
        numpy_helper.from_array(np.array(-3, np.int8), "z_x"),
        numpy_helper.from_array(w, "w_q"),
        numpy_helper.from_array(rng.uniform(0.001, 0.01, 8).astype(np.float32), "s_w"),
        numpy_helper.from_array(np.zeros(8, np.int8), "z_w"),
        numpy_helper.from_array(np.array(0.4, np.float32), "s_y"),
    ]
    nodes = [
        helper.make_node("Identity", ["z_x"], ["z_y"], name="shared_zp"),
        helper.make_node("QuantizeLinear", ["x", "s_x", "z_x"], ["x_q"], name="qx"),
        helper.make_node("DequantizeLinear", ["x_q", "s_x", "z_x"], ["x_dq"], name="dqx"),
        helper.make_node("MaxPool", ["x_dq"], ["pooled"], kernel_shape=[2, 2],
                         strides=[2, 2], name="pool"),
        helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten"),
        helper.make_node("DequantizeLinear", ["w_q", "s_w", "z_w"], ["w_dq"], axis=1,
                         name="dqw"),
        helper.make_node("MatMul", ["flat", "w_dq"], ["y"], name="mm"),
        helper.make_node("Relu", ["y"], ["y_r"], name="relu"),
        helper.make_node("QuantizeLinear", ["y_r", "s_y", "z_y"], ["y_q"], name="qy"),
        helper.make_node("DequantizeLinear", ["y_q", "s_y", "z_y"], ["out"], name="dqy"),
    ]
    graph = helper.make_graph(
        nodes, "torch_patterns",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 8])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_torch_export_patterns_import_and_match_ort():
    im = load_quantized_onnx(_model())
    assert im.qgraph.tensors["y_q"].zero_point == -3  # read through the Identity
    _, exposed = with_intermediates(im.model, im.qgraph)
    assert "y_q" in exposed and "pooled" not in exposed and "flat" not in exposed
    x = np.random.default_rng(4).normal(0, 2, (64, 1, 8, 8)).astype(np.float32)
    rep = verify_quantized(im, x)
    assert rep["pairs"]["onnxruntime_vs_golden"]["total"] == 64 * 8
    assert rep["pairs"]["onnxruntime_vs_golden"]["mismatches"] == 0
    assert rep["pairs"]["onnxruntime_vs_golden_intermediate"]["mismatches"] == 0
    assert rep["pairs"]["golden_vs_fakequant"]["mismatches"] == 0
    assert rep["ok"]
