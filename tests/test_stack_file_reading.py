"""Reading a stack file as Pulumi's loader (Go's yaml.v3) reads it, every failure a ConfigError that names the
file or key, what was found and what is wanted. Expected texts are what a user should read, written here by
hand; the merge rules are YAML's (merge key spec: a mapping's own keys win, then the earlier base)."""
from __future__ import annotations

import pytest

from gpu_slicing.errors import ConfigError
from gpu_slicing.stack_file import STACK_FILE_KEYS, load_stack_file, load_yaml, parse_stack_text, read_text


def refused(fn, *args) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        fn(*args)
    return e.value


def test_files_that_are_not_yaml_text_say_what_they_are(tmp_path):
    missing = refused(read_text, tmp_path / "Pulumi.none.yaml")
    assert (missing.key, missing.value) == (str(tmp_path / "Pulumi.none.yaml"), "<no such file>")
    assert missing.allowed == "an existing stack file (Pulumi.<stack>.yaml)"
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"config:\0\1\2")
    e = refused(read_text, binary)
    assert (e.key, e.value, e.allowed) == (str(binary), "<binary, 10 bytes>", "a YAML text file, not a binary file")
    latin = tmp_path / "l.yaml"
    latin.write_bytes(b"config: {x: caf\xe9}")
    e = refused(read_text, latin)
    assert (e.value, e.allowed) == ("<not UTF-8 at byte 15>", "a UTF-8 YAML text file")
    bom = tmp_path / "bom.yaml"
    bom.write_bytes("\ufeffconfig: {}".encode())  # editors on Windows write a byte-order mark: not content
    assert read_text(bom) == "config: {}"


