"""The offline plan's checks: each one against a deliberately bad input, the dev stack clean, and the
reviewed lists (Helm value paths, accepted parliament findings, served Karpenter kinds) held against the
upstream reference files."""
from __future__ import annotations

import copy
import json
import re

import pytest

from gpu_slicing.helm import has_path

from conftest import dev_config
from tools import checks, refdata

CHECK_IDS = {"k8s.schema", "k8s.custom-resource-kind", "k8s.crd-schema", "helm.values", "aws.instance-type",
             "aws.ami-type", "aws.capacity-type", "aws.enum", "aws.kubernetes-version", "aws.event-source",
             "iam.parliament", "policy", "security.endpoint-open", "k8s.crd-cel", "catalog.mig-unconfirmed"}


def reg(type_: str, name: str, inputs: dict, **kw) -> dict:
    return {"urn": f"urn:pulumi:dev::gpu-slicing::{type_}::{name}", "type": type_, "name": name, "parent": None,
            "custom": True, "remote": False, "provider": None, "dependencies": [], "propertyDependencies": {},
            "inputs": inputs, "options": {}, **kw}


@pytest.fixture(scope="module")
def graph(dev_runs) -> list[dict]:
    return [r.to_json() for r in dev_runs["preview"].registrations]


@pytest.fixture(scope="module")
def dev_findings(graph) -> list[dict]:
    return checks.run_checks(dev_config(), graph)


def errors(findings, id_=None) -> list[dict]:
    return [f for f in findings if f["severity"] == "error" and (id_ is None or f["id"] == id_)]


def one(graph: list[dict], type_: str, name: str | None = None) -> dict:
    return next(r for r in graph if r["type"] == type_ and (name is None or r["name"] == name))


def edited(graph: list[dict], type_: str, name: str | None, fn) -> list[dict]:
    """A copy of the graph with one registration's inputs changed by `fn`."""
    out = copy.deepcopy(graph)
    fn(one(out, type_, name)["inputs"])
    return out


# --- the dev stack -----------------------------------------------------------------------------------

def test_dev_stack_passes_every_check(dev_findings):
    assert errors(dev_findings) == []
    assert {f["severity"] for f in dev_findings} <= {"error", "warning", "info"}


def test_an_endpoint_open_to_all_is_said_and_named_cidrs_are_not(graph):
    found = [f for f in checks.run_checks(dev_config(), graph) if f["id"] == "security.endpoint-open"]
    assert [f["severity"] for f in found] == ["warning"] and "any address" in found[0]["message"]
    narrowed = edited(graph, "eks:index:Cluster", None, lambda i: i.update(publicAccessCidrs=["100.64.0.0/16"]))
    found = [f for f in checks.api_endpoint_exposure(dev_config(), narrowed)]
    assert [f["severity"] for f in found] == ["info"]


def test_private_ranges_on_the_public_endpoint_are_said_to_admit_no_one(graph):
    """RFC 1918 sources never reach a public endpoint (NAT gives them a public address)."""
    private = edited(graph, "eks:index:Cluster", None,
                     lambda i: i.update(publicAccessCidrs=["10.20.0.0/16", "198.18.0.0/15", "192.168.1.0/24"]))
    found = [(f["id"], f["severity"]) for f in checks.api_endpoint_exposure(dev_config(), private)]
    assert found == [("security.endpoint-private-cidrs", "warning"), ("security.endpoint-open", "info")]
    [warning] = [f for f in checks.api_endpoint_exposure(dev_config(), private) if f["severity"] == "warning"]
    assert "['10.20.0.0/16', '192.168.1.0/24'] are private addresses (RFC 1918)" in warning["message"]


def test_one_marker_for_values_unknown_at_preview():
    from policy.rules import UNKNOWN
    from tools.harness import COMPUTED

    assert checks.COMPUTED == COMPUTED == UNKNOWN


def test_every_check_reports_what_it_checked(dev_findings):
    """Each check is a named entry of the plan's JSON `checks`, even when clean."""
    assert CHECK_IDS <= {f["id"] for f in dev_findings}
    assert all(re.fullmatch(r"[a-z0-9]+(\.[a-z0-9-]+)?", f["id"]) for f in dev_findings)


@pytest.mark.slow
def test_the_plan_prints_and_records_each_finding(graph, tmp_path, capsys):
    from tools import plan

    assert plan.main(["--quiet", "--json", str(tmp_path / "plan.json")]) == 0
    out = capsys.readouterr().out
    record = json.loads((tmp_path / "plan.json").read_text())
    assert {c["id"] for c in record["checks"]} >= CHECK_IDS
    assert "INFO     k8s.schema:" in out and "0 check errors" in out


