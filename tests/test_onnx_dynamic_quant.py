"""Models quantized by ``onnxruntime.quantization.quantize_dynamic`` (DynamicQuantizeLinear,
MatMulInteger, ConvInteger and the float Cast / Mul / Add tail), imported (specs/ir.md §8)
and run by the golden model under the machine's ORT profile: bit-exact against ONNX
Runtime on every float output (arithmetic §11.2.9, compared as float32 bit patterns).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwsim.cli import main
from hwsim.compiler.profiles import host_ort_profile
from hwsim.compiler.serialize import load_qgraph, save_qgraph
from hwsim.errors import ModelError
from hwsim.frontends.onnx_quant import load_quantized_onnx
from hwsim.frontends.onnx_quant_export import to_quantized_onnx
from hwsim.reference.engine_ops import dynamic_quantize_linear, f32_to_codes
from hwsim.reference.golden_exec import run_golden
from hwsim.verify_onnx import ort_session

ort_q = pytest.importorskip("onnxruntime.quantization")

N_INPUTS = 200


def _init(rng: np.random.Generator, shape: tuple[int, ...], scale: float, name: str):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32),
                                   name)


def _mlp(batch: int | str, seq: int | None = None) -> onnx.ModelProto:
    """MatMul + Add + Relu + MatMul + Add; input [batch, 16] or [batch, seq, 16]."""
    rng = np.random.default_rng(7)
    nodes = [helper.make_node("MatMul", ["x", "W1"], ["h"]),
             helper.make_node("Add", ["h", "b1"], ["h1"]),
             helper.make_node("Relu", ["h1"], ["r"]),
             helper.make_node("MatMul", ["r", "W2"], ["o"]),
             helper.make_node("Add", ["o", "b2"], ["y"])]
    lead = [batch] if seq is None else [batch, seq]
    g = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, lead + [16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, lead + [10])],
        [_init(rng, (16, 48), 0.4, "W1"), _init(rng, (48,), 0.5, "b1"),
         _init(rng, (48, 10), 0.3, "W2"), _init(rng, (10,), 0.5, "b2")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _cnn() -> onnx.ModelProto:
    """Conv (bias, padding) + Relu + Conv (stride 2) + Relu + Flatten + Gemm."""
    rng = np.random.default_rng(11)
    nodes = [helper.make_node("Conv", ["x", "W", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Conv", ["r", "W3", "b3"], ["c3"], strides=[2, 2]),
             helper.make_node("Relu", ["c3"], ["r3"]),
             helper.make_node("Flatten", ["r3"], ["f"]),
             helper.make_node("Gemm", ["f", "W2"], ["y"])]
    g = helper.make_graph(
        nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        [_init(rng, (8, 3, 3, 3), 0.4, "W"), _init(rng, (8,), 0.5, "b"),
         _init(rng, (6, 8, 3, 3), 0.3, "W3"), _init(rng, (6,), 0.5, "b3"),
         _init(rng, (6 * 3 * 3, 10), 0.2, "W2")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _quantized(tmp_path, model: onnx.ModelProto, name: str, per_channel: bool,
               weight_type: str = "QInt8") -> str:
    src = tmp_path / f"{name}.onnx"
    out = tmp_path / f"{name}_dyn{int(per_channel)}_{weight_type}.onnx"
    onnx.save(model, src)
    ort_q.quantize_dynamic(str(src), str(out), per_channel=per_channel,
                           weight_type=getattr(ort_q.QuantType, weight_type),
                           op_types_to_quantize=["MatMul", "Conv", "Gemm"])
    return str(out)


def _inputs(shape: tuple[int, ...], n: int = N_INPUTS) -> np.ndarray:
    rng = np.random.default_rng(2024)
    x = rng.standard_normal((n,) + shape).astype(np.float32) * 2
    x[::7] = np.abs(x[::7])  # all-positive inputs: zero point 0
    x[3] = 0  # all zeros: scale 1
    return x


def _ort(path: str, x: np.ndarray, per_sample: bool) -> np.ndarray:
    sess = ort_session(path)
    if not per_sample:
        return sess.run(None, {"x": x})[0]
    return np.concatenate([sess.run(None, {"x": x[i:i + 1]})[0] for i in range(len(x))])


def _golden(im, x: np.ndarray) -> np.ndarray:
    qg = im.qgraph
    return run_golden(qg, {qg.inputs[0]: x}).codes[im.outputs["y"]]


WEIGHTS = ("QInt8", "QUInt8")  # int8 weights: MLAS U8S8 (pair-saturated on AVX2); uint8: U8U8


@pytest.mark.parametrize("weight_type", WEIGHTS)
@pytest.mark.parametrize("per_channel", [False, True])
def test_mlp_bit_exact(tmp_path, per_channel: bool, weight_type: str) -> None:
    path = _quantized(tmp_path, _mlp(1), "mlp", per_channel, weight_type)
    ops = {n.op_type for n in onnx.load(path).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger", "Cast", "Mul", "Add"} <= ops
    im = load_quantized_onnx(path, host_ort_profile())
    assert [n.op for n in im.qgraph.nodes] == ["matmul_integer"] * 2
    assert im.qgraph.tensors["y"].dtype == "float32"
    x = _inputs((16,))
    want = _ort(path, x, per_sample=True)
    got = _golden(im, x)
    assert got.size == N_INPUTS * 10
    np.testing.assert_array_equal(got, f32_to_codes(want))


@pytest.mark.parametrize("weight_type", WEIGHTS)
@pytest.mark.parametrize("per_channel", [False, True])
def test_cnn_bit_exact(tmp_path, per_channel: bool, weight_type: str) -> None:
    """ConvInteger (quantize_dynamic gives it per-tensor weights even with per_channel) and
    a per-channel MatMulInteger after Flatten of a float tensor."""
    path = _quantized(tmp_path, _cnn(), "cnn", per_channel, weight_type)
    assert "ConvInteger" in {n.op_type for n in onnx.load(path).graph.node}
    im = load_quantized_onnx(path, host_ort_profile())
    assert [n.op for n in im.qgraph.nodes] == ["conv_integer", "conv_integer", "flatten",
                                               "matmul_integer"]
    x = _inputs((3, 8, 8))
    np.testing.assert_array_equal(_golden(im, x), f32_to_codes(_ort(path, x, True)))


def test_dynamic_batch_and_3d_input(tmp_path) -> None:
    """A dynamic leading dimension: ORT quantizes the whole batch of one run with one set
    of qparams, and so does the golden model (rows = 0); a [batch, seq, K] input."""
    path = _quantized(tmp_path, _mlp("N", seq=5), "seq", True)
    im = load_quantized_onnx(path, host_ort_profile())
    assert im.qgraph.nodes[0].attrs["rows"] == 0
    x = _inputs((5, 16))
    np.testing.assert_array_equal(_golden(im, x), f32_to_codes(_ort(path, x, False)))


def test_pair_saturation_matters(tmp_path) -> None:
    """On an AVX2 machine without VNNI the exact MatMulInteger sum differs from ORT: the
    §11.2.8 pair saturation is what makes the test above pass (it can fail)."""
    if host_ort_profile() != "ort_cpu_avx2":
        pytest.skip("the host has VNNI: ORT sums exactly")
    path = _quantized(tmp_path, _mlp(1), "mlp", False)
    im = load_quantized_onnx(path, "ort_cpu_avx2")
    assert all(n.attrs["pair_saturated"] for n in im.qgraph.nodes)
    exact = dataclasses.replace(im, qgraph=im.qgraph.replace(nodes=tuple(
        dataclasses.replace(n, attrs={**n.attrs, "pair_saturated": False})
        for n in im.qgraph.nodes)))
    x = _inputs((16,))
    want = f32_to_codes(_ort(path, x, True))
    assert np.count_nonzero(_golden(exact, x) != want) > 0
    np.testing.assert_array_equal(_golden(im, x), want)


def _dql_model() -> onnx.ModelProto:
    g = helper.make_graph(
        [helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])], "dql",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [None]),
         helper.make_tensor_value_info("s", TensorProto.FLOAT, []),
         helper.make_tensor_value_info("z", TensorProto.UINT8, [])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_dynamic_quantize_linear_equals_ort() -> None:
    """§11.2.9 scale, zero point and codes equal ORT's DynamicQuantizeLinear on 300 tensors
    (mixed signs, one-signed, all zero, tiny ranges, exact halves)."""
    sess = ort_session(_dql_model())
    rng = np.random.default_rng(5)
    cases = [np.zeros(7, np.float32), np.array([-1, 0.5, 2], np.float32),
             np.array([0.5, 1.5, 2.5, -2.5], np.float32) * np.float32(3 / 255)]
    for i in range(297):
        x = rng.standard_normal(int(rng.integers(1, 300))).astype(np.float32)
        x *= np.float32(10.0 ** rng.integers(-6, 4))
        cases.append(np.abs(x) if i % 5 == 0 else -np.abs(x) if i % 5 == 1 else x)
    for x in cases:
        q, s, z = dynamic_quantize_linear(x)
        y, s_ort, z_ort = sess.run(None, {"x": x})
        assert (np.float32(s), z) == (np.float32(s_ort), int(z_ort))
        np.testing.assert_array_equal(q, y.astype(np.int64))
    q, s, z = dynamic_quantize_linear(np.array([-1, 0.5, 2], np.float32))
    assert (z, q.tolist()) == (85, [0, 127, 255])  # the §11.2.9 example (42.5 -> 42)


def test_refusals(tmp_path) -> None:
    path = _quantized(tmp_path, _mlp(1), "mlp", False)
    with pytest.raises(ModelError, match=r"\(MatMulInteger\): ORT's dynamic quantization has "
                                         r"no kernel in profile 'tflite'"):
        load_quantized_onnx(path, "tflite")
    with pytest.raises(ModelError, match=r"\(matmul_integer\): ORT dynamic quantization"):
        to_quantized_onnx(load_quantized_onnx(path).qgraph, "qdq")
    m = onnx.load(path)
    dql = next(n for n in m.graph.node if n.op_type == "DynamicQuantizeLinear")
    m.graph.output.append(helper.make_tensor_value_info(dql.output[1], TensorProto.FLOAT, []))
    with pytest.raises(ModelError, match=r"run-time scales and zero points are not tensors"):
        load_quantized_onnx(m)
    m = onnx.load(path)  # a float Sigmoid has no bit-exact form here
    relu = next(n for n in m.graph.node if n.op_type == "Relu")
    relu.op_type = "Sigmoid"
    with pytest.raises(ModelError, match=r"\(Sigmoid\): reads the float32 tensor 'h1' "
                                         r"\(ORT dynamic quantization"):
        load_quantized_onnx(m)


def test_verify_cli(tmp_path, capsys) -> None:
    """`hwsim verify QMODEL.onnx --inputs X.npy --json` on a quantize_dynamic model."""
    path = _quantized(tmp_path, _cnn(), "cnn", True)
    xs = tmp_path / "x.npy"
    np.save(xs, _inputs((3, 8, 8), 40))
    rc = main(["verify", path, "--inputs", str(xs), "--json", "--batch", "16"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["ok"]
    assert report["pairs"]["onnxruntime_vs_golden"] == {"total": 400, "mismatches": 0,
                                                       "max_abs_lsb": 0}
    assert report["profile"]["name"] == host_ort_profile()
    inner = report["pairs"]["onnxruntime_vs_golden_intermediate"]  # r, r3, f: float bits
    assert inner["mismatches"] == 0 and inner["total"] == 40 * (8 * 8 * 8 + 2 * 6 * 3 * 3)


def _residual_mlp() -> onnx.ModelProto:
    """h = relu(x·W1 + b1); s = h·W2 + b2 + x (float residual Add); y = clip(s)·W3."""
    rng = np.random.default_rng(13)
    nodes = [helper.make_node("MatMul", ["x", "W1"], ["h"]),
             helper.make_node("Add", ["h", "b1"], ["h1"]),
             helper.make_node("Relu", ["h1"], ["r"]),
             helper.make_node("MatMul", ["r", "W2"], ["o"]),
             helper.make_node("Add", ["o", "b2"], ["o1"]),
             helper.make_node("Add", ["o1", "x"], ["s"]),
             helper.make_node("Clip", ["s", "lo", "hi"], ["c"]),
             helper.make_node("Add", ["c", "shift"], ["c1"]),
             helper.make_node("MatMul", ["c1", "W3"], ["y"])]
    g = helper.make_graph(
        nodes, "res", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        [_init(rng, (16, 32), 0.4, "W1"), _init(rng, (32,), 0.5, "b1"),
         _init(rng, (32, 16), 0.3, "W2"), _init(rng, (16,), 0.5, "b2"),
         _init(rng, (16, 10), 0.3, "W3"), _init(rng, (16,), 0.1, "shift"),
         numpy_helper.from_array(np.float32(-1.5), "lo"),
         numpy_helper.from_array(np.float32(2.5), "hi")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_float_residual_add_and_clip(tmp_path) -> None:
    """Float ops between the integer layers that are single IEEE operations — an Add of
    two float tensors, an Add of a float constant, a Clip — run as float_add / float_clip
    (§11.2.9), bit-exact against ORT."""
    path = _quantized(tmp_path, _residual_mlp(), "res", True)
    im = load_quantized_onnx(path, host_ort_profile())
    assert [n.op for n in im.qgraph.nodes] == ["matmul_integer", "matmul_integer",
                                               "float_add", "float_clip", "float_add",
                                               "matmul_integer"]
    x = _inputs((16,))
    want = f32_to_codes(_ort(path, x, True))
    np.testing.assert_array_equal(_golden(im, x), want)
    save_qgraph(im.qgraph, tmp_path / "res.json")  # hwsim's own format keeps the ops
    back = dataclasses.replace(im, qgraph=load_qgraph(tmp_path / "res.json"))
    np.testing.assert_array_equal(_golden(back, x), want)


def test_shared_dynamic_quantize_linear(tmp_path) -> None:
    """One DynamicQuantizeLinear read by two MatMulIntegers (as for Q / K projections):
    each node quantizes the shared float input identically; both outputs equal ORT's."""
    rng = np.random.default_rng(3)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "Wq"], ["q"]),
         helper.make_node("MatMul", ["x", "Wk"], ["k"])], "qk",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 16])],
        [helper.make_tensor_value_info(t, TensorProto.FLOAT, [1, 6, 8]) for t in "qk"],
        [_init(rng, (16, 8), 0.5, "Wq"), _init(rng, (16, 8), 0.5, "Wk")])
    path = _quantized(tmp_path, helper.make_model(
        g, opset_imports=[helper.make_opsetid("", 17)]), "qk", True)
    m = onnx.load(path)
    assert sum(n.op_type == "DynamicQuantizeLinear" for n in m.graph.node) == 1
    im = load_quantized_onnx(path, host_ort_profile())
    qg = im.qgraph
    x = _inputs((6, 16))
    gold = run_golden(qg, {"x": x})
    sess = ort_session(path)
    want = [np.concatenate(v) for v in zip(*[sess.run(None, {"x": x[i:i + 1]})
                                             for i in range(len(x))], strict=True)]
    for name, w in zip(("q", "k"), want, strict=True):
        np.testing.assert_array_equal(gold.codes[im.outputs[name]], f32_to_codes(w))
