"""MIG layout advisor: expected node counts are worked out by hand from docs/facts.md §2 and 7 (7 compute and
8 memory slices per GPU on A100/H100/B200, 4 and 4 on RTX PRO 6000; GPUs per node), never copied from
the advisor's output."""
from __future__ import annotations

import copy
import json
import re
from functools import lru_cache
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from gpu_slicing import advisor, catalog, placement
from gpu_slicing.stack import parse_config
from gpu_slicing.errors import ConfigError
from gpu_slicing.pools import resolve_pools
from gpu_slicing.validate import capacity_plan

ROOT = Path(__file__).resolve().parents[1]
P4D, P5 = "p4d.24xlarge", "p5.48xlarge"
B200, G7E, P5_ONE = "p6-b200.48xlarge", "g7e.48xlarge", "p5.4xlarge"
LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
ISSUE_DEMAND = {"1g.5gb": 40, "2g.10gb": 10, "3g.20gb": 6}


def covered(plan: advisor.Plan) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in plan.pools:
        for q, n in p.per_node.items():
            out[q] = out.get(q, 0) + n * p.nodes
    return out


def assert_valid(plan: advisor.Plan) -> None:
    """Every per-GPU group places under the rules, every GPU is in one group, and the demand is covered."""
    it = catalog.INSTANCE_TYPES[plan.instance_type]
    for p in plan.pools:
        devices = sorted(d for g in p.groups for d in g.devices)
        assert devices == list(range(it.gpu_count)), p
        for g in p.groups:
            assert placement.why_not(it.gpu, g.profiles) is None, (p.layout, g)
        if p.named:
            assert p.layout in catalog.named_layouts(it.gpu)
        else:
            assert LABEL_VALUE.match(p.layout) and len(p.layout) <= 63 and not p.layout.startswith("all-")
    have = covered(plan)
    assert all(have.get(q, 0) >= n for q, n in plan.demand.items()), (have, plan.demand)
    per_pool = {}
    for w in plan.workloads:
        per_pool[(w["pool"], w["profile"])] = per_pool.get((w["pool"], w["profile"]), 0) + w["replicas"]
    for (pool, q), n in per_pool.items():
        assert n <= next(p for p in plan.pools if p.name == pool).capacity(q)
    assert sum(w["replicas"] for w in plan.workloads) == sum(plan.demand.values())


# --- configurations come from the placement rules -------------------------------------------------

def test_candidate_configs_are_the_maximal_placements_of_the_demanded_profiles() -> None:
    # By hand on A100: 7 compute / 8 memory slices; 1g=1/1, 2g=2/2 (starts 0,2,4), 3g=3/4 (starts 0,4).
    got = {tuple(c) for c in advisor.candidate_configs(catalog.A100_40GB, ["1g.5gb", "2g.10gb", "3g.20gb"])}
    want = {(("1g.5gb", 7),), (("1g.5gb", 5), ("2g.10gb", 1)), (("1g.5gb", 3), ("2g.10gb", 2)),
            (("1g.5gb", 1), ("2g.10gb", 3)), (("1g.5gb", 4), ("3g.20gb", 1)),
            (("1g.5gb", 2), ("2g.10gb", 1), ("3g.20gb", 1)), (("2g.10gb", 2), ("3g.20gb", 1)),
            (("3g.20gb", 2),)}
    assert got == want
    # 4g only starts at 0, so it pairs with one 3g (at 4) and never with a second 4g.
    assert {tuple(c) for c in advisor.candidate_configs(catalog.A100_40GB, ["3g.20gb", "4g.20gb"])} == {
        (("3g.20gb", 1), ("4g.20gb", 1)), (("3g.20gb", 2),)}
    assert advisor.candidate_configs(catalog.H100_80GB, ["7g.80gb"]) == [(("7g.80gb", 1),)]


@lru_cache(maxsize=None)
def brute_force_gpus(model_name: str, demand: tuple[tuple[str, int], ...]) -> int:
    """Fewest GPUs by exhaustive recursion over every valid per-GPU configuration (no ILP)."""
    names = tuple(p for p, _ in demand)
    return _fewest_gpus(_effects(model_name, names), tuple(n for _, n in demand))


@lru_cache(maxsize=None)
def _effects(model_name: str, names: tuple[str, ...]) -> tuple[tuple[int, ...], ...]:
    """Every valid per-GPU configuration of the model as what it does to the demand: its counts of the
    demanded profiles. Configurations that differ only in other profiles leave the same demand behind, so
    the recursion tries each effect once instead of each configuration (same search, same minimum)."""
    model = catalog.GPU_MODELS[model_name]
    return tuple(sorted({tuple(c.get(p, 0) for p in names) for c in placement.valid_configs(model)}))


@lru_cache(maxsize=None)
def _fewest_gpus(effects: tuple[tuple[int, ...], ...], left: tuple[int, ...]) -> int:
    if not any(left):
        return 0
    best = None
    for c in effects:
        if any(k and n for k, n in zip(c, left)):
            cand = 1 + _fewest_gpus(effects, tuple(max(0, n - k) for n, k in zip(left, c)))
            best = cand if best is None else min(best, cand)
    return best


# Profile triples to demand, by name: every geometry in the catalog (7/8 and 4/4 slices, 1 and 8 GPUs).
_PICKS = [(P4D, ("1g.5gb", "2g.10gb", "3g.20gb")), (P4D, ("1g.5gb", "3g.20gb", "7g.40gb")),
          (P5, ("1g.10gb+me", "1g.20gb", "4g.40gb")), (P5, ("1g.10gb", "2g.20gb", "3g.40gb")),
          (B200, ("1g.23gb", "2g.45gb", "3g.90gb")), (B200, ("1g.45gb", "4g.90gb", "7g.180gb")),
          (G7E, ("1g.24gb", "2g.48gb", "4g.96gb")), (G7E, ("1g.24gb+me.all", "2g.48gb-me", "1g.24gb+gfx")),
          (P5_ONE, ("1g.10gb", "2g.20gb", "3g.40gb"))]


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_PICKS), st.lists(st.integers(0, 9), min_size=3, max_size=3))
def test_lower_bound_equals_brute_force_and_plan_is_valid(pick: tuple, counts: list[int]) -> None:
    itype, names = pick
    it = catalog.INSTANCE_TYPES[itype]
    demand = {name: n for name, n in zip(names, counts) if n}
    if not demand:
        return
    plan = advisor.advise(itype, demand)
    gpus = brute_force_gpus(it.gpu.name, tuple(sorted(demand.items())))
    assert plan.lower_bound_gpus == gpus
    assert plan.lower_bound == -(-gpus // it.gpu_count)
    assert_valid(plan)
    assert plan.lower_bound <= plan.total_nodes <= plan.lower_bound + 1
    assert plan.best_naive is None or plan.total_nodes <= plan.best_naive


# --- known optima, by hand ------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("itype, demand, gpus, nodes", [
    # RTX PRO 6000: 4 x 1g.24gb per GPU, 8 GPUs: 32 fill one node, 33 need a second.
    (G7E, {"1g.24gb": 32}, 8, 1), (G7E, {"1g.24gb": 33}, 9, 2),
    # 10 x 2g + 12 x 1g = 32 compute slices = 8 GPUs of 4: 5 GPUs of 2 x 2g and 3 of 4 x 1g.
    (G7E, {"2g.48gb": 10, "1g.24gb": 12}, 8, 1),
    # B200: two 3g.90gb take all 8 memory slices of a GPU; one more 1g.23gb needs a ninth GPU.
    (B200, {"3g.90gb": 16}, 8, 1), (B200, {"3g.90gb": 16, "1g.23gb": 1}, 9, 2),
    # B200 all-balanced exactly: 16 x 1g, 8 x 2g, 8 x 3g.
    (B200, {"1g.23gb": 16, "2g.45gb": 8, "3g.90gb": 8}, 8, 1),
    # p5.4xlarge has 1 H100: 7 x 1g.10gb use all 7 compute slices; a 3g.40gb needs a second node.
    (P5_ONE, {"1g.10gb": 7, "3g.40gb": 1}, 2, 2),
])
def test_known_optima_for_the_2026_fleet(itype, demand, gpus, nodes) -> None:
    plan = advisor.advise(itype, demand)
    assert (plan.lower_bound_gpus, plan.lower_bound, plan.total_nodes) == (gpus, nodes, nodes)
    assert_valid(plan)


@pytest.mark.slow  # solves several demands (~1.5 s)
def test_report_cautions_where_mig_or_placements_are_unconfirmed() -> None:
    g7e = advisor.format_report(advisor.advise(G7E, {"1g.24gb": 4}))
    assert "Caution: MIG on g7e.48xlarge: AWS has not confirmed MIG on g7e" in g7e
    assert "Caution: RTX-PRO-6000-Blackwell-SE-96GB MIG placements are inferred" in g7e
    b200 = advisor.format_report(advisor.advise(B200, {"1g.23gb": 4}))
    assert "MIG placements are inferred" in b200 and "AWS has not confirmed" not in b200
    assert "Caution" not in advisor.format_report(advisor.advise(P5, {"1g.10gb": 4}))


