"""`make diff` on small hand-built plans (no program run): the order Pulumi applies a change in, what a replace
reaches, the headline that must be read first, each GPU pool's impact with its surge and peak cost, the pods
that restart and why, and the exit status. Expected values come from docs/facts.md §8 and §11 (EKS user guide,
managed node update behavior; Karpenter docs, disruption; Pulumi's create-before-delete replace) and prices
multiplied out by hand; never from the diff's own output."""
from __future__ import annotations

import copy

import pytest

from gpu_slicing.labels import MIG_CONFIG_LABEL, POOL_LABEL
from tools import diff

P4D = 21.96  # p4d.24xlarge on-demand list price, USD per hour (docs/facts.md, the catalog's figure)
P4D_VCPUS = 96  # docs/facts.md §11
CM = "kubernetes:core/v1:ConfigMap"
ROLE = "aws:iam/role:Role"
SUBNET = "aws:ec2/subnet:Subnet"
VPC = "aws:ec2/vpc:Vpc"
IGW = "aws:ec2/internetGateway:InternetGateway"


def rec(urn: str, rtype: str, inputs: dict | None = None, *, name: str | None = None, custom: bool = True,
        remote: bool = False, options: dict | None = None, deps: list | None = None,
        prop_deps: dict | None = None, provider: str | None = None) -> dict:
    """A registration as the offline plan records it."""
    return {"urn": urn, "type": rtype, "name": name or urn, "custom": custom, "remote": remote, "parent": "",
            "provider": provider, "dependencies": deps or [], "propertyDependencies": prop_deps or {},
            "options": options or {}, "inputs": inputs or {}}


def plan(*records: dict, pools: tuple = (), workloads: tuple = (), config: dict | None = None) -> diff.Plan:
    return diff.Plan(config or {}, {r["urn"]: r for r in records}, {"pools": list(pools), "workloads": list(workloads)},
                     order=[r["urn"] for r in records])


def changed(r: dict, **inputs) -> dict:
    out = copy.deepcopy(r)
    out["inputs"].update(inputs)
    return out


def pool(name: str, nodes: int = 2, *, kind: str = "nodeGroup", price: float = P4D, it: str = "p4d.24xlarge",
         layout: str = "all-1g.5gb", per_node: dict | None = None, **extra) -> dict:
    return {"name": name, "kind": kind, "instanceType": it, "layout": layout, "nodes": {"willExist": nodes},
            "launch": {"instanceType": it, "usdPerNodeHour": price}, "perNode": per_node or {"nvidia.com/mig-1g.5gb": 56},
            **extra}


def node_group(urn: str, pool_name: str, *, layout: str = "all-1g.5gb", desired: int = 2, subnets: int = 3,
               ng_name: str | None = None, **inputs) -> dict:
    return rec(urn, diff.MNG, {"nodeGroupName": ng_name or f"gpu-{pool_name}-abc1234", "version": "1.34",
                               "labels": {MIG_CONFIG_LABEL: layout, POOL_LABEL: pool_name},
                               "tags": {POOL_LABEL: pool_name}, "subnetIds": [f"subnet-{i}" for i in range(subnets)],
                               "scalingConfig": {"desiredSize": desired, "minSize": 0, "maxSize": 10}, **inputs},
               name=pool_name)


# --- resources: the order Pulumi runs them in, and what a replace reaches --------------------------------------------

def test_creates_and_updates_in_the_heads_order_then_deletes_in_reverse_base_order():
    """Pulumi creates and updates in dependency order and deletes last, dependents before what they depend on."""
    a, b, c, d = (rec(u, CM, {"data": {"k": u}}) for u in "abcd")
    comp = rec("comp", "gpu-slicing:index:Pool", {"x": 1}, custom=False)  # a component: nothing runs
    chart = rec("chart", "kubernetes:helm.sh/v3:Release", {"name": "chart", "chart": "c", "version": "1"},
                custom=False, remote=True)  # remote: a packaged component that does run
    base = plan(comp, chart, a, b, c, d)
    head = plan(rec("e", CM, {"data": {"k": "e"}}), changed(a, data={"k": "a2"}), changed(comp, x=2))
    r = diff.compare(base, head)
    assert r["order"] == ["create ConfigMap e", "update ConfigMap a", "delete ConfigMap d", "delete ConfigMap c",
                          "delete ConfigMap b", "delete Release chart"]
    by_name = {x["name"]: x for x in r["resources"]}
    assert by_name["e"]["why"] == "new in the head stack" and by_name["e"]["changed"] == []
    assert by_name["a"]["changed"] == ["data.k"] and by_name["a"]["why"].startswith("data.k: Kubernetes ConfigMap")
    assert by_name["d"]["why"].startswith("not in the head stack") and "after the creates" in by_name["d"]["why"]
    assert not r["fails"] and r["headlines"] == []


def test_an_unchanged_resource_is_not_listed():
    a = rec("a", CM, {"data": {"k": "v"}, "metadata": {"name": "a"}})
    r = diff.compare(plan(a), plan(copy.deepcopy(a)))
    assert r["resources"] == [] and r["order"] == [] and not r["fails"]
    assert r["controlPlanePerHour"] == {"before": 0.0, "after": 0.0} and r["kubernetes"] is None  # no cluster


def test_leaf_diff_names_each_changed_input():
    assert diff.leaf_diff({"a": {"b": 1, "c": 2}, "l": [1, 2]}, {"a": {"b": 1, "c": 3}, "l": [1, 5]}) == ["a.c", "l.1"]
    assert diff.leaf_diff({"a": 1}, {"b": 1}) == ["a", "b"]  # a key added or removed: the key
    assert diff.leaf_diff({"l": [1]}, {"l": [1, 2]}) == ["l"]  # a list that changes length: the list
    assert diff.leaf_diff([{"x": 1}], [{"x": 2}]) == ["0.x"]
    assert diff.leaf_diff(1, 1) == [] and diff.leaf_diff(1, 2) == [""]


def test_a_replaced_resource_reaches_the_inputs_built_from_it():
    """A new role is a new ARN: an access entry whose principalArn came from it is replaced too (ForceNew)."""
    role = rec("role", ROLE, {"name": "nodes", "path": "/"})
    entry = rec("entry", "aws:eks/accessEntry:AccessEntry", {"clusterName": "gpu", "principalArn": "<computed>"},
                prop_deps={"principalArn": ["role"]})
    r = diff.compare(plan(role, entry), plan(changed(role, path="/gpu/"), entry))
    by = {x["name"]: x for x in r["resources"]}
    assert by["role"]["op"] == "replace" and by["entry"]["op"] == "replace"
    assert by["entry"]["changed"] == ["principalArn (from role)"]


def test_a_launch_template_update_rolls_the_node_groups_pinning_its_version():
    """A launch template change is a new version; a node group pinning launchTemplate.version rolls to it (EKS
    UpdateNodegroupVersion)."""
    lt = rec("lt", "aws:ec2/launchTemplate:LaunchTemplate", {"userData": "a"})
    ng = node_group("ng", "p4d-small", launchTemplate={"id": "<computed>", "version": "<computed>"})
    ng["propertyDependencies"] = {"launchTemplate": ["lt"]}
    other = rec("cm", CM, {"data": {}}, prop_deps={"data": ["lt"]})  # built from another output: untouched
    r = diff.compare(plan(lt, ng, other), plan(changed(lt, userData="b"), ng, other))
    by = {x["name"]: x for x in r["resources"]}
    assert by["lt"]["op"] == "update" and not by["lt"].get("rolls")
    assert by["p4d-small"]["op"] == "update" and by["p4d-small"]["rolls"]
    assert by["p4d-small"]["changed"] == ["launchTemplate (from lt)"] and "cm" not in by


def test_an_ignored_input_is_no_change_even_when_what_it_came_from_is_replaced():
    role = rec("role", ROLE, {"name": "nodes", "path": "/"})
    ng = node_group("ng", "p4d-small", nodeRole="<computed>", options={"ignoreChanges": ["nodeRole", "subnetIds"]})
    ng["options"] = {"ignoreChanges": ["nodeRole", "subnetIds"]}
    ng["propertyDependencies"] = {"nodeRole": ["role"]}
    head_ng = changed(ng, subnetIds=["subnet-9"])
    r = diff.compare(plan(role, ng), plan(changed(role, path="/x/"), head_ng))
    assert [x["name"] for x in r["resources"]] == ["role"]
    assert any("keeps its subnetIds" in w for w in r["warnings"])


def test_eks_deletes_a_replaced_clusters_access_entries_and_add_ons_with_it():
    cluster = rec("cl", diff.CLUSTER, {"name": "gpu", "vpcId": "vpc-1", "version": "1.34"})
    addon = rec("addon", "aws:eks/addon:Addon", {"clusterName": "gpu", "addonName": "vpc-cni"})
    other = rec("addon2", "aws:eks/addon:Addon", {"clusterName": "another", "addonName": "vpc-cni"})
    r = diff.compare(plan(cluster, addon, other), plan(changed(cluster, vpcId="vpc-2"), addon, other))
    by = {x["name"]: x for x in r["resources"]}
    assert by["addon"]["op"] == "replace" and by["addon"]["newCluster"] is True
    assert "EKS deletes it with its cluster" in by["addon"]["why"] and "addon2" not in by
    assert by["cl"]["newCluster"] is False  # the cluster itself is the headline
    assert r["fails"]


def test_objects_of_a_provider_pointing_at_a_new_cluster_are_created_anew_and_said_once():
    cluster = rec("cl", diff.CLUSTER, {"name": "gpu", "vpcId": "vpc-1"})
    prov = rec("prov", diff.PROVIDER, {"kubeconfig": "<computed>"}, prop_deps={"kubeconfig": ["cl"]})
    ns = rec("ns", "kubernetes:core/v1:Namespace", {"metadata": {"name": "gpu"}}, provider="prov::id-1")
    r = diff.compare(plan(cluster, prov, ns), plan(changed(cluster, vpcId="vpc-2"), prov, ns))
    by = {x["name"]: x for x in r["resources"]}
    assert by["prov"]["op"] == "replace" and by["ns"]["op"] == "replace" and by["ns"]["newCluster"]
    assert by["ns"]["changed"] == ["(provider)"] and "created anew in the new cluster" in by["ns"]["why"]
    assert [h["text"].split(" (")[0] for h in r["headlines"]] == ["THE CLUSTER IS REPLACED"]


