"""GPU pools as a loaded stack resolves them (gpu_slicing.stack.load_stack): the errors a pool's config can
raise, what its nodes carry and advertise, and the resource its workloads are planned against. Expected values
are the facts (docs/facts.md §1.6 and §11: p4d all-balanced 16/8/8, pods per type) and hand arithmetic."""
from __future__ import annotations

import pytest

from gpu_slicing.errors import ConfigError
from gpu_slicing.stack import load_stack

NS = "gpu-slicing:"
GPU = "nvidia.com/gpu"
TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}


def stack(groups=(), pools=(), strategy="mixed", workloads=(), **keys):
    raw = {NS + "maxGpuNodes": 20, NS + "cluster": {"name": "t", "publicAccessCidrs": ["0.0.0.0/0"]},
           NS + "gpuOperator": {"migStrategy": strategy}, NS + "nodeGroups": list(groups),
           NS + "workloads": list(workloads), **{NS + k: v for k, v in keys.items()}}
    if pools:
        raw[NS + "karpenter"] = {"enabled": True, "nodePools": list(pools)}
    return load_stack(raw)


def error(**kw) -> str:
    with pytest.raises(ConfigError) as e:
        stack(**kw)
    return str(e.value)


def test_a_pool_of_two_architectures_or_two_gpu_models_under_mig_is_refused():
    assert error(strategy="none", pools=[{"name": "k", "instanceTypes": ["g5.xlarge", "g5g.xlarge"], "maxNodes": 2}]) \
        == (f"{NS}karpenter.nodePools[0].instanceTypes: [g5.xlarge, g5g.xlarge] is not valid: instance types of one "
            "architecture (got amd64, arm64): a pool's nodes share one AMI type and one kubernetes.io/arch requirement")
    assert error(pools=[{"name": "k", "instanceTypes": ["p4d.24xlarge", "p5.48xlarge"], "maxNodes": 2,
                         "migLayout": "all-balanced"}]) == (
        f"{NS}karpenter.nodePools[0].instanceTypes: [p4d.24xlarge, p5.48xlarge] is not valid: instance types with one "
        "GPU model for a MIG pool (got A100-SXM4-40GB, H100-80GB-HBM3): a MIG layout is per GPU model")
    # MIG off: two GPU models may share a pool (whole GPUs are whole GPUs)
    mixed = stack(pools=[{"name": "k", "instanceTypes": ["p4d.24xlarge", "p5.48xlarge"], "maxNodes": 2}])
    assert [t.name for t in mixed.pool("k").instance_types] == ["p4d.24xlarge", "p5.48xlarge"]


def test_a_mig_layout_under_the_none_strategy_and_sharing_a_fractional_gpu_are_refused():
    assert error(strategy="none", groups=[{"name": "p", "instanceType": "p4d.24xlarge", "migLayout": "all-balanced"}]) \
        == (f"{NS}nodeGroups[0].migLayout: 'all-balanced' is not valid: all-disabled while "
            f"{NS}gpuOperator.migStrategy is none")
    assert error(groups=[{"name": "l", "instanceType": "g6f.xlarge", "sharing": {"timeSlicing": {"replicas": 2}}}]) \
        == (f"{NS}nodeGroups[0].sharing: {{timeSlicing: {{replicas: 2}}}} is not valid: no sharing on g6f.xlarge: a "
            "fractional L4 vGPU has no MIG and the device plugin cannot time-slice or MPS-share it; use g6 or gr6 "
            "for shared whole L4 GPUs")


def test_max_pods_and_shares_are_held_to_what_a_node_runs():
    """g6.xlarge runs 58 pods (docs/facts.md §11); a NodePool's nodes run 8 DaemonSets (7 + the Pod Identity
    agent Karpenter brings): maxPods 30 leaves 22 workload pods, so 23 shares of one GPU are refused."""
    def pool(**keys):
        return {"name": "k", "instanceTypes": ["g6.xlarge"], "maxNodes": 2, **keys}

    assert error(strategy="none", pools=[pool(instanceTypes=["g6.xlarge", "g6.12xlarge"], maxPods=100)]) == (
        f"{NS}karpenter.nodePools[0].maxPods: 100 is not valid: at most the pod limit of every instance type of the "
        "pool: g6.xlarge (58); the VPC CNI gives every pod an address of the node's network interfaces (EKS's limit "
        "per type) and this program does not turn on prefix delegation, so pods beyond it would never get an address")
    assert error(strategy="none", pools=[pool(maxPods=30, sharing={"timeSlicing": {"replicas": 23}})]) == (
        f"{NS}karpenter.nodePools[0].sharing.timeSlicing.replicas: 23 is not valid: at most 22: a node of g6.xlarge "
        "runs at most 30 pods (the NodePool's maxPods), 8 of them DaemonSets, so more than 22 shares of one GPU or "
        "MIG slice could never all be held at once")
    assert stack(strategy="none", pools=[pool(maxPods=30, sharing={"timeSlicing": {"replicas": 22, "renameByDefault": True}})]
                 ).pool("k").per_node == {"nvidia.com/gpu.shared": 22}
    # the type with the fewest pods decides: g6.xlarge's 58 - 8 = 50, not g6.12xlarge's 234 - 8
    assert "at most 50: a node of g6.xlarge runs at most 58 pods (EKS's limit for its network interfaces)" in error(
        strategy="none", pools=[pool(instanceTypes=["g6.12xlarge", "g6.xlarge"],
                                     sharing={"timeSlicing": {"replicas": 51}})])
    # a maxPods at the DaemonSets' count leaves no room for a workload pod
    assert error(strategy="none", pools=[pool(maxPods=8)]).startswith(
        f"{NS}karpenter.nodePools[0].maxPods: 8 is not valid: more than the 8 DaemonSet pods every node of the pool "
        "runs (aws-node (VPC CNI), kube-proxy, eks-pod-identity-agent, ")


