"""Quantized ONNX import (specs/ir.md §8) run under ORT's profile vs ONNX Runtime, bit for bit.

Models are quantized inside the test by ``onnxruntime.quantization.quantize_static``
(default settings, full-range int8 weights): a small CNN (conv, depthwise conv, residual
add, maxpool, global average pool, gemm), an MLP and a branch model (concat of differing
qparams, LeakyRelu, Mul, average pooling), in QDQ and QOperator format, per-channel and
per-tensor weights, uint8 and int8 activations. Each is imported with its own qparams under
this machine's ORT profile (``host_ort_profile``: ``ort_cpu_avx2`` on AVX2 without VNNI,
whose u8s8 kernels saturate pairs of products, arithmetic §11.2.8), run by the golden model
on 200 seeded inputs quantized as ORT quantizes them (§11.2.5), and compared with
onnxruntime's outputs (tolerance 0), and on every intermediate tensor too (exposed as
extra graph outputs).
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)

from hwsim.cli import main
from hwsim.compiler.profiles import host_ort_profile
from hwsim.errors import ModelError
from hwsim.frontends.onnx_quant import is_quantized_onnx, load_quantized_onnx
from hwsim.reference.golden_exec import run_golden
from hwsim.verify_onnx import (
    float_to_codes,
    input_codes,
    ort_session,
    verify_quantized,
    with_intermediates,
)

N_INPUTS = 200


def _init(rng, name, shape, sd):
    return numpy_helper.from_array(rng.normal(0, sd, shape).astype(np.float32), name)


def cnn_model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    inits = [_init(rng, "w1", (8, 3, 3, 3), .3), _init(rng, "b1", (8,), .1),
             _init(rng, "wd", (8, 1, 3, 3), .3), _init(rng, "bd", (8,), .1),
             _init(rng, "wp", (8, 8, 1, 1), .3), _init(rng, "bp", (8,), .1),
             _init(rng, "wf", (10, 8), .3), _init(rng, "bf", (10,), .1)]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "wd", "bd"], ["c2"], pads=[1, 1, 1, 1], group=8,
                         name="dw"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "wp", "bp"], ["c3"], name="pw"),
        helper.make_node("Add", ["c3", "r1"], ["a1"], name="add"),
        helper.make_node("MaxPool", ["a1"], ["m1"], kernel_shape=[2, 2], strides=[2, 2],
                         name="pool"),
        helper.make_node("GlobalAveragePool", ["m1"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1, name="fc")]
    g = helper.make_graph(
        nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def mlp_model() -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    inits = [_init(rng, "w1", (20, 32), .3),
             _init(rng, "w2", (32, 16), .3), _init(rng, "b2", (16,), .1),
             _init(rng, "w3", (5, 16), .3), _init(rng, "b3", (5,), .1)]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h1"], name="mm1"),
             helper.make_node("Relu", ["h1"], ["r1"], name="relu1"),
             helper.make_node("Gemm", ["r1", "w2", "b2"], ["h2"], name="fc2"),
             helper.make_node("Relu", ["h2"], ["r2"], name="relu2"),
             helper.make_node("Gemm", ["r2", "w3", "b3"], ["y"], transB=1, name="fc3")]
    g = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 20])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def branch_model() -> onnx.ModelProto:
    """Two branches concatenated (differing qparams), LeakyRelu, Mul, average pooling,
    Sigmoid."""
    rng = np.random.default_rng(2)
    inits = [_init(rng, "wa", (4, 3, 3, 3), .3), _init(rng, "wb", (4, 3, 1, 1), .9),
             _init(rng, "wf", (6, 32), .3), _init(rng, "bf", (6,), .1)]
    nodes = [
        helper.make_node("Conv", ["x", "wa"], ["ca"], pads=[1, 1, 1, 1], name="conv_a"),
        helper.make_node("Conv", ["x", "wb"], ["cb"], name="conv_b"),
        helper.make_node("Concat", ["ca", "cb"], ["cat"], axis=1, name="cat"),
        helper.make_node("LeakyRelu", ["cat"], ["lr"], alpha=0.1, name="leaky"),
        helper.make_node("Mul", ["lr", "cat"], ["mu"], name="gate"),
        helper.make_node("AveragePool", ["mu"], ["ap"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1], name="avg"),
        helper.make_node("Sigmoid", ["ap"], ["sg"], name="sigmoid"),
        helper.make_node("Flatten", ["sg"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1, name="fc")]
    g = helper.make_graph(
        nodes, "branch",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 6])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


MODELS = {"cnn": (cnn_model, (3, 8, 8)), "mlp": (mlp_model, (20,)),
          "branch": (branch_model, (3, 4, 4))}
OUT_SIZE = {"cnn": 10, "mlp": 5, "branch": 6}


class _Reader(CalibrationDataReader):
    def __init__(self, shape):
        rng = np.random.default_rng(7)
        self.it = iter([{"x": rng.normal(size=(4,) + shape).astype(np.float32)}
                        for _ in range(8)])

    def get_next(self):
        return next(self.it, None)


def quantized(tmp_path, model: str, fmt: str, act: str, per_channel: bool) -> str:
    build, shape = MODELS[model]
    src = tmp_path / f"{model}.onnx"
    onnx.save(build(), src)
    out = tmp_path / f"{model}_{fmt}_{act}_{per_channel}.onnx"
    quantize_static(str(src), str(out), _Reader(shape),
                    quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
                    activation_type=QuantType.QUInt8 if act == "uint8" else QuantType.QInt8,
                    weight_type=QuantType.QInt8, per_channel=per_channel)
    return str(out)


def _inputs(shape):
    return np.random.default_rng(3).normal(0, 1.5, (N_INPUTS,) + shape).astype(np.float32)


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("fmt", ["qdq", "qoperator"])
@pytest.mark.parametrize("act", ["uint8", "int8"])
@pytest.mark.parametrize("per_channel", [True, False])
def test_imported_model_is_bit_exact_vs_onnxruntime(tmp_path, model, fmt, act,
                                                    per_channel) -> None:
    """§8 / arithmetic §11: every output code on 200 inputs equals ORT's, and so does
    every intermediate tensor (exposed as extra graph outputs)."""
    path = quantized(tmp_path, model, fmt, act, per_channel)
    assert is_quantized_onnx(path)
    im = load_quantized_onnx(path, host_ort_profile())
    qg = im.qgraph
    assert qg.profile == host_ort_profile()
    assert all(qg.tensors[t].dtype == act for t in qg.tensors)
    x = _inputs(MODELS[model][1])
    codes = input_codes(im, "x", x)
    gold = run_golden(qg, {"x": codes})
    onnx_model, inner = with_intermediates(im.model, qg)
    assert inner == [n.output for n in qg.nodes]
    sess = ort_session(onnx_model)
    names = [o.name for o in sess.get_outputs()]
    results = dict(zip(names, sess.run(names, {"x": x}), strict=True))
    tq = qg.tensors[im.outputs["y"]]
    y = float_to_codes(results["y"], tq.scale, tq.zero_point)
    np.testing.assert_array_equal(y, gold.codes[im.outputs["y"]])
    assert y.shape == (N_INPUTS, OUT_SIZE[model])
    for t in inner:
        np.testing.assert_array_equal(results[t].astype(np.int64), gold.codes[t], t)


def test_cnn_lowers_to_ort_ops(tmp_path) -> None:
    """The imported CNN uses the ort_cpu lowering (arithmetic §11.1) and the model's own
    qparams: the input TensorQ is the QuantizeLinear's scale and zero point."""
    path = quantized(tmp_path, "cnn", "qdq", "int8", True)
    im = load_quantized_onnx(path)
    ops = [n.op for n in im.qgraph.nodes]
    assert ops == ["conv", "conv", "conv", "qlinear_add", "maxpool",
                   "qlinear_global_avgpool", "flatten", "gemm"]
    q = next(n for n in onnx.load(path).graph.node if n.op_type == "QuantizeLinear")
    inits = {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}
    tq = im.qgraph.tensors["x"]
    assert tq.scale == float(inits[q.input[1]]) and tq.zero_point == int(inits[q.input[2]])


