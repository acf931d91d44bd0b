"""What `make diff` prints and returns: the report a reviewer reads in a pull request (its order and wording), the
JSON beside it, the exit status (0 safe, 1 read the headlines, 2 could not compare) and the command line that
picks both sides. Reports are built by hand or from small hand-built plans (test_diff_report's builders); no
program runs. Expected text follows the format documented in docs/changing-a-running-stack.md (its real
outputs), figures are multiplied out by hand."""
from __future__ import annotations

import copy
import io
import json
import subprocess
import sys
import tarfile
import types
from pathlib import Path

import pytest
import yaml
from test_diff_report import CM, ROLE, changed, job, node_group, plan, pool, rec, used

from gpu_slicing.capacity import ON_DEMAND_LIST, SPOT_UNPRICED
from gpu_slicing.labels import POOL_LABEL
from tools import diff

CUSTOM = [{"devices": "all", "mig-enabled": True, "mig-devices": {"1g.5gb": 3}}]
A100 = [{"device-filter": ["0x20B010DE"], "devices": "all", "mig-enabled": True, "mig-devices": {"1g.5gb": 7}}]


def full_report() -> dict:
    """A report with every part a reviewer can meet: a headline, a live relabel, a spot pool, an upgrade, each
    kind of resource line, moved and unmoved workloads, a verification Job, warnings and retained layouts."""
    return {
        "headlines": [{"fatal": True, "urn": "cl", "text": "THE CLUSTER IS REPLACED (cl): all of it"}],
        "reconfigureInPlace": ["p4d-small"],
        "pools": [
            {"name": "p4d-small", "kind": "nodeGroup", "impact": "reconfigure-in-place", "nodes": 2, "nodesAfter": 2,
             "cost": {"before": 43.92, "after": 43.92, "peak": 43.92}, "why": "DANGER: relabel", "peakNodes": 2,
             "quota": {"vcpus": 192, "pInstances": True, "family": "P"}, "slicesAway": "until drained"},
            {"name": "g5", "kind": "nodePool", "impact": "rolling-replace", "nodes": 3, "nodesAfter": 1,
             "cost": {"before": 3.02, "after": 1.01, "peak": 4.02}, "why": "drift: x", "peakNodes": 4,
             "quota": {"vcpus": 16, "pInstances": False, "family": "G and VT"}, "slicesAway": "",
             "priceBasis": SPOT_UNPRICED,
             "slicesPerNode": {"before": {"nvidia.com/mig-1g.5gb": 0, "nvidia.com/gpu": 4}, "after": {}}},
            {"name": "p5", "kind": "nodeGroup", "impact": "scale", "nodes": 1, "nodesAfter": 2,
             "cost": {"before": 98.32, "after": 196.64, "peak": 196.64}, "why": "", "peakNodes": 2,
             "quota": {"vcpus": 384, "pInstances": True}, "slicesAway": ""},
        ],
        "kubernetes": {"before": "1.34", "after": "1.35", "calendar": "1.35 is in standard support", "refused": None},
        "upgradePath": ["1. control plane", "2. node groups"],
        "resources": [
            {"op": "replace", "type": diff.CLUSTER, "name": "cl", "changed": ["vpcId"], "why": "vpcId: EKS",
             "collides": True},
            {"op": "update", "type": diff.MNG, "name": "ng", "changed": ["version", "x"], "why": "version: rolls",
             "rolls": True, "unknown": ["x"]},
            {"op": "update", "type": CM, "name": "cm", "changed": ["spec.foo"], "why": "w-cm", "unknown": ["spec.foo"],
             "interrupts": True},
            {"op": "update", "type": "aws:ec2/internetGateway:InternetGateway", "name": "igw", "changed": ["vpcId"],
             "why": "w-igw", "interrupts": True},
            {"op": "create", "type": ROLE, "name": "role2", "changed": [], "why": "w-role", "collides": True},
            {"op": "update", "type": CM, "name": "quiet", "changed": ["data.k"], "why": "w-quiet"},
            {"op": "delete", "type": CM, "name": "old", "changed": [], "why": "w-old"},
        ],
        "workloads": [
            {"name": "same", "before": "fits", "after": "fits", "pool": {"before": ["a"], "after": ["a"]}},
            {"name": "moved", "before": "fits", "after": "fits", "pool": {"before": ["a"], "after": ["b"]}},
            {"name": "restarted", "before": "fits", "after": "pending", "pool": {"before": ["a"], "after": ["a"]},
             "restarts": 3, "restartWhy": ["image a -> b", "nodeSelector"], "message": "needs 9, 7 free"},
            {"name": "gone", "before": "fits", "after": "absent", "pool": {"before": ["a"], "after": None},
             "stops": 2},
            {"name": "claims", "before": "fits", "after": "fits", "pool": {"before": ["a"], "after": ["a"]},
             "staleClaims": {"pods": 4, "templates": ["t1", "t2"]}},
        ],
        "verification": [{"text": "Job v (create) needs 1 x s"}],
        "warnings": ["first warning", "second warning"],
        "retainMigLayouts": {"custom-abc": CUSTOM},
        "costPerHour": {"before": 145.26, "after": 241.57, "peak": 244.58},
        "controlPlanePerHour": {"before": 0.6, "after": 0.1},
        "pInstanceVcpusAtPeak": 576,
    }


