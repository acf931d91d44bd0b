"""GPU pools (managed node groups and Karpenter NodePools) resolved from config into one shape.

A `Pool` is what both the components and the capacity planner need to know: the instance types and
GPU, the MIG layout and strategy, time-slicing, node counts, the node labels and taints, and what
every node will advertise. Building it once keeps the Pulumi objects and the plan in agreement.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Mapping

from . import advertise, catalog, dra, layouts, sharing
from .catalog import InstanceType, MigLayout
from .config import NAMESPACE, NodeGroupConfig, NodePoolConfig, StackConfig
from .errors import ConfigError, each, raise_all
from .labels import DEVICE_PLUGIN_CONFIG_LABEL, GPU_TAINT, MIG_CONFIG_LABEL, POOL_LABEL


@dataclass(frozen=True)
class Pool:
    name: str
    kind: str  # "nodeGroup" | "nodePool"
    key: str  # config path, for error messages
    instance_types: tuple[InstanceType, ...]
    layout: MigLayout
    strategy: str
    sharing: sharing.Sharing | None
    nodes_min: int
    nodes_desired: int
    nodes_max: int
    per_node: Mapping[str, int]
    per_instance_type: Mapping[str, Mapping[str, int]]
    max_pods: Mapping[str, int] = field(default_factory=dict)  # instance type -> pods a node runs, all told
    daemon_sets: tuple[str, ...] = ()  # what runs on every node of the pool, each a pod against max_pods
    max_pods_override: int | None = None  # a NodePool's maxPods (EC2NodeClass kubelet.maxPods)
    capacity_type: str = "on-demand"  # "spot" for a SPOT node group or a NodePool that allows spot
    allocation: str = "devicePlugin"  # or "dra": per_node then counts DRA devices (gpu_slicing.dra)

    @property
    def pods_per_node(self) -> dict[str, int]:
        """Instance type -> pods a node runs for workloads: its pod limit less the DaemonSets' pods."""
        return {t: n - len(self.daemon_sets) for t, n in self.max_pods.items()}

    @property
    def instance_type(self) -> InstanceType:
        return self.instance_types[0]

    @property
    def largest(self) -> InstanceType:
        """The pool's roomiest instance type: what NodePool limits are sized for and the planner counts on."""
        return max(self.instance_types, key=lambda it: (it.gpu_count, it.vcpu, it.memory_gib))

    @property
    def gpu(self) -> catalog.GpuModel:
        return self.instance_type.gpu

    @property
    def labels(self) -> dict[str, str]:
        """Node labels: the MIG manager and the device plugin read these (docs/facts.md §1.8: set at creation)."""
        out = {POOL_LABEL: self.name}
        if self.gpu.mig_capable:
            out[MIG_CONFIG_LABEL] = self.layout.name
        if self.sharing is not None:
            out[DEVICE_PLUGIN_CONFIG_LABEL] = sharing.device_plugin_config_key(self.sharing)
        if self.allocation == dra.DRA:
            out.update(dra.node_labels(self))
        return out

    @property
    def taints(self) -> list[dict[str, str]]:
        return [dict(GPU_TAINT)]


def daemon_sets(cfg: StackConfig, gpu: catalog.GpuModel, share: sharing.Sharing | None,
                allocation: str = "devicePlugin") -> tuple[str, ...]:
    """The DaemonSets whose pods run on every GPU node of a pool, as this stack deploys them: EKS's own (they
    tolerate every taint), the Pod Identity agent Karpenter's add-on brings, the GPU Operator's operands with
    the values gpu_slicing.gpu_operator gives it (driver and toolkit come from the AMI, so not theirs; the
    MIG manager only on MIG-capable GPUs; dcgm-exporter is on by the chart's default) and the node exporter of
    an installed kube-prometheus-stack (it tolerates NoSchedule taints). On a DRA pool the DRA driver's kubelet
    plugin runs instead of the device plugin (its node label turns the device plugin off there)."""
    out = ["aws-node (VPC CNI)", "kube-proxy"]
    if cfg.karpenter.enabled:
        out.append("eks-pod-identity-agent")
    out += ["gpu-operator-node-feature-discovery-worker", "nvidia-operator-validator",
            f"{dra.RELEASE}-kubelet-plugin" if allocation == dra.DRA else "nvidia-device-plugin-daemonset",
            "gpu-feature-discovery", "nvidia-dcgm-exporter"]
    if gpu.mig_capable:
        out.append("nvidia-mig-manager")
    if share is not None and share.kind == sharing.MPS:
        out.append("nvidia-device-plugin-mps-control-daemon")
    if cfg.observability.enabled and cfg.observability.prometheus_operator == "install":
        out.append("prometheus-node-exporter")
    return tuple(out)


def _pod_limits(its: tuple[InstanceType, ...], override: int | None, key: str, ds: tuple[str, ...]
                ) -> dict[str, int]:
    """Instance type -> the pods a node runs, all told (EKS's ENI limit, or a NodePool's maxPods below it)."""
    limits = {it.name: catalog.eni_max_pods(it.name) for it in its}
    if override is not None:
        over = [f"{t} ({n})" for t, n in limits.items() if override > n]
        if over:
            raise ConfigError(f"{key}.maxPods", override,
                              f"at most the pod limit of every instance type of the pool: {', '.join(over)}; the VPC "
                              "CNI gives every pod an address of the node's network interfaces (EKS's limit per "
                              "type) and this program does not turn on prefix delegation, so pods beyond it would "
                              "never get an address")
        limits = {t: override for t in limits}
    least = min(limits.values())
    if least <= len(ds):
        raise ConfigError(f"{key}.maxPods", least,
                          f"more than the {len(ds)} DaemonSet pods every node of the pool runs ({', '.join(ds)}), "
                          "or no workload pod ever starts there")
    return limits


