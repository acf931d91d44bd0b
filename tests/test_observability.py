"""Seeing the slices (docs/facts.md §9): the exporter's metrics list, the alerts under promtool, every query as PromQL
over metrics that exist, the dashboard, the chart values, the config section and the plan's checks."""
from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, child_env, dev_config
from gpu_slicing import observability as obs
from gpu_slicing.config import NAMESPACE, ObservabilityConfig
from gpu_slicing.stack import load_stack, parse_config
from gpu_slicing.errors import ConfigError
from gpu_slicing.pools import resolve_pools
from tools import checks

NS = NAMESPACE + ":"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="needs promtool (Debian package prometheus; .ci/run installs it)")
ALERT_TESTS = ROOT / "tests" / "promtool" / "gpu_slicing_alerts_test.yaml"


def _dev():
    cfg = parse_config(dev_config())
    return cfg, resolve_pools(cfg)


# --- the exporter's metrics list ------------------------------------------------------------------------

def test_exporter_list_has_the_mig_fields_of_facts_9_and_not_gpu_util():
    fields = obs.parse_exporter_csv(obs.exporter_csv())
    assert {"DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_PROF_SM_ACTIVE", "DCGM_FI_PROF_DRAM_ACTIVE",
            "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE"} <= fields
    assert "DCGM_FI_DEV_GPU_UTIL" not in fields  # not supported on MIG instances (dcgm-exporter#216, #430)


def test_exporter_csv_lines_are_field_type_help():
    """dcgm-exporter's CSV format: `DCGM field, Prometheus type, help`; '#' starts a comment."""
    for line in obs.exporter_csv().splitlines():
        if line.startswith("#"):
            continue
        field, kind, help_ = (x.strip() for x in line.split(",", 2))
        assert field.startswith("DCGM_FI_") and kind in ("gauge", "counter") and help_


def test_operator_values_point_the_exporter_at_our_list_with_pod_mapping(dev):
    from gpu_slicing.gpu_operator import operator_values

    cfg = parse_config(dev)
    values = operator_values(cfg, resolve_pools(cfg))["dcgmExporter"]
    assert values["config"] == {"name": "gpu-slicing-dcgm-metrics"}
    assert {"name": "DCGM_EXPORTER_KUBERNETES", "value": "true"} in values["env"]
    assert values["serviceMonitor"] == {"enabled": False}  # ours replaces it: one scrape, exporter pod labels kept


def test_without_observability_a_mig_stack_still_gets_the_list_but_keeps_the_operators_service_monitor(dev):
    from gpu_slicing.gpu_operator import operator_values

    dev[NS + "observability"] = {"enabled": False}
    cfg = parse_config(dev)
    values = operator_values(cfg, resolve_pools(cfg))["dcgmExporter"]
    assert values["config"]["name"] == obs.EXPORTER_CONFIGMAP and "serviceMonitor" not in values


def test_a_stack_without_mig_or_observability_leaves_the_exporter_alone(dev):
    from gpu_slicing.gpu_operator import operator_values

    dev[NS + "observability"] = {"enabled": False}
    dev[NS + "nodeGroups"][0]["migLayout"] = "all-disabled"
    dev[NS + "karpenter"]["nodePools"][0]["migLayout"] = "all-disabled"
    dev[NS + "workloads"] = []
    cfg = parse_config(dev)
    assert "dcgmExporter" not in operator_values(cfg, resolve_pools(cfg))


def test_gpu_operator_mounts_the_list_from_this_key():
    """The operator mounts key `dcgm-metrics.csv` of the ConfigMap named by dcgmExporter.config.name (the chart's
    values.yaml says so in a comment under dcgmExporter)."""
    from tools import refdata

    assert obs.EXPORTER_CSV_KEY in refdata.load("gpu-operator-values")["quoted_names"]["dcgmExporter"]


# --- alerts under promtool ----------------------------------------------------------------------------------

def _promtool_dir(tmp_path: Path, groups) -> Path:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    shutil.copy(ALERT_TESTS, tmp_path / ALERT_TESTS.name)
    return tmp_path


