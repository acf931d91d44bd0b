"""Checks over the recorded graph: each returns findings `{"id", "severity", "message", "resource"}`.

What a cloud or cluster would reject, caught at preview. Each check is backed by a maintained library or
by the upstream reference, not by a hand-written imitation of it:

| id | guards against | backed by |
| --- | --- | --- |
| catalog.mig-unconfirmed | MIG on an instance type AWS has not confirmed it on (g7e) | gpu_slicing.catalog (docs/facts.md §7) |
| k8s.schema | a built-in Kubernetes object the API server rejects (or whose typo'd field it drops) | kubernetes-validate's strict OpenAPI schemas for the cluster's version |
| k8s.custom-resource-kind | a custom resource of a kind/version the pinned Karpenter does not serve, or namespaced when its CRD is cluster-scoped | gpu_slicing.karpenter's API versions, held against the real CRDs in tests |
| k8s.crd-schema | a Karpenter object its CRD's openAPIV3Schema rejects (or prunes) | the pinned Karpenter's CRDs, as data generated from them (tools/refdata.py), or the CRD files in $GPU_SLICING_CRD_DIR |
| k8s.crd-cel | a Karpenter object one of its CRD's CEL rules (x-kubernetes-validations) rejects on create | tools/cel_rules.py (cel-python) over the same CRDs |
| helm.values | a Helm value the chart does not have (no values schema: Helm ignores typos silently) | the reviewed VALUE_PATHS of gpu_slicing.gpu_operator / .karpenter, held against the charts' values.yaml in tests |
| aws.instance-type, aws.ami-type, aws.capacity-type, aws.enum | an EC2/EKS input outside the API's enum | botocore's service models (ec2, eks) |
| aws.kubernetes-version | (botocore has no enum of EKS versions: says so, and which checks cover it) | - |
| aws.event-source | an EventBridge pattern on a source no AWS service emits | botocore's list of services |
| iam.parliament | IAM/SQS policy documents with malformed or risky statements | parliament (with community auditors); accepted findings in ACCEPTED_IAM_FINDINGS, each with its reason |
| observability.exporter, observability.alert-tests | a MIG pool whose dcgm-exporter metrics list lacks the per-MIG-instance fields; (warning) an H100/H200 MIG pool, whose per-slice framebuffer series dcgm-exporter does not give (NVIDIA/dcgm-exporter#512, #380); an alert no promtool unit test expects to fire | gpu_slicing.observability.MIG_FIELDS; tests/promtool/gpu_slicing_alerts_test.yaml |
| policy.<rule> | the CrossGuard rules of policy/rules.py (GPU invariants, security, cost), run over the same graph | policy/rules.py + gpu_slicing |

Every check reports at least one finding: problems (error/warning) or one `info` line saying what it
checked. Heavy libraries are imported only when a check runs.
"""
from __future__ import annotations

import difflib
import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from policy import rules
from tools import refdata

Finding = dict[str, Any]
CHECKS: list[Callable[[Mapping[str, Any], list[dict]], Iterable[Finding]]] = []
COMPUTED = "<computed>"  # tools.harness.COMPUTED: a value unknown at preview
CRD_DIR_ENV = refdata.CRD_DIR_ENV


def check(fn: Callable[[Mapping[str, Any], list[dict]], Iterable[Finding]]) -> None:
    """Register a check: called after each check's `def`, not as a decorator, which mutmut would skip."""
    CHECKS.append(fn)


def finding(id_: str, severity: str, message: str, resource: str | None = None) -> Finding:
    return {"id": id_, "severity": severity, "message": message, "resource": resource}


def run_checks(config: Mapping[str, Any], resources: list[dict]) -> list[Finding]:
    return [f for c in CHECKS for f in c(config, resources)]


def stack(config: Mapping[str, Any]):
    """The loaded stack (config, pools, capacity plan): the program loaded it already, so this is the kept one."""
    from gpu_slicing.stack import load_stack

    return load_stack(config)


def capacity_table(config: Mapping[str, Any]) -> str:
    return stack(config).capacity.format_table()


def _dig(obj: Any, path: str) -> list[Any]:
    """Values at `path` ("a.b[].c": `[]` walks every list item); missing parts give nothing."""
    out = [obj]
    for part in path.split("."):
        many = part.endswith("[]")
        key = part[:-2] if many else part
        nxt = []
        for o in out:
            if isinstance(o, Mapping) and key in o:
                v = o[key]
                if many:
                    nxt.extend(v if isinstance(v, list) else [])
                else:
                    nxt.append(v)
        out = nxt
    return out


def _has_computed(v: Any) -> bool:
    if v == COMPUTED:
        return True
    if isinstance(v, Mapping):
        return any(_has_computed(x) for x in v.values())
    if isinstance(v, list):
        return any(_has_computed(x) for x in v)
    return False


def capacity_idle_pools(config: Mapping[str, Any], resources: list[dict]) -> Iterable[Finding]:
    """Node groups the capacity plan finds idle: paid for, used by no workload (what does not fit is a config
    error, not a warning)."""
    for text in stack(config).capacity.idle_pools:
        yield finding("capacity.idle-pool", "warning", text)

check(capacity_idle_pools)


