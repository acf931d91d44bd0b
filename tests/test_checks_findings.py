"""The offline plan's non-Kubernetes checks, each called directly on a few hand-built plan records (no program
run): what each finding says, about which resource, at which severity, and what each check counts. Expected
values come from AWS (botocore's models, EKS pricing), the charts' values and hand arithmetic."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
import yaml

from conftest import dev_config
from test_checks import _policy, reg
from tools import checks

NS = "gpu-slicing:"
P4D_USD = 21.96  # p4d.24xlarge on demand in us-east-1 (AWS price list; Karpenter's reference pricing data has it too)


def _stack(node_groups=(), node_pools=(), workloads=(), **extra) -> dict:
    """A stack config with these pools (node groups of one node each) and workloads."""
    raw = {NS + "cluster": {"name": "cf", "publicAccessCidrs": ["100.64.0.0/16"]}, NS + "maxGpuNodes": 20,
           NS + "nodeGroups": [{"minSize": 1, "desiredSize": 1, "maxSize": 1, **g} for g in node_groups],
           NS + "workloads": list(workloads), **extra}
    if node_pools:
        raw[NS + "karpenter"] = {"enabled": True, "nodePools": list(node_pools)}
    return raw


def _by(found, severity=None, id_=None) -> list[dict]:
    return [f for f in found if (severity is None or f["severity"] == severity) and (id_ is None or f["id"] == id_)]


# --- the findings and how checks are run --------------------------------------------------------------

def test_a_finding_carries_id_severity_message_and_resource():
    """The plan's JSON `checks` entries (module docstring): the resource is None when no one resource is at fault."""
    assert checks.finding("x.y", "error", "said") == {"id": "x.y", "severity": "error", "message": "said",
                                                      "resource": None}
    assert checks.finding("x.y", "info", "said", "r")["resource"] == "r"


def test_run_checks_runs_every_registered_check_in_turn_on_the_same_input(monkeypatch):
    seen = []

    def first(config, resources):
        seen.append((config, resources))
        yield checks.finding("a", "info", "1")
        yield checks.finding("a", "info", "2")

    def second(config, resources):
        seen.append((config, resources))
        return [checks.finding("b", "error", "3")]

    monkeypatch.setattr(checks, "CHECKS", [first, second])
    config, resources = {"k": 1}, [{"type": "t"}]
    assert [f["message"] for f in checks.run_checks(config, resources)] == ["1", "2", "3"]
    assert seen == [(config, resources), (config, resources)]


def test_stack_is_the_config_loaded():
    s = checks.stack(_stack([{"name": "g", "instanceType": "p4d.24xlarge"}]))
    assert s.config.cluster.name == "cf" and [p.name for p in s.pools] == ["g"]


# --- reading the records ------------------------------------------------------------------------------

def test_dig_walks_keys_and_every_item_of_a_list():
    doc = {"a": {"b": [{"c": 1}, {"c": 2}, {"d": 3}, "s"], "n": None}, "x": "flat"}
    assert checks._dig(doc, "a.b[].c") == [1, 2]
    assert checks._dig(doc, "a.b") == [[{"c": 1}, {"c": 2}, {"d": 3}, "s"]]
    assert checks._dig(doc, "a.n") == [None]  # present, if null: the caller decides
    assert checks._dig(doc, "a.missing.c") == [] and checks._dig(doc, "x.c") == [] and checks._dig(doc, "x") == ["flat"]
    assert checks._dig({"a": {"b": "no list"}}, "a.b[].c") == []  # `[]` on what is not a list: nothing
    assert checks._dig({"a": "xy", "m": {"k": 1}}, "a[]") == [] and checks._dig({"m": {"k": 1}}, "m[]") == []
    assert checks._dig([{"a": 1}], "a") == []


def test_has_computed_finds_the_marker_at_any_depth():
    unknown = checks.COMPUTED
    assert checks._has_computed(unknown)
    assert checks._has_computed({"x": 1, "y": {"z": [2, unknown]}})
    assert checks._has_computed([1, 2, unknown]) and checks._has_computed({"a": 1, "b": unknown})
    assert not checks._has_computed({"x": [1, {"y": "text"}], "z": None})
    assert not checks._has_computed(f"{unknown}-suffix") and not checks._has_computed([])


# --- capacity ------------------------------------------------------------------------------------------

def test_an_idle_node_group_is_a_warning_naming_it_and_its_cost():
    raw = _stack([{"name": "idle", "instanceType": "p4d.24xlarge"}])
    [f] = checks.capacity_idle_pools(raw, [])
    assert (f["id"], f["severity"]) == ("capacity.idle-pool", "warning")
    assert "idle" in f["message"] and "p4d.24xlarge" in f["message"] and f"{P4D_USD:.2f} USD/h" in f["message"]
    assert "desiredSize" in f["message"]


# --- security: the API endpoint -----------------------------------------------------------------------

def _cluster(name="c", **inputs) -> dict:
    return reg("eks:index:Cluster", name, inputs)


def test_an_endpoint_open_to_every_address_is_warned_once_naming_the_cluster():
    """publicAccessCidrs unset is EKS's default, 0.0.0.0/0 (EKS API: vpcConfig.publicAccessCidrs)."""
    for inputs in ({}, {"publicAccessCidrs": None}, {"publicAccessCidrs": ["0.0.0.0/0"]},
                   {"endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24", "0.0.0.0/0"]}):
        [f] = checks.api_endpoint_exposure({}, [_cluster("main", **inputs), _cluster("second")])
        assert (f["id"], f["severity"], f["resource"]) == ("security.endpoint-open", "warning", "main")
        assert f["message"].startswith("main: ") and "any address" in f["message"]
        assert "(EKS still authenticates every request with IAM)" in f["message"]
        # what to do: the key to narrow, or the way in without a public endpoint, and where the README says more
        assert "Narrow gpu-slicing:cluster.publicAccessCidrs to" in f["message"]
        assert f["message"].endswith("with endpointPublicAccess: false (README: Reaching the API)")


