"""What nodes advertise and whether workloads fit: expected values come from the facts (docs/facts.md, tests/facts.py), not from the code."""
from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
from hypothesis import given, settings, strategies as st

from gpu_slicing import catalog
from gpu_slicing.advertise import node_resources
from gpu_slicing.capacity import PoolCapacity, WorkloadDemand, plan_capacity
from gpu_slicing.scheduling import blocks, taint_effect, tolerates
from gpu_slicing.errors import ConfigError
from gpu_slicing.layouts import parse_custom_layouts
from gpu_slicing.sharing import parse_sharing
from facts import BALANCED, FACTS_GPUS, FACTS_PROFILES

GPU = "nvidia.com/gpu"
TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
TOLERATE = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def mig(profile: str) -> str:
    return "nvidia.com/mig-" + profile.replace("+", ".")


def expected_mixed(itype: str, layout: str) -> dict[str, int]:
    """docs/facts.md §2: per-GPU counts x GPUs; nvidia.com/gpu counts the GPUs with MIG off."""
    gpu, n = FACTS_GPUS[itype]
    if layout == "all-disabled":
        return {GPU: n}
    if layout == "all-enabled":
        return {GPU: 0}
    if layout == "all-balanced":
        per_gpu = BALANCED[gpu]
    else:
        (per_gpu,) = [{p: s.max_count} for p, s in FACTS_PROFILES[gpu].items()
                      if layout == "all-" + p.replace("+", ".")]
    return {**{mig(p): c * n for p, c in per_gpu.items()}, GPU: 0}


def layout(itype: str, name: str) -> catalog.MigLayout:
    return catalog.named_layouts(catalog.instance_type(itype).gpu)[name]


CASES = [(t, name) for t in ("p4d.24xlarge", "p5.48xlarge", "p5e.48xlarge")
         for name in catalog.named_layouts(catalog.instance_type(t).gpu)]


@pytest.mark.parametrize("itype, name", CASES)
def test_every_named_layout_mixed(itype, name):
    assert node_resources(itype, layout(itype, name), "mixed") == expected_mixed(itype, name)


@pytest.mark.parametrize("itype, name", CASES)
def test_every_named_layout_single(itype, name):
    """single: one profile on every GPU, all advertised as nvidia.com/gpu; anything else is an error."""
    mixed = expected_mixed(itype, name)
    migs = {r: n for r, n in mixed.items() if r != GPU}
    if name == "all-disabled":
        assert node_resources(itype, layout(itype, name), "single") == {GPU: FACTS_GPUS[itype][1]}
    elif len(migs) == 1:
        assert node_resources(itype, layout(itype, name), "single") == {GPU: sum(migs.values())}
    else:
        with pytest.raises(ConfigError, match="the mixed strategy"):
            node_resources(itype, layout(itype, name), "single")


@pytest.mark.parametrize("itype, name", CASES)
def test_every_named_layout_none(itype, name):
    if name == "all-disabled":
        assert node_resources(itype, layout(itype, name), "none") == {GPU: 8}
    else:
        with pytest.raises(ConfigError, match="all-disabled"):
            node_resources(itype, layout(itype, name), "none")


def test_the_guides_numbers():
    """docs/facts.md §1.6: all-balanced p4d is 16/8/8 and nvidia.com/gpu 0; 56 is the all-1g.5gb figure."""
    assert node_resources("p4d.24xlarge", layout("p4d.24xlarge", "all-balanced"), "mixed") == {
        "nvidia.com/mig-1g.5gb": 16, "nvidia.com/mig-2g.10gb": 8, "nvidia.com/mig-3g.20gb": 8, GPU: 0}
    assert node_resources("p4d.24xlarge", layout("p4d.24xlarge", "all-1g.5gb"), "mixed")[mig("1g.5gb")] == 7 * 8


def test_custom_layouts_and_the_single_strategy():
    custom = parse_custom_layouts({
        "half": [{"devices": [0, 1, 2, 3], "profiles": {"1g.5gb": 7}}, {"devices": [4, 5, 6, 7]}],
        "same": [{"devices": [0, 1, 2, 3], "profiles": {"3g.20gb": 2}},
                 {"devices": [4, 5, 6, 7], "profiles": {"3g.20gb": 2}}],
        "two": [{"devices": [0, 1, 2, 3], "profiles": {"3g.20gb": 2}},
                {"devices": [4, 5, 6, 7], "profiles": {"7g.40gb": 1}}]})
    assert node_resources("p4d.24xlarge", custom["half"], "mixed") == {mig("1g.5gb"): 28, GPU: 4}
    assert node_resources("p4d.24xlarge", custom["same"], "single") == {GPU: 16}
    for name in ("half", "two"):
        with pytest.raises(ConfigError) as e:
            node_resources("p4d.24xlarge", custom[name], "single", key="gpu-slicing:nodeGroups[0]")
        assert e.value.key == "gpu-slicing:nodeGroups[0].migLayout" and "GPU 0-3" in e.value.allowed
    with pytest.raises(ConfigError, match="one of none, single, mixed"):
        node_resources("p4d.24xlarge", custom["same"], "mixd")
    with pytest.raises(ConfigError, match="has no GPU"):  # checked against the instance: g5.12xlarge has 4
        node_resources("g5.12xlarge", parse_custom_layouts({"x": [{"devices": [0, 1, 2, 3, 4]}]})["x"], "none")


# --- the plan ---------------------------------------------------------------------------------------

def pool(name="p4d", layout_name="all-balanced", nodes=(1, 1, 3), itype="p4d.24xlarge", kind="nodeGroup",
         strategy="mixed", labels=None, taints=(TAINT,), sharing=None) -> PoolCapacity:
    return PoolCapacity.from_layout(name, kind, itype, layout(itype, layout_name), strategy, *nodes,
                                    labels={"gpu-slicing/pool": name, **(labels or {})}, taints=list(taints),
                                    sharing=parse_sharing(sharing, "k"))


def demand(name="w", resource=mig("1g.5gb"), replicas=1, per=1, pool_name=None, selector=None,
           tolerations=TOLERATE) -> WorkloadDemand:
    return WorkloadDemand(name, resource, per, replicas, pool_name, selector or {}, tolerations)


def test_the_guides_56_on_all_balanced_never_fits_and_the_suggestion_fits():
    """docs/facts.md §1.6: one desired node x 16 < 56; all-1g.5gb gives 7 x 8 = 56 on one node; or 4 nodes (4 x 16)."""
    plan = plan_capacity([pool()], [demand(replicas=56, pool_name="p4d")])
    (w,) = plan.workloads
    assert (w.fits, w.level, w.capacity, w.requested, w.field) == (False, "error", 16, 56, "desiredSize")
    assert w.suggestion.startswith("layout all-1g.5gb on p4d: all-1g.5gb gives 56 nvidia.com/mig-1g.5gb per node")
    assert "raise desiredSize of p4d to 4 (and maxSize to 4)" in w.suggestion
    assert [str(e) for e in plan.errors] == [f"workload w: {w.message}"] and plan.errors[0].field == "desiredSize"


def test_nothing_scales_a_node_group_so_max_size_does_not_help():
    """docs/facts.md §10: a node group runs desiredSize nodes; maxSize 4 holds 64 slices but only 16 exist."""
    plan = plan_capacity([pool(nodes=(1, 1, 4))], [demand(replicas=20)])
    (w,) = plan.workloads
    assert (w.level, w.capacity, w.field) == ("error", 16, "desiredSize")
    assert "nothing scales a managed node group" in w.message
    assert "raise desiredSize of p4d to 2 (" in w.suggestion and "maxSize" not in w.suggestion.split(";")[-1]
    assert [(e.workload, e.field) for e in plan.errors] == [("w", "desiredSize")]  # an error, not a warning


def test_fits_at_desired_is_ok():
    plan = plan_capacity([pool(nodes=(1, 2, 3))], [demand(replicas=32)])
    assert plan.workloads[0].level == "ok" and not plan.errors
    assert "32 free on the 2 desired node(s)" in plan.workloads[0].message


def test_workloads_on_one_pool_and_resource_share_it():
    plan = plan_capacity([pool(nodes=(2, 2, 3))], [demand("a", replicas=20), demand("b", replicas=20),
                                                   demand("c", resource=mig("3g.20gb"), replicas=16)])
    a, b, c = plan.workloads
    assert a.level == "ok" and a.capacity == 32
    assert b.level == "error" and b.capacity == 32 - 20 and "shared with a takes 20" in b.message
    assert c.level == "ok"  # 3g.20gb slices are separate: 8 per node x 2
    util = plan.to_json()["pools"][0]["utilization"]["resources"]
    assert util[mig("1g.5gb")] == {"requested": 40, "available": 32}


def test_a_suggestion_never_strands_the_pools_other_workloads():
    """20 x 1g.5gb and 8 x 3g.20gb on one all-balanced p4d: all-1g.5gb (56 x 1g.5gb) would fit the first
    and strand the second; only layouts that hold both (or more nodes) are suggested."""
    plan = plan_capacity([pool()], [demand("small", replicas=20, pool_name="p4d"),
                                    demand("big", resource=mig("3g.20gb"), replicas=8, pool_name="p4d")])
    small = plan.workloads[0]
    assert small.level == "error"
    assert "all-1g.5gb" not in small.suggestion
    assert "raise desiredSize of p4d to 2" in small.suggestion
    assert plan.workloads[1].level == "ok"


