"""The DRA claim simulator, offline: every claim's CEL, evaluated with cel-python against the devices each
DRA pool's nodes will publish (`gpu_slicing.dra.resource_slice_devices`), beside the pure model's own answer. A
device is what a selector sees in Kubernetes: attributes and capacities under the driver's domain, each capacity a
quantity (with the quantity library's `quantity()`, `compareTo`, `isGreaterThan`, `isLessThan`), and a claim's
requests each with its DeviceClass's selector, a `firstAvailable` list as its subrequests.

cel-python stays a tools-only dependency (the program and `gpu_slicing` never import it, so `pulumi up`
loads nothing more): `gpu_slicing.dra.matches` states the same predicates in Python and refuses a claim
that matches nothing before anything is created (load_stack); this simulator proves the CEL the cluster
will run says the same, in the plan's `dra.claims` check.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Mapping, Sequence

from gpu_slicing import dra
from gpu_slicing.pools import Pool
from gpu_slicing.workloads import WORKLOADS_NAMESPACE, Workload


@dataclass(frozen=True)
class ClaimResult:
    workload: str
    pool: str
    claim: str  # the name of the claim object simulated (what the program registers)
    matched: tuple[str, ...]  # device names on its own pool's node that the CEL accepts
    agrees: bool  # the CEL and gpu_slicing.dra.matches accept the same devices
    foreign: tuple[str, ...]  # other-model DRA pools with a device the CEL accepts (a selector too loose)
    kinds: tuple[str, ...] = ()  # the kinds of the devices the CEL accepts (what the capacity plan must count)
    counted: tuple[str, ...] = ()  # the kinds the capacity plan counts a pod against (gpu_slicing.dra)

    @property
    def counted_right(self) -> bool:
        """The capacity plan counts a pod against exactly the kinds of device its claim can be given."""
        return set(self.kinds) == set(self.counted)


# Kubernetes resource.Quantity: a decimal number and a suffix, binary (Ki = 2^10 ... Ei), decimal (n, u, m, "", k, M ...
# E) or an exponent (e3, E-2); k8s.io/apimachinery/pkg/api/resource. What a device's capacity holds, as CEL sees it.
_QUANTITY = re.compile(r"([+-]?)(\d+\.?\d*|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?")
_SUFFIX = {"": Fraction(1), **{s: Fraction(2) ** (10 * (i + 1)) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
           **{s: Fraction(10) ** e for s, e in (("n", -9), ("u", -6), ("m", -3), ("k", 3), ("M", 6), ("G", 9),
                                                ("T", 12), ("P", 15), ("E", 18))}}


@functools.total_ordering
@dataclass(frozen=True)
class Quantity:
    """A capacity value as a selector reads it (`device.capacity['gpu.nvidia.com'].memory`): Kubernetes' CEL quantity
    type, compared by amount (`40Gi` is `42949672960`), never as text."""

    amount: Fraction

    @classmethod
    def parse(cls, text: str) -> Quantity:
        m = _QUANTITY.fullmatch(str(text))
        if m is None:
            raise ValueError(f"not a Kubernetes quantity: {text!r}")
        sign, number, suffix = m.groups(default="")
        scale = Fraction(10) ** int(suffix[1:]) if suffix[:1] in ("e", "E") else _SUFFIX[suffix]
        return cls(Fraction(sign + number) * scale)

    def __lt__(self, other: Quantity) -> bool:
        return self.amount < other.amount


@functools.lru_cache(maxsize=None)
def _program(expression: str):
    import celpy
    from celpy import celtypes

    def lower_ascii(s: Any) -> Any:
        """Kubernetes CEL strings library: lowerAscii()."""
        return celtypes.StringType("".join(c.lower() if c.isascii() else c for c in str(s)))

    def compare(a: Quantity, b: Quantity) -> Any:
        return celtypes.IntType((a > b) - (a < b))

    # Kubernetes CEL quantity library: quantity(), and the comparisons a capacity selector makes
    functions = {"lowerAscii": lower_ascii, "quantity": Quantity.parse, "compareTo": compare,
                 "isGreaterThan": lambda a, b: celtypes.BoolType(a > b),
                 "isLessThan": lambda a, b: celtypes.BoolType(a < b)}
    env = celpy.Environment()
    return env.program(env.compile(expression), functions=functions)


def _device_activation(device: Mapping[str, Any]) -> dict[str, Any]:
    """`device` as a CEL selector sees it: attributes and capacity keyed by the driver's domain, each capacity a
    quantity (a device may publish none: `capacity` is optional in resource.k8s.io/v1)."""
    import celpy
    from celpy import celtypes

    attrs = {k: next(iter(v.values())) for k, v in device["attributes"].items()}
    capacity = {celtypes.StringType(k): Quantity.parse(v["value"]) for k, v in device.get("capacity", {}).items()}
    cel = celpy.json_to_cel({"driver": dra.DRIVER, "attributes": {dra.DRIVER: attrs}})
    cel[celtypes.StringType("capacity")] = celtypes.MapType({celtypes.StringType(dra.DRIVER): celtypes.MapType(capacity)})
    return {"device": cel}


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
    devices = {p.name: dra.resource_slice_devices(p.largest, p.layout) for p in dra_pools}  # a node's ResourceSlice
    out = []
    for w in workloads:
        if w.claim is None:
            continue
        pool, config = w.pool, w.config
        claim = dra.claim_template(config, pool, WORKLOADS_NAMESPACE, claim=w.claim)
        matched = tuple(d["name"] for d in devices[pool.name] if claim_accepts(claim, d))
        model = tuple(d["name"] for d in devices[pool.name] if dra.matches(config, pool, d))
        foreign = tuple(p.name for p in dra_pools if p.gpu.name != pool.gpu.name
                        and any(claim_accepts(claim, d) for d in devices[p.name]))
        kinds = tuple(dict.fromkeys(dra.device_kind(d) for d in devices[pool.name] if d["name"] in matched))
        out.append(ClaimResult(w.name, pool.name, claim["metadata"]["name"], matched, matched == model, foreign, kinds,
                               (w.resource, *w.alternatives)))
    return out