def test_a_private_or_narrowed_endpoint_is_said_to_be_limited():
    limited = [_cluster("private", endpointPublicAccess=False, publicAccessCidrs=["0.0.0.0/0"]),
               _cluster("narrow", publicAccessCidrs=["203.0.113.0/24"]),
               reg("aws:eks/cluster:Cluster", "other", {}), reg("aws:ec2/vpc:Vpc", "vpc", {})]
    assert list(checks.api_endpoint_exposure({}, limited)) == [checks.finding(
        "security.endpoint-open", "info", "the public API endpoint, if any, is limited to named CIDRs")]
    # a private endpoint first does not end the search: an open one after it is still warned about
    found = checks.api_endpoint_exposure({}, [limited[0], _cluster("open")])
    assert [(f["severity"], f["resource"]) for f in found] == [("warning", "open")]


def test_private_cidrs_on_the_public_endpoint_are_named():
    """RFC 1918: 10/8, 172.16/12, 192.168/16; 100.64/10 (shared) and 203.0.113/24 are not among them."""
    found = list(checks.api_endpoint_exposure({}, [_cluster("edge", publicAccessCidrs=[
        "172.20.0.0/16", "100.64.0.0/10", 7, "203.0.113.0/24", "10.1.2.3/32"])]))
    assert [(f["id"], f["severity"], f["resource"]) for f in found] == [
        ("security.endpoint-private-cidrs", "warning", "edge"), ("security.endpoint-open", "info", None)]
    message = found[0]["message"]
    assert message.startswith("edge: ") and "['172.20.0.0/16', '10.1.2.3/32']" in message
    assert "100.64" not in message and "203.0.113" not in message
    # why they admit no one, and what to list instead
    assert "a client there reaches the public endpoint only through NAT, from a public address" in message
    assert "so these admit no one; list the NAT gateways' or your public ranges" in message
    assert message.endswith("and reach the API from inside the VPC through endpointPrivateAccess")


# --- catalog: MIG where AWS has not confirmed it ---------------------------------------------------------

def test_mig_on_g7e_is_warned_per_instance_type_and_counted_once_per_pool():
    """docs/facts.md §7: AWS has not confirmed MIG on g7e; the RTX PRO 6000's placements are inferred."""
    raw = _stack(node_pools=[{"name": "rtx", "instanceTypes": ["g7e.12xlarge", "g7e.24xlarge"],
                              "migLayout": "all-balanced", "maxNodes": 1}])
    found = list(checks.mig_unconfirmed(raw, []))
    warnings = _by(found, "warning", "catalog.mig-unconfirmed")
    assert [w["message"].split(":")[0] for w in warnings] == ["nodePool rtx (all-balanced)"] * 2
    assert "g7e.12xlarge" in warnings[0]["message"] and "g7e.24xlarge" in warnings[1]["message"]
    [info] = _by(found, "info")
    assert info["message"].startswith("1 MIG pool(s) checked: 1 on an instance type AWS has not confirmed MIG on")
    assert info["message"].endswith("placements inferred, not read off hardware, for RTX-PRO-6000-Blackwell-SE-96GB (rtx)")


def test_two_pools_on_one_unconfirmed_gpu_are_counted_and_named_each():
    """The B200's placements are inferred too (docs/facts.md §7), but AWS supports MIG on p6-b200."""
    raw = _stack([{"name": "rtx-a", "instanceType": "g7e.12xlarge", "migLayout": "all-balanced"},
                  {"name": "b200", "instanceType": "p6-b200.48xlarge", "migLayout": "all-balanced"},
                  {"name": "rtx-b", "instanceType": "g7e.24xlarge", "migLayout": "all-balanced"}])
    info = _by(checks.mig_unconfirmed(raw, []), "info")[0]["message"]
    assert info.startswith("3 MIG pool(s) checked: 2 on an instance type AWS has not confirmed MIG on")
    assert info.endswith("for RTX-PRO-6000-Blackwell-SE-96GB (rtx-a, rtx-b); B200-180GB (b200)")


def test_mig_on_confirmed_hardware_is_info_only():
    raw = _stack([{"name": "a100", "instanceType": "p4d.24xlarge", "migLayout": "all-balanced"},
                  {"name": "whole", "instanceType": "g7e.12xlarge"}])
    [f] = checks.mig_unconfirmed(raw, [])
    assert (f["id"], f["severity"]) == ("catalog.mig-unconfirmed", "info")
    assert f["message"] == ("1 MIG pool(s) checked: AWS supports MIG on every instance type they use; every "
                            "placement table used was read off hardware or taken from NVIDIA's guide")


# --- calendar: support phase, cost, Karpenter ----------------------------------------------------------------

def test_the_calendar_line_adds_the_control_plane_to_the_gpu_cost(monkeypatch):
    """EKS pricing: $0.10/h in standard support, $0.60/h in extended; 1.35's standard support ends 2027-03-27."""
    from gpu_slicing import calendar

    raw = _stack([{"name": "g", "instanceType": "p4d.24xlarge"}])
    monkeypatch.setattr(calendar, "today", lambda: dt.date(2027, 3, 27))
    [f] = checks.eks_calendar(raw, [])
    assert (f["id"], f["severity"]) == ("calendar.extended-support", "info")
    assert "1.35" in f["message"] and "GPU nodes 21.96 + control plane 0.10 = 22.06 USD" in f["message"]
    monkeypatch.setattr(calendar, "today", lambda: dt.date(2027, 3, 28))
    [f] = checks.eks_calendar(raw, [])
    assert (f["id"], f["severity"]) == ("calendar.extended-support", "warning")
    assert "extended support" in f["message"] and "GPU nodes 21.96 + control plane 0.60 = 22.56 USD" in f["message"]
    assert "one minor at a time" in f["message"]