@needs_promtool
def test_promtool_checks_the_rules(tmp_path):
    d = _promtool_dir(tmp_path, obs.rule_groups(ObservabilityConfig()))
    out = subprocess.run([PROMTOOL, "check", "rules", str(d / "rules.yaml")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(obs.alerts(ObservabilityConfig()))} rules found" in out.stdout


@pytest.mark.slow
@needs_promtool
def test_promtool_unit_tests_pass_for_every_alert(tmp_path):
    d = _promtool_dir(tmp_path, obs.rule_groups(ObservabilityConfig()))
    out = subprocess.run([PROMTOOL, "test", "rules", ALERT_TESTS.name], cwd=d, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


@pytest.mark.slow
@needs_promtool
@pytest.mark.parametrize("alert,broken", [
    ("GpuSlicingGpuNodeNotReady", lambda e: e.split(" * on (node)")[0]),  # forgets it is about GPU nodes only
    ("GpuSlicingMigConfigStuck", lambda e: e.split(") (", 1)[1][:-1]),  # keeps the state label
    ("GpuSlicingSlicesUnallocated", lambda e: e.replace('{phase=~"Running"}', '{phase=~"Running|Succeeded"}')),
])
def test_promtool_unit_tests_catch_a_broken_rule(tmp_path, alert, broken):
    groups = copy.deepcopy(obs.rule_groups(ObservabilityConfig()))
    rule = next(r for r in groups[0]["rules"] if r["alert"] == alert)
    rule["expr"] = broken(rule["expr"])
    d = _promtool_dir(tmp_path, groups)
    out = subprocess.run([PROMTOOL, "test", "rules", ALERT_TESTS.name], cwd=d, capture_output=True, text=True)
    assert out.returncode != 0 and f"alertname: {alert}" in out.stdout + out.stderr


# --- what a real scrape of dcgm-exporter yields -------------------------------------------------------------
#
# The promtool cases feed dcgm-exporter series as Prometheus stores them after scraping through our
# ServiceMonitor, not as the exporter prints them. `scraped` models that path from outside the program:
# - Kubernetes service discovery (role endpoints) describes the exporter pod behind the Service with
#   `__meta_kubernetes_*` labels (EXPORTER_TARGET);
# - the Prometheus Operator's scrape config for a ServiceMonitor endpoint first sets the target labels
#   `namespace`, `service`, `pod`, `container` (of the scraped pod), `job` (the Service's `jobLabel` label)
#   and `endpoint` (the port name), then applies the endpoint's own `relabelings` (prometheus-operator,
#   pkg/prometheus/promcfg.go); Prometheus sets `instance` from the address and drops `__`-labels;
# - relabelling: `replace` joins the source labels with ";", matches the anchored regex (default "(.*)") and
#   sets the target label to the expanded replacement (default "$1"), deleting it when that is empty;
#   `labeldrop` removes every label whose name matches the anchored regex;
# - honor_labels false: a scraped label that clashes with a target label is renamed exported_<name> and the
#   target's value is used; honor_labels true: the scraped value wins, a target label the series lacks is
#   added (Prometheus docs, scrape_config honor_labels). Empty labels are dropped.

EXPORTER_POD = "nvidia-dcgm-exporter-x7k2p"
EXPORTER_TARGET = {
    "__address__": "10.0.3.17:9400", "__meta_kubernetes_namespace": "gpu-operator",
    "__meta_kubernetes_service_name": "nvidia-dcgm-exporter",
    "__meta_kubernetes_service_label_app": "nvidia-dcgm-exporter", "__meta_kubernetes_pod_name": EXPORTER_POD,
    "__meta_kubernetes_pod_container_name": "nvidia-dcgm-exporter", "__meta_kubernetes_pod_node_name": "g1",
}
# What dcgm-exporter prints for four MIG slices of GPU 0 on g1 (its labels: gpu, UUID, device, modelName,
# Hostname, GPU_I_PROFILE, GPU_I_ID, DCGM_FI_DRIVER_VERSION; and, from the kubelet's pod-resources API,
# pod/namespace/container of the pod holding the slice; the unheld slice 10 has none), with the promtool
# values (5m samples) of the idle-slice case: idle at 0%, busy at 50%, bursty idle but for one burst.
_GPU0 = {"gpu": "0", "UUID": "GPU-5d7f3c1e-8a0b-4c9e-9f11-2b6d0e7a4c55", "device": "nvidia0",
         "modelName": "NVIDIA A100-SXM4-40GB", "Hostname": "g1", "GPU_I_PROFILE": "1g.5gb",
         "DCGM_FI_DRIVER_VERSION": "570.172.08"}
EXPOSITION = [
    ({**_GPU0, "GPU_I_ID": "7", "pod": "idle", "namespace": "ml", "container": "main"}, "0x48"),
    ({**_GPU0, "GPU_I_ID": "8", "pod": "busy", "namespace": "ml", "container": "main"}, "0.5x48"),
    ({**_GPU0, "GPU_I_ID": "9", "pod": "bursty", "namespace": "ml", "container": "main"}, "0x23 0.6 0x24"),
    ({**_GPU0, "GPU_I_ID": "10"}, "0x48"),
]
IDLE_METRIC = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"


def _relabel(labels: dict, rules: list) -> dict:
    import re

    out = dict(labels)
    for r in rules:
        regex = re.compile(f"^(?:{r.get('regex', '(.*)')})$")
        action = r.get("action", "replace").lower()
        if action == "replace":
            value = r.get("separator", ";").join(out.get(k, "") for k in r.get("sourceLabels", []))
            m = regex.match(value)
            if m:
                new = m.expand(r.get("replacement", "$1").replace("$", "\\"))
                out.pop(r["targetLabel"], None) if new == "" else out.__setitem__(r["targetLabel"], new)
        elif action == "labeldrop":
            out = {k: v for k, v in out.items() if not regex.match(k)}
        else:
            raise NotImplementedError(action)
    return out


def scraped(monitor: dict, exposed: dict) -> dict:
    """The label set Prometheus stores for one series the exporter prints with `exposed` labels."""
    (ep,) = monitor["spec"]["endpoints"]
    t = EXPORTER_TARGET
    target = {**t, "namespace": t["__meta_kubernetes_namespace"], "service": t["__meta_kubernetes_service_name"],
              "pod": t["__meta_kubernetes_pod_name"], "container": t["__meta_kubernetes_pod_container_name"],
              "job": t[f"__meta_kubernetes_service_label_{monitor['spec']['jobLabel']}"], "endpoint": ep["port"]}
    target = _relabel(target, ep.get("relabelings", []))
    target = {"instance": t["__address__"], **{k: v for k, v in target.items() if not k.startswith("__")}}
    series = dict(exposed)
    for k, v in target.items():
        if ep.get("honorLabels"):
            series.setdefault(k, v)
        else:
            if k in series:
                series["exported_" + k] = series.pop(k)
            series[k] = v
    return _relabel({k: v for k, v in series.items() if v}, ep.get("metricRelabelings", []))


def _series(labels: dict, metric: str = IDLE_METRIC) -> str:
    return metric + "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _dcgm_cases(doc: dict) -> list[dict]:
    return [t for t in doc["tests"] if any(s["series"].startswith("DCGM_") for s in t["input_series"])]


def _with_dcgm_series(monitor: dict) -> dict:
    """The promtool tests with the dcgm-exporter series of the idle-slice case as `monitor` scrapes them."""
    doc = yaml.safe_load(ALERT_TESTS.read_text())
    (case,) = _dcgm_cases(doc)
    case["input_series"] = [{"series": _series(scraped(monitor, labels)), "values": values}
                            for labels, values in EXPOSITION]
    return doc


def _monitor(**endpoint) -> dict:
    sm = copy.deepcopy(obs.service_monitor(ObservabilityConfig(), "gpu-operator"))
    sm["spec"]["endpoints"][0].update(endpoint)
    return sm


# The ServiceMonitor this program shipped before: honorLabels true, no labeldrop.
HONOR_LABELS = dict(honorLabels=True, relabelings=[{"sourceLabels": ["__meta_kubernetes_pod_node_name"],
                                                   "targetLabel": "node", "action": "replace"}])


def test_the_idle_slice_case_feeds_the_series_our_service_monitor_stores():
    """The promtool case's DCGM series are exactly what a scrape through our ServiceMonitor yields: the
    target's instance/job/service/endpoint/node beside the exporter's own labels, a held slice naming its pod
    and an unheld one naming none."""
    doc = yaml.safe_load(ALERT_TESTS.read_text())
    (case,) = _dcgm_cases(doc)
    expected = yaml.safe_load(yaml.safe_dump(_with_dcgm_series(obs.service_monitor(ObservabilityConfig(), "x"))))
    assert case["input_series"] == _dcgm_cases(expected)[0]["input_series"]
    unheld = scraped(obs.service_monitor(ObservabilityConfig(), "gpu-operator"), EXPOSITION[3][0])
    assert {k: unheld[k] for k in ("instance", "job", "service", "endpoint", "node")} == {
        "instance": "10.0.3.17:9400", "job": "nvidia-dcgm-exporter", "service": "nvidia-dcgm-exporter",
        "endpoint": "gpu-metrics", "node": "g1"}
    assert not {"pod", "namespace", "container"} & set(unheld) and not any(k.startswith("exported_") for k in unheld)


@pytest.mark.parametrize("endpoint", [HONOR_LABELS, {"honorLabels": False, "relabelings": HONOR_LABELS["relabelings"]}],
                         ids=["honorLabels true", "target pod labels kept"])
def test_a_scrape_that_keeps_the_exporters_pod_labels_makes_unheld_slices_look_held(endpoint):
    """With honorLabels true the unheld slice takes the exporter's own pod; with it false but the target's pod
    labels kept, every slice names the exporter and the holder moves to exported_pod."""
    stored = [scraped(_monitor(**endpoint), labels) for labels, _ in EXPOSITION]
    assert stored[3]["pod"] == EXPORTER_POD and stored[3]["namespace"] == "gpu-operator"
    if not endpoint["honorLabels"]:
        assert stored[0]["pod"] == EXPORTER_POD and stored[0]["exported_pod"] == "idle"


@pytest.mark.slow
@needs_promtool
@pytest.mark.parametrize("endpoint", [HONOR_LABELS, {"honorLabels": False, "relabelings": HONOR_LABELS["relabelings"]}],
                         ids=["honorLabels true", "target pod labels kept"])
def test_promtool_catches_a_service_monitor_that_keeps_the_exporters_pod_labels(tmp_path, endpoint):
    """The idle-slice alert, fed what the old ServiceMonitor (honorLabels true) stores, fires for the exporter's
    own pod (the unheld slice 10 and, with the target's labels kept, every idle slice): the unit tests fail."""
    d = _promtool_dir(tmp_path, obs.rule_groups(ObservabilityConfig()))
    (d / ALERT_TESTS.name).write_text(yaml.safe_dump(_with_dcgm_series(_monitor(**endpoint)), sort_keys=False))
    out = subprocess.run([PROMTOOL, "test", "rules", ALERT_TESTS.name], cwd=d, capture_output=True, text=True)
    assert out.returncode != 0 and "alertname: GpuSlicingSliceIdle" in out.stdout + out.stderr
    assert f'pod="{EXPORTER_POD}"' in out.stdout + out.stderr


def test_every_alert_has_a_unit_test_that_expects_it_to_fire():
    assert {a.name for a in obs.alerts(ObservabilityConfig())} == checks.tested_alerts(ALERT_TESTS)


def test_alert_thresholds_come_from_config(dev):
    dev[NS + "observability"] = {"enabled": True, "migPendingAlertAfter": "45m", "idleAlertAfter": "8h"}
    by_name = {a.name: a for a in obs.alerts(parse_config(dev).observability)}
    assert by_name["GpuSlicingMigConfigStuck"].for_ == "45m"
    assert by_name["GpuSlicingSliceIdle"].for_ == "8h" and by_name["GpuSlicingSlicesUnallocated"].for_ == "8h"


# --- every query: valid PromQL over metrics that exist -----------------------------------------------------

def _metric_names(expr) -> set[str]:
    import promql_parser

    names: set[str] = set()

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)
        for attr in ("expr", "lhs", "rhs", "vector_selector", "param"):
            child = getattr(node, attr, None)
            if isinstance(child, promql_parser.Expr):
                visit(child)
        for child in getattr(node, "args", None) or []:
            visit(child)

    visit(promql_parser.parse(expr))
    return names


def test_metric_name_walk_finds_names_in_nested_expressions():
    found = _metric_names('sum by (a) (rate(x_total[5m])) / on (a) group_left () max_over_time(y{b="c"}[1h]) or vector(0)')
    assert found == {"x_total", "y"}


def test_every_query_is_promql_over_exporter_or_kube_state_metrics():
    pytest.importorskip("promql_parser")
    cfg, pools = _dev()
    queries = obs.every_query(cfg, pools)
    assert len(queries) == 6 + 14  # the six alerts and fourteen panels docs/observability.md documents
    allowed = obs.allowed_metrics()
    for where, expr in queries:
        names = _metric_names(expr)  # raises on invalid PromQL
        assert names and names <= allowed, (where, names - allowed)
        assert not names & obs.NOT_ON_MIG, where


def test_the_query_check_rejects_invalid_promql():
    pytest.importorskip("promql_parser")
    with pytest.raises(ValueError):
        _metric_names("sum by (node (kube_node_labels)")


def test_kube_state_metrics_names_of_labels_and_resources():
    """docs/facts.md §9: `nvidia.com/mig-1g.5gb` -> resource="nvidia_com_mig_1g_5gb"; node labels as label_<sanitized>."""
    assert obs.ksm_resource("nvidia.com/mig-1g.5gb") == "nvidia_com_mig_1g_5gb"
    assert obs.ksm_label("nvidia.com/mig.config.state") == "label_nvidia_com_mig_config_state"
    assert obs.ksm_label("gpu-slicing/pool") == "label_gpu_slicing_pool"


def test_dcgm_metrics_used_by_queries_are_on_the_exporter_list():
    pytest.importorskip("promql_parser")
    cfg, pools = _dev()
    exported = obs.parse_exporter_csv(obs.exporter_csv())
    used = {n for _, e in obs.every_query(cfg, pools) for n in _metric_names(e) if n.startswith("DCGM_")}
    assert used and used <= exported


# --- what the dashboard's queries compute (promtool evaluates them on kube-state-metrics series) ----------
#
# A small cluster as kube-state-metrics reports it: g1 (pool "mig", p4d, all-balanced) and g3 (pool "idle",
# p4d, all-1g.5gb, no pods) advertise MIG slices; g2 (pool "ts", g5.xlarge) 4 time-sliced GPUs; g4 (pool "mig",
# p4d) is NotReady and pending a MIG change; s1 is a system node (no pool label) that advertises a GPU all the
# same. kube_pod_status_phase has one series per phase and pod, 1 for the pod's phase and 0 for the others.
# The expected values are counted by hand from these series.
_POD_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
_PANEL_NODES = {
    "g1": {"label_gpu_slicing_pool": "mig", "label_node_kubernetes_io_instance_type": "p4d.24xlarge",
           "label_nvidia_com_mig_config": "all-balanced", "label_nvidia_com_mig_config_state": "success"},
    "g2": {"label_gpu_slicing_pool": "ts", "label_node_kubernetes_io_instance_type": "g5.xlarge"},
    "g3": {"label_gpu_slicing_pool": "idle", "label_node_kubernetes_io_instance_type": "p4d.24xlarge",
           "label_nvidia_com_mig_config": "all-1g.5gb", "label_nvidia_com_mig_config_state": "success"},
    "g4": {"label_gpu_slicing_pool": "mig", "label_node_kubernetes_io_instance_type": "p4d.24xlarge",
           "label_nvidia_com_mig_config": "all-balanced", "label_nvidia_com_mig_config_state": "pending"},
    "s1": {"label_node_kubernetes_io_instance_type": "m7i.large"},
}
_ALLOCATABLE = [("g1", "nvidia_com_mig_1g_5gb", 16), ("g1", "nvidia_com_mig_2g_10gb", 8), ("g1", "cpu", 96),
                ("g2", "nvidia_com_gpu", 4), ("g3", "nvidia_com_mig_1g_5gb", 7), ("s1", "nvidia_com_gpu", 1)]
# (namespace/pod, phase, node or "" when unscheduled, {resource: requested})
_PODS = [("ml/a", "Running", "g1", {"nvidia_com_mig_1g_5gb": 3}),
         ("ml/b", "Running", "g1", {"nvidia_com_mig_2g_10gb": 2, "cpu": 4}),
         ("ml/done", "Succeeded", "g1", {"nvidia_com_mig_2g_10gb": 6}),  # finished: holds nothing
         ("ml/crashed", "Failed", "g1", {"nvidia_com_mig_1g_5gb": 1}),  # finished: holds nothing
         ("ml/wait", "Pending", "", {"nvidia_com_mig_1g_5gb": 2}),
         ("ml/wait2", "Pending", "", {"nvidia_com_mig_1g_5gb": 1}),
         ("ml/cpu", "Pending", "", {"cpu": 1}),
         ("ts/c", "Running", "g2", {"nvidia_com_gpu": 1})]
_SLICE = {"gpu": "0", "Hostname": "g1", "UUID": "GPU-1", "instance": "10.0.3.17:9400", "job": "nvidia-dcgm-exporter",
          "node": "g1"}
# dcgm-exporter series after our scrape: slice 7 held by ml/a, slice 8 held by ml/b (reported twice, by an old
# and a new exporter pod), slice 9 held by no pod; values over 70 minutes at 1m.
_DCGM = [
    ({**_SLICE, "GPU_I_PROFILE": "1g.5gb", "GPU_I_ID": "7", "namespace": "ml", "pod": "a", "container": "main"},
     {"DCGM_FI_PROF_GR_ENGINE_ACTIVE": "0x70", "DCGM_FI_PROF_SM_ACTIVE": "0.2x70", "DCGM_FI_PROF_DRAM_ACTIVE": "0.1x70",
      "DCGM_FI_DEV_FB_USED": "1000x70", "DCGM_FI_DEV_FB_FREE": "3000x70"}),
    ({**_SLICE, "GPU_I_PROFILE": "2g.10gb", "GPU_I_ID": "8", "namespace": "ml", "pod": "b", "container": "main"},
     {"DCGM_FI_PROF_GR_ENGINE_ACTIVE": "0.6x70", "DCGM_FI_PROF_SM_ACTIVE": "0.5x70", "DCGM_FI_PROF_DRAM_ACTIVE": "0.3x70",
      "DCGM_FI_DEV_FB_USED": "6000x70", "DCGM_FI_DEV_FB_FREE": "3000x70"}),
    ({**_SLICE, "instance": "10.0.3.18:9400", "GPU_I_PROFILE": "2g.10gb", "GPU_I_ID": "8", "namespace": "ml",
      "pod": "b", "container": "main"},
     {"DCGM_FI_PROF_GR_ENGINE_ACTIVE": "0.4x70", "DCGM_FI_PROF_SM_ACTIVE": "0.3x70", "DCGM_FI_PROF_DRAM_ACTIVE": "0.1x70",
      "DCGM_FI_DEV_FB_USED": "6000x70", "DCGM_FI_DEV_FB_FREE": "3000x70"}),
    ({**_SLICE, "GPU_I_PROFILE": "1g.5gb", "GPU_I_ID": "9"},
     {"DCGM_FI_PROF_GR_ENGINE_ACTIVE": "0x70", "DCGM_FI_PROF_SM_ACTIVE": "0x70", "DCGM_FI_PROF_DRAM_ACTIVE": "0x70",
      "DCGM_FI_DEV_FB_USED": "0x70", "DCGM_FI_DEV_FB_FREE": "5000x70"}),
]


def _panel_series() -> list[dict]:
    def s(metric: str, labels: dict, value) -> dict:
        return {"series": _series(labels, metric), "values": value if isinstance(value, str) else f"{value}x70"}

    out = [s("kube_node_labels", {"node": n, **labels}, 1) for n, labels in _PANEL_NODES.items()]
    out += [s("kube_node_status_condition", {"node": n, "condition": "Ready", "status": st}, int(ready == (st == "true")))
            for n in _PANEL_NODES for ready in [n != "g4"] for st in ("true", "false")]
    out += [s("kube_node_status_allocatable", {"node": n, "resource": r, "unit": "integer"}, v) for n, r, v in _ALLOCATABLE]
    for name, phase, node, requests in _PODS:
        ns, pod = name.split("/")
        out += [s("kube_pod_status_phase", {"namespace": ns, "pod": pod, "phase": p}, int(p == phase))
                for p in _POD_PHASES]
        out += [s("kube_pod_container_resource_requests", {"namespace": ns, "pod": pod, "container": "main",
                                                           "resource": r, "unit": "integer",
                                                           **({"node": node} if node else {})}, v)
                for r, v in requests.items()]
    out += [s(metric, labels, values) for labels, metrics in _DCGM for metric, values in metrics.items()]
    return out


POOL_L, TYPE_L = "label_gpu_slicing_pool", "label_node_kubernetes_io_instance_type"
# panel title -> expected samples ({labels}, value) at 65m
PANEL_SAMPLES = {
    "Slices advertised": [({POOL_L: "mig", "resource": "nvidia_com_mig_1g_5gb"}, 16),
                          ({POOL_L: "mig", "resource": "nvidia_com_mig_2g_10gb"}, 8),
                          ({POOL_L: "idle", "resource": "nvidia_com_mig_1g_5gb"}, 7),
                          ({POOL_L: "ts", "resource": "nvidia_com_gpu"}, 4)],
    # a: 3, wait: 2, wait2: 1 (crashed's request is finished); b: 2 (done's 6 finished); ts/c: 1
    "Slices requested (Pending + Running pods)": [({"resource": "nvidia_com_mig_1g_5gb"}, 6),
                                                  ({"resource": "nvidia_com_mig_2g_10gb"}, 2),
                                                  ({"resource": "nvidia_com_gpu"}, 1)],
    "Slices in use (Running pods)": [({POOL_L: "mig", "resource": "nvidia_com_mig_1g_5gb"}, 3),
                                     ({POOL_L: "mig", "resource": "nvidia_com_mig_2g_10gb"}, 2),
                                     ({POOL_L: "ts", "resource": "nvidia_com_gpu"}, 1)],
    "Pods Pending for a slice": [({"resource": "nvidia_com_mig_1g_5gb"}, 2)],
    # mig: 1 - (3 + 2) / (16 + 8); ts: 1 - 1 / 4; idle: nothing running, all 7 idle
    "Share of slices no running pod holds": [({POOL_L: "mig"}, 1 - 5 / 24), ({POOL_L: "ts"}, 0.75),
                                             ({POOL_L: "idle"}, 1)],
    "MIG layout and state per node": [
        ({"node": n, **{k: v for k, v in _PANEL_NODES[n].items() if k != TYPE_L}}, 1) for n in ("g1", "g3", "g4")],
    "GPU nodes Ready": [({"node": n, "condition": "Ready", "status": "true", POOL_L: _PANEL_NODES[n][POOL_L]},
                         int(n != "g4")) for n in ("g1", "g2", "g3", "g4")],
    # slice 8's two reports averaged: (0.6 + 0.4) / 2
    "Graphics engine active per slice": [
        ({"node": "g1", "gpu": "0", "GPU_I_PROFILE": "1g.5gb", "GPU_I_ID": i}, v) for i, v in (("7", 0), ("9", 0))]
        + [({"node": "g1", "gpu": "0", "GPU_I_PROFILE": "2g.10gb", "GPU_I_ID": "8"}, 0.5)],
    "SM active per pod": [({"namespace": "ml", "pod": "a", "GPU_I_PROFILE": "1g.5gb"}, 0.2),
                          ({"namespace": "ml", "pod": "b", "GPU_I_PROFILE": "2g.10gb"}, 0.4)],
    "Memory bandwidth active per slice": [
        ({"node": "g1", "gpu": "0", "GPU_I_PROFILE": "1g.5gb", "GPU_I_ID": "7"}, 0.1),
        ({"node": "g1", "gpu": "0", "GPU_I_PROFILE": "2g.10gb", "GPU_I_ID": "8"}, 0.2),
        ({"node": "g1", "gpu": "0", "GPU_I_PROFILE": "1g.5gb", "GPU_I_ID": "9"}, 0)],
    # 1000 / 4000; (6000 + 6000) / (9000 + 9000); 0 / 5000
    "Framebuffer used per slice": [
        ({"node": "g1", "gpu": "0", "GPU_I_PROFILE": "1g.5gb", "GPU_I_ID": "7"}, 0.25),
        ({"node": "g1", "gpu": "0", "GPU_I_PROFILE": "2g.10gb", "GPU_I_ID": "8"}, 2 / 3),
        ({"node": "g1", "gpu": "0", "GPU_I_PROFILE": "1g.5gb", "GPU_I_ID": "9"}, 0)],
    "Framebuffer used per pod": [({"namespace": "ml", "pod": "a"}, 1000), ({"namespace": "ml", "pod": "b"}, 12000)],
    # held and idle for the last hour: slice 7 only (slice 9 idles too, but no pod holds it)
    "Idle slices held by pods (engine < 1% over 1h)": [({"GPU_I_PROFILE": "1g.5gb"}, 1)],
}


def _promql_case(exprs: list[tuple[str, list]], extra: tuple) -> dict:
    return {"rule_files": [], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": _panel_series() + list(extra),
        "promql_expr_test": [{"expr": e, "eval_time": "65m",
                              "exp_samples": [{"labels": "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(l.items())) + "}",
                                               "value": v} for l, v in samples]} for e, samples in exprs]}]}


