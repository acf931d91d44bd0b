"""GPU catalog: which GPUs an EC2 instance type carries and how each MIG-capable GPU can be sliced.

Facts come from NVIDIA's MIG user guide, `nvidia-smi mig -lgip/-lgipp` read off real cards (docs/facts.md §2)
and, for the 2026 fleet, NVIDIA's published profile tables and the GPU Operator's static mig-parted
config (docs/facts.md §7). Each GPU model carries its own geometry: compute and memory slices per GPU (7/8 on
A100, H100, H200 and Blackwell B200/B300/GB200; 4/4 on RTX PRO 6000 Blackwell) and its `all-balanced`.
A profile occupies a contiguous run of memory slices starting at one of its allowed placements.

Where a model's placements were not read off real hardware, `placements_source` says so
(`INFERRED`): replacing them with a reading is a change to that model's entry only.
Instance figures (vCPU, memory, GPU count, arch) are Karpenter's generated instance-type reference;
prices its generated us-east-1 on-demand table (PRICES_AS_OF).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Mapping

from .errors import ConfigError, did_you_mean

WHOLE_GPU = "nvidia.com/gpu"  # whole GPUs, and every slice under the single strategy
MIG_RESOURCE_PREFIX = "nvidia.com/mig-"
# `InstanceType.on_demand_usd_per_hour` is a kept estimate: Linux on-demand list prices in PRICES_REGION,
# rounded, as of PRICES_AS_OF (Karpenter's generated table, pkg/providers/pricing/zz_generated.pricing_aws.go,
# generated 2026-07-20). A stack overrides it with `gpu-slicing:pricePerHour` (its region, its deal).
PRICES_AS_OF = "2026-07-20"
PRICES_REGION = "us-east-1"
# The EKS AL2023 NVIDIA AMIs (and Bottlerocket's) ship the R580 driver branch (docs/facts.md §7). The AMI build
# installs the newest 580.x at build time (amazon-eks-ami install-nvidia-driver.sh); 580.82.07 is the
# R580 release B300 needs, and the pinned AMI release postdates it, so it is the floor assumed here.
AMI_DRIVER_BRANCH = "R580"
AMI_NVIDIA_DRIVER = "580.82.07"

# Where a model's MIG placements come from.
HARDWARE = "nvidia-smi -lgipp on real cards (reference/mig-hardware)"
NVIDIA_DOCS = "NVIDIA MIG user guide"
INFERRED = "inferred from profile ids and max counts (UNCONFIRMED: no -lgipp reading)"

X86_64, ARM64 = "x86_64", "arm64"
_K8S_ARCH = {X86_64: "amd64", ARM64: "arm64"}
_AMI_TYPE = {X86_64: "AL2023_x86_64_NVIDIA", ARM64: "AL2023_ARM_64_NVIDIA"}
_PROFILE = re.compile(r"^(\d+g\.\d+gb)((?:\+|-)[a-z.]+)?$")


@dataclass(frozen=True)
class MigProfile:
    """One GPU-instance profile, e.g. `1g.5gb` (1 compute slice, 1 memory slice), or an attribute variant
    of one (`1g.24gb+me`, `+me.all`, `+gfx`, `-me`) with the same slices."""

    name: str
    compute: int
    memory_slices: int
    max_count: int
    placements: tuple[int, ...]

    @property
    def attribute(self) -> str:
        """`+me`, `+me.all`, `+gfx`, `-me`, or "" for the plain profile."""
        m = _PROFILE.match(self.name)
        return (m.group(2) or "") if m else ""

    @property
    def media_extensions(self) -> bool:
        return self.attribute.startswith("+me")

    @property
    def resource_suffix(self) -> str:
        """The suffix of the Kubernetes resource under the `mixed` strategy: the device plugin turns
        `+` into `.` (`+me` -> `.me`, `+me.all` -> `.me.all`, `+gfx` -> `.gfx`); `-me` stays."""
        return self.name.replace("+", ".")

    @property
    def resource_name(self) -> str:
        return MIG_RESOURCE_PREFIX + self.resource_suffix

    @property
    def layout_name(self) -> str:
        """The name of the NVIDIA `all-<profile>` layout of this profile (spelled like the resource)."""
        return f"all-{self.resource_suffix}"


@dataclass(frozen=True)
class GpuModel:
    """A GPU and its MIG geometry. `compute_slices`/`memory_slices` are per GPU (0 without MIG);
    `balanced` is NVIDIA's `all-balanced` for it; `min_driver` the driver it needs (None: any the AMI has)."""

    name: str
    memory_gib: int
    pci_device_ids: tuple[str, ...] = ()
    profiles: tuple[MigProfile, ...] = ()
    compute_slices: int = 0
    memory_slices: int = 0
    balanced: tuple[tuple[str, int], ...] = ()
    placements_source: str | None = None
    min_driver: str | None = None

    @property
    def device_filters(self) -> tuple[str, ...]:
        """mig-parted `device-filter` ids: PCI device id + NVIDIA's vendor id 10DE (`0x20B010DE`)."""
        return tuple(f"{pci}10DE" for pci in self.pci_device_ids)

    @property
    def mig_capable(self) -> bool:
        return bool(self.profiles)

    @property
    def placements_confirmed(self) -> bool:
        """False where the placements are inferred, not read off a card or taken from NVIDIA's guide."""
        return self.placements_source in (HARDWARE, NVIDIA_DOCS)

    def profile(self, name: str) -> MigProfile | None:
        return next((p for p in self.profiles if p.name == name), None)

    def require(self, name: str) -> MigProfile:
        """Profile `name` of this model, for callers that checked it exists (KeyError otherwise)."""
        found = self.profile(name)
        if found is None:
            raise KeyError(f"{self.name} has no MIG profile {name!r}")
        return found

    @property
    def profile_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.profiles)

    def profile_for_resource(self, resource: str) -> MigProfile | None:
        """The profile of this GPU a `nvidia.com/mig-...` resource names (exact, attributes included)."""
        return next((p for p in self.profiles if p.resource_name == resource), None)


