"""Save / load an integer graph as JSON + NPZ (specs/compiler.md §6).

``save_qgraph(g, "m.json")`` writes ``m.json`` (structure, qparams, requant configuration
and scalars, ``schema_version``, the dtype / shape / SHA-256 of every array, and a SHA-256
of the JSON content itself) and ``m.npz`` (the arrays), each atomically (temporary file in
the same directory + ``os.replace``). ``load_qgraph("m.json")`` checks the schema version,
the JSON content hash, that every referenced array is in the NPZ with the recorded dtype,
shape and hash (``np.load(allow_pickle=False)``), rebuilds the graph and runs
:func:`hwsim.compiler.qgraph.verify_qgraph`. Every failure is a ModelError saying what is
wrong with which file.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from hwsim.arith import RequantConfig, RequantParams
from hwsim.compiler.qgraph import QGraph, QNode, TensorQ, verify_qgraph
from hwsim.errors import HwsimError, ModelError
from hwsim.fileio import atomic_write

SCHEMA_VERSION = 1
FORMAT = "hwsim-qgraph"
_REQUANT_ARRAYS = ("multiplier", "shift", "scale_f32")
_REQUANT_SCALARS = ("zero_point", "out_bits", "out_signed", "act_min", "act_max")
_CONFIG_FIELDS = ("mode", "multiplier_bits", "rounding", "shift_min", "shift_max",
                  "output_overflow")


def array_sha256(a: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and C-order bytes."""
    h = hashlib.sha256()
    h.update(f"{a.dtype.str}|{a.shape}|".encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _encode(v: Any) -> Any:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return f if math.isfinite(f) else {"$float": repr(f)}
    if isinstance(v, str):
        return v
    if isinstance(v, (tuple, list)):
        return [_encode(x) for x in v]
    raise ModelError(f"cannot serialise attribute value {v!r} of type {type(v).__name__}")


def _decode(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_decode(x) for x in v)
    if isinstance(v, dict):
        if set(v) != {"$float"}:
            raise ModelError(f"malformed attribute value {v!r}")
        return float(v["$float"])
    return v


def _content_hash(doc: dict[str, Any]) -> str:
    body = {k: v for k, v in doc.items() if k != "content_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def npz_path(json_path: str | os.PathLike[str]) -> Path:
    """The NPZ file that goes with a JSON model file (same stem, suffix .npz)."""
    return Path(json_path).with_suffix(".npz")


def qgraph_to_json(g: QGraph) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON document and the named arrays of ``g`` (what :func:`save_qgraph` writes)."""
    verify_qgraph(g)
    arrays: dict[str, np.ndarray] = {}

    def put(key: str, a: np.ndarray) -> str:
        arrays[key] = np.ascontiguousarray(a)
        return key

    nodes = []
    for i, n in enumerate(g.nodes):
        req = {}
        for k, p in n.requant.items():
            if p.config != g.requant_config:
                raise ModelError(f"node {n.name!r}: requant {k!r} uses a config different "
                                 "from the graph's requant_config")
            req[k] = {f: _encode(getattr(p, f)) for f in _REQUANT_SCALARS}
            req[k].update({f: put(f"n{i}.requant.{k}.{f}", getattr(p, f))
                           for f in _REQUANT_ARRAYS})
        nodes.append({
            "name": n.name, "op": n.op, "inputs": list(n.inputs), "output": n.output,
            "fused": n.fused, "attrs": {k: _encode(v) for k, v in n.attrs.items()},
            "arrays": {k: put(f"n{i}.{k}", a) for k, a in n.arrays.items()},
            "requant": req,
        })
    doc: dict[str, Any] = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "name": g.name,
        "inputs": list(g.inputs),
        "outputs": list(g.outputs),
        "input_shapes": {k: list(v) for k, v in g.input_shapes.items()},
        "acc_bits": g.acc_bits,
        "acc_overflow": g.acc_overflow,
        "weight_format": g.weight_format,
        "dynamic": g.dynamic,
        "profile": g.profile,
        "requant_config": {f: getattr(g.requant_config, f) for f in _CONFIG_FIELDS},
        "tensors": {t.name: {"dtype": t.dtype,
                             "scale": None if math.isnan(t.scale) else t.scale,
                             "zero_point": t.zero_point} for t in g.tensors.values()},
        "nodes": nodes,
        "arrays": {k: {"dtype": a.dtype.str, "shape": list(a.shape), "sha256": array_sha256(a)}
                   for k, a in arrays.items()},
    }
    doc["content_sha256"] = _content_hash(doc)
    return doc, arrays


def save_qgraph(g: QGraph, path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``g`` to ``path`` (JSON) and its NPZ sibling, atomically. Returns both paths."""
    jpath = Path(path)
    if jpath.suffix != ".json":
        raise HwsimError(f"{jpath}: the integer graph file must end in .json")
    doc, arrays = qgraph_to_json(g)
    doc["npz"] = npz_path(jpath).name
    doc["content_sha256"] = _content_hash(doc)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write(npz_path(jpath), buf.getvalue())
    atomic_write(jpath, (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode())
    return jpath, npz_path(jpath)


def _need(doc: dict[str, Any], key: str, where: str) -> Any:
    if key not in doc:
        raise ModelError(f"{where}: missing field {key!r}")
    return doc[key]


def load_qgraph(path: str | os.PathLike[str]) -> QGraph:
    """Read and validate an integer graph written by :func:`save_qgraph`."""
    jpath = Path(path)
    try:
        doc = json.loads(jpath.read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"{jpath}: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelError(f"{jpath}: not an hwsim integer graph (field 'format' must be "
                         f"{FORMAT!r})")
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ModelError(f"{jpath}: schema_version {version!r} is not supported "
                         f"(expected {SCHEMA_VERSION})")
    if doc.get("content_sha256") != _content_hash(doc):
        raise ModelError(f"{jpath}: content hash mismatch: the JSON was modified after it "
                         "was written")
    zpath = jpath.parent / str(_need(doc, "npz", str(jpath)))
    arrays = _load_arrays(zpath, _need(doc, "arrays", str(jpath)))
    return _build(doc, arrays, jpath)


def _load_arrays(zpath: Path, meta: dict[str, Any]) -> dict[str, np.ndarray]:
    if not zpath.exists():
        raise ModelError(f"{zpath}: array file not found (it must sit beside the JSON)")
    try:
        with np.load(zpath, allow_pickle=False) as z:
            out = {}
            for key, m in meta.items():
                if key not in z.files:
                    raise ModelError(f"{zpath}: array {key!r} is missing")
                a = z[key]
                if a.dtype.str != m["dtype"] or list(a.shape) != list(m["shape"]):
                    raise ModelError(
                        f"{zpath}: array {key!r} is {a.dtype.str}{list(a.shape)}, the JSON "
                        f"records {m['dtype']}{list(m['shape'])}")
                if array_sha256(a) != m["sha256"]:
                    raise ModelError(f"{zpath}: array {key!r} does not match its SHA-256 "
                                     "recorded in the JSON (file modified)")
                out[key] = a
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        if isinstance(exc, HwsimError):
            raise
        raise ModelError(f"{zpath}: not a readable .npz file ({exc})") from exc
    return out


def _build(doc: dict[str, Any], arrays: dict[str, np.ndarray], jpath: Path) -> QGraph:
    where = str(jpath)
    try:
        config = RequantConfig(**{f: doc["requant_config"][f] for f in _CONFIG_FIELDS})
        tensors = {
            name: TensorQ(name, t["dtype"], float("nan") if t["scale"] is None
                          else float(t["scale"]), int(t["zero_point"]))
            for name, t in _need(doc, "tensors", where).items()
        }
        nodes = []
        for nd in _need(doc, "nodes", where):
            req = {}
            for k, r in nd["requant"].items():
                req[k] = RequantParams(config=config,
                                       **{f: arrays[r[f]] for f in _REQUANT_ARRAYS},
                                       **{f: r[f] for f in _REQUANT_SCALARS})
            nodes.append(QNode(
                name=nd["name"], op=nd["op"], inputs=tuple(nd["inputs"]),
                output=nd["output"], fused=nd["fused"],
                attrs={k: _decode(v) for k, v in nd["attrs"].items()},
                arrays={k: arrays[key] for k, key in nd["arrays"].items()}, requant=req))
        g = QGraph(
            name=doc["name"], inputs=tuple(doc["inputs"]), outputs=tuple(doc["outputs"]),
            tensors=tensors, nodes=tuple(nodes), requant_config=config,
            acc_bits=int(doc["acc_bits"]), acc_overflow=doc["acc_overflow"],
            weight_format=doc["weight_format"], dynamic=bool(doc["dynamic"]),
            input_shapes={k: tuple(v) for k, v in doc["input_shapes"].items()},
            profile=str(doc.get("profile", "")))
    except (KeyError, TypeError) as exc:
        raise ModelError(f"{where}: malformed integer graph (missing or wrong field: "
                         f"{exc})") from exc
    except HwsimError as exc:
        raise ModelError(f"{where}: {exc}") from exc
    verify_qgraph(g)
    return g
