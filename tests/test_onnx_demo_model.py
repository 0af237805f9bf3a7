"""The bundled digits model imports, folds its BatchNorms and keeps its accuracy
(specs/ir.md §6, §5; hwsim.data)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from hwsim.data import demo_model_path, load_demo_data
from hwsim.errors import HwsimError
from hwsim.frontends.onnx import load_onnx
from hwsim.reference.float_exec import run_float


def test_demo_data_shapes() -> None:
    """hwsim.data: test and calibration splits are float32 NCHW images with int64 labels."""
    x, y = load_demo_data()
    xc, yc = load_demo_data("calib")
    assert x.shape == (450, 1, 8, 8) and x.dtype == np.float32
    assert y.shape == (450,) and y.dtype == np.int64 and set(y.tolist()) == set(range(10))
    assert xc.shape == (256, 1, 8, 8) and xc.dtype == np.float32 and yc.dtype == np.int64
    with pytest.raises(HwsimError, match=r"^split must be one of test, calib, got 'train'$"):
        load_demo_data("train")


def test_demo_model_structure() -> None:
    """§6: opset 13 with BatchNormalization in the file; folded away in the IR; the IR has a
    depthwise conv, a residual add, pooling and a linear layer."""
    model = onnx.load(demo_model_path())
    assert model.opset_import[0].version == 13
    assert sum(n.op_type == "BatchNormalization" for n in model.graph.node) == 4
    g = load_onnx(demo_model_path())
    ops = [n.op for n in g.nodes]
    assert "batchnormalization" not in ops and ops.count("conv2d") == 4
    assert {"add", "maxpool2d", "global_avgpool", "flatten", "gemm", "relu"} <= set(ops)
    assert any(n.op == "conv2d" and n.attrs["groups"] == 8 for n in g.nodes)
    assert g.inputs == ("input",) and g.outputs == ("logits",)


def test_demo_model_matches_onnxruntime_and_is_accurate() -> None:
    """§5: folded-BN float IR == onnxruntime (1e-5 · max|ref|) on the test split; float
    accuracy on the held-out digits is at least 95%."""
    x, y = load_demo_data()
    g = load_onnx(demo_model_path())
    got = run_float(g, {"input": x})["logits"]
    sess = ort.InferenceSession(str(demo_model_path()), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {"input": x})[0]
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5 * float(np.abs(ref).max()))
    acc = float((got.argmax(axis=1) == y).mean())
    assert acc >= 0.95, acc