def test_a_replace_under_an_unchanged_physical_name_collides():
    """Pulumi replaces create-before-delete: a new role under the old role's name fails to create."""
    role = rec("role", ROLE, {"name": "nodes", "path": "/"})
    r = diff.compare(plan(role), plan(changed(role, path="/gpu/")))
    [res] = r["resources"]
    assert res["collides"] and "fixed physical name name='nodes' is unchanged" in res["why"]
    assert r["collisions"] == ["role"] and r["fails"]
    assert r["headlines"][0]["text"].startswith("REPLACE COLLIDES (Role role): path: ")
    # delete-first, or a name that changes with it: no collision
    dbr = copy.deepcopy(role)
    dbr["options"]["deleteBeforeReplace"] = True
    r = diff.compare(plan(dbr), plan(changed(dbr, path="/gpu/")))
    assert not r["resources"][0].get("collides") and not r["fails"]
    r = diff.compare(plan(role), plan(changed(role, name="nodes2")))
    assert not r["resources"][0].get("collides") and not r["fails"]
    computed = rec("role", ROLE, {"name": "<computed>", "path": "/"})
    r = diff.compare(plan(computed), plan(changed(computed, path="/x/")))
    assert not r["resources"][0].get("collides")


def test_a_new_resource_taking_a_deleted_ones_name_collides():
    old = rec("old", ROLE, {"name": "nodes"})
    new = rec("new", ROLE, {"name": "nodes"})
    r = diff.compare(plan(old), plan(new))
    by = {x["name"]: x for x in r["resources"]}
    assert by["new"]["collides"] and by["new"]["why"].startswith("created under the physical name 'nodes' that old")
    assert r["fails"] and r["collisions"] == ["new"]
    r = diff.compare(plan(old), plan(rec("new", ROLE, {"name": "nodes-2"})))
    assert not r["fails"]


def test_an_unknown_input_of_a_replaced_resource_is_not_reported():
    role = rec("role", ROLE, {"name": "nodes", "path": "/", "someNewInput": 1})
    r = diff.compare(plan(role), plan(changed(role, path="/x/", someNewInput=2)))
    assert "unknown" not in r["resources"][0] and not any("UNKNOWN" in w for w in r["warnings"])


def test_an_internet_gateway_moved_interrupts_and_is_the_headline():
    igw = rec("igw", IGW, {"vpcId": "vpc-1"})
    r = diff.compare(plan(igw), plan(changed(igw, vpcId="vpc-2")))
    [res] = r["resources"]
    assert res["op"] == "update" and res["interrupts"]
    assert r["headlines"][0]["text"].startswith("THE INTERNET GATEWAY IS DETACHED FROM ITS RUNNING VPC (igw)")
    assert r["fails"] and "(interrupts)" in diff.render(r, "b", "h")


def nodepool(urn: str, name: str, requirements: list, budgets: list | None = None) -> dict:
    return rec(urn, diff.NODEPOOL, {"metadata": {"name": name}, "spec": {
        "template": {"spec": {"requirements": requirements}},
        "disruption": {"budgets": budgets or [{"nodes": "1", "reasons": ["Drifted"]}]}}}, name=urn)


def test_nodepool_requirements_widened_do_not_roll_narrowed_do():
    ct = "karpenter.sh/capacity-type"
    np_ = nodepool("np", "pool", [{"key": ct, "operator": "In", "values": ["on-demand"]}])
    wide = copy.deepcopy(np_)
    wide["inputs"]["spec"]["template"]["spec"]["requirements"][0]["values"].append("spot")
    r = diff.compare(plan(np_), plan(wide))
    assert not r["resources"][0].get("rolls") and "widened: no node drifts" in r["warnings"][-1]
    r = diff.compare(plan(wide), plan(np_))
    assert r["resources"][0]["rolls"] and "narrowed: nodes outside them drift" in r["warnings"][-1]
    # with another change beside the requirements, the table decides (spec.template: drift)
    both = copy.deepcopy(wide)
    both["inputs"]["spec"]["template"]["spec"]["taints"] = []
    assert diff.compare(plan(np_), plan(both))["resources"][0]["rolls"]


# --- the headline ------------------------------------------------------------------------------------------------------

def entry(urn: str, rtype: str, op: str, **extra) -> dict:
    return {"urn": urn, "type": rtype, "name": urn, "op": op, "changed": [], "why": "w", **extra}


def test_the_cluster_comes_first_and_a_replaced_vpc_says_the_cluster_goes_with_it():
    res = [entry("vpc", VPC, "replace"), entry("cl", diff.CLUSTER, "replace")]
    lines = diff.headlines(plan(), plan(), res)
    assert [h["fatal"] for h in lines] == [True, True]
    assert lines[0]["text"].startswith("THE CLUSTER IS REPLACED (cl): every pool, node and workload")
    assert lines[0]["urn"] == "cl"
    assert lines[1]["text"].startswith("THE VPC IS REPLACED (vpc): EKS cannot move a cluster to another VPC")


def test_a_cluster_deleted_beside_a_new_one_is_a_replace():
    res = [entry("new", diff.CLUSTER, "create"), entry("old", diff.CLUSTER, "delete")]
    [h] = diff.headlines(plan(), plan(), res)
    assert h["fatal"] and h["text"].startswith("THE CLUSTER IS REPLACED (old is destroyed, new created): ")
    assert h["urn"] == "old"
    # the VPC it moves out of is said after it
    lines = diff.headlines(plan(), plan(), [*res, entry("vpc", VPC, "replace")])
    assert [x["urn"] for x in lines] == ["old", "vpc"]
    [h] = diff.headlines(plan(), plan(), [entry("old", diff.CLUSTER, "delete")])
    assert h["text"].startswith("THE CLUSTER IS DELETED (old): ")


def test_a_replaced_cluster_under_its_name_collides_and_says_never_delete_first():
    [h] = diff.headlines(plan(), plan(), [entry("cl", diff.CLUSTER, "replace", collides=True)])
    assert "COLLIDES and `pulumi up` fails" in h["text"] and "Never replace it delete-first" in h["text"]
    [h] = diff.headlines(plan(), plan(), [entry("vpc", VPC, "replace", collides=True)])
    assert "COLLIDES" not in h["text"]


def test_several_subnets_are_said_in_the_plural():
    res = [entry("a", SUBNET, "replace"), entry("b", SUBNET, "replace"), entry("c", SUBNET, "update")]
    [h] = diff.headlines(plan(), plan(), res)
    assert h["text"] == ("SUBNETS ARE REPLACED (a, b): the nodes and the cluster's network interfaces in them go "
                         "with them")
    [h] = diff.headlines(plan(), plan(), [entry("a", SUBNET, "delete"), entry("b", SUBNET, "delete")])
    assert h["text"].startswith("SUBNETS ARE DELETED (a, b)")


def test_what_goes_with_a_new_cluster_is_not_said_again():
    res = [entry("cl", diff.CLUSTER, "replace"), entry("role", ROLE, "replace", collides=True, newCluster=True)]
    assert [h["urn"] for h in diff.headlines(plan(), plan(), res)] == ["cl"]
    # ... and what comes after it is still read
    res.append(entry("other", ROLE, "replace", collides=True))
    assert [h["urn"] for h in diff.headlines(plan(), plan(), res)] == ["cl", "other"]


@pytest.mark.parametrize("op", ["replace", "delete"])
def test_the_karpenter_crd_release_replaced_or_deleted_is_fatal(op):
    crd = rec("crd", diff.RELEASE, {"name": "karpenter-crd", "chart": "oci://public.ecr.aws/karpenter/karpenter-crd"})
    [h] = diff.headlines(plan(crd), plan(), [entry("crd", diff.RELEASE, op)])
    assert h["fatal"] and h["text"].startswith(f"THE KARPENTER CRD RELEASE IS {op.upper()}D (crd): ")
    assert "every Karpenter node is drained" in h["text"]
    other = rec("op", diff.RELEASE, {"name": "gpu-operator", "chart": "gpu-operator"})
    assert diff.headlines(plan(other), plan(), [entry("op", diff.RELEASE, op)]) == []
    assert diff.headlines(plan(crd), plan(), [entry("crd", diff.RELEASE, "update")]) == []


def test_the_system_node_group_replaced_is_fatal_only_when_it_collides():
    system = rec("sys", diff.MNG, {"labels": {"gpu-slicing/role": "system"}, "nodeGroupName": "gpu-system"})
    [h] = diff.headlines(plan(), plan(system), [entry("sys", diff.MNG, "replace")])
    assert not h["fatal"] and h["text"].startswith("THE SYSTEM NODE GROUP IS REPLACED (sys): every controller")
    assert h["text"].endswith("moves to new nodes") and h["urn"] == "sys"
    [h] = diff.headlines(plan(), plan(system), [entry("sys", diff.MNG, "replace", collides=True)])
    assert h["fatal"] and "COLLIDES" in h["text"] and "Never replace it delete-first" in h["text"]
    gpu = rec("sys", diff.MNG, {"labels": {"gpu-slicing/role": "gpu"}})
    assert diff.headlines(plan(), plan(gpu), [entry("sys", diff.MNG, "replace")]) == []


# --- pools: impact, surge, cost ----------------------------------------------------------------------------------------

def test_the_eks_surge_in_words():
    """EKS user guide, managed node update behavior: up to twice the zones or maxUnavailable, the larger;
    updateStrategy MINIMAL terminates before it launches."""
    surge, how, zones = diff.surge_of({"inputs": {"subnetIds": "<computed>"}})
    assert (surge, zones) == (6, 3)  # zones unknown at preview: a region's usual three
    assert how == ("updateStrategy DEFAULT (no updateConfig): EKS raises the group by up to 6 node(s) (twice the 3 "
                   "zone(s) it spans, or maxUnavailable 1, the larger; EKS user guide, managed node update behavior)")
    surge, how, zones = diff.surge_of({"inputs": {"subnetIds": ["a", "b"], "update_config": {"max_unavailable": 5}}})
    assert (surge, zones) == (5, 2) and how.startswith("updateStrategy DEFAULT: ") and "maxUnavailable 5" in how
    surge, how, _ = diff.surge_of({"inputs": {"subnetIds": ["a"], "scalingConfig": {"desiredSize": 3},
                                              "updateConfig": {"updateStrategy": "minimal",
                                                               "maxUnavailablePercentage": 50}}})
    assert surge == 0 and how == ("updateStrategy MINIMAL: up to 2 node(s) terminated before their replacements "
                                  "launch (no surge, no extra quota; the slices are away for a whole boot and MIG "
                                  "setup)")  # 50% of 3 nodes, rounded up
    minimal = {"subnetIds": ["a"], "scalingConfig": {"desiredSize": 3},
               "updateConfig": {"updateStrategy": "MINIMAL", "maxUnavailablePercentage": 67}}
    assert diff.surge_of({"inputs": minimal})[1].startswith("updateStrategy MINIMAL: up to 3 node(s)")  # 2.01, up
    assert diff.surge_of({"inputs": {"subnetIds": ["a"], "updateConfig": {"maxUnavailablePercentage": 100}}})[0] == 2
    # no scalingConfig: a group of one node, 100% of it is one node
    assert diff.surge_of({"inputs": {"updateConfig": {"maxUnavailablePercentage": 100, "updateStrategy": "MINIMAL"}}}
                         )[1].startswith("updateStrategy MINIMAL: up to 1 node(s) terminated")
    assert diff.surge_of({"inputs": {"subnetIds": [], "updateConfig": "<computed>"}})[:3:2] == (6, 3)


