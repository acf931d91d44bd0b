"""Karpenter: its AWS side (node role, controller role and policies, interruption queue and rules,
access entry, Pod Identity, discovery tag) and the Helm release, as upstream's getting-started has them."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from gpu_slicing import karpenter as spec

from ._common import child, json_dumps, tags
from .cluster import SYSTEM_LABEL


@dataclass(frozen=True)
class KarpenterArgs:
    """`runs_on`: the system node group Karpenter's controller runs on (it must not run on nodes it
    manages); everything here is created after it and destroyed before it. `node_security_group_id`
    gets the discovery tag EC2NodeClasses select security groups by."""

    cluster_name: str
    version: str
    provider: k8s.Provider
    node_security_group_id: pulumi.Input[str]
    runs_on: pulumi.Resource


class Karpenter(pulumi.ComponentResource):
    """Karpenter v1 with NodeOverlay on, running on the system node group only.

    Every AWS resource here depends on the system node group and the release depends on all of them,
    so a destroy removes the release (after the NodePools and EC2NodeClasses that depend on it, i.e.
    after Karpenter has terminated its nodes) before the IAM, queue, rules and access entry it needs to
    do so, and all of it before the system node group (docs/facts.md §5).
    """

    node_role: aws.iam.Role
    controller_role: aws.iam.Role
    queue: aws.sqs.Queue
    release: k8s.helm.v3.Release
    crds: k8s.helm.v3.Release
    node_role_name: pulumi.Output[str]
    interruption_queue: pulumi.Output[str]

    def __init__(self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-slicing:karpenter:Karpenter", name, None, opts)
        c = args.cluster_name
        base = tags(c)
        invoke = pulumi.InvokeOptions(parent=self)
        partition = aws.get_partition_output(opts=invoke)
        region = aws.get_region_output(opts=invoke)
        identity = aws.get_caller_identity_output(opts=invoke)
        ctx = pulumi.Output.all(partition.partition, region.region, identity.account_id, partition.dns_suffix).apply(
            lambda a: spec.AwsContext(*a))
        after = [args.runs_on]

        def aws_opts(*extra: pulumi.Resource) -> pulumi.ResourceOptions:
            return child(self, depends_on=[*after, *extra])

        # Node role: Karpenter creates an instance profile for it per EC2NodeClass.
        self.node_role = aws.iam.Role(
            f"{name}-node-role", name=spec.node_role_name(c), path="/",
            assume_role_policy=ctx.apply(lambda x: json_dumps(spec.node_trust_policy(x))),
            tags=base, opts=aws_opts())

        def managed_arn(p: str) -> pulumi.Output[str]:
            return partition.partition.apply(lambda part: f"arn:{part}:iam::aws:policy/{p}")

        node_attachments = [
            aws.iam.RolePolicyAttachment(f"{name}-node-{p}", role=self.node_role.name, policy_arn=managed_arn(p),
                                         opts=aws_opts())
            for p in spec.NODE_ROLE_POLICIES]
        access_entry = aws.eks.AccessEntry(f"{name}-node-access", cluster_name=c, principal_arn=self.node_role.arn,
                                           type="EC2_LINUX", tags=base, opts=aws_opts())

        # Interruption queue and the five EventBridge rules feeding it.
        self.queue = aws.sqs.Queue(f"{name}-queue", name=spec.queue_name(c),
                                   message_retention_seconds=spec.QUEUE_RETENTION_SECONDS,
                                   sqs_managed_sse_enabled=True, tags=base, opts=aws_opts())
        queue_policy = aws.sqs.QueuePolicy(f"{name}-queue-policy", queue_url=self.queue.url,
                                           policy=self.queue.arn.apply(lambda arn: json_dumps(spec.queue_policy(arn))),
                                           opts=aws_opts())
        rules: list[pulumi.Resource] = []
        for key, (_, detail_type) in spec.INTERRUPTION_RULES.items():
            rule = aws.cloudwatch.EventRule(f"{name}-{key}", name=spec.rule_name(c, key),
                                            description=f"Karpenter interruption handling for {c}: {detail_type}",
                                            event_pattern=json_dumps(spec.event_pattern(key)), tags=base,
                                            opts=aws_opts())
            target = aws.cloudwatch.EventTarget(f"{name}-{key}-target", rule=rule.name, arn=self.queue.arn,
                                                target_id=spec.QUEUE_TARGET_ID, opts=aws_opts())
            rules += [rule, target]

        # Controller role (EKS Pod Identity) and its policies.
        self.controller_role = aws.iam.Role(
            f"{name}-controller-role", name=spec.controller_role_name(c), path="/",
            assume_role_policy=json_dumps(spec.controller_trust_policy()), tags=base, opts=aws_opts())
        documents = pulumi.Output.all(ctx, self.node_role.arn, self.queue.arn).apply(
            lambda a: spec.controller_policies(a[0], c, a[1], a[2]))

        def document(key: str) -> pulumi.Output[str]:
            return documents.apply(lambda d: json_dumps(d[key]))

        controller_iam: list[pulumi.Resource] = [self.controller_role]
        for key in spec.CONTROLLER_POLICIES:
            policy = aws.iam.Policy(f"{name}-{key}", name=spec.policy_name(c, key), path="/", policy=document(key),
                                    tags=base, opts=aws_opts())
            controller_iam += [policy, aws.iam.RolePolicyAttachment(
                f"{name}-{key}", role=self.controller_role.name, policy_arn=policy.arn, opts=aws_opts())]
        agent = aws.eks.Addon(f"{name}-pod-identity-agent", cluster_name=c, addon_name=spec.POD_IDENTITY_ADDON,
                              tags=base, opts=aws_opts())
        pod_identity = aws.eks.PodIdentityAssociation(
            f"{name}-pod-identity", cluster_name=c, namespace=spec.RELEASE_NAMESPACE,
            service_account=spec.SERVICE_ACCOUNT, role_arn=self.controller_role.arn, tags=base, opts=aws_opts())

        # The node security group is the EKS-created cluster security group (skip_default_security_groups).
        sg_tag = aws.ec2.Tag(f"{name}-sg-discovery", resource_id=args.node_security_group_id,
                             key=spec.DISCOVERY_TAG, value=c, opts=aws_opts())

        needs = [self.node_role, *node_attachments, access_entry, self.queue, queue_policy, *rules, *controller_iam,
                 agent, pod_identity, sg_tag]
        # CRDs from the karpenter-crd chart (templates, so a version bump upgrades them: Helm never upgrades a
        # chart's crds/ directory, docs/facts.md §8), before the controller, whose own crds/ are skipped.
        self.crds = k8s.helm.v3.Release(
            f"{name}-crd",
            name=spec.CRD_RELEASE,
            chart=spec.CRD_CHART,
            version=args.version,
            namespace=spec.RELEASE_NAMESPACE,
            timeout=300,
            opts=child(self, provider=args.provider, depends_on=[*after, *needs],
                       custom_timeouts=pulumi.CustomTimeouts(create="10m", update="10m", delete="10m")))
        self.release = k8s.helm.v3.Release(
            name,
            name=spec.RELEASE,
            chart=spec.CHART,
            version=args.version,
            namespace=spec.RELEASE_NAMESPACE,
            skip_crds=True,
            values=spec.chart_values(c, self.queue.name, SYSTEM_LABEL, region.region),
            timeout=600,
            cleanup_on_fail=True,
            opts=child(self, provider=args.provider, depends_on=[*after, *needs, self.crds],
                       custom_timeouts=pulumi.CustomTimeouts(create="15m", update="15m", delete="15m")))
        self.node_role_name = self.node_role.name
        self.interruption_queue = self.queue.name
        self.register_outputs({"release": self.release.name, "nodeRoleName": self.node_role_name,
                               "controllerRoleArn": self.controller_role.arn,
                               "interruptionQueue": self.interruption_queue})
