"""One Karpenter GPU NodePool: its EC2NodeClass, the NodePool, and the NodeOverlays that tell Karpenter
what MIG resources the pool's nodes will advertise (docs/facts.md §1.7, 1.9)."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from gpu_slicing import karpenter as spec
from gpu_slicing.stack import NodePool

from ._common import child
from .karpenter import Karpenter


def _custom(name: str, obj: dict, opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
    return k8s.apiextensions.CustomResource(name, api_version=obj["apiVersion"], kind=obj["kind"],
                                            metadata=obj["metadata"], spec=obj["spec"], opts=opts)


@dataclass(frozen=True)
class GpuNodePoolArgs:
    """`karpenter`: the installed Karpenter (its release serves the CRDs, its node role is the EC2NodeClass's)."""

    node_pool: NodePool  # its config block and the pool it resolved to
    cluster_name: str
    ami_alias_version: str
    karpenter: Karpenter
    provider: k8s.Provider


class GpuNodePool(pulumi.ComponentResource):
    """EC2NodeClass <- NodeOverlay(s) <- NodePool, all after the Karpenter release (its CRDs).

    Destroy runs the other way: the NodePool goes first, with foreground propagation and a long delete
    timeout, so Pulumi waits while Karpenter drains and terminates its nodes; then the overlays; then the
    EC2NodeClass, whose finalizer removes the instance profile and launch templates; only then the
    release. Pods never see a node without its layout: the NodePool's template labels carry
    `nvidia.com/mig.config` (docs/facts.md §1.8).
    """

    node_class: k8s.apiextensions.CustomResource
    overlays: list[k8s.apiextensions.CustomResource]
    node_pool: k8s.apiextensions.CustomResource
    ready: list[pulumi.Resource]  # what a workload on the pool waits for: the NodePool and its NodeOverlays

    def __init__(self, name: str, args: GpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-slicing:karpenter:GpuNodePool", name, None, opts)
        cfg, pool, karpenter, provider = args.node_pool.config, args.node_pool.pool, args.karpenter, args.provider
        cluster_name, ami_alias_version = args.cluster_name, args.ami_alias_version
        timeouts = pulumi.CustomTimeouts(create=spec.CREATE_TIMEOUT, update=spec.CREATE_TIMEOUT,
                                         delete=spec.DELETE_TIMEOUT)

        def k8s_opts(*deps: pulumi.Resource) -> pulumi.ResourceOptions:
            return child(self, provider=provider, depends_on=[karpenter.release, *deps], custom_timeouts=timeouts)

        self.node_class = _custom(f"{name}-nodeclass",
                                  spec.node_class(pool, cluster_name, ami_alias_version, cfg.disk_size_gib),
                                  k8s_opts(karpenter.node_role))
        overlays = spec.node_overlays(pool)
        self.overlays = [_custom(f"{name}-overlay-{it.replace('.', '-')}", o, k8s_opts(self.node_class))
                         for it, o in overlays.items()]
        self.node_pool = _custom(f"{name}-nodepool",
                                 spec.node_pool(pool, cfg.capacity_types, cfg.consolidate_after, cfg.expire_after,
                                                spec.disruption_budgets(cfg.drift_schedule, cfg.drift_duration,
                                                                        pool.key)),
                                 k8s_opts(self.node_class, *self.overlays))
        self.ready = [self.node_pool, *self.overlays]
        self.register_outputs({"nodePool": pool.name, "nodeClass": pool.name,
                               "overlays": [o["metadata"]["name"] for o in overlays.values()]})
