"""Per-layer event counters (specs/cycle_model.md §C7), as frozen result objects."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["BufferCounts", "LayerCounters"]


@dataclass(frozen=True)
class BufferCounts:
    """SRAM element accesses of the three buffers (§C6)."""

    input_reads: int = 0
    input_writes: int = 0
    weight_reads: int = 0
    weight_writes: int = 0
    output_reads: int = 0
    output_writes: int = 0

    def __add__(self, other: BufferCounts) -> BufferCounts:
        return BufferCounts(**{k: v + getattr(other, k) for k, v in asdict(self).items()})


@dataclass(frozen=True)
class LayerCounters:
    """Everything counted for one layer (§C7).

    ``first_overflow`` is ``(gemm_index, m, n, k)`` of the first overflowing accumulator
    addition (GEMMs in execution order, then (m, n, k) row-major), or None.
    ``fill_stall_cycles`` (part of ``stall_cycles``), ``compulsory_dram_bytes`` and
    ``mapping`` (the first GEMM's mapping label) are §C6.2–§C6.4.
    """

    @property
    def dram_ratio(self) -> float:
        """DRAM bytes over the compulsory bytes (§C6.2); 0 when nothing is compulsory."""
        if not self.compulsory_dram_bytes:
            return 0.0
        return (self.dram_read_bytes + self.dram_write_bytes) / self.compulsory_dram_bytes

    name: str
    op: str
    unit: str  # "array" or "vector"
    macs: int
    array_cycles: int
    compute_cycles: int
    fill_drain_cycles: int
    stall_cycles: int
    total_cycles: int
    active_pe_cycles: int
    pe_cycles: int
    utilisation: float
    sram: BufferCounts
    dram_read_bytes: int
    dram_write_bytes: int
    overflow_events: int
    first_overflow: tuple[int, int, int, int] | None
    fill_stall_cycles: int = 0
    compulsory_dram_bytes: int = 0
    mapping: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data."""
        d = asdict(self)
        d["first_overflow"] = None if self.first_overflow is None else list(self.first_overflow)
        return d
