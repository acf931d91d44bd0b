"""The policy pack's network rules at their edges, as plain functions over hand-built resources: which
protocols and port ranges open SSH, which subnets are public (a route table routed to an internet
gateway through its inline routes or a separate Route, or mapPublicIpOnLaunch) and which node groups
and Karpenter selectors land in them. Expected values are the AWS semantics worked by hand (EC2
security group rules: protocol -1 is every protocol, 6 is TCP; a port range covers 22 when
from <= 22 <= to)."""
from __future__ import annotations

import pytest

from policy import rules

CTX = rules.Context(max_gpu_nodes=100)


def res(type_: str, name: str, props: dict | None = None, **kw) -> rules.Res:
    return rules.Res(type=type_, name=name, urn=f"urn:pulumi:dev::gpu-slicing::{type_}::{name}", props=props or {},
                     **kw)


def ssh(rule: dict) -> list[str]:
    sg = res("aws:ec2/securityGroup:SecurityGroup", "sg", {"ingress": [{"cidrBlocks": ["0.0.0.0/0"], **rule}]})
    return list(rules.no_public_ssh(sg, CTX))


@pytest.mark.parametrize("protocol, from_port, to_port", [
    ("-1", 0, 0), ("all", 0, 0), (-1, 0, 0),  # every protocol: ports are ignored
    ("tcp", 22, 22), ("TCP", 22, 22), ("6", 22, 22), (6, 22, 22), ("tcp", 0, 65535), ("tcp", "22", "22"),
    ("tcp", 21, 22), ("tcp", 22, 23),
])
def test_ssh_from_anywhere_is_refused(protocol, from_port, to_port):
    assert ssh({"protocol": protocol, "fromPort": from_port, "toPort": to_port}) == [
        "sg: ingress from 0.0.0.0/0 covers port 22"]


@pytest.mark.parametrize("protocol, from_port, to_port", [
    ("udp", 22, 22), ("17", 0, 65535), ("icmp", -1, -1),  # not TCP: no SSH whatever the ports
    ("tcp", 23, 443), ("tcp", 0, 21), ("tcp", None, None), ("tcp", "x", 22), ("tcp", 22, None),
])
def test_what_does_not_reach_port_22_passes(protocol, from_port, to_port):
    assert ssh({"protocol": protocol, "fromPort": from_port, "toPort": to_port}) == []


def test_ssh_from_a_named_range_passes_and_both_families_are_named():
    assert list(rules.no_public_ssh(res("aws:ec2/securityGroup:SecurityGroup", "sg", {"ingress": [
        {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["10.0.0.0/8"]}]}), CTX)) == []
    both = res("aws:ec2/securityGroup:SecurityGroup", "sg", {"ingress": [
        {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0", "10.0.0.0/8"],
         "ipv6CidrBlocks": ["::/0"]}]})
    assert list(rules.no_public_ssh(both, CTX)) == ["sg: ingress from 0.0.0.0/0, ::/0 covers port 22"]


def test_an_egress_rule_is_no_ingress():
    egress = res("aws:ec2/securityGroupRule:SecurityGroupRule", "out", {
        "type": "egress", "fromPort": 0, "toPort": 0, "protocol": "-1", "cidrBlocks": ["0.0.0.0/0"]})
    assert list(rules.no_public_ssh(egress, CTX)) == []


def test_ssh_through_remote_access_on_either_node_group_shape():
    for type_ in rules.MNG_TYPES:
        mng = res(type_, "ng", {"remoteAccess": {"ec2SshKey": "k"}})
        assert list(rules.no_public_ssh(mng, CTX)) == [
            "ng: remoteAccess opens SSH to the nodes; use SSM Session Manager instead"]
        assert list(rules.no_public_ssh(res(type_, "ng", {}), CTX)) == []


def test_ssh_from_anywhere_over_ipv6_through_a_vpc_ingress_rule():
    """aws.vpc.SecurityGroupIngressRule names its one range as cidrIpv4 or cidrIpv6: ::/0 on port 22 is SSH from
    anywhere as much as 0.0.0.0/0 is."""
    rule = res("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "in", {
        "ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIpv6": "::/0"})
    assert list(rules.no_public_ssh(rule, CTX)) == ["in: ingress from ::/0 covers port 22"]

# --- public subnets --------------------------------------------------------------------------------

