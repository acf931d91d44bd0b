"""Placement rules against an independent brute force over the facts table (tests/facts.py, from docs/facts.md §2 and §7) (not over the catalog).

`brute_fits` tries every choice of distinct start slices for every instance; it shares no code with
`gpu_slicing.placement`, so agreement means the rules, not one implementation, are right.
"""
from __future__ import annotations

import itertools
from functools import lru_cache

import pytest

from gpu_slicing import catalog, placement
from facts import FACTS_PROFILES, GEOMETRY, PCI_IDS, Shape, model_of


def brute_fits(gpu: str, counts: dict[str, int]) -> bool:
    """Can one GPU hold `counts`? Exhaustive over start slices; docs/facts.md §2 rules only."""
    return _brute(gpu, tuple(sorted((p, n) for p, n in counts.items() if n)))


@lru_cache(maxsize=None)
def _brute(gpu: str, counts: tuple[tuple[str, int], ...]) -> bool:
    shapes: dict[str, Shape] = FACTS_PROFILES[gpu]
    compute_slices, memory_slices = GEOMETRY[gpu]
    if any(p not in shapes or n > shapes[p].max_count for p, n in counts):
        return False
    if sum(shapes[p].compute * n for p, n in counts) > compute_slices:
        return False
    choices = [itertools.combinations(shapes[p].placements, n) for p, n in counts]
    for starts in itertools.product(*choices):
        used = 0
        ok = True
        for (p, _), group in zip(counts, starts):
            for s in group:
                mask = ((1 << shapes[p].memory_slices) - 1) << s
                if used & mask or s + shapes[p].memory_slices > memory_slices:
                    ok = False
                    break
                used |= mask
            if not ok:
                break
        if ok:
            return True
    return False


def _every_count_vector(gpu: str):
    shapes = FACTS_PROFILES[gpu]
    names = list(shapes)
    for counts in itertools.product(*(range(shapes[p].max_count + 1) for p in names)):
        yield {p: n for p, n in zip(names, counts) if n}


@pytest.mark.parametrize("gpu", ["A100-40GB", "H100-80GB", "B200", "RTX-PRO-6000"])
def test_why_not_agrees_with_brute_force_everywhere(gpu):
    """Every count vector within the per-profile maxima: same verdict both ways."""
    model = model_of(gpu)
    for counts in _every_count_vector(gpu):
        assert (placement.why_not(model, counts) is None) == brute_fits(gpu, counts), counts


@pytest.mark.parametrize("gpu", sorted(PCI_IDS))
def test_valid_configs_are_exactly_the_placeable_ones(gpu):
    """(On RTX PRO 6000 over its plain profiles: the facts give no shapes of its own to the attribute variants.)"""
    model = model_of(gpu)
    expected = {tuple(sorted(c.items())) for c in _every_count_vector(gpu) if brute_fits(gpu, c)}
    got = {tuple(sorted(c.items())) for c in placement.valid_configs(model) if set(c) <= set(FACTS_PROFILES[gpu])}
    assert got == expected


def test_maximal_configs_cannot_take_one_more_instance():
    gpu = "A100-40GB"
    model = model_of(gpu)
    maximal = placement.maximal_configs(model)
    assert {"1g.5gb": 7} in maximal and {"1g.5gb": 2, "2g.10gb": 1, "3g.20gb": 1} in maximal
    for counts in maximal:
        assert brute_fits(gpu, counts)
        assert not any(brute_fits(gpu, {**counts, p: counts.get(p, 0) + 1}) for p in FACTS_PROFILES[gpu])


def test_place_returns_a_non_overlapping_placement_at_allowed_starts():
    shapes = FACTS_PROFILES["A100-40GB"]
    config = placement.place(catalog.A100_40GB, {"4g.20gb": 1, "2g.10gb": 1, "1g.5gb": 1})
    slices = [s for p, start in config for s in range(start, start + shapes[p].memory_slices)]
    assert all(start in shapes[p].placements for p, start in config)
    assert len(slices) == len(set(slices)) and max(slices) < GEOMETRY["A100-40GB"][1]
    assert placement.place(catalog.A100_40GB, {"4g.20gb": 2}) is None


@pytest.mark.parametrize("counts, reason", [
    ({"4g.20gb": 2}, "2 x 4g.20gb need 8 compute slices; a GPU has 7"),
    ({"1g.10gb": 4, "3g.20gb": 1}, "need 12 memory slices; a GPU has 8"),
    ({"1g.5gb+me": 2}, "2 x 1g.5gb+me exceeds its maximum of 1 per GPU"),
    ({"1g.18gb": 1}, "has no MIG profile '1g.18gb'"),
])
def test_why_not_names_the_broken_rule(counts, reason):
    assert reason in placement.why_not(catalog.A100_40GB, counts)


