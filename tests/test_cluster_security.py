"""The control plane's security settings, the system node group and the node IAM every managed node group gets,
read from the recorded plan: each setting turned off (encryption, logs, endpoint access, access entries, the
roles' trust and policies) fails here. Expected values are AWS's: the EKS user guide (cluster endpoint access,
envelope encryption, control-plane logging, access entries, node IAM role) and the KMS and IAM references."""
from __future__ import annotations

import json

import pytest

from tools import harness

MODES = ["preview", "up"]
BASE_TAGS = {"gpu-slicing/cluster": "gpu-dev", "managed-by": "pulumi"}
# EKS control-plane log types (EKS user guide, control plane logging): all five
LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
# The node IAM role's managed policies (EKS user guide, node IAM role; docs/facts.md §4)
NODE_POLICIES = {"AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryPullOnly",
                 "AmazonSSMManagedInstanceCore"}
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"


def _from(r, reg, key: str) -> list[str]:
    return sorted(r.get(u).name for u in reg.property_dependencies.get(key, []))


def _names(r, urns) -> set[str]:
    return {r.get(u).name for u in urns}


@pytest.mark.parametrize("mode", MODES)
def test_secrets_are_envelope_encrypted_with_a_rotating_key_of_the_cluster(dev_runs, mode):
    """KMS: automatic rotation on; the longest waiting period (7 to 30 days) before a deleted key is gone, so a
    mistaken delete of the key that opens every Secret can be cancelled."""
    r = dev_runs[mode]
    comp = r.one("gpu-slicing:cluster:Cluster")
    key = r.one("aws:kms/key:Key")
    assert key.name == "gpu-dev-secrets" and key.parent == comp.urn
    assert key.inputs["enableKeyRotation"] is True
    assert key.inputs["deletionWindowInDays"] == 30
    assert key.inputs["description"] == "EKS secrets envelope encryption for gpu-dev"
    assert key.inputs["tags"] == BASE_TAGS
    alias = r.one("aws:kms/alias:Alias")
    assert alias.inputs["name"] == "alias/eks/gpu-dev-secrets" and alias.parent == comp.urn
    assert _from(r, alias, "targetKeyId") == ["gpu-dev-secrets"]
    eks = r.one("eks:index:Cluster")
    assert _from(r, eks, "encryptionConfigKeyArn") == ["gpu-dev-secrets"]
    if mode == "up":
        assert eks.inputs["encryptionConfigKeyArn"].startswith("arn:aws:kms:us-east-1:")
        assert alias.inputs["targetKeyId"] == eks.inputs["encryptionConfigKeyArn"].rsplit("/", 1)[1]


@pytest.mark.parametrize("mode", MODES)
def test_the_control_plane_logs_everything_and_admits_only_iam_access_entries(dev_runs, mode):
    r = dev_runs[mode]
    c = r.one("eks:index:Cluster")
    assert c.name == "gpu-dev-eks" and c.parent == r.one("gpu-slicing:cluster:Cluster").urn
    i = c.inputs
    assert i["enabledClusterLogTypes"] == LOG_TYPES
    assert i["authenticationMode"] == "API"  # access entries only, no aws-auth ConfigMap
    assert i["endpointPublicAccess"] is True and i["endpointPrivateAccess"] is True  # the dev stack's, the default
    assert i["publicAccessCidrs"] == ["0.0.0.0/0"]
    assert i["nodeAssociatePublicIpAddress"] is False
    assert i["skipDefaultNodeGroup"] is True and i["skipDefaultSecurityGroups"] is True
    assert i["createOidcProvider"] is False  # Karpenter uses EKS Pod Identity, not IRSA
    assert i["name"] == "gpu-dev" and i["version"] == "1.35"
    assert i["tags"] == BASE_TAGS


@pytest.fixture(scope="module")
def private_only():
    """A stack whose API endpoint is private (no public access), with two of the five log types and two admin
    roles."""
    from conftest import dev_config, run

    dev = dev_config()
    dev["gpu-slicing:cluster"] = {"name": "gpu-dev", "kubernetesVersion": "1.35", "endpointPublicAccess": False,
                                  "endpointPrivateAccess": True, "logTypes": ["audit", "api"],
                                  "adminRoleArns": ["arn:aws:iam::111122223333:role/platform-admins",
                                                    "arn:aws:iam::111122223333:role/ci/gh-deploy"]}
    r = run(dev, preview=False)
    assert r.error is None, r.error
    return r


