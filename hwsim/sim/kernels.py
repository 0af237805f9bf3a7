"""Numba kernels of the cycle model: the cycle-stepped systolic array and the sequential
accumulator used by fast mode when a partial sum may overflow.

* :func:`systolic_run` steps every cycle of every fold of one GEMM (specs/cycle_model.md
  §C3–§C5, §C9): stationary registers preloaded from the top one row per cycle, the moving
  operands shifted one PE per cycle from the array edges with the §C3 skew, partial sums
  passed down (``ws``/``is``) or accumulators held in place then drained (``os``), every
  accumulator addition checked against ``acc_bits`` with the §7 policy
  (:func:`hwsim.arith.jit.accumulate_scalar`), and every final accumulator sent through
  :func:`hwsim.arith.jit.requantize_scalar` with its latency. Register chains are delay
  lines stored as sliding windows over flat buffers, so a cycle of the whole array is one
  vectorised loop over its ``R·C`` PEs (:func:`_stream_tile` for ws/is, :func:`_os_tile`
  for os, one column tile each; column tiles run in parallel threads).
* :func:`sequential_accumulate` is arithmetic.md §7 literally, one output at a time.

The dataflow is a parameter (how operands map onto rows, columns and time), chosen by the
strategy objects in :mod:`hwsim.sim.dataflows`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hwsim.arith.jit import accumulate_scalar, requantize_scalar
from hwsim.exact.matmul import parallel_map

__all__ = ["systolic_run", "sequential_accumulate", "requantize_columns"]


@njit(cache=True)
def _note_overflow(first, m, n, k, n_total, k_total):
    """Smaller of ``first`` and the (m, n, k) row-major linear index (first = -1: none)."""
    lin = (m * n_total + n) * k_total + k
    if first < 0 or lin < first:
        return lin
    return first


@njit(cache=True)
def _stream_tile(
    j, x, xsk, s, rows, cols, check, acc_bits, policy_code, swap_mn, chan_by_col, multiplier,
    shift, scale_f32, mode_code, rounding_code, zero_point, act_min, act_max, out_bits,
    out_signed, out_wrap, latency, acc_buf, out, valid, stats, proto,
):
    """ws / is: every fold of column tile ``j`` (columns ``d0 = j·cols …``), k folds in
    order (§C2). Cycles count from the start of the tile's first fold (the caller shifts
    ``valid``); writes ``stats[j] = (cycles, events, first)``. Partial sums are held in
    ``proto.dtype`` (int32 only when the caller proved that no partial sum can overflow).

    Registers (each a delay line stored as a sliding window, specs/cycle_model.md §C9):
    ``sbuf[sw:sw+R·C]`` the stationary registers, PE(r, c) at ``r·C + c``; a preload cycle
    moves the window up one row and writes the new top row. ``hbuf[hw:hw+R·C]`` the moving
    operand registers: a shift right by one PE is the window moving down one element (the
    last PE of row r−1 falls off, the first PE of row r takes the row's new input).
    ``pbuf[pw:pw+R·C]`` the partial-sum registers: a shift down one row is the window
    moving down ``C`` elements, so a PE's update is an in-place add and each slot of
    ``pbuf`` is one partial sum travelling down its column. The slot of output ``t`` in
    column ``c`` is the same in every k fold, so ``pbuf`` also serves as the tile's
    accumulator buffer between k folds (§C2 feedback).
    """
    half = np.int64(1) << (acc_bits - 1)
    outside = ~((np.int64(1) << acc_bits) - 1)
    k_total, t_len = x.shape
    d_len = s.shape[1]
    n_total = t_len if swap_mn else d_len
    n_row_folds = (k_total + rows - 1) // rows
    d0 = j * cols
    cu = min(cols, d_len - d0)
    n = rows * cols
    ncyc = t_len + rows + cols - 2
    sbuf = np.zeros(2 * n, dtype=np.int32)
    sw = n
    hbuf = np.empty(ncyc - 1 + n, dtype=np.int32)
    # Slot of output t of column c: (ncyc - 1 - t - c)·C + c (it enters the top of column c
    # at streaming cycle t + c, §C3). Every other slot holds an idle (zero) partial sum.
    pbuf = np.zeros((ncyc + rows) * cols, dtype=proto.dtype)
    for t in range(t_len):
        for c in range(cu):
            d = d0 + c
            pbuf[(ncyc - 1 - t - c) * cols + c] = acc_buf[d, t] if swap_mn else acc_buf[t, d]
    # left[b]: the streaming cycle at which pbuf block b (slots b·C … b·C + C − 1) was in
    # the bottom row, i.e. its partial sums left the array.
    left = np.zeros(ncyc + rows, dtype=np.int64)
    cycle = 0
    start = 0
    events = 0
    first = -1
    for i in range(n_row_folds):
        k0 = i * rows
        # Preload: the stationary tile shifts in from the top, one row per cycle.
        if sw != n:
            sbuf[n:] = sbuf[sw:sw + n]
            sw = n
        for pc in range(rows):
            sw -= cols
            kr = k0 + rows - 1 - pc
            for c in range(cols):
                sbuf[sw + c] = s[kr, d0 + c] if kr < k_total and c < cu else 0
            cycle += 1
        sreg = sbuf[sw:sw + n]
        hbuf[ncyc - 1:] = 0
        start = cycle
        for tau in range(ncyc):
            hw = ncyc - 1 - tau
            # x[k0 + r, t] enters PE(r, 0) at streaming cycle t + r (§C3 skew).
            xo = (i * ncyc + tau) * rows
            for r in range(rows):
                hbuf[hw + r * cols] = xsk[xo + r]
            pw = hw * cols
            hv = hbuf[hw:hw + n]
            pv = pbuf[pw:pw + n]
            if check:
                bad = np.int64(0)
                for q in range(n):
                    v = np.int64(pv[q]) + np.int64(hv[q]) * np.int64(sreg[q])
                    bad |= (v + half) & outside
                if bad != 0:
                    for q in range(n):
                        acc, ovf = accumulate_scalar(
                            np.int64(pv[q]), np.int64(hv[q]) * np.int64(sreg[q]), acc_bits,
                            policy_code,
                        )
                        pv[q] = acc
                        if ovf:
                            events += 1
                            r = q // cols
                            c = q % cols
                            t = tau - r - c
                            k = k0 + r
                            if swap_mn:
                                first = _note_overflow(first, d0 + c, t, k, n_total, k_total)
                            else:
                                first = _note_overflow(first, t, d0 + c, k, n_total, k_total)
                    left[hw + rows - 1] = tau
                    cycle += 1
                    continue
            for q in range(n):
                pv[q] += np.int64(hv[q]) * np.int64(sreg[q])
            left[hw + rows - 1] = tau
            cycle += 1
    # The last k fold's partial sums left the bottom row into the requantization unit.
    for t in range(t_len):
        for c in range(cu):
            d = d0 + c
            b = ncyc - 1 - t - c
            acc = np.int64(pbuf[b * cols + c])
            ch = d if chan_by_col else t
            y = requantize_scalar(
                acc, multiplier[ch], shift[ch], scale_f32[ch], mode_code, rounding_code,
                zero_point, act_min, act_max, out_bits, out_signed, out_wrap,
            )
            v = start + left[b] + 1 + latency
            if swap_mn:
                acc_buf[d, t] = acc
                out[d, t] = y
                valid[d, t] = v
            else:
                acc_buf[t, d] = acc
                out[t, d] = y
                valid[t, d] = v
    stats[j, 0] = cycle
    stats[j, 1] = events
    stats[j, 2] = first


@njit(cache=True)
def _os_tile(
    j, x, xsk, s, rows, cols, check, acc_bits, policy_code, multiplier, shift, scale_f32,
    mode_code, rounding_code, zero_point, act_min, act_max, out_bits, out_signed, out_wrap,
    latency, acc_buf, out, valid, stats, proto,
):
    """os: every fold of column tile ``j`` (columns ``n0 = j·cols …``), m tiles ascending.

    Cycles and ``stats`` as in :func:`_stream_tile`. ``abuf[aw:aw+R·C]`` the stationary
    accumulators (the drain moves the window up one row per cycle, a shift down);
    ``hbuf`` the horizontal registers as in :func:`_stream_tile`; ``vbuf[vw:vw+R·C]`` the
    vertical registers, a window moving down ``C`` per cycle, so each slot of ``vbuf`` is
    one weight travelling down its column (the same stream in every m fold)."""
    half = np.int64(1) << (acc_bits - 1)
    outside = ~((np.int64(1) << acc_bits) - 1)
    m_len, k_total = x.shape
    n_len = s.shape[0]
    n_row_folds = (m_len + rows - 1) // rows
    n0 = j * cols
    cu = min(cols, n_len - n0)
    n = rows * cols
    ncyc = k_total + rows + cols - 2
    # W[k, n0 + c] enters the top of column c at cycle k + c (§C3 os).
    vbuf = np.zeros((ncyc + rows) * cols, dtype=np.int32)
    for c in range(cu):
        for k in range(k_total):
            vbuf[(ncyc - 1 - k - c) * cols + c] = s[n0 + c, k]
    hbuf = np.empty(ncyc - 1 + n, dtype=np.int32)
    abuf = np.zeros(2 * n, dtype=proto.dtype)
    cycle = 0
    events = 0
    first = -1
    for i in range(n_row_folds):
        m0 = i * rows
        av = abuf[n:]
        for r in range(rows):
            for c in range(cols):
                if m0 + r < m_len and c < cu:
                    av[r * cols + c] = acc_buf[m0 + r, n0 + c]
                else:
                    av[r * cols + c] = 0
        hbuf[ncyc - 1:] = 0
        for tau in range(ncyc):
            hw = ncyc - 1 - tau
            # A[m0 + r, k] enters PE(r, 0) at cycle k + r.
            xo = (i * ncyc + tau) * rows
            for r in range(rows):
                hbuf[hw + r * cols] = xsk[xo + r]
            hv = hbuf[hw:hw + n]
            vv = vbuf[hw * cols:hw * cols + n]
            if check:
                bad = np.int64(0)
                for q in range(n):
                    y = np.int64(av[q]) + np.int64(hv[q]) * np.int64(vv[q])
                    bad |= (y + half) & outside
                if bad != 0:
                    for q in range(n):
                        acc, ovf = accumulate_scalar(
                            np.int64(av[q]), np.int64(hv[q]) * np.int64(vv[q]), acc_bits,
                            policy_code,
                        )
                        av[q] = acc
                        if ovf:
                            events += 1
                            r = q // cols
                            c = q % cols
                            first = _note_overflow(
                                first, m0 + r, n0 + c, tau - r - c, n_len, k_total
                            )
                    cycle += 1
                    continue
            for q in range(n):
                av[q] += np.int64(hv[q]) * np.int64(vv[q])
            cycle += 1
        # Drain: accumulators shift down one row per cycle out of the bottom row.
        aw = n
        for dcy in range(rows):
            m = m0 + rows - 1 - dcy
            if m < m_len:
                for c in range(cu):
                    acc = np.int64(abuf[aw + n - cols + c])
                    acc_buf[m, n0 + c] = acc
                    out[m, n0 + c] = requantize_scalar(
                        acc, multiplier[n0 + c], shift[n0 + c], scale_f32[n0 + c], mode_code,
                        rounding_code, zero_point, act_min, act_max, out_bits, out_signed,
                        out_wrap,
                    )
                    valid[m, n0 + c] = cycle + 1 + latency
            aw -= cols
            abuf[aw:aw + cols] = 0
            cycle += 1
    stats[j, 0] = cycle
    stats[j, 1] = events
    stats[j, 2] = first


@njit(cache=True)
def _skew_rows(x, rows, cols):
    """The left-edge input streams of every row fold (§C3 skew), for all column tiles.

    ``x[X, L]``: row ``i·R + r`` is the stream of PE row ``r`` in row fold ``i``, its
    element ``l`` entering PE(r, 0) at cycle ``l + r`` of the fold's ``L + R + C − 2``
    streaming cycles. Returns the flat int32 ``xsk`` with ``xsk[(i·ncyc + e)·R + r]`` the
    value entering row ``r`` at cycle ``e`` (0 outside the stream or beyond ``X``).
    """
    n_rows, length = x.shape
    folds = (n_rows + rows - 1) // rows
    ncyc = length + rows + cols - 2
    xsk = np.zeros(folds * ncyc * rows, dtype=np.int32)
    xf = x.ravel()
    for i in range(folds):
        used = min(rows, n_rows - i * rows)
        for e in range(ncyc):
            # Row r receives x[i·R + r, e − r]: a diagonal of x, one cache line of xsk.
            dst = xsk[(i * ncyc + e) * rows:(i * ncyc + e + 1) * rows]
            src = i * rows * length + e
            for r in range(max(0, e - length + 1), min(used, e + 1)):
                dst[r] = xf[src + r * (length - 1)]
    return xsk


@njit(cache=True)
def _abs_max(arr):
    m = np.int64(0)
    for v in arr.ravel():
        a = abs(np.int64(v))
        if a > m:
            m = a
    return m


@njit(cache=True)
def _prepare(os_mode, x, s, rows, cols, acc_bits, acc_buf):
    """(check, xsk): whether a partial sum might leave the ``acc_bits`` range, and the
    skewed left-edge streams (:func:`_skew_rows`)."""
    k_total = x.shape[1] if os_mode else x.shape[0]
    # No partial sum can leave the acc_bits range if |bias| + K·max|x|·max|s| fits: then
    # the range check is skipped and partial sums are held in int32 (acc_bits <= 32).
    bound = _abs_max(acc_buf) + k_total * _abs_max(x) * _abs_max(s)
    check = bound > (np.int64(1) << (acc_bits - 1)) - 1
    return check, _skew_rows(x, rows, cols)


@njit(cache=True, nogil=True)
def _run_tile(
    j, os_mode, check, swap_mn, chan_by_col, x, xsk, s, rows, cols, acc_bits, policy_code,
    multiplier, shift, scale_f32, mode_code, rounding_code, zero_point, act_min, act_max,
    out_bits, out_signed, out_wrap, latency, acc_buf, out, valid, stats,
):
    """Column tile ``j`` with int64 partial sums if ``check`` else int32 (no GIL held)."""
    p32 = np.zeros(1, dtype=np.int32)
    p64 = np.zeros(1, dtype=np.int64)
    if os_mode:
        if check:
            _os_tile(j, x, xsk, s, rows, cols, check, acc_bits, policy_code, multiplier,
                     shift, scale_f32, mode_code, rounding_code, zero_point, act_min,
                     act_max, out_bits, out_signed, out_wrap, latency, acc_buf, out, valid,
                     stats, p64)
        else:
            _os_tile(j, x, xsk, s, rows, cols, check, acc_bits, policy_code, multiplier,
                     shift, scale_f32, mode_code, rounding_code, zero_point, act_min,
                     act_max, out_bits, out_signed, out_wrap, latency, acc_buf, out, valid,
                     stats, p32)
    elif check:
        _stream_tile(j, x, xsk, s, rows, cols, check, acc_bits, policy_code, swap_mn,
                     chan_by_col, multiplier, shift, scale_f32, mode_code, rounding_code,
                     zero_point, act_min, act_max, out_bits, out_signed, out_wrap,
                     latency, acc_buf, out, valid, stats, p64)
    else:
        _stream_tile(j, x, xsk, s, rows, cols, check, acc_bits, policy_code, swap_mn,
                     chan_by_col, multiplier, shift, scale_f32, mode_code, rounding_code,
                     zero_point, act_min, act_max, out_bits, out_signed, out_wrap,
                     latency, acc_buf, out, valid, stats, p32)


@njit(cache=True)
def _lay_out_tiles(os_mode, swap_mn, cols, d_len, latency, valid, stats):
    """Column tiles one after the other (§C2): shift each tile's valid cycles by the cycles
    of the tiles before it; (cycles + L, events, first overflow)."""
    n_tiles = stats.shape[0]
    start = np.zeros(n_tiles, dtype=np.int64)
    cycle = 0
    events = 0
    first = -1
    for j in range(n_tiles):
        start[j] = cycle
        cycle += stats[j, 0]
        events += stats[j, 1]
        if stats[j, 2] >= 0 and (first < 0 or stats[j, 2] < first):
            first = stats[j, 2]
    if os_mode or not swap_mn:  # tile j holds columns [j·C, (j+1)·C) of valid[M, N]
        for m in range(valid.shape[0]):
            for d in range(d_len):
                valid[m, d] += start[d // cols]
    else:  # is: tile j holds rows [j·C, (j+1)·C)
        for d in range(d_len):
            for t in range(valid.shape[1]):
                valid[d, t] += start[d // cols]
    return cycle + latency, events, first


def systolic_run(
    os_mode,
    swap_mn,
    chan_by_col,
    x,
    s,
    rows,
    cols,
    acc_bits,
    policy_code,
    multiplier,
    shift,
    scale_f32,
    mode_code,
    rounding_code,
    zero_point,
    act_min,
    act_max,
    out_bits,
    out_signed,
    out_wrap,
    latency,
    acc_buf,
    out,
    valid,
):
    """Step one GEMM through an ``rows × cols`` array, cycle by cycle (§C9 stepped).

    Operands are int32 arrays. Stationary-operand mode (``os_mode`` False; ws and is):
    ``x[K, T]`` is the streamed operand (row ``r`` of a fold receives ``x[k0 + r, t]``),
    ``s[K, D]`` the stationary one; output ``(t, d)`` is ``(m, n) = (d, t)`` if ``swap_mn``
    else ``(t, d)``, its requantization channel ``d`` if ``chan_by_col`` else ``t``.
    Output-stationary mode (``os_mode`` True): ``x = A[M, K]`` enters from the left (row
    ``r`` reads ``x[m0 + r, k]``), ``s = Wᵀ[N, K]`` from the top (column ``c`` reads
    ``s[n0 + c, k]``); channel is ``n``. In every mode ``acc_buf``, ``out`` and ``valid``
    are ``[M, N]`` and ``acc_buf`` holds the folded bias of each output's channel on entry.

    Fills ``acc_buf`` with the final accumulators, ``out`` with the requantized codes and
    ``valid`` with the cycle each output becomes valid (§C4). Returns
    ``(cycles, overflow_events, first_overflow)``: ``cycles`` as in §C5, the number of
    accumulator additions that left the ``acc_bits`` range, and the (m, n, k) row-major
    linear index of the first such addition (-1 if none). Column tiles run in parallel
    (:func:`hwsim.exact.matmul.parallel_map`, one task per tile, the kernel releasing the
    GIL) and are laid end to end in time afterwards.
    """
    check, xsk = _prepare(os_mode, x, s, rows, cols, acc_bits, acc_buf)
    d_len = s.shape[0] if os_mode else s.shape[1]
    n_tiles = (d_len + cols - 1) // cols
    stats = np.zeros((n_tiles, 3), dtype=np.int64)

    def tile(j: int) -> None:
        _run_tile(j, os_mode, check, swap_mn, chan_by_col, x, xsk, s, rows, cols, acc_bits,
                  policy_code, multiplier, shift, scale_f32, mode_code, rounding_code,
                  zero_point, act_min, act_max, out_bits, out_signed, out_wrap, latency,
                  acc_buf, out, valid, stats)

    # Column tiles are independent (§C2: each has its own outputs and k folds).
    parallel_map(tile, range(n_tiles))
    return _lay_out_tiles(os_mode, swap_mn, cols, d_len, latency, valid, stats)


@njit(cache=True)
def sequential_accumulate(a, w, bias, ms, ns, acc_bits, policy_code, acc_out, events_out):
    """arithmetic.md §7 for the outputs ``(ms[i], ns[i])`` of ``bias + a @ w``.

    ``acc = bias[n]``, then for ``k = 0 … K-1``: ``acc, ovf = accumulate_scalar(acc,
    a[m, k]·w[k, n])``. Writes ``acc_out[i]`` and ``events_out[i]`` (overflowing additions)
    and returns the (m, n, k) row-major linear index of the first overflow (-1: none).
    """
    k_total = a.shape[1]
    n_total = w.shape[1]
    first = -1
    for i in range(ms.shape[0]):
        m = ms[i]
        n = ns[i]
        acc = bias[n]
        count = 0
        for k in range(k_total):
            acc, ovf = accumulate_scalar(acc, a[m, k] * w[k, n], acc_bits, policy_code)
            if ovf:
                count += 1
                first = _note_overflow(first, m, n, k, n_total, k_total)
        acc_out[i] = acc
        events_out[i] = count
    return first


@njit(cache=True)
def requantize_columns(
    acc, multiplier, shift, scale_f32, mode_code, rounding_code, zero_point, act_min, act_max,
    out_bits, out_signed, out_wrap, out,
):
    """arithmetic.md §8 on every ``acc[m, n]`` with the parameters of channel ``n``
    (:func:`hwsim.arith.jit.requantize_scalar`), written to ``out[m, n]``."""
    for m in range(acc.shape[0]):
        for n in range(acc.shape[1]):
            out[m, n] = requantize_scalar(
                acc[m, n], multiplier[n], shift[n], scale_f32[n], mode_code, rounding_code,
                zero_point, act_min, act_max, out_bits, out_signed, out_wrap,
            )
