"""Design-space sweeps: array size × dataflow × SRAM size × accumulator width.

A grid (TOML, :func:`load_grid`) expands into :class:`SweepPoint` s; each point becomes an
:class:`hwsim.sim.config.ArrayConfig` (the grid's ``base`` array with rows, cols, dataflow,
the three buffer sizes and ``acc_bits`` replaced) and is evaluated independently — on local
processes (:class:`concurrent.futures.ProcessPoolExecutor`) by default, in-process with
``workers=0``, or on a Dask distributed cluster given its scheduler address. Every point is
deterministic, so all three give identical results (tested).

A workload is a picklable object with ``name`` and ``evaluate(config, table) -> dict``:
:class:`GemmWorkload` (a list of GEMM shapes with seeded operands) and
:class:`ModelWorkload` (a float model quantized for each point's array).

Grid file (all lists; ``base`` and ``energy_table`` paths are relative to the grid file)::

    [sweep]
    arrays = [[8, 8], [16, 16]]        # rows, cols
    dataflows = ["ws", "os"]
    sram_kib = [64, 256]               # size of each of the input, weight and output buffers
    acc_bits = [24, 32]
    objectives = ["dram", "cycles"]    # optional: the mapper's objective (cycle_model §C6.4)
    base = "../arrays/ws16x16.toml"    # optional base array config
    energy_table = "../energy/horowitz45.toml"   # optional
"""

from __future__ import annotations

import concurrent.futures
import csv
import dataclasses
import io
import itertools
import json
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from hwsim.energy import HOROWITZ_45NM, EnergyTable, load_energy_table, model_energy
from hwsim.energy.from_sim import context_from_array, energy_counters
from hwsim.errors import ConfigError, HwsimError
from hwsim.fileio import atomic_write
from hwsim.sim.config import ArrayConfig, array_config_from_dict, load_array_config

if TYPE_CHECKING:
    from hwsim.report.evaluate import ModelSource

_GRID_KEYS = ("arrays", "dataflows", "sram_kib", "acc_bits", "base", "energy_table",
              "objectives")

#: Metrics every workload returns (plus any extra keys it likes).
METRICS = ("cycles", "energy_pj", "macs", "utilization", "dram_bytes", "overflow_events")


class Workload(Protocol):
    """What a sweep evaluates at every point."""

    name: str

    def evaluate(self, config: ArrayConfig, table: EnergyTable) -> dict[str, Any]: ...


@dataclass(frozen=True)
class SweepGrid:
    """The axes of a sweep; every combination is one point."""

    arrays: tuple[tuple[int, int], ...]
    dataflows: tuple[str, ...]
    sram_kib: tuple[int, ...]
    acc_bits: tuple[int, ...]
    base: ArrayConfig = field(default_factory=lambda: ArrayConfig(rows=16, cols=16, dataflow="ws"))
    energy_table: EnergyTable = HOROWITZ_45NM
    #: mapper objectives (specs/cycle_model.md §C6.4); empty: the base array's only
    objectives: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for f in ("arrays", "dataflows", "sram_kib", "acc_bits"):
            v = getattr(self, f)
            if not isinstance(v, tuple) or not v:
                raise ConfigError(f"sweep {f}: expected a non-empty list")
        for a in self.arrays:
            ok = isinstance(a, tuple) and len(a) == 2 and all(
                isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in a)
            if not ok:
                raise ConfigError(
                    f"sweep arrays: expected [rows, cols] pairs of ints >= 1, got {a!r}"
                )
        for f in ("sram_kib", "acc_bits"):
            for k in getattr(self, f):
                if isinstance(k, bool) or not isinstance(k, int) or k < 1:
                    raise ConfigError(f"sweep {f}: expected integers >= 1, got {k!r}")
        for d in self.dataflows:
            if not isinstance(d, str):
                raise ConfigError(f"sweep dataflows: expected strings, got {d!r}")
        # Every value on its own must be valid for the base array (a value the array
        # rejects is an error, not an "invalid" row); only combinations that no buffer
        # can hold (SRAM too small for the array) become invalid rows.
        from hwsim.sim.config import DATAFLOWS, check_acc_bits

        for d in self.dataflows:
            if d not in DATAFLOWS:
                raise ConfigError(f"sweep dataflows: {d!r} is not a dataflow; expected one of "
                                  f"{', '.join(DATAFLOWS)}")
        for k in self.acc_bits:
            check_acc_bits(k, self.base.act_bits, self.base.weight_bits,
                           f"sweep acc_bits value {k!r}")
        from hwsim.sim.mapping import OBJECTIVES

        if not isinstance(self.objectives, tuple) or any(
                o not in OBJECTIVES for o in self.objectives):
            raise ConfigError(f"sweep objectives: expected a list of {', '.join(OBJECTIVES)}, "
                              f"got {self.objectives!r}")

    @property
    def size(self) -> int:
        """Number of points (the product of the axis lengths), without expanding them."""
        return (len(self.arrays) * len(self.dataflows) * len(self.sram_kib)
                * len(self.acc_bits) * max(1, len(self.objectives)))


