"""DRA pools: devices each node publishes, claims and their CEL (evaluated with cel-python), the driver's
values against the chart, and the refusals. Expected figures come from docs/facts.md §2 (MIG shapes), docs/facts.md §12 and
the driver's own files (tools/data/dra-driver.json, generated from them)."""
from __future__ import annotations

import dataclasses
import re

import pytest
import yaml

from conftest import ROOT
from gpu_slicing import catalog, dra, layouts
from gpu_slicing.config import WorkloadConfig
from gpu_slicing.errors import ConfigError
from gpu_slicing.helm import has_path
from gpu_slicing.stack import load_stack
from tools import dra_claims, refdata

CLUSTER = {"name": "t", "publicAccessCidrs": ["0.0.0.0/0"]}


@pytest.fixture(autouse=True)
def _selectors_judged_afresh():
    """The simulator keeps each selector's answer per kind of device for the process: a test judges its own."""
    dra_claims._ANSWERS.clear()


def _stack(groups, workloads, version="1.34"):
    return load_stack({"maxGpuNodes": 10, "cluster": {**CLUSTER, "kubernetesVersion": version},
                       "nodeGroups": groups, "workloads": workloads})


def _p5(**kw):
    return {"name": "p5", "instanceType": "p5.48xlarge", "migLayout": "all-balanced", "allocation": "dra", **kw}


def test_p5_all_balanced_publishes_16_8_8_mig_devices():
    """docs/facts.md §2: H100 all-balanced is 2 x 1g.10gb + 1 x 2g.20gb + 1 x 3g.40gb per GPU, 8 GPUs."""
    pool = _stack([_p5()], []).pool("p5")
    assert dict(pool.per_node) == {"mig.nvidia.com/1g.10gb": 16, "mig.nvidia.com/2g.20gb": 8,
                                   "mig.nvidia.com/3g.40gb": 8}
    devices = dra.resource_slice(pool, pool.largest, "n")["spec"]["devices"]
    assert len(devices) == 32 and {d["attributes"]["type"]["string"] for d in devices} == {"mig"}
    assert {"profile", "parentUUID", "productName", "uuid"} <= set(devices[0]["attributes"])
    assert set(devices[0]["capacity"]) == {"memory"}  # no SM count: the catalog has none to publish


def test_whole_gpu_pool_publishes_one_device_per_gpu():
    st = _stack([{"name": "g6", "instanceType": "g6.12xlarge", "allocation": "dra"}],
                [{"name": "w", "gpus": 2, "replicas": 2, "pool": "g6"}])
    assert dict(st.pool("g6").per_node) == {"gpu.nvidia.com": 4}  # g6.12xlarge: 4 x L4
    assert st.capacity.to_json()["workloads"][0]["fits"]


def test_dra_nodes_turn_the_device_plugin_off_and_pods_select_them():
    st = _stack([_p5()], [{"name": "w", "profile": "1g.10gb", "pool": "p5"}])
    labels = st.pool("p5").labels
    assert labels["nvidia.com/gpu.deploy.device-plugin"] == "false" and labels["gpu-slicing/allocation"] == "dra"
    from gpu_slicing import workloads

    pod = workloads.deployment(st.workloads[0])["spec"]["template"]["spec"]
    assert pod["nodeSelector"]["nvidia.com/gpu.deploy.device-plugin"] == "false"
    assert pod["resourceClaims"] == [{"name": "slice", "resourceClaimTemplateName": "w-slice"}]
    limits = pod["containers"][0]["resources"]["limits"]
    assert not any(k.startswith("nvidia.com/") for k in limits) and pod["containers"][0]["resources"]["claims"]


@pytest.mark.slow  # cel-python compiles the selectors (~1 s the first time)
def test_profile_names_shared_across_models_never_match_the_other_model():
    """1g.10gb is a slice of an A100-80GB and of an H100 (docs/facts.md §2): the selector pins the product."""
    st = _stack([_p5(), {"name": "a80", "instanceType": "p4de.24xlarge", "migLayout": "all-1g.10gb",
                         "allocation": "dra"}],
                [{"name": "h", "profile": "1g.10gb", "pool": "p5"}, {"name": "a", "profile": "1g.10gb", "pool": "a80"}])
    results = {r.workload: r for r in dra_claims.simulate(st.workloads, {p.name: p for p in st.pools})}
    assert len(results["h"].matched) == 16 and len(results["a"].matched) == 56
    assert results["h"].foreign == () and results["a"].foreign == () and all(r.agrees for r in results.values())


@pytest.mark.slow  # cel-python compiles the selectors (~1 s the first time)
def test_fallback_list_is_first_available_in_order_and_cel_accepts_both():
    st = _stack([_p5()], [{"name": "w", "profile": "2g.20gb", "fallbackProfiles": ["3g.40gb"], "pool": "p5"}])
    (w,) = st.workloads
    req = dra.claim_template(w.config, w.pool, "ns", claim="c")["spec"]["spec"]["devices"]["requests"][0]
    assert [s["selectors"][0]["cel"]["expression"].endswith(f"'{p}'") for s, p in
            zip(req["firstAvailable"], ["2g.20gb", "3g.40gb"])] == [True, True]
    (res,) = dra_claims.simulate([w], {"p5": w.pool})
    assert len(res.matched) == 16 and res.agrees  # 8 x 2g.20gb + 8 x 3g.40gb


@pytest.mark.slow  # cel-python compiles the selectors (~1 s the first time)
def test_memory_floor_becomes_the_profiles_that_meet_it():
    """40 GB on H100 all-balanced: only 3g.40gb (8 a node); the capacity plan counts against it."""
    st = _stack([_p5()], [{"name": "w", "memoryGB": 40, "replicas": 8, "pool": "p5"}])
    (res,) = dra_claims.simulate(st.workloads, {"p5": st.pool("p5")})
    assert len(res.matched) == 8 and all("3g.40gb" in d for d in res.matched)
    assert st.capacity.to_json()["workloads"][0]["resource"] == "mig.nvidia.com/3g.40gb"


@pytest.mark.slow  # cel-python compiles the selectors (~1 s the first time)
def test_a_wrong_selector_is_caught_by_the_cel_simulator():
    st = _stack([_p5()], [{"name": "w", "profile": "1g.10gb", "pool": "p5"}])
    pool = st.pool("p5")
    device = dra.resource_slice(pool, pool.largest, "n")["spec"]["devices"][0]
    claim = dra.claim_template(st.config.workloads[0], pool, "ns", claim="c")
    good = claim["spec"]["spec"]["devices"]["requests"][0]["exactly"]["selectors"][0]["cel"]["expression"]
    assert dra_claims.accepts(good, device) == (device["attributes"]["profile"]["string"] == "1g.10gb")
    assert not dra_claims.accepts(good.replace("h100", "a100"), device)


# Devices as the driver's ResourceSlice attribute reference shows them (reference/dra/nvidia-dra-driver/docs/
# resourceslice-attributes.md): an A100-PCIE-40GB with 40Gi of memory, and its 1g.5gb slice with 4864Mi, the usable
# amount below the profile's name.
A100_GPU = {"name": "gpu-0", "attributes": {"type": {"string": "gpu"}, "productName": {"string": "NVIDIA A100-PCIE-40GB"}},
            "capacity": {"memory": {"value": "40Gi"}}}
A100_1G = {"name": "gpu-0-mig-1g.5gb-0", "attributes": {"type": {"string": "mig"}, "profile": {"string": "1g.5gb"},
                                                          "productName": {"string": "NVIDIA A100-PCIE-40GB"}},
           "capacity": {"memory": {"value": "4864Mi"}, "copyEngines": {"value": "1"}}}
MEMORY = "device.capacity['gpu.nvidia.com'].memory"


@pytest.mark.slow  # cel-python compiles the selectors (~1 s the first time)
@pytest.mark.parametrize("expression, device, accepted", [
    (f"{MEMORY}.isGreaterThan(quantity('40Gi'))", A100_GPU, False),  # the driver docs' selector: more than 40Gi
    (f"{MEMORY}.isGreaterThan(quantity('39Gi'))", A100_GPU, True),
    (f"{MEMORY}.isGreaterThan(quantity('40G'))", A100_GPU, True),  # 40 x 10^9 < 40 x 2^30
    (f"{MEMORY}.compareTo(quantity('42949672960')) == 0", A100_GPU, True),  # 40 x 2^30, decimal
    (f"{MEMORY}.compareTo(quantity('42949672.96e3')) == 0", A100_GPU, True),  # the same with an exponent
    (f"{MEMORY}.compareTo(quantity('429496729.6E2')) == 0", A100_GPU, True),
    (f"{MEMORY}.compareTo(quantity('42949672961')) == 0", A100_GPU, False),
    (f"{MEMORY}.isLessThan(quantity('5Gi'))", A100_1G, True),  # why a memory floor becomes profiles
    (f"{MEMORY}.compareTo(quantity('4.75Gi')) == 0", A100_1G, True),  # 4864 / 1024 = 4.75
    (f"{MEMORY}.compareTo(quantity('4.75Gi')) < 0", A100_1G, False),
    ("device.capacity['gpu.nvidia.com'].copyEngines.compareTo(quantity('1000m')) == 0", A100_1G, True),
    ("device.capacity['gpu.nvidia.com'].copyEngines.isGreaterThan(quantity('-1Ki'))", A100_1G, True),
])
def test_a_capacity_selector_compares_quantities_as_kubernetes_does(expression, device, accepted):
    """A selector reads a device's capacity as a Kubernetes quantity (the DRA driver docs: `memory.isGreaterThan(
    quantity("40Gi"))`), compared by amount whatever the suffix: binary (Gi, Mi, Ki), decimal (G, m) or an
    exponent. Compared as text, 40Gi and 42949672960 would differ and a capacity selector would be judged wrong."""
    assert dra_claims.accepts(expression, device) is accepted


