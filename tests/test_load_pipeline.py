"""The load pipeline resolves a stack once: a trace of `load_stack` (sys.setprofile) enters the cross-key rules
(`gpu_slicing.validate`) once, resolves each workload once, and building a workload's Deployment and
verification Job from the resolved stack derives no name, resource or dependency again. The expected workloads,
names and waits are read off the stack files by hand (the comments say how)."""
from __future__ import annotations

import functools
import json
import sys
from collections import Counter
from typing import Any, Callable, NamedTuple

import pytest

from conftest import ROOT
from gpu_slicing import dra, workloads
from gpu_slicing import stack as stack_module
from gpu_slicing.errors import ConfigError
from gpu_slicing.stack_file import load_stack_file

DEV = ROOT / "Pulumi.dev.yaml"
DRA = ROOT / "examples" / "Pulumi.dra.yaml"
# What derives a workload's resource, names or waits, or resolves and checks a pool or a workload.
DERIVES = {("gpu_slicing.workloads", f) for f in ("resolve", "resource", "count", "verification", "verify_job_name",
                                                   "node_generation")} | {
    ("gpu_slicing.dra", f) for f in ("claim_resource", "workload_rule")} | {
    ("gpu_slicing.pools", f) for f in ("resolve_each_pool", "_pool")}


class Call(NamedTuple):
    """One call into `gpu_slicing`: the function called, and the function (and its module) that called it."""

    module: str
    function: str
    caller: str  # the calling module
    caller_function: str


def traced(fn: Callable[[], Any]) -> tuple[Any, list[Call]]:
    """`fn()` and every call it makes into the project."""
    calls: list[Call] = []

    def profile(frame, event, arg) -> None:
        if event == "call":
            module = frame.f_globals.get("__name__", "")
            if module.startswith("gpu_slicing"):
                back = frame.f_back
                calls.append(Call(module, frame.f_code.co_name, back.f_globals.get("__name__", "") if back else "",
                                  back.f_code.co_name if back else ""))

    sys.setprofile(profile)
    try:
        result = fn()
    finally:
        sys.setprofile(None)
    return result, calls


def load_uncached(path) -> tuple[stack_module.Stack, list[Call]]:
    """One whole load of the stack file, past the per-config cache (so the trace sees every stage)."""
    text = json.dumps(load_stack_file(path), default=str)
    stack_module._shape.cache_clear()  # the shape step is kept per config too
    return traced(lambda: stack_module._load.__wrapped__(text))


@pytest.mark.traces
def test_a_load_enters_the_cross_key_rules_once_from_the_pipeline():
    st, calls = load_uncached(DEV)
    entries = [(f, caller) for module, f, caller, _ in calls if module == "gpu_slicing.validate"
               and caller != "gpu_slicing.validate"]
    assert entries == [("check", "gpu_slicing.stack")]
    # the pipeline's own stages, each called once from load_stack: the shape, then the rules (which resolve)
    stages = [(module, f) for module, f, caller, _ in calls if caller == "gpu_slicing.stack"
              and module != "gpu_slicing.stack"]
    assert stages == [("gpu_slicing.config", "parse_shape"), ("gpu_slicing.validate", "check")]
    assert len(st.workloads) == 4  # Pulumi.dev.yaml lists four workloads


@pytest.mark.traces
def test_each_workload_is_resolved_once_and_its_resource_derived_once():
    for path, n, claims in ((DEV, 4, 0), (DRA, 4, 3)):  # the DRA example: three workloads on its dra pool
        _, calls = load_uncached(path)
        made = Counter((c.module, c.function) for c in calls)
        assert made["gpu_slicing.workloads", "resolve"] == n, path
        assert made["gpu_slicing.workloads", "resource"] == n, path
        assert made["gpu_slicing.workloads", "verification"] == 1, path
        assert made["gpu_slicing.dra", "claim_name"] == claims, path


