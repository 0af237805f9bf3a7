"""Engine profiles (specs/arithmetic.md §11.1): the table, selection, lowering, records."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.arith import RequantConfig
from hwsim.compiler.profiles import PROFILES, EngineProfile, get_profile, profile_for_requant
from hwsim.compiler.quantize import QuantizeConfig, quantize_dynamic, quantize_static
from hwsim.compiler.serialize import load_qgraph, save_qgraph
from hwsim.errors import ConfigError
from hwsim.ir.builder import GraphBuilder
from hwsim.reference.golden_exec import run_golden


def _graph():
    rng = np.random.default_rng(0)
    b = GraphBuilder("p")
    x = b.input("x", (1, 2, 4, 4))
    c1 = b.relu(b.conv2d(x, rng.normal(0, .5, (3, 2, 3, 3)).astype(np.float32),
                         rng.normal(0, .1, 3).astype(np.float32), pads=1))
    c2 = b.conv2d(c1, rng.normal(0, .5, (3, 3, 1, 1)).astype(np.float32))
    a = b.add(c1, c2)
    p = b.avgpool2d(a, 2)
    g = b.global_avgpool(p)
    return b.build(b.flatten(g, 1))


def _calib():
    return [{"x": np.random.default_rng(1).normal(size=(8, 2, 4, 4)).astype(np.float32)}]


def test_named_profiles_and_table() -> None:
    """Today's single modes are profiles; ort_cpu maps add / pooling to ORT's kernels."""
    assert set(PROFILES) == {"tflite", "tflite_single", "float32", "dyadic", "ort_cpu",
                             "ort_cpu_avx2", "litert_ref"}
    lite = get_profile("litert_ref")  # arithmetic §11.3: conv double rounding, FC float64
    assert (lite.mac_requant("conv").mode, lite.mac_requant("gemm").mode) == (
        "tflite", "float64")
    assert lite.table()["gemm"] == "§8 requant mode 'float64'" and not lite.is_ort
    assert PROFILES["ort_cpu_avx2"].table()["mac_u8s8"] == "avx2_pair_saturation"
    assert PROFILES["ort_cpu"].table()["mac_u8s8"] == "exact"
    for m in ("tflite", "tflite_single", "float32", "dyadic"):
        p = get_profile(m)
        assert p.requant == RequantConfig(mode=m) and not p.is_ort
        assert p.table()["add"] == "hwsim_add"
    ort = get_profile("ort_cpu")
    assert ort.requant.mode == "float32" and ort.is_ort
    t = ort.table()
    assert (t["add"], t["global_avgpool"], t["avgpool"], t["input"]) == (
        "ort_qlinear_add", "ort_qlinear_global_avgpool", "ort_qlinear_avgpool",
        "ort_quantize_linear")
    assert any("qladd_avx2.cpp" in s for s in ort.record()["sources"])


def test_profile_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"^profile: unknown engine profile 'onnx'"):
        get_profile("onnx")
    with pytest.raises(ConfigError, match=r"add: unknown arithmetic 'x'"):
        EngineProfile("bad", RequantConfig(), add="x")
    with pytest.raises(ConfigError, match=r"^requant: profile 'ort_cpu' fixes"):
        QuantizeConfig(profile="ort_cpu", requant=RequantConfig(mode="tflite"))


def test_profile_for_requant() -> None:
    assert profile_for_requant(RequantConfig(mode="tflite")) is PROFILES["tflite"]
    custom = profile_for_requant(RequantConfig(mode="custom", multiplier_bits=8))
    assert custom.name == "custom" and custom.requant.multiplier_bits == 8


def test_quantize_static_lowers_by_profile(tmp_path) -> None:
    """The profile decides the integer ops (§11.1); it is kept through save/load."""
    g = _graph()
    dy = quantize_static(g, _calib(), QuantizeConfig())
    assert dy.profile == "dyadic"
    assert [n.op for n in dy.nodes][2:] == ["add", "avgpool", "global_avgpool", "flatten"]
    ort = quantize_static(g, _calib(), QuantizeConfig(profile="ort_cpu"))
    assert ort.requant_config.mode == "float32" and ort.profile == "ort_cpu"
    assert [n.op for n in ort.nodes][2:] == ["qlinear_add", "qlinear_avgpool",
                                             "qlinear_global_avgpool", "flatten"]
    x = _calib()[0]
    before = run_golden(ort, x).codes
    j, _ = save_qgraph(ort, tmp_path / "m.json")
    back = load_qgraph(j)
    assert back.profile == "ort_cpu"
    after = run_golden(back, x).codes
    assert all(np.array_equal(before[t], after[t]) for t in before)
    with pytest.raises(ConfigError, match="dynamic quantization is not supported"):
        quantize_dynamic(g, QuantizeConfig(profile="ort_cpu"))


def test_array_toml_selects_profile(tmp_path) -> None:
    """`profile = "ort_cpu"` in ARRAY.toml fixes the requant unit and reaches the compiler
    (quantize_config_for); it is kept in the config's plain-data view."""
    from hwsim.sim.config import ArrayConfig, load_array_config
    from hwsim.sim.run import quantize_config_for

    p = tmp_path / "a.toml"
    p.write_text('rows = 4\ncols = 4\ndataflow = "ws"\nprofile = "ort_cpu"\n')
    cfg = load_array_config(p)
    assert cfg.requant.mode == "float32" and cfg.to_dict()["profile"] == "ort_cpu"
    qcfg = quantize_config_for(cfg)
    assert qcfg.profile == "ort_cpu"
    qg = quantize_static(_graph(), _calib(), qcfg)
    assert "qlinear_add" in [n.op for n in qg.nodes]
    with pytest.raises(ConfigError, match=r"^array profile: 'ort_cpu' fixes the requant"):
        ArrayConfig(rows=2, cols=2, dataflow="ws", profile="ort_cpu",
                    requant=RequantConfig(mode="tflite"))
    p.write_text('rows = 4\ncols = 4\ndataflow = "ws"\nprofile = "onnx"\n')
    with pytest.raises(ConfigError, match="unknown engine profile 'onnx'"):
        load_array_config(p)
