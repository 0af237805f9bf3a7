"""cocotb bench for hwsim_pe against hwsim.arith.accumulate (specs/arithmetic.md §7, rtl.md §R2).

Driver: a seeded stream of dot products (random operands and biases, plus corners: runs of
(-128)·(-128) and of the largest products, bias extremes, exact wrap / saturate boundaries,
load-only and hold cycles) written to ``pe_vectors.hex`` and streamed one per clock with
idle gaps. Monitor: samples all six PE instances of ``tb_pe`` after every clock.
Model: :func:`hwsim.arith.accumulate` on every prefix of every dot product. Checker:
accumulator, per-addition overflow flag and sticky flag equal, tolerance 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cocotb
import numpy as np
from tbkit import (
    checker_from_env,
    drive_bursts,
    idle_gap_bursts,
    pack_fields,
    sample_each_cycle,
    signed_field,
    start_stream,
    write_hex,
)

from hwsim.arith import accumulate, wrap_to_bits

#: tb_pe instances: (A_SIGNED, W_SIGNED, ACC_BITS, policy), in mon-bus order.
INSTANCES: tuple[tuple[bool, bool, int, str], ...] = (
    (True, True, 32, "wrap"),
    (True, True, 32, "saturate"),
    (True, True, 18, "wrap"),
    (True, True, 18, "saturate"),
    (False, True, 20, "saturate"),
    (False, False, 16, "wrap"),
)
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


@dataclass(frozen=True)
class PeStream:
    """One vector per clock: control bits, bias and operand bytes; ``mac_row`` maps every
    MAC vector to its row of the prefix staircase (-1 for load-only / hold vectors)."""

    load: np.ndarray
    en: np.ndarray
    bias: np.ndarray
    a: np.ndarray
    w: np.ndarray
    seg: np.ndarray


def _segments(
    rng: np.random.Generator, min_macs: int
) -> list[tuple[int, list[tuple[int, int]], bool]]:
    """(bias, [(a_byte, w_byte), ...], starts_with_load_only) per dot product."""
    segs: list[tuple[int, list[tuple[int, int]], bool]] = []
    # Corners first (§7.3 boundaries), then random dot products until min_macs MACs.
    segs.append((0, [(0x80, 0x80)] * 300, False))                 # run of (-128)·(-128)
    segs.append((INT32_MAX - 3 * 16384, [(0x80, 0x80)] * 10, False))
    segs.append((INT32_MIN + 1000, [(0x7F, 0x80)] * 10, False))   # most negative s·s product
    segs.append((0, [(0xFF, 0x7F)] * 40, False))                  # largest u·s product
    segs.append((0, [(0xFF, 0xFF)] * 40, False))                  # largest u·u product
    segs.append((0, [(0xFF, 0x80)] * 40, False))                  # most negative u·s product
    segs.append((INT32_MAX - 16384, [(0x80, 0x80), (1, 1), (1, 1)], False))  # exact max, then +1
    segs.append((INT32_MIN + 16256, [(0x7F, 0x80), (1, 0xFF), (1, 0xFF)], False))  # exact min
    segs.append(((1 << 17) - 1 - 16384, [(0x80, 0x80), (1, 1), (0x80, 0x7F)], False))  # acc18 max
    segs.append((-(1 << 17) + 16256, [(0x7F, 0x80), (1, 0xFF), (0x80, 0x80)], True))  # acc18 min
    for b in (INT32_MAX, INT32_MIN, (1 << 17) - 1, -(1 << 17), (1 << 19) - 1, -(1 << 19),
              (1 << 15) - 1, -(1 << 15), -1, 1):
        segs.append((b, [(0x80, 0x80)] * 6 + [(0x7F, 0x80)] * 12 + [(0x80, 0x80)] * 6, False))
        segs.append((b, [], True))                                 # load only
    n = 0  # random MACs so far (the corners above come on top of min_macs)
    extremes = np.array([0x80, 0x7F, 0xFF, 0x00, 0x01, 0x81], dtype=np.int64)
    bias_corners = np.array(
        [INT32_MAX, INT32_MIN, (1 << 17) - 1, -(1 << 17), (1 << 19) - 1, -(1 << 19),
         (1 << 15) - 1, -(1 << 15), 0, -1], dtype=np.int64)
    while n < min_macs:
        k = int(rng.integers(1, 49))
        r = rng.random()
        if r < 0.6:
            bias = int(rng.integers(INT32_MIN, INT32_MAX, endpoint=True))
        elif r < 0.8:
            bias = int(rng.integers(-(1 << 12), 1 << 12))
        else:
            bias = int(rng.choice(bias_corners))
        if rng.random() < 0.1:
            ops = rng.choice(extremes, size=(k, 2))
        else:
            ops = rng.integers(0, 256, size=(k, 2))
        segs.append((bias, [(int(x), int(y)) for x, y in ops], bool(rng.random() < 0.1)))
        n += k
    return segs


def make_stream(
    seed: int, min_macs: int
) -> tuple[PeStream, list[tuple[int, list[tuple[int, int]]]]]:
    """Vectors for the whole run plus the segment list the model evaluates."""
    rng = np.random.default_rng(seed)
    segs = _segments(rng, min_macs)
    rows: list[tuple[int, int, int, int, int, int]] = []  # (load, en, bias, a, w, segment)
    for s, (b, ops, load_only) in enumerate(segs):
        first = True
        if load_only:
            rows.append((1, 0, b, 0, 0, s))
            first = False
        for x, y in ops:
            if not first and rng.random() < 0.03:  # hold cycle inside a dot product
                rows.append((0, 0, 0, 0, 0, s))
            rows.append((1 if first else 0, 1, b if first else 0, x, y, s))
            first = False
    cols = np.array(rows, dtype=np.int64).T
    stream = PeStream(*cols)
    return stream, [(b, ops) for b, ops, _ in segs]


def model(
    stream: PeStream,
    segs: list[tuple[int, list[tuple[int, int]]]],
    instances: tuple[tuple[bool, bool, int, str], ...] = INSTANCES,
) -> np.ndarray:
    """Expected (acc, overflow, sticky) after every vector, per instance: shape (V, I, 3).

    Every MAC vector is the last step of a prefix of its dot product; all prefixes of all
    dot products are evaluated by hwsim.arith.accumulate (zero-padded prefixes: adding 0
    never overflows), in two groups (short and long dot products) to bound memory.
    """
    n_vec = len(stream.load)
    out = np.zeros((n_vec, len(instances), 3), dtype=np.int64)
    mac_idx = np.flatnonzero(stream.en)
    lengths = np.array([len(ops) for _, ops in segs])
    step = np.zeros(n_vec, dtype=np.int64)  # position of each MAC vector in its dot product
    for s_id in np.unique(stream.seg[mac_idx]):
        idx = mac_idx[stream.seg[mac_idx] == s_id]
        step[idx] = np.arange(len(idx))
    for i, (a_signed, w_signed, bits, policy) in enumerate(instances):
        av = np.where(a_signed & (stream.a >= 128), stream.a - 256, stream.a)
        wv = np.where(w_signed & (stream.w >= 128), stream.w - 256, stream.w)
        prod = av * wv
        biases = wrap_to_bits(np.array([b for b, _ in segs], dtype=np.int64), bits)
        for long_group in (False, True):
            sel_segs = np.flatnonzero((lengths > 64) == long_group)
            sel_segs = sel_segs[lengths[sel_segs] > 0]
            if not len(sel_segs):
                continue
            lmax = int(lengths[sel_segs].max())
            sel = mac_idx[np.isin(stream.seg[mac_idx], sel_segs)]
            # Padded product matrix per segment, then one staircase row per MAC vector.
            seg_pos = {int(s): r for r, s in enumerate(sel_segs)}
            rows_of = np.array([seg_pos[int(s)] for s in stream.seg[sel]])
            pm = np.zeros((len(sel_segs), lmax), dtype=np.int64)
            pm[rows_of, step[sel]] = prod[sel]
            stair = pm[rows_of] * (np.arange(lmax)[None, :] <= step[sel][:, None])
            acc, ev = accumulate(biases[sel_segs][rows_of], stair, bits, policy)
            stair_prev = stair * (np.arange(lmax)[None, :] < step[sel][:, None])
            _, ev_prev = accumulate(biases[sel_segs][rows_of], stair_prev, bits, policy)
            out[sel, i, 0] = acc
            out[sel, i, 1] = ev - ev_prev
            out[sel, i, 2] = ev > 0
        # Load-only vectors: acc = bias, flags cleared. Hold vectors: previous state, ovf 0.
        lo = np.flatnonzero((stream.load == 1) & (stream.en == 0))
        out[lo, i, 0] = wrap_to_bits(stream.bias[lo], bits)
        hold = np.flatnonzero((stream.load == 0) & (stream.en == 0))
        for v in hold:
            out[v, i, 0] = out[v - 1, i, 0]
            out[v, i, 2] = out[v - 1, i, 2]
    return out


async def _pe_stream(dut, fault: str) -> None:
    seed = int(os.environ.get("HWSIM_RTL_SEED", "2026"))
    min_macs = int(os.environ.get("HWSIM_RTL_VECTORS", "100000"))
    stream, segs = make_stream(seed, min_macs)
    instances = INSTANCES
    if fault == "policy_swapped":  # deliberately wrong model (negative test, rtl.md §R7)
        swap = {"wrap": "saturate", "saturate": "wrap"}
        instances = tuple((a, w, b, swap[p]) for a, w, b, p in INSTANCES)
    expected = model(stream, segs, instances)
    n_vec = len(stream.load)
    words = pack_fields([
        (stream.load, 1), (stream.en, 1), (stream.bias, 32), (stream.a, 8), (stream.w, 8)
    ])
    write_hex(Path("pe_vectors.hex"), words, 50)

    check = checker_from_env("hwsim_pe")
    check.extra["vectors"] = n_vec
    check.extra["macs"] = int(stream.en.sum())

    await start_stream(dut, n_vec)

    bursts = idle_gap_bursts(np.random.default_rng(seed + 1), n_vec)
    total_cycles = sum(r + g for r, g in bursts) + 2

    state = {"last": -1}

    def probe(cycle: int) -> None:
        if int(dut.applied.value):
            v = int(dut.idx.value) - 1
            state["last"] = v
        else:
            v = state["last"]
            if v < 0:
                return
        mon = dut.mon.value.to_unsigned()
        for i in range(len(INSTANCES)):
            base = 34 * i
            acc = signed_field(mon, base, 32)
            ovf = (mon >> (base + 32)) & 1
            st = (mon >> (base + 33)) & 1
            exp_ovf = int(expected[v, i, 1]) if int(dut.applied.value) else 0
            check.compare(f"vec {v} inst {i} acc", int(expected[v, i, 0]), acc)
            check.compare(f"vec {v} inst {i} overflow", exp_ovf, ovf)
            check.compare(f"vec {v} inst {i} sticky", int(expected[v, i, 2]), st)

    drv = cocotb.start_soon(drive_bursts(dut, bursts))
    await sample_each_cycle(dut, total_cycles, probe)
    await drv
    check.extra["applied"] = state["last"] + 1
    if state["last"] + 1 != n_vec:
        raise AssertionError(f"only {state['last'] + 1} of {n_vec} vectors were applied")
    check.finish()


@cocotb.test()
async def pe_random_and_corners(dut) -> None:
    """§7: >= 100,000 MACs on six PE variants equal hwsim.arith.accumulate."""
    await _pe_stream(dut, os.environ.get("HWSIM_RTL_FAULT", ""))