@dataclass(frozen=True)
class InstanceType:
    """An EC2 GPU instance type. `gpu_count` is what the node's device plugin advertises; a fractional
    vGPU type (g6f, gr6f) advertises 1 `nvidia.com/gpu` for its `fraction` of an L4 while EC2 (and so
    Karpenter) reports 0 GPUs (`ec2_gpu_count`)."""

    name: str
    gpu: GpuModel
    gpu_count: int
    vcpu: int
    memory_gib: int
    # On-demand list price in us-east-1 (USD/hour) as of PRICES_AS_OF; an estimate for planning, not a quote.
    on_demand_usd_per_hour: float
    arch: str = X86_64
    fraction: Fraction | None = None
    # MIG on this instance type is not confirmed by AWS (a warning, not an error).
    mig_unconfirmed: str | None = None

    @property
    def k8s_arch(self) -> str:
        """The node's `kubernetes.io/arch` label."""
        return _K8S_ARCH[self.arch]

    @property
    def ami_type(self) -> str:
        """The EKS managed node group AMI type: AL2023 with the NVIDIA driver and toolkit (docs/facts.md §1.5)."""
        return _AMI_TYPE[self.arch]

    @property
    def ec2_gpu_count(self) -> int:
        return 0 if self.fraction is not None else self.gpu_count

    @property
    def family(self) -> str:
        return self.name.split(".")[0]


# --- GPU models -------------------------------------------------------------------------------------

def _seven_slice(one: str, one_double: str, two: str, three: str, four: str, seven: str, *, name: str,
                 memory_gib: int, pci: tuple[str, ...], source: str, min_driver: str | None = None) -> GpuModel:
    """A 7-compute/8-memory-slice GPU from its profile names: the shapes (compute, memory slices, max,
    placements) are the same on A100, H100, H200 and Blackwell (docs/facts.md §2, 7); `all-balanced` is
    2 x 1g + 1 x 2g + 1 x 3g."""
    shapes = ((one, 1, 1, 7, (0, 1, 2, 3, 4, 5, 6)), (one + "+me", 1, 1, 1, (0, 1, 2, 3, 4, 5, 6)),
              (one_double, 1, 2, 4, (0, 2, 4, 6)), (two, 2, 2, 3, (0, 2, 4)), (three, 3, 4, 2, (0, 4)),
              (four, 4, 4, 1, (0,)), (seven, 7, 8, 1, (0,)))
    return GpuModel(name, memory_gib, pci, tuple(MigProfile(*s) for s in shapes), 7, 8,
                    ((one, 2), (two, 1), (three, 1)), source, min_driver)


