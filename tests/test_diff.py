"""`make diff`: change cases, each a base and a head stack planned in-process (or, for a change in the program
itself, a git base planned by its own program), asserting what the change does to every GPU pool (impact), to
the resources (op), the headline, the exit status and the hourly cost. Expected effects come from docs/facts.md §8 and
11 (EKS API and update behavior, Karpenter drift, MIG manager, terraform-provider-aws) and botocore's EKS
model, figures from the catalog's list prices by hand, not from the diff's code."""
from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import pytest

from conftest import child_env, dev_config
from gpu_slicing import changes, config as config_mod
from tools import diff

P4D = 21.96  # catalog list price the dev stack's p4d.24xlarge nodes are costed at
_PLANS: dict[str, diff.Plan] = {}


def expected_surge(p: diff.Plan, name: str) -> int:
    """Extra nodes EKS launches for a rolling update of node group `name`, from its registration and docs/facts.md §11:
    updateStrategy MINIMAL none; else the larger of twice the zones (subnets) it spans and maxUnavailable
    (1 when no updateConfig is set)."""
    ng = next(r for r in p.resources.values() if r["name"] == name and r["type"] == diff.MNG)
    uc = {k.replace("_", "").lower(): v for k, v in (ng["inputs"].get("updateConfig") or {}).items()}
    if uc.get("updatestrategy") == "MINIMAL":
        return 0
    return max(2 * len(ng["inputs"]["subnetIds"]), int(uc.get("maxunavailable") or 1))


def plan(cfg: dict) -> diff.Plan:
    key = json.dumps(cfg, sort_keys=True)
    if key not in _PLANS:
        _PLANS[key] = diff.plan(cfg)
        assert _PLANS[key].error is None, _PLANS[key].error
    return _PLANS[key]


def case(edit) -> dict:
    base = dev_config()
    head = copy.deepcopy(base)
    edit(head)
    return diff.compare(plan(base), plan(head))


def pools(report) -> dict[str, str]:
    return {p["name"]: p["impact"] for p in report["pools"]}


def ops(report) -> dict[tuple[str, str], str]:
    return {(r["type"].split(":")[-1], r["name"]): r["op"] for r in report["resources"]}


def node_groups(c) -> list:
    return c["gpu-slicing:nodeGroups"]


def only_1g(c) -> None:
    c["gpu-slicing:workloads"] = [w for w in c["gpu-slicing:workloads"] if w["profile"] == "1g.5gb"]


def test_dev_stack_price_is_the_catalogs():
    from gpu_slicing import catalog

    assert catalog.INSTANCE_TYPES["p4d.24xlarge"].on_demand_usd_per_hour == P4D


@pytest.mark.slow
def test_no_change():
    r = case(lambda c: None)
    assert r["resources"] == []
    assert set(pools(r).values()) == {"none"}
    assert r["costPerHour"] == {"before": 2 * P4D, "after": 2 * P4D, "peak": 2 * P4D}
    assert [(w["name"], w["before"], w["after"]) for w in r["workloads"]] == [
        ("slice-1g", "fits", "fits"), ("slice-2g", "fits", "fits"), ("slice-3g", "fits", "fits"),
        ("guide-1g", "fits", "fits")]


@pytest.mark.slow
def test_node_group_layout_change_is_blue_green_never_a_relabel():
    def edit(c):
        node_groups(c)[0]["migLayout"] = "all-1g.5gb"
        only_1g(c)
    r = case(edit)
    assert pools(r) == {"p4d-balanced": "blue-green", "p4d-small": "none"}
    assert r["reconfigureInPlace"] == []
    mng = next(x for x in r["resources"] if x["type"] == "eks:index:ManagedNodeGroup")
    assert mng["op"] == "replace" and "nodeGroupName" in mng["changed"] and "labels.nvidia.com/mig.config" in mng["changed"]
    assert "CreateNodegroup" in mng["why"]
    # the verification Job runs again, on the new group's nodes, before the Deployments move: never blocked
    [job] = r["verification"]
    assert not job["blocked"] and "new nodes" in job["text"] and not r["fails"]
    assert "collides" not in mng["why"]  # the name changed with the layout: create-before-delete works
    assert ops(r)[("Deployment", "gpu-dev-workloads-slice-2g")] == "delete"
    # the new group is up before the old one drains: for a while both run
    c = r["costPerHour"]
    assert c["after"] == c["before"] and c["peak"] == c["before"] + P4D
    fit = {w["name"]: (w["before"], w["after"]) for w in r["workloads"]}
    assert fit["slice-2g"] == ("fits", "absent") and fit["slice-1g"] == ("fits", "fits")


@pytest.mark.slow
def test_forced_in_place_relabel_is_loud_and_refused_without_consent():
    from policy import rules
    from tools.checks import policy_resources

    def edit(c, allow=False):
        node_groups(c)[0]["migLayout"] = "all-1g.5gb"
        node_groups(c)[0]["migLayoutChange"] = "in-place"
        only_1g(c)
        if allow:
            c["gpu-slicing:allowDisruption"] = True
    base = dev_config()
    node_groups(base)[0]["migLayoutChange"] = "in-place"
    head = copy.deepcopy(base)
    edit(head)
    r = diff.compare(plan(base), plan(head))
    assert pools(r)["p4d-balanced"] == "reconfigure-in-place" and r["reconfigureInPlace"] == ["p4d-balanced"]
    assert "RECONFIGURE IN PLACE" in diff.render(r, "base", "head")
    assert ops(r)[("ManagedNodeGroup", "gpu-dev-p4d-balanced")] == "update"
    regs = policy_resources(list(plan(head).resources.values()))
    [msg] = rules.evaluate(rules.RULES["mig-relabel-needs-consent"], regs, rules.Context())
    assert "allowDisruption" in msg[0]
    allowed = copy.deepcopy(base)
    edit(allowed, allow=True)
    regs = policy_resources(list(plan(allowed).resources.values()))
    assert rules.evaluate(rules.RULES["mig-relabel-needs-consent"], regs, rules.Context()) == []


@pytest.mark.slow
def test_custom_layout_edited_in_place_changes_the_label_so_the_group_is_replaced():
    half = [{"devices": [0, 1, 2, 3], "profiles": {"1g.5gb": 7}}, {"devices": [4, 5, 6, 7], "profiles": {"3g.20gb": 2}}]
    base = dev_config()
    base["gpu-slicing:migLayouts"] = {"half": half}
    node_groups(base)[0]["migLayout"] = "half"
    base["gpu-slicing:workloads"] = [{"name": "small", "profile": "1g.5gb", "replicas": 28, "pool": "p4d-balanced"}]
    head = copy.deepcopy(base)
    head["gpu-slicing:migLayouts"]["half"][1] = {"devices": [4, 5, 6, 7], "profiles": {"1g.5gb": 7}}
    r = diff.compare(plan(base), plan(head))
    assert pools(r)["p4d-balanced"] == "blue-green"
    b, h = next(p["layout"] for p in r["pools"] if p["name"] == "p4d-balanced").values()
    assert b != h and b.startswith("half-") and h.startswith("half-")
    assert ops(r)[("ConfigMap", "gpu-dev-gpu-operator-mig-parted")] == "update"
    assert r["costPerHour"]["peak"] > r["costPerHour"]["after"] == r["costPerHour"]["before"]
    # the old label is still on the live node until the old group is gone: the diff hands over its entries
    assert list(r["retainMigLayouts"]) == [b]
    assert r["retainMigLayouts"][b][1]["mig-devices"] == {"3g.20gb": 2}
    kept = copy.deepcopy(head)
    kept["gpu-slicing:gpuOperator"]["retainedMigLayouts"] = r["retainMigLayouts"]
    again = diff.compare(plan(base), plan(kept))
    assert again["retainMigLayouts"] == {} and pools(again)["p4d-balanced"] == "blue-green"


