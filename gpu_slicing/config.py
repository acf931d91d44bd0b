"""The stack config as one typed, validated model; every default lives here.

`parse_config(raw)` takes the `config:` mapping of a `Pulumi.<stack>.yaml` (keys with or without the
`gpu-slicing:` namespace, structured values as parsed YAML or as the JSON strings the Pulumi engine
passes) and returns a `StackConfig`, or raises `ConfigError` naming the key, the bad value and what is
allowed. It runs before any resource is registered, so a bad stack creates nothing.
"""
from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from . import catalog, layouts
from .catalog import MigLayout
from .errors import ConfigError

NAMESPACE = "gpu-slicing"
GPU_OPERATOR_VERSION = "v26.7.0"
KARPENTER_VERSION = "1.14.1"
KUBE_PROMETHEUS_STACK_VERSION = "88.5.3"  # prometheus-community chart; values reviewed in gpu_slicing/observability.py
# AL2023 EKS-optimized AMI release pinned for Karpenter nodes (`al2023@<version>`); bump deliberately.
AMI_ALIAS_VERSION = "v20261118"
SUPPORTED_KUBERNETES_VERSIONS = ("1.31", "1.32", "1.33", "1.34", "1.35")
LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
MAX_POOL_NODES = 100  # most nodes of one node group (maxSize) or NodePool (maxNodes)
CUDA_IMAGE = "nvidia/cuda:12.4.1-base-ubuntu22.04"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
MIG_CONFIG_LABEL = "nvidia.com/mig.config"
POOL_LABEL = "gpu-slicing/pool"  # on every GPU node: what workloads and the planner select pools by
DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"

_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")
_DURATION_RE = re.compile(r"^([0-9]+(s|m|h))+$")


def _field(key: str, default: Any = dataclasses.MISSING, *, check: Callable[[Any, str], Any] | None = None,
           doc: str = "") -> Any:
    """A dataclass field that knows its camelCase config key, how to check a raw value, and its doc."""
    meta = {"key": key, "check": check, "doc": doc}
    if isinstance(default, (list, dict, tuple)) and default != ():
        frozen = default
        return field(default_factory=lambda: type(frozen)(frozen), metadata=meta)
    return field(default=default, metadata=meta)


# --- scalar checks: each takes (raw value, config key) and returns the parsed value -------------------

def _string(v: Any, key: str) -> str:
    if not isinstance(v, str) or not v:
        raise ConfigError(key, v, "a non-empty string")
    return v


def _name(v: Any, key: str) -> str:
    if not isinstance(v, str) or not _NAME_RE.match(v):
        raise ConfigError(key, v, "a lowercase DNS label: a-z, 0-9 and '-', 1-40 characters, "
                                  "starting and ending with a letter or digit")
    return v


def _bool(v: Any, key: str) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(key, v, "true or false")
    return v


def _int_between(lo: int, hi: int) -> Callable[[Any, str], int]:
    def check(v: Any, key: str) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ConfigError(key, v, f"an integer from {lo} to {hi}")
        return v
    return check


def _one_of(*allowed: str) -> Callable[[Any, str], str]:
    def check(v: Any, key: str) -> str:
        if v not in allowed:
            raise ConfigError(key, v, "one of " + ", ".join(allowed))
        return v
    return check


def _cidr(v: Any, key: str) -> str:
    try:
        return str(ipaddress.ip_network(v, strict=True))
    except (TypeError, ValueError):
        raise ConfigError(key, v, "an IPv4 CIDR block such as 10.0.0.0/16 (host bits zero)") from None


def _list_of(item: Callable[[Any, str], Any], *, min_len: int = 0, unique: bool = False
             ) -> Callable[[Any, str], tuple]:
    def check(v: Any, key: str) -> tuple:
        if not isinstance(v, list) or len(v) < min_len:
            raise ConfigError(key, v, f"a list of at least {min_len} item(s)" if min_len else "a list")
        out = tuple(item(x, f"{key}[{i}]") for i, x in enumerate(v))
        if unique and len(set(out)) != len(out):
            raise ConfigError(key, v, "a list without duplicates")
        return out
    return check


def _instance_type(v: Any, key: str) -> str:
    """A catalog GPU type the AMI's driver runs (refused types, e.g. p6e-gb200, say why)."""
    return catalog.check_instance_type(v, key).name