@dataclass(frozen=True)
class SweepPoint:
    """One design point."""

    index: int
    rows: int
    cols: int
    dataflow: str
    sram_kib: int
    acc_bits: int
    objective: str = ""  # "" = the base array's

    @property
    def label(self) -> str:
        """Short human-readable name, e.g. ``16x16-ws-256K-acc32`` (``-dram`` etc. appended
        when the grid varies the mapper's objective)."""
        return (f"{self.rows}x{self.cols}-{self.dataflow}-{self.sram_kib}K-acc{self.acc_bits}"
                + (f"-{self.objective}" if self.objective else ""))

    def array_config(self, base: ArrayConfig) -> ArrayConfig:
        """``base`` with this point's fields replaced (ConfigError if the result is invalid)."""
        b = self.sram_kib * 1024
        return dataclasses.replace(base, rows=self.rows, cols=self.cols, dataflow=self.dataflow,
                                   input_sram_bytes=b, weight_sram_bytes=b,
                                   output_sram_bytes=b, acc_bits=self.acc_bits,
                                   objective=self.objective or base.objective)


#: Estimated seconds per design point of a model workload: a fixed part (quantization,
#: lowering) plus this many seconds per MAC of one inference (digits CNN: about 0.3 s).
POINT_SECONDS_FIXED = 0.3
POINT_SECONDS_PER_MAC = 1e-8
#: A sweep estimated to take longer than this needs confirmation (hwsim sweep --yes).
CONFIRM_SECONDS = 600.0


def graph_macs(graph: Any) -> int:
    """MACs of one inference (batch 1) of a float IR graph: conv2d, gemm and matmul."""
    import math

    total = 0
    for n in graph.nodes:
        if n.op not in ("conv2d", "gemm", "matmul"):
            continue
        out = math.prod(graph.tensors[n.outputs[0]].shape[1:])
        if n.op == "conv2d":
            w = graph.tensors[n.inputs[1]].shape
            total += out * math.prod(w[1:])
        else:
            total += out * graph.tensors[n.inputs[0]].shape[-1]
    return total


def estimate_seconds(points: int, macs: int, workers: int) -> float:
    """Wall-clock estimate of a model sweep: points × (fixed + per-MAC time) / workers."""
    per_point = POINT_SECONDS_FIXED + POINT_SECONDS_PER_MAC * macs
    return points * per_point / max(1, workers)


def layer_point_metrics(layers: Sequence[tuple[Any, int]], config: ArrayConfig,
                        table: EnergyTable) -> dict[str, Any]:
    """A sweep point's :data:`METRICS` (and energy by component) from its layers'
    ``(LayerCounters, output count)``: sums of cycles, MACs, DRAM bytes and overflow events,
    energy = counters × table (specs/energy.md)."""
    counts = [(c.name, energy_counters(c, config, outputs=outputs)) for c, outputs in layers]
    cycles = sum(c.total_cycles for c, _ in layers)
    macs = sum(c.macs for c, _ in layers)
    energy = model_energy(counts, context_from_array(config), table)
    return {
        "cycles": cycles, "energy_pj": energy.total_pj, "macs": macs,
        "utilization": macs / (config.pes * cycles) if cycles else 0.0,
        "dram_bytes": sum(c.dram_read_bytes + c.dram_write_bytes for c, _ in layers),
        "overflow_events": sum(c.overflow_events for c, _ in layers),
        **{f"energy_{k}_pj": v for k, v in energy.by_component.items()},
    }


