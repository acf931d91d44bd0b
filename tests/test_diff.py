"""`make diff`: change cases, each a base and a head stack planned in-process, asserting what the change does
to every GPU pool (impact), to the resources (op) and to the hourly cost (direction). Expected effects come
from FACTS 8 (EKS API, Karpenter drift, MIG manager) and botocore's EKS model, not from the diff's code."""
from __future__ import annotations

import copy
import json
import time

import pytest

from conftest import dev_config
from gpu_slicing import changes, config as config_mod
from tools import diff

P4D = 21.96  # catalog list price the dev stack's p4d.24xlarge nodes are costed at
_PLANS: dict[str, diff.Plan] = {}


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
    assert c["after"] == c["before"] and c["peak"] == c["before"] + P4D


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
    assert sorted((x["type"], x["name"], x["op"], x["changed"]) for x in r["resources"]) == [
        ("kubernetes:helm.sh/v3:Release", "gpu-dev-karpenter", "update", ["version"]),
        ("kubernetes:helm.sh/v3:Release", "gpu-dev-karpenter-crd", "update", ["version"])]
    assert r["costPerHour"]["peak"] == r["costPerHour"]["before"]


@pytest.mark.slow
def test_nodegroup_rules_match_botocores_eks_model():
    """FACTS 8: UpdateNodegroupConfig members change in place, UpdateNodegroupVersion members roll, the rest
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
    assert diff.main(["--base", "git:HEAD", "--config", str(stack), "--json", str(out)]) == 0
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
    r = case(lambda c: c["gpu-slicing:cluster"].update(kubernetesVersion="1.35"))
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
    assert r["costPerHour"]["peak"] == r["costPerHour"]["before"] + 2 * P4D


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


def test_the_gpu_operator_keeps_upgrading_its_own_crds():
    """FACTS 8: the chart's pre-upgrade hook (operator.upgradeCRD, default true) upgrades its CRDs; the
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
def test_a_node_group_replaced_under_its_own_name_is_called_a_collision():
    """Existing-VPC subnets changed: EKS replaces the node group (subnets are not in UpdateNodegroupConfig),
    and under the same name the create-before-delete replace collides, so the diff fails loudly."""
    def existing(c, subnets):
        c["gpu-slicing:network"] = {"vpcId": "vpc-1", "privateSubnetIds": subnets, "publicSubnetIds": ["subnet-p"]}

    base = dev_config()
    existing(base, ["subnet-a", "subnet-b"])
    head = copy.deepcopy(base)
    existing(head, ["subnet-a", "subnet-c"])
    r = diff.compare(plan(base), plan(head))
    assert "p4d-balanced" in r["collisions"]
    (pool,) = [p for p in r["pools"] if p["name"] == "p4d-balanced"]
    assert pool["collides"] and "collides" in pool["why"]
    assert "REPLACE COLLIDES" in diff.render(r, "base", "head")


@pytest.mark.slow
def test_moving_a_node_group_from_a_named_to_a_custom_layout_keeps_the_old_label_for_its_live_nodes():
    """The base had no ConfigMap of ours (the operator's own config holds every named layout); the head's
    custom ConfigMap replaces it, so the all-balanced nodes that live until the blue/green completes need
    their entry handed over (FACTS 2: all-balanced on A100-40GB is 2 x 1g.5gb + 2g.10gb + 3g.20gb)."""
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
