"""Workloads without ONNX: SCALE-Sim topology CSVs and ``.cfg`` array files (issue 13).

A topology is a list of layers, each lowered to one GEMM (specs/cycle_model.md §C1):

- **conv** CSV (SCALE-Sim's default format; one header line, wrapped here)::

      Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width,
          Channels, Num Filter, Strides,
      conv1, 224, 224, 7, 7, 3, 64, 2,

  no padding (SCALE-Sim's convention): ``OH = ⌊(H − Fh)/S⌋ + 1``, ``OW = ⌊(W − Fw)/S⌋ + 1``;
  ``M = OH·OW``, ``K = Fh·Fw·C``, ``N = Num Filter``;
- **GEMM** CSV (SCALE-Sim's ``mnk`` format, recognised by its header)::

      Layer, M, N, K,
      qkt, 1024, 1024, 64,

  SCALE-Sim reads it as a conv of an ``M × K`` input with one ``1 × K`` filter per output
  column, so ``M`` streams, ``K`` is the reduction and ``N`` the filters — the GEMM
  ``[M, K] @ [K, N]`` of §C1.

Each layer is simulated (:func:`topology_layer_result`) on the array with seeded random
operands of the lowered GEMM in the array's formats (activations uniform over the
``act_bits`` codes, weights over the symmetric ``weight_bits`` range, bias in ±2^12; the
values do not change cycles or traffic). :func:`compute_report_rows` gives per-layer rows
whose columns map onto SCALE-Sim's ``COMPUTE_REPORT.csv``:

========================  ==============================================================
SCALE-Sim column          hwsim column (specs/cycle_model.md)
========================  ==============================================================
``Total Cycles``          ``total_cycles`` = array cycles (§C5, incl. the requant latency
                          ``L`` that SCALE-Sim lacks, §C8.1) + stalls (§C6.3)
``Stall Cycles``          ``stall_cycles`` (§C6.3: fill, steady-state, epilogue)
``Overall Util %``        ``overall_util_pct`` = 100·MACs / (R·C·total_cycles)
``Compute Util %``        ``compute_util_pct`` = 100·MACs / (R·C·(array_cycles − L))
``Mapping Efficiency %``  ``mapping_efficiency_pct`` = 100·MACs / (R·C·F·T), the share of
                          PE slots holding data in the streamed cycles (§C2, §C3)
========================  ==============================================================

plus ``compute_cycles`` (``F·T``), ``fill_drain_cycles``, ``array_cycles``, ``macs`` and the
GEMM ``m, k, n``. :func:`load_scalesim_cfg` reads a SCALE-Sim ``.cfg`` into an
:class:`hwsim.sim.config.ArrayConfig`.
"""

from __future__ import annotations

import configparser
import csv
import dataclasses
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwsim.errors import ConfigError
from hwsim.sim.config import ArrayConfig

__all__ = ["TopologyLayer", "TopologyWorkload", "compute_report_csv", "compute_report_rows",
           "load_scalesim_cfg", "load_topology", "topology_layer_result", "topology_report"]

_CONV_COLUMNS = ("layer name", "ifmap height", "ifmap width", "filter height",
                 "filter width", "channels", "num filter", "strides")


@dataclass(frozen=True)
class TopologyLayer:
    """One topology row as the GEMM ``[m, k] @ [k, n]`` it lowers to (§C1); ``kind`` is
    ``"conv"`` or ``"gemm"`` (the CSV it came from)."""

    name: str
    kind: str
    m: int
    k: int
    n: int

    def __post_init__(self) -> None:
        for f in ("m", "k", "n"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"topology layer {self.name!r}: {f} must be an integer "
                                  f">= 1, got {v!r}")

    @property
    def macs(self) -> int:
        return self.m * self.k * self.n


def _int(text: str, where: str, column: str) -> int:
    try:
        v = int(text.strip())
    except ValueError:
        raise ConfigError(f"{where}: column {column!r}: expected an integer, got "
                          f"{text.strip()!r}") from None
    if v < 1:
        raise ConfigError(f"{where}: column {column!r}: expected an integer >= 1, got {v}")
    return v


def _rows(path: Path) -> list[list[str]]:
    from hwsim.inputs import read_text

    text = read_text(path, "topology")
    rows = [[c.strip() for c in row] for row in csv.reader(io.StringIO(text))]
    rows = [r[:-1] if r and r[-1] == "" else r for r in rows if any(c for c in r)]
    if len(rows) < 2:
        raise ConfigError(f"topology {path}: expected a header row and at least one layer")
    return rows


