"""Karpenter v1.14.1 as plain data: IAM documents, chart values, and the EC2NodeClass, NodePool and
NodeOverlay of every GPU NodePool (docs/facts.md §1.7, 1.9, 4, 5). No Pulumi here: `components/karpenter.py` and
`components/gpu_node_pool.py` turn these into resources, the tests hold them against the upstream
CloudFormation, chart values and CRDs.

Design notes a reviewer needs:
- The controller's IAM is upstream's getting-started CloudFormation, statement for statement: every
  mutating EC2/IAM action is scoped by the tags Karpenter puts on what it creates
  (`kubernetes.io/cluster/<cluster>=owned`, `karpenter.sh/nodepool`, `karpenter.k8s.aws/ec2nodeclass`).
- Karpenter's instance-type model knows `nvidia.com/gpu` (the instance's GPU count) but no MIG or
  renamed time-sliced resource: a NodeOverlay declares what a node of the pool will advertise, taken from
  the same `Pool.per_instance_type` the capacity plan uses. An overlay adds resources; it cannot change
  `nvidia.com/gpu`, so pools that would advertise more `nvidia.com/gpu` than the instance has GPUs
  (MIG under the single strategy, time-slicing without renameByDefault) are config errors.
- `limits` cap what the pool may launch at maxNodes of its largest instance type, for every resource
  (GPUs, cpu, memory): a mixed-MIG node reports `nvidia.com/gpu: 0`, so the GPU limit alone would not
  hold once nodes register; cpu and memory still do. With instance types of different sizes the pool
  may run more than maxNodes of the smaller ones, never more than maxNodes x the largest's resources.
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from . import helm
from .labels import POOL_LABEL
from .errors import NAMESPACE, ConfigError, each
from .catalog import WHOLE_GPU, InstanceType
from .nodes import node_class_hardening
from .karpenter_names import INTERRUPTION_RULES, node_role_name, overlay_name
# Also gpu_slicing.karpenter's names (components and tests use them from here).
from .karpenter_names import CONTROLLER_POLICIES, controller_role_name, policy_name, queue_name, rule_name  # noqa: F401

if TYPE_CHECKING:  # types only: the policy pack imports this module without the config model (pydantic)
    from .config import NodePoolConfig, StackConfig
    from .pools import Pool

CHART = "oci://public.ecr.aws/karpenter/karpenter"  # Helm OCI reference; the version pins the chart
RELEASE = "karpenter"
RELEASE_NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "karpenter"  # set explicitly so the Pod Identity association cannot drift from the chart
POD_IDENTITY_ADDON = "eks-pod-identity-agent"
DISCOVERY_TAG = "karpenter.sh/discovery"
NODEPOOL_LABEL = "karpenter.sh/nodepool"  # set by Karpenter on every node and instance it launches
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
CAPACITY_TYPE_LABEL = "karpenter.sh/capacity-type"
ARCH_LABEL = "kubernetes.io/arch"  # one per pool: the EC2NodeClass's AL2023 alias resolves one AMI per arch

NODEPOOL_API = "karpenter.sh/v1"
NODECLASS_API = "karpenter.k8s.aws/v1"
OVERLAY_API = "karpenter.sh/v1alpha1"

# Destroy: a NodePool deleted with foreground propagation stays until its NodeClaims (finalizer
# karpenter.sh/termination, blockOwnerDeletion) are gone, i.e. until its instances are terminated.
# The drain is bounded by TERMINATION_GRACE_PERIOD; the delete timeout leaves room for that plus
# EC2 termination. Create: wait for the Ready condition, so `pulumi up` fails when the NodeClass cannot
# resolve its AMI alias, subnets, security groups or instance profile (instead of pods Pending later).
FOREGROUND_DELETE = {"pulumi.com/deletionPropagationPolicy": "foreground"}
WAIT_READY = {"pulumi.com/waitFor": "condition=Ready"}
TERMINATION_GRACE_PERIOD = "30m"
DELETE_TIMEOUT = "45m"
CREATE_TIMEOUT = "10m"
# Voluntary disruption one GPU node at a time, per reason (WhenEmpty pools see only Empty and Drifted);
# expiry is forceful and not budgeted, hence expireAfter Never for GPU pools.
DISRUPTION_BUDGETS = ({"nodes": "1", "reasons": ["Empty"]}, {"nodes": "1", "reasons": ["Drifted"]})
CRD_CHART = "oci://public.ecr.aws/karpenter/karpenter-crd"  # CRDs as templates, so helm upgrade upgrades them
CRD_RELEASE = "karpenter-crd"
_CRON_WINDOW = re.compile(r"^([0-9]{1,2}) ([0-9]{1,2}) \* \* (\*|[0-6])$")
_WINDOW_DURATION = re.compile(r"^(?:([0-9]+)h)?(?:([0-9]+)m)?$")

CONTROLLER_REPLICAS = 2
# Upstream's getting-started sizing; requests == limits keeps the controller Guaranteed on the
# 2-vCPU system nodes it shares with the add-ons.
CONTROLLER_RESOURCES = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}

# Every chart value this program sets, each a key of the chart's values.yaml at KARPENTER_VERSION.
# Maps of user data (nodeSelector, controller.resources) are leaves: their keys are not chart keys.
OPAQUE_VALUES = frozenset({"nodeSelector", "controller.resources"})
VALUE_PATHS = frozenset({
    "settings.clusterName", "settings.interruptionQueue", "settings.featureGates.nodeOverlay",
    "serviceAccount.name", "replicas", "nodeSelector",
    "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms",
    "affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution",
    "controller.resources", "controller.env",
})

QUEUE_TARGET_ID = "KarpenterInterruptionQueueTarget"
QUEUE_RETENTION_SECONDS = 300

# Managed policies of the Karpenter node role (upstream KarpenterNodeRole).
NODE_ROLE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryPullOnly",
                      "AmazonSSMManagedInstanceCore")


# --- AWS documents ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class AwsContext:
    """Where the policies apply: from aws.get_partition / get_region / get_caller_identity."""

    partition: str
    region: str
    account_id: str
    url_suffix: str = "amazonaws.com"


def _doc(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _stmt(sid: str, resource: str | list[str], action: str | list[str], condition: dict | None = None,
          effect: str = "Allow") -> dict:
    out: dict[str, Any] = {"Sid": sid, "Effect": effect, "Resource": resource, "Action": action}
    if condition:
        out["Condition"] = condition
    return out


def node_trust_policy(ctx: AwsContext) -> dict:
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": f"ec2.{ctx.url_suffix}"}, "Action": ["sts:AssumeRole"]}]}


def controller_trust_policy() -> dict:
    """EKS Pod Identity: the agent assumes the role and tags the session (docs/facts.md §4)."""
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
         "Action": ["sts:AssumeRole", "sts:TagSession"]}]}


def controller_policies(ctx: AwsContext, cluster: str, node_role_arn: str, queue_arn: str) -> dict[str, dict]:
    """The controller's six policy documents, keyed as CONTROLLER_POLICIES (upstream's statements)."""
    p, r, a, c = ctx.partition, ctx.region, ctx.account_id, cluster

    def ec2(kind: str, account: str = "*") -> str:
        return f"arn:{p}:ec2:{r}:{account}:{kind}/*"

    owned_res = {f"aws:ResourceTag/kubernetes.io/cluster/{c}": "owned"}
    owned_req = {f"aws:RequestTag/kubernetes.io/cluster/{c}": "owned", "aws:RequestTag/eks:eks-cluster-name": c}
    pool_res = {f"aws:ResourceTag/{NODEPOOL_LABEL}": "*"}
    pool_req = {f"aws:RequestTag/{NODEPOOL_LABEL}": "*"}
    launched = [ec2(k) for k in ("fleet", "instance", "volume", "network-interface", "launch-template",
                                 "spot-instances-request")]
    run = ["ec2:RunInstances", "ec2:CreateFleet"]
    profile = f"arn:{p}:iam::{a}:instance-profile/*"
    region_res = {"aws:ResourceTag/topology.kubernetes.io/region": r}
    region_req = {"aws:RequestTag/topology.kubernetes.io/region": r}
    nodeclass_res = {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"}
    nodeclass_req = {"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"}
    cluster_arn = f"arn:{p}:eks:{r}:{a}:cluster/{c}"
    return {
        "NodeLifecycle": _doc(
            _stmt("AllowScopedEC2InstanceAccessActions",
                  [ec2("image", ""), ec2("snapshot", ""), ec2("security-group"), ec2("subnet"),
                   ec2("capacity-reservation"), ec2("placement-group")], run),
            _stmt("AllowScopedEC2LaunchTemplateAccessActions", f"arn:{p}:ec2:{r}:*:launch-template/*", run,
                  {"StringEquals": owned_res, "StringLike": pool_res}),
            _stmt("AllowScopedEC2InstanceActionsWithTags", launched, [*run, "ec2:CreateLaunchTemplate"],
                  {"StringEquals": owned_req, "StringLike": pool_req}),
            _stmt("AllowScopedResourceCreationTagging", launched, "ec2:CreateTags",
                  {"StringEquals": {**owned_req,
                                    "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"]},
                   "StringLike": pool_req}),
            _stmt("AllowScopedResourceTagging", ec2("instance"), "ec2:CreateTags",
                  {"StringEquals": owned_res, "StringLike": pool_res,
                   "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": c},
                   "ForAllValues:StringEquals": {"aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim",
                                                                 "Name"]}}),
            _stmt("AllowScopedDeletion", [ec2("instance"), ec2("launch-template")],
                  ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
                  {"StringEquals": owned_res, "StringLike": pool_res}),
        ),
        "IAMIntegration": _doc(
            _stmt("AllowPassingInstanceRole", node_role_arn, "iam:PassRole",
                  {"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}}),
            _stmt("AllowScopedInstanceProfileCreationActions", profile, ["iam:CreateInstanceProfile"],
                  {"StringEquals": {**owned_req, **region_req}, "StringLike": nodeclass_req}),
            _stmt("AllowScopedInstanceProfileTagActions", profile, ["iam:TagInstanceProfile"],
                  {"StringEquals": {**owned_res, **region_res, **owned_req, **region_req},
                   "StringLike": {**nodeclass_res, **nodeclass_req}}),
            _stmt("AllowScopedInstanceProfileActions", profile,
                  ["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"],
                  {"StringEquals": {**owned_res, **region_res}, "StringLike": nodeclass_res}),
        ),
        "EKSIntegration": _doc(_stmt("AllowAPIServerEndpointDiscovery", cluster_arn, "eks:DescribeCluster")),
        "Interruption": _doc(_stmt("AllowInterruptionQueueActions", queue_arn,
                                   ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"])),
        "ZonalShift": _doc(_stmt("AllowZonalShiftStatusReadOnly", "*", ["arc-zonal-shift:GetManagedResource"],
                                 {"StringEquals": {"arc-zonal-shift:ResourceIdentifier": cluster_arn}})),
        "ResourceDiscovery": _doc(
            _stmt("AllowRegionalReadActions", "*",
                  [f"ec2:Describe{x}" for x in ("CapacityReservations", "Images", "Instances", "InstanceStatus",
                                                "InstanceTypeOfferings", "InstanceTypes", "LaunchTemplates",
                                                "PlacementGroups", "SecurityGroups", "SpotPriceHistory", "Subnets")],
                  {"StringEquals": {"aws:RequestedRegion": r}}),
            _stmt("AllowSSMReadActions", f"arn:{p}:ssm:{r}::parameter/aws/service/*", "ssm:GetParameter"),
            _stmt("AllowPricingReadActions", "*", "pricing:GetProducts"),
            _stmt("AllowUnscopedInstanceProfileListAction", "*", "iam:ListInstanceProfiles"),
            _stmt("AllowInstanceProfileReadActions", profile, "iam:GetInstanceProfile"),
        ),
    }


def queue_policy(queue_arn: str) -> dict:
    """EventBridge (and SQS) may send; nothing may use the queue over plain HTTP."""
    return {"Version": "2012-10-17", "Id": "EC2InterruptionPolicy", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
         "Action": "sqs:SendMessage", "Resource": queue_arn},
        {"Sid": "DenyHTTP", "Effect": "Deny", "Action": "sqs:*", "Resource": queue_arn,
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}, "Principal": "*"},
    ]}


def event_pattern(key: str) -> dict:
    source, detail_type = INTERRUPTION_RULES[key]
    return {"source": [source], "detail-type": [detail_type]}


# --- chart values -----------------------------------------------------------------------------------

def chart_values(cluster: str, interruption_queue: Any, system_label: Mapping[str, str], region: Any
                 ) -> dict[str, Any]:
    """Two controller replicas on different system nodes (the node group labelled `system_label`), never
    on a node Karpenter manages (it would be removing the node it runs on), NodeOverlay on.

    AWS_REGION is explicit: the controller otherwise asks IMDS for it at start-up and panics when it
    cannot, which is the case on our nodes (IMDSv2 with hop limit 1: pods cannot reach IMDS). Credentials
    come from EKS Pod Identity, whose agent is reachable from pods."""
    (label_key, label_value), = system_label.items()
    return {
        "settings": {"clusterName": cluster, "interruptionQueue": interruption_queue,
                     "featureGates": {"nodeOverlay": True}},
        "serviceAccount": {"name": SERVICE_ACCOUNT},
        "replicas": CONTROLLER_REPLICAS,
        "nodeSelector": {"kubernetes.io/os": "linux", label_key: label_value},
        "affinity": {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": NODEPOOL_LABEL, "operator": "DoesNotExist"},
                                      {"key": label_key, "operator": "In", "values": [label_value]}]}]}},
            "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "kubernetes.io/hostname"}]},
        },
        "controller": {"resources": CONTROLLER_RESOURCES, "env": [{"name": "AWS_REGION", "value": region}]},
    }


def flatten(values: Mapping[str, Any]) -> list[str]:
    """Leaf key paths of chart values (OPAQUE_VALUES are leaves): checked against VALUE_PATHS."""
    return helm.flatten(values, opaque=OPAQUE_VALUES)


# --- the Kubernetes objects of one GPU NodePool -------------------------------------------------------

def node_limits(pool: Pool) -> dict[str, str]:
    """`spec.limits`: maxNodes x the largest instance type of the pool, as quantity strings. GPUs are the
    physical ones Karpenter counts per instance type, never time-slicing shares: a limit of shares would admit
    shares-times more nodes of a smaller type."""
    n = pool.nodes_max
    return {WHOLE_GPU: str(n * max(it.gpu_count for it in pool.instance_types)),
            "cpu": str(n * max(it.vcpu for it in pool.instance_types)),
            "memory": f"{n * max(it.memory_gib for it in pool.instance_types)}Gi"}


# Kubernetes' quantity grammar (k8s.io/apimachinery resource.Quantity): a signed decimal, then a binary
# suffix (Ki..Ei), a decimal SI suffix (n, u, m, k, M, G, T, P, E: lower-case k is 10^3; "K" is no suffix), or
# an exponent (e3, E6). The kubernetes client's parse_quantity implements the same grammar but costs 1.5 s to
# import and pins python-dateutil against botocore, so the grammar is restated here and tested against the
# examples of the Kubernetes documentation.
QUANTITY_CAP = float(2 ** 63 - 1)  # apimachinery resource.Quantity: no quantity is larger in magnitude
_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$")
_SCALE = {None: 1, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
          "E": 1e18, "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}


def quantity(v: Any) -> float | None:
    """A Kubernetes quantity ("96", "96000m", "1152Gi", "1k", "1e3") as a number; None when unreadable. Like
    the API server's, capped at 2^63-1 in magnitude (apimachinery's resource.Quantity: larger numbers are
    capped), so a huge exponent ("1e400") reads as the cap, not as an overflow."""
    m = _QUANTITY.match(str(v).strip()) if v is not None and not isinstance(v, bool) else None
    if not m:
        return None
    number, suffix = float(m.group(1)), m.group(2)
    if number == 0:
        return 0.0
    scale = _SCALE[suffix] if suffix in _SCALE else float(f"1e{int(suffix[1:])}")  # Ei etc., else an exponent e3
    return math.copysign(min(abs(number * scale), QUANTITY_CAP), number)


def nodes_within_limits(limits: Mapping[str, Any], types: Iterable[InstanceType]) -> int | None:
    """Most nodes NodePool `limits` admit: per instance type, the fewest nodes any limited resource allows;
    the bound is the largest of those (the smallest type). None when no limit bounds cpu, memory or GPUs."""
    best = 0
    for it in types:
        per_node = {"cpu": it.vcpu, "memory": it.memory_gib * 2 ** 30, WHOLE_GPU: it.gpu_count}
        bounds = [int(q // per_node[k]) for k, v in limits.items() if k in per_node and per_node[k]
                  and (q := quantity(v)) is not None]
        if not bounds:
            return None
        best = max(best, min(bounds))
    return best


def pool_node_bound(pool: Pool) -> int:
    """How many nodes the NodePool's limits really admit: with mixed sizes, limits sized for the largest
    type admit more of the smaller ones, and that is what the cost guard must count."""
    return nodes_within_limits(node_limits(pool), pool.instance_types) or 0


def node_class(pool: Pool, cluster: str, ami_alias_version: str, disk_gib: int) -> dict[str, Any]:
    """EC2NodeClass: AL2023 at a pinned release (Karpenter picks its NVIDIA variant for GPU instances),
    the node role, discovery-tagged subnets and security group, an encrypted gp3 root volume for CUDA
    images, IMDSv2 only with hop limit 1 (pods cannot reach the node's credentials)."""
    discovery = {DISCOVERY_TAG: cluster}
    return {
        "apiVersion": NODECLASS_API, "kind": "EC2NodeClass",
        "metadata": {"name": pool.name, "annotations": {**WAIT_READY}},
        "spec": {
            "role": node_role_name(cluster),
            "amiSelectorTerms": [{"alias": f"al2023@{ami_alias_version}"}],
            "subnetSelectorTerms": [{"tags": dict(discovery)}],
            "securityGroupSelectorTerms": [{"tags": dict(discovery)}],
            **node_class_hardening(disk_gib),
            **({"kubelet": {"maxPods": pool.max_pods_override}} if pool.max_pods_override is not None else {}),
            "tags": {"gpu-slicing/cluster": cluster, POOL_LABEL: pool.name, "managed-by": "karpenter"},
        },
    }


def _hm(minutes: int) -> str:
    h, m = divmod(minutes, 60)
    return f"{h}h{m}m" if h and m else f"{h}h" if h else f"{m}m"


def disruption_budgets(schedule: str | None, duration: str | None, key: str = "") -> list[dict[str, Any]]:
    """Per-reason budgets: empty nodes go one at a time whenever; drifted nodes one at a time, and only inside
    the maintenance window `schedule` (cron, UTC) + `duration`. Karpenter applies the most restrictive active
    budget, so the window is expressed as a `nodes: "0"` Drifted budget over its complement (the rest of
    the day or week)."""
    budgets = [dict(b, reasons=list(b["reasons"])) for b in DISRUPTION_BUDGETS]
    if schedule is None and duration is None:
        return budgets
    m = _CRON_WINDOW.fullmatch(schedule or "")
    if not m or int(m.group(1)) > 59 or int(m.group(2)) > 23:
        raise ConfigError(f"{key}.driftSchedule", schedule, ("required with driftDuration: " if schedule is None else "")
                          + "a daily 'M H * * *' or weekly 'M H * * D' (D 0-6, 0 = Sunday) cron schedule in UTC, "
                            "set with driftDuration")
    d = _WINDOW_DURATION.fullmatch(duration or "")
    period = 1440 if m.group(3) == "*" else 7 * 1440
    length = (int(d.group(1) or 0) * 60 + int(d.group(2) or 0)) if d and duration else 0
    if not 0 < length < period:
        raise ConfigError(f"{key}.driftDuration", duration, ("required with driftSchedule: " if duration is None else "")
                          + f"a duration such as 4h or 1h30m, shorter than the window's period ({_hm(period)})")
    start = int(m.group(2)) * 60 + int(m.group(1)) + (0 if m.group(3) == "*" else int(m.group(3)) * 1440)
    end = (start + length) % period
    day = "*" if m.group(3) == "*" else str(end // 1440)
    budgets.append({"nodes": "0", "reasons": ["Drifted"], "schedule": f"{end % 60} {end % 1440 // 60} * * {day}",
                    "duration": _hm(period - length)})
    return budgets


def node_pool(pool: Pool, capacity_types: Iterable[str], consolidate_after: str, expire_after: str,
              budgets: Iterable[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """NodePool: the pool's instance and capacity types, its labels (incl. `nvidia.com/mig.config`, so a
    new node comes up with its layout) and GPU taint; removes a node only once it has been empty for
    `consolidate_after` (MIG setup reboots a new node: churn is slow and expensive), one at a time."""
    return {
        "apiVersion": NODEPOOL_API, "kind": "NodePool",
        "metadata": {"name": pool.name, "annotations": {**FOREGROUND_DELETE, **WAIT_READY}},
        "spec": {
            "template": {
                "metadata": {"labels": dict(pool.labels)},
                "spec": {
                    "nodeClassRef": {"group": NODECLASS_API.split("/")[0], "kind": "EC2NodeClass", "name": pool.name},
                    "requirements": [
                        {"key": INSTANCE_TYPE_LABEL, "operator": "In", "values": [it.name for it in pool.instance_types]},
                        {"key": CAPACITY_TYPE_LABEL, "operator": "In", "values": list(capacity_types)},
                        {"key": ARCH_LABEL, "operator": "In", "values": [pool.instance_type.k8s_arch]},
                    ],
                    "taints": [dict(t) for t in pool.taints],
                    "expireAfter": expire_after,
                    "terminationGracePeriod": TERMINATION_GRACE_PERIOD,
                },
            },
            "limits": node_limits(pool),
            "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": consolidate_after,
                           "budgets": [dict(b) for b in (budgets or disruption_budgets(None, None))]},
        },
    }


def overlay_capacity(pool: Pool, instance_type: str) -> dict[str, str]:
    """What a node of `pool` of `instance_type` advertises that Karpenter cannot know: its MIG and renamed
    (time-sliced) resources, from the planner's per-node figures. `nvidia.com/gpu` is Karpenter's own
    (the instance's GPU count), except on fractional vGPU types (g6f, gr6f), where EC2 reports 0 GPUs
    while the node advertises 1: the overlay adds it, or Karpenter never launches them for GPU pods."""
    per_node = pool.per_instance_type[instance_type]
    out = {r: str(n) for r, n in sorted(per_node.items()) if n > 0 and r != WHOLE_GPU}
    it = next(t for t in pool.instance_types if t.name == instance_type)
    if it.ec2_gpu_count < per_node.get(WHOLE_GPU, 0):
        out[WHOLE_GPU] = str(per_node[WHOLE_GPU])
    return dict(sorted(out.items()))


def node_overlays(pool: Pool) -> dict[str, dict[str, Any]]:
    """One NodeOverlay per instance type whose nodes advertise resources Karpenter does not model,
    keyed by instance type."""
    out = {}
    for it in pool.instance_types:
        capacity = overlay_capacity(pool, it.name)
        if not capacity:
            continue
        out[it.name] = {
            "apiVersion": OVERLAY_API, "kind": "NodeOverlay",
            "metadata": {"name": overlay_name(pool.name, it.name), "annotations": {**FOREGROUND_DELETE, **WAIT_READY}},
            "spec": {"requirements": [{"key": NODEPOOL_LABEL, "operator": "In", "values": [pool.name]},
                                      {"key": INSTANCE_TYPE_LABEL, "operator": "In", "values": [it.name]}],
                     "capacity": capacity},
        }
    return out


# --- config rules -----------------------------------------------------------------------------------

def rule_errors(cfg: StackConfig, pools: Iterable[Pool]) -> list[ConfigError]:
    """Rules for Karpenter NodePools the shape of the config cannot express, one error (the first) per
    NodePool among `pools` (those that resolved). MIG layouts the GPUs lack and mixed GPU models are
    rejected when the pools are resolved."""
    by_name = {p.name: p for p in pools}
    return each(functools.partial(_check_node_pool, pc, by_name[pc.name])
                for pc in cfg.karpenter.node_pools if pc.name in by_name)[1]


def _check_node_pool(pc: NodePoolConfig, pool: Pool) -> None:
    """One NodePool's rules, first error only: they read the same fields in turn."""
    disruption_budgets(pc.drift_schedule, pc.drift_duration, pool.key)
    for it in pool.instance_types:
        advertised = pool.per_instance_type[it.name].get(WHOLE_GPU, 0)
        if advertised > it.gpu_count:
            mig = pool.layout.mig_enabled and pool.sharing is None
            raise ConfigError(f"{pool.key}.migLayout" if mig else f"{pool.key}.sharing",
                              pool.layout.name if mig else pc.sharing,
                              f"a pool whose {it.name} nodes advertise at most {it.gpu_count} {WHOLE_GPU} "
                              f"(they would advertise {advertised}): Karpenter counts {WHOLE_GPU} as the "
                              "instance's GPUs and a NodeOverlay cannot change that, so it would launch "
                              f"nodes for pods that already fit; use {NAMESPACE}:gpuOperator.migStrategy "
                              "mixed for MIG, and renameByDefault: true for time-slicing")