def _ec2_type(v: Any, key: str) -> str:
    if not isinstance(v, str) or not re.match(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$", v):
        raise ConfigError(key, v, "an EC2 instance type such as m7i.large")
    return v


def _duration(v: Any, key: str) -> str:
    if not isinstance(v, str) or not _DURATION_RE.match(v):
        raise ConfigError(key, v, "a duration such as 10m, 1h or 720h (units s, m, h)")
    return v


def _k8s_version(v: Any, key: str) -> str:
    if v not in SUPPORTED_KUBERNETES_VERSIONS:
        raise ConfigError(key, v, "a quoted EKS Kubernetes version, one of "
                                  + ", ".join(SUPPORTED_KUBERNETES_VERSIONS))
    return v


_ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$")


def _role_arn(v: Any, key: str) -> str:
    if not isinstance(v, str) or not _ROLE_ARN_RE.match(v):
        raise ConfigError(key, v, "an IAM role ARN such as arn:aws:iam::123456789012:role/platform-admins")
    return v


def _mig_parted_entries(v: Any, key: str) -> dict:
    if not isinstance(v, Mapping) or not all(
            isinstance(n, str) and layouts.is_label_value(n) and isinstance(e, list) and e
            and all(isinstance(x, Mapping) for x in e) for n, e in v.items()):
        raise ConfigError(key, v, "a map of layout label value -> its mig-parted entries "
                                  "[{devices: ..., mig-enabled: ..., mig-devices: {...}}] (as make diff prints them)")
    return dict(v)


def _raw(v: Any, key: str) -> Any:
    return v


# --- the model ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClusterConfig:
    name: str = _field("name", check=_name, doc="EKS cluster name; also the Karpenter discovery tag value")
    kubernetes_version: str = _field("kubernetesVersion", "1.34", check=_k8s_version,
                                     doc="EKS control-plane version (quote it in YAML)")
    endpoint_public_access: bool = _field("endpointPublicAccess", True, check=_bool,
                                          doc="expose the API endpoint publicly (restricted by publicAccessCidrs)")
    endpoint_private_access: bool = _field("endpointPrivateAccess", True, check=_bool,
                                           doc="reach the API endpoint from inside the VPC")
    public_access_cidrs: tuple[str, ...] = _field("publicAccessCidrs", (), check=_list_of(_cidr),
                                                  doc="CIDRs allowed to reach a public endpoint; required when public")
    log_types: tuple[str, ...] = _field("logTypes", LOG_TYPES, check=_list_of(_one_of(*LOG_TYPES), unique=True),
                                        doc="control-plane log types sent to CloudWatch")
    admin_role_arns: tuple[str, ...] = _field("adminRoleArns", (), check=_list_of(_role_arn, unique=True),
                                              doc="IAM roles (a team, the CI deploy role) that get EKS access "
                                                  "entries with the cluster-admin access policy")


@dataclass(frozen=True)
class NetworkConfig:
    vpc_cidr: str | None = _field("vpcCidr", None, check=_cidr, doc="CIDR of a new VPC (default 10.0.0.0/16)")
    availability_zones: int = _field("availabilityZones", 3, check=_int_between(2, 6),
                                     doc="AZs of a new VPC (one private and one public subnet each)")
    vpc_id: str | None = _field("vpcId", None, check=_string, doc="use this existing VPC instead")
    private_subnet_ids: tuple[str, ...] = _field("privateSubnetIds", (), check=_list_of(_string),
                                                 doc="existing private subnets (nodes)")
    public_subnet_ids: tuple[str, ...] = _field("publicSubnetIds", (), check=_list_of(_string),
                                                doc="existing public subnets (load balancers)")

    @property
    def existing(self) -> bool:
        return self.vpc_id is not None

    @property
    def cidr(self) -> str:
        return self.vpc_cidr or "10.0.0.0/16"


@dataclass(frozen=True)
class SystemNodeGroupConfig:
    instance_type: str = _field("instanceType", "m7i.large", check=_ec2_type,
                                doc="instance type of the add-on/controller nodes")
    size: int = _field("size", 2, check=_int_between(2, 10), doc="node count (2+ so controllers survive a node)")


@dataclass(frozen=True)
class GpuOperatorConfig:
    version: str = _field("version", GPU_OPERATOR_VERSION, check=_one_of(GPU_OPERATOR_VERSION),
                          doc="gpu-operator chart version (pinned; values are checked against it)")
    mig_strategy: str = _field("migStrategy", "mixed", check=_one_of("none", "single", "mixed"),
                               doc="how MIG slices are advertised: mixed = nvidia.com/mig-<profile>")
    retained_mig_layouts: Mapping[str, Any] = _field(
        "retainedMigLayouts", {}, check=lambda v, k: _mig_parted_entries(v, k),
        doc="mig-parted entries of layout labels live nodes still carry (make diff prints them when a change drops one)")


@dataclass(frozen=True)
class NodeGroupConfig:
    name: str = _field("name", check=_name, doc="managed node group name (stable: a rename replaces the nodes)")
    instance_type: str = _field("instanceType", check=_instance_type, doc="GPU instance type")
    min_size: int = _field("minSize", 0, check=_int_between(0, MAX_POOL_NODES), doc="minimum nodes")
    desired_size: int = _field("desiredSize", 1, check=_int_between(0, MAX_POOL_NODES), doc="desired nodes")
    max_size: int = _field("maxSize", 1, check=_int_between(1, MAX_POOL_NODES), doc="maximum nodes")
    disk_size_gib: int = _field("diskSizeGiB", 200, check=_int_between(50, 16384),
                                doc="encrypted gp3 root volume (CUDA images are large)")
    capacity_type: str = _field("capacityType", "ON_DEMAND", check=_one_of("ON_DEMAND", "SPOT", "CAPACITY_BLOCK"),
                                doc="EC2 capacity type")
    mig_layout: str = _field("migLayout", "all-disabled", check=_string,
                             doc="MIG layout label: an NVIDIA name (all-balanced, all-1g.5gb, ...) or a migLayouts key")
    sharing: Any = _field("sharing", None, check=_raw, doc="time-slicing: {timeSlicing: {replicas, resources}}")
    mig_layout_change: str = _field("migLayoutChange", "replace", check=_one_of("replace", "in-place"),
                                    doc="replace: a layout change is a new node group, created before the old one "
                                        "is drained; in-place relabels live nodes (needs allowDisruption)")


@dataclass(frozen=True)
class NodePoolConfig:
    name: str = _field("name", check=_name, doc="Karpenter NodePool name (stable: a rename drains its nodes)")
    instance_types: tuple[str, ...] = _field("instanceTypes", check=_list_of(_instance_type, min_len=1, unique=True),
                                             doc="GPU instance types (one GPU model when MIG is used)")
    capacity_types: tuple[str, ...] = _field("capacityTypes", ("on-demand",),
                                             check=_list_of(_one_of("on-demand", "spot", "reserved"),
                                                            min_len=1, unique=True),
                                             doc="karpenter.sh/capacity-type values")
    mig_layout: str = _field("migLayout", "all-disabled", check=_string, doc="MIG layout label of the pool's nodes")
    max_nodes: int = _field("maxNodes", 1, check=_int_between(1, MAX_POOL_NODES),
                            doc="cap on nodes, rendered as NodePool limits (GPUs, CPU, memory)")
    consolidate_after: str = _field("consolidateAfter", "10m", check=_duration,
                                    doc="how long a node must be empty before Karpenter removes it")
    expire_after: str = _field("expireAfter", "Never",
                               check=lambda v, k: v if v == "Never" else _duration(v, k),
                               doc="node lifetime before a forced replacement; Never for GPU pools (AMI bumps "
                                   "arrive as drift, inside the maintenance window)")
    drift_schedule: str | None = _field("driftSchedule", None, check=_string,
                                        doc="maintenance window start, cron in UTC ('M H * * *' or 'M H * * D'): "
                                            "Drifted nodes are replaced only inside it")
    drift_duration: str | None = _field("driftDuration", None, check=_string,
                                        doc="maintenance window length, e.g. 4h or 1h30m")
    disk_size_gib: int = _field("diskSizeGiB", 200, check=_int_between(50, 16384), doc="encrypted gp3 root volume")
    sharing: Any = _field("sharing", None, check=_raw, doc="time-slicing, as for node groups")


@dataclass(frozen=True)
class KarpenterConfig:
    enabled: bool = _field("enabled", False, check=_bool, doc="install Karpenter and the GPU NodePools")
    version: str = _field("version", KARPENTER_VERSION, check=_one_of(KARPENTER_VERSION),
                          doc="Karpenter chart/CRD version (pinned; objects are checked against its CRDs)")
    ami_alias_version: str = _field("amiAliasVersion", AMI_ALIAS_VERSION,
                                    check=lambda v, k: _pattern(v, k, r"^v[0-9]{8}$", "vYYYYMMDD"),
                                    doc="AL2023 AMI release for amiSelectorTerms alias al2023@<version>")
    node_pools: tuple[NodePoolConfig, ...] = _field("nodePools", (), check=_raw, doc="GPU NodePools")


def _labels(v: Any, key: str) -> Mapping[str, str]:
    if not isinstance(v, Mapping) or not all(isinstance(k, str) and k and isinstance(x, str) for k, x in v.items()):
        raise ConfigError(key, v, "a mapping of Kubernetes label names to string values")
    return dict(v)


@dataclass(frozen=True)
class ObservabilityConfig:
    enabled: bool = _field("enabled", False, check=_bool,
                           doc="per-slice metrics, alerts and a Grafana dashboard (FACTS 9)")
    prometheus_operator: str = _field("prometheusOperator", "install", check=_one_of("install", "existing"),
                                      doc="install = the pinned kube-prometheus-stack (Prometheus, Grafana, "
                                          "kube-state-metrics); existing = the cluster has one: only the "
                                          "ServiceMonitor, alert rules and dashboard")
    version: str = _field("version", KUBE_PROMETHEUS_STACK_VERSION, check=_one_of(KUBE_PROMETHEUS_STACK_VERSION),
                          doc="kube-prometheus-stack chart version (pinned; values are checked against it)")
    namespace: str = _field("namespace", "monitoring", check=_name,
                            doc="namespace of the stack (created with install) and of the rules and dashboard")
    selector_labels: Mapping[str, str] = _field("selectorLabels", {}, check=_labels,
                                                doc="labels on the ServiceMonitor and PrometheusRule, for an "
                                                    "existing Prometheus whose selectors require them")
    mig_pending_alert_after: str = _field("migPendingAlertAfter", "30m", check=_duration,
                                          doc="alert when a node's MIG config stays pending/rebooting this long")
    idle_alert_after: str = _field("idleAlertAfter", "3h", check=_duration,
                                   doc="alert when a slice is idle (allocated but unused, or unallocated) this long")


@dataclass(frozen=True)
class WorkloadConfig:
    name: str = _field("name", check=_name, doc="Deployment name")
    pool: str = _field("pool", check=_string, doc="node group or NodePool the workload runs on")
    replicas: int = _field("replicas", 1, check=_int_between(0, 10000), doc="pods")
    profile: str | None = _field("profile", None, check=_string, doc="MIG profile each pod requests, e.g. 1g.5gb")
    gpus: int | None = _field("gpus", None, check=_int_between(1, 8),
                              doc="whole (or time-sliced) GPUs per pod, for pools without MIG")
    image: str = _field("image", CUDA_IMAGE, check=_string, doc="container image (a real CUDA tag)")
    do_not_disrupt: bool = _field("doNotDisrupt", False, check=_bool,
                                  doc="annotate pods karpenter.sh/do-not-disrupt: \"true\" (blocks voluntary "
                                      "disruption of their node)")


@dataclass(frozen=True)
class StackConfig:
    cluster: ClusterConfig = _field("cluster", check=_raw, doc="EKS cluster")
    max_gpu_nodes: int = _field("maxGpuNodes", check=_int_between(0, 1000),
                                doc="cost guard, stated per stack: most GPU nodes it may run (node group maxSize "
                                    "plus the nodes each NodePool's limits admit)")
    network: NetworkConfig = _field("network", NetworkConfig(), check=_raw, doc="new VPC or existing subnets")
    system_node_group: SystemNodeGroupConfig = _field("systemNodeGroup", SystemNodeGroupConfig(), check=_raw,
                                                      doc="nodes for add-ons and controllers")
    gpu_operator: GpuOperatorConfig = _field("gpuOperator", GpuOperatorConfig(), check=_raw,
                                             doc="NVIDIA GPU Operator")
    node_groups: tuple[NodeGroupConfig, ...] = _field("nodeGroups", (), check=_raw, doc="GPU managed node groups")
    workloads: tuple[WorkloadConfig, ...] = _field("workloads", (), check=_raw, doc="sample workloads")
    mig_layouts: Mapping[str, MigLayout] = _field("migLayouts", {}, check=_raw, doc="custom MIG layouts")
    karpenter: KarpenterConfig = _field("karpenter", KarpenterConfig(), check=_raw,
                                        doc="Karpenter and GPU NodePools")
    observability: ObservabilityConfig = _field("observability", ObservabilityConfig(), check=_raw,
                                                doc="metrics, alerts and dashboard for the slices")
    allow_disruption: bool = _field("allowDisruption", False, check=_bool,
                                    doc="let the policy pack pass changes that disrupt live GPU nodes "
                                        "(nodeGroups[].migLayoutChange: in-place)")


def _pattern(v: Any, key: str, regex: str, what: str) -> str:
    if not isinstance(v, str) or not re.match(regex, v):
        raise ConfigError(key, v, f"a string like {what}")
    return v


def _build(cls: type, raw: Any, key: str, nested: Mapping[str, Callable[[Any, str], Any]] | None = None) -> Any:
    """Build dataclass `cls` from mapping `raw`: unknown keys are errors, missing required keys too."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(key, raw, "a mapping with keys " + ", ".join(f.metadata["key"] for f in dataclasses.fields(cls)))
    fields = {f.metadata["key"]: f for f in dataclasses.fields(cls)}
    sep = ":" if key == NAMESPACE else "."
    for k in raw:
        if k not in fields:
            hint = difflib.get_close_matches(str(k), fields, n=1)
            raise ConfigError(f"{key}{sep}{k}", raw[k], "unknown key; "
                              + (f"did you mean {hint[0]!r}? " if hint else "")
                              + "known keys: " + ", ".join(fields))
    kwargs = {}
    for ck, f in fields.items():
        sub = f"{key}{sep}{ck}"
        if ck in raw:
            parse = (nested or {}).get(ck) or f.metadata["check"]
            kwargs[f.name] = parse(raw[ck], sub)
        elif nested and ck in nested:
            kwargs[f.name] = nested[ck](None, sub)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(sub, None, f"required ({f.metadata['doc']})")
    return cls(**kwargs)


def _build_list(cls: type) -> Callable[[Any, str], tuple]:
    def parse(raw: Any, key: str) -> tuple:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raise ConfigError(key, raw, f"a list of {cls.__name__} mappings")
        items = tuple(_build(cls, r, f"{key}[{i}]") for i, r in enumerate(raw))
        seen: set[str] = set()
        for i, it in enumerate(items):
            if it.name in seen:
                raise ConfigError(f"{key}[{i}].name", it.name, "a name not used by another entry")
            seen.add(it.name)
        return items
    return parse


def documented_keys() -> dict[str, list[tuple[str, str, str]]]:
    """Every config key with its default and doc: the README's table is tested against it."""
    out: dict[str, list[tuple[str, str, str]]] = {}
    classes = {"": StackConfig, "cluster": ClusterConfig, "network": NetworkConfig,
               "systemNodeGroup": SystemNodeGroupConfig, "gpuOperator": GpuOperatorConfig,
               "nodeGroups[]": NodeGroupConfig, "karpenter": KarpenterConfig,
               "karpenter.nodePools[]": NodePoolConfig, "workloads[]": WorkloadConfig,
               "observability": ObservabilityConfig}
    for prefix, cls in classes.items():
        rows = []
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else "required")
            shown = ("required" if isinstance(default, str) and default == "required" else
                     "see below" if dataclasses.is_dataclass(default) else json.dumps(default))
            rows.append((f.metadata["key"], shown, f.metadata["doc"]))
        out[prefix] = rows
    return out


