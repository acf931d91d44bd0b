"""Pods per node: EKS's limit per instance type, the DaemonSets the stack runs on a pool, what the planner
and the cost guard make of them, and how spot pools are priced. Expected figures are docs/facts.md §11's and hand
computations in the comments, not the program's output."""
from __future__ import annotations

import pytest

from gpu_slicing import capacity, catalog, karpenter
from gpu_slicing.capacity import PoolCapacity, WorkloadDemand, plan_capacity
from gpu_slicing.errors import ConfigError
from gpu_slicing.pools import resolve_pools
from gpu_slicing.stack import parse_config

NS = "gpu-slicing:"
SLICE = "nvidia.com/mig-1g.5gb"
# docs/facts.md §11 (awslabs/amazon-eks-ami eni-max-pods.txt, default network card only)
FACTS_MAX_PODS = {"p4d.24xlarge": 737, "p4de.24xlarge": 737, "p5.48xlarge": 100, "p5e.48xlarge": 100,
                  "p5en.48xlarge": 198, "p5.4xlarge": 118, "p6-b200.48xlarge": 198, "p6-b300.48xlarge": 198,
                  "g5.xlarge": 58, "g6f.large": 20}


@pytest.mark.parametrize("itype, pods", FACTS_MAX_PODS.items())
def test_the_eks_pod_limit_is_the_eni_formula_of_facts(itype, pods):
    assert catalog.eni_max_pods(itype) == pods
    assert catalog.max_pods_source(itype) == catalog.MAX_PODS_SOURCE


def test_every_catalog_type_has_a_pod_limit_and_says_where_it_comes_from():
    for name in catalog.INSTANCE_TYPES:
        assert catalog.eni_max_pods(name) >= 20, name
        source = catalog.max_pods_source(name)
        assert source == catalog.MAX_PODS_SOURCE or (name.startswith("g7e.") and "UNCONFIRMED" in source), name
    # unconfirmed rows are never above the confirmed figure of the g6e size with as many vCPUs
    for size in ("2xlarge", "4xlarge", "8xlarge", "12xlarge", "24xlarge", "48xlarge"):
        assert catalog.eni_max_pods(f"g7e.{size}") <= catalog.eni_max_pods(f"g6e.{size}")


def stack(**keys) -> dict:
    base = {NS + "maxGpuNodes": 20, NS + "cluster": {"name": "t", "publicAccessCidrs": ["0.0.0.0/0"]}}
    return {**base, **{NS + k: v for k, v in keys.items()}}


def pools_of(raw: dict):
    return {p.name: p for p in resolve_pools(parse_config(raw))}


def test_the_daemon_sets_are_what_the_stack_deploys():
    ts = {"name": "g5", "instanceType": "g5.xlarge", "sharing": {"timeSlicing": {"replicas": 4}}}
    mps = {"name": "g6", "instanceType": "g6.xlarge", "sharing": {"mps": {"replicas": 4}}}
    mig = {"name": "p4d", "instanceType": "p4d.24xlarge", "migLayout": "all-balanced"}
    plain = pools_of(stack(nodeGroups=[ts, mps, mig], gpuOperator={"migStrategy": "mixed"}))
    base = ["aws-node (VPC CNI)", "kube-proxy", "gpu-operator-node-feature-discovery-worker",
            "nvidia-operator-validator", "nvidia-device-plugin-daemonset", "gpu-feature-discovery",
            "nvidia-dcgm-exporter"]
    assert list(plain["g5"].daemon_sets) == base
    assert list(plain["g6"].daemon_sets) == base + ["nvidia-device-plugin-mps-control-daemon"]
    assert list(plain["p4d"].daemon_sets) == base + ["nvidia-mig-manager"]
    full = pools_of(stack(nodeGroups=[mig], karpenter={"enabled": True}, observability={"enabled": True}))
    assert len(full["p4d"].daemon_sets) == 10  # + eks-pod-identity-agent and prometheus-node-exporter
    assert {"eks-pod-identity-agent", "prometheus-node-exporter"} <= set(full["p4d"].daemon_sets)
    # 737 - 10 = 727 workload pods per p4d node (the dev stack's)
    assert full["p4d"].pods_per_node == {"p4d.24xlarge": 727}
    existing = pools_of(stack(nodeGroups=[mig], observability={"enabled": True, "prometheusOperator": "existing"}))
    assert "prometheus-node-exporter" not in existing["p4d"].daemon_sets


