"""Model-scale speed of hwsim's executors on a ResNet-18-shaped network, against ONNX Runtime.

Builds the float ResNet-18-shaped model of :mod:`resnet18` (224×224, width 64, 1000 classes,
1.8 GMAC per image; ``--quick``: 32×32, width 8, 10 classes), quantizes it

* with hwsim (static PTQ, min-max calibration on ``--calib`` seeded random images, compiled
  for a 16×16 weight-stationary array: int8 per-channel weights, int8 activations, the
  array's dyadic requantization and 32-bit accumulator), and
* with ``onnxruntime.quantization.quantize_static`` after ORT's ``quant_pre_process`` (QDQ,
  per-channel int8 weights, uint8 activations, min-max calibration through a
  ``CalibrationDataReader`` over the same images),

and prints, in one run, images/s of: ONNX Runtime int8 (the reference), ONNX Runtime float32,
hwsim's integer golden model (``run_golden``), the float64 fake-quant reference
(``run_fakequant``) and the cycle model in fast mode (``simulate_qgraph``: values, cycles and
per-layer counters), each as a ratio to its ONNX Runtime reference (golden and fast mode
against ORT int8, fake-quant against ORT float32), best of ``--repeat`` runs over a batch of
``--images`` images — the executors timed in rounds, one call each per round, each call after
a pause of 0.5 s so that none is timed while another's threads still spin — and the peak
RSS of this process. Then ``hwsim verify`` runs in a
subprocess on 64 images with ``--batch 16``; its peak RSS is the ``VmHWM`` the child reads
from ``/proc/self/status`` when it finishes (``getrusage(RUSAGE_CHILDREN)``, also printed,
counts the pages a forked child inherits from this process before ``exec``).

Targets (issue 10), printed as ``TARGET ... PASS|MISS``: golden ≥ 1/3 ORT int8, fake-quant
≥ 1/3 ORT float32, fast mode ≥ 1/3 ORT int8, ``hwsim verify`` (64 images, ``--batch 16``)
peak RSS < 2 GiB. ONNX Runtime runs with its default thread settings.

Usage: python benchmarks/bench_models.py [--quick] [--images 8] [--repeat 5] [--no-verify]
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from resnet18 import INPUT_NAME, macs_per_image, random_images, resnet18_onnx  # noqa: E402

FULL = {"input_size": 224, "width": 64, "num_classes": 1000}
QUICK = {"input_size": 32, "width": 8, "num_classes": 10}
RATIO_TARGET = 1 / 3
VERIFY_IMAGES = 64
VERIFY_BATCH = 16
VERIFY_RSS_LIMIT = 2 * 1024 ** 3
#: The hwsim command line, run in a subprocess with this interpreter. For the memory target
#: the child reports its own peak RSS (VmHWM of its post-exec address space): a forked
#: child's rusage ``ru_maxrss`` also counts the pages it inherited from this (large) process
#: before ``exec``, which would overstate hwsim's peak.
HWSIM = [sys.executable, "-c", "import sys; from hwsim.cli import main; sys.exit(main())"]
HWSIM_HWM = [sys.executable, "-c", (
    "import sys\n"
    "from hwsim.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "with open('/proc/self/status') as f:\n"
    "    hwm = [ln.split()[1] for ln in f if ln.startswith('VmHWM:')]\n"
    "print('BENCH_VMHWM_KB', hwm[0] if hwm else '', file=sys.stderr)\n"
    "sys.exit(rc)\n")]
#: Stop repeating a measurement once this much time has been spent on it (seconds).
TIME_BUDGET = 60.0
#: Pause before each timed call (seconds), see :func:`round_robin_times`.
SETTLE = 0.5


def round_robin_times(fns: list[Callable[[], object]], repeat: int,
                      budget: float = TIME_BUDGET) -> list[tuple[float, int]]:
    """(best wall time, timed calls) of each of ``fns``: one untimed warm-up call each,
    then ``repeat`` rounds calling every function once, each call after a pause of
    :data:`SETTLE` s so that no executor is timed while another one's worker threads are
    still busy (ONNX Runtime's threads spin for a while after a run); a function stops
    being timed once ``budget`` s were spent on it."""
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    runs = [0] * len(fns)
    spent = [0.0] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            if runs[i] and spent[i] >= budget:
                continue
            time.sleep(SETTLE)
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            spent[i] += dt
            best[i] = min(best[i], dt)
            runs[i] += 1
    return list(zip(best, runs, strict=True))


def peak_rss(who: int) -> int:
    """Peak resident set size in bytes (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(who).ru_maxrss * 1024


def gib(n: int) -> str:
    return f"{n / 1024 ** 3:.2f} GiB"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def ort_sessions(model_path: Path, calib: np.ndarray, tmp: Path):
    """ORT float32 and QDQ int8 sessions (default session options) and the options used."""
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self, images: np.ndarray) -> None:
            self.it = iter([{INPUT_NAME: images[i:i + 1]} for i in range(len(images))])

        def get_next(self):  # noqa: ANN201 - ORT's interface
            return next(self.it, None)

    from onnxruntime.quantization.shape_inference import quant_pre_process

    # ORT's recommended pre-processing (shape inference, graph optimisation: BN folded into
    # the convs), then QDQ quantization; ORT's advice and per-tensor warnings are muted.
    pre_path, int8_path = tmp / "model_pre.onnx", tmp / "model_int8_qdq.onnx"
    logging.disable(logging.WARNING)
    try:
        quant_pre_process(str(model_path), str(pre_path), skip_symbolic_shape=True)
        quantize_static(str(pre_path), str(int8_path), Reader(calib),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                        calibrate_method=CalibrationMethod.MinMax)
    finally:
        logging.disable(logging.NOTSET)
    opts = ort.SessionOptions()
    providers = ["CPUExecutionProvider"]
    fp32 = ort.InferenceSession(str(model_path), opts, providers=providers)
    int8 = ort.InferenceSession(str(int8_path), opts, providers=providers)
    return fp32, int8, opts


def run_verify_cli(model_path: Path, calib: np.ndarray, size: int, tmp: Path) -> str:
    """Run ``hwsim verify`` on 64 images with ``--batch 16`` in a subprocess; the result line."""
    help_text = subprocess.run([*HWSIM, "verify", "--help"], capture_output=True, text=True,
                               check=False).stdout
    if "--batch" not in help_text:
        return ("TARGET hwsim verify 64 images --batch 16 peak RSS < 2 GiB: "
                "not measurable: --batch missing")
    calib_path, inputs_path = tmp / "calib.npy", tmp / "inputs.npy"
    np.save(calib_path, calib)
    np.save(inputs_path, random_images(VERIFY_IMAGES, size, seed=3))
    args = ["verify", str(model_path), "--calib", str(calib_path), "--inputs",
            str(inputs_path), "--batch", str(VERIFY_BATCH)]
    t0 = time.perf_counter()
    proc = subprocess.run([*HWSIM_HWM, *args], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    hwm = [ln.split()[1:] for ln in proc.stderr.splitlines() if ln.startswith("BENCH_VMHWM_KB")]
    if proc.returncode not in (0, 1) or not hwm or not hwm[-1]:
        err = [ln for ln in proc.stderr.strip().splitlines() if "BENCH_VMHWM" not in ln]
        return (f"TARGET hwsim verify 64 images --batch 16 peak RSS < 2 GiB: not measured: "
                f"exit {proc.returncode}: {(err or ['no peak RSS reported'])[-1]}")
    rss = int(hwm[-1][0]) * 1024
    children = peak_rss(resource.RUSAGE_CHILDREN)
    note = (f" (VmHWM of the hwsim process; rusage of children, which also counts pages "
            f"inherited at fork: {gib(children)})")
    summary = (proc.stdout.strip().splitlines() or [""])[-1]
    print(f"hwsim verify MODEL --calib ({len(calib)} images) --inputs ({VERIFY_IMAGES} "
          f"images) --batch {VERIFY_BATCH}: exit {proc.returncode}, {elapsed:.1f} s; {summary}")
    return (f"TARGET hwsim verify 64 images --batch 16 peak RSS < 2 GiB: {gib(rss)}{note} "
            f"-> {verdict(rss < VERIFY_RSS_LIMIT)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="small model (32x32, width 8, 10 classes): checks that the script runs")
    ap.add_argument("--images", type=int, default=None,
                    help="images per timed batch (default 8; 4 with --quick)")
    ap.add_argument("--calib", type=int, default=8, help="calibration images (default 8)")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs, best taken (default 5)")
    ap.add_argument("--no-verify", action="store_true", help="skip the hwsim verify RSS run")
    args = ap.parse_args()

    import onnx
    import onnxruntime as ort

    from hwsim.compiler.quantize import quantize_static
    from hwsim.frontends.onnx import load_onnx
    from hwsim.reference.fakequant_exec import run_fakequant
    from hwsim.reference.golden_exec import run_golden
    from hwsim.sim.config import ArrayConfig
    from hwsim.sim.graph import simulate_qgraph
    from hwsim.sim.run import quantize_config_for
    from hwsim.verify import calibration_batches

    shape = QUICK if args.quick else FULL
    size = shape["input_size"]
    n_img = args.images or (4 if args.quick else 8)
    model = resnet18_onnx(**shape)
    macs = macs_per_image(**shape)
    calib = random_images(args.calib, size, seed=2)
    x = random_images(n_img, size, seed=1)
    feeds = {INPUT_NAME: x}
    cfg = ArrayConfig(rows=16, cols=16, dataflow="ws")

    with tempfile.TemporaryDirectory(prefix="hwsim-bench-") as tmpdir:
        tmp = Path(tmpdir)
        model_path = tmp / "resnet18.onnx"
        onnx.save(model, str(model_path))
        t0 = time.perf_counter()
        fp32, int8, opts = ort_sessions(model_path, calib, tmp)
        t_ort_q = time.perf_counter() - t0
        t0 = time.perf_counter()
        qg = quantize_static(load_onnx(model), calibration_batches(INPUT_NAME, calib),
                             quantize_config_for(cfg))
        t_hw_q = time.perf_counter() - t0

        threads = opts.intra_op_num_threads
        print(f"model: ResNet-18 shape {size}x{size}, width {shape['width']}, "
              f"{shape['num_classes']} classes, {macs / 1e9:.3f} GMAC/image; batch of {n_img} "
              f"images, best of {args.repeat}; calibration {args.calib} images "
              f"(ORT quantize_static {t_ort_q:.1f} s, hwsim quantize_static {t_hw_q:.1f} s)")
        print(f"onnxruntime {ort.__version__}: intra_op_num_threads={threads} "
              f"({'default: one per physical core' if threads == 0 else 'set'}), "
              f"inter_op_num_threads={opts.inter_op_num_threads}; os.cpu_count()={os.cpu_count()}"
              f"; hwsim cycle model: {cfg.rows}x{cfg.cols} {cfg.dataflow} array")

        fast_res = {}

        def fast() -> None:
            fast_res["r"] = simulate_qgraph(qg, feeds, cfg)

        gold_res = {}

        def golden() -> None:
            gold_res["r"] = run_golden(qg, feeds)

        rows = [
            ("onnxruntime int8 (QDQ)", lambda: int8.run(None, feeds), None),
            ("onnxruntime float32", lambda: fp32.run(None, feeds), None),
            ("hwsim golden model", golden, "onnxruntime int8 (QDQ)"),
            ("hwsim fake-quant (float64)", lambda: run_fakequant(qg, feeds),
             "onnxruntime float32"),
            ("hwsim cycle model, fast", fast, "onnxruntime int8 (QDQ)"),
        ]
        ips: dict[str, float] = {}
        print(f"{'executor':<28} {'images/s':>10} {'ms/image':>10} {'runs':>5}  ratio")
        best = round_robin_times([fn for _, fn, _ in rows], args.repeat)
        for (name, _fn, ref), (t, runs) in zip(rows, best, strict=True):
            ips[name] = n_img / t
            ratio = f"{ips[name] / ips[ref]:.3f} x {ref}" if ref else "(reference)"
            print(f"{name:<28} {ips[name]:>10.2f} {1e3 * t / n_img:>10.1f} {runs:>5}  {ratio}")
        res = fast_res["r"]
        gold = gold_res["r"]
        same = all(np.array_equal(gold.codes[t], res.codes[t]) for t in gold.codes)
        mac_layers = [c for c in res.layers if c.unit == "array"]
        util = sum(c.macs for c in mac_layers) / (cfg.rows * cfg.cols * res.total_cycles)
        print(f"cycle model (fast): {res.total_cycles / n_img:,.0f} cycles/image over "
              f"{len(res.layers)} layers ({len(mac_layers)} on the array), utilisation "
              f"{util:.3f}, overflow events {sum(c.overflow_events for c in res.layers)}; "
              f"values == golden model on every tensor: {'yes' if same else 'NO'}")
        print(f"peak RSS of this process: {gib(peak_rss(resource.RUSAGE_SELF))}")

        lines = []
        for label, name, ref in (
                ("golden model >= 1/3 ORT int8", "hwsim golden model", "onnxruntime int8 (QDQ)"),
                ("fake-quant >= 1/3 ORT float32", "hwsim fake-quant (float64)",
                 "onnxruntime float32"),
                ("cycle model fast mode >= 1/3 ORT int8", "hwsim cycle model, fast",
                 "onnxruntime int8 (QDQ)")):
            r = ips[name] / ips[ref]
            ok = r >= RATIO_TARGET and (same or name != "hwsim cycle model, fast")
            lines.append(f"TARGET {label}: {r:.3f} x ({ips[name]:.2f} vs {ips[ref]:.2f} "
                         f"images/s) -> {verdict(ok)}")
        if args.no_verify:
            lines.append("TARGET hwsim verify 64 images --batch 16 peak RSS < 2 GiB: "
                         "not measured (--no-verify)")
        else:
            lines.append(run_verify_cli(model_path, calib, size, tmp))
    if args.quick:
        print("(--quick: small model; the targets refer to the 224x224 model)")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
