"""Reading user files defensively: TOML text and ``.npy`` arrays (issue 9).

Every failure is an :class:`hwsim.errors.HwsimError` naming the file and what was expected,
raised before a large allocation: :func:`read_text` refuses directories, oversized and
non-UTF-8 files; :func:`load_npy` reads the ``.npy`` header first (``np.lib.format``, no
data loaded) and refuses ``.npz`` archives, object (pickled), structured, complex, boolean,
string and date arrays, dtypes of the wrong kind, files shorter than their header declares
and sizes past the memory limit (:mod:`hwsim.limits`). Pickles are never loaded.
A missing file stays a ``FileNotFoundError`` (the CLI prints ``file not found: PATH``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from hwsim.errors import ConfigError, InputDataError
from hwsim.limits import check_memory

__all__ = ["MAX_TEXT_BYTES", "describe_dtype", "load_npy", "npy_header", "read_npy_header",
           "read_text"]

#: Largest configuration file read (TOML tables are a few kB).
MAX_TEXT_BYTES = 16 << 20

_ZIP_MAGIC = b"PK\x03\x04"

_KIND_NAMES = {"f": "real floating point", "i": "signed integer", "u": "unsigned integer",
               "c": "complex", "b": "bool", "U": "unicode string", "S": "byte string",
               "O": "Python object", "V": "structured / raw bytes", "M": "datetime",
               "m": "timedelta"}


def read_text(path: str | os.PathLike[str], what: str) -> str:
    """The UTF-8 text of a small configuration file ``path`` (``what`` names it in errors:
    e.g. ``"array config"``)."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{what} {p}: is a directory; expected a TOML file")
    size = p.stat().st_size  # FileNotFoundError for a missing file
    if size > MAX_TEXT_BYTES:
        raise ConfigError(f"{what} {p}: {size} bytes; expected a TOML file of at most "
                          f"{MAX_TEXT_BYTES} bytes")
    data = p.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {p}: not UTF-8 text (invalid byte at offset {exc.start}); "
                          "TOML files must be UTF-8") from None


def describe_dtype(dtype: np.dtype) -> str:
    """``float32``, ``complex64 (complex)``, ``<U1 (unicode string)``, ..."""
    kind = _KIND_NAMES.get(dtype.kind, dtype.kind)
    name = dtype.str if dtype.kind in "USV" else dtype.name
    return f"{name} ({kind})"


def read_npy_header(fh: BinaryIO) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from the ``.npy`` header at ``fh``'s position, leaving ``fh`` at the
    data; ValueError (or EOFError, SyntaxError) for a malformed or unsupported header."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    return tuple(int(d) for d in shape), np.dtype(dtype)