def test_node_pools_scale_from_zero_and_the_plan_says_how_many_nodes_karpenter_launches():
    """A NodePool starts empty; Karpenter launching nodes for pending pods is its normal path, not a
    warning. all-balanced gives 16 x 1g.5gb per p4d: 8 pods need 1 node, 20 need 2, 40 exceed 2 nodes."""
    pools = [pool("gpu", kind="nodePool", nodes=(0, 0, 2))]
    plan = plan_capacity(pools, [demand(replicas=8)])
    (w,) = plan.workloads
    assert w.level == "ok" and "Karpenter launches up to 1 node(s) of gpu" in w.message
    assert (plan.pools[0].launch.nodes, plan.pools[0].launch.instance_type) == (1, "p4d.24xlarge")
    plan = plan_capacity(pools, [demand(replicas=20)])
    assert plan.workloads[0].level == "ok" and plan.pools[0].launch.nodes == 2
    (w,) = plan_capacity(pools, [demand(replicas=40)]).workloads
    assert (w.level, w.capacity, w.field) == ("error", 32, "maxNodes")


def test_a_node_pool_of_several_sizes_is_planned_per_instance_type():
    """g5.xlarge has 1 A10G, g5.12xlarge 4: a 4-GPU pod fits the larger type (Karpenter launches it);
    1-GPU pods go on the cheapest type that holds them."""
    per_type = {"g5.xlarge": {GPU: 1}, "g5.12xlarge": {GPU: 4}}
    mixed = PoolCapacity("g5", "nodePool", "g5.12xlarge", "all-disabled", "none", 0, 0, 2, {GPU: 1},
                         {"gpu-slicing/pool": "g5"}, (TAINT,), per_type=per_type)
    plan = plan_capacity([mixed], [demand("big", resource=GPU, per=4, replicas=2)])
    assert plan.workloads[0].level == "ok"
    assert (plan.pools[0].launch.instance_type, plan.pools[0].launch.nodes) == ("g5.12xlarge", 2)
    plan = plan_capacity([mixed], [demand("small", resource=GPU, per=1, replicas=2)])
    # 2 x g5.xlarge (1.01 USD/h each in the catalog) is cheaper than 1 x g5.12xlarge (5.67)
    assert (plan.pools[0].launch.instance_type, plan.pools[0].launch.nodes) == ("g5.xlarge", 2)
    w = plan_capacity([mixed], [demand("huge", resource=GPU, per=5, replicas=1)]).workloads[0]
    assert (w.level, w.field) == ("error", "gpus") and "its largest node has 4" in w.message


def test_cost_per_pool_and_for_the_stack_follows_the_nodes_that_will_exist():
    plan = plan_capacity([pool(nodes=(1, 2, 3)), pool("k", kind="nodePool", nodes=(0, 0, 4))],
                         [demand("a", replicas=4, pool_name="p4d"), demand("b", replicas=20, pool_name="k")],
                         prices={"p4d.24xlarge": 20.0})
    assert [r.launch.usd_per_hour for r in plan.pools] == [40.0, 40.0]  # 2 desired; 2 launched for 20 pods
    assert plan.usd_per_hour == 80.0 and plan.to_json()["usdPerHour"] == 80.0
    assert "cost 80.00 USD per hour" in plan.format_table()


def test_selectors_and_taints_decide_which_pools_host():
    pools = [pool("a", labels={"team": "x"}), pool("b", taints=[TAINT, {"key": "dedicated", "value": "ml",
                                                                        "effect": "NO_SCHEDULE"}])]
    plan = plan_capacity(pools, [demand("sel", selector={"team": "x"}), demand("any", tolerations=[]),
                                 demand("both", tolerations=TOLERATE + [{"key": "dedicated", "value": "ml"}]),
                                 demand("missing", pool_name="nope")])
    sel, any_, both, missing = plan.workloads
    assert sel.pools == ("a",)
    assert any_.level == "error" and "taint nvidia.com/gpu=true:NoSchedule is not tolerated" in any_.message
    assert both.pools == ("a", "b")
    assert missing.level == "error" and "pool nope does not exist" in missing.message
    plan = plan_capacity(pools, [demand("typo", selector={"team": "y"})])
    assert "nodeSelector team=y does not match (node has team=x)" in plan.workloads[0].message


def test_tolerations_follow_kubernetes_matching():
    assert tolerates([{"operator": "Exists"}], TAINT)
    assert tolerates([{"key": "nvidia.com/gpu", "value": "true"}], TAINT)
    assert not tolerates([{"key": "nvidia.com/gpu", "value": "false"}], TAINT)
    assert not tolerates([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}], TAINT)


@pytest.mark.parametrize("tolerations, taint, tolerated", [
    # EKS's API spells the effect NO_SCHEDULE; Kubernetes' toleration says NoSchedule: the same effect
    ([{"key": "k", "operator": "Exists", "effect": "NoSchedule"}], {"key": "k", "effect": "NO_SCHEDULE"}, True),
    ([{"key": "k", "operator": "Exists", "effect": "NO_EXECUTE"}], {"key": "k", "effect": "NoExecute"}, True),
    ([{"key": "k", "operator": "Exists", "effect": "NoSchedule"}], {"key": "k", "effect": "NO_EXECUTE"}, False),
    # no effect on the toleration: every effect of the key
    ([{"key": "k", "operator": "Exists"}], {"key": "k", "value": "v", "effect": "NoExecute"}, True),
    # an empty key tolerates everything only with Exists; Equal with no key matches nothing
    ([{"operator": "Equal", "value": "v"}], {"key": "k", "value": "v", "effect": "NoSchedule"}, False),
    ([{"key": "", "operator": "Exists"}], {"key": "k", "value": "v", "effect": "NoSchedule"}, True),
    # Equal (the default operator) compares values; a missing value is the empty one on both sides
    ([{"key": "k"}], {"key": "k", "effect": "NoSchedule"}, True),
    ([{"key": "k"}], {"key": "k", "value": "v", "effect": "NoSchedule"}, False),
    ([{"key": "k", "operator": "Equal", "value": "v"}], {"key": "other", "value": "v", "effect": "NoSchedule"}, False),
    # a later toleration can match after an earlier one does not
    ([{"key": "x", "operator": "Exists"}, {"key": "k", "value": "v"}], {"key": "k", "value": "v"}, True),
    ([{"key": "k", "operator": "Exists", "effect": "NoExecute"}, {"key": "k", "operator": "Exists"}],
     {"key": "k", "effect": "NoSchedule"}, True),
    ([{"key": "", "operator": "Equal"}, {"key": "k", "operator": "Exists"}], {"key": "k", "effect": "NoSchedule"},
     True),
    ([], {"key": "k", "value": "v", "effect": "NoSchedule"}, False),
])
def test_toleration_matching_cases(tolerations, taint, tolerated):
    """Kubernetes docs, taints and tolerations: key, operator (Equal by default), value and effect."""
    assert tolerates(tolerations, taint) is tolerated


def test_which_taint_effects_keep_pods_off():
    """NoSchedule and NoExecute keep pods that do not tolerate them off a node; PreferNoSchedule only avoids it."""
    assert [blocks(e) for e in ("NoSchedule", "NO_SCHEDULE", "NoExecute", "NO_EXECUTE", "PreferNoSchedule",
                                "PREFER_NO_SCHEDULE", None, "")] == [True, True, True, True, False, False, False, False]
    assert [taint_effect(e) for e in ("NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE", "NoSchedule", None)] == [
        "NoSchedule", "NoExecute", "PreferNoSchedule", "NoSchedule", ""]
    # a PreferNoSchedule taint nobody tolerates leaves the pool eligible
    soft = pool(taints=[{"key": "spot", "value": "yes", "effect": "PREFER_NO_SCHEDULE"}])
    assert plan_capacity([soft], [demand(tolerations=[])]).workloads[0].level == "ok"


def test_constrained_workloads_are_placed_first():
    """A flexible workload listed first must not take the only pool a pinned one can use."""
    pools = [pool("a", nodes=(1, 1, 1)), pool("b", nodes=(1, 1, 1))]
    plan = plan_capacity(pools, [demand("flex", replicas=16), demand("pinned", replicas=16, pool_name="a")])
    assert [w.level for w in plan.workloads] == ["ok", "ok"]


def test_pinned_workloads_are_placed_before_a_flexible_one_that_would_take_their_room():
    """a and b hold 16 x 1g.5gb each; a flexible workload of 16 listed first would fill a (equal contention,
    first by position) and leave the pinned 8 on a Pending; placing pinned ones first fits all 32."""
    pools = [pool("a", nodes=(1, 1, 1)), pool("b", nodes=(1, 1, 1))]
    plan = plan_capacity(pools, [demand("flex", replicas=16), demand("on-a", replicas=8, pool_name="a"),
                                 demand("on-b", replicas=8, pool_name="b")])
    assert [w.level for w in plan.workloads] == ["ok", "ok", "ok"]


def test_pods_bigger_than_one_unit_fragment_nodes():
    """g5.48xlarge has 8 GPUs: 3-GPU pods fit 2 per node (6 of 8), so 2 nodes hold 4 pods, not 5."""
    pools = [pool("g5", "all-disabled", nodes=(2, 2, 2), itype="g5.48xlarge", strategy="none")]
    assert plan_capacity(pools, [demand(resource=GPU, per=3, replicas=4)]).workloads[0].level == "ok"
    w = plan_capacity(pools, [demand(resource=GPU, per=3, replicas=5)]).workloads[0]
    assert w.level == "error" and w.capacity == 12
    w = plan_capacity(pools, [demand(resource=GPU, per=9, replicas=1)]).workloads[0]
    assert (w.level, w.field) == ("error", "gpus") and "a node has 8 nvidia.com/gpu, a pod asks for 9" in w.message


def test_time_sliced_capacity_and_fail_requests_greater_than_one():
    shared = {"timeSlicing": {"replicas": 4, "resources": [mig("1g.5gb")]}}
    plan = plan_capacity([pool(sharing=shared)], [demand(replicas=56)])
    assert plan.workloads[0].level == "ok" and plan.workloads[0].capacity == 64
    strict = {"timeSlicing": {"replicas": 4, "resources": [mig("1g.5gb")], "failRequestsGreaterThanOne": True}}
    w = plan_capacity([pool(sharing=strict)], [demand(replicas=2, per=2)]).workloads[0]
    assert (w.level, w.field) == ("error", "gpus") and "failRequestsGreaterThanOne" in w.message
    assert w.suggestion is None  # more nodes or another layout cannot make a 2-share request admissible
    # one share a pod is what failRequestsGreaterThanOne admits: 64 of them fit (16 slices x 4)
    assert plan_capacity([pool(sharing=strict)], [demand(replicas=64)]).workloads[0].level == "ok"
    # a two-unit request on a pool that does not share that resource is plain packing (8 x 3g.20gb a node)
    assert plan_capacity([pool(sharing=strict)], [demand(resource=mig("3g.20gb"), per=2, replicas=4)]
                         ).workloads[0].level == "ok"


