"""Streamed execution (``--batch``) and progress bars (specs/compiler.md §7, "Streaming" and
"Progress"): reports do not depend on the batch size, bars go to stderr only."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from hwsim.cli import main
from hwsim.data import demo_model_path, load_demo_data
from hwsim.progress import auto_enabled, bar, progress, progress_scope

pytestmark = pytest.mark.skipif(not demo_model_path().is_file(),
                                reason="demo model not installed")

N = 23  # not a multiple of 3: the last batch is short


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("stream")
    calib, _ = load_demo_data("calib")
    x, y = load_demo_data("test")
    np.save(d / "calib.npy", calib[:40])
    np.save(d / "x.npy", x[:N])
    np.save(d / "y.npy", y[:N])
    arr = (demo_model_path().parent.parent.parent / "examples/arrays/ws16x16.toml").read_text()
    (d / "acc16.toml").write_text(arr.replace("acc_bits = 32", "acc_bits = 16"))
    (d / "ws16.toml").write_text(arr)
    return {"model": str(demo_model_path()), "calib": str(d / "calib.npy"),
            "inputs": str(d / "x.npy"), "labels": str(d / "y.npy"),
            "acc16": str(d / "acc16.toml"), "ws16": str(d / "ws16.toml"), "dir": str(d)}


def _verify(digits, capsys, *extra: str) -> tuple[dict, str]:
    rc = main(["verify", digits["model"], "--calib", digits["calib"], "--inputs",
               digits["inputs"], "--labels", digits["labels"], "--json", *extra])
    out, err = capsys.readouterr()
    assert rc in (0, 1)
    return json.loads(out), err


@pytest.mark.parametrize("options", [
    (),
    ("--dynamic",),
    ("--acc-bits", "16", "--acc-overflow", "saturate"),
    ("--requant", "tflite", "--observer", "moving_average"),
])
def test_verify_report_identical_for_batch_1_3_all(digits, capsys, options) -> None:
    """§7 Streaming: the JSON report (pairs, layers, accuracy) is the same for --batch 1, 3
    and all inputs, and equals the executors run once on the whole set."""
    reports = [_verify(digits, capsys, *options, "--batch", str(b))[0] for b in (1, 3, N)]
    assert reports[0] == reports[1] == reports[2]
    rep = reports[0]
    assert rep["samples"] == N and set(rep["accuracy"]) == {"float", "fakequant", "golden"}
    if "--dynamic" in options:
        return
    from hwsim.reference.fakequant_exec import run_fakequant
    from hwsim.reference.golden_exec import run_golden
    from hwsim.verify import VerifyOptions, build_qgraph, load_model

    opts = {"--acc-bits": {"acc_bits": 16, "acc_overflow": "saturate"},
            "--requant": {"mode": "tflite", "observer": "moving_average"}}.get(
        options[0] if options else "", {})
    graph = load_model(digits["model"])
    qg = build_qgraph(graph, np.load(digits["calib"]), VerifyOptions(**opts))
    x, y = np.load(digits["inputs"]), np.load(digits["labels"])
    gold = run_golden(qg, {graph.inputs[0]: x})
    fq = run_fakequant(qg, {graph.inputs[0]: x})
    pred = gold.codes[qg.outputs[0]].argmax(axis=1)
    assert rep["accuracy"]["golden"] == float(np.mean(pred == y))
    mism = sum(int(np.count_nonzero(gold.codes[n.output] != fq.codes[n.output]))
               for n in qg.nodes)
    assert rep["pairs"]["golden_vs_fakequant"]["mismatches"] == mism
    for row in rep["layers"]:
        if "overflow_events" in row:
            assert row["overflow_events"] == gold.overflow_events[row["node"]]
    if "--acc-bits" in options:
        assert sum(r.get("overflow_events", 0) for r in rep["layers"]) > 0


def test_report_identical_for_batch_sizes(digits) -> None:
    """The report's exactness rows (fast and stepped cycle model included) and accuracies
    do not depend on the batch size; stepped inputs span several batches."""
    import dataclasses

    from hwsim.report import to_json_dict
    from hwsim.report.evaluate import ModelSource, evaluate
    from hwsim.sim.config import ArrayConfig

    src = ModelSource(digits["model"], calib=digits["calib"], inputs=digits["inputs"],
                      labels=digits["labels"], samples=10)
    base = ArrayConfig(rows=8, cols=8, dataflow="ws")
    for config in (base, dataclasses.replace(base, acc_bits=16)):
        docs = [to_json_dict(evaluate(src, config, stepped_samples=3, batch=b).report)
                for b in (1, 4, 10)]
        assert docs[0] == docs[1] == docs[2]
        rows = {r["candidate"]: r for r in docs[0]["exactness"]}
        stepped, fast = rows["cycle model (stepped)"], rows["cycle model (fast)"]
        assert stepped["total"] * 10 == fast["total"] * 3
        assert rows["cycle model (fast)"]["mismatches"] == 0
        assert set(docs[0]["accuracies"]) == {"float model", "fake-quant", "golden",
                                              "cycle model"}


def _run(digits, capsys, *extra: str) -> dict:
    if "--array" not in extra:
        extra = ("--array", digits["ws16"], *extra)
    rc = main(["run", digits["model"], "--calib", digits["calib"], "--inputs",
               digits["inputs"], "--json", "--check", *extra])
    out = capsys.readouterr().out
    rep = json.loads(out)
    assert rc == 0 and rep["check"]["ok"]
    return rep


def test_run_sums_counters_over_batch_runs(digits, capsys) -> None:
    """hwsim run: each batch is one run on the array; counters and cycles add up over the
    runs, the first overflow location is the one of the whole set (§C7 order)."""
    one = _run(digits, capsys, "--samples", "1")
    three = _run(digits, capsys, "--samples", "3", "--batch", "1")
    assert three["batch"] == 1 and three["samples"] == 3
    assert three["total_cycles"] == 3 * one["total_cycles"]
    for a, b in zip(one["layers"], three["layers"], strict=True):
        assert b["counters"]["macs"] == 3 * a["counters"]["macs"]
        assert b["utilisation"] == pytest.approx(a["utilisation"])
    per_batch = _run(digits, capsys, "--array", digits["acc16"], "--samples", "5", "--batch", "2")
    whole = _run(digits, capsys, "--array", digits["acc16"], "--samples", "5", "--batch", "5")
    firsts = [(a["counters"]["first_overflow"], b["counters"]["first_overflow"])
              for a, b in zip(per_batch["layers"], whole["layers"], strict=True)]
    assert any(f is not None for f, _ in firsts)
    assert all(f == g for f, g in firsts)
    assert [x["counters"]["overflow_events"] for x in per_batch["layers"]] == \
        [x["counters"]["overflow_events"] for x in whole["layers"]]


def test_progress_flag_draws_bars_on_stderr_only(digits, capsys) -> None:
    """--progress: tqdm bars (calibration, verify with image counts) on stderr; stdout stays
    one valid JSON object. Without it (stderr not a terminal) stderr stays empty."""
    rep, err = _verify(digits, capsys, "--batch", "8", "--progress")
    assert rep["samples"] == N
    assert "calibration" in err and "verify" in err and f"{N}/{N}" in err and "img" in err
    rep2, err2 = _verify(digits, capsys, "--batch", "8")
    assert err2 == "" and rep2 == rep


def test_run_and_report_progress(digits, capsys, tmp_path) -> None:
    """run and report draw their bars on stderr with --progress; --no-progress wins."""
    assert main(["run", digits["model"], "--array", digits["ws16"], "--inputs",
                 digits["inputs"], "--calib", digits["calib"], "--samples", "4", "--batch", "2",
                 "--json", "--progress"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["samples"] == 4 and "run" in err and "4/4" in err
    assert main(["report", digits["model"], "--inputs", digits["inputs"], "--calib",
                 digits["calib"], "--samples", "4", "--out", str(tmp_path / "r"),
                 "--format", "json", "--json", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["summary"]["bit_exact"] and "img/s" not in err


def test_progress_helpers(capsys, monkeypatch) -> None:
    """auto_enabled: the flag wins; otherwise on only for a terminal without --json.
    progress()/bar() draw on stderr when enabled and are silent otherwise."""
    assert auto_enabled(True, json_output=True) and not auto_enabled(False)

    class Tty:
        def isatty(self) -> bool:
            return True

        def write(self, s: str) -> int:
            return len(s)

        def flush(self) -> None:
            return None

    monkeypatch.setattr(sys, "stderr", Tty())
    assert auto_enabled(None) and not auto_enabled(None, json_output=True)
    monkeypatch.undo()
    assert not auto_enabled(None)  # pytest's captured stderr is not a terminal
    assert list(progress(range(5), desc="points")) == list(range(5))
    assert capsys.readouterr().err == ""
    with progress_scope(True):
        assert list(progress(range(5), desc="points", unit="pt")) == list(range(5))
        with bar(10, "verify") as b:
            b.stage("golden")
            b.update(10)
    out, err = capsys.readouterr()
    assert out == "" and "points" in err and "5/5" in err and "10/10" in err
    assert "golden" in err and set(b.stage_seconds) == {"golden"}


def test_vectors_progress_counts_layers(digits, capsys, tmp_path) -> None:
    """hwsim vectors --progress: one bar tick per conv/gemm layer, on stderr."""
    assert main(["vectors", digits["model"], "--calib", digits["calib"], "--inputs",
                 digits["inputs"], "--out", str(tmp_path / "v"), "--json", "--progress",
                 "--batch", "7"]) == 0
    out, err = capsys.readouterr()
    layers = json.loads(out)["layers"]
    assert f"{len(layers)}/{len(layers)}" in err and "layer" in err and "calibration" in err