def test_the_whole_report_reads_in_its_documented_order_and_wording():
    """Headlines first, between bars; then pools, the upgrade, resources in Pulumi's order, workloads, warnings,
    the block to paste for retained layouts, and the cost line last (docs/changing-a-running-stack.md)."""
    bar = "!" * 78
    expected = "\n".join([
        "Change from base.yaml to head.yaml",
        "",
        bar,
        "!! THE CLUSTER IS REPLACED (cl): all of it",
        "!! RECONFIGURE IN PLACE: p4d-small: live nodes get a new MIG layout with pods on them",
        bar,
        "",
        "GPU pools:",
        "!!reconfigure-in-place  nodeGroup p4d-small              nodes 2     $43.92/h -> $43.92/h (peak $43.92/h)",
        "    DANGER: relabel",
        "    slices away: until drained",
        "  rolling-replace       nodePool  g5                     nodes 3->1  $3.02/h -> $1.01/h (peak $4.02/h) at "
        "most: spot, not priced (its on-demand list price)",
        "    drift: x",
        "    at the peak 4 node(s): 16 vCPUs of the account's running G and VT-instance quota (On-Demand or Spot, by "
        "the pool's capacity type)",
        "    per node: 4 x nvidia.com/gpu -> none",
        "  scale                 nodeGroup p5                     nodes 1->2  $98.32/h -> $196.64/h (peak $196.64/h)",
        "",
        "Kubernetes 1.34 -> 1.35: 1.35 is in standard support",
        "",
        "Kubernetes upgrade, in this order:",
        "  1. control plane",
        "  2. node groups",
        "",
        "Resources (7 changed, in the order Pulumi applies them):",
        f"  +- replace {diff.CLUSTER}  cl",
        "       changed: vpcId",
        "       why: vpcId: EKS",
        f"  ~  update  {diff.MNG}  ng (rolls nodes)",
        "       changed: version, x",
        "       why: version: rolls",
        f"  ~  update  {CM}  cm (UNKNOWN effect)",
        "       changed: spec.foo",
        "       why: w-cm",
        "  ~  update  aws:ec2/internetGateway:InternetGateway  igw (interrupts)",
        "       changed: vpcId",
        "       why: w-igw",
        f"  +  create  {ROLE}  role2",
        "       why: w-role",
        f"  ~  update  {CM}  quiet",
        "       changed: data.k",
        f"  -  delete  {CM}  old",
        "",
        "Workloads:",
        "  moved                fits -> fits",
        "  restarted            fits -> pending; 3 pod(s) restart: image a -> b; nodeSelector  (needs 9, 7 free)",
        "  gone                 fits -> absent; its 2 pod(s) stop",
        "  claims               fits -> fits; claim template t1, t2 replaced: its 4 running pod(s) keep the claims "
        "made from the old one (a claim is never updated) until they are recreated; their pod template is "
        "unchanged, so `kubectl rollout restart` them to get the new selection",
        "  verification: Job v (create) needs 1 x s",
        "",
        "WARNING: first warning",
        "",
        "WARNING: second warning",
        "",
        "WARNING: the mig-parted ConfigMap drops layout(s) live nodes still carry until they are replaced; keep them "
        "by adding to the head stack (merge into gpuOperator, remove once `kubectl get nodes -L nvidia.com/mig.config`"
        " no longer shows them):",
        "gpu-slicing:gpuOperator:",
        "  retainedMigLayouts:",
        "    custom-abc:",
        "    - devices: all",
        "      mig-devices:",
        "        1g.5gb: 3",
        "      mig-enabled: true",
        "",
        "GPU cost per hour (on-demand list, spot, not priced): before $145.26, after $241.57, peak during the change "
        "$244.58; EKS control plane $0.60 -> $0.10; P-instance vCPUs at the peak: 576",
    ])
    assert diff.render(full_report(), "base.yaml", "head.yaml") == expected


def test_the_pasted_retained_layouts_block_is_the_stack_setting_itself():
    """A reviewer pastes the printed block into the head stack: read back as YAML it is exactly the
    gpuOperator.retainedMigLayouts setting holding the base's entries."""
    text = diff.render(full_report(), "b", "h")
    block = text.split("no longer shows them):\n", 1)[1].split("\n\n", 1)[0]
    assert yaml.safe_load(block) == {"gpu-slicing:gpuOperator": {"retainedMigLayouts": {"custom-abc": CUSTOM}}}


def minimal_report(**extra) -> dict:
    """What a report must hold; every other part may be absent (a report from an older diff, or hand-made)."""
    return {"reconfigureInPlace": [], "pools": [], "resources": [], "workloads": [],
            "costPerHour": {"before": 1.0, "after": 2.5, "peak": 3.456}, **extra}


def test_a_quiet_change_has_no_loud_block_and_defaults_for_what_the_report_leaves_out():
    """Nothing loud: no bars. Without a control plane or P-instance figure the cost line says $0.00 and 0, and
    with no pool the price basis is the on-demand list."""
    text = diff.render(minimal_report(), "b", "h")
    assert text == "\n".join([
        "Change from b to h", "", "GPU pools:", "", "Resources (0 changed, in the order Pulumi applies them):", "",
        "Workloads: no pod restarts, no fit changes", "",
        "GPU cost per hour (): before $1.00, after $2.50, peak during the change $3.46; EKS control plane $0.00 -> "
        "$0.00; P-instance vCPUs at the peak: 0"])
    # a pool without a price basis is priced at the on-demand list
    p = {"name": "p", "kind": "nodeGroup", "impact": "none", "nodes": 1, "nodesAfter": 1, "peakNodes": 3, "why": "",
         "cost": {"before": 1, "after": 1, "peak": 1}, "quota": {"vcpus": 0, "pInstances": False}}
    text = diff.render(minimal_report(pools=[p]), "b", "h")
    assert f"GPU cost per hour ({ON_DEMAND_LIST}): " in text
    assert "    at the peak" not in text  # no impact, no peak line, whatever the peak figure


def test_a_live_relabel_alone_opens_the_report_loudly():
    text = diff.render(minimal_report(reconfigureInPlace=["a", "b"]), "b", "h")
    assert text.split("\n")[2:6] == ["!" * 78, "!! RECONFIGURE IN PLACE: a, b: live nodes get a new MIG layout with "
                                     "pods on them", "!" * 78, ""]


def test_the_peak_line_only_when_the_change_adds_nodes_beyond_both_sides():
    """The quota line is for the extra nodes a change launches: none when the peak is one side's count."""
    p = {"name": "p", "kind": "nodeGroup", "impact": "scale", "nodes": 1, "nodesAfter": 2, "peakNodes": 2, "why": "",
         "cost": {"before": 1, "after": 2, "peak": 2}, "quota": {"vcpus": 192, "pInstances": True}}
    assert "    at the peak" not in diff.render(minimal_report(pools=[p]), "b", "h")
    p = {**p, "peakNodes": 3, "quota": {"vcpus": 288, "pInstances": True}}  # no family named: the P quota
    assert ("\n    at the peak 3 node(s): 288 vCPUs of the account's running P-instance quota (On-Demand or Spot, by "
            "the pool's capacity type)\n") in diff.render(minimal_report(pools=[p]), "b", "h")


def test_an_unchanged_version_or_a_refused_upgrade_prints_no_upgrade_order():
    """EKS refuses the upgrade (said first): its steps would never run, so they are not listed."""
    k = {"before": "1.34", "after": "1.36", "calendar": "c", "refused": "EKS upgrades one minor at a time"}
    text = diff.render(minimal_report(kubernetes=k, upgradePath=["1. x"]), "b", "h")
    assert "Kubernetes 1.34 -> 1.36: c" in text and "Kubernetes upgrade, in this order" not in text
    same = {"before": "1.35", "after": "1.35", "calendar": "c", "refused": None}
    text = diff.render(minimal_report(kubernetes=same), "b", "h")
    assert "Kubernetes 1.35" not in text
    text = diff.render(minimal_report(upgradePath=["1. x"]), "b", "h")  # no version record: the steps still show
    assert "\n\nKubernetes upgrade, in this order:\n  1. x\n" in text


def test_a_slice_count_of_zero_is_left_out_and_none_is_said():
    p = {"name": "p", "kind": "nodeGroup", "impact": "none", "nodes": 1, "nodesAfter": 1, "peakNodes": 1, "why": "",
         "cost": {"before": 1, "after": 1, "peak": 1}, "quota": {"vcpus": 0, "pInstances": False},
         "slicesPerNode": {"before": None, "after": {"b": 2, "a": 1, "c": 0}}}
    assert "\n    per node: none -> 1 x a, 2 x b\n" in diff.render(minimal_report(pools=[p]), "b", "h")


