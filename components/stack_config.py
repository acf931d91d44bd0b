"""Read this stack's config from the Pulumi engine and hand it to the pure validator."""
from __future__ import annotations

from pulumi.runtime import config as runtime_config

from gpu_slicing.config import NAMESPACE, StackConfig, parse_config


def load() -> StackConfig:
    """All `gpu-slicing:*` keys, including ones the program does not know (typos are errors)."""
    raw = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    ours = {k: v for k, v in raw.items() if k.startswith(NAMESPACE + ":")}
    return parse_config(ours)
