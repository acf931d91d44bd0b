"""Small helpers every component uses: child options and the tags all AWS resources carry."""
from __future__ import annotations

import pulumi

from gpu_slicing.karpenter import NODE_ROLE_POLICIES
from gpu_slicing.nodes import launch_template_hardening


def child(parent: pulumi.Resource, opts: pulumi.ResourceOptions | None = None, **kw) -> pulumi.ResourceOptions:
    """Options for a child: parented to the component; `kw` adds depends_on, timeouts and the like."""
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(parent=parent, **kw))


def tags(cluster_name: str, **extra: str) -> dict[str, str]:
    return {"gpu-slicing/cluster": cluster_name, "managed-by": "pulumi", **extra}


def managed_policy_arn(parent: pulumi.Resource, policy: str) -> pulumi.Output[str]:
    """ARN of an AWS managed policy in this stack's partition (aws, aws-cn, aws-us-gov)."""
    import pulumi_aws as aws

    partition = aws.get_partition_output(opts=pulumi.InvokeOptions(parent=parent)).partition
    return partition.apply(lambda part: f"arn:{part}:iam::aws:policy/{policy}")


def node_role(name: str, parent: pulumi.Resource, cluster_name: str, role_name: str | None = None):
    """An EC2 node role with the four managed policies EKS nodes need (docs/facts.md §4)."""
    import pulumi_aws as aws

    invoke = pulumi.InvokeOptions(parent=parent)
    suffix = aws.get_partition_output(opts=invoke).dns_suffix
    role = aws.iam.Role(f"{name}-role", name=role_name,
                        assume_role_policy=suffix.apply(lambda dns: json_dumps({
                            "Version": "2012-10-17",
                            "Statement": [{"Effect": "Allow", "Principal": {"Service": f"ec2.{dns}"},
                                           "Action": "sts:AssumeRole"}]})),
                        tags=tags(cluster_name), opts=child(parent))
    attachments = [aws.iam.RolePolicyAttachment(f"{name}-{p}", role=role.name,
                                                policy_arn=managed_policy_arn(parent, p), opts=child(parent))
                   for p in NODE_ROLE_POLICIES]
    return role, attachments


def node_launch_template(name: str, parent: pulumi.Resource, cluster_name: str, disk_gib: int, node_tags: dict):
    """Launch template for managed node groups, hardened as gpu_slicing.nodes says (the same settings as
    Karpenter's EC2NodeClass); the AMI stays EKS's choice from `ami_type`."""
    import pulumi_aws as aws

    return aws.ec2.LaunchTemplate(
        f"{name}-lt",
        **launch_template_hardening(disk_gib),
        tag_specifications=[{"resource_type": "instance", "tags": {**tags(cluster_name), **node_tags}},
                            {"resource_type": "volume", "tags": tags(cluster_name)}],
        update_default_version=True,
        tags=tags(cluster_name), opts=child(parent))


# The custom resource pulumi-eks's ManagedNodeGroup (a packaged component) creates for the EKS node group.
NODE_GROUP_CHILD = "aws:eks/nodeGroup:NodeGroup"


# Nodes a managed node group update takes out of service at once: one, so a pool of MIG nodes loses one node's
# slices at a time.
MAX_UNAVAILABLE = 1


def node_group_child(update_strategy: str, fixed: tuple[str, ...] = ()) -> pulumi.ResourceTransform:
    """A transform for the EKS node group inside a pulumi-eks ManagedNodeGroup. Options on the component do not
    reach it (Pulumi: `ignoreChanges` has no effect on a component resource; `transforms` do reach the children
    of packaged components), nor does an `updateConfig` (pulumi-eks's ManagedNodeGroup has no such argument),
    so what the node group itself must carry is set here: its update config (EKS NodegroupUpdateConfig:
    `updateStrategy` DEFAULT launches replacements first, MINIMAL terminates first) and the `fixed` inputs,
    which keep the value they had when the node group was created (Pulumi's ignoreChanges)."""
    update_config = {"maxUnavailable": MAX_UNAVAILABLE, "updateStrategy": update_strategy}

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        if args.type_ != NODE_GROUP_CHILD:
            return None
        return pulumi.ResourceTransformResult(  # merge appends `fixed` to the ignoreChanges the plugin set
            props={**args.props, "updateConfig": update_config},
            opts=pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(ignore_changes=list(fixed))))

    return transform


def json_dumps(doc) -> str:
    import json

    return json.dumps(doc, sort_keys=True)
