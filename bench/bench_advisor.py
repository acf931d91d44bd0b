"""Benchmark: the MIG layout advisor on the demand mixes in bench/advisor/*.yaml (p4d, p5, p6-b200 and
g7e: the 7-slice A100/H100/B200 and the 4-slice RTX PRO 6000), then the fleet advisor on the pod demands
in bench/fleet/*.yaml (pods stated in GPU memory, up to 10 classes, 8 candidate types or every type).

Bars (from the issue), checked for every mix: the plan is at most one node above the proven lower
bound, never uses more nodes than the naive choices (one all-balanced pool; one all-<profile> pool
per profile), and takes under 1 s (solver time; the SciPy import is paid once, before timing).
Prints per-mix time and nodes against the naive choices, and the nodes saved across the suite.
Fleet bars: the plan meets its proven lower bound, costs no more than either naive choice, and takes
under 2 s. Exits 1 when a bar is missed.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpu_slicing import advisor, fleet_advisor  # noqa: E402

SUITE = ROOT / "bench" / "advisor"
FLEET_SUITE = ROOT / "bench" / "fleet"
FLEET_BAR_SECONDS = 2.0
MIN_FLEET_DEMANDS = 8
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
    failures += fleet_bench()
    for f in failures:
        print(f"FAIL {f}")
    return 1 if failures else 0


def fleet_bench() -> list[str]:
    """The fleet advisor on every pod demand of bench/fleet: cost, proven bound, naive choices, time."""
    files = sorted(FLEET_SUITE.glob("*.yaml"))
    demands = [(f.stem, fleet_advisor.load_fleet_demand(yaml.safe_load(f.read_text()))) for f in files]
    print(f"\n{'POD DEMAND':32} {'TYPES':>5} {'PODS':>11} {'$/H':>9} {'BOUND':>9} {'NAIVE':>9} {'SAVED':>9} "
          f"{'TIME':>7}")
    failures: list[str] = []
    worst, saved_total, widest = 0.0, 0.0, (0, 0)
    for name, demand in demands:
        start = time.perf_counter()
        plan = fleet_advisor.advise_fleet(demand)
        seconds = time.perf_counter() - start
        naive = [n.cost_per_hour for n in plan.naive if n.cost_per_hour is not None]
        best = min(naive) if naive else None
        saved = best - plan.cost_per_hour if best is not None else 0.0
        saved_total += saved
        worst = max(worst, seconds)
        if demand.instance_types is not None:
            widest = max(widest, (len(demand.instance_types), len(demand.pods)))
        pods = f"{len(demand.pods)}/{sum(c.replicas for c in demand.pods)}"
        print(f"{name:32} {len(plan.candidates):5} {pods:>11} {plan.cost_per_hour:9.2f} {plan.lower_bound:9.2f} "
              f"{f'{best:.2f}' if best is not None else '-':>9} {saved:9.2f} {seconds * 1000:5.0f}ms")
        if plan.gap:
            failures.append(f"{name}: ${plan.cost_per_hour}/h, ${plan.gap}/h above the lower bound")
        if any(plan.cost_per_hour > n + 1e-9 for n in naive):
            failures.append(f"{name}: ${plan.cost_per_hour}/h, worse than a naive choice ({naive})")
        if seconds >= FLEET_BAR_SECONDS:
            failures.append(f"{name}: {seconds:.2f}s (bar {FLEET_BAR_SECONDS:.0f} s)")
    if len(demands) < MIN_FLEET_DEMANDS or widest < (8, 10):
        failures.append(f"the fleet suite needs >= {MIN_FLEET_DEMANDS} demands, one of 8 types and 10 pod classes")
    print(f"\n{len(demands)} pod demands: max time {worst * 1000:.0f} ms; ${saved_total:,.2f}/h saved against the "
          "best naive choice in all")
    return failures


if __name__ == "__main__":
    sys.exit(main())
