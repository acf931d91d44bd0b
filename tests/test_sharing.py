"""Time-slicing and MPS: config shape, checks against what the node advertises, key and YAML."""
from __future__ import annotations

import re

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from gpu_slicing import catalog
from gpu_slicing.advertise import node_resources
from gpu_slicing.errors import ConfigError
from gpu_slicing.sharing import (MPS, TIME_SLICING, Sharing, check_sharing, device_plugin_config_key, parse_sharing,
                                 render_device_plugin_config, render_device_plugin_configs)

KEY = "gpu-slicing:nodeGroups[0].sharing"
LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
# p4d all-balanced under mixed, per docs/facts.md §1.6 (what the node advertises before sharing).
P4D_BALANCED = {"nvidia.com/mig-1g.5gb": 16, "nvidia.com/mig-2g.10gb": 8, "nvidia.com/mig-3g.20gb": 8,
                "nvidia.com/gpu": 0}


def ts(replicas: int = 4, resources=None, **flags) -> Sharing:
    body = {"replicas": replicas, **flags}
    if resources is not None:
        body["resources"] = resources
    return parse_sharing({"timeSlicing": body}, KEY)


def test_parse_time_slicing_and_mps():
    s = ts(4, ["nvidia.com/mig-1g.5gb"], renameByDefault=True)
    assert s == Sharing(TIME_SLICING, 4, ("nvidia.com/mig-1g.5gb",), True, False)
    assert parse_sharing({"mps": {"replicas": 3}}, KEY) == Sharing(MPS, 3, None, False, True)
    assert parse_sharing(None, KEY) is None and parse_sharing({}, KEY) is None


@pytest.mark.parametrize("raw, key, fragment", [
    ("timeSlicing", KEY, "{timeSlicing: {replicas: N"),
    ({"timeSlicing": {"replicas": 2}, "mps": {"replicas": 2}}, KEY, "cannot do both"),
    ({"timeslicing": {"replicas": 2}}, KEY, "only timeSlicing or mps"),
    ({"timeSlicing": 4}, f"{KEY}.timeSlicing", "a map with replicas"),
    ({"timeSlicing": {"replicas": 1}}, f"{KEY}.timeSlicing.replicas", "an integer >= 2"),
    ({"timeSlicing": {"replicas": "4"}}, f"{KEY}.timeSlicing.replicas", "an integer >= 2"),
    ({"timeSlicing": {"replicas": True}}, f"{KEY}.timeSlicing.replicas", "an integer >= 2"),
    ({"timeSlicing": {}}, f"{KEY}.timeSlicing.replicas", "an integer >= 2"),
    ({"timeSlicing": {"replicas": 4, "devices": "all"}}, f"{KEY}.timeSlicing", "only the keys replicas"),
    ({"timeSlicing": {"replicas": 4, "resources": []}}, f"{KEY}.timeSlicing.resources", "non-empty list"),
    ({"timeSlicing": {"replicas": 4, "resources": ["gpu"]}}, f"{KEY}.timeSlicing.resources",
     "nvidia.com/gpu or nvidia.com/mig-<profile>"),
    ({"timeSlicing": {"replicas": 4, "resources": ["nvidia.com/gpu\n"]}}, f"{KEY}.timeSlicing.resources",
     "nvidia.com/gpu or nvidia.com/mig-<profile>"),  # a block scalar's newline: no resource of that name
    ({"timeSlicing": {"replicas": 4, "resources": ["nvidia.com/gpu", "nvidia.com/gpu"]}},
     f"{KEY}.timeSlicing.resources", "each resource once"),
    ({"timeSlicing": {"replicas": 4, "renameByDefault": "no"}}, f"{KEY}.timeSlicing.renameByDefault", "true or false"),
    ({"mps": {"replicas": 4, "resources": ["nvidia.com/mig-1g.5gb"]}}, f"{KEY}.mps.resources", "whole GPUs only"),
    ({"mps": {"replicas": 4, "failRequestsGreaterThanOne": False}}, f"{KEY}.mps", "only the keys"),
])
def test_parse_errors(raw, key, fragment):
    with pytest.raises(ConfigError) as e:
        parse_sharing(raw, KEY)
    assert e.value.key == key and fragment in str(e.value)


def test_default_resources_are_everything_the_node_advertises():
    """A resource advertised as 0 (nvidia.com/gpu under all-balanced) is not advertised at all."""
    resolved = check_sharing(ts(4), P4D_BALANCED, True, KEY)
    assert resolved.resources == ("nvidia.com/mig-1g.5gb", "nvidia.com/mig-2g.10gb", "nvidia.com/mig-3g.20gb")


