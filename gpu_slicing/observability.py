"""Seeing the slices (docs/facts.md §9) as plain data: the dcgm-exporter metrics list, the kube-prometheus-stack
values, the ServiceMonitor, the alert rules and the Grafana dashboard. No Pulumi here:
`components/observability.py` and `components/gpu_operator.py` turn these into resources.

Design notes a reviewer needs:
- MIG instances do not report `DCGM_FI_DEV_GPU_UTIL`; per-slice activity comes from the profiling fields
  and memory from `DCGM_FI_DEV_FB_USED`/`FB_FREE`, each series labelled `GPU_I_PROFILE`/`GPU_I_ID`, and with
  pod mapping on, `pod`/`namespace`/`container` of the pod holding the slice.
- dcgm-exporter puts `pod`/`namespace`/`container` only on the series of a slice a pod holds; an unheld
  slice's series have none. The Prometheus Operator gives every target of a ServiceMonitor the labels
  `namespace`, `pod`, `container` of the scraped pod (here the exporter's own), and Prometheus resolves a
  clash between a target label and a scraped one by `honor_labels`: false (the default) keeps the target's
  and renames the scraped one `exported_<name>`; true keeps the scraped one, but where the series has none
  (an unheld slice) the target's stays, so every unheld slice would read as held by the exporter's pod. Our
  ServiceMonitor keeps `honorLabels` false and drops those three target labels in its `relabelings` (which
  run before the scrape), so a series carries `pod`/`namespace`/`container` exactly when dcgm-exporter
  gives them: `{pod!=""}` is "held by a pod". The exporter itself stays identified by `instance`, `job`,
  `service` and `endpoint`. The relabelings also copy the scraped pod's node into `node`, the label
  kube-state-metrics uses, so DCGM series join node labels (pool, MIG state) on `node`.
- On H100 (and H200, the same Hopper MIG) dcgm-exporter has been reported to give no
  `DCGM_FI_DEV_FB_USED`/`FB_FREE` per MIG instance (NVIDIA/dcgm-exporter#512, #380): the framebuffer
  panels stay empty for such pools (the plan's `observability.exporter` check says so).
- Node labels reach Prometheus only through kube-state-metrics' `--metric-labels-allowlist`, as
  `kube_node_labels{label_<sanitized>=...}`; extended resources as `resource="nvidia_com_mig_1g_5gb"`.
- Every metric a rule or a panel uses is on `EXPORTER_METRICS` or `KSM_METRICS` (the reviewed list of
  kube-state-metrics metric names we rely on); the tests parse every expression with promql-parser and
  hold its metric names to those lists.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from . import catalog
from .config import ObservabilityConfig, StackConfig
from .labels import MIG_CONFIG_LABEL, POOL_LABEL

CHART = "kube-prometheus-stack"
REPOSITORY = "https://prometheus-community.github.io/helm-charts"
RELEASE = "kube-prometheus-stack"
MONITORING_API = "monitoring.coreos.com/v1"
MIG_STATE_LABEL = "nvidia.com/mig.config.state"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
# Node labels kube-state-metrics exports (docs/facts.md §9): MIG layout and state, our pool, the instance type (cost).
NODE_LABELS_ALLOWED = (MIG_CONFIG_LABEL, MIG_STATE_LABEL, POOL_LABEL, INSTANCE_TYPE_LABEL,
                       "karpenter.sh/nodepool", "nvidia.com/gpu.product")

# --- dcgm-exporter --------------------------------------------------------------------------------------

EXPORTER_CONFIGMAP = "gpu-slicing-dcgm-metrics"
EXPORTER_CSV_KEY = "dcgm-metrics.csv"  # the key the GPU Operator mounts (controllers: MetricsConfigFileName)
EXPORTER_SERVICE_LABELS = {"app": "nvidia-dcgm-exporter"}  # the operator's Service for the exporter
EXPORTER_PORT = "gpu-metrics"
# Pod mapping: dcgm-exporter reads the kubelet's pod-resources API and labels each series with the pod
# holding the device (a MIG UUID for a slice). The operator's DaemonSet sets it today; we state it, since
# every per-pod panel and the idle-slice alert depend on it.
EXPORTER_ENV = ({"name": "DCGM_EXPORTER_KUBERNETES", "value": "true"},)
# DRA pools: dcgm-exporter attributes devices handed out through claims only with KUBERNETES_ENABLE_DRA (its
# flag --kubernetes-enable-dra, off by default): it then reads the pod-resources API's dynamic resources and,
# through a ResourceSlice informer, labels a held device's series with the pod (`pod`, `namespace`,
# `container`) and the claim (`dra_claim_name`, `dra_claim_namespace`, `dra_driver_name`, `dra_pool_name`,
# `dra_device_name`; `dra_mig_profile`, `dra_mig_device_uuid` on a MIG slice) (NVIDIA/dcgm-exporter,
# internal/pkg/transformation const.go and kubernetes.go; the labels since 4.3.1-4.4.0). The informer needs
# the API: the GPU Operator (v26.7.0, ClusterPolicy) mounts the exporter's service-account token only with pod
# metadata on (`enablePodUID`), and its exporter ClusterRole reads pods but not ResourceSlices, so the DRA
# driver component binds that read (components/dra_driver.py).
DRA_EXPORTER_ENV = ({"name": "KUBERNETES_ENABLE_DRA", "value": "true"},)
DRA_CLAIM = "dra_claim_name"  # dcgm-exporter's label of a device a DRA claim holds
DRA_CLAIM_NAMESPACE = "dra_claim_namespace"
DRA_MIG_PROFILE = "dra_mig_profile"


@dataclass(frozen=True)
class ExporterField:
    field: str
    kind: str  # Prometheus metric type
    help: str
    per_mig_instance: bool  # reported for each MIG instance (GPU_I_ID), not only per physical GPU


EXPORTER_METRICS: tuple[ExporterField, ...] = (
    ExporterField("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active.", True),
    ExporterField("DCGM_FI_PROF_SM_ACTIVE", "gauge", "Ratio of cycles an SM has at least one warp assigned.", True),
    ExporterField("DCGM_FI_PROF_SM_OCCUPANCY", "gauge", "Ratio of resident warps to the SM's maximum.", True),
    ExporterField("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gauge", "Ratio of cycles the tensor pipe is active.", True),
    ExporterField("DCGM_FI_PROF_DRAM_ACTIVE", "gauge", "Ratio of cycles the memory interface is active.", True),
    ExporterField("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).", True),
    ExporterField("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).", True),
    ExporterField("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).", False),
    ExporterField("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", False),
    ExporterField("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered.", False),
)
# What a MIG pool needs from the exporter: slice activity and memory (the `observability.exporter` check).
MIG_FIELDS = frozenset({"DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_PROF_SM_ACTIVE", "DCGM_FI_PROF_DRAM_ACTIVE",
                        "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE"})
NOT_ON_MIG = frozenset({"DCGM_FI_DEV_GPU_UTIL"})  # docs/facts.md §9: not supported on MIG instances
FRAMEBUFFER_FIELDS = ("DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE")
# GPUs on which dcgm-exporter was reported to give no framebuffer series per MIG instance
# (NVIDIA/dcgm-exporter#512, #380, on H100; H200 is the same Hopper MIG, so it is expected there too).
FRAMEBUFFER_GAP_GPUS = frozenset({catalog.H100_80GB.name, catalog.H200_141GB.name})
FRAMEBUFFER_GAP_SOURCE = "NVIDIA/dcgm-exporter#512 and #380"


def framebuffer_gap_pools(pools: Iterable[Any]) -> list[str]:
    """MIG pools whose per-slice memory series dcgm-exporter may not give (`FRAMEBUFFER_GAP_GPUS`)."""
    return [p.name for p in pools if p.gpu.mig_capable and p.layout.mig_enabled
            and p.gpu.name in FRAMEBUFFER_GAP_GPUS]


def exporter_csv(fields: Iterable[ExporterField] = EXPORTER_METRICS) -> str:
    """The exporter's metrics list: `field, type, help` lines, as its own default CSVs are written."""
    lines = ["# gpu-slicing: fields that work per MIG instance (profiling, framebuffer) + per-GPU health"]
    lines += [f"{f.field}, {f.kind}, {f.help}" for f in fields]
    return "\n".join(lines) + "\n"


