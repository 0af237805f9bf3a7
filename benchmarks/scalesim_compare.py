"""SCALE-Sim 3.0 against hwsim on a grid of GEMM shapes × dataflows × array shapes
(specs/cycle_model.md §C8).

SCALE-Sim needs ``numpy<2``, so it runs from its own venv (created on first use:
``python3 -m venv VENV && VENV/bin/pip install scalesim 'numpy<2'``) in a subprocess; never
from ``make test``. For every array shape and dataflow the script writes one SCALE-Sim
GEMM topology (``Layer, M, N, K``), an (unused, non-custom) layout file and a ``.cfg``, runs
``python -m scalesim.scale -i gemm -s N`` and parses ``COMPUTE_REPORT.csv`` and
``DETAILED_ACCESS_REPORT.csv``. SCALE-Sim's IFMAP, Filter and OFMAP buffers each get their own
DRAM port of ``--bandwidth`` words/cycle; hwsim's three buffers share one port of that many
bytes/cycle (``dram_bytes_per_cycle``, 8-bit words). The same topology and ``.cfg`` are read back by
:func:`hwsim.topology.load_topology` / :func:`hwsim.topology.load_scalesim_cfg` and every
layer is simulated by hwsim twice: under ``mapping = "fixed"`` (§C6.5, SCALE-Sim's fold
order) and under the mapper (``"auto"``, §C6.4). Output: a Markdown table (stdout and
``OUT/table.md``), one row per layer × dataflow × array:

* SCALE-Sim: ``Total Cycles`` − ``Stall Cycles`` (compute), ``Stall Cycles``, the prefetch
  (``Total Cycles (incl. prefetch)`` − ``Total Cycles``), DRAM reads (IFMAP + Filter) and
  writes (OFMAP), in words = bytes (8-bit words);
* hwsim: ``array_cycles`` (§C5, incl. the requant latency ``L``), then for ``fixed`` and for
  the mapper: ``stall_cycles`` (the mapper's fill in brackets), DRAM read / write bytes.

Usage: python benchmarks/scalesim_compare.py [--venv /tmp/scalesim-venv] [--out DIR]
       [--arrays 16x16,32x32] [--dataflows ws,os,is] [--sram-kb 16,16,8] [--bandwidth 8]
       [--jobs 2] [--shapes grid|resnet50]
"""

from __future__ import annotations

import argparse
import configparser
import csv
import dataclasses
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hwsim.topology import load_scalesim_cfg, load_topology, topology_layer_result

#: (name, M, K, N): small enough for SCALE-Sim's per-cycle replay (~1 k cycles/s here), with
#: operands from far below to far above the buffer halves of the default 16/16/8 KB.
SHAPES = [
    ("g64", 64, 64, 64),
    ("tall_m", 512, 64, 32),
    ("wide_n", 64, 64, 256),
    ("deep_k", 64, 512, 32),
    ("conv3x3", 196, 288, 32),
    ("pw1x1", 196, 64, 128),
    ("fc", 4, 256, 128),
    ("attn_qk", 128, 32, 128),
    ("attn_av", 128, 128, 32),
    ("odd_mid", 100, 144, 48),
    ("odd_small", 97, 75, 33),
    ("conv1", 1024, 27, 16),
]


def ensure_venv(venv: Path) -> Path:
    """The venv's python, creating the venv and installing SCALE-Sim into it if needed."""
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if subprocess.run([str(py), "-c", "import scalesim.scale_sim"],
                      capture_output=True).returncode != 0:
        subprocess.run([str(py), "-m", "pip", "install", "-q", "scalesim", "numpy<2"],
                       check=True)
    return py


def write_inputs(d: Path, run_name: str, rows: int, cols: int, df: str, sram_kb, bw: int):
    d.mkdir(parents=True, exist_ok=True)
    topo = d / "topology.csv"
    topo.write_text("Layer, M, N, K,\n" + "".join(f"{n}, {m}, {nn}, {k},\n"
                                                  for n, m, k, nn in SHAPES))
    layout = d / "layout.csv"
    layout.write_text("Layer name, " + ", ".join(f"f{i}" for i in range(20)) + ",\n"
                      + "".join(f"{n}, " + ", ".join(["1"] * 20) + ",\n" for n, *_ in SHAPES))
    cp = configparser.ConfigParser()
    cp.optionxform = str
    cp["general"] = {"run_name": run_name}
    cp["architecture_presets"] = {
        "ArrayHeight": str(rows), "ArrayWidth": str(cols), "IfmapSramSzkB": str(sram_kb[0]),
        "FilterSramSzkB": str(sram_kb[1]), "OfmapSramSzkB": str(sram_kb[2]),
        "IfmapOffset": "0", "FilterOffset": "10000000", "OfmapOffset": "20000000",
        "Bandwidth": str(bw), "Dataflow": df, "MemoryBanks": "1",
        "ReadRequestBuffer": "32", "WriteRequestBuffer": "32"}
    # SCALE-Sim 3.0 with InterfaceBandwidth = USER takes the IFMAP and Filter DRAM read
    # bandwidths from these [layout] keys and only the OFMAP one from Bandwidth
    # (single_layer_sim.py): all three get `bw` words/cycle, each on its own port.
    cp["layout"] = {"IfmapCustomLayout": "False", "FilterCustomLayout": "False",
                    "IfmapSRAMBankBandwidth": str(bw), "IfmapSRAMBankNum": "1",
                    "IfmapSRAMBankPort": "2", "FilterSRAMBankBandwidth": str(bw),
                    "FilterSRAMBankNum": "1", "FilterSRAMBankPort": "2"}
    cp["sparsity"] = {"SparsitySupport": "false", "SparseRep": "ellpack_block",
                      "OptimizedMapping": "false", "BlockSize": "8",
                      "RandomNumberGeneratorSeed": "40"}
    cp["run_presets"] = {"InterfaceBandwidth": "USER", "UseRamulatorTrace": "False"}
    cfg = d / "array.cfg"
    with cfg.open("w") as f:
        cp.write(f)
    return topo, layout, cfg


