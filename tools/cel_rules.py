"""The CEL rules (`x-kubernetes-validations`) of Karpenter's CRDs, evaluated offline as the API server
evaluates them when an object is created.

The API server defaults an object from its schema, then walks it alongside the CRD's openAPIV3Schema and
evaluates every rule at every schema node (root, properties, items, additionalProperties) whose value is
present and not null, with `self` bound to that value; a false result rejects the object with the rule's
message, and so does a rule that fails to evaluate (e.g. `self.x` on an object without `x`). This module
does the same with cel-python (`celpy`, which uses RE2 for `matches` like cel-go), plus the two functions of
Kubernetes' CEL libraries the pinned CRDs use that celpy lacks (`find` from the regex library, `split` from
the strings library) and `int()` on strings with Go's strconv semantics. Differences from the API server:

- Transition rules (they reference `oldSelf`) compare with the stored object, which a create has not: they
  are counted and reported as "not evaluated (transition rule)".
- A value unknown at preview (the harness's "<computed>") is unknown here too: a rule that reads it (other
  than through `has()`) is skipped, not failed.
- No type checking or cost budget: a rule that would not compile against the schema's types is not caught
  unless its evaluation fails.

celpy is imported lazily (compiling every rule of the pinned CRDs takes ~0.2 s), so the plan stays fast.
"""
from __future__ import annotations

import contextvars
import copy
import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from tools import refdata

UNKNOWN = "<computed>"  # tools.harness.COMPUTED: a value unknown at preview
TRANSITION = "not evaluated (transition rule)"
INT64 = (-(2 ** 63), 2 ** 63 - 1)


@dataclass(frozen=True)
class Rule:
    """One `x-kubernetes-validations` entry and the schema node that carries it."""
    kind: str
    schema_path: str  # e.g. "spec.amiSelectorTerms[].alias" ("" is the root)
    rule: str
    message: str | None = None
    message_expression: str | None = None
    field_path: str | None = None
    reason: str | None = None

    @property
    def transition(self) -> bool:
        """A transition rule: it references `oldSelf` (as an identifier, not inside a string)."""
        return "oldSelf" in _identifiers(self.rule)

    @property
    def text(self) -> str:
        """What the API server says when the rule fails and has no messageExpression."""
        return self.message or f"failed rule: {self.rule}"


@dataclass(frozen=True)
class Violation:
    path: str  # where in the object, e.g. "spec.template.spec.requirements[2].key"
    message: str
    rule: Rule

    def __str__(self) -> str:
        return f"{self.path or '<root>'}: {self.message}"


@dataclass
class Report:
    """The outcome of every rule application on one object."""
    violations: list[Violation] = field(default_factory=list)
    evaluated: list[tuple[str, Rule]] = field(default_factory=list)  # (path, rule) evaluated to a result
    transition: list[tuple[str, Rule]] = field(default_factory=list)  # skipped: transition rules
    unknown: list[tuple[str, Rule]] = field(default_factory=list)  # skipped: they read a value unknown at preview


# --- the CRDs ------------------------------------------------------------------------------------------

def schema_rules(schema: Mapping[str, Any], kind: str = "", path: str = "") -> Iterator[Rule]:
    """Every rule of a schema, walked the way the API server walks it (properties, items,
    additionalProperties)."""
    for v in schema.get("x-kubernetes-validations") or []:
        yield _rule(kind, path, v)
    for name, sub in (schema.get("properties") or {}).items():
        yield from schema_rules(sub, kind, f"{path}.{name}" if path else name)
    if isinstance(schema.get("items"), Mapping):
        yield from schema_rules(schema["items"], kind, f"{path}[]")
    if isinstance(schema.get("additionalProperties"), Mapping):
        yield from schema_rules(schema["additionalProperties"], kind, f"{path}{{}}")


def _rule(kind: str, path: str, v: Mapping[str, Any]) -> Rule:
    return Rule(kind, path, v["rule"], v.get("message"), v.get("messageExpression"), v.get("fieldPath"),
                v.get("reason"))


