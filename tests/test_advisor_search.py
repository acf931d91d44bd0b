"""MIG layout advisor's search: how long each solve may take and what the search returns when solves run out of
time, judged against node counts worked by hand from the MIG tables (docs/facts.md §2: 7 compute and 8 memory
slices per A100-40GB, 1g.5gb one of each), and stand-ins for the per-split solve where a solve must be slow."""
from __future__ import annotations

import pytest

from gpu_slicing import advisor, catalog


def _slow_unless_given(seconds_needed: float, calls: list[float]):
    """A stand-in for `_pool_ilp` on a split HiGHS needs `seconds_needed` to settle: with less it runs out of time
    undecided; with enough it answers as the real solve does."""
    real = advisor._pool_ilp

    def solve(prob, sizes, seconds, named=None):
        calls.append(seconds)
        if seconds < seconds_needed:
            return None, False
        return real(prob, sizes, seconds, named)

    return solve


def test_the_last_resort_gives_each_single_pool_the_longest_solve(monkeypatch) -> None:
    """57 x 1g.5gb need 9 GPUs (7 a GPU), 2 nodes of 8: a single pool whose solves settle only with the longest
    per-split limit (the last of ILP_CAPS) is still found by the last resort's bisection."""
    calls: list[float] = []
    monkeypatch.setattr(advisor, "_pool_ilp", _slow_unless_given(advisor.ILP_CAPS[-1], calls))
    prob = advisor._Problem.of(catalog.A100_40GB, 8, {"1g.5gb": 57})
    assert advisor._bisect_single_pool(prob, 1, 10) == [(2, (((("1g.5gb", 7),), 8),))]
    assert calls and set(calls) == {advisor.ILP_CAPS[-1]}


PROB, END = object(), 1e12  # the problem and the search's deadline, handed on to every per-split search


def _fits_only(fitting: set[tuple[int, ...]], tried: list[tuple[int, ...]]):
    """A stand-in for `_first_fit`: the first of the splits (pool sizes) that is in `fitting`, as pools; every
    search is of the same problem, within the same deadline."""
    def first_fit(prob, splits, end):
        assert (prob, end) == (PROB, END)
        assert len(tried) < 100, "the search keeps trying splits it has tried"
        for s in splits:
            tried.append(s)
            if s in fitting:
                return [(n, ()) for n in s]
        return None

    return first_fit


def test_a_plan_of_as_many_pools_as_allowed_is_simplified_to_fewer(monkeypatch) -> None:
    """18 nodes in at most 3 pools, where only 13 + 5 and 6 + 6 + 6 fit: 13 + 5 is not among the first 8 two-pool
    splits tried quickly ((17, 1), (9, 9), (16, 2), (10, 8), (15, 3), (11, 7), (14, 4), (12, 6)), so 6 + 6 + 6 is
    found first; with time left the search tries every two-pool split and returns 13 + 5."""
    tried: list[tuple[int, ...]] = []
    monkeypatch.setattr(advisor, "_first_fit", _fits_only({(13, 5), (6, 6, 6)}, tried))
    found = advisor._fit_total(PROB, 18, 3, END)
    assert found == [(13, ()), (5, ())]
    assert tried[:9] == [(18,), (17, 1), (9, 9), (16, 2), (10, 8), (15, 3), (11, 7), (14, 4), (12, 6)]


def test_two_pools_are_tried_before_the_most_allowed(monkeypatch) -> None:
    """10 nodes in at most 3 pools, where 7 + 3 and 4 + 3 + 3 fit: the two-pool split comes first."""
    tried: list[tuple[int, ...]] = []
    monkeypatch.setattr(advisor, "_first_fit", _fits_only({(7, 3), (4, 3, 3)}, tried))
    assert advisor._fit_total(PROB, 10, 3, END) == [(7, ()), (3, ())]


