"""Bad stack config is rejected before anything is registered, with the key, the value and what is allowed."""
from __future__ import annotations

import json
import re

import pytest
import yaml

from conftest import ROOT, dev_config, run
from gpu_slicing.config import NAMESPACE
from gpu_slicing.stack import parse_config
from gpu_slicing.errors import ConfigError, ConfigErrors

NS = NAMESPACE + ":"


def _set(cfg: dict, path: str, value) -> dict:
    """Set `cluster.name` or `nodeGroups[0].maxSize` in the stack config (None deletes)."""
    top, _, rest = path.partition(".")
    key = NS + top.split("[")[0]
    if "[" in top and not rest:
        raise ValueError(path)
    if not rest:
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = value
        return cfg
    node = cfg.setdefault(key, {})
    if "[" in top:
        node = node[int(top.split("[")[1].rstrip("]"))]
    parts = rest.split(".")
    for p in parts[:-1]:
        node = node[int(p)] if p.isdigit() else node.setdefault(p, {})
    if value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value
    return cfg


BAD = [
    # (path, value, key named in the error, words of what is allowed)
    ("nodeGroup", [], NS + "nodeGroup", "did you mean 'nodeGroups'"),
    ("cluster.nmae", "x", NS + "cluster.nmae", "did you mean 'name'"),
    ("cluster.name", "GPU_dev", NS + "cluster.name", "lowercase DNS label"),
    ("cluster.kubernetesVersion", 1.34, NS + "cluster.kubernetesVersion", "quoted EKS Kubernetes version"),
    ("cluster.publicAccessCidrs", [], NS + "cluster.publicAccessCidrs", "at least one CIDR"),
    ("network.vpcCidr", "10.0.0.1/16", NS + "network.vpcCidr", "host bits zero"),
    ("nodeGroups[0].maxSize", "3", NS + "nodeGroups[0].maxSize", "an integer from 1 to 100"),
    ("nodeGroups[0].desiredSize", 5, NS + "nodeGroups[0]", "minSize <= desiredSize <= maxSize"),
    ("nodeGroups[0].instanceType", "p9.mega", NS + "nodeGroups[0].instanceType", "p4d.24xlarge"),
    ("nodeGroups[0].migLayout", "all-1g.10gb-typo", NS + "nodeGroups[0].migLayout", "all-balanced"),
    ("nodeGroups[0].capacityType", "on-demand", NS + "nodeGroups[0].capacityType", "ON_DEMAND"),
    ("workloads[0].pool", "p5-pool", NS + "workloads[0].pool", "p4d-balanced"),
    ("workloads[0].profile", "1g.10gb", NS + "workloads[0].profile", "layout all-balanced"),
    ("workloads[0].profile", "1g.18gb", NS + "workloads[0].profile", "1g.5gb"),
    # nothing scales a node group: 16 x 1g.5gb per p4d at desiredSize 1 (docs/facts.md §1.6, 10)
    ("workloads[0].replicas", 17, NS + "nodeGroups[0].desiredSize", "raise desiredSize of p4d-balanced to 2"),
    ("gpuOperator.migStrategy", "single", NS + "nodeGroups[0].migLayout", "single"),
    ("gpuOperator.version", "v23.9.0", NS + "gpuOperator.version", "v26.7.0"),
    ("maxGpuNodes", 2, NS + "maxGpuNodes", "at least the 7 GPU nodes"),  # maxSize 3 + maxNodes 4
    ("maxGpuNodes", None, NS + "maxGpuNodes", "required"),
]


@pytest.mark.parametrize("path,value,key,allowed", BAD, ids=[f"{b[0]}={b[1]!r}" for b in BAD])
def test_bad_config_names_key_value_and_allowed(path, value, key, allowed):
    cfg = _set(dev_config(), path, value)
    with pytest.raises(ConfigError) as e:
        parse_config(cfg)
    assert e.value.key == key, str(e.value)
    assert allowed in str(e.value)


def test_guides_56_slices_on_all_balanced_never_fit_and_the_error_suggests_a_layout():
    cfg = dev_config()
    cfg[NS + "workloads"] = [{"name": "mig1-5", "profile": "1g.5gb", "replicas": 56, "pool": "p4d-balanced"}]
    with pytest.raises(ConfigError) as e:
        parse_config(cfg)
    msg = str(e.value)
    assert e.value.key == NS + "nodeGroups[0].desiredSize"
    assert "16 free" in msg and "56" in msg  # 16 per node x desiredSize 1 < 56 (docs/facts.md §1.6)
    assert "layout all-1g.5gb on p4d-balanced: all-1g.5gb gives 56" in msg


def test_gpus_on_a_mixed_mig_pool_is_rejected_because_nvidia_gpu_is_zero():
    cfg = dev_config()
    cfg[NS + "workloads"] = [{"name": "whole", "gpus": 1, "replicas": 1, "pool": "p4d-balanced"}]
    with pytest.raises(ConfigError) as e:
        parse_config(cfg)
    assert e.value.key == NS + "workloads[0].gpus"
    assert "nvidia.com/gpu: 0" in str(e.value)


def test_custom_layout_that_cannot_exist_is_rejected_with_the_reason():
    cfg = dev_config()
    cfg[NS + "migLayouts"] = {"too-big": [{"devices": "all", "profiles": {"4g.20gb": 2}}]}
    cfg[NS + "nodeGroups"][0]["migLayout"] = "too-big"
    with pytest.raises(ConfigError) as e:
        parse_config(cfg)
    assert "8 compute slices; a GPU has 7" in str(e.value)


def test_existing_vpc_needs_two_private_subnets():
    cfg = dev_config()
    cfg[NS + "network"] = {"vpcId": "vpc-0abc", "privateSubnetIds": ["subnet-1"], "publicSubnetIds": ["subnet-9"]}
    with pytest.raises(ConfigError) as e:
        parse_config(cfg)
    assert e.value.key == NS + "network.privateSubnetIds"


def test_engine_json_strings_parse_like_yaml_objects():
    """The engine hands structured values over as JSON strings; both forms mean the same stack."""
    import json
    cfg = dev_config()
    as_engine = {k: v if isinstance(v, str) else json.dumps(v) for k, v in cfg.items()}
    assert parse_config(as_engine) == parse_config(cfg)


def test_defaults_live_in_the_model():
    cfg = parse_config({NS + "cluster": {"name": "c", "publicAccessCidrs": ["10.1.0.0/16"]}, NS + "maxGpuNodes": 0})
    assert cfg.gpu_operator.version == "v26.7.0" and cfg.gpu_operator.mig_strategy == "mixed"
    assert cfg.system_node_group.size == 2 and cfg.network.cidr == "10.0.0.0/16"
    assert cfg.karpenter.enabled is False and cfg.node_groups == ()


@pytest.mark.parametrize("preview", [True, False], ids=["preview", "up"])
@pytest.mark.parametrize("path,value", [("nodeGroups[0].maxSize", 0), ("workloads[0].pool", "nope"),
                                        ("clusterr", {"name": "x"})])
def test_invalid_config_registers_nothing(path, value, preview):
    r = run(_set(dev_config(), path, value), preview=preview)
    assert isinstance(r.error, ConfigError) and r.error.key == NS + path, r.error
    assert r.registrations == []


def test_docs_config_documents_every_config_key():
    from conftest import ROOT
    from gpu_slicing.config import documented_keys

    rows = [line for line in (ROOT / "docs" / "config.md").read_text().splitlines() if line.startswith("| `")]
    for prefix, keys in documented_keys().items():
        for key, _, _ in keys:
            head = f"| `{prefix}." if prefix else "| `"
            assert any(line.startswith(head) and key in line.split("|")[1] for line in rows), f"{prefix}.{key}"


# --- the stack file and its namespaces --------------------------------------------------------------

def _error(cfg: dict) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        parse_config(cfg)
    return e.value


@pytest.mark.parametrize("key,hint", [("gpu-slicng:workloads", "did you mean gpu-slicing:workloads?"),
                                      ("gpuslicing:cluster", "did you mean gpu-slicing:cluster?"),
                                      ("kubernates:kubeconfig", "did you mean kubernetes:kubeconfig?"),
                                      ("azure:location", "known namespaces: gpu-slicing, aws")])
def test_a_key_of_an_unknown_namespace_is_refused_with_a_suggestion(key, hint):
    cfg = dev_config()
    cfg[key] = cfg.pop(NS + "workloads")
    e = _error(cfg)
    assert e.key == key and hint in str(e)


def test_provider_and_pulumi_namespaces_are_accepted():
    cfg = dev_config()
    cfg.update({"aws:profile": "dev", "eks:x": "1", "kubernetes:enableServerSideApply": "true",
                "pulumi:tags": {"team": "ml"}})
    assert parse_config(cfg).cluster.name == "gpu-dev"


