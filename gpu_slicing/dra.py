"""Dynamic Resource Allocation (DRA): slices handed out as ResourceClaims through the NVIDIA DRA driver.

A pool with `allocation: dra` keeps its MIG layout (the MIG manager applies it as on a device-plugin pool);
the DRA driver's kubelet plugin, not the device plugin, publishes its slices as devices in a ResourceSlice,
and a workload's `profile` / `gpus` / `memoryGB` become a ResourceClaimTemplate whose CEL selectors pick
them. This module is the pure model: the rules that refuse what cannot work on the stack's EKS version or
the pinned driver and Karpenter, the claims, the devices each node publishes (attribute and capacity names
as the driver's ResourceSlice attribute reference names them), which devices a claim matches (the same
predicates the generated CEL states: `tools/checks.py` evaluates the CEL itself against these devices), and
the driver's Helm values.

Sources, in words: Kubernetes DRA GA in 1.34 on resource.k8s.io/v1; KEP-4816 (prioritized list) beta from
1.34; KEP-4815 (partitionable devices) and KEP-5075 (consumable capacity) alpha up to 1.35 (EKS never turns
on alpha features); NVIDIA DRA driver docs (MIG guide, feature gates, ResourceSlice attributes, Helm values);
Karpenter DRA design and v1.15 preview docs (no MIG scale-out).
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Mapping

from . import helm
from .catalog import GpuModel, InstanceType, MigLayout
from .config import NAMESPACE, NodeGroupConfig, NodePoolConfig, StackConfig, WorkloadConfig
from .errors import ConfigError
from .labels import DEVICE_PLUGIN_DEPLOY_LABEL, MIG_CONFIG_STATE_LABEL, POOL_ALLOCATION_LABEL

if TYPE_CHECKING:
    from .pools import Pool

DRA = "dra"
DRIVER = "gpu.nvidia.com"  # the driver name, the attribute domain and the whole-GPU DeviceClass
GPU_CLASS = "gpu.nvidia.com"
MIG_CLASS = "mig.nvidia.com"
API_VERSION = "resource.k8s.io/v1"
# The selectors of the DeviceClasses the chart creates (its deviceclass-gpu/mig templates).
CLASS_SELECTORS = {GPU_CLASS: f"device.driver == '{DRIVER}' && device.attributes['{DRIVER}'].type == 'gpu'",
                   MIG_CLASS: f"device.driver == '{DRIVER}' && device.attributes['{DRIVER}'].type == 'mig'"}
CONFIG_API_VERSION = "resource.nvidia.com/v1beta1"  # the driver's opaque GpuConfig / MigDeviceConfig

CHART = "dra-driver-nvidia-gpu"
CHART_VERSION = "0.5.0"  # Helm --version takes it without a "v"
REPOSITORY = "oci://registry.k8s.io/dra-driver-nvidia/charts"
RELEASE = "dra-driver-nvidia-gpu"
DRIVER_NAMESPACE = "dra-driver-nvidia-gpu"
# Value paths this program sets, each present in the chart's values.yaml (a test holds them against it).
VALUE_PATHS = frozenset({
    "nvidiaDriverRoot", "gpuResourcesEnabledOverride", "resourceApiVersion", "resources.gpus.enabled",
    "resources.computeDomains.enabled", "featureGates", "kubeletPlugin.nodeSelector",
    "kubeletPlugin.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms",
    "kubeletPlugin.tolerations", "controller.nodeSelector",
})
OPAQUE_VALUE_PATHS = ("featureGates", "kubeletPlugin.nodeSelector", "controller.nodeSelector")  # free-form maps


def flatten(values: Mapping[str, Any]) -> list[str]:
    """The driver's values as key paths, its free-form maps as leaves (for the helm.values check)."""
    return helm.flatten(values, opaque=OPAQUE_VALUE_PATHS)

