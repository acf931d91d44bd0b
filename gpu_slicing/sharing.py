"""GPU sharing through the NVIDIA device plugin: time-slicing (any resource) and MPS (whole GPUs only).

Config per pool: `sharing: {timeSlicing: {replicas: 4, resources: [nvidia.com/mig-1g.5gb],
renameByDefault: false, failRequestsGreaterThanOne: false}}` or `sharing: {mps: {replicas: N}}`.
Omitted `resources` means every GPU resource the node advertises. The device plugin reads one YAML per
distinct setup from `devicePlugin.config.data.<key>`; a node picks its setup with the label
`nvidia.com/device-plugin.config=<key>` (docs/facts.md §3). Replicas share one slice with no memory or fault
isolation, so they add schedulable slots, not compute.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping

from .catalog import WHOLE_GPU
from .errors import ConfigError, as_yaml
from .layouts import is_label_value

TIME_SLICING = "timeSlicing"
MPS = "mps"
_KEYS = {TIME_SLICING: ("replicas", "resources", "renameByDefault", "failRequestsGreaterThanOne"),
         MPS: ("replicas", "resources", "renameByDefault")}
_RESOURCE = re.compile(r"^nvidia\.com/(gpu|mig-[0-9a-z.+-]+)$")

# The JSON Schema fragment of a pool's `sharing` (gpu_slicing.schema), matching `parse_sharing`; what the
# node advertises (`check_sharing`: MPS only without MIG, resources the node has) is not in it.
_SHARE = {"replicas": {"description": "how many pods share each resource (1 is no sharing)",
                       "type": "integer", "minimum": 2},
          "renameByDefault": {"description": "advertise shared resources as <name>.shared", "type": "boolean"}}
SHARING_SCHEMA = {
    "type": ["object", "null"], "additionalProperties": False, "maxProperties": 1,
    "description": "GPU sharing through the device plugin: timeSlicing or mps (one of them)",
    "properties": {
        TIME_SLICING: {"description": "time-slicing: pods take turns on a GPU or MIG slice (no memory isolation)",
                       "type": "object", "additionalProperties": False, "required": ["replicas"],
                       "properties": {**_SHARE,
                                      "resources": {"description": "resources to share (default: all the node "
                                                                   "advertises)",
                                                    "type": "array", "minItems": 1, "uniqueItems": True,
                                                    "items": {"type": "string", "pattern": _RESOURCE.pattern}},
                                      "failRequestsGreaterThanOne": {"description": "fail a pod asking for "
                                                                                    "more than one share",
                                                                     "type": "boolean"}}},
        MPS: {"description": "MPS: fixed shares of a whole GPU (not with MIG)",
              "type": "object", "additionalProperties": False, "required": ["replicas"],
              "properties": {**_SHARE,
                             "resources": {"description": "MPS shares whole GPUs only",
                                           "type": "array", "minItems": 1, "maxItems": 1,
                                           "items": {"const": WHOLE_GPU}}}},
    },
}


@dataclass(frozen=True)
class Sharing:
    """One sharing setup. `resources` None means "all the node advertises" until `check_sharing`
    resolves it against a node; the config key and YAML need the resolved, explicit list."""

    kind: str  # TIME_SLICING | MPS
    replicas: int
    resources: tuple[str, ...] | None = None
    rename_by_default: bool = False
    fail_requests_greater_than_one: bool = False

    def advertised_as(self, resource: str) -> str:
        """The name a shared resource is advertised under (`renameByDefault` appends `.shared`)."""
        return resource + ".shared" if self.rename_by_default else resource

    def shares(self, resource: str) -> bool:
        return self.resources is not None and resource in self.resources


def parse_sharing(raw: Any, key: str) -> Sharing | None:
    """The shape of a pool's `sharing` block; what the node advertises is checked by `check_sharing`."""
    if raw is None or raw == {}:
        return None
    if not isinstance(raw, Mapping):
        raise ConfigError(key, raw, "{timeSlicing: {replicas: N, resources: [...]}} or {mps: {replicas: N}}")
    kinds = [k for k in raw if k in _KEYS]
    unknown = sorted(str(k) for k in raw if k not in _KEYS)
    if unknown:
        raise ConfigError(key, unknown, "only timeSlicing or mps")
    if len(kinds) != 1:
        raise ConfigError(key, sorted(kinds), "one of timeSlicing or mps: the device plugin cannot do both at once")
    kind = kinds[0]
    body, bkey = raw[kind], f"{key}.{kind}"
    if not isinstance(body, Mapping):
        raise ConfigError(bkey, body, "a map with replicas (and optionally resources, renameByDefault"
                                      + (", failRequestsGreaterThanOne)" if kind == TIME_SLICING else ")"))
    unknown = sorted(str(k) for k in body if k not in _KEYS[kind])
    if unknown:
        raise ConfigError(bkey, unknown, f"only the keys {', '.join(_KEYS[kind])}")
    replicas = body.get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 2:
        raise ConfigError(f"{bkey}.replicas", replicas, "an integer >= 2 (1 replica is no sharing)")
    resources = _parse_resources(body.get("resources"), f"{bkey}.resources", kind)
    flags = {}
    for name in ("renameByDefault", "failRequestsGreaterThanOne"):
        value = body.get(name, False)
        if not isinstance(value, bool):
            raise ConfigError(f"{bkey}.{name}", value, "true or false")
        flags[name] = value
    # The device plugin forces failRequestsGreaterThanOne for MPS: a request is one fixed share.
    return Sharing(kind, replicas, resources, flags["renameByDefault"],
                   flags["failRequestsGreaterThanOne"] or kind == MPS)


