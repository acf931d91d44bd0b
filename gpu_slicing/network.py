"""Address planning for a new VPC."""
from __future__ import annotations

import ipaddress
import math


def subnet_blocks(cidr: str, azs: int) -> list[str]:
    """Split `cidr` into 2 x `azs` equal blocks: the first `azs` private, the rest public."""
    net = ipaddress.ip_network(cidr)
    extra = math.ceil(math.log2(2 * azs))
    return [str(s) for s in list(net.subnets(prefixlen_diff=extra))[: 2 * azs]]
