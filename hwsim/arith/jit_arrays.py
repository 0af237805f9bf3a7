"""Numba kernels applying the §8 / §10 scalar arithmetic to whole arrays (golden model).

The golden model's element-wise work — requantization of accumulators (§8), the §10.1 add,
max pooling (§10.4) — as ``@njit(cache=True, nogil=True)`` loops. Every element goes through
:func:`hwsim.arith.jit.requantize_scalar`, the §8 function the cycle model calls, so there
is one implementation of §8: a kernel only picks each element's per-channel parameters and
the order of the elements, which cannot change a value (the kernels are element-wise).
The one exception is the requantization of dyadic / custom parameters with multipliers
below 2^21 and a saturating output stage, which runs the same §8.4 formula in float64,
where every step is exact (arithmetic.md §8.4 "Evaluation in float64"; 0.65–0.78 against
1.33–1.40 ns per value on one thread, int32 accumulators, one measurement; its values
outside int32 are found by a min/max scan before it runs, except for int32 accumulators
without an offset, which cannot have any).
``tests/test_golden_elementwise_fast.py`` holds them to :func:`hwsim.arith.requantize` bit
for bit.

Speed: each loop is compiled once per (mode, rounding) pair with the two codes as
constants at the call of ``requantize_scalar`` (the branches of :func:`_requant_rows`), so
LLVM drops the other modes' code and vectorises the loop (measured on one thread: 1.1–1.7
ns per requantized element against 12–15 ns with the codes read at run time; the add, three
requantizations per element, 2.5 ns). ``dyadic`` and ``custom``
run ``requantize_scalar``'s one shared datapath (§8.4/§8.5: ``rounding_shift_right(acc·m,
n)``), so both use the ``dyadic`` code there. Range checks are branch-free counts.

Errors: a kernel never raises. It counts the values the numpy pipeline rejects
(requantization inputs outside int32) and the wrappers return None when the count is not
zero, or when the arguments are outside what the kernels cover; the caller then runs the
numpy pipeline, which raises the documented :class:`hwsim.errors.HwsimError`.

Threads: kernels release the GIL and take a range of rows; the wrappers cut the rows into
one range per thread and run them with the ``pmap`` they are given (the golden model passes
:func:`hwsim.exact.parallel_map`, whose thread count :func:`hwsim.exact.matmul.set_threads`
sets). No OpenMP runtime is started (it would make a later ``fork`` unsafe).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import numpy.typing as npt
from numba import njit

from hwsim.arith.jit import MODE_CODES, ROUNDING_CODES, requant_scalar_args, requantize_scalar
from hwsim.arith.requantize import RequantParams

__all__ = ["PARALLEL_MIN_ELEMENTS", "MAX_ADD_LEFT_SHIFT", "CODE_DTYPES", "compact_code_dtype",
           "F64_MULTIPLIER_LIMIT", "F64_SHIFT_MAX", "f64_scales", "requantize_array",
           "add_array", "maxpool_array"]

_INT32_MIN = -(1 << 31)
_INT32_MAX = (1 << 31) - 1
_TFLITE = MODE_CODES["tflite"]
_TFLITE_SINGLE = MODE_CODES["tflite_single"]
_FLOAT32 = MODE_CODES["float32"]
_FLOAT64 = MODE_CODES["float64"]
_DYADIC = MODE_CODES["dyadic"]
_HALF_UP = ROUNDING_CODES["half_up"]
_HALF_AWAY = ROUNDING_CODES["half_away"]
_HALF_EVEN = ROUNDING_CODES["half_even"]
_FLOOR = ROUNDING_CODES["floor"]
_TOWARD_ZERO = ROUNDING_CODES["toward_zero"]
#: Largest left shift the add kernel takes (an int64 shift by 63 or more is undefined).
MAX_ADD_LEFT_SHIFT = 62
#: Arrays with fewer elements than this run in the calling thread.
PARALLEL_MIN_ELEMENTS = 1 << 16

Pmap = Callable[[Callable[[int], int], Iterable[int]], list]


@njit(cache=True, nogil=True, inline="always")
def _requant_row(acc, out, a, c, offset, m, s, f, mode, rnd, z, lo, hi, out_bits, signed,
                 wrap):
    """§8 of ``acc[a, c, :] − offset`` into ``out[a, c, :]``; returns how many of the
    values were outside int32 (their codes are meaningless)."""
    bad = 0
    for b in range(acc.shape[2]):
        v = np.int64(acc[a, c, b]) - offset
        bad += (v < _INT32_MIN) | (v > _INT32_MAX)
        out[a, c, b] = requantize_scalar(v, m, s, f, mode, rnd, z, lo, hi, out_bits, signed,
                                         wrap)
    return bad


@njit(cache=True, nogil=True, inline="always")
def _requant_span(last, acc, out, r0, r1, offset, mult, shift, s32, mode, rnd, z, lo, hi,
                  out_bits, signed, wrap):
    """§8 of ``acc[A, C, B] − offset`` into ``out``, channel c with the parameters at index
    c (0 for one channel). ``last`` False: rows ``[r0, r1)`` of the A·C rows (a, c), each a
    run over B. ``last`` True (``B == 1``, channels last, parameters of length C): rows
    ``[r0, r1)`` of A, each a run over the channels. Returns how many values were outside
    int32 (their codes are meaningless)."""
    bad = 0
    n_c = acc.shape[1]
    if last:
        for a in range(r0, r1):
            for c in range(n_c):
                v = np.int64(acc[a, c, 0]) - offset
                bad += (v < _INT32_MIN) | (v > _INT32_MAX)
                out[a, c, 0] = requantize_scalar(v, mult[c], shift[c], s32[c], mode, rnd, z,
                                                 lo, hi, out_bits, signed, wrap)
        return bad
    per_channel = mult.shape[0] > 1
    for r in range(r0, r1):
        a = r // n_c
        c = r - a * n_c
        k = c if per_channel else 0
        bad += _requant_row(acc, out, a, c, offset, mult[k], shift[k], s32[k], mode, rnd, z,
                            lo, hi, out_bits, signed, wrap)
    return bad


@njit(cache=True, nogil=True)
def _requant_rows(last, acc, out, r0, r1, offset, mult, shift, s32, mode, rnd, z, lo, hi,
                  out_bits, signed, wrap):
    """:func:`_requant_span` with the (mode, rounding) pair as constants: LLVM drops the
    other modes' code and vectorises the inner loops."""
    if mode == _TFLITE:
        return _requant_span(last, acc, out, r0, r1, offset, mult, shift, s32, _TFLITE,
                             _HALF_UP, z, lo, hi, out_bits, signed, wrap)
    if mode == _TFLITE_SINGLE:
        return _requant_span(last, acc, out, r0, r1, offset, mult, shift, s32, _TFLITE_SINGLE,
                             _HALF_UP, z, lo, hi, out_bits, signed, wrap)
    if mode == _FLOAT32:
        return _requant_span(last, acc, out, r0, r1, offset, mult, shift, s32, _FLOAT32,
                             _HALF_UP, z, lo, hi, out_bits, signed, wrap)
    if mode == _FLOAT64:
        return _requant_span(last, acc, out, r0, r1, offset, mult, shift, s32, _FLOAT64,
                             _HALF_UP, z, lo, hi, out_bits, signed, wrap)
    # dyadic and custom: one datapath in requantize_scalar
    if rnd == _HALF_UP:
        return _requant_span(last, acc, out, r0, r1, offset, mult, shift, s32, _DYADIC,
                             _HALF_UP, z, lo, hi, out_bits, signed, wrap)
    if rnd == _HALF_AWAY:
        return _requant_span(last, acc, out, r0, r1, offset, mult, shift, s32, _DYADIC,
                             _HALF_AWAY, z, lo, hi, out_bits, signed, wrap)
    if rnd == _HALF_EVEN:
        return _requant_span(last, acc, out, r0, r1, offset, mult, shift, s32, _DYADIC,
                             _HALF_EVEN, z, lo, hi, out_bits, signed, wrap)
    if rnd == _FLOOR:
        return _requant_span(last, acc, out, r0, r1, offset, mult, shift, s32, _DYADIC,
                             _FLOOR, z, lo, hi, out_bits, signed, wrap)
    return _requant_span(last, acc, out, r0, r1, offset, mult, shift, s32, _DYADIC,
                         _TOWARD_ZERO, z, lo, hi, out_bits, signed, wrap)


