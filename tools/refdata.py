"""Reference data for the offline plan's checks and the tests, generated from the pinned upstream files and
committed under tools/data/, so a clone without `../shared/reference` checks as much as CI does.

`make refdata` (`python -m tools.refdata`) regenerates every file from `../shared/reference`; `--check` says
which committed file differs from a fresh generation. Each file holds data only (schemas with their CEL
rules, chart value trees, layout tables, hardware readings): upstream prose (descriptions, comments) is
dropped, and a `provenance` block names the upstream repository, tag, file and this generator.
`GPU_SLICING_CRD_DIR` may still point the CRD checks at other CRD files (e.g. a newer chart's `crds/`).
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

DATA = Path(__file__).resolve().parent / "data"
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
CRD_DIR_ENV = "GPU_SLICING_CRD_DIR"
GENERATED_BY = "tools/refdata.py (make refdata)"


@dataclass(frozen=True)
class Source:
    upstream: str  # repository (or where a reading was taken)
    ref: str  # tag and commit, or the date of a reading
    paths: tuple[str, ...]  # upstream paths
    files: tuple[str, ...]  # the same files under ../shared/reference

    def provenance(self) -> dict[str, Any]:
        return {"upstream": self.upstream, "ref": self.ref, "paths": list(self.paths), "generated_by": GENERATED_BY}


_KARPENTER = "aws/karpenter-provider-aws"
_KARPENTER_REF = "v1.14.1 (commit bde00654)"
_OPERATOR = "NVIDIA/gpu-operator"
_OPERATOR_REF = "v26.7.0"
_CRD_FILES = ("karpenter.k8s.aws_ec2nodeclasses.yaml", "karpenter.sh_nodeclaims.yaml", "karpenter.sh_nodeoverlays.yaml",
              "karpenter.sh_nodepools.yaml")
_DRA = "kubernetes-sigs/dra-driver-nvidia-gpu (KEPs: kubernetes/enhancements 64765b4b)"
_DRA_REF = "main 95932046 (chart 0.5.0-dev, 2026-08-07)"
_DRA_CHART = "deployments/helm/dra-driver-nvidia-gpu"
_KEPS = ("4381-dra-structured-parameters", "4815-dra-partitionable-devices", "4816-dra-prioritized-list",
         "5004-dra-extended-resource", "5055-dra-device-taints-and-tolerations", "5075-dra-consumable-capacity")
SOURCES = {
    "karpenter-crds": Source(_KARPENTER, _KARPENTER_REF, tuple(f"pkg/apis/crds/{f}" for f in _CRD_FILES),
                             tuple(f"karpenter/{f}" for f in _CRD_FILES)),
    "karpenter-chart-values": Source(_KARPENTER, _KARPENTER_REF, ("charts/karpenter/values.yaml",),
                                     ("karpenter/chart-values.yaml",)),
    "karpenter-cloudformation": Source(
        _KARPENTER, _KARPENTER_REF,
        ("website/content/en/preview/getting-started/getting-started-with-karpenter/cloudformation.yaml",),
        ("karpenter/getting-started-cloudformation.yaml",)),
    "gpu-operator-values": Source(_OPERATOR, _OPERATOR_REF, ("deployments/gpu-operator/values.yaml",),
                                  ("gpu-operator/values.yaml",)),
    "mig-parted-config": Source(_OPERATOR, _OPERATOR_REF, ("assets/state-mig-manager/0400_configmap.yaml",),
                                ("gpu-operator/default-mig-parted-config.yaml",)),
    "dra-driver": Source(_DRA, _DRA_REF, (f"{_DRA_CHART}/values.yaml", f"{_DRA_CHART}/templates/deviceclass-gpu.yaml",
                                          f"{_DRA_CHART}/templates/deviceclass-mig.yaml",
                                          "site/content/docs/reference/resourceslice-attributes.md",
                                          *(f"kubernetes/enhancements keps/sig-node/{k}/kep.yaml" for k in _KEPS)),
                         ("dra/nvidia-dra-driver/chart/values.yaml", "dra/nvidia-dra-driver/chart/templates",
                          "dra/nvidia-dra-driver/docs/resourceslice-attributes.md", "dra/kubernetes-keps")),
    "mig-hardware": Source("nvidia-smi mig -lgip and -lgipp on real NVIDIA H100 80GB HBM3 and H200 141GB cards",
                           "read 2026-11-24", ("h100-80gb-hbm3", "h200-141gb"),
                           ("mig-hardware/h100-80gb-hbm3.txt", "mig-hardware/h200-141gb.txt")),
}


# --- reading the upstream files -------------------------------------------------------------------------

def _yaml_docs(text: str) -> list[Any]:
    import yaml

    return list(yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))  # libyaml: large CRDs


def _without_descriptions(schema: Any) -> Any:
    """A schema without its `description` prose (a property that happens to be named `description` stays)."""
    if isinstance(schema, list):
        return [_without_descriptions(s) for s in schema]
    if not isinstance(schema, Mapping):
        return schema
    return {k: ({name: _without_descriptions(s) for name, s in v.items()} if k == "properties"
                else _without_descriptions(v))
            for k, v in schema.items() if not (k == "description" and isinstance(v, str))}


def crds_in(directory: str | Path) -> list[dict[str, Any]]:
    """The CustomResourceDefinitions in the YAML files of `directory` (other files and documents skipped), as
    {group, kind, scope, versions: [{name, served, schema}]} without descriptions."""
    import yaml

    out = []
    for path in sorted(Path(directory).glob("*.y*ml")):
        try:
            docs = _yaml_docs(path.read_text())
        except yaml.YAMLError:
            continue  # not plain YAML (e.g. a CloudFormation template): no CRD in it
        for doc in docs:
            if not isinstance(doc, Mapping) or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            versions = [{"name": v["name"], "served": v.get("served", True),
                         "schema": _without_descriptions((v.get("schema") or {}).get("openAPIV3Schema"))}
                        for v in spec.get("versions", [])]
            out.append({"group": spec["group"], "kind": spec["names"]["kind"], "scope": spec["scope"],
                        "versions": versions})
    return sorted(out, key=lambda c: (c["group"], c["kind"]))


def _karpenter_crds(reference: Path) -> Any:
    return crds_in(reference / "karpenter")


def _values(reference: Path, file: str) -> Any:
    [doc] = _yaml_docs((reference / file).read_text())
    return doc


def _karpenter_chart_values(reference: Path) -> Any:
    return {"values": _values(reference, SOURCES["karpenter-chart-values"].files[0])}


_COMMENTED_KEY = re.compile(r"^\s*#\s*([A-Za-z][\w.-]*):")
_QUOTED = re.compile(r"`([^`\s]+)`")


def _gpu_operator_values(reference: Path) -> Any:
    """The chart's values (keys and defaults), plus, per top-level key, the keys its commented-out examples
    name and the `quoted` names its comments give (the chart documents some keys only there)."""
    file = SOURCES["gpu-operator-values"].files[0]
    commented: dict[str, set[str]] = {}
    quoted: dict[str, set[str]] = {}
    top = None
    for line in (reference / file).read_text().splitlines():
        m = re.match(r"^([A-Za-z][\w-]*):", line)
        if m:
            top = m.group(1)
        elif top and line.lstrip().startswith("#"):
            if key := _COMMENTED_KEY.match(line):
                commented.setdefault(top, set()).add(key.group(1))
            quoted.setdefault(top, set()).update(_QUOTED.findall(line))
    return {"values": _values(reference, file),
            "commented_keys": {k: sorted(v) for k, v in sorted(commented.items()) if v},
            "quoted_names": {k: sorted(v) for k, v in sorted(quoted.items()) if v}}


def _cloudformation(reference: Path) -> Any:
    """The template's resources, intrinsics kept as {"!Sub": value} (parameters filled in by the reader),
    without their `Description` prose."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, tag, node: {"!" + tag: (
        loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else
        loader.construct_sequence(node, deep=True) if isinstance(node, yaml.SequenceNode)
        else loader.construct_mapping(node, deep=True))})

    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k != "Description"}
        return [strip(x) for x in v] if isinstance(v, list) else v

    doc = yaml.load((reference / SOURCES["karpenter-cloudformation"].files[0]).read_text(), Loader=Loader)
    return {"Resources": strip(doc["Resources"])}


