"""The rules of the policy pack as plain functions over plain data: no `pulumi_policy` import here.

Both runners use these functions, so `pulumi preview --policy-pack policy` and `make plan` say the same
thing about the same graph:
- `policy/pack.py` wraps each rule in a CrossGuard `ResourceValidationPolicy` or `StackValidationPolicy`;
- `tools/checks.py` adapts the registrations the offline plan recorded to `Res` and runs the same rules.

A rule is either per resource (`fn(res, ctx) -> messages`: CrossGuard checks it before the resource is
created) or per stack (`fn(resources, ctx) -> (message, urn)`: it needs other resources, e.g. the route
tables behind a subnet or the GPU Operator's MIG strategy). GPU facts come from `gpu_slicing` (catalog,
layouts, advertise, scheduling): no table is repeated here.

Shapes: the mock engine records what this program registers (`eks:index:ManagedNodeGroup`, a remote
component, is one opaque registration), while a real engine also shows the pulumi-eks plugin's children
(`aws:eks/nodeGroup:NodeGroup`, `aws:eks/cluster:Cluster`). The rules read both and count a node group
once. A value unknown at preview is `UNKNOWN` and never a violation by itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from gpu_slicing import advertise, catalog, layouts, scheduling
from gpu_slicing.catalog import GpuGroup, MigLayout
from gpu_slicing.catalog import WHOLE_GPU
from gpu_slicing.changes import ALLOW_DISRUPTION_TAG, MIG_LAYOUT_CHANGE_TAG
from gpu_slicing.network import DOCUMENTATION_RANGES
from gpu_slicing.labels import (DEVICE_PLUGIN_CONFIG_LABEL, DEVICE_PLUGIN_DEPLOY_LABEL, GPU_TAINT, MIG_CONFIG_LABEL,
                                POOL_LABEL)
from gpu_slicing.errors import NAMESPACE, ConfigError
from gpu_slicing.karpenter import INSTANCE_TYPE_LABEL, NODEPOOL_LABEL, nodes_within_limits

UNKNOWN = "<computed>"  # the offline harness's marker; policy/pack.py maps CrossGuard's unknowns to it
GPU_REQUIREMENT_KEYS = ("karpenter.k8s.aws/instance-gpu-count", "karpenter.k8s.aws/instance-gpu-name",
                        "karpenter.k8s.aws/instance-gpu-manufacturer")
# The gpu-operator chart's default `mig.strategy` when the values leave it out (values.yaml at v26.7.0;
# tests/test_checks.py holds this against the chart's real values.yaml).
CHART_DEFAULT_MIG_STRATEGY = "single"
GPU_OPERATOR_CHART = "gpu-operator"
KARPENTER_CHART = "karpenter"

MNG_TYPES = ("eks:index:ManagedNodeGroup", "aws:eks/nodeGroup:NodeGroup")
NODEPOOL_TYPE = "kubernetes:karpenter.sh/v1:NodePool"
NODECLASS_TYPE = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
OVERLAY_TYPE = "kubernetes:karpenter.sh/v1alpha1:NodeOverlay"
RELEASE_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")
CONFIGMAP_TYPE = "kubernetes:core/v1:ConfigMap"
SUBNET_TYPE = "aws:ec2/subnet:Subnet"
# Where each workload kind keeps its pod spec.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "kubernetes:core/v1:Pod": ("spec",),
}
_ANYWHERE = ("0.0.0.0/0", "::/0")


@dataclass(frozen=True)
class Res:
    """One resource as both runners see it: inputs (`props`) and where it sits in the graph."""

    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    parent: str | None = None
    dependencies: tuple[str, ...] = ()
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """What the rules need beyond the resources: the cost guard's ceiling (`gpu-slicing:maxGpuNodes`)."""

    max_gpu_nodes: int | None = None


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    kind: str  # "resource" | "stack"
    fn: Callable[..., Iterable[Any]]
    mandatory: bool = True
    group: str = "gpu"  # "gpu" | "security" | "cost"
    config: Mapping[str, dict] | None = None  # JSON-schema properties of the rule's pack config


MAX_GPU_NODES_KEY = "maxGpuNodes"


RULES: dict[str, Rule] = {}


def _rule(fn: Callable[..., Iterable[Any]], name: str, description: str, kind: str, group: str,
          mandatory: bool = True, config: Mapping[str, dict] | None = None) -> None:
    """Register `fn` as rule `name`: called right after each rule's `def`, not as a decorator, because mutmut
    never mutates a decorated function's body."""
    RULES[name] = Rule(name, description, kind, fn, mandatory, group, config)


def evaluate(rule: Rule, resources: Sequence[Res], ctx: Context) -> list[tuple[str, str | None]]:
    """Run one rule over a whole graph: `(message, urn)` for each violation."""
    if rule.kind == "resource":
        return [(m, r.urn) for r in resources for m in rule.fn(r, ctx)]
    return [(m, urn) for m, urn in rule.fn(list(resources), ctx)]


def evaluate_all(resources: Sequence[Res], ctx: Context) -> dict[str, list[tuple[str, str | None]]]:
    return {name: evaluate(rule, resources, ctx) for name, rule in RULES.items()}


# --- reading props --------------------------------------------------------------------------------

def known(v: Any) -> bool:
    return v is not None and v != UNKNOWN


def dig(obj: Any, *path: Any, default: Any = None) -> Any:
    for p in path:
        if isinstance(obj, Mapping) and p in obj:
            obj = obj[p]
        elif isinstance(obj, Sequence) and not isinstance(obj, str) and isinstance(p, int) and -len(obj) <= p < len(obj):
            obj = obj[p]
        else:
            return default
    return obj


def as_list(v: Any) -> list:
    if v is None or v == UNKNOWN:
        return []
    if isinstance(v, (list, tuple)):
        return list(v)
    return [v]


def truthy(v: Any) -> bool | None:
    """A bool that may arrive as "true"/"false" (Launch template EBS flags are strings); None if unknown."""
    if v is None or v == UNKNOWN:
        return None
    if isinstance(v, str):
        return v.strip().lower() == "true"
    return bool(v)


