"""Model-level driver behind ``hwsim run``: load an ONNX model, quantize it for the array
(its requantization unit, accumulator width and policy, operand widths), simulate it with
:func:`hwsim.sim.graph.simulate_qgraph` and build a JSON-ready report."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from hwsim.compiler.quantize import QuantizeConfig, quantize_static
from hwsim.errors import ConfigError, HwsimError
from hwsim.sim.config import ArrayConfig, load_array_config
from hwsim.sim.counters import LayerCounters
from hwsim.sim.graph import ModelResult, simulate_qgraph

__all__ = ["quantize_config_for", "run_model", "summary_lines"]

def quantize_config_for(config: ArrayConfig, *, weights: str | None = None,
                        observer: str = "minmax") -> QuantizeConfig:
    """The compiler settings that make an integer graph run on ``config`` (§C1): int8 or
    int16 activations, the array's requantization unit and accumulator, and ``weights``
    (default: int8, or int4 for a 4..7-bit weight port; a format wider than the port is
    rejected when the graph is checked against the array)."""
    if config.act_bits >= 16:
        act = "int16"
    elif config.act_bits >= 8:
        act = "int8"
    else:
        raise ConfigError(f"array act_bits: the compiler quantizes activations to 8 or 16 "
                          f"bits; got {config.act_bits}")
    if weights is None:
        if config.weight_bits >= 8:
            weights = "int8"
        elif config.weight_bits >= 4:
            weights = "int4"
        else:
            raise ConfigError(f"array weight_bits: the compiler quantizes weights to 4 or 8 "
                              f"bits; got {config.weight_bits}")
    return QuantizeConfig(weights=weights, act_dtype=act, observer=observer,
                          requant=config.requant,
                          acc_bits=config.acc_bits, acc_overflow=config.acc_overflow,
                          profile=config.profile)


def _add_counters(total: LayerCounters | None, c: LayerCounters, row_offset: int,
                  config: ArrayConfig) -> LayerCounters:
    """Counters of one layer summed over batches (specs/cycle_model.md §C7): events, cycles
    and traffic add up; utilisation is recomputed from the sums; the first overflow is the
    least ``(gemm, m, n, k)`` (the order of §C7) over the batches, each batch's GEMM row
    ``m`` shifted by ``row_offset`` (rows of the inputs before that batch)."""
    first = c.first_overflow
    if first is not None:
        first = (first[0], first[1] + row_offset, first[2], first[3])
    if total is None:
        return dataclasses.replace(c, first_overflow=first)
    ints = {f: getattr(total, f) + getattr(c, f) for f in (
        "macs", "array_cycles", "compute_cycles", "fill_drain_cycles", "stall_cycles",
        "total_cycles", "active_pe_cycles", "pe_cycles", "dram_read_bytes",
        "dram_write_bytes", "overflow_events")}
    util = 0.0
    if total.unit == "array" and ints["total_cycles"]:
        util = ints["macs"] / (config.pes * ints["total_cycles"])
    return dataclasses.replace(
        total, **ints, utilisation=util, sram=total.sram + c.sram,
        first_overflow=min((f for f in (total.first_overflow, first) if f is not None),
                           default=None))


def run_model(model_path: str, array_path: str, *, inputs: str | None = None,
              calib: str | None = None, samples: int = 1, stepped: bool = False,
              check: bool = False, batch: int | None = None
              ) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Quantize and simulate; returns (report, warnings). The report holds ``model``,
    ``array`` (its fields), ``mode``, ``samples``, ``batch``, ``layers`` (name, op, cycles,
    utilisation, counters), ``total_cycles``, ``time_us`` at the array clock and, with
    ``check``, ``check`` = {ok, mismatched tensors}.

    The first ``samples`` inputs stream through the array ``batch`` at a time (default: all
    in one batch): each batch is one run of the model on the array, and counters and cycles
    are summed over the runs, so they depend on ``batch`` (fill and drain per run) while
    values and the check do not; memory is bounded by ``batch``."""
    from hwsim.progress import bar
    from hwsim.verify import (
        calibration_batch,
        calibration_batches,
        load_model,
        resolve_data,
        single_input,
    )

    if samples < 1:
        raise HwsimError(f"--samples: expected an integer >= 1, got {samples}")
    config = load_array_config(array_path)
    if stepped:
        from hwsim.sim.simulate import check_stepped_memory

        check_stepped_memory(config)
    graph = load_model(model_path)
    data = resolve_data(model_path, graph, calib, inputs, None)
    name = single_input(graph)
    x = data.inputs[:samples]
    n = int(x.shape[0])
    if batch is None:
        batch = n
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise HwsimError(f"--batch: expected an integer >= 1, got {batch!r}")
    try:
        cfg = quantize_config_for(config)
    except ConfigError as exc:
        raise ConfigError(f"{array_path}: {exc}") from None
    qg = quantize_static(graph, calibration_batches(
        name, data.calib, calibration_batch(cfg.observer, batch)), cfg)
    layers: list[LayerCounters | None] = [None] * len(qg.nodes)
    bad: set[str] = set()
    with bar(n, "run (stepped)" if stepped else "run") as b:
        for start in range(0, n, batch):
            xb = np.asarray(x[start:start + batch], dtype=np.float32)
            feeds = {name: xb}
            b.stage("cycle model")
            result = simulate_qgraph(qg, feeds, config, stepped=stepped)
            for i, c in enumerate(result.layers):
                rows = 0
                if c.first_overflow is not None:
                    m = result.mac_layers[c.name].gemms[c.first_overflow[0]].values.shape[0]
                    rows = start * (m // xb.shape[0])
                layers[i] = _add_counters(layers[i], c, rows, config)
            if check:
                from hwsim.reference.golden_exec import run_golden

                b.stage("golden")
                gold = run_golden(qg, feeds)
                bad.update(t for t, ref in gold.codes.items()
                           if not np.array_equal(ref, result.codes[t]))
                del gold
            del result
            b.update(xb.shape[0])
    summed = ModelResult(codes={}, layers=tuple(layers), mac_layers={},
                         total_cycles=sum(c.total_cycles for c in layers))
    report: dict[str, Any] = {
        "model": model_path,
        "array": config.to_dict(),
        "mode": "stepped" if stepped else "fast",
        "samples": n,
        "batch": batch,
        **summed.to_dict(),
        "time_us": summed.total_cycles / config.clock_mhz,
    }
    if check:
        report["check"] = {"ok": not bad, "mismatched_tensors": sorted(bad)}
    return report, data.warnings


def summary_lines(report: dict[str, Any]) -> list[str]:
    """Human-readable table of a :func:`run_model` report."""
    arr = report["array"]
    lines = [f"{report['model']} on {arr['rows']}x{arr['cols']} {arr['dataflow']} "
             f"({report['mode']} mode, {report['samples']} sample(s))",
             f"{'layer':<28} {'op':<15} {'cycles':>12} {'util':>7} {'stalls':>10}"]
    for layer in report["layers"]:
        c = layer["counters"]
        lines.append(f"{layer['name']:<28} {layer['op']:<15} {layer['cycles']:>12} "
                     f"{layer['utilisation']:>7.3f} {c['stall_cycles']:>10}")
    lines.append(f"total_cycles {report['total_cycles']} "
                 f"({report['time_us']:.1f} us at {arr['clock_mhz']} MHz)")
    if "check" in report:
        lines.append("check: " + ("bit-exact against the golden model" if report["check"]["ok"]
                                  else f"MISMATCH in {report['check']['mismatched_tensors']}"))
    return lines