def _promtool_expr(tmp_path: Path, exprs: list[tuple[str, list]], extra: tuple = ()) -> subprocess.CompletedProcess:
    (tmp_path / "panels_test.yaml").write_text(yaml.safe_dump(_promql_case(exprs, extra), sort_keys=False))
    return subprocess.run([PROMTOOL, "test", "rules", "panels_test.yaml"], cwd=tmp_path, capture_output=True, text=True)


@needs_promtool
def test_panel_queries_count_what_their_titles_say(tmp_path):
    """Every panel but the cost one (below), evaluated by promtool on the cluster above: finished pods hold no
    slice, unscheduled Pending pods are demand but in no pool, a system node's GPU is in no pool, a slice no
    pod holds is not idle-and-held, two exporter reports of one slice are one slice."""
    cfg, pools = _dev()
    by_title = {p.title: p.expr for p in obs.panels(cfg, pools)}
    assert set(by_title) - set(PANEL_SAMPLES) == {"On-demand cost per pool ($/h)"}
    out = _promtool_expr(tmp_path, [(by_title[t], samples) for t, samples in PANEL_SAMPLES.items()])
    assert out.returncode == 0, out.stdout + out.stderr


@needs_promtool
def test_cost_query_prices_each_pools_nodes(tmp_path):
    """Nodes per pool and instance type times the price: 2 p4d nodes in pool mig at the stack's 20/h, 1 in idle;
    g5.xlarge at the catalog's on-demand figure (Karpenter's table: 1.006 $/h, rounded to 1.01)."""
    from gpu_slicing import catalog

    types = [catalog.INSTANCE_TYPES["g5.xlarge"], catalog.INSTANCE_TYPES["p4d.24xlarge"]]
    expected = [({POOL_L: "mig", TYPE_L: "p4d.24xlarge"}, 40), ({POOL_L: "idle", TYPE_L: "p4d.24xlarge"}, 20),
                ({POOL_L: "ts", TYPE_L: "g5.xlarge"}, 1.01)]
    out = _promtool_expr(tmp_path, [(obs.cost_query(types, {"p4d.24xlarge": 20.0}), expected),
                                    (obs.cost_query([]), [({}, 0)])])
    assert out.returncode == 0, out.stdout + out.stderr


