"""What a stack change does to the running GPU fleet: two offline plans compared, before anything merges.

    python -m tools.diff --base Pulumi.dev.yaml|git:<ref> [--config Pulumi.x.yaml | --stack dev] [--json out.json]

Both stacks are planned under the mock engine: the head with the working tree's program, a `git:<ref>` base
with the program as it is at that ref (its files checked out in a temporary worktree, run in a subprocess with
an environment matching its requirements.txt), so a pin bumped in code shows what it does; a stack-file base
with the working tree's program. Every resource whose inputs differ is classified with the cited rules of
`gpu_slicing.changes` (EKS API, Karpenter drift, Kubernetes immutable fields, Pulumi replace semantics; an
input no rule names is `unknown`); every GPU pool gets an impact (none, create, delete, scale, rolling-replace,
blue-green or the dangerous reconfigure-in-place) with its surge, peak cost, P-instance quota and how long its
slices are away; every workload how many pods restart and why; and the GPU cost per hour before, after and at
the peak. What destroys the cluster or its network, collides on a physical name, relabels live MIG nodes,
skips a Kubernetes minor or leaves a step waiting for a slice comes first, in words, and exits 1.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

ROOT_DIR = Path(__file__).resolve().parents[1]
if str(ROOT_DIR) not in sys.path:
    sys.path.insert(0, str(ROOT_DIR))

from gpu_slicing import changes, stack_file  # noqa: E402
from gpu_slicing.capacity import ON_DEMAND_LIST, SPOT_UNPRICED  # noqa: E402
from gpu_slicing.errors import ConfigError  # noqa: E402
from gpu_slicing.labels import MIG_CONFIG_LABEL, POOL_LABEL  # noqa: E402
from policy import rules  # noqa: E402

MNG = "eks:index:ManagedNodeGroup"
CLAIM_TEMPLATE = "kubernetes:resource.k8s.io/v1:ResourceClaimTemplate"
NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
NODECLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
CLUSTER = "eks:index:Cluster"
RELEASE = "kubernetes:helm.sh/v3:Release"
JOB = "kubernetes:batch/v1:Job"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
PROVIDER = "pulumi:providers:kubernetes"
# EKS rolling updates (UpdateNodegroupVersion) raise the Auto Scaling group by the larger of up to twice the
# number of Availability Zones the group spans or maxUnavailable (EKS user guide, managed node update
# behavior); updateStrategy MINIMAL terminates before it launches (botocore's eks model).
EKS_SURGE_PER_AZ = 2
EKS_DEFAULT_MAX_UNAVAILABLE = 1
SURGE_SOURCE = "EKS user guide, managed node update behavior"
IMPACTS = ("none", "create", "delete", "scale", "rolling-replace", "blue-green", "reconfigure-in-place")
# Estimates of how long slices are away (stated in docs/changing-a-running-stack.md): not measurements.
NODE_BOOT_MIN = 5  # EC2 launch to a Ready node (AL2023, large GPU instance, joining the cluster)
MIG_SETUP_MIN = 10  # MIG manager: apply the layout, reboot (WITH_REBOOT on A100), device plugin advertises slices
DEVICE_PLUGIN_MIN = 1  # device plugin restart with a new config (time-slicing, strategy)
# What a replacement of these destroys, and why it is the headline (EKS user guide; terraform-provider-aws).
CRITICAL = {
    CLUSTER: ("THE CLUSTER", "every pool, node and workload in it is destroyed with it (and whatever Kubernetes "
                             "holds that the stack does not own: volumes, load balancers, Secrets)"),
    "aws:ec2/vpc:Vpc": ("THE VPC", "EKS cannot move a cluster to another VPC, so the cluster and everything in it "
                                   "go with it"),
    "aws:ec2/subnet:Subnet": ("A SUBNET", "the nodes and the cluster's network interfaces in it go with it"),
    "aws:ec2/natGateway:NatGateway": ("THE NAT GATEWAY", "private nodes lose their way out (image pulls, AWS APIs) "
                                                         "until the new one is up, under another public address"),
    "aws:ec2/internetGateway:InternetGateway": ("THE INTERNET GATEWAY", "the VPC loses the internet while it is "
                                                                       "detached"),
    "aws:kms/key:Key": ("THE SECRETS KMS KEY", "EKS cannot change the key that encrypts Secrets: the cluster "
                                               "follows it"),
}
CRD_RELEASE_WHY = ("uninstalling the CRDs deletes every NodePool and NodeClaim: every Karpenter node is drained "
                   "and terminated")
CLUSTER_CHILDREN = ("aws:eks/accessEntry:AccessEntry", "aws:eks/addon:Addon",
                    "aws:eks/podIdentityAssociation:PodIdentityAssociation",
                    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation")


@dataclass
class Plan:
    """One stack planned offline: registrations by URN (creation order kept) and the capacity plan."""

    config: dict
    resources: dict[str, dict]
    capacity: dict
    error: str | None = None
    order: list[str] = field(default_factory=list)


def plan(config: Mapping[str, Any], stack: str = "dev") -> Plan:
    from tools.harness import run_program
    from tools.plan import creation_order

    run = run_program(config, stack=stack, preview=True)
    if run.error is not None:
        return Plan(dict(config), {}, {}, error=str(run.error))
    regs = [_fold_children(r) for r in creation_order([r.to_json() for r in run.registrations])]
    return Plan(dict(config), {r["urn"]: r for r in regs}, run.outputs.get("capacity") or {},
                order=[r["urn"] for r in regs])


def _fold_children(r: dict) -> dict:
    """A packaged component's record with what its transforms set on the resource it creates (pulumi-eks's
    ManagedNodeGroup: the EKS node group's `updateConfig`, its ignored `subnetIds`) folded into its own inputs
    and ignoreChanges: that is what EKS is asked for, so that is what a change is judged on."""
    children = (r.get("options") or {}).get("children") or {}
    if not children:
        return r
    inputs, ignored = dict(r["inputs"]), list(r["options"].get("ignoreChanges") or [])
    for child in children.values():
        inputs.update(child.get("inputs") or {})
        ignored += [i for i in child.get("ignoreChanges") or [] if i not in ignored]
    return {**r, "inputs": inputs, "options": {**r["options"], "ignoreChanges": ignored}}


# --- resources ----------------------------------------------------------------------------------------

def leaf_diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Dotted paths where `a` and `b` differ (list items by index; a whole added/removed key is one path)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            p = f"{path}.{k}" if path else str(k)
            if k not in a or k not in b:
                out.append(p)
            else:
                out += leaf_diff(a[k], b[k], p)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += leaf_diff(x, y, f"{path}.{i}" if path else str(i))
        return out
    return [] if a == b else [path]


def _physical(r: dict) -> str | None:
    key = changes.PHYSICAL_NAME.get(r["type"])
    v = r["inputs"].get(key) if key else None
    return v if isinstance(v, str) and v != "<computed>" else None


def _is_system(r: dict) -> bool:
    return r["type"] == MNG and (r["inputs"].get("labels") or {}).get("gpu-slicing/role") == "system"


def _physical_name_note(r: dict, paths: list[str]) -> str:
    key = changes.PHYSICAL_NAME.get(r["type"])
    if not key or key not in r["inputs"] or key in paths or r["options"].get("deleteBeforeReplace"):
        return ""
    if r["type"] == CLUSTER or _is_system(r):
        return (f"; its fixed name {key}={r['inputs'].get(key)!r} is unchanged, so the create-before-delete replace "
                "collides with the running one. Never replace it delete-first (that destroys the running one, "
                "and everything on it, before its successor exists): undo what forces the replace, or build a "
                "second stack beside it and move the workloads")
    return (f"; fixed physical name {key}={r['inputs'].get(key)!r} is unchanged, so a create-before-delete "
            "replace collides with the old one (let the name change, or replace it delete-first)")


def _provider_urn(r: dict) -> str | None:
    return r["provider"].rsplit("::", 1)[0] if r.get("provider") else None


def diff_resources(base: Plan, head: Plan) -> list[dict]:
    """Resources created, deleted, updated (in place or rolling) or replaced, in the order Pulumi runs them:
    creates and updates in the head's dependency order, then deletes in reverse base order. A replace reaches
    what is built from it: inputs taken from its outputs, objects managed through a replaced provider, and
    what EKS deletes with a replaced cluster (access entries, add-ons, pod identity associations)."""
    out: dict[str, dict] = {}
    propagated: dict[str, list[str]] = {}
    forced: dict[str, list[changes.Effect]] = {}
    replaced: set[str] = set()
    new_cluster: set[str] = set()  # replaced because the cluster they live in is replaced
    gone_clusters = {r["inputs"].get("name") for u, r in base.resources.items()
                     if r["type"] == CLUSTER and u not in head.resources}
    for urn in head.order:
        r = head.resources[urn]
        if not (r["custom"] or r["remote"]):
            continue
        old = base.resources.get(urn)
        if old is None:
            out[urn] = _entry(r, "create", [], [])
            continue
        if _provider_urn(r) in new_cluster:
            forced.setdefault(urn, []).append(changes.Effect(
                changes.REPLACE, "its provider is replaced: the object is created anew in the new cluster",
                "(provider)"))
            new_cluster.add(urn)
        cluster_name = r["inputs"].get("clusterName")
        if r["type"] in CLUSTER_CHILDREN and (cluster_name in gone_clusters or any(
                base.resources[c]["inputs"].get("name") == cluster_name for c in replaced
                if base.resources.get(c, {}).get("type") == CLUSTER)):
            forced.setdefault(urn, []).append(changes.Effect(
                changes.REPLACE, "EKS deletes it with its cluster, which is replaced", "clusterName"))
            new_cluster.add(urn)
        ignored = r["options"].get("ignoreChanges") or ()  # Pulumi keeps the old value of these inputs
        # an ignored input keeps its old value even when what it was computed from is replaced
        paths = [p for p in leaf_diff(old["inputs"], r["inputs"]) + propagated.get(urn, [])
                 if not any(p.split(" ")[0] == i or p.split(" ")[0].startswith(i + ".") for i in ignored)]
        extra = forced.get(urn, [])
        if not paths and not extra:
            continue
        roc = r["options"].get("replaceOnChanges") or ()
        effects = [changes.classify(r["type"], p.split(" ")[0], roc) for p in paths]
        if r["type"] == NODEPOOL and effects and all(p.startswith(changes.REQUIREMENTS) for p in paths):
            effects = [changes.requirements_effect(_dig(old, changes.REQUIREMENTS) or [],
                                                   _dig(r, changes.REQUIREMENTS) or [])]
        effects += extra
        worst = changes.worst(effects)
        op = "replace" if worst == changes.REPLACE else "update"
        entry = _entry(r, op, paths + [e.path for e in extra], effects, rolls=worst == changes.ROLL)
        unknown = [e.path for e in effects if e.effect == changes.UNKNOWN]
        if unknown and op != "replace":  # replaced anyway: what the unknown input does no longer matters
            entry["unknown"] = unknown
        if worst == changes.INTERRUPT:
            entry["interrupts"] = True
        if op == "replace":
            replaced.add(urn)
            inside = urn in new_cluster
            if inside or r["type"] == CLUSTER:
                new_cluster.add(urn)
                entry["newCluster"] = inside
            if not inside and _physical(r) and _physical(r) == _physical(old):
                note = _physical_name_note(r, paths)
                entry["why"] += note
                entry["collides"] = bool(note)
        out[urn] = entry
        # what this change does to the inputs of resources built from it
        if op == "replace" or r["type"] in changes.UPDATE_CHANGES_OUTPUT:
            for d in head.order:
                for prop, deps in (head.resources[d].get("propertyDependencies") or {}).items():
                    if urn in deps and (op == "replace" or prop == changes.UPDATE_CHANGES_OUTPUT.get(r["type"])):
                        propagated.setdefault(d, []).append(f"{prop} (from {r['name']})")
                        if urn in new_cluster:
                            new_cluster.add(d)
    deletes = [u for u in reversed(base.order) if u not in head.resources
               and (base.resources[u]["custom"] or base.resources[u]["remote"])]
    created = {(r["type"], _physical(head.resources[u])): u for u, r in out.items() if r["op"] == "create"}
    for urn in deletes:
        old = base.resources[urn]
        out[urn] = _entry(old, "delete", [], [])
        inside = bool(gone_clusters) and (old["type"].startswith("kubernetes:") or old["type"] in (MNG, *CLUSTER_CHILDREN))
        if inside:  # it goes with its cluster; a namesake in the new cluster does not collide with it
            out[urn]["newCluster"] = True
            continue
        twin = created.get((old["type"], _physical(old))) if _physical(old) else None
        if twin:  # a new resource under the old one's name, created before the old one is deleted
            out[twin]["collides"] = True
            out[twin]["why"] = (f"created under the physical name {_physical(old)!r} that {old['name']} still holds "
                                "(Pulumi creates before it deletes): the create fails")
    return list(out.values())


def _dig(r: dict | None, path: str) -> Any:
    """The input at a dotted `path` of a recorded resource (list items by index), as the policy rules read it."""
    return rules.dig((r or {}).get("inputs"), *(int(p) if p.isdigit() else p for p in path.split(".")))


def _entry(r: dict, op: str, paths: list[str], effects: list, rolls: bool = False) -> dict:
    why = ""
    if effects:
        decisive = [e for e in effects if e.effect == changes.worst(effects)]
        why = "; ".join(dict.fromkeys(f"{e.path}: {e.source}" for e in decisive))
    elif op == "create":
        why = "new in the head stack"
    elif op == "delete":
        why = "not in the head stack (Pulumi deletes it after the creates and updates)"
    entry = {"urn": r["urn"], "type": r["type"], "name": r["name"], "op": op, "changed": paths, "why": why}
    if rolls:
        entry["rolls"] = True
    return entry


# --- the headline: what destroys the cluster or its network ---------------------------------------------

def headlines(base: Plan, head: Plan, resources: list[dict]) -> list[dict]:
    """What must be read first, in words, the cluster first: a replaced (or deleted) cluster, VPC, subnets, NAT
    or internet gateway, KMS key or Karpenter CRD release; any collision on a physical name; a replaced system
    node group. `fatal` ones make `make diff` fail. What goes only because the cluster it lives in is replaced
    is said by the cluster's line, not again."""
    out: list[dict] = []
    by_type: dict[str, list[dict]] = {}
    for r in resources:
        if r["type"] in CRITICAL and (r["op"] in ("replace", "delete") or r.get("interrupts")):
            by_type.setdefault(r["type"], []).append(r)
    for rtype in CRITICAL:
        hit = by_type.get(rtype, [])
        if not hit:
            continue
        what, consequence = CRITICAL[rtype]
        new = next((x for x in resources if x["type"] == CLUSTER and x["op"] == "create"), None)
        verbs = {r["op"] if not r.get("interrupts") else "detach" for r in hit}
        if rtype == CLUSTER and new and verbs == {"delete"}:
            out.append({"fatal": True, "urn": hit[0]["urn"], "text": (
                f"{what} IS REPLACED ({hit[0]['name']} is destroyed, {new['name']} created): {consequence}")})
            continue
        verb = ("IS DETACHED FROM ITS RUNNING VPC" if verbs == {"detach"}
                else "IS DELETED" if verbs == {"delete"} else "IS REPLACED")
        if len(hit) > 1:
            what = what.replace("A SUBNET", "SUBNETS").replace("THE ", "")
            verb, consequence = verb.replace("IS ", "ARE "), consequence.replace(" it", " them")
        collide = [r for r in hit if r.get("collides")]
        text = (f"{what} {verb} ({', '.join(r['name'] for r in hit)}): {consequence}"
                + ("; under its unchanged name the create-before-delete replace COLLIDES and `pulumi up` fails. "
                   "Never replace it delete-first (that destroys the running one before its successor exists): undo "
                   "what forces the replace, or build a second stack beside it and move the workloads"
                   if collide and rtype == CLUSTER else ""))
        out.append({"fatal": True, "text": text, "urn": hit[0]["urn"]})
    for r in resources:
        if r.get("newCluster") or r["type"] in CRITICAL:
            continue
        if r["type"] == RELEASE and r["op"] in ("replace", "delete") and _is_crd_release(base, r["urn"]):
            out.append({"fatal": True, "text": f"THE KARPENTER CRD RELEASE IS {r['op'].upper()}D ({r['name']}): "
                                               f"{CRD_RELEASE_WHY}", "urn": r["urn"]})
        elif r["type"] == MNG and r["op"] == "replace" and _is_system(head.resources.get(r["urn"]) or {}):
            out.append({"fatal": bool(r.get("collides")), "urn": r["urn"], "text": (
                f"THE SYSTEM NODE GROUP IS REPLACED ({r['name']}): every controller on it (Karpenter, CoreDNS, the "
                "GPU Operator's operator) moves to new nodes"
                + ("; under its unchanged EKS name the create-before-delete replace COLLIDES and `pulumi up` fails. "
                   "Never replace it delete-first (every controller would stop with no node to go to): undo what "
                   "forces the replace" if r.get("collides") else ""))})
        elif r.get("collides"):
            out.append({"fatal": True, "urn": r["urn"],
                        "text": f"REPLACE COLLIDES ({r['type'].split(':')[-1]} {r['name']}): {r['why']}"})
    return out


