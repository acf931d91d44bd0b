"""What a stack change does to the running GPU fleet: two offline plans compared, before anything merges.

    python -m tools.diff --base Pulumi.dev.yaml|git:<ref> [--config Pulumi.x.yaml | --stack dev] [--json out.json]

Both stacks are planned under the mock engine (the working tree's program; `git:<ref>` reads only the stack
file as it is at that ref). Every resource whose inputs differ is classified with the cited rules of
`gpu_slicing.changes` (EKS API, Karpenter drift, Kubernetes immutable fields, Pulumi replace semantics);
every GPU pool gets an impact (none, create, delete, scale, rolling-replace, blue-green or the dangerous
reconfigure-in-place), the workloads whose fit changes, and the GPU cost per hour before, after and at the
peak of the change. Exits 1 when the change reconfigures a live node's MIG layout in place.
"""
from __future__ import annotations

import argparse
import json
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

from gpu_slicing import changes  # noqa: E402
from gpu_slicing.labels import MIG_CONFIG_LABEL, POOL_LABEL  # noqa: E402

MNG = "eks:index:ManagedNodeGroup"
NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
NODECLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
CLUSTER = "eks:index:Cluster"
RELEASE = "kubernetes:helm.sh/v3:Release"
# EKS rolling updates (UpdateNodegroupVersion) scale up by "up to twice the number of Availability Zones or
# maxUnavailable, the larger" (EKS user guide, "Understand each phase of node updates").
EKS_SURGE_PER_AZ = 2
IMPACTS = ("none", "create", "delete", "scale", "rolling-replace", "blue-green", "reconfigure-in-place")


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
    regs = creation_order([r.to_json() for r in run.registrations])
    return Plan(dict(config), {r["urn"]: r for r in regs}, run.outputs.get("capacity") or {},
                order=[r["urn"] for r in regs])


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


def _physical_name_note(r: dict, paths: list[str]) -> str:
    key = changes.PHYSICAL_NAME.get(r["type"])
    if key and key in r["inputs"] and key not in paths and not r["options"].get("deleteBeforeReplace"):
        return (f"; fixed physical name {key}={r['inputs'].get(key)!r} is unchanged, so a create-before-delete "
                "replace collides with the old one (set deleteBeforeReplace, or let the name change)")
    return ""


def diff_resources(base: Plan, head: Plan) -> list[dict]:
    """Resources created, deleted, updated (in place or rolling) or replaced, in the order Pulumi runs them:
    creates and updates in the head's dependency order, then deletes in reverse base order."""
    out: dict[str, dict] = {}
    propagated: dict[str, list[str]] = {}
    for urn in head.order:
        r = head.resources[urn]
        if not (r["custom"] or r["remote"]):
            continue
        old = base.resources.get(urn)
        if old is None:
            out[urn] = _entry(r, "create", [], [])
            continue
        ignored = r["options"].get("ignoreChanges") or ()  # Pulumi keeps the old value of these inputs
        paths = [p for p in leaf_diff(old["inputs"], r["inputs"])
                 if not any(p == i or p.startswith(i + ".") for i in ignored)] + propagated.get(urn, [])
        if not paths:
            continue
        effects = [changes.classify(r["type"], p.split(" ")[0], r["options"].get("replaceOnChanges") or ())
                   for p in paths]
        worst = changes.worst(effects)
        op = "replace" if worst == changes.REPLACE else "update"
        entry = _entry(r, op, paths, effects, rolls=worst == changes.ROLL)
        if op == "replace":
            entry["why"] += _physical_name_note(r, paths)
        out[urn] = entry
        # what this change does to the inputs of resources built from it
        changed_output = op == "replace" or r["type"] in changes.UPDATE_CHANGES_OUTPUT
        if changed_output:
            for d in head.order:
                for prop, deps in (head.resources[d].get("propertyDependencies") or {}).items():
                    if urn in deps and (op == "replace" or prop == changes.UPDATE_CHANGES_OUTPUT.get(r["type"])):
                        propagated.setdefault(d, []).append(f"{prop} (from {r['name']})")
    deletes = [u for u in reversed(base.order) if u not in head.resources
               and (base.resources[u]["custom"] or base.resources[u]["remote"])]
    for urn in deletes:
        out[urn] = _entry(base.resources[urn], "delete", [], [])
    return list(out.values())


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
    """Nodes a pool runs: a node group's desiredSize (nothing scales it, FACTS 10); for a NodePool the
    nodes Karpenter launches for the planned workloads."""
    if not pool:
        return 0
    return int(pool["nodes"]["willExist"])