# The same cluster with g5 (pool "mig") whose MIG reconfiguration failed: alert name -> the samples its
# expression gives at 65m (whether it fires is then its `for`, held by the docs table test below).
_FAILED_NODE = {"series": 'kube_node_labels{label_gpu_slicing_pool="mig", label_nvidia_com_mig_config="all-1g.5gb", '
                          'label_nvidia_com_mig_config_state="failed", node="g5"}', "values": "1x70"}
ALERT_SAMPLES = {
    "GpuSlicingMigConfigFailed": [({"__name__": "kube_node_labels", "node": "g5", POOL_L: "mig", "label_nvidia_com_mig_config": "all-1g.5gb",
                                    "label_nvidia_com_mig_config_state": "failed"}, 1)],
    "GpuSlicingMigConfigStuck": [({"node": "g4", POOL_L: "mig", "label_nvidia_com_mig_config": "all-balanced"}, 1)],
    "GpuSlicingGpuNodeNotReady": [({"node": "g4", "condition": "Ready", "status": "true", POOL_L: "mig"}, 0)],
    # Pending pods asking for a slice (ml/cpu asks for CPU only)
    "GpuSlicingPodsPendingForSlices": [({"namespace": "ml", "pod": "wait", "resource": "nvidia_com_mig_1g_5gb"}, 2),
                                       ({"namespace": "ml", "pod": "wait2", "resource": "nvidia_com_mig_1g_5gb"}, 1)],
    # held by a pod and under 1% for the last 30m: slice 7 (ml/a); slice 9 idles but no pod holds it
    "GpuSlicingSliceIdle": [({"node": "g1", "gpu": "0", "GPU_I_PROFILE": "1g.5gb", "GPU_I_ID": "7", "namespace": "ml",
                              "pod": "a", "container": "main"}, 0)],
    # MIG slices no running pod requested: g1 16 - 3 and 8 - 2 (ml/done's 6 are finished); g3 all 7
    "GpuSlicingSlicesUnallocated": [({"node": "g1", "resource": "nvidia_com_mig_1g_5gb"}, 13),
                                    ({"node": "g1", "resource": "nvidia_com_mig_2g_10gb"}, 6),
                                    ({"node": "g3", "resource": "nvidia_com_mig_1g_5gb"}, 7)],
}


@needs_promtool
def test_alert_expressions_select_what_their_alerts_say(tmp_path):
    """Each alert's expression on the cluster above (promtool's unit tests in tests/promtool hold when they fire)."""
    exprs = {a.name: a.expr for a in obs.alerts(ObservabilityConfig())}
    assert set(exprs) == set(ALERT_SAMPLES)
    out = _promtool_expr(tmp_path, [(exprs[n], samples) for n, samples in ALERT_SAMPLES.items()], (_FAILED_NODE,))
    assert out.returncode == 0, out.stdout + out.stderr


# dcgm-exporter series of DRA-held MIG devices (labels dra_claim_name, dra_mig_profile: NVIDIA/dcgm-exporter#714):
# claim c1 of ml/a busy on a 1g.10gb, claim c2 of ml/b idle on a 2g.20gb, a device no claim holds (no labels).
_DRA = {"node": "p1", "gpu": "0", "instance": "10.0.3.19:9400"}
_DRA_SERIES = [
    {"series": _series({**_DRA, "GPU_I_ID": "1", "namespace": "ml", "pod": "a", "dra_claim_name": "c1",
                        "dra_mig_profile": "1g.10gb"}, metric), "values": v}
    for metric, v in (("DCGM_FI_PROF_SM_ACTIVE", "0.3x70"), ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "0.5x70"))] + [
    {"series": _series({**_DRA, "GPU_I_ID": "2", "namespace": "ml", "pod": "b", "dra_claim_name": "c2",
                        "dra_mig_profile": "2g.20gb"}, metric), "values": v}
    for metric, v in (("DCGM_FI_PROF_SM_ACTIVE", "0x70"), ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "0x70"))] + [
    {"series": _series({**_DRA, "GPU_I_ID": "3"}, metric), "values": "0x70"}
    for metric in ("DCGM_FI_PROF_SM_ACTIVE", "DCGM_FI_PROF_GR_ENGINE_ACTIVE")]
DRA_PANEL_SAMPLES = {
    "SM active per DRA claim": [
        ({"namespace": "ml", "pod": "a", "dra_claim_name": "c1", "dra_mig_profile": "1g.10gb"}, 0.3),
        ({"namespace": "ml", "pod": "b", "dra_claim_name": "c2", "dra_mig_profile": "2g.20gb"}, 0)],
    "Idle DRA claims": [({"dra_mig_profile": "2g.20gb"}, 1)],  # c2 only: the unheld device is no claim's
}


@needs_promtool
def test_dra_claim_panels_count_claims_not_devices(tmp_path):
    """A stack with a DRA pool gets the claim panels (a stack without one does not, tests/test_dra.py)."""
    dev = dev_config()
    dev[NS + "nodeGroups"][0].update(instanceType="p5.48xlarge", allocation="dra")
    dev[NS + "karpenter"] = {"enabled": False}
    dev[NS + "workloads"] = []
    cfg = parse_config(dev)
    by_title = {p.title: p.expr for p in obs.panels(cfg, resolve_pools(cfg)) if p.row == "DRA claims"}
    assert set(DRA_PANEL_SAMPLES) <= set(by_title)
    out = _promtool_expr(tmp_path, [(by_title[t], s) for t, s in DRA_PANEL_SAMPLES.items()], tuple(_DRA_SERIES))
    assert out.returncode == 0, out.stdout + out.stderr


def test_alert_summaries_render_as_the_promtool_cases_expect():
    """Each alert's summary template, filled with the labels of the alert its promtool case expects
    (tests/promtool, written by hand), reads as that case's summary; `{{ $value }}` is a number."""
    import re

    doc = yaml.safe_load(ALERT_TESTS.read_text())
    expected = {c["alertname"]: c["exp_alerts"][0] for t in doc["tests"] for c in t.get("alert_rule_test", [])
                if c["exp_alerts"] and "summary" in c["exp_alerts"][0].get("exp_annotations", {})}
    alerts = obs.alerts(ObservabilityConfig())
    assert set(expected) == {a.name for a in alerts}
    for a in alerts:
        labels = expected[a.name]["exp_labels"]
        parts = re.split(r"\{\{ (\$labels\.\w+|\$value) \}\}", a.summary)
        pattern = "".join(re.escape(p) if i % 2 == 0 else
                          (r"[0-9.e+]+" if p == "$value" else re.escape(str(labels[p.split(".", 1)[1]])))
                          for i, p in enumerate(parts))
        assert re.fullmatch(pattern, expected[a.name]["exp_annotations"]["summary"]), a.name


