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


def test_schema_version_takes_the_newest_shipped_minor_not_newer(monkeypatch):
    from kubernetes_validate import utils as kv
    from kubernetes_validate.version import __version__

    monkeypatch.setattr(kv, "all_versions", lambda: ["1.25.0", "1.26.0", "1.28.0"])
    assert checks.schema_version("1.26") == ("1.26", None)
    chosen = {v: checks.schema_version(v)[0] for v in ("1.24", "1.26.3", "1.27", "1.30")}
    assert chosen == {"1.24": "1.25", "1.26.3": "1.26", "1.27": "1.26", "1.30": "1.28"}
    assert checks.schema_version("1.27")[1] == (
        f"kubernetes-validate {__version__} ships no schema for Kubernetes 1.27 (it has 1.25..1.28); built-in "
        "objects were validated against 1.26, which may miss fields added or removed since: upgrade "
        "kubernetes-validate")


def test_cluster_version_is_the_registered_one_else_the_configs():
    """Pulumi.dev.yaml: gpu-slicing:cluster.kubernetesVersion 1.35."""
    assert checks.cluster_version(dev_config(), [reg("aws:eks/cluster:Cluster", "c", {"version": "1.33"})]) == "1.33"
    assert checks.cluster_version(dev_config(), [reg("eks:index:Cluster", "c", {"version": "1.34"})]) == "1.34"
    assert checks.cluster_version(dev_config(), [reg("eks:index:Cluster", "c", {"version": checks.COMPUTED})]) == "1.35"
    assert checks.cluster_version(dev_config(), []) == "1.35"


def test_only_custom_kubernetes_objects_of_a_kind_are_validated():
    objects = [reg("kubernetes:apps/v1:Deployment", "d", {"apiVersion": "apps/v1", "kind": "Deployment"}),
               reg("kubernetes:helm.sh/v3:Release", "r", {"chart": "karpenter"}),
               reg("gpu-slicing:index:Workloads", "w", {"kind": "Workloads"}, custom=False),
               reg("aws:eks/cluster:Cluster", "c", {"kind": "Cluster"}),
               reg("kubernetes:core/v1:ConfigMap", "later", {"apiVersion": "v1", "kind": checks.COMPUTED}),
               reg("kubernetes:core/v1:ConfigMap", "none", {"apiVersion": "v1"})]
    assert [r["name"] for r in checks._k8s_objects(objects)] == ["d", "later"]


def test_a_custom_object_without_apiversion_is_no_kind_anyone_serves():
    found = errors(checks.k8s_custom_resource_kind(dev_config(), [
        reg("kubernetes:example.com/v1:Widget", "w", {"kind": "Widget", "metadata": {"name": "w"}})]))
    assert [(f["id"], f["resource"]) for f in found] == [("k8s.custom-resource-kind", "w")]
    assert "is neither a built-in Kubernetes kind nor a custom resource" in found[0]["message"]


def _node_pool(**spec) -> dict:
    """A NodePool its CRD accepts, with `spec` keys replaced."""
    base = {"template": {"spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "gpu"},
                                  "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In",
                                                    "values": ["on-demand"]}]}},
            "limits": {"nvidia.com/gpu": "32"}, "weight": 10}
    return {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "gpu"}, "spec": base | spec}


@pytest.mark.parametrize("obj, expected", [
    (_node_pool(), []),
    # where: the path joined by dots, <root> for the object itself (the CRD requires spec)
    ({k: v for k, v in _node_pool().items() if k != "spec"}, ["<root>: 'spec' is a required property"]),
    # a quantity is an integer or a string (anyOf): a list is neither
    (_node_pool(limits={"nvidia.com/gpu": [1]}), ["spec.limits.nvidia.com/gpu: [1] is not valid under any of the "
                                                   "given schemas"]),
    # a value unknown at preview is the API server's to check; what is known after it still is ours
    (_node_pool(limits={"nvidia.com/gpu": checks.COMPUTED}, weight=1000),
     ["spec.weight: 1000 is greater than the maximum of 100"]),
])
def test_crd_errors_say_where_and_what(obj, expected):
    assert checks.crd_errors(obj) == expected


