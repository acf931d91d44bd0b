"""The destroy order, derived from the recorded graph as Pulumi derives it: a resource is deleted before
everything it depends on (its dependencies, its provider and its parent). docs/facts.md §5: Karpenter-launched
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


POOL_LABEL = "gpu-slicing/pool"
NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
OVERLAY = "kubernetes:karpenter.sh/v1alpha1:NodeOverlay"
NODECLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
WORKLOAD_TYPES = ("kubernetes:apps/v1:Deployment", "kubernetes:batch/v1:Job")
CLAIM_TYPES = ("kubernetes:resource.k8s.io/v1:ResourceClaimTemplate", "kubernetes:resource.k8s.io/v1:ResourceClaim")
DRA_RELEASE = "dra-driver-nvidia-gpu"


def pool_resources(run) -> dict[str, list]:
    """Pool name -> the resources its nodes come from, read from the recorded inputs: the managed node
    group labelled with it, or the NodePool and the NodeOverlays that select it."""
    out: dict[str, list] = {}
    for r in run.registrations:
        if r.type == "eks:index:ManagedNodeGroup" and POOL_LABEL in (r.inputs.get("labels") or {}):
            out.setdefault(r.inputs["labels"][POOL_LABEL], []).append(r)
        elif r.type == NODEPOOL:
            out.setdefault(r.inputs["spec"]["template"]["metadata"]["labels"][POOL_LABEL], []).append(r)
        elif r.type == OVERLAY:
            for req in r.inputs["spec"]["requirements"]:
                if req["key"] == "karpenter.sh/nodepool":
                    for name in req["values"]:
                        out.setdefault(name, []).append(r)
    return out


def relations(run) -> list[tuple[str, list, list]]:
    """docs/facts.md §5's order as (what, deleted first, deleted after) over registrations: a pool's pods go before
    the pool (its nodes), a NodePool before its EC2NodeClass, then Karpenter, the system node group, the
    cluster and the network."""
    regs = run.registrations
    pick = lambda f: [r for r in regs if f(r)]  # noqa: E731
    karpenter = _in_component(run, "gpu-slicing:karpenter:Karpenter")
    pools = pool_resources(run)
    out = []
    for w in pick(lambda r: r.type in WORKLOAD_TYPES):
        pool = w.inputs["spec"]["template"]["spec"]["nodeSelector"][POOL_LABEL]
        out.append((f"workload {w.name} before its pool {pool}", [w], pools[pool]))
    # DRA (docs/facts.md §12, kubernetes/kubernetes#129402): a pod holding a claim goes before its claim template and
    # the DRA driver, and the templates before the driver (whose chart owns their DeviceClasses).
    out += _dra_relations(regs)
    classes = {r.inputs["metadata"]["name"]: r for r in pick(lambda r: r.type == NODECLASS)}
    for np_ in pick(lambda r: r.type == NODEPOOL):
        cls = classes[np_.inputs["spec"]["template"]["spec"]["nodeClassRef"]["name"]]
        out.append((f"NodePool {np_.name} before its EC2NodeClass", [np_], [cls]))
    chain = [
        ("EC2NodeClass", list(classes.values())),
        ("Karpenter release", pick(lambda r: karpenter(r) and r.type == "kubernetes:helm.sh/v3:Release")),
        ("Karpenter IAM/SQS/rules/access entry/Pod Identity", pick(lambda r: karpenter(r) and r.type.startswith("aws:"))),
        ("system node group", pick(lambda r: r.type == "eks:index:ManagedNodeGroup" and r.name.endswith("-system"))),
        ("cluster", pick(lambda r: r.type == "eks:index:Cluster")),
        ("network", pick(lambda r: r.type in ("aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet"))),
    ]
    out += [(f"{a} before {b}", xs, ys) for (a, xs), (b, ys) in zip(chain, chain[1:])]
    out.append(("GPU node groups before the cluster",
                pick(lambda r: r.type == "eks:index:ManagedNodeGroup" and not r.name.endswith("-system")),
                chain[4][1]))
    return out


def _dra_relations(regs) -> list[tuple[str, list, list]]:
    pick = lambda f: [r for r in regs if f(r)]  # noqa: E731
    claims = {r.inputs["metadata"]["name"]: r for r in pick(lambda r: r.type in CLAIM_TYPES)}
    driver = pick(lambda r: r.type == "kubernetes:helm.sh/v3:Release" and r.inputs.get("name") == DRA_RELEASE)
    out = []
    for w in pick(lambda r: r.type in WORKLOAD_TYPES):
        for ref in w.inputs["spec"]["template"]["spec"].get("resourceClaims") or []:
            claim = claims[ref.get("resourceClaimTemplateName") or ref["resourceClaimName"]]
            out.append((f"workload {w.name} before its claim and the DRA driver", [w], [claim, *driver]))
    return out + [(f"claim {c.name} before the DRA driver", [c], driver) for c in claims.values()]


def tiers(run) -> list[tuple[str, list]]:
    """The global part of the order (the Karpenter side down to the network), as tiers."""
    regs = run.registrations
    karpenter = _in_component(run, "gpu-slicing:karpenter:Karpenter")
    pick = lambda f: [r for r in regs if f(r)]  # noqa: E731
    return [
        ("NodeOverlay/NodePool", pick(lambda r: r.type in (NODEPOOL, OVERLAY))),
        ("EC2NodeClass", pick(lambda r: r.type == NODECLASS)),
        ("Karpenter release", pick(lambda r: karpenter(r) and r.type == "kubernetes:helm.sh/v3:Release")),
        ("Karpenter IAM/SQS/rules/access entry/Pod Identity", pick(lambda r: karpenter(r) and r.type.startswith("aws:"))),
        ("system node group", pick(lambda r: r.type == "eks:index:ManagedNodeGroup" and r.name.endswith("-system"))),
        ("cluster", pick(lambda r: r.type == "eks:index:Cluster")),
        ("network", pick(lambda r: r.type in ("aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet"))),
    ]


def order_violations(run, only: str = "") -> list[str]:
    """Every relation (whose name contains `only`) whose first members are not all deleted before all of
    its second members."""
    graph = edges(run.registrations)
    out = []
    for what, first, then in relations(run) if not only else [x for x in relations(run) if only in x[0]]:
        assert first and then, what
        for x in first:
            after = closure(graph, x.urn)
            out += [f"{what}: {x.name} is not deleted before {y.name}" for y in then if y.urn not in after]
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
def test_every_workload_outlives_nothing_it_runs_on(dev_runs, mode):
    """Each workload is deleted before the GPU Operator and its own pool, and waits for nothing else GPU:
    one pool failing (or `--target`ed) leaves the other pools' workloads alone."""
    r = dev_runs[mode]
    graph = edges(r.registrations)
    operator = r.one("kubernetes:helm.sh/v3:Release", "gpu-dev-gpu-operator").urn
    pools = pool_resources(r)
    for d in r.by_type("kubernetes:apps/v1:Deployment"):
        after = closure(graph, d.urn)
        own = d.inputs["spec"]["template"]["spec"]["nodeSelector"][POOL_LABEL]
        assert operator in after
        for pool, members in pools.items():
            assert all((m.urn in after) == (pool == own) for m in members), (d.name, pool)


