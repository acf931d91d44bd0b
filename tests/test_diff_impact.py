"""`make diff`'s judgement of the running fleet, on small hand-built plans (no program run): which GPU pool is
replaced, rolled, drained, scaled or relabelled, with how many nodes, the cost before, after and at the peak and
the vCPU quota it needs; and which workloads' pods restart, stop or keep stale claims, and why. Expected values
come from docs/changing-a-running-stack.md and docs/facts.md §8 and §11 (EKS user guide, managed node update
behavior; Karpenter docs, disruption; EC2 instance type vCPUs and running-instance quotas by family) and prices
multiplied out by hand; never from the diff's own output. The plan builders are test_diff_report's."""
from __future__ import annotations

import copy

import pytest
from test_diff_report import (P4D, P4D_VCPUS, CM, blue_green, changed, deployment, karpenter_pool, kpool, node_group,
                              plan, pool, rec)

from gpu_slicing.capacity import ON_DEMAND_LIST, SPOT_UNPRICED
from gpu_slicing.labels import MIG_CONFIG_LABEL, POOL_LABEL
from tools import diff

P5_VCPUS = 192  # p5.48xlarge (EC2 accelerated computing instance types)
G5_XL_VCPUS = 4  # g5.xlarge
SURGE_3_ZONES = 6  # EKS: up to twice the 3 zones a group spans (maxUnavailable 1 is less)
INFER = {"name": "infer", "pools": ["p4d-small"], "fits": True}


def pools_of(base: diff.Plan, head: diff.Plan) -> dict[str, dict]:
    return {p["name"]: p for p in diff.compare(base, head)["pools"]}


def one_pool(base: diff.Plan, head: diff.Plan) -> dict:
    [p] = diff.compare(base, head)["pools"]
    return p


# --- what a pool costs and which quota it draws on -------------------------------------------------------------------

@pytest.mark.parametrize("it,vcpus,p_family,family", [
    ("p4d.24xlarge", P4D_VCPUS, True, "P"), ("p5.48xlarge", P5_VCPUS, True, "P"),
    ("g5.xlarge", G5_XL_VCPUS, False, "G and VT"), ("g6e.xlarge", 4, False, "G and VT"),
])
def test_a_pools_vcpus_count_against_the_quota_of_its_instance_family(it, vcpus, p_family, family):
    """EC2 running-instance quotas are per family (P, G and VT, Standard) in vCPUs: a user sizing a quota
    request needs the family and the vCPUs of every node up at the peak (here 3 unchanged nodes)."""
    p = one_pool(plan(pools=(pool("x", 3, it=it),)), plan(pools=(pool("x", 3, it=it),)))
    assert p["quota"] == {"vcpus": 3 * vcpus, "pInstances": p_family, "family": family}


def test_instance_families_outside_the_gpu_quotas_and_a_missing_pool():
    """A vt1 counts against G and VT, anything else against Standard; a side without the pool has no nodes,
    no price and no quota."""
    assert diff._quota_name({"launch": {"instanceType": "vt1.3xlarge"}}) == "G and VT"
    assert diff._quota_name({"launch": {"instanceType": "m7i.large"}}) == "Standard"
    assert not diff._p_family({"launch": {"instanceType": "g5.xlarge"}})
    assert (diff._quota_name(None), diff._p_family(None), diff._vcpus(None)) == ("Standard", False, 0)
    assert diff._vcpus({"launch": {"instanceType": "no-such.type"}}) == 0
    assert diff._vcpus({"launch": {"instanceType": "p5.48xlarge"}}) == P5_VCPUS
    assert diff.running_nodes(None) == 0 and diff.price(None) == 0.0
    assert diff.running_nodes({"nodes": {"willExist": "4"}}) == 4
    assert diff.price({"launch": {"usdPerNodeHour": "1.5"}}) == 1.5


def test_each_pools_cost_is_rounded_to_the_cent():
    """g5.xlarge at $1.006/h: 3 nodes cost $3.018 -> $3.02, 5 nodes $5.03 (the peak: the larger side)."""
    p = one_pool(plan(pools=(pool("g", 3, it="g5.xlarge", price=1.006, layout="ts-4"),)),
                 plan(pools=(pool("g", 5, it="g5.xlarge", price=1.006, layout="ts-4"),)))
    assert p["cost"] == {"before": 3.02, "after": 5.03, "peak": 5.03}
    assert (p["nodes"], p["nodesAfter"], p["peakNodes"]) == (3, 5, 5)


def test_the_price_basis_is_the_heads_and_on_demand_when_unsaid():
    """A pool moving to unpriced spot is said to be priced at most at its on-demand list price."""
    p = one_pool(plan(pools=(pool("p4d-small"),)), plan(pools=(pool("p4d-small", priceBasis=SPOT_UNPRICED),)))
    assert p["priceBasis"] == SPOT_UNPRICED
    p = one_pool(plan(pools=(pool("p4d-small", priceBasis=SPOT_UNPRICED),)), plan(pools=(pool("p4d-small"),)))
    assert p["priceBasis"] == ON_DEMAND_LIST
    p = one_pool(plan(pools=(pool("p4d-small", priceBasis=SPOT_UNPRICED),)), plan())
    assert p["priceBasis"] == SPOT_UNPRICED  # a removed pool: what it was priced at


def test_pools_are_listed_head_first_then_those_only_the_base_has():
    base = plan(pools=(pool("gone"), pool("kept")))
    head = plan(pools=(pool("new"), pool("kept")))
    assert list(pools_of(base, head)) == ["new", "kept", "gone"]


# --- pools created, removed, or taken with the cluster ---------------------------------------------------------------

def test_a_new_pool_costs_only_after_and_a_removed_one_only_before():
    """A created pool has no nodes before; a removed one none after, and its quota is the base's type."""
    by = pools_of(plan(pools=(pool("gone", 2),)), plan(pools=(pool("new", 3, it="p5.48xlarge", price=55.04),)))
    new, gone = by["new"], by["gone"]
    assert new["layout"] == {"before": None, "after": "all-1g.5gb"} and (new["nodes"], new["nodesAfter"]) == (0, 3)
    assert new["cost"] == {"before": 0.0, "after": 165.12, "peak": 165.12} and new["peakNodes"] == 3
    assert new["quota"] == {"vcpus": 3 * P5_VCPUS, "pInstances": True, "family": "P"}
    assert new["why"] == "new nodeGroup: 3 node(s) of p5.48xlarge in all-1g.5gb" and new["slicesAway"] == ""
    assert gone["layout"] == {"before": "all-1g.5gb", "after": None} and (gone["nodes"], gone["nodesAfter"]) == (2, 0)
    assert gone["peakNodes"] == 2 and gone["quota"] == {"vcpus": 2 * P4D_VCPUS, "pInstances": True, "family": "P"}
    assert gone["why"] == ("nodeGroup removed: its 2 node(s) are drained, then terminated (after the head's "
                           "creates)")


