"""GPU catalog: which GPUs an EC2 instance type carries and how each MIG-capable GPU can be sliced.

Facts come from NVIDIA's MIG user guide and `nvidia-smi mig -lgip/-lgipp` read off real cards
(FACTS 2). Every MIG GPU here has 7 compute slices and 8 memory slices; a profile occupies a
contiguous run of memory slices starting at one of its allowed placements.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

COMPUTE_SLICES = 7
WHOLE_GPU = "nvidia.com/gpu"  # whole GPUs, and every slice under the single strategy
MEMORY_SLICES = 8
# `InstanceType.on_demand_usd_per_hour` is a kept estimate: Linux on-demand list prices in PRICES_REGION,
# rounded, as of PRICES_AS_OF. A stack overrides it with `gpu-slicing:pricePerHour` (its region, its deal).
PRICES_AS_OF = "2026-11"
PRICES_REGION = "us-east-1"


@dataclass(frozen=True)
class MigProfile:
    """One GPU-instance profile, e.g. `1g.5gb` (1 compute slice, 1 memory slice)."""

    name: str
    compute: int
    memory_slices: int
    max_count: int
    placements: tuple[int, ...]

    @property
    def media_extensions(self) -> bool:
        return self.name.endswith("+me")

    @property
    def resource_suffix(self) -> str:
        """The suffix of the Kubernetes resource under the `mixed` strategy (`+me` becomes `.me`)."""
        return self.name.replace("+", ".")

    @property
    def resource_name(self) -> str:
        return f"nvidia.com/mig-{self.resource_suffix}"

    @property
    def layout_name(self) -> str:
        """The name of the NVIDIA `all-<profile>` layout of this profile (`+me` becomes `.me`)."""
        return f"all-{self.resource_suffix}"


@dataclass(frozen=True)
class GpuModel:
    name: str
    memory_gib: int
    pci_device_ids: tuple[str, ...] = ()
    profiles: tuple[MigProfile, ...] = ()

    @property
    def device_filters(self) -> tuple[str, ...]:
        """mig-parted `device-filter` ids: PCI device id + NVIDIA's vendor id 10DE (`0x20B010DE`)."""
        return tuple(f"{pci}10DE" for pci in self.pci_device_ids)

    @property
    def mig_capable(self) -> bool:
        return bool(self.profiles)

    def profile(self, name: str) -> MigProfile | None:
        return next((p for p in self.profiles if p.name == name), None)

    @property
    def profile_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.profiles)


@dataclass(frozen=True)
class InstanceType:
    name: str
    gpu: GpuModel
    gpu_count: int
    vcpu: int
    memory_gib: int
    # Rounded on-demand list price in us-east-1 (USD/hour); an estimate for planning, not a quote.
    on_demand_usd_per_hour: float


def _profiles(sizes: Mapping[str, str]) -> tuple[MigProfile, ...]:
    """Build the seven MIG profiles of a 7-compute/8-memory GPU from its memory-size names.

    `sizes` maps the shape key (`1g`, `1g+me`, `1g.2`, `2g`, `3g`, `4g`, `7g`) to the profile name
    the GPU uses for it; the shapes (compute, memory slices, count, placements) are the same on
    A100, H100 and H200 (FACTS 2, `reference/mig-hardware/`).
    """
    shapes = {
        "1g": (1, 1, 7, (0, 1, 2, 3, 4, 5, 6)),
        "1g+me": (1, 1, 1, (0, 1, 2, 3, 4, 5, 6)),
        "1g.2": (1, 2, 4, (0, 2, 4, 6)),
        "2g": (2, 2, 3, (0, 2, 4)),
        "3g": (3, 4, 2, (0, 4)),
        "4g": (4, 4, 1, (0,)),
        "7g": (7, 8, 1, (0,)),
    }
    return tuple(MigProfile(sizes[k], *shape) for k, shape in shapes.items())


def _mig_sizes(one: str, one_double: str, two: str, three: str, four: str, seven: str) -> dict[str, str]:
    return {"1g": one, "1g+me": one + "+me", "1g.2": one_double, "2g": two, "3g": three,
            "4g": four, "7g": seven}


A100_40GB = GpuModel("A100-SXM4-40GB", 40, ("0x20B0",),
                     _profiles(_mig_sizes("1g.5gb", "1g.10gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb")))
A100_80GB = GpuModel("A100-SXM4-80GB", 80, ("0x20B2",),
                     _profiles(_mig_sizes("1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb")))
H100_80GB = GpuModel("H100-80GB-HBM3", 80, ("0x2330",),
                     _profiles(_mig_sizes("1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb")))
H200_141GB = GpuModel("H200-141GB", 141, ("0x2335",),
                      _profiles(_mig_sizes("1g.18gb", "1g.35gb", "2g.35gb", "3g.71gb", "4g.71gb", "7g.141gb")))
A10G = GpuModel("A10G", 24)
L4 = GpuModel("L4", 24)
L40S = GpuModel("L40S", 48)

GPU_MODELS: dict[str, GpuModel] = {m.name: m for m in (A100_40GB, A100_80GB, H100_80GB, H200_141GB, A10G, L4, L40S)}


