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
from hwsim.energy import (
    HOROWITZ_45NM,
    EnergyTable,
    ModelEnergy,
    model_energy,
    per_action_energy,
)
from hwsim.energy.from_sim import context_from_array, energy_counters
from hwsim.errors import HwsimError
from hwsim.report.data import ExactnessRow, LayerStats, ReportData
from hwsim.sources import DEMO_MODEL, LoadedModel, model_path  # noqa: F401 - re-exported

if TYPE_CHECKING:
    from hwsim.compiler.qgraph import QGraph
    from hwsim.ir.graph import Graph
    from hwsim.sim.config import ArrayConfig
    from hwsim.sim.graph import ModelResult
    from hwsim.verify import VerifyData

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def resolve_model_path(model: str) -> Path:
    """``"digits"`` → the packaged demo ONNX file (hwsim.data); anything else is a path."""
    return model_path(model)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class ModelSource:
    """Where a model and its data come from, and how it is quantized (all JSON-able).

    model: any MODEL of :mod:`hwsim.sources` (float ONNX, quantized ONNX, hwsim integer
    graph JSON, ``"digits"``); calib / inputs / labels: .npy paths or None (the demo model
    brings its own data; otherwise seeded random inputs); samples: evaluate at most this
    many inputs (0: all); seed: for random inputs; weights (None: what the array's weight
    port carries, see hwsim.sim.run.quantize_config_for), observer, act_dtype (None: the
    array's activation port), narrow_range, qparams (external activation qparams JSON):
    compiler choices of a float model (hwsim.compiler.quantize.QuantizeConfig); profile:
    engine profile of a quantized ONNX import ("" : this machine's ONNX Runtime).
    """

    model: str
    calib: str | None = None
    inputs: str | None = None
    labels: str | None = None
    samples: int = 0
    seed: int = 0
    weights: str | None = None
    observer: str | None = None
    profile: str = ""
    act_dtype: str | None = None
    narrow_range: bool = False
    qparams: str | None = None

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


def load_source(src: ModelSource) -> tuple[LoadedModel, VerifyData]:
    """(loaded model, :class:`hwsim.verify.VerifyData`) of a source
    (:func:`hwsim.sources.load_model_source`, :func:`hwsim.sources.source_data`):
    FileNotFoundError if the model is missing; for a float model the given .npy files, else
    the demo model's packaged calibration / test splits, else seeded random inputs with a
    warning; a quantized model has no calibration set (``calib`` None)."""
    from hwsim.sources import check_quantized_options, load_model_source, source_data

    loaded = load_model_source(src.model, profile=src.profile or None)
    check_quantized_options(loaded, src.to_dict())
    data = source_data(loaded, src.calib, src.inputs, src.labels, seed=src.seed)
    return loaded, data


def compile_for_array(graph: Graph | LoadedModel, calib: np.ndarray | None,
                      src: ModelSource, config: ArrayConfig,
                      batch: int = DEFAULT_BATCH) -> QGraph:
    """The integer graph that runs on ``config``. A quantized source: its own graph with the
    array's accumulator (:func:`hwsim.sources.qgraph_for_array`). A float graph: static PTQ
    for the array (hwsim.sim.run.quantize_config_for: its activation width, requant unit,
    acc_bits and overflow policy) with the source's weight format, observer, activation
    dtype, narrow range and external qparams; calibrated in batches of
    :func:`hwsim.verify.calibration_batch` inputs (specs/compiler.md §3.1)."""
    from hwsim.compiler.quantize import quantize_static
    from hwsim.sim.run import quantize_config_for
    from hwsim.sources import qgraph_for_array
    from hwsim.verify import calibration_batch, calibration_batches, single_input

    if isinstance(graph, LoadedModel):
        if graph.quantized:
            return qgraph_for_array(graph.qgraph, config)
        graph = graph.graph
    observer = src.observer or "minmax"
    cfg = quantize_config_for(config, weights=src.weights, observer=observer)
    if src.act_dtype or src.narrow_range:
        cfg = dataclasses.replace(cfg, act_dtype=src.act_dtype or cfg.act_dtype,
                                  narrow_range=src.narrow_range)
    given = None
    if src.qparams:
        from hwsim.compiler.quantize import load_qparams_json

        given = load_qparams_json(src.qparams)
    return quantize_static(graph, calibration_batches(
        single_input(graph), calib, calibration_batch(observer, batch)), cfg, given)