MIN_KUBERNETES = "1.34"  # resource.k8s.io/v1 (structured parameters GA)
# Kubernetes DRA features a claim or pool can need: (what, feature gate, first EKS minor where it is on).
# EKS runs GA and beta-on-by-default features, never alpha ones.
FEATURES = {
    "firstAvailable": ("a prioritized list of subrequests (KEP-4816)", "DRAPrioritizedList", "1.34"),
    "partitionableDevices": ("partitionable devices (KEP-4815), which dynamic MIG needs", "DRAPartitionableDevices",
                             "1.36"),
    "consumableCapacity": ("consumable capacity (KEP-5075), which sharing one device across claims needs",
                           "DRAConsumableCapacity", "1.36"),
}
DYNAMIC = "dynamic"  # migLayout value of a dynamic-MIG DRA pool (always refused on EKS up to 1.35)

# NVML product names the driver publishes as `productName` (the whole-GPU name; MIG devices inherit it),
# and the lower-case tokens a selector holds it to: enough to tell apart models whose profiles share names
# (1g.10gb is a different slice on A100-40GB, A100-80GB and H100).
PRODUCTS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "A100-SXM4-40GB": ("NVIDIA A100-SXM4-40GB", ("a100", "40gb")),
    "A100-SXM4-80GB": ("NVIDIA A100-SXM4-80GB", ("a100", "80gb")),
    "H100-80GB-HBM3": ("NVIDIA H100 80GB HBM3", ("h100",)),
    "H200-141GB": ("NVIDIA H200", ("h200",)),
    "B200-180GB": ("NVIDIA B200", ("b200",)),
    "B300-288GB": ("NVIDIA B300 SXM6 AC", ("b300",)),
    "GB200-186GB": ("NVIDIA GB200", ("gb200",)),
    "RTX-PRO-6000-Blackwell-SE-96GB": ("NVIDIA RTX PRO 6000 Blackwell Server Edition", ("rtx pro 6000",)),
    "A10G": ("NVIDIA A10G", ("a10g",)),
    "L4": ("NVIDIA L4", ("l4",)),
    "L40S": ("NVIDIA L40S", ("l40s",)),
    "T4": ("Tesla T4", ("t4",)),
    "T4G": ("NVIDIA T4G", ("t4g",)),
}
_ARCH = {"A100": "Ampere", "H100": "Hopper", "H200": "Hopper", "A10G": "Ampere", "L4": "Ada Lovelace",
         "L40S": "Ada Lovelace", "T4": "Turing", "T4G": "Turing"}

WHY_KARPENTER = ("devicePlugin: Karpenter 1.14.1 (pinned) ignores DRA claims when it provisions, so pods whose "
                 "GPUs come through claims would stay Pending with no node launched; Karpenter's DRA support "
                 "(v1.15, alpha settings.enableDRA) scales out only for whole-GPU claims and still cannot launch "
                 "nodes for MIG claims (its device metadata is one device per physical GPU); put DRA pools on "
                 "managed node groups (nodeGroups[].allocation: dra)")


def _minor(v: str) -> tuple[int, int]:
    major, minor = v.split(".")[:2]
    return int(major), int(minor)


def feature_on(feature: str, version: str) -> bool:
    return _minor(version) >= _minor(FEATURES[feature][2])


def _feature_refusal(feature: str, version: str) -> str:
    what, gate, since = FEATURES[feature]
    return (f"{what}: alpha (feature gate {gate} off) on Kubernetes {version}; EKS enables no alpha "
            f"features, so it works from {since} (beta, on by default)")


def product(gpu: GpuModel) -> tuple[str, tuple[str, ...]]:
    return PRODUCTS.get(gpu.name, (f"NVIDIA {gpu.name}", (gpu.name.lower(),)))


def nominal_gb(profile: str) -> int:
    """The memory a profile's name states (`3g.40gb` -> 40); published capacity is a little less."""
    m = re.search(r"\.(\d+)gb", profile)
    return int(m.group(1)) if m else 0


# --- rules -------------------------------------------------------------------------------------------