def grid_points(grid: SweepGrid) -> list[SweepPoint]:
    """All points of the grid, arrays outermost, then dataflow, SRAM, accumulator width,
    mapper objective."""
    return [SweepPoint(i, r, c, d, s, a, o) for i, ((r, c), d, s, a, o) in enumerate(
        itertools.product(grid.arrays, grid.dataflows, grid.sram_kib, grid.acc_bits,
                          grid.objectives or ("",)))]


def _as_tuple(data: Mapping[str, Any], key: str, where: str) -> tuple[Any, ...]:
    v = data.get(key)
    if not isinstance(v, list) or not v:
        raise ConfigError(f"{where} [sweep] {key}: expected a non-empty list, got {v!r}")
    return tuple(tuple(x) if isinstance(x, list) else x for x in v)


def grid_from_dict(data: Mapping[str, Any], base_dir: Path = Path("."),
                   where: str = "sweep grid") -> SweepGrid:
    """A :class:`SweepGrid` from the ``[sweep]`` table of a grid file."""
    unknown = sorted(set(data) - set(_GRID_KEYS))
    if unknown:
        raise ConfigError(f"{where} [sweep]: unknown key(s) {unknown}; expected {list(_GRID_KEYS)}")
    base = ArrayConfig(rows=16, cols=16, dataflow="ws")
    if "base" in data:
        if isinstance(data["base"], str):
            try:
                base = load_array_config(base_dir / data["base"])
            except FileNotFoundError:
                raise ConfigError(f"{where} [sweep] base: file not found: "
                                  f"{base_dir / data['base']}") from None
        elif isinstance(data["base"], dict):
            base = array_config_from_dict(data["base"], source=f"{where} [sweep] base")
        else:
            raise ConfigError(f"{where} [sweep] base: expected a file name or a table")
    table = HOROWITZ_45NM
    if "energy_table" in data:
        if not isinstance(data["energy_table"], str):
            raise ConfigError(f"{where} [sweep] energy_table: expected a file name")
        try:
            table = load_energy_table(base_dir / data["energy_table"])
        except FileNotFoundError:
            raise ConfigError(f"{where} [sweep] energy_table: file not found: "
                              f"{base_dir / data['energy_table']}") from None
    axes = {k: _as_tuple(data, k, where) for k in ("arrays", "dataflows", "sram_kib",
                                                     "acc_bits")}
    if "objectives" in data:
        axes["objectives"] = _as_tuple(data, "objectives", where)
    try:
        return SweepGrid(**axes, base=base, energy_table=table)
    except ConfigError as exc:
        raise ConfigError(f"{where} [sweep]: {exc}") from None


def load_grid(path: str | Path) -> SweepGrid:
    """Read a sweep grid TOML file (format in the module docstring)."""
    from hwsim.inputs import read_text

    p = Path(path)
    text = read_text(p, "sweep grid")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"sweep grid {p}: bad TOML: {exc}") from None
    if not isinstance(doc.get("sweep"), dict):
        raise ConfigError(f"sweep grid {p}: expected a [sweep] table")
    return grid_from_dict(doc["sweep"], p.parent, where=f"sweep grid {p}")


@dataclass(frozen=True)
class GemmWorkload:
    """A list of GEMM layers ``(M, K, N)`` with seeded random int8 operands (§C1 shapes).

    Operands: activations uniform in [-128, 127], weights in [-127, 127], bias in
    [-2^12, 2^12]; requantization: the base array's requant config at scale 2^-10 / sqrt(K).
    """

    name: str
    shapes: tuple[tuple[int, int, int], ...]
    seed: int = 0

    def evaluate(self, config: ArrayConfig, table: EnergyTable) -> dict[str, Any]:
        from hwsim.arith import make_requant_params
        from hwsim.sim.lowering import GemmOperands
        from hwsim.sim.simulate import simulate_gemm_layer

        rng = np.random.default_rng(self.seed)
        layers = []
        for i, (m, k, n) in enumerate(self.shapes):
            a = rng.integers(-128, 128, size=(m, k), dtype=np.int64)
            w = rng.integers(-127, 128, size=(k, n), dtype=np.int64)
            bias = rng.integers(-(1 << 12), (1 << 12) + 1, size=n, dtype=np.int64)
            params = make_requant_params(2.0 ** -10 / np.sqrt(k), config.requant, zero_point=0)
            res = simulate_gemm_layer(f"gemm{i}", "gemm", [GemmOperands(a, w, bias, a.size)],
                                      params, config)
            layers.append((res.counters, m * n))
        return layer_point_metrics(layers, config, table)


