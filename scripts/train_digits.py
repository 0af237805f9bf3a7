"""Train the demo CNN on scikit-learn's bundled 8x8 digits and export it as float ONNX.

Plain numpy, no autograd library: each layer below has a forward and a hand-written
backward. Deterministic (seed 0). Writes, atomically:

* ``hwsim/data/digits_cnn.onnx`` — opset 13, input ``input`` ``[N, 1, 8, 8]``, output
  ``logits`` ``[N, 10]``; Conv + BatchNormalization (folded by the frontend), a depthwise
  conv, a residual Add, MaxPool, GlobalAveragePool, Flatten and Gemm;
* ``hwsim/data/digits_test.npz`` — held-out split: ``x`` float32 ``[N, 1, 8, 8]``
  normalised as the model expects, ``y`` int64;
* ``hwsim/data/digits_calib.npz`` — 256 calibration images from the training split.

Usage: ``python scripts/train_digits.py [--epochs 40] [--out hwsim/data]``. It prints the
held-out accuracy of the numpy model, of onnxruntime and of hwsim's float executor.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

#: Normalisation the model expects: x = (pixel / 16 - MEAN) / STD.
MEAN, STD = 0.3, 0.4
BN_EPS = 1e-5
SEED = 0


# --- layers ---------------------------------------------------------------------------

class Param:
    """A trainable array with its gradient and Adam moments."""

    def __init__(self, value: np.ndarray) -> None:
        self.value = value.astype(np.float64)
        self.grad = np.zeros_like(self.value)
        self.m = np.zeros_like(self.value)
        self.v = np.zeros_like(self.value)


class Conv:
    """Stride-1 2-D convolution with symmetric zero padding and groups (no bias)."""

    def __init__(self, rng: np.random.Generator, cin: int, cout: int, k: int, groups: int = 1):
        fan_in = cin // groups * k * k
        self.w = Param(rng.standard_normal((cout, cin // groups, k, k)) * np.sqrt(2 / fan_in))
        self.k, self.pad, self.groups = k, k // 2, groups

    def forward(self, x: np.ndarray) -> np.ndarray:
        p, g = self.pad, self.groups
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        cols = sliding_window_view(xp, (self.k, self.k), axis=(2, 3))  # n c h w kh kw
        n, c, h, w = cols.shape[:4]
        m = self.w.value.shape[0]
        self.cache = (x.shape, cols)
        cols_g = cols.reshape(n, g, c // g, h, w, self.k, self.k)
        wg = self.w.value.reshape(g, m // g, c // g, self.k, self.k)
        return np.einsum("ngchwpq,gmcpq->ngmhw", cols_g, wg, optimize=True).reshape(n, m, h, w)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        shape, cols = self.cache
        n, c, h, w = shape
        g, k, p = self.groups, self.k, self.pad
        m = dy.shape[1]
        cols_g = cols.reshape(n, g, c // g, h, w, k, k)
        dy_g = dy.reshape(n, g, m // g, h, w)
        wg = self.w.value.reshape(g, m // g, c // g, k, k)
        self.w.grad += np.einsum("ngmhw,ngchwpq->gmcpq", dy_g, cols_g,
                                 optimize=True).reshape(self.w.value.shape)
        dcols = np.einsum("ngmhw,gmcpq->ngchwpq", dy_g, wg, optimize=True).reshape(
            n, c, h, w, k, k)
        dxp = np.zeros((n, c, h + 2 * p, w + 2 * p))
        for i in range(k):
            for j in range(k):
                dxp[:, :, i:i + h, j:j + w] += dcols[..., i, j]
        return dxp[:, :, p:p + h, p:p + w]


class BatchNorm:
    """Per-channel batch normalisation with running statistics for inference."""

    def __init__(self, c: int) -> None:
        self.gamma, self.beta = Param(np.ones(c)), Param(np.zeros(c))
        self.mean, self.var = np.zeros(c), np.ones(c)

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        if train:
            mu, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
            self.mean = 0.9 * self.mean + 0.1 * mu
            self.var = 0.9 * self.var + 0.1 * var * x[:, 0].size / max(x[:, 0].size - 1, 1)
        else:
            mu, var = self.mean, self.var
        inv = 1.0 / np.sqrt(var + BN_EPS)
        xhat = (x - mu[None, :, None, None]) * inv[None, :, None, None]
        self.cache = (xhat, inv)
        return xhat * self.gamma.value[None, :, None, None] + self.beta.value[None, :, None, None]

    def backward(self, dy: np.ndarray) -> np.ndarray:
        xhat, inv = self.cache
        self.gamma.grad += (dy * xhat).sum(axis=(0, 2, 3))
        self.beta.grad += dy.sum(axis=(0, 2, 3))
        dxhat = dy * self.gamma.value[None, :, None, None]
        mean_d = dxhat.mean(axis=(0, 2, 3), keepdims=True)
        mean_dx = (dxhat * xhat).mean(axis=(0, 2, 3), keepdims=True)
        return (dxhat - mean_d - xhat * mean_dx) * inv[None, :, None, None]


class Linear:
    def __init__(self, rng: np.random.Generator, cin: int, cout: int) -> None:
        self.w = Param(rng.standard_normal((cout, cin)) * np.sqrt(1 / cin))
        self.b = Param(np.zeros(cout))

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.w.value.T + self.b.value

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self.w.grad += dy.T @ self.x
        self.b.grad += dy.sum(axis=0)
        return dy @ self.w.value


class DigitsCNN:
    """conv3x3(1→8)+BN+ReLU → [dw3x3+BN+ReLU → pw1x1(8→8)+BN] + skip → ReLU →
    maxpool2 → conv3x3(8→16)+BN+ReLU → global average pool → flatten → linear(16→10)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.c1, self.b1 = Conv(rng, 1, 8, 3), BatchNorm(8)
        self.dw, self.b2 = Conv(rng, 8, 8, 3, groups=8), BatchNorm(8)
        self.pw, self.b3 = Conv(rng, 8, 8, 1), BatchNorm(8)
        self.c4, self.b4 = Conv(rng, 8, 16, 3), BatchNorm(16)
        self.fc = Linear(rng, 16, 10)

    def params(self) -> list[Param]:
        ps = [self.c1.w, self.dw.w, self.pw.w, self.c4.w, self.fc.w, self.fc.b]
        for bn in (self.b1, self.b2, self.b3, self.b4):
            ps += [bn.gamma, bn.beta]
        return ps

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        a1 = np.maximum(self.b1.forward(self.c1.forward(x), train), 0)
        a2 = np.maximum(self.b2.forward(self.dw.forward(a1), train), 0)
        s = self.b3.forward(self.pw.forward(a2), train) + a1
        a3 = np.maximum(s, 0)
        n, c, h, w = a3.shape
        blocks = a3.reshape(n, c, h // 2, 2, w // 2, 2)
        mp = blocks.max(axis=(3, 5))
        a4 = np.maximum(self.b4.forward(self.c4.forward(mp), train), 0)
        gap = a4.mean(axis=(2, 3))
        self.cache = (a1, a2, a3, blocks, mp, a4)
        return self.fc.forward(gap)

    def backward(self, dlogits: np.ndarray) -> None:
        a1, a2, a3, blocks, mp, a4 = self.cache
        dgap = self.fc.backward(dlogits)
        da4 = np.broadcast_to(dgap[:, :, None, None] / (a4.shape[2] * a4.shape[3]), a4.shape)
        dmp = self.c4.backward(self.b4.backward(da4 * (a4 > 0)))
        win = blocks == mp[:, :, :, None, :, None]
        win = win / win.sum(axis=(3, 5), keepdims=True)
        da3 = (win * dmp[:, :, :, None, :, None]).reshape(a3.shape)
        ds = da3 * (a3 > 0)
        da1 = ds.copy()
        da2 = self.pw.backward(self.b3.backward(ds))
        da1 += self.dw.backward(self.b2.backward(da2 * (a2 > 0)))
        self.c1.backward(self.b1.backward(da1 * (a1 > 0)))


def train(model: DigitsCNN, x: np.ndarray, y: np.ndarray, epochs: int,
          rng: np.random.Generator, lr: float = 3e-3, batch: int = 32) -> None:
    """Adam on softmax cross-entropy, cosine learning-rate decay."""
    params = model.params()
    steps_per_epoch = (len(x) + batch - 1) // batch
    total, t = epochs * steps_per_epoch, 0
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for s in range(steps_per_epoch):
            idx = order[s * batch:(s + 1) * batch]
            logits = model.forward(x[idx], train=True)
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(len(idx)), y[idx]] -= 1
            for prm in params:
                prm.grad[...] = 0
            model.backward(p / len(idx))
            t += 1
            step = lr * 0.5 * (1 + np.cos(np.pi * t / total))
            for prm in params:
                prm.m = 0.9 * prm.m + 0.1 * prm.grad
                prm.v = 0.999 * prm.v + 0.001 * prm.grad ** 2
                mhat, vhat = prm.m / (1 - 0.9 ** t), prm.v / (1 - 0.999 ** t)
                prm.value -= step * mhat / (np.sqrt(vhat) + 1e-8)


