"""Benchmark: plan capacity for 20 pools and 100 workloads; prints the median time (bar: < 50 ms).

`plan_capacity` runs on every `pulumi preview` and `make plan`, so it must stay interactive even for
a large cluster. The scenario is seeded: mixed GPUs, layouts, time-slicing, node groups and NodePools,
selectors and taints, and a share of workloads that cannot fit (their suggestions cost the most).
"""
from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpu_slicing import catalog  # noqa: E402
from gpu_slicing.capacity import PoolCapacity, WorkloadDemand, plan_capacity  # noqa: E402
from gpu_slicing.sharing import parse_sharing  # noqa: E402

TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
TOLERATE = [{"key": "nvidia.com/gpu", "operator": "Exists"}]
BAR_MS = 50.0
RUNS = 30


def scenario(seed: int = 7) -> tuple[list[PoolCapacity], list[WorkloadDemand]]:
    rng = random.Random(seed)
    itypes = ["p4d.24xlarge", "p4de.24xlarge", "p5.48xlarge", "p5e.48xlarge", "g5.48xlarge", "g6e.12xlarge",
              "p6-b200.48xlarge", "g7e.48xlarge", "p5.4xlarge"]
    pools = []
    for i in range(20):
        itype = itypes[i % len(itypes)]
        model = catalog.instance_type(itype).gpu
        names = sorted(catalog.named_layouts(model))
        layout = catalog.named_layouts(model)[rng.choice([n for n in names if n != "all-enabled"])]
        sharing = parse_sharing({"timeSlicing": {"replicas": rng.choice([2, 4])}}, "bench") if i % 4 == 0 else None
        kind = "nodePool" if i % 3 == 0 else "nodeGroup"
        lo = 0 if kind == "nodePool" else rng.randint(0, 2)
        desired = lo if kind == "nodePool" else lo + rng.randint(0, 2)
        pools.append(PoolCapacity.from_layout(f"pool-{i}", kind, itype, layout, "mixed", lo, desired,
                                              desired + rng.randint(1, 4), {"team": f"t{i % 5}"}, [TAINT], sharing))
    workloads = []
    for j in range(100):
        p = rng.choice(pools)
        offered = [r for r, n in p.per_node.items() if n] or ["nvidia.com/gpu"]
        pinned = rng.random() < 0.5
        workloads.append(WorkloadDemand(
            f"w-{j}", rng.choice(offered), 1 if rng.random() < 0.8 else 2, rng.randint(1, 40),
            p.name if pinned else None, {} if pinned else {"team": p.labels["team"]}, TOLERATE))
    return pools, workloads


def main() -> int:
    pools, workloads = scenario()
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        plan = plan_capacity(pools, workloads)
        times.append((time.perf_counter() - start) * 1000)
    median = statistics.median(times)
    print(f"plan_capacity: {len(pools)} pools, {len(workloads)} workloads "
          f"({len(plan.errors)} errors, {len(plan.idle_pools)} idle pools): median {median:.1f} ms over {RUNS} runs "
          f"(bar {BAR_MS:.0f} ms)")
    return 0 if median < BAR_MS else 1


if __name__ == "__main__":
    sys.exit(main())
