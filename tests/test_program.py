"""The whole program under the mock engine, as a preview and as an update: the resource set, the key
inputs (AMI type, labels, taints, scaling, Helm values, workload resources) and the edges that order
create and destroy."""
from __future__ import annotations

import pytest
import yaml

from conftest import closure, edges, run

MODES = ["preview", "up"]


def _names(regs):
    return sorted(r.name for r in regs)


def _ancestors(run_, urn: str) -> set[str]:
    """Every URN `urn` waits for: dependencies, provider and parent, transitively."""
    return closure(edges(run_.registrations), urn)


@pytest.mark.parametrize("mode", MODES)
def test_runs_clean(dev_runs, mode):
    assert dev_runs[mode].error is None


@pytest.mark.parametrize("mode", MODES)
def test_resource_set(dev_runs, mode):
    r = dev_runs[mode]
    count = lambda t: len(r.by_type(t))  # noqa: E731
    assert count("aws:ec2/vpc:Vpc") == 1
    assert count("aws:ec2/subnet:Subnet") == 6  # 3 AZs x (private, public)
    assert count("aws:ec2/natGateway:NatGateway") == 1
    assert count("eks:index:Cluster") == 1
    assert _names(r.by_type("eks:index:ManagedNodeGroup")) == ["gpu-dev-p4d-balanced", "gpu-dev-system"]
    assert count("pulumi:providers:kubernetes") == 1
    assert [x.inputs["chart"] for x in r.by_type("kubernetes:helm.sh/v3:Release")
            if x.inputs["chart"] == "gpu-operator"] == ["gpu-operator"]
    assert _names(r.by_type("kubernetes:apps/v1:Deployment")) == [
        "gpu-dev-workloads-guide-1g", "gpu-dev-workloads-slice-1g", "gpu-dev-workloads-slice-2g",
        "gpu-dev-workloads-slice-3g"]
    assert count("kubernetes:batch/v1:Job") == 1


@pytest.mark.parametrize("mode", MODES)
def test_every_resource_belongs_to_a_component_of_ours(dev_runs, mode):
    r = dev_runs[mode]
    ours = {x.urn for x in r.registrations if x.type.startswith("gpu-slicing:")}
    for x in r.registrations:
        if x.type.startswith("gpu-slicing:"):
            assert x.parent.endswith("pulumi:pulumi:Stack::gpu-slicing-dev"), x.name
        else:
            top = x
            while top.parent and top.parent not in ours:
                top = r.get(top.parent)
            assert top.parent in ours, f"{x.type} {x.name} is not under a gpu-slicing component"


