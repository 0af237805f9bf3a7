"""The testbench's timing model (rtl.md §R4) equals hwsim.sim's (cycle_model.md §C3-§C5).

Pure Python, no simulator: the schedule the array bench drives and the valid cycles it
expects are the cycle model's for every gap-free shape, so an RTL pass means an RTL match.
"""

from __future__ import annotations

import numpy as np
import pytest
from cocotb_array import (
    LATENCY,
    ArrayParams,
    Gemm,
    Schedule,
    expected_valid_cycles,
    gemm_cycles,
)

from hwsim.arith import RequantConfig, make_requant_params
from hwsim.sim.dataflows import GemmShape, get_dataflow


def _gemm(m: int, k: int, n: int) -> Gemm:
    z = np.zeros
    params = make_requant_params(np.full(n, 0.01), RequantConfig(), 0)
    return Gemm(z((m, k), dtype=np.int64), z((k, n), dtype=np.int64), z(n, dtype=np.int64),
                params, np.arange(m, dtype=np.int64))


@pytest.mark.parametrize("rows,cols", [(1, 1), (3, 2), (4, 3), (2, 5)])
def test_valid_cycles_equal_cycle_model(rows: int, cols: int) -> None:
    """§R4 = §C4 for ws, gap-free streams, over a grid of GEMM shapes (tolerance 0)."""
    arr = ArrayParams(rows, cols, 32, False)
    flow = get_dataflow("ws")
    rng = np.random.default_rng(rows * 10 + cols)
    for _ in range(40):
        m, k, n = (int(v) for v in rng.integers(1, 12, size=3))
        shape = GemmShape(m, k, n)
        g = _gemm(m, k, n)
        np.testing.assert_array_equal(expected_valid_cycles(arr, g),
                                      flow.valid_cycles(shape, rows, cols, LATENCY))
        assert gemm_cycles(arr, g) == flow.array_cycles(shape, rows, cols, LATENCY)


def test_schedule_follows_c3() -> None:
    """§C3 ws: preload rows at t0..t0+R-1 (bottom row first), A[t, r] at s+t+r, column
    tops at s+t+c, and every fold of every column yields M bottom sums in order."""
    arr = ArrayParams(3, 2, 32, False)
    base = _gemm(4, 5, 3)
    g = Gemm(np.arange(20).reshape(4, 5) % 7, np.arange(15).reshape(5, 3) % 5,
             base.bias, base.params, base.tau)
    sched = Schedule(arr, [g])
    lf = 2 * 3 + 2 + 4 - 2
    assert sched.total == 2 * 2 * lf + LATENCY  # 2 column tiles x 2 k tiles
    w_cycles = sorted(c for c, evs in sched.events.items() for e in evs if e[0] == "w")
    assert w_cycles == [f * lf + q for f in range(4) for q in range(3)]
    s = 3
    a_events = {(c, e[1]): e[2] for c, evs in sched.events.items() for e in evs if e[0] == "a"}
    for t in range(4):
        for r in range(3):
            assert a_events[(s + t + r, r)] == g.a[t, r]
    tops = sorted((c, e[5], e[4]) for c, evs in sched.events.items() for e in evs
                  if e[0] == "top" and e[2] == 0 and e[3] == 0)
    assert tops == sorted((s + t + c, c, t) for t in range(4) for c in range(2))
    assert [len(o) for o in sched.acc_order] == [16, 16]
    assert [len(o) for o in sched.q_order] == [8, 8]