def _csv(path: Path) -> list[list[str]]:
    rows = [[c.strip() for c in r] for r in csv.reader(path.open())]
    return [r for r in rows[1:] if r and r[0]]


def run_scalesim(py: Path, d: Path, run_name: str, topo, layout, cfg) -> list[dict]:
    out = d / "results"
    log = d / "scalesim.log"
    with log.open("w") as f:
        subprocess.run([str(py), "-m", "scalesim.scale", "-t", str(topo), "-l", str(layout),
                        "-c", str(cfg), "-p", str(out), "-i", "gemm", "-s", "N"],
                       check=True, stdout=f, stderr=subprocess.STDOUT)
    comp = _csv(out / run_name / "COMPUTE_REPORT.csv")
    det = _csv(out / run_name / "DETAILED_ACCESS_REPORT.csv")
    res = []
    for c, a in zip(comp, det, strict=True):
        total_pf, total, stall = int(float(c[1])), int(float(c[2])), int(float(c[3]))
        res.append({"compute": total - stall, "stall": stall, "prefetch": total_pf - total,
                    "rd": int(float(a[12])) + int(float(a[15])), "wr": int(float(a[18]))})
    return res


def run_hwsim(topo: Path, cfg_path: Path, mapping: str) -> list[dict]:
    cfg = dataclasses.replace(load_scalesim_cfg(cfg_path), mapping=mapping)
    res = []
    for layer in load_topology(topo):
        c = topology_layer_result(layer, cfg).counters
        res.append({"array": int(c.array_cycles), "stall": int(c.stall_cycles),
                    "fill": int(c.fill_stall_cycles), "rd": int(c.dram_read_bytes),
                    "wr": int(c.dram_write_bytes), "mapping": c.mapping})
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", default="/tmp/scalesim-venv")
    ap.add_argument("--out", default="/tmp/scalesim-compare")
    ap.add_argument("--arrays", default="16x16,32x32")
    ap.add_argument("--dataflows", default="ws,os,is")
    ap.add_argument("--sram-kb", default="16,16,8", help="ifmap,filter,ofmap KB")
    ap.add_argument("--bandwidth", type=int, default=8, help="DRAM words (bytes) per cycle")
    ap.add_argument("--jobs", type=int, default=2, help="SCALE-Sim runs in parallel")
    ap.add_argument("--shapes", default="grid", choices=("grid", "resnet50"),
                    help="grid: SHAPES; resnet50: bench_array.py's ResNet-50 shapes (slow in "
                         "SCALE-Sim: minutes per layer)")
    args = ap.parse_args()
    if args.shapes == "resnet50":
        from bench_array import SHAPES as RESNET

        SHAPES[:] = list(RESNET)
    sram = [int(x) for x in args.sram_kb.split(",")]
    arrays = [tuple(int(v) for v in a.split("x")) for a in args.arrays.split(",")]
    flows = args.dataflows.split(",")
    out = Path(args.out)
    py = ensure_venv(Path(args.venv))
    points = []
    for rows, cols in arrays:
        for df in flows:
            name = f"a{rows}x{cols}_{df}"
            points.append((rows, cols, df, name,
                           write_inputs(out / name, name, rows, cols, df, sram, args.bandwidth)))
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        ss = list(pool.map(lambda p: run_scalesim(py, out / p[3], p[3], *p[4]), points))
    t_ss = time.perf_counter() - t0
    lines = [f"SRAM {sram[0]}/{sram[1]}/{sram[2]} KB (ifmap/filter/ofmap), DRAM "
             f"{args.bandwidth} B/cycle, 8-bit words; SCALE-Sim time {t_ss:.0f} s", "",
             "| layer | M×K×N | df | array | SS compute | SS stall | SS prefetch | SS DRAM rd | "
             "SS DRAM wr | hw array | fixed stall | fixed rd | fixed wr | mapper | "
             "mapper stall (fill) | mapper rd | mapper wr |",
             "|" + "---|" * 17]
    for (rows, cols, df, _name, (topo, _l, cfg)), s in zip(points, ss, strict=True):
        fx = run_hwsim(topo, cfg, "fixed")
        au = run_hwsim(topo, cfg, "auto")
        for (lname, m, k, n), a, f, u in zip(SHAPES, s, fx, au, strict=True):
            lines.append(
                f"| {lname} | {m}×{k}×{n} | {df} | {rows}×{cols} | {a['compute']} | "
                f"{a['stall']} | {a['prefetch']} | {a['rd']} | {a['wr']} | {f['array']} | "
                f"{f['stall']} | {f['rd']} | {f['wr']} | `{u['mapping']}` | "
                f"{u['stall']} ({u['fill']}) | {u['rd']} | {u['wr']} |")
    text = "\n".join(lines) + "\n"
    (out / "table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