def test_the_programs_own_config_loader_sees_a_namespace_typo():
    """components/stack_config.load() hands every key to the parser: a typo is refused, nothing registered."""
    cfg = dev_config()
    cfg["gpu-slicng:workloads"] = cfg.pop(NS + "workloads")
    r = run(cfg)
    assert isinstance(r.error, ConfigError) and r.error.key == "gpu-slicng:workloads"
    assert r.registrations == []


def _stack_text(text: str):
    from gpu_slicing.stack_file import parse_stack_text

    return parse_stack_text(text, "Pulumi.t.yaml")


@pytest.mark.parametrize("text,key,words", [
    ("config:\n  gpu-slicing:cluster: {name: a}\n  gpu-slicing:cluster: {name: b}\n",
     "gpu-slicing:cluster", "line 2 and again on line 3"),
    ("config:\n  gpu-slicing:nodeGroups:\n    - name: a\n      maxSize: 1\n      maxSize: 2\n",
     "gpu-slicing:nodeGroups[0].maxSize", "line 4 and again on line 5"),
    ("config:\n  a:b: 1\nconfig:\n  a:b: 2\n", "config", "line 1 and again on line 3"),
    ("- config: {}\n", "Pulumi.t.yaml", "a YAML mapping with a config: key"),
    ("just text\n", "Pulumi.t.yaml", "a YAML mapping with a config: key"),
    ("config: [a, b]\n", "config", "a mapping of <namespace>:<key>"),
    ("config: 3\n", "config", "a mapping of <namespace>:<key>"),
    ("config:\n  1.5: x\n", "config.1.5", "YAML read the number 1.5; quote it"),
    ("confg: {}\n", "confg", "did you mean 'config'?"),
    ("config: {a: [1, 2\n", "Pulumi.t.yaml", "valid YAML"),
    ("config:\n\tgpu-slicing:maxGpuNodes: 1\n", "Pulumi.t.yaml", "line 2"),
    # a key given twice beside a merge key (<<: *a): the mapping's own, the merged mapping's, the merge key's
    ("config:\n  x:\n    - &a {name: a}\n    - <<: *a\n      name: b\n      name: c\n",
     "x[1].name", "line 5 and again on line 6"),
    ("config:\n  x:\n    - &a\n      name: a\n      name: b\n    - <<: *a\n", "x[0].name",
     "line 4 and again on line 5"),
    ("config:\n  x:\n    - &a {name: a}\n    - <<: *a\n      <<: *a\n", "x[1].<<", "line 4 and again on line 5"),
])
def test_a_stack_file_pulumi_would_refuse_is_a_config_error(text, key, words):
    with pytest.raises(ConfigError) as e:
        _stack_text(text)
    assert e.value.key == key and words in str(e.value), str(e.value)


@pytest.mark.parametrize("value, shown", [
    ("0.37.0", "'0.37.0'"), (["0.0.0.0/0", "a b", "1.34"], "[0.0.0.0/0, 'a b', '1.34']"),
    ({"timeSlicing": {"replicas": 4, "renameByDefault": False}},
     "{timeSlicing: {replicas: 4, renameByDefault: false}}"),
    (("x", None, True), "[x, null, true]"), (3, "3"),
])
def test_errors_show_values_as_a_stack_file_writes_them(value, shown):
    assert str(ConfigError("k", value, "allowed")) == f"k: {shown} is not valid: allowed"


def test_an_unset_value_reads_as_not_set_and_a_pinned_version_says_why():
    assert str(ConfigError("k", None, "required")) == "k: not set: required"
    cfg = dev_config()
    cfg[NS + "karpenter"] = {**cfg[NS + "karpenter"], "version": "0.37.0"}
    with pytest.raises(ConfigError) as e:
        parse_config(cfg)
    assert e.value.key == NS + "karpenter.version"
    assert "1.14.1, the only version this program takes" in str(e.value)
    assert "checks against its CRDs" in str(e.value) and "change to the program" in str(e.value)


def test_merge_keys_load_as_yaml_merges_them():
    """`<<: *base` (and a list of bases) as Pulumi's loader reads it: the mapping's own key overrides the merged
    one, the first base in the list wins over a later one, nothing is a duplicate."""
    text = ("config:\n  x:\n    - &a {name: a, size: 1, disk: 50}\n    - &b {name: b, size: 2, gpu: 8}\n"
            "    - <<: [*a, *b]\n      name: c\n")
    assert _stack_text(text)["x"][2] == {"name": "c", "size": 1, "disk": 50, "gpu": 8}


def test_a_stack_file_with_pulumis_own_top_level_keys_loads():
    text = "secretsprovider: awskms://alias/x\nencryptedkey: abc\nenvironment: [shared]\nconfig:\n  aws:region: us-west-2\n"
    assert _stack_text(text) == {"aws:region": "us-west-2"}
    assert _stack_text("") == {} and _stack_text("config:\n") == {}


def test_binary_missing_and_non_utf8_files_are_config_errors(tmp_path):
    from gpu_slicing.stack_file import load_stack_file

    binary, latin = tmp_path / "b.yaml", tmp_path / "l.yaml"
    binary.write_bytes(b"config:\n\x00\x01\x02")
    latin.write_bytes("config:\n  aws:region: caf\xe9\n".encode("latin-1"))
    for path, words in ((binary, "not a binary file"), (latin, "UTF-8"), (tmp_path / "none.yaml", "an existing"),
                        (tmp_path, "an existing")):
        with pytest.raises(ConfigError) as e:
            load_stack_file(path)
        assert e.value.key == str(path) and words in str(e.value)


def test_the_committed_dev_stack_loads_strictly_as_it_does_plainly():
    from gpu_slicing.stack_file import load_stack_file

    assert load_stack_file(ROOT / "Pulumi.dev.yaml") == dev_config()


# --- keys and values --------------------------------------------------------------------------------

@pytest.mark.parametrize("cidr,words", [("fd00::/56", "IPv4 only"), ("10.0.0.0/8", "/16 to /28"),
                                        ("10.0.0.0/15", "/16 to /28"), ("10.0.0.0/29", "/16 to /28"),
                                        ("10.0.0.0/32", "/16 to /28"), ("10.0.0.0/24", "/20 or larger"),
                                        ("ten/16", "IPv4 CIDR block"), (16, "IPv4 CIDR block")])
def test_vpc_cidr_is_ipv4_sized_as_aws_allows(cidr, words):
    cfg = _set(dev_config(), "network.vpcCidr", cidr)
    e = _error(cfg)
    assert e.key == NS + "network.vpcCidr" and words in str(e), str(e)


@pytest.mark.parametrize("cidr", ["10.0.0.0/16", "172.16.0.0/20", "192.168.0.0/18"])
def test_vpc_cidr_from_16_to_20_plans(cidr):
    assert parse_config(_set(dev_config(), "network.vpcCidr", cidr)).network.cidr == cidr


@pytest.mark.parametrize("cidr", ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "203.0.113.8/29",
                                  "198.51.100.77/32"])
def test_documentation_ranges_are_refused_as_public_access_cidrs(cidr):
    cfg = _set(dev_config(), "cluster.publicAccessCidrs", ["10.1.0.0/16", cidr])
    e = _error(cfg)
    assert e.key == NS + "cluster.publicAccessCidrs[1]"
    assert "RFC 5737" in str(e) and "no real client" in str(e)


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "203.0.0.0/16", "198.51.0.0/16", "52.94.76.5/32"])
def test_real_ranges_and_supersets_of_documentation_ranges_are_accepted(cidr):
    cfg = parse_config(_set(dev_config(), "cluster.publicAccessCidrs", [cidr]))
    assert cfg.cluster.public_access_cidrs == (cidr,)


def test_public_access_cidrs_are_ipv4_only():
    e = _error(_set(dev_config(), "cluster.publicAccessCidrs", ["2001:db8::/32"]))
    assert e.key == NS + "cluster.publicAccessCidrs[0]" and "IPv4 only" in str(e)


def test_the_committed_dev_stack_is_reachable_from_anywhere():
    """Deployable as committed from a laptop and GitHub-hosted runners (their addresses are not fixed)."""
    assert parse_config(dev_config()).cluster.public_access_cidrs == ("0.0.0.0/0",)


@pytest.mark.parametrize("value,words", [(1.3, '1.30 is not supported either: use one of them, e.g. '
                                                'kubernetesVersion: "1.35"'),  # advice that works, not "1.30"
                                         (1.34, 'quote it: kubernetesVersion: "1.34"'),
                                         (1, 'YAML read the number 1')])