@pytest.mark.slow
def test_nodepool_rename_drains_the_old_pool_and_creates_a_new_one():
    def edit(c):
        c["gpu-slicing:karpenter"]["nodePools"][0]["name"] = "p4d-tiny"
        c["gpu-slicing:workloads"][3]["pool"] = "p4d-tiny"
    r = case(edit)
    assert pools(r) == {"p4d-balanced": "none", "p4d-tiny": "create", "p4d-small": "delete"}
    o = ops(r)
    assert o[("NodePool", "gpu-dev-p4d-small-nodepool")] == "delete"
    assert o[("NodePool", "gpu-dev-p4d-tiny-nodepool")] == "create"
    assert o[("EC2NodeClass", "gpu-dev-p4d-small-nodeclass")] == "delete"
    c = r["costPerHour"]
    assert c["after"] == c["before"] and c["peak"] == c["before"] + P4D


@pytest.mark.slow
def test_ami_alias_bump_drifts_every_karpenter_node():
    r = case(lambda c: c["gpu-slicing:karpenter"].update(amiAliasVersion="v20261201"))
    assert pools(r) == {"p4d-balanced": "none", "p4d-small": "rolling-replace"}
    [nc] = r["resources"]
    assert nc["type"].endswith("EC2NodeClass") and nc["op"] == "update" and nc.get("rolls")
    assert nc["changed"] == ["spec.amiSelectorTerms.0.alias"]
    assert "drift" in nc["why"]
    c = r["costPerHour"]
    assert c["after"] == c["before"] and c["peak"] == c["before"] + P4D  # one replacement at a time


@pytest.mark.slow
def test_added_workload_scales_the_nodepool():
    r = case(lambda c: c["gpu-slicing:workloads"].append(
        {"name": "more-1g", "profile": "1g.5gb", "replicas": 56, "pool": "p4d-small"}))
    assert pools(r) == {"p4d-balanced": "none", "p4d-small": "scale"}
    assert ops(r) == {("Deployment", "gpu-dev-workloads-more-1g"): "create"}
    more = next(w for w in r["workloads"] if w["name"] == "more-1g")
    assert (more["before"], more["after"]) == ("absent", "fits")
    assert r["costPerHour"]["after"] == r["costPerHour"]["before"] + P4D


@pytest.mark.slow
def test_disk_size_change_rolls_the_node_group():
    r = case(lambda c: node_groups(c)[0].update(diskSizeGiB=400))
    assert pools(r) == {"p4d-balanced": "rolling-replace", "p4d-small": "none"}
    o = ops(r)
    assert o[("LaunchTemplate", "gpu-dev-p4d-balanced-lt")] == "update"
    mng = next(x for x in r["resources"] if x["type"] == "eks:index:ManagedNodeGroup")
    assert mng["op"] == "update" and mng.get("rolls") and "UpdateNodegroupVersion" in mng["why"]
    c = r["costPerHour"]
    # EKS surges the 1-node group by up to twice the zones it spans (docs/facts.md §11): 1 old + surge new p4d at once
    surge = expected_surge(plan(dev_config()), "gpu-dev-p4d-balanced")
    assert c["after"] == c["before"] and c["peak"] == round(P4D + (1 + surge) * P4D, 2)
    assert not r["fails"]


@pytest.mark.slow
def test_desired_size_change_scales_in_place():
    r = case(lambda c: node_groups(c)[0].update(desiredSize=2))
    assert pools(r) == {"p4d-balanced": "scale", "p4d-small": "none"}
    [mng] = r["resources"]
    assert mng["op"] == "update" and not mng.get("rolls") and mng["changed"] == ["scalingConfig.desiredSize"]
    c = r["costPerHour"]
    assert c["after"] == c["before"] + P4D == c["peak"]


@pytest.mark.slow
def test_karpenter_version_bump_upgrades_releases_and_touches_no_node(monkeypatch):
    check = next(m for m in config_mod.KarpenterConfig.model_fields["version"].metadata
                 if isinstance(m, config_mod._Check))
    monkeypatch.setattr(check, "fn", lambda v, k: v)
    r = case(lambda c: c["gpu-slicing:karpenter"].update(version="1.15.0"))
    assert set(pools(r).values()) == {"none"}
    # both the controller and the CRDs move (CRDs first: Karpenter's upgrade guide); nothing else changes
    assert [(x["type"], x["name"], x["op"], x["changed"]) for x in r["resources"]] == [
        ("kubernetes:helm.sh/v3:Release", "gpu-dev-karpenter-crd", "update", ["version"]),
        ("kubernetes:helm.sh/v3:Release", "gpu-dev-karpenter", "update", ["version"])]
    assert not r["fails"] and r["headlines"] == []
    assert r["costPerHour"]["peak"] == r["costPerHour"]["before"]


