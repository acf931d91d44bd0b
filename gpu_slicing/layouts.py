"""MIG layouts: the named NVIDIA ones, custom ones from config, and the mig-parted ConfigMap.

A node is labelled `nvidia.com/mig.config=<layout>` and the MIG manager applies that layout from the
ConfigMap `migManager.config.name` points at (docs/facts.md §2, 3). A custom ConfigMap replaces NVIDIA's default
one, so it must carry every layout the cluster's nodes use, named ones included.

Custom layout config (`gpu-slicing:migLayouts`), one list of entries per layout name:

    p4d-half-small:
      - {devices: [0, 1, 2, 3], profiles: {1g.5gb: 7}}
      - {devices: [4, 5, 6, 7], profiles: {4g.20gb: 1, 3g.20gb: 1}}

An entry takes `devices` ("all" or distinct GPU indexes), `profiles` (profile -> positive count) and
`migEnabled`. Without `profiles` (or with `profiles: {}`) an entry disables MIG on its GPUs: they are
advertised whole, as `nvidia.com/gpu`. `migEnabled: true` with no profiles is mig-parted's
`all-enabled` state (MIG mode on, no instances, nothing advertised); `migEnabled: false` together with
profiles is contradictory and rejected.
"""
from __future__ import annotations

import functools
import re
from typing import Any, Iterable, Mapping

from . import changes
from .catalog import GPU_MODELS, INSTANCE_TYPES, GpuGroup, InstanceType, MigLayout, named_layouts
from .errors import ConfigError, as_yaml, each, raise_all
from .placement import why_not

LAYOUTS_KEY = "gpu-slicing:migLayouts"
NVIDIA_PREFIX = "all-"
_ENTRY_KEYS = ("devices", "profiles", "migEnabled")
_ENTRY_SHAPE = "list of entries {devices: all | [GPU indexes], profiles: {profile: count}, migEnabled: bool}"
LAYOUT_NAME_MAX = changes.LABEL_VALUE_MAX - changes.TOKEN_SUFFIX_LENGTH  # its label adds "-<content hash>"
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
LABEL_VALUE_SCHEMA = {"type": "string", "pattern": _LABEL_VALUE.pattern, "maxLength": changes.LABEL_VALUE_MAX}
# The JSON Schema fragment of `migLayouts` (gpu_slicing.schema), matching `parse_custom_layouts`: what needs
# the instance type (GPU indexes in range, profiles that fit) and "all" being the only entry are not in it.
CUSTOM_LAYOUTS_SCHEMA = {
    "type": ["object", "null"],
    "propertyNames": {**LABEL_VALUE_SCHEMA, "maxLength": LAYOUT_NAME_MAX, "not": {"pattern": f"^{NVIDIA_PREFIX}"}},
    "additionalProperties": {
        "type": "array", "minItems": 1,
        "items": {
            "type": "object", "additionalProperties": False, "required": ["devices"],
            "properties": {
                "devices": {"description": "all, or the GPU indexes (0, 1, ...) this entry configures",
                            "anyOf": [{"const": "all"}, {"type": "array", "minItems": 1, "uniqueItems": True,
                                                         "items": {"type": "integer", "minimum": 0}}]},
                "profiles": {"description": "MIG profile -> instances per GPU, e.g. {1g.5gb: 7}; none: MIG off",
                             "type": "object", "propertyNames": {"minLength": 1},
                             "additionalProperties": {"type": "integer", "minimum": 1}},
                "migEnabled": {"description": "MIG mode (default: true when profiles are given)",
                               "type": "boolean"},
            },
        },
    },
}


def is_label_value(s: str) -> bool:
    """A valid Kubernetes label value: layout names and device-plugin config keys become node labels."""
    return len(s) <= changes.LABEL_VALUE_MAX and bool(_LABEL_VALUE.fullmatch(s))


