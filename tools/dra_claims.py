"""The DRA claim simulator, offline: every claim's CEL, evaluated with cel-python against the devices each
DRA pool's nodes will publish (`gpu_slicing.dra.resource_slice`), beside the pure model's own answer.

cel-python stays a tools-only dependency (the program and `gpu_slicing` never import it, so `pulumi up`
loads nothing more): `gpu_slicing.dra.matches` states the same predicates in Python and refuses a claim
that matches nothing before anything is created (load_stack); this simulator proves the CEL the cluster
will run says the same, in the plan's `dra.claims` check.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from gpu_slicing import dra
from gpu_slicing.pools import Pool
from gpu_slicing.workloads import Workload


@dataclass(frozen=True)
class ClaimResult:
    workload: str
    pool: str
    matched: tuple[str, ...]  # device names on its own pool's node that the CEL accepts
    agrees: bool  # the CEL and gpu_slicing.dra.matches accept the same devices
    foreign: tuple[str, ...]  # other-model DRA pools with a device the CEL accepts (a selector too loose)
    kinds: tuple[str, ...] = ()  # the kinds of the devices the CEL accepts (what the capacity plan must count)
    counted: tuple[str, ...] = ()  # the kinds the capacity plan counts a pod against (gpu_slicing.dra)

    @property
    def counted_right(self) -> bool:
        """The capacity plan counts a pod against exactly the kinds of device its claim can be given."""
        return set(self.kinds) == set(self.counted)


@functools.lru_cache(maxsize=None)
def _program(expression: str):
    import celpy
    from celpy import celtypes

    def lower_ascii(s: Any) -> Any:
        """Kubernetes CEL strings library: lowerAscii()."""
        return celtypes.StringType("".join(c.lower() if c.isascii() else c for c in str(s)))

    env = celpy.Environment()
    return env.program(env.compile(expression), functions={"lowerAscii": lower_ascii})


def _device_activation(device: Mapping[str, Any]) -> dict[str, Any]:
    """`device` as a CEL selector sees it: attributes and capacity keyed by the driver's domain."""
    import celpy

    attrs = {k: next(iter(v.values())) for k, v in device["attributes"].items()}
    capacity = {k: v["value"] for k, v in device.get("capacity", {}).items()}
    return {"device": celpy.json_to_cel({"driver": dra.DRIVER, "attributes": {dra.DRIVER: attrs},
                                         "capacity": {dra.DRIVER: capacity}})}


def accepts(expression: str, device: Mapping[str, Any]) -> bool:
    """Whether the CEL `expression` accepts `device`. A node publishes many devices that differ only in what a
    selector never reads (uuid, parent), so each answer is kept for the attributes and capacities the
    expression names: a pool of 8 GPUs evaluates each selector once per kind of device, not once per device."""
    def named(values: Mapping[str, Any]) -> tuple:
        return tuple(sorted((k, repr(v)) for k, v in values.items() if k in expression))

    key = named(device["attributes"]), named(device.get("capacity", {}))
    return _accepts(expression, key, device)


def _accepts(expression: str, key: tuple, device: Mapping[str, Any]) -> bool:
    if (expression, key) not in _ANSWERS:
        _ANSWERS[expression, key] = bool(_program(expression).evaluate(_device_activation(device)))
    return _ANSWERS[expression, key]


_ANSWERS: dict[tuple[str, tuple], bool] = {}


def _requests(claim: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    spec = claim["spec"]["spec"] if claim["kind"] == "ResourceClaimTemplate" else claim["spec"]
    out = []
    for r in spec["devices"]["requests"]:
        out += r.get("firstAvailable") or [r["exactly"]]
    return out


def claim_accepts(claim: Mapping[str, Any], device: Mapping[str, Any]) -> bool:
    """Whether one of the claim's (sub)requests accepts `device`: its DeviceClass's selector and its own."""
    for req in _requests(claim):
        exprs = [dra.CLASS_SELECTORS[req["deviceClassName"]], *(s["cel"]["expression"] for s in req.get("selectors", []))]
        if all(accepts(e, device) for e in exprs):
            return True
    return False


def simulate(workloads: Sequence[Workload], pools: Mapping[str, Pool]) -> list[ClaimResult]:
    """Each resolved workload that holds a claim (`Workload.claim`, on a DRA pool), its claim as the program builds
    it, against the devices of its own pool's nodes and of every other DRA pool in `pools`; what the capacity plan
    counts is what resolution decided (`Workload.resource` and `.alternatives`), never derived here again."""
    dra_pools = [p for p in pools.values() if p.allocation == dra.DRA]
    devices = {p.name: dra.resource_slice(p, p.largest, f"{p.name}-node")["spec"]["devices"] for p in dra_pools}
    out = []
    for w in workloads:
        if w.claim is None:
            continue
        pool, config = w.pool, w.config
        claim = dra.claim_template(config, pool, "simulated", claim=w.claim)
        matched = tuple(d["name"] for d in devices[pool.name] if claim_accepts(claim, d))
        model = tuple(d["name"] for d in devices[pool.name] if dra.matches(config, pool, d))
        foreign = tuple(p.name for p in dra_pools if p.gpu.name != pool.gpu.name
                        and any(claim_accepts(claim, d) for d in devices[p.name]))
        kinds = tuple(dict.fromkeys(dra.device_kind(d) for d in devices[pool.name] if d["name"] in matched))
        out.append(ClaimResult(w.name, pool.name, matched, matched == model, foreign, kinds,
                               (w.resource, *w.alternatives)))
    return out
