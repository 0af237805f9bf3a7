"""Options shared by several commands, defined once: ``--batch`` (streamed execution) and
``--progress`` / ``--no-progress`` (bars on stderr, :mod:`hwsim.progress`).

Also argparse ``type=`` callables that validate a value up front (an invalid value is a
one-line usage error, exit 2, naming the option) and :func:`check_output_path`, run before any
work so that an unusable ``--out`` fails in a second, not after the simulation. One meaning
everywhere: ``--samples N`` is N >= 1 (omitted: all inputs); ``--workers N`` is N >= 0 (0: in
this process); ``--acc-bits`` is checked against the one accumulator range of
:func:`hwsim.sim.config.acc_bits_range`.

This module registers no command (it has no ``register``); command modules import it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from hwsim.errors import HwsimError

#: Inputs per batch when --batch is not given (specs/compiler.md §7: results do not depend
#: on it; peak memory grows with it).
DEFAULT_BATCH = 16


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def add_batch_option(p: argparse.ArgumentParser) -> None:
    """``--batch N``: inputs run through every executor N at a time (memory bound)."""
    p.add_argument("--batch", type=_positive_int, default=DEFAULT_BATCH, metavar="N",
                   help=f"inputs per batch: every executor runs on N inputs at a time and "
                        f"results are reduced per batch, so peak memory does not grow with "
                        f"the number of inputs; results do not depend on N "
                        f"(default {DEFAULT_BATCH})")


def add_progress_option(p: argparse.ArgumentParser) -> None:
    """``--progress`` / ``--no-progress`` (default: bars only when stderr is a terminal and
    --json is not given)."""
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars on stderr (default: only when stderr is a terminal "
                        "and --json is not given)")


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Both ``--batch`` and ``--progress``."""
    add_batch_option(p)
    add_progress_option(p)


def progress_enabled(args: argparse.Namespace) -> bool:
    """Whether this command shows bars (hwsim.progress.auto_enabled of its options)."""
    from hwsim.progress import auto_enabled

    return auto_enabled(getattr(args, "progress", None), bool(getattr(args, "json", False)))


def batch_of(args: argparse.Namespace) -> int:
    """The validated --batch value (HwsimError if it is not an integer >= 1)."""
    b = getattr(args, "batch", DEFAULT_BATCH)
    if isinstance(b, bool) or not isinstance(b, int) or b < 1:
        raise HwsimError(f"--batch: expected an integer >= 1, got {b!r}")
    return b


# --- value types and output checks (issue 9) ---------------------------------------

def int_at_least(lo: int, hi: int | None = None):  # noqa: ANN201 - an argparse type
    """An argparse type: an integer ``>= lo`` (and ``<= hi`` if given)."""
    want = f"an integer >= {lo}" if hi is None else f"an integer in [{lo}, {hi}]"

    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected {want}, got {text!r}") from None
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"expected {want}, got {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


#: N ≥ 1 (``--samples``, ``--batch``).
positive_int = int_at_least(1)
#: N ≥ 0 (``--stepped-samples``, ``--sample``, ``--seed``, ``--workers``).
nonneg_int = int_at_least(0)


def size_bytes(text: str) -> int:
    """An argparse type for ``--max-memory``: ``512M``, ``4G``, ``1.5GiB`` → bytes."""
    from hwsim.limits import parse_size

    try:
        return parse_size(text)
    except HwsimError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def check_output_path(path: str | os.PathLike[str], option: str = "--out",
                      directory: bool = True) -> Path:
    """Fail early (HwsimError naming ``option`` and the path) if ``path`` cannot become the
    output directory (``directory=True``) or output file: it is empty, exists with the wrong
    kind, or its nearest existing ancestor is not a directory or refuses new entries (probed
    by creating and removing an empty hidden directory there). Writes nothing else."""
    if not os.fspath(path).strip():
        raise HwsimError(f"{option}: empty path; expected an output "
                         f"{'directory' if directory else 'file'}")
    p = Path(path)
    kind = "directory" if directory else "file"
    if p.exists() or p.is_symlink():
        if directory and not p.is_dir():
            raise HwsimError(f"{option} {p}: exists and is not a directory; expected an "
                             "output directory")
        if not directory and p.is_dir():
            raise HwsimError(f"{option} {p}: is a directory; expected an output file")
        if directory:  # an existing output directory: no probe inside it (a vector set
            # must hold only itself), its permission bits only
            if not os.access(p, os.W_OK | os.X_OK):
                raise HwsimError(f"{option} {p}: directory is not writable")
            return p
    probe = p.parent
    while not probe.exists() and not probe.is_symlink():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise HwsimError(f"{option} {p}: {probe} is not a directory, so the output {kind} "
                         "cannot be created there")
    if probe.is_dir() and not os.access(probe, os.W_OK | os.X_OK):
        raise HwsimError(f"{option} {p}: directory {probe} is not writable")
    if probe.is_dir():  # os.access is not enough (root, read-only or pseudo file systems)
        import tempfile

        try:
            os.rmdir(tempfile.mkdtemp(prefix=".hwsim-probe-", dir=probe))
        except OSError as exc:
            raise HwsimError(f"{option} {p}: cannot create files in {probe} "
                             f"({exc.strerror or exc})") from None
    return p


