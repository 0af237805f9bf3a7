"""The energy model: event counters × energy per action (specs/energy.md §5).

Counters are plain mappings ``action name → count`` (ints). The action names are fixed
(:data:`ACTIONS`; SRAM actions carry the buffer name after a colon). For one layer,

    energy[action] = count[action] × per_action_pj[action]           (exact float64 product)
    energy[component] = Σ energy[action] over the component's actions, in ACTIONS order

and the energy of a model is the sum over its layers in layer order. Nothing else is
added: no leakage, no clock tree (specs/energy.md §6 lists what is left out).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from hwsim.energy.table import HOROWITZ_45NM, EnergyTable
from hwsim.errors import ConfigError

#: Buffers of the array's on-chip SRAM (specs/energy.md §5).
BUFFERS = ("ifmap", "weight", "ofmap")

#: Every counter the model prices, with its unit (specs/energy.md §5).
ACTIONS: dict[str, str] = {
    "mac": "multiply-accumulate operations (act_bits × weight_bits product, acc_bits add)",
    "act_reg_write": "activation register writes in PEs (act_bits each)",
    "weight_reg_write": "weight register writes in PEs (weight_bits each)",
    "psum_reg_write": "partial-sum register writes in PEs (acc_bits each)",
    "sram_read_bytes:ifmap": "bytes read from the input-feature-map SRAM",
    "sram_write_bytes:ifmap": "bytes written to the input-feature-map SRAM",
    "sram_read_bytes:weight": "bytes read from the weight SRAM",
    "sram_write_bytes:weight": "bytes written to the weight SRAM",
    "sram_read_bytes:ofmap": "bytes read from the output-feature-map SRAM",
    "sram_write_bytes:ofmap": "bytes written to the output-feature-map SRAM",
    "dram_read_bytes": "bytes read from DRAM",
    "dram_write_bytes": "bytes written to DRAM",
    "requant": "requantization operations (one per output element)",
}

#: Which component each action belongs to (report breakdown).
COMPONENT_OF: dict[str, str] = {
    "mac": "mac",
    "act_reg_write": "register",
    "weight_reg_write": "register",
    "psum_reg_write": "register",
    "dram_read_bytes": "dram",
    "dram_write_bytes": "dram",
    "requant": "requant",
    **{a: "sram" for a in ACTIONS if a.startswith("sram_")},
}

#: Components in report order.
COMPONENTS = ("mac", "register", "sram", "dram", "requant")


@dataclass(frozen=True)
class EnergyContext:
    """The hardware parameters that select the per-action energies.

    act_bits, weight_bits: multiplier operand widths; acc_bits: accumulator width;
    sram_bytes: size of each buffer in :data:`BUFFERS`; sram_word_bits: SRAM port width;
    requant_multiplier_bits: width of the requantization multiplier (acc × multiplier).
    """

    act_bits: int = 8
    weight_bits: int = 8
    acc_bits: int = 32
    sram_bytes: Mapping[str, int] = field(
        default_factory=lambda: {"ifmap": 64 * 1024, "weight": 64 * 1024, "ofmap": 64 * 1024}
    )
    sram_word_bits: int = 64
    requant_multiplier_bits: int = 32

    def __post_init__(self) -> None:
        for f in ("act_bits", "weight_bits", "acc_bits", "sram_word_bits",
                  "requant_multiplier_bits"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 64:
                raise ConfigError(f"energy context {f}: expected an int in [1, 64], got {v!r}")
        sizes = dict(self.sram_bytes)
        if set(sizes) != set(BUFFERS):
            raise ConfigError(
                f"energy context sram_bytes: expected keys {list(BUFFERS)}, got {sorted(sizes)}"
            )
        for k, v in sizes.items():
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ConfigError(
                    f"energy context sram_bytes[{k!r}]: expected a positive int, got {v!r}"
                )
        object.__setattr__(self, "sram_bytes", dict(sorted(sizes.items())))

    def __hash__(self) -> int:
        return hash((self.act_bits, self.weight_bits, self.acc_bits,
                     tuple(self.sram_bytes.items()), self.sram_word_bits,
                     self.requant_multiplier_bits))


def per_action_energy(table: EnergyTable, ctx: EnergyContext) -> dict[str, float]:
    """pJ of one unit of every action in :data:`ACTIONS` for this table and hardware."""
    e: dict[str, float] = {
        "mac": table.int_mult(ctx.act_bits, ctx.weight_bits) + table.int_add(ctx.acc_bits),
        "act_reg_write": table.register(ctx.act_bits),
        "weight_reg_write": table.register(ctx.weight_bits),
        "psum_reg_write": table.register(ctx.acc_bits),
        "dram_read_bytes": table.dram_per_byte(),
        "dram_write_bytes": table.dram_per_byte(),
        "requant": table.int_mult(ctx.acc_bits, ctx.requant_multiplier_bits)
        + table.int_add(ctx.acc_bits),
    }
    for buf in BUFFERS:
        size = ctx.sram_bytes[buf]
        word_bytes = ctx.sram_word_bits / 8.0
        e[f"sram_read_bytes:{buf}"] = table.sram_access(size, ctx.sram_word_bits) / word_bytes
        e[f"sram_write_bytes:{buf}"] = (
            table.sram_access(size, ctx.sram_word_bits, write=True) / word_bytes
        )
    return {a: e[a] for a in ACTIONS}


@dataclass(frozen=True)
class LayerEnergy:
    """Energy of one layer in pJ: per action, per component and the total."""

    layer: str
    by_action: dict[str, float]
    by_component: dict[str, float]
    total_pj: float


@dataclass(frozen=True)
class ModelEnergy:
    """Energy of a whole model: the layers in order, per-component totals, the total."""

    layers: tuple[LayerEnergy, ...]
    by_component: dict[str, float]
    total_pj: float
    per_action_pj: dict[str, float]
    table_name: str


def _check_counters(layer: str, counters: Mapping[str, int]) -> None:
    unknown = sorted(set(counters) - set(ACTIONS))
    if unknown:
        raise ConfigError(
            f"energy counters of layer {layer!r}: unknown action(s) {unknown}; "
            f"expected some of {list(ACTIONS)}"
        )
    for k, v in counters.items():
        if isinstance(v, bool) or not isinstance(v, (int,)) and not (
            hasattr(v, "dtype") and v.dtype.kind in "iu"
        ):
            raise ConfigError(f"energy counters of layer {layer!r} {k}: expected an int, got {v!r}")
        if v < 0:
            raise ConfigError(f"energy counters of layer {layer!r} {k}: expected >= 0, got {v}")


def layer_energy(layer: str, counters: Mapping[str, int],
                 per_action: Mapping[str, float]) -> LayerEnergy:
    """Price one layer's counters (missing actions count 0)."""
    _check_counters(layer, counters)
    by_action = {a: float(int(counters.get(a, 0))) * per_action[a] for a in ACTIONS}
    by_component = {c: 0.0 for c in COMPONENTS}
    for a in ACTIONS:
        by_component[COMPONENT_OF[a]] += by_action[a]
    total = 0.0
    for c in COMPONENTS:
        total += by_component[c]
    return LayerEnergy(layer, by_action, by_component, total)


def model_energy(
    layers: Iterable[tuple[str, Mapping[str, int]]],
    ctx: EnergyContext,
    table: EnergyTable = HOROWITZ_45NM,
) -> ModelEnergy:
    """Price every ``(layer name, counters)`` pair and add the layers up in order."""
    per_action = per_action_energy(table, ctx)
    out = tuple(layer_energy(name, c, per_action) for name, c in layers)
    by_component = {c: 0.0 for c in COMPONENTS}
    for le in out:
        for c in COMPONENTS:
            by_component[c] += le.by_component[c]
    total = 0.0
    for le in out:
        total += le.total_pj
    if not math.isfinite(total):
        raise ConfigError("energy: total is not finite; check the counters and table")
    return ModelEnergy(out, by_component, total, per_action, table.name)
