"""The 2026 fleet (docs/facts.md §7): per-node resources of Blackwell, single-GPU Hopper and RTX PRO 6000 nodes,
refusals that name the key, and the whole program on Karpenter pools of p6-b200 and g6f.

Every expected number is worked out by hand from docs/facts.md §7 (profiles per GPU x GPUs per node), never
computed with the code under test.
"""
from __future__ import annotations

import copy

import pytest
import yaml

from conftest import dev_config, run
from gpu_slicing import capacity, catalog
from gpu_slicing.stack import parse_config
from gpu_slicing.errors import ConfigError
from gpu_slicing.gpu_operator import mig_parted_config
from gpu_slicing.pools import resolve_pools
from gpu_slicing.validate import check

OVERLAY = "kubernetes:karpenter.sh/v1alpha1:NodeOverlay"
NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
MNG = "eks:index:ManagedNodeGroup"


def stack(node_groups=(), node_pools=(), workloads=(), layouts=None, max_gpu_nodes=100) -> dict:
    raw = {"gpu-slicing:cluster": {"name": "fleet", "publicAccessCidrs": ["100.64.0.0/16"]},
           "gpu-slicing:maxGpuNodes": max_gpu_nodes,
           "gpu-slicing:nodeGroups": [dict({"minSize": 1, "desiredSize": 1, "maxSize": 1}, **g) for g in node_groups],
           "gpu-slicing:workloads": list(workloads)}
    if node_pools:
        raw["gpu-slicing:karpenter"] = {"enabled": True, "nodePools": list(node_pools)}
    if layouts:
        raw["gpu-slicing:migLayouts"] = layouts
    return raw


def per_node(itype: str, layout: str, layouts=None) -> dict[str, int]:
    """What one node of a checked stack's only pool advertises (mixed strategy)."""
    cfg = parse_config(stack([{"name": "g", "instanceType": itype, "migLayout": layout}], layouts=layouts))
    check(cfg)
    (pool,) = resolve_pools(cfg)
    return dict(pool.per_node)


def config_error(raw: dict) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        check(parse_config(raw))
    return e.value


# --- per-node resources, docs/facts.md §7 by hand ----------------------------------------------------------------

@pytest.mark.parametrize("itype, layout, expected", [
    # 8 x B200, all-balanced = 2 x 1g.23gb + 1 x 2g.45gb + 1 x 3g.90gb per GPU
    ("p6-b200.48xlarge", "all-balanced",
     {"nvidia.com/mig-1g.23gb": 16, "nvidia.com/mig-2g.45gb": 8, "nvidia.com/mig-3g.90gb": 8, "nvidia.com/gpu": 0}),
    # 8 x B200, 7 x 1g.23gb per GPU
    ("p6-b200.48xlarge", "all-1g.23gb", {"nvidia.com/mig-1g.23gb": 56, "nvidia.com/gpu": 0}),
    # 8 x B300, all-balanced = 2 x 1g.34gb + 1 x 2g.67gb + 1 x 3g.135gb per GPU
    ("p6-b300.48xlarge", "all-balanced",
     {"nvidia.com/mig-1g.34gb": 16, "nvidia.com/mig-2g.67gb": 8, "nvidia.com/mig-3g.135gb": 8, "nvidia.com/gpu": 0}),
    # 1 x H100: 7 x 1g.10gb; all-balanced = 2 x 1g.10gb + 2g.20gb + 3g.40gb
    ("p5.4xlarge", "all-1g.10gb", {"nvidia.com/mig-1g.10gb": 7, "nvidia.com/gpu": 0}),
    ("p5.4xlarge", "all-balanced",
     {"nvidia.com/mig-1g.10gb": 2, "nvidia.com/mig-2g.20gb": 1, "nvidia.com/mig-3g.40gb": 1, "nvidia.com/gpu": 0}),
    # 1 x RTX PRO 6000: all-balanced = 2 x 1g.24gb + 1 x 2g.48gb (4 slices, no 3g)
    ("g7e.2xlarge", "all-balanced", {"nvidia.com/mig-1g.24gb": 2, "nvidia.com/mig-2g.48gb": 1, "nvidia.com/gpu": 0}),
    # 8 x RTX PRO 6000 x 4 x 1g.24gb
    ("g7e.48xlarge", "all-1g.24gb", {"nvidia.com/mig-1g.24gb": 32, "nvidia.com/gpu": 0}),
    # attribute variants keep their suffix in the resource name: + becomes ., -me stays
    ("g7e.4xlarge", "all-1g.24gb.me.all", {"nvidia.com/mig-1g.24gb.me.all": 1, "nvidia.com/gpu": 0}),
    ("g7e.24xlarge", "all-2g.48gb-me", {"nvidia.com/mig-2g.48gb-me": 8, "nvidia.com/gpu": 0}),
])
def test_named_layouts_per_node(itype, layout, expected):
    assert per_node(itype, layout) == expected