# --- GPU pools: managed node groups and Karpenter NodePools in one shape ---------------------------

@dataclass(frozen=True)
class RecordedPool:
    res: Res
    kind: str  # "nodeGroup" | "nodePool"
    name: str
    instance_types: tuple[str, ...]
    labels: Mapping[str, Any]
    taints: tuple[Mapping[str, Any], ...]

    @property
    def mig_label(self) -> Any:
        return self.labels.get(MIG_CONFIG_LABEL)

    def catalog_types(self) -> list[catalog.InstanceType]:
        return [it for it in map(catalog.instance_type, self.instance_types) if it is not None]


def requirement_values(requirements: Any, key: str) -> list[str] | None:
    for req in as_list(requirements):
        if isinstance(req, Mapping) and req.get("key") == key and req.get("operator", "In") == "In":
            return [v for v in as_list(req.get("values")) if isinstance(v, str)]
    return None


def pool_of(r: Res) -> RecordedPool | None:
    """The GPU pool `r` is, or None when it is no GPU node group / NodePool."""
    if r.type in MNG_TYPES:
        types = tuple(t for t in as_list(r.props.get("instanceTypes")) if isinstance(t, str))
        ami = r.props.get("amiType")
        gpu = any(catalog.instance_type(t) for t in types) or (isinstance(ami, str) and "NVIDIA" in ami)
        if not gpu:
            return None
        labels = r.props.get("labels") if isinstance(r.props.get("labels"), Mapping) else {}
        taints = tuple(dict(t, effect=scheduling.taint_effect(t.get("effect")))
                       for t in as_list(r.props.get("taints")) if isinstance(t, Mapping))
        name = labels.get(POOL_LABEL) or r.props.get("nodeGroupName") or r.name
        return RecordedPool(r, "nodeGroup", str(name), types, labels, taints)
    if r.type == NODEPOOL_TYPE:
        spec = dig(r.props, "spec", "template", "spec", default={})
        reqs = dig(spec, "requirements")
        types = tuple(requirement_values(reqs, INSTANCE_TYPE_LABEL) or ())
        gpu_req = any(isinstance(q, Mapping) and q.get("key") in GPU_REQUIREMENT_KEYS for q in as_list(reqs))
        if not (any(catalog.instance_type(t) for t in types) or gpu_req):
            return None
        labels = dig(r.props, "spec", "template", "metadata", "labels", default={}) or {}
        taints = tuple(t for t in as_list(dig(spec, "taints")) if isinstance(t, Mapping))
        name = dig(r.props, "metadata", "name")
        return RecordedPool(r, "nodePool", str(name if known(name) else r.name), types, labels, taints)
    return None


def gpu_pools(resources: Sequence[Res]) -> list[RecordedPool]:
    """Every GPU pool once: a pulumi-eks component and its `aws:eks/nodeGroup:NodeGroup` child are one."""
    children_of = {r.parent for r in resources if r.type == "aws:eks/nodeGroup:NodeGroup"}
    return [p for p in map(pool_of, resources)
            if p is not None and not (p.res.type == "eks:index:ManagedNodeGroup" and p.res.urn in children_of)]


def has_gpu_taint(taints: Iterable[Mapping[str, Any]]) -> bool:
    return any(t.get("key") == GPU_TAINT["key"] and scheduling.taint_effect(t.get("effect")) == GPU_TAINT["effect"]
               for t in taints)


# --- the GPU Operator as deployed: strategy, MIG manager, its custom layouts -----------------------

def chart_name(r: Res) -> str:
    chart = r.props.get("chart")
    return chart.rstrip("/").rsplit("/", 1)[-1] if isinstance(chart, str) else ""


def releases(resources: Sequence[Res], chart: str) -> list[Res]:
    return [r for r in resources if r.type in RELEASE_TYPES and chart_name(r) == chart]


@dataclass(frozen=True)
class Operator:
    release: Res
    strategy: Any
    mig_manager: bool
    config_name: str | None  # migManager.config.name: the only MIG layouts the MIG manager reads
    configmap: Mapping[str, list] | None  # that ConfigMap's layouts (name -> mig-parted entries), if in the stack


def operator(resources: Sequence[Res]) -> Operator | None:
    found = releases(resources, GPU_OPERATOR_CHART)
    if not found:
        return None
    r = found[0]
    values = r.props.get("values") if isinstance(r.props.get("values"), Mapping) else {}
    strategy = dig(values, "mig", "strategy", default=CHART_DEFAULT_MIG_STRATEGY)
    mig_manager = truthy(dig(values, "migManager", "enabled", default=True)) is not False
    name = dig(values, "migManager", "config", "name")
    name = name if isinstance(name, str) and name and name != UNKNOWN else None
    parsed = None
    if name:
        for cm in resources:
            if cm.type == CONFIGMAP_TYPE and dig(cm.props, "metadata", "name") == name:
                parsed = parse_mig_parted(dig(cm.props, "data", "config.yaml"))
    return Operator(r, strategy, mig_manager, name, parsed)


def parse_mig_parted(text: Any) -> dict[str, list] | None:
    """`mig-configs` of a mig-parted config file: layout name -> its entries (None if unreadable)."""
    if not isinstance(text, str):
        return None
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    configs = dig(doc, "mig-configs")
    return {str(k): as_list(v) for k, v in configs.items()} if isinstance(configs, Mapping) else None


def layout_from_mig_parted(name: str, entries: list, gpu: catalog.GpuModel) -> MigLayout:
    """The entries of a mig-parted layout that apply to `gpu` (by `device-filter`), as a MigLayout."""
    ids = {f.upper() for f in gpu.device_filters}
    groups = []
    for e in entries:
        if not isinstance(e, Mapping):
            continue
        filt = e.get("device-filter")
        if filt is not None and not ({str(f).upper() for f in as_list(filt)} & ids):
            continue
        devices = e.get("devices", "all")
        devs = None if devices == "all" else tuple(int(d) for d in as_list(devices))
        enabled = truthy(e.get("mig-enabled")) is True
        groups.append(GpuGroup(devs, enabled, dict(e.get("mig-devices") or {}) if enabled else {}))
    return MigLayout(name, tuple(groups), custom=True)