def _is_crd_release(base: Plan, urn: str) -> bool:
    r = base.resources.get(urn)
    return bool(r) and "karpenter-crd" in json.dumps(r["inputs"].get("chart", "")) + str(r["inputs"].get("name"))


def cluster_replaced(resources: list[dict]) -> bool:
    return any(r["type"] == CLUSTER and r["op"] in ("replace", "delete") for r in resources)


# --- pools ----------------------------------------------------------------------------------------------

def _pools(p: Plan) -> dict[str, dict]:
    return {c["name"]: c for c in p.capacity.get("pools", [])}


def _find(p: Plan, rtype: str, pred) -> dict | None:
    return next((r for r in p.resources.values() if r["type"] == rtype and pred(r)), None)


def _node_group(p: Plan, pool: str) -> dict | None:
    return _find(p, MNG, lambda r: (r["inputs"].get("tags") or {}).get(POOL_LABEL) == pool)


def _k8s_named(p: Plan, rtype: str, name: str) -> dict | None:
    return _find(p, rtype, lambda r: (r["inputs"].get("metadata") or {}).get("name") == name)


def running_nodes(pool: dict | None) -> int:
    """Nodes a pool runs: a node group's desiredSize (nothing scales it, docs/facts.md §10); for a NodePool the
    nodes Karpenter launches for the planned workloads."""
    if not pool:
        return 0
    return int(pool["nodes"]["willExist"])


