"""The catalog's rules beyond its tables: which GPUs of a node a layout configures, the names NVIDIA's
device plugin and mig-parted give (resource names, `all-<profile>` layouts, `device-filter` ids), driver
minimums compared as versions (580.9 is older than 580.82), and what an instance type name resolves to.
Expected values come from FACTS 2 and 7 (NVIDIA's naming, PCI ids, driver minimums) and hand computation."""
from __future__ import annotations

import pytest

from gpu_slicing import catalog
from gpu_slicing.catalog import A100_40GB, B300_288GB, L4, RTX_PRO_6000, GpuGroup, MigLayout
from gpu_slicing.errors import ConfigError


def test_per_gpu_later_groups_win_and_out_of_range_indexes_are_ignored():
    layout = MigLayout("x", (GpuGroup(None, True, {"1g.5gb": 7}), GpuGroup((1, 3, 9, -1), False),
                             GpuGroup((3,), True, {"7g.40gb": 1, "1g.5gb": 0})))
    assert layout.per_gpu(4) == [{"1g.5gb": 7}, None, {"1g.5gb": 7}, {"7g.40gb": 1, "1g.5gb": 0}]
    assert layout.per_gpu(0) == []
    assert layout.mig_enabled is True
    assert layout.profile_names() == {"1g.5gb", "7g.40gb"}  # a count of 0 names no profile
    off = MigLayout("off", (GpuGroup(None, False, {}),))
    assert (off.per_gpu(2), off.mig_enabled, off.profile_names()) == ([None, None], False, set())
    # a disabled group's profiles name nothing even when present
    assert MigLayout("y", (GpuGroup((0,), False, {"1g.5gb": 7}),)).profile_names() == set()


@pytest.mark.parametrize("name, attribute, media, resource, layout", [
    ("1g.5gb", "", False, "nvidia.com/mig-1g.5gb", "all-1g.5gb"),
    ("1g.5gb+me", "+me", True, "nvidia.com/mig-1g.5gb.me", "all-1g.5gb.me"),
    ("1g.24gb+me.all", "+me.all", True, "nvidia.com/mig-1g.24gb.me.all", "all-1g.24gb.me.all"),
    ("1g.24gb+gfx", "+gfx", False, "nvidia.com/mig-1g.24gb.gfx", "all-1g.24gb.gfx"),
    ("1g.24gb-me", "-me", False, "nvidia.com/mig-1g.24gb-me", "all-1g.24gb-me"),
])
def test_profile_names_as_nvidia_spells_them(name, attribute, media, resource, layout):
    model = RTX_PRO_6000 if "24gb" in name else A100_40GB
    p = model.require(name)
    assert (p.attribute, p.media_extensions, p.resource_name, p.layout_name) == (attribute, media, resource, layout)
    assert model.profile_for_resource(resource) is p
    assert catalog.resource_for_profile(name) == resource
    assert catalog.profile_for_resource(resource) == name


def test_a_profile_a_gpu_lacks():
    assert A100_40GB.profile("1g.10gb+me") is None
    assert A100_40GB.profile_for_resource("nvidia.com/mig-1g.24gb") is None
    with pytest.raises(KeyError, match="1g.24gb"):
        A100_40GB.require("1g.24gb")
    assert catalog.profile_for_resource("nvidia.com/gpu") is None


def test_device_filters_are_the_pci_id_and_nvidias_vendor_id():
    assert A100_40GB.device_filters == ("0x20B010DE",)
    assert B300_288GB.device_filters == ("0x318210DE",)
    assert L4.device_filters == ()


def test_named_layouts_of_a_gpu_with_and_without_mig():
    assert list(catalog.named_layouts(L4)) == ["all-disabled"]
    assert catalog.named_layouts(L4)["all-disabled"].groups == (GpuGroup(None, False),)
    named = catalog.named_layouts(A100_40GB)
    assert named["all-enabled"].groups == (GpuGroup(None, True, {}),)
    assert named["all-1g.5gb"].groups == (GpuGroup(None, True, {"1g.5gb": 7}),)
    assert named["all-1g.5gb.me"].groups == (GpuGroup(None, True, {"1g.5gb+me": 1}),)
    assert named["all-3g.20gb"].groups == (GpuGroup(None, True, {"3g.20gb": 2}),)
    assert named["all-balanced"].groups == (GpuGroup(None, True, {"1g.5gb": 2, "2g.10gb": 1, "3g.20gb": 1}),)
    assert all(layout.name == name and not layout.custom for name, layout in named.items())


