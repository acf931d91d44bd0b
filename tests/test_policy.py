"""The CrossGuard policy pack: every rule against a deliberately bad input, through the plain rule and
through the CrossGuard policy's own `validate` (never through `policy/__main__.py`, whose PolicyPack(...)
starts a server and blocks), and the dev stack clean under both."""
from __future__ import annotations

import ast
import copy
import json
import sys

import pytest
import yaml
from pulumi_policy import (PolicyResource, PolicyResourceOptions, ResourceValidationArgs, ResourceValidationPolicy,
                           StackValidationArgs, StackValidationPolicy)
from pulumi_policy import proxy

from conftest import ROOT, printed
from policy import pack, rules

URN = "urn:pulumi:dev::gpu-slicing::{t}::{n}"


def res(type_: str, name: str, props: dict, **kw) -> rules.Res:
    return rules.Res(type=type_, name=name, urn=URN.format(t=type_, n=name), props=props, **kw)


def opts() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], None, [], None)


def crossguard_resource(name: str, r: rules.Res, config: dict | None = None) -> list[str]:
    """Run pack policy `name` on one resource the way the analyzer does: props behind the unknown-checking proxy."""
    policy = POLICY[name]
    assert isinstance(policy, ResourceValidationPolicy)
    out: list[str] = []
    args = ResourceValidationArgs(r.type, proxy.unknown_checking_proxy(copy.deepcopy(dict(r.props))), r.urn, r.name,
                                  opts(), None, config)
    policy.validate(args, lambda message, urn=None: out.append(message))
    return out


def crossguard_stack(name: str, resources: list[rules.Res], config: dict | None = None) -> list[tuple[str, str]]:
    policy = POLICY[name]
    assert isinstance(policy, StackValidationPolicy)
    by_urn = {r.urn: PolicyResource(r.type, proxy.unknown_checking_proxy(copy.deepcopy(dict(r.props))), r.urn, r.name,
                                    opts(), None, None, [], {}) for r in resources}
    for r in resources:
        pr = by_urn[r.urn]
        pr.parent = by_urn.get(r.parent)
        pr.dependencies = [by_urn[d] for d in r.dependencies if d in by_urn]
        pr.property_dependencies = {k: [by_urn[d] for d in v if d in by_urn] for k, v in r.property_dependencies.items()}
    out: list[tuple[str, str]] = []
    policy.validate(StackValidationArgs(list(by_urn.values()), config), lambda m, urn=None: out.append((m, urn)))
    return out


def violations(name: str, resources: list[rules.Res], ctx: rules.Context | None = None) -> list[str]:
    """The plain rule's messages (what `make plan` reports), checked equal to the CrossGuard policy's."""
    ctx = ctx or rules.Context(max_gpu_nodes=100)
    plain = [m for m, _ in rules.evaluate(rules.RULES[name], resources, ctx)]
    config = {pack.MAX_GPU_NODES_KEY: ctx.max_gpu_nodes}
    from unittest import mock

    # only the ceiling given here: not whatever stack config an earlier program run left in the runtime
    with mock.patch.object(pack, "stack_max_gpu_nodes", lambda: None):
        if rules.RULES[name].kind == "resource":
            guarded = [m for r in resources for m in crossguard_resource(name, r, config)]
        else:
            guarded = [m for m, _ in crossguard_stack(name, resources, config)]
    assert guarded == plain, "the pack and the plan must say the same thing"
    return plain


POLICY = {p.name: p for p in pack.POLICIES}


@pytest.fixture(scope="module")
def dev(dev_runs) -> list[rules.Res]:
    from tools.checks import policy_resources

    return policy_resources([r.to_json() for r in dev_runs["preview"].registrations])


def find(resources: list[rules.Res], type_: str, name: str | None = None) -> rules.Res:
    return next(r for r in resources if r.type == type_ and (name is None or r.name == name))


def replace(resources: list[rules.Res], old: rules.Res, props: dict) -> list[rules.Res]:
    new = rules.Res(old.type, old.name, old.urn, props, old.parent, old.dependencies, old.property_dependencies)
    return [new if r is old else r for r in resources]


