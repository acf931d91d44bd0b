"""What each sample workload object waits for, edge by edge (its direct dependencies as recorded), and how long
Pulumi waits for it. The rules (components/workloads.py's docstrings, docs/facts.md §5, §10, §12): every object
waits for its namespace and the GPU Operator; a workload for the resources its own pool's nodes come from and
nothing of another pool; the Deployment that wants the slice the verification Job checks waits for the Job; with
DRA, a claim template waits for the driver, and a pod holding a claim for its template and the driver. A dropped
edge is a pod created before what it needs, or a destroy that pulls a pool (or the driver) from under running
pods."""
from __future__ import annotations

import pytest

MODES = ["preview", "up"]
# MIG setup reboots a fresh node (minutes); a Karpenter node adds its launch: Pulumi waits for Ready replicas.
WAIT = {"create": "40m", "update": "40m", "delete": "10m"}


def _deps(r, reg) -> set[str]:
    return {r.get(u).name for u in reg.dependencies}


def _objects(r, prefix: str) -> dict:
    return {x.name.removeprefix(prefix): x for x in r.registrations
            if x.type in ("kubernetes:apps/v1:Deployment", "kubernetes:batch/v1:Job")
            or x.type.startswith("kubernetes:resource.k8s.io/")}


@pytest.mark.parametrize("mode", MODES)
def test_each_dev_workload_waits_for_exactly_its_namespace_the_operator_and_its_own_pool(dev_runs, mode):
    r = dev_runs[mode]
    got = {name: _deps(r, x) for name, x in _objects(r, "gpu-dev-workloads-").items()}
    common = {"gpu-dev-workloads-ns", "gpu-dev-gpu-operator"}
    job = "verify-mig-slice-a1b7f28"
    assert got == {
        job: common | {"gpu-dev-p4d-balanced"},  # checks the first workload's slice, on its pool
        "slice-1g": common | {"gpu-dev-p4d-balanced", f"gpu-dev-workloads-{job}"},  # same pool, same slice
        "slice-2g": common | {"gpu-dev-p4d-balanced"},
        "slice-3g": common | {"gpu-dev-p4d-balanced"},
        "guide-1g": common | {"gpu-dev-p4d-small-nodepool", "gpu-dev-p4d-small-overlay-p4d-24xlarge"},
    }


