"""A new VPC's address and zone plan, and the node hardening both launch paths share: expected values are
hand-computed subnet arithmetic (RFC 4632 prefixes), the EC2 / Karpenter field names from their API docs and
the EKS user guide's rule that a node group launches only in zones that offer its type."""
from __future__ import annotations

import pytest

from gpu_slicing.config import NetworkConfig
from gpu_slicing.errors import ConfigError
from gpu_slicing.network import (ZONES_KEY, choose_zones, offered_zones, subnet_blocks, subnet_identity,
                                 subnets_for)
from gpu_slicing.nodes import launch_template_hardening, node_class_hardening


@pytest.mark.parametrize("cidr, azs, blocks", [
    # 2 x 3 = 6 subnets need 3 more prefix bits (8 >= 6): /19s, the first 3 private, the next 3 public
    ("10.0.0.0/16", 3, ["10.0.0.0/19", "10.0.32.0/19", "10.0.64.0/19", "10.0.96.0/19", "10.0.128.0/19",
                        "10.0.160.0/19"]),
    # 2 x 2 = 4 subnets: exactly 2 bits, /18s, none left over
    ("10.0.0.0/16", 2, ["10.0.0.0/18", "10.0.64.0/18", "10.0.128.0/18", "10.0.192.0/18"]),
    # 2 x 4 = 8: 3 bits of a /20 give /23s
    ("172.16.0.0/20", 4, ["172.16.0.0/23", "172.16.2.0/23", "172.16.4.0/23", "172.16.6.0/23", "172.16.8.0/23",
                          "172.16.10.0/23", "172.16.12.0/23", "172.16.14.0/23"]),
    # 2 x 5 = 10: 4 bits, the first 10 of 16 /20s
    ("10.1.0.0/16", 5, [f"10.1.{16 * i}.0/20" for i in range(10)]),
])
def test_a_new_vpc_is_split_into_equal_private_then_public_blocks(cidr, azs, blocks):
    assert subnet_blocks(cidr, azs) == blocks


def test_offerings_are_read_from_parallel_lists():
    assert offered_zones(["p4d.24xlarge", "p5.48xlarge", "p4d.24xlarge"], ["use1-a", "use1-b", "use1-c"]) == {
        "p4d.24xlarge": {"use1-a", "use1-c"}, "p5.48xlarge": {"use1-b"}}
    assert offered_zones([], []) == {}


def test_the_zones_chosen_offer_the_most_gpu_types_then_the_most_offerings_then_the_first_names():
    zones = ["z-d", "z-a", "z-c", "z-b"]
    # every pair of zones offers both types when p4d is everywhere: then the pair with the most offerings
    # (z-c and z-d offer both) wins over the first names
    offers = {"p4d.24xlarge": {"z-a", "z-b", "z-c", "z-d"}, "p5.48xlarge": {"z-c", "z-d"}}
    assert choose_zones(zones, offers, ["p5.48xlarge", "p4d.24xlarge"], 2) == ["z-c", "z-d"]
    # all equal: the first names, sorted
    assert choose_zones(zones, {"g5.xlarge": set(zones)}, ["g5.xlarge"], 3) == ["z-a", "z-b", "z-c"]
    # one type only in z-d: it is in the set
    assert choose_zones(zones, {"g5.xlarge": {"z-d"}}, ["g5.xlarge", "g5.xlarge"], 2) == ["z-a", "z-d"]
    # a type offered nowhere still lets the others choose (and then fails, naming it)
    assert choose_zones(zones, {"g5.xlarge": set(zones)}, [], 2) == ["z-a", "z-b"]


def test_zone_errors_name_the_key_the_count_and_where_each_type_is_offered():
    with pytest.raises(ConfigError) as e:
        choose_zones(["z-a", "z-b"], {}, [], 3)
    assert str(e.value) == f"{ZONES_KEY}: 3 is not valid: at most 2: the region has 2 available zones (z-a, z-b)"
    offers = {"p4d.24xlarge": {"z-a"}, "p5.48xlarge": {"z-c", "z-b"}}
    with pytest.raises(ConfigError) as e:
        choose_zones(["z-a", "z-b", "z-c"], offers, ["p4d.24xlarge", "p5.48xlarge", "p6-b200.48xlarge"], 2)
    assert str(e.value) == (f"{ZONES_KEY}: 2 is not valid: zones that offer every GPU instance type of the stack: "
                            "p6-b200.48xlarge is offered in no zone of this region, none of the chosen z-a, z-b")
    with pytest.raises(ConfigError) as e:  # no pair holds both: the best pair misses one, which is named
        choose_zones(["z-a", "z-b", "z-c"], {"g5.xlarge": {"z-a"}, "g6.xlarge": {"z-b"}, "g6e.xlarge": {"z-c"}},
                     ["g5.xlarge", "g6.xlarge", "g6e.xlarge"], 2)
    assert e.value.allowed.endswith("g6e.xlarge is offered in z-c of this region, none of the chosen z-a, z-b")


