"""The rules across keys (`gpu_slicing.validate`) as a user meets them: each names the key at fault, the value and
what would be allowed, one load reports every independent error together, and capacity findings name the pool
size that would fix them along with the cost guard. Small hand-written stacks through `load_stack`; the expected
numbers are worked by hand (an A100-40GB under all-balanced: 2 x 1g.5gb + 2g.10gb + 3g.20gb per GPU, NVIDIA MIG
user guide; 8 GPUs on a p4d.24xlarge; EKS needs subnets in two Availability Zones, EKS user guide)."""
from __future__ import annotations

import pytest

from gpu_slicing.errors import ConfigError
from gpu_slicing.stack import load_stack

NS = "gpu-slicing:"
P4D = {"name": "p4d", "instanceType": "p4d.24xlarge", "migLayout": "all-balanced", "minSize": 1, "desiredSize": 1,
       "maxSize": 3}


def stack(**keys) -> dict:
    base = {"maxGpuNodes": 20, "cluster": {"name": "t", "publicAccessCidrs": ["0.0.0.0/0"]},
            "gpuOperator": {"migStrategy": "mixed"}, "nodeGroups": [P4D]}
    return {NS + k: v for k, v in {**base, **keys}.items()}


def refused(raw) -> list[ConfigError]:
    with pytest.raises(ConfigError) as e:
        load_stack(raw)
    return list(e.value.errors)


def one(raw) -> ConfigError:
    (e,) = refused(raw)
    return e


# --- the cluster's endpoint -------------------------------------------------------------------------------------

def test_an_api_reachable_from_nowhere_is_refused():
    e = one(stack(cluster={"name": "t", "endpointPublicAccess": False, "endpointPrivateAccess": False}))
    assert (e.key, e.value) == ("gpu-slicing:cluster.endpointPrivateAccess", False)
    assert e.allowed == "true when endpointPublicAccess is false (the API must be reachable)"


def test_a_public_endpoint_names_its_cidrs_and_a_private_one_has_none():
    e = one(stack(cluster={"name": "t", "publicAccessCidrs": []}))
    assert (e.key, e.value) == ("gpu-slicing:cluster.publicAccessCidrs", [])
    assert e.allowed == ("at least one CIDR while endpointPublicAccess is true (write 0.0.0.0/0 explicitly if you "
                         "mean the whole internet)")
    e = one(stack(cluster={"name": "t", "endpointPublicAccess": False, "endpointPrivateAccess": True,
                           "publicAccessCidrs": ["10.0.0.0/8"]}))
    assert (e.key, e.value) == ("gpu-slicing:cluster.publicAccessCidrs", ["10.0.0.0/8"])
    assert e.allowed == "empty while endpointPublicAccess is false"


def test_a_private_only_endpoint_without_cidrs_is_fine():
    st = load_stack(stack(cluster={"name": "t", "endpointPublicAccess": False, "endpointPrivateAccess": True,
                                   "publicAccessCidrs": []}))
    assert st.config.cluster.endpoint_private_access


# --- the network --------------------------------------------------------------------------------------------------

def test_an_existing_vpc_needs_two_private_subnets_a_public_one_and_no_cidr():
    errors = refused(stack(network={"vpcId": "vpc-0123456789abcdef0", "vpcCidr": "10.0.0.0/16",
                                    "privateSubnetIds": ["subnet-0123456789abcdef0"]}))
    assert [(e.key, e.value) for e in errors] == [
        ("gpu-slicing:network.vpcCidr", "10.0.0.0/16"),
        ("gpu-slicing:network.privateSubnetIds", ["subnet-0123456789abcdef0"]),
        ("gpu-slicing:network.publicSubnetIds", [])]
    assert [e.allowed for e in errors] == [
        "absent when vpcId is set (the VPC exists)",
        "at least 2 private subnets in different AZs (EKS requires two AZs)",
        "at least 1 public subnet (load balancers)"]


def test_an_existing_vpc_with_two_private_and_one_public_subnet_loads():
    net = {"vpcId": "vpc-0123456789abcdef0", "privateSubnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
           "publicSubnetIds": ["subnet-0123456789abcdef2"]}
    assert load_stack(stack(network=net)).config.network.existing


def test_subnets_without_a_vpc_are_refused_naming_vpc_id():
    e = one(stack(network={"publicSubnetIds": ["subnet-0123456789abcdef2"]}))
    assert e.key == "gpu-slicing:network.vpcId"
    assert e.allowed == "set when subnet IDs are given (or drop the IDs to create a VPC)"


