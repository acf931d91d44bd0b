"""The policy pack's per-resource security rules at their edges, on hand-built resources: IMDSv2, EBS and
Secrets encryption, public IPs, the API endpoint's reach and non-root workloads, in each shape a rule reads
(pulumi-eks components and the AWS resources under them, Karpenter's EC2NodeClass), with values that arrive
as strings or stay unknown at preview (never a violation by themselves). Expected decisions come from the
AWS and Kubernetes semantics (IMDSv2 = httpTokens required; RFC 5737's three documentation ranges;
a container inherits the pod's securityContext unless it sets its own)."""
from __future__ import annotations

import pytest

from policy import rules

CTX = rules.Context(max_gpu_nodes=100)
U = rules.UNKNOWN
LT = "aws:ec2/launchTemplate:LaunchTemplate"
INSTANCE = "aws:ec2/instance:Instance"


def check(rule: str, type_: str, props: dict, name: str = "r") -> list[str]:
    r = rules.Res(type=type_, name=name, urn=f"urn:{name}", props=props)
    return list(rules.RULES[rule].fn(r, CTX))


# --- IMDSv2 ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("type_", [LT, INSTANCE])
def test_imdsv2_on_instances_and_launch_templates(type_):
    assert check("imdsv2-required", type_, {"metadataOptions": {"httpTokens": "required"}}) == []
    assert check("imdsv2-required", type_, {"metadataOptions": {"httpTokens": U}}) == []
    [msg] = check("imdsv2-required", type_, {"metadataOptions": {"httpTokens": "optional"}})
    assert msg.startswith("r: metadataOptions.httpTokens is 'optional'")
    [msg] = check("imdsv2-required", type_, {"metadataOptions": {}})
    assert msg.startswith("r: metadataOptions.httpTokens is not set")


def test_imdsv2_on_a_nodeclass_only_an_explicit_value_can_loosen():
    for ok in ({}, {"spec": {"metadataOptions": {"httpTokens": "required"}}}, {"spec": {"metadataOptions": {"httpTokens": U}}}):
        assert check("imdsv2-required", rules.NODECLASS_TYPE, ok) == [], ok


@pytest.mark.parametrize("type_", rules.MNG_TYPES)
def test_a_node_group_needs_a_launch_template(type_):
    assert check("imdsv2-required", type_, {"launchTemplate": {"id": "lt-1", "version": "1"}}) == []
    assert check("imdsv2-required", type_, {"launchTemplate": U}) == []
    [msg] = check("imdsv2-required", type_, {})
    assert msg.startswith("r: no launch template")


def test_imdsv2_ignores_other_resources():
    assert check("imdsv2-required", "aws:ec2/subnet:Subnet", {"metadataOptions": {"httpTokens": "optional"}}) == []


# --- EBS encryption ----------------------------------------------------------------------------------

def test_launch_template_volumes_each_encrypted_by_index():
    props = {"blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "true"}},
                                     {"deviceName": "/dev/xvdb", "ebs": {"encrypted": False}},
                                     {"deviceName": "/dev/xvdc", "ebs": {"encrypted": U}},
                                     {"deviceName": "/dev/xvdd", "ebs": {}},
                                     {"deviceName": "/dev/sdf", "virtualName": "ephemeral0"}]}
    assert check("ebs-encrypted", LT, props) == ["r: blockDeviceMappings[1] (/dev/xvdb) is not encrypted",
                                                 "r: blockDeviceMappings[3] (/dev/xvdd) is not encrypted"]


def test_nodeclass_volumes_must_be_declared_and_encrypted():
    assert check("ebs-encrypted", rules.NODECLASS_TYPE, {"spec": {"blockDeviceMappings": [
        {"deviceName": "/dev/xvda", "ebs": {"encrypted": True}}, {"deviceName": "/dev/xvdb", "ebs": {"encrypted": U}}]}}) == []
    assert check("ebs-encrypted", rules.NODECLASS_TYPE, {"spec": {"blockDeviceMappings": [
        {"deviceName": "/dev/xvda", "ebs": {"encrypted": True}}, {"deviceName": "/dev/xvdb", "ebs": {"encrypted": "false"}}]}}) == [
        "r: spec.blockDeviceMappings[1] (/dev/xvdb) is not encrypted"]
    [msg] = check("ebs-encrypted", rules.NODECLASS_TYPE, {"spec": {"role": "x"}})
    assert msg.startswith("r: no spec.blockDeviceMappings")