def test_the_dev_stacks_workloads_as_resolved():
    st = stack_module.load_stack(load_stack_file(DEV))
    by_name = {w.name: w for w in st.workloads}
    assert list(by_name) == ["slice-1g", "slice-2g", "slice-3g", "guide-1g"]
    assert {n: (w.pool.name, w.resource, w.count, w.claim) for n, w in by_name.items()} == {
        # migStrategy mixed: a profile is requested as nvidia.com/mig-<profile>, one per pod
        "slice-1g": ("p4d-balanced", "nvidia.com/mig-1g.5gb", 1, None),
        "slice-2g": ("p4d-balanced", "nvidia.com/mig-2g.10gb", 1, None),
        "slice-3g": ("p4d-balanced", "nvidia.com/mig-3g.20gb", 1, None),
        "guide-1g": ("p4d-small", "nvidia.com/mig-1g.5gb", 1, None)}
    # the first workload leads the one verification Job (named verify-mig-slice-<token of its pool's
    # generation>); only the Deployments asking for its slice on its pool wait for it
    job = by_name["slice-1g"].verify_job
    assert job is not None and job.startswith("verify-mig-slice-")
    assert [w.name for w in st.workloads if w.verify_job] == ["slice-1g"]
    assert {n: w.waits_for for n, w in by_name.items()} == {
        "slice-1g": (job,), "slice-2g": (), "slice-3g": (), "guide-1g": ()}
    assert [(g.name, g.config.instance_type, g.pool.name) for g in st.node_groups] == [
        ("p4d-balanced", "p4d.24xlarge", "p4d-balanced")]
    assert [(p.name, p.pool.kind) for p in st.node_pools] == [("p4d-small", "nodePool")]


def test_the_dra_examples_claims_and_verification():
    st = stack_module.load_stack(load_stack_file(DRA))
    by_name = {w.name: w for w in st.workloads}
    # a claim per workload on the dra pool, named <workload>-slice; none on the device plugin's pool
    assert {n: w.claim for n, w in by_name.items()} == {
        "h100-1g": "h100-1g-slice", "h100-2g-or-3g": "h100-2g-or-3g-slice", "h100-40gb": "h100-40gb-slice",
        "a100-1g": None}
    job = by_name["h100-1g"].verify_job
    assert job is not None and [w.name for w in st.workloads if w.verify_job] == ["h100-1g"]
    # the others ask for other slices (2g.20gb, 3g.40gb) or sit on the other pool: they do not wait
    assert {n: w.waits_for for n, w in by_name.items()} == {
        "h100-1g": (job,), "h100-2g-or-3g": (), "h100-40gb": (), "a100-1g": ()}
    assert st.uses_dra


@pytest.mark.traces
@pytest.mark.parametrize("path", [DEV, DRA], ids=["dev", "dra"])
def test_building_the_kubernetes_objects_derives_nothing_again(path):
    st = stack_module.load_stack(load_stack_file(path))

    def build() -> list[dict]:
        return [*(workloads.deployment(w) for w in st.workloads),
                *(workloads.verify_job(w) for w in st.workloads if w.verify_job)]

    objects, calls = traced(build)
    assert {(c.module, c.function) for c in calls} & DERIVES == set()
    assert not [c for c in calls if c[0] == "gpu_slicing.validate"]
    names = [o["metadata"]["name"] for o in objects]
    assert names == [w.name for w in st.workloads] + [w.verify_job for w in st.workloads if w.verify_job]


def _claim_namers(calls: list[Call]) -> list[tuple[str, str]]:
    """Who derived a claim's name (`gpu_slicing.dra.claim_name`), once per derivation."""
    return [(c.caller, c.caller_function) for c in calls if (c.module, c.function) == ("gpu_slicing.dra", "claim_name")]


# examples/Pulumi.dra.yaml: h100-1g, h100-2g-or-3g and h100-40gb on its dra pool, a100-1g on the device plugin's
DRA_CLAIMS = 3


