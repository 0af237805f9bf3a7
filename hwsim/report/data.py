"""The data a report shows: frozen result records, and their JSON / CSV forms.

A :class:`ReportData` is built by the caller (the demo, the ``report`` command) from the
simulator's per-layer counters, the energy model and the executor comparisons; the
renderers in :mod:`hwsim.report.render` and the plots in :mod:`hwsim.report.plots` only
read it.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from hwsim.errors import HwsimError


@dataclass(frozen=True)
class LayerStats:
    """One layer's simulated numbers.

    cycles = compute + stall + fill_drain; utilization = macs / (cycles × PEs) in [0, 1];
    traffic in bytes; energy_pj: pJ per component (hwsim.energy.COMPONENTS order);
    overflow_events: accumulator additions that left the acc_bits range (arithmetic.md §7).
    """

    name: str
    op: str
    macs: int
    compute_cycles: int
    stall_cycles: int
    fill_drain_cycles: int
    utilization: float
    sram_read_bytes: int
    sram_write_bytes: int
    dram_read_bytes: int
    dram_write_bytes: int
    energy_pj: Mapping[str, float] = field(default_factory=dict)
    requant_mode: str = ""
    overflow_events: int = 0
    #: specs/cycle_model.md §C6.2/§C6.4: each operand read once + output written once, and
    #: the mapping the memory model used
    compulsory_dram_bytes: int = 0
    mapping: str = ""

    def __post_init__(self) -> None:
        for f in ("macs", "compute_cycles", "stall_cycles", "fill_drain_cycles",
                  "sram_read_bytes", "sram_write_bytes", "dram_read_bytes", "dram_write_bytes",
                  "overflow_events", "compulsory_dram_bytes"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise HwsimError(f"layer {self.name} {f}: expected an int >= 0, got {v!r}")
        if not (0.0 <= self.utilization <= 1.0):
            raise HwsimError(
                f"layer {self.name} utilization: expected [0, 1], got {self.utilization}"
            )
        object.__setattr__(self, "energy_pj", dict(self.energy_pj))

    @property
    def cycles(self) -> int:
        """Total cycles of the layer."""
        return self.compute_cycles + self.stall_cycles + self.fill_drain_cycles

    @property
    def dram_bytes(self) -> int:
        """DRAM bytes moved (read + write)."""
        return self.dram_read_bytes + self.dram_write_bytes

    @property
    def energy_total_pj(self) -> float:
        """Sum of the component energies."""
        total = 0.0
        for v in self.energy_pj.values():
            total += v
        return total


@dataclass(frozen=True)
class ExactnessRow:
    """One comparison of two executors on one tensor: mismatching elements and max |Δ| (LSB).

    ``normative``: the pair must agree bit for bit (False for informational rows such as the
    float model against the quantized one, whose difference is quantization error).
    """

    reference: str
    candidate: str
    tensor: str
    mismatches: int
    total: int
    max_abs_diff: int
    normative: bool = True

    @property
    def exact(self) -> bool:
        """True when every element matched."""
        return self.mismatches == 0


@dataclass(frozen=True)
class ReportData:
    """Everything one report shows (see the module docstring)."""

    title: str
    model: str
    array: Mapping[str, Any]
    pes: int
    clock_mhz: float
    dram_bytes_per_cycle: float
    layers: tuple[LayerStats, ...]
    exactness: tuple[ExactnessRow, ...] = ()
    accuracies: Mapping[str, float] = field(default_factory=dict)
    energy_table: str = ""
    #: pJ per action of the energy table for this array (hwsim.energy.per_action_energy)
    energy_actions: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.pes <= 0:
            raise HwsimError(f"report pes: expected > 0, got {self.pes}")
        if not self.layers:
            raise HwsimError("report layers: expected at least one layer")
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "exactness", tuple(self.exactness))

    @property
    def total_cycles(self) -> int:
        """Cycles of all layers (executed one after another)."""
        return sum(layer.cycles for layer in self.layers)

    @property
    def total_macs(self) -> int:
        """MACs of all layers."""
        return sum(layer.macs for layer in self.layers)

    @property
    def total_energy_pj(self) -> float:
        """Energy of all layers in pJ."""
        total = 0.0
        for layer in self.layers:
            total += layer.energy_total_pj
        return total

    @property
    def utilization(self) -> float:
        """Whole-model utilisation: MACs / (cycles × PEs)."""
        return self.total_macs / (self.total_cycles * self.pes) if self.total_cycles else 0.0

    @property
    def all_exact(self) -> bool:
        """True when every normative executor comparison matched bit for bit."""
        return all(r.exact for r in self.exactness if r.normative)


def summary(data: ReportData) -> dict[str, Any]:
    """Headline numbers: totals, latency at the clock, energy, utilisation, exactness."""
    latency_us = data.total_cycles / data.clock_mhz if data.clock_mhz > 0 else math.nan
    return {
        "model": data.model,
        "layers": len(data.layers),
        "macs": data.total_macs,
        "cycles": data.total_cycles,
        "latency_us": latency_us,
        "utilization": data.utilization,
        "energy_uj": data.total_energy_pj * 1e-6,
        "energy_pj_per_mac": data.total_energy_pj / data.total_macs if data.total_macs else 0.0,
        "bit_exact": data.all_exact,
        "accuracies": dict(data.accuracies),
    }


def layer_rows(data: ReportData) -> list[dict[str, Any]]:
    """One flat dict per layer (the CSV rows)."""
    comps = sorted({c for layer in data.layers for c in layer.energy_pj})
    rows = []
    for layer in data.layers:
        row: dict[str, Any] = {
            "layer": layer.name,
            "op": layer.op,
            "macs": layer.macs,
            "cycles": layer.cycles,
            "compute_cycles": layer.compute_cycles,
            "stall_cycles": layer.stall_cycles,
            "fill_drain_cycles": layer.fill_drain_cycles,
            "utilization": layer.utilization,
            "sram_read_bytes": layer.sram_read_bytes,
            "sram_write_bytes": layer.sram_write_bytes,
            "dram_read_bytes": layer.dram_read_bytes,
            "dram_write_bytes": layer.dram_write_bytes,
            "requant_mode": layer.requant_mode,
            "overflow_events": layer.overflow_events,
            "mapping": layer.mapping,
            "compulsory_dram_bytes": layer.compulsory_dram_bytes,
            "dram_ratio": (layer.dram_bytes / layer.compulsory_dram_bytes
                           if layer.compulsory_dram_bytes else 0.0),
        }
        for c in comps:
            row[f"energy_{c}_pj"] = layer.energy_pj.get(c, 0.0)
        row["energy_total_pj"] = layer.energy_total_pj
        rows.append(row)
    return rows


def to_json_dict(data: ReportData) -> dict[str, Any]:
    """A JSON-compatible dict of the whole report (summary, layers, exactness, accuracies)."""
    return {
        "title": data.title,
        "summary": summary(data),
        "array": dict(data.array),
        "pes": data.pes,
        "clock_mhz": data.clock_mhz,
        "dram_bytes_per_cycle": data.dram_bytes_per_cycle,
        "energy_table": data.energy_table,
        "energy_actions_pj": dict(data.energy_actions),
        "layers": layer_rows(data),
        "exactness": [asdict(r) | {"exact": r.exact} for r in data.exactness],
        "accuracies": dict(data.accuracies),
    }


def to_csv(data: ReportData) -> str:
    """Per-layer CSV text (header + one row per layer)."""
    rows = layer_rows(data)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()