def test_volumes_and_instance_root_devices():
    assert check("ebs-encrypted", "aws:ebs/volume:Volume", {"encrypted": True}) == []
    assert check("ebs-encrypted", "aws:ebs/volume:Volume", {"encrypted": U}) == []
    assert check("ebs-encrypted", "aws:ebs/volume:Volume", {}) == ["r: encrypted is not true"]
    assert check("ebs-encrypted", INSTANCE, {"rootBlockDevice": {"encrypted": "true"}}) == []
    assert check("ebs-encrypted", INSTANCE, {"rootBlockDevice": {"encrypted": False}}) == [
        "r: rootBlockDevice.encrypted is not true"]
    assert check("ebs-encrypted", INSTANCE, {}) == ["r: rootBlockDevice.encrypted is not true"]


# --- Secrets, public IPs --------------------------------------------------------------------------------

def test_secrets_envelope_encryption_on_both_cluster_shapes():
    assert check("secrets-kms-encrypted", "eks:index:Cluster", {"encryptionConfigKeyArn": "arn:k"}) == []
    raw = "aws:eks/cluster:Cluster"
    assert check("secrets-kms-encrypted", raw, {"encryptionConfig": U}) == []
    assert check("secrets-kms-encrypted", raw, {"encryptionConfig": {"resources": "secrets",
                                                                     "provider": {"keyArn": "arn:k"}}}) == []
    for bad in ({}, {"encryptionConfig": {"resources": ["secrets"], "provider": {}}},
                {"encryptionConfig": {"resources": ["secrets"]}}, {"encryptionConfig": "secrets"}):
        assert check("secrets-kms-encrypted", raw, bad) == [
            "r: encryptionConfig does not encrypt 'secrets' with a KMS key"], bad


def test_public_ips_off_by_an_explicit_false_in_any_spelling():
    for ok in ({"nodeAssociatePublicIpAddress": False}, {"nodeAssociatePublicIpAddress": "false"},
               {"nodeAssociatePublicIpAddress": U}):
        assert check("nodes-private", "eks:index:Cluster", ok) == [], ok
    assert len(check("nodes-private", "eks:index:Cluster", {"nodeAssociatePublicIpAddress": "true"})) == 1
    assert check("nodes-private", rules.SUBNET_TYPE, {"mapPublicIpOnLaunch": U}) == []
    assert check("nodes-private", rules.SUBNET_TYPE, {}) == []
    assert check("nodes-private", LT, {"networkInterfaces": [{"associatePublicIpAddress": "false"},
                                                            {"associatePublicIpAddress": True}]}) == [
        "r: networkInterfaces[1].associatePublicIpAddress is true"]


# --- the API endpoint's reach ------------------------------------------------------------------------

@pytest.mark.parametrize("cidrs, flagged, reach", [
    (["192.0.2.0/24"], ["192.0.2.0/24"], "no client can reach the API"),  # RFC 5737 TEST-NET-1
    (["198.51.100.7/32", "203.0.113.128/25"], ["198.51.100.7/32", "203.0.113.128/25"], "no client can reach the API"),
    (["203.0.113.0/24", "8.8.8.0/24"], ["203.0.113.0/24"], "an entry that admits no client is a mistake"),
    (["192.0.2.0/24", U], ["192.0.2.0/24"], "no client can reach the API"),  # an unknown entry is no client either
])
def test_documentation_ranges_admit_no_client(cidrs, flagged, reach):
    for type_, props in (("eks:index:Cluster", {"endpointPublicAccess": True, "publicAccessCidrs": cidrs}),
                         ("aws:eks/cluster:Cluster", {"vpcConfig": {"endpointPublicAccess": "true",
                                                                    "publicAccessCidrs": cidrs}})):
        [msg] = check("api-endpoint-reachable", type_, props)
        assert msg.startswith(f"r: publicAccessCidrs {flagged} are documentation ranges") and reach in msg