@pytest.mark.slow  # an exhaustive layout search: 0.6 s
def test_rtx_pro_6000_naive_balanced_has_no_3g() -> None:
    plan = advisor.advise(G7E, {"1g.24gb": 16, "2g.48gb": 8})  # exactly all-balanced on 8 GPUs
    assert [(p.layout, p.nodes) for p in plan.pools] == [("all-balanced", 1)]
    assert plan.naive[0].total_nodes == 1

def test_guides_56_small_slices_fit_one_all_1g_node() -> None:
    # docs/facts.md §1.6: all-1g.5gb is 7 per GPU x 8 GPUs = 56; all-balanced gives 16 per node -> 4 nodes.
    plan = advisor.advise(P4D, {"1g.5gb": 56})
    assert (plan.total_nodes, plan.lower_bound, plan.gap) == (1, 1, 0)
    assert [(p.layout, p.nodes, p.named) for p in plan.pools] == [("all-1g.5gb", 1, True)]
    assert {n.strategy: n.total_nodes for n in plan.naive} == {
        "all-balanced": 4, "one pool per profile (all-1g.5gb)": 1}
    assert plan.cost_per_hour == 21.96
    assert "gpu-slicing:migLayouts" not in plan.stack_config()["config"]


def test_one_slice_past_a_node_needs_a_second() -> None:
    plan = advisor.advise(P4D, {"1g.5gb": 57})  # ceil(57 / 7) = 9 GPUs -> 2 nodes
    assert (plan.lower_bound_gpus, plan.lower_bound, plan.total_nodes) == (9, 2, 2)
    assert [(p.layout, p.nodes) for p in plan.pools] == [("all-1g.5gb", 2)]


def test_issue_mix_needs_two_nodes_where_naive_choices_need_three() -> None:
    # Compute: 40x1 + 10x2 + 6x3 = 78 slices > 11 GPUs x 7 = 77, so >= 12 GPUs = 2 nodes. Two nodes do it:
    # per node 3 x balanced + 2 x {1g:5, 2g:1} + 1 x {1g:7} = 23 x 1g, 5 x 2g, 3 x 3g in 6 GPUs.
    # all-balanced: 1g needs ceil(40/16) = 3 nodes; one pool per profile: 1 + 1 + 1 = 3 nodes.
    plan = advisor.advise(P4D, ISSUE_DEMAND)
    assert (plan.lower_bound_gpus, plan.lower_bound, plan.total_nodes, plan.gap) == (12, 2, 2, 0)
    assert [n.total_nodes for n in plan.naive] == [3, 3]
    assert plan.cost_per_hour == round(2 * 21.96, 2)
    assert_valid(plan)


def test_exact_all_balanced_demand_gets_the_named_layout() -> None:
    # 16 + 8x2 + 8x3 = 56 compute slices = one p4d exactly, so 1 node; several 8-GPU layouts do it,
    # and the advisor must prefer NVIDIA's name over an equivalent custom one.
    plan = advisor.advise(P4D, {"1g.5gb": 16, "2g.10gb": 8, "3g.20gb": 8})
    assert [(p.layout, p.nodes) for p in plan.pools] == [("all-balanced", 1)]
    assert plan.naive[0].total_nodes == 1


def test_h100_profiles_and_named_layout() -> None:
    plan = advisor.advise(P5, {"1g.10gb": 56})
    assert [(p.layout, p.nodes) for p in plan.pools] == [("all-1g.10gb", 1)]
    assert plan.cost_per_hour == 55.04


def test_layout_limit_trades_nodes_for_pools() -> None:
    # 15 x 7g + 1 x 1g = 16 GPUs -> lower bound 2 nodes. One pool of 2 would need 8 x 7g + 1 GPU of 1g
    # per node = 9 GPUs, so one layout costs 3 nodes (5 x 7g + 1 x 1g-GPU per node); two layouts reach 2:
    # all-7g.40gb (8 x 7g) and 7 x 7g + 1 GPU of 1g.
    one = advisor.advise(P4D, {"7g.40gb": 15, "1g.5gb": 1}, max_layouts=1)
    assert (one.total_nodes, one.lower_bound, one.gap, len(one.pools)) == (3, 2, 1, 1)
    two = advisor.advise(P4D, {"7g.40gb": 15, "1g.5gb": 1}, max_layouts=2)
    assert (two.total_nodes, two.gap) == (2, 0)
    assert sorted(p.per_node.get("7g.40gb", 0) for p in two.pools) == [7, 8]
    assert "all-7g.40gb" in two.layouts
    assert_valid(one)
    assert_valid(two)
    # The 15 x 7g do not fit one pool, so the workload is split and each part names its pool.
    parts = [w for w in two.workloads if w["profile"] == "7g.40gb"]
    assert sorted(w["replicas"] for w in parts) == [7, 8]
    assert {w["name"] for w in parts} == {f"slice-7g-40gb-{p.name}" for p in two.pools}


def test_pools_over_the_config_node_cap_are_split() -> None:
    plan = advisor.advise(P4D, {"7g.40gb": 1000})  # 1000 GPUs = 125 nodes; maxSize is at most 100
    assert [(p.layout, p.nodes) for p in plan.pools] == [("all-7g.40gb", 100), ("all-7g.40gb", 25)]
    assert (plan.total_nodes, plan.gap) == (125, 0)


@pytest.mark.slow
def test_custom_layout_names_are_deterministic_labels() -> None:
    """The same demand advises the same labels in every process (Python's `hash()` is salted per process),
    so re-running the advisor never renames a layout nodes already carry."""
    import os

    from conftest import printed_under_hash_seed

    a = advisor.advise(P4D, ISSUE_DEMAND)
    program = ("import sys; sys.path.insert(0, '.'); from gpu_slicing import advisor; "
               f"print(advisor.advise({P4D!r}, {ISSUE_DEMAND!r}).layouts)")
    other_seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"  # never this process's salt
    assert printed_under_hash_seed(program, other_seed) == str(a.layouts)
    custom = [p.layout for p in a.pools if not p.named]
    assert custom and all(n.startswith("advised-p4d-") for n in custom)


# --- bad input --------------------------------------------------------------------------------------

@pytest.mark.parametrize("itype, demand, kw, key, words", [
    (P5, {"1g.5gb": 4}, {}, "demand.1g.5gb", "a MIG profile of H100-80GB-HBM3"),
    (P4D, {"1g.5gb": 0}, {}, "demand", "at least one slice"),
    (P4D, {}, {}, "demand", "at least one slice"),
    (P4D, {"1g.5gb": -1}, {}, "demand.1g.5gb", "non-negative integer"),
    (P4D, {"1g.5gb": 2.5}, {}, "demand.1g.5gb", "non-negative integer"),
    ("g5.48xlarge", {"1g.5gb": 1}, {}, "instanceType", "MIG-capable"),
    ("p9.huge", {"1g.5gb": 1}, {}, "instanceType", "MIG-capable"),
    (P4D, {"1g.5gb": 57}, {"max_nodes": 1}, "maxNodes", "at least 2 nodes"),
    (P4D, {"1g.5gb": 1}, {"max_layouts": 0}, "maxLayouts", "integer >= 1"),
    (P4D, {"1g.5gb": 1}, {"price_per_node_hour": -3}, "pricePerNodeHour", "non-negative"),
])
def test_infeasible_or_bad_input_is_a_clear_error(itype, demand, kw, key, words) -> None:
    with pytest.raises(ConfigError) as e:
        advisor.advise(itype, demand, **kw)
    assert e.value.key == key and words in str(e.value)


def test_demand_file_keys_are_checked() -> None:
    spec = advisor.load_demand({"instanceType": P4D, "demand": {"1g.5gb": 3}, "maxLayouts": 2, "maxNodes": 4,
                                "pricePerNodeHour": 10})
    assert (spec.instance_type, dict(spec.slices), spec.max_layouts, spec.max_nodes) == (P4D, {"1g.5gb": 3}, 2, 4)
    assert advisor.advise_spec(spec).cost_per_hour == 10.0
    with pytest.raises(ConfigError, match="unknown key"):
        advisor.load_demand({"instanceType": P4D, "demand": {"1g.5gb": 3}, "maxNode": 4})
    with pytest.raises(ConfigError) as e:
        advisor.load_demand({"instanceType": P4D})
    assert e.value.key == "demand"


@pytest.mark.parametrize("raw, message", [
    ([P4D], "demand file: [p4d.24xlarge] is not valid: a mapping with instanceType and demand"),
    ({"instanceType": P4D, "demand": {"1g.5gb": 3}, "maxNode": 4},
     "maxNode: 4 is not valid: unknown key; known keys: instanceType, demand, pricePerNodeHour, maxLayouts, maxNodes"),
    ({"instanceType": P4D}, "demand: not set: a mapping of MIG profile to slice count, e.g. {1g.5gb: 40}"),
    ({"instanceType": P4D, "demand": ["1g.5gb"]},
     "demand: [1g.5gb] is not valid: a mapping of MIG profile to slice count, e.g. {1g.5gb: 40}"),
    ({"demand": {"1g.5gb": 3}}, "instanceType: not set: an instance type name such as p4d.24xlarge"),
    ({"instanceType": 24, "demand": {"1g.5gb": 3}},
     "instanceType: 24 is not valid: an instance type name such as p4d.24xlarge"),
])
def test_a_bad_demand_file_is_named_with_its_value_and_what_is_allowed(raw, message) -> None:
    """The whole message a user reads for a bad demand file: the key, the value as YAML writes it, what is allowed."""
    with pytest.raises(ConfigError) as e:
        advisor.load_demand(raw)
    assert str(e.value) == message


