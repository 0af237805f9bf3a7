"""hwsim_systolic_ws against hwsim.sim.simulate_gemm: values and valid cycles
(cycle_model.md §C3-§C5, arithmetic.md §7-§8)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simenv import build, rtl_sources, run

pytestmark = pytest.mark.rtl

#: Array builds under test: a 4x3 int32-accumulator wrap array and a 3x2 array with an
#: 18-bit saturating accumulator (overflow events on the extreme tiles).
ARRAYS = (
    {"rows": 4, "cols": 3, "acc_bits": 32, "saturate": 0},
    {"rows": 3, "cols": 2, "acc_bits": 18, "saturate": 1},
)


def build_array(sim: str, spec: dict):
    """Build hwsim_systolic_ws with the parameters of ``spec`` (cached)."""
    name = f"ws_{spec['rows']}x{spec['cols']}_acc{spec['acc_bits']}_sat{spec['saturate']}"
    params = {"ROWS": spec["rows"], "COLS": spec["cols"], "ACC_BITS": spec["acc_bits"],
              "SATURATE": spec["saturate"]}
    return build(sim, name, "hwsim_systolic_ws", rtl_sources("hwsim_systolic_ws"), params)


@pytest.mark.parametrize("spec", ARRAYS, ids=lambda s: f"{s['rows']}x{s['cols']}_acc{s['acc_bits']}")
def test_array_matches_cycle_model(sim: str, spec: dict, tmp_path) -> None:
    """§C3/§C4: every output code, final accumulator and overflow count of ten GEMM tiles
    (single fold, partial and multiple k / column folds, all requant modes, idle-gap
    streams) equals hwsim.sim.simulate_gemm (stepped and fast), and every output becomes
    valid in exactly the cycle the cycle model predicts."""
    build_dir = build_array(sim, spec)
    summary = tmp_path / "summary.json"
    run(sim, build_dir, "hwsim_systolic_ws", "cocotb_array", test_dir=tmp_path,
        testcase="array_gemm_tiles",
        env={"HWSIM_RTL_SUMMARY": str(summary), "HWSIM_RTL_ARRAY": json.dumps(spec)})
    data = json.loads(summary.read_text())
    print(f"hwsim_systolic_ws {spec}[{sim}]: {data['gemms']} GEMMs "
          f"({data['gap_gemms']} with idle gaps), {data['outputs']} outputs, "
          f"{data['overflow_events']} overflow events, {data['checked']} values checked, "
          f"{data['mismatches']} mismatches")
    assert data["mismatches"] == 0
    assert data["gap_gemms"] >= 2


def tiny_cnn_onnx(path: Path, seed: int = 7) -> Path:
    """conv3x3(4->6, groups 2, pad 1) + relu + flatten + gemm(216->5) on a 1x4x6x6 input."""
    onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 0.4, (6, 2, 3, 3)).astype(np.float32)
    b1 = rng.normal(0, 0.1, 6).astype(np.float32)
    w2 = rng.normal(0, 0.1, (5, 216)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], group=2,
                         name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Flatten", ["r1"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "w2"], ["y"], transB=1, name="fc"),
    ]
    graph = helper.make_graph(
        nodes, "tiny_cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_array_runs_golden_vectors(sim: str, tmp_path) -> None:
    """vectors.md §4, §C4: a golden-vector set written by hwsim.vectors for this array (4x3,
    ws, int32 wrap, L = 3) is read back from its .hex files, lowered to GEMMs, and run on the
    RTL: every output code, final accumulator and valid cycle equals the files."""
    from hwsim.report.evaluate import ModelSource
    from hwsim.sim.config import ArrayConfig
    from hwsim.vectors.generate import generate_vectors

    spec = ARRAYS[0]
    model = tiny_cnn_onnx(tmp_path / "tiny_cnn.onnx")
    config = ArrayConfig(rows=spec["rows"], cols=spec["cols"], dataflow="ws",
                         acc_bits=spec["acc_bits"], acc_overflow="wrap", requant_latency=3,
                         input_sram_bytes=4096, weight_sram_bytes=4096, output_sram_bytes=4096)
    vec = generate_vectors(tmp_path / "vectors", ModelSource(str(model)), config, sample=0)
    summary = tmp_path / "summary.json"
    run(sim, build_array(sim, spec), "hwsim_systolic_ws", "cocotb_array", test_dir=tmp_path,
        testcase="array_golden_vectors",
        env={"HWSIM_RTL_SUMMARY": str(summary), "HWSIM_RTL_ARRAY": json.dumps(spec),
             "HWSIM_RTL_GOLDEN_DIR": str(vec)})
    data = json.loads(summary.read_text())
    print(f"hwsim_systolic_ws golden vectors[{sim}]: layers {data['layers']}, {data['gemms']} "
          f"GEMMs, {data['outputs']} outputs, {data['checked']} values checked, "
          f"{data['mismatches']} mismatches")
    assert data["mismatches"] == 0
    assert data["layers"] == ["conv1", "fc"]
