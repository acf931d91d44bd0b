"""The CEL rules of the pinned Karpenter CRDs (tools/cel_rules.py and the k8s.crd-cel check): every rule is
found and evaluates, the dev stack's objects pass them all, and planted violations fail with the CRD's own
message at the right path. Expected messages are the CRDs' text; expected counts are derived from the CRDs
by hand in the comments."""
from __future__ import annotations

import copy
import re
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT, child_env, dev_config
from tools import cel_rules, checks, refdata

KINDS = ("NodePool", "EC2NodeClass", "NodeOverlay")


def report(obj: dict) -> cel_rules.Report:
    r = cel_rules.evaluate_object(obj)
    assert r is not None, obj["kind"]
    return r


def violations(obj: dict) -> list[str]:
    return [str(v) for v in report(obj).violations]


def schema_errors(obj: dict) -> list[str]:
    return checks.crd_errors(obj)


def key(rule: cel_rules.Rule) -> tuple[str, str, str]:
    return rule.kind, rule.schema_path, rule.rule


@pytest.fixture
def uncached():
    """Each rule's outcome worked out in this test, not answered by the cache of an earlier test's (the same
    rule on the same value): what decides it (reading unknowns, the conversion to CEL values, the
    evaluation's error text) runs here."""
    cel_rules._outcome.cache_clear()


# --- objects that reach every rule of the CRDs (each valid against the schema) ----------------------------

def node_pool(**spec) -> dict:
    base = {"template": {"metadata": {"labels": {"team": "ml", "karpenter.sh/capacity-type": "on-demand",
                                                 "karpenter.k8s.aws/instance-family": "p4d"}},
                         "spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass",
                                                   "name": "gpu"},
                                  "requirements": [
                                      {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "Gt",
                                       "values": ["0"]},
                                      {"key": "node.kubernetes.io/instance-type", "operator": "In",
                                       "values": ["p4d.24xlarge", "p5.48xlarge"], "minValues": 2},
                                      {"key": "karpenter.sh/capacity-type", "operator": "In",
                                       "values": ["on-demand"]}]}},
            "disruption": {"consolidateAfter": "10m", "consolidationPolicy": "WhenEmpty",
                           "budgets": [{"nodes": "1"}, {"nodes": "0", "schedule": "0 9 * * 1-5", "duration": "8h"}]},
            "limits": {"nvidia.com/gpu": "32"}, "weight": 10}
    base.update(spec)
    return {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "gpu"}, "spec": base}


def node_class(**spec) -> dict:
    base = {"role": "KarpenterNodeRole-t", "amiFamily": "AL2023", "amiSelectorTerms": [{"alias": "al2023@latest"}],
            "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "t"}}, {"id": "subnet-0123"}],
            "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "t"}}, {"name": "sg-nodes"}],
            "capacityReservationSelectorTerms": [{"tags": {"team": "ml"}}, {"id": "cr-0123"}],
            "blockDeviceMappings": [{"deviceName": "/dev/xvda", "rootVolume": True,
                                     "ebs": {"volumeSize": "200Gi", "snapshotID": "snap-0123",
                                             "volumeInitializationRate": 200}}],
            "connectionTracking": {"tcpEstablishedTimeout": 3600},
            "kubelet": {"imageGCHighThresholdPercent": 85, "imageGCLowThresholdPercent": 80,
                        "evictionHard": {"memory.available": "5%"}, "evictionSoft": {"memory.available": "10%"},
                        "evictionSoftGracePeriod": {"memory.available": "1m"},
                        "kubeReserved": {"cpu": "100m"}, "systemReserved": {"memory": "100Mi"}},
            "networkInterfaces": [{"networkCardIndex": 0, "deviceIndex": 0, "interfaceType": "interface"},
                                  {"networkCardIndex": 1, "deviceIndex": 0, "interfaceType": "efa-only"}],
            "placementGroupSelector": {"name": "pg-a"},
            "tags": {"team": "ml"}}
    base.update(spec)
    return {"apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": {"name": "gpu"}, "spec": base}


def overlay(**spec) -> dict:
    base = {"requirements": [{"key": "karpenter.sh/nodepool", "operator": "In", "values": ["gpu"]},
                             {"key": "karpenter.k8s.aws/instance-family", "operator": "NotIn", "values": ["g4dn"]},
                             {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "Gte", "values": ["1"]}],
            "capacity": {"nvidia.com/mig-1g.5gb": "56"}, "price": "1.5"}
    base.update(spec)
    return {"apiVersion": "karpenter.sh/v1alpha1", "kind": "NodeOverlay", "metadata": {"name": "gpu"}, "spec": base}


