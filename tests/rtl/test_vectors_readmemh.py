"""specs/vectors.md §2: the .hex files are read by Verilog ``$readmemh`` (Verilator) as the
values hwsim wrote — two's complement, every width, row-major order, in every installed
simulator (tests/rtl/conftest.py parametrises ``sim``). RTL tier."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from hwsim.vectors import encode_hex

pytestmark = pytest.mark.rtl

#: (name, bits, signed) of the memories the testbench reads.
CASES = (("s5", 5, True), ("u4", 4, False), ("s12", 12, True), ("s32", 32, True),
         ("u64", 64, False), ("s64", 64, True))
WORDS = 9


def _values(bits: int, signed: bool, rng: np.random.Generator) -> np.ndarray:
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    hi = min(hi, 2**63 - 1)
    edge = [lo, hi, 0, lo + 1 if signed else 1]
    return np.array(edge + rng.integers(lo, hi, size=WORDS - len(edge), endpoint=True).tolist(),
                    dtype=np.int64)


def _testbench() -> str:
    lines = ["module tb;"]
    for name, bits, _ in CASES:
        lines.append(f"  reg [{bits - 1}:0] {name} [0:{WORDS - 1}];")
    lines.append("  integer i;")
    lines.append("  initial begin")
    for name, _, signed in CASES:
        fmt = "$signed" if signed else ""
        lines += [f'    $readmemh("{name}.hex", {name});',
                  f"    for (i = 0; i < {WORDS}; i = i + 1)",
                  f'      $display("{name} %0d %0d", i, {fmt}({name}[i]));']
    lines += ["    $finish;", "  end", "endmodule", ""]
    return "\n".join(lines)


def _build_and_run(sim: str, cwd: Path) -> str:
    """Compile tb.v with ``sim`` and return what the simulation printed."""
    if sim == "verilator":
        build = ["verilator", "--binary", "-Wno-fatal", "--top-module", "tb", "-Mdir", "obj",
                 "tb.v"]
        exe = [str(cwd / "obj" / "Vtb")]
    else:
        build = ["iverilog", "-g2005", "-o", "tb.vvp", "tb.v"]
        exe = ["vvp", "-n", "tb.vvp"]
    done = subprocess.run(build, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    done = subprocess.run(exe, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_readmemh_reads_back_every_width(sim: str, tmp_path: Path):
    """Every width and signedness: Verilog sees exactly the values written (tolerance 0)."""
    rng = np.random.default_rng(11)
    expected: dict[str, list[int]] = {}
    for name, bits, signed in CASES:
        v = _values(bits, signed, rng)
        expected[name] = v.tolist()
        (tmp_path / f"{name}.hex").write_text(encode_hex(v, bits, signed))
    (tmp_path / "tb.v").write_text(_testbench())
    stdout = _build_and_run(sim, tmp_path)
    got: dict[str, list[int]] = {name: [0] * WORDS for name, _, _ in CASES}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in got:
            got[parts[0]][int(parts[1])] = int(parts[2])
    assert got == expected
