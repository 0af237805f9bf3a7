"""Shared builders of the hostile-input suite (issue 9): a tiny valid ONNX model and its
data, a snapshot of a directory (hash + mtime of every file) and the CLI runner that checks
the exit-code contract (hwsim.cli: one error line on stderr naming the culprit, no
traceback)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hwsim.cli import main

RNG_SEED = 9


def tiny_model(*, opset: int = 17, input_shape: list | None = None, w1=None, b1=None,
               wf=None, extra_init: list | None = None, nodes: list | None = None,
               input_type: int = TensorProto.FLOAT) -> onnx.ModelProto:
    """Conv(4x1x3x3)+bias -> Relu -> GlobalAveragePool -> Flatten -> Gemm(3x4): x[1,1,8,8]
    -> y[1,3]; every part can be replaced to make it hostile."""
    rng = np.random.default_rng(RNG_SEED)
    w1 = rng.normal(scale=0.4, size=(4, 1, 3, 3)).astype(np.float32) if w1 is None else w1
    b1 = rng.normal(size=4).astype(np.float32) if b1 is None else b1
    wf = rng.normal(size=(3, 4)).astype(np.float32) if wf is None else wf
    init = [numpy_helper.from_array(np.asarray(w1), "w1"),
            numpy_helper.from_array(np.asarray(b1), "b1"),
            numpy_helper.from_array(np.asarray(wf), "wf"),
            numpy_helper.from_array(rng.normal(size=3).astype(np.float32), "bf")]
    init += extra_init or []
    if nodes is None:
        nodes = [
            helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
            helper.make_node("GlobalAveragePool", ["r1"], ["g"], name="gap"),
            helper.make_node("Flatten", ["g"], ["f"], name="flat"),
            helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], name="fc", transB=1),
        ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("x", input_type, input_shape or [1, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], init)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def save_model(model: onnx.ModelProto, path: Path) -> Path:
    """Serialise without onnx.save's checks (hostile models must be written as they are)."""
    path.write_bytes(model.SerializeToString())
    return path


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """{relative path: (sha256, mtime_ns)} of every file under ``root`` (symlinks as their
    target text)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = ("link:" + str(p.readlink()), 0)
        elif p.is_file():
            out[rel] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
    return out


#: stderr lines that are not errors: progress and warnings of the commands.
_NOISE = re.compile(r"^(hwsim \w+: (?!error:|internal error)|\s*$|\r?sweep: )")


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """hwsim.cli.main(argv) in-process: (exit code, stdout, stderr)."""
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def error_line(err: str) -> str:
    """The one error line of stderr (asserting there is exactly one and no traceback)."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if not _NOISE.match(ln)]
    assert len(lines) == 1, f"expected one error line on stderr, got {lines!r}"
    line = lines[0]
    assert line.strip(), "empty error line"
    assert err.rstrip("\n").splitlines()[-1] == line, "the error line must be the last one"
    return line


def check_case(d: Path, argv: list[str], code: int, culprit: str | list[str], capsys) -> str:
    """Run one refused case: exit ``code``; one error line naming every ``culprit``
    (substrings); no file of ``d`` created, changed or deleted (hash and mtime), not even a
    file named by --out."""
    before = snapshot(d)
    rc, _, err = run_cli(argv, capsys)
    line = error_line(err)
    assert rc == code, f"exit {rc}, expected {code}: {line}"
    for c in [culprit] if isinstance(culprit, str) else culprit:
        assert c in line, f"{c!r} not named in: {line}"
    after = snapshot(d)
    assert after == before, (
        f"a refused run touched files: {sorted(set(after) ^ set(before))[:5] or 'changed'}")
    return line


Setup = Callable[[Path], list[str]]