def price(pool: dict | None) -> float:
    """USD per node-hour of the instance type the pool runs (the capacity plan's figure: the stack's
    pricePerHour overrides, and for a NodePool the type Karpenter launches)."""
    return float(pool["launch"]["usdPerNodeHour"]) if pool else 0.0


def _vcpus(pool: dict | None) -> int:
    from gpu_slicing import catalog

    it = catalog.INSTANCE_TYPES.get((pool or {}).get("launch", {}).get("instanceType", ""))
    return it.vcpu if it else 0


def _p_family(pool: dict | None) -> bool:
    return (pool or {}).get("launch", {}).get("instanceType", "").startswith("p")


def _quota_name(pool: dict | None) -> str:
    """The EC2 running-instances vCPU quota the pool's type counts against (EC2 quotas by family)."""
    t = (pool or {}).get("launch", {}).get("instanceType", "")
    return "P" if t.startswith("p") else "G and VT" if t.startswith(("g", "vt")) else "Standard"


def surge_of(ng: dict) -> tuple[int, str, int]:
    """(extra nodes EKS launches at once, the strategy in words, zones spanned) for a managed node group's
    rolling update, from the `updateConfig` it is registered with (absent: maxUnavailable 1, DEFAULT)."""
    raw = ng["inputs"].get("updateConfig") or ng["inputs"].get("update_config") or {}
    uc = {k.replace("_", "").lower(): v for k, v in raw.items()} if isinstance(raw, dict) else {}
    subnets = ng["inputs"].get("subnetIds")
    zones = len(subnets) if isinstance(subnets, list) and subnets else 3  # unknown at preview: a region's usual 3
    desired = int(((ng["inputs"].get("scalingConfig") or {}).get("desiredSize")) or 1)
    pct = uc.get("maxunavailablepercentage")
    unavailable = int(uc.get("maxunavailable") or (-(-int(pct) * desired // 100) if pct else 0)
                      or EKS_DEFAULT_MAX_UNAVAILABLE)
    if str(uc.get("updatestrategy") or "DEFAULT").upper() == "MINIMAL":
        return 0, (f"updateStrategy MINIMAL: up to {unavailable} node(s) terminated before their replacements "
                   "launch (no surge, no extra quota; the slices are away for a whole boot and MIG setup)"), zones
    surge = max(EKS_SURGE_PER_AZ * zones, unavailable)
    return surge, (f"updateStrategy DEFAULT{'' if uc else ' (no updateConfig)'}: EKS raises the group by up to "
                   f"{surge} node(s) (twice the {zones} zone(s) it spans, or maxUnavailable {unavailable}, the "
                   f"larger; {SURGE_SOURCE})"), zones


def diff_pools(base: Plan, head: Plan, resources: list[dict]) -> list[dict]:
    by_urn = {r["urn"]: r for r in resources}
    bp, hp = _pools(base), _pools(head)
    cluster_upgrade = next((r for r in resources if r["type"] == CLUSTER and "version" in r["changed"]), None)
    whole_cluster = cluster_replaced(resources)
    plugin = [p for r in resources if r["type"] == RELEASE and r["op"] == "update" and "gpu-operator" in r["name"]
              for p in r["changed"] if p.startswith(("values.mig.strategy", "values.devicePlugin"))]
    out = []
    for name in list(dict.fromkeys([*hp, *bp])):
        b, h = bp.get(name), hp.get(name)
        kind = (h or b)["kind"]
        before, after = running_nodes(b), running_nodes(h)
        pb, ph = price(b), price(h)
        entry = {"name": name, "kind": kind, "impact": "none", "nodes": before, "nodesAfter": after,
                 "layout": {"before": b and b["layout"], "after": h and h["layout"]}, "why": "",
                 "cost": {"before": round(before * pb, 2), "after": round(after * ph, 2)},
                 "peakNodes": max(before, after), "slicesAway": "",
                 "priceBasis": (h or b).get("priceBasis") or ON_DEMAND_LIST}
        peak = max(before * pb, after * ph)
        if b is None:
            entry.update(impact="create", why=f"new {kind}: {after} node(s) of {h['instanceType']} in {h['layout']}")
        elif whole_cluster:
            entry.update(impact="delete", peakNodes=before + after, why=(
                f"THE CLUSTER IS REPLACED: the pool's {before} node(s) are destroyed with it"
                + (f"; the pool is created again in the new cluster ({after} node(s), which boot into "
                   f"{h['layout']})" if h else "")),
                slicesAway=f"every slice, from the old cluster's end until the new pool's nodes boot and set up "
                           f"MIG (~{NODE_BOOT_MIN + MIG_SETUP_MIN} min after the new cluster exists)")
            peak = before * pb + after * ph
        elif h is None:
            entry.update(impact="delete", why=f"{kind} removed: its {before} node(s) are drained, then terminated "
                                              "(after the head's creates)")
            peak = before * pb
        elif kind == "nodeGroup":
            peak = _node_group_impact(entry, _node_group(base, name), _node_group(head, name), by_urn, b, h)
        else:
            peak = _node_pool_impact(entry, base, head, name, by_urn, cluster_upgrade, b, h)
        if b and h and b.get("perNode") != h.get("perNode"):
            entry["slicesPerNode"] = {"before": b.get("perNode"), "after": h.get("perNode")}
        if entry["impact"] == "none" and plugin and h is not None:
            entry.update(why=f"GPU Operator values changed ({', '.join(plugin)}): the device plugin on the pool's "
                             "nodes restarts with the new config and advertises its slices anew; running pods keep "
                             "their devices", slicesAway=f"new pods wait ~{DEVICE_PLUGIN_MIN} min while the device "
                                                         "plugin restarts")
        entry["cost"]["peak"] = round(peak, 2)
        pool = h or b
        entry["quota"] = {"vcpus": entry["peakNodes"] * _vcpus(pool), "pInstances": _p_family(pool),
                          "family": _quota_name(pool)}
        out.append(entry)
    return out


def _node_group_impact(entry: dict, old: dict | None, new: dict | None, by_urn: dict, b: dict, h: dict) -> float:
    before, after = entry["nodes"], entry["nodesAfter"]
    pb, ph = price(b), price(h)
    low = max(before * pb, after * ph)
    if old is None or new is None:
        return low
    if old["urn"] != new["urn"] or (by_urn.get(new["urn"]) or {}).get("op") == "replace":
        # a node group under a new URN is a create beside a delete: no change of its own to name
        r = by_urn[new["urn"]] if old["urn"] == new["urn"] else {"changed": ["its Pulumi resource name"],
                                                                 "why": "a new URN"}
        if new["options"].get("deleteBeforeReplace"):
            entry.update(impact="rolling-replace", why=f"node group replaced delete-first ({r['why']}): its "
                                                       f"{before} node(s) drain before new ones exist",
                         slicesAway=f"every slice of the pool for ~{NODE_BOOT_MIN + MIG_SETUP_MIN} min (boot and "
                                    "MIG setup of the new nodes)")
            return low
        old_name, new_name = old["inputs"].get("nodeGroupName"), new["inputs"].get("nodeGroupName")
        entry["peakNodes"] = before + after
        if old_name == new_name:
            entry.update(impact="blue-green", collides=True, why=(
                f"node group replaced ({', '.join(r['changed'])}) under the same EKS name {new_name}: the "
                "create-before-delete replace collides with the live group and `pulumi up` fails; change what "
                "the name's token covers (instance type, capacity type, AMI type, layout) or replace delete-first"))
            return before * pb + after * ph
        entry.update(impact="blue-green", why=(
            f"new node group {new_name} ({after} x {h['instanceType']}, {h['layout']}) is created and ready before "
            f"EKS drains and deletes {old_name} ({before} node(s), {b['layout']}): new nodes boot straight into "
            f"their layout; changed {', '.join(r['changed'])}"),
            slicesAway=f"pods moved off the old group wait up to ~{MIG_SETUP_MIN} min (EKS calls a node Ready "
                       "before the MIG manager has set up and rebooted into its layout)")
        return before * pb + after * ph
    r = by_urn.get(new["urn"])
    if r is None:
        return low
    labels = [p for p in r["changed"] if p.startswith("labels")]
    mig = [p for p in labels if p.endswith(MIG_CONFIG_LABEL) or p == "labels"]
    if mig and (old["inputs"].get("labels") or {}).get(MIG_CONFIG_LABEL) != \
            (new["inputs"].get("labels") or {}).get(MIG_CONFIG_LABEL):
        entry.update(impact="reconfigure-in-place", why=(
            f"DANGER: {MIG_CONFIG_LABEL} changes from {b['layout']} to {h['layout']} on {before} LIVE node(s) "
            "in place (EKS UpdateNodegroupConfig relabels running nodes); the MIG manager does not drain, so nodes "
            "with GPU pods end in mig.config.state=failed or pending (NVIDIA/gpu-operator#2833). Cordon and drain "
            "them first, or let the node group be replaced (migLayoutChange: replace)"),
            slicesAway="until the nodes are drained by hand and the MIG manager succeeds")
        return low
    if r.get("rolls"):
        surge, how, _ = surge_of(new)
        rolled = ", ".join(p for p in r["changed"] if changes.classify(MNG, p.split(" ")[0]).effect == changes.ROLL)
        entry.update(impact="rolling-replace", peakNodes=max(before, after) + surge, why=(
            f"{rolled}: EKS UpdateNodegroupVersion replaces the {before} node(s); {how}"),
            slicesAway=(f"each replaced node's slices for ~{NODE_BOOT_MIN + MIG_SETUP_MIN} min (boot, then MIG "
                        "setup with its reboot)" if surge == 0 else
                        f"pods evicted from old nodes wait ~{MIG_SETUP_MIN} min on new ones (EKS calls a node Ready "
                        "before its MIG layout is applied)"))
        return (max(before, after) + surge) * ph
    if any(p.startswith("scalingConfig") for p in r["changed"]) and before != after:
        entry.update(impact="scale", why=f"desiredSize {before} -> {after} (in place, UpdateNodegroupConfig)"
                     + ("; removed nodes are drained" if after < before else ""))
        return low
    entry["why"] = "changed in place, no node replaced: " + ", ".join(r["changed"])
    if any(p.endswith("device-plugin.config") for p in labels):
        entry["slicesAway"] = (f"new pods wait ~{DEVICE_PLUGIN_MIN} min: the live nodes' label changes in place "
                               "(UpdateNodegroupConfig) and the device plugin switches to the new sharing config; "
                               "running pods keep their devices")
    return low


_DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")


def _minutes(d: str) -> int:
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?", d or "")
    return int(m.group(1) or 0) * 60 + int(m.group(2) or 0) if m else 0


def _at(minute: int, weekly: bool) -> str:
    day, rest = divmod(minute % (7 * 1440 if weekly else 1440), 1440)
    return (f"{_DAYS[day]} " if weekly else "") + f"{rest // 60:02d}:{rest % 60:02d}"


def _drift_budgets(np: dict | None) -> tuple[list[dict], list[dict]]:
    """A NodePool's budgets that apply to drift: (always active, scheduled)."""
    budgets = [b for b in (_dig(np, "spec.disruption.budgets") or [])
               if not b.get("reasons") or "Drifted" in b["reasons"]]
    return [b for b in budgets if not b.get("schedule")], [b for b in budgets if b.get("schedule")]


def drift_pace(np: dict | None) -> int:
    """How many drifted nodes Karpenter replaces at once (each replacement launched before its old node goes):
    the NodePool's always-active Drifted budget (a count, or a percentage taken as at least one node);
    without one, Karpenter's default budget of 10%, at least one."""
    always, _ = _drift_budgets(np)
    nodes = str(always[0]["nodes"]) if always else "10%"
    return max(1, int(nodes)) if nodes.isdigit() else 1


def drift_window(np: dict | None) -> str:
    """The NodePool's Drifted budgets in words: how many drifted nodes go at a time, and when (a `nodes: "0"`
    scheduled budget closes the rest of the day or week, as gpu_slicing.karpenter writes the window)."""
    always, scheduled = _drift_budgets(np)
    pace = ({"0": "never", "1": "one at a time"}.get(str(always[0]["nodes"]), f"{always[0]['nodes']} at a time")
            if always else "10% at a time (Karpenter's default budget)")
    closed = [b for b in scheduled if str(b.get("nodes")) == "0"]
    if not closed:
        return f"drifted nodes are replaced {pace}, at any time"
    b = closed[0]
    m = re.fullmatch(r"(\d+) (\d+) \* \* (\*|[0-6])", b["schedule"])
    if not m:
        return f"drifted nodes are replaced {pace}, except during {b['schedule']} for {b.get('duration')}"
    weekly = m.group(3) != "*"
    start = (int(m.group(3)) * 1440 if weekly else 0) + int(m.group(2)) * 60 + int(m.group(1))
    period = 7 * 1440 if weekly else 1440
    opens, shuts = _at(start + _minutes(b.get("duration", "")), weekly), _at(start + period, weekly)
    if weekly and opens[:3] == shuts[:3]:
        shuts = shuts[4:]
    return f"drifted nodes are replaced {pace}, only {'' if weekly else 'daily '}{opens}-{shuts} UTC"


def _node_pool_impact(entry: dict, base: Plan, head: Plan, name: str, by_urn: dict, cluster_upgrade: dict | None,
                      b: dict, h: dict) -> float:
    before, after = entry["nodes"], entry["nodesAfter"]
    pb, ph = price(b), price(h)
    low = max(before * pb, after * ph)
    np_new, nc_new = _k8s_named(head, NODEPOOL, name), _k8s_named(head, NODECLASS, name)
    np_old = _k8s_named(base, NODEPOOL, name)
    crd = next((r for r in by_urn.values() if r["type"] == RELEASE and r["op"] in ("replace", "delete")
                and _is_crd_release(base, r["urn"])), None)
    if crd:
        entry.update(impact="delete", why=f"the Karpenter CRD release {crd['name']} is {crd['op']}d: {CRD_RELEASE_WHY}",
                     peakNodes=before + after)
        return before * pb + after * ph
    reasons = []
    for res in (np_new, nc_new):
        r = by_urn.get(res["urn"]) if res else None
        if r and r["op"] == "replace":
            entry.update(impact="delete", why=f"{r['name']} is replaced (delete, then create): every node of the "
                                              f"pool is drained ({r['why']})", peakNodes=before + after)
            return before * pb + after * ph
        if r and r.get("rolls"):
            reasons += [p for p in r["changed"] if p.startswith(changes.REQUIREMENTS)
                        or changes.classify(r["type"], p.split(" ")[0]).effect == changes.ROLL]
        elif r and any(p.startswith(changes.REQUIREMENTS) for p in r["changed"]):
            entry["why"] = f"requirements widened: {changes.WIDENED}"
    if np_old and np_new and np_old["urn"] != np_new["urn"]:
        entry.update(impact="delete", why="NodePool moved to a new resource: deleted (every node drained) and "
                                          "created again", peakNodes=before + after)
        return before * pb + after * ph
    if cluster_upgrade and nc_new and any("alias" in t for t in (nc_new["inputs"].get("spec") or {}).get(
            "amiSelectorTerms", [{}])[0]):
        reasons.append("cluster version (the al2023@ alias resolves to the new Kubernetes version's AMI, after the "
                       "control plane)")
    if reasons:
        extra = min(drift_pace(np_new), before)
        entry.update(impact="rolling-replace", peakNodes=max(before, after) + extra, why=(
            f"drift: {', '.join(reasons)}; Karpenter replaces the pool's {before} node(s), launching each "
            f"replacement before it drains the old node; {drift_window(np_new)} (Karpenter docs, disruption)"),
            slicesAway="none beyond a pod restart: Karpenter drains a drifted node only once its replacement is "
                       "initialized with the slices its pods request")
        return low + extra * ph
    if before != after:
        entry.update(impact="scale", why=f"Karpenter launches for the workloads: {before} -> {after} node(s)")
    return low


# --- workloads ------------------------------------------------------------------------------------------------

def _fit(w: dict | None) -> str:
    if w is None:
        return "absent"
    return "fits" if w.get("fits") else "pending"


def _gpu_limits(d: dict | None) -> set[str]:
    limits = _dig(d, "spec.template.spec.containers.0.resources.limits") if d else None
    return {k for k in (limits or {}) if k.startswith("nvidia.com/")}


def _restart_reasons(old: dict | None, new: dict | None, r: dict | None) -> list[str]:
    """Why a Deployment's running pods are replaced, from what changed in its pod template."""
    if r is None or old is None or new is None or r.get("newCluster"):
        return []  # an object recreated in a new cluster: its pool's line says why its pods go
    if r["op"] == "replace":
        return [f"Deployment replaced ({r['why']})"]
    out = []
    paths = [p for p in r["changed"] if p.startswith("spec.template")]
    renamed = _gpu_limits(old) != _gpu_limits(new)
    if renamed:
        out.append(f"resource renamed {', '.join(sorted(_gpu_limits(old)))} -> {', '.join(sorted(_gpu_limits(new)))}")
    image = "spec.template.spec.containers.0.image"  # the workload's own container; another is "pod template"
    if image in paths:
        out.append(f"image {_dig(old, image)} -> {_dig(new, image)}")
    if any(".nodeSelector" in p for p in paths):
        out.append("nodeSelector")
    # any other template change rolls the pods too (a new ReplicaSet), a slice count or a CPU limit included;
    # only the renamed slice resources' own paths are said above
    rest = [p for p in paths if p != image and ".nodeSelector" not in p
            and not (renamed and ".resources." in p and "nvidia.com/" in p)]
    if rest:
        out.append("pod template: " + ", ".join(rest))
    return out


def diff_workloads(base: Plan, head: Plan, resources: list[dict], pools: list[dict]) -> list[dict]:
    bw = {w["name"]: w for w in base.capacity.get("workloads", [])}
    hw = {w["name"]: w for w in head.capacity.get("workloads", [])}
    by_urn = {r["urn"]: r for r in resources}
    impact = {p["name"]: p for p in pools}
    whole_cluster = cluster_replaced(resources)
    out = []
    for name in dict.fromkeys([*hw, *bw]):
        b, h = bw.get(name), hw.get(name)
        entry: dict[str, Any] = {"name": name, "before": _fit(b), "after": _fit(h),
                                 "pool": {"before": b and b["pools"], "after": h and h["pools"]}}
        if b != h and h is not None:
            entry["message"] = h.get("message")
        old, new = _k8s_named(base, DEPLOYMENT, name), _k8s_named(head, DEPLOYMENT, name)
        replicas = _dig(old, "spec.replicas") if old else 0
        running = 1 if replicas is None else int(replicas)  # apps/v1 DeploymentSpec: replicas defaults to 1
        why = _restart_reasons(old, new, by_urn.get(new["urn"]) if new else None)
        claims = [by_urn[d] for d in (new or {}).get("dependencies") or []
                  if d in by_urn and by_urn[d]["type"] == CLAIM_TEMPLATE and by_urn[d]["op"] == "replace"]
        if claims and old is not None and new is not None:  # their claims were made from the old template
            entry["staleClaims"] = {"pods": running, "templates": [c["name"] for c in claims]}
        for pool in (b or {}).get("pools") or []:
            p = impact.get(pool)
            if p and p["impact"] in ("rolling-replace", "blue-green", "delete", "reconfigure-in-place"):
                why.insert(0, "the cluster is replaced: destroyed with it, created again in the new one"
                           if whole_cluster else f"node replaced ({p['impact']} of {pool})"
                           if p["impact"] != "reconfigure-in-place" else f"MIG layout changed under them on {pool}")
        entry["restarts"] = running if why and new is not None else 0
        entry["restartWhy"] = why if new is not None else []
        if old is not None and new is None:
            entry["stops"] = running
        out.append(entry)
    return out


# --- the verification Job ---------------------------------------------------------------------------------------

def verification(head: Plan, resources: list[dict], pools: list[dict]) -> list[dict]:
    """Every verification Job this change (re)runs: what it needs, and whether a slice is free for it when it
    runs (before the Deployments it guards are updated): new nodes, or a slice the plan leaves unused. A Job
    asking a full pool's running nodes for a slice waits until its await times out: `blocked`."""
    out = []
    impact = {p["name"]: p for p in pools}
    for r in resources:
        if r["type"] != JOB or r["op"] not in ("create", "replace"):
            continue
        job = head.resources[r["urn"]]
        spec = _dig(job, "spec.template.spec") or {}
        limits = (((spec.get("containers") or [{}])[0].get("resources") or {}).get("limits") or {})
        res = next((k for k in limits if k.startswith("nvidia.com/")), None)
        if res is None:  # a Job that asks for no slice never waits for one
            continue
        need = int(limits[res])
        pool = (spec.get("nodeSelector") or {}).get(POOL_LABEL)
        p = impact.get(pool)
        cap = next((c for c in head.capacity.get("pools", []) if c["name"] == pool), {})
        use = ((cap.get("utilization") or {}).get("resources") or {}).get(res, {})
        free = int(use.get("available", 0)) - int(use.get("requested", 0))
        new_nodes = p is not None and p["impact"] in ("create", "blue-green", "delete") and bool(p["nodesAfter"])
        karpenter = p is not None and p["kind"] == "nodePool"
        blocked = not new_nodes and not karpenter and free < need
        where = ("new nodes (free until the Deployments move)" if new_nodes else
                 "a node Karpenter launches if no slice is free" if karpenter else
                 f"{free} free {res} on the running nodes")
        out.append({"job": r["name"], "pool": pool, "needs": f"{need} x {res}", "blocked": blocked,
                    "text": f"Job {r['name']} ({r['op']}) runs before the Deployments it guards and needs "
                            f"{need} x {res} on {pool}: {where}"
                            + (": every slice is held by running pods, so it stays Pending and `pulumi up` waits "
                               "until its await times out" if blocked else "")})
    return out


# --- layouts, requirements, upgrade ------------------------------------------------------------------------------

def _mig_configs(p: Plan) -> dict | None:
    cm = _find(p, "kubernetes:core/v1:ConfigMap", lambda r: "config.yaml" in (r["inputs"].get("data") or {})
               and "mig-configs" in r["inputs"]["data"]["config.yaml"])
    return None if cm is None else (yaml.safe_load(cm["inputs"]["data"]["config.yaml"]) or {}).get("mig-configs") or {}


def dropped_layouts(base: Plan, head: Plan, pools: list[dict]) -> dict[str, list]:
    """Layout labels live nodes carry in the base that the head's mig-parted config no longer holds: the
    nodes keep them until they are replaced or drained (after the config changes), and a MIG manager
    restarting there must still find them. A head without our ConfigMap runs the operator's own config,
    which has only the named layouts: a custom label is dropped then too. Returns label -> base entries,
    the `retainedMigLayouts` block."""
    from gpu_slicing import catalog, layouts

    b, h = _mig_configs(base), _mig_configs(head)
    out: dict[str, list] = {}
    for p in pools:
        label = p["layout"]["before"]
        if not p["nodes"] or not label or (h is not None and label in h):
            continue
        if b and label in b:
            it = catalog.INSTANCE_TYPES.get(_pools(base)[p["name"]]["instanceType"])
            if h is None and it and label in catalog.named_layouts(it.gpu):
                continue  # the operator's own config has it
            out[label] = b[label]
            continue
        if h is None:
            continue
        # a named layout the base took from the operator's own config: its entries for the pool's GPU
        it = catalog.INSTANCE_TYPES.get(_pools(base)[p["name"]]["instanceType"])
        named = catalog.named_layouts(it.gpu).get(label) if it else None
        if named is not None:
            out[label] = layouts.mig_parted_configs([named])[label]
    return dict(sorted(out.items()))


def removed_retained(base: Plan, head: Plan) -> list[str]:
    """Entries kept for nodes that may still carry them (the base's retainedMigLayouts: in its ConfigMap, used
    by none of its pools) that the head drops."""
    b, h = _mig_configs(base) or {}, _mig_configs(head) or {}
    used = {p["layout"] for p in base.capacity.get("pools", [])} | {"all-disabled"}
    return sorted(label for label in b if label not in used and label not in h)


def upgrade_path(resources: list[dict], pools: list[dict]) -> list[str]:
    """The Kubernetes upgrade as it runs: the control plane, then the node groups (they depend on the
    cluster, so Pulumi updates them after it), then Karpenter's nodes, which drift once the control plane is
    at the new version (the al2023@ alias resolves per version), inside their disruption budgets."""
    cluster = next((r for r in resources if r["type"] == CLUSTER and "version" in r["changed"]), None)
    if cluster is None:
        return []
    steps = [f"1. control plane {cluster['name']}: EKS UpdateClusterVersion (in place)"]
    groups = [r["name"] for r in resources if r["type"] == MNG and r.get("rolls")
              and any(p.startswith("version") for p in r["changed"])]
    steps.append(f"2. node groups, after the control plane: {', '.join(groups) or 'none roll'}"
                 + (" (EKS UpdateNodegroupVersion)" if groups else ""))
    drift = [p["name"] for p in pools if p["kind"] == "nodePool" and p["impact"] == "rolling-replace"]
    steps.append(f"3. Karpenter nodes drift to the new version's AMI: {', '.join(drift) or 'none'}")
    return steps


def version_change(base: Plan, head: Plan) -> dict | None:
    """The control plane's Kubernetes version before and after, EKS's refusal if any, and its price."""
    from gpu_slicing import calendar

    b = next((r for r in base.resources.values() if r["type"] == CLUSTER), None)
    h = next((r for r in head.resources.values() if r["type"] == CLUSTER), None)
    if not b or not h:
        return None
    vb, vh = b["inputs"].get("version"), h["inputs"].get("version")
    if vb not in calendar.BY_MINOR or vh not in calendar.BY_MINOR:
        return None
    return {"before": vb, "after": vh,
            "refused": calendar.upgrade_refusal(vb, vh) if b["urn"] == h["urn"] and b["inputs"].get("name") ==
            h["inputs"].get("name") else None,
            "controlPlane": {"before": calendar.control_plane_usd_per_hour(vb),
                             "after": calendar.control_plane_usd_per_hour(vh)},
            "calendar": calendar.describe(vh)}


def warnings(base: Plan, head: Plan, resources: list[dict]) -> list[str]:
    out = [f"retainedMigLayouts entry {label} is removed: a node still carrying it (check `kubectl get nodes -L "
           "nvidia.com/mig.config`) ends in mig.config.state=failed when its MIG manager restarts; remove it only "
           "once no node shows it" for label in removed_retained(base, head)]
    for urn, r in head.resources.items():
        old = base.resources.get(urn)
        ignored = [i for i in r["options"].get("ignoreChanges") or () if old and r["type"] == MNG
                   and old["inputs"].get(i) != r["inputs"].get(i)]
        if ignored:
            out.append(f"node group {r['name']} keeps its {', '.join(ignored)} (fixed at creation, so that a changed "
                       "zone lookup never replaces it under its own name): the new value does not reach it; to move "
                       "it, rename the node group (a new group, created before the old one drains)")
    for r in resources:
        if r.get("unknown"):
            out.append(f"UNKNOWN effect: {r['type']} {r['name']}: {', '.join(r['unknown'])}: {changes.NO_RULE}")
        if r["type"] == NODEPOOL and any(p.startswith(changes.REQUIREMENTS) for p in r["changed"]):
            out.append(f"NodePool {r['name']}: requirements " + (
                "narrowed: nodes outside them drift and are replaced" if r.get("rolls")
                else "widened: no node drifts (running nodes still match)"))
    return out


def compare(base: Plan, head: Plan) -> dict:
    resources = diff_resources(base, head)
    pools = diff_pools(base, head, resources)
    version = version_change(base, head)
    cp = version["controlPlane"] if version else {"before": 0.0, "after": 0.0}
    cost = {"before": round(sum(p["cost"]["before"] for p in pools), 2),
            "after": round(sum(p["cost"]["after"] for p in pools), 2),
            "peak": round(sum(p["cost"]["peak"] for p in pools), 2)}
    quota = sum(p["quota"]["vcpus"] for p in pools if p["quota"]["pInstances"])
    head_lines = headlines(base, head, resources)
    if version and version["refused"]:
        head_lines.insert(0, {"fatal": True, "urn": "", "text": f"EKS REFUSES THIS UPGRADE: {version['refused']}"})
    regions = [p.config.get("aws:region", "us-east-1") for p in (base, head)]
    if base.config and head.config and regions[0] != regions[1]:
        head_lines.insert(0, {"fatal": True, "urn": "", "text": (
            f"THE REGION CHANGES ({regions[0]} -> {regions[1]}): every AWS resource of the stack is created anew in "
            f"{regions[1]} (pulumi-aws: the provider's region is where each resource lives) and the old ones, the "
            "cluster and everything in it, are destroyed")})
    jobs = verification(head, resources, pools)
    head_lines += [{"fatal": True, "urn": "", "text": f"A STEP WAITS FOR A SLICE THAT FREES ONLY AFTER IT: {j['text']}"}
                   for j in jobs if j["blocked"]]
    dangerous = [p["name"] for p in pools if p["impact"] == "reconfigure-in-place"]
    collisions = [p["name"] for p in pools if p.get("collides")] + [
        r["name"] for r in resources if r.get("collides") and r["type"] != MNG]
    return {"headlines": head_lines, "resources": resources, "pools": pools, "controlPlanePerHour": cp,
            "workloads": diff_workloads(base, head, resources, pools), "costPerHour": cost,
            "pInstanceVcpusAtPeak": quota, "verification": jobs, "kubernetes": version,
            "order": [f"{r['op']} {r['type'].split(':')[-1]} {r['name']}" for r in resources],
            "reconfigureInPlace": dangerous, "collisions": list(dict.fromkeys(collisions)),
            "retainMigLayouts": dropped_layouts(base, head, pools), "warnings": warnings(base, head, resources),
            "upgradePath": upgrade_path(resources, pools),
            "fails": bool(dangerous or any(h["fatal"] for h in head_lines))}


def render(report: dict, base_label: str, head_label: str) -> str:
    lines = [f"Change from {base_label} to {head_label}", ""]
    loud = [h["text"] for h in report.get("headlines", [])]
    if report["reconfigureInPlace"]:
        loud.append(f"RECONFIGURE IN PLACE: {', '.join(report['reconfigureInPlace'])}: live nodes get a new MIG "
                    "layout with pods on them")
    if loud:
        lines += ["!" * 78, *(f"!! {t}" for t in loud), "!" * 78, ""]
    lines.append("GPU pools:")
    for p in report["pools"]:
        mark = "!!" if p["impact"] == "reconfigure-in-place" else "  "
        nodes = f"{p['nodes']}" + (f"->{p['nodesAfter']}" if p["nodesAfter"] != p["nodes"] else "")
        lines.append(f"{mark}{p['impact']:<21} {p['kind']:<9} {p['name']:<22} nodes {nodes:<5} "
                     f"${p['cost']['before']:.2f}/h -> ${p['cost']['after']:.2f}/h (peak ${p['cost']['peak']:.2f}/h)"
                     + (" at most: spot, not priced (its on-demand list price)"
                        if p.get("priceBasis") == SPOT_UNPRICED else ""))
        if p["why"]:
            lines.append(f"    {p['why']}")
        if p["impact"] != "none" and p["peakNodes"] > max(p["nodes"], p["nodesAfter"]):
            lines.append(f"    at the peak {p['peakNodes']} node(s): {p['quota']['vcpus']} vCPUs of the account's "
                         f"running {p['quota'].get('family', 'P')}-instance quota (On-Demand or Spot, by the pool's "
                         "capacity type)")
        if p.get("slicesPerNode"):
            per = p["slicesPerNode"]
            fmt = lambda d: ", ".join(f"{v} x {k}" for k, v in sorted((d or {}).items()) if v) or "none"  # noqa: E731
            lines.append(f"    per node: {fmt(per['before'])} -> {fmt(per['after'])}")
        if p.get("slicesAway"):
            lines.append(f"    slices away: {p['slicesAway']}")
    if report.get("kubernetes") and report["kubernetes"]["before"] != report["kubernetes"]["after"]:
        k = report["kubernetes"]
        lines += ["", f"Kubernetes {k['before']} -> {k['after']}: {k['calendar']}"]
    if report.get("upgradePath") and not (report.get("kubernetes") or {}).get("refused"):
        lines += ["", "Kubernetes upgrade, in this order:", *(f"  {s}" for s in report["upgradePath"])]
    lines += ["", f"Resources ({len(report['resources'])} changed, in the order Pulumi applies them):"]
    sym = {"create": "+", "delete": "-", "update": "~", "replace": "+-"}
    for r in report["resources"]:
        note = " (rolls nodes)" if r.get("rolls") else " (UNKNOWN effect)" if r.get("unknown") else \
            " (interrupts)" if r.get("interrupts") else ""
        lines.append(f"  {sym[r['op']]:<2} {r['op']:<7} {r['type']}  {r['name']}{note}")
        if r["changed"]:
            lines.append(f"       changed: {', '.join(r['changed'])}")
        if r["op"] == "replace" or r.get("rolls") or r.get("interrupts") or r.get("collides"):
            lines.append(f"       why: {r['why']}")
    moved = [w for w in report["workloads"] if w["before"] != w["after"] or w["pool"]["before"] != w["pool"]["after"]
             or w.get("restarts") or w.get("stops") or w.get("staleClaims")]
    lines += ["", "Workloads:" if moved else "Workloads: no pod restarts, no fit changes"]
    for w in moved:
        line = f"  {w['name']:<20} {w['before']} -> {w['after']}"
        if w.get("restarts"):
            line += f"; {w['restarts']} pod(s) restart: {'; '.join(w['restartWhy'])}"
        if w.get("stops"):
            line += f"; its {w['stops']} pod(s) stop"
        if stale := w.get("staleClaims"):
            line += (f"; claim template {', '.join(stale['templates'])} replaced: its {stale['pods']} running pod(s) "
                     "keep the claims made from the old one (a claim is never updated) until they are recreated; "
                     "their pod template is unchanged, so `kubectl rollout restart` them to get the new selection")

        lines.append(line + (f"  ({w['message']})" if w.get("message") else ""))
    for j in report.get("verification", []):
        lines.append(f"  verification: {j['text']}")
    for text in report.get("warnings", []):
        lines += ["", f"WARNING: {text}"]
    if report.get("retainMigLayouts"):
        block = yaml.safe_dump({"gpu-slicing:gpuOperator": {"retainedMigLayouts": report["retainMigLayouts"]}},
                               sort_keys=True)
        lines += ["", "WARNING: the mig-parted ConfigMap drops layout(s) live nodes still carry until they are "
                      "replaced; keep them by adding to the head stack (merge into gpuOperator, remove once "
                      "`kubectl get nodes -L nvidia.com/mig.config` no longer shows them):", block.rstrip()]
    c = report["costPerHour"]
    cp = report.get("controlPlanePerHour") or {"before": 0.0, "after": 0.0}
    bases = sorted({p.get("priceBasis") or ON_DEMAND_LIST for p in report["pools"]})
    lines += ["", f"GPU cost per hour ({', '.join(bases)}): before ${c['before']:.2f}, after ${c['after']:.2f}, "
                  f"peak during the change ${c['peak']:.2f}; EKS control plane ${cp['before']:.2f} -> "
                  f"${cp['after']:.2f}; P-instance vCPUs at the peak: {report.get('pInstanceVcpusAtPeak', 0)}"]
    return "\n".join(lines)


# --- CLI ------------------------------------------------------------------------------------------------------

# What a ref's plan runs with: its development lock (the program, its checks and their libraries), or, at a ref
# from before the locks, its requirements.txt (which then held all of them).
REQUIREMENT_FILES = ("requirements-dev.lock", "requirements.txt")


def requirements_file(src: Path) -> Path | None:
    return next((src / f for f in REQUIREMENT_FILES if (src / f).exists()), None)


def _environment(requirements: bytes, name: str = "requirements.txt") -> str:
    """A Python that has the ref's requirements (file `name`): this one when they are the working tree's, else a
    virtualenv cached by the requirements' hash (built once, with pip, under ~/.cache/gpu-slicing/venvs)."""
    here = ROOT_DIR / name
    if here.exists() and here.read_bytes() == requirements:
        return sys.executable
    import hashlib
    import os

    cache = Path(os.environ.get("GPU_SLICING_VENV_CACHE", Path.home() / ".cache" / "gpu-slicing" / "venvs"))
    venv = cache / hashlib.sha256(requirements).hexdigest()[:16]
    python = venv / "bin" / "python"
    if not (venv / ".installed").exists():
        venv.mkdir(parents=True, exist_ok=True)
        (venv / name).write_bytes(requirements)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r",
                        str(venv / name)], check=True)
        (venv / ".installed").touch()
    return str(python)


