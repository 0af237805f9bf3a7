"""Fixed-width integers and the MAC accumulator (specs/arithmetic.md §7).

``wrap_to_bits`` and ``saturate_to_bits`` map exact integers into a ``bits``-wide two's
complement (or unsigned) range; ``accumulate`` is the accumulator of one MAC column:
initialised with the folded bias, products added in ascending ``k``, the overflow policy
applied after every single addition.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from hwsim.errors import ConfigError, HwsimError

#: Accumulator overflow policies of §7, in the order of :data:`hwsim.arith.jit.POLICY_CODES`.
OVERFLOW_POLICIES: tuple[str, ...] = ("wrap", "saturate", "error")

#: Widest accumulator (§7). Products and the bias are exact int64 values.
MAX_ACC_BITS = 32


class AccumulatorOverflowError(HwsimError):
    """An addition overflowed an accumulator whose policy is ``"error"`` (§7.3)."""


def int_range(bits: int, signed: bool = True) -> tuple[int, int]:
    """``(lo, hi)`` of a ``bits``-wide integer.

    Signed: ``[-2^(bits-1), 2^(bits-1) - 1]``; unsigned: ``[0, 2^bits - 1]``.
    """
    _check_bits(bits, 63 if signed else 62, "bits")
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def _check_bits(bits: int, max_bits: int, field: str) -> None:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
        raise ConfigError(f"{field}: expected an integer in [1, {max_bits}], got {bits!r}")
    if not 1 <= int(bits) <= max_bits:
        raise ConfigError(f"{field}: expected an integer in [1, {max_bits}], got {bits}")


def _as_int64(x: npt.ArrayLike, field: str) -> npt.NDArray[np.int64]:
    a = np.asarray(x)
    if a.dtype.kind not in "iu" and not (a.dtype == object and a.size == 0):
        raise HwsimError(f"{field}: expected integers, got dtype {a.dtype}")
    if a.dtype == np.uint64 and a.size and int(a.max()) > np.iinfo(np.int64).max:
        raise HwsimError(f"{field}: values above int64 are not supported")
    return a.astype(np.int64, copy=False)


def wrap_to_bits(x: npt.ArrayLike, bits: int, signed: bool = True) -> npt.NDArray[np.int64]:
    """Two's complement wrap of exact int64 ``x`` to ``bits`` bits (§7.3, §8.6).

    Signed: the unique ``v`` in ``[-2^(bits-1), 2^(bits-1))`` with ``v ≡ x (mod 2^bits)``;
    unsigned: ``x mod 2^bits`` in ``[0, 2^bits)``. ``bits`` in ``[1, 63]`` (unsigned ``[1, 62]``).
    """
    lo, _ = int_range(bits, signed)
    xa = _as_int64(x, "x")
    mask = np.int64((1 << bits) - 1)
    low = np.bitwise_and(xa, mask)  # x mod 2^bits, in [0, 2^bits)
    if not signed:
        return np.asarray(low, dtype=np.int64)
    half = np.int64(1 << (bits - 1))
    return np.asarray(np.where(low >= half, low + np.int64(2 * lo), low), dtype=np.int64)


def saturate_to_bits(x: npt.ArrayLike, bits: int, signed: bool = True) -> npt.NDArray[np.int64]:
    """Clamp exact int64 ``x`` into the ``bits``-wide range (see :func:`int_range`) (§7.3)."""
    lo, hi = int_range(bits, signed)
    xa = _as_int64(x, "x")
    return np.asarray(np.clip(xa, lo, hi), dtype=np.int64)


def check_policy(policy: str, field: str = "policy") -> str:
    """Return ``policy`` if it is one of :data:`OVERFLOW_POLICIES`, else raise ConfigError."""
    if policy not in OVERFLOW_POLICIES:
        raise ConfigError(
            f"{field}: unknown overflow policy {policy!r}; expected one of "
            f"{', '.join(OVERFLOW_POLICIES)}"
        )
    return policy


def accumulate(
    bias: npt.ArrayLike, products: npt.ArrayLike, bits: int, policy: str
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Accumulate ``products`` over their last axis into a signed ``bits``-wide register (§7).

    ``products`` has shape ``(..., K)`` and holds exact products (int64); ``bias`` broadcasts
    against ``products[..., 0]`` and is the folded bias, which must already lie in the signed
    ``bits`` range (else :class:`HwsimError` naming ``bias``). For ``k = 0, 1, ..., K-1`` in
    that order: ``s = acc + products[..., k]`` exactly; if ``s`` is outside the range that is
    one overflow event, and the policy decides the new ``acc``: ``"wrap"`` ->
    :func:`wrap_to_bits`, ``"saturate"`` -> :func:`saturate_to_bits` (order dependent),
    ``"error"`` -> raise :class:`AccumulatorOverflowError` naming the output index and ``k``.

    Returns ``(acc, overflow_events)``, both int64 arrays of the broadcast output shape;
    ``overflow_events`` counts the overflowing additions of each output element.
    ``bits`` in ``[1, 32]``; products must satisfy ``|product| < 2^62``.
    """
    _check_bits(bits, MAX_ACC_BITS, "bits")
    check_policy(policy)
    lo, hi = int_range(bits, True)
    p = _as_int64(products, "products")
    if p.ndim == 0:
        raise HwsimError("products: expected an array whose last axis is the reduction axis K")
    if p.size and int(np.abs(p).max()) >= 1 << 62:
        raise HwsimError("products: expected |product| < 2^62 (exact MAC products)")
    b = _as_int64(bias, "bias")
    out_shape = np.broadcast_shapes(b.shape, p.shape[:-1])
    acc = np.array(np.broadcast_to(b, out_shape), dtype=np.int64)
    if acc.size and (int(acc.min()) < lo or int(acc.max()) > hi):
        raise HwsimError(
            f"bias: the folded bias must fit the {bits}-bit accumulator [{lo}, {hi}], got range "
            f"[{int(acc.min())}, {int(acc.max())}]"
        )
    k_len = p.shape[-1]
    flat_p = np.broadcast_to(p, out_shape + (k_len,)).reshape(-1, k_len)
    flat_acc = acc.reshape(-1)
    events = np.zeros(flat_acc.shape, dtype=np.int64)
    risky = np.ones(flat_acc.shape, dtype=bool)
    max_abs = int(np.abs(flat_p).max()) if flat_p.size else 0
    if max_abs * k_len < 1 << 62:
        # Every partial sum lies between bias + Σ negative products and bias + Σ positive
        # products; where both bounds fit, no addition can overflow and the order is moot.
        total = flat_p.sum(axis=-1)
        positive = np.maximum(flat_p, 0).sum(axis=-1)
        risky = (flat_acc + positive > hi) | (flat_acc + (total - positive) < lo)
        flat_acc = np.where(risky, flat_acc, flat_acc + total)
    rows = np.flatnonzero(risky)
    if rows.size:
        seq_acc, seq_events = _sequential(
            flat_acc[rows], flat_p[rows], bits, policy, rows, out_shape
        )
        flat_acc[rows] = seq_acc
        events[rows] = seq_events
    return flat_acc.reshape(out_shape), events.reshape(out_shape)


def _sequential(
    acc: npt.NDArray[np.int64],
    p: npt.NDArray[np.int64],
    bits: int,
    policy: str,
    rows: npt.NDArray[np.intp],
    out_shape: tuple[int, ...],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The §7.3 definition, one addition at a time, vectorised over the rows of ``p``."""
    lo, hi = int_range(bits, True)
    events = np.zeros(acc.shape, dtype=np.int64)
    for k in range(p.shape[-1]):
        s = acc + p[:, k]
        over = (s < lo) | (s > hi)
        if over.any():
            if policy == "error":
                r = int(np.flatnonzero(over)[0])
                idx = tuple(int(i) for i in np.unravel_index(int(rows[r]), out_shape))
                raise AccumulatorOverflowError(
                    f"accumulator overflow at output index {idx}, k = {k}: "
                    f"{int(acc[r])} + {int(p[r, k])} = {int(s[r])} is outside the "
                    f"{bits}-bit range [{lo}, {hi}]"
                )
            events += over
            s = wrap_to_bits(s, bits) if policy == "wrap" else np.clip(s, lo, hi)
        acc = s
    return np.asarray(acc, dtype=np.int64), events