@njit(cache=True, nogil=True, inline="always")
def _round_f64(v, rnd):
    """The §6 rounding ``rnd`` of the float64 ``v``, exact when ``v`` is (§8.4 "Evaluation
    in float64")."""
    if rnd == _HALF_UP:
        return np.floor(v + 0.5)
    if rnd == _HALF_EVEN:
        return np.rint(v)
    if rnd == _FLOOR:
        return np.floor(v)
    if rnd == _TOWARD_ZERO:
        return np.trunc(v)
    return np.copysign(np.floor(np.abs(v) + 0.5), v)  # half_away


@njit(cache=True, nogil=True, inline="always")
def _requant_span_f64(last, acc, out, r0, r1, offset, scale, rnd, z, lo, hi):
    """§8.4 with a saturating output stage in float64 (exact: every ``|acc·m| < 2^52``,
    ``shift ≤ 52``; §8.4 "Evaluation in float64"): ``q = clamp(round((acc − offset)·s) + z,
    lo, hi)`` with ``s = m·2^−shift``, on rows ``[r0, r1)`` of the 2-D ``acc`` (every
    ``acc − offset`` in int32: checked by the caller; ``offset``, ``z``, ``lo``, ``hi`` as
    float64): channel ``j`` of each row with ``scale[j]`` (``last``: a GEMM's [M, N]),
    else one channel per row, row ``r`` using ``scale[r mod C]`` (``C = scale.shape[0]``;
    the rows of an (A, C, B) array)."""
    if last:
        for r in range(r0, r1):
            row = acc[r]
            dst = out[r]
            for j in range(row.shape[0]):
                y = _round_f64((np.float64(row[j]) - offset) * scale[j], rnd) + z
                dst[j] = np.int32(min(max(y, lo), hi))
        return 0
    n_c = scale.shape[0]
    for r in range(r0, r1):
        row = acc[r]
        dst = out[r]
        s = scale[r % n_c]
        for j in range(row.shape[0]):
            y = _round_f64((np.float64(row[j]) - offset) * s, rnd) + z
            dst[j] = np.int32(min(max(y, lo), hi))
    return 0


