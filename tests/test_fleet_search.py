"""Fleet advisor: which slot each pod gets and which candidate a cheaper one replaces, checked against sums done by
hand from the catalog's prices (us-east-1 on-demand, 2026-07-20) and the MIG tables (NVIDIA MIG user guide)."""
from __future__ import annotations

import pytest

from gpu_slicing import fleet_advisor
from gpu_slicing.advisor import DeviceGroup
from gpu_slicing.fleet_advisor import FleetDemand, PodClass, Pool, advise_fleet


@pytest.fixture(autouse=True)
def uncached():
    """Per-GPU configurations worked out afresh in each test (a cached answer would hide mutants of what decides
    them)."""
    fleet_advisor.level_configs.cache_clear()


def fleet(pods: list[tuple[str, float, int]], types: list[str], prices: dict[str, float]):
    return advise_fleet(FleetDemand(tuple(PodClass(*p) for p in pods), tuple(types), prices))


def test_a_pod_takes_the_smallest_slot_that_holds_it_not_the_first_pool_listed() -> None:
    """16 x 20 GB and one 5 GB pod, with an L4 node priced at $5.00: one p4d ($21.96, 8 x A100-40GB, 2 x 3g.20gb a
    GPU) holds the 16 big pods, and the small one needs one more GPU: an L4 ($5.00, less than a second p4d):
    $26.96. The g6 pool comes first (its type is listed first), but the 20 GB pods take the 3g.20gb slices, the
    smallest slots that hold them, leaving the 24 GB L4 to the 5 GB pod."""
    plan = fleet([("big", 20, 16), ("small", 5, 1)], ["g6.xlarge", "p4d.24xlarge"], {"g6.xlarge": 5.0})
    assert plan.cost_per_hour == round(21.96 + 5.00, 2)
    assert [(p.instance_type, p.nodes, p.layout, p.pods) for p in plan.pools] == [
        ("g6.xlarge", 1, None, (("small", None, 1),)),
        ("p4d.24xlarge", 1, "all-3g.20gb", (("big", "3g.20gb", 16),))]


def _pool(name: str, itype: str, *groups: DeviceGroup) -> Pool:
    return Pool(name, itype, 1, 1.0, None if itype.startswith("g6") else "custom", False, groups)


def test_slots_of_equal_memory_fill_in_pool_order_then_by_profile_name() -> None:
    """An L4 whole (24 GB) and an RTX PRO 6000 1g.24gb slice hold the same pods: the pool listed first fills first.
    In one pool, 1g.20gb and 2g.20gb slices (both 20 GB on an H100) fill by name, 1g.20gb first."""
    pools = [_pool("a", "g6.xlarge", DeviceGroup((0,), {})),
             _pool("b", "g7e.2xlarge", DeviceGroup((0,), {"1g.24gb": 4}))]
    fleet_advisor._assign(pools, [PodClass("s", 20, 3)])
    assert [p.pods for p in pools] == [(("s", None, 1),), (("s", "1g.24gb", 2),)]
    pools = [_pool("c", "p5.48xlarge", DeviceGroup((0, 1, 2, 3), {"2g.20gb": 3}),
                   DeviceGroup((4, 5, 6, 7), {"1g.20gb": 4}))]
    fleet_advisor._assign(pools, [PodClass("s", 20, 5)])
    assert pools[0].pods == (("s", "1g.20gb", 5),)


def test_a_class_on_slices_and_whole_gpus_of_one_pool_lists_the_whole_gpus_first() -> None:
    """Seven 1g.10gb slices on one H100 and one H100 whole hold eight 10 GB pods: the slices take seven (the
    smaller slots), the whole GPU one. The pool lists the class's whole-GPU piece first, then its slices, the
    order the stack config's workloads are written in."""
    pools = [_pool("d", "p5.48xlarge", DeviceGroup((0,), {"1g.10gb": 7}), DeviceGroup((1,), {}))]
    fleet_advisor._assign(pools, [PodClass("s", 10, 8)])
    assert pools[0].pods == (("s", None, 1), ("s", "1g.10gb", 7))