def test_a_quantity_the_api_server_would_refuse_is_refused():
    """Kubernetes quantities have no `GB` suffix (it is `G` or `Gi`) and no unit-only form."""
    assert dra_claims.Quantity.parse("1.5k") == dra_claims.Quantity.parse("1500")
    assert dra_claims.Quantity.parse(".5") == dra_claims.Quantity.parse("500m")
    assert dra_claims.Quantity.parse("-1Ki") == dra_claims.Quantity.parse("-1024") < dra_claims.Quantity.parse("+1n")
    for text in ("40GB", "Gi", "", "1.5.0"):
        with pytest.raises(ValueError, match="not a Kubernetes quantity"):
            dra_claims.Quantity.parse(text)


@pytest.mark.slow  # cel-python compiles the selectors (~1 s the first time)
def test_the_kept_answers_tell_apart_devices_that_differ_only_in_what_the_selector_reads():
    """The simulator keeps each answer per attribute and capacity the selector names: two devices that differ
    only there (a 40Gi and an 80Gi GPU; a 1g.5gb and a 2g.10gb slice) get answers of their own."""
    bigger = {**A100_GPU, "capacity": {"memory": {"value": "80Gi"}}}
    assert [dra_claims.accepts(f"{MEMORY}.isGreaterThan(quantity('40Gi'))", d) for d in (A100_GPU, bigger)] == [
        False, True]
    other = {**A100_1G, "attributes": {**A100_1G["attributes"], "profile": {"string": "2g.10gb"}}}
    profile = "device.attributes['gpu.nvidia.com'].profile == '1g.5gb'"
    assert [dra_claims.accepts(profile, d) for d in (A100_1G, other)] == [True, False]


@pytest.mark.slow  # cel-python compiles the selectors (~1 s the first time)
def test_a_claim_accepts_what_any_of_its_requests_accepts():
    """resource.k8s.io/v1: a claim holds several requests, each with its DeviceClass and optional selectors (a
    request without any takes any device of its class); the claim can be given a device any request accepts."""
    def exactly(cls, *selectors):
        return {"deviceClassName": cls, "allocationMode": "ExactCount", "count": 1,
                **({"selectors": [{"cel": {"expression": e}} for e in selectors]} if selectors else {})}

    any_gpu = {"kind": "ResourceClaim", "spec": {"devices": {"requests": [{"name": "g", "exactly": exactly(dra.GPU_CLASS)}]}}}
    no_capacity = {"name": "gpu-1", "attributes": A100_GPU["attributes"]}  # capacity is optional in a ResourceSlice
    # the device without capacity judged first: a GPU with the same attributes would otherwise answer for it
    assert [dra_claims.claim_accepts(any_gpu, d) for d in (no_capacity, A100_GPU, A100_1G)] == [True, True, False]
    claim = {"kind": "ResourceClaim", "spec": {"devices": {"requests": [
        {"name": "big", "exactly": exactly(dra.GPU_CLASS, f"{MEMORY}.isGreaterThan(quantity('60Gi'))")},
        {"name": "small", "exactly": exactly(dra.MIG_CLASS, "device.attributes['gpu.nvidia.com'].profile == '1g.5gb'")},
    ]}}}
    bigger = {**A100_GPU, "capacity": {"memory": {"value": "80Gi"}}}
    assert [dra_claims.claim_accepts(claim, d) for d in (A100_GPU, bigger, A100_1G)] == [False, True, True]


@pytest.mark.slow  # cel-python compiles the selectors (~1 s the first time)
def test_a_shared_claim_is_simulated_and_workloads_without_a_claim_are_passed_over():
    """claimSharing gives the workload one ResourceClaim (not a template): the simulator judges it as the program
    registers it, under its resolved name; a device-plugin workload listed before it has no claim to judge."""
    st = _stack([{"name": "g5", "instanceType": "g5.xlarge"},
                 {"name": "g6", "instanceType": "g6.xlarge", "allocation": "dra"}],
                [{"name": "plugin", "gpus": 1, "pool": "g5"},
                 {"name": "w", "gpus": 1, "replicas": 2, "claimSharing": "timeSlicing", "pool": "g6"}])
    (res,) = dra_claims.simulate(st.workloads, {p.name: p for p in st.pools})
    # g6.xlarge: one L4 GPU (AWS), published whole as gpu-0
    assert (res.workload, res.pool, res.claim, res.matched, res.agrees) == ("w", "g6", "w-slice", ("gpu-0",), True)
    assert res.kinds == res.counted == ("gpu.nvidia.com",)


def test_claim_sharing_is_one_shared_claim_counted_once():
    st = _stack([{"name": "g6", "instanceType": "g6.xlarge", "allocation": "dra"}],
                [{"name": "w", "gpus": 1, "replicas": 6, "claimSharing": "timeSlicing", "pool": "g6"}])
    (w,) = st.workloads
    claim = dra.claim_template(w.config, w.pool, "ns", claim="w-slice")
    assert claim["kind"] == "ResourceClaim"
    cfg = claim["spec"]["devices"]["config"][0]["opaque"]["parameters"]
    assert cfg == {"apiVersion": "resource.nvidia.com/v1beta1", "kind": "GpuConfig",
                   "sharing": {"strategy": "TimeSlicing"}}
    assert dra.pod_resource_claims(w.config, claim="w-slice") == [{"name": "slice", "resourceClaimName": "w-slice"}]
    assert st.capacity.to_json()["workloads"][0]["fits"]  # 6 replicas, one g6.xlarge GPU: one claim


@pytest.mark.parametrize("version,ok", [("1.33", False), ("1.34", True), ("1.35", True)])
def test_dra_needs_eks_1_34(version, ok):
    if ok:
        assert _stack([_p5()], [], version).pool("p5").allocation == "dra"
    else:
        with pytest.raises(ConfigError) as e:
            _stack([_p5()], [], version)
        assert e.value.key == "gpu-slicing:nodeGroups[0].allocation" and "1.34" in e.value.allowed


def test_feature_stages_follow_the_keps():
    """KEP-4816 (prioritized list): beta in 1.34; KEP-4815 partitionable devices: alpha until 1.36."""
    kep = refdata.load("dra-driver")["kepMilestones"]["4816-dra-prioritized-list"]
    assert dra.FEATURES["firstAvailable"][2] == kep["beta"].lstrip("v")
    assert refdata.load("dra-driver")["kepMilestones"]["4815-dra-partitionable-devices"]["beta"] == "v1.36"
    assert dra.feature_on("firstAvailable", "1.34") and not dra.feature_on("partitionableDevices", "1.35")


def test_driver_value_paths_exist_in_the_chart_and_pin_what_facts_says():
    values = refdata.load("dra-driver")["values"]
    assert [p for p in sorted(dra.VALUE_PATHS) if not has_path(values, p)] == []
    st = _stack([_p5()], [])
    v = dra.driver_values(list(st.pools), [])
    assert (v["gpuResourcesEnabledOverride"], v["nvidiaDriverRoot"], v["resourceApiVersion"]) == (
        True, "/", "resource.k8s.io/v1")
    assert v["resources"]["computeDomains"]["enabled"] is False
    assert sorted(p for p in dra.flatten(v) if p not in dra.VALUE_PATHS) == []
    (term,) = v["kubeletPlugin"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]
    assert {"key": "nvidia.com/mig.config.state", "operator": "In", "values": ["success"]} in term["matchExpressions"]


def test_device_classes_are_the_charts():
    classes = refdata.load("dra-driver")["deviceClasses"]
    for cls in (dra.GPU_CLASS, dra.MIG_CLASS):
        assert classes[cls] == dra.CLASS_SELECTORS[cls]


def test_the_attribute_names_are_the_drivers():
    names = set(refdata.load("dra-driver")["attributeNames"])
    pool = _stack([_p5()], []).pool("p5")
    device = dra.resource_slice(pool, pool.largest, "n")["spec"]["devices"][0]
    assert sorted(set(device["attributes"]) | set(device["capacity"])) != []
    assert sorted(n for n in [*device["attributes"], *device["capacity"]] if n not in names) == []


@pytest.mark.slow  # cel-python compiles the selectors (~1 s the first time)
def test_example_stack_plans_every_dra_claim():
    raw = yaml.safe_load((ROOT / "examples" / "Pulumi.dra.yaml").read_text())["config"]
    st = load_stack(raw)
    results = dra_claims.simulate(st.workloads, {p.name: p for p in st.pools})
    assert len(results) == 3 and all(r.matched and r.agrees and not r.foreign for r in results)
    assert all(w["fits"] for w in st.capacity.to_json()["workloads"])


def test_workload_keys_parse():
    w = WorkloadConfig.model_validate({"name": "w", "pool": "p", "memoryGB": 20, "claimSharing": "mps"})
    assert (w.memory_gb, w.claim_sharing, w.fallback_profiles) == (20, "mps", ())
    assert catalog.INSTANCE_TYPES["p5.48xlarge"].gpu.name in dra.PRODUCTS and layouts


# --- policy pack: one allocation mechanism per node ---------------------------------------------------

def _pool_res(name, labels):
    from policy.rules import Res

    return Res("eks:index:ManagedNodeGroup", name, f"urn:{name}",
               {"instanceTypes": ["p5.48xlarge"], "labels": {"gpu-slicing/pool": name, **labels}})


