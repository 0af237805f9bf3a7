"""The integer arithmetic contract of hwsim (specs/arithmetic.md §6–§9).

Pure functions on exact int64 numpy arrays: rounding right shifts (§6), fixed-width wrap /
saturate and the MAC accumulator (§7), TFLite/gemmlowp and dyadic multipliers and the
configurable requantization block (§8), and the effective scales the float64 fake-quant
reference multiplies by (§9). :mod:`hwsim.arith.jit` holds the Numba scalar twins.
"""

from hwsim.arith.accumulator import (
    OVERFLOW_POLICIES,
    AccumulatorOverflowError,
    accumulate,
    int_range,
    saturate_to_bits,
    wrap_to_bits,
)
from hwsim.arith.multiplier import (
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_single_round,
    quantize_multiplier,
    quantize_multiplier_dyadic,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)
from hwsim.arith.requantize import (
    ACTIVATIONS,
    OUTPUT_OVERFLOWS,
    REQUANT_MODES,
    RequantConfig,
    RequantParams,
    activation_range,
    effective_scale,
    make_requant_params,
    requantize,
)
from hwsim.arith.rounding import ROUNDING_MODES, rounding_shift_right

__all__ = [
    "ACTIVATIONS",
    "OUTPUT_OVERFLOWS",
    "OVERFLOW_POLICIES",
    "REQUANT_MODES",
    "ROUNDING_MODES",
    "AccumulatorOverflowError",
    "RequantConfig",
    "RequantParams",
    "accumulate",
    "activation_range",
    "effective_scale",
    "int_range",
    "make_requant_params",
    "multiply_by_quantized_multiplier",
    "multiply_by_quantized_multiplier_single_round",
    "quantize_multiplier",
    "quantize_multiplier_dyadic",
    "requantize",
    "rounding_divide_by_pot",
    "rounding_shift_right",
    "saturate_to_bits",
    "saturating_rounding_doubling_high_mul",
    "wrap_to_bits",
]
