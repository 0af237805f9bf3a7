"""Array configuration: the frozen :class:`ArrayConfig` and its TOML loader.

Every field except ``rows``, ``cols`` and ``dataflow`` has a documented default. Invalid
values raise :class:`hwsim.errors.ConfigError` whose message names the field and says what
was expected (specs/cycle_model.md §C2, §C6).
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwsim.arith import OVERFLOW_POLICIES, RequantConfig
from hwsim.errors import ConfigError

__all__ = ["DATAFLOWS", "MAX_ACC_BITS", "ArrayConfig", "acc_bits_range", "check_acc_bits",
           "load_array_config", "array_config_from_dict"]

#: Supported dataflows: weight-, output- and input-stationary (cycle_model.md §C2).
DATAFLOWS = ("ws", "os", "is")

_MAX_OPERAND_BITS = 16
#: The widest accumulator (arithmetic.md §7: int32 registers).
MAX_ACC_BITS = 32
_MAX_ACC_BITS = MAX_ACC_BITS


def acc_bits_range(act_bits: int, weight_bits: int) -> tuple[int, int]:
    """The one accumulator-width range of hwsim (arrays, ``hwsim verify --acc-bits``, the
    compiler, sweep grids): ``[act_bits + weight_bits, 32]`` — at least one full product
    fits, at most the 32-bit registers of §7. For int8 × int8 that is [16, 32]."""
    return act_bits + weight_bits, MAX_ACC_BITS


def check_acc_bits(acc_bits: object, act_bits: int, weight_bits: int, field: str) -> int:
    """``acc_bits`` if it is an int in :func:`acc_bits_range`, else ConfigError naming
    ``field``."""
    lo, hi = acc_bits_range(act_bits, weight_bits)
    if not _is_int(acc_bits) or not lo <= acc_bits <= hi:  # type: ignore[operator]
        raise ConfigError(
            f"{field}: expected an integer in [{lo}, {hi}] (at least one product, "
            f"act_bits + weight_bits = {act_bits} + {weight_bits}), got {acc_bits!r}")
    return acc_bits  # type: ignore[return-value]


def _tile_bytes(elements: int, bits: int) -> int:
    return -(-elements * bits // 8)


@dataclass(frozen=True)
class ArrayConfig:
    """A systolic MAC array with its buffers and output stage.

    Fields:
        rows, cols: PE grid (``R`` rows, ``C`` columns), each ≥ 1.
        dataflow: ``"ws"``, ``"os"`` or ``"is"`` (§C2).
        act_bits, weight_bits: operand widths in bits (2..16); default 8 / 8.
        acc_bits: accumulator width, ``act_bits + weight_bits ≤ acc_bits ≤ 32``; default 32.
        acc_overflow: accumulator policy after every addition (arithmetic.md §7):
            ``"wrap"`` (default), ``"saturate"`` or ``"error"``.
        requant: the requantization unit (:class:`hwsim.arith.RequantConfig`); default its
            defaults (dyadic, 16-bit multiplier, half-up).
        requant_latency: pipeline latency ``L`` of the requantization unit in cycles (≥ 0,
            default 2, §C4).
        input_sram_bytes, weight_sram_bytes, output_sram_bytes: buffer sizes in bytes, each
            double-buffered, so each must hold two ``R×C`` tiles of its element width
            (default 256 KiB, 256 KiB, 128 KiB, §C6).
        dram_bytes_per_cycle: DRAM bandwidth in bytes per array cycle (> 0, default 16).
        clock_mhz: array clock in MHz (> 0, default 500), used to convert cycles to time.
        mapping: how GEMMs are tiled onto the buffers (§C6.4): ``"auto"`` (default, the
            mapper), ``"fixed"`` (the legacy fold-order model, §C6.5) or a
            :class:`hwsim.sim.mapping.Mapping` (TOML: a table ``{order, tm, tk, tn, keep}``).
        objective: what ``"auto"`` minimises: ``"dram"`` (default), ``"energy"``, ``"cycles"``.
        dram_latency_cycles: cycles added to every DMA transfer (burst/latency term, ≥ 0,
            default 0, §C6.3).
        layer_mappings: per-layer pins, ``((layer name, setting), …)`` with a setting as for
            ``mapping`` (TOML: a table of tables by layer name).
        profile: engine profile name (specs/arithmetic.md §11; ``profile = "ort_cpu"`` in
            the TOML): fixes ``requant`` and how the compiler lowers add and pooling;
            ``""`` (default) is the profile of ``requant``.
    """

    rows: int
    cols: int
    dataflow: str
    act_bits: int = 8
    weight_bits: int = 8
    acc_bits: int = 32
    acc_overflow: str = "wrap"
    requant: RequantConfig = field(default_factory=RequantConfig)
    requant_latency: int = 2
    input_sram_bytes: int = 256 * 1024
    weight_sram_bytes: int = 256 * 1024
    output_sram_bytes: int = 128 * 1024
    dram_bytes_per_cycle: float = 16.0
    clock_mhz: float = 500.0
    profile: str = ""
    mapping: Any = "auto"
    objective: str = "dram"
    dram_latency_cycles: int = 0
    layer_mappings: tuple = ()

    def __post_init__(self) -> None:
        if self.profile:
            from hwsim.compiler.profiles import get_profile

            prof = get_profile(self.profile)
            if self.requant not in (RequantConfig(), prof.requant):
                raise ConfigError(f"array profile: {self.profile!r} fixes the requant unit "
                                  f"({prof.requant.mode!r}); give one or the other")
            object.__setattr__(self, "requant", prof.requant)
        for name in ("rows", "cols"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ConfigError(f"array {name}: expected an integer >= 1, got {value!r}")
        if self.dataflow not in DATAFLOWS:
            raise ConfigError(
                f"array dataflow: expected one of {', '.join(DATAFLOWS)}, got {self.dataflow!r}"
            )
        for name in ("act_bits", "weight_bits"):
            value = getattr(self, name)
            if not _is_int(value) or not 2 <= value <= _MAX_OPERAND_BITS:
                raise ConfigError(
                    f"array {name}: expected an integer in [2, {_MAX_OPERAND_BITS}], got {value!r}"
                )
        check_acc_bits(self.acc_bits, self.act_bits, self.weight_bits, "array acc_bits")
        if self.acc_overflow not in OVERFLOW_POLICIES:
            raise ConfigError(
                f"array acc_overflow: expected one of {', '.join(OVERFLOW_POLICIES)}, "
                f"got {self.acc_overflow!r}"
            )
        if not isinstance(self.requant, RequantConfig):
            raise ConfigError(
                f"array requant: expected a hwsim.arith.RequantConfig, got {self.requant!r}"
            )
        if not _is_int(self.requant_latency) or self.requant_latency < 0:
            raise ConfigError(
                f"array requant_latency: expected an integer >= 0, got {self.requant_latency!r}"
            )
        tile = self.rows * self.cols
        for name, bits in (
            ("input_sram_bytes", self.act_bits),
            ("weight_sram_bytes", self.weight_bits),
            ("output_sram_bytes", self.acc_bits),
        ):
            value = getattr(self, name)
            need = 2 * _tile_bytes(tile, bits)
            if not _is_int(value) or value < need:
                raise ConfigError(
                    f"array {name}: expected an integer >= {need} (two {self.rows}x{self.cols} "
                    f"tiles of {bits}-bit elements, double-buffered), got {value!r}"
                )
        for name in ("dram_bytes_per_cycle", "clock_mhz"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"array {name}: expected a number > 0, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"array {name}: expected a number > 0, got {value!r}")
        object.__setattr__(self, "mapping", _mapping_setting(self.mapping, "array mapping"))
        if isinstance(self.layer_mappings, dict):
            object.__setattr__(self, "layer_mappings", tuple(self.layer_mappings.items()))
        if not isinstance(self.layer_mappings, tuple):
            raise ConfigError(f"array layer_mappings: expected a table of layer names, got "
                              f"{self.layer_mappings!r}")
        object.__setattr__(self, "layer_mappings", tuple(
            (str(k), _mapping_setting(v, f"array layer_mappings.{k}"))
            for k, v in self.layer_mappings))
        from hwsim.sim.mapping import OBJECTIVES

        if self.objective not in OBJECTIVES:
            raise ConfigError(f"array objective: expected one of {', '.join(OBJECTIVES)}, "
                              f"got {self.objective!r}")
        if not _is_int(self.dram_latency_cycles) or self.dram_latency_cycles < 0:
            raise ConfigError(f"array dram_latency_cycles: expected an integer >= 0, got "
                              f"{self.dram_latency_cycles!r}")

    @property
    def pes(self) -> int:
        """Number of processing elements ``R·C``."""
        return self.rows * self.cols

    def to_dict(self) -> dict[str, Any]:
        """Plain-data view (the ``requant`` table nested), the inverse of the loader."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["requant"] = {
            f.name: getattr(self.requant, f.name) for f in dataclasses.fields(self.requant)
        }
        if not isinstance(self.mapping, str):
            out["mapping"] = self.mapping.to_dict()
        out["layer_mappings"] = {k: v if isinstance(v, str) else v.to_dict()
                                 for k, v in self.layer_mappings}
        return out


