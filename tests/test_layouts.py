"""Custom MIG layouts: parsing, checking per instance type, resolving names, and the mig-parted ConfigMap."""
from __future__ import annotations

import random
import re

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from gpu_slicing import catalog
from gpu_slicing.errors import ConfigError
from gpu_slicing.layouts import check_layout, is_label_value, parse_custom_layouts, render_mig_parted_config, resolve_layout
from facts import BALANCED, FACTS_GPUS, FACTS_PROFILES, PCI_IDS
from test_placement import brute_fits
from tools import refdata

KEY = "gpu-slicing:migLayouts"
HALF_SMALL = {"p4d-half-small": [{"devices": [0, 1, 2, 3], "profiles": {"1g.5gb": 7}},
                                 {"devices": [4, 5, 6, 7], "profiles": {"4g.20gb": 1, "3g.20gb": 1}}]}


def test_parse_the_documented_example():
    layout = parse_custom_layouts(HALF_SMALL)["p4d-half-small"]
    # the node label value is the name plus a content hash, so an edit is a label change (docs/facts.md §8)
    assert layout.custom and re.fullmatch(r"p4d-half-small-[0-9a-f]{7}", layout.name)
    assert [(g.devices, g.mig_enabled, dict(g.profiles)) for g in layout.groups] == [
        ((0, 1, 2, 3), True, {"1g.5gb": 7}), ((4, 5, 6, 7), True, {"4g.20gb": 1, "3g.20gb": 1})]
    check_layout(layout, "p4d.24xlarge", f"{KEY}.p4d-half-small")


def test_a_custom_layout_label_follows_its_contents():
    """docs/facts.md §8: the MIG manager does not reload its config for configured nodes, so an edit under the same
    label would silently diverge; the label is the name plus a content hash instead."""
    same = parse_custom_layouts(HALF_SMALL)["p4d-half-small"]
    assert parse_custom_layouts(HALF_SMALL)["p4d-half-small"].name == same.name
    edited = {"p4d-half-small": [HALF_SMALL["p4d-half-small"][0],
                                 {"devices": [4, 5, 6, 7], "profiles": {"3g.20gb": 2}}]}
    changed = parse_custom_layouts(edited)["p4d-half-small"]
    assert changed.name != same.name and changed.name.startswith("p4d-half-small-")
    longest = parse_custom_layouts({"x" * 55: [{"devices": "all"}]})["x" * 55]
    assert len(longest.name) == 63 and is_label_value(longest.name)
    # Kubernetes' label value syntax (validation.IsValidLabelValue) admits no newline, at the end either
    assert not is_label_value("all-balanced\n") and is_label_value("all-balanced")


def test_entries_without_profiles_disable_mig_and_mig_enabled_true_is_all_enabled():
    raw = {"half": [{"devices": [0, 1, 2, 3], "profiles": {}}, {"devices": [4, 5, 6], "migEnabled": False},
                    {"devices": [7], "migEnabled": True}]}
    groups = parse_custom_layouts(raw)["half"].groups
    assert [(g.mig_enabled, dict(g.profiles)) for g in groups] == [(False, {}), (False, {}), (True, {})]
    assert parse_custom_layouts(None) == {}


