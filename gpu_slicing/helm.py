"""Helm values as key paths: what the reviewed allow-lists are written in and checked against."""
from __future__ import annotations

from typing import Any, Collection, Mapping


def flatten(values: Mapping[str, Any], prefix: str = "", opaque: Collection[str] = ()) -> list[str]:
    """Leaf key paths of `values`; lists, empty maps and `opaque` paths (free-form maps) are leaves."""
    out = []
    for k, v in values.items():
        path = f"{prefix}{k}"
        if isinstance(v, Mapping) and v and path not in opaque:
            out.extend(flatten(v, path + ".", opaque))
        else:
            out.append(path)
    return out


def has_path(values: Mapping[str, Any], path: str) -> bool:
    """Whether a chart's values.yaml defines `path` (a.b.c)."""
    node: Any = values
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True