def test_an_mps_pod_asking_for_two_shares_is_told_to_ask_for_one():
    mps = pool("g6", "all-disabled", itype="g6.xlarge", strategy="mixed", sharing={"mps": {"replicas": 4}})
    w = plan_capacity([mps], [demand(resource=GPU, per=2)]).workloads[0]
    assert (w.level, w.field) == ("error", "gpus")
    assert "MPS" in w.message and "ask for 1" in w.message and "raise" not in w.message


def test_suggests_the_smallest_named_layout_that_fits():
    """10 x 1g.5gb on all-3g.20gb nodes: all-balanced (16 per node) already fits one node."""
    plan = plan_capacity([pool(layout_name="all-3g.20gb")], [demand(replicas=10)])
    (w,) = plan.workloads
    assert w.level == "error" and "advertises no nvidia.com/mig-1g.5gb" in w.message
    assert w.suggestion.startswith("layout all-balanced on p4d")


def test_json_shape_and_table():
    plan = plan_capacity([pool(nodes=(1, 2, 3)), pool("h", "all-3g.40gb", itype="p5.48xlarge")],
                         [demand(replicas=20), demand("big", resource=mig("3g.40gb"), replicas=4)])
    doc = json.loads(json.dumps(plan.to_json()))
    assert list(doc) == ["pools", "workloads", "usdPerHour", "unpricedPools", "vcpuQuotas"]
    p = doc["pools"][0]
    assert list(p) == ["name", "kind", "instanceType", "instanceTypes", "gpu", "gpusPerNode", "layout", "strategy",
                       "nodes", "launch", "usdPerHour", "priceBasis", "perNode", "perInstanceType", "pods",
                       "utilization"]
    assert (p["instanceType"], p["gpusPerNode"], p["nodes"]) == ("p4d.24xlarge", 8, {
        "min": 1, "desired": 2, "max": 3, "available": 2, "willExist": 2})
    assert p["perNode"] == expected_mixed("p4d.24xlarge", "all-balanced")
    # compute slices per GPU: 2 x 1 + 2 + 3 = 7 (all-balanced); 2 x 3 = 6 (all-3g.40gb leaves one idle)
    assert p["utilization"]["computeSlicesPerGpu"] == [7] * 8
    assert doc["pools"][1]["utilization"]["computeSlicesPerGpu"] == [6] * 8
    assert p["utilization"]["nodesNeeded"] == 2  # 20 slices at 16 per node
    assert list(doc["workloads"][0]) == ["name", "resource", "requested", "pools", "capacity", "fits", "level",
                                         "message"]
    assert doc["workloads"][1]["pools"] == ["h"] and doc["workloads"][1]["capacity"] == 16 * 1  # 2 x 8 GPUs
    table = plan.format_table()
    lines = table.splitlines()
    assert lines[0].startswith("POOL") and any(line.startswith("big ") for line in lines)
    header = next(line for line in lines if line.startswith("WORKLOAD"))
    row = next(line for line in lines if line.startswith("big "))
    assert row.index("OK") == header.index("STATUS")


def test_bad_pool_and_workload_inputs():
    with pytest.raises(ValueError, match="min <= desired <= max"):
        pool(nodes=(2, 1, 3))
    with pytest.raises(ValueError, match="unique"):
        plan_capacity([pool(), pool()], [])
    with pytest.raises(ValueError, match="per_replica"):
        demand(per=0)


def test_a_node_group_no_workload_uses_is_called_idle_and_a_nodepool_never_is():
    plan = plan_capacity([pool("used"), pool("idle", nodes=(1, 2, 2)), pool("k", kind="nodePool", nodes=(0, 0, 2))],
                         [demand(replicas=4, pool_name="used")])
    assert len(plan.idle_pools) == 1 and plan.idle_pools[0].startswith("node group idle runs 2 node(s)")


def test_a_node_group_scaled_to_zero_is_not_idle():
    """desiredSize 0 runs no node, so nothing is paid for: the fix the idle warning gives is already made."""
    plan = plan_capacity([pool("used"), pool("parked", nodes=(0, 0, 2))], [demand(replicas=4, pool_name="used")])
    assert plan.idle_pools == []


def test_an_idle_node_groups_warning_names_its_nodes_their_cost_and_the_fix():
    """The whole sentence a user reads: 2 desired p4d.24xlarge at the catalog's 21.96 USD/h list price
    (tests/test_advisor.py holds it) cost 2 x 21.96 = 43.92 USD/h; the fix names both size fields."""
    plan = plan_capacity([pool("used"), pool("idle", nodes=(1, 2, 2))], [demand(replicas=4, pool_name="used")])
    assert plan.idle_pools == ["node group idle runs 2 node(s) of p4d.24xlarge (43.92 USD/h) that no workload "
                               "of this stack uses; set its desiredSize (and minSize) to 0 if nothing else runs there"]


# --- pods any of several resources serve (DRA claims several device kinds match) -------------------------

def _pool(per_node, nodes=1):
    return PoolCapacity("p", "nodeGroup", "p5.48xlarge", "custom", "mixed", 0, nodes, nodes, per_node)


def test_an_earlier_flexible_pod_moves_so_a_later_one_fits():
    """Pool of 1 A and 1 B; x accepts A or B, y accepts A or C (no C): x first takes A, then moves to B so
    y gets A. A first-choice count would leave y Pending though both fit."""
    plan = plan_capacity([_pool({"A": 1, "B": 1, "C": 0})],
                         [WorkloadDemand("x", "A", 1, 1, alternatives=("B",)),
                          WorkloadDemand("y", "A", 1, 1, alternatives=("C",))])
    got = {w.name: w for w in plan.workloads}
    assert got["x"].fits and got["y"].fits
    assert dict(got["x"].counted) == {"A": 0, "B": 1} and dict(got["y"].counted) == {"A": 1, "C": 0}
    assert plan.pools[0].requested == {"A": 1, "B": 1, "C": 0}


def test_flexible_pods_never_take_more_units_than_exist():
    """3 units (2 A, 1 B) and three workloads of 2 pods accepting A or B: 3 pods fit, 3 do not."""
    plan = plan_capacity([_pool({"A": 2, "B": 1})],
                         [WorkloadDemand(n, "A", 1, 2, alternatives=("B",)) for n in "xyz"])
    placed = sum(sum(n for _, n in w.counted) for w in plan.workloads)
    assert placed == 3 and [w.fits for w in plan.workloads] == [True, False, False]


def test_karpenter_launches_one_node_for_flexible_pods_its_two_kinds_of_slice_hold():
    """A NodePool node of 1 A and 1 B: 2 pods accepting A or B fit one node (one of each), so Karpenter
    launches one, not the two that 2 pods counted against A alone would need."""
    p = PoolCapacity("k", "nodePool", "p5.48xlarge", "custom", "mixed", 0, 0, 2, {"A": 1, "B": 1})
    plan = plan_capacity([p], [WorkloadDemand("x", "A", 1, 2, alternatives=("B",))])
    assert plan.workloads[0].fits
    assert (plan.pools[0].launch.instance_type, plan.pools[0].launch.nodes) == ("p5.48xlarge", 1)


def test_flexible_pods_are_one_unit_each():
    with pytest.raises(ValueError, match="one-unit"):
        WorkloadDemand("x", "A", 2, 1, alternatives=("B",))
    with pytest.raises(ValueError, match="each resource once"):
        WorkloadDemand("x", "A", 1, 1, alternatives=("A",))


@pytest.mark.parametrize("demands, pods_per_node, nodes", [
    ([(("A", "B"), 1, 6)], None, 2),  # 3 units a node
    ([(("A", "B"), 1, 7)], None, 3),
    ([("A", 1, 3), (("A", "B"), 1, 3)], None, 2),  # 3 A need 2 nodes; 1 A + 2 B left for the 3 flexible
    ([("A", 1, 4), (("A", "B"), 1, 3)], None, 3),  # 4 A fill 2 nodes; 2 B + 2 A on a third
    ([(("A", "B"), 1, 6)], 2, 3),  # 2 pods a node
    ([(("C",), 1, 1)], None, None),  # no node has C
])
def test_nodes_for_counts_flexible_pods_against_every_resource_they_accept(demands, pods_per_node, nodes):
    from gpu_slicing.capacity import nodes_for

    assert nodes_for({"A": 2, "B": 1}, demands, pods_per_node) == nodes
# --- the table `make plan` prints ------------------------------------------------------------------

def columns(line: str, header: str) -> list[str]:
    """The cells of a fixed-width row, cut where the header's column names start (so a cell that does not
    start under its name is cut wrongly and fails the comparison)."""
    starts = [0] + [i for i in range(2, len(header)) if header[i] != " " and header[i - 2:i] == "  "]
    return [line[a:b].rstrip() for a, b in zip(starts, starts[1:] + [None])]


def spot_g5(nodes=(0, 0, 4)) -> PoolCapacity:
    return replace(PoolCapacity("g5", "nodePool", "g5.xlarge", "all-disabled", "none", *nodes, {GPU: 1},
                                {"gpu-slicing/pool": "g5"}, (TAINT,)), capacity_type="spot")