def test_a_demand_files_optional_keys_default_to_the_catalog_price_three_layouts_and_no_node_cap() -> None:
    """A file with just instanceType and demand: the catalog's on-demand price, at most 3 layouts, any node count."""
    spec = advisor.load_demand({"instanceType": P4D, "demand": {"1g.5gb": 57}})
    assert spec == advisor.DemandSpec(P4D, {"1g.5gb": 57}, None, 3, None)
    plan = advisor.advise_spec(spec, pool_prefix="team-a")
    assert (plan.price_per_node_hour, plan.total_nodes, [p.name for p in plan.pools]) == (21.96, 2, ["team-a-1"])


@pytest.mark.parametrize("demand, message", [
    ({"1g.5gb": 4}, "demand.1g.5gb: 4 is not valid: a MIG profile of H100-80GB-HBM3: 1g.10gb, 1g.10gb+me, 1g.20gb, "
                    "2g.20gb, 3g.40gb, 4g.40gb, 7g.80gb"),
    ({"1g.10gb": True}, "demand.1g.10gb: true is not valid: a non-negative integer slice count"),
    ({"1g.10gb": "4"}, "demand.1g.10gb: '4' is not valid: a non-negative integer slice count"),
    ({"1g.10gb": 0, "3g.40gb": 0}, "demand: {1g.10gb: 0, 3g.40gb: 0} is not valid: at least one slice of one profile"),
    ([("1g.10gb", 4)], "demand: [[1g.10gb, 4]] is not valid: a mapping of MIG profile to slice count"),
])
def test_a_bad_demand_names_the_profile_and_what_is_allowed(demand, message) -> None:
    """A profile of another GPU lists this GPU's profiles; a count must be an integer (a YAML `true` is not 1)."""
    with pytest.raises(ConfigError) as e:
        advisor.advise(P5, demand)
    assert str(e.value) == message


@pytest.mark.parametrize("kw, key", [
    ({"max_layouts": True}, "maxLayouts"), ({"max_layouts": 2.0}, "maxLayouts"),
    ({"max_nodes": 0}, "maxNodes"), ({"max_nodes": True}, "maxNodes"), ({"max_nodes": 2.0}, "maxNodes"),
    ({"price_per_node_hour": True}, "pricePerNodeHour"), ({"price_per_node_hour": "3"}, "pricePerNodeHour"),
    ({"price_per_node_hour": float("nan")}, "pricePerNodeHour"),
    ({"price_per_node_hour": float("inf")}, "pricePerNodeHour"),
    ({"pool_prefix": "a" * 23}, "poolPrefix"), ({"pool_prefix": "a-"}, "poolPrefix"),
    ({"pool_prefix": "1a"}, "poolPrefix"), ({"pool_prefix": "Team"}, "poolPrefix"), ({"pool_prefix": 7}, "poolPrefix"),
])
def test_limits_price_and_pool_prefix_outside_their_ranges_are_refused(kw, key) -> None:
    """Just outside each edge: a boolean is not a count or a price, a price must be finite, a pool prefix is a DNS
    label of at most 22 characters (pool names `<prefix>-<n>` stay within 40)."""
    with pytest.raises(ConfigError) as e:
        advisor.advise(P4D, {"1g.5gb": 1}, **kw)
    assert e.value.key == key


@pytest.mark.parametrize("itype, kw, message", [
    (P4D, {"max_layouts": 0}, "maxLayouts: 0 is not valid: an integer >= 1"),
    (P4D, {"max_nodes": 0}, "maxNodes: 0 is not valid: an integer >= 1"),
    (P4D, {"price_per_node_hour": -1}, "pricePerNodeHour: -1 is not valid: a non-negative number (USD per node-hour)"),
    (P4D, {"pool_prefix": "Team"}, "poolPrefix: 'Team' is not valid: a lowercase DNS label of at most 22 characters"),
    ([P4D], {}, "instanceType: [p4d.24xlarge] is not valid: a MIG-capable instance type: "
                + ", ".join(sorted(n for n, t in catalog.INSTANCE_TYPES.items() if t.gpu.mig_capable))),
])
def test_a_bad_limit_price_prefix_or_type_is_named_with_its_value(itype, kw, message) -> None:
    """The whole message: the key, the value as given, what is allowed (a type given as a list is named, not a
    crash)."""
    with pytest.raises(ConfigError) as e:
        advisor.advise(itype, {"1g.5gb": 1}, **kw)
    assert str(e.value) == message


def test_limits_price_and_pool_prefix_at_their_edges_are_taken() -> None:
    """Just inside each edge: one layout, one node, a free node (price 0), a 22-character prefix ending in a digit."""
    plan = advisor.advise(P4D, {"1g.5gb": 7}, max_layouts=1, max_nodes=1, price_per_node_hour=0,
                          pool_prefix="a" * 21 + "9")
    assert (plan.total_nodes, plan.cost_per_hour, [p.name for p in plan.pools]) == (1, 0.0, ["a" * 21 + "9-1"])


def test_the_last_resort_is_the_smallest_single_pool() -> None:
    """When no split is found in time the search falls back to one pool, bisecting its size: 57 x 1g.5gb need
    9 GPUs, so 2 nodes of all-1g.5gb is the smallest one pool, found from any range that holds it."""
    prob = advisor._Problem.of(catalog.A100_40GB, 8, {"1g.5gb": 57})
    want = [(2, (((("1g.5gb", 7),), 8),))]
    assert advisor._bisect_single_pool(prob, 1, 10) == want
    assert advisor._bisect_single_pool(prob, 2, 2) == want
    assert advisor._bisect_single_pool(prob, 1, 1) is None
    # 113 slices need 17 GPUs (3 nodes), 169 need 25 (4 nodes): the bisection lands on each from 1..10
    for slices, nodes in ((113, 3), (169, 4)):
        found = advisor._bisect_single_pool(advisor._Problem.of(catalog.A100_40GB, 8, {"1g.5gb": slices}), 1, 10)
        assert found is not None and found[0][0] == nodes


def test_a_probe_above_the_bound_gets_a_third_of_the_budget_left_and_at_least_three_short_solves(monkeypatch) -> None:
    """The gallop's probes share what is left of the search budget; past it, each still gets a few solves."""
    now = [100.0]
    monkeypatch.setattr(advisor.time, "perf_counter", lambda: now[0])
    assert advisor._probe_end(100.0) == pytest.approx(100.0 + advisor.SEARCH_SECONDS / 3)
    now[0] = 100.0 + advisor.SEARCH_SECONDS / 2
    assert advisor._probe_end(100.0) == pytest.approx(now[0] + advisor.SEARCH_SECONDS / 6)
    now[0] = 105.0
    assert advisor._probe_end(100.0) == pytest.approx(105.0 + 3 * advisor.ILP_MIN_SECONDS)


def test_a_plan_over_its_bound_and_a_naive_choice_that_cannot_serve_are_reported() -> None:
    """15 x 7g.40gb + 1 x 1g.5gb in one layout: 16 GPUs bound it at 2 nodes, one layout takes 3 (see the layout
    limit test). All-balanced has no 7g slice; one pool per profile needs 15 / 8 -> 2 + 1 nodes."""
    plan = advisor.advise(P4D, {"7g.40gb": 15, "1g.5gb": 1}, max_layouts=1)
    text = advisor.format_report(plan).splitlines()
    assert text[text.index("Naive choices:") - 3:] == [
        "Total: 3 node(s), $65.88/h ($21.96 per node-hour)",
        "Lower bound: 2 node(s) (16 GPUs, proven by ILP); gap 1 (at most 1 node(s) above the optimum)",
        "",
        "Naive choices:",
        "  all-balanced: cannot serve the demand (all-balanced has no 7g.40gb)",
        "  one pool per profile (all-7g.40gb + all-1g.5gb): 3 node(s), $65.88/h; the plan saves 0 node(s)"]
    assert plan.best_naive == 3  # the naive choice that cannot serve is not the best one


def test_a_price_with_four_decimals_costs_the_plan_in_cents() -> None:
    """AWS quotes hourly prices to four decimals: 9 x 7g.40gb take 9 of p4d's 8-GPU nodes' GPUs, so 2 nodes at
    21.9576 USD cost 43.9152, shown as 43.92; one all-7g.40gb pool is the best naive choice, also 2 nodes."""
    plan = advisor.advise(P4D, {"7g.40gb": 9}, price_per_node_hour=21.9576)
    assert (plan.total_nodes, plan.cost_per_hour, plan.to_json()["costPerHour"]) == (2, 43.92, 43.92)
    assert plan.best_naive == 2