def resolve_pool_layout(pool: RecordedPool, it: catalog.InstanceType, op: Operator | None) -> MigLayout:
    """The layout a node of `pool` of type `it` gets from its label; ConfigError when it cannot."""
    label = pool.mig_label
    key = f"{pool.kind} {pool.name} label {MIG_CONFIG_LABEL}"
    if op is not None and op.config_name and op.configmap is not None:
        if label not in op.configmap:
            raise ConfigError(key, label, f"a layout of ConfigMap {op.config_name}, the only one the MIG manager "
                                          f"reads (migManager.config.name): {', '.join(sorted(op.configmap))}")
        layout = layout_from_mig_parted(label, op.configmap[label], it.gpu)
        if label == "all-disabled" or not it.gpu.mig_capable:
            return layouts.resolve_layout(label, it, {}, key)
        layouts.check_layout(layout, it, f"ConfigMap {op.config_name} layout {label}")
        return layout
    return layouts.resolve_layout(label, it, {}, key)


def _pool_layouts(pool: RecordedPool, op: Operator | None) -> Iterator[tuple[catalog.InstanceType, MigLayout | None, str | None]]:
    """(instance type, layout or None, why not) for each catalog instance type of a labelled pool."""
    for it in pool.catalog_types():
        try:
            yield it, resolve_pool_layout(pool, it, op), None
        except ConfigError as e:
            yield it, None, str(e)


# --- workloads ---------------------------------------------------------------------------------------

def pod_spec(r: Res) -> Mapping[str, Any] | None:
    path = POD_SPEC_PATHS.get(r.type)
    spec = dig(r.props, *path) if path else None
    return spec if isinstance(spec, Mapping) else None


def containers(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for k in ("initContainers", "containers") for c in as_list(spec.get(k)) if isinstance(c, Mapping)]


def gpu_requests(spec: Mapping[str, Any]) -> dict[str, int]:
    """`nvidia.com/*` resources the pod asks for (limits, else requests), summed over containers."""
    out: dict[str, int] = {}
    for c in containers(spec):
        res = c.get("resources") if isinstance(c.get("resources"), Mapping) else {}
        asked = {**(res.get("requests") or {}), **(res.get("limits") or {})}
        for k, v in asked.items():
            if str(k).startswith("nvidia.com/"):
                try:
                    n = int(str(v))
                except ValueError:
                    n = 1
                out[k] = out.get(k, 0) + n
    return {k: v for k, v in out.items() if v > 0}


# --- security: per resource ------------------------------------------------------------------------

def imdsv2_required(r: Res, ctx: Context) -> Iterator[str]:
    if r.type in ("aws:ec2/launchTemplate:LaunchTemplate", "aws:ec2/instance:Instance"):
        tokens = dig(r.props, "metadataOptions", "httpTokens")
        if tokens is None:
            yield f"{r.name}: metadataOptions.httpTokens is not set, so IMDSv1 stays allowed; set it to 'required'"
        elif known(tokens) and tokens != "required":
            yield f"{r.name}: metadataOptions.httpTokens is {tokens!r}, not 'required' (IMDSv1 allowed)"
    elif r.type == NODECLASS_TYPE:
        tokens = dig(r.props, "spec", "metadataOptions", "httpTokens")
        # The EC2NodeClass CRD defaults metadataOptions to httpTokens: required; only an explicit value can loosen it.
        if known(tokens) and tokens != "required":
            yield f"{r.name}: spec.metadataOptions.httpTokens is {tokens!r}, not 'required' (IMDSv1 allowed)"
    elif r.type in MNG_TYPES:
        if r.props.get("launchTemplate") is None:
            yield (f"{r.name}: no launch template, so EKS's default one decides IMDS and root-volume encryption; "
                   "give the node group this stack's launch template (httpTokens required, encrypted gp3)")

_rule(imdsv2_required, "imdsv2-required",
      "Instances require IMDSv2 session tokens (httpTokens: required): a pod or SSRF cannot "
      "read the node role's credentials with a plain GET.", "resource", "security")


def ebs_encrypted(r: Res, ctx: Context) -> Iterator[str]:
    if r.type == "aws:ec2/launchTemplate:LaunchTemplate":
        for i, m in enumerate(as_list(r.props.get("blockDeviceMappings"))):
            ebs = m.get("ebs") if isinstance(m, Mapping) else None
            if isinstance(ebs, Mapping) and ebs.get("encrypted") != UNKNOWN and truthy(ebs.get("encrypted")) is not True:
                yield f"{r.name}: blockDeviceMappings[{i}] ({m.get('deviceName')}) is not encrypted"
    elif r.type == NODECLASS_TYPE:
        bdms = as_list(dig(r.props, "spec", "blockDeviceMappings"))
        if dig(r.props, "spec", "blockDeviceMappings") is None:
            yield (f"{r.name}: no spec.blockDeviceMappings, so the root volume takes the AMI's unencrypted default; "
                   "declare an encrypted root volume")
        for i, m in enumerate(bdms):
            ebs = m.get("ebs") if isinstance(m, Mapping) else None
            if isinstance(ebs, Mapping) and truthy(ebs.get("encrypted")) is not True and ebs.get("encrypted") != UNKNOWN:
                yield f"{r.name}: spec.blockDeviceMappings[{i}] ({m.get('deviceName')}) is not encrypted"
    elif r.type == "aws:ebs/volume:Volume":
        if truthy(r.props.get("encrypted")) is not True and r.props.get("encrypted") != UNKNOWN:
            yield f"{r.name}: encrypted is not true"
    elif r.type == "aws:ec2/instance:Instance":
        root = r.props.get("rootBlockDevice")
        if not isinstance(root, Mapping) or truthy(root.get("encrypted")) is not True:
            yield f"{r.name}: rootBlockDevice.encrypted is not true"

