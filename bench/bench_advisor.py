"""Benchmark: the MIG layout advisor on the demand mixes in bench/advisor/*.yaml (p4d, p5, p6-b200 and
g7e: the 7-slice A100/H100/B200 and the 4-slice RTX PRO 6000).

Bars (from the issue), checked for every mix: the plan is at most one node above the proven lower
bound, never uses more nodes than the naive choices (one all-balanced pool; one all-<profile> pool
per profile), and takes under 1 s (solver time; the SciPy import is paid once, before timing).
Prints per-mix time and nodes against the naive choices, and the nodes saved across the suite.
Exits 1 when a bar is missed.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpu_slicing import advisor  # noqa: E402

SUITE = ROOT / "bench" / "advisor"
BAR_SECONDS = 1.0
MAX_GAP = 1
MIN_MIXES = 20
REQUIRED_TYPES = {"p4d.24xlarge", "p5.48xlarge", "p6-b200.48xlarge", "g7e.48xlarge"}


def main() -> int:
    files = sorted(SUITE.glob("*.yaml"))
    specs = [(f.stem, advisor.load_demand(yaml.safe_load(f.read_text()))) for f in files]
    advisor.advise("p4d.24xlarge", {"1g.5gb": 1})  # warm-up: solver start-up, placement cache
    header = f"{'MIX':28} {'TYPE':16} {'SLICES':>6} {'NODES':>5} {'LB':>4} {'GAP':>3} {'NAIVE':>5} " \
             f"{'SAVED':>5} {'POOLS':>5} {'TIME':>7}"
    print(header)
    failures: list[str] = []
    saved_total, naive_total, nodes_total, worst_time, worst_gap = 0, 0, 0, 0.0, 0
    for name, spec in specs:
        start = time.perf_counter()
        plan = advisor.advise_spec(spec)
        seconds = time.perf_counter() - start
        naive = plan.best_naive
        saved = naive - plan.total_nodes if naive is not None else 0
        saved_total += saved
        naive_total += naive or 0
        nodes_total += plan.total_nodes if naive is not None else 0
        worst_time, worst_gap = max(worst_time, seconds), max(worst_gap, plan.gap)
        print(f"{name:28} {spec.instance_type:16} {sum(plan.demand.values()):6} {plan.total_nodes:5} "
              f"{plan.lower_bound:4} {plan.gap:3} {naive if naive is not None else '-':>5} {saved:5} "
              f"{len(plan.pools):5} {seconds * 1000:5.0f}ms")
        if plan.gap > MAX_GAP:
            failures.append(f"{name}: {plan.total_nodes} nodes, {plan.gap} above the lower bound {plan.lower_bound}")
        if naive is not None and plan.total_nodes > naive:
            failures.append(f"{name}: {plan.total_nodes} nodes, worse than the naive {naive}")
        if seconds >= BAR_SECONDS:
            failures.append(f"{name}: {seconds:.2f}s (bar {BAR_SECONDS:.0f} s)")
    types = {spec.instance_type for _, spec in specs}
    if len(specs) < MIN_MIXES or not REQUIRED_TYPES <= types:
        failures.append(f"the suite needs >= {MIN_MIXES} mixes covering {', '.join(sorted(REQUIRED_TYPES))}, "
                        f"has {len(specs)} for {', '.join(sorted(types))}")
    print(f"\n{len(specs)} mixes on {os.cpu_count()} CPU(s): max time {worst_time * 1000:.0f} ms, "
          f"max gap to the lower bound {worst_gap} node(s)")
    print(f"nodes saved against the best naive choice: {saved_total} "
          f"({nodes_total} nodes instead of {naive_total})")
    for f in failures:
        print(f"FAIL {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
