"""Cross-field rules of the stack config: what no single key can say wrong on its own.

Each rule names the key at fault in a `ConfigError`, and one run reports them together (`ConfigErrors`):
the cluster, network and pool-key rules; every pool resolved on its own (layout, sharing, instance types);
each resolved NodePool's Karpenter rules; the cost guard (when every pool resolved); each workload whose
pool resolved (its own rules in order, as each needs the one before). Only when all of those hold comes
capacity: every workload that does not fit on the nodes that will exist, through the same planner `make
plan` prints, so the errors and the table agree. `check` returns what it built on the way (the pools, the
workloads resolved against them and the capacity plan), so nothing downstream resolves or plans again.
"""
from __future__ import annotations

import functools
from typing import Any, Collection, Sequence

from . import capacity, dra, karpenter, workloads
from .config import MAX_POOL_NODES, NAMESPACE, StackConfig
from .errors import ConfigError, each, raise_all
from .pools import Pool, resolve_each_pool


def check(cfg: StackConfig) -> tuple[list[Pool], tuple[workloads.Workload, ...], capacity.CapacityPlan]:
    pools, pool_errors = resolve_each_pool(cfg)
    errors = [*_check_cluster(cfg), *_check_network(cfg), *_check_pool_keys(cfg), *pool_errors,
              *karpenter.rule_errors(cfg, pools), *dra.pool_rule_errors(cfg)]
    most = {p.name: karpenter.pool_node_bound(p) if p.kind == "nodePool" else p.nodes_max for p in pools}
    # the cost guard needs every pool; a workload on a pool that did not resolve waits for it
    unresolved = ({g.name for g in cfg.node_groups} | {p.name for p in cfg.karpenter.node_pools}) - set(most)
    if not pool_errors and sum(most.values()) > cfg.max_gpu_nodes:
        errors.append(ConfigError(f"{NAMESPACE}:maxGpuNodes", cfg.max_gpu_nodes,
                                  f"at least the {sum(most.values())} GPU nodes the pools may run "
                                  f"({', '.join(f'{k}: {v}' for k, v in most.items())}; a NodePool counts what its "
                                  "limits admit); raise it deliberately"))
    resolved, workload_errors = resolve_workloads(cfg, pools, skip=unresolved)
    raise_all([*errors, *workload_errors])
    plan = capacity_plan(cfg, pools, resolved)
    for err in plan.errors:
        key, value, text, pool = _capacity_error_args(err, cfg, pools)
        if pool is not None:  # more nodes: the cost guard must admit them too
            guard = (f"{NAMESPACE}:maxGpuNodes (now {cfg.max_gpu_nodes}; the pools may run {sum(most.values())} "
                     "today)")
            if err.field == "desiredSize":  # the guard counts a node group at maxSize: within it, nothing else moves
                text += (f" (up to maxSize, {pool.nodes_max}, nothing else changes; beyond it, maxSize and {guard} "
                         "must grow too)")
            else:
                text += f" (more nodes also need {guard} to cover them)"
        errors.append(ConfigError(key, value, text))
    raise_all(errors)
    return pools, workloads.verification(resolved), plan


def resolve_workloads(cfg: StackConfig, pools: list[Pool], skip: Collection[str] = ()
                      ) -> tuple[list[workloads.Workload], list[ConfigError]]:
    """Every workload against its pool (`gpu_slicing.workloads.resolve`), each on its own: those that resolve and
    the errors of those that do not. Workloads on the pools in `skip` (which did not resolve) wait for them."""
    by_name = {p.name: p for p in pools}
    return each([functools.partial(workloads.resolve, i, w, by_name, cfg.cluster.kubernetes_version)
                 for i, w in enumerate(cfg.workloads) if w.pool not in skip])


def _check_pool_keys(cfg: StackConfig) -> list[ConfigError]:
    out = []
    for i, g in enumerate(cfg.node_groups):
        if not g.min_size <= g.desired_size <= g.max_size:
            out.append(ConfigError(f"{NAMESPACE}:nodeGroups[{i}]", {"minSize": g.min_size, "desiredSize": g.desired_size,
                                                                     "maxSize": g.max_size},
                                   "minSize <= desiredSize <= maxSize"))
    if cfg.karpenter.node_pools and not cfg.karpenter.enabled:
        out.append(ConfigError(f"{NAMESPACE}:karpenter.nodePools", [p.name for p in cfg.karpenter.node_pools],
                               "no NodePools while karpenter.enabled is false (they would be silently ignored)"))
    names = [g.name for g in cfg.node_groups]
    for i, p in enumerate(cfg.karpenter.node_pools):
        if p.name in names:
            out.append(ConfigError(f"{NAMESPACE}:karpenter.nodePools[{i}].name", p.name,
                                   "a name not used by a node group (workloads select pools by name)"))
    return out