def test_unadvertised_resource_names_what_the_node_has():
    with pytest.raises(ConfigError) as e:
        check_sharing(ts(4, ["nvidia.com/gpu"]), P4D_BALANCED, True, KEY)
    assert e.value.key == f"{KEY}.timeSlicing.resources"
    assert "nvidia.com/mig-1g.5gb, nvidia.com/mig-2g.10gb, nvidia.com/mig-3g.20gb" in e.value.allowed
    assert "nvidia.com/gpu" not in e.value.allowed


def test_mps_is_whole_gpu_only():
    mps = parse_sharing({"mps": {"replicas": 4}}, KEY)
    with pytest.raises(ConfigError) as e:
        check_sharing(mps, P4D_BALANCED, True, KEY)
    assert e.value.key == f"{KEY}.mps" and "not MIG" in str(e.value)
    assert check_sharing(mps, {"nvidia.com/gpu": 4}, False, KEY).resources == ("nvidia.com/gpu",)


@pytest.mark.parametrize("itype, layout, strategy, sharing, expected", [
    # docs/facts.md §3: p4d all-balanced + mig-1g.5gb x4 -> 64 slots; the other slices stay as they are.
    ("p4d.24xlarge", "all-balanced", "mixed", {"timeSlicing": {"replicas": 4, "resources": ["nvidia.com/mig-1g.5gb"]}},
     {**P4D_BALANCED, "nvidia.com/mig-1g.5gb": 16 * 4}),
    ("p4d.24xlarge", "all-balanced", "mixed",
     {"timeSlicing": {"replicas": 4, "resources": ["nvidia.com/mig-1g.5gb"], "renameByDefault": True}},
     {"nvidia.com/mig-1g.5gb.shared": 64, "nvidia.com/mig-2g.10gb": 8, "nvidia.com/mig-3g.20gb": 8,
      "nvidia.com/gpu": 0}),
    ("p4d.24xlarge", "all-balanced", "mixed", {"timeSlicing": {"replicas": 3}},
     {"nvidia.com/mig-1g.5gb": 48, "nvidia.com/mig-2g.10gb": 24, "nvidia.com/mig-3g.20gb": 24, "nvidia.com/gpu": 0}),
    # The device plugin README: 8 GPUs x 10 replicas -> 80 nvidia.com/gpu (or nvidia.com/gpu.shared).
    ("g5.48xlarge", "all-disabled", "none", {"timeSlicing": {"replicas": 10}}, {"nvidia.com/gpu": 80}),
    ("g6.48xlarge", "all-disabled", "mixed", {"timeSlicing": {"replicas": 10, "renameByDefault": True}},
     {"nvidia.com/gpu.shared": 80}),
    ("g6e.12xlarge", "all-disabled", "none", {"mps": {"replicas": 4}}, {"nvidia.com/gpu": 16}),
    # single: every 3g.20gb slice is a nvidia.com/gpu; 2 per GPU x 8 GPUs x 2 replicas.
    ("p4d.24xlarge", "all-3g.20gb", "single", {"timeSlicing": {"replicas": 2}}, {"nvidia.com/gpu": 32}),
])
def test_time_slicing_arithmetic(itype, layout, strategy, sharing, expected):
    it = catalog.instance_type(itype)
    named = catalog.named_layouts(it.gpu)[layout]
    assert node_resources(itype, named, strategy, parse_sharing(sharing, KEY)) == expected


def test_key_and_yaml_of_a_setup():
    s = check_sharing(ts(4, ["nvidia.com/mig-1g.5gb"]), P4D_BALANCED, True, KEY)
    assert device_plugin_config_key(s) == "ts-mig-1g.5gb-x4"
    assert yaml.safe_load(render_device_plugin_config(s)) == {
        "version": "v1",
        "sharing": {"timeSlicing": {"renameByDefault": False, "failRequestsGreaterThanOne": False,
                                    "resources": [{"name": "nvidia.com/mig-1g.5gb", "replicas": 4}]}}}
    mps = check_sharing(parse_sharing({"mps": {"replicas": 2}}, KEY), {"nvidia.com/gpu": 8}, False, KEY)
    assert yaml.safe_load(render_device_plugin_config(mps))["sharing"] == {
        "mps": {"renameByDefault": False, "resources": [{"name": "nvidia.com/gpu", "replicas": 2}]}}


def test_unresolved_sharing_has_no_key():
    """'Every advertised resource' means different lists on different nodes: resolve first."""
    with pytest.raises(ValueError, match="check_sharing"):
        device_plugin_config_key(ts(4))