@pytest.mark.parametrize("props", [
    {"endpointPublicAccess": True, "publicAccessCidrs": ["192.0.0.0/16"]},  # holds 192.0.2.0/24: not inside it
    {"endpointPublicAccess": True, "publicAccessCidrs": ["2001:db8::/32"]},  # IPv6: not an RFC 5737 range
    {"endpointPublicAccess": True, "publicAccessCidrs": ["not-a-cidr"]},
    {"endpointPublicAccess": "false", "publicAccessCidrs": ["192.0.2.0/24"]},
    {"endpointPublicAccess": True},  # the default, 0.0.0.0/0
    {"publicAccessCidrs": ["10.1.0.0/16"]},
])
def test_what_a_real_client_can_be_in_passes(props):
    assert check("api-endpoint-reachable", "eks:index:Cluster", props) == []


def test_the_endpoint_rule_reads_only_clusters():
    assert check("api-endpoint-reachable", rules.SUBNET_TYPE, {"publicAccessCidrs": ["192.0.2.0/24"]}) == []


# --- non-root workloads --------------------------------------------------------------------------------

def pod(pod_sc: dict, *containers: dict, kind: str = "kubernetes:core/v1:Pod") -> tuple[str, dict]:
    spec = {"securityContext": pod_sc, "containers": list(containers)}
    return kind, {"spec": spec} if kind == "kubernetes:core/v1:Pod" else {"spec": {"template": {"spec": spec}}}


HARDENED = {"allowPrivilegeEscalation": False}


def test_a_container_inherits_the_pods_non_root_setting():
    assert check("workloads-non-root", *pod({"runAsNonRoot": True, "runAsUser": 1000}, {"name": "c", "securityContext": HARDENED})) == []
    msgs = check("workloads-non-root", *pod({"runAsNonRoot": True, "runAsUser": 0}, {"name": "c", "securityContext": HARDENED}))
    assert msgs == ["r: container c may run as root (set runAsNonRoot: true and a non-zero runAsUser)"]
    # the container's own setting wins over the pod's, both ways
    assert check("workloads-non-root", *pod({"runAsNonRoot": False}, {"name": "c", "securityContext": {
        **HARDENED, "runAsNonRoot": "true", "runAsUser": 1}})) == []
    assert len(check("workloads-non-root", *pod({"runAsNonRoot": True}, {"name": "c", "securityContext": {
        **HARDENED, "runAsNonRoot": False}}))) == 1


def test_every_container_kind_and_workload_kind_is_read():
    bad = {"name": "init", "securityContext": {"runAsNonRoot": True, "privileged": "true"}}
    for kind in rules.POD_SPEC_PATHS:
        if kind == "kubernetes:batch/v1:CronJob":
            props = {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"initContainers": [bad]}}}}}}
        elif kind == "kubernetes:core/v1:Pod":
            props = {"spec": {"initContainers": [bad]}}
        else:
            props = {"spec": {"template": {"spec": {"initContainers": [bad]}}}}
        assert check("workloads-non-root", kind, props, name="w") == [
            "w: container init does not set allowPrivilegeEscalation: false", "w: container init is privileged"], kind
    assert check("workloads-non-root", "kubernetes:core/v1:Service", {"spec": {"containers": [bad]}}) == []
    unnamed = check("workloads-non-root", *pod({}, {"securityContext": {"runAsNonRoot": True, **HARDENED}}))
    assert unnamed == []
    assert check("workloads-non-root", *pod({}, {})) == [
        "r: container ? may run as root (set runAsNonRoot: true and a non-zero runAsUser)",
        "r: container ? does not set allowPrivilegeEscalation: false"]


# --- what the rules tell the user, and the shapes they must not trip over --------------------------------