def test_custom_b200_layout_per_node():
    """GPUs 0-3: 7 x 1g.23gb; 4-5: 4g.90gb + 3g.90gb; 6-7 whole: 28 + 2 + 2 slices and 2 whole GPUs."""
    layouts = {"b200-mix": [{"devices": [0, 1, 2, 3], "profiles": {"1g.23gb": 7}},
                            {"devices": [4, 5], "profiles": {"4g.90gb": 1, "3g.90gb": 1}},
                            {"devices": [6, 7]}]}
    assert per_node("p6-b200.48xlarge", "b200-mix", layouts) == {
        "nvidia.com/mig-1g.23gb": 28, "nvidia.com/mig-3g.90gb": 2, "nvidia.com/mig-4g.90gb": 2, "nvidia.com/gpu": 2}


def test_compute_use_is_shown_against_the_models_own_slices():
    cfg = parse_config(stack([{"name": "rtx", "instanceType": "g7e.2xlarge", "migLayout": "all-balanced"},
                              {"name": "b200", "instanceType": "p6-b200.48xlarge", "migLayout": "all-balanced"}]))
    plan = capacity.plan_capacity(*_plan_inputs(cfg))
    rtx, b200 = (next(line.split() for line in plan.format_table().splitlines() if line.startswith(n))
                 for n in ("rtx ", "b200 "))
    assert "4/4" in rtx and "7/7" in b200  # 2 x 1 + 2 of 4; 2 x 1 + 2 + 3 of 7
    record = {p["name"]: p["utilization"] for p in plan.to_json()["pools"]}
    assert (record["rtx"]["computeSlicesOfGpu"], record["rtx"]["computeSlicesPerGpu"]) == (4, [4])
    assert (record["b200"]["computeSlicesOfGpu"], record["b200"]["computeSlicesPerGpu"]) == (7, [7] * 8)


def _plan_inputs(cfg):
    from gpu_slicing.validate import capacity_pools, capacity_workloads, resolve_workloads

    pools = resolve_pools(cfg)
    return capacity_pools(pools), capacity_workloads(resolve_workloads(cfg, pools)[0])


# --- refusals that name the key ------------------------------------------------------------------------

def test_b200_layout_naming_an_a100_profile_is_refused():
    e = config_error(stack([{"name": "b", "instanceType": "p6-b200.48xlarge", "migLayout": "wrong"}],
                           layouts={"wrong": [{"devices": "all", "profiles": {"1g.5gb": 7}}]}))
    assert e.key == "gpu-slicing:migLayouts.wrong[0].profiles"
    assert "has no MIG profile '1g.5gb'" in str(e) and "1g.23gb" in str(e)


def test_rtx_pro_6000_layout_over_four_compute_slices_is_refused():
    e = config_error(stack([{"name": "r", "instanceType": "g7e.2xlarge", "migLayout": "too-big"}],
                           layouts={"too-big": [{"devices": "all", "profiles": {"2g.48gb": 1, "1g.24gb": 3}}]}))
    assert e.key == "gpu-slicing:migLayouts.too-big[0].profiles"
    assert "need 5 compute slices; a GPU has 4" in str(e)


def test_p6e_gb200_is_refused_naming_the_key():
    with pytest.raises(ConfigError) as e:
        parse_config(stack([{"name": "gb", "instanceType": "p6e-gb200.36xlarge"}]))
    assert e.value.key == "gpu-slicing:nodeGroups[0].instanceType"
    assert "UltraServers" in str(e.value) and "Capacity Blocks" in str(e.value)


def test_fractional_l4_refuses_time_slicing_naming_the_key():
    e = config_error(stack(node_pools=[{"name": "frac", "instanceTypes": ["g6f.xlarge"],
                                        "sharing": {"timeSlicing": {"replicas": 4}}}]))
    assert e.key == "gpu-slicing:karpenter.nodePools[0].sharing"
    assert "g6f.xlarge" in str(e) and "fractional" in str(e)