def test_time_slicing_shares_beyond_what_a_node_can_run_are_refused():
    """g5.xlarge: 58 pods, 7 DaemonSets: 51 shares of its one GPU at most."""
    def group(replicas):
        return stack(gpuOperator={"migStrategy": "none"},
                     nodeGroups=[{"name": "g5", "instanceType": "g5.xlarge",
                                  "sharing": {"timeSlicing": {"replicas": replicas}}}])
    assert pools_of(group(51))["g5"].per_node == {"nvidia.com/gpu": 51}
    with pytest.raises(ConfigError) as e:
        pools_of(group(52))
    assert e.value.key == NS + "nodeGroups[0].sharing.timeSlicing.replicas" and "at most 51" in str(e.value)


def nodepool(**keys) -> dict:
    return stack(gpuOperator={"migStrategy": "none"}, karpenter={"enabled": True, "nodePools": [
        {"name": "g6", "instanceTypes": ["g6.xlarge", "g6.12xlarge"], "maxNodes": 2, **keys}]})


def test_max_pods_overrides_the_limit_within_it_and_renders_to_the_node_class():
    # g6.xlarge 58 and g6.12xlarge 234 pods; 8 DaemonSets (Karpenter brings the Pod Identity agent)
    p = pools_of(nodepool(maxPods=40))["g6"]
    assert p.pods_per_node == {"g6.xlarge": 32, "g6.12xlarge": 32}
    assert karpenter.node_class(p, "t", "v20261118", 200)["spec"]["kubelet"] == {"maxPods": 40}
    unset = pools_of(nodepool())["g6"]
    assert unset.pods_per_node == {"g6.xlarge": 50, "g6.12xlarge": 226}
    assert "kubelet" not in karpenter.node_class(unset, "t", "v20261118", 200)["spec"]
    with pytest.raises(ConfigError) as e:
        pools_of(nodepool(maxPods=59))  # above g6.xlarge's 58
    assert e.value.key == NS + "karpenter.nodePools[0].maxPods" and "g6.xlarge (58)" in str(e.value)
    with pytest.raises(ConfigError) as e:
        pools_of(nodepool(maxPods=8))  # the 8 DaemonSets alone
    assert e.value.key == NS + "karpenter.nodePools[0].maxPods" and "more than the 8 DaemonSet pods" in str(e.value)


def test_the_cost_guard_counts_physical_gpus_not_shares():
    """limits of maxNodes 3 x g5g.2xlarge: 24 vCPUs, 48 GiB, 3 GPUs; g5g.xlarge (4 vCPUs, 8 GiB, 1 GPU) fits
    min(6, 6, 3) = 3 times, not the 6 that shares-as-GPUs (a GPU limit of 12) would admit."""
    raw = stack(gpuOperator={"migStrategy": "none"}, karpenter={"enabled": True, "nodePools": [
        {"name": "g5g", "instanceTypes": ["g5g.xlarge", "g5g.2xlarge"], "maxNodes": 3,
         "sharing": {"timeSlicing": {"replicas": 4, "renameByDefault": True}}}]})
    p = pools_of(raw)["g5g"]
    assert karpenter.node_limits(p) == {"nvidia.com/gpu": "3", "cpu": "24", "memory": "48Gi"}
    assert karpenter.pool_node_bound(p) == 3


def pool(kind="nodeGroup", nodes=(0, 1, 4), pods=20, daemon_sets=4, capacity_type="on-demand") -> PoolCapacity:
    """p4d under all-1g.5gb (56 slices), with a pod limit of `pods` of which `daemon_sets` are DaemonSets."""
    layout = catalog.named_layouts(catalog.A100_40GB)["all-1g.5gb"]
    return capacity.PoolCapacity(
        "p4d", kind, "p4d.24xlarge", layout.name, "mixed", *nodes, {SLICE: 56}, mig_layout=layout,
        pod_limit={"p4d.24xlarge": pods}, daemon_sets=tuple(f"ds{i}" for i in range(daemon_sets)),
        capacity_type=capacity_type)


def test_a_node_group_runs_no_more_pods_than_its_limit_allows():
    """16 workload pods per node (20 - 4): 40 one-slice pods on 1 desired node leave 24 Pending though 56
    slices are there; ceil(40 / 16) = 3 nodes hold them."""
    plan = plan_capacity([pool()], [WorkloadDemand("w", SLICE, 1, 40, "p4d")])
    (w,) = plan.workloads
    assert (w.level, w.field, w.capacity) == ("error", "desiredSize", 16)
    assert "24 pods would stay Pending" in w.message and "4 of them DaemonSets, so 16 workload pods" in w.message
    assert "raise desiredSize of p4d to 3" in w.suggestion
    assert "16 of 20" in plan.format_table()


