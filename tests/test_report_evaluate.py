"""Tests of hwsim.report.evaluate and the ``hwsim report`` command on a tiny ONNX CNN."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from hwsim.cli import main  # noqa: E402
from hwsim.energy import HOROWITZ_45NM, per_action_energy  # noqa: E402
from hwsim.energy.from_sim import context_from_array  # noqa: E402
from hwsim.report.evaluate import ModelSource, evaluate, layer_energy_counters  # noqa: E402
from hwsim.sim.config import ArrayConfig  # noqa: E402


def tiny_onnx(path: Path, seed: int = 0) -> Path:
    """conv3x3(1→4, pad 1) + relu + maxpool2 + flatten + gemm(64→5) on 1×8×8 inputs."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 0.3, (4, 1, 3, 3)).astype(np.float32)
    b1 = rng.normal(0, 0.1, 4).astype(np.float32)
    w2 = rng.normal(0, 0.3, (5, 64)).astype(np.float32)
    b2 = rng.normal(0, 0.1, 5).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2],
                         name="pool1"),
        helper.make_node("Flatten", ["p1"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "w2", "b2"], ["y"], transB=1, name="fc"),
    ]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"),
                                                     (b2, "b2"))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return tiny_onnx(tmp_path_factory.mktemp("m") / "tiny.onnx")


ARRAY = ArrayConfig(rows=8, cols=8, dataflow="ws")


def test_every_executor_bit_exact_and_totals(model):
    """golden == fake-quant == cycle model (fast and stepped), tolerance 0; totals = sums."""
    ev = evaluate(ModelSource(str(model), samples=6), ARRAY, stepped_samples=2)
    rows = {r.candidate: r for r in ev.report.exactness}
    for cand in ("fake-quant float64", "fake-quant layer-wise", "cycle model (fast)",
                 "cycle model (stepped)"):
        assert rows[cand].normative and rows[cand].mismatches == 0 and rows[cand].total > 0
    assert not rows["golden"].normative  # float vs quantized: informative only
    assert ev.report.all_exact
    assert ev.report.total_cycles == ev.sim1.total_cycles
    assert ev.report.total_macs == 4 * 9 * 64 + 64 * 5


def test_report_energy_is_counters_times_table(model):
    """specs/energy.md §5: each layer's component energy = Σ count × per-action energy."""
    ev = evaluate(ModelSource(str(model), samples=2), ARRAY, verify=False)
    per = per_action_energy(HOROWITZ_45NM, context_from_array(ARRAY))
    counts = layer_energy_counters(ev.qgraph, ev.sim1, ARRAY)
    for (name, cnt), layer in zip(counts, ev.report.layers, strict=False):
        assert layer.name == name
        mac = cnt["mac"] * per["mac"]
        assert layer.energy_pj["mac"] == mac
        dram = 0.0
        for a in ("dram_read_bytes", "dram_write_bytes"):
            dram += cnt[a] * per[a]
        assert layer.energy_pj["dram"] == dram
    assert ev.report.exactness == ()


def test_cli_report_writes_files_and_json(model, tmp_path, capsys):
    """``hwsim report``: files written, --json parses, exit 0 when bit-exact."""
    out = tmp_path / "rep"
    rc = main(["report", str(model), "--samples", "4", "--out", str(out), "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["bit_exact"] is True
    assert {p.name for p in out.iterdir()} >= {"report.html", "report.md", "report.json",
                                               "layers.csv", "roofline.png"}


def test_cli_bad_input_one_line_exit_2(model, tmp_path, capsys):
    """Missing file, bad TOML and bad options: one error line on stderr, exit code 2."""
    assert main(["report", str(tmp_path / "missing.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"hwsim report: error: file not found: {tmp_path / 'missing.onnx'}"
    bad = tmp_path / "bad.toml"
    bad.write_text("rows = [\n")
    assert main(["report", str(model), "--array", str(bad)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("hwsim report: error:")
    energy = tmp_path / "e.toml"
    energy.write_text("[energy]\ndram_pj_per_64b = -1\n")
    assert main(["report", str(model), "--energy", str(energy)]) == 2
    assert "dram_pj_per_64b: expected a positive number" in capsys.readouterr().err
    assert main(["report", str(model), "--format", "pdf", "--out", str(tmp_path / "r")]) == 2
    assert "report formats: unknown ['pdf']" in capsys.readouterr().err


def test_report_and_run_compile_the_same_graph_for_an_array(tmp_path) -> None:
    """`hwsim report` / `demo` / `sweep` (compile_for_array) and `hwsim run`
    (quantize_config_for) quantize for an array the same way: with no --weights, a 4-bit
    weight port gets int4 weights in both, and the integer graphs are equal."""
    from hwsim.compiler.quantize import quantize_static
    from hwsim.report.evaluate import compile_for_array, load_source
    from hwsim.sim.run import quantize_config_for
    from hwsim.verify import calibration_batches, single_input

    config = ArrayConfig(rows=4, cols=4, dataflow="ws", weight_bits=4)
    src = ModelSource(str(tiny_onnx(tmp_path / "m.onnx")))
    loaded, data = load_source(src)
    graph = loaded.graph
    via_report = compile_for_array(graph, data.calib, src, config)
    via_run = quantize_static(graph, calibration_batches(single_input(graph), data.calib),
                              quantize_config_for(config))
    assert via_report.weight_format == via_run.weight_format == "int4"
    for a, b in zip(via_report.nodes, via_run.nodes, strict=True):
        assert a.name == b.name
        for key in a.arrays:
            np.testing.assert_array_equal(a.arrays[key], b.arrays[key])
