"""Model sources, resolved in one place for every command and the Python API (issue 11/13).

A MODEL argument is one of (:data:`KINDS`, tried in order; the first whose ``matches`` says
yes loads it):

- ``digits``: the bundled demo CNN (a float ONNX model with its own calibration and test
  data, :mod:`hwsim.data`);
- ``*.json``: hwsim's integer graph as written by ``hwsim quantize --format hwsim``
  (:func:`hwsim.compiler.serialize.load_qgraph`, with its ``.npz`` sibling);
- any other file: an ONNX model, quantized (QDQ / QOperator: imported with its own scales
  and zero points under an engine profile, specs/ir.md §8) or float (calibrated and
  quantized by the compiler, specs/ir.md §6).

A quantized source (quantized ONNX, hwsim JSON) carries its own qparams: it is never
calibrated, and the quantization options of the compiler do not apply to it
(:func:`check_quantized_options` refuses them with one message). Another frontend plugs in
by adding a :class:`SourceKind` with :func:`register_kind` (e.g. ``.tflite``); commands and
the API need no change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hwsim.errors import HwsimError

if TYPE_CHECKING:
    from hwsim.compiler.qgraph import QGraph
    from hwsim.frontends.onnx_quant import ImportedModel
    from hwsim.ir.graph import Graph
    from hwsim.sim.config import ArrayConfig
    from hwsim.verify import VerifyData

__all__ = ["DEMO_MODEL", "KINDS", "MODEL_HELP", "LoadedModel", "SourceKind",
           "check_fixed_batch", "check_quantized_options", "load_model_source", "qgraph_for_array",
           "register_kind", "source_data"]

#: Name that selects the built-in demo model (hwsim/data/digits_cnn.onnx).
DEMO_MODEL = "digits"

#: Help text of every command's MODEL argument.
MODEL_HELP = ("float ONNX model, quantized ONNX model (QDQ or QOperator), int8 .tflite "
              "model, hwsim integer graph QMODEL.json (from hwsim quantize), or 'digits' "
              "(the bundled demo CNN)")

#: Seeded random inputs used when no data is given: this many samples (at least one run of
#: a model with a fixed batch).
RANDOM_SAMPLES = 16


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A resolved MODEL argument.

    ``kind``: the :class:`SourceKind` name that loaded it; ``path``: the file; ``graph``:
    the float IR graph (float sources) or None; ``qgraph``: the integer graph of a
    quantized source (None for a float one: the compiler makes it); ``imported``: the
    quantized-ONNX import (its ONNX model for ONNX Runtime comparisons) or None.
    """

    kind: str
    path: Path
    graph: Graph | None = None
    qgraph: QGraph | None = None
    imported: ImportedModel | None = None

    @property
    def quantized(self) -> bool:
        """True for a source that carries its own qparams (no calibration)."""
        return self.qgraph is not None

    @property
    def name(self) -> str:
        """The model's name (graph name)."""
        g = self.qgraph if self.qgraph is not None else self.graph
        return str(g.name) if g is not None else self.path.stem

    @property
    def input_name(self) -> str:
        """The single graph input (HwsimError for a multi-input model)."""
        ins = self.qgraph.inputs if self.qgraph is not None else self.graph.inputs
        if len(ins) != 1:
            raise HwsimError(f"model {self.name!r} has {len(ins)} inputs; hwsim supports "
                             "single-input models")
        return ins[0]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The declared shape of the input (its leading dimension is the batch)."""
        if self.qgraph is not None:
            return tuple(self.qgraph.input_shapes[self.input_name])
        return tuple(self.graph.tensors[self.input_name].shape)


@dataclass(frozen=True)
class SourceKind:
    """One kind of MODEL: ``matches(text)`` says whether it is this kind (by name or file
    suffix, reading nothing); ``load(path, profile)`` returns the :class:`LoadedModel`
    (``profile``: engine profile of a quantized import, None for the default)."""

    name: str
    description: str
    matches: Callable[[str], bool]
    load: Callable[[Path, str | None], LoadedModel]


def _load_digits(path: Path, profile: str | None) -> LoadedModel:
    from hwsim.frontends.onnx import load_onnx

    return LoadedModel(DEMO_MODEL, path, graph=load_onnx(str(path)))


def _load_hwsim(path: Path, profile: str | None) -> LoadedModel:
    from hwsim.compiler.serialize import load_qgraph

    return LoadedModel("hwsim", path, qgraph=load_qgraph(path))


def _load_onnx(path: Path, profile: str | None) -> LoadedModel:
    from hwsim.frontends.onnx import load_onnx
    from hwsim.frontends.onnx_quant import is_quantized_onnx, load_quantized_onnx

    try:
        quantized = is_quantized_onnx(str(path))
    except HwsimError:  # not readable as ONNX: the float loader says why
        quantized = False
    if quantized:
        from hwsim.compiler.profiles import host_ort_profile

        im = load_quantized_onnx(str(path), profile or host_ort_profile())
        return LoadedModel("quantized_onnx", path, qgraph=im.qgraph, imported=im)
    return LoadedModel("onnx", path, graph=load_onnx(str(path)))


def _load_tflite(path: Path, profile: str | None) -> LoadedModel:
    """An int8 ``.tflite`` model with its own qparams (specs/ir.md §10), under ``profile``
    (default ``litert_ref``, arithmetic §11.3). Its integer graph is NCHW; the model's own
    NHWC layout is handled by ``hwsim verify`` (:mod:`hwsim.verify_tflite`)."""
    from hwsim.frontends.tflite import load_tflite

    return LoadedModel("tflite", path, qgraph=load_tflite(path, profile or "litert_ref").qgraph)


#: The model kinds, tried in order (the last one takes any file).
KINDS: list[SourceKind] = [
    SourceKind(DEMO_MODEL, "the bundled demo CNN", lambda m: m == DEMO_MODEL, _load_digits),
    SourceKind("hwsim", "hwsim integer graph (.json + .npz)",
               lambda m: m.lower().endswith(".json"), _load_hwsim),
    SourceKind("tflite", "LiteRT / TFLite int8 model (.tflite)",
               lambda m: m.lower().endswith(".tflite"), _load_tflite),
    SourceKind("onnx", "ONNX model, float or quantized (QDQ / QOperator)",
               lambda m: True, _load_onnx),
]


def register_kind(kind: SourceKind) -> None:
    """Add a model kind (e.g. a ``.tflite`` frontend) before the catch-all ONNX kind."""
    if any(k.name == kind.name for k in KINDS):
        raise HwsimError(f"model kind {kind.name!r} is already registered")
    KINDS.insert(len(KINDS) - 1, kind)


def model_path(model: str) -> Path:
    """The file of MODEL (``digits``: the packaged demo ONNX file)."""
    if model == DEMO_MODEL:
        from hwsim.data import demo_model_path

        return demo_model_path()
    return Path(model)


def load_model_source(model: str | Path, *, profile: str | None = None) -> LoadedModel:
    """Resolve and load MODEL (see the module docstring). FileNotFoundError if the file is
    missing; HwsimError for a directory or a file no kind can read."""
    text = str(model)
    if not text.strip():
        raise HwsimError(f"MODEL: empty; expected a {MODEL_HELP}")
    path = model_path(text)
    if not path.is_file():
        if text == DEMO_MODEL:
            raise HwsimError(f"the demo model {path} is not installed")
        if path.exists():
            raise HwsimError(f"model {path}: is not a regular file (a directory?); expected "
                             f"a {MODEL_HELP}")
        raise FileNotFoundError(2, "No such file or directory", str(path))
    kind = next(k for k in KINDS if k.matches(text))
    return kind.load(path, profile)


#: Options of the compiler that a quantized source does not take (option -> args field,
#: value that means "not given").
QUANT_ONLY_OPTIONS: Mapping[str, tuple[str, Any]] = {
    "--calib": ("calib", None), "--observer": ("observer", None),
    "--weights": ("weights", None), "--act-dtype": ("act_dtype", None),
    "--narrow-range": ("narrow_range", False), "--qparams": ("qparams", None),
    "--dynamic": ("dynamic", False),
}


def check_quantized_options(loaded: LoadedModel, given: Mapping[str, Any]) -> None:
    """HwsimError if an option of the compiler was given for a quantized source; ``given``
    maps args fields (calib, observer, ...) to their values. One message for every command."""
    if not loaded.quantized:
        return
    for opt, (field, unset) in QUANT_ONLY_OPTIONS.items():
        if given.get(field, unset) not in (unset, "", None):
            raise HwsimError(f"{opt}: model {loaded.path} is already quantized ({loaded.kind}: "
                             "its own scales and zero points are used, nothing is calibrated); "
                             f"drop {opt} or give the float model")


def qgraph_for_array(qg: QGraph, config: ArrayConfig) -> QGraph:
    """A quantized source's graph on an array: its qparams, weights and requantization as
    imported, the accumulator (width, overflow policy) of the array (specs/cycle_model.md
    §C10), which the cycle model computes with."""
    if qg.acc_bits == config.acc_bits and qg.acc_overflow == config.acc_overflow:
        return qg
    from hwsim.compiler.qgraph import verify_qgraph

    out = dataclasses.replace(qg, acc_bits=config.acc_bits, acc_overflow=config.acc_overflow)
    verify_qgraph(out)
    return out


def _random_inputs(shape: tuple[int, ...], seed: int, fixed: int) -> np.ndarray:
    n = RANDOM_SAMPLES if fixed <= 1 else fixed * max(1, -(-RANDOM_SAMPLES // fixed))
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n,) + tuple(shape[1:])).astype(np.float32)


def check_fixed_batch(loaded: LoadedModel, x: np.ndarray, what: str) -> None:
    """Shapes as declared (issue 13): a model whose input fixes its leading dimension D
    (e.g. a GEMM declared ``[256, 256]``) runs D inputs at once, so ``x`` must hold a
    multiple of D of them; HwsimError naming ``what`` otherwise. A symbolic leading
    dimension (read as 1) takes any number."""
    d = loaded.input_shape[0] if loaded.input_shape else 1
    if d > 1 and x.shape[0] % d:
        raise HwsimError(f"{what}: {x.shape[0]} inputs of shape {tuple(x.shape[1:])}; the "
                         f"model's input {loaded.input_name!r} declares the fixed shape "
                         f"{loaded.input_shape} (leading dimension {d}, not a batch size): "
                         f"give a multiple of {d} inputs")


def source_data(loaded: LoadedModel, calib: str | None = None, inputs: str | None = None,
                labels: str | None = None, *, seed: int = 0, evaluate: bool = True,
                needs_calib: bool = True) -> VerifyData:
    """Calibration set, evaluation inputs and labels of a source (hwsim.verify.VerifyData):
    for a float source as :func:`hwsim.verify.resolve_data` chooses them (the given .npy
    files, the demo model's own data, or seeded random inputs with a warning); for a
    quantized source the inputs only (``calib`` is None: it is not calibrated)."""
    from hwsim.verify import VerifyData, load_array, resolve_data

    shape = loaded.input_shape
    fixed = shape[0] if shape else 1
    if not loaded.quantized and not calib and not inputs and loaded.kind != DEMO_MODEL \
            and fixed > 1:
        # a fixed leading dimension D: the random set holds whole runs of D inputs
        x = _random_inputs(shape, seed, fixed)
        return VerifyData(x, x, None, (f"no --calib/--inputs given: using {x.shape[0]} "
                                       f"seeded random standard-normal inputs (seed {seed}); "
                                       "accuracy is meaningless",))
    if not loaded.quantized:
        data = resolve_data(str(loaded.path), loaded.graph, calib, inputs, labels, seed=seed,
                            evaluate=evaluate, needs_calib=needs_calib)
        check_fixed_batch(loaded, data.inputs, f"--inputs {inputs}" if inputs else "inputs")
        return data
    if calib:
        raise HwsimError(f"--calib: model {loaded.path} is already quantized ({loaded.kind}: "
                         "its own scales and zero points are used, nothing is calibrated); "
                         "drop --calib or give the float model")
    warnings: list[str] = []
    if inputs:
        x = load_array(inputs, "--inputs")
        from hwsim.inputs import check_inputs

        check_inputs(x, shape, f"--inputs {inputs}")
    else:
        x = _random_inputs(shape, seed, fixed)
        warnings.append(f"no --inputs given: using {x.shape[0]} seeded random "
                        f"standard-normal inputs (seed {seed}); accuracy is meaningless")
    check_fixed_batch(loaded, x, f"--inputs {inputs}" if inputs else "inputs")
    y = None
    if labels:
        from hwsim.inputs import check_labels

        # an integer graph records no output shape: the class range is not checked here
        y = np.asarray(load_array(labels, "--labels", kinds="iu"))
        check_labels(y, int(x.shape[0]), 1 << 62, f"--labels {labels}")
    xf = x if isinstance(x, np.memmap) and x.dtype == np.float32 else np.asarray(
        x, dtype=np.float32)
    return VerifyData(None, xf, y, tuple(warnings))
