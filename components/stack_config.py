"""Read this stack's config from the Pulumi engine and hand it to the pure load pipeline."""
from __future__ import annotations

from pulumi.runtime import config as runtime_config

from gpu_slicing.stack import Stack, load_stack


def load() -> Stack:
    """Every key of every namespace: the parser refuses `gpu-slicing` keys it does not know and namespaces
    that look like a typo of ours (both would otherwise be silently dropped)."""
    return load_stack({**runtime_config.get_config_env(), **runtime_config.CONFIG.get()})