@pytest.mark.parametrize("mode", MODES)
def test_pulumi_waits_for_ready_slices_long_enough_and_never_reruns_the_job_on_a_spec_change(dev_runs, mode):
    r = dev_runs[mode]
    comp = r.one("gpu-slicing:workloads:SampleWorkloads")
    assert comp.name == "gpu-dev-workloads"
    provider = r.one("pulumi:providers:kubernetes").urn
    for name, x in _objects(r, "gpu-dev-workloads-").items():
        assert x.options["customTimeouts"] == WAIT, name
        assert x.parent == comp.urn and x.provider.rsplit("::", 1)[0] == provider, name
        # a Job's template is immutable: a spec change would be a replace, a re-run on nodes the Deployments fill
        assert x.options["ignoreChanges"] == (["spec"] if x.type == "kubernetes:batch/v1:Job" else []), name
        # in the restricted namespace, under the name the resource is registered for (never `default`)
        assert x.inputs["metadata"]["namespace"] == "gpu-workloads" and x.inputs["metadata"]["name"] == name, name
    ns = r.one("kubernetes:core/v1:Namespace", "gpu-dev-workloads-ns")
    assert ns.parent == comp.urn
    assert ns.inputs["metadata"] == {"name": "gpu-workloads",
                                     "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}


@pytest.fixture(scope="module")
def dra_after_plugin():
    """examples/Pulumi.dra.yaml with the device-plugin pool's workload first: the verification Job checks that
    pool's slice, and the DRA pool gets a Job of its own, holding its first workload's claim."""
    import yaml

    from conftest import ROOT, run

    config = yaml.safe_load((ROOT / "examples" / "Pulumi.dra.yaml").read_text())["config"]
    w = config["gpu-slicing:workloads"]
    config["gpu-slicing:workloads"] = [w[3], *w[:3]]
    r = run(config)
    assert r.error is None, r.error
    return r


@pytest.mark.slow
def test_dra_pods_wait_for_their_claim_template_and_the_driver(dra_after_plugin):
    r = dra_after_plugin
    objs = _objects(r, "gpu-dra-workloads-")
    jobs = sorted(n for n, x in objs.items() if x.type == "kubernetes:batch/v1:Job")
    assert len(jobs) == 2
    plugin_job, dra_job = sorted(jobs, key=lambda n: "gpu-dra-p5-dra" in _deps(r, objs[n]))
    common = {"gpu-dra-workloads-ns", "gpu-dra-gpu-operator"}
    dra = common | {"gpu-dra-p5-dra", "gpu-dra-dra-driver"}
    got = {n: _deps(r, x) for n, x in objs.items()}
    assert got == {
        plugin_job: common | {"gpu-dra-p4d-plugin"},
        "a100-1g": common | {"gpu-dra-p4d-plugin", f"gpu-dra-workloads-{plugin_job}"},
        dra_job: dra | {"gpu-dra-workloads-h100-1g-slice"},  # its pool's first workload's claim
        "h100-1g": dra | {"gpu-dra-workloads-h100-1g-slice", f"gpu-dra-workloads-{dra_job}"},
        "h100-2g-or-3g": dra | {"gpu-dra-workloads-h100-2g-or-3g-slice", f"gpu-dra-workloads-{dra_job}"},
        "h100-40gb": dra | {"gpu-dra-workloads-h100-40gb-slice", f"gpu-dra-workloads-{dra_job}"},
        "h100-1g-slice": {"gpu-dra-workloads-ns", "gpu-dra-dra-driver"},
        "h100-2g-or-3g-slice": {"gpu-dra-workloads-ns", "gpu-dra-dra-driver"},
        "h100-40gb-slice": {"gpu-dra-workloads-ns", "gpu-dra-dra-driver"},
    }
    for n in jobs:
        assert objs[n].options["ignoreChanges"] == ["spec"] and objs[n].options["customTimeouts"] == WAIT
    comp = r.one("gpu-slicing:workloads:SampleWorkloads").urn
    provider = r.one("pulumi:providers:kubernetes").urn
    for n, x in objs.items():  # claims and Jobs too: the component's, through the one provider, in the namespace
        assert x.parent == comp and x.provider.rsplit("::", 1)[0] == provider, n
        assert x.inputs["metadata"]["namespace"] == "gpu-workloads" and x.inputs["metadata"]["name"] == n, n
        assert x.inputs["spec"], n
    claims = [x for x in objs.values() if x.type.startswith("kubernetes:resource.k8s.io/")]
    assert {x.type for x in claims} == {"kubernetes:resource.k8s.io/v1:ResourceClaimTemplate"}
    assert all(x.options["customTimeouts"] == {} for x in claims)
    assert {x.inputs["metadata"]["name"] for x in claims} == {"h100-1g-slice", "h100-2g-or-3g-slice", "h100-40gb-slice"}
    assert all(x.inputs["metadata"]["namespace"] == "gpu-workloads" for x in claims)
    spec = objs["h100-1g"].inputs["spec"]["template"]["spec"]
    assert spec["resourceClaims"][0]["resourceClaimTemplateName"] == "h100-1g-slice"


@pytest.mark.slow
def test_a_shared_claim_is_one_resource_claim_its_pods_wait_for():
    """`claimSharing`: every replica holds the one ResourceClaim (not a template per pod); it waits for the
    driver, and the Deployment for it, the driver and its pool's own verification Job."""
    import yaml

    from conftest import ROOT, run

    config = yaml.safe_load((ROOT / "examples" / "Pulumi.dra.yaml").read_text())["config"]
    config["gpu-slicing:nodeGroups"].append({"name": "g6", "instanceType": "g6.xlarge", "minSize": 1,
                                             "desiredSize": 1, "maxSize": 1, "allocation": "dra"})
    config["gpu-slicing:workloads"].append({"name": "shared", "gpus": 1, "replicas": 2,
                                            "claimSharing": "timeSlicing", "pool": "g6"})
    config["gpu-slicing:maxGpuNodes"] += 1
    r = run(config)
    assert r.error is None, r.error
    claim = r.one("kubernetes:resource.k8s.io/v1:ResourceClaim")
    assert claim.name == "gpu-dra-workloads-shared-slice" and claim.inputs["metadata"]["name"] == "shared-slice"
    assert _deps(r, claim) == {"gpu-dra-workloads-ns", "gpu-dra-dra-driver"}
    d = r.one("kubernetes:apps/v1:Deployment", "gpu-dra-workloads-shared")
    (job,) = [x.name for x in r.by_type("kubernetes:batch/v1:Job") if "gpu-dra-g6" in _deps(r, x)]
    assert _deps(r, d) == {"gpu-dra-workloads-ns", "gpu-dra-gpu-operator", "gpu-dra-g6", "gpu-dra-dra-driver",
                           claim.name, job}
    assert d.inputs["spec"]["template"]["spec"]["resourceClaims"] == [{"name": "slice",
                                                                       "resourceClaimName": "shared-slice"}]


@pytest.mark.slow
def test_the_dra_driver_waits_for_the_system_nodes_and_the_gpu_operator(dra_after_plugin):
    """The driver's controller runs on the system nodes, and its kubelet plugin starts only where the GPU
    Operator's MIG manager has applied the layout (`nvidia.com/mig.config.state=success`, docs/dra.md): created
    before the operator it would wait on nodes nothing labels yet, and a destroy would take the operator (and
    the layouts) first from under a running driver."""
    r = dra_after_plugin
    driver = next(x for x in r.registrations
                  if x.type == "kubernetes:helm.sh/v3:Release" and x.inputs.get("name") == "dra-driver-nvidia-gpu")
    deps = _deps(r, driver)
    assert "gpu-dra-gpu-operator" in deps
    assert any(r.get(u).type == "eks:index:ManagedNodeGroup" and r.get(u).name.endswith("-system")
               for u in driver.dependencies), deps