def test_an_unreadable_file_says_why(tmp_path, monkeypatch):
    f = tmp_path / "u.yaml"
    f.write_text("config: {}")

    def denied(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(type(f), "read_bytes", denied)  # (root reads a file whatever its mode)
    e = refused(read_text, f)
    assert (e.key, e.value, e.allowed) == (str(f), "<unreadable>", "a readable file (Permission denied)")


def test_a_syntax_error_names_the_line_and_column_and_shows_the_line():
    e = refused(load_yaml, "config:\n  a: [1, 2\n  b: 3\n", "Pulumi.x.yaml")
    assert e.key == "Pulumi.x.yaml"
    assert e.value == "b: 3" and e.allowed.startswith("valid YAML: ")
    assert e.allowed.endswith(" at line 3, column 4")


def test_what_is_not_a_stack_file_is_named_in_words():
    for text, kind in (("- a\n- b\n", "<a YAML list>"), ("hello\n", "<a plain string>"), ("42\n", "<a number>"),
                       ("4.5\n", "<a number>"), ("true\n", "<a boolean>"), ("2026-12-06\n", "<date>"),
                       ("!!set {a, b}\n", "<set>")):  # YAML's other types, by their Python names
        e = refused(parse_stack_text, text, "s.yaml")
        assert (e.key, e.value) == ("s.yaml", kind)
        assert e.allowed == "a Pulumi stack file: a YAML mapping with a config: key"
    assert parse_stack_text("", "s.yaml") == {} and parse_stack_text("encryptionsalt: x\n", "s.yaml") == {}


def test_an_unknown_top_level_key_lists_the_known_ones():
    e = refused(parse_stack_text, "confg:\n  a: 1\n", "s.yaml")
    assert (e.key, e.value) == ("confg", {"a": 1})
    assert e.allowed.startswith("a top-level key of a Pulumi stack file; ")
    assert "did you mean 'config'?" in e.allowed
    assert e.allowed.endswith("known keys: " + ", ".join(STACK_FILE_KEYS))


def test_config_must_map_string_keys():
    e = refused(parse_stack_text, "config: [a]\n", "s.yaml")
    assert (e.key, e.value) == ("config", ["a"])
    assert e.allowed == "a mapping of <namespace>:<key> to values, e.g. gpu-slicing:cluster: {name: gpu-dev}"
    e = refused(parse_stack_text, "config:\n  1.30: x\n", "s.yaml")
    assert (e.key, e.value) == ("config.1.3", "x") and "a <namespace>:<key> string key" in e.allowed


MERGED = """config:
  base: &base {a: 1, b: 1}
  other: &other {b: 2, c: 2}
  one:
    <<: [*base, *other]
    c: 3
"""


def test_merge_keys_follow_yaml_the_own_key_then_the_earlier_base():
    one = parse_stack_text(MERGED, "s.yaml")["one"]
    assert one == {"a": 1, "b": 1, "c": 3}  # b from the earlier base, c the mapping's own


def test_a_key_given_twice_beside_a_merge_is_named_with_both_lines():
    text = MERGED + "    c: 4\n"
    e = refused(parse_stack_text, text, "s.yaml")
    assert (e.key, e.value) == ("one.c", "c")
    assert e.allowed.startswith("a key given once; it appears on line 6 and again on line 7")


def test_a_copied_list_entry_that_keeps_its_anchor_twice_is_one_object_not_a_duplicate(tmp_path):
    f = tmp_path / "Pulumi.m.yaml"
    f.write_text("config:\n  gpu-slicing:karpenter:\n    nodePools:\n      - &p {name: a, maxNodes: 1}\n"
                 "      - {<<: *p, name: b}\n")
    pools = load_stack_file(f)["gpu-slicing:karpenter"]["nodePools"]
    assert pools == [{"name": "a", "maxNodes": 1}, {"name": "b", "maxNodes": 1}]
    f.write_text("config:\n  gpu-slicing:cluster:\n    name: a\n    name: b\n")
    e = refused(load_stack_file, f)
    assert e.key == "gpu-slicing:cluster.name" and "on line 3 and again on line 4" in e.allowed


def test_merging_what_is_no_mapping_names_the_line_of_the_base():
    """`<<:` takes a mapping or a list of them (YAML's merge key); anything else is a YAML error at the base."""
    e = refused(parse_stack_text, "config:\n  one:\n    <<: 5\n    a: 1\n", "s.yaml")
    assert (e.key, e.value) == ("s.yaml", "<<: 5")
    assert e.allowed == "valid YAML: expected a mapping or a list of mappings to merge, but found scalar at line 3, column 9"
    e = refused(parse_stack_text, "config:\n  b: &b [1]\n  one:\n    <<: [*b]\n", "s.yaml")
    assert e.allowed.endswith("but found sequence at line 2, column 6")


def test_a_merged_mapping_that_merges_itself_keeps_its_own_keys():
    """`mid` overrides what it merges from `base`; `top` merging `mid` gets mid's value (YAML's merge rule,
    applied to mid as mid reads), not base's: the in-place merge of `mid` once kept both of its `a`s and the
    first (base's) won for `top`."""
    text = "config:\n  base: &base {a: 1, b: 1}\n  mid: &mid {<<: *base, a: 2}\n  top: {<<: *mid, c: 3}\n"
    cfg = parse_stack_text(text, "s.yaml")
    assert cfg["mid"] == {"a": 2, "b": 1} and cfg["top"] == {"a": 2, "b": 1, "c": 3}


# --- the load pipeline (gpu_slicing.stack): the stack file's config to a checked stack --------------------------------

def _dev() -> dict:
    import yaml
    from pathlib import Path

    return yaml.safe_load((Path(__file__).resolve().parents[1] / "Pulumi.dev.yaml").read_text())["config"]


def test_a_yaml_date_reaches_the_config_as_its_text():
    """YAML reads an unquoted 2026-01-01 as a date; Pulumi passes the text on, and so does the loader."""
    import datetime

    from gpu_slicing.stack import load_stack

    cfg = _dev()
    cfg["gpu-slicing:cluster"] = {**cfg["gpu-slicing:cluster"], "name": datetime.date(2026, 1, 1)}
    assert load_stack(cfg).config.cluster.name == "2026-01-01"


def test_a_loaded_stack_has_its_pools_by_name_and_is_loaded_once():
    from gpu_slicing.stack import load_stack, parse_config

    stack = load_stack(_dev())
    assert [p.name for p in stack.pools] == ["p4d-balanced", "p4d-small"]  # the dev stack's node groups
    assert stack.pool("p4d-small").name == "p4d-small" and stack.pool("p4d-balanced") is stack.pools[0]
    assert load_stack(_dev()) is stack and parse_config(_dev()) is stack.config
    with pytest.raises(StopIteration):
        stack.pool("missing")
    e = refused(load_stack, {**_dev(), "gpu-slicing:maxGpuNodes": "many"})
    assert e.key == "gpu-slicing:maxGpuNodes"


def test_a_key_given_twice_is_named_by_its_full_path_in_lists_and_at_the_top():
    """Where a duplicate is, as the program names the key (`gpu-slicing:nodeGroups[1].name`, the `config.` prefix
    dropped), with both lines and why it is refused: the user must find the line in a long stack file."""
    text = ("config:\n  gpu-slicing:nodeGroups:\n    - name: a\n    - name: b\n      instanceType: p4d.24xlarge\n"
            "      name: c\n")
    e = refused(parse_stack_text, text, "s.yaml")
    assert (e.key, e.value) == ("gpu-slicing:nodeGroups[1].name", "name")
    assert e.allowed == ("a key given once; it appears on line 4 and again on line 6 (Pulumi refuses duplicate keys; "
                         "YAML would silently keep only the last)")
    e = refused(parse_stack_text, "config:\n  a:b: 1\nconfig:\n  a:c: 2\n", "s.yaml")
    assert (e.key, e.value) == ("config", "config") and "on line 1 and again on line 3" in e.allowed
    e = refused(parse_stack_text, "config:\n  gpu-slicing:cluster:\n    1: x\n    1: y\n", "s.yaml")
    assert (e.key, e.value) == ("gpu-slicing:cluster.1", 1)  # the key as YAML reads it, a number


def test_text_yaml_cannot_read_and_bytes_that_are_not_utf8_name_the_file(tmp_path):
    """A control character YAML forbids (no line to show: the reader stops before parsing) and a byte that is not
    UTF-8 both name the file, so a user of several stack files knows which one."""
    e = refused(load_yaml, "a: \x07\n", "Pulumi.x.yaml")
    assert (e.key, e.value) == ("Pulumi.x.yaml", "<this file>") and e.allowed.startswith("valid YAML: ")
    latin = tmp_path / "Pulumi.latin.yaml"
    latin.write_bytes(b"config:\n  a:b: caf\xe9\n")
    e = refused(read_text, latin)
    assert (e.key, e.value, e.allowed) == (str(latin), "<not UTF-8 at byte 18>", "a UTF-8 YAML text file")


def test_a_duplicate_inside_an_anchored_mapping_is_named_where_it_is_written():
    """The anchored mapping is written once (under a:b) and reused by an alias (a:c): the duplicate is named by
    the path of the lines that hold it; a document that is a list names the entry."""
    e = refused(parse_stack_text, "config:\n  a:b: &x\n    k: 1\n    k: 2\n  a:c: *x\n", "s.yaml")
    assert (e.key, e.value) == ("a:b.k", "k") and "on line 3 and again on line 4" in e.allowed
    e = refused(load_yaml, "- k: 1\n  k: 2\n", "s.yaml")
    assert e.key == "[0].k"


def test_a_duplicate_after_a_key_yaml_cannot_hash_is_still_named():
    """A list used as a key (which YAML allows and the program refuses later) does not end the search for
    duplicates: the duplicate after it is what the user is told about."""
    e = refused(parse_stack_text, "config:\n  ? [1, 2]\n  : x\n  a:b: 1\n  a:b: 2\n", "s.yaml")
    assert (e.key, e.value) == ("a:b", "a:b") and "on line 4 and again on line 5" in e.allowed