def test_fractional_l4_has_no_mig():
    e = config_error(stack([{"name": "f", "instanceType": "g6f.4xlarge", "migLayout": "all-balanced"}]))
    assert e.key == "gpu-slicing:nodeGroups[0].migLayout" and "neither sliced nor shared" in str(e)


def test_a_pool_never_mixes_architectures():
    e = config_error(stack(node_pools=[{"name": "t4", "instanceTypes": ["g4dn.xlarge", "g5g.xlarge"]}]))
    assert e.key == "gpu-slicing:karpenter.nodePools[0].instanceTypes" and "amd64, arm64" in str(e)


# --- the whole program ----------------------------------------------------------------------------------

def _program_config(**kw) -> dict:
    raw = copy.deepcopy(dev_config())
    for k in ("gpu-slicing:nodeGroups", "gpu-slicing:workloads", "gpu-slicing:karpenter"):
        raw.pop(k, None)
    raw.update(stack(**kw))
    raw["gpu-slicing:cluster"] = dev_config()["gpu-slicing:cluster"]
    return raw


@pytest.fixture(scope="module")
def fleet_run():
    """Karpenter pools of p6-b200 (all-balanced), g6f.xlarge (a fractional L4) and g5g (arm64), and a
    managed node group of g5g."""
    raw = _program_config(
        node_groups=[{"name": "t4g", "instanceType": "g5g.xlarge"}],
        node_pools=[{"name": "b200", "instanceTypes": ["p6-b200.48xlarge"], "migLayout": "all-balanced", "maxNodes": 2},
                    {"name": "frac", "instanceTypes": ["g6f.xlarge"], "maxNodes": 3},
                    {"name": "arm", "instanceTypes": ["g5g.2xlarge"], "maxNodes": 1}],
        workloads=[{"name": "small", "profile": "1g.23gb", "replicas": 16, "pool": "b200"},
                   {"name": "frac-infer", "gpus": 1, "replicas": 3, "pool": "frac"}])
    r = run(raw, preview=True)
    assert r.error is None, r.error
    assert sorted(n.inputs["metadata"]["name"] for n in r.by_type("kubernetes:karpenter.sh/v1:NodePool")) == [
        "arm", "b200", "frac"]
    return r


def _overlay(r, pool: str) -> dict:
    return next(x.inputs for x in r.by_type(OVERLAY)
                if any(q["values"] == [pool] for q in x.inputs["spec"]["requirements"]))


def _requirements(r, pool: str) -> dict:
    np_ = next(x.inputs for x in r.by_type(NODEPOOL) if x.inputs["metadata"]["name"] == pool)
    return {q["key"]: q["values"] for q in np_["spec"]["template"]["spec"]["requirements"]}


@pytest.mark.slow
def test_p6_b200_pool_gets_its_mig_overlay(fleet_run):
    assert fleet_run.error is None
    overlay = _overlay(fleet_run, "b200")
    assert overlay["spec"]["capacity"] == {"nvidia.com/mig-1g.23gb": "16", "nvidia.com/mig-2g.45gb": "8",
                                           "nvidia.com/mig-3g.90gb": "8"}
    assert {"key": "node.kubernetes.io/instance-type", "operator": "In",
            "values": ["p6-b200.48xlarge"]} in overlay["spec"]["requirements"]
    assert _requirements(fleet_run, "b200")["kubernetes.io/arch"] == ["amd64"]


def test_g6f_pool_gets_the_gpu_ec2_does_not_report(fleet_run):
    """EC2 reports 0 GPUs for g6f; the node advertises 1 nvidia.com/gpu; the overlay says so (docs/facts.md §7)."""
    assert _overlay(fleet_run, "frac")["spec"]["capacity"] == {"nvidia.com/gpu": "1"}


def test_arm64_types_get_the_arm_ami_and_requirement(fleet_run):
    assert _requirements(fleet_run, "arm")["kubernetes.io/arch"] == ["arm64"]
    assert not [x for x in fleet_run.by_type(OVERLAY)
                if any(q["values"] == ["arm"] for q in x.inputs["spec"]["requirements"])]  # nothing to add
    (t4g,) = [x for x in fleet_run.by_type(MNG) if x.inputs.get("instanceTypes") == ["g5g.xlarge"]]
    assert t4g.inputs["amiType"] == "AL2023_ARM_64_NVIDIA"


