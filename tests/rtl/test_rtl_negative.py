"""The checkers catch a wrong model: deliberately faulty Python models must fail (rtl.md §R7).

Each bench runs with ``HWSIM_RTL_FAULT`` set, which swaps a semantic choice in the model
only (the RTL is unchanged); the cocotb test must fail and report value mismatches.
"""

from __future__ import annotations

import json

import pytest
from simenv import HDL_DIR, build, rtl_sources, run
from test_rtl_requant import build_requant
from test_rtl_systolic import ARRAYS, build_array

pytestmark = pytest.mark.rtl


def _expect_failure(sim, build_dir, toplevel, module, tmp_path, env, testcase=None) -> dict:
    summary = tmp_path / "summary.json"
    with pytest.raises(SystemExit):
        run(sim, build_dir, toplevel, module, test_dir=tmp_path, testcase=testcase,
            env={"HWSIM_RTL_SUMMARY": str(summary), **env})
    return json.loads(summary.read_text())


def test_requant_checker_catches_swapped_rounding(sim: str, tmp_path) -> None:
    """§6/§8: the requant model with every rounding mode replaced by another one differs."""
    data = _expect_failure(sim, build_requant(sim), "tb_requant", "cocotb_requant", tmp_path,
                           {"HWSIM_RTL_FAULT": "rounding_swapped", "HWSIM_RTL_VECTORS": "20000"})
    print(f"requant, swapped rounding: {data['mismatches']} of {data['checked']} differ")
    assert data["mismatches"] > 0
    assert all(" out" in line for line in data["first"]), data["first"]


def test_pe_checker_catches_swapped_policy(sim: str, tmp_path) -> None:
    """§7: the accumulator model with wrap and saturate exchanged differs."""
    build_dir = build(sim, "tb_pe", "tb_pe", [*rtl_sources("hwsim_pe"), HDL_DIR / "tb_pe.v"])
    data = _expect_failure(sim, build_dir, "tb_pe", "cocotb_pe", tmp_path,
                           {"HWSIM_RTL_FAULT": "policy_swapped", "HWSIM_RTL_VECTORS": "5000"})
    print(f"pe, swapped policy: {data['mismatches']} of {data['checked']} differ")
    assert data["mismatches"] > 0
    assert all(" acc" in line or "sticky" in line or "overflow" in line for line in data["first"])


def test_array_checker_catches_swapped_rounding(sim: str, tmp_path) -> None:
    """§8 via §C4: the array's model with a different rounding mode differs in values only."""
    spec = ARRAYS[0]
    data = _expect_failure(sim, build_array(sim, spec), "hwsim_systolic_ws", "cocotb_array",
                           tmp_path, {"HWSIM_RTL_FAULT": "rounding_swapped",
                                      "HWSIM_RTL_ARRAY": json.dumps(spec)},
                           testcase="array_gemm_tiles")
    print(f"array, swapped rounding: {data['mismatches']} of {data['checked']} differ")
    assert data["mismatches"] > 0
    assert all("values" in line for line in data["first"]), data["first"]