def dra_claims(config: Mapping[str, Any], resources: list[dict]) -> Iterable[Finding]:
    """Every registered claim (template) on a DRA pool, its CEL evaluated with cel-python against the devices
    the pool's nodes will publish (tools/dra_claims.py); silent on stacks without DRA pools."""
    from tools import dra_claims as sim

    st = stack(config)
    if not st.uses_dra:
        return
    pools = {p.name: p for p in st.pools}
    registered = {r["inputs"]["metadata"]["name"]: r for r in resources
                  if r["type"] in ("kubernetes:resource.k8s.io/v1:ResourceClaimTemplate",
                                   "kubernetes:resource.k8s.io/v1:ResourceClaim")}
    n = 0
    for res in sim.simulate(st.workloads, pools):  # each claim under the name the stack resolved
        r = registered.get(res.claim)
        if r is None:
            yield finding("dra.claims", "error", f"workload {res.workload} on DRA pool {res.pool} has no claim "
                                                 "template registered")
            continue
        n += 1
        if not res.matched:
            yield finding("dra.claims", "error", f"{r['name']}: its CEL matches no device a node of pool {res.pool} "
                                                 "publishes: its pods would stay Pending", r["name"])
        elif not res.agrees:
            yield finding("dra.claims", "error", f"{r['name']}: the CEL and gpu_slicing.dra.matches disagree on "
                                                 f"pool {res.pool}'s devices (CEL: {', '.join(res.matched)})",
                          r["name"])
        elif not res.counted_right:
            yield finding("dra.claims", "error", f"{r['name']}: the capacity plan counts its pods against "
                                                 f"{', '.join(res.counted)} but its CEL matches devices of "
                                                 f"{', '.join(res.kinds)} on pool {res.pool}", r["name"])
        for other in res.foreign:
            yield finding("dra.claims", "error", f"{r['name']}: its CEL also matches devices of pool {other} (another "
                                                 "GPU model, which its pods cannot reach): the selector does not pin "
                                                 "the product", r["name"])
    yield finding("dra.claims", "info", f"{n} DRA claims' CEL selectors evaluated (cel-python) against the "
                                        "ResourceSlices their pools' nodes will publish")

check(dra_claims)


def api_endpoint_exposure(config: Mapping[str, Any], resources: list[dict]) -> Iterable[Finding]:
    """A public API endpoint open to every address is reachable (what a laptop and hosted CI need) but is a
    choice to make knowingly; say so, and how to narrow it."""
    for r in resources:
        if r["type"] != "eks:index:Cluster" or r["inputs"].get("endpointPublicAccess") is False:
            continue
        cidrs = r["inputs"].get("publicAccessCidrs") or ["0.0.0.0/0"]  # EKS's default when unset
        private = [c for c in cidrs if isinstance(c, str) and rules.range_containing(c, rules.PRIVATE_RANGES)]
        if private:
            yield finding("security.endpoint-private-cidrs", "warning",
                          f"{r['name']}: publicAccessCidrs {private} are private addresses (RFC 1918): a client "
                          "there reaches the public endpoint only through NAT, from a public address, so these "
                          "admit no one; list the NAT gateways' or your public ranges, and reach the API from "
                          "inside the VPC through endpointPrivateAccess", r["name"])
        if "0.0.0.0/0" in cidrs:
            yield finding("security.endpoint-open", "warning",
                          f"{r['name']}: the public API endpoint accepts connections from any address "
                          "(EKS still authenticates every request with IAM). Narrow gpu-slicing:cluster."
                          "publicAccessCidrs to your deployers' ranges, or deploy from inside the VPC with "
                          "endpointPublicAccess: false (README: Reaching the API)", r["name"])
            return
    yield finding("security.endpoint-open", "info", "the public API endpoint, if any, is limited to named CIDRs")

check(api_endpoint_exposure)


def mig_unconfirmed(config: Mapping[str, Any], resources: list[dict]) -> Iterable[Finding]:
    """MIG enabled on an instance type where AWS has not confirmed it (g7e): a warning, not an error."""
    from gpu_slicing.catalog import mig_warning

    mig, inferred, unconfirmed = [], {}, set()
    for p in stack(config).pools:
        if p.layout.mig_enabled:
            mig.append(p.name)
            for it in p.instance_types:
                if (text := mig_warning(it)) is not None:
                    unconfirmed.add(p.name)
                    yield finding("catalog.mig-unconfirmed", "warning", f"{p.kind} {p.name} ({p.layout.name}): {text}")
                if not it.gpu.placements_confirmed:
                    inferred.setdefault(it.gpu.name, []).append(p.name)
    where = "; ".join(f"{gpu} ({', '.join(dict.fromkeys(pools))})" for gpu, pools in inferred.items())
    yield finding("catalog.mig-unconfirmed", "info",
                  f"{len(mig)} MIG pool(s) checked: "
                  + (f"{len(unconfirmed)} on an instance type AWS has not confirmed MIG on (warned above); "
                     if unconfirmed else "AWS supports MIG on every instance type they use; ")
                  + (f"placements inferred, not read off hardware, for {where}" if where
                     else "every placement table used was read off hardware or taken from NVIDIA's guide"))

check(mig_unconfirmed)


def eks_calendar(config: Mapping[str, Any], resources: list[dict]) -> Iterable[Finding]:
    """Where the cluster's Kubernetes version stands today (a past-support version is a config error already):
    in extended support the control plane costs six times as much, added here to the plan's GPU cost."""
    from gpu_slicing import calendar

    s = stack(config)
    minor, karpenter = s.config.cluster.kubernetes_version, s.config.karpenter.version
    cp = calendar.control_plane_usd_per_hour(minor)
    cost = (f"cost per hour: GPU nodes {s.capacity.usd_per_hour:.2f} + control plane {cp:.2f} = "
            f"{s.capacity.usd_per_hour + cp:.2f} USD")
    if calendar.phase(minor) == "extended":
        yield finding("calendar.extended-support", "warning", f"{calendar.describe(minor)}; {cost}; upgrade one "
                      "minor at a time (make diff shows the order)")
    else:
        yield finding("calendar.extended-support", "info", f"{calendar.describe(minor)}; {cost}")
    if s.config.karpenter.enabled and not calendar.karpenter_supports(minor, karpenter):
        yield finding("calendar.karpenter", "error", f"Karpenter {karpenter} does not support Kubernetes {minor} "
                      f"(needs >= {calendar.BY_MINOR[minor].karpenter_min}, Karpenter docs, compatibility)")

check(eks_calendar)


# --- Kubernetes: built-in objects against the OpenAPI schema of the cluster's version -----------------

def cluster_version(config: Mapping[str, Any], resources: list[dict]) -> str | None:
    """The control plane's Kubernetes version: as registered (pulumi-eks or aws.eks), else from config."""
    for r in resources:
        if r["type"] in ("eks:index:Cluster", "aws:eks/cluster:Cluster"):
            v = r["inputs"].get("version")
            if isinstance(v, str) and v != COMPUTED:
                return v
    try:
        return stack(config).config.cluster.kubernetes_version
    except Exception:  # noqa: BLE001 - no cluster, no version
        return None