def test_a_spot_pool_that_launches_nothing_has_no_price_to_miss():
    """A spot NodePool no workload uses launches no node: nothing costs, so nothing is unpriced (the plan
    would otherwise ask for a pricePerHour for a pool that runs nothing)."""
    plan = plan_capacity([pool("used"), spot_g5()], [demand(replicas=4, pool_name="used")])
    assert plan.unpriced == [] and "not priced" not in plan.format_table()
    busy = plan_capacity([pool("used"), spot_g5()], [demand("infer", resource=GPU, replicas=2, pool_name="g5")])
    assert [r.pool.name for r in busy.unpriced] == ["g5"]


def test_the_plan_table_cell_by_cell():
    """p4d all-balanced at 2 desired nodes, priced by the stack at 20 USD/h, 3 DaemonSets on a node of 737 pods
    (docs/facts.md §11); a spot NodePool of g5.xlarge (1 A10G, 4 vCPUs, no MIG) with 3 one-GPU pods."""
    p4d = replace(pool(nodes=(1, 2, 3)), pod_limit={"p4d.24xlarge": 737}, daemon_sets=("a", "b", "c"))
    plan = plan_capacity([p4d, spot_g5()], [demand("small", replicas=20, pool_name="p4d"),
                                            demand("infer", resource=GPU, replicas=3, pool_name="g5"),
                                            demand("ghost", pool_name="nope")], prices={"p4d.24xlarge": 20.0})
    lines = plan.format_table().splitlines()
    header = lines[0]
    assert columns(header, header) == ["POOL", "KIND", "INSTANCE", "LAYOUT", "NODES", "RESOURCE", "PER NODE",
                                       "PODS/NODE", "WANTED / AVAILABLE", "COMPUTE/GPU", "USD/HOUR"]
    assert [columns(line, header) for line in lines[1:5]] == [
        # 16/8/8 per node (docs/facts.md §1.6) x 2 desired nodes; 737 - 3 pods; 7 of 7 compute slices used per GPU
        ["p4d", "nodeGroup", "p4d.24xlarge", "all-balanced", "2 (desired; max 3)", mig("1g.5gb"), "16",
         "734 of 737", "20 / 32", "7/7", "40.00"],
        ["", "", "", "", "", mig("2g.10gb"), "8", "", "0 / 16", "", ""],
        ["", "", "", "", "", mig("3g.20gb"), "8", "", "0 / 16", "", ""],
        # 3 nodes launched for 3 one-GPU pods (max 4); spot, not priced: at most 3 x 1.01 at on-demand list
        ["g5", "nodePool", "g5.xlarge", "all-disabled", "3 x g5.xlarge (max 4)", GPU, "1", "-", "3 / 4", "-",
         "<= 3.03 (spot)"],
    ]
    assert lines[5].startswith("PODS/NODE: pods one node runs for workloads, of the most EKS runs on its instance "
                               "type") and lines[6] == ""
    work_header = lines[7]
    assert columns(work_header, work_header) == ["WORKLOAD", "STATUS", "RESOURCE", "WANTED", "AVAILABLE", "POOLS",
                                                 "MESSAGE"]
    rows = [columns(line, work_header) for line in lines[8:11]]
    assert [r[:6] for r in rows] == [["small", "OK", mig("1g.5gb"), "20", "32", "p4d"],
                                     ["infer", "OK", GPU, "3", "4", "g5"],
                                     ["ghost", "ERROR", mig("1g.5gb"), "1", "0", "-"]]
    assert rows[0][6] == "fits: needs 20 x 1 nvidia.com/mig-1g.5gb = 20, 32 free on the 2 desired node(s)"
    assert rows[1][6] == ("fits: Karpenter launches up to 3 node(s) of g5 for 3 x 1 nvidia.com/gpu = 3 (1 per node, "
                          "4 at maxNodes 4)")
    assert rows[2][6] == "pool nope does not exist (pools: p4d, g5)"
    assert lines[11:] == [
        "",
        "GPU nodes that will exist cost 40.00 USD per hour (without the spot pool(s) g5, below; p4d: 40.00 at the "
        "stack's pricePerHour)",
        "g5 runs spot nodes and is not priced: spot prices move by Availability Zone and hour and no table of them is "
        "kept here; at most 3.03 USD per hour at on-demand list, as little as a tenth of it (AWS: up to 90% off); "
        "set gpu-slicing:pricePerHour.g5.xlarge to your estimate for a figure",
        # p4d.24xlarge has 96 vCPUs (docs/facts.md), g5.xlarge 4: 2 x 96 now, 3 x 96 at maxSize; 3 x 4, 4 x 4
        'EC2 quota "Running On-Demand P instances": 192 vCPUs for the GPU nodes that will exist, up to 288 at '
        "maxSize/maxNodes, plus the nodes a rolling update adds (README: Before the first deploy)",
        'EC2 quota "All G and VT Spot Instance Requests": 12 vCPUs for the GPU nodes that will exist, up to 16 at '
        "maxSize/maxNodes, plus the nodes a rolling update adds (README: Before the first deploy)",
    ]
    assert plan.vcpu_quotas == {"Running On-Demand P instances": {"now": 192, "atMost": 288},
                                "All G and VT Spot Instance Requests": {"now": 12, "atMost": 16}}
    assert [r.pool.name for r in plan.unpriced] == ["g5"] and plan.usd_per_hour == 40.0


def test_the_total_line_names_on_demand_list_prices_and_their_date_or_no_priced_pools():
    """At catalog prices the total says `on demand` and the region and date of the list; a p4d at 21.96 USD/h
    (the catalog's us-east-1 figure) for 1 desired node."""
    plan = plan_capacity([pool()], [demand(replicas=1)])
    total = plan.format_table().splitlines()[-2]
    assert total == (f"GPU nodes that will exist cost 21.96 USD per hour on demand (p4d: 21.96 at on-demand list; "
                     f"{catalog.PRICES_REGION} list prices as of {catalog.PRICES_AS_OF})")
    plan = plan_capacity([spot_g5()], [demand(resource=GPU, replicas=1)])
    assert plan.format_table().splitlines()[-3] == ("GPU nodes that will exist cost 0.00 USD per hour on demand "
                                                    "(without the spot pool(s) g5, below; no priced pools)")
    # an on-demand g5 NodePool (G family) and a spot p4d group (P family) count against the other quotas
    plan = plan_capacity([replace(spot_g5(), capacity_type="on-demand"),
                          replace(pool(nodes=(1, 1, 2)), capacity_type="spot")],
                         [demand(resource=GPU, replicas=2, pool_name="g5")])
    assert plan.vcpu_quotas == {"Running On-Demand G and VT instances": {"now": 8, "atMost": 16},
                                "All P Spot Instance Requests": {"now": 96, "atMost": 192}}


# --- what a node advertises: the errors in full, the per-GPU view and compute slices ------------------------

def test_strategy_errors_in_full():
    key = "gpu-slicing:nodeGroups[0]"
    with pytest.raises(ConfigError) as e:
        node_resources("p4d.24xlarge", layout("p4d.24xlarge", "all-balanced"), "none", key=key)
    assert str(e.value) == (f"{key}.migLayout: 'all-balanced' is not valid: all-disabled: the none strategy "
                            "advertises whole GPUs and ignores MIG slices")
    with pytest.raises(ConfigError) as e:
        node_resources("p4d.24xlarge", None, "mixd")
    assert str(e.value) == "node.strategy: 'mixd' is not valid: one of none, single, mixed"
    with pytest.raises(ConfigError) as e:
        node_resources("p9.mega", None, "none", key=key)
    assert (e.value.key, e.value.value) == (f"{key}.instanceType", "p9.mega")
    odd = parse_custom_layouts({"odd": [{"devices": [0], "profiles": {"2g.10gb": 2, "1g.5gb": 3}},
                                        {"devices": [1, 2], "migEnabled": True}, {"devices": [3, 4, 5, 6, 7]}]})["odd"]
    with pytest.raises(ConfigError) as e:
        node_resources("p4d.24xlarge", odd, "single", key=key)
    assert (e.value.key, e.value.value) == (f"{key}.migLayout", odd.name)
    assert e.value.allowed == (
        "a layout with one and the same profile on every GPU (all-1g.5gb, all-3g.20gb, ...): the single strategy "
        "advertises every slice as nvidia.com/gpu, so a mixed layout (GPU 0: 1g.5gb x3 + 2g.10gb x2; GPU 1-2: no "
        "instances; GPU 3-7: MIG off) needs the mixed strategy")
    # MIG on with no instances on every GPU (all-enabled) advertises nothing to share under single either
    with pytest.raises(ConfigError) as e:
        node_resources("p4d.24xlarge", layout("p4d.24xlarge", "all-enabled"), "single")
    assert "(GPU 0-7: no instances)" in e.value.allowed
    # no layout at all: whole GPUs under every strategy (g5.48xlarge has 8 A10G)
    assert [node_resources("g5.48xlarge", None, s) for s in ("none", "single", "mixed")] == [{GPU: 8}] * 3


def test_compute_slices_each_gpu_uses():
    """docs/facts.md §2: 3g.20gb takes 3 compute slices, 2g.10gb 2; a GPU with MIG off has none (None)."""
    from gpu_slicing.advertise import compute_slices_per_gpu

    half = parse_custom_layouts({"h": [{"devices": [0, 1, 2, 3], "profiles": {"3g.20gb": 1, "2g.10gb": 1}},
                                       {"devices": [4, 5, 6, 7]}]})["h"]
    assert compute_slices_per_gpu("p4d.24xlarge", half) == [5, 5, 5, 5, None, None, None, None]
    assert compute_slices_per_gpu("p4d.24xlarge", layout("p4d.24xlarge", "all-enabled")) == [0] * 8
    with pytest.raises(ConfigError) as e:
        compute_slices_per_gpu("p9.mega", half)
    assert (e.value.key, e.value.value) == ("instanceType", "p9.mega")