_rule(ebs_encrypted, "ebs-encrypted",
      "Every EBS volume a node boots with is encrypted.", "resource", "security")


def secrets_kms_encrypted(r: Res, ctx: Context) -> Iterator[str]:
    if r.type == "eks:index:Cluster":
        if not r.props.get("encryptionConfigKeyArn"):
            yield f"{r.name}: encryptionConfigKeyArn is not set, so Secrets are stored without KMS envelope encryption"
    elif r.type == "aws:eks/cluster:Cluster":
        cfg = r.props.get("encryptionConfig")
        if cfg == UNKNOWN:
            return
        if not isinstance(cfg, Mapping) or "secrets" not in as_list(cfg.get("resources")) \
                or not dig(cfg, "provider", "keyArn"):
            yield f"{r.name}: encryptionConfig does not encrypt 'secrets' with a KMS key"

_rule(secrets_kms_encrypted, "secrets-kms-encrypted",
      "EKS encrypts Kubernetes Secrets with a KMS key (envelope encryption).",
      "resource", "security")


def nodes_private(r: Res, ctx: Context) -> Iterator[str]:
    if r.type == "eks:index:Cluster":
        # pulumi-eks defaults nodeAssociatePublicIpAddress to true: it must be set false explicitly.
        if truthy(r.props.get("nodeAssociatePublicIpAddress")) is not False \
                and r.props.get("nodeAssociatePublicIpAddress") != UNKNOWN:
            yield f"{r.name}: nodeAssociatePublicIpAddress is not false (pulumi-eks defaults it to true)"
    elif r.type == SUBNET_TYPE:
        if truthy(r.props.get("mapPublicIpOnLaunch")):
            yield f"{r.name}: mapPublicIpOnLaunch is true: every instance launched there gets a public IP"
    elif r.type == "aws:ec2/launchTemplate:LaunchTemplate":
        for i, ni in enumerate(as_list(r.props.get("networkInterfaces"))):
            if isinstance(ni, Mapping) and truthy(ni.get("associatePublicIpAddress")):
                yield f"{r.name}: networkInterfaces[{i}].associatePublicIpAddress is true"

_rule(nodes_private, "nodes-private",
      "Nodes get no public IP: pulumi-eks nodeAssociatePublicIpAddress false, subnets with "
      "mapPublicIpOnLaunch false, no public IP in launch templates.", "resource", "security")


# RFC 1918 private ranges: their clients reach a public endpoint only through NAT, from a public address.
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")


def documentation_range(cidr: Any) -> str | None:
    """The RFC 5737 range (gpu_slicing.network.DOCUMENTATION_RANGES) `cidr` lies in, or None."""
    return range_containing(cidr, DOCUMENTATION_RANGES)


def range_containing(cidr: Any, ranges: Iterable[Any]) -> str | None:
    """The first of the IPv4 `ranges` that holds all of `cidr`, or None (also for what is no IPv4 CIDR)."""
    import ipaddress

    try:
        net = ipaddress.ip_network(str(cidr), strict=False)
    except ValueError:
        return None
    return next((str(r) for r in map(ipaddress.IPv4Network, ranges)
                 if isinstance(net, ipaddress.IPv4Network) and net.subnet_of(r)), None)


def api_endpoint_reachable(r: Res, ctx: Context) -> Iterator[str]:
    if r.type == "eks:index:Cluster":
        public, cidrs = r.props.get("endpointPublicAccess"), r.props.get("publicAccessCidrs")
    elif r.type == "aws:eks/cluster:Cluster":
        vpc = r.props.get("vpcConfig") if isinstance(r.props.get("vpcConfig"), Mapping) else {}
        public, cidrs = vpc.get("endpointPublicAccess"), vpc.get("publicAccessCidrs")
    else:
        return
    if truthy(public) is False or not known(cidrs):
        return
    cidrs = [c for c in as_list(cidrs) if known(c)]
    docs = [c for c in cidrs if documentation_range(c)]
    if docs:  # as the config refuses it: an entry no client is in is a mistake, even beside real ones
        reach = "no client can reach the API, so no Kubernetes object can be created, changed or deleted" \
            if len(docs) == len(cidrs) else "an entry that admits no client is a mistake"
        yield (f"{r.name}: publicAccessCidrs {docs} are documentation ranges (RFC 5737): {reach}; use the "
               "deployers' CIDRs")

_rule(api_endpoint_reachable, "api-endpoint-reachable",
      "The cluster's API endpoint is reachable by whoever deploys it: a public endpoint "
      "limited to RFC 5737 documentation ranges admits no real client, and pulumi-kubernetes then can neither "
      "create nor delete anything (so destroy fails too).", "resource", "security")


def _covers_ssh(from_port: Any, to_port: Any, protocol: Any) -> bool:
    if str(protocol) in ("-1", "all"):
        return True
    if str(protocol).lower() not in ("tcp", "6"):
        return False
    try:
        return int(from_port) <= 22 <= int(to_port)
    except (TypeError, ValueError):
        return False


def no_public_ssh(r: Res, ctx: Context) -> Iterator[str]:
    if r.type in MNG_TYPES and r.props.get("remoteAccess"):
        yield f"{r.name}: remoteAccess opens SSH to the nodes; use SSM Session Manager instead"
    rules: list[Mapping[str, Any]] = []
    if r.type == "aws:ec2/securityGroup:SecurityGroup":
        rules = [x for x in as_list(r.props.get("ingress")) if isinstance(x, Mapping)]
    elif r.type == "aws:ec2/securityGroupRule:SecurityGroupRule" and r.props.get("type") == "ingress":
        rules = [r.props]
    elif r.type == "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
        rules = [{"fromPort": r.props.get("fromPort"), "toPort": r.props.get("toPort"),
                  "protocol": r.props.get("ipProtocol"),
                  "cidrBlocks": as_list(r.props.get("cidrIpv4")), "ipv6CidrBlocks": as_list(r.props.get("cidrIpv6"))}]
    for rule in rules:
        cidrs = as_list(rule.get("cidrBlocks")) + as_list(rule.get("ipv6CidrBlocks"))
        if any(c in _ANYWHERE for c in cidrs) and _covers_ssh(rule.get("fromPort"), rule.get("toPort"),
                                                               rule.get("protocol")):
            yield f"{r.name}: ingress from {', '.join(c for c in cidrs if c in _ANYWHERE)} covers port 22"