def price(pool: dict | None) -> float:
    """USD per node-hour of the instance type the pool runs (the capacity plan's figure: the stack's
    pricePerHour overrides, and for a NodePool the type Karpenter launches)."""
    return float(pool["launch"]["usdPerNodeHour"]) if pool else 0.0


def _az_count(p: Plan) -> int:
    return len([r for r in p.resources.values() if r["type"] == "aws:ec2/subnet:Subnet"
                and "private" in r["name"]]) or 3


def diff_pools(base: Plan, head: Plan, resources: list[dict]) -> list[dict]:
    by_urn = {r["urn"]: r for r in resources}
    bp, hp = _pools(base), _pools(head)
    cluster_upgrade = next((r for r in resources if r["type"] == CLUSTER and "version" in r["changed"]), None)
    out = []
    for name in list(dict.fromkeys([*hp, *bp])):
        b, h = bp.get(name), hp.get(name)
        kind = (h or b)["kind"]
        before, after = running_nodes(b), running_nodes(h)
        pb, ph = price(b), price(h)
        entry = {"name": name, "kind": kind, "impact": "none", "nodes": before, "nodesAfter": after,
                 "layout": {"before": b and b["layout"], "after": h and h["layout"]}, "why": "",
                 "cost": {"before": round(before * pb, 2), "after": round(after * ph, 2)}}
        peak = max(before * pb, after * ph)
        if b is None:
            entry.update(impact="create", why=f"new {kind}: {after} node(s) of {h['instanceType']} in {h['layout']}")
        elif h is None:
            entry.update(impact="delete", why=f"{kind} removed: its {before} node(s) are drained, then terminated "
                                              "(after the head's creates)")
            peak = before * pb
        elif kind == "nodeGroup":
            peak = _node_group_impact(entry, _node_group(base, name), _node_group(head, name), by_urn, base, head,
                                      b, h)
        else:
            peak = _node_pool_impact(entry, base, head, name, by_urn, cluster_upgrade, b, h)
        entry["cost"]["peak"] = round(peak, 2)
        out.append(entry)
    return out


def _node_group_impact(entry: dict, old: dict | None, new: dict | None, by_urn: dict, base: Plan, head: Plan,
                       b: dict, h: dict) -> float:
    before, after = entry["nodes"], entry["nodesAfter"]
    pb, ph = price(b), price(h)
    low = max(before * pb, after * ph)
    if old is None or new is None:
        return low
    if old["urn"] != new["urn"] or (by_urn.get(new["urn"]) or {}).get("op") == "replace":
        r = by_urn.get(new["urn"]) or {"changed": ["(resource renamed)"], "why": "a new URN"}
        if new["options"].get("deleteBeforeReplace"):
            entry.update(impact="rolling-replace", why=f"node group replaced delete-first ({r['why']}): its "
                                                       f"{before} node(s) drain before new ones exist")
            return low
        old_name, new_name = old["inputs"].get("nodeGroupName"), new["inputs"].get("nodeGroupName")
        if old_name == new_name:
            entry.update(impact="blue-green", collides=True, why=(
                f"node group replaced ({', '.join(r['changed'])}) under the same EKS name {new_name}: the "
                "create-before-delete replace collides with the live group and `pulumi up` fails; change what "
                "the name's token covers (instance type, capacity type, AMI type, layout) or replace delete-first"))
            return before * pb + after * ph
        entry.update(impact="blue-green", why=(
            f"new node group {new_name} ({after} x {h['instanceType']}, {h['layout']}) is created and ready before "
            f"EKS drains and deletes {old_name} ({before} node(s), {b['layout']}): new nodes boot straight into "
            f"their layout; changed {', '.join(r['changed'])}"))
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
            "with GPU pods end in mig.config.state=failed or pending (FACTS 8). Cordon and drain them first, or "
            "let the node group be replaced (migLayoutChange: replace)"))
        return low
    if r.get("rolls"):
        surge = min(max(after, 1), EKS_SURGE_PER_AZ * _az_count(head))
        entry.update(impact="rolling-replace", why=(
            f"{', '.join(p for p in r['changed'] if changes.classify(MNG, p.split(' ')[0]).effect == changes.ROLL)}"
            f": EKS UpdateNodegroupVersion replaces the {before} node(s), up to {surge} new one(s) at a time "
            "before old ones drain"))
        return max(before, after) * ph + surge * ph
    if any(p.startswith("scalingConfig") for p in r["changed"]) and before != after:
        entry.update(impact="scale", why=f"desiredSize {before} -> {after} (in place, UpdateNodegroupConfig)"
                     + ("; removed nodes are drained" if after < before else ""))
        return low
    entry["why"] = "changed in place, no node replaced: " + ", ".join(r["changed"])
    return low


