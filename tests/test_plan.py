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

    def go(records: list[dict], found: list[dict], *args: str, error: BaseException | None = None, text=None,
           argv: list[str] | None = None):
        if text is not None:
            path.write_text(text)
        calls = []
        run = SimpleNamespace(project="gpu-slicing", registrations=[_Reg(record=r) for r in records],
                              outputs={"capacity": {"pools": []}, "clusterName": "gpu"}, error=error)
        monkeypatch.setattr(harness, "run_program", lambda config, **kw: calls.append(kw) or seen.append(config) or run)
        monkeypatch.setattr(checks, "run_checks",
                            lambda config, resources: seen.append((config, [r["name"] for r in resources])) or found)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = plan.main(argv if argv is not None else ["--config", str(path), *args])
        return rc, out.getvalue(), err.getvalue(), calls

    seen: list = []
    go.seen = seen

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


def test_the_program_and_the_checks_get_the_stack_files_config(planned, tmp_path):
    net, vpc, *_ = _network_and_cluster()
    rc, out, _, _ = planned([vpc, net], [], "--quiet", "--json", str(tmp_path / "r.json"))
    [config, (checked, names)] = planned.seen
    assert config["aws:region"] == "us-east-1" and config["gpu-slicing:maxGpuNodes"] == 7  # Pulumi.dev.yaml
    assert checked is config and names == ["net", "vpc"]
    text = (tmp_path / "r.json").read_text()
    assert text.startswith('{\n  "stack": "x",\n  "project": "gpu-slicing",\n  "resources": [') and text.endswith("}\n")
    assert json.loads(text)["outputs"] == {"capacity": {"pools": []}, "clusterName": "gpu"}
    seconds = float(out.splitlines()[-2].rsplit(", ", 1)[1].removesuffix("s"))
    assert 0 <= seconds < 60


def test_without_config_the_plan_reads_the_dev_stack(planned):
    rc, _, _, calls = planned([], [], argv=["--quiet"])
    assert (rc, calls) == (0, [{"stack": "dev", "preview": True}])
    assert planned.seen[0]["gpu-slicing:cluster"]["name"] == "gpu-dev"
    rc, _, _, calls = planned([], [], argv=["--quiet", "--stack", "dev", "--up"])
    assert calls == [{"stack": "dev", "preview": False}]


def test_the_plan_finds_the_project_from_anywhere(planned, monkeypatch):
    import sys

    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(ROOT)])
    assert planned([], [], "--quiet")[0] == 0
    assert sys.path[0] == str(ROOT)
    assert planned([], [], "--quiet")[0] == 0 and sys.path.count(str(ROOT)) == 1  # once is enough


def test_help_names_each_option(capsys):
    with pytest.raises(SystemExit) as exited:
        plan.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert exited.value.code == 0
    for text in ["The offline plan: run the real program under the Pulumi mock engine and show what it would create.",
                 "--stack STACK read Pulumi.<stack>.yaml (default dev)", "--config CONFIG plan this stack file instead",
                 "--json JSON also write the full record here",
                 "--up mock an update (outputs known) instead of a preview", "--quiet print only the summary lines"]:
        assert text in out


def test_a_stack_file_the_reader_refuses_is_named_with_why(planned):
    rc, out, err, _ = planned([], [], "--quiet", text="config:\n  aws:region: us-east-1\nbogus: 1\n")
    assert rc == 2 and "bogus" in err.splitlines()[1]


def test_the_full_output_of_a_preview(planned):
    net, vpc, a, b, cluster, provider, deploy = _network_and_cluster()
    job = _job("verify", {"nodeSelector": {"gpu-slicing/pool": "p4d-small"}, "containers": [
        {"command": ["nvidia-smi"], "resources": {"limits": {"nvidia.com/mig-1g.5gb": 1}}}]})
    rc, out, _, _ = planned([net, vpc, job], [])
    lines = out.splitlines()
    assert lines[0] == "Offline plan of stack 'x' (Pulumi.x.yaml), preview under mocks, region us-east-1"
    assert lines[2] == "GPU pools: the nodes that will exist, their slices, whether every workload fits, and the cost"
    assert "p4d-balanced" in out  # the capacity table of Pulumi.dev.yaml's pools
    assert ("Verification: Job verify runs `nvidia-smi` with 1 x nvidia.com/mig-1g.5gb on p4d-small; it completes "
            "(and frees its slice) before anything else wants that slice") in lines
    legend = lines.index("Resources. Legend: '#' component, '+' resource; 'needs' = dependency edges "
                         "(created after, deleted before)")
    assert lines[legend + 1:legend + 4] == ["", "# gpu-slicing:index:Network  net", "  + aws:ec2/vpc:Vpc  vpc"]