def test_an_unquoted_kubernetes_version_says_yaml_read_a_number(value, words):
    e = _error(_set(dev_config(), "cluster.kubernetesVersion", value))
    assert e.key == NS + "cluster.kubernetesVersion"
    assert "YAML read the number" in str(e) and words in str(e), str(e)


def test_other_names_read_as_numbers_say_so_too():
    e = _error(_set(dev_config(), "nodeGroups[0].name", 4090))
    assert e.key == NS + "nodeGroups[0].name" and 'quote it, e.g. "4090"' in str(e)


@pytest.mark.parametrize("itype", ["p4d.24xlarge", "g5.xlarge", "g6e.2xlarge", "g4dn.xlarge", "p3.2xlarge",
                                   "gr6.4xlarge", "p6-b200.48xlarge"])
def test_a_gpu_instance_type_is_refused_for_the_system_node_group(itype):
    e = _error(_set(dev_config(), "systemNodeGroup.instanceType", itype))
    assert e.key == NS + "systemNodeGroup.instanceType" and "add-ons" in str(e)


@pytest.mark.parametrize("itype", ["m7i.large", "m7g.xlarge", "c7i.2xlarge", "r6i.large"])
def test_general_purpose_system_nodes_are_accepted(itype):
    assert parse_config(_set(dev_config(), "systemNodeGroup.instanceType", itype)).system_node_group.instance_type == itype


def test_karpenter_durations_follow_the_nodepool_crd_pattern_exactly():
    from gpu_slicing.config import _DURATION_RE
    from tools import refdata

    spec = refdata.crd_schemas()[("karpenter.sh/v1", "NodePool")]["properties"]["spec"]["properties"]
    patterns = {spec["disruption"]["properties"]["consolidateAfter"]["pattern"],
                spec["template"]["properties"]["spec"]["properties"]["expireAfter"]["pattern"]}
    assert patterns == {_DURATION_RE.pattern}


@pytest.mark.parametrize("value,ok", [("Never", True), ("720h", True), ("1h30m", True), ("0s", True),
                                      ("never", False), ("30d", False), ("10", False), ("", False),
                                      ("10m\n", False), (600, False)])
@pytest.mark.parametrize("field", ["consolidateAfter", "expireAfter"])
def test_never_and_go_durations_are_accepted(field, value, ok):
    cfg = dev_config()
    cfg[NS + "karpenter"]["nodePools"][0][field] = value
    if ok:
        pool = parse_config(cfg).karpenter.node_pools[0]
        assert getattr(pool, "consolidate_after" if field == "consolidateAfter" else "expire_after") == value
    else:
        e = _error(cfg)
        assert e.key == NS + f"karpenter.nodePools[0].{field}" and "Never" in str(e)


def test_capacity_blocks_and_reserved_capacity_are_refused_with_the_reason():
    e = _error(_set(dev_config(), "nodeGroups[0].capacityType", "CAPACITY_BLOCK"))
    assert e.key == NS + "nodeGroups[0].capacityType"
    assert "capacity-block market type" in str(e) and "Availability Zone" in str(e)
    cfg = dev_config()
    cfg[NS + "karpenter"]["nodePools"][0]["capacityTypes"] = ["on-demand", "reserved"]
    e = _error(cfg)
    assert e.key == NS + "karpenter.nodePools[0].capacityTypes" and "capacityReservationSelectorTerms" in str(e)


def test_the_docs_do_not_offer_refused_capacity_types():
    from conftest import ROOT

    rows = {line.split("|")[1].strip(): line for line in (ROOT / "docs" / "config.md").read_text().splitlines()
            if line.startswith("| `")}
    assert "`CAPACITY_BLOCK` is refused" in rows["`nodeGroups[].capacityType`"]
    assert "`reserved` is refused" in rows["`karpenter.nodePools[].capacityTypes`"]


@pytest.mark.parametrize("arn", ["arn:aws:iam::123456789012:role/admins",
                                 "arn:aws:iam::123456789012:role/ci/github/deploy-role",
                                 "arn:aws-cn:iam::123456789012:role/admins",
                                 "arn:aws-us-gov:iam::123456789012:role/team+ops@x=1,y.z"])
def test_admin_role_arns_accept_every_partition_and_paths(arn):
    assert parse_config(_set(dev_config(), "cluster.adminRoleArns", [arn])).cluster.admin_role_arns == (arn,)


@pytest.mark.parametrize("arns,key,words", [
    (["arn:aws:sts::123456789012:assumed-role/admins/jane"], "[0]", "the role's own ARN"),
    (["arn:aws:iam::123456789012:user/jane"], "[0]", "an IAM role ARN"),
    (["arn:aws:iam::12345:role/admins"], "[0]", "an IAM role ARN"),
    (["arn:aws:iam::123456789012:role/" + "r" * 65], "[0]", "an IAM role ARN"),
    (["arn:aws:iam::123456789012:role/a", "arn:aws:iam::123456789012:role/a"], "", "without duplicates"),
    ("arn:aws:iam::123456789012:role/a", "", "a list"),
])
def test_bad_admin_role_arns_are_refused(arns, key, words):
    e = _error(_set(dev_config(), "cluster.adminRoleArns", arns))
    assert e.key == NS + "cluster.adminRoleArns" + key and words in str(e), str(e)


def test_admin_role_arns_default_to_none():
    assert parse_config(dev_config()).cluster.admin_role_arns == ()


def test_price_per_hour_overrides_known_instance_types():
    cfg = parse_config(_set(dev_config(), "pricePerHour", {"p4d.24xlarge": 18.5, "g5.xlarge": 1}))
    assert cfg.price_per_hour == {"p4d.24xlarge": 18.5, "g5.xlarge": 1.0}
    assert parse_config(dev_config()).price_per_hour == {}


@pytest.mark.parametrize("prices,key,words", [
    ({"p4d.24xlrage": 18.0}, "pricePerHour.p4d.24xlrage", "did you mean p4d.24xlarge?"),
    ({"m7i.large": 0.1}, "pricePerHour.m7i.large", "a GPU instance type this program plans"),
    ({"p4d.24xlarge": 0}, "pricePerHour.p4d.24xlarge", "greater than 0"),
    ({"p4d.24xlarge": -3.0}, "pricePerHour.p4d.24xlarge", "greater than 0"),
    ({"p4d.24xlarge": "22"}, "pricePerHour.p4d.24xlarge", "a number"),
    ({"p4d.24xlarge": True}, "pricePerHour.p4d.24xlarge", "a number"),
    ({"p4d.24xlarge": float("inf")}, "pricePerHour.p4d.24xlarge", "a number"),
    ([22.0], "pricePerHour", "a mapping of instance type"),
])
def test_bad_prices_are_refused(prices, key, words):
    e = _error(_set(dev_config(), "pricePerHour", prices))
    assert e.key == NS + key and words in str(e), str(e)


# --- names AWS limits -------------------------------------------------------------------------------

def test_a_node_group_name_over_eks_63_characters_names_the_node_group():
    """EKS allows 63 characters; the name is <cluster>-<nodeGroup>-<7 hex>, so the stem may have 55."""
    cfg = _set(dev_config(), "cluster.name", "c" * 40)
    cfg[NS + "nodeGroups"][0]["name"] = "n" * 15  # 40 + 1 + 15 = 56, + 8 = 64
    cfg[NS + "workloads"] = [w for w in cfg[NS + "workloads"] if w["pool"] != "p4d-balanced"]
    e = _error(cfg)
    assert e.key == NS + "nodeGroups[0].name" and "over the limit of 55" in str(e) and "56 characters" in str(e)


def test_the_auto_named_node_role_over_iam_64_characters_names_the_node_group():
    cfg = _set(dev_config(), "cluster.name", "c" * 25)
    cfg[NS + "nodeGroups"][0]["name"] = "n" * 26  # 25 + 1 + 26 + len("-role") + len("-<7 hex>") = 65
    cfg[NS + "workloads"] = [w for w in cfg[NS + "workloads"] if w["pool"] != "p4d-balanced"]
    e = _error(cfg)
    assert e.key == NS + "nodeGroups[0].name" and "over the limit of 64" in str(e) and "65 characters" in str(e)
    cfg[NS + "nodeGroups"][0]["name"] = "n" * 25  # exactly 64
    assert parse_config(cfg).node_groups[0].name == "n" * 25


def test_the_longest_cluster_name_keeps_every_karpenter_name_within_aws_limits():
    """Cluster names stop at 40 characters, so KarpenterControllerRole-<cluster> is at most IAM's 64 and
    Karpenter-<cluster>-<event> at most EventBridge's 64."""
    from gpu_slicing.config import aws_names

    raw = _set(dev_config(), "cluster.name", "c" * 40)
    raw[NS + "nodeGroups"] = []  # <40 characters>-p4d-balanced-role-<7 hex> would be over 64
    raw[NS + "workloads"] = [w for w in raw[NS + "workloads"] if w["pool"] != "p4d-balanced"]
    cfg = parse_config(raw)
    names = {d.name: d.limit for d in aws_names(cfg)}
    assert names["KarpenterControllerRole-" + "c" * 40] == 64 and len("KarpenterControllerRole-" + "c" * 40) == 64
    assert max(len(n) for n in names if n.startswith("Karpenter-" + "c" * 40 + "-")) == 63
    assert all(len(n) <= limit for n, limit in names.items())


