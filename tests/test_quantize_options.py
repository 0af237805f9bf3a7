"""Narrow-range weights and an explicit activation dtype (specs/compiler.md §3.3, issue 11)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwsim.cli import main
from hwsim.compiler.quantize import (
    QuantizeConfig,
    activation_tensors,
    quantize_static,
    quantize_weights,
)
from hwsim.data import demo_model_path, load_demo_data
from hwsim.errors import ConfigError
from hwsim.frontends.onnx import load_onnx


def test_narrow_range_weights_never_use_qmin() -> None:
    w = np.array([[1.0, -1.0, 0.5], [-2.0, 2.0, 0.1]], dtype=np.float32)
    full, _ = quantize_weights(w, "int8")
    narrow, s = quantize_weights(w, "int8", narrow_range=True)
    assert narrow.min() >= -127 and narrow.max() <= 127
    assert set(np.abs(narrow).max(axis=1).tolist()) == {127}
    np.testing.assert_allclose(s, [1 / 127, 2 / 127], rtol=1e-6)
    n4, _ = quantize_weights(w, "int4", narrow_range=True)
    assert n4.min() >= -7
    assert full.shape == narrow.shape
    with pytest.raises(ConfigError, match=r"^narrow_range: defined for int8 / int4"):
        QuantizeConfig(weights="fp8", narrow_range=True)


def test_graph_uses_activation_dtype_and_narrow_weights() -> None:
    g = load_onnx(demo_model_path())
    x, _ = load_demo_data("calib")
    qg = quantize_static(g, [{g.inputs[0]: x[:32]}],
                         QuantizeConfig(act_dtype="uint8", narrow_range=True))
    assert {t.dtype for t in qg.tensors.values()} == {"uint8"}
    for n in qg.nodes:
        if n.op in ("conv", "gemm"):
            assert int(n.arrays["weight"].min()) >= -127


def test_cli_options(tmp_path, capsys) -> None:
    x, _ = load_demo_data("test")
    xs = tmp_path / "x.npy"
    np.save(xs, x[:20])
    rc = main(["verify", str(demo_model_path()), "--inputs", str(xs), "--calib", str(xs),
               "--narrow-range", "--act-dtype", "uint8", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert report["narrow_range"] is True and report["act_dtype"] == "uint8"
    assert {r["dtype"] for r in report["layers"]} == {"uint8"}


def test_external_qparams(tmp_path, capsys) -> None:
    """quantize_static with every activation's qparams given (a model's own) reproduces the
    graph without reading calibration data; a JSON file does the same through the CLI;
    unknown tensors are refused by name."""
    g = load_onnx(demo_model_path())
    x, _ = load_demo_data("calib")
    ref = quantize_static(g, [{g.inputs[0]: x[:32]}], QuantizeConfig())
    own = {t: ref.tensors[t] for t in activation_tensors(g)}
    again = quantize_static(g, [], QuantizeConfig(), qparams=own)
    assert all(again.tensors[t] == ref.tensors[t] for t in ref.tensors)
    doc = {"tensors": {t: {"scale": q.scale, "zero_point": q.zero_point, "dtype": q.dtype}
                       for t, q in own.items()}}
    qp = tmp_path / "q.json"
    qp.write_text(json.dumps(doc))
    xs = tmp_path / "x.npy"
    np.save(xs, x[:8])
    assert main(["quantize", str(demo_model_path()), "--calib", str(xs), "--qparams", str(qp),
                 "-o", str(tmp_path / "m.json")]) == 0
    from hwsim.compiler.serialize import load_qgraph

    saved = load_qgraph(tmp_path / "m.json")
    assert all(saved.tensors[t].scale == ref.tensors[t].scale for t in ref.tensors)
    with pytest.raises(ConfigError, match=r"^qparams: 'nope' is not a calibrated"):
        quantize_static(g, [], QuantizeConfig(), qparams={"nope": ref.tensors[g.inputs[0]]})
    qp.write_text('{"tensors": {"x": {"scale": -1, "zero_point": 0}}}')
    with pytest.raises(ConfigError, match=r"tensor 'x'.*scale must be > 0"):
        from hwsim.compiler.quantize import load_qparams_json

        load_qparams_json(str(qp))