IGW = res("aws:ec2/internetGateway:InternetGateway", "igw")
NAT = res("aws:ec2/natGateway:NatGateway", "nat")
PUBLIC = res(rules.SUBNET_TYPE, "public-0", {"tags": {"karpenter.sh/discovery": "c", "tier": "public"}})
PRIVATE = res(rules.SUBNET_TYPE, "private-0", {"tags": {"karpenter.sh/discovery": "c", "tier": "private"}})


def graph(inline: bool) -> list[rules.Res]:
    """A public route table (to the internet gateway) and a private one (to a NAT gateway), each associated
    with its subnet; the default route either inline (`routes`) or as a separate Route resource."""
    out = [IGW, NAT, PUBLIC, PRIVATE]
    for name, gw, subnet in (("public-rt", IGW, PUBLIC), ("private-rt", NAT, PRIVATE)):
        rt = res("aws:ec2/routeTable:RouteTable", name, property_dependencies={"routes": (gw.urn,)} if inline else {})
        out.append(rt)
        if not inline:
            out.append(res("aws:ec2/route:Route", f"{name}-default", property_dependencies={
                "routeTableId": (rt.urn,), "gatewayId" if gw is IGW else "natGatewayId": (gw.urn,)}))
        out.append(res("aws:ec2/routeTableAssociation:RouteTableAssociation", f"{name}-assoc", property_dependencies={
            "routeTableId": (rt.urn,), "subnetId": (subnet.urn,)}))
    return out


def node_group(*subnets: rules.Res) -> rules.Res:
    return res("eks:index:ManagedNodeGroup", "gpu", {"instanceTypes": ["p4d.24xlarge"]},
               property_dependencies={"subnetIds": tuple(s.urn for s in subnets)})


def placed(resources: list[rules.Res]) -> list[str]:
    return [m for m, _ in rules.nodes_in_private_subnets(resources, CTX)]


@pytest.mark.parametrize("inline", [True, False], ids=["inline-routes", "route-resource"])
def test_a_node_group_in_a_subnet_routed_to_the_internet_gateway_is_refused(inline):
    assert placed(graph(inline) + [node_group(PRIVATE)]) == []
    assert placed(graph(inline) + [node_group(PRIVATE, PUBLIC)]) == [
        "gpu: subnetIds include public subnet(s) public-0 (routed to an internet gateway by public-rt)"]


def test_map_public_ip_on_launch_makes_a_subnet_public_even_without_a_route():
    exposed = res(rules.SUBNET_TYPE, "open-0", {"mapPublicIpOnLaunch": "true"})
    assert placed([exposed, node_group(exposed)]) == [
        "gpu: subnetIds include public subnet(s) open-0 (mapPublicIpOnLaunch is true)"]
    closed = res(rules.SUBNET_TYPE, "closed-0", {"mapPublicIpOnLaunch": False})
    assert placed([closed, node_group(closed)]) == []


def test_the_route_reason_wins_over_map_public_ip():
    routed = graph(True)
    both = [res(rules.SUBNET_TYPE, "public-0", {"mapPublicIpOnLaunch": True}) if r is PUBLIC else r for r in routed]
    assert placed(both + [node_group(PUBLIC)]) == [
        "gpu: subnetIds include public subnet(s) public-0 (routed to an internet gateway by public-rt)"]


def test_a_route_table_without_an_internet_route_keeps_its_subnets_private():
    lonely = [IGW, PUBLIC, res("aws:ec2/routeTable:RouteTable", "rt"),
              res("aws:ec2/routeTableAssociation:RouteTableAssociation", "a", property_dependencies={
                  "routeTableId": (res("aws:ec2/routeTable:RouteTable", "rt").urn,), "subnetId": (PUBLIC.urn,)})]
    assert placed(lonely + [node_group(PUBLIC)]) == []


def nodeclass(*terms: dict) -> rules.Res:
    return res(rules.NODECLASS_TYPE, "gpu-class", {"spec": {"subnetSelectorTerms": list(terms)}})