def crd_schemas(directory: str | Path | None = None) -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> openAPIV3Schema of every served CRD version: the pinned Karpenter's, or those of
    the CRD files in `directory`."""
    return refdata.crd_schemas(None if directory is None else str(directory))


def all_rules(directory: str | Path | None = None) -> list[Rule]:
    return [r for (_, kind), s in sorted(crd_schemas(directory).items()) for r in schema_rules(s, kind)]


# --- defaulting (the API server defaults before it validates) --------------------------------------------

def apply_defaults(value: Any, schema: Mapping[str, Any]) -> Any:
    """A copy of `value` with the schema's `default`s applied as the API server's structural defaulting does:
    an absent (or null, when not nullable) property gets its default, then defaulting goes on inside it.
    Integral numbers of `type: integer` become ints (a recorded value may arrive as 1.0)."""
    if isinstance(value, Mapping):
        out = dict(value)
        props = schema.get("properties") or {}
        for name, sub in props.items():
            if "default" in sub and (name not in out or (out[name] is None and not sub.get("nullable"))):
                out[name] = copy.deepcopy(sub["default"])
        extra = schema.get("additionalProperties")
        for k, v in out.items():
            sub = props.get(k, extra if isinstance(extra, Mapping) else None)
            if sub is not None:
                out[k] = apply_defaults(v, sub)
        return out
    if isinstance(value, list):
        items = schema.get("items")
        return [apply_defaults(v, items) for v in value] if isinstance(items, Mapping) else list(value)
    if schema.get("type") == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if schema.get("type") == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


# --- evaluation ------------------------------------------------------------------------------------------

def evaluate(obj: Mapping[str, Any], schema: Mapping[str, Any], kind: str = "", defaults: bool = True) -> Report:
    """Every rule of `schema` on `obj` (a custom object as sent: apiVersion, kind, metadata, spec)."""
    report = Report()
    value = apply_defaults(obj, schema) if defaults else obj
    _walk(value, schema, kind, "", "", report)
    return report


def evaluate_object(obj: Mapping[str, Any], directory: str | Path | None = None) -> Report | None:
    """`evaluate` against the CRD (the pinned Karpenter's, or one in `directory`) that serves the object's
    apiVersion/kind; None if none does."""
    schema = crd_schemas(directory).get((obj.get("apiVersion"), obj.get("kind")))
    return None if schema is None else evaluate(obj, schema, str(obj.get("kind")))


def _walk(value: Any, schema: Mapping[str, Any], kind: str, spath: str, path: str, report: Report) -> None:
    if value is None:
        return  # null (or absent): the API server evaluates no rule on it
    rules = list(schema.get("x-kubernetes-validations") or [])
    if rules:
        text = json.dumps(value)
        for v in rules:
            _apply(_rule(kind, spath, v), value, text, path, report)
    if value == UNKNOWN:
        return
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    if isinstance(value, Mapping):  # in the schema's order, so findings do not depend on the input's
        for k, sub in props.items():
            if k in value:
                _walk(value[k], sub, kind, _join(spath, k), _join(path, k), report)
        if isinstance(extra, Mapping):
            for k, v in value.items():
                _walk(v, extra, kind, f"{spath}{{}}", f"{path}[{k}]", report)  # k8s field.Path.Key
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, v in enumerate(value):
            _walk(v, schema["items"], kind, f"{spath}[]", f"{path}[{i}]", report)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _apply(rule: Rule, value: Any, text: str, path: str, report: Report) -> None:
    if rule.transition:
        report.transition.append((path, rule))
        return
    if value == UNKNOWN:
        report.unknown.append((path, rule))
        return
    result, error, unknown = _outcome(rule.rule, text)
    if unknown:
        report.unknown.append((path, rule))
        return
    report.evaluated.append((path, rule))
    where = (path + (rule.field_path or "")).lstrip(".")
    if error is not None:
        # apiextensions-apiserver: "<error> evaluating rule: <message or rule>"
        report.violations.append(Violation(where, f"{error} evaluating rule: {rule.text}", rule))
    elif result is not True:
        report.violations.append(Violation(where, _message(rule, _to_cel(value)), rule))


@functools.lru_cache(maxsize=4096)
def _outcome(expression: str, text: str) -> tuple[Any, str | None, bool]:
    """(result, error, whether it read a value unknown at preview) of a rule on the value `text` (JSON) holds.
    A rule's outcome depends on nothing else, and the objects checked repeat: the tests check hundreds of
    variations of one NodePool, where interpreting a rule with celpy costs ~4 ms."""
    probe = _Probe()
    token = _PROBE.set(probe)
    try:
        result, error = _run(expression, _to_cel(json.loads(text)))
    finally:
        _PROBE.reset(token)
    return result, error, probe.touched


def _message(rule: Rule, cel_self: Any) -> str:
    """messageExpression when it gives a non-empty string, else message (what the API server does)."""
    if rule.message_expression:
        result, error = _run(rule.message_expression, cel_self)
        if error is None and isinstance(result, str) and result.strip():
            return str(result)
    return rule.text


def _run(expression: str, cel_self: Any) -> tuple[Any, str | None]:
    """(Python result, None) or (None, error text)."""
    from celpy.evaluation import CELEvalError
    from celpy import celtypes

    try:
        value = _program(expression).evaluate({"self": cel_self})
    except CELEvalError as e:
        return None, str(e.args[0]) if e.args else repr(e)
    except (TypeError, ValueError, KeyError) as e:
        return None, str(e)
    if isinstance(value, celtypes.BoolType):
        return bool(value), None
    if isinstance(value, celtypes.StringType):
        return str(value), None
    return value, None


@functools.lru_cache(maxsize=None)
def _environment():
    import celpy

    class Evaluator(celpy.evaluation.Evaluator):
        def macro_has_eval(self, exprlist):
            """has(x.f) tests presence: reading an unknown `f` there is not touching it, but an unknown
            in the middle of the path (has(x.unknown.g)) makes the answer unknown."""
            probe = _PROBE.get()
            probe.in_has += 1
            try:
                result = super().macro_has_eval(exprlist)
            finally:
                probe.in_has -= 1
            if probe.unknown_in_has and not result:
                probe.touched = True
            probe.unknown_in_has = False
            return result

    class Runner(celpy.InterpretedRunner):
        def evaluate(self, context):
            return Evaluator(ast=self.ast, activation=self.new_activation()).evaluate(context)

    return celpy.Environment(runner_class=Runner)


@functools.lru_cache(maxsize=None)
def compile_rule(expression: str):
    """The parsed rule (raises celpy.CELParseError on a syntax error)."""
    return _environment().compile(expression)


@functools.lru_cache(maxsize=None)
def _program(expression: str):
    return _environment().program(compile_rule(expression), functions=_functions())


@functools.lru_cache(maxsize=None)
def _identifiers(expression: str) -> frozenset[str]:
    import lark

    return frozenset(t.value for t in compile_rule(expression).scan_values(
        lambda t: isinstance(t, lark.Token) and t.type == "IDENT"))


# --- Kubernetes' CEL library functions the pinned CRDs use and celpy lacks -------------------------------

@functools.lru_cache(maxsize=None)
def _functions() -> dict[str, Any]:
    import re2
    from celpy import celtypes
    from celpy.evaluation import CELEvalError

    def find(text, pattern):
        """Kubernetes regex library: the first match of an RE2 pattern, or "" when none."""
        if not isinstance(text, str) or not isinstance(pattern, str):
            return CELEvalError("no such overload: find", TypeError, (text, pattern))
        try:
            m = re2.search(str(pattern), str(text))
        except re2.error as e:
            return CELEvalError(f"invalid regex {pattern!r}: {e}", ValueError, (pattern,))
        return celtypes.StringType(m.group(0) if m else "")

    def split(text, separator):
        """Kubernetes strings library, split(separator): Go's strings.Split (an empty separator splits
        into characters)."""
        if not isinstance(text, str) or not isinstance(separator, str):
            return CELEvalError("no such overload: split", TypeError, (text, separator))
        parts = list(text) if separator == "" else str(text).split(str(separator))
        return celtypes.ListType([celtypes.StringType(p) for p in parts])

    def to_int(value):
        """int(): on a string, Go's strconv.ParseInt(s, 10, 64) (ASCII digits, optional sign, no spaces
        or underscores, int64 range), which is stricter than Python's int()."""
        if isinstance(value, str):
            if not re.fullmatch(r"[+-]?[0-9]+", str(value)) or not INT64[0] <= int(value) <= INT64[1]:
                return CELEvalError(f"cannot convert {str(value)!r} to int", ValueError, (value,))
            return celtypes.IntType(int(value))
        return celtypes.IntType(value)

    return {"find": find, "split": split, "int": to_int}