# --- export ---------------------------------------------------------------------------

def to_onnx(model: DigitsCNN) -> bytes:
    """The trained model as an opset-13 float32 ONNX model (BatchNormalization kept)."""
    import onnx
    from onnx import TensorProto
    from onnx import helper as oh
    from onnx import numpy_helper as onh

    inits: list[Any] = []
    nodes: list[Any] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(onh.from_array(np.asarray(value, np.float32), name))
        return name

    def conv_bn(name: str, x: str, conv: Conv, bn: BatchNorm, out: str) -> str:
        p = conv.pad
        nodes.append(oh.make_node("Conv", [x, const(f"{name}.weight", conv.w.value)],
                                  [f"{name}.conv"], name=f"{name}.conv",
                                  kernel_shape=[conv.k, conv.k], pads=[p, p, p, p],
                                  group=conv.groups))
        nodes.append(oh.make_node(
            "BatchNormalization",
            [f"{name}.conv", const(f"{name}.bn.gamma", bn.gamma.value),
             const(f"{name}.bn.beta", bn.beta.value), const(f"{name}.bn.mean", bn.mean),
             const(f"{name}.bn.var", bn.var)], [out], name=f"{name}.bn", epsilon=BN_EPS))
        return out

    def relu(x: str, out: str) -> str:
        nodes.append(oh.make_node("Relu", [x], [out], name=f"{out}.relu"))
        return out

    a1 = relu(conv_bn("stem", "input", model.c1, model.b1, "stem.bn"), "a1")
    a2 = relu(conv_bn("dw", a1, model.dw, model.b2, "dw.bn"), "a2")
    s = conv_bn("pw", a2, model.pw, model.b3, "pw.bn")
    nodes.append(oh.make_node("Add", [s, a1], ["res"], name="residual"))
    a3 = relu("res", "a3")
    nodes.append(oh.make_node("MaxPool", [a3], ["pool"], name="pool", kernel_shape=[2, 2],
                              strides=[2, 2]))
    a4 = relu(conv_bn("conv2", "pool", model.c4, model.b4, "conv2.bn"), "a4")
    nodes.append(oh.make_node("GlobalAveragePool", [a4], ["gap"], name="gap"))
    nodes.append(oh.make_node("Flatten", ["gap"], ["flat"], name="flatten", axis=1))
    nodes.append(oh.make_node("Gemm", ["flat", const("fc.weight", model.fc.w.value),
                                       const("fc.bias", model.fc.b.value)], ["logits"],
                              name="fc", transB=1))
    graph = oh.make_graph(
        nodes, "digits_cnn",
        [oh.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [oh.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    m = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 13)],
                      producer_name="hwsim scripts/train_digits.py")
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    return m.SerializeToString()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path``, then rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1]
                    / "hwsim" / "data")
    args = ap.parse_args(argv)

    digits = load_digits()
    x = ((digits.images / 16.0 - MEAN) / STD).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=SEED,
                                              stratify=y)
    rng = np.random.default_rng(SEED)
    model = DigitsCNN(rng)
    train(model, x_tr.astype(np.float64), y_tr, args.epochs, rng)
    acc_np = float((model.forward(x_te.astype(np.float64), False).argmax(1) == y_te).mean())

    onnx_bytes = to_onnx(model)
    calib = rng.choice(len(x_tr), size=256, replace=False)
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "digits_cnn.onnx", onnx_bytes)
    write_atomic(args.out / "digits_test.npz", npz_bytes(x=x_te, y=y_te))
    write_atomic(args.out / "digits_calib.npz", npz_bytes(x=x_tr[calib], y=y_tr[calib]))

    import onnxruntime as ort

    from hwsim.frontends.onnx import load_onnx
    from hwsim.reference.float_exec import run_float

    sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    acc_ort = float((sess.run(None, {"input": x_te})[0].argmax(1) == y_te).mean())
    graph = load_onnx(onnx_bytes)
    acc_hw = float((run_float(graph, {"input": x_te})["logits"].argmax(1) == y_te).mean())
    print(f"train {len(x_tr)}  test {len(x_te)}  calib {len(calib)}  epochs {args.epochs}")
    print(f"held-out accuracy: numpy {acc_np:.4f}  onnxruntime {acc_ort:.4f}  "
          f"hwsim float {acc_hw:.4f}")
    print(f"wrote {args.out / 'digits_cnn.onnx'} ({len(onnx_bytes)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