def pool_rule_errors(cfg: StackConfig) -> list[ConfigError]:
    """DRA pools the stack's EKS version or the pinned Karpenter cannot serve."""
    version = cfg.cluster.kubernetes_version
    out = []
    blocks: list[tuple[str, NodeGroupConfig | NodePoolConfig]] = [
        (f"{NAMESPACE}:nodeGroups[{i}]", g) for i, g in enumerate(cfg.node_groups)]
    blocks += [(f"{NAMESPACE}:karpenter.nodePools[{i}]", p) for i, p in enumerate(cfg.karpenter.node_pools)]
    for key, block in blocks:
        if block.allocation != DRA:
            continue
        if _minor(version) < _minor(MIN_KUBERNETES):
            out.append(ConfigError(f"{key}.allocation", DRA,
                                   f"devicePlugin on EKS {version}: DRA's resource.k8s.io/v1 API (structured "
                                   f"parameters, GA) is served from Kubernetes {MIN_KUBERNETES}, and the NVIDIA "
                                   f"DRA driver needs 1.34.2 or later; set {NAMESPACE}:cluster.kubernetesVersion "
                                   f"to {MIN_KUBERNETES} or later"))
        elif ".nodePools[" in key:
            out.append(ConfigError(f"{key}.allocation", DRA, WHY_KARPENTER))
        elif block.sharing is not None:
            out.append(ConfigError(f"{key}.sharing", block.sharing,
                                   "no pool sharing on a dra pool: that is the device plugin's time-slicing "
                                   "config, which does not run there; share a device per workload with "
                                   "workloads[].claimSharing"))
    return out


def dynamic_mig_error(key: str, it: InstanceType, version: str) -> ConfigError:
    """Dynamic MIG (the driver creates slices per claim) is refused everywhere this program deploys."""
    why = [] if feature_on("partitionableDevices", version) else [_feature_refusal("partitionableDevices", version)]
    if it.gpu.name.startswith("A100"):
        why.append(f"{it.gpu.name} (Ampere) cannot turn MIG mode on without a GPU reset, so the driver would "
                   "fall back to whole GPUs (driver MIG guide)")
    why.append("the driver destroys MIG partitions it did not create, so it can never run beside the MIG "
               "manager that applies this program's layouts")
    return ConfigError(f"{key}.migLayout", DYNAMIC, "a static MIG layout the MIG manager applies (all-balanced, "
                       "all-<profile> or a migLayouts key): dynamic MIG is refused: " + "; ".join(why))


def workload_rule(key: str, w: WorkloadConfig, pool: Pool, version: str) -> None:
    """The DRA keys of one workload against its pool (raise the first that fails)."""
    dra_keys = {"fallbackProfiles": w.fallback_profiles, "memoryGB": w.memory_gb, "claimSharing": w.claim_sharing}
    if pool.allocation != DRA:
        for k, v in dra_keys.items():
            if v:
                raise ConfigError(f"{key}.{k}", list(v) if isinstance(v, tuple) else v,
                                  f"absent: pool {pool.name} hands out slices through the device plugin "
                                  "(allocation: devicePlugin), and only a DRA claim can say this; set the pool's "
                                  "allocation to dra or drop the key")
        return
    if w.fallback_profiles:
        if w.profile is None:
            raise ConfigError(f"{key}.fallbackProfiles", list(w.fallback_profiles),
                              "absent without profile: the fallbacks are tried after profile")
        if not feature_on("firstAvailable", version):
            raise ConfigError(f"{key}.fallbackProfiles", list(w.fallback_profiles),
                              _feature_refusal("firstAvailable", version))
        made = pool.layout.profile_names()
        for j, prof in enumerate(w.fallback_profiles):
            if prof == w.profile or prof not in made:
                raise ConfigError(f"{key}.fallbackProfiles[{j}]", prof,
                                  f"a profile other than {w.profile} that layout {pool.layout.name} of pool "
                                  f"{pool.name} creates: " + ", ".join(sorted(made - {w.profile})))
    if w.memory_gb is not None and not matching_kinds(w, pool):
        kinds = device_kinds(pool) if device_class(pool, w) == GPU_CLASS else \
            [k for k in device_kinds(pool) if k != GPU_CLASS]  # a floor on a MIG pool is a slice's
        biggest = max(kinds, key=lambda k: _kind_gb(k, pool.gpu), default=None)
        raise ConfigError(f"{key}.memoryGB", w.memory_gb,
                          f"at most what pool {pool.name}'s largest device has ({_kind_gb(biggest, pool.gpu)}"
                          f" GB, {biggest or 'none'}): no device of its layout {pool.layout.name} has that much, so "
                          "the claim would never be allocated")
    if w.gpus is not None and GPU_CLASS not in device_kinds(pool):
        stranded = any(per is not None and not any(per.values()) for per in pool.layout.per_gpu(pool.largest.gpu_count))
        raise ConfigError(f"{key}.gpus", w.gpus,
                          f"absent (use profile or memoryGB), or a layout with MIG off on some GPUs: layout "
                          f"{pool.layout.name} of pool {pool.name} leaves no GPU whole, so its nodes publish no "
                          f"{GPU_CLASS} device"
                          + (" (a GPU with MIG on and no slices publishes nothing at all: the NVIDIA DRA driver's "
                             "GPU allocation guide)" if stranded else ""))
    room = min(pool.pods_per_node.values(), default=0)
    if w.claim_sharing is not None and room and w.replicas > room:
        raise ConfigError(f"{key}.replicas", w.replicas,
                          f"at most {room}: every replica shares one claim's device, so all of them run on the node "
                          f"holding it, and a node of pool {pool.name} runs at most {room} workload pods")
    if w.claim_sharing == "timeSlicing" and device_class(pool, w) == MIG_CLASS:
        raise ConfigError(f"{key}.claimSharing", w.claim_sharing,
                          "mps (or none) on a MIG pool: the driver's MIG guide says time-slicing has no effect on MIG "
                          "devices (MPS shares a slice)")