@pytest.mark.slow
def test_nodegroup_rules_match_botocores_eks_model():
    """docs/facts.md §8: UpdateNodegroupConfig members change in place, UpdateNodegroupVersion members roll, the rest
    of CreateNodegroup replaces."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("eks")
    members = lambda op: set(model.operation_model(op).input_shape.members)  # noqa: E731
    config = members("UpdateNodegroupConfig") - {"clusterName", "nodegroupName", "clientRequestToken"}
    version = members("UpdateNodegroupVersion") - {"clusterName", "nodegroupName", "clientRequestToken", "force"}
    create = members("CreateNodegroup") - {"clusterName", "clientRequestToken", "tags"}
    assert set(changes.UPDATE_NODEGROUP_CONFIG) == config
    assert set(changes.UPDATE_NODEGROUP_VERSION) == version
    assert set(changes.NODEGROUP_INPUT_TO_API.values()) == create
    for inp, api in changes.NODEGROUP_INPUT_TO_API.items():
        expected = changes.UPDATE if api in config else changes.ROLL if api in version else changes.REPLACE
        assert changes.classify("eks:index:ManagedNodeGroup", inp).effect == expected, inp


def test_replace_on_changes_forces_a_replace():
    assert changes.classify("kubernetes:core/v1:ConfigMap", "data.x").effect == changes.UPDATE
    assert changes.classify("kubernetes:core/v1:ConfigMap", "data.x", ["data"]).effect == changes.REPLACE
    assert changes.classify("kubernetes:batch/v1:Job", "spec.template.spec.x").effect == changes.REPLACE
    assert changes.classify("kubernetes:apps/v1:Deployment", "spec.selector.matchLabels.a").effect == changes.REPLACE
    assert changes.classify("kubernetes:karpenter.sh/v1:NodePool", "spec.limits.cpu").effect == changes.UPDATE
    assert changes.classify("kubernetes:karpenter.sh/v1:NodePool", "spec.template.metadata.labels.a").effect \
        == changes.ROLL


@pytest.mark.slow
def test_the_diff_of_two_plans_is_fast():
    base = plan(dev_config())
    head_cfg = dev_config()
    node_groups(head_cfg)[0]["diskSizeGiB"] = 300
    head = plan(head_cfg)
    t = time.perf_counter()
    diff.compare(base, head)
    assert time.perf_counter() - t < 3


@pytest.mark.slow
def test_cli_reads_the_base_from_git(tmp_path, capsys):
    import subprocess
    from pathlib import Path

    root = Path(diff.__file__).resolve().parents[1]
    committed = subprocess.run(["git", "show", "HEAD:Pulumi.dev.yaml"], cwd=root, capture_output=True, text=True)
    if committed.returncode or committed.stdout != (root / "Pulumi.dev.yaml").read_text():
        pytest.skip("needs Pulumi.dev.yaml committed unchanged at HEAD (a git clone of the project)")
    out = tmp_path / "d.json"
    assert diff.main(["--base", "git:HEAD", "--stack", "dev", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["resources"] == [] and set(pools(report).values()) == {"none"}
    assert report["costPerHour"] == {"before": 2 * P4D, "after": 2 * P4D, "peak": 2 * P4D}
    assert "Pulumi.dev.yaml at HEAD" in capsys.readouterr().out


@pytest.mark.slow
def test_cli_plans_the_committed_stack_against_the_working_one(tmp_path, monkeypatch, capsys):
    """A repository whose committed dev stack runs 2 nodes and whose working copy asks for 1: the diff reads
    the base from git, not from the file on disk."""
    import subprocess

    import yaml

    committed = dev_config()
    node_groups(committed)[0]["desiredSize"] = 2
    stack = tmp_path / "Pulumi.dev.yaml"
    stack.write_text(yaml.safe_dump({"config": committed}))
    git = lambda *a: subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *a],  # noqa: E731
                                    cwd=tmp_path, check=True, capture_output=True)
    git("init", "-q")
    git("add", "Pulumi.dev.yaml")
    git("commit", "-qm", "two nodes")
    stack.write_text(yaml.safe_dump({"config": dev_config()}))
    monkeypatch.setattr(diff, "ROOT_DIR", tmp_path)
    out = tmp_path / "d.json"
    assert diff.main(["--base", "git:HEAD", "--same-program", "--config", str(stack), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert pools(report) == {"p4d-balanced": "scale", "p4d-small": "none"}
    assert report["costPerHour"]["before"] == 3 * P4D and report["costPerHour"]["after"] == 2 * P4D
    assert "Pulumi.dev.yaml at HEAD" in capsys.readouterr().out


@pytest.mark.slow
def test_do_not_disrupt_is_a_pod_annotation_updated_in_place():
    def edit(c):
        c["gpu-slicing:workloads"][3]["doNotDisrupt"] = True
    r = case(edit)
    [dep] = r["resources"]
    assert dep["op"] == "update" and dep["changed"] == ["spec.template.metadata.annotations"]
    head = dev_config()
    edit(head)
    d = next(x for x in plan(head).resources.values() if x["name"] == "gpu-dev-workloads-guide-1g")
    assert d["inputs"]["spec"]["template"]["metadata"]["annotations"] == {"karpenter.sh/do-not-disrupt": "true"}
    assert set(pools(r).values()) == {"none"}


@pytest.mark.slow
def test_kubernetes_upgrade_is_ordered_control_plane_then_nodes():
    r = case(lambda c: c["gpu-slicing:cluster"].update(kubernetesVersion="1.36"))
    order = [x["type"] for x in r["resources"]]
    assert order[0] == "eks:index:Cluster" and r["resources"][0]["changed"] == ["version"]
    # Karpenter's al2023@ alias resolves per Kubernetes version: its nodes drift after the control plane
    assert pools(r)["p4d-small"] == "rolling-replace" and "control plane" in \
        next(p["why"] for p in r["pools"] if p["name"] == "p4d-small")
    # node groups carry the cluster version, so they roll after the control plane (EKS UpdateNodegroupVersion)
    assert pools(r)["p4d-balanced"] == "rolling-replace"
    groups = [x for x in r["resources"] if x["type"] == "eks:index:ManagedNodeGroup"]
    assert groups and all(x["rolls"] and x["changed"] == ["version"] for x in groups)
    assert [s.split(" ")[1] for s in r["upgradePath"]] == ["control", "node", "Karpenter"]
    assert "gpu-dev-p4d-balanced" in r["upgradePath"][1] and "p4d-small" in r["upgradePath"][2]
    # the node group: 1 old + its surge; the NodePool: 1 old + 1 replacement (docs/facts.md §11). With no updateConfig,
    # 3 zones: 1 + 6 + 2 = 9 p4d.24xlarge = $197.64/h, 9 x 96 vCPUs of P-instance quota
    surge = expected_surge(plan(dev_config()), "gpu-dev-p4d-balanced")
    assert r["costPerHour"]["peak"] == round((1 + surge + 2) * P4D, 2)
    assert r["pInstanceVcpusAtPeak"] == (1 + surge + 2) * 96
    assert r["kubernetes"]["refused"] is None and not r["fails"] and r["headlines"] == []


@pytest.mark.slow
def test_nodepool_layout_change_is_drift_never_in_place():
    def edit(c):
        c["gpu-slicing:karpenter"]["nodePools"][0]["migLayout"] = "all-balanced"
        c["gpu-slicing:workloads"][3]["replicas"] = 16
    r = case(edit)
    assert pools(r) == {"p4d-balanced": "none", "p4d-small": "rolling-replace"} and r["reconfigureInPlace"] == []
    np_ = next(x for x in r["resources"] if x["type"].endswith(":NodePool"))
    assert np_["op"] == "update" and np_.get("rolls") and "spec.template.metadata.labels.nvidia.com/mig.config" \
        in np_["changed"]
    assert ops(r)[("NodeOverlay", "gpu-dev-p4d-small-overlay-p4d-24xlarge")] == "update"
    assert r["costPerHour"]["peak"] == r["costPerHour"]["before"] + P4D


@pytest.mark.slow
def test_the_gpu_operator_keeps_upgrading_its_own_crds():
    """docs/facts.md §8: the chart's pre-upgrade hook (operator.upgradeCRD, default true) upgrades its CRDs; the
    program leaves it at the chart's default."""
    from tools import refdata

    chart = refdata.load("gpu-operator-values")["values"]
    assert chart["operator"]["upgradeCRD"] is True
    rel = next(x for x in plan(dev_config()).resources.values()
               if x["name"] == "gpu-dev-gpu-operator" and x["type"] == "kubernetes:helm.sh/v3:Release")
    assert "upgradeCRD" not in json.dumps(rel["inputs"]["values"])


