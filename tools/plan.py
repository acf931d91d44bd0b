"""The offline plan: run the real program under the Pulumi mock engine and show what it would create.

    python -m tools.plan [--stack dev | --config Pulumi.x.yaml] [--json plan.json] [--up]

Prints the resource tree (type, name, key inputs), the dependency edges that order create and
destroy, the capacity plan and the checks. Exits 2 on an invalid config (nothing is registered),
1 when a check of severity error fails.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from tools.harness import waits_for

ROOT_DIR = Path(__file__).resolve().parents[1]

# The inputs worth a glance per resource type; everything is in the JSON record.
KEY_INPUTS = {
    "eks:index:Cluster": ["name", "version", "authenticationMode", "endpointPublicAccess", "publicAccessCidrs",
                          "skipDefaultNodeGroup"],
    "eks:index:ManagedNodeGroup": ["nodeGroupName", "amiType", "instanceTypes", "capacityType", "scalingConfig",
                                   "labels", "taints"],
    "aws:ec2/launchTemplate:LaunchTemplate": ["metadataOptions", "blockDeviceMappings"],
    "aws:ec2/vpc:Vpc": ["cidrBlock"],
    "aws:ec2/subnet:Subnet": ["cidrBlock", "availabilityZone"],
    "aws:iam/role:Role": ["name"],
    "aws:kms/key:Key": ["enableKeyRotation"],
    "kubernetes:helm.sh/v3:Release": ["chart", "version", "namespace", "values"],
    "kubernetes:apps/v1:Deployment": ["spec.replicas", "spec.template.spec.containers.0.resources.limits",
                                      "spec.template.spec.nodeSelector"],
    "kubernetes:batch/v1:Job": ["spec.template.spec.containers.0.command",
                                "spec.template.spec.containers.0.resources.limits"],
    "kubernetes:karpenter.sh/v1:NodePool": ["spec.template.metadata.labels", "spec.limits", "spec.disruption"],
    "kubernetes:karpenter.sh/v1alpha1:NodeOverlay": ["spec.capacity", "spec.requirements"],
    "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass": ["spec.amiSelectorTerms", "spec.metadataOptions"],
}


def load_stack_file(path: Path) -> dict[str, Any]:
    """The stack file's `config:` mapping; a file Pulumi would refuse raises `ConfigError` naming why."""
    from gpu_slicing.stack_file import load_stack_file as load

    return load(path)