def parse_exporter_csv(text: str) -> set[str]:
    """Field names in an exporter CSV (comments and blank lines skipped)."""
    return {line.split(",")[0].strip() for line in text.splitlines() if line.strip() and not line.startswith("#")}


def uses_mig(pools: Iterable[Any]) -> bool:
    return any(p.gpu.mig_capable and p.layout.mig_enabled for p in pools)


def dra_pool_names(pools: Iterable[Any]) -> list[str]:
    return [p.name for p in pools if getattr(p, "allocation", "") == "dra"]


def needs_exporter_config(cfg: StackConfig, pools: Iterable[Any]) -> bool:
    """Our metrics list goes in when slices are watched or exist: a MIG pool's default list would spend a
    field on DCGM_FI_DEV_GPU_UTIL, which MIG instances never report; and wherever DRA pools are, so the
    exporter attributes their devices to claims."""
    pools = list(pools)
    return cfg.observability.enabled or uses_mig(pools) or bool(dra_pool_names(pools))


def operator_exporter_values(cfg: StackConfig, pools: Iterable[Any]) -> dict[str, Any]:
    """`dcgmExporter` values of the GPU Operator chart (merged by gpu_slicing.gpu_operator)."""
    if not needs_exporter_config(cfg, pools):
        return {}
    pools = list(pools)
    values: dict[str, Any] = {"enabled": True, "config": {"name": EXPORTER_CONFIGMAP},
                              "env": [dict(e) for e in EXPORTER_ENV]}
    if dra_pool_names(pools):  # see DRA_EXPORTER_ENV: claims on the series, the token the informer needs
        values["env"] += [dict(e) for e in DRA_EXPORTER_ENV]
        values["enablePodUID"] = True
    if cfg.observability.enabled:
        values["serviceMonitor"] = {"enabled": False}  # ours (pod labels as the exporter gives them, node) replaces it
    return values