@njit(cache=True, nogil=True)
def _requant_rows_f64(last, acc, out, r0, r1, offset, scale, rnd, z, lo, hi):
    """:func:`_requant_span_f64` with the rounding as a constant."""
    if rnd == _HALF_UP:
        return _requant_span_f64(last, acc, out, r0, r1, offset, scale, _HALF_UP, z, lo, hi)
    if rnd == _HALF_AWAY:
        return _requant_span_f64(last, acc, out, r0, r1, offset, scale, _HALF_AWAY, z, lo, hi)
    if rnd == _HALF_EVEN:
        return _requant_span_f64(last, acc, out, r0, r1, offset, scale, _HALF_EVEN, z, lo, hi)
    if rnd == _FLOOR:
        return _requant_span_f64(last, acc, out, r0, r1, offset, scale, _FLOOR, z, lo, hi)
    return _requant_span_f64(last, acc, out, r0, r1, offset, scale, _TOWARD_ZERO, z, lo, hi)


@njit(cache=True, nogil=True, inline="always")
def _add_span(qa, qb, out, i0, i1, za, zb, shift_l, pa, pb, po, mode_a, rnd_a, mode_b,
              rnd_b, mode_o, rnd_o):
    """§10.1 on elements ``[i0, i1)``: ``po(pa((qa − za)·2^L) + pb((qb − zb)·2^L))``, each
    ``p*`` the per-tensor arguments ``(m, shift, scale_f32, z, act_min, act_max, out_bits,
    signed, wrap)`` of :func:`requantize_scalar`. Returns how many elements had a
    requantization input outside int32."""
    qa = qa[i0:i1]  # views indexed from 0: the loop below vectorises (measured 1.5× faster)
    qb = qb[i0:i1]
    out = out[i0:i1]
    bad = 0
    for i in range(qa.shape[0]):
        a = (qa[i] - za) << shift_l
        b = (qb[i] - zb) << shift_l
        ya = requantize_scalar(a, pa[0], pa[1], pa[2], mode_a, rnd_a, pa[3], pa[4], pa[5],
                               pa[6], pa[7], pa[8])
        yb = requantize_scalar(b, pb[0], pb[1], pb[2], mode_b, rnd_b, pb[3], pb[4], pb[5],
                               pb[6], pb[7], pb[8])
        s = ya + yb
        bad += ((a < _INT32_MIN) | (a > _INT32_MAX) | (b < _INT32_MIN) | (b > _INT32_MAX)
                | (s < _INT32_MIN) | (s > _INT32_MAX))
        out[i] = requantize_scalar(s, po[0], po[1], po[2], mode_o, rnd_o, po[3], po[4], po[5],
                                   po[6], po[7], po[8])
    return bad