def test_mixed_model_mig_parted_config_keys_each_models_layout_by_device_filter():
    """all-balanced on p5 and on p6-b200 in one custom ConfigMap: two entries, filtered by PCI id."""
    cfg = parse_config(stack(
        [{"name": "h100", "instanceType": "p5.48xlarge", "migLayout": "all-balanced"},
         {"name": "b200", "instanceType": "p6-b200.48xlarge", "migLayout": "b200-half"}],
        layouts={"b200-half": [{"devices": [0, 1, 2, 3], "profiles": {"1g.23gb": 7}}, {"devices": [4, 5, 6, 7]}]}))
    configs = yaml.safe_load(mig_parted_config(resolve_pools(cfg)))["mig-configs"]
    by_filter = {tuple(e["device-filter"]): e["mig-devices"] for e in configs["all-balanced"]}
    # A100-80GB's all-balanced is the same (docs/facts.md §2: A100-40GB shapes, doubled memory), so it shares the entry
    assert by_filter == {("0x20B210DE", "0x233010DE"): {"1g.10gb": 2, "2g.20gb": 1, "3g.40gb": 1}}
    label = cfg.mig_layouts["b200-half"].name  # the node label: name + content hash (docs/facts.md §8)
    assert configs[label][0] == {"devices": [0, 1, 2, 3], "mig-enabled": True, "mig-devices": {"1g.23gb": 7}}
    both = parse_config(stack([{"name": "h100", "instanceType": "p5.48xlarge", "migLayout": "all-balanced"},
                               {"name": "b200", "instanceType": "p6-b200.48xlarge", "migLayout": "all-balanced"},
                               {"name": "x", "instanceType": "p6-b200.48xlarge", "migLayout": "b200-half"}],
                              layouts={"b200-half": [{"devices": "all", "profiles": {"1g.23gb": 7}}]}))
    configs = yaml.safe_load(mig_parted_config(resolve_pools(both)))["mig-configs"]
    assert {tuple(e["device-filter"]): e["mig-devices"] for e in configs["all-balanced"]} == {
        ("0x20B210DE", "0x233010DE"): {"1g.10gb": 2, "2g.20gb": 1, "3g.40gb": 1},
        ("0x290110DE",): {"1g.23gb": 2, "2g.45gb": 1, "3g.90gb": 1}}


def test_time_slicing_on_b200_mig_slices():
    """4 replicas of each 1g.23gb slice of all-1g.23gb: 56 x 4 = 224 slots per node."""
    cfg = parse_config(stack([{"name": "ts", "instanceType": "p6-b200.48xlarge", "migLayout": "all-1g.23gb",
                               "sharing": {"timeSlicing": {"replicas": 4, "resources": ["nvidia.com/mig-1g.23gb"]}}}]))
    (pool,) = resolve_pools(cfg)
    assert pool.per_node == {"nvidia.com/mig-1g.23gb": 224, "nvidia.com/gpu": 0}


def test_g7e_mig_is_a_check_warning_not_an_error():
    from tools import checks

    raw = stack([{"name": "rtx", "instanceType": "g7e.12xlarge", "migLayout": "all-balanced"},
                 {"name": "b200", "instanceType": "p6-b200.48xlarge", "migLayout": "all-balanced"}])
    check(parse_config(raw))  # valid
    found = list(checks.mig_unconfirmed(raw, []))
    assert [f["severity"] for f in found] == ["warning", "info"]
    assert "nodeGroup rtx" in found[0]["message"] and "AWS has not confirmed MIG on g7e" in found[0]["message"]
    assert found[1]["message"] == ("2 MIG pool(s) checked: 1 on an instance type AWS has not confirmed MIG on (warned "
                                   "above); placements inferred, not read off hardware, for "
                                   "RTX-PRO-6000-Blackwell-SE-96GB (rtx); B200-180GB (b200)")
    whole = stack([{"name": "rtx", "instanceType": "g7e.12xlarge"}])
    assert [f["severity"] for f in checks.mig_unconfirmed(whole, [])] == ["info"]


def test_every_catalog_type_is_a_real_ec2_type_with_its_karpenter_gpu_count():
    """GPU counts per instance type, docs/facts.md §7 by hand (fractional types: 0 to EC2, 1 to Kubernetes)."""
    counts = {"p5.4xlarge": 1, "p6-b200.48xlarge": 8, "p6-b300.48xlarge": 8, "g7e.2xlarge": 1, "g7e.4xlarge": 1,
              "g7e.8xlarge": 1, "g7e.12xlarge": 2, "g7e.24xlarge": 4, "g7e.48xlarge": 8, "g6f.large": 0,
              "g6f.xlarge": 0, "g6f.2xlarge": 0, "g6f.4xlarge": 0, "gr6f.4xlarge": 0}
    assert {t: catalog.instance_type(t).ec2_gpu_count for t in counts} == counts