@pytest.mark.slow
def test_costs_follow_the_plan_prices_and_the_type_karpenter_launches():
    """A NodePool of [g5.xlarge, g5.12xlarge] with a stack price override: the diff costs the pool the way
    the capacity plan does (the type Karpenter launches, at the stack's price), not at a catalog price."""
    def two_sizes(c):
        c["gpu-slicing:karpenter"]["nodePools"].append({"name": "g5-mixed", "instanceTypes": ["g5.xlarge", "g5.12xlarge"],
                                                        "maxNodes": 2})
        c["gpu-slicing:workloads"].append({"name": "big", "gpus": 4, "replicas": 2, "pool": "g5-mixed"})
        c["gpu-slicing:maxGpuNodes"] = 15
        c["gpu-slicing:pricePerHour"] = {"g5.12xlarge": 1.0}

    r = case(two_sizes)
    (pool,) = [p for p in r["pools"] if p["name"] == "g5-mixed"]
    assert pool["impact"] == "create" and pool["nodesAfter"] == 2  # two 4-GPU pods: two g5.12xlarge
    assert pool["cost"]["after"] == 2.0  # 2 x the stack's 1.00, not the catalog's 5.67
    assert r["costPerHour"]["after"] == round(2 * P4D + 2.0, 2)


@pytest.mark.slow
def test_changed_subnets_never_replace_a_gpu_node_group_under_its_own_name():
    """Existing-VPC subnets changed: a node group's subnets are only in EKS CreateNodegroup, so a change would
    replace it, and under its own name the create-before-delete replace collides (docs/facts.md §13). GPU node groups keep
    the subnets they were created with (ignoreChanges on the EKS node group), so nothing is replaced and the diff
    says the new subnets do not reach the group; the system node group's name follows its subnets, so it is a
    blue/green under a new name, never a collision."""
    def existing(c, subnets):
        c["gpu-slicing:network"] = {"vpcId": "vpc-1", "privateSubnetIds": subnets, "publicSubnetIds": ["subnet-p"]}

    base = dev_config()
    existing(base, ["subnet-a", "subnet-b"])
    head = copy.deepcopy(base)
    existing(head, ["subnet-a", "subnet-c"])
    r = diff.compare(plan(base), plan(head))
    assert r["collisions"] == []
    (pool,) = [p for p in r["pools"] if p["name"] == "p4d-balanced"]
    assert pool["impact"] == "none"
    assert not [x for x in r["resources"] if x["name"] == "gpu-dev-p4d-balanced"]
    assert any("gpu-dev-p4d-balanced keeps its subnetIds" in w for w in r["warnings"])
    system = [x for x in r["resources"] if x["type"] == diff.MNG and x["name"] == "gpu-dev-system"]
    assert [x["op"] for x in system] == ["replace"] and "nodeGroupName" in system[0]["changed"]
    assert "REPLACE COLLIDES" not in diff.render(r, "base", "head")


@pytest.mark.slow
def test_moving_a_node_group_from_a_named_to_a_custom_layout_keeps_the_old_label_for_its_live_nodes():
    """The base had no ConfigMap of ours (the operator's own config holds every named layout); the head's
    custom ConfigMap replaces it, so the all-balanced nodes that live until the blue/green completes need
    their entry handed over (docs/facts.md §2: all-balanced on A100-40GB is 2 x 1g.5gb + 2g.10gb + 3g.20gb)."""
    def custom(c):
        c["gpu-slicing:migLayouts"] = {"half": [{"devices": [0, 1, 2, 3], "profiles": {"1g.5gb": 7}},
                                                {"devices": [4, 5, 6, 7], "profiles": {"3g.20gb": 2}}]}
        node_groups(c)[0]["migLayout"] = "half"
        c["gpu-slicing:workloads"] = [{"name": "small", "profile": "1g.5gb", "replicas": 28, "pool": "p4d-balanced"}]

    r = case(custom)
    (entry,) = r["retainMigLayouts"]["all-balanced"]
    assert entry["mig-devices"] == {"1g.5gb": 2, "2g.10gb": 1, "3g.20gb": 1}
    assert entry["device-filter"] == ["0x20B010DE"]


@pytest.mark.slow
def test_inputs_pulumi_ignores_are_no_change():
    """A subnet keeps its zone (ignoreChanges): a new zone choice (here the stack's GPU type moving to p5en,
    offered elsewhere) replaces no subnet in the diff, as Pulumi replaces none."""
    def p5en(c):
        node_groups(c)[0].update(instanceType="p5en.48xlarge", migLayout="all-disabled")
        c["gpu-slicing:karpenter"] = {"enabled": False}
        c["gpu-slicing:workloads"] = [{"name": "whole", "gpus": 1, "pool": "p4d-balanced"}]
        c["gpu-slicing:maxGpuNodes"] = 3

    base, head = dev_config(), dev_config()
    p5en(head)
    zones = [plan(c).resources for c in (base, head)]
    azs = [sorted(r["inputs"]["availabilityZone"] for r in z.values() if r["type"] == "aws:ec2/subnet:Subnet")
           for z in zones]
    assert azs[0] != azs[1]  # the choice itself moved (p4d: a, c, d; p5en: a, c, f in the kept table)
    r = diff.compare(plan(base), plan(head))
    assert not [x for x in r["resources"] if x["type"] == "aws:ec2/subnet:Subnet"]


# --- upgrades: what destroys the cluster or its network comes first (docs/facts.md §11) -------------------------------

def first_loud_line(r: dict) -> str:
    return next(line for line in diff.render(r, "base", "head").splitlines() if line.startswith("!! "))


def network(c) -> dict:
    return c["gpu-slicing:network"]


@pytest.mark.slow
def test_a_new_vpc_cidr_replaces_the_cluster_and_says_so_first():
    """A new VPC (cidrBlock is ForceNew) forces a new EKS cluster (EKS cannot move VPCs), under its fixed name:
    the replace collides. Every pool goes with the old cluster and is created again in the new one."""
    r = case(lambda c: network(c).update(vpcCidr="10.1.0.0/16"))
    assert first_loud_line(r).startswith("!! THE CLUSTER IS REPLACED") and "destroyed with it" in first_loud_line(r)
    assert "COLLIDES" in first_loud_line(r) and r["fails"]
    assert pools(r) == {"p4d-balanced": "delete", "p4d-small": "delete"}
    o = ops(r)
    assert o[("Vpc", "gpu-dev-vpc")] == o[("Cluster", "gpu-dev-eks")] == o[("NatGateway", "gpu-dev-nat")] == "replace"
    igw = next(x for x in r["resources"] if x["name"] == "gpu-dev-igw")
    assert igw["op"] == "update" and igw["interrupts"]  # a live detach from the running VPC
    texts = [h["text"] for h in r["headlines"]]
    assert any(t.startswith("THE INTERNET GATEWAY IS DETACHED") for t in texts)
    assert "deleteBeforeReplace" not in diff.render(r, "base", "head")
    # both clusters' GPU nodes run until the old one is gone: 2 + 2 p4d
    assert r["costPerHour"]["peak"] == 4 * P4D and r["costPerHour"]["after"] == r["costPerHour"]["before"]


