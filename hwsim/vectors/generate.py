"""Golden vectors of a model simulated on an array (specs/vectors.md §4, §6).

:func:`vectors_from_simulation` takes one simulated inference (batch 1,
:func:`hwsim.sim.graph.simulate_qgraph`) and builds the :class:`LayerVectors` of its conv /
gemm layers: the layer's input codes as the array saw them, weights, folded bias, the
requantization parameters, the accumulators and outputs the cycle model produced, and the
cycle at which each output became valid. Valid cycles count from the start of the layer on
the array with ideal memory (specs/cycle_model.md §C4); a grouped conv runs its GEMMs one
after the other, so group ``g`` is offset by the array cycles of groups ``0 … g−1``.

:func:`generate_vectors` runs the model and writes the set; :func:`regenerate` redoes it
from a manifest's ``source`` for :func:`hwsim.vectors.check_vectors`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hwsim.errors import HwsimError
from hwsim.vectors.build import layer_vectors
from hwsim.vectors.writer import LayerVectors, check_target, write_vectors

if TYPE_CHECKING:
    from hwsim.compiler.qgraph import QGraph, TensorQ
    from hwsim.report.evaluate import ModelSource
    from hwsim.sim.config import ArrayConfig
    from hwsim.sim.graph import ModelResult


def _assemble(parts: list[np.ndarray], op: str, out_shape: tuple[int, ...]) -> np.ndarray:
    if op == "gemm":
        return np.asarray(parts[0], dtype=np.int64)
    from hwsim.sim.lowering import assemble_conv

    return assemble_conv([np.asarray(p, dtype=np.int64) for p in parts], out_shape)


def _tensor_record(tq: TensorQ) -> dict[str, Any]:
    return {"dtype": tq.dtype, "scale": float(tq.scale), "zero_point": int(tq.zero_point)}


def vectors_from_simulation(qgraph: QGraph, sim: ModelResult, config: ArrayConfig,
                            layers: Sequence[str] | None = None) -> list[LayerVectors]:
    """LayerVectors of the MAC layers of one simulated inference (all, or ``layers``).

    Raises HwsimError naming an unknown or non-MAC layer in ``layers``.
    """
    mac_nodes = [n for n in qgraph.nodes if n.op in ("conv", "gemm")]
    names = [n.name for n in mac_nodes]
    if layers:
        all_names = [n.name for n in qgraph.nodes]
        for want in layers:
            if want not in all_names:
                raise HwsimError(f"unknown layer {want!r}; the model has {all_names}")
            if want not in names:
                raise HwsimError(f"layer {want!r} is not a conv/gemm layer; vector layers: {names}")
        mac_nodes = [n for n in mac_nodes if n.name in set(layers)]
    out: list[LayerVectors] = []
    from hwsim.progress import progress

    for node in progress(mac_nodes, desc="vectors", unit="layer"):
        res = sim.mac_layers[node.name]
        y = np.asarray(sim.codes[node.output], dtype=np.int64)
        offsets = np.cumsum([0] + [g.cycles for g in res.gemms[:-1]])
        acc = _assemble([g.acc for g in res.gemms], node.op, y.shape)
        valid = _assemble(
            [g.valid_cycles + off for g, off in zip(res.gemms, offsets, strict=True)],
            node.op, y.shape)
        tin = qgraph.tensors[node.inputs[0]]
        conv = None
        if node.op == "conv":
            a = node.attrs
            conv = {"strides": a["strides"], "pads": a["pads"], "dilations": a["dilations"],
                    "group": a["group"], "x_zero_point": tin.zero_point}
        lv = layer_vectors(
            node.name, node.op, input=sim.codes[node.inputs[0]], weight=node.arrays["weight"],
            bias=node.arrays["bias"], requant=node.requant["out"], acc=acc, output=y,
            valid_cycle=valid, act_bits=config.act_bits, act_signed=not tin.dtype.startswith("u"),
            weight_bits=config.weight_bits, acc_bits=qgraph.acc_bits,
            acc_policy=qgraph.acc_overflow, conv=conv,
            qparams={"input": _tensor_record(tin),
                     "output": _tensor_record(qgraph.tensors[node.output]),
                     "weight_scale": [float(v) for v in np.ravel(node.arrays["weight_scale"])]},
        )
        # the memory mapping of each GEMM of the layer (specs/cycle_model.md §C6); it decides
        # traffic and stalls, not the valid cycles (§C6.1)
        mappings = [m.mapping for m in res.memory]
        out.append(LayerVectors(lv.name, lv.op, lv.arrays, {**lv.params, "mapping": mappings}))
    return out


#: Where a set stores what it was generated from (specs/vectors.md §5): the model file
#: keeps its kind's suffix (``.onnx``, or ``.json`` with the ``.npz`` it names for hwsim's
#: integer graph).
SOURCE_MODEL = "source/model.onnx"
SOURCE_QGRAPH = "source/model.json"
SOURCE_CALIB = "source/calib.npy"
SOURCE_INPUT = "source/input.npy"


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def _source_record(src: ModelSource, sample: int, calib: np.ndarray | None, x: np.ndarray,
                   ) -> tuple[dict[str, Any], dict[str, Path | bytes]]:
    """The manifest's ``source`` and the files stored under ``source/`` (§5): the built-in
    demo model with its own data is recorded by name; otherwise the model file (an hwsim
    integer graph with its ``.npz``) is copied and the calibration inputs (float models
    only: a quantized model is not calibrated) and the simulated input are stored, so the
    set regenerates from its own files only (``input_index`` records which input of the
    data it was)."""
    from hwsim.report.evaluate import DEMO_MODEL, file_sha256, resolve_model_path

    rec = src.to_dict()
    model_path = resolve_model_path(src.model)
    rec["model_sha256"] = file_sha256(model_path)
    rec["labels"] = None
    if src.model == DEMO_MODEL and not src.calib and not src.inputs:
        rec["sample"] = sample
        return rec, {}
    files: dict[str, Path | bytes] = {SOURCE_INPUT: _npy_bytes(x)}
    rec.update(inputs=SOURCE_INPUT, sample=0, input_index=sample, calib=None, qparams=None)
    if calib is not None:
        files[SOURCE_CALIB] = _npy_bytes(calib)
        rec["calib"] = SOURCE_CALIB
    if src.qparams:
        files["source/qparams.json"] = Path(src.qparams)
        rec["qparams"] = "source/qparams.json"
    if src.model != DEMO_MODEL:
        if model_path.suffix.lower() == ".json":
            # the JSON names its .npz (same directory); both are stored side by side
            import json

            npz = Path(str(json.loads(model_path.read_text()).get("npz", "")))
            if npz.name != str(npz) or not npz.name.endswith(".npz"):
                raise HwsimError(f"model {model_path}: field 'npz' {str(npz)!r} is not a "
                                 "file name beside the JSON")
            files[SOURCE_QGRAPH] = model_path
            files[f"source/{npz.name}"] = model_path.parent / npz.name
            rec["model"] = SOURCE_QGRAPH
        else:
            files[SOURCE_MODEL] = model_path
            rec["model"] = SOURCE_MODEL
    return rec, files


def _simulate_sample(src: ModelSource, config: ArrayConfig, sample: int,
                     batch: int | None = None,
                     ) -> tuple[QGraph, ModelResult, np.ndarray | None, np.ndarray]:
    """(qgraph, simulation of one run, calibration inputs or None, the simulated input);
    one run is one input, or the model's fixed leading dimension of them (``sample``
    counts runs); ``batch``: calibration batch of a min-max observer
    (hwsim.verify.calibration_batch; the result does not depend on it)."""
    from hwsim.report.evaluate import compile_for_array, fixed_batch, load_source
    from hwsim.sim.graph import simulate_qgraph

    loaded, data = load_source(src)
    x = data.inputs
    d = fixed_batch(loaded)
    runs = x.shape[0] // d
    if not 0 <= sample < runs:
        raise HwsimError(f"sample: expected an index in [0, {runs}), got {sample}")
    qg = (compile_for_array(loaded, data.calib, src, config) if batch is None
          else compile_for_array(loaded, data.calib, src, config, batch))
    xs = np.asarray(x[sample * d:(sample + 1) * d])
    sim = simulate_qgraph(qg, {loaded.input_name: xs}, config)
    return qg, sim, data.calib, xs


def generate_vectors(
    out_dir: str | Path,
    src: ModelSource,
    config: ArrayConfig,
    *,
    layers: Sequence[str] | None = None,
    sample: int = 0,
    progress: Callable[[str], None] = lambda _: None,
    simulated: tuple[QGraph, ModelResult] | None = None,
    batch: int | None = None,
) -> Path:
    """Quantize ``src`` (:class:`hwsim.report.evaluate.ModelSource`) for ``config``, simulate
    input number ``sample`` and write the vectors of its MAC layers to ``out_dir``.

    ``simulated``: an already computed ``(qgraph, batch-1 simulation of that sample)`` of the
    same source and config (the demo reuses its evaluation), else computed here.
    ``batch``: inputs per calibration batch (hwsim.verify.calibration_batch). Layers are
    built with a progress bar (hwsim.progress).
    """
    check_target(out_dir)  # refuse a bad --out before the long work (specs/vectors.md §1)
    if simulated is None:
        progress(f"simulating sample {sample} of {src.model}")
        qg, sim, calib, xs = _simulate_sample(src, config, sample, batch)
    else:
        from hwsim.report.evaluate import load_source

        qg, sim = simulated
        from hwsim.report.evaluate import fixed_batch

        loaded, data = load_source(src)
        d = fixed_batch(loaded)
        calib, xs = data.calib, np.asarray(data.inputs[sample * d:(sample + 1) * d])
    lvs = vectors_from_simulation(qg, sim, config, layers)
    source, source_files = _source_record(src, sample, calib, xs)
    progress(f"writing {len(lvs)} layer(s) to {out_dir}")
    meta = {
        "seed": src.seed,
        "model": qg.name,
        "profile": qg.profile,
        "array_config": config.to_dict(),
        "source": source,
    }
    return write_vectors(out_dir, lvs, meta, source_files=source_files)


_SOURCE_KEYS = {"model", "calib", "inputs", "labels", "samples", "seed", "weights", "observer",
                "profile", "act_dtype", "narrow_range", "qparams"}


def _source_path(set_dir: Path, rel: object, key: str) -> str:
    from hwsim.vectors.manifest import confined

    try:
        return str(confined(set_dir, rel, f"source.{key}"))
    except HwsimError as exc:
        raise HwsimError(f"{exc}; it is not followed (sets written by hwsim 0.1 recorded "
                         "paths outside the set: rewrite the set, or check with "
                         "--no-regenerate)") from None


def regenerate(manifest: Mapping[str, Any],
               set_dir: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """Rebuild every layer's arrays from the manifest's ``source`` and ``array_config``.

    Source files are read only from inside ``set_dir`` (§1, §5); the built-in demo model is
    resolved by name and must have the recorded SHA-256. Raises HwsimError naming the field
    for a malformed, missing or outside source.
    """
    from hwsim.report.evaluate import DEMO_MODEL, ModelSource, file_sha256, resolve_model_path
    from hwsim.sim.config import array_config_from_dict

    d = Path(set_dir)
    rec = dict(manifest["source"])
    sample = rec.pop("sample", 0)
    if not isinstance(sample, int) or isinstance(sample, bool) or sample < 0:
        raise HwsimError(f"source.sample: expected an int >= 0, got {sample!r:.40}")
    hashes = {k: rec.pop(k) for k in list(rec) if k.endswith("_sha256")}
    rec.pop("input_index", None)
    unknown = sorted(set(rec) - _SOURCE_KEYS)
    if unknown:
        raise HwsimError(f"source: unknown field(s) {unknown}; expected {sorted(_SOURCE_KEYS)}")
    for key in ("calib", "inputs", "qparams"):
        if rec.get(key) is not None:
            rec[key] = _source_path(d, rec[key], key)
    if rec.get("model") == DEMO_MODEL:
        model_path = resolve_model_path(DEMO_MODEL)
        if hashes.get("model_sha256") != file_sha256(model_path):
            raise HwsimError(f"recorded model {DEMO_MODEL!r} differs from this hwsim's demo "
                             "model (SHA-256)")
    else:
        rec["model"] = _source_path(d, rec.get("model"), "model")
        if not Path(rec["model"]).is_file():
            raise HwsimError(f"recorded model {manifest['source'].get('model')} is missing")
    rec["labels"] = None
    src = ModelSource(**rec)
    if not isinstance(manifest.get("array_config"), dict):
        raise HwsimError("array_config: expected an object (the ArrayConfig as a dict)")
    config = array_config_from_dict(manifest["array_config"], source="manifest array_config")
    qg, sim, _, _ = _simulate_sample(src, config, sample)
    names = [entry["name"] for entry in manifest["layers"]]
    lvs = vectors_from_simulation(qg, sim, config, names)
    return {lv.name: {k: v.data for k, v in lv.arrays.items()} for lv in lvs}
