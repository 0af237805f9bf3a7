"""Model-level driver behind ``hwsim run``: load an ONNX model, quantize it for the array
(its requantization unit, accumulator width and policy, operand widths), simulate it with
:func:`hwsim.sim.graph.simulate_qgraph` and build a JSON-ready report."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from hwsim.compiler.quantize import QuantizeConfig
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
        "dram_write_bytes", "overflow_events", "fill_stall_cycles", "compulsory_dram_bytes")}
    util = 0.0
    if total.unit == "array" and ints["total_cycles"]:
        util = ints["macs"] / (config.pes * ints["total_cycles"])
    return dataclasses.replace(
        total, **ints, utilisation=util, sram=total.sram + c.sram,
        first_overflow=min((f for f in (total.first_overflow, first) if f is not None),
                           default=None))


def run_model(model_path: str | Any, array_path: str | ArrayConfig, *,
              inputs: str | None = None, calib: str | None = None, samples: int | None = 1,
              stepped: bool = False, check: bool = False, batch: int | None = None,
              array_name: str | None = None) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Quantize and simulate; returns (report, warnings). The report holds ``model``,
    ``array`` (its fields), ``mode``, ``samples``, ``batch``, ``layers`` (name, op, cycles,
    utilisation, counters), ``total_cycles``, ``time_us`` at the array clock and, with
    ``check``, ``check`` = {ok, mismatched tensors}.

    ``model_path``: any MODEL of :mod:`hwsim.sources` or a
    :class:`hwsim.report.evaluate.ModelSource` (its quantization options; ``inputs`` and
    ``calib`` then come from it); ``array_path``: an ARRAY.toml or an ArrayConfig
    (``array_name`` names it in errors).

    The first ``samples`` inputs (None: all) stream through the array ``batch`` at a time
    (default: all in one batch): each batch is one run of the model on the array, and
    counters and cycles are summed over the runs, so they depend on ``batch`` (fill and
    drain per run) while values and the check do not; memory is bounded by ``batch``. A
    model whose input declares a fixed leading dimension D (e.g. a GEMM ``[256, 256]``)
    runs D inputs per run as declared: ``samples`` and ``batch`` are then counted in runs
    of D inputs (specs/cycle_model.md §C1)."""
    from hwsim.progress import bar
    from hwsim.report.evaluate import ModelSource, compile_for_array, fixed_batch, load_source

    if samples is not None and samples < 1:
        raise HwsimError(f"--samples: expected an integer >= 1, got {samples}")
    config = array_path if isinstance(array_path, ArrayConfig) else load_array_config(
        array_path)
    where = array_name or ("array" if isinstance(array_path, ArrayConfig) else str(array_path))
    if stepped:
        from hwsim.sim.simulate import check_stepped_memory

        check_stepped_memory(config)
    src = model_path if isinstance(model_path, ModelSource) else ModelSource(
        model=str(model_path), calib=calib, inputs=inputs)
    loaded, data = load_source(src)
    name = loaded.input_name
    d = fixed_batch(loaded)
    if data.inputs.shape[0] % d:
        raise HwsimError(f"inputs: {data.inputs.shape[0]} inputs; the model's input {name!r} "
                         f"declares a fixed leading dimension of {d} "
                         f"(shape {loaded.input_shape}): give a multiple of {d} inputs")
    x = data.inputs if samples is None else data.inputs[:samples * d]
    n = int(x.shape[0])
    batch = n if batch is None else batch
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise HwsimError(f"--batch: expected an integer >= 1, got {batch!r}")
    batch = min(batch * d, n) if d > 1 else batch
    try:
        qg = compile_for_array(loaded, data.calib, src, config,
                               batch if loaded.quantized else min(batch, n))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
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
                    m = result.mac_layers[c.name].gemms[c.first_overflow[0]].shape.m
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
        "model": str(src.model),
        "model_kind": loaded.kind,
        "input_shape": list(loaded.input_shape),
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