# --- devices: what each node of a DRA pool publishes ---------------------------------------------------

def device_class(pool: Pool, w: WorkloadConfig | None = None) -> str:
    """`gpu.nvidia.com` for whole GPUs (`gpus`, or a pool without MIG), else `mig.nvidia.com`."""
    return MIG_CLASS if pool.layout.mig_enabled and (w is None or w.gpus is None) else GPU_CLASS


def _kind(profile: str | None) -> str:
    """Capacity key of a device kind: `mig.nvidia.com/<profile>` or `gpu.nvidia.com` (whole GPUs)."""
    return f"{MIG_CLASS}/{profile}" if profile else GPU_CLASS


def _kind_gb(kind: str | None, gpu: GpuModel) -> int:
    """The memory of a device of `kind` on `gpu`: a slice's stated size, a whole GPU's; no kind, none."""
    if not kind:
        return 0
    return nominal_gb(kind) if kind.startswith(MIG_CLASS) else gpu.memory_gib


def devices_per_node(it: InstanceType, layout: MigLayout) -> dict[str, int]:
    """Devices of one node by kind: one MIG device per slice of the layout, one GPU device per GPU with
    MIG off (static MIG: the driver publishes the partitions that exist when its plugin starts). A GPU with
    MIG on and no slices (`all-enabled`) publishes nothing: the driver's GPU allocation guide says it
    advertises neither the full GPU nor any slice of it."""
    out: dict[str, int] = {}
    for per in layout.per_gpu(it.gpu_count):
        for prof, n in ({None: 1} if per is None else per).items():
            if n:
                out[_kind(prof)] = out.get(_kind(prof), 0) + n
    return out


def device_kind(device: Mapping[str, Any]) -> str:
    """The kind (capacity key) of one ResourceSlice device."""
    attrs = device["attributes"]
    return _kind(attrs["profile"]["string"]) if attrs["type"]["string"] == "mig" else GPU_CLASS


def device_kinds(pool: Pool) -> list[str]:
    return [k for k in pool.per_node if pool.per_node[k] > 0]