def _budgets(np: dict | None) -> str:
    budgets = ((np or {}).get("inputs", {}).get("spec") or {}).get("disruption", {}).get("budgets") or []
    return json.dumps(budgets, separators=(",", ":"))


def _node_pool_impact(entry: dict, base: Plan, head: Plan, name: str, by_urn: dict, cluster_upgrade: dict | None,
                      b: dict, h: dict) -> float:
    before, after = entry["nodes"], entry["nodesAfter"]
    pb, ph = price(b), price(h)
    low = max(before * pb, after * ph)
    np_new, nc_new = _k8s_named(head, NODEPOOL, name), _k8s_named(head, NODECLASS, name)
    np_old = _k8s_named(base, NODEPOOL, name)
    crd = next((r for r in by_urn.values() if r["type"] == RELEASE and r["op"] in ("replace", "delete")
                and "karpenter-crd" in json.dumps((base.resources.get(r["urn"]) or {}).get("inputs", {}))), None)
    if crd:
        entry.update(impact="delete", why=f"the Karpenter CRD release {crd['name']} is {crd['op']}d: uninstalling "
                                          "its CRDs deletes every NodePool and NodeClaim, so every node of the pool "
                                          "is drained and terminated")
        return before * pb + after * ph
    reasons = []
    for res in (np_new, nc_new):
        r = by_urn.get(res["urn"]) if res else None
        if r and r["op"] == "replace":
            entry.update(impact="delete", why=f"{r['name']} is replaced (delete, then create): every node of the "
                                              f"pool is drained ({r['why']})")
            return before * pb + after * ph
        if r and r.get("rolls"):
            reasons += [p for p in r["changed"] if changes.classify(r["type"], p.split(" ")[0]).effect == changes.ROLL]
    if np_old and np_new and np_old["urn"] != np_new["urn"]:
        entry.update(impact="delete", why="NodePool moved to a new resource: deleted (every node drained) and "
                                          "created again")
        return before * pb + after * ph
    if cluster_upgrade and nc_new and any("alias" in t for t in (nc_new["inputs"].get("spec") or {}).get(
            "amiSelectorTerms", [{}])[0]):
        reasons.append("cluster version (the al2023@ alias resolves to the new Kubernetes version's AMI, after the "
                       "control plane)")
    if reasons:
        entry.update(impact="rolling-replace", why=(
            f"drift: {', '.join(reasons)}; Karpenter replaces the pool's {before} node(s), launching each "
            f"replacement before it drains the old node, paced by budgets {_budgets(np_new)} (FACTS 8)"))
        return low + (ph if before else 0.0)
    if before != after:
        entry.update(impact="scale", why=f"Karpenter launches for the workloads: {before} -> {after} node(s)")
    return low


# --- workloads, cost, report -------------------------------------------------------------------------------