def _four_slice(one: str, two: str, four: str, *, name: str, memory_gib: int, pci: tuple[str, ...], source: str,
                min_driver: str | None) -> GpuModel:
    """A 4-compute/4-memory-slice GPU (A30-like: RTX PRO 6000 Blackwell), with the attribute variants
    NVIDIA's static config names for it (docs/facts.md §7): `+gfx` and `-me` keep the plain profile's count;
    `+me` / `+me.all` take the GPU's media engines, so one per GPU. `all-balanced` is 2 x 1g + 1 x 2g."""
    one_starts, two_starts = (0, 1, 2, 3), (0, 2)
    shapes = [(one, 1, 1, 4, one_starts), (one + "+me", 1, 1, 1, one_starts), (one + "+gfx", 1, 1, 4, one_starts),
              (one + "+me.all", 1, 1, 1, one_starts), (one + "-me", 1, 1, 4, one_starts),
              (two, 2, 2, 2, two_starts), (two + "+gfx", 2, 2, 2, two_starts), (two + "+me.all", 2, 2, 1, two_starts),
              (two + "-me", 2, 2, 2, two_starts),
              (four, 4, 4, 1, (0,)), (four + "+gfx", 4, 4, 1, (0,))]
    return GpuModel(name, memory_gib, pci, tuple(MigProfile(*s) for s in shapes), 4, 4, ((one, 2), (two, 1)),
                    source, min_driver)


A100_40GB = _seven_slice("1g.5gb", "1g.10gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb",
                         name="A100-SXM4-40GB", memory_gib=40, pci=("0x20B0",), source=NVIDIA_DOCS)
A100_80GB = _seven_slice("1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb",
                         name="A100-SXM4-80GB", memory_gib=80, pci=("0x20B2",), source=NVIDIA_DOCS)
H100_80GB = _seven_slice("1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb",
                         name="H100-80GB-HBM3", memory_gib=80, pci=("0x2330",), source=HARDWARE)
H200_141GB = _seven_slice("1g.18gb", "1g.35gb", "2g.35gb", "3g.71gb", "4g.71gb", "7g.141gb",
                          name="H200-141GB", memory_gib=141, pci=("0x2335",), source=HARDWARE)
B200_180GB = _seven_slice("1g.23gb", "1g.45gb", "2g.45gb", "3g.90gb", "4g.90gb", "7g.180gb",
                          name="B200-180GB", memory_gib=180, pci=("0x2901",), source=INFERRED,
                          min_driver="570.133.20")
B300_288GB = _seven_slice("1g.34gb", "1g.67gb", "2g.67gb", "3g.135gb", "4g.135gb", "7g.269gb",
                          name="B300-288GB", memory_gib=288, pci=("0x3182",), source=INFERRED,
                          min_driver="580.82.07")
GB200_186GB = _seven_slice("1g.23gb", "1g.47gb", "2g.47gb", "3g.93gb", "4g.93gb", "7g.186gb",
                           name="GB200-186GB", memory_gib=186, pci=("0x2941",), source=INFERRED,
                           min_driver="570.133.20")
RTX_PRO_6000 = _four_slice("1g.24gb", "2g.48gb", "4g.96gb", name="RTX-PRO-6000-Blackwell-SE-96GB", memory_gib=96,
                           pci=("0x2BB5",), source=INFERRED, min_driver="580.0.0")  # MIG needs R580
A10G = GpuModel("A10G", 24)
L4 = GpuModel("L4", 24)
L40S = GpuModel("L40S", 48)
T4 = GpuModel("T4", 16)
T4G = GpuModel("T4G", 16)

GPU_MODELS: dict[str, GpuModel] = {m.name: m for m in (
    A100_40GB, A100_80GB, H100_80GB, H200_141GB, B200_180GB, B300_288GB, GB200_186GB, RTX_PRO_6000,
    A10G, L4, L40S, T4, T4G)}