@pytest.mark.slow
def test_endpoint_access_and_logs_follow_the_config(private_only):
    i = private_only.one("eks:index:Cluster").inputs
    assert i["endpointPublicAccess"] is False and i["endpointPrivateAccess"] is True
    assert "publicAccessCidrs" not in i  # no list at all (EKS's default would be 0.0.0.0/0 once public)
    assert i["enabledClusterLogTypes"] == ["audit", "api"]


@pytest.mark.slow
def test_each_admin_role_gets_its_own_named_cluster_admin_entry(private_only):
    """EKS access entries: type STANDARD plus the AmazonEKSClusterAdminPolicy access policy scoped to the
    cluster; each named for its role (the last path segment of the ARN), so removing one keeps the others."""
    r = private_only
    comp = r.one("gpu-slicing:cluster:Cluster")
    eks = r.one("eks:index:Cluster")
    entries = [e for e in r.by_type("aws:eks/accessEntry:AccessEntry") if e.parent == comp.urn]
    assocs = [a for a in r.by_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation") if a.parent == comp.urn]
    assert len(entries) == len(assocs) == 2
    for role, arn in (("platform-admins", "arn:aws:iam::111122223333:role/platform-admins"),
                      ("gh-deploy", "arn:aws:iam::111122223333:role/ci/gh-deploy")):
        (e,) = [x for x in entries if x.inputs["principalArn"] == arn]
        (a,) = [x for x in assocs if x.name == e.name]
        assert e.name.startswith(f"gpu-dev-admin-{role}-") and len(e.name) == len(f"gpu-dev-admin-{role}-") + 6
        assert e.inputs == {"clusterName": "gpu-dev", "principalArn": arn, "type": "STANDARD", "tags": BASE_TAGS}
        assert eks.urn in e.dependencies
        assert a.inputs == {"clusterName": "gpu-dev", "principalArn": arn, "accessScope": {"type": "cluster"},
                            "policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"}
        assert _from(r, a, "principalArn") == [e.name]


def test_no_admin_roles_no_access_entries_of_the_cluster(dev_runs):
    r = dev_runs["up"]
    comp = r.one("gpu-slicing:cluster:Cluster").urn
    assert [x.name for x in r.registrations if x.parent == comp and "access" in x.type.lower()] == []


@pytest.mark.parametrize("mode", MODES)
def test_every_managed_node_group_gets_an_ec2_node_role_with_the_four_node_policies(dev_runs, mode):
    """EKS user guide, node IAM role: trusted by ec2.amazonaws.com for sts:AssumeRole, with the worker-node, CNI,
    ECR pull-only and SSM managed policies; the node group waits for the attachments (a node that joins before
    them cannot register)."""
    r = dev_runs[mode]
    for ng in r.by_type("eks:index:ManagedNodeGroup"):
        role = r.one("aws:iam/role:Role", f"{ng.name}-role")
        assert role.parent == ng.parent
        trust = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        # canonical JSON (keys sorted): the document does not change with the order the code writes it in
        assert role.inputs["assumeRolePolicy"] == json.dumps(trust, sort_keys=True)
        assert role.inputs["tags"] == BASE_TAGS
        assert _from(r, ng, "nodeRole") == [role.name]
        attached = [a for a in r.by_type(ATTACHMENT) if _from(r, a, "role") == [role.name]]
        assert {a.inputs["policyArn"] for a in attached} == {f"arn:aws:iam::aws:policy/{p}" for p in NODE_POLICIES}
        assert {a.name for a in attached} == {f"{ng.name}-{p}" for p in NODE_POLICIES}
        assert all(a.parent == ng.parent for a in attached)
        assert {a.name for a in attached} <= _names(r, ng.dependencies)


@pytest.mark.parametrize("mode", MODES)
def test_the_system_node_group_runs_controllers_on_two_standard_al2023_nodes(dev_runs, mode):
    r = dev_runs[mode]
    ng = r.one("eks:index:ManagedNodeGroup", "gpu-dev-system")
    assert ng.parent == r.one("gpu-slicing:cluster:Cluster").urn
    i = ng.inputs
    assert i["amiType"] == "AL2023_x86_64_STANDARD" and i["instanceTypes"] == ["m7i.large"]
    assert i["capacityType"] == "ON_DEMAND" and i["version"] == "1.35"
    assert i["scalingConfig"] == {"minSize": 2, "desiredSize": 2, "maxSize": 2}
    assert i["labels"] == {"gpu-slicing/role": "system"}
    assert i["tags"] == BASE_TAGS
    assert i["nodeGroupName"].startswith("gpu-dev-system-")
    assert _from(r, ng, "cluster") == ["gpu-dev-eks"]
    assert {"gpu-dev-private-0", "gpu-dev-private-1", "gpu-dev-private-2"} <= set(_from(r, ng, "subnetIds"))
    assert not {"gpu-dev-public-0", "gpu-dev-public-1", "gpu-dev-public-2"} & set(_from(r, ng, "subnetIds"))
    assert _from(r, ng, "launchTemplate") == ["gpu-dev-system-lt"]
    lt = r.one("aws:ec2/launchTemplate:LaunchTemplate", "gpu-dev-system-lt")
    assert lt.inputs["blockDeviceMappings"][0]["ebs"]["volumeSize"] == 50
    assert lt.inputs["tagSpecifications"] == [
        {"resourceType": "instance", "tags": {**BASE_TAGS, "Name": "gpu-dev-system"}},
        {"resourceType": "volume", "tags": BASE_TAGS}]
    assert lt.inputs["updateDefaultVersion"] is True and lt.inputs["tags"] == BASE_TAGS
    if mode == "up":
        assert i["launchTemplate"] == {"id": f"lt-{harness._hex(lt.name)}", "version": "1"}
        assert i["subnetIds"] == r.one("eks:index:Cluster").inputs["privateSubnetIds"]


@pytest.mark.parametrize("mode", MODES)
def test_every_kubernetes_object_goes_through_a_server_side_apply_provider_after_the_system_nodes(dev_runs, mode):
    r = dev_runs[mode]
    p = r.one("pulumi:providers:kubernetes")
    assert p.name == "gpu-dev-k8s" and p.parent == r.one("gpu-slicing:cluster:Cluster").urn
    assert p.inputs["enableServerSideApply"] == "true"
    assert _from(r, p, "kubeconfig") == ["gpu-dev-eks"]
    assert "gpu-dev-system" in _names(r, p.dependencies)
    if mode == "up":
        kube = json.loads(p.inputs["kubeconfig"])
        assert kube["users"][0]["user"]["exec"]["args"][:2] == ["eks", "get-token"]
        assert json.loads(r.outputs["kubeconfig"]) == kube


@pytest.mark.parametrize("mode", MODES)
def test_every_aws_resource_carries_the_clusters_tag_as_karpenters_nodes_do(dev_runs, mode):
    """One tag finds everything of the cluster in the account (cost allocation, a break-glass clean-up): the
    `gpu-slicing/cluster` tag Karpenter's EC2NodeClass puts on the nodes it launches, with `managed-by` naming who
    manages the resource (pulumi here, karpenter there)."""
    r = dev_runs[mode]
    node_class = r.one("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass").inputs["spec"]["tags"]
    assert node_class["gpu-slicing/cluster"] == "gpu-dev" and node_class["managed-by"] == "karpenter"
    untaggable = {"aws:ec2/tag:Tag", "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "aws:kms/alias:Alias",
                  "aws:sqs/queuePolicy:QueuePolicy", "aws:cloudwatch/eventTarget:EventTarget",
                  "aws:ec2/routeTableAssociation:RouteTableAssociation"}  # AWS takes no tags on these
    tagged = [x for x in r.registrations if x.type.startswith(("aws:", "eks:")) and x.type not in untaggable]
    assert len(tagged) > 30
    for x in tagged:
        assert {k: x.inputs["tags"].get(k) for k in ("gpu-slicing/cluster", "managed-by")} == {
            "gpu-slicing/cluster": "gpu-dev", "managed-by": "pulumi"}, x.name
    for lt in r.by_type("aws:ec2/launchTemplate:LaunchTemplate"):  # the instances and volumes it launches too
        specs = {s["resourceType"]: s["tags"] for s in lt.inputs["tagSpecifications"]}
        assert set(specs) == {"instance", "volume"}
        assert all(t["gpu-slicing/cluster"] == "gpu-dev" and t["managed-by"] == "pulumi" for t in specs.values())