def cluster_case(head_pools: tuple) -> dict[str, dict]:
    cluster = rec("cl", diff.CLUSTER, {"name": "gpu", "vpcId": "vpc-1"})
    return pools_of(plan(cluster, pools=(pool("p4d-small", 2),)),
                    plan(changed(cluster, vpcId="vpc-2"), pools=head_pools))


def test_a_replaced_cluster_runs_the_old_and_the_new_pool_side_by_side():
    """The new cluster's pool (3 nodes, a new layout) boots while the old one's 2 still run: 5 x 21.96 =
    109.80 $/h and 5 x 96 vCPUs at the peak; every slice is away until the new nodes boot (~5 min) and set up
    MIG (~10 min)."""
    p = cluster_case((pool("p4d-small", 3, layout="all-3g.20gb"),))["p4d-small"]
    assert p["impact"] == "delete" and p["peakNodes"] == 5
    assert p["cost"] == {"before": 43.92, "after": 65.88, "peak": 109.8}
    assert p["quota"]["vcpus"] == 5 * P4D_VCPUS
    assert p["why"] == ("THE CLUSTER IS REPLACED: the pool's 2 node(s) are destroyed with it; the pool is created "
                        "again in the new cluster (3 node(s), which boot into all-3g.20gb)")
    assert p["slicesAway"] == ("every slice, from the old cluster's end until the new pool's nodes boot and set up "
                               "MIG (~15 min after the new cluster exists)")


def test_a_replaced_cluster_without_the_pool_in_the_head_only_destroys_it():
    p = cluster_case(())["p4d-small"]
    assert p["impact"] == "delete" and p["peakNodes"] == 2 and p["nodesAfter"] == 0
    assert p["cost"] == {"before": 43.92, "after": 0.0, "peak": 43.92}
    assert p["why"] == "THE CLUSTER IS REPLACED: the pool's 2 node(s) are destroyed with it"


def test_a_pool_new_beside_a_replaced_cluster_is_a_create():
    by = cluster_case((pool("p4d-small", 2), pool("fresh", 1)))
    assert by["fresh"]["impact"] == "create" and by["fresh"]["peakNodes"] == 1
    assert by["fresh"]["cost"]["peak"] == P4D


# --- node groups: which one, and what its change does ------------------------------------------------------------------

def test_only_the_node_group_tagged_with_the_pool_judges_it():
    """Each pool is judged by the node group carrying its pool tag: another group's roll is not this pool's."""
    a, b = node_group("a", "pool-a"), node_group("b", "pool-b")
    b["inputs"]["labels"][POOL_LABEL] = "pool-a"  # a label is not what names the pool's group: the tag is
    by = pools_of(plan(a, b, pools=(pool("pool-a"), pool("pool-b"))),
                  plan(a, changed(b, version="1.35"), pools=(pool("pool-a"), pool("pool-b"))))
    assert by["pool-b"]["impact"] == "rolling-replace" and by["pool-a"]["impact"] == "none"
    untagged = rec("u", diff.MNG, {"version": "1.34", "labels": {POOL_LABEL: "pool-a"}})
    p = one_pool(plan(untagged, pools=(pool("pool-a"),)), plan(changed(untagged, version="1.35"), pools=(pool("pool-a"),)))
    assert p["impact"] == "none"


def test_an_unchanged_node_group_with_more_planned_nodes_changes_nothing_of_its_own():
    """The capacity plan may differ while the node group record does not: no impact, no reason, the larger
    side is the peak."""
    ng = node_group("ng", "p4d-small")
    p = one_pool(plan(ng, pools=(pool("p4d-small", 2),)), plan(ng, pools=(pool("p4d-small", 3),)))
    assert p["impact"] == "none" and p["why"] == "" and p["slicesAway"] == ""
    assert p["cost"] == {"before": 43.92, "after": 65.88, "peak": 65.88} and p["peakNodes"] == 3


def test_a_roll_names_only_what_rolls_and_peaks_above_the_larger_side():
    """A new version, a new label and one more node at once: EKS rolls for the version (UpdateNodegroupVersion);
    the label and the size change in place. The surge of 6 comes on top of the 3 nodes after: 9 x 21.96 = 197.64."""
    old = node_group("ng", "p4d-small", desired=2)
    new = changed(old, version="1.35", labels={MIG_CONFIG_LABEL: "all-1g.5gb", POOL_LABEL: "p4d-small", "team": "a"},
                  scalingConfig={"desiredSize": 3, "minSize": 0, "maxSize": 10})
    p = one_pool(plan(old, pools=(pool("p4d-small", 2),)), plan(new, pools=(pool("p4d-small", 3),)))
    assert p["impact"] == "rolling-replace" and p["peakNodes"] == 3 + SURGE_3_ZONES
    assert p["cost"] == {"before": 43.92, "after": 65.88, "peak": 197.64}
    assert p["quota"]["vcpus"] == 9 * P4D_VCPUS
    assert p["why"] == ("version: EKS UpdateNodegroupVersion replaces the 2 node(s); updateStrategy DEFAULT (no "
                        "updateConfig): EKS raises the group by up to 6 node(s) (twice the 3 zone(s) it spans, or "
                        "maxUnavailable 1, the larger; EKS user guide, managed node update behavior)")
    assert p["slicesAway"] == ("pods evicted from old nodes wait ~10 min on new ones (EKS calls a node Ready before "
                               "its MIG layout is applied)")


def test_a_minimal_roll_peaks_at_the_larger_side_and_takes_a_whole_boot():
    old = node_group("ng", "p4d-small", desired=2, updateConfig={"updateStrategy": "MINIMAL", "maxUnavailable": 1})
    new = changed(old, version="1.35", scalingConfig={"desiredSize": 3, "minSize": 0, "maxSize": 10})
    p = one_pool(plan(old, pools=(pool("p4d-small", 2),)), plan(new, pools=(pool("p4d-small", 3),)))
    assert p["impact"] == "rolling-replace" and p["peakNodes"] == 3 and p["cost"]["peak"] == 65.88
    assert p["slicesAway"] == "each replaced node's slices for ~15 min (boot, then MIG setup with its reboot)"


