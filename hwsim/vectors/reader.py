"""Reading a golden-vector set (specs/vectors.md §5): the API the RTL testbenches use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hwsim.errors import HwsimError
from hwsim.vectors.hexfmt import decode_hex
from hwsim.vectors.writer import FORMAT_NAME, MANIFEST

#: Keys of :func:`load_layer_vectors`'s result that are not arrays.
RESERVED_KEYS = ("op", "params", "formats")


def read_manifest(vec_dir: str | Path) -> dict[str, Any]:
    """The parsed manifest.json of a vector set.

    Raises HwsimError if the directory has no manifest (an incomplete or interrupted write)
    or the manifest is not a hwsim vector manifest.
    """
    d = Path(vec_dir)
    path = d / MANIFEST
    if not d.is_dir():
        raise HwsimError(f"vectors {d}: not a directory")
    if not path.is_file():
        raise HwsimError(f"vectors {d}: no {MANIFEST} (not a vector set, or an interrupted write)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HwsimError(f"vectors {path}: malformed JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise HwsimError(f"vectors {path}: not a {FORMAT_NAME} manifest")
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


def load_layer_vectors(vec_dir: str | Path, layer: str, source: str = "npz") -> dict[str, Any]:
    """All arrays of one layer, shaped as recorded, plus ``op``, ``params`` and ``formats``.

    ``source="npz"`` reads ``vectors.npz``; ``source="hex"`` parses the ``.hex`` files
    (what the RTL reads with ``$readmemh``). Arrays are int64 (uint64 for unsigned 64-bit
    words). ``formats[name]`` holds ``bits``, ``signed``, ``axes``, ``shape`` and ``hex``
    (the file name relative to ``vec_dir``).
    """
    d = Path(vec_dir)
    entry = layer_entry(read_manifest(d), layer)
    out: dict[str, Any] = {
        "op": entry["op"],
        "params": entry.get("params", {}),
        "formats": entry["arrays"],
    }
    if source == "npz":
        path = d / entry["npz"]
        if not path.is_file():
            raise HwsimError(f"vectors {d}: missing file {entry['npz']}")
        with np.load(path, allow_pickle=False) as npz:
            for name in entry["arrays"]:
                out[name] = np.array(npz[name])
    elif source == "hex":
        for name, fmt in entry["arrays"].items():
            path = d / fmt["hex"]
            if not path.is_file():
                raise HwsimError(f"vectors {d}: missing file {fmt['hex']}")
            flat = decode_hex(path.read_text(encoding="ascii"), fmt["bits"], fmt["signed"],
                              name=fmt["hex"])
            shape = tuple(fmt["shape"])
            if flat.size != int(np.prod(shape, dtype=np.int64)):
                raise HwsimError(
                    f"vectors {fmt['hex']}: {flat.size} words, expected {shape} = "
                    f"{int(np.prod(shape, dtype=np.int64))}"
                )
            out[name] = flat.reshape(shape)
    else:
        raise HwsimError(f"load_layer_vectors source: expected 'npz' or 'hex', got {source!r}")
    return out
