"""MIG placement rules: can a set of GPU instances live on one GPU, and every way they can.

A profile occupies `memory_slices` contiguous memory slices starting at one of its allowed
placements; instances may not overlap; compute slices sum to at most the GPU's compute slices (7 on
A100/H100/H200/Blackwell, 4 on RTX PRO 6000); no profile exceeds its per-GPU maximum. These are the
rules `nvidia-smi mig -cgi` enforces (docs/facts.md §2, 7); the geometry comes from the GPU model.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Mapping

from .catalog import GpuModel
from .errors import as_yaml

Placement = tuple[tuple[str, int], ...]  # ((profile, start memory slice), ...)


def why_not(model: GpuModel, counts: Mapping[str, int]) -> str | None:
    """None when `counts` (profile -> instances) fits one GPU of `model`, else the reason in words."""
    if not model.mig_capable:
        return f"{model.name} does not support MIG"
    wanted = {p: n for p, n in counts.items() if n}
    for name, n in wanted.items():
        prof = model.profile(name)
        if prof is None:
            return f"{model.name} has no MIG profile {name!r} (it has: {', '.join(model.profile_names)})"
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            return f"count of {name} must be a non-negative integer, got {as_yaml(n)}"
    compute = sum(model.require(p).compute * n for p, n in wanted.items())
    if compute > model.compute_slices:
        parts = " + ".join(f"{n} x {p}" for p, n in wanted.items())
        return f"{parts} need {compute} compute slices; a GPU has {model.compute_slices} ({model.name})"
    memory = sum(model.require(p).memory_slices * n for p, n in wanted.items())
    if memory > model.memory_slices:
        parts = " + ".join(f"{n} x {p}" for p, n in wanted.items())
        return f"{parts} need {memory} memory slices; a GPU has {model.memory_slices} ({model.name})"
    for name, n in wanted.items():
        prof = model.require(name)
        if n > prof.max_count:
            return f"{n} x {name} exceeds its maximum of {prof.max_count} per GPU"
    if place(model, wanted) is None:
        parts = " + ".join(f"{n} x {p}" for p, n in wanted.items())
        return (f"{parts} cannot be placed without overlap at the allowed start slices "
                + "; ".join(f"{p} at {as_yaml(model.require(p).placements)}" for p in wanted))
    return None


def place(model: GpuModel, counts: Mapping[str, int]) -> Placement | None:
    """One valid placement of `counts` on a GPU of `model`, or None if there is none."""
    key = tuple(sorted((p, n) for p, n in counts.items() if n))
    for config in _configs_by_counts(model).get(key, ()):
        return config
    return None


def valid_configs(model: GpuModel) -> list[dict[str, int]]:
    """Every distinct profile-count combination one GPU of `model` can hold (incl. the empty one)."""
    return [dict(k) for k in _configs_by_counts(model)]


def maximal_configs(model: GpuModel) -> list[dict[str, int]]:
    """Valid combinations to which no further instance can be added (the ones worth using)."""
    configs = _configs_by_counts(model)
    out = []
    for key in configs:
        counts = dict(key)
        if not any(tuple(sorted({**counts, p.name: counts.get(p.name, 0) + 1}.items())) in configs
                   for p in model.profiles):
            out.append(counts)
    return out


@lru_cache(maxsize=None)
def _configs_by_counts(model: GpuModel) -> dict[tuple[tuple[str, int], ...], tuple[Placement, ...]]:
    """Enumerate placements by a left-to-right walk over the GPU's memory slices."""
    found: dict[tuple[tuple[str, int], ...], list[Placement]] = {}
    profiles = model.profiles
    memory_slices, compute_slices = model.memory_slices, model.compute_slices

    def walk(slot: int, compute: int, chosen: list[tuple[str, int]]) -> None:
        if slot >= memory_slices:
            counts: dict[str, int] = {}
            for name, _ in chosen:
                counts[name] = counts.get(name, 0) + 1
            if all(counts[p.name] <= p.max_count for p in profiles if p.name in counts):
                found.setdefault(tuple(sorted(counts.items())), []).append(tuple(chosen))
            return
        walk(slot + 1, compute, chosen)  # leave this memory slice unused
        for p in profiles:
            if slot in p.placements and slot + p.memory_slices <= memory_slices \
                    and compute + p.compute <= compute_slices:
                chosen.append((p.name, slot))
                walk(slot + p.memory_slices, compute + p.compute, chosen)
                chosen.pop()

    walk(0, 0, [])
    return {k: tuple(v) for k, v in found.items()}