@pytest.mark.parametrize("raw, key, fragment", [
    (["not", "a", "map"], KEY, "a map of layout name"),
    ({"Bad Name": [{"devices": "all"}]}, KEY, "Kubernetes label value"),
    ({"x" * 56: [{"devices": "all"}]}, KEY, "at most 55 characters"),
    ({"-dash": [{"devices": "all"}]}, KEY, "starting and ending with a letter or digit"),
    ({"all-balanced": [{"devices": "all", "profiles": {"1g.5gb": 7}}]}, f"{KEY}.all-balanced", "shadow"),
    ({"all-mine": [{"devices": "all"}]}, f"{KEY}.all-mine", "NVIDIA's layouts"),
    ({"empty": []}, f"{KEY}.empty", "non-empty list"),
    ({"l": [{"devices": "all", "profile": {"1g.5gb": 7}}]}, f"{KEY}.l[0]", "only the keys devices, profiles"),
    ({"l": ["all"]}, f"{KEY}.l[0]", "an entry {devices"),
    ({"l": [{"profiles": {"1g.5gb": 7}}]}, f"{KEY}.l[0].devices", "'all' or a non-empty list"),
    ({"l": [{"devices": "some"}]}, f"{KEY}.l[0].devices", "'all' or a non-empty list"),
    ({"l": [{"devices": [0, -1]}]}, f"{KEY}.l[0].devices", "non-negative integers, got -1"),
    ({"l": [{"devices": [0, True]}]}, f"{KEY}.l[0].devices", "non-negative integers, got true"),
    ({"l": [{"devices": [0, 0]}]}, f"{KEY}.l[0].devices", "GPU 0 is twice in this entry"),
    ({"l": [{"devices": [0, 1]}, {"devices": [1, 2]}]}, f"{KEY}.l[1].devices", "GPU 1 is also in entry [0]"),
    ({"l": [{"devices": [0]}, {"devices": "all"}]}, f"{KEY}.l[1].devices", "must be the layout's only entry"),
    ({"l": [{"devices": "all", "profiles": [["1g.5gb", 7]]}]}, f"{KEY}.l[0].profiles", "a map of MIG profile"),
    ({"l": [{"devices": "all", "profiles": {"1g.5gb": 0}}]}, f"{KEY}.l[0].profiles", "positive integers"),
    ({"l": [{"devices": "all", "profiles": {"1g.5gb": "7"}}]}, f"{KEY}.l[0].profiles", "positive integers"),
    ({"l": [{"devices": "all", "profiles": {"1g.5gb": 7}, "migEnabled": False}]}, f"{KEY}.l[0].migEnabled",
     "profiles need MIG mode on"),
    ({"l": [{"devices": "all", "migEnabled": "yes"}]}, f"{KEY}.l[0].migEnabled", "true or false"),
])
def test_structural_errors_name_the_key(raw, key, fragment):
    with pytest.raises(ConfigError) as e:
        parse_custom_layouts(raw)
    assert e.value.key == key
    assert fragment in str(e.value)


@pytest.mark.parametrize("entries, itype, key, fragment", [
    ([{"devices": [0, 1, 2, 3, 4, 5, 6, 7, 8], "profiles": {"1g.5gb": 7}}], "p4d.24xlarge", "[0].devices",
     "has no GPU 8"),
    ([{"devices": [0, 1, 2, 3], "profiles": {"1g.5gb": 7}}], "p4d.24xlarge", "", "GPUs 4, 5, 6, 7 are in none"),
    ([{"devices": "all", "profiles": {"4g.20gb": 2}}], "p4d.24xlarge", "[0].profiles",
     "2 x 4g.20gb need 8 compute slices; a GPU has 7"),
    ([{"devices": "all", "profiles": {"1g.10gb": 4, "3g.20gb": 1}}], "p4d.24xlarge", "[0].profiles",
     "need 12 memory slices"),
    ([{"devices": "all", "profiles": {"1g.5gb+me": 2}}], "p4d.24xlarge", "[0].profiles", "exceeds its maximum of 1"),
    ([{"devices": "all", "profiles": {"1g.5gb": 7}}], "p5.48xlarge", "[0].profiles", "has no MIG profile '1g.5gb'"),
    ([{"devices": "all", "profiles": {"1g.10gb": 7}}], "p5.48xlarge", None, None),  # 1g.10gb x7 fits an H100
    ([{"devices": "all", "profiles": {"1g.5gb": 1}}], "g5.48xlarge", "[0].profiles", "does not support MIG"),
    ([{"devices": "all"}], "g5.48xlarge", None, None),
    ([{"devices": [0, 1, 2, 3]}], "g5.12xlarge", None, None),  # 4 GPUs
])
def test_check_layout_against_the_instance(entries, itype, key, fragment):
    layout = parse_custom_layouts({"mine": entries})["mine"]
    if fragment is None:
        check_layout(layout, itype, f"{KEY}.mine")
        return
    with pytest.raises(ConfigError) as e:
        check_layout(layout, itype, f"{KEY}.mine")
    assert e.value.key == f"{KEY}.mine{key}"
    assert fragment in str(e.value) and itype in str(e.value)


