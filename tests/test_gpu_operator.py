"""The GPU Operator's Helm values and ConfigMaps as a stack's pools ask for them, held against the pinned
chart's values.yaml (tools/data/gpu-operator-values.json): the chart has no values schema, so a path it does
not define would be silently ignored. Expected values follow docs/facts.md §1 and 3 (the AL2023 NVIDIA AMI
ships driver and toolkit; the MIG manager needs WITH_REBOOT on A100 in a VM; the device plugin's config file
format) and the device plugin README."""
from __future__ import annotations

from pathlib import Path

import yaml

from gpu_slicing import gpu_operator
from gpu_slicing.gpu_operator import COMMENTED_VALUE_PATHS, VALUE_PATHS, device_plugin_configs, mig_parted_config, \
    operator_values
from gpu_slicing.helm import flatten, has_path
from gpu_slicing.stack import load_stack
from gpu_slicing.stack_file import load_stack_file
from tools import refdata

NS = "gpu-slicing:"
AMI_AND_REBOOT = {"driver": {"enabled": False}, "toolkit": {"enabled": False}}
REBOOT = [{"name": "WITH_REBOOT", "value": "true"}]


def stack(groups, observability=False, **operator):
    return load_stack({NS + "maxGpuNodes": 20, NS + "cluster": {"name": "t", "publicAccessCidrs": ["0.0.0.0/0"]},
                       NS + "gpuOperator": {"migStrategy": "mixed", **operator}, NS + "nodeGroups": groups,
                       NS + "observability": {"enabled": observability}})


def values_of(s):
    return operator_values(s.config, s.pools)


G5_SHARED = {"name": "g5", "instanceType": "g5.xlarge", "sharing": {"timeSlicing": {"replicas": 4}}}
P4D = {"name": "p4d", "instanceType": "p4d.24xlarge", "migLayout": "all-balanced"}
HALF = {"p4d-half": [{"devices": [0, 1, 2, 3], "profiles": {"1g.5gb": 7}}, {"devices": [4, 5, 6, 7]}]}


def test_a_time_sliced_stack_without_mig_turns_the_mig_manager_off_and_points_the_plugin_at_its_configs():
    v = values_of(stack([G5_SHARED]))
    assert v == {**AMI_AND_REBOOT, "mig": {"strategy": "mixed"}, "migManager": {"enabled": False, "env": REBOOT},
                 "devicePlugin": {"enabled": True, "config": {"name": "gpu-slicing-device-plugin-config",
                                                              "create": False, "default": "default"}}}


def test_named_layouts_use_the_mig_managers_own_config_custom_ones_ours():
    v = values_of(stack([P4D], observability=True))
    assert v["migManager"] == {"enabled": True, "env": REBOOT} and v["devicePlugin"] == {"enabled": True}
    assert v["dcgmExporter"]["enabled"] is True  # MIG metrics need the exporter's list
    custom = load_stack({**_raw([{**P4D, "migLayout": "p4d-half"}]), NS + "migLayouts": HALF})
    assert values_of(custom)["migManager"]["config"] == {"name": "gpu-slicing-mig-parted-config", "create": False}
    kept = stack([P4D], retainedMigLayouts={"old-1234567": [{"devices": "all", "mig-enabled": False}]})
    assert values_of(kept)["migManager"]["config"] == {"name": "gpu-slicing-mig-parted-config", "create": False}
    assert "dcgmExporter" not in values_of(stack([G5_SHARED]))


def _raw(groups):
    return {NS + "maxGpuNodes": 20, NS + "cluster": {"name": "t", "publicAccessCidrs": ["0.0.0.0/0"]},
            NS + "gpuOperator": {"migStrategy": "mixed"}, NS + "nodeGroups": groups}


def test_every_value_set_is_a_reviewed_path_the_pinned_chart_defines():
    chart = refdata.load("gpu-operator-values")
    everything = load_stack({**_raw([{**P4D, "migLayout": "p4d-half"}, G5_SHARED]), NS + "migLayouts": HALF,
                             NS + "observability": {"enabled": True}})
    dra = load_stack(load_stack_file(Path(__file__).parents[1] / "examples" / "Pulumi.dra.yaml"))
    paths = sorted(set(flatten(values_of(everything))) | set(flatten(values_of(dra))))
    assert set(paths) == VALUE_PATHS  # the two stacks set every reviewed path (the DRA one the exporter's pod UIDs)
    for path in paths:
        top, *rest = path.split(".")
        assert has_path(chart["values"], path) or (
            path in COMMENTED_VALUE_PATHS and set(rest) <= set(chart["commented_keys"][top])), path


def test_the_device_plugin_configs_are_the_default_and_one_per_sharing_setup():
    s = stack([G5_SHARED, {**G5_SHARED, "name": "g5b"}], migStrategy="none")
    configs = device_plugin_configs(s.config, s.pools)
    assert list(configs) == ["default", "ts-gpu-x4"]  # the two pools share one setup
    assert configs["default"] == "version: v1\nflags:\n  migStrategy: none\n"
    assert yaml.safe_load(configs["ts-gpu-x4"])["sharing"]["timeSlicing"]["resources"] == [
        {"name": "nvidia.com/gpu", "replicas": 4}]
    assert gpu_operator.needs_device_plugin_configmap(s.pools)
    assert not gpu_operator.needs_device_plugin_configmap(stack([P4D]).pools)


def test_the_mig_parted_config_holds_the_layouts_in_use_all_disabled_and_the_retained_ones():
    s = stack([P4D], retainedMigLayouts={"old-1234567": [{"devices": "all", "mig-enabled": False}]})
    configs = yaml.safe_load(mig_parted_config(s.pools, s.config.gpu_operator.retained_mig_layouts))["mig-configs"]
    assert list(configs) == ["all-balanced", "all-disabled", "old-1234567"]
    assert configs["all-disabled"] == [{"devices": "all", "mig-enabled": False}]
    assert configs["old-1234567"] == [{"devices": "all", "mig-enabled": False}]
    # A100-40GB's all-balanced (docs/facts.md §2): 2 x 1g.5gb, 1 x 2g.10gb, 1 x 3g.20gb on every GPU
    assert [e["mig-devices"] for e in configs["all-balanced"]] == [{"1g.5gb": 2, "2g.10gb": 1, "3g.20gb": 1}]
    # no MIG-capable GPU: nothing to configure, not even all-disabled
    assert yaml.safe_load(mig_parted_config(stack([G5_SHARED]).pools))["mig-configs"] == {}