def _fit(w: dict | None) -> str:
    if w is None:
        return "absent"
    return "fits" if w.get("fits") else "pending"


def diff_workloads(base: Plan, head: Plan) -> list[dict]:
    bw = {w["name"]: w for w in base.capacity.get("workloads", [])}
    hw = {w["name"]: w for w in head.capacity.get("workloads", [])}
    out = []
    for name in dict.fromkeys([*hw, *bw]):
        b, h = bw.get(name), hw.get(name)
        entry = {"name": name, "before": _fit(b), "after": _fit(h),
                 "pool": {"before": b and b["pools"], "after": h and h["pools"]}}
        if b != h and h is not None:
            entry["message"] = h.get("message")
        out.append(entry)
    return out


def _mig_configs(p: Plan) -> dict | None:
    cm = _find(p, "kubernetes:core/v1:ConfigMap", lambda r: "config.yaml" in (r["inputs"].get("data") or {})
               and "mig-configs" in r["inputs"]["data"]["config.yaml"])
    return None if cm is None else (yaml.safe_load(cm["inputs"]["data"]["config.yaml"]) or {}).get("mig-configs") or {}


def dropped_layouts(base: Plan, head: Plan, pools: list[dict]) -> dict[str, list]:
    """Layout labels live nodes carry in the base that the head's mig-parted ConfigMap no longer holds:
    the nodes keep them until they are replaced or drained (after the ConfigMap changes), and a MIG manager
    restarting there must still find them. Returns label -> base entries, the `retainedMigLayouts` block."""
    from gpu_slicing import catalog, layouts

    b, h = _mig_configs(base), _mig_configs(head)
    if h is None:  # the head uses the operator's own config, which has every named layout
        return {}
    out: dict[str, list] = {}
    for p in pools:
        label = p["layout"]["before"]
        if not p["nodes"] or not label or label in h:
            continue
        if b and label in b:
            out[label] = b[label]
            continue
        # a named layout the base took from the operator's own config: its entries for the pool's GPU
        it = catalog.INSTANCE_TYPES.get(_pools(base)[p["name"]]["instanceType"])
        named = catalog.named_layouts(it.gpu).get(label) if it else None
        if named is not None:
            out[label] = layouts.mig_parted_configs([named])[label]
    return dict(sorted(out.items()))


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


def compare(base: Plan, head: Plan) -> dict:
    resources = diff_resources(base, head)
    pools = diff_pools(base, head, resources)
    cost = {"before": round(sum(p["cost"]["before"] for p in pools), 2),
            "after": round(sum(p["cost"]["after"] for p in pools), 2),
            "peak": round(sum(p["cost"]["peak"] for p in pools), 2)}
    dangerous = [p["name"] for p in pools if p["impact"] == "reconfigure-in-place"]
    collisions = [p["name"] for p in pools if p.get("collides")]
    return {"resources": resources, "pools": pools, "workloads": diff_workloads(base, head), "costPerHour": cost,
            "order": [f"{r['op']} {r['type'].split(':')[-1]} {r['name']}" for r in resources],
            "reconfigureInPlace": dangerous, "collisions": collisions,
            "retainMigLayouts": dropped_layouts(base, head, pools),
            "upgradePath": upgrade_path(resources, pools)}


