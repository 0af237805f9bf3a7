"""cocotb bench for hwsim_requant against hwsim.arith.requantize (arithmetic.md §6, §8; rtl.md §R3).

Driver: seeded blocks of vectors, each block one RequantConfig (mode tflite / tflite_single /
dyadic / custom, every rounding mode, saturate or wrap output) and one zero point / clamp
range per output format; per vector a random accumulator (uniform, log-uniform, extremes,
constructed ties), multiplier and shift (every shift of the mode's range). Written to
``requant_vectors.hex`` and streamed one per clock with idle gaps. Monitor: the four units'
outputs (int8, uint8, int4, int32) and the latency of each result. Model:
:func:`hwsim.arith.requantize` with one channel per vector. Checker: equal, tolerance 0,
latency exactly 3 cycles.
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

from hwsim.arith import RequantConfig, RequantParams, requantize

#: tb_requant units: (out_bits, out_signed), in vector-field and monitor order.
OUTS: tuple[tuple[int, bool], ...] = ((8, True), (8, False), (4, True), (32, True))
MON_LSB: tuple[int, ...] = (0, 8, 16, 20)
LATENCY = 3
MODES = ("tflite", "tflite_single", "dyadic", "custom")
ROUNDINGS = ("half_up", "half_away", "half_even", "floor", "toward_zero")
#: Deliberately wrong rounding used by the negative test (rtl.md §R7).
SWAPPED = {"half_up": "half_away", "half_away": "half_even", "half_even": "half_up",
           "floor": "toward_zero", "toward_zero": "floor"}


@dataclass(frozen=True)
class Block:
    """Vectors sharing one config and, per output format, one zero point and clamp range."""

    mode: str
    rounding: str
    wrap: bool
    bits: int
    acc: np.ndarray
    mult: np.ndarray
    shift: np.ndarray
    out_cfg: tuple[tuple[int, int, int], ...]   # (zero_point, act_min, act_max) per OUTS


def _acc_values(rng: np.random.Generator, n: int) -> np.ndarray:
    kind = rng.integers(0, 4, size=n)
    uni = rng.integers(-(1 << 31), 1 << 31, size=n)
    mag = np.floor(2.0 ** rng.uniform(0, 31, size=n)).astype(np.int64)
    logu = np.where(rng.random(n) < 0.5, -mag, mag)
    small = rng.integers(-1000, 1001, size=n)
    ext = rng.choice(np.array([-(1 << 31), (1 << 31) - 1, 0, 1, -1, -(1 << 30), 1 << 30]), n)
    return np.select([kind == 0, kind == 1, kind == 2], [uni, logu, small], ext).astype(np.int64)


def _out_cfg(rng: np.random.Generator, bits: int, signed: bool) -> tuple[int, int, int]:
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    r = rng.random()
    zp = 0 if r < 0.2 else (int(rng.choice([lo, hi])) if r < 0.3 else int(rng.integers(lo, hi + 1)))
    if rng.random() < 0.6:
        return zp, lo, hi
    a, b = sorted(int(v) for v in rng.integers(lo, hi + 1, size=2))
    return zp, a, b


def make_blocks(seed: int, min_vectors: int) -> list[Block]:
    """Seeded blocks until ``min_vectors`` vectors; every mode's shift range is covered."""
    rng = np.random.default_rng(seed)
    blocks: list[Block] = []
    n = 0
    while n < min_vectors:
        mode = MODES[int(rng.integers(0, 4))]
        size = int(rng.integers(200, 801))
        tfl = mode.startswith("tflite")
        bits = 31 if tfl else int(rng.integers(1, 32))
        rounding = ROUNDINGS[int(rng.integers(0, 5))]
        wrap = mode != "dyadic" and bool(rng.random() < 0.4)
        acc = _acc_values(rng, size)
        if tfl:
            mult = np.select(
                [rng.random(size) < 0.6, rng.random(size) < 0.5],
                [rng.integers(1 << 30, 1 << 31, size=size), np.full(size, 1 << 30)],
                rng.integers(0, 1 << 31, size=size),
            ).astype(np.int64)
            s_lo = 1
        else:
            mult = rng.integers(0, 1 << bits, size=size).astype(np.int64)
            s_lo = 0
        # Half the shifts uniform over the whole range, half near the product's magnitude
        # so that results land around the output range (rounding, ties, clamping).
        mag = np.log2(np.maximum(np.abs(acc * mult).astype(np.float64), 1.0))
        near = np.floor(mag).astype(np.int64) + 1 - rng.integers(-2, 14, size=size)
        shift = np.where(rng.random(size) < 0.5, rng.integers(s_lo, 63, size=size), near)
        shift = np.clip(shift, s_lo, 62).astype(np.int64)
        # Constructed exact ties of the (first) rounding: acc·m ≡ 2^(shift−1) mod 2^shift.
        tie = (rng.random(size) < 0.15) & (mult > 0) & (shift >= 1)
        if tfl:
            tie &= False
        for i in np.flatnonzero(tie):
            m = int(mult[i])
            tz = (m & -m).bit_length() - 1
            p = int(shift[i]) - 1 - tz
            if 0 <= p <= 29:
                odd = 2 * int(rng.integers(0, 1 << (29 - p))) + 1
                acc[i] = odd << p if rng.random() < 0.5 else -(odd << p)
        cfgs = tuple(_out_cfg(rng, b, s) for b, s in OUTS)
        blocks.append(Block(mode, rounding, wrap, bits, acc, mult, shift, cfgs))
        n += size
    return blocks


