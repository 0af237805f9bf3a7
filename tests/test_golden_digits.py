"""The demo digits CNN end to end (compiler §3, §5, §7; arithmetic §9): golden == fake-quant
in dyadic mode on every tensor, ≤ 1 LSB per op in tflite / float32 modes, int8 accuracy
within 1 point of float, and the golden model's speed."""

from __future__ import annotations

import time

import numpy as np
import pytest

from hwsim.data import demo_model_path, load_demo_data
from hwsim.reference.golden_exec import run_golden
from hwsim.verify import VerifyOptions, build_qgraph, load_model, verify_graph


@pytest.fixture(scope="module")
def demo():
    graph = load_model(str(demo_model_path()))
    calib, _ = load_demo_data("calib")
    x, y = load_demo_data("test")
    return graph, calib, x, y


@pytest.fixture(scope="module")
def dyadic_report(demo):
    graph, calib, x, y = demo
    return verify_graph(graph, x, calib=calib, labels=y, opts=VerifyOptions(mode="dyadic"))


def test_dyadic_golden_equals_fakequant(dyadic_report) -> None:
    """§9: 100% equality on every tensor of the digits CNN in dyadic mode."""
    p = dyadic_report["pairs"]["golden_vs_fakequant"]
    assert p["total"] > 0 and p["mismatches"] == 0 and dyadic_report["ok"]


def test_int8_accuracy_within_one_point_of_float(dyadic_report) -> None:
    """compiler §3: default int8 per-channel PTQ keeps accuracy within 1 point of float."""
    acc = dyadic_report["accuracy"]
    print(f"\ndigits int8 dyadic accuracy: {acc}")
    assert acc["float"] > 0.9
    assert abs(acc["golden"] - acc["float"]) <= 0.01
    assert acc["golden"] == acc["fakequant"]


@pytest.mark.parametrize("mode", ["tflite", "float32"])
def test_inexact_modes_reported_within_one_lsb(demo, mode: str) -> None:
    """§9: tflite / float32 vs the float64 reference: ≤ 1 LSB per op, rate reported."""
    graph, calib, x, y = demo
    rep = verify_graph(graph, x, calib=calib, labels=y, opts=VerifyOptions(mode=mode))
    lw = rep["pairs"]["golden_vs_fakequant_layerwise"]
    e2e = rep["pairs"]["golden_vs_fakequant"]
    print(f"\ndigits {mode}: layer-wise {lw['mismatches']}/{lw['total']} "
          f"({lw['mismatches'] / lw['total']:.5f}) max {lw['max_abs_lsb']} LSB; end to end "
          f"{e2e['mismatches']}/{e2e['total']} max {e2e['max_abs_lsb']} LSB; "
          f"accuracy {rep['accuracy']}")
    assert lw["max_abs_lsb"] <= 1
    assert not rep["exact_mode"] and rep["ok"]


@pytest.mark.parametrize("weights,observer", [
    ("int4", "minmax"), ("int4_block", "minmax"), ("fp8", "minmax"),
    ("int8", "percentile"), ("int8", "mse"), ("int8", "entropy"), ("int8", "moving_average"),
])
def test_weight_formats_and_observers_exact(demo, weights: str, observer: str) -> None:
    """compiler §3.1, §3.3: every weight format and observer stays bit-exact in dyadic mode;
    the accuracies are printed (README table)."""
    graph, calib, x, y = demo
    rep = verify_graph(graph, x, calib=calib, labels=y,
                       opts=VerifyOptions(weights=weights, observer=observer))
    print(f"\ndigits weights={weights} observer={observer}: accuracy {rep['accuracy']}")
    assert rep["pairs"]["golden_vs_fakequant"]["mismatches"] == 0
    assert rep["accuracy"]["golden"] > 0.5


def test_golden_speed(demo) -> None:
    """compiler §5: the naive golden model runs the digits CNN at ≤ a few s / 100 images."""
    graph, calib, x, _ = demo
    qg = build_qgraph(graph, calib, VerifyOptions())
    t0 = time.perf_counter()
    run_golden(qg, {qg.inputs[0]: x[:100]})
    wrap_s = time.perf_counter() - t0
    qs = build_qgraph(graph, calib, VerifyOptions(acc_overflow="saturate"))
    t0 = time.perf_counter()
    res = run_golden(qs, {qs.inputs[0]: x[:100]})
    sat_s = time.perf_counter() - t0
    print(f"\ngolden digits CNN, 100 images: wrap {wrap_s:.3f} s, saturate {sat_s:.3f} s")
    assert sum(res.overflow_events.values()) == 0
    assert wrap_s < 5.0 and sat_s < 5.0
    np.testing.assert_array_equal(res.codes[qs.outputs[0]],
                                  run_golden(qg, {qg.inputs[0]: x[:100]}).codes[qg.outputs[0]])


def test_cli_verify_demo_uses_its_own_data(capsys) -> None:
    """compiler §7: `hwsim verify digits_cnn.onnx --json` needs no data files: the demo
    brings its calibration and test sets (no warning); exit 0 in dyadic mode."""
    import json

    from hwsim.cli import main

    rc = main(["verify", str(demo_model_path()), "--json"])
    out, err = capsys.readouterr()
    rep = json.loads(out)
    assert rc == 0 and err == ""
    assert rep["samples"] == load_demo_data("test")[0].shape[0]
    assert rep["accuracy"]["golden"] == rep["accuracy"]["fakequant"]
