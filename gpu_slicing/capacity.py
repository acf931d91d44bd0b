"""Whether the workloads fit the pools: the numbers the seed guide got wrong (docs/facts.md §1.6: 56 replicas of
mig-1g.5gb on all-balanced p4d run 16 per node, not 56).

`plan_capacity` places every workload's replicas on the nodes its pools will run (a node group's
desiredSize, a NodePool's maxNodes), says for each workload whether it fits, and if not the smallest
change that fits it without stranding the pool's other workloads; and what the nodes cost. What one node
advertises is `gpu_slicing.advertise`; taints and tolerations are `gpu_slicing.scheduling`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping, Sequence

from .advertise import STRATEGIES, advertise, compute_slices_per_gpu, node_resources
from .catalog import INSTANCE_TYPES, PRICES_AS_OF, eni_max_pods, PRICES_REGION, InstanceType, MigLayout, named_layouts
from .errors import ConfigError
from .scheduling import blocks, taint_effect, tolerates
from .sharing import WHOLE_GPU, Sharing

KINDS = ("nodeGroup", "nodePool")
# What a pool's cost is computed from. Spot prices move by Availability Zone and hour (EC2 Spot price history)
# and no dated table of them is kept here, so a spot pool is priced only from the stack's own pricePerHour;
# otherwise its on-demand list price is shown as the most it costs (AWS: Spot runs at up to 90% off on-demand).
ON_DEMAND_LIST, STACK_PRICE, SPOT_UNPRICED = "on-demand list", "the stack's pricePerHour", "spot, not priced"

# --- plan inputs ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PoolCapacity:
    """A node group or NodePool as the planner sees it.

    A managed node group runs exactly `nodes_desired` nodes: nothing here scales it (no Cluster
    Autoscaler, and Karpenter does not manage node groups; docs/facts.md §10), so that is all its pods get. A
    NodePool starts empty and Karpenter launches nodes for pending pods up to `nodes_max`, of whichever
    of its instance types (`per_type`) fits them best.
    """

    name: str
    kind: str  # "nodeGroup" | "nodePool"
    instance_type: str  # the largest type of a NodePool: what its limits are sized for
    layout: str
    strategy: str
    nodes_min: int
    nodes_desired: int
    nodes_max: int
    per_node: Mapping[str, int]
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: Sequence[Mapping[str, str]] = ()
    mig_layout: MigLayout | None = None  # for compute-slice use of custom layouts (named ones are looked up)
    sharing: Sharing | None = None  # so a suggested layout keeps the pool's time-slicing
    per_type: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # instance type -> per_node
    pod_limit: Mapping[str, int] = field(default_factory=dict)  # instance type -> pods a node runs (none: no limit)
    daemon_sets: tuple[str, ...] = ()  # pods every node runs before any workload's
    capacity_type: str = "on-demand"  # "on-demand" | "spot" (a NodePool allowing spot gets spot first)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"pool {self.name}: kind {self.kind!r} is not one of {KINDS}")
        for t in self.types:
            if t not in INSTANCE_TYPES:
                raise ValueError(f"pool {self.name}: unknown instance type {t!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"pool {self.name}: strategy {self.strategy!r} is not one of {STRATEGIES}")
        if not 0 <= self.nodes_min <= self.nodes_desired <= self.nodes_max:
            raise ValueError(f"pool {self.name}: need 0 <= min <= desired <= max, got "
                             f"{self.nodes_min}/{self.nodes_desired}/{self.nodes_max}")

    @classmethod
    def from_layout(cls, name: str, kind: str, instance_type: str, layout: MigLayout, strategy: str,
                    nodes_min: int, nodes_desired: int, nodes_max: int, labels: Mapping[str, str] | None = None,
                    taints: Sequence[Mapping[str, str]] = (), sharing: Sharing | None = None) -> PoolCapacity:
        """A pool whose `per_node` is computed by `node_resources` (sharing resolved against the node)."""
        per_node, sharing = advertise(instance_type, layout, strategy, sharing, key=name)
        return cls(name, kind, instance_type, layout.name, strategy, nodes_min, nodes_desired, nodes_max,
                   per_node, dict(labels or {}), tuple(taints), layout, sharing)

    @property
    def instance(self) -> InstanceType:
        return INSTANCE_TYPES[self.instance_type]

    @property
    def types(self) -> dict[str, Mapping[str, int]]:
        """Instance type -> what one node of it advertises (one entry for a node group)."""
        return dict(self.per_type) or {self.instance_type: self.per_node}

    @property
    def nodes_available(self) -> int:
        """Nodes the pool's pods can use: a node group's desired size, a NodePool's maximum."""
        return self.nodes_desired if self.kind == "nodeGroup" else self.nodes_max

    def pods_for_workloads(self, instance_type: str) -> int | None:
        """Workload pods a node of `instance_type` runs: its pod limit less the DaemonSets (None: no limit known)."""
        limit = self.pod_limit.get(instance_type)
        return None if limit is None else limit - len(self.daemon_sets)

    @property
    def best_pods(self) -> int | None:
        """Workload pods the pool's roomiest node runs (None: no limit known)."""
        pods = [n for t in self.types if (n := self.pods_for_workloads(t)) is not None]
        return max(pods) if pods else None

    def best_per_node(self, resource: str) -> int:
        """Units of `resource` on the pool's roomiest node type (what its pods can count on at most)."""
        return max((t.get(resource, 0) for t in self.types.values()), default=0)

    def node_labels(self) -> dict[str, str]:
        """The pool's labels plus the ones every node carries anyway (its OS, and arch if the pool sets none)."""
        return {"kubernetes.io/os": "linux", "kubernetes.io/arch": self.instance.k8s_arch, **self.labels}