# --- kube-prometheus-stack ------------------------------------------------------------------------------

# Every value path this program sets, each reviewed against kube-prometheus-stack 88.5.3's values.yaml
# (and its kube-state-metrics 8.4.0 subchart's, for `kube-state-metrics.*`). The chart ships a values
# schema only for parts of it, so a typo would mostly be ignored.
VALUE_PATHS = frozenset({
    "kubeControllerManager.enabled", "kubeScheduler.enabled", "kubeEtcd.enabled", "kubeProxy.enabled",
    "kube-state-metrics.metricLabelsAllowlist",
    "prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues",
    "prometheus.prometheusSpec.ruleSelectorNilUsesHelmValues",
    "grafana.sidecar.dashboards.enabled", "grafana.sidecar.dashboards.label",
    "grafana.sidecar.dashboards.labelValue", "grafana.sidecar.dashboards.searchNamespace",
})
DASHBOARD_LABEL = ("grafana_dashboard", "1")  # the chart's sidecar defaults, stated


# Scrapes of what EKS does not let a Prometheus in the cluster reach, each off with its alerts (the chart
# renders a component's rules only while it is enabled): the control plane (kube-controller-manager,
# kube-scheduler, etcd) runs outside the cluster, so those scrapes find no target and their critical
# `...Down` alerts fire forever; EKS's kube-proxy add-on serves its metrics on 127.0.0.1:10249 only
# (aws/containers-roadmap#657, prometheus-community/helm-charts#977), so its targets are found but every
# scrape is refused and `TargetDown` fires forever.
UNREACHABLE_ON_EKS = ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy")


def stack_values() -> dict[str, Any]:
    """Values for the pinned kube-prometheus-stack: no scrapes of what EKS keeps out of reach, MIG node labels
    exported, our ServiceMonitor and rules selected without the chart's `release` label, dashboards loaded
    from ConfigMaps in every namespace."""
    return {
        **{component: {"enabled": False} for component in UNREACHABLE_ON_EKS},
        "kube-state-metrics": {"metricLabelsAllowlist": ["nodes=[" + ",".join(NODE_LABELS_ALLOWED) + "]"]},
        "prometheus": {"prometheusSpec": {"serviceMonitorSelectorNilUsesHelmValues": False,
                                          "ruleSelectorNilUsesHelmValues": False}},
        "grafana": {"sidecar": {"dashboards": {"enabled": True, "label": DASHBOARD_LABEL[0],
                                               "labelValue": DASHBOARD_LABEL[1], "searchNamespace": "ALL"}}},
    }


def ksm_label(k8s_label: str) -> str:
    """kube-state-metrics' name for a node label: `nvidia.com/mig.config.state` ->
    `label_nvidia_com_mig_config_state` (every character not [a-zA-Z0-9_] becomes `_`)."""
    return "label_" + re.sub(r"[^a-zA-Z0-9_]", "_", k8s_label)


