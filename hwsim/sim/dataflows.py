"""Dataflow strategies: how a GEMM maps onto the rows, columns and time of the array.

One :class:`Dataflow` object per dataflow of specs/cycle_model.md §C2 (``ws``, ``is``,
``os``). Each says which GEMM dimensions are spatial and which is streamed, enumerates the
folds (§C2), gives the closed-form fold length, layer cycles and per-output valid cycles
(§C3–§C5), the per-fold SRAM accesses (§C6), and arranges the operands for the single
stepped kernel (:func:`hwsim.sim.kernels.systolic_run`). Nothing here simulates; the
stepped kernel is checked against these formulas by the tests.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hwsim.errors import ConfigError

__all__ = ["GemmShape", "FoldTable", "KernelOperands", "Dataflow", "get_dataflow", "DATAFLOW_NAMES"]


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class GemmShape:
    """``Y[M, N] = bias[N] + A[M, K] @ W[K, N]`` (§C1); every dimension ≥ 1."""

    m: int
    k: int
    n: int

    def __post_init__(self) -> None:
        for name in ("m", "k", "n"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"GEMM dimension {name}: expected an integer >= 1, got {value!r}")

    @property
    def macs(self) -> int:
        return int(self.m) * int(self.k) * int(self.n)


@dataclass(frozen=True)
class FoldTable:
    """Per-fold facts in fold order (§C2), as parallel int64 arrays of length ``F``.

    ``rows_used``/``cols_used``: PEs rows/columns holding real data; ``first_k``/``last_k``:
    whether the fold is the first / last of its ``k`` sequence (always True for ``os``);
    ``input_reads``, ``weight_reads``, ``output_reads``, ``output_writes``: SRAM element
    accesses of the fold (§C6, bias reads included in ``weight_reads``); ``final_outputs``:
    outputs that leave the requantization unit in this fold.
    """

    rows_used: npt.NDArray[np.int64]
    cols_used: npt.NDArray[np.int64]
    first_k: npt.NDArray[np.bool_]
    last_k: npt.NDArray[np.bool_]
    input_reads: npt.NDArray[np.int64]
    weight_reads: npt.NDArray[np.int64]
    weight_elems: npt.NDArray[np.int64]
    bias_elems: npt.NDArray[np.int64]
    output_reads: npt.NDArray[np.int64]
    output_writes: npt.NDArray[np.int64]
    final_outputs: npt.NDArray[np.int64]

    @property
    def count(self) -> int:
        return int(self.rows_used.shape[0])


@dataclass(frozen=True)
class KernelOperands:
    """Operands arranged for :func:`hwsim.sim.kernels.systolic_run` (see its contract)."""

    os_mode: bool
    swap_mn: bool
    chan_by_col: bool
    x: npt.NDArray[np.int32]
    s: npt.NDArray[np.int32]
    acc_init: npt.NDArray[np.int64]


def _i32(arr: npt.NDArray[np.integer]) -> npt.NDArray[np.int32]:
    """C-contiguous int32 copy (array operands have at most 16 bits)."""
    return np.ascontiguousarray(arr, dtype=np.int32)


def _used(total: int, tile: int) -> npt.NDArray[np.int64]:
    """Used extent of each of the ``ceil(total/tile)`` tiles of a dimension."""
    count = _ceil_div(total, tile)
    used = np.full(count, tile, dtype=np.int64)
    used[-1] = total - (count - 1) * tile
    return used


class Dataflow(ABC):
    """Strategy interface (§C2). Subclasses fix the mapping; the formulas live here.

    ``spatial_rows``, ``spatial_cols``, ``temporal`` name the GEMM dimension (``"m"``,
    ``"k"``, ``"n"``) on the array rows, columns and in time.
    """

    name: str = ""
    spatial_rows: str = ""
    spatial_cols: str = ""
    temporal: str = ""

    def _dims(self, shape: GemmShape) -> tuple[int, int, int]:
        return (
            int(getattr(shape, self.spatial_rows)),
            int(getattr(shape, self.spatial_cols)),
            int(getattr(shape, self.temporal)),
        )

    def fold_counts(self, shape: GemmShape, rows: int, cols: int) -> tuple[int, int]:
        """(column tiles, row tiles); folds = their product, column tile outer (§C2)."""
        sr, sc, _ = self._dims(shape)
        return _ceil_div(sc, cols), _ceil_div(sr, rows)

    def num_folds(self, shape: GemmShape, rows: int, cols: int) -> int:
        a, b = self.fold_counts(shape, rows, cols)
        return a * b

    def fold_length(self, shape: GemmShape, rows: int, cols: int) -> int:
        """Cycles of one fold: ``2R + C + T − 2`` (§C3)."""
        _, _, t = self._dims(shape)
        return 2 * rows + cols + t - 2

    def array_cycles(self, shape: GemmShape, rows: int, cols: int, latency: int) -> int:
        """§C5: ``F · (2R + C + T − 2) + L``."""
        return self.num_folds(shape, rows, cols) * self.fold_length(shape, rows, cols) + latency

    def compute_cycles(self, shape: GemmShape, rows: int, cols: int) -> int:
        """§C5: ``F · T``, cycles in which the streamed operand enters row 0."""
        _, _, t = self._dims(shape)
        return self.num_folds(shape, rows, cols) * t

    @abstractmethod
    def valid_cycles(
        self, shape: GemmShape, rows: int, cols: int, latency: int
    ) -> npt.NDArray[np.int64]:
        """Cycle at which each output ``Y[m, n]`` becomes valid (§C4), int64 ``[M, N]``."""

    @abstractmethod
    def fold_table(self, shape: GemmShape, rows: int, cols: int) -> FoldTable:
        """Per-fold used extents and SRAM accesses (§C6)."""

    @abstractmethod
    def kernel_operands(
        self, a: npt.NDArray[np.integer], w: npt.NDArray[np.integer],
        bias: npt.NDArray[np.int64],
    ) -> KernelOperands:
        """Arrange ``A[M, K]``, ``W[K, N]`` (codes of at most 16 bits) and ``bias[N]`` for the
        stepped kernel."""

    def kernel_result(self, arr: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Map a kernel result to ``[M, N]`` (the kernel already writes ``[M, N]``)."""
        return arr