@pytest.mark.traces
def test_a_claim_is_named_once_per_dra_workload_by_resolution_alone():
    """A DRA workload's claim is named in one place: `workloads.resolve` derives it once per load, and the claim
    object and the pods' references to it are built from `Workload.claim`. A second derivation could name the
    template one thing and the pods' reference another (every pod Pending on a claim that does not exist)."""
    st, calls = load_uncached(DRA)

    def build() -> list[dict]:
        return [*(dra.claim_template(w.config, w.pool, workloads.WORKLOADS_NAMESPACE, claim=w.claim)
                  for w in st.workloads if w.claim is not None),
                *(workloads.deployment(w) for w in st.workloads),
                *(workloads.verify_job(w) for w in st.workloads if w.verify_job)]

    objects, built = traced(build)
    assert _claim_namers(calls + built) == [("gpu_slicing.workloads", "resolve")] * DRA_CLAIMS
    # each pod refers to its own workload's claim object by the name that object carries
    claims = {o["metadata"]["labels"]["app.kubernetes.io/name"]: o["metadata"]["name"] for o in objects[:DRA_CLAIMS]}
    refs = {o["metadata"]["name"]: o["spec"]["template"]["spec"].get("resourceClaims") for o in objects[DRA_CLAIMS:]}
    assert refs == {"h100-1g": [{"name": "slice", "resourceClaimTemplateName": claims["h100-1g"]}],
                    "h100-2g-or-3g": [{"name": "slice", "resourceClaimTemplateName": claims["h100-2g-or-3g"]}],
                    "h100-40gb": [{"name": "slice", "resourceClaimTemplateName": claims["h100-40gb"]}],
                    "a100-1g": None,
                    st.workloads[0].verify_job: [{"name": "slice", "resourceClaimTemplateName": claims["h100-1g"]}]}


@pytest.mark.slow  # the whole program on the DRA example, then its claims' CEL: about three seconds
@pytest.mark.traces
def test_a_plan_names_each_claim_once_in_resolution_and_nowhere_else(monkeypatch):
    """The whole plan path (the program with its components, then the `dra.claims` check's simulator) loads the
    stack once and reads each claim's name from the resolved stack: the components and the simulator derive none. (Who calls `claim_name`
    is recorded by a wrapper, not the profiler: the program under a profiler takes several times as long.)"""
    from tools import checks
    from tools.harness import run_program

    namers: list[tuple[str, str]] = []
    loads: list[str] = []
    real_name, real_load = dra.claim_name, stack_module._load.__wrapped__

    def claim_name(w):
        caller = sys._getframe(1)
        namers.append((caller.f_globals["__name__"], caller.f_code.co_name))
        return real_name(w)

    def load(text):
        loads.append(text)
        return real_load(text)

    monkeypatch.setattr(dra, "claim_name", claim_name)
    monkeypatch.setattr(stack_module, "_load", functools.lru_cache(maxsize=8)(load))  # past what earlier tests kept
    monkeypatch.setattr(stack_module, "_shape", functools.lru_cache(maxsize=8)(stack_module._shape.__wrapped__))
    config = load_stack_file(DRA)
    run = run_program(config)
    assert run.error is None
    findings = list(checks.dra_claims(config, [r.to_json() for r in run.registrations]))
    assert [f["severity"] for f in findings] == ["info"] and findings[0]["message"].startswith("3 DRA claims")
    # one load: the program's (the config as the engine gives it) is the one the check reads (the stack file's)
    assert len(loads) == 1
    assert namers == [("gpu_slicing.workloads", "resolve")] * DRA_CLAIMS


def test_a_workload_that_leads_no_job_has_none_built():
    st = stack_module.load_stack(load_stack_file(DEV))
    follower = next(w for w in st.workloads if w.name == "slice-2g")
    try:
        workloads.verify_job(follower)
    except ValueError as e:
        assert "slice-2g leads no verification Job" in str(e)
    else:
        raise AssertionError("a Job for a workload that leads none")


def test_the_wiring_passes_every_component_its_args_by_keyword():
    """`__main__.py` names what each component gets (`GpuNodeGroupArgs(node_group=..., cluster=...)`): a
    positional argument would silently take another field's place when an Args dataclass gains or reorders one."""
    import ast

    tree = ast.parse((ROOT / "__main__.py").read_text())
    args_calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                  and n.func.id.endswith("Args")]
    assert len(args_calls) == 9  # Network, Cluster, GpuNodeGroup, Karpenter, GpuNodePool, GpuOperator, DraDriver,
    # SampleWorkloads, Observability
    assert [c.func.id for c in args_calls if c.args] == []


