"""hwsim_requant against hwsim.arith.requantize: >= 100,000 vectors (arithmetic.md §6, §8)."""

from __future__ import annotations

import json

import pytest
from simenv import HDL_DIR, build, rtl_sources, run

pytestmark = pytest.mark.rtl


def build_requant(sim: str):
    """The tb_requant harness build (cached per simulator and sources)."""
    return build(sim, "tb_requant", "tb_requant",
                 [*rtl_sources("hwsim_requant"), HDL_DIR / "tb_requant.v"])


def test_requant_matches_hwsim(sim: str, tmp_path) -> None:
    """§6, §8: tflite, tflite_single, dyadic and custom with every rounding mode and shift,
    ties, negatives, saturating and wrapping output stages, four output formats: every
    output equals hwsim.arith.requantize and arrives exactly 3 cycles after its input."""
    build_dir = build_requant(sim)
    summary = tmp_path / "summary.json"
    run(sim, build_dir, "tb_requant", "cocotb_requant", test_dir=tmp_path,
        env={"HWSIM_RTL_SUMMARY": str(summary), "HWSIM_RTL_VECTORS": "100000"})
    data = json.loads(summary.read_text())
    print(f"hwsim_requant[{sim}]: {data['vectors']} vectors x {data['outputs_per_vector']} "
          f"formats, {data['checked']} values checked, {data['mismatches']} mismatches, "
          f"{data['ties']} exact ties, {data['clamped']} outputs at act_min/act_max, "
          f"{data['wrap_vectors']} vectors through the wrapping stage, "
          f"shifts covered {data['shifts']}")
    assert data["mismatches"] == 0
    assert data["vectors"] >= 100_000
    assert data["shifts"] == {"tflite": 62, "tflite_single": 62, "dyadic": 63, "custom": 63}
    assert data["rounding_pairs"] == 10