def test_a_size_limit_changed_without_a_new_node_count_is_in_place():
    old = node_group("ng", "p4d-small")
    new = changed(old, scalingConfig={"desiredSize": 2, "minSize": 0, "maxSize": 20})
    p = one_pool(plan(old, pools=(pool("p4d-small"),)), plan(new, pools=(pool("p4d-small"),)))
    assert p["impact"] == "none" and p["why"] == "changed in place, no node replaced: scalingConfig.maxSize"
    assert p["slicesAway"] == "" and p["peakNodes"] == 2 and p["cost"]["peak"] == 43.92


def test_a_node_count_planned_differently_without_a_size_change_is_no_scale():
    """Only a changed scalingConfig scales a node group: a tag changed while the plan counts another node is
    an in-place change."""
    old = node_group("ng", "p4d-small")
    new = changed(old, tags={POOL_LABEL: "p4d-small", "team": "a"})
    p = one_pool(plan(old, pools=(pool("p4d-small", 2),)), plan(new, pools=(pool("p4d-small", 3),)))
    assert p["impact"] == "none" and p["why"] == "changed in place, no node replaced: tags.team"


def test_labels_set_where_there_were_none_relabel_live_nodes():
    """A node group registered without labels that gains the MIG layout label relabels its live nodes."""
    old = node_group("ng", "p4d-small")
    del old["inputs"]["labels"]
    new = changed(old, labels={MIG_CONFIG_LABEL: "all-3g.20gb"})
    p = one_pool(plan(old, pools=(pool("p4d-small"),)), plan(new, pools=(pool("p4d-small", layout="all-3g.20gb"),)))
    assert p["impact"] == "reconfigure-in-place"
    assert p["slicesAway"] == "until the nodes are drained by hand and the MIG manager succeeds"
    assert p["why"].endswith("Cordon and drain them first, or let the node group be replaced (migLayoutChange: "
                             "replace)")


def test_a_node_group_replaced_delete_first_under_its_urn_says_what_forced_it():
    """Same resource, a new instance type, deleteBeforeReplace: the nodes drain before new ones exist, so the
    peak is the larger side, never both; the reason is the rule that forced the replace."""
    old = node_group("ng", "p4d-small", ng_name="gpu-p4d-small-aaaaaaa", instanceTypes=["p4d.24xlarge"])
    old["options"] = {"deleteBeforeReplace": True}
    new = changed(old, nodeGroupName="gpu-p4d-small-bbbbbbb", instanceTypes=["p4de.24xlarge"])
    p = one_pool(plan(old, pools=(pool("p4d-small", 2),)), plan(new, pools=(pool("p4d-small", 3),)))
    assert p["impact"] == "rolling-replace" and p["peakNodes"] == 3 and p["cost"]["peak"] == 65.88
    assert p["why"].startswith("node group replaced delete-first (instanceTypes.0: only in EKS CreateNodegroup")
    assert p["why"].endswith("): its 2 node(s) drain before new ones exist")
    assert p["slicesAway"] == "every slice of the pool for ~15 min (boot and MIG setup of the new nodes)"
    assert "collides" not in p


def test_a_blue_green_says_what_it_moves_and_how_long_pods_wait():
    p = blue_green()["pools"][0]
    assert p["why"] == ("new node group gpu-p4d-small-bbbbbbb (3 x p4d.24xlarge, all-3g.20gb) is created and ready "
                        "before EKS drains and deletes gpu-p4d-small-aaaaaaa (2 node(s), all-1g.5gb): new nodes boot "
                        "straight into their layout; changed its Pulumi resource name")
    assert p["slicesAway"] == ("pods moved off the old group wait up to ~10 min (EKS calls a node Ready before the "
                               "MIG manager has set up and rebooted into its layout)")
    assert p["quota"]["vcpus"] == 5 * P4D_VCPUS and "collides" not in p
    same = blue_green(same_name=True)["pools"][0]
    assert same["why"] == ("node group replaced (its Pulumi resource name) under the same EKS name "
                           "gpu-p4d-small-aaaaaaa: the create-before-delete replace collides with the live group and "
                           "`pulumi up` fails; change what the name's token covers (instance type, capacity type, AMI "
                           "type, layout) or replace delete-first")


# --- the GPU Operator's values ---------------------------------------------------------------------------------------

def operator_release(name: str = "gpu-operator", **values) -> dict:
    return rec("op", diff.RELEASE, {"name": "gpu-operator", "chart": "gpu-operator",
                                    "values": {"mig": {"strategy": "single"}, "devicePlugin": {"config": {
                                        "default": "a"}}, **values}}, name=name)


def test_a_device_plugin_config_change_restarts_the_plugin_on_every_untouched_pool():
    """A devicePlugin change upgrades the operator in place: the plugin on each pool's nodes restarts (~1 min)
    and running pods keep their devices; a pool that changes anyway says its own change."""
    op = operator_release()
    new = changed(op, values={"mig": {"strategy": "mixed"}, "devicePlugin": {"config": {"default": "b"}}})
    ng = node_group("ng", "scaled", desired=2)
    grown = changed(ng, scalingConfig={"desiredSize": 3, "minSize": 0, "maxSize": 10})
    by = pools_of(plan(op, ng, pools=(pool("p4d-small"), pool("scaled", 2))),
                  plan(new, grown, pools=(pool("p4d-small"), pool("scaled", 3))))
    assert by["p4d-small"]["impact"] == "none"
    assert by["p4d-small"]["why"] == (
        "GPU Operator values changed (values.devicePlugin.config.default, values.mig.strategy): the device plugin on "
        "the pool's nodes restarts with the new config and advertises its slices anew; running pods keep their "
        "devices")
    assert by["p4d-small"]["slicesAway"] == "new pods wait ~1 min while the device plugin restarts"
    assert by["scaled"]["impact"] == "scale" and by["scaled"]["why"].startswith("desiredSize 2 -> 3")
    assert by["scaled"]["slicesAway"] == ""