def test_the_plan_is_never_worse_than_the_best_naive_choice_within_the_limits(monkeypatch) -> None:
    """Should the pool search find nothing in its time, the best naive choice that meets the limits is the plan;
    with none meeting them (two profiles, one layout, no balanced 7g) the error says no plan was found."""
    monkeypatch.setattr(advisor, "_search", lambda *args: None)
    plan = advisor.advise(P4D, {"1g.5gb": 16, "2g.10gb": 8, "3g.20gb": 8})
    assert [(p.name, p.layout, p.named, p.nodes, p.per_node) for p in plan.pools] == [
        ("advised-1", "all-balanced", True, 1, {"1g.5gb": 16, "2g.10gb": 8, "3g.20gb": 8})]
    plan = advisor.advise(P4D, {"1g.5gb": 57, "3g.20gb": 1}, max_layouts=2)  # per profile: 2 + 1 nodes
    assert [(p.layout, p.nodes) for p in plan.pools] == [("all-1g.5gb", 2), ("all-3g.20gb", 1)]
    with pytest.raises(ConfigError) as e:
        advisor.advise(P4D, {"7g.40gb": 1, "1g.5gb": 1}, max_layouts=1)
    assert str(e.value) == "maxNodes: not set: more nodes: no plan of at most 1 nodes in at most 1 layout(s) was found"
    with pytest.raises(ConfigError) as e:
        advisor.advise(P4D, {"1g.5gb": 57, "3g.20gb": 1}, max_nodes=2)
    assert str(e.value) == "maxNodes: 2 is not valid: more nodes: no plan of at most 2 nodes in at most 3 layout(s) " \
                           "was found"


def test_pools_of_one_layout_are_merged_largest_first_and_split_at_the_node_cap() -> None:
    groups = (advisor.DeviceGroup(tuple(range(8)), {"1g.5gb": 7}),)
    pools = [advisor.AdvisedPool("", "x", False, groups, 3), advisor.AdvisedPool("", "y", False, groups, 5),
             advisor.AdvisedPool("", "x", False, groups, 4), advisor.AdvisedPool("", "z", True, groups, 250)]
    assert [(p.name, p.layout, p.nodes) for p in advisor._name_pools(pools, "team")] == [
        ("team-1", "z", 100), ("team-2", "z", 100), ("team-3", "z", 50), ("team-4", "x", 7), ("team-5", "y", 5)]


def test_a_workload_goes_whole_to_the_tightest_pool_that_holds_it_else_split_over_the_roomiest() -> None:
    """Pools of 10 and 20 slices: 8 go whole to the 10 (least room that holds them), 15 to the 20; 6 more fit
    neither's rest (2 and 5), so they split 5 + 1, each part named for its pool within 40 characters."""
    one = (advisor.DeviceGroup((0,), {"1g.5gb": 1}),)
    pools = [advisor.AdvisedPool("small", "x", False, one, 10), advisor.AdvisedPool("big", "y", False, one, 20)]
    name = "w" * 38
    out = advisor._assign(pools, [{"name": "a", "profile": "1g.5gb", "replicas": 8},
                                  {"name": "b", "profile": "1g.5gb", "replicas": 15},
                                  {"name": name, "profile": "1g.5gb", "replicas": 6, "team": "ml"}])
    assert [(w["name"], w["replicas"], w["pool"]) for w in out] == [
        ("a", 8, "small"), ("b", 15, "big"), ("w" * 36 + "-big", 5, "big"), ("w" * 34 + "-small", 1, "small")]
    assert out[2]["team"] == "ml" and [len(w["name"]) for w in out[2:]] == [40, 40]


def test_the_report_cautions_about_unconfirmed_mig_and_inferred_placements() -> None:
    """AWS has not confirmed MIG on g7e and its placements are inferred: the report says both; a p4d plan neither."""
    pool = advisor.AdvisedPool("advised-1", "all-1g.24gb", True, (advisor.DeviceGroup((0,), {"1g.24gb": 4}),), 1)
    plan = advisor.Plan("g7e.2xlarge", {"1g.24gb": 4}, (pool,), 1, 1, 3.36, ())  # by hand: no need to solve
    g7e = advisor.format_report(plan).splitlines()
    assert g7e[2:4] == [f"Caution: MIG on g7e.2xlarge: {catalog.INSTANCE_TYPES['g7e.2xlarge'].mig_unconfirmed}",
                        f"Caution: {catalog.INSTANCE_TYPES['g7e.2xlarge'].gpu.name} MIG placements are "
                        f"{catalog.INSTANCE_TYPES['g7e.2xlarge'].gpu.placements_source}"]
    assert "Caution" not in advisor.format_report(advisor.advise(P4D, {"1g.5gb": 7}))


def test_plans_of_several_models_make_one_stack_config() -> None:
    """One stack for two GPU models: both custom layouts, both models' node groups and workloads, maxGpuNodes the
    sum; for one plan it is that plan's own, node groups unless Karpenter is asked for."""
    a = advisor.advise(P4D, {"1g.5gb": 56, "3g.20gb": 2}, pool_prefix="a100")  # 2 nodes, a custom layout
    b = advisor.advise(P5, {"1g.10gb": 12, "3g.40gb": 2}, pool_prefix="h100")
    assert advisor.stack_config_of([a]) == a.stack_config()
    assert "gpu-slicing:nodeGroups" in advisor.stack_config_of([a])["config"]
    merged = advisor.stack_config_of([a, b])["config"]
    ca, cb = a.stack_config()["config"], b.stack_config()["config"]
    assert merged["gpu-slicing:maxGpuNodes"] == a.total_nodes + b.total_nodes
    assert merged["gpu-slicing:nodeGroups"] == ca["gpu-slicing:nodeGroups"] + cb["gpu-slicing:nodeGroups"]
    assert merged["gpu-slicing:workloads"] == ca["gpu-slicing:workloads"] + cb["gpu-slicing:workloads"]
    assert merged["gpu-slicing:migLayouts"] == {**ca["gpu-slicing:migLayouts"], **cb.get("gpu-slicing:migLayouts", {})}
    assert len(merged["gpu-slicing:migLayouts"]) == len(ca["gpu-slicing:migLayouts"]) + len(
        cb.get("gpu-slicing:migLayouts", {}))
    karpenter = advisor.stack_config_of([a, b], karpenter=True)["config"]["gpu-slicing:karpenter"]
    assert karpenter["enabled"] is True and [p["name"] for p in karpenter["nodePools"]] == [
        p.name for p in a.pools] + [p.name for p in b.pools]


def test_a_published_custom_layout_keeps_its_name() -> None:
    """docs/advisor.md publishes the issue example's p5 layout (6 GPUs of 6 x 1g.10gb + 1g.20gb, 2 whole) as
    advised-p5-38b3503caa: nodes carry that label, so the name (family, then a hash of the canonical groups)
    must never change, whoever computes it."""
    groups = [advisor.DeviceGroup((0, 1, 2, 3, 4, 5), {"1g.10gb": 6, "1g.20gb": 1}), advisor.DeviceGroup((6, 7), {})]
    assert "advised-p5-38b3503caa" in (ROOT / "docs" / "advisor.md").read_text()
    assert advisor.custom_layout_name(catalog.INSTANCE_TYPES[P5], groups) == "advised-p5-38b3503caa"
    assert advisor.custom_layout_name(catalog.INSTANCE_TYPES[P5_ONE], groups) == "advised-p5-38b3503caa"


def test_the_json_record_carries_the_demand_and_node_groups_by_default() -> None:
    plan = advisor.advise(P4D, {"1g.5gb": 7})
    record = plan.to_json()
    assert record["demand"] == {"1g.5gb": 7} and record["instanceType"] == P4D
    assert 0 < plan.seconds < 30  # the time the advice took, shown by `make advise`
    assert record["stackConfig"]["gpu-slicing:nodeGroups"] == [
        {"name": "advised-1", "instanceType": P4D, "minSize": 1, "desiredSize": 1, "maxSize": 1, "diskSizeGiB": 200,
         "capacityType": "ON_DEMAND", "migLayout": "all-1g.5gb"}]
    assert plan.pools[0].capacity("1g.5gb") == 7 * 8 and plan.pools[0].capacity("3g.20gb") == 0  # all-1g.5gb: 7 a GPU
    assert "gpu-slicing:karpenter" not in record["stackConfig"]
    text = advisor.format_report(plan).splitlines()
    assert text[text.index("Plan:") - 1:text.index("Plan:") + 2] == [
        "", "Plan:", "  advised-1: 1 node(s) labelled all-1g.5gb (NVIDIA layout)"]


def test_pool_sizes_are_split_largest_first_without_repeats() -> None:
    """Pools are interchangeable, so each split of a node total is tried once, in non-increasing sizes."""
    assert list(advisor._partitions(5, 2)) == [(4, 1), (3, 2)]
    assert list(advisor._partitions(6, 3)) == [(4, 1, 1), (3, 2, 1), (2, 2, 2)]
    assert list(advisor._partitions(2, 3)) == []


