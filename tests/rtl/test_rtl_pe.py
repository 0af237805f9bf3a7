"""hwsim_pe against hwsim.arith.accumulate: >= 100,000 MACs + corners (arithmetic.md §7)."""

from __future__ import annotations

import json

import pytest
from simenv import HDL_DIR, build, rtl_sources, run

pytestmark = pytest.mark.rtl


def _build_pe(sim: str):
    return build(sim, "tb_pe", "tb_pe", [*rtl_sources("hwsim_pe"), HDL_DIR / "tb_pe.v"])


def test_pe_matches_accumulate(sim: str, tmp_path) -> None:
    """§7: six PE variants (s/u operands, 16..32-bit accumulators, wrap/saturate) equal
    hwsim.arith.accumulate after every one of >= 100,000 MACs, with idle gaps."""
    build_dir = _build_pe(sim)
    summary = tmp_path / "summary.json"
    run(sim, build_dir, "tb_pe", "cocotb_pe", test_dir=tmp_path,
        env={"HWSIM_RTL_SUMMARY": str(summary), "HWSIM_RTL_VECTORS": "100000"})
    data = json.loads(summary.read_text())
    print(f"hwsim_pe[{sim}]: {data['macs']} MACs in {data['vectors']} vectors, "
          f"{data['checked']} values checked, {data['mismatches']} mismatches")
    assert data["mismatches"] == 0
    assert data["macs"] >= 100_000 + 600  # 100,000 random MACs plus ~700 in corner runs