def test_a_karpenter_that_does_not_support_the_minor_is_an_error(monkeypatch):
    """Were 1.35 to need a Karpenter newer than the pinned 1.14.1: an error naming both and the floor."""
    from gpu_slicing import calendar

    monkeypatch.setattr(calendar, "today", lambda: dt.date(2026, 12, 6))
    monkeypatch.setitem(calendar.BY_MINOR, "1.35", dataclasses.replace(calendar.BY_MINOR["1.35"], karpenter_min="1.15.0"))
    pool = {"name": "p", "instanceTypes": ["p4d.24xlarge"], "maxNodes": 1}
    found = list(checks.eks_calendar(_stack(node_pools=[pool]), []))
    [f] = _by(found, "error")
    assert f["id"] == "calendar.karpenter"
    assert "Karpenter 1.14.1" in f["message"] and "Kubernetes 1.35" in f["message"] and ">= 1.15.0" in f["message"]
    assert _by(checks.eks_calendar(_stack([{"name": "g", "instanceType": "p4d.24xlarge"}]), []), "error") == []


# --- helm.values --------------------------------------------------------------------------------------------

def _release(name: str, chart, values, type_="kubernetes:helm.sh/v3:Release") -> dict:
    return reg(type_, name, {"chart": chart, "values": values})


def test_each_chart_has_a_reviewed_allow_list():
    """The charts the program installs, by the last element of their reference (dra: the NVIDIA DRA driver's)."""
    allow = checks.chart_allowlists()
    assert set(allow) == {"gpu-operator", "dra-driver-nvidia-gpu", "karpenter", "kube-prometheus-stack", "karpenter-crd"}
    assert allow["karpenter-crd"][0] == frozenset()  # the CRD chart: this program sets none of its values


def test_value_paths_off_the_allow_list_are_listed_sorted():
    """driver.enabled and dcgmExporter.config.name are gpu-operator values (its values.yaml)."""
    values = {"zeta": 1, "driver": {"enabled": False}, "alpha": {"b": 2},
              "dcgmExporter": {"config": {"name": "m"}}}
    assert checks.value_paths_off_allowlist("gpu-operator", values) == ["alpha.b", "zeta"]
    assert checks.value_paths_off_allowlist("karpenter-crd", {"a": 1}) == ["a"]
    assert checks.value_paths_off_allowlist("no-such-chart", values) is None


def test_helm_values_names_the_release_the_path_and_the_chart():
    from tools import refdata

    from gpu_slicing.helm import has_path

    chart_values = refdata.load("gpu-operator-values")["values"]
    assert not has_path(chart_values, "driver.enable") and has_path(chart_values, "driver.enabled")
    g = [reg("kubernetes:core/v1:ConfigMap", "cm", {"chart": "gpu-operator", "values": {"typo": 1}}),
         _release("op", "nvidia/gpu-operator/", {"driver": {"enable": False, "enabled": False}}),
         _release("v4", "gpu-operator", {"driver": {"enabled": False}}, "kubernetes:helm.sh/v4:Chart")]
    found = list(checks.helm_values({}, g))
    [err] = _by(found, "error")
    assert (err["id"], err["resource"]) == ("helm.values", "op")
    assert err["message"].startswith("op: ") and "'driver.enable'" in err["message"] and "'gpu-operator'" in err["message"]
    assert "Helm would ignore a key it lacks without a word" in err["message"]
    assert [(f["id"], f["severity"]) for f in found] == [("helm.values", "error"), ("helm.values", "info")]
    assert found[-1]["message"].startswith("2 Helm releases'")


def test_helm_values_unknown_at_preview_or_of_an_unlisted_chart():
    g = [_release("later", "gpu-operator", checks.COMPUTED), _release("none", "karpenter", None),
         _release("mystery", "oci://example.com/charts/mystery", {"a": 1}), reg("kubernetes:helm.sh/v3:Release", "bare", {})]
    found = list(checks.helm_values({}, g))
    assert [(f["id"], f["severity"], f["resource"]) for f in found] == [
        ("helm.values", "info", "later"), ("helm.values", "error", "mystery"), ("helm.values", "error", "bare"),
        ("helm.values", "info", None)]
    assert "unknown at preview" in found[0]["message"] and found[0]["message"].startswith("later: ")
    assert "'mystery'" in found[1]["message"] and "chart_allowlists" in found[1]["message"]
    assert "chart '' has" in found[2]["message"]  # no chart named: said so, not as a chart called None
    assert found[3]["message"].startswith("3 Helm releases'")


# --- aws.*: botocore's models ----------------------------------------------------------------------------------

def test_aws_enums_name_the_resource_the_path_and_the_shape():
    """botocore's models: p4d.24xlarge is an EC2 InstanceType (p4d.24xl is not); EKS CapacityTypes are
    ON_DEMAND, SPOT, CAPACITY_BLOCK; TaintEffect NO_SCHEDULE, NO_EXECUTE, PREFER_NO_SCHEDULE."""
    g = [reg("eks:index:ManagedNodeGroup", "ng", {
             "instanceTypes": ["p4d.24xlarge", "p4d.24xl"], "amiType": "AL2023_x86_64_NVIDIA",
             "capacityType": "ONDEMAND", "taints": [{"effect": "NO_SCHEDULE"}, {"effect": None}]}),
         reg("aws:ec2/launchTemplate:LaunchTemplate", "lt", {"instanceType": checks.COMPUTED,
                                                             "metadataOptions": {"httpTokens": "required"}})]
    found = list(checks.aws_enums({}, g))
    errs = _by(found, "error")
    assert [(f["id"], f["resource"]) for f in errs] == [("aws.instance-type", "ng"), ("aws.capacity-type", "ng")]
    assert errs[0]["message"].startswith("ng: instanceTypes[] = 'p4d.24xl' is not a valid ec2 InstanceType")
    hints = errs[0]["message"].split("did you mean ")[1].split(", ")
    assert hints[0] == "p4d.24xlarge" and len(hints) == 3
    assert errs[1]["message"].startswith("ng: capacityType = 'ONDEMAND' is not a valid eks CapacityTypes")
    counts = {f["id"]: f["message"].split(" values checked")[0] for f in _by(found, "info")
              if f["id"] != "aws.kubernetes-version"}
    # the unknown instance type and the null taint effect are not counted
    assert counts == {"aws.instance-type": "2", "aws.ami-type": "1", "aws.capacity-type": "1", "aws.enum": "2"}
    import botocore

    assert all(f"botocore {botocore.__version__} enums" in f["message"] for f in _by(found, "info")[:4])
    assert "no enum" in _by(found, id_="aws.kubernetes-version")[0]["message"]