@pytest.mark.slow  # three stacks loaded and a dashboard built: about a second on its own
def test_the_gpu_operator_and_monitoring_as_resolved():
    """What the GPU Operator and monitoring components build from, without the whole config: the dev stack has
    MIG pools under named layouts, no sharing and monitoring on; the time-slicing stack shares whole GPUs; the
    custom-layout stack defines its own layout."""
    dev = stack_module.load_stack(load_stack_file(DEV))
    op = dev.gpu_operator
    assert (op.settings.version, op.values["mig"]["strategy"]) == ("v26.7.0", "mixed")  # Pulumi.dev.yaml's
    assert op.mig_parted is None and op.device_plugin is None  # the MIG manager's and the plugin's own
    assert op.exporter_csv is not None and "DCGM_FI_PROF_GR_ENGINE_ACTIVE" in op.exporter_csv  # per-slice activity
    assert dev.monitoring.settings.prometheus_operator == "install"
    assert dev.monitoring.dashboard["metadata"]["name"] == "gpu-slicing-dashboard"
    shared = stack_module.load_stack(load_stack_file(ROOT / "tests/stacks/good/time-slicing-g5-g6.yaml"))
    assert shared.gpu_operator.device_plugin and shared.gpu_operator.mig_parted is None
    custom = stack_module.load_stack(load_stack_file(ROOT / "tests/stacks/good/p4d-p5-custom-layout.yaml"))
    assert custom.gpu_operator.mig_parted and "mig-configs" in custom.gpu_operator.mig_parted


@pytest.mark.slow  # the advisor's import (numpy) and two loads: over a second on its own
def test_the_advisor_reads_a_stack_through_the_partial_mode():
    """The advisor takes the demand of a stack that does not plan yet (a profile its pool's layout lacks is a rule
    `make plan` refuses), but refuses a key or type as `make plan` does, under the same key."""
    from gpu_slicing import advisor
    from gpu_slicing.errors import ConfigError

    raw = load_stack_file(DEV)
    moved = {**raw, "gpu-slicing:workloads": [dict(w) for w in raw["gpu-slicing:workloads"]]}
    moved["gpu-slicing:workloads"][2]["pool"] = "p4d-small"  # slice-3g (3g.20gb) onto all-1g.5gb
    with pytest.raises(ConfigError) as refused:
        stack_module.load_stack(moved)
    assert refused.value.key == "gpu-slicing:workloads[2].profile"
    (spec,) = advisor.demands_from_stack(moved)
    # Pulumi.dev.yaml: 16 + 56 x 1g.5gb, 8 x 2g.10gb, 8 x 3g.20gb, all on p4d.24xlarge pools
    assert (spec.instance_type, dict(spec.slices)) == ("p4d.24xlarge", {"1g.5gb": 72, "2g.10gb": 8, "3g.20gb": 8})
    typo = {**raw, "gpu-slicing:workloads": [{**raw["gpu-slicing:workloads"][0], "replica": 3}]}  # not replicas
    keys = []
    for load in (stack_module.load_stack, advisor.demands_from_stack):
        with pytest.raises(ConfigError) as e:
            load(typo)
        keys.append(e.value.key)
    assert keys == ["gpu-slicing:workloads[0].replica"] * 2


def _small(**keys) -> dict:
    ns = "gpu-slicing:"
    base = {"maxGpuNodes": 20, "cluster": {"name": "t", "publicAccessCidrs": ["0.0.0.0/0"]},
            "gpuOperator": {"migStrategy": "mixed"}}
    return {ns + k: v for k, v in {**base, **keys}.items()}


P4D = {"name": "a", "instanceType": "p4d.24xlarge", "migLayout": "all-balanced"}
G5 = {"name": "b", "instanceType": "g5.12xlarge"}
NODEPOOL = {"name": "c", "instanceTypes": ["g6.xlarge", "g6.2xlarge"], "maxNodes": 2}


def test_a_loaded_stack_pairs_each_pool_block_with_its_pool_node_groups_first():
    st = stack_module.load_stack(_small(nodeGroups=[P4D, G5], karpenter={"enabled": True, "nodePools": [NODEPOOL]}))
    assert [p.name for p in st.pools] == ["a", "b", "c"]
    assert [(g.name, g.config.instance_type, g.pool.kind) for g in st.node_groups] == [
        ("a", "p4d.24xlarge", "nodeGroup"), ("b", "g5.12xlarge", "nodeGroup")]
    assert [(p.name, p.config.max_nodes, p.pool.kind) for p in st.node_pools] == [("c", 2, "nodePool")]
    assert st.pool("b").largest.name == "g5.12xlarge"
    # every type a pool may launch, node groups first (the VPC's zones are chosen for them)
    assert st.gpu_instance_types == ["p4d.24xlarge", "g5.12xlarge", "g6.xlarge", "g6.2xlarge"]
    assert not st.uses_dra  # no pool hands out devices through the DRA driver
    assert stack_module.parse_config(_small(nodeGroups=[P4D])).node_groups[0].name == "a"


