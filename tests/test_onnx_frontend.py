"""ONNX frontend: what it imports and how it refuses (specs/ir.md §6).

Each malformed or unsupported model raises exactly one ModelError whose whole message is
matched by an anchored regex.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto
from onnx import helper as oh
from onnx import numpy_helper as onh

from hwsim.data import demo_model_path
from hwsim.errors import ModelError
from hwsim.frontends.onnx import load_onnx
from hwsim.ir import verify
from hwsim.reference.float_exec import run_float

F = TensorProto.FLOAT


def raw_model(nodes: list[Any], inputs: list[Any], outputs: list[Any],
              inits: dict[str, np.ndarray] | None = None, opset: int = 13,
              domains: tuple[tuple[str, int], ...] = ()) -> onnx.ModelProto:
    """A model as given, not checked (so malformed models can be built)."""
    graph = oh.make_graph(nodes, "g", inputs, outputs,
                          [onh.from_array(v, k) for k, v in (inits or {}).items()])
    opsets = [oh.make_opsetid("", opset)] + [oh.make_opsetid(d, v) for d, v in domains]
    return oh.make_model(graph, opset_imports=opsets)


def vi(name: str, shape: list[Any] | None, elem: int = F) -> Any:
    return oh.make_tensor_value_info(name, elem, shape)


X = vi("x", [1, 2, 6, 6])
W = np.ones((4, 2, 3, 3), np.float32)
CONV = oh.make_node("Conv", ["x", "W"], ["y"], name="conv")
Y4 = vi("y", [1, 4, 4, 4])


def bad_models() -> list[tuple[str, Any, str]]:
    """(id, model source, anchored regex of the one error)."""
    good = raw_model([CONV], [X], [Y4], {"W": W}).SerializeToString()
    rng = np.random.default_rng(0)
    bn_inits = {k: rng.uniform(0.5, 1.5, 4).astype(np.float32) for k in "gbmv"}
    return [
        ("garbage", b"\xff\xff\xff\xff",
         r"^ONNX bytes is not a valid ONNX model \(protobuf decoding failed: .+\); the file "
         r"is truncated or not ONNX$"),
        ("empty", b"",
         r"^ONNX bytes is not a valid ONNX model \(no ir_version or no graph\); the file is "
         r"truncated or not ONNX$"),
        ("truncated", good[: len(good) // 2],
         r"^ONNX bytes is not a valid ONNX model \(protobuf decoding failed: .+\); the file "
         r"is truncated or not ONNX$"),
        ("old_opset", raw_model([CONV], [X], [Y4], {"W": W}, opset=11),
         r"^ONNX model uses ai\.onnx opset 11; hwsim supports opsets 13\.\.22 \(convert with "
         r"onnx\.version_converter\.convert_version\)$"),
        ("unknown_op", raw_model([oh.make_node("Softmax", ["x"], ["y"], name="sm")], [X],
                                 [vi("y", [1, 2, 6, 6])]),
         r"^node 'sm' \(Softmax\): op Softmax is not supported; supported ONNX ops: Add, "
         r"AveragePool, .*, Relu, Reshape$"),
        ("custom_domain", raw_model([oh.make_node("Relu", ["x"], ["y"], name="r",
                                                  domain="com.acme")], [X],
                                    [vi("y", [1, 2, 6, 6])], domains=(("com.acme", 1),)),
         r"^node 'r' \(Relu\): op domain 'com\.acme' is not supported; supported ONNX ops "
         r"\(ai\.onnx\): Add, .*$"),
        ("missing_initializer", raw_model([CONV], [X], [Y4]),
         r"^node 'conv' \(Conv\): input 'W' is not a graph input, an initializer or a node "
         r"output \(missing initializer\?\)$"),
        ("auto_pad", raw_model([oh.make_node("Conv", ["x", "W"], ["y"], name="conv",
                                             auto_pad="SAME_UPPER")], [X],
                               [vi("y", [1, 4, 6, 6])], {"W": W}),
         r"^node 'conv' \(Conv\): auto_pad=SAME_UPPER is not supported; only NOTSET with "
         r"explicit pads$"),
        ("ceil_mode", raw_model([oh.make_node("MaxPool", ["x"], ["y"], name="mp",
                                              kernel_shape=[2, 2], strides=[2, 2],
                                              ceil_mode=1)], [vi("x", [1, 2, 5, 5])],
                                [vi("y", [1, 2, 3, 3])]),
         r"^node 'mp' \(MaxPool\): ceil_mode=1 is not supported; only ceil_mode=0 \(floor\) "
         r"output sizes$"),
        ("dynamic_reshape", raw_model(
            [oh.make_node("Shape", ["x"], ["s"], name="shape"),
             oh.make_node("Reshape", ["x", "s"], ["y"], name="rs")], [X],
            [vi("y", [1, 2, 6, 6])]),
         r"^node 'rs' \(Reshape\): shape 's' must be an initializer or a Constant, but it is "
         r"computed by node 'shape' \(Shape\); dynamic shapes are not supported$"),
        ("dynamic_dim", raw_model([CONV], [vi("x", ["N", "C", 6, 6])], [Y4], {"W": W}),
         r"^graph input 'x' has dynamic dimension 1 \('C'\); only the batch dimension \(0\) "
         r"may be symbolic$"),
        ("double_input", raw_model([oh.make_node("Relu", ["x"], ["y"])],
                                   [vi("x", [1, 2], TensorProto.DOUBLE)],
                                   [vi("y", [1, 2], TensorProto.DOUBLE)]),
         r"^graph input 'x' has dtype DOUBLE; only FLOAT \(float32\) inputs are supported$"),
        ("fp16_weight", raw_model([CONV], [X], [Y4], {"W": W.astype(np.float16)}),
         r"^initializer 'W' has unsupported dtype float16; supported: float32 \(weights, "
         r"data\) and int64/int32 \(shapes, pads, axes\)$"),
        ("bn_not_after_conv", raw_model(
            [oh.make_node("Relu", ["x"], ["r"], name="relu"),
             oh.make_node("BatchNormalization", ["r", "g", "b", "m", "v"], ["y"], name="bn")],
            [vi("x", [1, 4, 3, 3])], [vi("y", [1, 4, 3, 3])], bn_inits),
         r"^node 'bn' \(BatchNormalization\): cannot fold BatchNormalization into a preceding "
         r"Conv: its input is not the output of a Conv; only Conv → BatchNormalization is "
         r"supported$"),
        ("bn_conv_shared", raw_model(
            [oh.make_node("Conv", ["x", "W"], ["c"], name="conv"),
             oh.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["bn"], name="bn"),
             oh.make_node("Add", ["c", "bn"], ["y"], name="add")],
            [X], [Y4], {"W": W, **bn_inits}),
         r"^node 'bn' \(BatchNormalization\): cannot fold BatchNormalization into a preceding "
         r"Conv: the Conv output 'c' has other consumers; only Conv → BatchNormalization is "
         r"supported$"),
        ("gemm_alpha", raw_model([oh.make_node("Gemm", ["a", "B"], ["y"], name="fc", alpha=2.0)],
                                 [vi("a", [1, 3])], [vi("y", [1, 2])],
                                 {"B": np.ones((3, 2), np.float32)}),
         r"^node 'fc' \(Gemm\): alpha=2\.0, beta=1\.0 are not supported; only "
         r"alpha = beta = 1$"),
        ("pad_reflect", raw_model([oh.make_node("Pad", ["x", "p"], ["y"], name="pad",
                                                mode="reflect")], [X],
                                  [vi("y", [1, 2, 8, 8])],
                                  {"p": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)}),
         r"^node 'pad' \(Pad\): mode=reflect is not supported; only mode=constant$"),
        ("conv1d", raw_model([oh.make_node("Conv", ["x", "W"], ["y"], name="conv")],
                             [vi("x", [1, 2, 6])], [vi("y", [1, 4, 4])],
                             {"W": np.ones((4, 2, 3), np.float32)}),
         r"^node 'conv' \(Conv\): weight 'W' must be a float32 OIHW tensor, got "
         r"float32\[4, 2, 3\]$"),
        ("maxpool_indices", raw_model(
            [oh.make_node("MaxPool", ["x"], ["y", "idx"], name="mp", kernel_shape=[2, 2])],
            [X], [vi("y", [1, 2, 5, 5]), vi("idx", [1, 2, 5, 5], TensorProto.INT64)]),
         r"^node 'mp' \(MaxPool\): only the first output is supported, the node also writes "
         r"'idx'$"),
        ("dropout_mask", raw_model(
            [oh.make_node("Dropout", ["x"], ["d", "mask"], name="drop")], [X],
            [vi("d", [1, 2, 6, 6]), vi("mask", [1, 2, 6, 6], TensorProto.BOOL)]),
         r"^node 'drop' \(Dropout\): the mask output 'mask' is used; only inference Dropout "
         r"\(output 0\) is supported$"),
        ("dynamic_weight", raw_model([oh.make_node("Conv", ["x", "w"], ["y"], name="conv")],
                                     [X, vi("w", [4, 2, 3, 3])], [Y4]),
         r"^node 'conv' \(Conv\): weight 'w' must be an initializer or a Constant, not a "
         r"graph input or a computed tensor$"),
        ("dynamic_clip", raw_model([oh.make_node("Relu", ["x"], ["lo"], name="r"),
                                    oh.make_node("Clip", ["x", "lo"], ["y"], name="clip")],
                                   [vi("x", [1])], [vi("y", [1])]),
         r"^node 'clip' \(Clip\): min 'lo' must be an initializer or a Constant, not a graph "
         r"input or a computed tensor$"),
        ("checker", raw_model([oh.make_node("Relu", ["x"], ["y"], name="r", alpha=1.0)], [X],
                              [vi("y", [1, 2, 6, 6])]),
         r"^ONNX checker rejected the model: Unrecognized attribute: alpha for operator "
         r"Relu$"),
        ("bad_groups", raw_model([oh.make_node("Conv", ["x", "W"], ["y"], name="conv",
                                               group=3)], [X], [Y4], {"W": W}),
         r"^node 'conv' \(Conv\): groups=3 must divide the input channels \(2\) and the "
         r"output channels \(4\)$"),
    ]


@pytest.mark.parametrize("source, pattern",
                         [pytest.param(s, p, id=i) for i, s, p in bad_models()])
def test_malformed_model_gives_one_clear_error(source: Any, pattern: str) -> None:
    """§6: every rejected model raises one ModelError with the documented message."""
    with pytest.raises(ModelError, match=pattern):
        load_onnx(source)


def test_missing_and_truncated_files(tmp_path: Path) -> None:
    """§6: an unreadable path and a truncated file on disk name the file."""
    with pytest.raises(ModelError, match=r"^cannot read ONNX file '.*nope\.onnx': No such "
                                         r"file or directory$"):
        load_onnx(tmp_path / "nope.onnx")
    good = raw_model([CONV], [X], [Y4], {"W": W}).SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(good[:-7])
    with pytest.raises(ModelError, match=r"^ONNX file '.*cut\.onnx' is not a valid ONNX "
                                         r"model \(.+\); the file is truncated or not ONNX$"):
        load_onnx(str(path))


def test_identity_dropout_constant_are_removed_and_names_kept() -> None:
    """§6: Identity, Dropout and Constant vanish; graph output names survive."""
    nodes = [oh.make_node("Identity", ["x"], ["i"]),
             oh.make_node("Constant", [], ["k"], value=onh.from_array(np.float32(0.5))),
             oh.make_node("Add", ["i", "k"], ["a"], name="add"),
             oh.make_node("Dropout", ["a"], ["d"]),
             oh.make_node("Constant", [], ["shape"], value_ints=[0, -1]),
             oh.make_node("Reshape", ["d", "shape"], ["r"], name="rs"),
             oh.make_node("Identity", ["r"], ["y"])]
    model = raw_model(nodes, [vi("x", ["batch", 2, 3, 3])], [vi("y", ["batch", 18])])
    g = load_onnx(model)
    verify(g)
    assert [(n.name, n.op, n.inputs, n.outputs) for n in g.nodes] == [
        ("add", "add", ("x", "k"), ("a",)), ("rs", "reshape", ("a",), ("y",))]
    assert g.tensors["x"].shape == (1, 2, 3, 3) and g.outputs == ("y",)
    assert g.initializers["k"].dtype == np.float32 and g.initializers["k"].shape == ()
    x = np.arange(36, dtype=np.float32).reshape(2, 2, 3, 3)
    np.testing.assert_array_equal(run_float(g, {"x": x})["y"], x.reshape(2, 18) + 0.5)


def test_pad_with_axes_opset18() -> None:
    """§2.13/§6: Pad's axes input (opset 18) expands to the full begins-then-ends list."""
    nodes = [oh.make_node("Pad", ["x", "p", "v", "ax"], ["y"], name="pad")]
    model = raw_model(nodes, [vi("x", [1, 2, 3, 4])], [vi("y", [1, 2, 4, 7])],
                      {"p": np.array([1, 2, 0, 1], np.int64), "v": np.float32(-1.5),
                       "ax": np.array([-2, 3], np.int64)}, opset=18)
    g = load_onnx(model)
    assert g.nodes[0].attrs == {"pads": (0, 0, 1, 2, 0, 0, 0, 1), "value": -1.5}
    assert g.tensors["y"].shape == (1, 2, 4, 7)