def _pool(name: str, kind: str, key: str, types: tuple[str, ...], layout_name: str, raw_sharing,
          strategy: str, custom: Mapping[str, MigLayout], nodes: tuple[int, int, int], cfg: StackConfig,
          max_pods: int | None = None, spot: bool = False, allocation: str = "devicePlugin") -> Pool:
    its = tuple(catalog.INSTANCE_TYPES[t] for t in types)
    if allocation == dra.DRA and layout_name == dra.DYNAMIC:
        raise dra.dynamic_mig_error(key, its[0], cfg.cluster.kubernetes_version)
    arches = {it.k8s_arch for it in its}
    if len(arches) > 1:
        raise ConfigError(f"{key}.instanceTypes", list(types),
                          f"instance types of one architecture (got {', '.join(sorted(arches))}): a pool's nodes share "
                          "one AMI type and one kubernetes.io/arch requirement")
    models = {it.gpu.name for it in its}
    if len(models) > 1 and layout_name != "all-disabled":
        raise ConfigError(f"{key}.instanceTypes", list(types),
                          f"instance types with one GPU model for a MIG pool (got {', '.join(sorted(models))}): "
                          "a MIG layout is per GPU model")
    # resolved (and checked) for every type; the types share one GPU model, so one layout results
    layout = [layouts.resolve_layout(layout_name, it, custom, f"{key}.migLayout") for it in its][-1]
    if strategy == "none" and layout.mig_enabled:
        raise ConfigError(f"{key}.migLayout", layout_name,
                          f"all-disabled while {NAMESPACE}:gpuOperator.migStrategy is none")
    share = sharing.parse_sharing(raw_sharing, f"{key}.sharing")
    fractional = [it.name for it in its if it.fraction is not None]
    if share is not None and fractional:
        raise ConfigError(f"{key}.sharing", raw_sharing,
                          f"no sharing on {', '.join(fractional)}: a fractional L4 vGPU has no MIG and the device "
                          "plugin cannot time-slice or MPS-share it; use g6 or gr6 for shared whole L4 GPUs")
    per_type: dict[str, dict[str, int]] = {}
    for it in its:  # the first type resolves "everything advertised"; the others are held to it
        if allocation == dra.DRA:  # the DRA driver publishes devices; the device plugin does not run there
            per_type[it.name] = dra.devices_per_node(it, layout)
        else:
            per_type[it.name], share = advertise.advertise(it, layout, strategy, share, key=key)
    resources = list(dict.fromkeys(r for p in per_type.values() for r in p))  # ordered, deterministic
    per_node = {r: min(p.get(r, 0) for p in per_type.values()) for r in resources}
    ds = daemon_sets(cfg, its[0].gpu, share, allocation)
    limits = _pod_limits(its, max_pods, key, ds)
    if share is not None:
        _check_shares(share, its, limits, ds, key)
    return Pool(name, kind, key, its, layout, strategy, share, *nodes, per_node, per_type, limits, ds, max_pods,
                "spot" if spot else "on-demand", allocation)


def _check_shares(share: sharing.Sharing, its: tuple[InstanceType, ...], limits: Mapping[str, int],
                  ds: tuple[str, ...], key: str) -> None:
    """More shares of one GPU (or slice) than a node can ever run pods are refused: they plan as capacity that
    never exists."""
    t = min(its, key=lambda it: limits[it.name])
    room = limits[t.name] - len(ds)
    if share.replicas > room:
        why = "EKS's limit for its network interfaces" if limits[t.name] == catalog.eni_max_pods(t.name) else \
            "the NodePool's maxPods"
        raise ConfigError(f"{key}.sharing.{share.kind}.replicas", share.replicas,
                          f"at most {room}: a node of {t.name} runs at most {limits[t.name]} pods ({why}), {len(ds)} "
                          f"of them DaemonSets, so more than {room} shares of one GPU or MIG slice could never all be "
                          "held at once")


def pool_of_node_group(g: NodeGroupConfig, i: int, cfg: StackConfig) -> Pool:
    key = f"{NAMESPACE}:nodeGroups[{i}]"
    return _pool(g.name, "nodeGroup", key, (g.instance_type,), g.mig_layout, g.sharing,
                 cfg.gpu_operator.mig_strategy, cfg.mig_layouts, (g.min_size, g.desired_size, g.max_size), cfg,
                 spot=g.capacity_type == "SPOT", allocation=g.allocation)


def pool_of_node_pool(p: NodePoolConfig, i: int, cfg: StackConfig) -> Pool:
    key = f"{NAMESPACE}:karpenter.nodePools[{i}]"
    return _pool(p.name, "nodePool", key, p.instance_types, p.mig_layout, p.sharing,
                 cfg.gpu_operator.mig_strategy, cfg.mig_layouts, (0, 0, p.max_nodes), cfg, p.max_pods,
                 spot="spot" in p.capacity_types, allocation=p.allocation)


def resolve_pools(cfg: StackConfig) -> list[Pool]:
    """Every pool, node groups first; every bad one is reported at once."""
    pools, errors = resolve_each_pool(cfg)
    raise_all(errors)
    return pools


def resolve_each_pool(cfg: StackConfig) -> tuple[list[Pool], list[ConfigError]]:
    """The pools that resolve, and the errors of those that do not: each pool resolves on its own."""
    return each([functools.partial(pool_of_node_group, g, i, cfg) for i, g in enumerate(cfg.node_groups)]
                + [functools.partial(pool_of_node_pool, p, i, cfg) for i, p in enumerate(cfg.karpenter.node_pools)])