def roll_case(subnets: int = 3, update_config: dict | None = None) -> dict:
    old = node_group("ng", "p4d-small", subnets=subnets, **({"updateConfig": update_config} if update_config else {}))
    return diff.compare(plan(old, pools=(pool("p4d-small"),)), plan(changed(old, version="1.35"),
                                                                    pools=(pool("p4d-small"),)))


def test_a_rolling_node_group_update_peaks_at_its_surge():
    """2 p4d nodes over 3 zones: EKS launches up to 6 more, 8 at the peak: 8 x 21.96 = 175.68 $/h, 8 x 96 vCPUs."""
    r = roll_case()
    [p] = r["pools"]
    assert p["impact"] == "rolling-replace" and p["peakNodes"] == 8
    assert p["cost"] == {"before": 43.92, "after": 43.92, "peak": 175.68}
    assert p["quota"] == {"vcpus": 8 * P4D_VCPUS, "pInstances": True, "family": "P"}
    assert r["pInstanceVcpusAtPeak"] == 768 and r["costPerHour"] == {"before": 43.92, "after": 43.92, "peak": 175.68}
    assert p["why"].startswith("version: EKS UpdateNodegroupVersion replaces the 2 node(s); updateStrategy DEFAULT")
    assert p["slicesAway"].startswith("pods evicted from old nodes wait ~10 min")
    assert not r["fails"]
    text = diff.render(r, "b", "h")
    assert "at the peak 8 node(s): 768 vCPUs of the account's running P-instance quota" in text
    assert "peak during the change $175.68" in text and "(rolls nodes)" in text


def test_a_minimal_rolling_update_has_no_surge_and_its_slices_are_away():
    r = roll_case(update_config={"updateStrategy": "MINIMAL", "maxUnavailable": 1})
    [p] = r["pools"]
    assert p["peakNodes"] == 2 and p["cost"]["peak"] == 43.92
    assert p["slicesAway"].startswith("each replaced node's slices for ~15 min")


def test_a_live_relabel_is_the_danger_and_fails_the_diff():
    """EKS UpdateNodegroupConfig relabels running nodes in place; the MIG manager does not drain them
    (NVIDIA/gpu-operator#2833): the diff refuses, exit 1."""
    old = node_group("ng", "p4d-small", layout="all-1g.5gb")
    new = changed(old, labels={MIG_CONFIG_LABEL: "all-3g.20gb", POOL_LABEL: "p4d-small"})
    r = diff.compare(plan(old, pools=(pool("p4d-small"),)),
                     plan(new, pools=(pool("p4d-small", layout="all-3g.20gb"),)))
    [p] = r["pools"]
    assert p["impact"] == "reconfigure-in-place" and r["reconfigureInPlace"] == ["p4d-small"] and r["fails"]
    assert p["why"].startswith(f"DANGER: {MIG_CONFIG_LABEL} changes from all-1g.5gb to all-3g.20gb on 2 LIVE node(s)")
    assert p["cost"]["peak"] == 43.92 and p["peakNodes"] == 2
    text = diff.render(r, "b", "h")
    assert "!! RECONFIGURE IN PLACE: p4d-small: live nodes get a new MIG layout with pods on them" in text
    assert "\n!!reconfigure-in-place" in text
    # the whole labels map replaced (a label added beside it) is read the same way
    new2 = changed(old, labels={MIG_CONFIG_LABEL: "all-3g.20gb"})
    assert diff.compare(plan(old, pools=(pool("p4d-small"),)),
                        plan(new2, pools=(pool("p4d-small", layout="all-3g.20gb"),)))["fails"]
    # another label changed, the layout kept: in place, no danger
    new3 = changed(old, labels={MIG_CONFIG_LABEL: "all-1g.5gb", POOL_LABEL: "p4d-small", "team": "a"})
    r = diff.compare(plan(old, pools=(pool("p4d-small"),)), plan(new3, pools=(pool("p4d-small"),)))
    assert r["pools"][0]["impact"] == "none" and not r["fails"]
    assert r["pools"][0]["why"] == "changed in place, no node replaced: labels.team"


def test_main_exits_1_when_a_live_node_would_be_relabelled(monkeypatch, capsys, tmp_path):
    old = node_group("ng", "p4d-small")
    new = changed(old, labels={MIG_CONFIG_LABEL: "all-3g.20gb", POOL_LABEL: "p4d-small"})
    plans = iter([plan(old, pools=(pool("p4d-small"),)), plan(new, pools=(pool("p4d-small", layout="all-3g.20gb"),))])
    monkeypatch.setattr(diff, "plan", lambda cfg, stack="dev": next(plans))
    stack = diff.ROOT_DIR / "Pulumi.dev.yaml"
    out = tmp_path / "r.json"
    assert diff.main(["--base", str(stack), "--config", str(stack), "--json", str(out)]) == 1
    assert "RECONFIGURE IN PLACE" in capsys.readouterr().out and '"fails": true' in out.read_text()
    plans = iter([plan(old, pools=(pool("p4d-small"),)), plan(old, pools=(pool("p4d-small"),))])
    assert diff.main(["--base", str(stack), "--config", str(stack)]) == 0
    plans = iter([diff.Plan({}, {}, {}, error="boom"), plan(old)])
    assert diff.main(["--base", str(stack), "--config", str(stack)]) == 2
    assert "does not plan: boom" in capsys.readouterr().err


def test_scaling_a_node_group_in_place():
    old = node_group("ng", "p4d-small", desired=3)
    new = changed(old, scalingConfig={"desiredSize": 2, "minSize": 0, "maxSize": 10})
    r = diff.compare(plan(old, pools=(pool("p4d-small", 3),)), plan(new, pools=(pool("p4d-small", 2),)))
    [p] = r["pools"]
    assert p["impact"] == "scale" and p["why"] == ("desiredSize 3 -> 2 (in place, UpdateNodegroupConfig); removed "
                                                   "nodes are drained")
    assert p["cost"] == {"before": 65.88, "after": 43.92, "peak": 65.88} and p["peakNodes"] == 3


def blue_green(same_name: bool = False, delete_first: bool = False) -> dict:
    old = node_group("old", "p4d-small", ng_name="gpu-p4d-small-aaaaaaa")
    new = node_group("new", "p4d-small", ng_name="gpu-p4d-small-aaaaaaa" if same_name else "gpu-p4d-small-bbbbbbb",
                     layout="all-3g.20gb")
    if delete_first:
        new["options"]["deleteBeforeReplace"] = True
    return diff.compare(plan(old, pools=(pool("p4d-small", 2),)),
                        plan(new, pools=(pool("p4d-small", 3, layout="all-3g.20gb"),)))


def test_a_node_group_under_a_new_name_is_a_blue_green_peaking_at_both():
    """The new group (3 nodes) is up before the old one (2) drains: 5 x 21.96 = 109.80 $/h at the peak."""
    r = blue_green()
    [p] = r["pools"]
    assert p["impact"] == "blue-green" and p["peakNodes"] == 5 and p["cost"]["peak"] == 109.8
    assert p["why"].startswith("new node group gpu-p4d-small-bbbbbbb (3 x p4d.24xlarge, all-3g.20gb) is created "
                               "and ready before EKS drains and deletes gpu-p4d-small-aaaaaaa (2 node(s), all-1g.5gb)")
    assert not r["fails"] and r["order"] == ["create ManagedNodeGroup p4d-small", "delete ManagedNodeGroup p4d-small"]
    assert p["why"].endswith("; changed its Pulumi resource name")  # a new URN: nothing of its own changed


def test_a_node_group_replaced_under_its_own_name_collides():
    r = blue_green(same_name=True)
    [p] = r["pools"]
    assert p["impact"] == "blue-green" and p["collides"] and r["collisions"] == ["p4d-small"] and r["fails"]
    assert p["why"].startswith("node group replaced (its Pulumi resource name) under the same EKS name "
                               "gpu-p4d-small-aaaaaaa")


def test_a_node_group_replaced_delete_first_takes_every_slice_away():
    r = blue_green(delete_first=True)
    [p] = r["pools"]
    assert p["impact"] == "rolling-replace" and p["cost"]["peak"] == 65.88  # max(2, 3) nodes, never both
    assert p["slicesAway"].startswith("every slice of the pool for ~15 min")


def test_pools_created_and_removed():
    r = diff.compare(plan(pools=(pool("gone", 2),)), plan(pools=(pool("new", 1, it="g5.xlarge", price=1.006,
                                                                       layout="ts-4"),)))
    by = {p["name"]: p for p in r["pools"]}
    assert by["new"]["impact"] == "create" and by["new"]["why"] == "new nodeGroup: 1 node(s) of g5.xlarge in ts-4"
    assert by["new"]["quota"] == {"vcpus": 4, "pInstances": False, "family": "G and VT"}
    assert by["gone"]["impact"] == "delete" and by["gone"]["cost"] == {"before": 43.92, "after": 0.0, "peak": 43.92}
    assert by["gone"]["why"].startswith("nodeGroup removed: its 2 node(s) are drained, then terminated")
    assert r["costPerHour"] == {"before": 43.92, "after": 1.01, "peak": 44.93}
    assert r["pInstanceVcpusAtPeak"] == 2 * P4D_VCPUS  # only P instances count against the P quota


def test_a_replaced_cluster_takes_every_pool_and_restarts_every_pod():
    cluster = rec("cl", diff.CLUSTER, {"name": "gpu", "vpcId": "vpc-1"})
    dep = rec("dep", diff.DEPLOYMENT, {"metadata": {"name": "infer"}, "spec": {"replicas": 4}})
    w = {"name": "infer", "pools": ["p4d-small"], "fits": True}
    r = diff.compare(plan(cluster, dep, pools=(pool("p4d-small"),), workloads=(w,)),
                     plan(changed(cluster, vpcId="vpc-2"), dep, pools=(pool("p4d-small"),), workloads=(w,)))
    [p] = r["pools"]
    assert p["impact"] == "delete" and p["peakNodes"] == 4 and p["cost"]["peak"] == 87.84
    assert p["why"].startswith("THE CLUSTER IS REPLACED: the pool's 2 node(s) are destroyed with it; the pool is "
                               "created again in the new cluster (2 node(s)")
    [wl] = r["workloads"]
    assert wl["restarts"] == 4 and wl["restartWhy"] == ["the cluster is replaced: destroyed with it, created again "
                                                        "in the new one"]


# --- workloads ---------------------------------------------------------------------------------------------------------

def deployment(image: str = "vllm:1", replicas: int = 3, resource: str = "nvidia.com/mig-1g.5gb",
               selector: str = "p4d-small") -> dict:
    return rec("dep", diff.DEPLOYMENT, {"metadata": {"name": "infer"}, "spec": {"replicas": replicas, "template": {
        "spec": {"nodeSelector": {POOL_LABEL: selector},
                 "containers": [{"image": image, "resources": {"limits": {resource: 1}}}]}}}})