def render(report: dict, base_label: str, head_label: str) -> str:
    lines = [f"Change from {base_label} to {head_label}", ""]
    if report["collisions"]:
        lines += ["!" * 78, f"!! REPLACE COLLIDES: {', '.join(report['collisions'])}: a node group is replaced under "
                            "its own name, which EKS refuses while the old one exists", "!" * 78, ""]
    if report["reconfigureInPlace"]:
        lines += ["!" * 78,
                  f"!! RECONFIGURE IN PLACE: {', '.join(report['reconfigureInPlace'])}: live nodes get a new MIG "
                  "layout with pods on them", "!" * 78, ""]
    lines.append("GPU pools:")
    for p in report["pools"]:
        mark = "!!" if p["impact"] == "reconfigure-in-place" else "  "
        nodes = f"{p['nodes']}" + (f"->{p['nodesAfter']}" if p["nodesAfter"] != p["nodes"] else "")
        lines.append(f"{mark}{p['impact']:<21} {p['kind']:<9} {p['name']:<22} nodes {nodes:<5} "
                     f"${p['cost']['before']:.2f}/h -> ${p['cost']['after']:.2f}/h (peak ${p['cost']['peak']:.2f}/h)")
        if p["why"]:
            lines.append(f"    {p['why']}")
    if report.get("upgradePath"):
        lines += ["", "Kubernetes upgrade, in this order:", *(f"  {s}" for s in report["upgradePath"])]
    lines += ["", f"Resources ({len(report['resources'])} changed, in the order Pulumi applies them):"]
    sym = {"create": "+", "delete": "-", "update": "~", "replace": "+-"}
    for r in report["resources"]:
        roll = " (rolls nodes)" if r.get("rolls") else ""
        lines.append(f"  {sym[r['op']]:<2} {r['op']:<7} {r['type']}  {r['name']}{roll}")
        if r["changed"]:
            lines.append(f"       changed: {', '.join(r['changed'])}")
        if r["op"] in ("replace",) or r.get("rolls"):
            lines.append(f"       why: {r['why']}")
    moved = [w for w in report["workloads"] if w["before"] != w["after"] or w["pool"]["before"] != w["pool"]["after"]]
    lines += ["", "Workloads:" if moved else "Workloads: no fit changes"]
    for w in moved:
        lines.append(f"  {w['name']:<20} {w['before']} -> {w['after']}" + (f"  ({w['message']})" if w.get("message") else ""))
    if report.get("retainMigLayouts"):
        block = yaml.safe_dump({"gpu-slicing:gpuOperator": {"retainedMigLayouts": report["retainMigLayouts"]}},
                               sort_keys=True)
        lines += ["", "WARNING: the mig-parted ConfigMap drops layout(s) live nodes still carry until they are "
                      "replaced; keep them by adding to the head stack (merge into gpuOperator, remove once "
                      "`kubectl get nodes -L nvidia.com/mig.config` no longer shows them):", block.rstrip()]
    c = report["costPerHour"]
    lines += ["", f"GPU cost per hour (on-demand list prices): before ${c['before']:.2f}, after ${c['after']:.2f}, "
                  f"peak during the change ${c['peak']:.2f}"]
    return "\n".join(lines)


# --- CLI ------------------------------------------------------------------------------------------------------

def load_config(spec: str, default_path: Path) -> tuple[dict, str]:
    """A stack file's `config:`; `git:<ref>` reads `default_path` as it is at that ref."""
    if spec.startswith("git:"):
        ref = spec[4:]
        rel = default_path.resolve().relative_to(ROOT_DIR)
        text = subprocess.run(["git", "show", f"{ref}:{rel.as_posix()}"], cwd=ROOT_DIR, capture_output=True,
                              text=True, check=True).stdout
        return dict((yaml.safe_load(text) or {}).get("config") or {}), f"{rel} at {ref}"
    path = Path(spec)
    return dict((yaml.safe_load(path.read_text()) or {}).get("config") or {}), str(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="the running stack: a stack file or git:<ref>")
    ap.add_argument("--stack", default="dev", help="head stack: Pulumi.<stack>.yaml (default dev)")
    ap.add_argument("--config", help="head stack file instead")
    ap.add_argument("--json", help="also write the report here")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    head_path = Path(args.config) if args.config else ROOT_DIR / f"Pulumi.{args.stack}.yaml"
    try:
        base_cfg, base_label = load_config(args.base, head_path)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"error: cannot read base {args.base}: {getattr(e, 'stderr', '') or e}", file=sys.stderr)
        return 2
    head_cfg, head_label = load_config(str(head_path), head_path)
    stack = head_path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    base, head = plan(base_cfg, stack), plan(head_cfg, stack)
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
    return 1 if report["reconfigureInPlace"] or report["collisions"] else 0


if __name__ == "__main__":
    sys.exit(main())
