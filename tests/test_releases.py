"""The Helm releases the program installs, as recorded: which chart under which release name in which namespace,
what each waits for (the system nodes it runs on, the namespace and ConfigMaps it reads, the CRDs it needs), that
a failed install is rolled back (`cleanupOnFail`), and that Pulumi waits at least as long as Helm does (or Pulumi
gives up on a release Helm is still installing). Expected names are the charts' own (NVIDIA/gpu-operator,
prometheus-community/kube-prometheus-stack, aws/karpenter-provider-aws) and the dev stack's config."""
from __future__ import annotations

import json
import re

import pytest

MODES = ["preview", "up"]
RELEASE = "kubernetes:helm.sh/v3:Release"
HELM_DEFAULT_TIMEOUT = 300  # seconds: helm install --timeout's default (5m0s)


def _deps(r, reg) -> set[str]:
    return {r.get(u).name for u in reg.dependencies}


def _seconds(d: str) -> int:
    assert d.endswith("m"), d
    return 60 * int(d[:-1])


@pytest.mark.parametrize("mode", MODES)
def test_every_custom_timeout_is_a_duration_pulumi_parses(dev_runs, mode):
    """Pulumi reads custom timeouts as Go durations (time.ParseDuration: a number and a lower-case unit, e.g. 15m):
    anything else fails the operation."""
    timeouts = [(x.name, v) for x in dev_runs[mode].registrations for v in x.options["customTimeouts"].values()]
    assert len(timeouts) > 20
    assert [(n, v) for n, v in timeouts if not re.fullmatch(r"([0-9]+(ns|us|ms|s|m|h))+", v)] == []


@pytest.mark.parametrize("mode", MODES)
def test_pulumi_waits_at_least_as_long_as_helm_for_every_release(dev_runs, mode):
    releases = dev_runs[mode].by_type(RELEASE)
    assert len(releases) == 4
    for rel in releases:
        t = rel.options["customTimeouts"]
        assert set(t) == {"create", "update", "delete"} and t["create"] == t["update"], rel.name
        assert _seconds(t["create"]) >= rel.inputs["timeout"] >= HELM_DEFAULT_TIMEOUT, rel.name


@pytest.mark.parametrize("mode", MODES)
def test_the_gpu_operator_release(dev_runs, mode):
    r = dev_runs[mode]
    comp = r.one("gpu-slicing:gpu:GpuOperator")
    rel = r.one(RELEASE, "gpu-dev-gpu-operator")
    assert rel.parent == comp.urn
    i = rel.inputs
    assert (i["name"], i["chart"], i["version"], i["namespace"]) == ("gpu-operator", "gpu-operator", "v26.7.0",
                                                                     "gpu-operator")
    assert i["cleanupOnFail"] is True
    assert i["timeout"] > HELM_DEFAULT_TIMEOUT  # the operator's own pods pull large images on a fresh system node
    assert [r.get(u).name for u in rel.property_dependencies["namespace"]] == ["gpu-dev-gpu-operator-ns"]
    # on the system nodes; after the ConfigMap its values name; never after a GPU node (its DaemonSets follow them)
    assert _deps(r, rel) == {"gpu-dev-system", "gpu-dev-gpu-operator-ns", "gpu-dev-gpu-operator-dcgm-metrics"}
    assert rel.options["customTimeouts"]["delete"] == "20m"
    csv = r.one("kubernetes:core/v1:ConfigMap", "gpu-dev-gpu-operator-dcgm-metrics")
    assert csv.parent == comp.urn
    assert csv.inputs["metadata"] == {"name": i["values"]["dcgmExporter"]["config"]["name"], "namespace": "gpu-operator"}
    assert [r.get(u).name for u in csv.property_dependencies["metadata"]] == ["gpu-dev-gpu-operator-ns"]
    # the dev stack's pools use NVIDIA's named layouts and no time-slicing: no ConfigMap of ours for either
    assert [x.name for x in r.by_type("kubernetes:core/v1:ConfigMap") if x.parent == comp.urn] == [csv.name]
    ns = r.one("kubernetes:core/v1:Namespace", "gpu-dev-gpu-operator-ns")
    assert ns.parent == comp.urn
    assert ns.inputs["metadata"] == {"name": "gpu-operator", "labels": {"pod-security.kubernetes.io/enforce": "privileged"}}