def schema_version(version: str) -> tuple[str, str | None]:
    """The kubernetes-validate schema version for a cluster `version` ("1.34"): the same minor when the
    package ships it, else the newest it ships that is not newer (else its oldest), with a note saying so."""
    from kubernetes_validate import utils as kv

    shipped = [kv.major_minor(v) for v in kv.all_versions()]
    if version in shipped:
        return version, None
    key = _version_key(version)
    older = [v for v in shipped if _version_key(v) <= key]
    chosen = older[-1] if older else shipped[0]
    from kubernetes_validate.version import __version__

    return chosen, (f"kubernetes-validate {__version__} ships no schema for Kubernetes {version} (it has "
                    f"{shipped[0]}..{shipped[-1]}); built-in objects were validated against {chosen}, which may "
                    "miss fields added or removed since: upgrade kubernetes-validate")


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v)[:2])


@functools.lru_cache(maxsize=None)
def _k8s_definitions(version: str) -> Any:
    from kubernetes_validate import utils as kv

    full = next(v for v in kv.all_versions() if kv.major_minor(v) == version)
    return full, kv.schema_contents(f"kubernetes-json-schema/v{full}-local-strict/_definitions.json", version)


@functools.lru_cache(maxsize=None)
def _k8s_validator(version: str, api_version: str, kind: str):
    """kubernetes-validate's strict schema for (apiVersion, kind) at `version`, as a validator that
    reports every error (its `validate()` stops at the first); None when it has no such kind."""
    import jsonschema
    from kubernetes_validate import utils as kv
    from referencing import Registry, Resource

    full, definitions = _k8s_definitions(version)
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = kv.schema_contents(f"kubernetes-json-schema/v{full}-local-strict/{kind.lower()}-{api}.json", version)
    except FileNotFoundError:
        return None
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def _k8s_objects(resources: list[dict]) -> list[dict]:
    """Kubernetes objects this program registers itself (not Helm releases, not providers)."""
    return [r for r in resources if r["custom"] and r["type"].startswith("kubernetes:")
            and not r["type"].startswith("kubernetes:helm.sh/") and isinstance(r["inputs"].get("kind"), str)]


def _errors(validator, obj: Mapping[str, Any]) -> list[str]:
    out = []
    for e in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
        if e.instance == COMPUTED or (e.context and all(c.instance == COMPUTED for c in e.context)):
            continue  # unknown at preview: the real value is checked by the API server
        where = ".".join(str(p) for p in e.absolute_path) or "<root>"
        out.append(f"{where}: {e.message}")
    return out


def is_builtin(r: dict, version: str) -> bool:
    return _k8s_validator(version, r["inputs"].get("apiVersion", ""), r["inputs"]["kind"]) is not None


def k8s_schema(config: Mapping[str, Any], resources: list[dict]) -> Iterable[Finding]:
    objects = _k8s_objects(resources)
    version = cluster_version(config, resources)
    if not objects or version is None:
        yield finding("k8s.schema", "info", "no built-in Kubernetes objects to validate")
        return
    chosen, note = schema_version(version)
    if note:
        yield finding("k8s.schema-version", "warning", note)
    n = 0
    for r in objects:
        validator = _k8s_validator(chosen, r["inputs"].get("apiVersion", ""), r["inputs"]["kind"])
        if validator is None:
            continue  # a custom resource: k8s.custom-resource-kind / k8s.crd-schema
        n += 1
        for e in _errors(validator, r["inputs"]):
            yield finding("k8s.schema", "error", f"{r['inputs']['kind']} {r['name']}: {e} "
                                                 f"(Kubernetes {chosen} OpenAPI schema, strict)", r["name"])
    from kubernetes_validate.version import __version__

    yield finding("k8s.schema", "info", f"{n} built-in objects validated against the Kubernetes {chosen} OpenAPI "
                                        f"schema (kubernetes-validate {__version__}, strict: unknown fields are errors)")

check(k8s_schema)


# --- Kubernetes: custom resources (Karpenter) ---------------------------------------------------------

def served_custom_kinds() -> dict[tuple[str, str], str]:
    """(apiVersion, kind) -> scope of the custom resources this program may create: Karpenter's, at the
    versions gpu_slicing.karpenter pins (tests hold them against the real CRDs), and the Prometheus
    Operator's ServiceMonitor and PrometheusRule (gpu_slicing.observability)."""
    from gpu_slicing import karpenter as k
    from gpu_slicing.observability import MONITORING_API

    return {(k.NODEPOOL_API, "NodePool"): "Cluster", (k.NODECLASS_API, "EC2NodeClass"): "Cluster",
            (k.OVERLAY_API, "NodeOverlay"): "Cluster",
            (MONITORING_API, "ServiceMonitor"): "Namespaced", (MONITORING_API, "PrometheusRule"): "Namespaced"}


def _custom_objects(resources: list[dict], version: str | None) -> list[dict]:
    if version is None:
        return []
    chosen, _ = schema_version(version)
    return [r for r in _k8s_objects(resources) if not is_builtin(r, chosen)]


def k8s_custom_resource_kind(config: Mapping[str, Any], resources: list[dict]) -> Iterable[Finding]:
    objects = _custom_objects(resources, cluster_version(config, resources))
    served = served_custom_kinds()
    for r in objects:
        api, kind = r["inputs"].get("apiVersion"), r["inputs"]["kind"]
        scope = served.get((api, kind))
        if scope is None:
            known = ", ".join(f"{a} {k}" for a, k in sorted(served)) or "none"
            yield finding("k8s.custom-resource-kind", "error",
                          f"{kind} {r['name']}: {api} {kind} is neither a built-in Kubernetes kind nor a custom "
                          f"resource the pinned Karpenter or Prometheus Operator serves ({known})", r["name"])
        elif scope == "Cluster" and r["inputs"].get("metadata", {}).get("namespace"):
            yield finding("k8s.custom-resource-kind", "error",
                          f"{kind} {r['name']}: metadata.namespace set on a cluster-scoped kind", r["name"])
        elif scope == "Namespaced" and not r["inputs"].get("metadata", {}).get("namespace"):
            yield finding("k8s.custom-resource-kind", "error",
                          f"{kind} {r['name']}: no metadata.namespace on a namespaced kind", r["name"])
    yield finding("k8s.custom-resource-kind", "info",
                  f"{len(objects)} custom resources checked for a served apiVersion/kind and scope")