@dataclass(frozen=True)
class ModelWorkload:
    """A model (:class:`hwsim.report.evaluate.ModelSource`) compiled for each point's array
    (its requantization unit and accumulator) and simulated for one inference (batch 1)."""

    source: ModelSource
    #: also measure top-1 accuracy of the cycle model (fast mode) on the labelled inputs
    accuracy: bool = False

    @property
    def name(self) -> str:
        """The model argument."""
        return str(self.source.model)

    def evaluate(self, config: ArrayConfig, table: EnergyTable) -> dict[str, Any]:
        from hwsim.report.evaluate import evaluate

        ev = evaluate(self.source, config, table, verify=False)
        r = ev.report
        out = {
            "cycles": r.total_cycles, "energy_pj": r.total_energy_pj, "macs": r.total_macs,
            "utilization": r.utilization,
            "dram_bytes": sum(layer.dram_bytes for layer in r.layers),
            "overflow_events": sum(c.overflow_events for c in ev.sim1.layers),
            **{f"energy_{k}_pj": v for k, v in ev.energy.by_component.items()},
        }
        if self.accuracy:
            out["accuracy"] = _cycle_model_accuracy(ev, config)
        return out


def _cycle_model_accuracy(ev: Any, config: ArrayConfig, batch: int = 64) -> float:
    """Top-1 accuracy of the cycle model (fast mode) of ``ev.qgraph`` on ``config`` over the
    evaluation inputs and labels of ``ev`` (argmax of the first output)."""
    from hwsim.sim.graph import simulate_qgraph

    if ev.labels is None:
        raise HwsimError("sweep --accuracy: the inputs have no labels; give --labels (the "
                         "demo model 'digits' brings its own)")
    name = ev.qgraph.inputs[0]
    y = np.asarray(ev.labels).reshape(-1)
    correct = 0
    for i in range(0, len(y), batch):
        xb = np.asarray(ev.inputs[i:i + batch], dtype=np.float32)
        res = simulate_qgraph(ev.qgraph, {name: xb}, config)
        scores = res.codes[ev.qgraph.outputs[0]].reshape(xb.shape[0], -1)
        correct += int(np.count_nonzero(scores.argmax(axis=1) == y[i:i + batch]))
    return correct / len(y)


#: A design whose accuracy is more than this below the sweep's best is excluded from the
#: Pareto front ("loses accuracy"), like a design whose accumulator overflows.
ACCURACY_TOLERANCE = 0.01


def _excluded_why(r: Mapping[str, Any], results: Sequence[Mapping[str, Any]] = ()) -> str:
    """Why a point is not a Pareto candidate ("" if it is one)."""
    if r.get("status") != "ok":
        return "failed" if str(r.get("status", "")).startswith("failed") else "invalid"
    if r.get("overflow_events", 0):
        return "accumulator overflow"
    accs = [x["accuracy"] for x in results if x.get("status") == "ok" and "accuracy" in x]
    if "accuracy" in r and accs and r["accuracy"] < max(accs) - ACCURACY_TOLERANCE:
        return "accuracy lost"
    return ""


def _evaluate_task(task: tuple[Workload, SweepPoint, ArrayConfig, EnergyTable]) -> dict[str, Any]:
    workload, point, base, table = task
    row: dict[str, Any] = {"index": point.index, "label": point.label, "rows": point.rows,
                           "cols": point.cols, "dataflow": point.dataflow,
                           "sram_kib": point.sram_kib, "acc_bits": point.acc_bits}
    if point.objective:
        row["objective"] = point.objective
    try:
        config = point.array_config(base)
    except ConfigError as exc:
        return row | {"status": f"invalid: {exc}"}
    try:
        metrics = workload.evaluate(config, table)
    except HwsimError as exc:
        return row | {"status": f"failed: {exc}"}
    return row | {"status": "ok"} | metrics


