"""The VPC the dev stack creates, read from its recorded plan and held to the EKS user guide's network
requirements (DNS on, nodes in private subnets with a way out through NAT, the load-balancer role tags, the
Karpenter discovery tag on the node subnets only) and to hand-computed addresses. The plan is what Pulumi would
send: each input and the resource it comes from (a property dependency), so a subnet routed through the wrong
table, or a NAT gateway in a private subnet, fails here."""
from __future__ import annotations

import ipaddress

import pytest

from tools import harness

MODES = ["preview", "up"]
CLUSTER = "gpu-dev"
SUBNET = "aws:ec2/subnet:Subnet"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
# 10.0.0.0/16 in 2 x 3 zones: the next power of two is 8 blocks, /16 + 3 bits = /19 (8192 addresses each); the
# first three for nodes, the next three for NAT and internet-facing load balancers.
PRIVATE_CIDRS = ["10.0.0.0/19", "10.0.32.0/19", "10.0.64.0/19"]
PUBLIC_CIDRS = ["10.0.96.0/19", "10.0.128.0/19", "10.0.160.0/19"]
BASE_TAGS = {"gpu-slicing/cluster": CLUSTER, "managed-by": "pulumi"}


def _subnets(r, kind: str) -> list:
    return sorted((s for s in r.by_type(SUBNET) if s.name.startswith(f"{CLUSTER}-{kind}-")), key=lambda s: s.name)


def _from(r, reg, key: str) -> list[str]:
    """The names of the resources input `key` of `reg` is read from (its property dependencies)."""
    return sorted(r.get(u).name for u in reg.property_dependencies.get(key, []))


def _mock_id(prefix: str, name: str) -> str:
    """The ID the harness's mock gives a resource of that kind and name (tools/harness.py, PlausibleMocks)."""
    return f"{prefix}-{harness._hex(name)}"


@pytest.mark.parametrize("mode", MODES)
def test_the_vpc_resolves_names_as_eks_requires(dev_runs, mode):
    """EKS user guide, VPC requirements: DNS hostnames and DNS resolution on, or nodes cannot register."""
    vpc = dev_runs[mode].one("aws:ec2/vpc:Vpc").inputs
    assert vpc["cidrBlock"] == "10.0.0.0/16"
    assert vpc["enableDnsHostnames"] is True and vpc["enableDnsSupport"] is True
    assert vpc["tags"] == {**BASE_TAGS, "Name": "gpu-dev-vpc"}


@pytest.mark.parametrize("mode", MODES)
def test_subnets_split_the_vpc_private_first_without_overlap(dev_runs, mode):
    r = dev_runs[mode]
    private, public = _subnets(r, "private"), _subnets(r, "public")
    assert [s.inputs["cidrBlock"] for s in private] == PRIVATE_CIDRS
    assert [s.inputs["cidrBlock"] for s in public] == PUBLIC_CIDRS
    blocks = [ipaddress.ip_network(s.inputs["cidrBlock"]) for s in private + public]
    assert all(not a.overlaps(b) for i, a in enumerate(blocks) for b in blocks[i + 1:])
    for s in private + public:
        assert _from(r, s, "vpcId") == ["gpu-dev-vpc"]
        assert s.inputs["mapPublicIpOnLaunch"] is False
        # A subnet keeps the zone it was created in (a zone is replace-only on a subnet).
        assert s.options["ignoreChanges"] == ["availabilityZone"]
        if mode == "up":
            assert s.inputs["vpcId"] == _mock_id("vpc", "gpu-dev-vpc")


