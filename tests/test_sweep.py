"""Tests of hwsim.sweep: grid loading, local processes == in-process == Dask cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwsim.errors import ConfigError
from hwsim.sim.config import load_array_config
from hwsim.sweep import (
    GemmWorkload,
    SweepGrid,
    grid_points,
    load_grid,
    pareto_front,
    run_sweep,
    write_sweep,
)

ROOT = Path(__file__).resolve().parents[1]
WORKLOAD = GemmWorkload("two-gemms", ((48, 72, 16), (8, 200, 10)), seed=5)


def small_grid() -> SweepGrid:
    base = load_array_config(ROOT / "examples" / "arrays" / "ws16x16.toml")
    return SweepGrid(arrays=((4, 4), (16, 16)), dataflows=("ws", "os"), sram_kib=(1, 64),
                     acc_bits=(16, 32), base=base)


def test_example_grid_loads_and_expands():
    """The shipped grid parses; points are the full product in documented order."""
    g = load_grid(ROOT / "examples" / "sweeps" / "small.toml")
    pts = grid_points(g)
    assert len(pts) == 3 * 3 * 2 * 2
    assert pts[0].label == "8x8-ws-32K-acc24" and pts[-1].label == "32x32-is-256K-acc32"
    assert g.energy_table.name == "horowitz45"


def test_every_example_grid_loads():
    """Every shipped grid file parses and expands."""
    files = sorted((ROOT / "examples" / "sweeps").glob("*.toml"))
    assert len(files) >= 2
    for f in files:
        assert grid_points(load_grid(f))


def test_grid_errors_name_the_key(tmp_path):
    """Bad grids raise ConfigError naming the key."""
    p = tmp_path / "g.toml"
    p.write_text("[sweep]\narrays = [[8, 8]]\ndataflows = ['ws']\nsram_kib = [64]\n"
                 "acc_bits = [32]\ncolour = 1\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['colour'\]"):
        load_grid(p)
    p.write_text("[sweep]\narrays = []\n")
    with pytest.raises(ConfigError, match="arrays: expected a non-empty list"):
        load_grid(p)
    p.write_text("[sweep\n")
    with pytest.raises(ConfigError, match="bad TOML"):
        load_grid(p)


def test_local_processes_equal_in_process():
    """Local process pool and in-process evaluation give identical results, in order."""
    g = small_grid()
    serial = run_sweep(WORKLOAD, g, workers=0)
    parallel = run_sweep(WORKLOAD, g, workers=2)
    assert serial == parallel
    assert [r["index"] for r in serial] == list(range(16))
    # 1 KiB buffers cannot hold two 16x16 tiles of 32-bit partial sums: reported, not raised
    bad = [r for r in serial if r["status"] != "ok"]
    assert bad and all(r["status"].startswith("invalid: array") for r in bad)
    # a 16-bit accumulator overflows on K=200 sums, a 32-bit one never does
    ok = [r for r in serial if r["status"] == "ok"]
    assert any(r["overflow_events"] > 0 for r in ok if r["acc_bits"] == 16)
    assert all(r["overflow_events"] == 0 for r in ok if r["acc_bits"] == 32)


def test_dask_local_cluster_equals_local_run():
    """A sweep on a Dask LocalCluster returns the same results as the local run."""
    distributed = pytest.importorskip("dask.distributed", reason="dask[distributed] not installed")
    g = small_grid()
    local = run_sweep(WORKLOAD, g, workers=0)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        remote = run_sweep(WORKLOAD, g, scheduler=cluster.scheduler_address)
    assert remote == local


def test_pareto_and_outputs(tmp_path):
    """Pareto points are not dominated; CSV/JSON/PNG written."""
    res = run_sweep(WORKLOAD, small_grid(), workers=0)
    front = pareto_front(res)
    assert all(res[i]["overflow_events"] == 0 for i in front)
    assert any(res[i]["overflow_events"] > 0 for i in pareto_front(res, allow_overflow=True))
    ok = [r for r in res if r["status"] == "ok" and r["overflow_events"] == 0]
    for i in front:
        for r in ok:
            assert not (r["cycles"] < res[i]["cycles"] and r["energy_pj"] < res[i]["energy_pj"])
    for r in ok:
        if res.index(r) not in front:
            assert any(res[i]["cycles"] <= r["cycles"] and res[i]["energy_pj"] <= r["energy_pj"]
                       for i in front)
    written = write_sweep(tmp_path, res)
    doc = json.loads(written["json"].read_text())
    assert doc["pareto"] == [res[i]["index"] for i in front]
    assert written["png"].read_bytes().startswith(b"\x89PNG")
    assert written["csv"].read_text().splitlines()[0].startswith("index,label,rows,cols")


def _gemm_onnx(path: Path) -> Path:
    """One Gemm (12 → 6) + Relu on [1, 12] inputs."""
    onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).normal(0, 0.5, (6, 12)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["g"], transB=1, name="fc"),
         helper.make_node("Relu", ["g"], ["y"], name="relu")],
        "fc", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 12])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6])],
        [numpy_helper.from_array(w, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_model_workload_matches_direct_evaluation_and_cli(tmp_path, capsys):
    """A model sweep point equals evaluate() on that array; ``hwsim sweep`` writes results."""
    from hwsim.cli import main
    from hwsim.report.evaluate import ModelSource, evaluate
    from hwsim.sweep import ModelWorkload

    model = _gemm_onnx(tmp_path / "fc.onnx")
    grid = SweepGrid(arrays=((4, 4),), dataflows=("ws", "is"), sram_kib=(16,), acc_bits=(32,))
    res = run_sweep(ModelWorkload(ModelSource(str(model))), grid, workers=0)
    for r, point in zip(res, grid_points(grid), strict=False):
        ev = evaluate(ModelSource(str(model)), point.array_config(grid.base), verify=False)
        assert r["cycles"] == ev.report.total_cycles
        assert r["energy_pj"] == ev.report.total_energy_pj
    gfile = tmp_path / "g.toml"
    gfile.write_text("[sweep]\narrays = [[4, 4], [8, 8]]\ndataflows = ['ws']\n"
                     "sram_kib = [16]\nacc_bits = [32]\n")
    out = tmp_path / "sw"
    assert main(["sweep", str(model), "--grid", str(gfile), "--workers", "0",
                 "--out", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["results"]) == 2 and doc["pareto"]
    assert (out / "pareto.png").stat().st_size > 0
    assert main(["sweep", str(model), "--grid", str(tmp_path / "none.toml")]) == 2
    assert main(["sweep", str(tmp_path / "none.onnx"), "--grid", str(gfile)]) == 2
