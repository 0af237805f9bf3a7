"""Build float graphs in Python (specs/ir.md §4).

>>> b = GraphBuilder("tiny")
>>> x = b.input("x", (1, 1, 8, 8))
>>> y = b.relu(b.conv2d(x, np.ones((4, 1, 3, 3), np.float32), pads=1))
>>> g = b.build(b.global_avgpool(y))

Every method adds one node, checks it at once (shape inference, canonical attributes) and
returns the name of its output tensor. Weights given as arrays become initializers named
after the node (``<node>.weight``, ``<node>.bias``). :meth:`GraphBuilder.build` returns a
verified :class:`~hwsim.ir.graph.Graph` equal to what :func:`hwsim.frontends.onnx.load_onnx`
makes from the same model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hwsim.errors import ModelError
from hwsim.ir.graph import Graph, Node, TensorInfo, make_graph
from hwsim.ir.ops import Op, infer_node, normalize_attrs

IntOrPair = int | Sequence[int]


class GraphBuilder:
    """Accumulates inputs, initializers and nodes; :meth:`build` makes the Graph."""

    def __init__(self, name: str = "graph", dtype: str = "float32") -> None:
        self.name = name
        self.dtype = dtype
        self._inputs: list[TensorInfo] = []
        self._inits: dict[str, np.ndarray] = {}
        self._nodes: list[Node] = []
        self._tensors: dict[str, TensorInfo] = {}
        self._counts: dict[str, int] = {}

    def _fresh(self, prefix: str) -> str:
        while True:
            i = self._counts.get(prefix, 0)
            self._counts[prefix] = i + 1
            name = f"{prefix}_{i}"
            if name not in self._tensors and all(n.name != name for n in self._nodes):
                return name

    def _new_tensor_name(self, name: str) -> str:
        if name in self._tensors:
            raise ModelError(f"graph {self.name!r}: tensor {name!r} is already defined")
        return name

    def input(self, name: str, shape: Sequence[int], dtype: str | None = None) -> str:
        """Declare a graph input of ``shape`` (NCHW for images); returns its name."""
        info = TensorInfo(self._new_tensor_name(name), tuple(shape), dtype or self.dtype)
        self._inputs.append(info)
        self._tensors[name] = info
        return name

    def constant(self, name: str, value: np.ndarray | float | Sequence[float]) -> str:
        """Add an initializer (cast to the builder dtype); returns its name."""
        arr = np.array(value, dtype=self.dtype)
        self._inits[self._new_tensor_name(name)] = arr
        self._tensors[name] = TensorInfo(name, arr.shape, arr.dtype.name)
        return name

    def _operand(self, node: str, role: str, value: str | np.ndarray | None,
                 new: dict[str, np.ndarray]) -> str | None:
        if value is None or isinstance(value, str):
            if isinstance(value, str) and value not in self._tensors:
                raise ModelError(f"graph {self.name!r}: node {node!r}: {role} {value!r} is "
                                 "not defined")
            return value
        name = self._new_tensor_name(f"{node}.{role}")
        new[name] = np.array(value, dtype=self.dtype)
        return name

    def add_node(self, op: str, inputs: Sequence[str | np.ndarray | None],
                 attrs: dict[str, Any] | None = None, name: str | None = None,
                 output: str | None = None) -> str:
        """Add a node of ``op`` (array inputs become initializers, trailing None inputs are
        dropped); returns the output tensor name. The generic form of the methods below.
        On a ModelError the builder is left unchanged."""
        node_name = name or self._fresh(str(op))
        if any(n.name == node_name for n in self._nodes):
            raise ModelError(f"graph {self.name!r}: node name {node_name!r} is used twice")
        roles = ("x", "weight", "bias") if op in (Op.CONV2D, Op.GEMM) else ()
        new: dict[str, np.ndarray] = {}
        names = [self._operand(node_name, roles[i] if i < len(roles) else f"in{i}", v, new)
                 for i, v in enumerate(inputs)]
        while names and names[-1] is None:
            names.pop()
        if any(n is None for n in names):
            raise ModelError(f"graph {self.name!r}: node {node_name!r}: only trailing "
                             "inputs may be omitted")
        out = self._new_tensor_name(output or f"{node_name}.out")
        node = Node(node_name, str(op), tuple(names), (out,),  # type: ignore[arg-type]
                    normalize_attrs(node_name, str(op), attrs or {}))
        infos = {t: TensorInfo(t, a.shape, a.dtype.name) for t, a in new.items()}
        infos.update(self._tensors)
        info = infer_node(node, [infos[t] for t in node.inputs])[0]
        self._inits.update(new)
        self._tensors.update(infos)
        self._nodes.append(node)
        self._tensors[out] = info
        return out

    def shape(self, tensor: str) -> tuple[int, ...]:
        """The inferred shape of ``tensor``."""
        if tensor not in self._tensors:
            raise ModelError(f"graph {self.name!r}: tensor {tensor!r} is not defined")
        return self._tensors[tensor].shape

    def conv2d(self, x: str, weight: str | np.ndarray, bias: str | np.ndarray | None = None,
               *, strides: IntOrPair = 1, pads: IntOrPair = 0, dilations: IntOrPair = 1,
               groups: int = 1, name: str | None = None, output: str | None = None) -> str:
        """2-D convolution, weight OIHW ``[M, C/groups, kh, kw]``, optional bias ``[M]``;
        ``pads`` is an int, (ph, pw) or (top, left, bottom, right)."""
        return self.add_node(Op.CONV2D, [x, weight, bias], {
            "strides": strides, "pads": pads, "dilations": dilations, "groups": groups},
            name, output)

    def depthwise_conv2d(self, x: str, weight: str | np.ndarray,
                         bias: str | np.ndarray | None = None, **kw: Any) -> str:
        """conv2d with groups = input channels (weight ``[C*mult, 1, kh, kw]``)."""
        return self.conv2d(x, weight, bias, groups=self.shape(x)[1], **kw)

    def linear(self, x: str, weight: str | np.ndarray, bias: str | np.ndarray | None = None,
               *, name: str | None = None, output: str | None = None) -> str:
        """``x @ weight.T + bias`` with weight ``[out, in]`` (gemm, trans_b=True)."""
        return self.add_node(Op.GEMM, [x, weight, bias], {"trans_b": True}, name, output)

    def gemm(self, a: str, b: str | np.ndarray, c: str | np.ndarray | None = None, *,
             trans_b: bool = False, name: str | None = None, output: str | None = None) -> str:
        """``a @ (b.T if trans_b else b) + c`` (alpha = beta = 1)."""
        return self.add_node(Op.GEMM, [a, b, c], {"trans_b": trans_b}, name, output)

    def matmul(self, a: str, b: str | np.ndarray, *, name: str | None = None,
               output: str | None = None) -> str:
        """numpy matmul of two rank >= 2 tensors."""
        return self.add_node(Op.MATMUL, [a, b], {}, name, output)

    def add(self, a: str, b: str | np.ndarray, *, name: str | None = None,
            output: str | None = None) -> str:
        """Elementwise sum with numpy broadcasting."""
        return self.add_node(Op.ADD, [a, b], {}, name, output)

    def relu(self, x: str, *, name: str | None = None, output: str | None = None) -> str:
        """max(x, 0)."""
        return self.add_node(Op.RELU, [x], {}, name, output)

    def clip(self, x: str, min: float | None = None, max: float | None = None, *,
             name: str | None = None, output: str | None = None) -> str:
        """clamp(x, min, max); a None bound is absent."""
        return self.add_node(Op.CLIP, [x], {"min": min, "max": max}, name, output)

    def relu6(self, x: str, *, name: str | None = None, output: str | None = None) -> str:
        """clip(x, 0, 6)."""
        return self.clip(x, 0.0, 6.0, name=name, output=output)

    def maxpool2d(self, x: str, kernel: IntOrPair, strides: IntOrPair | None = None, *,
                  pads: IntOrPair = 0, dilations: IntOrPair = 1,
                  name: str | None = None, output: str | None = None) -> str:
        """Max over each window (padding never wins); strides default to the kernel."""
        return self.add_node(Op.MAXPOOL2D, [x], {
            "kernel": kernel, "strides": kernel if strides is None else strides,
            "pads": pads, "dilations": dilations}, name, output)

    def avgpool2d(self, x: str, kernel: IntOrPair, strides: IntOrPair | None = None, *,
                  pads: IntOrPair = 0, count_include_pad: bool = False,
                  name: str | None = None, output: str | None = None) -> str:
        """Mean over each window; the divisor counts padded positions only when
        ``count_include_pad`` (specs/ir.md §2.8)."""
        return self.add_node(Op.AVGPOOL2D, [x], {
            "kernel": kernel, "strides": kernel if strides is None else strides,
            "pads": pads, "count_include_pad": count_include_pad}, name, output)

    def global_avgpool(self, x: str, *, name: str | None = None, output: str | None = None) -> str:
        """Mean over H and W, keeping them as 1 x 1."""
        return self.add_node(Op.GLOBAL_AVGPOOL, [x], {}, name, output)

    def flatten(self, x: str, axis: int = 1, *, name: str | None = None,
                output: str | None = None) -> str:
        """To 2-D ``[prod(shape[:axis]), prod(shape[axis:])]``."""
        return self.add_node(Op.FLATTEN, [x], {"axis": axis}, name, output)

    def reshape(self, x: str, shape: Sequence[int], *, name: str | None = None,
                output: str | None = None) -> str:
        """Reshape; ``0`` copies the input dimension, one ``-1`` is inferred."""
        return self.add_node(Op.RESHAPE, [x], {"shape": tuple(shape)}, name, output)

    def concat(self, xs: Sequence[str], axis: int = 1, *, name: str | None = None,
               output: str | None = None) -> str:
        """Concatenate along ``axis`` (non-negative)."""
        return self.add_node(Op.CONCAT, list(xs), {"axis": axis}, name, output)

    def pad(self, x: str, pads: Sequence[int], value: float = 0.0, *,
            name: str | None = None, output: str | None = None) -> str:
        """Constant padding; ``pads`` = all begins then all ends (ONNX order)."""
        return self.add_node(Op.PAD, [x], {"pads": tuple(pads), "value": value}, name, output)

    def build(self, *outputs: str) -> Graph:
        """The verified graph whose outputs are ``outputs`` (at least one)."""
        if not outputs:
            raise ModelError(f"graph {self.name!r}: build() needs at least one output")
        for t in outputs:
            if t not in self._tensors:
                raise ModelError(f"graph {self.name!r}: output {t!r} is not defined")
        return make_graph(self._nodes, self._inputs, outputs, self._inits, self.name)