@pytest.mark.parametrize("mode", MODES)
def test_subnet_tags_let_load_balancers_and_karpenter_find_the_right_subnets(dev_runs, mode):
    """EKS user guide, subnet tagging: internal load balancers go to subnets tagged
    `kubernetes.io/role/internal-elb=1`, internet-facing ones to `kubernetes.io/role/elb=1`. Karpenter launches
    nodes into the subnets carrying `karpenter.sh/discovery=<cluster>`: the private ones, never the public."""
    r = dev_runs[mode]
    for i, s in enumerate(_subnets(r, "private")):
        assert s.inputs["tags"] == {**BASE_TAGS, "Name": f"gpu-dev-private-{i}", "kubernetes.io/cluster/gpu-dev": "shared",
                                    "kubernetes.io/role/internal-elb": "1", "karpenter.sh/discovery": "gpu-dev"}
    for i, s in enumerate(_subnets(r, "public")):
        assert s.inputs["tags"] == {**BASE_TAGS, "Name": f"gpu-dev-public-{i}", "kubernetes.io/cluster/gpu-dev": "shared",
                                    "kubernetes.io/role/elb": "1"}


def test_each_zone_gets_one_private_and_one_public_subnet_where_the_gpu_type_is_offered(dev_runs):
    """The harness's offerings table has p4d.24xlarge in us-east-1a, c and d only: the private subnets take those
    three zones in order, and the public subnet of the same index (its NAT and load balancers) the same zone."""
    r = dev_runs["up"]
    zones = [f"us-east-1{c}" for c in harness.OFFERINGS["us-east-1"]["p4d.24xlarge"]]
    assert [s.inputs["availabilityZone"] for s in _subnets(r, "private")] == zones
    assert [s.inputs["availabilityZone"] for s in _subnets(r, "public")] == zones
    assert r.outputs["availabilityZones"] == zones


@pytest.mark.parametrize("mode", MODES)
def test_public_subnets_route_to_the_internet_gateway_private_ones_through_nat(dev_runs, mode):
    r = dev_runs[mode]
    igw = r.one("aws:ec2/internetGateway:InternetGateway")
    assert _from(r, igw, "vpcId") == ["gpu-dev-vpc"]
    assert igw.inputs["tags"] == {**BASE_TAGS, "Name": "gpu-dev-igw"}
    tables = {t.name: t for t in r.by_type(ROUTE_TABLE)}
    assert set(tables) == {"gpu-dev-public", "gpu-dev-private"}
    public, private = tables["gpu-dev-public"], tables["gpu-dev-private"]
    assert _from(r, public, "routes") == ["gpu-dev-igw"] and _from(r, private, "routes") == ["gpu-dev-nat"]
    for t, name in ((public, "gpu-dev-public"), (private, "gpu-dev-private")):
        assert _from(r, t, "vpcId") == ["gpu-dev-vpc"]
        assert t.inputs["tags"] == {**BASE_TAGS, "Name": name}
    if mode == "up":
        assert public.inputs["routes"] == [{"cidrBlock": "0.0.0.0/0", "gatewayId": _mock_id("igw", "gpu-dev-igw")}]
        assert private.inputs["routes"] == [{"cidrBlock": "0.0.0.0/0", "natGatewayId": _mock_id("nat", "gpu-dev-nat")}]
    # every subnet is associated with exactly one table: its own kind's
    assoc = {a.name: a for a in r.by_type(ASSOCIATION)}
    assert len(assoc) == 6
    for kind in ("public", "private"):
        for s in _subnets(r, kind):
            a = assoc[f"{s.name}-rta"]
            assert _from(r, a, "subnetId") == [s.name] and _from(r, a, "routeTableId") == [f"gpu-dev-{kind}"]
            if mode == "up":
                assert a.inputs["subnetId"] == _mock_id("subnet", s.name)


