"""Kubernetes scheduling rules the planner and the policy rules share: taint effects and toleration
matching, as the scheduler applies them."""
from __future__ import annotations

from typing import Iterable, Mapping

_BLOCKING = {"NoSchedule", "NoExecute"}
_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}


def blocks(effect: str | None) -> bool:
    """Whether a taint of this effect keeps pods that do not tolerate it off the node."""
    return taint_effect(effect) in _BLOCKING


def taint_effect(effect: str | None) -> str:
    """Kubernetes' spelling of a taint effect (EKS APIs say NO_SCHEDULE where Kubernetes says NoSchedule)."""
    return _EFFECTS.get(effect or "", effect or "")


def tolerates(tolerations: Iterable[Mapping[str, str]], taint: Mapping[str, str]) -> bool:
    """Kubernetes toleration matching: key (empty key + Exists = everything), operator, value, effect."""
    effect = taint_effect(taint.get("effect"))
    for t in tolerations:
        t_effect = taint_effect(t.get("effect"))
        if t_effect and t_effect != effect:
            continue
        op = t.get("operator", "Equal")
        if not t.get("key"):
            if op == "Exists":
                return True
            continue
        if t["key"] == taint.get("key") and (op == "Exists" or t.get("value", "") == taint.get("value", "")):
            return True
    return False
