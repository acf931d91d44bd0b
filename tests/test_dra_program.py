"""DRA through the whole program (slow: each runs the program on a stack of its own): the example plans with
0 check errors, every claim object validates against the Kubernetes schema, and `make diff` shows a pool
moving from the device plugin to DRA as a new node group (never an in-place switch on live nodes)."""
from __future__ import annotations

import contextlib
import io
import json

import pytest
import yaml

from conftest import ROOT

EXAMPLE = ROOT / "examples" / "Pulumi.dra.yaml"


def _quiet(main, argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue() + err.getvalue()


@pytest.mark.slow
def test_example_plans_with_no_check_errors_and_valid_claims(tmp_path):
    from tools.plan import main

    rc, text = _quiet(main, ["--config", str(EXAMPLE), "--quiet", "--json", str(tmp_path / "plan.json")])
    assert rc == 0, text
    record = json.loads((tmp_path / "plan.json").read_text())
    errors = [c for c in record["checks"] if c["severity"] == "error"]
    assert errors == []
    kinds = [r["inputs"]["kind"] for r in record["resources"] if r["type"].startswith("kubernetes:resource.k8s.io/v1:")]
    assert kinds == ["ResourceClaimTemplate"] * 3
    assert any(c["id"] == "dra.claims" and c["message"].startswith("3 DRA claims") for c in record["checks"])
    schema = next(c for c in record["checks"] if c["id"] == "k8s.schema" and c["severity"] == "info")
    assert "Kubernetes 1.35" in schema["message"]
    driver = next(r for r in record["resources"] if r["type"] == "kubernetes:helm.sh/v3:Release"
                  and r["inputs"]["name"] == "dra-driver-nvidia-gpu")
    assert driver["inputs"]["version"] == "0.5.0"


@pytest.mark.slow
def test_switching_a_pool_to_dra_is_a_new_node_group(tmp_path):
    from tools.diff import main

    cfg = yaml.safe_load(EXAMPLE.read_text())
    cfg["config"]["gpu-slicing:nodeGroups"][0].pop("allocation")
    cfg["config"]["gpu-slicing:workloads"] = [{"name": "h100-1g", "profile": "1g.10gb", "replicas": 16,
                                               "pool": "p5-dra"}]
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(cfg))
    rc, text = _quiet(main, ["--base", str(base), "--config", str(EXAMPLE), "--json", str(tmp_path / "d.json")])
    report = json.loads((tmp_path / "d.json").read_text())
    pools = {p["name"]: p for p in report["pools"]}
    assert pools["p5-dra"]["impact"] == "blue-green" and pools["p4d-plugin"]["impact"] == "none", text
    changed = {(r["type"], r["name"]): r for r in report["resources"]}
    assert changed[("eks:index:ManagedNodeGroup", "gpu-dra-p5-dra")]["op"] == "replace"


@pytest.mark.slow
def test_the_plan_says_which_claim_a_dra_verification_job_holds():
    """A DRA Job asks for its slice by claim, not by an extended-resource limit: the plan's verification line
    names the claim template (it printed an empty resource) and quotes the command as a shell would run it."""
    from tools.plan import main

    rc, text = _quiet(main, ["--config", str(EXAMPLE)])
    assert rc == 0, text
    line = next(x for x in text.splitlines() if x.startswith("Verification:") and "p5-dra" in x)
    assert "with the device of claim template h100-1g-slice on p5-dra" in line
    assert "runs `bash -c 'nvidia-smi -L && test " in line