def node_claim() -> dict:
    return {"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim", "metadata": {"name": "gpu-x"},
            "spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "gpu"},
                     "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]},
                                      {"key": "karpenter.k8s.aws/instance-cpu", "operator": "Lt", "values": ["9"]},
                                      {"key": "topology.kubernetes.io/zone", "operator": "In",
                                       "values": ["us-east-1a", "us-east-1b"], "minValues": 2}]}}


def witnesses() -> list[dict]:
    """Valid objects that, together, give every rule a value to evaluate on."""
    static = node_pool(replicas=2, limits={"nodes": "3"})
    del static["spec"]["weight"]
    return [node_pool(), static,
            node_class(),
            node_class(role=None, instanceProfile="KarpenterNodeInstanceProfile-t",
                       amiSelectorTerms=[{"tags": {"team": "ml"}, "owner": "self"}, {"name": "my-ami-*"}],
                       placementGroupSelector={"id": "pg-0123"}),
            overlay(), overlay(price=None, priceAdjustment="-10%"), node_claim()]


def _clean(obj: dict) -> dict:
    obj = copy.deepcopy(obj)
    obj["spec"] = {k: v for k, v in obj["spec"].items() if v is not None}
    return obj


# --- every rule of the pinned CRDs --------------------------------------------------------------------------

def test_every_rule_of_the_crd_files_is_found():
    """The walk finds each rule the pinned CRDs hold (counted in their data, generated by tools/refdata.py)."""
    rules = cel_rules.all_rules()
    in_files = len(re.findall(r'"rule": ', refdata.path("karpenter-crds").read_text()))
    assert len(rules) == in_files == 92  # EC2NodeClass 54, NodeClaim 10, NodeOverlay 8, NodePool 20
    by_kind = {k: sum(r.kind == k for r in rules) for k in ("EC2NodeClass", "NodeClaim", "NodeOverlay", "NodePool")}
    assert by_kind == {"EC2NodeClass": 54, "NodeClaim": 10, "NodeOverlay": 8, "NodePool": 20}


def test_exactly_the_transition_rules_are_skipped():
    transition = {key(r) for r in cel_rules.all_rules() if r.transition}
    assert transition == {
        ("NodeClaim", "spec", "self == oldSelf"),
        ("NodePool", "spec", "has(self.replicas) == has(oldSelf.replicas)"),
        ("NodePool", "spec.template.spec.nodeClassRef", "self.group == oldSelf.group"),
        ("NodePool", "spec.template.spec.nodeClassRef", "self.kind == oldSelf.kind")}


def test_the_functions_the_rules_use_are_celpys_or_shimmed():
    """What the rules call, listed from their syntax trees; celpy lacks `find` (Kubernetes' regex library)
    and `split` (its strings library), and `int` is shimmed for Go's string parsing."""
    import celpy.evaluation

    used = set()
    for r in cel_rules.all_rules():
        for node in cel_rules.compile_rule(r.rule).iter_subtrees():
            if node.data == "member_dot_arg":
                used.add(node.children[1].value)
            elif node.data == "ident_arg":
                used.add(node.children[0].value)
    assert used == {"all", "exists", "filter", "has", "size", "int", "matches", "startsWith", "endsWith",
                    "find", "split"}
    macros = {"all", "exists", "filter", "has"}
    assert used - macros - set(celpy.evaluation.base_functions) == {"find", "split"}
    assert set(cel_rules._functions()) == {"find", "split", "int"}


def test_every_rule_evaluates_true_on_valid_objects():
    """No rule is left unevaluable: each non-transition rule runs to `true` on at least one valid object."""
    reached = set()
    for obj in map(_clean, witnesses()):
        assert schema_errors(obj) == [], (obj["kind"], schema_errors(obj))
        r = report(obj)
        assert r.violations == [] and r.unknown == [], (obj["kind"], [str(v) for v in r.violations])
        reached |= {key(rule) for _, rule in r.evaluated}
    expected = {key(r) for r in cel_rules.all_rules() if not r.transition}
    assert expected - reached == set()


# --- the dev stack -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def graph(dev_runs) -> list[dict]:
    return [r.to_json() for r in dev_runs["preview"].registrations]