_rule(no_public_ssh, "no-public-ssh",
      "No SSH from anywhere: no remoteAccess on node groups, no 0.0.0.0/0 or ::/0 ingress "
      "covering port 22 (use SSM Session Manager, which the node role allows).", "resource", "security")


def workloads_non_root(r: Res, ctx: Context) -> Iterator[str]:
    spec = pod_spec(r)
    if spec is None:
        return
    pod_sc = spec.get("securityContext") if isinstance(spec.get("securityContext"), Mapping) else {}
    for c in containers(spec):
        sc = c.get("securityContext") if isinstance(c.get("securityContext"), Mapping) else {}
        name = c.get("name", "?")
        non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        user = sc.get("runAsUser", pod_sc.get("runAsUser"))
        if truthy(non_root) is not True or user == 0:
            yield f"{r.name}: container {name} may run as root (set runAsNonRoot: true and a non-zero runAsUser)"
        if truthy(sc.get("allowPrivilegeEscalation")) is not False:
            yield f"{r.name}: container {name} does not set allowPrivilegeEscalation: false"
        if truthy(sc.get("privileged")):
            yield f"{r.name}: container {name} is privileged"

_rule(workloads_non_root, "workloads-non-root",
      "Workload pods run as non-root, without privilege escalation, unprivileged.",
      "resource", "security")


# --- GPU: per resource -------------------------------------------------------------------------------

def gpu_taint(r: Res, ctx: Context) -> Iterator[str]:
    pool = pool_of(r)
    if pool is not None and not has_gpu_taint(pool.taints):
        yield (f"{pool.kind} {pool.name}: GPU pool without the taint {GPU_TAINT['key']}:{GPU_TAINT['effect']} "
               f"(has {[dict(t) for t in pool.taints] or 'none'})")

_rule(gpu_taint, "gpu-taint",
      "Every GPU pool carries the taint nvidia.com/gpu:NoSchedule, so only pods that ask for GPUs "
      "(and tolerate it) land on nodes that cost tens of dollars an hour.", "resource", "gpu")


def gpu_workloads_tolerate(r: Res, ctx: Context) -> Iterator[str]:
    spec = pod_spec(r)
    if spec is None or not gpu_requests(spec):
        return
    tolerations = [t for t in as_list(spec.get("tolerations")) if isinstance(t, Mapping)]
    if not scheduling.tolerates(tolerations, GPU_TAINT):
        yield (f"{r.name}: requests {', '.join(sorted(gpu_requests(spec)))} but does not tolerate "
               f"{GPU_TAINT['key']}={GPU_TAINT['value']}:{GPU_TAINT['effect']}")

_rule(gpu_workloads_tolerate, "gpu-workloads-tolerate-taint",
      "Pods that request nvidia.com/* resources tolerate nvidia.com/gpu:NoSchedule, "
      "else they stay Pending on the tainted GPU pools.", "resource", "gpu")


def mig_relabel_needs_consent(r: Res, ctx: Context) -> Iterator[str]:
    if r.type not in MNG_TYPES:
        return
    tags = r.props.get("tags")
    if not isinstance(tags, Mapping) or tags.get(MIG_LAYOUT_CHANGE_TAG) != "in-place":
        return
    if tags.get(ALLOW_DISRUPTION_TAG) != "true":
        yield (f"{r.name}: migLayoutChange in-place relabels live GPU nodes with pods on them (state failed or "
               f"pending, docs/facts.md §8); use migLayoutChange: replace (a new node group before the old one drains), or "
               f"set {NAMESPACE}:allowDisruption: true after cordoning and draining the nodes")

_rule(mig_relabel_needs_consent, "mig-relabel-needs-consent",
      "A managed node group whose MIG layout changes relabel live nodes in place "
      f"(tag {MIG_LAYOUT_CHANGE_TAG}=in-place) is refused unless the stack allows disruption "
      f"({NAMESPACE}:allowDisruption, tag {ALLOW_DISRUPTION_TAG}): the MIG manager does not drain, so a node "
      "relabelled with GPU pods on it ends in mig.config.state failed.", "resource", "gpu")


# --- GPU: per stack ----------------------------------------------------------------------------------

def mig_label_valid(resources: list[Res], ctx: Context) -> Iterator[tuple[str, str]]:
    op = operator(resources)
    for pool in gpu_pools(resources):
        label = pool.mig_label
        if not known(label):
            continue
        unknown_types = [t for t in pool.instance_types if catalog.instance_type(t) is None]
        if not pool.instance_types and label != "all-disabled":
            yield (f"{pool.kind} {pool.name}: {MIG_CONFIG_LABEL}={label} on a pool that selects GPUs by "
                   f"{'/'.join(GPU_REQUIREMENT_KEYS)} rather than {INSTANCE_TYPE_LABEL}: the layout cannot be "
                   "checked against a GPU; name the instance types", pool.res.urn)
        if unknown_types and label != "all-disabled":
            yield (f"{pool.kind} {pool.name}: {MIG_CONFIG_LABEL}={label} on {', '.join(unknown_types)}, which "
                   "gpu_slicing.catalog does not know: the layout cannot be checked", pool.res.urn)
        for it, _layout, why in _pool_layouts(pool, op):
            if why:
                yield f"{pool.kind} {pool.name} ({it.name}): {why}", pool.res.urn

