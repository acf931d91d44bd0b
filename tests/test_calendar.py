"""The calendar: which Kubernetes versions EKS creates on a given day, what the control plane costs then, and
which upgrades EKS refuses. Dates from the EKS user guide's version lifecycle (1.31 extended support ended
2026-11-26; 1.34 standard ended 2026-12-02; 1.35 standard to 2027-03-27), prices from EKS pricing."""
from __future__ import annotations

import datetime as dt

import pytest

from gpu_slicing import calendar, config
from gpu_slicing.errors import ConfigError

DEC_6 = dt.date(2026, 12, 6)


def cluster(version, monkeypatch, on=DEC_6):
    monkeypatch.setattr(calendar, "today", lambda: on)
    return config.parse_shape({"gpu-slicing:maxGpuNodes": 1,
                               "gpu-slicing:cluster": {"name": "x", "kubernetesVersion": version}}).cluster


def test_a_version_past_extended_support_is_an_error_naming_the_key_and_the_dates(monkeypatch):
    with pytest.raises(ConfigError) as e:
        cluster("1.31", monkeypatch)
    text = str(e.value)
    assert text.startswith("gpu-slicing:cluster.kubernetesVersion: '1.31' is not valid")
    assert "2026-11-26" in text and "1.32, 1.33, 1.34, 1.35, 1.36" in text and "None" not in text


def test_the_same_version_was_fine_before_its_end(monkeypatch):
    assert cluster("1.31", monkeypatch, on=dt.date(2026, 11, 26)).kubernetes_version == "1.31"


@pytest.mark.parametrize("on,phase,usd", [(dt.date(2026, 12, 2), "standard", 0.10),
                                          (dt.date(2026, 12, 3), "extended", 0.60),
                                          (dt.date(2027, 12, 2), "extended", 0.60),
                                          (dt.date(2027, 12, 3), "ended", 0.10)])
def test_1_34_moves_through_the_calendar(on, phase, usd):
    assert calendar.phase("1.34", on) == phase
    if phase != "ended":
        assert calendar.control_plane_usd_per_hour("1.34", on) == usd


def test_extended_support_says_its_price():
    text = calendar.describe("1.34", DEC_6)
    assert "2026-12-02" in text and "2027-12-02" in text and "$0.60/h instead of $0.10/h" in text


def test_the_default_and_the_dev_stack_are_in_standard_support_and_supported_by_the_pins():
    from pathlib import Path

    import yaml

    dev = yaml.safe_load((Path(__file__).resolve().parents[1] / "Pulumi.dev.yaml").read_text())["config"]
    for v in (config.DEFAULT_KUBERNETES_VERSION, dev["gpu-slicing:cluster"]["kubernetesVersion"]):
        assert calendar.phase(v, DEC_6) == "standard"
        assert calendar.karpenter_supports(v, config.KARPENTER_VERSION)  # 1.35 needs >= 1.9 (Karpenter docs)
        assert calendar.gpu_operator_supports(v)


def test_karpenter_compatibility_matrix():
    assert calendar.karpenter_supports("1.36", "1.13.0") and not calendar.karpenter_supports("1.36", "1.12.9")
    assert not calendar.karpenter_supports("1.35", "1.8.2") and calendar.karpenter_supports("1.34", "1.6.0")


@pytest.mark.parametrize("before,after,refused", [("1.33", "1.34", False), ("1.34", "1.34", False),
                                                  ("1.33", "1.35", True), ("1.35", "1.34", True)])
def test_eks_upgrades_one_minor_at_a_time(before, after, refused):
    why = calendar.upgrade_refusal(before, after)
    assert (why is not None) == refused
    if refused and before == "1.33":
        assert "one minor at a time" in why and "1.34 first" in why


def test_creatable_today():
    assert calendar.creatable(DEC_6) == ["1.32", "1.33", "1.34", "1.35", "1.36"]


def test_the_plan_warns_in_extended_support_with_the_control_plane_in_its_cost_line(monkeypatch):
    from conftest import dev_config
    from tools import checks

    monkeypatch.setattr(calendar, "today", lambda: DEC_6)
    cfg = dev_config()
    cfg["gpu-slicing:cluster"]["kubernetesVersion"] = "1.34"
    [f] = checks.eks_calendar(cfg, [])
    assert f["severity"] == "warning" and "$0.60/h instead of $0.10/h" in f["message"]
    assert "43.92 + control plane 0.60 = 44.52 USD" in f["message"]  # 2 x p4d.24xlarge at 21.96
    cfg["gpu-slicing:cluster"]["kubernetesVersion"] = "1.35"
    [f] = checks.eks_calendar(cfg, [])
    assert f["severity"] == "info" and "control plane 0.10 = 44.02 USD" in f["message"]


def test_versions_read_as_their_projects_write_them():
    """Karpenter tags carry no `v`, the GPU Operator's do (v26.7.0), chart kubeVersion floors carry a pre-release
    (`>= 1.16.0-0`), and EKS patch versions have three parts: each compares by its numbers."""
    assert calendar._tuple("v26.7.0") == (26, 7, 0) and calendar._tuple("1.16.0-0") == (1, 16, 0)
    assert calendar.gpu_operator_supports("1.16") and not calendar.gpu_operator_supports("1.15")
    assert calendar.minor_step("1.34.2", "1.35.1") == 1 and calendar.minor_step("1.35", "1.35.3") == 0
    # a new major is never one step (EKS has none yet; the refusal must not read it as a downgrade)
    assert calendar.minor_step("1.36", "2.0") > 1 and calendar.minor_step("2.0", "1.36") < 0


def test_versions_older_than_karpenters_matrix_take_its_oldest_row():
    """Karpenter's compatibility matrix (v1.14.1) starts at Kubernetes 1.34 (>= 1.6): older minors are held
    to that row, not waved through."""
    assert calendar.karpenter_supports("1.33", "1.6.0") and not calendar.karpenter_supports("1.33", "1.5.9")


def test_the_calendar_is_read_on_the_day_it_is_given():
    """On 2026-11-01, before 1.31's extended support ended (2026-11-26), EKS still created 1.31 clusters; each
    phase's sentence names its own dates, whatever today is."""
    nov_1 = dt.date(2026, 11, 1)
    assert calendar.creatable(nov_1)[0] == "1.31" and "1.31" not in calendar.creatable(DEC_6)
    assert calendar.describe("1.34", nov_1) == ("Kubernetes 1.34 is in EKS standard support until 2026-12-02 "
                                                f"({calendar.EKS_GUIDE})")
    assert calendar.describe("1.34", DEC_6).startswith("Kubernetes 1.34 left EKS standard support on 2026-12-02 "
                                                       "and is in extended support until 2027-12-02: its control "
                                                       "plane costs $0.60/h instead of $0.10/h")
    assert calendar.describe("1.31", DEC_6).startswith("Kubernetes 1.31 reached the end of EKS extended support on "
                                                       "2026-11-26")
