"""GPU slicing on EKS: wiring only. Every decision lives in `gpu_slicing/` (pure) and `components/`."""
import pulumi

from components import stack_config
from components.cluster import Cluster, ClusterArgs
from components.dra_driver import DraDriver, DraDriverArgs
from components.gpu_node_group import GpuNodeGroup, GpuNodeGroupArgs
from components.gpu_node_pool import GpuNodePool, GpuNodePoolArgs
from components.gpu_operator import GpuOperator, GpuOperatorArgs
from components.karpenter import Karpenter, KarpenterArgs
from components.network import Network, NetworkArgs
from components.observability import Observability, ObservabilityArgs
from components.workloads import SampleWorkloads, SampleWorkloadsArgs

stack = stack_config.load()  # raises a ConfigError naming the key before anything is registered
cfg, pools = stack.config, stack.pools
by_name = {p.name: p for p in pools}
name = cfg.cluster.name

gpu_types = [g.instance_type for g in cfg.node_groups] + [t for p in cfg.karpenter.node_pools for t in p.instance_types]
network = Network(name, NetworkArgs(cfg.network, name, gpu_types))
cluster = Cluster(name, ClusterArgs(cfg.cluster, cfg.system_node_group, network.vpc_id, network.private_subnet_ids,
                                    network.public_subnet_ids, cfg.network))
gpu_groups = {g.name: GpuNodeGroup(f"{name}-{g.name}", GpuNodeGroupArgs(
    g, by_name[g.name], cluster.eks_cluster, name, cfg.cluster.kubernetes_version,
    network.subnets_for(g.instance_type), cfg.allow_disruption)) for g in cfg.node_groups}
# Karpenter (optional): its AWS side and release come after the system node group (and so are destroyed
# before it); NodePools come after the release (its CRDs); a pool's workloads come after its NodePool and
# NodeOverlays, so a destroy removes the pods, then the pools (Karpenter drains and terminates their
# nodes), then Karpenter itself.
karpenter = (Karpenter(f"{name}-karpenter", KarpenterArgs(name, cfg.karpenter.version, cluster.provider,
                                                          cluster.node_security_group_id, cluster.system_node_group))
             if cfg.karpenter.enabled else None)
gpu_pools = {p.name: GpuNodePool(f"{name}-{p.name}", GpuNodePoolArgs(p, by_name[p.name], name, cfg.karpenter.ami_alias_version,
                                                                     karpenter, cluster.provider))
             for p in cfg.karpenter.node_pools} if karpenter else {}

operator = GpuOperator(f"{name}-gpu-operator", GpuOperatorArgs(cfg, pools, cluster.provider,
                                                               cluster.system_node_group))
pool_ready: dict[str, list[pulumi.Resource]] = {**{n: [g.node_group] for n, g in gpu_groups.items()},
              **{n: [p.node_pool, *p.overlays] for n, p in gpu_pools.items()}}
# DRA (optional): the driver after the operator (its MIG manager applies the layouts the driver publishes);
# claim templates after the driver, the pods holding claims after their templates.
dra_driver = (DraDriver(f"{name}-dra-driver", DraDriverArgs(pools, cfg.workloads, cluster.provider,
                                                           [cluster.system_node_group, operator.release]))
              if any(p.allocation == "dra" for p in pools) else None)
workloads = SampleWorkloads(f"{name}-workloads", SampleWorkloadsArgs(cfg.workloads, by_name, cluster.provider,
                                                                     operator.release, pool_ready,
                                                                     dra_driver.release if dra_driver else None))
# Monitoring (optional) runs on the system nodes and watches the operator's exporter; nothing depends on it,
# so a destroy removes it first, before anything it watches.
observability = (Observability(f"{name}-observability", ObservabilityArgs(
    cfg, pools, cluster.provider, operator.namespace, cluster.system_node_group))
    if cfg.observability.enabled else None)

pulumi.export("clusterName", name)
pulumi.export("kubeconfig", cluster.kubeconfig)
pulumi.export("vpcId", network.vpc_id)
pulumi.export("availabilityZones", network.zones)
pulumi.export("gpuNodeGroups", [g.name for g in cfg.node_groups])
if karpenter:
    pulumi.export("karpenterNodePools", [p.name for p in cfg.karpenter.node_pools])
    pulumi.export("karpenterInterruptionQueue", karpenter.interruption_queue)
if observability:
    pulumi.export("monitoringNamespace", observability.namespace)
pulumi.export("capacity", stack.capacity.to_json())