@pytest.mark.slow
def test_a_cluster_name_change_is_a_new_cluster_not_a_blue_green():
    r = case(lambda c: c["gpu-slicing:cluster"].update(name="gpu-dev2"))
    assert first_loud_line(r).startswith("!! THE CLUSTER IS REPLACED (gpu-dev-eks is destroyed, gpu-dev2-eks created)")
    assert r["fails"] and pools(r) == {"p4d-balanced": "delete", "p4d-small": "delete"}
    assert all("new cluster" in p["why"] for p in r["pools"])
    # objects of the new cluster do not collide with their namesakes in the old one
    assert not [h for h in r["headlines"] if "COLLIDES" in h["text"]]
    assert r["costPerHour"]["peak"] == 4 * P4D


@pytest.mark.slow
def test_the_system_node_group_replaced_is_a_headline_failing_only_when_it_collides():
    r = case(lambda c: c["gpu-slicing:systemNodeGroup"].update(instanceType="m7i.xlarge"))
    [h] = r["headlines"]
    assert h["text"].startswith("THE SYSTEM NODE GROUP IS REPLACED") and "controller" in h["text"]
    base_name, head_name = (next(x["inputs"]["nodeGroupName"] for x in plan(c).resources.values()
                                 if x["name"] == "gpu-dev-system") for c in (dev_config(), _edited(
                                     lambda c: c["gpu-slicing:systemNodeGroup"].update(instanceType="m7i.xlarge"))))
    collides = base_name == head_name  # an unchanged EKS name: create-before-delete collides (docs/facts.md §13)
    assert r["fails"] == collides == ("COLLIDES" in h["text"])
    assert "deleteBeforeReplace" not in diff.render(r, "base", "head")
    assert set(pools(r).values()) == {"none"} and r["costPerHour"]["peak"] == 2 * P4D


def _edited(edit) -> dict:
    c = dev_config()
    edit(c)
    return c


@pytest.mark.slow
def test_three_zones_to_two_replaces_subnets_and_fails():
    r = case(lambda c: network(c).update(availabilityZones=2))
    assert r["fails"] and any(h["text"].startswith("SUBNETS ARE") for h in r["headlines"])
    deleted = {x["name"] for x in r["resources"] if x["op"] == "delete" and x["type"] == "aws:ec2/subnet:Subnet"}
    assert deleted == {"gpu-dev-private-2", "gpu-dev-public-2"}
    assert pools(r)["p4d-small"] == "none" and r["costPerHour"]["after"] == r["costPerHour"]["before"]
    # The GPU node group keeps the subnets it was created with (ignoreChanges): even the inputs it would get
    # from replaced network resources do not reach it, so it is neither replaced nor colliding on its name.
    assert pools(r)["p4d-balanced"] == "none" and r["collisions"] == []
    assert not [x for x in r["resources"] if x["name"] == "gpu-dev-p4d-balanced"]
    assert not any(h["text"].startswith("REPLACE COLLIDES") for h in r["headlines"])


@pytest.mark.slow
def test_a_skip_minor_upgrade_is_refused_and_extended_support_is_priced(monkeypatch):
    import datetime as dt

    from gpu_slicing import calendar

    monkeypatch.setattr(calendar, "today", lambda: dt.date(2026, 12, 6))
    base = _edited(lambda c: c["gpu-slicing:cluster"].update(kubernetesVersion="1.34"))
    r = diff.compare(plan(base), plan(_edited(lambda c: c["gpu-slicing:cluster"].update(kubernetesVersion="1.36"))))
    assert first_loud_line(r).startswith("!! EKS REFUSES THIS UPGRADE") and "1.35 first" in first_loud_line(r)
    assert r["fails"] and r["kubernetes"]["refused"]
    # 1.34 left standard support on 2026-12-02: $0.60/h; 1.36 is in standard support: $0.10/h
    assert r["controlPlanePerHour"] == {"before": 0.60, "after": 0.10}
    one = diff.compare(plan(base), plan(dev_config()))  # 1.34 -> 1.35: one minor, allowed
    assert not one["fails"] and one["kubernetes"]["refused"] is None


@pytest.mark.slow
def test_mig_strategy_mixed_to_single_restarts_every_slice_pod_under_a_new_resource_name():
    def mixed(c):
        node_groups(c)[0]["migLayout"] = "all-1g.5gb"
        c["gpu-slicing:karpenter"] = {"enabled": False}
        c["gpu-slicing:maxGpuNodes"] = 3
        c["gpu-slicing:workloads"] = [{"name": "a", "profile": "1g.5gb", "replicas": 56, "pool": "p4d-balanced"}]

    def single(c):
        c["gpu-slicing:gpuOperator"]["migStrategy"] = "single"
        c["gpu-slicing:workloads"] = [{"name": "a", "gpus": 1, "replicas": 56, "pool": "p4d-balanced"}]

    base = _edited(mixed)
    head = copy.deepcopy(base)
    single(head)
    r = diff.compare(plan(base), plan(head))
    [w] = r["workloads"]
    # docs/facts.md §2: single advertises every slice as nvidia.com/gpu (7 x 8 = 56 on a p4d under all-1g.5gb)
    assert w["restarts"] == 56 and w["restartWhy"] == ["resource renamed nvidia.com/mig-1g.5gb -> nvidia.com/gpu"]
    [p] = r["pools"]
    assert p["impact"] == "none" and p["slicesPerNode"]["after"]["nvidia.com/gpu"] == 56
    assert "device plugin" in p["why"]
    assert not [x for x in r["resources"] if x["type"] == "kubernetes:batch/v1:Job"] and not r["fails"]
    assert r["costPerHour"]["peak"] == P4D


@pytest.mark.slow
def test_an_image_bump_on_a_full_pool_restarts_its_pods_and_never_reruns_the_verification_job():
    """docs/facts.md §10: a Job asking for a slice the running Deployment pods hold stays Pending. The Job runs once
    per node generation, so an image bump changes the Deployment only."""
    image = "nvidia/cuda:12.6.3-base-ubuntu22.04"
    r = case(lambda c: c["gpu-slicing:workloads"][0].update(image=image))
    assert ops(r) == {("Deployment", "gpu-dev-workloads-slice-1g"): "update"}
    w = next(x for x in r["workloads"] if x["name"] == "slice-1g")
    assert w["restarts"] == 16 and w["restartWhy"] == [f"image nvidia/cuda:12.4.1-base-ubuntu22.04 -> {image}"]
    assert r["verification"] == [] and not r["fails"] and r["costPerHour"]["peak"] == 2 * P4D


def test_a_verification_job_rerun_on_a_full_pool_fails_the_diff():
    """The diff's own guard, on a synthetic pair: a Job replaced on a pool whose slices are all requested."""
    job = {"urn": "j", "type": "kubernetes:batch/v1:Job", "name": "verify", "custom": True, "remote": False,
           "parent": "", "provider": None, "propertyDependencies": {}, "options": {},
           "inputs": {"spec": {"template": {"spec": {"nodeSelector": {"gpu-slicing/pool": "p"}, "containers": [
               {"image": "a", "resources": {"limits": {"nvidia.com/mig-1g.5gb": "1"}}}]}}}}}
    head_job = copy.deepcopy(job)
    head_job["inputs"]["spec"]["template"]["spec"]["containers"][0]["image"] = "b"
    cap = {"pools": [{"name": "p", "kind": "nodeGroup", "nodes": {"willExist": 1}, "launch": {"usdPerNodeHour": 1.0,
                                                                                                "instanceType": "x"},
                      "layout": "all-1g.5gb", "instanceType": "x", "perNode": {},
                      "utilization": {"resources": {"nvidia.com/mig-1g.5gb": {"available": 56, "requested": 56}}}}]}
    r = diff.compare(diff.Plan({}, {"j": job}, cap, order=["j"]), diff.Plan({}, {"j": head_job}, cap, order=["j"]))
    [v] = r["verification"]
    assert v["blocked"] and r["fails"] and "WAITS FOR A SLICE" in first_loud_line(r)