# Each panel's legend (the labels its query keeps, as Grafana templates them) and unit (Grafana's unit ids:
# `short` for counts, `percentunit` for 0-1 ratios, `decmbytes` for MiB, `currencyUSD`), by hand.
_SLICE_LEGEND = "{{node}} GPU {{gpu}} {{GPU_I_PROFILE}} #{{GPU_I_ID}}"
LEGEND_UNIT = {
    "Slices advertised": ("{{label_gpu_slicing_pool}} {{resource}}", "short"),
    "Slices requested (Pending + Running pods)": ("{{resource}}", "short"),
    "Slices in use (Running pods)": ("{{label_gpu_slicing_pool}} {{resource}}", "short"),
    "Pods Pending for a slice": ("{{resource}}", "short"),
    "Graphics engine active per slice": (_SLICE_LEGEND, "percentunit"),
    "SM active per pod": ("{{namespace}}/{{pod}} {{GPU_I_PROFILE}}", "percentunit"),
    "Memory bandwidth active per slice": (_SLICE_LEGEND, "percentunit"),
    "Framebuffer used per slice": (_SLICE_LEGEND, "percentunit"),
    "Framebuffer used per pod": ("{{namespace}}/{{pod}}", "decmbytes"),
    "Idle slices held by pods (engine < 1% over 1h)": ("{{GPU_I_PROFILE}}", "short"),
    "MIG layout and state per node": ("", "short"),
    "GPU nodes Ready": ("", "short"),
    "On-demand cost per pool ($/h)": ("{{label_gpu_slicing_pool}} {{label_node_kubernetes_io_instance_type}}",
                                      "currencyUSD"),
    "Share of slices no running pod holds": ("{{label_gpu_slicing_pool}}", "percentunit"),
}


def test_panels_show_what_the_docs_say_with_their_legends_and_units():
    """docs/observability.md's dashboard table (row, panel, what it shows) and the legend and unit of each."""
    text = (ROOT / "docs" / "observability.md").read_text()
    table = text.split('The dashboard "GPU slices (MIG and time-slicing)":')[1].split("## The alerts")[0]
    shows = {cells[1]: (cells[0], cells[2]) for line in table.splitlines()
             if line.startswith("| ") and not line.startswith(("| row |", "| --- |"))
             for cells in [[c.strip() for c in line.strip().strip("|").split("|")]]}
    cfg, pools = _dev()
    got = obs.panels(cfg, pools)
    assert [p.title for p in got] == list(LEGEND_UNIT)
    for p in got:
        row, what = shows[p.title]
        assert p.row == row and p.catches.startswith(what.rstrip(")")), p.title  # the docs may say less
        assert (p.legend, p.unit) == LEGEND_UNIT[p.title], p.title


def test_alerts_wait_and_rank_as_the_docs_say():
    """docs/observability.md's alert table (for, severity, what it catches) at the default thresholds."""
    text = (ROOT / "docs" / "observability.md").read_text()
    table = text.split("## The alerts")[1].split("## How they are tested")[0]
    rows = {cells[0].strip("` "): [c.strip() for c in cells[1:]] for line in table.splitlines()
            if line.startswith("| `") for cells in [line.strip("|").split("|")]}
    alerts = obs.alerts(ObservabilityConfig())
    assert {a.name for a in alerts} <= set(rows)
    for a in alerts:
        for_, severity, catches = rows[a.name]
        assert (a.for_, a.severity) == (for_, severity), a.name
        assert catches.startswith(a.catches), a.name
        assert a.rule()["labels"] == {"severity": severity, "source": "gpu-slicing"}
        assert a.rule()["annotations"]["description"] == a.catches and a.rule()["for"] == for_


# --- the dashboard ------------------------------------------------------------------------------------------

def test_dashboard_panels_cover_the_issue_and_carry_their_queries():
    cfg, pools = _dev()
    board = json.loads(obs.dashboard_json(cfg, pools))
    panels = [p for p in board["panels"] if p["type"] != "row"]
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows == ["Slices per pool", "Utilization and memory", "MIG state per node", "Cost"]
    # the panels docs/observability.md's dashboard table documents, row by row
    doc = (Path(__file__).resolve().parents[1] / "docs" / "observability.md").read_text()
    table = doc.split('The dashboard "GPU slices (MIG and time-slicing)":')[1].split("## The alerts")[0]
    documented = [tuple(c.strip() for c in line.strip("|").split("|")[:2]) for line in table.splitlines()
                  if line.startswith("| ") and not line.startswith(("| row |", "| --- |"))]
    assert len(documented) == 14
    row_of = {}
    row = None
    for p in board["panels"]:
        row = p["title"] if p["type"] == "row" else row
        if p["type"] != "row":
            row_of[p["title"]] = row
    assert [(row_of[p["title"]], p["title"]) for p in panels] == documented
    assert [(p["title"], p["targets"][0]["expr"]) for p in panels] == [(p.title, p.expr) for p in obs.panels(cfg, pools)]
    assert all(p["datasource"] == {"type": "prometheus", "uid": "${datasource}"} for p in panels)
    assert board["templating"]["list"][0]["type"] == "datasource"
    assert board["uid"] == obs.DASHBOARD_UID


def test_cost_panel_prices_each_instance_type_from_the_catalog():
    from gpu_slicing import catalog

    cfg, pools = _dev()
    cost = next(p for p in obs.panels(cfg, pools) if p.title.startswith("On-demand cost"))
    price = catalog.INSTANCE_TYPES["p4d.24xlarge"].on_demand_usd_per_hour
    assert f'label_node_kubernetes_io_instance_type="p4d.24xlarge"}}) * {price:g}' in cost.expr
    assert cost.expr.count(" or ") == 0  # the dev stack runs one instance type
    two = obs.cost_query([catalog.INSTANCE_TYPES["p4d.24xlarge"], catalog.INSTANCE_TYPES["p5.48xlarge"]])
    assert two.count(" or ") == 1 and f"* {catalog.INSTANCE_TYPES['p5.48xlarge'].on_demand_usd_per_hour:g}" in two


def test_cost_panel_uses_the_stacks_own_prices_like_the_plan():
    """gpu-slicing:pricePerHour (a region's or a deal's price) reaches the dashboard as it reaches the plan."""
    from gpu_slicing import catalog

    got = obs.cost_query([catalog.INSTANCE_TYPES["p4d.24xlarge"]], {"p4d.24xlarge": 12.5})
    assert got.endswith('label_node_kubernetes_io_instance_type="p4d.24xlarge"}) * 12.5')


def test_dashboard_configmap_is_what_the_grafana_sidecar_loads():
    cfg, pools = _dev()
    cm = obs.dashboard_configmap(cfg, pools)
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert list(cm["data"]) == [obs.DASHBOARD_KEY] and json.loads(cm["data"][obs.DASHBOARD_KEY])["panels"]


@pytest.mark.slow
def test_plan_stays_light_the_dashboard_library_loads_only_when_building():
    code = ("import sys, tools.checks, tools.plan, gpu_slicing.observability, gpu_slicing.gpu_operator; "
            "print(any(m.startswith(('grafana_foundation_sdk', 'promql_parser')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=child_env(), capture_output=True, text=True)
    if out.returncode != 0 and not (ROOT / ".venv").exists():
        pytest.skip("no .venv")
    assert out.stdout.strip() == "False", out.stderr


# --- chart values -------------------------------------------------------------------------------------------

def test_stack_values_export_the_mig_node_labels_and_select_our_objects():
    values = obs.stack_values()
    (allow,) = values["kube-state-metrics"]["metricLabelsAllowlist"]
    assert allow.startswith("nodes=[") and allow.endswith("]")
    labels = allow[len("nodes=["):-1].split(",")
    assert {"nvidia.com/mig.config", "nvidia.com/mig.config.state", "gpu-slicing/pool",
            "node.kubernetes.io/instance-type"} <= set(labels)
    assert values["prometheus"]["prometheusSpec"] == {"serviceMonitorSelectorNilUsesHelmValues": False,
                                                      "ruleSelectorNilUsesHelmValues": False}


def test_stack_values_turn_off_the_scrapes_eks_keeps_out_of_reach():
    """EKS runs kube-controller-manager, kube-scheduler and etcd outside the cluster (no target: their Down
    alerts fire forever) and its kube-proxy add-on serves metrics on 127.0.0.1 only (every scrape refused)."""
    values = obs.stack_values()
    for component in ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy"):
        assert values[component] == {"enabled": False}, component
    assert "kubeApiServer" not in values and "kubelet" not in values  # EKS serves both to the cluster


def test_stack_value_paths_are_the_reviewed_allow_list():
    from gpu_slicing.helm import flatten

    assert set(flatten(obs.stack_values())) == obs.VALUE_PATHS


def test_stack_value_paths_exist_in_the_pinned_chart():
    """Against kube-prometheus-stack 88.5.3's values.yaml and its kube-state-metrics 8.4.0 subchart's, when
    ../shared/reference has them (kube-prometheus-stack/values.yaml, kube-prometheus-stack/kube-state-metrics-values.yaml)."""
    from conftest import REFERENCE
    from gpu_slicing.helm import has_path

    if not (REFERENCE / "kube-prometheus-stack" / "values.yaml").exists():
        pytest.skip("needs ../shared/reference/kube-prometheus-stack/ (values.yaml of 88.5.3 and its kube-state-metrics "
                    "subchart's): not in the reference set yet; the paths were checked by hand against the chart")
    chart = yaml.safe_load((REFERENCE / "kube-prometheus-stack" / "values.yaml").read_text())
    ksm = yaml.safe_load((REFERENCE / "kube-prometheus-stack" / "kube-state-metrics-values.yaml").read_text())
    for path in obs.VALUE_PATHS:
        if path.startswith("kube-state-metrics."):
            assert has_path(ksm, path.split(".", 1)[1]), path
        else:
            assert has_path(chart, path), path


def test_service_monitor_keeps_the_exporters_pod_labels_and_adds_node():
    sm = obs.service_monitor(ObservabilityConfig(selector_labels={"release": "prom"}), "gpu-operator")
    (ep,) = sm["spec"]["endpoints"]
    assert ep["honorLabels"] is False and ep["port"] == "gpu-metrics"
    assert ep["relabelings"] == [{"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node",
                                  "action": "replace"},
                                 {"regex": "pod|namespace|container", "action": "labeldrop"}]
    assert sm["spec"]["selector"] == {"matchLabels": {"app": "nvidia-dcgm-exporter"}}
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["gpu-operator"]}
    assert sm["metadata"]["labels"]["release"] == "prom" and sm["metadata"]["namespace"] == "monitoring"