def test_resolve_named_custom_and_unknown():
    custom = parse_custom_layouts(HALF_SMALL)
    key = "gpu-slicing:nodeGroups[0].migLayout"
    balanced = resolve_layout("all-balanced", "p4d.24xlarge", custom, key)
    assert dict(balanced.groups[0].profiles) == BALANCED["A100-40GB"] and not balanced.custom
    assert resolve_layout("all-balanced", "p5e.48xlarge", custom, key).groups[0].profiles == BALANCED["H200-141GB"]
    assert resolve_layout("p4d-half-small", "p4d.24xlarge", custom, key) is custom["p4d-half-small"]
    with pytest.raises(ConfigError) as e:  # an H200 profile on an A100
        resolve_layout("all-1g.18gb", "p4d.24xlarge", custom, key)
    assert e.value.key == key
    assert "all-balanced" in e.value.allowed and "all-1g.5gb" in e.value.allowed
    assert "p4d-half-small" in e.value.allowed and "all-1g.18gb" not in e.value.allowed
    with pytest.raises(ConfigError) as e:  # a custom layout of 1g.5gb does not fit an H100
        resolve_layout("p4d-half-small", "p5.48xlarge", custom, key)
    assert e.value.key == f"{KEY}.p4d-half-small[0].profiles" and key in str(e.value)


@pytest.mark.parametrize("itype", ["g5.xlarge", "g6.48xlarge", "g6e.12xlarge"])
def test_no_mig_layout_on_gpus_without_mig(itype):
    assert not resolve_layout("all-disabled", itype, {}, "k").mig_enabled
    with pytest.raises(ConfigError) as e:
        resolve_layout("all-balanced", itype, {}, "k")
    assert "no MIG" in str(e.value) and "all-disabled" in e.value.allowed


def _load(text: str) -> dict:
    doc = yaml.safe_load(text)
    assert doc["version"] == "v1" and list(doc) == ["version", "mig-configs"]
    return doc["mig-configs"]


def test_render_mig_parted_config_for_a_mixed_cluster():
    custom = parse_custom_layouts(HALF_SMALL)["p4d-half-small"]
    layouts = [resolve_layout(n, t, {}, "k") for n, t in
               [("all-balanced", "p4d.24xlarge"), ("all-balanced", "p5.48xlarge"), ("all-disabled", "g5.xlarge"),
                ("all-1g.10gb", "p4d.24xlarge"), ("all-1g.10gb", "p5.48xlarge"), ("all-balanced", "p4d.24xlarge")]]
    configs = _load(render_mig_parted_config([custom, *layouts]))
    assert list(configs) == sorted(configs) == ["all-1g.10gb", "all-balanced", "all-disabled", custom.name]
    assert configs["all-disabled"] == [{"devices": "all", "mig-enabled": False}]
    assert configs[custom.name] == [
        {"devices": [0, 1, 2, 3], "mig-enabled": True, "mig-devices": {"1g.5gb": 7}},
        {"devices": [4, 5, 6, 7], "mig-enabled": True, "mig-devices": {"4g.20gb": 1, "3g.20gb": 1}}]
    by_filter = {pci: e["mig-devices"] for e in configs["all-1g.10gb"] for pci in e["device-filter"]}
    # 1g.10gb is a 2-slice profile on the A100-40GB (4 fit) and the 1-slice one on H100 (7 fit): docs/facts.md §2.
    assert by_filter[PCI_IDS["A100-40GB"] + "10DE"] == {"1g.10gb": 4}
    assert by_filter[PCI_IDS["H100-80GB"] + "10DE"] == {"1g.10gb": 7}
    balanced = {pci: e["mig-devices"] for e in configs["all-balanced"] for pci in e["device-filter"]}
    assert balanced[PCI_IDS["A100-40GB"] + "10DE"] == BALANCED["A100-40GB"]
    assert balanced[PCI_IDS["H100-80GB"] + "10DE"] == BALANCED["H100-80GB"]