def _parse_resources(raw: Any, key: str, kind: str) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, (list, tuple)) or not raw:
        raise ConfigError(key, raw, "a non-empty list of resource names (omit it to share every GPU resource)")
    for r in raw:
        if not isinstance(r, str) or not _RESOURCE.fullmatch(r):
            raise ConfigError(key, list(raw), f"nvidia.com/gpu or nvidia.com/mig-<profile> names, got {as_yaml(r)}")
    if len(set(raw)) != len(raw):
        raise ConfigError(key, list(raw), "each resource once")
    if kind == MPS and tuple(raw) != (WHOLE_GPU,):
        raise ConfigError(key, list(raw), f"[{WHOLE_GPU}]: MPS shares whole GPUs only")
    return tuple(sorted(raw))


def check_sharing(sharing: Sharing, advertised: Mapping[str, int], mig_enabled: bool, key: str) -> Sharing:
    """Check `sharing` against what a node advertises without it, and return it with `resources`
    made explicit (every advertised resource when the config left them out)."""
    kkey = f"{key}.{sharing.kind}"
    if sharing.kind == MPS and mig_enabled:
        raise ConfigError(kkey, {"replicas": sharing.replicas},
                          "timeSlicing, or a layout with MIG disabled: MPS shares whole GPUs only, not MIG slices")
    offered = sorted(r for r, n in advertised.items() if n > 0)
    if not offered:
        raise ConfigError(kkey, {"replicas": sharing.replicas}, "no sharing: the node advertises no GPU resources")
    if sharing.resources is None:
        wanted = (WHOLE_GPU,) if sharing.kind == MPS else tuple(offered)
    else:
        wanted = sharing.resources
    missing = [r for r in wanted if r not in offered]
    if missing:
        raise ConfigError(f"{kkey}.resources", list(sharing.resources or wanted),
                          f"resources the node advertises: {', '.join(offered)}")
    return replace(sharing, resources=tuple(sorted(wanted)))


def _explicit(sharing: Sharing) -> tuple[str, ...]:
    if sharing.resources is None:
        raise ValueError("resolve the sharing's resources with check_sharing first: "
                         "'all advertised resources' differs from node to node")
    return sharing.resources


def device_plugin_config_key(sharing: Sharing) -> str:
    """A stable, readable name for this setup, usable as a label value and a ConfigMap key,
    e.g. `ts-mig-1g.5gb-x4`; equal setups get equal keys, different setups different ones."""
    resources = _explicit(sharing)
    prefix = "ts" if sharing.kind == TIME_SLICING else "mps"
    names = "_".join(r.removeprefix("nvidia.com/") for r in resources)
    flags = ("-renamed" if sharing.rename_by_default else "") + \
            ("-strict" if sharing.fail_requests_greater_than_one and sharing.kind == TIME_SLICING else "")
    key = f"{prefix}-{names}-x{sharing.replicas}{flags}"
    if is_label_value(key):
        return key
    digest = hashlib.sha256(render_device_plugin_config(sharing).encode()).hexdigest()[:12]
    return f"{prefix}-x{sharing.replicas}-{digest}"


def render_device_plugin_config(sharing: Sharing) -> str:
    """The device plugin config file (`version: v1` + `sharing`) for this setup, emitted by PyYAML."""
    import yaml

    body: dict[str, Any] = {"renameByDefault": sharing.rename_by_default}
    if sharing.kind == TIME_SLICING:
        body["failRequestsGreaterThanOne"] = sharing.fail_requests_greater_than_one
    body["resources"] = [{"name": r, "replicas": sharing.replicas} for r in _explicit(sharing)]
    return yaml.safe_dump({"version": "v1", "sharing": {sharing.kind: body}}, sort_keys=False)


def render_device_plugin_configs(sharings: Iterable[Sharing]) -> dict[str, str]:
    """`devicePlugin.config.data`: one entry per distinct setup, keyed by `device_plugin_config_key`."""
    out: dict[str, str] = {}
    for s in sharings:
        key, text = device_plugin_config_key(s), render_device_plugin_config(s)
        if out.setdefault(key, text) != text:
            raise ValueError(f"two sharing setups map to the config key {key!r}")
    return dict(sorted(out.items()))


