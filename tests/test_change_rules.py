"""The change rules `make diff` judges every changed input by (gpu_slicing.changes): which rule wins, what a
replaceOnChanges forces, how bad a set of effects is, whether a NodePool's new requirements drift its nodes, and
the content-named labels and node group names that make a replacement safe. Expected effects come from
docs/facts.md §8 and §11 (Karpenter docs, disruption: "Special Cases on Drift"; Pulumi's replaceOnChanges;
terraform-provider-aws), tokens from sha256 of the canonical JSON written out by hand here."""
from __future__ import annotations

import hashlib

import pytest

from gpu_slicing import changes

NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"


def test_an_effect_names_the_input_it_judges_and_the_rule_it_cites():
    e = changes.classify("eks:index:Cluster", "vpcId")
    assert (e.effect, e.path) == (changes.REPLACE, "vpcId") and "VPC" in e.source
    e = changes.classify("aws:foo/bar:Bar", "x.y")
    assert (e.effect, e.path) == (changes.UNKNOWN, "x.y") and "no rule" in e.source


@pytest.mark.parametrize("roc,path,effect", [
    (["data"], "data.key", changes.REPLACE),      # a nested input of a named one
    (["data"], "data", changes.REPLACE),          # the named input itself
    (["*"], "metadata.labels.a", changes.REPLACE),  # every input
    (["immutable"], "data.key", changes.UPDATE),  # another input named: the rule decides (ConfigMap data: update)
    (["dat"], "data.key", changes.UPDATE),        # a prefix of the name is not the input
])
def test_replace_on_changes_forces_a_replace_of_the_inputs_it_names_only(roc, path, effect):
    e = changes.classify(CONFIGMAP, path, roc)
    assert (e.effect, e.path) == (effect, path)
    if effect == changes.REPLACE:
        assert e.source.startswith(f"replaceOnChanges '{roc[0]}'") and "create-before-delete" in e.source


def test_a_kubernetes_type_without_rules_of_its_own_is_judged_by_its_identity():
    """pulumi-kubernetes: metadata.name is the object's identity (a new name is a new object); what else a type
    without rules changes is unknown, never "in place"."""
    e = changes.classify("kubernetes:core/v1:Service", "metadata.name")
    assert e.effect == changes.REPLACE and "identity" in e.source
    assert changes.classify("kubernetes:core/v1:Service", "spec.ports").effect == changes.UNKNOWN


def test_an_empty_prefix_rule_covers_every_input_of_its_type():
    """A launch template change is a new version (EC2 CreateLaunchTemplateVersion), whatever input changes."""
    e = changes.classify("aws:ec2/launchTemplate:LaunchTemplate", "userData")
    assert e.effect == changes.UPDATE and "CreateLaunchTemplateVersion" in e.source
    assert changes.classify("aws:ec2/launchTemplate:LaunchTemplate", "name").effect == changes.REPLACE


def test_the_longest_matching_rule_wins():
    """A queue's attributes change in place (SQS SetQueueAttributes) but its name is ForceNew; a NodePool's
    template drifts its nodes, its limits do not (Karpenter docs, disruption)."""
    assert changes.classify("aws:sqs/queue:Queue", "visibilityTimeoutSeconds").effect == changes.UPDATE
    assert changes.classify("aws:sqs/queue:Queue", "name").effect == changes.REPLACE
    assert changes.classify(NODEPOOL, "spec.template.spec.nodeClassRef.name").effect == changes.ROLL
    assert changes.classify(NODEPOOL, "spec.limits.nvidia.com/gpu").effect == changes.UPDATE
    assert changes.classify(NODEPOOL, "metadata.name").effect == changes.REPLACE


def test_no_type_lists_an_input_twice():
    """Two rules matching one input with equal length are the same prefix; none is listed twice with another
    effect, so which of two equal-length matches wins cannot matter."""
    for rtype, rules in changes.RULES.items():
        seen: dict[str, tuple[str, str]] = {}
        for prefix, effect, source in rules:
            assert seen.setdefault(prefix, (effect, source)) == (effect, source), (rtype, prefix)


def _e(effect: str) -> changes.Effect:
    return changes.Effect(effect, "s", "p")


@pytest.mark.parametrize("effects,expected", [
    ([], changes.UPDATE),  # nothing changed: nothing running is touched
    ([changes.UPDATE, changes.REPLACE], changes.REPLACE),
    ([changes.REPLACE, changes.UPDATE], changes.REPLACE),
    ([changes.UPDATE, changes.UNKNOWN], changes.UNKNOWN),
    ([changes.UNKNOWN, changes.ROLL], changes.ROLL),
    ([changes.ROLL, changes.INTERRUPT], changes.INTERRUPT),
    ([changes.INTERRUPT, changes.REPLACE, changes.ROLL], changes.REPLACE),
])
def test_the_worst_effect_decides(effects, expected):
    """update < unknown < roll < interrupt < replace: a replace destroys what runs, an interrupt stops it for a
    while, a roll replaces the nodes under it, an unknown effect is never taken as in place."""
    assert changes.worst([_e(x) for x in effects]) == expected