def model(blocks: list[Block], fault: str = "") -> np.ndarray:
    """Expected output codes, shape (vectors, len(OUTS)), by hwsim.arith.requantize."""
    rows = []
    for b in blocks:
        rounding = SWAPPED[b.rounding] if fault == "rounding_swapped" else b.rounding
        cfg = RequantConfig(
            mode=b.mode, multiplier_bits=b.bits, rounding=rounding, shift_min=0, shift_max=62,
            output_overflow="wrap" if b.wrap else "saturate",
        )
        cols = []
        for (ob, osg), (zp, lo, hi) in zip(OUTS, b.out_cfg, strict=True):
            params = RequantParams(
                config=cfg, multiplier=b.mult, shift=b.shift,
                scale_f32=np.ldexp(b.mult.astype(np.float64), -b.shift).astype(np.float32),
                zero_point=zp, out_bits=ob, out_signed=osg, act_min=lo, act_max=hi,
            )
            cols.append(requantize(b.acc, params, channel_axis=-1))
        rows.append(np.stack(cols, axis=1))
    return np.concatenate(rows, axis=0)


def vector_words(blocks: list[Block]) -> list[int]:
    """The 232-bit tb_requant vector words (layout in tests/rtl/hdl/tb_requant.v)."""
    mode_code = {"tflite": 0, "tflite_single": 1, "dyadic": 3, "custom": 4}
    words: list[int] = []
    for b in blocks:
        n = len(b.acc)
        fields = [
            (b.acc, 32), (b.mult, 31), (b.shift, 6),
            (np.full(n, mode_code[b.mode]), 3), (np.full(n, ROUNDINGS.index(b.rounding)), 3),
            (np.full(n, int(b.wrap)), 1),
        ]
        for (ob, _), cfg in zip(OUTS, b.out_cfg, strict=True):
            fields += [(np.full(n, v), ob) for v in cfg]
        words += pack_fields(fields)
    return words


def coverage(blocks: list[Block]) -> dict[str, object]:
    """What the stream exercises: shifts per mode, rounding modes, exact ties, vectors."""
    shifts: dict[str, set[int]] = {m: set() for m in MODES}
    roundings: set[tuple[str, str]] = set()
    ties = 0
    for b in blocks:
        shifts[b.mode].update(int(s) for s in b.shift)
        if b.mode in ("dyadic", "custom"):
            roundings.add((b.mode, b.rounding))
        p = [int(a) * int(m) for a, m in zip(b.acc, b.mult, strict=True)]
        ties += sum(1 for v, s in zip(p, b.shift, strict=True)
                    if s > 0 and v % (1 << int(s)) == 1 << (int(s) - 1))
    return {
        "shifts": {m: len(s) for m, s in shifts.items()},
        "rounding_pairs": len(roundings),
        "ties": ties,
        "vectors": sum(len(b.acc) for b in blocks),
    }


async def _requant_stream(dut, fault: str) -> None:
    seed = int(os.environ.get("HWSIM_RTL_SEED", "2026"))
    min_vec = int(os.environ.get("HWSIM_RTL_VECTORS", "100000"))
    blocks = make_blocks(seed, min_vec)
    expected = model(blocks, fault)
    n_vec = expected.shape[0]
    write_hex(Path("requant_vectors.hex"), vector_words(blocks), 232)

    check = checker_from_env("hwsim_requant")
    check.extra.update(coverage(blocks))
    check.extra["clamped"] = int(sum(
        np.sum((expected[o:o + len(b.acc), i] == b.out_cfg[i][1])
               | (expected[o:o + len(b.acc), i] == b.out_cfg[i][2]))
        for o, b in zip(np.cumsum([0] + [len(b.acc) for b in blocks[:-1]]), blocks, strict=True)
        for i in range(len(OUTS))))
    check.extra["wrap_vectors"] = int(sum(len(b.acc) for b in blocks if b.wrap))
    check.extra["outputs_per_vector"] = len(OUTS)

    await start_stream(dut, n_vec)

    bursts = idle_gap_bursts(np.random.default_rng(seed + 2), n_vec)

    in_cycle = np.full(n_vec, -1, dtype=np.int64)
    state = {"out": 0}

    def probe(cycle: int) -> None:
        if int(dut.applied.value):
            in_cycle[int(dut.idx.value) - 1] = cycle
        if not int(dut.out_valid.value):
            return
        k = state["out"]
        state["out"] = k + 1
        if k >= n_vec:
            check.compare("extra output", -1, k)
            return
        # Sampled after edge `cycle`, so the output is visible during cycle `cycle + 1`;
        # the input was presented during cycle in_cycle[k] (rtl.md §R1 cycle convention).
        check.compare(f"vec {k} latency", LATENCY, cycle + 1 - int(in_cycle[k]))
        check.compare(f"vec {k} cfg_err", 0, int(dut.cfg_err.value))
        mon = dut.mon.value.to_unsigned()
        for i, ((ob, osg), lsb) in enumerate(zip(OUTS, MON_LSB, strict=True)):
            got = signed_field(mon, lsb, ob) if osg else (mon >> lsb) & ((1 << ob) - 1)
            check.compare(f"vec {k} out{i} ({'' if osg else 'u'}int{ob})",
                          int(expected[k, i]), got)

    drv = cocotb.start_soon(drive_bursts(dut, bursts))
    total = sum(r + g for r, g in bursts) + LATENCY + 2
    await sample_each_cycle(dut, total, probe)
    await drv
    check.compare("outputs", n_vec, state["out"])
    check.finish()


@cocotb.test()
async def requant_all_modes(dut) -> None:
    """§6, §8: >= 100,000 vectors x 4 output formats equal hwsim.arith.requantize."""
    await _requant_stream(dut, os.environ.get("HWSIM_RTL_FAULT", ""))