@dataclass(frozen=True)
class WorkloadDemand:
    """`replicas` pods, each requesting `per_replica` of `resource` (one pod must fit on one node).

    `alternatives`: other resources any one of which serves a pod instead, in order of preference (a DRA
    claim that several device kinds match: fallback profiles, a memory floor); such pods take one unit."""

    name: str
    resource: str
    per_replica: int
    replicas: int
    pool: str | None = None
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: Sequence[Mapping[str, str]] = ()
    alternatives: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.per_replica < 1 or self.replicas < 0:
            raise ValueError(f"workload {self.name}: per_replica must be >= 1 and replicas >= 0")
        if self.alternatives and (self.per_replica != 1 or len(set(self.kinds)) != len(self.kinds)):
            raise ValueError(f"workload {self.name}: alternatives are for one-unit pods, each resource once")

    @property
    def kinds(self) -> tuple[str, ...]:
        """Every resource that serves a pod, the first choice first."""
        return (self.resource, *self.alternatives)

    @property
    def kinds_text(self) -> str:
        return " or ".join(self.kinds)

    @property
    def demand(self) -> Demand:
        return (self.kinds if self.alternatives else self.resource, self.per_replica, self.replicas)

    def per_node(self, p: PoolCapacity) -> int:
        """Units of the resources that serve its pods on the pool's roomiest node."""
        return sum(p.best_per_node(r) for r in self.kinds)

    @property
    def requested(self) -> int:
        return self.per_replica * self.replicas


# --- plan outputs ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    """An error or warning about one workload; `str()` is the sentence to show. `field` is the config
    field at fault: the workload's own (`replicas`, `gpus`, `profile`) or its pool's (`desiredSize`,
    `maxNodes`, `migLayout`)."""

    workload: str
    level: str  # "error" | "warning"
    message: str
    field: str = "replicas"
    pool: str | None = None

    def __str__(self) -> str:
        return f"workload {self.workload}: {self.message}"


@dataclass(frozen=True)
class WorkloadVerdict:
    name: str
    resource: str
    requested: int
    pools: tuple[str, ...]
    capacity: int  # free units of `resource` it could get on the nodes its pools run (after earlier workloads)
    level: str  # "ok" | "error": what does not fit on the nodes that will exist is an error (FACTS 10)
    message: str
    suggestion: str | None = None
    field: str = "replicas"
    kinds: tuple[str, ...] = ()  # with alternatives: every resource that serves a pod
    counted: tuple[tuple[str, int], ...] = ()  # with alternatives: units it holds of each, once all are placed

    @property
    def fits(self) -> bool:
        return self.level != "error"


@dataclass(frozen=True)
class Launch:
    """What Karpenter launches for a NodePool's pods: `nodes` of `instance_type` (the cheapest type that
    holds them), or for a node group the nodes it runs."""

    instance_type: str
    nodes: int
    usd_per_hour: float  # for a spot pool not priced: at on-demand list, the most it costs
    usd_per_node_hour: float = 0.0
    basis: str = "on-demand list"  # ON_DEMAND_LIST, STACK_PRICE or SPOT_UNPRICED

    @property
    def priced(self) -> bool:
        return self.basis != SPOT_UNPRICED


@dataclass(frozen=True)
class PoolReport:
    pool: PoolCapacity
    requested: Mapping[str, int]  # units of each resource the workloads want from this pool
    nodes_needed: int  # nodes the workloads' pods occupy
    compute_slices: tuple[int | None, ...] | None  # per GPU; None when the pool has no MIG
    launch: Launch  # the nodes that will exist (and what they cost)
    placed: tuple[Demand, ...] = ()  # (resource, units per pod, pods) of every workload placed here


@dataclass(frozen=True)
class CapacityPlan:
    pools: tuple[PoolReport, ...]
    workloads: tuple[WorkloadVerdict, ...]

    @property
    def errors(self) -> list[Finding]:
        return [self._finding(w) for w in self.workloads if w.level == "error"]

    @staticmethod
    def _finding(w: WorkloadVerdict) -> Finding:
        return Finding(w.name, w.level, w.message, w.field, w.pools[0] if w.pools else None)

    @property
    def idle_pools(self) -> list[str]:
        """Node groups that run nodes no workload of the stack uses: paid for, idle (a NodePool launches none)."""
        return [f"node group {r.pool.name} runs {r.launch.nodes} node(s) of {r.launch.instance_type} "
                f"({r.launch.usd_per_hour:.2f} USD/h) that no workload of this stack uses; set its desiredSize "
                "(and minSize) to 0 if nothing else runs there"
                for r in self.pools if r.pool.kind == "nodeGroup" and r.launch.nodes and not any(r.requested.values())]

    @property
    def usd_per_hour(self) -> float:
        """What the GPU nodes that will exist cost per hour, on demand, of the pools that are priced."""
        return round(sum(r.launch.usd_per_hour for r in self.pools if r.launch.priced), 2)

    @property
    def unpriced(self) -> list[PoolReport]:
        """Spot pools with nodes and no price of the stack's: what they cost is not known here."""
        return [r for r in self.pools if not r.launch.priced and r.launch.nodes]

    @property
    def vcpu_quotas(self) -> dict[str, dict[str, int]]:
        """EC2 service quota (vCPU-based, per instance family and purchase option) -> vCPUs of the GPU nodes
        that will exist (`now`) and of the most the pools may run (`atMost`: a node group's maxSize, a
        NodePool's limits, which cap its vCPUs at maxNodes x its largest type's)."""
        out: dict[str, dict[str, int]] = {}
        for r in self.pools:
            p = r.pool
            quota = _vcpu_quota(p.instance_type, p.capacity_type)
            most = p.nodes_max * max(INSTANCE_TYPES[t].vcpu for t in p.types)
            q = out.setdefault(quota, {"now": 0, "atMost": 0})
            q["now"] += r.launch.nodes * INSTANCE_TYPES[r.launch.instance_type].vcpu
            q["atMost"] += most
        return out

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON-ready data (`json.dumps` it); the shape `plan.json` and CI consume."""
        return {
            "pools": [_pool_json(r) for r in self.pools],
            "workloads": [{"name": w.name, "resource": w.resource, "requested": w.requested,
                           "pools": list(w.pools), "capacity": w.capacity, "fits": w.fits, "level": w.level,
                           "message": w.message,
                           **({"resources": list(w.kinds), "counted": dict(w.counted)} if w.kinds else {})}
                          for w in self.workloads],
            "usdPerHour": self.usd_per_hour,
            "unpricedPools": [r.pool.name for r in self.unpriced],
            "vcpuQuotas": self.vcpu_quotas,
        }

    def format_table(self) -> str:
        """Two fixed-width tables (pools, then workloads) for a terminal, and the hourly total."""
        pool_rows = [("POOL", "KIND", "INSTANCE", "LAYOUT", "NODES", "RESOURCE", "PER NODE", "PODS/NODE",
                      "WANTED / AVAILABLE", "COMPUTE/GPU", "USD/HOUR")]
        for r in self.pools:
            p = r.pool
            resources = [(res, n) for res, n in _best(p).items() if n or res != WHOLE_GPU or len(_best(p)) == 1]
            for i, (res, n) in enumerate(resources or [("-", 0)]):
                head = (p.name, p.kind, _instance_text(r), p.layout, _nodes_text(r)) if i == 0 else ("",) * 5
                pool_rows.append((*head, res, str(n), _pods_cell(p) if i == 0 else "",
                                  f"{r.requested.get(res, 0)} / {n * p.nodes_available}",
                                  _compute_text(r.compute_slices, p.instance) if i == 0 else "",
                                  _usd_cell(r.launch) if i == 0 else ""))
        work_rows = [("WORKLOAD", "STATUS", "RESOURCE", "WANTED", "AVAILABLE", "POOLS", "MESSAGE")]
        for w in self.workloads:
            work_rows.append((w.name, w.level.upper(), " or ".join(w.kinds) or w.resource, str(w.requested),
                              str(w.capacity),
                              ",".join(w.pools) or "-", w.message))
        priced = [r for r in self.pools if r.launch.priced]
        total = (f"GPU nodes that will exist cost {self.usd_per_hour:.2f} USD per hour"
                 f"{' on demand' if all(r.launch.basis == ON_DEMAND_LIST for r in priced) else ''} ("
                 + (f"without the spot pool(s) {', '.join(r.pool.name for r in self.unpriced)}, below; "
                    if self.unpriced else "")
                 + ("; ".join(f"{r.pool.name}: {r.launch.usd_per_hour:.2f} at {r.launch.basis}" for r in priced)
                    or "no priced pools")
                 + (f"; {PRICES_REGION} list prices as of {PRICES_AS_OF}" if any(r.launch.basis == ON_DEMAND_LIST
                                                                               for r in priced) else "") + ")")
        for r in self.unpriced:
            total += (f"\n{r.pool.name} runs spot nodes and is not priced: spot prices move by Availability Zone and "
                      f"hour and no table of them is kept here; at most {r.launch.usd_per_hour:.2f} USD per hour "
                      f"at on-demand list, as little as a tenth of it (AWS: up to 90% off); set "
                      f"gpu-slicing:pricePerHour.{r.launch.instance_type} to your estimate for a figure")
        for quota, q in self.vcpu_quotas.items():
            total += (f"\nEC2 quota \"{quota}\": {q['now']} vCPUs for the GPU nodes that will exist, up to "
                      f"{q['atMost']} at maxSize/maxNodes, plus the nodes a rolling update adds (README: Before the "
                      "first deploy)")
        pods = ("PODS/NODE: pods one node runs for workloads, of the most EKS runs on its instance type (one address "
                "of its network interfaces each, or a NodePool's maxPods); the pool's DaemonSets take the rest")
        return _table(pool_rows) + "\n" + pods + "\n\n" + _table(work_rows) + "\n\n" + total + "\n"


def _vcpu_quota(instance_type: str, capacity_type: str) -> str:
    """The name of the EC2 service quota (vCPUs) a GPU instance counts against."""
    family = "P" if instance_type.startswith("p") else "G and VT"
    if capacity_type == "spot":
        return f"All {family} Spot Instance Requests"
    return f"Running On-Demand {family} instances"


def _pods_cell(p: PoolCapacity) -> str:
    """`727 of 737`: workload pods per node of the pool's roomiest type, of its pod limit."""
    best = p.best_pods
    if best is None:
        return "-"
    t = max(p.types, key=lambda name: p.pods_for_workloads(name) or 0)
    return f"{best} of {p.pod_limit[t]}"