def test_no_mig_on_a10g():
    assert "does not support MIG" in placement.why_not(catalog.A10G, {"1g.5gb": 1})


@pytest.mark.parametrize("counts, reason", [
    ({"4g.96gb": 1, "1g.24gb": 1}, "need 5 compute slices; a GPU has 4"),
    ({"2g.48gb": 3}, "need 6 compute slices; a GPU has 4"),
    ({"1g.24gb+me.all": 2}, "exceeds its maximum of 1 per GPU"),
    ({"3g.90gb": 1}, "has no MIG profile '3g.90gb'"),
])
def test_rtx_pro_6000_has_four_slices(counts, reason):
    """docs/facts.md §7: 4 compute and 4 memory slices, not 7/8; no 3g profile."""
    assert reason in placement.why_not(model_of("RTX-PRO-6000"), counts)
    assert placement.why_not(model_of("RTX-PRO-6000"), {"1g.24gb": 2, "2g.48gb": 1}) is None


def test_b200_holds_the_hopper_shapes():
    b200 = model_of("B200")
    assert placement.why_not(b200, {"1g.23gb": 7}) is None
    assert placement.why_not(b200, {"3g.90gb": 1, "4g.90gb": 1}) is None
    assert "need 8 compute slices; a GPU has 7" in placement.why_not(b200, {"4g.90gb": 2})


@pytest.mark.parametrize("counts, reason", [
    # the profile names of docs/facts.md §2 for A100-40GB, in its order
    ({"1g.18gb": 1}, "A100-SXM4-40GB has no MIG profile '1g.18gb' (it has: 1g.5gb, 1g.5gb+me, 1g.10gb, 2g.10gb, "
                     "3g.20gb, 4g.20gb, 7g.40gb)"),
    ({"1g.5gb": -1}, "count of 1g.5gb must be a non-negative integer, got -1"),
    ({"1g.5gb": True}, "count of 1g.5gb must be a non-negative integer, got true"),
    ({"2g.10gb": 1, "1g.5gb": 1.5}, "count of 1g.5gb must be a non-negative integer, got 1.5"),
    # 4 + 3 + 1 compute slices of 7; the parts in the order given
    ({"4g.20gb": 1, "3g.20gb": 1, "1g.5gb": 1, "2g.10gb": 0},
     "1 x 4g.20gb + 1 x 3g.20gb + 1 x 1g.5gb need 8 compute slices; a GPU has 7 (A100-SXM4-40GB)"),
    # 7 compute slices fit, but 4 x 2 + 4 memory slices do not fit 8
    ({"1g.10gb": 4, "3g.20gb": 1}, "4 x 1g.10gb + 1 x 3g.20gb need 12 memory slices; a GPU has 8 (A100-SXM4-40GB)"),
    ({"1g.5gb+me": 2}, "2 x 1g.5gb+me exceeds its maximum of 1 per GPU"),
    ({"1g.5gb": 8}, "8 x 1g.5gb need 8 compute slices; a GPU has 7 (A100-SXM4-40GB)"),
    ({"1g.5gb": 7, "1g.5gb+me": 0}, None),
    ({"3g.20gb": 2}, None),
    ({}, None),
])
def test_why_not_in_full(counts, reason):
    assert placement.why_not(catalog.A100_40GB, counts) == reason


def test_why_not_names_overlap_at_the_allowed_starts():
    """A made-up GPU of 6 memory and 6 compute slices whose 2-slice profile may start only at 1: two of them fit
    the slice counts but overlap; one 2-slice and two 1-slice instances fit (1-2 and 0, 3)."""
    gpu = catalog.GpuModel("Toy", 8, profiles=(catalog.MigProfile("1g.2gb", 1, 1, 4, (0, 1, 2, 3)),
                                               catalog.MigProfile("2g.4gb", 2, 2, 2, (1,))),
                           compute_slices=6, memory_slices=6)
    assert placement.why_not(gpu, {"2g.4gb": 2}) == (
        "2 x 2g.4gb cannot be placed without overlap at the allowed start slices 2g.4gb at [1]")
    assert placement.why_not(gpu, {"1g.2gb": 1, "2g.4gb": 2}) == (
        "1 x 1g.2gb + 2 x 2g.4gb cannot be placed without overlap at the allowed start slices 1g.2gb at [0, 1, 2, 3]; "
        "2g.4gb at [1]")
    assert placement.why_not(gpu, {"2g.4gb": 1, "1g.2gb": 2}) is None
    assert placement.place(gpu, {"2g.4gb": 1, "1g.2gb": 2}) == (("1g.2gb", 0), ("2g.4gb", 1), ("1g.2gb", 3))
    assert placement.why_not(catalog.GpuModel("Plain", 8), {}) == "Plain does not support MIG"
