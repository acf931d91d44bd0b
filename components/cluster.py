"""The EKS control plane, its system node group, and the one Kubernetes provider every manifest uses."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from gpu_slicing import changes
from gpu_slicing.config import ClusterConfig, NetworkConfig, SystemNodeGroupConfig
from gpu_slicing.network import subnet_identity

from ._common import child, node_group_child, node_launch_template, node_role, tags

SYSTEM_LABEL = {"gpu-slicing/role": "system"}
SYSTEM_AMI_TYPE = "AL2023_x86_64_STANDARD"
SYSTEM_CAPACITY_TYPE = "ON_DEMAND"
# Controllers (Karpenter, the GPU Operator's operator) keep running through a roll: replacements come up first.
SYSTEM_UPDATE_STRATEGY = "DEFAULT"
SYSTEM_DISK_GIB = 50
CLUSTER_ADMIN_POLICY = "AmazonEKSClusterAdminPolicy"


@dataclass(frozen=True)
class ClusterArgs:
    cluster: ClusterConfig
    system_node_group: SystemNodeGroupConfig
    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[list[str]]
    public_subnet_ids: pulumi.Input[list[str]]
    network: NetworkConfig  # what decides the private subnets, for the system node group's name


class Cluster(pulumi.ComponentResource):
    """EKS with access entries (authentication mode API), no default node group, all control-plane
    logs, KMS envelope encryption of Secrets, endpoint access from config, cluster-admin access entries
    for the stack's admin roles, and a 2-node AL2023 system node group where add-ons and controllers
    (Karpenter, the GPU Operator's operator) run.
    """

    eks_cluster: eks.Cluster
    system_node_group: eks.ManagedNodeGroup
    provider: k8s.Provider
    kubeconfig: pulumi.Output[str]
    node_security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-slicing:cluster:Cluster", name, None, opts)
        c = args.cluster
        key = aws.kms.Key(f"{name}-secrets", description=f"EKS secrets envelope encryption for {c.name}",
                          enable_key_rotation=True, deletion_window_in_days=30, tags=tags(c.name),
                          opts=child(self))
        aws.kms.Alias(f"{name}-secrets-alias", name=f"alias/eks/{c.name}-secrets", target_key_id=key.key_id,
                      opts=child(self))
        self.eks_cluster = eks.Cluster(
            f"{name}-eks",
            name=c.name,
            version=c.kubernetes_version,
            vpc_id=args.vpc_id,
            private_subnet_ids=args.private_subnet_ids,
            public_subnet_ids=args.public_subnet_ids,
            authentication_mode=eks.AuthenticationMode.API,
            skip_default_node_group=True,
            skip_default_security_groups=True,
            node_associate_public_ip_address=False,
            endpoint_public_access=c.endpoint_public_access,
            endpoint_private_access=c.endpoint_private_access,
            public_access_cidrs=list(c.public_access_cidrs) or None,
            enabled_cluster_log_types=list(c.log_types),
            encryption_config_key_arn=key.arn,
            create_oidc_provider=False,
            tags=tags(c.name),
            opts=child(self),
        )
        self._admins(name, c)
        role, attachments = node_role(f"{name}-system", self, c.name)
        lt = node_launch_template(f"{name}-system", self, c.name, SYSTEM_DISK_GIB, {"Name": f"{c.name}-system"})
        sng = args.system_node_group
        # Like the GPU node groups, the EKS name carries a token of every input only CreateNodegroup takes
        # (instance type, AMI type, capacity type, subnets): a change to one is a new node group under a new name,
        # created before the old one is drained, instead of a create that collides with the running group's name.
        identity = {"instanceType": sng.instance_type, "amiType": SYSTEM_AMI_TYPE, "capacityType": SYSTEM_CAPACITY_TYPE,
                    "subnets": subnet_identity(args.network)}
        self.system_node_group = eks.ManagedNodeGroup(
            f"{name}-system",
            cluster=self.eks_cluster,
            node_group_name=changes.node_group_name(c.name, "system", identity),
            node_role=role,
            ami_type=SYSTEM_AMI_TYPE,
            instance_types=[sng.instance_type],
            capacity_type=SYSTEM_CAPACITY_TYPE,
            version=c.kubernetes_version,
            scaling_config={"min_size": sng.size, "desired_size": sng.size, "max_size": sng.size},
            subnet_ids=args.private_subnet_ids,
            labels=SYSTEM_LABEL,
            launch_template={"id": lt.id, "version": lt.latest_version.apply(str)},
            tags=tags(c.name),
            opts=child(self, depends_on=attachments, transforms=[node_group_child(SYSTEM_UPDATE_STRATEGY)]),
        )
        self.kubeconfig = pulumi.Output.secret(self.eks_cluster.kubeconfig_json)
        self.node_security_group_id = self.eks_cluster.node_security_group_id
        # Every Kubernetes object goes through this provider; depending on the system node group puts
        # all of them (and so all cluster workloads) before it in the destroy order.
        self.provider = k8s.Provider(f"{name}-k8s", kubeconfig=self.eks_cluster.kubeconfig_json,
                                     enable_server_side_apply=True,
                                     opts=child(self, depends_on=[self.system_node_group]))
        self.register_outputs({"kubeconfig": self.kubeconfig, "clusterName": c.name,
                               "nodeSecurityGroupId": self.node_security_group_id})

    def _admins(self, name: str, c: ClusterConfig) -> None:
        """An access entry with the cluster-admin access policy per admin role: with authentication mode
        API only the cluster's creator is admin otherwise, so a team and the CI role could not operate it."""
        if not c.admin_role_arns:
            return
        partition = aws.get_partition_output(opts=pulumi.InvokeOptions(parent=self)).partition
        policy = partition.apply(lambda p: f"arn:{p}:eks::aws:cluster-access-policy/{CLUSTER_ADMIN_POLICY}")
        for arn in c.admin_role_arns:
            # Named for the role, not its position: removing one admin must not replace the others' entries.
            key = f"{name}-admin-{arn.rsplit('/', 1)[-1]}-{hashlib.sha256(arn.encode()).hexdigest()[:6]}"
            entry = aws.eks.AccessEntry(key, cluster_name=c.name, principal_arn=arn, type="STANDARD",
                                        tags=tags(c.name), opts=child(self, depends_on=[self.eks_cluster]))
            aws.eks.AccessPolicyAssociation(key, cluster_name=c.name, principal_arn=entry.principal_arn,
                                            policy_arn=policy, access_scope={"type": "cluster"},
                                            opts=child(self))