@pytest.mark.parametrize("mode", MODES)
def test_the_monitoring_release(dev_runs, mode):
    r = dev_runs[mode]
    comp = r.one("gpu-slicing:observability:Observability")
    rel = r.one(RELEASE, "gpu-dev-observability")
    i = rel.inputs
    assert (i["name"], i["chart"], i["namespace"]) == ("kube-prometheus-stack", "kube-prometheus-stack", "monitoring")
    assert i["cleanupOnFail"] is True and i["timeout"] > HELM_DEFAULT_TIMEOUT
    assert _deps(r, rel) == {"gpu-dev-system", "gpu-dev-observability-ns"}
    # EKS runs the control plane out of the cluster: the chart's scrapes of it would never find a target and their
    # ...Down alerts would fire for ever (docs/facts.md §13)
    assert all(i["values"][k]["enabled"] is False for k in ("kubeControllerManager", "kubeScheduler", "kubeEtcd"))
    assert [r.get(u).name for u in rel.property_dependencies["namespace"]] == ["gpu-dev-observability-ns"]
    ns = r.one("kubernetes:core/v1:Namespace", "gpu-dev-observability-ns")
    assert ns.parent == comp.urn and ns.inputs["metadata"] == {"name": "monitoring"}
    assert _deps(r, ns) == {"gpu-dev-system"}
    # the ServiceMonitor, rules and dashboard need the release's CRDs and Grafana: after it, on the system nodes
    for name in ("gpu-dev-observability-alerts", "gpu-dev-observability-dashboard"):
        (x,) = [x for x in r.registrations if x.name == name]
        assert _deps(r, x) == {"gpu-dev-system", "gpu-dev-observability"} and x.parent == comp.urn
    # each in the namespace the stack watches; the dashboard labelled for kube-prometheus-stack's Grafana sidecar,
    # which loads ConfigMaps labelled grafana_dashboard (the chart's default label)
    rule = r.one("kubernetes:monitoring.coreos.com/v1:PrometheusRule").inputs["metadata"]
    board = r.one("kubernetes:core/v1:ConfigMap", "gpu-dev-observability-dashboard").inputs["metadata"]
    assert rule["namespace"] == board["namespace"] == "monitoring"
    assert board["labels"]["grafana_dashboard"] == "1" and rule["labels"]["app.kubernetes.io/part-of"] == "gpu-slicing"
    (dashboard,) = r.one("kubernetes:core/v1:ConfigMap", "gpu-dev-observability-dashboard").inputs["data"].values()
    assert json.loads(dashboard)["panels"]  # a Grafana dashboard document, panels and all
    monitor = r.one("kubernetes:monitoring.coreos.com/v1:ServiceMonitor")
    assert _deps(r, monitor) == {"gpu-dev-system", "gpu-dev-observability", "gpu-dev-gpu-operator-ns"}
    assert monitor.inputs["metadata"]["namespace"] == "monitoring"


@pytest.mark.parametrize("mode", MODES)
def test_the_karpenter_releases(dev_runs, mode):
    r = dev_runs[mode]
    comp = r.one("gpu-slicing:karpenter:Karpenter")
    rel, crd = r.one(RELEASE, "gpu-dev-karpenter"), r.one(RELEASE, "gpu-dev-karpenter-crd")
    assert rel.parent == crd.parent == comp.urn
    assert rel.inputs["cleanupOnFail"] is True
    aws = [x.name for x in r.registrations if x.parent == comp.urn and x.type.startswith("aws:")]
    # node role + 4 attachments, access entry, queue + policy, 5 rules + 5 targets, controller role, 6 policies + 6
    # attachments (each named as its policy), Pod Identity add-on + association, the security group's tag
    assert len(aws) == 34
    aws_side = set(aws)
    assert _deps(r, crd) == aws_side | {"gpu-dev-system"}
    assert _deps(r, rel) == aws_side | {"gpu-dev-system", "gpu-dev-karpenter-crd"}
    # the controller reads its queue's name from the queue itself
    assert [r.get(u).name for u in rel.property_dependencies["values"]] == ["gpu-dev-karpenter-queue"]
