"""Energy counters from the simulator's per-layer counters (specs/energy.md §5.1).

The simulator (:class:`hwsim.sim.counters.LayerCounters`, specs/cycle_model.md §C7) counts
SRAM accesses in elements per buffer and DRAM traffic in bytes. :func:`energy_counters`
turns them into the actions of :data:`hwsim.energy.ACTIONS`:

* ``mac`` = ``macs``; ``requant`` = the requantizations the caller counts (``outputs``);
* PE registers: the streamed operands and the partial sum are written once per MAC; the
  stationary operand once per element loaded from its buffer (ws: weights, is: inputs;
  os: both operands stream, the partial sum stays);
* SRAM bytes = elements × width: input buffer at ``act_bits``, weight buffer at
  ``weight_bits``, output buffer at ``acc_bits`` (partial sums; final codes are narrower,
  so this is an upper bound);
* DRAM bytes as counted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hwsim.energy.model import EnergyContext

if TYPE_CHECKING:
    from hwsim.sim.config import ArrayConfig
    from hwsim.sim.counters import LayerCounters


def _bytes(elements: int, bits: int) -> int:
    return -(-int(elements) * bits // 8)


def context_from_array(config: ArrayConfig) -> EnergyContext:
    """The :class:`EnergyContext` of an :class:`hwsim.sim.config.ArrayConfig`."""
    mult_bits = 32 if config.requant.mode in ("tflite", "tflite_single", "float32") else int(
        config.requant.multiplier_bits
    )
    return EnergyContext(
        act_bits=int(config.act_bits),
        weight_bits=int(config.weight_bits),
        acc_bits=int(config.acc_bits),
        sram_bytes={
            "ifmap": int(config.input_sram_bytes),
            "weight": int(config.weight_sram_bytes),
            "ofmap": int(config.output_sram_bytes),
        },
        requant_multiplier_bits=max(1, min(64, mult_bits)),
    )


def energy_counters(counters: LayerCounters, config: ArrayConfig,
                    outputs: int) -> dict[str, int]:
    """Action counts of one layer from its ``LayerCounters``; ``outputs`` = requantization
    operations of the layer (its output elements for conv / gemm, 0 for ops that do not
    requantize)."""
    macs = int(counters.macs)
    s = counters.sram
    if counters.unit == "array":
        if config.dataflow == "ws":
            act, weight, psum = macs, int(s.weight_reads), macs
        elif config.dataflow == "is":
            act, weight, psum = int(s.input_reads), macs, macs
        else:
            act, weight, psum = macs, macs, macs
    else:
        act = weight = psum = 0
    return {
        "mac": macs,
        "act_reg_write": act,
        "weight_reg_write": weight,
        "psum_reg_write": psum,
        "sram_read_bytes:ifmap": _bytes(s.input_reads, config.act_bits),
        "sram_write_bytes:ifmap": _bytes(s.input_writes, config.act_bits),
        "sram_read_bytes:weight": _bytes(s.weight_reads, config.weight_bits),
        "sram_write_bytes:weight": _bytes(s.weight_writes, config.weight_bits),
        "sram_read_bytes:ofmap": _bytes(s.output_reads, config.acc_bits),
        "sram_write_bytes:ofmap": _bytes(s.output_writes, config.acc_bits),
        "dram_read_bytes": int(counters.dram_read_bytes),
        "dram_write_bytes": int(counters.dram_write_bytes),
        "requant": int(outputs),
    }
