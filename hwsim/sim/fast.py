"""Fast mode: exact integer GEMM values and closed-form timing (specs/cycle_model.md §C5).

Values: the §7 accumulators ``bias[n] + Σ_k A[m, k]·W[k, n]`` computed by a blocked GEMM
that is exact by construction (float32 or float64 BLAS on K-blocks small enough that every
partial sum is an exactly representable integer, block results summed in int64). Where a
partial sum might leave the ``acc_bits`` range — decided per output by the bound
``|bias[n]| + min(‖A[m]‖₁·max|W[:, n]|, max|A[m]|·‖W[:, n]‖₁)`` — those outputs are
recomputed by the jitted sequential §7 accumulator, so saturate / error / event counts
follow the exact addition order. Timing comes from the dataflow strategy's formulas; the
stepped kernel is tested to give the same cycles, valid cycles and values.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from threadpoolctl import ThreadpoolController

from hwsim.arith.jit import POLICY_CODES
from hwsim.sim.kernels import sequential_accumulate

__all__ = ["exact_matmul", "exact_gemm_acc"]

_F32_EXACT = 1 << 24
_F64_EXACT = 1 << 53

_BLAS_CONTROLLER = None


def _single_thread_blas():
    """Context limiting BLAS to one thread (threadpoolctl).

    Fast mode is meant to run many layers / design points in parallel processes; nested
    BLAS threads then oversubscribe the cores, and OpenBLAS's spinning threads become an
    order of magnitude slower than one thread on a loaded machine."""
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


def exact_matmul(a: npt.NDArray[np.integer], w: npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
    """``a @ w`` for integer ``a[M, K]``, ``w[K, N]``, exact in int64.

    Uses single-threaded float32 BLAS on K-blocks of size ``B`` with
    ``max|a|·max|w|·B ≤ 2^24`` (so every partial sum is exact in float32 whatever order BLAS
    adds in), float64 when the operands are too wide for that, and int64 numpy otherwise;
    block sums are added in int64.
    """
    m, k = a.shape
    n = w.shape[1]
    amax = max(abs(int(a.min())), abs(int(a.max()))) if a.size else 0
    wmax = max(abs(int(w.min())), abs(int(w.max()))) if w.size else 0
    prod = max(amax * wmax, 1)
    for limit, dtype in ((_F32_EXACT, np.float32), (_F64_EXACT, np.float64)):
        block = limit // prod
        if block >= min(k, 64):
            af = a.astype(dtype)
            wf = w.astype(dtype)
            with _single_thread_blas():
                if block >= k:
                    return (af @ wf).astype(np.int64)
                out = np.zeros((m, n), dtype=np.int64)
                for k0 in range(0, k, block):
                    out += (af[:, k0:k0 + block] @ wf[k0:k0 + block]).astype(np.int64)
                return out
    return a.astype(np.int64) @ w.astype(np.int64)


def exact_gemm_acc(
    a: npt.NDArray[np.integer],
    w: npt.NDArray[np.integer],
    bias: npt.NDArray[np.integer],
    acc_bits: int,
    policy: str,
) -> tuple[npt.NDArray[np.int64], int, tuple[int, int, int] | None]:
    """§7 accumulators of ``bias + a @ w`` in a signed ``acc_bits`` register.

    Returns ``(acc int64 [M, N], overflow_events, first_overflow)``; ``first_overflow`` is the
    ``(m, n, k)`` of the first overflowing addition in (m, n, k) row-major order, or None.
    Under policy ``"error"`` the returned ``acc`` holds exact sums (the caller raises).
    The bias must already fit ``acc_bits`` (checked by the caller).
    """
    hi = (1 << (acc_bits - 1)) - 1
    b64 = np.asarray(bias, dtype=np.int64)
    acc = exact_matmul(a, w)
    acc += b64[None, :]
    m, k = a.shape
    n = w.shape[1]
    if m == 0 or n == 0 or k == 0:
        return acc, 0, None
    amax = max(abs(int(a.min())), abs(int(a.max())))
    wmax = max(abs(int(w.min())), abs(int(w.max())))
    if int(np.abs(b64).max()) + k * amax * wmax <= hi:
        return acc, 0, None  # no partial sum of any output can leave the range
    a_abs = np.abs(a.astype(np.int64))
    w_abs = np.abs(w.astype(np.int64))
    bound = np.abs(b64)[None, :] + np.minimum(
        a_abs.sum(axis=1)[:, None] * w_abs.max(axis=0)[None, :],
        a_abs.max(axis=1)[:, None] * w_abs.sum(axis=0)[None, :],
    )
    ms, ns = np.nonzero(bound > hi)
    if ms.size == 0:
        return acc, 0, None
    seq = np.empty(ms.size, dtype=np.int64)
    events = np.empty(ms.size, dtype=np.int64)
    first = sequential_accumulate(
        np.ascontiguousarray(a, dtype=np.int64), np.ascontiguousarray(w, dtype=np.int64), b64,
        ms.astype(np.int64), ns.astype(np.int64), acc_bits, POLICY_CODES[policy], seq, events,
    )
    acc[ms, ns] = seq
    first_loc = None
    if first >= 0:
        first_loc = (int(first // (n * k)), int(first // k % n), int(first % k))
    return acc, int(events.sum()), first_loc