def decode(value: Any) -> Any:
    """The engine passes structured values as JSON strings; YAML-loaded stack files pass objects."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def parse_config(raw: Mapping[str, Any]) -> StackConfig:
    """Parse and validate a whole stack config; see the module docstring."""
    ours: dict[str, Any] = {}
    for k, v in raw.items():
        ns, _, short = k.rpartition(":")
        if ns in ("", NAMESPACE):
            ours[short] = decode(v)
    from . import validate  # cross-field rules live apart from the shape
    nested = {
        "cluster": lambda v, k: _build(ClusterConfig, v, k),
        "network": lambda v, k: _build(NetworkConfig, v, k),
        "systemNodeGroup": lambda v, k: _build(SystemNodeGroupConfig, v, k),
        "gpuOperator": lambda v, k: _build(GpuOperatorConfig, v, k),
        "nodeGroups": _build_list(NodeGroupConfig),
        "workloads": _build_list(WorkloadConfig),
        "migLayouts": lambda v, k: layouts.parse_custom_layouts(v or {}, k),
        "karpenter": lambda v, k: _build(KarpenterConfig, v, k, {"nodePools": _build_list(NodePoolConfig)}),
        "observability": lambda v, k: _build(ObservabilityConfig, v, k),
    }
    if "cluster" not in ours:
        raise ConfigError(f"{NAMESPACE}:cluster", None, "required: {name: <cluster name>, ...}")
    cfg = _build(StackConfig, ours, NAMESPACE, nested)
    validate.check(cfg)
    return cfg
