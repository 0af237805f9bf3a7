"""Simulate GEMMs and MAC layers on an :class:`~hwsim.sim.config.ArrayConfig`.

:func:`simulate_gemm` runs one GEMM in either mode — the cycle-stepped kernel
(``stepped=True``) or fast mode (exact blocked GEMM + closed-form timing) — and both return
the same :class:`GemmResult` (values, accumulators, array cycles, per-output valid cycles,
overflow events), specs/cycle_model.md §C3–§C5. :func:`simulate_gemm_layer` adds the memory
model (§C6) and the counters (§C7) over the GEMMs of one layer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial

import numpy as np
import numpy.typing as npt

from hwsim.arith import AccumulatorOverflowError, RequantParams, jit_arrays
from hwsim.arith.jit import POLICY_CODES, requant_scalar_args
from hwsim.errors import HwsimError
from hwsim.exact import conv2d_acc, gemm_acc, igemm
from hwsim.exact.accumulator import int_weights
from hwsim.exact.im2col import check_conv_groups
from hwsim.reference import golden_ops
from hwsim.sim.config import ArrayConfig
from hwsim.sim.counters import BufferCounts, LayerCounters
from hwsim.sim.dataflows import GemmShape, get_dataflow
from hwsim.sim.fast import exact_gemm_acc
from hwsim.sim.kernels import systolic_run
from hwsim.sim.lowering import GemmOperands
from hwsim.sim.memory import MemoryResult, gemm_memory, nbytes

__all__ = ["GemmResult", "LayerResult", "simulate_gemm", "simulate_gemm_layer",
           "simulate_conv_layer_fast", "vector_layer_counters", "simulate_gemm_layer_fast"]


#: How a :class:`GemmResult` gets its arrays: called with ``"values"`` or ``"acc"``.
ArraySource = Callable[[str], npt.NDArray[np.int64]]


def arrays_source(values: npt.NDArray[np.int64], acc: npt.NDArray[np.integer]) -> ArraySource:
    """The :class:`ArraySource` of arrays already computed (``acc`` may be kept as int32
    registers: it is handed out as int64)."""
    arrays = {"values": values, "acc": acc}
    return lambda name: np.asarray(arrays[name], dtype=np.int64)


def _conv_group_rows(layer: Mapping[str, npt.NDArray[np.integer]], channels: slice,
                     name: str) -> npt.NDArray[np.int64]:
    """GEMM ``[N·OH·OW, M/G]`` view (rows (n, oh, ow), §C1) of the output channels
    ``channels`` of the NCHW layer array ``layer[name]`` (one copy, made on request)."""
    arr = layer[name]
    n, m = arr.shape[:2]
    part = arr.reshape(n, m, -1)[:, channels].transpose(0, 2, 1)
    return np.ascontiguousarray(part.reshape(-1, part.shape[2]), dtype=np.int64)


@dataclass(frozen=True)
class GemmResult:
    """One GEMM on the array (§C3–§C5).

    ``values`` (property): requantized output codes ``[M, N]`` (int64); ``acc``
    (property): the final §7 accumulators; both come from ``source`` on first access (fast
    mode's conv layers keep the layer's NCHW arrays and make a GEMM's rows only when asked,
    :func:`simulate_conv_layer_fast`); ``cycles``: array cycles (§C5, ideal memory);
    ``overflow_events`` / ``first_overflow`` ``(m, n, k)``; ``stepped`` tells which mode
    produced it; ``valid_cycles`` (property): the cycle each output becomes valid (§C4) —
    recorded by the stepped kernel, evaluated from the closed form on first access in fast
    mode.
    """

    source: ArraySource = field(repr=False)
    cycles: int
    overflow_events: int
    first_overflow: tuple[int, int, int] | None
    stepped: bool
    dataflow: str
    shape: GemmShape
    rows: int
    cols: int
    latency: int
    recorded_valid_cycles: npt.NDArray[np.int64] | None = field(default=None, repr=False)

    @cached_property
    def values(self) -> npt.NDArray[np.int64]:
        return self.source("values")

    @cached_property
    def acc(self) -> npt.NDArray[np.int64]:
        return self.source("acc")

    @cached_property
    def valid_cycles(self) -> npt.NDArray[np.int64]:
        if self.recorded_valid_cycles is not None:
            return self.recorded_valid_cycles
        return get_dataflow(self.dataflow).valid_cycles(self.shape, self.rows, self.cols,
                                                        self.latency)


def _check_operands(a, w, bias, config: ArrayConfig, a_range=None):
    a = np.asarray(a)
    w = np.asarray(w)
    bias = np.asarray(bias)
    if a.ndim != 2 or w.ndim != 2 or bias.ndim != 1:
        raise HwsimError(
            f"GEMM operands: expected a[M, K], w[K, N], bias[N], got shapes "
            f"{a.shape}, {w.shape}, {bias.shape}"
        )
    if a.shape[1] != w.shape[0] or bias.shape[0] != w.shape[1]:
        raise HwsimError(
            f"GEMM operands: inner dimensions differ: a {a.shape}, w {w.shape}, bias {bias.shape}"
        )
    maxima = []
    for name, arr, bits in (("activation", a, config.act_bits), ("weight", w, config.weight_bits)):
        if arr.dtype.kind not in "iu":
            raise HwsimError(f"{name} operand: expected integer codes, got dtype {arr.dtype}")
        maxima.append(0)
        if arr.size:
            if arr is a and a_range is not None:
                lo, hi = (int(v) for v in a_range)
            else:
                # the dtype's range stands for the codes when it fits the port (§C9)
                lo, hi = _codes_range(arr, _dtype_range(arr), bits)
            maxima[-1] = max(-lo, hi)
            _check_port(name, lo, hi, bits)
    _check_bias(bias, config)
    return a, w, bias.astype(np.int64), maxima[0], maxima[1]


def _fits_port(lo: int, hi: int, bits: int) -> bool:
    """Codes in [lo, hi] fit a ``bits``-bit operand port, signed or unsigned."""
    fits_signed = lo >= -(1 << (bits - 1)) and hi < (1 << (bits - 1))
    fits_unsigned = lo >= 0 and hi < (1 << bits)
    return fits_signed or fits_unsigned


def _dtype_range(arr: np.ndarray) -> tuple[int, int] | None:
    """The range of ``arr``'s integer dtype (None for other dtypes)."""
    if arr.dtype.kind not in "iu":
        return None
    info = np.iinfo(arr.dtype)
    return int(info.min), int(info.max)


