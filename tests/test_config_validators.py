"""Each config key's check, called on its own: what it accepts (and returns), what it refuses (the error naming
the key, the value and what is allowed), and the JSON Schema fragment it publishes for editors, held against the
check on the same samples. Quick: no program runs, no stack files; expected values are AWS's documented limits,
RFC 5737, the Karpenter CRD and hand-written examples."""
from __future__ import annotations

import datetime as dt
import math

import jsonschema
import pytest
import yaml

from conftest import dev_config

from gpu_slicing import calendar
from gpu_slicing import config as c
from gpu_slicing.errors import ConfigError, ConfigErrors

KEY = "gpu-slicing:some.key"


def refused(check, value, key: str = KEY) -> ConfigError:
    """The error `check` raises for `value`, which names `key` and carries the value as given."""
    with pytest.raises(ConfigError) as e:
        check(value, key)
    assert e.value.key == key and e.value.value == value and type(e.value.value) is type(value), str(e.value)
    return e.value


def schema_accepts(check, value) -> bool:
    return jsonschema.Draft202012Validator(check.schema).is_valid(value)


def agree(check, accepted, rejected) -> None:
    """The check and its published schema fragment agree on every sample (what an editor flags as people type)."""
    for v in accepted:
        check(v, KEY)
        assert schema_accepts(check, v), v
    for v in rejected:
        with pytest.raises(ConfigError) as e:
            check(v, KEY)
        assert e.value.key.startswith(KEY), str(e.value)  # the key, or an item or entry of it
        assert not schema_accepts(check, v), v


# --- strings, names, booleans ---------------------------------------------------------------------------

def test_a_string_key_takes_any_non_empty_text():
    assert c._string("gpu-dev", KEY) == "gpu-dev"
    assert refused(c._string, "").allowed == "a non-empty string"
    assert refused(c._string, None).allowed == "a non-empty string"
    assert refused(c._string, 7).allowed == 'YAML read the number 7, not text: quote it, e.g. "7"; a non-empty string'
    agree(c._string, ["x", "1g.5gb"], ["", 7, None, ["x"]])


NAME_WORDS = ("a lowercase DNS label: a-z, 0-9 and '-', 1-40 characters, starting and ending with a letter or "
              "digit")


def test_a_name_is_a_dns_label_of_at_most_40_characters():
    """40: KarpenterControllerRole-<cluster> then fills IAM's 64-character role name limit."""
    assert c._name("a" * 40, KEY) == "a" * 40
    agree(c._name, ["a", "0", "gpu-dev", "p4d-balanced", "a" * 40, "a-0"],
          ["", "a" * 41, "-a", "a-", "GPU", "gpu_dev", "gpu.dev", 7, None])
    assert refused(c._name, "gpu_dev").allowed == NAME_WORDS
    assert refused(c._name, True).allowed == "YAML read the boolean true, not text: quote the value; " + NAME_WORDS


@pytest.mark.parametrize("check, value", [
    (c._name, "gpu-dev\n"),  # a YAML block scalar (`name: |`) ends its text with a newline
    (c._role_arn, "arn:aws:iam::123456789012:role/admins\n"),
    (c._ec2_type, "m7i.large\n"),
    (c.KarpenterConfig.model_fields["ami_alias_version"].metadata[0].fn, "v20261118\n"),
])
def test_a_trailing_newline_is_no_part_of_a_name(check, value):
    """Python's `$` also matches before a final newline: the checks match the whole value, as the schema's
    ECMA-262 patterns do, so a name AWS would refuse is refused here."""
    refused(check, value)


def test_a_cluster_name_from_a_yaml_block_scalar_is_refused_at_its_key():
    cfg = dev_config()
    cfg["gpu-slicing:cluster"]["name"] = yaml.safe_load("name: |\n  gpu-dev\n")["name"]
    with pytest.raises(ConfigError) as e:
        c.parse_shape(cfg)
    assert (e.value.key, e.value.value, e.value.allowed) == ("gpu-slicing:cluster.name", "gpu-dev\n", NAME_WORDS)