def edit(resources: list[rules.Res], type_: str, name: str | None, fn) -> list[rules.Res]:
    old = find(resources, type_, name)
    props = copy.deepcopy(dict(old.props))
    fn(props)
    return replace(resources, old, props)


# --- the pack itself ---------------------------------------------------------------------------------

def test_pack_has_one_policy_per_rule_of_the_right_kind():
    assert list(POLICY) == list(rules.RULES)
    for name, rule in rules.RULES.items():
        expected = ResourceValidationPolicy if rule.kind == "resource" else StackValidationPolicy
        assert isinstance(POLICY[name], expected), name
    assert {r.group for r in rules.RULES.values()} == {"gpu", "security", "cost"}


@pytest.mark.parametrize("mode", ["preview", "up"])
def test_dev_stack_is_clean_under_every_policy(dev_runs, mode):
    from tools.checks import policy_resources

    resources = policy_resources([r.to_json() for r in dev_runs[mode].registrations])
    for name in rules.RULES:
        assert violations(name, resources, rules.Context(max_gpu_nodes=7)) == [], name


def test_pack_files_are_runnable_from_a_checkout():
    meta = yaml.safe_load((ROOT / "policy" / "PulumiPolicy.yaml").read_text())
    assert meta["runtime"]["name"] == "python" and meta["runtime"]["options"]["virtualenv"] == "venv"
    reqs = (ROOT / "policy" / "requirements.txt").read_text()
    for pkg in ("pulumi-policy", "pulumi", "PyYAML"):
        assert f"\n{pkg}>=" in "\n" + reqs, pkg
    main = (ROOT / "policy" / "__main__.py").read_text()
    assert "PolicyPack(" in main and "sys.path.insert(0, str(ROOT))" in main
    for module in ("pack.py", "rules.py", "__init__.py"):  # what tests import constructs no PolicyPack
        tree = ast.parse((ROOT / "policy" / module).read_text())
        calls = {getattr(n.func, "id", getattr(n.func, "attr", None)) for n in ast.walk(tree) if isinstance(n, ast.Call)}
        assert "PolicyPack" not in calls, module


@pytest.mark.slow
def test_pack_needs_only_what_its_requirements_install():
    """The pack's venv installs policy/requirements.txt alone: importing the pack may load only those
    distributions, what they depend on, the standard library and the repository's own packages (not the
    program's providers, the advisor's scipy or the plan's checkers)."""
    import re
    from importlib import metadata

    code = "import sys, json; import policy.pack; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    loaded = set(json.loads(printed(code)))
    canonical = lambda name: re.sub(r"[-_.]+", "-", name).lower()  # noqa: E731
    requirement = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
    todo = [m.group(1) for line in (ROOT / "policy" / "requirements.txt").read_text().splitlines()
            if (m := requirement.match(line.split("#")[0]))]
    installs: set[str] = set()
    while todo:
        name = canonical(todo.pop())
        if name not in installs:
            installs.add(name)
            todo += [requirement.match(r).group(1) for r in metadata.requires(name) or [] if "extra ==" not in r]
    dists = metadata.packages_distributions()
    internal = {m for m in loaded if m.startswith("_") or m == "cython_runtime"}  # the interpreter's, Cython's
    outside = {m for m in loaded - set(sys.stdlib_module_names) - internal - {"policy", "gpu_slicing"}
               if not any(canonical(d) in installs for d in dists.get(m, []))}
    assert outside == set()
    assert {"pulumi_aws", "scipy", "botocore", "tools", "pydantic"} & loaded == set()


def test_unknown_values_reach_rules_as_unknown():
    props = {"metadataOptions": {"httpTokens": proxy.UNKNOWN_STRING_VALUE}, "x": [proxy.UNKNOWN_NUMBER_VALUE]}
    assert pack.plain(proxy.unknown_checking_proxy(props)) == {"metadataOptions": {"httpTokens": rules.UNKNOWN},
                                                                "x": [rules.UNKNOWN]}
    # CrossGuard's sentinels (a real preview) and the harness's "<computed>" (make plan) are both unknown.
    assert crossguard_resource("imdsv2-required", res("aws:ec2/launchTemplate:LaunchTemplate", "lt", props)) == []
    assert violations("imdsv2-required", [res("aws:ec2/launchTemplate:LaunchTemplate", "lt", pack.plain(props))]) == []


