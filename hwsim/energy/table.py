"""Energy-per-action tables (specs/energy.md §2–§3).

An :class:`EnergyTable` holds measured anchor points (operand width → pJ, SRAM size →
pJ per 64-bit access, DRAM pJ per 64-bit access) and the interpolation rules of
specs/energy.md §3 that turn them into the energy of any action:

* integer add of ``b`` bits: log-log (power-law) interpolation between the anchor widths,
  the end segments extrapolated with their own slope (§3.1);
* integer multiply of an ``a``-bit by a ``w``-bit operand: the square-width table evaluated
  at the geometric-mean width ``sqrt(a·w)`` (array-multiplier energy ∝ a·w, §3.2);
* SRAM access of ``bits`` bits to a buffer of ``size_bytes``: energy per 64-bit access
  interpolated linearly in log2(size) between anchors, end slopes extrapolated, floored at
  the smallest anchor's value ÷ 4; scaled linearly by ``bits / 64`` (§3.3);
* DRAM: ``dram_pj_per_64b / 8`` per byte (§3.4);
* register (flip-flop) access: ``register_pj_per_bit × bits`` (§3.5).

The default table is :data:`HOROWITZ_45NM` (Horowitz, ISSCC 2014, 45 nm, 0.9 V); user
tables are TOML files read by :func:`load_energy_table`.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwsim.errors import ConfigError

Anchors = tuple[tuple[float, float], ...]


def _check_anchors(field: str, anchors: Anchors) -> Anchors:
    if not isinstance(anchors, tuple) or len(anchors) < 1:
        raise ConfigError(f"energy table {field}: expected at least one (x, pJ) anchor")
    out: list[tuple[float, float]] = []
    for item in anchors:
        if not isinstance(item, tuple) or len(item) != 2:
            raise ConfigError(f"energy table {field}: expected (x, pJ) pairs, got {item!r}")
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in item):
            raise ConfigError(f"energy table {field}: expected numbers in the (x, pJ) pair, "
                              f"got {item!r}")
        x, e = float(item[0]), float(item[1])
        if not (x > 0 and e > 0 and math.isfinite(x) and math.isfinite(e)):
            raise ConfigError(
                f"energy table {field}: expected positive finite values, got {item!r}"
            )
        out.append((x, e))
    xs = [x for x, _ in out]
    if xs != sorted(xs) or len(set(xs)) != len(xs):
        raise ConfigError(
            f"energy table {field}: anchors must have strictly increasing x, got {xs}"
        )
    return tuple(out)


def _interp(anchors: Anchors, x: float, log_y: bool) -> float:
    """Piecewise-linear interpolation in log2(x) (and log(y) if ``log_y``), end slopes extended."""
    if len(anchors) == 1:
        x0, y0 = anchors[0]
        return y0 * (x / x0) if log_y else y0
    lx = math.log2(x)
    pts = [(math.log2(a), math.log(b) if log_y else b) for a, b in anchors]
    if lx <= pts[0][0]:
        (x0, y0), (x1, y1) = pts[0], pts[1]
    elif lx >= pts[-1][0]:
        (x0, y0), (x1, y1) = pts[-2], pts[-1]
    else:
        i = next(j for j in range(1, len(pts)) if lx <= pts[j][0])
        (x0, y0), (x1, y1) = pts[i - 1], pts[i]
    y = y0 + (y1 - y0) * (lx - x0) / (x1 - x0)
    return math.exp(y) if log_y else y


@dataclass(frozen=True)
class EnergyTable:
    """Per-action energies in picojoules with their interpolation rules (specs/energy.md §3).

    Fields:
      name, source: identification written into reports.
      int_add_pj: ((bits, pJ), ...) integer adder energy anchors.
      int_mult_pj: ((bits, pJ), ...) energy of a bits×bits integer multiplier.
      sram_pj_per_64b: ((size_bytes, pJ), ...) energy of one 64-bit SRAM access.
      sram_write_factor: write energy ÷ read energy (1.0 in Horowitz's table).
      dram_pj_per_64b: energy of one 64-bit DRAM access.
      register_pj_per_bit: energy to write one bit of a pipeline register.
      fp_add_pj, fp_mult_pj: ((bits, pJ), ...) floating-point anchors (reported, used by
        float requantization modes).
    """

    name: str
    source: str
    int_add_pj: Anchors
    int_mult_pj: Anchors
    sram_pj_per_64b: Anchors
    dram_pj_per_64b: float
    register_pj_per_bit: float
    sram_write_factor: float = 1.0
    fp_add_pj: Anchors = ((16.0, 0.4), (32.0, 0.9))
    fp_mult_pj: Anchors = ((16.0, 1.1), (32.0, 3.7))

    def __post_init__(self) -> None:
        for f in ("int_add_pj", "int_mult_pj", "sram_pj_per_64b", "fp_add_pj", "fp_mult_pj"):
            object.__setattr__(self, f, _check_anchors(f, getattr(self, f)))
        for f in ("dram_pj_per_64b", "register_pj_per_bit", "sram_write_factor"):
            v = getattr(self, f)
            if (isinstance(v, bool) or not isinstance(v, (int, float))
                    or not (v > 0 and math.isfinite(v))):
                raise ConfigError(f"energy table {f}: expected a positive number, got {v!r}")
            object.__setattr__(self, f, float(v))
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError("energy table name: expected a non-empty string")

    def int_add(self, bits: int) -> float:
        """pJ of one ``bits``-bit integer addition (§3.1)."""
        _check_bits("bits", bits)
        return _interp(self.int_add_pj, float(bits), log_y=True)

    def int_mult(self, a_bits: int, w_bits: int) -> float:
        """pJ of one ``a_bits`` × ``w_bits`` integer multiplication (§3.2)."""
        _check_bits("a_bits", a_bits)
        _check_bits("w_bits", w_bits)
        return _interp(self.int_mult_pj, math.sqrt(a_bits * w_bits), log_y=True)

    def fp_add(self, bits: int) -> float:
        """pJ of one ``bits``-bit floating-point addition (§3.1 rule on the FP anchors)."""
        _check_bits("bits", bits)
        return _interp(self.fp_add_pj, float(bits), log_y=True)

    def fp_mult(self, bits: int) -> float:
        """pJ of one ``bits``-bit floating-point multiplication (§3.1 rule on the FP anchors)."""
        _check_bits("bits", bits)
        return _interp(self.fp_mult_pj, float(bits), log_y=True)

    def sram_access(self, size_bytes: int, bits: int = 64, write: bool = False) -> float:
        """pJ of one ``bits``-bit access to an SRAM of ``size_bytes`` (§3.3)."""
        if not isinstance(size_bytes, int) or size_bytes <= 0:
            raise ConfigError(f"sram size_bytes: expected a positive int, got {size_bytes!r}")
        _check_bits("bits", bits)
        per64 = _interp(self.sram_pj_per_64b, float(size_bytes), log_y=False)
        per64 = max(per64, self.sram_pj_per_64b[0][1] / 4.0)
        factor = self.sram_write_factor if write else 1.0
        return per64 * (bits / 64.0) * factor

    def dram_per_byte(self) -> float:
        """pJ per byte moved to or from DRAM (§3.4)."""
        return self.dram_pj_per_64b / 8.0

    def register(self, bits: int) -> float:
        """pJ of one ``bits``-bit register write (§3.5)."""
        _check_bits("bits", bits)
        return self.register_pj_per_bit * bits

    def to_dict(self) -> dict[str, Any]:
        """A JSON/TOML-compatible dict that :func:`energy_table_from_dict` reads back."""
        return {
            "name": self.name,
            "source": self.source,
            "int_add_pj": [list(a) for a in self.int_add_pj],
            "int_mult_pj": [list(a) for a in self.int_mult_pj],
            "sram_pj_per_64b": [list(a) for a in self.sram_pj_per_64b],
            "dram_pj_per_64b": self.dram_pj_per_64b,
            "register_pj_per_bit": self.register_pj_per_bit,
            "sram_write_factor": self.sram_write_factor,
            "fp_add_pj": [list(a) for a in self.fp_add_pj],
            "fp_mult_pj": [list(a) for a in self.fp_mult_pj],
        }


def _check_bits(field: str, bits: int) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 64:
        raise ConfigError(f"{field}: expected an int in [1, 64], got {bits!r}")


#: Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014,
#: 45 nm at 0.9 V (values cited one by one in specs/energy.md §2). DRAM: midpoint of the
#: 1.3–2.6 nJ range. Register: the 8-bit add energy per bit (assumption, §3.5).
HOROWITZ_45NM = EnergyTable(
    name="horowitz45",
    source="M. Horowitz, Computing's energy problem, ISSCC 2014, 45 nm, 0.9 V",
    int_add_pj=((8.0, 0.03), (32.0, 0.1)),
    int_mult_pj=((8.0, 0.2), (32.0, 3.1)),
    sram_pj_per_64b=((8 * 1024.0, 10.0), (32 * 1024.0, 20.0), (1024 * 1024.0, 100.0)),
    dram_pj_per_64b=1950.0,
    register_pj_per_bit=0.03 / 8,
    sram_write_factor=1.0,
    fp_add_pj=((16.0, 0.4), (32.0, 0.9)),
    fp_mult_pj=((16.0, 1.1), (32.0, 3.7)),
)

_KEYS = {
    "name", "source", "int_add_pj", "int_mult_pj", "sram_pj_per_64b", "dram_pj_per_64b",
    "register_pj_per_bit", "sram_write_factor", "fp_add_pj", "fp_mult_pj",
}


def energy_table_from_dict(data: Mapping[str, Any], where: str = "energy table") -> EnergyTable:
    """Build a table from a mapping; missing keys take the :data:`HOROWITZ_45NM` value. An
    empty mapping is refused (it would silently mean the default table)."""
    if not data:
        raise ConfigError(f"{where}: empty; expected some of {sorted(_KEYS)} (omit --energy "
                          "for the default Horowitz 45 nm table)")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(_KEYS)}")
    base = HOROWITZ_45NM.to_dict()
    base.update(data)
    kw: dict[str, Any] = {}
    for k, v in base.items():
        if k.endswith("_pj") or k == "sram_pj_per_64b":
            if not isinstance(v, (list, tuple)):
                raise ConfigError(f"{where} {k}: expected a list of [x, pJ] pairs, got {v!r}")
            kw[k] = tuple(tuple(p) if isinstance(p, (list, tuple)) else p for p in v)
        else:
            kw[k] = v
    try:
        return EnergyTable(**kw)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {str(exc).removeprefix('energy table ')}") from None


def load_energy_table(path: str | Path) -> EnergyTable:
    """Read a TOML energy table (format in specs/energy.md §4)."""
    from hwsim.inputs import read_text

    p = Path(path)
    text = read_text(p, "energy table")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"energy table {p}: bad TOML: {exc}") from None
    table = data.get("energy", data)
    if not isinstance(table, dict):
        raise ConfigError(f"energy table {p}: expected an [energy] table, got "
                          f"{type(table).__name__}")
    return energy_table_from_dict(table, where=f"energy table {p}")
