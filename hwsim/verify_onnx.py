"""``hwsim verify`` on a quantized ONNX model: ONNX Runtime vs hwsim golden (compiler §8).

The model is imported with its own qparams (:func:`hwsim.frontends.onnx_quant.
load_quantized_onnx`, no calibration) under an engine profile (default ``ort_cpu``,
arithmetic §11). ONNX Runtime runs the original file; hwsim quantizes the float inputs with
the profile's input quantization (§11.2.5 for ``ort_cpu``) and runs the integer golden model
and the fake-quant reference on those codes. ONNX Runtime's float outputs are the
dequantized codes ``f32(s·(q − z))``; they are mapped back to codes exactly
(``rint(y / s) + z``: ``|q − z| < 2^16`` and the relative error of the float32 product is
below 2^−24) and compared with the golden codes, batch by batch.

ONNX Runtime is only the reference here: it never computes hwsim's answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from hwsim.commands.options import DEFAULT_BATCH
from hwsim.errors import HwsimError
from hwsim.frontends.onnx_quant import ImportedModel
from hwsim.progress import bar
from hwsim.quant import quantize
from hwsim.reference.fakequant_exec import run_fakequant
from hwsim.reference.golden_exec import run_golden
from hwsim.verify import _Tally

#: Session options of the ORT reference (arithmetic §11.2): int8 QDQ convolutions are
#: fused into the integer kernels only with this entry.
ORT_SESSION_CONFIG = {"session.qdqisint8allowed": "1"}


def ort_session(model: Any) -> Any:
    """An onnxruntime CPU session on ``model`` (path, bytes or ModelProto) as the ort_cpu
    profile assumes it: full graph optimisation, :data:`ORT_SESSION_CONFIG`, one thread."""
    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover - onnxruntime is a declared extra
        raise HwsimError("comparing against ONNX Runtime needs the 'onnxruntime' package: "
                         "pip install onnxruntime") from None
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    for k, v in ORT_SESSION_CONFIG.items():
        so.add_session_config_entry(k, v)
    data = model if isinstance(model, (bytes, str)) else model.SerializeToString()
    try:
        return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
        raise HwsimError(f"onnxruntime cannot load the model: {str(exc)[:300]}") from None


def with_intermediates(model: Any, qg: Any) -> tuple[Any, list[str]]:
    """A copy of ``model`` whose integer-graph tensors (the codes every node of ``qg``
    writes, where the ONNX model names them: ``t``, or ``t_q`` in hwsim's own exports,
    specs/ir.md §9) are graph outputs too, and their ONNX names in node order.
    Exposing a QuantizeLinear output does not stop ORT's QDQ fusion (tested)."""
    import copy

    from onnx import TensorProto, helper, shape_inference

    m = copy.deepcopy(model)
    produced = {t for n in m.graph.node for t in n.output}
    have = {o.name for o in m.graph.output}
    # A QDQ op on codes that no QuantizeLinear follows (MaxPool -> Flatten -> MatMul, as
    # torch.onnx.export writes) names a float tensor: not a code tensor ORT can return.
    floats = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16}
    inferred = shape_inference.infer_shapes(m).graph.value_info
    float_names = {vi.name for vi in inferred if vi.type.tensor_type.elem_type in floats}
    elem = {"uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6,
            "float32": 1}  # onnx.TensorProto codes
    names = []
    for node in qg.nodes:
        t = node.output
        o = t if t in produced else f"{t}_q"
        wide_float = qg.tensors[t].dtype == "float32"  # ORT's own float tensor, §11.2.9
        if o in produced and o not in have and (o not in float_names or wide_float):
            m.graph.output.append(helper.make_tensor_value_info(
                o, elem[qg.tensors[t].dtype], None))
            names.append(o)
    return m, names