# --- instance types -----------------------------------------------------------------------------------

def _family(prefix: str, gpu: GpuModel, rows: list[tuple[str, int, int, int, float]], **kw) -> list[InstanceType]:
    return [InstanceType(f"{prefix}.{size}", gpu, count, vcpu, mem, price, **kw)
            for size, count, vcpu, mem, price in rows]


_G7E_MIG = ("AWS has not confirmed MIG on g7e (SageMaker HyperPod kept g7e to whole GPUs, 2026-04); "
            "the RTX PRO 6000 placements are inferred too")

INSTANCE_TYPES: dict[str, InstanceType] = {
    t.name: t
    for t in [
        InstanceType("p4d.24xlarge", A100_40GB, 8, 96, 1152, 21.96),
        InstanceType("p4de.24xlarge", A100_80GB, 8, 96, 1152, 27.45),
        InstanceType("p5.4xlarge", H100_80GB, 1, 16, 256, 6.88),
        InstanceType("p5.48xlarge", H100_80GB, 8, 192, 2048, 55.04),
        InstanceType("p5e.48xlarge", H200_141GB, 8, 192, 2048, 60.00),  # not in Karpenter's price table: an estimate
        InstanceType("p5en.48xlarge", H200_141GB, 8, 192, 2048, 63.30),
        InstanceType("p6-b200.48xlarge", B200_180GB, 8, 192, 2048, 113.93),
        InstanceType("p6-b300.48xlarge", B300_288GB, 8, 192, 4096, 142.42),
        *_family("g7e", RTX_PRO_6000, [("2xlarge", 1, 8, 64, 3.36), ("4xlarge", 1, 16, 128, 4.00),
                                       ("8xlarge", 1, 32, 256, 5.27), ("12xlarge", 2, 48, 512, 8.29),
                                       ("24xlarge", 4, 96, 1024, 16.57), ("48xlarge", 8, 192, 2048, 33.14)],
                 mig_unconfirmed=_G7E_MIG),
        *_family("g4dn", T4, [("xlarge", 1, 4, 16, 0.53), ("2xlarge", 1, 8, 32, 0.75), ("4xlarge", 1, 16, 64, 1.20),
                              ("8xlarge", 1, 32, 128, 2.18), ("16xlarge", 1, 64, 256, 4.35),
                              ("12xlarge", 4, 48, 192, 3.91), ("metal", 8, 96, 384, 7.82)]),
        *_family("g5", A10G, [("xlarge", 1, 4, 16, 1.01), ("2xlarge", 1, 8, 32, 1.21),
                              ("4xlarge", 1, 16, 64, 1.62), ("8xlarge", 1, 32, 128, 2.45),
                              ("16xlarge", 1, 64, 256, 4.10), ("12xlarge", 4, 48, 192, 5.67),
                              ("24xlarge", 4, 96, 384, 8.14), ("48xlarge", 8, 192, 768, 16.29)]),
        *_family("g5g", T4G, [("xlarge", 1, 4, 8, 0.42), ("2xlarge", 1, 8, 16, 0.56), ("4xlarge", 1, 16, 32, 0.83),
                              ("8xlarge", 1, 32, 64, 1.37), ("16xlarge", 2, 64, 128, 2.74), ("metal", 2, 64, 128, 2.74)],
                 arch=ARM64),
        *_family("g6", L4, [("xlarge", 1, 4, 16, 0.80), ("2xlarge", 1, 8, 32, 0.98),
                            ("4xlarge", 1, 16, 64, 1.32), ("8xlarge", 1, 32, 128, 2.01),
                            ("16xlarge", 1, 64, 256, 3.40), ("12xlarge", 4, 48, 192, 4.60),
                            ("24xlarge", 4, 96, 384, 6.68), ("48xlarge", 8, 192, 768, 13.35)]),
        *_family("gr6", L4, [("4xlarge", 1, 16, 128, 1.54), ("8xlarge", 1, 32, 256, 2.45)]),
        InstanceType("g6f.large", L4, 1, 2, 8, 0.20, fraction=Fraction(1, 8)),
        InstanceType("g6f.xlarge", L4, 1, 4, 16, 0.24, fraction=Fraction(1, 8)),
        InstanceType("g6f.2xlarge", L4, 1, 8, 32, 0.48, fraction=Fraction(1, 4)),
        InstanceType("g6f.4xlarge", L4, 1, 16, 64, 0.95, fraction=Fraction(1, 2)),
        InstanceType("gr6f.4xlarge", L4, 1, 16, 128, 1.07, fraction=Fraction(1, 2)),
        *_family("g6e", L40S, [("xlarge", 1, 4, 32, 1.86), ("2xlarge", 1, 8, 64, 2.24),
                               ("4xlarge", 1, 16, 128, 3.00), ("8xlarge", 1, 32, 256, 4.53),
                               ("16xlarge", 1, 64, 512, 7.58), ("12xlarge", 4, 48, 384, 10.49),
                               ("24xlarge", 4, 96, 768, 15.07), ("48xlarge", 8, 192, 1536, 30.13)]),
    ]
}