def req(key: str, operator: str = "In", values: list[str] | None = None) -> dict:
    return {"key": key, "operator": operator, **({"values": values} if values is not None else {})}


CT = "karpenter.sh/capacity-type"
IT = "node.kubernetes.io/instance-type"


@pytest.mark.parametrize("old,new,drifts", [
    # widened: an In set kept or grown drifts nothing (adding spot: the docs' own example)
    ([req(CT, values=["on-demand"])], [req(CT, values=["on-demand", "spot"])], False),
    ([req(CT, values=["spot", "on-demand"])], [req(CT, values=["on-demand", "spot"])], False),  # order is no change
    ([req(CT, values=["on-demand"]), req(IT, values=["p4d.24xlarge"])], [req(CT, values=["on-demand"])], False),
    ([req(IT, "Exists")], [req(IT, "Exists")], False),  # another operator, unchanged
    ([], [], False),
    # narrowed: a value dropped, a key added, another operator changed, In turned into something else
    ([req(CT, values=["on-demand", "spot"])], [req(CT, values=["on-demand"])], True),
    ([req(CT, values=["on-demand"])], [req(CT, values=["on-demand"]), req(IT, values=["p4d.24xlarge"])], True),
    ([], [req(IT, values=["p4d.24xlarge"])], True),
    ([req(IT, "NotIn", ["g5.xlarge"])], [req(IT, "NotIn", ["g5.xlarge", "g6.xlarge"])], True),
    ([req(IT, "Exists")], [req(IT, "DoesNotExist")], True),
    ([req(CT, values=["on-demand", "spot"]), req(IT, "Exists")], [req(CT, values=["spot"]), req(IT, "Exists")], True),
    ([req(CT, values=["on-demand"])], [req(CT, "NotIn", ["spot", "on-demand"])], True),
    ([req(CT, "NotIn", ["spot"])], [req(CT, "In", ["spot", "on-demand"])], True),
    ([req(CT, values=["on-demand"])], [req(CT, values=[])], True),
    ([req(CT, values=["on-demand"])], [req(CT)], True),  # an In without values admits nothing
])
def test_nodepool_requirements_widened_drift_nothing_narrowed_drift(old, new, drifts):
    """Karpenter docs, disruption, special cases on drift (docs/facts.md §11)."""
    e = changes.requirements_effect(old, new)
    assert e.path == "spec.template.spec.requirements"
    if drifts:
        assert e.effect == changes.ROLL and e.source.startswith("Karpenter docs") and "narrowed" in e.source
    else:
        assert e.effect == changes.UPDATE and e.source.startswith("Karpenter docs") and "widened" in e.source


def test_an_in_set_read_without_values_admits_nothing_and_grows_into_something():
    """An old `In` with no values listed, widened to a value: nothing running matched it, nothing drifts."""
    assert changes.requirements_effect([req(CT)], [req(CT, values=["spot"])]).effect == changes.UPDATE


def sha7(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:7]


def test_content_tokens_are_the_sha256_of_the_compact_sorted_json():
    """The token is part of every node group's EKS name and of the MIG layout labels on live nodes: a program
    that computed it another way would rename (replace) every node group. Keys sorted, no spaces."""
    assert changes.content_token({"b": [1, 2], "a": "x"}) == sha7('{"a":"x","b":[1,2]}')
    assert changes.content_token({"a": "x", "b": [1, 2]}) == changes.content_token({"b": [1, 2], "a": "x"})
    assert changes.content_token([1, 2], 12) == hashlib.sha256(b"[1,2]").hexdigest()[:12]


def test_a_label_is_the_name_and_the_token_of_the_contents_cut_to_63_characters():
    doc = {"1g.5gb": 7}
    token = sha7('{"1g.5gb":7}')
    assert changes.labelled("custom-X", doc) == f"custom-X-{token}"  # nothing stripped from a name that fits
    long = "a" * 50 + "-_." + "b" * 20  # cut after 63 - 8 = 55 characters: at "a"*50 + "-_." + "bb"
    assert changes.labelled(long, doc) == "a" * 50 + "-_.bb-" + token and len(changes.labelled(long, doc)) == 55 + 8
    edge = "a" * 52 + "-_." + "b" * 20  # cut ends in "-_.": stripped, never "--"
    assert changes.labelled(edge, doc) == "a" * 52 + "-" + token
    assert changes.labelled("-x", doc) == f"-x-{token}"  # only the end of a cut name is trimmed
    assert changes.labelled("a" * 30, doc, limit=20) == "a" * 12 + "-" + token


