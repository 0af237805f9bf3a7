"""hwsim_systolic_ws against hwsim.sim.simulate_gemm: values and valid cycles
(cycle_model.md §C3-§C5, arithmetic.md §7-§8)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from simenv import build, rtl_sources, run

pytestmark = pytest.mark.rtl

#: Array builds under test: a 4x3 int32-accumulator wrap array and a 3x2 array with an
#: 18-bit saturating accumulator (overflow events on the extreme tiles).
#: Golden vectors committed with the repository (tests/rtl/golden/README.md).
GOLDEN_SET = Path(__file__).parent / "golden" / "digits_4x3"

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


@pytest.mark.parametrize("spec", ARRAYS,
                         ids=lambda s: f"{s['rows']}x{s['cols']}_acc{s['acc_bits']}")
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


def test_array_runs_golden_vectors(sim: str, tmp_path) -> None:
    """vectors.md §4, §C4: the committed golden-vector set tests/rtl/golden/digits_4x3
    (written by `hwsim vectors`, see tests/rtl/golden/README.md) is read from its .hex
    files, lowered to GEMMs and run on the RTL built for the same array (4x3, ws, int32
    wrap, L = 3): every output code, final accumulator and valid cycle equals the files."""
    spec = ARRAYS[0]
    summary = tmp_path / "summary.json"
    run(sim, build_array(sim, spec), "hwsim_systolic_ws", "cocotb_array", test_dir=tmp_path,
        testcase="array_golden_vectors",
        env={"HWSIM_RTL_SUMMARY": str(summary), "HWSIM_RTL_ARRAY": json.dumps(spec),
             "HWSIM_RTL_GOLDEN_DIR": str(GOLDEN_SET)})
    data = json.loads(summary.read_text())
    print(f"hwsim_systolic_ws golden vectors[{sim}]: layers {data['layers']}, {data['gemms']} "
          f"GEMMs, {data['outputs']} outputs, {data['checked']} values checked, "
          f"{data['mismatches']} mismatches")
    assert data["mismatches"] == 0
    assert data["layers"] == sorted(["stem.conv", "dw.conv", "pw.conv", "fc"])
