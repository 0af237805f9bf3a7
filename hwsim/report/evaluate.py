"""Run a model on an array and collect what reports, vectors and sweeps need.

:func:`evaluate` chains the library: load the float model (ONNX or the built-in demo,
:class:`ModelSource`), quantize it for the array (its requantization unit and accumulator),
simulate one inference (batch 1) for cycles, counters and energy, and — unless
``verify=False`` — run the float, fake-quant and integer golden executors and the cycle
model (fast, and stepped on ``stepped_samples`` inputs) on the evaluation inputs and compare
them bit for bit. The result is an :class:`Evaluation` holding a :class:`ReportData`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hwsim.commands.options import DEFAULT_BATCH
from hwsim.energy import HOROWITZ_45NM, EnergyTable, ModelEnergy, model_energy
from hwsim.energy.from_sim import context_from_array, energy_counters
from hwsim.errors import HwsimError
from hwsim.report.data import ExactnessRow, LayerStats, ReportData

if TYPE_CHECKING:
    from hwsim.compiler.qgraph import QGraph
    from hwsim.ir.graph import Graph
    from hwsim.sim.config import ArrayConfig
    from hwsim.sim.graph import ModelResult
    from hwsim.verify import VerifyData

#: Name that selects the built-in demo model (hwsim/data/digits_cnn.onnx).
DEMO_MODEL = "digits"

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def resolve_model_path(model: str) -> Path:
    """``"digits"`` → the packaged demo ONNX file (hwsim.data); anything else is a path."""
    if model == DEMO_MODEL:
        from hwsim.data import demo_model_path

        return demo_model_path()
    return Path(model)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class ModelSource:
    """Where a model and its data come from, and how it is quantized (all JSON-able).

    model: ONNX path or ``"digits"``; calib / inputs / labels: .npy paths or None (the demo
    model brings its own data; otherwise seeded random inputs); samples: evaluate at most
    this many inputs (0: all); seed: for random inputs; weights (None: what the array's
    weight port carries, see hwsim.sim.run.quantize_config_for), observer: compiler choices
    (hwsim.compiler.quantize.QuantizeConfig).
    """

    model: str
    calib: str | None = None
    inputs: str | None = None
    labels: str | None = None
    samples: int = 0
    seed: int = 0
    weights: str | None = None
    observer: str = "minmax"

    def __post_init__(self) -> None:
        if isinstance(self.samples, bool) or not isinstance(self.samples, int) or self.samples < 0:
            raise HwsimError(f"samples: expected an int >= 0, got {self.samples!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (recorded in vector manifests and report JSON)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Everything :func:`evaluate` computed."""

    source: ModelSource
    config: ArrayConfig
    qgraph: QGraph
    inputs: np.ndarray
    labels: np.ndarray | None
    sim1: ModelResult
    energy: ModelEnergy
    verify: Mapping[str, Any] | None
    report: ReportData
    timings: Mapping[str, float] = field(default_factory=dict)


def load_source(src: ModelSource) -> tuple[Graph, VerifyData]:
    """(float graph, :class:`hwsim.verify.VerifyData`) of a source; FileNotFoundError if the
    model is missing. Data as ``hwsim verify`` chooses it (hwsim.verify.resolve_data): the
    given .npy files, else the demo model's packaged calibration / test splits, else seeded
    random inputs with a warning."""
    from hwsim.verify import load_model, resolve_data

    path = resolve_model_path(src.model)
    if not path.is_file():
        if src.model == DEMO_MODEL:
            raise HwsimError(f"the demo model {path} is not installed")
        if path.exists():
            raise HwsimError(f"model {path}: is not a regular file (a directory?); expected "
                             "an ONNX file or 'digits'")
        raise FileNotFoundError(2, "No such file or directory", str(path))
    graph = load_model(str(path))
    data = resolve_data(str(path), graph, src.calib, src.inputs, src.labels, seed=src.seed)
    return graph, data


def compile_for_array(graph: Graph, calib: np.ndarray, src: ModelSource,
                      config: ArrayConfig, batch: int = DEFAULT_BATCH) -> QGraph:
    """Static PTQ of ``graph`` for the array (hwsim.sim.run.quantize_config_for: its
    activation width, requant unit, acc_bits and overflow policy) with the source's weight
    format and observer; calibrated in batches of
    :func:`hwsim.verify.calibration_batch` inputs (specs/compiler.md §3.1)."""
    from hwsim.compiler.quantize import quantize_static
    from hwsim.sim.run import quantize_config_for
    from hwsim.verify import calibration_batch, calibration_batches, single_input

    cfg = quantize_config_for(config, weights=src.weights, observer=src.observer)
    return quantize_static(graph, calibration_batches(
        single_input(graph), calib, calibration_batch(src.observer, batch)), cfg)