def test_a_node_group_gets_only_the_subnets_of_zones_that_offer_its_type():
    offers = {"p4d.24xlarge": {"z-a", "z-c"}}
    assert subnets_for("p4d.24xlarge", ["s-1", "s-2", "s-3"], ["z-a", "z-b", "z-c"], offers) == ["s-1", "s-3"]
    assert subnets_for("p5.48xlarge", ["s-1", "s-2"], ["z-a", "z-b"], offers) == []


def test_what_decides_a_node_groups_subnets():
    new = NetworkConfig.model_validate({"vpcCidr": "10.8.0.0/16", "availabilityZones": 2})
    assert subnet_identity(new) == {"vpcCidr": "10.8.0.0/16", "availabilityZones": 2}
    assert subnet_identity(NetworkConfig.model_validate({})) == {"vpcCidr": "10.0.0.0/16", "availabilityZones": 3}
    existing = NetworkConfig.model_validate({"vpcId": "vpc-1", "privateSubnetIds": ["subnet-b", "subnet-a"],
                                             "publicSubnetIds": ["subnet-c"]})
    assert subnet_identity(existing) == {"privateSubnetIds": ["subnet-a", "subnet-b"]}


def test_nodes_are_hardened_alike_on_both_launch_paths():
    """IMDSv2 only with a hop limit of 1 (EKS best practices, restrict the instance metadata service) and an
    encrypted gp3 root volume deleted with the node, in Karpenter's EC2NodeClass names and in the EC2 launch
    template's (Pulumi aws.ec2.LaunchTemplate: snake_case, the EBS flags as the strings "true"/"false")."""
    assert node_class_hardening(200) == {
        "blockDeviceMappings": [{"deviceName": "/dev/xvda", "rootVolume": True,
                                 "ebs": {"volumeSize": "200Gi", "volumeType": "gp3", "encrypted": True,
                                         "deleteOnTermination": True}}],
        "metadataOptions": {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1,
                            "httpProtocolIPv6": "disabled"}}
    assert launch_template_hardening(100) == {
        "metadata_options": {"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1,
                             "http_protocol_ipv6": "disabled"},
        "block_device_mappings": [{"device_name": "/dev/xvda",
                                   "ebs": {"volume_size": 100, "volume_type": "gp3", "encrypted": "true",
                                           "delete_on_termination": "true"}}]}


def test_covering_every_gpu_type_beats_offering_one_type_more_often():
    """p4d in three zones, p5 only in the fourth: {a, d} offers both (2 offerings), {a, b} offers p4d twice (also 2
    offerings) but no p5; a region with exactly as many zones as asked for gives them all."""
    offers = {"p4d.24xlarge": {"z-a", "z-b", "z-c"}, "p5.48xlarge": {"z-d"}}
    assert choose_zones(["z-a", "z-b", "z-c", "z-d"], offers, ["p4d.24xlarge", "p5.48xlarge"], 2) == ["z-a", "z-d"]
    assert choose_zones(["z-b", "z-a"], {"g5.xlarge": {"z-a"}}, ["g5.xlarge"], 2) == ["z-a", "z-b"]


def test_every_type_no_chosen_zone_offers_is_named_with_its_zones():
    offers = {"p4d.24xlarge": {"z-a"}, "p5.48xlarge": {"z-c", "z-b"}, "g6.xlarge": {"z-c"}}
    with pytest.raises(ConfigError) as e:
        choose_zones(["z-a", "z-b", "z-c"], offers, ["p4d.24xlarge", "p5.48xlarge", "g6.xlarge", "p6-b200.48xlarge"], 1)
    # one zone can hold p5 and g6 (z-c: 2 types); p4d and the B200 are then named, in the types' sorted order
    assert e.value.allowed == ("zones that offer every GPU instance type of the stack: p4d.24xlarge is offered in "
                               "z-a; p6-b200.48xlarge is offered in no zone of this region, none of the chosen z-c")
    with pytest.raises(ConfigError) as e:
        choose_zones(["z-a", "z-b", "z-c"], {"p5.48xlarge": {"z-c", "z-b"}, "g6.xlarge": {"z-a"}},
                     ["p5.48xlarge", "g6.xlarge"], 1)
    assert e.value.allowed == ("zones that offer every GPU instance type of the stack: p5.48xlarge is offered in "
                               "z-b, z-c of this region, none of the chosen z-a")
