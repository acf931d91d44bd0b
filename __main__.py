"""GPU slicing on EKS: wiring only. Every decision lives in `gpu_slicing/` (pure) and `components/`."""
import pulumi

from components import stack_config
from components.cluster import Cluster
from components.gpu_node_group import GpuNodeGroup
from components.gpu_node_pool import GpuNodePool
from components.gpu_operator import GpuOperator
from components.karpenter import Karpenter
from components.network import Network
from components.workloads import SampleWorkloads
from gpu_slicing.pools import resolve_pools
from gpu_slicing.validate import capacity_plan

cfg = stack_config.load()  # raises a ConfigError naming the key before anything is registered
pools = resolve_pools(cfg)
by_name = {p.name: p for p in pools}
name = cfg.cluster.name

network = Network(name, cfg.network, name)
cluster = Cluster(name, cfg, network.vpc_id, network.private_subnet_ids, network.public_subnet_ids)
gpu_groups = [GpuNodeGroup(f"{name}-{g.name}", g, by_name[g.name], cluster.eks_cluster, name,
                           network.private_subnet_ids) for g in cfg.node_groups]
# Karpenter (optional): its AWS side and release come after the system node group (and so are destroyed
# before it); NodePools come after the release (its CRDs); workloads come after the NodePools and
# NodeOverlays, so a destroy removes the pods, then the pools (Karpenter drains and terminates their
# nodes), then Karpenter itself.
karpenter = (Karpenter(f"{name}-karpenter", cfg, cluster, depends_on=[cluster.system_node_group])
             if cfg.karpenter.enabled else None)
gpu_pools = [GpuNodePool(f"{name}-{p.name}", p, by_name[p.name], name, cfg.karpenter.ami_alias_version, karpenter,
                         cluster.provider) for p in cfg.karpenter.node_pools] if karpenter else []
gpu_capacity: list[pulumi.Resource] = [*gpu_groups, *gpu_pools]

operator = GpuOperator(f"{name}-gpu-operator", cfg, pools, cluster.provider,
                       depends_on=[cluster.system_node_group, *gpu_capacity])
workloads = SampleWorkloads(f"{name}-workloads", cfg, pools, cluster.provider,
                            depends_on=[operator.release, *gpu_capacity])

pulumi.export("clusterName", name)
pulumi.export("kubeconfig", cluster.kubeconfig)
pulumi.export("vpcId", network.vpc_id)
pulumi.export("gpuNodeGroups", [g.name for g in cfg.node_groups])
if karpenter:
    pulumi.export("karpenterNodePools", [p.name for p in cfg.karpenter.node_pools])
    pulumi.export("karpenterInterruptionQueue", karpenter.interruption_queue)
pulumi.export("capacity", capacity_plan(cfg, pools).to_json())