_rule(mig_label_valid, "mig-label-valid",
      "Each GPU pool's nvidia.com/mig.config label names a layout its instance type's GPU can "
      "apply (named NVIDIA layout for that GPU, or a layout of the MIG manager's ConfigMap that fits).",
      "stack", "gpu")


def mig_strategy_consistent(resources: list[Res], ctx: Context) -> Iterator[tuple[str, str]]:
    op = operator(resources)
    if op is None or not known(op.strategy):
        return
    for pool in gpu_pools(resources):
        if not known(pool.mig_label):
            continue
        for it, layout, _ in _pool_layouts(pool, op):
            if layout is None:
                continue  # mig-label-valid says why
            if layout.mig_enabled and not op.mig_manager:
                yield (f"{pool.kind} {pool.name}: layout {layout.name} enables MIG but migManager.enabled is false, "
                       "so nothing applies it", op.release.urn)
            if pool.labels.get(DEVICE_PLUGIN_DEPLOY_LABEL) == "false":
                continue  # a DRA pool: no device plugin advertises its slices, whatever the strategy
            try:
                advertise.node_resources(it, layout, str(op.strategy), key=f"{pool.kind} {pool.name}")
            except ConfigError as e:
                yield f"{pool.kind} {pool.name} ({it.name}, mig.strategy {op.strategy}): {e}", pool.res.urn

_rule(mig_strategy_consistent, "mig-strategy-consistent",
      "The GPU Operator's mig.strategy fits every pool's layout (single: one identical "
      "profile on every GPU; none: MIG off) and the MIG manager runs wherever a layout enables MIG.",
      "stack", "gpu")


def _expected_overlay(pool: RecordedPool, it: catalog.InstanceType, layout: MigLayout, strategy: str) -> dict[str, int]:
    adv = advertise.node_resources(it, layout, strategy)
    return {k: v for k, v in adv.items() if k != WHOLE_GPU and v > 0}


def _overlay_matches(overlay: Res, pool: str, instance_type: str) -> bool:
    reqs = dig(overlay.props, "spec", "requirements")
    pools = requirement_values(reqs, NODEPOOL_LABEL)
    types = requirement_values(reqs, INSTANCE_TYPE_LABEL)
    return pools is not None and pool in pools and (types is None or instance_type in types)


def mig_nodepool_overlay(resources: list[Res], ctx: Context) -> Iterator[tuple[str, str]]:
    op = operator(resources)
    strategy = str(op.strategy) if op is not None and known(op.strategy) else "mixed"
    overlays = [r for r in resources if r.type == OVERLAY_TYPE]
    for pool in gpu_pools(resources):
        if pool.kind != "nodePool" or not known(pool.mig_label):
            continue
        for it, layout, _ in _pool_layouts(pool, op):
            if layout is None or not layout.mig_enabled:
                continue
            try:
                expected = _expected_overlay(pool, it, layout, strategy)
            except ConfigError:
                continue  # mig-strategy-consistent says why
            if not expected:
                continue
            mine = [o for o in overlays if _overlay_matches(o, pool.name, it.name)]
            if not mine:
                yield (f"NodePool {pool.name} ({it.name}, {layout.name}): no NodeOverlay with requirements "
                       f"{NODEPOOL_LABEL} In [{pool.name}] declares its {', '.join(sorted(expected))}; pods "
                       "requesting them stay Pending ('no instance type satisfied resources')", pool.res.urn)
                continue
            declared: dict[str, Any] = {}
            for o in mine:
                cap = dig(o.props, "spec", "capacity", default={})
                if isinstance(cap, Mapping):
                    declared.update(cap)
            shared = DEVICE_PLUGIN_CONFIG_LABEL in pool.labels
            for res, n in sorted(expected.items()):
                got = declared.get(res, declared.get(res + ".shared")) if shared else declared.get(res)
                if got == UNKNOWN:
                    continue
                try:
                    got_n = int(str(got))
                except ValueError:
                    got_n = None
                if got is None or got_n is None or (got_n != n if not shared else got_n < n):
                    yield (f"NodePool {pool.name} ({it.name}, {layout.name}): NodeOverlay capacity {res}={got}, "
                           f"the node advertises {n}", mine[0].urn)
    if overlays:
        for rel in releases(resources, KARPENTER_CHART):
            gate = dig(rel.props, "values", "settings", "featureGates", "nodeOverlay")
            if gate != UNKNOWN and truthy(gate) is not True:
                yield (f"{rel.name}: {len(overlays)} NodeOverlay(s) but the Karpenter release does not set "
                       "settings.featureGates.nodeOverlay=true, so Karpenter ignores them", rel.urn)

_rule(mig_nodepool_overlay, "mig-nodepool-overlay",
      "Every Karpenter NodePool whose nodes advertise MIG slices has a NodeOverlay declaring "
      "them (Karpenter's instance model knows no nvidia.com/mig-*: without it such pods never trigger a node), "
      "with the counts the layout yields, and Karpenter runs with settings.featureGates.nodeOverlay=true.",
      "stack", "gpu")


def fractional_gpu_overlay(resources: list[Res], ctx: Context) -> Iterator[tuple[str, str]]:
    overlays = [r for r in resources if r.type == OVERLAY_TYPE]
    for pool in gpu_pools(resources):
        if pool.kind != "nodePool":
            continue
        for it in pool.catalog_types():
            if it.ec2_gpu_count >= it.gpu_count:
                continue
            declared = [dig(o.props, "spec", "capacity", WHOLE_GPU) for o in overlays
                        if _overlay_matches(o, pool.name, it.name)]
            if UNKNOWN in declared:
                continue
            if str(it.gpu_count) not in [str(d) for d in declared]:
                yield (f"NodePool {pool.name} ({it.name}, a fractional GPU EC2 reports as 0): no NodeOverlay declares "
                       f"{WHOLE_GPU}: \"{it.gpu_count}\" for it (declared: {declared or 'none'}); pods requesting "
                       f"{WHOLE_GPU} stay Pending", pool.res.urn)