def _evaluate_task_one_thread(task: tuple[Workload, SweepPoint, ArrayConfig, EnergyTable]
                              ) -> dict[str, Any]:
    """:func:`_evaluate_task` with BLAS and the exact engine (:mod:`hwsim.exact`) limited to
    one thread: design points already run in parallel, and nested threads would
    oversubscribe the cores."""
    from threadpoolctl import threadpool_limits

    from hwsim.exact.matmul import set_threads

    set_threads(1)
    with threadpool_limits(limits=1, user_api="blas"):
        return _evaluate_task(task)


def _run_dask(address: str, tasks: list[Any]) -> list[dict[str, Any]]:
    try:
        from dask.distributed import Client
    except ImportError:
        raise HwsimError(
            "--scheduler needs the optional Dask extra: pip install 'hwsim[dask]'"
        ) from None
    try:
        client = Client(address, set_as_default=False, timeout="10s")
    except (OSError, ValueError, TypeError) as exc:  # refused / timed out / bad address
        msg = " ".join(str(exc).split())[:200]
        raise HwsimError(f"--scheduler {address!r}: cannot connect to a Dask scheduler "
                         f"({msg}); expected an address such as tcp://HOST:8786") from None
    with client:
        futures = client.map(_evaluate_task_one_thread, tasks, pure=False)
        return list(client.gather(futures))


