"""Calibration (specs/compiler.md §3.1): one observer per activation tensor over every batch."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.compiler.calibrate import OBSERVERS, calibrate
from hwsim.compiler.qgraph import verify_qgraph
from hwsim.compiler.quantize import QuantizeConfig, activation_tensors, quantize_static
from hwsim.errors import HwsimError
from hwsim.ir.builder import GraphBuilder
from hwsim.quant import QuantSpec, choose_qparams
from hwsim.quant.observers import make_observer
from hwsim.reference.float_exec import run_float

RNG = np.random.default_rng(21)
X = RNG.normal(size=(8, 2, 5, 5)).astype(np.float32)


def _graph():
    b = GraphBuilder("cal")
    x = b.input("x", (1, 2, 5, 5))
    y = b.relu(b.conv2d(x, RNG.normal(size=(3, 2, 3, 3)).astype(np.float32), None, pads=1,
                        name="conv"), name="act")
    p = b.maxpool2d(y, 2, name="pool")
    return b.build(b.linear(b.flatten(p), RNG.normal(size=(4, 12)).astype(np.float32),
                            name="fc"))


def test_activation_tensors_are_inputs_and_fused_outputs() -> None:
    """§3.1: inputs and the (post-activation) outputs of MAC / add / concat nodes."""
    assert activation_tensors(_graph()) == ["x", "act.out", "fc.out"]


def test_minmax_equals_choose_qparams_over_all_batches() -> None:
    """§3.1: the minmax observer of each tensor sees every calibration batch."""
    g = _graph()
    batches = [{"x": X[:4]}, {"x": X[4:] * 3}]
    spec = QuantSpec("int8")
    qps = calibrate(g, batches, activation_tensors(g), "minmax", spec)
    for t in activation_tensors(g):
        vals = [run_float(g, bt, keep_all=True)[t] for bt in batches]
        want = choose_qparams(min(v.min() for v in vals), max(v.max() for v in vals), spec)
        assert float(qps[t].scale) == float(want.scale)
        assert int(qps[t].zero_point) == int(want.zero_point)


@pytest.mark.parametrize("observer", OBSERVERS)
def test_each_observer_matches_hwsim_quant(observer: str) -> None:
    """§3.1: calibrate feeds the same data as a hand-driven observer of that name."""
    g = _graph()
    batches = [{"x": X[:4]}, {"x": X[4:]}]
    spec = QuantSpec("int8")
    got = calibrate(g, batches, ["act.out"], observer, spec)["act.out"]
    obs = make_observer(observer)
    for bt in batches:
        obs.update(run_float(g, bt, keep_all=True)["act.out"])
    want = obs.qparams(spec)
    assert float(got.scale) == float(want.scale)
    assert int(got.zero_point) == int(want.zero_point)
    qg = quantize_static(g, batches, QuantizeConfig(observer=observer))
    verify_qgraph(qg)
    assert qg.tensors["act.out"].scale == float(want.scale)


def test_empty_calibration_set_rejected() -> None:
    with pytest.raises(HwsimError, match="calibration set: expected at least one batch"):
        calibrate(_graph(), [], ["x"], "minmax", QuantSpec("int8"))
