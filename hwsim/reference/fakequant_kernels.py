"""Numba kernels of the float64 fake-quant reference (specs/compiler.md §5, arithmetic §6, §9).

Each kernel does, element by element and in the same order, the float64 operations of the
numpy formulas in :mod:`hwsim.reference.fakequant_exec` (:func:`round_float` and
``_fq_rescale``: ``round(v · eff) + z``, the optional wrap, the clamp; the §10.1 add as two
rescales then a third; max pooling on real values ``scale · (q − z)``), but in one pass over
memory instead of one temporary array per operation. The kernels are compiled without
``fastmath``, so LLVM neither reassociates nor contracts a multiply and an add into an FMA:
every operation is the IEEE-754 float64 operation numpy performs, and the results are
identical (held to the numpy formulas by ``tests/test_fakequant_fast.py``). The reference
stays a float64 computation, independent of the golden model's integer kernels.

Kernels release the GIL and work on a range of rows ``[r0, r1)`` of a 2-D (rows = N·C,
columns = the spatial positions) view; :func:`run_rows` cuts the rows into one range per
thread of :mod:`hwsim.exact.matmul`'s pool, so the thread count follows
:func:`hwsim.exact.matmul.set_threads` (sweep workers: one) and no OpenMP runtime is
started (which would make later ``fork`` unsafe).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import njit

from hwsim.arith.jit import ROUNDING_CODES
from hwsim.exact.matmul import parallel_map, threads

#: Layout of the float64 parameter vector of one requant block (:func:`block_params`).
P_ZP, P_QMIN, P_SPAN, P_LO, P_HI, P_ROUND, P_WRAP = range(7)
_HALF_UP = ROUNDING_CODES["half_up"]
_HALF_AWAY = ROUNDING_CODES["half_away"]
_HALF_EVEN = ROUNDING_CODES["half_even"]
_TOWARD_ZERO = ROUNDING_CODES["toward_zero"]

#: Arrays with fewer elements than this run in the calling thread (a pool round trip costs
#: about as much as the kernel on this many elements).
PARALLEL_MIN_ELEMENTS = 1 << 16


def block_params(zero_point: int, rounding: str, wrap: bool, qmin: int, out_bits: int,
                 act_min: int, act_max: int) -> np.ndarray:
    """The float64 vector [z, qmin, 2^out_bits, act_min, act_max, rounding code, wrap] that
    :func:`rescale_rows` reads; the values are the ones the numpy formula converts to
    float64 when it meets them (all integers below 2^53, exact)."""
    return np.array([zero_point, qmin, float(1 << out_bits), act_min, act_max,
                     ROUNDING_CODES[rounding], 1.0 if wrap else 0.0], dtype=np.float64)


@njit(cache=True, nogil=True)
def block_scalars(p: np.ndarray) -> tuple:
    """The parameter vector of one block as a tuple of scalars (kept in registers by the
    loops): rounding tests ``(gt, up, away, even, toward_zero)`` of :func:`requant_scalar`,
    then ``(z, qmin, span, 1/span, act_min, act_max, wrap)``."""
    rnd = p[P_ROUND]
    up = rnd == _HALF_UP
    away = rnd == _HALF_AWAY
    even = rnd == _HALF_EVEN
    return ((up or away or even, up, away, even, rnd == _TOWARD_ZERO),
            (p[P_ZP], p[P_QMIN], p[P_SPAN], 1.0 / p[P_SPAN], p[P_LO], p[P_HI],
             p[P_WRAP] != 0.0))


@njit(cache=True, nogil=True, inline="always")
def requant_scalar(v: float, eff: float, rounding: tuple, stage: tuple) -> float:
    """``round(v · eff) + z`` (§6 rounding of the exact fraction), wrapped to ``out_bits``
    if asked, clamped to [act_min, act_max]; the integer result as float64: the float64
    operations of ``round_float`` and ``_fq_rescale`` on one element.

    The rounding increment is numpy's boolean ``inc`` of :func:`round_float`, written as
    one branch-free expression for all modes (``rounding`` from :func:`block_scalars`):
    half_up ``r ≥ 0.5`` = ``r > 0.5 | r == 0.5``; half_away ``r > 0.5 | (r == 0.5 & v ≥ 0)``;
    half_even ``r > 0.5 | (r == 0.5 & fl odd)``, where ``np.mod(fl, 2) == 1`` of an integral
    float64 ``fl`` is ``floor(fl/2) ≠ fl/2`` (``fl/2`` exact); floor never; toward_zero
    ``r ≠ 0 & v < 0``. (Branches on the data would be mispredicted half the time.)"""
    gt, up, away, even, tz = rounding
    zp, qmin, span, inv_span, lo, hi, wrap = stage
    y = v * eff
    fl = np.floor(y)
    r = y - fl
    half = fl * 0.5
    tie = (r == 0.5) & (up | (away & (y >= 0)) | (even & (np.floor(half) != half)))
    inc = ((r > 0.5) & gt) | tie | (tz & (r != 0) & (y < 0))
    fl += np.float64(inc)  # numpy's ``fl += inc``: + 1.0 or + 0.0
    fl += zp
    w = fl - qmin  # the wrap, computed always and selected: no branch in the loops;
    w = w - span * np.floor(w * inv_span) + qmin  # w·2^-b is w / 2^b (both exact-rounded)
    fl = w if wrap else fl
    return min(max(fl, lo), hi)


@njit(cache=True, nogil=True)
def rescale_rows(src: np.ndarray, bias: np.ndarray, eff: np.ndarray, p: np.ndarray,
                 out: np.ndarray, acc_out: np.ndarray, r0: int, r1: int) -> None:
    """Rows ``r0..r1`` of ``src`` [N·C, S] (float64; row r has channel r mod C, C =
    ``eff.size``): ``a = src + bias[c]``, ``acc_out = a`` as int64 (skipped when
    ``acc_out`` has no rows), ``out = requant(a, eff[c])`` int64. (Without a bias the
    caller passes zeros: ``v + 0.0`` differs from ``v`` only for −0.0, which rounds, wraps
    and clamps as +0.0 does.)"""
    c_n = eff.size
    rounding, stage = block_scalars(p)
    for r in range(r0, r1):
        c = r % c_n
        e = eff[c]
        b = bias[c]
        if acc_out.shape[0] > 0:  # two loops: LLVM vectorizes each, not one with a test
            for s in range(src.shape[1]):
                a = src[r, s] + b
                acc_out[r, s] = np.int64(a)
                out[r, s] = np.int64(requant_scalar(a, e, rounding, stage))
        else:
            for s in range(src.shape[1]):
                out[r, s] = np.int64(requant_scalar(src[r, s] + b, e, rounding, stage))


@njit(cache=True, nogil=True)
def add_rows(qa: np.ndarray, qb: np.ndarray, za: float, zb: float, shift: float,
             eff: np.ndarray, p: np.ndarray, out: np.ndarray, r0: int, r1: int) -> None:
    """§10.1 add of rows ``r0..r1`` ([N·C, S] integer codes, channel r mod C with C =
    ``eff.shape[1]``): ``ra = requant((qa − za)·shift, in0)``, ``rb`` likewise, both as
    int64, then ``out = requant(float64(ra + rb), out)``; ``eff``/``p`` rows 0, 1, 2 are
    the blocks in0, in1, out."""
    c_n = eff.shape[1]
    d0, s0 = block_scalars(p[0])
    d1, s1 = block_scalars(p[1])
    d2, s2 = block_scalars(p[2])
    for r in range(r0, r1):
        c = r % c_n
        e0 = eff[0, c]
        e1 = eff[1, c]
        e2 = eff[2, c]
        for s in range(qa.shape[1]):
            ra = np.int64(requant_scalar((np.float64(qa[r, s]) - za) * shift, e0, d0, s0))
            rb = np.int64(requant_scalar((np.float64(qb[r, s]) - zb) * shift, e1, d1, s1))
            out[r, s] = np.int64(requant_scalar(np.float64(ra + rb), e2, d2, s2))


@njit(cache=True, nogil=True)
def lookup2_rows(qa: np.ndarray, qb: np.ndarray, table: np.ndarray, lo_a: int, lo_b: int,
                 out: np.ndarray, r0: int, r1: int) -> int:
    """``out = table[qa − lo_a, qb − lo_b]`` on rows ``r0..r1`` of [R, S] arrays: a
    function of two codes read from its table of every pair. Returns how many elements
    had a code outside the table (their ``out`` is not written)."""
    na = table.shape[0]
    nb = table.shape[1]
    missing = 0
    for r in range(r0, r1):
        for s in range(qa.shape[1]):
            ia = qa[r, s] - lo_a
            ib = qb[r, s] - lo_b
            if ia < 0 or ia >= na or ib < 0 or ib >= nb:
                missing += 1
            else:
                out[r, s] = table[ia, ib]
    return missing


@njit(cache=True, nogil=True)
def maxpool_rows(x: np.ndarray, scale: float, zp: float, geom: np.ndarray, out: np.ndarray,
                 r0: int, r1: int) -> None:
    """Max pooling of planes ``r0..r1`` of ``x`` [N·C, H, W] (int64 codes) into ``out``
    [N·C, OH, OW] int64: the maximum of the real values ``scale · (q − z)`` over the
    window's positions inside the plane (padding is −inf, never larger), then
    ``rint(max / scale) + z``; a window of padding only gives ``rint(−inf / scale) + z``
    as numpy does. ``geom`` = [KH, KW, SH, SW, DH, DW, pad top, pad left].

    The maximum is taken over the codes and converted once: ``q ↦ scale · (float64(q) − z)``
    is non-decreasing for ``scale > 0`` (each IEEE operation is a monotone rounding of a
    monotone function), so the largest code gives the largest real value, bit for bit."""
    kh, kw, sh, sw, dh, dw, pt, pl = geom[0], geom[1], geom[2], geom[3], geom[4], geom[5], \
        geom[6], geom[7]
    h = x.shape[1]
    w = x.shape[2]
    oh = out.shape[1]
    ow = out.shape[2]
    los = np.empty(kw, dtype=np.int64)  # per kernel column j: the outputs ox whose input
    his = np.empty(kw, dtype=np.int64)  # column ox·sw + j·dw − pad left lies in [0, W)
    col_seen = np.zeros(ow, dtype=np.bool_)
    for j in range(kw):
        off = j * dw - pl
        los[j] = max(0, -(off // sw))  # ceil(−off / sw)
        his[j] = min(ow, (w - 1 - off) // sw + 1) if w - 1 - off >= 0 else 0
        for ox in range(los[j], his[j]):
            col_seen[ox] = True
    lowest = np.iinfo(np.int64).min
    colmax = np.empty(w, dtype=np.int64)  # per input column: maximum over the window's rows
    for r in range(r0, r1):
        for oy in range(oh):
            colmax[:] = lowest
            row_seen = False
            for i in range(kh):
                y = oy * sh - pt + i * dh
                if 0 <= y < h:
                    row_seen = True
                    for xx in range(w):
                        colmax[xx] = max(colmax[xx], x[r, y, xx])
            for ox in range(ow):
                best = lowest
                for j in range(kw):
                    if los[j] <= ox < his[j]:
                        best = max(best, colmax[ox * sw + j * dw - pl])
                real = scale * (np.float64(best) - zp) if row_seen and col_seen[ox] \
                    else -np.inf
                out[r, oy, ox] = np.int64(np.rint(real / scale) + zp)


@njit(cache=True, nogil=True)
def centre_rows(x: np.ndarray, zp: float, out: np.ndarray, r0: int, r1: int) -> None:
    """``out = float64(x) − z`` on rows ``r0..r1`` of [R, S] arrays."""
    for r in range(r0, r1):
        for s in range(x.shape[1]):
            out[r, s] = np.float64(x[r, s]) - zp


def run_rows(kernel: Callable[[int, int], object], rows: int, size: int) -> list:
    """``kernel(r0, r1)`` over ``[0, rows)`` cut into one range per thread (in the calling
    thread for fewer than :data:`PARALLEL_MIN_ELEMENTS` elements or one thread); the
    kernel's results, one per range."""
    n = min(threads(), rows)
    if n <= 1 or size < PARALLEL_MIN_ELEMENTS:
        return [kernel(0, rows)]
    edges = np.linspace(0, rows, n + 1).astype(np.int64)
    return parallel_map(lambda i: kernel(int(edges[i]), int(edges[i + 1])), range(n))