def _codes_range(arr: np.ndarray, bound: tuple[int, int] | None, bits: int) -> tuple[int, int]:
    """(lo, hi) standing for the codes of the non-empty ``arr`` in the port check and the
    exact engine's bound: ``bound`` (a range every code is known to lie in) when it fits
    a ``bits``-bit port, else the scanned min and max."""
    if bound is not None and _fits_port(bound[0], bound[1], bits):
        return int(bound[0]), int(bound[1])
    return int(arr.min()), int(arr.max())


def _check_port(name: str, lo: int, hi: int, bits: int) -> None:
    if not _fits_port(lo, hi, bits):
        raise HwsimError(
            f"{name} operand: codes in [{lo}, {hi}] do not fit the array's {bits}-bit "
            f"{name} port (signed or unsigned)"
        )


def _check_bias(bias: np.ndarray, config: ArrayConfig) -> None:
    acc_lo, acc_hi = -(1 << (config.acc_bits - 1)), (1 << (config.acc_bits - 1)) - 1
    if bias.size and (int(bias.min()) < acc_lo or int(bias.max()) > acc_hi):
        raise HwsimError(
            f"bias: the folded bias must fit the {config.acc_bits}-bit accumulator "
            f"[{acc_lo}, {acc_hi}], got range [{int(bias.min())}, {int(bias.max())}]"
        )


