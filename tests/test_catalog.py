"""The GPU catalog against docs/facts.md §2 and 7 and against the upstream references (as data: tools/refdata.py).

The facts table (docs/facts.md §2, §7) is written out by hand in `facts.py`, so the tests never trust the catalog they test.
"""
from __future__ import annotations

import pytest

from facts import (BALANCED, FACTS_GPUS, FACTS_PROFILES, FRACTIONAL, GEOMETRY, INFERRED, MIN_DRIVER, NO_MIG_FAMILIES,
                   PCI_IDS, RTX_VARIANTS, Shape, model_of)
from gpu_slicing import catalog
from gpu_slicing.errors import ConfigError
from tools import refdata


def _profiles_of(gpu: str) -> set[str]:
    """Every profile name the facts give the GPU, attribute variants included."""
    return set(FACTS_PROFILES[gpu]) | (set(RTX_VARIANTS) if gpu == "RTX-PRO-6000" else set())


@pytest.mark.parametrize("itype", sorted(FACTS_GPUS))
def test_mig_instance_types_carry_the_facts_gpus(itype):
    gpu, count = FACTS_GPUS[itype]
    it = catalog.instance_type(itype)
    assert it.gpu_count == count
    assert it.gpu is model_of(gpu)


@pytest.mark.parametrize("gpu", sorted(FACTS_PROFILES))
def test_profiles_match_the_facts_table(gpu):
    model = model_of(gpu)
    got = {p.name: Shape(p.compute, p.memory_slices, p.max_count, tuple(p.placements)) for p in model.profiles}
    assert set(got) == _profiles_of(gpu)
    assert {p: got[p] for p in FACTS_PROFILES[gpu]} == FACTS_PROFILES[gpu]


@pytest.mark.parametrize("gpu", sorted(GEOMETRY))
def test_geometry_comes_from_the_model(gpu):
    model = model_of(gpu)
    assert (model.compute_slices, model.memory_slices) == GEOMETRY[gpu]
    assert catalog.balanced_profiles(model) == BALANCED[gpu]
    assert model.placements_confirmed is (gpu not in INFERRED)
    assert model.min_driver == MIN_DRIVER.get(gpu)


def test_rtx_pro_6000_variants_keep_their_plain_profiles_slices():
    model = model_of("RTX-PRO-6000")
    for name in RTX_VARIANTS:
        base = FACTS_PROFILES["RTX-PRO-6000"][name.split("+")[0].removesuffix("-me")]
        p = model.profile(name)
        assert (p.compute, p.memory_slices, tuple(p.placements)) == (base.compute, base.memory_slices, base.placements)


@pytest.mark.parametrize("profile, resource", [
    ("1g.5gb", "nvidia.com/mig-1g.5gb"), ("1g.5gb+me", "nvidia.com/mig-1g.5gb.me"),
    ("1g.24gb+me.all", "nvidia.com/mig-1g.24gb.me.all"), ("1g.24gb+gfx", "nvidia.com/mig-1g.24gb.gfx"),
    ("2g.48gb-me", "nvidia.com/mig-2g.48gb-me"), ("7g.180gb", "nvidia.com/mig-7g.180gb"),
])
def test_attribute_variants_map_to_and_from_resource_names(profile, resource):
    """The device plugin turns `+` into `.` and keeps `-me` (docs/facts.md §7)."""
    assert catalog.resource_for_profile(profile) == resource
    assert catalog.profile_for_resource(resource) == profile


def test_every_catalog_profile_round_trips_through_its_resource_name():
    for model in catalog.GPU_MODELS.values():
        for p in model.profiles:
            assert catalog.profile_for_resource(p.resource_name) == p.name
            assert model.profile_for_resource(p.resource_name) is p


@pytest.mark.parametrize("family, arch", sorted(NO_MIG_FAMILIES.items()))
def test_whole_gpu_families_have_no_mig_and_their_arch(family, arch):
    types = [t for t in catalog.INSTANCE_TYPES.values() if t.family == family]
    assert types and all(not t.gpu.mig_capable and t.k8s_arch == arch for t in types)
    assert {t.ami_type for t in types} == {"AL2023_ARM_64_NVIDIA" if arch == "arm64" else "AL2023_x86_64_NVIDIA"}