# --- what the program hands the charts and Grafana, as their docs read it ---------------------------------

def test_exporter_list_is_exactly_the_documented_fields():
    """docs/observability.md's list: five profiling fields and the framebuffer per MIG instance, temperature,
    power and XID errors per GPU; the comment line names no field."""
    text = obs.exporter_csv()
    assert text.startswith("#") and text.endswith("\n")
    assert obs.parse_exporter_csv(text) == {
        "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_PROF_SM_ACTIVE", "DCGM_FI_PROF_SM_OCCUPANCY",
        "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "DCGM_FI_PROF_DRAM_ACTIVE", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE",
        "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_XID_ERRORS"}
    assert obs.parse_exporter_csv("# a, gauge, comment\n\nDCGM_FI_DEV_GPU_TEMP, gauge, C\n  \n") == {"DCGM_FI_DEV_GPU_TEMP"}


def test_operator_exporter_values_enable_our_list_with_pod_mapping(dev):
    cfg = parse_config(dev)
    assert obs.operator_exporter_values(cfg, resolve_pools(cfg)) == {
        "enabled": True, "config": {"name": "gpu-slicing-dcgm-metrics"},
        "env": [{"name": "DCGM_EXPORTER_KUBERNETES", "value": "true"}], "serviceMonitor": {"enabled": False}}


def test_stack_values_load_dashboards_from_every_namespace_by_the_sidecar_label():
    """kube-prometheus-stack's Grafana sidecar loads ConfigMaps labelled `grafana_dashboard: "1"` (its default
    label and value); searchNamespace ALL reads every namespace, so a dashboard in ours is found too."""
    assert obs.stack_values()["grafana"] == {"sidecar": {"dashboards": {
        "enabled": True, "label": "grafana_dashboard", "labelValue": "1", "searchNamespace": "ALL"}}}


def test_kube_state_metrics_keeps_upper_case_in_label_and_resource_names():
    """kube-state-metrics turns only characters outside [a-zA-Z0-9_] into `_`."""
    assert obs.ksm_label("example.com/Team-A") == "label_example_com_Team_A"
    assert obs.ksm_resource("example.com/FPGA") == "example_com_FPGA"


def test_dashboard_json_is_what_grafana_reads():
    """The board as Grafana's JSON model: its datasource variable is the `${datasource}` every panel names;
    the table panels are instant queries formatted as tables; each panel keeps its unit, description and
    legend; two panels fill a row of Grafana's 24 columns, stat panels four."""
    cfg, pools = _dev()
    board = json.loads(obs.dashboard_json(cfg, pools))
    assert board["title"] == "GPU slices (MIG and time-slicing)"  # docs/observability.md names it
    (var,) = board["templating"]["list"]
    assert (var["name"], var["label"], var["type"], var["query"]) == ("datasource", "Prometheus", "datasource", "prometheus")
    assert board["refresh"] == "1m" and board["time"] == {"from": "now-6h", "to": "now"}
    assert set(board["tags"]) == {"gpu-slicing", "gpu", "mig"}
    by_title = {p.title: p for p in obs.panels(cfg, pools)}
    shown = [p for p in board["panels"] if p["type"] != "row"]
    for p in shown:
        want = by_title[p["title"]]
        (target,) = p["targets"]
        assert (p["type"], p["description"], p["fieldConfig"]["defaults"]["unit"]) == (want.kind, want.catches, want.unit)
        assert target["refId"] == "A" and target.get("legendFormat") == (want.legend or None)
        assert (target.get("instant"), target.get("format")) == ((True, "table") if want.kind == "table" else (None, None))
        assert (p["gridPos"]["w"], p["gridPos"]["h"]) == ((6, 8) if want.kind == "stat" else (12, 8))
    assert {p["type"] for p in shown} == {"timeseries", "stat", "table"}
    assert obs.dashboard_configmap(cfg, pools)["metadata"]["name"] == "gpu-slicing-dashboard"  # as the docs name it


def test_framebuffer_gap_pools_are_the_hopper_mig_pools():
    """NVIDIA/dcgm-exporter#512, #380: no framebuffer series per MIG instance on H100 (and so on H200, the same
    Hopper MIG); an A100 MIG pool has them, and an H100 pool without MIG has no MIG instances at all."""
    groups = [{"name": n, "instanceType": t, "migLayout": layout, "maxSize": 1} for n, t, layout in [
        ("h100", "p5.48xlarge", "all-balanced"), ("h200", "p5en.48xlarge", "all-1g.18gb"),
        ("a100", "p4d.24xlarge", "all-balanced"), ("whole", "p5.4xlarge", "all-disabled")]]
    cfg = parse_config({NS + "cluster": {"name": "c", "publicAccessCidrs": ["10.1.0.0/16"]}, NS + "maxGpuNodes": 4,
                        NS + "nodeGroups": groups})
    assert obs.framebuffer_gap_pools(resolve_pools(cfg)) == ["h100", "h200"]


def test_prometheus_rule_carries_the_alert_group_where_the_selectors_find_it():
    config = ObservabilityConfig(namespace="prom", selector_labels={"release": "prom"})
    rule = obs.prometheus_rule(config)
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert rule["metadata"] == {"name": "gpu-slicing-alerts", "namespace": "prom",
                                "labels": {"app.kubernetes.io/part-of": "gpu-slicing", "release": "prom"}}
    (group,) = rule["spec"]["groups"]
    assert group["name"] == "gpu-slicing.rules"
    assert [r["alert"] for r in group["rules"]] == [a.name for a in obs.alerts(config)]
    assert all(set(r) == {"alert", "expr", "for", "labels", "annotations"} and set(r["annotations"]) == {
        "summary", "description"} for r in group["rules"])  # Prometheus alerting rule fields


def test_service_monitor_scrapes_as_often_as_the_operators_own_did():
    """Ours replaces the GPU Operator's dcgm-exporter ServiceMonitor (its values.yaml: every 15s, honorLabels
    false), on the exporter's `/metrics`, named for the job by the Service's `app` label."""
    sm = obs.service_monitor(ObservabilityConfig(), "gpu-operator")
    assert (sm["apiVersion"], sm["kind"]) == ("monitoring.coreos.com/v1", "ServiceMonitor")
    assert sm["metadata"] == {"name": "gpu-slicing-dcgm-exporter", "namespace": "monitoring",
                              "labels": {"app.kubernetes.io/part-of": "gpu-slicing"}}
    (ep,) = sm["spec"]["endpoints"]
    assert (ep["path"], ep["interval"], sm["spec"]["jobLabel"]) == ("/metrics", "15s", "app")


# --- config -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key,value,allowed", [
    ("prometheusOperator", "helm", "one of install, existing"),
    ("version", "70.0.0", "88.5.3"),
    ("migPendingAlertAfter", "30", "a duration such as 10m"),
    ("selectorLabels", {"release": 1}, "a mapping of Kubernetes label names to string values"),
    ("enabeld", True, "did you mean 'enabled'"),
])
def test_bad_observability_config_names_key_value_and_allowed(dev, key, value, allowed):
    dev[NS + "observability"] = {"enabled": True, key: value}
    with pytest.raises(ConfigError) as e:
        parse_config(dev)
    assert e.value.key == f"{NS}observability.{key}" and allowed in str(e.value)


def test_observability_is_off_by_default_and_on_in_dev():
    cfg = parse_config({NS + "cluster": {"name": "c", "publicAccessCidrs": ["10.1.0.0/16"]}, NS + "maxGpuNodes": 0})
    assert cfg.observability.enabled is False and cfg.observability.prometheus_operator == "install"
    assert parse_config(dev_config()).observability.enabled is True


# --- the program and the plan's checks -------------------------------------------------------------------------