check(k8s_custom_resource_kind)


def strict_schema(schema: Any) -> Any:
    """A CRD schema as JSON Schema with Kubernetes' pruning made visible: an object schema that lists
    `properties` and does not preserve unknown fields gets `additionalProperties: false` (the API server
    would silently drop such a field); `nullable: true` admits null."""
    if isinstance(schema, list):
        return [strict_schema(s) for s in schema]
    if not isinstance(schema, Mapping):
        return schema
    out = {k: strict_schema(v) for k, v in schema.items()}
    if "properties" in out and "additionalProperties" not in out \
            and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    if out.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


@functools.lru_cache(maxsize=None)
def _crd_validators(directory: str | None) -> dict[tuple[str, str], Any]:
    import jsonschema

    return {k: jsonschema.Draft4Validator(strict_schema(s)) for k, s in refdata.crd_schemas(directory).items()}


def crd_errors(obj: Mapping[str, Any], directory: str | Path | None = None) -> list[str] | None:
    """Schema errors of a custom object against its CRD (the pinned Karpenter's, or the one in `directory`);
    None when no CRD serves it. CEL rules (x-kubernetes-validations) are k8s.crd-cel's job."""
    validator = _crd_validators(None if directory is None else str(directory)).get((obj.get("apiVersion"), obj.get("kind")))
    if validator is None:
        return None
    body = {k: v for k, v in obj.items() if k != "metadata"}  # metadata is ObjectMeta, not in the CRD schema
    return _errors(validator, body)


def k8s_crd_schema(config: Mapping[str, Any], resources: list[dict]) -> Iterable[Finding]:
    objects = _custom_objects(resources, cluster_version(config, resources))
    directory, crds = refdata.crd_source()
    if not objects:
        yield finding("k8s.crd-schema", "info", "no custom resources to validate")
        return
    if directory and not Path(directory).is_dir():
        yield finding("k8s.crd-schema", "error", f"{CRD_DIR_ENV}={directory} is not a directory: point it at a "
                                                 "directory of CRD files, or unset it to use the pinned Karpenter's")
        return
    n = 0
    for r in objects:
        errors = crd_errors(r["inputs"], directory)
        if errors is None and r["inputs"].get("apiVersion", "").startswith("monitoring.coreos.com/"):
            yield finding("k8s.crd-schema", "info", f"{r['inputs']['kind']} {r['name']}: not validated: no "
                                                    f"Prometheus Operator CRD among {crds}", r["name"])
            continue
        if errors is None:
            yield finding("k8s.crd-schema", "error", f"{r['inputs']['kind']} {r['name']}: none of {crds} "
                                                     f"serves {r['inputs'].get('apiVersion')}", r["name"])
            continue
        n += 1
        for e in errors:
            yield finding("k8s.crd-schema", "error", f"{r['inputs']['kind']} {r['name']}: {e} (CRD schema)", r["name"])
    yield finding("k8s.crd-schema", "info", f"{n} custom resources validated against {crds} "
                                            "(unknown fields are errors; CEL rules: k8s.crd-cel)")

check(k8s_crd_schema)


def k8s_crd_cel(config: Mapping[str, Any], resources: list[dict]) -> Iterable[Finding]:
    """Every CEL rule of the CRDs on every recorded custom object, after the CRDs' defaults, as the API server
    does on create (tools/cel_rules.py)."""
    objects = _custom_objects(resources, cluster_version(config, resources))
    directory, crds = refdata.crd_source()
    if not objects:
        yield finding("k8s.crd-cel", "info", "no custom resources to evaluate CEL rules on")
        return
    if directory and not Path(directory).is_dir():
        return  # k8s.crd-schema reports it
    from tools import cel_rules

    evaluated = transition = unknown = m = 0
    for r in objects:
        report = cel_rules.evaluate_object(r["inputs"], directory)
        if report is None:
            continue  # no CRD serves it: k8s.crd-schema reports that
        m += 1
        evaluated, transition, unknown = (evaluated + len(report.evaluated), transition + len(report.transition),
                                          unknown + len(report.unknown))
        for v in report.violations:
            yield finding("k8s.crd-cel", "error", f"{r['inputs']['kind']} {r['name']}: {v} (CEL rule "
                                                  f"`{v.rule.rule}` of the CRD)", r["name"])
    unknown_note = f", {unknown} skipped because they read values unknown at preview" if unknown else ""
    yield finding("k8s.crd-cel", "info",
                  f"{evaluated} CEL rules evaluated on {m} objects, {transition} transition rules skipped "
                  f"({cel_rules.TRANSITION}: they compare with the stored object){unknown_note}; the CRDs' "
                  f"defaults applied first, as the API server does (against {crds})")

check(k8s_crd_cel)

# --- Helm values: every path on the chart's reviewed allow-list -----------------------------------------

def chart_allowlists() -> dict[str, tuple[frozenset[str], Callable[[Mapping[str, Any]], list[str]]]]:
    """chart (last path element of the Release's `chart`) -> (reviewed VALUE_PATHS, how to flatten values)."""
    from gpu_slicing import dra, gpu_operator, helm, karpenter, observability

    return {"gpu-operator": (gpu_operator.VALUE_PATHS, helm.flatten),
            dra.CHART: (dra.VALUE_PATHS, dra.flatten),
            "karpenter": (karpenter.VALUE_PATHS, karpenter.flatten),
            "kube-prometheus-stack": (observability.VALUE_PATHS, helm.flatten),
            "karpenter-crd": (frozenset(), karpenter.flatten)}