@pytest.mark.parametrize("name,head", [
    ("karpenter", {"name": "gpu-operator", "devicePlugin": {"config": {"default": "b"}}}),  # another release
    ("gpu-operator", {"name": "gpu-operator-2"}),  # replaced (a new release name), not upgraded in place
])
def test_only_an_in_place_upgrade_of_the_gpu_operator_restarts_the_device_plugin(name, head):
    op = operator_release(name)
    new = copy.deepcopy(op)
    new["inputs"]["name"] = head["name"]
    if "devicePlugin" in head:
        new["inputs"]["values"]["devicePlugin"] = head["devicePlugin"]
    else:
        new["inputs"]["values"]["mig"] = {"strategy": "mixed"}
    p = one_pool(plan(op, pools=(pool("p4d-small"),)), plan(new, pools=(pool("p4d-small"),)))
    assert p["why"] == "" and p["slicesAway"] == ""


def test_slices_per_node_are_said_only_when_they_change():
    p = one_pool(plan(pools=(pool("p4d-small"),)), plan(pools=(pool("p4d-small"),)))
    assert "slicesPerNode" not in p
    p = one_pool(plan(pools=(pool("p4d-small"),)), plan(pools=(pool("p4d-small", per_node={"nvidia.com/gpu": 8}),)))
    assert p["slicesPerNode"] == {"before": {"nvidia.com/mig-1g.5gb": 56}, "after": {"nvidia.com/gpu": 8}}


# --- Karpenter pools --------------------------------------------------------------------------------------------------

def test_a_replaced_nodepool_drains_every_node_of_its_pool():
    """A NodePool of another API version is another object: deleted (its nodes drained) and created again,
    both pools' nodes up at once: 6 x 21.96 = 131.76 $/h."""
    np_, nc = karpenter_pool()
    new = changed(np_, apiVersion="karpenter.sh/v2")
    p = one_pool(plan(np_, nc, pools=(kpool(),)), plan(new, nc, pools=(kpool(),)))
    assert p["impact"] == "delete" and p["peakNodes"] == 6 and p["cost"]["peak"] == 131.76
    assert p["why"].startswith("np-kp is replaced (delete, then create): every node of the pool is drained (apiVersion")


def requirements(*capacity_types: str) -> dict:
    return {"spec": {"requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In",
                                       "values": list(capacity_types)}]}}


def test_narrowed_requirements_drift_the_pool_and_widened_ones_do_not():
    """Karpenter docs, disruption (special cases on drift): dropping spot drifts the nodes outside the new
    requirements, one at a time here (3 + 1 at the peak); adding it drifts none."""
    wide, nc = karpenter_pool(template=requirements("on-demand", "spot"))
    narrow, _ = karpenter_pool(template=requirements("on-demand"))
    p = one_pool(plan(wide, nc, pools=(kpool(),)), plan(narrow, nc, pools=(kpool(),)))
    assert p["impact"] == "rolling-replace" and p["peakNodes"] == 4 and p["cost"]["peak"] == 87.84
    assert p["why"] == ("drift: spec.template.spec.requirements.0.values; Karpenter replaces the pool's 3 node(s), "
                        "launching each replacement before it drains the old node; drifted nodes are replaced one at "
                        "a time, at any time (Karpenter docs, disruption)")
    p = one_pool(plan(narrow, nc, pools=(kpool(),)), plan(wide, nc, pools=(kpool(),)))
    assert p["impact"] == "none" and p["peakNodes"] == 3
    assert p["why"].startswith("requirements widened: Karpenter docs, disruption (special cases on drift): widened")


def test_a_drifting_pool_that_also_grows_peaks_above_its_new_size():
    """3 -> 4 nodes while drifting one at a time: 4 + 1 nodes at the peak, 5 x 21.96 = 109.80 $/h."""
    np_, nc = karpenter_pool()
    new = copy.deepcopy(np_)
    new["inputs"]["spec"]["template"]["spec"]["taints"] = [{"key": "a", "effect": "NoSchedule"}]
    p = one_pool(plan(np_, nc, pools=(kpool(3),)), plan(new, nc, pools=(kpool(4),)))
    assert p["impact"] == "rolling-replace" and p["peakNodes"] == 5
    assert p["cost"] == {"before": 65.88, "after": 87.84, "peak": 109.8}


def test_a_one_node_pool_drifts_one_node_even_at_a_faster_pace():
    np_, nc = karpenter_pool(budgets=[{"nodes": "2", "reasons": ["Drifted"]}])
    new = copy.deepcopy(np_)
    new["inputs"]["spec"]["template"]["spec"]["taints"] = [{"key": "a", "effect": "NoSchedule"}]
    p = one_pool(plan(np_, nc, pools=(kpool(1),)), plan(new, nc, pools=(kpool(1),)))
    assert p["peakNodes"] == 2 and p["cost"]["peak"] == 43.92


def test_an_ami_alias_drifts_only_with_a_cluster_version_change():
    """The al2023@ alias resolves per Kubernetes version: a cluster change that is not its version (tags)
    drifts nothing; nor does an upgrade of another pool's nodes."""
    cluster = rec("cl", diff.CLUSTER, {"name": "gpu", "version": "1.34"})
    np_, nc = karpenter_pool(alias=True)
    p = one_pool(plan(cluster, np_, nc, pools=(kpool(),)), plan(changed(cluster, tags={"a": "b"}), np_, nc,
                                                                  pools=(kpool(),)))
    assert p["impact"] == "none" and p["why"] == ""


def test_only_the_pools_own_nodepool_judges_it():
    """Another NodePool's drift, or a ConfigMap named like the pool, is not this pool's change."""
    np_, nc = karpenter_pool()
    other, other_nc = karpenter_pool("other")
    drifted = copy.deepcopy(other)
    drifted["inputs"]["spec"]["template"]["spec"]["taints"] = [{"key": "a", "effect": "NoSchedule"}]
    cm = rec("cm", CM, {"metadata": {"name": "kp"}, "data": {"k": "1"}})
    by = pools_of(plan(np_, nc, other, other_nc, cm, pools=(kpool(), kpool(2, "other"))),
                  plan(np_, nc, drifted, other_nc, changed(cm, data={"k": "2"}), pools=(kpool(), kpool(2, "other"))))
    assert by["other"]["impact"] == "rolling-replace" and by["kp"]["impact"] == "none"