def test_what_a_pools_nodes_carry_and_advertise():
    s = stack(groups=[{"name": "p4d", "instanceType": "p4d.24xlarge", "migLayout": "all-balanced",
                       "capacityType": "SPOT", "sharing": {"timeSlicing": {"replicas": 2,
                                                                           "resources": ["nvidia.com/mig-1g.5gb"]}}}],
              pools=[{"name": "g6", "instanceTypes": ["g6.12xlarge", "g6.xlarge"], "maxNodes": 3,
                      "capacityTypes": ["spot", "on-demand"], "migLayout": "all-disabled"},
                     {"name": "od", "instanceTypes": ["g6.xlarge"], "maxNodes": 1}])
    p4d, g6, od = s.pools
    assert p4d.labels == {"gpu-slicing/pool": "p4d", "nvidia.com/mig.config": "all-balanced",
                          "nvidia.com/device-plugin.config": "ts-mig-1g.5gb-x2"}
    assert g6.labels == {"gpu-slicing/pool": "g6"} and p4d.taints == g6.taints == [TAINT]
    # 16 x 1g.5gb shared twice (docs/facts.md §1.6, §3)
    assert dict(p4d.per_node) == {"nvidia.com/mig-1g.5gb": 32, "nvidia.com/mig-2g.10gb": 8,
                                  "nvidia.com/mig-3g.20gb": 8, GPU: 0}
    # a NodePool's per-node figure is what its smallest type gives; its largest type is the roomiest
    assert dict(g6.per_node) == {GPU: 1} and {t: dict(v) for t, v in g6.per_instance_type.items()} == {
        "g6.12xlarge": {GPU: 4}, "g6.xlarge": {GPU: 1}}
    assert g6.largest.name == "g6.12xlarge" and g6.instance_type.name == "g6.12xlarge"
    assert (p4d.kind, p4d.key, g6.kind, g6.key) == ("nodeGroup", f"{NS}nodeGroups[0]", "nodePool",
                                                    f"{NS}karpenter.nodePools[0]")
    assert (p4d.capacity_type, g6.capacity_type, od.capacity_type) == ("spot", "spot", "on-demand")
    assert (g6.nodes_min, g6.nodes_desired, g6.nodes_max) == (0, 0, 3)
    # 737 and 234 / 58 pods (docs/facts.md §11) less 9 and 8 DaemonSets (the MIG manager on p4d only)
    assert p4d.pods_per_node == {"p4d.24xlarge": 728} and g6.pods_per_node == {"g6.12xlarge": 226, "g6.xlarge": 50}


@pytest.mark.parametrize("strategy, sharing, workload, resource, requested", [
    # mixed: a profile is its own MIG resource; single: every slice is nvidia.com/gpu (docs/facts.md §2)
    ("mixed", None, {"profile": "1g.5gb", "replicas": 4}, "nvidia.com/mig-1g.5gb", 4),
    ("single", None, {"profile": "1g.5gb", "replicas": 4}, GPU, 4),
    # a shared resource renamed by renameByDefault is asked for as <resource>.shared (device plugin README)
    ("mixed", {"timeSlicing": {"replicas": 2, "renameByDefault": True}}, {"profile": "1g.5gb", "replicas": 3},
     "nvidia.com/mig-1g.5gb.shared", 3),
    ("mixed", {"timeSlicing": {"replicas": 2, "renameByDefault": True, "resources": ["nvidia.com/mig-2g.10gb"]}},
     {"profile": "1g.5gb", "replicas": 3}, "nvidia.com/mig-1g.5gb", 3),
])
def test_the_resource_a_workload_is_planned_against(strategy, sharing, workload, resource, requested):
    layout = "all-1g.5gb" if strategy == "single" else "all-balanced"
    s = stack(strategy=strategy, groups=[{"name": "p4d", "instanceType": "p4d.24xlarge", "migLayout": layout,
                                          **({"sharing": sharing} if sharing else {})}],
              workloads=[{"name": "w", "pool": "p4d", **workload}])
    (w,) = s.capacity.workloads
    assert (w.resource, w.requested) == (resource, requested)