def test_configs_map_is_keyed_and_deduplicated():
    a = check_sharing(ts(4), P4D_BALANCED, True, KEY)
    b = check_sharing(ts(4, ["nvidia.com/gpu"]), {"nvidia.com/gpu": 8}, False, KEY)
    data = render_device_plugin_configs([a, b, a])
    assert list(data) == sorted([device_plugin_config_key(a), device_plugin_config_key(b)])


RESOURCES = ["nvidia.com/gpu"] + [catalog.resource_for_profile(p) for m in catalog.GPU_MODELS.values()
                                  for p in m.profile_names]
setups = st.builds(Sharing, st.just(TIME_SLICING), st.integers(2, 64),
                   st.lists(st.sampled_from(sorted(set(RESOURCES))), min_size=1, max_size=12, unique=True)
                   .map(lambda r: tuple(sorted(r))), st.booleans(), st.booleans())


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(a=setups, b=setups)
def test_keys_are_label_values_and_tell_setups_apart(a, b):
    ka, kb = device_plugin_config_key(a), device_plugin_config_key(b)
    assert len(ka) <= 63 and LABEL_VALUE.match(ka)
    assert (ka == kb) == (a == b)
    assert device_plugin_config_key(a) == ka


# --- the whole text of each error: the key, the value as the stack file writes it, and what is allowed ---------

TS, MPS_ = f"{KEY}.timeSlicing", f"{KEY}.mps"


@pytest.mark.parametrize("raw, message", [
    ("timeSlicing", f"{KEY}: 'timeSlicing' is not valid: {{timeSlicing: {{replicas: N, resources: [...]}}}} or "
                    "{mps: {replicas: N}}"),
    ({"timeSlicing": {"replicas": 2}, "mps": {"replicas": 2}},
     f"{KEY}: [mps, timeSlicing] is not valid: one of timeSlicing or mps: the device plugin cannot do both at once"),
    ({"timeslicing": {"replicas": 2}, "MPS": {}}, f"{KEY}: [MPS, timeslicing] is not valid: only timeSlicing or mps"),
    ({"timeSlicing": 4}, f"{TS}: 4 is not valid: a map with replicas (and optionally resources, renameByDefault, "
                         "failRequestsGreaterThanOne)"),
    ({"mps": [4]}, f"{MPS_}: [4] is not valid: a map with replicas (and optionally resources, renameByDefault)"),
    ({"timeSlicing": {"replicas": 1}}, f"{TS}.replicas: 1 is not valid: an integer >= 2 (1 replica is no sharing)"),
    ({"timeSlicing": {"replicas": 4, "devices": "all", "Replicas": 2}},
     f"{TS}: [Replicas, devices] is not valid: only the keys replicas, resources, renameByDefault, "
     "failRequestsGreaterThanOne"),
    ({"mps": {"replicas": 4, "failRequestsGreaterThanOne": False}},
     f"{MPS_}: [failRequestsGreaterThanOne] is not valid: only the keys replicas, resources, renameByDefault"),
    ({"timeSlicing": {"replicas": 4, "resources": []}},
     f"{TS}.resources: [] is not valid: a non-empty list of resource names (omit it to share every GPU resource)"),
    ({"timeSlicing": {"replicas": 4, "resources": "nvidia.com/gpu"}},
     f"{TS}.resources: 'nvidia.com/gpu' is not valid: a non-empty list of resource names (omit it to share every "
     "GPU resource)"),
    ({"timeSlicing": {"replicas": 4, "resources": ["nvidia.com/gpu", "gpu"]}},
     f"{TS}.resources: [nvidia.com/gpu, gpu] is not valid: nvidia.com/gpu or nvidia.com/mig-<profile> names, "
     "got 'gpu'"),
    ({"timeSlicing": {"replicas": 4, "resources": ["nvidia.com/gpu", "nvidia.com/gpu"]}},
     f"{TS}.resources: [nvidia.com/gpu, nvidia.com/gpu] is not valid: each resource once"),
    ({"timeSlicing": {"replicas": 4, "renameByDefault": "no"}}, f"{TS}.renameByDefault: 'no' is not valid: true or false"),
    ({"timeSlicing": {"replicas": 4, "failRequestsGreaterThanOne": 1}},
     f"{TS}.failRequestsGreaterThanOne: 1 is not valid: true or false"),
    ({"mps": {"replicas": 4, "resources": ["nvidia.com/mig-1g.5gb"]}},
     f"{MPS_}.resources: [nvidia.com/mig-1g.5gb] is not valid: [nvidia.com/gpu]: MPS shares whole GPUs only"),
])
def test_parse_error_messages_in_full(raw, message):
    with pytest.raises(ConfigError) as e:
        parse_sharing(raw, KEY)
    assert str(e.value) == message


