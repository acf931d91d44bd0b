"""What a GPU node advertises, and whether the workloads fit the pools: the numbers the seed guide got
wrong (FACTS 1.6: 56 replicas of mig-1g.5gb on all-balanced p4d run 16 per node, not 56).

`node_resources` is exact: it is what the device plugin advertises for a MIG layout, strategy and
time-slicing. `plan_capacity` places every workload's replicas on the pools that can host it (resource,
node selector, taints) at the pools' min, desired and max node counts, and says for each workload
whether it fits, fits only after scaling out, or can never fit, with the smallest change that fits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from .catalog import COMPUTE_SLICES, INSTANCE_TYPES, InstanceType, MigLayout, named_layouts
from .errors import ConfigError
from .layouts import check_layout, lookup_instance
from .sharing import WHOLE_GPU, Sharing, check_sharing

STRATEGIES = ("none", "single", "mixed")
KINDS = ("nodeGroup", "nodePool")
LEVELS = ("min", "desired", "max")
_BLOCKING = {"NoSchedule", "NoExecute"}
_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}


def taint_effect(effect: str | None) -> str:
    """Kubernetes' spelling of a taint effect (EKS APIs say NO_SCHEDULE where Kubernetes says NoSchedule)."""
    return _EFFECTS.get(effect or "", effect or "")


# --- what one node advertises -------------------------------------------------------------------------

def node_resources(instance_type: str | InstanceType, layout: MigLayout | None, strategy: str,
                   sharing: Sharing | None = None, *, key: str = "node") -> dict[str, int]:
    """Allocatable GPU resources of one node, as the device plugin advertises them.

    mixed: `nvidia.com/mig-<profile>` per profile plus `nvidia.com/gpu` for the GPUs with MIG off (kept
    at 0, because pods asking for it stay Pending). single: every slice is `nvidia.com/gpu`, so every
    GPU must carry the same one profile. none: whole GPUs; MIG must be off. Time-slicing multiplies the
    shared resources by its replicas (and renames them `<resource>.shared` under renameByDefault).
    """
    return advertise(instance_type, layout, strategy, sharing, key=key)[0]


def advertise(instance_type: str | InstanceType, layout: MigLayout | None, strategy: str,
              sharing: Sharing | None = None, *, key: str = "node") -> tuple[dict[str, int], Sharing | None]:
    """`node_resources` and the sharing resolved against this node (its `resources` filled in)."""
    it = lookup_instance(instance_type, f"{key}.instanceType")
    if strategy not in STRATEGIES:
        raise ConfigError(f"{key}.strategy", strategy, f"one of {', '.join(STRATEGIES)}")
    if layout is not None:
        check_layout(layout, it, f"{key}.migLayout")
    per_gpu = layout.per_gpu(it.gpu_count) if layout is not None else [None] * it.gpu_count
    base = _strategy_resources(it, layout, per_gpu, strategy, key)
    if sharing is None:
        return base, None
    shared = check_sharing(sharing, base, layout is not None and layout.mig_enabled, f"{key}.sharing")
    out: dict[str, int] = {}
    for resource, n in base.items():
        if shared.shares(resource):
            out[shared.advertised_as(resource)] = n * shared.replicas
        else:
            out[resource] = n
    return out, shared


def _strategy_resources(it: InstanceType, layout: MigLayout | None, per_gpu: list[Mapping[str, int] | None],
                        strategy: str, key: str) -> dict[str, int]:
    whole = sum(1 for g in per_gpu if g is None)
    if strategy == "none":
        if whole != it.gpu_count:
            raise ConfigError(f"{key}.migLayout", layout.name if layout else None,
                              "all-disabled: the none strategy advertises whole GPUs and ignores MIG slices")
        return {WHOLE_GPU: whole}
    if strategy == "single":
        if whole == it.gpu_count:
            return {WHOLE_GPU: whole}
        shapes = {tuple(sorted(g.items())) if g is not None else None for g in per_gpu}
        shape = next(iter(shapes))
        if len(shapes) > 1 or shape is None or len(shape) != 1:
            raise ConfigError(f"{key}.migLayout", layout.name if layout else None,
                              "a layout with one and the same profile on every GPU (all-1g.5gb, all-3g.20gb, ...): "
                              f"the single strategy advertises every slice as {WHOLE_GPU}, so a mixed layout "
                              f"({_describe(per_gpu)}) needs the mixed strategy")
        return {WHOLE_GPU: shape[0][1] * it.gpu_count}
    counts: dict[str, int] = {}
    for profile in it.gpu.profiles:
        n = sum(g.get(profile.name, 0) for g in per_gpu if g is not None)
        if n:
            counts[profile.resource_name] = n
    counts[WHOLE_GPU] = whole
    return counts


