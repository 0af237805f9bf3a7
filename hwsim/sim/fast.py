"""Fast mode: exact integer GEMM values and closed-form timing (specs/cycle_model.md §C5).

Values: the §7 accumulators ``bias[n] + Σ_k A[m, k]·W[k, n]`` come from the project's one
exact integer engine, :mod:`hwsim.exact` (specs/arithmetic.md §7.4): a blocked GEMM that is
exact by construction (float32 or float64 BLAS on K-blocks small enough that every partial
sum is an exactly representable integer), then, for the outputs whose bound
``|bias[n]| + Σ_k |A[m, k]|·|W[k, n]|`` exceeds the ``acc_bits`` range, the jitted
sequential §7 accumulator, so saturate / error / event counts follow the exact addition
order. Timing comes from the dataflow strategy's formulas; the stepped kernel is tested to
give the same cycles, valid cycles and values.

BLAS uses its default thread count; :func:`hwsim.sweep.run_sweep`'s worker processes limit
it to one thread each (parallel design points would otherwise oversubscribe the cores).
"""

from __future__ import annotations

from hwsim.exact.accumulator import exact_gemm_acc
from hwsim.exact.matmul import exact_matmul

__all__ = ["exact_matmul", "exact_gemm_acc"]
