"""The CrossGuard policies of the pack, built from `policy.rules`. No `PolicyPack(...)` here (constructing
one starts a server and blocks), so tests import this module and call each policy's `validate`.

Per-resource rules become `ResourceValidationPolicy`s (checked before the resource is created);
graph rules become `StackValidationPolicy`s (checked once every resource is registered: in a preview,
or at the end of `pulumi up`, whose own preview runs them first). Values unknown at preview reach the
rules as `rules.UNKNOWN` instead of raising, so a rule decides for itself what an unknown value means.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import (EnforcementLevel, PolicyConfigSchema, PolicyResource, ResourceValidationArgs,
                           ResourceValidationPolicy, Severity, StackValidationArgs, StackValidationPolicy)
from pulumi_policy import proxy

from gpu_slicing.errors import NAMESPACE
from policy import rules

PACK_NAME = "gpu-slicing"
MAX_GPU_NODES_KEY = rules.MAX_GPU_NODES_KEY
_UNKNOWNS = {proxy.UNKNOWN_BOOLEAN_VALUE, proxy.UNKNOWN_NUMBER_VALUE, proxy.UNKNOWN_STRING_VALUE,
             proxy.UNKNOWN_ARRAY_VALUE, proxy.UNKNOWN_ASSET_VALUE, proxy.UNKNOWN_ARCHIVE_VALUE,
             proxy.UNKNOWN_OBJECT_VALUE}
_SEVERITY = {"security": Severity.HIGH, "cost": Severity.HIGH, "gpu": Severity.MEDIUM}


def plain(value: Any) -> Any:
    """CrossGuard's props (proxies that raise on unknown values) as plain data, unknowns as rules.UNKNOWN."""
    if isinstance(value, str):
        return rules.UNKNOWN if value in _UNKNOWNS else value
    if isinstance(value, Mapping):
        out = {}
        for k in value:
            try:
                out[k] = plain(value[k])
            except proxy.UnknownValueError:
                out[k] = rules.UNKNOWN
        return out
    if isinstance(value, Sequence):
        items = []
        for i in range(len(value)):
            try:
                items.append(plain(value[i]))
            except proxy.UnknownValueError:
                items.append(rules.UNKNOWN)
        return items
    return value


def stack_max_gpu_nodes() -> int | None:
    """`gpu-slicing:maxGpuNodes` of the stack under preview: the CLI hands a policy pack the stack's
    config (PULUMI_CONFIG), which pulumi_policy loads into the runtime before each analysis."""
    try:
        import pulumi

        return pulumi.Config(NAMESPACE).get_int(MAX_GPU_NODES_KEY)
    except Exception:  # noqa: BLE001 - no runtime config (e.g. `pulumi policy publish`)
        return None


def context(policy_config: Mapping[str, Any] | None) -> rules.Context:
    """The cost ceiling: the stack's gpu-slicing:maxGpuNodes, capped by the pack's own `maxGpuNodes`
    config if an organisation sets one; None when neither is set (the rule then asks for one)."""
    found = [v for v in (stack_max_gpu_nodes(), (policy_config or {}).get(MAX_GPU_NODES_KEY)) if v is not None]
    return rules.Context(max_gpu_nodes=min(int(v) for v in found) if found else None)


def to_res(r: PolicyResource) -> rules.Res:
    return rules.Res(type=r.resource_type, name=r.name, urn=r.urn, props=plain(r.props),
                     parent=r.parent.urn if r.parent is not None else None,
                     dependencies=tuple(d.urn for d in r.dependencies),
                     property_dependencies={k: tuple(d.urn for d in v) for k, v in r.property_dependencies.items()})


def _resource_policy(rule: rules.Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation) -> None:
        res = rules.Res(type=args.resource_type, name=args.name, urn=args.urn, props=plain(args.props),
                        parent=getattr(args.opts, "parent", None))
        for message in rule.fn(res, context(args.get_config())):
            report_violation(message)

    return ResourceValidationPolicy(
        name=rule.name, description=rule.description, validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY if rule.mandatory else EnforcementLevel.ADVISORY,
        severity=_SEVERITY[rule.group], tags=[rule.group])


def _stack_policy(rule: rules.Rule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation) -> None:
        resources = [to_res(r) for r in args.resources]
        for message, urn in rule.fn(resources, context(args.get_config())):
            report_violation(message, urn)

    schema = PolicyConfigSchema(properties=dict(rule.config)) if rule.config else None
    return StackValidationPolicy(
        name=rule.name, description=rule.description, validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY if rule.mandatory else EnforcementLevel.ADVISORY,
        severity=_SEVERITY[rule.group], tags=[rule.group], config_schema=schema)


POLICIES = [(_resource_policy if rule.kind == "resource" else _stack_policy)(rule) for rule in rules.RULES.values()]