def test_a_three_pool_plan_is_simplified_only_towards_two_pools(monkeypatch) -> None:
    """10 nodes in at most 4 pools, where only 4 + 3 + 3 (and 4 + 2 + 2 + 2) fit: 4 + 3 + 3 is found among the
    quick three-pool splits, no two-pool split fits, and the search ends there, trying no three-pool split again."""
    tried: list[tuple[int, ...]] = []
    monkeypatch.setattr(advisor, "_first_fit", _fits_only({(4, 3, 3), (4, 2, 2, 2)}, tried))
    assert advisor._fit_total(PROB, 10, 4, END) == [(4, ()), (3, ()), (3, ())]
    assert tried.count((4, 3, 3)) == 1


def _clock(monkeypatch, now: float) -> None:
    """The search's clock stopped at `now` (solves here take no time)."""
    monkeypatch.setattr(advisor.time, "perf_counter", lambda: now)


def _undecided_except(refuted: set[tuple[int, ...]], calls: list[tuple[tuple[int, ...], float]]):
    """A stand-in for `_pool_ilp` that refutes the splits in `refuted` and runs out of time on every other one."""
    def solve(prob, sizes, seconds, named=None):
        calls.append((tuple(sizes), seconds))
        return None, tuple(sizes) in refuted

    return solve


def test_a_split_search_past_its_deadline_tries_nothing(monkeypatch) -> None:
    calls: list[tuple[tuple[int, ...], float]] = []
    monkeypatch.setattr(advisor, "_pool_ilp", _undecided_except(set(), calls))
    _clock(monkeypatch, 100.0)
    assert advisor._first_fit(PROB, [(2,), (1, 1)], 100.0) is None  # the deadline is now
    assert advisor._first_fit(PROB, [(2,), (1, 1)], 99.0) is None
    assert calls == []


def test_each_split_gets_a_short_solve_then_the_undecided_longer_ones_within_the_deadline(monkeypatch) -> None:
    """ILP_CAPS (0.02, 0.1, 0.4 s) pass by pass, each cut to the 0.05 s left before the deadline; a split refuted in
    the first pass is not tried again."""
    calls: list[tuple[tuple[int, ...], float]] = []
    monkeypatch.setattr(advisor, "_pool_ilp", _undecided_except({(1, 1)}, calls))
    _clock(monkeypatch, 100.0)
    assert advisor._first_fit(PROB, [(2,), (1, 1)], 100.05) is None
    assert [(s, round(t, 6)) for s, t in calls] == [((2,), 0.02), ((1, 1), 0.02), ((2,), 0.05), ((2,), 0.05)]
    calls.clear()  # 5 ms left: each solve still gets ILP_MIN_SECONDS (10 ms)
    assert advisor._first_fit(PROB, [(2,)], 100.005) is None
    assert [round(t, 6) for _, t in calls] == [0.01, 0.01, 0.01]


def _search_with_fits_from(monkeypatch, fewest: int, lower: int, limit: int):
    """`_search` over a stand-in per-total solve that fits from `fewest` nodes on (the polish and the single-pool
    last resort finding nothing): the plan found and the node totals tried, in order."""
    from types import SimpleNamespace

    tried: list[int] = []
    problem = SimpleNamespace(named=None)

    def fit_total(prob, total, layouts, end):
        assert (prob, layouts) == (problem, 3)  # every total searched for the same problem and pool limit
        assert isinstance(total, int), total  # a node total, split into pools of whole nodes
        tried.append(total)
        return [(total, ())] if total >= fewest else None

    monkeypatch.setattr(advisor, "_fit_total", fit_total)
    monkeypatch.setattr(advisor, "_pool_ilp", lambda *args: (None, True))
    monkeypatch.setattr(advisor, "_bisect_single_pool", lambda prob, lo, hi: None)
    return advisor._search(problem, lower, limit, 3), tried


def test_the_search_gallops_from_the_bound_and_bisects_back_trying_each_total_once(monkeypatch) -> None:
    """Bound 3, fewest that fit 12, limit 20: the bound, the total above it, then the bound + 2, + 4, + 8, + 16
    (5, 7, 11, 19: a hit), then bisection between the last miss and the hit: 15, 13, 12."""
    found, tried = _search_with_fits_from(monkeypatch, 12, 3, 20)
    assert found == [(12, ())]
    assert tried == [3, 4, 5, 7, 11, 19, 15, 13, 12]