def test_dev_plan_has_the_exporter_list_rules_dashboard_and_stack(dev_runs):
    r = dev_runs["preview"]
    comp = r.one("gpu-slicing:observability:Observability")
    release = r.one("kubernetes:helm.sh/v3:Release", "gpu-dev-observability")
    assert release.inputs["chart"] == "kube-prometheus-stack" and release.inputs["version"] == "88.5.3"
    assert release.inputs["repositoryOpts"]["repo"] == "https://prometheus-community.github.io/helm-charts"
    rule = r.one("kubernetes:monitoring.coreos.com/v1:PrometheusRule")
    monitor = r.one("kubernetes:monitoring.coreos.com/v1:ServiceMonitor")
    board = r.one("kubernetes:core/v1:ConfigMap", "gpu-dev-observability-dashboard")
    for x in (release, rule, monitor, board):
        assert x.parent == comp.urn
    # the CRDs and the Grafana sidecar come with the release: the objects wait for it
    assert release.urn in rule.dependencies and release.urn in monitor.dependencies and release.urn in board.dependencies
    assert r.one("kubernetes:core/v1:Namespace", "gpu-dev-gpu-operator-ns").urn in monitor.dependencies
    csv = r.one("kubernetes:core/v1:ConfigMap", "gpu-dev-gpu-operator-dcgm-metrics")
    assert obs.MIG_FIELDS <= obs.parse_exporter_csv(csv.inputs["data"][obs.EXPORTER_CSV_KEY])
    assert csv.urn in r.one("kubernetes:helm.sh/v3:Release", "gpu-dev-gpu-operator").dependencies


@pytest.mark.slow
def test_existing_prometheus_operator_gets_only_monitor_rules_and_dashboard(dev):
    from conftest import run

    dev[NS + "observability"] = {"enabled": True, "prometheusOperator": "existing", "namespace": "prom",
                                 "selectorLabels": {"release": "prom"}}
    r = run(dev)
    assert r.error is None, r.error
    comp = r.one("gpu-slicing:observability:Observability")
    children = sorted(x.type for x in r.registrations if x.parent == comp.urn)
    assert children == ["kubernetes:core/v1:ConfigMap", "kubernetes:monitoring.coreos.com/v1:PrometheusRule",
                        "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"]
    rule = r.one("kubernetes:monitoring.coreos.com/v1:PrometheusRule")
    assert rule.inputs["metadata"]["namespace"] == "prom" and rule.inputs["metadata"]["labels"]["release"] == "prom"


@pytest.mark.slow
def test_observability_off_registers_no_component(dev):
    from conftest import run

    dev[NS + "observability"] = {"enabled": False}
    r = run(dev)
    assert r.error is None and not r.by_type("gpu-slicing:observability:Observability")


def _findings(resources, config, id_prefix):
    return [f for f in checks.observability(config, resources) if f["id"].startswith(id_prefix)]


@pytest.fixture(scope="module")
def record(dev_runs) -> list[dict]:
    return [r.to_json() for r in dev_runs["preview"].registrations]


def test_check_passes_the_dev_plan(record):
    found = list(checks.observability(dev_config(), record))
    assert [f for f in found if f["severity"] != "info"] == []
    assert {f["id"] for f in found} == {"observability.exporter", "observability.alert-tests"}


def test_check_flags_a_mig_pool_whose_exporter_list_lacks_the_mig_fields(record):
    resources = copy.deepcopy(record)
    cm = next(r for r in resources if r["name"] == "gpu-dev-gpu-operator-dcgm-metrics")
    cm["inputs"]["data"][obs.EXPORTER_CSV_KEY] = "DCGM_FI_DEV_GPU_UTIL, gauge, GPU utilization (in %).\n"
    (f,) = [f for f in _findings(resources, dev_config(), "observability.exporter") if f["severity"] == "error"]
    assert "DCGM_FI_PROF_GR_ENGINE_ACTIVE" in f["message"] and "p4d-balanced" in f["message"]


def test_check_flags_a_mig_stack_without_an_exporter_list(record):
    resources = copy.deepcopy(record)
    rel = next(r for r in resources if r["name"] == "gpu-dev-gpu-operator" and r["type"].endswith("Release"))
    del rel["inputs"]["values"]["dcgmExporter"]
    (f,) = [f for f in _findings(resources, dev_config(), "observability.exporter") if f["severity"] == "error"]
    assert "dcgmExporter.config.name" in f["message"] and "DCGM_FI_DEV_GPU_UTIL" in f["message"]


def test_check_says_h100_mig_slices_have_no_framebuffer_series(record):
    """dcgm-exporter issues #512 and #380: no DCGM_FI_DEV_FB_USED/FB_FREE per MIG instance on H100. A stack with
    an H100 MIG pool is told its memory panels stay empty; the dev stack (A100) is not (test above)."""
    cfg = dev_config()
    cfg[NS + "nodeGroups"][0].update(instanceType="p5.48xlarge", migLayout="all-balanced")
    cfg[NS + "karpenter"] = {"enabled": False}
    cfg[NS + "workloads"] = []
    (f,) = [f for f in _findings(record, cfg, "observability.exporter") if f["severity"] == "warning"]
    assert "p4d-balanced" in f["message"] and "#512" in f["message"] and "#380" in f["message"]
    assert "DCGM_FI_DEV_FB_USED" in f["message"] and "panels stay empty" in f["message"]
    cfg[NS + "observability"] = {"enabled": False}  # nothing shows the empty panels: said, not warned
    found = _findings(record, cfg, "observability.exporter")
    assert [f["severity"] for f in found if "#512" in f["message"]] == ["info"]


def test_check_flags_an_alert_without_a_test(record):
    resources = copy.deepcopy(record)
    rule = next(r for r in resources if r["type"].endswith(":PrometheusRule"))
    rule["inputs"]["spec"]["groups"][0]["rules"].append({"alert": "GpuSlicingUntested", "expr": "vector(1)"})
    (f,) = [f for f in _findings(resources, dev_config(), "observability.alert-tests") if f["severity"] == "error"]
    assert "GpuSlicingUntested" in f["message"]


def test_tested_alerts_ignores_cases_that_only_expect_silence(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump({"tests": [{"alert_rule_test": [
        {"alertname": "Quiet", "eval_time": "1m", "exp_alerts": []},
        {"alertname": "Loud", "eval_time": "1m", "exp_alerts": [{"exp_labels": {"a": "b"}}]}]}]}))
    assert checks.tested_alerts(p) == {"Loud"}


def test_the_docs_show_every_panel_and_alert_and_how_to_open_grafana():
    assert "(docs/observability.md)" in (ROOT / "README.md").read_text()
    text = (ROOT / "docs" / "observability.md").read_text()
    cfg, pools = _dev()
    missing = [p.title for p in obs.panels(cfg, pools) if f"| {p.title} |" not in text]
    missing += [a.name for a in obs.alerts(cfg.observability) if f"| `{a.name}` |" not in text]
    assert missing == []
    assert "kubectl -n monitoring port-forward svc/kube-prometheus-stack-grafana" in text


@pytest.mark.parametrize("mode", ["install", "existing"])
def test_observability_component_alone_parents_its_children_and_waits_for_what_it_is_given(dev, mode):
    import pulumi
    import pulumi_kubernetes as k8s

    from components.observability import Observability, ObservabilityArgs
    from tools.harness import run_program

    dev[NS + "observability"] = {"enabled": True, "prometheusOperator": mode}
    monitoring = load_stack(dev).monitoring

    def build():
        provider = k8s.Provider("k", kubeconfig="{}")
        nodes = pulumi.CustomResource("test:index:Marker", "system-nodes", {})
        Observability("obs", ObservabilityArgs(monitoring=monitoring, provider=provider,
                                               exporter_namespace="gpu-operator", runs_on=nodes))

    r = run_program({}, program=build)
    assert r.error is None, r.error
    comp = r.one("gpu-slicing:observability:Observability")
    children = [x for x in r.registrations if x.parent == comp.urn]
    marker = r.one("test:index:Marker").urn
    assert children and all(marker in x.dependencies for x in children)
    releases = r.by_type("kubernetes:helm.sh/v3:Release")
    assert len(releases) == (1 if mode == "install" else 0)
    if releases:
        assert releases[0].options["customTimeouts"]["create"] == "20m"