def test_render_is_deterministic():
    layouts = [*catalog.named_layouts(catalog.A100_40GB).values(), *catalog.named_layouts(catalog.H200_141GB).values(),
               *parse_custom_layouts(HALF_SMALL).values()]
    text = render_mig_parted_config(layouts)
    shuffled = layouts[:]
    random.Random(7).shuffle(shuffled)
    assert render_mig_parted_config(shuffled) == text


def test_rendered_named_layouts_agree_with_nvidia_default_config():
    """Our entry for a GPU equals the entry NVIDIA's default ConfigMap applies to that GPU."""
    nvidia = refdata.load("mig-parted-config")["mig-configs"]
    for itype in ("p4d.24xlarge", "p5.48xlarge", "p5e.48xlarge"):
        gpu = FACTS_GPUS[itype][0]
        pci = PCI_IDS[gpu] + "10DE"
        ours = _load(render_mig_parted_config(catalog.named_layouts(catalog.instance_type(itype).gpu).values()))
        for name, entries in ours.items():
            (mine,) = [e for e in entries if pci in e.get("device-filter", [pci])]
            theirs = [e for e in nvidia[name] if pci in e.get("device-filter", [pci])
                      and set(e.get("mig-devices") or {}) <= set(FACTS_PROFILES[gpu])]
            strip = {k: v for k, v in mine.items() if k != "device-filter"}
            assert strip == {k: v for k, v in theirs[0].items() if k != "device-filter"}, (itype, name)


# --- property: the validator accepts exactly the layouts that satisfy the rules ------------------

GPUS = 8


def rules_hold(raw_entries: list[dict], gpu: str) -> bool:
    """docs/facts.md §2 and the config rules, checked from the raw config without the code under test."""
    seen: list[int] = []
    for e in raw_entries:
        devices = list(range(GPUS)) if e["devices"] == "all" else e["devices"]
        if e["devices"] == "all" and len(raw_entries) > 1:
            return False
        seen += devices
        if e.get("profiles") and not brute_fits(gpu, e["profiles"]):
            return False
    return sorted(seen) == list(range(GPUS))


@st.composite
def raw_layouts(draw, gpu: str):
    """Mostly near-valid layouts: GPUs dealt to 1-4 entries, sometimes with a GPU lost, doubled or
    out of range, and profile counts around what fits."""
    names = list(FACTS_PROFILES[gpu]) + ["1g.6gb"]  # one profile no GPU here has
    if draw(st.booleans()) and draw(st.booleans()):
        entries_devices: list = ["all"]
    else:
        k = draw(st.integers(1, 4))
        owner = [draw(st.integers(0, k - 1)) for _ in range(GPUS)]
        entries_devices = [[d for d in range(GPUS) if owner[d] == i] for i in range(k)]
        entries_devices = [d for d in entries_devices if d]
        mutation = draw(st.sampled_from(["none", "none", "drop", "dup", "range"]))
        target = draw(st.integers(0, len(entries_devices) - 1))
        if mutation == "drop" and len(entries_devices[target]) > 1:
            entries_devices[target] = entries_devices[target][1:]
        elif mutation == "dup" and len(entries_devices) > 1:
            entries_devices[target] = entries_devices[target] + [entries_devices[target - 1][0]]
        elif mutation == "range":
            entries_devices[target] = entries_devices[target] + [GPUS + draw(st.integers(0, 2))]
    entries = []
    for devices in entries_devices:
        chosen = draw(st.lists(st.sampled_from(names), max_size=3, unique=True))
        profiles = {p: draw(st.integers(1, FACTS_PROFILES[gpu].get(p, (0, 0, 2))[2] + 1)) for p in chosen}
        entries.append({"devices": devices, **({"profiles": profiles} if profiles else {})})
    return entries