def test_a_search_whose_limit_is_the_bound_tries_no_more_nodes(monkeypatch) -> None:
    """maxNodes equal to the bound: only the bound is tried; a plan one node above it would break the limit."""
    found, tried = _search_with_fits_from(monkeypatch, 4, 3, 3)
    assert (found, tried) == (None, [3])


def test_the_bound_and_the_total_above_it_get_their_shares_of_the_budget_the_rest_a_third_of_what_is_left(
        monkeypatch) -> None:
    """On a clock stopped at 100 s: the bound's total may search until 100 + LEVEL_SECONDS, the next one for
    NEXT_LEVEL_SECONDS from now, each gallop or bisection probe a third of the SEARCH_SECONDS left (0.2 s); the
    winner is polished for POLISH_SECONDS, favouring NVIDIA-named configurations."""
    from types import SimpleNamespace

    _clock(monkeypatch, 100.0)
    ends: list[tuple[int, float]] = []
    polish: list[tuple[tuple[int, ...], float, object]] = []

    def fit_total(prob, total, layouts, end):
        ends.append((total, round(end, 6)))
        return [(total, ())] if total >= 6 else None

    def pool_ilp(prob, sizes, seconds, named=None):
        polish.append((tuple(sizes), round(seconds, 6), named))
        return None, True

    monkeypatch.setattr(advisor, "_fit_total", fit_total)
    monkeypatch.setattr(advisor, "_pool_ilp", pool_ilp)
    named = object()
    assert advisor._search(SimpleNamespace(named=named), 3, 20, 3) == [(6, ())]
    level, probe = 100.0 + advisor.LEVEL_SECONDS, round(100.0 + advisor.SEARCH_SECONDS / 3, 6)
    assert ends == [(3, level), (4, 100.0 + advisor.NEXT_LEVEL_SECONDS), (5, probe), (7, probe), (6, probe)]
    assert polish == [((6,), advisor.POLISH_SECONDS, named)]


def test_advising_prints_no_solver_warnings() -> None:
    """SciPy warns (on stderr, under `make advise`) of any solver option it does not know: the advisor passes none.
    56 x 1g.5gb fill one p4d (8 GPUs x 7), the guide's all-1g.5gb."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan = advisor.advise("p4d.24xlarge", {"1g.5gb": 56})
    assert [(p.layout, p.nodes) for p in plan.pools] == [("all-1g.5gb", 1)]
    assert (plan.lower_bound, plan.lower_bound_gpus) == (1, 8)


def test_a_split_that_cannot_hold_the_demand_is_refuted_and_one_that_can_fills_every_gpu() -> None:
    """57 x 1g.5gb: one node holds 8 x 7 = 56, so one pool of one node is refuted (decided, no plan); two pools of
    one node each hold them, each node's 8 GPUs in the one configuration, 7 x 1g.5gb."""
    prob = advisor._Problem.of(catalog.A100_40GB, 8, {"1g.5gb": 57})
    y, decided = advisor._pool_ilp(prob, (1,), 1.0)
    assert (y, decided) == (None, True)
    y, decided = advisor._pool_ilp(prob, (1, 1), 1.0)
    assert decided and y is not None and [list(v) for v in y] == [[8], [8]]


def test_one_custom_configuration_is_preferred_to_two_named_ones() -> None:
    """28 x 1g.5gb + 2 x 3g.20gb on one p4d: 4 GPUs of all-1g.5gb and one of all-3g.20gb (two NVIDIA-named
    configurations) hold them, and so does 3g.20gb + 4 x 1g.5gb (3 + 4 compute, 4 + 4 memory slices) on 7 GPUs or
    more: one configuration, unnamed, is the simpler node, so the node gets it on all 8 GPUs."""
    plan = advisor.advise("p4d.24xlarge", {"1g.5gb": 28, "3g.20gb": 2})
    assert [(p.named, p.nodes, [(g.devices, g.profiles) for g in p.groups]) for p in plan.pools] == [
        (False, 1, [(tuple(range(8)), {"1g.5gb": 4, "3g.20gb": 1})])]


