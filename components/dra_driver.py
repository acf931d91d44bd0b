"""The NVIDIA DRA driver: publishes DRA pools' slices as devices and prepares them for claims."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_kubernetes as k8s

from gpu_slicing import dra as spec
from gpu_slicing.gpu_operator import OPERATOR_NAMESPACE
from gpu_slicing.pools import Pool
from gpu_slicing.workloads import Workload

from ._common import child


@dataclass(frozen=True)
class DraDriverArgs:
    """`pools`, `workloads`: as the stack resolved them (the driver's feature gates follow the workloads' claims).
    `after`: what the driver needs first (the system nodes its controller runs on, and the GPU Operator, whose MIG
    manager applies the layouts the kubelet plugin waits for)."""

    pools: Sequence[Pool]
    workloads: Sequence[Workload]
    provider: k8s.Provider
    after: Sequence[pulumi.Resource]


class DraDriver(pulumi.ComponentResource):
    """Helm release `dra-driver-nvidia-gpu`, pinned, in its own privileged namespace.

    The chart creates the DeviceClasses `gpu.nvidia.com` and `mig.nvidia.com`, so claim templates depend on
    this release, and the pods holding claims depend on their templates: `pulumi destroy` deletes those
    pods first, then the templates, then the driver (a pod whose claim outlives its driver hangs in
    Terminating, kubernetes/kubernetes#129402)."""

    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: DraDriverArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-slicing:dra:DraDriver", name, None, opts)
        ns = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata={"name": spec.DRIVER_NAMESPACE, "labels": {"pod-security.kubernetes.io/enforce": "privileged"}},
            opts=child(self, provider=args.provider))
        self.release = k8s.helm.v3.Release(
            name,
            name=spec.RELEASE,
            chart=f"{spec.REPOSITORY}/{spec.CHART}",
            version=spec.CHART_VERSION,
            namespace=ns.metadata["name"],
            values=spec.driver_values(list(args.pools), [w.config for w in args.workloads]),
            timeout=600,
            cleanup_on_fail=True,
            opts=child(self, provider=args.provider, depends_on=[*args.after],
                       custom_timeouts=pulumi.CustomTimeouts(create="15m", update="15m", delete="15m")))
        role, binding = spec.exporter_rbac(OPERATOR_NAMESPACE)  # dcgm-exporter attributes claims' devices
        reads = k8s.rbac.v1.ClusterRole(f"{name}-exporter-reads-slices", metadata=role["metadata"],
                                        rules=role["rules"], opts=child(self, provider=args.provider))
        k8s.rbac.v1.ClusterRoleBinding(f"{name}-exporter-reads-slices", metadata=binding["metadata"],
                                       role_ref=binding["roleRef"], subjects=binding["subjects"],
                                       opts=child(self, provider=args.provider, depends_on=[reads]))
        self.register_outputs({"release": self.release.name})