_rule(fractional_gpu_overlay, "fractional-gpu-overlay",
      "Every Karpenter NodePool of fractional vGPU types (g6f, gr6f) has a NodeOverlay adding "
      "nvidia.com/gpu: 1 per instance type: EC2 reports 0 GPUs for them, so without it Karpenter never launches one "
      "for a GPU pod.", "stack", "gpu")


def gpu_ami_arch(r: Res, ctx: Context) -> Iterator[str]:
    pool = pool_of(r)
    if pool is None:
        return
    types = pool.catalog_types()
    arches = sorted({it.k8s_arch for it in types})
    if len(arches) > 1:
        yield (f"{pool.kind} {pool.name}: instance types of two architectures ({', '.join(arches)}): one AMI and one "
               "kubernetes.io/arch per pool")
        return
    if not types:
        return
    it = types[0]
    if pool.kind == "nodeGroup":
        ami = r.props.get("amiType")
        if known(ami) and isinstance(ami, str) and "NVIDIA" in ami and ami != it.ami_type:
            yield f"{pool.kind} {pool.name}: amiType {ami} on {it.name} ({it.arch}); use {it.ami_type}"
    else:
        allowed = requirement_values(dig(r.props, "spec", "template", "spec", "requirements"), "kubernetes.io/arch")
        if allowed is not None and it.k8s_arch not in allowed:
            yield (f"{pool.kind} {pool.name}: requirement kubernetes.io/arch In {allowed} excludes its {it.name} "
                   f"({it.k8s_arch}): Karpenter can never launch it")

_rule(gpu_ami_arch, "gpu-ami-arch",
      "GPU pools run the AMI of their instances' architecture: a node group's amiType is "
      "AL2023_ARM_64_NVIDIA on arm64 types (g5g) and AL2023_x86_64_NVIDIA on x86_64 ones; a NodePool's "
      "kubernetes.io/arch requirement admits its instance types' architecture, one per pool.", "resource", "gpu")


def no_whole_gpu_on_mixed_mig(resources: list[Res], ctx: Context) -> Iterator[tuple[str, str]]:
    op = operator(resources)
    if op is None or not known(op.strategy):
        return
    pools = gpu_pools(resources)
    for r in resources:
        spec = pod_spec(r)
        if spec is None or WHOLE_GPU not in gpu_requests(spec):
            continue
        selector = spec.get("nodeSelector") if isinstance(spec.get("nodeSelector"), Mapping) else {}
        if not selector:
            continue
        for pool in pools:
            if any(pool.labels.get(k) != v for k, v in selector.items()) or not known(pool.mig_label):
                continue
            for it, layout, _ in _pool_layouts(pool, op):
                if layout is None:
                    continue
                try:
                    adv = advertise.node_resources(it, layout, str(op.strategy))
                except ConfigError:
                    continue
                if adv.get(WHOLE_GPU, 0) == 0:
                    yield (f"{r.name}: requests {WHOLE_GPU} on {pool.kind} {pool.name} ({it.name}, {layout.name}, "
                           f"{op.strategy}), whose nodes advertise {WHOLE_GPU}: 0; request a MIG slice "
                           f"({', '.join(sorted(k for k, v in adv.items() if v and k != WHOLE_GPU))})", r.urn)

_rule(no_whole_gpu_on_mixed_mig, "no-whole-gpu-on-mixed-mig",
      "No pod asks for nvidia.com/gpu on a pool whose nodes advertise nvidia.com/gpu: 0 "
      "(every GPU sliced under the mixed strategy): it would stay Pending forever.", "stack", "gpu")


# --- cost --------------------------------------------------------------------------------------------

def nodepool_max_nodes(pool: RecordedPool) -> tuple[int | None, str]:
    """Most nodes a NodePool's `spec.limits` admit: for each instance type, the fewest nodes any limited
    resource allows; the pool's bound is the largest of those (its smallest instance type). (None, why)
    when nothing bounds it or the bound cannot be computed."""
    limits = dig(pool.res.props, "spec", "limits")
    if limits == UNKNOWN:
        return None, "unknown"
    if not isinstance(limits, Mapping) or not limits:
        return None, "no spec.limits bounding its GPU instances: Karpenter may launch without end"
    types = pool.catalog_types()
    if not types or len(types) != len(pool.instance_types):
        return None, (f"instance types {', '.join(pool.instance_types) or '(none named)'} not all in "
                      "gpu_slicing.catalog: what its limits admit cannot be counted")
    best = nodes_within_limits(limits, types)
    if best is None:
        return None, f"spec.limits {dict(limits)} limit none of cpu, memory, {WHOLE_GPU}"
    return best, ""


def max_gpu_nodes(resources: list[Res], ctx: Context) -> Iterator[tuple[str, str | None]]:
    total, parts = 0, []
    for pool in gpu_pools(resources):
        if pool.kind == "nodeGroup":
            n = dig(pool.res.props, "scalingConfig", "maxSize")
            if not known(n):
                continue
            n = int(n)
        else:
            n, why = nodepool_max_nodes(pool)
            if n is None:
                if why != "unknown":
                    yield f"NodePool {pool.name}: {why}", pool.res.urn
                continue
        total += n
        parts.append(f"{pool.name}: {n}")
    if ctx.max_gpu_nodes is None and total:
        yield (f"the stack may run {total} GPU nodes ({', '.join(parts)}) and states no ceiling: set "
               f"{NAMESPACE}:maxGpuNodes (or the policy pack's maxGpuNodes)", None)
    elif ctx.max_gpu_nodes is not None and total > ctx.max_gpu_nodes:
        yield (f"the stack may run {total} GPU nodes ({', '.join(parts)}), more than "
               f"{NAMESPACE}:maxGpuNodes={ctx.max_gpu_nodes}", None)

