"""The policy pack's MIG rules on hand-built graphs: which labels can be checked, which mig.strategy fits which
layout, the NodeOverlay a MIG NodePool needs (time-sliced pools too) and whole-GPU requests on sliced pools,
each judged pool by pool and type by type, so one pool left out never ends the search for the next.
Expected counts are worked by hand from FACTS 2 (p4d.24xlarge: 8 A100-40GB; all-1g.5gb: 7 x 1g.5gb per GPU,
56 a node; all-balanced: 2 x 1g.5gb, 1 x 2g.10gb, 1 x 3g.20gb per GPU, 16/8/8 a node) and the GPU Operator's
strategies (mixed: one resource per profile and nvidia.com/gpu 0 on sliced GPUs; single: every slice is
nvidia.com/gpu, one profile only)."""
from __future__ import annotations

from policy import rules

CTX = rules.Context(max_gpu_nodes=100)
U = rules.UNKNOWN
MNG = "eks:index:ManagedNodeGroup"
P4D = "p4d.24xlarge"
SLICES_1G = "nvidia.com/mig-1g.5gb"
BALANCED = ("nvidia.com/mig-1g.5gb", "nvidia.com/mig-2g.10gb", "nvidia.com/mig-3g.20gb")
CUSTOM = ("version: v1\nmig-configs:\n  mine:\n    - devices: all\n      mig-enabled: true\n"
          "      mig-devices: {\"1g.5gb\": 2, \"2g.10gb\": 1, \"3g.20gb\": 1}\n")  # all-balanced by another name


def res(type_: str, name: str, props: dict) -> rules.Res:
    return rules.Res(type=type_, name=name, urn=f"urn:{type_}::{name}", props=props)


def operator(strategy: str = "mixed", mig_manager: bool = True, custom: bool = False) -> list[rules.Res]:
    """The GPU Operator's release (and, with `custom`, the MIG manager's ConfigMap holding layout `mine`)."""
    manager: dict = {"enabled": mig_manager, **({"config": {"name": "custom"}} if custom else {})}
    out = [res("kubernetes:helm.sh/v3:Release", "op", {"chart": "gpu-operator", "values": {
        "mig": {"strategy": strategy}, "migManager": manager}})]
    if custom:
        out.append(res(rules.CONFIGMAP_TYPE, "cm", {"metadata": {"name": "custom"}, "data": {"config.yaml": CUSTOM}}))
    return out


def group(name: str, label, types: tuple[str, ...] = (P4D,), **labels: str) -> rules.Res:
    return res(MNG, name, {"instanceTypes": list(types), "labels": {
        rules.POOL_LABEL: name, rules.MIG_CONFIG_LABEL: label, **labels}})


def nodepool(name: str, label, types: tuple[str, ...] = (P4D,), reqs: list | None = None, **labels: str) -> rules.Res:
    reqs = reqs if reqs is not None else [{"key": rules.INSTANCE_TYPE_LABEL, "operator": "In", "values": list(types)}]
    return res(rules.NODEPOOL_TYPE, name, {"metadata": {"name": name}, "spec": {"template": {
        "metadata": {"labels": {rules.MIG_CONFIG_LABEL: label, **labels}}, "spec": {"requirements": reqs}}}})


def overlay(pool: str, capacity: dict, name: str = "ov") -> rules.Res:
    return res(rules.OVERLAY_TYPE, name, {"spec": {"requirements": [
        {"key": rules.NODEPOOL_LABEL, "operator": "In", "values": [pool]}], "capacity": capacity}})


def said(rule, resources: list[rules.Res]) -> list[str]:
    return [m for m, _ in rule(resources, CTX)]


# --- mig-label-valid ---------------------------------------------------------------------------------------

def test_a_pool_with_an_unknown_label_does_not_end_the_label_check():
    [msg] = said(rules.mig_label_valid, [group("later", U), group("bad", "all-7g.80gb")])
    assert msg.startswith("nodeGroup bad (p4d.24xlarge): ")