def test_each_aws_check_says_how_many_values_it_checked_even_none():
    found = list(checks.aws_enums({}, []))
    assert [(f["id"], f["severity"], f["message"].split(" values checked")[0]) for f in found[:4]] == [
        ("aws.instance-type", "info", "0"), ("aws.ami-type", "info", "0"), ("aws.capacity-type", "info", "0"),
        ("aws.enum", "info", "0")]
    # botocore's EKS model: CreateCluster's `version` is a plain string shape, with no enum
    assert found[4] == checks.finding("aws.kubernetes-version", "info", (
        "botocore's EKS model types the cluster version as a plain string (no enum to check against): the version "
        "is held to gpu-slicing's supported list by the config, and k8s.schema says when kubernetes-validate has no "
        "schema for it"))


def test_a_value_with_no_close_match_gets_no_hint():
    [f] = _by(checks.aws_enums({}, [reg("aws:eks/nodeGroup:NodeGroup", "ng", {"amiType": "zzz"})]), "error")
    assert f["message"].endswith("is not a valid eks AMITypes (botocore service model)")


def test_a_nodepools_instance_types_are_ec2_instance_types():
    """Karpenter's requirement on node.kubernetes.io/instance-type (operator In) lists EC2 instance types."""
    def pool(name, *requirements):
        return reg("kubernetes:karpenter.sh/v1:NodePool", name, {"spec": {"template": {"spec": {
            "requirements": list(requirements)}}}})

    g = [pool("gpu", {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
              {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["p5.48xlarge", "p5.48xl"]}),
         pool("open", {"key": "node.kubernetes.io/instance-type", "operator": "NotIn", "values": ["bogus"]}),
         pool("none")]
    found = list(checks.aws_enums({}, g))
    [f] = _by(found, "error")
    assert (f["id"], f["resource"]) == ("aws.instance-type", "gpu")
    assert "requirements[node.kubernetes.io/instance-type] = 'p5.48xl'" in f["message"]
    assert _by(found, "info", "aws.instance-type")[0]["message"].startswith("2 values checked")


def test_event_sources_are_aws_services_botocore_knows():
    """aws.ec2 and aws.health name services (botocore's list); aws.ec3 does not; my.app is no AWS source."""
    rule = "aws:cloudwatch/eventRule:EventRule"
    g = [reg(rule, "broken", {"eventPattern": "{source"}), reg(rule, "later", {"eventPattern": checks.COMPUTED}),
         reg(rule, "spot", {"eventPattern": {"source": ["aws.ec2", "aws.ec3", "my.app", 7]}}),
         reg(rule, "health", {"eventPattern": json.dumps({"source": ["aws.health"]})}),
         reg(rule, "scheduled", {"scheduleExpression": "rate(1h)"}),
         reg(rule, "listed", {"eventPattern": "[1, 2]"}), reg(rule, "nosource", {"eventPattern": "{}"}),
         reg("aws:sqs/queue:Queue", "q", {"eventPattern": {"source": ["aws.nope"]}})]
    found = list(checks.aws_event_sources({}, g))
    assert [(f["id"], f["severity"], f["resource"]) for f in found] == [
        ("aws.event-source", "error", "broken"), ("aws.event-source", "error", "spot"), ("aws.event-source", "info", None)]
    assert found[0]["message"].startswith("broken: eventPattern is not JSON")
    assert found[1]["message"].startswith("spot: event source 'aws.ec3'")
    assert found[1]["message"].endswith("(aws.<service>, e.g. aws.ec2, aws.health)")  # what a source looks like
    assert found[2]["message"].startswith("5 EventBridge sources checked")
    assert found[2]["message"].endswith("(detail-types are not in botocore and are not checked)")


# --- iam.parliament: what decides an accepted finding ------------------------------------------------------------

def _found(issue: str, detail="", location=None) -> checks.StoredFinding:
    return checks.StoredFinding(issue, detail, location)


def test_a_findings_actions_come_from_its_detail_or_its_location_lower_cased():
    assert checks._finding_actions(_found("X", [{"action": "EC2:RunInstances"}, "IAM:PassRole", {"x": 1}, 3])) == {
        "ec2:runinstances", "iam:passrole"}
    assert checks._finding_actions(_found("X", "text", {"actions": ["S3:GetObject", {"action": "s3:PutObject"}]})) == {
        "s3:getobject", "s3:putobject"}
    assert checks._finding_actions(_found("X", "text", {"actions": "s3:GetObject"})) == set()
    assert checks._finding_actions(_found("X", None, None)) == set()


def test_statements_are_the_mappings_of_a_documents_statement_or_list():
    one = {"Effect": "Allow"}
    assert checks._statements({"Statement": one}) == [one]
    assert checks._statements({"Statement": [one, "junk", None]}) == [one]
    assert checks._statements({}) == [] and checks._statements({"Statement": "junk"}) == []
    assert checks._listify("a") == ["a"] and checks._listify(["a", "b"]) == ["a", "b"] and checks._listify(None) == [None]


_RUN = [{"action": "ec2:RunInstances", "required_format": "arn:*:ec2:*:*:subnet/*"},
        {"action": "ec2:RunInstances", "required_format": "arn:*:ec2:*:*:volume/*"}]
_ARN = "arn:aws:ec2:us-east-1:123456789012:{}/*"


@pytest.mark.parametrize("statements, covered", [
    # each format named by some Allow statement of the action (action names compared without case)
    ([{"Effect": "Allow", "Action": "EC2:RUNINSTANCES", "Resource": [_ARN.format("subnet"), _ARN.format("volume")]}], True),
    ([{"Effect": "Allow", "Action": ["ec2:RunInstances"], "Resource": _ARN.format("subnet")},
      {"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": [7, _ARN.format("volume")]}], True),
    ([{"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": _ARN.format("subnet")}], False),
    ([{"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": _ARN.format("subnet")},
      {"Effect": "Deny", "Action": "ec2:RunInstances", "Resource": _ARN.format("volume")}], False),
    ([{"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": _ARN.format("subnet")},
      {"Effect": "Allow", "Action": "ec2:CreateFleet", "Resource": _ARN.format("volume")}], False),
    ([], False),
])
def test_statements_cover_formats_needs_every_format_in_an_allow_of_the_action(statements, covered):
    assert checks._statements_cover_formats(_found("RESOURCE_MISMATCH", _RUN), {"Statement": statements}) is covered


def test_a_finding_with_no_listed_formats_is_covered():
    assert checks._statements_cover_formats(_found("RESOURCE_MISMATCH", "text"), {"Statement": []}) is True


@pytest.mark.parametrize("resources, public", [
    (["arn:aws:ssm:us-east-1::parameter/aws/service/eks/optimized-ami/1.35/x"], True),
    (["arn:aws-cn:ssm:cn-north-1::parameter/aws/service/a", "arn:aws:ssm:*::parameter/aws/service/b"], True),
    (["arn:aws:ssm:us-east-1::parameter/aws/service/a", "arn:aws:ssm:us-east-1:123456789012:parameter/aws/service/a"],
     False),
    (["arn:aws:ssm:us-east-1::parameter/mine"], False),
    (["x arn:aws:ssm:us-east-1::parameter/aws/service/a"], False),
    ([7], False),
])
def test_public_ssm_parameters_are_aws_owned_ones_only(resources, public):
    """AWS's public parameters (/aws/service/...) have ARNs with an empty account field."""
    doc = {"Statement": [{"Effect": "Allow", "Action": ["SSM:GetParameter", "ssm:GetParameters"], "Resource": resources},
                         {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]}
    assert checks._public_ssm_parameter(_found("RESOURCE_MISMATCH"), doc) is public


def test_no_ssm_statement_is_no_public_parameter():
    doc = {"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}}
    assert checks._public_ssm_parameter(_found("RESOURCE_MISMATCH"), doc) is False


@pytest.mark.parametrize("detail, oidc", [
    ("arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com", True),
    ("arn:aws-cn:iam::123456789012:oidc-provider/oidc.example.com", True),
    ("arn:aws:iam::123456789012:oidc-provider/", False),
    ("arn:aws:iam::1234567890123:oidc-provider/x", False),
    ("arn:aws:iam::123456789012:saml-provider/corp", False),
    (" arn:aws:iam::123456789012:oidc-provider/x", False),
    (["arn:aws:iam::123456789012:oidc-provider/x"], False),
])
def test_an_oidc_provider_arn(detail, oidc):
    assert checks._iam_oidc_provider(_found("UNKNOWN_FEDERATION_SOURCE", detail), {}) is oidc


def test_an_accepted_entry_needs_its_issue_kind_detail_actions_and_verification(monkeypatch):
    """Entries are tried in turn: one that does not match (detail, actions, verification) leaves the next its chance."""
    monkeypatch.setattr(checks, "ACCEPTED_IAM_FINDINGS", (
        {"issue": "A", "kinds": {"trust"}, "reason": "any A in a trust policy"},
        {"issue": "B", "kinds": {"identity", "resource"}, "detail": "exact", "reason": "exact B"},
        {"issue": "B", "kinds": {"identity"}, "detail": "other", "reason": "other B"},
        {"issue": "C", "kinds": {"identity"}, "actions": {"s3:getobject"}, "reason": "C on reads"},
        {"issue": "C", "kinds": {"identity"}, "actions": {"s3:getobject", "s3:putobject"}, "reason": "C on s3"},
        {"issue": "D", "kinds": {"trust"}, "verify": "iam_oidc_provider", "reason": "D verified"},
        {"issue": "D", "kinds": {"trust"}, "detail": "plain", "reason": "D plain"},
        {"issue": "S", "kinds": {"identity"}, "verify": "public_ssm_parameter", "reason": "S public"}))
    oidc = "arn:aws:iam::123456789012:oidc-provider/x"
    public = {"Statement": {"Effect": "Allow", "Action": "ssm:GetParameter",
                            "Resource": "arn:aws:ssm:us-east-1::parameter/aws/service/eks/x"}}
    cases = [(_found("A"), "trust", {}, "any A in a trust policy"), (_found("A"), "identity", {}, None),
             (_found("B", "exact"), "resource", {}, "exact B"), (_found("B", "other"), "identity", {}, "other B"),
             (_found("B", "other"), "resource", {}, None),
             (_found("C", [{"action": "S3:GetObject"}]), "identity", {}, "C on reads"),
             (_found("C", [{"action": "s3:GetObject"}, {"action": "s3:PutObject"}]), "identity", {}, "C on s3"),
             (_found("C", [{"action": "s3:GetObject"}, {"action": "s3:DeleteObject"}]), "identity", {}, None),
             (_found("C", []), "identity", {}, None),
             (_found("D", oidc), "trust", {}, "D verified"), (_found("D", "plain"), "trust", {}, "D plain"),
             (_found("D", "arn:aws:iam::123456789012:role/r"), "trust", {}, None),
             (_found("S"), "identity", public, "S public"), (_found("S"), "identity", {}, None),
             (_found("E"), "trust", {}, None)]
    assert [checks.accepted_reason(f, kind, doc) for f, kind, doc, _ in cases] == [reason for *_, reason in cases]


def test_the_judging_key_changes_with_the_list_and_the_code_that_reads_it(monkeypatch):
    """The parliament cache is keyed by it: a changed entry or a changed verification judges every document again."""
    before = checks._judging()
    assert before == checks._judging()
    monkeypatch.setitem(checks._VERIFY, "iam_oidc_provider", lambda f, doc: True)
    changed_code = checks._judging()
    monkeypatch.undo()
    monkeypatch.setattr(checks, "ACCEPTED_IAM_FINDINGS", checks.ACCEPTED_IAM_FINDINGS[1:])
    assert len({before, changed_code, checks._judging()}) == 3


def test_the_judging_key_is_the_list_alone_without_source(monkeypatch):
    """A build without .py files cannot read the code: the key is then the reviewed list as JSON."""
    import inspect

    def no_source(obj):
        raise OSError("no source")

    monkeypatch.setattr(inspect, "getsource", no_source)
    key = checks._judging()
    assert [a["issue"] for a in json.loads(key)] == [a["issue"] for a in checks.ACCEPTED_IAM_FINDINGS]


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "gpu-slicing"


def test_botocore_enums_are_read_from_its_model_and_kept_per_botocore_version(own_cache):
    """EKS's AMITypes (AWS API reference, CreateNodegroup amiType) include the NVIDIA AL2023 AMIs; the enum is
    computed from botocore's model once, then read from the kept file named for the botocore version."""
    from importlib.metadata import version

    checks.botocore_enum.cache_clear()
    try:
        ami_types = checks.botocore_enum("eks", "AMITypes")
        assert {"AL2023_x86_64_NVIDIA", "AL2023_ARM_64_NVIDIA", "AL2023_x86_64_STANDARD"} <= ami_types
        assert "AL2_x86_64_NVIDIA" not in checks.botocore_enum("eks", "CapacityTypes")
        kept = own_cache / f"botocore-{version('botocore')}-eks-AMITypes.json"
        assert json.loads(kept.read_text()) == sorted(ami_types)
    finally:
        checks.botocore_enum.cache_clear()


def test_parliament_is_imported_without_its_pkg_resources_warning(tmp_path, monkeypatch):
    """parliament's `import pkg_resources` warns on setuptools >= 67 (pkg_resources' own text, stood in for here
    by a module that warns the same on import; tests/test_checks.py holds a real first plan's stderr empty).
    Other warnings still reach the user."""
    import sys
    import warnings

    (tmp_path / "parliament.py").write_text(
        "import warnings\n"
        "warnings.warn('pkg_resources is deprecated as an API. See https://setuptools.pypa.io', UserWarning)\n"
        "warnings.warn('something else', UserWarning)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "parliament", raising=False)
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            module = checks._parliament()
    finally:
        sys.modules.pop("parliament", None)  # the stand-in goes; monkeypatch puts back a real one imported before
    assert module.__file__ == str(tmp_path / "parliament.py")
    assert [str(w.message) for w in seen] == ["something else"]


def test_lint_policy_gives_each_finding_its_reason_and_keeps_them(own_cache):
    """A trust policy names no Resource (accepted); an identity policy's unknown action is not."""
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                     "Action": "sts:AssumeRole"}]}
    [(f, reason)] = checks.lint_policy(trust, "trust")
    assert f.issue == "MALFORMED" and "trust policy" in reason
    [kept] = own_cache.glob("parliament-*.json")
    assert [e["issue"] for e in json.loads(kept.read_text())] == ["MALFORMED"]
    typo = _policy({"Effect": "Allow", "Action": "s3:GetObjects", "Resource": "arn:aws:s3:::b/*"})
    assert [(f.issue, r) for f, r in checks.lint_policy(typo, "identity")] == [("UNKNOWN_ACTION", None)]
    # a document that is JSON but no object is judged too, with no statement to verify against
    assert checks.lint_policy("[]", "identity")


def test_iam_parliament_lints_every_document_place_and_counts(own_cache):
    """Role trust and inline policies, managed, role and queue policies (IAM_DOCUMENTS); a finding with no detail
    is named by its location's actions."""
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                     "Action": "sts:AssumeRole"}]}
    typo = _policy({"Effect": "Allow", "Action": "s3:GetObjects", "Resource": "arn:aws:s3:::b/*"})
    unknown = {"Statement": [{"Resource": [checks.COMPUTED]}]}
    g = [reg("aws:s3/bucketPolicy:BucketPolicy", "bp", {"policy": typo}),
         reg("aws:iam/role:Role", "role", {"assumeRolePolicy": trust, "inlinePolicies": [
             {"policy": None}, {"policy": unknown}, {"policy": typo}, {"policy": unknown}, {}]}),
         reg("aws:iam/rolePolicy:RolePolicy", "rp", {"policy": typo}),
         reg("aws:sqs/queuePolicy:QueuePolicy", "qp", {"policy": trust})]
    found = list(checks.iam_parliament({}, g))
    assert [(f["id"], f["resource"], f["message"].split(":")[0]) for f in _by(found, "error")] == [
        ("iam.parliament", "role", "role.inlinePolicies[].policy"), ("iam.parliament", "rp", "rp.policy"),
        ("iam.parliament", "qp", "qp.policy")]
    # the queue policy names no Resource, as the trust policy does: accepted in trust policies only
    assert [f["message"].split(": ")[1].split()[1] for f in _by(found, "error")] == [
        "UNKNOWN_ACTION", "UNKNOWN_ACTION", "MALFORMED"]
    assert all(f["message"].endswith("(fix it, or add a reviewed entry with its reason to ACCEPTED_IAM_FINDINGS)")
               for f in _by(found, "error"))
    assert (found[-1]["id"], found[-1]["severity"]) == ("iam.parliament", "info")
    assert found[-1]["message"].startswith("4 policy documents linted by parliament, 1 findings accepted")
    assert found[-1]["message"].endswith(", 2 unknown at preview")
    no_detail = [(checks.StoredFinding("RESOURCE_STAR", "", {"actions": ["s3:getobject"]}), None),
                 (checks.StoredFinding("OTHER", [], None), None),
                 (checks.StoredFinding("MALFORMED", "said", None), "accepted"),
                 (checks.StoredFinding("DETAILED", "the detail", {"actions": ["s3:putobject"]}), None),
                 (checks.StoredFinding("MALFORMED", "again", None), "accepted")]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(checks, "lint_policy", lambda doc, kind: no_detail)
        found = list(checks.iam_parliament({}, [reg("aws:iam/policy:Policy", "p", {"policy": typo})]))
    assert [f["message"].split(" (fix it")[0] for f in _by(found, "error")] == [
        "p.policy: parliament RESOURCE_STAR: ['s3:getobject']", "p.policy: parliament OTHER: ",
        "p.policy: parliament DETAILED: the detail"]
    assert found[-1]["message"] == ("1 policy documents linted by parliament, 2 findings accepted (reasons in "
                                    "tools/checks.py ACCEPTED_IAM_FINDINGS)")


