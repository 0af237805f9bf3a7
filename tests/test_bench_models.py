"""The ResNet-18-shaped benchmark model (benchmarks/resnet18.py) and a smoke run of
benchmarks/bench_models.py --quick (speed itself is judged by the benchmark, not here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

from resnet18 import (  # noqa: E402
    INPUT_NAME,
    OUTPUT_NAME,
    macs_per_image,
    random_images,
    resnet18_onnx,
)

SMALL = {"input_size": 32, "width": 8, "num_classes": 10}


def test_resnet18_imports_and_matches_onnxruntime_float() -> None:
    """hwsim imports the model (BN folded into the convs, §C1 lowering) and its float
    executor agrees with ONNX Runtime; the cycle model counts the MACs the module states."""
    from hwsim.compiler.quantize import quantize_static
    from hwsim.frontends.onnx import load_onnx
    from hwsim.reference.float_exec import run_float
    from hwsim.sim.config import ArrayConfig
    from hwsim.sim.graph import simulate_qgraph
    from hwsim.sim.run import quantize_config_for
    from hwsim.verify import calibration_batches

    model = resnet18_onnx(**SMALL)
    graph = load_onnx(model)
    ops = [n.op for n in graph.nodes]
    assert ops.count("conv2d") == 20 and ops.count("add") == 8 and ops.count("gemm") == 1
    assert "batchnormalization" not in ops
    x = random_images(3, SMALL["input_size"])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {INPUT_NAME: x})[0]
    got = run_float(graph, {INPUT_NAME: x})[OUTPUT_NAME]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))

    cfg = ArrayConfig(rows=8, cols=8, dataflow="ws")
    qg = quantize_static(graph, calibration_batches(INPUT_NAME, x), quantize_config_for(cfg))
    res = simulate_qgraph(qg, {INPUT_NAME: x[:1]}, cfg)
    assert sum(c.macs for c in res.layers) == macs_per_image(**SMALL)
    assert macs_per_image() == 1_814_073_344  # the 224x224 model: 1.8 GMAC per image


def test_resnet18_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="multiple of 32"):
        resnet18_onnx(input_size=48)
    with pytest.raises(ValueError, match="width"):
        macs_per_image(width=0)


def test_bench_models_quick_runs() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH / "bench_models.py"), "--quick", "--no-verify",
         "--repeat", "1", "--images", "1", "--calib", "2"],
        capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "values == golden model on every tensor: yes" in out
    targets = [ln for ln in out.splitlines() if ln.startswith("TARGET ")]
    assert len(targets) == 4
    assert all(ln.endswith(("PASS", "MISS")) for ln in targets[:3])
