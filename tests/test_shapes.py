"""Shapes as declared (issue 13 deliver 2, specs/ir.md §6): a fixed leading dimension is
kept, a symbolic one takes the batch size, an input file that does not fit is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwsim.cli import main
from hwsim.errors import HwsimError
from hwsim.sim.config import ArrayConfig
from hwsim.sim.run import run_model

RNG = np.random.default_rng(13)


def _gemm(path: Path, m: int | str, k: int, n: int) -> Path:
    w = numpy_helper.from_array(RNG.normal(size=(k, n)).astype(np.float32), "w")
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "gemm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])], [w])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_fixed_batch_gemm_256_on_32x32_ws(tmp_path) -> None:
    """[256, 256] @ [256, 256] on a 32x32 WS array: 256·256·256 MACs, and the array cycles
    of cycle_model §C5 (ws: ⌈N/C⌉·⌈K/R⌉·(2R + C + M − 2) + L) with M = 256, not 1."""
    model = _gemm(tmp_path / "g.onnx", 256, 256, 256)
    np.save(tmp_path / "x.npy", RNG.normal(size=(256, 256)).astype(np.float32))
    config = ArrayConfig(rows=32, cols=32, dataflow="ws")
    rep, _ = run_model(str(model), config, inputs=str(tmp_path / "x.npy"), check=True)
    (layer,) = rep["layers"]
    assert layer["counters"]["macs"] == 16_777_216 == 256 ** 3
    r = c = 32
    m = k = n = 256
    assert layer["counters"]["array_cycles"] == (
        -(-n // c)) * (-(-k // r)) * (2 * r + c + m - 2) + config.requant_latency
    assert rep["samples"] == 256 and rep["check"]["ok"]


def test_fixed_batch_input_that_does_not_fit(tmp_path, capsys) -> None:
    model = _gemm(tmp_path / "g.onnx", 8, 4, 3)
    np.save(tmp_path / "x.npy", RNG.normal(size=(12, 4)).astype(np.float32))
    for command in ("run", "verify", "report"):
        extra = ["--out", str(tmp_path / "o")] if command == "report" else []
        assert main([command, str(model), "--inputs", str(tmp_path / "x.npy"), *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err == (f"hwsim {command}: error: --inputs {tmp_path / 'x.npy'}: 12 inputs of "
                       "shape (4,); the model's input 'x' declares the fixed shape (8, 4) "
                       "(leading dimension 8, not a batch size): give a multiple of 8 inputs")


def test_symbolic_batch_takes_the_batch_size(tmp_path) -> None:
    """A symbolic leading dimension: --samples inputs, --batch of them per array run."""
    model = _gemm(tmp_path / "g.onnx", "N", 16, 8)
    np.save(tmp_path / "x.npy", RNG.normal(size=(6, 16)).astype(np.float32))
    config = ArrayConfig(rows=4, cols=4, dataflow="ws")
    one, _ = run_model(str(model), config, inputs=str(tmp_path / "x.npy"), samples=6,
                       batch=6)
    assert one["layers"][0]["counters"]["macs"] == 6 * 16 * 8
    split, _ = run_model(str(model), config, inputs=str(tmp_path / "x.npy"), samples=6,
                         batch=3)
    assert split["layers"][0]["counters"]["macs"] == 6 * 16 * 8
    assert split["total_cycles"] > one["total_cycles"]  # fill and drain per run


def test_fixed_batch_vectors_and_report(tmp_path, capsys) -> None:
    """report simulates one run of D rows; vectors --sample I is run I (inputs I·D..)."""
    model = _gemm(tmp_path / "g.onnx", 4, 8, 4)
    x = RNG.normal(size=(8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert main(["report", str(model), "--inputs", str(tmp_path / "x.npy"), "--out",
                 str(tmp_path / "rep"), "--format", "json"]) == 0
    import json

    doc = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert doc["summary"]["macs"] == 4 * 8 * 4
    assert main(["vectors", str(model), "--inputs", str(tmp_path / "x.npy"), "--sample", "1",
                 "--out", str(tmp_path / "vec")]) == 0
    from hwsim.vectors import load_layer_vectors

    v = load_layer_vectors(tmp_path / "vec", "mm")
    assert v["input"].shape == (4, 8)
    with pytest.raises(HwsimError, match=r"sample: expected an index in \[0, 2\), got 2"):
        from hwsim.report.evaluate import ModelSource
        from hwsim.vectors.generate import generate_vectors

        generate_vectors(tmp_path / "vec2", ModelSource(str(model), inputs=str(
            tmp_path / "x.npy")), ArrayConfig(rows=4, cols=4, dataflow="ws"), sample=2)
    capsys.readouterr()