def _driver(selector):
    from policy.rules import Res

    return Res("kubernetes:helm.sh/v3:Release", "dra", "urn:dra",
               {"chart": "oci://registry.k8s.io/dra-driver-nvidia/charts/dra-driver-nvidia-gpu",
                "values": {"kubeletPlugin": {"nodeSelector": selector}}})


def test_policy_refuses_a_node_where_both_mechanisms_could_run():
    from policy.rules import Context, RULES, evaluate

    rule = RULES["one-allocation-per-node"]
    dra_pool = _pool_res("p5", {"gpu-slicing/allocation": "dra", "nvidia.com/gpu.deploy.device-plugin": "false"})
    plugin_pool = _pool_res("p4d", {})
    assert evaluate(rule, [_driver({"gpu-slicing/allocation": "dra"}), dra_pool, plugin_pool], Context()) == []
    # a kubelet plugin without a nodeSelector runs on the device-plugin pool too
    assert [u for _, u in evaluate(rule, [_driver({}), dra_pool, plugin_pool], Context())] == ["urn:p4d"]
    # a DRA pool that forgot to turn the device plugin off
    half = _pool_res("p5", {"gpu-slicing/allocation": "dra"})
    assert [u for _, u in evaluate(rule, [_driver({"gpu-slicing/allocation": "dra"}), half], Context())] == ["urn:p5"]


def test_policy_refuses_dra_pods_that_may_land_on_a_device_plugin_node():
    from policy.rules import Context, RULES, Res, evaluate

    st = _stack([_p5()], [{"name": "w", "profile": "1g.10gb", "pool": "p5"}])
    from gpu_slicing import workloads

    d = workloads.deployment(st.workloads[0])
    rule = RULES["dra-pods-on-dra-nodes"]
    ok = Res("kubernetes:apps/v1:Deployment", "w", "urn:w", d)
    assert evaluate(rule, [ok], Context()) == []
    loose = {**d, "spec": {**d["spec"], "template": {"spec": {**d["spec"]["template"]["spec"],
                                                              "nodeSelector": {"gpu-slicing/pool": "p5"}}}}}
    assert len(evaluate(rule, [Res("kubernetes:apps/v1:Deployment", "w", "urn:w", loose)], Context())) == 1


def test_dashboard_shows_dra_claims_only_with_dra_pools():
    """dcgm-exporter labels DRA-held MIG devices dra_claim_name / dra_mig_profile (NVIDIA/dcgm-exporter#714)."""
    from gpu_slicing import observability

    with_dra = _stack([_p5()], [])
    without = _stack([{**_p5(), "allocation": "devicePlugin"}], [])
    dra_panels = [p for p in observability.panels(with_dra.config, with_dra.pools) if p.row == "DRA claims"]
    assert len(dra_panels) == 5
    assert all("dra_claim_name" in p.expr or "kube_pod_resourceclaim_info" in p.expr for p in dra_panels)
    per_claim = next(p for p in dra_panels if p.title == "SM active per DRA claim")
    assert 'dra_claim_name!=""' in per_claim.expr and "dra_mig_profile" in per_claim.expr
    assert not [p for p in observability.panels(without.config, without.pools) if p.row == "DRA claims"]


def test_a_dra_pool_ignores_the_device_plugins_strategy():
    """No device plugin runs there: all-balanced on a DRA pool is fine under migStrategy single."""
    st = load_stack({"maxGpuNodes": 1, "cluster": CLUSTER, "gpuOperator": {"migStrategy": "single"},
                     "nodeGroups": [_p5()], "workloads": [{"name": "w", "profile": "2g.20gb", "pool": "p5"}]})
    assert st.pool("p5").per_node["mig.nvidia.com/2g.20gb"] == 8


HALF = {"half": [{"devices": [0, 1, 2, 3], "profiles": {"1g.10gb": 7}}, {"devices": [4, 5, 6, 7], "profiles": {}}]}


def _half(workloads):
    return load_stack({"maxGpuNodes": 1, "cluster": CLUSTER, "migLayouts": HALF,
                       "nodeGroups": [_p5(migLayout="half")], "workloads": workloads})


def test_whole_gpus_and_slices_on_one_dra_node_use_their_own_device_classes():
    st = _half([{"name": "g", "gpus": 4, "pool": "p5"}, {"name": "m", "profile": "1g.10gb", "replicas": 28,
                                                          "pool": "p5"}])
    pool = st.pool("p5")
    assert dict(pool.per_node) == {"mig.nvidia.com/1g.10gb": 28, "gpu.nvidia.com": 4}
    g, m = st.config.workloads
    assert dra.claim_spec(g, pool)["devices"]["requests"][0]["exactly"]["deviceClassName"] == "gpu.nvidia.com"
    assert dra.claim_spec(m, pool)["devices"]["requests"][0]["exactly"]["deviceClassName"] == "mig.nvidia.com"
    devices = dra.resource_slice(pool, pool.largest, "n")["spec"]["devices"]
    assert sum(dra.matches(g, pool, d) for d in devices) == 4 and sum(dra.matches(m, pool, d) for d in devices) == 28


def test_a_memory_floor_no_slice_meets_is_refused_even_beside_whole_gpus():
    """80 GB on the half-MIG p5: no MIG profile of the layout has it (whole GPUs are not slices)."""
    with pytest.raises(ConfigError) as e:
        _half([{"name": "w", "memoryGB": 80, "pool": "p5"}])
    assert e.value.key == "gpu-slicing:workloads[0].memoryGB"


def test_the_dra_verification_job_fails_unless_the_claim_brought_an_accepted_device():
    """nvidia-smi -L prints a MIG device as '  MIG 2g.20gb  Device  0: (UUID: ...)' under its GPU."""
    import subprocess

    from gpu_slicing import workloads

    st = _stack([_p5()], [{"name": "w", "profile": "2g.20gb", "fallbackProfiles": ["3g.40gb"], "pool": "p5"}])
    job = workloads.verify_job(st.workloads[0])
    pod = job["spec"]["template"]["spec"]
    assert pod["resourceClaims"] == [{"name": "slice", "resourceClaimTemplateName": "w-slice"}]
    script = pod["containers"][0]["command"][2]
    gpu = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1)\n"

    def runs(listing: str) -> bool:
        fake = f"nvidia-smi() {{ printf '%s' '{listing}'; }}; "
        return subprocess.run(["bash", "-c", fake + script], capture_output=True).returncode == 0

    assert runs(gpu + "  MIG 3g.40gb     Device  0: (UUID: MIG-1)\n")
    assert not runs(gpu + "  MIG 1g.10gb     Device  0: (UUID: MIG-1)\n")
    assert not runs(gpu)


def test_a_shared_claim_holds_no_more_replicas_than_one_node_runs_pods():
    """g6.xlarge: EKS's pod limit is 58 (4 ENIs x (15 addresses - 1) + 2), less the pool's DaemonSet pods."""
    pool = _stack([{"name": "g6", "instanceType": "g6.xlarge", "allocation": "dra"}], []).pool("g6")
    room = pool.pods_per_node["g6.xlarge"]
    assert 0 < room < 58
    ok = {"name": "w", "gpus": 1, "replicas": room, "claimSharing": "timeSlicing", "pool": "g6"}
    _stack([{"name": "g6", "instanceType": "g6.xlarge", "allocation": "dra"}], [ok])
    with pytest.raises(ConfigError) as e:
        _stack([{"name": "g6", "instanceType": "g6.xlarge", "allocation": "dra"}], [{**ok, "replicas": room + 1}])
    assert e.value.key == "gpu-slicing:workloads[0].replicas" and f"at most {room}" in e.value.allowed


# --- capacity: a claim several device kinds serve -------------------------------------------------------
# p5.48xlarge all-balanced publishes 16 x 1g.10gb, 8 x 2g.20gb and 8 x 3g.40gb a node (docs/facts.md §2:
# H100 all-balanced is 2 x 1g.10gb + 1 x 2g.20gb + 1 x 3g.40gb per GPU, 8 GPUs).
TWO_G, THREE_G, ONE_G = "mig.nvidia.com/2g.20gb", "mig.nvidia.com/3g.40gb", "mig.nvidia.com/1g.10gb"


def _plan(workloads, **pool):
    return {w["name"]: w for w in _stack([_p5(**pool)], workloads, "1.35").capacity.to_json()["workloads"]}


def test_a_memory_floor_is_served_by_every_slice_that_meets_it():
    """20 GB on H100 all-balanced: 2g.20gb or 3g.40gb, 8 + 8 a node, so 12 replicas fit on one node (the
    scheduler gives the 9th to 12th a 3g.40gb) beside 16 pods of 1g.10gb."""
    got = _plan([{"name": "m", "memoryGB": 20, "replicas": 12, "pool": "p5"},
                 {"name": "one", "profile": "1g.10gb", "replicas": 16, "pool": "p5"}])
    assert got["m"]["fits"] and got["m"]["resources"] == [TWO_G, THREE_G]
    assert got["m"]["counted"] == {TWO_G: 8, THREE_G: 4} and got["m"]["capacity"] == 16
    assert "counted as 8 mig.nvidia.com/2g.20gb + 4 mig.nvidia.com/3g.40gb" in got["m"]["message"]
    assert "resources" not in got["one"]  # a one-kind claim's line is as before


