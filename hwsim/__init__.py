"""hwsim: a bit-exact simulator and emulator of fixed-point DNN accelerators.

The entry points a script needs (imported lazily, so ``import hwsim`` stays fast)::

    load_model            any MODEL: float / quantized ONNX, hwsim JSON, "digits"
    GraphBuilder          build a float graph in Python (specs/ir.md §5)
    load_onnx, save_onnx  float ONNX in / out
    QuantizeConfig, quantize_static, quantize_dynamic, quantize_config_for
    save_qgraph, load_qgraph           hwsim's integer-graph files
    VerifyOptions, verify_graph        every executor bit for bit (specs/compiler.md §7)
    ArrayConfig, load_array_config, simulate_qgraph, run_model   the cycle model
    estimate_energy, HOROWITZ_45NM, load_energy_table            the energy model
    ModelSource, evaluate, write_report                          reports
    generate_vectors, check_vectors, load_layer_vectors          golden vectors
    HwsimError            every error hwsim raises on bad input

See the README section "Scripting" for a complete example (run by tests/test_api.py).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Public name -> module that defines it.
_EXPORTS = {
    "load_model": ("hwsim.sources", "load_model_source"),
    "LoadedModel": ("hwsim.sources", "LoadedModel"),
    "GraphBuilder": ("hwsim.ir.builder", "GraphBuilder"),
    "load_onnx": ("hwsim.frontends.onnx", "load_onnx"),
    "save_onnx": ("hwsim.frontends.onnx_export", "save_onnx"),
    "QuantizeConfig": ("hwsim.compiler.quantize", "QuantizeConfig"),
    "quantize_static": ("hwsim.compiler.quantize", "quantize_static"),
    "quantize_dynamic": ("hwsim.compiler.quantize", "quantize_dynamic"),
    "quantize_config_for": ("hwsim.sim.run", "quantize_config_for"),
    "save_qgraph": ("hwsim.compiler.serialize", "save_qgraph"),
    "load_qgraph": ("hwsim.compiler.serialize", "load_qgraph"),
    "VerifyOptions": ("hwsim.verify", "VerifyOptions"),
    "verify_graph": ("hwsim.verify", "verify_graph"),
    "ArrayConfig": ("hwsim.sim.config", "ArrayConfig"),
    "load_array_config": ("hwsim.sim.config", "load_array_config"),
    "simulate_qgraph": ("hwsim.sim.graph", "simulate_qgraph"),
    "run_model": ("hwsim.sim.run", "run_model"),
    "estimate_energy": ("hwsim.report.evaluate", "estimate_energy"),
    "HOROWITZ_45NM": ("hwsim.energy", "HOROWITZ_45NM"),
    "load_energy_table": ("hwsim.energy", "load_energy_table"),
    "ModelSource": ("hwsim.report.evaluate", "ModelSource"),
    "evaluate": ("hwsim.report.evaluate", "evaluate"),
    "write_report": ("hwsim.report", "write_report"),
    "generate_vectors": ("hwsim.vectors.generate", "generate_vectors"),
    "check_vectors": ("hwsim.vectors", "check_vectors"),
    "load_layer_vectors": ("hwsim.vectors", "load_layer_vectors"),
    "HwsimError": ("hwsim.errors", "HwsimError"),
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562)."""
    try:
        module, attr = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'hwsim' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
