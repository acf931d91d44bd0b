"""The CrossGuard pack's own glue (policy/pack.py), apart from the rules: how CrossGuard's props reach a rule
(unknowns of every kind as rules.UNKNOWN, nested mappings and lists, a value that raises on access), which cost
ceiling applies (the stack's gpu-slicing:maxGpuNodes from the runtime config the CLI hands the pack, capped by the
pack config), what a stack policy sees of each resource (parent, dependencies, property dependencies), and the
policies' settings docs/checks-and-ci.md promises (all mandatory; a failing one names its resource)."""
from __future__ import annotations

import pulumi
import pytest
from pulumi_policy import (EnforcementLevel, PolicyResource, PolicyResourceOptions, ResourceValidationArgs,
                           ResourceValidationPolicy, StackValidationArgs)
from pulumi_policy import proxy

from policy import pack, rules

POLICY = {p.name: p for p in pack.POLICIES}
UNKNOWNS = [proxy.UNKNOWN_BOOLEAN_VALUE, proxy.UNKNOWN_NUMBER_VALUE, proxy.UNKNOWN_STRING_VALUE,
            proxy.UNKNOWN_ARRAY_VALUE, proxy.UNKNOWN_ASSET_VALUE, proxy.UNKNOWN_ARCHIVE_VALUE,
            proxy.UNKNOWN_OBJECT_VALUE]


def _opts(parent: str | None = None) -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], None, [], parent)


@pytest.mark.parametrize("sentinel", UNKNOWNS)
def test_each_kind_of_unknown_reaches_a_rule_as_unknown(sentinel):
    assert pack.plain(sentinel) is rules.UNKNOWN
    assert pack.plain({"a": [sentinel]}) == {"a": [rules.UNKNOWN]}


def test_known_values_pass_through_whatever_their_nesting():
    doc = {"s": "required", "n": 1, "f": 0.5, "b": False, "none": None, "l": [{"k": ["v", 2]}, "x"], "t": ("a", 1)}
    assert pack.plain(doc) == {"s": "required", "n": 1, "f": 0.5, "b": False, "none": None,
                               "l": [{"k": ["v", 2]}, "x"], "t": ["a", 1]}
    assert pack.plain(proxy.unknown_checking_proxy(doc)) == pack.plain(doc)
    assert pack.plain("") == "" and pack.plain([]) == [] and pack.plain({}) == {}


def test_a_value_that_raises_unknown_on_access_is_unknown_in_place():
    """CrossGuard's proxy raises UnknownValueError when an unknown is read: that key or item alone is unknown,
    its neighbours keep their values."""
    props = {"spec": {"a": proxy.UNKNOWN_OBJECT_VALUE, "b": "known"},
             "items": ["first", proxy.UNKNOWN_STRING_VALUE, {"c": proxy.UNKNOWN_NUMBER_VALUE}]}
    assert pack.plain(proxy.unknown_checking_proxy(props)) == {
        "spec": {"a": rules.UNKNOWN, "b": "known"}, "items": ["first", rules.UNKNOWN, {"c": rules.UNKNOWN}]}


@pytest.fixture
def stack_config():
    """The runtime config the CLI hands a policy pack (PULUMI_CONFIG), restored afterwards."""
    from pulumi.runtime import config as runtime_config

    token = runtime_config.CONFIG.set({})

    def set_config(values: dict[str, str]) -> None:
        pulumi.runtime.set_all_config(values)

    yield set_config
    runtime_config.CONFIG.reset(token)


def test_the_cost_ceiling_is_the_stacks_max_gpu_nodes(stack_config, monkeypatch):
    # the key's namespace is gpu-slicing's whatever the project is called (a team may rename it in Pulumi.yaml)
    monkeypatch.setattr(pulumi.config, "get_project", lambda: "gpu-platform")
    stack_config({"gpu-slicing:maxGpuNodes": "5", "aws:region": "us-east-1"})
    assert pack.stack_max_gpu_nodes() == 5
    assert pack.context(None).max_gpu_nodes == 5
    assert pack.context({"maxGpuNodes": 3}).max_gpu_nodes == 3  # the organisation's lower cap
    assert pack.context({"maxGpuNodes": 9}).max_gpu_nodes == 5
    stack_config({"aws:region": "us-east-1"})
    assert pack.stack_max_gpu_nodes() is None
    assert pack.context({"maxGpuNodes": 9}).max_gpu_nodes == 9  # only the pack config
    assert pack.context({}).max_gpu_nodes is None and pack.context(None).max_gpu_nodes is None
    stack_config({"gpu-slicing:maxGpuNodes": "seven"})  # not a number: no ceiling from the stack (the rule asks)
    assert pack.stack_max_gpu_nodes() is None


