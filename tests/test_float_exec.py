"""Float32 reference executor vs onnxruntime, op by op (specs/ir.md §5, §2).

Differential: the same seeded random ONNX model runs through ``load_onnx`` + ``run_float``
and through onnxruntime; the results agree within 1e-5 · max|reference| elementwise and the
shapes agree with onnx's own shape inference (§2 shape rules).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto
from onnx import helper as oh
from onnx import numpy_helper as onh

from hwsim.errors import HwsimError
from hwsim.frontends.onnx import load_onnx
from hwsim.ir.builder import GraphBuilder
from hwsim.reference.float_exec import run_float

SEEDS = range(10)
#: Window ops have the most attribute combinations: more seeds.
WINDOW_OPS = ("conv", "maxpool", "avgpool")
WINDOW_SEEDS = range(30)
RTOL = 1e-5


def make_model(nodes: list[Any], inputs: dict[str, tuple[int, ...]], outputs: list[str],
               inits: dict[str, np.ndarray], opset: int = 13) -> onnx.ModelProto:
    """A checked ONNX model whose output shapes come from onnx shape inference."""
    graph = oh.make_graph(
        nodes, "t",
        [oh.make_tensor_value_info(k, TensorProto.FLOAT, list(v)) for k, v in inputs.items()],
        [oh.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        [onh.from_array(v, k) for k, v in inits.items()])
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", opset)])
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model)
    return model


def ort_run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def check_against_ort(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> None:
    graph = load_onnx(model)
    got = run_float(graph, feeds)
    want = ort_run(model, feeds)
    for out, ref in zip(model.graph.output, want, strict=False):
        dims = tuple(d.dim_value for d in out.type.tensor_type.shape.dim)
        assert graph.tensors[out.name].shape == dims
        assert got[out.name].dtype == np.float32
        assert got[out.name].shape == ref.shape
        scale = max(float(np.abs(ref).max()), 1e-30)
        np.testing.assert_allclose(got[out.name], ref, rtol=0, atol=RTOL * scale)


def rnd(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def case_conv(rng: np.random.Generator) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    c = int(rng.choice([2, 4, 6]))
    groups = int(rng.choice([1, 2, c]))
    m = groups * int(rng.integers(1, 3))
    kh, kw = (int(v) for v in rng.integers(1, 4, 2))
    dil = [int(v) for v in rng.integers(1, 3, 2)]
    pads = [int(v) for v in rng.integers(0, 3, 4)]
    h, w = (int(v) for v in rng.integers(5, 10, 2))
    attrs = {"strides": [int(v) for v in rng.integers(1, 3, 2)], "pads": pads,
             "dilations": dil, "group": groups, "kernel_shape": [kh, kw]}
    inits = {"W": rnd(rng, m, c // groups, kh, kw)}
    ins = ["x", "W"]
    if rng.random() < 0.7:
        inits["B"] = rnd(rng, m)
        ins.append("B")
    model = make_model([oh.make_node("Conv", ins, ["y"], **attrs)],
                       {"x": (2, c, h, w)}, ["y"], inits)
    return model, {"x": rnd(rng, 2, c, h, w)}


def case_pool(op: str) -> Callable[[np.random.Generator], Any]:
    def case(rng: np.random.Generator) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
        k = [int(v) for v in rng.integers(1, 4, 2)]
        pads = [int(rng.integers(0, k[i % 2])) for i in range(4)]
        attrs: dict[str, Any] = {"kernel_shape": k, "pads": pads,
                                 "strides": [int(v) for v in rng.integers(1, 3, 2)]}
        if op == "AveragePool":
            attrs["count_include_pad"] = int(rng.integers(0, 2))
        elif rng.random() < 0.5:
            attrs["dilations"] = [int(v) for v in rng.integers(1, 3, 2)]
        model = make_model([oh.make_node(op, ["x"], ["y"], **attrs)], {"x": (2, 3, 7, 8)},
                           ["y"], {})
        return model, {"x": rnd(rng, 2, 3, 7, 8)}
    return case


def case_gemm(rng: np.random.Generator) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    trans_b = int(rng.integers(0, 2))
    k, n = (int(v) for v in rng.integers(1, 40, 2))
    inits = {"B": rnd(rng, n, k) if trans_b else rnd(rng, k, n)}
    ins = ["a", "B"]
    if rng.random() < 0.7:
        inits["C"] = rnd(rng, *([n] if rng.random() < 0.5 else [1, n]))
        ins.append("C")
    model = make_model([oh.make_node("Gemm", ins, ["y"], transB=trans_b)], {"a": (3, k)},
                       ["y"], inits)
    return model, {"a": rnd(rng, 3, k)}


def case_matmul(rng: np.random.Generator) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    k = int(rng.integers(1, 30))
    model = make_model([oh.make_node("MatMul", ["a", "b"], ["y"])],
                       {"a": (2, 3, 4, k), "b": (3, k, 5)}, ["y"], {})
    return model, {"a": rnd(rng, 2, 3, 4, k), "b": rnd(rng, 3, k, 5)}


def case_add(rng: np.random.Generator) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    shapes = [((2, 3, 4, 5), (2, 3, 4, 5)), ((2, 3, 4, 5), (3, 1, 1)), ((2, 1, 4, 1), (5,))]
    sa, sb = shapes[int(rng.integers(0, len(shapes)))]
    model = make_model([oh.make_node("Add", ["a", "c"], ["y"])], {"a": sa}, ["y"],
                       {"c": rnd(rng, *sb)})
    return model, {"a": rnd(rng, *sa)}


def case_relu_clip(rng: np.random.Generator) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    lo, hi = sorted(float(v) for v in rng.uniform(-1, 2, 2))
    nodes = [oh.make_node("Relu", ["x"], ["r"]),
             oh.make_node("Clip", ["x", "lo", "hi"], ["y"]),
             oh.make_node("Clip", ["x", "", "hi"], ["z"]),
             oh.make_node("Clip", ["x"], ["u"])]
    model = make_model(nodes, {"x": (2, 3, 4, 4)}, ["r", "y", "z", "u"],
                       {"lo": np.float32(lo), "hi": np.float32(hi)})
    return model, {"x": rnd(rng, 2, 3, 4, 4)}


def case_shapes(rng: np.random.Generator) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    pads = [int(v) for v in rng.integers(0, 3, 8)]
    axis = int(rng.integers(-4, 5))
    nodes = [oh.make_node("GlobalAveragePool", ["x"], ["g"]),
             oh.make_node("Flatten", ["x"], ["f"], axis=axis),
             oh.make_node("Reshape", ["x", "shape"], ["r"]),
             oh.make_node("Concat", ["x", "x2"], ["c"], axis=int(rng.integers(-4, 4))),
             oh.make_node("Pad", ["x", "pads", "value"], ["p"], mode="constant")]
    model = make_model(nodes, {"x": (2, 3, 4, 6), "x2": (2, 3, 4, 6)}, ["g", "f", "r", "c", "p"],
                       {"shape": np.array([0, -1, 4], np.int64),
                        "pads": np.array(pads, np.int64),
                        "value": np.float32(rng.standard_normal())})
    return model, {"x": rnd(rng, 2, 3, 4, 6), "x2": rnd(rng, 2, 3, 4, 6)}


CASES: dict[str, Callable[[np.random.Generator], Any]] = {
    "conv": case_conv, "maxpool": case_pool("MaxPool"), "avgpool": case_pool("AveragePool"),
    "gemm": case_gemm, "matmul": case_matmul, "add": case_add, "relu_clip": case_relu_clip,
    "shape_ops": case_shapes,
}


@pytest.mark.parametrize("op, seed", [(op, seed) for op in sorted(CASES)
                                       for seed in (WINDOW_SEEDS if op in WINDOW_OPS else SEEDS)])
def test_op_matches_onnxruntime(op: str, seed: int) -> None:
    """§5: run_float == onnxruntime within 1e-5 · max|ref|; §2 shapes == onnx inference."""
    rng = np.random.default_rng(1000 * seed + sorted(CASES).index(op))
    model, feeds = CASES[op](rng)
    check_against_ort(model, feeds)


def test_batchnorm_folded_conv_matches_onnxruntime() -> None:
    """§6: Conv → BatchNormalization folding keeps the float function (1e-5 relative)."""
    rng = np.random.default_rng(7)
    inits = {"W": rnd(rng, 6, 2, 3, 3), "B": rnd(rng, 6), "g": rnd(rng, 6), "b": rnd(rng, 6),
             "m": rnd(rng, 6), "v": rng.uniform(0.3, 2, 6).astype(np.float32)}
    nodes = [oh.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1], group=2),
             oh.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["y"],
                          epsilon=1e-3)]
    model = make_model(nodes, {"x": (3, 4, 6, 6)}, ["y"], inits)
    check_against_ort(model, {"x": rnd(rng, 3, 4, 6, 6)})
    assert [n.op for n in load_onnx(model).nodes] == ["conv2d"]


def test_observe_sees_every_tensor_in_graph_order() -> None:
    """§5: observe is called for each input and node output; keep_all returns the same."""
    rng = np.random.default_rng(3)
    b = GraphBuilder()
    x = b.input("x", (1, 2, 5, 5))
    c = b.conv2d(x, rnd(rng, 4, 2, 3, 3), rnd(rng, 4), pads=1)
    r = b.relu(c)
    y = b.linear(b.flatten(b.global_avgpool(r)), rnd(rng, 3, 4))
    g = b.build(y)
    seen: dict[str, np.ndarray] = {}
    feeds = {"x": rnd(rng, 1, 2, 5, 5)}
    out = run_float(g, feeds, observe=lambda t, v: seen.__setitem__(t, v.copy()))
    assert list(seen) == ["x"] + [n.outputs[0] for n in g.nodes]
    every = run_float(g, feeds, keep_all=True)
    assert list(every) == list(seen)
    for t in seen:
        assert np.array_equal(every[t], seen[t])
    assert np.array_equal(out[y], seen[y])
    assert np.array_equal(seen[r], np.maximum(seen[c], 0))


def test_other_batch_size_runs_rebatched_graph() -> None:
    """§1 with_batch / §5: a batch of 5 equals five batches of 1, row by row."""
    rng = np.random.default_rng(4)
    b = GraphBuilder()
    x = b.input("x", (1, 1, 6, 6))
    h = b.maxpool2d(b.relu(b.conv2d(x, rnd(rng, 3, 1, 3, 3))), 2)
    y = b.linear(b.reshape(h, (0, -1)), rnd(rng, 2, 12), rnd(rng, 2))
    g = b.build(y)
    xs = rnd(rng, 5, 1, 6, 6)
    whole = run_float(g, {"x": xs})[y]
    rows = np.concatenate([run_float(g, {"x": xs[i:i + 1]})[y] for i in range(5)])
    assert whole.shape == (5, 2)
    np.testing.assert_array_equal(whole, rows)


@pytest.mark.parametrize("feeds, pattern", [
    ({}, r"^graph 'graph': inputs must be exactly \['x'\]; missing \['x'\], unexpected \[\]$"),
    ({"x": np.zeros((1, 2, 4, 4)), "z": np.zeros(1)},
     r"^graph 'graph': inputs must be exactly \['x'\]; missing \[\], unexpected \['z'\]$"),
    ({"x": np.zeros((1, 2, 4, 5))},
     r"^graph 'graph': input 'x' must have shape \(1, 2, 4, 4\), got \(1, 2, 4, 5\)$"),
])
def test_bad_inputs_are_rejected(feeds: dict[str, np.ndarray], pattern: str) -> None:
    """§5: missing, unexpected or mis-shaped inputs raise HwsimError naming them."""
    b = GraphBuilder()
    g = b.build(b.relu(b.input("x", (1, 2, 4, 4))))
    with pytest.raises(HwsimError, match=pattern):
        run_float(g, feeds)
