"""Writing a golden-vector set atomically (specs/vectors.md §1, §3, §4).

A set is a directory::

    manifest.json                 written last; its presence means "complete"
    <layer>/<array>.hex           $readmemh text, one word per line (§2)
    <layer>/vectors.npz           the same arrays as int64 (uint64 for unsigned 64-bit) (§3)

:func:`write_vectors` builds the whole set in a temporary directory next to the target
(``.<name>.tmp-XXXX``), writes ``manifest.json`` last, then renames the directory into
place. An exception (or a killed process) before the rename leaves the target untouched
and never leaves a manifest in it; on an exception the temporary directory is removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwsim import __version__
from hwsim.errors import HwsimError
from hwsim.vectors.hexfmt import check_width, encode_hex, hex_digits

MANIFEST = "manifest.json"
FORMAT_NAME = "hwsim-vectors"
FORMAT_VERSION = 1
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class VectorArray:
    """One integer array of a layer: its values, word width, signedness and axis names."""

    data: np.ndarray
    bits: int
    signed: bool
    axes: tuple[str, ...]

    def __post_init__(self) -> None:
        check_width(self.bits)
        a = np.asarray(self.data)
        if a.dtype.kind not in "iu":
            raise HwsimError(f"vector array: expected an integer array, got dtype {a.dtype}")
        if len(self.axes) != a.ndim:
            raise HwsimError(
                f"vector array axes: expected {a.ndim} axis names for shape {a.shape}, "
                f"got {self.axes!r}"
            )
        object.__setattr__(self, "data", a)
        object.__setattr__(self, "axes", tuple(self.axes))


@dataclass(frozen=True)
class LayerVectors:
    """The vectors of one layer: named arrays and JSON-compatible parameters."""

    name: str
    op: str
    arrays: Mapping[str, VectorArray]
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise HwsimError(
                f"layer name {self.name!r}: expected letters, digits, '_', '.', '-' only"
            )
        for k in self.arrays:
            if not _NAME_RE.match(k):
                raise HwsimError(f"layer {self.name} array name {k!r}: expected [A-Za-z0-9_.-]+")


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _npz_dtype(va: VectorArray) -> type:
    return np.uint64 if (va.bits == 64 and not va.signed) else np.int64


def _write_layer(tmp: Path, lv: LayerVectors) -> dict[str, Any]:
    ldir = tmp / lv.name
    ldir.mkdir()
    arrays_meta: dict[str, Any] = {}
    npz_arrays: dict[str, np.ndarray] = {}
    for aname, va in lv.arrays.items():
        text = encode_hex(va.data, va.bits, va.signed, name=f"{lv.name}/{aname}")
        rel = f"{lv.name}/{aname}.hex"
        (tmp / rel).write_text(text, encoding="ascii")
        npz_arrays[aname] = np.ascontiguousarray(va.data, dtype=_npz_dtype(va))
        arrays_meta[aname] = {
            "hex": rel,
            "shape": list(va.data.shape),
            "axes": list(va.axes),
            "bits": va.bits,
            "signed": va.signed,
            "hex_digits": hex_digits(va.bits),
            "npz_dtype": np.dtype(_npz_dtype(va)).name,
            "order": "row-major",
        }
    with (ldir / "vectors.npz").open("wb") as fh:
        np.savez(fh, **npz_arrays)
    return {
        "name": lv.name,
        "op": lv.op,
        "npz": f"{lv.name}/vectors.npz",
        "arrays": arrays_meta,
        "params": dict(lv.params),
    }


def _install(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target``; an existing vector set or empty dir is replaced."""
    if not target.exists():
        os.replace(tmp, target)
        return
    if not target.is_dir():
        raise HwsimError(f"vectors output {target}: exists and is not a directory")
    if any(target.iterdir()) and not (target / MANIFEST).exists():
        raise HwsimError(
            f"vectors output {target}: a non-empty directory that is not a vector set; "
            "choose another --out"
        )
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.replace(target, old / "set")
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def write_vectors(
    out_dir: str | Path,
    layers: Sequence[LayerVectors],
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``layers`` as a vector set at ``out_dir`` atomically; returns the path.

    ``meta`` is JSON-compatible data recorded in the manifest (e.g. ``seed``,
    ``array_config``, ``source`` — the model and options needed to regenerate, §4).
    An existing vector set at ``out_dir`` is replaced; another non-empty directory is an
    error. Layer names must be unique.
    """
    target = Path(out_dir).resolve()
    names = [lv.name for lv in layers]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise HwsimError(f"vectors: duplicate layer name(s) {dup}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        layer_meta = [_write_layer(tmp, lv) for lv in layers]
        files = {
            p.relative_to(tmp).as_posix(): sha256_file(p)
            for p in sorted(tmp.rglob("*"))
            if p.is_file()
        }
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "hwsim_version": __version__,
            **dict(meta or {}),
            "layers": layer_meta,
            "files": files,
        }
        text = json.dumps(manifest, indent=2, sort_keys=False) + "\n"
        part = tmp / (MANIFEST + ".part")
        part.write_text(text, encoding="utf-8")
        os.replace(part, tmp / MANIFEST)
        _install(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