def _usd_cell(launch: Launch) -> str:
    return f"{launch.usd_per_hour:.2f}" if launch.priced else f"<= {launch.usd_per_hour:.2f} (spot)"


def _best(p: PoolCapacity) -> dict[str, int]:
    """Per resource, what the pool's roomiest node advertises (a node group has one type)."""
    out: dict[str, int] = {}
    for per in p.types.values():
        for res, n in per.items():
            out[res] = max(out.get(res, 0), n)
    return out


def _instance_text(r: PoolReport) -> str:
    types = list(r.pool.types)
    return types[0] if len(types) == 1 else ",".join(types)


def _nodes_text(r: PoolReport) -> str:
    p = r.pool
    if p.kind == "nodeGroup":
        return f"{p.nodes_desired} (desired; max {p.nodes_max})"
    return f"{r.launch.nodes} x {r.launch.instance_type} (max {p.nodes_max})" if r.launch.nodes else \
        f"0 (max {p.nodes_max})"


def _pool_json(r: PoolReport) -> dict[str, Any]:
    p = r.pool
    return {
        "name": p.name, "kind": p.kind, "instanceType": p.instance_type, "instanceTypes": list(p.types),
        "gpu": p.instance.gpu.name, "gpusPerNode": p.instance.gpu_count, "layout": p.layout, "strategy": p.strategy,
        "nodes": {"min": p.nodes_min, "desired": p.nodes_desired, "max": p.nodes_max, "available": p.nodes_available,
                  "willExist": r.launch.nodes},
        "launch": {"instanceType": r.launch.instance_type, "nodes": r.launch.nodes,
                   "usdPerNodeHour": r.launch.usd_per_node_hour},
        "usdPerHour": r.launch.usd_per_hour if r.launch.priced else None,
        "priceBasis": r.launch.basis,
        "perNode": dict(p.per_node),
        "perInstanceType": {t: dict(v) for t, v in p.types.items()},
        "pods": {"limitPerInstanceType": dict(p.pod_limit), "daemonSets": list(p.daemon_sets),
                 "forWorkloadsPerNode": p.best_pods, "wanted": sum(n for _, _, n in r.placed),
                 "available": None if p.best_pods is None else p.best_pods * p.nodes_available},
        "utilization": {
            "resources": {res: {"requested": r.requested.get(res, 0), "available": n * p.nodes_available}
                          for res, n in _best(p).items()},
            "nodesNeeded": r.nodes_needed,
            "computeSlicesPerGpu": list(r.compute_slices) if r.compute_slices is not None else None,
            "computeSlicesOfGpu": p.instance.gpu.compute_slices,
        },
    }