def ksm_resource(resource: str) -> str:
    """kube-state-metrics' `resource` label value: `nvidia.com/mig-1g.5gb` -> `nvidia_com_mig_1g_5gb`."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", resource)


# --- objects ----------------------------------------------------------------------------------------------

def _meta(name: str, obs: ObservabilityConfig, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {"name": name, "namespace": obs.namespace,
            "labels": {"app.kubernetes.io/part-of": "gpu-slicing", **obs.selector_labels, **(labels or {})}}


# The labels dcgm-exporter gives a held slice's series, which the Prometheus Operator also gives every target
# (the scraped pod's own): dropped from the target so the exporter's are the only ones (see the module notes).
EXPORTER_POD_LABELS = ("pod", "namespace", "container")


def service_monitor(obs: ObservabilityConfig, exporter_namespace: Any) -> dict[str, Any]:
    """The ServiceMonitor for the operator's dcgm-exporter Service (see the module notes)."""
    return {
        "apiVersion": MONITORING_API, "kind": "ServiceMonitor",
        "metadata": _meta("gpu-slicing-dcgm-exporter", obs),
        "spec": {
            "selector": {"matchLabels": dict(EXPORTER_SERVICE_LABELS)},
            "namespaceSelector": {"matchNames": [exporter_namespace]},
            "jobLabel": "app",
            "endpoints": [{"port": EXPORTER_PORT, "path": "/metrics", "interval": "15s", "honorLabels": False,
                           "relabelings": [{"sourceLabels": ["__meta_kubernetes_pod_node_name"],
                                            "targetLabel": "node", "action": "replace"},
                                           {"regex": "|".join(EXPORTER_POD_LABELS), "action": "labeldrop"}]}],
        },
    }


# --- PromQL building blocks ---------------------------------------------------------------------------------

POOL = ksm_label(POOL_LABEL)
MIG_CONFIG = ksm_label(MIG_CONFIG_LABEL)
MIG_STATE = ksm_label(MIG_STATE_LABEL)
INSTANCE_TYPE = ksm_label(INSTANCE_TYPE_LABEL)
SLICE_RESOURCES = "nvidia_com_mig_.+|nvidia_com_gpu.*"  # MIG slices, whole and time-sliced GPUs
MIG_RESOURCES = "nvidia_com_mig_.+"
GPU_NODES = f'kube_node_labels{{{POOL}!=""}}'
_POOL_OF_NODE = f"on (node) group_left ({POOL}) {GPU_NODES}"


def _requests(resources: str, phase: str) -> str:
    """Slice requests of pods in `phase` (a regex): kube-state-metrics keeps finished pods' requests."""
    return (f'(kube_pod_container_resource_requests{{resource=~"{resources}"}} * on (namespace, pod) '
            f'group_left () max by (namespace, pod) (kube_pod_status_phase{{phase=~"{phase}"}}))')


ADVERTISED = f'kube_node_status_allocatable{{resource=~"{SLICE_RESOURCES}"}} * {_POOL_OF_NODE}'
IN_USE = f'{_requests(SLICE_RESOURCES, "Running")} * {_POOL_OF_NODE}'


def cost_query(instance_types: Iterable[catalog.InstanceType], prices: Mapping[str, float] | None = None) -> str:
    """$/h of each pool's nodes at the plan's prices: the stack's pricePerHour where it names the type, else
    the catalog's on-demand figure (one term per instance type)."""
    def price(t: catalog.InstanceType) -> float:
        return float((prices or {}).get(t.name, t.on_demand_usd_per_hour))

    terms = [f'count by ({POOL}, {INSTANCE_TYPE}) (kube_node_labels{{{POOL}!="", {INSTANCE_TYPE}="{t.name}"}}) '
             f"* {price(t):g}" for t in sorted(set(instance_types), key=lambda t: t.name)]
    return " or ".join(terms) if terms else "vector(0)"


# --- alerts ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: str
    summary: str
    catches: str  # what it catches, for the README and the report

    def rule(self) -> dict[str, Any]:
        return {"alert": self.name, "expr": self.expr, "for": self.for_,
                "labels": {"severity": self.severity, "source": "gpu-slicing"},
                "annotations": {"summary": self.summary, "description": self.catches}}


# A slice held by a pod, as an alert names it: one series however many exporter pods (restarts) reported it.
HELD_SLICE = "node, gpu, GPU_I_PROFILE, GPU_I_ID, namespace, pod, container"


def alerts(obs: ObservabilityConfig, pools: Iterable[Any] = ()) -> tuple[Alert, ...]:
    """The alert rules; with DRA pools among `pools`, theirs too (`dra_alerts`)."""
    return (*_alerts(obs), *dra_alerts(obs, pools))


