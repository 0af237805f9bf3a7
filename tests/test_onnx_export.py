"""ONNX export (specs/ir.md §7): seeded random builder graphs round-trip through ONNX
unchanged, and onnxruntime on the export agrees with run_float (differential, §5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from hwsim.data import demo_model_path, load_demo_data
from hwsim.frontends.onnx import load_onnx
from hwsim.frontends.onnx_export import save_onnx, to_onnx
from hwsim.ir import Graph
from hwsim.ir.builder import GraphBuilder
from hwsim.reference.float_exec import run_float


def random_graph(seed: int) -> Graph:
    """A chain of random 4-D ops with valid attributes, then a classifier head."""
    rng = np.random.default_rng(seed)

    def r(*s: int) -> np.ndarray:
        return rng.standard_normal(s).astype(np.float32)

    b = GraphBuilder(f"rand{seed}")
    c = int(rng.integers(1, 4))
    t = b.input("x", (int(rng.integers(1, 3)), c, 9, 9))
    for _ in range(int(rng.integers(3, 7))):
        n, c, h, w = b.shape(t)
        kind = rng.choice(["conv", "dwconv", "relu", "clip", "maxpool", "avgpool", "add",
                           "pad", "concat"])
        if kind in ("conv", "dwconv") or min(h, w) < 3:
            k = int(rng.integers(1, min(h, w, 3) + 1))
            groups = c if kind == "dwconv" else 1
            m = groups * int(rng.integers(1, 3)) if kind == "dwconv" else int(rng.integers(1, 6))
            t = b.conv2d(t, r(m, c // groups, k, k), r(m) if rng.random() < 0.5 else None,
                         pads=[int(v) for v in rng.integers(0, 2, 4)], groups=groups,
                         strides=int(rng.integers(1, 3)) if min(h, w) > 4 else 1)
        elif kind == "relu":
            t = b.relu(t)
        elif kind == "clip":
            lo = None if rng.random() < 0.3 else float(rng.uniform(-1, 0))
            t = b.clip(t, lo, float(rng.uniform(0, 2)))
        elif kind == "maxpool":
            t = b.maxpool2d(t, 2, 1, pads=int(rng.integers(0, 2)))
        elif kind == "avgpool":
            t = b.avgpool2d(t, 3, int(rng.integers(1, 3)), pads=1,
                            count_include_pad=bool(rng.integers(0, 2)))
        elif kind == "add":
            t = b.add(t, r(c, 1, 1))
        elif kind == "pad":
            t = b.pad(t, [0, 0, 1, 0, 0, 0, 0, 1], float(rng.standard_normal()))
        else:
            t = b.concat([t, b.relu(t)], axis=1)
    n, c, h, w = b.shape(t)
    head = b.flatten(b.global_avgpool(t)) if rng.random() < 0.5 else b.reshape(t, (0, -1))
    y = b.linear(head, r(5, b.shape(head)[1]), r(5))
    z = b.matmul(b.reshape(y, (0, 5, 1)), r(1, 3))
    return b.build(y, z)


@pytest.mark.parametrize("seed", range(12))
def test_random_graph_round_trips_and_matches_onnxruntime(seed: int) -> None:
    """§7: load_onnx(to_onnx(g)) == g; §5: run_float(g) == onnxruntime(to_onnx(g))."""
    g = random_graph(seed)
    model = to_onnx(g)
    assert load_onnx(model) == g
    x = np.random.default_rng(seed).standard_normal(g.tensors["x"].shape).astype(np.float32)
    got = run_float(g, {"x": x})
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for name, ref in zip(g.outputs, sess.run(None, {"x": x}), strict=False):
        scale = max(float(np.abs(ref).max()), 1e-30)
        np.testing.assert_allclose(got[name], ref, rtol=0, atol=1e-5 * scale)


def test_demo_model_round_trips_through_file(tmp_path: Path) -> None:
    """§7: the imported (BN-folded) demo graph saved and re-read is equal and runs equal."""
    g = load_onnx(demo_model_path())
    path = tmp_path / "digits_folded.onnx"
    save_onnx(g, path)
    g2 = load_onnx(path)
    assert g2 == g
    x, _ = load_demo_data("calib")
    np.testing.assert_array_equal(run_float(g, {"input": x})["logits"],
                                  run_float(g2, {"input": x})["logits"])