@pytest.mark.parametrize("inline", [True, False], ids=["inline-routes", "route-resource"])
def test_karpenters_subnet_selector_must_not_match_a_public_subnet(inline):
    assert placed(graph(inline) + [nodeclass({"tags": {"karpenter.sh/discovery": "c"}})]) == [
        "gpu-class: subnetSelectorTerms {'karpenter.sh/discovery': 'c'} select public subnet public-0 "
        "(routed to an internet gateway by public-rt)"]
    # every tag of a term must match: the private tier's selector picks only the private subnet
    assert placed(graph(inline) + [nodeclass({"tags": {"karpenter.sh/discovery": "c", "tier": "private"}})]) == []
    # a term by id (no tags) is not resolved here, and an empty tag set selects nothing
    assert placed(graph(inline) + [nodeclass({"id": "subnet-1"}, {"tags": {}})]) == []


def test_inline_and_separate_routes_to_the_gateway_both_count():
    """One route table routed inline, another through a Route resource (and a third Route to a NAT gateway,
    which keeps its table private): both routed subnets are public, and the private one is not."""
    rts = {n: res("aws:ec2/routeTable:RouteTable", n, property_dependencies={"routes": (IGW.urn,)} if n == "a" else {})
           for n in ("a", "b", "c")}
    subnets = {n: res(rules.SUBNET_TYPE, f"subnet-{n}") for n in rts}
    graph_ = [IGW, NAT, *rts.values(), *subnets.values(),
              res("aws:ec2/route:Route", "b-default", property_dependencies={"routeTableId": (rts["b"].urn,),
                                                                            "gatewayId": (IGW.urn,)}),
              res("aws:ec2/route:Route", "c-default", property_dependencies={"routeTableId": (rts["c"].urn,),
                                                                            "natGatewayId": (NAT.urn,)})]
    graph_ += [res("aws:ec2/routeTableAssociation:RouteTableAssociation", f"{n}-assoc", property_dependencies={
        "routeTableId": (rts[n].urn,), "subnetId": (subnets[n].urn,)}) for n in rts]
    assert placed(graph_ + [node_group(*subnets.values())]) == [
        "gpu: subnetIds include public subnet(s) subnet-a (routed to an internet gateway by a), "
        "subnet-b (routed to an internet gateway by b)"]


def test_associations_and_routes_without_the_dependencies_the_rule_follows():
    """An edge association (a route table associated with the gateway: gatewayId, no subnetId), a Route or an
    association whose route table is a literal id (no dependency recorded): none of them makes a subnet public,
    and none stops the rule."""
    rt = res("aws:ec2/routeTable:RouteTable", "rt", property_dependencies={"routes": (IGW.urn,)})
    graph_ = [IGW, PRIVATE, rt,
              res("aws:ec2/routeTableAssociation:RouteTableAssociation", "edge", property_dependencies={
                  "routeTableId": (rt.urn,), "gatewayId": (IGW.urn,)}),
              res("aws:ec2/routeTableAssociation:RouteTableAssociation", "literal", property_dependencies={
                  "subnetId": (PRIVATE.urn,)}),
              res("aws:ec2/route:Route", "literal-route", property_dependencies={"gatewayId": (IGW.urn,)})]
    assert placed(graph_ + [node_group(PRIVATE)]) == []


def test_a_selector_term_without_tags_does_not_end_the_search():
    """Karpenter ORs subnetSelectorTerms: a term by id, or one still unknown at preview, is skipped and the
    tagged term after it is still judged."""
    assert placed(graph(True) + [nodeclass(rules.UNKNOWN, {"id": "subnet-1"}, {"tags": {"tier": "public"}})]) == [
        "gpu-class: subnetSelectorTerms {'tier': 'public'} select public subnet public-0 "
        "(routed to an internet gateway by public-rt)"]


def test_only_subnets_are_what_a_subnet_selector_selects():
    """A route table association may depend on a component that passed the subnet id along (an awsx Vpc): that
    resource carries the discovery tag too, but Karpenter's subnetSelectorTerms select subnets only."""
    vpc = res("awsx:ec2:Vpc", "vpc", {"tags": {"karpenter.sh/discovery": "c"}})
    rt = res("aws:ec2/routeTable:RouteTable", "public-rt", property_dependencies={"routes": (IGW.urn,)})
    assoc = res("aws:ec2/routeTableAssociation:RouteTableAssociation", "a", property_dependencies={
        "routeTableId": (rt.urn,), "subnetId": (vpc.urn,)})
    assert placed([IGW, vpc, rt, assoc, nodeclass({"tags": {"karpenter.sh/discovery": "c"}})]) == []