@pytest.mark.parametrize("mode", ["preview", "up"])
def test_dev_objects_pass_every_rule(dev_runs, mode):
    # Rules reached on the dev objects, read off the CRDs for the fields they set:
    # NodePool: spec 2 (+1 transition), budgets 1, template labels 4, nodeClassRef group/kind/name 3 (+2
    #   transition), requirements 3, requirements[].key 4 x 3 requirements (instance type, capacity type,
    #   arch) = 25;
    # EC2NodeClass: spec 8, amiSelectorTerms 4, its alias 3, blockDeviceMappings 1, ebs 2, role 1,
    #   securityGroupSelectorTerms 4 + tags 1, subnetSelectorTerms 3 + tags 1, tags 6 = 34;
    # NodeOverlay: spec 1, capacity 1, requirements 3, requirements[].key 3 x 2 = 11.
    counts = {}
    for x in dev_runs[mode].registrations:
        if x.inputs.get("kind") in KINDS:
            r = report(x.inputs)
            assert r.violations == [], [str(v) for v in r.violations]
            assert r.unknown == []
            counts[x.inputs["kind"]] = (len(r.evaluated), len(r.transition))
    assert counts == {"NodePool": (25, 3), "EC2NodeClass": (34, 0), "NodeOverlay": (11, 0)}


def test_check_reports_the_counts_on_the_dev_plan(graph, monkeypatch):
    monkeypatch.delenv(checks.CRD_DIR_ENV, raising=False)
    [f] = checks.k8s_crd_cel(dev_config(), graph)
    assert f["severity"] == "info"
    assert f["message"].startswith("70 CEL rules evaluated on 3 objects, 3 transition rules skipped "
                                   "(not evaluated (transition rule)")


def test_check_fails_on_a_planted_violation(graph, monkeypatch):
    monkeypatch.delenv(checks.CRD_DIR_ENV, raising=False)
    bad = copy.deepcopy(graph)
    np_ = next(r for r in bad if r["type"] == "kubernetes:karpenter.sh/v1:NodePool")
    np_["inputs"]["spec"]["template"]["spec"]["requirements"].append(
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["ip-10-0-0-1"]})
    found = list(checks.k8s_crd_cel(dev_config(), bad))
    errors = [f for f in found if f["severity"] == "error"]
    assert [(f["resource"], f["message"]) for f in errors] == [
        (np_["name"], f"NodePool {np_['name']}: spec.template.spec.requirements[3].key: label \"kubernetes.io/"
                      "hostname\" is restricted (CEL rule `self != \"kubernetes.io/hostname\"` of the CRD)")]
    assert found[-1]["message"].startswith("74 CEL rules evaluated")  # 70 + the 4 rules on the added key


def test_check_names_the_pinned_crds_it_used(graph, monkeypatch):
    monkeypatch.delenv(checks.CRD_DIR_ENV, raising=False)
    [f] = checks.k8s_crd_cel(dev_config(), graph)
    assert f["message"].endswith("(against the pinned Karpenter's CRDs (v1.14.1, tools/data/karpenter-crds.json))")


def test_check_reads_the_crd_files_the_environment_names(graph, monkeypatch, tmp_path):
    """GPU_SLICING_CRD_DIR points the check at other CRD files: here a directory holding only the NodePool CRD,
    so only the NodePool's rules run (25 evaluated, 3 transition rules skipped, as on the pinned CRDs)."""
    [crd] = [c for c in refdata.load("karpenter-crds") if c["kind"] == "NodePool"]
    doc = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "spec": {"group": crd["group"], "names": {"kind": crd["kind"]}, "scope": crd["scope"],
                    "versions": [{"name": v["name"], "served": v["served"], "schema": {"openAPIV3Schema": v["schema"]}}
                                 for v in crd["versions"]]}}
    (tmp_path / "nodepools.yaml").write_text(yaml.safe_dump(doc))
    monkeypatch.setenv(checks.CRD_DIR_ENV, str(tmp_path))
    [f] = checks.k8s_crd_cel(dev_config(), graph)
    assert f["message"].startswith("25 CEL rules evaluated on 1 objects, 3 transition rules skipped")
    assert f["message"].endswith(f"(against the CRD files in {tmp_path})")


@pytest.mark.slow
def test_the_plan_does_not_import_the_cel_library():
    code = "import sys, tools.checks, tools.cel_rules; assert 'celpy' not in sys.modules, 'celpy imported'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=child_env(), check=True)