def test_splits_are_tried_most_lopsided_and_most_even_in_turn() -> None:
    """A main pool with small ones settles fast, two even pools can add up to a slice count: they alternate."""
    assert advisor._ordered_partitions(6, 2) == [(5, 1), (3, 3), (4, 2)]
    assert advisor._ordered_partitions(7, 3) == [(5, 1, 1), (3, 2, 2), (4, 2, 1), (3, 3, 1)]
    assert advisor._ordered_partitions(4, 1) == [(4,)]
    # 9 in 3: by smallest part, then by size: 333; 432, 522; 441, 531, 621, 711 -> ends in turn
    assert advisor._ordered_partitions(9, 3) == [(7, 1, 1), (3, 3, 3), (6, 2, 1), (4, 3, 2), (5, 3, 1), (5, 2, 2),
                                                 (4, 4, 1)]


@pytest.mark.parametrize("fewest", range(3, 25))
def test_the_search_finds_the_fewest_nodes_between_the_bound_and_the_limit(monkeypatch, fewest) -> None:
    """Whatever the gap to the bound, the gallop and bisection settle on the fewest nodes that fit (a plan of n
    nodes gives one of n + 1, so 'fits' is monotone); none within the limit falls back to the single pool, which
    here finds none either. Judged against a stand-in for the per-total solve that fits from `fewest` on."""
    monkeypatch.setattr(advisor, "_fit_total", lambda prob, total, layouts, end: [(total, ())] if total >= fewest
                        else None)
    monkeypatch.setattr(advisor, "_pool_ilp", lambda *args: (None, True))
    monkeypatch.setattr(advisor, "_bisect_single_pool", lambda prob, lo, hi: None)
    from types import SimpleNamespace

    found = advisor._search(SimpleNamespace(named=None), 3, 20, 3)
    assert found == ([(fewest, ())] if fewest <= 20 else None)


def test_a_pool_is_named_after_the_nvidia_layout_that_covers_it_else_by_content() -> None:
    """One configuration an NVIDIA layout covers takes that layout whole (its name and all its profiles, so the
    label matches what the MIG manager applies); mixed GPUs become device groups, the most GPUs first."""
    it = catalog.INSTANCE_TYPES[P4D]
    named = advisor._pool(it, it.gpu, (((("1g.5gb", 2), ("3g.20gb", 1)), 8),), 3)
    assert (named.layout, named.named, named.nodes, named.groups) == (
        "all-balanced", True, 3, (advisor.DeviceGroup(tuple(range(8)), {"1g.5gb": 2, "2g.10gb": 1, "3g.20gb": 1}),))
    mixed = advisor._pool(it, it.gpu, (((("3g.20gb", 2),), 3), ((("1g.5gb", 7),), 5)), 2)
    assert (mixed.named, mixed.groups) == (False, (advisor.DeviceGroup((0, 1, 2, 3, 4), {"1g.5gb": 7}),
                                                   advisor.DeviceGroup((5, 6, 7), {"3g.20gb": 2})))
    assert mixed.layout == advisor.custom_layout_name(it, mixed.groups)
    assert advisor.named_layout_covering(it.gpu, (("3g.20gb", 2),)) == ("all-3g.20gb", {"3g.20gb": 2})
    assert advisor.named_layout_covering(it.gpu, (("1g.5gb", 8),)) is None  # 7 a GPU at most


def test_an_instance_type_without_mig_is_refused_listing_the_mig_types() -> None:
    with pytest.raises(ConfigError) as e:
        advisor.advise("g6.xlarge", {"1g.5gb": 1})
    mig = sorted(n for n, t in catalog.INSTANCE_TYPES.items() if t.gpu.mig_capable)
    assert str(e.value) == f"instanceType: 'g6.xlarge' is not valid: a MIG-capable instance type: {', '.join(mig)}"


def test_a_lower_bound_not_proven_within_its_limits_is_an_error_not_a_guess(monkeypatch) -> None:
    """The bound is limited by branch-and-bound nodes (the same on a busy machine) and a wall-clock backstop; a
    solve stopped before any bound raises rather than report a plan as optimal."""
    prob = advisor._Problem.of(catalog.A100_40GB, 8, ISSUE_DEMAND)
    assert advisor.gpu_lower_bound(prob.a, prob.d) == 12  # see test_issue_mix_needs_two_nodes...
    monkeypatch.setattr(advisor, "BOUND_NODES", 0)
    with pytest.raises(RuntimeError, match="^GPU-level ILP gave no bound: "):
        advisor.gpu_lower_bound(prob.a, prob.d)
    monkeypatch.setattr(advisor, "BOUND_NODES", 10_000)
    monkeypatch.setattr(advisor, "BOUND_BACKSTOP_SECONDS", 0.0)
    with pytest.raises(RuntimeError, match="^GPU-level ILP gave no bound: "):
        advisor.gpu_lower_bound(prob.a, prob.d)


def test_naive_choices_name_every_profile_all_balanced_lacks() -> None:
    """All-balanced on an A100 has 1g.5gb, 2g.10gb and 3g.20gb only; one pool per profile needs a node per profile
    here (1 x 7g.40gb, 1 x 4g.20gb and 1 x 1g.5gb each fit one node)."""
    bal, per = advisor.naive_results(catalog.INSTANCE_TYPES[P4D], {"7g.40gb": 1, "4g.20gb": 1, "1g.5gb": 1})
    assert bal == advisor.NaiveResult("all-balanced", None, reason="all-balanced has no 7g.40gb, 4g.20gb")
    assert per == advisor.NaiveResult("one pool per profile (all-7g.40gb + all-4g.20gb + all-1g.5gb)", 3, (
        ("all-7g.40gb", 1), ("all-4g.20gb", 1), ("all-1g.5gb", 1)))


# --- stack config -----------------------------------------------------------------------------------

def test_stack_config_shapes() -> None:
    plan = advisor.advise(P4D, ISSUE_DEMAND)
    cfg = plan.stack_config()["config"]
    assert [g["name"] for g in cfg["gpu-slicing:nodeGroups"]] == [p.name for p in plan.pools]
    for g, p in zip(cfg["gpu-slicing:nodeGroups"], plan.pools):
        assert (g["minSize"], g["desiredSize"], g["maxSize"], g["migLayout"]) == (p.nodes, p.nodes, p.nodes, p.layout)
        assert g["instanceType"] == P4D and g["capacityType"] == "ON_DEMAND"
    assert set(cfg["gpu-slicing:migLayouts"]) == {p.layout for p in plan.pools if not p.named}
    assert cfg["gpu-slicing:maxGpuNodes"] == 2
    kcfg = plan.stack_config(karpenter=True)["config"]
    assert "gpu-slicing:nodeGroups" not in kcfg
    pools = kcfg["gpu-slicing:karpenter"]["nodePools"]
    assert kcfg["gpu-slicing:karpenter"]["enabled"] is True
    assert [(n["maxNodes"], n["instanceTypes"], n["capacityTypes"]) for n in pools] == [
        (p.nodes, [P4D], ["on-demand"]) for p in plan.pools]
    record = plan.to_json()
    assert {"instanceType", "totalNodes", "lowerBound", "costPerHour", "pools", "naive"} <= set(record)
    assert set(record["pools"][0]) >= {"layout", "gpuLayouts", "nodes", "perNode"}
    assert set(record["pools"][0]["gpuLayouts"][0]) == {"devices", "profiles"}
    assert record["naive"] == [{"strategy": n.strategy, "totalNodes": n.total_nodes} for n in plan.naive]


def test_demand_from_the_dev_stack() -> None:
    raw = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    spec = advisor.demand_from_stack(raw)
    # Pulumi.dev.yaml: 16 + 56 x 1g.5gb, 8 x 2g.10gb, 8 x 3g.20gb on p4d. Compute 72 + 16 + 24 = 112 = 16 GPUs.
    assert spec.instance_type == P4D
    assert dict(spec.slices) == {"1g.5gb": 72, "2g.10gb": 8, "3g.20gb": 8}
    plan = advisor.advise_spec(spec)
    assert (plan.lower_bound_gpus, plan.total_nodes) == (16, 2)
    # 36 x 1g, 4 x 2g, 4 x 3g per node = 4 GPUs all-balanced + 4 GPUs of 7 x 1g: one pool, nothing split.
    assert [(w["name"], w["replicas"], w["pool"]) for w in plan.workloads] == [
        ("slice-1g", 16, "advised-1"), ("slice-2g", 8, "advised-1"), ("slice-3g", 8, "advised-1"),
        ("guide-1g", 56, "advised-1")]
    assert_valid(plan)