def _dig(inputs: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(inputs, list) and part.isdigit() and int(part) < len(inputs):
            inputs = inputs[int(part)]
        elif isinstance(inputs, dict) and part in inputs:
            inputs = inputs[part]
        else:
            return None
    return inputs


def contents(reg: dict) -> str:
    """What the observability objects hold, an item a word: exporter fields, alert names, dashboard panels."""
    from gpu_slicing import observability as obs

    inputs = reg["inputs"]
    data = inputs.get("data") if isinstance(inputs.get("data"), dict) else {}
    if isinstance(data.get(obs.EXPORTER_CSV_KEY), str):
        return "fields=" + json.dumps(sorted(obs.parse_exporter_csv(data[obs.EXPORTER_CSV_KEY])))
    if isinstance(data.get(obs.DASHBOARD_KEY), str):
        board = json.loads(data[obs.DASHBOARD_KEY])
        return "panels=" + json.dumps([x["title"] for x in board.get("panels", []) if x.get("type") != "row"])
    if reg["type"].endswith(":PrometheusRule"):
        groups = _dig(inputs, "spec.groups") or []
        return "alerts=" + json.dumps([r.get("alert") for g in groups for r in g.get("rules", [])])
    return ""


def summary(reg: dict) -> str:
    keys = KEY_INPUTS.get(reg["type"])
    if keys is None:
        return contents(reg)
    parts = []
    for k in keys:
        v = _dig(reg["inputs"], k)
        if v is not None:
            parts.append(f"{k.split('.')[-1] if k.count('.') > 2 else k}={json.dumps(v, separators=(',', ':'))}")
    return "  ".join(parts)


def edges(r: dict, by_urn: dict[str, dict], custom_children: dict[str, set[str]], order: dict[str, int]) -> list[str]:
    """`r`'s dependencies for display: a component stands for its resources when all of them are
    dependencies (that is what `depends_on=[component]` becomes on the wire); the provider counts too."""
    deps = {d for d in waits_for(r) if d in by_urn and d != r["parent"]}
    shown: list[str] = []
    covered: set[str] = set()
    for comp, kids in custom_children.items():
        if kids and kids <= deps and comp != r["urn"]:
            shown.append(by_urn[comp]["name"] + "/*")
            covered |= kids
    shown += [by_urn[d]["name"] for d in sorted(deps - covered, key=order.__getitem__)]
    return list(dict.fromkeys(shown))  # a policy and its attachment may share a name: say it once


def _custom_descendants(resources: list[dict]) -> dict[str, set[str]]:
    by_parent: dict[str, list[dict]] = {}
    for r in resources:
        by_parent.setdefault(r["parent"], []).append(r)

    def walk(urn: str) -> set[str]:
        out: set[str] = set()
        for c in by_parent.get(urn, []):
            if c["custom"] or c.get("remote"):
                out.add(c["urn"])
            out |= walk(c["urn"])
        return out

    return {r["urn"]: walk(r["urn"]) for r in resources if not r["custom"] and not r.get("remote")}


def creation_order(resources: list[dict]) -> list[dict]:
    """Registrations in a deterministic creation order (dependencies, provider and parent first, ties by
    URN): the engine registers concurrently, so the raw order varies from run to run."""
    import heapq

    by_urn = {r["urn"]: r for r in resources}
    needs = {u: {d for d in waits_for(r) if d in by_urn} for u, r in by_urn.items()}
    users: dict[str, list[str]] = {}
    for u, ds in needs.items():
        for d in ds:
            users.setdefault(d, []).append(u)
    ready = [u for u, ds in needs.items() if not ds]
    heapq.heapify(ready)
    out = []
    while ready:
        u = heapq.heappop(ready)
        out.append(by_urn[u])
        for v in users.get(u, []):
            needs[v].discard(u)
            if not needs[v]:
                heapq.heappush(ready, v)
    return out + sorted((r for r in resources if r not in out), key=lambda r: r["urn"])


def render_tree(resources: list[dict]) -> str:
    by_urn = {r["urn"]: r for r in resources}
    children: dict[str | None, list[dict]] = {}
    for r in resources:
        parent = r["parent"] if r["parent"] in by_urn else None
        children.setdefault(parent, []).append(r)
    custom_children = _custom_descendants(resources)
    order = {u: i for i, u in enumerate(by_urn)}
    # a component is shown where it is complete: after everything it waits for (the network first)
    rank = {u: max((order[d] for d in custom_children.get(u) or ()), default=order[u]) for u in by_urn}
    lines: list[str] = []

    def walk(urn: str | None, depth: int) -> None:
        for r in sorted(children.get(urn, []), key=lambda c: rank[c["urn"]]):
            deps = edges(r, by_urn, custom_children, order)
            line = f"{'  ' * depth}{'+' if r['custom'] else '#'} {r['type']}  {r['name']}"
            s = summary(r)
            if s:
                line += f"\n{'  ' * depth}    {s}"
            if deps:
                line += f"\n{'  ' * depth}    needs: {', '.join(deps)}"
            lines.append(line)
            walk(r["urn"], depth + 1)

    walk(None, 0)
    return "\n".join(lines)


def verification_notes(resources: list[dict]) -> list[str]:
    """What the verification Job checks and why it never races the workloads for a slice (it runs to
    completion before the Deployments that want the same slice exist)."""
    out = []
    for job in (r for r in resources if r["type"] == "kubernetes:batch/v1:Job"):
        spec = _dig(job["inputs"], "spec.template.spec") or {}
        limits = _dig(spec, "containers.0.resources.limits") or {}
        claims = [c.get("resourceClaimTemplateName") for c in spec.get("resourceClaims") or []]
        gpu = (", ".join(f"{v} x {k}" for k, v in limits.items() if k.startswith("nvidia.com/"))
               or ", ".join(f"the device of claim template {c}" for c in claims if c) or "no GPU")
        pool = (spec.get("nodeSelector") or {}).get("gpu-slicing/pool", "?")
        waiting = sorted(r["name"] for r in resources
                         if r["type"] == "kubernetes:apps/v1:Deployment" and job["urn"] in r["dependencies"])
        command = shlex.join(_dig(spec, "containers.0.command") or [])
        out.append(f"Verification: Job {job['inputs']['metadata']['name']} runs `{command}` with {gpu} on {pool}; "
                   "it completes (and frees its slice) before "
                   + (f"{', '.join(waiting)} {'is' if len(waiting) == 1 else 'are'} created" if waiting
                      else "anything else wants that slice"))
    return out


def _lines(error: BaseException) -> str:
    """An error's text with every line indented alike (a `ConfigErrors` lists one error per line)."""
    return str(error).replace("\n", "\n  ")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stack", default="dev", help="read Pulumi.<stack>.yaml (default dev)")
    ap.add_argument("--config", help="plan this stack file instead")
    ap.add_argument("--json", help="also write the full record here")
    ap.add_argument("--up", action="store_true", help="mock an update (outputs known) instead of a preview")
    ap.add_argument("--quiet", action="store_true", help="print only the summary lines")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    path = Path(args.config) if args.config else ROOT_DIR / f"Pulumi.{args.stack}.yaml"
    stack = args.stack if not args.config else path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    if str(ROOT_DIR) not in sys.path:
        sys.path.insert(0, str(ROOT_DIR))
    from gpu_slicing.errors import ConfigError
    try:
        config = load_stack_file(path)
    except ConfigError as e:
        print(f"error: invalid stack file {path}:\n  " + _lines(e), file=sys.stderr)
        print("0 resources registered", file=sys.stderr)
        return 2

    from tools import checks
    from tools.harness import run_program

    run = run_program(config, stack=stack, preview=not args.up)
    resources = creation_order([r.to_json() for r in run.registrations])
    if isinstance(run.error, ConfigError):
        print(f"error: invalid config in {path.name}:\n  " + _lines(run.error), file=sys.stderr)
        print(f"{len(resources)} resources registered", file=sys.stderr)
        return 2
    if run.error is not None:  # e.g. a value AWS answers at preview (zone offerings) the stack cannot use
        print(f"error: the program failed in {path.name}:\n  {run.error}", file=sys.stderr)
        return 2
    found = checks.run_checks(config, resources)
    record = {"stack": stack, "project": run.project, "resources": resources, "outputs": run.outputs,
              "checks": found, "capacity": run.outputs.get("capacity")}
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")

    if not args.quiet:
        region = config.get("aws:region", "us-east-1 (default)")
        print(f"Offline plan of stack '{stack}' ({path.name}), {'update' if args.up else 'preview'} under mocks, "
              f"region {region}\n")
        print("GPU pools: the nodes that will exist, their slices, whether every workload fits, and the cost")
        print(checks.capacity_table(config))
        from gpu_slicing.catalog import PRICES_REGION

        priced = checks.stack(config).config.price_per_hour
        if str(config.get("aws:region", PRICES_REGION)) != PRICES_REGION and not priced:
            print(f"Note: the prices above are {PRICES_REGION}'s; this stack runs in {config['aws:region']}: set "
                  "gpu-slicing:pricePerHour to its prices for a true figure.\n")
        for line in verification_notes(resources):
            print(line)
        print("\nResources. Legend: '#' component, '+' resource; 'needs' = dependency edges "
              "(created after, deleted before)\n")
        print(render_tree(resources))
        print()
    errors = [c for c in found if c["severity"] == "error"]
    warnings = [c for c in found if c["severity"] == "warning"]
    for c in found:
        print(f"{c['severity'].upper():8} {c['id']}: {c['message']}" + (f" [{c['resource']}]" if c.get("resource") else ""))
    n_custom = sum(1 for r in resources if r["custom"])
    print(f"{len(resources)} registrations ({n_custom} resources, {len(resources) - n_custom} components), "
          f"{sum(len(r['dependencies']) for r in resources)} dependency edges, "
          f"{len(errors)} check errors, {len(warnings)} warnings, {time.perf_counter() - t0:.2f}s")
    if args.json:
        print(f"record written to {args.json}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
