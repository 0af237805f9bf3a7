"""Re-verifying a golden-vector set (specs/vectors.md §6).

:func:`check_vectors` returns a list of problems (empty: the set verifies):

1. the manifest exists and parses;
2. every file listed exists and its SHA-256 matches; no unlisted file is present;
3. every ``.hex`` file decodes to the same values as the ``.npz`` array;
4. per conv / gemm layer, the accumulators and outputs recomputed by the integer golden
   kernels (:mod:`hwsim.reference.golden_ops`, §7) and :func:`hwsim.arith.requantize`
   (§8) from the stored input, weights, bias and requantization parameters equal the
   stored ones;
5. if the manifest records a ``source`` (model file, options, array config, seed), the
   whole set is regenerated from it and every array must be equal (tolerance 0).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hwsim.errors import HwsimError
from hwsim.vectors.reader import load_layer_vectors, read_manifest
from hwsim.vectors.writer import MANIFEST, sha256_file

if TYPE_CHECKING:
    from hwsim.arith import RequantParams

Regenerator = Callable[[Mapping[str, Any]], dict[str, dict[str, np.ndarray]]]


def requant_params_from_layer(arrays: Mapping[str, Any]) -> RequantParams:
    """Rebuild the :class:`hwsim.arith.RequantParams` recorded for a layer (§4)."""
    from hwsim.arith import RequantConfig, RequantParams

    rq = arrays["params"]["requant"]
    scale = np.asarray(arrays["requant_scale_f32_bits"], dtype=np.uint32).view(np.float32)
    return RequantParams(
        config=RequantConfig(**rq["config"]),
        multiplier=np.asarray(arrays["requant_multiplier"], dtype=np.int64),
        shift=np.asarray(arrays["requant_shift"], dtype=np.int64),
        scale_f32=scale,
        zero_point=int(rq["zero_point"]),
        out_bits=int(rq["out_bits"]),
        out_signed=bool(rq["out_signed"]),
        act_min=int(rq["act_min"]),
        act_max=int(rq["act_max"]),
    )


def recompute_layer(arrays: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Accumulators and outputs of a conv / gemm layer from its stored operands (§7, §8).

    ``arrays`` is a :func:`load_layer_vectors` result. Returns ``{"acc": ..., "output": ...}``.
    """
    from hwsim.reference.golden_ops import conv2d_acc, gemm_acc, requantize_acc

    op, p = arrays["op"], arrays["params"]
    if op == "conv":
        acc, _ = conv2d_acc(
            arrays["input"], arrays["weight"], arrays["bias"],
            x_zero_point=int(p["x_zero_point"]), strides=tuple(p["strides"]),
            pads=tuple(p["pads"]), dilations=tuple(p["dilations"]), group=int(p["group"]),
            acc_bits=int(p["acc_bits"]), policy=p["acc_policy"],
        )
    elif op == "gemm":
        acc, _ = gemm_acc(arrays["input"], arrays["weight"], arrays["bias"],
                          acc_bits=int(p["acc_bits"]), policy=p["acc_policy"])
    else:
        raise HwsimError(f"recompute: op {op!r} has no recomputation; expected conv or gemm")
    out = requantize_acc(acc, requant_params_from_layer(arrays))
    return {"acc": acc, "output": out}


def _diff(layer: str, name: str, expected: np.ndarray, got: np.ndarray, what: str) -> str | None:
    e, g = np.asarray(expected), np.asarray(got)
    if e.shape != g.shape:
        return f"layer {layer} {name}: shape {g.shape} differs from {what} {e.shape}"
    bad = np.argwhere(e.astype(np.int64) != g.astype(np.int64))
    if bad.size == 0:
        return None
    first = tuple(int(i) for i in bad[0])
    return (
        f"layer {layer} {name}: {len(bad)} of {e.size} values differ from {what} "
        f"(first at index {first}: stored {g[first]}, {what} {e[first]})"
    )


def _check_files(d: Path, manifest: Mapping[str, Any]) -> tuple[list[str], set[str]]:
    problems: list[str] = []
    bad: set[str] = set()
    files: Mapping[str, str] = manifest.get("files", {})
    for rel, digest in files.items():
        path = d / rel
        if not path.is_file():
            problems.append(f"missing file {rel}")
            bad.add(rel)
        elif sha256_file(path) != digest:
            problems.append(f"{rel}: SHA-256 mismatch (manifest {digest[:12]}…, file "
                            f"{sha256_file(path)[:12]}…)")
            bad.add(rel)
    for p in sorted(d.rglob("*")):
        rel = p.relative_to(d).as_posix()
        if p.is_file() and rel != MANIFEST and rel not in files:
            problems.append(f"unlisted file {rel}")
    return problems, bad


def check_vectors(vec_dir: str | Path, regenerate: bool | Regenerator = True) -> list[str]:
    """Every problem found in the vector set at ``vec_dir`` (empty list: it verifies).

    ``regenerate``: True uses :func:`hwsim.vectors.generate.regenerate` when the manifest
    records a ``source``; False skips step 5; a callable replaces the regenerator.
    """
    d = Path(vec_dir)
    try:
        manifest = read_manifest(d)
    except HwsimError as exc:
        return [str(exc)]
    problems, bad_files = _check_files(d, manifest)
    loaded: dict[str, dict[str, Any]] = {}
    for entry in manifest["layers"]:
        name = entry["name"]
        needed = {entry["npz"], *(f["hex"] for f in entry["arrays"].values())}
        if needed & bad_files:
            continue
        try:
            from_npz = load_layer_vectors(d, name, source="npz")
            from_hex = load_layer_vectors(d, name, source="hex")
        except (HwsimError, ValueError, KeyError, OSError) as exc:
            problems.append(f"layer {name}: cannot read: {exc}")
            continue
        for aname in entry["arrays"]:
            msg = _diff(name, f"{aname}.hex", from_npz[aname], from_hex[aname], "npz")
            if msg:
                problems.append(msg)
        loaded[name] = from_npz
        if entry["op"] in ("conv", "gemm") and "output" in entry["arrays"]:
            try:
                rec = recompute_layer(from_npz)
            except (HwsimError, KeyError, TypeError) as exc:
                problems.append(f"layer {name}: cannot recompute: {exc}")
                continue
            for aname, value in rec.items():
                msg = _diff(name, aname, value, from_npz[aname], "recomputed")
                if msg:
                    problems.append(msg)
    if regenerate and manifest.get("source") is not None:
        problems.extend(_check_regenerated(manifest, loaded, regenerate))
    return problems


def _check_regenerated(manifest: Mapping[str, Any], loaded: Mapping[str, dict[str, Any]],
                       regenerate: bool | Regenerator) -> list[str]:
    if callable(regenerate):
        regen = regenerate
    else:
        from hwsim.vectors.generate import regenerate as regen
    try:
        fresh = regen(manifest)
    except (HwsimError, OSError) as exc:
        return [f"cannot regenerate from the recorded source: {exc}"]
    problems: list[str] = []
    for entry in manifest["layers"]:
        name = entry["name"]
        if name not in fresh:
            problems.append(f"layer {name}: not produced when regenerating from the source")
            continue
        if name not in loaded:
            continue
        for aname in entry["arrays"]:
            if aname not in fresh[name]:
                problems.append(f"layer {name} {aname}: not produced when regenerating")
                continue
            msg = _diff(name, aname, fresh[name][aname], loaded[name][aname], "regenerated")
            if msg:
                problems.append(msg)
    return problems
