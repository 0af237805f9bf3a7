"""Quantized ONNX export (specs/ir.md §9): ONNX Runtime runs hwsim's export bit-exactly
against hwsim's golden model.

Two sources of integer graphs: the models onnxruntime quantized (imported, specs/ir.md §8)
and exported back, and hwsim's own quantization of the demo CNN under ``--profile
ort_cpu`` (fused ReLUs, residual add, global average pooling). Every exported model is run
by onnxruntime on 200 seeded inputs in both formats; every output code equals the golden
model's (tolerance 0).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_onnx_quant_import import MODELS, N_INPUTS, OUT_SIZE, quantized

from hwsim.cli import main
from hwsim.compiler.profiles import host_ort_profile
from hwsim.compiler.quantize import QuantizeConfig, quantize_static
from hwsim.data import demo_model_path, load_demo_data
from hwsim.errors import ModelError
from hwsim.frontends.onnx import load_onnx
from hwsim.frontends.onnx_quant import load_quantized_onnx
from hwsim.frontends.onnx_quant_export import to_quantized_onnx
from hwsim.reference.engine_ops import quantize_linear
from hwsim.reference.golden_exec import run_golden
from hwsim.verify_onnx import float_to_codes, ort_session


def _check_export(qg, x: np.ndarray, fmt: str) -> int:
    """ORT on the export vs golden on every output; returns the number of codes compared."""
    inp = qg.inputs[0]
    tq = qg.tensors[inp]
    gold = run_golden(qg, {inp: quantize_linear(x, tq.scale, tq.zero_point, tq.dtype)})
    sess = ort_session(to_quantized_onnx(qg, fmt))
    names = [o.name for o in sess.get_outputs()]
    assert names == list(qg.outputs)
    n = 0
    for t, y in zip(names, sess.run(names, {inp: x}), strict=True):
        out = qg.tensors[t]
        np.testing.assert_array_equal(float_to_codes(y, out.scale, out.zero_point),
                                      gold.codes[t])
        n += y.size
    return n


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("src_fmt", ["qdq", "qoperator"])
@pytest.mark.parametrize("act", ["uint8", "int8"])
@pytest.mark.parametrize("per_channel", [True, False])
@pytest.mark.parametrize("fmt", ["qdq", "qoperator"])
def test_reexported_model_is_bit_exact(tmp_path, model, src_fmt, act, per_channel,
                                       fmt) -> None:
    im = load_quantized_onnx(quantized(tmp_path, model, src_fmt, act, per_channel),
                             host_ort_profile())
    x = np.random.default_rng(4).normal(0, 1.5, (N_INPUTS,) + MODELS[model][1]).astype(
        np.float32)
    assert _check_export(im.qgraph, x, fmt) == N_INPUTS * OUT_SIZE[model]


@pytest.mark.parametrize("fmt", ["qdq", "qoperator"])
@pytest.mark.parametrize("act", ["int8", "uint8"])
def test_hwsim_quantized_demo_model_exports_bit_exact(fmt, act) -> None:
    g = load_onnx(demo_model_path())
    calib, _ = load_demo_data("calib")
    x, _ = load_demo_data("test")
    qg = quantize_static(g, [{g.inputs[0]: calib}],
                         QuantizeConfig(profile=host_ort_profile(), act_dtype=act))
    assert any(n.fused == "relu" for n in qg.nodes)
    assert _check_export(qg, x[:N_INPUTS], fmt) == N_INPUTS * 10


def test_export_refuses_arithmetic_ort_does_not_have() -> None:
    g = load_onnx(demo_model_path())
    calib, _ = load_demo_data("calib")
    qg = quantize_static(g, [{g.inputs[0]: calib[:32]}], QuantizeConfig())
    with pytest.raises(ModelError, match=r"requant mode 'dyadic'.*--profile ort_cpu"):
        to_quantized_onnx(qg, "qdq")
    f32 = quantize_static(g, [{g.inputs[0]: calib[:32]}],
                          QuantizeConfig(profile="float32"))
    with pytest.raises(ModelError, match=r"node 'residual' \(add\): no qoperator export"):
        to_quantized_onnx(f32, "qoperator")


def test_cli_quantize_formats(tmp_path, capsys) -> None:
    """`hwsim quantize MODEL --format qdq|qoperator|hwsim -o OUT` from a float model, a
    quantized ONNX model and hwsim's own JSON; each ONNX output verifies against ORT."""
    src = quantized(tmp_path, "cnn", "qdq", "int8", True)
    xs = tmp_path / "x.npy"
    np.save(xs, np.random.default_rng(2).normal(size=(12, 3, 8, 8)).astype(np.float32))
    assert main(["quantize", src, "--format", "hwsim", "-o", str(tmp_path / "q.json")]) == 0
    for model in (src, str(tmp_path / "q.json")):
        for fmt in ("qdq", "qoperator"):
            out = tmp_path / f"out_{fmt}.onnx"
            assert main(["quantize", model, "--format", fmt, "-o", str(out)]) == 0
            capsys.readouterr()
            assert main(["verify", str(out), "--inputs", str(xs)]) == 0
            assert "onnxruntime vs golden 0/120 mismatches" in capsys.readouterr().out
    out = tmp_path / "demo.onnx"
    assert main(["quantize", str(demo_model_path()), "--profile", "ort_cpu", "--format",
                 "qoperator", "-o", str(out)]) == 0


