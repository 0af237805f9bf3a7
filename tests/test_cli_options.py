"""One option vocabulary (issue 13 deliver 1, hwsim.commands.options) and one model-source
resolver (hwsim.sources): every command accepts or rejects each option the same way, takes
every kind of MODEL, and applies one precedence rule (defaults < ARRAY.toml < command line)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from hwsim.cli import build_parser, main
from hwsim.commands.options import array_from_args
from hwsim.errors import HwsimError

COMMANDS = ("verify", "run", "report", "vectors", "sweep", "quantize")

#: option -> a valid value (None: a flag) — the documented vocabulary.
VALUES = {
    "--calib": "c.npy", "--inputs": "x.npy", "--labels": "y.npy", "--samples": "3",
    "--seed": "1", "--profile": "ort_cpu", "--requant": "tflite", "--weights": "fp8",
    "--narrow-range": None, "--act-dtype": "uint8", "--observer": "mse",
    "--qparams": "q.json", "--acc-bits": "24", "--acc-overflow": "saturate",
    "--dynamic": None, "--array": "a.toml", "--energy": "e.toml", "--batch": "4",
    "--json": None, "--out": "o", "--progress": None,
}

#: Which command takes which option; every other pair is refused by the parser.
NOT_FOR = {
    "verify": {"--energy", "--out"},
    "run": {"--labels", "--energy", "--out"},
    "report": set(),
    "vectors": {"--labels", "--samples", "--energy"},
    "sweep": {"--batch"},
    "quantize": {"--labels", "--energy", "--json"},
}

#: Extra arguments a command needs to parse.
REQUIRED = {"sweep": ["--grid", "g.toml"], "quantize": ["--out", "q.json"]}


def _parse(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(argv)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("option", sorted(VALUES))
def test_option_matrix(command: str, option: str, capsys) -> None:
    """Each documented option is accepted by the commands it makes sense for (same dest and
    value everywhere) and refused by the others with argparse's one-line message."""
    value = VALUES[option]
    argv = [command, "m.onnx", *REQUIRED.get(command, [])]
    argv += [option] if value is None else [option, value]
    if option in NOT_FOR[command]:
        with pytest.raises(SystemExit) as exc:
            _parse(argv)
        assert exc.value.code == 2
        assert f"unrecognized arguments: {option}" in capsys.readouterr().err
        return
    args = _parse(argv)
    dest = option.lstrip("-").replace("-", "_")
    got = getattr(args, dest)
    if value is None:
        assert got is True
    elif option in ("--samples", "--seed", "--acc-bits", "--batch"):
        assert got == int(value)
    else:
        assert got == value


BAD_VALUES = [
    ("--samples", "0", "argument --samples: expected an integer >= 1, got '0'"),
    ("--weights", "int3", "argument --weights: invalid choice: 'int3'"),
    ("--acc-overflow", "clip", "argument --acc-overflow: invalid choice: 'clip'"),
    ("--requant", "exact", "argument --requant: invalid choice: 'exact'"),
]


@pytest.mark.parametrize("command,option,bad,message", [
    (command, *case) for command in COMMANDS for case in BAD_VALUES
    if case[0] not in NOT_FOR[command]  # an option a command lacks: test_option_matrix
])
def test_bad_values_one_message(command: str, option: str, bad: str, message: str,
                                capsys) -> None:
    rc = main([command, "m.onnx", *REQUIRED.get(command, []), option, bad])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hwsim {command}: error: {message}"), err


@pytest.fixture(scope="module")
def qmodels(tmp_path_factory) -> dict[str, Path]:
    """The demo CNN as hwsim's integer graph (JSON) and as a QDQ ONNX model."""
    d = tmp_path_factory.mktemp("qsrc")
    assert main(["quantize", "digits", "-o", str(d / "q.json"), "--no-progress"]) == 0
    assert main(["quantize", "digits", "--profile", "ort_cpu", "--format", "qdq", "-o",
                 str(d / "q.onnx"), "--no-progress"]) == 0
    from hwsim.data import load_demo_data

    x, y = load_demo_data("test")
    np.save(d / "x.npy", x[:8])
    np.save(d / "y.npy", y[:8])
    return {"json": d / "q.json", "onnx": d / "q.onnx", "x": d / "x.npy", "y": d / "y.npy",
            "dir": d}


@pytest.mark.parametrize("kind", ["json", "onnx"])
@pytest.mark.parametrize("command", COMMANDS)
def test_quantized_source_refuses_calib_same_message(qmodels, kind: str, command: str,
                                                     capsys) -> None:
    """--calib (compiler option) with a quantized MODEL: one message in every command."""
    out = ["--out", str(qmodels["dir"] / f"o_{command}_{kind}")]
    if command == "quantize":
        out = ["--out", str(qmodels["dir"] / f"o_{kind}.json")]
    extra = ["--grid", "examples/sweeps/small.toml"] if command == "sweep" else []
    if command in ("verify", "run"):
        out = []
    rc = main([command, str(qmodels[kind]), "--calib", str(qmodels["x"]), *extra, *out])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f"hwsim {command}: error: --calib: model {qmodels[kind]} is already "
                   f"quantized ({'hwsim' if kind == 'json' else 'quantized_onnx'}: its own "
                   "scales and zero points are used, nothing is calibrated); drop --calib "
                   "or give the float model")