@pytest.mark.parametrize("itype", FRACTIONAL)
def test_fractional_l4_types_report_no_gpu_to_ec2_and_one_to_kubernetes(itype):
    it = catalog.instance_type(itype)
    assert (it.gpu.name, it.ec2_gpu_count, it.gpu_count, it.gpu.mig_capable) == ("L4", 0, 1, False)


def test_g7e_mig_is_flagged_unconfirmed_and_b200_is_not():
    assert "AWS has not confirmed MIG on g7e" in catalog.mig_warning(catalog.instance_type("g7e.48xlarge"))
    assert catalog.mig_warning(catalog.instance_type("p6-b200.48xlarge")) is None


def test_p6e_gb200_is_refused_with_the_capacity_block_reason():
    with pytest.raises(ConfigError) as e:
        catalog.check_instance_type("p6e-gb200.36xlarge", "gpu-slicing:nodeGroups[0].instanceType")
    assert e.value.key == "gpu-slicing:nodeGroups[0].instanceType"
    assert "UltraServers" in str(e.value) and "Capacity Blocks" in str(e.value)


@pytest.mark.parametrize("itype, ami, short", [
    ("p6-b300.48xlarge", "580.65.06", True), ("p6-b300.48xlarge", "580.82.07", False),
    ("p6-b200.48xlarge", "570.124.06", True), ("p6-b200.48xlarge", "570.133.20", False),
    ("g7e.2xlarge", "575.57.08", True), ("p4d.24xlarge", "535.230.02", False),
])
def test_driver_minimums_name_the_instance_type(itype, ami, short):
    """docs/facts.md §7: B200 >= 570.133.20, B300 >= 580.82.07, RTX PRO 6000 MIG >= R580."""
    if not short:
        assert catalog.check_instance_type(itype, "k", ami).name == itype
        return
    with pytest.raises(ConfigError) as e:
        catalog.check_instance_type(itype, "gpu-slicing:karpenter.nodePools[0].instanceTypes", ami)
    assert itype in str(e.value) and ami in str(e.value)


def test_the_pinned_ami_driver_runs_every_catalog_gpu():
    assert catalog.AMI_DRIVER_BRANCH == "R580" and catalog.AMI_NVIDIA_DRIVER.startswith("580.")
    for it in catalog.INSTANCE_TYPES.values():
        assert catalog.driver_shortfall(it) is None, it.name


@pytest.mark.parametrize("family", ["g5", "g6", "g6e"])
def test_g_families_have_no_mig(family):
    types = [t for name, t in catalog.INSTANCE_TYPES.items() if name.split(".")[0] == family]
    assert len(types) == 8
    assert all(not t.gpu.mig_capable for t in types)
    assert set(catalog.named_layouts(types[0].gpu)) == {"all-disabled"}


def test_resource_names_follow_the_mixed_strategy():
    assert catalog.resource_for_profile("1g.5gb") == "nvidia.com/mig-1g.5gb"
    assert catalog.resource_for_profile("1g.5gb+me") == "nvidia.com/mig-1g.5gb.me"
    assert catalog.profile_for_resource("nvidia.com/mig-1g.5gb.me") == "1g.5gb+me"
    assert catalog.profile_for_resource("nvidia.com/gpu") is None


@pytest.mark.parametrize("gpu", sorted(FACTS_PROFILES))
def test_named_layouts_are_all_profile_plus_balanced(gpu):
    """`all-<profile>` fills every GPU with the most of one profile (docs/facts.md §2)."""
    layouts = catalog.named_layouts(model_of(gpu))
    expected = {"all-disabled", "all-enabled", "all-balanced"} | {"all-" + p.replace("+", ".")
                                                                  for p in _profiles_of(gpu)}
    assert set(layouts) == expected
    for profile, shape in FACTS_PROFILES[gpu].items():
        (group,) = layouts["all-" + profile.replace("+", ".")].groups
        assert (group.devices, group.mig_enabled, dict(group.profiles)) == (None, True, {profile: shape.max_count})
    if gpu in BALANCED:
        assert dict(layouts["all-balanced"].groups[0].profiles) == BALANCED[gpu]


