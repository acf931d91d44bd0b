"""The policy pack's GPU rules at their edges, on hand-built resources: what a pod asks of the GPU (limits
over requests, summed over its containers: Kubernetes takes an extended resource's request from its
limit), the GPU taint in EKS's and Kubernetes' spellings, tolerations as Kubernetes matches them, consent
before relabelling live MIG nodes, one architecture per pool, and the overlay fractional vGPU types need
(FACTS 3, 7, 8: EC2 reports 0 GPUs for g6f/gr6f, the node advertises one nvidia.com/gpu)."""
from __future__ import annotations

import pytest

from gpu_slicing.changes import ALLOW_DISRUPTION_TAG, MIG_LAYOUT_CHANGE_TAG
from policy import rules

CTX = rules.Context(max_gpu_nodes=100)
MNG = "eks:index:ManagedNodeGroup"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}


def res(type_: str, name: str, props: dict) -> rules.Res:
    return rules.Res(type=type_, name=name, urn=f"urn:{name}", props=props)


def container(requests: dict | None = None, limits: dict | None = None, **kw) -> dict:
    return {"name": "c", "resources": {k: v for k, v in (("requests", requests), ("limits", limits)) if v is not None},
            **kw}


def test_gpu_requests_take_limits_over_requests_and_sum_containers():
    spec = {"initContainers": [container(limits={"nvidia.com/mig-1g.5gb": "1"})],
            "containers": [container({"nvidia.com/mig-1g.5gb": "1", "nvidia.com/gpu": "2", "cpu": "1"},
                                     {"nvidia.com/gpu": "1"}),
                           container({"nvidia.com/mig-3g.20gb": 2}),
                           container(limits={"nvidia.com/mig-1g.5gb": "2"})]}
    assert rules.gpu_requests(spec) == {"nvidia.com/mig-1g.5gb": 4, "nvidia.com/gpu": 1, "nvidia.com/mig-3g.20gb": 2}


def test_gpu_requests_edges():
    assert rules.gpu_requests({"containers": [container({"nvidia.com/gpu": "0"})]}) == {}
    assert rules.gpu_requests({"containers": [container({"nvidia.com/gpu": rules.UNKNOWN})]}) == {"nvidia.com/gpu": 1}
    assert rules.gpu_requests({"containers": [container({"nvidia.com/gpu": rules.UNKNOWN}),
                                              container({"nvidia.com/gpu": "3"})]}) == {"nvidia.com/gpu": 4}
    assert rules.gpu_requests({"containers": [{"name": "c", "resources": "lots"}, {"name": "d"}, "junk"]}) == {}
    assert rules.gpu_requests({"containers": [container({"amd.com/gpu": "1", "cpu": "2"})]}) == {}
    assert rules.gpu_requests({"containers": [container(None, None)]}) == {}


def deployment(tolerations: list, resources: dict | None = None) -> rules.Res:
    spec = {"tolerations": tolerations, "containers": [container(resources or {"nvidia.com/mig-1g.5gb": "1"})]}
    return res(DEPLOYMENT, "d", {"spec": {"template": {"spec": spec}}})


@pytest.mark.parametrize("tolerations", [
    [TAINT], [{"key": "nvidia.com/gpu", "operator": "Exists"}], [{"operator": "Exists"}],
    [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    [{"key": "other", "operator": "Exists"}, {"key": "nvidia.com/gpu", "value": "true"}],
])
def test_tolerations_that_match_the_gpu_taint(tolerations):
    assert list(rules.gpu_workloads_tolerate(deployment(tolerations), CTX)) == []


@pytest.mark.parametrize("tolerations", [
    [], [{"key": "nvidia.com/gpu", "value": "false"}], [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}],
    [{"key": "other", "operator": "Exists"}], [{"operator": "Equal", "value": "true"}],
])
def test_tolerations_that_miss_the_gpu_taint(tolerations):
    assert list(rules.gpu_workloads_tolerate(deployment(tolerations), CTX)) == [
        "d: requests nvidia.com/mig-1g.5gb but does not tolerate nvidia.com/gpu=true:NoSchedule"]


def test_pods_that_ask_no_gpu_need_no_toleration():
    assert list(rules.gpu_workloads_tolerate(deployment([], {"cpu": "1"}), CTX)) == []
    assert list(rules.gpu_workloads_tolerate(res("kubernetes:core/v1:Service", "s", {"spec": {}}), CTX)) == []