# --- policy.*: the pack over the record ------------------------------------------------------------------------

def test_policy_context_takes_the_stacks_gpu_node_ceiling():
    assert checks.policy_context(_stack() | {NS + "maxGpuNodes": 3}).max_gpu_nodes == 3


def test_policy_rules_name_the_resource_by_its_name_and_count_the_clean_rules(monkeypatch):
    from policy import rules

    lt = reg("aws:ec2/launchTemplate:LaunchTemplate", "lt", {"metadataOptions": {"httpTokens": "optional"},
                                                           "blockDeviceMappings": []})
    found = list(checks.policy_rules(_stack(), [lt]))
    [err] = _by(found, "error")
    assert (err["id"], err["resource"]) == ("policy.imdsv2-required", "lt")
    assert "lt" in err["message"] and "'optional'" in err["message"]
    n = len(rules.RULES)
    assert found[-1] == checks.finding("policy", "info", f"{n} policy-pack rules run, {n - 1} clean")
    # an advisory (not mandatory) rule warns; a violation about no recorded resource keeps its URN
    monkeypatch.setitem(rules.RULES, "imdsv2-required",
                        dataclasses.replace(rules.RULES["imdsv2-required"], mandatory=False))
    monkeypatch.setattr(rules, "evaluate_all", lambda res, ctx: {"imdsv2-required": [("m", lt["urn"]), ("n", "urn:x")]})
    assert [(f["id"], f["severity"], f["resource"]) for f in checks.policy_rules(_stack(), [lt])][:2] == [
        ("policy.imdsv2-required", "warning", "lt"), ("policy.imdsv2-required", "warning", "urn:x")]