# --- pods per node ------------------------------------------------------------------------------------
# The most pods EKS lets a node of each type run (kubelet maxPods, on managed node groups and Karpenter nodes
# alike): ENIs x (IPv4 addresses per ENI - 1) + 2, counting only the default network card (the first address
# of each ENI is the ENI's own; the 2 are aws-node and kube-proxy, which use the node's address). These are
# the figures of awslabs/amazon-eks-ami templates/shared/runtime/eni-max-pods.txt, kept as the ENI and
# address counts EC2 documents per type ("IP addresses per network interface per instance type") so the
# formula is visible. DaemonSets count against the limit like any pod.
MAX_PODS_SOURCE = "awslabs/amazon-eks-ami eni-max-pods.txt (default network card)"
MAX_PODS_UNCONFIRMED = ("UNCONFIRMED: not in eni-max-pods.txt yet; assumed no more than the g6e size with as many "
                        "vCPUs, and lower where that was not certain")
_ENI = {  # instance type: (ENIs on the default network card, IPv4 addresses per ENI)
    "p4d.24xlarge": (15, 50), "p4de.24xlarge": (15, 50), "p5.4xlarge": (4, 30), "p5.48xlarge": (2, 50),
    "p5e.48xlarge": (2, 50), "p5en.48xlarge": (4, 50), "p6-b200.48xlarge": (4, 50), "p6-b300.48xlarge": (4, 50),
    "g4dn.xlarge": (3, 10), "g4dn.2xlarge": (3, 10), "g4dn.4xlarge": (3, 10), "g4dn.8xlarge": (4, 15),
    "g4dn.16xlarge": (4, 15), "g4dn.12xlarge": (8, 30), "g4dn.metal": (15, 50),
    "g5.xlarge": (4, 15), "g5.2xlarge": (4, 15), "g5.4xlarge": (8, 30), "g5.8xlarge": (8, 30),
    "g5.16xlarge": (8, 30), "g5.12xlarge": (15, 50), "g5.24xlarge": (15, 50), "g5.48xlarge": (7, 50),
    "g5g.xlarge": (4, 15), "g5g.2xlarge": (4, 15), "g5g.4xlarge": (8, 30), "g5g.8xlarge": (8, 30),
    "g5g.16xlarge": (15, 50), "g5g.metal": (15, 50),
    "g6.xlarge": (4, 15), "g6.2xlarge": (4, 15), "g6.4xlarge": (8, 30), "g6.8xlarge": (8, 30),
    "g6.16xlarge": (15, 50), "g6.12xlarge": (8, 30), "g6.24xlarge": (15, 50), "g6.48xlarge": (15, 50),
    "gr6.4xlarge": (8, 30), "gr6.8xlarge": (8, 30),
    "g6f.large": (2, 10), "g6f.xlarge": (4, 15), "g6f.2xlarge": (4, 15), "g6f.4xlarge": (8, 30),
    "gr6f.4xlarge": (8, 30),
    "g6e.xlarge": (4, 15), "g6e.2xlarge": (4, 15), "g6e.4xlarge": (8, 30), "g6e.8xlarge": (8, 30),
    "g6e.16xlarge": (15, 50), "g6e.12xlarge": (10, 30), "g6e.24xlarge": (10, 50), "g6e.48xlarge": (10, 50),
}
_ENI_UNCONFIRMED = {  # g7e: not in the file; conservative
    "g7e.2xlarge": (4, 15), "g7e.4xlarge": (4, 15), "g7e.8xlarge": (8, 30), "g7e.12xlarge": (8, 30),
    "g7e.24xlarge": (8, 30), "g7e.48xlarge": (8, 30),
}


