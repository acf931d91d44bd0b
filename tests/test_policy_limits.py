"""The policy pack's cost guard and MIG overlays on hand-built graphs: what a NodePool's limits admit (and
why not, when they cannot be counted), node group maxSize, the stack's ceiling, and the NodeOverlay a MIG
NodePool needs, including a custom layout from the MIG manager's ConfigMap that leaves half the GPUs whole.
Expected counts are worked by hand from the catalog's sources (p4d.24xlarge: 8 A100-40GB, 96 vCPU, 1152 GiB;
1g.5gb: 7 per GPU, FACTS 2) and Karpenter's rule that a pool stops at its first exhausted limit."""
from __future__ import annotations

from policy import rules

NP, MNG = rules.NODEPOOL_TYPE, "eks:index:ManagedNodeGroup"


def res(type_: str, name: str, props: dict) -> rules.Res:
    return rules.Res(type=type_, name=name, urn=f"urn:{type_}::{name}", props=props)


def nodepool(name: str, limits, types=("p4d.24xlarge",), label: str | None = None, reqs: list | None = None) -> rules.Res:
    reqs = reqs if reqs is not None else [{"key": rules.INSTANCE_TYPE_LABEL, "operator": "In", "values": list(types)}]
    spec = {"template": {"metadata": {"labels": {"nvidia.com/mig.config": label} if label else {}},
                         "spec": {"requirements": reqs}}}
    if limits is not None:
        spec["limits"] = limits
    return res(NP, name, {"metadata": {"name": name}, "spec": spec})


def guard(resources: list[rules.Res], ceiling: int | None = 100) -> list[str]:
    return [m for m, _ in rules.max_gpu_nodes(resources, rules.Context(max_gpu_nodes=ceiling))]


def test_the_nodes_node_groups_and_limits_admit_add_up_against_the_ceiling():
    ng = res(MNG, "ng", {"instanceTypes": ["p4d.24xlarge"], "scalingConfig": {"maxSize": "3"}})
    np_ = nodepool("small", {"cpu": "400", "memory": "10000Gi", "nvidia.com/gpu": "24"})  # 3 p4d: GPUs run out
    assert guard([ng, np_], 6) == []
    [msg] = guard([ng, np_], 5)
    assert "6 GPU nodes (ng: 3, small: 3)" in msg and "maxGpuNodes=5" in msg
    [msg] = guard([ng, np_], None)
    assert "6 GPU nodes (ng: 3, small: 3)" in msg and "states no ceiling" in msg
    assert guard([], None) == []  # nothing GPU: no ceiling needed


def test_unknown_sizes_and_limits_are_left_out_silently():
    ng = res(MNG, "ng", {"instanceTypes": ["p4d.24xlarge"], "scalingConfig": {"maxSize": rules.UNKNOWN}})
    assert guard([ng, nodepool("np", rules.UNKNOWN)], None) == []
    assert rules.nodepool_max_nodes(rules.pool_of(nodepool("np", rules.UNKNOWN)))[0] is None


def test_a_pool_left_out_does_not_stop_the_count():
    """An unknown maxSize or limit leaves only that pool out: the pools after it still add up against the
    ceiling (3 + 3 p4d nodes from the hand count above, beyond a ceiling of 5)."""
    unknown_ng = res(MNG, "unsized", {"instanceTypes": ["p4d.24xlarge"], "scalingConfig": {"maxSize": rules.UNKNOWN}})
    ng = res(MNG, "ng", {"instanceTypes": ["p4d.24xlarge"], "scalingConfig": {"maxSize": 3}})
    np_ = nodepool("small", {"cpu": "400", "memory": "10000Gi", "nvidia.com/gpu": "24"})
    [msg] = guard([unknown_ng, nodepool("later", rules.UNKNOWN), ng, np_], 5)
    assert "6 GPU nodes (ng: 3, small: 3)" in msg