def _compute_text(slices: tuple[int | None, ...] | None, it: InstanceType) -> str:
    if slices is None or not it.gpu.mig_capable:
        return "-"
    used = [s for s in slices if s is not None]
    if not used:
        return "MIG off"
    if len(set(used)) == 1 and len(used) == len(slices):
        return f"{used[0]}/{it.gpu.compute_slices}"
    return ",".join("-" if s is None else str(s) for s in slices) + f" of {it.gpu.compute_slices}"


def _table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows).rstrip()


# --- scheduling rules -----------------------------------------------------------------------------
def _why_not_eligible(w: WorkloadDemand, p: PoolCapacity) -> str | None:
    """Why a pod of `w` cannot land on a node of `p` by labels or taints (resources aside)."""
    if w.pool is not None and w.pool != p.name:
        return f"{p.name}: not pool {w.pool}"
    labels = p.node_labels()
    for k, v in w.node_selector.items():
        if k == "node.kubernetes.io/instance-type" and v in p.types:
            continue
        if labels.get(k) != v:
            return f"{p.name}: nodeSelector {k}={v} does not match (node has {k}={labels.get(k, '<unset>')})"
    for taint in p.taints:
        effect = taint_effect(taint.get("effect"))
        if blocks(effect) and not tolerates(w.tolerations, taint):
            return (f"{p.name}: taint {taint.get('key')}={taint.get('value', '')}:{effect} "
                    "is not tolerated")
    return None


def _strict_share(w: WorkloadDemand, p: PoolCapacity) -> bool:
    """Whether `w` asks for more than one share of a resource the pool shares with failRequestsGreaterThanOne."""
    return (w.per_replica > 1 and p.sharing is not None and p.sharing.fail_requests_greater_than_one
            and w.resource in {p.sharing.advertised_as(r) for r in p.sharing.resources or ()})


def _why_no_room(w: WorkloadDemand, p: PoolCapacity) -> tuple[str, str] | None:
    """(field at fault, why) a pod of `w` cannot run on any node of `p` given what its nodes advertise."""
    n = max(p.best_per_node(r) for r in w.kinds)
    if n == 0:
        offered = ", ".join(f"{r}: {c}" for r, c in _best(p).items() if c) or "no GPU resources"
        return "resource", f"{p.name}: advertises no {w.kinds_text} ({offered})"
    if n < w.per_replica:
        where = "a node" if len(p.types) == 1 else "its largest node"
        return "gpus", f"{p.name}: {where} has {n} {w.resource}, a pod asks for {w.per_replica}"
    if _strict_share(w, p) and p.sharing is not None:
        kind = "MPS" if p.sharing.kind == "mps" else "time-slicing with failRequestsGreaterThanOne"
        return "gpus", (f"{p.name}: shares {w.resource} by {kind}, so a pod asking for {w.per_replica} fails "
                        "admission (one share per pod); ask for 1")
    return None


# --- placement over identical nodes ---------------------------------------------------------------