def test_cost_ceiling_is_the_lower_of_stack_and_pack_config(monkeypatch):
    monkeypatch.setattr(pack, "stack_max_gpu_nodes", lambda: 7)
    assert pack.context({}).max_gpu_nodes == 7
    assert pack.context({"maxGpuNodes": 4}).max_gpu_nodes == 4
    assert pack.context({"maxGpuNodes": 40}).max_gpu_nodes == 7
    monkeypatch.setattr(pack, "stack_max_gpu_nodes", lambda: None)
    assert pack.context(None).max_gpu_nodes is None


# --- security ----------------------------------------------------------------------------------------

def test_imdsv2_required():
    lt = res("aws:ec2/launchTemplate:LaunchTemplate", "lt", {"metadataOptions": {"httpTokens": "optional"}})
    assert "not 'required'" in violations("imdsv2-required", [lt])[0]
    bare = res("aws:ec2/launchTemplate:LaunchTemplate", "bare", {})
    assert "IMDSv1 stays allowed" in violations("imdsv2-required", [bare])[0]
    nc = res(rules.NODECLASS_TYPE, "nc", {"spec": {"metadataOptions": {"httpTokens": "optional"}}})
    assert violations("imdsv2-required", [nc]) == [
        "nc: spec.metadataOptions.httpTokens is 'optional', not 'required' (IMDSv1 allowed)"]
    assert violations("imdsv2-required", [res(rules.NODECLASS_TYPE, "default", {"spec": {}})]) == []
    mng = res("eks:index:ManagedNodeGroup", "mng", {"instanceTypes": ["m7i.large"]})
    assert "no launch template" in violations("imdsv2-required", [mng])[0]