# --- planted violations: the CRD's own message, at the object's path ----------------------------------------

def with_requirement(req: dict) -> dict:
    obj = node_pool()
    obj["spec"]["template"]["spec"]["requirements"].append(req)
    return obj


@pytest.mark.parametrize("label, message", [
    ("kubernetes.io/hostname", 'label "kubernetes.io/hostname" is restricted'),
    ("karpenter.sh/nodepool", 'label "karpenter.sh/nodepool" is restricted'),
    ("karpenter.sh/nodeclaim", 'label domain "karpenter.sh" is restricted'),
    ("team.karpenter.sh/x", 'label domain "karpenter.sh" is restricted'),  # a subdomain is the domain too
    ("karpenter.k8s.aws/owner", 'label domain "karpenter.k8s.aws" is restricted'),
])
def test_node_pool_requirement_on_a_restricted_label(label, message):
    obj = with_requirement({"key": label, "operator": "Exists"})
    assert violations(obj) == [f"spec.template.spec.requirements[3].key: {message}"]


@pytest.mark.parametrize("label", ["karpenter.sh/capacity-type", "karpenter.k8s.aws/instance-gpu-name",
                                   "node.kubernetes.io/instance-type", "karpenter.sh.example.com/x"])
def test_node_pool_requirement_on_an_allowed_label(label):
    assert violations(with_requirement({"key": label, "operator": "Exists"})) == []


def test_node_pool_template_label_restricted():
    obj = node_pool()
    obj["spec"]["template"]["metadata"]["labels"]["karpenter.sh/nodepool"] = "gpu"
    assert violations(obj) == ['spec.template.metadata.labels: label "karpenter.sh/nodepool" is restricted']


@pytest.mark.parametrize("req, message", [
    ({"key": "a", "operator": "In", "values": []}, "requirements with operator 'In' must have a value defined"),
    ({"key": "a", "operator": "In"},  # the API server: "no such key: values evaluating rule: ..."
     "no such member in mapping: 'values' evaluating rule: requirements with operator 'In' must have a value "
     "defined"),
    ({"key": "a", "operator": "Gt", "values": ["-1"]},
     "requirements operator 'Gt', 'Lt', 'Gte', or 'Lte' must have a single positive integer value"),
    ({"key": "a", "operator": "Lte", "values": ["1", "2"]},
     "requirements operator 'Gt', 'Lt', 'Gte', or 'Lte' must have a single positive integer value"),
    ({"key": "a", "operator": "In", "values": ["x"], "minValues": 2},
     "requirements with 'minValues' must have at least that many values specified in the 'values' field"),
])
def test_node_pool_requirement_rules(req, message):
    assert violations(with_requirement(req)) == [f"spec.template.spec.requirements: {message}"]


@pytest.mark.parametrize("value", ["abc", "1_0", " 1", "9223372036854775808"])
def test_a_numeric_requirement_that_go_cannot_parse_fails_the_rule(value):
    """int() parses as Go's strconv.ParseInt: Python's int() would accept "1_0" and " 1"; the API server
    reports the evaluation error with the rule's message."""
    [v] = violations(with_requirement({"key": "a", "operator": "Gt", "values": [value]}))
    assert v == (f"spec.template.spec.requirements: cannot convert {value!r} to int evaluating rule: "
                 "requirements operator 'Gt', 'Lt', 'Gte', or 'Lte' must have a single positive integer value")
    assert violations(with_requirement({"key": "a", "operator": "Gt", "values": ["+7"]})) == []


def test_budget_schedule_needs_duration():
    obj = node_pool()
    obj["spec"]["disruption"]["budgets"] = [{"nodes": "0", "schedule": "@daily"}]
    assert violations(obj) == ["spec.disruption.budgets: 'schedule' must be set with 'duration'"]


def test_static_node_pool_rules():
    obj = node_pool(replicas=2)  # keeps weight 10 and limits on nvidia.com/gpu
    assert violations(obj) == ["spec: only 'limits.nodes' is supported on static NodePools",
                               "spec: 'weight' is not supported on static NodePools"]


