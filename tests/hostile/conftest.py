"""Fixtures of the hostile-input suite (issue 9); the builders are in hostile_util."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hostile_util import RNG_SEED, save_model, tiny_model


@pytest.fixture
def d(tmp_path: Path) -> Path:
    """A user directory: model.onnx, x.npy (12 inputs), y.npy (labels), array.toml,
    energy.toml and grid.toml, all valid."""
    rng = np.random.default_rng(RNG_SEED)
    save_model(tiny_model(), tmp_path / "model.onnx")
    np.save(tmp_path / "x.npy", rng.normal(size=(12, 1, 8, 8)).astype(np.float32))
    np.save(tmp_path / "y.npy", rng.integers(0, 3, size=12))
    (tmp_path / "array.toml").write_text('rows = 4\ncols = 4\ndataflow = "ws"\n')
    (tmp_path / "energy.toml").write_text('[energy]\nname = "mine"\ndram_pj_per_64b = 1000.0\n')
    (tmp_path / "grid.toml").write_text(
        '[sweep]\narrays = [[4, 4]]\ndataflows = ["ws"]\nsram_kib = [64]\nacc_bits = [32]\n')
    return tmp_path
