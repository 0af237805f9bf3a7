"""Quantize a float model and check every executor against the others (``hwsim verify``).

:func:`verify_graph` quantizes a float IR graph (static post-training, or dynamic), runs the
float32 reference, the float64 fake-quant reference and the integer golden model on the
same inputs, and returns a JSON-serialisable report (specs/compiler.md §7):

- ``pairs``: ``golden_vs_fakequant`` (end to end, every tensor), ``golden_vs_fakequant_
  layerwise`` (each op fed the golden model's inputs), ``golden_vs_float`` and
  ``fakequant_vs_float`` (graph outputs; the float output is quantized with the output's
  qparams) — each ``{total, mismatches, max_abs_lsb}``;
- ``accuracy`` per executor when labels are given (argmax over the last axis of the first
  graph output);
- ``layers``: per integer node: op, fused activation, output qparams, requant multiplier /
  shift ranges, layer-wise mismatches and accumulator overflow events;
- ``exact_mode`` (requant mode dyadic or custom) and ``ok`` (False when an exact mode has a
  golden-vs-fake-quant mismatch).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwsim.arith import RequantConfig
from hwsim.commands.options import DEFAULT_BATCH
from hwsim.compiler.qgraph import QGraph, tensor_qparams
from hwsim.compiler.quantize import QuantizeConfig, quantize_dynamic, quantize_static
from hwsim.errors import HwsimError
from hwsim.ir.graph import Graph
from hwsim.progress import bar
from hwsim.quant import quantize
from hwsim.reference.fakequant_exec import run_fakequant
from hwsim.reference.float_exec import run_float
from hwsim.reference.golden_exec import ExecResult, Int64Arrays, run_golden

#: Requant modes in which golden == fake-quant must hold bit for bit (§9).
EXACT_MODES = ("dyadic", "custom")
#: Images per calibration batch of the observers whose result depends on the cut
#: (specs/compiler.md §3.1).
CALIB_BATCH = 64
#: Observers whose statistics are the same for any cut of the calibration set (§3.1).
CUT_INVARIANT_OBSERVERS = ("minmax",)


@dataclass(frozen=True)
class VerifyOptions:
    """What ``hwsim verify`` quantizes with: requant ``mode``, ``weights`` format,
    activation ``observer``, accumulator ``acc_bits`` / ``acc_overflow``, ``dynamic``."""

    mode: str = "dyadic"
    weights: str = "int8"
    observer: str = "minmax"
    acc_bits: int = 32
    acc_overflow: str = "wrap"
    dynamic: bool = False
    profile: str = ""
    act_dtype: str = "int8"
    narrow_range: bool = False
    qparams: str = ""

    def quantize_config(self) -> QuantizeConfig:
        return QuantizeConfig(weights=self.weights, observer=self.observer,
                              requant=RequantConfig(mode=self.mode), acc_bits=self.acc_bits,
                              acc_overflow=self.acc_overflow, profile=self.profile,
                              act_dtype=self.act_dtype, narrow_range=self.narrow_range)


def calibration_batch(observer: str, batch: int = DEFAULT_BATCH) -> int:
    """Inputs per calibration batch (specs/compiler.md §3.1): ``batch`` for an observer whose
    result does not depend on the cut (min-max), else :data:`CALIB_BATCH`."""
    return batch if observer in CUT_INVARIANT_OBSERVERS else CALIB_BATCH


def calibration_batches(name: str, x: np.ndarray, batch: int = CALIB_BATCH
                        ) -> Iterator[dict[str, np.ndarray]]:
    """Feeds of ``batch`` samples of ``x`` (float32; ``x`` may be memory-mapped) for the
    graph input ``name``, with a progress bar (hwsim.progress)."""
    n = int(x.shape[0])
    with bar(n, "calibration") as b:
        for i in range(0, n, batch):
            xb = np.asarray(x[i:i + batch], dtype=np.float32)
            yield {name: xb}
            b.update(xb.shape[0])


def single_input(graph: Graph) -> str:
    """The name of the graph's only input (HwsimError for a multi-input graph)."""
    if len(graph.inputs) != 1:
        raise HwsimError(f"model {graph.name!r} has {len(graph.inputs)} inputs; "
                         "hwsim verify supports single-input models")
    return graph.inputs[0]