def _describe(per_gpu: list[Mapping[str, int] | None]) -> str:
    """`GPU 0-3: 1g.5gb x7; GPU 4-7: MIG off`: a compact, per-GPU view for error messages."""
    runs: list[tuple[int, int, str]] = []
    for i, g in enumerate(per_gpu):
        text = "MIG off" if g is None else (" + ".join(f"{p} x{n}" for p, n in sorted(g.items())) or "no instances")
        if runs and runs[-1][2] == text:
            runs[-1] = (runs[-1][0], i, text)
        else:
            runs.append((i, i, text))
    return "; ".join(f"GPU {a}{'-' + str(b) if b != a else ''}: {t}" for a, b, t in runs)


def compute_slices_per_gpu(instance_type: str | InstanceType, layout: MigLayout) -> list[int | None]:
    """Compute slices (of 7) each GPU's MIG instances use; None where MIG is off. Idle slices are paid for."""
    it = lookup_instance(instance_type, "instanceType")
    out: list[int | None] = []
    for g in layout.per_gpu(it.gpu_count):
        out.append(None if g is None else sum(it.gpu.profile(p).compute * n for p, n in g.items()))
    return out


# --- plan inputs ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PoolCapacity:
    """A node group or NodePool as the planner sees it. For a NodePool desired is its floor (0):
    Karpenter launches nodes only for pending pods, up to max."""

    name: str
    kind: str  # "nodeGroup" | "nodePool"
    instance_type: str
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

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"pool {self.name}: kind {self.kind!r} is not one of {KINDS}")
        if self.instance_type not in INSTANCE_TYPES:
            raise ValueError(f"pool {self.name}: unknown instance type {self.instance_type!r}")
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

    def nodes(self, level: str) -> int:
        return {"min": self.nodes_min, "desired": self.nodes_desired, "max": self.nodes_max}[level]

    def node_labels(self) -> dict[str, str]:
        """The pool's labels plus the ones every node carries anyway (its instance type, OS, arch)."""
        return {"node.kubernetes.io/instance-type": self.instance_type, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64", **self.labels}


@dataclass(frozen=True)
class WorkloadDemand:
    """`replicas` pods, each requesting `per_replica` of `resource` (one pod must fit on one node)."""

    name: str
    resource: str
    per_replica: int
    replicas: int
    pool: str | None = None
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: Sequence[Mapping[str, str]] = ()

    def __post_init__(self) -> None:
        if self.per_replica < 1 or self.replicas < 0:
            raise ValueError(f"workload {self.name}: per_replica must be >= 1 and replicas >= 0")

    @property
    def requested(self) -> int:
        return self.per_replica * self.replicas


# --- plan outputs ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    """An error or warning about one workload; `str()` is the sentence to show."""

    workload: str
    level: str  # "error" | "warning"
    message: str

    def __str__(self) -> str:
        return f"workload {self.workload}: {self.message}"


@dataclass(frozen=True)
class WorkloadVerdict:
    name: str
    resource: str
    requested: int
    pools: tuple[str, ...]
    capacity: Mapping[str, int]  # free units of `resource` it could get at each level (after earlier workloads)
    level: str  # "ok" | "warning" | "error"
    message: str
    suggestion: str | None = None

    @property
    def fits(self) -> bool:
        return self.level != "error"


@dataclass(frozen=True)
class PoolReport:
    pool: PoolCapacity
    requested: Mapping[str, int]  # units of each resource the workloads want from this pool (at max)
    nodes_needed: int  # nodes the placement at max node counts touches
    compute_slices: tuple[int | None, ...] | None  # per GPU; None when unknown (custom layout not given)


@dataclass(frozen=True)
class CapacityPlan:
    pools: tuple[PoolReport, ...]
    workloads: tuple[WorkloadVerdict, ...]

    @property
    def errors(self) -> list[Finding]:
        return [Finding(w.name, "error", w.message) for w in self.workloads if w.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [Finding(w.name, "warning", w.message) for w in self.workloads if w.level == "warning"]

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON-ready data (`json.dumps` it); the shape `plan.json` and CI consume."""
        return {
            "pools": [_pool_json(r) for r in self.pools],
            "workloads": [{"name": w.name, "resource": w.resource, "requested": w.requested,
                           "pools": list(w.pools), "capacityAtMax": w.capacity["max"], "fits": w.fits,
                           "message": w.message} for w in self.workloads],
        }

    def format_table(self) -> str:
        """Two fixed-width tables (pools, then workloads) for a terminal."""
        pool_rows = [("POOL", "KIND", "INSTANCE", "LAYOUT", "STRATEGY", "NODES min/des/max", "RESOURCE",
                      "PER NODE", "WANTED / AT MAX", "COMPUTE/GPU")]
        for r in self.pools:
            p = r.pool
            compute = _compute_text(r.compute_slices)
            resources = list(p.per_node.items()) or [("-", 0)]
            for i, (res, n) in enumerate(resources):
                head = (p.name, p.kind, p.instance_type, p.layout, p.strategy,
                        f"{p.nodes_min}/{p.nodes_desired}/{p.nodes_max}") if i == 0 else ("",) * 6
                pool_rows.append((*head, res, str(n), f"{r.requested.get(res, 0)} / {n * p.nodes_max}",
                                  compute if i == 0 else ""))
        work_rows = [("WORKLOAD", "STATUS", "RESOURCE", "WANTED", "AT DESIRED", "AT MAX", "POOLS", "MESSAGE")]
        for w in self.workloads:
            work_rows.append((w.name, w.level.upper(), w.resource, str(w.requested), str(w.capacity["desired"]),
                              str(w.capacity["max"]), ",".join(w.pools) or "-", w.message))
        return _table(pool_rows) + "\n\n" + _table(work_rows) + "\n"


def _pool_json(r: PoolReport) -> dict[str, Any]:
    p = r.pool
    return {
        "name": p.name, "kind": p.kind, "instanceType": p.instance_type, "gpu": p.instance.gpu.name,
        "gpusPerNode": p.instance.gpu_count, "layout": p.layout, "strategy": p.strategy,
        "nodes": {"min": p.nodes_min, "desired": p.nodes_desired, "max": p.nodes_max},
        "perNode": dict(p.per_node),
        "utilization": {
            "resources": {res: {"requested": r.requested.get(res, 0), "advertisedAtDesired": n * p.nodes_desired,
                                "advertisedAtMax": n * p.nodes_max} for res, n in p.per_node.items()},
            "nodesNeeded": r.nodes_needed,
            "computeSlicesPerGpu": list(r.compute_slices) if r.compute_slices is not None else None,
            "computeSlicesOfGpu": COMPUTE_SLICES,
        },
    }


def _compute_text(slices: tuple[int | None, ...] | None) -> str:
    if slices is None:
        return "?"
    used = [s for s in slices if s is not None]
    if not used:
        return "MIG off"
    if len(set(used)) == 1 and len(used) == len(slices):
        return f"{used[0]}/{COMPUTE_SLICES}"
    return ",".join("-" if s is None else str(s) for s in slices) + f" of {COMPUTE_SLICES}"


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows).rstrip()


# --- scheduling rules -----------------------------------------------------------------------------

def tolerates(tolerations: Iterable[Mapping[str, str]], taint: Mapping[str, str]) -> bool:
    """Kubernetes toleration matching: key (empty key + Exists = everything), operator, value, effect."""
    effect = taint_effect(taint.get("effect"))
    for t in tolerations:
        t_effect = taint_effect(t.get("effect"))
        if t_effect and t_effect != effect:
            continue
        op = t.get("operator", "Equal")
        if not t.get("key"):
            if op == "Exists":
                return True
            continue
        if t["key"] == taint.get("key") and (op == "Exists" or t.get("value", "") == taint.get("value", "")):
            return True
    return False


def _why_not_eligible(w: WorkloadDemand, p: PoolCapacity) -> str | None:
    """Why a pod of `w` cannot land on a node of `p` by labels or taints (resources aside)."""
    if w.pool is not None and w.pool != p.name:
        return f"{p.name}: not pool {w.pool}"
    labels = p.node_labels()
    for k, v in w.node_selector.items():
        if labels.get(k) != v:
            return f"{p.name}: nodeSelector {k}={v} does not match (node has {k}={labels.get(k, '<unset>')})"
    for taint in p.taints:
        effect = taint_effect(taint.get("effect"))
        if effect in _BLOCKING and not tolerates(w.tolerations, taint):
            return (f"{p.name}: taint {taint.get('key')}={taint.get('value', '')}:{effect} "
                    "is not tolerated")
    return None


def _why_no_room(w: WorkloadDemand, p: PoolCapacity) -> str | None:
    """Why a pod of `w` cannot run on any node of `p` given what the node advertises."""
    n = p.per_node.get(w.resource, 0)
    if n == 0:
        offered = ", ".join(f"{r}: {c}" for r, c in p.per_node.items() if c) or "no GPU resources"
        return f"{p.name}: advertises no {w.resource} ({offered})"
    if n < w.per_replica:
        return f"{p.name}: a node has {n} {w.resource}, a pod asks for {w.per_replica}"
    if (w.per_replica > 1 and p.sharing is not None and p.sharing.fail_requests_greater_than_one
            and w.resource in {p.sharing.advertised_as(r) for r in p.sharing.resources or ()}):
        return (f"{p.name}: shares {w.resource} with failRequestsGreaterThanOne, so a pod asking for "
                f"{w.per_replica} fails admission")
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


# --- the plan -------------------------------------------------------------------------------------

def plan_capacity(pools: Sequence[PoolCapacity], workloads: Sequence[WorkloadDemand]) -> CapacityPlan:
    """Place every workload at min, desired and max node counts and judge it.

    Workloads that share a pool and resource share its capacity. Workloads that can use fewer pools
    are placed first, so a flexible one does not take the only pool of a pinned one; in contrived
    overlaps this greedy order can report a shortfall a perfect assignment would avoid. Within a
    pool the count is exact for one-unit pods (the usual MIG request); bigger pods are packed
    first-fit over identical nodes, an upper bound on what the spreading scheduler achieves.
    """
    names = [p.name for p in pools]
    if len(set(names)) != len(names):
        raise ValueError(f"pool names must be unique: {names}")
    if len({w.name for w in workloads}) != len(workloads):
        raise ValueError(f"workload names must be unique: {[w.name for w in workloads]}")
    by_name = {p.name: p for p in pools}
    position = {name: i for i, name in enumerate(names)}
    eligible: dict[str, list[PoolCapacity]] = {}
    hosts: dict[str, list[PoolCapacity]] = {}
    rejected: dict[str, list[str]] = {}
    for w in workloads:
        eligible[w.name], hosts[w.name], rejected[w.name] = [], [], []
        for p in pools:
            reason = _why_not_eligible(w, p)
            if reason is None:
                eligible[w.name].append(p)
                reason = _why_no_room(w, p)
                if reason is None:
                    hosts[w.name].append(p)
                    continue
            if w.pool is None or w.pool == p.name:
                rejected[w.name].append(reason)
    demanders: dict[tuple[str, str], int] = {}
    for w in workloads:
        for p in hosts[w.name]:
            demanders[(p.name, w.resource)] = demanders.get((p.name, w.resource), 0) + 1
    for w in workloads:
        hosts[w.name].sort(key=lambda p: (demanders[(p.name, w.resource)], position[p.name]))

    free = {level: {} for level in LEVELS}  # level -> (pool, resource) -> _Free
    claims: dict[tuple[str, str], list[tuple[str, int]]] = {}  # at max: who took what
    requested: dict[str, dict[str, int]] = {p.name: {} for p in pools}
    results: dict[str, tuple[dict[str, int], dict[str, int]]] = {}
    order = sorted(range(len(workloads)), key=lambda i: (len(hosts[workloads[i].name]), i))
    for i in order:
        w = workloads[i]
        capacity, placed = {}, {}
        for level in LEVELS:
            capacity[level], placed[level] = 0, 0
            for p in hosts[w.name]:
                slot = free[level].get((p.name, w.resource))
                if slot is None:
                    slot = free[level][(p.name, w.resource)] = _Free(p.per_node[w.resource], p.nodes(level))
                capacity[level] += slot.usable(w.per_replica) * w.per_replica
                got = slot.take(w.per_replica, w.replicas - placed[level])
                placed[level] += got
                if level == "max":
                    if got:
                        claims.setdefault((p.name, w.resource), []).append((w.name, got * w.per_replica))
                    requested[p.name][w.resource] = requested[p.name].get(w.resource, 0) + got * w.per_replica
        if hosts[w.name] and placed["max"] < w.replicas:  # the shortfall is wanted from its first pool
            first = hosts[w.name][0].name
            requested[first][w.resource] += (w.replicas - placed["max"]) * w.per_replica
        results[w.name] = (capacity, placed)

    alternatives = _Alternatives()
    verdicts = []
    for w in workloads:
        capacity, placed = results[w.name]
        verdicts.append(_verdict(w, hosts[w.name], eligible[w.name], rejected[w.name], capacity, placed,
                                 claims, by_name, alternatives))
    reports = []
    for p in pools:
        used = max((s.used_nodes() for (pn, _), s in free["max"].items() if pn == p.name), default=0)
        reports.append(PoolReport(p, requested[p.name], used, _pool_compute(p)))
    return CapacityPlan(tuple(reports), tuple(verdicts))


def _pool_compute(p: PoolCapacity) -> tuple[int | None, ...] | None:
    layout = p.mig_layout or named_layouts(p.instance.gpu).get(p.layout)
    if layout is None or not p.instance.gpu.mig_capable:
        return None
    return tuple(compute_slices_per_gpu(p.instance, layout))


def _verdict(w: WorkloadDemand, hosts: list[PoolCapacity], eligible: list[PoolCapacity], rejected: list[str],
             capacity: dict[str, int], placed: dict[str, int], claims: dict[tuple[str, str], list[tuple[str, int]]],
             by_name: Mapping[str, PoolCapacity], alternatives: _Alternatives) -> WorkloadVerdict:
    host_names = {p.name for p in hosts}
    pools = tuple(name for name in by_name if name in host_names)
    need = f"{w.replicas} x {w.per_replica} {w.resource} = {w.requested}"

    def verdict(level: str, message: str, suggestion: str | None = None) -> WorkloadVerdict:
        text = f"{message}. Suggestion: {suggestion}" if suggestion else message
        return WorkloadVerdict(w.name, w.resource, w.requested, pools, capacity, level, text, suggestion)

    if w.pool is not None and w.pool not in by_name:
        return verdict("error", f"pool {w.pool} does not exist (pools: {', '.join(by_name) or 'none'})")
    if w.replicas == 0:
        return verdict("ok", "no replicas requested")
    if not hosts:
        why = "; ".join(rejected) or "no pools"
        return verdict("error", f"no pool can run it ({why})",
                       alternatives.suggest(w, eligible, claims, w.replicas) if eligible else None)
    where = ", ".join(f"{p.name}: {p.per_node[w.resource]}/node x {p.nodes_max}" for p in hosts)
    if placed["max"] < w.replicas:
        shared = [f"{o} takes {n}" for p in hosts for o, n in claims.get((p.name, w.resource), []) if o != w.name]
        share_text = f"; shared with {', '.join(shared)}" if shared else ""
        return verdict("error", f"never fits: needs {need}, at most {capacity['max']} free at max nodes "
                                f"({where}{share_text}); {w.replicas - placed['max']} pods stay Pending",
                       alternatives.suggest(w, eligible, claims, w.replicas - placed["max"]))
    if placed["desired"] < w.replicas:
        if all(p.kind == "nodePool" for p in hosts):
            # Karpenter pools start empty by design: launching nodes for pending pods is the normal path
            # (for nvidia.com/mig-* only because the program gives each MIG NodePool its NodeOverlay).
            p = hosts[0]
            per_node = p.per_node[w.resource] // w.per_replica
            nodes = -(-w.replicas // per_node) if per_node else 0
            return verdict("ok", f"fits: Karpenter launches {nodes} node(s) of {p.name} for {need} "
                                 f"({p.per_node[w.resource]} per node, {capacity['max']} at maxNodes {p.nodes_max})")
        return verdict("warning", f"fits only after scaling out: needs {need}, {capacity['desired']} free at "
                                  f"desired nodes, {capacity['max']} at max ({where})")
    return verdict("ok", f"fits: needs {need}, {capacity['desired']} free at desired nodes")


class _Alternatives:
    """The smallest change that makes a workload fit: a named layout of the pool's GPU that advertises
    more of the resource per node, or more nodes. Per-node figures are cached per plan."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str, str, Sharing | None], dict[str, int] | None] = {}

    def per_node(self, p: PoolCapacity, layout: MigLayout) -> dict[str, int] | None:
        key = (p.instance_type, layout.name, p.strategy, p.sharing)
        if key not in self._cache:
            self._cache[key] = self._compute(p, layout)
        return self._cache[key]

    @staticmethod
    def _compute(p: PoolCapacity, layout: MigLayout) -> dict[str, int] | None:
        for sharing in (p.sharing, None):  # keep the pool's time-slicing where the layout allows it
            try:
                return node_resources(p.instance, layout, p.strategy, sharing)
            except ConfigError:
                continue
        return None

    def suggest(self, w: WorkloadDemand, eligible: list[PoolCapacity],
                claims: Mapping[tuple[str, str], list[tuple[str, int]]], short_pods: int) -> str | None:
        options: list[tuple[tuple[int, int, int], str]] = []
        for p in eligible:
            taken = sum(n for o, n in claims.get((p.name, w.resource), []) if o != w.name)
            pods_needed = math.ceil(taken / w.per_replica) + w.replicas  # everything the pool must hold
            per = p.per_node.get(w.resource, 0) // w.per_replica
            if per:
                nodes = p.nodes_max + math.ceil(short_pods / per)
                options.append(((nodes, 0, per), f"raise max nodes of {p.name} to {nodes} "
                                                 f"({p.layout} gives {p.per_node[w.resource]} {w.resource} per node)"))
            for name, layout in named_layouts(p.instance.gpu).items():
                if name == p.layout:
                    continue
                res = self.per_node(p, layout)
                per_l = (res or {}).get(w.resource, 0) // w.per_replica
                if not per_l:
                    continue
                nodes = max(math.ceil(pods_needed / per_l), p.nodes_min, 1)
                max_text = "" if nodes <= p.nodes_max else f" and max nodes {nodes}"
                options.append(((nodes, 1, per_l), f"layout {name} on {p.name}{max_text}: {name} gives "
                                                   f"{res[w.resource]} {w.resource} per node, so {nodes} node(s) "
                                                   f"hold {nodes * per_l * w.per_replica}"))
        if not options:
            return None
        options.sort(key=lambda o: o[0])
        best = options[0][1]
        scale = next((text for (_, kind, _), text in options[1:] if kind == 0), None)
        return f"{best}; or {scale}" if scale else best
