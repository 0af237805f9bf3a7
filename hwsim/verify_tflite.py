"""``hwsim verify MODEL.tflite``: LiteRT's reference kernels vs hwsim golden vs the cycle
model (specs/ir.md §10, arithmetic §11.3).

The model is imported with its own qparams (:func:`hwsim.frontends.tflite.load_tflite`,
profile ``litert_ref``). LiteRT runs the original file with ``OpResolverType.BUILTIN_REF``
on the inputs as given (integer arrays in the input's own type are codes; float arrays are
quantized by the model's QUANTIZE, or by hwsim as LiteRT's QUANTIZE does, §11.3.7, when the
model takes integer codes). hwsim runs the golden model, the fake-quant reference and the
cycle model (fast mode) on the same codes. LiteRT's float outputs (after a DEQUANTIZE)
are ``f32(s·(q − z))``; they are mapped back to codes exactly (``rint(y / s) + z``).

LiteRT is only the reference: it never computes hwsim's answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from hwsim.errors import HwsimError
from hwsim.frontends.tflite import ImportedTflite
from hwsim.progress import bar
from hwsim.reference.fakequant_exec import run_fakequant
from hwsim.reference.golden_exec import run_golden
from hwsim.verify import _Tally

#: Default batch of hwsim's executors (LiteRT runs the model's own batch at a time).
DEFAULT_BATCH = 64


def litert_interpreter(model: bytes) -> Any:
    """A LiteRT interpreter on ``model`` with the reference kernels (``BUILTIN_REF``)."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:  # pragma: no cover - ai-edge-litert is a declared test extra
        raise HwsimError("comparing against LiteRT needs the 'ai-edge-litert' package: pip "
                         "install ai-edge-litert") from None
    try:
        it = Interpreter(model_content=model,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        it.allocate_tensors()
    except (RuntimeError, ValueError) as exc:
        raise HwsimError(f"LiteRT cannot load the model: {str(exc)[:300]}") from None
    return it


def run_litert(it: Any, x: np.ndarray) -> list[np.ndarray]:
    """Every output of the single-input model on ``x`` (model layout and dtype), run the
    model's own batch at a time and concatenated."""
    inp = it.get_input_details()[0]
    dim0 = int(inp["shape"][0])
    if x.shape[0] % dim0:
        raise HwsimError(f"the model's input has a fixed batch of {dim0}; give a number of "
                         "inputs that is a multiple of it")
    outs: list[list[np.ndarray]] = [[] for _ in it.get_output_details()]
    for i in range(0, x.shape[0], dim0):
        it.set_tensor(inp["index"], np.ascontiguousarray(x[i:i + dim0], dtype=inp["dtype"]))
        it.invoke()
        for k, o in enumerate(it.get_output_details()):
            outs[k].append(it.get_tensor(o["index"]).copy())
    return [np.concatenate(p, axis=0) for p in outs]


def model_input(im: ImportedTflite, x: np.ndarray) -> np.ndarray:
    """The array LiteRT is fed: float inputs of an integer-input model are quantized as
    LiteRT's QUANTIZE does (§11.3.7); everything else is passed as given."""
    p = im.inputs[0]
    if p.dtype != "float32" and x.dtype.kind == "f":
        from hwsim.reference.litert_ops import litert_quantize

        return litert_quantize(x, p.scale, p.zero_point, p.dtype).astype(p.dtype)
    if p.dtype == "float32" and x.dtype.kind != "f":
        raise HwsimError(f"inputs: the model's input {p.name!r} is float32; give float "
                         f"inputs, got {x.dtype}")
    return x


def verify_tflite(im: ImportedTflite, inputs: np.ndarray, *, batch: int = DEFAULT_BATCH,
                  array: Any = None, litert: bool = True) -> dict[str, Any]:
    """Run LiteRT (``BUILTIN_REF``), the golden model, the fake-quant reference and the
    cycle model (fast mode on ``array``, default an 8×8 weight-stationary array, 16-bit
    activation port for int16x8 graphs, arithmetic §11.3.8) on
    ``inputs`` (samples in the model's layout). Report: ``pairs`` ``litert_vs_golden``
    (every model output), ``golden_vs_cycle`` and ``golden_vs_fakequant`` (every tensor),
    each ``{total, mismatches, max_abs_lsb}``; ``outputs`` per model output; ``profile``;
    ``ok`` (no LiteRT / cycle-model mismatch)."""
    from hwsim.sim.config import ArrayConfig
    from hwsim.sim.graph import simulate_qgraph

    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise HwsimError(f"batch: expected an integer >= 1, got {batch!r}")
    qg = im.qgraph
    if len(im.inputs) != 1:
        raise HwsimError(f"model {qg.name!r} has {len(im.inputs)} inputs; hwsim verify "
                         "supports single-input models")
    port = im.inputs[0]
    x = np.asarray(inputs)
    if x.ndim < 1 or tuple(x.shape[1:]) != tuple(port.shape[1:]):
        raise HwsimError(f"inputs: expected samples of shape {tuple(port.shape[1:])} (the "
                         f"model's layout) for input {port.name!r}, got array of shape "
                         f"{tuple(x.shape)}")
    n = int(x.shape[0])
    if n == 0:
        raise HwsimError("inputs: expected at least one sample, got 0")
    wide = any(t.dtype.endswith("16") for t in qg.tensors.values())
    cfg = array if array is not None else ArrayConfig(rows=8, cols=8, dataflow="ws",
                                                      act_bits=16 if wide else 8)
    it = litert_interpreter(im.model) if litert else None
    dim0 = int(port.shape[0]) or 1
    step = max(dim0, batch - batch % dim0)
    pairs = {k: _Tally() for k in ("litert_vs_golden", "golden_vs_cycle",
                                   "golden_vs_fakequant")}
    per_output = {p.name: _Tally() for p in im.outputs}
    with bar(n, "verify") as b:
        for start in range(0, n, step):
            xb = model_input(im, x[start:start + step])
            feeds = im.feeds(xb)
            b.stage("golden")
            gr = run_golden(qg, feeds)
            gold = im.model_outputs(gr.codes)
            if it is not None:
                b.stage("litert")
                ys = run_litert(it, xb)
                for p, y in zip(im.outputs, ys, strict=True):
                    got = (_float_to_codes(y, p.scale, p.zero_point) if p.dtype == "float32"
                           else y.astype(np.int64))
                    pairs["litert_vs_golden"].add(got, gold[p.name])
                    per_output[p.name].add(got, gold[p.name])
            b.stage("cycle model")
            sim = simulate_qgraph(qg, feeds, cfg)
            b.stage("fake-quant")
            fq = run_fakequant(qg, feeds)
            for nd in qg.nodes:
                pairs["golden_vs_cycle"].add(gr.codes[nd.output], sim.codes[nd.output])
                pairs["golden_vs_fakequant"].add(gr.codes[nd.output], fq.codes[nd.output])
            b.update(xb.shape[0])
    report: dict[str, Any] = {
        "model": qg.name,
        "quantized_model": True,
        "format": "tflite",
        "profile": im.profile.record(),
        "requant_mode": qg.requant_config.mode,
        "samples": n,
        "litert": it is not None,
        "pairs": {k: t.as_dict() for k, t in pairs.items()},
        "outputs": {o: t.as_dict() for o, t in per_output.items()},
        "layers": [{"node": nd.name, "op": nd.op, "output": nd.output}
                   for nd in qg.nodes],
    }
    report["ok"] = not (report["pairs"]["litert_vs_golden"]["mismatches"]
                        or report["pairs"]["golden_vs_cycle"]["mismatches"])
    return report


def _float_to_codes(y: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Codes q of DEQUANTIZE outputs y = f32(double(s)·(q − z)) (exact inverse)."""
    return np.rint(np.asarray(y, dtype=np.float64) / np.float64(np.float32(scale))
                   ).astype(np.int64) + zero_point


def summary_line(report: Mapping[str, Any]) -> str:
    """One human line for a ``.tflite`` report."""
    p, c = report["pairs"]["litert_vs_golden"], report["pairs"]["golden_vs_cycle"]
    head = f"{report['model']}: profile {report['profile']['name']}: "
    lite = (f"litert vs golden {p['mismatches']}/{p['total']} mismatches (max "
            f"{p['max_abs_lsb']} LSB), " if report["litert"] else "")
    return (head + lite + f"golden vs cycle model {c['mismatches']}/{c['total']} mismatches "
            f"over {report['samples']} inputs")


def table(report: Mapping[str, Any]) -> str:
    """The bit-exactness table (one row per pair)."""
    rows = [f"{'pair':<24}{'total':>12}{'mismatches':>12}{'max LSB':>9}"]
    for k, v in report["pairs"].items():
        rows.append(f"{k:<24}{v['total']:>12}{v['mismatches']:>12}{v['max_abs_lsb']:>9}")
    return "\n".join(rows)


def tflite_inputs(im: ImportedTflite, inputs_path: str | None, seed: int = 0
                  ) -> tuple[np.ndarray, list[str]]:
    """Inputs for :func:`verify_tflite`: the --inputs file (model layout; integer codes or
    floats), else seeded random samples (codes of the input's type, or standard-normal
    floats for a float input) with a warning."""
    p = im.inputs[0]
    shape = tuple(p.shape[1:])
    if inputs_path:
        from hwsim.verify import load_array

        x = load_array(inputs_path, "--inputs", kinds="fiu")
        if tuple(x.shape[1:]) != shape:
            raise HwsimError(f"--inputs {inputs_path}: expected samples of shape {shape} "
                             f"(the model's layout) for input {p.name!r}, got array of "
                             f"shape {tuple(x.shape)}")
        return x, []
    rng = np.random.default_rng(seed)
    count = 16 * max(1, int(p.shape[0]))
    if p.dtype == "float32":
        x = rng.standard_normal((count,) + shape).astype(np.float32)
    else:
        from hwsim.compiler.qgraph import act_range

        lo, hi = act_range(p.dtype)
        x = rng.integers(lo, hi + 1, (count,) + shape).astype(p.dtype)
    return x, [f"no --inputs given: using {count} seeded random inputs (seed {seed})"]


def run_cli(args: Any) -> int:
    """``hwsim verify MODEL.tflite [--inputs X.npy] [--json] [--profile P] [--array T]``:
    the report as JSON or as a summary line and the bit-exactness table; exit 1 on a
    LiteRT / cycle-model mismatch. Profile: ``--profile`` when it names a profile, else
    ``litert_ref``."""
    import json
    import sys

    from hwsim.commands.options import batch_of, progress_enabled
    from hwsim.compiler.profiles import PROFILES
    from hwsim.errors import EXIT_CHECK_FAILED, EXIT_OK
    from hwsim.frontends.tflite import load_tflite
    from hwsim.progress import progress_scope

    profile = getattr(args, "profile", None)
    im = load_tflite(args.model, profile if profile in PROFILES else "litert_ref")
    array = None
    if getattr(args, "array", None):
        from hwsim.sim.config import load_array_config

        array = load_array_config(args.array)
    inputs, warnings = tflite_inputs(im, getattr(args, "inputs", None))
    for w in warnings:
        print(f"hwsim verify: warning: {w}", file=sys.stderr)
    with progress_scope(progress_enabled(args)):
        report = verify_tflite(im, inputs, batch=batch_of(args), array=array)
    if getattr(args, "json", False):
        print(json.dumps(report, sort_keys=True))
    else:
        print(summary_line(report))
        print(table(report))
    return EXIT_OK if report["ok"] else EXIT_CHECK_FAILED