@njit(cache=True, nogil=True)
def _add_range(qa, qb, out, i0, i1, za, zb, shift_l, pa, pb, po, modes, rnds):
    """:func:`_add_span` with constant codes when the three blocks share (mode, rounding)
    (the compiler's add, §10.1), with the codes read at run time otherwise."""
    m, r = modes[0], rnds[0]
    if modes[1] != m or modes[2] != m or rnds[1] != r or rnds[2] != r:
        return _add_span(qa, qb, out, i0, i1, za, zb, shift_l, pa, pb, po, modes[0], rnds[0],
                         modes[1], rnds[1], modes[2], rnds[2])
    if m == _TFLITE:
        return _add_span(qa, qb, out, i0, i1, za, zb, shift_l, pa, pb, po, _TFLITE, _HALF_UP,
                         _TFLITE, _HALF_UP, _TFLITE, _HALF_UP)
    if m == _TFLITE_SINGLE:
        return _add_span(qa, qb, out, i0, i1, za, zb, shift_l, pa, pb, po, _TFLITE_SINGLE,
                         _HALF_UP, _TFLITE_SINGLE, _HALF_UP, _TFLITE_SINGLE, _HALF_UP)
    if m == _FLOAT32:
        return _add_span(qa, qb, out, i0, i1, za, zb, shift_l, pa, pb, po, _FLOAT32, _HALF_UP,
                         _FLOAT32, _HALF_UP, _FLOAT32, _HALF_UP)
    if m == _FLOAT64:
        return _add_span(qa, qb, out, i0, i1, za, zb, shift_l, pa, pb, po, _FLOAT64, _HALF_UP,
                         _FLOAT64, _HALF_UP, _FLOAT64, _HALF_UP)
    if r == _HALF_UP:  # dyadic and custom: one datapath in requantize_scalar
        return _add_span(qa, qb, out, i0, i1, za, zb, shift_l, pa, pb, po, _DYADIC, _HALF_UP,
                         _DYADIC, _HALF_UP, _DYADIC, _HALF_UP)
    if r == _HALF_AWAY:
        return _add_span(qa, qb, out, i0, i1, za, zb, shift_l, pa, pb, po, _DYADIC,
                         _HALF_AWAY, _DYADIC, _HALF_AWAY, _DYADIC, _HALF_AWAY)
    if r == _HALF_EVEN:
        return _add_span(qa, qb, out, i0, i1, za, zb, shift_l, pa, pb, po, _DYADIC,
                         _HALF_EVEN, _DYADIC, _HALF_EVEN, _DYADIC, _HALF_EVEN)
    if r == _FLOOR:
        return _add_span(qa, qb, out, i0, i1, za, zb, shift_l, pa, pb, po, _DYADIC, _FLOOR,
                         _DYADIC, _FLOOR, _DYADIC, _FLOOR)
    return _add_span(qa, qb, out, i0, i1, za, zb, shift_l, pa, pb, po, _DYADIC, _TOWARD_ZERO,
                     _DYADIC, _TOWARD_ZERO, _DYADIC, _TOWARD_ZERO)


@njit(cache=True, nogil=True)
def _valid_taps(n_out, size, k, stride, pad, dil):
    """For each output position, the taps ``[lo, hi)`` of a k-tap window (input index
    ``o·stride − pad + t·dil``) that fall inside ``[0, size)``; the valid taps of a window
    are consecutive."""
    lo = np.full(n_out, k, dtype=np.int64)
    hi = np.zeros(n_out, dtype=np.int64)
    for o in range(n_out):
        for t in range(k):
            if 0 <= o * stride - pad + t * dil < size:
                lo[o] = min(lo[o], t)
                hi[o] = t + 1
    return lo, hi


