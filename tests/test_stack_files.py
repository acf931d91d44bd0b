"""Realistic and bad stack files, each planned the way a user runs `make plan CONFIG=<file>`.

`tests/stacks/good/*.yaml` plan cleanly (exit 0) and show the per-node figures the facts give (docs/facts.md), declared in
the file's comments (`# expect-per-node: <pool>[@<instance type>] <resource>=<n> ...`, `# expect-count:
<resource type>=<n> ...`, `# expect-usd-per-hour: <pool> <usd>|unpriced`, `# expect-zones-in: <region>`,
`# expect-total-usd-per-hour: <usd>`, `# expect-pods-per-node: <pool> <n>`, `# expect-price-basis: <pool>
<basis>`, `# expect-input: <resource type> <dotted input path>=<JSON value>`, `# expect-counted: <workload>
<resource>=<n> ...`: the units of each resource a workload that several serve is counted against).
`tests/stacks/bad/*.yaml` exit 2 with an error naming the key the file declares (`# expect-key: <key>`,
`<this file>` for the file itself), any `# expect-message:` text and none of the `# expect-no-message:`
text, "0 resources registered" and never a Python traceback.
"""
from __future__ import annotations

import contextlib
import io
import json
import re
import time
from pathlib import Path

import pytest

from conftest import ROOT, dev_config

STACKS = ROOT / "tests" / "stacks"
GOOD = sorted((STACKS / "good").glob("*.yaml"))
BAD = sorted((STACKS / "bad").glob("*.yaml"))


