"""The Python face (issue 13 deliver 3): ``hwsim.__all__`` names importable entry points
with docstrings, ``import hwsim`` imports none of them eagerly, and the README "Scripting"
example runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import hwsim

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_export_resolves_and_is_documented() -> None:
    for name in hwsim.__all__:
        obj = getattr(hwsim, name)
        if name in ("__version__", "HOROWITZ_45NM"):
            continue
        assert (obj.__doc__ or "").strip(), f"hwsim.{name} has no docstring"


def test_import_is_lazy() -> None:
    code = ("import sys, hwsim; heavy = [m for m in ('numpy', 'numba', 'onnx', "
            "'hwsim.sim.graph', 'hwsim.report.evaluate') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def _scripting_example() -> str:
    text = README.read_text()
    section = text.split("## Scripting", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return code


def test_readme_scripting_example_runs(tmp_path) -> None:
    (tmp_path / "example.py").write_text(_scripting_example())
    res = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.splitlines()
    assert lines[0].startswith("bit-exact: True, cycles: ")
    assert lines[1] == "vector set problems: []"
    assert (tmp_path / "mlp-report" / "report.html").is_file()
    assert (tmp_path / "mlp-vectors" / "manifest.json").is_file()