@needs_promtool
def test_idle_means_under_one_per_cent_of_the_graphics_engine(tmp_path):
    """docs/observability.md promises "idle" = the graphics engine under 1%: a held slice at 0.5% is idle, one at
    2% (a light job, still working) is not, for the alert (30m window) and the dashboard's idle count (1h)."""
    held = {"node": "g1", "gpu": "0", "GPU_I_PROFILE": "1g.5gb", "namespace": "ml", "container": "main"}
    series = [{"series": _series({**held, "GPU_I_ID": i, "pod": pod}), "values": v}
              for i, pod, v in (("1", "quiet", "0.005x70"), ("2", "light", "0.02x70"), ("3", "busy", "0.5x70"))]
    idle_alert = next(a.expr for a in obs.alerts(ObservabilityConfig()) if a.name == "GpuSlicingSliceIdle")
    cfg, pools = _dev()
    idle_panel = next(p.expr for p in obs.panels(cfg, pools) if p.title.startswith("Idle slices held by pods"))
    case = {"rule_files": [], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series, "promql_expr_test": [
            {"expr": idle_alert, "eval_time": "65m",
             "exp_samples": [{"labels": _series({**held, "GPU_I_ID": "1", "pod": "quiet"}, ""), "value": 0.005}]},
            {"expr": idle_panel, "eval_time": "65m", "exp_samples": [{"labels": '{GPU_I_PROFILE="1g.5gb"}', "value": 1}]},
        ]}]}
    (tmp_path / "idle_test.yaml").write_text(yaml.safe_dump(case, sort_keys=False))
    out = subprocess.run([PROMTOOL, "test", "rules", "idle_test.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


# The DRA rows' legends and units, by hand (Grafana's unit ids, as above).
DRA_LEGEND_UNIT = {
    "DRA devices per pool: published": ("{{label_gpu_slicing_pool}} {{GPU_I_PROFILE}}", "short"),
    "DRA devices per pool: held by a claim": ("{{label_gpu_slicing_pool}} {{GPU_I_PROFILE}}", "short"),
    "Pods Pending for a DRA claim": ("{{namespace}}", "short"),
    "SM active per DRA claim": ("{{namespace}}/{{pod}} {{dra_claim_name}} {{dra_mig_profile}}", "percentunit"),
    "Idle DRA claims": ("{{dra_mig_profile}}", "short"),
}


def _dra_dev():
    dev = dev_config()
    dev[NS + "nodeGroups"][0].update(instanceType="p5.48xlarge", allocation="dra")
    dev[NS + "karpenter"] = {"enabled": False}
    dev[NS + "workloads"] = []
    cfg = parse_config(dev)
    return cfg, resolve_pools(cfg)


def test_dra_panels_show_what_the_docs_say_with_their_legends_and_units():
    """docs/observability.md's DRA rows (panel, what it shows), in the dashboard's order after every other row,
    each with the legend its query's labels give and its unit."""
    text = (ROOT / "docs" / "observability.md").read_text()
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| DRA claims |")]
    cfg, pools = _dra_dev()
    got = [p for p in obs.panels(cfg, pools) if p.row == "DRA claims"]
    assert [(p.row, p.title, p.catches) for p in got] == [tuple(r) for r in rows]
    assert [p.title for p in got] == list(DRA_LEGEND_UNIT)
    for p in got:
        assert (p.legend, p.unit) == DRA_LEGEND_UNIT[p.title], p.title
        assert p.kind == ("stat" if p.title in ("Pods Pending for a DRA claim", "Idle DRA claims") else "timeseries")
    assert obs.panels(cfg, pools)[-len(got):] == tuple(got)


def _gr(labels: dict) -> dict:
    return {"series": _series(labels), "values": "0.5x70"}


@needs_promtool
def test_dra_device_and_pending_panels_count_what_their_titles_say(tmp_path):
    """On node p1 of the DRA pool: GPU 0 in MIG slices (1g.10gb held by claim c1, 1g.10gb unheld, 2g.20gb held by
    c2), GPU 1 whole and unheld; node g9 of another pool holds a slice too and is not counted. Pods: ml/w1 Pending
    with a claim (counted), ml/w2 and ml/w5 Running with one, ml/w3 Pending without one (none of them counted)."""
    cfg, pools = _dra_dev()
    pool = pools[0].name
    by_title = {p.title: p.expr for p in obs.panels(cfg, pools) if p.row == "DRA claims"}
    p1 = {"node": "p1", "gpu": "0", "GPU_I_PROFILE": "1g.10gb"}
    extra = [
        {"series": _series({"node": "p1", POOL_L: pool}, "kube_node_labels"), "values": "1x70"},
        {"series": _series({"node": "g9", POOL_L: "elsewhere"}, "kube_node_labels"), "values": "1x70"},
        _gr({**p1, "GPU_I_ID": "1", "dra_claim_name": "c1", "namespace": "ml", "pod": "w2"}),
        _gr({**p1, "GPU_I_ID": "2"}),
        _gr({**p1, "GPU_I_PROFILE": "2g.20gb", "GPU_I_ID": "3", "dra_claim_name": "c2", "namespace": "ml", "pod": "w4"}),
        _gr({"node": "p1", "gpu": "1"}),
        _gr({**p1, "node": "g9", "GPU_I_ID": "1", "dra_claim_name": "c9", "namespace": "ml", "pod": "w9"}),
    ] + [{"series": _series({"namespace": "ml", "pod": pod, "claim_name": "slice",
                             "resourceclaim_template_name": f"{pod}-slice"}, "kube_pod_resourceclaim_info"),
          "values": "1x70"} for pod in ("w1", "w2", "w5")] + [
        {"series": _series({"namespace": "ml", "pod": pod, "phase": phase}, "kube_pod_status_phase"),
         "values": f"{int(phase == now)}x70"}
        for pod, now in (("w1", "Pending"), ("w2", "Running"), ("w3", "Pending"), ("w5", "Running"))
        for phase in ("Pending", "Running")]
    expected = {
        "DRA devices per pool: published": [({POOL_L: pool, "GPU_I_PROFILE": "1g.10gb"}, 2),
                                            ({POOL_L: pool, "GPU_I_PROFILE": "2g.20gb"}, 1), ({POOL_L: pool}, 1)],
        "DRA devices per pool: held by a claim": [({POOL_L: pool, "GPU_I_PROFILE": "1g.10gb"}, 1),
                                                  ({POOL_L: pool, "GPU_I_PROFILE": "2g.20gb"}, 1)],
        "Pods Pending for a DRA claim": [({"namespace": "ml"}, 1)],
    }
    out = _promtool_expr(tmp_path, [(by_title[t], s) for t, s in expected.items()], tuple(extra))
    assert out.returncode == 0, out.stdout + out.stderr


@needs_promtool
def test_cost_panel_charges_the_stacks_own_price_per_hour(tmp_path):
    """A stack that sets gpu-slicing:pricePerHour (a region's or a deal's price) sees that price in the dashboard's
    cost panel, as its plan's cost guard does, not the catalog's list price: the dev pools' p4d.24xlarge at a
    hand-set 18.5 $/h, on the panel cluster's two p4d nodes of pool mig (37 $/h) and one of pool idle."""
    dev = dev_config()
    dev[NS + "pricePerHour"] = {"p4d.24xlarge": 18.5}
    cfg = parse_config(dev)
    cost = next(p.expr for p in obs.panels(cfg, resolve_pools(cfg)) if p.title == "On-demand cost per pool ($/h)")
    expected = [({POOL_L: "mig", TYPE_L: "p4d.24xlarge"}, 37), ({POOL_L: "idle", TYPE_L: "p4d.24xlarge"}, 18.5)]
    out = _promtool_expr(tmp_path, [(cost, expected)])
    assert out.returncode == 0, out.stdout + out.stderr


@needs_promtool
def test_dra_device_panel_and_alert_count_every_dra_pools_nodes(tmp_path):
    """A stack with two DRA pools (p5-first, p5-second) and a device-plugin pool: the published-devices panel
    counts the devices of both DRA pools' nodes, and the unallocated-devices alert finds the unheld one on the
    second pool's node; the plugin pool's node (an unheld slice too) is in neither."""
    dev = dev_config()
    group = {**dev[NS + "nodeGroups"][0], "instanceType": "p5.48xlarge", "allocation": "dra"}
    dev[NS + "nodeGroups"] = [{**group, "name": "p5-first"}, {**group, "name": "p5-second"},
                              {**dev[NS + "nodeGroups"][0], "name": "p4d-plugin"}]
    dev[NS + "karpenter"] = {"enabled": False}
    dev[NS + "workloads"] = []
    dev[NS + "maxGpuNodes"] = 9
    cfg = parse_config(dev)
    pools = resolve_pools(cfg)
    assert [p.name for p in pools if p.allocation == "dra"] == ["p5-first", "p5-second"]
    published = next(p.expr for p in obs.panels(cfg, pools) if p.title == "DRA devices per pool: published")
    unallocated = next(a.expr for a in obs.alerts(cfg.observability, pools)
                       if a.name == "GpuSlicingDraDevicesUnallocated")
    extra = [{"series": _series({"node": n, POOL_L: pool}, "kube_node_labels"), "values": "1x70"}
             for n, pool in (("q1", "p5-first"), ("q2", "p5-second"), ("q3", "p4d-plugin"))] + [
        _gr({"node": "q1", "gpu": "0", "GPU_I_PROFILE": "1g.10gb", "GPU_I_ID": "1", "dra_claim_name": "c1",
             "namespace": "ml", "pod": "w1"}),
        _gr({"node": "q2", "gpu": "0", "GPU_I_PROFILE": "1g.10gb", "GPU_I_ID": "1"}),
        _gr({"node": "q3", "gpu": "0", "GPU_I_PROFILE": "1g.5gb", "GPU_I_ID": "1"})]
    out = _promtool_expr(tmp_path, [
        (published, [({POOL_L: "p5-first", "GPU_I_PROFILE": "1g.10gb"}, 1),
                     ({POOL_L: "p5-second", "GPU_I_PROFILE": "1g.10gb"}, 1)]),
        (unallocated, [({"node": "q2", POOL_L: "p5-second", "GPU_I_PROFILE": "1g.10gb"}, 1)])], tuple(extra))
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("observed", [False, True])
def test_a_dra_pool_of_whole_gpus_gets_the_exporter_list_with_pod_mapping_and_claims(observed):
    """A DRA pool with MIG off and no dashboards still needs dcgm-exporter configured: without
    KUBERNETES_ENABLE_DRA (and the token enablePodUID mounts) its devices' series name no claim; and the DRA
    variable comes on top of pod mapping (DCGM_EXPORTER_KUBERNETES), which the per-pod panels and the idle alert
    read on a claim's device too (dcgm-exporter's pkg/cmd/app.go: --kubernetes-enable-dra, off by default)."""
    from gpu_slicing.gpu_operator import operator_values

    dev = dev_config()
    dev[NS + "nodeGroups"][0].update(instanceType="p5.48xlarge", allocation="dra", migLayout="all-disabled")
    dev[NS + "karpenter"] = {"enabled": False}
    dev[NS + "workloads"] = []
    dev[NS + "observability"] = {"enabled": observed}
    cfg = parse_config(dev)
    exporter = operator_values(cfg, resolve_pools(cfg))["dcgmExporter"]
    assert exporter["env"] == [{"name": "DCGM_EXPORTER_KUBERNETES", "value": "true"},
                               {"name": "KUBERNETES_ENABLE_DRA", "value": "true"}]
    assert exporter["config"] == {"name": "gpu-slicing-dcgm-metrics"} and exporter["enablePodUID"] is True
    assert ("serviceMonitor" in exporter) is observed  # ours replaces the operator's only where we scrape