def layer_energy_counters(qgraph: QGraph, sim: ModelResult,
                          config: ArrayConfig) -> list[tuple[str, dict[str, int]]]:
    """(layer, action counts) of every simulated layer (specs/energy.md §5.1): requant =
    output elements × the number of requantizations per element (one for conv / gemm; one
    per requantized input and output for add / concat; none for the other ops)."""
    per_elem = {n.name: int(sim.codes[n.output].size) * len(n.requant) for n in qgraph.nodes}
    return [(c.name, energy_counters(c, config, per_elem.get(c.name, 0))) for c in sim.layers]


def estimate_energy(qgraph: QGraph, sim: ModelResult, config: ArrayConfig,
                    table: EnergyTable = HOROWITZ_45NM) -> ModelEnergy:
    """Energy of one simulated run (:func:`hwsim.sim.graph.simulate_qgraph` of ``qgraph``
    on ``config``): the counters of every layer times the energy per action of ``table``
    (specs/energy.md §5); ``.total_pj``, ``.by_component``, ``.layers``."""
    return model_energy(layer_energy_counters(qgraph, sim, config), context_from_array(config),
                        table)


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
    ]
    if "golden_vs_fakequant_layerwise" in p:
        lw = p["golden_vs_fakequant_layerwise"]
        rows.append(ExactnessRow("golden", "fake-quant layer-wise", "all tensors",
                                 lw["mismatches"], lw["total"], lw["max_abs_lsb"],
                                 normative=exact_mode))
    rows.append(ExactnessRow("golden", "cycle model (fast)", "all tensors", *checks.fast))
    if checks.stepped_run:
        rows.append(ExactnessRow("golden", "cycle model (stepped)", "all tensors",
                                 *checks.stepped))
    if "golden_vs_float" in p:  # a quantized source has no float model
        fl = p["golden_vs_float"]
        rows.append(ExactnessRow("float32 (quantized)", "golden", "outputs", fl["mismatches"],
                                 fl["total"], fl["max_abs_lsb"], normative=False))
    return rows


def fixed_batch(loaded: LoadedModel) -> int:
    """Inputs of one run of the model: the declared leading dimension of its input when the
    model fixes it (a GEMM declared ``[256, 256]`` runs 256 rows at once), else 1 (a
    symbolic batch dimension, specs/ir.md §6)."""
    return max(1, int(loaded.input_shape[0]))


