"""The plan's Kubernetes checks (tools/checks.py: dra.claims, k8s.schema, k8s.custom-resource-kind, k8s.crd-schema,
k8s.crd-cel), each called directly on a few hand-built plan records: what each finding must tell the user (its
severity, the resource, the fact, what to do) and what each info line counts. Expected schemas and scopes come
from Kubernetes' API reference and the pinned Karpenter CRDs; expected counts are counted by hand."""
from __future__ import annotations

import pytest

from test_checks import WIDGET_CRD, errors, reg
from tools import checks
from tools import dra_claims as sim
from tools.dra_claims import ClaimResult

GPU = "gpu.nvidia.com"  # the DRA driver's whole-GPU device class (gpu_slicing.dra)


# --- dra.claims: the simulator's answers as findings ------------------------------------------------------

# g6.xlarge: one L4 GPU; g6e.xlarge: one L40S (AWS): two DRA pools of other GPU models, and a device-plugin pool
DRA_STACK = {"maxGpuNodes": 10, "cluster": {"name": "t", "publicAccessCidrs": ["0.0.0.0/0"], "kubernetesVersion": "1.34"},
             "nodeGroups": [{"name": "g6", "instanceType": "g6.xlarge", "allocation": "dra"},
                            {"name": "g6e", "instanceType": "g6e.xlarge", "allocation": "dra"},
                            {"name": "g5", "instanceType": "g5.xlarge"}],
             "workloads": [{"name": "a", "gpus": 1, "pool": "g6"}, {"name": "b", "gpus": 1, "pool": "g6e"},
                           {"name": "plugin", "gpus": 1, "pool": "g5"}]}


def _template(name: str, claim: str, type_: str = "kubernetes:resource.k8s.io/v1:ResourceClaimTemplate") -> dict:
    return reg(type_, name, {"apiVersion": "resource.k8s.io/v1", "kind": type_.rsplit(":", 1)[1],
                             "metadata": {"name": claim, "namespace": "gpu-workloads"}})


@pytest.fixture
def simulated(monkeypatch):
    """The simulator's answer per workload name (its CEL is cel-python's, judged in tests/test_dra.py): each
    workload that holds a claim gets a clean result on its own pool unless the test says otherwise."""
    answers: dict[str, dict] = {}

    def simulate(workloads, pools):
        out = []
        for w in workloads:
            if w.claim is None:
                continue
            pool = pools[w.pool.name].name  # the check hands the stack's pools by name
            clean = {"matched": ("gpu-0",), "agrees": True, "foreign": (), "kinds": (GPU,), "counted": (GPU,)}
            out.append(ClaimResult(w.name, pool, w.claim, **(clean | answers.get(w.name, {}))))
        return out

    monkeypatch.setattr(sim, "simulate", simulate)
    return answers


def test_dra_claims_says_nothing_on_a_stack_without_dra_pools(simulated):
    plugin_only = DRA_STACK | {"nodeGroups": DRA_STACK["nodeGroups"][2:], "workloads": DRA_STACK["workloads"][2:]}
    assert list(checks.dra_claims(plugin_only, [])) == []


def test_dra_claims_counts_the_registered_claims_it_evaluated(simulated):
    """a's claim registered as a ResourceClaimTemplate, b's as a ResourceClaim (what claimSharing registers), each
    under a Pulumi name of its own: both are found by metadata.name."""
    found = list(checks.dra_claims(DRA_STACK, [
        _template("workloads-a", "a-slice"),
        _template("workloads-b", "b-slice", "kubernetes:resource.k8s.io/v1:ResourceClaim")]))
    assert [(f["id"], f["severity"]) for f in found] == [("dra.claims", "info")]
    assert found[0]["message"].startswith("2 DRA claims' CEL selectors evaluated (cel-python) against the "
                                          "ResourceSlices their pools' nodes will publish")


def test_a_claim_the_program_does_not_register_is_an_error(simulated):
    """Only a ResourceClaim(Template) of that name counts: a ConfigMap named a-slice is no claim."""
    other = reg("kubernetes:core/v1:ConfigMap", "a-slice", {"kind": "ConfigMap", "metadata": {"name": "a-slice"}})
    found = list(checks.dra_claims(DRA_STACK, [other, _template("workloads-b", "b-slice")]))
    [error] = errors(found)
    assert error["id"] == "dra.claims" and error["resource"] is None
    assert "workload a on DRA pool g6 has no claim template registered" in error["message"]
    assert found[-1]["message"].startswith("1 DRA claims")


