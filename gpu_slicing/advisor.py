"""MIG layout advisor: the fewest GPU nodes that cover a mix of MIG slices.

Users pick a layout by name and hope; on a p4d every spare node costs tens of dollars an hour.
The advisor solves the covering problem instead:

1. GPU level, the proven lower bound. The per-GPU configurations come from the placement rules
   (`placement.valid_configs`), restricted to the demanded profiles and reduced to the maximal
   ones. An ILP (SciPy `milp`, i.e. HiGHS, solved to optimality) finds the fewest GPUs whose
   configurations cover the demand; ceil(GPUs / GPUs per node) bounds every plan from below,
   whatever its layouts.
2. Node level, the plan. A pool is N nodes with one node layout (a multiset of per-GPU
   configurations), because the MIG manager applies one layout label per pool. For a node total
   split into pool sizes the covering constraint is linear, so each split is one small ILP.
   The bound and the total above it are searched first, then larger totals; the first split
   that fits is polished to prefer NVIDIA-named, uniform layouts. A tight split can take HiGHS
   seconds to refute, so the search runs on a time budget (the issue's bar is 1 s a demand); the
   reported gap to the lower bound says what that cost (0 on the whole benchmark suite).
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from . import placement
from .catalog import INSTANCE_TYPES, GpuModel, InstanceType, balanced_profiles, mig_warning, named_layouts
from .config import MAX_POOL_NODES, NAMESPACE, StackConfig, own_keys
from .errors import ConfigError
from .layouts import LAYOUTS_KEY, parse_custom_layouts
from .stack import load_shape

DEFAULT_MAX_LAYOUTS = 3
SEARCH_SECONDS = 0.6  # the bar is 1 s per demand on 2 cores, polish and set-up included
LEVEL_SECONDS = 0.25  # of which the node total at the lower bound may take
NEXT_LEVEL_SECONDS = 0.25  # and the one above it (the bar: at most one node above the bound)
ILP_MIN_SECONDS = 0.01
ILP_CAPS = (0.02, 0.1, 0.4)  # per-split solve limits, pass by pass: one stubborn split must not eat the budget
QUICK_SPLITS = 8  # splits into fewer pools tried before the most pools allowed
POLISH_SECONDS = 0.1
POLISH_NODES = 10  # a node limit, unlike a time limit, gives the same layouts on every machine
BOUND_NODES = 10_000  # the GPU-level ILP's limit: the bound must not depend on the machine's load (the bench needs 1)
BOUND_BACKSTOP_SECONDS = 60.0  # only so a pathological demand cannot hang `make advise`; never reached on the bench
Config = tuple[tuple[str, int], ...]  # one GPU's profile counts, sorted by profile name


@dataclass(frozen=True)
class DemandSpec:
    """What the user asks for: slices per profile on one instance type, and the limits."""

    instance_type: str
    slices: Mapping[str, int]
    price_per_node_hour: float | None = None
    max_layouts: int = DEFAULT_MAX_LAYOUTS
    max_nodes: int | None = None
    workloads: tuple[Mapping[str, Any], ...] = ()
    ignored: tuple[str, ...] = ()  # stack workloads that ask for whole GPUs, not MIG slices


@dataclass(frozen=True)
class DeviceGroup:
    """GPUs of a node (by index) that get the same profile counts: one mig-parted entry."""

    devices: tuple[int, ...]
    profiles: Mapping[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"devices": list(self.devices), "profiles": dict(self.profiles)}


@dataclass(frozen=True)
class AdvisedPool:
    """`nodes` identical nodes labelled with one MIG layout."""

    name: str
    layout: str
    named: bool
    groups: tuple[DeviceGroup, ...]
    nodes: int

    @property
    def per_node(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for g in self.groups:
            for p, n in g.profiles.items():
                out[p] = out.get(p, 0) + n * len(g.devices)
        return dict(sorted(out.items()))

    def capacity(self, profile: str) -> int:
        return self.per_node.get(profile, 0) * self.nodes


@dataclass(frozen=True)
class NaiveResult:
    """A choice users make today by layout name; `total_nodes` is None when it cannot serve the demand."""

    strategy: str
    total_nodes: int | None
    layouts: tuple[tuple[str, int], ...] = ()  # (NVIDIA layout, nodes) per pool
    reason: str = ""


@dataclass(frozen=True)
class Plan:
    instance_type: str
    demand: Mapping[str, int]
    pools: tuple[AdvisedPool, ...]
    lower_bound: int
    lower_bound_gpus: int
    price_per_node_hour: float
    naive: tuple[NaiveResult, ...]
    workloads: tuple[Mapping[str, Any], ...] = ()
    seconds: float = 0.0

    @property
    def total_nodes(self) -> int:
        return sum(p.nodes for p in self.pools)

    @property
    def gap(self) -> int:
        return self.total_nodes - self.lower_bound

    @property
    def cost_per_hour(self) -> float:
        return round(self.total_nodes * self.price_per_node_hour, 2)

    @property
    def layouts(self) -> list[str]:
        return list(dict.fromkeys(p.layout for p in self.pools))

    @property
    def best_naive(self) -> int | None:
        totals = [n.total_nodes for n in self.naive if n.total_nodes is not None]
        return min(totals) if totals else None

    def to_json(self, karpenter: bool = False) -> dict[str, Any]:
        return {
            "instanceType": self.instance_type,
            "demand": dict(self.demand),
            "totalNodes": self.total_nodes,
            "lowerBound": self.lower_bound,
            "lowerBoundGpus": self.lower_bound_gpus,
            "gap": self.gap,
            "costPerHour": self.cost_per_hour,
            "pools": [{"name": p.name, "layout": p.layout, "gpuLayouts": [g.to_dict() for g in p.groups],
                       "nodes": p.nodes, "perNode": p.per_node} for p in self.pools],
            "naive": [{"strategy": n.strategy, "totalNodes": n.total_nodes} for n in self.naive],
            "stackConfig": self.stack_config(karpenter)["config"],
        }

    def stack_config(self, karpenter: bool = False) -> dict[str, Any]:
        """The advisor's keys of a stack file (`config:` mapping) for the user to merge into theirs; capacity
        type, disk and consolidation are spelled out so the reviewer sees what the nodes cost.

        `maxGpuNodes` is included because the stack's cost guard must admit the plan's nodes.
        """
        cfg: dict[str, Any] = {}
        custom = {p.layout: [g.to_dict() for g in p.groups] for p in self.pools if not p.named}
        if custom:
            cfg[LAYOUTS_KEY] = custom
        if karpenter:
            cfg[f"{NAMESPACE}:karpenter"] = {"enabled": True, "nodePools": [
                {"name": p.name, "instanceTypes": [self.instance_type], "capacityTypes": ["on-demand"],
                 "migLayout": p.layout, "maxNodes": p.nodes, "consolidateAfter": "10m"} for p in self.pools]}
        else:
            cfg[f"{NAMESPACE}:nodeGroups"] = [
                {"name": p.name, "instanceType": self.instance_type, "minSize": p.nodes,
                 "desiredSize": p.nodes, "maxSize": p.nodes, "diskSizeGiB": 200,
                 "capacityType": "ON_DEMAND", "migLayout": p.layout} for p in self.pools]
        cfg[f"{NAMESPACE}:maxGpuNodes"] = self.total_nodes
        cfg[f"{NAMESPACE}:workloads"] = [dict(w) for w in self.workloads]
        return {"config": cfg}


def advise(instance_type: str, demand: Mapping[str, int], *, price_per_node_hour: float | None = None,
           max_layouts: int = DEFAULT_MAX_LAYOUTS, max_nodes: int | None = None,
           workloads: Sequence[Mapping[str, Any]] = (), pool_prefix: str = "advised") -> Plan:
    """The plan with the fewest nodes (then the fewest pools) that covers `demand`.

    `workloads` (stack-file workloads with `name`, `profile`, `replicas`) are split across the
    pools; without them one workload per profile is emitted. Raises ConfigError on bad input or
    when no plan fits `max_nodes`.
    """
    start = time.perf_counter()
    itype = _instance(instance_type)
    model = itype.gpu
    slices = _check_demand(model, demand)
    if isinstance(max_layouts, bool) or not isinstance(max_layouts, int) or max_layouts < 1:
        raise ConfigError("maxLayouts", max_layouts, "an integer >= 1")
    if max_nodes is not None and (isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1):
        raise ConfigError("maxNodes", max_nodes, "an integer >= 1")
    price = itype.on_demand_usd_per_hour if price_per_node_hour is None else price_per_node_hour
    if isinstance(price, bool) or not isinstance(price, (int, float)) or not math.isfinite(price) or price < 0:
        raise ConfigError("pricePerNodeHour", price_per_node_hour, "a non-negative number (USD per node-hour)")
    check_pool_prefix(pool_prefix)

    prob = _Problem.of(model, itype.gpu_count, slices)
    lb_gpus = gpu_lower_bound(prob.a, prob.d)
    lower = -(-lb_gpus // itype.gpu_count)
    if max_nodes is not None and lower > max_nodes:
        raise ConfigError("maxNodes", max_nodes, f"at least {lower} nodes: the demand needs {lb_gpus} GPUs "
                                                 f"of {instance_type} ({itype.gpu_count} per node)")
    naive = naive_results(itype, slices)
    limit = max_nodes if max_nodes is not None else max(lower, max(slices.values()))
    found = _search(prob, lower, limit, max_layouts)
    pools = [_pool(itype, model, layout, n) for n, layout in found] if found is not None else None
    fallback = _naive_fallback(itype, naive, max_layouts, max_nodes)
    if fallback is not None and (pools is None or sum(p.nodes for p in fallback) < sum(p.nodes for p in pools)):
        pools = fallback
    if pools is None:
        raise ConfigError("maxNodes", max_nodes,
                          f"more nodes: no plan of at most {limit} nodes in at most {max_layouts} layout(s) was found")
    pools = _name_pools(pools, pool_prefix)
    items = list(workloads) or [{"name": f"slice-{_slug(p)}", "profile": p, "replicas": n} for p, n in slices.items()]
    return Plan(instance_type, slices, tuple(pools), lower, lb_gpus, float(price), naive,
                _assign(pools, items), time.perf_counter() - start)


def check_pool_prefix(prefix: Any) -> None:
    """Pool names are `<prefix>-...`: a prefix of at most 22 characters leaves room in a 40-character name."""
    if not isinstance(prefix, str) or not re.fullmatch(r"[a-z]([-a-z0-9]{0,20}[a-z0-9])?", prefix):
        raise ConfigError("poolPrefix", prefix, "a lowercase DNS label of at most 22 characters")


def advise_spec(spec: DemandSpec, pool_prefix: str = "advised") -> Plan:
    return advise(spec.instance_type, spec.slices, price_per_node_hour=spec.price_per_node_hour,
                  max_layouts=spec.max_layouts, max_nodes=spec.max_nodes, workloads=spec.workloads,
                  pool_prefix=pool_prefix)


def candidate_configs(model: GpuModel, profiles: Sequence[str]) -> list[Config]:
    """Per-GPU configurations worth using: the valid ones restricted to `profiles`, then the maximal.

    Dropping undemanded instances keeps a configuration valid (fewer instances still place), so
    restricting first loses no plan and keeps layouts free of slices nobody asked for.
    """
    wanted = set(profiles)
    restricted = {tuple(sorted((p, n) for p, n in c.items() if p in wanted and n))
                  for c in placement.valid_configs(model)}
    restricted.discard(())

    def dominated(c: Config) -> bool:
        return any(o != c and all(dict(o).get(p, 0) >= n for p, n in c) for o in restricted)

    return sorted(c for c in restricted if not dominated(c))


def gpu_lower_bound(a: np.ndarray, d: np.ndarray) -> int:
    """Fewest GPUs whose configurations (rows of `a`) cover `d`: HiGHS's proven optimum or dual bound.

    Limited by branch-and-bound nodes, not seconds, so a busy machine gets the same bound as an idle one.
    """
    from scipy.optimize import LinearConstraint, milp  # ~0.8 s to import: only when the advisor solves

    n = a.shape[0]
    res = milp(np.ones(n), integrality=np.ones(n), constraints=LinearConstraint(a.T, lb=d, ub=np.inf),
               options={"mip_rel_gap": 0.0, "node_limit": BOUND_NODES, "time_limit": BOUND_BACKSTOP_SECONDS})
    if res.status == 0:
        return int(round(res.fun))
    bound = getattr(res, "mip_dual_bound", None)
    if bound is None or not math.isfinite(bound):
        raise RuntimeError(f"GPU-level ILP gave no bound: {res.message}")
    return int(math.ceil(bound - 1e-6))


def naive_results(itype: InstanceType, slices: Mapping[str, int]) -> tuple[NaiveResult, ...]:
    """The choices users make by name: one all-balanced pool; one all-<profile> pool per profile."""
    model = itype.gpu
    balanced = balanced_profiles(model)
    missing = [p for p in slices if p not in balanced]
    if missing:
        bal = NaiveResult("all-balanced", None, reason=f"all-balanced has no {', '.join(missing)}")
    else:
        n = max(-(-k // (balanced[p] * itype.gpu_count)) for p, k in slices.items())
        bal = NaiveResult("all-balanced", n, (("all-balanced", n),))
    per = tuple((model.require(p).layout_name, -(-k // (model.require(p).max_count * itype.gpu_count)))
                for p, k in slices.items())
    name = "one pool per profile (" + " + ".join(lname for lname, _ in per) + ")"
    return bal, NaiveResult(name, sum(n for _, n in per), per)


def load_demand(raw: Any) -> DemandSpec:
    """A demand file: instanceType, demand {profile: slices}; optional pricePerNodeHour, maxLayouts, maxNodes."""
    if not isinstance(raw, Mapping):
        raise ConfigError("demand file", raw, "a mapping with instanceType and demand")
    known = ("instanceType", "demand", "pricePerNodeHour", "maxLayouts", "maxNodes")
    for k in raw:
        if k not in known:
            raise ConfigError(str(k), raw[k], "unknown key; known keys: " + ", ".join(known))
    demand = raw.get("demand")
    if not isinstance(demand, Mapping):
        raise ConfigError("demand", demand, "a mapping of MIG profile to slice count, e.g. {1g.5gb: 40}")
    itype = raw.get("instanceType")
    if not isinstance(itype, str):
        raise ConfigError("instanceType", itype, "an instance type name such as p4d.24xlarge")
    return DemandSpec(itype, {str(k): v for k, v in demand.items()}, raw.get("pricePerNodeHour"),
                      raw.get("maxLayouts", DEFAULT_MAX_LAYOUTS), raw.get("maxNodes"))


def demand_from_stack(raw: Mapping[str, Any], instance_type: str | None = None) -> DemandSpec:
    """The MIG demand of a stack whose MIG workloads all run on one GPU model (see `demands_from_stack`)."""
    specs = demands_from_stack(raw, instance_type)
    if len(specs) > 1:
        raise ConfigError("instanceType", None,
                          "one instance type: the stack's MIG workloads run on "
                          + ", ".join(f"{s.instance_type} ({INSTANCE_TYPES[s.instance_type].gpu.name})" for s in specs)
                          + "; advise each with demands_from_stack (the CLI does)")
    return specs[0]


def demands_from_stack(raw: Mapping[str, Any], instance_type: str | None = None) -> list[DemandSpec]:
    """The MIG demand of a stack file's workloads (`gpu-slicing:workloads` with profile and replicas),
    one DemandSpec per GPU model: a profile is a slice of one model, and a node layout is per model.

    `raw` is the stack file or its `config:` mapping. A workload's instance type is its pool's (the
    first of a NodePool's types); workloads whose pool is not a MIG pool of the stack go to the first
    MIG-capable type. `instance_type` puts everything on that type instead. Workloads asking for whole
    GPUs (`gpus`) are not MIG demand; they are listed in `ignored` of the first spec.
    """
    cfg = raw.get("config", raw) if isinstance(raw, Mapping) else None
    if not isinstance(cfg, Mapping):
        raise ConfigError("config", raw, "a stack file with a config: mapping")
    shape = load_shape(cfg)  # every key and type as `make plan` reads them; the workloads need not fit yet
    if not shape.workloads:
        raise ConfigError(f"{NAMESPACE}:workloads", [], "a non-empty list of workloads with profile and replicas")
    pool_types = _stack_pool_types(shape)
    by_type: dict[str, tuple[dict[str, int], list[Mapping[str, Any]]]] = {}
    model_type: dict[str, str] = {}  # GPU model -> the instance type its demand is planned on
    ignored: list[str] = []
    for w, given in zip(shape.workloads, own_keys(cfg)["workloads"]):  # `given`: as written, for the advice
        if w.profile is None:
            ignored.append(w.name)
            continue
        itype = instance_type or pool_types.get(w.pool) or _stack_instance_type(pool_types)
        itype = model_type.setdefault(INSTANCE_TYPES[itype].gpu.name, itype) if itype in INSTANCE_TYPES else itype
        slices, items = by_type.setdefault(itype, ({}, []))
        slices[w.profile] = slices.get(w.profile, 0) + w.replicas
        if w.replicas:
            items.append({k: v for k, v in given.items() if k != "pool"} | {"replicas": w.replicas})
    if not by_type:
        return [DemandSpec(instance_type or _stack_instance_type(pool_types), {}, ignored=tuple(ignored))]
    return [DemandSpec(t, slices, workloads=tuple(items), ignored=tuple(ignored) if n == 0 else ())
            for n, (t, (slices, items)) in enumerate(by_type.items())]


def stack_config_of(plans: Sequence[Plan], karpenter: bool = False) -> dict[str, Any]:
    """One stack config for the plans of several GPU models: layouts, pools and workloads together,
    `maxGpuNodes` their sum (the plans' pool names must differ: give each a prefix)."""
    if len(plans) == 1:
        return plans[0].stack_config(karpenter)
    out: dict[str, Any] = {}
    for plan in plans:
        for k, v in plan.stack_config(karpenter)["config"].items():
            if k == f"{NAMESPACE}:maxGpuNodes":
                out[k] = out.get(k, 0) + v
            elif k == f"{NAMESPACE}:karpenter":
                merged = out.setdefault(k, {**v, "nodePools": []})
                merged["nodePools"] = merged["nodePools"] + list(v["nodePools"])
            elif isinstance(v, list):
                out[k] = out.get(k, []) + list(v)
            else:
                out[k] = {**out.get(k, {}), **v}
    return {"config": out}


def format_report(plan: Plan) -> str:
    """A readable report: pools and layouts, cost, lower bound and gap, and the naive choices."""
    it = INSTANCE_TYPES[plan.instance_type]
    lines = [f"Instance type: {plan.instance_type}",
             "Demand: " + ", ".join(f"{n} x {p}" for p, n in plan.demand.items())]
    if (caution := mig_warning(it)) is not None:
        lines.append(f"Caution: {caution}")
    if not it.gpu.placements_confirmed:
        lines.append(f"Caution: {it.gpu.name} MIG placements are {it.gpu.placements_source}")
    lines += ["", "Plan:"]
    custom = plan.stack_config()["config"].get(LAYOUTS_KEY, {})
    for p in plan.pools:
        if p.named:
            lines.append(f"  {p.name}: {p.nodes} node(s) labelled {p.layout} (NVIDIA layout)")
        else:  # the node label is the layout's name plus a hash of its contents (layouts.label_value)
            label = parse_custom_layouts({p.layout: custom[p.layout]})[p.layout].name
            lines.append(f"  {p.name}: {p.nodes} node(s) with custom layout {p.layout}, labelled {label}")
        for g in p.groups:
            lines.append(f"    GPU {','.join(map(str, g.devices))}: "
                         + " + ".join(f"{n} x {q}" for q, n in g.profiles.items()))
        lines.append("    per node: " + ", ".join(f"{n} x {q}" for q, n in p.per_node.items()))
    verdict = "optimal" if plan.gap == 0 else f"at most {plan.gap} node(s) above the optimum"
    lines += ["", f"Total: {plan.total_nodes} node(s), ${plan.cost_per_hour:,.2f}/h "
                  f"(${plan.price_per_node_hour:,.2f} per node-hour)",
              f"Lower bound: {plan.lower_bound} node(s) ({plan.lower_bound_gpus} GPUs, proven by ILP); "
              f"gap {plan.gap} ({verdict})", "", "Naive choices:"]
    for n in plan.naive:
        if n.total_nodes is None:
            lines.append(f"  {n.strategy}: cannot serve the demand ({n.reason})")
        else:
            lines.append(f"  {n.strategy}: {n.total_nodes} node(s), "
                         f"${n.total_nodes * plan.price_per_node_hour:,.2f}/h; "
                         f"the plan saves {n.total_nodes - plan.total_nodes} node(s)")
    return "\n".join(lines)


def _instance(name: Any) -> InstanceType:
    itype = INSTANCE_TYPES.get(name) if isinstance(name, str) else None
    if itype is None or not itype.gpu.mig_capable:
        mig = sorted(n for n, t in INSTANCE_TYPES.items() if t.gpu.mig_capable)
        raise ConfigError("instanceType", name, f"a MIG-capable instance type: {', '.join(mig)}")
    return itype


def _check_demand(model: GpuModel, demand: Any) -> dict[str, int]:
    if not isinstance(demand, Mapping):
        raise ConfigError("demand", demand, "a mapping of MIG profile to slice count")
    out: dict[str, int] = {}
    for p, n in demand.items():
        if model.profile(p) is None:
            raise ConfigError(f"demand.{p}", n, f"a MIG profile of {model.name}: {', '.join(model.profile_names)}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigError(f"demand.{p}", n, "a non-negative integer slice count")
        if n:
            out[p] = n
    if not out:
        raise ConfigError("demand", dict(demand), "at least one slice of one profile")
    return out


def _stack_pool_types(shape: StackConfig) -> dict[str, str]:
    """Pool name -> its MIG-capable instance type (a NodePool's first), for the stack's node groups and NodePools."""
    pools = [(g.name, g.instance_type) for g in shape.node_groups] + [
        (p.name, p.instance_types[0]) for p in shape.karpenter.node_pools]
    return {name: t for name, t in pools if INSTANCE_TYPES[t].gpu.mig_capable}


def _stack_instance_type(pool_types: Mapping[str, str]) -> str:
    """The first MIG-capable instance type among the stack's node groups and NodePools."""
    if not pool_types:
        raise ConfigError("instanceType", None, "given explicitly: the stack has no MIG-capable node group or NodePool")
    return next(iter(pool_types.values()))


Layout = tuple[tuple[Config, int], ...]  # a node's per-GPU configurations and how many GPUs get each
Found = list[tuple[int, Layout]]  # pools: (nodes, node layout)


@dataclass(frozen=True)
class _Problem:
    """The covering problem: demand `d`, per-GPU configurations as rows of `a`, `gpus` per node."""

    gpus: int
    configs: tuple[Config, ...]
    a: np.ndarray
    d: np.ndarray
    named: np.ndarray  # which configurations an NVIDIA layout covers

    @classmethod
    def of(cls, model: GpuModel, gpus: int, slices: Mapping[str, int]) -> _Problem:
        profiles = tuple(slices)
        configs = tuple(candidate_configs(model, profiles))
        a = np.array([[dict(c).get(p, 0) for p in profiles] for c in configs], dtype=float)
        named = np.array([named_layout_covering(model, c) is not None for c in configs])
        return cls(gpus, configs, a, np.array([slices[p] for p in profiles], dtype=float), named)

    def layout(self, y: np.ndarray) -> Layout:
        return tuple((self.configs[c], int(n)) for c, n in enumerate(y) if n)


def _partitions(total: int, parts: int, largest: int | None = None) -> Iterator[tuple[int, ...]]:
    """Splits of `total` into `parts` positive sizes, largest first (pools are interchangeable)."""
    largest = total if largest is None else largest
    if parts == 1:
        if 1 <= total <= largest:
            yield (total,)
        return
    for first in range(min(largest, total - parts + 1), 0, -1):
        if first * parts < total:
            break
        for rest in _partitions(total - first, parts - 1, first):
            yield (first,) + rest


def _ordered_partitions(total: int, parts: int) -> list[tuple[int, ...]]:
    """Most lopsided and most even splits in turn: a main pool with small ones settles fast, two
    large pools with coprime sizes can add up to a slice count almost exactly."""
    splits = sorted(_partitions(total, parts), key=lambda s: (-min(s), s))
    out: list[tuple[int, ...]] = []
    lo, hi = 0, len(splits) - 1
    while lo <= hi:
        out.append(splits[hi])
        if lo != hi:
            out.append(splits[lo])
        lo, hi = lo + 1, hi - 1
    return out


def _search(prob: _Problem, lower: int, limit: int, max_layouts: int) -> Found | None:
    """Fewest nodes first, then fewest pools, within the time budget; the winner is polished.

    The lower bound and the total above it get fixed shares of the budget (a demand that packs
    GPUs to the last slice can make the bound itself a needle in a haystack). Above them the
    search gallops (+2, +4, ...) and bisects back, which is sound because a plan of n nodes gives
    one of n + 1 (add a node to a pool); a probe that runs out of time counts as a miss, so the
    result may sit above the optimum, never below the bound. The last resort is the smallest
    single pool, bisected too.
    """
    start = time.perf_counter()
    best = _fit_total(prob, lower, max_layouts, start + LEVEL_SECONDS)
    if best is None and lower < limit:
        best = _fit_total(prob, lower + 1, max_layouts, time.perf_counter() + NEXT_LEVEL_SECONDS)
    if best is None:
        miss, step, hit = lower + 1, 1, None
        while hit is None and miss < limit:
            total = min(miss + step, limit)
            best = _fit_total(prob, total, max_layouts, _probe_end(start))
            if best is None:
                miss, step = total, step * 2
            else:
                hit = total
        while hit is not None and hit - miss > 1:
            total = (miss + hit) // 2
            found = _fit_total(prob, total, max_layouts, _probe_end(start))
            if found is None:
                miss = total
            else:
                hit, best = total, found
        if best is None:
            best = _bisect_single_pool(prob, lower, limit)
    if best is None:
        return None
    polish = min(POLISH_SECONDS, max(start + SEARCH_SECONDS + POLISH_SECONDS - time.perf_counter(), ILP_MIN_SECONDS))
    sizes = tuple(n for n, _ in best)
    y, _ = _pool_ilp(prob, sizes, polish, prob.named)
    return [(n, prob.layout(yi)) for n, yi in zip(sizes, y)] if y is not None else best


def _probe_end(start: float) -> float:
    """A probe above the bound gets a third of what is left of the budget, at least a few solves."""
    left = start + SEARCH_SECONDS - time.perf_counter()
    return time.perf_counter() + max(left / 3, 3 * ILP_MIN_SECONDS)


def _fit_total(prob: _Problem, total: int, max_layouts: int, end: float) -> Found | None:
    """A plan of exactly `total` nodes in at most `max_layouts` pools.

    A split into k pools is also one into k + 1 (halve a pool), so the most pools allowed fit
    most often: after one pool and a few quick splits into fewer pools, those are tried, then,
    with the time left, fewer pools again to simplify the plan.
    """
    top = min(max_layouts, total)
    fewer = [_ordered_partitions(total, k) for k in range(2, top)]
    first = [(total,)] + [s for splits in fewer for s in splits[:QUICK_SPLITS]]
    best = _first_fit(prob, first + _ordered_partitions(total, top), end)
    while best is not None and len(best) > 2 and time.perf_counter() < end:
        simpler = _first_fit(prob, [s for splits in fewer[:len(best) - 2] for s in splits], end)
        if simpler is None:
            break
        best = simpler
    return best


def _first_fit(prob: _Problem, splits: Sequence[tuple[int, ...]], end: float) -> Found | None:
    """The first of `splits` (pool sizes) that covers the demand, tried until `end`.

    Iterative deepening: every split first gets a short solve (most are refuted or solved in
    milliseconds), then the undecided ones get longer solves.
    """
    todo = list(splits)
    for cap in ILP_CAPS:
        undecided = []
        for sizes in todo:
            left = end - time.perf_counter()
            if left <= 0:
                return None
            y, decided = _pool_ilp(prob, sizes, min(max(left, ILP_MIN_SECONDS), cap))
            if y is not None:
                return [(n, prob.layout(yi)) for n, yi in zip(sizes, y)]
            if not decided:
                undecided.append(sizes)
        todo = undecided
    return None


def _bisect_single_pool(prob: _Problem, lo: int, hi: int) -> Found | None:
    """The smallest single pool: whether one pool of n nodes fits only gets easier as n grows."""
    found = None
    while lo <= hi:
        mid = (lo + hi) // 2
        y, _ = _pool_ilp(prob, (mid,), ILP_CAPS[-1])
        if y is None:
            lo = mid + 1
        else:
            found, hi = [(mid, prob.layout(y[0]))], mid - 1
    return found


def _pool_ilp(prob: _Problem, sizes: Sequence[int], seconds: float,
              named: np.ndarray | None = None) -> tuple[list[np.ndarray] | None, bool]:
    """Node layouts (GPUs per configuration) for pools of `sizes` nodes that together cover the
    demand, and whether the question was decided (False: time ran out before a plan or a proof).

    Variables y[k, c]: GPUs of a pool-k node with configuration c, summing to `gpus` per pool.
    Given `named` it also polishes: binaries u[k, c] (configuration c used in pool k) are
    minimised, a named one costing less, so layouts come out uniform and named where they can.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    a, d, gpus = prob.a, prob.d, prob.gpus
    k, nc = len(sizes), a.shape[0]
    ny = k * nc
    nvar = ny if named is None else 2 * ny
    cover = np.zeros((a.shape[1], nvar))
    per_node = np.zeros((k, nvar))
    for i, n in enumerate(sizes):
        cover[:, i * nc:(i + 1) * nc] = n * a.T
        per_node[i, i * nc:(i + 1) * nc] = 1
    rows = [cover, per_node]
    lbs = [d, np.full(k, gpus)]
    ubs = [np.full(len(d), np.inf), np.full(k, gpus)]
    cost = np.zeros(nvar)
    upper = np.full(nvar, gpus, dtype=float)
    options: dict[str, Any] = {"time_limit": seconds}
    if named is not None:
        rows.append(np.hstack([np.eye(ny), -gpus * np.eye(ny)]))  # y <= gpus * u
        lbs.append(np.full(ny, -np.inf))
        ubs.append(np.zeros(ny))
        cost[ny:] = np.tile(np.where(named, 1.0, 1.5), k)
        upper[ny:] = 1
        options["node_limit"] = POLISH_NODES
    res = milp(cost, integrality=np.ones(nvar), bounds=Bounds(np.zeros(nvar), upper),
               constraints=LinearConstraint(np.vstack(rows), np.concatenate(lbs), np.concatenate(ubs)),
               options=options)
    if res.x is None:
        return None, res.status == 2
    y = np.rint(res.x[:ny]).astype(int)
    return [y[i * nc:(i + 1) * nc] for i in range(k)], True


def _pool(itype: InstanceType, model: GpuModel, layout: Layout, nodes: int) -> AdvisedPool:
    """A pool from its node layout; named after the NVIDIA layout when it is one, else by content."""
    used = sorted(((n, c) for c, n in layout), key=lambda t: (-t[0], t[1]))
    if len(used) == 1:
        named = named_layout_covering(model, used[0][1])
        if named is not None:
            lname, profiles = named
            return AdvisedPool("", lname, True, (DeviceGroup(tuple(range(itype.gpu_count)), profiles),), nodes)
    groups, start = [], 0
    for n, c in used:
        groups.append(DeviceGroup(tuple(range(start, start + n)), dict(c)))
        start += n
    return AdvisedPool("", custom_layout_name(itype, groups), False, tuple(groups), nodes)


def named_layout_covering(model: GpuModel, config: Config) -> tuple[str, dict[str, int]] | None:
    """The NVIDIA layout whose per-GPU profiles include all of `config`, with those profiles."""
    for lname, layout in named_layouts(model).items():
        lp = {p: q for g in layout.groups if g.mig_enabled for p, q in g.profiles.items()}
        if lp and all(lp.get(p, 0) >= q for p, q in config):
            return lname, dict(sorted(lp.items()))
    return None


def custom_layout_name(itype: InstanceType, groups: Sequence[DeviceGroup]) -> str:
    """`advised-<family>-<hash>`: the same layout always gets the same name; a valid label value
    that never collides with NVIDIA's `all-*` names."""
    canon = json.dumps([[list(g.devices), sorted(g.profiles.items())] for g in groups], separators=(",", ":"))
    family = itype.name.split(".")[0]
    return f"advised-{family}-{hashlib.sha256(canon.encode()).hexdigest()[:10]}"


def _naive_fallback(itype: InstanceType, naive: Sequence[NaiveResult], max_layouts: int,
                    max_nodes: int | None) -> list[AdvisedPool] | None:
    """The best naive choice that meets the limits, as pools: the plan is never worse than it."""
    ok = [n for n in naive if n.total_nodes is not None and len(n.layouts) <= max_layouts
          and (max_nodes is None or n.total_nodes <= max_nodes)]
    if not ok:
        return None
    best = min(ok, key=lambda n: n.total_nodes or 0)
    layouts = named_layouts(itype.gpu)
    devices = tuple(range(itype.gpu_count))
    return [AdvisedPool("", lname, True, (DeviceGroup(devices, dict(sorted(layouts[lname].groups[0].profiles.items()))),), n)
            for lname, n in best.layouts]


def _name_pools(pools: Sequence[AdvisedPool], prefix: str) -> list[AdvisedPool]:
    """Pools of one layout merged, largest first, named `<prefix>-1`, ...; a pool over the config's
    node cap becomes several."""
    merged: dict[str, AdvisedPool] = {}
    for p in pools:
        q = merged.get(p.layout)
        merged[p.layout] = p if q is None else AdvisedPool(q.name, q.layout, q.named, q.groups, q.nodes + p.nodes)
    out: list[AdvisedPool] = []
    for p in sorted(merged.values(), key=lambda p: -p.nodes):
        left = p.nodes
        while left:
            n = min(left, MAX_POOL_NODES)
            out.append(AdvisedPool(f"{prefix}-{len(out) + 1}", p.layout, p.named, p.groups, n))
            left -= n
    return out


def _slug(profile: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", profile.lower()).strip("-")


def _assign(pools: Sequence[AdvisedPool], items: Sequence[Mapping[str, Any]]) -> tuple[Mapping[str, Any], ...]:
    """Pin workloads to pools so no pool is asked for more slices than it has.

    A workload goes whole to the pool with the least room that holds it; one that no pool holds
    is split over the pools with most room, as `<name>-<pool>` (a workload targets one pool).
    """
    left = {(p.name, q): p.capacity(q) for p in pools for q in p.per_node}
    out: list[dict[str, Any]] = []
    for w in items:
        profile, need = w["profile"], w["replicas"]
        room = sorted((left.get((p.name, profile), 0), i) for i, p in enumerate(pools))
        whole = next((i for r, i in room if r >= need), None)
        if whole is not None:
            pieces = [(pools[whole].name, need)]
        else:
            pieces = []
            for r, i in reversed(room):
                if r and need:
                    pieces.append((pools[i].name, min(r, need)))
                    need -= min(r, need)
            if need:
                raise RuntimeError(f"the plan does not cover workload {w['name']}")  # the ILP guarantees it
        for pool, n in pieces:
            left[(pool, profile)] -= n
            name = w["name"] if len(pieces) == 1 else f"{w['name'][:39 - len(pool)].rstrip('-')}-{pool}"
            out.append({**w, "name": name, "replicas": n, "pool": pool})
    return tuple(out)