def _alerts(obs: ObservabilityConfig) -> tuple[Alert, ...]:
    return (
        Alert("GpuSlicingMigConfigFailed",
              f'kube_node_labels{{{MIG_STATE}="failed"}}', "1m", "critical",
              "MIG reconfiguration failed on {{ $labels.node }} (layout {{ $labels.%s }})" % MIG_CONFIG,
              "the MIG manager gave up applying nvidia.com/mig.config (usually GPU clients still running: "
              "cordon, drain, relabel); the node advertises no slices of the new layout"),
        Alert("GpuSlicingMigConfigStuck",
              f'max by (node, {POOL}, {MIG_CONFIG}) (kube_node_labels{{{MIG_STATE}=~"pending|rebooting"}})',
              obs.mig_pending_alert_after, "warning",
              "MIG reconfiguration of {{ $labels.node }} has not finished in %s" % obs.mig_pending_alert_after,
              "a node whose mig.config.state stays pending/rebooting longer than MIG setup takes "
              "(NVIDIA/gpu-operator#2833: wedged while GPU clients keep running)"),
        Alert("GpuSlicingGpuNodeNotReady",
              f'(kube_node_status_condition{{condition="Ready", status="true"}} == 0) * {_POOL_OF_NODE}',
              "10m", "critical",
              "GPU node {{ $labels.node }} of pool {{ $labels.%s }} is NotReady" % POOL,
              "a GPU node NotReady for 10 minutes (the MIG manager restarting kubelet on AL2023, "
              "NVIDIA/gpu-operator#2415; a dead instance): its slices are gone"),
        Alert("GpuSlicingPodsPendingForSlices",
              f'sum by (namespace, pod, resource) (kube_pod_container_resource_requests{{resource=~"{SLICE_RESOURCES}"}}) '
              '* on (namespace, pod) group_left () (max by (namespace, pod) (kube_pod_status_phase{phase="Pending"}) == 1)',
              "15m", "warning",
              "{{ $labels.namespace }}/{{ $labels.pod }} has waited 15m for {{ $labels.resource }}",
              "pods Pending for a slice resource: the pool is full, at maxSize/maxNodes, or its nodes never "
              "advertised that profile"),
        Alert("GpuSlicingSliceIdle",
              f'max by ({HELD_SLICE}) (max_over_time(DCGM_FI_PROF_GR_ENGINE_ACTIVE{{pod!=""}}[30m])) < 0.01',
              obs.idle_alert_after, "info",
              "{{ $labels.namespace }}/{{ $labels.pod }} holds a {{ $labels.GPU_I_PROFILE }} slice it has not "
              "used for %s" % obs.idle_alert_after,
              "a slice held by a pod whose graphics engine stayed under 1% for hours: paid for, unused"),
        Alert("GpuSlicingSlicesUnallocated",
              f'sum by (node, resource) (kube_node_status_allocatable{{resource=~"{MIG_RESOURCES}"}}) - '
              f'(sum by (node, resource) ({_requests(MIG_RESOURCES, "Running")}) or '
              f'sum by (node, resource) (kube_node_status_allocatable{{resource=~"{MIG_RESOURCES}"}}) * 0) > 0',
              obs.idle_alert_after, "info",
              "{{ $value }} {{ $labels.resource }} slices on {{ $labels.node }} unallocated for %s"
              % obs.idle_alert_after,
              "slices a node advertises that no running pod has requested for hours: a smaller layout or pool "
              "would do"),
    )


# --- DRA pools: claims, not extended resources ------------------------------------------------------------
# A DRA pod requests no `nvidia.com/*` resource and a DRA node advertises none, so the alerts above never see
# them. kube-state-metrics (v2.20.0 and later, EXPERIMENTAL) has `kube_pod_resourceclaim_info`, one series per
# entry of a pod's spec.resourceClaims (labels `claim_name`, `resourceclaim_name`, `resourceclaim_template_name`);
# dcgm-exporter labels a held device's series with its claim (DRA_EXPORTER_ENV), and a device no claim holds
# keeps a series without those labels. DRA pools' nodes are found by the pool label kube-state-metrics exports.

def _dra_nodes(names: Sequence[str]) -> str:
    """One series per node of the named DRA pools, with the pool label."""
    return f'max by (node, {POOL}) (kube_node_labels{{{POOL}=~"{"|".join(names)}"}})'


def _dra_devices(claim: str) -> str:
    """One series per DRA device (a MIG slice, or a GPU with no MIG slice) whose claim label matches `claim`
    (`=""`: no claim holds it; `!=""`: held), one however many pods share it."""
    by = "node, gpu, GPU_I_PROFILE, GPU_I_ID"
    return (f'(max by ({by}) (DCGM_FI_PROF_GR_ENGINE_ACTIVE{{GPU_I_PROFILE!="", {DRA_CLAIM}{claim}""}}) or '
            f'(max by ({by}) (DCGM_FI_PROF_GR_ENGINE_ACTIVE{{GPU_I_PROFILE="", {DRA_CLAIM}{claim}""}}) '
            f'unless on (node, gpu) DCGM_FI_PROF_GR_ENGINE_ACTIVE{{GPU_I_PROFILE!=""}}))')


