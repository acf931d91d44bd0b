"""The dev stack's managed node groups as recorded: what the GPU group carries for the GPU Operator and the
policy pack (labels, taint, tags), what reaches the EKS node group inside pulumi-eks's component (update config,
the subnets kept from creation), and the EKS names, a token of exactly the inputs docs/architecture.md lists
("Managed node groups: names, subnets and rolls")."""
from __future__ import annotations

import pytest

from gpu_slicing.changes import node_group_name
from tools import harness

MODES = ["preview", "up"]
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"  # the EKS node group pulumi-eks's ManagedNodeGroup creates
BASE_TAGS = {"gpu-slicing/cluster": "gpu-dev", "managed-by": "pulumi"}


def _gpu(r):
    return r.one("eks:index:ManagedNodeGroup", "gpu-dev-p4d-balanced")


@pytest.mark.parametrize("mode", MODES)
def test_the_gpu_group_is_labelled_for_its_pool_and_layout_and_tainted_for_gpu_pods(dev_runs, mode):
    """The MIG manager applies `nvidia.com/mig.config` from the node's own labels (docs/facts.md §1.8), so the
    label is the node group's; `nvidia.com/gpu=true:NoSchedule` keeps other pods off (EKS spells the effect
    NO_SCHEDULE)."""
    ng = _gpu(dev_runs[mode])
    assert ng.inputs["labels"] == {"gpu-slicing/pool": "p4d-balanced", "nvidia.com/mig.config": "all-balanced"}
    assert ng.inputs["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
    assert ng.inputs["version"] == "1.35"  # a custom launch template does not follow the control plane by itself


@pytest.mark.parametrize("mode", MODES)
def test_the_gpu_group_tells_the_policy_pack_how_a_layout_change_is_applied(dev_runs, mode):
    """The pack reads `gpu-slicing/mig-layout-change` (replace by default) and `gpu-slicing/allow-disruption`
    (only when the stack consents) from the node group's tags."""
    tags = _gpu(dev_runs[mode]).inputs["tags"]
    assert tags == {**BASE_TAGS, "gpu-slicing/pool": "p4d-balanced", "gpu-slicing/mig-layout-change": "replace"}


@pytest.mark.parametrize("mode", MODES)
def test_the_gpu_group_is_its_components_child_with_its_own_launch_template(dev_runs, mode):
    r = dev_runs[mode]
    comp = r.one("gpu-slicing:gpu:GpuNodeGroup")
    assert comp.name == "gpu-dev-p4d-balanced"
    ng = _gpu(r)
    assert ng.parent == comp.urn
    assert [r.get(u).name for u in ng.property_dependencies["cluster"]] == ["gpu-dev-eks"]
    assert [r.get(u).name for u in ng.property_dependencies["launchTemplate"]] == ["gpu-dev-p4d-balanced-lt"]
    lt = r.one("aws:ec2/launchTemplate:LaunchTemplate", "gpu-dev-p4d-balanced-lt")
    assert lt.parent == comp.urn
    assert lt.inputs["tagSpecifications"][0] == {"resourceType": "instance",
                                                 "tags": {**BASE_TAGS, "Name": "gpu-dev-p4d-balanced"}}
    if mode == "up":  # EKS takes the template by its ID and version (a string): the mock's ID, latest version 1
        assert ng.inputs["launchTemplate"] == {"id": f"lt-{harness._hex(lt.name)}", "version": "1"}


def test_what_reaches_the_eks_node_group_inside_the_component(dev_runs):
    """Only the GPU group keeps the subnets it was created with (they come from a live offerings lookup); the
    system group's follow its config. pulumi-eks's component itself gets no ignoreChanges (it would do nothing)."""
    r = dev_runs["preview"]
    gpu, system = _gpu(r), r.one("eks:index:ManagedNodeGroup", "gpu-dev-system")
    assert gpu.options["children"][NODE_GROUP]["ignoreChanges"] == ["subnetIds"]
    assert system.options["children"][NODE_GROUP]["ignoreChanges"] == []
    assert gpu.options["ignoreChanges"] == [] and system.options["ignoreChanges"] == []
    # the transform changes nothing but the update config
    assert set(gpu.options["children"][NODE_GROUP]["inputs"]) == {"updateConfig"}
    assert set(system.options["children"][NODE_GROUP]["inputs"]) == {"updateConfig"}


@pytest.mark.parametrize("mode", MODES)
def test_eks_names_are_a_token_of_what_only_creation_takes(dev_runs, mode):
    """docs/architecture.md: the GPU group's instance type, AMI type, capacity type and (under migLayoutChange:
    replace) MIG layout; the system group's instance type, AMI type, capacity type and subnet config. Any other
    input in the token renames (replaces) a running group on an unrelated change; one missing lets a change that
    needs a new group collide with the running one's name."""
    r = dev_runs[mode]
    gpu = {"instanceType": "p4d.24xlarge", "amiType": "AL2023_x86_64_NVIDIA", "capacityType": "ON_DEMAND",
           "migLayout": "all-balanced"}
    system = {"instanceType": "m7i.large", "amiType": "AL2023_x86_64_STANDARD", "capacityType": "ON_DEMAND",
              "subnets": {"vpcCidr": "10.0.0.0/16", "availabilityZones": 3}}
    assert _gpu(r).inputs["nodeGroupName"] == node_group_name("gpu-dev", "p4d-balanced", gpu)
    assert r.one("eks:index:ManagedNodeGroup", "gpu-dev-system").inputs["nodeGroupName"] == node_group_name(
        "gpu-dev", "system", system)


@pytest.fixture(scope="module")
def consenting_in_place():
    """The dev stack relabelling its GPU group in place, with the stack's consent to disruption."""
    from conftest import dev_config, run

    dev = dev_config()
    dev["gpu-slicing:nodeGroups"][0]["migLayoutChange"] = "in-place"
    dev["gpu-slicing:allowDisruption"] = True
    r = run(dev)
    assert r.error is None, r.error
    return r


@pytest.mark.slow
def test_an_in_place_group_says_so_and_carries_the_consent_and_no_layout_in_its_name(consenting_in_place):
    ng = _gpu(consenting_in_place)
    assert ng.inputs["tags"] == {**BASE_TAGS, "gpu-slicing/pool": "p4d-balanced",
                                 "gpu-slicing/mig-layout-change": "in-place", "gpu-slicing/allow-disruption": "true"}
    assert ng.inputs["nodeGroupName"] == node_group_name("gpu-dev", "p4d-balanced", {
        "instanceType": "p4d.24xlarge", "amiType": "AL2023_x86_64_NVIDIA", "capacityType": "ON_DEMAND"})


@pytest.mark.slow
def test_a_dra_groups_name_carries_its_allocation():
    """examples/Pulumi.dra.yaml: the p5 group hands its slices out through the DRA driver, so its token carries
    `allocation: dra` (a switch to or from the device plugin is a new group, never live nodes switching); the
    device-plugin group's token has no allocation at all (its name predates DRA and stays)."""
    import yaml

    from conftest import ROOT, run

    r = run(yaml.safe_load((ROOT / "examples" / "Pulumi.dra.yaml").read_text())["config"])
    assert r.error is None, r.error
    base = {"amiType": "AL2023_x86_64_NVIDIA", "capacityType": "ON_DEMAND", "migLayout": "all-balanced"}
    assert r.one("eks:index:ManagedNodeGroup", "gpu-dra-p5-dra").inputs["nodeGroupName"] == node_group_name(
        "gpu-dra", "p5-dra", {**base, "instanceType": "p5.48xlarge", "allocation": "dra"})
    assert r.one("eks:index:ManagedNodeGroup", "gpu-dra-p4d-plugin").inputs["nodeGroupName"] == node_group_name(
        "gpu-dra", "p4d-plugin", {**base, "instanceType": "p4d.24xlarge"})