def test_nodes_for_counts_identical_nodes_by_slices_and_by_pods():
    """The fewest nodes that hold every pod (hand-packed: biggest pods first, fullest node first)."""
    from gpu_slicing.capacity import nodes_for

    g5 = {GPU: 8}
    assert nodes_for(g5, [(GPU, 3, 4)]) == 2 and nodes_for(g5, [(GPU, 3, 5)]) == 3  # 2 three-GPU pods a node
    assert nodes_for(g5, [(GPU, 2, 2), (GPU, 5, 1), (GPU, 3, 1)]) == 2  # 5 + 3 on one node, 2 + 2 on another
    assert nodes_for(g5, [(GPU, 3, 2), (GPU, 5, 2)]) == 2  # 5 + 3 twice (3 + 3 first would strand both 5s)
    assert nodes_for(g5, [(GPU, 5, 1), (GPU, 4, 1)]) == 2  # 3 GPUs are left beside the 5: the 4 needs a node
    assert nodes_for(g5, [(GPU, 9, 1)]) is None  # no node holds the pod
    assert nodes_for(g5, [(mig("1g.5gb"), 1, 2)]) is None  # nor a resource the node does not advertise
    assert nodes_for(g5, []) == 0 and nodes_for(g5, [(GPU, 1, 0)]) == 0 and nodes_for(g5, [], 0) == 0
    # one pod a node: as many nodes as pods; none a node: nothing fits
    assert nodes_for(g5, [(GPU, 1, 3)], 1) == 3 and nodes_for(g5, [(GPU, 1, 3)], 0) is None
    # resources of a node are independent; the pod limit counts every pod: 24 pods at 10 a node need 3 nodes
    both = {GPU: 8, mig("1g.5gb"): 16}
    assert nodes_for(both, [(GPU, 1, 8), (mig("1g.5gb"), 1, 16)]) == 1
    assert nodes_for(both, [(GPU, 1, 8), (mig("1g.5gb"), 1, 16)], 10) == 3


def test_a_pool_built_from_a_custom_layout_plans_its_compute_slices_and_names_itself_in_errors():
    half = parse_custom_layouts({"h": [{"devices": [0, 1, 2, 3], "profiles": {"3g.20gb": 1, "2g.10gb": 1}},
                                       {"devices": [4, 5, 6, 7]}]})["h"]
    p = PoolCapacity.from_layout("half", "nodeGroup", "p4d.24xlarge", half, "mixed", 1, 1, 1)
    (r,) = plan_capacity([p], []).pools
    assert r.compute_slices == (5, 5, 5, 5, None, None, None, None)  # 3 + 2 of 7 on GPUs 0-3, MIG off on 4-7
    assert dict(p.per_node) == {mig("2g.10gb"): 4, mig("3g.20gb"): 4, GPU: 4}
    with pytest.raises(ConfigError) as e:
        PoolCapacity.from_layout("half", "nodeGroup", "p4d.24xlarge", half, "mixd", 1, 1, 1)
    assert e.value.key == "half.strategy"


def test_a_node_pool_of_several_types_offers_what_its_roomiest_type_advertises():
    """g6.12xlarge has 4 L4 GPUs, g6.xlarge 1: listed first or last, the pool's pods can count on 4 a node."""
    for per_type in ({"g6.12xlarge": {GPU: 4}, "g6.xlarge": {GPU: 1}}, {"g6.xlarge": {GPU: 1}, "g6.12xlarge": {GPU: 4}}):
        p = PoolCapacity("g6", "nodePool", "g6.12xlarge", "all-disabled", "none", 0, 0, 3, {GPU: 1},
                         per_type=per_type)
        doc = plan_capacity([p], [demand(resource=GPU, per=4, replicas=3, tolerations=[])]).to_json()
        assert doc["pools"][0]["utilization"]["resources"] == {GPU: {"requested": 12, "available": 12}}
        assert doc["workloads"][0]["fits"] is True


def test_workloads_sharing_a_pool_fill_it_exactly_whatever_their_sizes():
    """Two all-balanced p4d nodes hold 2 x 16 = 32 x 1g.5gb (docs/facts.md §1.6): 8 + 10 + 14 pods fill them, one
    more does not fit; the pool reports every slice wanted."""
    plan = plan_capacity([pool(nodes=(2, 2, 2))], [demand("a", replicas=8), demand("b", replicas=10),
                                                   demand("c", replicas=14)])
    assert [(w.level, w.capacity) for w in plan.workloads] == [("ok", 32), ("ok", 24), ("ok", 14)]
    assert plan.pools[0].requested == {mig("1g.5gb"): 32} and plan.pools[0].nodes_needed == 2
    plan = plan_capacity([pool(nodes=(2, 2, 2))], [demand("a", replicas=8), demand("b", replicas=10),
                                                   demand("c", replicas=15)])
    assert plan.workloads[2].level == "error" and "1 pods would stay Pending" in plan.workloads[2].message


def test_node_selectors_on_the_labels_every_node_carries():
    """Every node carries kubernetes.io/os=linux and its architecture (p4d: amd64); node.kubernetes.io/instance-type
    selects a pool that launches that type (Kubernetes' well-known labels)."""
    p4d = pool()
    def why(selector, pools=(p4d,)):
        w = plan_capacity(list(pools), [demand(selector=selector)]).workloads[0]
        return w.level, w.message

    assert why({"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"})[0] == "ok"
    assert why({"kubernetes.io/arch": "arm64"}) == ("error", "no pool can run it (p4d: nodeSelector kubernetes.io/arch="
                                                             "arm64 does not match (node has kubernetes.io/arch=amd64))")
    assert why({"kubernetes.io/os": "windows"})[1].endswith("(node has kubernetes.io/os=linux))")
    assert why({"node.kubernetes.io/instance-type": "p4d.24xlarge"})[0] == "ok"
    assert why({"node.kubernetes.io/instance-type": "p5.48xlarge"})[1] == (
        "no pool can run it (p4d: nodeSelector node.kubernetes.io/instance-type=p5.48xlarge does not match (node has "
        "node.kubernetes.io/instance-type=<unset>))")
    # a matching instance type does not excuse the selector's other labels
    assert why({"node.kubernetes.io/instance-type": "p4d.24xlarge", "team": "x"})[1] == (
        "no pool can run it (p4d: nodeSelector team=x does not match (node has team=<unset>))")
    g6 = PoolCapacity("g6", "nodePool", "g6.12xlarge", "all-disabled", "none", 0, 0, 2, {GPU: 1},
                      {"gpu-slicing/pool": "g6"}, (TAINT,), per_type={"g6.xlarge": {GPU: 1}, "g6.12xlarge": {GPU: 4}})
    w = plan_capacity([p4d, g6], [demand(resource=GPU, selector={"node.kubernetes.io/instance-type": "g6.xlarge"})])
    assert w.workloads[0].pools == ("g6",) and w.workloads[0].level == "ok"


def test_a_pool_that_advertises_none_of_the_resource_says_what_it_does_advertise():
    """all-3g.20gb p4d: 2 x 3g.20gb on each of 8 GPUs (docs/facts.md §2), nothing else; all-enabled: nothing."""
    (w,) = plan_capacity([pool(layout_name="all-3g.20gb")], [demand()]).workloads
    assert (w.level, w.field) == ("error", "resource")
    assert w.message.split(". Suggestion: ")[0] == (
        "no pool can run it (p4d: advertises no nvidia.com/mig-1g.5gb (nvidia.com/mig-3g.20gb: 16))")
    (w,) = plan_capacity([pool(layout_name="all-enabled")], [demand()]).workloads
    assert w.message.split(". Suggestion: ")[0] == (
        "no pool can run it (p4d: advertises no nvidia.com/mig-1g.5gb (no GPU resources))")


def test_verdicts_without_a_pool_or_replicas():
    (w,) = plan_capacity([], [demand(pool_name="gpu")]).workloads
    assert (w.level, w.field, w.message) == ("error", "pool", "pool gpu does not exist (pools: none)")
    (w,) = plan_capacity([], [demand()]).workloads
    assert (w.level, w.field, w.message, w.suggestion) == ("error", "pool", "no pool can run it (no pools)", None)
    (w,) = plan_capacity([pool("a"), pool("b")], [demand(tolerations=[])]).workloads
    assert (w.field, w.message) == ("pool", "no pool can run it (a: taint nvidia.com/gpu=true:NoSchedule is not "
                                             "tolerated; b: taint nvidia.com/gpu=true:NoSchedule is not tolerated)")
    (w,) = plan_capacity([pool()], [demand(replicas=0)]).workloads
    assert (w.level, w.field, w.message, w.capacity) == ("ok", "replicas", "no replicas requested", 16)
    (w,) = plan_capacity([pool()], [demand(replicas=16)]).workloads
    assert (w.level, w.field, w.suggestion) == ("ok", "replicas", None)


def test_an_error_with_a_suggestion_says_it_after_the_message():
    (w,) = plan_capacity([pool()], [demand(replicas=17, pool_name="p4d")]).workloads
    assert w.suggestion and w.message == (
        "does not fit: needs 17 x 1 nvidia.com/mig-1g.5gb = 17, 16 free (p4d: 16/node x 1 desired); 1 pods would stay "
        "Pending (nothing scales a managed node group: its pods get desiredSize nodes). Suggestion: " + w.suggestion)


def test_a_node_group_at_zero_desired_nodes_holds_nothing():
    """desiredSize 0: no node exists for the pods (nothing scales a managed node group)."""
    (w,) = plan_capacity([pool(nodes=(0, 0, 3))], [demand(replicas=2)]).workloads
    assert (w.level, w.capacity, w.field) == ("error", 0, "desiredSize")
    assert w.message.startswith("does not fit: needs 2 x 1 nvidia.com/mig-1g.5gb = 2, 0 free (p4d: 16/node x 0 "
                                "desired); 2 pods would stay Pending")
    assert "raise desiredSize of p4d to 1 (" in w.suggestion