def test_an_image_bump_restarts_the_running_pods():
    w = {"name": "infer", "pools": ["p4d-small"], "fits": True}
    r = diff.compare(plan(deployment(), workloads=(w,)), plan(deployment(image="vllm:2"), workloads=(w,)))
    [wl] = r["workloads"]
    assert wl["restarts"] == 3 and wl["restartWhy"] == ["image vllm:1 -> vllm:2"]
    assert "infer                fits -> fits; 3 pod(s) restart: image vllm:1 -> vllm:2" in diff.render(r, "b", "h")


def test_a_renamed_slice_resource_and_a_moved_selector_restart_the_pods():
    w = {"name": "infer", "pools": ["p4d-small"], "fits": True}
    r = diff.compare(plan(deployment(), workloads=(w,)),
                     plan(deployment(resource="nvidia.com/gpu", selector="p4d-big"), workloads=(w,)))
    assert r["workloads"][0]["restartWhy"] == ["resource renamed nvidia.com/mig-1g.5gb -> nvidia.com/gpu",
                                               "nodeSelector"]


def test_a_replica_change_restarts_nothing_and_a_removed_deployment_stops():
    w = {"name": "infer", "pools": ["p4d-small"], "fits": True}
    r = diff.compare(plan(deployment(), workloads=(w,)), plan(deployment(replicas=5), workloads=(w,)))
    assert r["workloads"][0]["restarts"] == 0 and r["workloads"][0]["restartWhy"] == []
    assert "Workloads: no pod restarts, no fit changes" in diff.render(r, "b", "h")
    r = diff.compare(plan(deployment(), workloads=(w,)), plan())
    [wl] = r["workloads"]
    assert wl["stops"] == 3 and wl["restarts"] == 0 and (wl["before"], wl["after"]) == ("fits", "absent")
    assert "its 3 pod(s) stop" in diff.render(r, "b", "h")


def test_pods_on_a_rolled_pool_restart_because_their_nodes_are_replaced():
    ng = node_group("ng", "p4d-small")
    w = {"name": "infer", "pools": ["p4d-small"], "fits": True}
    r = diff.compare(plan(ng, deployment(), pools=(pool("p4d-small"),), workloads=(w,)),
                     plan(changed(ng, version="1.35"), deployment(), pools=(pool("p4d-small"),), workloads=(w,)))
    [wl] = r["workloads"]
    assert wl["restarts"] == 3 and wl["restartWhy"] == ["node replaced (rolling-replace of p4d-small)"]


def test_a_workload_that_stops_fitting_says_why():
    before = {"name": "infer", "pools": ["p4d-small"], "fits": True}
    after = {"name": "infer", "pools": ["p4d-small"], "fits": False, "message": "needs 9 slices, 7 free"}
    r = diff.compare(plan(workloads=(before,)), plan(workloads=(after,)))
    [wl] = r["workloads"]
    assert (wl["before"], wl["after"], wl["message"]) == ("fits", "pending", "needs 9 slices, 7 free")
    assert "infer                fits -> pending  (needs 9 slices, 7 free)" in diff.render(r, "b", "h")


# --- Karpenter pools: drift, its pace and window ------------------------------------------------------------------------

def karpenter_pool(name: str = "kp", *, budgets: list | None = None, alias: bool = False, urn: str | None = None,
                   template: dict | None = None) -> tuple[dict, dict]:
    np_ = rec(urn or f"np-{name}", diff.NODEPOOL, {"metadata": {"name": name}, "spec": {
        "template": template or {"spec": {"taints": []}},
        "disruption": {"budgets": budgets if budgets is not None else [{"nodes": "1", "reasons": ["Drifted"]}]}}},
        name=f"np-{name}")
    ami = [{"alias": "al2023@latest"}] if alias else [{"id": "ami-1"}]
    nc = rec(f"nc-{name}", diff.NODECLASS, {"apiVersion": "karpenter.k8s.aws/v1", "metadata": {"name": name},
                                            "spec": {"amiSelectorTerms": ami}}, name=f"nc-{name}")
    return np_, nc


def kpool(nodes: int = 3, name: str = "kp") -> dict:
    return pool(name, nodes, kind="nodePool")


def test_a_nodepool_template_change_drifts_its_nodes_at_its_budgets_pace():
    """Karpenter launches each replacement before it drains the old node: one extra node at a time with a
    Drifted budget of 1; 3 + 1 nodes at the peak, 4 x 21.96 = 87.84 $/h."""
    np_, nc = karpenter_pool()
    new = copy.deepcopy(np_)
    new["inputs"]["spec"]["template"]["spec"]["taints"] = [{"key": "a", "effect": "NoSchedule"}]
    r = diff.compare(plan(np_, nc, pools=(kpool(),)), plan(new, nc, pools=(kpool(),)))
    [p] = r["pools"]
    assert p["impact"] == "rolling-replace" and p["peakNodes"] == 4 and p["cost"]["peak"] == 87.84
    assert p["why"] == ("drift: spec.template.spec.taints; Karpenter replaces the pool's 3 node(s), launching each "
                        "replacement before it drains the old node; drifted nodes are replaced one at a time, at any "
                        "time (Karpenter docs, disruption)")
    assert p["slicesAway"].startswith("none beyond a pod restart")


@pytest.mark.parametrize("budgets,extra", [
    ([{"nodes": "2", "reasons": ["Drifted"]}], 2),
    ([{"nodes": "0", "reasons": ["Drifted"], "schedule": "0 8 * * *", "duration": "22h"},
      {"nodes": "2", "reasons": ["Drifted"]}], 2),  # a scheduled budget is not the pace
    ([{"nodes": "5"}], 3),  # a budget for every reason applies to drift too; at most the pool's 3 nodes
    ([{"nodes": "20%", "reasons": ["Drifted"]}], 1),  # a percentage: at least one node
    ([{"nodes": "0", "reasons": ["Drifted"]}], 1),
    ([{"nodes": "4", "reasons": ["Underutilized"]}], 1),  # not a drift budget: Karpenter's default 10%, one node
    ([], 1),
])
def test_how_many_drifted_nodes_go_at_once(budgets, extra):
    np_, nc = karpenter_pool(budgets=budgets)
    new_nc = changed(nc, spec={"amiSelectorTerms": [{"id": "ami-2"}]})  # an EC2NodeClass change drifts too
    r = diff.compare(plan(np_, nc, pools=(kpool(),)), plan(np_, new_nc, pools=(kpool(),)))
    [p] = r["pools"]
    assert p["impact"] == "rolling-replace" and p["peakNodes"] == 3 + extra
    assert p["cost"]["peak"] == round((3 + extra) * P4D, 2) and p["why"].startswith("drift: spec.amiSelectorTerms")


@pytest.mark.parametrize("budgets,words", [
    ([{"nodes": "0", "reasons": ["Drifted"]}], "drifted nodes are replaced never, at any time"),
    ([{"nodes": "4", "reasons": ["Drifted"]}], "drifted nodes are replaced 4 at a time, at any time"),
    ([{"nodes": "1", "reasons": ["Empty"]}],
     "drifted nodes are replaced 10% at a time (Karpenter's default budget), at any time"),
    ([{"nodes": "1", "reasons": ["Drifted"]}, {"nodes": "0", "reasons": ["Drifted"], "schedule": "@daily",
                                                "duration": "10h"}],
     "drifted nodes are replaced one at a time, except during @daily for 10h"),
    ([{"nodes": "1", "reasons": ["Drifted"]}, {"nodes": "1", "reasons": ["Drifted"], "schedule": "0 6 * * *",
                                                "duration": "20h"}],
     "drifted nodes are replaced one at a time, at any time"),  # only a closed (nodes 0) schedule is a window
    ([{"nodes": "1", "reasons": ["Drifted"]}, {"nodes": "0", "reasons": ["Drifted"], "schedule": "15 6 * * *",
                                                "duration": "20h30m"}],
     "drifted nodes are replaced one at a time, only daily 02:45-06:15 UTC"),
    ([{"nodes": "1", "reasons": ["Drifted"]}, {"nodes": "0", "reasons": ["Drifted"], "schedule": "0 6 * * 1",
                                                "duration": "166h"}],
     "drifted nodes are replaced one at a time, only Mon 04:00-06:00 UTC"),
    ([{"nodes": "1", "reasons": ["Drifted"]}, {"nodes": "0", "reasons": ["Drifted"], "schedule": "0 6 * * 0",
                                                "duration": "24h"}],
     "drifted nodes are replaced one at a time, only Mon 06:00-Sun 06:00 UTC"),
    ([{"nodes": "0", "reasons": ["Drifted"], "schedule": "0 8 * * *", "duration": "22h"},
      {"nodes": "2", "reasons": ["Drifted"]}],  # the scheduled budget listed first: the pace is the other one's
     "drifted nodes are replaced 2 at a time, only daily 06:00-08:00 UTC"),
    ([{"nodes": "1", "reasons": ["Drifted"]}, {"nodes": "0", "reasons": ["Drifted"], "schedule": "0 6 * * *",
                                                "duration": "30m"}],
     "drifted nodes are replaced one at a time, only daily 06:30-06:00 UTC"),  # closed half an hour a day
])
def test_drift_budgets_in_words(budgets, words):
    """A `nodes: "0"` scheduled budget closes the rest of the period: the window is where it ends to where it
    starts again (a daily one ends 24 h after it starts, a weekly one 7 days)."""
    assert diff.drift_window({"inputs": {"spec": {"disruption": {"budgets": budgets}}}}) == words


def test_a_replaced_nodeclass_or_crd_release_drains_the_whole_pool():
    np_, nc = karpenter_pool()
    new_nc = changed(nc, apiVersion="karpenter.k8s.aws/v2")  # another type: another object
    r = diff.compare(plan(np_, nc, pools=(kpool(),)), plan(np_, new_nc, pools=(kpool(),)))
    [p] = r["pools"]
    assert p["impact"] == "delete" and p["peakNodes"] == 6 and p["cost"]["peak"] == round(6 * P4D, 2)
    assert p["why"].startswith("nc-kp is replaced (delete, then create): every node of the pool is drained")
    crd = rec("crd", diff.RELEASE, {"name": "karpenter-crd", "chart": "karpenter-crd", "version": "1.0"})
    r = diff.compare(plan(crd, np_, nc, pools=(kpool(),)),
                     plan(changed(crd, name="karpenter-crd-2"), np_, nc, pools=(kpool(),)))
    [p] = r["pools"]
    assert p["impact"] == "delete" and p["peakNodes"] == 6
    assert p["why"].startswith("the Karpenter CRD release crd is replaced: uninstalling the CRDs deletes every NodePool")