@pytest.mark.slow
def test_time_slicing_replicas_change_relabels_in_place_and_restarts_nothing():
    import yaml

    from conftest import ROOT
    from gpu_slicing import catalog

    base = yaml.safe_load((ROOT / "tests/stacks/good/time-slicing-g5-g6.yaml").read_text())["config"]
    head = copy.deepcopy(base)
    node_groups(head)[0]["sharing"] = {"timeSlicing": {"replicas": 8}}
    r = diff.compare(plan(base), plan(head))
    assert pools(r) == {"g5-shared": "none", "g6-shared": "none"}
    g5 = next(p for p in r["pools"] if p["name"] == "g5-shared")
    # g5.2xlarge has 1 GPU: 4 -> 8 time-sliced nvidia.com/gpu per node
    assert g5["slicesPerNode"] == {"before": {"nvidia.com/gpu": 4}, "after": {"nvidia.com/gpu": 8}}
    assert "device plugin" in g5["slicesAway"]
    assert all(w["restarts"] == 0 for w in r["workloads"]) and not r["fails"]
    price = catalog.INSTANCE_TYPES["g5.2xlarge"].on_demand_usd_per_hour * 2 + \
        catalog.INSTANCE_TYPES["g6.12xlarge"].on_demand_usd_per_hour
    assert r["costPerHour"]["peak"] == r["costPerHour"]["before"] == round(price, 2)


@pytest.mark.slow
def test_a_node_group_to_spot_is_a_blue_green_under_a_new_name():
    r = case(lambda c: node_groups(c)[0].update(capacityType="SPOT"))
    assert pools(r)["p4d-balanced"] == "blue-green" and not r["fails"] and r["headlines"] == []
    p = next(x for x in r["pools"] if x["name"] == "p4d-balanced")
    assert p["cost"]["peak"] == round(p["cost"]["before"] + p["cost"]["after"], 2) and p["peakNodes"] == 2
    assert all(w["restarts"] == w_n for w, w_n in zip(r["workloads"][:3], (16, 8, 8)))


@pytest.mark.slow
def test_removing_a_retained_layout_warns():
    def retained(c):
        c["gpu-slicing:gpuOperator"]["retainedMigLayouts"] = {
            "old-half-1234567": [{"devices": "all", "mig-enabled": True, "mig-devices": {"1g.5gb": 7}}]}

    base = _edited(retained)
    r = diff.compare(plan(base), plan(dev_config()))
    [w] = [x for x in r["warnings"] if "retainedMigLayouts" in x]
    assert "old-half-1234567" in w and "failed" in w
    assert not r["fails"] and set(pools(r).values()) == {"none"}


@pytest.mark.slow
def test_a_nodepool_from_a_custom_layout_to_a_named_one_hands_over_the_custom_entry():
    half = [{"devices": [0, 1, 2, 3], "profiles": {"1g.5gb": 7}}, {"devices": [4, 5, 6, 7], "profiles": {"3g.20gb": 2}}]

    def custom(c):
        c["gpu-slicing:migLayouts"] = {"half": half}
        c["gpu-slicing:karpenter"]["nodePools"][0]["migLayout"] = "half"
        c["gpu-slicing:workloads"][3]["replicas"] = 28

    base = _edited(custom)
    r = diff.compare(plan(base), plan(dev_config()))
    assert pools(r)["p4d-small"] == "rolling-replace"
    [label] = r["retainMigLayouts"]
    assert label.startswith("half-") and r["retainMigLayouts"][label][1]["mig-devices"] == {"3g.20gb": 2}


@pytest.mark.slow
@pytest.mark.parametrize("before,after,impact,rolls", [
    (["on-demand"], ["on-demand", "spot"], "none", False),  # widened: nothing drifts (Karpenter docs)
    (["on-demand", "spot"], ["on-demand"], "rolling-replace", True),  # narrowed: nodes may no longer match
])
def test_capacity_types_widened_drift_nothing_narrowed_drift(before, after, impact, rolls):
    base = _edited(lambda c: c["gpu-slicing:karpenter"]["nodePools"][0].update(capacityTypes=before))
    head = _edited(lambda c: c["gpu-slicing:karpenter"]["nodePools"][0].update(capacityTypes=after))
    r = diff.compare(plan(base), plan(head))
    assert pools(r) == {"p4d-balanced": "none", "p4d-small": impact}
    [np_] = r["resources"]
    assert np_["type"].endswith(":NodePool") and np_["op"] == "update" and bool(np_.get("rolls")) == rolls
    assert r["costPerHour"]["peak"] == (3 if rolls else 2) * P4D and not r["fails"]


def test_an_input_without_a_rule_is_unknown_never_in_place():
    assert changes.classify("aws:foo/bar:Bar", "x").effect == changes.UNKNOWN
    assert changes.classify("eks:index:Cluster", "someNewInput").effect == changes.UNKNOWN
    old = {"urn": "u", "type": "aws:foo/bar:Bar", "name": "bar", "custom": True, "remote": False, "parent": "",
           "provider": None, "propertyDependencies": {}, "options": {}, "inputs": {"x": 1}}
    new = copy.deepcopy(old)
    new["inputs"]["x"] = 2
    r = diff.compare(diff.Plan({}, {"u": old}, {}, order=["u"]), diff.Plan({}, {"u": new}, {}, order=["u"]))
    [res] = r["resources"]
    assert res["unknown"] == ["x"] and any(w.startswith("UNKNOWN effect") for w in r["warnings"])
    assert "(UNKNOWN effect)" in diff.render(r, "b", "h")


def test_network_rules_from_the_aws_provider():
    """docs/facts.md §11: an internet gateway's vpc_id change is a live detach; a NAT gateway's subnet_id is ForceNew."""
    assert changes.classify("aws:ec2/internetGateway:InternetGateway", "vpcId").effect == changes.INTERRUPT
    assert changes.classify("aws:ec2/natGateway:NatGateway", "subnetId").effect == changes.REPLACE
    assert changes.classify("aws:ec2/vpc:Vpc", "cidrBlock").effect == changes.REPLACE
    assert changes.classify("aws:kms/key:Key", "enableKeyRotation").effect == changes.UPDATE
    assert changes.classify("pulumi:providers:kubernetes", "kubeconfig").effect == changes.REPLACE


@pytest.mark.slow
def test_every_input_the_dev_stack_sets_has_a_cited_rule():
    def leaves(v, p=""):
        if isinstance(v, dict) and v:
            for k, x in v.items():
                yield from leaves(x, f"{p}.{k}" if p else k)
        elif isinstance(v, list) and v:
            for i, x in enumerate(v):
                yield from leaves(x, f"{p}.{i}" if p else str(i))
        else:
            yield p
    unknown = {(r["type"], p) for r in plan(dev_config()).resources.values() if r["custom"] or r["remote"]
               for p in leaves(r["inputs"]) if changes.classify(r["type"], p).effect == changes.UNKNOWN}
    assert unknown == set()