def verify_qgraph_only(qg: QGraph, inputs: np.ndarray, *, labels: np.ndarray | None = None,
                       batch: int = DEFAULT_BATCH,
                       on_batch: Any = None) -> dict[str, Any]:
    """The cross-check of a quantized source (no float model): golden vs fake-quant on every
    tensor and ``on_batch`` (the cycle model), streamed ``batch`` inputs at a time; the
    report has ``pairs.golden_vs_fakequant``, ``exact_mode``, ``accuracy`` (with labels)
    and ``ok`` like :func:`hwsim.verify.verify_graph`."""
    from hwsim.progress import bar
    from hwsim.reference.fakequant_exec import run_fakequant
    from hwsim.reference.golden_exec import run_golden
    from hwsim.verify import EXACT_MODES, _Tally, compact_codes

    name = qg.inputs[0]
    n = int(inputs.shape[0])
    y = None if labels is None else np.asarray(labels).reshape(-1)
    tally = _Tally()
    correct = {"golden": 0, "fakequant": 0}
    outs = [nd.output for nd in qg.nodes]
    with bar(n, "verify") as b:
        for start in range(0, n, batch):
            xb = np.asarray(inputs[start:start + batch], dtype=np.float32)
            b.stage("golden")
            gr = run_golden(qg, {name: xb})
            gold = compact_codes(gr.codes)
            del gr
            if on_batch is not None:
                b.stage("cycle model")
                on_batch(start, xb, gold)
            b.stage("fake-quant")
            fq = run_fakequant(qg, {name: xb})
            for t in outs:
                tally.add(gold[t], fq.codes[t])
            if y is not None:
                yb = y[start:start + xb.shape[0]]
                for key, codes in (("golden", gold), ("fakequant", fq.codes)):
                    pred = np.asarray(codes[qg.outputs[0]]).reshape(xb.shape[0], -1)
                    correct[key] += int(np.count_nonzero(pred.argmax(axis=1) == yb))
            del fq
            b.update(xb.shape[0])
    exact = qg.requant_config.mode in EXACT_MODES
    rep: dict[str, Any] = {"pairs": {"golden_vs_fakequant": tally.as_dict()},
                           "exact_mode": exact, "samples": n}
    if y is not None:
        rep["accuracy"] = {k: v / n for k, v in correct.items()}
    rep["ok"] = not (exact and tally.mismatches)
    return rep


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
    from hwsim.verify import VerifyOptions, verify_graph

    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    progress(f"loading {src.model}")
    loaded, data = load_source(src)
    for w in data.warnings:
        progress(f"warning: {w}")
    name = loaded.input_name
    x = data.inputs if src.samples == 0 else data.inputs[:src.samples]
    y = None if data.labels is None else (
        data.labels if src.samples == 0 else data.labels[:src.samples])
    qg = compile_for_array(loaded, data.calib, src, config, batch)
    what = (f"{loaded.kind} model, its own qparams" if loaded.quantized
            else f"{qg.weight_format} weights, {config.requant.mode} requantization")
    progress(f"quantized ({what})")
    timings["compile_s"] = time.perf_counter() - t0
    progress(f"simulating one run on the {config.rows}x{config.cols} "
             f"{config.dataflow} array")
    fixed = fixed_batch(loaded)
    sim1 = simulate_qgraph(qg, {name: x[:fixed]}, config)
    counts = layer_energy_counters(qg, sim1, config)
    energy = estimate_energy(qg, sim1, config, table)
    timings["simulate_s"] = time.perf_counter() - t0 - timings["compile_s"]
    rep = None
    exactness: list[ExactnessRow] = []
    accuracies: dict[str, float] = {}
    if verify:
        progress(f"verifying executors on {x.shape[0]} inputs")
        labels = None if y is None else np.asarray(y).reshape(-1)
        checks = _CycleModelChecks(qg, name, config, stepped_samples, labels)
        if loaded.quantized:
            rep = verify_qgraph_only(qg, x, labels=y, batch=batch, on_batch=checks)
        else:
            opts = VerifyOptions(mode=config.requant.mode, weights=qg.weight_format,
                                 observer=src.observer or "minmax", acc_bits=config.acc_bits,
                                 acc_overflow=config.acc_overflow)
            rep = verify_graph(loaded.graph, x, labels=y, opts=opts, qgraph=qg, batch=batch,
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
            compulsory_dram_bytes=int(c.compulsory_dram_bytes), mapping=c.mapping,
        ))
    shown = config
    if loaded.quantized:  # the datapath that ran: the model's own requantization
        from hwsim.arith import RequantConfig

        shown = dataclasses.replace(
            config, profile=qg.profile or "",
            requant=RequantConfig() if qg.profile else qg.requant_config)
    report = ReportData(
        title=title or f"hwsim report: {loaded.name} on {config.rows}x{config.cols} "
                       f"{config.dataflow}",
        model=loaded.name, array=shown.to_dict(), pes=config.pes, clock_mhz=config.clock_mhz,
        dram_bytes_per_cycle=config.dram_bytes_per_cycle, layers=tuple(layers),
        exactness=tuple(exactness), accuracies=accuracies, energy_table=table.name,
        energy_actions=per_action_energy(table, context_from_array(config)),
    )
    timings["total_s"] = time.perf_counter() - t0
    return Evaluation(src, config, qg, x, y, sim1, energy, rep, report, timings)


def _sum_prefix(counts: Mapping[str, int], prefix: str) -> int:
    return sum(v for k, v in counts.items() if k.startswith(prefix))
