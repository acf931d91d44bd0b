"""The NVIDIA GPU Operator: device plugin, GPU feature discovery and MIG manager for the GPU nodes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import pulumi
import pulumi_kubernetes as k8s

from gpu_slicing import gpu_operator as spec
from gpu_slicing import observability
from gpu_slicing.config import StackConfig
from gpu_slicing.pools import Pool

from ._common import child


@dataclass(frozen=True)
class GpuOperatorArgs:
    """`runs_on`: the nodes the operator's own controller runs on (the system node group); GPU nodes need
    not exist first, the operator's DaemonSets follow them as they join."""

    config: StackConfig
    pools: Sequence[Pool]
    provider: k8s.Provider
    runs_on: pulumi.Resource


class GpuOperator(pulumi.ComponentResource):
    """Helm release `gpu-operator`, pinned, in its own privileged namespace.

    Values come from `gpu_slicing.gpu_operator` (chart keys only). The MIG manager applies each
    node's `nvidia.com/mig.config` label; custom layouts and time-slicing configs are ConfigMaps
    of our own, created before the release that points at them.
    """

    release: k8s.helm.v3.Release
    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: GpuOperatorArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-slicing:gpu:GpuOperator", name, None, opts)
        cfg, pools = args.config, list(args.pools)
        k8s_opts: dict[str, Any] = dict(provider=args.provider)
        ns = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata={"name": spec.OPERATOR_NAMESPACE,
                      "labels": {"pod-security.kubernetes.io/enforce": "privileged"}},
            opts=child(self, **k8s_opts))
        configs: list[pulumi.Resource] = []
        retained = cfg.gpu_operator.retained_mig_layouts
        if spec.needs_mig_parted_configmap(pools, retained):
            configs.append(k8s.core.v1.ConfigMap(
                f"{name}-mig-parted",
                metadata={"name": spec.MIG_PARTED_CONFIGMAP, "namespace": ns.metadata["name"]},
                data={"config.yaml": spec.mig_parted_config(pools, retained)},
                opts=child(self, **k8s_opts)))
        if spec.needs_device_plugin_configmap(pools):
            configs.append(k8s.core.v1.ConfigMap(
                f"{name}-device-plugin",
                metadata={"name": spec.DEVICE_PLUGIN_CONFIGMAP, "namespace": ns.metadata["name"]},
                data=spec.device_plugin_configs(cfg, pools),
                opts=child(self, **k8s_opts)))
        if observability.needs_exporter_config(cfg, pools):
            configs.append(k8s.core.v1.ConfigMap(
                f"{name}-dcgm-metrics",
                metadata={"name": observability.EXPORTER_CONFIGMAP, "namespace": ns.metadata["name"]},
                data={observability.EXPORTER_CSV_KEY: observability.exporter_csv()},
                opts=child(self, **k8s_opts)))
        self.release = k8s.helm.v3.Release(
            name,
            name=spec.RELEASE,
            chart=spec.CHART,
            version=cfg.gpu_operator.version,
            repository_opts={"repo": spec.REPOSITORY},
            namespace=ns.metadata["name"],
            values=spec.operator_values(cfg, pools),
            timeout=900,
            cleanup_on_fail=True,
            opts=child(self, **k8s_opts, depends_on=[args.runs_on, *configs],
                       custom_timeouts=pulumi.CustomTimeouts(create="20m", update="20m", delete="20m")))
        self.namespace = ns.metadata["name"]
        self.register_outputs({"release": self.release.name, "namespace": self.namespace})