def test_on_a_busy_clock_probes_share_what_is_left_and_the_polish_gets_the_rest(monkeypatch) -> None:
    """Each per-total search here takes 0.13 s from 100 s on. The bound's may run to 100 + LEVEL_SECONDS, the next
    from 100.13 for NEXT_LEVEL_SECONDS; each probe a third of what is left of SEARCH_SECONDS (0.6 s), at least
    3 x ILP_MIN_SECONDS once little is left; the polish what is left of SEARCH_SECONDS + POLISH_SECONDS (0.7 s) at
    100.65, 0.05 s."""
    from types import SimpleNamespace

    now = [100.0]
    monkeypatch.setattr(advisor.time, "perf_counter", lambda: now[0])
    ends: list[float] = []
    polish: list[float] = []

    def fit_total(prob, total, layouts, end):
        ends.append(end)
        now[0] += 0.13
        return [(total, ())] if total >= 6 else None

    def pool_ilp(prob, sizes, seconds, named=None):
        polish.append(seconds)
        return None, True

    monkeypatch.setattr(advisor, "_fit_total", fit_total)
    monkeypatch.setattr(advisor, "_pool_ilp", pool_ilp)
    assert advisor._search(SimpleNamespace(named=None), 3, 20, 3) == [(6, ())]
    assert ends == pytest.approx([100.25, 100.13 + 0.25, 100.26 + 0.34 / 3, 100.39 + 0.21 / 3, 100.52 + 0.03])
    assert polish == pytest.approx([0.05])


def test_when_no_total_fits_the_last_resort_bisects_a_single_pool_from_the_bound_to_the_limit(monkeypatch) -> None:
    from types import SimpleNamespace

    monkeypatch.setattr(advisor, "_fit_total", lambda prob, total, layouts, end: None)
    monkeypatch.setattr(advisor, "_pool_ilp", lambda *args: (None, True))
    asked: list[tuple[int, int]] = []

    problem = SimpleNamespace(named=None)

    def bisect(prob, lo, hi):
        assert prob is problem
        asked.append((lo, hi))
        return [(hi, ())]

    monkeypatch.setattr(advisor, "_bisect_single_pool", bisect)
    assert advisor._search(problem, 3, 20, 3) == [(20, ())]
    assert asked == [(3, 20)]


def test_the_issues_mix_gets_two_named_configurations_per_node() -> None:
    """40 x 1g.5gb, 10 x 2g.10gb, 6 x 3g.20gb on p4d: 2 nodes (the bound). No one configuration holds all three
    profiles often enough (all-balanced's 2 + 1 + 1 on 16 GPUs is 32 x 1g.5gb), so a node needs two: the polish
    picks two an NVIDIA layout covers, all-balanced's and all-1g.5gb's, over any with an unnamed one."""
    plan = advisor.advise("p4d.24xlarge", {"1g.5gb": 40, "2g.10gb": 10, "3g.20gb": 6})
    assert plan.total_nodes == 2
    configs = sorted({tuple(sorted(g.profiles.items())) for p in plan.pools for g in p.groups})
    assert configs == [(("1g.5gb", 2), ("2g.10gb", 1), ("3g.20gb", 1)), (("1g.5gb", 7),)]


def test_every_solve_runs_under_its_limits(monkeypatch) -> None:
    """The GPU-level bound stops at BOUND_NODES (or the backstop), each split's solve at the seconds it is given,
    the polish also at POLISH_NODES: limits that keep `make advise` within its budget."""
    import scipy.optimize

    milp, options = scipy.optimize.milp, []

    def counted(*args, **kwargs):
        options.append(dict(kwargs["options"]))
        return milp(*args, **kwargs)

    monkeypatch.setattr(scipy.optimize, "milp", counted)
    prob = advisor._Problem.of(catalog.A100_40GB, 8, {"1g.5gb": 57})
    assert advisor.gpu_lower_bound(prob.a, prob.d) == 9
    advisor._pool_ilp(prob, (2,), 0.3)
    advisor._pool_ilp(prob, (2,), 0.2, prob.named)
    assert options == [{"mip_rel_gap": 0.0, "node_limit": advisor.BOUND_NODES, "time_limit": advisor.BOUND_BACKSTOP_SECONDS},
                       {"time_limit": 0.3}, {"time_limit": 0.2, "node_limit": advisor.POLISH_NODES}]


