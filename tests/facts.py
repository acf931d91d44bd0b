"""docs/facts.md §2 and 7 written out by hand: the expected values every GPU test compares the catalog with."""
from __future__ import annotations

from typing import NamedTuple

from gpu_slicing import catalog


class Shape(NamedTuple):
    compute: int
    memory_slices: int
    max_count: int
    placements: tuple[int, ...]


# docs/facts.md §2, row by row: the shape of each profile and its name on each GPU.
_SHAPES = (Shape(1, 1, 7, (0, 1, 2, 3, 4, 5, 6)), Shape(1, 1, 1, (0, 1, 2, 3, 4, 5, 6)), Shape(1, 2, 4, (0, 2, 4, 6)),
           Shape(2, 2, 3, (0, 2, 4)), Shape(3, 4, 2, (0, 4)), Shape(4, 4, 1, (0,)), Shape(7, 8, 1, (0,)))
_NAMES = {
    "A100-40GB": ("1g.5gb", "1g.5gb+me", "1g.10gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb"),
    "A100-80GB": ("1g.10gb", "1g.10gb+me", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"),
    "H100-80GB": ("1g.10gb", "1g.10gb+me", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"),
    "H200-141GB": ("1g.18gb", "1g.18gb+me", "1g.35gb", "2g.35gb", "3g.71gb", "4g.71gb", "7g.141gb"),
    # docs/facts.md §7: Blackwell uses the Hopper shapes (placements inferred).
    "B200": ("1g.23gb", "1g.23gb+me", "1g.45gb", "2g.45gb", "3g.90gb", "4g.90gb", "7g.180gb"),
    "B300": ("1g.34gb", "1g.34gb+me", "1g.67gb", "2g.67gb", "3g.135gb", "4g.135gb", "7g.269gb"),
    "GB200": ("1g.23gb", "1g.23gb+me", "1g.47gb", "2g.47gb", "3g.93gb", "4g.93gb", "7g.186gb"),
}
FACTS_PROFILES: dict[str, dict[str, Shape]] = {gpu: dict(zip(names, _SHAPES)) for gpu, names in _NAMES.items()}
# docs/facts.md §7: RTX PRO 6000 Blackwell SE, 4 compute and 4 memory slices; its plain profiles (the attribute
# variants +gfx, +me, +me.all, -me come on top, with the same slices).
FACTS_PROFILES["RTX-PRO-6000"] = {"1g.24gb": Shape(1, 1, 4, (0, 1, 2, 3)), "2g.48gb": Shape(2, 2, 2, (0, 2)),
                                  "4g.96gb": Shape(4, 4, 1, (0,))}
RTX_VARIANTS = ("1g.24gb+gfx", "1g.24gb+me", "1g.24gb+me.all", "1g.24gb-me",
                "2g.48gb+gfx", "2g.48gb+me.all", "2g.48gb-me", "4g.96gb+gfx")
# (compute slices, memory slices) per GPU.
GEOMETRY = {gpu: (4, 4) if gpu == "RTX-PRO-6000" else (7, 8) for gpu in FACTS_PROFILES}
# instance type -> (GPU, GPUs per node); docs/facts.md §2.
FACTS_GPUS = {"p4d.24xlarge": ("A100-40GB", 8), "p4de.24xlarge": ("A100-80GB", 8), "p5.48xlarge": ("H100-80GB", 8),
              "p5e.48xlarge": ("H200-141GB", 8), "p5en.48xlarge": ("H200-141GB", 8),
              # docs/facts.md §7
              "p5.4xlarge": ("H100-80GB", 1), "p6-b200.48xlarge": ("B200", 8), "p6-b300.48xlarge": ("B300", 8),
              "g7e.2xlarge": ("RTX-PRO-6000", 1), "g7e.4xlarge": ("RTX-PRO-6000", 1),
              "g7e.8xlarge": ("RTX-PRO-6000", 1), "g7e.12xlarge": ("RTX-PRO-6000", 2),
              "g7e.24xlarge": ("RTX-PRO-6000", 4), "g7e.48xlarge": ("RTX-PRO-6000", 8)}
PCI_IDS = {"A100-40GB": "0x20B0", "A100-80GB": "0x20B2", "H100-80GB": "0x2330", "H200-141GB": "0x2335",
           "B200": "0x2901", "B300": "0x3182", "GB200": "0x2941", "RTX-PRO-6000": "0x2BB5"}
BALANCED = {"A100-40GB": {"1g.5gb": 2, "2g.10gb": 1, "3g.20gb": 1},
            "A100-80GB": {"1g.10gb": 2, "2g.20gb": 1, "3g.40gb": 1},  # A100-40GB shapes, doubled memory
            "H100-80GB": {"1g.10gb": 2, "2g.20gb": 1, "3g.40gb": 1},
            "H200-141GB": {"1g.18gb": 2, "2g.35gb": 1, "3g.71gb": 1},
            "B200": {"1g.23gb": 2, "2g.45gb": 1, "3g.90gb": 1},
            "B300": {"1g.34gb": 2, "2g.67gb": 1, "3g.135gb": 1},
            "GB200": {"1g.23gb": 2, "2g.47gb": 1, "3g.93gb": 1},
            "RTX-PRO-6000": {"1g.24gb": 2, "2g.48gb": 1}}
# Placements not read off hardware (docs/facts.md §7: UNCONFIRMED).
INFERRED = {"B200", "B300", "GB200", "RTX-PRO-6000"}
# Driver minimums (docs/facts.md §7); the AMIs ship R580.
# docs/facts.md §7: RTX PRO 6000 MIG needs "R580", any R580 driver: 580.0.0. Other models: any driver the AMI has (None).
MIN_DRIVER = {"B200": "570.133.20", "GB200": "570.133.20", "B300": "580.82.07", "RTX-PRO-6000": "580.0.0"}
# Fractional L4 vGPU types: EC2 reports 0 GPUs, the node advertises 1 nvidia.com/gpu (docs/facts.md §7).
FRACTIONAL = ("g6f.large", "g6f.xlarge", "g6f.2xlarge", "g6f.4xlarge", "gr6f.4xlarge")
# Whole-GPU-only families (docs/facts.md §7) and their architecture.
NO_MIG_FAMILIES = {"g4dn": "amd64", "g5g": "arm64", "gr6": "amd64"}


def model_of(gpu: str) -> catalog.GpuModel:
    return next(m for m in catalog.GPU_MODELS.values() if PCI_IDS[gpu] in m.pci_device_ids)