# --- workloads: which pods restart, and why -----------------------------------------------------------------------------

def workloads_of(base: diff.Plan, head: diff.Plan) -> dict:
    [w] = diff.compare(base, head)["workloads"]
    return w


def rolled(ng: dict) -> dict:
    return changed(ng, version="1.35")


def test_pods_on_replaced_nodes_say_that_first_then_what_their_template_changed():
    """A roll and an image bump at once: the node replacement is the first reason (it is what moves them)."""
    ng = node_group("ng", "p4d-small")
    w = workloads_of(plan(ng, deployment(), pools=(pool("p4d-small"),), workloads=(INFER,)),
                     plan(rolled(ng), deployment(image="vllm:2"), pools=(pool("p4d-small"),), workloads=(INFER,)))
    assert w["restarts"] == 3
    assert w["restartWhy"] == ["node replaced (rolling-replace of p4d-small)", "image vllm:1 -> vllm:2"]


def test_pods_on_a_blue_green_pool_restart_and_on_a_scaled_one_do_not():
    w = {**INFER, "pools": ["p4d-small"]}
    r = blue_green()
    assert r["pools"][0]["impact"] == "blue-green"
    old = node_group("old", "p4d-small", ng_name="gpu-p4d-small-aaaaaaa")
    new = node_group("new", "p4d-small", ng_name="gpu-p4d-small-bbbbbbb", layout="all-3g.20gb")
    wl = workloads_of(plan(old, deployment(), pools=(pool("p4d-small", 2),), workloads=(w,)),
                      plan(new, deployment(), pools=(pool("p4d-small", 3, layout="all-3g.20gb"),), workloads=(w,)))
    assert wl["restarts"] == 3 and wl["restartWhy"] == ["node replaced (blue-green of p4d-small)"]
    ng = node_group("ng", "p4d-small", desired=2)
    grown = changed(ng, scalingConfig={"desiredSize": 3, "minSize": 0, "maxSize": 10})
    wl = workloads_of(plan(ng, deployment(), pools=(pool("p4d-small", 2),), workloads=(w,)),
                      plan(grown, deployment(), pools=(pool("p4d-small", 3),), workloads=(w,)))
    assert wl["restarts"] == 0 and wl["restartWhy"] == []


def test_pods_of_a_deployment_made_new_by_a_new_cluster_restart_for_the_cluster_alone():
    """Objects a replaced provider recreates in the new cluster are replaced too, but their pods go because
    the cluster goes: said once, by the cluster."""
    cluster = rec("cl", diff.CLUSTER, {"name": "gpu", "vpcId": "vpc-1"})
    prov = rec("prov", diff.PROVIDER, {"kubeconfig": "<computed>"}, prop_deps={"kubeconfig": ["cl"]})
    dep = deployment()
    dep["provider"] = "prov::id-1"
    r = diff.compare(plan(cluster, prov, dep, pools=(pool("p4d-small"),), workloads=(INFER,)),
                     plan(changed(cluster, vpcId="vpc-2"), prov, dep, pools=(pool("p4d-small"),), workloads=(INFER,)))
    [w] = r["workloads"]
    assert w["restarts"] == 3
    assert w["restartWhy"] == ["the cluster is replaced: destroyed with it, created again in the new one"]


def test_a_removed_deployment_stops_its_pods_and_restarts_none():
    ng = node_group("ng", "p4d-small")
    w = workloads_of(plan(ng, deployment(), pools=(pool("p4d-small"),), workloads=(INFER,)),
                     plan(rolled(ng), pools=(pool("p4d-small"),), workloads=(INFER,)))
    assert w["stops"] == 3 and w["restarts"] == 0 and w["restartWhy"] == []


def test_a_new_deployment_has_no_running_pods_to_restart():
    ng = node_group("ng", "p4d-small")
    w = workloads_of(plan(ng, pools=(pool("p4d-small"),), workloads=(INFER,)),
                     plan(rolled(ng), deployment(), pools=(pool("p4d-small"),), workloads=(INFER,)))
    assert w["restarts"] == 0 and "stops" not in w


def test_a_deployment_without_a_replica_count_runs_one_pod():
    """apps/v1 DeploymentSpec: replicas defaults to 1, so an image bump restarts that one pod; none when the
    Deployment is unchanged, and none of a Deployment scaled to zero."""
    dep = deployment()
    del dep["inputs"]["spec"]["replicas"]
    bumped = copy.deepcopy(dep)
    bumped["inputs"]["spec"]["template"]["spec"]["containers"][0]["image"] = "vllm:2"
    w = workloads_of(plan(dep, workloads=(INFER,)), plan(bumped, workloads=(INFER,)))
    assert w["restarts"] == 1 and w["restartWhy"] == ["image vllm:1 -> vllm:2"]
    w = workloads_of(plan(dep, workloads=(INFER,)), plan(changed(dep), workloads=(INFER,)))
    assert w["restarts"] == 0 and w["restartWhy"] == []
    w = workloads_of(plan(deployment(replicas=0), workloads=(INFER,)),
                     plan(deployment(replicas=0, image="vllm:2"), workloads=(INFER,)))
    assert w["restarts"] == 0 and w["restartWhy"] == ["image vllm:1 -> vllm:2"]


def test_a_slice_resource_renamed_names_every_resource_sorted():
    """migStrategy mixed -> single: both MIG resources become nvidia.com/gpu; other limits are not slices."""
    old = deployment()
    old["inputs"]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] = {
        "nvidia.com/mig-2g.10gb": 1, "nvidia.com/mig-1g.5gb": 1, "cpu": "1"}
    new = deployment(resource="nvidia.com/gpu")
    new["inputs"]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = "1"
    w = workloads_of(plan(old, workloads=(INFER,)), plan(new, workloads=(INFER,)))
    assert w["restartWhy"] == ["resource renamed nvidia.com/mig-1g.5gb, nvidia.com/mig-2g.10gb -> nvidia.com/gpu"]


def limits(**values) -> dict:
    dep = deployment()
    dep["inputs"]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] = values
    return dep


