"""§7 accumulators of GEMMs and convolutions at BLAS speed (specs/arithmetic.md §7.4).

Two steps, both exact:

1. **Exact sums.** ``bias + Σ_k a·w`` by :func:`hwsim.exact.matmul.blocked_matmul`
   (float BLAS on K-blocks whose partial sums stay exactly representable). With the
   ``wrap`` policy this is already the answer modulo 2^bits (§7.3: wrap is order free).
2. **Outputs that could overflow.** An output whose bound
   ``|bias| + Σ_k |a_k|·|w_k|`` is at most ``2^(bits−1) − 1`` has every partial sum of the
   §7 order inside the register, so it has no overflow event under any policy and equals
   the exact sum. Only the other outputs — found with the cheap bound
   ``|bias| + min(‖a‖₁·max|w|, max|a|·‖w‖₁)`` and then, if any, the exact bound (an exact
   product of ``|a|`` and ``|w|``) — are recomputed step by step in the §7 order by the
   Numba kernel :func:`hwsim.sim.kernels.sequential_accumulate`, which also counts their
   overflow events and finds the first one. Products are never materialised.

:func:`gemm_acc` and :func:`conv2d_acc` return the exact accumulators, the total event
count and the outputs that overflowed (:class:`OverflowOutputs`);
:func:`exact_gemm_acc` is the cycle model's fast-mode form (first overflow as ``(m, n, k)``).
Memory: patches are built for chunks of images of at most :data:`PATCH_BYTES` bytes, and
the step-by-step path copies its rows in chunks of at most :data:`SEQ_ELEMENTS` values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hwsim.arith.jit import POLICY_CODES
from hwsim.errors import HwsimError
from hwsim.exact import igemm
from hwsim.exact.im2col import check_conv_groups, conv_columns, conv_out_size
from hwsim.exact.matmul import (
    F64_EXACT,
    PARALLEL_MIN_MACS,
    blocked_matmul,
    exact_matmul,
    max_abs,
    parallel_map,
    plan_product,
    threads,
)

__all__ = ["PATCH_BYTES", "SEQ_ELEMENTS", "OverflowOutputs", "SequentialOutputs",
           "overflow_candidates", "sequential_outputs", "int_path", "int_weights",
           "gemm_acc", "conv2d_acc",
           "exact_gemm_acc"]

#: Largest im2col buffer built at once (images are processed in chunks below it).
PATCH_BYTES = 1 << 27
#: Largest int64 operand copy of the step-by-step path (rows are processed in chunks).
SEQ_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class SequentialOutputs:
    """Outputs ``(ms[i], ns[i])`` of ``bias + a @ w`` evaluated step by step (§7.3):
    their accumulators, overflow event counts and the (m, n, k) row-major linear index of
    the first overflowing addition among them (-1: none)."""

    ms: npt.NDArray[np.int64]
    ns: npt.NDArray[np.int64]
    values: npt.NDArray[np.int64]
    events: npt.NDArray[np.int64]
    first: int


@dataclass(frozen=True)
class OverflowOutputs:
    """The outputs of a conv (``index`` rows = (image, channel, oh, ow)) or gemm
    (``index`` rows = (row, feature)) with at least one overflow event, and their counts.
    Per group (one entry for a gemm): ``group_events``, the group's event count, and
    ``group_first``, the first overflowing addition as the (m, n, k) row-major linear index
    in the group's GEMM (m = (image, oh, ow), n = channel within the group; -1: none)."""

    index: npt.NDArray[np.int64]
    events: npt.NDArray[np.int64]
    group_events: npt.NDArray[np.int64]
    group_first: npt.NDArray[np.int64]


def _bias_check(bias: npt.NDArray[np.int64], bits: int) -> None:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if bias.size and (int(bias.min()) < lo or int(bias.max()) > hi):
        raise HwsimError(
            f"bias: the folded bias must fit the {bits}-bit accumulator [{lo}, {hi}], got "
            f"range [{int(bias.min())}, {int(bias.max())}]"
        )


