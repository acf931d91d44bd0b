"""Checks over the recorded graph: each returns findings `{"id", "severity", "message", "resource"}`."""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

Finding = dict[str, Any]
CHECKS: list[Callable[[Mapping[str, Any], list[dict]], Iterable[Finding]]] = []


def check(fn):
    CHECKS.append(fn)
    return fn


def finding(id_: str, severity: str, message: str, resource: str | None = None) -> Finding:
    return {"id": id_, "severity": severity, "message": message, "resource": resource}


def run_checks(config: Mapping[str, Any], resources: list[dict]) -> list[Finding]:
    return [f for c in CHECKS for f in c(config, resources)]


def capacity_table(config: Mapping[str, Any]) -> str:
    from gpu_slicing.config import parse_config
    from gpu_slicing.pools import resolve_pools
    from gpu_slicing.validate import capacity_plan

    cfg = parse_config(config)
    return capacity_plan(cfg, resolve_pools(cfg)).format_table()


@check
def capacity_warnings(config: Mapping[str, Any], resources: list[dict]) -> Iterable[Finding]:
    """Workloads that fit only after scaling out: the plan's warnings, as checks."""
    from gpu_slicing.config import parse_config
    from gpu_slicing.pools import resolve_pools
    from gpu_slicing.validate import capacity_plan

    cfg = parse_config(config)
    for w in capacity_plan(cfg, resolve_pools(cfg)).warnings:
        yield finding("capacity.scale-out", "warning", str(w))