@pytest.mark.parametrize("mode", MODES)
def test_gpu_node_group_inputs(dev_runs, mode):
    ng = dev_runs[mode].one("eks:index:ManagedNodeGroup", "gpu-dev-p4d-balanced").inputs
    assert ng["amiType"] == "AL2023_x86_64_NVIDIA"  # gpu=True alone would not pick it (docs/facts.md §6)
    assert ng["instanceTypes"] == ["p4d.24xlarge"]
    assert ng["scalingConfig"] == {"minSize": 1, "desiredSize": 1, "maxSize": 3}
    assert ng["labels"]["nvidia.com/mig.config"] == "all-balanced"  # survives node replacement (docs/facts.md §1.8)
    assert ng["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
    assert ng["capacityType"] == "ON_DEMAND"
    assert "remoteAccess" not in ng


def test_gpu_nodes_go_in_private_subnets(dev_runs):
    r = dev_runs["up"]
    private = {s.inputs["cidrBlock"]: s for s in r.by_type("aws:ec2/subnet:Subnet") if "private" in s.name}
    ng = r.one("eks:index:ManagedNodeGroup", "gpu-dev-p4d-balanced")
    assert len(ng.inputs["subnetIds"]) == 3
    assert all(sid.startswith("subnet-") for sid in ng.inputs["subnetIds"])
    assert {d for d in ng.dependencies if "Subnet" in d} == {s.urn for s in private.values()}
    assert all(s.inputs["tags"]["karpenter.sh/discovery"] == "gpu-dev" for s in private.values())


@pytest.mark.parametrize("mode", MODES)
def test_launch_templates_require_imdsv2_and_encrypt_the_root_volume(dev_runs, mode):
    lts = dev_runs[mode].by_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert len(lts) == 2
    for lt in lts:
        assert lt.inputs["metadataOptions"]["httpTokens"] == "required"
        assert lt.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 1
        ebs = lt.inputs["blockDeviceMappings"][0]["ebs"]
        assert ebs["encrypted"] == "true" and ebs["volumeType"] == "gp3"
    gpu_lt = next(lt for lt in lts if "p4d" in lt.name)
    assert gpu_lt.inputs["blockDeviceMappings"][0]["ebs"]["volumeSize"] == 200


@pytest.mark.parametrize("mode", MODES)
def test_cluster_inputs(dev_runs, mode):
    c = dev_runs[mode].one("eks:index:Cluster").inputs
    assert c["name"] == "gpu-dev" and c["version"] == "1.35"
    assert c["authenticationMode"] == "API"
    assert c["skipDefaultNodeGroup"] is True
    assert c["publicAccessCidrs"] == ["0.0.0.0/0"]  # reachable from a laptop and hosted CI (docs/facts.md §10)
    assert set(c["enabledClusterLogTypes"]) == {"api", "audit", "authenticator", "controllerManager", "scheduler"}
    assert c["nodeAssociatePublicIpAddress"] is False
    if mode == "up":
        assert c["encryptionConfigKeyArn"].startswith("arn:aws:kms:")


@pytest.mark.parametrize("mode", MODES)
def test_gpu_operator_values_fix_the_guides_mistakes(dev_runs, mode):
    rel = next(x for x in dev_runs[mode].by_type("kubernetes:helm.sh/v3:Release") if x.inputs["chart"] == "gpu-operator")
    assert rel.inputs["version"] == "v26.7.0"
    assert rel.inputs["repositoryOpts"]["repo"] == "https://helm.ngc.nvidia.com/nvidia"
    assert rel.inputs["namespace"] == "gpu-operator"
    v = rel.inputs["values"]
    assert v["driver"] == {"enabled": False} and v["toolkit"] == {"enabled": False}  # docs/facts.md §1.5
    assert v["mig"] == {"strategy": "mixed"}
    assert v["migManager"]["env"] == [{"name": "WITH_REBOOT", "value": "true"}]  # a string (docs/facts.md §1.1)
    assert "WITH_REBOOT" not in v["migManager"] and "default" not in v["migManager"]  # docs/facts.md §1.1, 1.2
    assert "operator" not in v  # defaultRuntime was removed (docs/facts.md §1.3)
    for component in ("toolkit", "gfd", "devicePlugin", "migManager"):
        assert "version" not in v.get(component, {})  # chart defaults, no 2023 images (docs/facts.md §1.4)


@pytest.mark.parametrize("mode", MODES)
def test_workloads_request_slices_exactly_and_safely(dev_runs, mode):
    r = dev_runs[mode]
    want = {"slice-1g": ("nvidia.com/mig-1g.5gb", 16), "slice-2g": ("nvidia.com/mig-2g.10gb", 8),
            "slice-3g": ("nvidia.com/mig-3g.20gb", 8)}
    for name, (resource, replicas) in want.items():
        d = r.one("kubernetes:apps/v1:Deployment", f"gpu-dev-workloads-{name}").inputs
        assert d["spec"]["replicas"] == replicas
        pod = d["spec"]["template"]["spec"]
        c = pod["containers"][0]
        assert c["resources"]["limits"][resource] == "1"
        assert c["resources"]["requests"] == c["resources"]["limits"]
        assert "nvidia.com/gpu" not in c["resources"]["limits"]  # 0 allocatable under mixed (docs/facts.md §1.9)
        assert c["image"] == "nvidia/cuda:12.4.1-base-ubuntu22.04"
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in pod["tolerations"]
        assert pod["nodeSelector"]["nvidia.com/mig.config"] == "all-balanced"
    job = r.one("kubernetes:batch/v1:Job").inputs["spec"]["template"]["spec"]
    assert job["containers"][0]["command"] == ["nvidia-smi", "-L"]
    assert job["containers"][0]["resources"]["limits"]["nvidia.com/mig-1g.5gb"] == "1"


@pytest.mark.parametrize("mode", MODES)
def test_create_order_edges(dev_runs, mode):
    """Each of these must exist before the next: what `pulumi up` waits for (and `destroy` reverses)."""
    r = dev_runs[mode]
    urn = {x.name: x.urn for x in r.registrations if x.custom or x.remote}
    release = urn["gpu-dev-gpu-operator"]
    order = [
        ("gpu-dev-private-0", "gpu-dev-eks"),
        ("gpu-dev-secrets", "gpu-dev-eks"),
        ("gpu-dev-eks", "gpu-dev-system"),
        ("gpu-dev-eks", "gpu-dev-p4d-balanced"),
        ("gpu-dev-system", "gpu-dev-k8s"),
        ("gpu-dev-system", "gpu-dev-gpu-operator"),
        ("gpu-dev-gpu-operator-ns", "gpu-dev-gpu-operator"),
        ("gpu-dev-gpu-operator", "gpu-dev-workloads-slice-1g"),
        ("gpu-dev-p4d-balanced", "gpu-dev-workloads-verify-mig-slice-a1b7f28"),
        # the Job runs to completion before the Deployment that wants the same slice exists (docs/facts.md §10)
        ("gpu-dev-workloads-verify-mig-slice-a1b7f28", "gpu-dev-workloads-slice-1g"),
        ("gpu-dev-workloads-ns", "gpu-dev-workloads-slice-1g"),
    ]
    for before, after in order:
        assert urn[before] in _ancestors(r, urn[after]), f"{after} does not wait for {before}"
    assert urn["gpu-dev-workloads-slice-1g"] not in _ancestors(r, release)
    # the operator needs no GPU node (its DaemonSets follow them), so a GPU pool never blocks it
    assert urn["gpu-dev-p4d-balanced"] not in _ancestors(r, release)
    # a Deployment that wants another slice does not wait for the Job
    assert urn["gpu-dev-workloads-verify-mig-slice-a1b7f28"] not in _ancestors(r, urn["gpu-dev-workloads-slice-2g"])


@pytest.mark.parametrize("mode", MODES)
def test_every_kubernetes_object_uses_the_one_explicit_provider(dev_runs, mode):
    r = dev_runs[mode]
    provider = r.one("pulumi:providers:kubernetes").urn
    k8s = [x for x in r.registrations if x.type.startswith("kubernetes:")]
    assert k8s and all(x.provider.rsplit("::", 1)[0] == provider for x in k8s)


def test_outputs_are_plausible_after_update(dev_runs):
    out = dev_runs["up"].outputs
    assert out["clusterName"] == "gpu-dev"
    assert out["vpcId"].startswith("vpc-")
    assert "gpu-dev" in out["kubeconfig"] and "get-token" in out["kubeconfig"]
    pools = {p["name"]: p for p in out["capacity"]["pools"]}
    assert pools["p4d-balanced"]["perNode"]["nvidia.com/mig-1g.5gb"] == 16


@pytest.mark.slow
def test_existing_vpc_is_tagged_not_created(dev):
    dev["gpu-slicing:network"] = {"vpcId": "vpc-0123", "privateSubnetIds": ["subnet-a", "subnet-b"],
                                  "publicSubnetIds": ["subnet-c"]}
    r = run(dev, preview=False)
    assert r.error is None
    assert r.by_type("aws:ec2/vpc:Vpc") == [] and r.by_type("aws:ec2/subnet:Subnet") == []
    tags = r.by_type("aws:ec2/tag:Tag")
    assert {(t.inputs["resourceId"], t.inputs["key"]) for t in tags} >= {
        ("subnet-a", "karpenter.sh/discovery"), ("subnet-b", "karpenter.sh/discovery")}
    assert r.one("eks:index:Cluster").inputs["vpcId"] == "vpc-0123"


@pytest.mark.slow
def test_time_slicing_pool_renders_device_plugin_config_and_label(dev):
    dev["gpu-slicing:nodeGroups"][0]["sharing"] = {"timeSlicing": {"replicas": 4,
                                                                   "resources": ["nvidia.com/mig-1g.5gb"]}}
    dev["gpu-slicing:workloads"][0]["replicas"] = 64  # 16 slices x 4 replicas each fill one node
    r = run(dev)
    assert r.error is None, r.error
    ng = r.one("eks:index:ManagedNodeGroup", "gpu-dev-p4d-balanced").inputs
    key = ng["labels"]["nvidia.com/device-plugin.config"]
    cm = r.one("kubernetes:core/v1:ConfigMap", "gpu-dev-gpu-operator-device-plugin").inputs
    # the device plugin's time-slicing config (docs/facts.md §3): 4 pods per 1g.5gb slice, names unchanged
    assert yaml.safe_load(cm["data"][key]) == {"version": "v1", "sharing": {"timeSlicing": {
        "renameByDefault": False, "failRequestsGreaterThanOne": False,
        "resources": [{"name": "nvidia.com/mig-1g.5gb", "replicas": 4}]}}}
    assert set(cm["data"]) == {"default", key}
    rel = next(x for x in r.by_type("kubernetes:helm.sh/v3:Release") if x.inputs["chart"] == "gpu-operator")
    assert rel.inputs["values"]["devicePlugin"]["config"]["name"] == cm["metadata"]["name"]


@pytest.mark.slow
def test_custom_layout_renders_a_mig_parted_configmap_the_operator_points_at(dev):
    dev["gpu-slicing:migLayouts"] = {"p4d-half-small": [
        {"devices": [0, 1, 2, 3], "profiles": {"1g.5gb": 7}},
        {"devices": [4, 5, 6, 7], "profiles": {"4g.20gb": 1, "3g.20gb": 1}}]}
    dev["gpu-slicing:nodeGroups"][0]["migLayout"] = "p4d-half-small"
    dev["gpu-slicing:workloads"] = [{"name": "small", "profile": "1g.5gb", "replicas": 28, "pool": "p4d-balanced"},
                                    {"name": "big", "profile": "4g.20gb", "replicas": 4, "pool": "p4d-balanced"}]
    r = run(dev)
    assert r.error is None, r.error
    cm = r.one("kubernetes:core/v1:ConfigMap", "gpu-dev-gpu-operator-mig-parted").inputs
    configs = yaml.safe_load(cm["data"]["config.yaml"])["mig-configs"]
    # every layout a pool of the stack uses (the Karpenter pool's all-1g.5gb too), and all-disabled
    label = r.one("eks:index:ManagedNodeGroup", "gpu-dev-p4d-balanced").inputs["labels"]["nvidia.com/mig.config"]
    assert label.startswith("p4d-half-small-")  # name + content hash (docs/facts.md §8)
    assert set(configs) == {label, "all-1g.5gb", "all-disabled"}
    assert configs[label][1]["mig-devices"] == {"4g.20gb": 1, "3g.20gb": 1}
    rel = next(x for x in r.by_type("kubernetes:helm.sh/v3:Release") if x.inputs["chart"] == "gpu-operator")
    assert rel.inputs["values"]["migManager"]["config"] == {"name": cm["metadata"]["name"], "create": False}

@pytest.mark.slow
def test_two_gpu_models_sharing_a_layout_name_each_get_their_entry(dev):
    """all-balanced on a p4d pool (A100-40GB) and a p5 pool (H100) under one custom ConfigMap: each model's
    entry is written, keyed by device-filter (docs/facts.md §2, 7: A100-40GB 0x20B0, H100 0x2330)."""
    dev["gpu-slicing:migLayouts"] = {"p4d-half": [{"devices": [0, 1, 2, 3], "profiles": {"1g.5gb": 7}},
                                                  {"devices": [4, 5, 6, 7], "profiles": {"3g.20gb": 2}}]}
    dev["gpu-slicing:nodeGroups"].append({"name": "p5-balanced", "instanceType": "p5.48xlarge", "minSize": 0,
                                          "desiredSize": 0, "maxSize": 1, "migLayout": "all-balanced"})
    dev["gpu-slicing:karpenter"]["nodePools"][0]["migLayout"] = "p4d-half"
    dev["gpu-slicing:workloads"][3]["replicas"] = 28
    dev["gpu-slicing:maxGpuNodes"] = 8
    r = run(dev)
    assert r.error is None, r.error
    cm = r.one("kubernetes:core/v1:ConfigMap", "gpu-dev-gpu-operator-mig-parted").inputs
    balanced = yaml.safe_load(cm["data"]["config.yaml"])["mig-configs"]["all-balanced"]
    def entry(pci: str) -> dict:
        (found,) = [e["mig-devices"] for e in balanced if pci in e["device-filter"]]
        return found

    assert entry("0x20B010DE") == {"1g.5gb": 2, "2g.10gb": 1, "3g.20gb": 1}
    assert entry("0x233010DE") == {"1g.10gb": 2, "2g.20gb": 1, "3g.40gb": 1}


def test_a_run_drops_the_sdks_debug_lines_and_leaves_the_sdk_as_it_found_it(caplog):
    """The harness's shortcuts (tools.harness._fast_sdk) hold for one run only: the debug lines the SDK
    writes per registration are not built during it, and afterwards the SDK's own functions are back."""
    import logging

    import pulumi
    from pulumi.runtime import mocks as pmocks
    from pulumi.runtime import resource as presource

    from tools.harness import run_program

    with caplog.at_level(logging.DEBUG):
        result = run_program({}, program=lambda: pulumi.ComponentResource("test:index:Thing", "thing"))
    assert result.error is None and [r.name for r in result.registrations] == ["thing"]
    assert not [r for r in caplog.records if "registration" in r.getMessage()]
    now = (pulumi.log.debug, presource._get_stack_trace, pmocks._sync_await)
    restored = {f"{f.__module__}.{f.__name__}" for f in now}
    assert restored == {"pulumi.log.debug", "pulumi.runtime.resource._get_stack_trace",
                        "pulumi.runtime.sync_await._sync_await"}


def test_a_slice_pod_meets_the_restricted_pod_security_standard_with_guaranteed_qos(dev_runs):
    """Kubernetes' restricted Pod Security Standard (non-root, RuntimeDefault seccomp, no privilege escalation,
    every capability dropped), no API token in a pod that needs none, a read-only root filesystem, requests equal
    to limits (Guaranteed QoS) with one slice, the GPU taint tolerated and the pool and layout selected."""
    import re

    d = dev_runs["preview"].one("kubernetes:apps/v1:Deployment", "gpu-dev-workloads-slice-3g").inputs
    labels = {"app.kubernetes.io/name": "slice-3g", "app.kubernetes.io/part-of": "gpu-slicing"}
    assert (d["metadata"]["labels"], d["spec"]["selector"], d["spec"]["template"]["metadata"]) == (
        labels, {"matchLabels": {"app.kubernetes.io/name": "slice-3g"}}, {"labels": labels})
    assert d["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "25%"}}
    pod = dict(d["spec"]["template"]["spec"])  # a copy: the dev run is shared with every test
    (c,) = pod.pop("containers")
    assert pod == {"restartPolicy": "Always", "terminationGracePeriodSeconds": 15,
                   "nodeSelector": {"gpu-slicing/pool": "p4d-balanced", "nvidia.com/mig.config": "all-balanced"},
                   "tolerations": [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "true",
                                    "effect": "NoSchedule"}],
                   "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000,
                                       "seccompProfile": {"type": "RuntimeDefault"}},
                   "automountServiceAccountToken": False}
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}}
    assert c["name"] == "cuda" and c["command"][:2] == ["bash", "-c"]
    assert c["resources"]["requests"] == c["resources"]["limits"] and c["resources"]["limits"]["nvidia.com/mig-3g.20gb"] == "1"
    assert set(c["resources"]["limits"]) == {"cpu", "memory", "nvidia.com/mig-3g.20gb"}
    assert re.fullmatch(r"[0-9]+m", c["resources"]["limits"]["cpu"]) and re.fullmatch(r"[0-9]+Mi", c["resources"]["limits"]["memory"])


def test_the_verification_job_retries_on_failure_and_holds_one_slice(dev_runs):
    """The Job lists its pod's GPUs (`nvidia-smi -L`) under Kubernetes' default backoff of 6 retries, restarting
    the container on failure; it asks for one slice of the first workload's profile and nothing else of the GPU."""
    (job,) = dev_runs["preview"].by_type("kubernetes:batch/v1:Job")
    spec = job.inputs["spec"]
    labels = {"app.kubernetes.io/name": "verify-mig-slice", "app.kubernetes.io/part-of": "gpu-slicing"}
    assert job.inputs["metadata"]["labels"] == labels and spec["template"]["metadata"] == {"labels": labels}
    assert job.inputs["metadata"]["name"].startswith("verify-mig-slice-")
    assert spec["backoffLimit"] == 6 and spec["template"]["spec"]["restartPolicy"] == "OnFailure"
    (c,) = spec["template"]["spec"]["containers"]
    assert c["command"] == ["nvidia-smi", "-L"]
    assert {k: v for k, v in c["resources"]["limits"].items() if k.startswith("nvidia.com/")} == {
        "nvidia.com/mig-1g.5gb": "1"}