def test_a_stack_without_a_region_is_us_east_1_by_default(planned):
    text = (ROOT / "Pulumi.dev.yaml").read_text().replace("  aws:region: us-east-1\n", "")
    rc, out, _, _ = planned([], [], text=text)
    assert out.splitlines()[0].endswith("region us-east-1 (default)") and "Note: the prices" not in out


def test_empty_dashboards_and_rule_groups_hold_nothing():
    from gpu_slicing import observability as obs

    board = reg("kubernetes:core/v1:ConfigMap", "b", {"data": {obs.DASHBOARD_KEY: json.dumps({"title": "x"})}})
    rules = reg("kubernetes:monitoring.coreos.com/v1:PrometheusRule", "a", {"spec": {"groups": [{"name": "g"}]}})
    assert (plan.summary(board), plan.summary(rules)) == ("panels=[]", "alerts=[]")
    group = reg("eks:index:ManagedNodeGroup", "ng", {"instanceTypes": ["p4d.24xlarge", "p5.48xlarge"]})
    assert plan.summary(group) == 'instanceTypes=["p4d.24xlarge","p5.48xlarge"]'


def test_several_slices_or_claims_are_listed():
    job = _job("v", {"containers": [{"resources": {"limits": {"nvidia.com/mig-1g.5gb": 1, "nvidia.com/mig-2g.10gb": 2}}}]})
    dra = _job("d", {"resourceClaims": [{"resourceClaimTemplateName": "a"}, {"name": "x"}, {"resourceClaimTemplateName": "b"}],
                     "containers": [{}]})
    assert [n.split(" on ")[0] for n in plan.verification_notes([job, dra])] == [
        "Verification: Job v runs `` with 1 x nvidia.com/mig-1g.5gb, 2 x nvidia.com/mig-2g.10gb",
        "Verification: Job d runs `` with the device of claim template a, the device of claim template b"]


def test_the_tree_places_a_component_where_it_is_complete_and_roots_an_orphan():
    """A component is printed after everything it waits for: here after a provider created between it and its
    child; a resource whose parent is not in the record is printed at the top level."""
    net = component("net")
    provider = reg("pulumi:providers:aws", "p", {})
    vpc = reg("aws:ec2/vpc:Vpc", "vpc", {}, parent=urn(net), dependencies=[urn(provider)])
    orphan = reg("aws:kms/key:Key", "key", {"enableKeyRotation": True}, parent="urn:pulumi:dev::gpu-slicing::x::gone")
    tree = plan.render_tree(plan.creation_order([vpc, provider, net, orphan]))
    assert tree.splitlines() == ["+ aws:kms/key:Key  key", "    enableKeyRotation=true", "+ pulumi:providers:aws  p",
                                 "# gpu-slicing:index:Network  net", "  + aws:ec2/vpc:Vpc  vpc", "      needs: p"]


def test_edges_name_every_component_wholly_waited_for_and_count_remote_components_as_resources():
    """A remote component (a multi-language one, e.g. pulumi-eks's Cluster) stands as one resource: it is a
    child a component is made of, not a component whose children a dependency could stand for."""
    net, store = component("net"), component("store")
    vpc = reg("aws:ec2/vpc:Vpc", "vpc", {}, parent=urn(net))
    bucket = reg("aws:s3/bucket:Bucket", "bucket", {}, parent=urn(store))
    cluster = reg("eks:index:Cluster", "cluster", {}, parent=urn(net), custom=False, remote=True)
    sg = reg("aws:ec2/securityGroup:SecurityGroup", "sg", {}, parent=urn(cluster))
    user = reg("aws:iam/role:Role", "user", {}, dependencies=[urn(vpc), urn(bucket), urn(cluster), urn(sg)])
    only_sg = reg("aws:iam/role:Role", "only-sg", {}, dependencies=[urn(sg)])
    tree = plan.render_tree(plan.creation_order([net, store, vpc, bucket, cluster, sg, user, only_sg]))
    needs = [line.strip() for line in tree.splitlines() if line.strip().startswith("needs:")]
    assert "needs: net/*, store/*" in needs and "needs: sg" in needs
