"""Fast mode against the cycle-stepped kernel over more than 10^6 outputs per run
(specs/cycle_model.md §C9: both modes return identical values, accumulators, array cycles,
valid cycles and overflow events with the first location; tolerance 0).

Seeded shapes cover every dataflow, every overflow policy, accumulators from 16 to 32 bits,
partial folds (M, K, N not multiples of the array), signed and unsigned activations, every
requantization mode, and adversarial data whose partial sums leave the accumulator range in
the middle of the §7 order and come back (arithmetic.md §7: saturate differs from the exact
sum, wrap does not; each overflowing addition is one event).
"""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.arith import AccumulatorOverflowError, RequantConfig, make_requant_params
from hwsim.sim.config import ArrayConfig
from hwsim.sim.simulate import simulate_gemm

MIN_OUTPUTS = 10**6
MODES = ("dyadic", "tflite", "tflite_single", "float32", "custom")


def _case(rng: np.random.Generator, adversarial: bool, acc_bits: int):
    m = int(rng.integers(200, 1500))
    n = int(rng.integers(20, 120))
    k = int(rng.integers(1, 48))
    unsigned = bool(rng.integers(0, 2))
    a = (rng.integers(0, 256, (m, k)) if unsigned else rng.integers(-128, 128, (m, k)))
    w = rng.integers(-128, 128, (k, n))
    if adversarial:
        # Products of one sign first, then the other: the partial sum climbs past the
        # range and comes back (wrap: exact end result; saturate: clamped on the way).
        a = a if unsigned else np.minimum(np.abs(a), 127)
        w = np.minimum(np.abs(w), 127)
        w[k // 2:] *= -1
    hi = (1 << (acc_bits - 1)) - 1
    bias = rng.integers(-min(hi, 50_000), min(hi, 50_000) + 1, n)
    return a.astype(np.int64), w.astype(np.int64), bias.astype(np.int64)


def test_fast_equals_stepped_over_a_million_outputs() -> None:
    rng = np.random.default_rng(20261128)
    outputs = 0
    overflow_cases = 0
    i = 0
    while outputs < MIN_OUTPUTS:
        dataflow = ("ws", "os", "is")[i % 3]
        policy = ("wrap", "saturate", "error")[(i // 3) % 3]
        acc_bits = (16, 18, 20, 24, 32)[i % 5]
        adversarial = i % 2 == 1
        a, w, bias = _case(rng, adversarial, acc_bits)
        rows, cols = (int(v) for v in rng.integers(2, 17, 2))
        cfg = ArrayConfig(rows=rows, cols=cols, dataflow=dataflow, acc_bits=max(acc_bits, 16),
                          acc_overflow=policy, requant_latency=int(rng.integers(0, 4)))
        mode = MODES[i % len(MODES)]
        params = make_requant_params(rng.uniform(1e-5, 1e-2, w.shape[1]),
                                     RequantConfig(mode=mode), zero_point=int(rng.integers(-5, 6)))
        where = (f"case {i}: {dataflow} {rows}x{cols} {policy} acc{acc_bits} {mode} "
                 f"{a.shape}x{w.shape}")
        if policy == "error":
            errors = []
            for stepped in (False, True):
                try:
                    simulate_gemm(a, w, bias, params, cfg, stepped=stepped)
                    errors.append(None)
                except AccumulatorOverflowError as exc:
                    errors.append(str(exc))
            assert errors[0] == errors[1], where
            if errors[0] is not None:
                overflow_cases += 1
                i += 1
                continue
        fast = simulate_gemm(a, w, bias, params, cfg)
        step = simulate_gemm(a, w, bias, params, cfg, stepped=True)
        assert fast.cycles == step.cycles, where
        assert fast.overflow_events == step.overflow_events, where
        assert fast.first_overflow == step.first_overflow, where
        np.testing.assert_array_equal(fast.acc, step.acc, err_msg=where)
        np.testing.assert_array_equal(fast.values, step.values, err_msg=where)
        np.testing.assert_array_equal(fast.valid_cycles, step.valid_cycles, err_msg=where)
        overflow_cases += step.overflow_events > 0
        outputs += step.values.size
        i += 1
    assert overflow_cases >= 5  # the overflow paths were exercised, not only the exact sums


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_stepped_cycles_equal_closed_form_on_partial_tiles(dataflow: str) -> None:
    """§C5 cycles and §C4 valid cycles with partial row and column tiles on both sides."""
    rng = np.random.default_rng(7)
    a = rng.integers(-128, 128, (37, 29))
    w = rng.integers(-128, 128, (29, 23))
    bias = rng.integers(-1000, 1000, 23)
    params = make_requant_params(np.full(23, 1e-3), RequantConfig(), zero_point=0)
    cfg = ArrayConfig(rows=5, cols=7, dataflow=dataflow, requant_latency=3)
    step = simulate_gemm(a, w, bias, params, cfg, stepped=True)
    fast = simulate_gemm(a, w, bias, params, cfg)
    assert step.cycles == fast.cycles
    np.testing.assert_array_equal(step.valid_cycles, fast.valid_cycles)
    np.testing.assert_array_equal(step.acc, bias + a @ w)