def value_paths_off_allowlist(chart: str, values: Mapping[str, Any]) -> list[str] | None:
    """Leaf paths of `values` not on `chart`'s reviewed allow-list; None when the chart has none."""
    if chart not in chart_allowlists():
        return None
    allowed, flatten = chart_allowlists()[chart]
    return sorted(p for p in flatten(values) if p not in allowed)


def helm_values(config: Mapping[str, Any], resources: list[dict]) -> Iterable[Finding]:
    n = 0
    for r in resources:
        if r["type"] not in rules.RELEASE_TYPES:
            continue
        chart = str(r["inputs"].get("chart", "")).rstrip("/").rsplit("/", 1)[-1]
        values = r["inputs"].get("values") or {}
        if not isinstance(values, Mapping):
            yield finding("helm.values", "info", f"{r['name']}: values unknown at preview, not checked", r["name"])
            continue
        off = value_paths_off_allowlist(chart, values)
        n += 1
        if off is None:
            yield finding("helm.values", "error", f"{r['name']}: chart {chart!r} has no reviewed allow-list of value "
                                                  f"paths (add one to chart_allowlists)", r["name"])
        for p in off or ():
            yield finding("helm.values", "error", f"{r['name']}: value {p!r} is not on the reviewed allow-list of chart "
                                                  f"{chart!r}: the chart has no values schema, so Helm would ignore a "
                                                  "key it lacks without a word", r["name"])
    yield finding("helm.values", "info", f"{n} Helm releases' value paths checked against their charts' allow-lists")

check(helm_values)


# --- AWS inputs: botocore's service models ----------------------------------------------------------

_MNG = rules.MNG_TYPES
_LT = ("aws:ec2/launchTemplate:LaunchTemplate",)
_NODEPOOL = rules.NODEPOOL_TYPE
_NODECLASS = rules.NODECLASS_TYPE
# (check id, resource types, input path, botocore service, shape whose enum the value must be in)
AWS_ENUM_FIELDS: tuple[tuple[str, tuple[str, ...], str, str, str], ...] = (
    ("aws.instance-type", _MNG, "instanceTypes[]", "ec2", "InstanceType"),
    ("aws.instance-type", (*_LT, "aws:ec2/instance:Instance"), "instanceType", "ec2", "InstanceType"),
    ("aws.ami-type", _MNG, "amiType", "eks", "AMITypes"),
    ("aws.capacity-type", _MNG, "capacityType", "eks", "CapacityTypes"),
    ("aws.enum", _MNG, "taints[].effect", "eks", "TaintEffect"),
    ("aws.enum", ("eks:index:Cluster",), "enabledClusterLogTypes[]", "eks", "LogType"),
    ("aws.enum", ("eks:index:Cluster",), "authenticationMode", "eks", "AuthenticationMode"),
    ("aws.enum", ("aws:eks/cluster:Cluster",), "accessConfig.authenticationMode", "eks", "AuthenticationMode"),
    ("aws.enum", _LT, "blockDeviceMappings[].ebs.volumeType", "ec2", "VolumeType"),
    ("aws.enum", _LT, "metadataOptions.httpTokens", "ec2", "LaunchTemplateHttpTokensState"),
    ("aws.enum", _LT, "metadataOptions.httpEndpoint", "ec2", "LaunchTemplateInstanceMetadataEndpointState"),
    ("aws.enum", (_NODECLASS,), "spec.blockDeviceMappings[].ebs.volumeType", "ec2", "VolumeType"),
    ("aws.enum", (_NODECLASS,), "spec.metadataOptions.httpTokens", "ec2", "HttpTokensState"),
)


@functools.lru_cache(maxsize=None)
def botocore_enum(service: str, shape: str) -> frozenset[str]:
    """The values botocore's model of `service` allows for `shape`. Loading the EC2 model costs about half
    a second, so the enums are kept per botocore version in the user's cache directory."""
    from importlib.metadata import version

    return frozenset(kept(f"botocore-{version('botocore')}-{service}-{shape}.json",
                          lambda: sorted(_botocore_session().get_service_model(service).shape_for(shape).enum)))


@functools.lru_cache(maxsize=None)
def _botocore_session():
    import botocore.session

    return botocore.session.get_session()


def _nodepool_instance_types(r: dict) -> list[str]:
    reqs = _dig(r["inputs"], "spec.template.spec.requirements[]")
    return rules.requirement_values(reqs, rules.INSTANCE_TYPE_LABEL) or []


def aws_enums(config: Mapping[str, Any], resources: list[dict]) -> Iterable[Finding]:
    seen: dict[str, int] = {}
    for r in resources:
        values: list[tuple[str, str, str, str, Any]] = []
        for cid, types, path, svc, shape in AWS_ENUM_FIELDS:
            if r["type"] in types:
                values += [(cid, path, svc, shape, v) for v in _dig(r["inputs"], path)]
        if r["type"] == _NODEPOOL:
            values += [("aws.instance-type", "requirements[node.kubernetes.io/instance-type]", "ec2", "InstanceType", v)
                       for v in _nodepool_instance_types(r)]
        for cid, path, svc, shape, v in values:
            if v == COMPUTED or v is None:
                continue
            seen[cid] = seen.get(cid, 0) + 1
            allowed = botocore_enum(svc, shape)
            if v not in allowed:
                hint = difflib.get_close_matches(str(v), allowed, n=3)
                yield finding(cid, "error", f"{r['name']}: {path} = {v!r} is not a valid {svc} {shape} "
                                            f"(botocore service model){'; did you mean ' + ', '.join(hint) if hint else ''}",
                              r["name"])
    import botocore

    for cid in ("aws.instance-type", "aws.ami-type", "aws.capacity-type", "aws.enum"):
        yield finding(cid, "info", f"{seen.get(cid, 0)} values checked against botocore {botocore.__version__} enums")
    yield finding("aws.kubernetes-version", "info",
                  "botocore's EKS model types the cluster version as a plain string (no enum to check against): the "
                  "version is held to gpu-slicing's supported list by the config, and k8s.schema says when "
                  "kubernetes-validate has no schema for it")

