"""``hwsim run`` end to end on a small ONNX model built with onnx.helper (specs/cycle_model.md
§C5–§C7): JSON report, fast == stepped, bit-exact against the golden model (--check)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwsim.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "arrays" / "ws16x16.toml"


def write_model(path: Path) -> None:
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(size=(8, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(size=8).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.normal(size=(4, 8)).astype(np.float32), "w2"),
        numpy_helper.from_array(rng.normal(size=4).astype(np.float32), "b2"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("GlobalAveragePool", ["r1"], ["p1"]),
        helper.make_node("Flatten", ["p1"], ["f1"]),
        helper.make_node("Gemm", ["f1", "w2", "b2"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 10, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))


@pytest.fixture(scope="module")
def model_and_inputs(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("run")
    write_model(d / "tiny.onnx")
    np.save(d / "x.npy", np.random.default_rng(1).normal(size=(4, 3, 10, 10)).astype(np.float32))
    return d / "tiny.onnx", d / "x.npy"


def run_json(capsys, *argv: str) -> dict:
    assert main(["run", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_run_json_fast_equals_stepped(model_and_inputs, capsys) -> None:
    model, x = model_and_inputs
    fast = run_json(capsys, str(model), "--array", str(EXAMPLE), "--inputs", str(x),
                    "--samples", "2", "--check")
    stepped = run_json(capsys, str(model), "--array", str(EXAMPLE), "--inputs", str(x),
                       "--samples", "2", "--check", "--stepped")
    assert fast["check"] == {"ok": True, "mismatched_tensors": []} == stepped["check"]
    assert fast["layers"] == stepped["layers"]
    assert fast["total_cycles"] == stepped["total_cycles"] == sum(
        layer["cycles"] for layer in fast["layers"])
    assert [layer["op"] for layer in fast["layers"]] == [
        "conv", "global_avgpool", "flatten", "gemm"]
    conv = fast["layers"][0]
    # ws 16x16, M = 2·5·5 = 50, K = 27, N = 8: 2 k folds of 2R + C + M − 2 = 96 cycles, + L
    assert conv["counters"]["array_cycles"] == 2 * 96 + 2
    assert conv["counters"]["macs"] == 50 * 27 * 8
    assert fast["samples"] == 2 and fast["mode"] == "fast" and stepped["mode"] == "stepped"


def test_run_text_summary_and_bad_array(model_and_inputs, capsys, tmp_path) -> None:
    model, x = model_and_inputs
    assert main(["run", str(model), "--array", str(EXAMPLE), "--inputs", str(x)]) == 0
    out = capsys.readouterr().out
    assert "total_cycles" in out and "conv" in out
    bad = tmp_path / "bad.toml"
    bad.write_text('rows = 4\ncols = 4\ndataflow = "ws"\nclock = 3\n')
    assert main(["run", str(model), "--array", str(bad), "--inputs", str(x)]) == 2
    assert "unknown key 'clock'" in capsys.readouterr().err