def resource_slice_devices(it: InstanceType, layout: MigLayout) -> list[dict[str, Any]]:
    """`spec.devices` of the ResourceSlice one node publishes, as the driver's attribute reference names
    the attributes (bare keys, domain implied by the driver) and capacities; UUIDs are placeholders."""
    name, _ = product(it.gpu)
    arch = next((a for k, a in _ARCH.items() if it.gpu.name.startswith(k)), "Blackwell")
    out = []
    for g, per in enumerate(layout.per_gpu(it.gpu_count)):
        parent = f"GPU-{g:08d}-0000-0000-0000-000000000000"
        common = {"productName": {"string": name}, "architecture": {"string": arch},
                  "brand": {"string": "Nvidia"}}
        if per is None:
            out.append({"name": f"gpu-{g}", "attributes": {**common, "type": {"string": "gpu"},
                                                           "uuid": {"string": parent}},
                        "capacity": {"memory": {"value": f"{it.gpu.memory_gib}Gi"}}})
            continue
        for prof, n in sorted(per.items()):
            for i in range(n):
                out.append({"name": f"gpu-{g}-mig-{prof}-{i}",
                            "attributes": {**common, "type": {"string": "mig"}, "profile": {"string": prof},
                                           "parentUUID": {"string": parent},
                                           "uuid": {"string": f"MIG-{g:04d}-{prof}-{i}"}},
                            "capacity": {"memory": {"value": f"{nominal_gb(prof)}Gi"}}})
    return out


def resource_slice(pool: Pool, it: InstanceType, node: str) -> dict[str, Any]:
    """The ResourceSlice a node of `pool` publishes (one pool per node, as the driver does)."""
    return {"apiVersion": API_VERSION, "kind": "ResourceSlice",
            "metadata": {"name": f"{node}-{DRIVER}"},
            "spec": {"driver": DRIVER, "nodeName": node,
                     "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
                     "devices": resource_slice_devices(it, pool.layout)}}


# --- claims -------------------------------------------------------------------------------------------

def _product_cel(gpu: GpuModel) -> str:
    tokens = product(gpu)[1]
    return " && ".join(f"device.attributes['{DRIVER}'].productName.lowerAscii().contains('{t}')" for t in tokens)


def _profiles_wanted(w: WorkloadConfig, pool: Pool) -> list[list[str]]:
    """Each subrequest's acceptable profiles, in order (one subrequest unless fallbacks are given)."""
    if w.profile is not None:
        return [[w.profile], *[[p] for p in w.fallback_profiles]]
    if w.memory_gb is not None and device_class(pool, w) == MIG_CLASS:
        return [sorted((p for p in pool.layout.profile_names() if nominal_gb(p) >= w.memory_gb),
                       key=lambda p: (nominal_gb(p), p))]
    return [[]]


def selector(pool: Pool, profiles: list[str]) -> str:
    """The CEL expression a request holds a device to: its product (pools of other models never match)
    and, on a MIG pool, its profile(s)."""
    parts = [_product_cel(pool.gpu)]
    if profiles:
        names = ", ".join(f"'{p}'" for p in profiles)
        parts.append(f"device.attributes['{DRIVER}'].profile == {names}" if len(profiles) == 1 else
                     f"device.attributes['{DRIVER}'].profile in [{names}]")
    return " && ".join(parts)


def claim_spec(w: WorkloadConfig, pool: Pool) -> dict[str, Any]:
    """`spec` of the ResourceClaim (the template's `spec.spec`) for one pod of `w` on `pool`.

    A memory floor on a MIG pool becomes the profiles whose stated size meets it: the capacity the driver
    publishes is the usable amount, below the name (its attribute reference shows 4864Mi for a 5gb slice),
    so a quantity floor of 10Gi would miss every 10gb slice."""
    cls = device_class(pool, w)
    count = w.gpus or 1
    wanted = _profiles_wanted(w, pool)

    def exactly(profiles: list[str]) -> dict[str, Any]:
        return {"deviceClassName": cls, "allocationMode": "ExactCount", "count": count,
                "selectors": [{"cel": {"expression": selector(pool, profiles)}}]}

    if len(wanted) == 1:
        request: dict[str, Any] = {"name": "slice", "exactly": exactly(wanted[0])}
    else:
        request = {"name": "slice", "firstAvailable": [
            {"name": re.sub(r"[^a-z0-9-]", "-", p[0].lower()), **exactly(p)} for p in wanted]}
    spec: dict[str, Any] = {"devices": {"requests": [request]}}
    if w.claim_sharing is not None:
        kind = "MigDeviceConfig" if cls == MIG_CLASS else "GpuConfig"
        strategy = "MPS" if w.claim_sharing == "mps" else "TimeSlicing"
        spec["devices"]["config"] = [{"requests": ["slice"], "opaque": {
            "driver": DRIVER, "parameters": {"apiVersion": CONFIG_API_VERSION, "kind": kind,
                                             "sharing": {"strategy": strategy}}}}]
    return spec


