"""The cycle model of the MAC array (specs/cycle_model.md).

:class:`ArrayConfig` / :func:`load_array_config` describe the array; :func:`simulate_gemm`
runs one GEMM (cycle-stepped or fast, identical results); :func:`simulate_qgraph` runs a
whole integer graph and returns per-layer :class:`LayerCounters`. Dataflow strategies live
in :mod:`hwsim.sim.dataflows`, the Numba kernels in :mod:`hwsim.sim.kernels`, the memory
model in :mod:`hwsim.sim.memory`.
"""

from hwsim.sim.config import DATAFLOWS, ArrayConfig, array_config_from_dict, load_array_config
from hwsim.sim.counters import BufferCounts, LayerCounters
from hwsim.sim.dataflows import GemmShape, get_dataflow
from hwsim.sim.graph import ModelResult, simulate_qgraph
from hwsim.sim.simulate import GemmResult, LayerResult, simulate_gemm, simulate_gemm_layer

__all__ = [
    "DATAFLOWS",
    "ArrayConfig",
    "BufferCounts",
    "GemmResult",
    "GemmShape",
    "LayerCounters",
    "LayerResult",
    "ModelResult",
    "array_config_from_dict",
    "get_dataflow",
    "load_array_config",
    "simulate_gemm",
    "simulate_gemm_layer",
    "simulate_qgraph",
]