def eni_max_pods(name: str) -> int:
    """EKS's pod limit for a node of instance type `name` (KeyError for a type without a figure)."""
    enis, addresses = _ENI.get(name) or _ENI_UNCONFIRMED[name]
    return enis * (addresses - 1) + 2


def max_pods_source(name: str) -> str:
    """Where `eni_max_pods(name)` comes from."""
    return MAX_PODS_SOURCE if name in _ENI else MAX_PODS_UNCONFIRMED


# Known GPU instance types this program refuses, with the reason (docs/facts.md §7).
REFUSED_INSTANCE_TYPES: dict[str, str] = {
    "p6e-gb200.36xlarge": (
        "an instance type this program supports: p6e-gb200.36xlarge (4 x GB200, arm64) is sold only as "
        "UltraServers through EC2 Capacity Blocks, which this program does not support yet"),
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
    """NVIDIA's `all-balanced` of `model` (per GPU)."""
    return dict(model.balanced)


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
    """`1g.5gb` -> `nvidia.com/mig-1g.5gb`, `1g.24gb+me.all` -> `nvidia.com/mig-1g.24gb.me.all`,
    `1g.24gb-me` -> `nvidia.com/mig-1g.24gb-me` (the resource name under the `mixed` strategy)."""
    return MIG_RESOURCE_PREFIX + profile.replace("+", ".")


def profile_for_resource(resource: str) -> str | None:
    """Inverse of `resource_for_profile`; None when `resource` is not a MIG resource. A profile name is
    `<n>g.<m>gb` (one dot), so a dot after it starts an attribute that was a `+`."""
    if not resource.startswith(MIG_RESOURCE_PREFIX):
        return None
    rest = resource[len(MIG_RESOURCE_PREFIX):]
    m = re.match(r"^(\d+g\.\d+gb)\.(.+)$", rest)
    return f"{m.group(1)}+{m.group(2)}" if m else rest


def _version(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def driver_shortfall(it: InstanceType, ami_driver: str | None = None) -> str | None:
    """Why the AMI's NVIDIA driver (AMI_NVIDIA_DRIVER unless given) cannot run `it`'s GPUs, or None."""
    ami_driver = ami_driver or AMI_NVIDIA_DRIVER
    need = it.gpu.min_driver
    if need is None or _version(ami_driver) >= _version(need):
        return None
    return (f"{it.name} ({it.gpu.name}) needs NVIDIA driver >= {need}; the AL2023 NVIDIA AMI this program "
            f"uses has {ami_driver}")


def check_instance_type(name: str, key: str, ami_driver: str | None = None) -> InstanceType:
    """The catalog entry for `name`, or a ConfigError naming `key`: unknown, refused, or a driver short."""
    if isinstance(name, str) and name in REFUSED_INSTANCE_TYPES:
        raise ConfigError(key, name, REFUSED_INSTANCE_TYPES[name])
    it = INSTANCE_TYPES.get(name) if isinstance(name, str) else None
    if it is None:
        hint = did_you_mean(name, INSTANCE_TYPES, cutoff=0.8) if isinstance(name, str) else ""
        raise ConfigError(key, name, "a GPU instance type this program knows: " + hint + ", ".join(sorted(INSTANCE_TYPES)))
    short = driver_shortfall(it, ami_driver)
    if short:
        raise ConfigError(key, name, f"an instance type whose GPU the AMI's driver supports: {short}")
    return it


def mig_warning(it: InstanceType) -> str | None:
    """A caution for enabling MIG on `it` (unconfirmed by AWS), or None."""
    return f"MIG on {it.name}: {it.mig_unconfirmed}" if it.mig_unconfirmed else None