def claim_name(w: WorkloadConfig) -> str:
    """The name of `w`'s ResourceClaimTemplate (or shared ResourceClaim). `workloads.resolve` derives it, once per
    load (`Workload.claim`); everything else reads it from there."""
    return f"{w.name}-slice"


def claim_template(w: WorkloadConfig, pool: Pool, namespace: str, *, claim: str) -> dict[str, Any]:
    """The ResourceClaimTemplate (one claim per pod) or, with claimSharing, the one ResourceClaim every
    replica shares: `(kind, metadata, spec)` as a dict, named `claim` (the resolved workload's)."""
    meta = {"name": claim, "namespace": namespace,
            "labels": {"app.kubernetes.io/name": w.name, "app.kubernetes.io/part-of": "gpu-slicing"}}
    spec = claim_spec(w, pool)
    if w.claim_sharing is not None:
        return {"apiVersion": API_VERSION, "kind": "ResourceClaim", "metadata": meta, "spec": spec}
    return {"apiVersion": API_VERSION, "kind": "ResourceClaimTemplate", "metadata": meta, "spec": {"spec": spec}}


def pod_resource_claims(w: WorkloadConfig, *, claim: str) -> list[dict[str, str]]:
    """A pod's `spec.resourceClaims`: the shared claim `claim`, or a claim from the template `claim`."""
    ref = "resourceClaimName" if w.claim_sharing is not None else "resourceClaimTemplateName"
    return [{"name": "slice", ref: claim}]


def matches(w: WorkloadConfig, pool: Pool, device: Mapping[str, Any]) -> bool:
    """Whether `device` (a ResourceSlice entry) satisfies one of the claim's subrequests: the predicates its
    CEL states, in Python (the plan's dra.claims check evaluates the CEL itself and compares)."""
    attrs = {k: next(iter(v.values())) for k, v in device.get("attributes", {}).items()}
    if attrs.get("type") != ("mig" if device_class(pool, w) == MIG_CLASS else "gpu"):
        return False
    if not all(t in str(attrs.get("productName", "")).lower() for t in product(pool.gpu)[1]):
        return False
    return any(not profiles or attrs.get("profile") in profiles for profiles in _profiles_wanted(w, pool))


def matching_kinds(w: WorkloadConfig, pool: Pool) -> list[str]:
    """Device kinds of the pool the claim accepts, in its order of preference."""
    kinds = device_kinds(pool)
    if w.memory_gb is not None and device_class(pool, w) == GPU_CLASS:
        return [GPU_CLASS] if pool.gpu.memory_gib >= w.memory_gb and GPU_CLASS in kinds else []
    if w.memory_gb is not None:  # the profiles meeting the floor; none: nothing (never "any profile")
        return [k for k in map(_kind, _profiles_wanted(w, pool)[0]) if k in kinds]
    out = []
    for profiles in _profiles_wanted(w, pool):
        out += [k for k in ([_kind(p) for p in profiles] if profiles else [GPU_CLASS]) if k in kinds]
    return out


def claim_resources(w: WorkloadConfig, pool: Pool) -> tuple[str, ...]:
    """The device kinds the capacity plan counts a pod of `w` against, its first choice (the first profile, or
    the smallest that meets a memory floor) first: the scheduler allocates any device the claim matches, so
    the plan counts each pod against one device of any of them (`gpu_slicing.capacity`, never twice)."""
    return tuple(matching_kinds(w, pool)) or (_kind(w.profile),)


def claim_resource(w: WorkloadConfig, pool: Pool) -> str:
    """The claim's first choice: the resource its plan line is named by."""
    return claim_resources(w, pool)[0]


