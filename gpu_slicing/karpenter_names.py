"""The physical names of Karpenter's AWS and Kubernetes objects, as upstream's getting-started template names
them: gpu_slicing.karpenter builds the objects, gpu_slicing.config checks the names' lengths (apart, so neither
imports the other)."""
from __future__ import annotations

# The interruption events Karpenter handles (upstream's five EventBridge rules): key -> (source, detail-type).
INTERRUPTION_RULES: dict[str, tuple[str, str]] = {
    "health": ("aws.health", "AWS Health Event"),
    "spot": ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
    "rebalance": ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
    "state-change": ("aws.ec2", "EC2 Instance State-change Notification"),
    "cr-interrupt": ("aws.ec2", "EC2 Capacity Reservation Instance Interruption Warning"),
}
# The controller's managed policies, named as upstream names them.
CONTROLLER_POLICIES = ("NodeLifecycle", "IAMIntegration", "EKSIntegration", "Interruption", "ZonalShift",
                       "ResourceDiscovery")


def node_role_name(cluster: str) -> str:
    return f"KarpenterNodeRole-{cluster}"


def controller_role_name(cluster: str) -> str:
    return f"KarpenterControllerRole-{cluster}"


def policy_name(cluster: str, key: str) -> str:
    return f"KarpenterController{key}Policy-{cluster}"


def queue_name(cluster: str) -> str:
    return f"Karpenter-{cluster}"


def rule_name(cluster: str, key: str) -> str:
    """At most 64 characters for a 40-character cluster name."""
    return f"Karpenter-{cluster}-{key}"


def overlay_name(pool: str, instance_type: str) -> str:
    return f"{pool}-{instance_type.replace('.', '-')}"