def run_sweep(
    workload: Workload,
    grid: SweepGrid,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Evaluate every grid point; one result dict per point, in point order.

    ``scheduler``: a Dask scheduler address (``tcp://host:8786``) to run on; otherwise
    local processes (``workers`` of them; default the CPU count) or, with ``workers=0``,
    this process. Each result holds the point's fields, ``status`` (``ok`` / ``invalid: …``
    / ``failed: …``) and, when ok, the :data:`METRICS`.
    """
    points = grid_points(grid)
    tasks = [(workload, p, grid.base, grid.energy_table) for p in points]
    if scheduler:
        results = _run_dask(scheduler, tasks)
    elif workers == 0:
        results = []
        for i, t in enumerate(tasks):
            results.append(_evaluate_task(t))
            if progress:
                progress(i + 1, len(tasks))
    else:
        results = [None] * len(tasks)  # type: ignore[list-item]
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as ex:
            futs = {ex.submit(_evaluate_task_one_thread, t): i for i, t in enumerate(tasks)}
            for done, fut in enumerate(concurrent.futures.as_completed(futs), start=1):
                results[futs[fut]] = fut.result()
                if progress:
                    progress(done, len(tasks))
    return sorted(results, key=lambda r: r["index"])


def pareto_front(results: Sequence[Mapping[str, Any]],
                 allow_overflow: bool = False) -> list[int]:
    """Positions (in ``results``) of the candidate points no other candidate beats on both
    cycles and energy (minimisation; ties kept). Candidates: status ok and, unless
    ``allow_overflow``, no accumulator overflow event (a design whose accumulator overflows
    computes something else than the model), and, when points carry an ``accuracy``, at
    most :data:`ACCURACY_TOLERANCE` below the best."""
    ok = [i for i, r in enumerate(results) if not _excluded_why(r, results)
          or (allow_overflow and _excluded_why(r, results) == "accumulator overflow")]
    front = []
    for i in ok:
        ci, ei = results[i]["cycles"], results[i]["energy_pj"]
        dominated = any(
            results[j]["cycles"] <= ci and results[j]["energy_pj"] <= ei
            and (results[j]["cycles"] < ci or results[j]["energy_pj"] < ei)
            for j in ok
        )
        if not dominated:
            front.append(i)
    return front


def results_csv(results: Sequence[Mapping[str, Any]]) -> str:
    """CSV text: one row per point, the union of all keys as columns (point keys first)."""
    cols: list[str] = []
    for r in results:
        cols.extend(k for k in r if k not in cols)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in results:
        w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


SWEEP_HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body{font-family:sans-serif;margin:1.5em;color:#222}h1{font-size:1.4em}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:2px 6px;
text-align:right}td:first-child,th:first-child{text-align:left}th{background:#eee}
tr.front td{font-weight:bold;background:#fdf0f0}tr.excluded td{color:#999}
img{max-width:100%;height:auto}
</style></head><body><h1>{{ title }}</h1>
<p>{{ n }} design points; Pareto front in bold; grey rows are excluded (failed, invalid or
with accumulator overflow or lost accuracy: they compute something else than the model).</p>
{% if png %}<img alt="pareto.png" src="{{ png }}">{% endif %}
{% if acc_png %}<img alt="accuracy.png" src="{{ acc_png }}">{% endif %}
<table><thead><tr>{% for h in headers %}<th>{{ h }}</th>{% endfor %}</tr></thead><tbody>
{% for cls, r in rows %}<tr class="{{ cls }}">{% for c in r %}<td>{{ c }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table></body></html>
"""




def write_sweep(out_dir: str | Path, results: Sequence[Mapping[str, Any]],
                title: str = "design space") -> dict[str, Path]:
    """Write ``sweep.csv``, ``sweep.json`` (results + Pareto indices), ``pareto.png``
    (colour = dataflow, marker = array size, numbered front, excluded designs as crosses)
    and ``sweep.html`` (the plot and every point, self-contained)."""
    from hwsim.report.plots import pareto_png
    from hwsim.report.render import png_uri, render_html

    out = Path(out_dir)
    front = pareto_front(results)
    written = {"csv": out / "sweep.csv", "json": out / "sweep.json"}
    atomic_write(written["csv"], results_csv(results).encode("utf-8"))
    doc = {"results": list(results), "pareto": [results[i]["index"] for i in front]}
    atomic_write(written["json"], (json.dumps(doc, indent=2) + "\n").encode("utf-8"))
    cand = [r for r in results if not _excluded_why(r, results)]
    excluded = [(r["cycles"], r["energy_pj"], _excluded_why(r, results)) for r in results
                if r.get("status") == "ok" and _excluded_why(r, results)]
    png = None
    if cand:
        pos = {id(r): n for n, r in enumerate(cand)}
        png = pareto_png([r["cycles"] for r in cand], [r["energy_pj"] for r in cand],
                         [r["label"] for r in cand], [pos[id(results[i])] for i in front],
                         title=title, dataflows=[r["dataflow"] for r in cand],
                         arrays=[f"{r['rows']}x{r['cols']}" for r in cand], excluded=excluded)
        written["png"] = out / "pareto.png"
        atomic_write(written["png"], png)
    if any("accuracy" in r for r in results):
        from hwsim.report.plots import accuracy_png

        ok = [r for r in results if r.get("status") == "ok" and "accuracy" in r]
        written["accuracy_png"] = out / "accuracy.png"
        atomic_write(written["accuracy_png"], accuracy_png(
            [r["energy_pj"] for r in ok], [r["accuracy"] for r in ok],
            [r["acc_bits"] for r in ok], [r["label"] for r in ok],
            title=title.replace("energy vs cycles", "accuracy vs energy")))
    headers = ["point", "cycles", "energy uJ", "util", "acc overflows", "accuracy", "status"]
    fset = set(front)
    rows = [("front" if i in fset else "excluded" if _excluded_why(r, results) else "",
             [r.get("label", ""), f"{r.get('cycles', 0):,}",
              f"{r.get('energy_pj', 0.0) * 1e-6:.3f}",
              f"{100 * r.get('utilization', 0.0):.1f}%", r.get("overflow_events", ""),
              f"{100 * r['accuracy']:.2f}%" if "accuracy" in r else "",
              r.get("status", "")]) for i, r in enumerate(results)]
    acc_png = written["accuracy_png"].read_bytes() if "accuracy_png" in written else None
    page = render_html(SWEEP_HTML, title=title, n=len(results), headers=headers, rows=rows,
                       png=png_uri(png) if png else None,
                       acc_png=png_uri(acc_png) if acc_png else None)
    written["html"] = out / "sweep.html"
    atomic_write(written["html"], page.encode("utf-8"))
    return written