def _merge(base: dict, advised: dict) -> dict:
    """What a user does with the advisor's keys: replace pools and workloads, keep cluster and network
    (and Karpenter's own settings when the advice is NodePools)."""
    cfg = copy.deepcopy(base)
    adv = copy.deepcopy(advised)
    for k in ("gpu-slicing:nodeGroups", "gpu-slicing:workloads", "gpu-slicing:migLayouts"):
        cfg.pop(k, None)
    karpenter = cfg.pop("gpu-slicing:karpenter", {})
    if "gpu-slicing:karpenter" in adv:
        cfg["gpu-slicing:karpenter"] = {**karpenter, **adv.pop("gpu-slicing:karpenter")}
    cfg.update(adv)
    return cfg


@pytest.mark.parametrize("karpenter", [False, True])
@pytest.mark.parametrize("itype, demand", [
    (P4D, ISSUE_DEMAND), (P4D, {"7g.40gb": 15, "1g.5gb": 1}), (P4D, {"1g.5gb": 56}),
    (P5, {"1g.10gb": 17, "1g.10gb+me": 4, "1g.20gb": 9, "2g.20gb": 13, "3g.40gb": 7, "4g.40gb": 3, "7g.80gb": 5}),
])
def test_proposed_stack_config_parses_and_every_workload_fits(itype, demand, karpenter, dev) -> None:
    plan = advisor.advise(itype, demand, max_layouts=2)
    cfg = parse_config(_merge(dev, plan.stack_config(karpenter)["config"]))
    verdicts = capacity_plan(cfg, resolve_pools(cfg)).workloads
    assert verdicts and all(v.level == "ok" for v in verdicts), [v.message for v in verdicts]
    wanted: dict[str, int] = {}
    for v in verdicts:
        wanted[v.resource] = wanted.get(v.resource, 0) + v.requested
    assert wanted == {catalog.resource_for_profile(p): n for p, n in demand.items()}


@pytest.mark.slow
def test_round_trip_through_make_plan(tmp_path: Path, dev, capsys) -> None:
    """The advisor's CLI output merged into a stack, then the offline plan (`make plan`'s tools.plan.main)."""
    import re

    demand = tmp_path / "demand.yaml"
    demand.write_text(yaml.safe_dump({"instanceType": P4D, "demand": ISSUE_DEMAND | {"7g.40gb": 3}}))
    out = tmp_path / "advised.yaml"
    assert advise_main(["--demand", str(demand), "--karpenter", "--stack-out", str(out)]) == 0
    told = set(re.findall(r", labelled (\S+)$", capsys.readouterr().out, re.M))
    stack = _merge(dev, yaml.safe_load(out.read_text())["config"])
    stack_file = tmp_path / "Pulumi.advised.yaml"
    stack_file.write_text(yaml.safe_dump({"config": stack}, sort_keys=False))
    record = tmp_path / "plan.json"
    from tools import plan  # in-process: the same main() `make plan` runs, without a second interpreter

    assert plan.main(["--config", str(stack_file), "--json", str(record), "--quiet"]) == 0
    planned = json.loads(record.read_text())
    workloads = planned["capacity"]["workloads"]
    assert workloads and all(w["fits"] for w in workloads), workloads
    # the labels the advisor names are the ones the nodes get (a custom layout's name plus its content hash)
    labels = {r["inputs"]["spec"]["template"]["metadata"]["labels"]["nvidia.com/mig.config"]
              for r in planned["resources"] if r["type"] == "kubernetes:karpenter.sh/v1:NodePool"}
    assert told and told <= labels, (told, labels)
    assert sum(w["requested"] for w in workloads) == sum(ISSUE_DEMAND.values()) + 3


# --- CLI --------------------------------------------------------------------------------------------

def advise_main(argv: list[str]) -> int:
    from tools.advise import main
    return main(argv)


def test_cli_make_style_arguments_and_json(tmp_path: Path, capsys) -> None:
    demand = tmp_path / "d.yaml"
    demand.write_text(yaml.safe_dump({"instanceType": P4D, "demand": ISSUE_DEMAND}))
    out = tmp_path / "o.json"
    assert advise_main([f"DEMAND={demand}", f"JSON={out}", "MAX_LAYOUTS=2"]) == 0
    text = capsys.readouterr().out
    assert "Lower bound: 2 node(s) (12 GPUs" in text and "gap 0" in text and "all-balanced: 3 node(s)" in text
    assert "gpu-slicing:nodeGroups" in text
    record = json.loads(out.read_text())
    assert (record["instanceType"], record["totalNodes"], record["lowerBound"]) == (P4D, 2, 2)
    assert record["costPerHour"] == 43.92
    assert [n["totalNodes"] for n in record["naive"]] == [3, 3]


def test_cli_reads_a_stack_file_and_emits_nodepools(capsys) -> None:
    assert advise_main([f"CONFIG={ROOT / 'Pulumi.dev.yaml'}", "KARPENTER=1"]) == 0
    text = capsys.readouterr().out
    assert "Demand: 72 x 1g.5gb, 8 x 2g.10gb, 8 x 3g.20gb" in text
    assert "gpu-slicing:karpenter" in text and "gpu-slicing:nodeGroups" not in text


MIXED_STACK = {"config": {
    "gpu-slicing:maxGpuNodes": 10,
    "gpu-slicing:cluster": {"name": "mixed", "publicAccessCidrs": ["100.64.0.0/16"]},
    "gpu-slicing:nodeGroups": [{"name": "h100", "instanceType": P5, "minSize": 1, "desiredSize": 1, "maxSize": 2,
                                "migLayout": "all-balanced"}],
    "gpu-slicing:karpenter": {"enabled": True, "nodePools": [
        {"name": "b200", "instanceTypes": [B200], "migLayout": "all-1g.23gb", "maxNodes": 2},
        {"name": "rtx", "instanceTypes": [G7E], "migLayout": "all-balanced", "maxNodes": 2}]},
    "gpu-slicing:workloads": [
        {"name": "h-small", "profile": "1g.10gb", "replicas": 16, "pool": "h100"},
        {"name": "b-small", "profile": "1g.23gb", "replicas": 60, "pool": "b200"},
        {"name": "r-small", "profile": "1g.24gb", "replicas": 10, "pool": "rtx"},
        {"name": "h-big", "profile": "3g.40gb", "replicas": 8, "pool": "h100"},
        {"name": "whole", "gpus": 1, "replicas": 1, "pool": "h100"}]}}


def test_a_stack_with_several_gpu_models_is_advised_per_model() -> None:
    specs = advisor.demands_from_stack(MIXED_STACK)
    assert [(s.instance_type, dict(s.slices)) for s in specs] == [
        (P5, {"1g.10gb": 16, "3g.40gb": 8}), (B200, {"1g.23gb": 60}), (G7E, {"1g.24gb": 10})]
    assert [s.ignored for s in specs] == [("whole",), (), ()]
    with pytest.raises(ConfigError) as e:
        advisor.demand_from_stack(MIXED_STACK)
    assert e.value.key == "instanceType" and B200 in str(e.value)
    # 60 x 1g.23gb at 7 per B200 = 9 GPUs = 2 nodes; 10 x 1g.24gb at 4 per RTX PRO 6000 = 3 GPUs = 1 node;
    # H100: 8 x 3g.40gb (2 per GPU) + 16 x 1g.10gb: 4 GPUs of 2 x 3g leave no memory, 16 x 1g.10gb alone take
    # 3 GPUs (7+7+2), but 1 x 3g + 4 x 1g fits one GPU (7 compute, 8 memory): 8 GPUs of it = 1 node.
    assert [advisor.advise_spec(s).total_nodes for s in specs] == [1, 2, 1]


def test_one_demand_from_a_several_model_stack_is_refused_naming_each_type_and_its_gpu() -> None:
    """`demand_from_stack` plans one node layout, so a stack whose MIG workloads span three GPU models is refused
    with the types and GPUs it found, pointing at the per-model call."""
    with pytest.raises(ConfigError) as e:
        advisor.demand_from_stack(MIXED_STACK)
    gpu = {t: catalog.INSTANCE_TYPES[t].gpu.name for t in (P5, B200, G7E)}
    assert str(e.value) == (f"instanceType: not set: one instance type: the stack's MIG workloads run on {P5} "
                            f"({gpu[P5]}), {B200} ({gpu[B200]}), {G7E} ({gpu[G7E]}); advise each with "
                            "demands_from_stack (the CLI does)")
    two = copy.deepcopy(MIXED_STACK)
    two["config"]["gpu-slicing:workloads"] = [w for w in two["config"]["gpu-slicing:workloads"] if w["pool"] != "rtx"]
    with pytest.raises(ConfigError, match=f"run on {P5} .*, {B200} "):
        advisor.demand_from_stack(two)
    # a type given puts every MIG workload on it: one demand
    spec = advisor.demand_from_stack(MIXED_STACK, P5)
    assert (spec.instance_type, dict(spec.slices)) == (P5, {"1g.10gb": 16, "1g.23gb": 60, "1g.24gb": 10, "3g.40gb": 8})


