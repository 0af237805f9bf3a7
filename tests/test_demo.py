"""Tests of hwsim.demo and ``hwsim demo`` (needs the packaged digits model)."""

from __future__ import annotations

import json
import re

import pytest

pytest.importorskip("onnx", reason="the onnx extra is not installed")

from hwsim.cli import main  # noqa: E402
from hwsim.report.evaluate import DEMO_MODEL, resolve_model_path  # noqa: E402

needs_demo = pytest.mark.skipif(not resolve_model_path(DEMO_MODEL).is_file(),
                                reason="hwsim/data/digits_cnn.onnx is not installed")


@needs_demo
def test_demo_end_to_end(tmp_path):
    """The demo is bit-exact across executors, writes report + verified vectors."""
    from hwsim.demo import run_demo
    from hwsim.vectors import check_vectors, layer_names

    res = run_demo(tmp_path / "d", samples=32, stepped_samples=1)
    assert res.ok, res.summary
    rep = res.evaluation.report
    cands = {r.candidate for r in rep.exactness if r.normative}
    assert {"fake-quant float64", "cycle model (fast)", "cycle model (stepped)"} <= cands
    assert rep.accuracies["golden"] == rep.accuracies["cycle model"]
    assert re.search(r"\| golden +\| cycle model \(stepped\) +\| all tensors +\| 0 ", res.summary)
    html = (tmp_path / "d" / "report" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4
    names = layer_names(res.vectors_dir)
    assert names and check_vectors(res.vectors_dir) == []
    assert re.search(r"\| bit-exact \(normative pairs\) \| yes", res.summary)


@needs_demo
def test_demo_cli_json(tmp_path, capsys):
    """``hwsim demo --json``: exit 0, JSON with the report and the files written."""
    assert main(["demo", "--out", str(tmp_path / "d"), "--samples", "8",
                 "--stepped-samples", "0", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True and doc["vector_problems"] == []
    assert doc["report"]["summary"]["model"]


def test_demo_cli_rejects_negative_samples(capsys):
    """Bad options are one error line and exit code 2; --samples 0 is refused too (one
    meaning for N across commands: N >= 1, omitted = all)."""
    for n in ("-1", "0"):
        assert main(["demo", "--samples", n]) == 2
        assert capsys.readouterr().err.strip() == (
            f"hwsim demo: error: argument --samples: expected an integer >= 1, got '{n}' "
            "(see hwsim demo --help)")


@needs_demo
def test_narrow_accumulator_overflows_are_reported_and_simulated_exactly():
    """arithmetic.md §7: a 16-bit wrapping accumulator overflows on the demo CNN; the
    report counts the events per layer and the cycle model still equals the golden model."""
    from hwsim.report.evaluate import ModelSource, evaluate
    from hwsim.sim.config import ArrayConfig

    config = ArrayConfig(rows=16, cols=16, dataflow="ws", acc_bits=16, acc_overflow="wrap")
    ev = evaluate(ModelSource(DEMO_MODEL, samples=4), config, stepped_samples=1)
    assert sum(layer.overflow_events for layer in ev.report.layers) > 0
    rows = {r.candidate: r for r in ev.report.exactness}
    assert rows["cycle model (fast)"].mismatches == 0
    assert rows["cycle model (stepped)"].mismatches == 0
