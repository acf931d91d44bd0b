"""Each component on its own under the mock engine: what it registers, parented to itself."""
from __future__ import annotations

import pytest

from gpu_slicing.config import NetworkConfig
from gpu_slicing.stack import parse_config
from gpu_slicing.pools import resolve_pools
from tools.harness import run_program


def _alone(build, preview=True):
    r = run_program({}, program=build, preview=preview)
    assert r.error is None, r.error
    return r


@pytest.mark.parametrize("preview", [True, False], ids=["preview", "up"])
def test_network_alone_spreads_subnets_over_azs(preview):
    from components.network import Network, NetworkArgs

    r = _alone(lambda: Network("n", NetworkArgs(NetworkConfig(vpc_cidr="10.20.0.0/16", availability_zones=2), "c")),
               preview)
    comp = r.one("gpu-slicing:network:Network")
    subnets = r.by_type("aws:ec2/subnet:Subnet")
    assert sorted(s.inputs["cidrBlock"] for s in subnets) == [
        "10.20.0.0/18", "10.20.128.0/18", "10.20.192.0/18", "10.20.64.0/18"]
    assert all(s.parent == comp.urn for s in subnets)
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in subnets)
    if not preview:
        assert sorted(s.inputs["availabilityZone"] for s in subnets) == [
            "us-east-1a", "us-east-1a", "us-east-1b", "us-east-1b"]


def test_gpu_operator_alone_depends_on_what_it_is_given(dev):
    import pulumi
    import pulumi_kubernetes as k8s

    from components.gpu_operator import GpuOperator, GpuOperatorArgs

    cfg = parse_config(dev)
    pools = resolve_pools(cfg)

    def build():
        provider = k8s.Provider("k", kubeconfig="{}")
        marker = pulumi.CustomResource("test:index:Marker", "system-nodes", {})
        GpuOperator("op", GpuOperatorArgs(cfg, pools, provider, marker))

    r = _alone(build)
    rel = r.one("kubernetes:helm.sh/v3:Release")
    assert r.one("test:index:Marker").urn in rel.dependencies
    assert rel.options["customTimeouts"]["delete"] == "20m"
    assert rel.parent == r.one("gpu-slicing:gpu:GpuOperator").urn
    ns = r.one("kubernetes:core/v1:Namespace").inputs["metadata"]
    assert ns["name"] == "gpu-operator" and ns["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
