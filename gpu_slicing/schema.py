"""The JSON Schema of a stack file (`stack.schema.json`), generated from the config model.

Editors with the YAML language server read it from each stack file's first line
(`# yaml-language-server: $schema=...`) and complete keys, show their docs and defaults, and flag typos,
wrong types, values out of range and unknown keys as people type. Every fragment comes from the check
that parses the key (the model field's `config._Check`, the check's `schema`), or, for the blocks parsed
elsewhere, from `layouts.CUSTOM_LAYOUTS_SCHEMA` and `sharing.SHARING_SCHEMA`. The schema never refuses
what the program accepts; what it cannot say (rules across pools, keys and capacity, derived AWS name
lengths, CIDR host bits) the program still reports when it loads the stack. `make schema` rewrites the file.
"""
from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from . import config, layouts, sharing
from .config import (ClusterConfig, KarpenterConfig, NetworkConfig, NodeGroupConfig, NodePoolConfig, StackConfig,
                     WorkloadConfig)

DRAFT = "https://json-schema.org/draft/2020-12/schema"
# Blocks whose parser lives beside its meaning, by config key.
PARSED_ELSEWHERE: dict[str, dict[str, Any]] = {"migLayouts": layouts.CUSTOM_LAYOUTS_SCHEMA, "sharing": sharing.SHARING_SCHEMA}
# Rules within one block that `gpu_slicing.validate` enforces and JSON Schema can state.
_RULES: dict[type, list[dict]] = {
    ClusterConfig: [{
        "if": {"required": ["endpointPublicAccess"], "properties": {"endpointPublicAccess": {"const": False}}},
        "then": {"properties": {"endpointPrivateAccess": {"const": True}, "publicAccessCidrs": {"maxItems": 0}}},
        "else": {"required": ["publicAccessCidrs"], "properties": {"publicAccessCidrs": {"minItems": 1}}},
    }],
    NetworkConfig: [{
        "if": {"required": ["vpcId"]},
        "then": {"not": {"required": ["vpcCidr"]}, "required": ["privateSubnetIds", "publicSubnetIds"],
                 "properties": {"privateSubnetIds": {"minItems": 2}, "publicSubnetIds": {"minItems": 1}}},
        "else": {"properties": {"privateSubnetIds": {"maxItems": 0}, "publicSubnetIds": {"maxItems": 0}}},
    }],
    WorkloadConfig: [{"oneOf": [{"required": ["profile"]}, {"required": ["gpus"]}, {"required": ["memoryGB"]}]}],
    # gpu_slicing.dra: no DRA NodePools (the pinned Karpenter), no pool sharing or dynamic MIG on a DRA pool.
    NodePoolConfig: [{"properties": {"allocation": {"not": {"const": "dra"}}}}],
    NodeGroupConfig: [{
        "if": {"required": ["allocation"], "properties": {"allocation": {"const": "dra"}}},
        "then": {"not": {"anyOf": [{"required": ["sharing"]},
                                   {"required": ["migLayout"], "properties": {"migLayout": {"const": "dynamic"}}}]}},
    }],
    KarpenterConfig: [{
        "if": {"not": {"required": ["enabled"], "properties": {"enabled": {"const": True}}}},
        "then": {"properties": {"nodePools": {"maxItems": 0}}},
    }],
}
# What the Pulumi CLI writes for a scalar it sets (`pulumi config set maxGpuNodes 3` writes "3"); the program
# decodes a top-level value's JSON text.
_AS_TEXT = {"integer": {"type": "string", "pattern": "^(0|[1-9][0-9]*)$"},
            "boolean": {"type": "string", "enum": ["true", "false"]}}


def _json_default(value: Any) -> Any:
    """A field default as JSON, or None when it has none worth showing (None, a nested block)."""
    if value is None or isinstance(value, BaseModel):
        return None
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, typing.Mapping):
        return dict(value)
    return value


def _is_block(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, BaseModel)


def _field_schema(f: FieldInfo) -> dict:
    key, hint = str(f.alias), f.annotation
    if key in PARSED_ELSEWHERE:
        out = dict(PARSED_ELSEWHERE[key])
    elif _is_block(hint):
        out = _object(hint)  # type: ignore[arg-type]
        if not _required(hint):  # type: ignore[arg-type]
            out["type"] = ["object", "null"]  # `network:` with nothing under it reads as the defaults
    elif typing.get_origin(hint) is tuple and _is_block(typing.get_args(hint)[0]):
        out = {"type": ["array", "null"], "items": _object(typing.get_args(hint)[0])}
    else:
        out = dict(next(m for m in f.metadata if isinstance(m, config._Check)).schema)
    if f.description:
        out["description"] = f.description
    default = None if f.is_required() else f.get_default(call_default_factory=True)
    if _json_default(default) is not None:
        out["default"] = _json_default(default)
    return out


def _required(cls: type[BaseModel]) -> list[str]:
    return [str(f.alias) for f in cls.model_fields.values() if f.is_required()]


def _object(cls: type[BaseModel]) -> dict:
    """A config block: its keys, nothing else, the ones without a default required."""
    out: dict[str, Any] = {
        "type": "object", "additionalProperties": False,
        "properties": {str(f.alias): _field_schema(f) for f in cls.model_fields.values()},
    }
    if _required(cls):
        out["required"] = _required(cls)
    if cls in _RULES:
        out["allOf"] = _RULES[cls]
    return out


def stack_schema() -> dict:
    """The schema of a whole `Pulumi.<stack>.yaml`."""
    model = _object(StackConfig)
    ours = {}
    for key, prop in model["properties"].items():
        if isinstance(prop.get("type"), str) and prop["type"] in _AS_TEXT:
            prop = {**{k: v for k, v in prop.items() if k in ("description", "default")},
                    "anyOf": [{k: v for k, v in prop.items() if k not in ("description", "default")},
                              _AS_TEXT[prop["type"]]]}
        ours[f"{config.NAMESPACE}:{key}"] = prop
    others = [ns for ns in config.KNOWN_NAMESPACES if ns != config.NAMESPACE]
    stack_config = {
        "type": "object",
        "description": "config: <namespace>:<key>. The gpu-slicing keys are the program's (unknown ones are "
                       "errors); " + ", ".join(others) + " keys belong to their providers and Pulumi; no "
                       "other namespace is read (a typo there would be silently ignored).",
        "properties": {"aws:region": {"type": "string", "description": "AWS region of the stack"}, **ours},
        "patternProperties": {f"^({'|'.join(others)}):.+$": {}},
        "additionalProperties": False,
        "required": [f"{config.NAMESPACE}:{k}" for k in model["required"]],
    }
    top = {
        "config": stack_config,
        "secretsprovider": {"type": "string", "description": "secrets provider of the stack (Pulumi)"},
        "encryptedkey": {"type": "string", "description": "the stack's encrypted data key (Pulumi)"},
        "encryptionsalt": {"type": "string", "description": "the passphrase provider's salt (Pulumi)"},
        "environment": {"type": ["array", "object"], "items": {"type": "string"},
                        "description": "Pulumi ESC environments the stack imports"},
    }
    return {
        "$schema": DRAFT,
        "title": "gpu-slicing Pulumi stack file (Pulumi.<stack>.yaml)",
        "description": "Stack config of the gpu-slicing program (GPU slicing on EKS), generated from "
                       "gpu_slicing/config.py by `make schema`. It checks each key's shape, type and range; "
                       "rules across pools and the capacity plan are checked by `make plan`.",
        "type": "object",
        "additionalProperties": False,
        "required": ["config"],
        "properties": top,
    }