# --- values: CEL types that notice when a rule reads a value unknown at preview ---------------------------

class _Probe:
    def __init__(self) -> None:
        self.touched = False
        self.in_has = 0
        self.unknown_in_has = False

    def read(self, value: Any) -> Any:
        if value is _UNKNOWN:
            if self.in_has:
                self.unknown_in_has = True
            else:
                self.touched = True
        return value


_PROBE: contextvars.ContextVar[_Probe] = contextvars.ContextVar("cel_rules_probe", default=_Probe())


class _Unknown:
    """Stands for "<computed>" inside a converted value; never a CEL value of its own."""


_UNKNOWN = _Unknown()


@functools.lru_cache(maxsize=None)
def _cel_classes():
    from celpy import celtypes

    class Map(celtypes.MapType):
        def __getitem__(self, key):
            return _PROBE.get().read(super().__getitem__(key))

    class List(celtypes.ListType):
        def __getitem__(self, index):
            return _PROBE.get().read(super().__getitem__(index))

        def __iter__(self):
            probe = _PROBE.get()
            for v in super().__iter__():
                yield probe.read(v)

        def __contains__(self, item):
            return any(v == item for v in self)

    return celtypes, Map, List


def _to_cel(value: Any) -> Any:
    celtypes, Map, List = _cel_classes()
    if isinstance(value, str) and value == UNKNOWN:
        return _UNKNOWN
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if isinstance(value, int):
        return celtypes.IntType(value)
    if isinstance(value, float):
        return celtypes.DoubleType(value)
    if isinstance(value, str):
        return celtypes.StringType(value)
    if isinstance(value, Mapping):
        return Map({celtypes.StringType(k): _to_cel(v) for k, v in value.items()})
    if isinstance(value, list):
        return List([_to_cel(v) for v in value])
    return value  # None: CEL null