def test_replacement_costs_tie_within_half_a_cent() -> None:
    """Costs are compared in whole cents: 8 x p5.4xlarge at $1.2506225 cost $10.00498, $10.00 to the cent, the price
    of the p5.48xlarge: a tie, which the one-GPU node (the finer step) wins, so the 8-GPU node is dropped."""
    plan = fleet([("s", 10, 1)], ["p5.48xlarge", "p5.4xlarge"], {"p5.48xlarge": 10.0, "p5.4xlarge": 1.2506225})
    assert plan.dropped == {"p5.48xlarge": "8 x p5.4xlarge"}
    assert plan.cost_per_hour == round(1.2506225, 2)


def _cut_single_type_solves(monkeypatch, bound: float | None) -> list[int]:
    """Each single-type solve (the naive choice's) stopped by its node limit: with its fleet and a dual bound of
    `bound`, or (None) before it found any fleet. Returns the node limits those solves were given."""
    solve, limits = fleet_advisor._Program.solve, []

    def cut(self, only, node_limit, nodes_fixed=None):
        found = solve(self, only, node_limit, nodes_fixed)
        if only is None or found is None:
            return found
        limits.append(node_limit)
        return None if bound is None else (found[0], bound, *found[2:])

    monkeypatch.setattr(fleet_advisor._Program, "solve", cut)
    return limits


def test_the_single_type_choice_is_the_cheapest_fleet_found_not_the_lowest_bound(monkeypatch) -> None:
    """One 20 GB pod: an L4 node (g6.xlarge) costs $0.80, an L40S node (g6e.xlarge) $1.86. With both single-type
    solves cut short at a dual bound of $0.00, the naive choice is still the L4's fleet at what its node costs."""
    limits = _cut_single_type_solves(monkeypatch, 0.0)
    plan = fleet([("s", 20, 1)], ["g6.xlarge", "g6e.xlarge"], {})
    assert plan.naive[1] == fleet_advisor.Naive("the cheapest single instance type (g6.xlarge)", 0.80,
                                                {"g6.xlarge": 1})
    assert limits == [fleet_advisor.SOLVE_NODES] * 2  # limited in nodes, not seconds: the same on a busy machine


def test_no_single_type_fleet_found_says_the_pods_cannot_be_served(monkeypatch) -> None:
    _cut_single_type_solves(monkeypatch, None)
    plan = fleet([("s", 20, 1)], ["g6.xlarge", "g6e.xlarge"], {})
    assert plan.naive[1] == fleet_advisor.Naive("the cheapest single instance type", None,
                                                reason="no one candidate type holds every pod")
    assert ("  the cheapest single instance type: cannot serve the pods (no one candidate type holds every pod)"
            in fleet_advisor.format_fleet_report(plan).splitlines())


def test_per_gpu_configurations_are_the_level_counts_no_other_reaches() -> None:
    """An A100-40GB (7 compute, 8 memory slices; 1g.5gb takes 1 + 1, 3g.20gb 3 + 4, NVIDIA MIG user guide) for pods
    of 5 and 20 GB: with no 20 GB slot, 7 x 1g.5gb; with one, 3g.20gb leaves 4 + 4 slices, 4 x 1g.5gb; with two,
    nothing is left. Every other configuration (4g.20gb + 3 x 1g.5gb, 3g.20gb + 2g.10gb + 1g.5gb, 5 x 1g.5gb, ...)
    has at most these slot counts, (slots for 5 GB pods, slots for 20 GB pods), and is left out; so is the whole
    GPU (one slot, (1, 1))."""
    from gpu_slicing import catalog

    assert fleet_advisor.level_configs(catalog.A100_40GB, 40.0, True, (5.0, 20.0)) == (
        ((2, 2), (("3g.20gb", 2),)), ((5, 1), (("1g.5gb", 4), ("3g.20gb", 1))), ((7, 0), (("1g.5gb", 7),)))


def test_a_nodes_gpus_share_the_fewest_configurations() -> None:
    """20 x 5 GB and 3 x 20 GB on one p4d ($21.96): one configuration, 3g.20gb + 4 x 1g.5gb, on 5 GPUs holds them
    (20 small slots, 5 large), so the node gets that one, not 3g.20gb x 2 on some GPUs and 7 x 1g.5gb on others."""
    plan = fleet([("small", 5, 20), ("big", 20, 3)], ["p4d.24xlarge"], {})
    assert (plan.cost_per_hour, plan.total_nodes) == (21.96, 1)
    assert [g.profiles for p in plan.pools for g in p.groups if g.profiles] == [{"1g.5gb": 4, "3g.20gb": 1}]
    # 7 x 5 GB and one 20 GB: 3g.20gb + 4 x 1g.5gb on 2 GPUs, or 2 x 3g.20gb on 4, each one configuration
    plan = fleet([("small", 5, 7), ("big", 20, 1)], ["p4d.24xlarge"], {})
    assert (plan.cost_per_hour, plan.total_nodes) == (21.96, 1)
    assert len({tuple(g.profiles.items()) for p in plan.pools for g in p.groups if g.profiles}) == 1