# --- against the upstream references -------------------------------------------------------------

def read_hardware_table(name: str) -> tuple[str, dict[str, tuple[int, float, tuple[int, ...], int]]]:
    """(pci device id, {profile: (count, GiB, placements, memory slices)}) of a `nvidia-smi mig -lgip(p)`
    reading (tools/data/mig-hardware.json, generated from the readings)."""
    reading = refdata.load("mig-hardware")[name]
    return reading["pci"], {p: (r["count"], r["memory_gib"], tuple(r["placements"]), r["memory_slices"])
                            for p, r in reading["profiles"].items()}


@pytest.mark.parametrize("name", sorted(refdata.load("mig-hardware")))
def test_catalog_matches_real_hardware(name):
    pci, rows = read_hardware_table(name)
    assert len(rows) == 7, "the table parser missed rows"
    model = next(m for m in catalog.GPU_MODELS.values() if pci.upper() in (i.upper() for i in m.pci_device_ids))
    assert model.placements_source == catalog.HARDWARE, "a reading replaces an inferred table: mark the model"
    assert set(model.profile_names) == set(rows)
    for name, (count, _, starts, size) in rows.items():
        p = model.profile(name)
        assert (p.max_count, tuple(p.placements), p.memory_slices) == (count, starts, size), name
        assert p.compute == int(name.split("g", 1)[0])
    by_size = sorted((size, gib) for _, gib, _, size in rows.values())
    assert all(a[1] <= b[1] for a, b in zip(by_size, by_size[1:])), "more memory slices, more memory"
    assert all(a[1] == b[1] for a, b in zip(by_size, by_size[1:]) if a[0] == b[0]), "same slices, same memory"


def _reference_layouts() -> dict[str, list[dict]]:
    return refdata.load("mig-parted-config")["mig-configs"]


def _applies(entry: dict, pci: str, profiles: set[str]) -> bool:
    filt = entry.get("device-filter")
    if filt is not None:
        return f"{pci}10DE".upper() in {f.upper() for f in ([filt] if isinstance(filt, str) else filt)}
    return set(entry.get("mig-devices") or {}) <= profiles


@pytest.mark.parametrize("gpu", sorted(PCI_IDS))
def test_named_layouts_match_default_mig_parted_config(gpu):
    """Every NVIDIA layout that applies to this GPU (by device filter, or unfiltered with profiles the
    GPU has) is in the catalog with the same content, and the catalog invents none."""
    pci, profiles = PCI_IDS[gpu], _profiles_of(gpu)
    reference = {}
    for name, entries in _reference_layouts().items():
        mine = [e for e in entries if _applies(e, pci, profiles)]
        if mine:
            (entry,) = mine
            assert entry["devices"] == "all"
            reference[name] = (entry["mig-enabled"], dict(entry.get("mig-devices") or {}))
    ours = {name: (l.groups[0].mig_enabled, dict(l.groups[0].profiles))
            for name, l in catalog.named_layouts(model_of(gpu)).items()}
    assert all(len(l.groups) == 1 and l.groups[0].devices is None
               for l in catalog.named_layouts(model_of(gpu)).values())
    assert ours == reference


@pytest.mark.parametrize("typo, meant", [("p4d.24xlarg", "p4d.24xlarge"), ("p5.48xlarg", "p5.48xlarge"),
                                         ("g6e.xlarg", "g6e.xlarge")])
def test_a_mistyped_instance_type_gets_the_one_it_resembles(typo, meant):
    with pytest.raises(ConfigError) as e:
        catalog.check_instance_type(typo, "gpu-slicing:nodeGroups[0].instanceType")
    assert e.value.key == "gpu-slicing:nodeGroups[0].instanceType"
    assert f"did you mean {meant}? " in e.value.allowed


def test_an_unrelated_name_gets_no_guess():
    with pytest.raises(ConfigError) as e:
        catalog.check_instance_type("m7i.large", "k")
    assert "did you mean" not in e.value.allowed