def test_consolidation_and_expiry_are_guarded_by_the_schema_not_by_cel():
    """Karpenter v1's NodePool has no CEL rule on consolidateAfter/expireAfter (the v1beta1 rule tying
    consolidateAfter to WhenEmpty is gone): their pattern is k8s.crd-schema's, "Never" is valid."""
    for disruption in ({"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "Never"},
                       {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "0s"},
                       {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "Never"}):
        obj = node_pool(disruption=disruption)
        obj["spec"]["template"]["spec"]["expireAfter"] = "Never"
        assert violations(obj) == [] and schema_errors(obj) == []
    obj = node_pool()
    obj["spec"]["template"]["spec"]["expireAfter"] = "30d"  # days are not a Go duration unit
    assert violations(obj) == [] and len(schema_errors(obj)) == 1


@pytest.mark.parametrize("terms, expected", [
    ([{"alias": "al2023@latest", "id": "ami-0123"}],
     ["spec.amiSelectorTerms: 'id' is mutually exclusive, cannot be set with a combination of other fields in "
      "amiSelectorTerms",
      "spec.amiSelectorTerms: 'alias' is mutually exclusive, cannot be set with a combination of other fields in "
      "amiSelectorTerms"]),
    ([{"alias": "al2023@latest"}, {"id": "ami-0123"}],
     ["spec.amiSelectorTerms: 'alias' is mutually exclusive, cannot be set with a combination of other "
      "amiSelectorTerms"]),
    ([{"alias": "al2023"}], ["spec.amiSelectorTerms[0].alias: 'alias' is improperly formatted, must match the "
                             "format 'family@version'"]),
    ([{"alias": "ubuntu@latest"}],
     ["spec.amiSelectorTerms[0].alias: family is not supported, must be one of the following: 'al2', 'al2023', "
      "'bottlerocket', 'windows2019', 'windows2022', 'windows2025'"]),
    ([{"owner": "self"}], ["spec.amiSelectorTerms: expected at least one, got none, ['tags', 'id', 'name', "
                           "'alias', 'ssmParameter']"]),
])
def test_node_class_ami_selector_rules(terms, expected):
    obj = node_class(amiSelectorTerms=terms)
    del obj["spec"]["amiFamily"]
    if not any("alias" in t for t in terms):
        obj["spec"]["amiFamily"] = "AL2023"
    assert violations(obj) == expected


def test_node_class_windows_alias_takes_only_latest_and_family_must_match():
    obj = node_class(amiSelectorTerms=[{"alias": "windows2022@v20260101"}])
    assert violations(obj) == [
        "spec: if set, amiFamily must be 'Windows2022' or 'Custom' when using a Windows2022 alias",
        "spec.amiSelectorTerms[0].alias: windows families may only specify version 'latest'"]


def test_node_class_role_or_instance_profile_tags_and_root_volumes():
    obj = node_class(instanceProfile="p", tags={"kubernetes.io/cluster/t": "owned", "": "x"})
    obj["spec"]["subnetSelectorTerms"][0]["tags"]["team"] = ""
    obj["spec"]["blockDeviceMappings"].append({"deviceName": "/dev/xvdb", "rootVolume": True,
                                               "ebs": {"volumeSize": "10Gi"}})
    assert violations(obj) == [
        "spec: must specify exactly one of ['role', 'instanceProfile']",
        "spec.blockDeviceMappings: must have only one blockDeviceMappings with rootVolume",
        "spec.subnetSelectorTerms[0].tags: empty tag keys or values aren't supported",
        "spec.tags: empty tag keys aren't supported",
        "spec.tags: tag contains a restricted tag matching kubernetes.io/cluster/"]


def test_overlay_rules():
    obj = overlay(priceAdjustment="+5%", capacity={"pods": "110", "nvidia.com/mig-1g.5gb": "56"})
    obj["spec"]["requirements"].append({"key": "kubernetes.io/hostname", "operator": "NotIn", "values": []})
    assert violations(obj) == [
        "spec: cannot set both 'price' and 'priceAdjustment'",
        "spec.capacity: invalid resource restricted",
        "spec.requirements: requirements with operator 'NotIn' must have a value defined",
        'spec.requirements[3].key: label "kubernetes.io/hostname" is restricted']


# --- unknown values, defaults, and the rule fields the pinned CRDs do not use yet ---------------------------

@pytest.mark.usefixtures("uncached")
def test_a_rule_reading_an_unknown_value_is_skipped_not_failed():
    obj = node_class(role="<computed>")
    obj["spec"]["subnetSelectorTerms"][0]["tags"]["karpenter.sh/discovery"] = "<computed>"
    r = report(obj)
    assert r.violations == []
    assert {(p, rule.rule) for p, rule in r.unknown} == {
        ("spec.role", "self != ''"),
        ("spec.subnetSelectorTerms[0].tags", "self.all(k, k != '' && self[k] != '')")}
    # has(self.role) asks only whether role is set: that rule still runs, and still fails on a second field
    obj["spec"]["instanceProfile"] = "p"
    assert violations(obj) == ["spec: must specify exactly one of ['role', 'instanceProfile']"]


def test_an_unknown_value_does_not_hide_a_violation_elsewhere():
    obj = with_requirement({"key": "a", "operator": "Gt", "values": ["<computed>"]})
    obj["spec"]["template"]["spec"]["requirements"].append({"key": "b", "operator": "In", "values": []})
    r = report(obj)
    assert [str(v) for v in r.violations] == [
        "spec.template.spec.requirements: requirements with operator 'In' must have a value defined"]
    assert [rule.message for _, rule in r.unknown] == [
        "requirements operator 'Gt', 'Lt', 'Gte', or 'Lte' must have a single positive integer value"]


def test_defaults_are_applied_before_the_rules():
    obj = node_pool()
    del obj["spec"]["disruption"]
    schema = cel_rules.crd_schemas()[("karpenter.sh/v1", "NodePool")]
    defaulted = cel_rules.apply_defaults(obj, schema)
    # the CRD's defaults: disruption {consolidateAfter: 0s}, then inside it policy and budgets
    assert defaulted["spec"]["disruption"] == {"consolidateAfter": "0s", "consolidationPolicy":
                                               "WhenEmptyOrUnderutilized", "budgets": [{"nodes": "10%"}]}
    assert defaulted["spec"]["template"]["spec"]["expireAfter"] == "720h"
    assert "disruption" not in obj["spec"]  # the input is not changed
    with_defaults = {p for p, _ in cel_rules.evaluate(obj, schema, "NodePool").evaluated}
    without = {p for p, _ in cel_rules.evaluate(obj, schema, "NodePool", defaults=False).evaluated}
    assert with_defaults - without == {"spec.disruption.budgets"}


@pytest.mark.usefixtures("uncached")
def test_numbers_as_recorded_are_typed_by_the_schema():
    """Pulumi sends numbers as doubles: an integral 2.0 in an integer field compares as the int 2."""
    obj = with_requirement({"key": "a", "operator": "In", "values": ["x"], "minValues": 2.0})
    assert violations(obj) == ["spec.template.spec.requirements: requirements with 'minValues' must have at least "
                               "that many values specified in the 'values' field"]
    obj = node_class()
    obj["spec"]["kubelet"].update(imageGCHighThresholdPercent=80.0, imageGCLowThresholdPercent=85.0)
    assert violations(obj) == ["spec.kubelet: imageGCHighThresholdPercent must be greater than "
                               "imageGCLowThresholdPercent"]


@pytest.mark.usefixtures("uncached")
def test_message_expression_field_path_map_values_and_null():
    """What the API server does with the rule fields Karpenter does not use (yet): messageExpression, fieldPath,
    a rule without a message, rules on map values, and no rule on null."""
    schema = {"type": "object", "properties": {"spec": {
        "type": "object",
        "x-kubernetes-validations": [
            {"rule": "self.a < 3", "messageExpression": "'a is ' + string(self.a)", "fieldPath": ".a",
             "reason": "FieldValueInvalid"},
            {"rule": "self.a < 2", "message": "a below 2", "messageExpression": "''"}],
        "properties": {
            "a": {"type": "integer"},
            "m": {"type": "object", "additionalProperties": {"type": "string", "x-kubernetes-validations": [
                {"rule": "self != ''"}]}},
            "n": {"type": "string", "nullable": True, "x-kubernetes-validations": [{"rule": "self == 'x'"}]}}}}}
    r = cel_rules.evaluate({"spec": {"a": 3, "m": {"k": "", "j": "v"}, "n": None}}, schema)
    assert [str(v) for v in r.violations] == ["spec.a: a is 3", "spec: a below 2", "spec.m[k]: failed rule: self != ''"]
    assert r.violations[0].rule.reason == "FieldValueInvalid"
    assert len(r.evaluated) == 4  # two on spec, one per map value, none on the null n


@pytest.mark.usefixtures("uncached")
def test_what_counts_as_reading_an_unknown_value():
    """has() on an unknown field only asks whether it is set; anything that looks at the value (or through it)
    depends on it."""
    rules = ["has(self.a)", "has(self.o.b)", "'x' in self.l", "self.l.size() == 2", "self.l[1] == 'y'",
             "self.l.exists(v, v == 'y')", "self.a == 'z'"]
    schema = {"type": "object", "properties": {"spec": {
        "type": "object", "x-kubernetes-validations": [{"rule": r} for r in rules],
        "properties": {"a": {"type": "string"}, "o": {"type": "object", "properties": {"b": {"type": "string"}}},
                       "l": {"type": "array", "items": {"type": "string"}}}}}}
    r = cel_rules.evaluate({"spec": {"a": "<computed>", "o": "<computed>", "l": ["<computed>", "y"]}}, schema)
    assert r.violations == []
    assert [rule.rule for _, rule in r.evaluated] == ["has(self.a)", "self.l.size() == 2", "self.l[1] == 'y'"]
    assert [rule.rule for _, rule in r.unknown] == ["has(self.o.b)", "'x' in self.l", "self.l.exists(v, v == 'y')",
                                                    "self.a == 'z'"]


# --- the walk, by hand-written schemas ----------------------------------------------------------------------

_MAP_SCHEMA = {"type": "object", "x-kubernetes-validations": [
    {"rule": "self.spec.size < 10", "message": "too big", "fieldPath": ".spec.size"},
    {"rule": "self.kind == oldSelf.kind"}], "properties": {
    "kind": {"type": "string"},
    "spec": {"type": "object", "properties": {
        "size": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string", "x-kubernetes-validations": [
            {"rule": "self.size() > 1", "message": "a tag has two characters or more"}]}},
        "labels": {"type": "object", "additionalProperties": {"type": "string", "x-kubernetes-validations": [
            {"rule": "self.startsWith('v')", "message": "a value starts with v"}]}}}}}}