def build_qgraph(graph: Graph, calib: np.ndarray | None, opts: VerifyOptions,
                 batch: int = DEFAULT_BATCH) -> QGraph:
    """Quantize ``graph`` (calibrated on ``calib`` unless ``opts.dynamic``, in batches of
    :func:`calibration_batch` inputs)."""
    cfg = opts.quantize_config()
    if opts.dynamic:
        return quantize_dynamic(graph, cfg)
    if calib is None or len(calib) == 0:
        raise HwsimError("calibration data: expected at least one sample")
    given = None
    if opts.qparams:
        from hwsim.compiler.quantize import load_qparams_json

        given = load_qparams_json(opts.qparams)
    return quantize_static(graph, calibration_batches(
        single_input(graph), calib, calibration_batch(opts.observer, batch)), cfg, given)


def compare_codes(a: np.ndarray, b: np.ndarray) -> dict[str, int]:
    """{total, mismatches, max_abs_lsb} of two integer code arrays of one shape."""
    d = np.abs(np.asarray(a, dtype=np.int64) - np.asarray(b, dtype=np.int64))
    return {"total": int(d.size), "mismatches": int(np.count_nonzero(d)),
            "max_abs_lsb": int(d.max()) if d.size else 0}


class _Tally:
    """Running {total, mismatches, max_abs_lsb} of code comparisons, reduced per batch."""

    def __init__(self) -> None:
        self.total = 0
        self.mismatches = 0
        self.max_abs_lsb = 0

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        s = compare_codes(a, b)
        self.total += s["total"]
        self.mismatches += s["mismatches"]
        self.max_abs_lsb = max(self.max_abs_lsb, s["max_abs_lsb"])

    def as_dict(self) -> dict[str, int]:
        return {"total": self.total, "mismatches": self.mismatches,
                "max_abs_lsb": self.max_abs_lsb}


def compact_codes(codes: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The same integer codes in the narrowest of int8/uint8/int16/uint16/int32/int64 that
    holds each tensor's values (kept between executors of one batch; compare as int64)."""
    out = {}
    for t in codes:
        # an executor's narrower array as it keeps it (no int64 copy to narrow again)
        v = np.asarray(codes.compact(t) if isinstance(codes, Int64Arrays) else codes[t])
        if v.size == 0 or v.dtype.kind not in "iu":
            out[t] = v
            continue
        lo, hi = int(v.min()), int(v.max())
        for dt in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.int64):
            info = np.iinfo(dt)
            if info.min <= lo and hi <= info.max:
                out[t] = v.astype(dt)
                break
    return out


#: ``on_batch(start, x, gold_codes)``: called once per golden run with the index of its
#: first input, its float32 inputs and the golden codes of every tensor (compact dtypes).
BatchHook = Callable[[int, np.ndarray, Mapping[str, np.ndarray]], None]