# --- one option vocabulary (issue 13 deliver 1) ------------------------------------
#
# Every command declares its options through these functions, so a name means one thing
# everywhere. Precedence (one rule, every command): built-in defaults < ARRAY.toml
# (--array) < the command line. ``--requant``, ``--profile``, ``--acc-bits`` and
# ``--acc-overflow`` override the array's requantization unit and accumulator;
# ``--profile`` fixes the requantization datapath, so giving both it and a different
# ``--requant`` is an error.

#: Values of the quantization options (None default: "not given", see QUANT_DEFAULTS).
REQUANT_MODES = ("tflite", "tflite_single", "float32", "dyadic", "custom")
PROFILE_NAMES = ("tflite", "tflite_single", "float32", "dyadic", "ort_cpu", "ort_cpu_avx2",
                 "litert_ref")
WEIGHT_FORMATS = ("int8", "int4", "int4_block", "fp8")
ACT_DTYPES = ("int8", "uint8", "int16", "uint16")
OBSERVERS = ("minmax", "moving_average", "percentile", "mse", "entropy")
ACC_POLICIES = ("wrap", "saturate", "error")
#: What an omitted quantization option means for a float model.
QUANT_DEFAULTS = {"observer": "minmax", "act_dtype": "int8", "requant": "dyadic",
                  "acc_bits": 32, "acc_overflow": "wrap"}


def add_model_argument(p: argparse.ArgumentParser, required: bool = True) -> None:
    """MODEL: every kind of :mod:`hwsim.sources`."""
    from hwsim.sources import MODEL_HELP

    p.add_argument("model", metavar="MODEL", nargs=None if required else "?", help=MODEL_HELP)


def add_data_options(p: argparse.ArgumentParser, *, labels: bool = True, samples: bool = True,
                     samples_help: str = "use the first N inputs (default all)") -> None:
    """--calib, --inputs, --labels, --samples (how many inputs), --seed."""
    p.add_argument("--calib", metavar="X.npy",
                   help="calibration inputs of a float model (float, batch first; default: "
                        "--inputs); a quantized model is never calibrated")
    p.add_argument("--inputs", metavar="X.npy",
                   help="evaluation inputs (float, batch first; default: the demo model's "
                        "test set, else seeded random inputs)")
    if labels:
        p.add_argument("--labels", metavar="Y.npy", help="labels of --inputs (accuracy)")
    if samples:
        p.add_argument("--samples", type=positive_int, default=None, metavar="N",
                       help=samples_help)
    p.add_argument("--seed", type=nonneg_int, default=0,
                   help="seed of random inputs (default 0)")