def capacity_plan(cfg: StackConfig, pools: list[Pool],
                  resolved: Sequence[workloads.Workload] | None = None) -> capacity.CapacityPlan:
    """The capacity plan of the stack: what every pool advertises, whether every workload fits, and what
    the nodes that will exist cost. `resolved`: the workloads as `check` resolved them (else resolved here)."""
    if resolved is None:
        found, errors = resolve_workloads(cfg, pools)
        raise_all(errors)
        resolved = found
    return capacity.plan_capacity(capacity_pools(pools), capacity_workloads(resolved),
                                  prices=getattr(cfg, "price_per_hour", None), max_pool_nodes=MAX_POOL_NODES)


def capacity_pools(pools) -> list:
    return [capacity.PoolCapacity(
        name=p.name, kind=p.kind, instance_type=p.largest.name, layout=p.layout.name,
        strategy=p.strategy, nodes_min=p.nodes_min, nodes_desired=p.nodes_desired, nodes_max=p.nodes_max,
        per_node=dict(p.per_node), labels=p.labels, taints=p.taints, mig_layout=p.layout, sharing=p.sharing,
        per_type={t: dict(v) for t, v in p.per_instance_type.items()} if p.kind == "nodePool" else {},
        pod_limit=dict(p.max_pods), daemon_sets=p.daemon_sets, capacity_type=p.capacity_type)
        for p in pools]


def capacity_workloads(resolved: Sequence[workloads.Workload]) -> list:
    return [capacity.WorkloadDemand(
        name=w.name, resource=w.resource, per_replica=w.count,
        replicas=1 if w.config.claim_sharing else w.config.replicas,  # a shared claim: one device for every replica
        pool=w.pool.name, node_selector=workloads.node_selector(w.pool), tolerations=[workloads.gpu_toleration()],
        alternatives=w.alternatives)
        for w in resolved]


_POOL_FIELDS = {"desiredSize", "maxNodes", "migLayout"}


def _capacity_error_args(err: Any, cfg: StackConfig, pools) -> tuple[str, Any, str, Pool | None]:
    """The key a capacity finding names: the pool's size when more nodes would fix it (with that pool), else
    the workload's own field (`gpus` when one pod is larger than any node, `profile`/`gpus` when the pool has
    no such resource)."""
    names = [w.name for w in cfg.workloads]
    i = names.index(err.workload) if err.workload in names else 0
    w = cfg.workloads[i]
    if err.field in _POOL_FIELDS:
        pool = next(p for p in pools if p.name == w.pool)
        value = pool.nodes_desired if err.field == "desiredSize" else pool.nodes_max
        return f"{pool.key}.{err.field}", value, str(err), pool
    field = err.field
    if field == "resource":
        field = "profile" if w.profile is not None else "gpus"
    value = {"gpus": w.gpus, "profile": w.profile, "pool": w.pool}.get(field, w.replicas)
    return f"{NAMESPACE}:workloads[{i}].{field}", value, str(err), None


def _check_cluster(cfg: StackConfig) -> list[ConfigError]:
    c = cfg.cluster
    key = f"{NAMESPACE}:cluster"
    out = []
    if not (c.endpoint_public_access or c.endpoint_private_access):
        out.append(ConfigError(f"{key}.endpointPrivateAccess", False,
                               "true when endpointPublicAccess is false (the API must be reachable)"))
    if c.endpoint_public_access and not c.public_access_cidrs:
        out.append(ConfigError(f"{key}.publicAccessCidrs", [], "at least one CIDR while endpointPublicAccess is "
                               "true (write 0.0.0.0/0 explicitly if you mean the whole internet)"))
    if not c.endpoint_public_access and c.public_access_cidrs:
        out.append(ConfigError(f"{key}.publicAccessCidrs", list(c.public_access_cidrs),
                               "empty while endpointPublicAccess is false"))
    return out


def _check_network(cfg: StackConfig) -> list[ConfigError]:
    n = cfg.network
    key = f"{NAMESPACE}:network"
    out = []
    if n.existing:
        if n.vpc_cidr is not None:
            out.append(ConfigError(f"{key}.vpcCidr", n.vpc_cidr, "absent when vpcId is set (the VPC exists)"))
        if len(n.private_subnet_ids) < 2:
            out.append(ConfigError(f"{key}.privateSubnetIds", list(n.private_subnet_ids),
                                   "at least 2 private subnets in different AZs (EKS requires two AZs)"))
        if not n.public_subnet_ids:
            out.append(ConfigError(f"{key}.publicSubnetIds", [], "at least 1 public subnet (load balancers)"))
    elif n.private_subnet_ids or n.public_subnet_ids:
        out.append(ConfigError(f"{key}.vpcId", None,
                               "set when subnet IDs are given (or drop the IDs to create a VPC)"))
    elif int(n.cidr.split("/")[1]) > 20:
        out.append(ConfigError(f"{key}.vpcCidr", n.cidr,
                               "a /20 or larger block: each AZ gets a private and a public subnet, and pods take "
                               "VPC IPs (a p4d alone can run hundreds)"))
    return out