def test_a_memory_floor_beyond_every_matching_slice_does_not_fit_and_says_the_numbers():
    """3g.40gb x 4 leaves 8 x 2g.20gb + 4 x 3g.40gb = 12 for a 20 GB floor: 13 replicas are one too many."""
    with pytest.raises(ConfigError) as e:
        _stack([_p5()], [{"name": "big", "profile": "3g.40gb", "replicas": 4, "pool": "p5"},
                         {"name": "m", "memoryGB": 20, "replicas": 13, "pool": "p5"}], "1.35")
    assert e.value.key == "gpu-slicing:nodeGroups[0].desiredSize"
    text = str(e.value)
    assert "workload m: does not fit: needs 13 x 1 mig.nvidia.com/2g.20gb or mig.nvidia.com/3g.40gb = 13, 12 free" in text
    assert "16 (8 mig.nvidia.com/2g.20gb + 8 mig.nvidia.com/3g.40gb)/node x 1 desired" in text
    assert "big takes 4 mig.nvidia.com/3g.40gb" in text and "1 pods would stay Pending" in text
    assert "raise desiredSize of p5 to 2" in text


def test_fallback_profiles_count_against_every_profile_in_the_list():
    """2g.20gb, else 3g.40gb, x 12 beside 3g.40gb x 4: 8 + (8 - 4) = 12 fit; 13 do not."""
    ok = _plan([{"name": "f", "profile": "2g.20gb", "fallbackProfiles": ["3g.40gb"], "replicas": 12, "pool": "p5"},
                {"name": "big", "profile": "3g.40gb", "replicas": 4, "pool": "p5"}])
    assert ok["f"]["fits"] and ok["f"]["counted"] == {TWO_G: 8, THREE_G: 4} and ok["big"]["fits"]
    with pytest.raises(ConfigError, match="needs 13 x 1 mig.nvidia.com/2g.20gb or mig.nvidia.com/3g.40gb = 13"):
        _stack([_p5()], [{"name": "f", "profile": "2g.20gb", "fallbackProfiles": ["3g.40gb"], "replicas": 13,
                          "pool": "p5"}, {"name": "big", "profile": "3g.40gb", "replicas": 4, "pool": "p5"}], "1.35")


def test_flexible_claims_competing_for_the_same_slices_are_never_promised_one_twice():
    """A 20 GB floor x 10 and 2g.20gb-else-3g.40gb x 6 want 16 of the 16 2g/3g slices: they fit exactly;
    one more replica of either does not, whichever is placed first."""
    both = [{"name": "m", "memoryGB": 20, "replicas": 10, "pool": "p5"},
            {"name": "f", "profile": "2g.20gb", "fallbackProfiles": ["3g.40gb"], "replicas": 6, "pool": "p5"}]
    got = _plan(both)
    assert got["m"]["fits"] and got["f"]["fits"]
    assert sum(got["m"]["counted"].values()) + sum(got["f"]["counted"].values()) == 16
    for i in (0, 1):
        more = [dict(w) for w in both]
        more[i]["replicas"] += 1
        with pytest.raises(ConfigError, match="does not fit"):
            _stack([_p5()], more, "1.35")


def test_a_one_kind_claim_moves_a_flexible_one_to_its_other_choice():
    """1g.10gb-else-2g.20gb x 24 takes 16 + 8; then 2g.20gb x 8 (one kind) needs the 2g slices: there is
    nowhere for the flexible pods to go (1g full, no 3g accepted), so 8 + 24 > 16 + 8 does not fit; with
    the fallback 3g.40gb as well they move there and both fit."""
    with pytest.raises(ConfigError, match="workload"):
        _stack([_p5()], [{"name": "f", "profile": "1g.10gb", "fallbackProfiles": ["2g.20gb"], "replicas": 24,
                          "pool": "p5"}, {"name": "two", "profile": "2g.20gb", "replicas": 8, "pool": "p5"}], "1.35")
    got = _plan([{"name": "f", "profile": "1g.10gb", "fallbackProfiles": ["2g.20gb", "3g.40gb"], "replicas": 24,
                  "pool": "p5"}, {"name": "two", "profile": "2g.20gb", "replicas": 8, "pool": "p5"}])
    assert got["f"]["counted"] == {ONE_G: 16, TWO_G: 0, THREE_G: 8} and got["two"]["fits"]


def test_the_pool_line_counts_what_each_slice_kind_serves():
    st = _stack([_p5()], [{"name": "m", "memoryGB": 20, "replicas": 12, "pool": "p5"}], "1.35")
    (pool,) = st.capacity.to_json()["pools"]
    assert pool["utilization"]["resources"] == {ONE_G: {"requested": 0, "available": 16},
                                                TWO_G: {"requested": 8, "available": 8},
                                                THREE_G: {"requested": 4, "available": 8}}


def test_a_gpu_with_mig_on_and_no_slices_publishes_nothing():
    """The driver's GPU allocation guide: MIG mode on with no partitions strands the GPU (neither the full GPU
    nor a slice is advertised), so all-enabled gives no devices and a whole-GPU claim there is refused."""
    assert dict(_stack([_p5(migLayout="all-enabled")], []).pool("p5").per_node) == {}
    with pytest.raises(ConfigError) as e:
        _stack([_p5(migLayout="all-enabled")], [{"name": "w", "gpus": 1, "pool": "p5"}])
    assert e.value.key == "gpu-slicing:workloads[0].gpus"


@pytest.mark.slow  # cel-python compiles the selectors (~1 s the first time)
def test_the_simulator_holds_the_capacity_count_to_the_kinds_the_cel_matches():
    """The simulator judges what resolution decided the plan counts (`Workload.resource`, `.alternatives`): a
    workload resolved to count fewer kinds than its CEL matches is caught."""
    st = _stack([_p5()], [{"name": "m", "memoryGB": 20, "pool": "p5"},
                          {"name": "f", "profile": "1g.10gb", "fallbackProfiles": ["3g.40gb"], "pool": "p5"}], "1.35")
    pools = {"p5": st.pool("p5")}
    got = {r.workload: r for r in dra_claims.simulate(st.workloads, pools)}
    assert set(got["m"].kinds) == {TWO_G, THREE_G} and got["m"].counted_right
    assert set(got["f"].kinds) == {ONE_G, THREE_G} and got["f"].counted_right
    miscounted = dataclasses.replace(st.workloads[0], resource=TWO_G, alternatives=())
    (wrong,) = dra_claims.simulate([miscounted], pools)
    assert wrong.counted == (TWO_G,) and not wrong.counted_right


def test_a_claim_is_counted_right_when_the_plan_counts_exactly_the_kinds_its_cel_matches():
    """What dra.claims reports on (without compiling CEL): the kinds the plan counts must be the kinds the claim
    can be given, in any order; one kind fewer, or one more, is a miscount."""
    def result(kinds: tuple[str, ...], counted: tuple[str, ...]) -> dra_claims.ClaimResult:
        return dra_claims.ClaimResult("m", "p5", "m", (), True, (), kinds, counted)

    assert result((TWO_G, THREE_G), (THREE_G, TWO_G)).counted_right
    assert not result((TWO_G, THREE_G), (TWO_G,)).counted_right
    assert not result((TWO_G,), (TWO_G, THREE_G)).counted_right


# --- alerts and dashboard for DRA pools ----------------------------------------------------------------------
# Expected names come from the sources: dcgm-exporter's labels (NVIDIA/dcgm-exporter internal/pkg/transformation
# const.go: dra_claim_name, dra_claim_namespace, dra_driver_name, dra_pool_name, dra_device_name, dra_mig_profile,
# dra_mig_device_uuid) and its flag's environment variable (pkg/cmd/app.go: --kubernetes-enable-dra,
# KUBERNETES_ENABLE_DRA); kube-state-metrics v2.20.0's pod metrics doc (kube_pod_resourceclaim_info: pod,
# namespace, uid, claim_name, resourceclaim_name, resourceclaim_template_name); the GPU Operator v26.7.0's
# exporter service account (assets/state-dcgm-exporter: nvidia-dcgm-exporter).
DCGM_DRA_LABELS = {"dra_claim_name", "dra_claim_namespace", "dra_driver_name", "dra_pool_name", "dra_device_name",
                   "dra_mig_profile", "dra_mig_device_uuid"}
KSM_CLAIM_LABELS = {"pod", "namespace", "uid", "claim_name", "resourceclaim_name", "resourceclaim_template_name"}
DRA_ALERTS = {"GpuSlicingPodsPendingForDraClaims", "GpuSlicingDraDevicesUnallocated"}


def _observed(groups, workloads=()):
    return load_stack({"maxGpuNodes": 10, "cluster": {**CLUSTER, "kubernetesVersion": "1.35"},
                       "nodeGroups": groups, "workloads": list(workloads), "observability": {"enabled": True}})


def _labels_in(expr: str) -> set[str]:
    """Label names an expression matches on or groups by (selectors, by/on/group_left lists)."""
    import re

    names = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!=|!~|=)\s*\"", expr))
    for group in re.findall(r"(?:by|on|group_left)\s*\(([^)]*)\)", expr):
        names |= {n.strip() for n in group.split(",") if n.strip()}
    return names


