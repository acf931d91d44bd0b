"""GPU slicing on EKS: wiring only. Every decision lives in `gpu_slicing/` (pure) and `components/`; the stack
arrives resolved (each pool with its config block, each workload with its pool, names and dependencies)."""
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
cfg = stack.config
name = cfg.cluster.name

network = Network(name, NetworkArgs(config=cfg.network, cluster_name=name,
                                    gpu_instance_types=stack.gpu_instance_types))
cluster = Cluster(name, ClusterArgs(cluster=cfg.cluster, system_node_group=cfg.system_node_group,
                                    vpc_id=network.vpc_id, private_subnet_ids=network.private_subnet_ids,
                                    public_subnet_ids=network.public_subnet_ids, network=cfg.network))
gpu_groups = {g.name: GpuNodeGroup(f"{name}-{g.name}", GpuNodeGroupArgs(
    node_group=g, cluster=cluster.eks_cluster, cluster_name=name, kubernetes_version=cfg.cluster.kubernetes_version,
    subnet_ids=network.subnets_for(g.config.instance_type), allow_disruption=cfg.allow_disruption))
    for g in stack.node_groups}
# Karpenter (optional): its AWS side and release come after the system node group (and so are destroyed
# before it); NodePools come after the release (its CRDs); a pool's workloads come after its NodePool and
# NodeOverlays, so a destroy removes the pods, then the pools (Karpenter drains and terminates their
# nodes), then Karpenter itself.
karpenter = (Karpenter(f"{name}-karpenter", KarpenterArgs(
    cluster_name=name, version=cfg.karpenter.version, provider=cluster.provider,
    node_security_group_id=cluster.node_security_group_id, runs_on=cluster.system_node_group))
    if cfg.karpenter.enabled else None)
gpu_pools = {p.name: GpuNodePool(f"{name}-{p.name}", GpuNodePoolArgs(
    node_pool=p, cluster_name=name, ami_alias_version=cfg.karpenter.ami_alias_version, karpenter=karpenter,
    provider=cluster.provider)) for p in stack.node_pools} if karpenter else {}

operator = GpuOperator(f"{name}-gpu-operator", GpuOperatorArgs(operator=stack.gpu_operator, provider=cluster.provider,
                                                               runs_on=cluster.system_node_group))
# DRA (optional): the driver after the operator (its MIG manager applies the layouts the driver publishes);
# claim templates after the driver, the pods holding claims after their templates.
dra_driver = (DraDriver(f"{name}-dra-driver", DraDriverArgs(
    pools=stack.pools, workloads=stack.workloads, provider=cluster.provider,
    after=[cluster.system_node_group, operator.release]))
    if stack.uses_dra else None)
workloads = SampleWorkloads(f"{name}-workloads", SampleWorkloadsArgs(
    workloads=stack.workloads, provider=cluster.provider, operator=operator.release,
    pool_ready={**{n: g.ready for n, g in gpu_groups.items()}, **{n: p.ready for n, p in gpu_pools.items()}},
    dra_driver=dra_driver.release if dra_driver else None))
# Monitoring (optional) runs on the system nodes and watches the operator's exporter; nothing depends on it,
# so a destroy removes it first, before anything it watches.
observability = (Observability(f"{name}-observability", ObservabilityArgs(
    monitoring=stack.monitoring, provider=cluster.provider, exporter_namespace=operator.namespace,
    runs_on=cluster.system_node_group))
    if cfg.observability.enabled else None)

pulumi.export("clusterName", name)
pulumi.export("kubeconfig", cluster.kubeconfig)
pulumi.export("vpcId", network.vpc_id)
pulumi.export("availabilityZones", network.zones)
pulumi.export("gpuNodeGroups", [g.name for g in stack.node_groups])
if karpenter:
    pulumi.export("karpenterNodePools", [p.name for p in stack.node_pools])
    pulumi.export("karpenterInterruptionQueue", karpenter.interruption_queue)
if observability:
    pulumi.export("monitoringNamespace", observability.namespace)
pulumi.export("capacity", stack.capacity.to_json())
