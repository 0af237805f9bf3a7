"""``$readmemh`` text encoding of integer arrays (specs/vectors.md §2).

One word per line, lower-case hexadecimal, exactly ``ceil(bits / 4)`` digits, no prefix,
no comments, a final newline. Signed values are written in ``bits``-bit two's complement.
Elements are written in row-major (C) order of the array's shape, whose axis names the
manifest records.
"""

from __future__ import annotations

import re

import numpy as np

from hwsim.errors import HwsimError

_HEX_WORD = re.compile(r"[0-9a-f]+")


def hex_digits(bits: int) -> int:
    """Digits per word: ceil(bits / 4)."""
    return (bits + 3) // 4


def _range(bits: int, signed: bool) -> tuple[int, int]:
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def check_width(bits: int) -> None:
    """Raise unless 1 <= bits <= 64."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 64:
        raise HwsimError(f"vector word width: expected an int in [1, 64] bits, got {bits!r}")


def encode_hex(values: np.ndarray, bits: int, signed: bool, name: str = "array") -> str:
    """The ``$readmemh`` text of ``values`` (any integer array; row-major order).

    Raises HwsimError naming ``name`` if a value does not fit ``bits`` (signed or not).
    """
    check_width(bits)
    a = np.asarray(values)
    if a.dtype.kind not in "iub":
        raise HwsimError(f"vector {name}: expected an integer array, got dtype {a.dtype}")
    flat = a.reshape(-1)
    lo, hi = _range(bits, signed)
    if flat.size:
        vmin, vmax = int(flat.min()), int(flat.max())
        if vmin < lo or vmax > hi:
            kind = "signed" if signed else "unsigned"
            raise HwsimError(
                f"vector {name}: values [{vmin}, {vmax}] do not fit {bits}-bit {kind} [{lo}, {hi}]"
            )
    mask = (1 << bits) - 1
    width = hex_digits(bits)
    if bits <= 63:
        words = (flat.astype(np.int64) & np.int64(mask)).tolist()
    else:
        words = [int(v) & mask for v in flat.tolist()]
    fmt = f"{{:0{width}x}}"
    return "".join(fmt.format(w) + "\n" for w in words)


def decode_hex(text: str, bits: int, signed: bool, name: str = "array") -> np.ndarray:
    """Inverse of :func:`encode_hex`: a flat int64 array (uint64 for unsigned 64-bit words).

    Raises HwsimError naming ``name`` and the line number (never its text, §1) for a
    malformed or too-wide word.
    """
    check_width(bits)
    width = hex_digits(bits)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out: list[int] = []
    half = 1 << (bits - 1)
    full = 1 << bits
    for i, line in enumerate(lines, start=1):
        if len(line) != width:
            raise HwsimError(f"vector {name} line {i}: expected {width} hex digits, got "
                             f"{len(line)} characters")
        if not _HEX_WORD.fullmatch(line):
            raise HwsimError(f"vector {name} line {i}: not {width} lower-case hexadecimal digits")
        w = int(line, 16)
        if w >= full:
            raise HwsimError(f"vector {name} line {i}: word {line} exceeds {bits} bits")
        out.append(w - full if signed and w >= half else w)
    dtype = np.uint64 if (bits == 64 and not signed) else np.int64
    return np.array(out, dtype=dtype)