@pytest.mark.parametrize("cidr, ok", [("10.0.0.0/20", True), ("10.0.0.0/16", True), ("10.0.0.0/21", False)])
def test_a_new_vpc_is_a_20_or_larger(cidr, ok):
    raw = stack(network={"vpcCidr": cidr})
    if ok:
        assert load_stack(raw).config.network.cidr == cidr
    else:
        e = one(raw)
        assert (e.key, e.value) == ("gpu-slicing:network.vpcCidr", cidr)
        assert e.allowed == ("a /20 or larger block: each AZ gets a private and a public subnet, and pods take VPC IPs "
                             "(a p4d alone can run hundreds)")


# --- the pools' keys ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sizes, ok", [((1, 1, 1), True), ((0, 1, 3), True), ((2, 1, 3), False), ((1, 4, 3), False)])
def test_a_node_groups_sizes_are_ordered(sizes, ok):
    group = {**P4D, **dict(zip(("minSize", "desiredSize", "maxSize"), sizes))}
    raw = stack(nodeGroups=[group], workloads=[])
    if ok:
        assert load_stack(raw).pools[0].nodes_desired == sizes[1]
    else:
        e = one(raw)
        assert e.key == "gpu-slicing:nodeGroups[0]" and e.allowed == "minSize <= desiredSize <= maxSize"
        assert e.value == dict(zip(("minSize", "desiredSize", "maxSize"), sizes))


NODEPOOL = {"name": "np", "instanceTypes": ["p4d.24xlarge"], "migLayout": "all-1g.5gb", "maxNodes": 2}


def test_node_pools_while_karpenter_is_off_are_refused():
    errors = refused(stack(karpenter={"enabled": False, "nodePools": [NODEPOOL]}))
    e = next(e for e in errors if e.key == "gpu-slicing:karpenter.nodePools")
    assert e.value == ["np"]
    assert e.allowed == "no NodePools while karpenter.enabled is false (they would be silently ignored)"


def test_a_node_pool_may_not_take_a_node_groups_name():
    errors = refused(stack(karpenter={"enabled": True, "nodePools": [{**NODEPOOL, "name": "p4d"}]}))
    e = next(e for e in errors if e.key == "gpu-slicing:karpenter.nodePools[0].name")
    assert e.value == "p4d" and e.allowed == "a name not used by a node group (workloads select pools by name)"


def test_independent_errors_are_reported_together_cluster_first():
    errors = refused(stack(cluster={"name": "t", "publicAccessCidrs": []}, network={"vpcCidr": "10.0.0.0/24"},
                           nodeGroups=[{**P4D, "minSize": 2}]))
    assert [e.key for e in errors] == ["gpu-slicing:cluster.publicAccessCidrs", "gpu-slicing:network.vpcCidr",
                                       "gpu-slicing:nodeGroups[0]"]


# --- the cost guard -----------------------------------------------------------------------------------------------

def test_the_cost_guard_counts_a_node_group_at_max_size_and_a_node_pool_at_its_limit():
    raw = stack(maxGpuNodes=4, karpenter={"enabled": True, "nodePools": [NODEPOOL]})
    e = one(raw)
    assert (e.key, e.value) == ("gpu-slicing:maxGpuNodes", 4)
    # maxSize 3 + maxNodes 2
    assert e.allowed == ("at least the 5 GPU nodes the pools may run (p4d: 3, np: 2; a NodePool counts what its "
                         "limits admit); raise it deliberately")
    assert load_stack({**raw, NS + "maxGpuNodes": 5}).config.max_gpu_nodes == 5  # exactly enough


def test_a_workload_on_a_pool_that_did_not_resolve_waits_for_it():
    bad = {**P4D, "migLayout": "no-such-layout"}
    errors = refused(stack(nodeGroups=[bad], workloads=[{"name": "w", "profile": "1g.5gb", "pool": "p4d"}]))
    assert [e.key for e in errors] == ["gpu-slicing:nodeGroups[0].migLayout"]  # not the workload's profile too


# --- capacity --------------------------------------------------------------------------------------------------------

