"""MIG layout advisor CLI: the fewest GPU nodes for a mix of MIG slices, or the cheapest fleet for pods
stated in GPU memory, as a report and stack config.

    python -m tools.advise --demand demand.yaml [--json out.json] [--karpenter] [--stack-out advised.yaml]
    python -m tools.advise --config Pulumi.dev.yaml [--instance-type p4d.24xlarge]   (one plan per GPU model)
    python -m tools.advise DEMAND=demand.yaml JSON=out.json KARPENTER=1      (make-style)

A demand file is one of two kinds, told apart by its keys:
- per MIG profile: `instanceType`, `demand: {profile: slices}`, optional `pricePerNodeHour`, `maxLayouts`,
  `maxNodes` (flags override the file);
- per pod class (the fleet advisor): `pods: [{name, memoryGB, replicas}]`, optional `instanceTypes`
  (default: every GPU type the catalog knows) and `pricePerHour: {type: USD per node-hour}`.
Exits 2 on invalid input.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

ROOT_DIR = Path(__file__).resolve().parents[1]
if str(ROOT_DIR) not in sys.path:
    sys.path.insert(0, str(ROOT_DIR))

from gpu_slicing import advisor, catalog, fleet_advisor, stack_file  # noqa: E402
from gpu_slicing.config import NAMESPACE, own_keys  # noqa: E402
from gpu_slicing.errors import ConfigError  # noqa: E402

_MAKE_STYLE = {"DEMAND": "--demand", "CONFIG": "--config", "JSON": "--json", "KARPENTER": "--karpenter",
               "MAX_LAYOUTS": "--max-layouts", "MAX_NODES": "--max-nodes", "PRICE": "--price",
               "INSTANCE_TYPE": "--instance-type", "STACK_OUT": "--stack-out", "PREFIX": "--prefix"}


def _expand_make_style(argv: list[str]) -> list[str]:
    """`DEMAND=x` -> `--demand x` (and `KARPENTER=1` -> `--karpenter`), so `make advise` can pass its variables."""
    out: list[str] = []
    for arg in argv:
        key, eq, value = arg.partition("=")
        flag = _MAKE_STYLE.get(key) if eq and not arg.startswith("-") else None
        if flag is None:
            out.append(arg)
        elif flag == "--karpenter":
            if value.lower() not in ("", "0", "false", "no"):
                out.append(flag)
        elif value:
            out += [flag, value]
    return out


def _load_yaml(path: str) -> Any:
    """A demand file, read as strictly as a stack file (duplicate keys, binary or non-YAML files refused)."""
    return stack_file.load_yaml(stack_file.read_text(Path(path), "demand file"), path)


def build_specs(args: argparse.Namespace, raw: Any = None) -> tuple[list[advisor.DemandSpec], dict[str, Any]]:
    """The demand from the demand file (read as `raw`), or one per GPU model from the stack file, with the
    command-line limits applied; and the stack's own keys (none for a demand file)."""
    ours: dict[str, Any] = {}
    if args.demand:
        specs = [advisor.load_demand(raw)]
        if args.instance_type:
            specs = [replace(specs[0], instance_type=args.instance_type)]
    else:
        stack = stack_file.load_stack_file(args.config)
        ours = own_keys(stack)
        specs = advisor.demands_from_stack(stack, args.instance_type)
    overrides = {k: v for k, v in (("max_layouts", args.max_layouts), ("max_nodes", args.max_nodes),
                                   ("price_per_node_hour", args.price)) if v is not None}
    return [replace(spec, **overrides) for spec in specs], ours


def fleet_demand(args: argparse.Namespace, raw: Any) -> fleet_advisor.FleetDemand | None:
    """The pods demand of a `--demand` file (read as `raw`) stated per pod class, or None for a per-profile one."""
    if not args.demand or not fleet_advisor.is_fleet_demand(raw):
        return None
    for flag, value, instead in (("--instance-type", args.instance_type, "instanceTypes"),
                                 ("--price", args.price, "pricePerHour"), ("--max-layouts", args.max_layouts, ""),
                                 ("--max-nodes", args.max_nodes, "")):
        if value is not None:
            raise ConfigError(flag, value, "no such flag with a pods demand"
                              + (f": set {instead} in the demand file" if instead else ""))
    return fleet_advisor.load_fleet_demand(raw)


