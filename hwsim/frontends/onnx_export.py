"""Export a float IR graph as an ONNX model (specs/ir.md §7).

The inverse of :func:`hwsim.frontends.onnx.load_onnx`: every IR op maps to one ONNX node of
opset 13 with the same node and tensor names, so ``load_onnx(to_onnx(g)) == g``. Attribute
values that ONNX takes as inputs (Clip bounds, Reshape shape, Pad pads and value) become
initializers named ``<node>.min`` / ``.max`` / ``.shape`` / ``.pads`` / ``.value``. Use it to
look at a builder-made graph in an ONNX viewer or to run it in onnxruntime.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from hwsim.errors import ModelError
from hwsim.fileio import atomic_write
from hwsim.ir.graph import Graph, Node
from hwsim.ir.ops import Op

#: The opset written.
EXPORT_OPSET = 13


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:  # pragma: no cover - onnx is a declared extra
        raise ModelError("writing ONNX models needs the 'onnx' package: "
                         "pip install 'hwsim[onnx]'") from None
    return onnx


def _node(onnx: Any, graph: Graph, node: Node, consts: dict[str, np.ndarray]) -> Any:
    helper = onnx.helper
    a = node.attrs

    def const(suffix: str, value: np.ndarray) -> str:
        name = f"{node.name}.{suffix}"
        if name in graph.tensors or name in consts:
            raise ModelError(f"node {node.name!r} ({node.op}): cannot name the exported "
                             f"constant {name!r}, a tensor of that name exists")
        consts[name] = value
        return name

    ins, outs = list(node.inputs), list(node.outputs)
    fdt = graph.tensors[node.inputs[0]].dtype
    if node.op == Op.CONV2D:
        kh, kw = graph.tensors[node.inputs[1]].shape[2:]
        return helper.make_node("Conv", ins, outs, name=node.name, kernel_shape=[kh, kw],
                                strides=list(a["strides"]), pads=list(a["pads"]),
                                dilations=list(a["dilations"]), group=a["groups"])
    if node.op == Op.GEMM:
        return helper.make_node("Gemm", ins, outs, name=node.name, transB=int(a["trans_b"]))
    if node.op == Op.CLIP:
        bounds = ["", ""]
        for i, key in enumerate(("min", "max")):
            if a[key] is not None:
                bounds[i] = const(key, np.array(a[key], dtype=fdt))
        while bounds and not bounds[-1]:
            bounds.pop()
        return helper.make_node("Clip", ins + bounds, outs, name=node.name)
    if node.op in (Op.MAXPOOL2D, Op.AVGPOOL2D):
        kw_: dict[str, Any] = {"kernel_shape": list(a["kernel"]), "strides": list(a["strides"]),
                               "pads": list(a["pads"])}
        if node.op == Op.MAXPOOL2D:
            kw_["dilations"] = list(a["dilations"])
            return helper.make_node("MaxPool", ins, outs, name=node.name, **kw_)
        return helper.make_node("AveragePool", ins, outs, name=node.name,
                                count_include_pad=int(a["count_include_pad"]), **kw_)
    if node.op in (Op.FLATTEN, Op.CONCAT):
        onnx_op = "Flatten" if node.op == Op.FLATTEN else "Concat"
        return helper.make_node(onnx_op, ins, outs, name=node.name, axis=a["axis"])
    if node.op == Op.RESHAPE:
        shape = const("shape", np.array(a["shape"], dtype=np.int64))
        return helper.make_node("Reshape", ins + [shape], outs, name=node.name)
    if node.op == Op.PAD:
        pads = const("pads", np.array(a["pads"], dtype=np.int64))
        value = const("value", np.array(a["value"], dtype=fdt))
        return helper.make_node("Pad", ins + [pads, value], outs, name=node.name,
                                mode="constant")
    simple = {Op.MATMUL: "MatMul", Op.ADD: "Add", Op.RELU: "Relu",
              Op.GLOBAL_AVGPOOL: "GlobalAveragePool"}
    return helper.make_node(simple[Op(node.op)], ins, outs, name=node.name)


def to_onnx(graph: Graph) -> Any:
    """``graph`` as a checked opset-13 ``onnx.ModelProto`` (static shapes, same names)."""
    onnx = _onnx()
    from onnx import numpy_helper

    consts: dict[str, np.ndarray] = {}
    nodes = [_node(onnx, graph, n, consts) for n in graph.nodes]

    def value_info(name: str) -> Any:
        info = graph.tensors[name]
        elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(info.dtype))
        return onnx.helper.make_tensor_value_info(name, elem, list(info.shape))

    inits = [numpy_helper.from_array(np.asarray(v), k)
             for k, v in {**graph.initializers, **consts}.items()]
    g = onnx.helper.make_graph(nodes, graph.name, [value_info(t) for t in graph.inputs],
                               [value_info(t) for t in graph.outputs], inits)
    model = onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("",
                                                                              EXPORT_OPSET)],
                                   producer_name="hwsim")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def save_onnx(graph: Graph, path: str | os.PathLike[str]) -> None:
    """Write ``to_onnx(graph)`` to ``path`` atomically (temporary file, then rename)."""
    data = to_onnx(graph).SerializeToString()
    atomic_write(path, data)