def test_node_group_cost_per_node_and_a_node_pool_at_its_pod_limit():
    """A node group's nodes cost the catalog's p4d list price each (21.96 USD/h); a NodePool whose nodes run
    exactly as many workload pods (20 - 4 DaemonSets) as slices (16) names no pod limit in its verdict."""
    plan = plan_capacity([pool(nodes=(1, 2, 3))], [demand(replicas=4)])
    assert plan.to_json()["pools"][0]["launch"] == {"instanceType": "p4d.24xlarge", "nodes": 2,
                                                    "usdPerNodeHour": 21.96}
    k = replace(pool("k", kind="nodePool", nodes=(0, 0, 2)), pod_limit={"p4d.24xlarge": 20},
                daemon_sets=("a", "b", "c", "d"))
    (w,) = plan_capacity([k], [demand(replicas=10)]).workloads
    assert w.message == ("fits: Karpenter launches up to 1 node(s) of k for 10 x 1 nvidia.com/mig-1g.5gb = 10 "
                         "(16 per node, 32 at maxNodes 2)")


def test_a_workload_short_of_room_names_every_other_that_took_it():
    plan = plan_capacity([pool()], [demand("a", replicas=6), demand("b", replicas=6), demand("c", replicas=6)])
    assert "; shared with a takes 6, b takes 6); 2 pods would stay Pending" in plan.workloads[2].message


def test_what_a_node_pool_launches_with_nothing_to_run_and_when_no_one_type_holds_every_pod():
    """An idle NodePool launches nothing; when each resource only one of its types offers is wanted, Karpenter
    needs both types and the plan sizes the pool on its roomiest figures, priced at its largest type's list price."""
    idle = plan_capacity([pool("k", kind="nodePool", nodes=(0, 0, 2))], []).to_json()["pools"][0]
    assert (idle["launch"], idle["usdPerHour"], idle["nodes"]["willExist"]) == (
        {"instanceType": "p4d.24xlarge", "nodes": 0, "usdPerNodeHour": 21.96}, 0.0, 0)
    split = PoolCapacity("s", "nodePool", "g6.12xlarge", "all-disabled", "none", 0, 0, 4, {},
                         per_type={"g6.xlarge": {"a.example/x": 2}, "g6.12xlarge": {"b.example/y": 2}})
    plan = plan_capacity([split], [demand("x", resource="a.example/x", tolerations=[]),
                                   demand("y", resource="b.example/y", replicas=3, tolerations=[])],
                         prices={"g6.12xlarge": 1.111})
    (r,) = plan.pools
    # 3 pods at 2 a node need 2 nodes: 2 x 1.111 = 2.222, shown to the cent
    assert (r.launch.instance_type, r.launch.nodes, r.launch.usd_per_hour, r.launch.usd_per_node_hour) == (
        "g6.12xlarge", 2, 2.22, 1.111)


def test_a_node_groups_cost_is_rounded_to_the_cent():
    plan = plan_capacity([pool(nodes=(3, 3, 3))], [], prices={"p4d.24xlarge": 1.111})
    assert (plan.pools[0].launch.usd_per_hour, plan.usd_per_hour) == (3.33, 3.33)


def test_a_flexible_workload_goes_to_the_least_contended_pool_first():
    """Pools a and b hold 16 x 1g.5gb each. 20 flexible pods alone: 16 on a (first by position), 4 on b, capacity
    32. With 16 pods pinned to a, the flexible ones go to b first (one workload wants b, two want a) and the 4
    that fit nowhere are counted against b."""
    a, b = pool("a", nodes=(1, 1, 1)), pool("b", nodes=(1, 1, 1))
    plan = plan_capacity([a, b], [demand("flex", replicas=20)])
    assert plan.workloads[0].capacity == 32 and [r.requested for r in plan.pools] == [
        {mig("1g.5gb"): 16}, {mig("1g.5gb"): 4}]
    plan = plan_capacity([a, b], [demand("pinned", replicas=16, pool_name="a"), demand("flex", replicas=20)])
    assert [r.requested for r in plan.pools] == [{mig("1g.5gb"): 16}, {mig("1g.5gb"): 20}]
    # a workload pinned to a pool names only that pool's reason
    (w,) = plan_capacity([a, b], [demand("w", pool_name="a", tolerations=[])]).workloads
    assert w.message == "no pool can run it (a: taint nvidia.com/gpu=true:NoSchedule is not tolerated)"
    with pytest.raises(ValueError, match=r"^workload names must be unique: \['w', 'w'\]$"):
        plan_capacity([a], [demand("w"), demand("w")])


def test_mps_on_a_mig_layout_is_refused_where_the_node_is_described():
    mps = parse_sharing({"mps": {"replicas": 2}}, "k")
    with pytest.raises(ConfigError) as e:
        node_resources("p4d.24xlarge", layout("p4d.24xlarge", "all-balanced"), "mixed", mps, key="gpu-slicing:x")
    assert e.value.key == "gpu-slicing:x.sharing.mps" and "MPS shares whole GPUs only" in e.value.allowed
    assert node_resources("p4d.24xlarge", layout("p4d.24xlarge", "all-disabled"), "mixed", mps) == {GPU: 16}


def test_a_layout_that_does_not_fit_the_node_is_named_under_the_pools_key():
    wide = parse_custom_layouts({"w": [{"devices": [0, 1, 2, 3, 4, 5, 6, 7, 8]}]})["w"]
    with pytest.raises(ConfigError) as e:
        node_resources("p4d.24xlarge", wide, "none", key="gpu-slicing:nodeGroups[2]")
    assert e.value.key == "gpu-slicing:nodeGroups[2].migLayout[0].devices"


# --- flexible pods against an independent count: Hall's condition ------------------------------------------

def _feasible(room: dict[str, int], pods: list[tuple[tuple[str, ...], int]]) -> bool:
    """Hall's condition: one-unit pods fit `room` (units per resource) iff for every set S of resources, the
    pods that accept only resources of S are no more than the units of S. Independent of the planner."""
    kinds = sorted(room)
    for mask in range(1 << len(kinds)):
        s = {k for i, k in enumerate(kinds) if mask >> i & 1}
        if sum(n for accepts, n in pods if set(accepts) <= s) > sum(room[k] for k in s):
            return False
    return True


def _greedy_counts(room: dict[str, int], groups: list[tuple[tuple[str, ...], int]]) -> list[int]:
    """Pods of each group placed when groups come in order and no earlier pod is ever dropped (only moved):
    the most of each group that still fits beside what the earlier ones kept (a matroid's greedy basis)."""
    kept: list[tuple[tuple[str, ...], int]] = []
    out = []
    for accepts, pods in groups:
        n = max(c for c in range(pods + 1) if _feasible(room, [*kept, (accepts, c)]))
        kept.append((accepts, n))
        out.append(n)
    return out


_RESOURCES = ("A", "B", "C", "D")
_flexible = st.lists(st.tuples(st.permutations(_RESOURCES).flatmap(
    lambda order: st.integers(1, 3).map(lambda k: tuple(order[:k]))), st.integers(0, 4)), min_size=1, max_size=4)


# (units per resource on the one node, (resources a workload's pods accept, pods) in placement order): the
# augmenting paths the count must follow, each worked by hand in its comment
MOVES = [
    ({"A": 2, "B": 1}, [(("A", "B"), 2), (("A", "C"), 2)]),  # one of the first moves to B: the second gets 1
    ({"A": 1, "B": 3}, [(("A", "B"), 1), (("A", "C"), 3)]),  # only the 1 pod on A can move: 1, not 3
    ({"A": 4, "B": 1, "C": 5}, [(("A", "B"), 1), (("A", "C"), 3), (("A", "D"), 2)]),  # two moves, via B then C
    ({"A": 1, "B": 1, "C": 1}, [(("B", "C"), 1), (("A", "B"), 1), (("A", "D"), 1)]),  # a chain: B -> C, then A -> B
    ({"A": 3, "B": 5}, [(("A", "B"), 2), (("A", "C"), 2)]),  # 1 free A, then 1 move: no more moves than wanted
    ({"A": 1}, [(("A",), 1), (("A", "C"), 1)]),  # a pod of one resource never moves
    ({"A": 2, "B": 2}, [(("A", "B"), 1), (("A", "C"), 1), (("A", "D"), 2)]),  # the moved pod moves no twice
    ({"A": 1, "B": 1}, [(("A",), 1), (("B", "C"), 1), (("A", "C"), 1)]),  # the search passes a pod that cannot move
    ({"A": 1, "B": 2}, [(("A", "B"), 2), (("A", "C"), 1)]),  # a pod moves to where its workload already holds one
]


@pytest.mark.parametrize("room, groups", MOVES)
def test_pods_several_resources_serve_move_along_chains_to_make_room(room, groups):
    """Hand-made cases of each way an earlier pod moves (see MOVES), checked as the property below is."""
    _check_flexible_plan({k: room.get(k, 0) for k in _RESOURCES}, groups)


@pytest.mark.slow  # 150 examples, about a second
@given(room=st.fixed_dictionaries({k: st.integers(0, 3) for k in _RESOURCES}), groups=_flexible)
@settings(max_examples=150, deadline=None)
def test_pods_several_resources_serve_are_placed_as_many_as_fit_and_never_twice(room, groups):
    """One node of a pool with units of A..D; workloads of one-unit pods accepting one to three of them (the
    first their first choice). Whatever the mix, every workload gets as many pods as fit beside the ones placed
    before it (the fewer resources a workload accepts, the earlier), as Hall's condition counts them: a pod
    placed on its second choice leaves its first to a pod with no other, and no unit holds two pods. What the
    pool's nodes are asked for is what the pods hold, plus each short workload's missing pods on its first
    choice."""
    _check_flexible_plan(room, groups)