def test_two_entries_with_one_bad_name_are_two_name_errors_and_no_duplicate():
    """A bad name is its own error: the duplicate check (and the derived AWS names) read only valid names."""
    cfg = dev_config()
    for w in cfg["gpu-slicing:workloads"][:2]:
        w["name"] = "slice\n"
    with pytest.raises(ConfigErrors) as e:
        c.parse_shape(cfg)
    assert [(x.key, x.allowed) for x in e.value.errors] == [("gpu-slicing:workloads[0].name", NAME_WORDS),
                                                            ("gpu-slicing:workloads[1].name", NAME_WORDS)]


def test_a_boolean_key_takes_only_true_or_false():
    assert c._bool(True, KEY) is True and c._bool(False, KEY) is False
    for v in ("true", 1, 0, None):
        assert refused(c._bool, v).allowed == "true or false"
    agree(c._bool, [True, False], ["true", 1, None])


# --- CIDR blocks ----------------------------------------------------------------------------------------

def test_a_vpc_cidr_takes_the_sizes_aws_allows_and_nothing_beyond():
    """AWS: a VPC's IPv4 block is from /16 (65,536 addresses) to /28 (16) (VPC user guide, 'VPC CIDR blocks')."""
    assert c._vpc_cidr("10.0.0.0/16", KEY) == "10.0.0.0/16"
    assert c._vpc_cidr("10.0.0.0/28", KEY) == "10.0.0.0/28"
    assert c._vpc_cidr("10.0.0.0/255.255.0.0", KEY) == "10.0.0.0/16"  # the netmask form, as ip_network reads it
    for v in ("10.0.0.0/15", "10.0.0.0/29"):
        assert refused(c._vpc_cidr, v).allowed == ("an IPv4 CIDR block from /16 to /28 (the sizes AWS allows for "
                                                   "a VPC)")
    assert "host bits zero" in refused(c._vpc_cidr, "10.0.0.1/16").allowed
    assert "IPv4 only" in refused(c._vpc_cidr, "fd00::/56").allowed
    # the schema takes /16 to /20 (the program plans subnets in those; /21 to /28 it refuses for a new VPC later)
    agree(c._vpc_cidr, ["10.0.0.0/16", "172.16.0.0/20", "192.168.0.0/18", "10.0.0.0/255.255.0.0"],
          ["10.0.0.0/15", "10.0.0.0/29", "10.0.0.0/8", "fd00::/56", "10.0.0.0", 16])


RFC_5737 = ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"]  # TEST-NET-1, -2 and -3


@pytest.mark.parametrize("doc", RFC_5737)
def test_a_public_access_cidr_in_a_documentation_range_is_refused_naming_the_range(doc):
    inside = doc.replace(".0/24", ".8/29")
    for v in (doc, inside, inside.split("/")[0]):  # the range, a block of it, one address (a /32)
        e = refused(c._client_cidr, v)
        assert e.allowed.startswith(f"a range real clients are in: {doc} is a documentation range (RFC 5737), "), v
        for words in ("no real client has an address in it, so nothing (not Pulumi, not kubectl) could reach the "
                      "API server", "use your own address range, e.g. <your public IP>/32, or 0.0.0.0/0",
                      "(EKS still authenticates every request with IAM)"):
            assert words in e.allowed
        assert not schema_accepts(c._client_cidr, v), v


def test_a_public_access_cidr_outside_the_documentation_ranges_is_taken_as_a_block():
    assert c._client_cidr("0.0.0.0/0", KEY) == "0.0.0.0/0"
    assert c._client_cidr("52.94.76.5", KEY) == "52.94.76.5/32"
    assert c._client_cidr("192.0.2.0/23", KEY) == "192.0.2.0/23"  # holds TEST-NET-1 and real addresses
    agree(c._client_cidr, ["0.0.0.0/0", "52.94.76.5", "52.94.76.0/24", "192.0.2.0/23", "203.0.0.0/16"],
          ["192.0.2.0/24", "198.51.100.7", "203.0.113.0/25", "10.0.0.0/33", "fd00::/8", 7])


# --- lists of fixed words --------------------------------------------------------------------------------