class _Free:
    """Free units of one resource on one pool's nodes, as {free units: node count}: nodes of a pool
    are identical, so this stays tiny however many nodes there are."""

    __slots__ = ("full", "nodes", "hist")

    def __init__(self, per_node: int, nodes: int) -> None:
        self.full, self.nodes = per_node, nodes
        self.hist = {per_node: nodes} if nodes and per_node else {}

    def usable(self, size: int) -> int:
        """Pods of `size` units that still fit."""
        return sum(f // size * c for f, c in self.hist.items())

    def take(self, size: int, pods: int) -> int:
        """Place up to `pods` pods, fullest nodes first (packs, so later big pods find empty nodes);
        returns how many were placed."""
        placed = 0
        for f in sorted(k for k in self.hist if k >= size):
            if pods == 0:
                break
            per, count = f // size, self.hist[f]
            filled = min(count, pods // per)
            moves = [(filled, per)] if filled else []
            rest = pods - filled * per
            if rest and count > filled and rest < per:
                moves.append((1, rest))
            for nodes, k in moves:
                self._move(f, f - k * size, nodes)
                placed += nodes * k
                pods -= nodes * k
        return placed

    def _move(self, src: int, dst: int, nodes: int) -> None:
        self.hist[src] -= nodes
        if not self.hist[src]:
            del self.hist[src]
        self.hist[dst] = self.hist.get(dst, 0) + nodes

    def used_nodes(self) -> int:
        return self.nodes - self.hist.get(self.full, 0) if self.full else 0


# (resource, units per pod, pods); the resource is a tuple of them for one-unit pods that any of them serves
Demand = tuple["str | tuple[str, ...]", int, int]
_UNBOUNDED = 10 ** 6


class _Router:
    """Which workload holds how many units of which resource of one pool, so that pods one of several
    resources serves can be moved to another they accept to make room.

    Placing a workload is one step of a max flow (workloads -> resources -> free units): it takes free units
    of what it accepts, in its order of preference; then, while short, it follows an augmenting path: a
    unit of a resource it accepts held by an earlier one-unit pod that accepts another resource, which
    moves there, and so on until a free unit is reached. Earlier workloads keep every pod they placed (only
    which resource serves it changes), so no unit is ever counted twice, and the count is the most the
    pool holds: the scheduler allocates a claim any device it matches, so a pod served by its second
    choice leaves its first to a pod that has no other. A greedy first-choice count would refuse stacks
    that fit; counting each flexible pod against every resource it accepts would promise units twice."""

    def __init__(self, free_units: Callable[[str], int], take: Callable[[str, int], object]) -> None:
        self._free, self._take = free_units, take
        self.held: dict[str, dict[str, int]] = {}  # resource -> holder -> units, in placement order
        self._accepts: dict[str, tuple[str, ...]] = {}  # holders that may move: one-unit pods, several resources

    def hold(self, holder: str, resource: str, units: int, accepts: tuple[str, ...] = ()) -> None:
        if units:
            by = self.held.setdefault(resource, {})
            by[holder] = by.get(holder, 0) + units
        if len(accepts) > 1:
            self._accepts[holder] = accepts

    def reroute(self, holder: str, kinds: tuple[str, ...], want: int,
                moved: Callable[[str, str, int], None]) -> dict[str, int]:
        """Units of `kinds` (at most `want`) freed for `holder` by moving earlier pods along augmenting paths:
        resource -> units won; `moved(from, to, units)` hears of every pod that changes resource."""
        won: dict[str, int] = {}
        while sum(won.values()) < want and self._accepts:
            path = self._path(kinds)
            if path is None:
                break
            end = path[-1][2]
            n = min(want - sum(won.values()), self._free(end), *(self.held[src][h] for src, h, _ in path))
            self._take(end, n)
            for src, h, dst in path:
                self.held[src][h] -= n
                self.hold(h, dst, n)
                moved(src, dst, n)
            won[path[0][0]] = won.get(path[0][0], 0) + n
        return won

    def _path(self, kinds: tuple[str, ...]) -> list[tuple[str, str, str]] | None:
        """The shortest chain of (resource, holder moving off it, resource it moves to) from one of `kinds`
        to a resource with a free unit (breadth first), or None."""
        parent: dict[str, tuple[str, str] | None] = dict.fromkeys(kinds)
        queue = list(kinds)
        for k in queue:
            for h, units in self.held.get(k, {}).items():
                for nxt in self._accepts.get(h, ()) if units > 0 else ():
                    if nxt in parent:
                        continue
                    parent[nxt] = (k, h)
                    if self._free(nxt) > 0:
                        path, cur = [], nxt
                        while (step := parent[cur]) is not None:
                            path.append((step[0], step[1], cur))
                            cur = step[0]
                        return path[::-1]
                    queue.append(nxt)
        return None

    def place(self, holder: str, kinds: tuple[str, ...], want: int,
              moved: Callable[[str, str, int], None] = lambda *_: None) -> dict[str, int]:
        """Place up to `want` one-unit pods of `holder`: free units first, then rerouted ones."""
        got: dict[str, int] = {}
        for k in kinds:
            n = min(want - sum(got.values()), self._free(k))
            if n > 0:
                self._take(k, n)
                got[k] = n
        for k, n in self.reroute(holder, kinds, want - sum(got.values()), moved).items():
            got[k] = got.get(k, 0) + n
        for k, n in got.items():
            self.hold(holder, k, n, kinds)
        return got


def _unit_pods_fit(room: Mapping[str, int], groups: Sequence[tuple[tuple[str, ...], int]]) -> bool:
    """Whether `room` (free units per resource) holds every one-unit pod of `groups` (resources that serve
    a pod, pods): the max flow of `_Router`."""
    left = dict(room)
    router = _Router(lambda k: left.get(k, 0), lambda k, n: left.__setitem__(k, left.get(k, 0) - n))
    return all(sum(router.place(str(i), kinds, pods).values()) == pods for i, (kinds, pods) in enumerate(groups))


def nodes_for(per_node: Mapping[str, int], demands: Iterable[Demand], pods_per_node: int | None = None) -> int | None:
    """Fewest identical nodes advertising `per_node` that hold every pod of `demands` (biggest pods first,
    packed first-fit; resources of one node are independent device-plugin pools) with at most
    `pods_per_node` of them on a node; None if a pod fits none. One-unit pods that any of several resources
    serves are counted by the max flow of `_Router` over what the others leave (exact: a unit pod fits any
    free unit, and identical nodes can share the units out so no node runs more pods than the total allows)."""
    by_resource: dict[str, list[tuple[int, int]]] = {}
    flexible: list[tuple[tuple[str, ...], int]] = []
    for res, size, pods in demands:
        if pods and isinstance(res, tuple):
            flexible.append((res, pods))
        elif pods and isinstance(res, str):
            by_resource.setdefault(res, []).append((size, pods))
    if pods_per_node is not None and (by_resource or flexible) and pods_per_node < 1:
        return None
    total = sum(pods for items in by_resource.values() for _, pods in items) + sum(n for _, n in flexible)
    most = -(-total // pods_per_node) if pods_per_node else 0
    for res, items in by_resource.items():
        free = _Free(per_node.get(res, 0), _UNBOUNDED)
        for size, pods in sorted(items, reverse=True):
            if free.full < size or free.take(size, pods) < pods:
                return None
        most = max(most, free.used_nodes())
    if not flexible:
        return most
    used = {res: sum(size * pods for size, pods in items) for res, items in by_resource.items()}

    def fits(nodes: int) -> bool:
        return _unit_pods_fit({r: n * nodes - used.get(r, 0) for r, n in per_node.items()}, flexible)

    low, high = max(most, 1), max(most, 1) + sum(n for _, n in flexible)  # each node adds a unit to every group
    if not fits(high):
        return None
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if fits(mid) else (mid + 1, high)
    return low


# --- the plan -------------------------------------------------------------------------------------

def plan_capacity(pools: Sequence[PoolCapacity], workloads: Sequence[WorkloadDemand],
                  prices: Mapping[str, float] | None = None, max_pool_nodes: int | None = None) -> CapacityPlan:
    """Place every workload on the nodes its pools will run and judge it.

    A node group's pods get its `desiredSize` nodes and no more; a NodePool's get up to its maximum, on
    its roomiest instance type. Workloads that share a pool and resource share its capacity. Workloads
    that can use fewer pools are placed first, so a flexible one does not take the only pool of a pinned
    one; in contrived overlaps this greedy order can report a shortfall a perfect assignment would avoid.
    Within a pool the count is exact for one-unit pods (the usual MIG request); bigger pods are packed
    first-fit over identical nodes, an upper bound on what the spreading scheduler achieves. A one-unit pod
    that several resources serve (a DRA claim matching several device kinds) is counted against any of them
    by the max flow of `_Router`, after the workloads with fewer alternatives. `prices`
    (instance type -> USD per hour) overrides the catalog's on-demand estimates; no suggestion asks a pool
    for more than `max_pool_nodes` nodes.
    """
    names = [p.name for p in pools]
    if len(set(names)) != len(names):
        raise ValueError(f"pool names must be unique: {names}")
    if len({w.name for w in workloads}) != len(workloads):
        raise ValueError(f"workload names must be unique: {[w.name for w in workloads]}")
    price = _pricer(prices)
    by_name = {p.name: p for p in pools}
    position = {name: i for i, name in enumerate(names)}
    eligible: dict[str, list[PoolCapacity]] = {}
    hosts: dict[str, list[PoolCapacity]] = {}
    rejected: dict[str, list[tuple[str, str]]] = {}
    for w in workloads:
        eligible[w.name], hosts[w.name], rejected[w.name] = [], [], []
        for p in pools:
            reason = _why_not_eligible(w, p)
            if reason is None:
                eligible[w.name].append(p)
                room = _why_no_room(w, p)
                if room is None:
                    hosts[w.name].append(p)
                    continue
                rejected[w.name].append(room)
            elif w.pool is None or w.pool == p.name:
                rejected[w.name].append(("resource", reason))
    demanders: dict[tuple[str, str], int] = {}
    for w in workloads:
        for p in hosts[w.name]:
            demanders[(p.name, w.resource)] = demanders.get((p.name, w.resource), 0) + 1
    for w in workloads:
        hosts[w.name].sort(key=lambda p: (demanders[(p.name, w.resource)], position[p.name]))

    free: dict[tuple[str, str], _Free] = {}

    def slot(p: PoolCapacity, res: str) -> _Free:
        if (p.name, res) not in free:
            free[(p.name, res)] = _Free(p.best_per_node(res), p.nodes_available)
        return free[(p.name, res)]

    def router(p: PoolCapacity) -> _Router:
        return _Router(lambda res: slot(p, res).usable(1), lambda res, n: slot(p, res).take(1, n))

    routers = {p.name: router(p) for p in pools}  # who holds what, per pool
    requested: dict[str, dict[str, int]] = {p.name: {} for p in pools}
    placed_on: dict[str, list[Demand]] = {p.name: [] for p in pools}  # pool -> demands placed
    results: dict[str, tuple[int, int]] = {}
    # pods every pool's nodes run for workloads, all resources together (None: no limit known)
    pod_free = {p.name: None if p.best_pods is None else max(p.best_pods, 0) * p.nodes_available for p in pools}
    pod_bound: dict[str, list[PoolCapacity]] = {}  # workload -> pools whose pod limit stopped its placement
    # fewer pools first, then fewer resources: the flexible take what the others leave, and move if need be
    order = sorted(range(len(workloads)), key=lambda i: (len(hosts[workloads[i].name]), len(workloads[i].kinds), i))
    for i in order:
        w = workloads[i]
        capacity, placed = 0, 0
        for p in hosts[w.name]:
            usable, want, pods_left = sum(slot(p, r).usable(w.per_replica) for r in w.kinds), w.replicas - placed, \
                pod_free[p.name]
            if pods_left is not None:
                if pods_left < min(want, usable):
                    pod_bound.setdefault(w.name, []).append(p)
                usable, want = min(usable, pods_left), min(want, pods_left)

            def moved(src: str, dst: str, units: int, p: PoolCapacity = p) -> None:
                requested[p.name][src] -= units
                requested[p.name][dst] = requested[p.name].get(dst, 0) + units

            if w.alternatives:
                gained = routers[p.name].place(w.name, w.kinds, want, moved)
            else:  # a pod of several units is packed onto the nodes (`_Free`); a one-unit pod may move others
                gained = {w.resource: slot(p, w.resource).take(w.per_replica, want)}
                if gained[w.resource] < want and w.per_replica == 1:
                    gained[w.resource] += routers[p.name].reroute(w.name, w.kinds, want - gained[w.resource],
                                                                  moved).get(w.resource, 0)
                routers[p.name].hold(w.name, w.resource, gained[w.resource] * w.per_replica)
            got = sum(gained.values())
            capacity += max(usable, got) * w.per_replica
            if pods_left is not None:
                pod_free[p.name] = pods_left - got
            placed += got
            if got:
                placed_on[p.name].append((w.demand[0], w.per_replica, got))
            for r in w.kinds:
                requested[p.name][r] = requested[p.name].get(r, 0) + gained.get(r, 0) * w.per_replica
        if hosts[w.name] and placed < w.replicas:  # the shortfall is wanted from its first pool
            first = hosts[w.name][0].name
            requested[first][w.resource] += (w.replicas - placed) * w.per_replica
        results[w.name] = (capacity, placed)

    claims = {(p.name, res): [(h, n) for h, n in by.items() if n]  # who holds what, once all are placed
              for p in pools for res, by in routers[p.name].held.items()}
    wanted = _pool_demands(workloads, hosts)
    alternatives = _Alternatives(wanted, max_pool_nodes)
    verdicts = []
    for w in workloads:
        capacity, placed = results[w.name]
        verdicts.append(_verdict(w, hosts[w.name], eligible[w.name], rejected[w.name], capacity, placed,
                                 claims, by_name, alternatives, price, pod_bound.get(w.name, [])))
    reports = []
    for p in pools:
        used = max((s.used_nodes() for (pn, _), s in free.items() if pn == p.name), default=0)
        if p.best_pods:  # the pod limit may need more nodes than the slices do
            used = max(used, -(-sum(n for _, _, n in placed_on[p.name]) // p.best_pods))
        launch = _launch(p, placed_on[p.name], price)
        basis = STACK_PRICE if prices and launch.instance_type in prices else \
            SPOT_UNPRICED if p.capacity_type == "spot" else ON_DEMAND_LIST
        reports.append(PoolReport(p, requested[p.name], used, _pool_compute(p), replace(launch, basis=basis),
                                  tuple(placed_on[p.name])))
    return CapacityPlan(tuple(reports), tuple(verdicts))


def _pricer(prices: Mapping[str, float] | None):
    def price(instance_type: str) -> float:
        if prices and instance_type in prices:
            return float(prices[instance_type])
        return INSTANCE_TYPES[instance_type].on_demand_usd_per_hour
    return price


def _pool_demands(workloads: Sequence[WorkloadDemand], hosts: Mapping[str, list[PoolCapacity]]
                  ) -> dict[str, list[tuple[str, Demand]]]:
    """Pool -> (workload, demand) of every workload that can only run there: what a change to the pool
    must keep fitting."""
    out: dict[str, list[tuple[str, Demand]]] = {}
    for w in workloads:
        if w.pool is not None:
            out.setdefault(w.pool, []).append((w.name, w.demand))
        elif len(hosts[w.name]) == 1:
            out.setdefault(hosts[w.name][0].name, []).append((w.name, w.demand))
    return out


def _launch(p: PoolCapacity, placed: list[Demand], price) -> Launch:
    """The nodes a pool will run: a node group its desired size; a NodePool what Karpenter launches for
    the pods placed on it, on the instance type that holds them most cheaply (its cost-first choice)."""
    if p.kind == "nodeGroup":
        each = price(p.instance_type)
        return Launch(p.instance_type, p.nodes_desired, round(p.nodes_desired * each, 2), each)
    if not placed:
        return Launch(p.instance_type, 0, 0.0, price(p.instance_type))
    options = []
    for t, per in p.types.items():
        n = nodes_for(per, placed, p.pods_for_workloads(t))
        if n is not None:
            options.append((n * price(t), n, t))
    if not options:  # no one type holds every pod: sized on the roomiest, as the placement was
        n = nodes_for(_best(p), placed, p.best_pods) or 0
        return Launch(p.instance_type, n, round(n * price(p.instance_type), 2), price(p.instance_type))
    cost, n, t = min(options)
    return Launch(t, n, round(cost, 2), price(t))


def _pool_compute(p: PoolCapacity) -> tuple[int | None, ...] | None:
    if not p.instance.gpu.mig_capable:
        return None
    layout = p.mig_layout or named_layouts(p.instance.gpu).get(p.layout)
    if layout is None:
        return None
    return tuple(compute_slices_per_gpu(p.instance, layout))


def _verdict(w: WorkloadDemand, hosts: list[PoolCapacity], eligible: list[PoolCapacity],
             rejected: list[tuple[str, str]], capacity: int, placed: int,
             claims: dict[tuple[str, str], list[tuple[str, int]]], by_name: Mapping[str, PoolCapacity],
             alternatives: _Alternatives, price, pod_bound: Sequence[PoolCapacity] = ()) -> WorkloadVerdict:
    host_names = {p.name for p in hosts}
    pools = tuple(name for name in by_name if name in host_names) or tuple(p.name for p in eligible)
    need = f"{w.replicas} x {w.per_replica} {w.kinds_text} = {w.requested}"
    counted = {r: sum(n for p in hosts for h, n in claims.get((p.name, r), []) if h == w.name) for r in w.kinds}

    def verdict(level: str, message: str, suggestion: str | None = None, field_: str = "replicas") -> WorkloadVerdict:
        text = f"{message}. Suggestion: {suggestion}" if suggestion else message
        return WorkloadVerdict(w.name, w.resource, w.requested, pools, capacity, level, text, suggestion, field_,
                               w.kinds if w.alternatives else (),
                               tuple(counted.items()) if w.alternatives else ())

    def per_node(p: PoolCapacity) -> str:
        """What a node of `p` has for `w`: `16`, or `16 (8 a + 8 b)` for a workload several resources serve."""
        each = " + ".join(f"{p.best_per_node(r)} {r}" for r in w.kinds)
        return f"{w.per_node(p)} ({each})" if w.alternatives else str(w.per_node(p))

    if w.pool is not None and w.pool not in by_name:
        return verdict("error", f"pool {w.pool} does not exist (pools: {', '.join(by_name) or 'none'})",
                       field_="pool")
    if w.replicas == 0:
        return verdict("ok", "no replicas requested")
    if not hosts:
        why = "; ".join(r for _, r in rejected) or "no pools"
        fields = {f for f, _ in rejected}
        if fields == {"gpus"}:
            return verdict("error", f"no node can hold one pod ({why})", field_="gpus")
        return verdict("error", f"no pool can run it ({why})",
                       alternatives.suggest(w, eligible) if eligible else None,
                       "resource" if eligible else "pool")
    if placed < w.replicas:
        groups = [p for p in hosts if p.kind == "nodeGroup"]
        where = ", ".join(f"{p.name}: {per_node(p)}/node"
                          + (f" but {p.best_pods} pods/node" if p in pod_bound else "")
                          + f" x {p.nodes_available} {'desired' if p.kind == 'nodeGroup' else 'max'}" for p in hosts)
        shared = [f"{o} takes {n}" + (f" {r}" if w.alternatives else "") for p in hosts for r in w.kinds
                  for o, n in claims.get((p.name, r), []) if o != w.name]
        share_text = f"; shared with {', '.join(shared)}" if shared else ""
        limit = ("nothing scales a managed node group: its pods get desiredSize nodes" if groups
                 else "Karpenter launches no more than the NodePool's maxNodes")
        if pod_bound:
            limit += "; " + "; ".join(_pods_text(p) for p in pod_bound)
        suggestion = alternatives.suggest(w, eligible)
        beyond = suggestion is not None and suggestion.startswith(_BEYOND_ANY_POOL)  # then only replicas can change
        return verdict("error", f"does not fit: needs {need}, {capacity} free ({where}{share_text}); "
                                f"{w.replicas - placed} pods would stay Pending ({limit})",
                       suggestion, "replicas" if beyond else "desiredSize" if groups else "maxNodes")
    p = hosts[0]
    took = "; counted as " + " + ".join(f"{n} {r}" for r, n in counted.items() if n) if w.alternatives else ""
    if p.kind == "nodePool":
        pods_per_node = w.per_node(p) // w.per_replica
        pods = ""
        if p.best_pods is not None and p.best_pods < pods_per_node:
            pods_per_node, pods = p.best_pods, f", {p.best_pods} workload pods per node"
        nodes = -(-w.replicas // pods_per_node) if pods_per_node else 0
        return verdict("ok", f"fits: Karpenter launches up to {nodes} node(s) of {p.name} for {need} "
                             f"({per_node(p)} per node{pods}, {capacity} at maxNodes {p.nodes_max}){took}")
    return verdict("ok", f"fits: needs {need}, {capacity} free on the {p.nodes_desired} desired node(s){took}")


def _pods_text(p: PoolCapacity) -> str:
    """Why a pool's nodes run no more pods: the pod limit of its roomiest type less its DaemonSets."""
    t = max(p.types, key=lambda name: p.pods_for_workloads(name) or 0)
    limit = p.pod_limit[t]
    why = "EKS's limit for its network interfaces" if limit == eni_max_pods(t) else "the NodePool's maxPods"
    return (f"a node of {t} runs at most {limit} pods ({why}), {len(p.daemon_sets)} of them DaemonSets, so "
            f"{limit - len(p.daemon_sets)} workload pods per node on {p.name}")


_BEYOND_ANY_POOL = "no pool holds them"


class _Alternatives:
    """The smallest change that makes a workload fit without stranding the other workloads of its pool:
    a named layout of the pool's GPU under which every workload the pool must hold fits, or more nodes.
    Per-node figures are cached per plan."""

    def __init__(self, wanted: Mapping[str, list[tuple[str, Demand]]], max_nodes: int | None = None) -> None:
        self._wanted = wanted
        self._max_nodes = max_nodes
        self._cache: dict[tuple[str, str, str, Sharing | None], dict[str, int] | None] = {}

    def per_node(self, p: PoolCapacity, instance_type: str, layout: MigLayout) -> dict[str, int] | None:
        key = (instance_type, layout.name, p.strategy, p.sharing)
        if key not in self._cache:
            self._cache[key] = self._compute(p, instance_type, layout)
        return self._cache[key]

    @staticmethod
    def _compute(p: PoolCapacity, instance_type: str, layout: MigLayout) -> dict[str, int] | None:
        for sharing in (p.sharing, None):  # keep the pool's time-slicing where the layout allows it
            try:
                return node_resources(instance_type, layout, p.strategy, sharing)
            except ConfigError:
                continue
        return None

    def suggest(self, w: WorkloadDemand, eligible: list[PoolCapacity]) -> str | None:
        options: list[tuple[tuple[int, int, int], str]] = []
        for p in eligible:
            demands = [d for _, d in self._wanted.get(p.name, [])] or [w.demand]
            size = "desiredSize" if p.kind == "nodeGroup" else "maxNodes"
            nodes = nodes_for(_best(p), demands, p.best_pods)
            if nodes is not None and nodes > p.nodes_available:
                also = f" (and maxSize to {nodes})" if p.kind == "nodeGroup" and nodes > p.nodes_max else ""
                gives = f"{p.layout} gives" if p.instance.gpu.mig_capable else "a node gives"
                pods = "" if p.best_pods is None or nodes_for(_best(p), demands) == nodes else \
                    f" and runs {p.best_pods} workload pods"
                options.append(((nodes, 0, 0), f"raise {size} of {p.name} to {nodes}{also} ({gives} "
                                               f"{w.per_node(p)} {w.kinds_text} per node{pods}; that "
                                               f"holds every workload of {p.name})"))
            it = p.instance_type
            for name, layout in named_layouts(INSTANCE_TYPES[it].gpu).items():
                if name == p.layout:
                    continue
                res = self.per_node(p, it, layout)
                if res is None:
                    continue
                n = nodes_for(res, demands, p.best_pods)
                if n is None:
                    continue
                n = max(n, p.nodes_min, 1)
                size_text = "" if n <= p.nodes_available else f" and {size} {n}" + (
                    f" (and maxSize {n})" if p.kind == "nodeGroup" and n > p.nodes_max else "")
                others = len({o for o, _ in self._wanted.get(p.name, [])} - {w.name})
                keep = f", and the {others} other workload(s) of {p.name} keep fitting" if others else ""
                options.append(((n, 1, res.get(w.resource, 0)),
                                f"layout {name} on {p.name}{size_text}: {name} gives {res.get(w.resource, 0)} "
                                f"{w.resource} per node, so {n} node(s) hold {w.replicas} pod(s){keep}"))
        if self._max_nodes is not None:
            over = [o for o in options if o[0][0] > self._max_nodes]
            options = [o for o in options if o[0][0] <= self._max_nodes]
            if over and not options:
                least = min(o[0][0] for o in over)
                return (f"{_BEYOND_ANY_POOL}: they need at least {least} nodes, more than the {self._max_nodes} one "
                        "pool may run; lower the workload's replicas, or spread it over more pools")
        if not options:
            return None
        options.sort(key=lambda o: o[0])
        best = options[0][1]
        scale = next((text for (_, kind, _), text in options[1:] if kind == 0), None)
        return f"{best}; or {scale}" if scale else best
