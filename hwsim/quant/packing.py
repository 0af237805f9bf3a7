"""Int4 packing (§5): two 4-bit two's-complement codes per byte, element 2i in the low nibble."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from hwsim.errors import HwsimError

__all__ = ["pack_int4", "unpack_int4"]


def pack_int4(q: npt.ArrayLike) -> np.ndarray:
    """Pack int4 codes (flattened, C order) into bytes.

    ``byte[i] = (q[2i] & 0xF) | ((q[2i+1] & 0xF) << 4)``; with an odd count the high nibble
    of the last byte is 0. Codes must lie in [-8, 7]. Returns uint8 of length ceil(n / 2).
    """
    a = np.asarray(q)
    if a.dtype.kind not in "iu":
        raise HwsimError(f"q must be an integer array, got dtype {a.dtype}")
    flat = a.reshape(-1).astype(np.int64)
    if flat.size and (flat.min() < -8 or flat.max() > 7):
        raise HwsimError("q must hold int4 codes in [-8, 7]")
    nib = (flat & 0xF).astype(np.uint8)
    if nib.size % 2:
        nib = np.concatenate([nib, np.zeros(1, dtype=np.uint8)])
    return (nib[0::2] | (nib[1::2] << 4)).astype(np.uint8)


def unpack_int4(packed: npt.ArrayLike, n: int) -> np.ndarray:
    """Inverse of :func:`pack_int4`: the first ``n`` int4 codes as a 1-D int8 array.

    ``packed`` must hold exactly ceil(n / 2) bytes.
    """
    b = np.asarray(packed)
    if b.dtype != np.uint8:
        raise HwsimError(f"packed must be a uint8 array, got dtype {b.dtype}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise HwsimError(f"n must be a non-negative int, got {n!r}")
    b = b.reshape(-1)
    if b.size != (n + 1) // 2:
        raise HwsimError(f"packed must hold ceil(n / 2) = {(n + 1) // 2} bytes, got {b.size}")
    nib = np.empty(2 * b.size, dtype=np.int16)
    nib[0::2] = b & 0xF
    nib[1::2] = b >> 4
    signed = np.where(nib >= 8, nib - 16, nib).astype(np.int8)
    return signed[:n]