def test_a_stack_without_mig_demand_or_mig_pools() -> None:
    """Only whole-GPU workloads: no slices to plan, the workloads listed as ignored, on the type given or the
    stack's first MIG pool; a stack without any MIG pool needs the type named. The `config:` level is optional."""
    cfg = copy.deepcopy(MIXED_STACK["config"])
    cfg["gpu-slicing:workloads"] = [{"name": "whole", "gpus": 1, "replicas": 1, "pool": "h100"}]
    assert advisor.demands_from_stack(cfg) == [advisor.DemandSpec(P5, {}, ignored=("whole",))]
    assert advisor.demands_from_stack({"config": cfg}, P4D) == [advisor.DemandSpec(P4D, {}, ignored=("whole",))]
    cfg["gpu-slicing:nodeGroups"][0]["instanceType"] = "g6.xlarge"
    cfg["gpu-slicing:karpenter"] = {"enabled": False}
    with pytest.raises(ConfigError) as e:
        advisor.demands_from_stack(cfg)
    assert str(e.value) == ("instanceType: not set: given explicitly: the stack has no MIG-capable node group or "
                            "NodePool")


def test_a_stack_that_is_no_stack_or_has_no_workloads_is_refused() -> None:
    with pytest.raises(ConfigError) as e:
        advisor.demands_from_stack({"config": [1]})
    assert str(e.value) == "config: {config: [1]} is not valid: a stack file with a config: mapping"
    with pytest.raises(ConfigError) as e:
        advisor.demands_from_stack(["config"])
    assert str(e.value) == "config: [config] is not valid: a stack file with a config: mapping"
    cfg = {k: v for k, v in MIXED_STACK["config"].items() if k != "gpu-slicing:workloads"}
    with pytest.raises(ConfigError) as e:
        advisor.demands_from_stack(cfg)
    assert str(e.value) == ("gpu-slicing:workloads: [] is not valid: a non-empty list of workloads with profile and "
                            "replicas")


def test_a_type_given_for_a_stack_takes_every_mig_workload() -> None:
    """`--instance-type` plans every MIG workload on that type, whatever pool it names; the advice's workloads keep
    what the stack wrote except the pool, and a workload of 0 replicas adds no workload."""
    cfg = copy.deepcopy(MIXED_STACK["config"])
    cfg["gpu-slicing:workloads"] = [
        {"name": "whole", "gpus": 1, "replicas": 1, "pool": "h100"},
        {"name": "a", "profile": "1g.10gb", "replicas": 3, "pool": "h100"},
        {"name": "b", "profile": "1g.10gb", "replicas": 2, "pool": "b200"},
        {"name": "c", "profile": "3g.40gb", "replicas": 0, "pool": "h100"}]
    [spec] = advisor.demands_from_stack(cfg, P5_ONE)
    assert (spec.instance_type, dict(spec.slices), spec.ignored) == (P5_ONE, {"1g.10gb": 5, "3g.40gb": 0}, ("whole",))
    assert list(spec.workloads) == [{"name": "a", "profile": "1g.10gb", "replicas": 3},
                                    {"name": "b", "profile": "1g.10gb", "replicas": 2}]
    # a type the catalog does not know is carried as given, for advise to refuse naming the key
    [unknown] = advisor.demands_from_stack(cfg, "p9.huge")
    with pytest.raises(ConfigError) as e:
        advisor.advise_spec(unknown)
    assert (unknown.instance_type, e.value.key) == ("p9.huge", "instanceType")


def test_pools_of_one_gpu_model_share_one_demand_and_a_workload_without_a_mig_pool_goes_to_the_first() -> None:
    """A node layout is per GPU model: workloads on a p5.48xlarge group and a p5.4xlarge NodePool (both H100) are
    one demand, planned on the type seen first; a workload naming no MIG pool joins the first MIG type too."""
    cfg = copy.deepcopy(MIXED_STACK["config"])
    cfg["gpu-slicing:karpenter"]["nodePools"] = [{"name": "h1", "instanceTypes": [P5_ONE], "migLayout": "all-balanced",
                                                  "maxNodes": 2}]
    cfg["gpu-slicing:nodeGroups"].append({"name": "l4", "instanceType": "g6.xlarge", "minSize": 1, "desiredSize": 1,
                                          "maxSize": 1})
    cfg["gpu-slicing:workloads"] = [{"name": "a", "profile": "1g.10gb", "replicas": 3, "pool": "h1"},
                                    {"name": "b", "profile": "1g.10gb", "replicas": 2, "pool": "h100"},
                                    {"name": "c", "profile": "3g.40gb", "replicas": 1, "pool": "l4"}]
    [spec] = advisor.demands_from_stack(cfg)
    assert (spec.instance_type, dict(spec.slices)) == (P5_ONE, {"1g.10gb": 5, "3g.40gb": 1})
    assert [w["name"] for w in spec.workloads] == ["a", "b", "c"]


def test_cli_merges_the_per_model_plans_into_one_stack_config(tmp_path: Path, capsys) -> None:
    stack_file = tmp_path / "Pulumi.mixed.yaml"
    stack_file.write_text(yaml.safe_dump(MIXED_STACK))
    out = tmp_path / "advised.yaml"
    record_file = tmp_path / "advised.json"
    assert advise_main(["--config", str(stack_file), "--karpenter", "--stack-out", str(out),
                        "--json", str(record_file)]) == 0
    text = capsys.readouterr().out
    assert "=== H100-80GB-HBM3: plan 1 of 3 ===" in text and "Instance type: p6-b200.48xlarge" in text
    assert text.startswith("=== H100-80GB-HBM3: plan 1 of 3 ===\n") and "\n\n=== B200" in text  # a blank line apart
    assert ("these keys replace your stack's GPU pools (nodeGroups, or karpenter.nodePools with --karpenter, keeping "
            "the rest of its karpenter block), migLayouts, workloads and maxGpuNodes; maxGpuNodes") in text
    record = json.loads(record_file.read_text())  # one record per GPU model, and the merged stack config
    assert [p["instanceType"] for p in record["plans"]] == [P5, B200, G7E]
    assert all("gpu-slicing:karpenter" in json.dumps(p) for p in record["plans"])  # each as NodePools too
    assert record["stackConfig"] == yaml.safe_load(out.read_text())["config"]
    assert "- name: advised-p5-1" in out.read_text()  # the emitted key order, not sorted
    advised = yaml.safe_load(out.read_text())["config"]
    pools = advised["gpu-slicing:karpenter"]["nodePools"]
    assert [(p["name"], p["instanceTypes"]) for p in pools] == [
        ("advised-p5-1", [P5]), ("advised-p6-b200-1", [B200]), ("advised-g7e-1", [G7E])]
    assert advised["gpu-slicing:maxGpuNodes"] == 4
    # the whole-GPU workload is not advised, but the emitted workloads (which replace the stack's) keep it
    assert advised["gpu-slicing:workloads"][-1] == {"name": "whole", "gpus": 1, "replicas": 1, "pool": "h100"}
    assert "kept as they are in the workloads below): whole." in text
    merged = _merge(MIXED_STACK["config"], advised)
    merged["gpu-slicing:karpenter"] = {"enabled": True, "nodePools": pools}
    merged["gpu-slicing:workloads"] = advised["gpu-slicing:workloads"][:-1]  # its h100 pool is not advised
    cfg = parse_config(merged)
    verdicts = capacity_plan(cfg, resolve_pools(cfg)).workloads
    assert [v.level for v in verdicts] == ["ok"] * 4, [v.message for v in verdicts]


def test_cli_bad_input_exits_2(tmp_path: Path, capsys) -> None:
    demand = tmp_path / "d.yaml"
    demand.write_text(yaml.safe_dump({"instanceType": P5, "demand": {"1g.5gb": 3}}))
    assert advise_main(["--demand", str(demand)]) == 2
    assert "demand.1g.5gb" in capsys.readouterr().err
    assert advise_main(["--demand", str(tmp_path / "missing.yaml")]) == 2


def test_make_style_arguments_become_flags() -> None:
    """`make advise DEMAND=x KARPENTER=1`: make passes its variables as words; an unset one comes empty."""
    from tools.advise import _expand_make_style as expand

    assert expand(["DEMAND=d=1.yaml", "JSON=o.json", "PREFIX=gpu"]) == ["--demand", "d=1.yaml", "--json", "o.json",
                                                                        "--prefix", "gpu"]
    for off in ("KARPENTER=", "KARPENTER=0", "KARPENTER=false", "KARPENTER=FALSE", "KARPENTER=No"):
        assert expand([off]) == [], off
    for on in ("KARPENTER=1", "KARPENTER=yes", "KARPENTER=true"):
        assert expand([on]) == ["--karpenter"], on
    assert expand(["MAX_NODES=", "PRICE="]) == []
    # what is not a make variable is left to argparse
    assert expand(["--json=o.json", "KARPENTER", "DEMAND", "OTHER=1"]) == ["--json=o.json", "KARPENTER", "DEMAND",
                                                                          "OTHER=1"]


