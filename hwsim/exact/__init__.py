"""The exact integer GEMM / convolution engine (specs/arithmetic.md §7.4).

One engine for every place that needs exact integer products of quantized tensors: the
golden model's fast path (:mod:`hwsim.reference.golden_ops`), the cycle model's fast mode
(:mod:`hwsim.sim.fast`) and the vector checker.

* :mod:`hwsim.exact.matmul` — exact ``L @ R`` on float32 / float64 BLAS over K-blocks whose
  partial sums stay exactly representable;
* :mod:`hwsim.exact.im2col` — convolution patches as one contiguous matrix;
* :mod:`hwsim.exact.accumulator` — §7 accumulators with the overflow policies: exact sums,
  then the step-by-step Numba path only for the outputs whose bound says they could
  overflow.
"""

from hwsim.exact.accumulator import conv2d_acc, exact_gemm_acc, gemm_acc
from hwsim.exact.im2col import conv_columns, pad_input
from hwsim.exact.matmul import (
    exact_matmul,
    parallel_map,
    parallel_slices,
    parallel_split,
    plan_product,
    threads,
)

__all__ = ["conv2d_acc", "conv_columns", "exact_gemm_acc", "exact_matmul", "gemm_acc",
           "pad_input", "parallel_map", "parallel_slices",
           "parallel_split", "plan_product", "threads"]