def _mig_parted_config(reference: Path) -> Any:
    [doc] = _yaml_docs((reference / SOURCES["mig-parted-config"].files[0]).read_text())
    [config] = _yaml_docs(doc["data"]["config.yaml"])
    return {"mig-configs": config["mig-configs"]}


_ROW = re.compile(r"^(\S+)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+\{([\d,]+)\}:(\d+)\s*$")


def read_hardware_table(text: str) -> dict[str, Any]:
    """{pci, profiles: {name: {id, count, memory_gib, sm, ce, dec, jpeg, ofa, placements, memory_slices}}} from
    a `nvidia-smi mig -lgip` / `-lgipp` reading (placements are the start memory slices)."""
    found = re.search(r"pci device (0x[0-9A-Fa-f]{4})", text)
    if found is None:
        raise ValueError("no `pci device 0x....` line in the reading")
    profiles = {}
    for line in text.splitlines():
        if m := _ROW.match(line):
            name, pid, count, gib, sm, ce, dec, jpeg, ofa, starts, size = m.groups()
            profiles[name] = {"id": int(pid), "count": int(count), "memory_gib": float(gib), "sm": int(sm),
                              "ce": int(ce), "dec": int(dec), "jpeg": int(jpeg), "ofa": int(ofa),
                              "placements": [int(s) for s in starts.split(",")], "memory_slices": int(size)}
    return {"pci": found.group(1), "profiles": profiles}