check(aws_enums)


def aws_event_sources(config: Mapping[str, Any], resources: list[dict]) -> Iterable[Finding]:
    n = 0
    for r in resources:
        if r["type"] != "aws:cloudwatch/eventRule:EventRule" or "eventPattern" not in r["inputs"]:
            continue
        raw = r["inputs"]["eventPattern"]
        if raw == COMPUTED:
            continue
        try:
            pattern = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError as e:
            yield finding("aws.event-source", "error", f"{r['name']}: eventPattern is not JSON: {e}", r["name"])
            continue
        services = set(_botocore_session().get_available_services())
        for src in (pattern.get("source") or []) if isinstance(pattern, Mapping) else []:
            n += 1
            if isinstance(src, str) and src.startswith("aws.") and src[4:] not in services:
                yield finding("aws.event-source", "error",
                              f"{r['name']}: event source {src!r} names no AWS service botocore knows "
                              "(aws.<service>, e.g. aws.ec2, aws.health)", r["name"])
    yield finding("aws.event-source", "info", f"{n} EventBridge sources checked against botocore's services "
                                              "(detail-types are not in botocore and are not checked)")

check(aws_event_sources)


# --- IAM: parliament ----------------------------------------------------------------------------------

# (resource type, input path, document kind): where policy documents are
IAM_DOCUMENTS = (
    ("aws:iam/role:Role", "assumeRolePolicy", "trust"),
    ("aws:iam/role:Role", "inlinePolicies[].policy", "identity"),
    ("aws:iam/policy:Policy", "policy", "identity"),
    ("aws:iam/rolePolicy:RolePolicy", "policy", "identity"),
    ("aws:sqs/queuePolicy:QueuePolicy", "policy", "resource"),
    ("aws:sqs/queue:Queue", "policy", "resource"),
)

_RUN = {"ec2:runinstances", "ec2:createfleet"}
_INSTANCE_PROFILE_ACTIONS = {"iam:passrole", "iam:createinstanceprofile", "iam:taginstanceprofile",
                             "iam:addroletoinstanceprofile", "iam:removerolefrominstanceprofile",
                             "iam:deleteinstanceprofile"}

# The reviewed parliament findings this program accepts, each with why it is fine. A finding is accepted
# only when its issue, document kind and actions all match an entry (and the entry's `verify` holds).
ACCEPTED_IAM_FINDINGS: tuple[dict[str, Any], ...] = (
    {"issue": "MALFORMED", "kinds": {"trust"}, "detail": "Statement contains neither Resource nor NotResource",
     "reason": "a role's trust policy names a Principal and never a Resource (the resource is the role itself; IAM "
               "rejects Resource there); parliament reads every document as an identity policy"},
    {"issue": "UNKNOWN_FEDERATION_SOURCE", "kinds": {"trust"}, "verify": "iam_oidc_provider",
     "reason": "an IAM OIDC identity provider (e.g. GitHub Actions' token.actions.githubusercontent.com, the CI "
               "roles of docs/checks-and-ci.md) is a valid federated principal; parliament knows only SAML "
               "providers and four web identity providers. Accepted only for an oidc-provider ARN"},
    {"issue": "RESOURCE_MISMATCH", "kinds": {"identity"}, "actions": _RUN, "verify": "statements_cover_formats",
     "reason": "RunInstances/CreateFleet touch several resource types (image, subnet, security group, launch "
               "template, instance, volume, network interface, fleet); Karpenter's NodeLifecycle policy grants them "
               "in separate statements so each gets its own tag condition, and parliament judges each statement "
               "alone. Accepted only when the document's statements together cover every format parliament names"},
    {"issue": "RESOURCE_MISMATCH", "kinds": {"identity"}, "actions": {"ssm:getparameter"},
     "verify": "public_ssm_parameter",
     "reason": "AWS-owned public parameters (/aws/service/..., where Karpenter resolves EKS AMI ids) have ARNs with "
               "an empty account field; parliament's format for ssm parameters demands an account"},
    {"issue": "PERMISSIONS_MANAGEMENT_ACTIONS", "kinds": {"identity"}, "actions": _INSTANCE_PROFILE_ACTIONS,
     "reason": "Karpenter creates an instance profile per EC2NodeClass and passes the node role to EC2: that is its "
               "job. Upstream's statements scope them: PassRole to the node role's ARN with iam:PassedToService "
               "ec2, instance-profile actions to profiles tagged for this cluster and region"},
    {"issue": "RESOURCE_STAR", "kinds": {"identity"}, "actions": {"arc-zonal-shift:getmanagedresource"},
     "reason": "upstream's ZonalShift statement: the action is read-only and conditioned on "
               "arc-zonal-shift:ResourceIdentifier = this cluster's ARN"},
)


def _finding_actions(f: Any) -> set[str]:
    """The actions a parliament finding is about, lower-cased (its detail/location shape varies by issue)."""
    out: set[str] = set()
    for src in (f.detail, (f.location or {}).get("actions") if isinstance(f.location, Mapping) else None):
        for item in src if isinstance(src, list) else []:
            a = item.get("action") if isinstance(item, Mapping) else item
            if isinstance(a, str):
                out.add(a.lower())
    return out


