"""The bundled demo model and its data (made by ``scripts/train_digits.py``).

* ``digits_cnn.onnx`` — a float32 CNN (conv + BatchNorm, depthwise conv, residual add,
  max pool, global average pool, linear) for scikit-learn's 8x8 digits; input ``input``
  ``[N, 1, 8, 8]``, output ``logits`` ``[N, 10]``.
* ``digits_test.npz`` — the held-out split; ``digits_calib.npz`` — 256 calibration images
  from the training split. Both hold ``x`` float32 ``[N, 1, 8, 8]`` already normalised as
  the model expects (``(pixel / 16 - 0.3) / 0.4``) and ``y`` int64 labels.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import numpy as np

from hwsim.errors import HwsimError

#: Splits :func:`load_demo_data` knows.
SPLITS = ("test", "calib")


def demo_model_path() -> Path:
    """Path of the bundled float ONNX model ``digits_cnn.onnx``."""
    return Path(str(files(__name__).joinpath("digits_cnn.onnx")))


def load_demo_data(split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of the demo ``split``: ``"test"`` (held out) or ``"calib"`` (calibration
    images from the training split). ``x`` float32 ``[N, 1, 8, 8]``, ``y`` int64 ``[N]``."""
    if split not in SPLITS:
        raise HwsimError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    with files(__name__).joinpath(f"digits_{split}.npz").open("rb") as f:
        with np.load(f, allow_pickle=False) as z:
            return z["x"], z["y"]