# --- observability ----------------------------------------------------------------------------------------------

MIG = {"name": "mig", "instanceType": "p4d.24xlarge", "migLayout": "all-balanced"}
ALL_MIG_FIELDS = ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_PROF_SM_ACTIVE", "DCGM_FI_PROF_DRAM_ACTIVE",
                  "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE")  # docs/facts.md §9: per MIG instance


def _operator(chart="nvidia/gpu-operator", name="gpu-metrics", type_="kubernetes:helm.sh/v3:Release") -> dict:
    values = {"dcgmExporter": {"config": {"name": name}}} if name else {}
    return reg(type_, "operator", {"chart": chart, "values": values})


def _csv(*fields: str) -> dict:
    return reg("kubernetes:core/v1:ConfigMap", "metrics", {"metadata": {"name": "gpu-metrics"}, "data": {
        "dcgm-metrics.csv": "# fields\n" + "".join(f"{f}, gauge, x\n" for f in fields)}})


def _rule(*alerts) -> dict:
    return reg("kubernetes:monitoring.coreos.com/v1:PrometheusRule", "rules", {"spec": {"groups": [
        {"rules": [{"alert": a} if a else {"record": "r"} for a in alerts]}]}})


def test_a_mig_pool_needs_the_exporter_to_list_its_fields():
    raw = _stack([MIG, {"name": "whole", "instanceType": "p4d.24xlarge"}, MIG | {"name": "mig-2"}])
    found = list(checks.observability(raw, [_operator(), _csv(*ALL_MIG_FIELDS, "DCGM_FI_DEV_GPU_TEMP")]))
    assert [(f["id"], f["severity"]) for f in found] == [("observability.exporter", "info")]
    assert "'gpu-metrics'" in found[0]["message"] and "(6 fields)" in found[0]["message"]
    assert found[0]["message"].endswith("MIG pools mig, mig-2")
    [f] = checks.observability(raw, [_operator(), _csv("DCGM_FI_DEV_FB_USED", "DCGM_FI_PROF_GR_ENGINE_ACTIVE")])
    assert (f["id"], f["severity"]) == ("observability.exporter", "error")
    assert ("MIG pools mig, mig-2: the exporter's metrics list 'gpu-metrics' lacks DCGM_FI_DEV_FB_FREE, "
            "DCGM_FI_PROF_DRAM_ACTIVE, DCGM_FI_PROF_SM_ACTIVE:") in f["message"]