def test_the_pod_limit_is_shared_by_every_workload_of_a_node():
    """all-balanced p4d (16 x 1g.5gb, 8 x 2g.10gb, 8 x 3g.20gb) with 16 workload pods per node: 10 + 8 pods of
    two resources fit their slices but not the node's pods: 18 - 16 = 2 of the second stay Pending."""
    balanced = catalog.named_layouts(catalog.A100_40GB)["all-balanced"]
    p = capacity.PoolCapacity("p4d", "nodeGroup", "p4d.24xlarge", balanced.name, "mixed", 1, 1, 1,
                              {SLICE: 16, "nvidia.com/mig-2g.10gb": 8, "nvidia.com/mig-3g.20gb": 8},
                              mig_layout=balanced, pod_limit={"p4d.24xlarge": 20}, daemon_sets=("a", "b", "c", "d"))
    plan = plan_capacity([p], [WorkloadDemand("small", SLICE, 1, 10, "p4d"),
                               WorkloadDemand("medium", "nvidia.com/mig-2g.10gb", 1, 8, "p4d")])
    small, medium = plan.workloads
    assert small.level == "ok" and medium.level == "error"
    assert "2 pods would stay Pending" in medium.message and "8/node but 16 pods/node" in medium.message


def test_a_workload_no_pool_can_hold_names_its_replicas():
    """1000 pods at 16 per node need ceil(1000 / 16) = 63 nodes; with at most 50 per pool none holds them."""
    plan = plan_capacity([pool("nodePool", (0, 0, 4))], [WorkloadDemand("w", SLICE, 1, 1000, "p4d")],
                         max_pool_nodes=50)
    (w,) = plan.workloads
    assert (w.level, w.field) == ("error", "replicas")
    assert w.suggestion.startswith("no pool holds them: they need at least 63 nodes, more than the 50")
    fits = plan_capacity([pool("nodePool", (0, 0, 4))], [WorkloadDemand("w", SLICE, 1, 1000, "p4d")],
                         max_pool_nodes=63)
    assert fits.workloads[0].field == "maxNodes" and "raise maxNodes of p4d to 63" in fits.workloads[0].suggestion


def test_karpenter_launches_nodes_for_pods_not_only_for_slices():
    """40 pods at 16 per node: 3 p4d nodes (not the 1 that 56 slices suggest), 3 x 21.96 = 65.88 USD/h."""
    plan = plan_capacity([pool("nodePool", (0, 0, 4))], [WorkloadDemand("w", SLICE, 1, 40, "p4d")])
    (w,), (r,) = plan.workloads, plan.pools
    assert w.level == "ok" and (r.launch.nodes, r.nodes_needed) == (3, 3)
    assert r.launch.usd_per_hour == pytest.approx(65.88)
    doc = plan.to_json()["pools"][0]["pods"]
    assert (doc["forWorkloadsPerNode"], doc["wanted"], doc["available"]) == (16, 40, 64)


def test_spot_pools_are_priced_from_the_stack_or_not_at_all():
    work = [WorkloadDemand("w", SLICE, 1, 10, "p4d")]
    spot = plan_capacity([pool(capacity_type="spot")], work)
    (r,) = spot.pools
    assert (r.launch.basis, r.launch.priced, spot.usd_per_hour) == (capacity.SPOT_UNPRICED, False, 0.0)
    assert spot.to_json()["pools"][0]["usdPerHour"] is None and spot.to_json()["unpricedPools"] == ["p4d"]
    assert "p4d runs spot nodes and is not priced" in spot.format_table()
    priced = plan_capacity([pool(capacity_type="spot")], work, prices={"p4d.24xlarge": 7.5})
    assert (priced.pools[0].launch.basis, priced.usd_per_hour) == (capacity.STACK_PRICE, 7.5)
    on_demand = plan_capacity([pool()], work)
    assert (on_demand.pools[0].launch.basis, on_demand.usd_per_hour) == (capacity.ON_DEMAND_LIST, 21.96)