@pytest.mark.parametrize("dual, gpus", [(14.0000004, 14), (14.2, 15), (13.0, 13)])
def test_a_bound_cut_short_is_the_dual_bound_rounded_up_past_float_noise(monkeypatch, dual, gpus) -> None:
    """Stopped by its node limit (SciPy status 4), the GPU-level ILP bounds the GPUs by its dual bound rounded up,
    a millionth of slack for float noise: 14.0000004 GPUs is 14, 14.2 is 15."""
    import scipy.optimize

    milp = scipy.optimize.milp

    def stopped(*args, **kwargs):
        res = milp(*args, **kwargs)
        res.status, res.mip_dual_bound = 4, dual
        return res

    monkeypatch.setattr(scipy.optimize, "milp", stopped)
    prob = advisor._Problem.of(catalog.A100_40GB, 8, {"1g.5gb": 57})
    assert advisor.gpu_lower_bound(prob.a, prob.d) == gpus


def test_a_custom_layouts_name_is_the_hash_of_its_compact_json() -> None:
    """Nodes are labelled with the name, so it must not change between releases (a new name re-partitions them):
    `advised-<family>-` and the first 10 hex digits of the SHA-256 of the groups as compact JSON."""
    import hashlib

    plan = advisor.advise("p4d.24xlarge", {"1g.5gb": 28, "3g.20gb": 2})
    canon = '[[[0,1,2,3,4,5,6,7],[["1g.5gb",4],["3g.20gb",1]]]]'
    assert [p.layout for p in plan.pools] == ["advised-p4d-" + hashlib.sha256(canon.encode()).hexdigest()[:10]]


def test_the_best_naive_choice_within_max_nodes_is_the_plan_when_the_search_finds_none(monkeypatch) -> None:
    """16 x 1g.5gb, 8 x 2g.10gb, 8 x 3g.20gb are one all-balanced p4d node (2 + 1 + 1 per GPU): with maxNodes 1,
    exactly its size, that naive choice is the plan should the search find nothing."""
    monkeypatch.setattr(advisor, "_search", lambda *args: None)
    plan = advisor.advise("p4d.24xlarge", {"1g.5gb": 16, "2g.10gb": 8, "3g.20gb": 8}, max_nodes=1)
    assert [(p.layout, p.named, p.nodes) for p in plan.pools] == [("all-balanced", True, 1)]


def test_pools_of_one_layout_merge_keeping_its_name_and_groups() -> None:
    groups = (advisor.DeviceGroup(tuple(range(8)), {"1g.5gb": 7}),)
    pools = [advisor.AdvisedPool("", "all-1g.5gb", True, groups, 2), advisor.AdvisedPool("", "all-1g.5gb", True, groups, 3)]
    assert advisor._name_pools(pools, "gpu") == [advisor.AdvisedPool("gpu-1", "all-1g.5gb", True, groups, 5)]


def test_a_workload_fills_a_pool_exactly_or_splits_with_names_cut_clean() -> None:
    """Two all-1g.5gb pools of 56 and 112 slices: 56 replicas fill the first exactly and go there whole; 160 are
    split over the roomiest first, each piece named `<name>-<pool>` in at most 40 characters, the name cut before
    a trailing '-'."""
    groups = (advisor.DeviceGroup(tuple(range(8)), {"1g.5gb": 7}),)
    pools = [advisor.AdvisedPool("advised-1", "all-1g.5gb", True, groups, 1),
             advisor.AdvisedPool("advised-2", "all-1g.5gb", True, groups, 2)]
    assert advisor._assign(pools, [{"name": "w", "profile": "1g.5gb", "replicas": 56}]) == (
        {"name": "w", "profile": "1g.5gb", "replicas": 56, "pool": "advised-1"},)
    name = "x" * 29 + "-tail"
    assert [(w["name"], w["replicas"], w["pool"]) for w in advisor._assign(
        pools, [{"name": name, "profile": "1g.5gb", "replicas": 160}])] == [
        ("x" * 29 + "-advised-2", 112, "advised-2"), ("x" * 29 + "-advised-1", 48, "advised-1")]
