"""Testbench building blocks shared by the cocotb benches (specs/rtl.md §R6).

The benches follow the cocotb example split: a *driver* puts stimulus into the design,
a *monitor* samples the outputs every clock, the *model* is hwsim itself (the Python
golden functions), and a *checker* compares monitor samples with the model, tolerance 0.
Stimulus for the long streams is written to a ``$readmemh`` file and loaded by the test
harness on a ``mem_load`` pulse, so one vector enters the design per clock.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge


def pack_fields(fields: Sequence[tuple[np.ndarray, int]]) -> list[int]:
    """Concatenate unsigned bit fields (most significant first) into Python ints per row.

    ``fields`` is a sequence of ``(values, width)``; negative values are taken modulo
    ``2**width`` (two's complement), so a field holds the low ``width`` bits.
    """
    n = len(fields[0][0])
    words = [0] * n
    for values, width in fields:
        mask = (1 << width) - 1
        vals = [int(v) & mask for v in np.asarray(values).tolist()]
        words = [(w << width) | v for w, v in zip(words, vals, strict=True)]
    return words


def write_hex(path: Path, words: Iterable[int], width: int) -> None:
    """Write ``words`` as one ``width``-bit hex word per line, atomically (temp + replace)."""
    digits = (width + 3) // 4
    text = "".join(f"{w:0{digits}x}\n" for w in words)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def lanes(value: object, width: int, n: int) -> list[int | None]:
    """Split a flattened bus sample (lane ``i`` in bits ``[i*width, (i+1)*width)``, rtl.md
    §R1) into ``n`` unsigned ints; a lane holding any X/Z bit is ``None``.

    4-state simulators (Icarus) show X in data registers that were never written (§R1: only
    valid bits are reset), so a bus must be resolved lane by lane, and only lanes whose
    valid bit is set carry a defined value.
    """
    bits = str(value)
    if len(bits) != width * n:
        raise ValueError(f"bus of {len(bits)} bits is not {n} lanes of {width}")
    out: list[int | None] = []
    for i in range(n):
        lane = bits[len(bits) - (i + 1) * width: len(bits) - i * width]
        out.append(int(lane, 2) if set(lane) <= {"0", "1"} else None)
    return out


def signed_field(word: int, lsb: int, width: int) -> int:
    """The two's complement value of bits ``[lsb, lsb + width)`` of ``word``."""
    v = (word >> lsb) & ((1 << width) - 1)
    return v - (1 << width) if v >> (width - 1) else v


@dataclass
class Checker:
    """Compares observed values with the model; counts checks and keeps the first mismatches.

    ``summary_path`` (from ``HWSIM_RTL_SUMMARY``) receives a JSON summary at :meth:`finish`
    so the pytest wrapper can report how many vectors were checked.
    """

    name: str
    summary_path: Path | None = None
    checked: int = 0
    mismatches: int = 0
    first: list[str] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)

    def compare(self, what: str, expected: int, got: int) -> bool:
        self.checked += 1
        if expected == got:
            return True
        self.mismatches += 1
        if len(self.first) < 10:
            self.first.append(f"{what}: expected {expected}, got {got}")
        return False

    def unknown(self, what: str, raw: object) -> None:
        """Record a sample that should be defined but holds X/Z bits (always a mismatch)."""
        self.checked += 1
        self.mismatches += 1
        if len(self.first) < 10:
            self.first.append(f"{what}: expected a 0/1 value, got {raw}")

    def compare_arrays(self, what: str, expected: np.ndarray, got: np.ndarray) -> None:
        """Element-wise comparison of two equally shaped integer arrays."""
        e = np.asarray(expected, dtype=np.int64)
        g = np.asarray(got, dtype=np.int64)
        if e.shape != g.shape:
            raise AssertionError(f"{self.name}: {what}: shape {g.shape} != model shape {e.shape}")
        bad = np.argwhere(e != g)
        self.checked += e.size
        self.mismatches += len(bad)
        for idx in bad[: max(0, 10 - len(self.first))]:
            t = tuple(int(i) for i in idx)
            self.first.append(f"{what}{list(t)}: expected {int(e[t])}, got {int(g[t])}")

    def finish(self) -> None:
        """Write the summary and raise AssertionError if anything differed."""
        if self.summary_path is not None:
            data = {
                "name": self.name,
                "checked": self.checked,
                "mismatches": self.mismatches,
                "first": self.first,
                **self.extra,
            }
            tmp = self.summary_path.with_name(self.summary_path.name + ".tmp")
            tmp.write_text(json.dumps(data, indent=1))
            os.replace(tmp, self.summary_path)
        if self.mismatches:
            raise AssertionError(
                f"{self.name}: {self.mismatches} of {self.checked} values differ from hwsim; "
                "first: " + "; ".join(self.first)
            )
        if self.checked == 0:
            raise AssertionError(f"{self.name}: nothing was checked")


def checker_from_env(name: str) -> Checker:
    """A :class:`Checker` writing its summary where ``HWSIM_RTL_SUMMARY`` points (if set)."""
    path = os.environ.get("HWSIM_RTL_SUMMARY")
    return Checker(name=name, summary_path=Path(path) if path else None)


async def reset(dut: object, cycles: int = 2) -> None:
    """Hold ``dut.rst`` high for ``cycles`` rising edges."""
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


async def sample_each_cycle(
    dut: object, n_cycles: int, probe: Callable[[int], None]
) -> None:
    """Monitor loop: after every rising edge (in ReadOnly) call ``probe(cycle)``."""
    for cycle in range(n_cycles):
        await RisingEdge(dut.clk)
        await ReadOnly()
        probe(cycle)


def idle_gap_bursts(rng: np.random.Generator, n_vec: int) -> list[tuple[int, int]]:
    """(go cycles, idle cycles) bursts covering n_vec vectors: idle-gap input stream."""
    bursts = []
    left = n_vec
    while left > 0:
        run = min(left, int(rng.integers(20, 400)))
        bursts.append((run, int(rng.integers(1, 6))))
        left -= run
    return bursts


async def start_stream(dut: object, n_vec: int) -> None:
    """Clock, reset, and the ``mem_load`` pulse that makes a stream bench (tb_pe.v,
    tb_requant.v) ``$readmemh`` its ``n_vec`` vectors; ``go`` stays low."""
    Clock(dut.clk, 10, unit="ns").start()
    dut.go.value = 0
    dut.mem_load.value = 0
    dut.n_vec.value = n_vec
    await reset(dut)
    dut.mem_load.value = 1
    await RisingEdge(dut.clk)
    dut.mem_load.value = 0


async def drive_bursts(dut: object, bursts: Sequence[tuple[int, int]]) -> None:
    """Driver of a stream bench: ``go`` high for each burst's run, then low for its gap."""
    for run, gap in bursts:
        dut.go.value = 1
        for _ in range(run):
            await RisingEdge(dut.clk)
        dut.go.value = 0
        for _ in range(gap):
            await RisingEdge(dut.clk)