def test_a_demand_file_that_cannot_be_read_is_named(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "missing.yaml"
    assert advise_main(["--demand", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {missing}: ") and "an existing demand file" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("demand: [\n")
    assert advise_main(["--demand", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}: ") and "line 2, column 1" in err
    assert advise_main(["--demand", str(bad), "--config", str(ROOT / "Pulumi.dev.yaml")]) == 2
    assert "exactly one of a demand file or a stack file" in capsys.readouterr().err


def test_flags_override_the_demand_file(tmp_path: Path, capsys) -> None:
    """70 x 1g.5gb at 7 per A100-40GB = 10 GPUs = 2 p4d nodes (8 GPUs each): --max-nodes 1 is too few. The
    file's H100 type has no 1g.5gb: only the --instance-type override makes it plannable."""
    demand = tmp_path / "d.yaml"
    demand.write_text(yaml.safe_dump({"instanceType": P5, "demand": {"1g.5gb": 70}}))
    assert advise_main(["--demand", str(demand)]) == 2
    assert "1g.5gb" in capsys.readouterr().err
    assert advise_main(["--demand", str(demand), "--instance-type", P4D, "--max-nodes", "1"]) == 2
    assert "maxNodes: 1 is not valid: at least 2 nodes" in capsys.readouterr().err
    out = tmp_path / "o.json"
    assert advise_main(["--demand", str(demand), "--instance-type", P4D, "--price", "10", "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert (record["instanceType"], record["totalNodes"], record["costPerHour"]) == (P4D, 2, 20.0)
    assert out.read_text().startswith('{\n  "')  # indented JSON, two spaces
    assert f"result written to {out}" in capsys.readouterr().out


def test_a_stack_advised_on_another_type_with_one_layout(tmp_path: Path, capsys) -> None:
    """The H100 demand of MIXED_STACK (16 x 1g.10gb, 8 x 3g.40gb) on single-GPU p5.4xlarge nodes, one layout for
    every node: a 3g.40gb takes 3 of a GPU's 7 compute and 4 of its 8 memory slices, so a GPU holds two 3g.40gb
    (and nothing else) or one 3g.40gb and four 1g.10gb; only the latter serves both profiles: 8 nodes for the
    8 x 3g.40gb, $40/h at $5 a node-hour."""
    stack = copy.deepcopy(MIXED_STACK)
    stack["config"]["gpu-slicing:karpenter"] = {"enabled": False}
    stack["config"]["gpu-slicing:workloads"] = [w for w in stack["config"]["gpu-slicing:workloads"]
                                                if w["pool"] == "h100"]
    f = tmp_path / "Pulumi.h100.yaml"
    f.write_text(yaml.safe_dump(stack))
    out, stack_out = tmp_path / "o.json", tmp_path / "s.yaml"
    assert advise_main(["--config", str(f), "--instance-type", P5_ONE, "--price", "5", "--max-layouts", "1",
                        "--json", str(out), "--stack-out", str(stack_out)]) == 0
    record = json.loads(out.read_text())
    assert (record["instanceType"], record["totalNodes"], record["costPerHour"]) == (P5_ONE, 8, 40.0)
    text = capsys.readouterr().out
    written = stack_out.read_text()
    assert f"Then `make plan`:\n\n{written.rstrip()}\n\nsolved in " in text and written.startswith("config:")
    assert f"stack config written to {stack_out}" in text


def test_a_pods_demand_refuses_the_per_profile_flags(tmp_path: Path, capsys) -> None:
    demand = tmp_path / "pods.yaml"
    demand.write_text(yaml.safe_dump({"pods": [{"name": "embed", "memoryGB": 5, "replicas": 14}],
                                      "instanceTypes": [P4D]}))
    for flag, value, shown, hint in (("--instance-type", P5, f"'{P5}'", ": set instanceTypes in the demand file"),
                                     ("--price", "3.5", "3.5", ": set pricePerHour in the demand file"),
                                     ("--max-layouts", "2", "2", ""), ("--max-nodes", "4", "4", "")):
        assert advise_main(["--demand", str(demand), flag, value]) == 2
        err = capsys.readouterr().err
        assert err == f"error: {flag}: {shown} is not valid: no such flag with a pods demand{hint}\n", err


def test_help_says_what_the_advisor_does(monkeypatch, capsys) -> None:
    import sys

    from tools.advise import main
    monkeypatch.setattr(sys, "argv", ["advise", "--help"])  # as `python -m tools.advise --help` runs it
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "MIG layout advisor CLI: the fewest GPU nodes for a mix of MIG slices, or the cheapest fleet" in text
    for flag, words in (("--demand", "demand file: instanceType and demand per MIG profile, or pods per GPU memory"),
                        ("--config", "stack file whose gpu-slicing:workloads are the demand (one plan per GPU model)"),
                        ("--instance-type", "GPU instance type (overrides the file's)"),
                        ("--max-layouts", "most distinct MIG layouts (default 3)"),
                        ("--max-nodes", "most GPU nodes"),
                        ("--price", "USD per node-hour (default: the catalog's on-demand price)"),
                        ("--karpenter", "emit Karpenter NodePools instead of node groups"),
                        ("--prefix", "name prefix of the pools (default advised)"),
                        ("--json", "also write the result as JSON here"),
                        ("--stack-out", "also write the stack config here (merge it into a Pulumi.<stack>.yaml)")):
        assert f" {words}" in text and flag in text, flag
    assert advise_main([]) == 2
    assert capsys.readouterr().err == ("error: --demand/--config: not set: exactly one of a demand file or a stack "
                                       "file\n")


@pytest.mark.slow
def test_importing_the_advisor_leaves_scipy_for_when_it_solves() -> None:
    """SciPy costs ~0.8 s to import: every test process and `make advise` on a bad file would pay it."""
    from conftest import printed

    program = "import sys; sys.path.insert(0, '.'); import gpu_slicing.advisor; print('scipy' in sys.modules)"
    assert printed(program) == "False"


def test_a_mixed_demand_by_hand_report_json_and_stack_config() -> None:
    """56 x 1g.5gb + 2 x 3g.20gb on p4d.24xlarge (8 x A100-40GB, 7 compute and 8 memory slices a GPU; $21.96):
    compute 56 + 2 x 3 = 62 slices need 9 GPUs, so 2 nodes; per GPU 4 x 1g.5gb + 1 x 3g.20gb (8 memory, 7 compute
    slices) on both nodes gives 64 and 16. All-balanced (2 x 1g.5gb, 2g.10gb, 3g.20gb a GPU: 16 x 1g.5gb a node)
    needs 4 nodes for the 56; one pool per profile needs 1 + 1."""
    import re

    plan = advisor.advise("p4d.24xlarge", {"1g.5gb": 56, "3g.20gb": 2})
    record = plan.to_json(karpenter=True)
    assert (record["totalNodes"], record["lowerBound"], record["lowerBoundGpus"], record["gap"],
            record["costPerHour"]) == (2, 2, 9, 0, 43.92)
    [pool] = record["pools"]
    assert (pool["nodes"], pool["perNode"], pool["gpuLayouts"]) == (
        2, {"1g.5gb": 32, "3g.20gb": 8}, [{"devices": list(range(8)), "profiles": {"1g.5gb": 4, "3g.20gb": 1}}])
    assert record["naive"] == [{"strategy": "all-balanced", "totalNodes": 4},
                               {"strategy": "one pool per profile (all-1g.5gb + all-3g.20gb)", "totalNodes": 2}]
    assert plan.best_naive == 2
    cfg = record["stackConfig"]
    assert cfg["gpu-slicing:migLayouts"] == {pool["layout"]: pool["gpuLayouts"]}
    assert cfg["gpu-slicing:karpenter"] == {"enabled": True, "nodePools": [
        {"name": pool["name"], "instanceTypes": ["p4d.24xlarge"], "capacityTypes": ["on-demand"],
         "migLayout": pool["layout"], "maxNodes": 2, "consolidateAfter": "10m"}]}
    assert cfg["gpu-slicing:maxGpuNodes"] == 2 and "gpu-slicing:nodeGroups" not in cfg
    assert [(w["profile"], w["replicas"], w["pool"]) for w in cfg["gpu-slicing:workloads"]] == [
        ("1g.5gb", 56, pool["name"]), ("3g.20gb", 2, pool["name"])]
    text = advisor.format_report(plan).splitlines()
    assert text[:2] == ["Instance type: p4d.24xlarge", "Demand: 56 x 1g.5gb, 2 x 3g.20gb"]
    assert re.fullmatch(rf"  {pool['name']}: 2 node\(s\) with custom layout {pool['layout']}, labelled "
                        rf"{pool['layout']}-[0-9a-f]+", text[text.index("Plan:") + 1])
    assert text[text.index("Plan:") + 2:] == [
        "    GPU 0,1,2,3,4,5,6,7: 4 x 1g.5gb + 1 x 3g.20gb",
        "    per node: 32 x 1g.5gb, 8 x 3g.20gb",
        "",
        "Total: 2 node(s), $43.92/h ($21.96 per node-hour)",
        "Lower bound: 2 node(s) (9 GPUs, proven by ILP); gap 0 (optimal)",
        "",
        "Naive choices:",
        "  all-balanced: 4 node(s), $87.84/h; the plan saves 2 node(s)",
        "  one pool per profile (all-1g.5gb + all-3g.20gb): 2 node(s), $43.92/h; the plan saves 0 node(s)"]