def _statements(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    st = doc.get("Statement", [])
    return [s for s in (st if isinstance(st, list) else [st]) if isinstance(s, Mapping)]


def _listify(v: Any) -> list:
    return v if isinstance(v, list) else [v]


def _parliament() -> Any:
    """parliament, imported without the UserWarning its `import pkg_resources` raises on setuptools >= 67: a
    first plan (nothing kept yet) printed it above the plan, about code that is not the user's."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        import parliament
    return parliament


def _statements_cover_formats(f: Any, doc: Mapping[str, Any]) -> bool:
    is_arn_match = _parliament().is_arn_match

    for item in f.detail if isinstance(f.detail, list) else []:
        action, fmt = item.get("action", "").lower(), item.get("required_format", "")
        if not any(s.get("Effect") == "Allow" and action in {a.lower() for a in _listify(s.get("Action"))}
                   and any(isinstance(res, str) and is_arn_match("", fmt, res) for res in _listify(s.get("Resource")))
                   for s in _statements(doc)):
            return False
    return True


def _public_ssm_parameter(f: Any, doc: Mapping[str, Any]) -> bool:
    resources = [res for s in _statements(doc) if "ssm:getparameter" in {a.lower() for a in _listify(s.get("Action"))}
                 for res in _listify(s.get("Resource"))]
    return bool(resources) and all(isinstance(r, str) and re.match(r"^arn:[^:]+:ssm:[^:]*::parameter/aws/service/", r)
                                   for r in resources)


def _iam_oidc_provider(f: Any, doc: Mapping[str, Any]) -> bool:
    return isinstance(f.detail, str) and bool(re.match(r"^arn:aws[-a-z]*:iam::\d{12}:oidc-provider/[^/]+", f.detail))


_VERIFY = {"statements_cover_formats": _statements_cover_formats, "public_ssm_parameter": _public_ssm_parameter,
           "iam_oidc_provider": _iam_oidc_provider}


def accepted_reason(f: Any, kind: str, doc: Mapping[str, Any]) -> str | None:
    """Why parliament finding `f` on a `kind` document is accepted, or None when it is not."""
    actions = _finding_actions(f)
    for a in ACCEPTED_IAM_FINDINGS:
        if a["issue"] != f.issue or kind not in a["kinds"]:
            continue
        if "detail" in a and f.detail != a["detail"]:
            continue
        if "actions" in a and not (actions and actions <= a["actions"]):
            continue
        if "verify" in a and not _VERIFY[a["verify"]](f, doc):
            continue
        return a["reason"]
    return None


@dataclass(frozen=True)
class StoredFinding:
    """A parliament finding as kept in the cache: the three fields the accepted-findings rules read."""

    issue: str
    detail: Any
    location: Any


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gpu-slicing"


def kept(name: str, compute: Callable[[], Any]) -> Any:
    """`compute()`'s JSON-able answer, kept as `name` in the user's cache directory: what a check loads a
    slow library for (parliament, botocore's EC2 model) is computed once per version and input. A cache
    that cannot be read or written is no cache, with the same answer."""
    path = _cache_dir() / name
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    value = compute()
    try:
        text = json.dumps(value)
        path.parent.mkdir(parents=True, exist_ok=True)
        # written whole, then renamed: a plan (or test worker) running alongside never reads half a file
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    except (OSError, TypeError):
        pass  # a read-only home, or an answer that is not plain data
    return value


def _judging() -> str:
    """What decides which findings are accepted: the reviewed list and the code that reads it. It keys the
    cache, so a change to either judges every document again."""
    import inspect

    try:
        code = "".join(inspect.getsource(f) for f in (accepted_reason, _finding_actions, _statements, _listify,
                                                       *_VERIFY.values()))
    except (OSError, TypeError):  # no source to read (a build without .py files): the list alone, as before
        code = ""
    return json.dumps(ACCEPTED_IAM_FINDINGS, sort_keys=True, default=sorted) + code


def lint_policy(doc: Any, kind: str) -> list[tuple[Any, str | None]]:
    """parliament's findings on `doc` (a JSON string or data), each with its accepted reason or None.

    Importing parliament costs about half a second and the documents rarely change, so the result is kept
    in the user's cache directory per (parliament version, document, kind, what judges the findings: the
    accepted-findings list and the code that verifies it): parliament is loaded only for a document it has
    not judged that way before."""
    from importlib.metadata import version

    text = doc if isinstance(doc, str) else json.dumps(doc)
    digest = hashlib.sha256(f"{version('parliament')}\n{kind}\n{_judging()}\n{text}".encode()).hexdigest()

    def judge() -> list[dict[str, Any]]:
        analyze_policy_string = _parliament().analyze_policy_string

        parsed = json.loads(text) if isinstance(doc, str) else doc
        return [{"issue": f.issue, "detail": f.detail, "location": f.location,
                 "reason": accepted_reason(f, kind, parsed if isinstance(parsed, Mapping) else {})}
                for f in analyze_policy_string(text, include_community_auditors=True).findings]

    return [(StoredFinding(f["issue"], f["detail"], f["location"]), f["reason"])
            for f in kept(f"parliament-{digest}.json", judge)]


def iam_parliament(config: Mapping[str, Any], resources: list[dict]) -> Iterable[Finding]:
    linted, skipped, accepted = 0, 0, 0
    for r in resources:
        for rtype, path, kind in IAM_DOCUMENTS:
            if r["type"] != rtype:
                continue
            for doc in _dig(r["inputs"], path):
                if doc is None:
                    continue
                if _has_computed(doc):
                    skipped += 1
                    continue
                linted += 1
                for f, reason in lint_policy(doc, kind):
                    if reason is not None:
                        accepted += 1
                        continue
                    detail = f.detail if f.detail not in ("", None, []) else (f.location or {}).get("actions", "")
                    yield finding("iam.parliament", "error",
                                  f"{r['name']}.{path}: parliament {f.issue}: {detail} (fix it, or add a reviewed "
                                  "entry with its reason to ACCEPTED_IAM_FINDINGS)", r["name"])
    yield finding("iam.parliament", "info",
                  f"{linted} policy documents linted by parliament, {accepted} findings accepted (reasons in "
                  f"tools/checks.py ACCEPTED_IAM_FINDINGS)" + (f", {skipped} unknown at preview" if skipped else ""))

check(iam_parliament)


# --- the policy pack's rules, over the recorded graph -------------------------------------------------

def policy_resources(resources: list[dict]) -> list:
    """Recorded registrations in the shape the policy rules take (what CrossGuard hands the pack)."""
    from policy.rules import Res

    return [Res(type=r["type"], name=r["name"], urn=r["urn"], props=r["inputs"], parent=r.get("parent"),
                dependencies=tuple(r.get("dependencies") or ()),
                property_dependencies={k: tuple(v) for k, v in (r.get("propertyDependencies") or {}).items()})
            for r in resources]


def policy_context(config: Mapping[str, Any]) -> rules.Context:
    return rules.Context(max_gpu_nodes=stack(config).config.max_gpu_nodes)


def policy_rules(config: Mapping[str, Any], resources: list[dict]) -> Iterable[Finding]:
    names = {r["urn"]: r["name"] for r in resources}
    results = rules.evaluate_all(policy_resources(resources), policy_context(config))
    for name, violations in results.items():
        rule = rules.RULES[name]
        for message, urn in violations:
            yield finding(f"policy.{name}", "error" if rule.mandatory else "warning", message, names.get(urn, urn))
    clean = [n for n, v in results.items() if not v]
    yield finding("policy", "info", f"{len(results)} policy-pack rules run, {len(clean)} clean")

check(policy_rules)


# --- Observability: what a MIG pool needs from the exporter, and alerts with tests --------------------------

ALERT_TESTS = Path(__file__).resolve().parents[1] / "tests" / "promtool" / "gpu_slicing_alerts_test.yaml"
DRA_ALERT_TESTS = ALERT_TESTS.with_name("gpu_slicing_dra_alerts_test.yaml")  # the alerts of DRA pools


def tested_alerts(path: Path = ALERT_TESTS, *more: Path) -> set[str]:
    """Alerts the promtool unit tests expect to fire at least once (a test that only expects silence proves
    nothing about the rule's expression)."""
    import yaml

    out: set[str] = set()
    for p in (path, *more):
        if p.is_file():
            doc = yaml.safe_load(p.read_text()) or {}
            out |= {t["alertname"] for test in doc.get("tests") or [] for t in test.get("alert_rule_test") or []
                    if t.get("exp_alerts")}
    return out


def _exporter_fields(resources: list[dict]) -> tuple[str | None, set[str] | None]:
    """The GPU Operator release's exporter ConfigMap name and the fields its CSV lists (None: not found)."""
    from gpu_slicing import observability

    releases = [r for r in resources if r["type"] in rules.RELEASE_TYPES
                and str(r["inputs"].get("chart", "")).rstrip("/").rsplit("/", 1)[-1] == "gpu-operator"]
    for r in releases:
        name = _dig(r["inputs"], "values.dcgmExporter.config.name")
        if not name or not isinstance(name[0], str):
            return None, None
        for cm in resources:
            if cm["type"] == rules.CONFIGMAP_TYPE and _dig(cm["inputs"], "metadata.name") == [name[0]]:
                csv = (cm["inputs"].get("data") or {}).get(observability.EXPORTER_CSV_KEY)
                return name[0], observability.parse_exporter_csv(csv) if isinstance(csv, str) else set()
        return name[0], None
    return None, None


def observability(config: Mapping[str, Any], resources: list[dict]) -> Iterable[Finding]:
    from gpu_slicing import observability as obs

    loaded = stack(config)
    cfg = loaded.config
    mig_pools = [p.name for p in loaded.pools if p.gpu.mig_capable and p.layout.mig_enabled]
    has_operator = any(r["type"] in rules.RELEASE_TYPES and "gpu-operator" in str(r["inputs"].get("chart", ""))
                       for r in resources)
    if mig_pools and has_operator:
        name, fields = _exporter_fields(resources)
        missing = sorted(obs.MIG_FIELDS - (fields or set()))
        if name is None:
            yield finding("observability.exporter", "error",
                          f"MIG pools {', '.join(mig_pools)}: the GPU Operator's dcgm-exporter has no metrics list of "
                          f"ours (dcgmExporter.config.name): its default spends a field on DCGM_FI_DEV_GPU_UTIL, "
                          f"which MIG instances never report, and per-slice series need {', '.join(sorted(obs.MIG_FIELDS))}")
        elif fields is None:
            yield finding("observability.exporter", "error",
                          f"dcgmExporter.config.name is {name!r} but no ConfigMap {name!r} with key "
                          f"{obs.EXPORTER_CSV_KEY} is in the plan: the exporter would not start")
        elif missing:
            yield finding("observability.exporter", "error",
                          f"MIG pools {', '.join(mig_pools)}: the exporter's metrics list {name!r} lacks "
                          f"{', '.join(missing)}: slices would have no activity or memory series")
        else:
            yield finding("observability.exporter", "info",
                          f"the exporter's metrics list {name!r} has every per-MIG-instance field "
                          f"({len(fields or ())} fields) for MIG pools {', '.join(mig_pools)}")
        gap = obs.framebuffer_gap_pools(loaded.pools)
        if gap:  # a warning where the dashboard shows the empty panels, else for the record
            yield finding("observability.exporter", "warning" if cfg.observability.enabled else "info",
                          f"MIG pools {', '.join(gap)} (H100/H200): dcgm-exporter has been reported to give no "
                          f"{' or '.join(obs.FRAMEBUFFER_FIELDS)} per MIG instance on these GPUs "
                          f"({obs.FRAMEBUFFER_GAP_SOURCE}), so their slices' memory use cannot be watched (the "
                          f"dashboard's framebuffer panels stay empty); slice activity (DCGM_FI_PROF_*) is reported")
    rules_ = [r for r in resources if r["type"] == f"kubernetes:{obs.MONITORING_API}:PrometheusRule"]
    alerts = sorted({a for r in rules_ for a in _dig(r["inputs"], "spec.groups[].rules[].alert") if a})
    tested = tested_alerts(ALERT_TESTS, DRA_ALERT_TESTS) if alerts else set()
    untested = [a for a in alerts if a not in tested]
    for a in untested:
        yield finding("observability.alert-tests", "error",
                      f"alert {a} has no promtool unit test that expects it to fire "
                      f"({ALERT_TESTS.relative_to(ALERT_TESTS.parents[2])})")
    if alerts and not untested:
        yield finding("observability.alert-tests", "info",
                      f"{len(alerts)} alerts, each with a promtool unit test that expects it to fire")
    if not mig_pools and not alerts:
        yield finding("observability", "info", "no MIG pools and no alert rules: nothing to check")

check(observability)
