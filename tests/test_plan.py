"""The offline plan's output (tools/plan.py): the resource tree, the order it is printed in, the verification
note, the summary line and the exit status. Records are small lists of registrations written here, and the
expected text is worked out by hand from them; `main` runs over a given run and given findings (the program
and the checks have tests of their own)."""
from __future__ import annotations

import contextlib
import io
import json
from types import SimpleNamespace

import pytest

from conftest import ROOT
from gpu_slicing.errors import ConfigError
from test_checks import reg
from tools import plan

NET = "gpu-slicing:index:Network"
URN = "urn:pulumi:dev::gpu-slicing::{}::{}"


def component(name: str, **kw) -> dict:
    return reg(NET, name, {}, custom=False, **kw)


def urn(r: dict) -> str:
    return r["urn"]


# --- what a line shows -------------------------------------------------------------------------------------

def test_dig_walks_keys_and_list_indexes():
    inputs = {"spec": {"containers": [{"command": ["a"]}, {"command": ["b"]}]}}
    assert plan._dig(inputs, "spec.containers.1.command") == ["b"]
    assert plan._dig(inputs, "spec.containers.2.command") is None  # past the end
    assert plan._dig(inputs, "spec.containers.first") is None
    assert plan._dig(inputs, "spec.missing") is None
    assert plan._dig({"a": {"0": "key"}}, "a.0") == "key"  # a digit names a key of a mapping


def test_summary_shows_the_key_inputs_short_and_compact():
    """Paths of three or more dots are shown by their last part; values as compact JSON; missing ones left out."""
    deployment = reg("kubernetes:apps/v1:Deployment", "d", {"spec": {"replicas": 2, "template": {"spec": {
        "containers": [{"resources": {"limits": {"nvidia.com/mig-1g.5gb": 1}}}],
        "nodeSelector": {"gpu-slicing/pool": "p"}}}}})
    assert plan.summary(deployment) == ('spec.replicas=2  limits={"nvidia.com/mig-1g.5gb":1}  '
                                        'nodeSelector={"gpu-slicing/pool":"p"}')
    cluster = reg("eks:index:Cluster", "c", {"name": "gpu", "version": "1.35", "endpointPublicAccess": False,
                                             "publicAccessCidrs": ["198.51.100.0/24"]})
    assert plan.summary(cluster) == ('name="gpu"  version="1.35"  endpointPublicAccess=false  '
                                     'publicAccessCidrs=["198.51.100.0/24"]')
    assert plan.summary(reg("aws:ec2/vpc:Vpc", "v", {})) == ""


def test_observability_objects_are_summed_up_by_what_they_hold():
    from gpu_slicing import observability as obs

    fields = reg("kubernetes:core/v1:ConfigMap", "f", {"data": {obs.EXPORTER_CSV_KEY: "B, gauge, b\n# c\nA, gauge, a\n"}})
    board = reg("kubernetes:core/v1:ConfigMap", "b", {"data": {obs.DASHBOARD_KEY: json.dumps({"panels": [
        {"type": "row", "title": "Per pool"}, {"type": "timeseries", "title": "Slices in use"}, {"title": "Free"}]})}})
    alerts = reg("kubernetes:monitoring.coreos.com/v1:PrometheusRule", "a", {"spec": {"groups": [
        {"rules": [{"alert": "SliceIdle"}]}, {"rules": [{"alert": "MigConfigFailed"}]}]}})
    assert plan.summary(fields) == 'fields=["A", "B"]'
    assert plan.summary(board) == 'panels=["Slices in use", "Free"]'
    assert plan.summary(alerts) == 'alerts=["SliceIdle", "MigConfigFailed"]'
    assert plan.summary(reg("kubernetes:core/v1:ConfigMap", "x", {"data": "<computed>"})) == ""
    assert plan.summary(reg("kubernetes:core/v1:ConfigMap", "y", {"data": {"other": "text"}})) == ""


# --- order and edges -------------------------------------------------------------------------------------------

def _network_and_cluster():
    net = component("net")
    vpc = reg("aws:ec2/vpc:Vpc", "vpc", {"cidrBlock": "10.0.0.0/16"}, parent=urn(net))
    a = reg("aws:ec2/subnet:Subnet", "a", {}, parent=urn(net), dependencies=[urn(vpc)])
    b = reg("aws:ec2/subnet:Subnet", "b", {}, parent=urn(net), dependencies=[urn(vpc)])
    cluster = reg("eks:index:Cluster", "c", {"name": "c"}, dependencies=[urn(b), urn(a), urn(vpc)])
    provider = reg("pulumi:providers:kubernetes", "k8s", {}, dependencies=[urn(cluster)])
    deploy = reg("kubernetes:apps/v1:Deployment", "d", {}, provider=urn(provider) + "::0b1c")
    return net, vpc, a, b, cluster, provider, deploy