def add_quant_options(p: argparse.ArgumentParser) -> None:
    """How a float model is quantized, and the datapath (requantization, accumulator)."""
    p.add_argument("--profile", default=None, choices=PROFILE_NAMES,
                   help="engine profile: arithmetic per op type (specs/arithmetic.md §11); "
                        "fixes the requant datapath (default: the array's, else that of "
                        "--requant; for a quantized ONNX model this machine's ONNX Runtime)")
    p.add_argument("--requant", default=None, choices=REQUANT_MODES,
                   help="requantization datapath (default: the array's [requant], else "
                        "dyadic)")
    p.add_argument("--weights", default=None, choices=WEIGHT_FORMATS,
                   help="weight format (default int8 per channel, or int4 for a 4..7-bit "
                        "weight port)")
    p.add_argument("--narrow-range", action="store_true",
                   help="symmetric weights in [-127, 127] (int4: [-7, 7]), as ONNX Runtime "
                        "and TFLite quantize them")
    p.add_argument("--act-dtype", default=None, choices=ACT_DTYPES,
                   help="activation format (asymmetric, per tensor; default int8, or int16 "
                        "for a 16-bit activation port)")
    p.add_argument("--observer", default=None, choices=OBSERVERS,
                   help="activation observer (default minmax)")
    p.add_argument("--qparams", metavar="Q.json", default=None,
                   help="external activation qparams {\"tensors\": {name: {scale, zero_point, "
                        "dtype}}}; the tensors not listed are calibrated")
    p.add_argument("--acc-bits", type=int, default=None, metavar="N",
                   help="accumulator width: act + weight bits .. 32 (default: the array's, "
                        "else 32)")
    p.add_argument("--acc-overflow", default=None, choices=ACC_POLICIES,
                   help="accumulator overflow policy (default: the array's, else wrap)")
    p.add_argument("--dynamic", action="store_true",
                   help="dynamic quantization (activation qparams per input; hwsim verify "
                        "and quantize only: the array runs static graphs)")


def add_array_options(p: argparse.ArgumentParser, *, energy: bool = True,
                      required: bool = False) -> None:
    """--array (and --energy)."""
    p.add_argument("--array", metavar="ARRAY.toml", required=required,
                   help="array configuration (default: 16x16 weight-stationary, as "
                        "examples/arrays/ws16x16.toml); --requant, --profile, --acc-bits and "
                        "--acc-overflow override its fields")
    p.add_argument("--mapping", default=None, choices=("auto", "fixed"),
                   help="how GEMMs are tiled onto the buffers (specs/cycle_model.md §C6.4): "
                        "auto = the mapper (default of an array), fixed = the legacy fold "
                        "order; overrides the array's mapping")
    p.add_argument("--objective", default=None, choices=("dram", "energy", "cycles"),
                   help="what the mapper minimises (§C6.4; default: the array's, dram)")
    if energy:
        p.add_argument("--energy", metavar="TABLE.toml",
                       help="energy table (default: Horowitz ISSCC 2014, 45 nm)")


def add_json_option(p: argparse.ArgumentParser) -> None:
    """--json: one JSON document on stdout."""
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


def _given(args: argparse.Namespace, name: str) -> object:
    return getattr(args, name, None)


def check_datapath_options(args: argparse.Namespace) -> None:
    """--profile and --requant agree (the profile fixes the datapath)."""
    prof, mode = _given(args, "profile"), _given(args, "requant")
    if prof and mode:
        from hwsim.compiler.profiles import get_profile

        fixed = get_profile(prof).requant.mode
        if mode != fixed:
            raise HwsimError(f"--requant {mode}: --profile {prof} fixes the requant datapath "
                             f"({fixed!r}); give one or the other")


def array_from_args(args: argparse.Namespace):  # noqa: ANN201 - ArrayConfig, lazy import
    """The ArrayConfig of --array (default 16x16 ws) with the command-line overrides applied
    (precedence: defaults < ARRAY.toml < command line)."""
    from hwsim.sim.config import ArrayConfig, load_array_config

    path = _given(args, "array")
    config = load_array_config(path) if path else ArrayConfig(rows=16, cols=16, dataflow="ws")
    return with_overrides(config, args, str(path or "the default array"))


def with_overrides(config, args: argparse.Namespace, where: str):  # noqa: ANN001, ANN201
    """``config`` (an ArrayConfig) with --profile / --requant / --acc-bits / --acc-overflow /
    --mapping / --objective of ``args`` applied (the command line wins over the file);
    ConfigError naming the options and ``where`` if the result is not a valid array."""
    import dataclasses

    from hwsim.arith import RequantConfig
    from hwsim.errors import ConfigError

    check_datapath_options(args)
    changes: dict[str, object] = {}
    if _given(args, "profile"):
        changes.update(profile=args.profile, requant=RequantConfig())
    elif _given(args, "requant"):
        changes.update(profile="", requant=RequantConfig(mode=args.requant))
    if _given(args, "acc_bits") is not None:
        changes["acc_bits"] = args.acc_bits
    if _given(args, "acc_overflow"):
        changes["acc_overflow"] = args.acc_overflow
    for name in ("mapping", "objective"):  # §C6.4
        if _given(args, name):
            changes[name] = getattr(args, name)
    if not changes:
        return config
    try:
        return dataclasses.replace(config, **changes)
    except ConfigError as exc:
        opts = ", ".join(f"--{k.replace('_', '-')}" for k in changes if k != "requant"
                         or "profile" not in changes)
        raise ConfigError(f"{opts} over {where}: {exc}") from None