def test_other_profile_changes_only_the_lowering(tmp_path) -> None:
    """Under the dyadic profile the same model lowers add to §10.1 and fails on the GAP
    whose output qparams differ from its input's (§10.2 shares them), naming the node."""
    path = quantized(tmp_path, "mlp", "qdq", "int8", True)
    im = load_quantized_onnx(path, "dyadic")
    assert im.qgraph.requant_config.mode == "dyadic"
    assert im.qgraph.profile == "dyadic"
    with pytest.raises(ModelError, match=r"node 'gap'.*shared qparams"):
        load_quantized_onnx(quantized(tmp_path, "cnn", "qdq", "int8", True), "dyadic")


def test_unsupported_node_is_named(tmp_path) -> None:
    """Anything not representable is one ModelError naming the node and its op."""
    path = quantized(tmp_path, "mlp", "qoperator", "int8", False)
    m = onnx.load(path)
    relu = next(n for n in m.graph.node if n.op_type in ("QGemm", "QLinearMatMul"))
    relu.op_type = "QLinearSoftmax"
    with pytest.raises(ModelError, match=rf"node '{relu.name}' \(QLinearSoftmax\): not "
                                         "representable"):
        load_quantized_onnx(m)


def test_verify_cli_on_quantized_model(tmp_path, capsys) -> None:
    """`hwsim verify QMODEL.onnx --inputs X.npy --json`: no --calib, pair
    onnxruntime_vs_golden with total / mismatches / max_abs_lsb, profile recorded."""
    path = quantized(tmp_path, "cnn", "qoperator", "uint8", False)
    xs = tmp_path / "x.npy"
    np.save(xs, _inputs((3, 8, 8))[:32])
    rc = main(["verify", path, "--inputs", str(xs), "--json", "--batch", "10"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0
    pair = report["pairs"]["onnxruntime_vs_golden"]
    assert pair == {"total": 320, "mismatches": 0, "max_abs_lsb": 0}
    assert report["profile"]["name"] == host_ort_profile()
    assert report["profile"]["ops"]["add"] == "ort_qlinear_add"
    assert report["pairs"]["golden_vs_fakequant"]["mismatches"] == 0
    inner = report["pairs"]["onnxruntime_vs_golden_intermediate"]
    assert inner["mismatches"] == 0 and inner["total"] > 32 * 8 * 8 * 8
    assert all(r["onnxruntime_vs_golden"]["mismatches"] == 0 for r in report["layers"])


def test_verify_reports_mismatch(tmp_path) -> None:
    """The comparison can fail: a model whose weights were altered after import differs
    from ORT, and verify says so (ok False, mismatches > 0)."""
    path = quantized(tmp_path, "mlp", "qdq", "int8", False)
    im = load_quantized_onnx(path)
    node = im.qgraph.nodes[-1]
    w = node.arrays["weight"].copy()
    w[0] = np.clip(w[0].astype(np.int16) + 20, -128, 127).astype(np.int8)
    bad = im.qgraph.replace(nodes=im.qgraph.nodes[:-1] + (
        type(node)(node.name, node.op, node.inputs, node.output, node.attrs,
                   {**node.arrays, "weight": w}, node.requant, node.fused),))
    report = verify_quantized(type(im)(bad, im.profile, im.outputs, im.model),
                              _inputs((20,))[:50])
    assert not report["ok"]
    assert report["pairs"]["onnxruntime_vs_golden"]["mismatches"] > 0


def test_cycle_model_and_vectors_on_imported_model(tmp_path) -> None:
    """The cycle model (fast and stepped) and the golden vectors work unchanged on an
    imported model: every tensor equals the golden model, the vector set verifies."""
    from hwsim.sim.config import ArrayConfig
    from hwsim.sim.graph import simulate_qgraph
    from hwsim.vectors.check import check_vectors
    from hwsim.vectors.generate import vectors_from_simulation
    from hwsim.vectors.writer import write_vectors

    im = load_quantized_onnx(quantized(tmp_path, "cnn", "qdq", "int8", True))
    qg = im.qgraph
    x = _inputs((3, 8, 8))[:2]
    feeds = {"x": input_codes(im, "x", x)}
    gold = run_golden(qg, feeds)
    cfg = ArrayConfig(rows=4, cols=4, dataflow="ws")
    for stepped in (False, True):
        sim = simulate_qgraph(qg, feeds, cfg, stepped=stepped)
        for name, ref in gold.codes.items():
            np.testing.assert_array_equal(sim.codes[name], ref, err_msg=name)
    lvs = vectors_from_simulation(qg, sim, cfg)
    assert len(lvs) == 4
    out = write_vectors(tmp_path / "vec", lvs, {"model": qg.name, "profile": qg.profile})
    assert check_vectors(out, regenerate=False) == []


@pytest.mark.skipif(host_ort_profile() != "ort_cpu_avx2",
                    reason="ORT's u8s8 kernels saturate only on AVX2 without VNNI")
def test_exact_mac_profile_differs_from_avx2_ort(tmp_path) -> None:
    """On this machine the exact-MAC profile ort_cpu does NOT reproduce ORT for uint8
    activations with full-range weights (§11.2.8): the comparison detects it."""
    im = load_quantized_onnx(quantized(tmp_path, "cnn", "qoperator", "uint8", True), "ort_cpu")
    report = verify_quantized(im, _inputs((3, 8, 8))[:50])
    assert not report["ok"]
    assert report["pairs"]["onnxruntime_vs_golden_intermediate"]["mismatches"] > 0


def test_int4_weights_and_16bit_activations(tmp_path) -> None:
    """Wider and narrower types (specs/ir.md §8): int4 weights (ONNX INT4, opset 21) import
    as 4-bit codes and match ORT bit for bit; int16 activations import with int16 qparams
    (ORT runs 16-bit QDQ convolutions in float, so no bit-exactness is claimed)."""
    src = tmp_path / "cnn.onnx"
    onnx.save(cnn_model(), src)
    x = _inputs((3, 8, 8))[:50]
    for name, act, wt in (("w4", QuantType.QInt8, QuantType.QInt4),
                          ("a16", QuantType.QInt16, QuantType.QInt8)):
        out = tmp_path / f"{name}.onnx"
        quantize_static(str(src), str(out), _Reader((3, 8, 8)), quant_format=QuantFormat.QDQ,
                        activation_type=act, weight_type=wt, per_channel=True)
        im = load_quantized_onnx(str(out), host_ort_profile())
        report = verify_quantized(im, x)
        assert report["pairs"]["onnxruntime_vs_golden"]["total"] == 500
        if name == "w4":
            w = [n.arrays["weight"] for n in im.qgraph.nodes if "weight" in n.arrays]
            assert all(a.min() >= -8 and a.max() <= 7 for a in w)
            assert report["ok"]
        else:
            assert {t.dtype for t in im.qgraph.tensors.values()} == {"int16"}


def test_fixed_batch_model(tmp_path) -> None:
    """A model whose input has a fixed batch of 1 (as many exporters write it) is run by
    ORT one sample at a time; the comparison is unchanged."""
    m = onnx.load(quantized(tmp_path, "cnn", "qdq", "int8", True))
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    m.graph.output[0].type.tensor_type.shape.dim[0].dim_value = 1
    report = verify_quantized(load_quantized_onnx(m, host_ort_profile()),
                              _inputs((3, 8, 8))[:7], batch=3)
    assert report["ok"] and report["pairs"]["onnxruntime_vs_golden"]["total"] == 70


@pytest.mark.parametrize("fmt", ["qdq", "qoperator"])
def test_symmetric_activations_keep_relu(tmp_path, fmt) -> None:
    """ActivationSymmetric=True keeps the Relu nodes (DQ -> Relu -> Q on shared qparams):
    they import as clamps and the model stays bit-exact against ORT on every tensor."""
    src = tmp_path / "cnn.onnx"
    onnx.save(cnn_model(), src)
    out = tmp_path / f"sym_{fmt}.onnx"
    quantize_static(str(src), str(out), _Reader((3, 8, 8)),
                    quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    per_channel=True, extra_options={"ActivationSymmetric": True})
    im = load_quantized_onnx(str(out), host_ort_profile())
    assert [n.op for n in im.qgraph.nodes].count("clamp") == 2
    report = verify_quantized(im, _inputs((3, 8, 8))[:100])
    assert report["ok"] and report["pairs"]["onnxruntime_vs_golden_intermediate"]["total"] > 0