def test_the_docs_pod_table_lists_every_catalog_type_with_its_limit():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text()
    table = text[text.index("### Pods per node, per instance type"):]
    rows = {cells[1].strip(): cells for line in table.splitlines()
            if line.startswith("| ") and len(cells := line.split("|")) == 6}
    for name in catalog.INSTANCE_TYPES:
        assert name in rows, name
        enis, addresses = (int(x) for x in rows[name][2].split(" x "))
        assert int(rows[name][3]) == enis * (addresses - 1) + 2 == catalog.eni_max_pods(name), name
    for itype, pods in FACTS_MAX_PODS.items():
        assert int(rows[itype][3]) == pods


def test_the_plan_says_which_vcpu_quota_the_gpu_nodes_need():
    """The dev stack's shape: 1 desired p4d (max 3) and a NodePool (max 4 p4d) that launches 1 for its pods:
    2 x 96 = 192 P-instance vCPUs now, 3 x 96 + 4 x 96 = 672 at most; a spot pool counts against spot's quota."""
    group = pool(nodes=(1, 1, 3), pods=737, daemon_sets=10)
    karp = capacity.PoolCapacity("small", "nodePool", "p4d.24xlarge", "all-1g.5gb", "mixed", 0, 0, 4, {SLICE: 56},
                                 mig_layout=catalog.named_layouts(catalog.A100_40GB)["all-1g.5gb"])
    g5 = capacity.PoolCapacity("g5", "nodeGroup", "g5.xlarge", "all-disabled", "none", 2, 2, 2,
                               {"nvidia.com/gpu": 1}, capacity_type="spot")
    plan = plan_capacity([group, karp, g5], [WorkloadDemand("w", SLICE, 1, 56, "small")])
    assert plan.vcpu_quotas == {"Running On-Demand P instances": {"now": 192, "atMost": 672},
                                "All G and VT Spot Instance Requests": {"now": 8, "atMost": 8}}
    assert 'EC2 quota "Running On-Demand P instances": 192 vCPUs' in plan.format_table()


def test_the_pod_limit_that_stops_a_workload_is_named_with_its_source():
    """A NodePool of g6.xlarge (58 pods, docs/facts.md §11) and g6.12xlarge (234), time-sliced to 60 and 240 shares,
    8 DaemonSets: the roomiest type runs 226 workload pods, so 300 one-share pods on at most 1 node leave 74
    Pending, and 2 nodes hold them. With maxPods 40 on both types the NodePool's maxPods is the limit."""
    def g6(limits):
        return capacity.PoolCapacity("g6", "nodePool", "g6.12xlarge", "all-disabled", "none", 0, 0, 1,
                                     {"nvidia.com/gpu": 60},
                                     per_type={"g6.xlarge": {"nvidia.com/gpu": 60}, "g6.12xlarge": {"nvidia.com/gpu": 240}},
                                     pod_limit=limits, daemon_sets=tuple(f"ds{i}" for i in range(8)))

    plan = plan_capacity([g6({"g6.xlarge": 58, "g6.12xlarge": 234})], [WorkloadDemand("w", "nvidia.com/gpu", 1, 300, "g6")])
    (w,) = plan.workloads
    assert w.message.split(". Suggestion: ")[0] == (
        "does not fit: needs 300 x 1 nvidia.com/gpu = 300, 226 free (g6: 240/node but 226 pods/node x 1 max); 74 pods "
        "would stay Pending (Karpenter launches no more than the NodePool's maxNodes; a node of g6.12xlarge runs at "
        "most 234 pods (EKS's limit for its network interfaces), 8 of them DaemonSets, so 226 workload pods per node "
        "on g6)")
    assert w.suggestion == ("raise maxNodes of g6 to 2 (a node gives 240 nvidia.com/gpu per node; that holds every "
                            "workload of g6)")
    assert plan.errors == [capacity.Finding("w", "error", w.message, "maxNodes", "g6")]
    (w,) = plan_capacity([g6({"g6.xlarge": 40, "g6.12xlarge": 40})],
                         [WorkloadDemand("w", "nvidia.com/gpu", 1, 300, "g6")]).workloads
    assert "(Karpenter launches no more than the NodePool's maxNodes; a node of g6.xlarge runs at most 40 pods (the " \
           "NodePool's maxPods), 8 of them DaemonSets, so 32 workload pods per node on g6)" in w.message
    # a workload whose pool does not exist is a finding with no pool
    plan = plan_capacity([g6({})], [WorkloadDemand("x", "nvidia.com/gpu", 1, 1, "nope")])
    assert plan.errors == [capacity.Finding("x", "error", "pool nope does not exist (pools: g6)", "pool", None)]