# --- k8s.schema: kubernetes-validate ------------------------------------------------------------------

def test_k8s_schema_rejects_unknown_fields_and_wrong_types(graph):
    def bad(p):
        p["spec"]["replica"] = 3  # typo of replicas: the API server would reject (strict) or drop it
        p["spec"]["template"]["spec"]["containers"][0]["resources"]["limit"] = {}
        p["spec"]["template"]["spec"]["restartPolicy"] = 7

    found = errors(checks.k8s_schema(dev_config(), edited(graph, "kubernetes:apps/v1:Deployment",
                                                           "gpu-dev-workloads-slice-1g", bad)), "k8s.schema")
    text = "\n".join(f["message"] for f in found)
    assert len(found) == 3
    assert "'replica' was unexpected" in text and "'limit' was unexpected" in text and "7 is not of type" in text


def test_k8s_schema_ignores_values_unknown_at_preview(graph):
    g = edited(graph, "kubernetes:apps/v1:Deployment", "gpu-dev-workloads-slice-1g",
               lambda p: p["spec"].update(replicas=checks.COMPUTED))
    assert errors(checks.k8s_schema(dev_config(), g)) == []


def test_schema_version_maps_an_unshipped_version_and_says_so():
    assert checks.schema_version("1.34") == ("1.34", None)
    chosen, note = checks.schema_version("1.99")
    from kubernetes_validate import utils as kv

    assert chosen == kv.major_minor(kv.latest_version()) and "ships no schema for Kubernetes 1.99" in note
    oldest, note = checks.schema_version("1.2")
    assert oldest == kv.major_minor(kv.all_versions()[0]) and "ships no schema for Kubernetes 1.2" in note


def test_k8s_schema_warns_when_the_cluster_version_has_no_schema(graph):
    g = edited(graph, "eks:index:Cluster", None, lambda p: p.update(version="1.99"))
    found = checks.k8s_schema(dev_config(), g)
    assert [f["severity"] for f in found if f["id"] == "k8s.schema-version"] == ["warning"]


# --- custom resources ---------------------------------------------------------------------------------

def test_custom_resource_kind_rejects_unserved_versions_and_namespaces(graph):
    g = edited(graph, "kubernetes:karpenter.sh/v1:NodePool", None, lambda p: p.update(apiVersion="karpenter.sh/v1beta1"))
    g = edited(g, "kubernetes:karpenter.sh/v1alpha1:NodeOverlay", None,
               lambda p: p["metadata"].update(namespace="kube-system"))
    found = errors(checks.k8s_custom_resource_kind(dev_config(), g))
    text = sorted(f["message"] for f in found)
    assert len(text) == 2
    assert "karpenter.sh/v1beta1 NodePool is neither" in text[1] and "cluster-scoped" in text[0]


def test_served_kinds_are_the_crds_of_the_pinned_karpenter():
    crds = {(f"{c['group']}/{v['name']}", c["kind"]): c["scope"]
            for c in refdata.load("karpenter-crds") for v in c["versions"] if v["served"]}
    served = {k: v for k, v in checks.served_custom_kinds().items() if k[0].startswith("karpenter")}
    # every Karpenter kind the program registers is served by the pinned CRDs, with their scope
    registered = {"NodePool", "EC2NodeClass", "NodeOverlay"}
    assert served == {k: v for k, v in crds.items() if k[1] in registered}


def test_served_prometheus_operator_kinds_are_namespaced_monitoring_v1():
    """The Prometheus Operator's ServiceMonitor and PrometheusRule CRDs: monitoring.coreos.com, v1, Namespaced."""
    served = {k: v for k, v in checks.served_custom_kinds().items() if not k[0].startswith("karpenter")}
    assert served == {("monitoring.coreos.com/v1", "ServiceMonitor"): "Namespaced",
                      ("monitoring.coreos.com/v1", "PrometheusRule"): "Namespaced"}


def test_crd_schema_validates_the_dev_objects(graph, monkeypatch):
    monkeypatch.delenv(checks.CRD_DIR_ENV, raising=False)
    found = list(checks.k8s_crd_schema(dev_config(), graph))
    assert errors(found) == [] and "3 custom resources validated" in found[-1]["message"]


