"""What a change to an input does to a running resource, as data with its source (docs/facts.md §8).

`tools/diff.py` compares two offline plans and asks `classify(type, path)` for every input that differs.
Each rule is (input path prefix, effect, source); the longest matching prefix wins. Effects:

- `update`: changed in place, nothing running is replaced;
- `roll`: updated in place by replacing the running nodes (EKS `UpdateNodegroupVersion`, Karpenter drift);
- `interrupt`: changed in place, but what runs through it stops meanwhile (an internet gateway detached from
  its running VPC);
- `replace`: Pulumi deletes and re-creates the resource (create-before-delete unless `deleteBeforeReplace`);
- `unknown`: no rule with a source names this input: the diff says so instead of guessing "in place".

`tests/test_diff.py` holds the EKS table against botocore's service model, and every input of every type the
dev stack registers against these rules (none may be `unknown`).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

UPDATE, ROLL, REPLACE, INTERRUPT, UNKNOWN = "update", "roll", "replace", "interrupt", "unknown"
ORDER = {UPDATE: 0, UNKNOWN: 1, ROLL: 2, INTERRUPT: 3, REPLACE: 4}

EKS_MODEL = "botocore's eks service model"
NG_CONFIG = f"EKS UpdateNodegroupConfig request member ({EKS_MODEL})"
NG_VERSION = (f"EKS UpdateNodegroupVersion request member ({EKS_MODEL}): new nodes up, old ones drained, pods "
              "evicted within 15 min")
NG_CREATE_ONLY = f"only in EKS CreateNodegroup, in no Update* request ({EKS_MODEL}): a new node group"
KARPENTER_DRIFT = ("Karpenter drift: a NodePool spec.template change marks every node of the pool drifted; "
                   "replaced through disruption, paced by spec.disruption.budgets")
KARPENTER_NODECLASS_DRIFT = ("Karpenter drift: an EC2NodeClass spec change (AMI selector incl. the al2023@ alias, "
                             "subnets, security groups, block devices, metadata options, user data, tags) drifts "
                             "every node of its pools")
KARPENTER_NO_DRIFT = "Karpenter: spec.limits, spec.weight and spec.disruption changes do not drift nodes"
PULUMI_K8S_NAME = ("pulumi-kubernetes: metadata.name/namespace are the object's identity; a change replaces it, "
                   "delete-first when the name is fixed")
K8S_IMMUTABLE = "Kubernetes: immutable field (the API server rejects an update)"
TF_FORCE_NEW = "terraform-provider-aws (behind pulumi-aws): ForceNew field"
HELM_UPGRADE = "helm upgrade in place (kubernetes:helm.sh/v3:Release)"
HELM_IDENTITY = "pulumi-kubernetes Release: the release name and namespace are its identity"
NO_RULE = "no rule with a source names this input: its effect is unknown (read the provider's docs before merging)"
TF_UPDATE = "terraform-provider-aws (behind pulumi-aws): updated in place (not ForceNew)"
TAGS = ("tags", UPDATE, "AWS TagResource / tagging APIs: tags change in place")
EC2_ATTR = "EC2 Modify*Attribute: changes in place"
K8S_APPLY = "Kubernetes: a server-side apply patch of a mutable field, in place"

# Pulumi input name of eks:index:ManagedNodeGroup / aws:eks/nodeGroup:NodeGroup -> EKS API request member.
NODEGROUP_INPUT_TO_API = {
    "labels": "labels", "taints": "taints", "scalingConfig": "scalingConfig", "updateConfig": "updateConfig",
    "nodeRepairConfig": "nodeRepairConfig", "warmPoolConfig": "warmPoolConfig",
    "launchTemplate": "launchTemplate", "version": "version", "releaseVersion": "releaseVersion",
    "nodeGroupName": "nodegroupName", "instanceTypes": "instanceTypes", "amiType": "amiType",
    "capacityType": "capacityType", "subnetIds": "subnets", "nodeRole": "nodeRole", "diskSize": "diskSize",
    "remoteAccess": "remoteAccess",
}
# EKS API members by operation, as botocore 1.44 lists them (tests re-read botocore's model).
UPDATE_NODEGROUP_CONFIG = ("labels", "taints", "scalingConfig", "updateConfig", "nodeRepairConfig", "warmPoolConfig")
UPDATE_NODEGROUP_VERSION = ("version", "releaseVersion", "launchTemplate")


def _nodegroup_rules() -> tuple[tuple[str, str, str], ...]:
    rules = [("tags", UPDATE, "EKS TagResource (tags change in place)")]
    for inp, api in NODEGROUP_INPUT_TO_API.items():
        if api in UPDATE_NODEGROUP_CONFIG:
            rules.append((inp, UPDATE, NG_CONFIG))
        elif api in UPDATE_NODEGROUP_VERSION:
            rules.append((inp, ROLL, NG_VERSION))
        else:
            rules.append((inp, REPLACE, NG_CREATE_ONLY))
    rules.append(("cluster", REPLACE, NG_CREATE_ONLY))
    return tuple(rules)


_K8S_IDENTITY = (("metadata.name", REPLACE, PULUMI_K8S_NAME), ("metadata.namespace", REPLACE, PULUMI_K8S_NAME))
_K8S_META = (("metadata.labels", UPDATE, K8S_APPLY), ("metadata.annotations", UPDATE, K8S_APPLY))
PULUMI_EKS_CHILDREN = ("pulumi-eks Cluster option: adds or removes the component's own children (OIDC provider, "
                       "default node group and its security groups); the EKS control plane stays")
HELM_CLIENT = "pulumi-kubernetes Release: a client-side option of the next helm upgrade (nothing changes in the cluster)"

RULES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "eks:index:ManagedNodeGroup": _nodegroup_rules(),
    "aws:eks/nodeGroup:NodeGroup": _nodegroup_rules(),
    "eks:index:Cluster": (
        ("version", UPDATE, f"EKS UpdateClusterVersion ({EKS_MODEL}): the control plane upgrades in place"),
        ("endpointPublicAccess", UPDATE, f"EKS UpdateClusterConfig resourcesVpcConfig ({EKS_MODEL})"),
        ("endpointPrivateAccess", UPDATE, f"EKS UpdateClusterConfig resourcesVpcConfig ({EKS_MODEL})"),
        ("publicAccessCidrs", UPDATE, f"EKS UpdateClusterConfig resourcesVpcConfig ({EKS_MODEL})"),
        ("enabledClusterLogTypes", UPDATE, f"EKS UpdateClusterConfig logging ({EKS_MODEL})"),
        ("authenticationMode", UPDATE, f"EKS UpdateClusterConfig accessConfig ({EKS_MODEL})"),
        ("name", REPLACE, f"EKS cluster name: in no Update* request ({EKS_MODEL})"),
        ("vpcId", REPLACE, "EKS: a cluster cannot move to another VPC"),
        ("encryptionConfigKeyArn", REPLACE, "EKS: secrets encryption cannot be changed once enabled"),
        ("tags", UPDATE, "EKS TagResource"),
    ),
    "kubernetes:karpenter.sh/v1:NodePool": (
        *_K8S_IDENTITY,
        ("spec.template", ROLL, KARPENTER_DRIFT),
        ("spec.limits", UPDATE, KARPENTER_NO_DRIFT),
        ("spec.weight", UPDATE, KARPENTER_NO_DRIFT),
        ("spec.disruption", UPDATE, KARPENTER_NO_DRIFT),
    ),
    "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass": (*_K8S_IDENTITY, ("spec", ROLL, KARPENTER_NODECLASS_DRIFT)),
    "kubernetes:karpenter.sh/v1alpha1:NodeOverlay": (
        *_K8S_IDENTITY, ("spec", UPDATE, "Karpenter NodeOverlay: read when simulating launches; nodes are not drifted")),
    "kubernetes:apps/v1:Deployment": (
        *_K8S_IDENTITY, ("spec.selector", REPLACE, K8S_IMMUTABLE + " (apps/v1 spec.selector)"),
        ("spec.template", UPDATE, "Kubernetes Deployment: a new ReplicaSet replaces the pods (its strategy)")),
    "kubernetes:batch/v1:Job": (
        *_K8S_IDENTITY, ("spec.template", REPLACE, K8S_IMMUTABLE + " (batch/v1 Job spec.template)"),
        ("spec.selector", REPLACE, K8S_IMMUTABLE + " (batch/v1 Job spec.selector)"),
        ("spec.completions", REPLACE, K8S_IMMUTABLE + " (batch/v1 Job spec.completions)")),
    "kubernetes:core/v1:ConfigMap": (*_K8S_IDENTITY, ("data", UPDATE, "Kubernetes ConfigMap data (not immutable)")),
    "kubernetes:core/v1:Namespace": _K8S_IDENTITY,
    "kubernetes:helm.sh/v3:Release": (
        ("name", REPLACE, HELM_IDENTITY), ("namespace", REPLACE, HELM_IDENTITY),
        ("chart", UPDATE, HELM_UPGRADE), ("version", UPDATE, HELM_UPGRADE), ("values", UPDATE, HELM_UPGRADE),
        ("skipCrds", UPDATE, HELM_UPGRADE)),
    "aws:ec2/launchTemplate:LaunchTemplate": (
        ("name", REPLACE, TF_FORCE_NEW), ("namePrefix", REPLACE, TF_FORCE_NEW),
        ("", UPDATE, "EC2 CreateLaunchTemplateVersion: a new version (latestVersion changes)")),
    "aws:iam/role:Role": (("name", REPLACE, TF_FORCE_NEW), ("path", REPLACE, TF_FORCE_NEW)),
    "aws:iam/policy:Policy": (("name", REPLACE, TF_FORCE_NEW), ("path", REPLACE, TF_FORCE_NEW)),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": (("", REPLACE, TF_FORCE_NEW),),
    "aws:sqs/queue:Queue": (("name", REPLACE, TF_FORCE_NEW), ("fifoQueue", REPLACE, TF_FORCE_NEW)),
    "aws:eks/accessEntry:AccessEntry": (("clusterName", REPLACE, TF_FORCE_NEW), ("principalArn", REPLACE, TF_FORCE_NEW),
                                        ("type", REPLACE, TF_FORCE_NEW)),
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": (
        ("clusterName", REPLACE, TF_FORCE_NEW), ("namespace", REPLACE, TF_FORCE_NEW),
        ("serviceAccount", REPLACE, TF_FORCE_NEW)),
    "aws:eks/addon:Addon": (("clusterName", REPLACE, TF_FORCE_NEW), ("addonName", REPLACE, TF_FORCE_NEW)),
    "aws:ec2/vpc:Vpc": (("cidrBlock", REPLACE, TF_FORCE_NEW),),
    "aws:ec2/subnet:Subnet": (("cidrBlock", REPLACE, TF_FORCE_NEW), ("availabilityZone", REPLACE, TF_FORCE_NEW),
                              ("vpcId", REPLACE, TF_FORCE_NEW)),
    "aws:cloudwatch/eventRule:EventRule": (("name", REPLACE, TF_FORCE_NEW),),
    "aws:cloudwatch/eventTarget:EventTarget": (("rule", REPLACE, TF_FORCE_NEW), ("targetId", REPLACE, TF_FORCE_NEW)),
    "aws:ec2/tag:Tag": (("resourceId", REPLACE, TF_FORCE_NEW), ("key", REPLACE, TF_FORCE_NEW)),
    "aws:kms/alias:Alias": (("name", REPLACE, TF_FORCE_NEW), ("targetKeyId", UPDATE, TF_UPDATE + " (UpdateAlias)")),
    "aws:kms/key:Key": (
        TAGS, ("description", UPDATE, TF_UPDATE + " (KMS UpdateKeyDescription)"),
        ("enableKeyRotation", UPDATE, TF_UPDATE + " (KMS EnableKeyRotation)"),
        ("deletionWindowInDays", UPDATE, TF_UPDATE + " (read only when the key is deleted)"),
        ("policy", UPDATE, TF_UPDATE + " (KMS PutKeyPolicy)"),
        ("customerMasterKeySpec", REPLACE, TF_FORCE_NEW), ("keyUsage", REPLACE, TF_FORCE_NEW),
        ("multiRegion", REPLACE, TF_FORCE_NEW)),
}
RULES.update({
    "eks:index:Cluster": RULES["eks:index:Cluster"] + (
        ("privateSubnetIds", UPDATE, f"EKS UpdateClusterConfig resourcesVpcConfig.subnetIds ({EKS_MODEL}; subnets "
                                     "of the same VPC only)"),
        ("publicSubnetIds", UPDATE, f"EKS UpdateClusterConfig resourcesVpcConfig.subnetIds ({EKS_MODEL}; subnets "
                                    "of the same VPC only)"),
        *((k, UPDATE, PULUMI_EKS_CHILDREN) for k in ("createOidcProvider", "skipDefaultNodeGroup",
                                                      "skipDefaultSecurityGroups", "nodeAssociatePublicIpAddress"))),
    "aws:ec2/vpc:Vpc": (
        TAGS, ("cidrBlock", REPLACE, TF_FORCE_NEW + " (aws_vpc cidr_block)"),
        ("enableDnsHostnames", UPDATE, EC2_ATTR + " (ModifyVpcAttribute)"),
        ("enableDnsSupport", UPDATE, EC2_ATTR + " (ModifyVpcAttribute)"),
        ("instanceTenancy", REPLACE, TF_FORCE_NEW), ("ipv4IpamPoolId", REPLACE, TF_FORCE_NEW)),
    "aws:ec2/subnet:Subnet": (
        TAGS, ("cidrBlock", REPLACE, TF_FORCE_NEW), ("availabilityZone", REPLACE, TF_FORCE_NEW),
        ("availabilityZoneId", REPLACE, TF_FORCE_NEW), ("vpcId", REPLACE, TF_FORCE_NEW),
        ("mapPublicIpOnLaunch", UPDATE, EC2_ATTR + " (ModifySubnetAttribute)")),
    "aws:ec2/internetGateway:InternetGateway": (
        TAGS, ("vpcId", INTERRUPT, "terraform-provider-aws: an internet gateway's vpc_id change detaches it from the "
                                   "running VPC, then attaches it (refused while public addresses are mapped): "
                                   "the VPC loses its way to the internet meanwhile")),
    "aws:ec2/natGateway:NatGateway": (
        TAGS, ("subnetId", REPLACE, TF_FORCE_NEW + " (aws_nat_gateway subnet_id)"),
        ("allocationId", REPLACE, TF_FORCE_NEW), ("connectivityType", REPLACE, TF_FORCE_NEW),
        ("privateIp", REPLACE, TF_FORCE_NEW)),
    "aws:ec2/eip:Eip": (TAGS, ("domain", REPLACE, TF_FORCE_NEW), ("vpc", REPLACE, TF_FORCE_NEW),
                        ("publicIpv4Pool", REPLACE, TF_FORCE_NEW)),
    "aws:ec2/routeTable:RouteTable": (
        TAGS, ("vpcId", REPLACE, TF_FORCE_NEW),
        ("routes", UPDATE, TF_UPDATE + " (inline routes: CreateRoute / ReplaceRoute / DeleteRoute)")),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": (
        ("subnetId", REPLACE, TF_FORCE_NEW), ("gatewayId", REPLACE, TF_FORCE_NEW),
        ("routeTableId", UPDATE, TF_UPDATE + " (ReplaceRouteTableAssociation)")),
    "aws:ec2/route:Route": (
        ("routeTableId", REPLACE, TF_FORCE_NEW), ("destinationCidrBlock", REPLACE, TF_FORCE_NEW),
        ("gatewayId", UPDATE, TF_UPDATE + " (ReplaceRoute)"), ("natGatewayId", UPDATE, TF_UPDATE + " (ReplaceRoute)")),
    "aws:ec2/tag:Tag": (("resourceId", REPLACE, TF_FORCE_NEW), ("key", REPLACE, TF_FORCE_NEW),
                        ("value", UPDATE, TF_UPDATE + " (CreateTags)")),
    "aws:ec2/launchTemplate:LaunchTemplate": RULES["aws:ec2/launchTemplate:LaunchTemplate"],
    "aws:iam/role:Role": RULES["aws:iam/role:Role"] + (
        TAGS, ("namePrefix", REPLACE, TF_FORCE_NEW),
        ("assumeRolePolicy", UPDATE, TF_UPDATE + " (IAM UpdateAssumeRolePolicy)"),
        ("description", UPDATE, TF_UPDATE + " (IAM UpdateRole)"),
        ("maxSessionDuration", UPDATE, TF_UPDATE + " (IAM UpdateRole)"),
        ("permissionsBoundary", UPDATE, TF_UPDATE + " (IAM PutRolePermissionsBoundary)")),
    "aws:iam/policy:Policy": RULES["aws:iam/policy:Policy"] + (
        TAGS, ("namePrefix", REPLACE, TF_FORCE_NEW), ("description", REPLACE, TF_FORCE_NEW),
        ("policy", UPDATE, TF_UPDATE + " (IAM CreatePolicyVersion, set as default)")),
    "aws:sqs/queue:Queue": RULES["aws:sqs/queue:Queue"] + (
        TAGS, ("", UPDATE, TF_UPDATE + " (SQS SetQueueAttributes)")),
    "aws:sqs/queuePolicy:QueuePolicy": (("queueUrl", REPLACE, TF_FORCE_NEW),
                                        ("policy", UPDATE, TF_UPDATE + " (SQS SetQueueAttributes Policy)")),
    "aws:cloudwatch/eventRule:EventRule": RULES["aws:cloudwatch/eventRule:EventRule"] + (
        TAGS, ("namePrefix", REPLACE, TF_FORCE_NEW), ("eventBusName", REPLACE, TF_FORCE_NEW),
        ("", UPDATE, TF_UPDATE + " (EventBridge PutRule)")),
    "aws:cloudwatch/eventTarget:EventTarget": RULES["aws:cloudwatch/eventTarget:EventTarget"] + (
        ("eventBusName", REPLACE, TF_FORCE_NEW), ("", UPDATE, TF_UPDATE + " (EventBridge PutTargets)")),
    "aws:eks/accessEntry:AccessEntry": RULES["aws:eks/accessEntry:AccessEntry"] + (
        TAGS, ("kubernetesGroups", UPDATE, f"EKS UpdateAccessEntry ({EKS_MODEL})"),
        ("userName", UPDATE, f"EKS UpdateAccessEntry ({EKS_MODEL})")),
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": (("", REPLACE, TF_FORCE_NEW),),
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": RULES[
        "aws:eks/podIdentityAssociation:PodIdentityAssociation"] + (
        TAGS, ("roleArn", UPDATE, f"EKS UpdatePodIdentityAssociation ({EKS_MODEL})")),
    "aws:eks/addon:Addon": RULES["aws:eks/addon:Addon"] + (
        TAGS, ("addonVersion", UPDATE, f"EKS UpdateAddon ({EKS_MODEL})"),
        ("resolveConflictsOnUpdate", UPDATE, f"EKS UpdateAddon ({EKS_MODEL})"),
        ("configurationValues", UPDATE, f"EKS UpdateAddon ({EKS_MODEL})"),
        ("serviceAccountRoleArn", UPDATE, f"EKS UpdateAddon ({EKS_MODEL})")),
    "kubernetes:helm.sh/v3:Release": RULES["kubernetes:helm.sh/v3:Release"] + (
        ("repositoryOpts", UPDATE, HELM_UPGRADE), ("timeout", UPDATE, HELM_CLIENT),
        ("cleanupOnFail", UPDATE, HELM_CLIENT), ("compat", UPDATE, HELM_CLIENT), ("atomic", UPDATE, HELM_CLIENT),
        ("waitForJobs", UPDATE, HELM_CLIENT), ("createNamespace", UPDATE, HELM_CLIENT)),
    "pulumi:providers:kubernetes": (
        ("kubeconfig", REPLACE, "pulumi-kubernetes: a provider whose kubeconfig names another cluster is replaced, "
                                "and with it every object it manages"),
        ("enableServerSideApply", UPDATE, "pulumi-kubernetes provider option: how later changes are applied")),
    "kubernetes:core/v1:Namespace": _K8S_IDENTITY + _K8S_META,
    "kubernetes:core/v1:ConfigMap": RULES["kubernetes:core/v1:ConfigMap"] + _K8S_META,
    "kubernetes:apps/v1:Deployment": RULES["kubernetes:apps/v1:Deployment"] + _K8S_META + (
        ("spec.replicas", UPDATE, K8S_APPLY + " (Deployment scale)"),
        ("spec.strategy", UPDATE, K8S_APPLY + " (Deployment strategy)")),
    "kubernetes:batch/v1:Job": RULES["kubernetes:batch/v1:Job"] + _K8S_META + (
        ("spec.backoffLimit", UPDATE, K8S_APPLY + " (Job backoffLimit is mutable)"),),
    "kubernetes:monitoring.coreos.com/v1:PrometheusRule": _K8S_IDENTITY + _K8S_META + (
        ("spec", UPDATE, "Prometheus Operator custom resource: applied in place, reloaded by Prometheus"),),
    "kubernetes:monitoring.coreos.com/v1:ServiceMonitor": _K8S_IDENTITY + _K8S_META + (
        ("spec", UPDATE, "Prometheus Operator custom resource: applied in place, reloaded by Prometheus"),),
    # resource.k8s.io/v1 API reference: a ResourceClaimTemplate's spec "is immutable" (claims made from it are
    # not updated), as is a ResourceClaim's; a DeviceClass's spec may change (it is read at allocation).
    "kubernetes:resource.k8s.io/v1:ResourceClaimTemplate": _K8S_IDENTITY + _K8S_META + (
        ("spec", REPLACE, K8S_IMMUTABLE + " (resource.k8s.io/v1 ResourceClaimTemplate spec: pods keep the claims "
                          "made from the old one until they are recreated)"),),
    "kubernetes:resource.k8s.io/v1:ResourceClaim": _K8S_IDENTITY + _K8S_META + (
        ("spec", REPLACE, K8S_IMMUTABLE + " (resource.k8s.io/v1 ResourceClaim spec)"),),
    "kubernetes:resource.k8s.io/v1:DeviceClass": _K8S_IDENTITY + _K8S_META + (
        ("spec", UPDATE, K8S_APPLY + " (DeviceClass spec is mutable; it is read when a claim is allocated)"),),
})
for _t in ("kubernetes:karpenter.sh/v1:NodePool", "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass",
           "kubernetes:karpenter.sh/v1alpha1:NodeOverlay"):
    RULES[_t] = RULES[_t] + (
        ("metadata.annotations", UPDATE, K8S_APPLY + " (annotations do not drift nodes)"),
        ("metadata.labels", UPDATE, K8S_APPLY + " (the object's own labels do not drift nodes)"))
# Every Kubernetes object: apiVersion and kind are its type (another one is another object).
for _t in [t for t in RULES if t.startswith("kubernetes:") and t != "kubernetes:helm.sh/v3:Release"]:
    RULES[_t] = RULES[_t] + (("apiVersion", REPLACE, PULUMI_K8S_NAME), ("kind", REPLACE, PULUMI_K8S_NAME))

# Outputs an in-place update changes, so inputs built from them change too (propagated by the diff):
# a launch template update is a new version, which node groups pinning `launchTemplate.version` roll to.
UPDATE_CHANGES_OUTPUT = {"aws:ec2/launchTemplate:LaunchTemplate": "launchTemplate"}

# Inputs that carry a fixed physical name: with one unchanged, a create-before-delete replace collides.
PHYSICAL_NAME = {"aws:iam/role:Role": "name", "aws:iam/policy:Policy": "name", "aws:sqs/queue:Queue": "name",
                 "eks:index:ManagedNodeGroup": "nodeGroupName", "eks:index:Cluster": "name",
                 "aws:cloudwatch/eventRule:EventRule": "name", "kubernetes:helm.sh/v3:Release": "name"}
PULUMI_REPLACE = ("Pulumi: replace is create-before-delete unless deleteBeforeReplace; replaceOnChanges forces a "
                  "replace on the named inputs")


@dataclass(frozen=True)
class Effect:
    effect: str
    source: str
    path: str


def classify(rtype: str, path: str, replace_on_changes: Iterable[str] = ()) -> Effect:
    """The effect of changing input `path` (dotted) of a resource of type `rtype`."""
    for roc in replace_on_changes:
        if roc in ("*", path) or path.startswith(roc + "."):
            return Effect(REPLACE, f"replaceOnChanges {roc!r} ({PULUMI_REPLACE})", path)
    if rtype.startswith("kubernetes:") and rtype not in RULES:
        rules: Iterable[tuple[str, str, str]] = _K8S_IDENTITY
    else:
        rules = RULES.get(rtype, ())
    best: tuple[str, str, str] | None = None
    for prefix, effect, source in rules:
        if prefix == "" or path == prefix or path.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, effect, source)
    if best is None:
        return Effect(UNKNOWN, NO_RULE, path)
    return Effect(best[1], best[2], path)


def worst(effects: Iterable[Effect]) -> str:
    return max((e.effect for e in effects), key=ORDER.__getitem__, default=UPDATE)


REQUIREMENTS = "spec.template.spec.requirements"
WIDENED = ("Karpenter docs, disruption (special cases on drift): widened NodePool requirements drift no node; "
           "running nodes still match them")
NARROWED = ("Karpenter docs, disruption (special cases on drift): narrowed NodePool requirements drift the nodes "
            "that no longer match them")


def requirements_effect(old: Iterable[Mapping[str, Any]], new: Iterable[Mapping[str, Any]]) -> Effect:
    """A NodePool's requirements changed: widened (every old `In` set kept or grown, no key added, other
    operators unchanged) drifts nothing; anything else may leave running nodes outside them and drifts."""
    before = {r["key"]: r for r in old}
    after = {r["key"]: r for r in new}
    widened = set(after) <= set(before)
    for key, n in after.items():
        o = before.get(key)
        if o is None:
            continue
        if o.get("operator") == n.get("operator") == "In":
            widened &= set(o.get("values") or ()) <= set(n.get("values") or ())
        else:
            widened &= dict(o) == dict(n)
    return Effect(UPDATE, WIDENED, REQUIREMENTS) if widened else Effect(ROLL, NARROWED, REQUIREMENTS)


# --- names that make replacements safe ---------------------------------------------------------------

TOKEN_LENGTH = 7
TOKEN_SUFFIX_LENGTH = TOKEN_LENGTH + 1  # what `labelled` adds to a name: "-" and the token
LABEL_VALUE_MAX = 63  # a Kubernetes label value


def content_token(doc: Any, n: int = TOKEN_LENGTH) -> str:
    """A short hash of a JSON-able value (sorted keys): equal contents, equal token."""
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:n]


def labelled(name: str, doc: Any, limit: int = LABEL_VALUE_MAX) -> str:
    """`<name>-<content token>` cut to a label value's 63 characters: the value follows the contents."""
    token = content_token(doc)
    head = name[: limit - len(token) - 1].rstrip("-_.")
    return f"{head}-{token}"


# Node group tags the policy pack reads: how a MIG layout change is applied, and the stack's consent to
# disrupting live nodes (gpu-slicing:allowDisruption).
MIG_LAYOUT_CHANGE_TAG = "gpu-slicing/mig-layout-change"
ALLOW_DISRUPTION_TAG = "gpu-slicing/allow-disruption"

# EKS nodegroup names: 1-63 characters (CreateNodegroup).
NODEGROUP_NAME_MAX = 63


def node_group_name(cluster: str, pool: str, identity: Mapping[str, Any]) -> str:
    """The EKS node group name: `<cluster>-<pool>-<token of what forces a replacement>`. When any of
    `identity` (instance type, capacity type, AMI type, MIG layout label) changes, the name changes too, so
    Pulumi's create-before-delete replace creates the new group (nodes boot into the new layout) before
    EKS drains and deletes the old one, instead of colliding on the old name."""
    return labelled(f"{cluster}-{pool}", dict(identity), NODEGROUP_NAME_MAX)