@pytest.mark.parametrize("name, family, arch, ami", [
    ("p6-b200.48xlarge", "p6-b200", "amd64", "AL2023_x86_64_NVIDIA"),
    ("g5g.2xlarge", "g5g", "arm64", "AL2023_ARM_64_NVIDIA"),
    ("gr6f.4xlarge", "gr6f", "amd64", "AL2023_x86_64_NVIDIA"),
])
def test_instance_type_family_arch_and_ami(name, family, arch, ami):
    it = catalog.instance_type(name)
    assert (it.family, it.k8s_arch, it.ami_type) == (family, arch, ami)


@pytest.mark.parametrize("ami_driver, short", [
    ("580.82.07", False), ("580.82.7", False), ("580.82.8", False), ("581.0.0", False), ("600.1.1", False),
    ("580.82.06", True), ("580.9.0", True), ("570.133.20", True), ("575.99.99", True),
])
def test_driver_minimums_compare_as_versions(ami_driver, short):
    b300 = catalog.instance_type("p6-b300.48xlarge")  # FACTS 7: B300 needs >= 580.82.07
    why = catalog.driver_shortfall(b300, ami_driver)
    assert (why is not None) is short
    if short:
        assert "p6-b300.48xlarge" in why and "580.82.07" in why and ami_driver in why


def test_the_amis_driver_is_the_default_and_gpus_without_a_minimum_run_on_any():
    assert catalog.driver_shortfall(catalog.instance_type("p6-b300.48xlarge")) is None  # the AMI's 580.82.07
    assert catalog.driver_shortfall(catalog.instance_type("p4d.24xlarge"), "400.0.0") is None
    assert catalog.driver_shortfall(catalog.instance_type("p6-b200.48xlarge"), "570.133.19") is not None
    assert catalog.driver_shortfall(catalog.instance_type("p6-b200.48xlarge"), "570.133.20") is None


def test_check_instance_type_decides_and_names_the_key():
    assert catalog.check_instance_type("p5.48xlarge", "k") is catalog.INSTANCE_TYPES["p5.48xlarge"]
    for bad, ami in (("p6e-gb200.36xlarge", None), ("p9.huge", None), (42, None), ("p6-b300.48xlarge", "570.133.20")):
        with pytest.raises(ConfigError) as e:
            catalog.check_instance_type(bad, "gpu-slicing:nodeGroups[0].instanceType", ami)
        assert (e.value.key, e.value.value) == ("gpu-slicing:nodeGroups[0].instanceType", bad)
    with pytest.raises(ConfigError) as e:
        catalog.check_instance_type("p6e-gb200.36xlarge", "k")
    assert "Capacity Blocks" in e.value.allowed


def test_mig_on_g7e_is_a_warning_and_elsewhere_none():
    assert catalog.mig_warning(catalog.instance_type("g7e.12xlarge")).startswith("MIG on g7e.12xlarge: ")
    assert catalog.mig_warning(catalog.instance_type("p5.48xlarge")) is None


@pytest.mark.parametrize("bad", [["p4d.24xlarge"], {"p4d.24xlarge": 1}, 42, None])
def test_a_value_that_is_no_name_is_refused_with_every_known_type_and_no_guess(bad):
    """A list or mapping where a name belongs (YAML `instanceType: [p4d.24xlarge]`) is a config error naming every
    type the program knows (the rows of Karpenter's reference, tests/test_catalog_figures.py), not a crash and not a
    guess from its Python spelling."""
    from test_catalog_figures import KARPENTER

    with pytest.raises(ConfigError) as e:
        catalog.check_instance_type(bad, "gpu-slicing:nodeGroups[0].instanceType")
    assert (e.value.key, e.value.value) == ("gpu-slicing:nodeGroups[0].instanceType", bad)
    assert e.value.allowed == "a GPU instance type this program knows: " + ", ".join(sorted(KARPENTER))


def test_only_the_types_missing_from_eni_max_pods_are_unconfirmed():
    """docs/facts.md §11: eni-max-pods.txt has every type but g7e (too new)."""
    for name in catalog.INSTANCE_TYPES:
        unconfirmed = catalog.max_pods_source(name) == catalog.MAX_PODS_UNCONFIRMED
        assert unconfirmed is name.startswith("g7e."), name


def test_per_gpu_ignores_the_index_one_past_the_last_gpu():
    layout = MigLayout("x", (GpuGroup(None, True, {"1g.5gb": 7}), GpuGroup((2,), False)))
    assert layout.per_gpu(2) == [{"1g.5gb": 7}, {"1g.5gb": 7}]


def test_a_profile_counted_zero_everywhere_is_not_in_the_layout():
    layout = MigLayout("x", (GpuGroup(None, True, {"3g.20gb": 2, "1g.5gb": 0}),))
    assert layout.profile_names() == {"3g.20gb"}