def test_drift_windows_in_words():
    from gpu_slicing import karpenter

    np_ = {"inputs": {"spec": {"disruption": {"budgets": karpenter.disruption_budgets("0 2 * * 6", "4h")}}}}
    assert diff.drift_window(np_) == "drifted nodes are replaced one at a time, only Sat 02:00-06:00 UTC"
    np_["inputs"]["spec"]["disruption"]["budgets"] = karpenter.disruption_budgets("30 22 * * *", "2h")
    assert diff.drift_window(np_) == "drifted nodes are replaced one at a time, only daily 22:30-00:30 UTC"
    np_["inputs"]["spec"]["disruption"]["budgets"] = karpenter.disruption_budgets(None, None)
    assert diff.drift_window(np_) == "drifted nodes are replaced one at a time, at any time"
    assert diff.drift_pace(np_) == 1
    np_["inputs"]["spec"]["disruption"]["budgets"] = [{"nodes": "3", "reasons": ["Drifted"]}]
    assert diff.drift_pace(np_) == 3 and "3 at a time" in diff.drift_window(np_)


@pytest.mark.parametrize("update_config,subnets,surge", [(None, 3, 6), (None, 2, 4), ({"maxUnavailable": 10}, 3, 10),
                                                          ({"updateStrategy": "MINIMAL", "maxUnavailable": 1}, 3, 0)])
def test_eks_surge_from_the_update_config(update_config, subnets, surge):
    """EKS user guide, managed node update behavior: up to twice the zones or maxUnavailable, the larger;
    MINIMAL terminates before it launches."""
    ng = {"inputs": {"subnetIds": [f"s{i}" for i in range(subnets)], **({"updateConfig": update_config}
                                                                        if update_config else {})}}
    assert diff.surge_of(ng)[0] == surge


def test_eks_surge_with_a_percentage():
    """maxUnavailablePercentage 50 of 10 nodes is 5 at a time; twice 3 zones (6) is larger."""
    ng = {"inputs": {"subnetIds": ["a", "b", "c"], "scalingConfig": {"desiredSize": 10},
                     "updateConfig": {"maxUnavailablePercentage": 50}}}
    assert diff.surge_of(ng)[0] == 6
    ng["inputs"]["updateConfig"]["maxUnavailablePercentage"] = 100
    assert diff.surge_of(ng)[0] == 10


# --- a change in the program itself: the git base is planned by its own program --------------------------------

def project_repo(tmp_path):
    """A git repository holding this project as it is (tracked and new files), committed once: the base."""
    import shutil
    import subprocess

    from conftest import ROOT

    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    repo = tmp_path / "repo"
    for f in files:
        src = ROOT / f
        if f.startswith(".venv") or not src.is_file():
            continue
        (repo / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, repo / f)
    git = lambda *a: subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *a],  # noqa: E731
                                    cwd=repo, check=True, capture_output=True)
    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "base")
    return repo


def run_diff(repo, *extra) -> tuple[int, dict, str]:
    import subprocess
    import sys

    out = repo / "d.json"
    run = subprocess.run([sys.executable, "-m", "tools.diff", "--base", "git:HEAD", "--stack", "dev", "--json",
                          str(out), *extra], cwd=repo, env=child_env(), capture_output=True, text=True,
                         timeout=300)
    assert out.exists(), run.stderr
    return run.returncode, json.loads(out.read_text()), run.stdout


def pin(repo, name: str, old: str, new: str) -> None:
    cfg = repo / "gpu_slicing" / "config.py"
    text = cfg.read_text()
    assert f'{name} = "{old}"' in text
    cfg.write_text(text.replace(f'{name} = "{old}"', f'{name} = "{new}"'))


@pytest.mark.slow
def test_pins_bumped_in_code_show_what_they_do_against_a_git_base(tmp_path):
    """The monthly AMI pin in code: every Karpenter node drifts (docs/facts.md §8: the al2023@ alias is in the
    EC2NodeClass); read with the head's program on both sides it would be "nothing changes". A chart pin in
    code: the release upgrades in place, no node moves."""
    repo = project_repo(tmp_path)
    pin(repo, "AMI_ALIAS_VERSION", "v20261118", "v20261201")
    status, r, out = run_diff(repo)
    assert status == 0 and "(its own program)" in out
    assert pools(r) == {"p4d-balanced": "none", "p4d-small": "rolling-replace"}
    [nc] = r["resources"]
    assert nc["type"].endswith("EC2NodeClass") and nc["rolls"] and nc["changed"] == ["spec.amiSelectorTerms.0.alias"]
    assert r["costPerHour"] == {"before": 2 * P4D, "after": 2 * P4D, "peak": 3 * P4D}
    assert [w["restarts"] for w in r["workloads"]] == [0, 0, 0, 56]
    status, blind, _ = run_diff(repo, "--same-program")
    assert status == 0 and blind["resources"] == []  # the old reading: both sides the working tree's program
    pin(repo, "AMI_ALIAS_VERSION", "v20261201", "v20261118")
    pin(repo, "KUBE_PROMETHEUS_STACK_VERSION", "88.5.3", "88.6.0")
    status, r, _ = run_diff(repo)
    assert status == 0 and set(pools(r).values()) == {"none"}
    assert [(x["name"], x["op"], x["changed"]) for x in r["resources"]] == [
        ("gpu-dev-observability", "update", ["version"])]
    assert r["costPerHour"]["peak"] == 2 * P4D


@pytest.mark.slow
def test_a_region_change_rebuilds_the_stack_and_says_so_first():
    r = case(lambda c: c.update({"aws:region": "us-west-2"}))
    assert first_loud_line(r).startswith("!! THE REGION CHANGES (us-east-1 -> us-west-2)") and r["fails"]
    assert pools(r) == {"p4d-balanced": "delete", "p4d-small": "delete"}


def test_a_weekly_window_across_midnight():
    from gpu_slicing import karpenter

    np_ = {"inputs": {"spec": {"disruption": {"budgets": karpenter.disruption_budgets("0 22 * * 6", "4h")}}}}
    assert diff.drift_window(np_) == "drifted nodes are replaced one at a time, only Sat 22:00-Sun 02:00 UTC"


def test_the_base_program_runs_in_an_environment_of_its_own_requirements(tmp_path, monkeypatch):
    """The working tree's interpreter when the ref's requirements.txt is the same; else a virtualenv built once
    per requirements hash (the calls to venv and pip recorded here, not run)."""
    import hashlib
    import sys

    (tmp_path / "requirements.txt").write_bytes(b"pulumi>=3\n")
    monkeypatch.setattr(diff, "ROOT_DIR", tmp_path)
    monkeypatch.setenv("GPU_SLICING_VENV_CACHE", str(tmp_path / "cache"))
    calls = []
    monkeypatch.setattr(diff.subprocess, "run", lambda args, **kw: calls.append(args))
    assert diff._environment(b"pulumi>=3\n") == sys.executable and calls == []
    older = b"pulumi>=3\npulumi-eks==3.9\n"
    python = diff._environment(older)
    venv = tmp_path / "cache" / hashlib.sha256(older).hexdigest()[:16]
    assert python == str(venv / "bin" / "python")
    assert calls[0][1:] == ["-m", "venv", str(venv)] and calls[1][1:5] == ["-m", "pip", "install", "--quiet"]
    assert (venv / "requirements.txt").read_bytes() == older
    assert diff._environment(older) == python and len(calls) == 2  # cached: built once


