"""The GPU catalog against FACTS 2 and against the upstream references (`../shared/reference`).

The FACTS table is written out here by hand, so the other test modules import it from this one
(`FACTS_PROFILES`, `FACTS_GPUS`) instead of trusting the catalog they are testing.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml

from conftest import NEEDS_SHARED, REFERENCE
from gpu_slicing import catalog


class Shape(NamedTuple):
    compute: int
    memory_slices: int
    max_count: int
    placements: tuple[int, ...]


# FACTS 2, row by row: the shape of each profile and its name on each GPU.
_SHAPES = (Shape(1, 1, 7, (0, 1, 2, 3, 4, 5, 6)), Shape(1, 1, 1, (0, 1, 2, 3, 4, 5, 6)), Shape(1, 2, 4, (0, 2, 4, 6)),
           Shape(2, 2, 3, (0, 2, 4)), Shape(3, 4, 2, (0, 4)), Shape(4, 4, 1, (0,)), Shape(7, 8, 1, (0,)))
_NAMES = {
    "A100-40GB": ("1g.5gb", "1g.5gb+me", "1g.10gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb"),
    "A100-80GB": ("1g.10gb", "1g.10gb+me", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"),
    "H100-80GB": ("1g.10gb", "1g.10gb+me", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"),
    "H200-141GB": ("1g.18gb", "1g.18gb+me", "1g.35gb", "2g.35gb", "3g.71gb", "4g.71gb", "7g.141gb"),
}
FACTS_PROFILES: dict[str, dict[str, Shape]] = {gpu: dict(zip(names, _SHAPES)) for gpu, names in _NAMES.items()}
# instance type -> (GPU, GPUs per node); FACTS 2.
FACTS_GPUS = {"p4d.24xlarge": ("A100-40GB", 8), "p4de.24xlarge": ("A100-80GB", 8), "p5.48xlarge": ("H100-80GB", 8),
              "p5e.48xlarge": ("H200-141GB", 8), "p5en.48xlarge": ("H200-141GB", 8)}
PCI_IDS = {"A100-40GB": "0x20B0", "A100-80GB": "0x20B2", "H100-80GB": "0x2330", "H200-141GB": "0x2335"}
BALANCED = {"A100-40GB": {"1g.5gb": 2, "2g.10gb": 1, "3g.20gb": 1},
            "H100-80GB": {"1g.10gb": 2, "2g.20gb": 1, "3g.40gb": 1},
            "H200-141GB": {"1g.18gb": 2, "2g.35gb": 1, "3g.71gb": 1}}

needs_reference = pytest.mark.skipif(not REFERENCE.is_dir(), reason=NEEDS_SHARED)


def model_of(gpu: str) -> catalog.GpuModel:
    return next(m for m in catalog.GPU_MODELS.values() if PCI_IDS[gpu] in m.pci_device_ids)


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
    assert got == FACTS_PROFILES[gpu]


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
    """`all-<profile>` fills every GPU with the most of one profile (FACTS 2)."""
    layouts = catalog.named_layouts(model_of(gpu))
    expected = {"all-disabled", "all-enabled", "all-balanced"} | {"all-" + p.replace("+", ".")
                                                                  for p in FACTS_PROFILES[gpu]}
    assert set(layouts) == expected
    for profile, shape in FACTS_PROFILES[gpu].items():
        (group,) = layouts["all-" + profile.replace("+", ".")].groups
        assert (group.devices, group.mig_enabled, dict(group.profiles)) == (None, True, {profile: shape.max_count})
    if gpu in BALANCED:
        assert dict(layouts["all-balanced"].groups[0].profiles) == BALANCED[gpu]


# --- against the upstream references -------------------------------------------------------------

_ROW = re.compile(r"^(\S+)\s+\d+\s+(\d+)\s+([\d.]+)\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+\s+\{([\d,]+)\}:(\d+)\s*$")


def read_hardware_table(path: Path) -> tuple[str, dict[str, tuple[int, float, tuple[int, ...], int]]]:
    """(pci device id, {profile: (count, GiB, placements, memory slices)}) from `nvidia-smi mig -lgip(p)`."""
    text = path.read_text()
    pci = re.search(r"pci device (0x[0-9A-Fa-f]{4})", text).group(1)
    rows = {}
    for line in text.splitlines():
        m = _ROW.match(line)
        if m:
            name, count, gib, starts, size = m.groups()
            rows[name] = (int(count), float(gib), tuple(int(s) for s in starts.split(",")), int(size))
    return pci, rows


@needs_reference
@pytest.mark.parametrize("path", sorted((REFERENCE / "mig-hardware").glob("*.txt")) if REFERENCE.is_dir() else [],
                         ids=lambda p: p.name)
def test_catalog_matches_real_hardware(path):
    pci, rows = read_hardware_table(path)
    assert len(rows) == 7, "the table parser missed rows"
    model = next(m for m in catalog.GPU_MODELS.values() if pci.upper() in (i.upper() for i in m.pci_device_ids))
    assert set(model.profile_names) == set(rows)
    for name, (count, _, starts, size) in rows.items():
        p = model.profile(name)
        assert (p.max_count, tuple(p.placements), p.memory_slices) == (count, starts, size), name
        assert p.compute == int(name.split("g", 1)[0])
    by_size = sorted((size, gib) for _, gib, _, size in rows.values())
    assert all(a[1] <= b[1] for a, b in zip(by_size, by_size[1:])), "more memory slices, more memory"
    assert all(a[1] == b[1] for a, b in zip(by_size, by_size[1:]) if a[0] == b[0]), "same slices, same memory"


def _reference_layouts() -> dict[str, list[dict]]:
    doc = yaml.safe_load((REFERENCE / "gpu-operator" / "default-mig-parted-config.yaml").read_text())
    return yaml.safe_load(doc["data"]["config.yaml"])["mig-configs"]


def _applies(entry: dict, pci: str, profiles: set[str]) -> bool:
    filt = entry.get("device-filter")
    if filt is not None:
        return f"{pci}10DE".upper() in {f.upper() for f in ([filt] if isinstance(filt, str) else filt)}
    return set(entry.get("mig-devices") or {}) <= profiles


@needs_reference
@pytest.mark.parametrize("gpu", sorted(PCI_IDS))
def test_named_layouts_match_default_mig_parted_config(gpu):
    """Every NVIDIA layout that applies to this GPU (by device filter, or unfiltered with profiles the
    GPU has) is in the catalog with the same content, and the catalog invents none."""
    pci, profiles = PCI_IDS[gpu], set(FACTS_PROFILES[gpu])
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
