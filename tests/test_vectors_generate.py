"""Tests of hwsim.vectors.generate and ``hwsim vectors`` on a tiny ONNX CNN (specs/vectors.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from hwsim.cli import main  # noqa: E402
from hwsim.reference.golden_exec import run_golden  # noqa: E402
from hwsim.report.evaluate import ModelSource, compile_for_array, load_source  # noqa: E402
from hwsim.sim.config import ArrayConfig  # noqa: E402
from hwsim.vectors import check_vectors, layer_names, load_layer_vectors  # noqa: E402
from hwsim.vectors.generate import generate_vectors  # noqa: E402

ARRAY = ArrayConfig(rows=4, cols=4, dataflow="os", input_sram_bytes=4096,
                    weight_sram_bytes=4096, output_sram_bytes=4096)


def grouped_onnx(path: Path, seed: int = 1) -> Path:
    """conv3x3(2→4, groups 2, stride 2, pad 1) + relu + flatten + gemm(16→3) on 1×2×4×4."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 0.4, (4, 1, 3, 3)).astype(np.float32)
    b1 = rng.normal(0, 0.1, 4).astype(np.float32)
    w2 = rng.normal(0, 0.3, (3, 16)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], strides=[2, 2],
                         group=2, name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Flatten", ["r1"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "w2"], ["y"], transB=1, name="fc"),
    ]
    graph = helper.make_graph(
        nodes, "grouped", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return grouped_onnx(tmp_path_factory.mktemp("m") / "grouped.onnx")


@pytest.fixture(scope="module")
def vec(model, tmp_path_factory) -> Path:
    return generate_vectors(tmp_path_factory.mktemp("v") / "vec", ModelSource(str(model)),
                            ARRAY, sample=3)


def test_vectors_equal_golden_model(model, vec):
    """§4: stored accumulators and outputs equal the integer golden model's (tolerance 0)."""
    src = ModelSource(str(model))
    loaded, data = load_source(src)
    graph = loaded.graph
    qg = compile_for_array(graph, data.calib, src, ARRAY)
    gold = run_golden(qg, {"x": data.inputs[3:4]})
    assert layer_names(vec) == ["conv1", "fc"]
    for node in qg.nodes:
        if node.op not in ("conv", "gemm"):
            continue
        v = load_layer_vectors(vec, node.name, source="hex")
        np.testing.assert_array_equal(v["acc"], gold.accumulators[node.name])
        np.testing.assert_array_equal(v["output"], gold.codes[node.output])
        np.testing.assert_array_equal(v["input"], gold.codes[node.inputs[0]])
        assert v["valid_cycle"].min() > 0


def test_grouped_conv_valid_cycles_are_offset_per_group(vec):
    """§4: group g's outputs become valid after all of group g−1's (GEMMs run in order)."""
    v = load_layer_vectors(vec, "conv1")
    first_group, second_group = v["valid_cycle"][:, :2], v["valid_cycle"][:, 2:]
    assert first_group.max() < second_group.min()


def test_generated_set_checks_clean_and_detects_model_change(model, vec, tmp_path):
    """§6: the set verifies, including regeneration from its stored model (§5); a changed
    stored model is reported; a source path outside the set is not followed (§1)."""
    assert check_vectors(vec) == []
    man = json.loads((vec / "manifest.json").read_text())
    assert man["source"]["input_index"] == 3 and len(man["source"]["model_sha256"]) == 64
    assert man["source"]["model"] == "source/model.onnx" and man["source"]["sample"] == 0
    assert {"source/model.onnx", "source/calib.npy", "source/input.npy"} <= set(man["files"])
    mappings = man["layers"][0]["params"]["mapping"]  # one per GEMM (cycle_model.md §C6)
    assert mappings and all(isinstance(m, str) and m for m in mappings)
    qp = man["layers"][0]["params"]["qparams"]
    assert qp["input"]["dtype"] == "int8" and qp["output"]["scale"] > 0
    assert len(qp["weight_scale"]) == 4
    other = grouped_onnx(tmp_path / "grouped.onnx", seed=2)
    man["source"]["model"] = str(other)
    copy = tmp_path / "copy"
    import shutil
    shutil.copytree(vec, copy)
    (copy / "manifest.json").write_text(json.dumps(man))
    problems = check_vectors(copy)
    assert len(problems) == 1 and "is not followed" in problems[0]
    assert "source.model" in problems[0]
    changed = tmp_path / "changed"
    shutil.copytree(vec, changed)
    (changed / "source" / "model.onnx").write_bytes(other.read_bytes())
    problems = check_vectors(changed)
    assert problems[0].startswith("source/model.onnx: SHA-256 mismatch")
    assert any("differ from regenerated" in p for p in problems[1:])


def test_cli_vectors_and_check(model, tmp_path, capsys):
    """``hwsim vectors``: writes, --check passes (0), a flipped bit fails (1), a bad layer
    name is bad input (2)."""
    out = tmp_path / "v"
    assert main(["vectors", str(model), "--out", str(out), "--layer", "fc",
                 "--array", str(Path(__file__).resolve().parents[1] / "examples" / "arrays"
                                / "ws16x16.toml")]) == 0
    assert layer_names(out) == ["fc"]
    assert main(["vectors", "--check", str(out), "--json"]) == 0
    capsys.readouterr()
    p = out / "fc" / "weight.hex"
    data = bytearray(p.read_bytes())
    data[0] ^= 0x04
    p.write_bytes(bytes(data))
    assert main(["vectors", "--check", str(out), "--no-regenerate"]) == 1
    assert "fc/weight.hex: SHA-256 mismatch" in capsys.readouterr().out
    assert main(["vectors", str(model), "--out", str(tmp_path / "x"), "--layer", "flat"]) == 2
    assert "layer 'flat' is not a conv/gemm layer" in capsys.readouterr().err
    assert main(["vectors"]) == 2
    assert main(["vectors", "--check", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.strip().endswith(f"file not found: {tmp_path / 'nowhere'}")