def test_capacity_types_are_on_demand_and_or_spot_once_each():
    assert c._capacity_types(["spot", "on-demand"], KEY) == ("spot", "on-demand")
    assert c._capacity_types(["on-demand"], KEY) == ("on-demand",)
    assert refused(c._capacity_types, []).allowed == "a list of at least 1 item(s)"
    assert refused(c._capacity_types, "spot").allowed == "a list of at least 1 item(s)"
    assert refused(c._capacity_types, "reserved").allowed == "a list of at least 1 item(s)"  # text, not a list
    assert refused(c._capacity_types, ["spot", "spot"]).allowed == "a list without duplicates"
    with pytest.raises(ConfigError) as one:
        c._capacity_types(["spot", "ondemand"], KEY)
    assert (one.value.key, one.value.value, one.value.allowed) == (KEY + "[1]", "ondemand", "one of on-demand, spot")
    agree(c._capacity_types, [["spot"], ["on-demand", "spot"]], [[], ["spot", "spot"], "spot", ["reserved"]])


def test_every_bad_capacity_type_is_named_by_its_index():
    with pytest.raises(ConfigErrors) as e:
        c._capacity_types(["Spot", "spot", 1], KEY)
    assert [(x.key, x.value, x.allowed) for x in e.value.errors] == [
        (KEY + "[0]", "Spot", "one of on-demand, spot"),
        (KEY + "[2]", 1, "YAML read the number 1, not text: quote it, e.g. \"1\"; one of on-demand, spot")]


@pytest.mark.parametrize("value", [["reserved"], ["spot", "reserved"]])
def test_reserved_capacity_is_refused_with_why(value):
    e = refused(c._capacity_types, value)
    assert e.allowed.startswith("on-demand and/or spot; reserved is not supported yet: Karpenter launches reserved "
                                "capacity only from capacity reservations its EC2NodeClass selects")


# --- ARNs, types, durations, versions ----------------------------------------------------------------------

ROLE_ARN_EXAMPLE = "an IAM role ARN such as arn:aws:iam::123456789012:role/platform-admins"


def test_an_admin_role_is_a_role_arn_of_any_partition():
    """IAM: a 12-digit account, `role/`, an optional path, a name of 1 to 64 of [A-Za-z0-9+=,.@_-]."""
    agree(c._role_arn, ["arn:aws:iam::123456789012:role/admins", "arn:aws-cn:iam::123456789012:role/a",
                        "arn:aws-us-gov:iam::123456789012:role/ci/deploy", "arn:aws:iam::123456789012:role/" + "r" * 64],
          ["arn:aws:iam::123456789012:role/" + "r" * 65, "arn:aws:iam::12345:role/admins",
           "arn:aws:iam::123456789012:user/jane", "", 7])
    assert c._role_arn("arn:aws:iam::123456789012:role/admins", KEY) == "arn:aws:iam::123456789012:role/admins"
    assert refused(c._role_arn, "arn:aws:iam::123456789012:user/jane").allowed == ROLE_ARN_EXAMPLE
    assert refused(c._role_arn, 7).allowed == ROLE_ARN_EXAMPLE


def test_an_assumed_role_session_arn_is_told_to_give_the_roles_own_arn():
    """What `aws sts get-caller-identity` prints for a role session: not the role's ARN."""
    e = refused(c._role_arn, "arn:aws:sts::123456789012:assumed-role/admins/jane")
    assert e.allowed == (ROLE_ARN_EXAMPLE + " (an assumed-role session ARN from sts get-caller-identity: give the "
                         "role's own ARN, arn:aws:iam::<account>:role/<name>)")


def test_a_gpu_instance_type_is_one_the_catalog_plans():
    assert c._instance_type("p4d.24xlarge", KEY) == "p4d.24xlarge"
    assert "a GPU instance type this program knows" in refused(c._instance_type, "p9.huge").allowed
    assert "UltraServers" in refused(c._instance_type, "p6e-gb200.36xlarge").allowed
    agree(c._instance_type, ["p4d.24xlarge", "g5.xlarge", "g6e.2xlarge"], ["p9.huge", "p6e-gb200.36xlarge", "m7i.large"])


SYSTEM_GPU_WORDS = ("a general-purpose instance type such as m7i.large: the system node group runs add-ons and "
                    "controllers (CoreDNS, Karpenter), never GPU pods, so a GPU instance there costs GPU prices for "
                    "nothing; put GPU instances in nodeGroups or karpenter.nodePools")