def test_node_group_names_follow_what_forces_a_replacement():
    """`<cluster>-<pool>-<token of the identity>`, at most 63 characters (EKS CreateNodegroup)."""
    identity = {"instanceType": "p4d.24xlarge", "capacityType": "ON_DEMAND"}
    token = sha7('{"capacityType":"ON_DEMAND","instanceType":"p4d.24xlarge"}')
    assert changes.node_group_name("gpu", "p4d-small", identity) == f"gpu-p4d-small-{token}"
    spot = changes.node_group_name("gpu", "p4d-small", {**identity, "capacityType": "SPOT"})
    assert spot != f"gpu-p4d-small-{token}" and spot.startswith("gpu-p4d-small-")
    name = changes.node_group_name("c" * 40, "p" * 40, identity)
    assert len(name) == 63 and name == "c" * 40 + "-" + "p" * 14 + "-" + token


@pytest.mark.parametrize("inp,effect", [
    ("labels", changes.UPDATE), ("taints", changes.UPDATE), ("scalingConfig.desiredSize", changes.UPDATE),
    ("updateConfig.maxUnavailable", changes.UPDATE),  # UpdateNodegroupConfig: in place
    ("version", changes.ROLL), ("releaseVersion", changes.ROLL), ("launchTemplate.version", changes.ROLL),
    ("instanceTypes.0", changes.REPLACE), ("capacityType", changes.REPLACE), ("amiType", changes.REPLACE),
    ("diskSize", changes.REPLACE), ("subnetIds", changes.REPLACE), ("nodeGroupName", changes.REPLACE),
    ("cluster", changes.REPLACE),  # only in CreateNodegroup: a new node group
    ("tags.team", changes.UPDATE),  # EKS TagResource
])
def test_managed_node_group_inputs_by_the_eks_request_that_changes_them(inp, effect):
    """docs/facts.md §8 (botocore's eks model; the slow test re-reads it): UpdateNodegroupConfig members change in
    place, UpdateNodegroupVersion members roll the nodes, CreateNodegroup-only members replace the group."""
    for rtype in ("eks:index:ManagedNodeGroup", "aws:eks/nodeGroup:NodeGroup"):
        assert changes.classify(rtype, inp).effect == effect, (rtype, inp)


def _eks_update_members() -> set[str]:
    """Every member name (at any depth) of botocore's EKS UpdateClusterConfig and UpdateClusterVersion requests."""
    import botocore.loaders

    shapes = botocore.loaders.Loader().load_service_model("eks", "service-2")["shapes"]
    out: set[str] = set()

    def walk(shape: str) -> None:
        for member, ref in shapes[shape].get("members", {}).items():
            if member not in out:
                out.add(member)
                walk(ref["shape"])

    walk("UpdateClusterConfigRequest")
    walk("UpdateClusterVersionRequest")
    return out


@pytest.mark.parametrize("inp,member", [
    ("version", "version"), ("endpointPublicAccess", "endpointPublicAccess"),
    ("endpointPrivateAccess", "endpointPrivateAccess"), ("publicAccessCidrs", "publicAccessCidrs"),
    ("enabledClusterLogTypes", "clusterLogging"), ("authenticationMode", "authenticationMode"),
    ("name", None), ("vpcId", None), ("encryptionConfigKeyArn", None),  # no Update* request changes the key
])
def test_a_cluster_input_changes_in_place_exactly_when_an_eks_update_request_takes_it(inp, member):
    """A change to the cluster is the headline of `make diff` when it replaces the cluster (every pool and pod goes
    with it). botocore's eks model decides: an input an UpdateClusterConfig/UpdateClusterVersion request takes
    changes in place; the name and the VPC are in none of them, and the secrets key cannot be changed once set
    (EKS: encryption can be enabled on a cluster, never changed or removed), so those replace the cluster."""
    in_place = member is not None and member in _eks_update_members()
    assert changes.classify("eks:index:Cluster", inp).effect == (changes.UPDATE if in_place else changes.REPLACE)