def test_the_names_checked_are_the_names_the_program_registers(dev_runs):
    """Every name limit-checked by the config is one the program really gives AWS or Kubernetes (explicit
    names as sent, auto-named roles as their logical name plus Pulumi's suffix), and vice versa."""
    from gpu_slicing.config import AUTONAME_SUFFIX, aws_names

    checked = {d.name for d in aws_names(parse_config(dev_config()))}
    registered = set()
    for r in dev_runs["preview"].registrations:
        if r.type == "aws:iam/role:Role":
            registered.add(r.inputs.get("name") or r.name + AUTONAME_SUFFIX)
        elif r.type == "eks:index:ManagedNodeGroup":  # GPU groups end with the token of what replaces them
            registered.add(re.sub(r"-[0-9a-f]{7}$", "", r.inputs["nodeGroupName"]))
        elif r.type in ("aws:sqs/queue:Queue", "aws:cloudwatch/eventRule:EventRule", "aws:iam/policy:Policy"):
            registered.add(r.inputs["name"])
        elif r.type.startswith("kubernetes:karpenter."):
            registered.add(r.inputs["metadata"]["name"])
    assert registered == checked
    assert len(AUTONAME_SUFFIX) == len("-") + 7  # Pulumi appends "-" and 7 random hex characters


@pytest.mark.parametrize("path,value,words", [("karpenter.version", 1.14, "YAML read the number 1.14"),
                                              ("nodeGroups[0].migLayout", True, "YAML read the boolean true"),
                                              ("gpuOperator.migStrategy", False, "YAML read the boolean false")])
def test_any_text_key_read_as_a_number_or_boolean_says_to_quote_it(path, value, words):
    e = _error(_set(dev_config(), path, value))
    assert e.key == NS + path and words in str(e) and "quote" in str(e), str(e)


# --- every independent error at once ------------------------------------------------------------------

def _several(cfg: dict) -> ConfigErrors:
    with pytest.raises(ConfigErrors) as e:
        parse_config(cfg)
    return e.value


def _four_blocks_wrong() -> dict:
    """A bad CIDR, a bad int range, a typo key, a duplicate name and a missing required key, in four blocks."""
    cfg = dev_config()
    cfg[NS + "cluster"]["publicAccessCidrs"] = ["192.0.2.0/24"]
    group = cfg[NS + "nodeGroups"][0]
    group["maxSize"] = 500
    group["minSzie"] = group.pop("minSize")
    cfg[NS + "nodeGroups"].append({"name": "p4d-balanced", "instanceType": "p4d.24xlarge"})
    del cfg[NS + "karpenter"]["nodePools"][0]["instanceTypes"]
    return cfg


FOUR_BLOCKS_KEYS = [NS + "cluster.publicAccessCidrs[0]", NS + "nodeGroups[0].maxSize", NS + "nodeGroups[0].minSzie",
                    NS + "nodeGroups[1].name", NS + "karpenter.nodePools[0].instanceTypes"]


def test_every_independent_error_is_reported_at_once_in_stack_file_order():
    e = _several(_four_blocks_wrong())
    assert [x.key for x in e.errors] == FOUR_BLOCKS_KEYS
    assert (e.key, e.value) == (NS + "cluster.publicAccessCidrs[0]", "192.0.2.0/24")  # the first, for old callers
    lines = str(e).splitlines()
    assert lines[0] == "5 config errors:" and lines[1:] == [str(x) for x in e.errors]
    by_key = {x.key: x for x in e.errors}
    assert "documentation range (RFC 5737)" in by_key[NS + "cluster.publicAccessCidrs[0]"].allowed
    assert (by_key[NS + "nodeGroups[0].maxSize"].value, by_key[NS + "nodeGroups[0].maxSize"].allowed) == (
        500, "an integer from 1 to 100")
    assert by_key[NS + "nodeGroups[0].minSzie"].allowed.startswith("unknown key; did you mean 'minSize'? known keys: ")
    assert by_key[NS + "nodeGroups[1].name"].allowed == "a name not used by another entry"
    assert by_key[NS + "karpenter.nodePools[0].instanceTypes"].allowed == (
        "required (GPU instance types (one GPU model when MIG is used))")


def test_make_plan_prints_every_error_one_per_line_and_registers_nothing(tmp_path):
    import contextlib
    import io

    from tools.plan import main

    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text(yaml.safe_dump({"config": _four_blocks_wrong()}, sort_keys=False))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert main(["--config", str(path), "--quiet"]) == 2
    lines = err.getvalue().splitlines()
    assert lines[:2] == ["error: invalid config in Pulumi.bad.yaml:", "  5 config errors:"]
    assert [line.split(": ")[0].strip() for line in lines[2:7]] == FOUR_BLOCKS_KEYS
    assert lines[7:] == ["0 resources registered"]


def test_the_programs_own_loader_raises_every_error_before_registering_anything():
    r = run(_four_blocks_wrong())
    assert isinstance(r.error, ConfigErrors) and [x.key for x in r.error.errors] == FOUR_BLOCKS_KEYS
    assert r.registrations == []


def test_advise_prints_every_namespace_typo_and_exits_2(tmp_path, capsys):
    from tools.advise import main

    cfg = dev_config()
    cfg.update({"gpu-slicng:workloads": cfg.pop(NS + "workloads"), "kubernates:context": "dev"})
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text(yaml.safe_dump({"config": cfg}, sort_keys=False))
    assert main(["--config", str(path)]) == 2
    first, *errors = capsys.readouterr().err.splitlines()
    assert first == "error: 2 config errors:" and len(errors) == 2
    assert errors[0].startswith("  gpu-slicng:workloads: [") and "did you mean gpu-slicing:workloads?" in errors[0]
    assert errors[1].startswith("  kubernates:context: 'dev' is not valid: a key of a namespace this stack uses; "
                                "did you mean kubernetes:context?")


def test_every_bad_item_of_a_list_and_every_namespace_typo_is_reported():
    cfg = dev_config()
    cfg[NS + "cluster"]["publicAccessCidrs"] = ["10.0.0.0/8", "198.51.100.7/32", "10.1.0.0/16", "fe80::/64"]
    cfg["gpu-slicng:x"] = 1
    cfg["kubernates:context"] = "dev"
    e = _several(cfg)
    assert [x.key for x in e.errors] == [NS + "cluster.publicAccessCidrs[1]", NS + "cluster.publicAccessCidrs[3]",
                                         "gpu-slicng:x", "kubernates:context"]
    assert "IPv4 only" in e.errors[1].allowed and "did you mean kubernetes:context?" in e.errors[3].allowed


def test_cross_field_rules_that_do_not_depend_on_each_other_are_reported_together():
    cfg = dev_config()
    cfg[NS + "cluster"]["publicAccessCidrs"] = []
    cfg[NS + "network"] = {"vpcId": "vpc-1", "privateSubnetIds": ["subnet-1"], "publicSubnetIds": ["subnet-2"]}
    cfg[NS + "nodeGroups"][0]["desiredSize"] = 5
    e = _several(cfg)
    assert [x.key for x in e.errors] == [NS + "cluster.publicAccessCidrs", NS + "network.privateSubnetIds",
                                         NS + "nodeGroups[0]"]


def test_every_bad_custom_layout_is_reported_together():
    cfg = dev_config()
    cfg[NS + "migLayouts"] = {"all-mine": [{"devices": "all", "profiles": {"1g.5gb": 7}}],
                              "fine": [{"devices": "all", "profiles": {"1g.5gb": 7}}],
                              "empty": []}
    e = _several(cfg)
    assert [x.key for x in e.errors] == [NS + "migLayouts.all-mine", NS + "migLayouts.empty"]
    assert "NVIDIA's layouts" in e.errors[0].allowed and "non-empty" in e.errors[1].allowed