def parse_custom_layouts(raw: Any, key: str = LAYOUTS_KEY) -> dict[str, MigLayout]:
    """Check the shape of every custom layout; fitness for a GPU is `check_layout`'s job (it needs the
    instance type, which the layout itself does not name)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(key, raw, f"a map of layout name -> a {_ENTRY_SHAPE}")
    def named(name: Any, entries: Any) -> tuple[Any, MigLayout]:
        return name, _parse_layout(name, entries, key)

    parsed, errors = each(functools.partial(named, name, entries) for name, entries in raw.items())
    raise_all(errors)  # each layout on its own: every bad one is reported at once
    return dict(parsed)


def _parse_layout(name: Any, entries: Any, key: str) -> MigLayout:
    if not isinstance(name, str) or not is_label_value(name) or len(name) > LAYOUT_NAME_MAX:
        raise ConfigError(key, name, f"a layout name that is a Kubernetes label value of at most {LAYOUT_NAME_MAX} "
                                     "characters of A-Z a-z 0-9 - _ . starting and ending with a letter or digit "
                                     "(the node label adds '-' and a 7-character content hash: 63 in all)")
    lkey = f"{key}.{name}"
    if name.startswith(NVIDIA_PREFIX):
        raise ConfigError(lkey, name, f"a name not starting with {NVIDIA_PREFIX!r}: those are NVIDIA's layouts "
                                      "(all-disabled, all-balanced, all-1g.5gb, ...) and a custom one would shadow them")
    if not isinstance(entries, (list, tuple)) or not entries:
        raise ConfigError(lkey, entries, f"a non-empty {_ENTRY_SHAPE}")
    owner: dict[int, int] = {}  # GPU index -> entry that claims it
    groups = []
    for i, entry in enumerate(entries):
        ekey = f"{lkey}[{i}]"
        if not isinstance(entry, Mapping):
            raise ConfigError(ekey, entry, "an entry {devices: all | [GPU indexes], profiles: {profile: count}}")
        unknown = sorted(str(k) for k in entry if k not in _ENTRY_KEYS)
        if unknown:
            raise ConfigError(ekey, unknown, f"only the keys {', '.join(_ENTRY_KEYS)}")
        devices = _parse_devices(entry.get("devices"), f"{ekey}.devices", i, len(entries), owner)
        profiles = _parse_profiles(entry.get("profiles", {}), f"{ekey}.profiles")
        enabled = entry.get("migEnabled", bool(profiles))
        if not isinstance(enabled, bool):
            raise ConfigError(f"{ekey}.migEnabled", enabled, "true or false")
        if not enabled and profiles:
            raise ConfigError(f"{ekey}.migEnabled", enabled,
                              "true (or omitted) when profiles are given: profiles need MIG mode on")
        groups.append(GpuGroup(devices, enabled, profiles))
    return MigLayout(label_value(name, groups), tuple(groups), custom=True)


def label_value(name: str, groups: Iterable[GpuGroup]) -> str:
    """The `nvidia.com/mig.config` value of a custom layout: its name plus a short hash of its contents.

    The MIG manager does not reload its ConfigMap for nodes already configured (NVIDIA/mig-parted#108):
    an edit under the same label would leave the nodes on the old slices while the NodeOverlay and the
    capacity plan describe the new ones (docs/facts.md §8). With the contents in the value, an edit is a label
    change: a new node group (blue/green) or drifted Karpenter nodes, which boot into the new layout."""
    doc = [["all" if g.devices is None else list(g.devices), g.mig_enabled, sorted(g.profiles.items())]
           for g in groups]
    return changes.labelled(name, doc)


def _parse_devices(raw: Any, key: str, index: int, entries: int, owner: dict[int, int]) -> tuple[int, ...] | None:
    if raw == "all":
        if entries > 1:
            raise ConfigError(key, raw, "GPU indexes: 'all' covers every GPU, so it must be the layout's only entry")
        return None
    if not isinstance(raw, (list, tuple)) or not raw:
        raise ConfigError(key, raw, "'all' or a non-empty list of GPU indexes (0, 1, ...)")
    for d in raw:
        if not isinstance(d, int) or isinstance(d, bool) or d < 0:
            raise ConfigError(key, raw, f"GPU indexes are non-negative integers, got {as_yaml(d)}")
        if d in owner:
            where = "twice in this entry" if owner[d] == index else f"also in entry [{owner[d]}]"
            raise ConfigError(key, raw, f"each GPU in one entry only: GPU {d} is {where}")
        owner[d] = index
    return tuple(sorted(raw))


def _parse_profiles(raw: Any, key: str) -> dict[str, int]:
    if not isinstance(raw, Mapping):
        raise ConfigError(key, raw, "a map of MIG profile -> count, e.g. {1g.5gb: 7}")
    for p, n in raw.items():
        if not isinstance(p, str) or not p:
            raise ConfigError(key, dict(raw), f"profile names are strings like 1g.5gb, got {as_yaml(p)}")
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ConfigError(key, dict(raw), f"counts are positive integers, got {p}: {as_yaml(n)} "
                                              "(leave a profile out rather than give it 0)")
    return dict(raw)


def lookup_instance(it: str | InstanceType, key: str) -> InstanceType:
    """The catalog entry for an instance type name (objects pass through), or a ConfigError."""
    if isinstance(it, InstanceType):
        return it
    found = INSTANCE_TYPES.get(it) if isinstance(it, str) else None
    if found is None:
        raise ConfigError(key, it, "a known GPU instance type: " + ", ".join(INSTANCE_TYPES))
    return found


def check_layout(layout: MigLayout, instance_type: str | InstanceType, key: str) -> None:
    """Raise unless `layout` can be applied as-is to every node of `instance_type`: each GPU in exactly
    one entry and each entry's instances placeable on one GPU (else the MIG manager reports `failed`)."""
    it = lookup_instance(instance_type, key)
    model, count = it.gpu, it.gpu_count
    where = f"{it.name} ({count}x {model.name})"
    owner: dict[int, int] = {}
    for i, group in enumerate(layout.groups):
        gkey = f"{key}[{i}]"
        devices = tuple(range(count)) if group.devices is None else group.devices
        outside = [d for d in devices if not 0 <= d < count]
        if outside:
            raise ConfigError(f"{gkey}.devices", list(devices),
                              f"GPU indexes 0..{count - 1}: {where} has no GPU {', '.join(map(str, outside))}")
        for d in devices:
            if d in owner:
                raise ConfigError(f"{gkey}.devices", list(devices),
                                  f"each GPU in one entry only: GPU {d} is also in entry [{owner[d]}]")
            owner[d] = i
        if group.mig_enabled:
            reason = why_not(model, group.profiles)
            if reason:
                raise ConfigError(f"{gkey}.profiles", dict(group.profiles), f"profile counts one GPU of {where} can hold: {reason}")
    missing = [d for d in range(count) if d not in owner]
    if missing:
        raise ConfigError(key, layout.name, f"every GPU of {where} in exactly one entry; GPUs "
                                            f"{', '.join(map(str, missing))} are in none (use devices: all)")


def resolve_layout(name: str, instance_type: str | InstanceType, custom: Mapping[str, MigLayout], key: str,
                   layouts_key: str = LAYOUTS_KEY) -> MigLayout:
    """The layout a node labelled `nvidia.com/mig.config=<name>` gets, checked against its GPUs."""
    it = lookup_instance(instance_type, key)
    if not isinstance(name, str):
        raise ConfigError(key, name, "a layout name (a string)")
    named = named_layouts(it.gpu)
    if name in named:
        return named[name]
    if name in custom:
        try:
            check_layout(custom[name], it, f"{layouts_key}.{name}")
        except ConfigError as e:
            raise ConfigError(e.key, e.value, f"{e.allowed} (layout {name!r} is used by {key})") from e
        return custom[name]
    fitting = [n for n in sorted(custom) if _fits(custom[n], it)]
    allowed = ", ".join([*named, *fitting])
    if not it.gpu.mig_capable:
        why = ("a fractional vGPU, which can be neither sliced nor shared" if it.fraction is not None
               else "which have no MIG (time-slicing still shares them)")
        raise ConfigError(key, name, f"{it.name} has {it.gpu.name} GPUs, {why}: {allowed}")
    raise ConfigError(key, name, f"a layout for {it.name} ({it.gpu.name}): {allowed}")


def _fits(layout: MigLayout, it: InstanceType) -> bool:
    try:
        check_layout(layout, it, "")
    except ConfigError:
        return False
    return True


def mig_parted_configs(layouts: Iterable[MigLayout]) -> dict[str, list[dict[str, Any]]]:
    """The `mig-configs` of the ConfigMap `migManager.config.name` points at, in mig-parted format.

    A named layout differs per GPU model (all-balanced is 1g.5gb-based on A100-40GB, 1g.10gb-based on
    H100), so its entries carry `device-filter`s for the catalog GPUs it was resolved for; one cluster
    can then mix p4d and p5 nodes under one name. Custom layouts were checked per instance type and
    apply unfiltered. Names and filters are sorted so the ConfigMap only changes when a layout does.
    """
    configs: dict[str, list[tuple[tuple[str, ...], GpuGroup]]] = {}
    custom: dict[str, MigLayout] = {}
    for layout in layouts:
        if layout.custom:
            if custom.setdefault(layout.name, layout) != layout:
                raise ValueError(f"two different custom layouts are named {layout.name!r}")
            entries: list[tuple[tuple[str, ...], GpuGroup]] = [((), g) for g in layout.groups]
        else:
            entries = [(_device_filter(layout), g) for g in layout.groups]
        merged = configs.setdefault(layout.name, [])
        for entry in entries:
            if entry not in merged:
                merged.append(entry)
    return {name: [_entry(filt, group) for filt, group in sorted(_merge_filters(configs[name]), key=lambda e: e[0])]
            for name in sorted(configs)}


def render_mig_parted_config(layouts: Iterable[MigLayout],
                             extra: Mapping[str, list[dict[str, Any]]] | None = None) -> str:
    """The ConfigMap's `config.yaml` (`version: v1` + `mig-configs`), emitted by PyYAML; `extra` adds
    entries kept as they are (layouts live nodes may still carry)."""
    import yaml

    configs = mig_parted_configs(layouts)
    configs.update({name: list(entries) for name, entries in sorted((extra or {}).items()) if name not in configs})
    return yaml.safe_dump({"version": "v1", "mig-configs": configs}, sort_keys=False, default_flow_style=None)


def _device_filter(layout: MigLayout) -> tuple[str, ...]:
    """PCI ids (`0x20B010DE`: device + NVIDIA vendor 10DE) of the catalog GPUs whose named layout this is;
    none for the layouts that name no profile (all-disabled, all-enabled) and so fit every GPU."""
    if not layout.profile_names():
        return ()
    models = [m for m in GPU_MODELS.values() if m.mig_capable and named_layouts(m).get(layout.name) == layout]
    if not models:
        raise ValueError(f"{layout.name!r} is not a named layout of any catalog GPU (is it custom?)")
    return tuple(sorted(f for m in models for f in m.device_filters))


def _merge_filters(entries: list[tuple[tuple[str, ...], GpuGroup]]) -> list[tuple[tuple[str, ...], GpuGroup]]:
    """One entry per distinct group: models that share a layout (A100-80GB and H100) share a filter."""
    out: list[tuple[tuple[str, ...], GpuGroup]] = []
    for filt, group in entries:
        same = next((i for i, (_, g) in enumerate(out) if g == group and filt and out[i][0]), None)
        if same is None:
            out.append((filt, group))
        else:
            out[same] = (tuple(sorted(set(out[same][0]) | set(filt))), group)
    return out


def _entry(filt: tuple[str, ...], group: GpuGroup) -> dict[str, Any]:
    out: dict[str, Any] = {"device-filter": list(filt)} if filt else {}
    out["devices"] = "all" if group.devices is None else list(group.devices)
    out["mig-enabled"] = group.mig_enabled
    if group.mig_enabled:
        out["mig-devices"] = dict(sorted(group.profiles.items()))
    return out
