"""The calendar a stack lives by: which Kubernetes versions EKS creates, until when, at what price, and which
pinned Karpenter and GPU Operator releases support them. Dated data with its sources; `today` is always a
parameter (the system clock by default) so a test can move it.

Sources: EKS user guide "Understand the Kubernetes version lifecycle on EKS" (kubernetes-versions: release,
end of standard and of extended support, the extended-support price), EKS pricing (control plane $0.10 per
hour in standard support, $0.60 in extended support), Karpenter docs "Compatibility" at v1.14.1 (the oldest
Karpenter per Kubernetes minor), the GPU Operator chart v26.7.0 (`kubeVersion: >= 1.16.0-0`).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

EKS_GUIDE = "EKS user guide, Kubernetes version lifecycle"
STANDARD_USD_PER_HOUR = 0.10  # EKS pricing: a cluster's control plane in standard support
EXTENDED_USD_PER_HOUR = 0.60  # EKS pricing: in extended support


@dataclass(frozen=True)
class Version:
    """One EKS Kubernetes minor: the last day of standard support and of extended support (UTC dates; after
    the extended end EKS creates no cluster of it and upgrades existing ones). `karpenter_min` is the oldest
    Karpenter release that supports it (Karpenter's compatibility matrix)."""

    minor: str
    standard_end: dt.date
    extended_end: dt.date
    karpenter_min: str | None


# Karpenter's matrix at v1.14.1 names 1.34 (>= 1.6), 1.35 (>= 1.9), 1.36 (>= 1.13); the matrix only rises with
# the Kubernetes minor, so an older minor needs at most 1.6 (None: not read here, any pin >= 1.6 supports it).
# Extended support lasts 12 months after standard support (EKS version policy); where the guide gives the
# extended end, it is that date.
VERSIONS: tuple[Version, ...] = (
    Version("1.31", dt.date(2025, 11, 26), dt.date(2026, 11, 26), None),
    Version("1.32", dt.date(2026, 3, 23), dt.date(2027, 3, 23), None),
    Version("1.33", dt.date(2026, 7, 29), dt.date(2027, 7, 29), None),
    Version("1.34", dt.date(2026, 12, 2), dt.date(2027, 12, 2), "1.6.0"),
    Version("1.35", dt.date(2027, 3, 27), dt.date(2028, 3, 27), "1.9.0"),
    Version("1.36", dt.date(2027, 8, 2), dt.date(2028, 8, 2), "1.13.0"),
)
BY_MINOR = {v.minor: v for v in VERSIONS}
# The GPU Operator chart v26.7.0 declares `kubeVersion: >= 1.16.0-0`: every version above installs.
GPU_OPERATOR_KUBE_MIN = "1.16"


def today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def phase(minor: str, on: dt.date | None = None) -> str:
    """`standard`, `extended` or `ended` (past extended support: EKS creates no such cluster)."""
    v = BY_MINOR[minor]
    on = on or today()
    return "standard" if on <= v.standard_end else "extended" if on <= v.extended_end else "ended"


def control_plane_usd_per_hour(minor: str, on: dt.date | None = None) -> float:
    return EXTENDED_USD_PER_HOUR if phase(minor, on) == "extended" else STANDARD_USD_PER_HOUR


def _tuple(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.lstrip("v").split("-")[0].split("."))


def karpenter_supports(minor: str, karpenter: str) -> bool:
    return _tuple(karpenter) >= _tuple(BY_MINOR[minor].karpenter_min or BY_MINOR["1.34"].karpenter_min or "")


def gpu_operator_supports(minor: str) -> bool:
    return _tuple(minor) >= _tuple(GPU_OPERATOR_KUBE_MIN)


def minor_step(before: str, after: str) -> int:
    """How many minors `after` is ahead of `before` (negative: a downgrade)."""
    (a1, b1), (a2, b2) = _tuple(before)[:2], _tuple(after)[:2]
    return (b2 - b1) if a1 == a2 else (a2 - a1) * 100


def upgrade_refusal(before: str, after: str) -> str | None:
    """Why EKS refuses to move a cluster from `before` to `after`, or None (one minor up, or no change):
    UpdateClusterVersion upgrades one minor at a time and never downgrades."""
    step = minor_step(before, after)
    if step > 1:
        return (f"EKS upgrades one minor at a time (UpdateClusterVersion refuses {before} -> {after}): "
                f"upgrade to {before.split('.')[0]}.{int(before.split('.')[1]) + 1} first, roll the nodes, then go on")
    if step < 0:
        return f"EKS never downgrades a cluster ({before} -> {after})"
    return None


def describe(minor: str, on: dt.date | None = None) -> str:
    """One sentence on where `minor` stands in the calendar on `on`."""
    v, on = BY_MINOR[minor], on or today()
    p = phase(minor, on)
    if p == "standard":
        return f"Kubernetes {minor} is in EKS standard support until {v.standard_end} ({EKS_GUIDE})"
    if p == "extended":
        return (f"Kubernetes {minor} left EKS standard support on {v.standard_end} and is in extended support until "
                f"{v.extended_end}: its control plane costs ${EXTENDED_USD_PER_HOUR:.2f}/h instead of "
                f"${STANDARD_USD_PER_HOUR:.2f}/h ({EKS_GUIDE}; EKS pricing)")
    return (f"Kubernetes {minor} reached the end of EKS extended support on {v.extended_end} (standard support "
            f"ended {v.standard_end}): EKS creates no such cluster and upgrades existing ones ({EKS_GUIDE})")


def creatable(on: dt.date | None = None) -> list[str]:
    """The minors EKS creates on `on` (standard or extended support)."""
    return [v.minor for v in VERSIONS if phase(v.minor, on) != "ended"]
