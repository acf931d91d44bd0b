"""Behaviours a one-line change could remove without another test noticing (issue 11: each of these was
found to survive a hand-made mutation). Every expected value here comes from the facts (docs/facts.md) or the Kubernetes and
EKS documentation, not from the code under test."""
from __future__ import annotations

import re

import pytest

from conftest import ROOT, dev_config, printed_under_hash_seed, run
from gpu_slicing.stack import parse_config
from gpu_slicing.errors import ConfigError

NS = "gpu-slicing:"


@pytest.fixture(scope="module")
def shared_run():
    """The dev stack plus a custom layout and time-slicing, so the operator has all three of its ConfigMaps."""
    cfg = dev_config()
    cfg[NS + "migLayouts"] = {"p4d-half": [{"devices": [0, 1, 2, 3], "profiles": {"1g.5gb": 7}},
                                           {"devices": [4, 5, 6, 7], "profiles": {"3g.20gb": 2}}]}
    cfg[NS + "karpenter"]["nodePools"][0]["migLayout"] = "p4d-half"
    cfg[NS + "karpenter"]["nodePools"][0]["sharing"] = {"timeSlicing": {"replicas": 2,
                                                                         "resources": ["nvidia.com/mig-1g.5gb"]}}
    cfg[NS + "workloads"][3]["replicas"] = 56  # 28 slices x 2 replicas on one node
    r = run(cfg, preview=False)
    assert r.error is None, r.error
    return r


