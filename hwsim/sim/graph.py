"""Whole integer graphs on the array: conv / gemm layers on the MAC array, every other op
on the vector unit (specs/cycle_model.md §C1, §C5–§C7).

Values equal the integer golden executor (:mod:`hwsim.reference.golden_exec`) bit for bit
when the graph's accumulator settings match the array's: MAC layers are computed by
:func:`hwsim.sim.simulate.simulate_gemm_layer` (stepped or fast), vector-unit ops by the
golden model's element-wise kernels (the vector unit implements arithmetic.md §10 exactly).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from hwsim.compiler.qgraph import QGraph, TensorQ, quantize_feeds
from hwsim.errors import ConfigError, HwsimError, ModelError
from hwsim.reference import golden_exec
from hwsim.sim.config import ArrayConfig
from hwsim.sim.counters import LayerCounters
from hwsim.sim.lowering import assemble_conv, lower_conv, lower_gemm, vector_cycles
from hwsim.sim.memory import vector_memory
from hwsim.sim.simulate import (
    LayerResult,
    simulate_conv_layer_fast,
    simulate_gemm_layer,
    simulate_gemm_layer_fast,
    vector_layer_counters,
)

__all__ = ["ModelResult", "simulate_qgraph", "check_graph_matches_array"]

#: Ops that only reinterpret a buffer (no cycles on the vector unit, §C1).
_VIEW_OPS = ("flatten", "reshape")


@dataclass(frozen=True, eq=False)
class ModelResult:
    """Per-tensor codes (read as int64), per-layer counters in execution order, MAC-layer
    results (valid cycles etc., by node name) and the sum of the layers' ``total_cycles``."""

    codes: Mapping[str, np.ndarray]
    layers: tuple[LayerCounters, ...]
    mac_layers: Mapping[str, LayerResult]
    total_cycles: int

    def to_dict(self) -> dict:
        """JSON-ready summary: ``layers`` (name, op, cycles, counters, utilisation) and
        ``total_cycles``."""
        return {
            "layers": [
                {"name": c.name, "op": c.op, "cycles": c.total_cycles,
                 "utilisation": c.utilisation, "counters": c.to_dict()}
                for c in self.layers
            ],
            "total_cycles": self.total_cycles,
        }


def check_graph_matches_array(g: QGraph, config: ArrayConfig) -> None:
    """ConfigError unless the graph's accumulator (§7) is the array's: the array computes
    with its own ``acc_bits`` / ``acc_overflow``, so the graph must have been compiled for
    it (compile with ``QuantizeConfig(acc_bits=…, acc_overflow=…, requant=config.requant)``)."""
    if g.acc_bits != config.acc_bits or g.acc_overflow != config.acc_overflow:
        raise ConfigError(
            f"array acc_bits/acc_overflow ({config.acc_bits}, {config.acc_overflow!r}) differ "
            f"from the integer graph's ({g.acc_bits}, {g.acc_overflow!r}); compile the model "
            f"for this array"
        )


def _pair(v) -> tuple[int, int]:
    t = tuple(int(i) for i in v)
    return t[0], t[1]


def simulate_qgraph(
    g: QGraph, feeds: Mapping[str, np.ndarray], config: ArrayConfig, *, stepped: bool = False
) -> ModelResult:
    """Run the static integer graph ``g`` on the array. ``feeds`` as for
    :func:`hwsim.reference.golden_exec.run_golden` (floats are quantized with the input
    qparams, integers taken as codes)."""
    if g.dynamic:
        raise ModelError(
            f"graph {g.name!r} is dynamic (per-input activation qparams); the array model "
            f"runs static graphs only"
        )
    check_graph_matches_array(g, config)
    tensors: dict[str, TensorQ] = dict(g.tensors)
    codes = quantize_feeds(g, feeds, tensors)
    # fast mode keeps 8-bit codes compact where the golden model does (only conv and the
    # golden add / max pool kernels read them); the result hands out int64
    producer = {n.output: n.op for n in g.nodes}
    compact = {} if stepped else {t: dt for t, dt in golden_exec.compact_dtypes(g).items()
                                  if producer[t] in ("conv", "add", "maxpool")}
    layers: list[LayerCounters] = []
    mac: dict[str, LayerResult] = {}
    for node in g.nodes:
        try:
            x = codes[node.inputs[0]]
            if node.op in ("conv", "gemm"):
                tin = tensors[node.inputs[0]]
                params = node.requant["out"]
                if node.op == "conv" and not stepped:
                    a = node.attrs
                    res, y = simulate_conv_layer_fast(
                        node.name, x, node.arrays["weight"], node.arrays["bias"], params, config,
                        x_zero_point=tin.zero_point, strides=_pair(a["strides"]),
                        pads=tuple(int(p) for p in a["pads"]), dilations=_pair(a["dilations"]),
                        group=int(a["group"]), x_range=(tin.qmin, tin.qmax),
                        out_dtype=compact.get(node.output))
                    mac[node.name] = res
                    layers.append(res.counters)
                    codes[node.output] = y
                    continue
                if node.op == "gemm" and not stepped:
                    res, y = simulate_gemm_layer_fast(
                        node.name, x, node.arrays["weight"], node.arrays["bias"], params,
                        config)
                    mac[node.name] = res
                    layers.append(res.counters)
                    codes[node.output] = y
                    continue
                if node.op == "conv":
                    a = node.attrs
                    gemms, out_shape = lower_conv(
                        x, node.arrays["weight"], node.arrays["bias"],
                        x_zero_point=tin.zero_point, strides=_pair(a["strides"]),
                        pads=tuple(int(p) for p in a["pads"]), dilations=_pair(a["dilations"]),
                        group=int(a["group"]),
                    )
                else:
                    gemms = [lower_gemm(x, node.arrays["weight"], node.arrays["bias"])]
                res = simulate_gemm_layer(node.name, node.op, gemms, params, config,
                                          stepped=stepped)
                outs = [r.values for r in res.gemms]
                y = assemble_conv(outs, out_shape) if node.op == "conv" else outs[0]
                mac[node.name] = res
                layers.append(res.counters)
            else:
                y = golden_exec.run_node(g, node, codes, tensors, {}, {},
                                         out_dtype=compact.get(node.output))
                if node.op in _VIEW_OPS:
                    cycles = 0
                    in_elems = out_elems = 0
                else:
                    sizes = [int(codes[t].size) for t in node.inputs]
                    cycles = vector_cycles(max(sizes + [int(y.size)]), config.cols)
                    in_elems = sum(sizes)
                    out_elems = int(y.size)
                bits = config.act_bits
                mem = vector_memory(config, cycles, in_elems, bits, out_elems, bits)
                layers.append(vector_layer_counters(node.name, node.op, cycles, mem, config))
            codes[node.output] = y if node.output in compact else np.asarray(y, dtype=np.int64)
        except HwsimError as exc:
            raise type(exc)(f"node {node.name!r} ({node.op}): {exc}") from exc
    return ModelResult(codes=golden_exec.Int64Arrays(codes), layers=tuple(layers),
                       mac_layers=mac, total_cycles=sum(c.total_cycles for c in layers))