@pytest.mark.parametrize("taints, ok", [
    ([{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}], True),  # EKS's spelling
    ([TAINT], True),
    ([{"key": "other", "effect": "NO_SCHEDULE"}, TAINT], True),
    ([{"key": "nvidia.com/gpu", "value": "true", "effect": "PREFER_NO_SCHEDULE"}], False),
    ([{"key": "nvidia.com/gpu", "value": "true", "effect": "NoExecute"}], False),
    ([{"key": "gpu", "value": "true", "effect": "NoSchedule"}], False),
    ([], False),
])
def test_gpu_node_groups_carry_the_taint(taints, ok):
    ng = res(MNG, "ng", {"instanceTypes": ["p4d.24xlarge"], "taints": taints, "labels": {"gpu-slicing/pool": "big"}})
    msgs = list(rules.gpu_taint(ng, CTX))
    assert (msgs == []) is ok
    if not ok:
        assert msgs[0].startswith("nodeGroup big: GPU pool without the taint nvidia.com/gpu:NoSchedule")


def test_a_node_group_is_a_gpu_pool_by_its_types_or_its_nvidia_ami():
    assert list(rules.gpu_taint(res(MNG, "sys", {"instanceTypes": ["m7i.large"]}), CTX)) == []
    assert len(list(rules.gpu_taint(res(MNG, "odd", {"instanceTypes": ["p3.2xlarge"],
                                                     "amiType": "AL2023_x86_64_NVIDIA"}), CTX))) == 1
    assert len(list(rules.gpu_taint(res("aws:eks/nodeGroup:NodeGroup", "ng", {"instanceTypes": ["g6.xlarge"],
                                                                                "nodeGroupName": "l4"}), CTX))) == 1


def test_relabelling_live_mig_nodes_needs_consent():
    def ng(tags):
        return res(MNG, "ng", {"tags": tags})

    [msg] = rules.mig_relabel_needs_consent(ng({MIG_LAYOUT_CHANGE_TAG: "in-place"}), CTX)
    assert msg.startswith("ng: migLayoutChange in-place relabels live GPU nodes")
    assert len(list(rules.mig_relabel_needs_consent(ng({MIG_LAYOUT_CHANGE_TAG: "in-place",
                                                        ALLOW_DISRUPTION_TAG: "false"}), CTX))) == 1
    for ok in ({MIG_LAYOUT_CHANGE_TAG: "in-place", ALLOW_DISRUPTION_TAG: "true"}, {MIG_LAYOUT_CHANGE_TAG: "replace"},
               {}, rules.UNKNOWN):
        assert list(rules.mig_relabel_needs_consent(ng(ok), CTX)) == [], ok
    tagged = res("aws:ec2/launchTemplate:LaunchTemplate", "lt", {"tags": {MIG_LAYOUT_CHANGE_TAG: "in-place"}})
    assert list(rules.mig_relabel_needs_consent(tagged, CTX)) == []


def nodepool(types: list[str], arch: list[str] | None = None, name: str = "np") -> rules.Res:
    reqs = [{"key": rules.INSTANCE_TYPE_LABEL, "operator": "In", "values": types}]
    if arch is not None:
        reqs.append({"key": "kubernetes.io/arch", "operator": "In", "values": arch})
    return res(rules.NODEPOOL_TYPE, name, {"metadata": {"name": name}, "spec": {"template": {"spec": {
        "requirements": reqs, "taints": [TAINT]}}}})


def test_one_architecture_per_pool_and_its_ami():
    assert list(rules.gpu_ami_arch(nodepool(["g5g.xlarge"], ["arm64"]), CTX)) == []
    assert list(rules.gpu_ami_arch(nodepool(["g5g.xlarge"]), CTX)) == []  # no arch requirement: nothing excluded
    [msg] = rules.gpu_ami_arch(nodepool(["g5g.xlarge"], ["amd64"]), CTX)
    assert "g5g.xlarge" in msg and "arm64" in msg
    [msg] = rules.gpu_ami_arch(nodepool(["g5g.xlarge", "g5.xlarge"], ["amd64", "arm64"]), CTX)
    assert msg.startswith("nodePool np: instance types of two architectures (amd64, arm64)")
    ng = {"instanceTypes": ["g5g.xlarge"], "amiType": "AL2023_x86_64_NVIDIA"}
    [msg] = rules.gpu_ami_arch(res(MNG, "ng", ng), CTX)
    assert "amiType AL2023_x86_64_NVIDIA on g5g.xlarge (arm64); use AL2023_ARM_64_NVIDIA" in msg
    for ami in ("AL2023_ARM_64_NVIDIA", rules.UNKNOWN, "AL2023_x86_64_STANDARD"):  # a non-NVIDIA AMI is another rule's
        assert list(rules.gpu_ami_arch(res(MNG, "ng", {**ng, "amiType": ami}), CTX)) == [], ami


