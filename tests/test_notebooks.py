"""Every notebook in notebooks/ runs top to bottom without an error (issue 14).

Each notebook is executed by nbclient in a fresh kernel of this very interpreter: the tests
write a kernelspec whose command is ``sys.executable -m ipykernel_launcher`` (ipykernel is a
test extra) to a scratch directory put first on ``JUPYTER_PATH``, so no user or system
``python3`` kernelspec can substitute another Python. A scratch directory is the working
directory, so notebooks that write files (the demo writes ``hwsim-demo/``) leave the tree
untouched.
Notebooks are committed without outputs: every figure they state is computed when they run.
The QAT notebook needs PyTorch (the ``qat`` extra, part of the ``test`` extra); it is skipped
when torch is not installed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
#: Seconds one cell may take before the run fails (a notebook is meant to take well under a
#: minute in total; the bound only catches a hang).
CELL_TIMEOUT = 600
#: Notebooks that need an optional package, and which.
NEEDS = {"06_qat_to_silicon.ipynb": "torch"}


#: Name of the kernelspec written by the ``kernel`` fixture.
KERNEL = "hwsim-test-python"


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """A kernelspec running ``sys.executable``, first on ``JUPYTER_PATH`` for the module."""
    root = tmp_path_factory.mktemp("jupyter")
    spec_dir = root / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "hwsim tests", "language": "python"}))
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join([str(root)] + ([old] if old else []))
    yield KERNEL
    if old is None:
        del os.environ["JUPYTER_PATH"]
    else:
        os.environ["JUPYTER_PATH"] = old


def _execute(nb, cwd: Path, kernel_name: str):
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name=kernel_name,
                                     resources={"metadata": {"path": str(cwd)}})
    return client.execute()


def test_notebooks_exist():
    names = {p.name for p in NOTEBOOKS}
    assert {"demo.ipynb", "01_number_formats.ipynb", "02_calibration.ipynb", "03_mac_array.ipynb",
            "04_design_space.ipynb", "05_golden_vectors.ipynb",
            "06_qat_to_silicon.ipynb"} <= names


def test_kernel_is_this_interpreter(tmp_path, kernel):
    """The kernel runs in this environment (where hwsim is installed)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import sys\nprint(sys.prefix)")]
    _execute(nb, tmp_path, kernel)
    out = nb.cells[0].outputs[0]["text"].strip()
    assert Path(out).resolve() == Path(sys.prefix).resolve()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i} holds outputs"
            assert cell.execution_count is None, f"{path.name} cell {i} was executed"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path, kernel):
    if path.name in NEEDS:
        pytest.importorskip(NEEDS[path.name])
    nb = nbformat.read(path, as_version=4)
    _execute(nb, tmp_path, kernel)  # raises CellExecutionError naming the cell on any error
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    assert any(c.outputs for c in nb.cells if c.cell_type == "code")