def expectations(path: Path) -> dict[str, list[str]]:
    """`# expect-<what>: <value>` lines of the file's leading comment (binary files included)."""
    out: dict[str, list[str]] = {}
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        if not line.startswith("#"):
            break
        m = re.match(r"#\s*expect-([a-z-]+):\s*(.+?)\s*$", line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


CPU_SECONDS: dict[str, float] = {}  # per file, for the speed test at the end


def plan(path: Path, *extra: str) -> tuple[int, str, str]:
    """`python -m tools.plan --config <path> --quiet` in-process: (exit status, stdout, stderr)."""
    from tools.plan import main

    t0 = time.process_time()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(["--config", str(path), "--quiet", *extra])
        except BaseException as e:  # noqa: BLE001 - a traceback is exactly what the test must report
            import traceback

            err.write("".join(traceback.format_exception(e)))
            rc = None
    CPU_SECONDS[path.name] = time.process_time() - t0
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module", autouse=True)
def _warm_imports():
    """The first plan in a process pays for importing the SDK, providers and checkers: not the suite's cost."""
    plan(ROOT / "Pulumi.dev.yaml")
    CPU_SECONDS.clear()


@pytest.mark.slow
def test_every_stack_file_declares_what_it_expects():
    assert len(GOOD) >= 10 and len(BAD) >= 30
    for path in GOOD:
        assert expectations(path).get("per-node"), f"{path.name} declares no expected per-node figures"
    for path in BAD:
        assert len(expectations(path).get("key", [])) == 1, f"{path.name} declares no single expect-key"


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_stack_file_exits_2_naming_the_key(path):
    want = expectations(path)
    key = want["key"][0].replace("<this file>", str(path))
    rc, out, err = plan(path)
    assert "Traceback" not in out + err, err
    assert rc == 2, out + err
    lines = err.splitlines()
    named = [line.strip() for line in lines if line.strip().startswith(f"{key}: ")]
    assert named, f"no error naming {key!r}:\n{err}"
    for text in want.get("message", []):
        assert text in named[0], f"{text!r} not in {named[0]!r}"
    for text in want.get("no-message", []):
        assert text not in named[0], f"{text!r} in {named[0]!r}"
    python = re.search(r"\bNone\b|\bTrue\b|\bFalse\b|\['|\{'|\('[^)]*',", "\n".join(lines))
    assert python is None, f"a Python repr in the errors: {python.group(0)!r}\n{err}"
    assert "0 resources registered" in lines


@pytest.mark.slow
@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_good_stack_file_plans_with_the_figures_it_declares(path, tmp_path):
    want = expectations(path)
    record_path = tmp_path / "plan.json"
    rc, out, err = plan(path, "--json", str(record_path))
    assert "Traceback" not in out + err, err
    assert rc == 0, out + err
    record = json.loads(record_path.read_text())
    pools = {p["name"]: p for p in record["capacity"]["pools"]}
    for line in want["per-node"]:
        pool, *figures = line.split()
        name, _, itype = pool.partition("@")
        assert name in pools, f"{path.name}: no pool {name} in {sorted(pools)}"
        got = _per_node(pools[name], itype)
        for fig in figures:
            resource, _, n = fig.partition("=")
            assert got.get(resource, 0) == int(n), f"{path.name}: {pool} {resource} = {got.get(resource)}, not {n}"
    for line in want.get("count", []):
        for fig in line.split():
            rtype, _, n = fig.partition("=")
            found = sum(1 for r in record["resources"] if r["type"] == rtype)
            assert found == int(n), f"{path.name}: {found} x {rtype}, not {n}"
    for line in want.get("counted", []):  # a DRA claim several device kinds serve: what the plan counted of each
        name, *figures = line.split()
        (work,) = [w for w in record["capacity"]["workloads"] if w["name"] == name]
        assert work.get("counted") == {f.partition("=")[0]: int(f.partition("=")[2]) for f in figures}, \
            f"{path.name}: {name} counted {work.get('counted')}"
    for line in want.get("usd-per-hour", []):
        name, usd = line.split()
        expected = None if usd == "unpriced" else pytest.approx(float(usd))
        assert pools[name]["usdPerHour"] == expected, f"{path.name}: {name} cost"
    for usd in want.get("total-usd-per-hour", []):
        assert record["capacity"]["usdPerHour"] == pytest.approx(float(usd)), f"{path.name}: total cost"
    for line in want.get("pods-per-node", []):
        name, n = line.split()
        assert pools[name]["pods"]["forWorkloadsPerNode"] == int(n), f"{path.name}: {name} pods per node"
    for line in want.get("price-basis", []):
        name, basis = line.split(maxsplit=1)
        assert pools[name]["priceBasis"] == basis, f"{path.name}: {name} priced at {pools[name]['priceBasis']}"
    for line in want.get("input", []):
        rtype, _, setting = line.partition(" ")
        dotted, _, value = setting.partition("=")
        got = [_dig(r["inputs"], dotted) for r in record["resources"] if r["type"] == rtype]
        assert json.loads(value) in got, f"{path.name}: {rtype} {dotted} is {got}"
    for region in want.get("zones-in", []):
        zones = [r["inputs"]["availabilityZone"] for r in record["resources"] if r["type"] == "aws:ec2/subnet:Subnet"]
        assert zones and all(z.startswith(region) for z in zones), f"{path.name}: subnets in {zones}"
    assert all(w["fits"] for w in record["capacity"]["workloads"]), record["capacity"]["workloads"]


def _dig(inputs, dotted: str):
    for part in dotted.split("."):
        inputs = inputs.get(part) if isinstance(inputs, dict) else None
    return inputs


def _per_node(pool: dict, instance_type: str) -> dict[str, int]:
    """What one node of `pool` advertises; for a NodePool of several sizes, a node of `instance_type`."""
    if not instance_type:
        return pool["perNode"]
    by_type = pool.get("perInstanceType") or {}
    assert instance_type in by_type, f"pool {pool['name']} has no per-instance-type figures for {instance_type}"
    return by_type[instance_type]


FILE_LEVEL = ["not-yaml", "binary", "top-level-list", "config-not-mapping", "top-level-typo", "duplicate-key",
              "duplicate-nested-key", "namespace-typo"]


@pytest.mark.parametrize("name", FILE_LEVEL)
def test_make_advise_reads_stack_files_as_strictly_as_make_plan(name):
    """`make advise CONFIG=<file>`: the same refusal, exit 2 and the key, never a traceback."""
    from tools.advise import main

    path = STACKS / "bad" / f"{name}.yaml"
    key = expectations(path)["key"][0].replace("<this file>", str(path))
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = main(["--config", str(path)])
    assert rc == 2 and f"error: {key}: " in err.getvalue(), err.getvalue()


# Refused at the load pipeline's first step (keys, types, ranges): make advise reads the stack through that step
# (its partial mode), so it refuses them as make plan does instead of advising on what the file does not say.
SHAPE_LEVEL = ["unknown-key", "max-gpu-nodes-not-a-number", "node-groups-not-a-list", "kubernetes-version-unquoted",
               "nodegroup-name-too-long", "namespace-unknown"]


@pytest.mark.parametrize("name", SHAPE_LEVEL)
def test_make_advise_refuses_a_stack_file_whose_keys_make_plan_refuses(name):
    from tools.advise import main

    path = STACKS / "bad" / f"{name}.yaml"
    key = expectations(path)["key"][0]
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = main(["--config", str(path)])
    text = err.getvalue()
    assert rc == 2 and text.startswith("error: ") and f"{key}: " in text, text  # alone, or one line of several


def test_the_whole_suite_is_fast():
    """All files together take well under 10 s of CPU (wall time varies with the machine's load), so the
    suite stays in `make test`. Runs last, after the tests above planned every file."""
    if len(CPU_SECONDS) < len(GOOD) + len(BAD):
        pytest.skip("only part of the suite ran")
    assert sum(CPU_SECONDS.values()) < 10, sorted(CPU_SECONDS.items(), key=lambda kv: -kv[1])[:5]


def _advise(*argv: str) -> tuple[int, str, str]:
    from tools.advise import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.slow
def test_make_advise_on_two_gpu_models_advises_each_model_on_its_own():
    """A MIG layout serves one GPU model: advising the p4d and p5 workloads as one demand would plan H100
    profiles on A100s. The advisor makes one plan per model, each with only that model's profiles."""
    path = STACKS / "good" / "p4d-p5-custom-layout.yaml"
    rc, out, _ = _advise("--config", str(path))
    assert rc == 0
    a100, h100 = out.split("=== H100-80GB-HBM3: plan 2 of 2 ===")
    assert "=== A100-SXM4-40GB: plan 1 of 2 ===" in a100
    assert "Demand: 12 x 1g.5gb, 6 x 3g.20gb" in a100 and "1g.10gb" not in a100
    assert "Demand: 8 x 2g.20gb, 24 x 1g.10gb, 4 x 7g.80gb" in h100.split("Stack config")[0]


def test_booleans_are_read_as_pulumi_reads_them():
    """Pulumi's stack-file parser is YAML 1.2: `yes`/`off` are strings there, so the offline plan must not
    read them as booleans (a stack that plans clean would fail at `pulumi preview`)."""
    from gpu_slicing.stack_file import load_yaml

    assert load_yaml("a: yes\nb: off\nc: true\nd: False\n", "t") == {"a": "yes", "b": "off", "c": True, "d": False}
    cfg = dev_config()
    cfg["gpu-slicing:karpenter"]["enabled"] = "yes"  # what `enabled: yes` is to Pulumi
    from gpu_slicing.errors import ConfigError
    from gpu_slicing.stack import parse_config

    with pytest.raises(ConfigError) as e:
        parse_config(cfg)
    assert e.value.key == "gpu-slicing:karpenter.enabled" and "true or false" in str(e.value)
