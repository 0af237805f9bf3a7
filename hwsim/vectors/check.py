"""Re-verifying a golden-vector set (specs/vectors.md §6).

:func:`check_vectors` returns a list of problems (empty: the set verifies):

1. the manifest exists, parses and is well-formed (§5); otherwise the check stops there,
   having opened no other file;
2. every file listed exists as a regular file inside the set and its SHA-256 matches; no
   unlisted file, directory or symbolic link is present (links are never followed, §1);
3. every ``.hex`` file decodes to the same values as the ``.npz`` array;
4. per conv / gemm layer, the accumulators and outputs recomputed by the integer golden
   kernels (:mod:`hwsim.reference.golden_ops`, §7) and :func:`hwsim.arith.requantize`
   (§8) from the stored input, weights, bias and requantization parameters equal the
   stored ones;
5. if the manifest records a ``source`` (model file, options, array config, seed), the
   whole set is regenerated from it and every array must be equal (tolerance 0).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hwsim.errors import HwsimError
from hwsim.vectors.manifest import load_manifest_json, manifest_problems, set_problems
from hwsim.vectors.reader import load_layer_vectors

if TYPE_CHECKING:
    from hwsim.arith import RequantParams

#: ``regenerate(manifest)`` → ``{layer: {array: values}}``.
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


_POLICIES = ("wrap", "saturate", "error")
#: Largest stride, padding or dilation a manifest may ask the recomputation for.
_MAX_WINDOW = 1 << 12


def _check_params(op: str, p: Mapping[str, Any]) -> None:
    """Ranges of the layer parameters the recomputation uses, checked before any work so
    that a malformed manifest is a problem, not a huge allocation (§5, §6 step 4)."""
    def is_int(v: object, lo: int, hi: int) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi

    if not is_int(p.get("acc_bits"), 2, 64):
        raise HwsimError(f"params.acc_bits: expected an int in [2, 64], "
                         f"got {p.get('acc_bits')!r:.40}")
    if p.get("acc_policy") not in _POLICIES:
        raise HwsimError(f"params.acc_policy: expected one of {_POLICIES}, "
                         f"got {p.get('acc_policy')!r:.40}")
    if op != "conv":
        return
    for key, n, lo in (("strides", 2, 1), ("dilations", 2, 1), ("pads", 4, 0)):
        v = p.get(key)
        if not isinstance(v, list) or len(v) != n or not all(is_int(x, lo, _MAX_WINDOW) for x in v):
            raise HwsimError(f"params.{key}: expected {n} ints in [{lo}, {_MAX_WINDOW}], "
                             f"got {v!r:.60}")
    if not is_int(p.get("group"), 1, 1 << 20):
        raise HwsimError(f"params.group: expected an int >= 1, got {p.get('group')!r:.40}")
    if not is_int(p.get("x_zero_point"), -(1 << 31), (1 << 32) - 1):
        raise HwsimError(f"params.x_zero_point: expected an int, got {p.get('x_zero_point')!r:.40}")


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


def check_vectors(vec_dir: str | Path, regenerate: bool | Regenerator = True) -> list[str]:
    """Every problem found in the vector set at ``vec_dir`` (empty list: it verifies).

    ``regenerate``: True uses :func:`hwsim.vectors.generate.regenerate` when the manifest
    records a ``source``; False skips step 5; a callable replaces the regenerator.
    """
    d = Path(vec_dir)
    try:
        manifest = load_manifest_json(d)
    except HwsimError as exc:
        return [str(exc)]
    structure = manifest_problems(manifest)
    if structure:
        return [f"manifest {p}" for p in structure]
    problems, bad_files = set_problems(d, manifest)
    loaded: dict[str, dict[str, Any]] = {}
    for entry in manifest["layers"]:
        name = entry["name"]
        needed = {entry["npz"], *(f["hex"] for f in entry["arrays"].values())}
        if needed & bad_files:
            continue
        try:
            from_npz = load_layer_vectors(d, name, source="npz")
            from_hex = load_layer_vectors(d, name, source="hex")
        except (HwsimError, OSError) as exc:
            problems.append(f"layer {name}: cannot read: {exc}")
            continue
        for aname in entry["arrays"]:
            msg = _diff(name, f"{aname}.hex", from_npz[aname], from_hex[aname], "npz")
            if msg:
                problems.append(msg)
        loaded[name] = from_npz
        if entry["op"] in ("conv", "gemm") and "output" in entry["arrays"]:
            try:
                _check_params(from_npz["op"], from_npz["params"])
                rec = recompute_layer(from_npz)
            except HwsimError as exc:
                problems.append(f"layer {name}: cannot recompute: {exc}")
                continue
            except (KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
                problems.append(f"layer {name}: cannot recompute: params or arrays malformed "
                                f"({type(exc).__name__})")
                continue
            for aname, value in rec.items():
                msg = _diff(name, aname, value, from_npz[aname], "recomputed")
                if msg:
                    problems.append(msg)
    if regenerate and manifest.get("source") is not None:
        problems.extend(_check_regenerated(manifest, d, loaded, regenerate))
    return problems


def _check_regenerated(manifest: Mapping[str, Any], d: Path,
                       loaded: Mapping[str, dict[str, Any]],
                       regenerate: bool | Regenerator) -> list[str]:
    if callable(regenerate):
        regen = regenerate
    else:
        from hwsim.vectors.generate import regenerate as from_source

        regen = functools.partial(from_source, set_dir=d)
    try:
        fresh = regen(manifest)
    except (HwsimError, OSError) as exc:
        return [f"cannot regenerate from the recorded source: {exc}"]
    except (KeyError, TypeError, ValueError) as exc:
        return [f"cannot regenerate: the manifest's source or array_config is malformed "
                f"({type(exc).__name__})"]
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