@pytest.mark.slow  # promql-parser and the observability tests' helpers load (~0.5 s)
def test_dra_alerts_and_panels_parse_and_use_only_the_sources_names():
    pytest.importorskip("promql_parser")
    from gpu_slicing import observability as obs
    from test_observability import _metric_names

    st = _observed([_p5(), {"name": "plugin", "instanceType": "p4d.24xlarge", "migLayout": "all-balanced"}])
    queries = dict(obs.every_query(st.config, st.pools))
    assert {f"alert {a}" for a in DRA_ALERTS} <= set(queries)
    dra = {w: e for w, e in queries.items() if "dra_claim" in e or "resourceclaim" in e}
    assert len(dra) == 2 + 5  # the two DRA alerts; published, held, Pending, SM per claim, idle claims panels
    for where, expr in dra.items():
        assert _metric_names(expr) <= obs.allowed_metrics(), where  # parses, and every metric is a known one
        used = _labels_in(expr)
        assert not {n for n in used if n.startswith("dra_")} - DCGM_DRA_LABELS, where
        if "kube_pod_resourceclaim_info" in expr:
            grouped = re.search(r"max by \(([^)]*)\) \(kube_pod_resourceclaim_info\)", expr).group(1)
            assert {n.strip() for n in grouped.split(",")} <= KSM_CLAIM_LABELS, where
    unallocated = queries["alert GpuSlicingDraDevicesUnallocated"]
    assert 'label_gpu_slicing_pool=~"p5"' in unallocated and "plugin" not in unallocated


def test_a_stack_without_dra_pools_gets_no_dra_alert_or_panel():
    from gpu_slicing import observability as obs

    st = _observed([{"name": "plugin", "instanceType": "p4d.24xlarge", "migLayout": "all-balanced"}])
    assert not any("dra_claim" in e or "resourceclaim" in e for _, e in obs.every_query(st.config, st.pools))
    assert not {a.name for a in obs.alerts(st.config.observability, st.pools)} & DRA_ALERTS


def test_the_exporter_attributes_dra_devices_and_may_read_resource_slices():
    from gpu_slicing import gpu_operator

    st = _observed([_p5()])
    exporter = gpu_operator.operator_values(st.config, st.pools)["dcgmExporter"]
    assert {"name": "KUBERNETES_ENABLE_DRA", "value": "true"} in exporter["env"]
    assert exporter["enablePodUID"] is True  # the operator mounts the service-account token only with pod metadata
    role, binding = dra.exporter_rbac("gpu-operator")
    assert role["rules"] == [{"apiGroups": ["resource.k8s.io"], "resources": ["resourceslices"],
                              "verbs": ["get", "list", "watch"]}]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "nvidia-dcgm-exporter",
                                    "namespace": "gpu-operator"}]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": role["metadata"]["name"]}
    assert role["metadata"] == binding["metadata"] and role["metadata"]["name"].startswith("gpu-slicing-")
    assert role["metadata"]["labels"] == {"app.kubernetes.io/part-of": "gpu-slicing"}
    plugin = _observed([{"name": "plugin", "instanceType": "p4d.24xlarge", "migLayout": "all-balanced"}])
    values = gpu_operator.operator_values(plugin.config, plugin.pools)["dcgmExporter"]
    assert "enablePodUID" not in values and all(e["name"] != "KUBERNETES_ENABLE_DRA" for e in values["env"])


def test_the_plans_alert_check_knows_the_dra_alerts_tests():
    from tools import checks

    assert DRA_ALERTS | {"GpuSlicingSliceIdle"} <= checks.tested_alerts(checks.DRA_ALERT_TESTS)


PROMTOOL = __import__("shutil").which("promtool")
DRA_ALERT_TESTS = ROOT / "tests" / "promtool" / "gpu_slicing_dra_alerts_test.yaml"


def _promtool(tmp_path, groups):
    import shutil
    import subprocess

    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    shutil.copy(DRA_ALERT_TESTS, tmp_path / DRA_ALERT_TESTS.name)
    return subprocess.run([PROMTOOL, "test", "rules", DRA_ALERT_TESTS.name], cwd=tmp_path, capture_output=True,
                          text=True)


def _dra_rules():
    from types import SimpleNamespace

    from gpu_slicing import observability as obs
    from gpu_slicing.config import ObservabilityConfig

    pools = [SimpleNamespace(name="p5-dra", allocation="dra"), SimpleNamespace(name="p4d-plugin", allocation="devicePlugin")]
    return obs.rule_groups(ObservabilityConfig(), pools)


@pytest.mark.slow
@pytest.mark.skipif(PROMTOOL is None, reason="needs promtool (Debian package prometheus)")
def test_promtool_unit_tests_pass_for_the_dra_alerts(tmp_path):
    out = _promtool(tmp_path, _dra_rules())
    assert out.returncode == 0 and "SUCCESS" in out.stdout, out.stdout + out.stderr


@pytest.mark.slow
@pytest.mark.skipif(PROMTOOL is None, reason="needs promtool (Debian package prometheus)")
@pytest.mark.parametrize("alert,broken", [
    ("GpuSlicingDraDevicesUnallocated", lambda e: e.replace('=~"p5-dra"', '!=""')),  # any pool's nodes
    ("GpuSlicingDraDevicesUnallocated", lambda e: e.replace(' unless on (node, gpu) DCGM_FI_PROF_GR_ENGINE_ACTIVE'
                                                            '{GPU_I_PROFILE!=""}', "")),  # a MIG GPU's own series
    ("GpuSlicingPodsPendingForDraClaims", lambda e: e.replace('phase="Pending"', 'phase=~"Pending|Running"')),
])
def test_promtool_unit_tests_catch_a_broken_dra_rule(tmp_path, alert, broken):
    import copy

    groups = copy.deepcopy(_dra_rules())
    rule = next(r for r in groups[0]["rules"] if r["alert"] == alert)
    fixed = rule["expr"]
    rule["expr"] = broken(fixed)
    assert rule["expr"] != fixed
    out = _promtool(tmp_path, groups)
    assert out.returncode != 0 and f"alertname: {alert}" in out.stdout + out.stderr


def test_the_device_plugin_is_off_cluster_wide_only_when_every_gpu_pool_is_dra():
    """GPU Operator v26.7.0 (controllers/object_controls.go) keeps the validator's plugin-validation step while
    the device plugin is on, and that step waits for nvidia.com/gpu or nvidia.com/mig-* capacity
    (cmd/nvidia-validator: 30 tries, 5 s apart), which a DRA node never has."""
    from gpu_slicing import gpu_operator

    only_dra = _stack([_p5()], [])
    assert gpu_operator.operator_values(only_dra.config, only_dra.pools)["devicePlugin"]["enabled"] is False
    mixed = _stack([_p5(), {"name": "plugin", "instanceType": "p4d.24xlarge", "migLayout": "all-balanced"}], [])
    assert gpu_operator.operator_values(mixed.config, mixed.pools)["devicePlugin"]["enabled"] is True


def test_a_dra_node_runs_the_kubelet_plugin_not_the_device_plugin():
    """Same number of DaemonSet pods per node (one plugin each), named for what runs there (the driver's
    install guide: dra-driver-nvidia-gpu-kubelet-plugin-<hash>, one a GPU node)."""
    st = _stack([_p5(), {**_p5(), "name": "plugin", "allocation": "devicePlugin"}], [])
    dra_ds, plugin_ds = st.pool("p5").daemon_sets, st.pool("plugin").daemon_sets
    assert "dra-driver-nvidia-gpu-kubelet-plugin" in dra_ds and "nvidia-device-plugin-daemonset" not in dra_ds
    assert "nvidia-device-plugin-daemonset" in plugin_ds and len(dra_ds) == len(plugin_ds)


# --- the pure model, without cel-python ------------------------------------------------------------------
# Names and shapes from the driver's ResourceSlice attribute reference (device names gpu-<i> and
# gpu-<i>-mig-<profile>-<n>; type gpu|mig; profile, parentUUID; productName and architecture inherited from the
# GPU; capacity memory, 40Gi for an A100 40GB), the resource.k8s.io/v1 API (DeviceRequest `exactly` /
# `firstAvailable`, allocationMode ExactCount, subrequest names are DNS labels), NVIDIA's architectures (A100
# Ampere, H100 Hopper, L4 Ada Lovelace, B200 Blackwell) and docs/facts.md §12.

def _one_gpu_sliced():
    return layouts.parse_custom_layouts({"h": [{"devices": [0], "profiles": {"3g.20gb": 1, "1g.5gb": 2}}]})["h"]


def test_a_node_publishes_each_device_named_and_attributed_as_the_driver_does():
    devices = dra.resource_slice_devices(catalog.INSTANCE_TYPES["p4d.24xlarge"], _one_gpu_sliced())
    names = [d["name"] for d in devices]
    assert names[:4] == ["gpu-0-mig-1g.5gb-0", "gpu-0-mig-1g.5gb-1", "gpu-0-mig-3g.20gb-0", "gpu-1"]
    assert len(devices) == 3 + 7
    mig, whole = devices[2], devices[3]
    attrs = {k: v["string"] for k, v in mig["attributes"].items()}
    assert attrs["type"] == "mig" and attrs["profile"] == "3g.20gb" and attrs["productName"] == "NVIDIA A100-SXM4-40GB"
    assert attrs["architecture"] == "Ampere" and attrs["brand"] == "Nvidia"
    assert {d["attributes"]["parentUUID"]["string"] for d in devices[:3]} == {attrs["parentUUID"]}
    assert attrs["parentUUID"] != whole["attributes"]["uuid"]["string"] and attrs["uuid"].startswith("MIG-")
    assert len({d["attributes"]["uuid"]["string"] for d in devices}) == len(devices)
    assert mig["capacity"] == {"memory": {"value": "20Gi"}} and devices[0]["capacity"]["memory"]["value"] == "5Gi"
    assert whole["attributes"]["type"]["string"] == "gpu" and "profile" not in whole["attributes"]
    assert whole["capacity"] == {"memory": {"value": "40Gi"}}
    assert [dra.device_kind(d) for d in devices[:4]] == ["mig.nvidia.com/1g.5gb", "mig.nvidia.com/1g.5gb",
                                                         "mig.nvidia.com/3g.20gb", "gpu.nvidia.com"]