def test_a_selector_that_matches_no_device_names_the_claim_and_the_pool(simulated):
    """Nothing else is said of a claim that matches nothing (its CEL then also disagrees with the model)."""
    simulated["a"] = {"matched": (), "agrees": False, "kinds": ()}
    found = list(checks.dra_claims(DRA_STACK, [_template("workloads-a", "a-slice"), _template("workloads-b", "b-slice")]))
    [error] = errors(found)
    assert (error["id"], error["resource"]) == ("dra.claims", "workloads-a")
    assert error["message"].startswith("workloads-a: its CEL matches no device")
    assert "a node of pool g6 publishes" in error["message"] and "its pods would stay Pending" in error["message"]
    assert found[-1]["message"].startswith("2 DRA claims")


def test_a_selector_the_model_disagrees_with_lists_what_the_cel_matched(simulated):
    simulated["a"] = {"matched": ("gpu-0", "gpu-1"), "agrees": False}
    [error] = errors(checks.dra_claims(DRA_STACK, [_template("workloads-a", "a-slice"),
                                                     _template("workloads-b", "b-slice")]))
    assert (error["id"], error["resource"]) == ("dra.claims", "workloads-a")
    assert error["message"].startswith("workloads-a: the CEL and gpu_slicing.dra.matches disagree")
    assert "on pool g6's devices (CEL: gpu-0, gpu-1)" in error["message"]


def test_a_claim_counted_against_other_kinds_than_its_cel_matches_names_both(simulated):
    simulated["a"] = {"kinds": ("mig.nvidia.com/1g.10gb", "mig.nvidia.com/2g.20gb"),
                      "counted": ("mig.nvidia.com/1g.10gb", "mig.nvidia.com/3g.40gb")}
    [error] = errors(checks.dra_claims(DRA_STACK, [_template("workloads-a", "a-slice"),
                                                     _template("workloads-b", "b-slice")]))
    assert (error["id"], error["resource"]) == ("dra.claims", "workloads-a")
    assert error["message"].startswith("workloads-a: the capacity plan counts its pods against mig.nvidia.com/1g.10gb, "
                                       "mig.nvidia.com/3g.40gb but")
    assert error["message"].endswith("its CEL matches devices of mig.nvidia.com/1g.10gb, mig.nvidia.com/2g.20gb on "
                                     "pool g6")


def test_a_selector_that_reaches_another_models_pool_is_an_error_per_pool(simulated):
    """Said whatever else is wrong with the claim: here it also matches nothing on its own pool."""
    simulated["a"] = {"matched": (), "agrees": False, "foreign": ("g6e", "p5")}
    found = errors(checks.dra_claims(DRA_STACK, [_template("workloads-a", "a-slice"),
                                                   _template("workloads-b", "b-slice")]))
    assert [(f["id"], f["resource"]) for f in found] == [("dra.claims", "workloads-a")] * 3
    assert "matches no device" in found[0]["message"]
    for f, pool in zip(found[1:], ("g6e", "p5")):
        assert f["message"].startswith(f"workloads-a: its CEL also matches devices of pool {pool} (another GPU model")
        assert "which its pods cannot reach" in f["message"] and "the selector does not pin the product" in f["message"]


# --- k8s.schema: built-in objects against the cluster version's OpenAPI schema ------------------------------

def _cluster(version) -> dict:
    return reg("eks:index:Cluster", "cluster", {"version": version})


def _config_map(name: str, **fields) -> dict:
    return reg("kubernetes:core/v1:ConfigMap", name, {"apiVersion": "v1", "kind": "ConfigMap",
                                                      "metadata": {"name": name}, **fields})


NODE_POOL = reg("kubernetes:karpenter.sh/v1:NodePool", "gpu", {"apiVersion": "karpenter.sh/v1", "kind": "NodePool",
                                                               "metadata": {"name": "gpu"}, "spec": {}})


def test_k8s_schema_names_the_object_the_field_and_the_schema_it_broke():
    """Kubernetes API reference, ConfigMap v1: `data` maps strings to strings; `immutable` is a boolean."""
    found = list(checks.k8s_schema({}, [_cluster("1.34"), _config_map("cm", data={"a": 5}, immutable="yes")]))
    data, immutable = errors(found, "k8s.schema")
    assert data["resource"] == immutable["resource"] == "cm"
    assert data["message"].startswith("ConfigMap cm: data.a: 5 is not of type 'string'")
    assert immutable["message"].startswith("ConfigMap cm: immutable: 'yes' is not of type 'boolean'")
    assert data["message"].endswith("(Kubernetes 1.34 OpenAPI schema, strict)")