def test_the_check_catches_a_missing_edge(dev_runs):
    """Drop the NodePool's and NodeOverlay's edges to their EC2NodeClass, or a Deployment's to its NodePool,
    and the order check must fail."""
    import copy

    r = copy.deepcopy(dev_runs["preview"])
    nodeclass = r.one("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass").urn
    for x in r.by_type("kubernetes:karpenter.sh/v1:NodePool") + r.by_type("kubernetes:karpenter.sh/v1alpha1:NodeOverlay"):
        x.dependencies = [d for d in x.dependencies if d != nodeclass]
    assert any("NodePool" in v and "EC2NodeClass" in v for v in order_violations(r))
    r = copy.deepcopy(dev_runs["preview"])
    guide = r.one("kubernetes:apps/v1:Deployment", "gpu-dev-workloads-guide-1g")
    guide.dependencies = [d for d in guide.dependencies if "karpenter.sh" not in d]
    assert any(v.startswith("workload gpu-dev-workloads-guide-1g before its pool p4d-small") for v in order_violations(r))


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


@pytest.mark.slow
def test_dra_pods_go_before_their_claims_and_the_driver():
    """The example's DRA workloads (and the Job) are deleted before their claim templates, and those before
    the driver; dropping a Deployment's edge to its template is caught."""

    import yaml

    from conftest import ROOT, run

    r = run(yaml.safe_load((ROOT / "examples" / "Pulumi.dra.yaml").read_text())["config"])
    assert r.error is None, r.error
    regs = r.registrations
    # the example has no Karpenter: only the DRA relations and the pools' own
    dra = [(what, first, then) for what, first, then in _dra_relations(regs)]
    assert len(dra) == 4 + 3 and all(first and then for _, first, then in dra)  # 3 Deployments + the Job; 3 templates
    assert order_violations(r, only="claim") == []
    d = r.one("kubernetes:apps/v1:Deployment", "gpu-dra-workloads-h100-40gb")
    d.dependencies = [x for x in d.dependencies if "ResourceClaimTemplate" not in x and "dra-driver" not in x]
    assert any(v.startswith("workload gpu-dra-workloads-h100-40gb before its claim")
               for v in order_violations(r, only="claim"))
