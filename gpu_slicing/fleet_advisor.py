"""Fleet advisor: the cheapest fleet for pods stated in GPU memory, over every candidate instance type.

A platform team starts from "40 pods need 5 GB each, 10 need 20 GB, 2 need 70 GB", not from MIG profiles.
Each pod gets one isolated MIG slice whose nominal memory (the `5gb` of `1g.5gb`) is at least its
`memoryGB`, or one whole GPU with that much memory. Time-slicing is not used (it shares a GPU's memory
without isolation) and host CPU and RAM are not modelled.

The problem is solved exactly, as an integer program (SciPy `milp`, i.e. HiGHS) over:
- n[t], the nodes of each candidate type t, costing its price per hour (the objective);
- g[t, c], the GPUs of type t under per-GPU configuration c: the placements of `placement.valid_configs`
  (plain profiles, a slice of a GPU) or the whole GPU with MIG off; sum_c g[t, c] <= GPUs per node * n[t].
  A node may mix configurations per GPU (mig-parted entries per device), so only the GPU totals matter.
Pod classes sorted by memory give nested eligibility: a slot that holds a pod of memory m holds every
smaller one. By Hall's theorem the pods fit iff, for each class i, the slots holding class i or larger
pods number at least the pods of class i or larger, so slots are counted by "level" (the largest class
they hold) and no assignment variables are needed. Configurations whose level counts another one
dominates, and instance types another type (of the same GPU for MIG, of at least as much GPU memory for
whole GPUs) always replaces at no more cost, are dropped first; neither loses the optimum.
"""
from __future__ import annotations

import math
import re
import textwrap
import time
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import lru_cache
from typing import Any, Mapping, Sequence

import numpy as np

from . import placement
from .advisor import DeviceGroup, check_pool_prefix, custom_layout_name, named_layout_covering
from .catalog import INSTANCE_TYPES, GpuModel, InstanceType, balanced_profiles, check_instance_type, mig_warning
from .config import MAX_POOL_NODES, NAMESPACE
from .errors import ConfigError, did_you_mean
from .layouts import LAYOUTS_KEY, parse_custom_layouts

# Each solve is limited by branch-and-bound nodes, not seconds: the same demand gets the same fleet, bound and
# naive figures on a busy machine as on an idle one (the benchmark's solves need at most 3 nodes).
SOLVE_NODES = 10_000  # the cheapest fleet, and each single-type fleet of the naive choice
POLISH_NODES = 200  # the fewest layouts at the optimum's node counts
RETRY_NODES = 200_000  # when no fleet at all was found within SOLVE_NODES (none of the benchmark's demands comes near)
BACKSTOP_SECONDS = 60.0  # per solve, only so a pathological demand cannot hang `make advise`
STACK_MAX_GPU_NODES = 1000  # the most a stack's maxGpuNodes admits (gpu_slicing.config)
FLEET_KEYS = ("pods", "instanceTypes", "pricePerHour")
POD_KEYS = ("name", "memoryGB", "replicas")
MAX_REPLICAS = 10000  # a workload's replicas limit in the stack config
_POD_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,28}[a-z0-9])?$")  # leaves room for "-<n>" in a 40-character name
_GB = re.compile(r"\.(\d+)gb")
WHOLE: tuple[tuple[str, int], ...] = ()  # the per-GPU configuration "MIG off, the GPU whole"
Config = tuple[tuple[str, int], ...]  # profile counts on one GPU, sorted; WHOLE for a whole GPU
WIDTH = 110  # the report's lines are wrapped here
NOTES = ("Each pod gets one isolated MIG slice (the profile's nominal memory, e.g. the 5gb of 1g.5gb, at least its "
         "memoryGB) or one whole GPU. Time-slicing is not used: it shares a GPU's memory without isolating it.",
         "Host CPU and RAM, and pods per node, are not modelled: check each pod class's CPU and memory requests "
         "against the instance types chosen.")


@dataclass(frozen=True)
class PodClass:
    name: str
    memory_gb: float
    replicas: int


@dataclass(frozen=True)
class FleetDemand:
    """Pod classes, and optionally the candidate instance types and price overrides (USD per node-hour)."""

    pods: tuple[PodClass, ...]
    instance_types: tuple[str, ...] | None = None
    prices: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Candidate:
    """An instance type the fleet may use, at its price, with the memory of one of its (whole) GPUs."""

    itype: InstanceType
    price: float
    gpu_memory_gb: float

    @property
    def name(self) -> str:
        return self.itype.name

    @property
    def gpus(self) -> int:
        return self.itype.gpu_count

    @property
    def mig(self) -> bool:
        return self.itype.gpu.mig_capable and self.itype.fraction is None


