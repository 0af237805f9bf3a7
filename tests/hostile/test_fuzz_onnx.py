"""Fuzz (hypothesis) over ONNX graphs built from random valid and invalid nodes, and over
random byte corruption of a valid model (issue 9): ``hwsim verify`` either succeeds (exit 0
or 1) or refuses with one error line (exit 2); never a traceback, never an internal error
(exit 3), and never a hang (each case runs under an alarm; shapes are tiny).

Deterministic: the hwsim hypothesis profile (tests/conftest.py) derandomizes."""

from __future__ import annotations

import signal
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from hostile_util import error_line, run_cli, save_model, tiny_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

#: Seconds one case may take before it counts as a hang.
CASE_SECONDS = 60

# A step: (op kind, variant); variant 0 is the valid form, others break one thing.
STEP = st.tuples(
    st.sampled_from(["conv", "relu", "maxpool", "avgpool", "add", "pad", "clip", "concat",
                     "flatten_gemm", "gap", "reshape", "unknown", "dangling", "bn"]),
    st.integers(0, 4),
    st.integers(0, 2 ** 16),
)


class _Builder:
    """Builds a model from steps, tracking the (batch-1) NCHW shape for the valid forms."""

    def __init__(self, channels: int, size: int) -> None:
        self.nodes: list = []
        self.inits: list = []
        self.cur = "x"
        self.shape = [1, channels, size, size]
        self.n = 0

    def name(self, base: str) -> str:
        self.n += 1
        return f"{base}{self.n}"

    def init(self, arr: np.ndarray) -> str:
        t = self.name("w")
        self.inits.append(numpy_helper.from_array(arr, t))
        return t

    def add(self, op: str, inputs: list[str], **attrs) -> None:  # noqa: ANN003
        out = self.name("t")
        self.nodes.append(helper.make_node(op, inputs, [out], name=self.name("n"), **attrs))
        self.cur = out

    def step(self, kind: str, variant: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        rank4 = len(self.shape) == 4
        c = self.shape[1]
        bad = variant == 4  # one variant in five breaks something
        if kind == "conv" and rank4:
            m, k = int(rng.integers(1, 4)), int(rng.choice([1, 3]))
            w = rng.normal(scale=0.5, size=(m, c + (1 if bad and seed % 2 else 0), k, k))
            w = w.astype(np.float32)
            if bad and not seed % 2:
                w.reshape(-1)[0] = np.nan
            self.add("Conv", [self.cur, self.init(w)], pads=[k // 2] * 4)
            self.shape[1] = m
        elif kind == "relu":
            self.add("Relu", [self.cur])
        elif kind in ("maxpool", "avgpool") and rank4 and min(self.shape[2:]) >= 2:
            op = "MaxPool" if kind == "maxpool" else "AveragePool"
            self.add(op, [self.cur], kernel_shape=[2, 2], strides=[2, 2] if not bad else [0, 0])
            self.shape[2:] = [self.shape[2] // 2, self.shape[3] // 2]
        elif kind == "add":
            self.add("Add", [self.cur, self.cur if not bad else "nowhere"])
        elif kind == "pad" and rank4:
            pads = np.array([0, 0, 1, 1, 0, 0, 1, 1] if not bad else [0, 0, -1, 1],
                            dtype=np.int64)
            self.add("Pad", [self.cur, self.init(pads)])
            self.shape[2:] = [self.shape[2] + 2, self.shape[3] + 2]
        elif kind == "clip":
            lo = np.array(-1.0 if not bad else np.nan, dtype=np.float32)
            self.add("Clip", [self.cur, self.init(lo), self.init(np.array(6.0, np.float32))])
        elif kind == "concat" and rank4:
            self.add("Concat", [self.cur, self.cur], axis=1 if not bad else 7)
            self.shape[1] *= 2
        elif kind == "gap" and rank4:
            self.add("GlobalAveragePool", [self.cur])
            self.shape[2:] = [1, 1]
        elif kind == "flatten_gemm":
            if rank4:
                self.add("Flatten", [self.cur])
                self.shape = [1, int(np.prod(self.shape[1:]))]
            n = int(rng.integers(1, 4))
            k = self.shape[1] + (2 if bad else 0)
            w = rng.normal(size=(n, k)).astype(np.float32)
            self.add("Gemm", [self.cur, self.init(w)], transB=1)
            self.shape = [1, n]
        elif kind == "reshape":
            total = int(np.prod(self.shape[1:]))
            shape = np.array([1, total] if not bad else [7, 7, 7], dtype=np.int64)
            self.add("Reshape", [self.cur, self.init(shape)])
            self.shape = [1, total]
        elif kind == "unknown":
            self.add(["Softmax", "Sigmoid", "LSTM", "Foo"][variant % 4], [self.cur])
        elif kind == "dangling":
            self.add("Relu", ["undefined_tensor"] if bad else [self.cur])
        elif kind == "bn" and rank4 and self.nodes and self.nodes[-1].op_type == "Conv":
            var = np.full(c, -1.0 if bad else 1.0, np.float32)
            ones = np.ones(c, np.float32)
            self.add("BatchNormalization", [self.cur, self.init(ones), self.init(0 * ones),
                                            self.init(0 * ones), self.init(var)])

    def model(self, opset: int):  # noqa: ANN201
        out = helper.make_tensor_value_info(self.cur, TensorProto.FLOAT, self.shape)
        graph = helper.make_graph(
            self.nodes, "fuzz",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 6, 6])], [out],
            self.inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@contextmanager
def _alarm(seconds: int):  # noqa: ANN202
    def hang(signum, frame):  # noqa: ANN001, ANN202
        raise TimeoutError(f"a fuzz case ran longer than {seconds} s (hang)")

    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _check(path: Path, capsys) -> None:  # noqa: ANN001
    with _alarm(CASE_SECONDS):
        rc, _, err = run_cli(["verify", path, "--json"], capsys)
    assert rc in (0, 1, 2), err
    assert "Traceback" not in err and "internal error" not in err, err
    if rc == 2:
        error_line(err)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(STEP, min_size=1, max_size=6),
       opset=st.sampled_from([13, 13, 17, 21, 99]))
def test_random_graphs_never_crash(steps, opset, tmp_path_factory, capsys) -> None:
    """Random node sequences (mostly valid, some broken): exit 0/1, or one error line."""
    b = _Builder(1, 6)
    for kind, variant, seed in steps:
        b.step(kind, variant, seed)
    path = tmp_path_factory.mktemp("fuzz") / "m.onnx"
    save_model(b.model(opset), path)
    _check(path, capsys)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                      min_size=0, max_size=4),
       cut=st.one_of(st.just(1.0), st.floats(0.05, 1.0)))
def test_corrupted_bytes_never_crash(edits, cut, tmp_path_factory, capsys) -> None:
    """A valid model with random bytes overwritten and its tail cut: the protobuf decoder,
    the checker and the importer refuse it cleanly or it still works."""
    data = bytearray(tiny_model().SerializeToString())
    for pos, value in edits:
        data[int(pos * len(data))] = value
    path = tmp_path_factory.mktemp("fuzzb") / "m.onnx"
    path.write_bytes(bytes(data[: max(1, int(cut * len(data)))]))
    _check(path, capsys)
