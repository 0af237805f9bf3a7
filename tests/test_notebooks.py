"""Every notebook in notebooks/ runs top to bottom without an error (issue 14).

Each notebook is executed by nbclient in a fresh ``python3`` kernel of this interpreter
(ipykernel installed in the same environment; its kernel command ``python`` is resolved by
jupyter_client to ``sys.executable``), with a scratch directory as the working directory, so
notebooks that write files (the demo writes ``hwsim-demo/``) leave the tree untouched.
Notebooks are committed without outputs: every figure they state is computed when they run.
The QAT notebook needs PyTorch (the ``qat`` extra, part of the ``test`` extra); it is skipped
when torch is not installed.
"""

from __future__ import annotations

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


def _execute(nb, cwd: Path):
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(cwd)}})
    return client.execute()


def test_notebooks_exist():
    names = {p.name for p in NOTEBOOKS}
    assert {"demo.ipynb", "01_number_formats.ipynb", "02_calibration.ipynb", "03_mac_array.ipynb",
            "04_design_space.ipynb", "05_golden_vectors.ipynb",
            "06_qat_to_silicon.ipynb"} <= names


def test_kernel_is_this_interpreter(tmp_path):
    """The ``python3`` kernel runs in this environment (where hwsim is installed)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import sys\nprint(sys.prefix)")]
    _execute(nb, tmp_path)
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
def test_notebook_runs(path, tmp_path):
    if path.name in NEEDS:
        pytest.importorskip(NEEDS[path.name])
    nb = nbformat.read(path, as_version=4)
    _execute(nb, tmp_path)  # raises CellExecutionError naming the cell on any error
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    assert any(c.outputs for c in nb.cells if c.cell_type == "code")
