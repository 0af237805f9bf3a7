"""Import float ONNX models into the float IR (specs/ir.md §6).

:func:`load_onnx` reads an ONNX model (path, bytes or ``onnx.ModelProto``) of ai.onnx opset
13..22 (:data:`MIN_OPSET`, :data:`MAX_OPSET`) with finite float32 tensors and static shapes
(a symbolic batch dimension becomes 1; see :func:`hwsim.ir.with_batch`) and returns a
verified :class:`~hwsim.ir.Graph`.

ONNX ops and their IR ops: Conv → conv2d, MatMul → matmul, Gemm → gemm, Add → add,
Relu → relu, Clip → clip, MaxPool → maxpool2d, AveragePool → avgpool2d,
GlobalAveragePool → global_avgpool, Flatten → flatten, Reshape → reshape, Concat → concat,
Pad → pad; BatchNormalization is folded into the Conv before it; Identity, Dropout and
Constant disappear (aliases and constants). Anything else — another op, an unsupported
attribute value, a dynamic shape, a non-float32 tensor, a malformed file — raises ONE
:class:`~hwsim.errors.ModelError` naming the node, the op and what is supported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from hwsim.errors import ModelError
from hwsim.ir.graph import Graph, Node, TensorInfo, make_graph
from hwsim.ir.ops import Op, infer_node, normalize_attrs

#: The lowest ai.onnx opset accepted.
MIN_OPSET = 13
#: The highest ai.onnx opset accepted (the op semantics imported here are those of opsets
#: 13..22; a later opset may change them, so it is refused rather than guessed).
MAX_OPSET = 22

#: ONNX ops the frontend imports.
SUPPORTED_OPS = (
    "Add", "AveragePool", "BatchNormalization", "Clip", "Concat", "Constant", "Conv",
    "Dropout", "Flatten", "Gemm", "GlobalAveragePool", "Identity", "MatMul", "MaxPool",
    "Pad", "Relu", "Reshape",
)

_SPATIAL_ONES = [1, 1]


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:  # pragma: no cover - onnx is a declared extra
        raise ModelError("reading ONNX models needs the 'onnx' package: "
                         "pip install 'hwsim[onnx]'") from None
    return onnx


def _read_model(source: Any) -> Any:
    onnx = _onnx()
    from google.protobuf.message import DecodeError

    if isinstance(source, onnx.ModelProto):
        return source
    if isinstance(source, (bytes, bytearray, memoryview)):
        what, data = "ONNX bytes", bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        what = f"ONNX file {os.fspath(source)!r}"
        try:
            from hwsim.limits import check_memory

            if os.path.isfile(source):  # the bytes and their decoded copy, before reading
                check_memory(2 * os.path.getsize(source), f"reading {what}")
            with open(source, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ModelError(f"cannot read {what}: {e.strerror or e}") from None
    else:
        raise ModelError(f"load_onnx needs a path, bytes or onnx.ModelProto, "
                         f"got {type(source).__name__}")
    try:
        model = onnx.ModelProto.FromString(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise ModelError(f"{what} is not a valid ONNX model (protobuf decoding failed: "
                         f"{e}); the file is truncated or not ONNX") from None
    if model.ir_version == 0 or not model.HasField("graph"):
        raise ModelError(f"{what} is not a valid ONNX model (no ir_version or no graph); "
                         "the file is truncated or not ONNX")
    _check_names(model, what)
    if isinstance(source, (str, os.PathLike)):
        from onnx.external_data_helper import load_external_data_for_model, uses_external_data

        external = [t for t in model.graph.initializer if uses_external_data(t)]
        if external:
            base = os.path.dirname(os.fspath(source)) or "."
            for t in external:
                _check_external_location(t, base, what)
            _check_external_size(external, what)
            try:
                load_external_data_for_model(model, base)
            except Exception as e:  # noqa: BLE001 - onnx refuses with assorted types
                msg = " ".join(str(e).split())[:200]
                raise ModelError(f"{what}: cannot load the external data of initializer(s) "
                                 f"{[t.name for t in external]}: {msg}") from None
    return model


def _check_external_size(tensors: list[Any], what: str) -> None:
    """The external data declared by ``tensors`` (dims × element size) fits the memory
    limit, checked before onnx reads it."""
    import math

    from onnx import helper

    from hwsim.limits import check_memory

    total = 0
    for t in tensors:
        try:
            item = np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
        except (KeyError, TypeError, ValueError):
            item = 8
        total += math.prod(int(d) for d in t.dims) * item
    check_memory(total, f"{what}: external data of initializer(s) "
                        f"{[t.name for t in tensors]}")


def _check_external_location(tensor: Any, base: str, what: str) -> None:
    """External data of ``tensor`` is a regular file inside the model's directory ``base``
    (a relative path, no ``..``, not a symlink leading out)."""
    entries = {e.key: e.value for e in tensor.external_data}
    loc = entries.get("location", "")
    where = f"{what}: initializer {tensor.name!r} external data {loc!r}"
    if not loc or os.path.isabs(loc) or ".." in loc.replace("\\", "/").split("/"):
        raise ModelError(f"{where}: expected a relative path inside the model's directory")
    root = os.path.realpath(base)
    full = os.path.realpath(os.path.join(base, loc))
    if os.path.commonpath([root, full]) != root:
        raise ModelError(f"{where}: resolves outside the model's directory (symlink); "
                         "expected a file inside it")
    if not os.path.isfile(full):
        raise ModelError(f"{where}: no such file next to the model")


def _check_names(model: Any, what: str) -> None:
    """Every name and op type decodes as UTF-8 text (protobuf does not check proto2 strings)."""
    g = model.graph
    try:
        names = [g.name] + [v.name for v in (*g.input, *g.output, *g.initializer)]
        for n in g.node:
            names += [n.name, n.op_type, n.domain, *n.input, *n.output]
            names += [a.name for a in n.attribute]
        names += [o.domain for o in model.opset_import]
        ok = all(isinstance(x, str) for x in names)
    except UnicodeDecodeError:
        ok = False
    if not ok:
        raise ModelError(f"{what} is not a valid ONNX model (a name is not valid UTF-8 "
                         "text); the file is corrupt")


def _check_opset(model: Any) -> None:
    versions = {o.domain: o.version for o in model.opset_import}
    version = versions.get("", versions.get("ai.onnx"))
    if version is None:
        raise ModelError("ONNX model does not import the ai.onnx opset; hwsim needs "
                         f"opset >= {MIN_OPSET}")
    if not MIN_OPSET <= version <= MAX_OPSET:
        raise ModelError(f"ONNX model uses ai.onnx opset {version}; hwsim supports opsets "
                         f"{MIN_OPSET}..{MAX_OPSET} (convert with "
                         "onnx.version_converter.convert_version)")


class _Importer:
    """One ONNX graph → IR conversion (state kept here, not in globals)."""

    def __init__(self, model: Any, what: str = "ONNX model") -> None:
        self.what = what
        self.onnx = _onnx()
        self.graph = model.graph
        self.consts: dict[str, np.ndarray] = {}
        self.alias: dict[str, str] = {}
        self.infos: dict[str, TensorInfo] = {}
        self.inputs: list[TensorInfo] = []
        self.nodes: list[Node] = []
        self.used_inits: dict[str, np.ndarray] = {}
        self.node_names: set[str] = set()
        self.consumers: dict[str, int] = {}
        for n in self.graph.node:
            for t in n.input:
                self.consumers[t] = self.consumers.get(t, 0) + 1
        self.graph_outputs = [o.name for o in self.graph.output]

    # --- tensors ---------------------------------------------------------------------

    def resolve(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def const(self, where: str, name: str, what: str) -> np.ndarray:
        """The constant value of ``name`` (initializer or Constant output)."""
        r = self.resolve(name)
        if r not in self.consts:
            raise ModelError(f"{where}: {what} {name!r} must be an initializer or a Constant, "
                             "not a graph input or a computed tensor")
        return self.consts[r]

    def data(self, where: str, name: str) -> str:
        """IR tensor name for a data input; constants become float32 initializers."""
        r = self.resolve(name)
        if r in self.infos:
            return r
        if r in self.consts:
            arr = self.consts[r]
            if arr.dtype != np.float32:
                raise ModelError(f"{where}: tensor {name!r} has dtype {arr.dtype.name}; "
                                 "only float32 data tensors are supported")
            if arr.size and not np.all(np.isfinite(arr)):
                i = int(np.argmax(~np.isfinite(arr.reshape(-1))))
                raise ModelError(f"{self.what}: {where}: tensor {name!r} has a NaN or Inf "
                                 f"value (flat index {i}); expected finite float32 values")
            self.used_inits[r] = arr
            self.infos[r] = TensorInfo(r, arr.shape, "float32")
            return r
        raise ModelError(f"{where}: input {name!r} is not a graph input, an initializer or "
                         "the output of an earlier node")

    def emit(self, where: str, name: str, op: Op, inputs: list[str], attrs: Mapping[str, Any],
             output: str) -> None:
        prefix = f"node {name!r} ({op.value}): "
        try:
            node = Node(name, op.value, tuple(inputs), (output,),
                        normalize_attrs(name, op, attrs))
            (info,) = infer_node(node, [self.infos[t] for t in inputs])
        except ModelError as e:
            msg = str(e)
            raise ModelError(f"{where}: {msg.removeprefix(prefix)}") from None
        self.nodes.append(node)
        self.infos[output] = info

    # --- graph -----------------------------------------------------------------------

    def load_initializers(self) -> None:
        from onnx import numpy_helper

        for t in self.graph.initializer:
            try:
                arr = numpy_helper.to_array(t)
            except Exception as e:  # noqa: BLE001 - onnx raises assorted types here
                raise ModelError(f"initializer {t.name!r} cannot be decoded: {e}") from None
            self._check_const_dtype(f"initializer {t.name!r}", arr)
            self.consts[t.name] = np.array(arr, order="C")

    @staticmethod
    def _check_const_dtype(where: str, arr: np.ndarray) -> None:
        if arr.dtype not in (np.float32, np.int64, np.int32):
            raise ModelError(f"{where} has unsupported dtype {arr.dtype.name}; supported: "
                             "float32 (weights, data) and int64/int32 (shapes, pads, axes)")

    def load_inputs(self) -> None:
        tp = self.onnx.TensorProto
        for vi in self.graph.input:
            if vi.name in self.consts:
                continue
            where = f"graph input {vi.name!r}"
            tt = vi.type.tensor_type
            if not vi.type.HasField("tensor_type"):
                raise ModelError(f"{where} is not a tensor; only float32 tensors are supported")
            if tt.elem_type != tp.FLOAT:
                raise ModelError(f"{where} has dtype "
                                 f"{tp.DataType.Name(tt.elem_type)}; only FLOAT (float32) "
                                 "inputs are supported")
            if not tt.HasField("shape"):
                raise ModelError(f"{where} has no shape; static shapes are required")
            shape = []
            for i, d in enumerate(tt.shape.dim):
                if d.HasField("dim_value") and d.dim_value > 0:
                    shape.append(d.dim_value)
                elif d.HasField("dim_value"):
                    raise ModelError(f"{where} has size {d.dim_value} in dimension {i}; "
                                     "expected sizes >= 1 (empty tensors are not supported)")
                elif i == 0:
                    shape.append(1)
                else:
                    sym = d.dim_param or "?"
                    raise ModelError(f"{where} has dynamic dimension {i} ({sym!r}); only the "
                                     "batch dimension (0) may be symbolic")
            info = TensorInfo(vi.name, tuple(shape), "float32")
            self.inputs.append(info)
            self.infos[vi.name] = info

    def check_defined(self) -> None:
        """Every node input is defined before use (clear message for a missing tensor)."""
        defined = set(self.consts) | {vi.name for vi in self.graph.input} | {""}
        for i, n in enumerate(self.graph.node):
            for t in n.input:
                if t not in defined:
                    later = any(t in m.output for m in self.graph.node[i + 1:])
                    why = ("is produced by a later node (nodes are not topologically sorted)"
                           if later else "is not a graph input, an initializer or a node "
                           "output (missing initializer?)")
                    raise ModelError(f"{self.where(i, n)}: input {t!r} {why}")
            defined.update(n.output)
        self.check_static_shapes()

    def check_static_shapes(self) -> None:
        """Reshape shapes are constants (initializer, Constant, or an Identity of one)."""
        static = set(self.consts)
        producer: dict[str, tuple[int, Any]] = {}
        for i, n in enumerate(self.graph.node):
            if n.op_type == "Constant" or (n.op_type == "Identity" and n.input[0] in static):
                static.update(n.output)
            for t in n.output:
                producer[t] = (i, n)
            if n.op_type == "Reshape" and len(n.input) > 1 and n.input[1] not in static:
                src = producer.get(n.input[1])
                by = (f"computed by {self.where(*src)}" if src else "a graph input")
                raise ModelError(f"{self.where(i, n)}: shape {n.input[1]!r} must be an "
                                 f"initializer or a Constant, but it is {by}; dynamic shapes "
                                 "are not supported")

    def where(self, i: int, n: Any) -> str:
        return f"node {n.name or f'#{i}'!r} ({n.op_type})"

    def unique_name(self, i: int, n: Any) -> str:
        base = n.name or f"{n.op_type.lower()}_{i}"
        name, k = base, 1
        while name in self.node_names:
            name, k = f"{base}_{k}", k + 1
        self.node_names.add(name)
        return name

    def prepare(self) -> None:
        """Constants, graph inputs and the use-before-definition check."""
        self.load_initializers()
        self.load_inputs()
        self.check_defined()

    def run(self, graph_name: str) -> Graph:
        """Convert every node (after :meth:`prepare`) and build the verified graph."""
        for i, n in enumerate(self.graph.node):
            where = self.where(i, n)
            if n.domain not in ("", "ai.onnx"):
                raise ModelError(f"{where}: op domain {n.domain!r} is not supported; supported "
                                 f"ONNX ops (ai.onnx): {', '.join(SUPPORTED_OPS)}")
            handler = getattr(self, f"op_{n.op_type}", None)
            if handler is None:
                raise ModelError(f"{where}: op {n.op_type} is not supported; supported ONNX "
                                 f"ops: {', '.join(SUPPORTED_OPS)}")
            attrs = {a.name: self.onnx.helper.get_attribute_value(a) for a in n.attribute}
            handler(where, n, attrs, self.unique_name(i, n))
        outputs = self.finish_outputs()
        used = {t for node in self.nodes for t in node.inputs}
        inits = {k: v for k, v in self.used_inits.items() if k in used or k in outputs}
        try:
            return make_graph(self.nodes, self.inputs, outputs, inits, graph_name)
        except ModelError as e:
            raise ModelError(f"imported graph is invalid: {e}") from None

    def finish_outputs(self) -> list[str]:
        outputs = []
        produced = {node.outputs[0] for node in self.nodes}
        for o in self.graph_outputs:
            r = self.resolve(o)
            if r != o:
                if r not in produced or r in self.graph_outputs:
                    raise ModelError(f"graph output {o!r} is an Identity/Dropout of {r!r}, "
                                     "which is not a node output of its own; unsupported")
                self.rename(r, o)
                produced.discard(r)
                produced.add(o)
            if o not in produced and o not in self.infos:
                raise ModelError(f"graph output {o!r} is not produced by any node")
            outputs.append(o)
        return outputs

    def rename(self, old: str, new: str) -> None:
        self.nodes = [Node(nd.name, nd.op, tuple(new if t == old else t for t in nd.inputs),
                           tuple(new if t == old else t for t in nd.outputs), nd.attrs)
                      for nd in self.nodes]
        info = self.infos.pop(old)
        self.infos[new] = TensorInfo(new, info.shape, info.dtype)

    # --- attribute helpers -----------------------------------------------------------

    @staticmethod
    def allow(where: str, op: str, attrs: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
        for k in attrs:
            if k not in allowed:
                raise ModelError(f"{where}: attribute {k!r} is not supported; {op} supports "
                                 f"{', '.join(allowed) if allowed else 'no attributes'}")

    @staticmethod
    def no_auto_pad(where: str, attrs: Mapping[str, Any]) -> None:
        ap = attrs.get("auto_pad", b"NOTSET")
        ap = ap.decode() if isinstance(ap, bytes) else str(ap)
        if ap != "NOTSET":
            raise ModelError(f"{where}: auto_pad={ap} is not supported; only NOTSET with "
                             "explicit pads")

    def spatial(self, where: str, x: str, attrs: Mapping[str, Any], kernel_len: int | None
                ) -> tuple[list[int], list[int], list[int]]:
        """strides, pads (top, left, bottom, right), dilations of a 2-D window op."""
        if self.infos[x].rank != 4:
            raise ModelError(f"{where}: only 2-D (NCHW, rank 4) inputs are supported, input "
                             f"{x!r} has shape {self.infos[x].shape}")
        if kernel_len is not None and kernel_len != 2:
            raise ModelError(f"{where}: kernel_shape must have 2 values (2-D), "
                             f"got {kernel_len}")
        strides = list(attrs.get("strides", _SPATIAL_ONES))
        dil = list(attrs.get("dilations", _SPATIAL_ONES))
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        if len(strides) != 2 or len(dil) != 2 or len(pads) != 4:
            raise ModelError(f"{where}: strides/dilations need 2 values and pads 4 "
                             f"(2-D); got strides={strides}, dilations={dil}, pads={pads}")
        if any(p < 0 for p in pads):
            raise ModelError(f"{where}: negative pads {pads} are not supported")
        return strides, pads, dil

    def no_ceil(self, where: str, attrs: Mapping[str, Any]) -> None:
        if attrs.get("ceil_mode", 0) != 0:
            raise ModelError(f"{where}: ceil_mode=1 is not supported; only ceil_mode=0 "
                             "(floor) output sizes")

    def single_output(self, where: str, n: Any) -> None:
        extra = [o for o in n.output[1:] if o]
        if extra:
            raise ModelError(f"{where}: only the first output is supported, the node also "
                             f"writes {extra[0]!r}")

    # --- ops -------------------------------------------------------------------------

    def op_Constant(self, where: str, n: Any, attrs: dict[str, Any], name: str) -> None:
        from onnx import numpy_helper

        if len(attrs) != 1:
            raise ModelError(f"{where}: needs exactly one value attribute, got "
                             f"{sorted(attrs)}")
        (key, value), = attrs.items()
        if key == "value":
            arr = numpy_helper.to_array(value)
        elif key in ("value_float", "value_floats"):
            arr = np.array(value, dtype=np.float32)
        elif key in ("value_int", "value_ints"):
            arr = np.array(value, dtype=np.int64)
        else:
            raise ModelError(f"{where}: attribute {key!r} is not supported; Constant supports "
                             "value, value_float(s), value_int(s)")
        self._check_const_dtype(where, arr)
        self.consts[n.output[0]] = np.array(arr, order="C")

    def op_Identity(self, where: str, n: Any, attrs: dict[str, Any], name: str) -> None:
        self.allow(where, "Identity", attrs, ())
        self.alias[n.output[0]] = n.input[0]

    def op_Dropout(self, where: str, n: Any, attrs: dict[str, Any], name: str) -> None:
        self.allow(where, "Dropout", attrs, ("seed",))
        if len(n.input) > 2 and n.input[2]:
            mode = self.const(where, n.input[2], "training_mode")
            if bool(np.asarray(mode).reshape(())):
                raise ModelError(f"{where}: training_mode=True is not supported (inference "
                                 "only)")
        mask = n.output[1] if len(n.output) > 1 else ""
        if mask and (self.consumers.get(mask) or mask in self.graph_outputs):
            raise ModelError(f"{where}: the mask output {mask!r} is used; only inference "
                             "Dropout (output 0) is supported")
        self.alias[n.output[0]] = n.input[0]

    def op_Conv(self, where: str, n: Any, attrs: dict[str, Any], name: str) -> None:
        self.allow(where, "Conv", attrs, ("auto_pad", "dilations", "group", "kernel_shape",
                                          "pads", "strides"))
        self.no_auto_pad(where, attrs)
        x = self.data(where, n.input[0])
        w = self.const(where, n.input[1], "weight")
        if w.dtype != np.float32 or w.ndim != 4:
            raise ModelError(f"{where}: weight {n.input[1]!r} must be a float32 OIHW tensor, "
                             f"got {w.dtype.name}{list(w.shape)}")
        ks = attrs.get("kernel_shape")
        strides, pads, dil = self.spatial(where, x, attrs, None if ks is None else len(ks))
        if ks is not None and tuple(ks) != w.shape[2:]:
            raise ModelError(f"{where}: kernel_shape {list(ks)} does not match the weight "
                             f"shape {list(w.shape)}")
        ins = [x, self.data(where, n.input[1])]
        if len(n.input) > 2 and n.input[2]:
            self.const(where, n.input[2], "bias")
            ins.append(self.data(where, n.input[2]))
        self.emit(where, name, Op.CONV2D, ins, {"strides": strides, "pads": pads,
                  "dilations": dil, "groups": attrs.get("group", 1)}, n.output[0])

    def op_BatchNormalization(self, where: str, n: Any, attrs: dict[str, Any],
                              name: str) -> None:
        self.allow(where, "BatchNormalization", attrs, ("epsilon", "momentum",
                                                        "training_mode"))
        if attrs.get("training_mode", 0) != 0:
            raise ModelError(f"{where}: training_mode=1 is not supported (inference only)")
        self.single_output(where, n)
        x = self.resolve(n.input[0])
        conv = self.nodes[-1] if self.nodes and self.nodes[-1].outputs[0] == x else None
        if conv is None:
            conv = next((nd for nd in self.nodes if nd.outputs[0] == x), None)
        reason = None
        if conv is None or conv.op != Op.CONV2D:
            reason = "its input is not the output of a Conv"
        elif self.consumers.get(x, 0) != 1 or x in self.graph_outputs or any(
                self.resolve(t) == x and t != x for t in self.consumers):
            reason = f"the Conv output {x!r} has other consumers"
        if reason is not None:
            raise ModelError(f"{where}: cannot fold BatchNormalization into a preceding Conv: "
                             f"{reason}; only Conv → BatchNormalization is supported")
        assert conv is not None
        scale, b_bn, mean, var = (self.const(where, t, role).astype(np.float64) for t, role in
                                  zip(n.input[1:5], ("scale", "B", "mean", "var"), strict=False))
        m = self.infos[x].shape[1]
        for role, arr in (("scale", scale), ("B", b_bn), ("mean", mean), ("var", var)):
            if arr.shape != (m,):
                raise ModelError(f"{where}: {role} must have shape ({m},), got {arr.shape}")
        denom = var + float(attrs.get("epsilon", 1e-5))
        if not np.all(denom > 0) or not np.all(np.isfinite(scale)):
            raise ModelError(f"{where}: var + epsilon must be positive and scale finite to "
                             "fold BatchNormalization")
        k = scale / np.sqrt(denom)
        w = self.used_inits[conv.inputs[1]].astype(np.float64)
        b = (self.used_inits[conv.inputs[2]].astype(np.float64) if len(conv.inputs) == 3
             else np.zeros(m))
        wname, bname = f"{conv.name}.weight_bn", f"{conv.name}.bias_bn"
        with np.errstate(over="ignore", invalid="ignore"):
            folded_w = (w * k[:, None, None, None]).astype(np.float32)
            folded_b = ((b - mean) * k + b_bn).astype(np.float32)
        if not (np.all(np.isfinite(folded_w)) and np.all(np.isfinite(folded_b))):
            raise ModelError(f"{where}: folding into {conv.name!r} gives non-finite float32 "
                             "weights or bias")
        self.used_inits[wname], self.used_inits[bname] = folded_w, folded_b
        for t in (wname, bname):
            self.infos[t] = TensorInfo(t, self.used_inits[t].shape, "float32")
        self.nodes.remove(conv)
        del self.infos[x]
        self.emit(where, conv.name, Op.CONV2D, [conv.inputs[0], wname, bname], conv.attrs,
                  n.output[0])

    def op_MatMul(self, where: str, n: Any, attrs: dict[str, Any], name: str) -> None:
        self.allow(where, "MatMul", attrs, ())
        self.emit(where, name, Op.MATMUL, [self.data(where, t) for t in n.input], {},
                  n.output[0])

    def op_Gemm(self, where: str, n: Any, attrs: dict[str, Any], name: str) -> None:
        self.allow(where, "Gemm", attrs, ("alpha", "beta", "transA", "transB"))
        if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
            raise ModelError(f"{where}: alpha={attrs.get('alpha', 1.0)}, "
                             f"beta={attrs.get('beta', 1.0)} are not supported; only "
                             "alpha = beta = 1")
        if attrs.get("transA", 0) != 0:
            raise ModelError(f"{where}: transA=1 is not supported; only transA=0")
        ins = [self.data(where, n.input[0])]
        for t, role in zip(n.input[1:], ("B", "C"), strict=False):
            if t:
                self.const(where, t, f"input {role}")
                ins.append(self.data(where, t))
        self.emit(where, name, Op.GEMM, ins, {"trans_b": bool(attrs.get("transB", 0))},
                  n.output[0])

    def op_Add(self, where: str, n: Any, attrs: dict[str, Any], name: str) -> None:
        self.allow(where, "Add", attrs, ())
        self.emit(where, name, Op.ADD, [self.data(where, t) for t in n.input], {},
                  n.output[0])

    def op_Relu(self, where: str, n: Any, attrs: dict[str, Any], name: str) -> None:
        self.allow(where, "Relu", attrs, ())
        self.emit(where, name, Op.RELU, [self.data(where, n.input[0])], {}, n.output[0])

    def op_Clip(self, where: str, n: Any, attrs: dict[str, Any], name: str) -> None:
        self.allow(where, "Clip", attrs, ())
        bounds: list[float | None] = [None, None]
        for i, role in ((1, "min"), (2, "max")):
            if len(n.input) > i and n.input[i]:
                v = self.const(where, n.input[i], role)
                if v.size != 1:
                    raise ModelError(f"{where}: {role} must be a scalar, got shape {v.shape}")
                bounds[i - 1] = float(v.reshape(()))
        self.emit(where, name, Op.CLIP, [self.data(where, n.input[0])],
                  {"min": bounds[0], "max": bounds[1]}, n.output[0])

    def op_MaxPool(self, where: str, n: Any, attrs: dict[str, Any], name: str) -> None:
        self.allow(where, "MaxPool", attrs, ("auto_pad", "ceil_mode", "dilations",
                                             "kernel_shape", "pads", "storage_order",
                                             "strides"))
        self.no_auto_pad(where, attrs)
        self.no_ceil(where, attrs)
        self.single_output(where, n)
        x = self.data(where, n.input[0])
        ks = list(attrs.get("kernel_shape", []))
        strides, pads, dil = self.spatial(where, x, attrs, len(ks))
        self.emit(where, name, Op.MAXPOOL2D, [x], {"kernel": ks, "strides": strides,
                  "pads": pads, "dilations": dil}, n.output[0])

    def op_AveragePool(self, where: str, n: Any, attrs: dict[str, Any], name: str) -> None:
        self.allow(where, "AveragePool", attrs, ("auto_pad", "ceil_mode", "count_include_pad",
                                                 "dilations", "kernel_shape", "pads",
                                                 "strides"))
        self.no_auto_pad(where, attrs)
        self.no_ceil(where, attrs)
        x = self.data(where, n.input[0])
        ks = list(attrs.get("kernel_shape", []))
        strides, pads, dil = self.spatial(where, x, attrs, len(ks))
        if dil != [1, 1]:
            raise ModelError(f"{where}: dilations {dil} are not supported; only [1, 1]")
        self.emit(where, name, Op.AVGPOOL2D, [x], {"kernel": ks, "strides": strides,
                  "pads": pads, "count_include_pad": bool(attrs.get("count_include_pad", 0))},
                  n.output[0])

    def op_GlobalAveragePool(self, where: str, n: Any, attrs: dict[str, Any],
                             name: str) -> None:
        self.allow(where, "GlobalAveragePool", attrs, ())
        self.emit(where, name, Op.GLOBAL_AVGPOOL, [self.data(where, n.input[0])], {},
                  n.output[0])

    def _axis(self, where: str, x: str, axis: int, hi_inclusive: bool) -> int:
        rank = self.infos[x].rank
        hi = rank + 1 if hi_inclusive else rank
        if not -rank <= axis < hi:
            raise ModelError(f"{where}: axis {axis} out of range for input {x!r} of rank "
                             f"{rank}")
        return axis + rank if axis < 0 else axis

    def op_Flatten(self, where: str, n: Any, attrs: dict[str, Any], name: str) -> None:
        self.allow(where, "Flatten", attrs, ("axis",))
        x = self.data(where, n.input[0])
        axis = self._axis(where, x, attrs.get("axis", 1), True)
        self.emit(where, name, Op.FLATTEN, [x], {"axis": axis}, n.output[0])

    def op_Reshape(self, where: str, n: Any, attrs: dict[str, Any], name: str) -> None:
        self.allow(where, "Reshape", attrs, ("allowzero",))
        shape = self.const(where, n.input[1], "shape")
        if shape.dtype.kind != "i" or shape.ndim != 1:
            raise ModelError(f"{where}: shape must be a 1-D int64 tensor, got "
                             f"{shape.dtype.name}{list(shape.shape)}")
        if attrs.get("allowzero", 0) != 0 and 0 in shape:
            raise ModelError(f"{where}: allowzero=1 with a 0 in the shape (an empty tensor) "
                             "is not supported")
        self.emit(where, name, Op.RESHAPE, [self.data(where, n.input[0])],
                  {"shape": [int(v) for v in shape]}, n.output[0])

    def op_Concat(self, where: str, n: Any, attrs: dict[str, Any], name: str) -> None:
        self.allow(where, "Concat", attrs, ("axis",))
        if "axis" not in attrs:
            raise ModelError(f"{where}: attribute 'axis' is required")
        ins = [self.data(where, t) for t in n.input]
        axis = self._axis(where, ins[0], attrs["axis"], False)
        self.emit(where, name, Op.CONCAT, ins, {"axis": axis}, n.output[0])

    def op_Pad(self, where: str, n: Any, attrs: dict[str, Any], name: str) -> None:
        self.allow(where, "Pad", attrs, ("mode",))
        mode = attrs.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else str(mode)
        if mode != "constant":
            raise ModelError(f"{where}: mode={mode} is not supported; only mode=constant")
        x = self.data(where, n.input[0])
        rank = self.infos[x].rank
        pads = [int(v) for v in self.const(where, n.input[1], "pads").reshape(-1)]
        value = 0.0
        if len(n.input) > 2 and n.input[2]:
            v = self.const(where, n.input[2], "constant_value")
            if v.size != 1:
                raise ModelError(f"{where}: constant_value must be a scalar")
            value = float(v.reshape(()))
        axes = list(range(rank))
        if len(n.input) > 3 and n.input[3]:
            axes = [self._axis(where, x, int(a), False)
                    for a in self.const(where, n.input[3], "axes").reshape(-1)]
        if len(pads) != 2 * len(axes):
            raise ModelError(f"{where}: pads needs {2 * len(axes)} values (begins then ends "
                             f"for {len(axes)} axes), got {len(pads)}")
        if any(p < 0 for p in pads):
            raise ModelError(f"{where}: negative pads {pads} (cropping) are not supported")
        full = [0] * (2 * rank)
        for j, a in enumerate(axes):
            full[a], full[a + rank] = pads[j], pads[j + len(axes)]
        self.emit(where, name, Op.PAD, [x], {"pads": full, "value": value}, n.output[0])


def load_onnx(source: str | os.PathLike[str] | bytes | Any, *, name: str | None = None
              ) -> Graph:
    """Import a float32 ONNX model (path, bytes or ``onnx.ModelProto``) as a verified Graph.

    Raises ModelError (one, naming the node, op and what is supported) for a truncated or
    non-ONNX file, an opset below 13, an unsupported op, attribute, dtype or dynamic shape,
    a missing initializer, or a BatchNormalization that cannot be folded into a Conv.
    """
    onnx = _onnx()
    model = _read_model(source)
    _check_opset(model)
    what = (f"ONNX file {os.fspath(source)!r}" if isinstance(source, (str, os.PathLike))
            else "ONNX model")
    imp = _Importer(model, what)
    imp.prepare()
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"ONNX checker rejected the model: {first}") from None
    graph = imp.run(name or model.graph.name or "onnx_model")
    check_graph_memory(graph, what)
    return graph


def check_graph_memory(graph: Graph, what: str = "model", batch: int = 1) -> None:
    """ResourceError (naming ``what`` and its largest tensor) if ``batch`` inferences of
    ``graph`` at once need more than the memory limit (hwsim.limits): every activation
    tensor, :data:`hwsim.limits.BYTES_PER_ELEMENT` bytes per element and input, plus the
    weights."""
    import math

    from hwsim.limits import BYTES_PER_ELEMENT, check_memory, format_size

    acts = {t: math.prod(info.shape[1:]) for t, info in graph.tensors.items()
            if t not in graph.initializers}
    weights = sum(math.prod(info.shape) for t, info in graph.tensors.items()
                  if t in graph.initializers)
    big = max(acts, key=acts.get, default=None)
    need = sum(acts.values()) * BYTES_PER_ELEMENT * batch + weights * 16
    if big is not None:
        shape = graph.tensors[big].shape
        runs = "one inference" if batch == 1 else f"{batch} inferences at once"
        check_memory(need, f"{what}: {runs} (largest tensor {big!r}, shape "
                           f"{list(shape)}, {format_size(acts[big] * 4)} as float32)")