def _claim_pods(phase: str) -> str:
    """Pods in `phase` holding a DRA claim, one series per claim they reference."""
    return ('max by (namespace, pod, claim_name, resourceclaim_name, resourceclaim_template_name) '
            '(kube_pod_resourceclaim_info) * on (namespace, pod) group_left () '
            f'(max by (namespace, pod) (kube_pod_status_phase{{phase="{phase}"}}) == 1)')


def dra_alerts(obs: ObservabilityConfig, pools: Iterable[Any]) -> tuple[Alert, ...]:
    """The pending-slice and unallocated-slice alerts for DRA pools (none without DRA pools). The idle-slice
    alert covers them as it is: dcgm-exporter gives a claim's device the `pod` label too."""
    names = dra_pool_names(pools)
    if not names:
        return ()
    return (
        Alert("GpuSlicingPodsPendingForDraClaims", _claim_pods("Pending"), "15m", "warning",
              "{{ $labels.namespace }}/{{ $labels.pod }} has waited 15m for the device of its DRA claim "
              "{{ $labels.claim_name }}",
              "pods holding a DRA claim Pending: no device of a DRA pool matches it free (the pool is full, its "
              "layout lacks the profile, or the DRA kubelet plugin is not running on the nodes)"),
        Alert("GpuSlicingDraDevicesUnallocated",
              f'count by (node, {POOL}, GPU_I_PROFILE) ({_dra_devices("=")} * on (node) group_left ({POOL}) '
              f'{_dra_nodes(names)})',
              obs.idle_alert_after, "info",
              "{{ $value }} DRA devices ({{ $labels.GPU_I_PROFILE }}) on {{ $labels.node }} of pool "
              "{{ $labels.%s }} held by no claim for %s" % (POOL, obs.idle_alert_after),
              "devices a DRA pool's node publishes that no claim has held for hours: a smaller layout or pool "
              "would do (every device reads as unheld if dcgm-exporter runs without KUBERNETES_ENABLE_DRA)"),
    )


RULE_GROUP = "gpu-slicing.rules"


def rule_groups(obs: ObservabilityConfig, pools: Iterable[Any] = ()) -> list[dict[str, Any]]:
    """Prometheus rule groups: the PrometheusRule's `spec.groups` and the file promtool tests load."""
    return [{"name": RULE_GROUP, "rules": [a.rule() for a in alerts(obs, pools)]}]


def prometheus_rule(obs: ObservabilityConfig, pools: Iterable[Any] = ()) -> dict[str, Any]:
    return {"apiVersion": MONITORING_API, "kind": "PrometheusRule",
            "metadata": _meta("gpu-slicing-alerts", obs), "spec": {"groups": rule_groups(obs, pools)}}


# --- dashboard ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Panel:
    row: str
    title: str
    kind: str  # timeseries | stat | table
    expr: str
    legend: str
    unit: str
    catches: str