def test_k8s_schema_counts_the_built_in_objects_it_validated():
    """Two ConfigMaps are built in; the NodePool is a custom resource, left to the CRD checks, and so is an
    object without apiVersion (no schema names it)."""
    from kubernetes_validate.version import __version__

    nameless = reg("kubernetes:core/v1:ConfigMap", "no-api", {"kind": "ConfigMap", "metadata": {"name": "no-api"}})
    found = list(checks.k8s_schema({}, [_cluster("1.34"), _config_map("a"), NODE_POOL, nameless, _config_map("b")]))
    assert [(f["id"], f["severity"]) for f in found] == [("k8s.schema", "info")]
    assert found[0]["message"] == (f"2 built-in objects validated against the Kubernetes 1.34 OpenAPI schema "
                                   f"(kubernetes-validate {__version__}, strict: unknown fields are errors)")


@pytest.mark.parametrize("resources", [[_cluster("1.34")], [_config_map("cm")]], ids=["no objects", "no version"])
def test_k8s_schema_says_when_it_has_nothing_to_validate(resources):
    """No cluster registered and a config that does not load: no version to take a schema for."""
    found = list(checks.k8s_schema({}, resources))
    assert [(f["id"], f["severity"], f["message"]) for f in found] == [
        ("k8s.schema", "info", "no built-in Kubernetes objects to validate")]


def test_k8s_schema_warns_once_that_it_took_an_older_schema_and_still_validates():
    found = list(checks.k8s_schema({}, [_cluster("1.99"), _config_map("cm", data={"a": 5})]))
    assert [(f["id"], f["severity"]) for f in found] == [("k8s.schema-version", "warning"), ("k8s.schema", "error"),
                                                         ("k8s.schema", "info")]
    assert "ships no schema for Kubernetes 1.99" in found[0]["message"]


def test_the_kubernetes_checks_take_the_configs_version_when_no_cluster_is_registered(monkeypatch, pinned_crds):
    """DRA_STACK's kubernetesVersion is 1.34: its schema tells the ConfigMap built in, the NodePool custom."""
    from tools import cel_rules

    monkeypatch.setattr(cel_rules, "evaluate_object", lambda obj, directory: cel_rules.Report())
    objects = [_config_map("cm"), NODE_POOL]
    assert "against the Kubernetes 1.34 OpenAPI schema" in list(checks.k8s_schema(DRA_STACK, objects))[-1]["message"]
    for check, counted in [(checks.k8s_custom_resource_kind, "1 custom resources checked"),
                           (checks.k8s_crd_schema, "1 custom resources validated"),
                           (checks.k8s_crd_cel, "0 CEL rules evaluated on 1 objects")]:
        assert list(check(DRA_STACK, objects))[-1]["message"].startswith(counted), check


def test_cluster_version_is_none_without_a_cluster_or_a_config_that_loads():
    assert checks.cluster_version({}, [reg("eks:index:Cluster", "c", {})]) is None


def test_cluster_version_is_the_first_known_one_registered():
    """A cluster without a version (or with one unknown at preview) is passed over for the next."""
    assert checks.cluster_version({}, [reg("eks:index:Cluster", "a", {}), _cluster(checks.COMPUTED),
                                       reg("aws:eks/cluster:Cluster", "b", {"version": "1.33"}),
                                       _cluster("1.34")]) == "1.33"


def test_the_builtin_schemas_are_those_of_the_clusters_minor():
    """kubernetes-validate ships one schema set per patch release: the one read for 1.33 is a 1.33.x set, and
    its definitions name 1.33's API (resource.k8s.io/v1 arrived in 1.34: Kubernetes 1.34 release notes, DRA GA)."""
    full, definitions = checks._k8s_definitions("1.33")
    assert full.startswith("1.33.")
    assert not any(name.startswith("io.k8s.api.resource.v1.") for name in definitions["$defs"])
    assert "io.k8s.api.resource.v1.ResourceClaimSpec" in checks._k8s_definitions("1.34")[1]["$defs"]


# --- k8s.custom-resource-kind: served kinds and their scope --------------------------------------------------

def _custom(type_: str, name: str, namespace: str | None = None, **inputs) -> dict:
    """A custom object as registered: `kubernetes:<apiVersion>:<kind>`."""
    _, api, kind = type_.split(":")
    meta = {"name": name} | ({"namespace": namespace} if namespace else {})
    return reg(type_, name, {"apiVersion": api, "kind": kind, "metadata": meta, **inputs})


RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"


def test_an_unserved_kind_lists_the_kinds_that_are_served():
    found = list(checks.k8s_custom_resource_kind({}, [_cluster("1.34"), _custom("kubernetes:karpenter.sh/v1beta1:NodePool", "np")]))
    [error] = errors(found)
    assert (error["id"], error["resource"]) == ("k8s.custom-resource-kind", "np")
    assert error["message"].startswith("NodePool np: karpenter.sh/v1beta1 NodePool is neither a built-in Kubernetes kind")
    assert "nor a custom resource the pinned Karpenter or Prometheus Operator serves" in error["message"]
    # every served kind, sorted by apiVersion: what the user may write instead
    assert error["message"].endswith("(karpenter.k8s.aws/v1 EC2NodeClass, karpenter.sh/v1 NodePool, karpenter.sh/v1alpha1 "
                                     "NodeOverlay, monitoring.coreos.com/v1 PrometheusRule, monitoring.coreos.com/v1 "
                                     "ServiceMonitor)")


def test_a_namespace_is_required_on_namespaced_kinds_and_refused_on_cluster_scoped_ones():
    """Scopes: the Prometheus Operator's CRDs are Namespaced, Karpenter's Cluster (their CRD files). An object
    written without metadata has no namespace."""
    objects = [_custom(RULE, "with-ns", "monitoring"), _custom(RULE, "no-ns"),
               reg(RULE, "no-meta", {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule"}),
               _custom("kubernetes:monitoring.coreos.com/v1:ServiceMonitor", "sm"),
               _custom("kubernetes:karpenter.sh/v1:NodePool", "np-ns", "kube-system"),
               _custom("kubernetes:karpenter.sh/v1:NodePool", "np"),
               reg("kubernetes:karpenter.sh/v1:NodePool", "np-no-meta", {"apiVersion": "karpenter.sh/v1", "kind": "NodePool"}),
               _custom("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass", "nc", "default"),
               _custom("kubernetes:karpenter.sh/v1alpha1:NodeOverlay", "ov", "default")]
    found = list(checks.k8s_custom_resource_kind({}, [_cluster("1.34"), *objects]))
    assert {f["id"] for f in found} == {"k8s.custom-resource-kind"}
    assert [(f["resource"], f["message"]) for f in errors(found)] == [
        ("no-ns", "PrometheusRule no-ns: no metadata.namespace on a namespaced kind"),
        ("no-meta", "PrometheusRule no-meta: no metadata.namespace on a namespaced kind"),
        ("sm", "ServiceMonitor sm: no metadata.namespace on a namespaced kind"),
        ("np-ns", "NodePool np-ns: metadata.namespace set on a cluster-scoped kind"),
        ("nc", "EC2NodeClass nc: metadata.namespace set on a cluster-scoped kind"),
        ("ov", "NodeOverlay ov: metadata.namespace set on a cluster-scoped kind")]


def test_the_kind_check_counts_custom_resources_only():
    """The ConfigMap is built in: k8s.schema's."""
    found = list(checks.k8s_custom_resource_kind({}, [_cluster("1.34"), _config_map("cm"), NODE_POOL,
                                                      _custom(RULE, "r", "monitoring")]))
    assert [(f["id"], f["severity"], f["message"]) for f in found] == [
        ("k8s.custom-resource-kind", "info", "2 custom resources checked for a served apiVersion/kind and scope")]


def test_without_a_cluster_version_no_object_is_judged_custom():
    """Which kinds are built in depends on the version's schema: none known, none judged."""
    found = list(checks.k8s_custom_resource_kind({}, [_custom("kubernetes:example.com/v1:Widget", "w")]))
    assert [(f["severity"], f["message"]) for f in found] == [
        ("info", "0 custom resources checked for a served apiVersion/kind and scope")]


# --- k8s.crd-schema: custom objects against their CRD's schema ----------------------------------------------

PINNED = "the pinned Karpenter's CRDs"  # how findings name the committed CRDs (tools/refdata.py crd_source)


@pytest.fixture
def pinned_crds(monkeypatch):
    monkeypatch.delenv(checks.CRD_DIR_ENV, raising=False)


def test_crd_schema_names_the_object_and_what_its_crd_requires(pinned_crds):
    """Karpenter v1 NodePool CRD: `spec.template` is required. The unserved version is an error of its own; the
    PrometheusRule is passed over (no Prometheus Operator CRD is pinned), and said so."""
    nameless = reg("kubernetes:karpenter.sh/v1:NodePool", "no-api", {"kind": "NodePool", "metadata": {"name": "no-api"}})
    found = list(checks.k8s_crd_schema({}, [_cluster("1.34"), _custom(RULE, "r", "monitoring"), NODE_POOL,
                                            _config_map("cm"), _custom("kubernetes:karpenter.sh/v1beta1:NodePool", "old"),
                                            nameless, _custom("kubernetes:karpenter.sh/v1:NodePool", "other", spec={})]))
    assert [(f["severity"], f["resource"]) for f in found] == [("info", "r"), ("error", "gpu"), ("error", "old"),
                                                               ("error", "no-api"), ("error", "other"), ("info", None)]
    assert all(f["id"] == "k8s.crd-schema" for f in found)
    rule, schema, unserved, nameless_error, _, counted = (f["message"] for f in found)
    assert schema == "NodePool gpu: spec: 'template' is a required property (CRD schema)"
    assert unserved.startswith(f"NodePool old: none of {PINNED}") and unserved.endswith("serves karpenter.sh/v1beta1")
    assert nameless_error.startswith(f"NodePool no-api: none of {PINNED}")
    assert rule.startswith("PrometheusRule r: not validated: no Prometheus Operator CRD among") and PINNED in rule
    assert counted.startswith(f"2 custom resources validated against {PINNED}")
    assert counted.endswith("(unknown fields are errors; CEL rules: k8s.crd-cel)")


def test_crd_schema_says_when_there_are_no_custom_resources(monkeypatch, tmp_path):
    """Even a CRD directory that is not one matters only once there is an object to validate."""
    monkeypatch.setenv(checks.CRD_DIR_ENV, str(tmp_path / "missing"))
    found = list(checks.k8s_crd_schema({}, [_cluster("1.34"), _config_map("cm")]))
    assert [(f["id"], f["severity"], f["message"]) for f in found] == [
        ("k8s.crd-schema", "info", "no custom resources to validate")]


def test_a_crd_directory_that_is_not_one_is_an_error_saying_what_to_do(monkeypatch, tmp_path):
    missing = tmp_path / "missing"
    monkeypatch.setenv(checks.CRD_DIR_ENV, str(missing))
    [f] = checks.k8s_crd_schema({}, [_cluster("1.34"), NODE_POOL])
    assert (f["id"], f["severity"]) == ("k8s.crd-schema", "error")
    assert f["message"].startswith(f"GPU_SLICING_CRD_DIR={missing} is not a directory")
    assert "point it at a directory of CRD files, or unset it to use the pinned Karpenter's" in f["message"]


# --- k8s.crd-cel: the CRDs' CEL rules on each custom object ----------------------------------------------------

@pytest.fixture
def cel_reports(monkeypatch, pinned_crds):
    """tools/cel_rules.py's report per object name (its evaluation is tests/test_cel_rules.py's); an object not
    listed is served by no CRD."""
    from tools import cel_rules

    reports: dict[str, cel_rules.Report] = {}
    monkeypatch.setattr(cel_rules, "evaluate_object",
                        lambda obj, directory: reports.get(obj["metadata"]["name"]))
    return reports


def _report(evaluated: int = 0, transition: int = 0, unknown: int = 0, violations=()):
    from tools import cel_rules

    rule = cel_rules.Rule("NodePool", "spec.weight", "self <= 100")
    return cel_rules.Report(list(violations), [("p", rule)] * evaluated, [("p", rule)] * transition,
                            [("p", rule)] * unknown)


def test_crd_cel_names_the_object_the_violation_and_the_rule(cel_reports):
    from tools import cel_rules

    rule = cel_rules.Rule("NodePool", "spec.template.spec.requirements[].key", 'self != "kubernetes.io/hostname"')
    cel_reports["gpu"] = _report(2, violations=[cel_rules.Violation("spec.template.spec.requirements[0].key",
                                                                     "label is restricted", rule)])
    found = list(checks.k8s_crd_cel({}, [_cluster("1.34"), NODE_POOL]))
    [error] = errors(found, "k8s.crd-cel")
    assert error["resource"] == "gpu"
    assert error["message"] == ("NodePool gpu: spec.template.spec.requirements[0].key: label is restricted (CEL rule "
                                '`self != "kubernetes.io/hostname"` of the CRD)')


def test_crd_cel_adds_up_what_it_evaluated_and_skipped_over_the_objects_it_judged(cel_reports):
    """2 + 3 rules evaluated on two objects, 1 transition rule and 0 + 4 unknown at preview; the PrometheusRule
    has no CRD here and is not counted."""
    cel_reports["a"], cel_reports["b"] = _report(2, 1), _report(3, 0, 4)
    objects = [_custom(RULE, "r", "ns")] + [_custom("kubernetes:karpenter.sh/v1:NodePool", n) for n in ("a", "b")]
    [info] = checks.k8s_crd_cel({}, [_cluster("1.34"), *objects])
    assert (info["id"], info["severity"]) == ("k8s.crd-cel", "info")
    assert info["message"].startswith("5 CEL rules evaluated on 2 objects, 1 transition rules skipped (not evaluated "
                                      "(transition rule): they compare with the stored object), 4 skipped because "
                                      "they read values unknown at preview; the CRDs' defaults applied first")
    assert info["message"].endswith(f"as the API server does (against {PINNED} (v1.14.1, tools/data/karpenter-crds.json))")


def test_crd_cel_mentions_unknown_values_only_when_a_rule_read_one(cel_reports):
    cel_reports["gpu"] = _report(1)
    [info] = checks.k8s_crd_cel({}, [_cluster("1.34"), NODE_POOL])
    assert info["message"].startswith("1 CEL rules evaluated on 1 objects, 0 transition rules skipped (not evaluated "
                                      "(transition rule): they compare with the stored object); the CRDs' defaults")


def test_crd_cel_says_when_there_are_no_custom_resources(cel_reports):
    assert list(checks.k8s_crd_cel({}, [_cluster("1.34"), _config_map("cm")])) == [
        checks.finding("k8s.crd-cel", "info", "no custom resources to evaluate CEL rules on")]


# --- how a schema error is told: where (a dotted path) and what, in path order ---------------------------------

def _validator(properties: dict):
    import jsonschema

    return jsonschema.Draft202012Validator({"type": "object", "properties": properties, "additionalProperties": False})


def test_schema_errors_come_in_path_order_each_saying_where():
    """jsonschema finds them in the schema's order (b, a[1], q, then the unknown field): a user reads them sorted,
    the object itself as <root>, a list item by its index."""
    v = _validator({"b": {"type": "integer"}, "a": {"type": "array", "items": {"type": "integer"}},
                    "q": {"anyOf": [{"type": "integer"}, {"type": "string"}]}})
    assert checks._errors(v, {"b": "x", "a": [1, "y"], "c": 1, "q": []}) == [
        "<root>: Additional properties are not allowed ('c' was unexpected)", "a.1: 'y' is not of type 'integer'",
        "b: 'x' is not of type 'integer'", "q: [] is not valid under any of the given schemas"]


def test_a_value_unknown_at_preview_is_no_error_even_inside_an_alternative():
    """`q` fails every alternative only at the value unknown at preview: the API server judges the real one."""
    v = _validator({"b": {"type": "integer"}, "q": {"anyOf": [
        {"type": "object", "properties": {"x": {"type": "integer"}}},
        {"type": "object", "properties": {"x": {"type": "boolean"}}}]}})
    assert checks._errors(v, {"b": checks.COMPUTED, "q": {"x": checks.COMPUTED}}) == []
    assert checks._errors(v, {"b": checks.COMPUTED, "q": {"x": "no"}}) == [
        "q: {'x': 'no'} is not valid under any of the given schemas"]


def test_crd_schema_reads_the_crd_files_the_environment_names(monkeypatch, tmp_path):
    """A CRD of $GPU_SLICING_CRD_DIR serves its kind (apiextensions.k8s.io/v1: group, names.kind, versions[].schema);
    the object's metadata is ObjectMeta, never its schema's to judge."""
    import yaml

    (tmp_path / "widgets.yaml").write_text(yaml.safe_dump(WIDGET_CRD))
    monkeypatch.setenv(checks.CRD_DIR_ENV, str(tmp_path))
    found = list(checks.k8s_crd_schema({}, [_cluster("1.34"), _custom("kubernetes:example.com/v1:Widget", "w", spec={"size": "big"})]))
    assert [(f["severity"], f["resource"], f["message"]) for f in found] == [
        ("error", "w", "Widget w: spec.size: 'big' is not of type 'integer' (CRD schema)"),
        ("info", None, f"1 custom resources validated against the CRD files in {tmp_path} (unknown fields are errors; "
                       "CEL rules: k8s.crd-cel)")]
