"""One EKS managed node group of GPU instances, labelled for its MIG layout and tainted for GPU pods only."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_eks as eks

from gpu_slicing import changes
from gpu_slicing.changes import ALLOW_DISRUPTION_TAG, MIG_LAYOUT_CHANGE_TAG
from gpu_slicing.labels import MIG_CONFIG_LABEL, POOL_LABEL
from gpu_slicing.stack import NodeGroup

from ._common import child, node_group_child, node_launch_template, node_role, tags

# Fixed when the node group is created: its subnets are those in zones that offer its instance type, read from
# AWS's live DescribeInstanceTypeOfferings answer. Subnets are create-only on an EKS node group, so if that answer
# changed (AWS adds or withdraws a type in a zone) the group would be replaced under its own name (the name token
# covers what the stack asks for, not what AWS answers): the create collides with the running group.
FIXED_AT_CREATION = ("subnetIds",)


@dataclass(frozen=True)
class GpuNodeGroupArgs:
    """`kubernetes_version` is the control plane's: a node group with a custom launch template does not
    follow a control-plane upgrade unless its version is set (docs/facts.md §8). `subnet_ids` are the private
    subnets in zones that offer the instance type; the node group keeps those it was created with
    (`FIXED_AT_CREATION`)."""

    node_group: NodeGroup  # its config block and the pool it resolved to
    cluster: eks.Cluster
    cluster_name: str
    kubernetes_version: str
    subnet_ids: pulumi.Input[list[str]]
    allow_disruption: bool = False  # gpu-slicing:allowDisruption, read by the policy pack from a tag


class GpuNodeGroup(pulumi.ComponentResource):
    """A p4d (or other GPU) managed node group.

    The `nvidia.com/mig.config` label is part of the node group, not a `kubectl label` afterwards,
    so a replaced node comes back with its layout (docs/facts.md §1.8). `ami_type` is explicit: `gpu=True`
    alone does not pick the NVIDIA AMI for a managed node group (docs/facts.md §6).
    """

    node_group: eks.ManagedNodeGroup
    ready: list[pulumi.Resource]  # what a workload on the pool waits for: the node group

    def __init__(self, name: str, args: GpuNodeGroupArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-slicing:gpu:GpuNodeGroup", name, None, opts)
        cfg, pool, cluster_name = args.node_group.config, args.node_group.pool, args.cluster_name
        # What forces a new node group is in its name, so the replace is created before the old group is
        # drained; a MIG layout change is one of them unless the stack forces an in-place relabel.
        identity: dict[str, str | None] = {"instanceType": cfg.instance_type, "capacityType": cfg.capacity_type, "amiType": pool.instance_type.ami_type}
        if cfg.mig_layout_change == "replace":
            identity["migLayout"] = pool.labels.get(MIG_CONFIG_LABEL)
        if cfg.allocation != "devicePlugin":  # never switch live nodes between device plugin and DRA driver
            identity["allocation"] = cfg.allocation
        change_tags = {MIG_LAYOUT_CHANGE_TAG: cfg.mig_layout_change}
        if args.allow_disruption:
            change_tags[ALLOW_DISRUPTION_TAG] = "true"
        role, attachments = node_role(name, self, cluster_name)
        lt = node_launch_template(name, self, cluster_name, cfg.disk_size_gib,
                                  {"Name": f"{cluster_name}-{cfg.name}"})
        self.node_group = eks.ManagedNodeGroup(
            name,
            cluster=args.cluster,
            node_group_name=changes.node_group_name(cluster_name, cfg.name, identity),
            node_role=role,
            ami_type=pool.instance_type.ami_type,  # AL2023 NVIDIA (x86_64 or ARM_64): driver + toolkit inside
            instance_types=[cfg.instance_type],
            capacity_type=cfg.capacity_type,
            version=args.kubernetes_version,
            scaling_config={"min_size": cfg.min_size, "desired_size": cfg.desired_size, "max_size": cfg.max_size},
            subnet_ids=args.subnet_ids,
            labels=pool.labels,
            taints=[{"key": t["key"], "value": t["value"], "effect": "NO_SCHEDULE"} for t in pool.taints],
            launch_template={"id": lt.id, "version": lt.latest_version.apply(str)},
            tags=tags(cluster_name, **{POOL_LABEL: cfg.name}, **change_tags),
            opts=child(self, depends_on=attachments,
                       transforms=[node_group_child(cfg.update_strategy, FIXED_AT_CREATION)]),
        )
        self.ready = [self.node_group]
        self.register_outputs({"nodeGroup": cfg.name})
