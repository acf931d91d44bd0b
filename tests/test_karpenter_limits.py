"""What Karpenter's NodePool limits admit and when it may disrupt, worked by hand: Kubernetes quantities (the
grammar of k8s.io/apimachinery's resource.Quantity and the examples of the Kubernetes documentation,
"Resource Management for Pods and Containers": 128974848, 129e6, 129M, 128974848000m and 123Mi are about
the same memory; 0.1 CPU is 100m), the nodes a pool's limits admit (Karpenter stops launching once a limit
would be exceeded: per instance type the scarcest resource decides), and the maintenance window as
Karpenter's disruption budgets (cron in UTC; the most restrictive active budget applies)."""
from __future__ import annotations

import pytest

from gpu_slicing import karpenter as spec
from gpu_slicing.catalog import INSTANCE_TYPES
from gpu_slicing.errors import ConfigError


@pytest.mark.parametrize("text, value", [
    ("128974848", 128974848), ("129e6", 129e6), ("129M", 129e6), ("128974848000m", 128974848), ("123Mi", 123 * 2 ** 20),
    ("100m", 0.1), ("0.1", 0.1), (".5", 0.5), ("1.", 1), ("1.5Gi", 1.5 * 2 ** 30), ("1k", 1000), ("1Ki", 1024),
    ("2Ti", 2 * 2 ** 40), ("2Pi", 2 * 2 ** 50), ("2T", 2e12), ("2P", 2e15), ("2E", 2e18),
    ("2G", 2e9), ("5n", 5e-9), ("3u", 3e-6), ("1E3", 1000), ("1e-3", 0.001), ("1e+2", 100), ("+2", 2), ("-1", -1),
    (" 8 ", 8), (96, 96), (1.5, 1.5),
])
def test_quantities_read_as_kubernetes_reads_them(text, value):
    assert spec.quantity(text) == pytest.approx(value, rel=1e-12)


def test_the_exbibyte_suffix():
    assert spec.quantity("2Ei") == 2 * 2 ** 60


@pytest.mark.parametrize("text, value", [
    ("1e400", 2 ** 63 - 1), ("-1e400", -(2 ** 63 - 1)), ("16Ei", 2 ** 63 - 1), ("9223372036854775807", 2 ** 63 - 1),
    ("0e400", 0), ("0", 0), ("1e-400", 0),
])
def test_a_quantity_past_what_kubernetes_holds_reads_as_its_cap(text, value):
    """apimachinery's resource.Quantity: no quantity is larger than 2^63-1 in magnitude, a larger one is capped
    (16Ei is twice the cap). An exponent of 400 used to raise OverflowError, crashing the limits check."""
    assert spec.quantity(text) == pytest.approx(value, rel=1e-15, abs=0)


def test_a_limit_at_the_cap_admits_what_the_other_limits_do():
    assert spec.nodes_within_limits({"cpu": "1e400", "nvidia.com/gpu": "16"}, [P4D]) == 2


@pytest.mark.parametrize("text", ["1K", "1KB", "1.2.3", "", "x", "Gi", "1 Gi", "--1", "1e", "0x10", None, True, False])
def test_what_is_no_quantity_reads_as_none(text):
    assert spec.quantity(text) is None


P4D, G5_1, G5_48 = INSTANCE_TYPES["p4d.24xlarge"], INSTANCE_TYPES["g5.xlarge"], INSTANCE_TYPES["g5.48xlarge"]


@pytest.mark.parametrize("limits, types, nodes", [
    # p4d: 96 vCPU, 1152 GiB, 8 GPUs; the scarcest resource decides
    ({"cpu": "192", "memory": "1152Gi", "nvidia.com/gpu": "32"}, [P4D], 1),
    ({"cpu": "96000m", "memory": "4608Gi", "nvidia.com/gpu": "32"}, [P4D], 1),
    ({"cpu": "400", "memory": "10000Gi", "nvidia.com/gpu": "24"}, [P4D], 3),
    ({"cpu": "95"}, [P4D], 0),
    ({"nvidia.com/gpu": "17", "pods": "1"}, [P4D], 2),  # a limit on what no node counts is no bound
    # g5.xlarge (4 vCPU, 16 GiB, 1 GPU) and g5.48xlarge (192 vCPU, 768 GiB, 8 GPUs): the smaller type admits most
    ({"nvidia.com/gpu": "16", "cpu": "384", "memory": "1536Gi"}, [G5_48, G5_1], 16),
    ({"nvidia.com/gpu": "16", "cpu": "384", "memory": "1536Gi"}, [G5_1, G5_48], 16),
    ({"nvidia.com/gpu": "16", "cpu": "384", "memory": "1536Gi"}, [G5_48], 2),
    ({"memory": "64Gi"}, [G5_1, G5_48], 4),
    ({"cpu": "8", "memory": "x"}, [G5_1], 2),  # an unreadable quantity limits nothing
    ({"cpu": "8"}, [], 0),
])
def test_nodes_a_pools_limits_admit(limits, types, nodes):
    assert spec.nodes_within_limits(limits, types) == nodes


