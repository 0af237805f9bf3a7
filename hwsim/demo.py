"""``hwsim demo``: the built-in digits CNN end to end, in well under a minute.

:func:`run_demo` quantizes the packaged digits CNN (int8 per-channel weights, dyadic
requantization), simulates it on the 16×16 weight-stationary array (the defaults of
:class:`hwsim.sim.config.ArrayConfig`, as ``examples/arrays/ws16x16.toml``), cross-checks
float / fake-quant / golden / cycle model (fast, and stepped on one input) bit for bit,
writes the report (``<out>/report``) and the golden vectors (``<out>/vectors``, then
re-verified), and returns the summary table the command prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwsim.commands.options import DEFAULT_BATCH
from hwsim.energy import HOROWITZ_45NM
from hwsim.report import exactness_text, summary_text, write_report
from hwsim.report.evaluate import DEMO_MODEL, Evaluation, ModelSource, evaluate
from hwsim.sim.config import ArrayConfig
from hwsim.vectors import check_vectors
from hwsim.vectors.generate import generate_vectors

#: Evaluation inputs of the demo (0: all the demo's test set).
DEMO_SAMPLES = 0


def demo_array() -> ArrayConfig:
    """The demo's array: 16×16 weight-stationary with the ArrayConfig defaults."""
    return ArrayConfig(rows=16, cols=16, dataflow="ws")


@dataclass(frozen=True, eq=False)
class DemoResult:
    """What the demo produced: the evaluation, files written, vector check, summary text."""

    evaluation: Evaluation
    report_files: dict[str, Path]
    vectors_dir: Path
    vector_problems: list[str]
    summary: str

    @property
    def ok(self) -> bool:
        """Every normative executor pair bit-exact and the vector set verifies."""
        return self.evaluation.report.all_exact and not self.vector_problems

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible result (``hwsim demo --json``)."""
        from hwsim.report import to_json_dict

        return {
            "ok": self.ok,
            "report": to_json_dict(self.evaluation.report),
            "report_files": {k: str(v) for k, v in self.report_files.items()},
            "vectors_dir": str(self.vectors_dir),
            "vector_problems": self.vector_problems,
            "timings_s": dict(self.evaluation.timings),
        }


def run_demo(
    out_dir: str | Path = "hwsim-demo",
    *,
    samples: int = DEMO_SAMPLES,
    stepped_samples: int = 1,
    progress: Callable[[str], None] = lambda _: None,
    batch: int = DEFAULT_BATCH,
) -> DemoResult:
    """Run the demo, writing into ``out_dir`` (``report/`` and ``vectors/``); the executors
    run ``batch`` inputs at a time (results do not depend on it)."""
    out = Path(out_dir)
    config = demo_array()
    src = ModelSource(DEMO_MODEL, samples=samples)
    ev = evaluate(src, config, HOROWITZ_45NM, verify=True, stepped_samples=stepped_samples,
                  progress=progress, title="hwsim demo: digits CNN on a 16x16 WS array",
                  batch=batch)
    progress(f"writing the report to {out / 'report'}")
    files = write_report(out / "report", ev.report)
    vec = generate_vectors(out / "vectors", src, config, simulated=(ev.qgraph, ev.sim1),
                           progress=progress)
    progress("re-verifying the vectors")
    problems = check_vectors(vec, regenerate=False)
    n_layers = sum(1 for n in ev.qgraph.nodes if n.op in ("conv", "gemm"))
    text = summary_text(ev.report) + "\n" + exactness_text(ev.report) + (
        f"\nvectors: {n_layers} conv/gemm layers in {out / 'vectors'} "
        f"({'verified' if not problems else f'{len(problems)} problem(s)'})\n"
        f"report:  {out / 'report' / 'report.html'}\n"
    )
    return DemoResult(ev, files, vec, problems, text)