def test_unused_initializers_are_dropped_and_shared_weights_kept() -> None:
    """§6: only initializers read by a node reach the graph; a shared weight stays one."""
    w = np.ones((2, 2, 1, 1), np.float32)
    nodes = [oh.make_node("Conv", ["x", "W"], ["a"], name="c1"),
             oh.make_node("Conv", ["a", "W"], ["y"], name="c2")]
    model = raw_model(nodes, [vi("x", [1, 2, 3, 3])], [vi("y", [1, 2, 3, 3])],
                      {"W": w, "unused": np.zeros(3, np.float32)})
    g = load_onnx(model)
    assert sorted(g.initializers) == ["W"]


def test_corrupted_demo_model_loads_or_raises_model_error() -> None:
    """§6: seeded truncations, byte flips and deletions of a real model never escape as
    anything but ModelError (or load, when only weight bytes changed)."""
    data = demo_model_path().read_bytes()
    rng = np.random.default_rng(0)
    outcomes = {"loaded": 0, "rejected": 0}
    for i in range(300):
        b = bytearray(data)
        if i % 3 == 0:
            b = b[:int(rng.integers(0, len(b)))]
        elif i % 3 == 1:
            for _ in range(int(rng.integers(1, 5))):
                b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
        else:
            start = int(rng.integers(0, len(b)))
            del b[start:start + int(rng.integers(1, 20))]
        try:
            with np.errstate(all="ignore"):
                load_onnx(bytes(b))
            outcomes["loaded"] += 1
        except ModelError as e:
            assert str(e) and "\n" not in str(e)
            outcomes["rejected"] += 1
    assert outcomes["rejected"] > 150 and outcomes["loaded"] > 0