def test_rules_are_found_under_properties_items_and_map_values():
    assert [(r.kind, r.schema_path, r.rule) for r in cel_rules.schema_rules(_MAP_SCHEMA)] == [
        ("", "", "self.spec.size < 10"), ("", "", "self.kind == oldSelf.kind"),
        ("", "spec.tags[]", "self.size() > 1"), ("", "spec.labels{}", "self.startsWith('v')")]
    assert {(r.kind, r.schema_path) for r in cel_rules.schema_rules(_MAP_SCHEMA, "Widget")} == {
        ("Widget", ""), ("Widget", "spec.tags[]"), ("Widget", "spec.labels{}")}


@pytest.mark.usefixtures("uncached")
def test_violations_say_where_with_the_rule_that_failed():
    """A root rule's fieldPath names the field (no leading dot); a map value is named by its key, a list item
    by its index; a transition rule is listed where it applies."""
    obj = {"kind": "Widget", "spec": {"size": 12, "tags": ["ok", "x"], "labels": {"a": "v1", "b": "w"}}}
    r = cel_rules.evaluate(obj, _MAP_SCHEMA, "Widget")
    assert [(v.path, v.message, v.rule.schema_path, v.rule.kind) for v in r.violations] == [
        ("spec.size", "too big", "", "Widget"),
        ("spec.tags[1]", "a tag has two characters or more", "spec.tags[]", "Widget"),
        ("spec.labels[b]", "a value starts with v", "spec.labels{}", "Widget")]
    assert [(p, rule.rule) for p, rule in r.transition] == [("", "self.kind == oldSelf.kind")]
    assert cel_rules.evaluate(obj, _MAP_SCHEMA).violations[0].rule.kind == ""
    root = {"type": "object", "x-kubernetes-validations": [{"rule": "has(self.spec)", "message": "spec is required"}]}
    [v] = cel_rules.evaluate({"kind": "Widget"}, root).violations
    assert (str(v), v.rule.schema_path) == ("<root>: spec is required", "")