class _VerifyRun:
    """The streamed reductions of :func:`verify_graph` (one instance per call)."""

    def __init__(self, graph: Graph, qg: QGraph, name: str, labels: np.ndarray | None,
                 on_batch: BatchHook | None) -> None:
        self.graph, self.qg, self.name, self.labels, self.on_batch = (
            graph, qg, name, labels, on_batch)
        self.node_outs = [n.output for n in qg.nodes]
        self.pairs = {k: _Tally() for k in (
            "golden_vs_fakequant", "golden_vs_fakequant_layerwise", "golden_vs_float",
            "fakequant_vs_float")}
        self.layer = {t: _Tally() for t in self.node_outs}
        self.events = {n.name: 0 for n in qg.nodes}
        self.correct = {"float": 0, "fakequant": 0, "golden": 0}

    def _count(self, key: str, scores: np.ndarray, y: np.ndarray | None) -> None:
        if y is not None:
            pred = np.asarray(scores).reshape(scores.shape[0], -1).argmax(axis=1)
            self.correct[key] += int(np.count_nonzero(pred == y))

    def batch(self, start: int, xb: np.ndarray, stage: Callable[[str], None]) -> None:
        """Run every executor on the inputs ``xb`` (``start``: index of the first)."""
        qg, name = self.qg, self.name
        y = None if self.labels is None else self.labels[start:start + xb.shape[0]]
        stage("float")
        ref = run_float(self.graph, {name: xb})
        self._count("float", ref[qg.outputs[0]], y)
        # A dynamic graph chooses qparams per input: one input per executor run.
        step = 1 if qg.dynamic else xb.shape[0]
        for i in range(0, xb.shape[0], step):
            feeds = {name: xb[i:i + step]}
            yi = None if y is None else y[i:i + step]
            stage("golden")
            gr = run_golden(qg, feeds)
            for t in qg.outputs:
                want = quantize(ref[t][i:i + step], tensor_qparams(gr.tensors[t]))
                self.pairs["golden_vs_float"].add(gr.codes[t], want)
            self._count("golden", gr.codes[qg.outputs[0]], yi)
            for n in qg.nodes:
                self.events[n.name] += int(gr.overflow_events.get(n.name, 0))
            gold, gold_tensors = compact_codes(gr.codes), gr.tensors
            del gr
            if self.on_batch is not None:
                stage("cycle model")
                self.on_batch(start + i, feeds[name], gold)
            stage("fake-quant")
            fq = run_fakequant(qg, feeds)
            for t in self.node_outs:
                self.pairs["golden_vs_fakequant"].add(gold[t], fq.codes[t])
            for t in qg.outputs:
                want = quantize(ref[t][i:i + step], tensor_qparams(fq.tensors[t]))
                self.pairs["fakequant_vs_float"].add(fq.codes[t], want)
            self._count("fakequant", fq.codes[qg.outputs[0]], yi)
            del fq
            stage("fake-quant layer-wise")
            fql = run_fakequant(qg, feeds, layerwise=ExecResult(
                codes=Int64Arrays(gold), tensors=gold_tensors, accumulators={},
                overflow_events={}))
            for t in self.node_outs:
                self.pairs["golden_vs_fakequant_layerwise"].add(gold[t], fql.codes[t])
                self.layer[t].add(gold[t], fql.codes[t])
            del fql


