"""Address and zone planning for a new VPC."""
from __future__ import annotations

import ipaddress
import math
from itertools import combinations
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

from .errors import ConfigError

if TYPE_CHECKING:  # types only: config imports this module, and the policy pack reads it without pydantic
    from .config import NetworkConfig

# RFC 5737 documentation ranges: no real client has an address in them (docs/facts.md §10).
DOCUMENTATION_RANGES = tuple(ipaddress.IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))

ZONES_KEY = "gpu-slicing:network.availabilityZones"


def subnet_blocks(cidr: str, azs: int) -> list[str]:
    """Split `cidr` into 2 x `azs` equal blocks: the first `azs` private, the rest public."""
    net = ipaddress.ip_network(cidr)
    extra = math.ceil(math.log2(2 * azs))
    return [str(s) for s in list(net.subnets(prefixlen_diff=extra))[: 2 * azs]]


def offered_zones(instance_types: Sequence[str], locations: Sequence[str]) -> dict[str, set[str]]:
    """Instance type -> zones, from DescribeInstanceTypeOfferings' parallel lists (location type AZ)."""
    out: dict[str, set[str]] = {}
    for t, z in zip(instance_types, locations):
        out.setdefault(t, set()).add(z)
    return out


def choose_zones(available: Sequence[str], offers: Mapping[str, set[str]], gpu_types: Iterable[str],
                 count: int) -> list[str]:
    """`count` zones for a new VPC: of every set of `count` zones, the one where the most of the stack's GPU
    instance types are offered (then the most offerings, then the first names): not every zone offers every
    GPU type, and the first N zone names often lack p4d/p5. Raises a ConfigError when no set offers every
    type. The zones are chosen once: the subnets keep theirs afterwards (see components/network.py)."""
    types = sorted(set(gpu_types))
    if len(available) < count:
        raise ConfigError(ZONES_KEY, count, f"at most {len(available)}: the region has {len(available)} "
                                            f"available zones ({', '.join(available)})")

    def score(zones: tuple[str, ...]) -> tuple[int, int]:
        return (sum(bool(offers.get(t, set()) & set(zones)) for t in types),
                sum(z in offers.get(t, set()) for t in types for z in zones))

    best: tuple[str, ...] | None = None
    for combo in combinations(sorted(available), count):  # at most C(6, 3) = 20 sets in a region
        if best is None or score(combo) > score(best):
            best = combo
    chosen = list(best or ())
    missing = [t for t in types if not offers.get(t, set()) & set(chosen)]
    if missing:
        raise ConfigError(ZONES_KEY, count, "zones that offer every GPU instance type of the stack: "
                          + "; ".join(f"{t} is offered in {', '.join(sorted(offers.get(t, ()))) or 'no zone'}"
                                      for t in missing)
                          + f" of this region, none of the chosen {', '.join(chosen)}")
    return chosen


def subnets_for(instance_type: str, subnet_ids: Sequence[str], zones: Sequence[str],
                offers: Mapping[str, set[str]]) -> list[str]:
    """The subnets (one per zone, in `zones` order) in zones that offer `instance_type`: a node group
    placed in a zone without its type fails to launch there."""
    where = offers.get(instance_type, set())
    return [s for s, z in zip(subnet_ids, zones) if z in where]


def subnet_identity(cfg: NetworkConfig) -> dict[str, object]:
    """What decides the private subnets a node group spanning all of them gets, from config alone (the
    subnet IDs are unknown until created): a change here changes the node group's subnets, which only a new
    node group can take (EKS CreateNodegroup), so it belongs in the group's replacement token."""
    if cfg.existing:
        return {"privateSubnetIds": sorted(cfg.private_subnet_ids)}
    return {"vpcCidr": cfg.cidr, "availabilityZones": cfg.availability_zones}
