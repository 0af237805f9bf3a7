"""A ResNet-18-shaped float32 ONNX model built with ``onnx.helper`` (no downloads).

:func:`resnet18_onnx` returns an opset-13 ``onnx.ModelProto`` with the torchvision
ResNet-18 topology (He et al. 2016, "Deep Residual Learning", table 1, 18-layer column):

* stem: conv 7×7 / 2 (pad 3) → BatchNormalization → Relu → MaxPool 3×3 / 2 (pad 1);
* four stages of two BasicBlocks each, ``width·(1, 2, 4, 8)`` channels, strides 1, 2, 2, 2:
  conv 3×3 → BN → Relu → conv 3×3 → BN, plus the shortcut (identity, or conv 1×1 / stride →
  BN when the shape changes), Add, Relu;
* GlobalAveragePool → Flatten → Gemm (``transB = 1``) to ``num_classes`` logits.

Weights are random, He-initialised (``N(0, 2 / fan_in)``, fan-in = ``C_in·kh·kw``) from one
seeded generator; BatchNormalization parameters are random too (gamma around 1, small beta
and running mean, running variance around 1) so that folding them into the convs is not a
no-op. Convs have no bias (as in torchvision). The input is ``input [N, 3, S, S]`` with a
symbolic batch, the output ``logits [N, num_classes]``.

With the defaults (``input_size = 224``, ``width = 64``, 1000 classes) the model has 11.7 M
parameters and 1.82 GMAC per image; :func:`macs_per_image` counts them. Tests and quick
runs use a small version, e.g. ``resnet18_onnx(input_size=32, width=8, num_classes=10)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["resnet18_onnx", "macs_per_image", "random_images", "INPUT_NAME", "OUTPUT_NAME"]

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
BN_EPS = 1e-5
STAGES = ((1, 1), (2, 2), (4, 2), (8, 2))  # (channel multiplier, stride) per stage


def _check(input_size: int, width: int, num_classes: int) -> None:
    if input_size < 32 or input_size % 32 != 0:
        raise ValueError(f"input_size must be a positive multiple of 32, got {input_size}")
    if width < 1 or num_classes < 1:
        raise ValueError(f"width and num_classes must be >= 1, got {width}, {num_classes}")


def resnet18_onnx(input_size: int = 224, width: int = 64, num_classes: int = 1000,
                  seed: int = 0) -> Any:
    """The ResNet-18-shaped float32 model as an ``onnx.ModelProto`` (see the module doc)."""
    import onnx
    from onnx import TensorProto
    from onnx import helper as oh
    from onnx import numpy_helper as onh

    _check(input_size, width, num_classes)
    rng = np.random.default_rng(seed)
    inits: list[Any] = []
    nodes: list[Any] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(onh.from_array(np.asarray(value, np.float32), name))
        return name

    def conv_bn(name: str, x: str, c_in: int, c_out: int, k: int, stride: int) -> str:
        w = rng.standard_normal((c_out, c_in, k, k)) * np.sqrt(2.0 / (c_in * k * k))
        nodes.append(oh.make_node("Conv", [x, const(f"{name}.weight", w)], [f"{name}.conv"],
                                  name=f"{name}.conv", kernel_shape=[k, k],
                                  strides=[stride, stride], pads=[k // 2] * 4))
        gamma = 1.0 + 0.1 * rng.standard_normal(c_out)
        beta = 0.1 * rng.standard_normal(c_out)
        mean = 0.1 * rng.standard_normal(c_out)
        var = 1.0 + 0.1 * rng.random(c_out)
        nodes.append(oh.make_node(
            "BatchNormalization",
            [f"{name}.conv", const(f"{name}.bn.gamma", gamma), const(f"{name}.bn.beta", beta),
             const(f"{name}.bn.mean", mean), const(f"{name}.bn.var", var)],
            [f"{name}.bn"], name=f"{name}.bn", epsilon=BN_EPS))
        return f"{name}.bn"

    def relu(x: str) -> str:
        nodes.append(oh.make_node("Relu", [x], [f"{x}.relu"], name=f"{x}.relu"))
        return f"{x}.relu"

    x = relu(conv_bn("stem", INPUT_NAME, 3, width, 7, 2))
    nodes.append(oh.make_node("MaxPool", [x], ["stem.pool"], name="stem.pool",
                              kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
    x, c_in = "stem.pool", width
    for s, (mult, stride) in enumerate(STAGES, start=1):
        c_out = width * mult
        for b in range(2):
            name = f"layer{s}.{b}"
            st = stride if b == 0 else 1
            y = relu(conv_bn(f"{name}.conv1", x, c_in, c_out, 3, st))
            y = conv_bn(f"{name}.conv2", y, c_out, c_out, 3, 1)
            short = x
            if st != 1 or c_in != c_out:
                short = conv_bn(f"{name}.downsample", x, c_in, c_out, 1, st)
            nodes.append(oh.make_node("Add", [y, short], [f"{name}.add"], name=f"{name}.add"))
            x, c_in = relu(f"{name}.add"), c_out
    nodes.append(oh.make_node("GlobalAveragePool", [x], ["gap"], name="gap"))
    nodes.append(oh.make_node("Flatten", ["gap"], ["flat"], name="flatten", axis=1))
    fc_w = rng.standard_normal((num_classes, c_in)) * np.sqrt(2.0 / c_in)
    nodes.append(oh.make_node("Gemm", ["flat", const("fc.weight", fc_w),
                                       const("fc.bias", np.zeros(num_classes))],
                              [OUTPUT_NAME], name="fc", transB=1))
    graph = oh.make_graph(
        nodes, f"resnet18_s{input_size}_w{width}",
        [oh.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT,
                                   ["N", 3, input_size, input_size])],
        [oh.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", num_classes])],
        inits)
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 13)],
                          producer_name="hwsim benchmarks/resnet18.py")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def macs_per_image(input_size: int = 224, width: int = 64, num_classes: int = 1000) -> int:
    """Multiply-accumulates of one image through :func:`resnet18_onnx`'s convs and gemm."""
    _check(input_size, width, num_classes)
    total = 0
    h = input_size // 2  # stem conv, stride 2
    total += h * h * width * 3 * 49
    h //= 2  # maxpool
    c_in = width
    for mult, stride in STAGES:
        c_out = width * mult
        for b in range(2):
            st = stride if b == 0 else 1
            h //= st
            total += h * h * c_out * c_in * 9 + h * h * c_out * c_out * 9
            if st != 1 or c_in != c_out:
                total += h * h * c_out * c_in
            c_in = c_out
    return total + c_in * num_classes


def random_images(n: int, input_size: int = 224, seed: int = 1) -> np.ndarray:
    """``n`` seeded float32 images ``[n, 3, S, S]``, standard normal (a normalised input)."""
    return np.random.default_rng(seed).standard_normal(
        (n, 3, input_size, input_size)).astype(np.float32)