@pytest.mark.parametrize("itype, arch, product", [
    ("p5.48xlarge", "Hopper", "NVIDIA H100 80GB HBM3"), ("g6.xlarge", "Ada Lovelace", "NVIDIA L4"),
    ("p6-b200.48xlarge", "Blackwell", "NVIDIA B200"), ("p5e.48xlarge", "Hopper", "NVIDIA H200")])
def test_devices_carry_their_gpus_architecture_and_product(itype, arch, product):
    it = catalog.INSTANCE_TYPES[itype]
    (device, *_) = dra.resource_slice_devices(it, catalog.named_layouts(it.gpu)["all-disabled"])
    assert device["attributes"]["architecture"]["string"] == arch
    assert device["attributes"]["productName"]["string"] == product


def test_a_resource_slice_is_one_pool_per_node_of_the_driver():
    pool = _stack([_p5()], []).pool("p5")
    rs = dra.resource_slice(pool, pool.largest, "ip-10-0-0-1")
    assert rs["apiVersion"] == "resource.k8s.io/v1" and rs["kind"] == "ResourceSlice"
    assert rs["spec"]["driver"] == "gpu.nvidia.com" and rs["spec"]["nodeName"] == "ip-10-0-0-1"
    assert rs["spec"]["pool"] == {"name": "ip-10-0-0-1", "generation": 1, "resourceSliceCount": 1}
    assert list(rs["metadata"]) == ["name"] and rs["metadata"]["name"].startswith("ip-10-0-0-1")  # an object has a name


def test_the_model_matches_what_the_claims_selectors_say():
    st = _stack([_p5(), {"name": "a80", "instanceType": "p4de.24xlarge", "migLayout": "all-balanced",
                         "allocation": "dra"}],
                [{"name": "m", "memoryGB": 20, "pool": "p5"}, {"name": "f", "profile": "1g.10gb",
                                                               "fallbackProfiles": ["3g.40gb"], "pool": "p5"}])
    p5, a80 = st.pool("p5"), st.pool("a80")
    m, f = st.config.workloads
    h100 = dra.resource_slice_devices(p5.largest, p5.layout)
    a100 = dra.resource_slice_devices(a80.largest, a80.layout)

    def profiles(w, ds):
        return sorted({d["attributes"]["profile"]["string"] for d in ds if dra.matches(w, p5, d)})

    assert profiles(m, h100) == ["2g.20gb", "3g.40gb"] and profiles(f, h100) == ["1g.10gb", "3g.40gb"]
    assert profiles(m, a100) == [] and profiles(f, a100) == []  # the same profile names on another model
    assert sum(dra.matches(m, p5, d) for d in h100) == 16


def test_selectors_pin_the_product_and_the_profiles():
    pool = _stack([_p5()], []).pool("p5")
    product = "device.attributes['gpu.nvidia.com'].productName.lowerAscii().contains('h100')"
    assert dra.selector(pool, []) == product
    assert dra.selector(pool, ["1g.10gb"]) == product + " && device.attributes['gpu.nvidia.com'].profile == '1g.10gb'"
    assert dra.selector(pool, ["2g.20gb", "3g.40gb"]) == (
        product + " && device.attributes['gpu.nvidia.com'].profile in ['2g.20gb', '3g.40gb']")
    a40 = _stack([{"name": "a", "instanceType": "p4d.24xlarge", "allocation": "dra"}], []).pool("a")
    assert dra.selector(a40, []) == ("device.attributes['gpu.nvidia.com'].productName.lowerAscii().contains('a100') && "
                                     "device.attributes['gpu.nvidia.com'].productName.lowerAscii().contains('40gb')")


def test_claim_specs_are_resource_k8s_io_v1_requests():
    st = _stack([{"name": "l4", "instanceType": "g6.12xlarge", "allocation": "dra"}, _p5()],
                [{"name": "two", "gpus": 2, "pool": "l4"},
                 {"name": "f", "profile": "2g.20gb", "fallbackProfiles": ["3g.40gb"], "replicas": 3,
                  "claimSharing": "mps", "pool": "p5"}])
    two, f = st.config.workloads
    l4 = "device.attributes['gpu.nvidia.com'].productName.lowerAscii().contains('l4')"
    assert dra.claim_spec(two, st.pool("l4")) == {"devices": {"requests": [{"name": "slice", "exactly": {
        "deviceClassName": "gpu.nvidia.com", "allocationMode": "ExactCount", "count": 2,
        "selectors": [{"cel": {"expression": l4}}]}}]}}
    spec = dra.claim_spec(f, st.pool("p5"))
    # the driver's sharing config applies to the requests it names: the prioritized list's own name
    assert [r["name"] for r in spec["devices"]["requests"]] == spec["devices"]["config"][0]["requests"] == ["slice"]
    subs = spec["devices"]["requests"][0]["firstAvailable"]
    assert [s["name"] for s in subs] == ["2g-20gb", "3g-40gb"] and all(s["count"] == 1 for s in subs)
    assert {s["deviceClassName"] for s in subs} == {"mig.nvidia.com"}
    assert spec["devices"]["config"] == [{"requests": ["slice"], "opaque": {"driver": "gpu.nvidia.com", "parameters": {
        "apiVersion": "resource.nvidia.com/v1beta1", "kind": "MigDeviceConfig", "sharing": {"strategy": "MPS"}}}}]
    shared = dra.claim_template(f, st.pool("p5"), "ns", claim="f-shared")
    assert shared["kind"] == "ResourceClaim" and shared["metadata"]["name"] == "f-shared"
    assert shared["metadata"]["namespace"] == "ns" and shared["metadata"]["labels"]["app.kubernetes.io/name"] == "f"
    per_pod = dra.claim_template(two, st.pool("l4"), "ns", claim="two-slice")
    assert per_pod["kind"] == "ResourceClaimTemplate" and per_pod["spec"]["spec"] == dra.claim_spec(two, st.pool("l4"))
    assert dra.pod_resource_claims(two, claim="two-slice") == [{"name": "slice",
                                                                "resourceClaimTemplateName": "two-slice"}]


def test_driver_values_confine_the_plugin_to_dra_nodes_whose_layout_is_applied():
    """docs/facts.md §12: gpuResourcesEnabledOverride true, nvidiaDriverRoot / on the EKS NVIDIA AMI, the v1 API
    pinned, ComputeDomains off, the kubelet plugin only on DRA nodes; MPS needs the MPSSupport gate."""
    mig_pool = _stack([_p5()], []).pool("p5")
    whole = _stack([{"name": "g6", "instanceType": "g6.xlarge", "allocation": "dra"}], []).pool("g6")
    plugin = _stack([{**_p5(), "allocation": "devicePlugin"}], []).pool("p5")
    values = dra.driver_values([mig_pool, plugin], [])
    assert values["gpuResourcesEnabledOverride"] is True and values["nvidiaDriverRoot"] == "/"
    assert values["resourceApiVersion"] == "resource.k8s.io/v1" and values["featureGates"] == {}
    assert values["resources"] == {"gpus": {"enabled": True}, "computeDomains": {"enabled": False}}
    assert values["kubeletPlugin"]["nodeSelector"] == {"gpu-slicing/allocation": "dra"}
    terms = values["kubeletPlugin"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [
        {"key": "gpu-slicing/allocation", "operator": "In", "values": ["dra"]},
        {"key": "nvidia.com/mig.config.state", "operator": "In", "values": ["success"]}]}]
    both = dra.driver_values([mig_pool, whole], [])["kubeletPlugin"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert len(both) == 2 and both[1]["matchExpressions"][1] == {"key": "nvidia.com/mig.config", "operator": "DoesNotExist"}
    alone = dra.driver_values([whole], [])["kubeletPlugin"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert alone == both[1:]
    mps = WorkloadConfig.model_validate({"name": "w", "pool": "g6", "gpus": 1, "claimSharing": "mps"})
    ts = WorkloadConfig.model_validate({"name": "t", "pool": "g6", "gpus": 1, "claimSharing": "timeSlicing"})
    assert dra.driver_values([whole], [mps])["featureGates"] == {"MPSSupport": True}
    assert dra.driver_values([whole], [ts])["featureGates"] == {}
    assert values["kubeletPlugin"]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists",
                                                       "effect": "NoSchedule"}]


def _refusal(groups, workloads=(), version="1.35", pools=None):
    raw = {"maxGpuNodes": 10, "cluster": {**CLUSTER, "kubernetesVersion": version}, "nodeGroups": groups,
           "workloads": list(workloads)}
    if pools:
        raw["karpenter"] = {"enabled": True, "nodePools": pools}
    with pytest.raises((ConfigError,)) as e:
        load_stack(raw)
    return e.value


def test_pool_refusals_name_the_key_and_why():
    e = _refusal([], pools=[{"name": "kp", "instanceTypes": ["p5.48xlarge"], "migLayout": "all-balanced",
                             "allocation": "dra", "maxNodes": 1}])
    errors = getattr(e, "errors", [e])
    assert any(x.key == "gpu-slicing:karpenter.nodePools[0].allocation" and "v1.15" in x.allowed
               and "MIG" in x.allowed for x in errors)
    e = _refusal([_p5(sharing={"timeSlicing": {"replicas": 2}})])
    errors = getattr(e, "errors", [e])
    assert any(x.key == "gpu-slicing:nodeGroups[0].sharing" and "claimSharing" in x.allowed for x in errors)