@pytest.mark.parametrize("rtype,inp,effect", [
    # Karpenter docs, disruption ("Drift"): a NodePool's spec.template and an EC2NodeClass's spec drift every
    # node; spec.weight, spec.limits and spec.disruption are behavioural and drift nothing
    (NODEPOOL, "spec.template.metadata.labels.a", changes.ROLL), (NODEPOOL, "spec.weight", changes.UPDATE),
    (NODEPOOL, "spec.limits.cpu", changes.UPDATE), (NODEPOOL, "spec.disruption.budgets", changes.UPDATE),
    ("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass", "spec.amiSelectorTerms.0.alias", changes.ROLL),
    ("kubernetes:karpenter.sh/v1alpha1:NodeOverlay", "spec.capacity", changes.UPDATE),
    # Kubernetes API: a Job's template, selector and completions are immutable, its backoffLimit is not; a
    # Deployment's selector is immutable, its template rolls the pods in place; a claim template is immutable
    ("kubernetes:batch/v1:Job", "spec.template.spec.containers.0.image", changes.REPLACE),
    ("kubernetes:batch/v1:Job", "spec.completions", changes.REPLACE),
    ("kubernetes:batch/v1:Job", "spec.selector.matchLabels.a", changes.REPLACE),
    ("kubernetes:batch/v1:Job", "spec.backoffLimit", changes.UPDATE),
    ("kubernetes:apps/v1:Deployment", "spec.selector.matchLabels.a", changes.REPLACE),
    ("kubernetes:apps/v1:Deployment", "spec.template.spec.containers.0.image", changes.UPDATE),
    ("kubernetes:apps/v1:Deployment", "spec.replicas", changes.UPDATE),
    ("kubernetes:resource.k8s.io/v1:ResourceClaimTemplate", "spec.spec.devices", changes.REPLACE),
    (CONFIGMAP, "data.config.yaml", changes.UPDATE),
    # helm upgrade: chart, version, values and client options change the release in place; its name and
    # namespace are its identity
    ("kubernetes:helm.sh/v3:Release", "version", changes.UPDATE),
    ("kubernetes:helm.sh/v3:Release", "values.migManager.env", changes.UPDATE),
    ("kubernetes:helm.sh/v3:Release", "skipCrds", changes.UPDATE),
    ("kubernetes:helm.sh/v3:Release", "name", changes.REPLACE),
    ("kubernetes:helm.sh/v3:Release", "namespace", changes.REPLACE),
    # terraform-provider-aws schemas: ForceNew fields replace, the others update
    ("aws:sqs/queue:Queue", "fifoQueue", changes.REPLACE), ("aws:sqs/queue:Queue", "messageRetentionSeconds",
                                                            changes.UPDATE),
    ("aws:kms/key:Key", "enableKeyRotation", changes.UPDATE), ("aws:kms/key:Key", "keyUsage", changes.REPLACE),
    ("aws:kms/key:Key", "customerMasterKeySpec", changes.REPLACE), ("aws:kms/key:Key", "multiRegion", changes.REPLACE),
    ("aws:ec2/vpc:Vpc", "cidrBlock", changes.REPLACE), ("aws:ec2/vpc:Vpc", "enableDnsHostnames", changes.UPDATE),
    ("aws:ec2/subnet:Subnet", "availabilityZone", changes.REPLACE), ("aws:ec2/subnet:Subnet", "cidrBlock",
                                                                    changes.REPLACE),
    ("aws:ec2/subnet:Subnet", "mapPublicIpOnLaunch", changes.UPDATE),
    ("aws:ec2/natGateway:NatGateway", "subnetId", changes.REPLACE),
    ("aws:iam/role:Role", "name", changes.REPLACE), ("aws:iam/role:Role", "assumeRolePolicy", changes.UPDATE),
    ("aws:iam/policy:Policy", "policy", changes.UPDATE), ("aws:iam/policy:Policy", "description", changes.REPLACE),
    ("aws:eks/accessEntry:AccessEntry", "principalArn", changes.REPLACE),
    ("aws:eks/accessEntry:AccessEntry", "kubernetesGroups", changes.UPDATE),
    ("aws:eks/podIdentityAssociation:PodIdentityAssociation", "serviceAccount", changes.REPLACE),
    ("aws:eks/podIdentityAssociation:PodIdentityAssociation", "roleArn", changes.UPDATE),
    ("aws:eks/addon:Addon", "addonVersion", changes.UPDATE), ("aws:eks/addon:Addon", "addonName", changes.REPLACE),
    # an internet gateway moved off its VPC: the running VPC loses its way out until the new one is attached
    ("aws:ec2/internetGateway:InternetGateway", "vpcId", changes.INTERRUPT),
    ("pulumi:providers:kubernetes", "kubeconfig", changes.REPLACE),
])
def test_each_kind_of_resource_changes_as_its_api_says(rtype, inp, effect):
    """The effect `make diff` reports for an input, per the API or provider that owns it (docs/facts.md §8, §11):
    one flipped rule would call a replace "in place", or a harmless change a replace."""
    assert changes.classify(rtype, inp).effect == effect
