"""What one GPU node advertises to Kubernetes: the device plugin's resources for an instance type, MIG
layout, strategy and sharing (docs/facts.md §1.6: all-balanced p4d is 16/8/8 and nvidia.com/gpu 0). Exact, and the
base of the capacity plan, the NodeOverlays and the policy rules."""
from __future__ import annotations

from typing import Mapping

from .catalog import InstanceType, MigLayout
from .errors import ConfigError
from .layouts import check_layout, lookup_instance
from .sharing import WHOLE_GPU, Sharing, check_sharing

STRATEGIES = ("none", "single", "mixed")


def node_resources(instance_type: str | InstanceType, layout: MigLayout | None, strategy: str,
                   sharing: Sharing | None = None, *, key: str = "node") -> dict[str, int]:
    """Allocatable GPU resources of one node, as the device plugin advertises them.

    mixed: `nvidia.com/mig-<profile>` per profile plus `nvidia.com/gpu` for the GPUs with MIG off (kept
    at 0, because pods asking for it stay Pending). single: every slice is `nvidia.com/gpu`, so every
    GPU must carry the same one profile. none: whole GPUs; MIG must be off. Time-slicing multiplies the
    shared resources by its replicas (and renames them `<resource>.shared` under renameByDefault).
    """
    return advertise(instance_type, layout, strategy, sharing, key=key)[0]


def advertise(instance_type: str | InstanceType, layout: MigLayout | None, strategy: str,
              sharing: Sharing | None = None, *, key: str = "node") -> tuple[dict[str, int], Sharing | None]:
    """`node_resources` and the sharing resolved against this node (its `resources` filled in)."""
    it = lookup_instance(instance_type, f"{key}.instanceType")
    if strategy not in STRATEGIES:
        raise ConfigError(f"{key}.strategy", strategy, f"one of {', '.join(STRATEGIES)}")
    if layout is not None:
        check_layout(layout, it, f"{key}.migLayout")
    per_gpu: list[Mapping[str, int] | None] = layout.per_gpu(it.gpu_count) if layout is not None \
        else [None] * it.gpu_count
    base = _strategy_resources(it, layout, per_gpu, strategy, key)
    if sharing is None:
        return base, None
    shared = check_sharing(sharing, base, layout is not None and layout.mig_enabled, f"{key}.sharing")
    out: dict[str, int] = {}
    for resource, n in base.items():
        if shared.shares(resource):
            out[shared.advertised_as(resource)] = n * shared.replicas
        else:
            out[resource] = n
    return out, shared


def _strategy_resources(it: InstanceType, layout: MigLayout | None, per_gpu: list[Mapping[str, int] | None],
                        strategy: str, key: str) -> dict[str, int]:
    whole = sum(1 for g in per_gpu if g is None)
    if strategy == "none":
        if whole != it.gpu_count:
            raise ConfigError(f"{key}.migLayout", layout.name if layout else None,
                              "all-disabled: the none strategy advertises whole GPUs and ignores MIG slices")
        return {WHOLE_GPU: whole}
    if strategy == "single":
        if whole == it.gpu_count:
            return {WHOLE_GPU: whole}
        shapes = {tuple(sorted(g.items())) if g is not None else None for g in per_gpu}
        shape = next(iter(shapes))
        if len(shapes) > 1 or shape is None or len(shape) != 1:
            raise ConfigError(f"{key}.migLayout", layout.name if layout else None,
                              "a layout with one and the same profile on every GPU (all-1g.5gb, all-3g.20gb, ...): "
                              f"the single strategy advertises every slice as {WHOLE_GPU}, so a mixed layout "
                              f"({_describe(per_gpu)}) needs the mixed strategy")
        return {WHOLE_GPU: shape[0][1] * it.gpu_count}
    counts: dict[str, int] = {}
    for profile in it.gpu.profiles:
        n = sum(g.get(profile.name, 0) for g in per_gpu if g is not None)
        if n:
            counts[profile.resource_name] = n
    counts[WHOLE_GPU] = whole
    return counts


def _describe(per_gpu: list[Mapping[str, int] | None]) -> str:
    """`GPU 0-3: 1g.5gb x7; GPU 4-7: MIG off`: a compact, per-GPU view for error messages."""
    runs: list[tuple[int, int, str]] = []
    for i, g in enumerate(per_gpu):
        text = "MIG off" if g is None else (" + ".join(f"{p} x{n}" for p, n in sorted(g.items())) or "no instances")
        if runs and runs[-1][2] == text:
            runs[-1] = (runs[-1][0], i, text)
        else:
            runs.append((i, i, text))
    return "; ".join(f"GPU {a}{'-' + str(b) if b != a else ''}: {t}" for a, b, t in runs)


def compute_slices_per_gpu(instance_type: str | InstanceType, layout: MigLayout) -> list[int | None]:
    """Compute slices (of the GPU's 7, or 4) each GPU's MIG instances use; None where MIG is off. Idle
    slices are paid for."""
    it = lookup_instance(instance_type, "instanceType")
    out: list[int | None] = []
    for g in layout.per_gpu(it.gpu_count):
        out.append(None if g is None else sum(it.gpu.require(p).compute * n for p, n in g.items()))
    return out