def test_a_nodepool_under_a_new_resource_is_deleted_and_created_again():
    np_, nc = karpenter_pool()
    moved, _ = karpenter_pool(urn="np-kp-2")
    r = diff.compare(plan(np_, nc, pools=(kpool(),)), plan(moved, nc, pools=(kpool(),)))
    [p] = r["pools"]
    assert p["impact"] == "delete" and p["peakNodes"] == 6 and p["why"].startswith("NodePool moved to a new resource")


def test_a_cluster_upgrade_drifts_nodes_whose_ami_follows_the_alias(monkeypatch):
    """The al2023@ alias resolves per Kubernetes version: after the control plane, those nodes drift."""
    import datetime as dt

    from gpu_slicing import calendar
    monkeypatch.setattr(calendar, "today", lambda: dt.date(2026, 12, 6))
    cluster = rec("cl", diff.CLUSTER, {"name": "gpu", "version": "1.34"})
    ng = node_group("ng", "p4d-small")
    np_, nc = karpenter_pool(alias=True)
    np2, nc2 = karpenter_pool("pinned")
    pools = (kpool(), kpool(2, "pinned"), pool("p4d-small"))
    r = diff.compare(plan(cluster, ng, np_, nc, np2, nc2, pools=pools),
                     plan(changed(cluster, version="1.35"), changed(ng, version="1.35"), np_, nc, np2, nc2,
                          pools=pools))
    by = {p["name"]: p for p in r["pools"]}
    assert by["kp"]["impact"] == "rolling-replace" and by["kp"]["why"].startswith("drift: cluster version (the al2023@")
    assert by["pinned"]["impact"] == "none"
    assert r["upgradePath"] == ["1. control plane cl: EKS UpdateClusterVersion (in place)",
                                "2. node groups, after the control plane: p4d-small (EKS UpdateNodegroupVersion)",
                                "3. Karpenter nodes drift to the new version's AMI: kp"]
    text = diff.render(r, "b", "h")
    assert "Kubernetes upgrade, in this order:\n  1. control plane cl" in text
    assert "Kubernetes 1.34 -> 1.35: Kubernetes 1.35 is in EKS standard support until 2027-03-27" in text


def test_an_upgrade_with_nothing_to_roll_says_so():
    cluster = rec("cl", diff.CLUSTER, {"name": "gpu", "version": "1.34"})
    r = diff.compare(plan(cluster), plan(changed(cluster, version="1.35")))
    assert r["upgradePath"] == ["1. control plane cl: EKS UpdateClusterVersion (in place)",
                                "2. node groups, after the control plane: none roll",
                                "3. Karpenter nodes drift to the new version's AMI: none"]
    assert diff.compare(plan(cluster), plan(changed(cluster, tags={"a": "b"})))["upgradePath"] == []


def test_a_karpenter_pool_scales_for_its_workloads():
    np_, nc = karpenter_pool()
    r = diff.compare(plan(np_, nc, pools=(kpool(2),)), plan(np_, nc, pools=(kpool(3),)))
    [p] = r["pools"]
    assert p["impact"] == "scale" and p["why"] == "Karpenter launches for the workloads: 2 -> 3 node(s)"
    assert p["cost"] == {"before": 43.92, "after": 65.88, "peak": 65.88} and p["peakNodes"] == 3
    assert "nodes 2->3" in diff.render(r, "b", "h")


# --- Kubernetes versions: EKS's refusal and the control plane's price ----------------------------------------------------

def test_a_skipped_minor_is_refused_first_and_fails(monkeypatch):
    """EKS upgrades one minor at a time (UpdateClusterVersion); on 2026-12-06 1.34 is in extended support
    ($0.60/h), 1.36 in standard ($0.10/h): EKS user guide, Kubernetes versions; EKS pricing."""
    import datetime as dt

    from gpu_slicing import calendar
    monkeypatch.setattr(calendar, "today", lambda: dt.date(2026, 12, 6))
    cluster = rec("cl", diff.CLUSTER, {"name": "gpu", "version": "1.34"})
    r = diff.compare(plan(cluster), plan(changed(cluster, version="1.36")))
    assert r["headlines"][0]["text"].startswith("EKS REFUSES THIS UPGRADE: EKS upgrades one minor at a time")
    assert r["fails"] and r["controlPlanePerHour"] == {"before": 0.6, "after": 0.1}
    assert r["kubernetes"]["before"] == "1.34" and r["kubernetes"]["after"] == "1.36"
    text = diff.render(r, "b", "h")
    assert "EKS control plane $0.60 -> $0.10" in text and "Kubernetes upgrade, in this order" not in text
    # a new cluster (another name) starts at its version: nothing is refused
    r = diff.compare(plan(cluster), plan(changed(cluster, version="1.36", name="gpu2")))
    assert r["kubernetes"]["refused"] is None and not any("REFUSES" in h["text"] for h in r["headlines"])
    assert diff.version_change(plan(cluster), plan(changed(cluster, version="1.99"))) is None
    assert diff.version_change(plan(cluster), plan()) is None


def test_a_region_change_is_said_first():
    a = rec("a", CM, {"data": {}})
    r = diff.compare(plan(a, config={"aws:region": "us-east-1"}), plan(a, config={"aws:region": "us-west-2"}))
    assert r["headlines"][0]["text"].startswith("THE REGION CHANGES (us-east-1 -> us-west-2)") and r["fails"]
    r = diff.compare(plan(a, config={"gpu-slicing:x": 1}), plan(a, config={"aws:region": "us-east-1"}))
    assert not r["fails"]  # no region given: us-east-1, Pulumi's default here


# --- the verification Job --------------------------------------------------------------------------------------------------

def job(pool_name: str, resource: str = "nvidia.com/mig-1g.5gb", count: str = "1", image: str = "a") -> dict:
    return rec("j", diff.JOB, {"spec": {"template": {"spec": {"nodeSelector": {POOL_LABEL: pool_name}, "containers": [
        {"image": image, "resources": {"limits": {resource: count}}}]}}}}, name="verify")


def used(p: dict, available: int, requested: int, resource: str = "nvidia.com/mig-1g.5gb") -> dict:
    return {**p, "utilization": {"resources": {resource: {"available": available, "requested": requested}}}}


@pytest.mark.parametrize("available,requested,count,blocked", [(56, 56, "1", True), (56, 55, "1", False),
                                                                (56, 55, "2", True), (56, 54, "2", False)])
def test_a_rerun_verification_job_needs_a_free_slice_on_running_nodes(available, requested, count, blocked):
    p = used(pool("p"), available, requested)
    r = diff.compare(plan(job("p", count=count), pools=(p,)), plan(job("p", count=count, image="b"), pools=(p,)))
    [v] = r["verification"]
    assert v["blocked"] is blocked and r["fails"] is blocked and v["needs"] == f"{count} x nvidia.com/mig-1g.5gb"
    assert v["text"].startswith(f"Job verify (replace) runs before the Deployments it guards and needs {count} x "
                                f"nvidia.com/mig-1g.5gb on p: {available - requested} free nvidia.com/mig-1g.5gb")
    assert ("A STEP WAITS FOR A SLICE THAT FREES ONLY AFTER IT" in diff.render(r, "b", "h")) is blocked


def test_a_verification_job_on_new_nodes_or_karpenter_never_waits():
    full = used(pool("p"), 56, 56)
    r = diff.compare(plan(pools=(full,)), plan(job("p"), pools=(full,)))  # a new Job on a full running pool
    assert r["verification"][0]["text"].startswith("Job verify (create)") and r["verification"][0]["blocked"]
    # the pool is new in the head: its nodes are new
    r = diff.compare(plan(), plan(job("p"), pools=(full,)))
    assert not r["verification"][0]["blocked"] and "new nodes (free until the Deployments move)" in \
        r["verification"][0]["text"]
    kfull = used(kpool(), 56, 56)
    r = diff.compare(plan(job("kp"), pools=(kfull,)), plan(job("kp", image="b"), pools=(kfull,)))
    assert not r["verification"][0]["blocked"] and "a node Karpenter launches" in r["verification"][0]["text"]
    r = diff.compare(plan(job("p"), pools=(full,)), plan(job("p"), pools=(full,)))
    assert r["verification"] == []  # not rerun


# --- MIG layouts live nodes still carry -------------------------------------------------------------------------------------

CUSTOM = [{"devices": "all", "mig-enabled": True, "mig-devices": {"1g.5gb": 3, "2g.10gb": 2}}]
A100_ALL_1G = [{"device-filter": ["0x20B010DE"], "devices": "all", "mig-enabled": True,  # NVIDIA's default config
                "mig-devices": {"1g.5gb": 7}}]


def mig_configmap(configs: dict) -> dict:
    import yaml

    return rec("migcm", CM, {"metadata": {"name": "custom-mig-config"},
                             "data": {"config.yaml": yaml.safe_dump({"version": "v1", "mig-configs": configs})}})


def layout_case(base_configs: dict | None, head_configs: dict | None, before: str, after: str, nodes: int = 2):
    b = [mig_configmap(base_configs)] if base_configs is not None else []
    h = [mig_configmap(head_configs)] if head_configs is not None else []
    return diff.compare(plan(*b, pools=(pool("p4d-small", nodes, layout=before),)),
                        plan(*h, pools=(pool("p4d-small", nodes, layout=after),)))


def test_a_custom_layout_dropped_from_the_config_is_kept_for_the_live_nodes():
    r = layout_case({"custom-abc": CUSTOM, "all-disabled": []}, {"all-1g.5gb": A100_ALL_1G, "all-disabled": []},
                    "custom-abc", "all-1g.5gb")
    assert r["retainMigLayouts"] == {"custom-abc": CUSTOM}
    text = diff.render(r, "b", "h")
    assert "drops layout(s) live nodes still carry" in text and "retainedMigLayouts:" in text
    assert "custom-abc:" in text and "gpu-slicing:gpuOperator:" in text
    # the operator's own config (no ConfigMap of ours in the head) has no custom layout either
    assert layout_case({"custom-abc": CUSTOM}, None, "custom-abc", "all-1g.5gb")["retainMigLayouts"] == {
        "custom-abc": CUSTOM}
    # but it has the named ones
    assert layout_case({"all-1g.5gb": A100_ALL_1G}, None, "all-1g.5gb", "all-3g.20gb")["retainMigLayouts"] == {}


def test_a_named_layout_the_base_took_from_the_operator_is_written_out_for_the_head():
    """A base without our ConfigMap ran NVIDIA's config; a head with one must still hold the live nodes' layout."""
    r = layout_case(None, {"custom-abc": CUSTOM}, "all-1g.5gb", "custom-abc")
    assert r["retainMigLayouts"] == {"all-1g.5gb": A100_ALL_1G}
    assert layout_case(None, None, "all-1g.5gb", "all-3g.20gb")["retainMigLayouts"] == {}


