"""ArrayConfig validation and the TOML loader (specs/cycle_model.md §C2, §C6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwsim.arith import RequantConfig
from hwsim.errors import ConfigError
from hwsim.sim.config import ArrayConfig, array_config_from_dict, load_array_config

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "arrays" / "ws16x16.toml"


def test_defaults_are_documented_values() -> None:
    """Every key but rows/cols/dataflow has a default."""
    cfg = ArrayConfig(rows=4, cols=8, dataflow="os")
    assert (cfg.act_bits, cfg.weight_bits, cfg.acc_bits, cfg.acc_overflow) == (8, 8, 32, "wrap")
    assert cfg.requant == RequantConfig()
    assert cfg.requant_latency == 2
    assert (cfg.input_sram_bytes, cfg.weight_sram_bytes, cfg.output_sram_bytes) == (
        262144, 262144, 131072)
    assert cfg.dram_bytes_per_cycle == 16.0 and cfg.clock_mhz == 500.0
    assert cfg.pes == 32


def test_example_toml_loads() -> None:
    cfg = load_array_config(EXAMPLE)
    assert (cfg.rows, cfg.cols, cfg.dataflow) == (16, 16, "ws")
    assert cfg.requant == RequantConfig(mode="dyadic", multiplier_bits=16, rounding="half_up",
                                        output_overflow="saturate")


@pytest.mark.parametrize("path", sorted(EXAMPLE.parent.glob("*.toml")), ids=lambda p: p.name)
def test_every_example_array_loads(path: Path) -> None:
    cfg = load_array_config(path)
    assert array_config_from_dict(cfg.to_dict()) == cfg


def test_round_trip_through_dict() -> None:
    cfg = ArrayConfig(rows=3, cols=5, dataflow="is", acc_bits=20, acc_overflow="saturate",
                      requant=RequantConfig(mode="tflite"))
    assert array_config_from_dict(cfg.to_dict()) == cfg


def test_unknown_key_is_named(tmp_path: Path) -> None:
    p = tmp_path / "a.toml"
    p.write_text('rows = 4\ncols = 4\ndataflow = "ws"\nrow = 3\n')
    with pytest.raises(ConfigError, match=r"unknown key 'row'"):
        load_array_config(p)


def test_unknown_requant_key_is_named(tmp_path: Path) -> None:
    p = tmp_path / "a.toml"
    p.write_text('rows = 4\ncols = 4\ndataflow = "ws"\n[requant]\nmodee = "tflite"\n')
    with pytest.raises(ConfigError, match=r"unknown key 'requant\.modee'"):
        load_array_config(p)


def test_missing_required_key(tmp_path: Path) -> None:
    p = tmp_path / "a.toml"
    p.write_text('rows = 4\ndataflow = "ws"\n')
    with pytest.raises(ConfigError, match=r"missing required key 'cols'"):
        load_array_config(p)


def test_bad_toml(tmp_path: Path) -> None:
    p = tmp_path / "a.toml"
    p.write_text("rows = = 4\n")
    with pytest.raises(ConfigError, match=r"not valid TOML"):
        load_array_config(p)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"rows": 0}, r"^array rows: expected an integer >= 1, got 0$"),
        ({"cols": -2}, r"^array cols: expected an integer >= 1, got -2$"),
        ({"rows": 2.0}, r"^array rows: expected an integer >= 1"),
        ({"dataflow": "rs"}, r"^array dataflow: expected one of ws, os, is, got 'rs'$"),
        ({"act_bits": 1}, r"^array act_bits: expected an integer in \[2, 16\]"),
        ({"weight_bits": 17}, r"^array weight_bits: expected an integer in \[2, 16\]"),
        ({"acc_bits": 15}, r"^array acc_bits: expected an integer in \[16, 32\] \(at least one "
                           r"product"),
        ({"acc_bits": 40}, r"^array acc_bits: expected an integer in \[16, 32\]"),
        ({"acc_overflow": "clip"}, r"^array acc_overflow: expected one of wrap, saturate, error"),
        ({"requant": "dyadic"}, r"^array requant: expected a hwsim.arith.RequantConfig"),
        ({"requant_latency": -1}, r"^array requant_latency: expected an integer >= 0"),
        ({"input_sram_bytes": 255}, r"^array input_sram_bytes: expected an integer >= 256 "
                                    r"\(two 8x16 tiles"),
        ({"weight_sram_bytes": 10}, r"^array weight_sram_bytes: expected an integer >= 256"),
        ({"output_sram_bytes": 1000}, r"^array output_sram_bytes: expected an integer >= 1024"),
        ({"dram_bytes_per_cycle": 0}, r"^array dram_bytes_per_cycle: expected a number > 0"),
        ({"clock_mhz": float("nan")}, r"^array clock_mhz: expected a number > 0"),
    ],
)
def test_invalid_fields_are_named(kwargs: dict, pattern: str) -> None:
    base = {"rows": 8, "cols": 16, "dataflow": "ws"}
    base.update(kwargs)
    with pytest.raises(ConfigError, match=pattern):
        ArrayConfig(**base)


def test_invalid_requant_table_is_config_error() -> None:
    with pytest.raises(ConfigError, match=r"mode"):
        array_config_from_dict({"rows": 2, "cols": 2, "dataflow": "ws",
                                "requant": {"mode": "fancy"}})