# --- the policy pack on the fleet ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fleet_resources(fleet_run):
    from tools.checks import policy_resources

    return policy_resources([r.to_json() for r in fleet_run.registrations])


def test_fleet_stack_is_clean_under_every_policy(fleet_resources):
    from policy import rules

    for name, rule in rules.RULES.items():
        assert rules.evaluate(rule, fleet_resources, rules.Context(max_gpu_nodes=100)) == [], name


def test_policy_flags_a_g6f_pool_without_its_gpu_overlay(fleet_resources):
    from test_policy import violations  # the CrossGuard policy must say the same

    without = [r for r in fleet_resources if not (r.type == OVERLAY and "frac" in r.name)]
    [msg] = violations("fractional-gpu-overlay", without)
    assert "NodePool frac (g6f.xlarge" in msg and 'nvidia.com/gpu: "1"' in msg


def test_policy_flags_an_x86_ami_on_arm64_nodes(fleet_resources):
    from policy import rules

    (t4g,) = [r for r in fleet_resources if r.type == MNG and r.props.get("instanceTypes") == ["g5g.xlarge"]]
    from test_policy import violations

    wrong = rules.Res(t4g.type, t4g.name, t4g.urn, {**t4g.props, "amiType": "AL2023_x86_64_NVIDIA"})
    assert violations("gpu-ami-arch", [wrong]) == [
        "nodeGroup t4g: amiType AL2023_x86_64_NVIDIA on g5g.xlarge (arm64); use AL2023_ARM_64_NVIDIA"]
    (arm,) = [r for r in fleet_resources if r.type == NODEPOOL and r.props["metadata"]["name"] == "arm"]
    props = copy.deepcopy(dict(arm.props))
    next(q for q in props["spec"]["template"]["spec"]["requirements"] if q["key"] == "kubernetes.io/arch")["values"] = [
        "amd64"]
    assert violations("gpu-ami-arch", [rules.Res(arm.type, arm.name, arm.urn, props)]) == [
        "nodePool arm: requirement kubernetes.io/arch In ['amd64'] excludes its g5g.2xlarge (arm64): "
        "Karpenter can never launch it"]


def test_docs_instance_table_names_every_catalog_family_and_the_refused_type():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text()
    table = text[text.index("## GPU instance types"):]
    families = {t.family for t in catalog.INSTANCE_TYPES.values()} | {"p6e-gb200"}
    assert all(f"| {f}." in table or f", {f}." in table or f"; {f}." in table for f in families), families
    for model in catalog.GPU_MODELS.values():
        if model.mig_capable and not model.placements_confirmed:
            assert "**inferred**" in table


def test_an_ami_driver_below_a_models_minimum_is_a_config_error_naming_the_type(monkeypatch):
    """B300 needs >= 580.82.07 (docs/facts.md §7): with an older R580 build the stack is refused at its key."""
    monkeypatch.setattr(catalog, "AMI_NVIDIA_DRIVER", "580.65.06")
    with pytest.raises(ConfigError) as e:
        parse_config(stack(node_pools=[{"name": "b300", "instanceTypes": ["p6-b200.48xlarge", "p6-b300.48xlarge"]}]))
    assert e.value.key == "gpu-slicing:karpenter.nodePools[0].instanceTypes[1]"
    assert "p6-b300.48xlarge" in str(e.value) and "580.82.07" in str(e.value) and "580.65.06" in str(e.value)
    parse_config(stack([{"name": "b200", "instanceType": "p6-b200.48xlarge"}]))  # 570.133.20 is met


def test_the_example_blackwell_stack_is_valid_and_fits():
    """examples/Pulumi.blackwell.yaml (`make plan CONFIG=examples/Pulumi.blackwell.yaml`)."""
    from pathlib import Path

    from gpu_slicing.validate import capacity_plan

    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "examples" / "Pulumi.blackwell.yaml").read_text())
    cfg = parse_config(raw["config"])
    check(cfg)
    plan = capacity_plan(cfg, resolve_pools(cfg))
    assert [w.level for w in plan.workloads] == ["ok"] * 5
    by_pool = {r.pool.name: dict(r.pool.per_node) for r in plan.pools}
    assert by_pool["b200-small"] == {"nvidia.com/mig-1g.23gb": 56, "nvidia.com/gpu": 0}  # 7 x 8 (docs/facts.md §7)
    assert by_pool["l4-fraction"] == {"nvidia.com/gpu": 1}