def test_advising_prints_no_solver_warnings() -> None:
    """SciPy warns (on stderr, under `make advise`) of any solver option it does not know: the advisor passes none."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan = fleet([("s", 10, 9)], ["p5.48xlarge"], {})
    assert (plan.cost_per_hour, plan.total_nodes) == (55.04, 1)


def test_a_solve_stopped_by_the_time_backstop_states_its_dual_bound(monkeypatch) -> None:
    """HiGHS stopped by the wall-clock backstop (SciPy status 1) with a fleet in hand: the bound is its dual bound,
    not the fleet's cost, so the plan does not claim to be optimal. Simulated on the first solve (the cheapest
    fleet): 9 x 10 GB on one p5.48xlarge ($55.04), with a dual bound $5.0037 below, stated to the cent."""
    import scipy.optimize

    milp, calls = scipy.optimize.milp, []

    def stopped(*args, **kwargs):
        res = milp(*args, **kwargs)
        calls.append(res.status)
        if len(calls) == 1:
            res.status, res.mip_dual_bound = 1, res.fun - 5.0037
        return res

    monkeypatch.setattr(scipy.optimize, "milp", stopped)
    plan = fleet([("s", 10, 9)], ["p5.48xlarge"], {})
    assert (plan.cost_per_hour, plan.lower_bound, plan.gap) == (55.04, 50.04, 5.0)


def test_a_solve_stopped_before_any_bound_states_a_bound_of_zero(monkeypatch) -> None:
    """HiGHS stopped by its node limit (SciPy status 4) with a fleet but no finite dual bound: the plan claims no
    bound ($0.00) and so states its whole cost as the gap, never a bound it does not have."""
    import scipy.optimize

    milp, calls = scipy.optimize.milp, []

    def stopped(*args, **kwargs):
        res = milp(*args, **kwargs)
        calls.append(res.status)
        if len(calls) == 1:
            res.status, res.mip_dual_bound = 4, float("-inf")
        return res

    monkeypatch.setattr(scipy.optimize, "milp", stopped)
    plan = fleet([("s", 10, 9)], ["p5.48xlarge"], {})
    assert (plan.cost_per_hour, plan.lower_bound, plan.gap) == (55.04, 0.0, 55.04)


def test_a_price_for_no_candidate_suggests_only_a_near_miss() -> None:
    """`p5.4xl` is 75% like p5.4xlarge (difflib's ratio), short of the 80% that makes a typo: no suggestion, only the
    candidates; `p4.24xlarge` (96% like p4d.24xlarge) gets one."""
    from gpu_slicing.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        fleet([("s", 20, 1)], ["g6.xlarge"], {"p5.4xl": 5.0})
    assert str(e.value) == "pricePerHour.p5.4xl: 5.0 is not valid: a price for one of the candidate types: g6.xlarge"
    with pytest.raises(ConfigError) as e:
        fleet([("s", 20, 1)], ["g6.xlarge"], {"p4.24xlarge": 5.0})
    assert str(e.value) == ("pricePerHour.p4.24xlarge: 5.0 is not valid: a price for one of the candidate types: "
                            "did you mean p4d.24xlarge? g6.xlarge")


def test_every_solve_is_limited_in_branch_and_bound_nodes(monkeypatch) -> None:
    """The cheapest fleet and each single-type fleet stop at SOLVE_NODES, the polish at POLISH_NODES: node limits,
    not seconds, so a busy machine gets the same plan as an idle one."""
    import scipy.optimize

    milp, limits = scipy.optimize.milp, []

    def counted(*args, **kwargs):
        limits.append(kwargs["options"]["node_limit"])
        return milp(*args, **kwargs)

    monkeypatch.setattr(scipy.optimize, "milp", counted)
    fleet([("s", 20, 1)], ["g6.xlarge", "g6e.xlarge"], {})
    solve, polish = fleet_advisor.SOLVE_NODES, fleet_advisor.POLISH_NODES
    assert limits == [solve, polish, solve, solve]  # the fleet, its polish, then one solve per candidate type