@pytest.mark.parametrize("itype, version, alpha, ampere", [("p4d.24xlarge", "1.35", True, True),
                                                           ("p5.48xlarge", "1.36", False, False)])
def test_dynamic_mig_is_refused_with_every_reason_that_applies(itype, version, alpha, ampere):
    e = dra.dynamic_mig_error("k", catalog.INSTANCE_TYPES[itype], version)
    assert e.key == "k.migLayout" and "destroys MIG partitions it did not create" in e.allowed
    assert ("alpha (feature gate DRAPartitionableDevices off)" in e.allowed) is alpha
    assert ("cannot turn MIG mode on without a GPU reset" in e.allowed) is ampere


@pytest.mark.parametrize("workload, key, text", [
    ({"profile": "1g.10gb", "fallbackProfiles": ["1g.10gb"]}, "fallbackProfiles[0]",
     "a profile other than 1g.10gb that layout all-balanced of pool p5 creates: 2g.20gb, 3g.40gb"),
    ({"profile": "1g.10gb", "fallbackProfiles": ["2g.20gb", "4g.40gb"]}, "fallbackProfiles[1]", "creates"),
    ({"memoryGB": 41}, "memoryGB", "(40 GB, mig.nvidia.com/3g.40gb)"),
    ({"profile": "1g.10gb", "replicas": 2, "claimSharing": "timeSlicing"}, "claimSharing", "time-slicing has no effect"),
])
def test_claim_keys_a_dra_pool_cannot_serve_are_refused(workload, key, text):
    e = _refusal([_p5()], [{"name": "w", "pool": "p5", **workload}])
    assert e.key == f"gpu-slicing:workloads[0].{key}" and text in e.allowed, (e.key, e.allowed)


def test_a_memory_floor_above_whole_gpus_says_the_gpus_size():
    """g6e.12xlarge: 4 x L40S of 48 GB (docs/facts.md §2)."""
    e = _refusal([{"name": "g", "instanceType": "g6e.12xlarge", "allocation": "dra"}],
                 [{"name": "w", "pool": "g", "memoryGB": 49}])
    assert e.key == "gpu-slicing:workloads[0].memoryGB" and "(48 GB, gpu.nvidia.com)" in e.allowed


def test_claim_keys_on_a_device_plugin_pool_are_refused():
    e = _refusal([{**_p5(), "allocation": "devicePlugin"}],
                 [{"name": "w", "pool": "p5", "profile": "1g.10gb", "claimSharing": "mps"}])
    assert e.key == "gpu-slicing:workloads[0].claimSharing" and "allocation: devicePlugin" in e.allowed


@pytest.mark.parametrize("version, on", [("1.33", False), ("1.34", True), ("1.35", True), ("1.36", True)])
def test_feature_stages_by_version(version, on):
    assert dra.feature_on("firstAvailable", version) is on
    assert dra.feature_on("partitionableDevices", version) is (version == "1.36")
    assert dra.feature_on("consumableCapacity", version) is (version == "1.36")


def test_nominal_memory_is_the_profiles_stated_size():
    assert [dra.nominal_gb(p) for p in ("1g.5gb", "3g.40gb", "1g.18gb+me", "7g.180gb", "mig")] == [5, 40, 18, 180, 0]


def _runs(script: str, listing: str) -> bool:
    """Whether the verification script passes when `nvidia-smi -L` prints `listing`."""
    import subprocess

    fake = f"nvidia-smi() {{ printf '%s' '{listing}'; }}; "
    return subprocess.run(["bash", "-c", fake + script], capture_output=True).returncode == 0


@pytest.mark.slow  # seven bash processes
def test_the_verification_of_whole_gpus_counts_them_and_of_slices_escapes_the_profile():
    """nvidia-smi -L prints one 'GPU <i>: <name> (UUID: ...)' line per GPU and a MIG device indented under it
    as 'MIG <profile> Device <n>: (UUID: ...)'."""
    st = _stack([{"name": "l4", "instanceType": "g6.12xlarge", "allocation": "dra"},
                 {"name": "h200", "instanceType": "p5e.48xlarge", "migLayout": "all-1g.18gb.me", "allocation": "dra"}],
                [{"name": "two", "gpus": 2, "pool": "l4"}, {"name": "me", "profile": "1g.18gb+me", "pool": "h200"}])
    two, me = st.config.workloads
    cmd = dra.verify_command(two, st.pool("l4"))
    assert cmd[:2] == ["bash", "-c"] and cmd[2].startswith("nvidia-smi -L && ")
    gpu = "GPU {}: NVIDIA L4 (UUID: GPU-{})\n"
    assert _runs(cmd[2], gpu.format(0, 0) + gpu.format(1, 1))
    assert not _runs(cmd[2], gpu.format(0, 0)) and not _runs(cmd[2], "".join(gpu.format(i, i) for i in range(3)))
    script = dra.verify_command(me, st.pool("h200"))[2]
    head = "GPU 0: NVIDIA H200 (UUID: GPU-0)\n"
    assert _runs(script, head + "  MIG 1g.18gb+me    Device  0: (UUID: MIG-0)\n")
    assert not _runs(script, head + "  MIG 1g.18gbXme    Device  0: (UUID: MIG-0)\n")
    assert not _runs(script, head + "  MIG 1g.18gb+me    Device  0: (UUID: MIG-0)\n  MIG 1g.18gb+me    Device  1: (UUID: MIG-1)\n")


def test_claim_objects_carry_the_api_version_and_the_programs_labels():
    st = _stack([_p5()], [{"name": "w", "profile": "1g.10gb", "pool": "p5"}])
    (w,) = st.workloads  # its claim named <workload>-slice where it resolved
    t = dra.claim_template(w.config, w.pool, "gpu-workloads", claim=w.claim or "")
    assert t["apiVersion"] == "resource.k8s.io/v1"
    assert t["metadata"] == {"name": "w-slice", "namespace": "gpu-workloads",
                             "labels": {"app.kubernetes.io/name": "w", "app.kubernetes.io/part-of": "gpu-slicing"}}
    shared = dra.claim_template(WorkloadConfig(name="s", profile="1g.10gb", pool="p5", claimSharing="mps"), w.pool,
                                "gpu-workloads", claim="s-slice")
    assert (shared["apiVersion"], shared["kind"]) == ("resource.k8s.io/v1", "ResourceClaim")


@pytest.mark.parametrize("key, value, shown", [("fallbackProfiles", ["2g.20gb"], "[2g.20gb]"), ("memoryGB", 20, "20"),
                                               ("claimSharing", "mps", "'mps'")])
def test_each_claim_key_on_a_device_plugin_pool_is_refused_by_name(key, value, shown):
    extra = {"profile": "1g.10gb"} if key != "memoryGB" else {}
    e = _refusal([{**_p5(), "allocation": "devicePlugin"}], [{"name": "w", "pool": "p5", key: value, **extra}])
    assert e.key == f"gpu-slicing:workloads[0].{key}" and "pool p5 hands out slices through the device plugin" in e.allowed
    assert str(e).startswith(f"gpu-slicing:workloads[0].{key}: {shown} is not valid"), str(e)


def test_fallbacks_need_a_profile_and_name_the_wrong_one():
    e = _refusal([_p5()], [{"name": "w", "pool": "p5", "memoryGB": 20, "fallbackProfiles": ["3g.40gb"]}])
    assert e.key == "gpu-slicing:workloads[0].fallbackProfiles" and "absent without profile" in e.allowed
    e = _refusal([_p5()], [{"name": "w", "pool": "p5", "profile": "1g.10gb", "fallbackProfiles": ["2g.20gb", "7g.80gb"]}])
    assert str(e).startswith("gpu-slicing:workloads[0].fallbackProfiles[1]: '7g.80gb' is not valid"), str(e)


def test_a_memory_floor_on_a_mig_pool_names_its_largest_slice_not_a_whole_gpu():
    """The half-MIG p5: 1g.10gb slices on GPUs 0-3, whole 80 GB GPUs 4-7; a floor is a slice's there."""
    with pytest.raises(ConfigError) as e:
        _half([{"name": "w", "memoryGB": 11, "pool": "p5"}])
    assert "(10 GB, mig.nvidia.com/1g.10gb)" in e.value.allowed


def test_a_memory_floor_a_whole_gpu_just_meets_is_a_whole_gpu_claim():
    """g6e.12xlarge: 4 x L40S of 48 GB (docs/facts.md §2): a 48 GB floor takes one whole GPU."""
    st = _stack([{"name": "g", "instanceType": "g6e.12xlarge", "allocation": "dra"}],
                [{"name": "w", "memoryGB": 48, "replicas": 4, "pool": "g"}])
    (w,) = st.config.workloads
    assert dra.claim_resources(w, st.pool("g")) == ("gpu.nvidia.com",)
    assert st.capacity.to_json()["workloads"][0]["fits"]


def test_every_dra_pool_is_checked_not_only_the_first():
    e = _refusal([{**_p5(), "name": "plugin", "allocation": "devicePlugin"}, _p5()], version="1.33")
    errors = getattr(e, "errors", [e])
    assert [x.key for x in errors if x.key.endswith(".allocation")] == ["gpu-slicing:nodeGroups[1].allocation"]
    assert any(str(x).startswith("gpu-slicing:nodeGroups[1].allocation: 'dra' is not valid") for x in errors)


