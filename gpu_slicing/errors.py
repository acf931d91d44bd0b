"""The one error type for bad stack config: it always names the key, the bad value and what is allowed."""
from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """Raised before any resource is registered; `key` is the full config path, e.g.
    `gpu-slicing:nodeGroups[0].maxSize`."""

    def __init__(self, key: str, value: Any, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}: {value!r} is not valid: {allowed}")
