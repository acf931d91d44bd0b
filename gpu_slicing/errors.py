"""The error types for bad stack config: each error names the key, the bad value and what is allowed.

`ConfigErrors` carries every independent error of a stack at once (a user fixes them in one round, not one
per run); it is a `ConfigError` whose key, value and allowed text are its first error's, so callers that
handle one error handle it too."""
from __future__ import annotations

import difflib
import re
from typing import Any, Callable, Iterable, Mapping, TypeVar

NAMESPACE = "gpu-slicing"  # the stack config's namespace: every key an error names is gpu-slicing:<key>
T = TypeVar("T")


class ConfigError(ValueError):
    """Raised before any resource is registered; `key` is the full config path, e.g.
    `gpu-slicing:nodeGroups[0].maxSize`."""

    def __init__(self, key: str, value: Any, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}: not set: {allowed}" if value is None else
                         f"{key}: {as_yaml(value)} is not valid: {allowed}")

    @property
    def errors(self) -> tuple[ConfigError, ...]:
        """Every error this one stands for: itself."""
        return (self,)


_PLAIN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./:@+<>-]*$")


def as_yaml(value: Any, *, quote: bool = True) -> str:
    """A value as a stack file writes it (YAML flow style), never a Python repr: `'v1.2'` (a string, quoted
    at the top so its ends show), `[0.0.0.0/0, 10.0.0.0/8]`, `{timeSlicing: {replicas: 4}}`, `true`, `null`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        if not quote and _PLAIN.match(value) and _reads_as_text(value):
            return value
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{as_yaml(k, quote=False)}: {as_yaml(v, quote=False)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return "[" + ", ".join(as_yaml(v, quote=False) for v in items) + "]"
    return str(value)


def _reads_as_text(word: str) -> bool:
    """Whether YAML reads `word`, unquoted, back as this text (not a number, boolean or null)."""
    import yaml

    try:
        return yaml.safe_load(word) == word
    except yaml.YAMLError:
        return False


def did_you_mean(word: Any, choices: Iterable[str], *, quote: bool = False, cutoff: float = 0.6) -> str:
    """"did you mean <the closest choice>? " for a mistyped name, or "" when nothing is close."""
    hint = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=cutoff)
    return f"did you mean {hint[0]!r}? " if hint and quote else f"did you mean {hint[0]}? " if hint else ""


class ConfigErrors(ConfigError):
    """Several independent errors of one load step (shape errors in stack-file order, a later step's in the
    order of its rules); its text lists each on its own line."""

    def __init__(self, errors: Iterable[ConfigError]):
        self._errors = tuple(x for e in errors for x in e.errors)
        first = self._errors[0]
        self.key, self.value, self.allowed = first.key, first.value, first.allowed
        ValueError.__init__(self, f"{len(self._errors)} config errors:\n" + "\n".join(str(e) for e in self._errors))

    @property
    def errors(self) -> tuple[ConfigError, ...]:
        return self._errors


def each(calls: Iterable[Callable[[], T]]) -> tuple[list[T], list[ConfigError]]:
    """Every call made, each on its own: the results of those that return and the errors of those that raise,
    so one bad item never hides the next."""
    results: list[T] = []
    errors: list[ConfigError] = []
    for call in calls:
        try:
            results.append(call())
        except ConfigError as e:
            errors.append(e)
    return results, errors


def raise_all(errors: Iterable[ConfigError]) -> None:
    """Raise nothing for no errors, the error itself for one, `ConfigErrors` for several."""
    found = tuple(x for e in errors for x in e.errors)
    if len(found) == 1:
        raise found[0]
    if found:
        raise ConfigErrors(found)