def verify_graph(graph: Graph, inputs: np.ndarray, *, calib: np.ndarray | None = None,
                 labels: np.ndarray | None = None,
                 opts: VerifyOptions = VerifyOptions(),
                 qgraph: QGraph | None = None, batch: int = DEFAULT_BATCH,
                 on_batch: BatchHook | None = None) -> dict[str, Any]:
    """Quantize (unless ``qgraph`` is given), run every executor on ``inputs`` and return
    the report described in the module docstring.

    Streamed (specs/compiler.md §7): ``inputs`` (an array, or a memory-mapped .npy) is read
    ``batch`` inputs at a time, every executor runs on the batch and the batch is reduced
    into the report before the next one, so memory is bounded by ``batch``; the report does
    not depend on ``batch``. ``on_batch`` (see :data:`BatchHook`) lets a caller compare more
    executors against the golden codes of each batch (hwsim.report.evaluate does so for
    the cycle model). A progress bar counts the inputs (hwsim.progress).
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise HwsimError(f"batch: expected an integer >= 1, got {batch!r}")
    name = single_input(graph)
    x = inputs if isinstance(inputs, np.ndarray) else np.asarray(inputs, dtype=np.float32)
    n = int(x.shape[0])
    from hwsim.frontends.onnx import check_graph_memory

    check_graph_memory(graph, f"model {graph.name!r} with --batch {batch}", min(batch, n))
    if n == 0:
        raise HwsimError("inputs: expected at least one sample, got 0")
    y = None
    if labels is not None:
        y = np.asarray(labels).reshape(-1)
        if y.shape[0] != n:
            raise HwsimError(f"labels: expected {n} labels (one per input), got {y.shape[0]}")
    qg = qgraph if qgraph is not None else build_qgraph(graph, calib, opts, batch)
    run = _VerifyRun(graph, qg, name, y, on_batch)
    with bar(n, "verify") as b:
        for start in range(0, n, batch):
            xb = np.asarray(x[start:start + batch], dtype=np.float32)
            run.batch(start, xb, b.stage)
            b.update(xb.shape[0])
    pairs = {k: t.as_dict() for k, t in run.pairs.items()}
    report: dict[str, Any] = {
        "model": graph.name,
        "profile": _profile_record(qg),
        "requant_mode": qg.requant_config.mode,
        "requant_config": {f: getattr(qg.requant_config, f) for f in (
            "mode", "multiplier_bits", "rounding", "shift_min", "shift_max",
            "output_overflow")},
        "weights": qg.weight_format,
        "narrow_range": opts.narrow_range,
        "act_dtype": opts.act_dtype,
        "observer": opts.observer,
        "dynamic": qg.dynamic,
        "acc_bits": qg.acc_bits,
        "acc_overflow": qg.acc_overflow,
        "samples": n,
        "pairs": pairs,
        "exact_mode": qg.requant_config.mode in EXACT_MODES,
        "layers": _layers(qg, run),
    }
    if y is not None:
        report["accuracy"] = {k: v / n for k, v in run.correct.items()}
    report["ok"] = not (report["exact_mode"] and pairs["golden_vs_fakequant"]["mismatches"])
    return report


def _profile_record(qg: QGraph) -> dict[str, Any]:
    """The engine profile of ``qg`` (arithmetic §11) as recorded in reports."""
    from hwsim.compiler.profiles import PROFILES, profile_for_requant

    prof = PROFILES.get(qg.profile) or profile_for_requant(qg.requant_config)
    return prof.record()


def _layers(qg: QGraph, run: _VerifyRun) -> list[dict[str, Any]]:
    rows = []
    for n in qg.nodes:
        t = n.output
        row: dict[str, Any] = {"node": n.name, "op": n.op, "fused": n.fused, "output": t}
        if not qg.dynamic:
            tq = qg.tensors[t]
            row.update(scale=tq.scale, zero_point=tq.zero_point, dtype=tq.dtype)
        req = n.requant.get("out")
        if req is not None:
            row.update(multiplier=[int(req.multiplier.min()), int(req.multiplier.max())],
                       shift=[int(req.shift.min()), int(req.shift.max())],
                       act_min=req.act_min, act_max=req.act_max)
        if n.op in ("conv", "gemm"):
            row["weight_dtype"] = str(n.arrays["weight"].dtype)
            row["overflow_events"] = run.events[n.name]
        row.update(run.layer[t].as_dict())
        rows.append(row)
    return rows


def summary_line(report: Mapping[str, Any]) -> str:
    """One human line: mode, golden-vs-fake-quant mismatches, accuracies."""
    p = report["pairs"]["golden_vs_fakequant"]
    lw = report["pairs"]["golden_vs_fakequant_layerwise"]
    s = (f"{report['model']}: mode {report['requant_mode']}, weights {report['weights']}: "
         f"golden vs fake-quant {p['mismatches']}/{p['total']} mismatches "
         f"(max {p['max_abs_lsb']} LSB; layer-wise {lw['mismatches']}, max "
         f"{lw['max_abs_lsb']} LSB)")
    if "accuracy" in report:
        s += ", accuracy " + ", ".join(f"{k} {v:.4f}" for k, v in report["accuracy"].items())
    return s


#: Seeded random inputs used when no data is given: this many samples.
RANDOM_SAMPLES = 16


def load_model(path: str) -> Graph:
    """Read a float ONNX model into the IR (hwsim.frontends.onnx)."""
    from hwsim.frontends.onnx import load_onnx

    return load_onnx(path)


def load_array(path: str, what: str, kinds: str = "f") -> np.ndarray:
    """The .npy array ``path``, memory-mapped (batches are read from the file as they are
    used) after its header is checked (hwsim.inputs.load_npy: dtype kind in ``kinds``, no
    pickles, no .npz, size within --max-memory); HwsimError naming ``what`` and the file."""
    from hwsim.inputs import load_npy

    return load_npy(path, what, kinds=kinds, mmap=True)


def _is_demo(path: str) -> bool:
    from pathlib import Path

    from hwsim.data import demo_model_path

    demo = demo_model_path()
    return demo.exists() and Path(path).resolve() == demo.resolve()


@dataclass(frozen=True, eq=False)
class VerifyData:
    """Calibration set, evaluation inputs, labels (or None) and warnings for stderr."""

    calib: np.ndarray
    inputs: np.ndarray
    labels: np.ndarray | None
    warnings: tuple[str, ...]


def resolve_data(model_path: str, graph: Graph, calib_path: str | None,
                 inputs_path: str | None, labels_path: str | None,
                 seed: int = 0, evaluate: bool = True,
                 needs_calib: bool = True) -> VerifyData:
    """Data for :func:`verify_graph`: the given .npy files; else the demo model's own data
    (hwsim.data.load_demo_data); else seeded standard-normal inputs (with a warning). A
    missing calibration set falls back to the inputs (with a warning). ``evaluate=False``
    (hwsim quantize) needs only the calibration set; ``needs_calib=False`` (dynamic
    quantization) does not warn about a missing one."""
    warnings: list[str] = []
    calib = load_array(calib_path, "--calib") if calib_path else None
    inputs = load_array(inputs_path, "--inputs") if inputs_path else None
    labels = load_array(labels_path, "--labels", kinds="iu") if labels_path else None
    if calib is None and inputs is None and _is_demo(model_path):
        from hwsim.data import load_demo_data

        calib, _ = load_demo_data("calib")
        inputs, test_y = load_demo_data("test")
        labels = test_y if labels is None else labels
    if inputs is None and calib is None:
        shape = graph.tensors[single_input(graph)].shape[1:]
        rng = np.random.default_rng(seed)
        inputs = rng.standard_normal((RANDOM_SAMPLES,) + shape).astype(np.float32)
        warnings.append(f"no --calib/--inputs given: using {RANDOM_SAMPLES} seeded random "
                        f"standard-normal inputs (seed {seed}); accuracy is meaningless")
    if inputs is None:
        inputs = calib
        if evaluate:
            warnings.append("no --inputs given: evaluating on the calibration set")
    if calib is None:
        calib = inputs
        if not warnings and needs_calib:
            warnings.append("no --calib given: calibrating on the evaluation inputs")
    from hwsim.inputs import check_model_data

    check_model_data(graph, calib, inputs, labels,
                     f"--calib {calib_path}" if calib_path else "calibration data",
                     f"--inputs {inputs_path}" if inputs_path else "inputs",
                     f"--labels {labels_path}" if labels_path else "labels")
    return VerifyData(_as_float32(calib), _as_float32(inputs),
                      None if labels is None else np.asarray(labels), tuple(warnings))


def _as_float32(x: np.ndarray) -> np.ndarray:
    """float32 samples; a memory-mapped float32 .npy stays mapped (not read into memory)."""
    if isinstance(x, np.memmap) and x.dtype == np.float32:
        return x
    return np.asarray(x, dtype=np.float32)
