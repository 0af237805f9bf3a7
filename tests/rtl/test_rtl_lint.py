"""Every RTL module is lint-clean Verilog-2005 in every installed simulator (rtl.md §R5):
``verilator --lint-only -Wall`` and ``iverilog -g2005 -Wall``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from simenv import RTL_MODULES, rtl_sources, setup_environment

pytestmark = pytest.mark.rtl

#: Parameter sets linted per module: defaults plus the corners of each parameter range.
LINT_PARAMS: dict[str, tuple[dict[str, int], ...]] = {
    "hwsim_mac": (
        {},
        {"A_BITS": 2, "W_BITS": 3, "A_SIGNED": 0, "ACC_BITS": 2, "SATURATE": 1},
        {"A_BITS": 16, "W_BITS": 16, "W_SIGNED": 0, "ACC_BITS": 32},
    ),
    "hwsim_pe": (
        {},
        {"ACC_BITS": 12, "SATURATE": 1, "A_SIGNED": 0},
        {"A_BITS": 4, "W_BITS": 4, "ACC_BITS": 2},
    ),
    "hwsim_requant": (
        {},
        {"ACC_BITS": 20, "OUT_BITS": 32, "OUT_SIGNED": 0},
        {"ACC_BITS": 2, "OUT_BITS": 2},
    ),
    "hwsim_systolic_ws": (
        {},
        {"ROWS": 1, "COLS": 1},
        {"ROWS": 3, "COLS": 5, "ACC_BITS": 18, "SATURATE": 1, "OUT_BITS": 4, "OUT_SIGNED": 0},
    ),
}


def _lint_command(sim: str, module: str, params: dict[str, int], workdir: Path) -> list[str]:
    """The strictest static check each simulator offers, restricted to Verilog-2005."""
    sources = [str(s) for s in rtl_sources(module)]
    if sim == "verilator":
        return [shutil.which("verilator") or "verilator", "--lint-only", "-Wall",
                "--default-language", "1364-2005", "--top-module", module,
                *(f"-G{k}={v}" for k, v in params.items()), *sources]
    if sim == "icarus":
        return ["iverilog", "-g2005", "-Wall", "-o", str(workdir / "lint.vvp"), "-s", module,
                *(f"-P{module}.{k}={v}" for k, v in params.items()), *sources]
    raise AssertionError(f"no lint command for simulator {sim!r}")


@pytest.mark.parametrize(
    ("module", "params"),
    [(m, p) for m in RTL_MODULES for p in LINT_PARAMS[m]],
    ids=lambda v: (v if isinstance(v, str)
                   else ",".join(f"{k}={x}" for k, x in v.items()) or "default"),
)
def test_lint_wall_clean(sim: str, module: str, params: dict[str, int], tmp_path: Path) -> None:
    """rtl.md §R5: no warning at all, as Verilog-2005: ``verilator --lint-only -Wall`` (warnings
    are fatal in lint-only mode) and ``iverilog -g2005 -Wall`` (elaborates the module)."""
    setup_environment()
    cmd = _lint_command(sim, module, params, tmp_path)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy(),
                          cwd=tmp_path, check=False)
    output = proc.stdout + proc.stderr
    if sim == "verilator":
        clean = "%Warning" not in output and "%Error" not in output
    else:  # iverilog prints nothing at all for a clean compile
        clean = not output.strip()
    assert proc.returncode == 0 and clean, f"{' '.join(cmd)}\n{output}"


def test_every_rtl_file_is_linted() -> None:
    """Each rtl/*.v file belongs to a linted module (no file escapes §R5)."""
    from simenv import RTL_DIR

    linted = {f for files in RTL_MODULES.values() for f in files}
    assert {p.name for p in RTL_DIR.glob("*.v")} == linted