def test_a_mig_pool_without_the_exporters_list_or_its_configmap_is_an_error():
    raw = _stack([MIG, MIG | {"name": "mig-2"}])
    [f] = checks.observability(raw, [_operator(name=None)])
    assert (f["id"], f["severity"]) == ("observability.exporter", "error")
    assert f["message"].startswith("MIG pools mig, mig-2: ")
    assert "dcgmExporter.config.name" in f["message"] and ", ".join(sorted(ALL_MIG_FIELDS)) in f["message"]
    [f] = checks.observability(raw, [_operator(type_="kubernetes:helm.sh/v4:Chart")])
    assert (f["id"], f["severity"]) == ("observability.exporter", "error")
    assert "'gpu-metrics'" in f["message"] and "dcgm-metrics.csv" in f["message"]
    # no GPU Operator in the record: nothing to hold the pool's exporter to
    assert list(checks.observability(raw, [reg("kubernetes:helm.sh/v3:Release", "k", {"chart": "karpenter"})])) == []


def test_a_mig_capable_gpu_without_a_mig_layout_is_no_mig_pool():
    raw = _stack([{"name": "whole", "instanceType": "p4d.24xlarge"}])
    assert list(checks.observability(raw, [_operator(name=None)])) == [
        checks.finding("observability", "info", "no MIG pools and no alert rules: nothing to check")]