@pytest.mark.parametrize("kind", ["json", "onnx"])
def test_quantized_sources_in_every_command(qmodels, kind: str, capsys, tmp_path) -> None:
    """hwsim JSON and quantized ONNX run through run, report, vectors (and --check from
    another directory), sweep and verify; the cycle model equals the golden model."""
    m, x = str(qmodels[kind]), str(qmodels["x"])
    assert main(["run", m, "--inputs", x, "--samples", "2", "--check", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["check"]["ok"] and rep["samples"] == 2
    assert rep["model_kind"] == ("hwsim" if kind == "json" else "quantized_onnx")
    assert main(["report", m, "--inputs", x, "--labels", str(qmodels["y"]), "--out",
                 str(tmp_path / "rep"), "--json", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["bit_exact"] is True
    pairs = {(r["reference"], r["candidate"]): r for r in doc["exactness"]}
    assert pairs[("golden", "cycle model (fast)")]["mismatches"] == 0
    assert pairs[("golden", "cycle model (fast)")]["total"] > 0
    assert set(doc["accuracies"]) == {"golden", "fake-quant", "cycle model"}
    assert main(["vectors", m, "--inputs", x, "--out", str(tmp_path / "vec")]) == 0
    capsys.readouterr()
    man = json.loads((tmp_path / "vec" / "manifest.json").read_text())
    assert man["source"]["model"].startswith("source/model.")
    assert man["source"]["calib"] is None
    import os

    cwd = os.getcwd()
    os.chdir(tmp_path.parent)
    try:
        assert main(["vectors", "--check", str(tmp_path / "vec")]) == 0
    finally:
        os.chdir(cwd)
    assert capsys.readouterr().out.strip().endswith(": OK")
    assert main(["sweep", m, "--grid", "examples/sweeps/accumulator_width.toml", "--workers",
                 "0", "--out", str(tmp_path / "sw"), "--json"]) == 0
    sweep = json.loads(capsys.readouterr().out)
    status = {r["label"]: r["status"] for r in sweep["results"]}
    # the model's own folded bias does not fit a 16-bit accumulator: that point fails
    assert "bias: the folded bias must fit the 16-bit accumulator" in status.pop(
        "16x16-ws-256K-acc16")
    assert set(status.values()) == {"ok"}


def _toml(path: Path, **fields: object) -> Path:
    lines = ['rows = 8', 'cols = 8', 'dataflow = "ws"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in fields.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_precedence_defaults_array_cli(tmp_path) -> None:
    """defaults < ARRAY.toml < command line, for the array commands and for verify."""
    from hwsim.commands.verify import options

    arr = _toml(tmp_path / "a.toml", acc_bits=20, acc_overflow="saturate")
    a = _parse(["run", "m.onnx", "--array", str(arr)])
    cfg = array_from_args(a)
    assert (cfg.rows, cfg.acc_bits, cfg.acc_overflow, cfg.requant.mode) == (
        8, 20, "saturate", "dyadic")
    b = _parse(["report", "m.onnx", "--array", str(arr), "--acc-bits", "24", "--requant",
                "tflite"])
    cfg = array_from_args(b)
    assert (cfg.acc_bits, cfg.acc_overflow, cfg.requant.mode) == (24, "saturate", "tflite")
    c = _parse(["run", "m.onnx", "--array", str(arr), "--profile", "ort_cpu"])
    assert array_from_args(c).requant.mode == "float32"
    v = options(_parse(["verify", "m.onnx", "--array", str(arr)]))
    assert (v.acc_bits, v.acc_overflow, v.mode) == (20, "saturate", "dyadic")
    v = options(_parse(["verify", "m.onnx", "--array", str(arr), "--acc-overflow", "wrap"]))
    assert (v.acc_bits, v.acc_overflow) == (20, "wrap")
    v = options(_parse(["verify", "m.onnx"]))
    assert (v.acc_bits, v.acc_overflow, v.mode, v.observer) == (32, "wrap", "dyadic", "minmax")


def test_profile_and_requant_conflict_same_message() -> None:
    for command in ("run", "report", "verify"):
        args = _parse([command, "m.onnx", "--profile", "ort_cpu", "--requant", "dyadic"])
        with pytest.raises(HwsimError, match=r"^--requant dyadic: --profile ort_cpu fixes"):
            if command == "verify":
                from hwsim.commands.verify import options

                options(args)
            else:
                array_from_args(args)


def test_dynamic_refused_by_array_commands(capsys) -> None:
    for command in ("run", "report", "vectors"):
        assert main([command, "digits", "--dynamic", "--out", "x"] if command != "run"
                    else [command, "digits", "--dynamic"]) == 2
        err = capsys.readouterr().err
        assert f"hwsim {command}: error: --dynamic: the array runs static graphs only" in err