@pytest.mark.parametrize("mode", MODES)
def test_one_nat_gateway_in_a_public_subnet_on_a_vpc_address(dev_runs, mode):
    """EC2 docs: a public NAT gateway sits in a public subnet with an Elastic IP of the VPC domain; the address
    needs the internet gateway attached first (the EIP waits for it)."""
    r = dev_runs[mode]
    eip, igw = r.one("aws:ec2/eip:Eip"), r.one("aws:ec2/internetGateway:InternetGateway")
    assert eip.inputs["domain"] == "vpc"
    assert igw.urn in eip.dependencies
    assert eip.inputs["tags"] == {**BASE_TAGS, "Name": "gpu-dev-nat"}
    nat = r.one("aws:ec2/natGateway:NatGateway")
    assert _from(r, nat, "allocationId") == ["gpu-dev-nat-eip"]
    assert _from(r, nat, "subnetId") == ["gpu-dev-public-0"]
    assert nat.inputs["tags"] == {**BASE_TAGS, "Name": "gpu-dev-nat"}
    if mode == "up":
        assert nat.inputs["allocationId"] == _mock_id("eipalloc", "gpu-dev-nat-eip")
        assert nat.inputs["subnetId"] == _mock_id("subnet", "gpu-dev-public-0")


@pytest.mark.parametrize("mode", MODES)
def test_the_cluster_gets_each_kind_of_subnet_with_its_way_out(dev_runs, mode):
    """The control plane's subnets are read from the subnets themselves and, as dependencies, from the routes and
    the NAT gateway (which a destroy then keeps until the cluster is gone)."""
    r = dev_runs[mode]
    cluster = r.one("eks:index:Cluster")
    egress = {"gpu-dev-nat", "gpu-dev-private", "gpu-dev-public"} | {f"gpu-dev-{k}-{i}-rta" for k in ("public", "private")
                                                                      for i in range(3)}
    private, public = [s.name for s in _subnets(r, "private")], [s.name for s in _subnets(r, "public")]
    assert _from(r, cluster, "privateSubnetIds") == sorted(set(private) | egress)
    assert _from(r, cluster, "publicSubnetIds") == sorted(set(public) | egress)
    assert _from(r, cluster, "vpcId") == ["gpu-dev-vpc"]
    if mode == "up":
        assert cluster.inputs["privateSubnetIds"] == [_mock_id("subnet", n) for n in private]
        assert cluster.inputs["publicSubnetIds"] == [_mock_id("subnet", n) for n in public]
        assert cluster.inputs["vpcId"] == r.outputs["vpcId"] == _mock_id("vpc", "gpu-dev-vpc")
        ng = r.one("eks:index:ManagedNodeGroup", "gpu-dev-p4d-balanced")
        assert ng.inputs["subnetIds"] == [_mock_id("subnet", n) for n in private]  # p4d is offered in all three


def test_the_network_components_resources_are_its_children(dev_runs):
    r = dev_runs["preview"]
    net = r.one("gpu-slicing:network:Network")
    assert net.name == CLUSTER
    mine = [x for x in r.registrations if x.parent == net.urn]
    assert sorted(x.type.split(":")[-1] for x in mine) == sorted(
        ["Vpc", "InternetGateway", "RouteTable", "RouteTable", "Eip", "NatGateway"] + ["Subnet"] * 6
        + ["RouteTableAssociation"] * 6)


@pytest.fixture(scope="module")
def existing():
    """tests/stacks/good/existing-vpc.yaml: two private subnets and one public subnet the stack owner brings."""
    import yaml

    from conftest import ROOT, run

    r = run(yaml.safe_load((ROOT / "tests/stacks/good/existing-vpc.yaml").read_text())["config"], preview=False)
    assert r.error is None, r.error
    return r