def test_pool_refusals_show_the_value_and_say_what_to_use_instead():
    e = _refusal([], pools=[{"name": "kp", "instanceTypes": ["p5.48xlarge"], "migLayout": "all-balanced",
                             "allocation": "dra", "maxNodes": 1}])
    assert any(str(x).startswith("gpu-slicing:karpenter.nodePools[0].allocation: 'dra' is not valid")
               for x in getattr(e, "errors", [e]))
    e = _refusal([_p5(sharing={"timeSlicing": {"replicas": 2}})])
    (x,) = [x for x in getattr(e, "errors", [e]) if x.key.endswith(".sharing")]
    assert x.value == {"timeSlicing": {"replicas": 2}}
    assert x.allowed == ("no pool sharing on a dra pool: that is the device plugin's time-slicing config, which does "
                         "not run there; share a device per workload with workloads[].claimSharing")


def test_the_dynamic_mig_refusal_says_each_reason_in_full():
    e = dra.dynamic_mig_error("k", catalog.INSTANCE_TYPES["p4d.24xlarge"], "1.35")
    assert e.value == "dynamic" and "on Kubernetes 1.35" in e.allowed
    assert "so the driver would fall back to whole GPUs (driver MIG guide); the driver destroys" in e.allowed
    # an H100 on 1.36: partitionable devices are beta there and an H100 needs no reset, one reason is left
    h100 = dra.dynamic_mig_error("k", catalog.INSTANCE_TYPES["p5.48xlarge"], "1.36")
    assert h100.allowed == ("a static MIG layout the MIG manager applies (all-balanced, all-<profile> or a migLayouts "
                            "key): dynamic MIG is refused: the driver destroys MIG partitions it did not create, so it "
                            "can never run beside the MIG manager that applies this program's layouts")
    assert e.allowed.endswith("the driver destroys MIG partitions it did not create, so it can never run beside the "
                              "MIG manager that applies this program's layouts")


def test_every_catalog_gpu_has_the_product_name_the_driver_publishes():
    assert {it.gpu.name for it in catalog.INSTANCE_TYPES.values()} <= set(dra.PRODUCTS)


def test_the_drivers_controller_runs_on_linux_and_the_plugin_on_dra_nodes_without_mig():
    whole = _stack([{"name": "g6", "instanceType": "g6.xlarge", "allocation": "dra"}], []).pool("g6")
    values = dra.driver_values([whole], [])
    assert values["controller"] == {"nodeSelector": {"kubernetes.io/os": "linux"}}
    assert values["kubeletPlugin"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"] == [{"matchExpressions": [
            {"key": "gpu-slicing/allocation", "operator": "In", "values": ["dra"]},
            {"key": "nvidia.com/mig.config", "operator": "DoesNotExist"}]}]


def test_fallbacks_on_eks_before_1_34_say_the_prioritized_list_is_not_there():
    """KEP-4816: the prioritized list (firstAvailable) is beta, on by default, from 1.34."""
    e = _refusal([_p5()], [{"name": "w", "pool": "p5", "profile": "1g.10gb", "fallbackProfiles": ["2g.20gb"]}],
                 version="1.33")
    (x,) = [x for x in getattr(e, "errors", [e]) if x.key == "gpu-slicing:workloads[0].fallbackProfiles"]
    assert x.value == ["2g.20gb"]
    assert x.allowed == ("a prioritized list of subrequests (KEP-4816): alpha (feature gate DRAPrioritizedList off) on "
                         "Kubernetes 1.33; EKS enables no alpha features, so it works from 1.34 (beta, on by default)")


NOT_ON_PLUGIN = ("absent: pool p5 hands out slices through the device plugin (allocation: devicePlugin), and only a DRA "
                 "claim can say this; set the pool's allocation to dra or drop the key")
NO_WHOLE_GPU = ("absent (use profile or memoryGB), or a layout with MIG off on some GPUs: layout {} of pool p5 leaves no "
                "GPU whole, so its nodes publish no gpu.nvidia.com device")
STRANDED = (" (a GPU with MIG on and no slices publishes nothing at all: the NVIDIA DRA driver's GPU allocation "
            "guide)")


@pytest.mark.parametrize("pool, workload, key, value, allowed", [
    ({"allocation": "devicePlugin"}, {"profile": "1g.10gb", "fallbackProfiles": ["2g.20gb"]}, "fallbackProfiles",
     ["2g.20gb"], NOT_ON_PLUGIN),
    ({}, {"memoryGB": 20, "fallbackProfiles": ["3g.40gb"]}, "fallbackProfiles", ["3g.40gb"],
     "absent without profile: the fallbacks are tried after profile"),
    ({}, {"profile": "1g.10gb", "replicas": 2, "claimSharing": "timeSlicing"}, "claimSharing", "timeSlicing",
     "mps (or none) on a MIG pool: the driver's MIG guide says time-slicing has no effect on MIG devices (MPS shares "
     "a slice)"),
    # all-balanced: 1g.10gb, 2g.20gb, 3g.40gb per GPU (docs/facts.md §2), the largest 40 GB
    ({}, {"memoryGB": 41}, "memoryGB", 41, "at most what pool p5's largest device has (40 GB, mig.nvidia.com/3g.40gb): "
     "no device of its layout all-balanced has that much, so the claim would never be allocated"),
    # all-enabled: MIG on, no slices: the nodes publish no device at all
    ({"migLayout": "all-enabled"}, {"memoryGB": 10}, "memoryGB", 10, "at most what pool p5's largest device has "
     "(0 GB, none): no device of its layout all-enabled has that much, so the claim would never be allocated"),
    ({"migLayout": "all-enabled"}, {"gpus": 1}, "gpus", 1, NO_WHOLE_GPU.format("all-enabled") + STRANDED),
    ({}, {"gpus": 1}, "gpus", 1, NO_WHOLE_GPU.format("all-balanced")),
])
def test_each_dra_workload_refusal_shows_the_value_and_says_why_in_full(pool, workload, key, value, allowed):
    """A refused workload key is named with the value as written (a list stays a list) and the whole reason: what
    would be accepted and why the driver or the layout cannot serve it."""
    e = _refusal([_p5(**pool)], [{"name": "w", "pool": "p5", **workload}])
    (x,) = [x for x in getattr(e, "errors", [e]) if x.key == f"gpu-slicing:workloads[0].{key}"]
    assert (x.value, x.allowed) == (value, allowed)


def test_a_shared_claim_refused_for_too_many_replicas_shows_them():
    e = _refusal([{"name": "g6", "instanceType": "g6.xlarge", "allocation": "dra"}],
                 [{"name": "w", "gpus": 1, "replicas": 100, "claimSharing": "mps", "pool": "g6"}])
    assert (e.key, e.value) == ("gpu-slicing:workloads[0].replicas", 100)


# An A100-40GB layout of 1g.5gb and 1g.10gb slices: by name "1g.10gb" sorts first, by size it is the larger
SMALL_AND_TEN = {"small-and-ten": [{"devices": list(range(8)), "profiles": {"1g.5gb": 4, "1g.10gb": 1}}]}


def _small_and_ten(workload):
    return load_stack({"maxGpuNodes": 1, "cluster": CLUSTER, "migLayouts": SMALL_AND_TEN, "workloads": [workload],
                       "nodeGroups": [{"name": "a", "instanceType": "p4d.24xlarge", "migLayout": "small-and-ten",
                                       "allocation": "dra"}]})


def test_a_memory_floor_is_first_the_smallest_slice_by_size_not_by_name():
    """A 5 GB floor takes a 1g.5gb slice first, then a 1g.10gb one (the plan line is named by the first choice);
    an 11 GB floor is refused naming the 10 GB slice as the largest."""
    (w,) = _small_and_ten({"name": "w", "memoryGB": 5, "pool": "a"}).workloads
    assert (w.resource, w.alternatives) == ("mig.nvidia.com/1g.5gb", ("mig.nvidia.com/1g.10gb",))
    with pytest.raises(ConfigError) as e:
        _small_and_ten({"name": "w", "memoryGB": 11, "pool": "a"})
    assert "largest device has (10 GB, mig.nvidia.com/1g.10gb)" in e.value.allowed


def test_a_whole_gpu_of_a_half_mig_pool_may_be_time_sliced_and_is_verified_as_a_gpu():
    """The half-MIG p5's GPUs 4-7 are whole: time-slicing one (refused on a MIG slice) is a GPU claim, and its
    verification counts GPUs, not MIG devices."""
    st = _half([{"name": "g", "gpus": 1, "replicas": 2, "claimSharing": "timeSlicing", "pool": "p5"}])
    (w,) = st.workloads
    assert w.resource == "gpu.nvidia.com"
    assert dra.verify_command(w.config, w.pool)[2].endswith("test \"$(nvidia-smi -L | grep -c '^GPU ')\" -eq 1")


def test_the_verification_of_a_memory_floor_accepts_each_slice_that_meets_it():
    """20 GB on all-balanced: 2g.20gb or 3g.40gb (docs/facts.md §2); 48 GB on g6e's 48 GB L40S: one whole GPU."""
    st = _stack([_p5()], [{"name": "w", "memoryGB": 20, "pool": "p5"}])
    (w,) = st.workloads
    assert "grep -cE '^ +MIG (2g\\.20gb|3g\\.40gb) +Device')\" -eq 1" in dra.verify_command(w.config, w.pool)[2]
    st = _stack([{"name": "g", "instanceType": "g6e.12xlarge", "allocation": "dra"}],
                [{"name": "w", "memoryGB": 48, "pool": "g"}])
    (w,) = st.workloads
    assert dra.verify_command(w.config, w.pool)[2].endswith("grep -c '^GPU ')\" -eq 1")
