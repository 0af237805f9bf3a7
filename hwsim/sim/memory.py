"""Buffer and DRAM model of one GEMM (specs/cycle_model.md §C6).

:func:`gemm_memory` applies the array's ``mapping`` setting (§C6.4): the mapper's choice
(``"auto"``), a pinned :class:`hwsim.sim.mapping.Mapping`, or the legacy fold-order model
``"fixed"`` (:func:`fixed_gemm_memory`, §C6.5). The fixed model is a closed form over the
fold table of a dataflow: SRAM accesses per buffer, DRAM traffic
(whole-operand residency or per-fold refetch, partial-sum spill), and the stall cycles of a
double-buffered DMA whose transfers for fold ``f`` overlap the compute of fold ``f − 1``.
Both simulation modes use this model, so they report identical totals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.sim.config import ArrayConfig
from hwsim.sim.counters import BufferCounts
from hwsim.sim.dataflows import Dataflow, GemmShape

__all__ = ["MemoryResult", "gemm_memory", "compute_gemm_memory", "fixed_gemm_memory",
           "vector_memory", "nbytes", "MEMORY_CACHE_SIZE"]

BIAS_BITS = 32


def nbytes(elements, bits: int):
    """``⌈elements·bits/8⌉`` (works on ints and int64 arrays)."""
    return -(-np.asarray(elements, dtype=np.int64) * bits // 8)


@dataclass(frozen=True)
class MemoryResult:
    """SRAM accesses, DRAM bytes and stall cycles of one GEMM or vector op (§C6).

    ``stall_cycles`` includes ``fill_stall_cycles`` (the first tile's prefetch, §C6.3);
    ``compulsory_bytes`` is ``D_min`` (§C6.2); ``mapping`` the label of the mapping used."""

    sram: BufferCounts
    dram_read_bytes: int
    dram_write_bytes: int
    stall_cycles: int
    fill_stall_cycles: int = 0
    compulsory_bytes: int = 0
    mapping: str = ""


def _ceil_cycles(nbytes_, bw: float):
    return np.ceil(np.asarray(nbytes_, dtype=np.float64) / bw).astype(np.int64)


#: Memory models already computed, by (dataflow, shape, config, input bytes, output bits,
#: mapping setting): the model is a pure function of these (§C6), and a network repeats
#: layer shapes and runs batch after batch. Cleared when it reaches the size below.
_MEMORY_CACHE: dict[tuple, MemoryResult] = {}
MEMORY_CACHE_SIZE = 4096


def gemm_memory(
    dataflow: Dataflow,
    shape: GemmShape,
    config: ArrayConfig,
    input_unique_bytes: int,
    out_bits: int,
    layer: str = "",
) -> MemoryResult:
    """§C6 for one GEMM of layer ``layer`` under the array's mapping setting (§C6.4): a
    ``layer_mappings`` pin for ``layer``, else ``config.mapping`` (``"auto"``: the mapper
    minimising ``config.objective``; ``"fixed"``: §C6.5; a Mapping: that mapping).
    ``input_unique_bytes``: bytes of the input tensor the GEMM reads (for a conv: the
    group's slice of the input feature map, not the im2col matrix). Computed once per
    (dataflow, shape, config, input bytes, output bits, setting) and then reused (the
    layer name only selects the setting and names the layer in errors, which are not
    cached); :func:`compute_gemm_memory` computes it afresh."""
    setting = dict(config.layer_mappings).get(layer, config.mapping)
    key = (dataflow, shape, config, int(input_unique_bytes), int(out_bits), setting)
    hit = _MEMORY_CACHE.get(key)
    if hit is None:
        hit = compute_gemm_memory(dataflow, shape, config, input_unique_bytes, out_bits, layer)
        if len(_MEMORY_CACHE) >= MEMORY_CACHE_SIZE:
            _MEMORY_CACHE.clear()
        _MEMORY_CACHE[key] = hit
    return hit


def compute_gemm_memory(
    dataflow: Dataflow,
    shape: GemmShape,
    config: ArrayConfig,
    input_unique_bytes: int,
    out_bits: int,
    layer: str = "",
) -> MemoryResult:
    """:func:`gemm_memory` without its cache."""
    setting = dict(config.layer_mappings).get(layer, config.mapping)
    return _setting_memory(setting, dataflow, shape, config, input_unique_bytes, out_bits,
                           layer)


def _setting_memory(setting, dataflow: Dataflow, shape: GemmShape, config: ArrayConfig,
                    input_unique_bytes: int, out_bits: int, layer: str) -> MemoryResult:
    from hwsim.sim import mapping as mapping_mod

    where = f"layer {layer!r}" if layer else "GEMM"
    if setting == "auto":
        setting = mapping_mod.choose_mapping(dataflow, shape, config, input_unique_bytes,
                                             out_bits)
        if setting is None:  # no legal candidate (§C6.4): the fold-order model
            setting = "fixed"
    if isinstance(setting, str):  # "fixed" (the config checked the value)
        res = fixed_gemm_memory(dataflow, shape, config, input_unique_bytes, out_bits)
        return MemoryResult(
            sram=res.sram, dram_read_bytes=res.dram_read_bytes,
            dram_write_bytes=res.dram_write_bytes, stall_cycles=res.stall_cycles,
            compulsory_bytes=mapping_mod.compulsory_bytes(shape, config, input_unique_bytes,
                                                          out_bits),
            mapping="fixed")
    return mapping_mod.mapping_memory(setting, dataflow, shape, config, input_unique_bytes,
                                      out_bits, where)


def fixed_gemm_memory(
    dataflow: Dataflow,
    shape: GemmShape,
    config: ArrayConfig,
    input_unique_bytes: int,
    out_bits: int,
) -> MemoryResult:
    """§C6.5 (the ``fixed`` mapping) for one GEMM. ``input_unique_bytes``: bytes of the
    input tensor the GEMM reads (for a conv: the group's slice of the input feature map)."""
    rows, cols = config.rows, config.cols
    ft = dataflow.fold_table(shape, rows, cols)
    lf = dataflow.fold_length(shape, rows, cols)
    f = ft.count
    first_fold = np.arange(f) == 0

    # Inputs.
    in_fits = input_unique_bytes <= config.input_sram_bytes // 2
    if in_fits:
        in_dram = np.where(first_fold, input_unique_bytes, 0)
        in_fill_elems = int(-(-input_unique_bytes * 8 // config.act_bits))
    else:
        in_dram = nbytes(ft.input_reads, config.act_bits)
        in_fill_elems = int(ft.input_reads.sum())

    # Weights (+ int32 bias).
    w_total = int(nbytes(shape.k * shape.n, config.weight_bits)) + int(
        nbytes(shape.n, BIAS_BITS)
    )
    w_fits = w_total <= config.weight_sram_bytes // 2
    if w_fits:
        w_dram = np.where(first_fold, w_total, 0)
        w_fill_elems = shape.k * shape.n + shape.n
    else:
        w_dram = nbytes(ft.weight_elems, config.weight_bits) + nbytes(ft.bias_elems, BIAS_BITS)
        w_fill_elems = int(ft.weight_elems.sum() + ft.bias_elems.sum())

    # Outputs: final codes, and spilled running accumulators (ws / is only).
    out_write = nbytes(ft.final_outputs, out_bits)
    psum_read = np.zeros(f, dtype=np.int64)
    psum_write = np.zeros(f, dtype=np.int64)
    if dataflow.name != "os":
        t_len = int(getattr(shape, dataflow.temporal))
        if int(nbytes(t_len * cols, config.acc_bits)) > config.output_sram_bytes // 2:
            psum_read = np.where(ft.first_k, 0, nbytes(ft.output_reads, config.acc_bits))
            psum_write = np.where(ft.last_k, 0, nbytes(ft.output_writes, config.acc_bits))
    reads = in_dram + w_dram + psum_read
    writes = out_write + psum_write

    bw = config.dram_bytes_per_cycle
    prev_writes = np.concatenate([[0], writes[:-1]])
    x = _ceil_cycles(reads + prev_writes, bw)
    stall = np.where(first_fold, x, np.maximum(0, x - lf))
    epilogue = max(0, int(_ceil_cycles(writes[-1], bw)) - config.requant_latency)
    sram = BufferCounts(
        input_reads=int(ft.input_reads.sum()),
        input_writes=in_fill_elems,
        weight_reads=int(ft.weight_reads.sum()),
        weight_writes=int(w_fill_elems),
        output_reads=int(ft.output_reads.sum()),
        output_writes=int(ft.output_writes.sum()),
    )
    return MemoryResult(
        sram=sram,
        dram_read_bytes=int(reads.sum()),
        dram_write_bytes=int(writes.sum()),
        stall_cycles=int(stall.sum()) + epilogue,
    )


def vector_memory(
    config: ArrayConfig, cycles: int, in_elements: int, in_bits: int, out_elements: int,
    out_bits: int,
) -> MemoryResult:
    """§C1/§C6 for a vector-unit op: its DMA (inputs in, output out, ``x`` cycles) overlaps
    its ``cycles`` of compute; ``stall = max(0, x − cycles)``."""
    bw = config.dram_bytes_per_cycle
    rd = int(nbytes(in_elements, in_bits))
    wr = int(nbytes(out_elements, out_bits))
    stall = max(0, int(_ceil_cycles(rd + wr, bw)) - cycles)
    return MemoryResult(
        sram=BufferCounts(input_reads=in_elements, input_writes=in_elements,
                          output_writes=out_elements),
        dram_read_bytes=rd,
        dram_write_bytes=wr,
        stall_cycles=stall,
    )