# --- compare: the report's figures and its verdict ----------------------------------------------------------------

def test_the_report_sums_the_pools_and_counts_only_p_instances_against_the_p_quota():
    """2 p4d (96 vCPUs each) and 1 g5.xlarge (4 vCPUs, G and VT quota): before 2 x 21.96 + 1.006 = 44.926,
    rounded 44.93; the P quota counts the p4d's 192 only."""
    pools = (pool("p4d"), pool("g5", 1, it="g5.xlarge", price=1.006, layout="ts-4"))
    r = diff.compare(plan(pools=pools), plan(pools=pools))
    assert r["costPerHour"] == {"before": 44.93, "after": 44.93, "peak": 44.93}
    assert r["pInstanceVcpusAtPeak"] == 192 and r["controlPlanePerHour"] == {"before": 0.0, "after": 0.0}
    assert r["fails"] is False and r["collisions"] == [] and r["reconfigureInPlace"] == []
    assert sorted(r) == sorted(["headlines", "resources", "pools", "controlPlanePerHour", "workloads",
                                "costPerHour", "pInstanceVcpusAtPeak", "verification", "kubernetes", "order",
                                "reconfigureInPlace", "collisions", "retainMigLayouts", "warnings", "upgradePath",
                                "fails"])


def test_a_collision_is_named_once_and_a_node_group_by_its_pool():
    """A node group replaced under its own EKS name collides: the pool names it (once), not the resource too."""
    old = node_group("old", "p4d-small", ng_name="gpu-same")
    new = node_group("new", "p4d-small", ng_name="gpu-same", layout="all-3g.20gb")
    role = rec("role", ROLE, {"name": "nodes", "path": "/"})
    r = diff.compare(plan(old, role, pools=(pool("p4d-small"),)),
                     plan(new, changed(role, path="/x/"), pools=(pool("p4d-small", layout="all-3g.20gb"),)))
    assert r["collisions"] == ["p4d-small", "role"] and r["fails"] is True
    assert r["order"] == ["create ManagedNodeGroup p4d-small", "replace Role role", "delete ManagedNodeGroup p4d-small"]


def test_a_blocked_verification_job_fails_the_change_after_what_the_resources_say():
    full = used(pool("p"), 56, 56)
    role = rec("role", ROLE, {"name": "nodes", "path": "/"})
    r = diff.compare(plan(role, job("p"), pools=(full,)), plan(changed(role, path="/x/"), job("p", image="b"),
                                                                pools=(full,)))
    assert [h["text"][:20] for h in r["headlines"]] == ["REPLACE COLLIDES (Ro", "A STEP WAITS FOR A S"]
    assert r["headlines"][1] == {"fatal": True, "urn": "", "text": "A STEP WAITS FOR A SLICE THAT FREES ONLY AFTER "
                                 "IT: " + r["verification"][0]["text"]}


def test_a_non_fatal_headline_alone_does_not_fail():
    """A replaced system node group under a new EKS name is read first but is no reason to stop."""
    system = rec("sys", diff.MNG, {"labels": {"gpu-slicing/role": "system"}, "nodeGroupName": "gpu-system-a",
                                   "instanceTypes": ["m7i.large"]})
    r = diff.compare(plan(system), plan(changed(system, nodeGroupName="gpu-system-b", instanceTypes=["m7i.xlarge"])))
    assert len(r["headlines"]) == 1 and r["fails"] is False


def test_a_region_named_on_one_side_only_is_compared_with_the_default_region():
    """Without aws:region a stack runs in us-east-1 (the project's default): naming another region on the head is
    a move of every AWS resource."""
    a = rec("a", CM, {"data": {}})
    r = diff.compare(plan(a, config={"gpu-slicing:x": 1}), plan(a, config={"aws:region": "eu-west-1"}))
    assert r["fails"] and r["headlines"][0]["text"].startswith("THE REGION CHANGES (us-east-1 -> eu-west-1)")
    r = diff.compare(plan(a, config={"aws:region": "eu-west-1"}), plan(a, config={"gpu-slicing:x": 1}))
    assert r["headlines"][0]["text"].startswith("THE REGION CHANGES (eu-west-1 -> us-east-1)")


# --- warnings ----------------------------------------------------------------------------------------------------------

def test_a_node_groups_ignored_input_that_changed_warns_once_per_group():
    """subnetIds is fixed at creation (ignoreChanges): a new zone lookup never reaches the group; say so."""
    ng = node_group("ng", "p4d-small", options={"ignoreChanges": ["subnetIds", "amiType"]})
    ng["options"] = {"ignoreChanges": ["subnetIds", "amiType", "releaseVersion"]}
    head = changed(ng, subnetIds=["subnet-9"], amiType="AL2023_x86_64_NVIDIA")
    r = diff.compare(plan(ng), plan(head))
    assert r["warnings"] == [
        "node group p4d-small keeps its subnetIds, amiType (fixed at creation, so that a changed zone lookup never "
        "replaces it under its own name): the new value does not reach it; to move it, rename the node group (a new "
        "group, created before the old one drains)"]
    # a new node group, or another type with an ignored input, has nothing kept
    assert diff.compare(plan(), plan(head))["warnings"] == []
    cm = rec("cm", CM, {"data": {"k": "1"}}, options={"ignoreChanges": ["data"]})
    assert diff.compare(plan(cm), plan(changed(cm, data={"k": "2"})))["warnings"] == []


def test_an_input_no_rule_names_warns_with_the_resource():
    cm = rec("cm", "kubernetes:example.com/v1:Widget", {"spec": {"size": 1, "color": "a"}})
    r = diff.compare(plan(cm), plan(changed(cm, spec={"size": 2, "color": "b"})))
    from gpu_slicing import changes
    assert r["warnings"] == [f"UNKNOWN effect: kubernetes:example.com/v1:Widget cm: spec.color, spec.size: "
                             f"{changes.NO_RULE}"]
    assert "\nWARNING: UNKNOWN effect: kubernetes:example.com/v1:Widget cm: spec.color, spec.size: " in diff.render(
        r, "b", "h")


# --- the command line: which stacks, which programs, what it prints and returns --------------------------------------

DEV = diff.ROOT_DIR / "Pulumi.dev.yaml"


def stack_file(tmp_path: Path, name: str, nodes: int) -> Path:
    path = tmp_path / name
    path.write_text(f"config:\n  gpu-slicing:maxGpuNodes: {nodes}\n")
    return path


def test_main_plans_the_head_under_the_stack_its_file_names(monkeypatch, capsys, tmp_path):
    """--config Pulumi.staging.yaml is the `staging` stack on both sides; a file outside the repository is
    labelled as given."""
    calls = []
    monkeypatch.setattr(diff, "plan", lambda cfg, stack="dev": calls.append((stack, dict(cfg))) or plan())
    base, head = stack_file(tmp_path, "Pulumi.old.yaml", 1), stack_file(tmp_path, "Pulumi.staging.yaml", 2)
    assert diff.main(["--base", str(base), "--config", str(head)]) == 0
    assert calls == [("staging", {"gpu-slicing:maxGpuNodes": 1}), ("staging", {"gpu-slicing:maxGpuNodes": 2})]
    out = capsys.readouterr().out.split("\n")
    assert out[0] == f"Change from {base} to {head}"
    assert out[-3].startswith("GPU cost per hour") and out[-1] == ""  # nothing after the timing without --json
    assert out[-2].startswith("(") and out[-2].endswith("s)") and 0 <= float(out[-2][1:-2]) < 60  # the run's seconds