def test_a_node_group_too_small_names_its_desired_size_and_how_far_it_may_grow():
    # all-balanced: 2 x 1g.5gb per GPU, 16 per p4d node; 17 replicas need a second node
    e = one(stack(workloads=[{"name": "w", "profile": "1g.5gb", "replicas": 17, "pool": "p4d"}]))
    assert (e.key, e.value) == ("gpu-slicing:nodeGroups[0].desiredSize", 1)
    assert "(up to maxSize, 3, nothing else changes; beyond it, maxSize and gpu-slicing:maxGpuNodes (now 20; " \
           "the pools may run 3 today) must grow too)" in str(e)
    assert load_stack(stack(workloads=[{"name": "w", "profile": "1g.5gb", "replicas": 16, "pool": "p4d"}]))


def test_a_node_pool_too_small_names_its_max_nodes_and_the_cost_guard():
    # all-1g.5gb: 7 per GPU, 56 per p4d node; maxNodes 2 holds 112
    raw = stack(nodeGroups=[], karpenter={"enabled": True, "nodePools": [NODEPOOL]},
                workloads=[{"name": "w", "profile": "1g.5gb", "replicas": 113, "pool": "np"}])
    e = one(raw)
    assert (e.key, e.value) == ("gpu-slicing:karpenter.nodePools[0].maxNodes", 2)
    assert "(more nodes also need gpu-slicing:maxGpuNodes (now 20; the pools may run 2 today) to cover them)" \
        in str(e)


def test_a_pod_larger_than_any_node_names_the_workloads_gpus():
    g5 = {"name": "g5", "instanceType": "g5.12xlarge"}  # 4 GPUs
    e = one(stack(nodeGroups=[P4D, g5], workloads=[
        {"name": "ok", "profile": "1g.5gb", "pool": "p4d"}, {"name": "big", "gpus": 5, "pool": "g5"}]))
    assert (e.key, e.value) == ("gpu-slicing:workloads[1].gpus", 5)


# --- what the capacity planner is given -------------------------------------------------------------------------------

def test_the_planner_sees_each_pool_as_the_stack_resolved_it():
    from gpu_slicing import validate

    g6 = {"name": "g6", "instanceTypes": ["g6.xlarge", "g6.2xlarge"], "capacityTypes": ["spot"], "maxNodes": 2,
          "sharing": {"timeSlicing": {"replicas": 4, "renameByDefault": True}}}
    st = load_stack(stack(karpenter={"enabled": True, "nodePools": [g6]}))
    mig, shared = validate.capacity_pools(st.pools)
    taint = [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
    assert (mig.name, mig.kind, mig.instance_type, mig.layout, mig.strategy) == (
        "p4d", "nodeGroup", "p4d.24xlarge", "all-balanced", "mixed")
    assert (mig.nodes_min, mig.nodes_desired, mig.nodes_max) == (1, 1, 3)
    assert mig.per_node["nvidia.com/mig-1g.5gb"] == 16  # 2 per A100-40GB under all-balanced, 8 GPUs
    assert mig.labels["gpu-slicing/pool"] == "p4d" and mig.labels["nvidia.com/mig.config"] == "all-balanced"
    assert list(mig.taints) == taint and list(shared.taints) == taint
    assert mig.mig_layout is not None and mig.mig_layout.name == "all-balanced" and mig.sharing is None
    assert mig.pod_limit == {"p4d.24xlarge": 737}  # docs/facts.md §11: awslabs eni-max-pods
    assert "nvidia-mig-manager" in mig.daemon_sets and "nvidia-mig-manager" not in shared.daemon_sets
    assert (mig.capacity_type, shared.capacity_type) == ("on-demand", "spot")
    assert mig.per_type == {}  # a node group runs one type
    # a NodePool: sized for its largest type, each type with what it advertises (1 GPU x 4 shares, renamed)
    assert shared.instance_type == "g6.2xlarge" and shared.sharing is not None
    assert shared.per_type == {"g6.xlarge": {"nvidia.com/gpu.shared": 4}, "g6.2xlarge": {"nvidia.com/gpu.shared": 4}}
    assert shared.pod_limit == {"g6.xlarge": 58, "g6.2xlarge": 58}  # 4 ENIs x (15 - 1) + 2


def test_the_planner_sees_each_workload_as_resolved():
    from gpu_slicing import validate

    st = load_stack(stack(workloads=[{"name": "w", "profile": "2g.10gb", "replicas": 3, "pool": "p4d"}]))
    (d,) = validate.capacity_workloads(st.workloads)
    assert (d.name, d.resource, d.per_replica, d.replicas, d.pool) == ("w", "nvidia.com/mig-2g.10gb", 1, 3, "p4d")
    assert d.node_selector == {"gpu-slicing/pool": "p4d", "nvidia.com/mig.config": "all-balanced"}
    assert list(d.tolerations) == [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "true",
                                    "effect": "NoSchedule"}]
    assert tuple(d.alternatives) == ()
    (r,) = st.capacity.workloads
    assert r.level != "error"


