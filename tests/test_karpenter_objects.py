"""Karpenter's documents and objects where their exact shape is the behaviour: the controller's trust policy
(EKS Pod Identity: the pods.eks.amazonaws.com principal assumes the role and tags the session, FACTS 4), the
interruption queue's policy (upstream's getting-started CloudFormation, KarpenterInterruptionQueuePolicy),
IAM's policy language version 2012-10-17 (without it IAM reads a document as 2008-10-17), the controller
pinned to Linux system nodes, a NodePool naming the EC2NodeClass that exists, and the maintenance window
checked per NodePool of a stack. Expected documents are written from those sources by hand."""
from __future__ import annotations

import pytest

from conftest import dev_config
from gpu_slicing import karpenter as spec
from gpu_slicing.errors import ConfigError
from gpu_slicing.pools import resolve_pools
from gpu_slicing.stack import parse_config

QUEUE = "arn:aws:sqs:us-east-1:111122223333:Karpenter-c"


def test_the_controllers_trust_policy_is_pod_identitys():
    assert spec.controller_trust_policy() == {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
         "Action": ["sts:AssumeRole", "sts:TagSession"]}]}


def test_the_interruption_queue_policy_is_upstreams():
    assert spec.queue_policy(QUEUE) == {"Version": "2012-10-17", "Id": "EC2InterruptionPolicy", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
         "Action": "sqs:SendMessage", "Resource": QUEUE},
        {"Sid": "DenyHTTP", "Effect": "Deny", "Action": "sqs:*", "Resource": QUEUE,
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}, "Principal": "*"}]}


def test_the_controller_runs_on_linux_system_nodes():
    values = spec.chart_values("c", "Karpenter-c", {"role": "system"}, "us-east-1")
    assert values["nodeSelector"] == {"kubernetes.io/os": "linux", "role": "system"}


def _pools(cfg: dict):
    return resolve_pools(parse_config(cfg))


def test_a_nodepool_names_the_nodeclass_made_for_it():
    pool = next(p for p in _pools(dev_config()) if p.name == "p4d-small")
    node_class = spec.node_class(pool, "c", "v20260101", 200)
    node_pool = spec.node_pool(pool, ["on-demand"], "10m", "Never")
    assert node_class["metadata"]["name"] == "p4d-small"
    assert node_pool["spec"]["template"]["spec"]["nodeClassRef"] == {
        "group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": node_class["metadata"]["name"]}
    [overlay] = spec.node_overlays(pool).values()
    assert overlay["metadata"]["name"] == "p4d-small-p4d-24xlarge"


POOL = "gpu-slicing:karpenter.nodePools[0]"


@pytest.mark.parametrize("window, field, value", [
    ({"driftSchedule": "0 2 * * *"}, "driftDuration", None),
    ({"driftDuration": "4h"}, "driftSchedule", None),
    ({"driftSchedule": "0 2 * * *", "driftDuration": "25h"}, "driftDuration", "25h"),
])
def test_a_nodepools_maintenance_window_is_checked_with_the_stack(window, field, value):
    cfg = dev_config()
    cfg["gpu-slicing:karpenter"]["nodePools"][0].update(window)
    with pytest.raises(ConfigError) as e:
        parse_config(cfg)
    assert [(x.key, x.value) for x in e.value.errors] == [(f"{POOL}.{field}", value)]


def test_a_whole_window_and_whole_gpus_pass():
    """A whole-GPU NodePool (g6.xlarge: its node advertises its one GPU, no more) with a full window is valid."""
    cfg = dev_config()
    cfg["gpu-slicing:karpenter"]["nodePools"] = [{"name": "l4", "instanceTypes": ["g6.xlarge"], "maxNodes": 1,
                                                  "driftSchedule": "0 2 * * *", "driftDuration": "4h"}]
    cfg["gpu-slicing:workloads"] = cfg["gpu-slicing:workloads"][:3]
    assert [p.name for p in _pools(cfg) if p.name == "l4"] == ["l4"]


def test_nodes_karpenter_launches_carry_the_clusters_tag_and_their_pool():
    """One tag finds every instance of the cluster in the account (cost allocation, a break-glass clean-up), as on
    the resources Pulumi manages, with `managed-by` naming Karpenter and the pool the node belongs to."""
    pool = next(p for p in _pools(dev_config()) if p.name == "p4d-small")
    assert spec.node_class(pool, "c", "v20260101", 200)["spec"]["tags"] == {
        "gpu-slicing/cluster": "c", "gpu-slicing/pool": "p4d-small", "managed-by": "karpenter"}


def _stack(node_pools: list[dict]) -> dict:
    return {"gpu-slicing:cluster": {"name": "t", "publicAccessCidrs": ["0.0.0.0/0"]}, "gpu-slicing:maxGpuNodes": 100,
            "gpu-slicing:karpenter": {"enabled": True, "nodePools": node_pools}, "gpu-slicing:workloads": []}


def test_a_fractional_l4_gets_its_gpu_from_an_overlay_beside_a_whole_l4():
    """EC2 reports 0 GPUs for g6f (an eighth of an L4 on g6f.xlarge) while its node advertises one nvidia.com/gpu:
    without an overlay saying so Karpenter never launches it for a GPU pod. The whole L4 of g6.xlarge is
    Karpenter's own count and needs none, and listing it first must not hide the g6f overlay."""
    [pool] = _pools(_stack([{"name": "l4", "instanceTypes": ["g6.xlarge", "g6f.xlarge"]}]))
    assert spec.overlay_capacity(pool, "g6f.xlarge") == {"nvidia.com/gpu": "1"}
    assert spec.overlay_capacity(pool, "g6.xlarge") == {}
    assert {it: o["spec"]["capacity"] for it, o in spec.node_overlays(pool).items()} == {
        "g6f.xlarge": {"nvidia.com/gpu": "1"}}


def test_a_single_slice_of_a_profile_is_advertised():
    """p5.4xlarge has one H100; all-balanced cuts it into 2 x 1g.10gb, 1 x 2g.20gb and 1 x 3g.40gb (NVIDIA
    mig-parted's default config): a profile with one slice on the node is capacity Karpenter must know too."""
    [pool] = _pools(_stack([{"name": "h100", "instanceTypes": ["p5.4xlarge"], "migLayout": "all-balanced"}]))
    assert spec.overlay_capacity(pool, "p5.4xlarge") == {
        "nvidia.com/mig-1g.10gb": "2", "nvidia.com/mig-2g.20gb": "1", "nvidia.com/mig-3g.40gb": "1"}
