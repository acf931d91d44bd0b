"""Every instance type's figures in the catalog against Karpenter's own: vCPUs, memory, the GPU count EC2
reports, the architecture and the GPU (Karpenter's generated instance-type reference at v1.14.1,
website/content/en/preview/reference/instance-types.md, labels karpenter.k8s.aws/instance-cpu, -memory
(MiB), -gpu-count, -gpu-name and kubernetes.io/arch), and the on-demand price (Karpenter's generated
us-east-1 table, pkg/providers/pricing/zz_generated.pricing_aws.go, generated 2026-07-20). The rows were
written from those files, not from the catalog: a figure mistyped in the catalog (a Blackwell type's memory,
a g7e's GPU count, a price) fails here. The capacity planner, the cost guard, NodePool limits and the
advisor's prices all read these figures."""
from __future__ import annotations

from fractions import Fraction

import pytest

from gpu_slicing import catalog

# name: (vCPU, memory MiB, GPUs EC2 reports, kubernetes.io/arch, Karpenter's GPU name, USD/hour or None)
KARPENTER = {
    "g4dn.xlarge": (4, 16384, 1, "amd64", "t4", 0.526),
    "g4dn.2xlarge": (8, 32768, 1, "amd64", "t4", 0.752),
    "g4dn.4xlarge": (16, 65536, 1, "amd64", "t4", 1.204),
    "g4dn.8xlarge": (32, 131072, 1, "amd64", "t4", 2.176),
    "g4dn.12xlarge": (48, 196608, 4, "amd64", "t4", 3.912),
    "g4dn.16xlarge": (64, 262144, 1, "amd64", "t4", 4.352),
    "g4dn.metal": (96, 393216, 8, "amd64", "t4", 7.824),
    "g5.xlarge": (4, 16384, 1, "amd64", "a10g", 1.006),
    "g5.2xlarge": (8, 32768, 1, "amd64", "a10g", 1.212),
    "g5.4xlarge": (16, 65536, 1, "amd64", "a10g", 1.624),
    "g5.8xlarge": (32, 131072, 1, "amd64", "a10g", 2.448),
    "g5.12xlarge": (48, 196608, 4, "amd64", "a10g", 5.672),
    "g5.16xlarge": (64, 262144, 1, "amd64", "a10g", 4.096),
    "g5.24xlarge": (96, 393216, 4, "amd64", "a10g", 8.144),
    "g5.48xlarge": (192, 786432, 8, "amd64", "a10g", 16.288),
    "g5g.xlarge": (4, 8192, 1, "arm64", "t4g", 0.42),
    "g5g.2xlarge": (8, 16384, 1, "arm64", "t4g", 0.556),
    "g5g.4xlarge": (16, 32768, 1, "arm64", "t4g", 0.828),
    "g5g.8xlarge": (32, 65536, 1, "arm64", "t4g", 1.372),
    "g5g.16xlarge": (64, 131072, 2, "arm64", "t4g", 2.744),
    "g5g.metal": (64, 131072, 2, "arm64", "t4g", 2.744),
    "g6.xlarge": (4, 16384, 1, "amd64", "l4", 0.8048),
    "g6.2xlarge": (8, 32768, 1, "amd64", "l4", 0.9776),
    "g6.4xlarge": (16, 65536, 1, "amd64", "l4", 1.3232),
    "g6.8xlarge": (32, 131072, 1, "amd64", "l4", 2.0144),
    "g6.12xlarge": (48, 196608, 4, "amd64", "l4", 4.6016),
    "g6.16xlarge": (64, 262144, 1, "amd64", "l4", 3.3968),
    "g6.24xlarge": (96, 393216, 4, "amd64", "l4", 6.6752),
    "g6.48xlarge": (192, 786432, 8, "amd64", "l4", 13.3504),
    "g6e.xlarge": (4, 32768, 1, "amd64", "l40s", 1.861),
    "g6e.2xlarge": (8, 65536, 1, "amd64", "l40s", 2.24208),
    "g6e.4xlarge": (16, 131072, 1, "amd64", "l40s", 3.00424),
    "g6e.8xlarge": (32, 262144, 1, "amd64", "l40s", 4.52856),
    "g6e.12xlarge": (48, 393216, 4, "amd64", "l40s", 10.4926),
    "g6e.16xlarge": (64, 524288, 1, "amd64", "l40s", 7.57719),
    "g6e.24xlarge": (96, 786432, 4, "amd64", "l40s", 15.0656),
    "g6e.48xlarge": (192, 1572864, 8, "amd64", "l40s", 30.1312),
    "g6f.large": (2, 8192, 0, "amd64", "l4", 0.202),
    "g6f.xlarge": (4, 16384, 0, "amd64", "l4", 0.2375),
    "g6f.2xlarge": (8, 32768, 0, "amd64", "l4", 0.475),
    "g6f.4xlarge": (16, 65536, 0, "amd64", "l4", 0.95),
    "g7e.2xlarge": (8, 65536, 1, "amd64", "rtx-pro-server-6000", 3.36312),
    "g7e.4xlarge": (16, 131072, 1, "amd64", "rtx-pro-server-6000", 3.99816),
    "g7e.8xlarge": (32, 262144, 1, "amd64", "rtx-pro-server-6000", 5.26824),
    "g7e.12xlarge": (48, 524288, 2, "amd64", "rtx-pro-server-6000", 8.28608),
    "g7e.24xlarge": (96, 1048576, 4, "amd64", "rtx-pro-server-6000", 16.5722),
    "g7e.48xlarge": (192, 2097152, 8, "amd64", "rtx-pro-server-6000", 33.1443),
    "gr6.4xlarge": (16, 131072, 1, "amd64", "l4", 1.5392),
    "gr6.8xlarge": (32, 262144, 1, "amd64", "l4", 2.4464),
    "gr6f.4xlarge": (16, 131072, 0, "amd64", "l4", 1.066),
    "p4d.24xlarge": (96, 1179648, 8, "amd64", "a100", 21.9576),
    "p4de.24xlarge": (96, 1179648, 8, "amd64", "a100", 27.4471),
    "p5.4xlarge": (16, 262144, 1, "amd64", "h100", 6.88),
    "p5.48xlarge": (192, 2097152, 8, "amd64", "h100", 55.04),
    "p5e.48xlarge": (192, 2097152, 8, "amd64", "h200", None),
    "p5en.48xlarge": (192, 2097152, 8, "amd64", "h200", 63.296),
    "p6-b200.48xlarge": (192, 2097152, 8, "amd64", "b200", 113.933),
    "p6-b300.48xlarge": (192, 4194304, 8, "amd64", "b300", 142.416),
}
# Karpenter's GPU names -> the catalog's GPU model names (A100: 40 or 80 GB, held by test_catalog's FACTS rows).
GPU_NAMES = {"t4": "T4", "t4g": "T4G", "a10g": "A10G", "l4": "L4", "l40s": "L40S", "a100": "A100-SXM4-",
             "h100": "H100-80GB", "h200": "H200-141GB", "b200": "B200-180GB", "b300": "B300-288GB",
             "rtx-pro-server-6000": "RTX-PRO-6000-Blackwell"}