def test_no_layout_is_kept_for_a_pool_without_nodes_or_one_the_head_still_holds():
    assert layout_case({"custom-abc": CUSTOM}, {"x": CUSTOM}, "custom-abc", "x", nodes=0)["retainMigLayouts"] == {}
    assert layout_case({"custom-abc": CUSTOM}, {"custom-abc": CUSTOM, "x": CUSTOM}, "custom-abc",
                       "x")["retainMigLayouts"] == {}


def test_removing_a_retained_layout_warns():
    """Base: a ConfigMap holding a layout no pool uses (kept for live nodes); the head drops it."""
    r = layout_case({"all-1g.5gb": A100_ALL_1G, "custom-old": CUSTOM, "all-disabled": []},
                    {"all-1g.5gb": A100_ALL_1G, "all-disabled": []}, "all-1g.5gb", "all-1g.5gb")
    assert r["warnings"] == ["retainedMigLayouts entry custom-old is removed: a node still carrying it (check "
                             "`kubectl get nodes -L nvidia.com/mig.config`) ends in mig.config.state=failed when its "
                             "MIG manager restarts; remove it only once no node shows it"]
    assert "WARNING: retainedMigLayouts entry custom-old is removed" in diff.render(r, "b", "h")


# --- what else the report says -------------------------------------------------------------------------------------------------

def test_a_gpu_operator_values_change_restarts_the_device_plugin_only():
    op = rec("op", diff.RELEASE, {"name": "gpu-operator", "chart": "gpu-operator",
                                  "values": {"mig": {"strategy": "single"}, "driver": {"enabled": False}}},
             name="gpu-operator")
    r = diff.compare(plan(op, pools=(pool("p4d-small"),)),
                     plan(changed(op, values={"mig": {"strategy": "mixed"}, "driver": {"enabled": False}}),
                          pools=(pool("p4d-small"),)))
    [p] = r["pools"]
    assert p["impact"] == "none" and p["why"].startswith("GPU Operator values changed (values.mig.strategy): the "
                                                         "device plugin on the pool's nodes restarts")
    assert p["slicesAway"] == "new pods wait ~1 min while the device plugin restarts"
    r = diff.compare(plan(op, pools=(pool("p4d-small"),)),
                     plan(changed(op, values={"mig": {"strategy": "single"}, "driver": {"enabled": True}}),
                          pools=(pool("p4d-small"),)))
    assert r["pools"][0]["why"] == "" and r["pools"][0]["slicesAway"] == ""


def test_a_time_slicing_config_label_changes_in_place_and_new_pods_wait_for_the_plugin():
    old = node_group("ng", "ts", layout="all-disabled")
    old["inputs"]["labels"]["nvidia.com/device-plugin.config"] = "ts-4"
    new = copy.deepcopy(old)
    new["inputs"]["labels"]["nvidia.com/device-plugin.config"] = "ts-8"
    r = diff.compare(plan(old, pools=(pool("ts", per_node={"nvidia.com/gpu": 32}),)),
                     plan(new, pools=(pool("ts", per_node={"nvidia.com/gpu": 64}),)))
    [p] = r["pools"]
    assert p["impact"] == "none" and p["slicesAway"].startswith("new pods wait ~1 min: the live nodes' label changes")
    assert p["slicesPerNode"] == {"before": {"nvidia.com/gpu": 32}, "after": {"nvidia.com/gpu": 64}}
    assert "    per node: 32 x nvidia.com/gpu -> 64 x nvidia.com/gpu" in diff.render(r, "b", "h")


def test_a_spot_pool_is_priced_at_most_its_on_demand_list_price():
    from gpu_slicing.capacity import SPOT_UNPRICED

    p = pool("spot", priceBasis=SPOT_UNPRICED)
    r = diff.compare(plan(pools=(p,)), plan(pools=(p,)))
    text = diff.render(r, "b", "h")
    assert "(peak $43.92/h) at most: spot, not priced (its on-demand list price)" in text
    assert "GPU cost per hour (spot, not priced): before $43.92, after $43.92" in text


def test_the_rendered_resources_say_what_changed_and_why():
    role = rec("role", ROLE, {"name": "nodes", "path": "/"}, options={"deleteBeforeReplace": True})
    a = rec("a", CM, {"data": {"k": "1"}})
    r = diff.compare(plan(role, a), plan(changed(role, path="/x/"), changed(a, data={"k": "2"}),
                                         rec("b", CM, {"data": {}})))
    text = diff.render(r, "base.yaml", "head.yaml")
    assert text.startswith("Change from base.yaml to head.yaml\n")
    assert "Resources (3 changed, in the order Pulumi applies them):" in text
    assert "  +- replace aws:iam/role:Role  role\n       changed: path\n       why: path: terraform-provider-aws" in text
    assert "  ~  update  kubernetes:core/v1:ConfigMap  a\n       changed: data.k\n" in text
    assert "  +  create  kubernetes:core/v1:ConfigMap  b\n" in text
    assert "why: data.k" not in text  # an in-place update needs no why
    assert "!!!!" not in text  # nothing loud


def test_a_packaged_components_children_are_judged_as_what_eks_is_asked_for():
    """pulumi-eks's ManagedNodeGroup: its EKS node group's updateConfig and ignored inputs are folded in."""
    r = rec("ng", diff.MNG, {"nodeGroupName": "a"}, options={"ignoreChanges": ["tags"], "children": {
        "child": {"inputs": {"updateConfig": {"maxUnavailable": 2}}, "ignoreChanges": ["subnetIds", "tags"]}}})
    folded = diff._fold_children(r)
    assert folded["inputs"] == {"nodeGroupName": "a", "updateConfig": {"maxUnavailable": 2}}
    assert folded["options"]["ignoreChanges"] == ["tags", "subnetIds"]
    assert r["inputs"] == {"nodeGroupName": "a"}  # the record itself is left as it was
    plain = rec("x", CM, {"data": {}})
    assert diff._fold_children(plain) is plain


def test_a_replaced_deployment_restarts_its_pods_and_a_replaced_claim_template_leaves_old_claims():
    w = {"name": "infer", "pools": ["p4d-small"], "fits": True}
    dep = deployment()
    moved = copy.deepcopy(dep)
    moved["inputs"]["spec"]["selector"] = {"matchLabels": {"app": "x"}}  # immutable: a replace
    r = diff.compare(plan(dep, workloads=(w,)), plan(moved, workloads=(w,)))
    assert r["workloads"][0]["restarts"] == 3 and r["workloads"][0]["restartWhy"][0].startswith(
        "Deployment replaced (spec.selector: Kubernetes: immutable field")
    tmpl = rec("rct", diff.CLAIM_TEMPLATE, {"metadata": {"name": "slice"}, "spec": {"spec": {"devices": "a"}}})
    dep2 = copy.deepcopy(dep)
    dep2["dependencies"] = ["rct"]
    r = diff.compare(plan(tmpl, dep2, workloads=(w,)),
                     plan(changed(tmpl, spec={"spec": {"devices": "b"}}), dep2, workloads=(w,)))
    [wl] = r["workloads"]
    assert wl["staleClaims"] == {"pods": 3, "templates": ["rct"]} and wl["restarts"] == 0
    assert "claim template rct replaced: its 3 running pod(s) keep the claims made from the old one" in \
        diff.render(r, "b", "h")


def test_other_pod_template_changes_are_named():
    w = {"name": "infer", "pools": ["p4d-small"], "fits": True}
    dep = deployment()
    new = copy.deepcopy(dep)
    new["inputs"]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/mig-1g.5gb"] = 2
    new["inputs"]["spec"]["template"]["spec"]["containers"][0]["args"] = ["--x"]
    r = diff.compare(plan(dep, workloads=(w,)), plan(new, workloads=(w,)))
    assert r["workloads"][0]["restartWhy"] == ["pod template: spec.template.spec.containers.0.args, "
                                               "spec.template.spec.containers.0.resources.limits.nvidia.com/mig-1g.5gb"]


# --- the command line ---------------------------------------------------------------------------------------------------

def test_main_plans_both_sides_of_the_named_stack_and_writes_the_report(monkeypatch, capsys, tmp_path):
    calls = []
    a = rec("a", CM, {"data": {"k": "1"}})

    def fake_plan(cfg, stack="dev"):
        calls.append((stack, cfg.get("gpu-slicing:maxGpuNodes")))
        return plan(a) if len(calls) == 1 else plan(changed(a, data={"k": "2"}))

    monkeypatch.setattr(diff, "plan", fake_plan)
    dev = diff.ROOT_DIR / "Pulumi.dev.yaml"
    out = tmp_path / "r.json"
    assert diff.main(["--base", str(dev), "--json", str(out)]) == 0
    import json
    import yaml

    nodes = yaml.safe_load(dev.read_text())["config"]["gpu-slicing:maxGpuNodes"]
    assert calls == [("dev", nodes), ("dev", nodes)]  # --stack dev by default: Pulumi.dev.yaml, its stack name
    text = capsys.readouterr().out
    assert text.startswith("Change from Pulumi.dev.yaml to Pulumi.dev.yaml\n") and f"report written to {out}" in text
    report = json.loads(out.read_text())
    assert report["base"] == report["head"] == "Pulumi.dev.yaml" and report["order"] == ["update ConfigMap a"]


def test_main_plans_a_git_base_with_its_own_program(monkeypatch, capsys):
    seen = {}

    def fake_at_ref(ref, stack_file, config):
        seen.update(ref=ref, stack_file=stack_file, nodes=config.get("gpu-slicing:maxGpuNodes"))
        return plan()

    monkeypatch.setattr(diff, "plan_at_ref", fake_at_ref)
    monkeypatch.setattr(diff, "plan", lambda cfg, stack="dev": plan())
    assert diff.main(["--base", "git:HEAD"]) == 0
    assert seen["ref"] == "HEAD" and seen["stack_file"] == "Pulumi.dev.yaml" and seen["nodes"] is not None
    assert capsys.readouterr().out.startswith("Change from Pulumi.dev.yaml at HEAD (its own program) to Pulumi.dev.yaml")
    seen.clear()
    assert diff.main(["--base", "git:HEAD", "--same-program"]) == 0 and seen == {}
    assert capsys.readouterr().out.startswith("Change from Pulumi.dev.yaml at HEAD to Pulumi.dev.yaml\n")