def test_every_pool_that_cannot_resolve_and_every_workload_that_never_fits_is_reported():
    cfg = dev_config()
    cfg[NS + "nodeGroups"][0]["migLayout"] = "all-1g.20gb"  # an H100 profile: the A100 40GB has none
    cfg[NS + "karpenter"]["nodePools"][0]["migLayout"] = "all-3g.40gb"
    e = _several(cfg)
    assert [x.key for x in e.errors] == [NS + "nodeGroups[0].migLayout", NS + "karpenter.nodePools[0].migLayout"]
    assert [x.value for x in e.errors] == ["all-1g.20gb", "all-3g.40gb"]
    cfg = dev_config()
    for w in cfg[NS + "workloads"]:
        if w["name"] in ("slice-2g", "guide-1g"):
            w["replicas"] *= 10  # room for neither on the nodes that will exist
    e = _several(cfg)
    assert [x.key for x in e.errors] == [NS + "nodeGroups[0].desiredSize", NS + "karpenter.nodePools[0].maxNodes"]
    assert [x.allowed.split(":")[0] for x in e.errors] == ["workload slice-2g", "workload guide-1g"]


def test_every_nodepool_breaking_a_karpenter_rule_is_reported():
    cfg = dev_config()
    pools = cfg[NS + "karpenter"]["nodePools"]
    pools[0].update(driftSchedule="0 25 * * *", driftDuration="4h")
    pools.append({**pools[0], "name": "p4d-other", "driftSchedule": "0 3 * * *", "driftDuration": "25h", "maxNodes": 1})
    cfg[NS + "maxGpuNodes"] = 8
    e = _several(cfg)
    assert [x.key for x in e.errors] == [NS + "karpenter.nodePools[0].driftSchedule",
                                         NS + "karpenter.nodePools[1].driftDuration"]


def test_every_bad_price_is_reported():
    cfg = dev_config()
    cfg[NS + "pricePerHour"] = {"p4d.24xlarge": 0, "p5.48xlarg": 55.04, "g6e.xlarge": 1.86}
    e = _several(cfg)
    assert [x.key for x in e.errors] == [NS + "pricePerHour.p4d.24xlarge", NS + "pricePerHour.p5.48xlarg"]
    assert "greater than 0" in e.errors[0].allowed and "did you mean p5.48xlarge?" in e.errors[1].allowed


def test_a_mistyped_pool_gets_the_pool_it_resembles():
    cfg = dev_config()
    cfg[NS + "workloads"][0]["pool"] = "p4d-balancd"
    e = _error(cfg)
    assert (e.key, e.value) == (NS + "workloads[0].pool", "p4d-balancd")
    assert e.allowed == "the name of a node group or NodePool: did you mean p4d-balanced? p4d-balanced, p4d-small"


def test_a_node_group_short_of_nodes_is_told_the_cost_guard_moves_only_beyond_max_size():
    """The cost guard counts node groups at maxSize (3 here): raising desiredSize to 2 needs nothing else."""
    cfg = dev_config()
    cfg[NS + "workloads"][0]["replicas"] = 17
    e = _error(cfg)
    assert (e.key, e.value) == (NS + "nodeGroups[0].desiredSize", 1)
    assert "raise desiredSize of p4d-balanced to 2 " in e.allowed
    assert e.allowed.endswith("(up to maxSize, 3, nothing else changes; beyond it, maxSize and "
                              "gpu-slicing:maxGpuNodes (now 7; the pools may run 7 today) must grow too)")


def test_rules_across_keys_pools_nodepools_and_workloads_are_reported_in_one_run():
    """Once the shape holds, the rules that do not need each other run together: a cluster rule, a pool that
    cannot resolve, a NodePool's window, and the workloads of the pools that did resolve (those of the
    unresolved pool wait for it)."""
    cfg = dev_config()
    cfg[NS + "cluster"]["publicAccessCidrs"] = []
    cfg[NS + "nodeGroups"][0]["migLayout"] = "all-1g.20gb"  # an H100 profile on A100s
    cfg[NS + "karpenter"]["nodePools"][0]["driftSchedule"] = "0 3 * * *"  # without driftDuration
    cfg[NS + "workloads"][3]["profile"] = "3g.20gb"  # p4d-small is all-1g.5gb
    cfg[NS + "workloads"].append({"name": "lost", "profile": "1g.5gb", "pool": "p4d-smal"})
    e = _several(cfg)
    assert [x.key for x in e.errors] == [
        NS + "cluster.publicAccessCidrs", NS + "nodeGroups[0].migLayout", NS + "karpenter.nodePools[0].driftDuration",
        NS + "workloads[3].profile", NS + "workloads[4].pool"], str(e)
    assert "did you mean p4d-small?" in e.errors[4].allowed


def test_block_lists_given_as_tuples_get_the_same_checks():
    """Code may build a config with tuples (YAML never does): the duplicate-name rule still holds."""
    from gpu_slicing.config import parse_shape

    cfg = dev_config()
    group = cfg[NS + "nodeGroups"][0]
    cfg[NS + "nodeGroups"] = (group, dict(group))
    with pytest.raises(ConfigError) as e:
        parse_shape(cfg)
    assert (e.value.key, e.value.allowed) == (NS + "nodeGroups[1].name", "a name not used by another entry")


def test_every_derived_name_over_its_limit_is_reported():
    cfg = _set(dev_config(), "cluster.name", "c" * 40)
    cfg[NS + "nodeGroups"][0]["name"] = "n" * 15  # 40 + 1 + 15 = 56 > 55
    cfg[NS + "nodeGroups"].append({**cfg[NS + "nodeGroups"][0], "name": "m" * 15})
    cfg[NS + "workloads"] = [w for w in cfg[NS + "workloads"] if w["pool"] != "p4d-balanced"]
    e = _several(cfg)
    assert [x.key for x in e.errors] == [NS + "nodeGroups[0].name", NS + "nodeGroups[1].name"]
    assert all("over the limit of 55" in x.allowed for x in e.errors)
    cfg[NS + "nodeGroups"][0]["maxSize"] = 0  # another key wrong: the names are still checked
    cfg[NS + "nodeGroups"].append({"name": "Bad_Name", "instanceType": "p4d.24xlarge"})
    e = _several(cfg)
    assert [x.key for x in e.errors] == [NS + "nodeGroups[0].name", NS + "nodeGroups[0].maxSize",
                                         NS + "nodeGroups[1].name", NS + "nodeGroups[2].name"]  # file order
    assert "over the limit" not in e.errors[3].allowed and "lowercase DNS label" in e.errors[3].allowed


# --- strict types: no silent coercion, except the Pulumi CLI's text of a top-level scalar ------------

@pytest.mark.parametrize("path,value,allowed", [
    ("maxGpuNodes", True, "an integer from 0 to 1000"),
    ("nodeGroups[0].minSize", True, "an integer from 0 to 100"),
    ("nodeGroups[0].minSize", "1", "an integer from 0 to 100"),
    ("nodeGroups[0].minSize", 1.0, "an integer from 0 to 100"),
    ("karpenter.enabled", "true", "true or false"),
    ("cluster.endpointPrivateAccess", 1, "true or false"),
])
def test_values_are_never_coerced_to_the_type_a_key_takes(path, value, allowed):
    e = _error(_set(dev_config(), path, value))
    assert (e.key, e.value, e.allowed) == (NS + path, value, allowed)


def test_top_level_scalars_the_pulumi_cli_writes_as_text_are_read_as_json():
    """`pulumi config set maxGpuNodes 9` writes "9"; `pulumi config set allowDisruption true` writes "true"."""
    cfg = dev_config()
    cfg.update({NS + "maxGpuNodes": "9", NS + "allowDisruption": "true"})
    parsed = parse_config(cfg)
    assert parsed.max_gpu_nodes == 9 and parsed.allow_disruption is True
    assert _error({**cfg, NS + "maxGpuNodes": "nine"}).allowed == "an integer from 0 to 1000"


def test_the_python_names_of_keys_are_unknown_keys_in_a_stack_file():
    cfg = dev_config()
    group = cfg[NS + "nodeGroups"][0]
    group["min_size"] = group.pop("minSize")
    e = _error(cfg)
    assert e.key == NS + "nodeGroups[0].min_size" and "did you mean 'minSize'?" in e.allowed


@pytest.mark.parametrize("path,value,key,allowed", [
    ("nodeGroups", {"name": "x"}, "nodeGroups", "a YAML list with one mapping per entry"),
    ("nodeGroups", ["p4d"], "nodeGroups[0]", "a mapping with keys name, instanceType, minSize"),
    ("cluster", "gpu-dev", "cluster", "a mapping with keys name, kubernetesVersion"),
    ("maxGpuNodes", None, "maxGpuNodes", "required (cost guard, stated per stack"),
    ("clusterr", {"name": "x"}, "clusterr", "unknown key; did you mean 'cluster'?"),
])
def test_block_shapes_and_top_level_keys_name_the_full_key(path, value, key, allowed):
    e = _error(_set(dev_config(), path, value))
    assert e.key == NS + key and e.allowed.startswith(allowed), str(e)


# --- each key's range and shape, at its edges ---------------------------------------------------------------