def load_topology(path: str | Path) -> tuple[TopologyLayer, ...]:
    """The layers of a SCALE-Sim topology CSV (conv or ``Layer, M, N, K``; see the module
    docstring); ConfigError naming the file, line and column of a bad entry."""
    p = Path(path)
    rows = _rows(p)
    header = [h.lower() for h in rows[0]]
    layers = []
    gemm = [h.upper() for h in header[1:4]] == ["M", "N", "K"]
    if not gemm and tuple(header[:8]) != _CONV_COLUMNS:
        raise ConfigError(f"topology {p}: header {rows[0]!r} is neither SCALE-Sim's conv "
                          f"format ({', '.join(_CONV_COLUMNS)}) nor its GEMM format "
                          "(Layer, M, N, K)")
    want = 4 if gemm else 8
    names = set()
    for line, row in enumerate(rows[1:], start=2):
        where = f"topology {p} line {line}"
        if len(row) < want:
            raise ConfigError(f"{where}: {len(row)} columns; expected {want}")
        name = row[0] or f"layer{line - 1}"
        if name in names:
            raise ConfigError(f"{where}: layer name {name!r} is used twice")
        names.add(name)
        if gemm:
            m, n, k = (_int(row[i], where, rows[0][i]) for i in (1, 2, 3))
            layers.append(TopologyLayer(name, "gemm", m, k, n))
            continue
        h, w, fh, fw, c, nf, s = (_int(row[i], where, rows[0][i]) for i in range(1, 8))
        if fh > h or fw > w:
            raise ConfigError(f"{where}: filter {fh}x{fw} is larger than the input {h}x{w}")
        oh, ow = (h - fh) // s + 1, (w - fw) // s + 1
        layers.append(TopologyLayer(name, "conv", oh * ow, fh * fw * c, nf))
    return tuple(layers)


#: SCALE-Sim .cfg keys (section architecture_presets) -> ArrayConfig fields.
_CFG_KEYS = {"arrayheight": "rows", "arraywidth": "cols", "ifmapsramszkb": "input_sram_bytes",
             "filtersramszkb": "weight_sram_bytes", "ofmapsramszkb": "output_sram_bytes",
             "dataflow": "dataflow", "bandwidth": "dram_bytes_per_cycle"}


def load_scalesim_cfg(path: str | Path, base: ArrayConfig | None = None) -> ArrayConfig:
    """An ArrayConfig from a SCALE-Sim ``.cfg``: ``ArrayHeight``/``ArrayWidth`` → rows/cols,
    ``IfmapSramSzkB``/``FilterSramSzkB``/``OfmapSramSzkB`` (KiB) → the three buffers,
    ``Dataflow`` → dataflow, ``Bandwidth`` (words per cycle, one word = ``act_bits``) →
    ``dram_bytes_per_cycle``; every other field of ``base`` (default: ArrayConfig's) is
    kept. Keys hwsim has no counterpart for (offsets, banks, run name) are ignored."""
    from hwsim.inputs import read_text

    p = Path(path)
    parser = configparser.ConfigParser()
    try:
        parser.read_string(read_text(p, "SCALE-Sim config"))
    except configparser.Error as exc:
        raise ConfigError(f"SCALE-Sim config {p}: not a .cfg file "
                          f"({str(exc).splitlines()[0]})") from None
    section = next((s for s in parser.sections() if s.lower() == "architecture_presets"), None)
    if section is None:
        raise ConfigError(f"SCALE-Sim config {p}: expected an [architecture_presets] section")
    base = base or ArrayConfig(rows=16, cols=16, dataflow="ws")
    fields: dict[str, Any] = {}
    for key, value in parser.items(section):
        f = _CFG_KEYS.get(key.replace("_", "").lower())
        if f is None:
            continue
        where = f"SCALE-Sim config {p} [{section}] {key}"
        if f == "dataflow":
            fields[f] = value.strip().lower()
        elif f == "dram_bytes_per_cycle":
            try:
                words = float(value)
            except ValueError:
                raise ConfigError(f"{where}: expected a number, got {value!r}") from None
            fields[f] = words * base.act_bits / 8
        else:
            v = _int(value, where, key)
            fields[f] = v * 1024 if f.endswith("_bytes") else v
    for need in ("rows", "cols"):
        if need not in fields:
            raise ConfigError(f"SCALE-Sim config {p}: missing "
                              f"{'ArrayHeight' if need == 'rows' else 'ArrayWidth'}")
    try:
        return dataclasses.replace(base, **fields)
    except ConfigError as exc:
        raise ConfigError(f"SCALE-Sim config {p}: {exc}") from None