@dataclass(frozen=True)
class Pool:
    """`nodes` nodes of one instance type under one layout (per GPU: a configuration), and the pods it takes."""

    name: str
    instance_type: str
    nodes: int
    price: float
    layout: str | None  # the MIG layout label of a MIG-capable type; None for a type without MIG
    named: bool
    groups: tuple[DeviceGroup, ...]
    pods: tuple[tuple[str, str | None, int], ...] = ()  # (pod class, profile or None for a whole GPU, pods)

    @property
    def cost_per_hour(self) -> float:
        return round(self.nodes * self.price, 2)

    def slots(self) -> dict[str | None, int]:
        """Per node: slices per profile, and whole GPUs (key None)."""
        out: dict[str | None, int] = {}
        for g in self.groups:
            if g.profiles:
                for p, n in g.profiles.items():
                    out[p] = out.get(p, 0) + n * len(g.devices)
            else:
                out[None] = out.get(None, 0) + len(g.devices)
        return out


@dataclass(frozen=True)
class Naive:
    """A choice users make today and what it costs; `cost_per_hour` None when it cannot serve the demand."""

    strategy: str
    cost_per_hour: float | None
    nodes: Mapping[str, int] = field(default_factory=dict)
    reason: str = ""


@dataclass(frozen=True)
class FleetPlan:
    pods: tuple[PodClass, ...]
    candidates: tuple[Candidate, ...]
    dropped: Mapping[str, str]  # candidate type -> why it can never make a fleet cheaper
    skipped: Mapping[str, str]  # catalog types left out of the default candidates -> why
    pools: tuple[Pool, ...]
    lower_bound: float
    naive: tuple[Naive, ...]
    overridden: Mapping[str, float]
    seconds: float = 0.0

    @property
    def cost_per_hour(self) -> float:
        return round(sum(p.nodes * p.price for p in self.pools), 2)

    @property
    def gap(self) -> float:
        return round(max(self.cost_per_hour - self.lower_bound, 0.0), 2)

    @property
    def total_nodes(self) -> int:
        return sum(p.nodes for p in self.pools)

    def workloads(self) -> list[dict[str, Any]]:
        """One workload per (pod class, pool, slice): `<class>` when the class has one, else `<class>-<n>`
        (n skipping the names of other classes)."""
        pieces: dict[str, list[tuple[str, str | None, int]]] = {c.name: [] for c in self.pods}
        for p in self.pools:
            for cls, profile, n in p.pods:
                pieces[cls].append((p.name, profile, n))
        out = []
        used = set(pieces)  # a piece never takes another class's name (class "a-1" beside class "a" in two pieces)
        for cls, parts in pieces.items():
            k = 0
            for pool, profile, n in parts:
                name = cls
                while len(parts) > 1 and name in used:
                    k += 1
                    name = f"{cls}-{k}"
                used.add(name)
                w: dict[str, Any] = {"name": name}
                w |= {"profile": profile} if profile else {"gpus": 1}
                out.append(w | {"replicas": n, "pool": pool})
        return out

    def stack_config(self, karpenter: bool = False) -> dict[str, Any]:
        """The advisor's keys of a stack file (`config:` mapping), as the MIG layout advisor emits them."""
        cfg: dict[str, Any] = {}
        custom = {p.layout: [g.to_dict() for g in p.groups] for p in self.pools if p.layout and not p.named}
        if custom:
            cfg[LAYOUTS_KEY] = custom
        if karpenter:
            cfg[f"{NAMESPACE}:karpenter"] = {"enabled": True, "nodePools": [
                {"name": p.name, "instanceTypes": [p.instance_type], "capacityTypes": ["on-demand"]}
                | ({"migLayout": p.layout} if p.layout else {}) | {"maxNodes": p.nodes, "consolidateAfter": "10m"}
                for p in self.pools]}
        else:
            cfg[f"{NAMESPACE}:nodeGroups"] = [
                {"name": p.name, "instanceType": p.instance_type, "minSize": p.nodes, "desiredSize": p.nodes,
                 "maxSize": p.nodes, "diskSizeGiB": 200, "capacityType": "ON_DEMAND"}
                | ({"migLayout": p.layout} if p.layout else {}) for p in self.pools]
        cfg[f"{NAMESPACE}:maxGpuNodes"] = self.total_nodes
        used = {p.instance_type for p in self.pools}
        prices = {t: v for t, v in self.overridden.items() if t in used}
        if prices:
            cfg[f"{NAMESPACE}:pricePerHour"] = prices
        cfg[f"{NAMESPACE}:workloads"] = self.workloads()
        return {"config": cfg}

    def to_json(self, karpenter: bool = False) -> dict[str, Any]:
        return {
            "pods": [{"name": c.name, "memoryGB": c.memory_gb, "replicas": c.replicas} for c in self.pods],
            "candidates": {c.name: c.price for c in self.candidates},
            "costPerHour": self.cost_per_hour,
            "lowerBound": self.lower_bound,
            "gap": self.gap,
            "totalNodes": self.total_nodes,
            "pools": [{"name": p.name, "instanceType": p.instance_type, "nodes": p.nodes,
                       "pricePerNodeHour": p.price, "costPerHour": p.cost_per_hour}
                      | ({"layout": p.layout, "gpuLayouts": [g.to_dict() for g in p.groups]} if p.layout else {})
                      | {"pods": [{"name": c, **({"profile": q} if q else {"gpus": 1}), "replicas": n}
                                  for c, q, n in p.pods]} for p in self.pools],
            "naive": [{"strategy": n.strategy, "costPerHour": n.cost_per_hour, "nodes": dict(n.nodes)}
                      | ({"reason": n.reason} if n.reason else {}) for n in self.naive],
            "notes": list(NOTES),
            "stackConfig": self.stack_config(karpenter)["config"],
        }