def _integer_keys() -> list[tuple[str, int, int]]:
    """(path, minimum, maximum) of every integer key with both bounds in the committed stack.schema.json (what
    editors enforce as people type): a list entry's key as `<list>[0].<key>`."""
    import json

    def walk(node, path):
        if node.get("type") == "integer" and "maximum" in node:
            yield path, node["minimum"], node["maximum"]
        for key, child in node.get("properties", {}).items():
            yield from walk(child, f"{path}.{key}" if path else key)
        if "items" in node and isinstance(node["items"], dict):
            yield from walk(node["items"], path + "[0]")
        for child in node.get("anyOf", []):
            yield from walk(child, path)

    config = json.loads((ROOT / "stack.schema.json").read_text())["properties"]["config"]
    return [(path.removeprefix(NS), lo, hi) for path, lo, hi in walk(config, "") if ".sharing." not in path]


INTEGER_KEYS = _integer_keys()


def _put(path: str, value) -> dict:
    """The dev stack with `path` set, a list index past the first key written as _set takes it (`.0.`)."""
    top, dot, rest = path.partition(".")
    return _set(dev_config(), top + dot + rest.replace("[0]", ".0"), value)


def test_the_integer_keys_are_the_ones_the_docs_table_sizes():
    assert {p for p, _, _ in INTEGER_KEYS} == {
        "maxGpuNodes", "network.availabilityZones", "systemNodeGroup.size", "nodeGroups[0].minSize",
        "nodeGroups[0].desiredSize", "nodeGroups[0].maxSize", "nodeGroups[0].diskSizeGiB", "workloads[0].replicas",
        "workloads[0].gpus", "workloads[0].memoryGB", "karpenter.nodePools[0].maxNodes",
        "karpenter.nodePools[0].diskSizeGiB", "karpenter.nodePools[0].maxPods"}


@pytest.mark.parametrize("path, lo, hi", INTEGER_KEYS, ids=[k[0] for k in INTEGER_KEYS])
def test_integer_keys_take_their_whole_range_and_nothing_beyond(path, lo, hi):
    """The program's shape check and the schema agree at both edges; beyond them (and for a boolean, which YAML
    reads from `true`) the error names the key and the range."""
    from gpu_slicing.config import parse_shape

    def shape(value):
        return parse_shape(_put(path, value))

    for ok in (lo, hi):
        shape(ok)
    for bad in (lo - 1, hi + 1, True):
        with pytest.raises(ConfigError) as e:
            shape(bad)
        assert e.value.key == NS + path and f"an integer from {lo} to {hi}" in str(e.value), (bad, str(e.value))


SHAPES = [
    # (path, value, key named in the error, words of what is allowed)
    ("workloads[0].image", "", NS + "workloads[0].image", "a non-empty string"),
    ("workloads[0].pool", 7, NS + "workloads[0].pool", 'YAML read the number 7, not text: quote it, e.g. "7"'),
    ("karpenter.enabled", "yes", NS + "karpenter.enabled", "true or false"),
    ("observability.namespace", "Monitoring", NS + "observability.namespace", "lowercase DNS label"),
    ("systemNodeGroup.instanceType", "m7i", NS + "systemNodeGroup.instanceType", "an EC2 instance type such as m7i.large"),
    ("karpenter.amiAliasVersion", "20261118", NS + "karpenter.amiAliasVersion", "a string like vYYYYMMDD"),
    ("karpenter.amiAliasVersion", "v2026111", NS + "karpenter.amiAliasVersion", "a string like vYYYYMMDD"),
    ("karpenter.nodePools[0].instanceTypes", [], NS + "karpenter.nodePools[0].instanceTypes",
     "a list of at least 1 item(s)"),
    ("karpenter.nodePools[0].instanceTypes", ["p4d.24xlarge", "p4d.24xlarge"], NS + "karpenter.nodePools[0].instanceTypes",
     "a list without duplicates"),
    ("karpenter.nodePools[0].instanceTypes", ["p4d.24xlarge", "p9.huge"],
     NS + "karpenter.nodePools[0].instanceTypes[1]", "a GPU instance type this program knows"),
    ("karpenter.nodePools[0].capacityTypes", [], NS + "karpenter.nodePools[0].capacityTypes",
     "a list of at least 1 item(s)"),
    ("karpenter.nodePools[0].capacityTypes", ["spot", "ondemand"], NS + "karpenter.nodePools[0].capacityTypes[1]",
     "one of on-demand, spot"),
    ("cluster.logTypes", ["api", "api"], NS + "cluster.logTypes", "a list without duplicates"),
    ("cluster.logTypes", "api", NS + "cluster.logTypes", "a list"),
    ("gpuOperator.migStrategy", 1, NS + "gpuOperator.migStrategy", "YAML read the number 1"),
    ("gpuOperator.retainedMigLayouts", {"all-balanced": []}, NS + "gpuOperator.retainedMigLayouts",
     "a map of layout label value to its mig-parted entries"),
    ("gpuOperator.retainedMigLayouts", {"all balanced": [{"devices": "all"}]}, NS + "gpuOperator.retainedMigLayouts",
     "a map of layout label value to its mig-parted entries"),
    ("observability.selectorLabels", {"": "x"}, NS + "observability.selectorLabels",
     "a mapping of Kubernetes label names to string values"),
    ("network.availabilityZones", "3", NS + "network.availabilityZones", "an integer from 2 to 6"),
    ("workloads[0].image", 1.50, NS + "workloads[0].image", "YAML read the number 1.5, not text (unquoted, trailing "
     "zeros are lost: 1.30 reads as 1.3): quote the value as you wrote it; a non-empty string"),
]


@pytest.mark.parametrize("path,value,key,allowed", SHAPES, ids=[f"{s[0]}={s[1]!r}" for s in SHAPES])
def test_each_check_names_the_key_the_value_and_what_it_takes(path, value, key, allowed):
    from gpu_slicing.config import parse_shape

    with pytest.raises(ConfigError) as e:
        parse_shape(_put(path, value))
    assert e.value.key == key and allowed in e.value.allowed, str(e.value)
    assert e.value.value == value or key != NS + path


def test_a_value_of_the_right_type_gets_no_word_about_yaml():
    from gpu_slicing.config import parse_shape

    with pytest.raises(ConfigError) as e:
        parse_shape(_put("workloads[0].image", ""))
    assert e.value.allowed == "a non-empty string"


def test_a_retained_layout_in_mig_parted_form_is_kept():
    from gpu_slicing.config import parse_shape

    entries = {"all-balanced": [{"devices": "all", "mig-enabled": True, "mig-devices": {"1g.5gb": 2}}]}
    assert parse_shape(_set(dev_config(), "gpuOperator.retainedMigLayouts", entries)).gpu_operator.retained_mig_layouts \
        == entries


