"""The one load pipeline: a stack file's config -> shape and types -> GPU pools -> rules across keys, each
workload resolved against its pool -> capacity plan. The program, the offline plan and its checks, the advisor
and the tests all load a stack through `load_stack`, and a run loads each config once (the result is kept per
config). What it returns is resolved: each pool with its own config block, each workload with its pool, names
and what it waits for, the GPU Operator's values and ConfigMaps, the dashboard, so the components build from it
and derive nothing."""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any, Generic, Mapping, TypeVar

from . import gpu_operator, observability, validate
from .capacity import CapacityPlan
from .config import GpuOperatorConfig, NodeGroupConfig, NodePoolConfig, ObservabilityConfig, StackConfig, parse_shape
from .dra import DRA
from .pools import Pool
from .workloads import Workload


C = TypeVar("C", NodeGroupConfig, NodePoolConfig)


@dataclass(frozen=True)
class Resolved(Generic[C]):
    """A pool's config block (a managed node group's or a Karpenter NodePool's) and the pool it resolved to."""

    config: C
    pool: Pool

    @property
    def name(self) -> str:
        return self.pool.name


NodeGroup = Resolved[NodeGroupConfig]
NodePool = Resolved[NodePoolConfig]


@dataclass(frozen=True)
class Operator:
    """The GPU Operator as the stack resolves it: its settings, its chart values and the data of the ConfigMaps
    of our own the values point at (None: not needed)."""

    settings: GpuOperatorConfig
    values: Mapping[str, Any]
    mig_parted: str | None  # the MIG manager's config.yaml: custom and retained layouts
    device_plugin: Mapping[str, str] | None  # the device plugin's configs: sharing
    exporter_csv: str | None  # dcgm-exporter's metrics list: slices watched or present


@dataclass(frozen=True)
class Monitoring:
    """Monitoring as the stack resolves it: its settings, and the alert rule and Grafana dashboard ConfigMap for
    its pools (the DRA alerts and panels only where a pool is DRA)."""

    settings: ObservabilityConfig
    rule: Mapping[str, Any]
    dashboard: Mapping[str, Any]


@dataclass(frozen=True)
class Stack:
    """A valid stack: its config, its GPU pools (node groups first, then NodePools; each also with its config
    block in `node_groups` / `node_pools`), its workloads resolved against them and its capacity plan."""

    config: StackConfig
    pools: tuple[Pool, ...]
    capacity: CapacityPlan
    node_groups: tuple[NodeGroup, ...] = ()
    node_pools: tuple[NodePool, ...] = ()
    workloads: tuple[Workload, ...] = ()

    def pool(self, name: str) -> Pool:
        return next(p for p in self.pools if p.name == name)

    @property
    def gpu_instance_types(self) -> list[str]:
        """Every GPU instance type a pool may launch, node groups first (a VPC's zones are chosen for them)."""
        return [t.name for p in self.pools for t in p.instance_types]

    @property
    def gpu_operator(self) -> Operator:
        cfg, pools = self.config, self.pools
        retained = cfg.gpu_operator.retained_mig_layouts
        return Operator(
            cfg.gpu_operator, gpu_operator.operator_values(cfg, pools),
            gpu_operator.mig_parted_config(pools, retained)
            if gpu_operator.needs_mig_parted_configmap(pools, retained) else None,
            gpu_operator.device_plugin_configs(cfg, pools) if gpu_operator.needs_device_plugin_configmap(pools) else None,
            observability.exporter_csv() if observability.needs_exporter_config(cfg, self.pools) else None)

    @property
    def monitoring(self) -> Monitoring:
        obs = self.config.observability
        return Monitoring(obs, observability.prometheus_rule(obs, self.pools),
                          observability.dashboard_configmap(self.config, self.pools))

    @property
    def uses_dra(self) -> bool:
        """Whether a pool hands out slices through the DRA driver (which then runs)."""
        return any(p.allocation == DRA for p in self.pools)


def load_stack(raw: Mapping[str, Any]) -> Stack:
    """Load and check a whole stack config (see the module docstring); raises `ConfigError` naming the key
    (`ConfigErrors` naming every key when several are wrong). Keys keep their order, so shape errors are
    reported in stack-file order."""
    return _load(_key(raw))


def load_shape(raw: Mapping[str, Any]) -> StackConfig:
    """The partial mode: `load_stack`'s first step alone (every key known, every value of its type and range),
    no rule across keys, pool, workload or capacity check. For a command that reads a stack which need not plan
    yet (the advisor takes the demand of a stack whose workloads do not fit), so a stack file's keys mean to it
    what they mean to `make plan`."""
    return _shape(_key(raw))


def _key(raw: Mapping[str, Any]) -> str:
    """The config as the Pulumi engine holds it (a value that is not a string as its JSON text, what the CLI
    and `tools.harness.config_to_engine` hand the program) and as text: the kept load's key, so the program's
    load (from the engine) and a check's or a tool's (from the stack file) are the one load."""
    return json.dumps({k: v if isinstance(v, str) else json.dumps(v, default=str) for k, v in raw.items()})


@functools.lru_cache(maxsize=8)
def _shape(text: str) -> StackConfig:
    return parse_shape(json.loads(text))


@functools.lru_cache(maxsize=8)
def _load(text: str) -> Stack:
    cfg = _shape(text)
    pools, workloads, plan = validate.check(cfg)
    n = len(cfg.node_groups)  # every pool resolved (else `check` raised), node groups first
    return Stack(cfg, tuple(pools), plan, node_groups=tuple(map(Resolved, cfg.node_groups, pools[:n])),
                 node_pools=tuple(map(Resolved, cfg.karpenter.node_pools, pools[n:])), workloads=workloads)


def parse_config(raw: Mapping[str, Any]) -> StackConfig:
    """`load_stack(raw).config`: the checked config alone."""
    return load_stack(raw).config
