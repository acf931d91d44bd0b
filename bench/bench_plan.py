"""Benchmark: `make plan` of the dev stack against importing the Pulumi SDK classes it registers.

Importing the SDK is the floor of any run of the program (pulumi_aws.ec2 alone is ~1,000 generated
modules); the bar is that the whole offline plan (program, record and every check) costs at most 3x that.
Both are timed as fresh interpreters, alternately, RUNS times each; medians and the range are printed.
The classes are read off the plan's own record, so the floor follows what the program registers.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BAR = 3.0
RUNS = 5


def sdk_class(token: str) -> str | None:
    """The SDK class (module.Class) that registers a resource of type `token`, or None for our components."""
    pkg, mod, kind = token.split(":")
    group = mod.split("/")[0]
    if pkg == "pulumi" and mod == "providers":
        return f"pulumi_{kind}.Provider"
    if pkg == "aws":
        return f"pulumi_aws.{group}.{kind}"
    if pkg == "eks":
        return f"pulumi_eks.{kind}"
    if pkg == "kubernetes":
        import importlib.util

        version = mod.split("/")[1]
        name = {"helm.sh": "helm", "core": "core"}.get(group, group)
        if "." in name or importlib.util.find_spec(f"pulumi_kubernetes.{name}") is None:
            return "pulumi_kubernetes.apiextensions.CustomResource"  # a CRD's kind: no class of its own
        return f"pulumi_kubernetes.{name}.{version}.{kind}"
    return None


def import_script(types: set[str]) -> str:
    classes = sorted({c for c in map(sdk_class, types) if c})
    lines = ["import importlib, pulumi"]
    for c in classes:
        module, name = c.rsplit(".", 1)
        lines.append(f"getattr(importlib.import_module({module!r}), {name!r})")
    return "\n".join(lines)


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        record = Path(tmp) / "plan.json"
        subprocess.run([sys.executable, "-m", "tools.plan", "--stack", "dev", "--quiet", "--json", str(record)],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        types = {r["type"] for r in json.loads(record.read_text())["resources"]}
    script = import_script(types)
    plan, sdk = [], []
    for _ in range(RUNS):
        sdk.append(timed([sys.executable, "-c", script]))
        plan.append(timed([sys.executable, "-m", "tools.plan", "--stack", "dev"]))
    p, s = statistics.median(plan), statistics.median(sdk)
    print(f"plan (dev stack): median {p:.2f} s ({min(plan):.2f}-{max(plan):.2f}); importing the "
          f"{script.count('getattr')} SDK classes it registers: median {s:.2f} s ({min(sdk):.2f}-{max(sdk):.2f}); "
          f"ratio {p / s:.2f}x (bar: {BAR:.0f}x)")
    return 0 if p / s <= BAR else 1


if __name__ == "__main__":
    sys.exit(main())
