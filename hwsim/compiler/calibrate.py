"""Calibration: float reference over a calibration set, one observer per activation tensor
(specs/compiler.md §3.1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from hwsim.errors import HwsimError
from hwsim.ir.graph import Graph
from hwsim.quant import QParams, QuantSpec
from hwsim.quant.observers import make_observer
from hwsim.reference.float_exec import run_float

#: Observer names accepted by :func:`calibrate` (hwsim.quant.observers.make_observer).
OBSERVERS = ("minmax", "moving_average", "percentile", "mse", "entropy")


def calibrate(graph: Graph, batches: Iterable[Mapping[str, np.ndarray]],
              tensors: Sequence[str], observer: str, spec: QuantSpec,
              **observer_kwargs: Any) -> dict[str, QParams]:
    """Run the float32 reference on every batch of ``batches`` and feed each tensor named
    in ``tensors`` to its own observer (``make_observer(observer, **observer_kwargs)``);
    return the per-tensor QParams of ``spec`` chosen by the observers. HwsimError if the
    calibration set is empty, or naming the first tensor (and its node) that is not finite
    in float32."""
    wanted = set(tensors)
    observers = {t: make_observer(observer, **observer_kwargs) for t in tensors}
    computed = {t for n in graph.nodes for t in n.outputs}

    def observe(name: str, value: np.ndarray) -> None:
        # the first non-finite tensor (in execution order) names the node that overflowed
        if name in wanted or name in computed:
            if not np.all(np.isfinite(value)):
                producer = graph.producer(name)
                by = f" (output of node {producer.name!r}, {producer.op})" if producer else ""
                raise HwsimError(f"calibration: tensor {name!r}{by} has NaN or Inf values "
                                 "in float32 (weights or inputs too large?); expected finite "
                                 "activations")
        if name in wanted:
            observers[name].update(value)

    seen = 0
    for feeds in batches:
        run_float(graph, feeds, observe=observe)
        seen += 1
    if seen == 0:
        raise HwsimError("calibration set: expected at least one batch, got none")
    return {t: observers[t].qparams(spec) for t in tensors}