@pytest.mark.slow
def test_an_existing_vpc_gets_the_discovery_tag_on_each_private_subnet_and_nothing_else(existing):
    r = existing
    net = r.one("gpu-slicing:network:Network")
    private = ["subnet-0aa1111111111111a", "subnet-0bb2222222222222b"]
    tags = r.by_type("aws:ec2/tag:Tag")
    mine = [t for t in tags if t.parent == net.urn]
    assert sorted((t.name, t.inputs["resourceId"], t.inputs["key"], t.inputs["value"]) for t in mine) == [
        ("shared-vpc-private-0-discovery", private[0], "karpenter.sh/discovery", "shared-vpc"),
        ("shared-vpc-private-1-discovery", private[1], "karpenter.sh/discovery", "shared-vpc")]
    assert [x for x in r.registrations if x.parent == net.urn and x not in mine] == []
    cluster = r.one("eks:index:Cluster").inputs
    assert cluster["vpcId"] == r.outputs["vpcId"] == "vpc-0a1b2c3d4e5f60718"
    assert cluster["privateSubnetIds"] == private and cluster["publicSubnetIds"] == ["subnet-0cc3333333333333c"]
    # the stack owner chose the zones: every private subnet, whatever AWS offers where
    assert r.one("eks:index:ManagedNodeGroup", "shared-vpc-p4de-medium").inputs["subnetIds"] == private
    assert r.outputs["availabilityZones"] == []


@pytest.fixture(scope="module")
def asked():
    """The dev stack run as an update, with what the program asks AWS (its invokes) recorded."""
    from conftest import dev_config, run_patched

    calls: list[tuple[str, dict]] = []

    def recording(original):
        def call(self, args):
            calls.append((args.token, harness._plain(args.args)))
            return original(self, args)
        return call

    run_patched(harness.PlausibleMocks, "call", recording, dev_config())
    return calls


@pytest.mark.slow
def test_zones_are_chosen_among_available_zones_that_offer_the_stacks_gpu_types(asked):
    """EC2 API: DescribeAvailabilityZones filtered to state `available` (an impaired zone is no place for new
    subnets); DescribeInstanceTypeOfferings by location type `availability-zone`, filtered on `instance-type`
    to the stack's GPU types (the node group's p4d.24xlarge and the NodePool's, the same here)."""
    zones = [a for t, a in asked if t == "aws:index/getAvailabilityZones:getAvailabilityZones"]
    assert zones == [{"state": "available"}]
    offerings = [a for t, a in asked if t == "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings"]
    assert offerings == [{"locationType": "availability-zone",
                          "filters": [{"name": "instance-type", "values": ["p4d.24xlarge"]}]}]


@pytest.mark.slow
def test_a_node_group_gets_only_the_subnets_whose_zone_offers_its_type():
    """The EKS user guide: a managed node group launches only in zones that offer its instance type, and
    CreateNodegroup fails on a subnet in one that does not. With p4de.24xlarge beside the dev stack's p4d, the
    harness's table (the independent oracle here) offers p4d in us-east-1a, c, d and p4de in a and c only: the
    VPC spans a, c and d, and the p4de group gets the a and c subnets."""
    from conftest import dev_config, run

    dev = dev_config()
    dev["gpu-slicing:nodeGroups"].append({"name": "p4de-one", "instanceType": "p4de.24xlarge", "minSize": 0,
                                          "desiredSize": 0, "maxSize": 1, "migLayout": "all-balanced"})
    dev["gpu-slicing:maxGpuNodes"] = 8  # the cost guard counts the new group's one node too
    r = run(dev, preview=False)
    assert r.error is None, r.error
    table = harness.OFFERINGS["us-east-1"]
    by_zone = {s.inputs["availabilityZone"]: _mock_id("subnet", s.name) for s in _subnets(r, "private")}
    assert sorted(by_zone) == [f"us-east-1{c}" for c in table["p4d.24xlarge"]]

    def subnets(group: str) -> list[str]:
        ng = next(x for x in r.by_type("eks:index:ManagedNodeGroup") if x.name == f"{CLUSTER}-{group}")
        return ng.inputs["subnetIds"]

    assert subnets("p4d-balanced") == [by_zone[f"us-east-1{c}"] for c in table["p4d.24xlarge"]]
    assert subnets("p4de-one") == [by_zone[f"us-east-1{c}"] for c in table["p4de.24xlarge"]]