def test_clamp_on_codes_round_trips() -> None:
    """A Clip that could not be fused becomes an integer Clip on the codes; the importer
    reads integer bounds as codes (specs/ir.md §8), so export -> import keeps the clamp and
    ORT, the original graph and the re-imported graph agree."""
    from hwsim.ir.builder import GraphBuilder

    rng = np.random.default_rng(5)
    b = GraphBuilder("clampy")
    x = b.input("x", (1, 2, 5, 5))
    c = b.conv2d(x, rng.normal(0, .5, (3, 2, 3, 3)).astype(np.float32), pads=1)
    k = b.clip(c, -0.5, 0.25)
    g = b.build(b.flatten(b.add(c, k), 1))
    calib = rng.normal(size=(16, 2, 5, 5)).astype(np.float32)
    qg = quantize_static(g, [{"x": calib}], QuantizeConfig(profile="ort_cpu"))
    assert "clamp" in [n.op for n in qg.nodes]
    xs = rng.normal(size=(N_INPUTS, 2, 5, 5)).astype(np.float32)
    for fmt in ("qdq", "qoperator"):
        assert _check_export(qg, xs, fmt) == N_INPUTS * 75
        back = load_quantized_onnx(to_quantized_onnx(qg, fmt)).qgraph
        codes = quantize_linear(xs, qg.tensors["x"].scale, qg.tensors["x"].zero_point, "int8")
        want = run_golden(qg, {"x": codes}).codes[qg.outputs[0]]
        got = run_golden(back, {"x": codes}).codes[back.outputs[0]]
        np.testing.assert_array_equal(got, want)


def test_verify_accepts_hwsim_json(tmp_path, capsys) -> None:
    """`hwsim verify QMODEL.json`: an ort_cpu graph is exported on the fly and compared with
    ORT; a dyadic graph is checked golden vs fake-quant only (its arithmetic is not ORT's)."""
    x, _ = load_demo_data("test")
    xs = tmp_path / "x.npy"
    np.save(xs, x[:10])
    for profile, ort_pair in (("ort_cpu", True), ("dyadic", False)):
        j = tmp_path / f"{profile}.json"
        assert main(["quantize", str(demo_model_path()), "--profile", profile, "-o",
                     str(j)]) == 0
        capsys.readouterr()
        assert main(["verify", str(j), "--inputs", str(xs), "--json"]) == 0
        import json

        report = json.loads(capsys.readouterr().out)
        assert report["onnxruntime"] is ort_pair
        assert report["profile"]["name"] == profile
        assert report["pairs"]["onnxruntime_vs_golden"]["total"] == (100 if ort_pair else 0)
        assert report["pairs"]["golden_vs_fakequant"]["mismatches"] == 0


def test_verify_float_model_under_ort_profile(tmp_path, capsys) -> None:
    """`hwsim verify MODEL --profile <ORT profile>`: hwsim quantizes the float model with ORT's
    arithmetic, exports it and ONNX Runtime agrees on every output and intermediate code
    (the issue's measured GAP-tie difference is gone)."""
    x, _ = load_demo_data("test")
    xs = tmp_path / "x.npy"
    np.save(xs, x[:40])
    assert main(["verify", str(demo_model_path()), "--inputs", str(xs), "--calib", str(xs),
                 "--profile", host_ort_profile(), "--act-dtype", "uint8", "--json"]) == 0
    import json

    report = json.loads(capsys.readouterr().out)
    assert report["pairs"]["onnxruntime_vs_golden"] == {"total": 400, "mismatches": 0,
                                                        "max_abs_lsb": 0}
    inner = report["pairs"]["onnxruntime_vs_golden_intermediate"]
    assert inner["mismatches"] == 0 and inner["total"] > 400
    assert main(["verify", str(demo_model_path()), "--inputs", str(xs), "--calib", str(xs),
                 "--json"]) == 0
    assert "onnxruntime_vs_golden" not in json.loads(capsys.readouterr().out)["pairs"]