def test_a_changed_slice_count_or_cpu_limit_restarts_the_pods():
    """Kubernetes rolls a Deployment's pods whenever its pod template changes (a new ReplicaSet): two slices a
    pod instead of one, or another CPU limit, restarts all 3 running pods. The diff used to say none: it
    left every resources path out, not only those of a renamed slice resource."""
    mig = "nvidia.com/mig-1g.5gb"
    w = workloads_of(plan(limits(**{mig: 1}), workloads=(INFER,)), plan(limits(**{mig: 2}), workloads=(INFER,)))
    assert w["restarts"] == 3
    assert w["restartWhy"] == [f"pod template: spec.template.spec.containers.0.resources.limits.{mig}"]
    w = workloads_of(plan(limits(**{mig: 1, "cpu": "1"}), workloads=(INFER,)),
                     plan(limits(**{"nvidia.com/gpu": 1, "cpu": "2"}), workloads=(INFER,)))
    assert w["restartWhy"] == [f"resource renamed {mig} -> nvidia.com/gpu",
                               "pod template: spec.template.spec.containers.0.resources.limits.cpu"]


def test_a_changed_selector_is_said_without_the_other_fields():
    w = workloads_of(plan(deployment(), workloads=(INFER,)), plan(deployment(selector="p4d-big"), workloads=(INFER,)))
    assert w["restartWhy"] == ["nodeSelector"] and w["restarts"] == 3


def test_the_planners_message_is_given_only_when_the_workload_changes():
    """The capacity plan's message (why it fits or not) is news only when its verdict changed."""
    same = {**INFER, "message": "fits in 2 nodes"}
    w = workloads_of(plan(workloads=(same,)), plan(workloads=(same,)))
    assert "message" not in w and (w["before"], w["after"]) == ("fits", "fits")
    moved = {**same, "pools": ["p4d-big"], "fits": False, "message": "no room"}
    w = workloads_of(plan(workloads=(same,)), plan(workloads=(moved,)))
    assert w["message"] == "no room" and w["pool"] == {"before": ["p4d-small"], "after": ["p4d-big"]}
    assert w["after"] == "pending"
    w = workloads_of(plan(workloads=(same,)), plan())
    assert "message" not in w and w["after"] == "absent" and w["pool"]["after"] is None
    w = workloads_of(plan(), plan(workloads=({"name": "infer", "pools": []},)))
    assert (w["before"], w["after"]) == ("absent", "pending")  # no `fits` recorded: it does not fit


def claim_case(template_change: dict, *, old_dep: bool = True) -> dict:
    tmpl = rec("rct", diff.CLAIM_TEMPLATE, {"metadata": {"name": "slice"}, "spec": {"spec": {"devices": "a"}}})
    dep = deployment()
    dep["dependencies"] = ["rct"]
    base = plan(tmpl, *([dep] if old_dep else []), workloads=(INFER,))
    return workloads_of(base, plan(changed(tmpl, **template_change), dep, workloads=(INFER,)))


def test_stale_claims_only_from_a_replaced_template_under_running_pods():
    """A claim is never updated: only a replaced template (its spec is immutable) leaves running pods with
    claims made from the old one; a label on it changes in place, and a new Deployment has no old claims."""
    assert claim_case({"spec": {"spec": {"devices": "b"}}})["staleClaims"] == {"pods": 3, "templates": ["rct"]}
    assert "staleClaims" not in claim_case({"metadata": {"name": "slice", "labels": {"a": "b"}}})
    assert "staleClaims" not in claim_case({"spec": {"spec": {"devices": "b"}}}, old_dep=False)


# --- more of what a pool's change says -------------------------------------------------------------------------------

def test_a_pool_scaled_down_peaks_at_its_old_size_to_the_cent():
    """g5.xlarge at $1.006/h, 3 -> 2 nodes: $3.018 -> $3.02 before and at the peak, $2.012 -> $2.01 after."""
    p = one_pool(plan(pools=(pool("g", 3, it="g5.xlarge", price=1.006),)),
                 plan(pools=(pool("g", 2, it="g5.xlarge", price=1.006),)))
    assert p["cost"] == {"before": 3.02, "after": 2.01, "peak": 3.02} and p["peakNodes"] == 3


def test_an_instance_type_the_plan_does_not_name_draws_on_no_gpu_quota():
    """A launch without an instance type (or without a launch) counts no vCPUs against any GPU quota."""
    bare = {"name": "x", "kind": "nodeGroup", "layout": "all-1g.5gb", "nodes": {"willExist": 1},
            "launch": {"usdPerNodeHour": 1.0}}
    assert (diff._p_family(bare), diff._quota_name(bare), diff._vcpus(bare)) == (False, "Standard", 0)
    assert (diff._p_family({}), diff._quota_name({}), diff._vcpus({})) == (False, "Standard", 0)


def test_a_node_group_only_the_head_records_is_judged_by_the_plan_alone():
    """A pool the base planned without a node group record (an older program's base): no roll, no relabel
    can be read, so it is priced from the plan and changes nothing of its own."""
    ng = node_group("ng", "p4d-small")
    p = one_pool(plan(pools=(pool("p4d-small", 2),)), plan(rolled(ng), pools=(pool("p4d-small", 3),)))
    assert p["impact"] == "none" and p["why"] == "" and p["cost"]["peak"] == 65.88
    p = one_pool(plan(ng, pools=(pool("p4d-small", 2),)), plan(pools=(pool("p4d-small", 3),)))
    assert p["impact"] == "none" and p["why"] == "" and p["cost"]["peak"] == 65.88


def test_the_live_relabel_in_full():
    old = node_group("ng", "p4d-small", layout="all-1g.5gb")
    new = changed(old, labels={MIG_CONFIG_LABEL: "all-3g.20gb", POOL_LABEL: "p4d-small"})
    p = one_pool(plan(old, pools=(pool("p4d-small", 3),)), plan(new, pools=(pool("p4d-small", 3, layout="all-3g.20gb"),)))
    assert p["why"] == (
        f"DANGER: {MIG_CONFIG_LABEL} changes from all-1g.5gb to all-3g.20gb on 3 LIVE node(s) in place (EKS "
        "UpdateNodegroupConfig relabels running nodes); the MIG manager does not drain, so nodes with GPU pods end in "
        "mig.config.state=failed or pending (NVIDIA/gpu-operator#2833). Cordon and drain them first, or let the node "
        "group be replaced (migLayoutChange: replace)")


