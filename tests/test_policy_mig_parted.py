"""How the policy pack reads a custom MIG layout from the MIG manager's ConfigMap (mig-parted's format:
`version: v1`, `mig-configs: {name: [{device-filter?, devices: all|[ids], mig-enabled, mig-devices}]}`):
which entries apply to a GPU (by `device-filter`, PCI device id + NVIDIA's vendor id 10DE, in any case),
which devices they cover, and what a text that is no such config gives. Expected layouts are written by
hand from the mig-parted format and the PCI ids of the FACTS tables (A100-40GB 0x20B0, H100 0x2330)."""
from __future__ import annotations

from policy import rules
from gpu_slicing.catalog import A100_40GB, GpuGroup, MigLayout


def test_entries_for_another_gpu_are_left_out_and_filters_match_in_any_case():
    entries = [
        {"device-filter": "0x233010DE", "devices": "all", "mig-enabled": True, "mig-devices": {"1g.10gb": 7}},
        {"device-filter": ["0x2330110de", "0x20b010de"], "devices": [0, 1], "mig-enabled": True,
         "mig-devices": {"3g.20gb": 2}},
        {"devices": ["2", "3"], "mig-enabled": "true", "mig-devices": {"1g.5gb": 7}},
    ]
    assert rules.layout_from_mig_parted("mine", entries, A100_40GB) == MigLayout("mine", (
        GpuGroup((0, 1), True, {"3g.20gb": 2}), GpuGroup((2, 3), True, {"1g.5gb": 7})), custom=True)


def test_an_entry_that_is_no_mapping_is_skipped_not_the_end():
    entries = ["all", None, {"devices": "all", "mig-enabled": True, "mig-devices": {"7g.40gb": 1}}]
    assert rules.layout_from_mig_parted("x", entries, A100_40GB) == MigLayout(
        "x", (GpuGroup(None, True, {"7g.40gb": 1}),), custom=True)


def test_devices_default_to_all_and_mig_off_drops_its_devices():
    entries = [{"mig-enabled": False, "mig-devices": {"1g.5gb": 7}}, {"devices": [4], "mig-enabled": "false"},
               {"devices": [5], "mig-enabled": True}]
    assert rules.layout_from_mig_parted("x", entries, A100_40GB) == MigLayout(
        "x", (GpuGroup(None, False, {}), GpuGroup((4,), False, {}), GpuGroup((5,), True, {})), custom=True)


def test_a_mig_parted_text_is_read_as_layout_name_to_entries():
    text = ("version: v1\nmig-configs:\n  a:\n    - devices: all\n      mig-enabled: false\n"
            "  b:\n    devices: all\n    mig-enabled: true\n  7:\n    - devices: [0]\n")
    assert rules.parse_mig_parted(text) == {
        "a": [{"devices": "all", "mig-enabled": False}],
        "b": [{"devices": "all", "mig-enabled": True}],  # a single entry, not in a list
        "7": [{"devices": [0]}],  # names are strings whatever YAML made of them
    }


def test_what_is_no_mig_parted_config_reads_as_none():
    for text in (None, 42, "{not yaml", "version: v1\n", "mig-configs: [a, b]\n", "- 1\n- 2\n", rules.UNKNOWN):
        assert rules.parse_mig_parted(text) is None, text