@pytest.mark.usefixtures("uncached")
def test_a_rule_that_cannot_evaluate_fails_with_the_error_and_the_rule():
    schema = {"type": "object", "x-kubernetes-validations": [{"rule": "self.spec.size < 10", "message": "too big"}]}
    [v] = cel_rules.evaluate({"spec": {}}, schema).violations
    assert str(v) == "<root>: no such member in mapping: 'size' evaluating rule: too big"
    assert v.rule.rule == "self.spec.size < 10"
    [v] = cel_rules.evaluate({"spec": {"size": "big"}}, schema).violations  # a string compared with an int
    assert str(v).startswith("<root>: ") and str(v).endswith(" evaluating rule: too big")
    assert cel_rules.evaluate({"spec": {"size": 3}}, schema).violations == []


@pytest.mark.usefixtures("uncached")
def test_values_reach_cel_with_their_types():
    """bool, int, double, string, list and map each as CEL's type; a string that merely contains the preview
    marker is an ordinary string."""
    rules = ["self.b == true", "self.i + 1 == 3", "self.d > 1.4", "self.s.startsWith('<computed')",
             "self.l.exists(x, x == 'y')", "self.m.k == 'v'", "self.n == null"]
    schema = {"type": "object", "x-kubernetes-validations": [{"rule": r} for r in rules]}
    obj = {"b": True, "i": 2, "d": 1.5, "s": "<computed>x", "l": ["x", "y"], "m": {"k": "v"}, "n": None}
    r = cel_rules.evaluate(obj, schema, defaults=False)
    assert (r.violations, len(r.evaluated), r.unknown) == ([], len(rules), [])
    negated = {"type": "object", "x-kubernetes-validations": [{"rule": f"!({rule})"} for rule in rules]}
    assert len(cel_rules.evaluate(obj, negated, defaults=False).violations) == len(rules)