def _check_flexible_plan(room: dict[str, int], groups: list[tuple[tuple[str, ...], int]]) -> None:
    works = [WorkloadDemand(f"w{i}", kinds[0], 1, n, alternatives=kinds[1:]) for i, (kinds, n) in enumerate(groups)]
    plan = plan_capacity([_pool(room)], works)
    order = sorted(range(len(groups)), key=lambda i: (len(groups[i][0]), i))
    want = dict(zip(order, _greedy_counts(room, [groups[i] for i in order])))
    held = dict.fromkeys(_RESOURCES, 0)
    short = dict.fromkeys(_RESOURCES, 0)
    for i, (w, v) in enumerate(zip(works, plan.workloads)):
        if w.alternatives:
            assert set(dict(v.counted)) == set(w.kinds)
            placed = sum(n for _, n in v.counted)
            for r, n in v.counted:
                held[r] += n
        else:
            pending = re.search(r"(\d+) pods would stay Pending", v.message)
            placed = w.replicas - int(pending.group(1)) if pending else w.replicas if v.fits else 0
            held[w.resource] += placed
        assert placed == want[i], (groups, i, v.message)
        assert v.fits == (placed == w.replicas)
        if any(room[r] for r in w.kinds):  # a pool that can run it at all: the shortfall is asked of it
            short[w.resource] += w.replicas - placed
    assert all(held[r] <= room[r] for r in _RESOURCES)
    assert {r: n for r, n in plan.pools[0].requested.items() if n} == {
        r: held[r] + short[r] for r in _RESOURCES if held[r] + short[r]}


# (units per node, pods of one resource, (resources a pod accepts, pods), pods a node may run)
NODE_COUNTS = [
    ({"A": 2, "B": 1}, {"A": 1}, [(("A", "B"), 5)], None),  # 6 pods, 3 units a node: 2 nodes
    ({"A": 1, "B": 0}, {}, [(("A", "B"), 3)], None),  # only A serves: 3 nodes
    ({"A": 1, "B": 1}, {"A": 3}, [(("A", "B"), 1)], 2),  # 3 A need 3 nodes; then 2 pods a node is no bound
    ({"A": 3, "B": 3}, {}, [(("A", "B"), 2)], None),  # one node, not two: the search starts at 1
    ({"A": 0, "B": 0}, {}, [(("A", "B"), 1)], None),  # no node has either: None
    ({"A": 1, "B": 1}, {"A": 1}, [(("A", "B"), 1), (("B", "C"), 2)], 1),  # 4 pods, one a node
    ({"A": 1}, {"A": 1}, [(("A", "B"), 0)], None),  # a flexible workload of 0 pods asks for nothing
    ({"A": 1, "B": 1}, {}, [(("A", "B"), 2), (("B", "C"), 2)], None),  # the second group needs B: 2 nodes
    ({"A": 2}, {}, [(("A", "B"), 1), (("A", "C"), 1)], None),  # 2 pods, 2 A a node: 1
    ({"A": 1, "C": 1, "D": 1}, {}, [(("A", "B"), 1), (("C", "D"), 1), (("A", "B"), 1)], None),  # A for two: 2
]


@pytest.mark.parametrize("per_node, fixed, groups, pods_per_node", NODE_COUNTS)
def test_the_fewest_nodes_for_hand_made_mixes_of_flexible_pods(per_node, fixed, groups, pods_per_node):
    """Hand-made cases (see NODE_COUNTS) of the count the property below checks."""
    _check_nodes_for({k: per_node.get(k, 0) for k in _RESOURCES}, groups,
                     {k: fixed.get(k, 0) for k in _RESOURCES}, pods_per_node)


@pytest.mark.slow  # 150 examples, about a second
@given(per_node=st.fixed_dictionaries({k: st.integers(0, 3) for k in _RESOURCES}), groups=_flexible,
       fixed=st.fixed_dictionaries({k: st.integers(0, 5) for k in _RESOURCES}),
       pods_per_node=st.none() | st.integers(0, 6))
@settings(max_examples=150, deadline=None)
def test_the_fewest_nodes_for_pods_several_resources_serve_is_the_least_count_that_fits(per_node, groups, fixed,
                                                                                         pods_per_node):
    """How many identical nodes a suggestion asks for: the least n at which the one-unit pods that need one
    resource fit (n x per node each), the pods several serve fit what those leave (Hall's condition), and no
    node runs more pods than it may; None when no count of nodes holds them."""
    _check_nodes_for(per_node, groups, fixed, pods_per_node)


def _check_nodes_for(per_node, groups, fixed, pods_per_node) -> None:
    from gpu_slicing.capacity import nodes_for

    demands = [(r, 1, n) for r, n in fixed.items()] + [(kinds if len(kinds) > 1 else kinds[0], 1, n)
                                                        for kinds, n in groups]
    total = sum(fixed.values()) + sum(n for _, n in groups)

    def holds(n: int) -> bool:
        left = {r: per_node[r] * n - fixed[r] for r in _RESOURCES}
        return (min(left.values()) >= 0 and _feasible(left, groups)
                and (pods_per_node is None or n * pods_per_node >= total))

    expected = next((n for n in range(total + 1) if holds(n)), None)
    if pods_per_node == 0 and total:
        expected = None
    assert nodes_for(per_node, demands, pods_per_node) == expected


def test_the_plan_table_shows_each_kind_of_pool_as_a_user_reads_it():
    """The rows a user reads for pools unlike the dev stack's, each cell worked by hand:
    - a p4d with a custom layout (docs/facts.md §2, A100-40GB: 7 x 1g.5gb use all 7 compute slices) on GPUs 0-3
      and MIG off on 4-7: 28 slices and 4 whole GPUs, compute `7,7,7,7,-,-,-,- of 7`;
    - a p4d all-disabled: 8 GPUs, `MIG off`;
    - a NodePool of p5.48xlarge and p4d.24xlarge (8 GPUs each, MIG off) with nothing to run: both types named, no node
      launched, and the pods of its roomiest type: 737 - 3 DaemonSets (docs/facts.md §11: p4d 737, p5 100);
    - a pool advertising nothing: `-`; two spot pools with nodes, named in the total as not priced;
    - a workload several resources serve names them all, one several pools host names them all."""
    half = parse_custom_layouts({"half": [{"devices": [0, 1, 2, 3], "profiles": {"1g.5gb": 7}},
                                          {"devices": [4, 5, 6, 7]}]})["half"]
    mixed = PoolCapacity.from_layout("half", "nodeGroup", "p4d.24xlarge", half, "mixed", 1, 1, 1)
    two_types = PoolCapacity("np", "nodePool", "p5.48xlarge", "all-disabled", "none", 0, 0, 2, {GPU: 8},
                             per_type={"p5.48xlarge": {GPU: 8}, "p4d.24xlarge": {GPU: 8}},
                             pod_limit={"p5.48xlarge": 100, "p4d.24xlarge": 737}, daemon_sets=("a", "b", "c"))
    bare = PoolCapacity("bare", "nodeGroup", "p5.48xlarge", "custom", "mixed", 0, 0, 0, {})
    flex = PoolCapacity("flex", "nodeGroup", "p5.48xlarge", "custom", "mixed", 1, 1, 1, {"A": 1, "B": 1, "C": 0})
    pools = [mixed, pool("off", "all-disabled", nodes=(0, 1, 1)), two_types, bare, replace(spot_g5(), name="s1"),
             replace(spot_g5(), name="s2"), flex]
    plan = plan_capacity(pools, [WorkloadDemand("f", "A", 1, 2, alternatives=("B",)),
                                 WorkloadDemand("two", GPU, 1, 3, pool="half"),
                                 WorkloadDemand("any", GPU, 1, 2, tolerations=TOLERATE),
                                 WorkloadDemand("z1", GPU, 1, 1, pool="s1", tolerations=TOLERATE),
                                 WorkloadDemand("z2", GPU, 1, 1, pool="s2", tolerations=TOLERATE)])
    lines = plan.format_table().splitlines()
    header = lines[0]
    rows = [columns(line, header) for line in lines[1:12]]
    assert [r[:3] + r[4:] for r in rows[:5]] == [
        ["half", "nodeGroup", "p4d.24xlarge", "1 (desired; max 1)", mig("1g.5gb"), "28", "-", "0 / 28",
         "7,7,7,7,-,-,-,- of 7", "21.96"],
        ["", "", "", "", GPU, "4", "", "3 / 4", "", ""],
        ["off", "nodeGroup", "p4d.24xlarge", "1 (desired; max 1)", GPU, "8", "-", "2 / 8", "MIG off", "21.96"],
        ["np", "nodePool", "p5.48xlarge,p4d.24xlarge", "0 (max 2)", GPU, "8", "734 of 737", "0 / 16", "MIG off",
         "0.00"],
        ["bare", "nodeGroup", "p5.48xlarge", "0 (desired; max 0)", "-", "0", "-", "0 / 0", "-", "0.00"],
    ]
    assert [r[5:7] + r[9:] for r in rows[5:7]] == [[GPU, "1", "-", "<= 1.01 (spot)"], [GPU, "1", "-", "<= 1.01 (spot)"]]
    assert [r[5:9] + r[9:] for r in rows[7:10]] == [["A", "1", "-", "1 / 1", "-", "55.04"],
                                                   ["B", "1", "", "1 / 1", "", ""], ["C", "0", "", "0 / 0", "", ""]]
    assert lines[10] == lines[10].rstrip()  # the table's last row ends at its last cell
    assert lines[11] == ("PODS/NODE: pods one node runs for workloads, of the most EKS runs on its instance type "
                         "(one address of its network interfaces each, or a NodePool's maxPods); the pool's "
                         "DaemonSets take the rest")
    work_header = lines[13]
    work = {c[0]: c for c in (columns(line, work_header) for line in lines[14:19])}
    assert work["f"][2] == "A or B" and work["f"][5] == "flex"
    assert work["any"][5] == "half,off,np,s1,s2"
    assert lines[20].startswith("GPU nodes that will exist cost 98.96 USD per hour on demand (without the spot pool(s) "
                                "s1, s2, below; half: 21.96 at on-demand list; off: 21.96 at on-demand list; np: 0.00 "
                                "at on-demand list; bare: 0.00 at on-demand list; flex: 55.04 at on-demand list; ")
    doc = plan.to_json()["pools"]
    assert doc[2]["pods"] == {"limitPerInstanceType": {"p5.48xlarge": 100, "p4d.24xlarge": 737},
                              "daemonSets": ["a", "b", "c"], "forWorkloadsPerNode": 734, "wanted": 0,
                              "available": 734 * 2}
    assert doc[2]["utilization"]["nodesNeeded"] == 0  # nothing placed on the NodePool
    # an H100 node of one GPU (p5.4xlarge), all-balanced: 2 x 1g + 2g + 3g = 7 of 7 (docs/facts.md §2); all-enabled
    # MIG with no slice advertises only nvidia.com/gpu, at 0, which is shown
    small = plan_capacity([pool("one", itype="p5.4xlarge"), pool("en", "all-enabled")], []).format_table().splitlines()
    assert columns(small[1], small[0])[9] == "7/7"
    assert columns(small[4], small[0])[:1] + columns(small[4], small[0])[5:7] == ["en", GPU, "0"]
    assert doc[0]["utilization"]["computeSlicesOfGpu"] == 7 and doc[0]["utilization"]["computeSlicesPerGpu"] == [
        7, 7, 7, 7, None, None, None, None]