def layer_energy_counters(qgraph: QGraph, sim: ModelResult,
                          config: ArrayConfig) -> list[tuple[str, dict[str, int]]]:
    """(layer, action counts) of every simulated layer (specs/energy.md §5.1): requant =
    output elements × the number of requantizations per element (one for conv / gemm; one
    per requantized input and output for add / concat; none for the other ops)."""
    per_elem = {n.name: int(sim.codes[n.output].size) * len(n.requant) for n in qgraph.nodes}
    return [(c.name, energy_counters(c, config, per_elem.get(c.name, 0))) for c in sim.layers]


class _CycleModelChecks:
    """The cycle model against the golden codes of each verify batch (a
    :data:`hwsim.verify.BatchHook`): fast mode on every input, stepped on the first
    ``stepped_samples``; mismatches reduced per batch, and correct predictions of the fast
    mode's first output when ``labels`` are given."""

    def __init__(self, qg: QGraph, name: str, config: ArrayConfig, stepped_samples: int,
                 labels: np.ndarray | None) -> None:
        self.qg, self.name, self.config = qg, name, config
        self.stepped_samples, self.labels = stepped_samples, labels
        self.outs = [n.output for n in qg.nodes]
        self.fast = [0, 0, 0]  # mismatches, total, max |diff|
        self.stepped = [0, 0, 0]
        self.stepped_run = False
        self.correct = 0

    @staticmethod
    def _add(acc: list[int], a: np.ndarray, b: np.ndarray) -> None:
        d = np.abs(np.asarray(a, dtype=np.int64) - np.asarray(b, dtype=np.int64))
        acc[0] += int(np.count_nonzero(d))
        acc[1] += int(d.size)
        acc[2] = max(acc[2], int(d.max()) if d.size else 0)

    def __call__(self, start: int, x: np.ndarray, gold: Mapping[str, np.ndarray]) -> None:
        from hwsim.sim.graph import simulate_qgraph

        fast = simulate_qgraph(self.qg, {self.name: x}, self.config)
        for t in self.outs:
            self._add(self.fast, gold[t], fast.codes[t])
        if self.labels is not None:
            scores = fast.codes[self.qg.outputs[0]].reshape(x.shape[0], -1)
            y = self.labels[start:start + x.shape[0]]
            self.correct += int(np.count_nonzero(scores.argmax(axis=1) == y))
        del fast
        k = min(self.stepped_samples - start, x.shape[0])
        if k > 0:
            st = simulate_qgraph(self.qg, {self.name: x[:k]}, self.config, stepped=True)
            for t in self.outs:
                self._add(self.stepped, gold[t][:k], st.codes[t])
            self.stepped_run = True


def _verify_rows(rep: Mapping[str, Any], checks: _CycleModelChecks) -> list[ExactnessRow]:
    """Comparison rows. golden = cycle model is always normative; golden = fake-quant only in
    the requantization modes declared exact (hwsim.verify.EXACT_MODES, arithmetic.md §9)."""
    p = rep["pairs"]
    exact_mode = bool(rep["exact_mode"])
    rows = [
        ExactnessRow("golden", "fake-quant float64", "all tensors",
                     p["golden_vs_fakequant"]["mismatches"], p["golden_vs_fakequant"]["total"],
                     p["golden_vs_fakequant"]["max_abs_lsb"], normative=exact_mode),
        ExactnessRow("golden", "fake-quant layer-wise", "all tensors",
                     p["golden_vs_fakequant_layerwise"]["mismatches"],
                     p["golden_vs_fakequant_layerwise"]["total"],
                     p["golden_vs_fakequant_layerwise"]["max_abs_lsb"], normative=exact_mode),
        ExactnessRow("golden", "cycle model (fast)", "all tensors", *checks.fast),
    ]
    if checks.stepped_run:
        rows.append(ExactnessRow("golden", "cycle model (stepped)", "all tensors",
                                 *checks.stepped))
    fl = p["golden_vs_float"]
    rows.append(ExactnessRow("float32 (quantized)", "golden", "outputs", fl["mismatches"],
                             fl["total"], fl["max_abs_lsb"], normative=False))
    return rows