def test_the_system_node_group_takes_a_general_purpose_type_and_never_a_gpu_one():
    assert c._system_type("m7i.large", KEY) == "m7i.large"
    # g4ad is an AMD GPU family the catalog has not: still a GPU price for no GPU pod
    for v in ("p4d.24xlarge", "g4ad.xlarge", "gr6.4xlarge", "p3.2xlarge"):
        assert refused(c._system_type, v).allowed == SYSTEM_GPU_WORDS, v
    assert refused(c._system_type, "m7i").allowed == "an EC2 instance type such as m7i.large"
    agree(c._system_type, ["m7i.large", "c7i.2xlarge", "r6i.large", "m7g.xlarge"],
          ["p4d.24xlarge", "g4ad.xlarge", "g5.xlarge", "m7i", "M7i.large", 7])


def test_durations_are_the_karpenter_nodepool_crds_pattern():
    from tools import refdata

    spec = refdata.crd_schemas()[("karpenter.sh/v1", "NodePool")]["properties"]["spec"]["properties"]
    assert c._duration.schema == {"type": "string",
                                  "pattern": spec["disruption"]["properties"]["consolidateAfter"]["pattern"]}
    agree(c._duration, ["Never", "10m", "1h30m", "720h", "0s"], ["never", "30d", "10", "", "1.5h", 600])
    assert refused(c._duration, "30d").allowed == ("a duration such as 10m, 1h or 720h (units s, m, h), or Never (the "
                                                   "pattern of the Karpenter NodePool CRD)")
    assert c._duration("1h30m", KEY) == "1h30m"


@pytest.fixture
def on_2026_12_06(monkeypatch):
    """EKS's calendar as of 2026-12-06 (its version guide): 1.31's extended support ended on 2026-11-26, 1.32 to
    1.34 are in extended support, 1.35 and 1.36 in standard support."""
    monkeypatch.setattr(calendar, "today", lambda: dt.date(2026, 12, 6))
    return ", ".join(calendar.creatable())


def test_a_kubernetes_version_is_a_quoted_minor_eks_creates(on_2026_12_06):
    assert c._k8s_version("1.35", KEY) == "1.35"
    assert on_2026_12_06 == "1.32, 1.33, 1.34, 1.35, 1.36"
    assert refused(c._k8s_version, "1.28").allowed == "a quoted EKS Kubernetes version, one of " + on_2026_12_06
    ended = refused(c._k8s_version, "1.31").allowed
    assert ended.startswith(f"a version EKS still creates, one of {on_2026_12_06}: Kubernetes 1.31 reached the end "
                            "of EKS extended support on 2026-11-26")
    agree(c._k8s_version, ["1.34", "1.35"], ["1.28", "1.99", 1.35, None])


@pytest.mark.parametrize("value, fix", [
    (1.34, 'YAML read the number 1.34, not text (unquoted, 1.30 is the number 1.3); quote it: kubernetesVersion: '
           '"1.34"; supported: '),
    (1.31, 'YAML read the number 1.31, not text (unquoted, 1.30 is the number 1.3); quote it: kubernetesVersion: '
           '"1.31"; supported: '),
    (1.3, 'YAML read the number 1.3, not text (unquoted, 1.30 is the number 1.3); quoted, 1.30 is not supported '
          'either: use one of them, e.g. kubernetesVersion: "1.35"; supported: '),
    (2, 'YAML read the number 2, not text (unquoted, 1.30 is the number 1.3); quoted, 2.00 is not supported '
        'either: use one of them, e.g. kubernetesVersion: "1.35"; supported: '),
])
def test_an_unquoted_kubernetes_version_is_told_how_to_quote_it(on_2026_12_06, value, fix):
    assert refused(c._k8s_version, value).allowed == "a quoted EKS Kubernetes version: " + fix + on_2026_12_06


def test_a_boolean_kubernetes_version_is_no_number_yaml_read():
    assert refused(c._k8s_version, True).allowed.startswith("a quoted EKS Kubernetes version, one of ")


# --- mappings -----------------------------------------------------------------------------------------------