def _mig_hardware(reference: Path) -> Any:
    source = SOURCES["mig-hardware"]
    return {name: read_hardware_table((reference / file).read_text()) for name, file in zip(source.paths, source.files)}


_DEVICE_CLASS_EXPRESSION = re.compile(r'expression: "(.*)"')
_ATTRIBUTE_LINE = re.compile(r"^\s+([A-Za-z]+):$", re.M)
_MILESTONE = re.compile(r"^\s+(alpha|beta|stable):\s*\"?(v[\d.]+)\"?", re.M)


def _dra_driver(reference: Path) -> Any:
    """The DRA driver chart's values, the CEL selector of each DeviceClass its templates create, the attribute
    and capacity names its ResourceSlice reference shows, and the stage milestones of the DRA KEPs."""
    templates = reference / "dra" / "nvidia-dra-driver" / "chart" / "templates"
    classes = {}
    for kind in ("gpu", "mig"):
        text = (templates / f"deviceclass-{kind}.yaml").read_text()
        name = re.search(r"^\s*name:\s*(\S+)", text, re.M)
        expression = _DEVICE_CLASS_EXPRESSION.search(text)
        classes[name.group(1) if name else kind] = expression.group(1) if expression else None
    docs = (reference / "dra" / "nvidia-dra-driver" / "docs" / "resourceslice-attributes.md").read_text()
    keps = {}
    for kep in _KEPS:
        text = (reference / "dra" / "kubernetes-keps" / f"{kep}.kep.yaml").read_text()
        block = re.search(r"^milestone:\n((?:[ \t]+.*\n?)*)", text, re.M)  # (a KEP's other fields may not parse)
        keps[kep] = dict(_MILESTONE.findall(block.group(1))) if block else {}
    return {"values": _values(reference, "dra/nvidia-dra-driver/chart/values.yaml"), "deviceClasses": classes,
            "attributeNames": sorted(set(_ATTRIBUTE_LINE.findall(docs))), "kepMilestones": keps}


GENERATORS: dict[str, Callable[[Path], Any]] = {
    "dra-driver": _dra_driver,
    "karpenter-crds": _karpenter_crds, "karpenter-chart-values": _karpenter_chart_values,
    "karpenter-cloudformation": _cloudformation, "gpu-operator-values": _gpu_operator_values,
    "mig-parted-config": _mig_parted_config, "mig-hardware": _mig_hardware,
}


# --- the committed files ---------------------------------------------------------------------------------

def path(name: str) -> Path:
    return DATA / f"{name}.json"


def render(name: str, data: Any) -> str:
    """The committed text of a data file: provenance first, then the data, keys in a stable order."""
    return json.dumps({"provenance": SOURCES[name].provenance(), "data": data}, indent=1, sort_keys=True) + "\n"


def generate(name: str, reference: Path = REFERENCE) -> str:
    return render(name, GENERATORS[name](reference))


@functools.lru_cache(maxsize=None)
def load(name: str) -> Any:
    """The committed data of `name` (treat it as read-only: it is cached)."""
    return json.loads(path(name).read_text())["data"]


@functools.lru_cache(maxsize=4)
def crd_schemas(directory: str | None = None) -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> openAPIV3Schema of every served version of the pinned Karpenter's CRDs (the
    committed data), or of the CRD files in `directory`."""
    crds = load("karpenter-crds") if directory is None else crds_in(directory)
    return {(f"{c['group']}/{v['name']}", c["kind"]): v["schema"]
            for c in crds for v in c["versions"] if v["served"] and v["schema"]}


def crd_source() -> tuple[str | None, str]:
    """(directory or None for the committed data, how findings name it): $GPU_SLICING_CRD_DIR when set."""
    directory = os.environ.get(CRD_DIR_ENV) or None
    if directory:
        return directory, f"the CRD files in {directory}"
    return None, f"the pinned Karpenter's CRDs ({_KARPENTER_REF.split()[0]}, {path('karpenter-crds').relative_to(DATA.parents[1])})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make refdata", description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, default=REFERENCE, help="the upstream files (../shared/reference)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a committed file is stale")
    args = parser.parse_args(argv)
    if not args.reference.is_dir():
        print(f"no reference files at {args.reference}: nothing to generate from", file=sys.stderr)
        return 2
    stale = []
    for name in GENERATORS:
        text = generate(name, args.reference)
        if path(name).exists() and path(name).read_text() == text:
            continue
        stale.append(name)
        if not args.check:
            DATA.mkdir(exist_ok=True)
            path(name).write_text(text)
    verb = "stale" if args.check else "written"
    print(f"{verb}: {', '.join(stale)}" if stale else "every data file is a fresh generation")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