def test_the_docs_table_gives_each_keys_default():
    """docs/config.md's default column against the model's: `required`, `none` (unset), or the value as YAML
    (rows naming several keys, and `all five` log types, are read by eye); every key has a description."""
    from gpu_slicing.config import documented_keys

    docs = {}
    for line in (ROOT / "docs" / "config.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 3 and " / " not in cells[0]:
            docs[cells[0].strip("`")] = cells[1]
    checked = 0
    for prefix, keys in documented_keys().items():
        for key, shown, doc in keys:
            assert doc, f"{prefix}.{key} has no description"
            cell = docs.get(f"{prefix}.{key}" if prefix else key)
            if cell is None or not (cell in ("required", "none") or cell.startswith("`")):
                continue
            if (prefix, key) == ("network", "vpcCidr"):  # unset; the VPC it creates then takes the documented block
                from gpu_slicing.config import NetworkConfig

                assert shown == "null" and NetworkConfig().cidr == yaml.safe_load(cell.strip("`"))
                continue
            checked += 1
            if shown in ("required", "see below"):
                assert cell == shown or (shown == "see below" and cell == "none"), (prefix, key, cell)
            else:
                expected = None if cell == "none" else yaml.safe_load(cell.strip("`"))
                assert json.loads(shown) == expected, (prefix, key, cell, shown)
    assert checked >= 40


def test_did_you_mean_offers_the_closest_name_above_the_cutoff():
    """difflib's ratio, by hand: 'p4dn.24xl' and 'p4d.24xlarge' share 'p4d' and '.24xl', 2 x 8 / 21 = 0.76, a guess
    at the default cutoff (0.6) and none at the instance types' 0.8."""
    from gpu_slicing.errors import did_you_mean

    assert did_you_mean("maxSzie", ["minSize", "maxSize"]) == "did you mean maxSize? "
    assert did_you_mean("maxSzie", ["minSize", "maxSize"], quote=True) == "did you mean 'maxSize'? "
    assert did_you_mean("p4dn.24xl", ["p4d.24xlarge"]) == "did you mean p4d.24xlarge? "
    assert did_you_mean("p4dn.24xl", ["p4d.24xlarge"], cutoff=0.8) == ""
    assert did_you_mean("zzz", ["maxSize"]) == ""


def test_own_keys_are_this_programs_keys_by_short_name_decoded():
    """What `make advise` reads of a stack: gpu-slicing:x and bare x by their short name, JSON text (as the
    engine passes structured values) decoded; provider and Pulumi keys left out."""
    from gpu_slicing.config import own_keys

    raw = {NS + "workloads": '[{"name": "w", "pool": "p"}]', "maxGpuNodes": 3, "aws:region": "us-east-1",
           "pulumi:tags": {"team": "ml"}, NS + "cluster": {"name": "c"}, "karpenter": "not json"}
    assert own_keys(raw) == {"workloads": [{"name": "w", "pool": "p"}], "maxGpuNodes": 3, "cluster": {"name": "c"},
                             "karpenter": "not json"}
    with pytest.raises(ConfigErrors) as e:
        own_keys({"gpu-slicng:workloads": [], "awz:region": "x", NS + "maxGpuNodes": 1})
    assert [x.key for x in e.value.errors] == ["gpu-slicng:workloads", "awz:region"]


def test_an_unknown_key_error_shows_the_value_given_under_it():
    e = _error(_set(dev_config(), "cluster.nmae", "gpu-dev"))
    assert (e.key, e.value) == (NS + "cluster.nmae", "gpu-dev")
    assert str(e).startswith(f"{NS}cluster.nmae: 'gpu-dev' is not valid: unknown key; did you mean 'name'? ")


@pytest.mark.parametrize("value, shown", [
    ("it's", "'it''s'"),  # YAML's single-quoted style doubles a quote
    ({"k": "v", "a b": "x y"}, "{k: v, 'a b': 'x y'}"),  # plain inside a mapping unless YAML would misread it
    (frozenset({10, 9}), "[10, 9]"),  # a set in a stable order: by text, so 10 before 9
    ({1, "a"}, "[1, a]"),
    ({"name": "gpu-dev\n"}, "{name: 'gpu-dev\n'}"),  # a trailing newline is quoted, so the end shows
])
def test_values_in_errors_are_written_as_yaml(value, shown):
    from gpu_slicing.errors import as_yaml

    assert as_yaml(value) == shown


# --- derived names, their AWS limits and the words of their errors --------------------------------------

def test_each_derived_name_carries_the_limit_aws_or_kubernetes_sets_for_it():
    """The limits, from the services' docs: an EKS node group name 63 characters (less the '-<7 hex>' token of
    what replaces the group: 55), an IAM role name 64, an IAM policy name 128, an EventBridge rule name 64, an
    SQS queue name 80, a Kubernetes object name used as a label value 63."""
    from gpu_slicing.config import aws_names

    names = {d.name: (d.key, d.value, d.limit) for d in aws_names(parse_config(dev_config()))}
    cluster, group, pool = (NS + "cluster.name", "gpu-dev"), (NS + "nodeGroups[0].name", "p4d-balanced"), (
        NS + "karpenter.nodePools[0].name", "p4d-small")
    assert names == {
        "gpu-dev-system": (*cluster, 63 - 8), "gpu-dev-system-role-<7 hex>": (*cluster, 64),
        "gpu-dev-p4d-balanced": (*group, 63 - 8), "gpu-dev-p4d-balanced-role-<7 hex>": (*group, 64),
        "KarpenterNodeRole-gpu-dev": (*cluster, 64), "KarpenterControllerRole-gpu-dev": (*cluster, 64),
        "Karpenter-gpu-dev": (*cluster, 80),
        **{f"Karpenter-gpu-dev-{event}": (*cluster, 64)
           for event in ("health", "spot", "rebalance", "state-change", "cr-interrupt")},
        **{f"KarpenterController{p}Policy-gpu-dev": (*cluster, 128) for p in (
            "NodeLifecycle", "IAMIntegration", "EKSIntegration", "Interruption", "ZonalShift", "ResourceDiscovery")},
        "p4d-small": (*pool, 63), "p4d-small-p4d-24xlarge": (*pool, 63)}
    from gpu_slicing.config import parse_shape

    raw = dev_config()
    raw[NS + "karpenter"] = {**raw[NS + "karpenter"], "enabled": False}
    assert {d.name for d in aws_names(parse_shape(raw))} == {  # no Karpenter: none of its names
        "gpu-dev-system", "gpu-dev-system-role-<7 hex>", "gpu-dev-p4d-balanced", "gpu-dev-p4d-balanced-role-<7 hex>"}


def test_each_derived_name_says_what_aws_or_kubernetes_object_it_names():
    from gpu_slicing.config import aws_names

    what = {d.name: d.what for d in aws_names(parse_config(dev_config()))}
    assert what["gpu-dev-system"] == ("EKS node group name of the system node group, before the '-<7 hex>' token "
                                      "of what forces its replacement")
    assert what["gpu-dev-system-role-<7 hex>"] == "IAM role name of the system node group (auto-named)"
    assert what["gpu-dev-p4d-balanced"] == ("EKS node group name <cluster>-<nodeGroup>, before the '-<7 hex>' token "
                                            "of what forces its replacement (gpu_slicing.changes.node_group_name)")
    assert what["gpu-dev-p4d-balanced-role-<7 hex>"] == ("IAM role name <cluster>-<nodeGroup>-role plus Pulumi's "
                                                         "auto-name suffix")
    assert what["KarpenterNodeRole-gpu-dev"] == "IAM role name KarpenterNodeRole-<cluster>"
    assert what["KarpenterControllerRole-gpu-dev"] == "IAM role name KarpenterControllerRole-<cluster>"
    assert what["Karpenter-gpu-dev"] == "SQS queue name Karpenter-<cluster>"
    assert what["Karpenter-gpu-dev-spot"] == "EventBridge rule name Karpenter-<cluster>-<event>"
    assert what["KarpenterControllerZonalShiftPolicy-gpu-dev"] == "IAM policy name"
    assert what["p4d-small"] == "NodePool/EC2NodeClass name (also the karpenter.sh/nodepool label value)"
    assert what["p4d-small-p4d-24xlarge"] == "NodeOverlay name <nodePool>-<instance type> for p4d.24xlarge"


def test_a_derived_name_over_its_limit_is_one_error_in_words_with_the_name_and_both_lengths():
    """40 + 1 + 15 = 56 characters of node group name (EKS: 63 less the 8 of the token); the role the same group
    gets, 56 + 5 + 8 = 69 (IAM: 64), is too long as well: one error for the key, the first name it makes too long."""
    cfg = _set(dev_config(), "cluster.name", "c" * 40)
    cfg[NS + "nodeGroups"][0]["name"] = "n" * 15
    cfg[NS + "workloads"] = [w for w in cfg[NS + "workloads"] if w["pool"] != "p4d-balanced"]
    e = _error(cfg)
    stem = "c" * 40 + "-" + "n" * 15
    assert (e.key, e.value) == (NS + "nodeGroups[0].name", "n" * 15)
    assert e.allowed == ("a shorter name: the EKS node group name <cluster>-<nodeGroup>, before the '-<7 hex>' token "
                         f"of what forces its replacement (gpu_slicing.changes.node_group_name) would be 56 characters "
                         f"('{stem}'), over the limit of 55")


def test_a_bad_name_is_reported_once_however_long_and_the_other_names_are_still_checked():
    """A name that is no DNS label is its own error; it is not measured as a derived name too (an invalid one
    reads as no name), while a valid node group name beside it still is."""
    cfg = _set(dev_config(), "cluster.name", "c" * 40)
    cfg[NS + "nodeGroups"][0]["name"] = "n" * 15  # 40 + 1 + 15 = 56 > 55
    cfg[NS + "nodeGroups"].append({"name": "N" * 60, "instanceType": "p4d.24xlarge"})
    cfg[NS + "workloads"] = [w for w in cfg[NS + "workloads"] if w["pool"] != "p4d-balanced"]
    e = _several(cfg)
    assert [x.key for x in e.errors] == [NS + "nodeGroups[0].name", NS + "nodeGroups[1].name"]
    assert "over the limit of 55" in e.errors[0].allowed and "lowercase DNS label" in e.errors[1].allowed


# --- what pydantic reports, in this program's words --------------------------------------------------------

def test_an_unknown_key_error_lists_every_key_of_its_block():
    e = _error(_set(dev_config(), "network.vpcCdir", "10.0.0.0/16"))
    assert e.allowed == ("unknown key; did you mean 'vpcCidr'? known keys: vpcCidr, availabilityZones, vpcId, "
                         "privateSubnetIds, publicSubnetIds")


def test_a_missing_required_key_of_a_block_says_what_the_key_is():
    e = _error(_set(dev_config(), "cluster.name", None))
    assert (e.key, e.value) == (NS + "cluster.name", None)
    assert e.allowed == "required (EKS cluster name; also the Karpenter discovery tag value)"


def test_a_list_entry_that_is_no_mapping_shows_the_entry_given():
    e = _error(_set(dev_config(), "nodeGroups", ["p4d"]))
    assert (e.key, e.value) == (NS + "nodeGroups[0]", "p4d")
    assert e.allowed.startswith("a mapping with keys name, instanceType, minSize, desiredSize, maxSize, ")


def test_a_key_that_is_not_text_is_refused_naming_the_block_and_the_key():
    """YAML reads `1: x` with an integer key; parse_shape (as code calls it, without the JSON text of the engine)
    refuses it naming where it is and what it is."""
    from gpu_slicing.config import parse_shape

    raw = dev_config()
    raw[NS + "cluster"] = {**raw[NS + "cluster"], 1: "x"}
    with pytest.raises(ConfigError) as e:
        parse_shape(raw)
    assert (e.value.key, e.value.value) == (NS + "cluster[1]", 1) and "string" in e.value.allowed


def test_the_docs_rows_of_the_top_level_blocks_point_below_to_their_own_tables():
    from gpu_slicing.config import documented_keys

    keys = documented_keys()
    shown = {key: default for key, default, _ in keys[""]}
    assert {k for k, v in shown.items() if v == "see below"} == {
        "network", "systemNodeGroup", "gpuOperator", "karpenter", "observability"}
    assert shown["cluster"] == "required" and {"network", "karpenter", "observability"} <= set(keys)


# --- namespaces, CIDRs, instance types and duplicate names, each error in full ------------------------------

@pytest.mark.parametrize("key,value,shown,allowed", [
    ("gpu-slicng:workloads", '[{"name": "w"}]', [{"name": "w"}],
     "a key of a namespace this stack uses; did you mean gpu-slicing:workloads? known namespaces: gpu-slicing, "
     "aws, eks, kubernetes, pulumi (keys of any other namespace would be silently ignored)"),
    ("azure:location", "eastus", "eastus",
     "a key of a namespace this stack uses; known namespaces: gpu-slicing, aws, eks, kubernetes, pulumi (keys of "
     "any other namespace would be silently ignored)"),
])
def test_a_namespace_typo_error_shows_the_value_decoded_and_every_known_namespace(key, value, shown, allowed):
    """The engine passes structured values as JSON text: the error shows the value as the stack file has it."""
    e = _error({**dev_config(), key: value})
    assert (e.key, e.value, e.allowed) == (key, shown, allowed)


@pytest.mark.parametrize("value,allowed", [
    ("10.0.0.1/16", "an IPv4 CIDR block such as 10.0.0.0/16 (host bits zero)"),
    ("10.0.0.0/33", "an IPv4 CIDR block such as 10.0.0.0/16 (host bits zero)"),
    (167772160, "an IPv4 CIDR block such as 10.0.0.0/16 (host bits zero)"),  # 10.0.0.0 as a number: no CIDR
    ("fd00::/56", "an IPv4 CIDR block such as 10.0.0.0/16: this key takes IPv4 only"),
    ("10.0.0.0/14", "an IPv4 CIDR block from /16 to /28 (the sizes AWS allows for a VPC)"),
])
def test_a_bad_vpc_cidr_says_what_a_vpc_block_is(value, allowed):
    e = _error(_set(dev_config(), "network.vpcCidr", value))
    assert (e.key, e.value, e.allowed) == (NS + "network.vpcCidr", value, allowed)


@pytest.mark.parametrize("value", ["M7i.large", "m7i", "7m.large", "m7i.large.x", "m7i_large", 7, ["m7i.large"]])
def test_a_system_instance_type_that_is_no_ec2_type_is_refused(value):
    e = _error(_set(dev_config(), "systemNodeGroup.instanceType", value))
    assert (e.key, e.value, e.allowed) == (NS + "systemNodeGroup.instanceType", value,
                                           "an EC2 instance type such as m7i.large")


def test_two_workloads_or_nodepools_of_one_name_are_refused_at_the_second():
    """Workloads and NodePools are found by name, so a second entry of a name is an error at that entry."""
    cfg = dev_config()
    first = cfg[NS + "workloads"][0]
    cfg[NS + "workloads"] = [*cfg[NS + "workloads"], dict(first)]
    pools = cfg[NS + "karpenter"]["nodePools"]
    cfg[NS + "karpenter"] = {**cfg[NS + "karpenter"], "nodePools": [*pools, dict(pools[0])]}
    e = _several(cfg)
    n = len(cfg[NS + "workloads"]) - 1
    dup = [x for x in e.errors if x.allowed == "a name not used by another entry"]
    assert [(x.key, x.value) for x in dup] == [(NS + "karpenter.nodePools[1].name", pools[0]["name"]),  # file order
                                               (NS + f"workloads[{n}].name", first["name"])]


def test_a_repeated_bad_name_is_a_name_error_not_a_duplicate():
    cfg = dev_config()
    group = cfg[NS + "nodeGroups"][0]
    cfg[NS + "nodeGroups"] = [{**group, "name": "Bad_Name"}, {**group, "name": "Bad_Name"}, "p4d"]
    e = _several(cfg)
    assert [(x.key, "lowercase DNS label" in x.allowed) for x in e.errors[:3]] == [
        (NS + "nodeGroups[0].name", True), (NS + "nodeGroups[1].name", True), (NS + "nodeGroups[2]", False)]
    assert not any(x.allowed == "a name not used by another entry" for x in e.errors)
    cfg[NS + "nodeGroups"] = [{**group, "name": "Bad_Name"}, group, dict(group)]  # a bad name stops no check after it
    assert [(x.key, x.allowed) for x in _several(cfg).errors[1:]] == [
        (NS + "nodeGroups[2].name", "a name not used by another entry")]


def test_a_karpenter_block_that_is_no_mapping_is_one_error_of_its_shape():
    cfg = _set(dev_config(), "karpenter", "enabled")
    cfg[NS + "workloads"] = [w for w in cfg[NS + "workloads"] if w["pool"] != "p4d-small"]
    e = _error(cfg)
    assert (e.key, e.value) == (NS + "karpenter", "enabled") and e.allowed.startswith("a mapping with keys enabled, ")


def test_a_missing_key_is_reported_after_every_key_the_file_has():
    """A missing key has no place in the file: it comes after the errors of the keys present, in their order."""
    cfg = _set(dev_config(), "maxGpuNodes", None)
    cfg[NS + "cluster"] = {k: v for k, v in cfg[NS + "cluster"].items() if k != "name"}
    cfg[NS + "nodeGroups"][0]["maxSize"] = 0
    e = _several(cfg)
    assert [x.key for x in e.errors] == [NS + "cluster.name", NS + "nodeGroups[0].maxSize", NS + "maxGpuNodes"]
    assert [x.allowed.startswith("required (") for x in e.errors] == [True, False, True]


def test_errors_inside_a_list_entry_follow_the_order_the_entry_writes_its_keys():
    """Two bad keys of one NodePool, written in the other order than the model lists them: file order wins."""
    cfg = dev_config()
    pool = cfg[NS + "karpenter"]["nodePools"][0]
    bad = {"consolidateAfter": "ten minutes", **{k: v for k, v in pool.items() if k not in ("maxNodes", "consolidateAfter")},
           "maxNodes": 0}
    cfg[NS + "karpenter"] = {**cfg[NS + "karpenter"], "nodePools": [bad]}
    e = _several(cfg)
    assert [x.key for x in e.errors] == [NS + "karpenter.nodePools[0].consolidateAfter",
                                         NS + "karpenter.nodePools[0].maxNodes"]


def test_keys_without_the_namespace_read_as_this_programs_own():
    """`parse_shape` takes a stack's keys with or without `gpu-slicing:`: the same config either way."""
    from gpu_slicing.config import parse_shape

    raw = dev_config()
    bare = {k.removeprefix(NS): v for k, v in raw.items()}
    assert parse_shape(bare) == parse_shape(raw) and parse_shape(bare).max_gpu_nodes == 7


def test_a_duplicate_name_is_reported_where_the_name_is_written_in_its_entry():
    cfg = dev_config()
    group = cfg[NS + "nodeGroups"][0]
    cfg[NS + "nodeGroups"] = [group, {"name": group["name"], "instanceType": "p4d.24xlarge", "maxSize": 0}]
    assert [(x.key, x.allowed) for x in _several(cfg).errors[:2]] == [
        (NS + "nodeGroups[1].name", "a name not used by another entry"),
        (NS + "nodeGroups[1].maxSize", "an integer from 1 to 100")]