def overlay(pool: str, types: list[str] | None, gpus) -> rules.Res:
    reqs = [{"key": rules.NODEPOOL_LABEL, "operator": "In", "values": [pool]}]
    if types is not None:
        reqs.append({"key": rules.INSTANCE_TYPE_LABEL, "operator": "In", "values": types})
    return res(rules.OVERLAY_TYPE, f"ov-{pool}", {"spec": {"requirements": reqs, "capacity": {"nvidia.com/gpu": gpus}}})


def fractional(*extra: rules.Res) -> list[str]:
    return [m for m, _ in rules.fractional_gpu_overlay([nodepool(["g6f.xlarge", "g6.xlarge"], name="l4"), *extra], CTX)]


def test_fractional_vgpu_types_need_an_overlay_declaring_their_gpu():
    [msg] = fractional()
    assert msg.startswith("NodePool l4 (g6f.xlarge, a fractional GPU EC2 reports as 0)") and "declared: none" in msg
    assert fractional(overlay("l4", ["g6f.xlarge"], "1")) == []
    assert fractional(overlay("l4", None, 1)) == []  # an overlay for the whole pool covers its types
    assert fractional(overlay("l4", ["g6f.xlarge"], rules.UNKNOWN)) == []
    assert len(fractional(overlay("l4", ["g6f.xlarge"], "2"))) == 1
    assert len(fractional(overlay("other", ["g6f.xlarge"], "1"))) == 1
    assert len(fractional(overlay("l4", ["g6.xlarge"], "1"))) == 1
    # a managed node group is no Karpenter pool: EKS launches the instance whatever EC2 reports
    assert list(rules.fractional_gpu_overlay([res(MNG, "ng", {"instanceTypes": ["g6f.xlarge"]})], CTX)) == []


def test_how_a_node_group_is_named_and_its_taints_read():
    named = rules.pool_of(res(MNG, "urn-name", {"instanceTypes": ["p4d.24xlarge"], "nodeGroupName": "gpu-a",
                                                "taints": [{"key": "nvidia.com/gpu", "effect": "NO_SCHEDULE"}]}))
    assert (named.kind, named.name, named.instance_types) == ("nodeGroup", "gpu-a", ("p4d.24xlarge",))
    assert named.taints == ({"key": "nvidia.com/gpu", "effect": "NoSchedule"},)  # Kubernetes' spelling
    labelled = rules.pool_of(res(MNG, "urn-name", {"instanceTypes": ["p4d.24xlarge"], "nodeGroupName": "gpu-a",
                                                   "labels": {"gpu-slicing/pool": "big"}}))
    assert labelled.name == "big"
    bare = rules.pool_of(res(MNG, "urn-name", {"instanceTypes": ["p4d.24xlarge"], "labels": rules.UNKNOWN}))
    assert (bare.name, dict(bare.labels)) == ("urn-name", {})


