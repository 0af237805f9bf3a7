"""Timing formulas of specs/cycle_model.md §C2–§C5, checked by hand on tiny cases and
against the cycle-stepped kernel (which counts cycles by simulation)."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.arith import RequantConfig, make_requant_params
from hwsim.errors import ConfigError
from hwsim.sim.config import ArrayConfig
from hwsim.sim.dataflows import GemmShape, get_dataflow
from hwsim.sim.simulate import simulate_gemm


def run_stepped(dataflow: str, rows: int, cols: int, m: int, k: int, n: int, latency: int):
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    a = rng.integers(-8, 8, size=(m, k))
    w = rng.integers(-8, 8, size=(k, n))
    params = make_requant_params(np.full(n, 0.01), RequantConfig(), zero_point=0)
    cfg = ArrayConfig(rows=rows, cols=cols, dataflow=dataflow, requant_latency=latency)
    return simulate_gemm(a, w, np.zeros(n, dtype=np.int64), params, cfg, stepped=True)


def test_ws_hand_example() -> None:
    """§C3 ws on a 2x2 array, M=3, K=2, N=2, L=1: preload 2 cycles, output (m, n) leaves the
    bottom at s + m + R - 1 + c with s = 2, valid one cycle later plus L."""
    res = run_stepped("ws", 2, 2, 3, 2, 2, 1)
    assert res.cycles == 1 * (2 * 2 + 2 + 3 - 2) + 1 == 8
    expected = np.array([[2 + m + 1 + c + 1 + 1 for c in range(2)] for m in range(3)])
    np.testing.assert_array_equal(res.valid_cycles, expected)
    assert res.valid_cycles.max() == res.cycles


def test_os_hand_example() -> None:
    """§C3 os on a 2x3 array, M=2, K=4, N=3, L=0: drain starts at K + R + C - 2 = 7; row r
    leaves at 7 + R - 1 - r, valid one cycle later."""
    res = run_stepped("os", 2, 3, 2, 4, 3, 0)
    assert res.cycles == 2 * 2 + 3 + 4 - 2 == 9
    expected = np.array([[7 + 1 - r + 1] * 3 for r in range(2)])
    np.testing.assert_array_equal(res.valid_cycles, expected)


def test_is_hand_example() -> None:
    """§C3 is on a 3x2 array, M=2 (columns), K=5 (2 k folds), N=4 (time), L=2: outputs of
    the second (last) k fold, which starts at 2R + C + N - 2 = 10."""
    res = run_stepped("is", 3, 2, 2, 5, 4, 2)
    lf = 2 * 3 + 2 + 4 - 2
    assert res.cycles == 2 * lf + 2 == 22
    expected = np.array([[lf + 3 + n + 3 - 1 + m + 1 + 2 for n in range(4)] for m in range(2)])
    np.testing.assert_array_equal(res.valid_cycles, expected)


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
@pytest.mark.parametrize(("rows", "cols", "m", "k", "n"),
                         [(1, 1, 3, 2, 2), (4, 2, 7, 9, 5), (2, 5, 3, 4, 11), (8, 8, 3, 2, 2),
                          (3, 3, 9, 9, 9)])
def test_stepped_cycles_equal_closed_form(dataflow, rows, cols, m, k, n) -> None:
    """§C5: F·(2R + C + T − 2) + L, F per §C2, counted cycle by cycle by the kernel."""
    lat = 3
    res = run_stepped(dataflow, rows, cols, m, k, n, lat)
    t = {"ws": m, "is": n, "os": k}[dataflow]
    ceil = lambda a, b: -(-a // b)  # noqa: E731
    folds = {"ws": ceil(n, cols) * ceil(k, rows), "is": ceil(m, cols) * ceil(k, rows),
             "os": ceil(n, cols) * ceil(m, rows)}[dataflow]
    assert res.cycles == folds * (2 * rows + cols + t - 2) + lat
    flow = get_dataflow(dataflow)
    np.testing.assert_array_equal(res.valid_cycles,
                                  flow.valid_cycles(GemmShape(m, k, n), rows, cols, lat))


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_fold_table_counts(dataflow: str) -> None:
    """§C2/§C6: number of folds, used extents and SRAM reads add up to the GEMM."""
    shape = GemmShape(10, 7, 6)
    flow = get_dataflow(dataflow)
    ft = flow.fold_table(shape, 3, 4)
    assert ft.count == flow.num_folds(shape, 3, 4)
    # every MAC is done exactly once: Σ over folds of used PEs × streamed length
    t = {"ws": shape.m, "is": shape.n, "os": shape.k}[dataflow]
    assert int((ft.rows_used * ft.cols_used).sum()) * t == shape.macs
    assert int(ft.final_outputs.sum()) == shape.m * shape.n
    assert bool(ft.first_k[0]) and bool(ft.last_k[-1])


def test_unknown_dataflow() -> None:
    with pytest.raises(ConfigError, match=r"^dataflow: expected one of ws, os, is, got 'xy'$"):
        get_dataflow("xy")
    with pytest.raises(ConfigError, match=r"^GEMM dimension k: expected an integer >= 1"):
        GemmShape(1, 0, 1)
