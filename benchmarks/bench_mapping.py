"""DRAM traffic of the mapper's choice against the compulsory bound (specs/cycle_model.md
§C6.2, §C6.4) on bench_array.py's ResNet-50 GEMM shapes.

Per layer and dataflow: the mapper's mapping, its DRAM bytes, the compulsory bytes `D_min`
(each operand read once, the output written once; the GEMM's `A` counted as stored, M·K
bytes, as in the bench's GEMM view), their ratio, and the legacy fixed fold order's bytes
beside it (§C6.5), with both models' stall cycles (the mapper's fill apart). Target (issue
15), ``TARGET ... PASS|MISS``: ratio ≤ 1.5 on every layer whose per-tile working set fits,
i.e. where some mapping of the mapper's space captures the reuse of A, W and Y at once
(:func:`hwsim.sim.mapping.reuse_fits`); other layers are listed as ``no-fit``.

Usage: python benchmarks/bench_mapping.py [--rows 32] [--cols 32] [--dataflow ws|is|os|all]
       [--objective dram|energy|cycles] [--input-kb 256] [--weight-kb 256] [--output-kb 128]
"""

from __future__ import annotations

import argparse
import time

from bench_array import SHAPES

from hwsim.sim.config import ArrayConfig
from hwsim.sim.dataflows import GemmShape, get_dataflow
from hwsim.sim.mapping import choose_mapping, mapping_memory, reuse_fits
from hwsim.sim.memory import fixed_gemm_memory

TARGET = 1.5


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--cols", type=int, default=32)
    ap.add_argument("--dataflow", default="all", choices=("ws", "is", "os", "all"))
    ap.add_argument("--objective", default="dram", choices=("dram", "energy", "cycles"))
    ap.add_argument("--input-kb", type=int, default=256)
    ap.add_argument("--weight-kb", type=int, default=256)
    ap.add_argument("--output-kb", type=int, default=128)
    args = ap.parse_args()
    flows = ("ws", "is", "os") if args.dataflow == "all" else (args.dataflow,)
    print(f"array {args.rows}x{args.cols}, SRAM {args.input_kb}/{args.weight_kb}/"
          f"{args.output_kb} KB, objective {args.objective}")
    print(f"{'df':<3} {'layer':<10} {'M':>5} {'K':>5} {'N':>5} {'mapping':<24} "
          f"{'mapper B':>10} {'D_min B':>10} {'ratio':>6} {'fixed B':>10} {'fixed/D':>8} "
          f"{'stall':>8} {'fill':>6} {'fixed stall':>11} {'search s':>8} {'':>6}")
    worst, misses, checked = 0.0, 0, 0
    for df in flows:
        cfg = ArrayConfig(rows=args.rows, cols=args.cols, dataflow=df,
                          input_sram_bytes=args.input_kb * 1024,
                          weight_sram_bytes=args.weight_kb * 1024,
                          output_sram_bytes=args.output_kb * 1024, objective=args.objective)
        flow = get_dataflow(df)
        for name, m, k, n in SHAPES:
            shape = GemmShape(m, k, n)
            unique = m * k  # 8-bit activations: the GEMM's A as stored
            t0 = time.perf_counter()
            mp = choose_mapping(flow, shape, cfg, unique, 8)
            dt = time.perf_counter() - t0
            mem = mapping_memory(mp, flow, shape, cfg, unique, 8)
            old = fixed_gemm_memory(flow, shape, cfg, unique, 8)
            got = mem.dram_read_bytes + mem.dram_write_bytes
            fixed = old.dram_read_bytes + old.dram_write_bytes
            ratio = got / mem.compulsory_bytes
            fits = reuse_fits(flow, shape, cfg, unique, 8)
            verdict = "no-fit"
            if fits:
                checked += 1
                worst = max(worst, ratio)
                ok = ratio <= TARGET
                misses += not ok
                verdict = "PASS" if ok else "MISS"
            print(f"{df:<3} {name:<10} {m:>5} {k:>5} {n:>5} {mp.label:<24} {got:>10} "
                  f"{mem.compulsory_bytes:>10} {ratio:>6.3f} {fixed:>10} "
                  f"{fixed / mem.compulsory_bytes:>8.3f} {mem.stall_cycles:>8} "
                  f"{mem.fill_stall_cycles:>6} {old.stall_cycles:>11} {dt:>8.2f} {verdict:>6}")
    print(f"TARGET mapper DRAM <= {TARGET} x compulsory on every layer whose working set fits: "
          f"{checked} layers checked, worst ratio {worst:.3f} -> "
          f"{'PASS' if checked and not misses else 'MISS'}")


if __name__ == "__main__":
    main()