# --- the demand file ----------------------------------------------------------------------------------

def is_fleet_demand(raw: Any) -> bool:
    """A demand file stated per pod class (`pods:`), not per MIG profile (`demand:`)."""
    return isinstance(raw, Mapping) and "pods" in raw


def load_fleet_demand(raw: Any) -> FleetDemand:
    """`pods: [{name, memoryGB, replicas}]`, optional `instanceTypes: [...]`, `pricePerHour: {type: USD}`."""
    if not isinstance(raw, Mapping):
        raise ConfigError("demand file", raw, "a mapping with pods")
    for k in raw:
        if k not in FLEET_KEYS:
            raise ConfigError(str(k), raw[k], "unknown key; " + did_you_mean(k, FLEET_KEYS)
                              + "a pods demand has the keys " + ", ".join(FLEET_KEYS))
    pods = raw.get("pods")
    if not isinstance(pods, list) or not pods:
        raise ConfigError("pods", pods, "a non-empty list of pod classes {name, memoryGB, replicas}")
    classes = tuple(_pod(i, p) for i, p in enumerate(pods))
    seen: dict[str, int] = {}
    for i, c in enumerate(classes):
        if c.name in seen:
            raise ConfigError(f"pods[{i}].name", c.name, f"a name not used before (pods[{seen[c.name]}] has it)")
        seen[c.name] = i
    types = raw.get("instanceTypes")
    if types is not None and (not isinstance(types, list) or not types):
        raise ConfigError("instanceTypes", types, "a non-empty list of GPU instance types, or no key (every type)")
    prices = raw.get("pricePerHour") or {}
    if not isinstance(prices, Mapping):
        raise ConfigError("pricePerHour", prices, "a mapping of instance type to USD per node-hour")
    return FleetDemand(classes, tuple(types) if types is not None else None, dict(prices))


def _pod(i: int, raw: Any) -> PodClass:
    key = f"pods[{i}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(key, raw, "a pod class {name, memoryGB, replicas}")
    for k in raw:
        if k not in POD_KEYS:
            raise ConfigError(f"{key}.{k}", raw[k], "unknown key; " + did_you_mean(k, POD_KEYS)
                              + "a pod class has the keys " + ", ".join(POD_KEYS))
    name = raw.get("name")
    if not isinstance(name, str) or not _POD_NAME.fullmatch(name):
        raise ConfigError(f"{key}.name", name, "a lowercase DNS label of 1-30 characters (a-z, 0-9, '-'), "
                                               "starting and ending with a letter or digit")
    mem = raw.get("memoryGB")
    if isinstance(mem, bool) or not isinstance(mem, (int, float)) or not math.isfinite(mem) or mem <= 0:
        raise ConfigError(f"{key}.memoryGB", mem, "the GPU memory one pod needs, in GB: a number greater than 0")
    replicas = raw.get("replicas", 1)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 1 <= replicas <= MAX_REPLICAS:
        raise ConfigError(f"{key}.replicas", replicas, f"the number of pods: an integer from 1 to {MAX_REPLICAS}")
    return PodClass(name, mem, replicas)


# --- candidates ------------------------------------------------------------------------------------------

def default_skip_reason(it: InstanceType) -> str | None:
    """Why a catalog type is not a default candidate, or None. Refused types (p6e-gb200) are not in the
    catalog's instance types at all; a type whose GPU the AMI's driver cannot run is left out too."""
    if it.fraction is not None:
        return (f"fractional vGPUs: each is a share of an {it.gpu.name} (its memory partitioned, its compute shared "
                "with the other shares), neither a MIG slice nor a whole GPU, and EC2 reports 0 GPUs for it "
                "(Karpenter launches it only with a NodeOverlay); name one in instanceTypes to weigh it (its "
                "memory counts as its fraction of the GPU's)")
    try:
        check_instance_type(it.name, "instanceTypes")
    except ConfigError as e:
        return e.allowed
    return None