def panels(cfg: StackConfig, pools: Iterable[Any]) -> tuple[Panel, ...]:
    """The dashboard's panels as data: what the builder renders and the tests parse."""
    types = [t for p in pools for t in p.instance_types]
    slice_id = "{{node}} GPU {{gpu}} {{GPU_I_PROFILE}} #{{GPU_I_ID}}"
    return (
        Panel("Slices per pool", "Slices advertised", "timeseries", f"sum by ({POOL}, resource) ({ADVERTISED})",
              f"{{{{{POOL}}}}} {{{{resource}}}}", "short",
              "what each pool's nodes advertise per slice resource (drops when a node is NotReady or a "
              "MIG reconfiguration failed)"),
        Panel("Slices per pool", "Slices requested (Pending + Running pods)", "timeseries",
              f'sum by (resource) ({_requests(SLICE_RESOURCES, "Pending|Running")})', "{{resource}}", "short",
              "demand per slice resource, including pods still Pending"),
        Panel("Slices per pool", "Slices in use (Running pods)", "timeseries", f"sum by ({POOL}, resource) ({IN_USE})",
              f"{{{{{POOL}}}}} {{{{resource}}}}", "short", "slices held by running pods, per pool"),
        Panel("Slices per pool", "Pods Pending for a slice", "stat",
              f'count by (resource) ({_requests(SLICE_RESOURCES, "Pending")} > 0)', "{{resource}}", "short",
              "pods waiting for a slice resource (full pool, or a profile no node advertises)"),
        Panel("Utilization and memory", "Graphics engine active per slice", "timeseries",
              "avg by (node, gpu, GPU_I_PROFILE, GPU_I_ID) (DCGM_FI_PROF_GR_ENGINE_ACTIVE)", slice_id, "percentunit",
              "how busy each MIG instance is (MIG instances report no DCGM_FI_DEV_GPU_UTIL)"),
        Panel("Utilization and memory", "SM active per pod", "timeseries",
              'avg by (namespace, pod, GPU_I_PROFILE) (DCGM_FI_PROF_SM_ACTIVE{pod!=""})',
              "{{namespace}}/{{pod}} {{GPU_I_PROFILE}}", "percentunit", "how much of its slice's SMs each pod keeps busy"),
        Panel("Utilization and memory", "Memory bandwidth active per slice", "timeseries",
              "avg by (node, gpu, GPU_I_PROFILE, GPU_I_ID) (DCGM_FI_PROF_DRAM_ACTIVE)", slice_id, "percentunit",
              "memory-bound slices"),
        Panel("Utilization and memory", "Framebuffer used per slice", "timeseries",
              "sum by (node, gpu, GPU_I_PROFILE, GPU_I_ID) (DCGM_FI_DEV_FB_USED) / sum by (node, gpu, GPU_I_PROFILE, "
              "GPU_I_ID) (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)", slice_id, "percentunit",
              "slices close to their memory size (an out-of-memory risk a bigger profile avoids); empty for "
              f"H100/H200 MIG slices, whose framebuffer series dcgm-exporter does not give ({FRAMEBUFFER_GAP_SOURCE})"),
        Panel("Utilization and memory", "Framebuffer used per pod", "timeseries",
              'sum by (namespace, pod) (DCGM_FI_DEV_FB_USED{pod!=""})', "{{namespace}}/{{pod}}", "decmbytes",
              "memory each pod uses on its slice (MiB; none on H100/H200 MIG slices, see the panel above)"),
        Panel("Utilization and memory", "Idle slices held by pods (engine < 1% over 1h)", "stat",
              f'count by (GPU_I_PROFILE) (max by ({HELD_SLICE}) '
              f'(max_over_time(DCGM_FI_PROF_GR_ENGINE_ACTIVE{{pod!=""}}[1h])) < 0.01)',
              "{{GPU_I_PROFILE}}", "short", "slices paid for and held, but unused"),
        Panel("MIG state per node", "MIG layout and state per node", "table",
              f'max by (node, {POOL}, {MIG_CONFIG}, {MIG_STATE}) (kube_node_labels{{{MIG_CONFIG}!=""}})', "", "short",
              "each GPU node's nvidia.com/mig.config and its state (success, pending, rebooting, failed)"),
        Panel("MIG state per node", "GPU nodes Ready", "table",
              f'kube_node_status_condition{{condition="Ready", status="true"}} * {_POOL_OF_NODE}', "", "short",
              "GPU nodes and whether they are Ready (1) or not (0)"),
        Panel("Cost", "On-demand cost per pool ($/h)", "timeseries", cost_query(types, cfg.price_per_hour),
              f"{{{{{POOL}}}}} {{{{{INSTANCE_TYPE}}}}}", "currencyUSD",
              "nodes per pool times the plan's on-demand price of their instance type"),
        Panel("Cost", "Share of slices no running pod holds", "timeseries",
              f"1 - ((sum by ({POOL}) ({IN_USE})) or (sum by ({POOL}) ({ADVERTISED}) * 0)) / sum by ({POOL}) ({ADVERTISED})",
              f"{{{{{POOL}}}}}", "percentunit", "the part of each pool's bill paying for idle slices"),
        *_dra_panels(pools),
    )