@njit(cache=True, nogil=True)
def _maxpool_planes(q, out, p0, p1, kh, kw, sh, sw, pt, pl, dh, dw, qmin):
    """Planes ``[p0, p1)`` of the (N·C) planes: the maximum over each window of the NCHW
    codes padded with ``qmin``. Max is exact, associative and commutative, so it is taken
    per output row first down the window's rows (``col``, one value per input column),
    then across its columns; a tap in the padding contributes ``qmin``."""
    n_c, w = q.shape[1], q.shape[3]
    oh, ow = out.shape[2], out.shape[3]
    ilo, ihi = _valid_taps(oh, q.shape[2], kh, sh, pt, dh)
    jlo, jhi = _valid_taps(ow, w, kw, sw, pl, dw)
    col = np.empty(w, dtype=np.int64)
    for p in range(p0, p1):
        i_n = p // n_c
        i_c = p - i_n * n_c
        plane = q[i_n, i_c]
        dst = out[i_n, i_c]
        for y in range(oh):
            y0 = y * sh - pt
            if ihi[y] <= ilo[y]:
                col[:] = qmin  # the window's rows are all padding
            else:
                first = plane[y0 + ilo[y] * dh]
                for xx in range(w):
                    col[xx] = first[xx]
                for i in range(ilo[y] + 1, ihi[y]):
                    src = plane[y0 + i * dh]
                    for xx in range(w):
                        col[xx] = max(col[xx], src[xx])
                if ihi[y] - ilo[y] < kh:
                    for xx in range(w):
                        col[xx] = max(col[xx], qmin)
            for x in range(ow):
                x0 = x * sw - pl
                best = qmin
                if jhi[x] - jlo[x] == kw:
                    best = col[x0]
                for j in range(jlo[x], jhi[x]):
                    best = max(best, col[x0 + j * dw])
                dst[y, x] = best
    return 0


def _run_rows(kernel: Callable[[int, int], int], rows: int, size: int, threads: int,
              pmap: Pmap | None) -> int:
    """Sum of ``kernel(r0, r1)`` over ``[0, rows)`` cut into one range per thread (one call
    in the calling thread below :data:`PARALLEL_MIN_ELEMENTS` elements or one thread)."""
    n = min(int(threads), rows)
    if pmap is None or n <= 1 or size < PARALLEL_MIN_ELEMENTS:
        return int(kernel(0, rows))
    edges = np.linspace(0, rows, n + 1).astype(np.int64)
    return int(sum(pmap(lambda i: kernel(int(edges[i]), int(edges[i + 1])), range(n))))


#: §8.4 "Evaluation in float64": dyadic / custom multipliers below 2^21 and shifts up to 52
#: keep every ``|acc·m| < 2^31·2^21 = 2^52`` and ``(acc·m)·2^−shift`` an exact float64.
F64_MULTIPLIER_LIMIT = 1 << 21
F64_SHIFT_MAX = 52


def f64_scales(params: RequantParams) -> npt.NDArray[np.float64] | None:
    """The per-channel ``m·2^−shift`` (float64, exact) when ``params`` can be evaluated in
    float64 (§8.4 "Evaluation in float64": dyadic or custom, saturating output stage,
    ``|m| < 2^21``, ``shift ≤ 52``), else None."""
    cfg = params.config
    if (cfg.mode not in ("dyadic", "custom") or cfg.output_overflow != "saturate"
            or int(np.abs(params.multiplier).max()) >= F64_MULTIPLIER_LIMIT
            or int(params.shift.max()) > F64_SHIFT_MAX or int(params.shift.min()) < 0):
        return None
    return np.ldexp(params.multiplier.astype(np.float64), -params.shift)


def _channel_args(params: RequantParams) -> tuple:
    """:func:`requant_scalar_args` with the per-channel arrays in the kernels' dtypes."""
    m, s, f, mode, rnd, z, lo, hi, out_bits, signed, wrap = requant_scalar_args(params)
    return (np.ascontiguousarray(m, dtype=np.int64), np.ascontiguousarray(s, dtype=np.int64),
            np.ascontiguousarray(f, dtype=np.float32), int(mode), int(rnd), int(z), int(lo),
            int(hi), int(out_bits), bool(signed), bool(wrap))


def _tensor_args(params: RequantParams) -> tuple[tuple, int, int]:
    """Per-tensor block as ``((m, shift, scale_f32, z, lo, hi, out_bits, signed, wrap),
    mode, rounding)`` for :func:`_add_span`."""
    m, s, f, mode, rnd, z, lo, hi, out_bits, signed, wrap = _channel_args(params)
    return ((np.int64(m[0]), np.int64(s[0]), np.float32(f[0]), np.int64(z), np.int64(lo),
             np.int64(hi), np.int64(out_bits), signed, wrap), mode, rnd)


