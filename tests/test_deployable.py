"""What makes a plan deployable (docs/facts.md §10, issue 9): the region and zones a stack really gets, who can
operate the cluster, node groups that follow the control plane, rollouts that never ask for a slice that
does not exist, and a graph whose edges are as fine as the facts."""
from __future__ import annotations

import copy

import pytest
import yaml

from conftest import closure, dev_config, edges, run
from tools import harness

NS = "gpu-slicing:"


def _zones(r) -> dict[str, str]:
    return {s.name: s.inputs["availabilityZone"] for s in r.by_type("aws:ec2/subnet:Subnet")}


@pytest.mark.slow
def test_the_plan_follows_aws_region_everywhere(dev):
    dev["aws:region"] = "us-west-2"
    r = run(dev, preview=False)
    assert r.error is None, r.error
    # the kept offerings table has p4d.24xlarge in us-west-2a, b and c (of a to d): the VPC's three zones
    assert sorted(set(_zones(r).values())) == r.outputs["availabilityZones"] == ["us-west-2a", "us-west-2b",
                                                                                 "us-west-2c"]
    release = r.one("kubernetes:helm.sh/v3:Release", "gpu-dev-karpenter")
    assert {"name": "AWS_REGION", "value": "us-west-2"} in release.inputs["values"]["controller"]["env"]
    policies = " ".join(p.inputs["policy"] for p in r.by_type("aws:iam/policy:Policy"))
    assert ":us-west-2:" in policies and "us-east-1" not in policies
    assert "us-east-1" not in str(r.outputs["kubeconfig"])


@pytest.mark.slow
def test_zones_are_the_ones_that_offer_the_gpu_type_not_the_first_names(dev):
    """The kept offerings table has p4d.24xlarge in us-east-1a, c and d only (illustrative, like
    DescribeInstanceTypeOfferings' answer): the VPC takes those three, not a, b, c."""
    r = run(dev, preview=False)
    table = harness.OFFERINGS["us-east-1"]["p4d.24xlarge"]
    assert sorted(z[-1] for z in set(_zones(r).values())) == sorted(table)
    assert r.outputs["availabilityZones"] == [f"us-east-1{c}" for c in sorted(table)]


@pytest.mark.slow
def test_a_node_group_only_gets_subnets_in_zones_that_offer_its_type(dev):
    """p5.48xlarge is offered in us-east-1a, c and f; p4d in a, c and d (the kept table): a 3-zone VPC
    takes a and c (both types) and one more; each node group gets only the subnets of its own zones."""
    dev["gpu-slicing:nodeGroups"].append({"name": "p5", "instanceType": "p5.48xlarge", "minSize": 0,
                                          "desiredSize": 0, "maxSize": 1})
    dev["gpu-slicing:maxGpuNodes"] = 8
    r = run(dev, preview=False)
    assert r.error is None, r.error
    private = [s for s in r.by_type("aws:ec2/subnet:Subnet") if "private" in s.name]
    zone_by_id = {f"subnet-{harness._hex(s.name)}": s.inputs["availabilityZone"] for s in private}  # mock ids
    assert {"us-east-1a", "us-east-1c"} <= set(zone_by_id.values()) and len(private) == 3
    for ng in r.by_type("eks:index:ManagedNodeGroup"):
        itype = ng.inputs["instanceTypes"][0]
        if itype in harness.OFFERINGS["us-east-1"]:
            zones = {zone_by_id[sid][-1] for sid in ng.inputs["subnetIds"]}
            assert zones and zones <= set(harness.OFFERINGS["us-east-1"][itype]), ng.name


@pytest.mark.slow
def test_zones_are_ranked_by_offering_when_there_are_fewer_than_the_region_has(dev):
    dev["aws:region"] = "us-east-2"  # p5en.48xlarge only in us-east-2c in the kept table
    dev["gpu-slicing:nodeGroups"][0].update(instanceType="p5en.48xlarge", migLayout="all-disabled")
    dev["gpu-slicing:network"]["availabilityZones"] = 2
    dev["gpu-slicing:workloads"] = [w for w in dev["gpu-slicing:workloads"] if w["pool"] != "p4d-balanced"]
    r = run(dev, preview=False)
    assert r.error is None, r.error
    assert r.outputs["availabilityZones"] == ["us-east-2a", "us-east-2c"]