def test_creation_order_puts_what_a_resource_waits_for_first():
    """Dependencies, the parent and the provider first; among the ready ones the smaller URN; a cycle (which
    the engine would refuse) at the end, by URN."""
    net, vpc, a, b, cluster, provider, deploy = _network_and_cluster()
    x = reg("aws:iam/role:Role", "x", {}, dependencies=[URN.format("aws:iam/role:Role", "y")])
    y = reg("aws:iam/role:Role", "y", {}, dependencies=[urn(x)])
    got = plan.creation_order([y, deploy, x, provider, cluster, b, a, vpc, net])
    assert [r["name"] for r in got] == ["net", "vpc", "a", "b", "c", "k8s", "d", "x", "y"]
    key = reg("aws:kms/key:Key", "key", {})
    assert [r["name"] for r in plan.creation_order([vpc, key, net])] == ["key", "net", "vpc"]  # by URN: aws:kms < gpu-slicing


def test_the_tree_shows_components_resources_inputs_and_edges():
    net, vpc, a, b, cluster, provider, deploy = _network_and_cluster()
    tree = plan.render_tree(plan.creation_order([deploy, provider, cluster, b, a, vpc, net]))
    assert tree.splitlines() == [
        "# gpu-slicing:index:Network  net",
        "  + aws:ec2/vpc:Vpc  vpc",
        '      cidrBlock="10.0.0.0/16"',
        "  + aws:ec2/subnet:Subnet  a",
        "      needs: vpc",
        "  + aws:ec2/subnet:Subnet  b",
        "      needs: vpc",
        "+ eks:index:Cluster  c",
        '    name="c"',
        "    needs: net/*",  # every resource of the component: said once, by the component
        "+ pulumi:providers:kubernetes  k8s",
        "    needs: c",
        "+ kubernetes:apps/v1:Deployment  d",
        "    needs: k8s"]