def test_crd_schema_rejects_what_the_crd_would_reject_or_prune(graph, monkeypatch):
    monkeypatch.delenv(checks.CRD_DIR_ENV, raising=False)

    def bad(p):
        p["spec"]["disruption"]["consolidationPolicy"] = "WhenIdle"  # the v1alpha5 name: not in the v1 enum
        p["spec"]["template"]["spec"]["requirement"] = []  # typo: the API server would prune it silently
        p["spec"]["limits"]["nvidia.com/gpu"] = "32 GPUs"

    found = errors(checks.k8s_crd_schema(dev_config(), edited(graph, "kubernetes:karpenter.sh/v1:NodePool", None, bad)))
    text = "\n".join(f["message"] for f in found)
    assert "'WhenIdle' is not one of" in text and "'requirement' was unexpected" in text and "32 GPUs" in text


def test_crd_schema_refuses_a_crd_dir_that_is_not_a_directory(graph, monkeypatch, tmp_path):
    monkeypatch.setenv(checks.CRD_DIR_ENV, str(tmp_path / "missing"))
    [f] = checks.k8s_crd_schema(dev_config(), graph)
    assert f["severity"] == "error" and f["message"].startswith(f"{checks.CRD_DIR_ENV}={tmp_path / 'missing'} is not")
    assert list(checks.k8s_crd_cel(dev_config(), graph)) == []


def test_strict_schema_marks_pruned_fields_and_nullable():
    s = checks.strict_schema({"type": "object", "properties": {"a": {"type": "string", "nullable": True},
                                                              "b": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                                                                    "properties": {}}}})
    assert s["additionalProperties"] is False and s["properties"]["a"]["type"] == ["string", "null"]
    assert "additionalProperties" not in s["properties"]["b"]


# --- helm.values: reviewed allow-lists, held against the charts -----------------------------------------

def test_gpu_operator_value_paths_exist_in_the_chart():
    from gpu_slicing.gpu_operator import COMMENTED_VALUE_PATHS, VALUE_PATHS

    values = refdata.load("gpu-operator-values")["values"]
    assert [p for p in sorted(VALUE_PATHS - COMMENTED_VALUE_PATHS) if not has_path(values, p)] == []


def test_gpu_operator_commented_value_paths_are_in_the_charts_commented_example():
    """`dcgmExporter.config.name` is only in a commented example under `dcgmExporter:` (the template reads it)."""
    from gpu_slicing.gpu_operator import COMMENTED_VALUE_PATHS, VALUE_PATHS

    chart = refdata.load("gpu-operator-values")
    values = chart["values"]
    assert COMMENTED_VALUE_PATHS <= VALUE_PATHS
    for path in COMMENTED_VALUE_PATHS:
        top, *rest = path.split(".")
        assert top in values and not has_path(values, path)
        assert set(rest) <= set(chart["commented_keys"][top]), path


def test_karpenter_value_paths_exist_in_the_chart():
    karpenter = pytest.importorskip("gpu_slicing.karpenter")
    values = refdata.load("karpenter-chart-values")["values"]
    # affinity is {} in the chart (a free-form Kubernetes Affinity): only its top-level key is the chart's.
    missing = [p for p in sorted(karpenter.VALUE_PATHS) if not has_path(values, p)
               and not (p.startswith("affinity.") and values.get("affinity") == {})]
    assert missing == []


def test_gpu_operator_chart_default_strategy_is_what_the_rules_assume():
    from policy.rules import CHART_DEFAULT_MIG_STRATEGY

    values = refdata.load("gpu-operator-values")["values"]
    assert values["mig"]["strategy"] == CHART_DEFAULT_MIG_STRATEGY


def test_helm_values_flags_the_guides_keys(graph):
    g = edited(graph, "kubernetes:helm.sh/v3:Release", "gpu-dev-gpu-operator", lambda p: (
        p["values"]["migManager"].update({"WITH_REBOOT": True, "default": "all-balanced"}),
        p["values"].update(operator={"defaultRuntime": "containerd"})))
    found = errors(checks.helm_values(dev_config(), g))
    assert sorted(re.search(r"value '([^']+)'", f["message"]).group(1) for f in found) == [
        "migManager.WITH_REBOOT", "migManager.default", "operator.defaultRuntime"]


def test_helm_values_needs_a_reviewed_allow_list_per_chart(graph):
    g = edited(graph, "kubernetes:helm.sh/v3:Release", "gpu-dev-gpu-operator", lambda p: p.update(chart="dcgm-exporter"))
    [f] = errors(checks.helm_values(dev_config(), g))
    assert "no reviewed allow-list" in f["message"]


# --- aws.*: botocore ------------------------------------------------------------------------------------

def test_catalog_instance_types_are_ec2_instance_types():
    from gpu_slicing.catalog import INSTANCE_TYPES

    assert set(INSTANCE_TYPES) <= checks.botocore_enum("ec2", "InstanceType")