def test_item_rules_run_on_list_items_only():
    """A value of the wrong type is the schema's error (k8s.crd-schema): its characters are not items."""
    r = cel_rules.evaluate({"spec": {"size": 1, "tags": "ab"}}, _MAP_SCHEMA, defaults=False)
    assert r.violations == [] and [rule.rule for _, rule in r.evaluated] == ["self.spec.size < 10"]


_DEFAULTS = {"type": "object", "properties": {
    "n": {"type": "string", "nullable": True, "default": "d"},
    "s": {"type": "string", "default": "d"},
    "free": {"type": "object", "default": {"a": {"b": [1]}}},
    "m": {"type": "object", "additionalProperties": {"type": "object", "properties": {
        "x": {"type": "integer", "default": 1}, "r": {"type": "number"}}}},
    "l": {"type": "array"},
    "f": {"type": "number"}, "i": {"type": "integer"}, "t": {"type": "string"}}}


def test_defaults_follow_structural_defaulting():
    """An absent field gets its default, and so does a null one unless nullable; map values are defaulted by
    additionalProperties; numbers are typed by the schema (an integral double in an integer field, an int in
    a number field)."""
    got = cel_rules.apply_defaults({"n": None, "s": None, "m": {"k": {"r": 2}}, "l": [1, {"a": 2}], "f": 3,
                                    "i": 4.0, "t": True}, _DEFAULTS)
    assert got == {"n": None, "s": "d", "free": {"a": {"b": [1]}}, "m": {"k": {"r": 2.0, "x": 1}}, "l": [1, {"a": 2}],
                   "f": 3.0, "i": 4, "t": True}
    assert [type(got[k]) for k in ("f", "i", "t")] == [float, int, bool]
    assert type(got["m"]["k"]["r"]) is float
    assert cel_rules.apply_defaults({"f": 2.0, "t": 2.0}, _DEFAULTS) == {"f": 2.0, "t": 2.0, "s": "d", "n": "d",
                                                                         "free": {"a": {"b": [1]}}}
    assert [type(v) for v in cel_rules.apply_defaults({"f": 2.0, "t": 2.0}, _DEFAULTS).values()][:2] == [float, float]
    assert cel_rules.apply_defaults(True, {"type": "number"}) is True  # a bool is no number
    got["free"]["a"]["b"].append(2)  # a default handed out is the object's own, never the schema's
    assert _DEFAULTS["properties"]["free"]["default"] == {"a": {"b": [1]}}
    # a key the schema does not have (additionalProperties false) is the schema check's to report, as it is
    assert cel_rules.apply_defaults({"k": {"x": 1}}, {"type": "object", "properties": {},
                                                      "additionalProperties": False}) == {"k": {"x": 1}}


def test_all_rules_read_the_crd_files_of_a_directory(tmp_path):
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "spec": {"group": "example.com", "names": {"kind": "Widget"}, "scope": "Cluster", "versions": [
               {"name": "v1", "served": True, "schema": {"openAPIV3Schema": _MAP_SCHEMA}}]}}
    (tmp_path / "widgets.yaml").write_text(yaml.safe_dump(crd, sort_keys=False))
    assert [(r.kind, r.schema_path) for r in cel_rules.all_rules(tmp_path)] == [
        ("Widget", ""), ("Widget", ""), ("Widget", "spec.tags[]"), ("Widget", "spec.labels{}")]