@pytest.mark.parametrize("limits", [{}, {"pods": "100"}, {"cpu": "x"}, {"nvidia.com/mig-1g.5gb": "56"}])
def test_limits_that_bound_no_node_resource_bound_nothing(limits):
    assert spec.nodes_within_limits(limits, [P4D]) is None


ALWAYS = [{"nodes": "1", "reasons": ["Empty"]}, {"nodes": "1", "reasons": ["Drifted"]}]


def test_without_a_window_empty_and_drifted_nodes_go_one_at_a_time_whenever():
    budgets = spec.disruption_budgets(None, None)
    assert budgets == ALWAYS
    budgets[0]["reasons"].append("Underutilized")  # each call gets its own copy
    budgets[1]["nodes"] = "5"
    assert spec.disruption_budgets(None, None) == ALWAYS


@pytest.mark.parametrize("schedule, duration, closed", [
    # daily 02:00 for 23h59m: closed 01:59 to 02:00 the next day
    ("0 2 * * *", "23h59m", {"schedule": "59 1 * * *", "duration": "1m"}),
    ("15 0 * * *", "90m", {"schedule": "45 1 * * *", "duration": "22h30m"}),
    ("0 0 * * *", "12h", {"schedule": "0 12 * * *", "duration": "12h"}),
    ("59 23 * * *", "1m", {"schedule": "0 0 * * *", "duration": "23h59m"}),
    # weekly, Wednesday 12:00 for 12h: closed from Thursday 00:00 for the rest of the week (168h - 12h)
    ("0 12 * * 3", "12h", {"schedule": "0 0 * * 4", "duration": "156h"}),
    ("30 1 * * 0", "1h", {"schedule": "30 2 * * 0", "duration": "167h"}),
    ("0 20 * * 6", "6h", {"schedule": "0 2 * * 0", "duration": "162h"}),  # Saturday night into Sunday
    ("0 0 * * 0", "167h", {"schedule": "0 23 * * 6", "duration": "1h"}),
])
def test_drift_is_closed_outside_the_window(schedule, duration, closed):
    assert spec.disruption_budgets(schedule, duration, "k") == [*ALWAYS, {"nodes": "0", "reasons": ["Drifted"], **closed}]


KEY = "gpu-slicing:karpenter.nodePools[0]"


@pytest.mark.parametrize("schedule, duration, field, value", [
    ("60 2 * * *", "4h", "driftSchedule", "60 2 * * *"),  # minute past 59
    ("0 24 * * *", "4h", "driftSchedule", "0 24 * * *"),  # hour past 23
    ("0 2 * * 7", "4h", "driftSchedule", "0 2 * * 7"),  # day of week 0-6
    ("0 2 * 1 *", "4h", "driftSchedule", "0 2 * 1 *"),
    ("@daily", "4h", "driftSchedule", "@daily"),
    ("0 2 * * *", "0h", "driftDuration", "0h"),
    ("0 2 * * *", "24h", "driftDuration", "24h"),  # a daily window as long as the day closes nothing
    ("0 2 * * 1", "168h", "driftDuration", "168h"),
    ("0 2 * * *", "4d", "driftDuration", "4d"),
    ("0 2 * * *", "", "driftDuration", ""),
])
def test_a_bad_window_names_its_field_and_value(schedule, duration, field, value):
    with pytest.raises(ConfigError) as e:
        spec.disruption_budgets(schedule, duration, KEY)
    assert (e.value.key, e.value.value) == (f"{KEY}.{field}", value)


def test_a_bad_schedule_says_which_cron_schedules_are_read():
    """The error is the only documentation a user sees at `pulumi preview`: the two cron shapes, Sunday as 0, UTC,
    and that the schedule goes with a duration."""
    with pytest.raises(ConfigError) as e:
        spec.disruption_budgets("0 2 1 * *", "4h", KEY)
    assert e.value.allowed == ("a daily 'M H * * *' or weekly 'M H * * D' (D 0-6, 0 = Sunday) cron schedule in UTC, "
                               "set with driftDuration")


def test_a_weekly_window_may_be_longer_than_a_day():
    assert spec.disruption_budgets("0 2 * * 1", "25h", KEY)[-1] == {
        "nodes": "0", "reasons": ["Drifted"], "schedule": "0 3 * * 2", "duration": "143h"}


def test_object_names_carry_pool_and_instance_type():
    assert spec.overlay_name("p4d-small", "p4d.24xlarge") == "p4d-small-p4d-24xlarge"
    assert spec.overlay_name("l4", "g6f.2xlarge") == "l4-g6f-2xlarge"
    assert spec.rule_name("gpu-dev", "spot") == "Karpenter-gpu-dev-spot"
    assert (spec.node_role_name("c"), spec.controller_role_name("c"), spec.queue_name("c")) == (
        "KarpenterNodeRole-c", "KarpenterControllerRole-c", "Karpenter-c")
    assert spec.policy_name("c", "NodeLifecycle") == "KarpenterControllerNodeLifecyclePolicy-c"