def test_h100_mig_pools_are_warned_of_their_missing_framebuffer_series():
    """NVIDIA/dcgm-exporter#512 and #380: no DCGM_FI_DEV_FB_USED/FREE per MIG instance on H100."""
    hopper = MIG | {"name": "hopper", "instanceType": "p5.48xlarge"}
    raw = _stack([hopper, MIG, hopper | {"name": "hopper-2"}], **{NS + "observability": {"enabled": True}})
    found = list(checks.observability(raw, [_operator(), _csv(*ALL_MIG_FIELDS)]))
    [gap] = _by(found, "warning")
    assert gap["id"] == "observability.exporter" and gap["message"].startswith("MIG pools hopper, hopper-2 (H100/H200): ")
    assert "DCGM_FI_DEV_FB_USED or DCGM_FI_DEV_FB_FREE" in gap["message"] and "#512" in gap["message"]
    quiet = list(checks.observability(raw | {NS + "observability": {"enabled": False}}, [_operator(), _csv(*ALL_MIG_FIELDS)]))
    assert [f["severity"] for f in quiet] == ["info", "info"] and "#512" in quiet[1]["message"]


def test_every_alert_needs_a_promtool_test_that_expects_it_to_fire():
    """GpuSlicingMigConfigFailed is tested in gpu_slicing_alerts_test.yaml, GpuSlicingDraDevicesUnallocated in
    the DRA file (tests/promtool)."""
    raw = _stack()
    found = list(checks.observability(raw, [_rule("GpuSlicingMigConfigFailed", "GpuSlicingDraDevicesUnallocated", None)]))
    assert [(f["id"], f["severity"]) for f in found] == [("observability.alert-tests", "info")]
    assert found[0]["message"].startswith("2 alerts, each with a promtool unit test")
    found = list(checks.observability(raw, [_rule("GpuSlicingMigConfigFailed", "Untested", "Untested")]))
    [f] = _by(found, "error")
    assert f["id"] == "observability.alert-tests" and f["message"].startswith("alert Untested has no promtool unit test")
    assert f["message"].endswith("(tests/promtool/gpu_slicing_alerts_test.yaml)") and len(found) == 1


def test_tested_alerts_reads_every_file_given_and_skips_missing_or_empty_ones(tmp_path):
    def write(name, tests):
        (tmp_path / name).write_text(yaml.safe_dump({"tests": tests}) if tests is not None else "")
        return tmp_path / name

    a = write("a.yaml", [{"alert_rule_test": [{"alertname": "A", "exp_alerts": [{}]}]}, {"input_series": []}])
    b = write("b.yaml", [{"alert_rule_test": [{"alertname": "B", "exp_alerts": [{"exp_labels": {}}]},
                                              {"alertname": "Silent"}]}])
    empty = write("empty.yaml", None)
    assert checks.tested_alerts(a, b, empty, tmp_path / "missing.yaml") == {"A", "B"}
    assert checks.tested_alerts(empty) == set() and checks.tested_alerts(tmp_path) == set()


def test_the_exporter_configmap_is_found_by_name_among_configmaps_only():
    metrics = _csv("DCGM_FI_DEV_FB_USED")
    other = reg("kubernetes:core/v1:ConfigMap", "other", {"metadata": {"name": "other"}, "chart": "gpu-operator", "values": {
        "dcgmExporter": {"config": {"name": "other"}}}, "data": {"dcgm-metrics.csv": "X, gauge, x\n"}})
    for chart in ("gpu-operator", "nvidia/gpu-operator", "oci://ghcr.io/nvidia/gpu-operator", "./charts/gpu-operator/"):
        assert checks._exporter_fields([other, _operator(chart), metrics]) == ("gpu-metrics", {"DCGM_FI_DEV_FB_USED"})
    no_data = reg("kubernetes:core/v1:ConfigMap", "m", {"metadata": {"name": "gpu-metrics"}})
    assert checks._exporter_fields([_operator(), no_data]) == ("gpu-metrics", set())
    not_text = reg("kubernetes:core/v1:ConfigMap", "m", {"metadata": {"name": "gpu-metrics"},
                                                          "data": {"dcgm-metrics.csv": 5}})
    assert checks._exporter_fields([_operator(), not_text]) == ("gpu-metrics", set())
    assert checks._exporter_fields([_operator(name=None)]) == (None, None)
    assert checks._exporter_fields([]) == (None, None)


def test_the_dev_stack_config_loads_for_the_checks():
    """The checks read the stack file as `make plan` does."""
    assert checks.stack(dev_config()).config.max_gpu_nodes == 7