def npy_header(path: Path, what: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, offset of the data) from the header of a ``.npy`` file, without
    reading the data."""
    if path.is_dir():
        raise InputDataError(f"{what} {path}: is a directory; expected a .npy file")
    with open(path, "rb") as fh:
        head = fh.read(len(_ZIP_MAGIC))
        if head == _ZIP_MAGIC:
            raise InputDataError(f"{what} {path}: is a .npz (zip) archive; expected one array "
                                 "saved with numpy.save (.npy)")
        fh.seek(0)
        try:
            shape, dtype = read_npy_header(fh)
        except (ValueError, EOFError, OSError, SyntaxError, TypeError) as exc:
            msg = " ".join(str(exc).split())[:200]
            raise InputDataError(f"{what} {path}: not a .npy array file ({msg})") from None
        return tuple(int(d) for d in shape), np.dtype(dtype), fh.tell()


def load_npy(path: str | os.PathLike[str], what: str, kinds: str = "f",
             mmap: bool = False) -> np.ndarray:
    """Load the ``.npy`` array ``path`` whose dtype kind must be one of ``kinds`` (``"f"``
    real floats, ``"iu"`` integers); ``what`` (e.g. ``"--calib"``) names it in errors.
    ``mmap``: memory-map the file instead of reading it (a float32 file then stays on disk;
    another dtype is counted as the float32 copy it will be converted to)."""
    p = Path(path)
    shape, dtype, offset = npy_header(p, what)
    if dtype.hasobject:
        raise InputDataError(f"{what} {p}: holds Python objects (dtype object); hwsim never "
                             "unpickles input files: save a numeric array")
    if dtype.names is not None or dtype.subdtype is not None:
        raise InputDataError(f"{what} {p}: has a structured dtype {dtype}; expected a plain "
                             "numeric array")
    if dtype.kind not in kinds:
        want = " or ".join(_KIND_NAMES[k] for k in kinds)
        raise InputDataError(f"{what} {p}: dtype {describe_dtype(dtype)}; expected {want} "
                             "values")
    nbytes = math.prod(shape) * dtype.itemsize
    copy = 0 if mmap and dtype == np.float32 else math.prod(shape) * 4
    check_memory((0 if mmap else nbytes) + copy,
                 f"{what} {p} (shape {shape}, {dtype.name}, as float32)")
    have = p.stat().st_size - offset
    if have < nbytes:
        raise InputDataError(f"{what} {p}: truncated: its header declares shape {shape} of "
                             f"{dtype.name} ({nbytes} bytes) but the file holds {have}")
    try:
        return np.load(p, allow_pickle=False, mmap_mode="r" if mmap else None)
    except (ValueError, OSError, EOFError) as exc:
        msg = " ".join(str(exc).split())[:200]
        raise InputDataError(f"{what} {p}: not a readable .npy array ({msg})") from None


#: Inputs checked for NaN / Inf at a time (bounded memory on memory-mapped files).
_CHUNK = 4096


def _first_non_finite(x: np.ndarray) -> int | None:
    for i in range(0, x.shape[0], _CHUNK):
        with np.errstate(over="ignore", invalid="ignore"):
            bad = ~np.isfinite(np.asarray(x[i:i + _CHUNK], dtype=np.float32))
        if bad.any():
            return i + int(np.argmax(bad.reshape(bad.shape[0], -1).any(axis=1)))
    return None


def check_inputs(x: np.ndarray, shape: tuple[int, ...], what: str) -> None:
    """``x`` holds N >= 1 inputs of the model input ``shape`` (batch dimension first, as
    declared; its batch size is free) whose float32 values are finite. ``what`` names the
    source (e.g. ``"--calib data/x.npy"``)."""
    want = tuple(int(d) for d in shape[1:])
    if x.ndim != len(shape) or tuple(x.shape[1:]) != want:
        raise InputDataError(f"{what}: shape {tuple(x.shape)}; expected (N, "
                             f"{', '.join(map(str, want))}) = N inputs of the model's input "
                             f"shape {want}")
    if x.shape[0] < 1:
        raise InputDataError(f"{what}: holds no inputs; expected at least one")
    bad = _first_non_finite(x)
    if bad is not None:
        raise InputDataError(f"{what}: input {bad} has NaN or Inf values (as float32); "
                             "expected finite values")


def check_labels(labels: np.ndarray, n: int, classes: int, what: str) -> None:
    """``labels`` is a 1-D integer array of ``n`` class indices in ``[0, classes)``."""
    if labels.dtype.kind not in "iu":
        raise InputDataError(f"{what}: dtype {describe_dtype(labels.dtype)}; expected "
                             "integer class indices")
    if labels.shape != (n,):
        raise InputDataError(f"{what}: shape {labels.shape}; expected ({n},), one integer "
                             "label per input")
    if n:
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= classes:
            bad = lo if lo < 0 else hi
            raise InputDataError(f"{what}: label {bad} is out of range; expected class "
                                 f"indices in [0, {classes}) (the model's output size)")


def check_model_data(graph: Any, calib: np.ndarray | None, inputs: np.ndarray | None,
                     labels: np.ndarray | None, calib_src: str, inputs_src: str,
                     labels_src: str) -> None:
    """Calibration set and evaluation inputs fit the graph's single input (shape, N >= 1,
    finite), labels are one in-range class index per evaluation input. ``*_src`` name the
    sources in errors (e.g. ``"--calib x.npy"``)."""
    (name,) = graph.inputs[:1] or ("",)
    shape = graph.tensors[name].shape
    checked: list[int] = []
    for x, src in ((calib, calib_src), (inputs, inputs_src)):
        if x is not None and id(x) not in checked:
            check_inputs(x, shape, src)
            checked.append(id(x))
    if labels is not None and inputs is not None:
        out = graph.tensors[graph.outputs[0]].shape
        check_labels(np.asarray(labels), int(inputs.shape[0]), math.prod(out[1:]), labels_src)