def test_ebs_encrypted():
    lt = res("aws:ec2/launchTemplate:LaunchTemplate", "lt",
             {"blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "false"}}]})
    assert "not encrypted" in violations("ebs-encrypted", [lt])[0]
    nc = res(rules.NODECLASS_TYPE, "nc", {"spec": {}})
    assert "no spec.blockDeviceMappings" in violations("ebs-encrypted", [nc])[0]
    nc2 = res(rules.NODECLASS_TYPE, "nc2", {"spec": {"blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {}}]}})
    assert violations("ebs-encrypted", [nc2]) == ["nc2: spec.blockDeviceMappings[0] (/dev/xvda) is not encrypted"]


def test_secrets_kms_encrypted():
    assert violations("secrets-kms-encrypted", [res("eks:index:Cluster", "c", {"name": "c"})]) == [
        "c: encryptionConfigKeyArn is not set, so Secrets are stored without KMS envelope encryption"]
    kms = {"keyArn": "arn:aws:kms:us-east-1:1:key/x"}
    assert violations("secrets-kms-encrypted", [res("aws:eks/cluster:Cluster", "c", {"encryptionConfig": {
        "resources": ["configmaps"], "provider": kms}})]) == ["c: encryptionConfig does not encrypt 'secrets' with a KMS key"]
    assert violations("secrets-kms-encrypted", [res("aws:eks/cluster:Cluster", "c", {"encryptionConfig": {
        "resources": ["secrets"], "provider": kms}})]) == []
    assert violations("secrets-kms-encrypted", [res("eks:index:Cluster", "c", {
        "encryptionConfigKeyArn": rules.UNKNOWN})]) == []


def test_api_endpoint_reachable():
    """docs/facts.md §10: a public endpoint limited to RFC 5737 ranges admits nobody."""
    doc = res("eks:index:Cluster", "c", {"endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]})
    assert "documentation ranges" in violations("api-endpoint-reachable", [doc])[0]
    inside = res("aws:eks/cluster:Cluster", "c", {"vpcConfig": {"endpointPublicAccess": True,
                                                                "publicAccessCidrs": ["198.51.100.7/32"]}})
    [msg] = violations("api-endpoint-reachable", [inside])
    assert msg.startswith("c: publicAccessCidrs ['198.51.100.7/32'] are documentation ranges (RFC 5737)")
    beside = res("eks:index:Cluster", "c", {"endpointPublicAccess": True,
                                            "publicAccessCidrs": ["203.0.113.0/24", "100.64.1.0/24"]})
    assert "admits no client" in violations("api-endpoint-reachable", [beside])[0]  # as the config refuses it
    for ok in ({"endpointPublicAccess": False, "publicAccessCidrs": ["192.0.2.0/24"]},
               {"endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]},
               {"endpointPublicAccess": True, "publicAccessCidrs": rules.UNKNOWN}):
        assert violations("api-endpoint-reachable", [res("eks:index:Cluster", "c", ok)]) == [], ok


def test_nodes_private():
    # pulumi-eks defaults nodeAssociatePublicIpAddress to true: leaving it out is a violation.
    assert violations("nodes-private", [res("eks:index:Cluster", "c", {"encryptionConfigKeyArn": "k"})]) == [
        "c: nodeAssociatePublicIpAddress is not false (pulumi-eks defaults it to true)"]
    assert violations("nodes-private", [res(rules.SUBNET_TYPE, "s", {"mapPublicIpOnLaunch": True})]) == [
        "s: mapPublicIpOnLaunch is true: every instance launched there gets a public IP"]
    assert violations("nodes-private", [res("aws:ec2/launchTemplate:LaunchTemplate", "lt", {
        "networkInterfaces": [{"associatePublicIpAddress": "true"}]})]) == [
        "lt: networkInterfaces[0].associatePublicIpAddress is true"]
    assert violations("nodes-private", [res("eks:index:Cluster", "c", {"nodeAssociatePublicIpAddress": False}),
                                        res(rules.SUBNET_TYPE, "s", {"mapPublicIpOnLaunch": False})]) == []


def test_nodes_in_private_subnets(dev):
    public = find(dev, rules.SUBNET_TYPE, "gpu-dev-public-0")
    bad = edit(dev, "eks:index:ManagedNodeGroup", "gpu-dev-p4d-balanced", lambda p: None)
    mng = find(bad, "eks:index:ManagedNodeGroup", "gpu-dev-p4d-balanced")
    deps = dict(mng.property_dependencies, subnetIds=(public.urn,))
    bad = [rules.Res(r.type, r.name, r.urn, r.props, r.parent, r.dependencies, deps) if r is mng else r for r in bad]
    [msg] = violations("nodes-in-private-subnets", bad)
    assert "gpu-dev-public-0 (routed to an internet gateway" in msg
    # Karpenter's subnet selector must not pick public subnets either.
    tagged = edit(dev, rules.SUBNET_TYPE, "gpu-dev-public-0", lambda p: p["tags"].update({"karpenter.sh/discovery": "gpu-dev"}))
    [msg] = violations("nodes-in-private-subnets", tagged)
    assert "subnetSelectorTerms" in msg and "gpu-dev-public-0" in msg


def test_no_public_ssh():
    sg = res("aws:ec2/securityGroup:SecurityGroup", "sg", {"ingress": [
        {"fromPort": 22, "toPort": 22, "protocol": "tcp", "cidrBlocks": ["0.0.0.0/0"]}]})
    assert "covers port 22" in violations("no-public-ssh", [sg])[0]
    everything = res("aws:ec2/securityGroupRule:SecurityGroupRule", "all", {
        "type": "ingress", "fromPort": 0, "toPort": 0, "protocol": "-1", "ipv6CidrBlocks": ["::/0"]})
    assert violations("no-public-ssh", [everything]) == ["all: ingress from ::/0 covers port 22"]
    ingress = res("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "r", {
        "fromPort": 20, "toPort": 25, "ipProtocol": "tcp", "cidrIpv4": "0.0.0.0/0"})
    assert violations("no-public-ssh", [ingress]) == ["r: ingress from 0.0.0.0/0 covers port 22"]
    https = res("aws:ec2/securityGroup:SecurityGroup", "https", {"ingress": [
        {"fromPort": 443, "toPort": 443, "protocol": "tcp", "cidrBlocks": ["0.0.0.0/0"]}]})
    assert violations("no-public-ssh", [https]) == []
    mng = res("aws:eks/nodeGroup:NodeGroup", "ng", {"remoteAccess": {"ec2SshKey": "k"}})
    assert "remoteAccess" in violations("no-public-ssh", [mng])[0]


def test_workloads_non_root(dev):
    bad = edit(dev, "kubernetes:apps/v1:Deployment", "gpu-dev-workloads-slice-1g",
               lambda p: (p["spec"]["template"]["spec"].pop("securityContext"),
                          p["spec"]["template"]["spec"]["containers"][0]["securityContext"].update(
                              allowPrivilegeEscalation=True, privileged=True)))
    msgs = violations("workloads-non-root", bad)
    assert [m.split(": ", 1)[1].split()[2:4] for m in msgs] == [["may", "run"], ["does", "not"], ["is", "privileged"]]


# --- GPU ---------------------------------------------------------------------------------------------

def test_gpu_taint(dev):
    bad = edit(dev, "eks:index:ManagedNodeGroup", "gpu-dev-p4d-balanced", lambda p: p.pop("taints"))
    [msg] = violations("gpu-taint", bad)
    assert "nodeGroup p4d-balanced" in msg
    bad = edit(dev, rules.NODEPOOL_TYPE, None, lambda p: p["spec"]["template"]["spec"].update(
        taints=[{"key": "nvidia.com/gpu", "value": "true", "effect": "PreferNoSchedule"}]))
    [msg] = violations("gpu-taint", bad)
    assert "nodePool p4d-small" in msg
    system = res("eks:index:ManagedNodeGroup", "sys", {"instanceTypes": ["m7i.large"], "amiType": "AL2023_x86_64_STANDARD"})
    assert violations("gpu-taint", [system]) == []


def test_gpu_workloads_tolerate_the_taint(dev):
    bad = edit(dev, "kubernetes:batch/v1:Job", None, lambda p: p["spec"]["template"]["spec"].pop("tolerations"))
    [msg] = violations("gpu-workloads-tolerate-taint", bad)
    assert "nvidia.com/mig-1g.5gb" in msg


def test_mig_label_valid(dev):
    bad = edit(dev, "eks:index:ManagedNodeGroup", "gpu-dev-p4d-balanced",
               lambda p: p["labels"].update({"nvidia.com/mig.config": "all-1g.10gb+me"}))
    [msg] = violations("mig-label-valid", bad)
    assert "p4d.24xlarge" in msg and "all-balanced" in msg  # says what the A100-40GB can do instead
    g5 = edit(dev, "eks:index:ManagedNodeGroup", "gpu-dev-p4d-balanced",
              lambda p: p.update(instanceTypes=["g5.xlarge"]))
    [msg] = violations("mig-label-valid", g5)
    assert "no MIG" in msg
    odd = edit(dev, "eks:index:ManagedNodeGroup", "gpu-dev-p4d-balanced", lambda p: p.update(instanceTypes=["p3.2xlarge"]))
    assert "does not know" in violations("mig-label-valid", odd)[0]
    by_gpu_name = edit(dev, rules.NODEPOOL_TYPE, None, lambda p: p["spec"]["template"]["spec"].update(requirements=[
        {"key": "karpenter.k8s.aws/instance-gpu-name", "operator": "In", "values": ["a100"]}]))
    assert "cannot be checked against a GPU" in violations("mig-label-valid", by_gpu_name)[0]


def _with_custom_configmap(dev, config_yaml: str) -> list[rules.Res]:
    from gpu_slicing.gpu_operator import MIG_PARTED_CONFIGMAP

    out = edit(dev, "kubernetes:helm.sh/v3:Release", "gpu-dev-gpu-operator",
               lambda p: p["values"]["migManager"].update(config={"name": MIG_PARTED_CONFIGMAP, "create": False}))
    return out + [res(rules.CONFIGMAP_TYPE, "cm", {"metadata": {"name": MIG_PARTED_CONFIGMAP, "namespace": "gpu-operator"},
                                                   "data": {"config.yaml": config_yaml}})]


def test_mig_label_must_be_in_the_mig_managers_configmap(dev):
    from gpu_slicing import layouts
    from gpu_slicing.catalog import INSTANCE_TYPES

    p4d = INSTANCE_TYPES["p4d.24xlarge"]
    text = layouts.render_mig_parted_config([layouts.resolve_layout(n, p4d, {}, "k") for n in
                                             ("all-disabled", "all-balanced", "all-1g.5gb")])
    assert violations("mig-label-valid", _with_custom_configmap(dev, text)) == []
    missing = layouts.render_mig_parted_config([layouts.resolve_layout("all-disabled", p4d, {}, "k")])
    msgs = violations("mig-label-valid", _with_custom_configmap(dev, missing))
    assert len(msgs) == 2 and all("only one the MIG manager reads" in m for m in msgs)
    overfull = ("version: v1\nmig-configs:\n  all-balanced:\n    - devices: all\n      mig-enabled: true\n"
                "      mig-devices: {\"3g.20gb\": 3}\n  all-1g.5gb:\n    - devices: all\n      mig-enabled: true\n"
                "      mig-devices: {\"1g.5gb\": 7}\n")
    [msg] = violations("mig-label-valid", _with_custom_configmap(dev, overfull))
    assert "all-balanced" in msg and "3g.20gb" in msg


def test_mig_strategy_consistent(dev):
    single = edit(dev, "kubernetes:helm.sh/v3:Release", "gpu-dev-gpu-operator",
                  lambda p: p["values"]["mig"].update(strategy="single"))
    [msg] = violations("mig-strategy-consistent", single)
    assert "all-balanced" in msg and "single" in msg  # all-1g.5gb (one profile everywhere) is fine under single
    off = edit(dev, "kubernetes:helm.sh/v3:Release", "gpu-dev-gpu-operator",
               lambda p: p["values"]["migManager"].update(enabled=False))
    assert len(violations("mig-strategy-consistent", off)) == 2
    # Leaving mig.strategy out means the chart's default, single.
    unset = edit(dev, "kubernetes:helm.sh/v3:Release", "gpu-dev-gpu-operator", lambda p: p["values"].pop("mig"))
    assert violations("mig-strategy-consistent", unset) == violations("mig-strategy-consistent", single)


def test_every_mig_nodepool_has_its_overlay(dev):
    without = [r for r in dev if r.type != rules.OVERLAY_TYPE]
    [msg] = violations("mig-nodepool-overlay", without)
    assert "NodePool p4d-small" in msg and "nvidia.com/mig-1g.5gb" in msg
    wrong = edit(dev, rules.OVERLAY_TYPE, None, lambda p: p["spec"]["capacity"].update({"nvidia.com/mig-1g.5gb": "8"}))
    [msg] = violations("mig-nodepool-overlay", wrong)
    assert "=8, the node advertises 56" in msg
    other_pool = edit(dev, rules.OVERLAY_TYPE, None, lambda p: p["spec"]["requirements"][0].update(values=["other"]))
    assert violations("mig-nodepool-overlay", other_pool)
    gate_off = edit(dev, "kubernetes:helm.sh/v3:Release", "gpu-dev-karpenter",
                    lambda p: p["values"]["settings"]["featureGates"].update(nodeOverlay=False))
    [msg] = violations("mig-nodepool-overlay", gate_off)
    assert "featureGates.nodeOverlay" in msg


def test_no_whole_gpu_requests_on_mixed_mig_pools(dev):
    def whole_gpu(p):
        c = p["spec"]["template"]["spec"]["containers"][0]["resources"]
        for k in ("requests", "limits"):
            c[k].pop("nvidia.com/mig-1g.5gb")
            c[k]["nvidia.com/gpu"] = "1"

    bad = edit(dev, "kubernetes:apps/v1:Deployment", "gpu-dev-workloads-slice-1g", whole_gpu)
    [msg] = violations("no-whole-gpu-on-mixed-mig", bad)
    assert "nvidia.com/gpu: 0" in msg and "p4d-balanced" in msg


def test_max_gpu_nodes(dev):
    # dev: node group maxSize 3 + NodePool limits admitting 4 p4d = 7.
    assert violations("max-gpu-nodes", dev, rules.Context(max_gpu_nodes=7)) == []
    [msg] = violations("max-gpu-nodes", dev, rules.Context(max_gpu_nodes=6))
    assert "7 GPU nodes (p4d-balanced: 3, p4d-small: 4)" in msg
    [msg] = violations("max-gpu-nodes", dev, rules.Context(max_gpu_nodes=None))
    assert "states no ceiling" in msg
    unbounded = edit(dev, rules.NODEPOOL_TYPE, None, lambda p: p["spec"].pop("limits"))
    assert "no spec.limits" in violations("max-gpu-nodes", unbounded, rules.Context(max_gpu_nodes=100))[0]
    uncounted = edit(dev, rules.NODEPOOL_TYPE, None, lambda p: p["spec"]["template"]["spec"]["requirements"][0].update(
        values=["p4d.24xlarge", "p3dn.24xlarge"]))
    assert "cannot be counted" in violations("max-gpu-nodes", uncounted, rules.Context(max_gpu_nodes=100))[0]


@pytest.mark.slow
def test_cost_guard_counts_what_mixed_size_limits_admit(dev_runs):
    """A NodePool of g6.xlarge and g6.12xlarge with maxNodes 1 gets limits for one g6.12xlarge (4 GPUs,
    48 vCPU, 192Gi), which admit four g6.xlarge: the graph may run more GPU nodes than maxNodes says."""
    from conftest import dev_config, run
    from tools.checks import policy_resources

    cfg = dev_config()
    cfg["gpu-slicing:karpenter"]["nodePools"] = [{"name": "l4", "instanceTypes": ["g6.xlarge", "g6.12xlarge"],
                                                  "maxNodes": 1}]
    cfg["gpu-slicing:workloads"] = cfg["gpu-slicing:workloads"][:3]
    cfg["gpu-slicing:maxGpuNodes"] = 4  # node group 3 + maxNodes 1 would pass a naive count
    from gpu_slicing.stack import parse_config
    from gpu_slicing.errors import ConfigError
    with pytest.raises(ConfigError, match="l4: 4"):  # the config check counts what the limits admit too
        parse_config(cfg)
    cfg["gpu-slicing:maxGpuNodes"] = 7
    r = run(cfg)
    assert r.error is None, r.error
    [msg] = violations("max-gpu-nodes", policy_resources([x.to_json() for x in r.registrations]),
                       rules.Context(max_gpu_nodes=4))
    assert "7 GPU nodes (p4d-balanced: 3, l4: 4)" in msg


def test_nodepool_bound_counts_its_smallest_instance_type():
    pool = rules.pool_of(res(rules.NODEPOOL_TYPE, "np", {"metadata": {"name": "np"}, "spec": {
        "template": {"spec": {"requirements": [
            {"key": rules.INSTANCE_TYPE_LABEL, "operator": "In", "values": ["g5.xlarge", "g5.48xlarge"]}]}},
        "limits": {"nvidia.com/gpu": "16", "cpu": "384", "memory": "1536Gi"}}}))
    # 2 x g5.48xlarge (8 GPUs, 192 vCPU) fit the limits, but so do 16 x g5.xlarge (1 GPU, 4 vCPU, 16 GiB).
    assert rules.nodepool_max_nodes(pool) == (16, "")
    from gpu_slicing.karpenter import quantity
    assert quantity("96000m") == 96 and quantity("1Ti") == 2 ** 40 and quantity("x") is None


def test_only_the_cost_guard_takes_pack_config():
    with_config = {name for name, p in POLICY.items() if getattr(p, "config_schema", None) is not None}
    assert with_config == {"max-gpu-nodes"}
    assert POLICY["max-gpu-nodes"].config_schema.properties["maxGpuNodes"]["type"] == "integer"
