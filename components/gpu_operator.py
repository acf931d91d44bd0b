"""The NVIDIA GPU Operator: device plugin, GPU feature discovery and MIG manager for the GPU nodes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from gpu_slicing import gpu_operator as spec
from gpu_slicing import observability
from gpu_slicing.stack import Operator

from ._common import child


@dataclass(frozen=True)
class GpuOperatorArgs:
    """`operator`: as the stack resolved it (settings, chart values, the ConfigMaps' data); `runs_on`: the nodes
    the operator's own controller runs on (the system node group); GPU nodes need not exist first, the
    operator's DaemonSets follow them as they join."""

    operator: Operator
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
        op = args.operator
        k8s_opts: dict[str, Any] = dict(provider=args.provider)
        ns = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata={"name": spec.OPERATOR_NAMESPACE,
                      "labels": {"pod-security.kubernetes.io/enforce": "privileged"}},
            opts=child(self, **k8s_opts))
        configs: list[pulumi.Resource] = []
        for suffix, configmap, data in (
                ("mig-parted", spec.MIG_PARTED_CONFIGMAP, op.mig_parted and {"config.yaml": op.mig_parted}),
                ("device-plugin", spec.DEVICE_PLUGIN_CONFIGMAP, op.device_plugin),
                ("dcgm-metrics", observability.EXPORTER_CONFIGMAP,
                 op.exporter_csv and {observability.EXPORTER_CSV_KEY: op.exporter_csv})):
            if data:
                configs.append(k8s.core.v1.ConfigMap(
                    f"{name}-{suffix}", metadata={"name": configmap, "namespace": ns.metadata["name"]},
                    data=dict(data), opts=child(self, **k8s_opts)))
        self.release = k8s.helm.v3.Release(
            name,
            name=spec.RELEASE,
            chart=spec.CHART,
            version=op.settings.version,
            repository_opts={"repo": spec.REPOSITORY},
            namespace=ns.metadata["name"],
            values=dict(op.values),
            timeout=900,
            cleanup_on_fail=True,
            opts=child(self, **k8s_opts, depends_on=[args.runs_on, *configs],
                       custom_timeouts=pulumi.CustomTimeouts(create="20m", update="20m", delete="20m")))
        self.namespace = ns.metadata["name"]
        self.register_outputs({"release": self.release.name, "namespace": self.namespace})
