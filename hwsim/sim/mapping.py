"""Mappings of a GEMM onto the buffers, their traffic and stalls, and the mapper
(specs/cycle_model.md §C6.1–§C6.4).

A :class:`Mapping` tiles the GEMM ``M×K×N`` into DRAM↔SRAM tiles visited in a loop order and
says which operands keep their reuse on chip. :func:`mapping_memory` is the one closed-form
model (§C6.2 traffic, §C6.3 fill and stalls); :func:`choose_mapping` is the bounded,
deterministic mapper (§C6.4). The array's folds, cycles and values do not depend on the
mapping (every loop ascends, so each output still adds its products in §7's order).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from hwsim.errors import ConfigError, HwsimError
from hwsim.sim.counters import BufferCounts
from hwsim.sim.dataflows import Dataflow, GemmShape
from hwsim.sim.memory import BIAS_BITS, MemoryResult, nbytes

if TYPE_CHECKING:
    from hwsim.sim.config import ArrayConfig

__all__ = ["Mapping", "ORDERS", "OPERANDS", "OBJECTIVES", "MAX_TILES", "MAX_EVALS",
           "mapping_from_data", "check_mapping", "mapping_traffic", "mapping_memory",
           "compulsory_bytes", "candidate_mappings", "choose_mapping", "fixed_equivalent",
           "objective_value", "captured_operands", "reuse_fits"]

#: Loop orders, outermost loop first (§C6.1).
ORDERS = tuple("".join(p) for p in itertools.permutations("mkn"))
#: Operands: activations ``A[m, k]``, weights ``W[k, n]`` (+ bias), outputs ``Y[m, n]``.
OPERANDS = ("A", "W", "Y")
OBJECTIVES = ("dram", "energy", "cycles")
#: The mapper skips tilings with more tiles than this (§C6.4).
MAX_TILES = 4096
#: Candidates whose stalls the mapper evaluates (§C6.4).
MAX_EVALS = 64

_IRRELEVANT = {"A": "n", "W": "m", "Y": "k"}
_RELEVANT = {"A": ("m", "k"), "W": ("k", "n"), "Y": ("m", "n")}
#: Spatial dimensions of each dataflow and the array extent ("rows"/"cols") they sit on.
_SPATIAL = {"ws": {"k": "rows", "n": "cols"}, "is": {"k": "rows", "m": "cols"},
            "os": {"m": "rows", "n": "cols"}}


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _nb(elements: int, bits: int) -> int:
    return -(-int(elements) * int(bits) // 8)


@dataclass(frozen=True)
class Mapping:
    """``(order, t_m, t_k, t_n, keep)`` of §C6.1. ``order``: a permutation of ``"mkn"``,
    outermost loop first; ``keep``: operands (``"A"``, ``"W"``, ``"Y"``) whose reuse across
    their irrelevant loop stays on chip."""

    order: str
    tm: int
    tk: int
    tn: int
    keep: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.order not in ORDERS:
            raise ConfigError(f"mapping order: expected a permutation of 'mkn' "
                              f"({', '.join(ORDERS)}), got {self.order!r}")
        for name in ("tm", "tk", "tn"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"mapping {name}: expected an integer >= 1, got {v!r}")
            object.__setattr__(self, name, int(v))
        keep = frozenset(self.keep)
        bad = sorted(keep - set(OPERANDS))
        if bad:
            raise ConfigError(f"mapping keep: expected operands among A, W, Y, got {bad}")
        object.__setattr__(self, "keep", keep)

    @property
    def label(self) -> str:
        """``order:t_mxt_kxt_n[+keep]`` (§C6.4)."""
        keep = "".join(x for x in OPERANDS if x in self.keep)
        return f"{self.order}:{self.tm}x{self.tk}x{self.tn}" + (f"+{keep}" if keep else "")

    def tile(self, dim: str) -> int:
        return {"m": self.tm, "k": self.tk, "n": self.tn}[dim]

    def clipped(self, shape: GemmShape) -> Mapping:
        """Tiles larger than a dimension clipped to it."""
        return Mapping(self.order, min(self.tm, int(shape.m)), min(self.tk, int(shape.k)),
                       min(self.tn, int(shape.n)), self.keep)

    def to_dict(self) -> dict[str, Any]:
        return {"order": self.order, "tm": self.tm, "tk": self.tk, "tn": self.tn,
                "keep": [x for x in OPERANDS if x in self.keep]}


def mapping_from_data(data: Any, source: str) -> Mapping:
    """A :class:`Mapping` from a TOML table ``{order, tm, tk, tn, keep}``; ConfigError
    naming ``source`` and the key otherwise."""
    if isinstance(data, Mapping):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected \"auto\", \"fixed\" or a table "
                          f"{{order, tm, tk, tn, keep}}, got {data!r}")
    known = {"order", "tm", "tk", "tn", "keep"}
    for key in data:
        if key not in known:
            raise ConfigError(f"{source}: unknown key {key!r}; expected one of "
                              f"{', '.join(sorted(known))}")
    for key in ("order", "tm", "tk", "tn"):
        if key not in data:
            raise ConfigError(f"{source}: missing required key {key!r}")
    keep = data.get("keep", [])
    if isinstance(keep, str) or not isinstance(keep, (list, tuple, frozenset, set)):
        raise ConfigError(f"{source}: keep: expected a list of operands (A, W, Y), got {keep!r}")
    try:
        return Mapping(data["order"], data["tm"], data["tk"], data["tn"], frozenset(keep))
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


@dataclass(frozen=True)
class _Ctx:
    """What the memory model needs besides the mapping (hashable, for the mapper's cache)."""

    flow: str
    m: int
    k: int
    n: int
    rows: int
    cols: int
    act_bits: int
    weight_bits: int
    acc_bits: int
    out_bits: int
    unique: int  # U: unique input bytes
    h_in: int
    h_w: int
    h_out: int
    bw: float
    lam: int
    latency: int
    abar: int  # array cycles without L (§C5)

    def ext(self, dim: str) -> int:
        return {"m": self.m, "k": self.k, "n": self.n}[dim]


def _ctx(flow: Dataflow, shape: GemmShape, config: ArrayConfig, unique: int,
         out_bits: int) -> _Ctx:
    return _Ctx(flow.name, int(shape.m), int(shape.k), int(shape.n), config.rows, config.cols,
                config.act_bits, config.weight_bits, config.acc_bits, int(out_bits),
                int(unique), config.input_sram_bytes // 2, config.weight_sram_bytes // 2,
                config.output_sram_bytes // 2, float(config.dram_bytes_per_cycle),
                int(config.dram_latency_cycles), int(config.requant_latency),
                flow.array_cycles(shape, config.rows, config.cols, 0))


def _sum_tiles(e1: int, t1: int, e2: int, t2: int, bits: int) -> int:
    """``Σ bytes(u_1·u_2, bits)`` over the tiles of an ``e1×e2`` operand (per-tile ceiling)."""
    n1, n2 = _cdiv(e1, t1), _cdiv(e2, t2)
    l1, l2 = e1 - (n1 - 1) * t1, e2 - (n2 - 1) * t2
    return ((n1 - 1) * (n2 - 1) * _nb(t1 * t2, bits) + (n1 - 1) * _nb(t1 * l2, bits)
            + (n2 - 1) * _nb(l1 * t2, bits) + _nb(l1 * l2, bits))


def _counts(mp: Mapping, c: _Ctx) -> dict[str, int]:
    return {d: _cdiv(c.ext(d), mp.tile(d)) for d in "mkn"}


def _captured(mp: Mapping, c: _Ctx) -> dict[str, bool]:
    """§C6.1: ``X`` is captured iff every loop inside ``r(X)`` has one tile, or X ∈ keep."""
    n = _counts(mp, c)
    out = {}
    for x in OPERANDS:
        inner = mp.order[mp.order.index(_IRRELEVANT[x]) + 1:]
        out[x] = x in mp.keep or all(n[d] == 1 for d in inner)
    return out


def _footprint_elems(mp: Mapping, c: _Ctx, x: str) -> int:
    """``φ_X`` (elements, bias excluded) of §C6.1."""
    inner = mp.order[mp.order.index(_IRRELEVANT[x]) + 1:]
    out = 1
    for d in _RELEVANT[x]:
        out *= c.ext(d) if d in inner else mp.tile(d)
    return out


def _a_whole(mp: Mapping, c: _Ctx, captured: dict[str, bool]) -> bool:
    """§C6.2: A is whole-resident (fetched once as ``min(U, bytes(M·K))``)."""
    return captured["A"] and _footprint_elems(mp, c, "A") == c.m * c.k


def _a_once(c: _Ctx) -> int:
    return min(c.unique, _nb(c.m * c.k, c.act_bits))


def _tile_rule_error(mp: Mapping, c: _Ctx) -> str:
    """The §C6.1 tile-size rule broken by ``mp`` ('' if none)."""
    for dim, ext_name in _SPATIAL[c.flow].items():
        e = c.rows if ext_name == "rows" else c.cols
        t = mp.tile(dim)
        if t != c.ext(dim) and t % e:
            return (f"t{dim} = {t} must be a multiple of the array {ext_name} ({e}) or the "
                    f"whole dimension {dim.upper()} = {c.ext(dim)} ({c.flow}, §C6.1)")
    return ""


def _need(mp: Mapping, c: _Ctx, x: str, captured: bool) -> int:
    """Bytes operand ``x`` needs in its buffer's working half (§C6.1)."""
    elems = _footprint_elems(mp, c, x) if captured else (
        mp.tile(_RELEVANT[x][0]) * mp.tile(_RELEVANT[x][1]))
    if x == "A":
        whole = captured and elems == c.m * c.k
        return _a_once(c) if whole else _nb(elems, c.act_bits)
    if x == "W":
        n_ext = c.n if captured and "n" in mp.order[mp.order.index("m") + 1:] else mp.tn
        return _nb(elems, c.weight_bits) + _nb(n_ext, BIAS_BITS)
    return _nb(elems, c.acc_bits)


_BUFFERS = (("A", "input", "h_in"), ("W", "weight", "h_w"), ("Y", "output", "h_out"))


def _check(mp: Mapping, c: _Ctx, where: str) -> None:
    """Tile rules and capacities of §C6.1 (HwsimError naming the field)."""
    err = _tile_rule_error(mp, c)
    if err:
        raise HwsimError(f"{where}: mapping {mp.label}: {err}")
    cap = _captured(mp, c)
    for x, buf, half_name in _BUFFERS:
        need, half = _need(mp, c, x, cap[x]), getattr(c, half_name)
        if need > half:
            raise HwsimError(
                f"{where}: mapping {mp.label}: {x} needs {need} bytes "
                f"({'captured footprint' if cap[x] else 'one tile'}) but the {buf} buffer's "
                f"working half is {half} bytes (§C6.1)")


def _traffic(mp: Mapping, c: _Ctx) -> tuple[int, int]:
    """§C6.2 closed form: (dram_read, dram_write) bytes."""
    n = _counts(mp, c)
    cap = _captured(mp, c)
    if _a_whole(mp, c, cap):
        a = _a_once(c)
    else:
        a = _sum_tiles(c.m, mp.tm, c.k, mp.tk, c.act_bits) * (1 if cap["A"] else n["n"])
    w = (_sum_tiles(c.k, mp.tk, c.n, mp.tn, c.weight_bits) + _nb(c.n, BIAS_BITS)) * (
        1 if cap["W"] else n["m"])
    p = 0 if cap["Y"] else (n["k"] - 1) * _sum_tiles(c.m, mp.tm, c.n, mp.tn, c.acc_bits)
    o = _sum_tiles(c.m, mp.tm, c.n, mp.tn, c.out_bits)
    return a + w + p, o + p


def _schedule(mp: Mapping, c: _Ctx):
    """Per-tile (reads, writes, macs, A elements, W elements) in loop order (§C6.2)."""
    n = _counts(mp, c)
    cap = _captured(mp, c)
    idx = np.indices(tuple(n[d] for d in mp.order)).reshape(3, -1).astype(np.int64)
    i = {d: idx[mp.order.index(d)] for d in "mkn"}
    u = {d: np.where(i[d] == n[d] - 1, c.ext(d) - (n[d] - 1) * mp.tile(d), mp.tile(d))
         for d in "mkn"}
    first = np.zeros(idx.shape[1], dtype=bool)
    first[0] = True
    if _a_whole(mp, c, cap):
        a_fetch = first
        a_bytes = np.where(first, _a_once(c), 0)
        a_elems = np.where(first, -(-_a_once(c) * 8 // c.act_bits), 0)
    else:
        a_fetch = (i["n"] == 0) if cap["A"] else np.ones_like(first)
        a_elems = np.where(a_fetch, u["m"] * u["k"], 0)
        a_bytes = np.where(a_fetch, nbytes(u["m"] * u["k"], c.act_bits), 0)
    w_fetch = (i["m"] == 0) if cap["W"] else np.ones_like(first)
    b_fetch = w_fetch & (i["k"] == 0)
    w_bytes = (np.where(w_fetch, nbytes(u["k"] * u["n"], c.weight_bits), 0)
               + np.where(b_fetch, nbytes(u["n"], BIAS_BITS), 0))
    w_elems = np.where(w_fetch, u["k"] * u["n"], 0) + np.where(b_fetch, u["n"], 0)
    mn = u["m"] * u["n"]
    last_k = i["k"] == n["k"] - 1
    writes = np.where(last_k, nbytes(mn, c.out_bits), 0)
    reads = a_bytes + w_bytes
    if not cap["Y"]:
        psum = nbytes(mn, c.acc_bits)
        reads = reads + np.where(i["k"] > 0, psum, 0)
        writes = writes + np.where(~last_k, psum, 0)
    return reads, writes, u["m"] * u["k"] * u["n"], a_elems, w_elems


def _xfer(nbytes_, c: _Ctx):
    b = np.asarray(nbytes_, dtype=np.int64)
    return np.ceil(b / c.bw).astype(np.int64) + c.lam * (b > 0)


def _stalls(reads, writes, macs, c: _Ctx) -> tuple[int, int]:
    """§C6.3: (fill, steady + epilogue) stall cycles."""
    s_cum = np.cumsum(macs)
    total = int(s_cum[-1])
    if c.abar * total < (1 << 62):
        bound = c.abar * s_cum // total
    else:
        bound = np.array([c.abar * int(s) // total for s in s_cum.tolist()], dtype=np.int64)
    windows = np.diff(np.concatenate([[0], bound]))
    prev_w = np.concatenate([[0], writes[:-1]])
    x = _xfer(reads + prev_w, c)
    fill = int(x[0])
    steady = int(np.maximum(0, x[1:] - windows[:-1]).sum())
    epilogue = max(0, int(_xfer(writes[-1], c)) - c.latency)
    return fill, steady + epilogue


def _evaluate(mp: Mapping, c: _Ctx, fold_sram: BufferCounts | None = None) -> MemoryResult:
    reads, writes, macs, a_el, w_el = _schedule(mp, c)
    fill, rest = _stalls(reads, writes, macs, c)
    sram = BufferCounts() if fold_sram is None else fold_sram
    sram = BufferCounts(input_reads=sram.input_reads, input_writes=int(a_el.sum()),
                        weight_reads=sram.weight_reads, weight_writes=int(w_el.sum()),
                        output_reads=sram.output_reads, output_writes=sram.output_writes)
    return MemoryResult(sram=sram, dram_read_bytes=int(reads.sum()),
                        dram_write_bytes=int(writes.sum()), stall_cycles=fill + rest,
                        fill_stall_cycles=fill, compulsory_bytes=_compulsory(c),
                        mapping=mp.label)


def _compulsory(c: _Ctx) -> int:
    return (_a_once(c) + _nb(c.k * c.n, c.weight_bits) + _nb(c.n, BIAS_BITS)
            + _nb(c.m * c.n, c.out_bits))


def _fold_sram(flow: Dataflow, shape: GemmShape, config: ArrayConfig) -> BufferCounts:
    ft = flow.fold_table(shape, config.rows, config.cols)
    return BufferCounts(input_reads=int(ft.input_reads.sum()),
                        weight_reads=int(ft.weight_reads.sum()),
                        output_reads=int(ft.output_reads.sum()),
                        output_writes=int(ft.output_writes.sum()))


# ----------------------------------------------------------------------------- public API


def compulsory_bytes(shape: GemmShape, config: ArrayConfig, unique: int, out_bits: int) -> int:
    """``D_min`` of §C6.2: each operand read once, the output written once."""
    c = _Ctx("ws", int(shape.m), int(shape.k), int(shape.n), 1, 1, config.act_bits,
             config.weight_bits, config.acc_bits, int(out_bits), int(unique), 0, 0, 0, 1.0,
             0, 0, 0)
    return _compulsory(c)


def check_mapping(mapping: Mapping, flow: Dataflow, shape: GemmShape, config: ArrayConfig,
                  unique: int, out_bits: int, where: str = "GEMM") -> Mapping:
    """The mapping clipped to ``shape``, or HwsimError if it breaks a rule of §C6.1."""
    mp = mapping.clipped(shape)
    _check(mp, _ctx(flow, shape, config, unique, out_bits), where)
    return mp


def mapping_traffic(mapping: Mapping, flow: Dataflow, shape: GemmShape, config: ArrayConfig,
                    unique: int, out_bits: int) -> tuple[int, int]:
    """(dram_read, dram_write) bytes of a legal mapping, §C6.2 closed form."""
    return _traffic(mapping.clipped(shape), _ctx(flow, shape, config, unique, out_bits))


def mapping_memory(mapping: Mapping, flow: Dataflow, shape: GemmShape, config: ArrayConfig,
                   unique: int, out_bits: int, where: str = "GEMM") -> MemoryResult:
    """§C6.2–§C6.3 for one GEMM under ``mapping`` (checked, clipped)."""
    mp = check_mapping(mapping, flow, shape, config, unique, out_bits, where)
    return _evaluate(mp, _ctx(flow, shape, config, unique, out_bits),
                     _fold_sram(flow, shape, config))


def captured_operands(mapping: Mapping, flow: Dataflow, shape: GemmShape,
                      config: ArrayConfig, unique: int, out_bits: int) -> frozenset[str]:
    """The operands whose reuse the mapping captures (§C6.1)."""
    cap = _captured(mapping.clipped(shape), _ctx(flow, shape, config, unique, out_bits))
    return frozenset(x for x in OPERANDS if cap[x])


def reuse_fits(flow: Dataflow, shape: GemmShape, config: ArrayConfig, unique: int,
               out_bits: int) -> bool:
    """Whether some candidate of the mapper (§C6.4) captures A, W and Y at once, i.e. the
    per-tile working set needed to move each operand once fits the buffers."""
    c = _ctx(flow, shape, config, unique, out_bits)
    return any(all(_captured(mp, c).values()) for mp in _candidates(c))


def fixed_equivalent(flow: Dataflow, shape: GemmShape, config: ArrayConfig) -> Mapping:
    """The §C6.5 fold order as a §C6.1 mapping (no keep): ws ``nkm:M×R×C``, is
    ``mkn:C×R×N``, os ``nmk:R×K×C``."""
    r, c = config.rows, config.cols
    m, k, n = int(shape.m), int(shape.k), int(shape.n)
    spec = {"ws": ("nkm", m, r, c), "is": ("mkn", c, r, n), "os": ("nmk", r, k, c)}
    order, tm, tk, tn = spec[flow.name]
    return Mapping(order, tm, tk, tn).clipped(shape)


def _tile_candidates(dim: str, c: _Ctx) -> list[int]:
    ext = c.ext(dim)
    spatial = _SPATIAL[c.flow].get(dim)
    step = (c.rows if spatial == "rows" else c.cols) if spatial else 1
    out = {ext}
    t = step
    while t < ext:
        out.add(t)
        t *= 2
    return sorted(out)


def _with_max_keep(mp: Mapping, c: _Ctx) -> Mapping | None:
    """``mp`` with every operand kept whose footprint fits (None if no keep set is legal).
    Each operand's capacity involves only its own buffer, so the largest legal keep set is
    the set of operands whose captured footprint fits."""
    if _tile_rule_error(mp, c):
        return None
    cap0 = _captured(Mapping(mp.order, mp.tm, mp.tk, mp.tn), c)
    keep = set()
    for x, _, half_name in _BUFFERS:
        half = getattr(c, half_name)
        if _need(mp, c, x, True) <= half:
            keep.add(x)
        elif cap0[x] or _need(mp, c, x, False) > half:
            return None
    return Mapping(mp.order, mp.tm, mp.tk, mp.tn, frozenset(keep))


def candidate_mappings(flow: Dataflow, shape: GemmShape, config: ArrayConfig, unique: int,
                       out_bits: int) -> list[Mapping]:
    """The mapper's candidates (§C6.4): every loop order × tile grid with at most
    :data:`MAX_TILES` tiles, each with its largest legal ``keep``; deterministic order."""
    c = _ctx(flow, shape, config, unique, out_bits)
    return _candidates(c)


def _candidates(c: _Ctx) -> list[Mapping]:
    out = []
    for tm in _tile_candidates("m", c):
        for tk in _tile_candidates("k", c):
            for tn in _tile_candidates("n", c):
                if _cdiv(c.m, tm) * _cdiv(c.k, tk) * _cdiv(c.n, tn) > MAX_TILES:
                    continue
                for order in ORDERS:
                    mp = _with_max_keep(Mapping(order, tm, tk, tn), c)
                    if mp is not None:
                        out.append(mp)
    return out


@lru_cache(maxsize=64)
def _energy_prices(config_key: tuple) -> tuple[float, float, float, float]:
    from hwsim.energy import HOROWITZ_45NM
    from hwsim.energy.model import EnergyContext, per_action_energy

    act, wb, acc, s_in, s_w, s_out = config_key
    pa = per_action_energy(HOROWITZ_45NM, EnergyContext(
        act_bits=act, weight_bits=wb, acc_bits=acc,
        sram_bytes={"ifmap": s_in, "weight": s_w, "ofmap": s_out}))
    return (pa["dram_read_bytes"], pa["dram_write_bytes"], pa["sram_write_bytes:ifmap"],
            pa["sram_write_bytes:weight"])


def _fill_elems(mp: Mapping, c: _Ctx) -> tuple[int, int]:
    """Input and weight buffer elements the DMA fills in (§C6.3 SRAM accesses)."""
    n = _counts(mp, c)
    cap = _captured(mp, c)
    a = -(-_a_once(c) * 8 // c.act_bits) if _a_whole(mp, c, cap) else (
        c.m * c.k * (1 if cap["A"] else n["n"]))
    w = (c.k * c.n + c.n) * (1 if cap["W"] else n["m"])
    return a, w


def _energy(mp: Mapping, c: _Ctx, prices) -> float:
    """The mapping-dependent energy (§C6.4): DRAM bytes and input/weight buffer fills,
    priced as :func:`hwsim.energy.from_sim.energy_counters` prices the counters."""
    rd, wr = _traffic(mp, c)
    a_el, w_el = _fill_elems(mp, c)
    return (rd * prices[0] + wr * prices[1] + _nb(a_el, c.act_bits) * prices[2]
            + _nb(w_el, c.weight_bits) * prices[3])


def objective_value(objective: str, mapping: Mapping, flow: Dataflow, shape: GemmShape,
                    config: ArrayConfig, unique: int, out_bits: int) -> float:
    """The §C6.4 objective of a legal mapping (what :func:`choose_mapping` minimises)."""
    mp = mapping.clipped(shape)
    c = _ctx(flow, shape, config, unique, out_bits)
    if objective == "dram":
        return sum(_traffic(mp, c))
    if objective == "cycles":
        reads, writes, macs, _, _ = _schedule(mp, c)
        return sum(_stalls(reads, writes, macs, c))
    return _energy(mp, c, _prices(config))


def _prices(config: ArrayConfig) -> tuple[float, float, float, float]:
    return _energy_prices((config.act_bits, config.weight_bits, config.acc_bits,
                           config.input_sram_bytes, config.weight_sram_bytes,
                           config.output_sram_bytes))


def _tiebreak(mp: Mapping, c: _Ctx) -> tuple:
    n = _counts(mp, c)
    return (n["m"] * n["k"] * n["n"], mp.order, mp.tm, mp.tk, mp.tn)


@lru_cache(maxsize=1024)
def _choose(c: _Ctx, objective: str, max_evals: int, prices) -> Mapping | None:
    cands = _candidates(c)
    if not cands:
        return None
    traffic = {mp: sum(_traffic(mp, c)) for mp in cands}

    def stalls(mp: Mapping) -> int:
        reads, writes, macs, _, _ = _schedule(mp, c)
        fill, rest = _stalls(reads, writes, macs, c)
        return fill + rest

    score = {mp: _energy(mp, c, prices) for mp in cands} if objective == "energy" else traffic
    best = min(score.values())
    pool = sorted((mp for mp in cands if score[mp] == best), key=lambda mp: _tiebreak(mp, c))
    if len(pool) > max_evals:  # evenly spaced over the tile counts, both ends included
        step = (len(pool) - 1) / max(1, max_evals - 1)
        pool = [pool[round(i * step)] for i in range(max_evals)]
    if objective == "cycles":  # the dram pool plus the max_evals of least traffic
        extra = sorted(cands, key=lambda mp: (traffic[mp], _tiebreak(mp, c)))[:max_evals]
        pool = list(dict.fromkeys(pool + extra))
        return min(pool, key=lambda mp: (stalls(mp), traffic[mp], _tiebreak(mp, c)))
    return min(pool, key=lambda mp: (stalls(mp), _tiebreak(mp, c)))


def choose_mapping(flow: Dataflow, shape: GemmShape, config: ArrayConfig, unique: int,
                   out_bits: int, objective: str | None = None,
                   max_evals: int = MAX_EVALS) -> Mapping | None:
    """The mapper of §C6.4: the candidate of least ``objective`` (default the array's
    ``objective``), ties broken by stalls, then fewer tiles, then lexicographic order;
    None when no candidate is legal (the buffers cannot hold one smallest tile)."""
    objective = objective or config.objective
    if objective not in OBJECTIVES:
        raise HwsimError(f"--objective: expected one of {', '.join(OBJECTIVES)}, "
                         f"got {objective!r}")
    c = _ctx(flow, shape, config, unique, out_bits)
    prices = _prices(config) if objective == "energy" else None
    return _choose(c, objective, int(max_evals), prices)