def loaded_from_args(args: argparse.Namespace):  # noqa: ANN201 - LoadedModel, lazy import
    """The :class:`hwsim.sources.LoadedModel` of MODEL, refusing compiler options for a
    quantized source (one message in every command)."""
    from hwsim.sources import check_quantized_options, load_model_source

    loaded = load_model_source(args.model, profile=_given(args, "profile"))
    check_quantized_options(loaded, vars(args))
    return loaded


def source_from_args(args: argparse.Namespace, array: object = None):  # noqa: ANN201
    """The :class:`hwsim.report.evaluate.ModelSource` the options describe."""
    from hwsim.report.evaluate import ModelSource

    if _given(args, "dynamic"):
        raise HwsimError("--dynamic: the array runs static graphs only (activation qparams "
                         "fixed at compile time); use hwsim verify --dynamic")
    return ModelSource(model=args.model, calib=_given(args, "calib"),
                       inputs=_given(args, "inputs"), labels=_given(args, "labels"),
                       samples=_given(args, "samples") or 0, seed=getattr(args, "seed", 0),
                       weights=_given(args, "weights"), observer=_given(args, "observer"),
                       profile=_given(args, "profile") or "",
                       act_dtype=_given(args, "act_dtype"),
                       narrow_range=bool(_given(args, "narrow_range")),
                       qparams=_given(args, "qparams"))


def table_from_args(args: argparse.Namespace):  # noqa: ANN201 - EnergyTable, lazy import
    """The EnergyTable of --energy (default Horowitz 45 nm)."""
    from hwsim.energy import HOROWITZ_45NM, load_energy_table

    return load_energy_table(args.energy) if getattr(args, "energy", None) else HOROWITZ_45NM


# --- workloads without a model (SCALE-Sim inputs, hwsim.topology) ------------------

#: Options that describe a model's data or quantization: meaningless for a topology.
MODEL_ONLY_OPTIONS = ("calib", "inputs", "labels", "weights", "observer", "act_dtype",
                      "narrow_range", "qparams", "dynamic", "samples")


def add_topology_options(p: argparse.ArgumentParser) -> None:
    """--topology LAYERS.csv and --scalesim-cfg ARRAY.cfg (SCALE-Sim inputs)."""
    p.add_argument("--topology", metavar="LAYERS.csv",
                   help="SCALE-Sim topology CSV (conv or 'Layer, M, N, K' GEMM format) "
                        "instead of MODEL: each layer simulated with seeded random operands")
    p.add_argument("--scalesim-cfg", metavar="ARRAY.cfg",
                   help="SCALE-Sim .cfg array (ArrayHeight/Width, SRAM sizes, Dataflow, "
                        "Bandwidth) over --array or the default array")


def topology_from_args(args: argparse.Namespace):  # noqa: ANN201 - layers or None
    """The topology layers when --topology is given (None otherwise); HwsimError for MODEL
    and --topology together, neither, or a model-only option with --topology."""
    topo = getattr(args, "topology", None)
    if topo and args.model:
        raise HwsimError("give either MODEL or --topology LAYERS.csv, not both")
    if not topo:
        if getattr(args, "model", None) is None:
            raise HwsimError("expected MODEL or --topology LAYERS.csv")
        return None
    for field in MODEL_ONLY_OPTIONS:
        if getattr(args, field, None) not in (None, False, ""):
            opt = "--" + field.replace("_", "-")
            raise HwsimError(f"{opt}: --topology workloads have no model data or "
                             "quantization (seeded random operands in the array's formats); "
                             f"drop {opt}")
    from hwsim.topology import load_topology

    return load_topology(topo)


def topology_array_from_args(args: argparse.Namespace):  # noqa: ANN201 - ArrayConfig
    """--array (or the default) with --scalesim-cfg over it, then the command line."""
    from hwsim.sim.config import ArrayConfig, load_array_config

    path = _given(args, "array")
    config = load_array_config(path) if path else ArrayConfig(rows=16, cols=16, dataflow="ws")
    cfg = _given(args, "scalesim_cfg")
    if cfg:
        from hwsim.topology import load_scalesim_cfg

        config = load_scalesim_cfg(cfg, config)
    return with_overrides(config, args, str(cfg or path or "the default array"))
