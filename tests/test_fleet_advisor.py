"""Fleet advisor (pods stated in GPU memory -> the cheapest fleet): optima are checked against a brute force
written here (every fleet by cost, every way to put the pods on its GPUs, the placement rules for each GPU)
and against sums done by hand from the catalog's prices (us-east-1 on-demand, 2026-07-20) and the MIG
tables (NVIDIA MIG user guide; nvidia-smi read off real cards); never against the advisor's own output."""
from __future__ import annotations

import copy
import dataclasses
import itertools
import json
from functools import lru_cache
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from gpu_slicing import catalog, placement
from gpu_slicing.errors import ConfigError
from gpu_slicing.fleet_advisor import FleetDemand, PodClass, advise_fleet, format_fleet_report, load_fleet_demand

ROOT = Path(__file__).resolve().parents[1]
ISSUE = {"pods": [{"name": "embed", "memoryGB": 5, "replicas": 40}, {"name": "infer", "memoryGB": 20, "replicas": 10},
                  {"name": "tune", "memoryGB": 70, "replicas": 2}],
         "instanceTypes": ["p4d.24xlarge", "p5.48xlarge", "g6.xlarge", "g6e.xlarge"],
         "pricePerHour": {"p4d.24xlarge": 21.96}}


def fleet(pods: list[tuple[str, float, int]], types: list[str] | None = None, prices: dict | None = None):
    return advise_fleet(FleetDemand(tuple(PodClass(*p) for p in pods), tuple(types) if types else None,
                                    prices or {}))


def nodes_of(plan) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in plan.pools:
        out[p.instance_type] = out.get(p.instance_type, 0) + p.nodes
    return out


def assert_valid(plan) -> None:
    """Every pool's GPUs place under the rules, every pod has a slot that holds it, and the cost adds up."""
    pods = {c.name: c for c in plan.pods}
    placed = {c.name: 0 for c in plan.pods}
    for p in plan.pools:
        it = catalog.INSTANCE_TYPES[p.instance_type]
        assert sorted(d for g in p.groups for d in g.devices) == list(range(it.gpu_count))
        for g in p.groups:
            assert not g.profiles or placement.why_not(it.gpu, g.profiles) is None
        room: dict[str | None, int] = {}
        for g in p.groups:
            for q, n in (g.profiles.items() if g.profiles else [(None, 1)]):
                room[q] = room.get(q, 0) + n * len(g.devices) * p.nodes
        for cls, q, n in p.pods:
            gb = int(q.split(".")[1][:-2]) if q else it.gpu.memory_gib
            assert gb >= pods[cls].memory_gb, (cls, q)
            room[q] -= n
            placed[cls] += n
        assert all(v >= 0 for v in room.values()), (p.name, room)
    assert placed == {c.name: c.replicas for c in plan.pods}
    assert plan.cost_per_hour == round(sum(p.nodes * p.price for p in plan.pools), 2)


# --- an independent brute force ------------------------------------------------------------------------

def _gb(profile: str) -> int:
    return int(profile.split(".")[1].split("gb")[0])


@lru_cache(maxsize=None)
def gpu_holds(itype: str, pods: tuple[float, ...]) -> bool:
    """Whether one GPU of `itype` holds these pods: one pod on the whole GPU, or each pod on a slice (any
    profile, variants included, of at least its memory) with the slices placeable together."""
    it = catalog.INSTANCE_TYPES[itype]
    if len(pods) == 1 and pods[0] <= it.gpu.memory_gib:
        return True
    if not it.gpu.mig_capable:
        return False

    def choose(k: int, counts: dict[str, int]) -> bool:
        if placement.why_not(it.gpu, counts) is not None:
            return False
        if k == len(pods):
            return True
        return any(choose(k + 1, {**counts, p.name: counts.get(p.name, 0) + 1})
                   for p in it.gpu.profiles if _gb(p.name) >= pods[k])

    return choose(0, {})


def holds(gpus: list[str], pods: list[float]) -> bool:
    """Whether GPUs (by instance type) hold the pods: each pod, largest first, tried on every GPU (one of
    each kind of identical GPUs)."""
    state = [()] * len(gpus)

    def place(k: int) -> bool:
        if k == len(pods):
            return True
        tried = set()
        for i, t in enumerate(gpus):
            key = (t, state[i])
            if key in tried:
                continue
            tried.add(key)
            new = tuple(sorted(state[i] + (pods[k],), reverse=True))
            if gpu_holds(t, new):
                old, state[i] = state[i], new
                if place(k + 1):
                    return True
                state[i] = old
        return False

    return place(0)