@pytest.mark.slow
def test_a_gpu_type_the_region_does_not_offer_is_an_error_naming_the_zones_key(dev, tmp_path, capsys):
    """Offerings are known only once AWS answers (at preview), so this error comes from the running program,
    not from config validation: the plan shows it without a traceback and exits 2."""
    from tools import plan

    dev["aws:region"] = "us-east-2"  # the kept table: no p4de.24xlarge in us-east-2
    dev["gpu-slicing:nodeGroups"][0].update(instanceType="p4de.24xlarge", migLayout="all-disabled")
    dev["gpu-slicing:workloads"] = [w for w in dev["gpu-slicing:workloads"] if w["pool"] != "p4d-balanced"]
    r = run(dev, preview=False)
    assert "gpu-slicing:network.availabilityZones: 3 is not valid" in str(r.error)
    assert "p4de.24xlarge is offered in no zone of this region" in str(r.error)
    path = tmp_path / "Pulumi.east2.yaml"
    path.write_text(yaml.safe_dump({"config": dev}))
    assert plan.main(["--config", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "p4de.24xlarge is offered in no zone" in err and "Traceback" not in err


@pytest.mark.slow
def test_admin_roles_get_cluster_admin_access_entries(dev):
    admins = ["arn:aws:iam::111122223333:role/platform-admins", "arn:aws:iam::111122223333:role/gh-deploy"]
    dev["gpu-slicing:cluster"]["adminRoleArns"] = admins
    r = run(dev, preview=False)
    assert r.error is None, r.error
    entries = {e.inputs["principalArn"]: e for e in r.by_type("aws:eks/accessEntry:AccessEntry")}
    assocs = {a.inputs["principalArn"]: a for a in r.by_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")}
    for arn in admins:
        assert entries[arn].inputs["type"] == "STANDARD" and entries[arn].inputs["clusterName"] == "gpu-dev"
        a = assocs[arn].inputs
        assert a["policyArn"] == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
        assert a["accessScope"] == {"type": "cluster"}
        assert entries[arn].urn in closure(edges(r.registrations), assocs[arn].urn)
    # removing one admin keeps the other's logical name (no replacement of its entry)
    one = copy.deepcopy(dev)
    one["gpu-slicing:cluster"]["adminRoleArns"] = admins[1:]
    names = {e.name for e in run(one).by_type("aws:eks/accessEntry:AccessEntry")}
    assert names == {entries[admins[1]].name} | {n for n in names if "Karpenter" in n or "karpenter" in n}


@pytest.mark.slow
def test_node_groups_carry_the_control_planes_version(dev):
    dev["gpu-slicing:cluster"]["kubernetesVersion"] = "1.33"
    r = run(dev)
    assert r.error is None, r.error
    for ng in r.by_type("eks:index:ManagedNodeGroup"):
        assert ng.inputs["version"] == "1.33", ng.name
    assert r.one("eks:index:Cluster").inputs["version"] == "1.33"


def test_slice_deployments_never_surge_and_stop_promptly(dev_runs):
    r = dev_runs["preview"]
    delete = {}
    for d in r.by_type("kubernetes:apps/v1:Deployment"):
        spec = d.inputs["spec"]
        assert spec["strategy"]["type"] == "RollingUpdate" and spec["strategy"]["rollingUpdate"]["maxSurge"] == 0
        pod = spec["template"]["spec"]
        command = pod["containers"][0]["command"]
        assert "trap" in command[-1] and "TERM" in command[-1] and command[-1].rstrip().endswith("wait")
        grace = pod["terminationGracePeriodSeconds"]
        delete[d.name] = int(d.options["customTimeouts"]["delete"].rstrip("m")) * 60
        assert grace < delete[d.name], d.name  # a pod always stops before Pulumi gives up deleting it
    assert delete


def test_every_gpu_pod_of_the_dev_stack_fits_on_the_nodes_that_will_exist(dev_runs):
    cap = dev_runs["up"].outputs["capacity"]
    # docs/facts.md §1.6 and 1.9: all-balanced holds 16/8/8 per node (1 desired), all-1g.5gb 56 (up to 4 NodePool nodes)
    assert [(w["name"], w["requested"], w["capacity"], w["fits"]) for w in cap["workloads"]] == [
        ("slice-1g", 16, 16, True), ("slice-2g", 8, 8, True), ("slice-3g", 8, 8, True), ("guide-1g", 56, 4 * 56, True)]
    by_pool = {p["name"]: p for p in cap["pools"]}
    # p4d-balanced: one desired node, 16/8/8 slices, filled exactly (docs/facts.md §1.6)
    assert by_pool["p4d-balanced"]["nodes"]["willExist"] == 1
    assert by_pool["p4d-small"]["launch"] == {"instanceType": "p4d.24xlarge", "nodes": 1, "usdPerNodeHour": 21.96}


def _wide_stack(groups: int, pools: int, workloads: int) -> dict:
    cfg = dev_config()
    cfg[NS + "nodeGroups"] = [{"name": f"g{i}", "instanceType": "g5.xlarge", "minSize": 1, "desiredSize": 1,
                               "maxSize": 1} for i in range(groups)]
    cfg[NS + "karpenter"]["nodePools"] = [{"name": f"k{i}", "instanceTypes": ["g6.xlarge"], "maxNodes": 1}
                                          for i in range(pools)]
    names = [f"g{i}" for i in range(groups)] + [f"k{i}" for i in range(pools)]
    cfg[NS + "workloads"] = [{"name": f"w{i}", "gpus": 1, "replicas": 1, "pool": names[i % len(names)]}
                             for i in range(workloads)]
    cfg[NS + "maxGpuNodes"] = groups + pools
    return cfg


@pytest.mark.slow
def test_edges_per_workload_stay_small_in_a_wide_stack():
    """Issue 11: at 20 node groups, 20 NodePools and 40 workloads (one GPU each, so they fit), a Deployment
    waits for its namespace, the operator, its own pool (and the Job when it wants its slice): a handful of
    edges, not one per pool in the stack."""
    r = run(_wide_stack(20, 20, 40))
    assert r.error is None, r.error
    counts = [len(d.dependencies) for d in r.by_type("kubernetes:apps/v1:Deployment")]
    assert len(counts) == 40 and max(counts) <= 6, counts
    release = r.one("kubernetes:helm.sh/v3:Release", "gpu-dev-gpu-operator")
    assert len(release.dependencies) <= 4, release.dependencies


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["preview", "up"])
def test_plan_output_starts_with_what_a_reviewer_needs(capsys, mode):
    from tools import plan

    code = plan.main(["--stack", "dev"] + (["--up"] if mode == "up" else []))
    out = capsys.readouterr().out
    assert code == 0
    assert out.index("POOL ") < out.index("WORKLOAD ") < out.index("Resources.") < out.index("registrations (")
    assert "cost 43.92 USD per hour" in out  # 2 x p4d.24xlarge at the kept 21.96 (1 node group node, 1 launched)
    assert "COMPUTE/GPU ?" not in out and " ? " not in out.split("Resources.")[0]


def test_the_zone_choice_covers_every_gpu_type_when_some_set_can():
    """A greedy pick of the best-offering zones would take a and b (both offer p4d) and miss p5en, offered
    only in c; the set {a, c} covers both."""
    from gpu_slicing.network import choose_zones

    offers = {"p4d.24xlarge": {"x-a", "x-b"}, "p5en.48xlarge": {"x-c"}}
    assert choose_zones(["x-a", "x-b", "x-c"], offers, ["p4d.24xlarge", "p5en.48xlarge"], 2) == ["x-a", "x-c"]


def test_subnets_keep_their_zone_once_created(dev_runs):
    """A zone is replace-only and the new subnet would collide with the old one's CIDR: once created, a
    subnet keeps its zone whatever the offerings or the stack's GPU types say later."""
    subnets = dev_runs["preview"].by_type("aws:ec2/subnet:Subnet")
    assert subnets and all("availabilityZone" in s.options["ignoreChanges"] for s in subnets)


@pytest.mark.slow
def test_karpenter_pools_count_in_the_zone_choice():
    """A Karpenter-only stack of p4d NodePools gets zones that offer p4d (a, c, d in the kept table)."""
    cfg = dev_config()
    cfg[NS + "nodeGroups"] = []
    cfg[NS + "workloads"] = [w for w in cfg[NS + "workloads"] if w["pool"] == "p4d-small"]
    cfg[NS + "maxGpuNodes"] = 4
    r = run(cfg, preview=False)
    assert r.error is None, r.error
    assert r.outputs["availabilityZones"] == [f"us-east-1{c}" for c in harness.OFFERINGS["us-east-1"]["p4d.24xlarge"]]