def candidates(demand: FleetDemand) -> tuple[list[Candidate], dict[str, str]]:
    """The candidate types with their prices, and the catalog types skipped by default (with why)."""
    skipped: dict[str, str] = {}
    if demand.instance_types is None:
        names = []
        for name, it in INSTANCE_TYPES.items():
            why = default_skip_reason(it)
            if why is None and catalog_price(it) is None and name not in demand.prices:
                why = "in no price table this program keeps: give it a pricePerHour to weigh it"
            if why is None:
                names.append(name)
            else:
                skipped[name] = why
    else:
        names = []
        for i, name in enumerate(demand.instance_types):
            check_instance_type(name, f"instanceTypes[{i}]")
            if name in names:
                raise ConfigError(f"instanceTypes[{i}]", name, "a type not listed before")
            names.append(name)
    for t, v in demand.prices.items():
        if t not in names:
            hint = "" if t in INSTANCE_TYPES else did_you_mean(t, INSTANCE_TYPES, cutoff=0.8)
            raise ConfigError(f"pricePerHour.{t}", v, f"a price for one of the candidate types: {hint}"
                              + ", ".join(names))
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ConfigError(f"pricePerHour.{t}", v, "a price in USD per node-hour, a number greater than 0")
    out = []
    for name in names:
        it = INSTANCE_TYPES[name]
        price = demand.prices.get(name, catalog_price(it))
        if price is None:
            raise ConfigError(f"pricePerHour.{name}", None, f"a price in USD per node-hour: {name} is in no price "
                                                             "table this program keeps")
        out.append(Candidate(it, float(price), gpu_memory_gb(it)))
    return out, skipped


def gpu_memory_gb(it: InstanceType) -> float:
    """The GPU memory one pod can have on `it` whole: a fractional vGPU's is its fraction of the GPU's."""
    return float(it.gpu.memory_gib * (it.fraction if it.fraction is not None else Fraction(1)))


def catalog_price(it: InstanceType) -> float | None:
    """The catalog's kept on-demand price of `it`, or None where it keeps none."""
    price = getattr(it, "on_demand_usd_per_hour", None)
    if isinstance(price, bool) or not isinstance(price, (int, float)) or not math.isfinite(price) or price <= 0:
        return None
    return float(price)


def _cents(x: float) -> int:
    return int(round(x * 100))


