"""LiteRT reference-kernel ops of the integer graph (specs/arithmetic.md §11.3).

Kernels ``kernel(node, codes, tensors) -> int64 codes`` for the integer ops whose
arithmetic only LiteRT's reference kernels have; :data:`LITERT_KERNELS` is merged into
:data:`hwsim.reference.engine_ops.ENGINE_KERNELS`, the table the golden executor's
engine-op hook consults.

- ``litert_avgpool`` (§11.3.4, ``reference/integer_ops/pooling.h`` ``AveragePool``):
  ``round_half_away(Σ q / count)`` over the window's valid positions (padding excluded),
  on the raw codes (input and output share qparams), then the fused-activation clamp.
- ``litert_mul`` (§11.3.6, ``reference/integer_ops/mul.h``): ``z_out +
  MultiplyByQuantizedMultiplier((q_a − z_a)·(q_b − z_b))``, clamp; requant ``out``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from hwsim.arith import requantize
from hwsim.compiler.requant import fused_act_bounds
from hwsim.reference import golden_ops as ops


def litert_avgpool(q: np.ndarray, *, kernel: tuple[int, int], strides: tuple[int, int],
                   pads: tuple[int, int, int, int], act_min: int, act_max: int) -> np.ndarray:
    """§11.3.4: average of the raw codes of each window's valid positions, the integer
    division rounded half away from zero (``(acc ± count/2) / count`` in C), clamped."""
    y = ops.avgpool(q, zero_point=0, kernel=kernel, strides=strides, pads=pads,
                    count_include_pad=False)
    return np.clip(y, act_min, act_max)


def litert_quantize(x: np.ndarray, scale: float, zero_point: int, dtype: str) -> np.ndarray:
    """§11.3.7 LiteRT QUANTIZE of floats (``reference_ops::AffineQuantize``):
    ``clamp(round_half_away(float32(x) / float32(scale)) + z)``, the division in float32;
    int64 codes."""
    from hwsim.arith.requantize import round_half_away_f64
    from hwsim.compiler.qgraph import act_range

    f = np.divide(np.asarray(x, dtype=np.float32), np.float32(scale), dtype=np.float32)
    lo, hi = act_range(dtype)
    return np.clip(round_half_away_f64(f.astype(np.float64)) + int(zero_point), lo, hi)


def _run_avgpool(node, codes, tensors):  # noqa: ANN001, ANN202 - golden run_node protocol
    a = node.attrs
    to = tensors[node.output]
    lo, hi = fused_act_bounds(*(float(v) for v in a["act_range"]), to)
    return litert_avgpool(codes[node.inputs[0]], kernel=tuple(a["kernel_shape"]),
                          strides=tuple(a["strides"]), pads=tuple(a["pads"]), act_min=lo,
                          act_max=hi)


def _run_mul(node, codes, tensors):  # noqa: ANN001, ANN202
    a, b = node.inputs
    prod = ((np.asarray(codes[a], np.int64) - tensors[a].zero_point)
            * (np.asarray(codes[b], np.int64) - tensors[b].zero_point))
    return requantize(prod, node.requant["out"])


#: Integer-graph op -> golden kernel (merged into ENGINE_KERNELS).
LITERT_KERNELS: Mapping[str, Callable[..., np.ndarray]] = {
    "litert_avgpool": _run_avgpool,
    "litert_mul": _run_mul,
}