def plan_at_ref(ref: str, stack_file: str, config: Mapping[str, Any]) -> Plan:
    """The base as it runs today: the program at `ref` (its files by `git archive`, in a temporary directory)
    plans its own stack file there, in a subprocess with that program's requirements."""
    import os
    import tempfile

    with tempfile.TemporaryDirectory(prefix="gpu-slicing-base-") as tmp:
        archive = subprocess.run(["git", "archive", "--format=tar", ref], cwd=ROOT_DIR, capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        src = Path(tmp)
        if not (src / stack_file).exists():
            return Plan({}, {}, {}, error=f"{stack_file} does not exist at {ref}")
        req = requirements_file(src)
        python = _environment(req.read_bytes(), req.name) if req else _environment(b"")
        out = src / "base-plan.json"
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        args = [python, "-m", "tools.plan", "--config", str(src / stack_file), "--json", str(out)]
        if "--quiet" in (src / "tools" / "plan.py").read_text():
            args.append("--quiet")
        run = subprocess.run(args, cwd=src, capture_output=True, text=True, env=env)
        if not out.exists():  # exit 2: the stack does not plan under its own program
            return Plan({}, {}, {}, error=(run.stderr or run.stdout).strip())
        record = json.loads(out.read_text())
    regs = [_fold_children(r) for r in record.get("resources") or []]
    return Plan(dict(config), {r["urn"]: r for r in regs}, record.get("capacity") or {}, order=[r["urn"] for r in regs])


def load_config(spec: str, default_path: Path) -> tuple[dict, str]:
    """A stack file's `config:`; `git:<ref>` reads `default_path` as it is at that ref."""
    if spec.startswith("git:"):
        ref = spec[4:]
        if not default_path.resolve().is_relative_to(ROOT_DIR):
            raise FileNotFoundError(f"{default_path} is outside the repository, so it has no version at {ref}")
        rel = default_path.resolve().relative_to(ROOT_DIR)
        text = subprocess.run(["git", "show", f"{ref}:{rel.as_posix()}"], cwd=ROOT_DIR, capture_output=True,
                              text=True, check=True).stdout
        return stack_file.parse_stack_text(text, f"{rel} at {ref}"), f"{rel} at {ref}"
    path = Path(spec)
    label = path.resolve().relative_to(ROOT_DIR) if path.resolve().is_relative_to(ROOT_DIR) else path
    return stack_file.load_stack_file(path), str(label)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="the running stack: a stack file or git:<ref>")
    ap.add_argument("--stack", default="dev", help="head stack: Pulumi.<stack>.yaml (default dev)")
    ap.add_argument("--config", help="head stack file instead")
    ap.add_argument("--json", help="also write the report here")
    ap.add_argument("--same-program", action="store_true",
                    help="with git:<ref>, plan the ref's stack file with the working tree's program (faster; "
                         "blind to changes in the program itself)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    head_path = Path(args.config) if args.config else ROOT_DIR / f"Pulumi.{args.stack}.yaml"
    try:
        base_cfg, base_label = load_config(args.base, head_path)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"error: cannot read base {args.base}: {getattr(e, 'stderr', '') or e}", file=sys.stderr)
        return 2
    except ConfigError as e:  # read as Pulumi reads it: what `make plan` and Pulumi refuse, the diff refuses too
        print(f"error: base {args.base}: {e}", file=sys.stderr)
        return 2
    try:
        head_cfg, head_label = load_config(str(head_path), head_path)
    except ConfigError as e:
        print(f"error: {head_path}: {e}", file=sys.stderr)
        return 2
    stack = head_path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    if args.base.startswith("git:") and not args.same_program:
        rel = head_path.resolve().relative_to(ROOT_DIR).as_posix()
        try:
            base = plan_at_ref(args.base[4:], rel, base_cfg)
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"error: cannot plan {args.base}: {getattr(e, 'stderr', '') or e}", file=sys.stderr)
            return 2
        base_label += " (its own program)"
    else:
        base = plan(base_cfg, stack)
    head = plan(head_cfg, stack)
    for p, label in ((base, base_label), (head, head_label)):
        if p.error:
            print(f"error: {label} does not plan: " + p.error.replace("\n", "\n  "), file=sys.stderr)
            return 2
    report = compare(base, head)
    report.update(base=base_label, head=head_label)
    print(render(report, base_label, head_label))
    print(f"({time.perf_counter() - t0:.2f}s)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"report written to {args.json}")
    return 1 if report["fails"] else 0


if __name__ == "__main__":
    sys.exit(main())