def test_a_nodepool_is_a_gpu_pool_by_its_types_or_a_gpu_requirement():
    assert rules.pool_of(nodepool(["m7i.large"])) is None
    by_count = res(rules.NODEPOOL_TYPE, "np", {"spec": {"template": {"spec": {"requirements": [
        {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "Gt", "values": ["0"]}]}}}})
    pool = rules.pool_of(by_count)
    assert (pool.kind, pool.name, pool.instance_types) == ("nodePool", "np", ())  # unknown metadata.name: its own
    assert rules.pool_of(res(rules.NODEPOOL_TYPE, "np", {"spec": {"template": {"spec": {"requirements": [
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}}}})) is None


def test_a_single_slice_still_needs_its_overlay():
    """p5.4xlarge is one H100: all-7g.80gb advertises exactly one nvidia.com/mig-7g.80gb, which Karpenter
    cannot know without an overlay."""
    np_ = res(rules.NODEPOOL_TYPE, "one", {"metadata": {"name": "one"}, "spec": {"template": {
        "metadata": {"labels": {"nvidia.com/mig.config": "all-7g.80gb"}},
        "spec": {"requirements": [{"key": rules.INSTANCE_TYPE_LABEL, "operator": "In", "values": ["p5.4xlarge"]}]}}}})
    [(msg, _)] = rules.mig_nodepool_overlay([np_], CTX)
    assert msg.startswith("NodePool one (p5.4xlarge, all-7g.80gb): no NodeOverlay") and "nvidia.com/mig-7g.80gb" in msg


def test_the_taint_message_shows_what_the_pool_has():
    """The user sees the pool's taints beside the missing one, or 'none' when it has none."""
    assert list(rules.gpu_taint(res(MNG, "ng", {"instanceTypes": ["p4d.24xlarge"], "nodeGroupName": "big"}), CTX)) == [
        "nodeGroup big: GPU pool without the taint nvidia.com/gpu:NoSchedule (has none)"]
    other = {"key": "team", "value": "ml", "effect": "NoSchedule"}
    assert list(rules.gpu_taint(res(MNG, "ng", {"instanceTypes": ["p4d.24xlarge"], "nodeGroupName": "big",
                                                "taints": [other]}), CTX)) == [
        f"nodeGroup big: GPU pool without the taint nvidia.com/gpu:NoSchedule (has {[other]})"]


def test_every_gpu_resource_a_pod_asks_for_is_named():
    d = deployment([], {"nvidia.com/mig-1g.5gb": "1", "nvidia.com/gpu": "1"})
    assert list(rules.gpu_workloads_tolerate(d, CTX)) == [
        "d: requests nvidia.com/gpu, nvidia.com/mig-1g.5gb but does not tolerate nvidia.com/gpu=true:NoSchedule"]


def test_two_architectures_in_one_pool_are_named_with_the_fix():
    assert list(rules.gpu_ami_arch(nodepool(["g5g.xlarge", "g5.xlarge"]), CTX)) == [
        "nodePool np: instance types of two architectures (amd64, arm64): one AMI and one kubernetes.io/arch per pool"]


def test_each_fractional_type_of_each_pool_is_judged():
    """A node group before the NodePool, a whole-GPU type before the fractional one, and a fractional type whose
    overlay is unknown before one that has none: none of them ends the search (FACTS 7: g6f reports 0 GPUs)."""
    ng = res(MNG, "ng", {"instanceTypes": ["g6f.xlarge"]})
    mixed = nodepool(["g6.xlarge", "g6f.xlarge"], name="l4")
    assert [m for m, _ in rules.fractional_gpu_overlay([ng, mixed], CTX)] == [
        'NodePool l4 (g6f.xlarge, a fractional GPU EC2 reports as 0): no NodeOverlay declares nvidia.com/gpu: "1" '
        "for it (declared: none); pods requesting nvidia.com/gpu stay Pending"]
    two = nodepool(["g6f.large", "g6f.xlarge"], name="l4")
    msgs = [m for m, _ in rules.fractional_gpu_overlay([two, overlay("l4", ["g6f.large"], rules.UNKNOWN)], CTX)]
    assert [m.split(":")[0] for m in msgs] == ["NodePool l4 (g6f.xlarge, a fractional GPU EC2 reports as 0)"]


# --- DRA: the kubelet plugin beside the device plugin ------------------------------------------------------

DEPLOY = "nvidia.com/gpu.deploy.device-plugin"  # the GPU Operator's per-node switch for its device plugin


def dra_driver(values: dict) -> rules.Res:
    return res("kubernetes:helm.sh/v3:Release", "dra", {
        "chart": "oci://registry.k8s.io/dra-driver-nvidia/charts/dra-driver-nvidia-gpu", "values": values})


def gpu_group(name: str, labels) -> rules.Res:
    return res(MNG, name, {"instanceTypes": ["p5.48xlarge"], "labels": labels})


def both_on(resources: list[rules.Res]) -> list[str]:
    return [m for m, _ in rules.one_allocation_per_node(resources, CTX)]


def test_a_kubelet_plugin_without_a_selector_runs_on_every_pool():
    """No nodeSelector (or none given at all) admits every node: each pool still running the device plugin is
    refused, by name, with the two ways out."""
    for values in ({}, {"kubeletPlugin": {}}):
        assert both_on([dra_driver(values), gpu_group("a", {"gpu-slicing/pool": "a"}),
                        gpu_group("b", {"gpu-slicing/pool": "b", DEPLOY: "false"})]) == [
            "nodeGroup a: the DRA kubelet plugin (dra, nodeSelector none: every node) and the device plugin could "
            f"both run on its nodes; label them {DEPLOY}=false or narrow the kubelet plugin's nodeSelector"], values


def test_a_pool_is_admitted_only_by_every_label_of_the_selector():
    selector = {"gpu-slicing/allocation": "dra", "tier": "gpu"}
    driver = dra_driver({"kubeletPlugin": {"nodeSelector": selector}})
    assert both_on([driver, gpu_group("a", {"gpu-slicing/allocation": "dra"})]) == []
    [msg] = both_on([driver, gpu_group("a", {**selector, DEPLOY: "true"})])
    assert msg.startswith(f"nodeGroup a: the DRA kubelet plugin (dra, nodeSelector {selector})")
    assert both_on([driver, gpu_group("a", {**selector, DEPLOY: "false"})]) == []


def test_what_is_unknown_at_preview_is_left_out_and_the_rest_still_judged():
    """A selector unknown at preview says nothing; a pool whose name is unknown is skipped, not the end."""
    assert both_on([dra_driver({"kubeletPlugin": {"nodeSelector": rules.UNKNOWN}}),
                    gpu_group("a", {"gpu-slicing/pool": "a"})]) == []
    msgs = both_on([dra_driver({}), gpu_group("u", {"gpu-slicing/pool": rules.UNKNOWN}),
                    gpu_group("b", {"gpu-slicing/pool": "b"})])
    assert [m.split(":")[0] for m in msgs] == ["nodeGroup b"]
    # a NodePool is named by metadata.name: its pool label unknown at preview still leaves it out
    unknown_label = res(rules.NODEPOOL_TYPE, "np", {"metadata": {"name": "np"}, "spec": {"template": {
        "metadata": {"labels": {"gpu-slicing/pool": rules.UNKNOWN}}, "spec": {"requirements": [
            {"key": rules.INSTANCE_TYPE_LABEL, "operator": "In", "values": ["p5.48xlarge"]}]}}}})
    assert both_on([dra_driver({}), unknown_label]) == []


def test_every_dra_release_is_judged():
    """A second DRA release (another namespace) with no selector is refused even after one unknown at preview."""
    unknown = dra_driver({"kubeletPlugin": {"nodeSelector": rules.UNKNOWN}})
    second = rules.Res(unknown.type, "dra-2", "urn:dra-2", dra_driver({}).props)
    [msg] = both_on([unknown, second, gpu_group("a", {"gpu-slicing/pool": "a"})])
    assert msg.startswith("nodeGroup a: the DRA kubelet plugin (dra-2, nodeSelector none: every node)")


def claim_pod(spec_extra: dict, claims=({"name": "gpu", "resourceClaimTemplateName": "t"},)) -> rules.Res:
    return res("kubernetes:core/v1:Pod", "p", {"spec": {"resourceClaims": list(claims), "containers": [{"name": "c"}],
                                                        **spec_extra}})


def test_a_pod_holding_a_claim_must_select_the_dra_nodes():
    """Only nodeSelector nvidia.com/gpu.deploy.device-plugin: "false" keeps the pod off the nodes where the
    device plugin could hand out the same GPU; no selector, another value or another label does not."""
    want = (f'p: holds DRA claims but its nodeSelector allows nodes running the device plugin; select {DEPLOY}: '
            '"false" (the DRA pool\'s nodes)')
    assert list(rules.dra_pods_on_dra_nodes(claim_pod({"nodeSelector": {DEPLOY: "false"}}), CTX)) == []
    for extra in ({}, {"nodeSelector": {DEPLOY: "true"}}, {"nodeSelector": {"gpu-slicing/pool": "p5"}},
                  {"nodeSelector": "p5"}):
        assert list(rules.dra_pods_on_dra_nodes(claim_pod(extra), CTX)) == [want], extra


def test_claims_or_selectors_unknown_at_preview_are_no_violation():
    for extra in ({"nodeSelector": rules.UNKNOWN}, {"nodeSelector": {DEPLOY: rules.UNKNOWN}}):
        assert list(rules.dra_pods_on_dra_nodes(claim_pod(extra), CTX)) == [], extra
    assert list(rules.dra_pods_on_dra_nodes(claim_pod({}, claims=()), CTX)) == []  # no claim: another rule's pod
    assert list(rules.dra_pods_on_dra_nodes(res("kubernetes:core/v1:Service", "s", {"spec": {
        "resourceClaims": [{"name": "gpu"}]}}), CTX)) == []