@pytest.mark.slow
@pytest.mark.parametrize("itype", ["p4d.24xlarge", "p5.48xlarge"])
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_validator_accepts_exactly_the_layouts_that_follow_the_rules(itype, data):
    gpu = FACTS_GPUS[itype][0]
    entries = data.draw(raw_layouts(gpu))
    try:
        layout = parse_custom_layouts({"prop": entries})["prop"]
        check_layout(layout, itype, f"{KEY}.prop")
        accepted = True
    except ConfigError:
        accepted = False
    assert accepted == rules_hold(entries, gpu), entries


# --- each error's whole text: the key, the value as the stack file writes it, what is allowed --------------

_SHAPE = "list of entries {devices: all | [GPU indexes], profiles: {profile: count}, migEnabled: bool}"
P4D = "p4d.24xlarge (8x A100-SXM4-40GB)"


@pytest.mark.parametrize("raw, message", [
    (["not", "a", "map"], f"{KEY}: [not, a, map] is not valid: a map of layout name -> a {_SHAPE}"),
    ({"Bad Name": [{"devices": "all"}]},
     f"{KEY}: 'Bad Name' is not valid: a layout name that is a Kubernetes label value of at most 55 characters of "
     "A-Z a-z 0-9 - _ . starting and ending with a letter or digit (the node label adds '-' and a 7-character "
     "content hash: 63 in all)"),
    ({"all-mine": [{"devices": "all"}]},
     f"{KEY}.all-mine: 'all-mine' is not valid: a name not starting with 'all-': those are NVIDIA's layouts "
     "(all-disabled, all-balanced, all-1g.5gb, ...) and a custom one would shadow them"),
    ({"empty": []}, f"{KEY}.empty: [] is not valid: a non-empty {_SHAPE}"),
    ({"l": ["all"]}, f"{KEY}.l[0]: 'all' is not valid: an entry {{devices: all | [GPU indexes], profiles: "
                     "{profile: count}}"),
    ({"l": [{"devices": "all", "profile": {"1g.5gb": 7}, "Devices": 1}]},
     f"{KEY}.l[0]: [Devices, profile] is not valid: only the keys devices, profiles, migEnabled"),
    ({"l": [{"devices": "all", "migEnabled": "yes"}]}, f"{KEY}.l[0].migEnabled: 'yes' is not valid: true or false"),
    ({"l": [{"devices": "all", "profiles": {"1g.5gb": 7}, "migEnabled": False}]},
     f"{KEY}.l[0].migEnabled: false is not valid: true (or omitted) when profiles are given: profiles need MIG "
     "mode on"),
    ({"l": [{"devices": [0]}, {"devices": "all"}]},
     f"{KEY}.l[1].devices: 'all' is not valid: GPU indexes: 'all' covers every GPU, so it must be the layout's "
     "only entry"),
    ({"l": [{"devices": "some"}]},
     f"{KEY}.l[0].devices: 'some' is not valid: 'all' or a non-empty list of GPU indexes (0, 1, ...)"),
    ({"l": [{"profiles": {"1g.5gb": 7}}]},
     f"{KEY}.l[0].devices: not set: 'all' or a non-empty list of GPU indexes (0, 1, ...)"),
    ({"l": [{"devices": [0, -1]}]},
     f"{KEY}.l[0].devices: [0, -1] is not valid: GPU indexes are non-negative integers, got -1"),
    ({"l": [{"devices": [0, True]}]},
     f"{KEY}.l[0].devices: [0, true] is not valid: GPU indexes are non-negative integers, got true"),
    ({"l": [{"devices": [1, 0, 1]}]},
     f"{KEY}.l[0].devices: [1, 0, 1] is not valid: each GPU in one entry only: GPU 1 is twice in this entry"),
    ({"l": [{"devices": [0, 1]}, {"devices": [3]}, {"devices": [2, 1]}]},
     f"{KEY}.l[2].devices: [2, 1] is not valid: each GPU in one entry only: GPU 1 is also in entry [0]"),
    ({"l": [{"devices": "all", "profiles": [["1g.5gb", 7]]}]},
     f"{KEY}.l[0].profiles: [[1g.5gb, 7]] is not valid: a map of MIG profile -> count, e.g. {{1g.5gb: 7}}"),
    ({"l": [{"devices": "all", "profiles": {"1g.5gb": 1, "": 1}}]},
     f"{KEY}.l[0].profiles: {{1g.5gb: 1, '': 1}} is not valid: profile names are strings like 1g.5gb, got ''"),
    ({"l": [{"devices": "all", "profiles": {"1g.5gb": 0}}]},
     f"{KEY}.l[0].profiles: {{1g.5gb: 0}} is not valid: counts are positive integers, got 1g.5gb: 0 (leave a "
     "profile out rather than give it 0)"),
    ({"l": [{"devices": "all", "profiles": {"1g.5gb": "7"}}]},
     f"{KEY}.l[0].profiles: {{1g.5gb: '7'}} is not valid: counts are positive integers, got 1g.5gb: '7' (leave a "
     "profile out rather than give it 0)"),
])
def test_structural_error_messages_in_full(raw, message):
    with pytest.raises(ConfigError) as e:
        parse_custom_layouts(raw)
    assert str(e.value) == message