def test_check_error_messages_in_full():
    mps = parse_sharing({"mps": {"replicas": 4}}, KEY)
    with pytest.raises(ConfigError) as e:
        check_sharing(mps, P4D_BALANCED, True, KEY)
    assert str(e.value) == (f"{MPS_}: {{replicas: 4}} is not valid: timeSlicing, or a layout with MIG disabled: "
                            "MPS shares whole GPUs only, not MIG slices")
    with pytest.raises(ConfigError) as e:  # all-enabled MIG with no instances: nothing advertised above 0
        check_sharing(ts(3), {"nvidia.com/gpu": 0}, True, KEY)
    assert str(e.value) == f"{TS}: {{replicas: 3}} is not valid: no sharing: the node advertises no GPU resources"
    with pytest.raises(ConfigError) as e:
        check_sharing(ts(4, ["nvidia.com/gpu", "nvidia.com/mig-1g.5gb"]), P4D_BALANCED, True, KEY)
    assert str(e.value) == (f"{TS}.resources: [nvidia.com/gpu, nvidia.com/mig-1g.5gb] is not valid: resources the "
                            "node advertises: nvidia.com/mig-1g.5gb, nvidia.com/mig-2g.10gb, nvidia.com/mig-3g.20gb")
    with pytest.raises(ValueError) as e:
        device_plugin_config_key(ts(4))
    assert str(e.value) == ("resolve the sharing's resources with check_sharing first: 'all advertised resources' "
                            "differs from node to node")


def test_config_keys_name_kind_resources_replicas_and_flags():
    """The key a node's nvidia.com/device-plugin.config label carries: kind, resources (joined by _), replicas,
    then -renamed (renameByDefault) and -strict (failRequestsGreaterThanOne, time-slicing only: MPS always
    fails a request for more than one share, so the flag says nothing there)."""
    gpu = {"nvidia.com/gpu": 8}
    mps = check_sharing(parse_sharing({"mps": {"replicas": 4, "renameByDefault": True}}, KEY), gpu, False, KEY)
    assert mps.fail_requests_greater_than_one and device_plugin_config_key(mps) == "mps-gpu-x4-renamed"
    plain_mps = check_sharing(parse_sharing({"mps": {"replicas": 2}}, KEY), gpu, False, KEY)
    assert device_plugin_config_key(plain_mps) == "mps-gpu-x2"
    two = check_sharing(ts(4, ["nvidia.com/mig-2g.10gb", "nvidia.com/mig-1g.5gb"], failRequestsGreaterThanOne=True),
                        P4D_BALANCED, True, KEY)
    assert device_plugin_config_key(two) == "ts-mig-1g.5gb_mig-2g.10gb-x4-strict"
    both = check_sharing(ts(8, renameByDefault=True, failRequestsGreaterThanOne=True), gpu, False, KEY)
    assert device_plugin_config_key(both) == "ts-gpu-x8-renamed-strict"


def test_the_device_plugin_config_file_text():
    """The file as the device plugin's README writes it: version first, then sharing.<kind> with renameByDefault,
    failRequestsGreaterThanOne (time-slicing only) and the resources, each with its replicas."""
    s = check_sharing(ts(4, ["nvidia.com/mig-1g.5gb"]), P4D_BALANCED, True, KEY)
    assert render_device_plugin_config(s) == (
        "version: v1\n"
        "sharing:\n"
        "  timeSlicing:\n"
        "    renameByDefault: false\n"
        "    failRequestsGreaterThanOne: false\n"
        "    resources:\n"
        "    - name: nvidia.com/mig-1g.5gb\n"
        "      replicas: 4\n")


def test_a_key_too_long_for_a_label_is_the_kind_replicas_and_a_digest_of_the_file():
    """Label values hold at most 63 characters: five H100 profiles named in full do not fit, so the key is
    ts-x<replicas>-<the first 12 hex digits of the config file's SHA-256>."""
    import hashlib

    resources = ["nvidia.com/mig-1g.10gb", "nvidia.com/mig-1g.20gb", "nvidia.com/mig-2g.20gb",
                 "nvidia.com/mig-3g.40gb", "nvidia.com/mig-7g.80gb"]
    s = Sharing(TIME_SLICING, 16, tuple(resources), True, False)
    text = ("version: v1\nsharing:\n  timeSlicing:\n    renameByDefault: true\n    failRequestsGreaterThanOne: false\n"
            "    resources:\n" + "".join(f"    - name: {r}\n      replicas: 16\n" for r in resources))
    assert len("ts-" + "_".join(r.removeprefix("nvidia.com/") for r in resources) + "-x16-renamed") > 63
    assert device_plugin_config_key(s) == "ts-x16-" + hashlib.sha256(text.encode()).hexdigest()[:12]
