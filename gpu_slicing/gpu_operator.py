"""NVIDIA GPU Operator Helm values, derived from the stack config and the node AMI (docs/facts.md §1, 3).

Only keys that exist in the pinned chart's values.yaml are set (the chart has no values schema, so
Helm would silently ignore a typo); `VALUE_PATHS` is the reviewed allow-list the tests hold against
the chart's real values.yaml.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from . import catalog, layouts, observability, sharing
from .config import StackConfig

CHART = "gpu-operator"
REPOSITORY = "https://helm.ngc.nvidia.com/nvidia"
OPERATOR_NAMESPACE = "gpu-operator"  # the operator's release and its ConfigMaps
RELEASE = "gpu-operator"
MIG_PARTED_CONFIGMAP = "gpu-slicing-mig-parted-config"
DEVICE_PLUGIN_CONFIGMAP = "gpu-slicing-device-plugin-config"
DEVICE_PLUGIN_DEFAULT_KEY = "default"

# Every value path this program may set, each present in the chart's values.yaml at VERSION.
VALUE_PATHS = frozenset({
    "driver.enabled", "toolkit.enabled", "mig.strategy", "migManager.enabled", "migManager.env",
    "migManager.config.name", "migManager.config.create", "devicePlugin.enabled", "devicePlugin.config.name",
    "devicePlugin.config.create", "devicePlugin.config.default",
    "dcgmExporter.enabled", "dcgmExporter.env", "dcgmExporter.config.name", "dcgmExporter.serviceMonitor.enabled",
    "dcgmExporter.enablePodUID",
})
# Paths values.yaml documents only in a commented-out example (its templates read them: clusterpolicy.yaml
# `.Values.dcgmExporter.config.name`); the tests find them in that comment block instead.
COMMENTED_VALUE_PATHS = frozenset({"dcgmExporter.config.name"})


def operator_values(cfg: StackConfig, pools: Iterable[Any]) -> dict[str, Any]:
    """Values for AL2023_x86_64_NVIDIA nodes: the AMI ships driver and toolkit, so both are off;
    WITH_REBOOT is the string "true" in `migManager.env` (A100 needs a reboot to change MIG mode in a VM)."""
    pools = list(pools)
    values: dict[str, Any] = {
        "driver": {"enabled": False},
        "toolkit": {"enabled": False},
        "mig": {"strategy": cfg.gpu_operator.mig_strategy},
        "migManager": {"enabled": any(p.gpu.mig_capable for p in pools),
                       "env": [{"name": "WITH_REBOOT", "value": "true"}]},
        # off only when every GPU pool is DRA: the validator's plugin-validation step (in the DaemonSet whenever
        # the device plugin is on) waits for nvidia.com/* resources a DRA node never advertises
        "devicePlugin": {"enabled": not pools or any(p.allocation != "dra" for p in pools)},
    }
    if needs_mig_parted_configmap(pools, cfg.gpu_operator.retained_mig_layouts):
        values["migManager"]["config"] = {"name": MIG_PARTED_CONFIGMAP, "create": False}
    exporter = observability.operator_exporter_values(cfg, pools)
    if exporter:
        values["dcgmExporter"] = exporter
    if needs_device_plugin_configmap(pools):
        values["devicePlugin"]["config"] = {"name": DEVICE_PLUGIN_CONFIGMAP, "create": False,
                                            "default": DEVICE_PLUGIN_DEFAULT_KEY}
    return values


def needs_mig_parted_configmap(pools: Iterable[Any], retained: Mapping[str, Any] | None = None) -> bool:
    """Custom layouts need our own mig-parted config (so do layouts kept for nodes that still carry them);
    without them the MIG manager's own is used."""
    return bool(retained) or any(p.layout.custom for p in pools)


def needs_device_plugin_configmap(pools: Iterable[Any]) -> bool:
    """Time-slicing needs device-plugin configs; without it the plugin's defaults are right."""
    return any(p.sharing is not None for p in pools)


def mig_parted_config(pools: Iterable[Any], retained: Mapping[str, Any] | None = None) -> str:
    """The `config.yaml` of the mig-parted ConfigMap: every layout the stack's pools use, plus all-disabled,
    plus `gpuOperator.retainedMigLayouts`: labels that live nodes may still carry while a change replaces
    them (a blue/green node group until the old group is deleted, drifted Karpenter nodes until their
    maintenance window). A MIG manager that restarts on such a node must still find its layout."""
    used = {}
    for p in pools:  # keyed by GPU model too: all-balanced on p4d and on p5 are two entries of one name
        for it in p.instance_types:
            if it.gpu.mig_capable:
                used[(p.layout.name, it.gpu.name)] = p.layout
                used.setdefault(("all-disabled", ""), catalog.named_layouts(it.gpu)["all-disabled"])
    return layouts.render_mig_parted_config((used[k] for k in sorted(used)),
                                            {n: list(v) for n, v in (retained or {}).items()})


def device_plugin_configs(cfg: StackConfig, pools: Iterable[Any]) -> dict[str, str]:
    """One device-plugin config per distinct sharing setup, plus the default (no sharing)."""
    import yaml

    default = yaml.safe_dump({"version": "v1", "flags": {"migStrategy": cfg.gpu_operator.mig_strategy}}, sort_keys=False)
    return {DEVICE_PLUGIN_DEFAULT_KEY: default,
            **sharing.render_device_plugin_configs(p.sharing for p in pools if p.sharing is not None)}