def test_every_bad_layout_is_reported_at_once():
    with pytest.raises(ConfigError) as e:
        parse_custom_layouts({"a": [], "ok": [{"devices": "all"}], "b": [{"devices": "some"}]})
    assert [x.key for x in e.value.errors] == [f"{KEY}.a", f"{KEY}.b[0].devices"]


def test_check_error_messages_in_full():
    def check(entries, itype="p4d.24xlarge"):
        layout = parse_custom_layouts({"mine": entries})["mine"]
        with pytest.raises(ConfigError) as e:
            check_layout(layout, itype, f"{KEY}.mine")
        return e.value, layout

    e, _ = check([{"devices": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "profiles": {"1g.5gb": 7}}])
    assert str(e) == (f"{KEY}.mine[0].devices: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] is not valid: GPU indexes 0..7: {P4D} "
                      "has no GPU 8, 9")
    e, _ = check([{"devices": "all", "profiles": {"4g.20gb": 2}}])
    assert str(e) == (f"{KEY}.mine[0].profiles: {{4g.20gb: 2}} is not valid: profile counts one GPU of {P4D} can "
                      "hold: 2 x 4g.20gb need 8 compute slices; a GPU has 7 (A100-SXM4-40GB)")
    e, layout = check([{"devices": [0, 2], "profiles": {"1g.5gb": 7}}, {"devices": [5]}])
    assert (e.key, e.value) == (f"{KEY}.mine", layout.name)
    assert e.allowed == f"every GPU of {P4D} in exactly one entry; GPUs 1, 3, 4, 6, 7 are in none (use devices: all)"
    # a layout built elsewhere (not parsed) that names a GPU twice is caught here too
    twice = catalog.MigLayout("t", (catalog.GpuGroup((0, 1, 2, 3), False), catalog.GpuGroup((3, 4, 5, 6, 7), False)))
    with pytest.raises(ConfigError) as e:
        check_layout(twice, "p4d.24xlarge", "k")
    assert str(e.value) == "k[1].devices: [3, 4, 5, 6, 7] is not valid: each GPU in one entry only: GPU 3 is also in " \
                           "entry [0]"
    # MIG off on a GPU needs no profiles that fit it
    check_layout(catalog.MigLayout("w", (catalog.GpuGroup(None, False, {"1g.5gb": 99}),)), "p4d.24xlarge", "k")