def test_main_exits_2_when_a_side_cannot_be_read_or_planned(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(diff, "plan", lambda cfg, stack="dev": plan())
    dev = str(diff.ROOT_DIR / "Pulumi.dev.yaml")
    assert diff.main(["--base", str(tmp_path / "missing.yaml"), "--config", dev]) == 2
    assert "missing.yaml" in capsys.readouterr().err
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text("config:\n  gpu-slicing:maxGpuNodes: 1\n  gpu-slicing:maxGpuNodes: 2\n")
    assert diff.main(["--base", str(bad), "--config", dev]) == 2
    assert "maxGpuNodes" in capsys.readouterr().err
    assert diff.main(["--base", dev, "--config", str(bad)]) == 2
    assert "maxGpuNodes" in capsys.readouterr().err
    monkeypatch.setattr(diff, "plan_at_ref", lambda ref, f, c: diff.Plan({}, {}, {}, error="no such stack\nat ref"))
    assert diff.main(["--base", "git:HEAD", "--config", dev]) == 2
    assert "does not plan: no such stack\n  at ref" in capsys.readouterr().err


# --- more of what a replace reaches, and how it is said ---------------------------------------------------------------

def test_a_cluster_replaced_under_a_new_resource_takes_its_objects_without_collisions():
    """The old cluster is deleted after the new one is created: its Kubernetes objects, node groups and add-ons
    go with it (said by the cluster's line), and a release of the same name in the new cluster is no collision."""
    old_cl = rec("cl", diff.CLUSTER, {"name": "gpu", "vpcId": "vpc-1"})
    new_cl = rec("cl2", diff.CLUSTER, {"name": "gpu2", "vpcId": "vpc-1"})
    rel = rec("rel", diff.RELEASE, {"name": "karpenter", "chart": "karpenter"})
    rel2 = rec("rel2", diff.RELEASE, {"name": "karpenter", "chart": "karpenter"})
    addon = rec("addon", "aws:eks/addon:Addon", {"clusterName": "gpu", "addonName": "vpc-cni"})
    role = rec("role", ROLE, {"name": "nodes"})
    role2 = rec("role2", ROLE, {"name": "nodes"})
    r = diff.compare(plan(old_cl, rel, addon, role), plan(new_cl, rel2, addon, role2))
    by = {x["name"]: x for x in r["resources"]}
    assert by["rel"]["op"] == "delete" and by["rel"]["newCluster"] and not by["rel2"].get("collides")
    assert by["addon"]["op"] == "replace" and "EKS deletes it with its cluster" in by["addon"]["why"]
    assert by["role2"]["collides"] and not by["role"].get("newCluster")  # an IAM role is no object of the cluster
    texts = [h["text"] for h in r["headlines"]]
    assert texts[0].startswith("THE CLUSTER IS REPLACED (cl is destroyed, cl2 created): ")
    assert texts[1:] == [f"REPLACE COLLIDES (Role role2): {by['role2']['why']}"]


def test_replace_on_changes_and_ignore_changes_of_a_registration():
    cm = rec("cm", CM, {"data": {"k": "1"}}, options={"replaceOnChanges": ["data"]})
    r = diff.compare(plan(cm), plan(changed(cm, data={"k": "2"})))
    assert r["resources"][0]["op"] == "replace" and r["resources"][0]["why"].startswith("data.k: replaceOnChanges")
    ng = node_group("ng", "p4d-small")
    ng["options"] = {"ignoreChanges": ["subnetIds"]}
    r = diff.compare(plan(ng), plan(changed(ng, subnetIds=["subnet-7", "subnet-8", "subnet-9"])))
    assert r["resources"] == []  # subnetIds.0 .. .2: inside the ignored input


def test_every_decisive_reason_is_given_once():
    role = rec("role", ROLE, {"name": "nodes", "path": "/", "description": "a"}, options={"deleteBeforeReplace": True})
    r = diff.compare(plan(role), plan(changed(role, name="nodes2", path="/x/", description="b")))
    [res] = r["resources"]
    assert res["changed"] == ["description", "name", "path"]
    tf = "terraform-provider-aws (behind pulumi-aws): ForceNew field"
    assert res["why"] == f"name: {tf}; path: {tf}"  # the in-place description is no reason for the replace


def test_a_vpc_updated_in_place_is_no_headline_and_two_nat_gateways_are_said_together():
    assert diff.headlines(plan(), plan(), [entry("vpc", VPC, "update")]) == []
    nat = "aws:ec2/natGateway:NatGateway"
    [h] = diff.headlines(plan(), plan(), [entry("a", nat, "replace"), entry("b", nat, "delete")])
    assert h["text"].startswith("NAT GATEWAY ARE REPLACED (a, b): private nodes lose their way out")


def test_the_region_is_said_before_an_upgrade_refusal_and_a_base_without_config_has_no_region():
    cluster = rec("cl", diff.CLUSTER, {"name": "gpu", "version": "1.34"})
    r = diff.compare(plan(cluster, config={"aws:region": "us-east-1"}),
                     plan(changed(cluster, version="1.36"), config={"aws:region": "eu-west-1"}))
    assert [h["text"][:22] for h in r["headlines"]] == ["THE REGION CHANGES (us", "EKS REFUSES THIS UPGRA"]
    a = rec("a", CM, {"data": {}})
    assert not diff.compare(plan(a), plan(a, config={"aws:region": "eu-west-1"}))["fails"]


def test_the_rendered_pool_line_and_the_loud_block():
    r = roll_case()
    text = diff.render(r, "b", "h")
    assert ("\n  rolling-replace       nodeGroup p4d-small              nodes 2     $43.92/h -> $43.92/h "
            "(peak $175.68/h)\n") in text
    assert "P-instance vCPUs at the peak: 768" in text and "!!" not in text
    r = blue_green(same_name=True)
    text = diff.render(r, "b", "h")
    assert "\n" + "!" * 78 + "\n!! " in text  # a failing change opens with its headlines
    assert "at the peak 5 node(s): 480 vCPUs of the account's running P-instance quota" in text


def test_a_node_group_replaced_in_place_of_its_urn_says_what_changed():
    """Same resource, a new instance type: a replace (CreateNodegroup only) under a new EKS name."""
    old = node_group("ng", "p4d-small", ng_name="gpu-p4d-small-aaaaaaa", instanceTypes=["p4d.24xlarge"])
    new = changed(old, nodeGroupName="gpu-p4d-small-bbbbbbb", instanceTypes=["p4de.24xlarge"])
    r = diff.compare(plan(old, pools=(pool("p4d-small"),)), plan(new, pools=(pool("p4d-small"),)))
    [p] = r["pools"]
    assert p["impact"] == "blue-green" and p["why"].endswith("changed instanceTypes.0, nodeGroupName")
    assert p["peakNodes"] == 4 and p["cost"]["peak"] == 87.84
    assert p["slicesAway"].startswith("pods moved off the old group wait up to ~10 min")


def test_a_pool_without_its_node_group_record_and_a_scale_up():
    r = diff.compare(plan(pools=(pool("p4d-small", 2),)), plan(pools=(pool("p4d-small", 3),)))
    [p] = r["pools"]
    assert p["impact"] == "none" and p["cost"] == {"before": 43.92, "after": 65.88, "peak": 65.88}
    assert p["layout"] == {"before": "all-1g.5gb", "after": "all-1g.5gb"} and p["priceBasis"] == "on-demand list"
    assert "GPU cost per hour (on-demand list): before $43.92, after $65.88" in diff.render(r, "b", "h")
    old = node_group("ng", "p4d-small", desired=2)
    new = changed(old, scalingConfig={"desiredSize": 3, "minSize": 0, "maxSize": 10})
    r = diff.compare(plan(old, pools=(pool("p4d-small", 2),)), plan(new, pools=(pool("p4d-small", 3),)))
    assert r["pools"][0]["why"] == "desiredSize 2 -> 3 (in place, UpdateNodegroupConfig)"


def test_replaced_node_groups_say_why_and_cost_both_groups():
    r = blue_green(delete_first=True)
    assert r["pools"][0]["why"].startswith("node group replaced delete-first (a new URN)") and \
        r["pools"][0]["why"].endswith("): its 2 node(s) drain before new ones exist")
    r = blue_green(same_name=True)
    assert r["pools"][0]["cost"]["peak"] == 109.8 and r["pools"][0]["peakNodes"] == 5


def test_pods_under_a_live_relabel_and_on_a_removed_pool():
    old = node_group("ng", "p4d-small")
    new = changed(old, labels={MIG_CONFIG_LABEL: "all-3g.20gb", POOL_LABEL: "p4d-small"})
    w = {"name": "infer", "pools": ["p4d-small"], "fits": True}
    r = diff.compare(plan(old, deployment(), pools=(pool("p4d-small"),), workloads=(w,)),
                     plan(new, deployment(), pools=(pool("p4d-small", layout="all-3g.20gb"),), workloads=(w,)))
    [wl] = r["workloads"]
    assert wl["restarts"] == 3 and wl["restartWhy"] == ["MIG layout changed under them on p4d-small"]
    assert wl["pool"] == {"before": ["p4d-small"], "after": ["p4d-small"]}
    r = diff.compare(plan(deployment(), pools=(pool("p4d-small"),), workloads=(w,)),
                     plan(deployment(), workloads=({**w, "pools": []},)))
    [wl] = r["workloads"]
    assert wl["restartWhy"] == ["node replaced (delete of p4d-small)"] and wl["pool"]["after"] == []


def test_the_verification_line_is_rendered():
    p = used(pool("p"), 56, 56)
    r = diff.compare(plan(job("p"), pools=(p,)), plan(job("p", image="b"), pools=(p,)))
    assert "\n  verification: Job verify (replace) runs before the Deployments it guards" in diff.render(r, "b", "h")


def test_headlines_of_the_whole_change_come_first_with_no_resource(monkeypatch):
    """A region change, EKS's refusal and a step waiting for a slice name no resource (`urn` empty); the region
    comes first, then the refusal, then what the resources say."""
    import datetime as dt

    from gpu_slicing import calendar
    monkeypatch.setattr(calendar, "today", lambda: dt.date(2026, 12, 6))
    cluster = rec("cl", diff.CLUSTER, {"name": "gpu", "version": "1.34"})
    role = rec("role", ROLE, {"name": "nodes", "path": "/"})
    full = used(pool("p"), 56, 56)
    base = plan(cluster, role, job("p"), pools=(full,), config={"aws:region": "us-east-1"})
    head = plan(changed(cluster, version="1.36"), changed(role, path="/x/"), job("p", image="b"), pools=(full,),
                config={"aws:region": "us-west-2"})
    lines = diff.compare(base, head)["headlines"]
    assert lines[0] == {"fatal": True, "urn": "", "text": (
        "THE REGION CHANGES (us-east-1 -> us-west-2): every AWS resource of the stack is created anew in us-west-2 "
        "(pulumi-aws: the provider's region is where each resource lives) and the old ones, the cluster and "
        "everything in it, are destroyed")}
    assert lines[1] == {"fatal": True, "urn": "", "text": "EKS REFUSES THIS UPGRADE: " + calendar.upgrade_refusal(
        "1.34", "1.36")}
    assert lines[2]["urn"] == "role" and lines[2]["text"].startswith("REPLACE COLLIDES (Role role)")
    assert lines[3]["urn"] == "" and lines[3]["fatal"] and lines[3]["text"].startswith(
        "A STEP WAITS FOR A SLICE THAT FREES ONLY AFTER IT: Job verify (replace)")
    # without the region change, the refusal still comes before what the resources say
    lines = diff.compare(plan(cluster, role), plan(changed(cluster, version="1.36"), changed(role, path="/x/")))[
        "headlines"]
    assert [h["text"][:16] for h in lines] == ["EKS REFUSES THIS", "REPLACE COLLIDES"]


def test_a_replaced_system_node_group_is_a_headline_of_the_change():
    system = rec("sys", diff.MNG, {"labels": {"gpu-slicing/role": "system"}, "nodeGroupName": "gpu-system-aaaaaaa",
                                   "instanceTypes": ["m7i.large"]}, name="system")
    new = changed(system, nodeGroupName="gpu-system-bbbbbbb", instanceTypes=["m7i.xlarge"])
    r = diff.compare(plan(system), plan(new))
    assert [h["text"][:42] for h in r["headlines"]] == ["THE SYSTEM NODE GROUP IS REPLACED (system)"]
    assert not r["fails"]  # under a new EKS name: nothing collides


def test_the_headlines_in_full():
    """What a user reads first, word for word: a replaced cluster colliding on its name, a deleted system node
    group's successor colliding, the Karpenter CRD release, a detached gateway."""
    [h] = diff.headlines(plan(), plan(), [entry("cl", diff.CLUSTER, "replace", collides=True)])
    assert h["text"] == (
        "THE CLUSTER IS REPLACED (cl): every pool, node and workload in it is destroyed with it (and whatever "
        "Kubernetes holds that the stack does not own: volumes, load balancers, Secrets); under its unchanged name "
        "the create-before-delete replace COLLIDES and `pulumi up` fails. Never replace it delete-first (that "
        "destroys the running one before its successor exists): undo what forces the replace, or build a second "
        "stack beside it and move the workloads")
    system = rec("sys", diff.MNG, {"labels": {"gpu-slicing/role": "system"}})
    [h] = diff.headlines(plan(), plan(system), [entry("sys", diff.MNG, "replace", collides=True)])
    assert h == {"fatal": True, "urn": "sys", "text": (
        "THE SYSTEM NODE GROUP IS REPLACED (sys): every controller on it (Karpenter, CoreDNS, the GPU Operator's "
        "operator) moves to new nodes; under its unchanged EKS name the create-before-delete replace COLLIDES and "
        "`pulumi up` fails. Never replace it delete-first (every controller would stop with no node to go to): undo "
        "what forces the replace")}
    crd = rec("crd", diff.RELEASE, {"name": "karpenter-crd", "chart": "karpenter-crd"})
    [h] = diff.headlines(plan(crd), plan(), [entry("crd", diff.RELEASE, "delete")])
    assert h == {"fatal": True, "urn": "crd", "text": (
        "THE KARPENTER CRD RELEASE IS DELETED (crd): uninstalling the CRDs deletes every NodePool and NodeClaim: "
        "every Karpenter node is drained and terminated")}
    [h] = diff.headlines(plan(), plan(), [entry("a", IGW, "update", interrupts=True)])
    assert h == {"fatal": True, "urn": "a", "text": (
        "THE INTERNET GATEWAY IS DETACHED FROM ITS RUNNING VPC (a): the VPC loses the internet while it is detached")}


def test_collision_reasons_in_full():
    """Why a replace collides, word for word: a cluster under its own name, a role under its own name, a new
    role under a deleted one's name; and an add-on EKS deletes with its cluster names its cluster."""
    cluster = rec("cl", diff.CLUSTER, {"name": "gpu", "vpcId": "vpc-1"})
    addon = rec("addon", "aws:eks/addon:Addon", {"clusterName": "gpu", "addonName": "vpc-cni"})
    r = diff.compare(plan(cluster, addon), plan(changed(cluster, vpcId="vpc-2"), addon))
    by = {x["name"]: x for x in r["resources"]}
    assert by["cl"]["why"] == (
        "vpcId: EKS: a cluster cannot move to another VPC; its fixed name name='gpu' is unchanged, so the "
        "create-before-delete replace collides with the running one. Never replace it delete-first (that destroys "
        "the running one, and everything on it, before its successor exists): undo what forces the replace, or "
        "build a second stack beside it and move the workloads")
    assert by["addon"]["changed"] == ["clusterName"]
    assert by["addon"]["why"] == "clusterName: EKS deletes it with its cluster, which is replaced"
    role = rec("role", ROLE, {"name": "nodes", "path": "/"})
    r = diff.compare(plan(role), plan(changed(role, path="/x/")))
    assert r["resources"][0]["why"] == (
        "path: terraform-provider-aws (behind pulumi-aws): ForceNew field; fixed physical name name='nodes' is "
        "unchanged, so a create-before-delete replace collides with the old one (let the name change, or replace it "
        "delete-first)")
    r = diff.compare(plan(rec("old", ROLE, {"name": "nodes"})), plan(rec("new", ROLE, {"name": "nodes"})))
    assert r["resources"][0]["why"] == ("created under the physical name 'nodes' that old still holds (Pulumi creates "
                                        "before it deletes): the create fails")


@pytest.mark.parametrize("inputs", [
    {"name": "crds", "chart": "oci://public.ecr.aws/karpenter/karpenter-crd"},  # renamed release of the CRD chart
    {"name": "karpenter-crd", "chart": "./charts/crds"},  # the release a stack names karpenter-crd, from a local chart
])
def test_the_crd_release_is_known_by_its_chart_or_its_release_name(inputs):
    """Either says the release holds Karpenter's CRDs (the chart karpenter-crd installs them; Karpenter's guide
    names the release after it): a replace of either is the fatal headline, whatever the other says."""
    crd = rec("crd", diff.RELEASE, inputs)
    [h] = diff.headlines(plan(crd), plan(), [entry("crd", diff.RELEASE, "replace")])
    assert h["fatal"] and h["text"].startswith("THE KARPENTER CRD RELEASE IS REPLACED (crd): ")


def test_a_provider_is_matched_by_its_whole_urn_as_pulumi_writes_it():
    """A registration's provider is `<provider URN>::<id>`, and a URN itself holds `::`
    (urn:pulumi:<stack>::<project>::<type>::<name>): only the objects of the provider that points at the new
    cluster are created anew, not those of another provider of the same stack (here an unchanged one)."""
    u = "urn:pulumi:dev::gpu-slicing::"
    cluster = rec(u + "eks:index:Cluster::cl", diff.CLUSTER, {"name": "gpu", "vpcId": "vpc-1"}, name="cl")
    new = rec(u + "pulumi:providers:kubernetes::k8s", diff.PROVIDER, {"kubeconfig": "<computed>"}, name="k8s",
              prop_deps={"kubeconfig": [cluster["urn"]]})
    other = rec(u + "pulumi:providers:kubernetes::elsewhere", diff.PROVIDER, {"kubeconfig": "{}"}, name="elsewhere")
    ns = rec(u + "kubernetes:core/v1:Namespace::ns", "kubernetes:core/v1:Namespace", {"metadata": {"name": "gpu"}},
             name="ns", provider=new["urn"] + "::0b1c-id")
    kept = rec(u + "kubernetes:core/v1:Namespace::kept", "kubernetes:core/v1:Namespace",
               {"metadata": {"name": "kept"}}, name="kept", provider=other["urn"] + "::7f2d-id")
    r = diff.compare(plan(cluster, new, other, ns, kept),
                     plan(changed(cluster, vpcId="vpc-2"), new, other, ns, kept))
    by = {x["name"]: x for x in r["resources"]}
    assert by["ns"]["op"] == "replace" and by["ns"]["newCluster"] and by["ns"]["changed"] == ["(provider)"]
    assert by["ns"]["why"] == "(provider): its provider is replaced: the object is created anew in the new cluster"
    assert "kept" not in by and "elsewhere" not in by


def test_an_entry_without_a_rule_or_a_create_or_delete_gives_no_reason_of_its_own():
    """The reason is filled in by whoever decides the op (a replace the cluster forces, a physical-name note):
    an entry starts with an empty text, not a placeholder, and a delete says when Pulumi runs it."""
    r = rec("x", "kubernetes:core/v1:Namespace")
    assert diff._entry(r, "replace", [], [])["why"] == ""
    assert diff._entry(r, "delete", [], [])["why"] == (
        "not in the head stack (Pulumi deletes it after the creates and updates)")


def test_drift_durations_read_as_minutes_and_anything_else_as_none():
    """A driftDuration is Karpenter's `<h>h<m>m` (docs/karpenter-and-mig.md); what is not one adds no minutes."""
    assert [diff._minutes(d) for d in ("2h30m", "45m", "3h", "", None, "soon", "1d")] == [150, 45, 180, 0, 0, 0, 0]


def test_a_deleted_cluster_is_the_cluster_replaced_for_what_lives_in_it():
    """Deleting the cluster (a stack renamed it, or dropped it) destroys every pool and pod in it, as a replace
    does: both are the headline's `cluster_replaced`; an update is not."""
    for op, gone in (("delete", True), ("replace", True), ("update", False), ("create", False)):
        assert diff.cluster_replaced([entry("cl", diff.CLUSTER, op), entry("r", ROLE, "replace")]) is gone, op


def test_a_component_first_in_the_plan_hides_none_of_the_resources_after_it():
    """Components (not custom resources) are skipped, not the end of the walk: a role changed after a component
    is still reported."""
    comp = rec("comp", "gpu-slicing:network:Network", custom=False)
    role = rec("role", ROLE, {"name": "nodes", "path": "/"})
    r = diff.compare(plan(comp, role), plan(comp, changed(role, path="/gpu/")))
    assert [x["name"] for x in r["resources"]] == ["role"]


def test_a_replace_that_renames_the_physical_resource_does_not_collide():
    """A role whose name changes with the replace is created under the new name beside the old: no collision, and
    no note about a fixed name; one whose name is left out of its inputs (Pulumi names it) neither."""
    role = rec("role", ROLE, {"name": "nodes", "path": "/"})
    [res] = diff.compare(plan(role), plan(changed(role, name="nodes-2", path="/gpu/")))["resources"]
    assert res["op"] == "replace" and not res.get("collides") and "fixed physical name" not in res["why"]
    auto = rec("auto", ROLE, {"path": "/"})
    [res] = diff.compare(plan(auto), plan(changed(auto, path="/gpu/")))["resources"]
    assert res["op"] == "replace" and not res.get("collides") and "fixed physical name" not in res["why"]


@pytest.mark.parametrize("a, b, paths", [
    ([1, 2], [3, 4], ["0", "1"]),  # every changed item of a list, not the last one only
    ({"x": [1, {"y": 1}]}, {"x": [2, {"y": 2}]}, ["x.0", "x.1.y"]),
    ({"x": {"y": 1}}, {"x": "flat"}, ["x"]),  # a mapping turned into a value is one changed path
    ("flat", {"y": 1}, [""]),
    ([1], [1, 2], [""]),  # a list of another length changes as a whole
])
def test_leaf_paths_are_every_difference_once(a, b, paths):
    assert diff.leaf_diff(a, b) == paths
