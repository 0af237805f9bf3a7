"""The float IR: typed tensors, nodes, graphs, the op registry and ``verify``.

Contract (specs/ir.md):

* :class:`TensorInfo` ``(name, shape, dtype)`` — static shape (positive ints), dtype
  ``"float32"`` (or ``"float64"``); layout NCHW, batch dimension first, conv weights OIHW.
* :class:`Node` ``(name, op, inputs, outputs, attrs)`` — ``op`` is an :class:`Op` value
  (``"conv2d"``, ``"matmul"``, ``"gemm"``, ``"add"``, ``"relu"``, ``"clip"``,
  ``"maxpool2d"``, ``"avgpool2d"``, ``"global_avgpool"``, ``"flatten"``, ``"reshape"``,
  ``"concat"``, ``"pad"``); ``attrs`` canonical (every attribute present, see
  :func:`normalize_attrs`); exactly one output.
* :class:`Graph` ``(nodes, inputs, outputs, initializers, tensors, name)`` — nodes in
  topological order; ``initializers`` maps constant tensor names to arrays; ``tensors`` has
  a TensorInfo for every tensor. Conv2d weight/bias and gemm weight/bias are initializers.
* :func:`verify` raises ModelError naming the offending node/op/tensor;
  :func:`make_graph` infers shapes and verifies; :func:`with_batch` re-infers shapes for
  another batch size. :class:`GraphBuilder` (``hwsim.ir.builder``) makes graphs in code.
"""

from hwsim.ir.graph import DTYPES, Graph, Node, TensorInfo, make_graph, with_batch
from hwsim.ir.ops import OPS, Op, OpDef, infer_node, normalize_attrs
from hwsim.ir.verify import verify

__all__ = [
    "DTYPES",
    "OPS",
    "Graph",
    "Node",
    "Op",
    "OpDef",
    "TensorInfo",
    "infer_node",
    "make_graph",
    "normalize_attrs",
    "verify",
    "with_batch",
]
