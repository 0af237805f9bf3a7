"""hwsim.quant: number formats, quantization specs, quantize / dequantize, fp8, packing.

Contract: specs/arithmetic.md §1–§5 (formats, fp8, quantize and qparams, granularity,
int4 packing). Observers live in :mod:`hwsim.quant.observers`.
"""

from hwsim.quant.formats import (
    FP8_FORMATS,
    QUANT_DTYPES,
    FP8Format,
    IntFormat,
    fp8_format,
    int_format,
    storage_dtype,
)
from hwsim.quant.fp8 import fp8_decode, fp8_encode, fp8_values
from hwsim.quant.granularity import Granularity, PerAxis, PerBlock, PerTensor
from hwsim.quant.ops import dequantize, fake_quant, quantize, round_float
from hwsim.quant.packing import pack_int4, unpack_int4
from hwsim.quant.qparams import QParams, choose_qparams
from hwsim.quant.spec import ROUNDING_MODES, QuantSpec

__all__ = [
    "FP8_FORMATS",
    "QUANT_DTYPES",
    "ROUNDING_MODES",
    "FP8Format",
    "Granularity",
    "IntFormat",
    "PerAxis",
    "PerBlock",
    "PerTensor",
    "QParams",
    "QuantSpec",
    "choose_qparams",
    "dequantize",
    "fake_quant",
    "fp8_decode",
    "fp8_encode",
    "fp8_format",
    "fp8_values",
    "int_format",
    "pack_int4",
    "quantize",
    "round_float",
    "storage_dtype",
    "unpack_int4",
]