#: Code arrays the add and max-pool kernels read as they are (no int64 copy), and the
#: output dtypes they and the requantize kernel write: the golden model's compact codes of
#: 8-bit formats, and int64.
CODE_DTYPES = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int64))


def compact_code_dtype(lo: int, hi: int) -> np.dtype | None:
    """int8 or uint8 when every code in ``[lo, hi]`` fits it (int8 preferred), else None."""
    if -128 <= lo and hi <= 127:
        return np.dtype(np.int8)
    if 0 <= lo and hi <= 255:
        return np.dtype(np.uint8)
    return None


def _out_dtype(out_dtype: npt.DTypeLike | None) -> np.dtype:
    """The kernels' output dtype: int64 (default) or a compact code dtype (int8 / uint8:
    the caller guarantees every code of the output format fits it)."""
    dt = np.dtype(np.int64 if out_dtype is None else out_dtype)
    if dt not in CODE_DTYPES:
        raise ValueError(f"out_dtype: expected int64, int8 or uint8, got {dt}")
    return dt


def _kernel_ints(a: np.ndarray) -> np.ndarray | None:
    """``a`` as a C-contiguous int32 (read as it is: the accumulators of 32-bit registers)
    or int64 array (any other signed integers, unsigned up to 32 bits, converted exactly),
    else None."""
    if a.dtype == np.int32:
        return np.ascontiguousarray(a)
    if a.dtype.kind == "i" or (a.dtype.kind == "u" and a.dtype.itemsize < 8):
        return np.ascontiguousarray(a, dtype=np.int64)
    return None


def requantize_array(acc: npt.ArrayLike, params: RequantParams, channel_axis: int = -1, *,
                     offset: int = 0, threads: int = 1, pmap: Pmap | None = None,
                     out_dtype: npt.DTypeLike | None = None) -> npt.NDArray[np.integer] | None:
    """``hwsim.arith.requantize(acc − offset, params, channel_axis)`` (int64 codes, or
    ``out_dtype`` int8 / uint8 when every code of ``params``' output format fits it; same
    shape), or None when the kernel does not cover the arguments (``acc`` not integer, 0-d
    or empty, channel axis out of range or of the wrong length, a value outside int32): the
    caller then runs the numpy pipeline, which gives the same codes or raises its error."""
    out_dt = _out_dtype(out_dtype)
    a = _kernel_ints(np.asarray(acc))
    if a is None or a.ndim == 0 or a.size == 0 or not _INT32_MIN <= offset <= _INT32_MAX:
        return None
    c = params.channels
    axis = channel_axis + a.ndim if channel_axis < 0 else channel_axis
    if not 0 <= axis < a.ndim or (c > 1 and a.shape[axis] != c):
        return None
    view = a.reshape(int(np.prod(a.shape[:axis], dtype=np.int64)), a.shape[axis], -1)
    out = np.empty(view.shape, dtype=out_dt)
    scales = f64_scales(params)
    if scales is not None:
        # 2-D rows with unit-stride runs (the loops vectorise): channels along a row
        # (channels last) or one channel per row
        last = view.shape[2] == 1 and view.shape[1] > 1
        shape2 = view.shape[:2] if last else (view.shape[0] * view.shape[1], view.shape[2])
        if scales.shape[0] == 1 or last:
            scales = np.ascontiguousarray(np.broadcast_to(scales, (view.shape[1],)))
        if not (a.dtype == np.int32 and offset == 0):
            # the numpy pipeline rejects values outside int32 (the int64 kernel counts them)
            if not (_INT32_MIN <= int(a.min()) - offset and int(a.max()) - offset <= _INT32_MAX):
                return None
        rows2, out2 = view.reshape(shape2), out.reshape(shape2)
        f64_args = (float(offset), scales, int(ROUNDING_CODES[params.config.rounding]),
                    float(params.zero_point), float(params.act_min), float(params.act_max))
        _run_rows(lambda r0, r1: _requant_rows_f64(last, rows2, out2, r0, r1, *f64_args),
                  shape2[0], a.size, threads, pmap)
        return out.reshape(a.shape)
    args = (np.int64(offset), *_channel_args(params))
    if view.shape[2] == 1 and view.shape[1] > 1:
        # channels last (e.g. a GEMM's [M, N] accumulators): runs over the channels
        n_c = view.shape[1]
        m, sh, f = (np.ascontiguousarray(np.broadcast_to(v, (n_c,))) for v in args[1:4])
        last = (args[0], m, sh, f, *args[4:])
        bad = _run_rows(lambda r0, r1: _requant_rows(True, view, out, r0, r1, *last),
                        view.shape[0], a.size, threads, pmap)
        return None if bad else out.reshape(a.shape)
    bad = _run_rows(lambda r0, r1: _requant_rows(False, view, out, r0, r1, *args),
                    view.shape[0] * view.shape[1], a.size, threads, pmap)
    return None if bad else out.reshape(a.shape)


