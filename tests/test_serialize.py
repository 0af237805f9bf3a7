"""Integer graph save / load (specs/compiler.md §6): round trip, and rejection of tampered,
truncated or mismatched files with messages that say what is wrong."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from hwsim.arith import RequantConfig
from hwsim.compiler.quantize import QuantizeConfig, quantize_dynamic, quantize_static
from hwsim.compiler.serialize import load_qgraph, npz_path, save_qgraph
from hwsim.errors import HwsimError, ModelError
from hwsim.ir.builder import GraphBuilder
from hwsim.reference.golden_exec import run_golden

RNG = np.random.default_rng(5)


def _float_graph():
    b = GraphBuilder("ser")
    x = b.input("x", (1, 2, 6, 6))
    y = b.relu6(b.conv2d(x, RNG.normal(size=(4, 2, 3, 3)).astype(np.float32),
                         RNG.normal(size=4).astype(np.float32), pads=1))
    z = b.add(y, b.conv2d(y, RNG.normal(size=(4, 4, 1, 1)).astype(np.float32)))
    p = b.avgpool2d(b.maxpool2d(z, 2), 2, 1, pads=1)
    c = b.concat([p, b.pad(p, (0, 0, 0, 0, 0, 0, 0, 0))], axis=1)
    return b.build(b.linear(b.flatten(b.global_avgpool(c)),
                            RNG.normal(size=(3, 8)).astype(np.float32)))


X = RNG.normal(size=(8, 2, 6, 6)).astype(np.float32)


@pytest.fixture(scope="module")
def qgraph():
    cfg = QuantizeConfig(requant=RequantConfig(mode="custom", multiplier_bits=20,
                                               rounding="half_even"), weights="int4_block")
    return quantize_static(_float_graph(), [{"x": X}], cfg)


def _run_equal(a, b) -> None:
    ra, rb = run_golden(a, {"x": X}), run_golden(b, {"x": X})
    assert ra.codes.keys() == rb.codes.keys()
    for k in ra.codes:
        np.testing.assert_array_equal(ra.codes[k], rb.codes[k])


def test_save_load_run_identical(qgraph, tmp_path: Path) -> None:
    """§6: save -> load -> run gives identical codes; arrays keep dtype and values."""
    jpath, zpath = save_qgraph(qgraph, tmp_path / "m.json")
    assert zpath == npz_path(jpath) and zpath.exists()
    loaded = load_qgraph(jpath)
    _run_equal(qgraph, loaded)
    for n0, n1 in zip(qgraph.nodes, loaded.nodes, strict=True):
        assert (n0.name, n0.op, n0.inputs, n0.output, n0.fused) == \
            (n1.name, n1.op, n1.inputs, n1.output, n1.fused)
        assert dict(n0.attrs) == dict(n1.attrs)
        for k, a in n0.arrays.items():
            assert a.dtype == n1.arrays[k].dtype
            np.testing.assert_array_equal(a, n1.arrays[k])
    assert loaded.tensors == qgraph.tensors
    assert loaded.requant_config == qgraph.requant_config


def test_dynamic_graph_round_trip(tmp_path: Path) -> None:
    """§6: a dynamic graph (NaN scales, float biases) survives the round trip."""
    g = quantize_dynamic(_single_conv())
    save_qgraph(g, tmp_path / "d.json")
    loaded = load_qgraph(tmp_path / "d.json")
    assert loaded.dynamic
    _run_equal(g, loaded)


def _single_conv():
    b = GraphBuilder("dyn")
    x = b.input("x", (1, 2, 6, 6))
    return b.build(b.relu(b.conv2d(x, RNG.normal(size=(3, 2, 3, 3)).astype(np.float32),
                                   RNG.normal(size=3).astype(np.float32))))


def test_tampered_json_rejected(qgraph, tmp_path: Path) -> None:
    """§6: editing a qparam in the JSON breaks its content hash."""
    jpath, _ = save_qgraph(qgraph, tmp_path / "m.json")
    doc = json.loads(jpath.read_text())
    name = next(iter(doc["tensors"]))
    doc["tensors"][name]["zero_point"] += 1
    jpath.write_text(json.dumps(doc))
    with pytest.raises(ModelError, match=r"m\.json: content hash mismatch"):
        load_qgraph(jpath)


def test_tampered_npz_rejected(qgraph, tmp_path: Path) -> None:
    """§6: changing one weight in the NPZ is caught by the recorded SHA-256."""
    jpath, zpath = save_qgraph(qgraph, tmp_path / "m.json")
    with np.load(zpath, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["n0.weight"] = arrays["n0.weight"].copy()
    arrays["n0.weight"].flat[0] ^= 1
    np.savez(zpath, **arrays)
    with pytest.raises(ModelError, match=r"array 'n0\.weight' does not match its SHA-256"):
        load_qgraph(jpath)


def test_npz_dtype_change_rejected(qgraph, tmp_path: Path) -> None:
    """§6: an array with another dtype is reported with both dtypes."""
    jpath, zpath = save_qgraph(qgraph, tmp_path / "m.json")
    with np.load(zpath, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["n0.bias"] = arrays["n0.bias"].astype(np.int64)
    np.savez(zpath, **arrays)
    with pytest.raises(ModelError, match=r"array 'n0\.bias' is <i8\[4\], the JSON records <i4"):
        load_qgraph(jpath)


def test_missing_array_and_missing_npz(qgraph, tmp_path: Path) -> None:
    """§6: every referenced array must be present; the NPZ must exist and be a zip."""
    jpath, zpath = save_qgraph(qgraph, tmp_path / "m.json")
    with np.load(zpath, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "n0.weight_scale"}
    np.savez(zpath, **arrays)
    with pytest.raises(ModelError, match=r"array 'n0\.weight_scale' is missing"):
        load_qgraph(jpath)
    zpath.write_bytes(b"not a zip")
    with pytest.raises(ModelError, match=r"m\.npz: not a readable \.npz file"):
        load_qgraph(jpath)
    zpath.unlink()
    with pytest.raises(ModelError, match=r"m\.npz: array file not found"):
        load_qgraph(jpath)


def test_schema_version_and_format_checked(qgraph, tmp_path: Path) -> None:
    """§6: an unknown schema version or a foreign JSON file is rejected by name."""
    jpath, _ = save_qgraph(qgraph, tmp_path / "m.json")
    doc = json.loads(jpath.read_text())
    doc["schema_version"] = 99
    jpath.write_text(json.dumps(doc))
    with pytest.raises(ModelError, match="schema_version 99 is not supported"):
        load_qgraph(jpath)
    jpath.write_text(json.dumps({"hello": 1}))
    with pytest.raises(ModelError, match="not an hwsim integer graph"):
        load_qgraph(jpath)
    jpath.write_text("{")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_qgraph(jpath)


def test_npz_has_no_pickles(qgraph, tmp_path: Path) -> None:
    """§6: the NPZ holds plain .npy members only (loadable with allow_pickle=False)."""
    _, zpath = save_qgraph(qgraph, tmp_path / "m.json")
    with zipfile.ZipFile(zpath) as z:
        assert all(n.endswith(".npy") for n in z.namelist())
    with np.load(zpath, allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)


def test_save_requires_json_suffix(qgraph, tmp_path: Path) -> None:
    with pytest.raises(HwsimError, match="must end in .json"):
        save_qgraph(qgraph, tmp_path / "m.txt")