def test_a_pool_without_named_types_is_told_to_name_them_unless_mig_is_off():
    """A NodePool that selects GPUs by count or name cannot have its layout checked; all-disabled needs none."""
    by_count = [{"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "Gt", "values": ["0"]}]
    assert said(rules.mig_label_valid, [nodepool("any", "all-1g.5gb", reqs=by_count)]) == [
        "nodePool any: nvidia.com/mig.config=all-1g.5gb on a pool that selects GPUs by karpenter.k8s.aws/instance-gpu-count/"
        "karpenter.k8s.aws/instance-gpu-name/karpenter.k8s.aws/instance-gpu-manufacturer rather than "
        "node.kubernetes.io/instance-type: the layout cannot be checked against a GPU; name the instance types"]
    assert said(rules.mig_label_valid, [nodepool("any", "all-disabled", reqs=by_count)]) == []


def test_instance_types_the_catalog_does_not_know_are_all_named_unless_mig_is_off():
    types = (P4D, "p3.2xlarge", "p3.8xlarge")  # not in gpu_slicing.catalog
    assert said(rules.mig_label_valid, [group("old", "all-1g.5gb", types)]) == [
        "nodeGroup old: nvidia.com/mig.config=all-1g.5gb on p3.2xlarge, p3.8xlarge, which gpu_slicing.catalog does "
        "not know: the layout cannot be checked"]
    assert said(rules.mig_label_valid, [group("old", "all-disabled", types)]) == []


# --- mig-strategy-consistent ------------------------------------------------------------------------------

def test_the_single_strategy_refuses_a_mixed_layout_naming_the_pool():
    [msg] = said(rules.mig_strategy_consistent, [*operator("single"), group("b", "all-balanced")])
    assert msg.startswith("nodeGroup b (p4d.24xlarge, mig.strategy single): nodeGroup b.migLayout: 'all-balanced'")


def test_pools_left_out_of_the_strategy_check_do_not_end_it():
    """An unknown label, a label no layout answers (mig-label-valid's) and a DRA pool (no device plugin: the
    strategy advertises nothing there) are each skipped; the mixed layout after them is still refused."""
    dra = group("dra", "all-balanced", **{rules.DEVICE_PLUGIN_DEPLOY_LABEL: "false"})
    msgs = said(rules.mig_strategy_consistent, [*operator("single"), group("u", U), group("typo", "all-balnced"), dra,
                                                group("b", "all-balanced")])
    assert [m.split(" (")[0] for m in msgs] == ["nodeGroup b"]


def test_each_instance_type_of_a_pool_is_judged_for_the_strategy():
    """A type with no layout (g5: no MIG, mig-label-valid's) does not end its pool's check; nor does a DRA pool's
    first type end the MIG manager check, which is reported per type (p5.4xlarge and p5.48xlarge)."""
    msgs = said(rules.mig_strategy_consistent, [*operator("single"), group("b", "all-balanced", ("g5.xlarge", P4D))])
    assert [m.split(": ")[0] for m in msgs] == ["nodeGroup b (p4d.24xlarge, mig.strategy single)"]
    dra = group("dra", "all-1g.10gb", ("p5.4xlarge", "p5.48xlarge"), **{rules.DEVICE_PLUGIN_DEPLOY_LABEL: "false"})
    assert said(rules.mig_strategy_consistent, [*operator("mixed", mig_manager=False), dra]) == [
        "nodeGroup dra: layout all-1g.10gb enables MIG but migManager.enabled is false, so nothing applies it"] * 2


def test_a_dra_pool_is_judged_by_no_strategy():
    dra = group("dra", "all-balanced", **{rules.DEVICE_PLUGIN_DEPLOY_LABEL: "false"})
    assert said(rules.mig_strategy_consistent, [*operator("single"), dra]) == []
    with_plugin = group("dra", "all-balanced", **{rules.DEVICE_PLUGIN_DEPLOY_LABEL: "true"})
    assert len(said(rules.mig_strategy_consistent, [*operator("single"), with_plugin])) == 1


def test_the_strategy_check_reads_the_mig_managers_own_layouts():
    """A layout only the ConfigMap defines is judged like a named one: two profiles under single is refused."""
    [msg] = said(rules.mig_strategy_consistent, [*operator("single", custom=True), group("b", "mine")])
    assert msg.startswith("nodeGroup b (p4d.24xlarge, mig.strategy single): nodeGroup b.migLayout: 'mine'")


def test_mig_without_the_mig_manager_says_nothing_applies_it():
    assert said(rules.mig_strategy_consistent, [*operator("mixed", mig_manager=False), group("a", "all-1g.5gb")]) == [
        "nodeGroup a: layout all-1g.5gb enables MIG but migManager.enabled is false, so nothing applies it"]


# --- mig-nodepool-overlay ---------------------------------------------------------------------------------

def test_the_missing_overlay_names_every_slice_resource():
    assert said(rules.mig_nodepool_overlay, [*operator(), nodepool("np", "all-balanced")]) == [
        f"NodePool np (p4d.24xlarge, all-balanced): no NodeOverlay with requirements karpenter.sh/nodepool In [np] "
        f"declares its {', '.join(BALANCED)}; pods requesting them stay Pending ('no instance type satisfied "
        "resources')"]


def test_every_instance_type_of_a_pool_needs_its_overlay():
    """One message per type (p5.4xlarge, p5.48xlarge: 1 and 8 H100s); a type without MIG (g5: no layout) or a
    label no layout answers is mig-label-valid's, and the next type is still judged."""
    msgs = said(rules.mig_nodepool_overlay, [*operator(), nodepool("h", "all-1g.10gb", ("p5.4xlarge", "p5.48xlarge"))])
    assert [m.split(",")[0] for m in msgs] == ["NodePool h (p5.4xlarge", "NodePool h (p5.48xlarge"]
    msgs = said(rules.mig_nodepool_overlay, [*operator(), nodepool("h", "all-1g.5gb", ("g5.xlarge", P4D))])
    assert [m.split(",")[0] for m in msgs] == ["NodePool h (p4d.24xlarge"]
    assert said(rules.mig_nodepool_overlay, [*operator(), nodepool("h", "all-7g.80gb")]) == []


def test_a_type_whose_gpus_get_no_slices_does_not_end_the_pools_overlay_check():
    """A ConfigMap layout by device-filter (mig-parted: PCI id + 10DE; A100-40GB 0x20B0, H100 0x2330) that turns
    MIG on without slices for the A100s and cuts the H100s into 1g.10gb: p4d advertises no slice and needs no
    overlay, p5.48xlarge still needs one."""
    text = ("version: v1\nmig-configs:\n  mine:\n    - device-filter: \"0x20B010DE\"\n      devices: all\n"
            "      mig-enabled: true\n    - device-filter: \"0x233010DE\"\n      devices: all\n      mig-enabled: true\n"
            "      mig-devices: {\"1g.10gb\": 7}\n")
    op = operator(custom=True)
    op[1] = res(rules.CONFIGMAP_TYPE, "cm", {"metadata": {"name": "custom"}, "data": {"config.yaml": text}})
    msgs = said(rules.mig_nodepool_overlay, [*op, nodepool("np", "mine", (P4D, "p5.48xlarge"))])
    assert [m.split(": no NodeOverlay")[0] for m in msgs] == ["NodePool np (p5.48xlarge, mine)"]

def test_under_the_single_strategy_slices_are_nvidia_gpu_and_need_no_overlay():
    """single advertises the 56 slices as nvidia.com/gpu, which EC2 already reports: no overlay; with no
    operator in the stack the rule assumes mixed, where they are nvidia.com/mig-1g.5gb and need one."""
    assert said(rules.mig_nodepool_overlay, [*operator("single"), nodepool("np", "all-1g.5gb")]) == []
    [msg] = said(rules.mig_nodepool_overlay, [nodepool("np", "all-1g.5gb")])
    assert msg.startswith("NodePool np (p4d.24xlarge, all-1g.5gb): no NodeOverlay")


def test_an_unknown_capacity_leaves_only_that_resource_unjudged():
    ov = overlay("np", {BALANCED[0]: U, BALANCED[1]: "8", BALANCED[2]: "1"})
    assert said(rules.mig_nodepool_overlay, [*operator(), nodepool("np", "all-balanced"), ov]) == [
        "NodePool np (p4d.24xlarge, all-balanced): NodeOverlay capacity nvidia.com/mig-3g.20gb=1, the node "
        "advertises 8"]


SHARED = {rules.DEVICE_PLUGIN_CONFIG_LABEL: "two"}  # a time-sliced pool: the device plugin multiplies its slices


def test_a_time_sliced_pool_declares_at_least_its_slices_under_either_name():
    """Time-slicing multiplies each slice by its replicas and may rename it `<resource>.shared`: the overlay may
    declare either name, with at least the 56 slices; exactly 56 is enough."""
    pool = nodepool("np", "all-1g.5gb", **SHARED)
    for capacity in ({SLICES_1G + ".shared": "112"}, {SLICES_1G: "112"}, {SLICES_1G: 56}):
        assert said(rules.mig_nodepool_overlay, [*operator(), pool, overlay("np", capacity)]) == [], capacity
    for capacity, got in (({SLICES_1G: "55"}, "55"), ({SLICES_1G: "lots"}, "lots"), ({"cpu": "1"}, "None")):
        assert said(rules.mig_nodepool_overlay, [*operator(), pool, overlay("np", capacity)]) == [
            f"NodePool np (p4d.24xlarge, all-1g.5gb): NodeOverlay capacity {SLICES_1G}={got}, the node advertises 56"]


def test_a_pool_that_is_not_time_sliced_needs_the_exact_count_by_its_own_name():
    pool = nodepool("np", "all-1g.5gb")
    assert said(rules.mig_nodepool_overlay, [*operator(), pool, overlay("np", {SLICES_1G: "56"})]) == []
    for capacity, got in (({SLICES_1G + ".shared": "56"}, "None"), ({SLICES_1G: "112"}, "112")):
        assert said(rules.mig_nodepool_overlay, [*operator(), pool, overlay("np", capacity)]) == [
            f"NodePool np (p4d.24xlarge, all-1g.5gb): NodeOverlay capacity {SLICES_1G}={got}, the node advertises 56"]


def test_overlays_without_the_karpenter_feature_gate_are_ignored_and_said_so():
    karpenter = res("kubernetes:helm.sh/v3:Release", "karpenter", {"chart": "karpenter", "values": {}})
    assert said(rules.mig_nodepool_overlay, [karpenter, overlay("np", {SLICES_1G: "56"})]) == [
        "karpenter: 1 NodeOverlay(s) but the Karpenter release does not set settings.featureGates.nodeOverlay=true, "
        "so Karpenter ignores them"]


# --- no-whole-gpu-on-mixed-mig ----------------------------------------------------------------------------

def whole_gpu_pod(name: str, selector) -> rules.Res:
    spec = {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}
    if selector is not None:
        spec["nodeSelector"] = selector
    return res("kubernetes:core/v1:Pod", name, {"spec": spec})


def test_a_whole_gpu_on_a_sliced_pool_names_the_slices_to_ask_for():
    assert said(rules.no_whole_gpu_on_mixed_mig, [*operator(), group("b", "all-balanced"),
                                                  whole_gpu_pod("p", {rules.POOL_LABEL: "b"})]) == [
        f"p: requests nvidia.com/gpu on nodeGroup b (p4d.24xlarge, all-balanced, mixed), whose nodes advertise "
        f"nvidia.com/gpu: 0; request a MIG slice ({', '.join(BALANCED)})"]
    assert said(rules.no_whole_gpu_on_mixed_mig, [*operator(), group("b", "all-disabled"),
                                                  whole_gpu_pod("p", {rules.POOL_LABEL: "b"})]) == []


def test_pods_and_pools_left_out_do_not_end_the_whole_gpu_check():
    """A pod without a selector (or one unknown at preview), a pool the selector does not match and a type with
    no layout are each skipped; the pod and pool after them are still judged."""
    graph = [*operator(), group("other", "all-1g.5gb"), group("b", "all-1g.5gb", ("g5.xlarge", P4D)),
             whole_gpu_pod("free", None), whole_gpu_pod("unknown", U), whole_gpu_pod("p", {rules.POOL_LABEL: "b"})]
    assert [m.split(" (")[0] for m in said(rules.no_whole_gpu_on_mixed_mig, graph)] == [
        "p: requests nvidia.com/gpu on nodeGroup b"]


def test_a_whole_gpu_on_a_pool_of_the_mig_managers_own_layout_is_refused():
    [msg] = said(rules.no_whole_gpu_on_mixed_mig, [*operator(custom=True), group("b", "mine"),
                                                   whole_gpu_pod("p", {rules.POOL_LABEL: "b"})])
    assert msg.startswith("p: requests nvidia.com/gpu on nodeGroup b (p4d.24xlarge, mine, mixed)")