def brute_force_cost(pods: list[tuple[str, float, int]], types: list[str], prices: dict[str, float]) -> float:
    """The cheapest fleet: every node count per type (each pod needs at most one GPU), by cost."""
    sizes = sorted((m for _, m, r in pods for _ in range(r)), reverse=True)
    its = [catalog.INSTANCE_TYPES[t] for t in types]
    price = [prices.get(t.name, t.on_demand_usd_per_hour) for t in its]
    ranges = [range(-(-len(sizes) // t.gpu_count) + 1) for t in its]
    fleets = sorted(itertools.product(*ranges), key=lambda n: sum(k * p for k, p in zip(n, price)))
    for n in fleets:
        gpus = [t.name for t, k in zip(its, n) for _ in range(k * t.gpu_count)]
        if len(gpus) * 7 >= len(sizes) and holds(gpus, sizes):
            return round(sum(k * p for k, p in zip(n, price)), 2)
    raise AssertionError("no fleet holds the pods")


SMALL_TYPES = ["p5.4xlarge", "g6.xlarge", "g5.xlarge", "g6e.xlarge", "g7e.2xlarge", "p4d.24xlarge", "p5.48xlarge"]


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(types=st.lists(st.sampled_from(SMALL_TYPES), min_size=1, max_size=3, unique=True),
       pods=st.lists(st.tuples(st.sampled_from([3, 5, 10, 12, 20, 24, 35, 40, 48, 70, 80, 90]), st.integers(1, 2)),
                     min_size=1, max_size=3),
       factors=st.lists(st.sampled_from([0.25, 0.5, 1.0, 1.0, 3.0]), min_size=3, max_size=3))
def test_the_optimum_matches_a_brute_force(types, pods, factors) -> None:
    classes = [(f"c{i}", float(m), r) for i, (m, r) in enumerate(pods)]
    biggest = max(catalog.INSTANCE_TYPES[t].gpu.memory_gib for t in types)
    prices = {t: round(catalog.INSTANCE_TYPES[t].on_demand_usd_per_hour * f, 2) for t, f in zip(types, factors)}
    if any(m > biggest for _, m, _ in classes):
        with pytest.raises(ConfigError):
            fleet(classes, types, prices)
        return
    plan = fleet(classes, types, prices)
    want = brute_force_cost(classes, types, prices)
    assert (plan.cost_per_hour, plan.lower_bound, plan.gap) == (want, want, 0)
    assert_valid(plan)


@pytest.mark.slow
def test_importing_the_fleet_advisor_leaves_scipy_for_when_it_solves() -> None:
    """`make advise` on a bad pods file must not pay SciPy's import (~0.8 s)."""
    from conftest import printed

    assert printed("import sys; sys.path.insert(0, '.'); import tools.advise; print('scipy' in sys.modules)") == "False"


def test_brute_force_sees_the_mig_geometry() -> None:
    # the oracle itself: an A100-40GB holds 7 x 5 GB on 1g.5gb but not 8; two 20 GB on 3g.20gb but not three;
    # a whole L4 holds one 20 GB pod and nothing else
    assert gpu_holds("p4d.24xlarge", (5.0,) * 7) and not gpu_holds("p4d.24xlarge", (5.0,) * 8)
    assert gpu_holds("p4d.24xlarge", (20.0, 20.0)) and not gpu_holds("p4d.24xlarge", (20.0, 20.0, 5.0))
    assert gpu_holds("g6.xlarge", (20.0,)) and not gpu_holds("g6.xlarge", (5.0, 5.0))


# --- the issue's facts, by hand ------------------------------------------------------------------------------

def test_a_20gb_pod_is_cheaper_on_a_whole_l4_than_on_a_p4d_slice() -> None:
    # p4d: $21.96 for 8 A100-40GB, 2 x 3g.20gb each: 16 pods a node, $1.37 a pod. g6.xlarge: one L4 (24 GB),
    # $0.80 (the issue quotes $0.81; the catalog keeps Karpenter's us-east-1 table of 2026-07-20)
    alone = fleet([("infer", 20, 16)], ["p4d.24xlarge"])
    assert (alone.cost_per_hour, nodes_of(alone)) == (21.96, {"p4d.24xlarge": 1})
    assert [(p.layout, p.pods) for p in alone.pools] == [("all-3g.20gb", (("infer", "3g.20gb", 16),))]
    assert round(21.96 / 16, 2) == 1.37
    assert fleet([("infer", 20, 17)], ["p4d.24xlarge"]).cost_per_hour == 43.92
    both = fleet([("infer", 20, 16)], ["p4d.24xlarge", "g6.xlarge"])
    assert (both.cost_per_hour, nodes_of(both)) == (12.80, {"g6.xlarge": 16})
    assert_valid(both)


def test_a_5gb_pod_is_cheapest_as_a_p4d_1g_slice() -> None:
    # 56 x 5 GB = 8 GPUs x 7 x 1g.5gb = one p4d, $21.96 ($0.39 a pod); on whole GPUs the cheapest is the
    # arm64 g5g.xlarge (T4G) at $0.42, 56 x 0.42 = $23.52. A 57th pod adds the cheapest whole GPU.
    plan = fleet([("embed", 5, 56)])
    assert (plan.cost_per_hour, nodes_of(plan)) == (21.96, {"p4d.24xlarge": 1})
    assert plan.pools[0].layout == "all-1g.5gb"
    assert round(21.96 / 56, 2) == 0.39
    more = fleet([("embed", 5, 57)])
    assert (more.cost_per_hour, nodes_of(more)) == (22.38, {"p4d.24xlarge": 1, "g5g.xlarge": 1})
    assert_valid(more)


def test_a_70gb_pod_needs_an_80gb_class_gpu_and_the_rest_of_its_node_takes_slices() -> None:
    # among the default candidates the cheapest GPU of >= 70 GB is the RTX PRO 6000 (96 GB) of g7e.2xlarge, $3.36
    plan = fleet([("tune", 70, 1)])
    assert (plan.cost_per_hour, nodes_of(plan)) == (3.36, {"g7e.2xlarge": 1})
    # on a p5.48xlarge ($55.04, 8 x H100-80GB) one GPU runs the pod whole; the other 7 take 7 x 1g.10gb each
    plan = fleet([("tune", 70, 1), ("embed", 5, 49)], ["p5.48xlarge", "g6.xlarge"])
    assert (plan.cost_per_hour, nodes_of(plan)) == (55.04, {"p5.48xlarge": 1})
    assert sorted(plan.pools[0].pods) == [("embed", "1g.10gb", 49), ("tune", None, 1)]
    assert_valid(plan)
    # the 50th embedding pod costs one L4 more
    assert fleet([("tune", 70, 1), ("embed", 5, 50)], ["p5.48xlarge", "g6.xlarge"]).cost_per_hour == 55.84


def test_the_issues_example() -> None:
    # One p5 is needed for the 70 GB pods (2 whole GPUs); its other 6 GPUs have 42 compute and 48 memory slices:
    # e embed (1g.10gb: 1 + 1) and i infer (1g.20gb: 1 + 2) with e + i <= 42 and e + 2i <= 48 hold 36 + 6 at most.
    # The other 8 pods take one $0.80 L4 each: 55.04 + 6.40 = $61.44.
    plan = advise_fleet(load_fleet_demand(ISSUE))
    assert (plan.cost_per_hour, plan.lower_bound, plan.gap) == (61.44, 61.44, 0)
    assert nodes_of(plan) == {"p5.48xlarge": 1, "g6.xlarge": 8}
    assert_valid(plan)
    # Naive: all-balanced p5 (per GPU 2 x 1g.10gb, 2g.20gb, 3g.40gb: 32 slices a node) holds the 50 smaller pods
    # on 2 nodes; the 70 GB pods take a third, all-disabled: $165.12. The best single type is p5 alone:
    # one node's 6 free GPUs hold 48 memory slices, the pods need 40 + 20, so two nodes: $110.08.
    assert [(n.cost_per_hour, dict(n.nodes)) for n in plan.naive] == [
        (165.12, {"p5.48xlarge": 3}), (110.08, {"p5.48xlarge": 2})]
    text = format_fleet_report(plan)
    assert "Time-slicing is not used" in text and "Host CPU and RAM" in text and "optimal" in text


def test_types_that_are_never_cheaper_are_dropped_and_the_optimum_kept() -> None:
    # 8 x p5.4xlarge cost what one p5.48xlarge costs (8 x 6.88 = 55.04): the 8-GPU node is dropped
    plan = fleet([("tune", 70, 9)], ["p5.48xlarge", "p5.4xlarge"])
    assert plan.dropped == {"p5.48xlarge": "8 x p5.4xlarge"}
    assert (plan.cost_per_hour, nodes_of(plan)) == (round(9 * 6.88, 2), {"p5.4xlarge": 9})
    # whole GPUs: an A10G (g5.xlarge, 24 GB, $1.01) holds nothing an L4 (g6.xlarge, 24 GB, $0.80) does not;
    # an L40S (g6e.xlarge, 48 GB, $1.86) holds a 30 GB pod, which no 24 GB GPU does
    plan = fleet([("mid", 30, 1), ("small", 20, 2)], ["g5.xlarge", "g6.xlarge", "g6e.xlarge"])
    assert plan.dropped == {"g5.xlarge": "1 x g6.xlarge"}
    assert (plan.cost_per_hour, nodes_of(plan)) == (3.46, {"g6e.xlarge": 1, "g6.xlarge": 2})
    # at a discount the 8-GPU node wins for 8 pods and more
    cheap = fleet([("tune", 70, 9)], ["p5.48xlarge", "p5.4xlarge"], {"p5.48xlarge": 40.0})
    assert (cheap.cost_per_hour, nodes_of(cheap)) == (46.88, {"p5.48xlarge": 1, "p5.4xlarge": 1})


def test_pools_stop_at_100_nodes_and_a_fleet_over_a_stacks_1000_says_so() -> None:
    plan = fleet([("a", 20, 1001)], ["g6.xlarge"])
    assert [p.nodes for p in plan.pools] == [100] * 10 + [1]
    assert len({p.name for p in plan.pools}) == 11
    assert "one stack runs at most 1000 GPU nodes" in format_fleet_report(plan)
    assert "at most 1000" not in format_fleet_report(fleet([("a", 20, 1000)], ["g6.xlarge"]))


def test_a_solve_cut_short_states_its_gap(monkeypatch) -> None:
    """When HiGHS's node limit runs out the bound is its dual bound: the report and JSON state the gap."""
    from gpu_slicing import fleet_advisor

    solve = fleet_advisor._Program.solve

    def short(self, only, node_limit, nodes_fixed=None):
        found = solve(self, only, node_limit, nodes_fixed)
        return found if found is None or only is not None else (found[0], found[1] - 10.0, *found[2:])

    monkeypatch.setattr(fleet_advisor._Program, "solve", short)
    plan = advise_fleet(load_fleet_demand(ISSUE))
    assert (plan.cost_per_hour, plan.lower_bound, plan.gap) == (61.44, 51.44, 10.0)
    assert "at most $10.00/h above the optimum" in format_fleet_report(plan)
    assert plan.to_json()["gap"] == 10.0


def test_workload_names_stay_unique_when_a_class_is_split() -> None:
    # 9 pods of 70 GB: one p5.48xlarge node (8 whole GPUs, $55.04) and one p5.4xlarge ($6.88) at a p5.48 discount
    plan = fleet([("a", 70, 9), ("a-1", 70, 1)], ["p5.48xlarge", "p5.4xlarge"], {"p5.48xlarge": 40.0})
    names = [w["name"] for w in plan.workloads()]
    assert len(names) == len(set(names)) and "a-1" in names
    assert sum(w["replicas"] for w in plan.workloads()) == 10


def test_fractional_vgpus_only_when_named() -> None:
    plan = fleet([("tiny", 3, 1)])
    assert "g6f.large" in plan.skipped and "g6f.large" not in {c.name for c in plan.candidates}
    # named, a 1/8 L4 counts 3 GB: the pod takes a $0.20 g6f.large; a 4 GB pod does not fit it
    assert nodes_of(fleet([("tiny", 3, 1)], ["g6f.large", "g6.xlarge"])) == {"g6f.large": 1}
    assert nodes_of(fleet([("tiny", 4, 1)], ["g6f.large", "g6.xlarge"])) == {"g6.xlarge": 1}


# --- errors name the field -------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, key, words", [
    ({"pods": [{"name": "a", "memoryGB": 50, "replicas": 1}], "instanceTypes": ["p4d.24xlarge", "g6e.xlarge"]},
     "pods[0].memoryGB", "g6e.xlarge, L40S) has 48 GB"),
    ({"pods": [{"name": "a", "memoryGB": 5}], "instanceTypes": ["g6.xlarge", "p4d.24xlarg"]},
     "instanceTypes[1]", "did you mean p4d.24xlarge"),
    ({"pods": [{"name": "a", "memoryGB": 5}], "instanceTypes": ["p6e-gb200.36xlarge"]},
     "instanceTypes[0]", "Capacity Blocks"),
    ({"pods": [{"name": "a", "memoryGB": 5}], "instanceTypes": ["g6.xlarge"], "pricePerHour": {"p4d.24xlarge": 9}},
     "pricePerHour.p4d.24xlarge", "candidate types: g6.xlarge"),
    ({"pods": [{"name": "a", "memoryGB": 5}], "pricePerHour": {"g6.xlarge": -1}}, "pricePerHour.g6.xlarge", "than 0"),
    ({"pods": [{"name": "a", "memoryGB": 5}], "instanceType": ["g6.xlarge"]}, "instanceType", "instanceTypes"),
    ({"pods": [{"name": "a", "memGB": 5}]}, "pods[0].memGB", "did you mean memoryGB"),
    ({"pods": [{"name": "a", "memoryGB": "5"}]}, "pods[0].memoryGB", "number greater than 0"),
    ({"pods": [{"name": "a", "memoryGB": 5, "replicas": 0}]}, "pods[0].replicas", "from 1"),
    ({"pods": [{"name": "A", "memoryGB": 5}]}, "pods[0].name", "DNS label"),
    ({"pods": [{"name": "a", "memoryGB": 5}, {"name": "a", "memoryGB": 6}]}, "pods[1].name", "pods[0] has it"),
    ({"pods": []}, "pods", "non-empty"),
])
def test_bad_demands_name_the_field(raw, key, words) -> None:
    with pytest.raises(ConfigError) as e:
        advise_fleet(load_fleet_demand(raw))
    assert e.value.key == key and words in str(e.value), str(e.value)


def test_a_type_in_no_price_table_needs_a_price(monkeypatch) -> None:
    it = catalog.INSTANCE_TYPES["g6.xlarge"]
    monkeypatch.setitem(catalog.INSTANCE_TYPES, "g6.xlarge", dataclasses.replace(it, on_demand_usd_per_hour=None))
    raw = {"pods": [{"name": "a", "memoryGB": 5}], "instanceTypes": ["g6.xlarge"]}
    with pytest.raises(ConfigError) as e:
        advise_fleet(load_fleet_demand(raw))
    assert e.value.key == "pricePerHour.g6.xlarge" and "no price table" in str(e.value)
    priced = advise_fleet(load_fleet_demand({**raw, "pricePerHour": {"g6.xlarge": 0.5}}))
    assert priced.cost_per_hour == 0.5
    assert priced.stack_config()["config"]["gpu-slicing:pricePerHour"] == {"g6.xlarge": 0.5}
    # among the default candidates such a type is left out, saying why, unless priced
    default = advise_fleet(load_fleet_demand({"pods": raw["pods"]}))
    assert "no price table" in default.skipped["g6.xlarge"] and "g6.xlarge" not in {c.name for c in default.candidates}
    assert "g6.xlarge" in {c.name for c in advise_fleet(load_fleet_demand(
        {"pods": raw["pods"], "pricePerHour": {"g6.xlarge": 0.5}})).candidates}


# --- output: JSON, stack config, CLI --------------------------------------------------------------------------

def advise_main(argv: list[str]) -> int:
    from tools.advise import main
    return main(argv)


def test_cli_json_and_stack_config(tmp_path: Path, capsys) -> None:
    demand = tmp_path / "d.yaml"
    demand.write_text(yaml.safe_dump(ISSUE))
    out = tmp_path / "o.json"
    assert advise_main([f"DEMAND={demand}", f"JSON={out}"]) == 0
    text = capsys.readouterr().out
    assert "Total: $61.44/h on 9 node(s)" in text and "gpu-slicing:nodeGroups" in text
    record = json.loads(out.read_text())
    assert (record["costPerHour"], record["lowerBound"]) == (61.44, 61.44)
    pools = {p["instanceType"]: p for p in record["pools"]}
    assert pools.keys() == {"p5.48xlarge", "g6.xlarge"} and pools["g6.xlarge"]["nodes"] == 8
    assert "gpuLayouts" in pools["p5.48xlarge"] and "gpuLayouts" not in pools["g6.xlarge"]
    assert sum(p["replicas"] for pool in record["pools"] for p in pool["pods"]) == 52
    assert [n["costPerHour"] for n in record["naive"]] == [165.12, 110.08]
    cfg = record["stackConfig"]
    assert cfg["gpu-slicing:maxGpuNodes"] == 9
    assert {w.get("profile", "gpus") for w in cfg["gpu-slicing:workloads"]} == {"1g.10gb", "1g.20gb", "gpus"}


def test_cli_refuses_per_profile_flags_with_a_pods_demand(tmp_path: Path, capsys) -> None:
    demand = tmp_path / "d.yaml"
    demand.write_text(yaml.safe_dump(ISSUE))
    assert advise_main(["--demand", str(demand), "--price", "3"]) == 2
    assert "--price" in capsys.readouterr().err


def _merge(base: dict, advised: dict) -> dict:
    cfg = copy.deepcopy(base)
    for k in ("gpu-slicing:nodeGroups", "gpu-slicing:workloads", "gpu-slicing:migLayouts"):
        cfg.pop(k, None)
    karpenter = cfg.pop("gpu-slicing:karpenter", {})
    if "gpu-slicing:karpenter" in advised:
        cfg["gpu-slicing:karpenter"] = {**karpenter, **advised["gpu-slicing:karpenter"]}
    return cfg | {k: v for k, v in advised.items() if k != "gpu-slicing:karpenter"}


@pytest.mark.slow
@pytest.mark.parametrize("demand, karpenter", [
    (ISSUE, False),
    ({"pods": ISSUE["pods"] + [{"name": "vision", "memoryGB": 40, "replicas": 3}]}, True),
    (yaml.safe_load((ROOT / "bench" / "fleet" / "05-reserved-discounts.yaml").read_text()), False),
])
def test_round_trip_through_make_plan(tmp_path: Path, dev, capsys, demand, karpenter) -> None:
    """The CLI's stack config merged into the dev stack, then the offline plan (`make plan`'s tools.plan.main):
    every workload fits, and node groups cost what the advisor said (at the demand's prices, carried over)."""
    path = tmp_path / "demand.yaml"
    path.write_text(yaml.safe_dump(demand))
    out, advice = tmp_path / "advised.yaml", tmp_path / "advice.json"
    assert advise_main(["--demand", str(path), "--stack-out", str(out), "--json", str(advice)]
                       + (["--karpenter"] if karpenter else [])) == 0
    stack_file = tmp_path / "Pulumi.advised.yaml"
    stack_file.write_text(yaml.safe_dump({"config": _merge(dev, yaml.safe_load(out.read_text())["config"])}))
    record = tmp_path / "plan.json"
    from tools import plan

    assert plan.main(["--config", str(stack_file), "--json", str(record), "--quiet"]) == 0
    capacity = json.loads(record.read_text())["capacity"]
    workloads = capacity["workloads"]
    assert workloads and all(w["fits"] for w in workloads), workloads
    assert sum(w["requested"] for w in workloads) == sum(p["replicas"] for p in demand["pods"])
    if not karpenter:
        assert capacity["usdPerHour"] == json.loads(advice.read_text())["costPerHour"]


def test_the_docs_show_the_issues_example_with_its_real_output(capsys) -> None:
    doc = (ROOT / "docs" / "advisor.md").read_text()
    example = ROOT / "bench" / "fleet" / "01-issue-example.yaml"
    assert yaml.safe_load(example.read_text()) == ISSUE and example.read_text().split("\n", 1)[1] in doc
    assert advise_main(["--demand", str(example)]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("solved in ")]
    shown = doc.split("```text\n", 1)[1].split("```", 1)[0]
    assert shown.strip() == "\n".join(printed).strip()


def test_one_named_pool_by_hand_report_json_and_stack_config() -> None:
    """16 pods of 20 GB on p4d.24xlarge ($21.96, 8 x A100-40GB): 2 x 3g.20gb per GPU hold 16, one node under
    NVIDIA's all-3g.20gb. Naive all-balanced (per GPU 2 x 1g.5gb, 1 x 2g.10gb, 1 x 3g.20gb) holds one such
    pod per GPU, 8 a node: 2 nodes, $43.92."""
    plan = fleet([("infer", 20, 16)], ["p4d.24xlarge"])
    record = plan.to_json()
    assert (record["pods"], record["candidates"], record["costPerHour"], record["lowerBound"], record["gap"],
            record["totalNodes"]) == ([{"name": "infer", "memoryGB": 20, "replicas": 16}], {"p4d.24xlarge": 21.96},
                                      21.96, 21.96, 0, 1)
    [pool] = record["pools"]
    assert {k: v for k, v in pool.items() if k != "gpuLayouts"} == {
        "name": "advised-p4d-1", "instanceType": "p4d.24xlarge", "nodes": 1, "pricePerNodeHour": 21.96,
        "costPerHour": 21.96, "layout": "all-3g.20gb", "pods": [{"name": "infer", "profile": "3g.20gb", "replicas": 16}]}
    assert record["naive"] == [
        {"strategy": "everything on p4d.24xlarge (the most GPU memory) under all-balanced", "costPerHour": 43.92,
         "nodes": {"p4d.24xlarge": 2}},
        {"strategy": "the cheapest single instance type (p4d.24xlarge)", "costPerHour": 21.96,
         "nodes": {"p4d.24xlarge": 1}}]
    workload = {"name": "infer", "profile": "3g.20gb", "replicas": 16, "pool": "advised-p4d-1"}
    assert plan.stack_config()["config"] == {
        "gpu-slicing:nodeGroups": [{"name": "advised-p4d-1", "instanceType": "p4d.24xlarge", "minSize": 1,
                                    "desiredSize": 1, "maxSize": 1, "diskSizeGiB": 200, "capacityType": "ON_DEMAND",
                                    "migLayout": "all-3g.20gb"}],
        "gpu-slicing:maxGpuNodes": 1, "gpu-slicing:workloads": [workload]}
    assert plan.stack_config(karpenter=True)["config"] == {
        "gpu-slicing:karpenter": {"enabled": True, "nodePools": [
            {"name": "advised-p4d-1", "instanceTypes": ["p4d.24xlarge"], "capacityTypes": ["on-demand"],
             "migLayout": "all-3g.20gb", "maxNodes": 1, "consolidateAfter": "10m"}]},
        "gpu-slicing:maxGpuNodes": 1, "gpu-slicing:workloads": [workload]}
    text = format_fleet_report(plan).splitlines()
    assert text[text.index("Plan:") + 1:] == [
        "  advised-p4d-1: 1 x p4d.24xlarge (8 x A100-SXM4-40GB), $21.96/h, labelled all-3g.20gb (NVIDIA layout)",
        "    GPU 0,1,2,3,4,5,6,7: 2 x 3g.20gb",
        "    takes: 16 x infer (3g.20gb)",
        "",
        "Total: $21.96/h on 1 node(s)",
        "Lower bound: $21.96/h, proven by ILP; optimal",
        "",
        "Naive choices:",
        "  everything on p4d.24xlarge (the most GPU memory) under all-balanced: 2 x p4d.24xlarge, $43.92/h; the "
        "plan saves $21.96/h",
        "  the cheapest single instance type (p4d.24xlarge): 1 x p4d.24xlarge, $21.96/h; the plan saves $0.00/h"]


def test_whole_gpu_pools_by_hand_arm64_and_no_mig_type() -> None:
    """Three 10 GB pods on whole GPUs: the arm64 g5g.xlarge (T4G 16 GB, $0.42) is cheaper than the L4 ($0.80);
    no candidate has MIG, so the all-balanced naive choice cannot serve them."""
    plan = fleet([("small", 10, 3)], ["g5g.xlarge", "g6.xlarge"])
    assert (plan.cost_per_hour, nodes_of(plan)) == (1.26, {"g5g.xlarge": 3})
    text = format_fleet_report(plan).splitlines()
    assert text[text.index("Plan:") + 1:text.index("Plan:") + 4] == [
        "  advised-g5g-1: 3 x g5g.xlarge (1 x T4G), $1.26/h, whole GPUs",
        "    takes: 3 x small (whole GPU)",
        "    Caution: arm64 nodes: the pods there need arm64 images"]
    assert ("  all-balanced on the largest-memory MIG type: cannot serve the pods (no candidate type has MIG)"
            in text)
    assert plan.stack_config()["config"]["gpu-slicing:nodeGroups"] == [
        {"name": "advised-g5g-1", "instanceType": "g5g.xlarge", "minSize": 3, "desiredSize": 3, "maxSize": 3,
         "diskSizeGiB": 200, "capacityType": "ON_DEMAND"}]
    assert plan.workloads() == [{"name": "small", "gpus": 1, "replicas": 3, "pool": "advised-g5g-1"}]
