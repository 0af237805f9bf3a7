"""The ONNX backend node test cases of the quantization ops, run through the importer
(specs/ir.md §8) and the golden model under ort_cpu (arithmetic §11).

Cases of QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, MatMulInteger,
ConvInteger, QLinearMatMul and QLinearConv from ``onnx.backend.test.case.node``. Each
case's first input is the data (fed as floats or as codes); every other input becomes a
constant, as in a deployed model. A case either passes bit for bit (integer outputs equal;
float outputs of DequantizeLinear equal ``f32(f32(q − z)·s)``) or is listed in
:data:`UNSUPPORTED` with the reason, and then the importer must refuse it with a
ModelError saying so. A listed case that passes fails the test (the list stays honest).
"""

from __future__ import annotations

import copy
import importlib

import numpy as np
import pytest
from onnx import TensorProto, numpy_helper

from hwsim.errors import ModelError
from hwsim.frontends.onnx_quant import load_quantized_onnx
from hwsim.reference.golden_exec import run_golden
from hwsim.verify_onnx import input_codes

OPS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger",
       "ConvInteger", "QLinearMatMul", "QLinearConv")

_INT = r"has dtype .*; the integer graph supports"
_F16 = r"has dtype float16; the integer graph reproduces float32 scales only"
#: case name -> regex of the importer's refusal (the reason it is unsupported).
UNSUPPORTED = {
    "test_quantizelinear_axis": r"activation qparams must be per tensor",
    "test_quantizelinear_blocked_asymmetric": r"activation qparams must be per tensor",
    "test_quantizelinear_blocked_symmetric": r"activation qparams must be per tensor",
    "test_dequantizelinear_axis": r"activation qparams must be per tensor",
    "test_dequantizelinear_blocked": r"activation qparams must be per tensor",
    **{f"test_{op}linear_{t}": _INT for op in ("quantize", "dequantize")
       for t in ("e4m3fn", "e5m2", "uint4", "int4", "uint2", "int2", "float4e2m1")},
    "test_dequantizelinear_e4m3fn_float16": _INT,
    "test_dequantizelinear_e4m3fn_zero_point": _INT,
    # y_scale / y_zero_point are graph outputs: run-time qparams are not integer-graph
    # tensors (a DynamicQuantizeLinear feeding MatMulInteger / ConvInteger is, §11.2.9)
    **{f"test_dynamicquantizelinear{s}": r"run-time scales and zero points are not tensors"
       for s in ("", "_max_adjusted", "_min_adjusted")},
    **{f"test_qlinearmatmul_3D_{t}_float32": r"only 2-D x @ W" for t in ("uint8", "int8")},
    **{f"test_qlinearmatmul_{d}_{t}_float16": _F16 for d in ("2D", "3D")
       for t in ("uint8", "int8")},
}


def _cases():
    import onnx.backend.test.case.node as registry

    for op in OPS:
        importlib.import_module(f"onnx.backend.test.case.node.{op.lower()}")
    return [c for c in registry._NodeTestCases if c.model.graph.node[0].op_type in OPS]


CASES = {c.name: c for c in _cases()}


def _deployed(case):
    """The case's model with every input but the first turned into an initializer."""
    model = copy.deepcopy(case.model)
    inputs, outputs = case.data_sets[0]
    graph_inputs = list(model.graph.input)
    for vi, value in list(zip(graph_inputs, inputs, strict=False))[1:]:
        if isinstance(value, TensorProto):
            t = copy.deepcopy(value)
            t.name = vi.name
        else:
            t = numpy_helper.from_array(np.asarray(value), vi.name)
        model.graph.initializer.append(t)
        model.graph.input.remove(vi)
    return model, np.asarray(inputs[0]), outputs


def test_every_case_is_covered() -> None:
    assert len(CASES) >= 40
    assert set(UNSUPPORTED) <= set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_backend_case(name: str) -> None:
    model, x, outputs = _deployed(CASES[name])
    if name in UNSUPPORTED:
        with pytest.raises(ModelError, match=UNSUPPORTED[name]):
            load_quantized_onnx(model)
        return
    im = load_quantized_onnx(model)
    qg = im.qgraph
    feed = input_codes(im, qg.inputs[0], x) if x.dtype.kind == "f" else x.astype(np.int64)
    gold = run_golden(qg, {qg.inputs[0]: feed})
    for vi, want in zip(model.graph.output, outputs, strict=True):
        want = np.asarray(want)
        codes = gold.codes[im.outputs[vi.name]]
        if want.dtype.kind == "f":
            tq = qg.tensors[im.outputs[vi.name]]
            got = ((codes - tq.zero_point).astype(np.float32) * np.float32(tq.scale))
            np.testing.assert_array_equal(got.astype(np.float32), want)
        else:
            np.testing.assert_array_equal(codes, want.astype(np.int64))
