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

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hwsim.errors import HwsimError
from hwsim.vectors.build import layer_vectors
from hwsim.vectors.writer import LayerVectors, write_vectors

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
    for node in mac_nodes:
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
        out.append(layer_vectors(
            node.name, node.op, input=sim.codes[node.inputs[0]], weight=node.arrays["weight"],
            bias=node.arrays["bias"], requant=node.requant["out"], acc=acc, output=y,
            valid_cycle=valid, act_bits=config.act_bits, act_signed=not tin.dtype.startswith("u"),
            weight_bits=config.weight_bits, acc_bits=qgraph.acc_bits,
            acc_policy=qgraph.acc_overflow, conv=conv,
            qparams={"input": _tensor_record(tin),
                     "output": _tensor_record(qgraph.tensors[node.output]),
                     "weight_scale": [float(v) for v in np.ravel(node.arrays["weight_scale"])]},
        ))
    return out


def _source_record(src: ModelSource, sample: int) -> dict[str, Any]:
    from hwsim.report.evaluate import file_sha256, resolve_model_path

    rec = src.to_dict()
    rec["sample"] = sample
    rec["model_sha256"] = file_sha256(resolve_model_path(src.model))
    for key in ("calib", "inputs", "labels"):
        if rec.get(key):
            rec[f"{key}_sha256"] = file_sha256(Path(rec[key]))
    return rec


def _simulate_sample(src: ModelSource, config: ArrayConfig,
                     sample: int) -> tuple[QGraph, ModelResult]:
    from hwsim.report.evaluate import compile_for_array, load_source
    from hwsim.sim.graph import simulate_qgraph
    from hwsim.verify import single_input

    graph, data = load_source(src)
    x = data.inputs
    if not 0 <= sample < x.shape[0]:
        raise HwsimError(f"sample: expected an index in [0, {x.shape[0]}), got {sample}")
    qg = compile_for_array(graph, data.calib, src, config)
    sim = simulate_qgraph(qg, {single_input(graph): x[sample:sample + 1]}, config)
    return qg, sim


def generate_vectors(
    out_dir: str | Path,
    src: ModelSource,
    config: ArrayConfig,
    *,
    layers: Sequence[str] | None = None,
    sample: int = 0,
    progress: Callable[[str], None] = lambda _: None,
    simulated: tuple[QGraph, ModelResult] | None = None,
) -> Path:
    """Quantize ``src`` (:class:`hwsim.report.evaluate.ModelSource`) for ``config``, simulate
    input number ``sample`` and write the vectors of its MAC layers to ``out_dir``.

    ``simulated``: an already computed ``(qgraph, batch-1 simulation of that sample)`` of the
    same source and config (the demo reuses its evaluation), else computed here.
    """
    if simulated is None:
        progress(f"simulating sample {sample} of {src.model}")
        simulated = _simulate_sample(src, config, sample)
    qg, sim = simulated
    lvs = vectors_from_simulation(qg, sim, config, layers)
    progress(f"writing {len(lvs)} layer(s) to {out_dir}")
    meta = {
        "seed": src.seed,
        "model": qg.name,
        "array_config": config.to_dict(),
        "source": _source_record(src, sample),
    }
    return write_vectors(out_dir, lvs, meta)


def regenerate(manifest: Mapping[str, Any]) -> dict[str, dict[str, np.ndarray]]:
    """Rebuild every layer's arrays from the manifest's ``source`` and ``array_config``.

    Raises HwsimError if the recorded model or data file changed (SHA-256) or is missing.
    """
    from hwsim.report.evaluate import ModelSource, file_sha256, resolve_model_path
    from hwsim.sim.config import array_config_from_dict

    rec = dict(manifest["source"])
    sample = int(rec.pop("sample", 0))
    hashes = {k: rec.pop(k) for k in list(rec) if k.endswith("_sha256")}
    src = ModelSource(**rec)
    model_path = resolve_model_path(src.model)
    if not model_path.is_file():
        raise HwsimError(f"recorded model {model_path} is missing")
    if hashes.get("model_sha256") != file_sha256(model_path):
        raise HwsimError(f"recorded model {model_path} changed since the vectors were written "
                         "(SHA-256 differs)")
    for key in ("calib", "inputs", "labels"):
        if rec.get(key) and hashes.get(f"{key}_sha256") != file_sha256(Path(rec[key])):
            raise HwsimError(f"recorded {key} file {rec[key]} changed (SHA-256 differs)")
    config = array_config_from_dict(manifest["array_config"], source="manifest array_config")
    qg, sim = _simulate_sample(src, config, sample)
    names = [entry["name"] for entry in manifest["layers"]]
    lvs = vectors_from_simulation(qg, sim, config, names)
    return {lv.name: {k: v.data for k, v in lv.arrays.items()} for lv in lvs}