def test_prices_are_usd_per_hour_of_planned_gpu_types():
    got = c._prices({"p4d.24xlarge": 21.96, "g5.xlarge": 1}, KEY)
    assert got == {"p4d.24xlarge": 21.96, "g5.xlarge": 1.0} and type(got["g5.xlarge"]) is float
    assert c._prices(None, KEY) == {}
    assert refused(c._prices, [21.96]).allowed == ("a mapping of instance type to USD per hour, e.g. "
                                                   "{p4d.24xlarge: 21.96}")
    agree(c._prices, [{}, None, {"p4d.24xlarge": 21.96}, {"g5.xlarge": 1}],
          [[21.96], "p4d", {"p4d.24xlarge": 0}, {"m7i.large": 0.1}, {"p4d.24xlarge": "1"}, {"p4d.24xlarge": True}])


def test_every_bad_price_is_named_by_its_instance_type():
    with pytest.raises(ConfigErrors) as e:
        c._prices({"p4d.24xlrage": 18.0, "g5.xlarge": 0, "g6.xlarge": math.inf, "p5.48xlarge": "55",
                   "g6e.xlarge": -1.5, "g4dn.xlarge": False, "p4de.24xlarge": 30}, KEY)
    errors = [(x.key, x.value) for x in e.value.errors]
    assert errors == [(KEY + ".p4d.24xlrage", 18.0), (KEY + ".g5.xlarge", 0), (KEY + ".g6.xlarge", math.inf),
                      (KEY + ".p5.48xlarge", "55"), (KEY + ".g6e.xlarge", -1.5), (KEY + ".g4dn.xlarge", False)]
    unknown, *prices = e.value.errors
    assert unknown.allowed.startswith("a price for a GPU instance type this program plans: did you mean "
                                      "p4d.24xlarge? p4d.24xlarge, p4de.24xlarge")
    assert {x.allowed for x in prices} == {"a price in USD per hour, a number greater than 0"}


def test_retained_mig_layouts_are_mig_parted_entries_by_label_value():
    entries = {"all-balanced": [{"devices": "all", "mig-enabled": True, "mig-devices": {"1g.5gb": 2}}]}
    assert c._mig_parted_entries(entries, KEY) == entries
    bad = [[entries], {"all balanced": [{}]}, {"all-balanced": []}, {"all-balanced": [1]}, {"all-balanced": {}},
           {7: [{}]}, {"a" * 64: [{}]}]
    for v in bad:
        assert refused(c._mig_parted_entries, v).allowed.startswith(
            "a map of layout label value to its mig-parted entries, as make diff prints them, e.g. {all-balanced: "
            "[{devices: all, mig-enabled: true, mig-devices: {1g.5gb: 2, 2g.10gb: 1, 3g.20gb: 1}}]}"), v
    agree(c._mig_parted_entries, [{}, entries, {"a" * 63: [{}]}], [v for v in bad if not isinstance(v, dict)
                                                                   or all(isinstance(k, str) for k in v)])


def test_selector_labels_are_string_values_under_non_empty_names():
    assert c._labels({"release": "prom", "team": ""}, KEY) == {"release": "prom", "team": ""}
    for v in ({"": "x"}, {"team": 1}, {1: "x"}, ["team"], None):
        assert refused(c._labels, v).allowed == "a mapping of Kubernetes label names to string values"
    agree(c._labels, [{}, {"release": "prom"}], [{"": "x"}, {"team": 1}, ["team"], None])


# --- the model's derived values -------------------------------------------------------------------------

def test_a_network_without_a_vpc_id_is_new_and_its_block_defaults_to_10_0_0_0_16():
    assert c.NetworkConfig().existing is False and c.NetworkConfig().cidr == "10.0.0.0/16"
    assert c.NetworkConfig(vpcCidr="172.16.0.0/20").cidr == "172.16.0.0/20"
    assert c.NetworkConfig(vpcId="vpc-0abc").existing is True


# --- the check factories, building checks as the model's fields do ------------------------------------------

def test_an_integer_check_takes_its_range_with_both_edges_and_no_boolean():
    zones = c._int_between(2, 6)
    assert zones(2, KEY) == 2 and zones(6, KEY) == 6
    for v in (1, 7, True, "3", 3.0, None):
        assert refused(zones, v).allowed == "an integer from 2 to 6", v
    assert zones.schema == {"type": "integer", "minimum": 2, "maximum": 6}
    agree(zones, [2, 4, 6], [1, 7, True, "3", 3.5])
    gpus = c._int_between(1, 8, "no instance type here has more than 8 GPUs")
    assert refused(gpus, 9).allowed == "an integer from 1 to 8 (no instance type here has more than 8 GPUs)"