# A cluster-scoped example.com/v1 Widget whose spec.size is an integer (apiextensions.k8s.io/v1 CRD layout).
WIDGET_CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
              "spec": {"group": "example.com", "names": {"kind": "Widget"}, "scope": "Cluster", "versions": [
                  {"name": "v1", "served": True, "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                      "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                      "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}}]}}


def test_crd_errors_read_the_crd_files_of_a_directory(tmp_path):
    """A CRD of another directory serves its kind; metadata is ObjectMeta, never the CRD schema's to judge."""
    import yaml

    (tmp_path / "widgets.yaml").write_text(yaml.safe_dump(WIDGET_CRD))
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": "big"}}
    assert checks.crd_errors(widget) is None
    assert checks.crd_errors(widget, tmp_path) == ["spec.size: 'big' is not of type 'integer'"]
    assert checks.crd_errors(widget | {"spec": {"size": 3}}, str(tmp_path)) == []


def test_strict_schema_reaches_into_lists_and_keeps_what_is_stated():
    s = checks.strict_schema({"type": "object", "properties": {
        "a": {"anyOf": [{"type": "object", "properties": {"x": {"type": "string"}}}]},
        "m": {"type": "object", "properties": {"k": {"type": "string"}}, "additionalProperties": {"type": "string"}},
        "t": {"type": "integer"}}})
    assert s["properties"]["a"]["anyOf"] == [{"type": "object", "properties": {"x": {"type": "string"}},
                                              "additionalProperties": False}]
    assert s["properties"]["m"]["additionalProperties"] == {"type": "string"}
    assert s["properties"]["t"] == {"type": "integer"}


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


def test_a_list_unknown_at_preview_is_not_checked_item_by_item():
    g = [reg("eks:index:ManagedNodeGroup", "ng", {"instanceTypes": checks.COMPUTED, "amiType": "AL2023_x86_64_NVIDIA"}),
         reg("eks:index:Cluster", "c", {"enabledClusterLogTypes": checks.COMPUTED})]
    found = list(checks.aws_enums({}, g))
    assert errors(found) == []
    assert [f["message"].split(" against")[0] for f in found if f["id"] in ("aws.instance-type", "aws.ami-type")] == [
        "0 values checked", "1 values checked"]


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


@pytest.fixture(scope="module")
def _cache_root(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def fresh_cache(_cache_root, monkeypatch):
    """parliament run here, not its findings read from the user's cache (kept by another version of this code)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(_cache_root))
    return _cache_root / "gpu-slicing"


TRUST_EC2 = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
_EC2 = "arn:aws:ec2:us-east-1:*:{}/*"
# RunInstances split over two statements as Karpenter's NodeLifecycle policy does: together they name every
# resource type the action touches (image, subnet, security group, network interface, instance, volume)
SPLIT_RUN = [{"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": [_EC2.format(k) for k in ("instance", "volume")]},
             {"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": [
                 "arn:aws:ec2:us-east-1::image/*", _EC2.format("subnet"), _EC2.format("security-group"),
                 _EC2.format("network-interface")]}]


def test_a_changed_acceptance_takes_effect_over_findings_kept_in_the_cache(fresh_cache, monkeypatch):
    """A verdict kept in the cache is keyed by what judged it (the list and the code verifying its entries), so a
    tightened rule (or a removed entry) is not hidden by a verdict kept from before."""
    assert {r is not None for _, r in checks.lint_policy(_policy(*SPLIT_RUN), "identity")} == {True}
    monkeypatch.setitem(checks._VERIFY, "statements_cover_formats", lambda f, doc: False)
    assert {f.issue for f, r in checks.lint_policy(_policy(*SPLIT_RUN), "identity") if r is None} == {"RESOURCE_MISMATCH"}
    assert [r is not None for _, r in checks.lint_policy(TRUST_EC2, "trust")] == [True]
    monkeypatch.setattr(checks, "ACCEPTED_IAM_FINDINGS", ())
    assert [(f.issue, r) for f, r in checks.lint_policy(TRUST_EC2, "trust")] == [("MALFORMED", None)]


def test_a_document_as_data_or_as_json_text_is_judged_alike(fresh_cache):
    as_text = [(f.issue, r is not None) for f, r in checks.lint_policy(_policy(*SPLIT_RUN), "identity")]
    as_data = [(f.issue, r is not None) for f, r in checks.lint_policy(
        {"Version": "2012-10-17", "Statement": SPLIT_RUN}, "identity")]
    assert as_text == as_data and as_text and all(ok for _, ok in as_text)


def test_parliament_findings_are_kept_once_per_document(fresh_cache):
    doc = _policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::kept-once/*"})
    before = set(fresh_cache.glob("parliament-*.json")) if fresh_cache.is_dir() else set()
    checks.lint_policy(doc, "identity")
    checks.lint_policy(json.loads(doc), "identity")
    assert len(set(fresh_cache.glob("parliament-*.json")) - before) == 1
    checks.lint_policy(doc, "resource")  # judged as another kind of document
    assert len(set(fresh_cache.glob("parliament-*.json")) - before) == 2


def test_parliament_errors_name_the_document_the_issue_and_what_it_is_about(fresh_cache):
    """parliament's community auditors run too (privilege escalation); a finding with no detail is named by
    the actions it is about. Trust policies' missing Resource is accepted and counted; a document with a
    value unknown at preview is not linted (parliament would judge the placeholder), a missing one is no
    document."""
    escalate = _policy({"Effect": "Allow", "Action": ["iam:PassRole", "ec2:RunInstances"], "Resource": "*"})
    unknown = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                       "Resource": [checks.COMPUTED]}]}
    g = [reg("aws:iam/role:Role", "node", {"assumeRolePolicy": json.dumps(TRUST_EC2),
                                           "inlinePolicies": [{"name": "run", "policy": escalate}]}),
         reg("aws:iam/policy:Policy", "later", {"policy": unknown}),
         reg("aws:iam/rolePolicy:RolePolicy", "none", {"policy": None})]
    found = list(checks.iam_parliament({}, g))
    assert sorted(f["message"].split(" (fix it")[0] for f in errors(found)) == [
        "node.inlinePolicies[].policy: parliament PRIVILEGE_ESCALATION: ['iam:passrole', 'ec2:runinstances']",
        "node.inlinePolicies[].policy: parliament RESOURCE_STAR: ['ec2:RunInstances', 'iam:PassRole']"]
    assert {f["resource"] for f in errors(found)} == {"node"}
    # PassRole is accepted (Karpenter passes the node role to EC2), MALFORMED in the trust policy too
    assert found[-1] == checks.finding("iam.parliament", "info", "2 policy documents linted by parliament, 2 findings "
                                       "accepted (reasons in tools/checks.py ACCEPTED_IAM_FINDINGS), 1 unknown at preview")


def _found(issue: str, detail=None, location=None) -> checks.StoredFinding:
    return checks.StoredFinding(issue, "" if detail is None else detail, location)


_PUBLIC_SSM = {"Statement": [{"Effect": "Allow", "Action": ["SSM:GetParameter"],
                              "Resource": "arn:aws:ssm:us-east-1::parameter/aws/service/eks/optimized-ami/1.35/x"}]}
_OWN_SSM = {"Statement": {"Effect": "Allow", "Action": "ssm:GetParameter",
                          "Resource": "arn:aws:ssm:us-east-1:123456789012:parameter/aws/service/x"}}
_SSM = [{"action": "ssm:GetParameter", "required_format": "arn:*:ssm:*:*:parameter/*"}]
_SUBNET = [{"action": "ec2:RunInstances", "required_format": "arn:*:ec2:*:*:subnet/*"}]
_RUN_ON_SUBNETS = {"Statement": {"Effect": "Allow", "Action": ["EC2:RunInstances"], "Resource": _EC2.format("subnet")}}


@pytest.mark.parametrize("finding, kind, doc, reason", [
    # a trust policy never names a Resource: accepted there only, and only for that exact complaint
    (_found("MALFORMED", "Statement contains neither Resource nor NotResource"), "trust", {}, "trust policy"),
    (_found("MALFORMED", "Statement contains neither Resource nor NotResource"), "identity", {}, None),
    (_found("MALFORMED", "Policy does not contain a Version element"), "trust", {}, None),
    # Karpenter's instance-profile work: only when every action named is one of those
    (_found("PERMISSIONS_MANAGEMENT_ACTIONS", location={"actions": ["iam:passrole"]}), "identity", {},
     "instance profile"),
    (_found("PERMISSIONS_MANAGEMENT_ACTIONS", location={"actions": ["iam:passrole", "iam:createuser"]}), "identity",
     {}, None),
    (_found("PERMISSIONS_MANAGEMENT_ACTIONS", location={}), "identity", {}, None),
    (_found("PERMISSIONS_MANAGEMENT_ACTIONS", location={"actions": ["iam:passrole"]}), "resource", {}, None),
    # RESOURCE_STAR lists actions as written: compared without case
    (_found("RESOURCE_STAR", ["arc-zonal-shift:GetManagedResource"]), "identity", {}, "ZonalShift"),
    (_found("RESOURCE_STAR", ["arc-zonal-shift:GetManagedResource", "s3:GetObject"]), "identity", {}, None),
    # ssm parameters: only AWS's public ones (no account in the ARN), and only if the document has them
    (_found("RESOURCE_MISMATCH", _SSM), "identity", _PUBLIC_SSM, "public parameters"),
    (_found("RESOURCE_MISMATCH", _SSM), "identity", _OWN_SSM, None),
    (_found("RESOURCE_MISMATCH", _SSM), "identity", {"Statement": []}, None),
    # RunInstances: only when an Allow statement of the action has a resource of each format parliament names
    (_found("RESOURCE_MISMATCH", _SUBNET), "identity", _RUN_ON_SUBNETS, "RunInstances/CreateFleet"),
    (_found("RESOURCE_MISMATCH", _SUBNET), "identity", {"Statement": {**_RUN_ON_SUBNETS["Statement"], "Effect": "Deny"}},
     None),
    (_found("RESOURCE_MISMATCH", _SUBNET), "identity",
     {"Statement": {**_RUN_ON_SUBNETS["Statement"], "Resource": _EC2.format("volume")}}, None),
    (_found("RESOURCE_MISMATCH", _SUBNET), "identity",
     {"Statement": {**_RUN_ON_SUBNETS["Statement"], "Action": "ec2:CreateFleet"}}, None),
    # a federated principal: an IAM OIDC provider's ARN, in any partition, with a 12-digit account
    (_found("UNKNOWN_FEDERATION_SOURCE", "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"),
     "trust", {}, "OIDC identity provider"),
    (_found("UNKNOWN_FEDERATION_SOURCE", "arn:aws-us-gov:iam::123456789012:oidc-provider/oidc.example.com"), "trust",
     {}, "OIDC identity provider"),
    (_found("UNKNOWN_FEDERATION_SOURCE", "arn:aws:iam::123456789012:saml-provider/corp"), "trust", {}, None),
    (_found("UNKNOWN_FEDERATION_SOURCE", "arn:aws:iam::12345678901:oidc-provider/oidc.example.com"), "trust", {}, None),
    (_found("UNKNOWN_FEDERATION_SOURCE", ["arn:aws:iam::123456789012:oidc-provider/x"]), "trust", {}, None),
])
def test_accepted_findings_match_issue_kind_actions_and_verification(finding, kind, doc, reason):
    got = checks.accepted_reason(finding, kind, doc)
    assert got is None if reason is None else reason in got


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


def test_every_accepted_entry_is_tried_in_turn(monkeypatch):
    """An entry of the same issue that does not match (its detail, or its verification) does not end the
    search: a later entry may still accept the finding."""
    monkeypatch.setattr(checks, "ACCEPTED_IAM_FINDINGS", (
        {"issue": "MALFORMED", "kinds": {"trust"}, "detail": "another complaint", "reason": "first"},
        {"issue": "MALFORMED", "kinds": {"trust"}, "verify": "iam_oidc_provider", "reason": "second"},
        {"issue": "MALFORMED", "kinds": {"trust"}, "reason": "third"}))
    assert checks.accepted_reason(_found("MALFORMED", "Statement contains neither Resource nor NotResource"),
                                  "trust", {}) == "third"


def test_the_cache_is_the_users_cache_directory(tmp_path, monkeypatch):
    """XDG Base Directory spec: $XDG_CACHE_HOME, else $HOME/.cache."""
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert checks._cache_dir() == tmp_path / ".cache" / "gpu-slicing"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert checks._cache_dir() == tmp_path / "xdg" / "gpu-slicing"


def test_kept_computes_once_and_writes_whole_files(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "not" / "yet"))
    calls = []

    def compute(value):
        return lambda: calls.append(value) or value

    assert checks.kept("a.json", compute({"x": [1, 2]})) == {"x": [1, 2]}
    assert checks.kept("a.json", compute("other")) == {"x": [1, 2]} and calls == [{"x": [1, 2]}]
    assert checks.kept("b.json", compute(["b"])) == ["b"]  # a second file in the directory made for the first
    where = tmp_path / "not" / "yet" / "gpu-slicing"
    assert sorted(f.name for f in where.iterdir()) == ["a.json", "b.json"]  # no temporary file left behind
    assert json.loads((where / "a.json").read_text()) == {"x": [1, 2]}
    (where / "a.json").write_text('{"x": [1, ')  # half a file (or another program's): computed again
    assert checks.kept("a.json", compute({"x": 3})) == {"x": 3} and json.loads((where / "a.json").read_text()) == {"x": 3}


def test_a_cache_that_cannot_be_written_is_no_cache(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))  # a file where the directory would go
    assert checks.kept("a.json", lambda: [1]) == [1] and checks.kept("a.json", lambda: [2]) == [2]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    value = {1, 2}  # not JSON: answered, not kept
    assert checks.kept("s.json", lambda: value) is value and not (tmp_path / "gpu-slicing" / "s.json").exists()


# --- policy.*: the pack's rules over the recorded graph ---------------------------------------------------

def test_policy_violations_are_plan_errors(graph):
    g = [r for r in graph if r["type"] != "kubernetes:karpenter.sh/v1alpha1:NodeOverlay"]
    g = edited(g, "aws:ec2/launchTemplate:LaunchTemplate", None, lambda p: p["metadataOptions"].update(httpTokens="optional"))
    found = errors(checks.policy_rules(dev_config(), g))
    assert sorted((f["id"], f["resource"]) for f in found) == [
        ("policy.imdsv2-required", "gpu-dev-system-lt"), ("policy.mig-nodepool-overlay", "gpu-dev-p4d-small-nodepool")]


def test_policy_rules_see_each_resource_where_it_sits_in_the_graph():
    """What CrossGuard hands the pack: the parent, the dependencies and the per-input dependencies."""
    r = reg("aws:iam/role:Role", "node", {"name": "n"}, parent="urn:p",
            dependencies=["urn:a", "urn:b"], propertyDependencies={"name": ["urn:a"]})
    bare = {k: v for k, v in reg("aws:iam/role:Role", "bare", {}).items()
            if k not in ("parent", "dependencies", "propertyDependencies")}
    [res, plain] = checks.policy_resources([r, bare])
    assert (res.urn, res.props, res.parent, res.dependencies, res.property_dependencies) == (
        r["urn"], {"name": "n"}, "urn:p", ("urn:a", "urn:b"), {"name": ("urn:a",)})
    assert (plain.parent, plain.dependencies, plain.property_dependencies) == (None, (), {})


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
    runs = [subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, check=True, capture_output=True,
                           text=True) for _ in range(2)]
    first, second = (json.loads(r.stdout) for r in runs)
    assert first["loaded"] is True and second["loaded"] is False
    assert runs[0].stderr == ""  # parliament's own pkg_resources warning is not the user's to read
    assert first["findings"] == second["findings"] and first["findings"]


# --- observability.exporter: the GPU Operator's metrics list ------------------------------------------------

CSV = "# the exporter's fields\nDCGM_FI_PROF_GR_ENGINE_ACTIVE, gauge, activity\nDCGM_FI_DEV_FB_USED, gauge, memory\n"


def _operator(chart: str, name="gpu-metrics") -> dict:
    return reg("kubernetes:helm.sh/v3:Release", "operator", {"chart": chart, "values": {
        "dcgmExporter": {"config": {"name": name}}}})


def _config_map(name: str, data: dict, type_="kubernetes:core/v1:ConfigMap") -> dict:
    return reg(type_, name, {"metadata": {"name": name}, "data": data})


@pytest.mark.parametrize("chart", ["gpu-operator", "nvidia/gpu-operator", "./charts/gpu-operator/"])
def test_the_exporter_list_is_the_configmap_the_operator_release_names(chart):
    g = [_config_map("other", {"dcgm-metrics.csv": "DCGM_FI_DEV_GPU_UTIL, gauge, util\n"}),
         _config_map("gpu-metrics", {"dcgm-metrics.csv": "X, gauge, x\n"}, "kubernetes:core/v1:Secret"),
         _operator(chart), _config_map("gpu-metrics", {"dcgm-metrics.csv": CSV})]
    assert checks._exporter_fields(g) == ("gpu-metrics", {"DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_DEV_FB_USED"})


def test_the_exporter_list_missing_or_empty():
    assert checks._exporter_fields([_operator("gpu-operator")]) == ("gpu-metrics", None)
    assert checks._exporter_fields([_operator("gpu-operator"), _config_map("gpu-metrics", {"other.csv": CSV})]) == (
        "gpu-metrics", set())
    assert checks._exporter_fields([_operator("gpu-operator", name=None)]) == (None, None)
    assert checks._exporter_fields([_operator("nvidia/dcgm-exporter"), _config_map("gpu-metrics", {})]) == (None, None)


def test_the_capacity_table_lists_the_stacks_pools():
    table = checks.capacity_table(dev_config())
    assert "p4d-balanced" in table and "p4d-small" in table  # Pulumi.dev.yaml's node groups
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
