"""`stack.schema.json`: what editors check stack files against, as people type.

It is generated from the config model (`make schema`), so it must equal a fresh generation; it must never
refuse a stack the program plans (an editor would flag a correct file); and it must flag every bad stack
whose problem is a key's shape, type, enum, range or an unknown key, at the path of the offending key.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from conftest import ROOT
from gpu_slicing.schema import stack_schema
from gpu_slicing.stack_file import STACK_FILE_KEYS

SCHEMA_FILE = ROOT / "stack.schema.json"
STACKS = ROOT / "tests" / "stacks"
GOOD = [ROOT / "Pulumi.dev.yaml", *sorted((ROOT / "examples").glob("*.yaml")), *sorted((STACKS / "good").glob("*.yaml"))]
BAD = sorted((STACKS / "bad").glob("*.yaml"))

# Bad stacks whose problem JSON Schema cannot state, and why. Every other bad stack must fail the schema.
NOT_EXPRESSIBLE = {
    "binary": "not a YAML text file: nothing to validate",
    "not-yaml": "not YAML: the editor's YAML parser reports it, before any schema",
    "duplicate-key": "a key given twice is a YAML-level error (the YAML language server reports it itself); "
                     "the parsed document keeps one value",
    "duplicate-nested-key": "as duplicate-key, inside a node group",
    "pods-over-limit": "capacity: the workloads' pods against the pod limit of the pool's instance type",
    "time-slicing-replicas-absurd": "sharing replicas against the pod limit of the pool's instance type",
    "cost-guard-counts-gpus-not-shares": "a sum over every pool compared with maxGpuNodes",
    "merge-key-duplicate-key": "as duplicate-key, beside a merge key",
    "merge-key-duplicate-name": "a name unique within a list of mappings (uniqueItems compares whole entries)",
    "custom-layout-too-big": "whether profiles fit a GPU depends on the GPU model of the node group using the layout",
    "desired-size-too-small": "capacity: the workloads' demand against the pool's desiredSize",
    "max-gpu-nodes-too-low": "a sum over every pool compared with maxGpuNodes",
    "mps-two-shares": "a workload's gpus against its pool's sharing (another list entry)",
    "mps-with-mig": "sharing against the layout the pool's migLayout names",
    "nodegroup-name-too-long": "the length of '<cluster>-<nodeGroup>', two keys in different blocks",
    "role-name-too-long": "the length of '<cluster>-<nodeGroup>-role', two keys in different blocks",
    "pod-larger-than-node": "capacity: the workload's gpus against its pool's instance type",
    "shared-pool-suggestion": "capacity of a pool shared by two workloads",
    "workload-never-fits": "capacity: replicas against what the NodePool's maxNodes and layout admit",
    "workload-unknown-pool": "a workload's pool must name a node group or NodePool (a reference across lists)",
    "workload-wrong-profile": "the profile against the layout of the pool the workload names",
    "dra-does-not-fit": "capacity: the DRA devices a node publishes against the claims",
    "dra-fallbacks-compete": "capacity: two claims' device kinds against what a node publishes",
    "dra-memory-floor-does-not-fit": "capacity: the slices a memory floor matches against the claims",
    "dra-memory-floor-whole-gpu": "a memory floor against the GPU model of the pool the workload names",
    "dra-mig-on-no-slices": "a workload's gpus against the devices its pool's layout leaves (another list entry)",
    "dra-eks-1-33": "a pool's allocation against cluster.kubernetesVersion (another block)",
    "dra-fallback-not-in-layout": "the fallback profiles against the layout of the pool the workload names",
    "dra-key-on-device-plugin-pool": "a workload's claim keys against its pool's allocation (another list entry)",
    "dra-memory-too-large": "a memory floor against the devices of the pool's layout",
    "dra-profile-not-in-layout": "the profile against the layout of the pool the workload names",
    "dra-timeslicing-mig": "claimSharing against whether the pool's layout enables MIG (another list entry)",
}


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors(validator, doc) -> list[tuple[str, str]]:
    return sorted((e.json_path, e.message) for e in validator.iter_errors(doc))


def load(path: Path):
    return yaml.safe_load(path.read_text())


def dev(**config) -> dict:
    """The dev stack with `config` keys replaced (a value of None drops the key)."""
    doc = load(ROOT / "Pulumi.dev.yaml")
    for k, v in config.items():
        if v is None:
            doc["config"].pop(k)
        else:
            doc["config"][k] = v
    return doc


def test_the_committed_schema_is_the_generated_one():
    want = json.dumps(stack_schema(), indent=2, sort_keys=True) + "\n"
    assert SCHEMA_FILE.read_text() == want, (
        "stack.schema.json is out of date with gpu_slicing/config.py: run `make schema` and commit the file")


def _schema_cli(monkeypatch, tmp_path, *argv: str, text: str | None = None) -> tuple[int, str, str, Path]:
    """`python -m tools.schema` on a project at `tmp_path` whose schema file holds `text` (None: no file)."""
    import contextlib
    import io

    from tools import schema as cli

    target = tmp_path / "stack.schema.json"
    if text is not None:
        target.write_text(text)
    monkeypatch.setattr(cli, "ROOT_DIR", tmp_path)
    monkeypatch.setattr(cli, "SCHEMA_FILE", target)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(list(argv))
    return rc, out.getvalue(), err.getvalue(), target


def test_make_schema_writes_the_file_editors_read(monkeypatch, tmp_path):
    """Two-space indents, sorted keys, one newline at the end: a diff of the file shows only what changed."""
    rc, out, err, target = _schema_cli(monkeypatch, tmp_path)
    assert (rc, out, err) == (0, "wrote stack.schema.json\n", "")
    text = target.read_text()
    assert json.loads(text) == stack_schema() and text.endswith("}\n") and not text.endswith("\n\n")
    assert text.startswith('{\n  "$schema": ') and text == (ROOT / "stack.schema.json").read_text()


@pytest.mark.parametrize("text", [None, "{}\n", (ROOT / "stack.schema.json").read_text().rstrip("\n")])
def test_schema_check_fails_on_a_missing_or_stale_file(monkeypatch, tmp_path, text):
    rc, out, err, target = _schema_cli(monkeypatch, tmp_path, "--check", text=text)
    assert (rc, out) == (1, "")
    assert err == "stack.schema.json is out of date with gpu_slicing/config.py: run `make schema`\n"
    assert (target.read_text() if target.exists() else None) == text  # --check writes nothing


def test_schema_check_passes_on_the_committed_file(monkeypatch, tmp_path):
    rc, out, err, _ = _schema_cli(monkeypatch, tmp_path, "--check", text=(ROOT / "stack.schema.json").read_text())
    assert (rc, out, err) == (0, "", "")


def test_schema_help_says_what_it_writes_and_checks(capsys):
    from tools import schema as cli

    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert exited.value.code == 0
    assert "Write the stack file's JSON Schema (`stack.schema.json`, read by editors) from the config model." in out
    assert "--check fail if the committed file is out of date" in out


def test_schema_header_and_top_level_keys_are_pulumi_s():
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema" and "$id" not in schema
    assert schema["title"] and schema["description"]
    assert sorted(schema["properties"]) == sorted(STACK_FILE_KEYS)
    assert schema["required"] == ["config"]
    assert schema["properties"]["config"]["required"] == ["gpu-slicing:cluster", "gpu-slicing:maxGpuNodes"]


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_every_stack_that_plans_is_valid(validator, path):
    assert errors(validator, load(path)) == []


@pytest.mark.parametrize("path", [*GOOD, *BAD], ids=[p.relative_to(ROOT).as_posix() for p in [*GOOD, *BAD]])
def test_every_stack_file_names_the_schema_on_its_first_line(path):
    if path.name == "binary.yaml":
        pytest.skip("a gzip stream: no text line to carry the modeline")
    first = path.read_text().splitlines()[0]
    prefix = "# yaml-language-server: $schema="
    assert first.startswith(prefix), first
    target = (path.parent / first.removeprefix(prefix)).resolve()
    assert target == SCHEMA_FILE, f"{first} resolves to {target}"
    assert os.path.relpath(SCHEMA_FILE, path.parent) == first.removeprefix(prefix)


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_every_bad_stack_the_schema_can_judge_fails_it(validator, path):
    if path.stem in NOT_EXPRESSIBLE:
        pytest.skip(NOT_EXPRESSIBLE[path.stem])
    found = [_as_key(list(e.absolute_path)) for e in validator.iter_errors(load(path))]
    assert found, f"{path.name} passes the schema, but its problem is one of shape, type, enum or range"
    key = re.search(r"^# expect-key: (.+)$", path.read_text(), re.M).group(1)
    # an editor marks the key at fault, or the block holding it, or (a missing key) the block it belongs in
    within = lambda inner, outer: outer in ("", inner) or inner.startswith((outer + ".", outer + "["))  # noqa: E731
    assert all(within(key, f) or within(f, key) for f in found), (key, found)


def _as_key(path: list) -> str:
    """A JSON Schema error's place as the program names keys: `gpu-slicing:nodeGroups[0].minSize`; the
    document and its `config:` block are "" (they hold every key)."""
    out = str(path[1]) if len(path) > 1 else ""
    for part in path[2:]:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def test_the_not_expressible_list_names_real_files_that_do_pass():
    """Each exception is a real bad stack, and (YAML-level ones aside) really passes the schema: when the
    schema learns to flag one, it leaves the list."""
    schema = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    names = {p.stem for p in BAD}
    assert set(NOT_EXPRESSIBLE) <= names
    for stem in set(NOT_EXPRESSIBLE) - {"binary", "not-yaml"}:
        assert errors(schema, load(STACKS / "bad" / f"{stem}.yaml")) == [], stem


@pytest.mark.parametrize("config, path, message", [
    ({"gpu-slicing:nodeGroup": [{"name": "x"}]}, "$.config",
     "'gpu-slicing:nodeGroup' does not match any of the regexes: '^(aws|eks|kubernetes|pulumi):.+$'"),
    ({"gpu-slicing:cluster": {"nmae": "gpu-dev", "publicAccessCidrs": ["0.0.0.0/0"]}}, "$.config['gpu-slicing:cluster']",
     "Additional properties are not allowed ('nmae' was unexpected)"),
    ({"gpu-slicing:nodeGroups": [{"name": "p4d", "instanceType": "p4d.24xlarge", "maxSize": "3"}]},
     "$.config['gpu-slicing:nodeGroups'][0].maxSize", "'3' is not of type 'integer'"),
    ({"gpu-slicing:nodeGroups": [{"name": "p4d", "instanceType": "p4d.24xlarge", "maxSize": 101}]},
     "$.config['gpu-slicing:nodeGroups'][0].maxSize", "101 is greater than the maximum of 100"),
    ({"gpu-slicing:nodeGroups": [{"name": "p4d", "instanceType": "p4d.24xlarge", "capacityType": "on-demand"}]},
     "$.config['gpu-slicing:nodeGroups'][0].capacityType", "'on-demand' is not one of ['ON_DEMAND', 'SPOT']"),
    ({"gpu-slicing:nodeGroups": [{"name": "p4d", "instanceType": "p4d.24xlrage"}]},
     "$.config['gpu-slicing:nodeGroups'][0].instanceType", None),
    ({"gpu-slicing:nodeGroups": [{"name": "p4d"}]},
     "$.config['gpu-slicing:nodeGroups'][0]", "'instanceType' is a required property"),
    ({"gpu-slicing:network": {"vpcCidr": "10.0.0.0/33"}}, "$.config['gpu-slicing:network'].vpcCidr", None),
    ({"gpu-slicing:network": {"vpcCidr": "10.0.0/16"}}, "$.config['gpu-slicing:network'].vpcCidr", None),
    ({"gpu-slicing:karpenter": {"enabled": True, "nodePools": [
        {"name": "p", "instanceTypes": ["p4d.24xlarge"], "consolidateAfter": "10 minutes"}]}},
     "$.config['gpu-slicing:karpenter'].nodePools[0].consolidateAfter", None),
    ({"gpu-slicing:nodeGroups": [{"name": "p4d", "instanceType": "p4d.24xlarge",
                                  "sharing": {"timeSlicing": {"replicas": 1}}}]},
     "$.config['gpu-slicing:nodeGroups'][0].sharing.timeSlicing.replicas", "1 is less than the minimum of 2"),
    ({"gpu-slicing:nodeGroups": [{"name": "p4d", "instanceType": "p4d.24xlarge",
                                  "sharing": {"timeSlicing": {"replicas": 4, "resource": ["nvidia.com/gpu"]}}}]},
     "$.config['gpu-slicing:nodeGroups'][0].sharing.timeSlicing",
     "Additional properties are not allowed ('resource' was unexpected)"),
    ({"gpu-slicing:migLayouts": {"half": [{"devices": [0, 1], "profiles": {"1g.5gb": 0}}]}},
     "$.config['gpu-slicing:migLayouts'].half[0].profiles['1g.5gb']", "0 is less than the minimum of 1"),
    ({"gpu-slicing:migLayouts": {"all-mine": [{"devices": "all"}]}}, "$.config['gpu-slicing:migLayouts']", None),
    ({"gpu-slicing:workloads": [{"name": "w", "pool": "p4d-balanced", "profile": "1g.5gb", "replicas": -1}]},
     "$.config['gpu-slicing:workloads'][0].replicas", "-1 is less than the minimum of 0"),
    ({"gpu-slicing:maxGpuNodes": None}, "$.config", "'gpu-slicing:maxGpuNodes' is a required property"),
])
def test_a_typo_fails_at_the_key_s_path(validator, config, path, message):
    found = errors(validator, dev(**config))
    assert found and {p for p, _ in found} == {path}, found
    if message:
        assert message in [m for _, m in found], found


@pytest.mark.parametrize("config", [
    {"aws:region": "eu-west-1", "aws:profile": "team", "pulumi:tags": {"team": "ml"}, "eks:anything": 1,
     "kubernetes:enableServerSideApply": "true"},
    {"gpu-slicing:maxGpuNodes": "7", "gpu-slicing:allowDisruption": "false"},  # as `pulumi config set` writes them
    {"gpu-slicing:network": None, "gpu-slicing:observability": {}},
    {"gpu-slicing:cluster": {"name": "gpu-dev", "publicAccessCidrs": ["198.51.100.0/23", "1.2.3.4",
                                                                      "10.0.0.0/255.0.0.0"]}},
], ids=["provider-namespaces", "cli-written-text", "empty-blocks", "cidr-forms"])
def test_what_the_program_accepts_the_schema_accepts(validator, config):
    """Including the forms the program parses that a strict reading might refuse (other namespaces, the
    strings the Pulumi CLI writes, empty blocks, bare addresses and netmasks ip_network reads)."""
    doc = dev(**config)
    assert errors(validator, doc) == []
    from gpu_slicing.config import parse_shape

    parse_shape(doc["config"])


def test_unknown_gpu_slicing_keys_fail_and_other_namespaces_do_not(validator):
    doc = dev(**{"gpu-slicing:nodeGroup": [], "gpu-slicing:maxGPUNodes": 3, "aws:region": "us-west-2",
                 "cluster": {"name": "bare"}})
    assert errors(validator, doc) == [("$.config", "'cluster', 'gpu-slicing:maxGPUNodes', 'gpu-slicing:nodeGroup' "
                                                  "do not match any of the regexes: '^(aws|eks|kubernetes|pulumi):.+$'")]


def test_every_model_key_is_described_with_its_default(validator):
    """Editors show each key's doc and default on hover; the values come from the model's fields."""
    config = json.loads(SCHEMA_FILE.read_text())["properties"]["config"]["properties"]
    cluster = config["gpu-slicing:cluster"]["properties"]
    assert cluster["kubernetesVersion"]["default"] == "1.35"
    assert cluster["logTypes"]["default"] == ["api", "audit", "authenticator", "controllerManager", "scheduler"]
    assert "default" not in cluster["name"] and config["gpu-slicing:cluster"]["required"] == ["name"]
    pool = config["gpu-slicing:karpenter"]["properties"]["nodePools"]["items"]["properties"]
    assert pool["expireAfter"]["default"] == "Never" and pool["capacityTypes"]["default"] == ["on-demand"]

    def walk(node, where):
        if isinstance(node, dict) and node.get("additionalProperties") is False and "properties" in node:
            for k, v in node["properties"].items():
                assert v.get("description"), f"{where}.{k} has no description"
                walk(v, f"{where}.{k}")
        elif isinstance(node, dict):
            for k in ("items", "additionalProperties"):
                if isinstance(node.get(k), dict):
                    walk(node[k], f"{where}[]")
    for key, prop in config.items():
        assert prop.get("description"), key
        walk(prop, key)
