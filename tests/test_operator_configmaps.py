"""The GPU Operator's ConfigMaps of our own, as registered: a mig-parted config when live nodes still carry a
layout label the stack dropped (`gpuOperator.retainedMigLayouts`: the MIG manager restarting on such a node must
find its layout, docs/facts.md §3 and §8), and device-plugin configs when a pool time-slices (docs/facts.md §3).
Each lives in the operator's namespace (read from the Namespace, so created after it), under the name the release's
values point at, and the release waits for it. The dev stack needs neither (test_releases.py)."""
from __future__ import annotations

import pytest
import yaml

OLD_HALF = [{"devices": "all", "mig-enabled": True, "mig-devices": {"1g.5gb": 7}}]


@pytest.fixture(scope="module")
def with_configmaps():
    """The dev stack keeping a dropped layout for its live nodes, its node group time-slicing its 1g.5gb slices, and
    no monitoring of its own."""
    from conftest import dev_config, run

    dev = dev_config()
    dev["gpu-slicing:gpuOperator"]["retainedMigLayouts"] = {"old-half-1234567": OLD_HALF}
    dev["gpu-slicing:nodeGroups"][0]["sharing"] = {"timeSlicing": {"replicas": 4,
                                                                   "resources": ["nvidia.com/mig-1g.5gb"]}}
    dev["gpu-slicing:workloads"][0]["replicas"] = 64
    dev["gpu-slicing:observability"] = {"enabled": False}
    r = run(dev, preview=False)
    assert r.error is None, r.error
    return r


def _deps(r, reg) -> set[str]:
    return {r.get(u).name for u in reg.dependencies}


@pytest.mark.slow
def test_the_retained_layout_and_the_time_slicing_config_reach_the_operator(with_configmaps):
    r = with_configmaps
    comp = r.one("gpu-slicing:gpu:GpuOperator")
    release = r.one("kubernetes:helm.sh/v3:Release", "gpu-dev-gpu-operator")
    values = release.inputs["values"]
    parted = r.one("kubernetes:core/v1:ConfigMap", "gpu-dev-gpu-operator-mig-parted")
    plugin = r.one("kubernetes:core/v1:ConfigMap", "gpu-dev-gpu-operator-device-plugin")
    for cm in (parted, plugin):
        assert cm.parent == comp.urn
        assert cm.inputs["metadata"]["namespace"] == "gpu-operator"
        assert [r.get(u).name for u in cm.property_dependencies["metadata"]] == ["gpu-dev-gpu-operator-ns"]
        assert cm.provider.rsplit("::", 1)[0] == r.one("pulumi:providers:kubernetes").urn
    assert {parted.name, plugin.name} <= _deps(r, release)
    # the MIG manager reads our mig-parted config: the stack's layouts, all-disabled, and the retained one
    assert values["migManager"]["config"] == {"name": parted.inputs["metadata"]["name"], "create": False}
    assert set(parted.inputs["data"]) == {"config.yaml"}
    configs = yaml.safe_load(parted.inputs["data"]["config.yaml"])["mig-configs"]
    assert configs["old-half-1234567"] == OLD_HALF
    assert {"all-balanced", "all-1g.5gb", "all-disabled"} <= set(configs)
    # the device plugin reads its configs from ours, one per sharing setup plus the default
    assert values["devicePlugin"]["config"]["name"] == plugin.inputs["metadata"]["name"]
    label = r.one("eks:index:ManagedNodeGroup", "gpu-dev-p4d-balanced").inputs["labels"]["nvidia.com/device-plugin.config"]
    assert set(plugin.inputs["data"]) == {"default", label}
    # without monitoring of ours the MIG pools still get our exporter list: the default one spends a field on
    # DCGM_FI_DEV_GPU_UTIL, which MIG instances never report (docs/facts.md §9)
    metrics = r.one("kubernetes:core/v1:ConfigMap", "gpu-dev-gpu-operator-dcgm-metrics")
    assert values["dcgmExporter"]["config"]["name"] == metrics.inputs["metadata"]["name"]
    assert metrics.name in _deps(r, release) and not r.by_type("gpu-slicing:observability:Observability")
