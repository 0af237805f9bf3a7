"""``hwsim verify`` / ``hwsim quantize`` (specs/compiler.md §7): one JSON object, exit codes,
one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwsim.cli import main
from hwsim.compiler.serialize import load_qgraph

RNG = np.random.default_rng(9)


def _onnx_model(path: Path) -> Path:
    """Conv-BN-Relu, MaxPool, Conv+Add (residual), GlobalAveragePool, Flatten, Gemm."""
    init = [
        numpy_helper.from_array(RNG.normal(scale=0.4, size=(4, 1, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(RNG.normal(size=4).astype(np.float32), "b1"),
        numpy_helper.from_array(RNG.normal(scale=0.3, size=(4, 4, 3, 3)).astype(np.float32), "w2"),
        numpy_helper.from_array(RNG.normal(size=(3, 4)).astype(np.float32), "wf"),
        numpy_helper.from_array(RNG.normal(size=3).astype(np.float32), "bf"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "p1"], ["s"], name="add"),
        helper.make_node("GlobalAveragePool", ["s"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli")
    x = RNG.normal(size=(24, 1, 8, 8)).astype(np.float32)
    np.save(d / "calib.npy", x[:12])
    np.save(d / "inputs.npy", x[12:])
    np.save(d / "labels.npy", RNG.integers(0, 3, size=12))
    return {"model": _onnx_model(d / "tiny.onnx"), "calib": d / "calib.npy",
            "inputs": d / "inputs.npy", "labels": d / "labels.npy", "dir": d}


def _verify(files, capsys, *extra: str) -> tuple[int, dict, str]:
    rc = main(["verify", str(files["model"]), "--calib", str(files["calib"]), "--inputs",
               str(files["inputs"]), "--labels", str(files["labels"]), "--json", *extra])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 1
    return rc, json.loads(lines[0]), err


def test_verify_dyadic_exact(files, capsys) -> None:
    """§7: one JSON object; dyadic mode golden == fake-quant; accuracy per executor."""
    rc, rep, err = _verify(files, capsys)
    assert rc == 0 and err == ""
    assert rep["requant_mode"] == "dyadic" and rep["exact_mode"] and rep["ok"]
    for pair in ("golden_vs_fakequant", "golden_vs_fakequant_layerwise", "golden_vs_float",
                 "fakequant_vs_float"):
        assert set(rep["pairs"][pair]) == {"total", "mismatches", "max_abs_lsb"}
    assert rep["pairs"]["golden_vs_fakequant"]["mismatches"] == 0
    assert rep["pairs"]["golden_vs_fakequant"]["total"] > 0
    assert set(rep["accuracy"]) == {"float", "fakequant", "golden"}
    assert [row["node"] for row in rep["layers"]] == ["conv1", "pool1", "conv2", "add", "gap",
                                                      "flat", "fc"]
    assert rep["layers"][0]["fused"] == "relu"


@pytest.mark.parametrize("mode", ["tflite", "float32"])
def test_verify_inexact_modes_report_mismatch(files, capsys, mode: str) -> None:
    """§9: inexact modes exit 0 and report the layer-wise mismatch (≤ 1 LSB)."""
    rc, rep, _ = _verify(files, capsys, "--requant", mode)
    assert rc == 0 and not rep["exact_mode"]
    assert rep["pairs"]["golden_vs_fakequant_layerwise"]["max_abs_lsb"] <= 1


def test_verify_exit_1_on_exact_mismatch(files, capsys) -> None:
    """§7.3: a 12-bit wrapping accumulator (the narrowest for int4 weights) overflows,
    golden != fake-quant: exit 1."""
    rc, rep, _ = _verify(files, capsys, "--weights", "int4", "--acc-bits", "12",
                         "--acc-overflow", "wrap")
    assert rc == 1 and not rep["ok"]
    assert sum(r.get("overflow_events", 0) for r in rep["layers"]) > 0


def test_verify_random_inputs_warn(files, capsys) -> None:
    """Without data: seeded random inputs and one warning line on stderr."""
    rc = main(["verify", str(files["model"]), "--json", "--weights", "int4"])
    out, err = capsys.readouterr()
    assert rc == 0
    assert err.count("\n") == 1 and "warning: no --calib/--inputs given" in err
    assert json.loads(out)["weights"] == "int4"


def test_verify_dynamic(files, capsys) -> None:
    """compiler §4 through the CLI: per-input qparams, golden == fake-quant, no warning."""
    rc = main(["verify", str(files["model"]), "--dynamic", "--json", "--inputs",
               str(files["inputs"])])
    out, err = capsys.readouterr()
    rep = json.loads(out)
    assert rc == 0 and err == "" and rep["dynamic"]
    assert rep["pairs"]["golden_vs_fakequant"]["mismatches"] == 0


def test_quantize_writes_loadable_graph(files, capsys) -> None:
    """`hwsim quantize` writes JSON + NPZ that load_qgraph accepts."""
    out = files["dir"] / "q.json"
    rc = main(["quantize", str(files["model"]), "--calib", str(files["calib"]), "--out",
               str(out), "--requant", "tflite", "--weights", "fp8"])
    assert rc == 0 and "wrote" in capsys.readouterr().out
    g = load_qgraph(out)
    assert g.requant_config.mode == "tflite" and g.weight_format == "fp8_e4m3"


@pytest.mark.parametrize("argv,needle", [
    (["verify", "/nonexistent/model.onnx"], "/nonexistent/model.onnx"),
    (["verify", "{model}", "--calib", "/nonexistent/c.npy"], "file not found"),
    (["verify", "{bad}"], "error:"),
    (["verify", "{model}", "--inputs", "{bad}"], "--inputs"),
    (["quantize", "{model}", "--calib", "{calib}", "--out", "{dir}/q.txt"],
     "must end in .json"),
])
def test_cli_errors_are_one_line(files, capsys, argv, needle) -> None:
    """Bad input: one line on stderr, exit 2."""
    bad = files["dir"] / "bad.onnx"
    bad.write_bytes(b"not a model")
    fmt = {k: str(v) for k, v in files.items()} | {"bad": str(bad)}
    rc = main([a.format(**fmt) for a in argv])
    out, err = capsys.readouterr()
    assert rc == 2
    assert err.count("\n") == 1 and needle in err, err


def test_verify_graph_dynamic_exact() -> None:
    """compiler §4, §7: dynamic quantization through verify_graph, one sample per call:
    golden == fake-quant in dyadic mode, accuracy reported for every executor."""
    from hwsim.ir.builder import GraphBuilder
    from hwsim.verify import VerifyOptions, verify_graph

    b = GraphBuilder("dyn")
    x = b.input("x", (1, 1, 8, 8))
    y = b.maxpool2d(b.relu(b.conv2d(x, RNG.normal(size=(4, 1, 3, 3)).astype(np.float32),
                                    RNG.normal(size=4).astype(np.float32), pads=1)), 2)
    g = b.build(b.linear(b.flatten(y), RNG.normal(size=(3, 64)).astype(np.float32)))
    xs = RNG.normal(size=(6, 1, 8, 8)).astype(np.float32)
    rep = verify_graph(g, xs, labels=np.arange(6) % 3, opts=VerifyOptions(dynamic=True))
    assert rep["dynamic"] and rep["ok"]
    assert rep["pairs"]["golden_vs_fakequant"]["mismatches"] == 0
    assert rep["pairs"]["golden_vs_fakequant"]["total"] == 6 * (4 * 64 + 4 * 16 + 64 + 3)
    assert set(rep["accuracy"]) == {"float", "fakequant", "golden"}