def evaluate(
    src: ModelSource,
    config: ArrayConfig,
    table: EnergyTable = HOROWITZ_45NM,
    *,
    verify: bool = True,
    stepped_samples: int = 1,
    progress: Progress = _quiet,
    title: str | None = None,
    batch: int = DEFAULT_BATCH,
) -> Evaluation:
    """Quantize, simulate and (``verify``) cross-check ``src`` on the array ``config``.

    The cross-check streams the inputs ``batch`` at a time (hwsim.verify.verify_graph, with
    the cycle model compared per batch): memory is bounded by ``batch`` and the results do
    not depend on it. ``progress`` receives status lines; bars follow hwsim.progress."""
    from hwsim.sim.graph import simulate_qgraph
    from hwsim.verify import VerifyOptions, single_input, verify_graph

    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    progress(f"loading {src.model}")
    graph, data = load_source(src)
    for w in data.warnings:
        progress(f"warning: {w}")
    name = single_input(graph)
    x = data.inputs if src.samples == 0 else data.inputs[:src.samples]
    y = None if data.labels is None else (
        data.labels if src.samples == 0 else data.labels[:src.samples])
    qg = compile_for_array(graph, data.calib, src, config, batch)
    progress(f"quantized ({qg.weight_format} weights, {config.requant.mode} requantization)")
    timings["compile_s"] = time.perf_counter() - t0
    progress(f"simulating one inference on the {config.rows}x{config.cols} "
             f"{config.dataflow} array")
    sim1 = simulate_qgraph(qg, {name: x[:1]}, config)
    counts = layer_energy_counters(qg, sim1, config)
    energy = model_energy(counts, context_from_array(config), table)
    timings["simulate_s"] = time.perf_counter() - t0 - timings["compile_s"]
    rep = None
    exactness: list[ExactnessRow] = []
    accuracies: dict[str, float] = {}
    if verify:
        progress(f"verifying executors on {x.shape[0]} inputs")
        opts = VerifyOptions(mode=config.requant.mode, weights=qg.weight_format,
                             observer=src.observer, acc_bits=config.acc_bits,
                             acc_overflow=config.acc_overflow)
        labels = None if y is None else np.asarray(y).reshape(-1)
        checks = _CycleModelChecks(qg, name, config, stepped_samples, labels)
        rep = verify_graph(graph, x, labels=y, opts=opts, qgraph=qg, batch=batch,
                           on_batch=checks)
        exactness = _verify_rows(rep, checks)
        if "accuracy" in rep and y is not None:
            names = {"float": "float model", "fakequant": "fake-quant", "golden": "golden"}
            accuracies = {names.get(k, k): v for k, v in rep["accuracy"].items()}
            accuracies["cycle model"] = checks.correct / x.shape[0]
        timings["verify_s"] = time.perf_counter() - t0 - sum(timings.values())
    mode_of = {n.name: n.requant["out"].config.mode for n in qg.nodes if "out" in n.requant}
    layers = []
    for c, le, (_, cnt) in zip(sim1.layers, energy.layers, counts, strict=False):
        layers.append(LayerStats(
            name=c.name, op=c.op, macs=int(c.macs), compute_cycles=int(c.compute_cycles),
            stall_cycles=int(c.stall_cycles), fill_drain_cycles=int(c.fill_drain_cycles),
            utilization=min(1.0, float(c.utilisation)),
            sram_read_bytes=_sum_prefix(cnt, "sram_read_bytes:"),
            sram_write_bytes=_sum_prefix(cnt, "sram_write_bytes:"),
            dram_read_bytes=int(c.dram_read_bytes), dram_write_bytes=int(c.dram_write_bytes),
            energy_pj=le.by_component, requant_mode=mode_of.get(c.name, ""),
            overflow_events=int(c.overflow_events),
        ))
    report = ReportData(
        title=title or f"hwsim report: {graph.name} on {config.rows}x{config.cols} "
                       f"{config.dataflow}",
        model=graph.name, array=config.to_dict(), pes=config.pes, clock_mhz=config.clock_mhz,
        dram_bytes_per_cycle=config.dram_bytes_per_cycle, layers=tuple(layers),
        exactness=tuple(exactness), accuracies=accuracies, energy_table=table.name,
    )
    timings["total_s"] = time.perf_counter() - t0
    return Evaluation(src, config, qg, x, y, sim1, energy, rep, report, timings)


def _sum_prefix(counts: Mapping[str, int], prefix: str) -> int:
    return sum(v for k, v in counts.items() if k.startswith(prefix))