def test_resolve_error_messages_in_full():
    key = "gpu-slicing:nodeGroups[0].migLayout"
    custom = {**parse_custom_layouts(HALF_SMALL), **parse_custom_layouts({
        "a-whole": [{"devices": "all"}], "z-h100": [{"devices": "all", "profiles": {"1g.20gb": 1}}]})}
    with pytest.raises(ConfigError) as e:
        resolve_layout("all-1g.18gb", "p4d.24xlarge", custom, key)
    # NVIDIA's layouts of the A100-40GB first, then the custom ones that fit a p4d, by name (z-h100 does not)
    assert str(e.value) == (f"{key}: 'all-1g.18gb' is not valid: a layout for p4d.24xlarge (A100-SXM4-40GB): "
                            "all-disabled, all-enabled, all-1g.5gb, all-1g.5gb.me, all-1g.10gb, all-2g.10gb, "
                            "all-3g.20gb, all-4g.20gb, all-7g.40gb, all-balanced, a-whole, p4d-half-small")
    with pytest.raises(ConfigError) as e:
        resolve_layout("all-balanced", "g5.xlarge", custom, key)
    assert str(e.value) == (f"{key}: 'all-balanced' is not valid: g5.xlarge has A10G GPUs, which have no MIG "
                            "(time-slicing still shares them): all-disabled, a-whole")
    with pytest.raises(ConfigError) as e:
        resolve_layout("all-balanced", "g6f.xlarge", {}, key)
    assert str(e.value) == (f"{key}: 'all-balanced' is not valid: g6f.xlarge has L4 GPUs, a fractional vGPU, which "
                            "can be neither sliced nor shared: all-disabled")
    with pytest.raises(ConfigError) as e:
        resolve_layout(7, "p4d.24xlarge", custom, key)
    assert str(e.value) == f"{key}: 7 is not valid: a layout name (a string)"
    with pytest.raises(ConfigError) as e:
        resolve_layout("all-balanced", "p9.mega", custom, key)
    assert (e.value.key, e.value.value) == (key, "p9.mega") and e.value.allowed.startswith("a known GPU instance type: ")
    with pytest.raises(ConfigError) as e:  # the custom layout's own key, its value, and who uses it
        resolve_layout("p4d-half-small", "p5.48xlarge", custom, key)
    assert (e.value.key, e.value.value) == (f"{KEY}.p4d-half-small[0].profiles", {"1g.5gb": 7})
    assert e.value.allowed.startswith("profile counts one GPU of p5.48xlarge (8x H100-80GB-HBM3) can hold: ")
    assert e.value.allowed.endswith(f" (layout 'p4d-half-small' is used by {key})")


def test_two_custom_layouts_render_side_by_side_and_one_name_holds_one_layout():
    a = parse_custom_layouts({"a": [{"devices": "all", "profiles": {"3g.20gb": 2}}]})["a"]
    b = parse_custom_layouts({"b": [{"devices": "all"}]})["b"]
    configs = _load(render_mig_parted_config([b, a, a]))
    assert configs == {a.name: [{"devices": "all", "mig-enabled": True, "mig-devices": {"3g.20gb": 2}}],
                       b.name: [{"devices": "all", "mig-enabled": False}]}
    clash = catalog.MigLayout(a.name, b.groups, custom=True)
    with pytest.raises(ValueError) as e:
        render_mig_parted_config([a, clash])
    assert str(e.value) == f"two different custom layouts are named '{a.name}'"