def test_a_zero_ceiling_counts(monkeypatch):
    """0 GPU nodes is a ceiling, not "none given"."""
    monkeypatch.setattr(pack, "stack_max_gpu_nodes", lambda: 0)
    assert pack.context({"maxGpuNodes": 4}).max_gpu_nodes == 0
    monkeypatch.setattr(pack, "stack_max_gpu_nodes", lambda: 4)
    assert pack.context({"maxGpuNodes": 0}).max_gpu_nodes == 0


def test_a_stack_policy_sees_parents_dependencies_and_property_dependencies():
    parent = PolicyResource("gpu-slicing:gpu:GpuNodeGroup", {}, "urn:comp", "comp", _opts(), None, None, [], {})
    dep = PolicyResource("aws:iam/role:Role", {"name": "r"}, "urn:role", "role", _opts(), None, None, [], {})
    child = PolicyResource("eks:index:ManagedNodeGroup", {"labels": {"a": "b"}}, "urn:ng", "ng", _opts(), None,
                           parent, [dep, parent], {"nodeRole": [dep], "tags": []})
    res = pack.to_res(child)
    assert (res.type, res.name, res.urn, res.props) == ("eks:index:ManagedNodeGroup", "ng", "urn:ng", {"labels": {"a": "b"}})
    assert res.parent == "urn:comp"
    assert res.dependencies == ("urn:role", "urn:comp")
    assert res.property_dependencies == {"nodeRole": ("urn:role",), "tags": ()}
    top = pack.to_res(parent)
    assert top.parent is None and top.dependencies == () and top.property_dependencies == {}


def test_every_policy_is_mandatory_and_says_what_it_checks():
    """docs/checks-and-ci.md: all are mandatory (a violation stops the preview or update)."""
    assert {p.enforcement_level for p in POLICY.values()} == {EnforcementLevel.MANDATORY}
    for name, rule in rules.RULES.items():
        assert POLICY[name].description == rule.description and POLICY[name].description


def test_a_resource_policy_reports_what_its_rule_finds_on_the_resource_it_is_given(monkeypatch):
    monkeypatch.setattr(pack, "stack_max_gpu_nodes", lambda: None)
    policy = POLICY["imdsv2-required"]
    assert isinstance(policy, ResourceValidationPolicy)
    out: list[str] = []
    props = {"metadataOptions": {"httpTokens": "optional"}}
    args = ResourceValidationArgs("aws:ec2/launchTemplate:LaunchTemplate", proxy.unknown_checking_proxy(props),
                                  "urn:lt", "lt", _opts("urn:parent"), None, None)
    policy.validate(args, lambda message, urn=None: out.append(message))
    assert out == list(rules.RULES["imdsv2-required"].fn(
        rules.Res("aws:ec2/launchTemplate:LaunchTemplate", "lt", "urn:lt", props, "urn:parent"), rules.Context(None)))
    assert len(out) == 1


def test_a_stack_policy_reports_each_violation_with_the_resource_it_names(monkeypatch):
    """The pack config's ceiling reaches the rule, and each (message, URN) it yields is reported as such."""
    monkeypatch.setattr(pack, "stack_max_gpu_nodes", lambda: None)
    ng = PolicyResource("eks:index:ManagedNodeGroup", {"instanceTypes": ["p4d.24xlarge"], "nodeGroupName": "gpu-a",
                                                       "scalingConfig": {"maxSize": 3}},
                        "urn:ng", "ng", _opts(), None, None, [], {})
    out: list[tuple[str, str | None]] = []
    POLICY["max-gpu-nodes"].validate(StackValidationArgs([ng], {"maxGpuNodes": 2}),
                                     lambda message, urn=None: out.append((message, urn)))
    assert out == list(rules.RULES["max-gpu-nodes"].fn([pack.to_res(ng)], rules.Context(max_gpu_nodes=2)))
    assert len(out) == 1 and "may run 3 GPU nodes" in out[0][0] and "maxGpuNodes=2" in out[0][0]
    out.clear()
    POLICY["max-gpu-nodes"].validate(StackValidationArgs([ng], {"maxGpuNodes": 3}),
                                     lambda message, urn=None: out.append((message, urn)))
    assert out == []
