"""Numba kernels of the cycle model: the cycle-stepped systolic array and the sequential
accumulator used by fast mode when a partial sum may overflow.

Two kernels, compiled once each (``cache=True``) for one signature (int64 operands):

* :func:`systolic_run` steps every cycle of every fold of one GEMM (specs/cycle_model.md
  §C3–§C5): stationary registers preloaded from the top one row per cycle, the moving
  operands shifted one PE per cycle from the array edges with the §C3 skew, partial sums
  passed down (``ws``/``is``) or accumulators held in place then drained (``os``), every
  accumulator addition checked against ``acc_bits`` with the §7 policy
  (:func:`hwsim.arith.jit.accumulate_scalar`), and every final accumulator sent through
  :func:`hwsim.arith.jit.requantize_scalar` with its latency.
* :func:`sequential_accumulate` is arithmetic.md §7 literally, one output at a time.

The dataflow is a parameter (how operands map onto rows, columns and time), chosen by the
strategy objects in :mod:`hwsim.sim.dataflows`; the kernel itself has one state update.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hwsim.arith.jit import accumulate_scalar, requantize_scalar

__all__ = ["systolic_run", "sequential_accumulate", "requantize_columns"]


@njit(cache=True)
def _note_overflow(first, m, n, k, n_total, k_total):
    """Smaller of ``first`` and the (m, n, k) row-major linear index (first = -1: none)."""
    lin = (m * n_total + n) * k_total + k
    if first < 0 or lin < first:
        return lin
    return first


@njit(cache=True)
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
    """Step one GEMM through an ``rows × cols`` array, cycle by cycle.

    Operands are int32 arrays laid out so that every array edge reads a contiguous stream.
    Stationary-operand mode (``os_mode`` False; ws and is): ``x[K, T]`` is the streamed
    operand (row ``r`` of a fold receives ``x[k0 + r, t]``), ``s[K, D]`` the stationary one,
    ``acc_buf[D, T]`` holds the accumulators, initialised by the caller with the folded bias
    of each output's channel; ``out``/``valid`` are ``[D, T]`` (so each column streams
    through one contiguous row of the buffer). Output ``(t, d)`` is
    ``(m, n) = (d, t)`` if ``swap_mn`` else ``(t, d)``; its requantization channel is ``d``
    if ``chan_by_col`` else ``t``.

    Output-stationary mode (``os_mode`` True): ``x = A[M, K]`` enters from the left (row
    ``r`` reads ``x[m0 + r, k]``), ``s = Wᵀ[N, K]`` from the top (column ``c`` reads
    ``s[n0 + c, k]``), ``acc_buf[M, N]`` holds the bias per output (row-broadcast
    by the caller); ``out``/``valid`` are ``[M, N]``; channel is ``n``.

    Fills ``acc_buf`` with the final accumulators, ``out`` with the requantized codes and
    ``valid`` with the cycle each output becomes valid (§C4). Returns
    ``(cycles, overflow_events, first_overflow)``: ``cycles`` as in §C5, the number of
    accumulator additions that left the ``acc_bits`` range, and the (m, n, k) row-major
    linear index of the first such addition (-1 if none).
    """
    # (v + half) & outside != 0  <=>  v outside [-half, half): a vectorisable range check.
    half = np.int64(1) << (acc_bits - 1)
    outside = ~((np.int64(1) << acc_bits) - 1)
    k_total = s.shape[0] if not os_mode else x.shape[1]
    # Operand registers are 32-bit (operands have at most 16 bits): the int64 product of two
    # sign-extended int32 values vectorises (vpmuldq); partial sums stay int64 (exact).
    h_old = np.zeros((rows, cols), dtype=np.int32)
    h_new = np.zeros((rows, cols), dtype=np.int32)
    # p_*[r + 1] is the partial sum leaving PE row r; p_old[0] is the column-top input.
    p_old = np.zeros((rows + 1, cols), dtype=np.int64)
    p_new = np.zeros((rows + 1, cols), dtype=np.int64)
    sreg = np.zeros((rows, cols), dtype=np.int32)
    v_old = np.zeros((rows, cols), dtype=np.int32)
    v_new = np.zeros((rows, cols), dtype=np.int32)
    acc_reg = np.zeros((rows, cols), dtype=np.int64)
    top = np.zeros(cols, dtype=np.int64)
    events = 0
    first = -1
    cycle = 0
    if not os_mode:
        t_len = x.shape[1]
        d_len = s.shape[1]
        n_total = t_len if swap_mn else d_len
        n_col_folds = (d_len + cols - 1) // cols
        n_row_folds = (k_total + rows - 1) // rows
        for j in range(n_col_folds):
            d0 = j * cols
            for i in range(n_row_folds):
                k0 = i * rows
                last_fold = i == n_row_folds - 1
                # Preload: the stationary tile shifts in from the top, one row per cycle.
                for p in range(rows):
                    for r in range(rows - 1, 0, -1):
                        for c in range(cols):
                            sreg[r, c] = sreg[r - 1, c]
                    kr = k0 + rows - 1 - p
                    for c in range(cols):
                        if kr < k_total and d0 + c < d_len:
                            sreg[0, c] = s[kr, d0 + c]
                        else:
                            sreg[0, c] = 0
                    cycle += 1
                h_old[:, :] = 0
                p_old[:, :] = 0
                start = cycle
                for tau in range(t_len + rows + cols - 2):
                    for c in range(cols):
                        t = tau - c
                        if 0 <= t < t_len and d0 + c < d_len:
                            p_old[0, c] = acc_buf[d0 + c, t]
                        else:
                            p_old[0, c] = 0
                    for r in range(rows):
                        t = tau - r
                        k = k0 + r
                        if 0 <= t < t_len and k < k_total:
                            h_new[r, 0] = x[k, t]
                        else:
                            h_new[r, 0] = 0
                        for c in range(1, cols):
                            h_new[r, c] = h_old[r, c - 1]
                        bad = np.int64(0)
                        for c in range(cols):
                            v = p_old[r, c] + np.int64(h_new[r, c]) * np.int64(sreg[r, c])
                            p_new[r + 1, c] = v
                            bad |= (v + half) & outside
                        if bad != 0:
                            for c in range(cols):
                                acc, ovf = accumulate_scalar(
                                    p_old[r, c], np.int64(h_new[r, c]) * np.int64(sreg[r, c]),
                                    acc_bits, policy_code,
                                )
                                p_new[r + 1, c] = acc
                                if ovf:
                                    events += 1
                                    t = tau - r - c
                                    d = d0 + c
                                    if swap_mn:
                                        first = _note_overflow(first, d, t, k, n_total, k_total)
                                    else:
                                        first = _note_overflow(first, t, d, k, n_total, k_total)
                    # The bottom row hands finished partial sums to the accumulator buffer
                    # and, in the last k fold, to the requantization unit.
                    for c in range(cols):
                        t = tau - (rows - 1) - c
                        d = d0 + c
                        if 0 <= t < t_len and d < d_len:
                            acc = p_new[rows, c]
                            acc_buf[d, t] = acc
                            if last_fold:
                                ch = d if chan_by_col else t
                                out[d, t] = requantize_scalar(
                                    acc, multiplier[ch], shift[ch], scale_f32[ch], mode_code,
                                    rounding_code, zero_point, act_min, act_max, out_bits,
                                    out_signed, out_wrap,
                                )
                                valid[d, t] = start + tau + 1 + latency
                    h_old, h_new = h_new, h_old
                    p_old, p_new = p_new, p_old
                    cycle += 1
    else:
        m_len = x.shape[0]
        n_len = s.shape[0]
        n_col_folds = (n_len + cols - 1) // cols
        n_row_folds = (m_len + rows - 1) // rows
        for j in range(n_col_folds):
            n0 = j * cols
            for i in range(n_row_folds):
                m0 = i * rows
                for r in range(rows):
                    for c in range(cols):
                        if m0 + r < m_len and n0 + c < n_len:
                            acc_reg[r, c] = acc_buf[m0 + r, n0 + c]
                        else:
                            acc_reg[r, c] = 0
                h_old[:, :] = 0
                v_old[:, :] = 0
                for tau in range(k_total + rows + cols - 2):
                    for r in range(rows):
                        k = tau - r
                        if 0 <= k < k_total and m0 + r < m_len:
                            h_new[r, 0] = x[m0 + r, k]
                        else:
                            h_new[r, 0] = 0
                        for c in range(1, cols):
                            h_new[r, c] = h_old[r, c - 1]
                    for c in range(cols):
                        k = tau - c
                        if 0 <= k < k_total and n0 + c < n_len:
                            v_new[0, c] = s[n0 + c, k]
                        else:
                            v_new[0, c] = 0
                    for r in range(1, rows):
                        for c in range(cols):
                            v_new[r, c] = v_old[r - 1, c]
                    for r in range(rows):
                        bad = np.int64(0)
                        for c in range(cols):
                            v = acc_reg[r, c] + np.int64(h_new[r, c]) * np.int64(v_new[r, c])
                            top[c] = v
                            bad |= (v + half) & outside
                        if bad != 0:
                            for c in range(cols):
                                acc, ovf = accumulate_scalar(
                                    acc_reg[r, c], np.int64(h_new[r, c]) * np.int64(v_new[r, c]),
                                    acc_bits, policy_code,
                                )
                                top[c] = acc
                                if ovf:
                                    events += 1
                                    first = _note_overflow(
                                        first, m0 + r, n0 + c, tau - r - c, n_len, k_total
                                    )
                        for c in range(cols):
                            acc_reg[r, c] = top[c]
                    h_old, h_new = h_new, h_old
                    v_old, v_new = v_new, v_old
                    cycle += 1
                # Drain: accumulators shift down one row per cycle out of the bottom row.
                for dcy in range(rows):
                    r_orig = rows - 1 - dcy
                    m = m0 + r_orig
                    for c in range(cols):
                        n = n0 + c
                        if m < m_len and n < n_len:
                            acc = acc_reg[rows - 1, c]
                            acc_buf[m, n] = acc
                            out[m, n] = requantize_scalar(
                                acc, multiplier[n], shift[n], scale_f32[n], mode_code,
                                rounding_code, zero_point, act_min, act_max, out_bits,
                                out_signed, out_wrap,
                            )
                            valid[m, n] = cycle + 1 + latency
                    for r in range(rows - 1, 0, -1):
                        for c in range(cols):
                            acc_reg[r, c] = acc_reg[r - 1, c]
                    for c in range(cols):
                        acc_reg[0, c] = 0
                    cycle += 1
    return cycle + latency, events, first


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