def test_a_pod_of_one_resource_moves_a_flexible_pod_placed_before_it():
    """A workload pinned to pool p1 accepts A or B, so it is placed first and takes 2 of p1's 3 A; then a
    workload of 3 one-A pods that p1 and p2 (1 A) both host takes p2's A, p1's free A, and the A a flexible pod
    leaves by moving to B. Without the move one of its pods would stay Pending though the units exist."""
    p1 = PoolCapacity("p1", "nodeGroup", "p5.48xlarge", "custom", "mixed", 1, 1, 1, {"A": 3, "B": 5})
    p2 = PoolCapacity("p2", "nodeGroup", "p5.48xlarge", "custom", "mixed", 1, 1, 1, {"A": 1})
    plan = plan_capacity([p1, p2], [WorkloadDemand("x", "A", 1, 2, "p1", alternatives=("B",)),
                                    WorkloadDemand("y", "A", 1, 3)])
    x, y = plan.workloads
    assert x.fits and y.fits and dict(x.counted) == {"A": 1, "B": 1}
    assert [r.requested for r in plan.pools] == [{"A": 3, "B": 1}, {"A": 1}]


def test_a_short_workload_of_multi_unit_pods_is_asked_of_its_pool_in_units():
    """3 pods of 2 A on a node of 4 A: 2 fit; the pool is asked for the third pod's 2 units too (6, not 4.5)."""
    plan = plan_capacity([_pool({"A": 4})], [WorkloadDemand("w", "A", 2, 3)])
    assert not plan.workloads[0].fits and plan.pools[0].requested == {"A": 6}


def _suggestion(pools, workloads, **kw) -> str:
    return plan_capacity(pools, workloads, **kw).workloads[0].suggestion


def test_the_suggestion_names_the_layout_or_size_that_fits_and_what_else_must_change():
    """The "Suggestion:" a user acts on, in full, for A100-40GB p4d nodes (docs/facts.md §1.6, §2: all-balanced
    gives 16 x 1g.5gb a node, all-1g.5gb 56, all-3g.20gb none) and a g5 (one A10G, no MIG):
    - a layout that needs more nodes than desired says so, and maxSize too when beyond it (a node group), or
      maxNodes for a NodePool; it counts the pool's other workloads it keeps fitting;
    - more nodes of the current layout come second (61 pods at 16 a node: 4);
    - a pool whose minSize is 2 runs at least 2 nodes whatever the layout;
    - no option beyond the most nodes a pool may run (max_pool_nodes) is offered, one at it is."""
    small, tiny = demand("small", replicas=60, pool_name="p4d"), demand("tiny", replicas=1, pool_name="p4d")
    scale4 = ("raise {size} of p4d to 4{also} (all-balanced gives 16 nvidia.com/mig-1g.5gb per node; that holds "
              "every workload of p4d)")
    layout2 = ("layout all-1g.5gb on p4d and {size} 2{also}: all-1g.5gb gives 56 nvidia.com/mig-1g.5gb per node, so 2 "
               "node(s) hold 60 pod(s), and the 1 other workload(s) of p4d keep fitting")
    assert _suggestion([pool(nodes=(1, 1, 1))], [small, tiny]) == (
        layout2.format(size="desiredSize", also=" (and maxSize 2)") + "; or "
        + scale4.format(size="desiredSize", also=" (and maxSize to 4)"))
    assert _suggestion([pool(nodes=(1, 1, 2))], [small, tiny], max_pool_nodes=4) == (
        layout2.format(size="desiredSize", also="") + "; or " + scale4.format(size="desiredSize", also=" (and maxSize to 4)"))
    assert _suggestion([pool(nodes=(1, 1, 2))], [small, tiny], max_pool_nodes=3) == layout2.format(
        size="desiredSize", also="")
    unpinned = [replace(small, pool=None), replace(tiny, pool=None)]  # only p4d hosts them: still kept fitting
    assert _suggestion([pool(nodes=(1, 1, 2))], unpinned, max_pool_nodes=3) == layout2.format(size="desiredSize", also="")
    assert _suggestion([pool(kind="nodePool", nodes=(0, 0, 1))], [small, tiny]) == (
        layout2.format(size="maxNodes", also="") + "; or " + scale4.format(size="maxNodes", also=""))
    # 20 x 1g.5gb and 8 x 3g.20gb fit 2 all-balanced nodes (no other layout has both): 2 is maxSize already
    assert _suggestion([pool(nodes=(1, 1, 2))], [demand("small", replicas=20, pool_name="p4d"),
                                                 demand("big", resource=mig("3g.20gb"), replicas=8,
                                                        pool_name="p4d")]) == (
        "raise desiredSize of p4d to 2 (all-balanced gives 16 nvidia.com/mig-1g.5gb per node; that holds every "
        "workload of p4d)")
    assert _suggestion([pool(layout_name="all-3g.20gb", nodes=(2, 2, 3))], [demand(replicas=10)]) == (
        "layout all-balanced on p4d: all-balanced gives 16 nvidia.com/mig-1g.5gb per node, so 2 node(s) hold 10 pod(s)")
    g5 = PoolCapacity("g5", "nodeGroup", "g5.xlarge", "all-disabled", "none", 1, 1, 2, {GPU: 1})
    assert _suggestion([g5], [WorkloadDemand("w", GPU, 1, 2)]) == (
        "raise desiredSize of g5 to 2 (a node gives 1 nvidia.com/gpu per node; that holds every workload of g5)")


def test_why_a_pool_cannot_run_a_workload_is_said_in_full():
    """What a user reads when a pool is wrong for a workload: a taint given without a value (Kubernetes allows
    one), every resource the pool does advertise (all-balanced p4d: 16/8/8, docs/facts.md §1.6), and a request
    for two shares where a pod may take only one (time-slicing with failRequestsGreaterThanOne, or MPS)."""
    bare_taint = pool(taints=({"key": "dedicated", "effect": "NoSchedule"},))
    (w,) = plan_capacity([bare_taint], [demand()]).workloads
    assert w.message == "no pool can run it (p4d: taint dedicated=:NoSchedule is not tolerated)"
    (w,) = plan_capacity([pool()], [demand(resource=mig("7g.40gb"))]).workloads
    assert w.message.startswith("no pool can run it (p4d: advertises no nvidia.com/mig-7g.40gb (nvidia.com/mig-1g.5gb: "
                                "16, nvidia.com/mig-2g.10gb: 8, nvidia.com/mig-3g.20gb: 8)). Suggestion: ")
    strict = {"timeSlicing": {"replicas": 4, "resources": [mig("1g.5gb")], "failRequestsGreaterThanOne": True}}
    (w,) = plan_capacity([pool(sharing=strict)], [demand(per=2)]).workloads
    assert w.message == ("no node can hold one pod (p4d: shares nvidia.com/mig-1g.5gb by time-slicing with "
                         "failRequestsGreaterThanOne, so a pod asking for 2 fails admission (one share per pod); "
                         "ask for 1)")
    mps = pool("g6", "all-disabled", itype="g6.xlarge", sharing={"mps": {"replicas": 4}})
    (w,) = plan_capacity([mps], [demand(resource=GPU, per=2)]).workloads
    assert w.message == ("no node can hold one pod (g6: shares nvidia.com/gpu by MPS, so a pod asking for 2 fails "
                         "admission (one share per pod); ask for 1)")


def test_a_pool_that_cannot_exist_is_refused_naming_it_and_the_bad_value():
    with pytest.raises(ValueError, match=r"^pool x: kind 'cluster' is not one of \('nodeGroup', 'nodePool'\)$"):
        PoolCapacity("x", "cluster", "p4d.24xlarge", "all-balanced", "mixed", 1, 1, 1, {})
    with pytest.raises(ValueError, match=r"^pool x: unknown instance type 'p9.huge'$"):
        PoolCapacity("x", "nodeGroup", "p9.huge", "all-balanced", "mixed", 1, 1, 1, {})
    with pytest.raises(ValueError, match=r"^pool x: strategy 'mixd' is not one of \('none', 'single', 'mixed'\)$"):
        PoolCapacity("x", "nodeGroup", "p4d.24xlarge", "all-balanced", "mixd", 1, 1, 1, {})


def test_a_shortfall_over_several_pools_names_each_pools_share():
    """40 one-slice pods over two all-balanced p4d node groups of one node each: 16 + 16 free, 8 Pending."""
    (w,) = plan_capacity([pool("a"), pool("b")], [demand(replicas=40)]).workloads
    assert w.message.startswith("does not fit: needs 40 x 1 nvidia.com/mig-1g.5gb = 40, 32 free (a: 16/node x 1 "
                                "desired, b: 16/node x 1 desired); 8 pods would stay Pending (nothing scales a "
                                "managed node group: its pods get desiredSize nodes). Suggestion: ")
