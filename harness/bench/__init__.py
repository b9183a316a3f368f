"""`saga-compare bench`: each style against its bare engine, closed loop or open-model sweep.

- ``load``: the closed loop and the open model (arrivals by the clock);
- ``workload``: what runs -- happy-path sagas, or a variant's floors
  (harness/bench/floors/choreography.py, harness/bench/floors/orchestration.py);
- ``resources``, ``spans``, ``measure``: CPU and memory by process, per-step p95, one run;
- ``analysis``: ratios to the floors, tracing's cost, knees, medians over repeats;
- ``run``: the whole comparison; ``cold``: cold start in a fresh process;
- ``markdown``, ``plots``: bench.md and the SVG charts.
"""

from harness.bench.run import Bench, BenchFailed, BenchPlan, Style

__all__ = ["Bench", "BenchFailed", "BenchPlan", "Style"]
