"""What each component registers as its outputs (kept in the stack's state under the component, shown by
`pulumi stack --show-urns` and the console): the dev stack run as an update, with the mock monitor's
RegisterResourceOutputs recorded. Expected names come from the stack config and upstream's naming (Karpenter's
getting-started: KarpenterNodeRole-<cluster>, KarpenterControllerRole-<cluster>, a queue named for the cluster;
the charts' release names)."""
from __future__ import annotations

import json

import pytest
from pulumi.runtime import rpc

from tools import harness


def _outputs(config: dict) -> dict:
    """Component type and name -> the outputs it registered, for a run of `config` as an update."""
    from conftest import run_patched

    by_urn: dict[str, dict] = {}

    def recording(original):
        def register(self, request):
            by_urn[request.urn] = harness._plain(rpc.deserialize_properties(request.outputs))
            return original(self, request)
        return register

    r = run_patched(harness.RecordingMonitor, "RegisterResourceOutputs", recording, config)
    return {(x.type, x.name): by_urn.get(x.urn) for x in r.registrations if x.type.startswith("gpu-slicing:")}


@pytest.fixture(scope="module")
def outputs():
    from conftest import dev_config

    return _outputs(dev_config())


def _ids(kind: str) -> list[str]:
    return [f"subnet-{harness._hex(f'gpu-dev-{kind}-{i}')}" for i in range(3)]  # the mock's subnet IDs


@pytest.mark.slow
def test_the_network_and_the_cluster_register_what_the_rest_of_the_stack_reads(outputs):
    net = outputs[("gpu-slicing:network:Network", "gpu-dev")]
    assert net == {"vpcId": f"vpc-{harness._hex('gpu-dev-vpc')}", "privateSubnetIds": _ids("private"),
                   "publicSubnetIds": _ids("public"), "zones": ["us-east-1a", "us-east-1c", "us-east-1d"]}
    cluster = outputs[("gpu-slicing:cluster:Cluster", "gpu-dev")]
    assert set(cluster) == {"kubeconfig", "clusterName", "nodeSecurityGroupId"}
    assert cluster["clusterName"] == "gpu-dev"
    assert cluster["nodeSecurityGroupId"].startswith("sg-")
    assert json.loads(cluster["kubeconfig"])["users"][0]["user"]["exec"]["args"][:2] == ["eks", "get-token"]


@pytest.mark.slow
def test_each_gpu_and_workload_component_registers_its_outputs(outputs):
    assert outputs[("gpu-slicing:gpu:GpuNodeGroup", "gpu-dev-p4d-balanced")] == {"nodeGroup": "p4d-balanced"}
    assert outputs[("gpu-slicing:karpenter:Karpenter", "gpu-dev-karpenter")] == {
        "release": "karpenter", "nodeRoleName": "KarpenterNodeRole-gpu-dev",
        "controllerRoleArn": f"arn:aws:iam::{harness.ACCOUNT}:role/KarpenterControllerRole-gpu-dev",
        "interruptionQueue": "Karpenter-gpu-dev"}
    pool = outputs[("gpu-slicing:karpenter:GpuNodePool", "gpu-dev-p4d-small")]
    assert pool["nodePool"] == pool["nodeClass"] == "p4d-small"
    assert len(pool["overlays"]) == 1 and pool["overlays"][0].startswith("p4d-small")
    assert outputs[("gpu-slicing:gpu:GpuOperator", "gpu-dev-gpu-operator")] == {"release": "gpu-operator",
                                                                               "namespace": "gpu-operator"}
    assert outputs[("gpu-slicing:workloads:SampleWorkloads", "gpu-dev-workloads")] == {
        "deployments": ["slice-1g", "slice-2g", "slice-3g", "guide-1g"]}
    assert outputs[("gpu-slicing:observability:Observability", "gpu-dev-observability")] == {
        "namespace": "monitoring", "release": "kube-prometheus-stack"}


@pytest.mark.slow
def test_monitoring_an_existing_prometheus_names_its_namespace_and_no_release():
    from conftest import dev_config

    dev = dev_config()
    dev["gpu-slicing:observability"] = {"enabled": True, "prometheusOperator": "existing", "namespace": "prom",
                                        "selectorLabels": {"release": "prom"}}
    got = _outputs(dev)[("gpu-slicing:observability:Observability", "gpu-dev-observability")]
    assert got == {"namespace": "prom"}  # no release: its output is None, which is not recorded
