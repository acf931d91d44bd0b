"""Read a `Pulumi.<stack>.yaml` the way Pulumi's own loader would, or raise `ConfigError`.

Every way a file can fail (not text, not YAML, not a mapping, a `config:` that is not a mapping, a key
given twice) becomes a `ConfigError` naming the file or the key, so `make plan` and `make advise` exit
2 with a message instead of a Python traceback. Duplicate keys are refused as Pulumi refuses them (Go's
yaml.v3 errors on them; PyYAML alone would silently keep the last one).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, did_you_mean

# The top-level keys of a Pulumi stack file (pkg/workspace ProjectStack).
STACK_FILE_KEYS = ("config", "secretsprovider", "encryptedkey", "encryptionsalt", "environment")


class StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a mapping key given twice, naming the key's full path and both lines.

    Anchors, aliases and merge keys (`<<: *base`, `<<: [*a, *b]`) load as Go's yaml.v3 loads them for
    Pulumi: a key the mapping gives itself overrides a merged one (YAML's merge rule, not a duplicate);
    a key the mapping itself gives twice is refused, merge or not."""

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        self._paths: dict[int, str] = {}
        self._own: dict[int, list[tuple[yaml.Node, yaml.Node]]] = {}
        self._index(node, "")
        return self.construct_document(node)

    def _index(self, node: yaml.Node, path: str) -> None:
        """Remember the path of every mapping (`config.gpu-slicing:cluster`, `...nodeGroups[0]`) and its own
        keys, before merging adds the merged ones (an alias is the anchored node: indexed once, where defined)."""
        if id(node) in self._paths:
            return
        if isinstance(node, yaml.MappingNode):
            self._paths[id(node)] = path
            self._own[id(node)] = list(node.value)
            for k, v in node.value:
                self._index(v, f"{path}.{k.value}" if path else str(k.value))
        elif isinstance(node, yaml.SequenceNode):
            self._paths[id(node)] = path
            for i, v in enumerate(node.value):
                self._index(v, f"{path}[{i}]")

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        own: dict[int, list[tuple[yaml.Node, yaml.Node]]] = getattr(self, "_own", {})
        for k, _ in own.get(id(node)) or node.value or []:
            key = "<<" if k.tag == MERGE_TAG else self.construct_object(k, deep=True)
            line = k.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key (a list or mapping as a key): PyYAML itself says so
                continue
            seen.setdefault(key, line)
            if first is not None:
                path = getattr(self, "_paths", {}).get(id(node), "")
                raise ConfigError(_config_key(f"{path}.{key}" if path else str(key)), key,
                                  f"a key given once; it appears on line {first} and again on line {line} "
                                  "(Pulumi refuses duplicate keys; YAML would silently keep only the last)")
        return super().construct_mapping(node, deep=deep)

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        """Merge keys as YAML (and yaml.v3) define them: of `<<: [*a, *b]` the earlier base wins a key both
        give, and the mapping's own keys win over every base (PyYAML lets the later base win)."""
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        own = []
        for k, v in node.value:
            if k.tag != MERGE_TAG:
                own.append((k, v))
                continue
            for base in v.value if isinstance(v, yaml.SequenceNode) else [v]:
                if not isinstance(base, yaml.MappingNode):
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"expected a mapping or a list of mappings to merge, but found {base.id}", base.start_mark)
                self.flatten_mapping(base)
                merged += base.value
        first: dict[Any, tuple[yaml.Node, yaml.Node]] = {}
        for k, v in merged:
            first.setdefault(_node_key(k), (k, v))
        for k, _ in own:  # overridden: gone, so a mapping merged again (through an alias) holds each key once
            first.pop(_node_key(k), None)
        node.value = list(first.values()) + own


MERGE_TAG = "tag:yaml.org,2002:merge"


def _node_key(k: yaml.Node) -> Any:
    return (k.tag, k.value) if isinstance(k, yaml.ScalarNode) else id(k)


# Pulumi reads stack files with a YAML 1.2 parser (Go's yaml.v3): only true and false are booleans, while
# yes, no, on and off stay strings. PyYAML follows YAML 1.1; read booleans the 1.2 way so the offline plan
# sees the values `pulumi preview` sees (`enabled: yes` is refused by both, not accepted by one).
StrictLoader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
StrictLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                   list("tTfF"))


def _config_key(path: str) -> str:
    """`config.gpu-slicing:cluster.name` -> `gpu-slicing:cluster.name` (the key as the program names it)."""
    return path.removeprefix("config.")


def load_yaml(text: str, source: str) -> Any:
    """Parse YAML text strictly; a syntax error names `source` and the line."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader is a SafeLoader
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        lines = text.splitlines()
        line = lines[mark.line].strip() if mark and mark.line < len(lines) else "<this file>"
        raise ConfigError(source, line, f"valid YAML: {e.problem or e.context}{where}") from None
    except yaml.YAMLError as e:
        raise ConfigError(source, "<this file>", f"valid YAML: {e}") from None


def read_text(path: Path, what: str = "stack file (Pulumi.<stack>.yaml)") -> str:
    """The file as UTF-8 text; a missing, unreadable or binary file is a `ConfigError`."""
    source = str(path)
    if not path.is_file():
        raise ConfigError(source, "<no such file>", f"an existing {what}")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(source, "<unreadable>", f"a readable file ({e.strerror})") from None
    if b"\0" in data:
        raise ConfigError(source, f"<binary, {len(data)} bytes>", "a YAML text file, not a binary file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(source, f"<not UTF-8 at byte {e.start}>", "a UTF-8 YAML text file") from None


def parse_stack_text(text: str, source: str) -> dict[str, Any]:
    """The `config:` mapping of a stack file's text (empty when the file has none)."""
    doc = load_yaml(text, source)
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(source, _kind(doc), "a Pulumi stack file: a YAML mapping with a config: key")
    for k in doc:
        if k not in STACK_FILE_KEYS:
            raise ConfigError(str(k), doc[k], "a top-level key of a Pulumi stack file; "
                              + did_you_mean(k, STACK_FILE_KEYS, quote=True) + "known keys: " + ", ".join(STACK_FILE_KEYS))
    config = doc.get("config")
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ConfigError("config", config, "a mapping of <namespace>:<key> to values, e.g. "
                                            "gpu-slicing:cluster: {name: gpu-dev}")
    for k in config:
        if not isinstance(k, str):
            raise ConfigError(f"config.{k}", config[k], "a <namespace>:<key> string key (YAML read the "
                                                        f"{_kind(k)[1:-1].removeprefix('a ')} {k}; quote it)")
    return dict(config)


def load_stack_file(path: Path | str) -> dict[str, Any]:
    """The `config:` mapping of the stack file at `path`, or a `ConfigError` naming what is wrong."""
    path = Path(path)
    return parse_stack_text(read_text(path), str(path))


def _kind(doc: Any) -> str:
    kind = {list: "a YAML list", str: "a plain string", int: "a number", float: "a number",
            bool: "a boolean"}.get(type(doc), type(doc).__name__)
    return f"<{kind}>"
