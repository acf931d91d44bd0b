"""What a change to an input does to a running resource, as data with its source (FACTS 8).

`tools/diff.py` compares two offline plans and asks `classify(type, path)` for every input that differs.
Each rule is (input path prefix, effect, source); the longest matching prefix wins. Effects:

- `update`: changed in place, nothing running is replaced;
- `roll`: updated in place by replacing the running nodes (EKS `UpdateNodegroupVersion`, Karpenter drift);
- `replace`: Pulumi deletes and re-creates the resource (create-before-delete unless `deleteBeforeReplace`).

A path no rule names is `update` with the source saying so: the tables cover every input this program
sets on the resources that carry GPU nodes; `tests/test_diff.py` holds the EKS table against botocore's
service model.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

UPDATE, ROLL, REPLACE = "update", "roll", "replace"

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
NO_RULE = "no rule names this input: assumed in place"

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
    "aws:kms/alias:Alias": (("name", REPLACE, TF_FORCE_NEW),),
}

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
        return Effect(UPDATE, NO_RULE, path)
    return Effect(best[1], best[2], path)


def worst(effects: Iterable[Effect]) -> str:
    order = {UPDATE: 0, ROLL: 1, REPLACE: 2}
    return max((e.effect for e in effects), key=order.__getitem__, default=UPDATE)


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
