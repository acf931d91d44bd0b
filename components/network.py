"""The VPC the cluster lives in: private subnets for nodes, public subnets for NAT and load balancers."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import pulumi
import pulumi_aws as aws

from gpu_slicing.config import NetworkConfig
from gpu_slicing.karpenter import DISCOVERY_TAG
from gpu_slicing.network import choose_zones, offered_zones, subnet_blocks, subnets_for

from ._common import child, tags


@dataclass(frozen=True)
class NetworkArgs:
    """`gpu_instance_types`: the stack's GPU instance types; the zones of a new VPC are chosen among those
    that offer them."""

    config: NetworkConfig
    cluster_name: str
    gpu_instance_types: Sequence[str] = field(default_factory=tuple)


class Network(pulumi.ComponentResource):
    """A new VPC across `availabilityZones` AZs that offer the stack's GPU types, or an existing one.

    Private subnets carry `karpenter.sh/discovery=<cluster>` so Karpenter finds them, and the EKS
    load-balancer role tags; nodes never get public IPs.
    """

    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    public_subnet_ids: pulumi.Output[list[str]]
    zones: pulumi.Output[list[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-slicing:network:Network", name, None, opts)
        self._offers: pulumi.Output[dict[str, set[str]]] | None = None
        if args.config.existing:
            self._existing(name, args)
        else:
            self._create(name, args)
        self.register_outputs({"vpcId": self.vpc_id, "privateSubnetIds": self.private_subnet_ids,
                               "publicSubnetIds": self.public_subnet_ids, "zones": self.zones})

    def subnets_for(self, instance_type: str) -> pulumi.Output[list[str]]:
        """Private subnets in the zones that offer `instance_type` (all of them for an existing VPC, whose
        zones the stack owner chose), carrying the same egress dependencies as `private_subnet_ids`. Read
        from the subnets' own zones, which stay put once created."""
        if self._offers is None:
            return self.private_subnet_ids
        return pulumi.Output.all(self.private_subnet_ids, self.zones, self._offers).apply(
            lambda a: subnets_for(instance_type, a[0], a[1], a[2]))

    def _existing(self, name: str, args: NetworkArgs) -> None:
        cfg = args.config
        for i, subnet in enumerate(cfg.private_subnet_ids):
            aws.ec2.Tag(f"{name}-private-{i}-discovery", resource_id=subnet, key=DISCOVERY_TAG,
                        value=args.cluster_name, opts=child(self))
        assert cfg.vpc_id is not None  # `existing` means a vpcId is set
        self.vpc_id = pulumi.Output.from_input(cfg.vpc_id)
        self.private_subnet_ids = pulumi.Output.from_input(list(cfg.private_subnet_ids))
        self.public_subnet_ids = pulumi.Output.from_input(list(cfg.public_subnet_ids))
        self.zones = pulumi.Output.from_input([])

    def _create(self, name: str, args: NetworkArgs) -> None:
        cfg, cluster_name = args.config, args.cluster_name
        n = cfg.availability_zones
        base = tags(cluster_name)
        invoke = pulumi.InvokeOptions(parent=self)
        vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=cfg.cidr, enable_dns_hostnames=True, enable_dns_support=True,
                          tags={**base, "Name": f"{cluster_name}-vpc"}, opts=child(self))
        available = aws.get_availability_zones_output(state="available", opts=invoke)
        types = sorted(set(args.gpu_instance_types))
        if types:
            offerings = aws.ec2.get_instance_type_offerings_output(
                location_type="availability-zone", filters=[{"name": "instance-type", "values": types}], opts=invoke)
            self._offers = pulumi.Output.all(offerings.instance_types, offerings.locations).apply(
                lambda a: offered_zones(a[0], a[1]))
        else:
            self._offers = pulumi.Output.from_input({})
        chosen = pulumi.Output.all(available.names, self._offers).apply(lambda a: choose_zones(a[0], a[1], types, n))

        def zone(i: int) -> pulumi.Output[str]:
            return chosen.apply(lambda z: z[i])
        # A subnet keeps the zone it was created in: a zone is replace-only (and the new subnet would collide
        # with the old one's CIDR), and AWS's offerings or the stack's GPU types may change the choice later.
        sticky: dict[str, Any] = dict(ignore_changes=["availabilityZone"])
        blocks = subnet_blocks(cfg.cidr, n)
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags={**base, "Name": f"{cluster_name}-igw"},
                                      opts=child(self))
        public_rt = aws.ec2.RouteTable(f"{name}-public", vpc_id=vpc.id,
                                       routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}],
                                       tags={**base, "Name": f"{cluster_name}-public"}, opts=child(self))
        shared = {f"kubernetes.io/cluster/{cluster_name}": "shared"}
        public, private, routes = [], [], []
        for i in range(n):
            az = zone(i)
            pub = aws.ec2.Subnet(f"{name}-public-{i}", vpc_id=vpc.id, cidr_block=blocks[n + i], availability_zone=az,
                                 map_public_ip_on_launch=False,
                                 tags={**base, **shared, "kubernetes.io/role/elb": "1",
                                       "Name": f"{cluster_name}-public-{i}"}, opts=child(self, **sticky))
            routes.append(aws.ec2.RouteTableAssociation(f"{name}-public-{i}-rta", subnet_id=pub.id,
                                                        route_table_id=public_rt.id, opts=child(self)))
            public.append(pub)
        # One NAT gateway: GPU nodes pull large images through it; per-AZ NAT is a cost/HA trade-off
        # the stack owner can make by bringing their own VPC.
        eip = aws.ec2.Eip(f"{name}-nat-eip", domain="vpc", tags={**base, "Name": f"{cluster_name}-nat"},
                          opts=child(self, depends_on=[igw]))
        nat = aws.ec2.NatGateway(f"{name}-nat", allocation_id=eip.id, subnet_id=public[0].id,
                                 tags={**base, "Name": f"{cluster_name}-nat"}, opts=child(self))
        private_rt = aws.ec2.RouteTable(f"{name}-private", vpc_id=vpc.id,
                                        routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}],
                                        tags={**base, "Name": f"{cluster_name}-private"}, opts=child(self))
        for i in range(n):
            sub = aws.ec2.Subnet(f"{name}-private-{i}", vpc_id=vpc.id, cidr_block=blocks[i],
                                 availability_zone=zone(i),
                                 map_public_ip_on_launch=False,
                                 tags={**base, **shared, "kubernetes.io/role/internal-elb": "1",
                                       DISCOVERY_TAG: cluster_name,
                                       "Name": f"{cluster_name}-private-{i}"}, opts=child(self, **sticky))
            routes.append(aws.ec2.RouteTableAssociation(f"{name}-private-{i}-rta", subnet_id=sub.id,
                                                        route_table_id=private_rt.id, opts=child(self)))
            private.append(sub)
        # The subnet IDs carry the routes as dependencies: whatever runs in the subnets (the cluster,
        # Karpenter draining its nodes on destroy) keeps its way out until it is gone itself.
        egress = [r.id for r in routes] + [nat.id, private_rt.id, public_rt.id]
        self.vpc_id = vpc.id
        self.zones = pulumi.Output.all(*[s.availability_zone for s in private])
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private], *egress).apply(lambda ids: ids[:n])
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public], *egress).apply(lambda ids: ids[:n])