def input_codes(im: ImportedModel, name: str, x: np.ndarray) -> np.ndarray:
    """Codes of float input ``x`` as the profile's engine quantizes it (arith §11.2.5)."""
    tq = im.qgraph.tensors[name]
    if tq.dtype == "float32":  # a float input read by ORT's dynamic quantization, §11.2.9
        from hwsim.reference.engine_ops import f32_to_codes

        return f32_to_codes(x)
    if im.profile.input == "ort_quantize_linear":
        from hwsim.reference.engine_ops import quantize_linear

        return quantize_linear(x, tq.scale, tq.zero_point, tq.dtype)
    from hwsim.compiler.qgraph import tensor_qparams

    return quantize(np.asarray(x, dtype=np.float32), tensor_qparams(tq)).astype(np.int64)


def float_to_codes(y: np.ndarray, scale: float, zero_point: int,
                   dtype: str = "") -> np.ndarray:
    """Codes q of DequantizeLinear outputs y = f32(scale·(q − z)) (exact inverse); for a
    ``float32`` / ``int32`` tensor (arithmetic §11.2.9) its bit patterns / values."""
    if dtype == "float32":
        from hwsim.reference.engine_ops import f32_to_codes

        return f32_to_codes(y)
    if dtype == "int32":
        return np.asarray(y, dtype=np.int64)
    return np.rint(np.asarray(y, dtype=np.float64) / np.float64(np.float32(scale))
                   ).astype(np.int64) + zero_point


