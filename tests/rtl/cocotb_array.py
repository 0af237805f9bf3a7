"""cocotb bench for hwsim_systolic_ws against hwsim.sim.simulate_gemm (cycle_model.md §C2-§C4,
arithmetic.md §7-§8; rtl.md §R4).

Driver: GEMM tiles run back to back in one simulation, scheduled exactly as cycle_model.md
§C3 (ws) prescribes: weight preload from the top, skewed activations, biases (first k fold)
or the array's own running accumulators (later k folds, fed back from the bottom outputs
like the output buffer does) into the column tops; optionally idle gaps in the streamed
``m`` index. Monitor: bottom accumulators, overflow counts and requantized outputs per
column, with the cycle each becomes visible. Model: :func:`hwsim.sim.simulate_gemm` in
stepped and fast mode (values, accumulators, overflow events, valid cycles). Checker:
tolerance 0 for values and cycles.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge
from tbkit import checker_from_env, lanes, reset

from hwsim.arith import RequantConfig, RequantParams, make_requant_params
from hwsim.sim.config import ArrayConfig
from hwsim.sim.lowering import lower_conv, lower_gemm
from hwsim.sim.simulate import simulate_gemm
from hwsim.vectors import layer_names, load_layer_vectors
from hwsim.vectors.check import requant_params_from_layer

LATENCY = 3  # hwsim_requant pipeline depth (rtl.md §R3) = ArrayConfig.requant_latency
MODE_CODES = {"tflite": 0, "tflite_single": 1, "dyadic": 3, "custom": 4}
ROUNDINGS = ("half_up", "half_away", "half_even", "floor", "toward_zero")


@dataclass(frozen=True)
class ArrayParams:
    """The build parameters of the hwsim_systolic_ws under test."""

    rows: int
    cols: int
    acc_bits: int
    saturate: bool

    @property
    def policy(self) -> str:
        return "saturate" if self.saturate else "wrap"


@dataclass(frozen=True)
class Gemm:
    """One GEMM: codes, folded bias, requantization and the streamed-index schedule.

    ``tau[t]`` is the streaming slot of row ``t`` of ``a`` (``tau = arange(M)`` is the
    gap-free stream of the cycle model; larger steps are idle cycles).
    """

    a: np.ndarray
    w: np.ndarray
    bias: np.ndarray
    params: RequantParams
    tau: np.ndarray


def fold_length(arr: ArrayParams, g: Gemm) -> int:
    """§C3: 2R + C + T − 2 with T the streamed span (M without gaps)."""
    return 2 * arr.rows + arr.cols + int(g.tau[-1]) + 1 - 2


def gemm_cycles(arr: ArrayParams, g: Gemm) -> int:
    """§C5 array cycles of one GEMM: folds · fold length + L."""
    k, n = g.w.shape
    folds = -(-n // arr.cols) * -(-k // arr.rows)
    return folds * fold_length(arr, g) + LATENCY


def expected_valid_cycles(arr: ArrayParams, g: Gemm) -> np.ndarray:
    """§C3/§C4 with the streamed index t replaced by its slot tau[t] (rtl.md §R4):
    v[t, n] = f_last(n)·L_fold + 2R + (n mod C) + L + tau[t]."""
    k, n = g.w.shape
    n_kt = -(-k // arr.rows)
    lf = fold_length(arr, g)
    cols = np.arange(n)
    f_last = (cols // arr.cols) * n_kt + n_kt - 1
    return (f_last * lf + 2 * arr.rows + cols % arr.cols + LATENCY)[None, :] + g.tau[:, None]


def make_gemms(arr: ArrayParams, seed: int) -> list[Gemm]:
    """Seeded GEMM tiles: single fold, partial k and column tiles, many folds, extreme
    operands, every requant mode with several roundings / output stages, idle gaps."""
    rng = np.random.default_rng(seed)
    r, c = arr.rows, arr.cols
    lo_acc = -(1 << (arr.acc_bits - 1))
    shapes = [  # (M, K, N, mode, rounding, wrap, extreme, gaps)
        (6, r, c, "dyadic", "half_even", False, False, False),
        (9, 2 * r + 1, 2 * c + 1, "tflite", "half_up", False, False, False),
        (1, 1, 1, "tflite_single", "half_up", False, False, False),
        (12, 3 * r, c, "custom", "floor", True, True, False),
        (7, r + 2, c + 1, "custom", "half_away", False, False, True),
        (10, 2 * r, 2 * c, "dyadic", "toward_zero", False, True, True),
    ]
    for _ in range(4):
        mode = ("tflite", "tflite_single", "dyadic", "custom")[int(rng.integers(0, 4))]
        shapes.append((
            int(rng.integers(1, 14)), int(rng.integers(1, 3 * r + 1)),
            int(rng.integers(1, 3 * c + 1)), mode, ROUNDINGS[int(rng.integers(0, 5))],
            mode != "dyadic" and bool(rng.random() < 0.5), bool(rng.random() < 0.3),
            bool(rng.random() < 0.5),
        ))
    gemms = []
    for m, k, n, mode, rounding, wrap, extreme, gaps in shapes:
        if extreme:
            a = rng.choice(np.array([-128, 127, -127]), size=(m, k))
            w = rng.choice(np.array([-128, 127]), size=(k, n))
        else:
            a = rng.integers(-128, 128, size=(m, k))
            w = rng.integers(-128, 128, size=(k, n))
        spread = float(np.sqrt(k) * 74 * 74)  # std of a sum of k uniform int8 products
        bias = rng.integers(-int(4 * spread), int(4 * spread) + 1, size=n)
        if extreme:  # accumulators near the range ends: overflow events (§7)
            bias = np.where(rng.random(n) < 0.5, lo_acc + 5, -lo_acc - 5 - 1)
        scale = np.exp(rng.uniform(np.log(10.0), np.log(100.0), size=n)) / spread
        zp = int(rng.integers(-20, 21))
        act_min, act_max = (-128, 127) if rng.random() < 0.6 else (zp, 127)
        cfg = RequantConfig(mode=mode, multiplier_bits=int(rng.integers(8, 32)),
                            rounding=rounding, output_overflow="wrap" if wrap else "saturate")
        params = make_requant_params(scale, cfg, zp, out_bits=8, out_signed=True,
                                     act_min=act_min, act_max=act_max)
        tau = np.arange(m, dtype=np.int64)
        if gaps:
            tau = np.cumsum(1 + (rng.random(m) < 0.4) * rng.integers(1, 4, size=m)) - 1
            tau = tau - tau[0]
        gemms.append(Gemm(a.astype(np.int64), w.astype(np.int64), bias.astype(np.int64),
                          params, tau.astype(np.int64)))
    return gemms


def _array_config(arr: ArrayParams, params: RequantParams) -> ArrayConfig:
    return ArrayConfig(rows=arr.rows, cols=arr.cols, dataflow="ws", acc_bits=arr.acc_bits,
                       acc_overflow=arr.policy, requant=params.config,
                       requant_latency=LATENCY)


def _pack(values, width: int) -> int:
    word = 0
    for i, v in enumerate(values):
        word |= (int(v) & ((1 << width) - 1)) << (i * width)
    return word


class Schedule:
    """Per-cycle stimulus of a list of GEMMs (cycle_model.md §C3, ws) and the order in
    which each column's bottom sums and requantized codes will come out."""

    def __init__(self, arr: ArrayParams, gemms: list[Gemm]) -> None:
        self.arr = arr
        self.gemms = gemms
        self.base: list[int] = []
        self.events: dict[int, list[tuple]] = {}
        self.acc_order: list[list[tuple[int, int, int, int]]] = [[] for _ in range(arr.cols)]
        self.q_order: list[list[tuple[int, int, int]]] = [[] for _ in range(arr.cols)]
        cyc = 0
        for gi, g in enumerate(gemms):
            self.base.append(cyc)
            self._plan(gi, g, cyc)
            cyc += gemm_cycles(arr, g)
        self.total = cyc

    def _at(self, cycle: int, item: tuple) -> None:
        self.events.setdefault(cycle, []).append(item)

    def _plan(self, gi: int, g: Gemm, base: int) -> None:
        r_, c_ = self.arr.rows, self.arr.cols
        m, k = g.a.shape
        n = g.w.shape[1]
        n_ct, n_kt = -(-n // c_), -(-k // r_)
        lf = fold_length(self.arr, g)
        p = g.params
        for j in range(n_ct):
            for i in range(n_kt):
                f = j * n_kt + i
                t0 = base + f * lf
                s = t0 + r_
                k0, n0 = i * r_, j * c_
                wt = np.zeros((r_, c_), dtype=np.int64)
                kk, nn = min(r_, k - k0), min(c_, n - n0)
                wt[:kk, :nn] = g.w[k0:k0 + kk, n0:n0 + nn]
                for q in range(r_):  # bottom row first
                    self._at(t0 + q, ("w", _pack(wt[r_ - 1 - q], 8)))
                mult = np.zeros(c_, dtype=np.int64)
                shift = np.zeros(c_, dtype=np.int64)
                mult[:nn] = p.multiplier[n0:n0 + nn] if p.channels > 1 else p.multiplier[0]
                shift[:nn] = p.shift[n0:n0 + nn] if p.channels > 1 else p.shift[0]
                self._at(s, ("rq", gi, _pack(mult, 31), _pack(shift, 6)))
                for t in range(m):
                    tt = int(g.tau[t])
                    for r in range(r_):
                        val = g.a[t, k0 + r] if k0 + r < k else 0
                        self._at(s + tt + r, ("a", r, int(val)))
                    for c in range(c_):
                        self._at(s + tt + c, ("top", gi, j, i, t, c, i == n_kt - 1))
                        self.acc_order[c].append((gi, j, i, t))
                        if i == n_kt - 1:
                            self.q_order[c].append((gi, j, t))


async def run_array(dut, arr: ArrayParams, gemms: list[Gemm], check) -> dict[str, object]:
    """Drive ``gemms`` through the DUT, monitor every output, return what was observed."""
    sched = Schedule(arr, gemms)
    r_, c_, ab = arr.rows, arr.cols, arr.acc_bits
    amask = (1 << ab) - 1
    acc_fb = [np.zeros((g.a.shape[0], -(-g.w.shape[1] // c_) * c_), dtype=np.int64)
              for g in gemms]
    acc_seen = [np.zeros_like(x, dtype=bool) for x in acc_fb]
    acc_last = [np.zeros((g.a.shape[0], g.w.shape[1]), dtype=np.int64) for g in gemms]
    ovf = [0] * len(gemms)
    q_val = [np.full((g.a.shape[0], g.w.shape[1]), -999, dtype=np.int64) for g in gemms]
    q_cyc = [np.full((g.a.shape[0], g.w.shape[1]), -1, dtype=np.int64) for g in gemms]
    acc_ptr = [0] * c_
    q_ptr = [0] * c_

    for name in ("w_shift", "w_in", "a_valid", "a_in", "top_valid", "top_last", "top_psum",
                 "rq_mode", "rq_rounding", "rq_wrap", "rq_multiplier", "rq_shift",
                 "rq_zero_point", "rq_act_min", "rq_act_max"):
        getattr(dut, name).value = 0
    Clock(dut.clk, 10, unit="ns").start()
    await reset(dut)

    def signed(v: int, bits: int) -> int:
        return v - (1 << bits) if v >> (bits - 1) else v

    for cyc in range(sched.total + 2):
        await FallingEdge(dut.clk)
        w_shift, w_in, a_valid, a_in, top_valid, top_last, top_psum = 0, 0, 0, 0, 0, 0, 0
        for ev in sched.events.get(cyc, ()):
            kind = ev[0]
            if kind == "w":
                w_shift, w_in = 1, ev[1]
            elif kind == "a":
                _, r, val = ev
                a_valid |= 1 << r
                a_in |= (val & 0xFF) << (8 * r)
            elif kind == "top":
                _, gi, j, i, t, c, last = ev
                g = gemms[gi]
                n_idx = j * c_ + c
                if i == 0:
                    val = int(g.bias[n_idx]) if n_idx < g.w.shape[1] else 0
                else:
                    if not acc_seen[gi][t, n_idx]:
                        raise AssertionError(f"running accumulator ({gi}, {t}, {n_idx}) "
                                             "not back from the array in time")
                    val = int(acc_fb[gi][t, n_idx])
                top_valid |= 1 << c
                top_last |= int(last) << c
                top_psum |= (val & amask) << (ab * c)
            else:  # "rq": the requant parameters of the fold starting now
                _, gi, mult, shift = ev
                p = gemms[gi].params
                cfg = p.config
                dut.rq_mode.value = MODE_CODES[cfg.mode]
                dut.rq_rounding.value = ROUNDINGS.index(cfg.rounding)
                dut.rq_wrap.value = int(cfg.output_overflow == "wrap")
                dut.rq_multiplier.value = mult
                dut.rq_shift.value = shift
                dut.rq_zero_point.value = p.zero_point & 0xFF
                dut.rq_act_min.value = p.act_min & 0xFF
                dut.rq_act_max.value = p.act_max & 0xFF
        dut.w_shift.value = w_shift
        dut.w_in.value = w_in
        dut.a_valid.value = a_valid
        dut.a_in.value = a_in
        dut.top_valid.value = top_valid
        dut.top_last.value = top_last
        dut.top_psum.value = top_psum
        await RisingEdge(dut.clk)
        await ReadOnly()
        seen = cyc + 1  # values read now are visible during cycle cyc + 1
        # Valid bits are reset, data lanes are not (rtl.md §R1): on a 4-state simulator an
        # idle lane may hold X, so the data buses are resolved lane by lane, valid lanes only.
        av = dut.acc_valid.value.to_unsigned()
        if av:
            accs = lanes(dut.acc_out.value, ab, c_)
            cnts = lanes(dut.acc_ovf_cnt.value, 8, c_)
            for c in range(c_):
                if not (av >> c) & 1:
                    continue
                gi, j, i, t = sched.acc_order[c][acc_ptr[c]]
                acc_ptr[c] += 1
                n_idx = j * c_ + c
                acc_c, cnt_c = accs[c], cnts[c]
                if acc_c is None or cnt_c is None:
                    check.unknown(f"cycle {seen} column {c} acc_out/acc_ovf_cnt",
                                  f"{dut.acc_out.value} / {dut.acc_ovf_cnt.value}")
                    acc_c, cnt_c = acc_c or 0, cnt_c or 0
                val = signed(acc_c, ab)
                acc_fb[gi][t, n_idx] = val
                acc_seen[gi][t, n_idx] = True
                ovf[gi] += cnt_c
                if n_idx < gemms[gi].w.shape[1] and i == -(-gemms[gi].w.shape[0] // r_) - 1:
                    acc_last[gi][t, n_idx] = val
        qv = dut.q_valid.value.to_unsigned()
        if qv:
            qs = lanes(dut.q_out.value, 8, c_)
            errs = lanes(dut.q_cfg_err.value, 1, c_)
            for c in range(c_):
                if not (qv >> c) & 1:
                    continue
                gi, j, t = sched.q_order[c][q_ptr[c]]
                q_ptr[c] += 1
                n_idx = j * c_ + c
                q_c = qs[c]
                if q_c is None or errs[c] is None:
                    check.unknown(f"cycle {seen} column {c} q_out/q_cfg_err",
                                  f"{dut.q_out.value} / {dut.q_cfg_err.value}")
                    q_c = q_c or 0
                else:
                    check.compare(f"cycle {seen} column {c} q_cfg_err", 0, errs[c])
                if n_idx < gemms[gi].w.shape[1]:
                    q_val[gi][t, n_idx] = signed(q_c, 8)
                    q_cyc[gi][t, n_idx] = seen - sched.base[gi]
    check.compare("sched_err", 0, int(dut.sched_err.value))
    for c in range(c_):
        check.compare(f"column {c} accumulators out", len(sched.acc_order[c]), acc_ptr[c])
        check.compare(f"column {c} codes out", len(sched.q_order[c]), q_ptr[c])
    return {"values": q_val, "cycles": q_cyc, "acc": acc_last, "ovf": ovf}


async def _array_test(dut, fault: str) -> None:
    spec = json.loads(os.environ["HWSIM_RTL_ARRAY"])
    arr = ArrayParams(spec["rows"], spec["cols"], spec["acc_bits"], bool(spec["saturate"]))
    seed = int(os.environ.get("HWSIM_RTL_SEED", "2026"))
    gemms = make_gemms(arr, seed + arr.rows * 100 + arr.cols)
    check = checker_from_env(f"hwsim_systolic_ws {arr.rows}x{arr.cols}")
    got = await run_array(dut, arr, gemms, check)
    outputs = 0
    for gi, g in enumerate(gemms):
        params = g.params
        if fault == "rounding_swapped":  # deliberately wrong model (rtl.md §R7)
            swapped = {"half_up": "half_away", "half_away": "half_up", "half_even": "half_up",
                       "floor": "half_up", "toward_zero": "half_up"}
            cfg = dataclasses.replace(params.config, rounding=swapped[params.config.rounding])
            params = dataclasses.replace(params, config=cfg)
        config = _array_config(arr, params)
        for stepped in (True, False):
            res = simulate_gemm(g.a, g.w, g.bias, params, config, stepped=stepped)
            tag = f"gemm {gi} {'stepped' if stepped else 'fast'}"
            check.compare_arrays(f"{tag} values", res.values, got["values"][gi])
            check.compare_arrays(f"{tag} acc", res.acc, got["acc"][gi])
            check.compare(f"{tag} overflow_events", res.overflow_events, got["ovf"][gi])
            if np.array_equal(g.tau, np.arange(len(g.tau))):  # the model has no idle gaps
                check.compare(f"{tag} array cycles", res.cycles, gemm_cycles(arr, g))
                check.compare_arrays(f"{tag} valid cycles", res.valid_cycles, got["cycles"][gi])
        check.compare_arrays(f"gemm {gi} valid cycles (rtl.md §R4)",
                             expected_valid_cycles(arr, g), got["cycles"][gi])
        outputs += g.a.shape[0] * g.w.shape[1]
    check.extra.update({
        "gemms": len(gemms), "outputs": outputs,
        "gap_gemms": sum(int(not np.array_equal(g.tau, np.arange(len(g.tau)))) for g in gemms),
        "overflow_events": int(sum(got["ovf"])),
    })
    check.finish()


@dataclass(frozen=True)
class GoldenGemm:
    """One GEMM of a golden-vector layer and the vector-file values it must reproduce:
    ``[M, N]`` views of the layer's ``output``, ``acc`` and ``valid_cycle`` arrays
    (``valid_cycle`` counts from the layer's first cycle)."""

    layer: str
    group: int
    gemm: Gemm
    output: np.ndarray
    acc: np.ndarray
    valid_cycle: np.ndarray


def gemms_from_vectors(vec_dir: str) -> list[GoldenGemm]:
    """Lower every conv / gemm layer of a golden-vector set (specs/vectors.md §4), read from
    its ``.hex`` files, to the GEMMs the array runs (cycle_model.md §C1, groups in order)."""
    out: list[GoldenGemm] = []
    for layer in layer_names(vec_dir):
        v = load_layer_vectors(vec_dir, layer, source="hex")
        params = requant_params_from_layer(v)
        p = v["params"]
        if v["op"] == "conv":
            ops, (n, m, oh, ow) = lower_conv(
                v["input"], v["weight"], v["bias"], x_zero_point=int(p["x_zero_point"]),
                strides=tuple(p["strides"]), pads=tuple(p["pads"]),
                dilations=tuple(p["dilations"]), group=int(p["group"]))

            def as_mn(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
                return x[:, lo:hi].transpose(0, 2, 3, 1).reshape(n * oh * ow, hi - lo)
        else:
            ops = [lower_gemm(v["input"], v["weight"], v["bias"])]

            def as_mn(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
                return x[:, lo:hi]
        for g, op in enumerate(ops):
            lo, hi = g * op.w.shape[1], (g + 1) * op.w.shape[1]
            gp = params
            if params.channels > 1:
                gp = dataclasses.replace(params, multiplier=params.multiplier[lo:hi],
                                         shift=params.shift[lo:hi],
                                         scale_f32=params.scale_f32[lo:hi])
            gemm = Gemm(op.a, op.w, op.bias, gp, np.arange(op.a.shape[0], dtype=np.int64))
            out.append(GoldenGemm(layer, g, gemm, as_mn(v["output"], lo, hi),
                                  as_mn(v["acc"], lo, hi),
                                  as_mn(v["valid_cycle"], lo, hi)))
    return out


async def _golden_test(dut) -> None:
    spec = json.loads(os.environ["HWSIM_RTL_ARRAY"])
    arr = ArrayParams(spec["rows"], spec["cols"], spec["acc_bits"], bool(spec["saturate"]))
    golden = gemms_from_vectors(os.environ["HWSIM_RTL_GOLDEN_DIR"])
    check = checker_from_env(f"hwsim_systolic_ws {arr.rows}x{arr.cols} golden vectors")
    got = await run_array(dut, arr, [gg.gemm for gg in golden], check)
    offset = 0
    outputs = 0
    for gi, gg in enumerate(golden):
        if gg.group == 0:
            offset = 0
        tag = f"{gg.layer} group {gg.group}"
        check.compare_arrays(f"{tag} output", gg.output, got["values"][gi])
        check.compare_arrays(f"{tag} acc", gg.acc, got["acc"][gi])
        # Group g's cycles are offset by the array cycles of groups 0 .. g-1 (vectors.md §4);
        # the monitor's cycles count from each GEMM's own first cycle.
        check.compare_arrays(f"{tag} valid_cycle", gg.valid_cycle - offset, got["cycles"][gi])
        offset += gemm_cycles(arr, gg.gemm)
        outputs += gg.output.size
    check.extra.update({"gemms": len(golden), "outputs": outputs,
                        "layers": sorted({gg.layer for gg in golden})})
    check.finish()


@cocotb.test()
async def array_golden_vectors(dut) -> None:
    """vectors.md §4 via §C4: a golden-vector set's conv / gemm layers run on the array:
    outputs, final accumulators and valid cycles equal the files."""
    await _golden_test(dut)


@cocotb.test()
async def array_gemm_tiles(dut) -> None:
    """§C3-§C4, §7-§8: GEMM tiles on the WS array equal hwsim.sim (values and valid cycles)."""
    await _array_test(dut, os.environ.get("HWSIM_RTL_FAULT", ""))
