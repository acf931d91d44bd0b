"""Bad stack config is rejected before anything is registered, with the key, the value and what is allowed."""
from __future__ import annotations

import pytest

from conftest import dev_config, run
from gpu_slicing.config import NAMESPACE, parse_config
from gpu_slicing.errors import ConfigError

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
    # nothing scales a node group: 16 x 1g.5gb per p4d at desiredSize 1 (FACTS 1.6, 10)
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
    assert "16 free" in msg and "56" in msg  # 16 per node x desiredSize 1 < 56 (FACTS 1.6)
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
    assert isinstance(r.error, ConfigError)
    assert r.registrations == []


def test_readme_documents_every_config_key():
    from conftest import ROOT
    from gpu_slicing.config import documented_keys

    rows = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `")]
    for prefix, keys in documented_keys().items():
        for key, _, _ in keys:
            head = f"| `{prefix}." if prefix else "| `"
            assert any(line.startswith(head) and key in line.split("|")[1] for line in rows), f"{prefix}.{key}"
