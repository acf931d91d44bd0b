"""Read this stack's config from the Pulumi engine and hand it to the pure validator."""
from __future__ import annotations

from pulumi.runtime import config as runtime_config

from gpu_slicing.config import StackConfig, parse_config


def load() -> StackConfig:
    """Every config key of the stack, whatever its namespace: the parser reads `gpu-slicing:*` and refuses
    a namespace no provider of this stack reads (`gpu-slicng:workloads` is a typo, not someone else's key)."""
    return parse_config({**runtime_config.get_config_env(), **runtime_config.CONFIG.get()})