def test_the_raw_cluster_shape_reads_its_endpoint_switch_inside_vpc_config():
    """aws.eks.Cluster keeps endpointPublicAccess under vpcConfig: a private endpoint there has no public CIDRs
    to judge, and a vpcConfig still unknown at preview is no violation (nor a crash)."""
    raw = "aws:eks/cluster:Cluster"
    assert check("api-endpoint-reachable", raw, {"vpcConfig": {"endpointPublicAccess": False,
                                                               "publicAccessCidrs": ["192.0.2.0/24"]}}) == []
    assert check("api-endpoint-reachable", raw, {"vpcConfig": U}) == []


def test_the_endpoint_message_says_what_breaks_and_what_to_use():
    """The deployer reads why the stack is refused (nothing can be created or deleted) and what to put instead."""
    assert check("api-endpoint-reachable", "eks:index:Cluster",
                 {"endpointPublicAccess": True, "publicAccessCidrs": ["192.0.2.0/24"]}) == [
        "r: publicAccessCidrs ['192.0.2.0/24'] are documentation ranges (RFC 5737): no client can reach the API, "
        "so no Kubernetes object can be created, changed or deleted; use the deployers' CIDRs"]
    assert check("api-endpoint-reachable", "eks:index:Cluster",
                 {"endpointPublicAccess": True, "publicAccessCidrs": ["192.0.2.0/24", "8.8.8.0/24"]}) == [
        "r: publicAccessCidrs ['192.0.2.0/24'] are documentation ranges (RFC 5737): an entry that admits no client "
        "is a mistake; use the deployers' CIDRs"]


def test_a_launch_template_entry_that_is_no_mapping_is_skipped():
    """An unknown block device entry (a preview value) says nothing about encryption: the entries after it are
    still judged, by their own index."""
    for type_, props in ((LT, {"blockDeviceMappings": [U, {"deviceName": "/dev/xvdb", "ebs": {"encrypted": False}}]}),
                         (rules.NODECLASS_TYPE, {"spec": {"blockDeviceMappings": [
                             U, {"deviceName": "/dev/xvdb", "ebs": {"encrypted": False}}]}})):
        [msg] = check("ebs-encrypted", type_, props)
        assert msg.endswith("blockDeviceMappings[1] (/dev/xvdb) is not encrypted"), type_


def test_the_remedies_name_what_to_declare():
    """A nodeclass without volumes is told to declare an encrypted root volume; a node group without a launch
    template is told which one to use."""
    [msg] = check("ebs-encrypted", rules.NODECLASS_TYPE, {"spec": {}})
    assert msg.endswith("; declare an encrypted root volume")
    [msg] = check("imdsv2-required", rules.MNG_TYPES[0], {})
    assert msg.endswith("give the node group this stack's launch template (httpTokens required, encrypted gp3)")


def test_a_kms_provider_without_a_key_arn_is_not_envelope_encryption():
    """The provider block must name the key: a provider map with other fields only encrypts nothing with KMS."""
    assert check("secrets-kms-encrypted", "aws:eks/cluster:Cluster", {"encryptionConfig": {
        "resources": ["secrets"], "provider": {"keyArn": "", "note": "key pending"}}}) == [
        "r: encryptionConfig does not encrypt 'secrets' with a KMS key"]


def test_a_containers_own_run_as_user_wins_over_the_pods():
    """Kubernetes: a container's securityContext.runAsUser overrides the pod's, both ways (root in the container
    under a non-root pod is root; a non-root container under a root pod is not)."""
    root_in_container = pod({"runAsNonRoot": True, "runAsUser": 1000},
                            {"name": "c", "securityContext": {**HARDENED, "runAsUser": 0}})
    assert check("workloads-non-root", *root_in_container) == [
        "r: container c may run as root (set runAsNonRoot: true and a non-zero runAsUser)"]
    assert check("workloads-non-root", *pod({"runAsNonRoot": True, "runAsUser": 0},
                                            {"name": "c", "securityContext": {**HARDENED, "runAsUser": 1000}})) == []
