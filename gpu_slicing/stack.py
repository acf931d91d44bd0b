"""The one load pipeline: a stack file's config -> shape and types -> GPU pools -> rules across keys ->
capacity plan. The program, the offline plan and its checks, the advisor and the tests all load a stack
through `load_stack`, and a run loads each config once (the result is kept per config)."""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any, Mapping

from . import validate
from .capacity import CapacityPlan
from .config import StackConfig, parse_shape
from .pools import Pool


@dataclass(frozen=True)
class Stack:
    """A valid stack: its config, its GPU pools (node groups first, then NodePools) and its capacity plan."""

    config: StackConfig
    pools: tuple[Pool, ...]
    capacity: CapacityPlan

    def pool(self, name: str) -> Pool:
        return next(p for p in self.pools if p.name == name)


def load_stack(raw: Mapping[str, Any]) -> Stack:
    """Load and check a whole stack config (see the module docstring); raises `ConfigError` naming the key
    (`ConfigErrors` naming every key when several are wrong). Keys keep their order, so shape errors are
    reported in stack-file order."""
    return _load(json.dumps(raw, default=str))


@functools.lru_cache(maxsize=8)
def _load(text: str) -> Stack:
    cfg = parse_shape(json.loads(text))
    pools, plan = validate.check(cfg)
    return Stack(cfg, tuple(pools), plan)


def parse_config(raw: Mapping[str, Any]) -> StackConfig:
    """`load_stack(raw).config`: the checked config alone."""
    return load_stack(raw).config
