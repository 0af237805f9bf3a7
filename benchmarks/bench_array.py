"""Speed of the array model on ResNet-like GEMM shapes, against ONNX Runtime MatMulInteger.

Prints, per shape and overall: fast mode's effective GMAC/s (exact values + closed-form
timing + requantization, specs/cycle_model.md §C5) and the cycle-stepped kernel's
PE-updates/s (R·C PEs updated per simulated cycle), each next to ONNX Runtime's
MatMulInteger GMAC/s on the same uint8 × int8 operands measured in the same run.
Targets (issue 10), printed as ``TARGET ... PASS|MISS``: fast mode ≥ 0.5 × ORT MatMulInteger
overall; stepped ≥ 2·10^9 PE-updates/s overall (best of 2 runs per shape). ORT and fast
mode take turns (3 rounds of ≥ 0.3 s batches each, best per-call time of each).

Usage: python benchmarks/bench_array.py [--rows 16] [--cols 16] [--dataflow ws] [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from hwsim.arith import RequantConfig, make_requant_params
from hwsim.sim.config import ArrayConfig
from hwsim.sim.simulate import simulate_gemm

FAST_TARGET = 0.5
STEPPED_TARGET = 2e9

#: (name, M, K, N): ResNet-50 convolutions at batch 1 as GEMMs (M = output pixels,
#: K = C_in·kh·kw, N = C_out) and the classifier.
SHAPES = [
    ("conv2_3x3", 3136, 576, 64),
    ("conv2_1x1", 3136, 64, 256),
    ("conv3_3x3", 784, 1152, 128),
    ("conv4_3x3", 196, 2304, 256),
    ("conv5_3x3", 49, 4608, 512),
    ("fc", 1, 2048, 1000),
]


def ort_matmul_integer(m: int, k: int, n: int) -> ort.InferenceSession:
    node = helper.make_node("MatMulInteger", ["A", "B", "a_zp"], ["Y"])
    graph = helper.make_graph(
        [node], "mmi",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [m, k]),
         helper.make_tensor_value_info("B", TensorProto.INT8, [k, n]),
         helper.make_tensor_value_info("a_zp", TensorProto.UINT8, [])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [m, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


def best_times(fns, min_time: float = 0.3, repeats: int = 3) -> list[float]:
    """Best per-call time of each function over ``repeats`` rounds; in each round every
    function runs one batch of calls lasting ≥ ``min_time``, the functions taking turns, so
    that a slow phase of the machine falls on all of them alike."""
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            calls = 0
            t0 = time.perf_counter()
            while True:
                fn()
                calls += 1
                dt = time.perf_counter() - t0
                if dt >= min_time:
                    break
            best[i] = min(best[i], dt / calls)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=16)
    ap.add_argument("--cols", type=int, default=16)
    ap.add_argument("--dataflow", default="ws", choices=("ws", "os", "is"))
    ap.add_argument("--quick", action="store_true", help="shorter timing loops")
    args = ap.parse_args()
    cfg = ArrayConfig(rows=args.rows, cols=args.cols, dataflow=args.dataflow)
    min_time = 0.1 if args.quick else 0.3
    rng = np.random.default_rng(0)
    # Load the jitted kernels (compiled or from the Numba cache) outside the timed region.
    warm = make_requant_params(np.full(2, 1e-3), RequantConfig(), zero_point=0)
    for stepped in (False, True):
        simulate_gemm(np.ones((2, 2), np.uint8), np.ones((2, 2), np.int8), np.zeros(2, np.int64),
                      warm, cfg, stepped=stepped)
    print(f"array {cfg.rows}x{cfg.cols} {cfg.dataflow}; onnxruntime {ort.__version__}, "
          f"onnx {onnx.__version__}")
    print(f"{'shape':<10} {'M':>5} {'K':>5} {'N':>5} {'ORT GMAC/s':>11} {'fast GMAC/s':>12} "
          f"{'fast/ORT':>9} {'stepped PE-upd/s':>17} {'stepped/ORT MAC/s':>18}")
    tot = {"macs": 0, "ort": 0.0, "fast": 0.0, "pe": 0, "stepped": 0.0}
    for name, m, k, n in SHAPES:
        a = rng.integers(0, 256, size=(m, k)).astype(np.uint8)
        # 7-bit weights (ORT's reduce_range): MLAS's u8s8 AVX2 kernel (vpmaddubsw) saturates
        # int16 pair sums with full-range int8 weights, so its results would not be exact.
        w = rng.integers(-64, 64, size=(k, n)).astype(np.int8)
        zp = np.array(3, dtype=np.uint8)
        bias = (rng.integers(-20000, 20000, size=n) - 3 * w.astype(np.int64).sum(0)).astype(
            np.int64)
        params = make_requant_params(rng.uniform(1e-5, 1e-4, n), RequantConfig(), zero_point=0)
        sess = ort_matmul_integer(m, k, n)
        feed = {"A": a, "B": w, "a_zp": zp}
        t_ort, t_fast = best_times([lambda: sess.run(None, feed),
                                    lambda: simulate_gemm(a, w, bias, params, cfg)], min_time)
        fast = simulate_gemm(a, w, bias, params, cfg)
        t_step = float("inf")
        for _ in range(2):
            t0 = time.perf_counter()
            stepped = simulate_gemm(a, w, bias, params, cfg, stepped=True)
            t_step = min(t_step, time.perf_counter() - t0)
        if not (np.array_equal(fast.values, stepped.values)
                and np.array_equal(fast.valid_cycles, stepped.valid_cycles)
                and fast.cycles == stepped.cycles):
            raise SystemExit(f"{name}: fast and stepped modes disagree")
        ref = sess.run(None, feed)[0].astype(np.int64) + bias + 3 * w.astype(np.int64).sum(0)
        if not np.array_equal(fast.acc, ref):
            raise SystemExit(f"{name}: accumulators differ from ORT MatMulInteger")
        macs = m * k * n
        pe = stepped.cycles * cfg.rows * cfg.cols
        ort_g, fast_g = macs / t_ort / 1e9, macs / t_fast / 1e9
        pe_s = pe / t_step
        print(f"{name:<10} {m:>5} {k:>5} {n:>5} {ort_g:>11.2f} {fast_g:>12.2f} "
              f"{fast_g / ort_g:>9.3f} {pe_s:>17.3e} {pe_s / (ort_g * 1e9):>18.3f}")
        tot["macs"] += macs
        tot["ort"] += t_ort
        tot["fast"] += t_fast
        tot["pe"] += pe
        tot["stepped"] += t_step
    ort_g = tot["macs"] / tot["ort"] / 1e9
    fast_g = tot["macs"] / tot["fast"] / 1e9
    pe_s = tot["pe"] / tot["stepped"]
    print(f"{'all':<10} {'':>5} {'':>5} {'':>5} {ort_g:>11.2f} {fast_g:>12.2f} "
          f"{fast_g / ort_g:>9.3f} {pe_s:>17.3e} {pe_s / (ort_g * 1e9):>18.3f}")
    print("values: fast == stepped == ORT accumulators on every shape")
    ratio = fast_g / ort_g
    print(f"TARGET fast-mode GEMM >= {FAST_TARGET} x ORT MatMulInteger overall: {ratio:.3f} x "
          f"({fast_g:.2f} vs {ort_g:.2f} GMAC/s) -> "
          f"{'PASS' if ratio >= FAST_TARGET else 'MISS'}")
    print(f"TARGET stepped >= {STEPPED_TARGET:.0e} PE-updates/s: {pe_s:.3e} -> "
          f"{'PASS' if pe_s >= STEPPED_TARGET else 'MISS'}")


if __name__ == "__main__":
    main()