def _check_channels(params: RequantParams, n: int) -> None:
    """HwsimError unless ``params`` has one channel or ``n`` (the GEMM's N outputs)."""
    if params.channels not in (1, n):
        raise HwsimError(f"requantization parameters: {params.channels} channels for "
                         f"N = {n} outputs")


def _per_channel(arr, n: int, dtype) -> np.ndarray:
    """A writable contiguous copy with one value per channel (one kernel signature); the
    caller checked that ``arr`` has 1 or ``n`` values."""
    arr = np.asarray(arr, dtype=dtype).reshape(-1)
    if arr.size == 1:
        return np.full(n, arr[0], dtype=dtype)
    return np.array(arr, dtype=dtype, order="C", copy=True)


def _raise_overflow(first: tuple[int, int, int], config: ArrayConfig) -> None:
    m, n, k = first
    raise AccumulatorOverflowError(
        f"accumulator overflow at output (m={m}, n={n}), k = {k}: the sum left the "
        f"{config.acc_bits}-bit range and the array's acc_overflow policy is 'error'"
    )


#: Bytes of stepped-model state per PE (operand, weight, partial-sum and valid registers and
#: their per-cycle buffers): an estimate for the memory guard, not an exact count.
STEPPED_BYTES_PER_PE = 32


def check_stepped_memory(config: ArrayConfig) -> None:
    """ResourceError (hwsim.limits) if the cycle-stepped model of ``config``'s R×C array
    would need more than the memory limit; checked before anything is allocated."""
    from hwsim.limits import check_memory

    check_memory(config.rows * config.cols * STEPPED_BYTES_PER_PE,
                 f"the cycle-stepped model of the {config.rows}x{config.cols} array "
                 f"({config.pes} PEs)")