def test_the_command_line_says_what_each_option_is(monkeypatch, capsys):
    """`python -m tools.diff --help` is how a reviewer learns the options (docs/changing-a-running-stack.md)."""
    monkeypatch.setenv("COLUMNS", "250")
    with pytest.raises(SystemExit) as exit_:
        diff.main(["--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert text.startswith("usage: ") and "What a stack change does to the running GPU fleet: two offline plans " \
        "compared, before anything merges." in text
    for option, words in (("--base BASE", "the running stack: a stack file or git:<ref>"),
                          ("--stack STACK", "head stack: Pulumi.<stack>.yaml (default dev)"),
                          ("--config CONFIG", "head stack file instead"), ("--json JSON", "also write the report here"),
                          ("--same-program", "with git:<ref>, plan the ref's stack file with the working tree's program "
                                             "(faster; blind to changes in the program itself)")):
        assert f"{option} {words}" in text
    with pytest.raises(SystemExit) as exit_:
        diff.main([])  # the running stack must be named
    assert exit_.value.code == 2 and "the following arguments are required: --base" in capsys.readouterr().err


def test_main_reads_a_named_stack_and_refuses_one_that_does_not_exist(monkeypatch, capsys):
    monkeypatch.setattr(diff, "plan", lambda cfg, stack="dev": plan())
    assert diff.main(["--base", str(DEV), "--stack", "no-such-stack"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Pulumi.no-such-stack.yaml" in err


def test_main_writes_the_json_report_it_printed_and_exits_1_when_it_fails(monkeypatch, capsys, tmp_path):
    """The JSON carries the verdict and both labels, so CI can read why a pull request failed."""
    role = rec("role", ROLE, {"name": "nodes", "path": "/"})
    plans = iter([plan(role), plan(changed(role, path="/x/"))])
    monkeypatch.setattr(diff, "plan", lambda cfg, stack="dev": next(plans))
    out = tmp_path / "r.json"
    assert diff.main(["--base", str(DEV), "--json", str(out)]) == 1
    printed = capsys.readouterr().out
    assert printed.endswith(f"s)\nreport written to {out}\n") and "!! REPLACE COLLIDES (Role role)" in printed
    text = out.read_text()
    assert text.endswith("}\n") and text.startswith('{\n  "headlines": [')  # indented, one trailing newline
    report = json.loads(text)
    assert report["fails"] is True and report["collisions"] == ["role"]
    assert report["base"] == "Pulumi.dev.yaml" and report["head"] == "Pulumi.dev.yaml"


def test_main_says_which_side_does_not_plan(monkeypatch, capsys):
    """The base is judged first; each error's lines are indented under its label."""
    plans = iter([plan(), diff.Plan({}, {}, {}, error="bad\nworse")])
    monkeypatch.setattr(diff, "plan", lambda cfg, stack="dev": next(plans))
    assert diff.main(["--base", str(DEV)]) == 2
    captured = capsys.readouterr()
    assert captured.err == "error: Pulumi.dev.yaml does not plan: bad\n  worse\n" and captured.out == ""


def test_main_refuses_a_git_base_it_cannot_read_or_plan(monkeypatch, capsys):
    monkeypatch.setattr(diff, "plan", lambda cfg, stack="dev": plan())
    assert diff.main(["--base", "git:no-such-ref-xyz"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read base git:no-such-ref-xyz: fatal: ")  # git's own words

    def unplannable(ref, stack_file, config):
        raise diff.subprocess.CalledProcessError(2, ["git", "archive"], stderr=b"fatal: bad tree")

    monkeypatch.setattr(diff, "plan_at_ref", unplannable)
    assert diff.main(["--base", "git:HEAD"]) == 2
    assert capsys.readouterr().err == "error: cannot plan git:HEAD: b'fatal: bad tree'\n"

    def no_disk(ref, stack_file, config):
        raise OSError("no space left")

    monkeypatch.setattr(diff, "plan_at_ref", no_disk)
    assert diff.main(["--base", "git:HEAD"]) == 2
    assert capsys.readouterr().err == "error: cannot plan git:HEAD: no space left\n"


def test_load_config_reads_a_stack_file_at_a_git_ref_or_on_disk(tmp_path):
    """`git:<ref>` is the head's stack file as committed at that ref (the running stack); a path is read as is."""
    import subprocess

    committed = subprocess.run(["git", "show", "HEAD:Pulumi.dev.yaml"], cwd=diff.ROOT_DIR, capture_output=True,
                               text=True, check=True).stdout
    cfg, label = diff.load_config("git:HEAD", DEV)
    assert cfg == yaml.safe_load(committed)["config"] and label == "Pulumi.dev.yaml at HEAD"
    cfg, label = diff.load_config(str(DEV), DEV)
    assert label == "Pulumi.dev.yaml" and cfg == yaml.safe_load(DEV.read_text())["config"]
    outside = stack_file(tmp_path, "Pulumi.x.yaml", 3)
    assert diff.load_config(str(outside), DEV) == ({"gpu-slicing:maxGpuNodes": 3}, str(outside))


def test_a_git_base_for_a_stack_file_outside_the_repository_is_refused_in_words(monkeypatch, capsys, tmp_path):
    """A file outside the repository has no version at a ref: exit 2 with the reason (it was a ValueError
    traceback)."""
    monkeypatch.setattr(diff, "plan", lambda cfg, stack="dev": plan())
    head = stack_file(tmp_path, "Pulumi.dev.yaml", 1)
    assert diff.main(["--base", "git:HEAD", "--config", str(head)]) == 2
    assert capsys.readouterr().err == (f"error: cannot read base git:HEAD: {head} is outside the repository, so it "
                                       "has no version at HEAD\n")


def test_a_stack_file_broken_at_the_ref_is_named_with_its_ref(monkeypatch, tmp_path):
    """git show runs in the repository whatever the current directory; what it prints is read as a stack file,
    and what is wrong with it is said of `<file> at <ref>`."""
    seen = {}

    def git_show(args, **kw):
        seen.update(args=args, cwd=kw.get("cwd"))
        return done(args, kw, 0, out=b"- a list\n")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(diff.subprocess, "run", git_show)
    with pytest.raises(diff.ConfigError) as e:
        diff.load_config("git:v1", DEV)
    assert str(e.value).startswith("Pulumi.dev.yaml at v1: ")
    assert seen == {"args": ["git", "show", "v1:Pulumi.dev.yaml"], "cwd": diff.ROOT_DIR}


# --- planning the base with its own program --------------------------------------------------------------------------

def tar_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class FakeRef:
    """`git archive` of a ref holding `files`, `tar`, and the ref's `tools.plan` writing `record` (or failing)."""

    def __init__(self, files: dict[str, bytes] | None, record: dict | None = None, stderr: str = "", stdout: str = ""):
        self.files, self.record, self.stderr, self.stdout = files, record, stderr, stdout
        self.calls: list[tuple[list, dict]] = []
        self.seen: dict = {}

    def __call__(self, args, **kw):
        self.calls.append((list(args), kw))
        if args[0] == "git":
            if self.files is None:
                return done(args, kw, 128, err=b"fatal: not a valid object name v1\n")
            return done(args, kw, 0, out=tar_of(self.files))
        if args[0] == "tar":  # the real tar
            return REAL_RUN(args, **kw)
        src = Path(kw["cwd"])
        self.seen = {"src": src, "files": sorted(p.name for p in src.iterdir())}
        if self.record is not None:
            Path(args[args.index("--json") + 1]).write_text(json.dumps(self.record))
        return done(args, kw, 2, out=self.stdout.encode(), err=self.stderr.encode())


REAL_RUN = subprocess.run


def done(args: list, kw: dict, code: int, out: bytes = b"", err: bytes = b"") -> subprocess.CompletedProcess:
    """What subprocess.run returns for these options: output only when captured, text only when asked for, an
    exception for a failure only with check."""
    o, e = (out.decode(), err.decode()) if kw.get("text") else (out, err)
    if not kw.get("capture_output"):
        o = e = None
    if code and kw.get("check"):
        raise subprocess.CalledProcessError(code, args, o, e)
    return subprocess.CompletedProcess(args, code, o, e)


def at_ref(monkeypatch, fake: FakeRef, config: dict | None = None) -> tuple[diff.Plan, list]:
    envs: list = []
    monkeypatch.setattr(diff.subprocess, "run", fake)
    monkeypatch.setattr(diff, "_environment", lambda req, name="requirements.txt": envs.append((req, name))
                        or "/venv/bin/python")
    return diff.plan_at_ref("v1", "Pulumi.dev.yaml", config or {"gpu-slicing:x": 1}), envs


def test_a_git_base_is_planned_by_its_own_program_with_its_own_lock(monkeypatch):
    """The ref's files by `git archive`, its `tools.plan` run in them under a Python with the ref's development
    lock (preferred over its requirements.txt), without this process's PYTHONPATH; the record it writes is the
    base, its packaged components folded as the working tree's plans are."""
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    monkeypatch.setenv("GPU_SLICING_TEST_MARK", "kept")
    ng = rec("ng", diff.MNG, {"nodeGroupName": "a"}, options={"children": {
        "c": {"inputs": {"updateConfig": {"maxUnavailable": 2}}, "ignoreChanges": ["subnetIds"]}}})
    cm = rec("cm", CM, {"data": {}})
    record = {"resources": [cm, ng], "capacity": {"pools": [pool("p")]}}
    fake = FakeRef({"Pulumi.dev.yaml": b"config: {}\n", "requirements-dev.lock": b"lock\n",
                    "requirements.txt": b"reqs\n", "tools/plan.py": b"'--quiet'\n"}, record)
    base, envs = at_ref(monkeypatch, fake, {"gpu-slicing:x": 1})
    assert envs == [(b"lock\n", "requirements-dev.lock")]
    (git, git_kw), _, (py, py_kw) = fake.calls
    assert git == ["git", "archive", "--format=tar", "v1"] and git_kw["cwd"] == diff.ROOT_DIR
    src = fake.seen["src"]
    assert src.name.startswith("gpu-slicing-base-")  # findable in /tmp while it runs
    assert py == ["/venv/bin/python", "-m", "tools.plan", "--config", str(src / "Pulumi.dev.yaml"), "--json",
                  str(src / "base-plan.json"), "--quiet"]
    assert "PYTHONPATH" not in py_kw["env"] and py_kw["env"]["GPU_SLICING_TEST_MARK"] == "kept"
    assert not src.exists()  # the unpacked ref is removed afterwards
    assert base.error is None and base.config == {"gpu-slicing:x": 1} and base.order == ["cm", "ng"]
    assert base.resources["ng"]["inputs"]["updateConfig"] == {"maxUnavailable": 2}
    assert base.resources["ng"]["options"]["ignoreChanges"] == ["subnetIds"]
    assert base.capacity == {"pools": [pool("p")]}


def test_an_older_ref_runs_with_its_requirements_txt_and_without_quiet(monkeypatch):
    """Before the locks a ref's requirements.txt held everything; before `--quiet` its tools.plan had no such flag."""
    fake = FakeRef({"Pulumi.dev.yaml": b"config: {}\n", "requirements.txt": b"reqs\n", "tools/plan.py": b"x\n"},
                   {"resources": []})
    base, envs = at_ref(monkeypatch, fake)
    assert envs == [(b"reqs\n", "requirements.txt")] and fake.calls[-1][0][-1] == str(fake.seen["src"] /
                                                                                      "base-plan.json")
    assert base.resources == {} and base.capacity == {} and base.error is None
    fake = FakeRef({"Pulumi.dev.yaml": b"config: {}\n", "tools/plan.py": b"x\n"}, {"resources": []})
    _, envs = at_ref(monkeypatch, fake)
    assert envs == [(b"", "requirements.txt")]  # no requirements at all: an empty set


def test_a_git_base_that_does_not_plan_says_why(monkeypatch):
    fake = FakeRef({"Pulumi.dev.yaml": b"config: {}\n", "tools/plan.py": b"x\n"}, None, stderr="  bad key\n",
                   stdout="ignored")
    base, _ = at_ref(monkeypatch, fake)
    assert base == diff.Plan({}, {}, {}, error="bad key")
    fake = FakeRef({"Pulumi.dev.yaml": b"config: {}\n", "tools/plan.py": b"x\n"}, None, stdout=" only stdout \n")
    assert at_ref(monkeypatch, fake)[0].error == "only stdout"
    fake = FakeRef({"Pulumi.prod.yaml": b"config: {}\n"})
    base, envs = at_ref(monkeypatch, fake)
    assert base == diff.Plan({}, {}, {}, error="Pulumi.dev.yaml does not exist at v1") and envs == []
    assert len(fake.calls) == 2


def test_a_ref_git_cannot_archive_or_tar_cannot_unpack_is_an_error_not_an_empty_base(monkeypatch):
    """main turns these into `error: cannot plan git:<ref>` (exit 2)."""
    with pytest.raises(subprocess.CalledProcessError) as e:
        at_ref(monkeypatch, FakeRef(None))
    assert e.value.stderr == b"fatal: not a valid object name v1\n"
    monkeypatch.setattr(diff.subprocess, "run", lambda args, **kw: done(args, kw, 0, out=b"not a tar archive")
                        if args[0] == "git" else REAL_RUN(args, **kw))
    with pytest.raises(subprocess.CalledProcessError):
        diff.plan_at_ref("v1", "Pulumi.dev.yaml", {})


def test_a_ref_runs_with_its_lock_else_its_requirements_else_nothing(tmp_path):
    """The development lock names everything a ref's plan needs; a ref from before the locks has requirements.txt."""
    assert diff.requirements_file(tmp_path) is None
    (tmp_path / "requirements.txt").write_text("a\n")
    assert diff.requirements_file(tmp_path) == tmp_path / "requirements.txt"
    (tmp_path / "requirements-dev.lock").write_text("b\n")
    assert diff.requirements_file(tmp_path) == tmp_path / "requirements-dev.lock"


def test_the_base_runs_in_this_python_when_its_requirements_are_the_working_trees(monkeypatch, tmp_path):
    """Same lock: no virtualenv to build. Another: one virtualenv per lock, built once (venv, then pip install -r),
    cached under GPU_SLICING_VENV_CACHE by the first 16 hex digits of the lock's SHA-256."""
    import hashlib
    import subprocess

    (tmp_path / "requirements-dev.lock").write_bytes(b"same\n")
    monkeypatch.setattr(diff, "ROOT_DIR", tmp_path)
    runs: list = []
    monkeypatch.setattr(diff.subprocess, "run", lambda args, **kw: runs.append((list(args), kw))
                        or subprocess.CompletedProcess(args, 0))
    assert diff._environment(b"same\n", "requirements-dev.lock") == sys.executable and runs == []
    cache = tmp_path / "cache"
    monkeypatch.setenv("GPU_SLICING_VENV_CACHE", str(cache))
    venv = cache / hashlib.sha256(b"other\n").hexdigest()[:16]
    assert diff._environment(b"other\n", "requirements-dev.lock") == str(venv / "bin" / "python")
    assert runs == [([sys.executable, "-m", "venv", str(venv)], {"check": True}),
                    ([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                      "-r", str(venv / "requirements-dev.lock")], {"check": True})]
    assert (venv / "requirements-dev.lock").read_bytes() == b"other\n" and (venv / ".installed").exists()
    runs.clear()
    assert diff._environment(b"other\n", "requirements-dev.lock") == str(venv / "bin" / "python") and runs == []
    # a build that stopped halfway (no .installed) is built again in the same directory
    (venv / ".installed").unlink()
    assert diff._environment(b"other\n", "requirements-dev.lock") == str(venv / "bin" / "python") and len(runs) == 2
    assert (venv / ".installed").exists()
    # the working tree's requirements.txt is not its lock: another file name is another comparison
    (tmp_path / "requirements.txt").write_bytes(b"same\n")
    assert diff._environment(b"same\n") == sys.executable


def test_the_venv_cache_defaults_to_the_users_cache_directory(monkeypatch, tmp_path):
    import hashlib
    import subprocess

    monkeypatch.setattr(diff, "ROOT_DIR", tmp_path)
    monkeypatch.delenv("GPU_SLICING_VENV_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(diff.subprocess, "run", lambda args, **kw: subprocess.CompletedProcess(args, 0))
    python = diff._environment(b"x")
    venv = tmp_path / "home" / ".cache" / "gpu-slicing" / "venvs" / hashlib.sha256(b"x").hexdigest()[:16]
    assert python == str(venv / "bin" / "python") and (venv / "requirements.txt").read_bytes() == b"x"


# --- planning a side in this process -------------------------------------------------------------------------------

def test_plan_runs_the_program_in_preview_and_keeps_the_creation_order(monkeypatch):
    """The plan is the program's registrations, in the order tools.plan creates them (dependencies first), with
    the capacity plan it exports; a program that fails is an error, not an empty plan."""
    seen: dict = {}
    cm, ng = rec("cm", CM, {"data": {}}), rec("ng", diff.MNG, {"nodeGroupName": "a"}, options={"children": {
        "c": {"inputs": {"updateConfig": {"maxUnavailable": 3}}}}})
    regs = [types.SimpleNamespace(to_json=lambda r=r: copy.deepcopy(r)) for r in (cm, ng)]

    def run_program(config, stack, preview):
        seen.update(config=config, stack=stack, preview=preview)
        return types.SimpleNamespace(error=seen.get("error"), registrations=regs, outputs=seen.get("outputs", {}))

    harness = types.SimpleNamespace(run_program=run_program)
    planner = types.SimpleNamespace(creation_order=lambda records: list(reversed(records)))
    monkeypatch.setitem(sys.modules, "tools.harness", harness)
    monkeypatch.setitem(sys.modules, "tools.plan", planner)
    p = diff.plan({"gpu-slicing:x": 1}, stack="prod")
    assert seen == {"config": {"gpu-slicing:x": 1}, "stack": "prod", "preview": True}
    assert p.order == ["ng", "cm"] and list(p.resources) == ["ng", "cm"] and p.capacity == {} and p.error is None
    assert p.resources["ng"]["inputs"] == {"nodeGroupName": "a", "updateConfig": {"maxUnavailable": 3}}
    seen["outputs"] = {"capacity": {"pools": []}}
    assert diff.plan({}).capacity == {"pools": []} and seen["stack"] == "dev"
    seen["error"] = ValueError("boom")
    assert diff.plan({"a": 1}) == diff.Plan({"a": 1}, {}, {}, error="boom")


# --- Kubernetes version: EKS's verdict, the control plane's price, the upgrade's order --------------------------------

def on_2026_12_06(monkeypatch) -> None:
    import datetime as dt

    from gpu_slicing import calendar
    monkeypatch.setattr(calendar, "today", lambda: dt.date(2026, 12, 6))


def test_the_version_change_prices_the_control_plane_on_both_sides(monkeypatch):
    """On 2026-12-06, 1.34 is in extended support ($0.60/h) and 1.35 in standard support until 2027-03-27
    ($0.10/h): EKS user guide, Kubernetes version lifecycle; EKS pricing."""
    on_2026_12_06(monkeypatch)
    cluster = rec("cl", diff.CLUSTER, {"name": "gpu", "version": "1.34"})
    v = diff.version_change(plan(cluster), plan(changed(cluster, version="1.35")))
    assert v == {"before": "1.34", "after": "1.35", "refused": None,
                 "controlPlane": {"before": 0.6, "after": 0.1},
                 "calendar": "Kubernetes 1.35 is in EKS standard support until 2027-03-27 (EKS user guide, Kubernetes "
                             "version lifecycle)"}
    down = diff.version_change(plan(changed(cluster, version="1.35")), plan(cluster))
    assert down["refused"] == "EKS never downgrades a cluster (1.35 -> 1.34)"
    assert down["controlPlane"] == {"before": 0.1, "after": 0.6}


def test_a_version_eks_does_not_know_or_a_side_without_a_cluster_has_no_version_change():
    cluster = rec("cl", diff.CLUSTER, {"name": "gpu", "version": "1.34"})
    assert diff.version_change(plan(), plan(cluster)) is None  # a new cluster: nothing is upgraded
    assert diff.version_change(plan(changed(cluster, version="1.20")), plan(cluster)) is None
    assert diff.version_change(plan(cluster), plan(changed(cluster, version="<computed>"))) is None


def test_a_cluster_under_a_new_resource_or_name_starts_at_its_version_so_nothing_is_refused():
    """Only an upgrade of the running cluster goes through UpdateClusterVersion: a new cluster is created there."""
    cluster = rec("cl", diff.CLUSTER, {"name": "gpu", "version": "1.34"})
    moved = rec("cl2", diff.CLUSTER, {"name": "gpu", "version": "1.36"})
    assert diff.version_change(plan(cluster), plan(moved))["refused"] is None
    assert diff.version_change(plan(cluster), plan(changed(cluster, version="1.36")))["refused"].startswith(
        "EKS upgrades one minor at a time (UpdateClusterVersion refuses 1.34 -> 1.36): upgrade to 1.35 first")


def test_the_upgrade_order_names_only_what_the_version_rolls():
    """Step 2 lists the node groups whose version rolls them (not one rolled by another input); step 3 the
    Karpenter pools that drift (not a node group rolling)."""
    res = [{"type": diff.CLUSTER, "name": "cl", "op": "update", "changed": ["version"]},
           {"type": diff.MNG, "name": "a", "op": "update", "changed": ["version"], "rolls": True},
           {"type": diff.MNG, "name": "b", "op": "update", "changed": ["releaseVersion"], "rolls": True},
           {"type": diff.MNG, "name": "c", "op": "update", "changed": ["version"]},
           {"type": diff.NODEPOOL, "name": "d", "op": "update", "changed": ["version"], "rolls": True},
           {"type": diff.MNG, "name": "e", "op": "update", "changed": ["labels.x", "version"], "rolls": True}]
    pools = [{"name": "a", "kind": "nodeGroup", "impact": "rolling-replace"},
             {"name": "kp", "kind": "nodePool", "impact": "rolling-replace"},
             {"name": "kq", "kind": "nodePool", "impact": "scale"},
             {"name": "kr", "kind": "nodePool", "impact": "rolling-replace"}]
    assert diff.upgrade_path(res, pools) == [
        "1. control plane cl: EKS UpdateClusterVersion (in place)",
        "2. node groups, after the control plane: a, e (EKS UpdateNodegroupVersion)",
        "3. Karpenter nodes drift to the new version's AMI: kp, kr"]
    assert diff.upgrade_path([{**res[0], "type": diff.MNG}], pools) == []  # no cluster upgraded, no order


# --- the verification Job: where it finds its slice ---------------------------------------------------------------

def verified(p: dict, head_pool: dict | None = None, resource: str = "nvidia.com/mig-1g.5gb",
             op: str = "create") -> dict:
    j = job("p", resource=resource)
    r = {"urn": "j", "type": diff.JOB, "name": "verify", "op": op, "changed": [], "why": ""}
    [v] = diff.verification(plan(j, pools=(head_pool or used(pool("p"), 56, 56),)), [r], [p])
    return v


def pool_impact(impact: str, kind: str = "nodeGroup", after: int = 2) -> dict:
    return {"name": "p", "kind": kind, "impact": impact, "nodes": 2, "nodesAfter": after}


@pytest.mark.parametrize("impact,after,blocked", [("create", 2, False), ("blue-green", 2, False), ("delete", 2, False),
                                                  ("delete", 0, True), ("rolling-replace", 2, True),
                                                  ("scale", 2, True), ("none", 2, True)])
def test_only_new_nodes_free_a_slice_on_a_full_node_group(impact, after, blocked):
    """New nodes (a new or blue-green group, a pool created again in a new cluster) are empty until the
    Deployments move; a rolled, scaled or untouched group's running nodes are full (56 of 56 slices used)."""
    v = verified(pool_impact(impact, after=after))
    assert v["blocked"] is blocked
    assert v["text"].endswith(": new nodes (free until the Deployments move)") is not blocked


def test_a_karpenter_pool_launches_a_node_for_the_job_whatever_its_impact():
    v = verified(pool_impact("none", kind="nodePool"))
    assert not v["blocked"] and v["text"] == ("Job verify (create) runs before the Deployments it guards and needs "
                                              "1 x nvidia.com/mig-1g.5gb on p: a node Karpenter launches if no slice "
                                              "is free")


def test_a_blocked_job_says_why_in_full():
    v = verified(pool_impact("none"), op="replace")
    assert v == {"job": "verify", "pool": "p", "needs": "1 x nvidia.com/mig-1g.5gb", "blocked": True, "text": (
        "Job verify (replace) runs before the Deployments it guards and needs 1 x nvidia.com/mig-1g.5gb on p: 0 free "
        "nvidia.com/mig-1g.5gb on the running nodes: every slice is held by running pods, so it stays Pending and "
        "`pulumi up` waits until its await times out")}
    # free slices of another resource do not help
    other = used(pool("p"), 56, 0, resource="nvidia.com/mig-3g.20gb")
    assert verified(pool_impact("none"), head_pool=other)["blocked"]


def test_a_job_asking_for_no_slice_never_waits_and_an_unplanned_pool_has_none_free():
    """A Job without an nvidia.com/ limit cannot wait for a slice (it was reported as needing "1 x None" and failed
    the diff on a full pool); a pool the head does not plan frees nothing; a pool with nothing requested frees all."""
    plain = rec("j", diff.JOB, {"spec": {"template": {"spec": {"nodeSelector": {POOL_LABEL: "p"}, "containers": [
        {"image": "a", "resources": {"limits": {"cpu": "1"}}}]}}}}, name="plain")
    r = {"urn": "j", "type": diff.JOB, "name": "plain", "op": "create", "changed": []}
    assert diff.verification(plan(plain, pools=(used(pool("p"), 56, 56),)), [r], [pool_impact("none")]) == []
    gpu = {**job("p"), "urn": "j2"}
    [v] = diff.verification(plan(plain, gpu, pools=(used(pool("p"), 56, 56),)), [r, {**r, "urn": "j2"}],
                            [pool_impact("none")])
    assert v["needs"] == "1 x nvidia.com/mig-1g.5gb"  # the Jobs after it are still judged
    r = {**r, "name": "verify"}
    [v] = diff.verification(diff.Plan({}, {"j": job("elsewhere")}, {}), [r], [pool_impact("none")])
    assert v["blocked"] and v["pool"] == "elsewhere" and v["text"].endswith(
        "on elsewhere: 0 free nvidia.com/mig-1g.5gb on the running nodes: every slice is held by running pods, so it "
        "stays Pending and `pulumi up` waits until its await times out")
    idle = {**pool("p"), "utilization": {"resources": {"nvidia.com/mig-1g.5gb": {"available": 3}}}}
    [v] = diff.verification(plan(job("p", count="3"), pools=(idle,)), [r], [pool_impact("none")])
    assert not v["blocked"] and v["needs"] == "3 x nvidia.com/mig-1g.5gb" and v["text"].endswith(
        "on p: 3 free nvidia.com/mig-1g.5gb on the running nodes")


def test_a_job_that_is_not_rerun_or_not_a_job_needs_nothing():
    j = job("p")
    p = used(pool("p"), 56, 56)
    for r in ({"urn": "j", "type": diff.JOB, "name": "verify", "op": "update", "changed": []},
              {"urn": "j", "type": diff.JOB, "name": "verify", "op": "delete", "changed": []},
              {"urn": "j", "type": CM, "name": "verify", "op": "create", "changed": []}):
        assert diff.verification(plan(j, pools=(p,)), [r], [pool_impact("none")]) == []


# --- MIG layouts the live nodes still carry ----------------------------------------------------------------------

def mig_cm(urn: str, configs: dict | None, key: str = "mig-configs") -> dict:
    return rec(urn, CM, {"metadata": {"name": urn}, "data": {"config.yaml": yaml.safe_dump({"version": "v1",
                                                                                           key: configs})}})


def test_the_mig_parted_configmap_is_the_one_holding_mig_configs():
    """A time-slicing ConfigMap also has a config.yaml: it is not the MIG layouts."""
    ts = rec("ts", CM, {"data": {"config.yaml": yaml.safe_dump({"version": "v1", "sharing": {}})}})
    other = rec("other", CM, {"data": {"a": "b"}})
    assert diff._mig_configs(plan(ts, other)) is None
    assert diff._mig_configs(plan(ts, other, mig_cm("m", {"x": CUSTOM}))) == {"x": CUSTOM}
    assert diff._mig_configs(plan(mig_cm("m", None))) == {}  # an empty mig-configs: no layout at all


def test_a_retained_layout_is_one_no_base_pool_uses_and_all_disabled_is_never_one():
    """all-disabled is every config's default entry, not a retained one; the retained entries are what the base
    holds beyond its pools' layouts."""
    base = plan(mig_cm("m", {"all-disabled": [], "all-1g.5gb": CUSTOM, "zeta": CUSTOM, "alpha": CUSTOM}),
                pools=(pool("p", layout="all-1g.5gb"),))
    head = plan(mig_cm("m", {"all-1g.5gb": CUSTOM}))
    assert diff.removed_retained(base, head) == ["alpha", "zeta"]
    assert diff.removed_retained(base, plan(mig_cm("m", {"alpha": CUSTOM}))) == ["zeta"]
    assert diff.removed_retained(plan(pools=(pool("p"),)), head) == []


def test_dropped_layouts_are_listed_in_order_and_only_for_running_pools():
    """Two pools losing custom layouts: both blocks, sorted by label (the order a stack file is read in);
    a pool with no node before carries nothing; a pool new in the head had no layout."""
    base = plan(mig_cm("m", {"zz-custom": CUSTOM, "aa-custom": CUSTOM, "mm-custom": CUSTOM}),
                pools=(pool("one", layout="zz-custom"), pool("two", layout="aa-custom"),
                       pool("idle", 0, layout="mm-custom")))
    head = plan(mig_cm("m", {"all-1g.5gb": CUSTOM}), pools=(pool("one"), pool("two"), pool("idle", 0),
                                                            pool("new")))
    r = diff.compare(base, head)
    assert list(r["retainMigLayouts"]) == ["aa-custom", "zz-custom"]


def test_a_named_layout_of_another_gpu_is_written_out_for_that_gpu():
    """A p5 (H100) pool on NVIDIA's all-1g.10gb: the head's own ConfigMap must carry that entry for H100s."""
    from gpu_slicing import catalog, layouts

    h100 = catalog.INSTANCE_TYPES["p5.48xlarge"].gpu
    expected = layouts.mig_parted_configs([catalog.named_layouts(h100)["all-1g.10gb"]])["all-1g.10gb"]
    p5 = pool("p5", 1, it="p5.48xlarge", layout="all-1g.10gb")
    r = diff.compare(plan(pools=(p5,)), plan(mig_cm("m", {"custom": CUSTOM}), pools=({**p5, "layout": "custom"},)))
    assert r["retainMigLayouts"] == {"all-1g.10gb": expected}
    # a layout the catalog does not name for that GPU (nor a type it does not know) cannot be written out
    wrong = {**p5, "layout": "all-1g.5gb"}
    assert diff.compare(plan(pools=(wrong,)), plan(mig_cm("m", {"custom": CUSTOM}), pools=(p5,)))[
        "retainMigLayouts"] == {}


def test_requirements_widened_or_narrowed_are_said_in_full_and_only_for_them():
    """Karpenter docs, disruption (drift): widened requirements drift nothing, narrowed ones drift the nodes
    outside them; a NodePool change elsewhere says nothing about requirements."""
    res = {"type": diff.NODEPOOL, "name": "np", "op": "update",
           "changed": ["spec.template.spec.requirements.0.values"]}
    assert diff.warnings(plan(), plan(), [res]) == ["NodePool np: requirements widened: no node drifts (running "
                                                    "nodes still match)"]
    assert diff.warnings(plan(), plan(), [{**res, "rolls": True}]) == [
        "NodePool np: requirements narrowed: nodes outside them drift and are replaced"]
    assert diff.warnings(plan(), plan(), [{**res, "changed": ["spec.template.spec.taints"], "rolls": True}]) == []
    assert diff.warnings(plan(), plan(), [{**res, "type": diff.NODECLASS}]) == []


def test_a_workload_whose_pods_stop_is_listed_even_when_its_fit_reads_the_same():
    w = {"name": "w", "before": "fits", "after": "fits", "pool": {"before": ["a"], "after": ["a"]}, "stops": 2}
    assert "\n  w                    fits -> fits; its 2 pod(s) stop\n" in diff.render(minimal_report(workloads=[w]),
                                                                                     "b", "h")


def test_layouts_are_kept_for_every_running_pool_whatever_comes_before_it():
    """Each pool is judged on its own: an idle pool, one on a layout the operator's config has, or one whose layout
    the base never held, listed first, does not stop the next pool's layout from being kept."""
    cm = mig_cm("m", {"keep": CUSTOM, "idle": CUSTOM, "all-1g.5gb": A100})
    keep = pool("z-keep", layout="keep")
    for first in (pool("a-idle", 0, layout="idle"), pool("a-named", layout="all-1g.5gb")):
        r = diff.compare(plan(cm, pools=(first, keep)), plan(pools=(first, keep)))
        assert r["retainMigLayouts"] == {"keep": CUSTOM}
    odd = pool("a-odd", layout="never-held")  # not in the base's config, and the head runs the operator's
    assert diff.compare(plan(cm, pools=(odd, keep)), plan(pools=(odd, keep)))["retainMigLayouts"] == {"keep": CUSTOM}
    # a type the catalog does not know has no named layouts to write out
    unknown = pool("x", 1, it="x9.unknown", layout="all-1g.5gb")
    assert diff.compare(plan(pools=(unknown,)), plan(mig_cm("m", {"c": CUSTOM}), pools=(unknown,)))[
        "retainMigLayouts"] == {}
