"""Karpenter: the AWS side against upstream's getting-started CloudFormation, the chart values against the
chart's values.yaml, the EC2NodeClass / NodePool / NodeOverlay against the v1.14.1 CRD schemas, the
NodeOverlay capacity against the capacity planner, the config errors, and the program's registrations
(dev stack with Karpenter on, and off)."""
from __future__ import annotations

import copy
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import dev_config, run
from gpu_slicing import catalog
from gpu_slicing.helm import has_path
from gpu_slicing import karpenter as spec
from gpu_slicing.config import AMI_ALIAS_VERSION, KARPENTER_VERSION
from gpu_slicing.stack import parse_config
from gpu_slicing.errors import ConfigError
from gpu_slicing.pools import resolve_pools
from gpu_slicing.validate import capacity_plan
from tools import refdata

MODES = ["preview", "up"]
CLUSTER = "gpu-dev"
ACCOUNT, REGION = "123456789012", "us-east-1"  # tools/harness.py PlausibleMocks
CTX = spec.AwsContext("aws", REGION, ACCOUNT)
NODE_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{spec.node_role_name(CLUSTER)}"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{spec.queue_name(CLUSTER)}"
KARPENTER_TYPES = ("aws:iam/role:Role", "aws:iam/policy:Policy", "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                   "aws:eks/accessEntry:AccessEntry", "aws:eks/podIdentityAssociation:PodIdentityAssociation",
                   "aws:eks/addon:Addon", "aws:sqs/queue:Queue", "aws:sqs/queuePolicy:QueuePolicy",
                   "aws:cloudwatch/eventRule:EventRule", "aws:cloudwatch/eventTarget:EventTarget", "aws:ec2/tag:Tag",
                   "kubernetes:helm.sh/v3:Release", "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass",
                   "kubernetes:karpenter.sh/v1:NodePool", "kubernetes:karpenter.sh/v1alpha1:NodeOverlay")


# --- helpers ------------------------------------------------------------------------------------------

def _cfn() -> dict:
    return refdata.load("karpenter-cloudformation")


def _sub(text: str) -> str:
    values = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::URLSuffix":
              "amazonaws.com", "ClusterName": CLUSTER, "KarpenterNodeRole.Arn": NODE_ROLE_ARN,
              "KarpenterInterruptionQueue.Arn": QUEUE_ARN}
    out = re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], text)
    assert "${" not in out
    return out


