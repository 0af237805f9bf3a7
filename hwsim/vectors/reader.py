"""Reading a golden-vector set (specs/vectors.md §5): the API the RTL testbenches use."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from hwsim.errors import HwsimError
from hwsim.inputs import read_npy_header
from hwsim.vectors.hexfmt import decode_hex, hex_digits
from hwsim.vectors.manifest import confined, load_manifest_json, manifest_problems

#: Keys of :func:`load_layer_vectors`'s result that are not arrays.
RESERVED_KEYS = ("op", "params", "formats")


def read_manifest(vec_dir: str | Path) -> dict[str, Any]:
    """The parsed, structurally valid manifest.json of a vector set (§5).

    Raises HwsimError if the directory has no manifest (an incomplete or interrupted write),
    the manifest is not a hwsim vector manifest of a version this hwsim reads, or it is
    malformed (the message names the first fields at fault).
    """
    manifest = load_manifest_json(vec_dir)
    problems = manifest_problems(manifest)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise HwsimError(f"vectors {Path(vec_dir) / 'manifest.json'}: malformed manifest: "
                         f"{problems[0]}{more}")
    return manifest


def layer_names(vec_dir: str | Path) -> list[str]:
    """Layer names of a vector set, in manifest (execution) order."""
    return [layer["name"] for layer in read_manifest(vec_dir)["layers"]]


def layer_entry(manifest: dict[str, Any], layer: str) -> dict[str, Any]:
    """The manifest entry of ``layer``; HwsimError listing the known names if absent."""
    for entry in manifest["layers"]:
        if entry["name"] == layer:
            return entry
    names = [e["name"] for e in manifest["layers"]]
    raise HwsimError(f"unknown layer {layer!r}; the vector set has {names}")


def _count(shape: tuple[int, ...]) -> int:
    n = 1
    for v in shape:
        n *= v
    return n


def _read_hex(d: Path, fmt: dict[str, Any]) -> np.ndarray:
    rel = fmt["hex"]
    path = confined(d, rel, "hex")
    if not path.is_file():
        raise HwsimError(f"vectors {d}: missing file {rel}")
    shape = tuple(fmt["shape"])
    expected = _count(shape) * (hex_digits(fmt["bits"]) + 1)
    size = path.stat().st_size
    if size != expected:
        raise HwsimError(f"vectors {rel}: {size} bytes, expected {expected} "
                         f"({_count(shape)} words of {hex_digits(fmt['bits'])} digits + newline)")
    try:
        text = path.read_bytes().decode("ascii")
    except UnicodeDecodeError:
        raise HwsimError(f"vectors {rel}: not ASCII text") from None
    return decode_hex(text, fmt["bits"], fmt["signed"], name=rel).reshape(shape)


def _read_npz(d: Path, entry: dict[str, Any]) -> dict[str, np.ndarray]:
    rel = entry["npz"]
    path = confined(d, rel, "npz")
    if not path.is_file():
        raise HwsimError(f"vectors {d}: missing file {rel}")
    out: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not hasattr(npz, "files"):
                raise HwsimError(f"vectors {rel}: not an .npz archive")
            for name, fmt in entry["arrays"].items():
                if name not in npz.files:
                    raise HwsimError(f"vectors {rel}: no array {name!r}")
                with npz.zip.open(f"{name}.npy") as fh:
                    shape, dtype = read_npy_header(fh)
                if tuple(shape) != tuple(fmt["shape"]) or dtype not in (np.int64, np.uint64):
                    raise HwsimError(
                        f"vectors {rel} array {name!r}: header says {dtype} {tuple(shape)}, "
                        f"expected int64/uint64 {tuple(fmt['shape'])}")
                out[name] = np.array(npz[name])
    except (ValueError, OSError, EOFError, SyntaxError, KeyError, zipfile.BadZipFile) as exc:
        if isinstance(exc, HwsimError):
            raise
        raise HwsimError(f"vectors {rel}: unreadable .npz ({type(exc).__name__})") from None
    return out


def load_layer_vectors(vec_dir: str | Path, layer: str, source: str = "npz") -> dict[str, Any]:
    """All arrays of one layer, shaped as recorded, plus ``op``, ``params`` and ``formats``.

    ``source="npz"`` reads ``vectors.npz``; ``source="hex"`` parses the ``.hex`` files
    (what the RTL reads with ``$readmemh``). Arrays are int64 (uint64 for unsigned 64-bit
    words). ``formats[name]`` holds ``bits``, ``signed``, ``axes``, ``shape`` and ``hex``
    (the file name relative to ``vec_dir``). Every path is confined to the set (§1) and
    every file's size or header is checked against the manifest before it is read (§5).
    """
    d = Path(vec_dir)
    if source not in ("npz", "hex"):
        raise HwsimError(f"load_layer_vectors source: expected 'npz' or 'hex', got {source!r}")
    entry = layer_entry(read_manifest(d), layer)
    out: dict[str, Any] = {
        "op": entry["op"],
        "params": entry.get("params", {}),
        "formats": entry["arrays"],
    }
    if source == "npz":
        out.update(_read_npz(d, entry))
    else:
        for name, fmt in entry["arrays"].items():
            out[name] = _read_hex(d, fmt)
    return out
