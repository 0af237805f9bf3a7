"""Resource limits checked before allocating: the memory budget of one ``hwsim`` run.

Sizes that a user controls (declared tensor shapes of a model, the header of an input
``.npy`` file, the PE count of a stepped array, the number of points of a sweep) are turned
into an estimate in bytes *before* anything is allocated and compared with the limit; past
it, :func:`check_memory` raises a :class:`hwsim.errors.ResourceError` that names the
culprit and says how to raise the limit (``hwsim --max-memory SIZE``), never a
``MemoryError`` half-way through a run.

The limit is :func:`default_max_memory` (half of the physical memory) unless set with
:func:`set_max_memory` or, scoped, :func:`memory_limit` (what the CLI does for
``--max-memory``).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from hwsim.errors import HwsimError, ResourceError

__all__ = [
    "BYTES_PER_ELEMENT", "check_memory", "default_max_memory", "format_size", "max_memory",
    "memory_limit", "parse_size", "set_max_memory", "tensor_bytes",
]

#: Bytes per tensor element and sample that one run keeps alive, summed over the executors
#: (float32 reference, float64 fake-quant, int64 golden codes and their dequantized
#: copies): an estimate used by the guards, not an exact count.
BYTES_PER_ELEMENT = 32

#: Fraction of the physical memory a run may use by default.
DEFAULT_FRACTION = 0.5

_limit: int | None = None


def physical_memory() -> int:
    """Bytes of physical memory (8 GiB if the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 << 30


def default_max_memory() -> int:
    """Half of the physical memory."""
    return int(physical_memory() * DEFAULT_FRACTION)


def max_memory() -> int:
    """The current limit in bytes."""
    return default_max_memory() if _limit is None else _limit


def set_max_memory(nbytes: int | None) -> None:
    """Set the limit (``None``: back to the default)."""
    global _limit
    if nbytes is not None and (isinstance(nbytes, bool) or not isinstance(nbytes, int)
                               or nbytes < 1):
        raise HwsimError(f"max memory: expected a positive number of bytes, got {nbytes!r}")
    _limit = nbytes


@contextmanager
def memory_limit(nbytes: int | None) -> Iterator[None]:
    """Use ``nbytes`` (``None``: the default) as the limit inside the ``with`` block."""
    global _limit
    old = _limit
    set_max_memory(nbytes)
    try:
        yield
    finally:
        _limit = old


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1000, "kib": 1 << 10, "m": 1 << 20,
          "mb": 1000 ** 2, "mib": 1 << 20, "g": 1 << 30, "gb": 1000 ** 3, "gib": 1 << 30,
          "t": 1 << 40, "tb": 1000 ** 4, "tib": 1 << 40}


def parse_size(text: str) -> int:
    """``"512M"``, ``"4G"``, ``"1.5GiB"``, ``"2000000"`` (bytes) → bytes (> 0).
    K/M/G/T and KiB/MiB/GiB/TiB are powers of 1024, kB/MB/GB/TB powers of 1000."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _UNITS:
        raise HwsimError(f"expected a size such as 512M, 4G or 1.5GiB, got {text!r}")
    value = float(m.group(1)) * _UNITS[unit]
    if not math.isfinite(value) or value < 1:
        raise HwsimError(f"expected a size of at least 1 byte, got {text!r}")
    return int(value)


def format_size(nbytes: float) -> str:
    """Human size with a binary unit, e.g. ``119.2 GiB``."""
    n = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def tensor_bytes(shapes: Iterable[Iterable[int]], bytes_per_element: int) -> int:
    """Total bytes of tensors of these shapes (exact Python integers, no overflow)."""
    return sum(math.prod(int(d) for d in s) for s in shapes) * bytes_per_element


def check_memory(nbytes: int, what: str) -> None:
    """Raise ResourceError if ``nbytes`` (an estimate of what ``what`` needs) exceeds the
    limit; the message names ``what`` and says how to raise the limit."""
    limit = max_memory()
    if nbytes > limit:
        suggest = format_size(nbytes * 1.25).replace(" ", "").replace(".0", "")
        raise ResourceError(
            f"{what} needs about {format_size(nbytes)}, more than the memory limit of "
            f"{format_size(limit)}; raise it with hwsim --max-memory SIZE (e.g. "
            f"--max-memory {suggest.removesuffix('iB')}) or use smaller inputs")