def advise_fleet(demand: fleet_advisor.FleetDemand, args: argparse.Namespace) -> int:
    """The fleet advisor's report, stack config and records, as for a per-profile demand."""
    plan = fleet_advisor.advise_fleet(demand, pool_prefix=args.prefix)
    stack_yaml = yaml.safe_dump(plan.stack_config(args.karpenter), sort_keys=False, default_flow_style=None,
                                width=120)
    print(fleet_advisor.format_fleet_report(plan))
    _print_stack(stack_yaml, args, "nodeGroups, or karpenter.nodePools with --karpenter, keeping the rest of its "
                                   "karpenter block), migLayouts, workloads, maxGpuNodes (and pricePerHour where the "
                                   "demand set one)", plan.seconds)
    _write(args, plan.to_json(args.karpenter), stack_yaml)
    return 0


def _print_stack(stack_yaml: str, args: argparse.Namespace, keys: str, seconds: float) -> None:
    print(f"\nStack config: these keys replace your stack's GPU pools ({keys}; maxGpuNodes counts the advised pools "
          "only, so pools you keep must be added to it. Then `make plan`:\n")
    print(stack_yaml.rstrip())
    print(f"\nsolved in {seconds:.3f}s")


def _write(args: argparse.Namespace, record: dict[str, Any], stack_yaml: str) -> None:
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
        print(f"result written to {args.json}")
    if args.stack_out:
        Path(args.stack_out).write_text(stack_yaml)
        print(f"stack config written to {args.stack_out}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demand", help="demand file: instanceType and demand per MIG profile, or pods per GPU memory")
    ap.add_argument("--config", help="stack file whose gpu-slicing:workloads are the demand (one plan per GPU model)")
    ap.add_argument("--instance-type", help="GPU instance type (overrides the file's)")
    ap.add_argument("--max-layouts", type=int, help=f"most distinct MIG layouts (default {advisor.DEFAULT_MAX_LAYOUTS})")
    ap.add_argument("--max-nodes", type=int, help="most GPU nodes")
    ap.add_argument("--price", type=float, help="USD per node-hour (default: the catalog's on-demand price)")
    ap.add_argument("--karpenter", action="store_true", help="emit Karpenter NodePools instead of node groups")
    ap.add_argument("--prefix", default="advised", help="name prefix of the pools (default advised)")
    ap.add_argument("--json", help="also write the result as JSON here")
    ap.add_argument("--stack-out", help="also write the stack config here (merge it into a Pulumi.<stack>.yaml)")
    args = ap.parse_args(_expand_make_style(list(sys.argv[1:] if argv is None else argv)))

    try:
        if bool(args.demand) == bool(args.config):
            raise ConfigError("--demand/--config", None, "exactly one of a demand file or a stack file")
        raw = _load_yaml(args.demand) if args.demand else None
        if (pods := fleet_demand(args, raw)) is not None:
            return advise_fleet(pods, args)
        specs, ours = build_specs(args, raw)
        several = len(specs) > 1
        plans = [advisor.advise_spec(spec, pool_prefix=f"{args.prefix}-{spec.instance_type.split('.')[0]}"
                                     if several else args.prefix) for spec in specs]
    except ConfigError as e:
        print("error: " + str(e).replace("\n", "\n  "), file=sys.stderr)
        return 2
    stack = advisor.stack_config_of(plans, karpenter=args.karpenter)
    ignored = [name for spec in specs for name in spec.ignored]
    if ignored:  # the emitted workloads replace the stack's: keep the whole-GPU ones as they are
        kept = [w for w in ours.get("workloads") or [] if isinstance(w, dict) and w.get("name") in ignored]
        stack["config"][f"{NAMESPACE}:workloads"] = [*stack["config"].get(f"{NAMESPACE}:workloads", []), *kept]
    stack_yaml = yaml.safe_dump(stack, sort_keys=False, default_flow_style=None, width=120)
    for i, plan in enumerate(plans):
        if several:
            gpu = catalog.INSTANCE_TYPES[plan.instance_type].gpu.name
            print(("\n" if i else "") + f"=== {gpu}: plan {i + 1} of {len(plans)} ===")
        print(advisor.format_report(plan))
    if ignored:
        print(f"\nNot MIG demand (whole-GPU workloads, not advised; kept as they are in the workloads below): "
              f"{', '.join(ignored)}. Keep the pools they run on, and add what those may run to maxGpuNodes.")
    _print_stack(stack_yaml, args, "nodeGroups, or karpenter.nodePools with --karpenter, keeping the rest of its "
                                   "karpenter block), migLayouts, workloads and maxGpuNodes",
                 sum(p.seconds for p in plans))
    record = plans[0].to_json(args.karpenter) if not several else {
        "plans": [p.to_json(args.karpenter) for p in plans], "stackConfig": stack["config"]}
    _write(args, record, stack_yaml)
    return 0


if __name__ == "__main__":
    sys.exit(main())
