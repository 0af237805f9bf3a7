"""Rounding modes and the exact rounding right shift (specs/arithmetic.md §6).

Every function here takes exact integers (int64) and returns exact integers; no floating
point is involved, so numpy, Numba and RTL can implement the same text bit for bit.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from hwsim.errors import ConfigError

#: The rounding modes of §6, in the order of :data:`hwsim.arith.jit.ROUNDING_CODES`.
ROUNDING_MODES: tuple[str, ...] = ("half_up", "half_away", "half_even", "floor", "toward_zero")

#: Largest supported right shift (§6): ``x`` is int64, so ``2^shift`` must fit in int64.
MAX_SHIFT = 62


def check_rounding(rounding: str, field: str = "rounding") -> str:
    """Return ``rounding`` if it is one of :data:`ROUNDING_MODES`, else raise ConfigError."""
    if rounding not in ROUNDING_MODES:
        raise ConfigError(
            f"{field}: unknown rounding mode {rounding!r}; expected one of "
            f"{', '.join(ROUNDING_MODES)}"
        )
    return rounding


def rounding_shift_right(
    x: npt.ArrayLike, shift: npt.ArrayLike, rounding: str
) -> npt.NDArray[np.int64]:
    """Exact ``x / 2**shift`` rounded to an integer with ``rounding`` (§6).

    ``x`` is any int64 value (array or scalar), ``shift`` an integer in ``[0, 62]``
    (broadcast against ``x``). With ``q = x >> shift`` (floor) and
    ``r = x - q * 2**shift`` (``0 <= r < 2**shift``) the result is ``q + inc`` where, writing
    ``h = 2**(shift-1)``:

    - ``half_up``: inc = ``r >= h``  (= ``floor(x / 2**shift + 1/2)``)
    - ``half_away``: inc = ``r > h or (r == h and x >= 0)``
    - ``half_even``: inc = ``r > h or (r == h and q odd)``
    - ``floor``: inc = 0
    - ``toward_zero``: inc = ``r != 0 and x < 0``

    For ``shift == 0`` the result is ``x``. Never overflows: the result lies between
    ``floor`` and ``floor + 1`` of an int64 divided by at least 2, or is ``x`` itself.
    Raises :class:`ConfigError` for an unknown mode or a shift outside ``[0, 62]``.
    """
    check_rounding(rounding)
    xa = np.asarray(x)
    if xa.dtype.kind not in "iu":
        raise ConfigError(f"x: expected an integer array, got dtype {xa.dtype}")
    xa = xa.astype(np.int64, copy=False)
    sa = np.asarray(shift)
    if sa.dtype.kind not in "iu":
        raise ConfigError(f"shift: expected integers in [0, {MAX_SHIFT}], got dtype {sa.dtype}")
    sa = sa.astype(np.int64, copy=False)
    if sa.size and (int(sa.min()) < 0 or int(sa.max()) > MAX_SHIFT):
        raise ConfigError(
            f"shift: expected integers in [0, {MAX_SHIFT}], got range "
            f"[{int(sa.min())}, {int(sa.max())}]"
        )
    q = np.right_shift(xa, sa)
    if rounding == "floor":
        return np.asarray(q, dtype=np.int64)
    one = np.int64(1)
    mask = np.left_shift(one, sa) - one
    r = np.bitwise_and(xa, mask)  # x mod 2^shift, in [0, 2^shift)
    if rounding == "toward_zero":
        inc = (r != 0) & (xa < 0)
    else:
        # Compare 2r with 2^shift instead of r with 2^(shift-1): exact for shift 0 too
        # (r == 0 then), and 2r < 2^63 never overflows.
        two_r = np.left_shift(r, one)
        full = np.left_shift(one, sa)
        above = two_r > full
        tie = two_r == full
        if rounding == "half_up":
            inc = above | tie
        elif rounding == "half_away":
            inc = above | (tie & (xa >= 0))
        else:  # half_even
            inc = above | (tie & (np.bitwise_and(q, one) == one))
    return np.asarray(q + inc.astype(np.int64), dtype=np.int64)


def rounding_shift_right_bounded(
    x: npt.NDArray[np.int64], shift: npt.NDArray[np.int64], rounding: str
) -> npt.NDArray[np.int64]:
    """:func:`rounding_shift_right` for ``|x| < 2^62`` in at most five array passes, IN PLACE
    on ``x`` (a writable int64 array, returned); ``shift`` broadcasts (e.g. per channel).

    With ``h = 2^(n−1)`` (0 for ``n = 0``) and ``mask = 2^n − 1``, §6's modes are
    ``half_up`` ``(x + h) >> n``; ``half_away`` ``(x + h − [x < 0 and n > 0]) >> n``
    (negative ties go down); ``half_even`` ``(x + h) >> n`` minus 1 on a tie
    (``x & mask = h``, ``n > 0``) whose result is odd; ``floor`` ``x >> n``;
    ``toward_zero`` ``(x + [x < 0]·mask) >> n``. ``|x| < 2^62`` keeps every intermediate
    inside int64 (the requantizer's ``acc·m`` with ``|acc| ≤ 2^31``, ``m < 2^31``). The
    arguments are not validated: callers pass checked shifts in ``[0, 62]``."""
    check_rounding(rounding)
    n = np.asarray(shift, dtype=np.int64)
    if rounding == "floor":
        return np.right_shift(x, n, out=x)
    one = np.int64(1)
    h = np.right_shift(np.left_shift(one, n), one)
    if rounding == "half_up":
        x += h
    elif rounding == "half_away":
        neg = x < 0
        x += h
        x -= neg & (n > 0)
    elif rounding == "toward_zero":
        x += (x < 0) * (np.left_shift(one, n) - one)
    else:  # half_even
        tie = (np.bitwise_and(x, np.left_shift(one, n) - one) == h) & (n > 0)
        x += h
        np.right_shift(x, n, out=x)
        x -= tie & (np.bitwise_and(x, one) == one)
        return x
    return np.right_shift(x, n, out=x)