def test_a_custom_layouts_label_is_its_name_and_a_hash_of_every_gpus_setup():
    """The label lives on running nodes, so its value must not change while the layout does not: `<name>-` and
    the first 7 hex digits of the SHA-256 of the entries as compact JSON with sorted keys ([devices or "all",
    migEnabled, sorted [profile, count] pairs] per entry). Moving a profile to other GPUs changes it."""
    import hashlib

    def label(name, doc):
        return f"{name}-" + hashlib.sha256(doc.encode()).hexdigest()[:7]

    whole = parse_custom_layouts({"whole": [{"devices": "all", "profiles": {"3g.20gb": 2, "1g.5gb": 1}}]})["whole"]
    assert whole.name == label("whole", '[["all",true,[["1g.5gb",1],["3g.20gb",2]]]]')
    a = parse_custom_layouts({"x": [{"devices": [0, 1, 2, 3], "profiles": {"1g.5gb": 7}},
                                    {"devices": [7, 6, 5, 4]}]})["x"]
    assert a.name == label("x", '[[[0,1,2,3],true,[["1g.5gb",7]]],[[4,5,6,7],false,[]]]')
    b = parse_custom_layouts({"x": [{"devices": [4, 5, 6, 7], "profiles": {"1g.5gb": 7}},
                                    {"devices": [0, 1, 2, 3]}]})["x"]
    assert b.name != a.name


def test_the_mig_parted_config_text_and_the_entries_kept_for_live_nodes():
    """The ConfigMap's config.yaml as the MIG manager's own default config writes it (version first, lists and
    maps of plain values inline, as PyYAML's default_flow_style=None writes them); retained entries are kept as given, but never over a layout the stack uses."""
    a100 = catalog.named_layouts(catalog.A100_40GB)
    text = render_mig_parted_config([a100["all-balanced"], a100["all-disabled"]],
                                    {"all-balanced": [{"devices": "all", "mig-enabled": False}],
                                     "old-1234567": [{"devices": [0], "mig-enabled": True, "mig-devices": {"7g.40gb": 1}}]})
    assert text == ("version: v1\n"
                    "mig-configs:\n"
                    "  all-balanced:\n"
                    "  - device-filter: ['0x20B010DE']\n"
                    "    devices: all\n"
                    "    mig-enabled: true\n"
                    "    mig-devices: {1g.5gb: 2, 2g.10gb: 1, 3g.20gb: 1}\n"
                    "  all-disabled:\n"
                    "  - {devices: all, mig-enabled: false}\n"
                    "  old-1234567:\n"
                    "  - devices: [0]\n"
                    "    mig-enabled: true\n"
                    "    mig-devices: {7g.40gb: 1}\n")


def test_a_layout_claiming_to_be_nvidias_that_no_gpu_has_is_a_programming_error():
    fake = catalog.MigLayout("all-mine", (catalog.GpuGroup(None, True, {"1g.5gb": 3}),))
    with pytest.raises(ValueError) as e:
        render_mig_parted_config([fake])
    assert str(e.value) == "'all-mine' is not a named layout of any catalog GPU (is it custom?)"


def test_an_unknown_instance_type_is_named_with_every_known_one():
    from gpu_slicing.layouts import lookup_instance

    for bad in ("p9.mega", ["p4d.24xlarge"], None):
        with pytest.raises(ConfigError) as e:
            lookup_instance(bad, "gpu-slicing:nodeGroups[0].instanceType")
        assert (e.value.key, e.value.value) == ("gpu-slicing:nodeGroups[0].instanceType", bad)
        assert e.value.allowed == "a known GPU instance type: " + ", ".join(catalog.INSTANCE_TYPES)
    it = catalog.instance_type("p4d.24xlarge")
    assert lookup_instance(it, "k") is it and lookup_instance("p4d.24xlarge", "k") is it
    with pytest.raises(ConfigError) as e:
        check_layout(catalog.named_layouts(catalog.A100_40GB)["all-balanced"], "p9.mega", f"{KEY}.x")
    assert e.value.key == f"{KEY}.x"
