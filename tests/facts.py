"""FACTS 2 written out by hand: the expected values every GPU test compares the catalog with."""
from __future__ import annotations

from typing import NamedTuple

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


def model_of(gpu: str) -> catalog.GpuModel:
    return next(m for m in catalog.GPU_MODELS.values() if PCI_IDS[gpu] in m.pci_device_ids)