def test_the_stacks_own_price_prices_a_spot_pool_and_the_plan_agrees_without_resolved_workloads():
    from gpu_slicing import validate

    spot = {**P4D, "capacityType": "SPOT"}
    work = [{"name": "w", "profile": "1g.5gb", "replicas": 2, "pool": "p4d"}]
    st = load_stack(stack(nodeGroups=[spot], workloads=work, pricePerHour={"p4d.24xlarge": 7.5}))
    assert st.capacity.usd_per_hour == 7.5  # one node at the stack's 7.5 USD/h
    again = validate.capacity_plan(st.config, list(st.pools))  # the workloads resolved here
    assert again.usd_per_hour == 7.5 and [w.name for w in again.workloads] == ["w"]
    too_many = load_stack(stack(nodeGroups=[spot], workloads=[], pricePerHour={"p4d.24xlarge": 7.5})).config
    bad = too_many.model_copy(update={"workloads": [w.model_copy(update={"replicas": 100})
                                                    for w in st.config.workloads]})
    plan = validate.capacity_plan(bad, list(st.pools))
    assert [f.workload for f in plan.errors] == ["w"]  # 100 x 1g.5gb on one node of 16


def test_a_shared_dra_claim_is_one_device_for_every_replica_and_fallbacks_are_counted():
    from gpu_slicing import validate

    g6 = {"name": "g6", "instanceType": "g6.xlarge", "allocation": "dra"}
    p5 = {"name": "p5", "instanceType": "p5.48xlarge", "migLayout": "all-balanced", "allocation": "dra"}
    work = [{"name": "s", "gpus": 1, "replicas": 6, "claimSharing": "timeSlicing", "pool": "g6"},
            {"name": "f", "profile": "2g.20gb", "fallbackProfiles": ["3g.40gb"], "replicas": 2, "pool": "p5"}]
    st = load_stack(stack(nodeGroups=[g6, p5], workloads=work,
                          cluster={"name": "t", "publicAccessCidrs": ["0.0.0.0/0"], "kubernetesVersion": "1.35"}))
    shared, fallback = validate.capacity_workloads(st.workloads)
    assert (shared.replicas, fallback.replicas) == (1, 2)  # six pods on one shared claim: one GPU
    assert len(fallback.alternatives) == 1 and "3g.40gb" in fallback.alternatives[0]  # the fallback profile


def test_the_cost_guard_counts_the_small_nodes_a_mixed_node_pools_limits_admit():
    # limits sized for 2 x g6.12xlarge (4 GPUs, 48 vCPU, 192 GiB each: 8 GPUs, 96 vCPU, 384 GiB) admit
    # min(8 / 1, 96 / 4, 384 / 16) = 8 g6.xlarge (1 GPU, 4 vCPU, 16 GiB)
    mixed = {"name": "np", "instanceTypes": ["g6.xlarge", "g6.12xlarge"], "maxNodes": 2}
    e = one(stack(nodeGroups=[], maxGpuNodes=7, karpenter={"enabled": True, "nodePools": [mixed]}))
    assert (e.key, e.value) == ("gpu-slicing:maxGpuNodes", 7)
    assert "at least the 8 GPU nodes the pools may run (np: 8;" in str(e)


def test_no_suggestion_asks_a_pool_for_more_than_a_hundred_nodes():
    # the best layout for 1g.5gb, all-1g.5gb, gives 7 x 8 = 56 per p4d: 6000 pods need 108 nodes (107.1),
    # more than the 100 a node group's maxSize (or a NodePool's maxNodes) may be
    e = one(stack(workloads=[{"name": "w", "profile": "1g.5gb", "replicas": 6000, "pool": "p4d"}]))
    assert (e.key, e.value) == ("gpu-slicing:workloads[0].replicas", 6000)  # no pool size fixes it
    assert "no pool holds them: they need at least 108 nodes, more than the 100 one pool may run" in str(e)
