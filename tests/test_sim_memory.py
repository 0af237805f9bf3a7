"""Memory model and layer counters (specs/cycle_model.md §C6, §C7), on hand-computed cases."""

from __future__ import annotations

import numpy as np

from hwsim.arith import RequantConfig, make_requant_params
from hwsim.sim.config import ArrayConfig
from hwsim.sim.counters import BufferCounts
from hwsim.sim.dataflows import GemmShape, get_dataflow
from hwsim.sim.lowering import GemmOperands
from hwsim.sim.memory import fixed_gemm_memory, vector_memory
from hwsim.sim.simulate import simulate_gemm_layer

SHAPE = GemmShape(4, 3, 3)


def test_resident_operands_hand_computed() -> None:
    """§C6.5 (fixed), ws 2x2, M=4 K=3 N=3: 4 folds of length 8; inputs (12 B) and weights
    (9 B + 3 int32 bias) fetched once before fold 0, final outputs written in the last k
    folds."""
    cfg = ArrayConfig(rows=2, cols=2, dataflow="ws", dram_bytes_per_cycle=4.0)
    mem = fixed_gemm_memory(get_dataflow("ws"), SHAPE, cfg, input_unique_bytes=12, out_bits=8)
    assert mem.dram_read_bytes == 12 + 9 + 12
    assert mem.dram_write_bytes == 12
    assert mem.stall_cycles == 9  # ceil(33 / 4), nothing to overlap with
    assert mem.sram == BufferCounts(input_reads=24, input_writes=12, weight_reads=12,
                                    weight_writes=12, output_reads=12, output_writes=24)


def test_refetch_and_spill_hand_computed() -> None:
    """Same GEMM with buffers too small to hold the operands: every fold refetches its
    tiles and the running accumulators spill to DRAM (§C6)."""
    cfg = ArrayConfig(rows=2, cols=2, dataflow="ws", dram_bytes_per_cycle=4.0,
                      input_sram_bytes=8, weight_sram_bytes=8, output_sram_bytes=32)
    mem = fixed_gemm_memory(get_dataflow("ws"), SHAPE, cfg, input_unique_bytes=12, out_bits=8)
    # reads per fold: 20, 38, 14, 21; writes per fold: 32, 8, 16, 4
    assert mem.dram_read_bytes == 93
    assert mem.dram_write_bytes == 60
    # stalls: 5, max(0, 18 - 8), max(0, 6 - 8), max(0, 10 - 8); epilogue max(0, 1 - 2)
    assert mem.stall_cycles == 5 + 10 + 0 + 2


def test_vector_memory() -> None:
    cfg = ArrayConfig(rows=2, cols=2, dataflow="ws", dram_bytes_per_cycle=8.0)
    mem = vector_memory(cfg, cycles=3, in_elements=40, in_bits=8, out_elements=20, out_bits=8)
    assert (mem.dram_read_bytes, mem.dram_write_bytes, mem.stall_cycles) == (40, 20, 8 - 3)


def test_layer_counters_consistent() -> None:
    """§C7 identities on a two-GEMM layer (two groups)."""
    rng = np.random.default_rng(0)
    gemms = [GemmOperands(rng.integers(0, 256, (6, 5)), rng.integers(-128, 128, (5, 3)),
                          rng.integers(-100, 100, 3), 30) for _ in range(2)]
    params = make_requant_params(np.full(6, 1e-3), RequantConfig(), zero_point=0)
    cfg = ArrayConfig(rows=2, cols=2, dataflow="os", requant_latency=3)
    res = simulate_gemm_layer("conv", "conv", gemms, params, cfg)
    c = res.counters
    flow = get_dataflow("os")
    per_gemm = flow.array_cycles(GemmShape(6, 5, 3), 2, 2, 3)
    assert c.array_cycles == 2 * per_gemm
    assert c.macs == c.active_pe_cycles == 2 * 6 * 5 * 3
    assert c.compute_cycles == 2 * flow.compute_cycles(GemmShape(6, 5, 3), 2, 2)
    assert c.fill_drain_cycles == c.array_cycles - c.compute_cycles
    assert c.pe_cycles == 4 * (c.array_cycles - 2 * 3)
    assert c.total_cycles == c.array_cycles + c.stall_cycles
    assert c.utilisation == c.macs / (4 * c.total_cycles)
    assert c.overflow_events == 0 and c.first_overflow is None
    assert c.to_dict()["sram"]["input_reads"] == c.sram.input_reads