def dominated_types(cands: Sequence[Candidate]) -> dict[str, str]:
    """Types another candidate replaces at no more cost: k = ceil(GPUs / its GPUs) nodes of the other type
    carry at least as many GPUs, of the same model for a MIG-capable type (its slices), or of at least as
    much memory when the type runs whole GPUs only. Ties keep the type with fewer GPUs per node (finer
    steps), then the cheaper, then the first by name, so no two types drop each other."""
    def key(c: Candidate) -> tuple:
        return (c.gpus, c.price, c.name)

    out: dict[str, str] = {}
    for c in cands:
        for o in cands:
            if o is c:
                continue
            same = o.itype.gpu.name == c.itype.gpu.name and o.gpu_memory_gb == c.gpu_memory_gb and o.mig == c.mig
            if not (same if c.mig else o.gpu_memory_gb >= c.gpu_memory_gb):
                continue
            k = -(-c.gpus // o.gpus)
            cost = _cents(k * o.price)
            if cost < _cents(c.price) or (cost == _cents(c.price) and key(o) < key(c)):
                out[c.name] = f"{k} x {o.name}"
                break
    return out


# --- per-GPU configurations by level --------------------------------------------------------------------

def nominal_gb(profile: str) -> int:
    """The memory a MIG profile's name states (`3g.20gb` -> 20)."""
    m = _GB.search(profile)
    if m is None:
        raise ValueError(f"not a MIG profile name: {profile}")
    return int(m.group(1))


def level(gb: float, memories: Sequence[float]) -> int:
    """How many of the distinct pod memories (ascending) fit `gb`: the largest class a slot holds."""
    return sum(1 for m in memories if m <= gb)


@lru_cache(maxsize=None)
def level_configs(model: GpuModel, whole_gb: float, mig: bool,
                  memories: tuple[float, ...]) -> tuple[tuple[tuple[int, ...], Config], ...]:
    """The per-GPU configurations worth using for pods of `memories` (distinct, ascending): for each, the
    slots at or above each level (suffix counts) and one configuration of profiles that has them.

    Only plain profiles (no `+me`, `+gfx`, `-me` variant: same slices, at most as placeable) short of the
    whole GPU (a 7g slice holds no more than the GPU whole) are used, each only if some pod fits it;
    a configuration whose suffix counts another one's all reach or beat is dropped (Hall's condition only
    reads those counts). The representative is the one an NVIDIA layout covers, if any, else the first
    by name, so layouts come out named where they can.
    """
    nlev = len(memories)
    whole = level(whole_gb, memories)
    found: dict[tuple[int, ...], Config] = {}

    def add(config: Config, levels: Sequence[int]) -> None:
        suffix = tuple(sum(1 for x in levels if x >= i) for i in range(1, nlev + 1))
        if not any(suffix):
            return
        old = found.get(suffix)
        if old is None or _prefer(model, config, old):
            found[suffix] = config

    if whole:
        add(WHOLE, [whole])
    if mig:
        useful = {p.name: level(nominal_gb(p.name), memories) for p in model.profiles
                  if not p.attribute and p.compute < model.compute_slices}
        useful = {p: lv for p, lv in useful.items() if lv}
        only = replace(model, profiles=tuple(p for p in model.profiles if p.name in useful))
        for c in placement.valid_configs(only):  # the placement rules over just these profiles: far fewer walks
            if not c:
                continue
            config = tuple(sorted(c.items()))
            add(config, [useful[p] for p, n in config for _ in range(n)])
    keep = [(s, c) for s, c in found.items()
            if not any(o != s and all(a >= b for a, b in zip(o, s)) for o in found)]
    return tuple(sorted(keep))


def _prefer(model: GpuModel, a: Config, b: Config) -> bool:
    """Whether configuration `a` is the better representative: covered by an NVIDIA layout, then fewer slices
    (less to configure), then by name."""
    def key(c: Config) -> tuple:
        named = c != WHOLE and named_layout_covering(model, c) is not None
        return (not named and c != WHOLE, sum(n for _, n in c), c)

    return key(a) < key(b)


# --- the integer program -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Program:
    cands: tuple[Candidate, ...]
    configs: tuple[tuple[tuple[tuple[int, ...], Config], ...], ...]  # per candidate
    need: tuple[int, ...]  # pods at or above each level

    @classmethod
    def of(cls, cands: Sequence[Candidate], pods: Sequence[PodClass]) -> _Program:
        memories = tuple(sorted({c.memory_gb for c in pods}))
        need = tuple(sum(c.replicas for c in pods if c.memory_gb >= m) for m in memories)
        configs = tuple(level_configs(c.itype.gpu, c.gpu_memory_gb, c.mig, memories) for c in cands)
        return cls(tuple(cands), configs, need)

    def solve(self, only: Sequence[int] | None, node_limit: int,
              nodes_fixed: Sequence[int] | None = None) -> tuple[float, float, list[int], list[list[int]]] | None:
        """(cost, lower bound, nodes per candidate, GPUs per configuration per candidate) of the cheapest
        fleet of the candidates `only` (all when None); None when they cannot hold the pods.

        With `nodes_fixed` (a fleet's node counts, so its cost) it polishes instead: the same constraints,
        the fewest distinct configurations per type (binaries u >= g / most GPUs), so nodes share layouts.
        `node_limit` bounds the branch-and-bound nodes: unlike a time limit, it gives the same answer on every
        machine, however busy.
        """
        from scipy.optimize import Bounds, LinearConstraint, milp  # ~0.8 s to import: only when solving

        use = [i for i in range(len(self.cands)) if (only is None or i in only) and self.configs[i]
               and (nodes_fixed is None or nodes_fixed[i])]
        if not use:
            return None
        nlev = len(self.need)
        cols: list[tuple[int, int]] = []  # (candidate, configuration index or -1 for its node count)
        for i in use:
            cols.append((i, -1))
            cols += [(i, j) for j in range(len(self.configs[i]))]
        nvar = len(cols)
        cost = np.zeros(nvar)
        upper = np.zeros(nvar)
        cover = np.zeros((nlev, nvar))
        per_node = np.zeros((len(use), nvar))
        row = {i: r for r, i in enumerate(use)}
        for v, (i, j) in enumerate(cols):
            c = self.cands[i]
            if j < 0:
                cost[v] = c.price
                upper[v] = -(-self.need[0] // c.gpus)
                per_node[row[i], v] = -c.gpus
            else:
                cover[:, v] = self.configs[i][j][0]
                upper[v] = self.need[0]
                per_node[row[i], v] = 1
        if np.any(cover.sum(axis=1) == 0):
            return None
        lower = np.zeros(nvar)
        options: dict[str, Any] = {"mip_rel_gap": 0.0, "node_limit": node_limit, "time_limit": BACKSTOP_SECONDS}
        if nodes_fixed is not None:
            configs = [v for v, (_, j) in enumerate(cols) if j >= 0]
            for v, (i, j) in enumerate(cols):
                if j < 0:
                    lower[v] = upper[v] = nodes_fixed[i]
            link = np.zeros((len(configs), nvar + len(configs)))
            for k, v in enumerate(configs):
                link[k, v], link[k, nvar + k] = 1, -nodes_fixed[cols[v][0]] * self.cands[cols[v][0]].gpus
            cover = np.hstack([cover, np.zeros((nlev, len(configs)))])
            per_node = np.hstack([per_node, np.zeros((len(use), len(configs)))])
            cost = np.concatenate([np.zeros(nvar), np.ones(len(configs))])
            lower, upper = np.concatenate([lower, np.zeros(len(configs))]), np.concatenate([upper, np.ones(len(configs))])
        constraints = [LinearConstraint(cover, np.array(self.need, dtype=float), np.inf),
                       LinearConstraint(per_node, -np.inf, 0)]
        if nodes_fixed is not None:
            constraints.append(LinearConstraint(link, -np.inf, 0))
        res = milp(cost, integrality=np.ones(len(cost)), bounds=Bounds(lower, upper), constraints=constraints,
                   options=options)
        if res.x is None:
            return None
        bound = res.fun if res.status == 0 else getattr(res, "mip_dual_bound", None)
        if bound is None or not math.isfinite(bound):
            bound = 0.0
        x = np.rint(res.x).astype(int)
        nodes = [0] * len(self.cands)
        gpus: list[list[int]] = [[0] * len(cfgs) for cfgs in self.configs]
        for v, (i, j) in enumerate(cols):
            if j < 0:
                nodes[i] = int(x[v])
            else:
                gpus[i][j] = int(x[v])
        total = float(sum(nodes[i] * self.cands[i].price for i in use))
        return total, float(bound), nodes, gpus


# --- the plan ------------------------------------------------------------------------------------------------

def advise_fleet(demand: FleetDemand, pool_prefix: str = "advised") -> FleetPlan:
    """The cheapest fleet for `demand`, proved by the integer program, with the naive choices beside it.
    Pools are named `<pool_prefix>-<instance family>-<n>`."""
    start = time.perf_counter()
    check_pool_prefix(pool_prefix)
    all_cands, skipped = candidates(demand)
    _check_fits(demand.pods, all_cands)
    dropped = dominated_types(all_cands)
    cands = [c for c in all_cands if c.name not in dropped]
    prog = _Program.of(cands, demand.pods)
    solved = prog.solve(None, SOLVE_NODES)
    if solved is None:  # every pod fits some candidate's GPU: the node limit ran out before a first fleet
        solved = prog.solve(None, RETRY_NODES)
    if solved is None:
        raise RuntimeError(f"the solver found no fleet in {RETRY_NODES} branch-and-bound nodes")
    total, bound, nodes, gpus = solved
    polished = prog.solve(None, POLISH_NODES, nodes_fixed=nodes)
    if polished is not None:
        gpus = polished[3]
    pools = _pools(prog, nodes, gpus, pool_prefix)
    _assign(pools, demand.pods)
    naive = (_balanced_naive(all_cands, demand.pods), _single_type_naive(prog))
    overridden = {t: float(v) for t, v in demand.prices.items()}
    return FleetPlan(demand.pods, tuple(all_cands), dropped, skipped, tuple(pools),
                     round(min(bound, total), 2), naive, overridden, time.perf_counter() - start)


def _check_fits(pods: Sequence[PodClass], cands: Sequence[Candidate]) -> None:
    """A pod gets at most one GPU: one larger than every candidate's GPU is an error naming it."""
    biggest = max(cands, key=lambda c: (c.gpu_memory_gb, -c.price))
    for i, c in enumerate(pods):
        if c.memory_gb > biggest.gpu_memory_gb:
            raise ConfigError(f"pods[{i}].memoryGB", c.memory_gb,
                              f"at most {biggest.gpu_memory_gb:g} GB: a pod gets one GPU or a slice of one, and the "
                              f"largest GPU among the candidate types ({biggest.name}, {biggest.itype.gpu.name}) "
                              f"has {biggest.gpu_memory_gb:g} GB")


def _pools(prog: _Program, nodes: Sequence[int], gpus: Sequence[Sequence[int]], prefix: str) -> list[Pool]:
    """Nodes from the GPU totals: whole nodes of one configuration first, the rest filled in order
    (idle GPUs stay whole); nodes with the same layout form a pool (split at the pool node limit)."""
    out: list[Pool] = []
    for i, c in enumerate(prog.cands):
        if not nodes[i]:
            continue
        layouts: dict[tuple[tuple[Config, int], ...], int] = {}
        rest: list[Config] = []
        for (_, config), g in zip(prog.configs[i], gpus[i]):
            full, left = divmod(g, c.gpus)
            if full:
                layouts[((config, c.gpus),)] = layouts.get(((config, c.gpus),), 0) + full
            rest += [config] * left
        used = sum(layouts.values())
        rest += [WHOLE] * ((nodes[i] - used) * c.gpus - len(rest))
        for k in range(0, len(rest), c.gpus):
            chunk = rest[k:k + c.gpus]
            key = tuple(sorted((cfg, chunk.count(cfg)) for cfg in set(chunk)))  # equal nodes, one key
            layouts[key] = layouts.get(key, 0) + 1
        family = c.itype.family
        for layout, n in sorted(layouts.items(), key=lambda kv: -kv[1]):
            lname, named, groups = _layout(c, layout)
            while n:
                take = min(n, MAX_POOL_NODES)
                pname = f"{prefix}-{family}-{sum(1 for p in out if p.instance_type.split('.')[0] == family) + 1}"
                out.append(Pool(pname, c.name, take, c.price, lname, named, groups))
                n -= take
    return out


def _layout(c: Candidate, layout: Sequence[tuple[Config, int]]) -> tuple[str | None, bool, tuple[DeviceGroup, ...]]:
    """The MIG layout label and per-GPU groups of a node: an NVIDIA layout where one covers it (all-disabled
    for whole GPUs), else a custom one named by its content; None on a type without MIG."""
    if not c.mig:
        return None, False, (DeviceGroup(tuple(range(c.gpus)), {}),)
    if len(layout) == 1:
        config = layout[0][0]
        named = ("all-disabled", {}) if config == WHOLE else named_layout_covering(c.itype.gpu, config)
        if named is not None:
            return named[0], True, (DeviceGroup(tuple(range(c.gpus)), named[1]),)
    groups, start = [], 0
    for config, n in sorted(layout, key=lambda t: (t[0] == WHOLE, -t[1], t[0])):
        groups.append(DeviceGroup(tuple(range(start, start + n)), dict(config)))
        start += n
    return custom_layout_name(c.itype, groups), False, tuple(groups)


def _assign(pools: list[Pool], pods: Sequence[PodClass]) -> None:
    """Pods to slots: the largest pods first, each to the smallest slots that hold it (optimal for nested
    sizes, so it succeeds whenever Hall's condition, which the program enforces, holds)."""
    slots: list[tuple[float, int, str | None]] = []  # (memory, pool index, profile or None for a whole GPU)
    room: list[int] = []
    for k, p in enumerate(pools):
        whole_gb = gpu_memory_gb(INSTANCE_TYPES[p.instance_type])
        for profile, n in p.slots().items():
            slots.append((nominal_gb(profile) if profile else whole_gb, k, profile))
            room.append(n * p.nodes)
    order_slots = sorted(range(len(slots)), key=lambda s: (slots[s][0], slots[s][1], slots[s][2] or ""))
    taken: list[dict[tuple[str, str | None], int]] = [{} for _ in pools]
    for c in sorted(pods, key=lambda c: -c.memory_gb):
        need = c.replicas
        for s in order_slots:
            gb, k, profile = slots[s]
            if need and room[s] and gb >= c.memory_gb:
                n = min(need, room[s])
                room[s] -= n
                need -= n
                taken[k][(c.name, profile)] = taken[k].get((c.name, profile), 0) + n
        if need:
            raise RuntimeError(f"the fleet does not hold pod class {c.name}")  # the program guarantees it
    order = {c.name: i for i, c in enumerate(pods)}
    for k, p in enumerate(pools):
        items = sorted(taken[k].items(), key=lambda kv: (order[kv[0][0]], kv[0][1] or ""))
        pools[k] = Pool(p.name, p.instance_type, p.nodes, p.price, p.layout, p.named, p.groups,
                        tuple((cls, prof, n) for (cls, prof), n in items))


# --- what users do today -------------------------------------------------------------------------------------

def _balanced_naive(cands: Sequence[Candidate], pods: Sequence[PodClass]) -> Naive:
    """Everything on the candidate MIG type with the most GPU memory, under all-balanced; pods no balanced
    slice holds get whole GPUs on all-disabled nodes of that type."""
    mig = [c for c in cands if c.mig]
    if not mig:
        return Naive("all-balanced on the largest-memory MIG type", None, reason="no candidate type has MIG")
    c = max(mig, key=lambda c: (c.gpu_memory_gb, c.gpus, -c.price))
    strategy = f"everything on {c.name} (the most GPU memory) under all-balanced"
    bal = sorted(nominal_gb(p) for p, n in balanced_profiles(c.itype.gpu).items() for _ in range(n))
    big = [p for p in pods if p.memory_gb > bal[-1]]
    small = [p for p in pods if p.memory_gb <= bal[-1]]
    too_big = [p.name for p in big if p.memory_gb > c.gpu_memory_gb]
    if too_big:
        return Naive(strategy, None, reason=f"{', '.join(too_big)} need more than one {c.itype.gpu.name}")
    whole_nodes = -(-sum(p.replicas for p in big) // c.gpus)
    # nested sizes (Hall): n nodes hold the pods iff for each pod size m, the pods of m GB or more number at
    # most the slices of m GB or more
    n = max((-(-sum(q.replicas for q in small if q.memory_gb >= p.memory_gb)
               // (c.gpus * sum(1 for gb in bal if gb >= p.memory_gb))) for p in small), default=0)
    nodes = n + whole_nodes
    return Naive(strategy, round(nodes * c.price, 2), {c.name: nodes} if nodes else {},
                 f"{whole_nodes} all-disabled node(s) for pods larger than a balanced slice" if whole_nodes else "")


def _single_type_naive(prog: _Program) -> Naive:
    """The cheapest fleet of one instance type (each candidate's own optimum, by the same program); one whose
    node limit runs out counts with its best fleet."""
    best: tuple[float, str, int] | None = None
    for i, c in enumerate(prog.cands):
        solved = prog.solve([i], SOLVE_NODES)
        if solved is not None and (best is None or solved[0] < best[0]):
            best = (solved[0], c.name, solved[2][i])
    if best is None:
        return Naive("the cheapest single instance type", None, reason="no one candidate type holds every pod")
    cost, name, nodes = best
    return Naive(f"the cheapest single instance type ({name})", round(cost, 2), {name: nodes})


# --- the report ------------------------------------------------------------------------------------------------

def format_fleet_report(plan: FleetPlan) -> str:
    kept = [c for c in plan.candidates if c.name not in plan.dropped]
    lines = ["Pods (GPU memory each): " + ", ".join(f"{c.replicas} x {c.name} {c.memory_gb:g} GB" for c in plan.pods),
             f"Candidates: {len(plan.candidates)} instance types"
             + (" (every GPU type the catalog knows that this program deploys)" if plan.skipped else "")]
    about = ["weighed: " + ", ".join(f"{c.name} ${c.price:,.2f}/h" for c in kept)]
    if plan.dropped:
        about.append("dropped, as the nodes in brackets cost no more and hold as much: "
                     + ", ".join(f"{t} ({why})" for t, why in plan.dropped.items()))
    for why in dict.fromkeys(plan.skipped.values()):
        about.append(f"left out: {', '.join(t for t, w in plan.skipped.items() if w == why)}: {why}")
    lines += [textwrap.fill(a, WIDTH, initial_indent="  ", subsequent_indent="    ", break_on_hyphens=False)
              for a in about]
    lines += [textwrap.fill(n, WIDTH) for n in NOTES]
    lines += ["", "Plan:"]
    for p in plan.pools:
        it = INSTANCE_TYPES[p.instance_type]
        head = f"  {p.name}: {p.nodes} x {p.instance_type} ({it.gpu_count} x {it.gpu.name}), ${p.cost_per_hour:,.2f}/h"
        if p.layout is None:
            lines.append(head + ", whole GPUs")
        elif p.named:
            lines.append(head + f", labelled {p.layout} (NVIDIA layout)")
        else:
            label = parse_custom_layouts({p.layout: [g.to_dict() for g in p.groups]})[p.layout].name
            lines.append(head + f", custom layout {p.layout}, labelled {label}")
        if p.layout is not None:
            for g in p.groups:
                lines.append(f"    GPU {','.join(map(str, g.devices))}: "
                             + (" + ".join(f"{n} x {q}" for q, n in g.profiles.items()) or "whole (MIG off)"))
        lines.append("    takes: " + ", ".join(f"{n} x {cls} ({q or 'whole GPU'})" for cls, q, n in p.pods))
        if (caution := mig_warning(it)) is not None and any(q for _, q, _ in p.pods):
            lines.append(f"    Caution: {caution}")
        if it.arch != "x86_64":
            lines.append(f"    Caution: {it.arch} nodes: the pods there need {it.arch} images")
    verdict = "optimal" if plan.gap == 0 else f"at most ${plan.gap:,.2f}/h above the optimum (the solver's node limit ran out)"
    lines += ["", f"Total: ${plan.cost_per_hour:,.2f}/h on {plan.total_nodes} node(s)",
              f"Lower bound: ${plan.lower_bound:,.2f}/h, proven by ILP; {verdict}"]
    if plan.total_nodes > STACK_MAX_GPU_NODES:
        lines.append(f"Caution: one stack runs at most {STACK_MAX_GPU_NODES} GPU nodes (maxGpuNodes): split the "
                     "pools over stacks")
    lines += ["", "Naive choices:"]
    for n in plan.naive:
        if n.cost_per_hour is None:
            lines.append(f"  {n.strategy}: cannot serve the pods ({n.reason})")
        else:
            nodes = ", ".join(f"{k} x {t}" for t, k in n.nodes.items())
            extra = f"; {n.reason}" if n.reason else ""
            lines.append(f"  {n.strategy}: {nodes}, ${n.cost_per_hour:,.2f}/h{extra}; the plan saves "
                         f"${n.cost_per_hour - plan.cost_per_hour:,.2f}/h")
    return "\n".join(lines)
