"""How the policy pack reads a custom MIG layout from the MIG manager's ConfigMap (mig-parted's format:
`version: v1`, `mig-configs: {name: [{device-filter?, devices: all|[ids], mig-enabled, mig-devices}]}`):
which entries apply to a GPU (by `device-filter`, PCI device id + NVIDIA's vendor id 10DE, in any case),
which devices they cover, and what a text that is no such config gives. Expected layouts are written by
hand from the mig-parted format and the PCI ids of the FACTS tables (A100-40GB 0x20B0, H100 0x2330)."""
from __future__ import annotations

import pytest

from policy import rules
from gpu_slicing.catalog import A100_40GB, GpuGroup, MigLayout


def test_entries_for_another_gpu_are_left_out_and_filters_match_in_any_case():
    entries = [
        {"device-filter": "0x233010DE", "devices": "all", "mig-enabled": True, "mig-devices": {"1g.10gb": 7}},
        {"device-filter": ["0x2330110de", "0x20b010de"], "devices": [0, 1], "mig-enabled": True,
         "mig-devices": {"3g.20gb": 2}},
        {"devices": ["2", "3"], "mig-enabled": "true", "mig-devices": {"1g.5gb": 7}},
    ]
    assert rules.layout_from_mig_parted("mine", entries, A100_40GB) == MigLayout("mine", (
        GpuGroup((0, 1), True, {"3g.20gb": 2}), GpuGroup((2, 3), True, {"1g.5gb": 7})), custom=True)


def test_an_entry_that_is_no_mapping_is_skipped_not_the_end():
    entries = ["all", None, {"devices": "all", "mig-enabled": True, "mig-devices": {"7g.40gb": 1}}]
    assert rules.layout_from_mig_parted("x", entries, A100_40GB) == MigLayout(
        "x", (GpuGroup(None, True, {"7g.40gb": 1}),), custom=True)


def test_devices_default_to_all_and_mig_off_drops_its_devices():
    entries = [{"mig-enabled": False, "mig-devices": {"1g.5gb": 7}}, {"devices": [4], "mig-enabled": "false"},
               {"devices": [5], "mig-enabled": True}]
    assert rules.layout_from_mig_parted("x", entries, A100_40GB) == MigLayout(
        "x", (GpuGroup(None, False, {}), GpuGroup((4,), False, {}), GpuGroup((5,), True, {})), custom=True)


def test_a_mig_parted_text_is_read_as_layout_name_to_entries():
    text = ("version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: false\n"
            "  b:\n    devices: all\n    mig-enabled: true\n  7:\n    - devices: [0]\n")
    assert rules.parse_mig_parted(text) == {
        "a": [{"devices": "all", "mig-enabled": False}],
        "b": [{"devices": "all", "mig-enabled": True}],  # a single entry, not in a list
        "7": [{"devices": [0]}],  # names are strings whatever YAML made of them
    }


def test_what_is_no_mig_parted_config_reads_as_none():
    for text in (None, 42, "{not yaml", "version: v1\n", "mig-configs: [a, b]\n", "- 1\n- 2\n", rules.UNKNOWN):
        assert rules.parse_mig_parted(text) is None, text


# --- the GPU Operator release as the rules read it ---------------------------------------------------

RELEASE = "kubernetes:helm.sh/v3:Release"


def _res(type_: str, name: str, props: dict) -> rules.Res:
    return rules.Res(type=type_, name=name, urn=f"urn:{type_}::{name}", props=props)


def _release(values, chart: str = "gpu-operator") -> rules.Res:
    return _res(RELEASE, "op", {"chart": chart, "values": values})


def _configmap(name: str, text: str, type_: str = rules.CONFIGMAP_TYPE) -> rules.Res:
    return _res(type_, f"cm-{name}-{type_[-6:]}", {"metadata": {"name": name}, "data": {"config.yaml": text}})


@pytest.mark.parametrize("chart, name", [
    ("gpu-operator", "gpu-operator"), ("nvidia/gpu-operator", "gpu-operator"),
    ("oci://registry.example/charts/gpu-operator/", "gpu-operator"), ("https://h/x/karpenter", "karpenter"),
    (None, ""), (rules.UNKNOWN, "<computed>"), (7, ""),
])
def test_a_releases_chart_is_its_last_path_segment(chart, name):
    assert rules.chart_name(_res(RELEASE, "r", {"chart": chart})) == name


def test_the_operators_defaults_are_the_charts():
    """values.yaml of gpu-operator v26.7.0: mig.strategy single, migManager.enabled true, no custom config."""
    for values in ({}, rules.UNKNOWN, {"migManager": {}}):
        op = rules.operator([_release(values)])
        assert (op.strategy, op.mig_manager, op.config_name, op.configmap) == ("single", True, None, None), values
    assert rules.operator([_release({"migManager": {"enabled": "false"}})]).mig_manager is False
    assert rules.operator([_release({}, chart="karpenter")]) is None