def test_a_gpu_node_group_waits_for_its_roles_policy_attachments(dev_runs):
    """EKS refuses to create a node group whose role lacks the worker policies (docs/facts.md §4)."""
    r = dev_runs["preview"]
    ng = r.one("eks:index:ManagedNodeGroup", "gpu-dev-p4d-balanced")
    attachments = [a for a in r.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") if a.parent == ng.parent]
    policies = {a.inputs["policyArn"].rsplit("/", 1)[-1] for a in attachments}
    assert policies == {"AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryPullOnly",
                        "AmazonSSMManagedInstanceCore"}
    assert {a.urn for a in attachments} <= set(ng.dependencies)
    system = r.one("eks:index:ManagedNodeGroup", "gpu-dev-system")
    assert {a.urn for a in r.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
            if a.parent == system.parent} <= set(system.dependencies)


def test_the_operator_waits_for_its_configmaps(shared_run):
    """The release points migManager.config.name, devicePlugin.config.name and dcgmExporter.config.name at our
    ConfigMaps: created after them, the MIG manager, device plugin and exporter never start without their config."""
    rel = shared_run.one("kubernetes:helm.sh/v3:Release", "gpu-dev-gpu-operator")
    cms = [c for c in shared_run.by_type("kubernetes:core/v1:ConfigMap") if c.parent == rel.parent]
    names = {c.inputs["metadata"]["name"] for c in cms}
    assert {rel.inputs["values"]["migManager"]["config"]["name"],
            rel.inputs["values"]["devicePlugin"]["config"]["name"],
            rel.inputs["values"]["dcgmExporter"]["config"]["name"]} == names
    assert {c.urn for c in cms} <= set(rel.dependencies)


def test_the_workloads_namespace_enforces_the_restricted_pod_security_standard(dev_runs):
    ns = next(n for n in dev_runs["preview"].by_type("kubernetes:core/v1:Namespace")
              if n.inputs["metadata"]["name"] == "gpu-workloads")
    assert ns.inputs["metadata"]["labels"] == {"pod-security.kubernetes.io/enforce": "restricted"}
    operator_ns = next(n for n in dev_runs["preview"].by_type("kubernetes:core/v1:Namespace")
                       if n.inputs["metadata"]["name"] == "gpu-operator")
    assert operator_ns.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


CROSS_FIELD = [
    # (change to the dev stack, key named, words of what is allowed)
    (lambda c: c[NS + "cluster"].update(endpointPublicAccess=False, endpointPrivateAccess=False,
                                        publicAccessCidrs=[]),
     NS + "cluster.endpointPrivateAccess", "must be reachable"),
    (lambda c: c[NS + "cluster"].update(endpointPublicAccess=False), NS + "cluster.publicAccessCidrs",
     "empty while endpointPublicAccess is false"),
    (lambda c: c[NS + "network"].update(vpcId="vpc-1", privateSubnetIds=["subnet-1", "subnet-2"],
                                        publicSubnetIds=["subnet-3"]),
     NS + "network.vpcCidr", "absent when vpcId is set"),
    (lambda c: c[NS + "network"].update(privateSubnetIds=["subnet-1", "subnet-2"]) or c[NS + "network"].pop("vpcCidr"),
     NS + "network.vpcId", "set when subnet IDs are given"),
    (lambda c: c[NS + "network"].update(vpcCidr="10.0.0.0/21"), NS + "network.vpcCidr", "/20 or larger"),
    (lambda c: c[NS + "karpenter"].update(enabled=False), NS + "karpenter.nodePools",
     "no NodePools while karpenter.enabled is false"),
    (lambda c: c[NS + "karpenter"]["nodePools"][0].update(name="p4d-balanced"),
     NS + "karpenter.nodePools[0].name", "not used by a node group"),
    (lambda c: c[NS + "workloads"][0].update(gpus=1), NS + "workloads[0]", "exactly one of profile"),
    (lambda c: c[NS + "nodeGroups"][0].update(minSize=2), NS + "nodeGroups[0]", "minSize <= desiredSize"),
    (lambda c: c[NS + "network"].update(vpcId="vpc-1", privateSubnetIds=["subnet-1", "subnet-2"], publicSubnetIds=[])
     or c[NS + "network"].pop("vpcCidr"), NS + "network.publicSubnetIds", "at least 1 public subnet"),
    (lambda c: c[NS + "nodeGroups"][0].update(migLayout="all-disabled"), NS + "workloads[0].profile",
     "no MIG profile: pool p4d-balanced has MIG disabled (all-disabled); use gpus"),
    (lambda c: c.update({NS + "maxGpuNodes": 6}), NS + "maxGpuNodes",
     "at least the 7 GPU nodes the pools may run (p4d-balanced: 3, p4d-small: 4"),
]


ACCEPTED = [
    # (change to the dev stack, what it reads as): each at the edge of a cross-field rule
    (lambda c: c[NS + "cluster"].update(endpointPublicAccess=False, publicAccessCidrs=[]),
     lambda cfg: (cfg.cluster.endpoint_public_access, cfg.cluster.endpoint_private_access) == (False, True)),
    (lambda c: c[NS + "cluster"].update(endpointPrivateAccess=False),
     lambda cfg: (cfg.cluster.endpoint_public_access, cfg.cluster.endpoint_private_access) == (True, False)),
    (lambda c: c[NS + "network"].update(vpcId="vpc-1", privateSubnetIds=["subnet-1", "subnet-2"],
                                        publicSubnetIds=["subnet-3"]) or c[NS + "network"].pop("vpcCidr"),
     lambda cfg: cfg.network.existing and cfg.network.private_subnet_ids == ("subnet-1", "subnet-2")),
    (lambda c: c[NS + "network"].update(vpcCidr="10.0.0.0/20"), lambda cfg: cfg.network.cidr == "10.0.0.0/20"),
    (lambda c: c.update({NS + "maxGpuNodes": 7}), lambda cfg: cfg.max_gpu_nodes == 7),  # exactly maxSize 3 + maxNodes 4
    (lambda c: c[NS + "nodeGroups"][0].update(minSize=1, desiredSize=1, maxSize=1) or c.update({NS + "maxGpuNodes": 5}),
     lambda cfg: (cfg.node_groups[0].min_size, cfg.node_groups[0].max_size) == (1, 1)),
]


@pytest.mark.parametrize("change,reads", ACCEPTED)
def test_cross_field_rules_pass_at_their_edges(change, reads):
    cfg = dev_config()
    change(cfg)
    assert reads(parse_config(cfg))


@pytest.mark.parametrize("change,key,allowed", CROSS_FIELD, ids=[c[1] for c in CROSS_FIELD])
def test_cross_field_rules(change, key, allowed):
    cfg = dev_config()
    change(cfg)
    with pytest.raises(ConfigError) as e:
        parse_config(cfg)
    assert e.value.key == key, str(e.value)
    assert allowed in str(e.value)


def test_the_single_strategy_advertises_every_slice_as_nvidia_gpu():
    """docs/facts.md §2: under `single` every slice is nvidia.com/gpu, so a 1g.5gb pod asks for nvidia.com/gpu: 1
    and all-1g.5gb on p4d gives 56 of them."""
    cfg = dev_config()
    cfg[NS + "gpuOperator"]["migStrategy"] = "single"
    cfg[NS + "nodeGroups"][0]["migLayout"] = "all-1g.5gb"
    cfg[NS + "karpenter"] = {"enabled": False}
    cfg[NS + "maxGpuNodes"] = 3
    cfg[NS + "workloads"] = [{"name": "one", "profile": "1g.5gb", "replicas": 56, "pool": "p4d-balanced"}]
    r = run(cfg)
    assert r.error is None, r.error
    d = r.one("kubernetes:apps/v1:Deployment", "gpu-dev-workloads-one")
    limits = d.inputs["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "1" and not any(k.startswith("nvidia.com/mig-") for k in limits)
    from gpu_slicing.pools import resolve_pools

    assert dict(resolve_pools(parse_config(cfg))[0].per_node) == {"nvidia.com/gpu": 56}


def test_a_node_group_fits_exactly_at_desired_size_and_not_one_pod_more():
    """16 x 1g.5gb per all-balanced p4d (docs/facts.md §1.6): 16 fit one desired node, 17 do not."""
    cfg = dev_config()
    cfg[NS + "workloads"] = [{"name": "w", "profile": "1g.5gb", "replicas": 16, "pool": "p4d-balanced"}]
    parse_config(cfg)
    cfg[NS + "workloads"][0]["replicas"] = 17
    with pytest.raises(ConfigError) as e:
        parse_config(cfg)
    assert e.value.key == NS + "nodeGroups[0].desiredSize" and e.value.value == 1


@pytest.mark.parametrize("text,value", [
    # the Kubernetes documentation's examples (Resource Management for Pods and Containers; quantity.go)
    ("128974848", 128974848), ("129e6", 129e6), ("129M", 129e6), ("128974848000m", 128974848),
    ("123Mi", 123 * 2 ** 20), ("0.5", 0.5), ("100m", 0.1), ("1k", 1000), ("1Gi", 2 ** 30), ("1E", 1e18),
    ("1.5", 1.5), (".5", 0.5), ("1152Gi", 1152 * 2 ** 30),
])
def test_quantities_follow_kubernetes(text, value):
    from gpu_slicing.karpenter import quantity

    assert quantity(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["1K", "1KB", "Gi", "", "1 Gi", "x", "1.2.3", True])
def test_what_kubernetes_rejects_is_no_quantity(text):
    """"K" is not a suffix (lower-case k is 10^3; Ki is 2^10): the old parser read "1K" as 1000."""
    from gpu_slicing.karpenter import quantity

    assert quantity(text) is None


def test_node_groups_and_karpenter_nodes_are_hardened_alike(dev_runs):
    """IMDSv2 only with hop limit 1 and an encrypted gp3 root volume (docs/facts.md §4), the same for the managed
    node groups' launch templates and Karpenter's EC2NodeClass: one definition, two spellings."""
    r = dev_runs["preview"]
    norm = lambda d: {k.lower(): str(v).lower() for k, v in d.items()}  # noqa: E731 - casing and "true" vs True
    node_class = r.one("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass").inputs["spec"]
    want_meta = {"httpendpoint": "enabled", "httptokens": "required", "httpputresponsehoplimit": "1",
                 "httpprotocolipv6": "disabled"}
    assert norm(node_class["metadataOptions"]) == want_meta
    nc_ebs = node_class["blockDeviceMappings"][0]["ebs"]
    for lt in r.by_type("aws:ec2/launchTemplate:LaunchTemplate"):
        assert norm(lt.inputs["metadataOptions"]) == want_meta, lt.name
        ebs = lt.inputs["blockDeviceMappings"][0]["ebs"]
        assert {k: str(v).lower() for k, v in ebs.items() if k != "volumeSize"} == \
               {k: str(v).lower() for k, v in nc_ebs.items() if k != "volumeSize"} == \
               {"volumeType": "gp3", "encrypted": "true", "deleteOnTermination": "true"}, lt.name


# --- names a running fleet carries: a change to how they are made replaces every GPU node group ------------

README = (ROOT / "README.md").read_text() + (ROOT / "docs" / "changing-a-running-stack.md").read_text()
LABEL_PROGRAM = ("import sys; sys.path.insert(0, '.'); from gpu_slicing.layouts import parse_custom_layouts; "
                 "print(parse_custom_layouts({'p4d-half-small': [{'devices': [0, 1, 2, 3], 'profiles': {'1g.5gb': 7}}, "
                 "{'devices': [4, 5, 6, 7], 'profiles': {'4g.20gb': 1, '3g.20gb': 1}}]})['p4d-half-small'].name)")


def test_a_custom_layouts_label_is_the_one_the_readme_documents_in_every_process():
    """The README's example label was deployed by earlier releases: the hash must not depend on the process
    (Python's `hash()` is salted per process) nor change between releases."""
    documented = re.search(r"`(p4d-half-small-[0-9a-f]{7})`", README).group(1)
    labels = {printed_under_hash_seed(LABEL_PROGRAM, seed) for seed in ("1", "2")}
    assert labels == {documented}


def test_the_dev_node_groups_name_is_the_one_the_readme_documents(dev_runs):
    documented = re.search(r"deletes (gpu-dev-p4d-balanced-[0-9a-f]{7}) \(1 node\(s\), all-balanced\)", README).group(1)
    groups = [r.inputs["nodeGroupName"] for r in dev_runs["preview"].by_type("eks:index:ManagedNodeGroup")]
    assert sorted(groups)[0] == documented
    assert re.fullmatch(r"gpu-dev-system-[0-9a-f]{7}", sorted(groups)[1])  # the token of what replaces it