def test_aws_enums_reject_what_the_api_would(graph):
    def bad(p):
        p.update(instanceTypes=["p4d.24xl"], amiType="AL2023_x86_64_GPU", capacityType="ONDEMAND")
        p["taints"][0]["effect"] = "NoSchedule"  # Kubernetes spelling; EKS wants NO_SCHEDULE

    g = edited(graph, "eks:index:ManagedNodeGroup", "gpu-dev-p4d-balanced", bad)
    g = edited(g, "kubernetes:karpenter.sh/v1:NodePool", None,
               lambda p: p["spec"]["template"]["spec"]["requirements"][0].update(values=["p4dn.24xlarge"]))
    found = errors(checks.aws_enums(dev_config(), g))
    assert sorted(f["id"] for f in found) == ["aws.ami-type", "aws.capacity-type", "aws.enum", "aws.instance-type",
                                              "aws.instance-type"]
    assert any("did you mean" in f["message"] and "p4d.24xlarge" in f["message"] for f in found)


def test_event_sources_must_be_aws_services(graph):
    g = edited(graph, "aws:cloudwatch/eventRule:EventRule", None,
               lambda p: p.update(eventPattern=json.dumps({"source": ["aws.ec3"], "detail-type": ["x"]})))
    g.append(reg("aws:cloudwatch/eventRule:EventRule", "broken", {"eventPattern": "{source: aws.ec2"}))
    g.append(reg("aws:cloudwatch/eventRule:EventRule", "custom", {"eventPattern": '{"source": ["my.app"]}'}))
    found = errors(checks.aws_event_sources(dev_config(), g))
    assert len(found) == 2 and "'aws.ec3'" in found[0]["message"] and "not JSON" in found[1]["message"]


# --- iam.parliament -----------------------------------------------------------------------------------

def _policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_parliament_flags_a_bad_policy(graph):
    g = graph + [reg("aws:iam/policy:Policy", "typo", {"policy": _policy(
        {"Effect": "Allow", "Action": "s3:GetObjects", "Resource": "arn:aws:s3:::bucket/*"})})]
    [f] = errors(checks.iam_parliament(dev_config(), g))
    assert "UNKNOWN_ACTION" in f["message"] and f["resource"] == "typo"


def test_missing_resource_is_accepted_in_trust_policies_only():
    trust = _policy({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"})
    [(f, reason)] = checks.lint_policy(trust, "trust")
    assert f.issue == "MALFORMED" and "trust policy" in reason
    identity = _policy({"Effect": "Allow", "Action": "sts:AssumeRole"})
    assert [r for _, r in checks.lint_policy(identity, "identity")] == [None]


def test_split_run_instances_is_accepted_only_when_the_statements_cover_it():
    arn = "arn:aws:ec2:us-east-1:*:{}/*"
    split = [{"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": [arn.format(k) for k in ("instance", "volume")]},
             {"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": [
                 "arn:aws:ec2:us-east-1::image/*", arn.format("subnet"), arn.format("security-group"),
                 arn.format("network-interface")]}]
    assert {r is not None for _, r in checks.lint_policy(_policy(*split), "identity")} == {True}
    assert None in [r for _, r in checks.lint_policy(_policy(split[0]), "identity")]


def _reference_documents() -> dict[str, tuple[str, dict]]:
    """The IAM/SQS documents of upstream's getting-started CloudFormation, parameters filled in."""
    def untagged(v):  # {"!Sub": "text"} -> "text"
        if isinstance(v, dict) and len(v) == 1 and next(iter(v)).startswith("!"):
            return untagged(next(iter(v.values())))
        if isinstance(v, dict):
            return {k: untagged(x) for k, x in v.items()}
        return [untagged(x) for x in v] if isinstance(v, list) else v

    doc = untagged(refdata.load("karpenter-cloudformation"))
    values = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
              "AWS::URLSuffix": "amazonaws.com", "ClusterName": "gpu-dev",
              "KarpenterNodeRole.Arn": "arn:aws:iam::123456789012:role/KarpenterNodeRole-gpu-dev",
              "KarpenterInterruptionQueue.Arn": "arn:aws:sqs:us-east-1:123456789012:gpu-dev"}

    def fill(s: str) -> str:
        return re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], s)

    out = {}
    for name, r in doc["Resources"].items():
        p = r["Properties"]
        body = p.get("PolicyDocument") or p.get("AssumeRolePolicyDocument")
        if body is None:
            continue
        text = fill(body) if isinstance(body, str) else fill(json.dumps(body)).replace(
            '"KarpenterInterruptionQueue.Arn"', f'"{values["KarpenterInterruptionQueue.Arn"]}"')
        kind = "trust" if "AssumeRolePolicyDocument" in p else "resource" if r["Type"] == "AWS::SQS::QueuePolicy" \
            else "identity"
        out[name] = (kind, json.loads(text))
    return out