def topology_layer_result(layer: TopologyLayer, config: ArrayConfig, seed: int = 0) -> Any:
    """Simulate one layer's GEMM on ``config`` with seeded random operands in the array's
    formats (module docstring); returns :class:`hwsim.sim.simulate.LayerResult`."""
    from hwsim.arith import make_requant_params
    from hwsim.sim.lowering import GemmOperands
    from hwsim.sim.simulate import simulate_gemm_layer

    rng = np.random.default_rng([seed, layer.m, layer.k, layer.n])
    lo, hi = -(1 << (config.act_bits - 1)), (1 << (config.act_bits - 1)) - 1
    wmax = (1 << (config.weight_bits - 1)) - 1
    a = rng.integers(lo, hi + 1, size=(layer.m, layer.k), dtype=np.int64)
    w = rng.integers(-wmax, wmax + 1, size=(layer.k, layer.n), dtype=np.int64)
    bias = rng.integers(-(1 << 12), (1 << 12) + 1, size=layer.n, dtype=np.int64)
    params = make_requant_params(2.0 ** -10 / np.sqrt(layer.k), config.requant, zero_point=0)
    op = "conv" if layer.kind == "conv" else "gemm"
    return simulate_gemm_layer(layer.name, op, [GemmOperands(a, w, bias, a.size, (lo, hi))],
                               params, config)


def compute_report_rows(layers: Sequence[TopologyLayer], config: ArrayConfig,
                        seed: int = 0) -> list[dict[str, Any]]:
    """One row per layer with the COMPUTE_REPORT columns of the module docstring."""
    pes = config.pes
    rows = []
    for layer in layers:
        c = topology_layer_result(layer, config, seed).counters
        busy = c.array_cycles - config.requant_latency
        rows.append({
            "layer": layer.name, "kind": layer.kind, "m": layer.m, "k": layer.k, "n": layer.n,
            "macs": int(c.macs), "total_cycles": int(c.total_cycles),
            "stall_cycles": int(c.stall_cycles), "array_cycles": int(c.array_cycles),
            "compute_cycles": int(c.compute_cycles),
            "fill_drain_cycles": int(c.fill_drain_cycles),
            "overall_util_pct": 100.0 * c.macs / (pes * c.total_cycles),
            "compute_util_pct": 100.0 * c.macs / (pes * busy),
            "mapping_efficiency_pct": 100.0 * c.macs / (pes * c.compute_cycles),
            "dram_read_bytes": int(c.dram_read_bytes),
            "dram_write_bytes": int(c.dram_write_bytes),
            "overflow_events": int(c.overflow_events),
        })
    return rows


def topology_report(layers: Sequence[TopologyLayer], config: ArrayConfig, table: Any,
                    title: str, seed: int = 0) -> Any:
    """A :class:`hwsim.report.data.ReportData` of the topology on ``config`` (cycles,
    traffic and energy per layer; no executor cross-check: the operands are random)."""
    from hwsim.energy import model_energy, per_action_energy
    from hwsim.energy.from_sim import context_from_array, energy_counters
    from hwsim.report.data import LayerStats, ReportData

    results = [topology_layer_result(layer, config, seed).counters for layer in layers]
    counts = [(c.name, energy_counters(c, config, outputs=layer.m * layer.n))
              for c, layer in zip(results, layers, strict=True)]
    energy = model_energy(counts, context_from_array(config), table)
    stats = []
    for c, le, (_, cnt) in zip(results, energy.layers, counts, strict=True):
        stats.append(LayerStats(
            name=c.name, op=c.op, macs=int(c.macs), compute_cycles=int(c.compute_cycles),
            stall_cycles=int(c.stall_cycles), fill_drain_cycles=int(c.fill_drain_cycles),
            utilization=min(1.0, float(c.utilisation)),
            sram_read_bytes=sum(v for k, v in cnt.items() if k.startswith("sram_read_bytes:")),
            sram_write_bytes=sum(v for k, v in cnt.items()
                                 if k.startswith("sram_write_bytes:")),
            dram_read_bytes=int(c.dram_read_bytes), dram_write_bytes=int(c.dram_write_bytes),
            energy_pj=le.by_component, requant_mode=config.requant.mode,
            overflow_events=int(c.overflow_events)))
    return ReportData(title=title, model=title, array=config.to_dict(), pes=config.pes,
                      clock_mhz=config.clock_mhz,
                      dram_bytes_per_cycle=config.dram_bytes_per_cycle, layers=tuple(stats),
                      exactness=(), accuracies={}, energy_table=table.name,
                      energy_actions=per_action_energy(table, context_from_array(config)))


def compute_report_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The rows of :func:`compute_report_rows` as CSV text (header first)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["layer"],
                       lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


@dataclass(frozen=True)
class TopologyWorkload:
    """A topology as a sweep workload (hwsim.sweep.Workload): every layer simulated on
    each point's array with seeded operands; energy from the counters (specs/energy.md)."""

    name: str
    layers: tuple[TopologyLayer, ...]
    seed: int = 0

    def evaluate(self, config: ArrayConfig, table: Any) -> dict[str, Any]:
        from hwsim.sweep import layer_point_metrics

        return layer_point_metrics(
            [(topology_layer_result(layer, config, self.seed).counters, layer.m * layer.n)
             for layer in self.layers], config, table)