def test_a_node_group_dropping_its_layout_label_is_flagged_as_a_relabel():
    """EKS UpdateNodegroupConfig removes the label from live nodes, pods and all: the diff does not guess what
    the MIG manager makes of that and flags it like any other change of the label."""
    old = node_group("ng", "p4d-small")
    new = changed(old, labels={POOL_LABEL: "p4d-small"})
    p = one_pool(plan(old, pools=(pool("p4d-small"),)), plan(new, pools=(pool("p4d-small"),)))
    assert p["impact"] == "reconfigure-in-place"


def test_an_ignored_label_change_is_no_relabel():
    """With labels in ignoreChanges Pulumi keeps the live labels: a new layout label never reaches the nodes,
    and the version change beside it only rolls them."""
    old = node_group("ng", "p4d-small")
    old["options"] = {"ignoreChanges": ["labels"]}
    new = changed(old, version="1.35", labels={MIG_CONFIG_LABEL: "all-3g.20gb", POOL_LABEL: "p4d-small"})
    p = one_pool(plan(old, pools=(pool("p4d-small"),)), plan(new, pools=(pool("p4d-small", layout="all-3g.20gb"),)))
    assert p["impact"] == "rolling-replace"


def test_every_rolling_input_is_named_and_every_in_place_one():
    old = node_group("ng", "p4d-small", releaseVersion="1.34.0-a")
    new = changed(old, version="1.35", releaseVersion="1.35.0-b")
    p = one_pool(plan(old, pools=(pool("p4d-small"),)), plan(new, pools=(pool("p4d-small"),)))
    assert p["why"].startswith("releaseVersion, version: EKS UpdateNodegroupVersion replaces the 2 node(s); ")
    new = changed(old, labels={MIG_CONFIG_LABEL: "all-1g.5gb", POOL_LABEL: "p4d-small", "team": "a"},
                  tags={POOL_LABEL: "p4d-small", "team": "a"})
    p = one_pool(plan(old, pools=(pool("p4d-small"),)), plan(new, pools=(pool("p4d-small"),)))
    assert p["why"] == "changed in place, no node replaced: labels.team, tags.team"


def test_a_new_launch_template_version_rolls_the_pool_and_says_where_it_came_from():
    lt = rec("lt", "aws:ec2/launchTemplate:LaunchTemplate", {"userData": "a"})
    ng = node_group("ng", "p4d-small", launchTemplate={"id": "<computed>", "version": "<computed>"})
    ng["propertyDependencies"] = {"launchTemplate": ["lt"]}
    p = one_pool(plan(lt, ng, pools=(pool("p4d-small"),)), plan(changed(lt, userData="b"), ng, pools=(pool("p4d-small"),)))
    assert p["impact"] == "rolling-replace"
    assert p["why"].startswith("launchTemplate (from lt): EKS UpdateNodegroupVersion replaces the 2 node(s); ")


def test_a_time_slicing_label_change_says_how_long_new_pods_wait():
    old = node_group("ng", "ts", layout="all-disabled")
    old["inputs"]["labels"]["nvidia.com/device-plugin.config"] = "ts-4"
    new = copy.deepcopy(old)
    new["inputs"]["labels"]["nvidia.com/device-plugin.config"] = "ts-8"
    p = one_pool(plan(old, pools=(pool("ts"),)), plan(new, pools=(pool("ts"),)))
    assert p["slicesAway"] == ("new pods wait ~1 min: the live nodes' label changes in place (UpdateNodegroupConfig) "
                               "and the device plugin switches to the new sharing config; running pods keep their "
                               "devices")


# --- more of what a Karpenter pool's change says ----------------------------------------------------------------------

def test_a_karpenter_pool_scaled_down_peaks_at_its_old_size():
    np_, nc = karpenter_pool()
    p = one_pool(plan(np_, nc, pools=(kpool(3),)), plan(np_, nc, pools=(kpool(2),)))
    assert p["impact"] == "scale" and p["cost"] == {"before": 65.88, "after": 43.92, "peak": 65.88}


def crd_release() -> dict:
    return rec("crd", diff.RELEASE, {"name": "karpenter-crd", "chart": "karpenter-crd", "version": "1.0"})


def test_the_crd_release_deleted_drains_every_karpenter_pool_and_an_upgrade_none():
    """Both the old pool's 3 nodes and the new ones are up at the peak: 6 x 21.96 = 131.76 $/h. A version bump
    of the CRD chart is an in-place helm upgrade: no NodePool goes."""
    np_, nc = karpenter_pool()
    crd = crd_release()
    p = one_pool(plan(crd, np_, nc, pools=(kpool(),)), plan(np_, nc, pools=(kpool(),)))
    assert p["impact"] == "delete" and p["cost"]["peak"] == 131.76
    assert p["why"] == ("the Karpenter CRD release crd is deleted: uninstalling the CRDs deletes every NodePool and "
                        "NodeClaim: every Karpenter node is drained and terminated")
    p = one_pool(plan(crd, np_, nc, pools=(kpool(),)), plan(changed(crd, version="1.1"), np_, nc, pools=(kpool(),)))
    assert p["impact"] == "none" and p["cost"]["peak"] == 65.88


def test_only_the_crd_release_itself_drains_the_pools():
    """Another resource named for the CRDs (an IAM role) replaced is not the CRD release."""
    np_, nc = karpenter_pool()
    role = rec("role", "aws:iam/role:Role", {"name": "karpenter-crd-reader", "path": "/"})
    p = one_pool(plan(role, np_, nc, pools=(kpool(),)), plan(changed(role, path="/x/"), np_, nc, pools=(kpool(),)))
    assert p["impact"] == "none"


def test_a_nodepool_under_a_new_resource_costs_both_pools_at_the_peak():
    np_, nc = karpenter_pool()
    moved, _ = karpenter_pool(urn="np-kp-2")
    p = one_pool(plan(np_, nc, pools=(kpool(),)), plan(moved, nc, pools=(kpool(),)))
    assert p["cost"]["peak"] == 131.76
    assert p["why"] == "NodePool moved to a new resource: deleted (every node drained) and created again"


def test_drift_from_the_nodepool_and_its_nodeclass_names_both():
    np_, nc = karpenter_pool()
    new = copy.deepcopy(np_)
    new["inputs"]["spec"]["template"]["spec"]["taints"] = [{"key": "a", "effect": "NoSchedule"}]
    new_nc = changed(nc, spec={"amiSelectorTerms": [{"id": "ami-2"}]})
    p = one_pool(plan(np_, nc, pools=(kpool(),)), plan(new, new_nc, pools=(kpool(),)))
    assert p["why"].startswith("drift: spec.template.spec.taints, spec.amiSelectorTerms.0.id; Karpenter replaces")
    assert p["slicesAway"] == ("none beyond a pod restart: Karpenter drains a drifted node only once its replacement "
                               "is initialized with the slices its pods request")


