"""Write ``.tflite`` flatbuffers with the schema API of the ``tflite`` package (specs/ir.md §10).

:class:`TfliteBuilder` is serialisation only: tensors (shape, type, per-tensor or
per-channel qparams, constant data) and builtin operators with their options, written as a
one-subgraph model that LiteRT loads. The exporter (:mod:`hwsim.frontends.tflite_export`)
and the tests build models with it; it computes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwsim.errors import ConfigError

#: numpy dtype name -> tflite TensorType name.
TENSOR_TYPES = {"float32": "FLOAT32", "int8": "INT8", "uint8": "UINT8", "int16": "INT16",
                "int32": "INT32", "int64": "INT64"}

#: Builtin operator -> (options table, BuiltinOptions union member) of the ops hwsim writes.
OPTIONS: Mapping[str, str | None] = {
    "CONV_2D": "Conv2DOptions",
    "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
    "FULLY_CONNECTED": "FullyConnectedOptions",
    "ADD": "AddOptions",
    "MUL": "MulOptions",
    "AVERAGE_POOL_2D": "Pool2DOptions",
    "MAX_POOL_2D": "Pool2DOptions",
    "MEAN": "ReducerOptions",
    "RESHAPE": "ReshapeOptions",
    "CONCATENATION": "ConcatenationOptions",
    "PAD": "PadOptions",
    "QUANTIZE": "QuantizeOptions",
    "DEQUANTIZE": "DequantizeOptions",
    "RELU": None,
    "RELU6": None,
    "LOGISTIC": None,
    "TANH": None,
}


@dataclass
class _Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: np.ndarray | None
    zero_point: np.ndarray | None
    quantized_dimension: int
    data: bytes | None


@dataclass
class _Op:
    op: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)


class TfliteBuilder:
    """Collects tensors and operators; :meth:`finish` returns the model bytes.

    Options are given by their schema field names in CamelCase, e.g.
    ``{"Padding": "SAME", "StrideW": 1, "FusedActivationFunction": "RELU"}``; enum values
    may be names (``Padding``, ``ActivationFunctionType``) or ints; ``NewShape`` is a list.
    """

    def __init__(self) -> None:
        self.tensors: list[_Tensor] = []
        self.ops: list[_Op] = []

    def tensor(self, name: str, shape: Sequence[int], dtype: str, *,
               scale: float | Sequence[float] | np.ndarray | None = None,
               zero_point: int | Sequence[int] | np.ndarray | None = None,
               quantized_dimension: int = 0, data: np.ndarray | None = None) -> int:
        """Add a tensor; returns its index. ``data``: constant contents (cast to ``dtype``)."""
        if dtype not in TENSOR_TYPES:
            raise ConfigError(f"tensor {name!r}: dtype {dtype!r}; expected one of "
                              f"{sorted(TENSOR_TYPES)}")
        raw = None
        if data is not None:
            arr = np.ascontiguousarray(np.asarray(data).astype(dtype).reshape(tuple(shape)))
            raw = arr.tobytes()
        s = None if scale is None else np.asarray(scale, dtype=np.float32).reshape(-1)
        z = None
        if scale is not None:
            z = np.broadcast_to(np.asarray(0 if zero_point is None else zero_point,
                                           dtype=np.int64).reshape(-1), s.shape).copy()
        self.tensors.append(_Tensor(name, tuple(int(d) for d in shape), dtype, s, z,
                                    int(quantized_dimension), raw))
        return len(self.tensors) - 1

    def op(self, op: str, inputs: Sequence[int], outputs: Sequence[int],
           **options: Any) -> None:
        """Add a builtin operator (a key of :data:`OPTIONS`)."""
        if op not in OPTIONS:
            raise ConfigError(f"operator {op!r}: the writer knows {sorted(OPTIONS)}")
        self.ops.append(_Op(op, tuple(int(i) for i in inputs), tuple(int(i) for i in outputs),
                            dict(options)))

    def finish(self, inputs: Sequence[int], outputs: Sequence[int],
               description: str = "hwsim") -> bytes:
        """Serialise the model (version 3, one subgraph)."""
        import flatbuffers
        import tflite

        b = flatbuffers.Builder(1024)

        def ivec(start: Any, values: Sequence[int]) -> int:
            start(b, len(values))
            for v in reversed(values):
                b.PrependInt32(int(v))
            return b.EndVector()

        # buffers: 0 is the empty sentinel, then one per constant tensor
        buf_index: list[int] = []
        datas: list[bytes] = []
        for t in self.tensors:
            if t.data is None:
                buf_index.append(0)
            else:
                datas.append(t.data)
                buf_index.append(len(datas))
        buffer_offsets = []
        for d in [b""] + datas:
            if d:
                b.StartVector(1, len(d), 16)
                b.head = b.head - len(d)
                b.Bytes[b.head:b.head + len(d)] = d
                vec = b.EndVector()
            tflite.BufferStart(b)
            if d:
                tflite.BufferAddData(b, vec)
            buffer_offsets.append(tflite.BufferEnd(b))

        tensor_offsets = []
        for t, bi in zip(self.tensors, buf_index, strict=True):
            name = b.CreateString(t.name)
            shape = ivec(tflite.TensorStartShapeVector, t.shape)
            q = None
            if t.scale is not None:
                tflite.QuantizationParametersStartScaleVector(b, t.scale.size)
                for v in reversed(t.scale):
                    b.PrependFloat32(float(v))
                sv = b.EndVector()
                tflite.QuantizationParametersStartZeroPointVector(b, t.zero_point.size)
                for v in reversed(t.zero_point):
                    b.PrependInt64(int(v))
                zv = b.EndVector()
                tflite.QuantizationParametersStart(b)
                tflite.QuantizationParametersAddScale(b, sv)
                tflite.QuantizationParametersAddZeroPoint(b, zv)
                tflite.QuantizationParametersAddQuantizedDimension(b, t.quantized_dimension)
                q = tflite.QuantizationParametersEnd(b)
            tflite.TensorStart(b)
            tflite.TensorAddShape(b, shape)
            tflite.TensorAddType(b, getattr(tflite.TensorType, TENSOR_TYPES[t.dtype]))
            tflite.TensorAddBuffer(b, bi)
            tflite.TensorAddName(b, name)
            if q is not None:
                tflite.TensorAddQuantization(b, q)
            tensor_offsets.append(tflite.TensorEnd(b))

        codes = list(dict.fromkeys(o.op for o in self.ops))
        code_offsets = []
        for c in codes:
            v = getattr(tflite.BuiltinOperator, c)
            tflite.OperatorCodeStart(b)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(v, 127))
            tflite.OperatorCodeAddBuiltinCode(b, v)
            tflite.OperatorCodeAddVersion(b, 1)
            code_offsets.append(tflite.OperatorCodeEnd(b))

        op_offsets = []
        for o in self.ops:
            opt_name = OPTIONS[o.op]
            opt = self._options(b, opt_name, o) if opt_name else None
            ins = ivec(tflite.OperatorStartInputsVector, o.inputs)
            outs = ivec(tflite.OperatorStartOutputsVector, o.outputs)
            tflite.OperatorStart(b)
            tflite.OperatorAddOpcodeIndex(b, codes.index(o.op))
            tflite.OperatorAddInputs(b, ins)
            tflite.OperatorAddOutputs(b, outs)
            if opt is not None:
                tflite.OperatorAddBuiltinOptionsType(b, getattr(tflite.BuiltinOptions,
                                                                opt_name))
                tflite.OperatorAddBuiltinOptions(b, opt)
            op_offsets.append(tflite.OperatorEnd(b))

        def tvec(start: Any, offs: Sequence[int]) -> int:
            start(b, len(offs))
            for off in reversed(offs):
                b.PrependUOffsetTRelative(off)
            return b.EndVector()

        sg_tensors = tvec(tflite.SubGraphStartTensorsVector, tensor_offsets)
        sg_in = ivec(tflite.SubGraphStartInputsVector, list(inputs))
        sg_out = ivec(tflite.SubGraphStartOutputsVector, list(outputs))
        sg_ops = tvec(tflite.SubGraphStartOperatorsVector, op_offsets)
        sg_name = b.CreateString("main")
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, sg_tensors)
        tflite.SubGraphAddInputs(b, sg_in)
        tflite.SubGraphAddOutputs(b, sg_out)
        tflite.SubGraphAddOperators(b, sg_ops)
        tflite.SubGraphAddName(b, sg_name)
        sg = tflite.SubGraphEnd(b)

        m_codes = tvec(tflite.ModelStartOperatorCodesVector, code_offsets)
        m_sgs = tvec(tflite.ModelStartSubgraphsVector, [sg])
        m_bufs = tvec(tflite.ModelStartBuffersVector, buffer_offsets)
        desc = b.CreateString(description)
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, m_codes)
        tflite.ModelAddSubgraphs(b, m_sgs)
        tflite.ModelAddDescription(b, desc)
        tflite.ModelAddBuffers(b, m_bufs)
        b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())

    @staticmethod
    def _options(b: Any, opt_name: str, o: _Op) -> int:
        import tflite

        vectors = {}
        for k, v in o.options.items():
            if isinstance(v, (list, tuple)):
                getattr(tflite, f"{opt_name}Start{k}Vector")(b, len(v))
                for x in reversed(v):
                    b.PrependInt32(int(x))
                vectors[k] = b.EndVector()
        getattr(tflite, f"{opt_name}Start")(b)
        for k, v in o.options.items():
            add = getattr(tflite, f"{opt_name}Add{k}", None)
            if add is None:
                raise ConfigError(f"operator {o.op}: {opt_name} has no field {k!r}")
            if k in vectors:
                v = vectors[k]
            elif isinstance(v, str):
                enum = tflite.Padding if k == "Padding" else tflite.ActivationFunctionType
                v = getattr(enum, v)
            add(b, v)
        return getattr(tflite, f"{opt_name}End")(b)