def test_the_shape_alone_checks_no_rule_across_keys():
    raw = _small(nodeGroups=[{**P4D, "minSize": 2, "desiredSize": 1}])  # minSize > desiredSize: a cross-key rule
    assert stack_module.load_shape(raw).node_groups[0].min_size == 2
    with pytest.raises(ConfigError) as e:
        stack_module.load_stack(raw)
    assert e.value.key == "gpu-slicing:nodeGroups[0]"


def test_the_operator_gets_configmaps_of_our_own_only_where_needed():
    mig = stack_module.load_stack(_small(nodeGroups=[P4D])).gpu_operator
    # named layouts: the MIG manager's own config; no sharing: the plugin's defaults; MIG: our metrics list
    assert mig.mig_parted is None and mig.device_plugin is None and mig.exporter_csv is not None
    assert mig.settings.mig_strategy == "mixed" and mig.values["mig"]["strategy"] == "mixed"
    shared = {**G5, "sharing": {"timeSlicing": {"replicas": 4}}}
    ts = stack_module.load_stack(_small(nodeGroups=[shared])).gpu_operator
    assert ts.device_plugin and ts.mig_parted is None
    assert ts.exporter_csv is None  # no MIG, no DRA, monitoring off: dcgm-exporter's default list
    old = [{"devices": "all", "mig-enabled": True, "mig-devices": {"1g.5gb": 7}}]
    kept = stack_module.load_stack(_small(nodeGroups=[G5], gpuOperator={"migStrategy": "mixed",
                                                                     "retainedMigLayouts": {"old-1g": old}}))
    assert kept.gpu_operator.mig_parted and "old-1g" in kept.gpu_operator.mig_parted  # kept for live nodes


def test_monitoring_is_resolved_from_its_own_settings():
    mon = stack_module.load_stack(_small(nodeGroups=[P4D], observability={"enabled": True})).monitoring
    assert mon.settings.enabled
    assert mon.dashboard["metadata"]["name"] == "gpu-slicing-dashboard"
    assert mon.rule["kind"] == "PrometheusRule"


@pytest.mark.parametrize("load", [lambda raw: stack_module.load_stack(raw).config, stack_module.load_shape],
                         ids=["stack", "shape"])
def test_a_value_yaml_reads_as_a_date_is_read_as_its_text(load):
    import datetime

    # `name: 2026-01-01` unquoted: YAML gives a date; the load reads it as the text it was, never crashes
    raw = _small(nodeGroups=[P4D], cluster={"name": datetime.date(2026, 1, 1), "publicAccessCidrs": ["0.0.0.0/0"]})
    assert load(raw).cluster.name == "2026-01-01"


def test_the_resolved_alert_rule_covers_the_dra_pools_only_where_there_are_some():
    """The monitoring a stack resolves carries the alerts for claim-holding pods exactly when a pool hands out
    slices through DRA (kube-state-metrics' kube_pod_resourceclaim_info has nothing to say otherwise)."""
    def alerts(path):
        rule = stack_module.load_stack(load_stack_file(path)).monitoring.rule
        return {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}

    dra, dev = alerts(DRA), alerts(DEV)
    assert {"GpuSlicingPodsPendingForDraClaims", "GpuSlicingDraDevicesUnallocated"} <= dra
    assert not any("Dra" in a for a in dev) and dev < dra


def test_the_stack_files_config_and_the_engines_are_one_load():
    """The Pulumi engine hands the program every config value as a string (a structured or numeric one as its
    JSON text); the offline plan's checks read the stack file's values. Both mean the same stack, so they are one
    load, kept once: the checks judge the very Stack the program built from. A config that differs in one value
    is another load."""
    raw = load_stack_file(DEV)
    engine = {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}
    assert any(not isinstance(v, str) for v in raw.values())  # the two forms differ as data
    assert stack_module.load_stack(raw) is stack_module.load_stack(engine)
    assert stack_module.load_shape(raw) is stack_module.load_shape(engine)
    other = {**raw, "gpu-slicing:maxGpuNodes": raw["gpu-slicing:maxGpuNodes"] + 1}
    assert stack_module.load_stack(other) is not stack_module.load_stack(raw)
    assert stack_module.load_stack(other).config.max_gpu_nodes == raw["gpu-slicing:maxGpuNodes"] + 1
