"""Seeing the slices (docs/facts.md §9): the exporter's metrics list, the alerts under promtool, every query as PromQL
over metrics that exist, the dashboard, the chart values, the config section and the plan's checks."""
from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, dev_config
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
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c", code], cwd=ROOT, capture_output=True, text=True)
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