def test_a_nodepool_limit_change_drifts_nothing():
    """Karpenter docs, disruption: spec.limits changes drift no node."""
    np_, nc = karpenter_pool()
    new = changed(np_, spec={**np_["inputs"]["spec"], "limits": {"nvidia.com/gpu": 64}})
    p = one_pool(plan(np_, nc, pools=(kpool(),)), plan(new, nc, pools=(kpool(),)))
    assert p["impact"] == "none" and p["why"] == "" and p["peakNodes"] == 3


def test_the_cluster_upgrade_drift_in_full_and_a_nodeclass_without_ami_terms():
    cluster = rec("cl", diff.CLUSTER, {"name": "gpu", "version": "1.34"})
    np_, nc = karpenter_pool(alias=True)
    p = one_pool(plan(cluster, np_, nc, pools=(kpool(),)),
                 plan(changed(cluster, version="1.35"), np_, nc, pools=(kpool(),)))
    assert p["why"].startswith("drift: cluster version (the al2023@ alias resolves to the new Kubernetes version's "
                               "AMI, after the control plane); Karpenter replaces the pool's 3 node(s)")
    bare = changed(nc, spec={})
    p = one_pool(plan(cluster, np_, bare, pools=(kpool(),)),
                 plan(changed(cluster, version="1.35"), np_, bare, pools=(kpool(),)))
    assert p["impact"] == "none"


def test_a_node_group_version_change_is_no_cluster_upgrade_for_karpenter():
    """Only the control plane's version moves the al2023@ alias: a node group rolling to a new version beside
    an alias-following NodePool leaves that pool alone."""
    ng = node_group("ng", "p4d-small")
    np_, nc = karpenter_pool(alias=True)
    by = pools_of(plan(ng, np_, nc, pools=(pool("p4d-small"), kpool())),
                  plan(rolled(ng), np_, nc, pools=(pool("p4d-small"), kpool())))
    assert by["kp"]["impact"] == "none" and by["p4d-small"]["impact"] == "rolling-replace"


# --- more of why pods restart ----------------------------------------------------------------------------------------

def test_a_new_deployment_on_a_rolled_pool_gives_only_the_node_reason():
    ng = node_group("ng", "p4d-small")
    w = workloads_of(plan(ng, pools=(pool("p4d-small"),), workloads=(INFER,)),
                     plan(rolled(ng), deployment(), pools=(pool("p4d-small"),), workloads=(INFER,)))
    assert w["restartWhy"] == ["node replaced (rolling-replace of p4d-small)"]


def test_single_to_mixed_names_every_new_slice_resource_and_other_template_fields_together():
    old = deployment(resource="nvidia.com/gpu")
    new = deployment()
    new["inputs"]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/mig-2g.10gb"] = 1
    new["inputs"]["spec"]["template"]["spec"]["containers"][0]["args"] = ["--x"]
    new["inputs"]["spec"]["template"]["spec"]["containers"][0]["command"] = ["serve"]
    w = workloads_of(plan(old, workloads=(INFER,)), plan(new, workloads=(INFER,)))
    assert w["restartWhy"] == ["resource renamed nvidia.com/gpu -> nvidia.com/mig-1g.5gb, nvidia.com/mig-2g.10gb",
                               "pod template: spec.template.spec.containers.0.args, "
                               "spec.template.spec.containers.0.command"]


def test_a_replaced_node_role_drifts_the_karpenter_nodes_built_from_it():
    """An EC2NodeClass whose spec takes the node role's name: a replaced role is a new name there, an
    EC2NodeClass spec change, so every node of the pool drifts (Karpenter docs, disruption)."""
    role = rec("role", "aws:iam/role:Role", {"name": "<computed>", "path": "/"})
    np_, nc = karpenter_pool()
    nc["inputs"]["spec"]["role"] = "<computed>"
    nc["propertyDependencies"] = {"spec": ["role"]}
    p = one_pool(plan(role, np_, nc, pools=(kpool(),)), plan(changed(role, path="/x/"), np_, nc, pools=(kpool(),)))
    assert p["impact"] == "rolling-replace" and p["why"].startswith("drift: spec (from role); Karpenter replaces")


def test_a_node_group_replaced_under_its_own_name_names_every_forcing_change():
    """Two create-only inputs changed under an unchanged EKS name: both are named, and the group collides."""
    old = node_group("ng", "p4d-small", ng_name="gpu-p4d-small-aaaaaaa", instanceTypes=["p4d.24xlarge"],
                     amiType="AL2023_x86_64_NVIDIA")
    new = changed(old, instanceTypes=["p4de.24xlarge"], amiType="BOTTLEROCKET_x86_64_NVIDIA")
    p = one_pool(plan(old, pools=(pool("p4d-small"),)), plan(new, pools=(pool("p4d-small"),)))
    assert p["impact"] == "blue-green" and p["collides"]
    assert p["why"].startswith("node group replaced (amiType, instanceTypes.0) under the same EKS name "
                               "gpu-p4d-small-aaaaaaa: ")


def test_only_the_workloads_own_image_is_said_as_an_image_change():
    """An image pull policy, or a second container's image, is another pod template change: it used to be said
    as `image vllm:1 -> vllm:1` (the first container's unchanged image), which names no change at all."""
    dep = deployment()
    policy = copy.deepcopy(dep)
    policy["inputs"]["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "Always"
    w = workloads_of(plan(dep, workloads=(INFER,)), plan(policy, workloads=(INFER,)))
    assert w["restartWhy"] == ["pod template: spec.template.spec.containers.0.imagePullPolicy"]
    two = copy.deepcopy(dep)
    two["inputs"]["spec"]["template"]["spec"]["containers"].append({"image": "sidecar:1"})
    bumped = copy.deepcopy(two)
    bumped["inputs"]["spec"]["template"]["spec"]["containers"][1]["image"] = "sidecar:2"
    w = workloads_of(plan(two, workloads=(INFER,)), plan(bumped, workloads=(INFER,)))
    assert w["restartWhy"] == ["pod template: spec.template.spec.containers.1.image"] and w["restarts"] == 3