def overflow_candidates(a: npt.NDArray, w: npt.NDArray, bias: npt.NDArray[np.int64],
                        bits: int, amax: int | None = None, wmax: int | None = None
                        ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``(ms, ns)``, row-major sorted, of the outputs of ``bias + a @ w`` (``a[M, K]``,
    ``w[K, N]``, integer values in any numeric dtype) whose bound
    ``|bias[n]| + Σ_k |a[m, k]|·|w[k, n]|`` exceeds ``2^(bits−1) − 1`` (§7.4): the only ones
    that can overflow at any step of the §7 order. ``amax`` / ``wmax``: known bounds on
    ``|a|`` / ``|w|`` (computed when not given)."""
    hi = (1 << (bits - 1)) - 1
    m, k = a.shape
    n = w.shape[1]
    empty = np.zeros(0, dtype=np.int64)
    if m == 0 or n == 0 or k == 0:
        return empty, empty
    babs = np.abs(bias.astype(np.int64))
    amax = max_abs(a) if amax is None else amax
    wmax = max_abs(w) if wmax is None else wmax
    if int(babs.max()) + k * amax * wmax <= hi:
        return empty, empty
    a_abs = np.abs(a)
    w_abs = np.abs(w)
    # float64 is exact here: every term is an integer below K·2^34 < 2^53 for ≤ 18-bit codes.
    a_l1 = a_abs.sum(axis=1, dtype=np.float64)
    a_mx = a_abs.max(axis=1).astype(np.float64)
    w_l1 = w_abs.sum(axis=0, dtype=np.float64)
    w_mx = w_abs.max(axis=0).astype(np.float64)
    rows = np.flatnonzero(babs.max() + np.minimum(a_l1 * w_mx.max(), a_mx * w_l1.max()) > hi)
    if rows.size == 0:
        return empty, empty
    cheap = babs[None, :] + np.minimum(a_l1[rows, None] * w_mx[None, :],
                                       a_mx[rows, None] * w_l1[None, :])
    risky = cheap > hi
    sub = np.flatnonzero(risky.any(axis=1))
    if sub.size == 0:
        return empty, empty
    # The exact bound Σ|a||w| (an exact product itself) for the rows the cheap one flags.
    exact = babs[None, :] + exact_matmul(np.asarray(a_abs[rows[sub]]), np.asarray(w_abs))
    risky[sub] &= exact > hi
    r, c = np.nonzero(risky)
    return rows[r].astype(np.int64), c.astype(np.int64)


def sequential_outputs(a: npt.NDArray, w: npt.NDArray, bias: npt.NDArray[np.int64],
                       ms: npt.NDArray[np.int64], ns: npt.NDArray[np.int64], bits: int,
                       policy: str) -> SequentialOutputs:
    """§7.3 step by step for the outputs ``(ms, ns)`` (row-major sorted) of
    ``bias + a @ w``, through :func:`hwsim.sim.kernels.sequential_accumulate` on int64 copies
    of the rows involved (at most :data:`SEQ_ELEMENTS` values at a time)."""
    # Imported here: hwsim.sim's package imports the golden model, which imports this module.
    from hwsim.sim.kernels import sequential_accumulate

    k = a.shape[1]
    n = w.shape[1]
    values = np.empty(ms.size, dtype=np.int64)
    events = np.empty(ms.size, dtype=np.int64)
    first = -1
    if ms.size == 0:
        return SequentialOutputs(ms, ns, values, events, first)
    w64 = np.ascontiguousarray(w, dtype=np.int64)
    b64 = np.ascontiguousarray(bias, dtype=np.int64)
    rows, local = np.unique(ms, return_inverse=True)
    per = max(1, SEQ_ELEMENTS // max(k, 1))
    # Output i belongs to row chunk local[i] // per; outputs are sorted by row.
    starts = np.searchsorted(local, np.arange(0, rows.size + per, per))
    code = POLICY_CODES[policy]
    for c in range(len(starts) - 1):
        i0, i1 = int(starts[c]), int(starts[c + 1])
        if i0 == i1:
            continue
        r0 = c * per
        a64 = np.ascontiguousarray(a[rows[r0:r0 + per]], dtype=np.int64)
        f = sequential_accumulate(a64, w64, b64, (local[i0:i1] - r0).astype(np.int64),
                                  ns[i0:i1].astype(np.int64), bits, code,
                                  values[i0:i1], events[i0:i1])
        if f >= 0:
            lm, rest = divmod(int(f), n * k)
            lin = (int(rows[r0 + lm]) * n * k) + rest
            first = lin if first < 0 else min(first, lin)
    return SequentialOutputs(ms, ns, values, events, first)


def _resolve(a: npt.NDArray, w: npt.NDArray, bias: npt.NDArray[np.int64], bits: int,
             policy: str, amax: int, wmax: int) -> SequentialOutputs:
    ms, ns = overflow_candidates(a, w, bias, bits, amax, wmax)
    return sequential_outputs(a, w, bias, ms, ns, bits, policy)


def int_path(amax: int, wmax: int, k: int, bias: npt.NDArray[np.int64], bits: int) -> bool:
    """§7.5: the 16-bit integer kernels give every accumulator exactly, with no overflow
    event possible, when they run on this machine, both operands are int16
    (``max|a|``, ``max|w|`` ≤ 2^15 − 1) and the bound ``max|bias| + K·max|a|·max|w|`` of
    every partial sum fits the signed ``bits``-bit register (``bits`` ≤ 32)."""
    if not igemm.available() or bits > 32:
        return False
    if not (igemm.fits(-amax, amax) and igemm.fits(-wmax, wmax)):
        return False
    bmax = int(np.abs(bias).max()) if bias.size else 0
    return bmax + int(k) * int(amax) * int(wmax) <= (1 << (bits - 1)) - 1


def int_weights(w: npt.NDArray[np.integer], kind: str, amax: int, k: int,
                bias: npt.NDArray[np.int64], bits: int) -> igemm.PackedWeights | None:
    """The packed (cached) weights ``w`` (:func:`hwsim.exact.igemm.cached_weights`
    ``kind``) when the 16-bit integer kernels compute this product exactly
    (:func:`int_path` with the weights' own max|w|), else None: the §7.4 path runs."""
    if not igemm.available():
        return None
    packed = igemm.cached_weights(w, kind)
    if packed is None or not int_path(amax, packed.wmax, k, bias, bits):
        return None
    return packed


def _no_overflow(groups: int) -> OverflowOutputs:
    return OverflowOutputs(np.zeros((0, 4), dtype=np.int64), np.zeros(0, dtype=np.int64),
                           np.zeros(groups, dtype=np.int64), np.full(groups, -1, dtype=np.int64))


def _add_bias(sums: npt.NDArray, bias: npt.NDArray[np.int64], out: npt.NDArray[np.int64],
              fused: bool) -> None:
    """``out = sums + bias`` exactly (``sums`` exact integers, any numeric dtype)."""
    if fused:
        np.add(sums, bias, out=out, casting="unsafe")
    else:
        out[...] = sums
        out += bias


def gemm_acc(x: npt.NDArray[np.integer], w: npt.NDArray[np.integer],
             bias: npt.NDArray[np.integer], *, acc_bits: int, policy: str
             ) -> tuple[npt.NDArray[np.int64], int, OverflowOutputs]:
    """§7 accumulators of ``y = x·wᵀ``: ``acc[b, m] = bias[m] + Σ_k w[m, k]·x[b, k]``.

    ``x[B, K]``, ``w[M, K]`` integer codes, ``bias[M]`` (folded, must fit ``acc_bits``:
    checked by the caller). Returns the int64 accumulators (exact sums under ``error``),
    the number of overflow events and the outputs that had events."""
    x = np.asarray(x)
    w = np.asarray(w)
    b64 = np.asarray(bias, dtype=np.int64)
    amax = max_abs(x)
    packed = int_weights(w, "rows", amax, x.shape[1], b64, acc_bits) if x.ndim == 2 else None
    if packed is not None:
        acc = igemm.matmul_acc(x, packed, b64)
        return acc, 0, OverflowOutputs(np.zeros((0, 2), dtype=np.int64),
                                       np.zeros(0, dtype=np.int64), np.array([0]),
                                       np.array([-1]))
    wmax = max_abs(w)
    plan = plan_product(amax, wmax, x.shape[1])
    xf = x.astype(plan.dtype, copy=False)
    wt = w.T.astype(plan.dtype)
    acc = blocked_matmul(xf, wt, plan).astype(np.int64)
    acc += b64
    seq = _resolve(xf, wt, b64, acc_bits, policy, amax, wmax)
    acc[seq.ms, seq.ns] = seq.values
    hit = seq.events > 0
    index = np.stack([seq.ms[hit], seq.ns[hit]], axis=1)
    total = int(seq.events.sum())
    return acc, total, OverflowOutputs(index, seq.events[hit], np.array([total]),
                                       np.array([seq.first]))


def conv2d_acc(x: npt.NDArray[np.integer], w: npt.NDArray[np.integer],
               bias: npt.NDArray[np.integer], *, x_zero_point: int,
               strides: tuple[int, int], pads: tuple[int, int, int, int],
               dilations: tuple[int, int], group: int, acc_bits: int, policy: str,
               layout: str = "nchw", amax: int | None = None, wmax: int | None = None,
               narrow: bool = False) -> tuple[npt.NDArray[np.integer], int, OverflowOutputs]:
    """§7 accumulators of a 2-D convolution, ``acc[n, m, oh, ow] = bias[m] + Σ_k w·x`` with
    ``k = (ci, kh, kw)`` within the group and padding = ``x_zero_point`` (§7.2, §7.3).

    One (batched over groups) exact product of the weights ``[G, M/G, K]`` with the patches
    ``[G, K, N·OH·OW]`` (:func:`hwsim.exact.im2col.conv_columns`) per chunk of images, then
    the step-by-step path for the outputs that could overflow. Returns the int64
    accumulators ``[N, M, OH, OW]``, the number of overflow events and the outputs that had
    events (``index`` rows (n, m, oh, ow)). ``layout="rows"`` returns the accumulators as
    the lowered GEMM's ``[N·OH·OW, M]`` (rows (n, oh, ow), cycle_model.md §C1) instead of
    NCHW, computed in that orientation (no transposition of the result). ``amax`` /
    ``wmax``: max |x| (padding value included) / max |w| when the caller knows them.
    ``narrow``: where the 16-bit kernels compute the layer (§7.5: its accumulators are
    int32 registers, every value in range), return them as int32, half the memory traffic
    of int64 (same values)."""
    x = np.asarray(x)
    w = np.asarray(w)
    b64 = np.asarray(bias, dtype=np.int64)
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    check_conv_groups(x.shape, w.shape, group)
    mg, kg = m // group, cg * kh * kw
    oh = conv_out_size(h, kh, strides[0], pads[0], pads[2], dilations[0])
    ow = conv_out_size(wd, kw, strides[1], pads[1], pads[3], dilations[1])
    p = oh * ow
    amax = max(max_abs(x), abs(int(x_zero_point))) if amax is None else int(amax)
    rows_layout = layout == "rows"
    packed = int_weights(w, "conv", amax, kg, b64, acc_bits) if group == 1 else None
    if packed is not None:
        acc = np.empty((n * p, m) if rows_layout else (n, m, oh, ow),
                       dtype=np.int32 if narrow else np.int64)
        igemm.conv_acc(x, packed, b64, kernel=(kh, kw), strides=strides,
                       pads=pads, dilations=dilations, offset=0, pad_value=int(x_zero_point),
                       out=acc, out_strides=(p * m, 1, m) if rows_layout else (m * p, p, 1),
                       oh=oh, ow=ow)
        return acc, 0, _no_overflow(group)
    wmax = max_abs(w) if wmax is None else int(wmax)
    plan = plan_product(amax, wmax, kg)
    wf = w.reshape(group, mg, kg).astype(plan.dtype)
    # bias + exact sum in one float64 pass when both stay below 2^53 (exact), else int64
    fused = kg * amax * wmax + (int(np.abs(b64).max()) if b64.size else 0) <= F64_EXACT
    acc = np.empty((n * p, m) if rows_layout else (n, m, p), dtype=np.int64)
    itemsize = np.dtype(plan.dtype).itemsize
    chunk = max(1, PATCH_BYTES // max(1, c * kh * kw * p * itemsize))
    # At least one chunk of images per thread: chunks run in parallel (parallel_map).
    chunk = min(chunk, -(-n // threads())) if n else 1

    def run_chunk(b0: int) -> list[tuple[int, SequentialOutputs]]:
        xb = x[b0:b0 + chunk]
        nb = xb.shape[0]
        cols, _, _ = conv_columns(xb, (kh, kw), strides, pads, dilations, x_zero_point,
                                  plan.dtype)
        cols = cols.reshape(group, kg, nb * p)
        if rows_layout:
            # [G, nb·P, M/G], position major: the GEMM's own orientation
            sums = blocked_matmul(cols.transpose(0, 2, 1), wf.transpose(0, 2, 1), plan)
            out = acc[b0 * p:(b0 + nb) * p]
            _add_bias(sums.transpose(1, 0, 2), b64.reshape(group, mg),
                      out.reshape(nb * p, group, mg), fused)
        else:
            sums = blocked_matmul(wf, cols, plan)  # [G, M/G, nb·P], channel major
            out = acc[b0:b0 + nb]
            _add_bias(sums.reshape(m, nb, p).transpose(1, 0, 2), b64[None, :, None], out, fused)
        found = []
        for g in range(group):
            seq = _resolve(cols[g].T, wf[g].T, b64[g * mg:(g + 1) * mg], acc_bits, policy,
                           amax, wmax)
            if seq.ms.size == 0:
                continue
            chan = seq.ns + g * mg
            if rows_layout:
                out[seq.ms, chan] = seq.values
            else:
                img, pos = np.divmod(seq.ms, p)
                out[img, chan, pos] = seq.values
            found.append((g, seq))
        return found

    total = 0
    group_events = np.zeros(group, dtype=np.int64)
    group_first = np.full(group, -1, dtype=np.int64)
    hits: list[npt.NDArray[np.int64]] = []
    hit_events: list[npt.NDArray[np.int64]] = []
    starts = list(range(0, n, chunk))
    for b0, found in zip(starts, parallel_map(run_chunk, starts), strict=True):
        for g, seq in found:
            img, pos = np.divmod(seq.ms, p)
            chan = seq.ns + g * mg
            total += int(seq.events.sum())
            group_events[g] += int(seq.events.sum())
            if seq.first >= 0 and group_first[g] < 0:  # chunks come in increasing m
                group_first[g] = seq.first + b0 * p * mg * kg
            hit = seq.events > 0
            hits.append(np.stack([img[hit] + b0, chan[hit], pos[hit] // ow, pos[hit] % ow],
                                 axis=1))
            hit_events.append(seq.events[hit])
    index = np.concatenate(hits) if hits else np.zeros((0, 4), dtype=np.int64)
    counts = np.concatenate(hit_events) if hit_events else np.zeros(0, dtype=np.int64)
    return (acc if rows_layout else acc.reshape(n, m, oh, ow), total,
            OverflowOutputs(index, counts, group_events, group_first))


def exact_gemm_acc(a: npt.NDArray[np.integer], w: npt.NDArray[np.integer],
                   bias: npt.NDArray[np.integer], acc_bits: int, policy: str, *,
                   amax: int | None = None, wmax: int | None = None, narrow: bool = False
                   ) -> tuple[npt.NDArray[np.integer], int, tuple[int, int, int] | None]:
    """§7 accumulators of ``bias + a @ w`` (``a[M, K]``, ``w[K, N]``) in a signed
    ``acc_bits`` register, for the cycle model's fast mode.

    Returns ``(acc int64 [M, N], overflow_events, first_overflow)``; ``first_overflow`` is
    the ``(m, n, k)`` of the first overflowing addition in (m, n, k) row-major order, or
    None. Under policy ``"error"`` the returned ``acc`` holds exact sums (the caller
    raises). The bias must already fit ``acc_bits`` (checked by the caller). ``amax`` /
    ``wmax``: max |a| / |w| when the caller knows them (else computed). ``narrow``: int32
    accumulators where the §7.5 kernels compute them (same values)."""
    a = np.asarray(a)
    w = np.asarray(w)
    b64 = np.asarray(bias, dtype=np.int64)
    m, k = a.shape
    n = w.shape[1]
    amax = max_abs(a) if amax is None else int(amax)
    packed = int_weights(w, "cols", amax, k, b64, acc_bits)
    if packed is not None:
        out = np.empty((m, n), dtype=np.int32) if narrow else None
        return igemm.matmul_acc(a, packed, b64, out=out), 0, None
    wmax = max_abs(w) if wmax is None else int(wmax)
    plan = plan_product(amax, wmax, k)
    wf = w.astype(plan.dtype, copy=False)
    acc = np.empty((m, n), dtype=np.int64)
    fused = k * amax * wmax + (int(np.abs(b64).max()) if b64.size else 0) <= F64_EXACT
    # Row chunks, one per thread (one fork-join for cast, product, bias and overflow).
    step = max(1, -(-m // threads())) if m * k * n >= PARALLEL_MIN_MACS else max(m, 1)

    def run(m0: int) -> tuple[int, int]:
        af = a[m0:m0 + step].astype(plan.dtype, copy=False)
        out = acc[m0:m0 + step]
        _add_bias(blocked_matmul(af, wf, plan), b64[None, :], out, fused)
        seq = _resolve(af, wf, b64, acc_bits, policy, amax, wmax)
        out[seq.ms, seq.ns] = seq.values
        return int(seq.events.sum()), seq.first

    events, first_lin = 0, -1
    for m0, (ev, f) in zip(range(0, m, step), parallel_map(run, range(0, m, step)),
                           strict=True):
        events += ev
        if f >= 0 and first_lin < 0:  # chunks come in increasing m
            first_lin = f + m0 * n * k
    first = None
    if first_lin >= 0:
        first = (first_lin // (n * k), first_lin // k % n, first_lin % k)
    return acc, events, first