def test_edges_name_a_component_only_when_all_of_it_is_waited_for():
    net, vpc, a, b, cluster, provider, deploy = _network_and_cluster()
    role = reg("aws:iam/policy:Policy", "p", {})
    attachment = reg("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "p", {})
    lt = reg("aws:ec2/launchTemplate:LaunchTemplate", "lt", {}, dependencies=[urn(b), urn(a), urn(role), urn(attachment)])
    tree = plan.render_tree(plan.creation_order([lt, role, attachment, b, a, vpc, net]))
    # the vpc is not waited for, so the subnets are named (in creation order), and one 'p' stands for both
    assert tree.splitlines()[-1] == "    needs: p, a, b"


# --- the verification note -------------------------------------------------------------------------------------

def _job(name: str, spec: dict) -> dict:
    return reg("kubernetes:batch/v1:Job", name, {"metadata": {"name": name}, "spec": {"template": {"spec": spec}}})


def test_the_verification_note_says_what_the_job_runs_where_and_before_what():
    job = _job("verify", {"nodeSelector": {"gpu-slicing/pool": "p4d-small"}, "containers": [
        {"command": ["sh", "-c", "nvidia-smi -L"], "resources": {"limits": {"cpu": "1", "nvidia.com/mig-1g.5gb": 1}}}]})
    waiting = [reg("kubernetes:apps/v1:Deployment", n, {}, dependencies=[urn(job)]) for n in ("w-b", "w-a")]
    other = reg("kubernetes:apps/v1:Deployment", "free", {})
    service = reg("kubernetes:core/v1:Service", "svc", {}, dependencies=[urn(job)])
    assert plan.verification_notes([job, *waiting, other, service]) == [
        "Verification: Job verify runs `sh -c 'nvidia-smi -L'` with 1 x nvidia.com/mig-1g.5gb on p4d-small; it "
        "completes (and frees its slice) before w-a, w-b are created"]
    assert plan.verification_notes([job, waiting[0]])[0].endswith("before w-b is created")


def test_the_verification_note_of_a_dra_claim_and_of_no_gpu():
    dra = _job("verify-dra", {"resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "slice-claim"}],
                              "containers": [{"command": ["nvidia-smi"]}]})
    bare = _job("bare", {"containers": [{}]})
    assert plan.verification_notes([dra, bare]) == [
        "Verification: Job verify-dra runs `nvidia-smi` with the device of claim template slice-claim on ?; it "
        "completes (and frees its slice) before anything else wants that slice",
        "Verification: Job bare runs `` with no GPU on ?; it completes (and frees its slice) before anything else "
        "wants that slice"]


# --- main: the summary line and the exit status ---------------------------------------------------------------

class _Reg(SimpleNamespace):
    def to_json(self) -> dict:
        return self.record


@pytest.fixture
def planned(monkeypatch, tmp_path):
    """tools.plan.main on a copy of the dev stack file named Pulumi.x.yaml, over the given registrations,
    program error and findings: (exit status, stdout, stderr, how the program was run)."""
    from tools import checks, harness

    path = tmp_path / "Pulumi.x.yaml"
    path.write_text((ROOT / "Pulumi.dev.yaml").read_text())

    def go(records: list[dict], found: list[dict], *args: str, error: BaseException | None = None, text=None):
        if text is not None:
            path.write_text(text)
        calls = []
        run = SimpleNamespace(project="gpu-slicing", registrations=[_Reg(record=r) for r in records],
                              outputs={"capacity": {"pools": []}}, error=error)
        monkeypatch.setattr(harness, "run_program", lambda config, **kw: calls.append(kw) or run)
        monkeypatch.setattr(checks, "run_checks", lambda config, resources: found)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = plan.main(["--config", str(path), *args])
        return rc, out.getvalue(), err.getvalue(), calls

    return go


def _finding(severity: str, id_: str, message: str, resource: str | None = None) -> dict:
    return {"id": id_, "severity": severity, "message": message, "resource": resource}


def test_the_summary_counts_registrations_edges_and_findings(planned, tmp_path):
    net, vpc, a, b, cluster, provider, deploy = _network_and_cluster()
    found = [_finding("error", "k8s.schema", "Deployment d: bad", "d"), _finding("warning", "security.x", "careful"),
             _finding("info", "policy", "3 rules run")]
    rc, out, err, calls = planned([deploy, cluster, vpc, a, b, net], found, "--quiet", "--json", str(tmp_path / "r.json"))
    assert (rc, err, calls) == (1, "", [{"stack": "x", "preview": True}])
    lines = out.splitlines()
    assert lines[:3] == ["ERROR    k8s.schema: Deployment d: bad [d]", "WARNING  security.x: careful",
                         "INFO     policy: 3 rules run"]
    # 6 registrations, one a component; edges: 2 subnets -> vpc, cluster -> 3 (its provider is no edge)
    assert lines[3].startswith("6 registrations (5 resources, 1 components), 5 dependency edges, 1 check errors, "
                               "1 warnings, ")
    assert lines[4:] == [f"record written to {tmp_path / 'r.json'}"]
    record = json.loads((tmp_path / "r.json").read_text())
    assert (record["stack"], record["project"], record["checks"], record["capacity"]) == (
        "x", "gpu-slicing", found, {"pools": []})
    assert [r["name"] for r in record["resources"]] == ["net", "vpc", "a", "b", "c", "d"]


def test_warnings_alone_pass_and_up_mocks_an_update(planned):
    rc, out, err, calls = planned([], [_finding("warning", "security.x", "careful")], "--quiet", "--up")
    assert (rc, calls) == (0, [{"stack": "x", "preview": False}])
    assert out.splitlines()[-1].startswith("0 registrations (0 resources, 0 components), 0 dependency edges, "
                                           "0 check errors, 1 warnings, ")


def test_a_config_error_of_the_program_exits_2_with_what_was_registered(planned):
    net, vpc, *_ = _network_and_cluster()

    class Errors(ConfigError):
        def __str__(self) -> str:
            return "gpu-slicing:a: 1 is not valid: 2\ngpu-slicing:b: not set: 3"

    rc, out, err, _ = planned([net, vpc], [], "--quiet", error=Errors("x", None, "y"))
    assert (rc, out) == (2, "")
    assert err.splitlines() == ["error: invalid config in Pulumi.x.yaml:", "  gpu-slicing:a: 1 is not valid: 2",
                                "  gpu-slicing:b: not set: 3", "2 resources registered"]


def test_a_failed_program_exits_2_saying_why(planned):
    rc, out, err, _ = planned([], [], "--quiet", error=RuntimeError("no zone offers p5.48xlarge"))
    assert (rc, out, err) == (2, "", "error: the program failed in Pulumi.x.yaml:\n  no zone offers p5.48xlarge\n")


def test_an_unreadable_stack_file_exits_2_before_the_program_runs(planned):
    rc, out, err, calls = planned([], [], "--quiet", text="config: [unclosed\n")
    assert (rc, out, calls) == (2, "", [])
    assert err.startswith("error: invalid stack file ") and "Pulumi.x.yaml:\n  " in err
    assert err.endswith("\n0 resources registered\n")


def test_the_full_output_names_the_stack_the_mode_and_the_region(planned):
    rc, out, _, _ = planned([], [], "--up")
    assert rc == 0
    assert out.splitlines()[0] == "Offline plan of stack 'x' (Pulumi.x.yaml), update under mocks, region us-east-1"
    assert "GPU pools: the nodes that will exist" in out and "Note: the prices" not in out
    assert "Resources. Legend: '#' component, '+' resource" in out


def test_prices_of_another_region_are_said_to_be_us_east_1s(planned):
    text = (ROOT / "Pulumi.dev.yaml").read_text().replace("aws:region: us-east-1", "aws:region: eu-west-1")
    rc, out, _, _ = planned([], [], text=text)
    assert rc == 0 and "region eu-west-1" in out.splitlines()[0]
    assert ("Note: the prices above are us-east-1's; this stack runs in eu-west-1: set gpu-slicing:pricePerHour to "
            "its prices for a true figure.") in out
    priced = text.replace("config:\n", "config:\n  gpu-slicing:pricePerHour: {p4d.24xlarge: 25.0}\n", 1)
    assert "Note: the prices" not in planned([], [], text=priced)[1]