_rule(max_gpu_nodes, "max-gpu-nodes",
      "Cost guard: the GPU nodes the stack may run (node group maxSize plus what NodePool limits "
      "admit) stay within gpu-slicing:maxGpuNodes.", "stack", "cost",
      config={MAX_GPU_NODES_KEY: {"type": "integer", "minimum": 0,
                                  "description": "organisation-wide cap on GPU nodes per stack (the stack's own "
                                                 f"{NAMESPACE}:{MAX_GPU_NODES_KEY} applies too; the lower wins)"}})


# --- security: per stack -----------------------------------------------------------------------------

def _public_subnets(resources: Sequence[Res]) -> dict[str, str]:
    """Subnet URN -> why it is public: routed to an internet gateway, or mapPublicIpOnLaunch."""
    by_urn = {r.urn: r for r in resources}
    igws = {r.urn for r in resources if r.type == "aws:ec2/internetGateway:InternetGateway"}
    public_rts = {r.urn for r in resources if r.type == "aws:ec2/routeTable:RouteTable"
                  and set(r.property_dependencies.get("routes", ())) & igws}
    for r in resources:
        if r.type == "aws:ec2/route:Route" and set(r.property_dependencies.get("gatewayId", ())) & igws:
            public_rts |= set(r.property_dependencies.get("routeTableId", ()))
    out: dict[str, str] = {}
    for r in resources:
        if r.type == "aws:ec2/routeTableAssociation:RouteTableAssociation":
            rts = set(r.property_dependencies.get("routeTableId", ()))
            if rts & public_rts:
                for s in r.property_dependencies.get("subnetId", ()):
                    if s in by_urn:
                        out[s] = f"routed to an internet gateway by {by_urn[next(iter(rts & public_rts))].name}"
    for r in resources:
        if r.type == SUBNET_TYPE and truthy(r.props.get("mapPublicIpOnLaunch")):
            out.setdefault(r.urn, "mapPublicIpOnLaunch is true")
    return out


def nodes_in_private_subnets(resources: list[Res], ctx: Context) -> Iterator[tuple[str, str]]:
    public = _public_subnets(resources)
    names = {r.urn: r.name for r in resources}
    for r in resources:
        if r.type in MNG_TYPES:
            bad = [s for s in r.property_dependencies.get("subnetIds", ()) if s in public]
            if bad:
                yield (f"{r.name}: subnetIds include public subnet(s) "
                       f"{', '.join(f'{names[s]} ({public[s]})' for s in bad)}", r.urn)
        elif r.type == NODECLASS_TYPE:
            for term in as_list(dig(r.props, "spec", "subnetSelectorTerms")):
                tags = term.get("tags") if isinstance(term, Mapping) else None
                if not isinstance(tags, Mapping) or not tags:
                    continue
                for s in resources:
                    stags = s.props.get("tags") if s.type == SUBNET_TYPE else None
                    if isinstance(stags, Mapping) and all(stags.get(k) == v for k, v in tags.items()) \
                            and s.urn in public:
                        yield (f"{r.name}: subnetSelectorTerms {dict(tags)} select public subnet {s.name} "
                               f"({public[s.urn]})", r.urn)

_rule(nodes_in_private_subnets, "nodes-in-private-subnets",
      "Node groups and Karpenter's subnet selector use private subnets only (no route "
      "to an internet gateway).", "stack", "security")


# --- GPU: DRA (the NVIDIA DRA driver beside the device plugin) ----------------------------------------

DRA_CHART = "dra-driver-nvidia-gpu"


def one_allocation_per_node(resources: list[Res], ctx: Context) -> Iterator[tuple[str, str]]:
    for release in releases(resources, DRA_CHART):
        selector = dig(release.props, "values", "kubeletPlugin", "nodeSelector", default={})
        if not isinstance(selector, Mapping):
            continue  # unknown at preview
        for pool in gpu_pools(resources):
            if not isinstance(pool.labels, Mapping) or not known(pool.labels.get(POOL_LABEL, pool.name)):
                continue
            plugin = all(pool.labels.get(k) == v for k, v in selector.items())
            if plugin and pool.labels.get(DEVICE_PLUGIN_DEPLOY_LABEL) != "false":
                yield (f"{pool.kind} {pool.name}: the DRA kubelet plugin ({release.name}, nodeSelector "
                       f"{dict(selector) or 'none: every node'}) and the device plugin could both run on its nodes; "
                       f"label them {DEVICE_PLUGIN_DEPLOY_LABEL}=false or narrow the kubelet plugin's nodeSelector",
                       pool.res.urn)

_rule(one_allocation_per_node, "one-allocation-per-node",
      "No GPU node can run both the DRA driver's kubelet plugin and the GPU Operator's "
      f"device plugin: both would hand out the same GPUs (silent oversubscription). A pool the kubelet plugin's "
      f"nodeSelector admits carries {DEVICE_PLUGIN_DEPLOY_LABEL}=false.", "stack", "gpu")


def dra_pods_on_dra_nodes(r: Res, ctx: Context) -> Iterator[str]:
    spec = pod_spec(r)
    if spec is None or not as_list(spec.get("resourceClaims")):
        return
    selector = spec.get("nodeSelector")  # absent (None): nothing keeps the pod off device-plugin nodes
    if selector == UNKNOWN or (isinstance(selector, Mapping) and not known(selector.get(DEVICE_PLUGIN_DEPLOY_LABEL))
                               and DEVICE_PLUGIN_DEPLOY_LABEL in selector):
        return
    if not isinstance(selector, Mapping) or selector.get(DEVICE_PLUGIN_DEPLOY_LABEL) != "false":
        yield (f"{r.name}: holds DRA claims but its nodeSelector allows nodes running the device plugin; select "
               f"{DEVICE_PLUGIN_DEPLOY_LABEL}: \"false\" (the DRA pool's nodes)")

_rule(dra_pods_on_dra_nodes, "dra-pods-on-dra-nodes",
      "A pod holding a DRA claim selects nodes where the device plugin is off "
      f"(nodeSelector {DEVICE_PLUGIN_DEPLOY_LABEL}=false): elsewhere the device plugin may hand out the same GPU.",
      "resource", "gpu")