def _family(prefix: str, gpu: GpuModel, rows: list[tuple[str, int, int, int, float]]) -> list[InstanceType]:
    return [InstanceType(f"{prefix}.{size}", gpu, count, vcpu, mem, price) for size, count, vcpu, mem, price in rows]


INSTANCE_TYPES: dict[str, InstanceType] = {
    t.name: t
    for t in [
        InstanceType("p4d.24xlarge", A100_40GB, 8, 96, 1152, 21.96),
        InstanceType("p4de.24xlarge", A100_80GB, 8, 96, 1152, 27.45),
        InstanceType("p5.48xlarge", H100_80GB, 8, 192, 2048, 55.04),
        InstanceType("p5e.48xlarge", H200_141GB, 8, 192, 2048, 60.00),
        InstanceType("p5en.48xlarge", H200_141GB, 8, 192, 2048, 63.30),
        *_family("g5", A10G, [("xlarge", 1, 4, 16, 1.01), ("2xlarge", 1, 8, 32, 1.21),
                              ("4xlarge", 1, 16, 64, 1.62), ("8xlarge", 1, 32, 128, 2.45),
                              ("16xlarge", 1, 64, 256, 4.10), ("12xlarge", 4, 48, 192, 5.67),
                              ("24xlarge", 4, 96, 384, 8.14), ("48xlarge", 8, 192, 768, 16.29)]),
        *_family("g6", L4, [("xlarge", 1, 4, 16, 0.80), ("2xlarge", 1, 8, 32, 0.98),
                            ("4xlarge", 1, 16, 64, 1.32), ("8xlarge", 1, 32, 128, 2.01),
                            ("16xlarge", 1, 64, 256, 3.40), ("12xlarge", 4, 48, 192, 4.60),
                            ("24xlarge", 4, 96, 384, 6.68), ("48xlarge", 8, 192, 768, 13.35)]),
        *_family("g6e", L40S, [("xlarge", 1, 4, 32, 1.86), ("2xlarge", 1, 8, 64, 2.24),
                               ("4xlarge", 1, 16, 128, 3.00), ("8xlarge", 1, 32, 256, 4.53),
                               ("16xlarge", 1, 64, 512, 7.58), ("12xlarge", 4, 48, 384, 10.49),
                               ("24xlarge", 4, 96, 768, 15.07), ("48xlarge", 8, 192, 1536, 30.13)]),
    ]
}


@dataclass(frozen=True)
class GpuGroup:
    """Part of a MIG layout: which GPUs of a node (`None` = all) get which profile counts."""

    devices: tuple[int, ...] | None
    mig_enabled: bool
    profiles: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class MigLayout:
    """A MIG layout as the MIG manager applies it to a node labelled `nvidia.com/mig.config=<name>`."""

    name: str
    groups: tuple[GpuGroup, ...]
    custom: bool = False

    def per_gpu(self, gpu_count: int) -> list[Mapping[str, int] | None]:
        """Profile counts for each GPU index (None = MIG disabled on that GPU)."""
        out: list[Mapping[str, int] | None] = [None] * gpu_count
        for g in self.groups:
            for i in (range(gpu_count) if g.devices is None else g.devices):
                if 0 <= i < gpu_count:
                    out[i] = dict(g.profiles) if g.mig_enabled else None
        return out

    @property
    def mig_enabled(self) -> bool:
        return any(g.mig_enabled for g in self.groups)

    def profile_names(self) -> set[str]:
        return {p for g in self.groups if g.mig_enabled for p, n in g.profiles.items() if n > 0}


def instance_type(name: str) -> InstanceType | None:
    return INSTANCE_TYPES.get(name)


def balanced_profiles(model: GpuModel) -> dict[str, int]:
    """NVIDIA's `all-balanced`: 2 of the smallest 1g profile, one 2g and one 3g on every GPU."""
    by_shape = {(p.compute, p.memory_slices, p.media_extensions): p.name for p in model.profiles}
    return {by_shape[(1, 1, False)]: 2, by_shape[(2, 2, False)]: 1, by_shape[(3, 4, False)]: 1}


def named_layouts(model: GpuModel) -> dict[str, MigLayout]:
    """The NVIDIA-named layouts that apply to `model` (`all-disabled` for any GPU)."""
    layouts = {"all-disabled": MigLayout("all-disabled", (GpuGroup(None, False),))}
    if not model.mig_capable:
        return layouts
    layouts["all-enabled"] = MigLayout("all-enabled", (GpuGroup(None, True, {}),))
    for p in model.profiles:
        layouts[p.layout_name] = MigLayout(p.layout_name, (GpuGroup(None, True, {p.name: p.max_count}),))
    layouts["all-balanced"] = MigLayout("all-balanced", (GpuGroup(None, True, balanced_profiles(model)),))
    return layouts


def resource_for_profile(profile: str) -> str:
    """`1g.5gb` -> `nvidia.com/mig-1g.5gb` (the resource name under the `mixed` strategy)."""
    return "nvidia.com/mig-" + profile.replace("+", ".")


def profile_for_resource(resource: str) -> str | None:
    """Inverse of `resource_for_profile`; None when `resource` is not a MIG resource."""
    prefix = "nvidia.com/mig-"
    if not resource.startswith(prefix):
        return None
    rest = resource[len(prefix):]
    return rest[:-3] + "+me" if rest.endswith(".me") else rest