def test_a_choice_check_takes_its_words_and_says_why_a_refused_one_is_refused():
    strategy = c._one_of("none", "single", "mixed")
    assert strategy("mixed", KEY) == "mixed"
    assert refused(strategy, "Mixed").allowed == "one of none, single, mixed"
    assert refused(strategy, 1).allowed == 'YAML read the number 1, not text: quote it, e.g. "1"; one of none, single, mixed'
    assert strategy.schema == {"type": "string", "enum": ["none", "single", "mixed"]}
    agree(strategy, ["none", "mixed"], ["Mixed", "", 1, None])
    capacity = c._one_of("ON_DEMAND", "SPOT", why={"CAPACITY_BLOCK": "not supported yet"})
    assert capacity("SPOT", KEY) == "SPOT"
    assert refused(capacity, "CAPACITY_BLOCK").allowed == "not supported yet; use one of ON_DEMAND, SPOT"
    assert refused(capacity, "spot").allowed == "one of ON_DEMAND, SPOT"
    assert refused(capacity, ["CAPACITY_BLOCK"]).allowed == "one of ON_DEMAND, SPOT"  # a list is no refused word


def test_a_pinned_version_takes_that_version_only_and_says_why():
    pinned = c._pinned("v26.7.0", "the chart values it is given")
    assert pinned("v26.7.0", KEY) == "v26.7.0"
    want = ("v26.7.0, the only version this program takes: the chart values it is given are written and tested "
            "against v26.7.0, so another version is a change to the program (gpu_slicing/config.py), not to a stack")
    assert refused(pinned, "v26.3.0").allowed == want
    assert refused(pinned, 26.7).allowed == ("YAML read the number 26.7, not text (unquoted, trailing zeros are lost: "
                                             "1.30 reads as 1.3): quote the value as you wrote it; " + want)
    assert pinned.schema == {"type": "string", "enum": ["v26.7.0"]}
    agree(pinned, ["v26.7.0"], ["v26.3.0", "26.7.0", 26.7])


def test_a_patterned_string_check_takes_what_its_pattern_matches():
    ami = c._like(r"^v[0-9]{8}$", "vYYYYMMDD")
    assert ami("v20261118", KEY) == "v20261118"
    for v in ("20261118", "v2026111", "v202611180", "xv20261118", 20261118, None):
        assert refused(ami, v).allowed == "a string like vYYYYMMDD", v
    assert ami.schema == {"type": "string", "pattern": r"^v[0-9]{8}$"}
    agree(ami, ["v20261118"], ["20261118", "v2026111", "v202611180", 20261118])


def test_a_list_check_reports_every_bad_item_by_index():
    subnets = c._list_of(c._string)
    assert subnets(["subnet-a", "subnet-b"], KEY) == ("subnet-a", "subnet-b")
    assert subnets(("subnet-a", "subnet-a"), KEY) == ("subnet-a", "subnet-a")  # no uniqueness asked
    assert subnets([], KEY) == ()
    assert refused(subnets, "subnet-a").allowed == "a list"
    with pytest.raises(ConfigErrors) as e:
        subnets(["", "subnet-b", 7], KEY)
    assert [(x.key, x.value) for x in e.value.errors] == [(KEY + "[0]", ""), (KEY + "[2]", 7)]
    assert subnets.schema == {"type": "array", "items": {"type": "string", "minLength": 1}}
    agree(subnets, [[], ["subnet-a", "subnet-a"]], ["subnet-a", [""], [7]])


def test_a_list_check_with_a_minimum_and_no_duplicates():
    types = c._list_of(c._string, min_len=2, unique=True)
    assert types(["a", "b"], KEY) == ("a", "b")
    assert refused(types, ["a"]).allowed == "a list of at least 2 item(s)"
    assert refused(types, "ab").allowed == "a list of at least 2 item(s)"
    assert refused(types, ["a", "b", "a"]).allowed == "a list without duplicates"
    assert types.schema == {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 2,
                            "uniqueItems": True}
    agree(types, [["a", "b"]], [["a"], ["a", "b", "a"], "ab"])