def verify_command(w: WorkloadConfig, pool: Pool) -> list[str]:
    """The verification pod's command: list the devices (`nvidia-smi -L`), then fail unless the claim brought
    exactly what it asked for: one MIG device of an accepted profile, or `gpus` whole GPUs."""
    if device_class(pool, w) == MIG_CLASS:
        accepted = "|".join(re.escape(p) for profiles in _profiles_wanted(w, pool) for p in profiles)
        test = f"test \"$(nvidia-smi -L | grep -cE '^ +MIG ({accepted}) +Device')\" -eq 1"
    else:
        test = f"test \"$(nvidia-smi -L | grep -c '^GPU ')\" -eq {w.gpus or 1}"
    return ["bash", "-c", f"nvidia-smi -L && {test}"]


# --- the driver ---------------------------------------------------------------------------------------

def driver_values(pools: list[Pool], workloads: list[WorkloadConfig]) -> dict[str, Any]:
    """Chart values: whole GPUs and MIG on, ComputeDomains off (GB200/GB300 NVLink only), the v1 API pinned,
    the host's driver at / (the EKS AL2023 NVIDIA AMI carries it), and the kubelet plugin only on DRA
    pools' nodes whose MIG layout is applied (`nvidia.com/mig.config.state=success` on MIG pools): a MIG
    change sets it to pending, which stops the plugin, and success starts it again, so its one-time
    discovery always sees the partitions that exist."""
    dra = [p for p in pools if p.allocation == DRA]
    terms = []
    if any(p.gpu.mig_capable for p in dra):
        terms.append({"matchExpressions": [
            {"key": POOL_ALLOCATION_LABEL, "operator": "In", "values": [DRA]},
            {"key": MIG_CONFIG_STATE_LABEL, "operator": "In", "values": ["success"]}]})
    if any(not p.gpu.mig_capable for p in dra):
        terms.append({"matchExpressions": [
            {"key": POOL_ALLOCATION_LABEL, "operator": "In", "values": [DRA]},
            {"key": "nvidia.com/mig.config", "operator": "DoesNotExist"}]})
    gates = {"MPSSupport": True} if any(w.claim_sharing == "mps" for w in workloads) else {}
    return {
        "nvidiaDriverRoot": "/",
        "gpuResourcesEnabledOverride": True,
        "resourceApiVersion": API_VERSION,
        "resources": {"gpus": {"enabled": True}, "computeDomains": {"enabled": False}},
        "featureGates": gates,
        "kubeletPlugin": {
            "nodeSelector": {POOL_ALLOCATION_LABEL: DRA},
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": terms}}},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        },
        "controller": {"nodeSelector": {"kubernetes.io/os": "linux"}},
    }


EXPORTER_SERVICE_ACCOUNT = "nvidia-dcgm-exporter"  # the GPU Operator's (assets/state-dcgm-exporter)
EXPORTER_READS_SLICES = "gpu-slicing-dcgm-exporter-read-resourceslices"


def exporter_rbac(operator_namespace: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ClusterRole reading ResourceSlices and its binding to the GPU Operator's dcgm-exporter service
    account: with KUBERNETES_ENABLE_DRA the exporter maps a claim's device to its GPU or MIG slice through a
    ResourceSlice informer, and the operator's own exporter ClusterRole (v26.7.0) reads pods only."""
    meta = {"name": EXPORTER_READS_SLICES, "labels": {"app.kubernetes.io/part-of": "gpu-slicing"}}
    role = {"metadata": meta, "rules": [{"apiGroups": ["resource.k8s.io"], "resources": ["resourceslices"],
                                         "verbs": ["get", "list", "watch"]}]}
    binding = {"metadata": meta,
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": EXPORTER_READS_SLICES},
               "subjects": [{"kind": "ServiceAccount", "name": EXPORTER_SERVICE_ACCOUNT,
                             "namespace": operator_namespace}]}
    return role, binding


def node_labels(pool: Pool) -> dict[str, str]:
    """Labels of a DRA pool's nodes: the GPU Operator's device plugin off there, the kubelet plugin on."""
    return {POOL_ALLOCATION_LABEL: DRA, DEVICE_PLUGIN_DEPLOY_LABEL: "false"}