def _resolve(v):
    """Upstream YAML values with intrinsics resolved for the mock account."""
    if isinstance(v, dict) and len(v) == 1 and next(iter(v)).startswith("!"):
        (tag, arg), = v.items()
        if tag == "!Sub":
            return _sub(arg)
        if tag == "!GetAtt":
            assert arg == "KarpenterInterruptionQueue.Arn"
            return QUEUE_ARN
        raise AssertionError(f"unexpected intrinsic {tag}")
    if isinstance(v, dict):
        return {k: _resolve(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_resolve(x) for x in v]
    if isinstance(v, bool):
        return str(v).lower()  # IAM condition values are strings; YAML made `false` a bool
    return v


def upstream_controller_policies() -> dict[str, dict]:
    out = {}
    for res in _cfn()["Resources"].values():
        if res["Type"] == "AWS::IAM::ManagedPolicy":
            key = re.match(r"KarpenterController(\w+)Policy-\$\{ClusterName\}$", res["Properties"]["ManagedPolicyName"]["!Sub"])
            out[key.group(1)] = json.loads(_sub(res["Properties"]["PolicyDocument"]["!Sub"]))
    return out


def _actions(doc: dict) -> set[str]:
    return {a for s in doc["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}


def _schema(kind: str) -> dict:
    [schema] = [s for (_, k), s in refdata.crd_schemas().items() if k == kind]
    return schema


def _unknown_fields(obj, schema, path="") -> list[str]:
    """Fields the API server would prune silently (CRD schemas allow unknown fields through jsonschema)."""
    out = []
    if isinstance(obj, dict) and schema.get("type") == "object":
        props = schema.get("properties")
        if props is None:
            return out  # metadata, or a map checked by additionalProperties
        for k, v in obj.items():
            if k not in props:
                out.append(f"{path}.{k}")
            else:
                out += _unknown_fields(v, props[k], f"{path}.{k}")
    elif isinstance(obj, list) and "items" in schema:
        for i, v in enumerate(obj):
            out += _unknown_fields(v, schema["items"], f"{path}[{i}]")
    return out


def schema_errors(obj: dict) -> list[str]:
    import jsonschema

    schema = _schema(obj["kind"])
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in jsonschema.Draft7Validator(schema).iter_errors(obj)]
    return errors + [f"{p}: unknown field (pruned by the API server)" for p in _unknown_fields(obj, schema)]


def cel_errors(obj: dict) -> list[str]:
    """Every CEL rule (x-kubernetes-validations) of the object's CRD that fails on it (tools/cel_rules.py)."""
    from tools.cel_rules import evaluate_object

    report = evaluate_object(obj)
    assert report is not None and report.unknown == [], obj["kind"]
    return [str(v) for v in report.violations]


def stack(pools: list[dict], workloads: list[dict] | None = None, **extra) -> dict:
    raw = {"gpu-slicing:cluster": {"name": "t", "publicAccessCidrs": ["0.0.0.0/0"]},
           "gpu-slicing:maxGpuNodes": 1000,
           "gpu-slicing:karpenter": {"enabled": True, "nodePools": pools},
           "gpu-slicing:workloads": workloads or []}
    raw.update(extra)
    return raw


def pool_of(raw: dict, name: str):
    cfg = parse_config(raw)
    return cfg, next(p for p in resolve_pools(cfg) if p.name == name)


def objects(cfg, pool) -> list[dict]:
    pc = next(p for p in cfg.karpenter.node_pools if p.name == pool.name)
    return [spec.node_class(pool, cfg.cluster.name, cfg.karpenter.ami_alias_version, pc.disk_size_gib),
            spec.node_pool(pool, pc.capacity_types, pc.consolidate_after, pc.expire_after),
            *spec.node_overlays(pool).values()]


def dev_pool():
    cfg = parse_config(dev_config())
    return cfg, next(p for p in resolve_pools(cfg) if p.name == "p4d-small")


# --- AWS side against upstream ---------------------------------------------------------------------

def test_controller_policies_equal_upstream_statement_for_statement():
    ours = spec.controller_policies(CTX, CLUSTER, NODE_ROLE_ARN, QUEUE_ARN)
    theirs = upstream_controller_policies()
    assert set(ours) == set(theirs) == set(spec.CONTROLLER_POLICIES)
    for key in theirs:
        assert _actions(ours[key]) == _actions(theirs[key]), key
        assert ours[key] == theirs[key], key  # same resources and conditions too


def test_controller_may_read_and_delete_instance_profiles():
    """The EC2NodeClass finalizer needs these to clean up on destroy (docs/facts.md §4, 5)."""
    actions = set().union(*map(_actions, spec.controller_policies(CTX, CLUSTER, NODE_ROLE_ARN, QUEUE_ARN).values()))
    assert {"iam:ListInstanceProfiles", "iam:GetInstanceProfile", "iam:DeleteInstanceProfile",
            "iam:RemoveRoleFromInstanceProfile", "ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"} <= actions


def test_mutating_ec2_and_iam_statements_are_scoped_by_cluster_tags():
    docs = spec.controller_policies(CTX, CLUSTER, NODE_ROLE_ARN, QUEUE_ARN)
    for key in ("NodeLifecycle", "IAMIntegration"):
        for s in docs[key]["Statement"]:
            if s["Sid"] in ("AllowScopedEC2InstanceAccessActions", "AllowPassingInstanceRole"):
                continue  # read-only targets (AMIs, subnets, ...) and PassRole of our one node role
            tagged = json.dumps(s["Condition"])
            assert f"kubernetes.io/cluster/{CLUSTER}" in tagged, s["Sid"]


def test_trust_policies():
    upstream = _resolve(_cfn()["Resources"]["KarpenterNodeRole"]["Properties"]["AssumeRolePolicyDocument"])
    assert spec.node_trust_policy(CTX) == upstream
    (stmt,) = spec.controller_trust_policy()["Statement"]
    assert stmt["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert stmt["Action"] == ["sts:AssumeRole", "sts:TagSession"]


def test_node_role_policies_equal_upstream():
    arns = _cfn()["Resources"]["KarpenterNodeRole"]["Properties"]["ManagedPolicyArns"]
    assert sorted(_resolve(a).rsplit("/", 1)[1] for a in arns) == sorted(spec.NODE_ROLE_POLICIES)


def test_queue_policy_and_rules_equal_upstream():
    res = _cfn()["Resources"]
    queue = res["KarpenterInterruptionQueue"]["Properties"]
    assert queue["MessageRetentionPeriod"] == spec.QUEUE_RETENTION_SECONDS and queue["SqsManagedSseEnabled"] is True
    upstream = _resolve(res["KarpenterInterruptionQueuePolicy"]["Properties"]["PolicyDocument"])
    ours = spec.queue_policy(QUEUE_ARN)
    assert ours["Id"] == upstream["Id"] and ours["Statement"] == upstream["Statement"]
    rules = [r["Properties"] for r in res.values() if r["Type"] == "AWS::Events::Rule"]
    assert sorted(json.dumps(r["EventPattern"], sort_keys=True) for r in rules) == sorted(
        json.dumps(spec.event_pattern(k), sort_keys=True) for k in spec.INTERRUPTION_RULES)
    assert {t["Id"] for r in rules for t in r["Targets"]} == {spec.QUEUE_TARGET_ID}


def test_physical_names_fit_aws_limits():
    longest = "a" * 40  # cluster names are DNS labels of at most 40 characters
    assert len(spec.node_role_name(longest)) <= 64 and len(spec.controller_role_name(longest)) <= 64
    assert all(len(spec.rule_name(longest, k)) <= 64 for k in spec.INTERRUPTION_RULES)
    assert len(spec.queue_name(longest)) <= 80
    assert all(len(spec.policy_name(longest, k)) <= 128 for k in spec.CONTROLLER_POLICIES)


# --- chart values ---------------------------------------------------------------------------------

def test_every_value_path_is_a_chart_key():
    chart = refdata.load("karpenter-chart-values")["values"]
    missing = sorted(p for p in spec.VALUE_PATHS if not has_path(chart, p))
    assert not missing, f"not keys of the karpenter {KARPENTER_VERSION} chart: {missing}"
    for p in spec.OPAQUE_VALUES:  # free-form maps in the chart too
        node = chart
        for part in p.split("."):
            node = node[part]
        assert isinstance(node, dict), p


def test_values_set_only_reviewed_paths():
    from components.cluster import SYSTEM_LABEL

    values = spec.chart_values(CLUSTER, "Karpenter-gpu-dev", SYSTEM_LABEL, REGION)
    assert set(spec.flatten(values)) == spec.VALUE_PATHS


def test_controller_runs_on_system_nodes_only():
    from components.cluster import SYSTEM_LABEL

    v = spec.chart_values(CLUSTER, "q", SYSTEM_LABEL, REGION)
    assert v["settings"] == {"clusterName": CLUSTER, "interruptionQueue": "q", "featureGates": {"nodeOverlay": True}}
    assert v["replicas"] == 2
    assert SYSTEM_LABEL.items() <= v["nodeSelector"].items()
    (term,) = v["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert {"key": "karpenter.sh/nodepool", "operator": "DoesNotExist"} in term["matchExpressions"]
    (key, value), = SYSTEM_LABEL.items()
    assert {"key": key, "operator": "In", "values": [value]} in term["matchExpressions"]
    assert v["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == [
        {"topologyKey": "kubernetes.io/hostname"}]  # two replicas, two system nodes
    res = v["controller"]["resources"]
    assert res["requests"] == res["limits"] and set(res["requests"]) == {"cpu", "memory"}
    assert v["serviceAccount"]["name"] == spec.SERVICE_ACCOUNT
    # pods cannot reach IMDS on our nodes (hop limit 1), and Karpenter asks IMDS for its region otherwise
    assert v["controller"]["env"] == [{"name": "AWS_REGION", "value": REGION}]


# --- the Kubernetes objects --------------------------------------------------------------------------

def test_dev_pool_objects():
    cfg, pool = dev_pool()
    nc, np_, *overlays = objects(cfg, pool)
    assert nc["spec"]["amiSelectorTerms"] == [{"alias": f"al2023@{AMI_ALIAS_VERSION}"}]  # pinned, not latest
    assert nc["spec"]["role"] == "KarpenterNodeRole-gpu-dev"
    assert nc["spec"]["subnetSelectorTerms"] == nc["spec"]["securityGroupSelectorTerms"] == [
        {"tags": {"karpenter.sh/discovery": "gpu-dev"}}]
    (bdm,) = nc["spec"]["blockDeviceMappings"]
    assert bdm["rootVolume"] and bdm["ebs"] == {"volumeSize": "200Gi", "volumeType": "gp3", "encrypted": True,
                                                 "deleteOnTermination": True}
    assert nc["spec"]["metadataOptions"]["httpTokens"] == "required"
    assert nc["spec"]["metadataOptions"]["httpPutResponseHopLimit"] == 1
    t = np_["spec"]["template"]
    assert t["metadata"]["labels"] == pool.labels == {"gpu-slicing/pool": "p4d-small",
                                                     "nvidia.com/mig.config": "all-1g.5gb"}
    assert t["spec"]["requirements"] == [
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["p4d.24xlarge"]},
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]
    assert t["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
    assert t["spec"]["nodeClassRef"] == {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "p4d-small"}
    # expiry is forceful and unbudgeted; with a pinned AMI it only churns GPU nodes (README: Changing a running stack)
    assert t["spec"]["expireAfter"] == "Never"
    assert np_["spec"]["limits"] == {"nvidia.com/gpu": "32", "cpu": "384", "memory": "4608Gi"}  # 4 x p4d (docs/facts.md §1.7)
    assert np_["spec"]["disruption"] == {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "10m",
                                         "budgets": [{"nodes": "1", "reasons": ["Empty"]},
                                                     {"nodes": "1", "reasons": ["Drifted"]}]}
    assert np_["metadata"]["annotations"]["pulumi.com/deletionPropagationPolicy"] == "foreground"
    (ov,) = overlays
    assert ov["spec"]["capacity"] == {"nvidia.com/mig-1g.5gb": "56"}  # docs/facts.md §1.9
    assert ov["spec"]["requirements"] == [
        {"key": "karpenter.sh/nodepool", "operator": "In", "values": ["p4d-small"]},
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["p4d.24xlarge"]}]


@pytest.mark.parametrize("schedule,duration,closed", [
    ("0 2 * * *", "4h", {"schedule": "0 6 * * *", "duration": "20h"}),
    ("30 22 * * *", "1h30m", {"schedule": "0 0 * * *", "duration": "22h30m"}),
    ("0 23 * * 6", "3h", {"schedule": "0 2 * * 0", "duration": "165h"}),
])
def test_drift_only_inside_the_maintenance_window(schedule, duration, closed):
    """Karpenter uses the most restrictive active budget (CRD): drifted nodes go one at a time, and a
    nodes: "0" Drifted budget covers the rest of the day (or week) outside the window."""
    budgets = spec.disruption_budgets(schedule, duration, "k")
    assert budgets == [{"nodes": "1", "reasons": ["Empty"]}, {"nodes": "1", "reasons": ["Drifted"]},
                       {"nodes": "0", "reasons": ["Drifted"], **closed}]
    cfg, pool = dev_pool()
    np_ = spec.node_pool(pool, ["on-demand"], "10m", "Never", budgets)
    assert schema_errors(np_) == [] and cel_errors(np_) == []


@pytest.mark.parametrize("schedule,duration,key,starts", [
    ("0 2 1 * *", "4h", "driftSchedule", "a daily"), ("0 2 * * *", "24h", "driftDuration", "a duration"),
    ("0 2 * * *", None, "driftDuration", "required with driftSchedule: a duration"),
    (None, "4h", "driftSchedule", "required with driftDuration: a daily"),
    # a YAML block scalar (`driftSchedule: |`) ends its value with a newline: not a cron schedule, nor a duration
    ("0 2 * * *\n", "4h", "driftSchedule", "a daily"), ("0 2 * * *", "4h\n", "driftDuration", "a duration")])
def test_bad_maintenance_window_names_the_key(schedule, duration, key, starts):
    with pytest.raises(ConfigError) as e:
        spec.disruption_budgets(schedule, duration, "gpu-slicing:karpenter.nodePools[0]")
    assert e.value.key == f"gpu-slicing:karpenter.nodePools[0].{key}" and e.value.allowed.startswith(starts)


def test_dev_pool_objects_validate_against_the_crds():
    for obj in objects(*dev_pool()):
        assert schema_errors(obj) == [], obj["kind"]
        assert cel_errors(obj) == [], obj["kind"]


def test_schema_check_catches_mistakes():
    """The validator is not vacuous: wrong enums, number-typed limits' patterns, pruned fields are caught."""
    cfg, pool = dev_pool()
    nc, np_, ov = objects(cfg, pool)
    bad = copy.deepcopy(np_)
    bad["spec"]["disruption"]["consolidationPolicy"] = "WhenUnderutilized"  # v1beta1 name, gone in v1
    [err] = schema_errors(bad)
    assert err.startswith("spec/disruption/consolidationPolicy: 'WhenUnderutilized' is not one of")
    bad = copy.deepcopy(np_)
    bad["spec"]["template"]["spec"]["kubelet"] = {"maxPods": 110}  # moved to EC2NodeClass in v1
    assert any("unknown field" in e for e in schema_errors(bad))
    bad = copy.deepcopy(nc)
    bad["spec"]["blockDeviceMappings"][0]["ebs"]["volumeSize"] = "200GiB"  # Gi, not GiB
    [err] = schema_errors(bad)
    assert err.startswith("spec/blockDeviceMappings/0/ebs/volumeSize: '200GiB' does not match")
    bad = copy.deepcopy(ov)
    bad["spec"]["capacity"]["nvidia.com/mig-1g.5gb"] = "fifty-six"
    [err] = schema_errors(bad)
    assert err.startswith("spec/capacity/nvidia.com/mig-1g.5gb: 'fifty-six' does not match")
    bad["spec"]["capacity"]["cpu"] = "1"
    assert cel_errors(bad) == ["spec.capacity: invalid resource restricted"]  # the CRD's message


def test_overlay_capacity_is_the_planners():
    cfg, pool = dev_pool()
    per = pool.per_instance_type["p4d.24xlarge"]
    # all-1g.5gb on p4d.24xlarge: 7 slices on each of 8 A100s (docs/facts.md §1.9), and no whole GPU left
    assert per == {"nvidia.com/mig-1g.5gb": 7 * 8, "nvidia.com/gpu": 0}
    assert spec.overlay_capacity(pool, "p4d.24xlarge") == {"nvidia.com/mig-1g.5gb": "56"}
    report = next(r for r in capacity_plan(cfg, resolve_pools(cfg)).pools if r.pool.name == "p4d-small")
    assert {r: str(n) for r, n in report.pool.per_node.items() if n} == spec.overlay_capacity(pool, "p4d.24xlarge")


def test_the_guide_example_fits_one_karpenter_node():
    cfg, _ = dev_pool()
    plan = capacity_plan(cfg, resolve_pools(cfg))
    verdict = next(w for w in plan.workloads if w.name == "guide-1g")
    assert verdict.fits and verdict.requested == 56 and verdict.pools == ("p4d-small",)
    report = next(r for r in plan.pools if r.pool.name == "p4d-small")
    assert report.nodes_needed == 1 and report.requested == {"nvidia.com/mig-1g.5gb": 56}


def test_overlay_per_instance_type_and_renamed_time_slices():
    raw = stack([{"name": "a100", "instanceTypes": ["p4d.24xlarge"], "migLayout": "all-balanced",
                  "sharing": {"timeSlicing": {"replicas": 4, "resources": ["nvidia.com/mig-1g.5gb"],
                                              "renameByDefault": True}}},
                 {"name": "l4", "instanceTypes": ["g6.xlarge", "g6.12xlarge"],
                  "sharing": {"timeSlicing": {"replicas": 2, "renameByDefault": True}}},
                 {"name": "plain", "instanceTypes": ["g5.xlarge"]}])
    cfg = parse_config(raw)
    by = {p.name: p for p in resolve_pools(cfg)}
    assert spec.overlay_capacity(by["a100"], "p4d.24xlarge") == {
        "nvidia.com/mig-1g.5gb.shared": "64", "nvidia.com/mig-2g.10gb": "8", "nvidia.com/mig-3g.20gb": "8"}
    l4 = spec.node_overlays(by["l4"])
    assert {it: o["spec"]["capacity"] for it, o in l4.items()} == {
        "g6.xlarge": {"nvidia.com/gpu.shared": "2"}, "g6.12xlarge": {"nvidia.com/gpu.shared": "8"}}
    assert spec.node_overlays(by["plain"]) == {}  # Karpenter models whole GPUs itself
    # limits: maxNodes (1) of the largest type
    assert spec.node_limits(by["l4"]) == {"nvidia.com/gpu": "4", "cpu": "48", "memory": "192Gi"}
    for p in by.values():
        for obj in objects(cfg, p):
            assert schema_errors(obj) == [] and cel_errors(obj) == [], (p.name, obj["kind"])


def _mig_cases():
    out = []
    for it in catalog.INSTANCE_TYPES.values():
        if it.gpu.mig_capable:
            out += [(it.name, layout) for layout in catalog.named_layouts(it.gpu)]
    return out


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(case=st.sampled_from(_mig_cases()), max_nodes=st.integers(1, 20),
       capacity=st.sampled_from([["on-demand"], ["spot"], ["spot", "on-demand"]]))
def test_any_mig_pool_renders_valid_objects_with_the_planners_capacity(case, max_nodes, capacity):
    it, layout = case
    cfg, pool = pool_of(stack([{"name": "pool", "instanceTypes": [it], "migLayout": layout, "maxNodes": max_nodes,
                                "capacityTypes": capacity}]), "pool")
    for obj in objects(cfg, pool):
        assert schema_errors(obj) == [] and cel_errors(obj) == [], obj["kind"]
    expected = {r: str(n) for r, n in pool.per_instance_type[it].items() if n > 0 and r != "nvidia.com/gpu"}
    overlays = spec.node_overlays(pool)
    assert (overlays[it]["spec"]["capacity"] if overlays else {}) == expected
    limits = spec.node_limits(pool)
    inst = catalog.INSTANCE_TYPES[it]
    assert limits == {"nvidia.com/gpu": str(max_nodes * inst.gpu_count), "cpu": str(max_nodes * inst.vcpu),
                      "memory": f"{max_nodes * inst.memory_gib}Gi"}


# --- config errors ----------------------------------------------------------------------------------

def _error(raw) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        parse_config(raw)
    return e.value


@pytest.mark.parametrize("it,layout", [("g5.xlarge", "all-1g.5gb"), ("p5.48xlarge", "all-1g.5gb"),
                                       ("p4d.24xlarge", "all-1g.10gb+me")])
def test_mig_layout_the_gpus_lack(it, layout):
    e = _error(stack([{"name": "a", "instanceTypes": [it], "migLayout": layout}]))
    assert e.key == "gpu-slicing:karpenter.nodePools[0].migLayout"


def test_different_gpu_models_in_one_mig_pool():
    e = _error(stack([{"name": "a", "instanceTypes": ["p4d.24xlarge", "p4de.24xlarge"], "migLayout": "all-balanced"}]))
    assert e.key == "gpu-slicing:karpenter.nodePools[0].instanceTypes"


def test_limits_below_one_node():
    assert _error(stack([{"name": "a", "instanceTypes": ["p4d.24xlarge"], "maxNodes": 0}])).key == \
        "gpu-slicing:karpenter.nodePools[0].maxNodes"
    _, pool = pool_of(stack([{"name": "a", "instanceTypes": ["g6.xlarge", "g6.48xlarge"]}]), "a")
    largest = catalog.INSTANCE_TYPES["g6.48xlarge"]
    assert spec.nodes_within_limits(spec.node_limits(pool), [largest]) == 1  # derived limits admit the largest type
    assert spec.nodes_within_limits({"nvidia.com/gpu": "8", "cpu": "4", "memory": "768Gi"}, [largest]) == 0


def test_whole_gpus_requested_from_a_mixed_mig_node_pool():
    e = _error(stack([{"name": "a", "instanceTypes": ["p4d.24xlarge"], "migLayout": "all-balanced"}],
                     [{"name": "w", "pool": "a", "gpus": 1}]))
    assert e.key == "gpu-slicing:workloads[0].gpus" and "nvidia.com/gpu: 0" in e.allowed


def test_single_strategy_mig_node_pool():
    """Slices would be advertised as nvidia.com/gpu, which Karpenter counts as the instance's 8 GPUs."""
    e = _error(stack([{"name": "a", "instanceTypes": ["p4d.24xlarge"], "migLayout": "all-1g.5gb"}],
                     **{"gpu-slicing:gpuOperator": {"migStrategy": "single"}}))
    assert (e.key, e.value) == ("gpu-slicing:karpenter.nodePools[0].migLayout", "all-1g.5gb")
    # 7 slices x 8 A100s (docs/facts.md §1.9); the message says why and what to use instead
    assert e.allowed.startswith("a pool whose p4d.24xlarge nodes advertise at most 8 nvidia.com/gpu (they would "
                                "advertise 56): Karpenter counts nvidia.com/gpu as the instance's GPUs and a "
                                "NodeOverlay cannot change that, so it would launch nodes for pods that already fit")
    assert e.allowed.endswith("use gpu-slicing:gpuOperator.migStrategy mixed for MIG, and renameByDefault: true "
                              "for time-slicing")
    # one slice per GPU is fine: 8 nvidia.com/gpu is what Karpenter expects
    parse_config(stack([{"name": "a", "instanceTypes": ["p4d.24xlarge"], "migLayout": "all-7g.40gb"}],
                       **{"gpu-slicing:gpuOperator": {"migStrategy": "single"}}))


def test_time_sliced_whole_gpus_need_renaming_on_a_node_pool():
    e = _error(stack([{"name": "a", "instanceTypes": ["g6.xlarge"], "sharing": {"timeSlicing": {"replicas": 4}}}]))
    assert (e.key, e.value) == ("gpu-slicing:karpenter.nodePools[0].sharing", {"timeSlicing": {"replicas": 4}})
    assert "(they would advertise 4)" in e.allowed and "renameByDefault" in e.allowed


def test_time_sliced_single_strategy_slices_blame_the_sharing_not_the_layout():
    """all-7g.40gb under the single strategy is one nvidia.com/gpu per A100, the 8 Karpenter expects; time-slicing
    them without renaming doubles that to 16, so the error must point at the sharing (the layout alone is fine)."""
    sharing = {"timeSlicing": {"replicas": 2}}
    e = _error(stack([{"name": "a", "instanceTypes": ["p4d.24xlarge"], "migLayout": "all-7g.40gb",
                       "sharing": sharing}], **{"gpu-slicing:gpuOperator": {"migStrategy": "single"}}))
    assert (e.key, e.value) == ("gpu-slicing:karpenter.nodePools[0].sharing", sharing)
    assert "advertise at most 8 nvidia.com/gpu (they would advertise 16)" in e.allowed


def test_reserved_capacity_is_refused():
    e = _error(stack([{"name": "a", "instanceTypes": ["p4d.24xlarge"], "capacityTypes": ["reserved"]}]))
    assert e.key == "gpu-slicing:karpenter.nodePools[0].capacityTypes"


def test_max_gpu_nodes_counts_node_pools():
    raw = dev_config()
    raw["gpu-slicing:maxGpuNodes"] = 6  # node group max 3 + NodePool max 4 = 7
    assert _error(raw).key == "gpu-slicing:maxGpuNodes"


# --- the program ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def disabled_run():
    raw = dev_config()
    del raw["gpu-slicing:karpenter"]
    raw["gpu-slicing:workloads"] = [w for w in raw["gpu-slicing:workloads"] if w["pool"] != "p4d-small"]
    return run(raw, preview=True)


def _karpenter_regs(r):
    comps = {x.urn for x in r.registrations if x.type.startswith("gpu-slicing:karpenter:")}
    return [x for x in r.registrations if x.parent in comps]


@pytest.mark.parametrize("mode", MODES)
def test_karpenter_resource_set(dev_runs, mode):
    r = dev_runs[mode]
    assert r.error is None
    assert sorted(x.name for x in r.registrations if x.type.startswith("gpu-slicing:karpenter:")) == [
        "gpu-dev-karpenter", "gpu-dev-p4d-small"]
    got = sorted((x.type, x.name) for x in _karpenter_regs(r))
    k = "gpu-dev-karpenter"
    expected = sorted(
        [("aws:iam/role:Role", f"{k}-node-role"), ("aws:iam/role:Role", f"{k}-controller-role"),
         ("aws:eks/accessEntry:AccessEntry", f"{k}-node-access"),
         ("aws:eks/podIdentityAssociation:PodIdentityAssociation", f"{k}-pod-identity"),
         ("aws:eks/addon:Addon", f"{k}-pod-identity-agent"), ("aws:sqs/queue:Queue", f"{k}-queue"),
         ("aws:sqs/queuePolicy:QueuePolicy", f"{k}-queue-policy"), ("aws:ec2/tag:Tag", f"{k}-sg-discovery"),
         ("kubernetes:helm.sh/v3:Release", k), ("kubernetes:helm.sh/v3:Release", f"{k}-crd"),
         ("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass", "gpu-dev-p4d-small-nodeclass"),
         ("kubernetes:karpenter.sh/v1:NodePool", "gpu-dev-p4d-small-nodepool"),
         ("kubernetes:karpenter.sh/v1alpha1:NodeOverlay", "gpu-dev-p4d-small-overlay-p4d-24xlarge")]
        + [("aws:iam/rolePolicyAttachment:RolePolicyAttachment", f"{k}-node-{p}") for p in spec.NODE_ROLE_POLICIES]
        + [(t, f"{k}-{p}") for p in spec.CONTROLLER_POLICIES
           for t in ("aws:iam/policy:Policy", "aws:iam/rolePolicyAttachment:RolePolicyAttachment")]
        + [(t, f"{k}-{rule}{suffix}") for rule in spec.INTERRUPTION_RULES
           for t, suffix in (("aws:cloudwatch/eventRule:EventRule", ""), ("aws:cloudwatch/eventTarget:EventTarget",
                                                                          "-target"))])
    assert got == expected


@pytest.mark.parametrize("mode", MODES)
def test_aws_inputs(dev_runs, mode):
    r = dev_runs[mode]
    k = "gpu-dev-karpenter"
    q = r.one("aws:sqs/queue:Queue", f"{k}-queue").inputs
    assert q["messageRetentionSeconds"] == 300 and q["sqsManagedSseEnabled"] is True and q["name"] == "Karpenter-gpu-dev"
    pol = json.loads(r.one("aws:sqs/queuePolicy:QueuePolicy", f"{k}-queue-policy").inputs["policy"])
    assert {"Sid": "DenyHTTP", "Effect": "Deny", "Action": "sqs:*", "Resource": QUEUE_ARN,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}, "Principal": "*"} in pol["Statement"]
    ae = r.one("aws:eks/accessEntry:AccessEntry").inputs
    assert ae["type"] == "EC2_LINUX" and ae["principalArn"] == NODE_ROLE_ARN and ae["clusterName"] == CLUSTER
    pia = r.one("aws:eks/podIdentityAssociation:PodIdentityAssociation").inputs
    assert (pia["namespace"], pia["serviceAccount"]) == ("kube-system", "karpenter")
    assert pia["roleArn"] == f"arn:aws:iam::{ACCOUNT}:role/KarpenterControllerRole-gpu-dev"
    assert r.one("aws:eks/addon:Addon").inputs["addonName"] == "eks-pod-identity-agent"
    trust = json.loads(r.one("aws:iam/role:Role", f"{k}-controller-role").inputs["assumeRolePolicy"])
    assert trust == spec.controller_trust_policy()
    assert r.one("aws:iam/role:Role", f"{k}-node-role").inputs["name"] == "KarpenterNodeRole-gpu-dev"
    tag = r.one("aws:ec2/tag:Tag", f"{k}-sg-discovery").inputs
    from tools.harness import _hex
    assert tag == {"resourceId": f"sg-{_hex(CLUSTER, 'cluster')}", "key": "karpenter.sh/discovery", "value": CLUSTER}
    rules = {x.inputs["name"]: json.loads(x.inputs["eventPattern"]) for x in r.by_type("aws:cloudwatch/eventRule:EventRule")}
    assert rules == {spec.rule_name(CLUSTER, key): spec.event_pattern(key) for key in spec.INTERRUPTION_RULES}
    for t in r.by_type("aws:cloudwatch/eventTarget:EventTarget"):
        assert t.inputs["arn"] == QUEUE_ARN and t.inputs["targetId"] == "KarpenterInterruptionQueueTarget"


@pytest.mark.parametrize("mode", MODES)
def test_recorded_controller_policies_equal_upstream(dev_runs, mode):
    r = dev_runs[mode]
    recorded = {x.inputs["name"]: json.loads(x.inputs["policy"]) for x in r.by_type("aws:iam/policy:Policy")}
    assert recorded == {spec.policy_name(CLUSTER, key): doc for key, doc in upstream_controller_policies().items()}
    attached = {x.inputs["policyArn"] for x in r.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                if x.inputs["role"] == "KarpenterControllerRole-gpu-dev"}
    assert attached == {f"arn:aws:iam::{ACCOUNT}:policy/{n}" for n in recorded}


@pytest.mark.parametrize("mode", MODES)
def test_release(dev_runs, mode):
    from components.cluster import SYSTEM_LABEL

    rel = dev_runs[mode].one("kubernetes:helm.sh/v3:Release", "gpu-dev-karpenter")
    i = rel.inputs
    assert (i["chart"], i["version"], i["namespace"], i["name"]) == (
        "oci://public.ecr.aws/karpenter/karpenter", "1.14.1", "kube-system", "karpenter")
    assert i["values"] == spec.chart_values(CLUSTER, "Karpenter-gpu-dev", SYSTEM_LABEL, REGION)
    # CRDs come from the karpenter-crd release (templates: a version bump upgrades them, docs/facts.md §8), ordered
    # before the controller, whose own crds/ are skipped so nothing is installed twice
    assert i.get("skipCrds") is True
    crd = dev_runs[mode].one("kubernetes:helm.sh/v3:Release", "gpu-dev-karpenter-crd")
    assert (crd.inputs["chart"], crd.inputs["version"], crd.inputs["namespace"], crd.inputs["name"]) == (
        "oci://public.ecr.aws/karpenter/karpenter-crd", "1.14.1", "kube-system", "karpenter-crd")
    assert not crd.inputs.get("skipCrds") and crd.urn in rel.dependencies
    # why AWS_REGION is set: the system nodes, where the controller runs, keep pods away from IMDS
    lt = dev_runs[mode].one("aws:ec2/launchTemplate:LaunchTemplate", "gpu-dev-system-lt").inputs
    assert lt["metadataOptions"]["httpPutResponseHopLimit"] == 1
    assert {"name": "AWS_REGION", "value": REGION} in i["values"]["controller"]["env"]
    assert rel.provider.startswith(dev_runs[mode].one("pulumi:providers:kubernetes").urn)


@pytest.mark.parametrize("mode", MODES)
def test_recorded_custom_resources_validate_and_wait(dev_runs, mode):
    r = dev_runs[mode]
    cfg, pool = dev_pool()
    expected = {o["kind"]: o for o in objects(cfg, pool)}
    for t in ("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass", "kubernetes:karpenter.sh/v1:NodePool",
              "kubernetes:karpenter.sh/v1alpha1:NodeOverlay"):
        (x,) = r.by_type(t)
        obj = {k: x.inputs[k] for k in ("apiVersion", "kind", "metadata", "spec")}
        assert obj == expected[obj["kind"]]
        assert schema_errors(obj) == [] and cel_errors(obj) == []
        assert obj["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Ready"
        delete = x.options["customTimeouts"]["delete"]
        assert int(delete.rstrip("m")) >= 30, (t, delete)  # Karpenter drains and terminates p4d nodes
    np_ = r.one("kubernetes:karpenter.sh/v1:NodePool")
    assert np_.inputs["metadata"]["annotations"]["pulumi.com/deletionPropagationPolicy"] == "foreground"


@pytest.mark.parametrize("mode", MODES)
def test_ordering_edges(dev_runs, mode):
    r = dev_runs[mode]
    release = r.one("kubernetes:helm.sh/v3:Release", "gpu-dev-karpenter").urn
    sng = r.one("eks:index:ManagedNodeGroup", "gpu-dev-system").urn
    for x in _karpenter_regs(r):
        if x.type.startswith("aws:"):
            assert sng in x.dependencies, x.name  # destroyed before the system node group
            assert x.urn in r.get(release).dependencies, x.name  # the release needs all of it
    custom = [x for x in r.registrations if x.type.startswith("kubernetes:karpenter")]
    for x in custom:
        assert release in x.dependencies, x.name  # CRDs first
    nodeclass = r.one("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass").urn
    overlay = r.one("kubernetes:karpenter.sh/v1alpha1:NodeOverlay").urn
    nodepool = r.get(r.one("kubernetes:karpenter.sh/v1:NodePool").urn)
    assert {nodeclass, overlay} <= set(nodepool.dependencies)
    assert nodeclass in r.get(overlay).dependencies
    # the pool's own workload waits for its NodePool and overlay; the node-group pool's workloads do not
    for d in r.by_type("kubernetes:apps/v1:Deployment") + r.by_type("kubernetes:batch/v1:Job"):
        on_pool = d.inputs["spec"]["template"]["spec"]["nodeSelector"]["gpu-slicing/pool"] == "p4d-small"
        assert ({nodepool.urn, overlay} <= set(d.dependencies)) == on_pool, d.name
        assert nodeclass not in d.dependencies, d.name


def test_outputs_name_the_node_pools(dev_runs):
    out = dev_runs["up"].outputs
    assert out["karpenterNodePools"] == ["p4d-small"] and out["karpenterInterruptionQueue"] == "Karpenter-gpu-dev"


def test_disabled_creates_none_of_it(disabled_run):
    r = disabled_run
    assert r.error is None
    assert not any(x.type.startswith("gpu-slicing:karpenter:") for x in r.registrations)
    assert not [x for x in r.registrations if x.type.startswith("kubernetes:karpenter")]
    assert not [x for x in r.by_type("kubernetes:helm.sh/v3:Release") if "karpenter" in x.inputs["chart"]]
    assert not [x.name for x in r.registrations if "karpenter" in x.name.lower()]
    assert "karpenterNodePools" not in r.outputs
    # the node-group path is intact
    ng = r.one("eks:index:ManagedNodeGroup", "gpu-dev-p4d-balanced")
    deploy = r.one("kubernetes:apps/v1:Deployment", "gpu-dev-workloads-slice-1g")
    assert ng.urn in deploy.dependencies


def test_node_pools_while_disabled_is_an_error():
    raw = dev_config()
    raw["gpu-slicing:karpenter"] = {**raw["gpu-slicing:karpenter"], "enabled": False}
    assert _error(raw).key == "gpu-slicing:karpenter.nodePools"
