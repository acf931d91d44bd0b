"""Each component on its own under the mock engine: what it registers, parented to itself."""
from __future__ import annotations

import pytest

from gpu_slicing.config import NetworkConfig
from gpu_slicing.stack import load_stack, parse_config
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

    operator = load_stack(dev).gpu_operator

    def build():
        provider = k8s.Provider("k", kubeconfig="{}")
        marker = pulumi.CustomResource("test:index:Marker", "system-nodes", {})
        GpuOperator("op", GpuOperatorArgs(operator=operator, provider=provider, runs_on=marker))

    r = _alone(build)
    rel = r.one("kubernetes:helm.sh/v3:Release")
    assert r.one("test:index:Marker").urn in rel.dependencies
    assert rel.options["customTimeouts"]["delete"] == "20m"
    assert rel.parent == r.one("gpu-slicing:gpu:GpuOperator").urn
    ns = r.one("kubernetes:core/v1:Namespace").inputs["metadata"]
    assert ns["name"] == "gpu-operator" and ns["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_the_dra_driver_alone_installs_the_pinned_chart_after_what_it_is_given(monkeypatch):
    """The DRA driver as its install guide installs it (docs/install.md of the 0.5.0 chart: release and
    namespace `dra-driver-nvidia-gpu`, the OCI chart, `--version` without a `v`, docs/facts.md §12), in a
    namespace whose pods may run privileged (the kubelet plugin's containers are privileged in the chart's
    values.yaml), after what it is given (the operator whose MIG manager applies the layouts), with the
    timeouts a slow kubelet-plugin rollout needs; and the dcgm-exporter's read of ResourceSlices, bound
    only once the role exists. A wrong name or namespace would install a second driver beside the first."""
    import pulumi
    import pulumi_kubernetes as k8s
    from pulumi.runtime import rpc

    from components.dra_driver import DraDriver, DraDriverArgs
    from gpu_slicing.stack_file import load_stack_file
    from tools import harness

    st = load_stack(load_stack_file("examples/Pulumi.dra.yaml"))
    registered: dict[str, dict] = {}
    original = harness.RecordingMonitor.RegisterResourceOutputs

    def outputs(self, request):
        registered[request.urn] = harness._plain(rpc.deserialize_properties(request.outputs))
        return original(self, request)

    monkeypatch.setattr(harness.RecordingMonitor, "RegisterResourceOutputs", outputs)

    def build():
        provider = k8s.Provider("k", kubeconfig="{}")
        operator = pulumi.CustomResource("test:index:Marker", "operator", {})
        DraDriver("dra", DraDriverArgs(pools=st.pools, workloads=st.workloads, provider=provider, after=[operator]))

    r = _alone(build, preview=False)
    comp = r.one("gpu-slicing:dra:DraDriver")
    provider = r.one("pulumi:providers:kubernetes")
    rel = r.one("kubernetes:helm.sh/v3:Release")
    assert {k: rel.inputs[k] for k in ("name", "chart", "version", "namespace", "timeout", "cleanupOnFail")} == {
        "name": "dra-driver-nvidia-gpu", "chart": "oci://registry.k8s.io/dra-driver-nvidia/charts/dra-driver-nvidia-gpu",
        "version": "0.5.0", "namespace": "dra-driver-nvidia-gpu", "timeout": 600, "cleanupOnFail": True}
    # the values a DRA pool on EKS needs (docs/facts.md §12): the override, the AMI's driver at /, the v1 API
    values = rel.inputs["values"]
    assert (values["gpuResourcesEnabledOverride"], values["nvidiaDriverRoot"], values["resourceApiVersion"]) == (
        True, "/", "resource.k8s.io/v1")
    assert values["kubeletPlugin"]["nodeSelector"] == {"gpu-slicing/allocation": "dra"}
    assert rel.options["customTimeouts"] == {"create": "15m", "update": "15m", "delete": "15m"}
    ns = r.one("kubernetes:core/v1:Namespace")
    assert ns.inputs["metadata"] == {"name": "dra-driver-nvidia-gpu",
                                     "labels": {"pod-security.kubernetes.io/enforce": "privileged"}}
    assert set(rel.dependencies) == {ns.urn, r.one("test:index:Marker").urn}
    role = r.one("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "dra-exporter-reads-slices")
    binding = r.one("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", "dra-exporter-reads-slices")
    assert role.inputs["rules"] == [{"apiGroups": ["resource.k8s.io"], "resources": ["resourceslices"],
                                     "verbs": ["get", "list", "watch"]}]
    assert binding.inputs["roleRef"]["name"] == role.inputs["metadata"]["name"]
    assert binding.inputs["metadata"] == role.inputs["metadata"]  # named and labelled as the project's, not auto-named
    assert binding.inputs["subjects"] == [{"kind": "ServiceAccount", "name": "nvidia-dcgm-exporter",
                                           "namespace": "gpu-operator"}]
    assert binding.dependencies == [role.urn]
    assert all(x.parent == comp.urn and x.provider.startswith(provider.urn) for x in (ns, rel, role, binding))
    assert registered[comp.urn] == {"release": "dra-driver-nvidia-gpu"}


NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"  # what pulumi-eks's ManagedNodeGroup creates inside itself
# EKS CreateNodegroup members that no Update* request takes (botocore's eks model): a change is a new node group.
CREATE_ONLY = ("nodeGroupName", "instanceTypes", "amiType", "capacityType", "subnetIds", "nodeRole", "diskSize",
               "remoteAccess")


def _what_pulumi_compares(ng):
    """The node group's create-only inputs as Pulumi's engine compares them: an input its ignoreChanges names
    takes the value of the state (here: left out, as it cannot differ)."""
    ignored = set(ng.options["children"][NODE_GROUP]["ignoreChanges"])
    return {k: ng.inputs.get(k) for k in CREATE_ONLY if k not in ignored}


@pytest.mark.slow
def test_a_changed_zone_lookup_replaces_no_running_gpu_node_group(dev, monkeypatch):
    """AWS withdraws p4d.24xlarge from one zone: the live DescribeInstanceTypeOfferings answer changes, and so do
    the subnets the program picks for the p4d node group. Subnets are create-only on an EKS node group and its
    name does not change (nobody asked for anything), so without the fix Pulumi would replace it under its own
    name and collide with the running group. The node group itself (inside pulumi-eks's component, reached by a
    transform) keeps the subnets it was created with; everything else EKS only takes at creation is unchanged."""
    from tools import harness

    before = run_program(dev, preview=False)
    monkeypatch.setitem(harness.OFFERINGS["us-east-1"], "p4d.24xlarge", "ac")  # was a, c, d
    after = run_program(dev, preview=False)
    assert before.error is None and after.error is None, (before.error, after.error)
    ng = [r.one("eks:index:ManagedNodeGroup", "gpu-dev-p4d-balanced") for r in (before, after)]
    assert len(ng[0].inputs["subnetIds"]) == 3 and len(ng[1].inputs["subnetIds"]) == 2  # the lookup did change
    assert "subnetIds" in ng[0].options["children"][NODE_GROUP]["ignoreChanges"]
    assert _what_pulumi_compares(ng[0]) == _what_pulumi_compares(ng[1])
    assert ng[0].inputs["nodeGroupName"] == ng[1].inputs["nodeGroupName"]
    # Set on the component it would do nothing (Pulumi ignores ignoreChanges on component resources).
    assert ng[0].options["ignoreChanges"] == []


def _system_node_group(dev, **changes):
    from components.cluster import Cluster, ClusterArgs

    cfg = parse_config(dev)
    sng = cfg.system_node_group.model_copy(update=changes.pop("system", {}))
    network = cfg.network.model_copy(update=changes.pop("network", {}))
    r = _alone(lambda: Cluster("c", ClusterArgs(cfg.cluster, sng, "vpc-1", ["subnet-1", "subnet-2"],
                                                ["subnet-3", "subnet-4"], network)))
    return r.one("eks:index:ManagedNodeGroup")


@pytest.mark.slow
def test_a_system_node_group_change_only_creation_takes_is_a_new_name(dev):
    """m7i.large -> m7i.xlarge is a new node group (instance types are create-only): under the old fixed name
    `<cluster>-system` the create collided with the running group. Now the name changes with it, so the
    replacement is created beside the old group; a resize (updated in place) keeps the name."""
    base = _system_node_group(dev)
    bigger = _system_node_group(dev, system={"instance_type": "m7i.xlarge"})
    resized = _system_node_group(dev, system={"size": 3})
    fewer_zones = _system_node_group(dev, network={"availability_zones": 2})
    assert base.inputs["nodeGroupName"].startswith("gpu-dev-system-")
    assert bigger.inputs["instanceTypes"] == ["m7i.xlarge"]
    assert bigger.inputs["nodeGroupName"] != base.inputs["nodeGroupName"]
    assert fewer_zones.inputs["nodeGroupName"] != base.inputs["nodeGroupName"]  # its subnets change
    assert resized.inputs["scalingConfig"]["desiredSize"] == 3
    assert resized.inputs["nodeGroupName"] == base.inputs["nodeGroupName"]
    assert len(base.inputs["nodeGroupName"]) <= 63  # EKS CreateNodegroup's limit


def test_node_groups_roll_one_node_at_a_time_gpu_groups_terminating_first(dev_runs):
    """EKS NodegroupUpdateConfig (botocore's eks model: maxUnavailable, updateStrategy DEFAULT | MINIMAL): GPU
    groups MINIMAL (terminate before launch: no surge of P instances, which EKS otherwise sizes up to twice the
    zones), the system group DEFAULT (controllers keep running); one node at a time. Set on the EKS node group
    inside pulumi-eks's component: its ManagedNodeGroup takes no updateConfig."""
    import botocore.loaders

    shapes = botocore.loaders.Loader().load_service_model("eks", "service-2")["shapes"]
    members = set(shapes["NodegroupUpdateConfig"]["members"])
    strategies = set(shapes["NodegroupUpdateStrategies"]["enum"])
    r = dev_runs["up"]
    got = {ng.name: ng.options["children"][NODE_GROUP]["inputs"]["updateConfig"]
           for ng in r.by_type("eks:index:ManagedNodeGroup")}
    assert got == {"gpu-dev-p4d-balanced": {"maxUnavailable": 1, "updateStrategy": "MINIMAL"},
                   "gpu-dev-system": {"maxUnavailable": 1, "updateStrategy": "DEFAULT"}}
    assert all(set(c) <= members and c["updateStrategy"] in strategies for c in got.values())
    assert all("updateConfig" not in ng.inputs for ng in r.by_type("eks:index:ManagedNodeGroup"))


def test_an_unknown_update_strategy_is_refused_naming_the_key(dev):
    from gpu_slicing.errors import ConfigError

    dev["gpu-slicing:nodeGroups"][0]["updateStrategy"] = "SURGE"
    with pytest.raises(ConfigError) as e:
        parse_config(dev)
    assert "gpu-slicing:nodeGroups[0].updateStrategy" in str(e.value) and "one of MINIMAL, DEFAULT" in str(e.value)


@pytest.mark.slow
def test_a_node_groups_update_strategy_comes_from_its_config(dev):
    """A stack that prefers capacity over quota during a roll sets DEFAULT; the field names are pulumi-aws's
    (NodeGroupUpdateConfigArgs: max_unavailable, update_strategy), as the EKS node group takes them."""
    import pulumi_aws as aws

    dev["gpu-slicing:nodeGroups"][0]["updateStrategy"] = "DEFAULT"
    r = run_program(dev, preview=False)
    assert r.error is None, r.error
    ng = r.one("eks:index:ManagedNodeGroup", "gpu-dev-p4d-balanced")
    assert ng.options["children"][NODE_GROUP]["inputs"]["updateConfig"] == {"maxUnavailable": 1,
                                                                            "updateStrategy": "DEFAULT"}
    fields = aws.eks.NodeGroupUpdateConfigArgs.__init__.__code__.co_varnames
    assert {"max_unavailable", "update_strategy"} <= set(fields)


def test_the_node_group_transform_adds_to_what_the_plugin_sets_and_leaves_other_children_alone():
    """pulumi-eks sets ignoreChanges on its node group itself (scalingConfig.desiredSize when asked to): the
    transform keeps it, adds subnetIds once, and passes the plugin's other children (its access entries,
    launch templates) through untouched."""
    import pulumi

    from components._common import node_group_child

    transform = node_group_child("MINIMAL", ("subnetIds",))
    opts = pulumi.ResourceOptions(ignore_changes=["scalingConfig.desiredSize"])
    out = transform(pulumi.ResourceTransformArgs(True, NODE_GROUP, "ng", {"subnetIds": ["subnet-a"]}, opts))
    assert out.opts.ignore_changes == ["scalingConfig.desiredSize", "subnetIds"]
    assert out.props == {"subnetIds": ["subnet-a"], "updateConfig": {"maxUnavailable": 1, "updateStrategy": "MINIMAL"}}
    other = pulumi.ResourceTransformArgs(True, "aws:ec2/launchTemplate:LaunchTemplate", "lt", {},
                                         pulumi.ResourceOptions())
    assert transform(other) is None