def simulate_gemm(
    a: npt.ArrayLike,
    w: npt.ArrayLike,
    bias: npt.ArrayLike,
    params: RequantParams,
    config: ArrayConfig,
    *,
    stepped: bool = False,
    a_range: tuple[int, int] | None = None,
) -> GemmResult:
    """Run ``Y = requant(bias + a @ w)`` on the array of ``config``.

    ``a[M, K]`` activation codes, ``w[K, N]`` weight codes, ``bias[N]`` the folded bias
    (must fit ``acc_bits``), ``params`` the §8 requantization (per tensor or N channels).
    ``stepped=True`` steps every cycle (:func:`hwsim.sim.kernels.systolic_run`), otherwise
    fast mode; both give identical results. Under ``acc_overflow = "error"`` an overflow
    raises :class:`hwsim.arith.AccumulatorOverflowError` naming the first (m, n, k).
    ``a_range``: the (min, max) of ``a`` when the caller knows it (a conv's patches hold the
    input's codes and the zero point), else ``a`` is scanned.
    """
    a, w, b64, amax, wmax = _check_operands(a, w, bias, config, a_range)
    shape = GemmShape(a.shape[0], a.shape[1], w.shape[1])
    flow = get_dataflow(config.dataflow)
    rows, cols, lat = config.rows, config.cols, config.requant_latency
    _check_channels(params, shape.n)
    if stepped:
        (mult, shift, scale, mode_code, rounding_code, zp, act_min, act_max, out_bits,
         out_signed, wrap) = requant_scalar_args(params)
        # Plain Python scalars: one Numba signature per kernel whatever the caller passed.
        mode_code, rounding_code, zp = int(mode_code), int(rounding_code), int(zp)
        act_min, act_max, out_bits = int(act_min), int(act_max), int(out_bits)
        out_signed, wrap = bool(out_signed), bool(wrap)
        mult = _per_channel(mult, shape.n, np.int64)
        shift = _per_channel(shift, shape.n, np.int64)
        scale = _per_channel(scale, shape.n, np.float32)
        check_stepped_memory(config)
        ops = flow.kernel_operands(a, w, b64)
        acc_buf = ops.acc_init.copy()
        out = np.zeros_like(acc_buf)
        valid = np.zeros_like(acc_buf)
        cycles, events, first = systolic_run(
            bool(ops.os_mode), bool(ops.swap_mn), bool(ops.chan_by_col), ops.x, ops.s,
            int(rows), int(cols), int(config.acc_bits), int(POLICY_CODES[config.acc_overflow]),
            mult, shift, scale,
            mode_code, rounding_code, zp, act_min, act_max, out_bits, out_signed, wrap, int(lat),
            acc_buf, out, valid,
        )
        first_loc = None
        if first >= 0:
            k_, n_ = shape.k, shape.n
            first_loc = (int(first // (n_ * k_)), int(first // k_ % n_), int(first % k_))
        if first_loc is not None and config.acc_overflow == "error":
            _raise_overflow(first_loc, config)
        return GemmResult(
            source=arrays_source(flow.kernel_result(out), flow.kernel_result(acc_buf)),
            cycles=int(cycles),
            overflow_events=int(events), first_overflow=first_loc, stepped=True,
            dataflow=flow.name, shape=shape, rows=rows, cols=cols, latency=lat,
            recorded_valid_cycles=flow.kernel_result(valid),
        )
    # Every code lies in [act_min, act_max], so 8-bit outputs are kept as int8 / uint8
    # (compiler.md §5); `values` reads them as int64.
    code_dtype = jit_arrays.compact_code_dtype(params.act_min, params.act_max)
    fused = _fused_product(a, w, b64, params, config, amax, code_dtype)
    if fused is not None:
        acc, values = fused
        events, first_loc = 0, None
    else:
        acc, events, first_loc = exact_gemm_acc(a, w, b64, config.acc_bits,
                                                config.acc_overflow, amax=amax, wmax=wmax,
                                                narrow=True)
        if first_loc is not None and config.acc_overflow == "error":
            _raise_overflow(first_loc, config)
        # §8 on whole columns at once, the golden model's requantize_acc (channel axis 1;
        # tested equal to the stepped kernel's Numba scalar).
        values = golden_ops.requantize_acc(acc, params, out_dtype=code_dtype)
    return GemmResult(
        source=arrays_source(values, acc), cycles=flow.array_cycles(shape, rows, cols, lat),
        overflow_events=events, first_overflow=first_loc, stepped=False,
        dataflow=flow.name, shape=shape, rows=rows, cols=cols, latency=lat,
    )


def _fused_product(a: npt.NDArray[np.integer], w: npt.NDArray[np.integer],
                   b64: npt.NDArray[np.int64], params: RequantParams, config: ArrayConfig,
                   amax: int, code_dtype: np.dtype | None
                   ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.integer]] | None:
    """The int32 accumulators and the codes of ``requant(bias + a @ w)`` from one pass of the
    integer kernels with the requantization fused into their stores, when both apply:
    the kernels give every accumulator exactly with no overflow event (arithmetic.md
    §7.5, :func:`hwsim.exact.accumulator.int_weights`) and ``params`` can be evaluated in
    float64 (§8.4). Else None (the caller runs the product, then §8)."""
    scales = jit_arrays.f64_scales(params)
    if scales is None:
        return None
    packed = int_weights(w, "cols", amax, a.shape[1], b64, config.acc_bits)
    if packed is None or packed.cols is None:
        return None
    m, n = a.shape[0], w.shape[1]
    codes = np.empty((m, n), dtype=np.int64 if code_dtype is None else code_dtype)
    fused = igemm.Float64Requant(np.broadcast_to(scales, (n,)), params.config.rounding,
                                 params.zero_point, params.act_min, params.act_max, codes)
    acc = igemm.matmul_acc(a, packed, b64, out=np.empty((m, n), dtype=np.int32),
                           requant=fused)
    return acc, codes


@dataclass(frozen=True)
class LayerResult:
    """A MAC layer: its GEMM results (execution order), memory model and counters."""

    gemms: tuple[GemmResult, ...]
    memory: tuple[MemoryResult, ...]
    counters: LayerCounters


def simulate_gemm_layer(
    name: str,
    op: str,
    gemms: Sequence[GemmOperands],
    params: RequantParams,
    config: ArrayConfig,
    *,
    stepped: bool = False,
) -> LayerResult:
    """Run the GEMMs of one layer one after the other (§C5) and count (§C6, §C7).

    ``params`` covers all output channels of the layer; GEMM ``g`` uses the channels
    ``[g·N, (g+1)·N)`` when ``params`` is per channel."""
    flow = get_dataflow(config.dataflow)
    results = []
    mems = []
    first = None
    channel0 = 0
    total_channels = sum(g.w.shape[1] for g in gemms)
    for index, g in enumerate(gemms):
        p = _slice_params(params, channel0, g.w.shape[1], total_channels)
        channel0 += g.w.shape[1]
        res = simulate_gemm(g.a, g.w, g.bias, p, config, stepped=stepped, a_range=g.a_range)
        results.append(res)
        shape = GemmShape(*g.a.shape, g.w.shape[1])
        mems.append(gemm_memory(flow, shape, config,
                                int(nbytes(g.input_elements, config.act_bits)), p.out_bits,
                                layer=name))
        if first is None and res.first_overflow is not None:
            first = (index, *res.first_overflow)
    return _layer_result(name, op, results, mems, first, config)


def _layer_result(name: str, op: str, results: Sequence[GemmResult],
                  mems: Sequence[MemoryResult], first: tuple[int, int, int, int] | None,
                  config: ArrayConfig) -> LayerResult:
    """The layer's counters (§C6, §C7) from its GEMM results and memory model."""
    flow = get_dataflow(config.dataflow)
    rows, cols, lat = config.rows, config.cols, config.requant_latency
    macs = sum(r.shape.m * r.shape.k * r.shape.n for r in results)
    array_cycles = sum(r.cycles for r in results)
    compute = sum(flow.compute_cycles(r.shape, rows, cols) for r in results)
    stall = sum(m.stall_cycles for m in mems)
    total = array_cycles + stall
    sram = BufferCounts()
    for m in mems:
        sram = sram + m.sram
    counters = LayerCounters(
        name=name, op=op, unit="array", macs=macs, array_cycles=array_cycles,
        compute_cycles=compute, fill_drain_cycles=array_cycles - compute, stall_cycles=stall,
        total_cycles=total, active_pe_cycles=macs,
        pe_cycles=rows * cols * (array_cycles - lat * len(results)),
        utilisation=macs / (rows * cols * total) if total else 0.0, sram=sram,
        dram_read_bytes=sum(m.dram_read_bytes for m in mems),
        dram_write_bytes=sum(m.dram_write_bytes for m in mems),
        overflow_events=sum(r.overflow_events for r in results), first_overflow=first,
        fill_stall_cycles=sum(m.fill_stall_cycles for m in mems),
        compulsory_dram_bytes=sum(m.compulsory_bytes for m in mems),
        mapping=mems[0].mapping if mems else "",
    )
    return LayerResult(gemms=tuple(results), memory=tuple(mems), counters=counters)


def simulate_conv_layer_fast(
    name: str,
    x: npt.NDArray[np.integer],
    w: npt.NDArray[np.integer],
    bias: npt.NDArray[np.integer],
    params: RequantParams,
    config: ArrayConfig,
    *,
    x_zero_point: int,
    strides: tuple[int, int],
    pads: tuple[int, int, int, int],
    dilations: tuple[int, int],
    group: int,
    x_range: tuple[int, int] | None = None,
    out_dtype: npt.DTypeLike | None = None,
) -> tuple[LayerResult, npt.NDArray[np.integer]]:
    """Fast mode of a conv layer without materialising its integer GEMM operands: the
    exact engine computes the accumulators of all groups at once from the input
    (:func:`hwsim.exact.conv2d_acc`, arithmetic.md §7.4), §8 requantizes them along the
    channel axis, and each group's :class:`GemmResult` (values, accumulators, closed-form
    cycles, overflow events and first overflow in its own (m, n, k)) and the layer's
    counters are exactly what :func:`simulate_gemm_layer` gives on
    :func:`hwsim.sim.lowering.lower_conv`'s GEMMs. Returns the layer and the NCHW codes.

    ``x_range``: ``(lo, hi)`` that the caller guarantees every code of ``x`` lies in (a
    graph tensor's format range, cycle_model.md §C9). When it fits the activation port it
    stands for ``x``'s own range (no scan of ``x``): the port check passes either way, and
    the engine's bound ``max|x|`` may be larger than the true one, which changes no value
    or count (the engine is exact under any valid bound). Otherwise ``x`` is scanned.
    Without ``x_range``, and for the weights, the array's integer dtype range (e.g. int8)
    stands for its codes' range in the same way. ``out_dtype``: the returned codes' dtype
    (a compact code dtype every code of ``params``' output format fits; default int64);
    the GEMM results hand out int64 either way."""
    x = np.asarray(x)
    w = np.asarray(w)
    b64 = np.asarray(bias, dtype=np.int64)
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    check_conv_groups(x.shape, w.shape, group)
    mg, kg = m // group, cg * kh * kw
    flow = get_dataflow(config.dataflow)
    amax = abs(int(x_zero_point))
    if x.size:
        lo, hi = _codes_range(x, _dtype_range(x) if x_range is None else x_range,
                              config.act_bits)
        if any(pads):
            lo, hi = min(lo, int(x_zero_point)), max(hi, int(x_zero_point))
        _check_port("activation", lo, hi, config.act_bits)
        amax = max(amax, -lo, hi)
    wmax = 0
    if w.size:
        lo, hi = _codes_range(w, _dtype_range(w), config.weight_bits)
        _check_port("weight", lo, hi, config.weight_bits)
        wmax = max(-lo, hi)
    _check_bias(b64, config)
    _check_channels(params, m)
    acc, _, over = conv2d_acc(x, w, b64, x_zero_point=x_zero_point, strides=strides,
                              pads=pads, dilations=dilations, group=group,
                              acc_bits=config.acc_bits, policy=config.acc_overflow,
                              amax=amax, wmax=wmax, narrow=True)  # [N, M, OH, OW]
    oh, ow = acc.shape[2:]
    rows, cols, lat = config.rows, config.cols, config.requant_latency
    shape = GemmShape(n * oh * ow, kg, mg)
    cycles = flow.array_cycles(shape, rows, cols, lat)
    firsts, mem = [], None
    for g in range(group):  # errors in simulate_gemm_layer's order: group g's overflow, memory
        f = int(over.group_first[g])
        firsts.append(None if f < 0 else (f // (mg * kg), f // kg % mg, f % kg))
        if firsts[-1] is not None and config.acc_overflow == "error":
            _raise_overflow(firsts[-1], config)
        if mem is None:  # every group has the same shape and input bytes: one memory model
            mem = gemm_memory(flow, shape, config,
                              int(nbytes(n * cg * h * wd, config.act_bits)), params.out_bits,
                              layer=name)
    first = next(((g, *f) for g, f in enumerate(firsts) if f is not None), None)
    # §8 on the NCHW accumulators, as the golden model does (channel axis 1).
    y = golden_ops.requantize_acc(acc, params, out_dtype=out_dtype)
    layer = {"values": y, "acc": acc}
    results = [GemmResult(
        source=partial(_conv_group_rows, layer, slice(g * mg, (g + 1) * mg)),
        cycles=cycles, overflow_events=int(over.group_events[g]), first_overflow=firsts[g],
        stepped=False, dataflow=flow.name, shape=shape, rows=rows, cols=cols, latency=lat)
        for g in range(group)]
    return _layer_result(name, "conv", results, [mem] * group, first, config), y


def simulate_gemm_layer_fast(
    name: str,
    x: npt.NDArray[np.integer],
    w: npt.NDArray[np.integer],
    bias: npt.NDArray[np.integer],
    params: RequantParams,
    config: ArrayConfig,
) -> tuple[LayerResult, npt.NDArray[np.int64]]:
    """Fast mode of a gemm layer ``y = x·wᵀ + bias`` (``x[B, K]``, ``w[M, K]``: the integer
    graph's layout) by the golden model's own calls: the exact engine's
    :func:`hwsim.exact.gemm_acc` on the weight array as given (so the engine's per-array
    weight preparation is reused from batch to batch, arithmetic.md §7.4–§7.5) and
    :func:`hwsim.reference.golden_ops.requantize_acc`. The result (values, accumulators,
    closed-form cycles, overflow events and first ``(m, n, k)``, counters, errors) is
    exactly what :func:`simulate_gemm_layer` gives on
    :func:`hwsim.sim.lowering.lower_gemm`'s operands. Returns the layer and the codes."""
    x = np.asarray(x, dtype=np.int64)  # as lower_gemm; integer weights kept as they are
    w = np.asarray(w)
    if w.dtype.kind not in "iu":
        w = w.astype(np.int64)
    a, wt, b64, _, _ = _check_operands(x, w.T, bias, config)
    shape = GemmShape(a.shape[0], a.shape[1], wt.shape[1])
    k_, n_ = shape.k, shape.n
    _check_channels(params, n_)
    flow = get_dataflow(config.dataflow)
    rows, cols, lat = config.rows, config.cols, config.requant_latency
    acc, events, over = gemm_acc(a, w, b64, acc_bits=config.acc_bits,
                                 policy=config.acc_overflow)
    f = int(over.group_first[0])
    first_loc = None if f < 0 else (f // (n_ * k_), f // k_ % n_, f % k_)
    if first_loc is not None and config.acc_overflow == "error":
        _raise_overflow(first_loc, config)
    values = np.asarray(golden_ops.requantize_acc(acc, params), dtype=np.int64)
    res = GemmResult(
        source=arrays_source(values, acc), cycles=flow.array_cycles(shape, rows, cols, lat),
        overflow_events=int(events), first_overflow=first_loc, stepped=False,
        dataflow=flow.name, shape=shape, rows=rows, cols=cols, latency=lat)
    mem = gemm_memory(flow, shape, config, int(nbytes(a.size, config.act_bits)),
                      params.out_bits, layer=name)
    first = None if first_loc is None else (0, *first_loc)
    return _layer_result(name, "gemm", [res], [mem], first, config), values


def _slice_params(params: RequantParams, start: int, count: int, total: int) -> RequantParams:
    if np.asarray(params.multiplier).size == 1 or (start == 0 and count == total):
        return params
    return dataclasses.replace(
        params,
        multiplier=np.asarray(params.multiplier)[start:start + count],
        shift=np.asarray(params.shift)[start:start + count],
        scale_f32=np.asarray(params.scale_f32)[start:start + count],
    )


def vector_layer_counters(name: str, op: str, cycles: int, memory: MemoryResult,
                          config: ArrayConfig) -> LayerCounters:
    """Counters of a vector-unit op (§C1): no MACs, its cycles plus memory stalls."""
    total = cycles + memory.stall_cycles
    return LayerCounters(
        name=name, op=op, unit="vector", macs=0, array_cycles=0, compute_cycles=cycles,
        fill_drain_cycles=0, stall_cycles=memory.stall_cycles, total_cycles=total,
        active_pe_cycles=0, pe_cycles=0, utilisation=0.0, sram=memory.sram,
        dram_read_bytes=memory.dram_read_bytes, dram_write_bytes=memory.dram_write_bytes,
        overflow_events=0, first_overflow=None,
    )