def _dra_panels(pools: Iterable[Any]) -> tuple[Panel, ...]:
    """DRA pools' slices are held by claims, not extended resources, so the "Slices per pool" panels show
    nothing of them: these count their devices from dcgm-exporter's series (published: every device's;
    held: those labelled with a claim) and their Pending pods from kube-state-metrics' claim references."""
    names = dra_pool_names(pools)
    if not names:
        return ()
    nodes = _dra_nodes(names)
    return (
        Panel("DRA claims", "DRA devices per pool: published", "timeseries",
              f'count by ({POOL}, GPU_I_PROFILE) (({_dra_devices("=")} or {_dra_devices("!=")}) '
              f"* on (node) group_left ({POOL}) {nodes})",
              f"{{{{{POOL}}}}} {{{{GPU_I_PROFILE}}}}", "short",
              "the devices each DRA pool's nodes publish (a MIG slice, or a GPU without MIG), held or not"),
        Panel("DRA claims", "DRA devices per pool: held by a claim", "timeseries",
              f'count by ({POOL}, GPU_I_PROFILE) ({_dra_devices("!=")} * on (node) group_left ({POOL}) {nodes})',
              f"{{{{{POOL}}}}} {{{{GPU_I_PROFILE}}}}", "short", "the devices DRA claims hold, per pool"),
        Panel("DRA claims", "Pods Pending for a DRA claim", "stat",
              f'count by (namespace) ({_claim_pods("Pending")})', "{{namespace}}", "short",
              "pods whose claim no DRA device serves yet (full pool, or a profile the layout lacks)"),
        Panel("DRA claims", "SM active per DRA claim", "timeseries",
              'avg by (namespace, pod, dra_claim_name, dra_mig_profile) (DCGM_FI_PROF_SM_ACTIVE{dra_claim_name!=""})',
              "{{namespace}}/{{pod}} {{dra_claim_name}} {{dra_mig_profile}}", "percentunit",
              "how much of its device each DRA claim keeps busy"),
        Panel("DRA claims", "Idle DRA claims", "stat",
              'count by (dra_mig_profile) (max_over_time(DCGM_FI_PROF_GR_ENGINE_ACTIVE{dra_claim_name!=""}[1h]) < 0.01)',
              "{{dra_mig_profile}}", "short", "devices allocated to a claim but unused for an hour"),
    )


DASHBOARD_UID = "gpu-slicing-slices"
DASHBOARD_KEY = "gpu-slicing-slices.json"


def dashboard_json(cfg: StackConfig, pools: Iterable[Any]) -> str:
    """The dashboard, built with grafana-foundation-sdk (imported here only: it is not small)."""
    from grafana_foundation_sdk.builders import dashboard, prometheus, stat, table, timeseries
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import DataSourceRef
    from grafana_foundation_sdk.models.prometheus import PromQueryFormat

    ds = DataSourceRef(type_val="prometheus", uid="${datasource}")
    builders: dict[str, Any] = {"timeseries": timeseries.Panel, "stat": stat.Panel, "table": table.Panel}
    board = (dashboard.Dashboard("GPU slices (MIG and time-slicing)").uid(DASHBOARD_UID)
             .tags(["gpu-slicing", "gpu", "mig"]).refresh("1m").time("now-6h", "now")
             .with_variable(dashboard.DatasourceVariable("datasource").label("Prometheus").type("prometheus")))
    row = None
    for p in panels(cfg, pools):
        if p.row != row:
            row = p.row
            board = board.with_row(dashboard.Row(row))
        query = prometheus.Dataquery().expr(p.expr).ref_id("A")
        if p.legend:
            query = query.legend_format(p.legend)
        if p.kind == "table":
            query = query.instant().format(PromQueryFormat.TABLE)
        board = board.with_panel(builders[p.kind]().title(p.title).description(p.catches).datasource(ds)
                                 .unit(p.unit).span(12 if p.kind != "stat" else 6).height(8).with_target(query))
    return JSONEncoder(sort_keys=True, indent=1).encode(board.build())


def dashboard_configmap(cfg: StackConfig, pools: Iterable[Any]) -> dict[str, Any]:
    obs = cfg.observability
    return {"metadata": _meta("gpu-slicing-dashboard", obs, {DASHBOARD_LABEL[0]: DASHBOARD_LABEL[1]}),
            "data": {DASHBOARD_KEY: dashboard_json(cfg, pools)}}


# --- the metrics the queries may use ---------------------------------------------------------------------------

# kube-state-metrics metric names relied on (reviewed against kube-state-metrics v2.x docs: node and pod
# metrics); a query using any other name is a test failure.
KSM_METRICS = frozenset({"kube_node_labels", "kube_node_status_allocatable", "kube_node_status_condition",
                         "kube_pod_container_resource_requests", "kube_pod_status_phase",
                         "kube_pod_resourceclaim_info"})  # v2.20.0 docs, pod metrics (EXPERIMENTAL)


def allowed_metrics() -> frozenset[str]:
    return frozenset(f.field for f in EXPORTER_METRICS) | KSM_METRICS


def every_query(cfg: StackConfig, pools: Iterable[Any]) -> list[tuple[str, str]]:
    """(where, PromQL) of every alert and panel: what the tests parse and hold to `allowed_metrics()`."""
    pools = list(pools)
    return ([(f"alert {a.name}", a.expr) for a in alerts(cfg.observability, pools)]
            + [(f"panel {p.title}", p.expr) for p in panels(cfg, pools)])