def test_the_base_program_installs_its_development_lock(tmp_path, monkeypatch):
    """A ref with locks plans with its development lock (requirements.txt holds only the deployed program's
    packages, not the plan's checks); a ref from before the locks with its requirements.txt."""
    (tmp_path / "requirements.txt").write_text("-c requirements.lock\npulumi>=3\n")
    assert diff.requirements_file(tmp_path) == tmp_path / "requirements.txt"
    (tmp_path / "requirements-dev.lock").write_text("pulumi==3.272.0\n")
    assert diff.requirements_file(tmp_path) == tmp_path / "requirements-dev.lock"
    monkeypatch.setenv("GPU_SLICING_VENV_CACHE", str(tmp_path / "cache"))
    calls = []
    monkeypatch.setattr(diff.subprocess, "run", lambda args, **kw: calls.append(args))
    python = diff._environment(b"pulumi==3.1.0\n", "requirements-dev.lock")
    venv = Path(python).parents[1]
    assert calls[1][-2:] == ["-r", str(venv / "requirements-dev.lock")]
    assert (venv / "requirements-dev.lock").read_text() == "pulumi==3.1.0\n"


@pytest.mark.slow
def test_a_changed_claim_template_is_a_replace_and_its_pods_keep_their_old_claims():
    """resource.k8s.io/v1: a ResourceClaimTemplate's spec is immutable and the claims made from it are never
    updated, so a changed fallback list replaces the template and the running pods keep the old claims until
    they are recreated; the diff says so (it called the change UNKNOWN and said no pod was affected)."""
    from conftest import ROOT

    from gpu_slicing.stack_file import load_stack_file

    example = load_stack_file(ROOT / "examples" / "Pulumi.dra.yaml")
    head = copy.deepcopy(example)
    w = next(w for w in head["gpu-slicing:workloads"] if w.get("fallbackProfiles"))
    w["fallbackProfiles"] = ["1g.10gb"]
    r = diff.compare(plan(example), plan(head))
    (t,) = [x for x in r["resources"] if x["type"] == diff.CLAIM_TEMPLATE]
    assert t["op"] == "replace" and not t.get("unknown") and "immutable" in t["why"]
    (entry,) = [x for x in r["workloads"] if x["name"] == w["name"]]
    assert entry["staleClaims"] == {"pods": w["replicas"], "templates": [t["name"]]}
    assert "kubectl rollout restart" in diff.render(r, "base", "head")


@pytest.mark.slow
def test_the_diff_reads_stack_files_as_pulumi_does(tmp_path, capsys):
    """A key given twice is refused by Pulumi and `make plan`; the diff refused nothing and took the last
    value. YAML 1.1 `yes` is a string to Pulumi, not a boolean."""
    from conftest import ROOT

    text = (ROOT / "Pulumi.dev.yaml").read_text()
    twice = tmp_path / "Pulumi.twice.yaml"
    twice.write_text(text.replace("      desiredSize: 1\n", "      desiredSize: 1\n      desiredSize: 2\n", 1))
    assert diff.main(["--base", str(ROOT / "Pulumi.dev.yaml"), "--config", str(twice)]) == 2
    err = capsys.readouterr().err
    second = twice.read_text().splitlines().index("      desiredSize: 2") + 1
    assert "desiredSize" in err and f"line {second}" in err
    yes = tmp_path / "Pulumi.yes.yaml"
    yes.write_text(text.replace("    enabled: true\n", "    enabled: yes\n", 1))
    assert diff.main(["--base", str(ROOT / "Pulumi.dev.yaml"), "--config", str(yes)]) == 2
    assert "enabled" in capsys.readouterr().err


@pytest.mark.slow
def test_a_spot_pool_is_never_called_a_list_price():
    """The capacity plan prices a spot pool without a stack price as unpriced (spot prices move by zone and
    hour); the diff showed its on-demand ceiling as a plain 'list price'. It now carries each pool's basis."""
    from conftest import ROOT
    from gpu_slicing.stack_file import load_stack_file

    spot = load_stack_file(ROOT / "tests" / "stacks" / "good" / "spot-pricing.yaml")
    r = diff.compare(plan(spot), plan(spot))
    basis = {p["name"]: p["priceBasis"] for p in r["pools"]}
    assert basis == {"g5-spot": "the stack's pricePerHour", "t4-on-demand": "on-demand list",
                     "g6-spot": "spot, not priced"}
    text = diff.render(r, "base", "head")
    (line,) = [x for x in text.splitlines() if " g6-spot " in x]
    assert line.endswith("at most: spot, not priced (its on-demand list price)")
    assert "GPU cost per hour (on-demand list, spot, not priced, the stack's pricePerHour)" in text


def test_the_dev_stack_planned_against_itself_changes_nothing(dev_runs, monkeypatch):
    """`make diff` plans each side with the offline plan (the shared dev run here, so the test stays quick):
    the dev stack against itself changes nothing and costs its two p4d nodes before, after and at the peak."""
    from tools import harness

    runs = []
    monkeypatch.setattr(harness, "run_program", lambda config, stack="dev", preview=True:
                        runs.append((stack, preview)) or dev_runs["preview"])
    p = diff.plan(dev_config())
    assert runs == [("dev", True)] and p.error is None and p.config == dev_config()
    assert sorted(x["name"] for x in p.capacity["pools"]) == ["p4d-balanced", "p4d-small"]
    assert p.order == list(p.resources) and len(p.order) == len(dev_runs["preview"].registrations)
    ngs = [r for r in p.resources.values() if r["type"] == diff.MNG]
    raw = {x["urn"]: x for x in (reg.to_json() for reg in dev_runs["preview"].registrations)}
    # what the transforms set on pulumi-eks's EKS node group, folded into the component's own inputs
    assert ngs and all("updateConfig" in r["inputs"] and "updateConfig" not in raw[r["urn"]]["inputs"] for r in ngs)
    r = diff.compare(p, p)
    assert r["resources"] == [] and not r["fails"] and r["headlines"] == []
    assert r["costPerHour"] == {"before": 2 * P4D, "after": 2 * P4D, "peak": 2 * P4D}


def test_a_stack_that_does_not_plan_is_an_error(monkeypatch):
    from tools import harness

    class Failed:
        error = ValueError("gpu-slicing:maxGpuNodes: must be at least 1")

    monkeypatch.setattr(harness, "run_program", lambda config, stack="dev", preview=True: Failed())
    p = diff.plan({"gpu-slicing:maxGpuNodes": 0}, "prod")
    assert p.error == "gpu-slicing:maxGpuNodes: must be at least 1" and p.resources == {} and p.order == []
