"""The EKS control plane, its system node group, and the one Kubernetes provider every manifest uses."""
from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from gpu_slicing.config import StackConfig

from ._common import child, node_launch_template, node_role, tags

SYSTEM_LABEL = {"gpu-slicing/role": "system"}


class Cluster(pulumi.ComponentResource):
    """EKS with access entries (authentication mode API), no default node group, all control-plane
    logs, KMS envelope encryption of Secrets, endpoint access from config, and a 2-node AL2023 system
    node group where add-ons and controllers (Karpenter, the GPU Operator's operator) run.
    """

    eks_cluster: eks.Cluster
    system_node_group: eks.ManagedNodeGroup
    provider: k8s.Provider
    kubeconfig: pulumi.Output[str]
    node_security_group_id: pulumi.Output[str]

    def __init__(self, name: str, cfg: StackConfig, vpc_id: pulumi.Input[str],
                 private_subnet_ids: pulumi.Input[list[str]], public_subnet_ids: pulumi.Input[list[str]],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-slicing:cluster:Cluster", name, None, opts)
        c = cfg.cluster
        key = aws.kms.Key(f"{name}-secrets", description=f"EKS secrets envelope encryption for {c.name}",
                          enable_key_rotation=True, deletion_window_in_days=30, tags=tags(c.name),
                          opts=child(self))
        aws.kms.Alias(f"{name}-secrets-alias", name=f"alias/eks/{c.name}-secrets", target_key_id=key.key_id,
                      opts=child(self))
        self.eks_cluster = eks.Cluster(
            f"{name}-eks",
            name=c.name,
            version=c.kubernetes_version,
            vpc_id=vpc_id,
            private_subnet_ids=private_subnet_ids,
            public_subnet_ids=public_subnet_ids,
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
        role, attachments = node_role(f"{name}-system", self, c.name)
        lt = node_launch_template(f"{name}-system", self, c.name, 50, {"Name": f"{c.name}-system"})
        sng = cfg.system_node_group
        self.system_node_group = eks.ManagedNodeGroup(
            f"{name}-system",
            cluster=self.eks_cluster,
            node_group_name=f"{c.name}-system",
            node_role=role,
            ami_type="AL2023_x86_64_STANDARD",
            instance_types=[sng.instance_type],
            capacity_type="ON_DEMAND",
            scaling_config={"min_size": sng.size, "desired_size": sng.size, "max_size": sng.size},
            subnet_ids=private_subnet_ids,
            labels=SYSTEM_LABEL,
            launch_template={"id": lt.id, "version": lt.latest_version.apply(str)},
            tags=tags(c.name),
            opts=child(self, depends_on=attachments),
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
