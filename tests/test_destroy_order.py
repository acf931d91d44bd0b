"""The destroy order, derived from the recorded graph as Pulumi derives it: a resource is deleted before
everything it depends on (its dependencies, its provider and its parent). FACTS 5: Karpenter-launched
nodes are invisible to Pulumi, so workloads -> NodeOverlay/NodePool -> EC2NodeClass -> Karpenter release ->
its IAM/SQS/rules/access entry/Pod Identity -> system node group -> cluster -> network, or p4d instances
leak."""
from __future__ import annotations

from typing import Callable, Iterable

import pytest

from conftest import closure, edges

MODES = ["preview", "up"]


def destroy_waves(registrations) -> list[list[str]]:
    """Kahn's algorithm, dependents first: each wave can be deleted once the waves before it are gone."""
    graph = edges(registrations)
    dependents = {u: 0 for u in graph}
    for deps in graph.values():
        for d in deps:
            dependents[d] += 1
    wave = sorted(u for u, n in dependents.items() if n == 0)
    waves, done = [], 0
    while wave:
        waves.append(wave)
        done += len(wave)
        nxt = []
        for u in wave:
            for d in graph[u]:
                dependents[d] -= 1
                if dependents[d] == 0:
                    nxt.append(d)
        wave = sorted(nxt)
    assert done == len(graph), "the dependency graph has a cycle"
    return waves


def _in_component(run, token: str) -> Callable:
    comps = {r.urn for r in run.registrations if r.type == token}
    return lambda r: r.parent in comps


def tiers(run) -> list[tuple[str, list]]:
    """FACTS 5's order as predicates over registrations."""
    regs = run.registrations
    karpenter = _in_component(run, "gpu-slicing:karpenter:Karpenter")
    workloads = _in_component(run, "gpu-slicing:workloads:SampleWorkloads")
    pick = lambda f: [r for r in regs if f(r)]  # noqa: E731
    return [
        ("workloads", pick(lambda r: workloads(r) and r.custom)),
        ("NodeOverlay/NodePool", pick(lambda r: r.type in ("kubernetes:karpenter.sh/v1:NodePool",
                                                         "kubernetes:karpenter.sh/v1alpha1:NodeOverlay"))),
        ("EC2NodeClass", pick(lambda r: r.type == "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass")),
        ("Karpenter release", pick(lambda r: karpenter(r) and r.type == "kubernetes:helm.sh/v3:Release")),
        ("Karpenter IAM/SQS/rules/access entry/Pod Identity", pick(lambda r: karpenter(r) and r.type.startswith("aws:"))),
        ("system node group", pick(lambda r: r.type == "eks:index:ManagedNodeGroup" and r.name.endswith("-system"))),
        ("cluster", pick(lambda r: r.type == "eks:index:Cluster")),
        ("network", pick(lambda r: r.type in ("aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet"))),
    ]


def order_violations(run) -> list[str]:
    """Pairs of tiers whose members are not all deleted before all members of the next tier."""
    graph = edges(run.registrations)
    out = []
    ts = tiers(run)
    for (name_a, a), (name_b, b) in zip(ts, ts[1:]):
        for x in a:
            after = closure(graph, x.urn)
            out += [f"{name_a} {x.name} is not deleted before {name_b} {y.name}" for y in b if y.urn not in after]
    return out


def wave_of(waves: Iterable[list[str]]) -> dict[str, int]:
    return {u: i for i, wave in enumerate(waves) for u in wave}


@pytest.mark.parametrize("mode", MODES)
def test_every_tier_is_present(dev_runs, mode):
    for name, members in tiers(dev_runs[mode]):
        assert members, name


@pytest.mark.parametrize("mode", MODES)
def test_destroy_order_is_facts_5(dev_runs, mode):
    assert order_violations(dev_runs[mode]) == []


@pytest.mark.parametrize("mode", MODES)
def test_destroy_waves_put_the_tiers_in_order(dev_runs, mode):
    r = dev_runs[mode]
    at = wave_of(destroy_waves(r.registrations))
    spans = [(name, min(at[x.urn] for x in m), max(at[x.urn] for x in m)) for name, m in tiers(r)]
    for (a, _, last_a), (b, first_b, _) in zip(spans, spans[1:]):
        assert last_a < first_b, f"{a} (last wave {last_a}) vs {b} (first wave {first_b})"


@pytest.mark.parametrize("mode", MODES)
def test_gpu_operator_and_node_groups_also_outlive_the_workloads(dev_runs, mode):
    r = dev_runs[mode]
    graph = edges(r.registrations)
    operator = r.one("kubernetes:helm.sh/v3:Release", "gpu-dev-gpu-operator").urn
    for d in r.by_type("kubernetes:apps/v1:Deployment"):
        after = closure(graph, d.urn)
        assert operator in after and r.one("eks:index:ManagedNodeGroup", "gpu-dev-p4d-balanced").urn in after


def test_the_check_catches_a_missing_edge(dev_runs):
    """Drop the NodePool's and NodeOverlay's edges to their EC2NodeClass and the order check must fail."""
    import copy

    r = copy.deepcopy(dev_runs["preview"])
    nodeclass = r.one("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass").urn
    for x in r.by_type("kubernetes:karpenter.sh/v1:NodePool") + r.by_type("kubernetes:karpenter.sh/v1alpha1:NodeOverlay"):
        x.dependencies = [d for d in x.dependencies if d != nodeclass]
    assert any("NodePool" in v and "EC2NodeClass" in v for v in order_violations(r))


@pytest.mark.parametrize("mode", MODES)
def test_egress_outlives_the_cluster(dev_runs, mode):
    """Karpenter drains its nodes on destroy through NAT/routes: they must go after the cluster."""
    r = dev_runs[mode]
    graph = edges(r.registrations)
    after = closure(graph, r.one("eks:index:Cluster").urn)
    egress = [x for x in r.registrations if x.type in (
        "aws:ec2/natGateway:NatGateway", "aws:ec2/routeTable:RouteTable",
        "aws:ec2/routeTableAssociation:RouteTableAssociation", "aws:ec2/internetGateway:InternetGateway")]
    assert egress and [x.name for x in egress if x.urn not in after] == []