def _mapping_setting(value: object, source: str) -> Any:
    """``"auto"``, ``"fixed"`` or a :class:`hwsim.sim.mapping.Mapping` (from a table)."""
    from hwsim.sim.mapping import mapping_from_data

    if isinstance(value, str):
        if value not in ("auto", "fixed"):
            raise ConfigError(f"{source}: expected \"auto\", \"fixed\" or a table "
                              f"{{order, tm, tk, tn, keep}}, got {value!r}")
        return value
    return mapping_from_data(value, source)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_FIELDS = {f.name for f in dataclasses.fields(ArrayConfig)}


def array_config_from_dict(data: dict[str, Any], source: str = "array config") -> ArrayConfig:
    """Build an :class:`ArrayConfig` from plain data (a parsed TOML document).

    Top-level keys are the :class:`ArrayConfig` fields; ``requant`` is a table of
    :class:`hwsim.arith.RequantConfig` fields. An unknown key raises ConfigError naming it.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a table of array fields, got {type(data).__name__}")
    for key in data:
        if key not in _FIELDS:
            raise ConfigError(
                f"{source}: unknown key {key!r}; expected one of {', '.join(sorted(_FIELDS))}"
            )
    for key in ("rows", "cols", "dataflow"):
        if key not in data:
            raise ConfigError(f"{source}: missing required key {key!r}")
    kwargs = dict(data)
    if "requant" in kwargs:
        table = kwargs["requant"]
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: requant: expected a table, got {table!r}")
        known = {f.name for f in dataclasses.fields(RequantConfig)}
        for key in table:
            if key not in known:
                raise ConfigError(
                    f"{source}: unknown key 'requant.{key}'; expected one of "
                    f"{', '.join(sorted(known))}"
                )
        try:
            kwargs["requant"] = RequantConfig(**table)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: requant: {exc}") from None
    try:
        return ArrayConfig(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def load_array_config(path: str | Path) -> ArrayConfig:
    """Read an :class:`ArrayConfig` from a TOML file (see ``examples/arrays/ws16x16.toml``)."""
    from hwsim.inputs import read_text

    path = Path(path)
    text = read_text(path, "array config")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return array_config_from_dict(data, source=str(path))