def test_why_a_nodepool_cannot_be_counted():
    def why(np_: rules.Res) -> str:
        n, reason = rules.nodepool_max_nodes(rules.pool_of(np_))
        assert n is None
        [msg] = guard([np_])
        assert msg == f"NodePool {np_.name}: {reason}"
        return reason

    for limits in (None, {}, "lots"):
        assert why(nodepool("open", limits)).startswith("no spec.limits bounding its GPU instances"), limits
    assert why(nodepool("odd", {"cpu": "96"}, types=("p4d.24xlarge", "p3.2xlarge"))).startswith(
        "instance types p4d.24xlarge, p3.2xlarge not all in gpu_slicing.catalog")
    by_name = [{"key": "karpenter.k8s.aws/instance-gpu-name", "operator": "In", "values": ["a100"]}]
    assert why(nodepool("named", {"cpu": "96"}, reqs=by_name)).startswith("instance types (none named) not all in")
    assert why(nodepool("pods", {"pods": "10"})) == "spec.limits {'pods': '10'} limit none of cpu, memory, nvidia.com/gpu"


def test_a_nodepool_counts_once_it_can():
    assert rules.nodepool_max_nodes(rules.pool_of(nodepool("np", {"nvidia.com/gpu": "16"}))) == (2, "")


# --- MIG overlays ------------------------------------------------------------------------------------

HALF = ("version: v1\nmig-configs:\n  half:\n    - devices: [0, 1, 2, 3]\n      mig-enabled: true\n"
        "      mig-devices: {\"1g.5gb\": 7}\n    - devices: [4, 5, 6, 7]\n      mig-enabled: false\n")


def operator_with(config: str) -> list[rules.Res]:
    values = {"mig": {"strategy": "mixed"}, "migManager": {"enabled": True, "config": {"name": "custom"}}}
    return [res("kubernetes:helm.sh/v3:Release", "gpu-operator", {"chart": "gpu-operator", "values": values}),
            res(rules.CONFIGMAP_TYPE, "cm", {"metadata": {"name": "custom"}, "data": {"config.yaml": config}})]


def overlay(capacity: dict) -> rules.Res:
    return res(rules.OVERLAY_TYPE, "ov", {"spec": {"requirements": [
        {"key": rules.NODEPOOL_LABEL, "operator": "In", "values": ["half"]},
        {"key": rules.INSTANCE_TYPE_LABEL, "operator": "In", "values": ["p4d.24xlarge"]}], "capacity": capacity}})


def overlays(*extra: rules.Res) -> list[str]:
    graph = operator_with(HALF) + [nodepool("half", {"cpu": "96"}, label="half"), *extra]
    return [m for m, _ in rules.mig_nodepool_overlay(graph, rules.Context())]


def test_a_layout_that_leaves_gpus_whole_declares_only_its_slices():
    """Four GPUs of 7 x 1g.5gb and four whole: the node advertises 28 nvidia.com/mig-1g.5gb and 4 nvidia.com/gpu,
    and Karpenter knows the whole GPUs already (the instance's GPU count): the overlay declares the slices only."""
    assert overlays(overlay({"nvidia.com/mig-1g.5gb": "28"})) == []
    [msg] = overlays(overlay({"nvidia.com/mig-1g.5gb": "56"}))
    assert "NodeOverlay capacity nvidia.com/mig-1g.5gb=56, the node advertises 28" in msg
    [msg] = overlays()
    assert msg.startswith("NodePool half (p4d.24xlarge, half): no NodeOverlay") and "nvidia.com/mig-1g.5gb" in msg


def test_the_ranges_a_cidr_lies_in():
    assert rules.documentation_range("198.51.100.7/32") == "198.51.100.0/24"
    assert rules.documentation_range("192.0.2.7/24") == "192.0.2.0/24"  # host bits set: still that range
    assert rules.documentation_range("10.0.0.0/8") is None
    assert rules.range_containing("10.1.2.0/24", rules.PRIVATE_RANGES) == "10.0.0.0/8"
    assert rules.range_containing("172.31.0.0/16", rules.PRIVATE_RANGES) == "172.16.0.0/12"
    assert rules.range_containing("172.32.0.0/16", rules.PRIVATE_RANGES) is None
    assert rules.range_containing("fd00::/8", rules.PRIVATE_RANGES) is None


def test_a_pod_spec_that_is_no_map_is_no_pod():
    for spec in ("x", None, ["a"]):
        d = res("kubernetes:apps/v1:Deployment", "d", {"spec": {"template": {"spec": spec}}})
        assert rules.pod_spec(d) is None
        assert list(rules.workloads_non_root(d, rules.Context())) == []