# FACTS 7: the share of an L4 each fractional vGPU type carries.
FRACTIONS = {"g6f.large": Fraction(1, 8), "g6f.xlarge": Fraction(1, 8), "g6f.2xlarge": Fraction(1, 4),
             "g6f.4xlarge": Fraction(1, 2), "gr6f.4xlarge": Fraction(1, 2)}


def test_the_catalog_has_exactly_karpenters_rows():
    assert set(catalog.INSTANCE_TYPES) == set(KARPENTER)


@pytest.mark.parametrize("name", sorted(KARPENTER))
def test_figures_are_karpenters(name):
    vcpu, memory_mib, ec2_gpus, arch, gpu, _ = KARPENTER[name]
    it = catalog.INSTANCE_TYPES[name]
    assert (it.vcpu, it.memory_gib * 1024, it.ec2_gpu_count, it.k8s_arch) == (vcpu, memory_mib, ec2_gpus, arch)
    assert it.gpu.name.startswith(GPU_NAMES[gpu])
    assert it.fraction == FRACTIONS.get(name)
    assert it.gpu_count == (1 if name in FRACTIONS else ec2_gpus)  # a vGPU node advertises one nvidia.com/gpu


@pytest.mark.parametrize("name", sorted(n for n, row in KARPENTER.items() if row[5] is not None))
def test_prices_are_karpenters_rounded_to_the_cent(name):
    assert catalog.INSTANCE_TYPES[name].on_demand_usd_per_hour == pytest.approx(KARPENTER[name][5], abs=0.0051)


def test_the_one_price_karpenter_lacks_is_an_estimate_between_its_neighbours():
    """p5e.48xlarge is not in Karpenter's us-east-1 table: the catalog's estimate lies between the H100 and the
    H200 (p5en) eight-GPU types."""
    assert KARPENTER["p5e.48xlarge"][5] is None
    assert KARPENTER["p5.48xlarge"][5] < catalog.INSTANCE_TYPES["p5e.48xlarge"].on_demand_usd_per_hour \
        < KARPENTER["p5en.48xlarge"][5]


# Memory per GPU as NVIDIA's product pages and datasheets state it (GB): the DRA driver's whole-GPU capacity,
# the advisor's memory fit and the fleet figures read it. The MIG models by facts name (tests/facts.py).
GPU_MEMORY_GB = {"A100-40GB": 40, "A100-80GB": 80, "H100-80GB": 80, "H200-141GB": 141, "B200": 180, "B300": 288,
                 "GB200": 186, "RTX-PRO-6000": 96}
WHOLE_GPU_MEMORY_GB = {"A10G": 24, "L4": 24, "L40S": 48, "T4": 16, "T4G": 16}


def test_every_gpu_models_memory_is_nvidias():
    from facts import model_of

    got = {gpu: model_of(gpu).memory_gib for gpu in GPU_MEMORY_GB}
    got |= {name: catalog.GPU_MODELS[name].memory_gib for name in WHOLE_GPU_MEMORY_GB}
    assert got == GPU_MEMORY_GB | WHOLE_GPU_MEMORY_GB
    assert len(catalog.GPU_MODELS) == len(got)  # every model is held here


@pytest.mark.parametrize("name", sorted(KARPENTER))
def test_only_g7e_carries_the_unconfirmed_mig_warning(name):
    """docs/facts.md §7: AWS has not confirmed MIG on g7e (every size): a warning naming the type; no other type
    gets one."""
    warning = catalog.mig_warning(catalog.INSTANCE_TYPES[name])
    if name.startswith("g7e."):
        assert warning.startswith(f"MIG on {name}: ") and "AWS has not confirmed MIG on g7e" in warning
    else:
        assert warning is None