def add_array(qa: np.ndarray, qb: np.ndarray, *, za: int, zb: int, pa: RequantParams,
              pb: RequantParams, po: RequantParams, left_shift: int, threads: int = 1,
              pmap: Pmap | None = None,
              out_dtype: npt.DTypeLike | None = None) -> npt.NDArray[np.integer] | None:
    """The §10.1 add of two same-shape code arrays (int64, int8 or uint8 each), fused per
    element (int64 arithmetic), into int64 codes or ``out_dtype`` (int8 / uint8, when every
    code of ``po``'s format fits it), or None when the kernel does not cover the arguments
    (shapes differ, other dtypes, empty, per-channel blocks, shift outside [0, 62], a zero
    point outside int32, a requantization input outside int32): the caller then runs the
    numpy pipeline ``requantize(requantize(a, pa) + requantize(b, pb), po)``, which gives
    the same codes or raises its error."""
    out_dt = _out_dtype(out_dtype)
    if (qa.shape != qb.shape or qa.dtype not in CODE_DTYPES or qb.dtype not in CODE_DTYPES
            or qa.size == 0
            or not 0 <= left_shift <= MAX_ADD_LEFT_SHIFT
            or not (_INT32_MIN <= za <= _INT32_MAX and _INT32_MIN <= zb <= _INT32_MAX)
            or any(p.channels != 1 for p in (pa, pb, po))):
        return None
    blocks = [_tensor_args(p) for p in (pa, pb, po)]
    tuples = tuple(t for t, _, _ in blocks)
    modes = np.array([m for _, m, _ in blocks], dtype=np.int64)
    rnds = np.array([r for _, _, r in blocks], dtype=np.int64)
    fa, fb = np.ascontiguousarray(qa).reshape(-1), np.ascontiguousarray(qb).reshape(-1)
    out = np.empty(fa.shape, dtype=out_dt)
    consts = (np.int64(za), np.int64(zb), np.int64(left_shift), *tuples, modes, rnds)
    bad = _run_rows(lambda i0, i1: _add_range(fa, fb, out, i0, i1, *consts), fa.size,
                    fa.size, threads, pmap)
    return None if bad else out.reshape(qa.shape)


def maxpool_array(q: np.ndarray, *, kernel: tuple[int, int], strides: tuple[int, int],
                  pads: tuple[int, int, int, int], dilations: tuple[int, int],
                  out_hw: tuple[int, int], qmin: int, threads: int = 1,
                  pmap: Pmap | None = None,
                  out_dtype: npt.DTypeLike | None = None) -> npt.NDArray[np.integer] | None:
    """Max pooling of NCHW integer codes padded with ``qmin`` (ONNX pads ``(top, left,
    bottom, right)``) into ``out_hw``, int64 or ``out_dtype`` (int8 / uint8, when every code
    and ``qmin`` fit it); None for codes the kernel does not take (not 4-D integers,
    ``qmin`` outside int64). int8 / uint8 codes are read as they are."""
    out_dt = _out_dtype(out_dtype)
    q = np.asarray(q)
    a = np.ascontiguousarray(q) if q.dtype in CODE_DTYPES else _kernel_ints(q)
    if a is None or a.ndim != 4 or not -(1 << 63) <= int(qmin) < 1 << 63:
        return None
    out = np.empty(a.shape[:2] + (int(out_hw[0]), int(out_hw[1])), dtype=out_dt)
    geometry = tuple(np.int64(v) for v in (*kernel, *strides, pads[0], pads[1], *dilations))
    _run_rows(lambda p0, p1: _maxpool_planes(a, out, p0, p1, *geometry, np.int64(qmin)),
              a.shape[0] * a.shape[1], a.size, threads, pmap)
    return out