class _StationaryOperand(Dataflow):
    """ws / is: a stationary operand tile, partial sums flowing down (§C3 first part)."""

    def _fold_flags(self, shape: GemmShape, rows: int, cols: int):
        sr, sc, t = self._dims(shape)
        rows_used_k = _used(sr, rows)
        cols_used_t = _used(sc, cols)
        n_c, n_r = len(cols_used_t), len(rows_used_k)
        ru = np.tile(rows_used_k, n_c)
        cu = np.repeat(cols_used_t, n_r)
        ki = np.tile(np.arange(n_r), n_c)
        return ru, cu, ki == 0, ki == n_r - 1, t

    def valid_cycles(self, shape, rows, cols, latency):
        _, n_r = self.fold_counts(shape, rows, cols)
        lf = self.fold_length(shape, rows, cols)
        sc = int(getattr(shape, self.spatial_cols))
        t_len = int(getattr(shape, self.temporal))
        d = np.arange(sc, dtype=np.int64)
        fold = (d // cols) * n_r + (n_r - 1)
        c = d % cols
        t = np.arange(t_len, dtype=np.int64)
        # v = t0 + R (preload) + t + R - 1 + c + 1 + L
        base = fold * lf + 2 * rows + c + latency
        if self.temporal == "m":  # ws: t = m, d = n
            return base[None, :] + t[:, None]
        return base[:, None] + t[None, :]  # is: d = m, t = n


class WeightStationary(_StationaryOperand):
    name = "ws"
    spatial_rows, spatial_cols, temporal = "k", "n", "m"

    def fold_table(self, shape, rows, cols):
        ru, cu, first, last, t = self._fold_flags(shape, rows, cols)
        return FoldTable(
            rows_used=ru, cols_used=cu, first_k=first, last_k=last,
            input_reads=t * ru,
            weight_reads=ru * cu + np.where(first, cu, 0),
            weight_elems=ru * cu,
            bias_elems=np.where(first, cu, 0),
            output_reads=np.where(first, 0, t * cu),
            output_writes=t * cu,
            final_outputs=np.where(last, t * cu, 0),
        )

    def kernel_operands(self, a, w, bias):
        acc = np.ascontiguousarray(np.broadcast_to(bias[None, :], (a.shape[0], w.shape[1])))
        return KernelOperands(False, False, True, _i32(a.T), _i32(w), acc.astype(np.int64))


class InputStationary(_StationaryOperand):
    name = "is"
    spatial_rows, spatial_cols, temporal = "k", "m", "n"

    def fold_table(self, shape, rows, cols):
        ru, cu, first, last, t = self._fold_flags(shape, rows, cols)
        return FoldTable(
            rows_used=ru, cols_used=cu, first_k=first, last_k=last,
            input_reads=ru * cu,
            weight_reads=t * ru + np.where(first, t, 0),
            weight_elems=t * ru,
            bias_elems=np.where(first, t, 0),
            output_reads=np.where(first, 0, t * cu),
            output_writes=t * cu,
            final_outputs=np.where(last, t * cu, 0),
        )

    def kernel_operands(self, a, w, bias):
        acc = np.ascontiguousarray(np.broadcast_to(bias[None, :], (a.shape[0], w.shape[1])))
        return KernelOperands(False, True, False, _i32(w), _i32(a.T), acc.astype(np.int64))


class OutputStationary(Dataflow):
    name = "os"
    spatial_rows, spatial_cols, temporal = "m", "n", "k"

    def valid_cycles(self, shape, rows, cols, latency):
        n_m = _ceil_div(shape.m, rows)
        lf = self.fold_length(shape, rows, cols)
        m = np.arange(shape.m, dtype=np.int64)
        n = np.arange(shape.n, dtype=np.int64)
        fold = (n // cols)[None, :] * n_m + (m // rows)[:, None]
        r = (m % rows)[:, None]
        # drain starts at t0 + K + R + C - 2; row r leaves at + R - 1 - r; valid one later + L
        return fold * lf + shape.k + 2 * rows + cols - 2 - r + latency

    def fold_table(self, shape, rows, cols):
        mu = _used(shape.m, rows)
        nu = _used(shape.n, cols)
        ru = np.tile(mu, len(nu))
        cu = np.repeat(nu, len(mu))
        ones = np.ones(ru.shape, dtype=bool)
        k = shape.k
        return FoldTable(
            rows_used=ru, cols_used=cu, first_k=ones, last_k=ones,
            input_reads=ru * k,
            weight_reads=k * cu + cu,
            weight_elems=k * cu,
            bias_elems=cu,
            output_reads=np.zeros_like(ru),
            output_writes=ru * cu,
            final_outputs=ru * cu,
        )

    def kernel_operands(self, a, w, bias):
        acc = np.ascontiguousarray(np.broadcast_to(bias[None, :], (a.shape[0], w.shape[1])))
        return KernelOperands(True, False, True, _i32(a), _i32(w.T), acc.astype(np.int64))


_DATAFLOWS: dict[str, Dataflow] = {
    d.name: d for d in (WeightStationary(), OutputStationary(), InputStationary())
}
DATAFLOW_NAMES = tuple(_DATAFLOWS)


def get_dataflow(name: str) -> Dataflow:
    """The strategy for ``"ws"``, ``"os"`` or ``"is"``; ConfigError otherwise."""
    try:
        return _DATAFLOWS[name]
    except KeyError:
        raise ConfigError(
            f"dataflow: expected one of {', '.join(_DATAFLOWS)}, got {name!r}"
        ) from None
