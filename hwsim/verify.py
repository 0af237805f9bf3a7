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

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwsim.arith import RequantConfig
from hwsim.compiler.qgraph import QGraph, tensor_qparams
from hwsim.compiler.quantize import QuantizeConfig, quantize_dynamic, quantize_static
from hwsim.errors import HwsimError
from hwsim.ir.graph import Graph
from hwsim.quant import quantize
from hwsim.reference.fakequant_exec import run_fakequant
from hwsim.reference.float_exec import run_float
from hwsim.reference.golden_exec import ExecResult, run_golden

#: Requant modes in which golden == fake-quant must hold bit for bit (§9).
EXACT_MODES = ("dyadic", "custom")
#: Images per calibration batch.
CALIB_BATCH = 64


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

    def quantize_config(self) -> QuantizeConfig:
        return QuantizeConfig(weights=self.weights, observer=self.observer,
                              requant=RequantConfig(mode=self.mode), acc_bits=self.acc_bits,
                              acc_overflow=self.acc_overflow)


def calibration_batches(name: str, x: np.ndarray) -> Iterator[dict[str, np.ndarray]]:
    """Feeds of ``CALIB_BATCH`` samples of ``x`` for the graph input ``name``."""
    for i in range(0, x.shape[0], CALIB_BATCH):
        yield {name: x[i:i + CALIB_BATCH]}


def single_input(graph: Graph) -> str:
    """The name of the graph's only input (HwsimError for a multi-input graph)."""
    if len(graph.inputs) != 1:
        raise HwsimError(f"model {graph.name!r} has {len(graph.inputs)} inputs; "
                         "hwsim verify supports single-input models")
    return graph.inputs[0]


def build_qgraph(graph: Graph, calib: np.ndarray | None, opts: VerifyOptions) -> QGraph:
    """Quantize ``graph`` (calibrated on ``calib`` unless ``opts.dynamic``)."""
    cfg = opts.quantize_config()
    if opts.dynamic:
        return quantize_dynamic(graph, cfg)
    if calib is None or len(calib) == 0:
        raise HwsimError("calibration data: expected at least one sample")
    return quantize_static(graph, calibration_batches(single_input(graph), calib), cfg)


def compare_codes(a: np.ndarray, b: np.ndarray) -> dict[str, int]:
    """{total, mismatches, max_abs_lsb} of two integer code arrays of one shape."""
    d = np.abs(np.asarray(a, dtype=np.int64) - np.asarray(b, dtype=np.int64))
    return {"total": int(d.size), "mismatches": int(np.count_nonzero(d)),
            "max_abs_lsb": int(d.max()) if d.size else 0}


def _merge(stats: list[dict[str, int]]) -> dict[str, int]:
    return {"total": sum(s["total"] for s in stats),
            "mismatches": sum(s["mismatches"] for s in stats),
            "max_abs_lsb": max((s["max_abs_lsb"] for s in stats), default=0)}


def _run_per_sample(qg: QGraph, name: str, x: np.ndarray, layerwise: bool
                    ) -> tuple[list[ExecResult], list[ExecResult], list[ExecResult]]:
    """Dynamic graphs choose qparams per input: run the executors one sample at a time."""
    gold, fq, fql = [], [], []
    for i in range(x.shape[0]):
        feeds = {name: x[i:i + 1]}
        gr = run_golden(qg, feeds)
        gold.append(gr)
        fq.append(run_fakequant(qg, feeds))
        if layerwise:
            fql.append(run_fakequant(qg, feeds, layerwise=gr))
    return gold, fq, fql


def _output_vs_float(res: list[ExecResult], out: str, ref: np.ndarray) -> dict[str, int]:
    stats = []
    for i, r in enumerate(res):
        sl = slice(i, i + 1) if len(res) > 1 else slice(None)
        want = quantize(ref[sl], tensor_qparams(r.tensors[out]))
        stats.append(compare_codes(r.codes[out], want))
    return _merge(stats)


def _concat(res: list[ExecResult], t: str) -> np.ndarray:
    return np.concatenate([r.codes[t] for r in res], axis=0)


def verify_graph(graph: Graph, inputs: np.ndarray, *, calib: np.ndarray | None = None,
                 labels: np.ndarray | None = None,
                 opts: VerifyOptions = VerifyOptions(),
                 qgraph: QGraph | None = None) -> dict[str, Any]:
    """Quantize (unless ``qgraph`` is given), run every executor on ``inputs`` and return
    the report described in the module docstring."""
    name = single_input(graph)
    x = np.asarray(inputs, dtype=np.float32)
    qg = qgraph if qgraph is not None else build_qgraph(graph, calib, opts)
    ref = run_float(graph, {name: x})
    if qg.dynamic:
        gold, fq, fql = _run_per_sample(qg, name, x, layerwise=True)
    else:
        g1 = run_golden(qg, {name: x})
        gold, fq, fql = [g1], [run_fakequant(qg, {name: x})], \
            [run_fakequant(qg, {name: x}, layerwise=g1)]
    node_outs = [n.output for n in qg.nodes]
    pairs = {
        "golden_vs_fakequant": _merge([compare_codes(_concat(gold, t), _concat(fq, t))
                                       for t in node_outs]),
        "golden_vs_fakequant_layerwise": _merge(
            [compare_codes(_concat(gold, t), _concat(fql, t)) for t in node_outs]),
        "golden_vs_float": _merge([_output_vs_float(gold, t, ref[t]) for t in qg.outputs]),
        "fakequant_vs_float": _merge([_output_vs_float(fq, t, ref[t]) for t in qg.outputs]),
    }
    report: dict[str, Any] = {
        "model": graph.name,
        "requant_mode": qg.requant_config.mode,
        "requant_config": {f: getattr(qg.requant_config, f) for f in (
            "mode", "multiplier_bits", "rounding", "shift_min", "shift_max",
            "output_overflow")},
        "weights": qg.weight_format,
        "observer": opts.observer,
        "dynamic": qg.dynamic,
        "acc_bits": qg.acc_bits,
        "acc_overflow": qg.acc_overflow,
        "samples": int(x.shape[0]),
        "pairs": pairs,
        "exact_mode": qg.requant_config.mode in EXACT_MODES,
        "layers": _layers(qg, gold, fql),
    }
    if labels is not None:
        y = np.asarray(labels).reshape(-1)
        if y.shape[0] != x.shape[0]:
            raise HwsimError(f"labels: expected {x.shape[0]} labels (one per input), "
                             f"got {y.shape[0]}")
        out = qg.outputs[0]
        report["accuracy"] = {
            "float": _accuracy(ref[out], y),
            "fakequant": _accuracy(_concat(fq, out), y),
            "golden": _accuracy(_concat(gold, out), y),
        }
    report["ok"] = not (report["exact_mode"] and pairs["golden_vs_fakequant"]["mismatches"])
    return report


def _accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    pred = np.asarray(scores).reshape(scores.shape[0], -1).argmax(axis=1)
    return float(np.mean(pred == labels))


def _layers(qg: QGraph, gold: list[ExecResult], fql: list[ExecResult]) -> list[dict[str, Any]]:
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
            row["overflow_events"] = int(sum(r.overflow_events.get(n.name, 0) for r in gold))
        row.update(compare_codes(_concat(gold, t), _concat(fql, t)))
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
    return VerifyData(np.asarray(calib, dtype=np.float32), np.asarray(inputs, dtype=np.float32),
                      None if labels is None else np.asarray(labels), tuple(warnings))
