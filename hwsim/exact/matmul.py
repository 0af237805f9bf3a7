"""Exact integer matrix products on floating-point BLAS (specs/arithmetic.md §7.4).

An integer product ``L @ R`` is computed in float32 (or float64) BLAS on blocks of the
reduction axis short enough that no partial sum can leave the range where every integer is
exactly representable, whatever order, blocking, vectorisation or FMA BLAS uses:

    block · max|L| · max|R| ≤ 2^24 (float32)        or  ≤ 2^53 (float64)

Every partial sum over a subset of a block is an integer bounded by that product (§7.4), so
each block result is the exact integer; block results are added in float64 (exact while
``K · max|L| · max|R| ≤ 2^53``) or else in int64. The plan (:func:`plan_product`) takes
float32 when its blocks hold at least :data:`MIN_F32_BLOCK` terms (or all of ``K``) — int8 /
uint8 × int8 give blocks of 514..1024 — and float64 otherwise (int16 activations, fp8
weights carried as ``v·2^9``).

Threads: large products are split along their widest output axis into one slice per core
(:func:`set_threads`, default ``os.cpu_count()``), each computed by single-threaded BLAS in a
thread of a shared pool (numpy releases the GIL). Measured on 2 cores: as fast as OpenBLAS's
own two threads on a quiet machine, and about twice as fast when other processes load the
cores (OpenBLAS's spinning threads then stall each other). Sweep workers, which already
run design points in parallel processes, call ``set_threads(1)``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hwsim.errors import HwsimError

__all__ = ["F32_EXACT", "F64_EXACT", "MIN_F32_BLOCK", "ProductPlan", "plan_product",
           "max_abs", "blocked_matmul", "exact_matmul", "set_threads", "parallel_matmul",
           "parallel_map", "parallel_slices", "parallel_split", "threads"]

#: Every integer of magnitude ≤ 2^24 is a float32; ≤ 2^53 a float64.
F32_EXACT = 1 << 24
F64_EXACT = 1 << 53
#: Smallest float32 K-block worth taking over one float64 product (measured: a float64 GEMM
#: costs about two float32 ones here; a 256-deep block keeps float32 BLAS near full speed).
MIN_F32_BLOCK = 256
#: Products with fewer multiply-adds than this run in the calling thread.
PARALLEL_MIN_MACS = 1 << 22

_THREADS = os.cpu_count() or 1
_POOL: ThreadPoolExecutor | None = None
_BLAS = None
_LOCAL = threading.local()


def set_threads(n: int) -> None:
    """Number of threads :func:`parallel_matmul` / :func:`parallel_map` use (≥ 1)."""
    global _THREADS
    _THREADS = max(1, int(n))


def threads() -> int:
    """Threads available to the calling code: 1 inside a :func:`parallel_map` task."""
    return 1 if getattr(_LOCAL, "inside", False) else _THREADS


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(os.cpu_count() or 1, _THREADS))
    return _POOL


def parallel_map(fn: Callable, items: Iterable) -> list:
    """``[fn(i) for i in items]`` on the thread pool (numpy releases the GIL in array code),
    with BLAS limited to one thread; results in order, the first failure re-raised. Runs in
    the calling thread when one thread is configured, for one item, or inside a task."""
    items = list(items)
    if threads() == 1 or len(items) < 2:
        return [fn(i) for i in items]

    def task(i):
        _LOCAL.inside = True
        try:
            return fn(i)
        finally:
            _LOCAL.inside = False

    with _one_blas_thread():
        futures = [_pool().submit(task, i) for i in items]
        return [f.result() for f in futures]


def _one_blas_thread():
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


def parallel_split(fn: Callable[[npt.NDArray], npt.NDArray], arr: npt.NDArray,
                   dtype: npt.DTypeLike) -> npt.NDArray:
    """``fn(arr)`` for a ``fn`` that works element by element along axes 0 and 2 (e.g.
    requantization with channels on axis 1): ``arr`` is cut along axis 0 (or, with fewer
    rows than threads, axis 2) and the parts run in parallel into one ``dtype`` result."""
    return parallel_slices(lambda sl: fn(arr[sl]), arr.shape, dtype)


def parallel_slices(fn: Callable[[tuple[slice, ...]], npt.NDArray], shape: tuple[int, ...],
                    dtype: npt.DTypeLike) -> npt.NDArray:
    """An array of ``shape`` whose part at index ``sl`` is ``fn(sl)``, the parts (cuts along
    axis 0, or axis 2 with fewer rows than threads) computed in parallel threads; one call
    ``fn((slice(None),))`` when the array is small or one thread is configured."""
    n_threads = threads()
    ndim = len(shape)
    axis = 0 if ndim and shape[0] >= n_threads else 2
    size = int(np.prod(shape)) if ndim else 1
    if n_threads == 1 or size < 1 << 16 or ndim <= axis or shape[axis] < 2:
        return np.asarray(fn((slice(None),)), dtype=dtype)
    out = np.empty(shape, dtype=dtype)
    edges = np.linspace(0, shape[axis], n_threads + 1).astype(int)

    def part(i: int) -> None:
        sl = (slice(None),) * axis + (slice(int(edges[i]), int(edges[i + 1])),)
        out[sl] = fn(sl)

    parallel_map(part, range(n_threads))
    return out


def parallel_matmul(left: npt.NDArray, right: npt.NDArray) -> npt.NDArray:
    """``numpy.matmul(left, right)`` (2-D, or stacked 3-D with a common leading axis), split
    along the larger of the output's two matrix axes into one slice per thread, each slice
    computed by single-threaded BLAS."""
    rows, k = left.shape[-2:]
    cols = right.shape[-1]
    n_threads = threads()
    if getattr(_LOCAL, "inside", False):  # BLAS is already limited by parallel_map
        return np.matmul(left, right)
    with _one_blas_thread():
        if n_threads == 1 or rows * k * cols * (left.size // (rows * k) or 1) < PARALLEL_MIN_MACS:
            return np.matmul(left, right)
        shape = np.broadcast_shapes(left.shape[:-2], right.shape[:-2]) + (rows, cols)
        dtype = np.result_type(left, right)
        out = np.empty(shape, dtype=dtype)
        axis_len = cols if cols >= rows else rows
        edges = np.linspace(0, axis_len, n_threads + 1).astype(int)

        def part(i: int) -> None:
            s = slice(int(edges[i]), int(edges[i + 1]))
            if cols >= rows:
                out[..., s] = np.matmul(left, right[..., s])
            else:
                out[..., s, :] = np.matmul(left[..., s, :], right)

        for f in [_pool().submit(part, i) for i in range(n_threads)]:
            f.result()
        return out


@dataclass(frozen=True)
class ProductPlan:
    """How to compute an exact product with reduction length ``k``: operands cast to
    ``dtype`` (float32 / float64, or int64 when even float64 blocks of one term are not
    exact), reduction split in blocks of ``block`` terms, block results summed in float64
    when ``sum_f64`` (the whole sum is below 2^53) else in int64."""

    dtype: type
    block: int
    sum_f64: bool


def max_abs(a: npt.NDArray) -> int:
    """max |a| as a Python int (0 for an empty array)."""
    if a.size == 0:
        return 0
    return max(abs(int(a.min())), abs(int(a.max())))


def plan_product(lmax: int, rmax: int, k: int) -> ProductPlan:
    """§7.4 plan for a reduction of ``k`` products with ``|l| ≤ lmax``, ``|r| ≤ rmax``."""
    prod = max(int(lmax) * int(rmax), 1)
    k = max(int(k), 1)
    sum_f64 = k * prod <= F64_EXACT
    b32 = F32_EXACT // prod
    if b32 >= min(k, MIN_F32_BLOCK):
        return ProductPlan(np.float32, min(b32, k), sum_f64)
    b64 = F64_EXACT // prod
    if b64 >= 1:
        return ProductPlan(np.float64, min(b64, k), sum_f64)
    return ProductPlan(np.int64, k, False)


def blocked_matmul(left: npt.NDArray, right: npt.NDArray, plan: ProductPlan) -> npt.NDArray:
    """``left @ right`` (numpy matmul semantics, so stacked operands work) summed over
    K-blocks of ``plan.block`` (the last axis of ``left``, the second-to-last of ``right``).

    The operands must already hold integers of ``plan.dtype`` satisfying the plan's bound.
    Returns the exact integer result as float32 (one block), float64 or int64."""
    k = left.shape[-1]
    if plan.dtype is np.int64:
        if k * max_abs(left) * max_abs(right) >= 1 << 63:
            raise HwsimError("exact product: |sum| could reach 2^63; operands too wide")
        return np.matmul(left.astype(np.int64), right.astype(np.int64))
    if plan.block >= k:
        return parallel_matmul(left, right)
    total = None
    for k0 in range(0, k, plan.block):
        part = parallel_matmul(left[..., k0:k0 + plan.block],
                               right[..., k0:k0 + plan.block, :])
        if total is None:
            total = part.astype(np.float64 if plan.sum_f64 else np.int64)
        elif plan.sum_f64:
            total += part
        else:
            total += part.astype(np.int64)
    return total


def exact_matmul(a: npt.NDArray[np.integer], w: npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
    """``a @ w`` for integer ``a[M, K]``, ``w[K, N]``, exact, as int64 (§7.4)."""
    a = np.asarray(a)
    w = np.asarray(w)
    plan = plan_product(max_abs(a), max_abs(w), a.shape[1])
    return blocked_matmul(a.astype(plan.dtype, copy=False), w.astype(plan.dtype, copy=False),
                          plan).astype(np.int64)