def verify_quantized(im: ImportedModel, inputs: np.ndarray, *,
                     batch: int = DEFAULT_BATCH) -> dict[str, Any]:
    """Run ONNX Runtime, the golden model and the fake-quant reference on ``inputs`` (float
    samples of the single graph input) and return the report (compiler §8): ``pairs``
    ``onnxruntime_vs_golden`` (every model output), ``onnxruntime_vs_golden_intermediate``
    (every integer-graph tensor the ONNX model names, exposed by :func:`with_intermediates`)
    and ``golden_vs_fakequant`` (every tensor), each ``{total, mismatches, max_abs_lsb}``;
    ``outputs`` per ONNX output; ``layers`` (per node, with its ORT comparison);
    ``profile``; ``ok`` (no ORT/golden mismatch anywhere)."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise HwsimError(f"batch: expected an integer >= 1, got {batch!r}")
    qg = im.qgraph
    if len(qg.inputs) != 1:
        raise HwsimError(f"model {qg.name!r} has {len(qg.inputs)} inputs; hwsim verify "
                         "supports single-input models")
    name = qg.inputs[0]
    want = tuple(qg.input_shapes[name][1:])
    x = inputs
    if x.ndim < 1 or tuple(x.shape[1:]) != want:
        raise HwsimError(f"inputs: expected samples of shape {want} for input {name!r}, "
                         f"got array of shape {tuple(x.shape)}")
    n = int(x.shape[0])
    if n == 0:
        raise HwsimError("inputs: expected at least one sample, got 0")
    if im.model is not None:
        exposed, inner = with_intermediates(im.model, qg)
        sess = ort_session(exposed)
    else:
        inner, sess = [], None
    onnx_outputs = list(im.outputs) if sess is not None else []
    pairs = {"onnxruntime_vs_golden": _Tally(), "onnxruntime_vs_golden_intermediate": _Tally(),
             "golden_vs_fakequant": _Tally()}
    code_of = {o: o if o in qg.tensors else o.removesuffix("_q") for o in inner}
    per_inner = {code_of[o]: _Tally() for o in inner}
    per_output = {o: _Tally() for o in onnx_outputs}
    per_layer = {nd.output: _Tally() for nd in qg.nodes}
    with bar(n, "verify") as b:
        for start in range(0, n, batch):
            xb = np.ascontiguousarray(x[start:start + batch], dtype=np.float32)
            codes = input_codes(im, name, xb)
            b.stage("golden")
            gr = run_golden(qg, {name: codes})
            b.stage("onnxruntime")
            ys = _run_ort(sess, onnx_outputs + inner, name, xb) if sess is not None else []
            for o, y in zip(inner, ys[len(onnx_outputs):], strict=True):
                if y.dtype.kind == "f":
                    y = float_to_codes(y, 1.0, 0, "float32")
                pairs["onnxruntime_vs_golden_intermediate"].add(y, gr.codes[code_of[o]])
                per_inner[code_of[o]].add(y, gr.codes[code_of[o]])
            for o, y in zip(onnx_outputs, ys[:len(onnx_outputs)], strict=True):
                tq = qg.tensors[im.outputs[o]]
                got = float_to_codes(y, tq.scale, tq.zero_point, tq.dtype)
                pairs["onnxruntime_vs_golden"].add(got, gr.codes[im.outputs[o]])
                per_output[o].add(got, gr.codes[im.outputs[o]])
            b.stage("fake-quant")
            fq = run_fakequant(qg, {name: codes})
            for nd in qg.nodes:
                pairs["golden_vs_fakequant"].add(gr.codes[nd.output], fq.codes[nd.output])
                per_layer[nd.output].add(gr.codes[nd.output], fq.codes[nd.output])
            b.update(xb.shape[0])
    report: dict[str, Any] = {
        "model": qg.name,
        "quantized_model": True,
        "profile": im.profile.record(),
        "requant_mode": qg.requant_config.mode,
        "samples": n,
        "pairs": {k: t.as_dict() for k, t in pairs.items()},
        "onnxruntime": sess is not None,
        "outputs": {o: t.as_dict() for o, t in per_output.items()},
        "layers": _layers(qg, per_layer, per_inner),
    }
    exact = qg.requant_config.mode in ("dyadic", "custom")
    report["ok"] = not (report["pairs"]["onnxruntime_vs_golden"]["mismatches"]
                        or report["pairs"]["onnxruntime_vs_golden_intermediate"]["mismatches"]
                        or (exact and report["pairs"]["golden_vs_fakequant"]["mismatches"]))
    return report


def _run_ort(sess: Any, names: list[str], inp: str, xb: np.ndarray) -> list[np.ndarray]:
    """ORT outputs for the batch ``xb``; a model whose input has a fixed batch size (often
    1) is run that many samples at a time and the results concatenated."""
    dim0 = next(i.shape[0] for i in sess.get_inputs() if i.name == inp)
    if not isinstance(dim0, int) or dim0 <= 0 or dim0 == xb.shape[0]:
        return sess.run(names, {inp: xb})
    if xb.shape[0] % dim0:
        raise HwsimError(f"the model's input {inp!r} has a fixed batch of {dim0}; give a "
                         f"number of inputs (and --batch) that is a multiple of it")
    parts = [sess.run(names, {inp: xb[i:i + dim0]}) for i in range(0, xb.shape[0], dim0)]
    return [np.concatenate([p[k] for p in parts], axis=0) for k in range(len(names))]


def _layers(qg: Any, per_layer: Mapping[str, _Tally],
            per_inner: Mapping[str, _Tally]) -> list[dict[str, Any]]:
    rows = []
    for nd in qg.nodes:
        tq = qg.tensors[nd.output]
        row = {"node": nd.name, "op": nd.op, "output": nd.output, "scale": tq.scale,
               "zero_point": tq.zero_point, "dtype": tq.dtype,
               "golden_vs_fakequant": per_layer[nd.output].as_dict()}
        if nd.output in per_inner:
            row["onnxruntime_vs_golden"] = per_inner[nd.output].as_dict()
        rows.append(row)
    return rows


def summary_line(report: Mapping[str, Any]) -> str:
    """One human line for a quantized-model report."""
    if not report["onnxruntime"]:
        p = report["pairs"]["golden_vs_fakequant"]
        return (f"{report['model']}: profile {report['profile']['name']}: golden vs "
                f"fake-quant {p['mismatches']}/{p['total']} mismatches (max "
                f"{p['max_abs_lsb']} LSB) over {report['samples']} inputs (no ONNX Runtime "
                "comparison: the graph's arithmetic is not ORT's)")
    p = report["pairs"]["onnxruntime_vs_golden"]
    return (f"{report['model']}: profile {report['profile']['name']}: onnxruntime vs golden "
            f"{p['mismatches']}/{p['total']} mismatches (max {p['max_abs_lsb']} LSB) over "
            f"{report['samples']} inputs")


def add_onnxruntime_pairs(report: dict[str, Any], qg: Any, inputs: np.ndarray, *,
                          batch: int = DEFAULT_BATCH) -> None:
    """For a float model quantized under an ORT profile (``hwsim verify MODEL --profile
    ort_cpu``): export the integer graph to QOperator (specs/ir.md §9), run ONNX Runtime on
    it over ``inputs`` and add ``onnxruntime_vs_golden`` (outputs) and
    ``onnxruntime_vs_golden_intermediate`` to ``report["pairs"]``; ``ok`` also requires
    them to be clean. Graphs of other profiles are left alone."""
    from hwsim.compiler.profiles import PROFILES
    from hwsim.frontends.onnx_quant_export import to_quantized_onnx

    prof = PROFILES.get(qg.profile)
    if prof is None or not prof.is_ort:
        return
    im = ImportedModel(qg, prof, {t: t for t in qg.outputs}, to_quantized_onnx(qg, "qoperator"))
    ort = verify_quantized(im, inputs, batch=batch)
    for k in ("onnxruntime_vs_golden", "onnxruntime_vs_golden_intermediate"):
        report["pairs"][k] = ort["pairs"][k]
    report["ok"] = bool(report["ok"] and ort["ok"])


def quantized_model(path: str, profile: str = "ort_cpu") -> ImportedModel | None:
    """The imported model when ``path`` is a quantized ONNX file or hwsim's integer-graph
    JSON (compiler §6), else None (a float model, or a file the float loader will report
    on). A JSON graph whose arithmetic ONNX Runtime has (specs/ir.md §9) is exported to a
    QOperator model for the comparison; otherwise ``model`` is None."""
    from hwsim.frontends.onnx_quant import is_quantized_onnx, load_quantized_onnx

    if str(path).endswith(".json"):
        from hwsim.compiler.profiles import PROFILES, profile_for_requant
        from hwsim.compiler.serialize import load_qgraph
        from hwsim.errors import ModelError
        from hwsim.frontends.onnx_quant_export import to_quantized_onnx

        qg = load_qgraph(path)
        prof = PROFILES.get(qg.profile) or profile_for_requant(qg.requant_config)
        try:
            model = to_quantized_onnx(qg, "qoperator")
        except ModelError:
            model = None
        return ImportedModel(qg, prof, {t: t for t in qg.outputs}, model)

    try:
        quantized = is_quantized_onnx(path)
    except HwsimError:
        return None
    return load_quantized_onnx(path, profile) if quantized else None


#: Seeded random inputs used when no --inputs is given: this many samples.
RANDOM_SAMPLES = 16


def quantized_inputs(im: ImportedModel, inputs_path: str | None,
                     seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Float inputs for :func:`verify_quantized`: the --inputs file (memory-mapped after
    its header is checked), else seeded standard-normal samples with a warning."""
    name = im.qgraph.inputs[0]
    shape = tuple(im.qgraph.input_shapes[name][1:])
    if inputs_path:
        from hwsim.verify import load_array

        x = load_array(inputs_path, "--inputs")
        if tuple(x.shape[1:]) != shape:
            raise HwsimError(f"--inputs {inputs_path}: expected samples of shape {shape} "
                             f"for input {name!r}, got array of shape {tuple(x.shape)}")
        return x, []
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((RANDOM_SAMPLES,) + shape).astype(np.float32)
    return x, [f"no --inputs given: using {RANDOM_SAMPLES} seeded random standard-normal "
               f"inputs (seed {seed})"]