def test_whole_gpu_workloads_ask_for_their_gpus():
    s = stack(strategy="none", groups=[{"name": "g6", "instanceType": "g6.12xlarge", "desiredSize": 2,
                                        "maxSize": 2, "minSize": 2}],
              workloads=[{"name": "two", "gpus": 2, "replicas": 3, "pool": "g6"},
                         {"name": "one", "gpus": 1, "replicas": 2, "pool": "g6"}])
    two, one = s.capacity.workloads
    assert (two.resource, two.requested, one.resource, one.requested) == (GPU, 6, GPU, 2)


def test_a_node_pool_takes_a_custom_layout_of_the_stack():
    """A NodePool resolves a custom layout of the stack (its label is the name and a content hash); its pods get
    their GPUs from the device plugin (a NodePool cannot take DRA: the pinned Karpenter ignores claims)."""
    half = {"p4d-half": [{"devices": [0, 1, 2, 3], "profiles": {"1g.5gb": 7}}, {"devices": [4, 5, 6, 7]}]}
    s = stack(pools=[{"name": "k", "instanceTypes": ["p4d.24xlarge"], "maxNodes": 1, "migLayout": "p4d-half"}],
              migLayouts=half)
    k = s.pool("k")
    assert k.layout.custom and k.layout.name.startswith("p4d-half-") and k.allocation == "devicePlugin"
    assert dict(k.per_node) == {"nvidia.com/mig-1g.5gb": 28, GPU: 4}  # 4 GPUs x 7, 4 whole GPUs


def test_max_pods_up_to_the_eks_limit_and_above_the_daemon_sets():
    """maxPods may equal g6.xlarge's 58 (docs/facts.md §11): 58 - 8 DaemonSets = 50 workload pods a node."""
    s = stack(strategy="none", pools=[{"name": "k", "instanceTypes": ["g6.xlarge"], "maxNodes": 1, "maxPods": 58}])
    assert s.pool("k").pods_per_node == {"g6.xlarge": 50}
    assert error(strategy="none", pools=[{"name": "k", "instanceTypes": ["g6.xlarge"], "maxNodes": 1,
                                          "maxPods": 5}]).endswith(
        "nvidia-dcgm-exporter), or no workload pod ever starts there")


def test_dynamic_mig_is_refused_on_a_dra_pool_and_unknown_elsewhere():
    """The DRA driver's dynamic MIG cannot run beside the MIG manager; on A100 it cannot even switch MIG mode
    without a GPU reset (NVIDIA's driver MIG guide). On a device-plugin pool "dynamic" is no layout at all."""
    cluster = {"name": "t", "publicAccessCidrs": ["0.0.0.0/0"], "kubernetesVersion": "1.34"}
    with pytest.raises(ConfigError) as e:
        stack(groups=[{"name": "p4d", "instanceType": "p4d.24xlarge", "migLayout": "dynamic", "allocation": "dra"}],
              cluster=cluster)
    assert (e.value.key, e.value.value) == (f"{NS}nodeGroups[0].migLayout", "dynamic")
    assert "A100-SXM4-40GB (Ampere) cannot turn MIG mode on without a GPU reset" in e.value.allowed
    with pytest.raises(ConfigError) as e:
        stack(groups=[{"name": "p4d", "instanceType": "p4d.24xlarge", "migLayout": "dynamic"}], cluster=cluster)
    assert (e.value.key, e.value.value) == (f"{NS}nodeGroups[0].migLayout", "dynamic")
    assert e.value.allowed.startswith("a layout for p4d.24xlarge (A100-SXM4-40GB): all-disabled, ")


def test_sharing_errors_name_the_pools_own_key():
    p4d = {"name": "p4d", "instanceType": "p4d.24xlarge", "migLayout": "all-balanced"}
    with pytest.raises(ConfigError) as e:
        stack(groups=[{**p4d, "sharing": {"timeslicing": {"replicas": 2}}}])
    assert e.value.key == f"{NS}nodeGroups[0].sharing"
    with pytest.raises(ConfigError) as e:  # all-balanced under mixed advertises no nvidia.com/gpu (docs/facts.md §1.9)
        stack(pools=[{"name": "k", "instanceTypes": ["p4d.24xlarge"], "maxNodes": 1, "migLayout": "all-balanced",
                      "sharing": {"timeSlicing": {"replicas": 2, "resources": ["nvidia.com/gpu"]}}}])
    assert e.value.key == f"{NS}karpenter.nodePools[0].sharing.timeSlicing.resources"