def test_upstream_policies_have_no_unexplained_finding_but_one():
    """Upstream's documents, linted as the program's are: every finding has a reviewed reason, except
    that upstream's queue policy has no Version (the program's has 2012-10-17)."""
    unexplained = {(name, f.issue) for name, (kind, doc) in _reference_documents().items()
                   for f, reason in checks.lint_policy(doc, kind) if reason is None}
    assert unexplained == {("KarpenterInterruptionQueuePolicy", "NO_VERSION")}


def _documented_trust_policy() -> dict:
    """The OIDC trust policy docs/checks-and-ci.md tells a team to create for the CI roles."""
    from conftest import ROOT

    [block] = re.findall(r"```json\n(.*?)```", (ROOT / "docs" / "checks-and-ci.md").read_text(), re.S)
    return json.loads(block.replace("<account>", "123456789012").replace("<org>/<repo>", "acme/gpu-slicing"))


def test_the_documented_ci_trust_policy_has_no_unexplained_finding():
    doc = _documented_trust_policy()
    assert doc["Statement"][0]["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert [f.issue for f, reason in checks.lint_policy(doc, "trust") if reason is None] == []
    saml_like = json.loads(json.dumps(doc).replace("oidc-provider/", "role/"))
    assert "UNKNOWN_FEDERATION_SOURCE" in [f.issue for f, r in checks.lint_policy(saml_like, "trust") if r is None]


def test_every_accepted_finding_is_still_needed():
    used = set()
    for kind, doc in [*_reference_documents().values(), ("trust", _documented_trust_policy())]:
        for _finding, reason in checks.lint_policy(doc, kind):
            used.add(reason)
    assert [a["issue"] for a in checks.ACCEPTED_IAM_FINDINGS if a["reason"] not in used] == []


# --- policy.*: the pack's rules over the recorded graph ---------------------------------------------------

def test_policy_violations_are_plan_errors(graph):
    g = [r for r in graph if r["type"] != "kubernetes:karpenter.sh/v1alpha1:NodeOverlay"]
    g = edited(g, "aws:ec2/launchTemplate:LaunchTemplate", None, lambda p: p["metadataOptions"].update(httpTokens="optional"))
    found = errors(checks.policy_rules(dev_config(), g))
    assert sorted((f["id"], f["resource"]) for f in found) == [
        ("policy.imdsv2-required", "gpu-dev-system-lt"), ("policy.mig-nodepool-overlay", "gpu-dev-p4d-small-nodepool")]


@pytest.mark.slow
def test_parliament_is_loaded_only_for_a_document_it_has_not_seen(tmp_path):
    """Its import costs about half a second of every plan: findings are kept per document and version."""
    import subprocess
    import sys

    from conftest import ROOT

    doc = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*",
                                                              "Resource": "*"}]})
    probe = ("import json, sys; from tools import checks; "
             f"out = [(f.issue, r) for f, r in checks.lint_policy({doc!r}, 'identity')]; "
             "print(json.dumps({'findings': out, 'loaded': 'parliament' in sys.modules}))")
    env = {"XDG_CACHE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    first, second = (json.loads(subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, check=True,
                                               capture_output=True, text=True).stdout) for _ in range(2))
    assert first["loaded"] is True and second["loaded"] is False
    assert first["findings"] == second["findings"] and first["findings"]


def test_value_paths_are_the_leaves_of_a_values_tree():
    """What the allow-lists are written in: a.b.c for every leaf; a list, an empty map or a free-form map
    (opaque) is one leaf, not walked into."""
    from gpu_slicing.helm import flatten

    values = {"driver": {"enabled": False}, "migManager": {"env": [{"name": "WITH_REBOOT"}], "config": {}},
              "nodeSelector": {"a": "b", "c": {"d": 1}}, "top": 1}
    assert flatten(values) == ["driver.enabled", "migManager.env", "migManager.config", "nodeSelector.a",
                               "nodeSelector.c.d", "top"]
    assert flatten(values, opaque={"nodeSelector"}) == ["driver.enabled", "migManager.env", "migManager.config",
                                                         "nodeSelector", "top"]
    assert flatten({"c": {"d": 1}}, "x.", {"x.c"}) == ["x.c"]
    assert has_path(values, "nodeSelector.c.d") and has_path(values, "migManager.config")
    assert not has_path(values, "driver.enabled.x") and not has_path(values, "driver.version")
    assert not has_path(values, "migManager.env.name")  # a list is a leaf