def test_the_operator_reads_only_its_named_configmap():
    text = "version: v1\nmig-configs:\n  mine:\n    - devices: all\n      mig-enabled: false\n"
    other = "version: v1\nmig-configs:\n  theirs:\n    - devices: all\n      mig-enabled: false\n"
    values = {"migManager": {"config": {"name": "custom"}}}
    op = rules.operator([_release(values), _configmap("custom", text), _configmap("other", other),
                         _configmap("custom", other, type_="kubernetes:core/v1:Secret")])
    assert op.config_name == "custom" and op.configmap == {"mine": [{"devices": "all", "mig-enabled": False}]}
    missing = rules.operator([_release(values)])  # named, but not in this stack: nothing to read
    assert (missing.config_name, missing.configmap) == ("custom", None)
    for name in (rules.UNKNOWN, "", 42, None):
        assert rules.operator([_release({"migManager": {"config": {"name": name}}}),
                               _configmap("custom", text)]).config_name is None, name


def _pool(label: str) -> rules.Res:
    return _res("eks:index:ManagedNodeGroup", "ng", {"instanceTypes": ["p4d.24xlarge"], "labels": {
        "gpu-slicing/pool": "big", "nvidia.com/mig.config": label}})


def test_a_label_resolves_to_nvidias_layouts_without_a_configmap_in_the_stack():
    named_only = [_release({"migManager": {"config": {"name": "custom"}}})]
    for graph in ([], named_only):
        assert list(rules.mig_label_valid([*graph, _pool("all-balanced")], rules.Context())) == []
        [(msg, _)] = rules.mig_label_valid([*graph, _pool("all-7g.80gb")], rules.Context())
        assert msg.startswith("nodeGroup big (p4d.24xlarge): nodeGroup big label nvidia.com/mig.config: ")
        assert "all-7g.80gb" in msg


def _op_with(text: str) -> rules.Operator:
    return rules.operator([_release({"migManager": {"config": {"name": "custom"}}}), _configmap("custom", text)])


TWO = ("version: v1\nmig-configs:\n  all-disabled:\n    - devices: all\n      mig-enabled: false\n"
       "  mine:\n    - devices: all\n      mig-enabled: true\n      mig-devices: {\"3g.20gb\": 2}\n")


def test_a_configmap_layout_resolves_by_its_label():
    from gpu_slicing.catalog import INSTANCE_TYPES

    pool = rules.pool_of(_pool("mine"))
    layout = rules.resolve_pool_layout(pool, INSTANCE_TYPES["p4d.24xlarge"], _op_with(TWO))
    assert layout == MigLayout("mine", (GpuGroup(None, True, {"3g.20gb": 2}),), custom=True)
    # all-disabled, and any label on a GPU without MIG, is NVIDIA's own layout whatever the ConfigMap says
    off = rules.resolve_pool_layout(rules.pool_of(_pool("all-disabled")), INSTANCE_TYPES["p4d.24xlarge"], _op_with(TWO))
    assert (off.name, off.custom, off.mig_enabled) == ("all-disabled", False, False)
    g5 = rules.resolve_pool_layout(rules.pool_of(_pool("all-disabled")), INSTANCE_TYPES["g5.xlarge"], _op_with(TWO))
    assert (g5.name, g5.custom) == ("all-disabled", False)


def test_a_label_missing_from_the_configmap_names_the_pool_label_and_what_there_is():
    graph = [_release({"migManager": {"config": {"name": "custom"}}}), _configmap("custom", TWO), _pool("theirs")]
    [(msg, urn)] = rules.mig_label_valid(graph, rules.Context())
    assert msg.startswith("nodeGroup big (p4d.24xlarge): nodeGroup big label nvidia.com/mig.config: 'theirs'")
    assert "ConfigMap custom" in msg and msg.endswith("all-disabled, mine") and urn == _pool("x").urn


def test_a_pulumi_eks_node_group_and_its_child_are_one_pool():
    component = _pool("all-balanced")
    child = rules.Res("aws:eks/nodeGroup:NodeGroup", "ng-child", "urn:child", {"instanceTypes": ["p4d.24xlarge"]},
                      parent=component.urn)
    alone = _res("eks:index:ManagedNodeGroup", "other", {"instanceTypes": ["p5.48xlarge"]})
    assert [p.res.name for p in rules.gpu_pools([component, child, alone])] == ["ng-child", "other"]


def test_a_configmap_label_on_a_gpu_without_mig_is_refused_naming_the_pool_label():
    from gpu_slicing.catalog import INSTANCE_TYPES

    pool = rules.pool_of(_pool("mine"))
    with pytest.raises(rules.ConfigError) as e:
        rules.resolve_pool_layout(pool, INSTANCE_TYPES["g5.xlarge"], _op_with(TWO))
    assert (e.value.key, e.value.value) == ("nodeGroup big label nvidia.com/mig.config", "mine")
