"""How the policy rules read what the engine recorded: booleans that arrive as strings (launch template
EBS flags), values unknown at preview (never a violation by themselves), paths into nested props, Karpenter
requirements (operator In by default, Kubernetes' NodeSelectorRequirement), and a rule run over a graph.
Expected values are Kubernetes' and the engine's semantics, worked by hand."""
from __future__ import annotations

import pytest

from policy import rules

CTX = rules.Context(max_gpu_nodes=100)


@pytest.mark.parametrize("value, expected", [
    (True, True), (False, False), ("true", True), ("TRUE", True), (" True ", True), ("false", False),
    ("yes", False), ("1", False), (1, True), (0, False), ([], False), (None, None), (rules.UNKNOWN, None),
])
def test_truthy(value, expected):
    assert rules.truthy(value) is expected


@pytest.mark.parametrize("value, expected", [
    (None, []), (rules.UNKNOWN, []), ((1, 2), [1, 2]), ([3], [3]), ("a", ["a"]), ({"k": 1}, [{"k": 1}]), (0, [0]),
])
def test_as_list(value, expected):
    assert rules.as_list(value) == expected


def test_known():
    assert [rules.known(v) for v in (None, rules.UNKNOWN, "", 0, False, "x")] == [False, False, True, True, True, True]


def test_dig_follows_maps_and_list_indexes_and_stops_at_anything_else():
    doc = {"a": {"b": [{"c": 1}, {"c": 2}]}, "s": "text"}
    assert rules.dig(doc, "a", "b", 0, "c") == 1
    assert rules.dig(doc, "a", "b", -1, "c") == 2
    assert rules.dig(doc, "a", "b", -2, "c") == 1
    assert rules.dig(doc, "a", "b", 2, "c", default="d") == "d"  # past the end
    assert rules.dig(doc, "a", "b", -3, default="d") == "d"
    assert rules.dig(doc, "a", "b", "0", default="d") == "d"  # a list is indexed by integers only
    assert rules.dig(doc, "s", 0, default="d") == "d"  # a string is no list
    assert rules.dig(doc, "missing", default="d") == "d"
    assert rules.dig(doc, "a", "b", 0, "c", "deeper") is None
    assert rules.dig(doc) is doc


def test_requirement_values_reads_the_first_in_requirement_of_the_key():
    reqs = [{"key": "k", "operator": "NotIn", "values": ["x"]},
            {"key": "other", "operator": "In", "values": ["o"]},
            {"key": "k", "values": ["a", 1, "b"]},  # operator In by default; values are strings
            {"key": "k", "operator": "In", "values": ["later"]}]
    assert rules.requirement_values(reqs, "k") == ["a", "b"]
    assert rules.requirement_values(reqs, "absent") is None
    assert rules.requirement_values([{"key": "k", "operator": "Exists"}], "k") is None
    assert rules.requirement_values(["junk", {"key": "k", "operator": "In", "values": rules.UNKNOWN}], "k") == []
    assert rules.requirement_values(rules.UNKNOWN, "k") is None


def _res(type_: str, name: str, props: dict) -> rules.Res:
    return rules.Res(type=type_, name=name, urn=f"urn:{name}", props=props)


def test_a_resource_rule_runs_on_each_resource_and_names_it():
    lts = [_res("aws:ec2/launchTemplate:LaunchTemplate", n, {"metadataOptions": {"httpTokens": t}})
           for n, t in (("a", "optional"), ("b", "required"), ("c", "optional"))]
    assert rules.evaluate(rules.RULES["imdsv2-required"], lts, CTX) == [
        ("a: metadataOptions.httpTokens is 'optional', not 'required' (IMDSv1 allowed)", "urn:a"),
        ("c: metadataOptions.httpTokens is 'optional', not 'required' (IMDSv1 allowed)", "urn:c")]


def test_a_stack_rule_sees_the_whole_graph_and_the_context():
    ng = _res("eks:index:ManagedNodeGroup", "gpu", {"instanceTypes": ["p4d.24xlarge"], "scalingConfig": {"maxSize": 3}})
    assert rules.evaluate(rules.RULES["max-gpu-nodes"], [ng], rules.Context(max_gpu_nodes=3)) == []
    [(msg, urn)] = rules.evaluate(rules.RULES["max-gpu-nodes"], [ng], rules.Context(max_gpu_nodes=2))
    assert urn is None and "3 GPU nodes (gpu: 3)" in msg and "maxGpuNodes=2" in msg
    assert set(rules.evaluate_all([ng], CTX)) == set(rules.RULES)
